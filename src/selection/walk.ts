import * as fs from "node:fs";
import * as path from "node:path";

/** A path the walk found that some image may select. */
export interface WalkEntry {
  /** Root-relative POSIX path. */
  readonly path: string;
  readonly kind: "file" | "symlink" | "other";
  readonly size: number;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
  readonly ino: bigint;
  readonly mode: number;
  /** For symlinks: the raw link text. */
  readonly linkText?: string;
}

export interface RepositoryWalk {
  /** Entries sorted by path. */
  readonly entries: readonly WalkEntry[];
  readonly byPath: ReadonlyMap<string, WalkEntry>;
  /** Every directory entered (root-relative, "" is the root). */
  readonly directories: ReadonlySet<string>;
}

/** Never part of a build context we produce, and expensive to walk. */
const ALWAYS_PRUNED = new Set([".git", ".hg", ".svn"]);

/**
 * The one walk of the repository per synth. `mayEnter` prunes directories no image can select
 * (node_modules and friends are never entered unless something selects them); `mayKeep`
 * skips files no image selects, so they are not even stat'ed.
 */
export async function walkRepository(
  root: string,
  mayEnter: (dir: string) => boolean,
  mayKeep: (file: string) => boolean,
): Promise<RepositoryWalk> {
  const entries: WalkEntry[] = [];
  const directories = new Set<string>();
  // Synchronous calls: one stat per selected file is the whole cost of a warm synth, and the
  // promise API's thread-pool round trips double it.
  const pending = [""];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    directories.add(dir);
    const abs = dir === "" ? root : path.join(root, dir);
    for (const child of fs.readdirSync(abs, { withFileTypes: true })) {
      const rel = dir === "" ? child.name : `${dir}/${child.name}`;
      if (child.isDirectory()) {
        if (!ALWAYS_PRUNED.has(child.name) && mayEnter(rel)) pending.push(rel);
        continue;
      }
      if (!mayKeep(rel)) continue;
      const childAbs = path.join(abs, child.name);
      const st = fs.lstatSync(childAbs, { bigint: true });
      const kind = st.isSymbolicLink() ? "symlink" : st.isFile() ? "file" : "other";
      entries.push({
        path: rel,
        kind,
        size: Number(st.size),
        mtimeNs: st.mtimeNs,
        ctimeNs: st.ctimeNs,
        ino: st.ino,
        mode: Number(st.mode),
        linkText: kind === "symlink" ? fs.readlinkSync(childAbs) : undefined,
      });
    }
  }
  entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { entries, byPath: new Map(entries.map((e) => [e.path, e])), directories };
}

/** The walk's entries at `prefix` or below it, found by binary search in the sorted list. */
export function entriesUnder(walk: RepositoryWalk, prefix: string): readonly WalkEntry[] {
  if (prefix === "") return walk.entries;
  const below = `${prefix}/`;
  const entries = walk.entries;
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (entries[mid]!.path < below) lo = mid + 1;
    else hi = mid;
  }
  let end = lo;
  while (end < entries.length && entries[end]!.path.startsWith(below)) end++;
  const exact = walk.byPath.get(prefix);
  const range = entries.slice(lo, end);
  return exact ? [exact, ...range] : range;
}
