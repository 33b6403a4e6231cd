import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import type { DirectorySignature, RepositoryIndex, WalkEntry } from "../selection/walk.ts";
import type { ImageSelection, SelectedFile } from "../selection/select.ts";
import type { DigestCache } from "./digest.ts";
import { TIMESTAMP_MARGIN_NS } from "./cache.ts";

/**
 * The warm path's selection cache, like git's untracked cache: what an image selected, and the
 * hash that came out, kept with what the walk consulted to get there. A later synth reuses it
 * only when all of these still hold:
 *
 * - the image's inputs (the analyzer's key: spec, base image hash, provided packages) are equal;
 * - the Dockerfile's text and the `.dockerignore` that applies (which candidate exists, and its
 *   text) are equal;
 * - every directory the walk read for it has the same mtime, ctime and inode (adding, removing or
 *   renaming an entry changes them), and every path it found not to be a directory still is not;
 * - every selected file is still a regular file with the executable bit and the content digest
 *   this record was made with: the digest comes from the digest cache (same size, mtime, ctime,
 *   inode and mode as when it was hashed; an edit that restores the mtime still changes ctime) or
 *   from this session, when another image hashed it again. Both the bit and the digest are
 *   compared, since together they are what the image hash reads of a file (a `chmod +x` alone
 *   changes the image: Docker keeps file modes);
 * - the code that selects and hashes is the same (its files' contents are part of the key).
 *
 * The racy-git rule applies to directories as to files: a record is only written when every
 * directory it depends on was last changed more than {@link TIMESTAMP_MARGIN_NS} before this
 * session began, since a change in the same timestamp tick would leave its times unchanged.
 * Images with symlinks or git tags are not cached (their hashes read more than stat shows).
 */

const FORMAT = "lambda-images-selection-cache";
const VERSION = 3;

/** What of an image's selection the cache keeps: all of it but the spec it was made for. */
export type CachedSelection = Omit<ImageSelection, "image">;

/** An image the cache vouches for: its selection, buildspec and hashes as the last synth made them. */
export interface ReusedImage {
  readonly selection: CachedSelection;
  readonly buildspec: string | undefined;
  readonly hash: string;
  readonly contextHash: string;
}

export interface ImageRecordInput {
  readonly key: string;
  readonly selection: CachedSelection;
  readonly ignore: IgnoreState;
  readonly buildspec: string | undefined;
  readonly consulted: ReadonlyMap<string, DirectorySignature | null>;
  readonly digests: ReadonlyMap<string, string>;
  readonly hash: string;
  readonly contextHash: string;
}

/** Which `.dockerignore` candidates exist, and the text of the one that applies. */
export interface IgnoreState {
  readonly file: string | null;
  readonly sha256: string | null;
}

interface StoredImage {
  readonly dockerfile: string;
  readonly ignore: IgnoreState;
  readonly buildspec: string | null;
  /** Indexes into `dirs` (signatures) and `nondirs`. */
  readonly dirs: number[];
  readonly nondirs: number[];
  /** Indexes into `paths` (their digests then are in `digests`). */
  readonly files: number[];
  readonly hash: string;
  readonly contextHash: string;
  readonly sourcePatterns: readonly string[];
  readonly excludedPackages: readonly string[];
  readonly warnings: readonly string[];
}

interface StoredFile {
  readonly format: string;
  readonly version: number;
  readonly root: string;
  readonly code: string;
  readonly paths: string[];
  /** Per path: the file's {@link fileState} when the records were made ("" for directories). */
  readonly digests: string[];
  /** [path index, mtime ns, ctime ns, inode] as strings. */
  readonly dirs: [number, string, string, string][];
  readonly images: Record<string, StoredImage>;
}

export interface SelectionCacheOptions {
  readonly root: string;
  readonly dir: string;
  readonly now?: () => bigint;
  readonly onWarning?: (message: string) => void;
}

