import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import type { IConstruct } from "constructs";
import { TerraformStack } from "cdktf";
import { ImageAnalyzer, type AnalyzedImage } from "../analyze.ts";
import type { DigestCache } from "../hashing/digest.ts";
import { defaultCacheDir, openDigestCache, type PersistentDigestCache } from "../hashing/cache.ts";
import { archiveFile, cachedContextArchive, prefetchContextArchives, startStagingContextDirectory, writeDeterministicZipSync, type ArchiveResult } from "../archive/context-archive.ts";
import { markCacheUsed, pruneCacheDaily } from "../archive/cache-prune.ts";
import { packageRootOf } from "../manifest/paths.ts";
import { bundleRunnerSync } from "../runner/bundle.ts";
import { buildSnapshotFromRecords, writeSnapshot, type SnapshotRecord } from "../snapshot/snapshot.ts";

export interface AppImagesOptions {
  /** Where archives, staged contexts, digests and the runner bundle are kept between synths. @default env LAMBDA_IMAGES_CACHE_DIR, else `node_modules/.cache/lambda-images` under the working directory */
  readonly cacheDir?: string;
  /** The digest cache to use for every repository root. @default a persistent cache per root (off with LAMBDA_IMAGES_NO_CACHE=1) */
  readonly digestCache?: DigestCache;
  /** Write `images.snapshot.json` (what `lambda-images plan` compares with) beside the synthesized stacks. @default true */
  readonly writeSnapshot?: boolean;
  /**
   * Add each image's warnings (Dockerfile validator warnings, an ADD of a URL whose content is not
   * hashed, a git tag that fell back to a content tag) as cdktf warning annotations on its
   * construct, which `cdktf synth` prints as `WARN [path]: …`. An app that prints them itself
   * turns this off. @default true
   */
  readonly annotateWarnings?: boolean;
}

/** A snapshot record whose archive size may be read only once the archive is written. */
type PendingRecord = Omit<SnapshotRecord, "contextBytes"> & { readonly contextBytes?: number | (() => number) };

/** The runner bundle a stack ships: `runner.cjs` (local-exec) and `build-starter/index.js` (Lambda). */
export interface RunnerBundle {
  readonly dir: string;
  /** SHA-256 of the bundle's files, for the asset's path. */
  readonly hash: string;
  readonly cliFile: string;
  readonly lambdaFile: string;
}

/** Where this package's files are: the repository in development, the installed package otherwise. */
const PACKAGE_ROOT = packageRootOf(path.dirname(fileURLToPath(import.meta.url)));

/**
 * What every image of one cdktf App shares, created on first use: one analyzer (walk, ignore
 * matchers, digests) per repository root, the generated files, and the record of what was built
 * for `plan`. Keyed by the construct tree's root, so two Apps in one process never mix.
 */
export class AppImages {
  private static readonly byRoot = new WeakMap<IConstruct, AppImages>();

  /** The App-wide state of the tree `scope` belongs to. */
  static of(scope: IConstruct): AppImages {
    const root = scope.node.root;
    let found = AppImages.byRoot.get(root);
    if (!found) {
      found = new AppImages({});
      AppImages.byRoot.set(root, found);
    }
    return found;
  }

  /**
   * Has the pending work of the App `scope` belongs to (see {@link finishPending}) finished as the
   * first stack is validated: cdktf prepares every stack (resolving every token, while the
   * worker threads compress and copy), then validates and writes each in turn, so this is the
   * last moment before anything is written. Every stack gets the validation, so a stack without
   * images written first waits too. Called as the App is checked, when every stack exists.
   */
  static finishBeforeWriting(scope: IConstruct): void {
    const state = AppImages.byRoot.get(scope.node.root);
    if (!state || state.finishScheduled) return;
    state.finishScheduled = true;
    for (const stack of scope.node.root.node.findAll().filter((c) => TerraformStack.isStack(c))) {
      stack.node.addValidation({ validate: () => (state.finishPending(), []) });
    }
  }

  /** Sets the options of an App's image state; only before its first image. */
  static configure(app: IConstruct, options: AppImagesOptions): AppImages {
    if (AppImages.byRoot.has(app.node.root)) throw new Error("AppImages.configure must be called before the App's first image is defined");
    const state = new AppImages(options);
    AppImages.byRoot.set(app.node.root, state);
    return state;
  }

