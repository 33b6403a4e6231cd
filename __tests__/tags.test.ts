import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { analyzeImages, type ImageAnalysis } from "../src/analyze.ts";
import { loadManifest } from "../src/manifest/load.ts";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: "Test",
  GIT_AUTHOR_EMAIL: "test@example.com",
  GIT_COMMITTER_NAME: "Test",
  GIT_COMMITTER_EMAIL: "test@example.com",
  GIT_CONFIG_NOSYSTEM: "1",
};

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", ["-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", ...args], { cwd, env: GIT_ENV, encoding: "utf8" }).trim();
}

/** HEAD's abbreviated id, as the tag carries it. */
function head(cwd: string): string {
  return git(cwd, "rev-parse", "HEAD").slice(0, 7);
}

interface Repo {
  copy: ExampleCopy;
  /** The git work tree's top (the copy itself, or a directory above it). */
  top: string;
  commit(message: string, edit?: () => void): string;
  analyze(): Promise<ImageAnalysis>;
  /** Base image tag in the prod stack (no static base image there). */
  baseTag(name: string): Promise<string>;
}

/** A temporary copy of example/ with `tags: git`, committed once in a fresh repository. */
function gitRepo(options: { subdir?: string } = {}): Repo {
  const copy = copyExample({ prefix: "tags-test-", subdir: options.subdir });
  cleanups.push(copy.cleanup);
  const top = options.subdir ? path.dirname(path.dirname(copy.dir)) : copy.dir;
  fs.writeFileSync(copy.manifest, fs.readFileSync(copy.manifest, "utf8").replace("tags: content", "tags: git"));
  fs.writeFileSync(path.join(top, ".gitignore"), "__pycache__/\n*.log\n");
  if (options.subdir) fs.writeFileSync(path.join(top, "OTHER.md"), "another project\n");
  git(top, "init", "-q");
  const repo: Repo = {
    copy,
    top,
    commit(message, edit) {
      edit?.();
      git(top, "add", "-A");
      git(top, "commit", "-q", "-m", message);
      return head(top);
    },
    analyze: () => analyzeImages(loadManifest(copy.manifest)),
    async baseTag(name) {
      const analysis = await repo.analyze();
      return analysis.tagFor(analysis.image(name, "base"), "prod");
    },
  };
  repo.commit("initial");
  return repo;
}

describe("content tags", () => {
  it("every image is tagged sha-<first 12 hex of its hash>; the useStaticBaseImage stack tags base images stable", async () => {
    const copy = copyExample({ prefix: "tags-content-" });
    cleanups.push(copy.cleanup);
    const analysis = await analyzeImages(loadManifest(copy.manifest));
    for (const image of analysis.images) {
      expect(image.contentTag).toMatch(/^sha-[0-9a-f]{12}$/);
      expect(image.contentTag).toBe(`sha-${image.hash.slice(0, 12)}`);
      expect(image.gitTag).toBeUndefined();
      expect(analysis.tagFor(image, "prod")).toBe(image.contentTag);
      expect(analysis.tagFor(image, "dev")).toBe(image.spec.kind === "base" ? "stable" : image.contentTag);
    }
    expect(analysis.warnings).toEqual([]);
  });

  it("with a static base image, Lambdas still get a new sha- tag when the base's packages change", async () => {
    const copy = copyExample({ prefix: "tags-static-" });
    cleanups.push(copy.cleanup);
    const tags = async () => {
      const analysis = await analyzeImages(loadManifest(copy.manifest));
      return Object.fromEntries(analysis.images.map((i) => [`${i.spec.kind}:${i.spec.name}`, analysis.tagFor(i, "dev")]));
    };
    const before = await tags();
    fs.appendFileSync(copy.file("receipt_label/receipt_label/labeler.py"), "\n# edited\n");
    const after = await tags();
    expect(after["base:receipt-dynamo"]).toBe("stable");
    expect(after["base:receipt-label"]).toBe("stable");
    const changed = Object.keys(before).filter((k) => before[k] !== after[k]).sort();
    expect(changed).toEqual(["lambda:create-labels", "lambda:create-labels-standalone", "lambda:upload-images"]);
    for (const k of changed) expect(after[k]).toMatch(/^sha-[0-9a-f]{12}$/);
  });
});

