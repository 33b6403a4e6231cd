import * as fs from "node:fs";
import * as path from "node:path";
import type { Manifest } from "./manifest/load.ts";
import type { ImageSpec } from "./manifest/spec.ts";
import { SelectionError } from "./manifest/errors.ts";
import { ignoreCandidates, SelectionMemo, selectImage, type ImageSelection } from "./selection/select.ts";
import { ignoreState } from "./hashing/analysis-cache.ts";
import { DigestBatch, digestFilesSync, type DigestCache } from "./hashing/digest.ts";
import { imageHashes, type ImageHashes } from "./hashing/image-hash.ts";
import { contentTag, gitTag, STATIC_TAG } from "./hashing/tags.ts";
import { buildspecForImage } from "./buildspec.ts";
import { RepositoryIndex } from "./selection/walk.ts";
import { dockerHubFrontendWarning } from "./selection/dockerfile.ts";
import { workerPool } from "./worker-pool.ts";

/** Everything synth needs to know about one image. */
export interface AnalyzedImage {
  readonly spec: ImageSpec;
  readonly selection: ImageSelection;
  /** Content hash (hex SHA-256) of the files and build inputs, including the base image's hash. */
  readonly hash: string;
  /**
   * Hex SHA-256 of only what the build context holds (see imageHashes): the key its context
   * archive and staged context are kept under, reused when only the base or the buildspec changed.
   */
  readonly contextHash: string;
  /** `sha-<12 hex>`. */
  readonly contentTag: string;
  /** With git tags, base images' `git-<7 hex>` when their inputs are clean. */
  readonly gitTag?: string;
  /** The CodeBuild buildspec, for images built in CodeBuild (Lambdas, `builder: codebuild` bases). */
  readonly buildspec?: string;
  readonly warnings: readonly string[];
  /** Root-relative packages an image built FROM this one gets from it (its own and its bases'). */
  readonly providedPackages: readonly string[];
  /** What this image and its bases are built from, as git pathspecs and selected files (for git tags). */
  readonly lineage: { readonly pathspecs: readonly string[]; readonly selected: ReadonlySet<string> };
}

export interface AnalyzeImageOptions {
  /** Compute a git tag (`git-<7 hex>`), counting these root-relative files as inputs too (e.g. the manifest). @default no git tag */
  readonly gitTag?: { readonly extraInputs: readonly string[] };
}

/**
 * Selects and hashes images of one repository. One analyzer serves every image of an App, in
 * every stack: the walk, the `.dockerignore` matchers and the file digests are shared, so each
 * directory is read and each file hashed at most once per synth.
 */
export class ImageAnalyzer {
  readonly index: RepositoryIndex;
  /** Root-relative path → hex SHA-256, for every file hashed so far. */
  readonly digests = new Map<string, string>();
  private readonly selections: SelectionMemo;
  /** The same image asked twice (a front end's check, then its construct) is analyzed once. */
  private readonly analyzed = new Map<string, AnalyzedImage>();
  /** Selections made ahead by {@link prefetch}, by what selection reads. */
  private readonly preselected = new Map<string, ReturnType<ImageAnalyzer["select"]>>();

  /** @param root absolute, symlink-resolved repository root */
  constructor(
    readonly root: string,
    private readonly cache?: DigestCache,
  ) {
    this.index = new RepositoryIndex(root);
    this.selections = new SelectionMemo(root);
  }

  /** Selection, hash and tags of one image; `parent` is the analysis of the base image it is built FROM. */
  analyze(spec: ImageSpec, parent?: AnalyzedImage, options: AnalyzeImageOptions = {}): AnalyzedImage {
    // What selection and hashing read; a function's memory or a compute type do not matter here.
    const { kind, name, dockerfile, context, platforms, include, buildArgs, baseImage, packages, builder } = spec;
    const inputs = { kind, name, dockerfile, context, platforms, include, buildArgs, baseImage, packages, builder };
    const key = JSON.stringify([inputs, parent?.hash ?? null, parent?.providedPackages ?? [], options]);
    let image = this.analyzed.get(key);
    if (!image) {
      image = this.reuse(key, spec, parent, options) ?? this.analyzeOnce(key, spec, parent, options);
      this.analyzed.set(key, image);
    }
    return image;
  }

  /**
   * The cold path of a batch (every image of a manifest): select every image, handing each one's
   * files to worker threads that hash them while the next image is selected, instead of
   * selecting and hashing image by image (most images are too small to be worth a thread of
   * their own). Selection needs only each image's inherited packages, not its parent's hash, so
   * nothing waits. Skipped on the warm path, where the selection cache reuses images one by one
   * without selecting them.
   */
  prefetch(images: readonly { readonly spec: ImageSpec; readonly inheritedPackages: readonly string[] }[]): void {
    if (this.cache?.selection?.warm) return;
    // Hashing follows the first selections: the threads start on their own cores meanwhile.
    if (images.length > 1) workerPool.prestart();
    const hashing = new DigestBatch(this.root, this.cache, this.digests);
    for (const { spec, inheritedPackages } of images) {
      const key = selectionKey(spec, inheritedPackages);
      if (this.preselected.has(key)) continue;
      try {
        const selected = this.select(spec, inheritedPackages);
        this.preselected.set(key, selected);
        // Worker threads hash these while the next image is selected.
        hashing.add(selected.result.files.map((f) => f.entry));
      } catch {
        // analyze() selects it again and reports the error in its place.
      }
    }
    hashing.finish();
  }

