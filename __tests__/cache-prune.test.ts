import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { cacheMaxAgeDays, DEFAULT_CACHE_MAX_AGE_DAYS, forgetCacheUse, markCacheUsed, PRUNE_STAMP, pruneCache, pruneCacheDaily } from "../src/archive/cache-prune.ts";
import { dropStreamStores } from "../src/archive/deflate-streams.ts";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";
import { normalizeSynth, synthExample } from "./helpers/synth.ts";

// The cache directory is pruned by age: entries a synth used get fresh mtimes, and once a day a
// synth removes what nobody used for the maximum age. Nothing else is touched.

const DAY = 86_400_000;
const HASH = "0123456789abcdef";
const HASH2 = "fedcba9876543210";
let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cache-prune-"));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});
afterEach(() => {
  forgetCacheUse();
});

let count = 0;
/** A fresh cache directory. */
const cacheDir = () => fs.mkdtempSync(path.join(tmp, `cache-${count++}-`));

/** Writes a file (or makes a directory with a file in it, for a name ending in `/`) aged `days`. */
function entry(dir: string, rel: string, days: number): string {
  const file = path.join(dir, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  if (rel.endsWith("/")) {
    fs.mkdirSync(file, { recursive: true });
    fs.writeFileSync(path.join(file, "inside.py"), "x");
  } else fs.writeFileSync(file, "x");
  age(file, days);
  return file.replace(/\/$/, "");
}

function age(file: string, days: number): void {
  const time = new Date(Date.now() - days * DAY);
  fs.utimesSync(file, time, time);
}

/** Every path under `dir` (files and directories), relative, sorted. */
function tree(dir: string): string[] {
  const out: string[] = [];
  const visit = (d: string) => {
    for (const child of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, child.name);
      out.push(path.relative(dir, p));
      if (child.isDirectory()) visit(p);
    }
  };
  visit(dir);
  return out.sort();
}

describe("pruneCache", () => {
  it("removes exactly the entries older than the maximum age, of every kind", () => {
    const dir = cacheDir();
    const old = [
      entry(dir, `contexts/lambda-sync-dynamo-${HASH}.zip`, 30),
      entry(dir, `contexts/lambda-sync-dynamo-${HASH}.zip.json`, 30),
      // A sidecar whose archive is gone.
      entry(dir, `contexts/lambda-upload-images-${HASH}.zip.json`, 30),
      // Temporary files of a write that died, a day old.
      entry(dir, `contexts/lambda-create-labels-${HASH}.zip.123.tmp`, 2),
      entry(dir, `contexts/lambda-create-labels-${HASH}.zip.json.123.tmp`, 2),
      entry(dir, `staged/receipt-dynamo-${HASH}/`, 30),
      entry(dir, `staged/receipt-dynamo-${HASH}.complete`, 30),
      // A staged directory without a marker, a day old: a synth died while staging it.
      entry(dir, `staged/receipt-label-${HASH2}/`, 2),
      entry(dir, `deflate-0123456789ab/1234-0123456789ab-0-5.pack`, 30),
      entry(dir, `deflate-ba9876543210/99-0123456789ab-3-0.pack`, 30),
    ];
    const fresh = [
      entry(dir, `contexts/lambda-sync-dynamo-${HASH2}.zip`, 1),
      entry(dir, `contexts/lambda-sync-dynamo-${HASH2}.zip.json`, 1),
      // An archive used lately whose sidecar is old (refreshed together, so the newer decides).
      entry(dir, `contexts/base-receipt-label-${HASH}.zip`, 1),
      entry(dir, `contexts/base-receipt-label-${HASH}.zip.json`, 30),
      // Being written now.
      entry(dir, `contexts/lambda-create-labels-${HASH2}.zip.77.tmp`, 0.5),
      // An old directory with a fresh marker: its marker decides.
      entry(dir, `staged/receipt-label-${HASH}/`, 30),
      entry(dir, `staged/receipt-label-${HASH}.complete`, 1),
      // Being staged now.
      entry(dir, `staged/receipt-chroma-${HASH}/`, 0.5),
      entry(dir, `deflate-0123456789ab/1234-0123456789ab-1-5.pack`, 13),
      // A spill is the store's business.
      entry(dir, `deflate-0123456789ab/1234-0123456789ab-0-7.spill`, 30),
    ];
    // Names of other shapes, and what is not ours (digests, the runner, the starter zip): never removed.
    const foreign = [
      entry(dir, "contexts/notes.zip", 30),
      entry(dir, "contexts/lambda-x-0123.zip", 30),
      entry(dir, `contexts/lambda-x-${HASH}.zip.bak`, 30),
      entry(dir, "staged/something/", 30),
      entry(dir, "staged/something.complete", 30),
      entry(dir, "deflate-0123456789ab/keep.pack", 30),
      entry(dir, "deflate-other/1234-0123456789ab-0-5.pack", 30),
      entry(dir, `digests-${HASH}.bin`, 30),
      entry(dir, "build-starter.zip", 30),
      entry(dir, "runner/runner.cjs", 30),
    ];
    const before = tree(dir);
    const removed = pruneCache(dir, 14 * DAY);
    expect(removed.sort()).toEqual([...old].sort());
    for (const file of [...fresh, ...foreign]) expect(fs.existsSync(file), file).toBe(true);
    // Directories of removed staged contexts go with their contents.
    expect(tree(dir)).toEqual(before.filter((p) => !old.some((o) => path.join(dir, p) === o || path.join(dir, p).startsWith(`${o}/`))));
  });

  it("leaves what this process used, and refreshes its mtime", () => {
    const dir = cacheDir();
    const zip = entry(dir, `contexts/lambda-sync-dynamo-${HASH}.zip`, 30);
    const sidecar = entry(dir, `contexts/lambda-sync-dynamo-${HASH}.zip.json`, 30);
    const marker = entry(dir, `staged/receipt-dynamo-${HASH}.complete`, 30);
    const staged = entry(dir, `staged/receipt-dynamo-${HASH}/`, 30);
    const pack = entry(dir, `deflate-0123456789ab/1-0123456789ab-0-5.pack`, 30);
    markCacheUsed(zip, sidecar, marker, pack);
    for (const file of [zip, sidecar, marker, pack]) expect(Date.now() - fs.statSync(file).mtimeMs).toBeLessThan(60_000);
    // Aged again behind its back (the clock of another machine, say): still never pruned by this process.
    for (const file of [zip, sidecar, marker, pack]) age(file, 30);
    expect(pruneCache(dir, 14 * DAY)).toEqual([]);
    expect(fs.existsSync(staged)).toBe(true);
  });

  it("follows no symlink out of the cache directory", () => {
    const dir = cacheDir();
    const outside = fs.mkdtempSync(path.join(tmp, "outside-"));
    const victim = entry(outside, `lambda-sync-dynamo-${HASH}.zip`, 30);
    const victimDir = entry(outside, `receipt-dynamo-${HASH}/`, 30);
    fs.symlinkSync(outside, path.join(dir, "contexts"));
    fs.mkdirSync(path.join(dir, "staged"));
    fs.symlinkSync(victimDir, path.join(dir, "staged", `receipt-dynamo-${HASH}`));
    entry(dir, `staged/receipt-dynamo-${HASH}.complete`, 30);
    pruneCache(dir, 14 * DAY);
    expect(fs.existsSync(victim)).toBe(true);
    expect(fs.existsSync(path.join(victimDir, "inside.py"))).toBe(true);
  });
});

