import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { analyzeImages, type ImageAnalysis } from "../src/analyze.ts";
import { loadManifest } from "../src/manifest/load.ts";
import { openDigestCache } from "../src/hashing/cache.ts";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";
import { later, quiet } from "./helpers/cache-clock.ts";
import { repoTree, type RepoTree } from "./helpers/repo-tree.ts";

// The warm path's selection cache (git's untracked cache) may only ever save work: after any
// change, the cached analysis must equal one made from scratch.

let copy: ExampleCopy;
let cacheDir: string;

beforeEach(() => {
  copy = copyExample();
  cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), "lambda-images-selection-"));
});
afterEach(() => {
  copy.cleanup();
  fs.rmSync(cacheDir, { recursive: true, force: true });
});

/** Per image: hash and selected files, what a user sees in the plan and the archives. */
function view(analysis: ImageAnalysis) {
  return Object.fromEntries(analysis.images.map((i) => [`${i.spec.kind}:${i.spec.name}`, { hash: i.hash, files: i.selection.files.map((f) => f.entry.path) }]));
}

/** An analysis through the persistent caches (saved afterwards), and how many images it reused. */
async function cached(now: () => bigint = later) {
  const cache = openDigestCache({ root: copy.dir, dir: cacheDir, now, ...quiet });
  const analysis = await analyzeImages(loadManifest(copy.manifest), { cache });
  cache.save();
  return { view: view(analysis), reused: cache.selection!.stats().reused, images: analysis.images.length };
}

const fromScratch = async () => view(await analyzeImages(loadManifest(copy.manifest)));

/** Primes the cache, checks the next run reuses every image, then applies `change`. */
async function primedThen(change: () => void) {
  const before = await cached();
  const warm = await cached();
  expect(warm.reused).toBe(warm.images);
  expect(warm.view).toEqual(before.view);
  change();
  const after = await cached();
  expect(after.view).toEqual(await fromScratch());
  return { before: before.view, after };
}

