import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import dockerignore, { type Ignore } from "@balena/dockerignore";
import { afterAll, describe, expect, it } from "vitest";
import { DockerIgnore } from "../src/selection/select.ts";

const newIgnore = dockerignore as unknown as (options?: { ignorecase?: boolean }) => Ignore;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dockerignore-test-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function matcher(rules: readonly string[], context = ""): DockerIgnore {
  const file = `ignore-${Math.random().toString(36).slice(2)}`;
  fs.writeFileSync(path.join(dir, file), rules.join("\n"));
  return new DockerIgnore(dir, file, context);
}

/** Every path of 1 to 4 components drawn from `names`, deterministic. */
function paths(names: readonly string[], max = 4): string[] {
  const out: string[] = [];
  let level = [""];
  for (let depth = 1; depth <= max; depth++) {
    level = level.flatMap((p) => names.map((n) => (p ? `${p}/${n}` : n)));
    out.push(...level);
  }
  return out;
}

describe(".dockerignore matching", () => {
  // Our matcher memoizes the parent-directory half of Docker's rule per directory; the library
  // tests every parent of every path. Same rules, same answers, on every path of a small tree.
  const ruleSets: string[][] = [
    ["**/__pycache__", "**/*.pyc", "**/tests", "**/node_modules"],
    ["*", "!src", "!src/**/*.py", "src/**/tests"],
    ["a/*/c", "!a/b/c/keep.py", "docs/**", "!docs/**/*.md", "?.md", "[a-c].py"],
    ["/a/b", "b/", "**", "!**/keep.py", "a/**/c", "*/c/*"],
    ["tests", "!tests/keep.py", "**/b/**/keep.py", "c?", "x\\*y"],
    [],
  ];
  const tree = paths(["a", "b", "c", "src", "docs", "tests", "keep.py", "x.md", "x.pyc", "__pycache__", "x*y"]);

  it.each(ruleSets.map((rules) => [rules.join(" ") || "(no rules)", rules]))("agrees with @balena/dockerignore on every path: %s", (_, rules) => {
    const ours = matcher(rules as string[]);
    const theirs = newIgnore({ ignorecase: false }).add(rules as string[]);
    const disagree = tree.filter((p) => ours.ignores(p) !== theirs.ignores(p));
    expect(disagree).toEqual([]);
    // Some rule sets ignore something and keep something, or the comparison proves little.
    if ((rules as string[]).length > 0) expect(new Set(tree.map((p) => ours.ignores(p))).size).toBe(2);
  });

  it("applies rules relative to the build context, and leaves out everything outside it", () => {
    const ours = matcher(["**/tests", "*.md"], "services/api");
    expect(ours.ignores("services/api/handler.py")).toBe(false);
    expect(ours.ignores("services/api/README.md")).toBe(true);
    expect(ours.ignores("services/api/lib/README.md")).toBe(false);
    expect(ours.ignores("services/api/lib/tests/test_x.py")).toBe(true);
    expect(ours.ignores("services/other/handler.py")).toBe(true);
    expect(ours.ignores("services/api")).toBe(false);
  });

  // Docker matches .dockerignore patterns with Go's filepath.Match rules
  // (https://docs.docker.com/build/concepts/context/#dockerignore-files), which compare names
  // byte for byte: on Linux, where CodeBuild and the Docker provider build, `*.PYC` does not
  // leave out `x.pyc`. The library ignores case unless told otherwise.
  it("is case-sensitive, as Docker on Linux is", () => {
    const ours = matcher(["*.PYC", "Tests"]);
    expect(ours.ignores("x.pyc")).toBe(false);
    expect(ours.ignores("X.PYC")).toBe(true);
    expect(ours.ignores("tests/a.py")).toBe(false);
    expect(ours.ignores("Tests/a.py")).toBe(true);
  });
});
