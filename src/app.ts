import { App } from "cdktf";
import { analyzeImages, type ImageAnalysis } from "./analyze.ts";
import { loadManifest } from "./manifest/load.ts";
import { prepareBuildAssets } from "./assets.ts";
import { ImagesStack } from "./constructs/images-stack.ts";
import type { DigestCache } from "./hashing/digest.ts";

export interface ImagesAppOptions {
  /** The images.yaml to build from. */
  readonly manifestFile: string;
  /** Where generated archives, staged contexts and the runner bundle are kept between synths. */
  readonly workDir: string;
  /** cdktf output directory. @default cdktf's own (CDKTF_OUTDIR or cdktf.out) */
  readonly outdir?: string;
  /** Digest cache. @default none */
  readonly cache?: DigestCache;
}

/** manifest → analysis → assets → one stack per manifest stack. Nothing is written until `app.synth()`. */
export async function createImagesApp(options: ImagesAppOptions): Promise<{ app: App; analysis: ImageAnalysis }> {
  const manifest = loadManifest(options.manifestFile);
  const analysis = await analyzeImages(manifest, { cache: options.cache });
  const assets = await prepareBuildAssets(analysis, options.workDir);
  const app = new App(options.outdir ? { outdir: options.outdir } : undefined);
  for (const stackName of Object.keys(manifest.stacks)) {
    new ImagesStack(app, stackName, { analysis, stackName, assets });
  }
  return { app, analysis };
}
