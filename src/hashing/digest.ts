import * as fs from "node:fs";
import type { WalkEntry } from "../selection/walk.ts";
import { SelectionError } from "../manifest/errors.ts";
import { underRoot } from "../manifest/paths.ts";
import type { SelectionCache } from "./analysis-cache.ts";
import { hashFileHere, workerPool } from "../worker-pool.ts";

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
  const batch = new DigestBatch(root, cache, into);
  batch.add(entries);
  batch.finish();
  return into;
}

/** {@link digestFilesSync}, for callers that await. */
export async function digestFiles(root: string, entries: Iterable<WalkEntry>, cache?: DigestCache): Promise<Map<string, string>> {
  return digestFilesSync(root, entries, cache);
}

/**
 * Files to digest, handed over as they are found: once there is enough queued to be worth it,
 * worker threads start hashing while the caller goes on (selecting the next image, on the cold
 * path), and {@link finish} hashes what is left on this thread too and waits for the rest. Until
 * then the files' digests in `into` are "" (claimed: added twice, hashed once).
 */
export class DigestBatch {
  private readonly queue: WalkEntry[] = [];
  private readonly links: WalkEntry[] = [];
  private readonly jobs: { entries: WalkEntry[]; job: { complete(): (string | undefined)[] } }[] = [];
  private queuedFiles = 0;
  private queuedBytes = 0;

  constructor(
    private readonly root: string,
    private readonly cache: DigestCache | undefined,
    private readonly into: Map<string, string>,
  ) {}

  add(entries: Iterable<WalkEntry>): void {
    for (const entry of entries) {
      if (this.into.has(entry.path)) continue;
      if (entry.kind === "symlink") {
        this.into.set(entry.path, "");
        this.links.push(entry);
        continue;
      }
      if (entry.kind !== "file") continue;
      const cached = this.cache?.lookup(entry);
      if (cached) this.into.set(entry.path, cached);
      else {
        this.into.set(entry.path, "");
        this.queue.push(entry);
        this.queuedFiles++;
        this.queuedBytes += entry.size;
      }
    }
    // Enough to keep a worker busy for a while: hand it over now, so hashing overlaps what the caller does next.
    if (this.queue.length > 0 && workerPool.worthHashing(this.queuedFiles, this.queuedBytes)) this.dispatch();
  }

  finish(): void {
    if (this.queue.length > 0 && (this.jobs.length > 0 || workerPool.worthHashing(this.queuedFiles, this.queuedBytes))) this.dispatch();
    if (this.queue.length > 0) {
      // Too little to start a thread for: hash it here.
      for (const entry of this.queue.splice(0)) this.settle(entry, digestFileSync(this.absolute(entry.path), entry.size));
    }
    for (const { entries, job } of this.jobs.splice(0)) {
      const digests = job.complete();
      entries.forEach((entry, i) => this.settle(entry, digests[i] ?? digestFileSync(this.absolute(entry.path))));
    }
    for (const link of this.links.splice(0)) {
      let target: fs.Stats | undefined;
      try {
        target = fs.statSync(this.absolute(link.path));
      } catch {
        // A dangling link has no content of its own to hash.
      }
      this.into.set(link.path, target?.isFile() ? digestFileSync(this.absolute(link.path)) : "-");
    }
    this.queuedFiles = this.queuedBytes = 0;
  }

  private dispatch(): void {
    const entries = this.queue.splice(0);
    this.jobs.push({ entries, job: workerPool.hash(entries.map((e) => this.absolute(e.path)), entries.map((e) => e.size)) });
  }

  private absolute(rel: string): string {
    return underRoot(this.root, rel);
  }

  private settle(entry: WalkEntry, digest: string): void {
    this.into.set(entry.path, digest);
    this.cache?.record(entry, digest);
  }
}

/**
 * SHA-256 (hex) of one file on this thread, streamed; `expectedSize` is what lstat said. A file
 * that cannot be read is the user's to fix: the error says which and how.
 */
export function digestFileSync(file: string, expectedSize = -1): string {
  try {
    return hashFileHere(file, expectedSize).toString("hex");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new SelectionError(`${file}: the file cannot be read (${code}). Fix: make it readable by the user running synth, or add it to .dockerignore`);
  }
}
