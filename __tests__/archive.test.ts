import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { analyzeImages, type ImageAnalysis } from "../src/analyze.ts";
import { writeContextArchive } from "../src/archive/context-archive.ts";
import { loadManifest } from "../src/manifest/load.ts";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";
import { readZip } from "./helpers/zip.ts";

const sha256 = (file: string) => createHash("sha256").update(fs.readFileSync(file)).digest("hex");

/** Every regular file under dir, root-relative. */
function filesUnder(dir: string, rel = ""): string[] {
  return fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((d) => {
    const child = rel ? `${rel}/${d.name}` : d.name;
    return d.isDirectory() ? filesUnder(dir, child) : d.isFile() ? [child] : [];
  });
}

const EXECUTABLE = "receipt_dynamo/receipt_dynamo/client.py";
const SYMLINK = "receipt_label/receipt_label/alias.py";

let a: ExampleCopy;
let b: ExampleCopy;
let analysisA: ImageAnalysis;
let analysisB: ImageAnalysis;
let out: string;

beforeAll(async () => {
  a = copyExample({ prefix: "archive-a-" });
  // A second checkout at a different (nested) path, with other mtimes and another umask.
  b = copyExample({ prefix: "archive-b-", subdir: "elsewhere/checkout" });
  for (const copy of [a, b]) {
    fs.symlinkSync("labeler.py", copy.file(SYMLINK));
  }
  const old = new Date("2001-02-03T04:05:06Z");
  for (const rel of filesUnder(b.dir)) {
    fs.chmodSync(b.file(rel), 0o600);
    fs.utimesSync(b.file(rel), old, old);
  }
  fs.chmodSync(a.file(EXECUTABLE), 0o755);
  fs.chmodSync(b.file(EXECUTABLE), 0o700);
  analysisA = await analyzeImages(loadManifest(a.manifest));
  analysisB = await analyzeImages(loadManifest(b.manifest));
  out = fs.mkdtempSync(path.join(path.dirname(a.dir), "zips-"));
});
afterAll(() => {
  a.cleanup();
  b.cleanup();
});

function archive(analysis: ImageAnalysis, name: string, file: string) {
  const image = analysis.images.find((i) => i.spec.name === name && i.spec.kind === "lambda")!;
  return writeContextArchive(analysis.manifest.root, image.selection.files, path.join(out, file));
}

describe("context archives", () => {
  it("the same files give byte-identical zips: two writes, other checkout dir, mtimes and umask", async () => {
    const first = await archive(analysisA, "create-labels-standalone", "a1.zip");
    await new Promise((r) => setTimeout(r, 20));
    const second = await archive(analysisA, "create-labels-standalone", "a2.zip");
    const other = await archive(analysisB, "create-labels-standalone", "b.zip");
    expect(sha256(first.file)).toBe(first.sha256);
    expect(first.bytes).toBe(fs.statSync(first.file).size);
    expect(second.sha256).toBe(first.sha256);
    expect(other.sha256).toBe(first.sha256);
    expect(fs.readFileSync(other.file).equals(fs.readFileSync(first.file))).toBe(true);
    // The inputs really differed on disk, and hashed the same (only the x bit counts).
    expect(fs.statSync(b.file("receipt_label/receipt_label/labeler.py")).mode & 0o777).toBe(0o600);
    expect(analysisB.image("create-labels-standalone", "lambda").hash).toBe(analysisA.image("create-labels-standalone", "lambda").hash);
  });

  it("holds exactly the selected files, sorted by path, with their contents, fixed timestamps and no stray files", async () => {
    const image = analysisA.image("create-labels-standalone", "lambda");
    const result = await archive(analysisA, "create-labels-standalone", "contents.zip");
    const entries = readZip(result.file);
    const names = entries.map((e) => e.name);
    expect(names).toEqual([...names].sort());
    expect(names).toEqual(image.selection.files.map((f) => f.entry.path).sort());
    expect(names).toContain("infra/create_labels_step_functions/lambdas/Dockerfile");
    expect(names).toContain("receipt_dynamo/receipt_dynamo/models.py");
    expect(names.some((n) => n.startsWith("portfolio/"))).toBe(false);
    expect(names.some((n) => n.startsWith("receipt_dynamo/tests/"))).toBe(false);
    for (const entry of entries.filter((e) => (e.mode & 0o170000) === 0o100000)) {
      expect(entry.data.equals(fs.readFileSync(a.file(entry.name))), entry.name).toBe(true);
    }
    // 1980-01-01 00:00:00 in DOS format.
    expect(new Set(entries.map((e) => `${e.dosDate}/${e.dosTime}`))).toEqual(new Set([`${(0 << 9) | (1 << 5) | 1}/0`]));
  });

  it("keeps the executable bit (755) and gives every other file 644, whatever the umask", async () => {
    for (const [analysis, file] of [[analysisA, "mode-a.zip"], [analysisB, "mode-b.zip"]] as const) {
      const entries = readZip((await archive(analysis, "create-labels-standalone", file)).file);
      const modes = new Map(entries.map((e) => [e.name, e.mode]));
      expect(modes.get(EXECUTABLE)).toBe(0o100755);
      for (const [name, mode] of modes) if (name !== EXECUTABLE && name !== SYMLINK) expect(mode, name).toBe(0o100644);
    }
  });

  it("stores a symlink as a link with its link text, not the target's content", async () => {
    const entries = readZip((await archive(analysisA, "create-labels-standalone", "link.zip")).file);
    const link = entries.find((e) => e.name === SYMLINK);
    expect(link, `${SYMLINK} should be in the archive`).toBeDefined();
    expect(link!.mode).toBe(0o120777);
    expect(link!.data.toString()).toBe("labeler.py");
  });

  it("a changed file or executable bit changes the bytes", async () => {
    const before = await archive(analysisA, "sync-dynamo", "sync-before.zip");
    fs.chmodSync(a.file("infra/sync_dynamo/handler.py"), 0o755);
    const chmodded = await analyzeImages(loadManifest(a.manifest));
    const afterChmod = await archive(chmodded, "sync-dynamo", "sync-chmod.zip");
    fs.chmodSync(a.file("infra/sync_dynamo/handler.py"), 0o644);
    expect(afterChmod.sha256).not.toBe(before.sha256);
    expect(chmodded.image("sync-dynamo", "lambda").hash).not.toBe(analysisA.image("sync-dynamo", "lambda").hash);
  });

  it("replaces an existing file atomically and leaves no temporary file behind", async () => {
    const target = path.join(out, "replace.zip");
    fs.writeFileSync(target, "old contents");
    const result = await archive(analysisA, "sync-dynamo", "replace.zip");
    expect(readZip(target).map((e) => e.name)).toContain("infra/sync_dynamo/handler.py");
    expect(result.file).toBe(target);
    expect(fs.readdirSync(out).filter((f) => f.includes(".tmp"))).toEqual([]);
  });
});