describe("git tags", () => {
  it("clean inputs: git-<7 hex> of the last commit touching the base's inputs (its own or its parents')", async () => {
    const repo = gitRepo();
    const initial = head(repo.top);
    const analysis = await repo.analyze();
    expect(analysis.warnings).toEqual([]);
    expect(analysis.tagFor(analysis.image("receipt-dynamo", "base"), "prod")).toBe(`git-${initial}`);
    expect(analysis.tagFor(analysis.image("receipt-label", "base"), "prod")).toBe(`git-${initial}`);
    // Lambdas keep content tags; the static stack keeps stable.
    expect(analysis.tagFor(analysis.image("create-labels", "lambda"), "prod")).toMatch(/^sha-[0-9a-f]{12}$/);
    expect(analysis.tagFor(analysis.image("receipt-label", "base"), "dev")).toBe("stable");

    repo.commit("docs only", () => fs.appendFileSync(repo.copy.file("portfolio/README.md"), "more\n"));
    repo.commit("handler only", () => fs.appendFileSync(repo.copy.file("infra/sync_dynamo/handler.py"), "# x\n"));
    expect(await repo.baseTag("receipt-dynamo")).toBe(`git-${initial}`);
    expect(await repo.baseTag("receipt-label")).toBe(`git-${initial}`);

    const label = repo.commit("label", () => fs.appendFileSync(repo.copy.file("receipt_label/receipt_label/labeler.py"), "# x\n"));
    expect(await repo.baseTag("receipt-dynamo")).toBe(`git-${initial}`);
    expect(await repo.baseTag("receipt-label")).toBe(`git-${label}`);

    const dynamo = repo.commit("dynamo", () => fs.appendFileSync(repo.copy.file("receipt_dynamo/receipt_dynamo/models.py"), "# x\n"));
    expect(await repo.baseTag("receipt-dynamo")).toBe(`git-${dynamo}`);
    expect(await repo.baseTag("receipt-label")).toBe(`git-${dynamo}`);

    // Its Dockerfile is an input of receipt-label only.
    const dockerfile = repo.commit("label dockerfile", () => fs.appendFileSync(repo.copy.file("dockerfiles/Dockerfile.receipt_label"), "# x\n"));
    expect(await repo.baseTag("receipt-dynamo")).toBe(`git-${dynamo}`);
    expect(await repo.baseTag("receipt-label")).toBe(`git-${dockerfile}`);
  });

  it("a modified input falls back to sha- with a warning naming the dirty file, for the base and the bases built on it", async () => {
    const repo = gitRepo();
    fs.appendFileSync(repo.copy.file("receipt_dynamo/receipt_dynamo/models.py"), "# dirty\n");
    const analysis = await repo.analyze();
    for (const name of ["receipt-dynamo", "receipt-label"]) {
      const image = analysis.image(name, "base");
      expect(image.gitTag).toBeUndefined();
      expect(analysis.tagFor(image, "prod")).toBe(image.contentTag);
      expect(image.warnings).toEqual([
        `base image ${name}: tagged ${image.contentTag} instead of a git tag because inputs have uncommitted changes: receipt_dynamo/receipt_dynamo/models.py`,
      ]);
    }
  });

  it("a deleted tracked input falls back to sha- naming it; a dirty file of another image does not", async () => {
    const repo = gitRepo();
    fs.rmSync(repo.copy.file("receipt_label/receipt_label/labeler.py"));
    fs.appendFileSync(repo.copy.file("infra/sync_dynamo/handler.py"), "# dirty\n");
    const analysis = await repo.analyze();
    expect(analysis.image("receipt-dynamo", "base").gitTag).toBe(`git-${head(repo.top)}`);
    const label = analysis.image("receipt-label", "base");
    expect(label.gitTag).toBeUndefined();
    expect(label.warnings[0]).toMatch(/uncommitted changes: receipt_label\/receipt_label\/labeler\.py$/);
  });

  it("a chmod +x of an input makes it dirty", async () => {
    const repo = gitRepo();
    fs.chmodSync(repo.copy.file("receipt_dynamo/receipt_dynamo/client.py"), 0o755);
    expect(await repo.baseTag("receipt-dynamo")).toMatch(/^sha-/);
  });

  it("untracked files that are not inputs (git-ignored, or .dockerignored) do not make it dirty; an untracked input does", async () => {
    const repo = gitRepo();
    fs.mkdirSync(repo.copy.file("receipt_dynamo/receipt_dynamo/__pycache__"));
    fs.writeFileSync(repo.copy.file("receipt_dynamo/receipt_dynamo/__pycache__/models.cpython-312.pyc"), "bytecode");
    fs.writeFileSync(repo.copy.file("receipt_dynamo/tests/test_new.py"), "def test(): pass\n");
    expect(await repo.baseTag("receipt-dynamo")).toBe(`git-${head(repo.top)}`);

    fs.writeFileSync(repo.copy.file("receipt_dynamo/receipt_dynamo/new_module.py"), "X = 1\n");
    const analysis = await repo.analyze();
    expect(analysis.image("receipt-dynamo", "base").gitTag).toBeUndefined();
    expect(analysis.image("receipt-dynamo", "base").warnings[0]).toMatch(/: receipt_dynamo\/receipt_dynamo\/new_module\.py$/);
  });

  it("a git-ignored file that is built into the image makes it dirty: no commit records it", async () => {
    const repo = gitRepo();
    // *.log is git-ignored but not .dockerignored, so COPY receipt_dynamo/ sends it.
    fs.writeFileSync(repo.copy.file("receipt_dynamo/receipt_dynamo/debug.log"), "local only\n");
    const analysis = await repo.analyze();
    const dynamo = analysis.image("receipt-dynamo", "base");
    expect(dynamo.selection.files.map((f) => f.entry.path)).toContain("receipt_dynamo/receipt_dynamo/debug.log");
    expect(dynamo.gitTag).toBeUndefined();
    expect(dynamo.warnings[0]).toMatch(/: receipt_dynamo\/receipt_dynamo\/debug\.log$/);
  });

  it("with the manifest root in a subdirectory of the repository, porcelain paths are mapped to root-relative ones", async () => {
    const repo = gitRepo({ subdir: "repo/monorepo" });
    expect(repo.top).not.toBe(repo.copy.dir);
    expect(git(repo.copy.dir, "rev-parse", "--show-prefix")).toBe("repo/monorepo/");
    const initial = head(repo.top);
    expect(await repo.baseTag("receipt-dynamo")).toBe(`git-${initial}`);

    // Outside the root and outside the inputs: no effect.
    repo.commit("other project", () => fs.appendFileSync(path.join(repo.top, "OTHER.md"), "more\n"));
    fs.appendFileSync(path.join(repo.top, "OTHER.md"), "dirty\n");
    // Untracked, .dockerignored: not an input.
    fs.writeFileSync(repo.copy.file("receipt_dynamo/tests/test_new.py"), "def test(): pass\n");
    let analysis = await repo.analyze();
    expect(analysis.warnings).toEqual([]);
    expect(analysis.image("receipt-dynamo", "base").gitTag).toBe(`git-${initial}`);

    // A dirty input is named relative to the manifest root, like every other path.
    fs.appendFileSync(repo.copy.file("receipt_dynamo/receipt_dynamo/models.py"), "# dirty\n");
    analysis = await repo.analyze();
    const dynamo = analysis.image("receipt-dynamo", "base");
    expect(dynamo.gitTag).toBeUndefined();
    expect(dynamo.warnings).toEqual([
      `base image receipt-dynamo: tagged ${dynamo.contentTag} instead of a git tag because inputs have uncommitted changes: receipt_dynamo/receipt_dynamo/models.py`,
    ]);
  });

  it("outside a git work tree, git tags fall back to sha- with a warning", async () => {
    const copy = copyExample({ prefix: "tags-nogit-" });
    cleanups.push(copy.cleanup);
    fs.writeFileSync(copy.manifest, fs.readFileSync(copy.manifest, "utf8").replace("tags: content", "tags: git"));
    const analysis = await analyzeImages(loadManifest(copy.manifest));
    const dynamo = analysis.image("receipt-dynamo", "base");
    expect(analysis.tagFor(dynamo, "prod")).toBe(dynamo.contentTag);
    expect(dynamo.warnings).toEqual([`base image receipt-dynamo: tagged ${dynamo.contentTag} instead of a git tag because the repository root is not a git work tree`]);
  });
});
