import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { WalkEntry } from "../selection/walk.ts";
import type { DigestCache } from "./digest.ts";
import { SelectionCache } from "./analysis-cache.ts";

/**
 * A persistent cache of file digests, so a synth after no change reads no file contents.
 *
 * An entry is keyed by what `lstat` says about the file: (path, size, mtime ns, ctime ns, inode,
 * mode). ctime is not in the brief's list but costs nothing and cannot be set by `touch`, so a
 * same-size edit followed by resetting the mtime still misses.
 *
 * The racy-git rule: a file modified in the same filesystem-timestamp tick as it was hashed keeps
 * its size and mtime, so its digest cannot be told apart from the new content's. An entry is
 * only trusted when its mtime and ctime are strictly older than the moment hashing started in the
 * session that wrote it (recorded in the cache file) minus {@link TIMESTAMP_MARGIN_NS}, the
 * coarsest timestamp granularity we expect (FAT's 2 s; ext4/xfs/tmpfs tick at the kernel's jiffy,
 * HFS+ and ext3 at 1 s). Entries that are too young are not even written, so a later session
 * re-hashes them; that costs one read of a file that was just edited.
 *
 * The file is binary and columnar so that loading and saving 20,000 entries takes a few ms:
 *
 *   "LIDC" | u32 version | u32 header length | header JSON | pad to 8
 *   | BigUint64[4n]: size, mtimeNs, ctimeNs, ino | Uint32[n]: mode | pad to 8 | n × 32-byte digests
 *   | paths, UTF-8, joined by NUL | SHA-256 of everything before it
 *
 * A file that is truncated, corrupt (checksum), of another version or format, or written for
 * another repository root is ignored (never trusted) and replaced on the next save. Saves are
 * atomic: a temporary file in the same directory, then rename.
 */

const MAGIC = "LIDC";
const FORMAT = "lambda-images-digest-cache";
export const CACHE_VERSION = 1;
/** 2 s: FAT's mtime granularity, the coarsest in common use; a safe bound for every other filesystem. */
export const TIMESTAMP_MARGIN_NS = 2_000_000_000n;
const COLUMNS = 4;

export interface DigestCacheOptions {
  /** Absolute, symlink-resolved repository root (`manifest.root`): the cache is per root. */
  readonly root: string;
  /** `--no-cache`. Env LAMBDA_IMAGES_NO_CACHE=1 disables it too. */
  readonly disabled?: boolean;
  /** Default: env LAMBDA_IMAGES_CACHE_DIR, else `<cwd>/node_modules/.cache/lambda-images`. */
  readonly dir?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Wall-clock time in ns (tests). */
  readonly now?: () => bigint;
  /** Where a failed save is reported; a cache problem never fails a synth. */
  readonly onWarning?: (message: string) => void;
}

export interface DigestCacheStats {
  /** Entries read from the cache file. */
  readonly loaded: number;
  readonly hits: number;
  readonly misses: number;
  readonly recorded: number;
  /** Entries written by the last save. */
  readonly saved: number;
  /** Why the cache file on disk was not used, when it was not. */
  readonly ignored?: string;
}

export interface PersistentDigestCache extends DigestCache {
  readonly enabled: boolean;
  /** The cache file, when enabled. */
  readonly file?: string;
  /** Writes the entries used or recorded in this session (atomically, synchronously). Never throws. */
  save(): void;
  stats(): DigestCacheStats;
}

interface Loaded {
  readonly count: number;
  /** size, mtimeNs, ctimeNs, ino per entry. */
  readonly stat: BigUint64Array;
  readonly modes: Uint32Array;
  readonly digests: Buffer;
  readonly index: Map<string, number>;
  /** Entries whose max(mtime, ctime) is at or after this are not trusted. */
  readonly trustBeforeNs: bigint;
}

interface Header {
  readonly format: string;
  readonly version: number;
  readonly root: string;
  readonly count: number;
  readonly pathBytes: number;
  /** Wall-clock ns when hashing started in the session that wrote the file. */
  readonly hashStartedNs: string;
  /** Wall-clock ns when the file was written. */
  readonly writtenAtNs: string;
}

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  return env.LAMBDA_IMAGES_CACHE_DIR ? path.resolve(cwd, env.LAMBDA_IMAGES_CACHE_DIR) : path.join(cwd, "node_modules", ".cache", "lambda-images");
}

/** The cache file for a repository root inside a cache directory. */
export function cacheFileFor(dir: string, root: string): string {
  return path.join(dir, `digests-${createHash("sha256").update(root).digest("hex").slice(0, 16)}.bin`);
}

