import * as crypto from "node:crypto";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createRequire } from "node:module";
import { workerPool } from "../worker-pool.ts";
import { markCacheUsed } from "./cache-prune.ts";

/**
 * Compressed streams of file contents, kept by content digest.
 *
 * A zip entry is an independent deflate stream, so a file's compressed bytes depend only on its
 * content and the deflate settings, never on the archive it goes in. Each distinct content is
 * compressed once (within a run, kept in memory; across runs, in `<cacheDir>/deflate-<settings>/`),
 * and every archive that holds it copies the stream. Compressing is fflate's JavaScript deflate,
 * level 6, fed 1 MiB chunks (the chunking shapes its blocks): pure JavaScript, so the bytes do
 * not depend on the zlib a Node was built with, and exactly what archives held before this store
 * existed.
 *
 * Streams are kept in packs, one file per thread per batch (a file per stream would cost a file
 * creation per source file, slow on some file systems): the streams, then an index (per stream:
 * the content's SHA-256, offset, sizes, CRC-32 and the stream's own SHA-256), then a footer naming
 * the settings and the index's SHA-256. A pack is written under a temporary name and renamed when
 * complete, so concurrent synths never see a partial one. A stream is trusted only if its pack
 * names these settings, the index is intact, the stream has its recorded SHA-256 and, for a pack
 * another process wrote, it inflates to content with the recorded size, SHA-256 (the key) and
 * CRC-32. Anything else is compressed again: a cache never makes an archive wrong.
 */

const CHUNK = 1 << 20;
const LEVEL = 6;
const MAGIC = "LIDPACK1";
/** Per stream in a pack's index: content SHA-256 (32), offset (8), compressed size (8), size (8), CRC-32 (4), pad (4), stream SHA-256 (32). */
const INDEX_ENTRY = 96;
/** A pack's footer: magic (8), settings SHA-256 (32), stream count (8), index SHA-256 (32). */
const FOOTER = 80;
/** Streams up to this size are kept in memory once read; larger ones are copied from their pack in chunks. */
const IN_MEMORY_MAX = 1 << 20;
/** A pack this process just wrote is read back in one piece up to this size (else stream by stream). */
const OWN_PACK_READ_MAX = 64 << 20;
/** At most this much stream data is kept in memory per store (beyond it, streams are read from their packs when needed). */
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
  return `fflate@${libraryVersion()} deflate level=${LEVEL} chunk=${CHUNK} format=${MAGIC}`;
}


/**
 * The work on one file, as plain JavaScript: evaluated on worker threads (which do not go through
 * tsx) and on this thread alike, so both compress exactly alike. Each thread appends the streams
 * it compresses in a batch to a spill file of its own (`<prefix>-<threadId>.spill`) and records
 * where in shared memory; this thread turns the spills into packs.
 */
