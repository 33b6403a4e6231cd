import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import { contextRelative, type SelectedFile } from "../selection/select.ts";
import { archiveLayout, STAGED_OUTSIDE_DOCKERFILE } from "../manifest/spec.ts";
import type { AnalyzedImage } from "../analyze.ts";
import { hashFileHere, workerPool } from "../worker-pool.ts";
import { markCacheUsed } from "./cache-prune.ts";
import { crc32, streamStore, temporaryStreamStore, type DeflatedStream, type StreamStore } from "./deflate-streams.ts";

/** Every entry gets the same timestamp, so the same files always give the same bytes. */
// Local time: zip stores DOS times without a zone, read as local time (as fflate wrote them).
const FIXED_MTIME = new Date(1980, 0, 1, 0, 0, 0);
const FILE_MODE = 0o100644;
const EXECUTABLE_MODE = 0o100755;
const SYMLINK_MODE = 0o120777;

export interface ArchiveResult {
  readonly file: string;
  readonly bytes: number;
  /** Hex SHA-256 of the archive bytes. */
  readonly sha256: string;
}

/** One entry of a deterministic zip. */
export interface ZipSource {
  /** Path inside the archive (POSIX). */
  readonly path: string;
  /** File to read, for regular files. */
  readonly file?: string;
  /** SHA-256 (hex) of the file's content, when the caller knows it (else it is hashed here). */
  readonly digest?: string;
  /** Link text, for symlinks. */
  readonly linkText?: string;
  readonly executable: boolean;
}

/** Where an archive's compressed streams come from: a cache directory's store (shared by a synth's archives and kept between synths). */
export interface ArchiveOptions {
  /** The cache directory whose compressed streams to use and fill. @default a temporary store, removed afterwards */
  readonly cacheDir?: string;
  /** SHA-256 (hex) of each selected file by root-relative path, as the analysis hashed them. */
  readonly digests?: ReadonlyMap<string, string>;
  /** The Dockerfile (root-relative), for the layout of a Dockerfile outside its context. @default none: the context alone */
  readonly dockerfile?: string;
}

/**
 * Writes an image's build context as a zip whose bytes depend only on the selected files:
 * entries sorted by path, fixed timestamps, modes reduced to 644/755, symlinks stored as links.
 * Paths are relative to the build context (`context`, root-relative; "" is the root), as the
 * Dockerfile's COPY sources are.
 */
export function writeContextArchive(root: string, files: readonly SelectedFile[], outFile: string, context = "", options: ArchiveOptions = {}): Promise<ArchiveResult> {
  return Promise.resolve(writeContextArchiveSync(root, files, outFile, context, options));
}

export function writeContextArchiveSync(root: string, files: readonly SelectedFile[], outFile: string, context = "", options: ArchiveOptions = {}): ArchiveResult {
  return writeDeterministicZipSync(contextSources(root, files, context, options.digests, options.dockerfile), outFile, options);
}

/**
 * `dockerfile` (root-relative) matters only when it lies outside `context`: the archive then
 * holds the context in `context/` and the Dockerfile in `dockerfile/` (see archiveLayout).
 */
function contextSources(root: string, files: readonly SelectedFile[], context: string, digests?: ReadonlyMap<string, string>, dockerfile?: string): ZipSource[] {
  const layout = dockerfile === undefined ? undefined : archiveLayout({ dockerfile, context });
  const sources: ZipSource[] = files.map(({ entry }) => ({
    path: layout ? layout.path(entry.path) : contextRelative(context, entry.path),
    file: entry.kind === "symlink" ? undefined : path.join(root, entry.path),
    digest: entry.kind === "symlink" ? undefined : digests?.get(entry.path),
    linkText: entry.linkText,
    executable: (entry.mode & 0o111) !== 0,
  }));
  // An empty file's content, streamed like any other.
  if (layout?.emptyIgnoreFile) sources.push({ path: layout.emptyIgnoreFile, file: os.devNull, executable: false });
  return sources;
}