const wallClockNs = () => BigInt(Date.now()) * 1_000_000n;

/** Opens (loads, synchronously: a few ms) the digest cache of a repository root. */
export function openDigestCache(options: DigestCacheOptions): PersistentDigestCache {
  const env = options.env ?? process.env;
  if (options.disabled || env.LAMBDA_IMAGES_NO_CACHE === "1" || env.LAMBDA_IMAGES_NO_CACHE === "true") return disabledCache();
  const now = options.now ?? wallClockNs;
  const warn = options.onWarning ?? ((m: string) => console.warn(`warning: ${m}`));
  const file = cacheFileFor(options.dir ?? defaultCacheDir(env, options.cwd), options.root);
  // Taken before any file of this session is read: everything hashed from here on is at least this recent.
  const sessionStartNs = now();

  const { loaded, ignored } = loadCacheFile(file, options.root);
  let hits = 0;
  let misses = 0;
  let saved = 0;
  /** path → loaded index (a hit) or a fresh entry. */
  const used = new Map<string, number | { entry: WalkEntry; digest: string }>();

  const selection = new SelectionCache({ root: options.root, dir: path.dirname(file), now, onWarning: warn });
  return {
    enabled: true,
    file,
    selection,
    lookup(entry) {
      const i = loaded?.index.get(entry.path);
      if (i === undefined || !matches(loaded!, i, entry)) {
        misses++;
        return undefined;
      }
      hits++;
      used.set(entry.path, i);
      return loaded!.digests.toString("hex", i * 32, i * 32 + 32);
    },
    record(entry, digest) {
      used.set(entry.path, { entry, digest });
    },
    save() {
      try {
        const trustBefore = sessionStartNs - TIMESTAMP_MARGIN_NS;
        const keep = [...used].filter(([, v]) => typeof v === "number" || youngest(v.entry) < trustBefore);
        // Every entry loaded was used and nothing new was learnt: the file on disk says exactly this.
        if (loaded && keep.length === loaded.count && keep.every(([, v]) => typeof v === "number")) {
          saved = keep.length;
          selection.save();
          return;
        }
        const bytes = encode(options.root, keep, loaded, sessionStartNs, now());
        fs.mkdirSync(path.dirname(file), { recursive: true });
        const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
        try {
          fs.writeFileSync(tmp, bytes);
          fs.renameSync(tmp, file);
        } catch (error) {
          fs.rmSync(tmp, { force: true });
          throw error;
        }
        saved = keep.length;
        selection.save();
      } catch (error) {
        warn(`the digest cache ${file} could not be saved (${(error as Error).message}); the next synth re-reads every file`);
      }
    },
    stats: () => ({ loaded: loaded?.count ?? 0, hits, misses, recorded: [...used.values()].filter((v) => typeof v !== "number").length, saved, ignored }),
  };
}

function disabledCache(): PersistentDigestCache {
  let misses = 0;
  return {
    enabled: false,
    lookup: () => {
      misses++;
      return undefined;
    },
    record: () => {},
    save: () => {},
    stats: () => ({ loaded: 0, hits: 0, misses, recorded: 0, saved: 0, ignored: "disabled" }),
  };
}

const youngest = (e: { mtimeNs: bigint; ctimeNs: bigint }) => (e.mtimeNs > e.ctimeNs ? e.mtimeNs : e.ctimeNs);

function matches(loaded: Loaded, i: number, entry: WalkEntry): boolean {
  const s = loaded.stat;
  const o = i * COLUMNS;
  if (s[o] !== BigInt(entry.size) || s[o + 1] !== entry.mtimeNs || s[o + 2] !== entry.ctimeNs || s[o + 3] !== entry.ino) return false;
  if (loaded.modes[i] !== entry.mode >>> 0) return false;
  return youngest(entry) < loaded.trustBeforeNs;
}

const pad8 = (n: number) => (n + 7) & ~7;

