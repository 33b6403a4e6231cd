import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, expect, it } from "vitest";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bench-clone-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

it("npm run bench -- --files 300 runs from a fresh clone and prints every figure", () => {
  const clone = path.join(tmp, "clone");
  execFileSync("git", ["clone", "-q", REPO, clone]);
  // A fresh clone after `npm ci`: the installed packages, nothing generated.
  fs.symlinkSync(path.join(REPO, "node_modules"), path.join(clone, "node_modules"));
  const benchmarks = fs.readFileSync(path.join(clone, "BENCHMARKS.md"), "utf8");
  const r = spawnSync("npm", ["run", "-s", "bench", "--", "--files", "300", "--runs", "1", "--skip-synth"], {
    cwd: clone,
    encoding: "utf8",
    env: { ...process.env, LAMBDA_IMAGES_CACHE_DIR: path.join(tmp, "cache") },
  });
  expect(r.status, r.stderr).toBe(0);
  for (const row of [
    "in-process: ours, caches empty",
    "in-process: ours, caches warm",
    "aws-cdk-lib, a DockerImageAsset per image",
    "aws-cdk-lib, exact exclusions per image, its cache empty",
    "floor: sha256sum",
    "floor: git status",
    "digest cache load, 20,000 entries",
    "process: lambda-images plan --json, warm",
    "process: lambda-images plan --json, caches empty",
    "process: npm run synth \\(direct\\), bench tree, warm",
    "real shape: npm run synth \\(direct\\), warm",
    "real shape: npm run synth \\(direct\\), cold",
    "real shape: lambda-images plan --json, warm",
    "real shape: lambda-images plan --json, cold",
  ]) {
    expect(r.stdout).toMatch(new RegExp(`^${row}.* \\d+(\\.\\d+)? ms`, "m"));
  }
  // Every target is judged, or said to be not run (the synths are skipped here).
  expect(r.stdout).toMatch(/^(met|MISSED) +plan warm ≤ 0\.5 s/m);
  expect(r.stdout).toMatch(/^(met|MISSED) +real shape: npm run synth cold ≤ 2× warm/m);
  expect(r.stdout).toMatch(/^(met|MISSED) +real shape: plan cold ≤ 2× warm/m);
  expect(r.stdout).toMatch(/^- +cdktf synth warm ≤ 1\.3× .*: not run/m);
  expect(r.stdout).toContain("33 images");
  // A quick run does not overwrite the full-size figures, and leaves the clone clean.
  expect(fs.readFileSync(path.join(clone, "BENCHMARKS.md"), "utf8")).toBe(benchmarks);
  expect(execFileSync("git", ["status", "--porcelain"], { cwd: clone, encoding: "utf8" }).replace(/^\?\? node_modules\n/m, "")).toBe("");
}, 360_000);
