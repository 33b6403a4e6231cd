import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Worker } from "node:worker_threads";
import type { WalkEntry } from "../selection/walk.ts";
import { SelectionError } from "../manifest/errors.ts";
import type { SelectionCache } from "./analysis-cache.ts";

/** Remembers file digests between synths, keyed by what stat says about the file. */
export interface DigestCache {
  /** The digest recorded for this exact (path, size, mtime, inode, mode), if it can be trusted. */
  lookup(entry: WalkEntry): string | undefined;
  record(entry: WalkEntry, digest: string): void;
  /** The warm path's selection cache kept beside the digests, when there is one. */
  readonly selection?: SelectionCache;
}

/**
 * SHA-256 of each regular file's content, streamed, each file read at most once. A symlink to a
 * regular file gets its target's digest too: a COPY of the link copies the target's content.
 * Digests already in `into` are not computed again (the App-wide memo of one synth).
 */
export function digestFilesSync(root: string, entries: Iterable<WalkEntry>, cache?: DigestCache, into = new Map<string, string>()): Map<string, string> {
  const digests = into;
  const queue: WalkEntry[] = [];
  const links: WalkEntry[] = [];
  for (const entry of entries) {
    if (digests.has(entry.path)) continue;
    if (entry.kind === "symlink") {
      digests.set(entry.path, "");
      links.push(entry);
      continue;
    }
    if (entry.kind !== "file") continue;
    const cached = cache?.lookup(entry);
    if (cached) digests.set(entry.path, cached);
    else {
      digests.set(entry.path, "");
      queue.push(entry);
    }
  }
  const files = queue.map((e) => path.join(root, e.path));
  const hashed = digestInParallel(files, queue.reduce((sum, e) => sum + e.size, 0));
  queue.forEach((entry, i) => {
    digests.set(entry.path, hashed[i]!);
    cache?.record(entry, hashed[i]!);
  });
  for (const link of links) {
    let target: fs.Stats | undefined;
    try {
      target = fs.statSync(path.join(root, link.path));
    } catch {
      // A dangling link has no content of its own to hash.
    }
    digests.set(link.path, target?.isFile() ? digestFileSync(path.join(root, link.path)) : "-");
  }
  return digests;
}

/** {@link digestFilesSync}, for callers that await. */
export async function digestFiles(root: string, entries: Iterable<WalkEntry>, cache?: DigestCache): Promise<Map<string, string>> {
  return digestFilesSync(root, entries, cache);
}

/** Below this much content a worker thread costs more to start than it saves. */
const PARALLEL_MIN_BYTES = 16 << 20;

/**
 * The same chunked hashing, as plain CommonJS for worker threads (they do not go through tsx).
 * Each worker writes its raw digests into shared memory and flips its flag: the main thread
 * blocks on the flags, so a synchronous synth (cdktf's `app.synth()` is) still uses every core.
 */
const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const fs = require("node:fs");
const { files, out, flags, slot } = workerData;
const digests = new Uint8Array(out);
const flag = new Int32Array(flags);
const chunk = Buffer.allocUnsafe(1 << 20);
try {
  files.forEach((file, i) => {
    const hash = createHash("sha256");
    const fd = fs.openSync(file, "r");
    try {
      for (let n = fs.readSync(fd, chunk, 0, chunk.length, null); n > 0; n = fs.readSync(fd, chunk, 0, chunk.length, null)) hash.update(chunk.subarray(0, n));
    } finally {
      fs.closeSync(fd);
    }
    digests.set(hash.digest(), i * 32);
  });
  Atomics.store(flag, slot, 1);
} catch (error) {
  Atomics.store(flag, slot, 2);
}
Atomics.notify(flag, slot);
`;

/**
 * Digests of many files, spread over the machine's cores when there is enough to read: a cold
 * synth (every CI run, every Terraform Cloud run) is bound by hashing.
 */
function digestInParallel(files: readonly string[], totalBytes: number): string[] {
  const threads = Math.min(os.availableParallelism(), 4);
  if (threads < 2 || totalBytes < PARALLEL_MIN_BYTES || files.length < threads) return files.map(digestFileSync);
  // Deal files round-robin: sizes in a repository are mixed enough for an even split.
  const shares = Array.from({ length: threads }, (_, t) => files.filter((_, i) => i % threads === t));
  const flags = new Int32Array(new SharedArrayBuffer(4 * threads));
  const outputs = shares.map((share) => new SharedArrayBuffer(32 * share.length));
  const workers = shares.slice(1).map((share, w) => {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { files: share, out: outputs[w + 1], flags: flags.buffer, slot: w + 1 } });
    worker.unref();
    return worker;
  });
  const results: string[][] = [shares[0]!.map(digestFileSync)];
  for (let t = 1; t < threads; t++) {
    while (Atomics.load(flags, t) === 0) Atomics.wait(flags, t, 0, 1000);
    // A worker that failed (a file unreadable there) leaves its share to this thread, which reports the error.
    const raw = Buffer.from(outputs[t]!);
    results.push(Atomics.load(flags, t) === 1 ? shares[t]!.map((_, i) => raw.subarray(i * 32, i * 32 + 32).toString("hex")) : shares[t]!.map(digestFileSync));
  }
  void Promise.all(workers.map((w) => w.terminate()));
  return files.map((_, i) => results[i % threads]![Math.floor(i / threads)]!);
}

const CHUNK = Buffer.allocUnsafe(1 << 20);

/**
 * Streams a file through SHA-256 in 1 MiB chunks with plain reads: bounded memory like a read
 * stream, without a stream's per-file setup, which costs more than hashing a small file.
 */
export function digestFileSync(file: string): string {
  const hash = createHash("sha256");
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new SelectionError(`${file}: the file cannot be read (${code}). Fix: make it readable by the user running synth, or add it to .dockerignore`);
  }
  try {
    for (let n = fs.readSync(fd, CHUNK, 0, CHUNK.length, null); n > 0; n = fs.readSync(fd, CHUNK, 0, CHUNK.length, null)) {
      hash.update(CHUNK.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest("hex");
}
