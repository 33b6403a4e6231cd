import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createRequire } from "node:module";
import { workerPool } from "../worker-pool.ts";

/**
 * Compressed streams of file contents, kept by content digest.
 *
 * A zip entry is an independent deflate stream, so a file's compressed bytes depend only on its
 * content and the deflate settings, never on the archive it goes in. Each distinct content is
 * compressed once (in a run: in memory; across runs: in `<cacheDir>/deflate-<settings>/`), and
 * every archive that holds it copies the stream. Compressing is fflate's JavaScript deflate,
 * level 6, fed 1 MiB chunks (the chunking shapes its blocks): pure JavaScript, so the bytes do
 * not depend on the zlib a Node was built with, and exactly what archives held before this
 * store existed.
 *
 * An entry is the compressed stream followed by a fixed trailer naming the settings, the
 * content's SHA-256, sizes, CRC-32 and the SHA-256 of the stream. Entries are written to a
 * temporary name and renamed (atomic: concurrent synths each write a whole entry, and the last
 * rename wins with identical bytes). A reader trusts an entry only if its trailer names these
 * settings and this content, its stream hashes to the recorded SHA-256 and, for an entry another
 * process wrote, the stream inflates to content with the expected size, SHA-256 and CRC-32.
 * Anything else is compressed again and rewritten: a cache never makes an archive wrong.
 */

const CHUNK = 1 << 20;
const LEVEL = 6;
const MAGIC = "LIDFLT01";
export const TRAILER_BYTES = 128;
/** Streams up to this size are kept in memory once read; larger ones are copied from their entry file. */
const IN_MEMORY_MAX = 1 << 20;
/** At most this much stream data is kept in memory per store (beyond it, entries are read again when needed). */
const MEMORY_BUDGET = 256 << 20;

const localRequire = createRequire(import.meta.url);
let fflatePath: string | undefined;
const fflateFile = () => (fflatePath ??= localRequire.resolve("fflate"));
let fflateVersion: string | undefined;
function libraryVersion(): string {
  if (fflateVersion) return fflateVersion;
  // The package.json beside the resolved entry (lib/node.cjs → ../package.json).
  let dir = path.dirname(fflateFile());
  for (let i = 0; i < 4; i++, dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "fflate" && pkg.version) return (fflateVersion = pkg.version);
    } catch {
      // Keep looking up.
    }
  }
  return (fflateVersion = "unknown");
}

/** What the compressed bytes depend on besides the content: the deflater, its version, its level and how it is fed. */
export function deflateSettings(): string {
  return `fflate@${libraryVersion()} deflate level=${LEVEL} chunk=${CHUNK} trailer=${MAGIC}`;
}

/**
 * The work on one file, as plain JavaScript: evaluated on worker threads (which do not go through
 * tsx) and on this thread alike, so both write exactly the same entries.
 */