describe("selection cache", () => {
  it("reuses every image when nothing changed, with the hashes and files of a fresh analysis", async () => {
    await cached();
    const warm = await cached();
    expect(warm.reused).toBe(warm.images);
    expect(warm.view).toEqual(await fromScratch());
  });

  it("sees a file added in a selected directory", async () => {
    const { before, after } = await primedThen(() => fs.writeFileSync(copy.file("receipt_dynamo/receipt_dynamo/extra.py"), "X = 1\n"));
    expect(after.view["base:receipt-dynamo"]!.files).toContain("receipt_dynamo/receipt_dynamo/extra.py");
    expect(after.view["base:receipt-dynamo"]!.hash).not.toBe(before["base:receipt-dynamo"]!.hash);
    // The standalone Lambda copies the same package: selection walks it once for both images,
    // and both records depend on its directories.
    expect(after.view["lambda:create-labels-standalone"]!.files).toContain("receipt_dynamo/receipt_dynamo/extra.py");
    expect(after.view["lambda:create-labels-standalone"]!.hash).not.toBe(before["lambda:create-labels-standalone"]!.hash);
  });

  it("sees a same-size edit whose mtime was put back (only ctime tells)", async () => {
    const file = copy.file("infra/upload_images/handler/upload.py");
    const coarse = new Date(Math.floor(Date.now() / 1000) * 1000); // exactly representable, as on a 1 s-granularity filesystem
    fs.utimesSync(file, coarse, coarse);
    const { before, after } = await primedThen(() => {
      const st = fs.statSync(file);
      const text = fs.readFileSync(file, "utf8");
      fs.writeFileSync(file, text.slice(0, -2) + (text.endsWith("#\n") ? "$\n" : "#\n"));
      fs.utimesSync(file, st.atime, st.mtime);
      expect(fs.statSync(file).size).toBe(st.size);
      expect(fs.statSync(file).mtimeMs).toBe(st.mtimeMs);
    });
    expect(after.view["lambda:upload-images"]!.hash).not.toBe(before["lambda:upload-images"]!.hash);
  });

  it("sees a COPY source directory renamed away: the same error as a fresh analysis", async () => {
    await cached();
    expect((await cached()).reused).toBeGreaterThan(0);
    fs.renameSync(copy.file("infra/upload_images/handler"), copy.file("infra/upload_images/handler_v2"));
    const fresh = await fromScratch().catch((e: Error) => e.message);
    expect(fresh).toMatch(/handler.* matches no file/);
    expect(await cached().catch((e: Error) => e.message)).toBe(fresh);
  });

  it("sees a renamed directory inside a package", async () => {
    const pkg = copy.file("receipt_label/receipt_label");
    fs.mkdirSync(path.join(pkg, "sub"));
    fs.writeFileSync(path.join(pkg, "sub", "mod.py"), "Y = 2\n");
    const { before, after } = await primedThen(() => fs.renameSync(path.join(pkg, "sub"), path.join(pkg, "sub2")));
    expect(after.view["base:receipt-label"]!.files).toContain("receipt_label/receipt_label/sub2/mod.py");
    expect(after.view["base:receipt-label"]!.files).not.toContain("receipt_label/receipt_label/sub/mod.py");
    expect(after.view["base:receipt-label"]!.hash).not.toBe(before["base:receipt-label"]!.hash);
  });

  it("sees a .dockerignore edited in place (no directory changes)", async () => {
    const ignore = copy.file(".dockerignore");
    const { before, after } = await primedThen(() => {
      const fd = fs.openSync(ignore, "r+");
      fs.writeSync(fd, "\ninfra/upload_images/handler/naming.py\n", fs.fstatSync(fd).size);
      fs.closeSync(fd);
    });
    expect(after.view["lambda:upload-images"]!.files).not.toContain("infra/upload_images/handler/naming.py");
    expect(before["lambda:upload-images"]!.files).toContain("infra/upload_images/handler/naming.py");
  });

  it("sees a file deleted, and a Dockerfile edited", async () => {
    const { after } = await primedThen(() => {
      fs.rmSync(copy.file("infra/upload_images/handler/naming.py"));
      fs.appendFileSync(copy.file("infra/sync_dynamo/Dockerfile"), "ENV CHANGED=1\n");
    });
    expect(after.view["lambda:upload-images"]!.files).not.toContain("infra/upload_images/handler/naming.py");
  });

  it("does not record what changed within the timestamp margin of the session (racy rule)", async () => {
    // The session starts "now": the copy's directories were written within the margin.
    await cached(() => BigInt(Date.now()) * 1_000_000n);
    const next = await cached();
    expect(next.reused).toBe(0);
  });

  it("ignores a cache written by other code or for another root, and a corrupt file", async () => {
    await cached();
    const [file] = fs.readdirSync(cacheDir).filter((f) => f.startsWith("selection-"));
    const full = path.join(cacheDir, file!);
    const data = JSON.parse(fs.readFileSync(full, "utf8"));
    fs.writeFileSync(full, JSON.stringify({ ...data, code: "other" }));
    expect((await cached()).reused).toBe(0);
    fs.writeFileSync(full, "{ torn");
    expect((await cached()).reused).toBe(0);
  });
});

