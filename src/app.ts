import { App } from "cdktf";
import { analyzeImages, type ImageAnalysis } from "./analyze.ts";
import { loadManifest } from "./manifest/load.ts";
import { prepareBuildAssets } from "./assets.ts";
import { ImagesStack } from "./constructs/images-stack.ts";
import type { DigestCache } from "./hashing/digest.ts";
import { openDigestCache } from "./hashing/cache.ts";

export interface ImagesAppOptions {
  /** The images.yaml to build from. */
  readonly manifestFile: string;
  /** Where generated archives, staged contexts and the runner bundle are kept between synths. */
  readonly workDir: string;
  /** cdktf output directory. @default cdktf's own (CDKTF_OUTDIR or cdktf.out) */
  readonly outdir?: string;
  /** Digest cache. @default the persistent cache for the manifest's root (off with LAMBDA_IMAGES_NO_CACHE=1) */
  readonly cache?: DigestCache;
}

/** manifest → analysis → assets → one stack per manifest stack. Nothing is written until `app.synth()`. */
export async function createImagesApp(options: ImagesAppOptions): Promise<{ app: App; analysis: ImageAnalysis }> {
  const manifest = loadManifest(options.manifestFile);
  // Opened before hashing starts: its open time is the reference for the racy-timestamp rule.
  const persistent = options.cache ? undefined : openDigestCache({ root: manifest.root });
  const analysis = await analyzeImages(manifest, { cache: options.cache ?? persistent });
  await persistent?.save();
  const assets = await prepareBuildAssets(analysis, options.workDir);
  const app = new App(options.outdir ? { outdir: options.outdir } : undefined);
  for (const stackName of Object.keys(manifest.stacks)) {
    new ImagesStack(app, stackName, { analysis, stackName, assets });
  }
  return { app, analysis };
}