export const DEFLATE_WORK = `
const fs = require("node:fs");
const zlib = require("node:zlib");
const { createHash, randomBytes } = require("node:crypto");
const { threadId } = require("node:worker_threads");
let table;
const crc32 = zlib.crc32
  ? (data, crc) => zlib.crc32(data, crc)
  : (data, crc) => {
      if (!table) {
        table = new Int32Array(256);
        for (let n = 0; n < 256; n++) {
          let c = n;
          for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
          table[n] = c;
        }
      }
      let c = ~crc;
      for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]) & 0xff] ^ (c >>> 8);
      return ~c >>> 0;
    };
const libs = new Map();
/**
 * Compresses a file into the entry file \`out\`, atomically. Throws if the file cannot be read or
 * its content no longer hashes to \`digest\` (it changed since it was hashed).
 */
const deflateToEntry = (lib, file, digest, out, settingsHash) => {
  let fflate = libs.get(lib);
  if (!fflate) libs.set(lib, (fflate = require(lib)));
  const fd = fs.openSync(file, "r");
  const tmp = out + "." + process.pid + "-" + threadId + "-" + randomBytes(4).toString("hex") + ".tmp";
  let outFd = -1;
  try {
    const size = fs.fstatSync(fd).size;
    const content = createHash("sha256");
    const stream = createHash("sha256");
    let crc = 0;
    let csize = 0;
    outFd = fs.openSync(tmp, "w");
    const deflater = new fflate.Deflate({ level: ${LEVEL} }, (data) => {
      stream.update(data);
      csize += data.length;
      fs.writeSync(outFd, data);
    });
    if (size === 0) deflater.push(new Uint8Array(0), true);
    let offset = 0;
    while (offset < size) {
      // A fresh buffer per chunk, filled whole: the deflater's blocks depend on how it is fed.
      const chunk = Buffer.allocUnsafe(Math.min(${CHUNK}, size - offset));
      let filled = 0;
      while (filled < chunk.length) {
        const n = fs.readSync(fd, chunk, filled, chunk.length - filled, offset + filled);
        if (n === 0) throw new Error(file + " shrank while it was archived");
        filled += n;
      }
      offset += filled;
      content.update(chunk);
      crc = crc32(chunk, crc);
      deflater.push(chunk, offset >= size);
    }
    const actual = content.digest("hex");
    if (actual !== digest) throw new Error(file + " changed while it was archived (its content no longer matches the digest it was hashed with); synthesize again");
    const trailer = Buffer.alloc(${TRAILER_BYTES});
    trailer.write("${MAGIC}", 0, "latin1");
    trailer.write(settingsHash, 8, "hex");
    trailer.write(digest, 40, "hex");
    trailer.writeBigUInt64LE(BigInt(size), 72);
    trailer.writeBigUInt64LE(BigInt(csize), 80);
    trailer.writeUInt32LE(crc >>> 0, 88);
    stream.digest().copy(trailer, 96);
    fs.writeSync(outFd, trailer);
    fs.closeSync(outFd);
    outFd = -1;
    fs.renameSync(tmp, out);
    return { size, csize, crc: crc >>> 0 };
  } catch (error) {
    if (outFd >= 0) fs.closeSync(outFd);
    fs.rmSync(tmp, { force: true });
    throw error;
  } finally {
    fs.closeSync(fd);
  }
};
// Shared memory: [claim, done] counters, then per file a status byte, its stream's size and CRC-32.
const views = (shared, n) => {
  const csizeAt = 8 + Math.ceil(n / 8) * 8;
  return { status: new Uint8Array(shared, 8, n), csize: new Float64Array(shared, csizeAt, n), crc: new Uint32Array(shared, csizeAt + 8 * n, n) };
};
const bytes = (n) => 8 + Math.ceil(n / 8) * 8 + 12 * n;
const run = (i, args, shared) => {
  const v = views(shared, args.files.length);
  const r = deflateToEntry(args.lib, args.files[i], args.digests[i], args.outs[i], args.settingsHash);
  v.csize[i] = r.csize;
  v.crc[i] = r.crc;
  v.status[i] = 1;
};
return { run, views, bytes, deflateToEntry, crc32 };
`;

interface DeflateWork {
  run(i: number, args: DeflateJobArgs, shared: SharedArrayBuffer): void;
  views(shared: SharedArrayBuffer, n: number): { status: Uint8Array; csize: Float64Array; crc: Uint32Array };
  bytes(n: number): number;
  deflateToEntry(lib: string, file: string, digest: string, out: string, settingsHash: string): { size: number; csize: number; crc: number };
  crc32(data: Uint8Array, crc: number): number;
}
interface DeflateJobArgs {
  readonly lib: string;
  readonly files: readonly string[];
  readonly digests: readonly string[];
  readonly outs: readonly string[];
  readonly settingsHash: string;
}

let work: DeflateWork | undefined;
const deflateWork = () => (work ??= new Function("require", DEFLATE_WORK)(localRequire) as DeflateWork);

/** CRC-32 (zip's), the same whichever Node runs it. */
export function crc32(data: Uint8Array, crc = 0): number {
  return deflateWork().crc32(data, crc);
}

/** A file content's compressed stream, ready to copy into an archive. */
export interface DeflatedStream {
  readonly digest: string;
  /** Uncompressed size. */
  readonly size: number;
  /** Compressed size. */
  readonly csize: number;
  readonly crc: number;
  /** The entry file: the stream is its first `csize` bytes. */
  readonly file: string;
  /** The stream, when it is small enough to keep in memory. */
  data?: Buffer;
}

/** A file to have compressed: its absolute path, and the SHA-256 (hex) it was hashed to. */
export interface StreamSource {
  readonly file: string;
  readonly digest: string;
}

/** Below this much to compress, threads cost more to hand the work to than they save. */
const PARALLEL_MIN_BYTES = 1 << 20;
const PARALLEL_MIN_FILES = 8;

export interface StreamStoreStats {
  /** Streams compressed by this store (on any thread). */
  compressed: number;
  /** Streams taken from entries an earlier process wrote, after checking them. */
  reused: number;
  /** Entries found and not trusted (corrupt, other settings, other content): compressed again. */
  rejected: number;
}

/**
 * The compressed streams kept in one directory. One store per directory per process
 * ({@link streamStore}), so every archive of a synth shares what was compressed.
 */
export class StreamStore {
  readonly dir: string;
  readonly settingsHash: string;
  readonly stats: StreamStoreStats = { compressed: 0, reused: 0, rejected: 0 };
  private readonly streams = new Map<string, DeflatedStream>();
  private memory = 0;

