import * as fs from "node:fs";
import { SelectionError } from "../manifest/errors.ts";
import { underRoot } from "../manifest/paths.ts";
import { workerPool } from "../worker-pool.ts";

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

/** What the walk of one repository has done so far: each directory is read at most once per synth. */
export interface WalkStats {
  readonly directoriesRead: number;
  readonly filesStatted: number;
}

/** Never part of a build context we produce, and expensive to walk. */
const ALWAYS_PRUNED = new Set([".git", ".hg", ".svn"]);

interface Listing {
  readonly subdirectories: readonly string[];
  readonly files: readonly string[];
}

/**
 * What `lstat` said about a path the walk asked "is this a directory, and what is in it?": for a
 * directory, the times and inode that change whenever an entry is added, removed or renamed in
 * it; `null` for anything else (a file, a symlink, nothing).
 */
export interface DirectorySignature {
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
  readonly ino: bigint;
}

/**
 * The one walk of a repository per synth, done lazily and shared by every image of the App: a
 * directory is read the first time an image's selection needs it, a file is `lstat`ed the first
 * time an image may select it, and neither is ever done twice. Images only enter directories
 * their sources can reach, so `node_modules` and friends are never read unless something
 * selects them.
 */
export class RepositoryIndex {
  private readonly listings = new Map<string, Listing | null>();
  private readonly signatures = new Map<string, DirectorySignature | null>();
  /** While a trace runs: every directory (or would-be directory) the walk consulted. */
  private traced?: Set<string>;
  private readonly known = new Map<string, WalkEntry>();
  private statted = 0;
  private reads = 0;

  /** @param root absolute, symlink-resolved repository root */
  constructor(readonly root: string) {}

  /** Every directory read so far (root-relative, "" is the root). */
  get directories(): ReadonlySet<string> {
    return new Set([...this.listings].filter(([, l]) => l !== null).map(([d]) => d));
  }

