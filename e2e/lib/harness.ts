// The e2e harness: one run directory under .e2e/runs/, the local registry and S3 server, the
// lambda/python stand-in pushed to the registry, and `runBuild`, which executes one buildspec with
// the CodeBuild stand-in against a source zip in S3. Phase 2 plugs `runBuild` into the fake
// CodeBuild API's build hook; nothing here knows about the synth output.
import { mkdirSync, rmSync, createWriteStream, readdirSync, statSync, readFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import yazl from "yazl";
import { buildahEnv, E2E_DIR, hostEnv, storageDriver, unmountUnder, writeRegistriesConf } from "./buildenv.ts";
import { executeBuild, type BuildHooks, type BuildResult } from "./codebuild.ts";
import { RegistryClient } from "./registry.ts";
import { onCleanup, startRegistry, startS3, type Registry, type S3Server } from "./services.ts";
import { hostArch, publishStandin, sh, type Arch, type PublishedStandin } from "./standin.ts";

export const CONTEXT_BUCKET = "e2e-contexts";

export interface HarnessOptions {
  log: (line: string) => void;
  /** Stand-in platforms to publish (default: arm64 + amd64, like the real image). */
  arches?: Arch[];
  /** "linux/arm64=linux/amd64" when foreign platforms must be built as the host's. */
  platformMap?: string;
  /** Keep each build's buildah storage (default: deleted after the build; vfs copies are large). */
  keepStorage?: boolean;
  /** Echo build log lines to the console (default: only to the build's log file). */
  echoBuildLogs?: boolean;
}

export interface BuildRun extends BuildResult {
  name: string;
  seconds: number;
  workDir: string;
  logFile: string;
}

export interface Harness {
  runDir: string;
  registry: Registry;
  s3: S3Server;
  s3client: S3Client;
  registriesConf: string;
  standin: PublishedStandin;
  reg: RegistryClient;
  timings: Record<string, number>;
  /** Executes `buildspec` against s3://CONTEXT_BUCKET/key (or bucket/key) with the given env. */
  runBuild(o: { name: string; buildspec: string; key: string; bucket?: string; env: Record<string, string>; hooks?: BuildHooks; signal?: AbortSignal }): Promise<BuildRun>;
  /** PutObject; returns the byte count. */
  upload(key: string, body: Buffer, bucket?: string): Promise<number>;
  /** Runs buildah against a private verification storage (pulls from the local registry). */
  buildah(args: string[]): Promise<string>;
}

export function s3ClientFor(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
  });
}

/** A zip of `files` (repo-relative POSIX paths, default: every file under dir), fixed mtimes. */
export async function zipDir(dir: string, files?: string[]): Promise<Buffer> {
  const list = files ?? walk(dir);
  const z = new yazl.ZipFile();
  const mtime = new Date("2000-01-01T00:00:00Z");
  for (const f of [...list].sort()) z.addBuffer(readFileSync(join(dir, f)), f, { mtime, mode: statSync(join(dir, f)).mode });
  z.end();
  const chunks: Buffer[] = [];
  for await (const c of z.outputStream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Keeps the newest `keep` run directories (names start with a sortable timestamp), and any
 * touched in the last hour (another e2e may be running in the same checkout). */
function pruneOldRuns(runsDir: string, keep: number): void {
  const runs = readdirSync(runsDir).sort();
  for (const r of runs.slice(0, Math.max(0, runs.length - keep))) {
    const dir = join(runsDir, r);
    if (Date.now() - statSync(dir).mtimeMs < 3600_000) continue;
    unmountUnder(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}

function walk(dir: string, root = dir): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p, root));
    else if (e.isFile()) out.push(relative(root, p).split(sep).join("/"));
  }
  return out;
}

