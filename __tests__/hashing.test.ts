import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { analyzeImages, type ImageAnalysis } from "../src/analyze.ts";
import { loadManifest } from "../src/manifest/load.ts";
import { SelectionError } from "../src/manifest/errors.ts";
import { imageHashes } from "../src/hashing/image-hash.ts";
import { digestFiles } from "../src/hashing/digest.ts";
import { workerPool } from "../src/worker-pool.ts";
import type { WalkEntry } from "../src/selection/walk.ts";
import { createHash } from "node:crypto";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";
import { repoTree } from "./helpers/repo-tree.ts";
import { readZip } from "./helpers/zip.ts";
import { cachedContextArchive } from "../src/archive/context-archive.ts";

const ALL = [
  "base:receipt-dynamo",
  "base:receipt-label",
  "lambda:create-labels",
  "lambda:create-labels-standalone",
  "lambda:sync-dynamo",
  "lambda:upload-images",
];

async function analyze(copy: ExampleCopy): Promise<ImageAnalysis> {
  return analyzeImages(loadManifest(copy.manifest));
}

async function hashes(copy: ExampleCopy): Promise<Record<string, string>> {
  const analysis = await analyze(copy);
  return Object.fromEntries(analysis.images.map((i) => [`${i.spec.kind}:${i.spec.name}`, i.hash]));
}

/** The images whose hash differs, sorted. */
function changed(before: Record<string, string>, after: Record<string, string>): string[] {
  expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());
  return Object.keys(before)
    .filter((k) => before[k] !== after[k])
    .sort();
}

function filesUnder(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((d) => d.isFile())
    .map((d) => path.join(d.parentPath, d.name));
}

let copy: ExampleCopy;
let before: Record<string, string>;
const cleanups: (() => void)[] = [];

beforeEach(async () => {
  copy = copyExample({ prefix: "hashing-test-" });
  cleanups.push(copy.cleanup);
  before = await hashes(copy);
});
afterEach(() => cleanups.splice(0).forEach((c) => c()));

describe("hashes are stable", () => {
  it("every image has a distinct hash", () => {
    expect(Object.keys(before).sort()).toEqual(ALL);
    expect(new Set(Object.values(before)).size).toBe(ALL.length);
  });

  it("after copying the tree elsewhere (another directory, another depth)", async () => {
    const elsewhere = copyExample({ prefix: "hashing-elsewhere-", subdir: "a/b/c/monorepo" });
    cleanups.push(elsewhere.cleanup);
    expect(await hashes(elsewhere)).toEqual(before);
  });

  it("after touching every mtime", async () => {
    const when = new Date("2001-02-03T04:05:06Z");
    for (const file of filesUnder(copy.dir)) fs.utimesSync(file, when, when);
    expect(await hashes(copy)).toEqual(before);
  });

  it("after recreating every file under a different umask", async () => {
    const modeBefore = fs.statSync(copy.file("receipt_dynamo/pyproject.toml")).mode & 0o777;
    const previous = process.umask(0o077);
    try {
      for (const file of filesUnder(copy.dir)) {
        const content = fs.readFileSync(file);
        fs.rmSync(file);
        fs.writeFileSync(file, content);
      }
    } finally {
      process.umask(previous);
    }
    const modeAfter = fs.statSync(copy.file("receipt_dynamo/pyproject.toml")).mode & 0o777;
    expect(modeAfter).toBe(0o600);
    expect(modeAfter).not.toBe(modeBefore);
    expect(await hashes(copy)).toEqual(before);
  });
});

