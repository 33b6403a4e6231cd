import { App } from "cdktf";
import { analyzeImagesSync, type ImageAnalysis } from "./analyze.ts";
import { loadManifest, partialManifestOf, type Manifest } from "./manifest/load.ts";
import type { DigestCache } from "./hashing/digest.ts";
import { AppImages } from "./constructs/app-images.ts";
import { ImagesStack } from "./constructs/images-stack.ts";
import { ManifestError, SelectionError } from "./manifest/errors.ts";
import { relocate, selectionErrorLines } from "./manifest/located.ts";
import type { ImageSpec } from "./manifest/spec.ts";

export interface ImagesAppOptions {
  /** The images.yaml to build from. */
  readonly manifestFile: string;
  /** Where generated archives, staged contexts and the runner bundle are kept between synths. @default env LAMBDA_IMAGES_CACHE_DIR, else node_modules/.cache/lambda-images */
  readonly workDir?: string;
  /** cdktf output directory. @default cdktf's own (CDKTF_OUTDIR or cdktf.out) */
  readonly outdir?: string;
  /** Digest cache. @default the persistent cache for the manifest's root (off with LAMBDA_IMAGES_NO_CACHE=1) */
  readonly cache?: DigestCache;
}

/**
 * The images.yaml front end: manifest → one ImagesStack per manifest stack, made of the same
 * constructs users compose themselves. Every image is checked first, so all selection errors
 * are reported together and nothing is written when there is one.
 */
export function createImagesApp(options: ImagesAppOptions): { app: App; analysis: ImageAnalysis } {
  let manifest: Manifest;
  try {
    manifest = loadManifest(options.manifestFile);
  } catch (error) {
    if (error instanceof ManifestError) error.message = [error.message, ...dockerfileProblems(partialManifestOf(error))].join("\n");
    throw error;
  }
  const app = new App(options.outdir ? { outdir: options.outdir } : undefined);
  // Warnings: main.ts prints each one once, for all stacks, before synth.
  const images = AppImages.configure(app, { cacheDir: options.workDir, digestCache: options.cache, annotateWarnings: false });
  // The same analyzer the constructs use: they find every image already selected and hashed.
  let analysis: ImageAnalysis;
  try {
    analysis = analyzeImagesSync(manifest, { analyzer: images.analyzer(manifest.root) });
  } catch (error) {
    const byImage = (error as { byImage?: { spec: ImageSpec; message: string }[] }).byImage;
    if (error instanceof SelectionError && byImage) throw new SelectionError(selectionErrorLines(byImage, manifest.root).join("\n"));
    throw error;
  }
  const dockerfiles = new Set([...manifest.baseImages, ...manifest.lambdas, ...manifest.images].map((i) => i.dockerfile));
  // The manifest's warnings first (file order), then the Dockerfiles', each located from the current directory.
  analysis = { ...analysis, warnings: [...manifest.warnings, ...analysis.warnings.map((w) => relocate(w, manifest.root, dockerfiles))] };
  // Compressing the context archives' files starts on the worker threads while the stacks are built.
  images.prefetchArchives(analysis.images, manifest.root);
  for (const stackName of Object.keys(manifest.stacks)) {
    new ImagesStack(app, stackName, { manifest, stackName });
  }
  return { app, analysis };
}

/**
 * The Dockerfile problems of the images a rejected manifest still describes soundly, one line
 * each: reported with the manifest's own, so one run shows them all. Nothing is cached or written.
 */
function dockerfileProblems(partial: Manifest | undefined): string[] {
  if (!partial || partial.baseImages.length + partial.lambdas.length + partial.images.length === 0) return [];
  try {
    analyzeImagesSync(partial);
    return [];
  } catch (error) {
    const byImage = (error as { byImage?: { spec: ImageSpec; message: string }[] }).byImage;
    return error instanceof SelectionError && byImage ? selectionErrorLines(byImage, partial.root) : [];
  }
}
