import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import { Worker } from "node:worker_threads";

/**
 * Worker threads kept for the life of the process, for the two jobs that touch every file of a
 * large repository: hashing (the cold path) and `lstat` (the warm path's check that nothing
 * changed). Started on first use and unref'd, so they never keep the process alive. One fewer
 * than the cores: the main thread goes on with its own work while they run, and joins in.
 *
 * Synth is synchronous (cdktf's `app.synth()` is), so results come back through shared memory:
 * a job is a list of files plus a SharedArrayBuffer with a claim counter, a done counter and
 * the results. Every worker and the main thread claim files from the same counter, so whoever
 * is free takes the next one; the main thread then blocks on the done counter with
 * `Atomics.wait`. A file a worker could not handle is left unmarked and redone on the main
 * thread, which reports the error.
 */

/**
 * The work done per file and the shared-memory layout, as plain JavaScript (threads do not go
 * through tsx): evaluated in every thread and on this one, so both do exactly the same.
 */
const FILE_WORK = `
const views = (kind, shared, n) =>
  kind === "hash"
    ? { counters: new Int32Array(shared, 0, 2), status: new Uint8Array(shared, 8, n), digests: new Uint8Array(shared, 8 + n, 32 * n) }
    : {
        counters: new Int32Array(shared, 0, 2),
        mtime: new BigInt64Array(shared, 8, n),
        ctime: new BigInt64Array(shared, 8 + 8 * n, n),
        ino: new BigUint64Array(shared, 8 + 16 * n, n),
        size: new Float64Array(shared, 8 + 24 * n, n),
        mode: new Uint32Array(shared, 8 + 32 * n, n),
        type: new Uint8Array(shared, 8 + 36 * n, n),
      };
const bytes = (kind, n) => (kind === "hash" ? 8 + 33 * n : 8 + 37 * n);
// SHA-256 of a file streamed in chunks; a short read that reaches the size lstat gave is the end
// (no extra read to learn it). Throws what the file system throws.
const hashFile = (fs, createHash, chunk, file, size) => {
  const hash = createHash("sha256");
  const fd = fs.openSync(file, "r");
  try {
    let total = 0;
    for (let r = fs.readSync(fd, chunk, 0, chunk.length, null); r > 0; r = fs.readSync(fd, chunk, 0, chunk.length, null)) {
      hash.update(chunk.subarray(0, r));
      total += r;
      if (r < chunk.length && total === size) break;
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest();
};
const doOne = (fs, createHash, chunk, kind, v, files, sizes, i) => {
  if (kind === "hash") {
    v.digests.set(hashFile(fs, createHash, chunk, files[i], sizes[i]), i * 32);
    v.status[i] = 1;
    return;
  }
  const st = fs.lstatSync(files[i], { bigint: true, throwIfNoEntry: false });
  if (!st) return;
  v.mtime[i] = st.mtimeNs;
  v.ctime[i] = st.ctimeNs;
  v.ino[i] = st.ino;
  v.size[i] = Number(st.size);
  v.mode[i] = Number(st.mode);
  v.type[i] = st.isFile() ? 1 : st.isSymbolicLink() ? 2 : st.isDirectory() ? 3 : 4;
};
return { views, bytes, hashFile, doOne };
`;

