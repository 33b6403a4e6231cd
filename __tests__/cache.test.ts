import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { analyzeImages } from "../src/analyze.ts";
import { loadManifest } from "../src/manifest/load.ts";
import { cacheFileFor, openDigestCache, TIMESTAMP_MARGIN_NS } from "../src/hashing/cache.ts";
import type { WalkEntry } from "../src/selection/walk.ts";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";
import { later, quiet } from "./helpers/cache-clock.ts";

let copy: ExampleCopy;
let cacheDir: string;

beforeEach(() => {
  copy = copyExample();
  cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), "lambda-images-cache-"));
});
afterEach(() => {
  copy.cleanup();
  fs.rmSync(cacheDir, { recursive: true, force: true });
});

async function hashes(cache?: ReturnType<typeof openDigestCache>) {
  const analysis = await analyzeImages(loadManifest(copy.manifest), { cache });
  return Object.fromEntries(analysis.images.map((i) => [`${i.spec.kind}:${i.spec.name}`, i.hash]));
}
const open = (now?: () => bigint) => openDigestCache({ root: copy.dir, dir: cacheDir, now, ...quiet });
const selectedFileCount = async () => {
  const analysis = await analyzeImages(loadManifest(copy.manifest));
  return new Set(analysis.images.flatMap((i) => i.selection.files.filter((f) => f.entry.kind === "file").map((f) => f.entry.path))).size;
};

