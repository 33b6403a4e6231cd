import { spawn } from "node:child_process";
import { createHash, randomFillSync } from "node:crypto";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeContextArchiveSync, writeDeterministicZipSync, type ZipSource } from "../src/archive/context-archive.ts";
import { dropStreamStores, storeDeflater, streamStore } from "../src/archive/deflate-streams.ts";
import { analyzeImages } from "../src/analyze.ts";
import { loadManifest } from "../src/manifest/load.ts";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const fflate = createRequire(import.meta.url)("fflate") as typeof import("fflate");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "archive-streams-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/**
 * What archives held before compressed streams were shared: fflate's streaming Zip, a
 * ZipDeflate (level 6) per file fed 1 MiB chunks, a ZipPassThrough per symlink. Kept here as the
 * reference the archive bytes must equal (a deployed archive's hash is in the plan).
 */
function referenceZip(sources: readonly ZipSource[]): Buffer {
  const chunks: Uint8Array[] = [];
  const zip = new fflate.Zip((error, chunk) => {
    if (error) throw error;
    chunks.push(chunk);
  });
  for (const source of [...sources].sort((a, b) => (a.path < b.path ? -1 : 1))) {
    const isLink = source.linkText !== undefined;
    const entry = isLink ? new fflate.ZipPassThrough(source.path) : new fflate.ZipDeflate(source.path, { level: 6 });
    entry.mtime = new Date(1980, 0, 1, 0, 0, 0);
    entry.os = 3;
    entry.attrs = (isLink ? 0o120777 : source.executable ? 0o100755 : 0o100644) * 0x10000;
    zip.add(entry);
    if (isLink) entry.push(Buffer.from(source.linkText!), true);
    else {
      const data = fs.readFileSync(source.file!);
      if (data.length === 0) entry.push(new Uint8Array(0), true);
      for (let at = 0; at < data.length; at += 1 << 20) entry.push(data.subarray(at, at + (1 << 20)), at + (1 << 20) >= data.length);
    }
  }
  zip.end();
  return Buffer.concat(chunks);
}

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");
const fileSha = (file: string) => sha256(fs.readFileSync(file));

/** A corpus that exercises the deflater's edges: empty, tiny, around its 64 KiB and 1 MiB chunk sizes, random and repetitive, names that need UTF-8, executables, a symlink, the same content twice. */
function corpus(dir: string): ZipSource[] {
  fs.mkdirSync(dir, { recursive: true });
  const text = fs.readFileSync(path.join(REPO, "README.md"));
  const sources: ZipSource[] = [];
  const sizes = [0, 1, 3, 100, 8191, 32768, 65536, 98304, 100_000, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3 * (1 << 20) + 17];
  sizes.forEach((n, i) => {
    const data = Buffer.alloc(n);
    for (let at = 0; at < n; at += text.length) text.copy(data, at, 0, Math.min(text.length, n - at));
    if (i % 3 === 0) randomFillSync(data, 0, Math.floor(n / 3));
    const file = path.join(dir, `big-${i}`);
    fs.writeFileSync(file, data);
    sources.push({ path: i === 2 ? "dir/é-ünïcode.py" : i === 4 ? "z/😀.txt" : `p/f${i}.py`, file, executable: i % 2 === 0 });
  });
  for (let i = 0; i < 300; i++) {
    const file = path.join(dir, `small-${i}`);
    fs.writeFileSync(file, text.subarray(i * 7, i * 7 + 100 + ((i * 37) % 3000)));
    sources.push({ path: `many/m${String(i).padStart(3, "0")}.py`, file, executable: false });
  }
  sources.push({ path: "link", linkText: "p/f1.py", executable: false });
  sources.push({ path: "same-as-f5.py", file: path.join(dir, "big-5"), executable: false });
  return sources;
}

let sources: ZipSource[];
beforeAll(() => {
  sources = corpus(path.join(tmp, "corpus"));
});

describe("context archives from shared compressed streams", () => {
  it("are byte-identical to fflate's streaming Zip, with or without a cache directory, on threads or not", () => {
    expect(storeDeflater().reusesWorkArrays).toBe(true);
    const reference = referenceZip(sources);
    const cacheDir = path.join(tmp, "identity-cache");
    const cached = writeDeterministicZipSync(sources, path.join(tmp, "identity-cached.zip"), { cacheDir });
    const uncached = writeDeterministicZipSync(sources, path.join(tmp, "identity-uncached.zip"));
    expect(cached.sha256).toBe(sha256(reference));
    expect(uncached.sha256).toBe(sha256(reference));
    expect(cached.bytes).toBe(reference.length);
    expect(fileSha(cached.file)).toBe(cached.sha256);
    // One file at a time (no threads): the same.
    const one = writeDeterministicZipSync(sources.slice(0, 3), path.join(tmp, "identity-one.zip"), { cacheDir: path.join(tmp, "identity-one-cache") });
    expect(one.sha256).toBe(sha256(referenceZip(sources.slice(0, 3))));
  });

  it("compresses each distinct content once per run, and reuses a checked stream in a later run", () => {
    const cacheDir = path.join(tmp, "reuse-cache");
    dropStreamStores();
    const first = writeDeterministicZipSync(sources, path.join(tmp, "reuse-1.zip"), { cacheDir });
    const store = streamStore(cacheDir);
    const distinct = new Set(sources.filter((s) => s.file).map((s) => fileSha(s.file!))).size;
    expect(store.stats.compressed).toBe(distinct);
    // Another archive of the same run sharing most files compresses only the new one.
    const extra = path.join(tmp, "corpus", "extra");
    fs.writeFileSync(extra, "new content\n");
    writeDeterministicZipSync([...sources, { path: "extra.py", file: extra, executable: false }], path.join(tmp, "reuse-2.zip"), { cacheDir });
    expect(store.stats.compressed).toBe(distinct + 1);
    // A new process: every stream from the packs, checked, none compressed, the same bytes.
    dropStreamStores();
    const again = writeDeterministicZipSync(sources, path.join(tmp, "reuse-3.zip"), { cacheDir });
    expect(streamStore(cacheDir).stats).toEqual({ compressed: 0, reused: distinct, rejected: 0 });
    expect(again.sha256).toBe(first.sha256);
  });

  it("never trusts a corrupt pack, a corrupt stream, or a pack of other deflate settings: compresses again, same bytes", () => {
    const expected = sha256(referenceZip(sources));
    const cacheDir = path.join(tmp, "corrupt-cache");
    dropStreamStores();
    writeDeterministicZipSync(sources, path.join(tmp, "corrupt-0.zip"), { cacheDir });
    const dir = streamStore(cacheDir).dir;
    const packs = () => fs.readdirSync(dir).filter((f) => f.endsWith(".pack")).map((f) => path.join(dir, f));
    const damage = (how: (data: Buffer) => void) => {
      for (const pack of packs()) {
        const data = fs.readFileSync(pack);
        how(data);
        fs.writeFileSync(pack, data);
      }
      dropStreamStores();
      const written = writeDeterministicZipSync(sources, path.join(tmp, "corrupt.zip"), { cacheDir });
      expect(written.sha256).toBe(expected);
      const stats = streamStore(cacheDir).stats;
      expect(stats.rejected).toBeGreaterThan(0);
      expect(stats.compressed).toBeGreaterThan(0);
    };
    // A flipped byte inside the streams (the index intact): the stream's SHA-256 no longer matches.
    damage((data) => (data[10] ^= 0xff));
    for (const pack of packs()) fs.rmSync(pack);
    dropStreamStores();
    writeDeterministicZipSync(sources, path.join(tmp, "corrupt-1.zip"), { cacheDir });
    // A flipped byte in the index: the pack is ignored.
    damage((data) => (data[data.length - 100] ^= 0xff));
    for (const pack of packs()) fs.rmSync(pack);
    dropStreamStores();
    writeDeterministicZipSync(sources, path.join(tmp, "corrupt-2.zip"), { cacheDir });
    // Another deflate setting named in the footer (the settings' SHA-256 at bytes 8–40 from the footer's start).
    damage((data) => (data[data.length - 80 + 8] ^= 0xff));
    // Truncated.
    for (const pack of packs()) fs.truncateSync(pack, Math.floor(fs.statSync(pack).size / 2));
    dropStreamStores();
    expect(writeDeterministicZipSync(sources, path.join(tmp, "corrupt-3.zip"), { cacheDir }).sha256).toBe(expected);
  });

  it("a stream whose recorded content and hashes agree but which inflates to other bytes is not used", () => {
    // The strongest corruption: a pack rewritten consistently (stream, index and footer hashes) around another file's stream.
    const cacheDir = path.join(tmp, "forged-cache");
    dropStreamStores();
    const two = sources.slice(0, 2);
    writeDeterministicZipSync(two, path.join(tmp, "forged-0.zip"), { cacheDir });
    const store = streamStore(cacheDir);
    const [pack] = fs.readdirSync(store.dir).filter((f) => f.endsWith(".pack"));
    const file = path.join(store.dir, pack!);
    const data = fs.readFileSync(file);
    const count = Number(data.readBigUInt64LE(data.length - 80 + 40));
    const indexAt = data.length - 80 - count * 96;
    // Swap the two entries' content digests, then re-seal the index hash.
    const first = Buffer.from(data.subarray(indexAt, indexAt + 32));
    data.copy(data, indexAt, indexAt + 96, indexAt + 128);
    first.copy(data, indexAt + 96);
    createHash("sha256").update(data.subarray(indexAt, data.length - 80)).digest().copy(data, data.length - 32);
    fs.writeFileSync(file, data);
    dropStreamStores();
    const written = writeDeterministicZipSync(two, path.join(tmp, "forged-1.zip"), { cacheDir });
    expect(written.sha256).toBe(sha256(referenceZip(two)));
    expect(streamStore(cacheDir).stats.rejected).toBe(2);
  });

  it("refuses a file whose content no longer has the digest it was hashed to, rather than archive it", async () => {
    const copy = copyExample({ prefix: "archive-streams-stale-" });
    try {
      const analysis = await analyzeImages(loadManifest(copy.manifest));
      const image = analysis.images.find((i) => i.spec.kind === "lambda")!;
      const target = image.selection.files.find((f) => f.entry.kind === "file")!.entry.path;
      fs.appendFileSync(path.join(copy.dir, target), "# edited after hashing\n");
      expect(() =>
        writeContextArchiveSync(analysis.manifest.root, image.selection.files, path.join(tmp, "stale.zip"), image.spec.context, { cacheDir: path.join(tmp, "stale-cache"), digests: analysis.digests }),
      ).toThrow(/changed while it was archived/);
      expect(fs.existsSync(path.join(tmp, "stale.zip"))).toBe(false);
    } finally {
      copy.cleanup();
    }
  });

  it("two checkouts at different paths, each with its own cache or sharing one, give byte-identical archives", async () => {
    const copies: ExampleCopy[] = [copyExample({ prefix: "archive-streams-a-" }), copyExample({ prefix: "archive-streams-bb-" })];
    try {
      const sums = new Map<string, Set<string>>();
      const shared = path.join(tmp, "checkouts-shared-cache");
      for (const [n, copy] of copies.entries()) {
        const analysis = await analyzeImages(loadManifest(copy.manifest));
        for (const cacheDir of [path.join(tmp, `checkouts-cache-${n}`), shared, undefined]) {
          dropStreamStores();
          for (const image of analysis.images) {
            const out = path.join(tmp, `checkout-${n}-${image.spec.name}.zip`);
            const written = writeContextArchiveSync(analysis.manifest.root, image.selection.files, out, image.spec.context, { cacheDir, digests: analysis.digests });
            if (!sums.has(image.spec.name)) sums.set(image.spec.name, new Set());
            sums.get(image.spec.name)!.add(written.sha256);
          }
        }
      }
      expect(sums.size).toBeGreaterThan(3);
      for (const [name, set] of sums) expect([name, set.size]).toEqual([name, 1]);
    } finally {
      for (const copy of copies) copy.cleanup();
    }
  });

  it("is safe under concurrent synths sharing a cache directory: whole packs only, every archive the same", async () => {
    const cacheDir = path.join(tmp, "concurrent-cache");
    const list = path.join(tmp, "concurrent-sources.json");
    fs.writeFileSync(list, JSON.stringify(sources));
    const script = (n: number) => `
      import * as fs from "node:fs";
      import { writeDeterministicZipSync } from ${JSON.stringify(path.join(REPO, "src/archive/context-archive.ts"))};
      const sources = JSON.parse(fs.readFileSync(${JSON.stringify(list)}, "utf8"));
      process.stdout.write(writeDeterministicZipSync(sources, ${JSON.stringify(path.join(tmp, `concurrent-${n}.zip`))}, { cacheDir: ${JSON.stringify(cacheDir)} }).sha256);
    `;
    const run = (n: number) =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script(n)], { cwd: REPO });
        let out = "";
        let err = "";
        child.stdout.on("data", (d) => (out += d));
        child.stderr.on("data", (d) => (err += d));
        child.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(err))));
      });
    const sums = await Promise.all([run(1), run(2), run(3)]);
    const expected = sha256(referenceZip(sources));
    expect(sums).toEqual([expected, expected, expected]);
    const dir = streamStore(cacheDir).dir;
    expect(fs.readdirSync(dir).filter((f) => !f.endsWith(".pack"))).toEqual([]);
    // Whatever they wrote is whole: a new process takes every stream from the packs, none rejected.
    dropStreamStores();
    expect(writeDeterministicZipSync(sources, path.join(tmp, "concurrent-after.zip"), { cacheDir }).sha256).toBe(expected);
    expect(streamStore(cacheDir).stats).toMatchObject({ compressed: 0, rejected: 0 });
  }, 120_000);
});