export const DEFLATE_WORK = `
const fs = require("node:fs");
const zlib = require("node:zlib");
const { createHash } = require("node:crypto");
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
 * fflate, with its deflater's work arrays (a 512 KiB hash table and ~200 KiB more per stream)
 * reused and zeroed instead of allocated for every file: the same code on the same zeroed state,
 * so the same bytes, without the allocation and garbage collection that took half the time of
 * compressing a small file. Only ever used one stream at a time per thread. If fflate's source is
 * not what these edits expect (another version), fflate as it is.
 */
const loadDeflater = (lib) => {
  const { createRequire } = require("node:module");
  const path = require("node:path");
  let source = fs.readFileSync(lib, "utf8");
  const edits = [
    ["var dflt = function (dat, lvl, plvl, pre, post, st) {", "var zeroed = function (T, n, k) { var a = reused[k]; if (!a || a.length != n) a = reused[k] = new T(n); else a.fill(0); return a; };\\nvar reused = [];\\nvar dflt = function (dat, lvl, plvl, pre, post, st) {"],
    ["var prev = st.p || new u16(32768), head = st.h || new u16(msk_1 + 1);", "var prev = st.p || zeroed(u16, 32768, 0), head = st.h || zeroed(u16, msk_1 + 1, 1);"],
    ["var syms = new i32(25000);", "var syms = zeroed(i32, 25000, 2);"],
    ["this.b = new u8(98304);", "this.b = zeroed(u8, 98304, 3);"],
  ];
  for (const [from, to] of edits) {
    if (source.split(from).length !== 2) return require(lib);
    source = source.replace(from, to);
  }
  const module = { exports: {} };
  new Function("exports", "require", "module", "__filename", "__dirname", source)(module.exports, createRequire(lib), module, lib, path.dirname(lib));
  module.exports.reusesWorkArrays = true;
  return module.exports;
};
/**
 * Compresses a file, writing the stream to \`out\` from \`position\`. Throws if the file cannot be
 * read or its content no longer hashes to \`digest\` (it changed since it was hashed).
 */
const compress = (lib, file, digest, out, position) => {
  let fflate = libs.get(lib);
  if (!fflate) libs.set(lib, (fflate = loadDeflater(lib)));
  const fd = fs.openSync(file, "r");
  try {
    const size = fs.fstatSync(fd).size;
    const content = createHash("sha256");
    const stream = createHash("sha256");
    let crc = 0;
    let csize = 0;
    const deflater = new fflate.Deflate({ level: ${LEVEL} }, (data) => {
      stream.update(data);
      fs.writeSync(out, data, 0, data.length, position + csize);
      csize += data.length;
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
    if (content.digest("hex") !== digest) throw new Error(file + " changed while it was archived (its content no longer has the digest it was hashed to); synthesize again");
    return { size, csize, crc: crc >>> 0, sha: stream.digest() };
  } finally {
    fs.closeSync(fd);
  }
};
// Shared memory: [claimed, done] counters, then per file: status byte, thread id, offset, compressed size, size, CRC-32, stream SHA-256.
const views = (shared, n) => {
  let at = 8 + Math.ceil(n / 8) * 8;
  const take = (Type, count) => {
    const view = new Type(shared, at, count);
    at += view.byteLength;
    return view;
  };
  return {
    status: new Uint8Array(shared, 8, n),
    offset: take(Float64Array, n),
    csize: take(Float64Array, n),
    size: take(Float64Array, n),
    thread: take(Int32Array, n),
    crc: take(Uint32Array, n),
    sha: take(Uint8Array, 32 * n),
  };
};
const bytes = (n) => 8 + Math.ceil(n / 8) * 8 + 32 * n + 8 * n + 32 * n;
const spills = new Map();
const run = (i, args, shared) => {
  let spill = spills.get(args.prefix);
  if (!spill) spills.set(args.prefix, (spill = { fd: fs.openSync(args.prefix + "-" + threadId + ".spill", "w"), end: 0 }));
  const r = compress(args.lib, args.files[i], args.digests[i], spill.fd, spill.end);
  const v = views(shared, args.files.length);
  v.offset[i] = spill.end;
  v.csize[i] = r.csize;
  v.size[i] = r.size;
  v.thread[i] = threadId;
  v.crc[i] = r.crc;
  v.sha.set(r.sha, 32 * i);
  spill.end += r.csize;
  v.status[i] = 1;
};
/** Closes this thread's spill of a batch (its streams stay in the file). */
const finish = (args) => {
  const spill = spills.get(args.prefix);
  if (spill) fs.closeSync(spill.fd);
  spills.delete(args.prefix);
};
return { run, finish, views, bytes, crc32, loadDeflater };
`;

interface DeflateViews {
  status: Uint8Array;
  offset: Float64Array;
  csize: Float64Array;
  size: Float64Array;
  thread: Int32Array;
  crc: Uint32Array;
  sha: Uint8Array;
}
interface DeflateWork {
  run(i: number, args: DeflateJobArgs, shared: SharedArrayBuffer): void;
  finish(args: DeflateJobArgs): void;
  views(shared: SharedArrayBuffer, n: number): DeflateViews;
  bytes(n: number): number;
  crc32(data: Uint8Array, crc: number): number;
  loadDeflater(lib: string): typeof import("fflate") & { reusesWorkArrays?: boolean };
}
interface DeflateJobArgs {
  readonly lib: string;
  readonly files: readonly string[];
  readonly digests: readonly string[];
  readonly prefix: string;
}

let work: DeflateWork | undefined;
const deflateWork = () => (work ??= new Function("require", DEFLATE_WORK)(localRequire) as DeflateWork);