describe("pruneCacheDaily", () => {
  it("prunes at most once a day, by its stamp", () => {
    const dir = cacheDir();
    const now = Date.now();
    entry(dir, `deflate-0123456789ab/1-0123456789ab-0-5.pack`, 30);
    expect(pruneCacheDaily(dir, { now, maxAgeDays: 14 })).toHaveLength(1);
    const stamp = path.join(dir, PRUNE_STAMP);
    expect(Math.abs(fs.statSync(stamp).mtimeMs - now)).toBeLessThan(1);
    const later = entry(dir, `deflate-0123456789ab/1-0123456789ab-1-5.pack`, 30);
    expect(pruneCacheDaily(dir, { now: now + 23 * 3_600_000, maxAgeDays: 14 })).toBeUndefined();
    expect(fs.existsSync(later)).toBe(true);
    expect(pruneCacheDaily(dir, { now: now + 25 * 3_600_000, maxAgeDays: 14 })).toEqual([later]);
  });

  it("never throws, also for a cache directory that does not exist", () => {
    expect(pruneCacheDaily(path.join(tmp, "missing"))).toBeUndefined();
    expect(fs.existsSync(path.join(tmp, "missing"))).toBe(false);
  });

  it("takes the maximum age from LAMBDA_IMAGES_CACHE_MAX_AGE_DAYS", () => {
    const dir = cacheDir();
    const pack = entry(dir, `deflate-0123456789ab/1-0123456789ab-0-5.pack`, 3);
    const saved = process.env.LAMBDA_IMAGES_CACHE_MAX_AGE_DAYS;
    try {
      process.env.LAMBDA_IMAGES_CACHE_MAX_AGE_DAYS = "2";
      expect(pruneCacheDaily(dir)).toEqual([pack]);
    } finally {
      if (saved === undefined) delete process.env.LAMBDA_IMAGES_CACHE_MAX_AGE_DAYS;
      else process.env.LAMBDA_IMAGES_CACHE_MAX_AGE_DAYS = saved;
    }
  });
});