  private select(spec: ImageSpec, inheritedPackages: readonly string[]) {
    return this.index.trace(() => selectImage(this.index, spec, inheritedPackages, this.selections));
  }

  /** The last synth's selection and hash, when the warm-path cache shows nothing it depends on changed. */
  private reuse(key: string, spec: ImageSpec, parent: AnalyzedImage | undefined, options: AnalyzeImageOptions): AnalyzedImage | undefined {
    const selections = this.cache?.selection;
    if (!selections || options.gitTag) return undefined;
    const reused = selections.reuse(
      key,
      this.index,
      spec.dockerfile,
      ignoreState(this.root, ignoreCandidates(spec)),
      this.cache!,
      this.digests,
    );
    if (!reused) return undefined;
    return this.finish(spec, parent, { image: spec, ...reused.selection }, reused.buildspec, reused, options);
  }

  private analyzeOnce(key: string, spec: ImageSpec, parent: AnalyzedImage | undefined, options: AnalyzeImageOptions): AnalyzedImage {
    const selections = options.gitTag ? undefined : this.cache?.selection;
    const ignore = selections ? ignoreState(this.root, ignoreCandidates(spec)) : undefined;
    const inherited = parent?.providedPackages ?? [];
    const preselected = this.preselected.get(selectionKey(spec, inherited));
    const { result: selection, consulted } = preselected ?? this.select(spec, inherited);
    // A prefetched selection's files were all hashed (or failed there) when the prefetch finished.
    if (!preselected) digestFilesSync(this.root, selection.files.map((f) => f.entry), this.cache, this.digests);
    const buildspec = spec.builder === "codebuild" ? buildspecForImage({ spec, selection }) : undefined;
    const hashes = imageHashes({
      buildspec,
      files: selection.files,
      digests: this.digests,
      dockerfile: spec.dockerfile,
      dockerfileText: selection.dockerfileText,
      platforms: spec.platforms,
      buildArgs: spec.buildArgs,
      baseImageHash: parent?.hash,
      context: spec.context,
    });
    selections?.record({ key, selection, ignore: ignore!, buildspec, consulted, digests: this.digests, ...hashes });
    return this.finish(spec, parent, selection, buildspec, hashes, options);
  }

  private finish(
    spec: ImageSpec,
    parent: AnalyzedImage | undefined,
    selection: ImageSelection,
    buildspec: string | undefined,
    { hash, contextHash }: ImageHashes,
    options: AnalyzeImageOptions,
  ): AnalyzedImage {
    const providedPackages = packagesProvided(parent?.providedPackages ?? [], spec.packages);
    // Only git tags read `selected`: built on first use (tens of thousands of paths at scale).
    let selected: Set<string> | undefined;
    const lineage = {
      pathspecs: [...new Set([...(parent?.lineage.pathspecs ?? []), spec.dockerfile, ...selection.sourcePatterns])],
      get selected(): ReadonlySet<string> {
        selected ??= new Set([...(parent?.lineage.selected ?? []), ...selection.files.map((f) => f.entry.path)]);
        return selected;
      },
    };
    const warnings = [...selection.warnings];
    // A Docker-built base uses the provider's classic builder, which reads `# syntax=` as a comment.
    const frontend = spec.builder === "codebuild" ? dockerHubFrontendWarning(selection.dockerfileText, spec.dockerfile, spec.buildArgs, spec.kind) : undefined;
    if (frontend) warnings.push(frontend);
    let git: string | undefined;
    if (options.gitTag) {
      const result = this.gitTagOf(lineage, options.gitTag.extraInputs);
      git = result.tag;
      if (!git) {
        const dirty = result.dirtyFiles.length ? `: ${result.dirtyFiles.slice(0, 10).join(", ")}${result.dirtyFiles.length > 10 ? ", …" : ""}` : "";
        warnings.push(`base image ${spec.name}: tagged ${contentTag(hash)} instead of a git tag because ${result.reason}${dirty}`);
      }
    }
    return { spec, selection, hash, contextHash, contentTag: contentTag(hash), gitTag: git, buildspec, warnings, providedPackages, lineage };
  }

  /**
   * A base image's git tag covers everything it is made of: the extra inputs (the manifest), its
   * Dockerfile, its COPY sources as written (directories, so a deleted file counts too) and the
   * same for the bases it is built FROM.
   */
  private gitTagOf(lineage: AnalyzedImage["lineage"], extraInputs: readonly string[]) {
    const pathspecs = [...extraInputs, ...lineage.pathspecs];
    const selected = new Set([...extraInputs, ...lineage.selected]);
    // A dirty file matters when it is built into the image, or when it was deleted (it may have been).
    const matters = (p: string) => selected.has(p) || !fs.existsSync(path.join(this.root, p));
    return gitTag(this.root, pathspecs, matters);
  }
}