/** The deflater the store compresses with (fflate, its work arrays reused when its source is the one expected). For tests. */
export function storeDeflater(): typeof import("fflate") & { reusesWorkArrays?: boolean } {
  return deflateWork().loadDeflater(fflateFile());
}

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
  /** The pack holding it, and where. */
  readonly pack: string;
  readonly offset: number;
  /** SHA-256 of the stream. */
  readonly sha: Buffer;
  /** The stream, when it is small enough to keep in memory. */
  data?: Buffer;
}

/** A file to have compressed: its absolute path, and the SHA-256 (hex) it was hashed to. */
export interface StreamSource {
  readonly file: string;
  readonly digest: string;
}

/** Below this much to compress, threads cost more to hand the work to than they save. */
const PARALLEL_MIN_BYTES = 256 << 10;
const PARALLEL_MIN_FILES = 8;

export interface StreamStoreStats {
  /** Streams compressed by this store (on any thread). */
  compressed: number;
  /** Streams taken from packs another process wrote, after checking them. */
  reused: number;
  /** Packs or streams found and not trusted (corrupt, other settings, other content): compressed again. */
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
  /** Streams ready to copy (checked, or compressed by this process). */
  private readonly streams = new Map<string, DeflatedStream>();
  /** Streams listed by packs on disk, not yet checked. */
  private onDisk?: Map<string, DeflatedStream>;
  /** Packs this process wrote: their streams need no inflating to be trusted. */
  private readonly ownPacks = new Set<string>();
  private readonly fds = new Map<string, number>();
  private memory = 0;
  private batches = 0;

  constructor(cacheDir: string) {
    this.settingsHash = createHash("sha256").update(deflateSettings()).digest("hex");
    this.dir = path.join(cacheDir, `deflate-${this.settingsHash.slice(0, 12)}`);
  }

  /**
   * The compressed stream of each source (by digest): from this process's memory, else from a
   * checked pack on disk, else compressed now, over the worker threads when there is enough.
   */
  ensure(sources: readonly StreamSource[]): DeflatedStream[] {
    this.settle();
    const missing = this.missing(sources);
    if (missing.length) this.compress(missing, false).finish();
    const streams = sources.map((s) => this.streams.get(s.digest)!);
    // The packs these streams come from are in use (pruning reads their mtimes as their last use).
    markCacheUsed(...new Set(streams.map((s) => s.pack)));
    return streams;
  }

  /**
   * Starts compressing what the sources lack on the worker threads only, while this thread goes
   * on (staging a Docker base's context, say); the next {@link ensure} joins in and takes the
   * streams. Nothing without worker threads.
   */
  prefetch(sources: readonly StreamSource[]): void {
    this.settle();
    if (!workerPool.worthIt(Infinity)) return;
    const missing = this.missing(sources);
    if (missing.length) this.pending = this.compress(missing, true);
  }

  private pending?: { finish(): void };

  /** Finishes a prefetch: joins the threads and turns their spills into packs. */
  private settle(): void {
    const pending = this.pending;
    this.pending = undefined;
    pending?.finish();
  }

  /** The sources (one per digest) with no stream in memory or in a checked pack. */
  private missing(sources: readonly StreamSource[]): StreamSource[] {
    const missing = new Map<string, StreamSource>();
    for (const source of sources) {
      if (this.streams.has(source.digest) || missing.has(source.digest)) continue;
      const listed = this.packed().get(source.digest);
      if (listed && this.check(listed)) {
        this.stats.reused++;
        this.remember(listed);
      } else missing.set(source.digest, source);
    }
    return [...missing.values()];
  }

  /** Whether this store has any stream, in this process or in a pack on disk (without it, no size is known). */
  hasStreams(): boolean {
    return this.streams.size > 0 || this.packed().size > 0;
  }

  /**
   * The compressed size of a content's stream, from this process's streams or the intact index of
   * a pack on disk, without reading or compressing any stream; undefined if it has none. For
   * reporting sizes only: an archive copies checked streams.
   */
  knownSize(digest: string): number | undefined {
    return (this.streams.get(digest) ?? this.packed().get(digest))?.csize;
  }

