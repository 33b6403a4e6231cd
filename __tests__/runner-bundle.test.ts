// The bundle itself: reproducible, self-contained, fast enough to run at synth time.
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Testing } from "cdktf";
import { bundleRunner, RUNNER_BUNDLES } from "../src/runner/bundle.ts";
import { BUILD_STARTER_RUNTIME } from "../src/runner/runtime.ts";
import { BuildStarter } from "../src/constructs/build-starter.ts";

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

describe("build starter runtime", () => {
  // Node.js runtimes and their deprecation dates as AWS lists them on
  // https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html (supported and deprecated
  // tables). After the deprecation date Lambda stops patching the runtime and then blocks creating
  // and updating functions on it; nodejs20.x was deprecated on 2026-04-30.
  const NODE_RUNTIME_DEPRECATION: Record<string, string> = {
    "nodejs24.x": "2028-04-30",
    "nodejs22.x": "2027-04-30",
    "nodejs20.x": "2026-04-30",
    "nodejs18.x": "2025-09-01",
  };

  it("is one AWS documents as supported today", () => {
    const deprecated = NODE_RUNTIME_DEPRECATION[BUILD_STARTER_RUNTIME];
    expect(deprecated, `${BUILD_STARTER_RUNTIME} is not a documented Node.js runtime`).toBeDefined();
    expect(new Date(deprecated!).getTime()).toBeGreaterThan(Date.now());
  });

  it("the synthesized starter's runtime and the Lambda bundle's esbuild target come from the same constant", async () => {
    const zip = join(workDir, "starter.zip");
    await writeFile(zip, "not really a zip");
    const json = JSON.parse(
      Testing.synthScope((scope) => {
        new BuildStarter(scope, "starter", {
          functionName: "fn",
          bundle: { file: zip, bytes: 16, sha256: "0".repeat(64) },
          projectArns: () => [],
          repositoryArns: () => [],
          buildLogGroupArns: () => [],
          sourceAccount: "123456789012",
        });
      }),
    );
    const [fn] = Object.values(json.resource.aws_lambda_function) as { runtime: string }[];
    expect(fn!.runtime).toBe(BUILD_STARTER_RUNTIME);
    expect(RUNNER_BUNDLES.lambda.target).toBe(`node${/^nodejs(\d+)\.x$/.exec(BUILD_STARTER_RUNTIME)![1]}`);
  });

  it("the CLI bundle targets the oldest Node the package supports", async () => {
    const pkg = JSON.parse(await readFile(join(import.meta.dirname, "..", "package.json"), "utf8"));
    expect(pkg.engines.node).toBe(`>=${RUNNER_BUNDLES.cli.target.replace("node", "")}`);
  });
});