  readonly cacheDir: string;
  private readonly analyzers = new Map<string, ImageAnalyzer>();
  private readonly persistentCaches: PersistentDigestCache[] = [];
  private readonly records: PendingRecord[] = [];
  private readonly pendingStacks = new Set<string>();
  private readonly synthesized = new Set<string>();
  private bundle?: RunnerBundle;
  private starter?: ArchiveResult;
  /** Archives to write and staged contexts to finish before the first stack is written (see {@link finishPending}). */
  private readonly pendingArchives: (() => void)[] = [];
  private readonly pendingStaging: (() => void)[] = [];
  /** Each staged context of this App, by directory: finishes its copying. */
  private readonly staging = new Map<string, () => void>();
  /** Whether every stack has the validation that finishes the pending work (see {@link finishBeforeWriting}). */
  private finishScheduled = false;

  /** Whether image constructs annotate themselves with their analysis's warnings (see {@link AppImagesOptions.annotateWarnings}). */
  get annotatesWarnings(): boolean {
    return this.options.annotateWarnings !== false;
  }

  private constructor(private readonly options: AppImagesOptions) {
    this.cacheDir = path.resolve(options.cacheDir ?? defaultCacheDir());
  }

  /** The analyzer of a repository root (absolute, symlink-resolved): one per root per App. */
  analyzer(root: string): ImageAnalyzer {
    let analyzer = this.analyzers.get(root);
    if (!analyzer) {
      let cache = this.options.digestCache;
      if (!cache) {
        const persistent = openDigestCache({ root, dir: this.cacheDir });
        this.persistentCaches.push(persistent);
        cache = persistent;
      }
      analyzer = new ImageAnalyzer(root, cache);
      this.analyzers.set(root, analyzer);
    }
    return analyzer;
  }

  /** How many repository walks this App has (one per root, however many images and stacks). */
  get walks(): number {
    return this.analyzers.size;
  }

  /** Every analyzer, for statistics. */
  get allAnalyzers(): readonly ImageAnalyzer[] {
    return [...this.analyzers.values()];
  }

  /**
   * The context archive of an image built in CodeBuild, named by what it holds: unchanged files
   * reuse an earlier synth's archive. Its size and digest are read lazily: a new archive is
   * written just before the first stack is (see {@link finishPending}) or when they are first
   * read, so the worker threads compress while the constructs are defined and the stacks prepared.
   */
  contextArchive(image: AnalyzedImage, root: string): ArchiveResult {
    let written: ArchiveResult | undefined;
    const write = () => (written ??= cachedContextArchive(this.cacheDir, image, root, this.analyzer(root).digests));
    this.pendingArchives.push(write);
    return {
      file: archiveFile(this.cacheDir, image),
      get bytes() {
        return write().bytes;
      },
      get sha256() {
        return write().sha256;
      },
    };
  }

  /** Starts compressing these images' archives on the worker threads (see prefetchContextArchives), for an app that knows them before it creates their constructs. */
  prefetchArchives(images: readonly AnalyzedImage[], root: string): void {
    prefetchContextArchives(this.cacheDir, images.filter((image) => image.spec.builder !== "docker"), root, this.analyzer(root).digests);
  }

  /**
   * The staged build context of a Docker-built base image: exactly its selected files, named by
   * them (as the archives are). The files are copied by a worker thread while the constructs are
   * defined; `ready` waits for the copies (see {@link finishPending}).
   */
  stagedContext(image: AnalyzedImage, root: string): { readonly dir: string; readonly ready: () => void } {
    const dir = path.join(this.cacheDir, "staged", `${image.spec.name}-${image.contextHash.slice(0, 16)}`);
    let ready = this.staging.get(dir);
    if (!ready) {
      // The marker sits beside the directory: everything inside it becomes the build context.
      if (fs.existsSync(`${dir}.complete`)) {
        // Refreshed before its files are linked: pruning removes only a marker unused for its maximum age.
        markCacheUsed(`${dir}.complete`);
        ready = () => {};
      } else {
        const copying = startStagingContextDirectory(root, image.selection.files, dir, image.spec.context, image.spec.dockerfile);
        let done = false;
        ready = () => {
          if (done) return;
          copying.complete();
          fs.writeFileSync(`${dir}.complete`, "");
          markCacheUsed(`${dir}.complete`);
          done = true;
        };
        this.pendingStaging.push(ready);
      }
      this.staging.set(dir, ready);
    }
    return { dir, ready };
  }

  /**
   * Writes the archives and finishes the staged contexts the constructs asked for, joining the
   * worker threads: before any stack is written (see {@link finishBeforeWriting}), so a file that
   * cannot be archived fails the synth with nothing written. Archives first: the threads finish
   * compressing for them and then copy staged contexts while this thread writes the zips. Without
   * it (validation skipped, `Testing.synth`), each archive is written when its path is resolved
   * and each context finished when it is linked into the stack.
   */
  finishPending(): void {
    for (const list of [this.pendingArchives, this.pendingStaging]) {
      for (const task of list.splice(0)) task();
    }
  }