/** A zip entry with its compressed data located: a stream of the store, or a symlink's stored text. */
interface PlannedEntry {
  readonly name: Buffer;
  /** Whether the name needs zip's UTF-8 flag (it is not plain ASCII). */
  readonly utf8: boolean;
  readonly mode: number;
  readonly stream?: DeflatedStream;
  readonly stored?: Buffer;
  readonly crc: number;
  readonly csize: number;
  readonly size: number;
}

/** DOS time and date of the fixed timestamp, as one 32-bit word (date high). */
const DOS_TIME = (() => {
  const d = FIXED_MTIME;
  return (((d.getFullYear() - 1980) << 25) | ((d.getMonth() + 1) << 21) | (d.getDate() << 16) | (d.getHours() << 11) | (d.getMinutes() << 5) | (d.getSeconds() >> 1)) >>> 0;
})();

/** Entry names as bytes, kept for the process: archives of one synth share most of their paths. */
const names = new Map<string, Buffer>();
function nameBytes(entryPath: string): Buffer {
  let name = names.get(entryPath);
  if (!name) names.set(entryPath, (name = Buffer.from(entryPath, "utf8")));
  return name;
}

/** Locates every entry's compressed data, compressing what the store lacks (once per distinct content). */
function planEntries(sources: readonly ZipSource[], store: StreamStore): PlannedEntry[] {
  const sorted = [...sources].sort((a, b) => (a.path < b.path ? -1 : 1));
  const files = sorted.filter((s) => s.linkText === undefined);
  const streams = store.ensure(files.map((s) => ({ file: s.file!, digest: s.digest ?? hashFileHere(s.file!).toString("hex") })));
  let next = 0;
  return sorted.map((source) => {
    const name = nameBytes(source.path);
    if (name.length > 0xffff) throw new Error(`${source.path}: a path in a zip is at most 65,535 bytes`);
    const utf8 = name.length !== source.path.length;
    if (source.linkText !== undefined) {
      const stored = Buffer.from(source.linkText);
      return { name, utf8, mode: SYMLINK_MODE, stored, crc: crc32(stored), csize: stored.length, size: stored.length };
    }
    const stream = streams[next++]!;
    return { name, utf8, mode: source.executable ? EXECUTABLE_MODE : FILE_MODE, stream, crc: stream.crc, csize: stream.csize, size: stream.size };
  });
}

/**
 * A zip of the given entries, byte-identical for identical contents. Written atomically and
 * synchronously (cdktf synthesizes synchronously). Each distinct content is compressed once, on
 * the worker threads when there is enough of it, and kept by its digest in the cache directory's
 * store (see deflate-streams.ts); the archive copies the streams. Large streams are copied in
 * 1 MiB chunks, so a large file is never held in memory whole.
 *
 * The layout is the one fflate's streaming `Zip` wrote with `ZipDeflate` (level 6) and
 * `ZipPassThrough` entries: local headers without sizes (flag 8) followed by a data descriptor,
 * version 20, made by Unix (3), no extra fields, the mode in the external attributes. Archives
 * keep the bytes they had before streams were shared, so a deployed archive is not uploaded again.
 */
export function writeDeterministicZipSync(sources: readonly ZipSource[], outFile: string, options: Pick<ArchiveOptions, "cacheDir"> = {}): ArchiveResult {
  const temporary = options.cacheDir === undefined ? temporaryStreamStore() : undefined;
  try {
    const store = temporary?.store ?? streamStore(options.cacheDir!);
    try {
      return writeZip(planEntries(sources, store), store, outFile);
    } finally {
      store.close();
    }
  } finally {
    temporary?.dispose();
  }
}

