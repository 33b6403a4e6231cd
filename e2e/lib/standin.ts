// The local stand-in for public.ecr.aws/lambda/python:3.12: a Debian rootfs with python3 + pip
// (e2e/standin-rootfs.sh, cached under .e2e/cache/ keyed by its inputs), imported with buildah
// and pushed to the local registry as a multi-platform list `lambda/python:3.12`, like the real one.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, openSync, readFileSync, closeSync, writeFileSync, rmSync, renameSync } from "node:fs";
import { RegistryWriter } from "./registry.ts";
import { join } from "node:path";
import { trackChild } from "./services.ts";
import { buildahEnv, CACHE_DIR, REPO_ROOT, STANDIN_REPO, STANDIN_TAG } from "./buildenv.ts";

export type Arch = "amd64" | "arm64";
export const hostArch = (): Arch => (process.arch === "arm64" ? "arm64" : "amd64");

const SCRIPT = join(REPO_ROOT, "e2e", "standin-rootfs.sh");
/** Bump to invalidate cached rootfs tarballs when something outside the script changes. */
const CACHE_EPOCH = "1";

export function rootfsKey(arch: Arch): string {
  const h = createHash("sha256");
  h.update(CACHE_EPOCH).update("\0").update(arch).update("\0").update(readFileSync(SCRIPT));
  for (const k of ["E2E_STANDIN_SUITE", "E2E_STANDIN_MIRROR", "E2E_STANDIN_PACKAGES"]) h.update(`\0${k}=${process.env[k] ?? ""}`);
  return h.digest("hex").slice(0, 16);
}

export interface Logger {
  (line: string): void;
}

/** Runs a command; its output goes to `logFile` (appended). Rejects with the log's tail. */
export async function sh(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string>; logFile: string; cwd?: string; capture?: boolean },
): Promise<string> {
  const fd = openSync(opts.logFile, "a");
  try {
    return await new Promise<string>((resolve, reject) => {
      const child = spawn(cmd, args, {
        env: opts.env ?? (process.env as Record<string, string>),
        cwd: opts.cwd,
        stdio: ["ignore", opts.capture ? "pipe" : fd, fd],
      });
      trackChild(child);
      let out = "";
      child.stdout?.on("data", (d) => (out += d));
      child.on("error", reject);
      child.on("exit", (code) => {
        if (code === 0) return resolve(out);
        const tail = readFileSync(opts.logFile, "utf8").split("\n").slice(-25).join("\n");
        reject(new Error(`${cmd} ${args.join(" ")} exited ${code}\n${tail}`));
      });
    });
  } finally {
    closeSync(fd);
  }
}

/** The rootfs tarball for `arch`, built (and cached) if needed. */
export async function ensureRootfs(arch: Arch, log: Logger): Promise<{ path: string; seconds: number; cached: boolean }> {
  mkdirSync(CACHE_DIR, { recursive: true });
  const path = join(CACHE_DIR, `standin-rootfs-${arch}-${rootfsKey(arch)}.tar`);
  if (existsSync(path)) return { path, seconds: 0, cached: true };
  const t0 = Date.now();
  log(`stand-in: building ${arch} rootfs (debootstrap --foreign + unpack${arch !== hostArch() ? " + qemu" : ""}) ...`);
  const logFile = join(CACHE_DIR, `standin-rootfs-${arch}.log`);
  writeFileSync(logFile, "");
  // One retry: the only network use of the e2e is debootstrap's download from the Debian mirror.
  try {
    await sh("bash", [SCRIPT, arch, path], { logFile });
  } catch (err) {
    log(`stand-in: ${arch} rootfs failed, retrying once: ${(err as Error).message.split("\n").slice(-3).join(" | ")}`);
    await sh("bash", [SCRIPT, arch, path], { logFile });
  }
  const seconds = (Date.now() - t0) / 1000;
  log(`stand-in: ${arch} rootfs built in ${seconds.toFixed(1)}s`);
  return { path, seconds, cached: false };
}

/** Bump when the image's metadata (publishStandin's buildah config) changes. */
const PUBLISH_EPOCH = "1";

export function imageKey(arches: Arch[]): string {
  const h = createHash("sha256").update(PUBLISH_EPOCH);
  for (const a of arches) h.update(`\0${a}=${rootfsKey(a)}`);
  return h.digest("hex").slice(0, 16);
}

interface ImageDump {
  list: { mediaType: string; digest: string; file: string };
  manifests: { mediaType: string; digest: string; file: string }[];
  blobs: string[];
}

/** Copies lambda/python:3.12 out of the registry into `dir` (blobs by digest + index.json). */
async function dumpImage(reg: RegistryWriter, dir: string): Promise<void> {
  const tmp = `${dir}.part`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, "blobs"), { recursive: true });
  const file = (digest: string) => join("blobs", digest.replace(":", "-"));
  const list = await reg.manifest(STANDIN_REPO, STANDIN_TAG);
  writeFileSync(join(tmp, file(list.digest)), list.raw);
  const dump: ImageDump = { list: { mediaType: list.mediaType, digest: list.digest, file: file(list.digest) }, manifests: [], blobs: [] };
  for (const d of list.manifests ?? []) {
    const m = await reg.manifest(STANDIN_REPO, d.digest);
    writeFileSync(join(tmp, file(m.digest)), m.raw);
    dump.manifests.push({ mediaType: m.mediaType, digest: m.digest, file: file(m.digest) });
    for (const b of [m.config!, ...m.layers!]) {
      if (dump.blobs.includes(b.digest)) continue;
      writeFileSync(join(tmp, file(b.digest)), await reg.blob(STANDIN_REPO, b.digest));
      dump.blobs.push(b.digest);
    }
  }
  writeFileSync(join(tmp, "index.json"), JSON.stringify(dump, null, 2));
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
}