describe("what a change rebuilds", () => {
  it("a handler edit changes only the Lambdas that copy that handler", async () => {
    fs.appendFileSync(copy.file("infra/create_labels_step_functions/lambdas/handler.py"), "\n# edited\n");
    // create-labels-standalone builds the same handler.py without a base image.
    expect(changed(before, await hashes(copy))).toEqual(["lambda:create-labels", "lambda:create-labels-standalone"]);
  });

  it("a receipt_dynamo edit changes both base images (chained) and every Lambda built on them or copying it", async () => {
    fs.appendFileSync(copy.file("receipt_dynamo/receipt_dynamo/models.py"), "\n# edited\n");
    expect(changed(before, await hashes(copy))).toEqual(ALL);
  });

  it("a receipt_label edit leaves receipt-dynamo and the Lambda built on it alone", async () => {
    fs.appendFileSync(copy.file("receipt_label/receipt_label/labeler.py"), "\n# edited\n");
    expect(changed(before, await hashes(copy))).toEqual([
      "base:receipt-label",
      "lambda:create-labels",
      "lambda:create-labels-standalone",
      "lambda:upload-images",
    ]);
  });

  it("a new file in a copied directory counts, a deleted one too", async () => {
    fs.writeFileSync(copy.file("infra/upload_images/handler/extra.py"), "X = 1\n");
    const added = await hashes(copy);
    expect(changed(before, added)).toEqual(["lambda:upload-images"]);
    fs.rmSync(copy.file("infra/upload_images/handler/naming.py"));
    expect(changed(added, await hashes(copy))).toEqual(["lambda:upload-images"]);
  });

  it("a rename (same content, other path) changes the hash", async () => {
    fs.renameSync(copy.file("infra/upload_images/handler/naming.py"), copy.file("infra/upload_images/handler/names.py"));
    expect(changed(before, await hashes(copy))).toEqual(["lambda:upload-images"]);
  });

  it.each([
    ["portfolio/README.md", "an unrelated file"],
    ["receipt_dynamo/tests/test_models.py", "a .dockerignored file"],
    ["receipt_dynamo/receipt_dynamo/__pycache__/models.cpython-312.pyc", "a new .dockerignored __pycache__ file"],
    ["infra/upload_images/handler/__pycache__/x.pyc", "a new __pycache__ file in a Lambda's handler"],
    ["infra/upload_images/handler/tests/test_naming.py", "a Lambda's .dockerignored tests"],
  ])("editing %s (%s) changes nothing", async (rel) => {
    fs.mkdirSync(path.dirname(copy.file(rel)), { recursive: true });
    fs.appendFileSync(copy.file(rel), "\n# edited\n");
    expect(changed(before, await hashes(copy))).toEqual([]);
  });

  it("chmod +x on a selected file changes its image's hash; on an unselected file, nothing", async () => {
    fs.chmodSync(copy.file("infra/sync_dynamo/handler.py"), 0o755);
    const after = await hashes(copy);
    expect(changed(before, after)).toEqual(["lambda:sync-dynamo"]);
    fs.chmodSync(copy.file("portfolio/README.md"), 0o755);
    expect(changed(after, await hashes(copy))).toEqual([]);
  });

  it("a build arg or platform change in the manifest changes that image's hash", async () => {
    const text = fs.readFileSync(copy.manifest, "utf8");
    fs.writeFileSync(copy.manifest, text.replace("    timeout: 60\n", "    timeout: 60\n    buildArgs:\n      MODE: fast\n").replace("platform: linux/amd64", "platform: linux/arm64"));
    expect(changed(before, await hashes(copy))).toEqual(["lambda:create-labels-standalone", "lambda:sync-dynamo"]);
  });
});

describe("a Docker-built base image's build args and platforms", () => {
  // receipt-dynamo is built by the Docker provider (the default builder); receipt-label and
  // the Lambdas but create-labels-standalone are built on it.
  const ON_DYNAMO = ["base:receipt-dynamo", "base:receipt-label", "lambda:create-labels", "lambda:sync-dynamo", "lambda:upload-images"];
  const edit = (from: string, to: string) => {
    const text = fs.readFileSync(copy.manifest, "utf8");
    expect(text).toContain(from);
    fs.writeFileSync(copy.manifest, text.replace(from, to));
  };

  it("a build arg's value changes its hash and the hash of every image built on it", async () => {
    edit("    packages: [receipt_dynamo]\n", "    packages: [receipt_dynamo]\n    buildArgs: { PIP_INDEX: a }\n");
    const withArg = await hashes(copy);
    expect(changed(before, withArg)).toEqual(ON_DYNAMO);
    edit("PIP_INDEX: a", "PIP_INDEX: b");
    expect(changed(withArg, await hashes(copy))).toEqual(ON_DYNAMO);
  });

  it("its platforms change its hash and the hash of every image built on it", async () => {
    edit("    platforms: [linux/arm64]\n", "    platforms: [linux/arm64, linux/amd64]\n");
    expect(changed(before, await hashes(copy))).toEqual(ON_DYNAMO);
  });
});

