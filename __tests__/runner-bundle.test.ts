// The bundle itself: reproducible, self-contained, fast enough to run at synth time.
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleRunner } from "../src/runner/bundle.ts";

let workDir: string;
let first: { cliFile: string; lambdaFile: string };
let firstMs: number;

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), "runner-bundle-test-"));
  const t = performance.now();
  first = await bundleRunner(join(workDir, "a"));
  firstMs = performance.now() - t;
});

afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

describe("bundleRunner", () => {
  it("writes runner.cjs and build-starter/index.js under the output directory", () => {
    expect(relative(workDir, first.cliFile)).toBe(join("a", "runner.cjs"));
    expect(relative(workDir, first.lambdaFile)).toBe(join("a", "build-starter", "index.js"));
  });

  it("is byte-for-byte reproducible, wherever it is written", async () => {
    const second = await bundleRunner(join(workDir, "elsewhere", "b"));
    expect((await readFile(second.cliFile)).equals(await readFile(first.cliFile))).toBe(true);
    expect((await readFile(second.lambdaFile)).equals(await readFile(first.lambdaFile))).toBe(true);
  });

  it("leaves no absolute paths of this machine in the output", async () => {
    for (const f of [first.cliFile, first.lambdaFile]) {
      const text = await readFile(f, "utf8");
      expect(text).not.toContain(process.cwd());
      expect(text).not.toContain("sourceMappingURL");
    }
  });

  it("produces an executable CLI that runs with plain node and no node_modules", async () => {
    const text = await readFile(first.cliFile, "utf8");
    expect(text.startsWith("#!/usr/bin/env node\n")).toBe(true);
    expect((await stat(first.cliFile)).mode & 0o111).not.toBe(0);
    const out = execFileSync(first.cliFile, ["--help"], { cwd: workDir, env: { PATH: process.env.PATH! } }).toString();
    expect(out).toContain("usage: runner build");
  });

  it("produces a CommonJS Lambda file exporting handler", () => {
    const mod = createRequire(import.meta.url)(first.lambdaFile);
    expect(typeof mod.handler).toBe("function");
  });

  it("is quick enough for synth time", () => {
    // Typically well under a second; a generous bound so a loaded CI machine does not flake.
    expect(firstMs).toBeLessThan(10_000);
  });
});
