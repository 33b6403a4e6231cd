import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { fileURLToPath } from "node:url";
import * as path from "node:path";
import type { AnalyzedImage, ImageAnalysis } from "./analyze.ts";
import { stageContextDirectory, writeContextArchive, writeDeterministicZip, type ArchiveResult } from "./archive/context-archive.ts";
import { bundleRunner } from "./runner/bundle.ts";

/** Files synth hands to the constructs as Terraform assets. */
export interface BuildAssets {
  /** Directory with the bundled runner (`runner.cjs`, `build-starter/index.js`). */
  readonly runnerDir: string;
  /** Context archive of every image built in CodeBuild, by image key. */
  readonly archives: ReadonlyMap<string, ArchiveResult>;
  /** Staged context directory of every base image built with Docker, by image key. */
  readonly stagedContexts: ReadonlyMap<string, string>;
  /** The build starter Lambda's deployment zip (`index.js`). */
  readonly starterZip: ArchiveResult;
}

const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/**
 * Bundles the runner unless a bundle of the same sources and dependency versions is already
 * there: esbuild takes about a second, a large share of a synth with nothing to rebuild.
 */
async function bundleRunnerOnce(outDir: string): Promise<{ cliFile: string; lambdaFile: string }> {
  const inputs = createHash("sha256");
  const runnerSources = path.join(PROJECT_ROOT, "src", "runner");
  for (const name of fs.readdirSync(runnerSources).sort()) {
    inputs.update(`${name}\0`).update(fs.readFileSync(path.join(runnerSources, name))).update("\0");
  }
  inputs.update(fs.readFileSync(path.join(PROJECT_ROOT, "package-lock.json")));
  const stamp = `${outDir}.inputs`;
  const expected = inputs.digest("hex");
  const files = { cliFile: path.join(outDir, "runner.cjs"), lambdaFile: path.join(outDir, "build-starter", "index.js") };
  const fresh = fs.existsSync(stamp) && fs.readFileSync(stamp, "utf8") === expected && fs.existsSync(files.cliFile) && fs.existsSync(files.lambdaFile);
  if (fresh) return files;
  const written = await bundleRunner(outDir);
  // The stamp lives beside the bundle, not in it: the runner directory is a Terraform asset.
  fs.writeFileSync(stamp, expected);
  return written;
}

export function imageKey(image: AnalyzedImage): string {
  return `${image.spec.kind}:${image.spec.name}`;
}

/** Where synth keeps generated files between runs: env LAMBDA_IMAGES_CACHE_DIR or node_modules/.cache. */
export function workDirectory(cwd = process.cwd(), env: NodeJS.ProcessEnv = process.env): string {
  return env.LAMBDA_IMAGES_CACHE_DIR ? path.resolve(cwd, env.LAMBDA_IMAGES_CACHE_DIR) : path.join(cwd, "node_modules", ".cache", "lambda-images");
}

/**
 * Writes the context archives, the staged Docker contexts and the runner bundle. Archives are
 * content-addressed by image hash, so an unchanged image reuses the file from the last synth.
 */
export async function prepareBuildAssets(analysis: ImageAnalysis, workDir: string): Promise<BuildAssets> {
  const archives = new Map<string, ArchiveResult>();
  const stagedContexts = new Map<string, string>();
  const root = analysis.manifest.root;
  const runner = bundleRunnerOnce(path.join(workDir, "runner"));

  for (const image of analysis.images) {
    const key = imageKey(image);
    const files = image.selection.files;
    if (image.spec.kind === "base" && image.spec.builder === "docker") {
      const dir = path.join(workDir, "staged", `${image.spec.name}-${image.hash.slice(0, 16)}`);
      // The marker sits beside the directory: everything inside it becomes the build context.
      if (!fs.existsSync(`${dir}.complete`)) {
        await stageContextDirectory(root, files, dir);
        fs.writeFileSync(`${dir}.complete`, "");
      }
      stagedContexts.set(key, dir);
      continue;
    }
    const file = path.join(workDir, "contexts", `${image.spec.kind}-${image.spec.name}-${image.hash.slice(0, 16)}.zip`);
    const sidecar = `${file}.json`;
    const reused = fs.existsSync(file) && fs.existsSync(sidecar) ? (JSON.parse(fs.readFileSync(sidecar, "utf8")) as ArchiveResult) : undefined;
    if (reused && reused.bytes === fs.statSync(file).size) {
      archives.set(key, { ...reused, file });
    } else {
      const written = await writeContextArchive(root, files, file);
      fs.writeFileSync(sidecar, JSON.stringify(written));
      archives.set(key, written);
    }
  }
  const { cliFile, lambdaFile } = await runner;
  const starterZip = await writeDeterministicZip(
    [{ path: "index.js", file: lambdaFile, executable: false }],
    path.join(workDir, "build-starter.zip"),
  );
  return { runnerDir: path.dirname(cliFile), archives, stagedContexts, starterZip };
}
