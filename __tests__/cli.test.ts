import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { analyzeImages } from "../src/analyze.ts";
import { cachedContextArchive } from "../src/archive/context-archive.ts";
import { loadManifest } from "../src/manifest/load.ts";
import { run } from "../src/cli/main.ts";
import type { Plan, PlannedImage } from "../src/cli/plan.ts";
import { schemaText } from "../src/cli/schema.ts";
import { buildSnapshot, readSnapshot, SNAPSHOT_FILE, writeSnapshot } from "../src/snapshot/snapshot.ts";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BIN = path.join(REPO, "bin/lambda-images.mjs");

let copy: ExampleCopy;
let outdir: string;
let cacheDir: string;

/** What the synth leaves behind: the snapshot of the copy's analysis, in its output directory. */
async function synthesize(): Promise<void> {
  const manifest = loadManifest(copy.manifest);
  writeSnapshot(outdir, buildSnapshot(await analyzeImages(manifest), Object.keys(manifest.stacks)));
}

/** `lambda-images plan --json` as a user runs it: the bin, in a child process. */
async function planJson(...extra: string[]): Promise<Plan> {
  const { stdout } = await promisify(execFile)(process.execPath, [BIN, "plan", "--json", "--manifest", copy.manifest, "--out", outdir, ...extra], {
    cwd: copy.dir,
    env: { ...process.env, LAMBDA_IMAGES_CACHE_DIR: cacheDir },
  });
  return JSON.parse(stdout) as Plan;
}

/** The same, in-process (faster), with its stdout. */
async function planInProcess(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const sink = (append: (s: string) => void) => ({ write: (s: string) => append(s) });
  process.env.LAMBDA_IMAGES_CACHE_DIR = cacheDir;
  try {
    const code = await run(["plan", "--manifest", copy.manifest, "--out", outdir, ...args], {
      out: sink((s) => (stdout += s)),
      err: sink((s) => (stderr += s)),
      cwd: copy.dir,
    });
    return { code, stdout, stderr };
  } finally {
    delete process.env.LAMBDA_IMAGES_CACHE_DIR;
  }
}

/** `stack/kind:name` → status and reasons, for the images that are not unchanged. */
function changes(plan: Plan): Record<string, Pick<PlannedImage, "status" | "reasons">> {
  const out: Record<string, Pick<PlannedImage, "status" | "reasons">> = {};
  for (const stack of plan.stacks) {
    for (const image of stack.images) {
      if (image.status !== "unchanged") out[`${stack.name}/${image.kind}:${image.name}`] = { status: image.status, reasons: image.reasons };
    }
  }
  return out;
}
const inBothStacks = <T>(byImage: Record<string, T>) =>
  Object.fromEntries(["dev", "prod"].flatMap((stack) => Object.entries(byImage).map(([image, v]) => [`${stack}/${image}`, v])));
const filesChanged = (changed: string[], added: string[] = [], removed: string[] = []) => ({ type: "files", added, removed, changed });

function edit(rel: string, from: string, to: string): void {
  const file = path.join(copy.dir, rel);
  const text = fs.readFileSync(file, "utf8");
  expect(text, `${rel} no longer contains ${JSON.stringify(from)}`).toContain(from);
  fs.writeFileSync(file, text.replace(from, to));
}

beforeEach(async () => {
  copy = copyExample({ prefix: "cli-test-" });
  outdir = path.join(copy.dir, "cdktf.out");
  cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), "cli-test-cache-"));
  await synthesize();
});
afterEach(() => {
  copy.cleanup();
  fs.rmSync(cacheDir, { recursive: true, force: true });
});

