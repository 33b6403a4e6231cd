import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export interface RepoTree {
  /** Absolute, symlink-resolved root of the repository. */
  readonly dir: string;
  /** Absolute path of `images.yaml` in it. */
  readonly manifest: string;
  file(rel: string): string;
  write(rel: string, text: string, mode?: number): void;
  cleanup(): void;
}

/** A fresh repository in a temporary directory (below `parent`), written from root-relative path → text. */
export function repoTree(files: Record<string, string>, prefix = "repo-tree-", parent = os.tmpdir()): RepoTree {
  const tmp = fs.realpathSync(fs.mkdtempSync(path.join(parent, prefix)));
  const dir = path.join(tmp, "repo");
  fs.mkdirSync(dir);
  const file = (rel: string) => path.join(dir, ...rel.split("/"));
  const write = (rel: string, text: string, mode?: number) => {
    fs.mkdirSync(path.dirname(file(rel)), { recursive: true });
    fs.writeFileSync(file(rel), text);
    if (mode !== undefined) fs.chmodSync(file(rel), mode);
  };
  for (const [rel, text] of Object.entries(files)) write(rel, text);
  return { dir, manifest: file("images.yaml"), file, write, cleanup: () => fs.rmSync(tmp, { recursive: true, force: true }) };
}