function writeZip(entries: readonly PlannedEntry[], store: StreamStore, outFile: string): ArchiveResult {
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  const tmp = `${outFile}.${process.pid}.tmp`;
  const out = fs.openSync(tmp, "w");
  const hash = createHash("sha256");
  let bytes = 0;
  const buffer = Buffer.allocUnsafe(1 << 20);
  let used = 0;
  const flush = () => {
    if (!used) return;
    hash.update(buffer.subarray(0, used));
    fs.writeSync(out, buffer, 0, used);
    bytes += used;
    used = 0;
  };
  const write = (data: Uint8Array) => {
    if (data.length > buffer.length - used) flush();
    if (data.length >= buffer.length) {
      hash.update(data);
      fs.writeSync(out, data);
      bytes += data.length;
    } else {
      buffer.set(data, used);
      used += data.length;
    }
  };
  /** Room for a header of `fixed` bytes (zeroed) and a name after it, in the buffer. */
  const header = (fixed: number, name?: Buffer) => {
    const length = fixed + (name?.length ?? 0);
    if (length > buffer.length - used) flush();
    const at = used;
    // Plain stores: Buffer's fill and write methods validate their arguments, a cost per call
    // that adds up over tens of thousands of entries.
    for (let i = at; i < at + fixed; i++) buffer[i] = 0;
    if (name) buffer.set(name, at + fixed);
    used += length;
    return at;
  };
  const u16 = (at: number, value: number) => {
    buffer[at] = value & 0xff;
    buffer[at + 1] = (value >>> 8) & 0xff;
  };
  const u32 = (at: number, value: number) => {
    buffer[at] = value & 0xff;
    buffer[at + 1] = (value >>> 8) & 0xff;
    buffer[at + 2] = (value >>> 16) & 0xff;
    buffer[at + 3] = (value >>> 24) & 0xff;
  };
  try {
    const offsets: number[] = [];
    for (const e of entries) {
      offsets.push(bytes + used);
      const at = header(30, e.name);
      u32(at, 0x04034b50);
      buffer[at + 4] = 20;
      buffer[at + 6] = 8;
      buffer[at + 7] = e.utf8 ? 8 : 0;
      buffer[at + 8] = e.stream ? 8 : 0;
      u32(at + 10, DOS_TIME);
      u16(at + 26, e.name.length);
      if (e.stored) write(e.stored);
      else store.copy(e.stream!, write);
      const dd = header(16);
      u32(dd, 0x08074b50);
      u32(dd + 4, e.crc);
      u32(dd + 8, e.csize >>> 0);
      u32(dd + 12, e.size >>> 0);
    }
    const centralStart = bytes + used;
    entries.forEach((e, i) => {
      const at = header(46, e.name);
      u32(at, 0x02014b50);
      buffer[at + 4] = 20;
      buffer[at + 5] = 3;
      buffer[at + 6] = 20;
      buffer[at + 8] = 8;
      buffer[at + 9] = e.utf8 ? 8 : 0;
      buffer[at + 10] = e.stream ? 8 : 0;
      u32(at + 12, DOS_TIME);
      u32(at + 16, e.crc);
      u32(at + 20, e.csize >>> 0);
      u32(at + 24, e.size >>> 0);
      u16(at + 28, e.name.length);
      u32(at + 38, (e.mode * 0x10000) >>> 0);
      u32(at + 42, offsets[i]! >>> 0);
    });
    const centralBytes = bytes + used - centralStart;
    const end = header(22);
    u32(end, 0x06054b50);
    buffer[end + 8] = entries.length & 0xff;
    buffer[end + 9] = (entries.length >> 8) & 0xff;
    buffer[end + 10] = entries.length & 0xff;
    buffer[end + 11] = (entries.length >> 8) & 0xff;
    u32(end + 12, centralBytes >>> 0);
    u32(end + 16, centralStart >>> 0);
    flush();
  } finally {
    fs.closeSync(out);
  }
  fs.renameSync(tmp, outFile);
  return { file: outFile, bytes, sha256: hash.digest("hex") };
}

/** {@link writeDeterministicZipSync}, for callers that await. */
export async function writeDeterministicZip(sources: readonly ZipSource[], outFile: string, options: Pick<ArchiveOptions, "cacheDir"> = {}): Promise<ArchiveResult> {
  return writeDeterministicZipSync(sources, outFile, options);
}

/** Copying one file of a staged context, as plain JavaScript for the worker threads and this one: a copy with mode 644, or 755 if executable. */
const STAGE_WORK = `
const fs = require("node:fs");
const run = (i, args, shared) => {
  fs.copyFileSync(args.from[i], args.to[i]);
  fs.chmodSync(args.to[i], args.executable[i] ? 0o755 : 0o644);
  new Uint8Array(shared, 8, args.from.length)[i] = 1;
};
return { run };
`;
let stageWork: { run(i: number, args: StageArgs, shared: SharedArrayBuffer): void } | undefined;
interface StageArgs {
  readonly from: readonly string[];
  readonly to: readonly string[];
  readonly executable: readonly boolean[];
}
/** Below this many files, copying on this thread alone is as fast. */
const PARALLEL_STAGE_MIN_FILES = 64;