/** What a selection reads of an image: its inputs and the packages its bases hold. */
function selectionKey(spec: ImageSpec, inheritedPackages: readonly string[]): string {
  const { kind, name, dockerfile, context, platforms, include, buildArgs, baseImage, packages, builder } = spec;
  return JSON.stringify([{ kind, name, dockerfile, context, platforms, include, buildArgs, baseImage, packages, builder }, inheritedPackages]);
}

export interface ImageAnalysis {
  readonly manifest: Manifest;
  readonly walk: RepositoryIndex;
  readonly digests: ReadonlyMap<string, string>;
  /** Base images first (parents before children), then Lambdas, then other images. */
  readonly images: readonly AnalyzedImage[];
  image(name: string, kind: ImageSpec["kind"]): AnalyzedImage;
  /** The tag an image gets in a stack. */
  tagFor(image: AnalyzedImage, stack: string): string;
  readonly warnings: readonly string[];
}

export interface AnalyzeOptions {
  readonly cache?: DigestCache;
  /** An analyzer to share (the App's). @default a new one for the manifest's root */
  readonly analyzer?: ImageAnalyzer;
}

/**
 * Every image of a manifest: one shared walk, each image's selection, file digests, hashes and
 * tags. Selection errors of all images are reported together, each Dockerfile's in line order.
 */
export async function analyzeImages(manifest: Manifest, options: AnalyzeOptions = {}): Promise<ImageAnalysis> {
  return analyzeImagesSync(manifest, options);
}

export function analyzeImagesSync(manifest: Manifest, options: AnalyzeOptions = {}): ImageAnalysis {
  const analyzer = options.analyzer ?? new ImageAnalyzer(manifest.root, options.cache);
  const manifestInput = manifestGitInputs(manifest);
  const byName = new Map<string, AnalyzedImage>();
  const images: AnalyzedImage[] = [];
  const errors: string[] = [];
  // Which image each error came from: the images.yaml app names every image sharing a Dockerfile.
  const byImage: { spec: ImageSpec; message: string }[] = [];
  // What each base provides to the images built FROM it, as analyze() computes it (parents first).
  const provided = new Map<string, string[]>();
  for (const base of manifest.baseImages) {
    provided.set(base.name, packagesProvided(base.baseImage ? (provided.get(base.baseImage) ?? []) : [], base.packages));
  }
  const specs = [...manifest.baseImages, ...manifest.lambdas, ...manifest.images];
  analyzer.prefetch(specs.map((spec) => ({ spec, inheritedPackages: spec.baseImage ? (provided.get(spec.baseImage) ?? []) : [] })));
  for (const spec of specs) {
    const parent = spec.baseImage ? byName.get(spec.baseImage) : undefined;
    // A base whose own selection failed is reported already; its dependents cannot be hashed.
    if (spec.baseImage && !parent) continue;
    try {
      const image = analyzer.analyze(spec, parent, spec.kind === "base" && manifest.tags === "git" ? { gitTag: { extraInputs: manifestInput } } : {});
      images.push(image);
      if (spec.kind === "base") byName.set(spec.name, image);
    } catch (error) {
      if (!(error instanceof SelectionError)) throw error;
      errors.push(error.message);
      byImage.push({ spec, message: error.message });
    }
  }
  if (errors.length > 0) throw Object.assign(new SelectionError(errors.join("\n")), { byImage });

  const find = (name: string, kind: ImageSpec["kind"]) => {
    const found = images.find((i) => i.spec.name === name && i.spec.kind === kind);
    if (!found) throw new Error(`no ${kind} image named ${name}`);
    return found;
  };
  return {
    manifest,
    walk: analyzer.index,
    digests: analyzer.digests,
    images,
    image: find,
    tagFor: (image, stack) => imageTag(image, manifest.stacks[stack]?.useStaticBaseImage ?? false),
    // Images sharing a Dockerfile share its warnings: each once.
    warnings: [...new Set(images.flatMap((i) => i.warnings))],
  };
}

/** The tag an image is pushed under: Lambda and other images by content; base images `stable`, their git tag, or by content. */
export function imageTag(image: Pick<AnalyzedImage, "spec" | "contentTag" | "gitTag">, staticBaseTag: boolean): string {
  if (image.spec.kind !== "base") return image.contentTag;
  if (staticBaseTag) return STATIC_TAG;
  return image.gitTag ?? image.contentTag;
}

/** What an image gives the images built FROM it: what its base gave it, then its own packages. */
function packagesProvided(inherited: readonly string[], own: readonly string[]): string[] {
  return [...new Set([...inherited, ...own])];
}

/** A manifest is an input of its base images' git tags (it holds their build args): its root-relative path. */
export function manifestGitInputs(manifest: Pick<Manifest, "file" | "root">): string[] {
  return manifest.file ? [path.relative(manifest.root, manifest.file).split(path.sep).join("/")] : [];
}
