import * as fs from "node:fs";
import * as path from "node:path";
import type { ImageSpec, Manifest } from "./manifest/load.ts";
import { selectImages, type ImageSelection } from "./selection/select.ts";
import { digestFiles, type DigestCache } from "./hashing/digest.ts";
import { imageHash } from "./hashing/image-hash.ts";
import { contentTag, gitTag, STATIC_TAG } from "./hashing/tags.ts";
import { buildspecForImage } from "./buildspec.ts";
import type { RepositoryWalk } from "./selection/walk.ts";

/** Everything synth needs to know about one image. */
export interface AnalyzedImage {
  readonly spec: ImageSpec;
  readonly selection: ImageSelection;
  /** Content hash (hex SHA-256) of the files and build inputs, including the base image's hash. */
  readonly hash: string;
  /** `sha-<12 hex>`. */
  readonly contentTag: string;
  /** With `tags: git`, base images' `git-<7 hex>` when their inputs are clean. */
  readonly gitTag?: string;
  /** The CodeBuild buildspec, for images built in CodeBuild (Lambdas, `builder: codebuild` bases). */
  readonly buildspec?: string;
  readonly warnings: readonly string[];
}

export interface ImageAnalysis {
  readonly manifest: Manifest;
  readonly walk: RepositoryWalk;
  readonly digests: ReadonlyMap<string, string>;
  /** Base images first (parents before children), then Lambdas. */
  readonly images: readonly AnalyzedImage[];
  image(name: string, kind: ImageSpec["kind"]): AnalyzedImage;
  /** The tag an image gets in a stack. */
  tagFor(image: AnalyzedImage, stack: string): string;
  readonly warnings: readonly string[];
}

export interface AnalyzeOptions {
  readonly cache?: DigestCache;
}

/** manifest → one walk and every image's selection → file digests → image hashes and tags. */
export async function analyzeImages(manifest: Manifest, options: AnalyzeOptions = {}): Promise<ImageAnalysis> {
  const { walk, selections } = await selectImages(manifest);
  const digests = await digestFiles(
    manifest.root,
    selections.flatMap((s) => s.files.map((f) => f.entry)),
    options.cache,
  );

  const hashes = new Map<string, string>();
  const images: AnalyzedImage[] = [];
  for (const selection of selections) {
    const spec = selection.image;
    const baseImageHash = spec.baseImage ? hashes.get(`base:${spec.baseImage}`) : undefined;
    const buildspec = spec.builder === "codebuild" ? buildspecForImage({ spec, selection }) : undefined;
    const hash = imageHash({
      buildspec,
      files: selection.files,
      digests,
      dockerfile: spec.dockerfile,
      dockerfileText: selection.dockerfileText,
      platforms: spec.platforms,
      buildArgs: spec.buildArgs,
      baseImageHash,
    });
    hashes.set(`${spec.kind}:${spec.name}`, hash);
    const warnings = [...selection.warnings];
    let git: string | undefined;
    if (spec.kind === "base" && manifest.tags === "git") {
      const result = baseGitTag(manifest, selections, spec);
      git = result.tag;
      if (!git) {
        const dirty = result.dirtyFiles.length ? `: ${result.dirtyFiles.slice(0, 10).join(", ")}${result.dirtyFiles.length > 10 ? ", …" : ""}` : "";
        warnings.push(`base image ${spec.name}: tagged ${contentTag(hash)} instead of a git tag because ${result.reason}${dirty}`);
      }
    }
    images.push({ spec, selection, hash, contentTag: contentTag(hash), gitTag: git, buildspec, warnings });
  }

  const find = (name: string, kind: ImageSpec["kind"]) => {
    const found = images.find((i) => i.spec.name === name && i.spec.kind === kind);
    if (!found) throw new Error(`no ${kind} image named ${name}`);
    return found;
  };
  return {
    manifest,
    walk,
    digests,
    images,
    image: find,
    tagFor(image, stack) {
      if (image.spec.kind === "lambda") return image.contentTag;
      if (manifest.stacks[stack]?.useStaticBaseImage) return STATIC_TAG;
      return image.gitTag ?? image.contentTag;
    },
    warnings: images.flatMap((i) => i.warnings),
  };
}

/**
 * A base image's git tag covers everything it is made of: the manifest, its Dockerfile, its
 * COPY sources as written (directories, so a deleted file counts too) and the same for the
 * bases it is built FROM.
 */
function baseGitTag(manifest: Manifest, selections: readonly ImageSelection[], spec: ImageSpec) {
  const manifestPath = toPosix(path.relative(manifest.root, manifest.file));
  const pathspecs = new Set<string>([manifestPath]);
  const selected = new Set<string>([manifestPath]);
  for (let name: string | undefined = spec.name; name; ) {
    const selection = selections.find((s) => s.image.kind === "base" && s.image.name === name)!;
    pathspecs.add(selection.image.dockerfile);
    selection.sourcePatterns.forEach((p) => pathspecs.add(p));
    selection.files.forEach((f) => selected.add(f.entry.path));
    name = selection.image.baseImage;
  }
  // A dirty file matters when it is built into the image, or when it was deleted (it may have been).
  const matters = (p: string) => selected.has(p) || !fs.existsSync(path.join(manifest.root, p));
  return gitTag(manifest.root, [...pathspecs], matters);
}

function toPosix(p: string): string {
  return p.split(path.sep).join("/");
}
