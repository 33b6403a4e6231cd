// Local services for the e2e: a real OCI registry (Debian's docker-registry = distribution v2.8)
// and an S3 server (s3rver), both on 127.0.0.1 with free ports, storage under a run directory.
// Everything started here is registered with `cleanup` and stopped on exit, failure or signal.
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { mkdirSync, openSync, writeFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import S3rver from "s3rver";

type Closer = () => Promise<void> | void;
const closers: Closer[] = [];
let handlersInstalled = false;

/** Registers `fn` to run (LIFO) at `runCleanup()`, process exit, SIGINT/SIGTERM or a crash. */
export function onCleanup(fn: Closer): void {
  closers.push(fn);
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(sig, () => {
      process.stderr.write(`e2e: ${sig}: stopping builds and services\n`);
      void runCleanup().finally(() => process.exit(128 + (sig === "SIGINT" ? 2 : sig === "SIGTERM" ? 15 : 1)));
    });
  }
  // Last resort for synchronous exits: kill child processes we know of.
  process.once("exit", () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  });
}

export async function runCleanup(): Promise<void> {
  while (closers.length) {
    const fn = closers.pop()!;
    try {
      await fn();
    } catch (err) {
      process.stderr.write(`e2e cleanup: ${(err as Error).message}\n`);
    }
  }
}

const children = new Set<ChildProcess>();

/** Kills `child` (SIGKILL) if it is still running when the process exits. */
export function trackChild(child: ChildProcess): void {
  children.add(child);
  child.once("exit", () => children.delete(child));
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function waitFor(url: string, timeoutMs: number, child?: ChildProcess, logFile?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) break;
    try {
      const res = await fetch(url);
      if (res.ok) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const log = logFile ? `\n${readFileSync(logFile, "utf8").split("\n").slice(-20).join("\n")}` : "";
  throw new Error(`service at ${url} did not come up (${last})${log}`);
}

export interface Registry {
  /** `127.0.0.1:PORT`, the registry host part of image references. */
  host: string;
  /** `http://127.0.0.1:PORT` */
  url: string;
  close(): Promise<void>;
}

/**
 * Starts `docker-registry serve CONFIG` (not the Debian system service) with filesystem storage in
 * `dir/data`, deletes enabled, no auth, plain http on loopback.
 */
export async function startRegistry(dir: string): Promise<Registry> {
  mkdirSync(join(dir, "data"), { recursive: true });
  const port = await freePort();
  const config = join(dir, "config.yml");
  writeFileSync(
    config,
    [
      "version: 0.1",
      "log:",
      "  level: warn",
      "  accesslog:",
      "    disabled: true",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${join(dir, "data")}`,
      "  delete:",
      "    enabled: true",
      "http:",
      `  addr: 127.0.0.1:${port}`,
      // A fixed secret silences the "generated random secret" warning; loopback only.
      "  secret: e2e-local-registry",
      "",
    ].join("\n"),
  );
  const logFile = join(dir, "registry.log");
  const out = openSync(logFile, "a");
  const child = spawn("docker-registry", ["serve", config], { stdio: ["ignore", out, out] });
  children.add(child);
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    child.kill("SIGTERM");
    const t = setTimeout(() => child.kill("SIGKILL"), 3000);
    await exited;
    clearTimeout(t);
    children.delete(child);
  };
  onCleanup(stop);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/v2/`, 10_000, child, logFile);
  return { host: `127.0.0.1:${port}`, url, close: stop };
}

export interface S3Server {
  endpoint: string;
  close(): Promise<void>;
}

/** s3rver in-process on 127.0.0.1:free port, data in `dir`, the given buckets created. */
export async function startS3(dir: string, buckets: string[]): Promise<S3Server> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const server = new S3rver({
    address: "127.0.0.1",
    port,
    silent: true,
    directory: dir,
    configureBuckets: buckets.map((name) => ({ name, configs: [] })),
    // The SDK's virtual-hosted style would need DNS for BUCKET.127.0.0.1; clients use path style.
    vhostBuckets: false,
  });
  await server.run();
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await server.close();
  };
  onCleanup(close);
  return { endpoint: `http://127.0.0.1:${port}`, close };
}