function encode(
  root: string,
  keep: readonly [string, number | { entry: WalkEntry; digest: string }][],
  loaded: Loaded | undefined,
  hashStartedNs: bigint,
  writtenAtNs: bigint,
): Buffer {
  const count = keep.length;
  const paths = Buffer.from(keep.map(([p]) => p).join("\0"), "utf8");
  const header: Header = {
    format: FORMAT,
    version: CACHE_VERSION,
    root,
    count,
    pathBytes: paths.length,
    hashStartedNs: String(hashStartedNs),
    writtenAtNs: String(writtenAtNs),
  };
  const headerBytes = Buffer.from(JSON.stringify(header), "utf8");
  const statAt = pad8(12 + headerBytes.length);
  const modesAt = statAt + count * COLUMNS * 8;
  const digestsAt = pad8(modesAt + count * 4);
  const pathsAt = digestsAt + count * 32;
  const bodyLength = pathsAt + paths.length;
  const out = Buffer.alloc(bodyLength + 32);
  out.write(MAGIC, 0, "latin1");
  out.writeUInt32LE(CACHE_VERSION, 4);
  out.writeUInt32LE(headerBytes.length, 8);
  headerBytes.copy(out, 12);
  const stat = new BigUint64Array(out.buffer, out.byteOffset + statAt, count * COLUMNS);
  const modes = new Uint32Array(out.buffer, out.byteOffset + modesAt, count);
  keep.forEach(([, v], i) => {
    const o = i * COLUMNS;
    if (typeof v === "number") {
      stat.set(loaded!.stat.subarray(v * COLUMNS, v * COLUMNS + COLUMNS), o);
      modes[i] = loaded!.modes[v]!;
      loaded!.digests.copy(out, digestsAt + i * 32, v * 32, v * 32 + 32);
    } else {
      stat[o] = BigInt(v.entry.size);
      stat[o + 1] = v.entry.mtimeNs;
      stat[o + 2] = v.entry.ctimeNs;
      stat[o + 3] = v.entry.ino;
      modes[i] = v.entry.mode >>> 0;
      if (out.write(v.digest, digestsAt + i * 32, 32, "hex") !== 32) throw new Error(`internal: bad digest for ${v.entry.path}`);
    }
  });
  paths.copy(out, pathsAt);
  createHash("sha256").update(out.subarray(0, bodyLength)).digest().copy(out, bodyLength);
  return out;
}

/** Reads and checks a cache file; any doubt means no entries, with the reason. */
export function loadCacheFile(file: string, root: string): { loaded?: Loaded; ignored?: string } {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch {
    return { ignored: "no cache file" };
  }
  const corrupt = (why: string) => ({ ignored: `corrupt (${why})` });
  if (buf.length < 12 + 32 || buf.toString("latin1", 0, 4) !== MAGIC) return { ignored: "not a digest cache file" };
  if (buf.readUInt32LE(4) !== CACHE_VERSION) return { ignored: `version ${buf.readUInt32LE(4)}, expected ${CACHE_VERSION}` };
  const bodyLength = buf.length - 32;
  const checksum = createHash("sha256").update(buf.subarray(0, bodyLength)).digest();
  if (!checksum.equals(buf.subarray(bodyLength))) return corrupt("checksum mismatch: truncated or modified");
  const headerLength = buf.readUInt32LE(8);
  let header: Header;
  try {
    header = JSON.parse(buf.toString("utf8", 12, 12 + headerLength)) as Header;
  } catch {
    return corrupt("unreadable header");
  }
  if (header.format !== FORMAT || header.version !== CACHE_VERSION) return { ignored: "another format" };
  if (header.root !== root) return { ignored: `written for another repository root (${header.root})` };
  const { count, pathBytes } = header;
  const statAt = pad8(12 + headerLength);
  const modesAt = statAt + count * COLUMNS * 8;
  const digestsAt = pad8(modesAt + count * 4);
  const pathsAt = digestsAt + count * 32;
  if (!Number.isSafeInteger(count) || count < 0 || pathsAt + pathBytes !== bodyLength) return corrupt("sizes do not add up");
  let hashStartedNs: bigint;
  try {
    hashStartedNs = BigInt(header.hashStartedNs);
    if (BigInt(header.writtenAtNs) < hashStartedNs) return corrupt("written before it was started");
  } catch {
    return corrupt("bad timestamps");
  }
  // Typed arrays need aligned offsets; a Buffer from readFileSync usually is, but not always.
  const aligned = buf.byteOffset % 8 === 0 ? buf : Buffer.from(buf);
  const stat = new BigUint64Array(aligned.buffer, aligned.byteOffset + statAt, count * COLUMNS);
  const modes = new Uint32Array(aligned.buffer, aligned.byteOffset + modesAt, count);
  const paths = count === 0 ? [] : aligned.toString("utf8", pathsAt, pathsAt + pathBytes).split("\0");
  if (paths.length !== count) return corrupt("path count mismatch");
  const index = new Map<string, number>();
  for (let i = 0; i < count; i++) index.set(paths[i]!, i);
  return {
    loaded: {
      count,
      stat,
      modes,
      digests: aligned.subarray(digestsAt, digestsAt + count * 32),
      index,
      trustBeforeNs: hashStartedNs - TIMESTAMP_MARGIN_NS,
    },
  };
}