describe("selection cache: a file shared by two images", () => {
  let repo: RepoTree;
  afterEach(() => repo?.cleanup());

  // Issue 22, item 1: image a's record is invalidated (a file added in a folder only a reads),
  // so a is analyzed again in the same session and re-hashes the shared handler; image b, whose
  // own record still looks valid, must not take that digest as proof that its handler is unchanged
  // when the handler's mode changed (Docker keeps file modes: the image differs).
  it("sees a chmod +x of the shared file while another image's record is invalidated", async () => {
    repo = repoTree({
      "images.yaml": [
        "project: demo",
        "stacks: { dev: { region: us-east-1 } }",
        "lambdas:",
        "  a: { dockerfile: a/Dockerfile }",
        "  b: { dockerfile: b/Dockerfile }",
        "",
      ].join("\n"),
      "a/Dockerfile": "FROM public.ecr.aws/lambda/python:3.12\nCOPY pkg_a/ /opt/pkg_a/\nCOPY shared/handler.py ${LAMBDA_TASK_ROOT}/\n",
      "b/Dockerfile": "FROM public.ecr.aws/lambda/python:3.12\nCOPY shared/handler.py ${LAMBDA_TASK_ROOT}/\n",
      "pkg_a/mod.py": "A = 1\n",
      "shared/handler.py": "def handler(event, context):\n    return 1\n",
    });
    const run = async () => {
      const cache = openDigestCache({ root: repo.dir, dir: cacheDir, now: later, ...quiet });
      const analysis = await analyzeImages(loadManifest(repo.manifest), { cache });
      cache.save();
      return { view: view(analysis), reused: cache.selection!.stats().reused };
    };
    const before = await run();
    expect((await run()).reused).toBe(2);
    fs.writeFileSync(repo.file("pkg_a/new.py"), "B = 2\n");
    fs.chmodSync(repo.file("shared/handler.py"), 0o755);
    const fresh = view(await analyzeImages(loadManifest(repo.manifest)));
    expect(fresh["lambda:b"]!.hash).not.toBe(before.view["lambda:b"]!.hash);
    // Twice: a stale record must not be saved and reused by the next synth either.
    expect((await run()).view).toEqual(fresh);
    expect((await run()).view).toEqual(fresh);
  });
});

describe("selection cache: the racy window for directories", () => {
  let repo: RepoTree;
  afterEach(() => repo?.cleanup());

  // A directory's signature (mtime, ctime, inode) cannot show a change made within the same
  // timestamp tick as the walk that read it. So a record that depends on a directory changed
  // within the margin of the session is not kept, even when every file in it is old; the
  // next synth selects that image again (and only it).
  it("does not keep a record whose directory was touched within the margin, though its files are old", async () => {
    repo = repoTree({
      "images.yaml": ["project: demo", "stacks: { dev: { region: us-east-1 } }", "lambdas:", "  a: { dockerfile: a/Dockerfile }", "  b: { dockerfile: b/Dockerfile }", ""].join("\n"),
      "a/Dockerfile": "FROM public.ecr.aws/lambda/python:3.12\nCOPY pkg_a/ /opt/pkg_a/\n",
      "b/Dockerfile": "FROM public.ecr.aws/lambda/python:3.12\nCOPY pkg_b/ /opt/pkg_b/\n",
      "pkg_a/mod.py": "A = 1\n",
      "pkg_b/mod.py": "B = 1\n",
    });
    const newest = (rel: string) => fs.statSync(repo.file(rel), { bigint: true }).ctimeNs;
    const filesDone = [".", "a", "b", "pkg_a", "pkg_b", "a/Dockerfile", "b/Dockerfile", "pkg_a/mod.py", "pkg_b/mod.py", "images.yaml"].map(newest).reduce((x, y) => (x > y ? x : y));
    // Touch pkg_a (an entry added and removed) until its times are later than every file's.
    do {
      fs.writeFileSync(repo.file("pkg_a/.tmp"), "");
      fs.rmSync(repo.file("pkg_a/.tmp"));
    } while (newest("pkg_a") <= filesDone);
    // The session starts exactly the margin (2 s) after pkg_a's change: pkg_a is too young to
    // trust, everything else (all files included) is old enough.
    const sessionStart = newest("pkg_a") + 2_000_000_000n;
    const run = async (now: () => bigint) => {
      const cache = openDigestCache({ root: repo.dir, dir: cacheDir, now, ...quiet });
      const analysis = await analyzeImages(loadManifest(repo.manifest), { cache });
      cache.save();
      return { view: view(analysis), stats: cache.selection!.stats() };
    };
    const first = await run(() => sessionStart);
    expect(first.stats.recorded).toBe(1);
    const next = await run(later);
    expect(next.stats.reused).toBe(1);
    expect(next.view).toEqual(first.view);
    expect(next.view).toEqual(view(await analyzeImages(loadManifest(repo.manifest))));
    // From then on (the directory now old), both are reused.
    expect((await run(later)).stats.reused).toBe(2);
  });
});
