import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
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
  for (const entry of queue) {
    const digest = digestFileSync(path.join(root, entry.path));
    digests.set(entry.path, digest);
    cache?.record(entry, digest);
  }
  for (const link of links) {
    const target = await fs.promises.stat(path.join(root, link.path)).catch(() => undefined);
    // A dangling link or a link to a directory has no content of its own to hash.
    digests.set(link.path, target?.isFile() ? digestFileSync(path.join(root, link.path)) : "-");
  }
  return digests;
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