describe("persistent digest cache", () => {
  it("after no change, a second synth reads no file contents and gets the same hashes", async () => {
    const first = open(later);
    const cold = await hashes(first);
    await first.save();
    expect(first.stats().hits).toBe(0);
    const files = await selectedFileCount();
    expect(first.stats().saved).toBe(files);

    const second = open(later);
    expect(await hashes(second)).toEqual(cold);
    expect(second.stats()).toMatchObject({ loaded: files, hits: files, misses: 0 });
    expect(cold).toEqual(await hashes(undefined));
  });

  it("sees edits, including a same-size edit with the mtime put back (same second)", async () => {
    const handler = path.join(copy.dir, "infra/upload_images/handler/upload.py");
    const coarse = new Date(Math.floor(Date.now() / 1000) * 1000); // a 1 s-granularity filesystem's timestamp
    fs.utimesSync(handler, coarse, coarse);
    for (const clock of [undefined, later]) {
      const cache = open(clock);
      const before = await hashes(cache);
      await cache.save();

      const text = fs.readFileSync(handler, "utf8");
      const edited = text.replace("return", "retur_"); // same size
      expect(edited).not.toBe(text);
      expect(edited.length).toBe(text.length);
      fs.writeFileSync(handler, edited);
      fs.utimesSync(handler, coarse, coarse);
      expect(fs.statSync(handler).mtimeMs).toBe(coarse.getTime());

      const after = await hashes(open(clock));
      expect(after).toEqual(await hashes(undefined));
      expect(after["lambda:upload-images"]).not.toBe(before["lambda:upload-images"]);
      fs.writeFileSync(handler, text);
      fs.utimesSync(handler, coarse, coarse);
    }

    // Added and removed files.
    const warm = open(later);
    await hashes(warm);
    await warm.save();
    fs.writeFileSync(path.join(copy.dir, "infra/upload_images/handler/extra.py"), "x = 1\n");
    fs.rmSync(path.join(copy.dir, "receipt_label/receipt_label/labeler.py"));
    expect(await hashes(open(later))).toEqual(await hashes(undefined));
  });

  it("does not trust an entry whose mtime is not older than the hashing session minus the margin (racy git)", async () => {
    fs.mkdirSync(cacheDir, { recursive: true });
    const t0 = 1_800_000_000_000_000_000n;
    const entry = (name: string, mtimeNs: bigint): WalkEntry => ({ path: name, kind: "file", size: 3, mtimeNs, ctimeNs: mtimeNs, ino: 42n, mode: 0o100644 });
    const old = entry("old.py", t0 - TIMESTAMP_MARGIN_NS - 1n);
    const racy = entry("racy.py", t0 - TIMESTAMP_MARGIN_NS);
    const fresh = entry("fresh.py", t0 - 1n);
    const writer = openDigestCache({ root: "/repo", dir: cacheDir, now: () => t0, ...quiet });
    for (const e of [old, racy, fresh]) writer.record(e, "a".repeat(64));
    await writer.save();
    expect(writer.stats().saved).toBe(1);

    // Much later: nothing has changed on disk, only the racy entries were never persisted.
    const reader = openDigestCache({ root: "/repo", dir: cacheDir, now: () => t0 + 3600_000_000_000n, ...quiet });
    expect(reader.lookup(old)).toBe("a".repeat(64));
    expect(reader.lookup(racy)).toBeUndefined();
    expect(reader.lookup(fresh)).toBeUndefined();
    // Any stat difference is a miss.
    expect(reader.lookup({ ...old, size: 4 })).toBeUndefined();
    expect(reader.lookup({ ...old, ino: 43n })).toBeUndefined();
    expect(reader.lookup({ ...old, mode: 0o100755 })).toBeUndefined();
    expect(reader.lookup({ ...old, mtimeNs: old.mtimeNs - 1n })).toBeUndefined();
    expect(reader.lookup({ ...old, ctimeNs: old.ctimeNs + 1n })).toBeUndefined();
  });

  it("ignores a truncated, corrupt or foreign cache file and rewrites it", async () => {
    const first = open(later);
    const good = await hashes(first);
    await first.save();
    const file = cacheFileFor(cacheDir, copy.dir);
    const bytes = fs.readFileSync(file);

    fs.writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const truncated = open(later);
    expect(truncated.stats().ignored).toMatch(/^corrupt/);
    expect(await hashes(truncated)).toEqual(good);
    expect(truncated.stats()).toMatchObject({ loaded: 0, hits: 0 });
    await truncated.save();
    expect(open(later).stats()).toMatchObject({ ignored: undefined, loaded: truncated.stats().saved });

    // One flipped bit in a digest.
    const flipped = Buffer.from(bytes);
    flipped[bytes.length - 200]! ^= 1;
    fs.writeFileSync(file, flipped);
    expect(open(later).stats()).toMatchObject({ loaded: 0, ignored: expect.stringMatching(/^corrupt/) });

    fs.writeFileSync(file, "{}");
    expect(open(later).stats()).toMatchObject({ loaded: 0, ignored: "not a digest cache file" });

    // Another root's cache in this root's file (e.g. a copied cache directory).
    fs.writeFileSync(file, bytes);
    const foreign = openDigestCache({ root: "/elsewhere", dir: cacheDir, ...quiet });
    expect(foreign.stats().loaded).toBe(0);
    fs.copyFileSync(file, cacheFileFor(cacheDir, "/elsewhere"));
    expect(openDigestCache({ root: "/elsewhere", dir: cacheDir, ...quiet }).stats().ignored).toMatch(/another repository root/);

    // Another version.
    const otherVersion = Buffer.from(bytes);
    otherVersion.writeUInt32LE(99, 4);
    fs.writeFileSync(file, otherVersion);
    expect(open(later).stats()).toMatchObject({ loaded: 0, ignored: "version 99, expected 1" });
  });

  it("is off with disabled (--no-cache) or LAMBDA_IMAGES_NO_CACHE=1, and writes nothing", async () => {
    for (const cache of [
      openDigestCache({ root: copy.dir, dir: cacheDir, disabled: true }),
      openDigestCache({ root: copy.dir, dir: cacheDir, env: { LAMBDA_IMAGES_NO_CACHE: "1" } }),
    ]) {
      expect(await hashes(cache)).toEqual(await hashes(undefined));
      await cache.save();
      expect(cache.enabled).toBe(false);
      expect(fs.readdirSync(cacheDir)).toEqual([]);
    }
  });

  it("lives in LAMBDA_IMAGES_CACHE_DIR when set, one file per repository root, written atomically", async () => {
    const cache = openDigestCache({ root: copy.dir, env: { LAMBDA_IMAGES_CACHE_DIR: cacheDir }, now: later });
    await hashes(cache);
    await cache.save();
    expect(cache.file).toBe(cacheFileFor(cacheDir, copy.dir));
    // Beside it, the selection cache of the same root; no temporary file left behind.
    expect(fs.readdirSync(cacheDir).sort()).toEqual([path.basename(cache.file!), path.basename(cache.selection!.file)].sort());
  });
});
