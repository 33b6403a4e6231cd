import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Worker } from "node:worker_threads";
import type { WalkEntry } from "../selection/walk.ts";

/** Remembers file digests between synths, keyed by what stat says about the file. */
export interface DigestCache {
  /** The digest recorded for this exact (path, size, mtime, inode, mode), if it can be trusted. */
  lookup(entry: WalkEntry): string | undefined;
  record(entry: WalkEntry, digest: string): void;
}

/**
 * SHA-256 of each regular file's content, streamed, each file read at most once. A symlink to a
 * regular file gets its target's digest too: a COPY of the link copies the target's content.
 */
export async function digestFiles(root: string, entries: Iterable<WalkEntry>, cache?: DigestCache): Promise<Map<string, string>> {
  const digests = new Map<string, string>();
  const queue: WalkEntry[] = [];
  const links: WalkEntry[] = [];
  for (const entry of entries) {
    if (entry.kind === "symlink" && !digests.has(entry.path)) {
      digests.set(entry.path, "");
      links.push(entry);
    }
    if (entry.kind !== "file" || digests.has(entry.path)) continue;
    const cached = cache?.lookup(entry);
    if (cached) digests.set(entry.path, cached);
    else {
      digests.set(entry.path, "");
      queue.push(entry);
    }
  }
  const files = queue.map((e) => path.join(root, e.path));
  const hashed = await digestInParallel(files, queue.reduce((sum, e) => sum + e.size, 0));
  queue.forEach((entry, i) => {
    digests.set(entry.path, hashed[i]!);
    cache?.record(entry, hashed[i]!);
  });
  for (const link of links) {
    const target = await fs.promises.stat(path.join(root, link.path)).catch(() => undefined);
    // A dangling link or a link to a directory has no content of its own to hash.
    digests.set(link.path, target?.isFile() ? digestFileSync(path.join(root, link.path)) : "-");
  }
  return digests;
}

/** Below this much content a worker thread costs more to start than it saves. */
const PARALLEL_MIN_BYTES = 16 << 20;

/** The same chunked hashing, as plain CommonJS for worker threads (they do not go through tsx). */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const fs = require("node:fs");
const chunk = Buffer.allocUnsafe(1 << 20);
parentPort.postMessage(workerData.map((file) => {
  const hash = createHash("sha256");
  const fd = fs.openSync(file, "r");
  try {
    for (let n = fs.readSync(fd, chunk, 0, chunk.length, null); n > 0; n = fs.readSync(fd, chunk, 0, chunk.length, null)) hash.update(chunk.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest("hex");
}));
`;

/**
 * Digests of many files, spread over the machine's cores when there is enough to read: a cold
 * synth (every CI run, every Terraform Cloud run) is bound by hashing.
 */
async function digestInParallel(files: readonly string[], totalBytes: number): Promise<string[]> {
  const threads = Math.min(os.availableParallelism(), 4);
  if (threads < 2 || totalBytes < PARALLEL_MIN_BYTES || files.length < threads) return files.map(digestFileSync);
  // Deal files round-robin: sizes in a repository are mixed enough for an even split.
  const shares = Array.from({ length: threads }, (_, t) => files.filter((_, i) => i % threads === t));
  const workers = shares.slice(1).map(
    (share) =>
      new Promise<string[]>((resolve, reject) => {
        const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: share });
        worker.once("message", resolve).once("error", reject);
      }),
  );
  const results = [shares[0]!.map(digestFileSync), ...(await Promise.all(workers))];
  return files.map((_, i) => results[i % threads]![Math.floor(i / threads)]!);
}

const CHUNK = Buffer.allocUnsafe(1 << 20);

/**
 * Streams a file through SHA-256 in 1 MiB chunks with plain reads: bounded memory like a read
 * stream, without a stream's per-file setup, which costs more than hashing a small file.
 */
export function digestFileSync(file: string): string {
  const hash = createHash("sha256");
  const fd = fs.openSync(file, "r");
  try {
    for (let n = fs.readSync(fd, CHUNK, 0, CHUNK.length, null); n > 0; n = fs.readSync(fd, CHUNK, 0, CHUNK.length, null)) {
      hash.update(CHUNK.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest("hex");
}
