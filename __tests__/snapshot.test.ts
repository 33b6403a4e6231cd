// The snapshot synth leaves for `plan`: written compactly (each file once, images by index
// ranges), read back to exactly what was built.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { analyzeImages } from "../src/analyze.ts";
import { loadManifest } from "../src/manifest/load.ts";
import { buildSnapshot, readSnapshot, SNAPSHOT_FILE, writeSnapshot } from "../src/snapshot/snapshot.ts";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";

let copy: ExampleCopy;
let out: string;
beforeAll(() => {
  copy = copyExample({ prefix: "snapshot-" });
  out = fs.mkdtempSync(path.join(os.tmpdir(), "snapshot-out-"));
});
afterAll(() => {
  copy.cleanup();
  fs.rmSync(out, { recursive: true, force: true });
});

describe("images.snapshot.json", () => {
  it("reads back exactly the snapshot that was written, every image with its files", async () => {
    const manifest = loadManifest(copy.manifest);
    const snapshot = buildSnapshot(await analyzeImages(manifest), Object.keys(manifest.stacks));
    writeSnapshot(out, snapshot);
    const read = readSnapshot(out);
    expect(read.status).toBe("found");
    expect(read.status === "found" && read.snapshot).toEqual(snapshot);
  });

  it("lists each file once, however many images and stacks select it", async () => {
    const text = fs.readFileSync(path.join(out, SNAPSHOT_FILE), "utf8");
    const data = JSON.parse(text) as { files: string[] };
    const paths = data.files.map((l) => l.split("\t")[0]);
    expect(new Set(paths).size).toBe(paths.length);
    // receipt_dynamo's models are in three images of each of two stacks, and on disk once.
    expect(text.split("receipt_dynamo/receipt_dynamo/models.py").length - 1).toBe(1);
  });

  it("a snapshot of another version or a torn file is unreadable, not an error: plan treats every image as new", () => {
    fs.writeFileSync(path.join(out, SNAPSHOT_FILE), JSON.stringify({ format: "lambda-images-snapshot", version: 1, stacks: {} }));
    expect(readSnapshot(out)).toMatchObject({ status: "unreadable", reason: expect.stringMatching(/not a version 2 lambda-images-snapshot/) });
    fs.writeFileSync(path.join(out, SNAPSHOT_FILE), "{ torn");
    expect(readSnapshot(out)).toMatchObject({ status: "unreadable" });
  });
});