const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const fs = require("node:fs");
const { views, doOne } = (() => {${FILE_WORK}})();
const chunk = Buffer.allocUnsafe(1 << 20);
const programs = new Map();
parentPort.on("message", ({ kind, files, sizes, shared, code, n: count, args }) => {
  if (kind === "each") {
    let program = programs.get(code);
    if (!program) programs.set(code, (program = new Function("require", code)(require)));
    const counters = new Int32Array(shared, 0, 2);
    for (let i = Atomics.add(counters, 0, 1); i < count; i = Atomics.add(counters, 0, 1)) {
      try {
        program.run(i, args, shared);
      } catch {
        // Unmarked: the main thread does it again and reports the error.
      }
      if (Atomics.add(counters, 1, 1) + 1 === count) Atomics.notify(counters, 1);
    }
    try {
      program.finish?.(args);
    } catch {
      // Its results are marked already.
    }
    return;
  }
  const n = files.length;
  const v = views(kind, shared, n);
  for (let i = Atomics.add(v.counters, 0, 1); i < n; i = Atomics.add(v.counters, 0, 1)) {
    try {
      doOne(fs, createHash, chunk, kind, v, files, sizes, i);
    } catch {
      // Unmarked: the main thread does it again and reports the error.
    }
    if (Atomics.add(v.counters, 1, 1) + 1 === n) Atomics.notify(v.counters, 1);
  }
});
`;

type JobKind = "hash" | "stat";
interface HashViews {
  readonly counters: Int32Array;
  readonly status: Uint8Array;
  readonly digests: Uint8Array;
}
interface StatViews {
  readonly counters: Int32Array;
  readonly mtime: BigInt64Array;
  readonly ctime: BigInt64Array;
  readonly ino: BigUint64Array;
  readonly size: Float64Array;
  readonly mode: Uint32Array;
  readonly type: Uint8Array;
}
interface FileWork {
  views(kind: "hash", shared: SharedArrayBuffer, n: number): HashViews;
  views(kind: "stat", shared: SharedArrayBuffer, n: number): StatViews;
  views(kind: JobKind, shared: SharedArrayBuffer, n: number): HashViews | StatViews;
  bytes(kind: JobKind, n: number): number;
  hashFile(fs: unknown, createHash: unknown, chunk: Buffer, file: string, size: number): Buffer;
  doOne(fs: unknown, createHash: unknown, chunk: Buffer, kind: JobKind, views: HashViews | StatViews, files: readonly string[], sizes: readonly number[] | undefined, i: number): void;
}
const work = new Function(FILE_WORK)() as FileWork;
const CHUNK = Buffer.allocUnsafe(1 << 20);

/**
 * SHA-256 of a file on this thread, streamed in 1 MiB chunks (bounded memory, and cheaper than a
 * read stream for small files). `expectedSize`, what lstat said, spares the read that would only
 * report the end. Throws what the file system throws.
 */
export function hashFileHere(file: string, expectedSize = -1): Buffer {
  return work.hashFile(fs, createHash, CHUNK, file, expectedSize);
}

/** What lstat said about a path: `type` is "file", "symlink", "directory" or "other". */
export interface FileStat {
  readonly type: "file" | "symlink" | "directory" | "other";
  readonly size: number;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
  readonly ino: bigint;
  readonly mode: number;
}

const TYPES = [undefined, "file", "symlink", "directory", "other"] as const;

/** A program for {@link WorkerPool.runEach}. */
export interface EachProgram<A> {
  run(i: number, args: A, shared: SharedArrayBuffer): void;
  finish?(args: A): void;
}

/** Below this many files (or this much content to hash), a worker thread costs more to start than it saves. */
const PARALLEL_MIN_FILES = 2000;
const PARALLEL_MIN_BYTES = 16 << 20;
/** Hashing handed to the threads as it is queued, from this many files (see worthHashing). */
const HASH_MIN_FILES = 256;

class WorkerPool {
  private workers?: Worker[];
  private readonly size = Math.min(os.availableParallelism(), 4) - 1;

  /** Whether this much work is worth handing to threads. */
  worthIt(files: number, bytes = 0): boolean {
    return this.size >= 1 && (files >= PARALLEL_MIN_FILES || bytes >= PARALLEL_MIN_BYTES);
  }

  /**
   * Whether this much hashing is worth handing to threads as soon as it is known: a cold
   * analysis goes on selecting the next image while they hash (each file is opened and read, so
   * a few hundred already keep a thread busy longer than the hand-over costs).
   */
  worthHashing(files: number, bytes = 0): boolean {
    return this.size >= 1 && (files >= HASH_MIN_FILES || bytes >= PARALLEL_MIN_BYTES);
  }

  /** Starts the threads now, when work for them is known to follow (they take ~30 ms to start, on their own cores). */
  prestart(): void {
    if (this.size >= 1) this.start();
  }

  /**
   * SHA-256 of each file, on the threads while the caller goes on. `complete` hashes what no
   * thread has claimed yet, waits for the rest, and returns every digest in hex (undefined
   * where reading failed: the caller hashes it again and reports the error).
   */
  hash(files: readonly string[], sizes: readonly number[]): { complete(): (string | undefined)[] } {
    const job = this.submit("hash", files, sizes);
    return {
      complete: () => {
        const v = job.complete() as HashViews;
        const digests = Buffer.from(v.digests.buffer, v.digests.byteOffset, v.digests.byteLength);
        return files.map((_, i) => (v.status[i] === 1 ? digests.toString("hex", i * 32, i * 32 + 32) : undefined));
      },
    };
  }

  /** `lstat` of each file, shared with the threads; undefined where it failed (the caller stats it again and reports). */
  lstat(files: readonly string[]): (FileStat | undefined)[] {
    const v = this.submit("stat", files).complete() as StatViews;
    return files.map((_, i) => {
      const type = TYPES[v.type[i]!];
      return type ? { type, size: v.size[i]!, mtimeNs: v.mtime[i]!, ctimeNs: v.ctime[i]!, ino: v.ino[i]!, mode: v.mode[i]! } : undefined;
    });
  }

  /**
   * Runs `program.run(i, args, shared)` for every i below `n`, on the threads and this one, and
   * returns when all are done. `code` is plain CommonJS: a function body, given `require`, that
   * returns `{ run }`; every thread evaluates it once. `shared` starts with two Int32 counters
   * (claimed, done) that this uses; `run` records its results after them and marks what it
   * finished, so the caller redoes (and reports) whatever a thread failed on. Each thread calls
   * `finish(args)`, if the program has one, after its last item; this thread runs `local`, the
   * same program evaluated here (the caller's instance, so it can finish it too).
   */
  runEach<A>(code: string, n: number, args: A, shared: SharedArrayBuffer, local: EachProgram<A>): void {
    this.startEach(code, n, args, shared, local).complete();
  }

  /**
   * {@link runEach} in two steps: the threads start now, while this one goes on with other work;
   * `complete` joins in (this thread takes what no thread has claimed yet) and waits for the rest.
   */
  startEach<A>(code: string, n: number, args: A, shared: SharedArrayBuffer, local: EachProgram<A>): { complete(): void } {
    const counters = new Int32Array(shared, 0, 2);
    for (const worker of this.start()) worker.postMessage({ kind: "each", code, n, args, shared });
    return {
      complete: () => {
        for (let i = Atomics.add(counters, 0, 1); i < n; i = Atomics.add(counters, 0, 1)) {
          try {
            local.run(i, args, shared);
          } catch {
            // Unmarked: the caller does it again and reports the error.
          }
          Atomics.add(counters, 1, 1);
        }
        for (let done = Atomics.load(counters, 1); done < n; done = Atomics.load(counters, 1)) Atomics.wait(counters, 1, done, 1000);
      },
    };
  }

  private start(): Worker[] {
    this.workers ??= Array.from({ length: this.size }, () => {
      // Plain CommonJS, whatever the parent runs with (tsx's loader, --input-type=module): nothing to inherit.
      const worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [] });
      worker.unref();
      return worker;
    });
    return this.workers;
  }

  /** Posts a job to every thread; `complete` claims what is left on this thread, waits, and returns the results' views. */
  private submit(kind: JobKind, files: readonly string[], sizes?: readonly number[]): { complete(): HashViews | StatViews } {
    const shared = new SharedArrayBuffer(work.bytes(kind, files.length));
    const v = work.views(kind, shared, files.length);
    for (const worker of this.start()) worker.postMessage({ kind, files, sizes, shared });
    return {
      complete: () => {
        for (let i = Atomics.add(v.counters, 0, 1); i < files.length; i = Atomics.add(v.counters, 0, 1)) {
          try {
            work.doOne(fs, createHash, CHUNK, kind, v, files, sizes, i);
          } catch {
            // Unmarked, as a thread leaves it: the caller does it again and reports the error.
          }
          Atomics.add(v.counters, 1, 1);
        }
        for (let done = Atomics.load(v.counters, 1); done < files.length; done = Atomics.load(v.counters, 1)) Atomics.wait(v.counters, 1, done, 1000);
        return v;
      },
    };
  }
}

export const workerPool = new WorkerPool();