describe("plan", () => {
  it("reports nothing to rebuild right after a synth, with tags, file counts and context sizes", async () => {
    // The archives a synth keeps in the cache directory: plan reads their sizes.
    const analysis = await analyzeImages(loadManifest(copy.manifest));
    for (const image of analysis.images) if (image.spec.builder !== "docker") cachedContextArchive(cacheDir, image, analysis.manifest.root, analysis.digests);
    const plan = await planJson();
    expect(plan.snapshot).toBe("found");
    expect(changes(plan)).toEqual({});
    expect(plan.summary).toEqual({ images: 12, new: 0, rebuild: 0, unchanged: 12 });
    const dev = plan.stacks.find((s) => s.name === "dev")!;
    const label = dev.images.find((i) => i.name === "receipt-label")!;
    expect(label).toMatchObject({ kind: "base", tag: "stable", baseImage: "receipt-dynamo", platforms: ["linux/arm64"] });
    const create = dev.images.find((i) => i.name === "create-labels")!;
    // The Dockerfile and handler.py only: the packages come from the base image.
    expect(create).toMatchObject({ files: 2, baseImage: "receipt-label", tag: expect.stringMatching(/^sha-[0-9a-f]{12}$/) });
    const standalone = dev.images.find((i) => i.name === "create-labels-standalone")!;
    expect(standalone.contextBytes).toBeGreaterThan(create.contextBytes! * 2);
  });

  it("sizes a Docker-built base by the bytes Docker receives, and compresses and writes nothing: plan uploads nothing", async () => {
    const analysis = await analyzeImages(loadManifest(copy.manifest));
    const bases = analysis.images.filter((i) => i.spec.kind === "base");
    expect(bases.map((b) => b.spec.builder)).toContain("docker");
    const sizes = (plan: Plan) => new Map(plan.stacks.find((s) => s.name === "dev")!.images.map((i) => [`${i.kind}:${i.name}`, i.contextBytes]));
    const cold = sizes(await planJson());
    for (const base of bases.filter((b) => b.spec.builder === "docker")) {
      const onDisk = base.selection.files.reduce((n, f) => n + fs.statSync(path.join(copy.dir, f.entry.path)).size, 0);
      expect(cold.get(`base:${base.spec.name}`)).toBe(onDisk);
    }
    // Nothing was compressed yet: the archives' sizes are not known, and plan does not compress to learn them.
    const archived = analysis.images.filter((i) => i.spec.builder !== "docker");
    for (const image of archived) expect(cold.get(`${image.spec.kind}:${image.spec.name}`)).toBeNull();
    expect(fs.readdirSync(cacheDir).filter((f) => f === "contexts" || f.startsWith("deflate-"))).toEqual([]);
    // Once a synth has kept the archives, their sizes; and from the compressed streams alone (the archives gone), the same sizes.
    const written = new Map(archived.map((image) => [`${image.spec.kind}:${image.spec.name}`, cachedContextArchive(cacheDir, image, analysis.manifest.root, analysis.digests).bytes]));
    const kept = sizes(await planJson());
    fs.rmSync(path.join(cacheDir, "contexts"), { recursive: true });
    const fromStreams = sizes(await planJson());
    for (const [key, bytes] of written) {
      expect(kept.get(key)).toBe(bytes);
      expect(fromStreams.get(key)).toBe(bytes);
    }
    expect(fs.existsSync(path.join(cacheDir, "contexts"))).toBe(false);
  });

  it("a handler edit rebuilds only that Lambda, naming the file", async () => {
    edit("infra/upload_images/handler/upload.py", "def ", "def  ");
    fs.writeFileSync(path.join(copy.dir, "infra/upload_images/handler/extra.py"), "X = 1\n");
    expect(changes(await planJson())).toEqual(
      inBothStacks({
        "lambda:upload-images": {
          status: "rebuild",
          reasons: [filesChanged(["infra/upload_images/handler/upload.py"], ["infra/upload_images/handler/extra.py"])],
        },
      }),
    );
  });

  it("a base-package edit rebuilds the base image, the images built FROM it, and the standalone image that copies it", async () => {
    edit("receipt_label/receipt_label/labeler.py", "def ", "def  ");
    const plan = await planJson();
    const labeler = filesChanged(["receipt_label/receipt_label/labeler.py"]);
    const baseRebuilt = { type: "baseImage", change: "rebuilt", from: "receipt-label", to: "receipt-label" };
    expect(changes(plan)).toEqual(
      inBothStacks({
        "base:receipt-label": { status: "rebuild", reasons: [labeler] },
        "lambda:create-labels": { status: "rebuild", reasons: [baseRebuilt] },
        "lambda:create-labels-standalone": { status: "rebuild", reasons: [labeler] },
        "lambda:upload-images": { status: "rebuild", reasons: [baseRebuilt] },
      }),
    );
    // dev tags base images `stable` (useStaticBaseImage); prod by content.
    const tagOf = (stack: string) => plan.stacks.find((s) => s.name === stack)!.images.find((i) => i.name === "receipt-label")!;
    expect(tagOf("dev")).toMatchObject({ tag: "stable", previousTag: "stable" });
    expect(tagOf("prod").tag).not.toBe(tagOf("prod").previousTag);
  });

  it("an unrelated edit, or one .dockerignore leaves out, rebuilds nothing", async () => {
    edit("portfolio/README.md", "", "An unrelated line.\n");
    edit("receipt_dynamo/tests/test_models.py", "def ", "def  ");
    fs.mkdirSync(path.join(copy.dir, "receipt_label/receipt_label/__pycache__"));
    fs.writeFileSync(path.join(copy.dir, "receipt_label/receipt_label/__pycache__/labeler.cpython-312.pyc"), "\0");
    const { code, stdout } = await planInProcess("--json");
    expect(code).toBe(0);
    expect(changes(JSON.parse(stdout) as Plan)).toEqual({});
  });

  it("names the build input that changed: Dockerfile text, platform, build args, base image", async () => {
    edit("infra/sync_dynamo/Dockerfile", "without Docker Hub.\n", "without Docker Hub.\n# a comment\n");
    edit("images.yaml", "    platform: linux/amd64\n", "    platform: linux/arm64\n"); // create-labels-standalone
    edit("images.yaml", "    memorySize: 512\n", "    memorySize: 512\n    buildArgs:\n      MODE: fast\n"); // upload-images
    edit("images.yaml", "    baseImage: receipt-dynamo\n    timeout: 60\n", "    baseImage: receipt-label\n    timeout: 60\n"); // sync-dynamo
    const { stdout } = await planInProcess("--json");
    expect(changes(JSON.parse(stdout) as Plan)).toEqual(
      inBothStacks({
        "lambda:create-labels-standalone": { status: "rebuild", reasons: [{ type: "platforms", from: ["linux/amd64"], to: ["linux/arm64"] }] },
        "lambda:upload-images": { status: "rebuild", reasons: [{ type: "buildArgs" }] },
        "lambda:sync-dynamo": {
          status: "rebuild",
          reasons: [
            { type: "dockerfile", from: "infra/sync_dynamo/Dockerfile", to: "infra/sync_dynamo/Dockerfile" },
            { type: "baseImage", change: "switched", from: "receipt-dynamo", to: "receipt-label" },
          ],
        },
      }),
    );
  });

  it("prints a table for people, and calls everything new without a snapshot", async () => {
    edit("infra/upload_images/handler/upload.py", "def ", "def  ");
    const table = await planInProcess();
    expect(table.stdout).toMatch(/^stack dev$/m);
    // The context size is "-" until a synth has compressed the changed handler.
    expect(table.stdout).toMatch(/lambda upload-images +sha-[0-9a-f]{12} +4 +- +receipt-label +linux\/arm64 +rebuild\n +- changed infra\/upload_images\/handler\/upload\.py/);
    expect(table.stdout).toMatch(/base receipt-dynamo +\S+ +\d+ +\d+(\.\d)? KiB /);
    expect(table.stdout).toContain("2 to rebuild, 0 new, 10 unchanged");

    fs.rmSync(path.join(outdir, SNAPSHOT_FILE));
    const fresh = await planInProcess("--json");
    const plan = JSON.parse(fresh.stdout) as Plan;
    expect(plan.snapshot).toBe("missing");
    expect(plan.summary).toEqual({ images: 12, new: 12, rebuild: 0, unchanged: 0 });
  });

  it("gives byte-identical JSON with sorted keys on every run, cache or not", async () => {
    edit("receipt_dynamo/receipt_dynamo/models.py", "def ", "def  ");
    const runs = [await planInProcess("--json"), await planInProcess("--json"), await planInProcess("--json", "--no-cache")].map((r) => r.stdout);
    expect(runs[1]).toBe(runs[0]);
    expect(runs[2]).toBe(runs[0]);
    expect(runs[0]).not.toMatch(/\d{4}-\d\d-\d\dT\d\d:/);
    expect(runs[0]).not.toContain(copy.dir);
    const keysSorted = (v: unknown): boolean =>
      Array.isArray(v) ? v.every(keysSorted) : v && typeof v === "object" ? Object.keys(v).join() === Object.keys(v).sort().join() && Object.values(v).every(keysSorted) : true;
    expect(keysSorted(JSON.parse(runs[0]!))).toBe(true);
  });

  it("exits 1 with the manifest error, 2 on bad usage", async () => {
    edit("images.yaml", "project: portfolio", "project: Portfolio");
    const bad = await promisify(execFile)(process.execPath, [BIN, "plan", "--manifest", copy.manifest], { cwd: copy.dir }).catch((e) => e);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/images\.yaml:\d+: project: must be lower-case/);
    const usage = await promisify(execFile)(process.execPath, [BIN, "plan", "--bogus"], { cwd: copy.dir }).catch((e) => e);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("Usage:");
  });
});