describe("symlinks and special files", () => {
  it("a symlink inside root hashes as its target path, the same wherever the tree is", async () => {
    fs.symlinkSync("handler.py", copy.file("infra/sync_dynamo/alias.py"));
    const analysis = await analyze(copy);
    const selected = analysis.image("sync-dynamo", "lambda").selection.files.find((f) => f.entry.path === "infra/sync_dynamo/alias.py");
    expect(selected?.linkTarget).toBe("infra/sync_dynamo/handler.py");
    const withLink = Object.fromEntries(analysis.images.map((i) => [`${i.spec.kind}:${i.spec.name}`, i.hash]));
    expect(changed(before, withLink)).toEqual(["lambda:sync-dynamo"]);

    // The same link in a copy elsewhere hashes the same.
    const elsewhere = copyExample({ prefix: "hashing-link-", subdir: "x/y" });
    cleanups.push(elsewhere.cleanup);
    fs.symlinkSync("handler.py", elsewhere.file("infra/sync_dynamo/alias.py"));
    expect(await hashes(elsewhere)).toEqual(withLink);

    // Pointing it at another file changes the hash even though the link itself is all that changed.
    fs.rmSync(copy.file("infra/sync_dynamo/alias.py"));
    fs.copyFileSync(copy.file("infra/sync_dynamo/handler.py"), copy.file("portfolio/handler.py"));
    fs.symlinkSync("../../portfolio/handler.py", copy.file("infra/sync_dynamo/alias.py"));
    expect(changed(withLink, await hashes(copy))).toEqual(["lambda:sync-dynamo"]);
  });

  it("an edit of a symlink's target, selected only through the link, changes the hash (COPY copies the content)", async () => {
    fs.writeFileSync(copy.file("portfolio/shared_config.py"), "LEVEL = 1\n");
    fs.symlinkSync("../../portfolio/shared_config.py", copy.file("infra/sync_dynamo/config.py"));
    const withLink = await hashes(copy);
    fs.writeFileSync(copy.file("portfolio/shared_config.py"), "LEVEL = 2\n");
    expect(changed(withLink, await hashes(copy))).toEqual(["lambda:sync-dynamo"]);
  });

  it("a selected symlink pointing outside root is an error naming the file and the fix", async () => {
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), "hashing-outside-"));
    cleanups.push(() => fs.rmSync(outside, { recursive: true, force: true }));
    fs.writeFileSync(path.join(outside, "secret.py"), "KEY = 1\n");
    fs.symlinkSync(path.join(outside, "secret.py"), copy.file("receipt_dynamo/receipt_dynamo/linked.py"));
    const error = await analyze(copy).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SelectionError);
    expect((error as Error).message).toMatch(/^receipt_dynamo\/receipt_dynamo\/linked\.py is a symlink to .*secret\.py, outside the repository root/);
    expect((error as Error).message).toMatch(/Fix: copy the file into the repository, or add the link to \.dockerignore/);
  });

  it("a symlink out of root is fine when no image selects it", async () => {
    fs.symlinkSync(os.tmpdir(), copy.file("portfolio/tmp-link"));
    expect(await hashes(copy)).toEqual(before);
  });

  it("a FIFO that is selected is an error; one that is not selected is ignored", async () => {
    execFileSync("mkfifo", [copy.file("portfolio/fifo")]);
    expect(await hashes(copy)).toEqual(before);
    execFileSync("mkfifo", [copy.file("infra/sync_dynamo/pipe.py")]);
    await expect(analyze(copy)).rejects.toThrow(
      /sync-dynamo: infra\/sync_dynamo\/pipe\.py is not a regular file .* Fix: add it to \.dockerignore/,
    );
  });
});

describe("the walk", () => {
  it("never enters the copy's node_modules, .git or directories no image selects", async () => {
    for (const dir of ["node_modules/pkg/deep", ".git/objects/ab", "receipt_dynamo/.git/refs", "portfolio/site"]) {
      fs.mkdirSync(copy.file(dir), { recursive: true });
      fs.writeFileSync(copy.file(`${dir}/file.py`), "x = 1\n");
    }
    const analysis = await analyze(copy);
    const dirs = [...analysis.walk.directories];
    expect(dirs.filter((d) => d.split("/").some((part) => part === "node_modules" || part === ".git"))).toEqual([]);
    expect(dirs.filter((d) => d === "portfolio" || d.startsWith("portfolio/"))).toEqual([]);
    // It does enter what is selected.
    expect(dirs).toEqual(expect.arrayContaining(["receipt_dynamo/receipt_dynamo", "infra/upload_images/handler", "infra/sync_dynamo"]));
    expect(await hashes(copy)).toEqual(before);
  });

  it("does walk a node_modules inside a copied directory: docker would send it", async () => {
    fs.mkdirSync(copy.file("infra/upload_images/handler/node_modules/x"), { recursive: true });
    fs.writeFileSync(copy.file("infra/upload_images/handler/node_modules/x/index.js"), "1\n");
    const analysis = await analyze(copy);
    expect(analysis.image("upload-images", "lambda").selection.files.map((f) => f.entry.path)).toContain(
      "infra/upload_images/handler/node_modules/x/index.js",
    );
  });
});