export interface SelectionCacheStats {
  readonly reused: number;
  readonly recorded: number;
  readonly ignored?: string;
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
const wallClockNs = () => BigInt(Date.now()) * 1_000_000n;

/** The selection cache of one repository root. */
export class SelectionCache {
  readonly file: string;
  private readonly stored?: StoredFile;
  private readonly ignored?: string;
  private readonly sessionStartNs: bigint;
  private readonly fresh = new Map<string, { input: ImageRecordInput; trusted: boolean }>();
  private readonly kept = new Set<string>();
  /** Directory checks of this session, shared by the images that consulted the same directories. */
  private readonly dirOk = new Map<number, boolean>();
  private readonly nondirOk = new Map<number, boolean>();
  /** By path index: the file as checked this session, or null when it changed. */
  private readonly fileOk: (SelectedFile | null | undefined)[] = [];
  private reusedCount = 0;
  private statted = false;

  constructor(private readonly options: SelectionCacheOptions) {
    this.sessionStartNs = (options.now ?? wallClockNs)();
    this.file = path.join(options.dir, `selection-${sha256(options.root).slice(0, 16)}.json`);
    let text: string | undefined;
    try {
      text = fs.readFileSync(this.file, "utf8");
    } catch {
      this.ignored = "no cache file";
    }
    if (text !== undefined) {
      try {
        const data = JSON.parse(text) as StoredFile;
        if (data.format !== FORMAT || data.version !== VERSION) this.ignored = "another format";
        else if (data.root !== options.root) this.ignored = "another root";
        else if (data.code !== codeFingerprint()) this.ignored = "written by other code";
        else this.stored = data;
      } catch {
        this.ignored = "unreadable";
      }
    }
  }

  /** Whether a previous session's selections were loaded (the warm path may reuse them). */
  get warm(): boolean {
    return this.stored !== undefined;
  }

  stats(): SelectionCacheStats {
    return { reused: this.reusedCount, recorded: [...this.fresh.values()].filter((f) => f.trusted).length, ignored: this.ignored };
  }

  /**
   * The previous selection and hash of the image with this key, when nothing it depends on
   * changed; fills `digests` with its files' digests. `undefined` means: analyze it.
   */
  reuse(
    key: string,
    index: RepositoryIndex,
    dockerfile: string,
    ignore: IgnoreState,
    cache: DigestCache,
    digests: Map<string, string>,
  ): ReusedImage | undefined {
    const stored = this.stored;
    const image = stored?.images[sha256(key)];
    if (!stored || !image) return undefined;
    if (image.ignore.file !== ignore.file || image.ignore.sha256 !== ignore.sha256) return undefined;
    for (const d of image.nondirs) {
      let ok = this.nondirOk.get(d);
      if (ok === undefined) this.nondirOk.set(d, (ok = index.signatureNow(stored.paths[d]!) === null));
      if (!ok) return undefined;
    }
    for (const d of image.dirs) {
      let ok = this.dirOk.get(d);
      if (ok === undefined) {
        const [p, mtime, ctime, ino] = stored.dirs[d]!;
        const now = index.signatureNow(stored.paths[p]!);
        ok = now !== null && String(now.mtimeNs) === mtime && String(now.ctimeNs) === ctime && String(now.ino) === ino;
        this.dirOk.set(d, ok);
      }
      if (!ok) return undefined;
    }
    this.statAhead(index);
    const files: SelectedFile[] = new Array(image.files.length);
    for (let n = 0; n < image.files.length; n++) {
      const i = image.files[n]!;
      // Each path is checked once per session, however many images select it.
      let file = this.fileOk[i];
      if (file === undefined) {
        const entry = index.fileEntry(stored.paths[i]!);
        const digest = entry?.kind === "file" ? digests.get(entry.path) || cache.lookup(entry) : undefined;
        file = entry && digest && fileState(entry, digest) === stored.digests[i] ? { entry } : null;
        this.fileOk[i] = file;
      }
      if (file === null) return undefined;
      files[n] = file;
    }
    // The Dockerfile is one of the files whose digest matched, so this is the text hashed then.
    const dockerfileText = readText(index.root, files, dockerfile);
    if (dockerfileText === undefined || image.dockerfile !== sha256(dockerfileText)) return undefined;
    for (const n of image.files) if (!digests.has(stored.paths[n]!)) digests.set(stored.paths[n]!, stored.digests[n]!.slice(2));
    this.kept.add(sha256(key));
    this.reusedCount++;
    // The buildspec is rendered from the spec, the Dockerfile and the left-out packages, all unchanged, by unchanged code.
    const { sourcePatterns, excludedPackages, warnings } = image;
    return { selection: { files, dockerfileText, sourcePatterns, excludedPackages, warnings }, buildspec: image.buildspec ?? undefined, hash: image.hash, contextHash: image.contextHash };
  }

