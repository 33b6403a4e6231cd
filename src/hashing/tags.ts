import { execFileSync } from "node:child_process";

export const STATIC_TAG = "stable";

export function contentTag(hash: string): string {
  return `sha-${hash.slice(0, 12)}`;
}

export interface GitTagResult {
  /** `git-<7 hex>` when the inputs are committed and clean. */
  readonly tag?: string;
  /** Why there is no git tag (not a repository, dirty files, never committed). */
  readonly reason?: string;
  readonly dirtyFiles: readonly string[];
}

/**
 * The tag of the last commit that touched an image's inputs, when they are clean in git. A
 * dirty input would give different content the same tag (the seed's "hash collision"), so
 * then there is no git tag and the caller falls back to the content tag.
 */
export function gitTag(cwd: string, pathspecs: readonly string[], isRelevant: (path: string) => boolean): GitTagResult {
  const git = (args: string[]) => execFileSync("git", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20 });
  try {
    git(["rev-parse", "--is-inside-work-tree"]);
  } catch {
    return { reason: "the repository root is not a git work tree", dirtyFiles: [] };
  }
  const specs = ["--", ...pathspecs.map((p) => (p === "" ? "." : `:(glob)${p}`))];
  // --ignored: a git-ignored file the image selects (not .dockerignored) is built in but recorded by
  // no commit, so it makes the inputs dirty too; isRelevant drops the ignored files no image uses.
  const status = git(["status", "--porcelain=v1", "-z", "--untracked-files=all", "--ignored=traditional", ...specs]);
  // Porcelain paths are relative to the top of the work tree, whatever cwd is (unlike pathspecs,
  // which are relative to cwd): when cwd is a subdirectory, strip its prefix.
  const prefix = git(["rev-parse", "--show-prefix"]).trim();
  const dirtyFiles = parsePorcelainZ(status)
    .filter((p) => p.startsWith(prefix))
    .map((p) => p.slice(prefix.length))
    .filter(isRelevant);
  if (dirtyFiles.length > 0) return { reason: "inputs have uncommitted changes", dirtyFiles };
  let commit = "";
  try {
    commit = git(["log", "-1", "--format=%H", ...specs]).trim();
  } catch {
    // A repository with no commits yet.
  }
  if (!commit) return { reason: "the inputs have never been committed", dirtyFiles: [] };
  return { tag: `git-${commit.slice(0, 7)}`, dirtyFiles: [] };
}

/** Paths (relative to the work tree's top) from `git status --porcelain=v1 -z`, renames giving both sides. */
function parsePorcelainZ(output: string): string[] {
  const fields = output.split("\0").filter((f) => f !== "");
  const paths: string[] = [];
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i]!;
    const status = field.slice(0, 2);
    paths.push(field.slice(3));
    if (status.includes("R") || status.includes("C")) paths.push(fields[++i]!);
  }
  return paths;
}
