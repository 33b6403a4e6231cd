import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { ZipFile } from "yazl";
import type { SelectedFile } from "../selection/select.ts";

/** Every entry gets the same timestamp, so the same files always give the same bytes. */
const FIXED_MTIME = new Date(Date.UTC(1980, 0, 1, 0, 0, 0));
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
 * Paths keep their place relative to the repository root, so the Dockerfile's COPY paths hold.
 */
export function writeContextArchive(root: string, files: readonly SelectedFile[], outFile: string): Promise<ArchiveResult> {
  return writeDeterministicZip(
    files.map(({ entry }) => ({
      path: entry.path,
      file: entry.kind === "symlink" ? undefined : path.join(root, entry.path),
      linkText: entry.linkText,
      executable: (entry.mode & 0o111) !== 0,
    })),
    outFile,
  );
}

/** A zip of the given entries, byte-identical for identical contents. Written atomically. */
export async function writeDeterministicZip(sources: readonly ZipSource[], outFile: string): Promise<ArchiveResult> {
  await fs.promises.mkdir(path.dirname(outFile), { recursive: true });
  const zip = new ZipFile();
  const sorted = [...sources].sort((a, b) => (a.path < b.path ? -1 : 1));
  for (const source of sorted) {
    const options = { mtime: FIXED_MTIME, forceDosTimestamp: true };
    if (source.linkText !== undefined) {
      zip.addBuffer(Buffer.from(source.linkText), source.path, { ...options, mode: SYMLINK_MODE, compress: false });
    } else {
      const mode = source.executable ? EXECUTABLE_MODE : FILE_MODE;
      zip.addReadStreamLazy(source.path, { ...options, mode, compress: true, compressionLevel: 6 }, (cb) =>
        cb(null, fs.createReadStream(source.file!)),
      );
    }
  }
  zip.end();
  const tmp = `${outFile}.${process.pid}.tmp`;
  const hash = createHash("sha256");
  let bytes = 0;
  await new Promise<void>((resolve, reject) => {
    const out = fs.createWriteStream(tmp);
    zip.outputStream.on("data", (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
    });
    zip.outputStream.on("error", reject);
    out.on("error", reject).on("close", () => resolve());
    zip.outputStream.pipe(out);
  });
  await fs.promises.rename(tmp, outFile);
  return { file: outFile, bytes, sha256: hash.digest("hex") };
}

/**
 * Copies an image's selected files into a directory (the Docker provider's build context),
 * replacing whatever was there.
 */
export async function stageContextDirectory(root: string, files: readonly SelectedFile[], dir: string): Promise<void> {
  await fs.promises.rm(dir, { recursive: true, force: true });
  for (const { entry } of files) {
    const target = path.join(dir, entry.path);
    await fs.promises.mkdir(path.dirname(target), { recursive: true });
    if (entry.kind === "symlink") await fs.promises.symlink(entry.linkText!, target);
    else {
      await fs.promises.copyFile(path.join(root, entry.path), target);
      await fs.promises.chmod(target, entry.mode & 0o111 ? 0o755 : 0o644);
    }
  }
}