describe("how an image is built is part of its hash", () => {
  it("a different buildspec for the same files gives a different hash, so the runner does not skip the new build", async () => {
    const analysis = await analyze(copy);
    const image = analysis.image("sync-dynamo", "lambda");
    const inputs = {
      files: image.selection.files,
      digests: analysis.digests,
      dockerfile: image.spec.dockerfile,
      dockerfileText: image.selection.dockerfileText,
      platforms: image.spec.platforms,
      buildArgs: image.spec.buildArgs,
      baseImageHash: analysis.image("receipt-dynamo", "base").hash,
    };
    expect(imageHashes({ ...inputs, buildspec: image.buildspec }).hash).toBe(image.hash);
    const rebuilt = imageHashes({ ...inputs, buildspec: `${image.buildspec}# changed\n` });
    expect(rebuilt.hash).not.toBe(image.hash);
    // Built differently from the same files: the same context archive serves.
    expect(rebuilt.contextHash).toBe(image.contextHash);
  });
});

describe("the hash of what a build context holds (names its archive and staged context)", () => {
  const contextHashes = async () => Object.fromEntries((await analyze(copy)).images.map((i) => [`${i.spec.kind}:${i.spec.name}`, i.contextHash]));

  it("a receipt_dynamo edit changes it only for the images that hold the edited file, though all six are rebuilt", async () => {
    const beforeContexts = await contextHashes();
    fs.appendFileSync(copy.file("receipt_dynamo/receipt_dynamo/models.py"), "\n# edited\n");
    expect(changed(before, await hashes(copy))).toEqual(ALL);
    expect(changed(beforeContexts, await contextHashes())).toEqual(["base:receipt-dynamo", "lambda:create-labels-standalone"]);
  });

  it("changes with anything that changes the archive's bytes: a file's content, its executable bit, a rename, a link's text", async () => {
    const context = async () => (await analyze(copy)).image("sync-dynamo", "lambda").contextHash;
    const seen = [await context()];
    const handler = copy.file("infra/sync_dynamo/handler.py");
    fs.appendFileSync(handler, "\n# edited\n");
    seen.push(await context());
    fs.chmodSync(handler, 0o755);
    seen.push(await context());
    fs.renameSync(handler, copy.file("infra/sync_dynamo/handler2.py"));
    seen.push(await context());
    fs.symlinkSync("handler2.py", copy.file("infra/sync_dynamo/link.py"));
    seen.push(await context());
    fs.rmSync(copy.file("infra/sync_dynamo/link.py"));
    fs.symlinkSync("./handler2.py", copy.file("infra/sync_dynamo/link.py"));
    seen.push(await context());
    expect(new Set(seen).size).toBe(seen.length);
  });

  it("changes with the build context: the cached archive of the same files moved to another context holds their new paths", async () => {
    // The same Dockerfile text and the same selected files (root-relative) in two contexts: a
    // build arg names the source from each. Only the paths inside the archive differ.
    const repo = repoTree({
      "images.yaml": ["project: demo", "stacks: { dev: { region: us-east-1 } }", "lambdas:", "  fn: { dockerfile: svc/fn/Dockerfile, buildArgs: { SRC: svc/fn/handler.py } }", ""].join("\n"),
      "svc/fn/Dockerfile": "FROM public.ecr.aws/lambda/python:3.12\nARG SRC\nCOPY ${SRC} ${LAMBDA_TASK_ROOT}/\n",
      "svc/fn/handler.py": "def handler(e, c):\n    return 1\n",
    });
    cleanups.push(repo.cleanup);
    const cacheDir = path.join(path.dirname(repo.dir), "cache");
    const archived = async () => {
      const image = (await analyzeImages(loadManifest(repo.manifest))).image("fn", "lambda");
      return { image, names: readZip(cachedContextArchive(cacheDir, image, repo.dir).file).map((e) => e.name) };
    };
    const atRoot = await archived();
    expect(atRoot.names).toEqual(["svc/fn/Dockerfile", "svc/fn/handler.py"]);
    fs.writeFileSync(repo.manifest, fs.readFileSync(repo.manifest, "utf8").replace("buildArgs: { SRC: svc/fn/handler.py }", "context: svc/fn, buildArgs: { SRC: handler.py }"));
    const inContext = await archived();
    expect(inContext.image.selection.files.map((f) => f.entry.path)).toEqual(["svc/fn/Dockerfile", "svc/fn/handler.py"]);
    expect(inContext.image.contextHash).not.toBe(atRoot.image.contextHash);
    expect(inContext.names).toEqual(["Dockerfile", "handler.py"]);
  });

  it("does not change when only the mtime does", async () => {
    const image = async () => (await analyze(copy)).image("receipt-label", "base").contextHash;
    const first = await image();
    for (const file of filesUnder(copy.file("receipt_label"))) fs.utimesSync(file, new Date(2001, 1, 1), new Date(2001, 1, 1));
    expect(await image()).toBe(first);
  });
});

