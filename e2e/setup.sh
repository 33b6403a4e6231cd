#!/usr/bin/env bash
# Installs what the e2e needs from Debian, idempotently (skips packages that are already installed),
# and makes arm64 binaries runnable through qemu-user-static + binfmt_misc when the host is not arm64.
#
# Packages:
#   buildah              builds OCI images (vfs storage, chroot isolation: no daemon, no runc needed)
#   docker-registry      distribution/registry v2, run by e2e on 127.0.0.1 (never as the system service)
#   debootstrap          builds the rootfs of the public.ecr.aws/lambda/python stand-in
#   qemu-user-static     runs linux/arm64 RUN steps on x86_64 (binfmt "F" flag: works inside chroots)
#   binfmt-support       update-binfmts, to register qemu when no systemd-binfmt runs
#   unzip                the CodeBuild stand-in unpacks source zips with it
#   ca-certificates      debootstrap's mirror access is plain http, but keep TLS roots for anything else
set -euo pipefail

want=(buildah docker-registry debootstrap debian-archive-keyring unzip ca-certificates)
host_arch="$(dpkg --print-architecture)"
if [[ "${E2E_NO_QEMU:-0}" != "1" && "$host_arch" != "arm64" ]]; then
  want+=(qemu-user-static binfmt-support)
fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "e2e/setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # The lists may be absent on a fresh machine; update once, then install.
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "e2e/setup: packages present (${want[*]})"
fi

# arm64 emulation: binfmt_misc must be mounted and qemu-aarch64 registered with the F (fix-binary) flag,
# so that the interpreter is opened at registration time and works inside buildah's chroot.
if [[ "${E2E_NO_QEMU:-0}" != "1" && "$host_arch" != "arm64" ]]; then
  if [[ ! -e /proc/sys/fs/binfmt_misc/register ]]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || echo "e2e/setup: cannot mount binfmt_misc" >&2
  fi
  if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
    update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || update-binfmts --import qemu-aarch64 >/dev/null 2>&1 || true
  fi
  if [[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] && grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64; then
    echo "e2e/setup: qemu-aarch64 binfmt enabled ($(grep flags /proc/sys/fs/binfmt_misc/qemu-aarch64))"
  else
    echo "e2e/setup: WARNING qemu-aarch64 binfmt not available; arm64 RUN steps will fail" >&2
  fi
fi