  /** The runner bundle: prebuilt in an installed package; bundled (when its sources changed) in a development checkout. */
  runnerBundle(): RunnerBundle {
    if (!this.bundle) this.bundle = locateRunnerBundle(path.join(this.cacheDir, "runner"));
    return this.bundle;
  }

  /** The build starter Lambda's deployment zip. */
  starterZip(): ArchiveResult {
    if (!this.starter) {
      this.starter = writeDeterministicZipSync(
        [{ path: "index.js", file: this.runnerBundle().lambdaFile, executable: false }],
        path.join(this.cacheDir, "build-starter.zip"),
        { cacheDir: this.cacheDir },
      );
    }
    return this.starter;
  }

  /** Records an image of a stack for `plan` and `graph`. */
  record(stack: string, record: Omit<PendingRecord, "stack">): void {
    this.pendingStacks.add(stack);
    this.records.push({ ...record, stack });
  }

  /**
   * Called as each stack with images is synthesized; after the last one, saves the digest caches,
   * prunes the cache directory (at most once a day; see cache-prune.ts) and writes the snapshot
   * `plan` compares the next synth with.
   */
  stackSynthesized(stack: string, outdir: string): void {
    this.synthesized.add(stack);
    if ([...this.pendingStacks].some((s) => !this.synthesized.has(s))) return;
    for (const cache of this.persistentCaches) cache.save();
    // After everything this synth uses is written and its files linked into the stacks.
    pruneCacheDaily(this.cacheDir);
    if (this.options.writeSnapshot !== false) {
      writeSnapshot(outdir, buildSnapshotFromRecords(this.records.map((r) => ({ ...r, contextBytes: typeof r.contextBytes === "function" ? r.contextBytes() : r.contextBytes }))));
    }
    this.synthesized.clear();
  }
}

/**
 * In a development checkout the runner's sources are here: bundle them into `dist/runner` (or
 * `outDir`, when nothing is compiled) unless a bundle of the same sources and dependency versions
 * is there already (esbuild takes about a second, a large share of a synth with nothing to
 * rebuild). An installed package has only the prebuilt bundle in `dist/runner`.
 */
function locateRunnerBundle(outDir: string): RunnerBundle {
  const runnerSources = path.join(PACKAGE_ROOT, "src", "runner");
  if (!fs.existsSync(runnerSources)) {
    const dir = path.join(PACKAGE_ROOT, "dist", "runner");
    return withHash(dir, { cliFile: path.join(dir, "runner.cjs"), lambdaFile: path.join(dir, "build-starter", "index.js") });
  }
  const inputs = createHash("sha256");
  for (const name of fs.readdirSync(runnerSources).sort()) {
    inputs.update(`${name}\0`).update(fs.readFileSync(path.join(runnerSources, name))).update("\0");
  }
  const lock = path.join(PACKAGE_ROOT, "package-lock.json");
  if (fs.existsSync(lock)) inputs.update(fs.readFileSync(lock));
  const expected = inputs.digest("hex");
  const filesIn = (dir: string) => ({ cliFile: path.join(dir, "runner.cjs"), lambdaFile: path.join(dir, "build-starter", "index.js") });
  // The stamp lives beside the bundle, not in it: the runner directory is a Terraform asset.
  const fresh = (dir: string) => {
    const files = filesIn(dir);
    return fs.existsSync(`${dir}.inputs`) && fs.readFileSync(`${dir}.inputs`, "utf8") === expected && fs.existsSync(files.cliFile) && fs.existsSync(files.lambdaFile);
  };
  // A compiled checkout keeps the bundle with its compiled code (dist/runner, as `npm run build`
  // writes it), so a synth with an empty cache directory (a CI job) does not bundle again.
  const dist = path.join(PACKAGE_ROOT, "dist");
  const dir = fs.existsSync(dist) ? path.join(dist, "runner") : outDir;
  if (!fresh(dir)) {
    bundleRunnerSync(dir);
    fs.writeFileSync(`${dir}.inputs`, expected);
  }
  return withHash(dir, filesIn(dir));
}

function withHash(dir: string, files: { cliFile: string; lambdaFile: string }): RunnerBundle {
  const hash = createHash("sha256");
  for (const file of [files.cliFile, files.lambdaFile]) hash.update(fs.readFileSync(file));
  return { dir, hash: hash.digest("hex"), ...files };
}