describe("cacheMaxAgeDays", () => {
  it("is a positive number of days; a bad value is ignored for the default", () => {
    expect(DEFAULT_CACHE_MAX_AGE_DAYS).toBe(14);
    expect(cacheMaxAgeDays({})).toBe(14);
    expect(cacheMaxAgeDays({ LAMBDA_IMAGES_CACHE_MAX_AGE_DAYS: "30" })).toBe(30);
    expect(cacheMaxAgeDays({ LAMBDA_IMAGES_CACHE_MAX_AGE_DAYS: " 0.5 " })).toBe(0.5);
    for (const bad of ["0", "-3", "two weeks", "Infinity", "", "NaN"]) expect(cacheMaxAgeDays({ LAMBDA_IMAGES_CACHE_MAX_AGE_DAYS: bad }), bad).toBe(14);
  });
});

describe("through a synth", () => {
  let copy: ExampleCopy;
  beforeAll(() => {
    copy = copyExample({ prefix: "cache-prune-" });
  });
  afterAll(() => {
    copy.cleanup();
  });

  /** The cache's prunable entries: archives and sidecars, staged markers and directories, packs. */
  function cacheEntries(dir: string): string[] {
    const out: string[] = [];
    for (const sub of ["contexts", "staged"]) for (const name of fs.readdirSync(path.join(dir, sub))) out.push(path.join(dir, sub, name));
    for (const name of fs.readdirSync(dir).filter((n) => n.startsWith("deflate-"))) {
      for (const pack of fs.readdirSync(path.join(dir, name))) out.push(path.join(dir, name, pack));
    }
    return out.sort();
  }

  /** Every file under a synth's output, by relative path, with its content's SHA-256 (not `.staged-assets/`: stat data of the output's own directories, different in any two). */
  function output(outdir: string): Record<string, string> {
    const out: Record<string, string> = {};
    const visit = (d: string) => {
      for (const child of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, child.name);
        if (child.isDirectory()) {
          if (child.name !== ".staged-assets") visit(p);
        }
        else out[path.relative(outdir, p)] = child.isSymbolicLink() ? `-> ${fs.readlinkSync(p)}` : createHash("sha256").update(fs.readFileSync(p)).digest("hex");
      }
    };
    visit(outdir);
    return out;
  }

  /** A synth as a new process would run it: nothing remembered from an earlier synth. */
  async function synth(outdir: string, workDir: string) {
    forgetCacheUse();
    dropStreamStores();
    return synthExample(copy.dir, path.join(tmp, outdir), { workDir });
  }

  it("keeps what the next synth used, removes the rest, and changes no output", async () => {
    const workDir = path.join(tmp, "synth-cache");
    await synth("out-1", workDir);
    const first = cacheEntries(workDir);
    expect(first.some((p) => p.endsWith(".complete"))).toBe(true);
    expect(first.some((p) => p.endsWith(".pack"))).toBe(true);
    // A month without a synth; the stamp of the first synth's pruning gone with it.
    for (const file of first) age(file, 30);
    fs.rmSync(path.join(workDir, PRUNE_STAMP));
    fs.appendFileSync(copy.file("infra/sync_dynamo/handler.py"), "\n# edited\n");

    const started = Date.now() - 1000;
    const second = await synth("out-2", workDir);
    const after = cacheEntries(workDir);
    // What the second synth used is still there, with its use recorded; nothing old is left (a
    // staged directory keeps its age: its marker records its use, its files are linked into the output).
    for (const file of after.filter((p) => !fs.statSync(p).isDirectory())) expect(fs.statSync(file).mtimeMs, file).toBeGreaterThanOrEqual(started);
    for (const dir of after.filter((p) => fs.statSync(p).isDirectory())) expect(after, dir).toContain(`${dir}.complete`);
    const removed = first.filter((p) => !after.includes(p));
    const kept = first.filter((p) => after.includes(p));
    // The edited image's old archive is gone; the unchanged images' archives and the staged bases were reused.
    expect(removed.map((p) => path.relative(workDir, p).replace(/[0-9a-f]{16}/, "<hash>"))).toEqual(["contexts/lambda-sync-dynamo-<hash>.zip", "contexts/lambda-sync-dynamo-<hash>.zip.json"]);
    expect(after.filter((p) => /lambda-sync-dynamo-[0-9a-f]{16}\.zip$/.test(p))).toHaveLength(1);
    // Its new archive took the unchanged files' streams from the old pack.
    expect(kept.filter((p) => p.endsWith(".pack")).length).toBeGreaterThan(0);
    expect(kept.filter((p) => p.endsWith(".zip")).length).toBeGreaterThan(0);
    expect(kept.filter((p) => p.endsWith(".complete")).length).toBeGreaterThan(0);
    for (const marker of kept.filter((p) => p.endsWith(".complete"))) expect(fs.existsSync(marker.replace(/\.complete$/, ""))).toBe(true);

    // The same output as a synth with an empty cache.
    const clean = await synth("out-3", path.join(tmp, "synth-empty-cache"));
    expect(normalizeSynth(second.stacks)).toEqual(normalizeSynth(clean.stacks));
    expect(output(second.outdir)).toEqual(output(clean.outdir));
  }, 300_000);
});
