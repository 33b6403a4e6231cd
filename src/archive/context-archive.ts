import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { createRequire } from "node:module";
import * as os from "node:os";
import { contextRelative, type SelectedFile } from "../selection/select.ts";
import { archiveLayout, STAGED_OUTSIDE_DOCKERFILE } from "../manifest/spec.ts";
import type { AnalyzedImage } from "../analyze.ts";

// Loaded on first use: `plan` and a synth with nothing to compress never need it.
let fflate: typeof import("fflate") | undefined;
const zipLibrary = () => (fflate ??= createRequire(import.meta.url)("fflate") as typeof import("fflate"));

/** Every entry gets the same timestamp, so the same files always give the same bytes. */
// Local time: zip stores DOS times without a zone, and fflate converts with the local offset.
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
  /** Link text, for symlinks. */
  readonly linkText?: string;
  readonly executable: boolean;
}

/**
 * Writes an image's build context as a zip whose bytes depend only on the selected files:
 * entries sorted by path, fixed timestamps, modes reduced to 644/755, symlinks stored as links.
 * Paths are relative to the build context (`context`, root-relative; "" is the root), as the
 * Dockerfile's COPY sources are.
 */
export function writeContextArchive(root: string, files: readonly SelectedFile[], outFile: string, context = "", dockerfile?: string): Promise<ArchiveResult> {
  return Promise.resolve(writeContextArchiveSync(root, files, outFile, context, dockerfile));
}

/**
 * `dockerfile` (root-relative) is needed only when it lies outside `context`: the archive then
 * holds the context in `context/` and the Dockerfile in `dockerfile/` (see archiveLayout).
 */
export function writeContextArchiveSync(root: string, files: readonly SelectedFile[], outFile: string, context = "", dockerfile?: string): ArchiveResult {
  const layout = dockerfile === undefined ? undefined : archiveLayout({ dockerfile, context });
  const sources: ZipSource[] = files.map(({ entry }) => ({
    path: layout ? layout.path(entry.path) : contextRelative(context, entry.path),
    file: entry.kind === "symlink" ? undefined : path.join(root, entry.path),
    linkText: entry.linkText,
    executable: (entry.mode & 0o111) !== 0,
  }));
  // An empty file's content, streamed like any other.
  if (layout?.emptyIgnoreFile) sources.push({ path: layout.emptyIgnoreFile, file: os.devNull, executable: false });
  return writeDeterministicZipSync(sources, outFile);
}

/**
 * A zip of the given entries, byte-identical for identical contents. Written atomically and
 * synchronously (cdktf synthesizes synchronously), streaming each file in 1 MiB chunks so a large
 * file is never held in memory whole.
 */
export function writeDeterministicZipSync(sources: readonly ZipSource[], outFile: string): ArchiveResult {
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  const tmp = `${outFile}.${process.pid}.tmp`;
  const out = fs.openSync(tmp, "w");
  const hash = createHash("sha256");
  let bytes = 0;
  let failure: Error | null = null;
  const { Zip, ZipDeflate, ZipPassThrough } = zipLibrary();
  const zip = new Zip((error, chunk) => {
    if (error) failure = error;
    else {
      hash.update(chunk);
      bytes += chunk.length;
      fs.writeSync(out, chunk);
    }
  });
  try {
    const sorted = [...sources].sort((a, b) => (a.path < b.path ? -1 : 1));
    for (const source of sorted) {
      const isLink = source.linkText !== undefined;
      const entry = isLink ? new ZipPassThrough(source.path) : new ZipDeflate(source.path, { level: 6 });
      entry.mtime = FIXED_MTIME;
      // Unix attributes (os 3): the mode in the high 16 bits, as zip tools and CodeBuild's unzip read it.
      entry.os = 3;
      entry.attrs = (isLink ? SYMLINK_MODE : source.executable ? EXECUTABLE_MODE : FILE_MODE) * 0x10000;
      zip.add(entry);
      if (isLink) entry.push(Buffer.from(source.linkText!), true);
      else streamFile(source.file!, (chunk, final) => entry.push(chunk, final));
      if (failure) throw failure;
    }
    zip.end();
    if (failure) throw failure;
  } finally {
    fs.closeSync(out);
  }
  fs.renameSync(tmp, outFile);
  return { file: outFile, bytes, sha256: hash.digest("hex") };
}

/** {@link writeDeterministicZipSync}, for callers that await. */
export async function writeDeterministicZip(sources: readonly ZipSource[], outFile: string): Promise<ArchiveResult> {
  return writeDeterministicZipSync(sources, outFile);
}

const CHUNK = 1 << 20;

function streamFile(file: string, push: (chunk: Uint8Array, final: boolean) => void): void {
  const fd = fs.openSync(file, "r");
  try {
    const size = fs.fstatSync(fd).size;
    if (size === 0) return push(new Uint8Array(0), true);
    let offset = 0;
    while (offset < size) {
      // A fresh buffer per chunk: the deflater may keep a reference to what it was given.
      const chunk = Buffer.allocUnsafe(Math.min(CHUNK, size - offset));
      const n = fs.readSync(fd, chunk, 0, chunk.length, offset);
      if (n === 0) throw new Error(`${file} shrank while it was archived`);
      offset += n;
      push(chunk.subarray(0, n), offset >= size);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Copies an image's selected files into a directory (the Docker provider's build context),
 * replacing whatever was there.
 */
export function stageContextDirectory(root: string, files: readonly SelectedFile[], dir: string, context = "", dockerfile?: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  const outside = dockerfile !== undefined && archiveLayout({ dockerfile, context }).contextDir !== ".";
  for (const { entry } of files) {
    // An outside Dockerfile goes in under a name its .dockerignore lists, which replaces the context's own.
    if (outside && contextRelative(context, entry.path) === ".dockerignore") continue;
    const target = path.join(dir, outside && entry.path === dockerfile ? STAGED_OUTSIDE_DOCKERFILE : contextRelative(context, entry.path));
    fs.mkdirSync(path.dirname(target), { recursive: true });
    if (entry.kind === "symlink") fs.symlinkSync(entry.linkText!, target);
    else {
      fs.copyFileSync(path.join(root, entry.path), target);
      fs.chmodSync(target, entry.mode & 0o111 ? 0o755 : 0o644);
    }
  }
  if (outside) {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, ".dockerignore"), `${STAGED_OUTSIDE_DOCKERFILE}\n.dockerignore\n`);
  }
}

/**
 * The context archive of an analyzed image, kept in `cacheDir` under the hash of what it holds
 * (`contextHash`) with its size and digest beside it: an image whose context files did not change
 * reuses the file (and `plan` its size) from an earlier synth instead of compressing again, also
 * when it is rebuilt because its base image changed.
 */
export function cachedContextArchive(cacheDir: string, image: Pick<AnalyzedImage, "spec" | "contextHash" | "selection">, root: string): ArchiveResult {
  const file = path.join(cacheDir, "contexts", `${image.spec.kind}-${image.spec.name}-${image.contextHash.slice(0, 16)}.zip`);
  const sidecar = `${file}.json`;
  try {
    const reused = JSON.parse(fs.readFileSync(sidecar, "utf8")) as ArchiveResult;
    if (reused.bytes === fs.statSync(file).size) return { ...reused, file };
  } catch {
    // Not there yet, or torn: write it.
  }
  const written = writeContextArchiveSync(root, image.selection.files, file, image.spec.context, image.spec.dockerfile);
  fs.writeFileSync(sidecar, JSON.stringify(written));
  return written;
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
