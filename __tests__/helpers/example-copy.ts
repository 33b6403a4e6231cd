import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository's example monorepo (`example/`), which tests must never modify. */
export const EXAMPLE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../example");

export interface ExampleCopy {
  /** Absolute, symlink-resolved path of the fresh copy of `example/`. */
  readonly dir: string;
  /** Absolute path of the copy's `images.yaml`. */
  readonly manifest: string;
  /** Absolute path of a file inside the copy, from a root-relative POSIX path. */
  file(rel: string): string;
  /** Removes the copy (and its parent temp directory). */
  cleanup(): void;
}

export interface ExampleCopyOptions {
  /** Where inside the temp directory the copy goes (e.g. `repo/monorepo`), to test nested roots. Default: `example`. */
  readonly subdir?: string;
  /** Temp-name prefix, to tell copies apart when debugging. */
  readonly prefix?: string;
}

/**
 * Copies `example/` into a fresh temporary directory, so a test can edit, chmod, symlink or
 * `git init` it freely. The copy's files get fresh mtimes and the process umask, like a checkout.
 */
export function copyExample(options: ExampleCopyOptions = {}): ExampleCopy {
  const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), options.prefix ?? "example-copy-")));
  const dir = path.join(tmp, options.subdir ?? "example");
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  fs.cpSync(EXAMPLE_DIR, dir, { recursive: true });
  return {
    dir,
    manifest: path.join(dir, "images.yaml"),
    file: (rel) => path.join(dir, ...rel.split("/")),
    cleanup: () => fs.rmSync(tmp, { recursive: true, force: true }),
  };
}
