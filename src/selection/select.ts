import * as fs from "node:fs";
import * as path from "node:path";
import dockerignore, { type Ignore } from "@balena/dockerignore";
import type { ImageSpec, Manifest } from "../manifest/load.ts";
import { isInside, normalizeRelative } from "../manifest/paths.ts";
import { SelectionError } from "../manifest/errors.ts";
import { dockerfileSources, type ContextSource } from "./dockerfile.ts";
import { PathPattern } from "./patterns.ts";
import { entriesUnder, walkRepository, type RepositoryWalk, type WalkEntry } from "./walk.ts";

// The package is CommonJS (`module.exports = factory`); its typings describe an ES default export.
const newIgnore = dockerignore as unknown as () => Ignore;

/** A file in an image's build context. */
export interface SelectedFile {
  readonly entry: WalkEntry;
  /** For symlinks: the root-relative path the link points at. */
  readonly linkTarget?: string;
}

export interface ImageSelection {
  readonly image: ImageSpec;
  readonly dockerfileText: string;
  /** Files of the build context, sorted by path; the Dockerfile is always among them. */
  readonly files: readonly SelectedFile[];
  /** The COPY/ADD sources and include globs, root-relative, as written. */
  readonly sourcePatterns: readonly string[];
  /** Root-relative package directories left out because a base image already has them. */
  readonly excludedPackages: readonly string[];
  readonly warnings: readonly string[];
}

interface ImageRules {
  readonly image: ImageSpec;
  readonly dockerfileText: string;
  readonly sources: readonly ContextSource[];
  /** One per COPY/ADD source, in the same order as `sources`. */
  readonly patterns: readonly PathPattern[];
  /** COPY/ADD sources and include globs together: what selects a file. */
  readonly selectors: readonly PathPattern[];
  readonly ignore: DockerIgnore;
  readonly ignoreFile: string | undefined;
  readonly excludedPackages: readonly string[];
  readonly warnings: readonly string[];
}

/**
 * Selects the build-context files of every image of the manifest with a single walk of the
 * repository: what each Dockerfile COPYs/ADDs, plus `include` globs, plus the Dockerfile,
 * minus `.dockerignore`, minus the packages its base images already hold.
 */
export async function selectImages(manifest: Manifest): Promise<{ walk: RepositoryWalk; selections: ImageSelection[] }> {
  const images = [...manifest.baseImages, ...manifest.lambdas];
  const bases = new Map(manifest.baseImages.map((b) => [b.name, b]));
  // Images sharing a .dockerignore share its matcher and the answers it already gave.
  const ignores = new Map<string, DockerIgnore>();
  const rules = images.map((image) => imageRules(manifest.root, image, bases, ignores));

  const walk = await walkRepository(
    manifest.root,
    (dir) => rules.some((r) => mayEnter(r, dir)),
    anySelects(rules),
  );
  return { walk, selections: rules.map((r) => selectFor(manifest.root, r, walk)) };
}

/**
 * Whether any image selects a file. It runs for every file walked, so selectors are indexed by
 * their literal prefix: a file only meets the selectors filed under one of its ancestors.
 */
function anySelects(rules: readonly ImageRules[]): (file: string) => boolean {
  const byPrefix = new Map<string, PathPattern[]>();
  const file = (prefix: string, selector: PathPattern) => byPrefix.set(prefix, [...(byPrefix.get(prefix) ?? []), selector]);
  for (const r of rules) {
    file(r.image.dockerfile, new PathPattern(r.image.dockerfile));
    for (const selector of r.selectors) file(selector.literalPrefix, selector);
  }
  const matches = (prefix: string, path: string) => byPrefix.get(prefix)?.some((s) => s.selects(path)) ?? false;
  return (path) => {
    if (matches("", path) || matches(path, path)) return true;
    for (let i = path.indexOf("/"); i > 0; i = path.indexOf("/", i + 1)) if (matches(path.slice(0, i), path)) return true;
    return false;
  };
}