  /**
   * Once per session, before the first file check: every file the stored records name is
   * `lstat`ed at once, spread over the cores (git status preloads its index the same way). At
   * scale these checks are most of the warm path.
   */
  private statAhead(index: RepositoryIndex): void {
    if (this.statted || !this.stored) return;
    this.statted = true;
    const referenced = new Set<number>();
    for (const image of Object.values(this.stored.images)) for (const i of image.files) referenced.add(i);
    index.statAhead([...referenced].map((i) => this.stored!.paths[i]!));
  }

  /** Remembers a fresh analysis, for the next session. */
  record(input: ImageRecordInput): void {
    const trustBefore = this.sessionStartNs - TIMESTAMP_MARGIN_NS;
    const young = (s: DirectorySignature) => s.mtimeNs >= trustBefore || s.ctimeNs >= trustBefore;
    const trusted = input.selection.files.every((f) => f.entry.kind === "file") && [...input.consulted.values()].every((s) => s === null || !young(s));
    this.fresh.set(sha256(input.key), { input, trusted });
  }

  /** Writes the records reused or made in this session (atomically). Never throws. */
  save(): void {
    // Every stored record was reused and none was made: the file on disk says exactly this.
    const stored = this.stored;
    if (stored && this.fresh.size === 0 && this.kept.size === Object.keys(stored.images).length) return;
    try {
      const paths: string[] = [];
      const fileDigests: string[] = [];
      const pathIndex = new Map<string, number>();
      const pathOf = (p: string, digest = "") => {
        let i = pathIndex.get(p);
        if (i === undefined) {
          i = paths.length;
          paths.push(p);
          fileDigests.push(digest);
          pathIndex.set(p, i);
        } else if (digest) fileDigests[i] = digest;
        return i;
      };
      const dirs: StoredFile["dirs"] = [];
      const dirIndex = new Map<string, number>();
      const dirOf = (p: string, s: DirectorySignature) => {
        const row: StoredFile["dirs"][number] = [pathOf(p), String(s.mtimeNs), String(s.ctimeNs), String(s.ino)];
        const k = row.join(":");
        let i = dirIndex.get(k);
        if (i === undefined) {
          i = dirs.length;
          dirs.push(row);
          dirIndex.set(k, i);
        }
        return i;
      };
      const images: Record<string, StoredImage> = {};
      for (const [id, { input, trusted }] of this.fresh) {
        if (!trusted) continue;
        const consulted = [...input.consulted];
        const { selection } = input;
        images[id] = {
          dockerfile: sha256(selection.dockerfileText),
          ignore: input.ignore,
          buildspec: input.buildspec ?? null,
          dirs: consulted.filter(([, s]) => s !== null).map(([p, s]) => dirOf(p, s!)),
          nondirs: consulted.filter(([, s]) => s === null).map(([p]) => pathOf(p)),
          files: selection.files.map((f) => pathOf(f.entry.path, fileState(f.entry, input.digests.get(f.entry.path)!))),
          hash: input.hash,
          contextHash: input.contextHash,
          sourcePatterns: selection.sourcePatterns,
          excludedPackages: selection.excludedPackages,
          warnings: selection.warnings,
        };
      }
      // Records reused unchanged keep their paths and signatures: re-index them into this file's tables.
      for (const id of this.kept) {
        if (images[id] || !this.stored) continue;
        const old = this.stored.images[id]!;
        images[id] = {
          ...old,
          dirs: old.dirs.map((d) => {
            const [p, m, c, n] = this.stored!.dirs[d]!;
            return dirOf(this.stored!.paths[p]!, { mtimeNs: BigInt(m), ctimeNs: BigInt(c), ino: BigInt(n) });
          }),
          nondirs: old.nondirs.map((p) => pathOf(this.stored!.paths[p]!)),
          files: old.files.map((p) => pathOf(this.stored!.paths[p]!, this.stored!.digests[p]!)),
        };
      }
      const data: StoredFile = { format: FORMAT, version: VERSION, root: this.options.root, code: codeFingerprint(), paths, digests: fileDigests, dirs, images };
      fs.mkdirSync(path.dirname(this.file), { recursive: true });
      const tmp = `${this.file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
      try {
        fs.writeFileSync(tmp, JSON.stringify(data));
        fs.renameSync(tmp, this.file);
      } catch (error) {
        fs.rmSync(tmp, { force: true });
        throw error;
      }
    } catch (error) {
      (this.options.onWarning ?? ((m: string) => console.warn(`warning: ${m}`)))(
        `the selection cache ${this.file} could not be saved (${(error as Error).message}); the next synth selects every image again`,
      );
    }
  }
}

/**
 * What the image hash reads of a regular file besides its path (see fileListLines): the
 * executable bit and the content digest, as `x:<digest>` or `f:<digest>`.
 */
function fileState(entry: WalkEntry, digest: string): string {
  return `${entry.mode & 0o111 ? "x" : "f"}:${digest}`;
}

/** Which `.dockerignore` applies to an image (BuildKit's order) and its text's digest. */
export function ignoreState(root: string, candidates: readonly string[]): IgnoreState {
  for (const file of candidates) {
    let text: Buffer;
    try {
      text = fs.readFileSync(path.join(root, file));
    } catch {
      continue;
    }
    return { file, sha256: createHash("sha256").update(text).digest("hex") };
  }
  return { file: null, sha256: null };
}

function readText(root: string, files: readonly SelectedFile[], file: string): string | undefined {
  if (!files.some((f) => f.entry.path === file)) return undefined;
  try {
    return fs.readFileSync(path.join(root, file), "utf8");
  } catch {
    return undefined;
  }
}

let fingerprint: string | undefined;

/** Set when this module is bundled (bin/bundle.mjs): where the compiled sources are, relative to the bundle. */
declare const LAMBDA_IMAGES_CODE_ROOT: string | undefined;

/**
 * The code that decides selections and hashes (this package's selection, hashing and manifest
 * modules, and the top-level ones: the analyzer, the buildspec): a cache written by other code is never trusted.
 */
function codeFingerprint(): string {
  if (fingerprint) return fingerprint;
  // The compiled sources a bundle was made from, or this module's own tree.
  const src =
    typeof LAMBDA_IMAGES_CODE_ROOT === "string"
      ? fileURLToPath(new URL(LAMBDA_IMAGES_CODE_ROOT, import.meta.url))
      : path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
  const hash = createHash("sha256");
  const add = (file: string) => {
    try {
      hash.update(`${path.relative(src, file)}\0`).update(fs.readFileSync(file)).update("\0");
    } catch {
      // A file that is not there is not part of the code.
    }
  };
  for (const dir of ["selection", "hashing", "manifest"]) {
    let names: string[] = [];
    try {
      names = fs.readdirSync(path.join(src, dir)).sort();
    } catch {
      continue;
    }
    for (const name of names) if (/\.(ts|js)$/.test(name) && !name.endsWith(".d.ts")) add(path.join(src, dir, name));
  }
  for (const name of fs.readdirSync(src).sort()) if (/\.(ts|js)$/.test(name) && !name.endsWith(".d.ts")) add(path.join(src, name));
  fingerprint = hash.digest("hex");
  return fingerprint;
}

export type { WalkEntry };
