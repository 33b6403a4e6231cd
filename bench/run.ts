/**
 * npm run bench [-- --files N --runs N --synth-runs N --skip-synth --no-write --seed N --real-only]
 *
 * On a generated monorepo (bench/generate.ts: 3 chained base images, 30 Lambdas, two stacks),
 * measures the median of N runs of, in this process:
 *   1. our selection + hashing of every image, empty caches (file contents in the page cache)
 *   2. the same with the caches warm and nothing changed
 *   3. aws-cdk-lib FileSystem.fingerprint per image, DOCKER ignore mode: as one DockerImageAsset
 *      per image uses it (directory = the root, its .dockerignore), and with exact exclusions
 *      (its own disk cache emptied before each run; and warm, for reference)
 *   4. floors: sha256sum over the same files (cold), git status --porcelain on the tree
 *      committed to a throwaway repository (warm)
 * and as whole processes (what a user waits for): `lambda-images plan --json` warm and cold,
 * `npm run synth` (the direct synth), `cdktf synth` of the bench tree against `cdktf synth` of
 * one empty stack, the size of cdktf.out against the distinct bytes in it, and peak memory.
 * Writes BENCHMARKS.md (full-size runs only, unless --write).
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { analyzeImages, type ImageAnalysis } from "../src/analyze.ts";
import { openDigestCache, TIMESTAMP_MARGIN_NS } from "../src/hashing/cache.ts";
import { loadManifest, type Manifest } from "../src/manifest/load.ts";
import type { WalkEntry } from "../src/selection/walk.ts";
import { DEFAULT_FILES, generateRealTree, generateTree, REAL_SHAPE } from "./generate.ts";

const NOTES_MARKER = "<!-- Hand-written notes below this line are kept when npm run bench rewrites the figures above. -->";
const PROJECT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const { values: args } = parseArgs({
  options: {
    files: { type: "string", default: String(DEFAULT_FILES) },
    seed: { type: "string", default: "1" },
    runs: { type: "string", default: "5" },
    "synth-runs": { type: "string", default: "3" },
    "skip-synth": { type: "boolean", default: false },
    "real-only": { type: "boolean", default: false },
    write: { type: "boolean" },
    "no-write": { type: "boolean", default: false },
    dir: { type: "string", default: path.join(PROJECT, ".bench") },
  },
});
const FILES = Number(args.files);
const RUNS = Number(args.runs);
const SYNTH_RUNS = Number(args["synth-runs"]);
/** The figures that take under a second get three times the runs: their medians are what the targets compare, and a shared machine's noise moves them most. */
const FAST_RUNS = 3 * RUNS;
/** The real shape's synths take seconds, not tens: five pairs, so one slow minute moves neither median. */
const REAL_SYNTH_RUNS = Math.max(SYNTH_RUNS, 5);
const WRITE = args["no-write"] ? false : (args.write ?? FILES === DEFAULT_FILES);
const BENCH_DIR = path.resolve(args.dir!);
if (!Number.isInteger(FILES) || FILES < 100) throw new Error("--files must be an integer >= 100");

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const log = (s: string) => process.stderr.write(`${s}\n`);
const LOAD_AT_START = os.loadavg().map((l) => l.toFixed(1)).join(", ");

async function timeRuns(label: string, runs: number, before: (() => void) | undefined, fn: () => unknown): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    before?.();
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  log(`  ${label}: ${times.map(ms).join(", ")} ms`);
  return times;
}

/** Waits until every file in the tree is older than the digest cache's racy-timestamp margin. */
async function waitOutRacyWindow(root: string, analysis: ImageAnalysis): Promise<void> {
  let youngest = 0n;
  for (const e of analysis.walk.entries) for (const t of [e.mtimeNs, e.ctimeNs]) if (t > youngest) youngest = t;
  void root;
  const waitMs = Number(youngest + TIMESTAMP_MARGIN_NS - BigInt(Date.now()) * 1_000_000n) / 1e6 + 50;
  if (waitMs > 0) {
    log(`waiting ${ms(waitMs)} ms: files this young are not cached (racy-timestamp rule)`);
    await new Promise((r) => setTimeout(r, waitMs));
  }
}

/** The exclusion list a DockerImageAsset (directory = root) needs to send exactly our selection. */
function cdkExcludes(manifest: Manifest, analysis: ImageAnalysis, image: ImageAnalysis["images"][number]): string[] {
  const ignoreFile = path.join(manifest.root, ".dockerignore");
  const rules = fs.existsSync(ignoreFile)
    ? fs.readFileSync(ignoreFile, "utf8").split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith("#"))
    : [];
  const packages = image.selection.excludedPackages;
  void analysis;
  return ["**", ...image.selection.sourcePatterns.map((p) => `!${p}`), `!${image.spec.dockerfile}`, ...rules, ...packages];
}

function machine() {
  const cpus = os.cpus();
  let fsType = "";
  try {
    fsType = execFileSync("stat", ["-f", "-c", "%T", BENCH_DIR], { encoding: "utf8" }).trim();
  } catch {
    fsType = "unknown";
  }
  return {
    cpu: cpus[0]?.model ?? "unknown",
    cores: cpus.length,
    memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    load: os.loadavg().map((l) => l.toFixed(1)).join(", "),
    fs: fsType,
    date: new Date().toISOString().slice(0, 10),
  };
}

