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
 * a job is a list of files plus a SharedArrayBuffer with a claim counter and a done counter.
 * Every worker and the main thread claim files from the same counter, so whoever is free takes
 * the next one; the main thread then blocks on the done counter with `Atomics.wait`. A file a
 * worker could not handle is left unmarked and redone on the main thread, which reports errors.
 */
const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const fs = require("node:fs");
const chunk = Buffer.allocUnsafe(1 << 20);
const claims = (counters, n, each) => {
  for (let i = Atomics.add(counters, 0, 1); i < n; i = Atomics.add(counters, 0, 1)) {
    try {
      each(i);
    } catch {
      // Unmarked: the main thread does it again and reports the error.
    }
    if (Atomics.add(counters, 1, 1) + 1 === n) Atomics.notify(counters, 1);
  }
};
parentPort.on("message", ({ kind, files, sizes, shared }) => {
  const n = files.length;
  const counters = new Int32Array(shared, 0, 2);
  if (kind === "hash") {
    const status = new Uint8Array(shared, 8, n);
    const digests = new Uint8Array(shared, 8 + n);
    claims(counters, n, (i) => {
      const hash = createHash("sha256");
      const fd = fs.openSync(files[i], "r");
      try {
        // A short read that reaches the size lstat gave is the end: no extra read to learn it.
        let total = 0;
        for (let r = fs.readSync(fd, chunk, 0, chunk.length, null); r > 0; r = fs.readSync(fd, chunk, 0, chunk.length, null)) {
          hash.update(chunk.subarray(0, r));
          total += r;
          if (r < chunk.length && total === sizes[i]) break;
        }
      } finally {
        fs.closeSync(fd);
      }
      digests.set(hash.digest(), i * 32);
      status[i] = 1;
    });
  } else {
    // The layout WorkerPool.lstat reads.
    const mtime = new BigInt64Array(shared, 8, n);
    const ctime = new BigInt64Array(shared, 8 + 8 * n, n);
    const ino = new BigUint64Array(shared, 8 + 16 * n, n);
    const size = new Float64Array(shared, 8 + 24 * n, n);
    const mode = new Uint32Array(shared, 8 + 32 * n, n);
    const type = new Uint8Array(shared, 8 + 36 * n, n);
    claims(counters, n, (i) => {
      const st = fs.lstatSync(files[i], { bigint: true, throwIfNoEntry: false });
      if (!st) return;
      mtime[i] = st.mtimeNs;
      ctime[i] = st.ctimeNs;
      ino[i] = st.ino;
      size[i] = Number(st.size);
      mode[i] = Number(st.mode);
      type[i] = st.isFile() ? 1 : st.isSymbolicLink() ? 2 : st.isDirectory() ? 3 : 4;
    });
  }
});
`;

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

/** Below this many files (or this much content to hash), a worker thread costs more to start than it saves. */
const PARALLEL_MIN_FILES = 2000;
const PARALLEL_MIN_BYTES = 16 << 20;

class WorkerPool {
  private workers?: Worker[];
  private readonly size = Math.min(os.availableParallelism(), 4) - 1;

  /** Whether this much work is worth handing to threads. */
  worthIt(files: number, bytes = 0): boolean {
    return this.size >= 1 && (files >= PARALLEL_MIN_FILES || bytes >= PARALLEL_MIN_BYTES);
  }

  /** Starts the threads now, when work for them is known to follow (they take ~30 ms to start, on their own cores). */
  prestart(): void {
    if (this.size >= 1) this.start();
  }

  /**
   * SHA-256 of each file, on the threads while the caller goes on. `complete` hashes what no
   * thread has claimed yet with `hashHere`, waits for the rest, and returns every digest
   * (undefined where a thread failed).
   */
  hash(files: readonly string[], sizes: readonly number[], hashHere: (file: string, size: number) => string): { complete(): (string | undefined)[] } {
    const n = files.length;
    const shared = new SharedArrayBuffer(8 + n * 33);
    const status = new Uint8Array(shared, 8, n);
    const digests = Buffer.from(shared, 8 + n);
    const mine = new Map<number, string>();
    const job = this.submit({ kind: "hash", files, sizes, shared }, (i) => mine.set(i, hashHere(files[i]!, sizes[i]!)));
    return {
      complete: () => {
        job.complete();
        return files.map((_, i) => mine.get(i) ?? (status[i] === 1 ? digests.toString("hex", i * 32, i * 32 + 32) : undefined));
      },
    };
  }

  /** `lstat` of each file, shared with the threads; undefined where it failed (the caller stats it again and reports). */
  lstat(files: readonly string[]): (FileStat | undefined)[] {
    const n = files.length;
    const shared = new SharedArrayBuffer(8 + n * 37);
    const mtime = new BigInt64Array(shared, 8, n);
    const ctime = new BigInt64Array(shared, 8 + 8 * n, n);
    const ino = new BigUint64Array(shared, 8 + 16 * n, n);
    const size = new Float64Array(shared, 8 + 24 * n, n);
    const mode = new Uint32Array(shared, 8 + 32 * n, n);
    const type = new Uint8Array(shared, 8 + 36 * n, n);
    const job = this.submit({ kind: "stat", files, shared }, (i) => {
      let st: fs.BigIntStats | undefined;
      try {
        st = fs.lstatSync(files[i]!, { bigint: true, throwIfNoEntry: false });
      } catch {
        // Left unmarked, like a thread's failure.
      }
      if (!st) return;
      mtime[i] = st.mtimeNs;
      ctime[i] = st.ctimeNs;
      ino[i] = st.ino;
      size[i] = Number(st.size);
      mode[i] = Number(st.mode);
      type[i] = st.isFile() ? 1 : st.isSymbolicLink() ? 2 : st.isDirectory() ? 3 : 4;
    });
    job.complete();
    return files.map((_, i) => {
      const t = TYPES[type[i]!];
      return t ? { type: t, size: size[i]!, mtimeNs: mtime[i]!, ctimeNs: ctime[i]!, ino: ino[i]!, mode: mode[i]! } : undefined;
    });
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

  /** Posts a job to every thread; `complete` claims what is left on this thread (errors here are thrown) and waits. */
  private submit(
    message: { kind: "hash" | "stat"; files: readonly string[]; sizes?: readonly number[]; shared: SharedArrayBuffer },
    here: (i: number) => void,
  ): { complete(): void } {
    const { files, shared } = message;
    const counters = new Int32Array(shared, 0, 2);
    for (const worker of this.start()) worker.postMessage(message);
    return {
      complete: () => {
        for (let i = Atomics.add(counters, 0, 1); i < files.length; i = Atomics.add(counters, 0, 1)) {
          here(i);
          Atomics.add(counters, 1, 1);
        }
        for (let done = Atomics.load(counters, 1); done < files.length; done = Atomics.load(counters, 1)) Atomics.wait(counters, 1, done, 1000);
      },
    };
  }
}

export const workerPool = new WorkerPool();