function mayEnter(rules: ImageRules, dir: string): boolean {
  if (rules.image.dockerfile.startsWith(dir + "/")) return true;
  if (!rules.selectors.some((p) => p.mayEnter(dir))) return false;
  if (rules.excludedPackages.some((pkg) => dir === pkg || dir.startsWith(pkg + "/"))) return false;
  // An ignored directory can only be skipped when no `!` rule could bring back a file inside it.
  if (rules.ignore.ignores(dir) && !rules.ignore.negations.some((n) => n.mayEnter(dir))) return false;
  return true;
}

function imageRules(root: string, image: ImageSpec, bases: Map<string, ImageSpec>, ignores: Map<string, DockerIgnore>): ImageRules {
  const dockerfileText = fs.readFileSync(path.join(root, image.dockerfile), "utf8");
  const parsed = dockerfileSources(dockerfileText, image.buildArgs, image.dockerfile);
  const includes = image.include.map((glob) => {
    const norm = normalizeRelative(glob);
    if ("error" in norm) throw new SelectionError(`${image.name}: include ${norm.error}`);
    return new PathPattern(norm.path);
  });

  // BuildKit reads <Dockerfile>.dockerignore next to the Dockerfile before the root .dockerignore.
  const candidates = [`${image.dockerfile}.dockerignore`, ".dockerignore"];
  const ignoreFile = candidates.find((f) => fs.existsSync(path.join(root, f)));
  const ignore = ignores.get(ignoreFile ?? "") ?? new DockerIgnore(root, ignoreFile);
  ignores.set(ignoreFile ?? "", ignore);

  const excludedPackages: string[] = [];
  for (let parent = image.baseImage; parent !== undefined; parent = bases.get(parent)?.baseImage) {
    for (const pkg of bases.get(parent)?.packages ?? []) if (!excludedPackages.includes(pkg)) excludedPackages.push(pkg);
  }

  const patterns = parsed.sources.map((s) => new PathPattern(s.pattern));
  return {
    image,
    dockerfileText,
    sources: parsed.sources,
    patterns,
    selectors: [...patterns, ...includes],
    ignore,
    ignoreFile,
    excludedPackages,
    warnings: parsed.warnings,
  };
}

/** A .dockerignore file's rules (Docker's semantics, via @balena/dockerignore), with answers memoized. */
class DockerIgnore {
  private readonly matcher: Ignore;
  private readonly answers = new Map<string, boolean>();
  /** The `!` rules: an ignored directory holding a path one of them matches must still be walked. */
  readonly negations: readonly PathPattern[];

  constructor(root: string, file: string | undefined) {
    const lines = file ? fs.readFileSync(path.join(root, file), "utf8").split(/\r?\n/) : [];
    const rules = lines.map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
    this.matcher = newIgnore().add(rules);
    this.negations = rules
      .filter((l) => l.startsWith("!"))
      .map((l) => {
        const norm = normalizeRelative(l.slice(1).replace(/^\/+/, ""));
        return new PathPattern("error" in norm ? "" : norm.path);
      });
  }

  ignores(p: string): boolean {
    let answer = this.answers.get(p);
    if (answer === undefined) {
      answer = this.matcher.ignores(p);
      this.answers.set(p, answer);
    }
    return answer;
  }
}