  /** Copies a stream into an archive: from memory, else from its pack in 1 MiB chunks (checked again as it is read). */
  copy(stream: DeflatedStream, write: (chunk: Buffer) => void): void {
    if (stream.data) return write(stream.data);
    const fd = this.fd(stream.pack);
    const hash = createHash("sha256");
    for (let done = 0; done < stream.csize; ) {
      const chunk = Buffer.allocUnsafe(Math.min(CHUNK, stream.csize - done));
      const n = fs.readSync(fd, chunk, 0, chunk.length, stream.offset + done);
      if (n === 0) throw new Error(`${stream.pack}: a compressed stream is cut short; synthesize again`);
      hash.update(chunk.subarray(0, n));
      write(chunk.subarray(0, n));
      done += n;
    }
    if (!hash.digest().equals(stream.sha)) throw new Error(`${stream.pack} changed while it was copied into an archive; synthesize again`);
  }

  /** Closes the packs this store has open (it opens them again when it needs them). */
  close(): void {
    for (const fd of this.fds.values()) fs.closeSync(fd);
    this.fds.clear();
  }

  private fd(pack: string): number {
    let fd = this.fds.get(pack);
    if (fd === undefined) this.fds.set(pack, (fd = fs.openSync(pack, "r")));
    return fd;
  }

  private remember(stream: DeflatedStream): void {
    if (stream.data) {
      if (this.memory + stream.data.length > MEMORY_BUDGET) stream.data = undefined;
      else this.memory += stream.data.length;
    }
    this.streams.set(stream.digest, stream);
  }

  /** The streams the packs on disk list (read once per process), from packs whose footer and index are intact and name these settings. */
  private packed(): Map<string, DeflatedStream> {
    if (this.onDisk) return this.onDisk;
    this.onDisk = new Map();
    let names: string[] = [];
    try {
      const all = fs.readdirSync(this.dir);
      names = all.filter((n) => n.endsWith(".pack")).sort();
      // A spill is a pack being written; one a day old was left by a process that died.
      for (const spill of all.filter((n) => n.endsWith(".spill"))) {
        const file = path.join(this.dir, spill);
        try {
          if (Date.now() - fs.statSync(file).mtimeMs > 86_400_000) fs.rmSync(file, { force: true });
        } catch {
          // Gone already.
        }
      }
    } catch {
      return this.onDisk;
    }
    for (const name of names) {
      const pack = path.join(this.dir, name);
      const entries = this.readIndex(pack);
      if (!entries) {
        this.stats.rejected++;
        continue;
      }
      for (const entry of entries) if (!this.onDisk.has(entry.digest)) this.onDisk.set(entry.digest, entry);
    }
    return this.onDisk;
  }