export async function startHarness(o: HarnessOptions): Promise<Harness> {
  const timings: Record<string, number> = {};
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "");
  const runDir = join(E2E_DIR, "runs", `${stamp}-${process.pid}`);
  mkdirSync(runDir, { recursive: true });
  pruneOldRuns(join(E2E_DIR, "runs"), 3);
  // Runs last (cleanups are LIFO): after the registry has stopped. Overlay mounts of a killed
  // build must not outlive the run; the large stores go unless E2E_KEEP, the logs stay.
  onCleanup(() => {
    unmountUnder(runDir);
    if (!o.keepStorage) {
      for (const d of ["verify-storage", "registry/data", "standin"]) rmSync(join(runDir, d), { recursive: true, force: true });
    }
  });
  o.log(`e2e: run directory ${relative(process.cwd(), runDir)}, buildah storage driver ${storageDriver()}`);

  let t = Date.now();
  const registry = await startRegistry(join(runDir, "registry"));
  const s3 = await startS3(join(runDir, "s3"), [CONTEXT_BUCKET]);
  timings.services = (Date.now() - t) / 1000;
  o.log(`e2e: registry ${registry.url}, S3 ${s3.endpoint} (${timings.services.toFixed(1)}s)`);
  const s3client = s3ClientFor(s3.endpoint);
  const registriesConf = writeRegistriesConf(join(runDir, "containers"), registry.host);

  t = Date.now();
  const arches = o.arches ?? (o.platformMap ? [hostArch()] : ["arm64", "amd64"]);
  const standin = await publishStandin({ registryHost: registry.host, registriesConf, arches, workDir: join(runDir, "standin"), log: o.log });
  timings.standin = (Date.now() - t) / 1000;
  // The stand-in's own storage is not needed once pushed.
  if (!o.keepStorage) {
    unmountUnder(join(runDir, "standin", "storage"));
    rmSync(join(runDir, "standin", "storage"), { recursive: true, force: true });
  }

  const reg = new RegistryClient(registry.url);
  let buildSeq = 0;
  // Builds still running when the e2e is interrupted: their shell process groups get killed.
  const active = new Set<AbortController>();
  onCleanup(() => {
    for (const ac of active) ac.abort();
  });
  const verifyEnv: Record<string, string> = {
    ...(process.env as Record<string, string>),
    ...buildahEnv(join(runDir, "verify-storage"), registriesConf, join(runDir, "verify-storage", "tmp")),
  };

  const harness: Harness = {
    runDir,
    registry,
    s3,
    s3client,
    registriesConf,
    standin,
    reg,
    timings,
    async upload(key, body, bucket = CONTEXT_BUCKET) {
      await s3client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
      return body.length;
    },
    async runBuild(b) {
      const seq = ++buildSeq;
      const workDir = join(runDir, "builds", `${String(seq).padStart(2, "0")}-${b.name.replace(/[^\w.-]+/g, "_")}`);
      mkdirSync(workDir, { recursive: true });
      const logFile = join(workDir, "build.log");
      const logStream = createWriteStream(logFile);
      const env = hostEnv({
        registryHost: registry.host,
        registriesConf,
        storageRoot: join(workDir, "storage"),
        tmpDir: join(workDir, "tmp"),
        platformMap: o.platformMap,
      });
      const t0 = Date.now();
      const ac = new AbortController();
      const forward = () => ac.abort();
      b.signal?.addEventListener("abort", forward, { once: true });
      active.add(ac);
      const result = await executeBuild(
        {
          buildId: `${b.name}:${seq}`,
          buildspec: b.buildspec,
          source: { kind: "s3", client: s3client, bucket: b.bucket ?? CONTEXT_BUCKET, key: b.key },
          env: { AWS_REGION: "us-east-1", AWS_DEFAULT_REGION: "us-east-1", ...b.env },
          workDir,
          hostEnv: env,
          signal: ac.signal,
        },
        {
          ...b.hooks,
          log(line, timestamp) {
            logStream.write(`${((timestamp - t0) / 1000).toFixed(1).padStart(6)}s ${line}\n`);
            if (o.echoBuildLogs) o.log(`  [${b.name}] ${line}`);
            b.hooks?.log?.(line, timestamp);
          },
        },
      );
      active.delete(ac);
      b.signal?.removeEventListener("abort", forward);
      await new Promise<void>((r) => logStream.end(() => r()));
      const seconds = (Date.now() - t0) / 1000;
      if (!o.keepStorage) {
        unmountUnder(join(workDir, "storage"));
        rmSync(join(workDir, "storage"), { recursive: true, force: true });
        rmSync(join(workDir, "tmp"), { recursive: true, force: true });
        rmSync(join(workDir, "src"), { recursive: true, force: true });
      }
      return { ...result, name: b.name, seconds, workDir, logFile };
    },
    buildah(args) {
      return sh("buildah", args, { env: verifyEnv, logFile: join(runDir, "verify.log"), capture: true });
    },
  };
  return harness;
}