function selectFor(root: string, rules: ImageRules, walk: RepositoryWalk): ImageSelection {
  const { image } = rules;
  const isExcluded = (p: string) => rules.excludedPackages.find((pkg) => p === pkg || p.startsWith(pkg + "/"));
  const isIgnored = (p: string) => rules.ignore.ignores(p);

  // One pass over the walk per image; each source's checks then look only at these.
  const candidates = candidatesFor(rules.selectors, walk);

  // Every COPY/ADD source must still name something once exclusions apply: otherwise the build fails later.
  rules.sources.forEach((source, i) => {
    const pattern = rules.patterns[i]!;
    const where = `${image.dockerfile}:${source.line}`;
    const excludedBy = isExcluded(pattern.literalPrefix) ?? rules.excludedPackages.find((pkg) => pattern.matches(pkg));
    if (excludedBy !== undefined && source.pattern !== "") {
      throw new SelectionError(
        `${where}: ${source.instruction} ${source.pattern || "."} reads ${excludedBy}, which ${image.kind} image ${image.name} leaves out because its base image ${image.baseImage} already installs it. Fix: remove this ${source.instruction} from ${image.dockerfile} (the package comes from the base image), or drop baseImage for ${image.name} in the manifest`,
      );
    }
    const existing = candidates.filter((e) => pattern.selects(e.path));
    const isDir = !pattern.hasWildcard && walk.directories.has(pattern.pattern);
    // The walk does not enter an ignored directory, so a source inside one finds no entries:
    // it exists, but .dockerignore removes it from the context.
    const ignoredOnDisk =
      pattern.literalPrefix !== "" && isIgnored(pattern.literalPrefix) && fs.existsSync(path.join(root, pattern.literalPrefix));
    if (existing.length === 0 && !isDir && ignoredOnDisk) {
      throw new SelectionError(
        `${where}: ${source.instruction} source "${source.pattern}" is excluded by ${rules.ignoreFile}, so the build would not find it. Fix: remove the matching rule from ${rules.ignoreFile}, or this ${source.instruction}`,
      );
    }
    if (existing.length === 0 && !isDir) {
      throw new SelectionError(
        `${where}: ${source.instruction} source "${source.pattern}" matches no file in the build context (${root}). Fix: correct the path (sources are relative to the repository root), or create the file`,
      );
    }
    if (existing.length > 0 && existing.every((e) => isIgnored(e.path))) {
      throw new SelectionError(
        `${where}: ${source.instruction} source "${source.pattern}" is excluded by ${rules.ignoreFile}, so the build would not find it. Fix: remove the matching rule from ${rules.ignoreFile}, or this ${source.instruction}`,
      );
    }
  });

  const selected = new Map<string, SelectedFile>();
  const consider = (entry: WalkEntry) => {
    if (selected.has(entry.path)) return;
    if (entry.kind === "other") {
      throw new SelectionError(
        `${image.name}: ${entry.path} is not a regular file (a socket, FIFO or device) but is selected for the build context. Fix: add it to ${rules.ignoreFile ?? ".dockerignore"}`,
      );
    }
    selected.set(entry.path, { entry, linkTarget: entry.kind === "symlink" ? symlinkTarget(root, entry) : undefined });
  };
  for (const entry of candidates) {
    if (entry.path === image.dockerfile) continue;
    if (isIgnored(entry.path) || isExcluded(entry.path)) continue;
    consider(entry);
  }
  const dockerfileEntry = walk.byPath.get(image.dockerfile);
  if (!dockerfileEntry) throw new SelectionError(`${image.name}: Dockerfile ${image.dockerfile} disappeared during the walk`);
  consider(dockerfileEntry);

  const files = [...selected.values()].sort((a, b) => (a.entry.path < b.entry.path ? -1 : 1));
  const sourcePatterns = rules.selectors.map((p) => p.pattern);
  return { image, dockerfileText: rules.dockerfileText, files, sourcePatterns, excludedPackages: rules.excludedPackages, warnings: rules.warnings };
}

/**
 * Entries some selector selects, sorted by path. Each selector only looks below its literal
 * prefix, so a handler's two files cost two lookups, not a pass over the whole repository.
 */
function candidatesFor(selectors: readonly PathPattern[], walk: RepositoryWalk): WalkEntry[] {
  const found = new Set<WalkEntry>();
  for (const selector of selectors) {
    for (const entry of entriesUnder(walk, selector.literalPrefix)) if (selector.selects(entry.path)) found.add(entry);
  }
  return [...found].sort((a, b) => (a.path < b.path ? -1 : 1));
}

/** Where a symlink points, root-relative; a link out of the repository is an error. */
function symlinkTarget(root: string, entry: WalkEntry): string {
  const text = entry.linkText!;
  const absTarget = path.isAbsolute(text) ? text : path.resolve(root, path.dirname(entry.path), text);
  if (!isInside(root, absTarget)) {
    throw new SelectionError(
      `${entry.path} is a symlink to ${text}, outside the repository root ${root}; the build context cannot contain it. Fix: copy the file into the repository, or add the link to .dockerignore`,
    );
  }
  return path.relative(root, absTarget).split(path.sep).join("/");
}
