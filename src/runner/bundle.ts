// Bundles the build runner into two self-contained files (AWS SDK included) that run with plain
// `node` and no node_modules: the CLI for local-exec and the Lambda "build starter".
// Called at synth time, so it must be fast and its output byte-for-byte reproducible: the files'
// hashes end up in Terraform triggers, and a spurious diff would rebuild every image.
import { buildSync, type BuildOptions } from "esbuild";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { packageRootOf } from "../manifest/paths.ts";
import { BUILD_STARTER_BUNDLE_TARGET, CLI_BUNDLE_TARGET } from "./runtime.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
// The TypeScript sources, also when this module runs compiled from dist/src/runner in a
// development checkout: the bundle is made from the same files either way, so it is byte-identical.
const SOURCES = existsSync(join(HERE, "cli.ts")) ? HERE : join(packageRootOf(HERE), "src", "runner");
const PROJECT_ROOT = resolve(SOURCES, "..", "..");

const COMMON: BuildOptions = {
  absWorkingDir: PROJECT_ROOT,
  bundle: true,
  platform: "node",
  format: "cjs",
  minify: true,
  sourcemap: false,
  legalComments: "none",
  charset: "utf8",
  write: false,
  logLevel: "silent",
};

/** The two bundles: entry point, file under the output directory and esbuild target. */
export const RUNNER_BUNDLES = {
  // cli.ts starts with a `#!/usr/bin/env node` line, which esbuild keeps at the top.
  cli: { entry: "cli.ts", file: "runner.cjs", target: CLI_BUNDLE_TARGET },
  lambda: { entry: "lambda-handler.ts", file: join("build-starter", "index.js"), target: BUILD_STARTER_BUNDLE_TARGET },
} as const;

/** Bundles both entries into `outDir`; see {@link bundleRunnerSync}. */
export async function bundleRunner(outDir: string): Promise<{ cliFile: string; lambdaFile: string }> {
  return bundleRunnerSync(outDir);
}

/**
 * Bundles both entries into `outDir`, synchronously: a construct app synthesizes synchronously,
 * and bundles only in a development checkout (an installed package ships the bundle prebuilt).
 */
export function bundleRunnerSync(outDir: string): { cliFile: string; lambdaFile: string } {
  const cliFile = resolve(outDir, RUNNER_BUNDLES.cli.file);
  const lambdaFile = resolve(outDir, RUNNER_BUNDLES.lambda.file);
  const one = (b: (typeof RUNNER_BUNDLES)[keyof typeof RUNNER_BUNDLES], outfile: string) =>
    buildSync({ ...COMMON, target: b.target, entryPoints: [join(SOURCES, b.entry)], outfile });
  writeIfChanged(cliFile, one(RUNNER_BUNDLES.cli, cliFile).outputFiles![0]!.contents, 0o755);
  writeIfChanged(lambdaFile, one(RUNNER_BUNDLES.lambda, lambdaFile).outputFiles![0]!.contents, 0o644);
  // index.js is CommonJS; without this marker a `"type": "module"` package.json further up
  // (this repository's, when outDir is inside it) would make Node load it as ESM and fail.
  // Kept out of build-starter/ so that directory holds exactly what the Lambda needs.
  writeIfChanged(join(resolve(outDir), "package.json"), Buffer.from('{ "type": "commonjs" }\n'), 0o644);
  return { cliFile, lambdaFile };
}

/** Leaves an identical file untouched, so its mtime does not churn on every synth. */
function writeIfChanged(file: string, contents: Uint8Array, mode: number): void {
  let existing: Buffer | undefined;
  try {
    existing = readFileSync(file);
  } catch {
    existing = undefined;
  }
  if (!existing || !existing.equals(contents)) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, contents);
  }
  chmodSync(file, mode);
}