  constructor(cacheDir: string) {
    this.settingsHash = createHash("sha256").update(deflateSettings()).digest("hex");
    this.dir = path.join(cacheDir, `deflate-${this.settingsHash.slice(0, 12)}`);
  }

  /** Where the entry of a content digest lives. */
  entryFile(digest: string): string {
    return path.join(this.dir, digest);
  }

  /**
   * The compressed stream of each source (by digest): from this process's memory, else from a
   * checked entry on disk, else compressed now, over the worker threads when there is enough.
   */
  ensure(sources: readonly StreamSource[]): DeflatedStream[] {
    const missing = new Map<string, StreamSource>();
    for (const source of sources) {
      if (this.streams.has(source.digest) || missing.has(source.digest)) continue;
      const found = this.readEntry(source.digest, false);
      if (found) {
        this.stats.reused++;
        this.remember(found);
      } else missing.set(source.digest, source);
    }
    if (missing.size) this.compress([...missing.values()]);
    return sources.map((s) => this.streams.get(s.digest)!);
  }

  /** The stream's bytes, for copying: from memory, else read from its entry file (checked). */
  read(stream: DeflatedStream): Buffer {
    if (stream.data) return stream.data;
    const fd = fs.openSync(stream.file, "r");
    try {
      const data = Buffer.allocUnsafe(stream.csize);
      let filled = 0;
      while (filled < data.length) {
        const n = fs.readSync(fd, data, filled, data.length - filled, filled);
        if (n === 0) throw new Error(`${stream.file}: compressed stream cut short`);
        filled += n;
      }
      return data;
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Copies a large stream from its entry file in chunks, without holding it in memory. */
  copy(stream: DeflatedStream, write: (chunk: Buffer) => void): void {
    if (stream.data || stream.csize <= IN_MEMORY_MAX) return write(this.read(stream));
    const fd = fs.openSync(stream.file, "r");
    try {
      const hash = createHash("sha256");
      for (let offset = 0; offset < stream.csize; ) {
        const chunk = Buffer.allocUnsafe(Math.min(CHUNK, stream.csize - offset));
        const n = fs.readSync(fd, chunk, 0, chunk.length, offset);
        if (n === 0) throw new Error(`${stream.file}: compressed stream cut short`);
        hash.update(chunk.subarray(0, n));
        write(chunk.subarray(0, n));
        offset += n;
      }
      // Checked as it was when it was first taken; a change since then is an error, never a silently wrong archive.
      const trailer = Buffer.allocUnsafe(32);
      fs.readSync(fd, trailer, 0, 32, stream.csize + 96);
      if (!hash.digest().equals(trailer)) throw new Error(`${stream.file} changed while it was copied into an archive; synthesize again`);
    } finally {
      fs.closeSync(fd);
    }
  }

  private remember(stream: DeflatedStream): void {
    if (stream.data) {
      if (this.memory + stream.data.length > MEMORY_BUDGET) stream.data = undefined;
      else this.memory += stream.data.length;
    }
    this.streams.set(stream.digest, stream);
  }

  private compress(sources: readonly StreamSource[]): void {
    fs.mkdirSync(this.dir, { recursive: true });
    const args: DeflateJobArgs = {
      lib: fflateFile(),
      files: sources.map((s) => s.file),
      digests: sources.map((s) => s.digest),
      outs: sources.map((s) => this.entryFile(s.digest)),
      settingsHash: this.settingsHash,
    };
    const w = deflateWork();
    let done: Uint8Array | undefined;
    let sizes: Float64Array | undefined;
    let crcs: Uint32Array | undefined;
    let bytes = 0;
    for (const s of sources) {
      try {
        bytes += fs.statSync(s.file).size;
      } catch {
        // Reported when it is compressed.
      }
    }
    if (sources.length >= PARALLEL_MIN_FILES && bytes >= PARALLEL_MIN_BYTES && workerPool.worthIt(Infinity)) {
      const shared = new SharedArrayBuffer(w.bytes(sources.length));
      workerPool.runEach(DEFLATE_WORK, sources.length, args, shared);
      ({ status: done, csize: sizes, crc: crcs } = w.views(shared, sources.length));
    }
    sources.forEach((source, i) => {
      let csize: number;
      let crc: number;
      if (done?.[i] === 1) {
        csize = sizes![i]!;
        crc = crcs![i]!;
      } else {
        // Not done on a thread (too little work, or it failed there): here, where an error is reported.
        ({ csize, crc } = w.deflateToEntry(args.lib, source.file, source.digest, args.outs[i]!, this.settingsHash));
      }
      this.stats.compressed++;
      const stream = this.readEntry(source.digest, true);
      if (!stream || stream.csize !== csize || stream.crc !== crc) throw new Error(`${args.outs[i]}: the compressed stream just written does not read back; is another process writing ${this.dir}?`);
      this.remember(stream);
    });
  }

  /**
   * Reads and checks an entry: its trailer names these settings and this digest, its stream has
   * the recorded SHA-256, and (unless it was just written by this process) it inflates to the
   * recorded size, content SHA-256 and CRC-32. Undefined (and counted as rejected when a file
   * was there) when any of that fails.
   */
  private readEntry(digest: string, fresh: boolean): DeflatedStream | undefined {
    const file = this.entryFile(digest);
    let fd: number;
    try {
      fd = fs.openSync(file, "r");
    } catch {
      return undefined;
    }
    try {
      const total = fs.fstatSync(fd).size;
      if (total < TRAILER_BYTES) return this.reject();
      const trailer = Buffer.allocUnsafe(TRAILER_BYTES);
      fs.readSync(fd, trailer, 0, TRAILER_BYTES, total - TRAILER_BYTES);
      if (trailer.toString("latin1", 0, 8) !== MAGIC) return this.reject();
      if (trailer.toString("hex", 8, 40) !== this.settingsHash || trailer.toString("hex", 40, 72) !== digest) return this.reject();
      const size = Number(trailer.readBigUInt64LE(72));
      const csize = Number(trailer.readBigUInt64LE(80));
      const crc = trailer.readUInt32LE(88);
      if (csize !== total - TRAILER_BYTES) return this.reject();
      const streamHash = trailer.subarray(96, 128);
      const stream: DeflatedStream = { digest, size, csize, crc, file };
      if (csize <= IN_MEMORY_MAX) {
        const data = Buffer.allocUnsafe(csize);
        if (fs.readSync(fd, data, 0, csize, 0) !== csize) return this.reject();
        if (!createHash("sha256").update(data).digest().equals(streamHash)) return this.reject();
        if (!fresh && !inflatesTo([data], size, digest, crc)) return this.reject();
        stream.data = data;
        return stream;
      }
      // Large: checked in chunks, never whole in memory.
      const hash = createHash("sha256");
      const chunks = function* () {
        for (let offset = 0; offset < csize; ) {
          const chunk = Buffer.allocUnsafe(Math.min(CHUNK, csize - offset));
          const n = fs.readSync(fd, chunk, 0, chunk.length, offset);
          if (n === 0) throw new Error("short");
          offset += n;
          hash.update(chunk.subarray(0, n));
          yield chunk.subarray(0, n);
        }
      };
      if (fresh) for (const _ of chunks()) void _;
      else if (!inflatesTo(chunks(), size, digest, crc)) return this.reject();
      if (!hash.digest().equals(streamHash)) return this.reject();
      return stream;
    } catch {
      return this.reject();
    } finally {
      fs.closeSync(fd);
    }
  }

  private reject(): undefined {
    this.stats.rejected++;
    return undefined;
  }
}

/** Whether a raw deflate stream decodes to exactly `size` bytes with this SHA-256 and CRC-32 (any correct inflater decodes a stream the same). */
function inflatesTo(chunks: Iterable<Buffer>, size: number, digest: string, crc: number): boolean {
  const hash = createHash("sha256");
  let total = 0;
  let c = 0;
  let failed = false;
  // fflate's Inflate: synchronous and streaming (bounded memory for a large entry).
  const { Inflate } = localRequire(fflateFile()) as typeof import("fflate");
  const inflater = new Inflate((data) => {
    total += data.length;
    if (total > size) failed = true;
    else {
      hash.update(data);
      c = crc32(data, c);
    }
  });
  try {
    for (const chunk of chunks) {
      inflater.push(chunk, false);
      if (failed) return false;
    }
    inflater.push(new Uint8Array(0), true);
  } catch {
    return false;
  }
  return !failed && total === size && c >>> 0 === crc && hash.digest("hex") === digest;
}

const stores = new Map<string, StreamStore>();

/** The store of a cache directory, shared by everything in this process that archives into it. */
export function streamStore(cacheDir: string): StreamStore {
  const key = path.resolve(cacheDir);
  let store = stores.get(key);
  if (!store) stores.set(key, (store = new StreamStore(key)));
  return store;
}

/** A store in a fresh temporary directory, for one archive written without a cache directory; `dispose` removes it. */
export function temporaryStreamStore(): { store: StreamStore; dispose(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `lambda-images-deflate-${randomBytes(3).toString("hex")}-`));
  return { store: new StreamStore(dir), dispose: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