describe("snapshot", () => {
  it("records per stack and image: hash, tag, base image, platforms, files with type and digest", async () => {
    const read = readSnapshot(outdir);
    expect(read.status).toBe("found");
    if (read.status !== "found") return;
    const upload = read.snapshot.stacks.prod!.images["lambda:upload-images"]!;
    expect(upload).toMatchObject({ kind: "lambda", name: "upload-images", baseImage: "receipt-label", platforms: ["linux/arm64"] });
    expect(Object.keys(upload.files)).toEqual([
      "infra/upload_images/Dockerfile",
      "infra/upload_images/handler/__init__.py",
      "infra/upload_images/handler/naming.py",
      "infra/upload_images/handler/upload.py",
    ]);
    expect(upload.files["infra/upload_images/handler/upload.py"]).toMatch(/^f:[0-9a-f]{64}$/);
    expect(read.snapshot.stacks.dev!.images["base:receipt-dynamo"]!.tag).toBe("stable");
  });
});

describe("graph", () => {
  it("draws external image → base images → chained base → Lambdas, with platforms", async () => {
    let out = "";
    const code = await run(["graph", "--manifest", copy.manifest], {
      out: { write: (s: string) => (out += s) },
      err: process.stderr,
      cwd: copy.dir,
    });
    expect(code).toBe(0);
    const lines = out.split("\n");
    expect(lines[0]).toBe("flowchart LR");
    expect(lines).toContain('  ext_1[("public.ecr.aws/lambda/python:3.12")]');
    expect(lines).toContain('    lambda_create_labels_standalone["create-labels-standalone<br/>linux/amd64"]');
    for (const edge of [
      "ext_1 --> base_receipt_dynamo",
      "base_receipt_dynamo --> base_receipt_label",
      "base_receipt_label --> lambda_create_labels",
      "base_receipt_label --> lambda_upload_images",
      "base_receipt_dynamo --> lambda_sync_dynamo",
      "ext_1 --> lambda_create_labels_standalone",
    ]) {
      expect(lines).toContain(`  ${edge}`);
    }
    expect(lines.filter((l) => l.includes("-->"))).toHaveLength(6);
  });
});

describe("schema", () => {
  it("the committed images.schema.json is the one the manifest schema generates", () => {
    expect(fs.readFileSync(path.join(REPO, "images.schema.json"), "utf8")).toBe(schemaText());
  });
});
