import * as fs from "node:fs";
import * as path from "node:path";

/**
 * Age-based pruning of the cache directory's archives, staged contexts and compressed-stream
 * packs, which would otherwise grow with every edit. An entry's mtime is its last use: a synth
 * that reuses or writes one refreshes it ({@link markCacheUsed}), and at most once a day a synth
 * removes what nobody used for the maximum age ({@link pruneCacheDaily}). Safe by construction:
 * every entry is recomputed when missing, so pruning too much costs time, never correctness.
 *
 * Two synths may share a cache directory. A pack removed while another process reads it keeps
 * working through its open descriptor (POSIX), and streams are checked again as they are copied.
 * A staged context is pruned only when its marker is older than the maximum age, and a synth
 * that reuses one refreshes the marker before linking its files; the marker goes first and the
 * directory after, since a directory without a marker is never trusted (it is staged again).
 * What is left is a race of microseconds with a synth reusing, at that very moment, an entry
 * unused for the whole maximum age; a lock file would cost every synth more than that risk.
 */

/** Entries unused for longer than this many days are removed, unless LAMBDA_IMAGES_CACHE_MAX_AGE_DAYS says otherwise. */
export const DEFAULT_CACHE_MAX_AGE_DAYS = 14;
const DAY_MS = 86_400_000;
/** A process that keeps running (a watch) refreshes an entry it keeps using this often, not on every use. */
const REFRESH_MS = 3_600_000;
/** The file whose mtime records the last pruning of a cache directory. */
export const PRUNE_STAMP = "last-prune";

/** Entries this process used or wrote, with when it last refreshed their mtimes: never pruned by this process. */
const used = new Map<string, number>();

/**
 * Records that this process uses (or wrote) cache entries, and refreshes their mtimes, at most
 * once an hour per file: pruning reads the mtime as the last use. Errors are ignored (an entry
 * removed meanwhile is recomputed next time).
 */
export function markCacheUsed(...files: string[]): void {
  const now = Date.now();
  for (const file of files) {
    const last = used.get(file);
    if (last !== undefined && now - last < REFRESH_MS) continue;
    used.set(file, now);
    try {
      const time = new Date(now);
      fs.utimesSync(file, time, time);
    } catch {
      // Gone, or not ours to touch: pruning keeps it from this process anyway.
    }
  }
}

/** Forgets what this process used, as a new process starts: for tests. */
export function forgetCacheUse(): void {
  used.clear();
}

/**
 * The maximum age in days: env LAMBDA_IMAGES_CACHE_MAX_AGE_DAYS when it is a positive number,
 * else the default. A bad value (`0`, negative, not a number) is ignored rather than failing a
 * synth over a cache setting; pruning cannot be turned off this way (a large value does that).
 */
export function cacheMaxAgeDays(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.LAMBDA_IMAGES_CACHE_MAX_AGE_DAYS?.trim();
  if (!raw) return DEFAULT_CACHE_MAX_AGE_DAYS;
  const days = Number(raw);
  return Number.isFinite(days) && days > 0 ? days : DEFAULT_CACHE_MAX_AGE_DAYS;
}

export interface PruneOptions {
  /** @default {@link cacheMaxAgeDays} of the environment */
  readonly maxAgeDays?: number;
  /** The present, in ms since the epoch. @default Date.now() */
  readonly now?: number;
}

/**
 * Prunes a cache directory unless it was pruned less than a day ago (its `last-prune` stamp):
 * the stamp is written first, so two synths finishing together do not both walk the directory.
 * Returns the removed paths, or undefined when it was not its turn. Never throws.
 */
export function pruneCacheDaily(cacheDir: string, options: PruneOptions = {}): string[] | undefined {
  const now = options.now ?? Date.now();
  const stamp = path.join(cacheDir, PRUNE_STAMP);
  try {
    if (now - fs.statSync(stamp).mtimeMs < DAY_MS) return undefined;
  } catch {
    // Never pruned.
  }
  try {
    if (!fs.lstatSync(cacheDir).isDirectory()) return undefined;
    fs.writeFileSync(stamp, "");
    fs.utimesSync(stamp, new Date(now), new Date(now));
  } catch {
    return undefined;
  }
  return pruneCache(cacheDir, (options.maxAgeDays ?? cacheMaxAgeDays()) * DAY_MS, now);
}