/** `--real-only`: the real-repository shape alone (whole processes, cold and warm), printed; BENCHMARKS.md is not rewritten. */
async function realOnly(): Promise<void> {
  fs.mkdirSync(BENCH_DIR, { recursive: true });
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "lambda-images-bench-"));
  try {
    const results: Record<string, number[]> = {};
    const real = await realShape(scratch, results);
    const m = machine();
    const med = (k: string) => median(results[k]!);
    const cpu = (k: string) => (results[`${k}Cpu`] ? `; CPU ${ms(med(`${k}Cpu`))} ms` : "");
    const rows = [
      ["npm run synth (direct)", "realSynthWarm", "realSynthCold"],
      ["lambda-images plan --json", "realPlanWarm", "realPlanCold"],
      ...(results.realCdktfWarm ? [["cdktf synth", "realCdktfWarm", "realCdktfCold"]] : []),
    ];
    const lines = [
      `Machine: ${m.cpu}, ${m.cores} cores, ${m.memory}; ${m.os}; ${m.fs}; Node ${m.node}. Load average at the start: ${LOAD_AT_START}; at the end: ${m.load}. Date: ${m.date}.`,
      `Real-repository shape: ${real.files} files, ${real.images} images in two stacks, ${(real.contextBytes / 2 ** 20).toFixed(1)} MiB of context files in all, ${real.distinctFiles} distinct selected files (${(real.distinctBytes / 2 ** 20).toFixed(2)} MiB). Medians of ${REAL_SYNTH_RUNS} synths and ${FAST_RUNS} plans, warm and cold alternating.`,
      "",
      "| command | warm (ms) | cold (ms) | cold / warm |",
      "|---|---:|---:|---:|",
      ...rows.map(([label, warm, cold]) => `| ${label} | ${ms(med(warm!))}${cpu(warm!)} | ${ms(med(cold!))}${cpu(cold!)} | ${(med(cold!) / med(warm!)).toFixed(2)}× (CPU ${results[`${cold}Cpu`] ? (med(`${cold}Cpu`) / med(`${warm}Cpu`)).toFixed(2) : "-"}×) |`),
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (args["real-only"]) return realOnly();
  fs.mkdirSync(BENCH_DIR, { recursive: true });
  log(`generating a ${FILES}-file monorepo under ${path.relative(PROJECT, BENCH_DIR) || BENCH_DIR} ...`);
  const tree = generateTree(BENCH_DIR, { files: FILES, seed: Number(args.seed) });
  const manifest = loadManifest(tree.manifest);
  const images = manifest.baseImages.length + manifest.lambdas.length;

  // Warm the page cache and the JIT (untimed): one full analysis reads every selected file.
  const first = await analyzeImages(manifest);
  const unique = [...first.digests.keys()];
  const selectedBytes = unique.reduce((n, p) => n + first.walk.byPath.get(p)!.size, 0);
  const perImageFiles = first.images.reduce((n, i) => n + i.selection.files.length, 0);
  log(`${tree.files} files (${(tree.bytes / 1e6).toFixed(0)} MB), ${images} images; ${unique.length} distinct selected files (${(selectedBytes / 1e6).toFixed(0)} MB), ${perImageFiles} image-file pairs`);

  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "lambda-images-bench-"));
  const results: Record<string, number[]> = {};
  try {
    // 1. Cold: an empty digest cache each run.
    log("ours, cold digest cache:");
    let cacheDir = "";
    results.cold = await timeRuns("cold", FAST_RUNS, () => {
      cacheDir = fs.mkdtempSync(path.join(scratch, "cold-"));
    }, async () => {
      const cache = openDigestCache({ root: manifest.root, dir: cacheDir });
      await analyzeImages(manifest, { cache });
      await cache.save();
    });

    // 2. Warm: the cache from a previous run, nothing changed.
    await waitOutRacyWindow(tree.root, first);
    const warmDir = path.join(scratch, "warm");
    {
      const cache = openDigestCache({ root: manifest.root, dir: warmDir });
      await analyzeImages(manifest, { cache });
      await cache.save();
    }
    log("ours, warm digest cache:");
    let warmStats = { hits: 0, misses: 0 };
    results.warm = await timeRuns("warm", FAST_RUNS, undefined, async () => {
      const cache = openDigestCache({ root: manifest.root, dir: warmDir });
      const analysis = await analyzeImages(manifest, { cache });
      await cache.save();
      warmStats = cache.stats();
      if (analysis.images.some((img, i) => img.hash !== first.images[i]!.hash)) throw new Error("warm hashes differ from cold");
    });
    if (warmStats.misses !== 0 || warmStats.hits !== unique.length) throw new Error(`warm run read files: ${JSON.stringify(warmStats)}`);

    // Digest cache load and save at 20,000 entries.
    const cacheMicro = await cacheLoadSave(scratch, manifest.root);
    results.cacheSave = cacheMicro.save;
    results.cacheLoad = cacheMicro.load;

    // 3. aws-cdk-lib, its disk cache under a throwaway HOME.
    const home = path.join(scratch, "home");
    fs.mkdirSync(home);
    process.env.HOME = home;
    const cdk = await import("aws-cdk-lib");
    const excludes = first.images.map((image) => cdkExcludes(manifest, first, image));
    // Check (untimed) that these exclusions select exactly our files.
    first.images.forEach((image, i) => {
      const strategy = cdk.IgnoreStrategy.docker(manifest.root, excludes[i]!);
      const ours = new Set(image.selection.files.map((f) => f.entry.path));
      const theirs = first.walk.entries.filter((e) => !strategy.ignores(path.join(manifest.root, e.path))).map((e) => e.path);
      if (theirs.length !== ours.size || theirs.some((p) => !ours.has(p))) {
        throw new Error(`aws-cdk-lib exclusions for ${image.spec.name} select ${theirs.length} files, ours ${ours.size}`);
      }
    });
    const fingerprintAll = () =>
      first.images.map((_, i) => cdk.FileSystem.fingerprint(manifest.root, { exclude: excludes[i], ignoreMode: cdk.IgnoreMode.DOCKER }));
    // What a DockerImageAsset with the repository root as its directory fingerprints
    // (aws-ecr-assets image-asset.js): the .dockerignore lines, "!.dockerignore", "!<Dockerfile name>".
    const ignoreLines = fs.existsSync(path.join(manifest.root, ".dockerignore"))
      ? fs.readFileSync(path.join(manifest.root, ".dockerignore"), "utf8").split("\n").filter((l) => !!l)
      : [];
    const naturalAll = () =>
      first.images.map((image) =>
        cdk.FileSystem.fingerprint(manifest.root, {
          exclude: [...ignoreLines, "!.dockerignore", `!${path.basename(image.spec.dockerfile)}`],
          ignoreMode: cdk.IgnoreMode.DOCKER,
          extraHash: JSON.stringify({ file: image.spec.dockerfile }),
        }),
      );
    fingerprintAll(); // JIT warm-up
    log("aws-cdk-lib FileSystem.fingerprint:");
    const cdkCache = path.join(home, ".cdk");
    const emptyCdkCache = () => fs.rmSync(cdkCache, { recursive: true, force: true });
    results.cdkNatural = await timeRuns("aws-cdk-lib, a DockerImageAsset per image, its cache empty", Math.min(RUNS, 3), emptyCdkCache, naturalAll);
    // The same as a process of its own (node, aws-cdk-lib loaded, the fingerprints): beside our whole-process plan.
    const cdkJob = path.join(scratch, "cdk-natural.json");
    fs.writeFileSync(cdkJob, JSON.stringify({ root: manifest.root, ignoreLines, dockerfiles: first.images.map((image) => image.spec.dockerfile) }));
    await wholeRuns(results, "cdkNaturalProcess", "process: aws-cdk-lib, a DockerImageAsset per image, its cache empty", Math.min(RUNS, 3), [process.execPath, path.join(PROJECT, "bench", "cdk-natural.mjs"), cdkJob], {
      env: { ...process.env, HOME: home },
      before: emptyCdkCache,
    });
    results.cdkCold = await timeRuns("aws-cdk-lib, exact exclusions, its cache empty", RUNS, emptyCdkCache, fingerprintAll);
    results.cdkWarm = await timeRuns("aws-cdk-lib, exact exclusions, its cache warm", RUNS, undefined, fingerprintAll);

    // 4a. sha256sum over the distinct selected files.
    const list = path.join(scratch, "files.list");
    fs.writeFileSync(list, unique.map((p) => path.join(manifest.root, p)).join("\0"));
    log("floors:");
    results.sha256sum = await timeRuns("sha256sum", FAST_RUNS, undefined, () => {
      const r = spawnSync("xargs", ["-0", "-a", list, "sha256sum"], { stdio: ["ignore", "ignore", "inherit"] });
      if (r.status !== 0) throw new Error("sha256sum failed");
    });
    // 4b. git status on the committed tree (repository kept outside the tree, reused between runs).
    const gitDir = `${tree.root}.git`;
    const git = (...a: string[]) =>
      execFileSync("git", ["-c", "user.name=bench", "-c", "user.email=bench@localhost", "-c", "core.fsmonitor=false", `--git-dir=${gitDir}`, `--work-tree=${tree.root}`, ...a], {
        encoding: "utf8",
        maxBuffer: 256 << 20,
      });
    if (!fs.existsSync(`${gitDir}.done`)) {
      fs.rmSync(gitDir, { recursive: true, force: true });
      execFileSync("git", ["init", "-q", "--bare", gitDir]);
      git("config", "core.bare", "false");
      git("add", "-A");
      git("commit", "-q", "-m", "bench tree");
      fs.writeFileSync(`${gitDir}.done`, "");
    }
    git("update-index", "--refresh");
    if (git("status", "--porcelain") !== "") throw new Error("the bench tree is dirty in its git repository");
    results.gitStatus = await timeRuns("git status --porcelain", FAST_RUNS, undefined, () => {
      const r = spawnSync("git", [`--git-dir=${gitDir}`, `--work-tree=${tree.root}`, "status", "--porcelain"], { stdio: ["ignore", "ignore", "inherit"] });
      if (r.status !== 0) throw new Error("git status failed");
    });

    // Whole processes.
    const whole = await wholeProcesses(scratch, tree.manifest, results);
    const real = await realShape(scratch, results);

    const report = formatReport(machine(), tree, { images, unique: unique.length, selectedBytes, perImageFiles }, results, cacheMicro.bytes, whole, real);
    process.stdout.write(`${report.table}\n`);
    if (WRITE) {
      // Hand-written analysis below the marker survives a re-run.
      const file = path.join(PROJECT, "BENCHMARKS.md");
      const previous = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
      const at = previous.indexOf(NOTES_MARKER);
      fs.writeFileSync(file, `${report.markdown}\n${at >= 0 ? previous.slice(at) : `${NOTES_MARKER}\n`}`);
      log("wrote BENCHMARKS.md");
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

const GNU_TIME = fs.existsSync("/usr/bin/time") ? "/usr/bin/time" : undefined;

type RunOptions = { env: NodeJS.ProcessEnv | (() => NodeJS.ProcessEnv); before?: () => void };
type Runs = { wall: number[]; cpu: number[]; rss: number[] };

/** One whole-process run: its wall time, and its CPU time and peak RSS where GNU time is there. */
function oneRun(command: readonly string[], options: RunOptions, into: Runs): void {
  const report = path.join(os.tmpdir(), `lambda-images-bench-time-${process.pid}`);
  options.before?.();
  const argv = GNU_TIME ? [GNU_TIME, "-q", "-f", "%U %S %M", "-o", report, ...command] : [...command];
  const t = performance.now();
  const env = typeof options.env === "function" ? options.env() : options.env;
  const r = spawnSync(argv[0]!, argv.slice(1), { cwd: PROJECT, env, stdio: ["ignore", "ignore", "pipe"], encoding: "utf8", maxBuffer: 64 << 20 });
  into.wall.push(performance.now() - t);
  if (r.status !== 0) throw new Error(`${command.join(" ")} failed (${r.status}): ${r.stderr}`);
  if (GNU_TIME) {
    const [user, sys, maxKb] = fs.readFileSync(report, "utf8").trim().split("\n").pop()!.split(" ").map(Number);
    into.cpu.push((user! + sys!) * 1000);
    into.rss.push(maxKb! * 1024);
    fs.rmSync(report, { force: true });
  }
}

function recordRuns(results: Record<string, number[]>, key: string, label: string, runs: Runs): void {
  results[key] = runs.wall;
  if (runs.cpu.length) results[`${key}Cpu`] = runs.cpu;
  if (runs.rss.length) results[`${key}Rss`] = runs.rss;
  log(`  ${label}: ${runs.wall.map(ms).join(", ")} ms${runs.cpu.length ? ` (CPU ${runs.cpu.map(ms).join(", ")} ms; peak RSS ${runs.rss.map((b) => (b / 2 ** 20).toFixed(0)).join(", ")} MiB)` : ""}`);
}

/** Runs a command `runs` times as a whole process and records wall time, CPU time and peak RSS under `key`. */
async function wholeRuns(results: Record<string, number[]>, key: string, label: string, runs: number, command: readonly string[], options: RunOptions): Promise<void> {
  const into: Runs = { wall: [], cpu: [], rss: [] };
  for (let i = 0; i < runs; i++) oneRun(command, options, into);
  recordRuns(results, key, label, into);
}

/**
 * Warm and cold runs of one command, alternating (warm, cold, warm, cold, ...): on a shared
 * machine whose speed drifts over minutes, both medians then come from the same minutes, so
 * their ratio measures the command, not the drift.
 */
async function pairedRuns(
  results: Record<string, number[]>,
  keys: { warm: string; cold: string },
  label: string,
  runs: number,
  warm: { command: readonly string[]; options: RunOptions },
  cold: { command: readonly string[]; options: RunOptions },
): Promise<void> {
  const warmRuns: Runs = { wall: [], cpu: [], rss: [] };
  const coldRuns: Runs = { wall: [], cpu: [], rss: [] };
  for (let i = 0; i < runs; i++) {
    oneRun(warm.command, warm.options, warmRuns);
    oneRun(cold.command, cold.options, coldRuns);
  }
  recordRuns(results, keys.warm, `${label}, warm`, warmRuns);
  recordRuns(results, keys.cold, `${label}, cold`, coldRuns);
}

/** Bytes in a directory: per path, per inode (hard links once), and per distinct content. */
function directoryBytes(dir: string): { paths: number; inodes: number; distinct: number } {
  let paths = 0;
  const inodes = new Map<string, number>();
  const contents = new Map<string, number>();
  const visit = (d: string) => {
    for (const child of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, child.name);
      if (child.isDirectory()) visit(p);
      else if (child.isFile()) {
        const st = fs.statSync(p);
        paths += st.size;
        const inode = `${st.dev}:${st.ino}`;
        if (!inodes.has(inode)) {
          inodes.set(inode, st.size);
          contents.set(execFileSync("sha256sum", [p], { encoding: "utf8" }).slice(0, 64), st.size);
        }
      }
    }
  };
  visit(dir);
  const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  return { paths, inodes: sum(inodes), distinct: sum(contents) };
}

export interface WholeProcessFacts {
  readonly out?: { paths: number; inodes: number; distinct: number };
}

/** Whole processes, as a user runs them, on the bench tree (and the example, for the direct synth). */
async function wholeProcesses(scratch: string, manifestFile: string, results: Record<string, number[]>): Promise<WholeProcessFacts> {
  const cache = path.join(scratch, "wp-cache");
  const out = path.join(scratch, "wp-out");
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: os.homedir(), CHECKPOINT_DISABLE: "1", IMAGES_MANIFEST: manifestFile, LAMBDA_IMAGES_CACHE_DIR: cache };
  delete env.CDKTF_OUTDIR;
  const node = process.execPath;
  const bin = path.join(PROJECT, "bin", "lambda-images.mjs");
  const synth = path.join(PROJECT, "bin", "synth.mjs");
  log("whole processes:");
  // Two untimed synths: the first fills the caches (and compiles dist/ if a source changed), the second is warm.
  for (let i = 0; i < 2; i++) {
    const r = spawnSync(node, [synth, "--output", out], { cwd: PROJECT, env, stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
    if (r.status !== 0) throw new Error(`synth failed: ${r.stderr}`);
  }
  const plan = [node, bin, "plan", "--json", "--manifest", manifestFile, "--out", out];
  await wholeRuns(results, "planWarm", "lambda-images plan --json, warm", FAST_RUNS, plan, { env });
  let n = 0;
  const runDir = () => path.join(scratch, `wp-cold-${n}`);
  const fresh = (keepArchives: boolean) => () => {
    n++;
    fs.mkdirSync(runDir(), { recursive: true });
    if (keepArchives) execFileSync("cp", ["-al", path.join(cache, "contexts"), path.join(runDir(), "contexts")]);
  };
  const coldEnv = () => ({ ...env, LAMBDA_IMAGES_CACHE_DIR: runDir() });
  await wholeRuns(results, "planCold", "lambda-images plan --json, digest and selection caches empty (archives kept)", FAST_RUNS, plan, { env: coldEnv, before: fresh(true) });
  // What the first run after a build costs: the bundle compiled without its V8 code cache.
  const noCodeCache = () => ({ ...coldEnv(), LAMBDA_IMAGES_NO_CODE_CACHE: "1" });
  await wholeRuns(results, "planColdNoCode", "lambda-images plan --json, caches empty, no code cache", FAST_RUNS, plan, { env: noCodeCache, before: fresh(true) });
  // Nothing cached at all: plan compresses nothing (it uploads nothing), so the archives' sizes are unknown.
  await wholeRuns(results, "planEmpty", "lambda-images plan --json, nothing cached", Math.min(RUNS, 3), plan, { env: coldEnv, before: fresh(false) });
  await wholeRuns(results, "synthDirect", "npm run synth's direct synth (node bin/synth.mjs), warm", SYNTH_RUNS, [node, synth, "--output", out], { env });
  const facts: { out?: WholeProcessFacts["out"] } = {};
  if (!args["skip-synth"]) {
    const cdktfOut = path.join(scratch, "wp-cdktf-out");
    const cdktf = (app?: string) => ["npx", "cdktf", "synth", "--output", cdktfOut, ...(app ? ["--app", app] : [])];
    spawnSync(cdktf()[0]!, cdktf().slice(1), { cwd: PROJECT, env, stdio: "ignore" }); // warm-up
    await wholeRuns(results, "cdktfSynth", "cdktf synth, bench tree, warm", SYNTH_RUNS, cdktf(), { env });
    facts.out = directoryBytes(cdktfOut);
    await wholeRuns(results, "cdktfEmptyNode", "cdktf synth, one empty stack (node bench/empty-app.mjs)", SYNTH_RUNS, cdktf("node bench/empty-app.mjs"), { env });
    await wholeRuns(results, "cdktfEmptyTsx", "cdktf synth, one empty stack (npx tsx bench/empty-app.ts)", SYNTH_RUNS, cdktf("npx tsx bench/empty-app.ts"), { env });
    // The example (cdktf.json's manifest), as README's `npm run synth`.
    const exampleEnv: NodeJS.ProcessEnv = { ...env, LAMBDA_IMAGES_CACHE_DIR: path.join(scratch, "wp-example-cache") };
    delete exampleEnv.IMAGES_MANIFEST;
    const npmSynth = ["npm", "run", "-s", "synth", "--", "--output", path.join(scratch, "wp-example-out")];
    spawnSync(npmSynth[0]!, npmSynth.slice(1), { cwd: PROJECT, env: exampleEnv, stdio: "ignore" }); // warm-up
    await wholeRuns(results, "exampleSynth", "npm run synth, the example, warm", SYNTH_RUNS, npmSynth, { env: exampleEnv });
  }
  return facts;
}

/** What the real-repository shape's tree holds. */
export interface RealShapeFacts {
  readonly files: number;
  readonly images: number;
  readonly contextBytes: number;
  readonly distinctFiles: number;
  readonly distinctBytes: number;
}

/**
 * The real repository's shape (bench/generate.ts, REAL_SHAPE): whole processes, warm (after a
 * synth, nothing changed) and cold (the cache directory and the output directory removed before
 * each run, as in a fresh CI or Terraform Cloud checkout): `npm run synth`'s direct synth,
 * `cdktf synth` and `lambda-images plan --json` (cold: against the last synth's output, with an
 * empty cache directory).
 */
async function realShape(scratch: string, results: Record<string, number[]>): Promise<RealShapeFacts> {
  const tree = generateRealTree(BENCH_DIR, Number(args.seed));
  const manifest = loadManifest(tree.manifest);
  const analysis = await analyzeImages(manifest);
  let contextBytes = 0;
  for (const image of analysis.images) for (const f of image.selection.files) contextBytes += f.entry.size;
  const stacks = Object.keys(manifest.stacks).length;
  const facts: RealShapeFacts = {
    files: tree.files,
    images: analysis.images.length,
    contextBytes: contextBytes * stacks,
    distinctFiles: analysis.digests.size,
    distinctBytes: [...analysis.digests.keys()].reduce((n, p) => n + analysis.walk.byPath.get(p)!.size, 0),
  };
  log(`real-repository shape: ${tree.files} files, ${facts.images} images in ${stacks} stacks, ${(facts.contextBytes / 2 ** 20).toFixed(1)} MiB of context files in all (${facts.distinctFiles} distinct files, ${(facts.distinctBytes / 2 ** 20).toFixed(2)} MiB)`);
  const cache = path.join(scratch, "real-cache");
  const out = path.join(scratch, "real-out");
  const coldCache = path.join(scratch, "real-cold-cache");
  const coldOut = path.join(scratch, "real-cold-out");
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: os.homedir(), CHECKPOINT_DISABLE: "1", IMAGES_MANIFEST: tree.manifest, LAMBDA_IMAGES_CACHE_DIR: cache };
  delete env.CDKTF_OUTDIR;
  const coldEnv: NodeJS.ProcessEnv = { ...env, LAMBDA_IMAGES_CACHE_DIR: coldCache };
  const node = process.execPath;
  const synth = (output: string) => [node, path.join(PROJECT, "bin", "synth.mjs"), "--output", output];
  const plan = [node, path.join(PROJECT, "bin", "lambda-images.mjs"), "plan", "--json", "--manifest", tree.manifest, "--out", out];
  // A quick run (not the full-size tree) takes one run of each: it shows the figures, it does not judge them.
  const runs = FILES === DEFAULT_FILES ? REAL_SYNTH_RUNS : 1;
  const planRuns = FILES === DEFAULT_FILES ? FAST_RUNS : 1;
  const removeCold = () => {
    fs.rmSync(coldCache, { recursive: true, force: true });
    fs.rmSync(coldOut, { recursive: true, force: true });
  };
  for (let i = 0; i < 2; i++) {
    const r = spawnSync(synth(out)[0]!, synth(out).slice(1), { cwd: PROJECT, env, stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
    if (r.status !== 0) throw new Error(`synth failed: ${r.stderr}`);
  }
  // Warm and cold alternate (see pairedRuns): their ratio is the target.
  const warmOptions = { env };
  const coldOptions = { env: coldEnv, before: removeCold };
  await pairedRuns(results, { warm: "realSynthWarm", cold: "realSynthCold" }, "real shape: npm run synth (direct)", runs, { command: synth(out), options: warmOptions }, { command: synth(coldOut), options: coldOptions });
  await pairedRuns(results, { warm: "realPlanWarm", cold: "realPlanCold" }, "real shape: lambda-images plan --json", planRuns, { command: plan, options: warmOptions }, { command: plan, options: coldOptions });
  if (!args["skip-synth"]) {
    const cdktf = (output: string) => ["npx", "cdktf", "synth", "--output", output];
    await pairedRuns(results, { warm: "realCdktfWarm", cold: "realCdktfCold" }, "real shape: cdktf synth", runs, { command: cdktf(out), options: warmOptions }, { command: cdktf(coldOut), options: coldOptions });
  }
  removeCold();
  return facts;
}

/** Saves and loads a 20,000-entry digest cache. */
async function cacheLoadSave(scratch: string, root: string) {
  const dir = path.join(scratch, "micro");
  const old = BigInt(Date.now() - 3600_000) * 1_000_000n;
  const entries: WalkEntry[] = Array.from({ length: 20_000 }, (_, i) => ({
    path: `receipt_label/receipt_label/sub_${String(i % 97).padStart(3, "0")}/module_${String(i).padStart(5, "0")}.py`,
    kind: "file",
    size: 1000 + i,
    mtimeNs: old + BigInt(i),
    ctimeNs: old + BigInt(i),
    ino: BigInt(1_000_000 + i),
    mode: 0o100644,
  }));
  const digest = "0123456789abcdef".repeat(4);
  const save: number[] = [];
  const load: number[] = [];
  for (let run = 0; run < RUNS + 1; run++) {
    const writer = openDigestCache({ root, dir });
    for (const e of entries) writer.record(e, digest);
    let t = performance.now();
    await writer.save();
    save.push(performance.now() - t);
    t = performance.now();
    const reader = openDigestCache({ root, dir });
    load.push(performance.now() - t);
    if (reader.stats().loaded !== entries.length) throw new Error("cache did not load");
  }
  save.shift(); // JIT warm-up
  load.shift();
  log(`  digest cache, 20,000 entries: save ${save.map(ms).join(", ")} ms; load ${load.map(ms).join(", ")} ms`);
  return { save, load, bytes: fs.statSync(fs.readdirSync(dir).map((f) => path.join(dir, f))[0]!).size };
}

function formatReport(
  m: ReturnType<typeof machine>,
  tree: { files: number; bytes: number },
  shape: { images: number; unique: number; selectedBytes: number; perImageFiles: number },
  r: Record<string, number[]>,
  cacheBytes: number,
  whole: WholeProcessFacts,
  real: RealShapeFacts,
) {
  const med = (k: string) => (r[k] ? median(r[k]!) : NaN);
  const x = (a: number, b: number) => `${(a / b).toFixed(a / b >= 100 ? 0 : a / b >= 10 ? 1 : 2)}×`;
  const cpu = (k: string) => (r[`${k}Cpu`] ? `CPU ${ms(med(`${k}Cpu`))} ms` : "");
  const rss = (k: string) => (r[`${k}Rss`] ? `peak RSS ${(med(`${k}Rss`) / 2 ** 20).toFixed(0)} MiB` : "");
  const also = (...parts: string[]) => parts.filter(Boolean).join("; ");
  const rows: [string, string, string][] = [
    ["in-process: ours, caches empty (cold)", ms(med("cold")), also(`aws-cdk-lib's natural use is ${x(med("cdkNatural"), med("cold"))} slower`, `${x(med("cold"), med("sha256sum"))} sha256sum`)],
    ["in-process: ours, caches warm (no change)", ms(med("warm")), `${x(med("warm"), med("gitStatus"))} git status; ${x(med("cdkWarm"), med("warm"))} faster than aws-cdk-lib warm`],
    ["aws-cdk-lib, a DockerImageAsset per image (root, .dockerignore), its cache empty", ms(med("cdkNatural")), ""],
    ["aws-cdk-lib, exact exclusions per image, its cache empty", ms(med("cdkCold")), `${x(med("cdkCold"), med("cold"))} ours cold`],
    ["aws-cdk-lib, exact exclusions per image, its cache warm", ms(med("cdkWarm")), ""],
    ["floor: sha256sum over the selected files", ms(med("sha256sum")), ""],
    ["floor: git status --porcelain", ms(med("gitStatus")), ""],
    ["digest cache save, 20,000 entries", ms(med("cacheSave")), `${(cacheBytes / 1e6).toFixed(2)} MB file`],
    ["digest cache load, 20,000 entries", ms(med("cacheLoad")), ""],
    ["process: lambda-images plan --json, warm", ms(med("planWarm")), also(cpu("planWarm"), rss("planWarm"))],
    ["process: aws-cdk-lib, a DockerImageAsset per image, its cache empty", ms(med("cdkNaturalProcess")), also(cpu("cdkNaturalProcess"), rss("cdkNaturalProcess"))],
    ["process: lambda-images plan --json, caches empty (archives kept)", ms(med("planCold")), also(cpu("planCold"), `aws-cdk-lib's natural use is ${x(med("cdkNaturalProcess"), med("planCold"))} slower as a process, ${x(med("cdkNatural"), med("planCold"))} counting only its fingerprints`, `${x(med("planCold"), med("sha256sum"))} sha256sum`)],
    ["process: the same, without the code cache (a build's first run)", ms(med("planColdNoCode")), cpu("planColdNoCode")],
    ["process: lambda-images plan --json, nothing cached", ms(med("planEmpty")), also(cpu("planEmpty"), "compresses nothing: archive sizes unknown until a synth")],
    ["process: npm run synth (direct), bench tree, warm", ms(med("synthDirect")), also(cpu("synthDirect"), rss("synthDirect"))],
  ];
  if (r.cdktfSynth) {
    rows.push(["process: cdktf synth, bench tree, warm", ms(med("cdktfSynth")), also(cpu("cdktfSynth"), rss("cdktfSynth"), `${x(med("cdktfSynth"), med("cdktfEmptyNode"))} empty (node), ${x(med("cdktfSynth"), med("cdktfEmptyTsx"))} empty (tsx)`)]);
    rows.push(["process: cdktf synth, one empty stack, node", ms(med("cdktfEmptyNode")), also(cpu("cdktfEmptyNode"), rss("cdktfEmptyNode"))]);
    rows.push(["process: cdktf synth, one empty stack, npx tsx", ms(med("cdktfEmptyTsx")), also(cpu("cdktfEmptyTsx"), rss("cdktfEmptyTsx"))]);
    rows.push(["process: npm run synth, the example, warm", ms(med("exampleSynth")), also(cpu("exampleSynth"), rss("exampleSynth"))]);
  }
  rows.push(
    ["real shape: npm run synth (direct), warm", ms(med("realSynthWarm")), also(cpu("realSynthWarm"), rss("realSynthWarm"))],
    ["real shape: npm run synth (direct), cold", ms(med("realSynthCold")), also(cpu("realSynthCold"), rss("realSynthCold"), `${x(med("realSynthCold"), med("realSynthWarm"))} warm`)],
    ["real shape: lambda-images plan --json, warm", ms(med("realPlanWarm")), also(cpu("realPlanWarm"), rss("realPlanWarm"))],
    ["real shape: lambda-images plan --json, cold", ms(med("realPlanCold")), also(cpu("realPlanCold"), rss("realPlanCold"), `${x(med("realPlanCold"), med("realPlanWarm"))} warm`)],
  );
  if (r.realCdktfWarm) {
    rows.push(
      ["real shape: cdktf synth, warm", ms(med("realCdktfWarm")), also(cpu("realCdktfWarm"), rss("realCdktfWarm"))],
      ["real shape: cdktf synth, cold", ms(med("realCdktfCold")), also(cpu("realCdktfCold"), rss("realCdktfCold"), `${x(med("realCdktfCold"), med("realCdktfWarm"))} warm`)],
    );
  }
  const out = whole.out;
  const targets: [string, boolean | undefined, string][] = [
    ["plan warm ≤ 0.5 s (whole process)", med("planWarm") <= 500, `${ms(med("planWarm"))} ms${r.planWarmCpu ? ` (CPU ${ms(med("planWarmCpu"))} ms)` : ""}`],
    [
      "plan cold ≥ 10× faster than aws-cdk-lib's natural use",
      med("cdkNaturalProcess") / med("planCold") >= 10,
      `${x(med("cdkNaturalProcess"), med("planCold"))} process against process (archives kept); ${x(med("cdkNatural"), med("planCold"))} against its fingerprints alone, in its process after aws-cdk-lib has loaded; in-process analysis against those fingerprints ${x(med("cdkNatural"), med("cold"))}`,
    ],
    ["cold no slower than sha256sum", med("planCold") <= med("sha256sum"), `${x(med("planCold"), med("sha256sum"))} (whole process); in-process analysis ${x(med("cold"), med("sha256sum"))}`],
    ["analysis warm ≤ 2× git status", med("warm") <= 2 * med("gitStatus"), x(med("warm"), med("gitStatus"))],
    [
      "cdktf synth warm ≤ 1.3× cdktf synth of one empty stack",
      r.cdktfSynth ? med("cdktfSynth") <= 1.3 * med("cdktfEmptyNode") : undefined,
      r.cdktfSynth
        ? `${x(med("cdktfSynth"), med("cdktfEmptyNode"))} (empty app with node; ${x(med("cdktfSynth"), med("cdktfEmptyTsx"))} with npx tsx)${r.cdktfSynthCpu ? `; in CPU time ${x(med("cdktfSynthCpu"), med("cdktfEmptyNodeCpu"))} and ${x(med("cdktfSynthCpu"), med("cdktfEmptyTsxCpu"))}` : ""}`
        : "not run",
    ],
    ["real shape: npm run synth cold ≤ 2× warm", med("realSynthCold") <= 2 * med("realSynthWarm"), `${x(med("realSynthCold"), med("realSynthWarm"))} (${ms(med("realSynthCold"))} ms against ${ms(med("realSynthWarm"))} ms)${r.realSynthColdCpu ? `; in CPU time ${x(med("realSynthColdCpu"), med("realSynthWarmCpu"))}` : ""}`],
    ["real shape: plan cold ≤ 2× warm", med("realPlanCold") <= 2 * med("realPlanWarm"), `${x(med("realPlanCold"), med("realPlanWarm"))} (${ms(med("realPlanCold"))} ms against ${ms(med("realPlanWarm"))} ms)${r.realPlanColdCpu ? `; in CPU time ${x(med("realPlanColdCpu"), med("realPlanWarmCpu"))}` : ""}`],
    ["npm run synth of the example ≤ 1.5 s", r.exampleSynth ? med("exampleSynth") <= 1500 : undefined, r.exampleSynth ? `${ms(med("exampleSynth"))} ms` : "not run"],
    [
      "cdktf.out ≤ 1.1× the distinct bytes it holds",
      out ? out.inodes <= 1.1 * out.distinct : undefined,
      out ? `${x(out.inodes, out.distinct)} (${(out.inodes / 2 ** 20).toFixed(0)} MiB on disk, ${(out.paths / 2 ** 20).toFixed(0)} MiB counting each hard link, ${(out.distinct / 2 ** 20).toFixed(0)} MiB distinct)` : "not run",
    ],
  ];
  const width = Math.max(...rows.map((x) => x[0].length));
  const table = [
    `${tree.files} files, ${(tree.bytes / 1e6).toFixed(0)} MB; ${shape.images} images; medians of ${RUNS} runs (ours, plan and the floors: ${FAST_RUNS}; synth: ${SYNTH_RUNS})`,
    ...rows.map(([a, b, c]) => `${a.padEnd(width)}  ${b.padStart(8)} ms  ${c}`),
    "",
    ...targets.map(([t, ok, v]) => `${ok === undefined ? "-" : ok ? "met   " : "MISSED"}  ${t}: ${v}`),
  ].join("\n");
  const markdown = [
    "# Benchmarks",
    "",
    "`npm run bench` (code in `bench/`; `npm run bench -- --files 2000` for a quick run, which does not rewrite this file).",
    "",
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memory} memory; ${m.os}; ${m.fs} filesystem; Node ${m.node}. Load average (1, 5, 15 min) at the start of the run: ${LOAD_AT_START}; at the end: ${m.load}${Number(LOAD_AT_START.split(",")[0]) > 1 ? ": the machine was shared with other jobs, so wall times are inflated and noisy; CPU times (whole processes) are steadier" : ""}. Date: ${m.date}.`,
    "",
    `Tree: ${tree.files} files, ${(tree.bytes / 1e6).toFixed(0)} MB (three Python packages, a web app's node_modules, 30 handler directories, tests, docs), generated deterministically.`,
    `Manifest: ${shape.images} images (3 chained base images, 30 Lambdas of which 3 copy every package) in two stacks (dev, prod). Selected: ${shape.unique} distinct files (${(shape.selectedBytes / 1e6).toFixed(0)} MB), ${shape.perImageFiles} image-file pairs.`,
    `Real-repository shape (issue 23): ${real.files} files; ${real.images} images (2 base images, receipt-label built FROM receipt-dynamo; ${REAL_SHAPE.lambdas} Lambdas, of which ${REAL_SHAPE.standalone} have no base image and each ship the same two packages) in two stacks; ${(real.contextBytes / 2 ** 20).toFixed(1)} MiB of context files in all, ${real.distinctFiles} distinct files (${(real.distinctBytes / 2 ** 20).toFixed(2)} MiB).`,
    "File contents are in the page cache for every figure (the untimed first run reads them). Each figure is the median of",
    `${RUNS} runs after an untimed warm-up (our analyses, plan, sha256sum and git status, which take under a second: ${FAST_RUNS}); whole-process synths ${SYNTH_RUNS} runs each (the real shape's ${REAL_SYNTH_RUNS}, warm and cold alternating). "in-process" rows run inside the bench's process; "process" rows are whole processes as a user starts them (wall time; CPU is user + system of the process and its children, steadier on a shared machine; peak RSS of the largest process).`,
    "",
    "| Measurement | Median (ms) | |",
    "|---|---:|---|",
    ...rows.map(([a, b, c]) => `| ${a} | ${b} | ${c} |`),
    "",
    "What is measured:",
    "",
    "- **ours, cold** (in-process): open empty digest and selection caches, `analyzeImages` (one walk, every image's selection, SHA-256 of each distinct selected file, image hashes), save the caches.",
    "- **ours, warm** (in-process): the same with the caches a previous run saved; nothing changed, so no file is read (checked: every digest lookup hits), and each image's selection is reused after its directories', ignore file's and files' stat data are checked.",
    "- **aws-cdk-lib, a DockerImageAsset per image**: what `new DockerImageAsset(this, id, { directory: root, file: <Dockerfile> })` fingerprints: `FileSystem.fingerprint(root, { exclude: [.dockerignore lines, \"!.dockerignore\", \"!<Dockerfile name>\"], ignoreMode: IgnoreMode.DOCKER, extraHash })` once per image, i.e. the whole repository minus `.dockerignore` each time. Its fingerprint disk cache (`~/.cdk/cache`, keyed by inode, mtime and size) is emptied before each run.",
    "- **process: aws-cdk-lib, a DockerImageAsset per image**: the same fingerprints in a process of their own (`node bench/cdk-natural.mjs`: node, aws-cdk-lib loaded, the 33 fingerprints, its cache emptied first), to compare with our whole-process plan; still a lower bound of `cdk synth`, which also starts its CLI and copies each asset into `cdk.out`.",
    "- **aws-cdk-lib, exact exclusions**: the same with `exclude` = `**`, then `!` + each COPY source and the Dockerfile, then the `.dockerignore` rules (checked: it selects exactly our files): aws-cdk-lib given our selection.",
    "- **sha256sum**: `xargs -0 sha256sum` over the distinct selected files: the cost of reading and hashing them once, single-threaded.",
    "- **git status**: `git status --porcelain` on the same tree committed to a throwaway repository (`node_modules/` in `.gitignore`, index refreshed): what it costs to notice that nothing changed.",
    "- **plan** (process): `node bin/lambda-images.mjs plan --json --manifest <tree> --out <last synth>` (the compiled CLI, as `npx lambda-images` runs it); warm after a synth; \"caches empty\" with a fresh cache directory holding only the last synth's context archives (the digests and selections are computed again); \"nothing cached\" with an empty cache directory (plan compresses nothing it does not upload, so the archives' sizes are reported once a synth has compressed their files). Every process row runs the commands' bundles compiled from their V8 code cache (`dist/*.v8cache`, written by each command's first run after a build), except \"without the code cache\" (`LAMBDA_IMAGES_NO_CODE_CACHE=1`).",
    "- **real shape** (process): on the real-repository shape, `npm run synth`'s direct synth, `cdktf synth` and `lambda-images plan --json` warm (after a synth; nothing changed) and cold: the cache directory (digests, selections, archives, compressed streams, the runner bundle) and the output directory removed before each run, as in a fresh CI or Terraform Cloud checkout (`plan` then compares with the last warm synth's output). dist/ and its code cache are kept. Warm and cold runs alternate, so both medians come from the same minutes of a machine whose speed drifts; synths 5 pairs (`--synth-runs` if more), plans 15.",
    "- **synth** (process): `npm run synth`'s direct synth (`node bin/synth.mjs`: the compiled app, in one process) and `npx cdktf synth` (cdktf.json's app: `node bin/app.mjs`, the compiled app) of the bench tree's two stacks, against `npx cdktf synth --app` of an app that only creates one empty `TerraformStack` (run with node, and with `npx tsx` as a TypeScript app would be); and README's `npm run synth` of the example. cdktf.out is measured after the bench tree's `cdktf synth`: bytes per inode (hard links counted once, as the disk holds them) against distinct contents.",
    "",
    "## Targets",
    "",
    "| Target | Result | |",
    "|---|---|---|",
    ...targets.map(([t, ok, v]) => `| ${t} | ${v} | ${ok === undefined ? "not run" : ok ? "met" : "**missed**"} |`),
    "",
  ].join("\n");
  return { table, markdown };
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