  /** Every file entry stat'ed so far, sorted by path. */
  get entries(): readonly WalkEntry[] {
    return [...this.known.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  get byPath(): ReadonlyMap<string, WalkEntry> {
    return this.known;
  }

  get stats(): WalkStats {
    return { directoriesRead: this.reads, filesStatted: this.statted };
  }

  /**
   * Runs `fn` and returns, beside its result, every path whose listing it consulted (directories
   * read, and paths found not to be directories) with what lstat said about each when it was
   * read: if none of them changed since, the walk would see the same names.
   */
  trace<T>(fn: () => T): { result: T; consulted: Map<string, DirectorySignature | null> } {
    const outer = this.traced;
    const traced = new Set<string>();
    this.traced = traced;
    try {
      const result = fn();
      const consulted = new Map<string, DirectorySignature | null>();
      for (const dir of traced) consulted.set(dir, this.signatures.get(dir) ?? null);
      return { result, consulted };
    } finally {
      this.traced = outer;
      if (outer) for (const dir of traced) outer.add(dir);
    }
  }

  /** What lstat says about `dir` now, in the form {@link trace} reports it. */
  signatureNow(dir: string): DirectorySignature | null {
    try {
      const st = fs.lstatSync(this.absolute(dir), { bigint: true });
      return st.isDirectory() ? { mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino } : null;
    } catch {
      return null;
    }
  }

  /** Counts these paths as consulted by the running trace, as if they were read again (they are, from memory). */
  consult(paths: readonly string[]): void {
    for (const p of paths) this.listing(p);
  }

  /** Whether `dir` is a directory the walk may enter (read once, then remembered). */
  isDirectory(dir: string): boolean {
    return this.listing(dir) !== null;
  }

  /**
   * The files at `prefix` (a file, or a directory and everything below it) that `keep` accepts,
   * entering only the directories `mayEnter` accepts, in no particular order.
   */
  collect(prefix: string, mayEnter: (dir: string) => boolean, keep: (file: string) => boolean): WalkEntry[] {
    const found: WalkEntry[] = [];
    if (prefix !== "" && this.listing(prefix) === null) {
      const entry = this.fileEntry(prefix);
      if (entry && keep(prefix)) found.push(entry);
      return found;
    }
    const pending = [prefix];
    while (pending.length > 0) {
      const dir = pending.pop()!;
      const listing = this.listing(dir);
      if (!listing) continue;
      for (const name of listing.subdirectories) {
        const rel = dir === "" ? name : `${dir}/${name}`;
        if (mayEnter(rel)) pending.push(rel);
      }
      for (const name of listing.files) {
        const rel = dir === "" ? name : `${dir}/${name}`;
        if (!keep(rel)) continue;
        const entry = this.fileEntry(rel);
        if (entry) found.push(entry);
      }
    }
    return found;
  }

  /**
   * `lstat`s these root-relative files ahead, on the worker threads beside this one, when there
   * are enough to be worth it: what {@link fileEntry} then finds for them without a system call
   * of its own. Only regular files (and sockets, FIFOs, devices) are taken; anything else, or a
   * failure, is left for fileEntry to look at and report.
   */
  statAhead(paths: readonly string[]): void {
    const wanted = paths.filter((p) => !this.known.has(p));
    if (!workerPool.worthIt(wanted.length)) return;
    const stats = workerPool.lstat(wanted.map((p) => this.absolute(p)));
    wanted.forEach((rel, i) => {
      const st = stats[i];
      if (!st || (st.type !== "file" && st.type !== "other")) return;
      this.statted++;
      this.known.set(rel, { path: rel, kind: st.type, size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino, mode: st.mode });
    });
  }

  /** The entry of one file (not a directory), or undefined when there is none. */
  fileEntry(rel: string): WalkEntry | undefined {
    const known = this.known.get(rel);
    if (known) return known;
    const abs = this.absolute(rel);
    let st: fs.BigIntStats;
    try {
      st = fs.lstatSync(abs, { bigint: true });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // Gone since its directory was read, or never there: the caller reports a missing source.
      if (code === "ENOENT" || code === "ENOTDIR") return undefined;
      throw new SelectionError(`${rel}: the file cannot be read (${code}). Fix: make it readable by the user running synth, or add it to .dockerignore`);
    }
    if (st.isDirectory()) return undefined;
    this.statted++;
    const kind = st.isSymbolicLink() ? "symlink" : st.isFile() ? "file" : "other";
    const entry: WalkEntry = {
      path: rel,
      kind,
      size: Number(st.size),
      mtimeNs: st.mtimeNs,
      ctimeNs: st.ctimeNs,
      ino: st.ino,
      mode: Number(st.mode),
      linkText: kind === "symlink" ? fs.readlinkSync(abs) : undefined,
    };
    this.known.set(rel, entry);
    return entry;
  }

  private absolute(rel: string): string {
    return underRoot(this.root, rel);
  }

  private listing(dir: string): Listing | null {
    this.traced?.add(dir);
    const known = this.listings.get(dir);
    if (known !== undefined) return known;
    let listing: Listing | null = null;
    const abs = this.absolute(dir);
    this.signatures.set(dir, null);
    try {
      // A symlink to a directory is an entry of its own (COPY copies the link), never walked into.
      // Stat'ed before it is read: a change after this moment shows in the signature next time.
      const st = fs.lstatSync(abs, { bigint: true });
      if (!st.isDirectory()) throw Object.assign(new Error("not a directory"), { code: "ENOTDIR" });
      this.signatures.set(dir, { mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino });
      // Synchronous calls: the promise API's thread-pool round trips double a warm synth's cost.
      const subdirectories: string[] = [];
      const files: string[] = [];
      this.reads++;
      for (const child of fs.readdirSync(abs, { withFileTypes: true })) {
        if (child.isDirectory()) {
          if (!ALWAYS_PRUNED.has(child.name)) subdirectories.push(child.name);
        } else files.push(child.name);
      }
      listing = { subdirectories, files };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // Not a directory (a file, a symlink, nothing): callers look for a file entry instead.
      if (code !== "ENOTDIR" && code !== "ENOENT") {
        throw new SelectionError(
          `${dir || "."}: the directory cannot be read (${code ?? (error as Error).message}). Fix: make it readable by the user running synth, or add it to .dockerignore`,
        );
      }
    }
    this.listings.set(dir, listing);
    return listing;
  }
}
