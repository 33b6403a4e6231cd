import * as fs from "node:fs";
import * as path from "node:path";

/**
 * Normalizes a user-written path relative to the repository root into a POSIX path with no
 * leading `./`. Returns an error message instead when it is absolute or leaves the root.
 */
export function normalizeRelative(p: string): { path: string } | { error: string } {
  if (p.includes("\0")) return { error: "contains a NUL byte" };
  if (path.posix.isAbsolute(p) || path.win32.isAbsolute(p)) return { error: `"${p}" is absolute` };
  const normalized = path.posix.normalize(p.replace(/\\/g, "/"));
  if (normalized === ".." || normalized.startsWith("../")) return { error: `"${p}" leaves the repository root` };
  return { path: normalized === "." ? "" : normalized.replace(/\/+$/, "") };
}

/** True when `real` (an absolute, symlink-resolved path) lies inside `root` (likewise). */
export function isInside(root: string, real: string): boolean {
  const rel = path.relative(root, real);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

/**
 * Resolves a root-relative path on disk, following symlinks, and checks it stays inside the
 * root. Returns the stat of the target, or an error message.
 */
export function statInside(root: string, rel: string): { stat: fs.Stats } | { error: string } {
  const abs = path.join(root, rel);
  let real: string;
  try {
    real = fs.realpathSync(abs);
  } catch {
    return { error: `"${rel}" does not exist` };
  }
  if (!isInside(root, real)) return { error: `"${rel}" resolves outside the repository root (to ${real})` };
  return { stat: fs.statSync(real) };
}

/**
 * `root/rel` for a clean root-relative POSIX path ("" is the root itself), joined without
 * path.join's normalizing: the walk and the hashing do this tens of thousands of times.
 */
export function underRoot(root: string, rel: string): string {
  return rel === "" ? root : `${root}/${rel}`;
}

/** The nearest directory at or above `from` holding a package.json; `from` itself when there is none. */
export function packageRootOf(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, "package.json"))) return dir;
    if (path.dirname(dir) === dir) return from;
  }
}