/**
 * Copies an image's selected files into a directory (the Docker provider's build context),
 * replacing whatever was there: the directories first, then the files.
 */
export function stageContextDirectory(root: string, files: readonly SelectedFile[], dir: string, context = "", dockerfile?: string): void {
  startStagingContextDirectory(root, files, dir, context, dockerfile).complete();
}

/**
 * {@link stageContextDirectory} in two steps: the directories are made now and the files are
 * copied by the worker threads while this thread goes on; `complete` copies what no thread has
 * taken yet, waits for the rest, and throws the first error. Without worker threads, or for a
 * few files, everything is copied now.
 */
export function startStagingContextDirectory(root: string, files: readonly SelectedFile[], dir: string, context = "", dockerfile?: string): { complete(): void } {
  fs.rmSync(dir, { recursive: true, force: true });
  const outside = dockerfile !== undefined && archiveLayout({ dockerfile, context }).contextDir !== ".";
  const made = new Set<string>();
  const args = { from: [] as string[], to: [] as string[], executable: [] as boolean[] };
  for (const { entry } of files) {
    // An outside Dockerfile goes in under a name its .dockerignore lists, which replaces the context's own.
    if (outside && contextRelative(context, entry.path) === ".dockerignore") continue;
    const target = path.join(dir, outside && entry.path === dockerfile ? STAGED_OUTSIDE_DOCKERFILE : contextRelative(context, entry.path));
    const parent = path.dirname(target);
    if (!made.has(parent)) {
      fs.mkdirSync(parent, { recursive: true });
      made.add(parent);
    }
    if (entry.kind === "symlink") fs.symlinkSync(entry.linkText!, target);
    else {
      args.from.push(path.join(root, entry.path));
      args.to.push(target);
      args.executable.push((entry.mode & 0o111) !== 0);
    }
  }
  fs.mkdirSync(dir, { recursive: true });
  if (outside) fs.writeFileSync(path.join(dir, ".dockerignore"), `${STAGED_OUTSIDE_DOCKERFILE}\n.dockerignore\n`);
  const n = args.from.length;
  const shared = new SharedArrayBuffer(8 + n);
  stageWork ??= new Function("require", STAGE_WORK)(createRequire(import.meta.url)) as typeof stageWork;
  // One copy job per directory tree: threads creating files in the same directories mostly wait
  // on each other's directory locks, so the copies run beside this thread's work, not with it.
  const threads = n >= PARALLEL_STAGE_MIN_FILES && workerPool.worthIt(Infinity) ? workerPool.startEach(STAGE_WORK, n, args, shared, stageWork!) : undefined;
  const finish = () => {
    threads?.complete();
    // What no thread did (or failed on): here, where the error is reported.
    const done = new Uint8Array(shared, 8, n);
    for (let i = 0; i < n; i++) if (done[i] !== 1) stageWork!.run(i, args, shared);
  };
  if (!threads) finish();
  let finished = !threads;
  return {
    complete: () => {
      if (finished) return;
      finished = true;
      finish();
    },
  };
}

type ArchivedImage = Pick<AnalyzedImage, "spec" | "contextHash" | "selection">;

/** Where {@link cachedContextArchive} keeps an image's archive. */
export const archiveFile = (cacheDir: string, image: ArchivedImage) =>
  path.join(cacheDir, "contexts", `${image.spec.kind}-${image.spec.name}-${image.contextHash.slice(0, 16)}.zip`);

/** The size and digest an earlier synth recorded beside an archive it kept, if the archive is still there at that size. */
function keptArchive(file: string): ArchiveResult | undefined {
  try {
    const reused = JSON.parse(fs.readFileSync(`${file}.json`, "utf8")) as ArchiveResult;
    if (reused.bytes === fs.statSync(file).size) return { ...reused, file };
  } catch {
    // Not there yet, or torn.
  }
  return undefined;
}