  private readIndex(pack: string): DeflatedStream[] | undefined {
    let fd: number | undefined;
    try {
      fd = fs.openSync(pack, "r");
      const total = fs.fstatSync(fd).size;
      if (total < FOOTER) return undefined;
      const footer = Buffer.allocUnsafe(FOOTER);
      fs.readSync(fd, footer, 0, FOOTER, total - FOOTER);
      if (footer.toString("latin1", 0, 8) !== MAGIC || footer.toString("hex", 8, 40) !== this.settingsHash) return undefined;
      const count = Number(footer.readBigUInt64LE(40));
      const indexAt = total - FOOTER - count * INDEX_ENTRY;
      if (indexAt < 0) return undefined;
      const index = Buffer.allocUnsafe(count * INDEX_ENTRY);
      if (fs.readSync(fd, index, 0, index.length, indexAt) !== index.length) return undefined;
      if (!createHash("sha256").update(index).digest().equals(footer.subarray(48, 80))) return undefined;
      const entries: DeflatedStream[] = [];
      for (let i = 0; i < count; i++) {
        const at = i * INDEX_ENTRY;
        const offset = Number(index.readBigUInt64LE(at + 32));
        const csize = Number(index.readBigUInt64LE(at + 40));
        if (offset + csize > indexAt) return undefined;
        entries.push({
          digest: index.toString("hex", at, at + 32),
          offset,
          csize,
          size: Number(index.readBigUInt64LE(at + 48)),
          crc: index.readUInt32LE(at + 56),
          sha: Buffer.from(index.subarray(at + 64, at + 96)),
          pack,
        });
      }
      return entries;
    } catch {
      return undefined;
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }

  /**
   * Whether a listed stream can be used: it has its recorded SHA-256 and, unless this process
   * wrote it, inflates to the recorded size, content SHA-256 and CRC-32. Small streams are kept in
   * memory after the check.
   */
  private check(stream: DeflatedStream): boolean {
    try {
      const fd = this.fd(stream.pack);
      const own = this.ownPacks.has(stream.pack);
      const hash = createHash("sha256");
      let data: Buffer | undefined;
      const chunks = function* () {
        if (stream.csize <= IN_MEMORY_MAX) {
          data = Buffer.allocUnsafe(stream.csize);
          if (fs.readSync(fd, data, 0, stream.csize, stream.offset) !== stream.csize) throw new Error("short");
          hash.update(data);
          yield data;
          return;
        }
        for (let done = 0; done < stream.csize; ) {
          const chunk = Buffer.allocUnsafe(Math.min(CHUNK, stream.csize - done));
          const n = fs.readSync(fd, chunk, 0, chunk.length, stream.offset + done);
          if (n === 0) throw new Error("short");
          done += n;
          hash.update(chunk.subarray(0, n));
          yield chunk.subarray(0, n);
        }
      };
      if (own) for (const _ of chunks()) void _;
      else if (!inflatesTo(chunks(), stream.size, stream.digest, stream.crc)) return this.reject();
      if (!hash.digest().equals(stream.sha)) return this.reject();
      stream.data = data;
      return true;
    } catch {
      return this.reject();
    }
  }

  private reject(): false {
    this.stats.rejected++;
    return false;
  }

  /** Compresses the sources into packs (one per thread that took part), then takes their streams. */
  private compress(sources: readonly StreamSource[], background: boolean): { finish(): void } {
    fs.mkdirSync(this.dir, { recursive: true });
    const prefix = path.join(this.dir, `${process.pid}-${randomBytes(6).toString("hex")}-${this.batches++}`);
    const args: DeflateJobArgs = { lib: fflateFile(), files: sources.map((s) => s.file), digests: sources.map((s) => s.digest), prefix };
    const w = deflateWork();
    const shared = new SharedArrayBuffer(w.bytes(sources.length));
    let bytes = 0;
    if (!background && sources.length >= PARALLEL_MIN_FILES) {
      for (const s of sources) {
        try {
          bytes += fs.statSync(s.file).size;
        } catch {
          // Reported when it is compressed.
        }
      }
    }
    const threads =
      (background || (sources.length >= PARALLEL_MIN_FILES && bytes >= PARALLEL_MIN_BYTES)) && workerPool.worthIt(Infinity)
        ? workerPool.startEach(DEFLATE_WORK, sources.length, args, shared, w)
        : undefined;
    return { finish: () => this.finishBatch(sources, args, shared, threads) };
  }

  /** Joins a batch's threads, compresses what they did not, and turns each thread's spill into a pack. */
  private finishBatch(sources: readonly StreamSource[], args: DeflateJobArgs, shared: SharedArrayBuffer, threads: { complete(): void } | undefined): void {
    const w = deflateWork();
    const v = w.views(shared, sources.length);
    const prefix = args.prefix;
    const spills = new Set<number>();
    try {
      threads?.complete();
      // What no thread did (too little work, or it failed there): here, where an error is reported.
      for (let i = 0; i < sources.length; i++) if (v.status[i] !== 1) w.run(i, args, shared);
      w.finish(args);
      for (let i = 0; i < sources.length; i++) spills.add(v.thread[i]!);
      // Each spill becomes a pack: its streams, the index, the footer; then renamed into place.
      for (const thread of spills) {
        const items = sources.map((_, i) => i).filter((i) => v.thread[i] === thread);
        const spill = `${prefix}-${thread}.spill`;
        const end = Math.max(...items.map((i) => v.offset[i]! + v.csize[i]!));
        const index = Buffer.alloc(items.length * INDEX_ENTRY);
        items.forEach((i, k) => {
          const at = k * INDEX_ENTRY;
          index.write(sources[i]!.digest, at, "hex");
          index.writeBigUInt64LE(BigInt(v.offset[i]!), at + 32);
          index.writeBigUInt64LE(BigInt(v.csize[i]!), at + 40);
          index.writeBigUInt64LE(BigInt(v.size[i]!), at + 48);
          index.writeUInt32LE(v.crc[i]!, at + 56);
          index.set(v.sha.subarray(32 * i, 32 * i + 32), at + 64);
        });
        const footer = Buffer.alloc(FOOTER);
        footer.write(MAGIC, 0, "latin1");
        footer.write(this.settingsHash, 8, "hex");
        footer.writeBigUInt64LE(BigInt(items.length), 40);
        createHash("sha256").update(index).digest().copy(footer, 48);
        const fd = fs.openSync(spill, "r+");
        try {
          // A stream a thread failed on may have left bytes past the last good one.
          fs.ftruncateSync(fd, end);
          fs.writeSync(fd, index, 0, index.length, end);
          fs.writeSync(fd, footer, 0, footer.length, end + index.length);
        } finally {
          fs.closeSync(fd);
        }
        const pack = `${prefix}-${thread}.pack`;
        fs.renameSync(spill, pack);
        this.ownPacks.add(pack);
        markCacheUsed(pack);
        // The streams read back in one read (not one per stream) when they fit in memory.
        const streams = end <= OWN_PACK_READ_MAX ? readRange(this.fd(pack), 0, end) : undefined;
        for (const i of items) {
          const stream: DeflatedStream = {
            digest: sources[i]!.digest,
            size: v.size[i]!,
            csize: v.csize[i]!,
            crc: v.crc[i]!,
            pack,
            offset: v.offset[i]!,
            sha: Buffer.from(v.sha.buffer, v.sha.byteOffset + 32 * i, 32),
          };
          const data = streams?.subarray(stream.offset, stream.offset + stream.csize);
          const intact = data ? sha256Of(data).equals(stream.sha) : this.check(stream);
          if (!intact) throw new Error(`${pack}: a compressed stream just written does not read back; is something else writing ${this.dir}?`);
          if (data && stream.csize <= IN_MEMORY_MAX) stream.data = data;
          this.stats.compressed++;
          this.remember(stream);
        }
      }
    } finally {
      // Spills of threads that failed (or of this batch, on an error) are not packs: never left behind.
      for (const name of fs.readdirSync(this.dir)) if (name.endsWith(".spill") && path.join(this.dir, name).startsWith(`${prefix}-`)) fs.rmSync(path.join(this.dir, name), { force: true });
    }
  }
}

/** SHA-256 of a buffer: Node's one-shot `crypto.hash` where it has it (20.12+: no Hash object per stream), else a Hash. */
const sha256Of: (data: Uint8Array) => Buffer =
  typeof crypto.hash === "function" ? (data) => crypto.hash("sha256", data, "buffer") : (data) => createHash("sha256").update(data).digest();

/** `length` bytes of a file from `position`, in one buffer; throws if the file is shorter. */
function readRange(fd: number, position: number, length: number): Buffer {
  const data = Buffer.allocUnsafe(length);
  for (let done = 0; done < length; ) {
    const n = fs.readSync(fd, data, done, length - done, position + done);
    if (n === 0) throw new Error("a pack is shorter than its index says");
    done += n;
  }
  return data;
}

/** Whether a raw deflate stream decodes to exactly `size` bytes with this SHA-256 and CRC-32 (any correct inflater decodes a stream the same). */
function inflatesTo(chunks: Iterable<Buffer>, size: number, digest: string, crc: number): boolean {
  const hash = createHash("sha256");
  let total = 0;
  let c = 0;
  let failed = false;
  // fflate's Inflate: synchronous and streaming (bounded memory for a large stream).
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

/** Forgets every store of this process (closing their packs), as a new process starts: for tests. */
export function dropStreamStores(): void {
  for (const store of stores.values()) store.close();
  stores.clear();
}

/** A store in a fresh temporary directory, for archives written without a cache directory; `dispose` removes it. */
export function temporaryStreamStore(): { store: StreamStore; dispose(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lambda-images-deflate-"));
  const store = new StreamStore(dir);
  return { store, dispose: () => (store.close(), fs.rmSync(dir, { recursive: true, force: true })) };
}