describe("parallel hashing", () => {
  it("gives every file the same digest as hashing it alone, when the content is large enough to use worker threads", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hashing-parallel-"));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const entries: WalkEntry[] = [];
    for (let i = 0; i < 24; i++) {
      const name = `f${String(i).padStart(2, "0")}.bin`;
      // 24 files, six of them 3 MiB: well over the threshold for worker threads.
      const content = Buffer.alloc(i % 4 === 0 ? 3 << 20 : 1000 + i, i);
      fs.writeFileSync(path.join(dir, name), content);
      const st = fs.lstatSync(path.join(dir, name), { bigint: true });
      entries.push({ path: name, kind: "file", size: content.length, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino, mode: Number(st.mode) });
    }
    expect(entries.reduce((n, e) => n + e.size, 0)).toBeGreaterThan(16 << 20);
    const digests = await digestFiles(dir, entries);
    for (const entry of entries) {
      const alone = createHash("sha256").update(fs.readFileSync(path.join(dir, entry.path))).digest("hex");
      expect(digests.get(entry.path), entry.path).toBe(alone);
    }
  });

  /** `count` files in a fresh directory, each with its own content; `sizeOf(i)` bytes. */
  function manyFiles(count: number, sizeOf: (i: number) => number): { dir: string; entries: WalkEntry[] } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hashing-many-"));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const entries: WalkEntry[] = [];
    for (let i = 0; i < count; i++) {
      const name = `d${i % 7}/f${i}.txt`;
      fs.mkdirSync(path.join(dir, `d${i % 7}`), { recursive: true });
      const content = Buffer.alloc(sizeOf(i), `file ${i};`);
      fs.writeFileSync(path.join(dir, name), content);
      const st = fs.lstatSync(path.join(dir, name), { bigint: true });
      entries.push({ path: name, kind: "file", size: content.length, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino, mode: Number(st.mode) });
    }
    return { dir, entries };
  }

  it("thousands of small files (worker threads and this thread taking turns) each get their own digest, also at the 1 MiB chunk edges", async () => {
    const edges = [0, 1, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 2 << 20];
    const { dir, entries } = manyFiles(2500, (i) => (i < edges.length ? edges[i]! : 10 + (i % 300)));
    const digests = await digestFiles(dir, entries);
    const wrong = entries.filter((e) => digests.get(e.path) !== createHash("sha256").update(fs.readFileSync(path.join(dir, e.path))).digest("hex"));
    expect(wrong.map((e) => e.path)).toEqual([]);
  });

  it("a file that grew after lstat is hashed whole: the size from lstat only spares the last read when it is reached", async () => {
    const { dir, entries } = manyFiles(3, () => 100);
    fs.appendFileSync(path.join(dir, entries[1]!.path), "appended after lstat");
    const digests = await digestFiles(dir, entries);
    expect(digests.get(entries[1]!.path)).toBe(createHash("sha256").update(fs.readFileSync(path.join(dir, entries[1]!.path))).digest("hex"));
  });

  it("lstat over the worker threads says what lstat says, and nothing for a path that is gone", () => {
    const { dir, entries } = manyFiles(2500, (i) => i % 50);
    const paths = [...entries.map((e) => path.join(dir, e.path)), path.join(dir, "gone.txt")];
    const stats = workerPool.lstat(paths);
    expect(stats.at(-1)).toBeUndefined();
    const wrong = entries.filter((e, i) => {
      const st = stats[i];
      const now = fs.lstatSync(path.join(dir, e.path), { bigint: true });
      return !st || st.type !== "file" || st.size !== Number(now.size) || st.mtimeNs !== now.mtimeNs || st.ctimeNs !== now.ctimeNs || st.ino !== now.ino || st.mode !== Number(now.mode);
    });
    expect(wrong.map((e) => e.path)).toEqual([]);
  });
});