/**
 * The context archive of an analyzed image, kept in `cacheDir` under the hash of what it holds
 * (`contextHash`) with its size and digest beside it: an image whose context files did not change
 * reuses the file (and `plan` its size) from an earlier synth instead of compressing again, also
 * when it is rebuilt because its base image changed. A new archive takes each file's compressed
 * stream from the cache directory's store (`digests`: the analysis's, so no file is hashed twice).
 */
export function cachedContextArchive(cacheDir: string, image: ArchivedImage, root: string, digests?: ReadonlyMap<string, string>): ArchiveResult {
  const file = archiveFile(cacheDir, image);
  const sidecar = `${file}.json`;
  const kept = keptArchive(file);
  if (kept) {
    // Reused: its mtime is its last use, which pruning reads.
    markCacheUsed(file, sidecar);
    return kept;
  }
  const written = writeContextArchiveSync(root, image.selection.files, file, image.spec.context, { cacheDir, digests, dockerfile: image.spec.dockerfile });
  const tmp = `${sidecar}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(written));
  fs.renameSync(tmp, sidecar);
  markCacheUsed(file, sidecar);
  return written;
}

/**
 * Starts compressing, on the worker threads, the files of the images' archives that are not kept
 * yet, while this thread goes on (the first archive written joins in): an app that knows its
 * images up front (the images.yaml app) overlaps compressing with staging and synthesizing.
 */
export function prefetchContextArchives(cacheDir: string, images: readonly ArchivedImage[], root: string, digests: ReadonlyMap<string, string>): void {
  // Each archive once (stacks share them) and each content once.
  const archives = new Set<string>();
  const contents = new Map<string, string>();
  for (const image of images) {
    const file = archiveFile(cacheDir, image);
    if (archives.has(file)) continue;
    archives.add(file);
    if (keptArchive(file)) continue;
    for (const { entry } of image.selection.files) {
      const digest = entry.kind === "symlink" ? undefined : digests.get(entry.path);
      if (digest !== undefined && !contents.has(digest)) contents.set(digest, path.join(root, entry.path));
    }
  }
  if (contents.size) streamStore(cacheDir).prefetch([...contents].map(([digest, file]) => ({ file, digest })));
}

/**
 * Bytes of each image's context archive, as {@link cachedContextArchive} writes it, without
 * writing or compressing anything (what `plan` reports: it uploads nothing): a kept archive's
 * recorded size, else the zip's layout summed over its files' compressed sizes when the cache
 * directory's store has a stream for every one of them (an earlier synth compressed them, e.g. in
 * other archives); undefined when some file was never compressed.
 */
export function contextArchiveSizes(cacheDir: string, images: readonly ArchivedImage[], root: string, digests?: ReadonlyMap<string, string>): (number | undefined)[] {
  void root;
  const store = streamStore(cacheDir);
  return images.map((image) => {
    const kept = keptArchive(archiveFile(cacheDir, image));
    if (kept) return kept.bytes;
    if (!digests || !store.hasStreams()) return undefined;
    // The zip's layout: per entry a local header, the data, a data descriptor and a central header; then the end record.
    let bytes = 22;
    for (const { entry } of image.selection.files) {
      bytes += 30 + 16 + 46 + 2 * Buffer.byteLength(contextRelative(image.spec.context, entry.path));
      if (entry.kind === "symlink") bytes += Buffer.byteLength(entry.linkText!);
      else {
        const digest = digests.get(entry.path);
        const csize = digest === undefined ? undefined : store.knownSize(digest);
        if (csize === undefined) return undefined;
        bytes += csize;
      }
    }
    return bytes;
  });
}

/**
 * Bytes a Docker-built image's context holds: its staged files (symlinks as their target text),
 * which Docker receives as an uncompressed tar.
 */
export function dockerContextBytes(image: Pick<AnalyzedImage, "selection">): number {
  let bytes = 0;
  for (const { entry } of image.selection.files) bytes += entry.kind === "symlink" ? Buffer.byteLength(entry.linkText!) : entry.size;
  return bytes;
}