/** `<kind>-<name>-<hash16>.zip`, its `.json` sidecar, and their temporary files (`.<pid>.tmp`). */
const ARCHIVE = /^[A-Za-z0-9][A-Za-z0-9._-]*-[0-9a-f]{16}\.zip$/;
const SIDECAR = /^([A-Za-z0-9][A-Za-z0-9._-]*-[0-9a-f]{16}\.zip)\.json$/;
const ARCHIVE_TEMPORARY = /^[A-Za-z0-9][A-Za-z0-9._-]*-[0-9a-f]{16}\.zip(\.json)?\.\d+\.tmp$/;
/** `<name>-<hash16>` (a staged context) and its `.complete` marker. */
const STAGED = /^[A-Za-z0-9][A-Za-z0-9._-]*-[0-9a-f]{16}$/;
const STAGED_MARKER = /^([A-Za-z0-9][A-Za-z0-9._-]*-[0-9a-f]{16})\.complete$/;
/** `deflate-<settings12>/` and its packs, `<pid>-<random12>-<batch>-<thread>.pack`. */
const DEFLATE_DIR = /^deflate-[0-9a-f]{12}$/;
const PACK = /^\d+-[0-9a-f]{12}-\d+-\d+\.pack$/;

/**
 * Removes the entries of a cache directory unused for longer than `maxAgeMs` (by mtime), except
 * what this process used: archives with their sidecars, staged contexts by their markers, packs;
 * and what interrupted writes left (temporary archives, staged directories without a marker) once
 * a day old. Only names of the expected shapes, only plain files and directories (a symlink is
 * never followed), each removal on its own: one that fails (another process removed it, no
 * permission) is skipped. Returns the removed paths.
 */
export function pruneCache(cacheDir: string, maxAgeMs: number, now = Date.now()): string[] {
  const root = path.resolve(cacheDir);
  const removed: string[] = [];
  const mtime = (file: string) => {
    try {
      return fs.lstatSync(file).mtimeMs;
    } catch {
      return undefined;
    }
  };
  const older = (file: string, age: number) => {
    const time = mtime(file);
    return time !== undefined && now - time > age && !used.has(file);
  };
  const remove = (file: string) => {
    try {
      fs.rmSync(file, { recursive: true, force: true });
      removed.push(file);
      return true;
    } catch {
      return false;
    }
  };
  /** The names in a subdirectory of the cache, if it is a real directory (not a symlink). */
  const entries = (dir: string) => {
    try {
      return fs.lstatSync(dir).isDirectory() ? fs.readdirSync(dir, { withFileTypes: true }) : [];
    } catch {
      return [];
    }
  };

  const contexts = path.join(root, "contexts");
  for (const entry of entries(contexts)) {
    if (!entry.isFile()) continue;
    const file = path.join(contexts, entry.name);
    if (ARCHIVE.test(entry.name)) {
      // Both are refreshed together; the newer decides, and the sidecar goes first (either alone is never trusted).
      const sidecar = `${file}.json`;
      if (older(file, maxAgeMs) && (mtime(sidecar) === undefined || older(sidecar, maxAgeMs))) {
        if (mtime(sidecar) !== undefined) remove(sidecar);
        remove(file);
      }
    } else if (SIDECAR.test(entry.name)) {
      // A sidecar whose archive is gone.
      if (mtime(path.join(contexts, SIDECAR.exec(entry.name)![1]!)) === undefined && older(file, maxAgeMs)) remove(file);
    } else if (ARCHIVE_TEMPORARY.test(entry.name) && older(file, DAY_MS)) remove(file);
  }

  const staged = path.join(root, "staged");
  const stagedEntries = entries(staged);
  for (const entry of stagedEntries) {
    const match = STAGED_MARKER.exec(entry.name);
    if (!match || !entry.isFile()) continue;
    const marker = path.join(staged, entry.name);
    if (!older(marker, maxAgeMs)) continue;
    // The marker first: a directory without one is never reused.
    if (!remove(marker)) continue;
    const dir = path.join(staged, match[1]!);
    try {
      if (fs.lstatSync(dir).isDirectory()) remove(dir);
    } catch {
      // No directory.
    }
  }
  for (const entry of stagedEntries) {
    if (!entry.isDirectory() || !STAGED.test(entry.name)) continue;
    const dir = path.join(staged, entry.name);
    // Debris of a synth that died while staging (a fresh directory may be one being staged now).
    if (mtime(`${dir}.complete`) === undefined && older(dir, DAY_MS)) remove(dir);
  }

  for (const entry of entries(root)) {
    if (!entry.isDirectory() || !DEFLATE_DIR.test(entry.name)) continue;
    const dir = path.join(root, entry.name);
    // Spills are left to the store, which removes a day-old one when it lists its packs.
    for (const pack of entries(dir)) {
      const file = path.join(dir, pack.name);
      if (pack.isFile() && PACK.test(pack.name) && older(file, maxAgeMs)) remove(file);
    }
  }
  return removed;
}