/** Uploads a dumped image; returns the list digest (checked against the dump). */
async function restoreImage(reg: RegistryWriter, dir: string): Promise<string> {
  const dump = JSON.parse(readFileSync(join(dir, "index.json"), "utf8")) as ImageDump;
  for (const b of dump.blobs) await reg.pushBlob(STANDIN_REPO, b, readFileSync(join(dir, "blobs", b.replace(":", "-"))));
  for (const m of dump.manifests) await reg.putManifest(STANDIN_REPO, m.digest, m.mediaType, readFileSync(join(dir, m.file)));
  const digest = await reg.putManifest(STANDIN_REPO, STANDIN_TAG, dump.list.mediaType, readFileSync(join(dir, dump.list.file)));
  if (digest && digest !== dump.list.digest) throw new Error(`stand-in restore: digest ${digest} != cached ${dump.list.digest}`);
  return dump.list.digest;
}

export interface PublishedStandin {
  /** `HOST/lambda/python:3.12` */
  ref: string;
  /** Digest of the pushed manifest list. */
  digest: string;
  arches: Arch[];
  rootfsSeconds: Record<string, number>;
  importSeconds: number;
  /** The pushed image came from .e2e/cache/standin-image-KEY (no buildah import). */
  fromCache: boolean;
}

/**
 * Imports each arch's rootfs as a one-layer image with the Lambda base image's shape (ENV
 * LAMBDA_TASK_ROOT=/var/task, WORKDIR /var/task, ENTRYPOINT ["/lambda-entrypoint.sh"], no CMD),
 * and pushes them as one manifest list (docker v2s2, like public.ecr.aws/lambda/python).
 */
export async function publishStandin(o: {
  registryHost: string;
  registriesConf: string;
  arches: Arch[];
  workDir: string;
  log: Logger;
}): Promise<PublishedStandin> {
  const ref = `${o.registryHost}/${STANDIN_REPO}:${STANDIN_TAG}`;
  const reg = new RegistryWriter(`http://${o.registryHost}`);
  const cached = join(CACHE_DIR, `standin-image-${imageKey(o.arches)}`);
  if (existsSync(join(cached, "index.json"))) {
    const t = Date.now();
    const digest = await restoreImage(reg, cached);
    const importSeconds = (Date.now() - t) / 1000;
    o.log(`stand-in: pushed ${ref} (${o.arches.join(", ")}) ${digest} from cache in ${importSeconds.toFixed(1)}s`);
    return { ref, digest, arches: o.arches, rootfsSeconds: {}, importSeconds, fromCache: true };
  }
  const rootfsSeconds: Record<string, number> = {};
  // In parallel: mostly downloads (measured from scratch: amd64 37 s + arm64 70 s alone, 77 s together).
  const tars: Record<string, string> = {};
  await Promise.all(
    o.arches.map(async (a) => {
      const r = await ensureRootfs(a, o.log);
      tars[a] = r.path;
      rootfsSeconds[a] = r.seconds;
    }),
  );
  const t0 = Date.now();
  mkdirSync(o.workDir, { recursive: true });
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    ...buildahEnv(join(o.workDir, "storage"), o.registriesConf, join(o.workDir, "tmp")),
  };
  const logFile = join(o.workDir, "publish.log");
  const b = (...args: string[]) => sh("buildah", args, { env, logFile, capture: true }).then((s) => s.trim());
  const list = `localhost/e2e-standin-list:${STANDIN_TAG}`;
  await b("manifest", "create", list);
  for (const a of o.arches) {
    const ctr = await b("from", "scratch");
    await b("add", ctr, tars[a]!, "/");
    await b(
      "config",
      "--arch", a,
      "--os", "linux",
      "--env", "LAMBDA_TASK_ROOT=/var/task",
      "--env", "LAMBDA_RUNTIME_DIR=/var/runtime",
      "--env", "LANG=C.UTF-8",
      "--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "--workingdir", "/var/task",
      "--entrypoint", '["/lambda-entrypoint.sh"]',
      "--label", `e2e.standin.rootfs=${rootfsKey(a)}`,
      ctr,
    ); // prettier-ignore
    const img = `localhost/e2e-standin:${a}`;
    // --timestamp 0: the same rootfs gives the same digests on every run.
    await b("commit", "--format", "docker", "--timestamp", "0", "--rm", ctr, img);
    await b("manifest", "add", "--arch", a, "--os", "linux", list, img);
  }
  const digestFile = join(o.workDir, "standin.digest");
  await b("manifest", "push", "--all", "--format", "v2s2", "--tls-verify=false", "--digestfile", digestFile, list, `docker://${ref}`);
  const digest = readFileSync(digestFile, "utf8").trim();
  const importSeconds = (Date.now() - t0) / 1000;
  o.log(`stand-in: pushed ${ref} (${o.arches.join(", ")}) ${digest} in ${importSeconds.toFixed(1)}s`);
  await dumpImage(reg, cached);
  return { ref, digest, arches: o.arches, rootfsSeconds, importSeconds, fromCache: false };
}
