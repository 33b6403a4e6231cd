#!/usr/bin/env bash
# Builds the root filesystem of the e2e stand-in for public.ecr.aws/lambda/python:3.12 and writes
# it as a tarball:  e2e/standin-rootfs.sh ARCH OUT.tar   (ARCH: amd64 | arm64)
#
# Debian bookworm minbase + python3 (3.11, not 3.12: Debian's; good enough for `pip install` of
# pure-Python packages), pip, setuptools, wheel. Built WITHOUT running maintainer scripts:
#   1. `debootstrap --foreign` only downloads the .debs and unpacks the essential ones (no target
#      code runs, so it is equally fast for a foreign architecture);
#   2. every downloaded .deb is unpacked with the host's dpkg-deb (tar --keep-directory-symlink
#      keeps bookworm's merged-/usr symlinks);
#   3. the few things postinst scripts would have made that we need are made by hand (passwd,
#      group, ld.so.cache), Python is byte-compiled inside the chroot (native, or through
#      qemu-user-static for arm64: ~25 s instead of a 4-minute emulated dpkg --configure run),
#      and a smoke test imports pip/setuptools/wheel.
# The image metadata (ENV, WORKDIR, CMD) is set by e2e/lib/standin.ts when it imports the tarball.
set -euo pipefail

arch="${1:?usage: standin-rootfs.sh ARCH OUT.tar}"
out="${2:?usage: standin-rootfs.sh ARCH OUT.tar}"
suite="${E2E_STANDIN_SUITE:-bookworm}"
mirror="${E2E_STANDIN_MIRROR:-http://deb.debian.org/debian}"
packages="${E2E_STANDIN_PACKAGES:-python3,python3-pip,python3-setuptools,python3-wheel,python-is-python3}"

work="$(mktemp -d "${TMPDIR:-/tmp}/standin-${arch}.XXXXXX")"
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"

t0=$SECONDS
debootstrap --foreign --arch="$arch" --variant=minbase --include="$packages" \
  "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -20 "$work/debootstrap.log" >&2
  echo "standin-rootfs: debootstrap --foreign failed" >&2
  exit 1
}
t1=$SECONDS

for deb in "$root"/var/cache/apt/archives/*.deb; do
  dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink -C "$root"
done

cp "$root/usr/share/base-passwd/passwd.master" "$root/etc/passwd"
cp "$root/usr/share/base-passwd/group.master" "$root/etc/group"
printf '127.0.0.1 localhost\n' >"$root/etc/hosts"
: >"$root/etc/resolv.conf"
# PEP 668 marker: pip in the image must install into the system site like Lambda's does.
rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
# Offline pip, whatever the environment of a RUN step says. Build isolation would make pip fetch
# setuptools from an index; without isolation it uses the image's own setuptools + wheel.
cat >"$root/etc/pip.conf" <<'EOF'
[global]
no-index = true
no-build-isolation = false
break-system-packages = true
disable-pip-version-check = true
root-user-action = ignore
EOF
rm -rf "$root/debootstrap" "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
  "$root/usr/share/doc" "$root/usr/share/man" "$root/usr/share/locale" "$root/usr/share/info"
mkdir -p "$root/var/task" "$root/var/runtime" "$root/tmp" "$root/run/lock"
chmod 1777 "$root/tmp"

# Stand-in for the Lambda image's /lambda-entrypoint.sh (the RIE): runs the handler named by CMD
# once, with the event JSON from $E2E_EVENT (default {}), and prints its result as JSON.
cat >"$root/lambda-entrypoint.sh" <<'ENTRY'
#!/bin/sh
set -e
handler="${1:-${_HANDLER:?usage: lambda-entrypoint.sh module.function}}"
cd "${LAMBDA_TASK_ROOT:-/var/task}"
exec python3 -c '
import importlib, json, os, sys
sys.path.insert(0, os.environ.get("LAMBDA_TASK_ROOT", "/var/task"))
mod, _, fn = sys.argv[1].rpartition(".")
event = json.loads(os.environ.get("E2E_EVENT") or "{}")
print(json.dumps(getattr(importlib.import_module(mod), fn)(event, None)))
' "$handler"
ENTRY
chmod 755 "$root/lambda-entrypoint.sh"

chroot "$root" /sbin/ldconfig
chroot "$root" /usr/bin/python3 -m compileall -q -j2 -x 'lib2to3/tests|/test/|idlelib' \
  /usr/lib/python3.11 /usr/lib/python3/dist-packages >"$work/compileall.log" 2>&1 || {
  tail -20 "$work/compileall.log" >&2
  echo "standin-rootfs: compileall failed" >&2
  exit 1
}
chroot "$root" /usr/bin/python3 -W ignore -c 'import setuptools, wheel, pip, platform, sys; print("standin python", sys.version.split()[0], platform.machine(), "pip", pip.__version__)'
t2=$SECONDS

# debootstrap makes /proc a symlink to the host's /proc when it thinks it runs in a container, and
# leaves device nodes in /dev (the chroot steps above used them); an image wants an empty /proc and /dev (the runtime mounts them).
rm -rf "$root/proc" "$root/dev" && mkdir -p "$root/proc" "$root/dev" "$root/sys"
if [[ -d "$root/var/run" && ! -L "$root/var/run" ]]; then rm -rf "$root/var/run" && ln -s /run "$root/var/run"; fi

mkdir -p "$(dirname "$out")"
tar -C "$root" --numeric-owner -cf "$out.part" .
mv "$out.part" "$out"
echo "standin-rootfs: $arch ok: download ${t1-t0}s, unpack+compile $((t2 - t1))s, total $((SECONDS - t0))s, $(du -h "$out" | cut -f1)"
