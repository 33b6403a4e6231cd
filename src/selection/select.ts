import * as fs from "node:fs";
import * as path from "node:path";
import dockerignore, { type Ignore } from "@balena/dockerignore";
import type { ImageSpec } from "../manifest/load.ts";
import { isInside, normalizeRelative } from "../manifest/paths.ts";
import { SelectionError } from "../manifest/errors.ts";
import { checkBaseImageUse, checkBasePackagesCopied, dockerfileSources, type ContextSource } from "./dockerfile.ts";
import { PathPattern } from "./patterns.ts";
import { RepositoryIndex, type WalkEntry } from "./walk.ts";

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
  /** Which matcher `ignore` is (file and context). */
  readonly ignoreKey: string;
  readonly excludedPackages: readonly string[];
  readonly warnings: readonly string[];
}

/** The ignore files BuildKit would read for an image, in its order of precedence (root-relative). */
export function ignoreCandidates(image: Pick<ImageSpec, "dockerfile" | "context">): string[] {
  return [`${image.dockerfile}.dockerignore`, joinPath(image.context, ".dockerignore")];
}

/**
 * What selections of one repository share: the `.dockerignore` matchers (one per file and
 * context) and the files each COPY source reaches under the same rules. Images built from the
 * same packages (a base image and a standalone Lambda copying the same directory) walk and
 * filter them once.
 */
export class SelectionMemo {
  private readonly matchers = new Map<string, DockerIgnore>();
  private readonly collected = new Map<string, Collected & { readonly consulted: readonly string[] }>();
  constructor(private readonly root: string) {}

  /** BuildKit reads `<Dockerfile>.dockerignore` next to the Dockerfile before the context's `.dockerignore`. */
  forImage(image: Pick<ImageSpec, "dockerfile" | "context">): { file: string | undefined; ignore: DockerIgnore; key: string } {
    const file = ignoreCandidates(image).find((f) => fs.existsSync(path.join(this.root, f)));
    const key = `${file ?? ""}\0${image.context}`;
    let ignore = this.matchers.get(key);
    if (!ignore) {
      ignore = new DockerIgnore(this.root, file, image.context);
      this.matchers.set(key, ignore);
    }
    return { file, ignore, key };
  }

  /**
   * The files below `selector`'s literal prefix that it selects, entering only directories it
   * can reach and the image's rules allow. Keyed by everything that decides the answer: the
   * selector, the ignore rules, the left-out packages that meet the prefix, and the Dockerfile
   * when it lies below it (its directories are always entered). A repeated answer still counts
   * the directories it read as consulted by this image, for the selection cache.
   */
  collect(index: RepositoryIndex, selector: PathPattern, rules: ImageRules): Collected {
    const prefix = selector.literalPrefix;
    const below = (p: string) => prefix === "" || isInsidePath(p, prefix);
    const excluded = rules.excludedPackages.filter((pkg) => below(pkg) || isInsidePath(prefix, pkg));
    const key = JSON.stringify([selector.pattern, rules.ignoreKey, excluded, below(rules.image.dockerfile) ? rules.image.dockerfile : ""]);
    const known = this.collected.get(key);
    if (known) {
      index.consult(known.consulted);
      return known;
    }
    const { result: found, consulted } = index.trace(() => index.collect(prefix, (dir) => mayEnter(rules, selector, dir), (p) => selector.selects(p)));
    const kept = found.filter((e) => !rules.ignore.ignores(e.path) && !insideAny(e.path, rules.excludedPackages)).sort((a, b) => (a.path < b.path ? -1 : 1));
    const collected = { found, kept, consulted: [...consulted.keys()] };
    this.collected.set(key, collected);
    return collected;
  }
}

/** What one COPY source (or include glob) reaches: every file it selects, and those the image keeps (not ignored, not a left-out package), sorted. */
interface Collected {
  readonly found: readonly WalkEntry[];
  readonly kept: readonly WalkEntry[];
}

/**
 * The build-context files of one image, read through the shared walk. `excludedPackages` are
 * the root-relative package directories its base images already install.
 */
export function selectImage(index: RepositoryIndex, image: ImageSpec, excludedPackages: readonly string[], memo: SelectionMemo): ImageSelection {
  const rules = imageRules(index.root, image, excludedPackages, memo);
  return selectFor(index, rules, memo);
}

/** `context/p`, for root-relative paths built from context-relative ones ("" is the context itself). */
export function joinPath(context: string, p: string): string {
  if (context === "") return p;
  return p === "" ? context : `${context}/${p}`;
}

/** Whether root-relative `p` is `dir` or below it. */
function isInsidePath(p: string, dir: string): boolean {
  return p.startsWith(dir) && (p.length === dir.length || p.charCodeAt(dir.length) === 47 /* "/" */);
}

function insideAny(p: string, dirs: readonly string[]): boolean {
  for (const dir of dirs) if (isInsidePath(p, dir)) return true;
  return false;
}

/**
 * Whether `selector`'s walk enters `dir`: a directory it can select from (a file it selects has
 * every directory above it enterable), not a left-out package, not ignored beyond any `!` rule.
 */
function mayEnter(rules: ImageRules, selector: PathPattern, dir: string): boolean {
  if (rules.image.dockerfile.startsWith(dir + "/")) return true;
  if (!selector.mayEnter(dir)) return false;
  if (insideAny(dir, rules.excludedPackages)) return false;
  // An ignored directory can only be skipped when no `!` rule could bring back a file inside it.
  if (rules.ignore.ignores(dir) && !rules.ignore.negations.some((n) => n.mayEnter(dir))) return false;
  return true;
}

function imageRules(root: string, image: ImageSpec, excludedPackages: readonly string[], memo: SelectionMemo): ImageRules {
  const dockerfileText = fs.readFileSync(path.join(root, image.dockerfile), "utf8");
  const parsed = dockerfileSources(dockerfileText, image.buildArgs, image.dockerfile);
  const includes = image.include.map((glob) => {
    const norm = normalizeRelative(glob);
    if ("error" in norm) throw new SelectionError(`${image.name}: include ${norm.error}`);
    return new PathPattern(joinPath(image.context, norm.path));
  });
  const { file: ignoreFile, ignore, key: ignoreKey } = memo.forImage(image);
  const sources = parsed.sources.map((s) => ({ ...s, pattern: joinPath(image.context, s.pattern) }));
  // The seed's traps: a base image that is never used FROM, a package nobody installs.
  const errors = [
    ...checkBaseImageUse(dockerfileText, image.dockerfile, { hasBaseImage: image.baseImage !== undefined, buildArgs: image.buildArgs, baseImage: image.baseImage }),
    ...(image.kind === "base" ? checkBasePackagesCopied(sources, image.packages, image.dockerfile, image.name, excludedPackages) : []),
  ];
  if (errors.length > 0) throw new SelectionError(errors.join("\n"));
  // COPY/ADD sources: `**` is one segment there, as in BuildKit (see PathPattern).
  const patterns = sources.map((s) => new PathPattern(s.pattern, { globstar: false }));
  return {
    image,
    dockerfileText,
    sources,
    patterns,
    selectors: [...patterns, ...includes],
    ignore,
    ignoreFile,
    ignoreKey,
    excludedPackages,
    warnings: parsed.warnings,
  };
}

// The package is CommonJS (`module.exports = factory`); its typings describe an ES default export.
const newIgnore = dockerignore as unknown as (options?: { ignorecase?: boolean }) => Ignore;

/** A rule as @balena/dockerignore parses it, with the regexp it compiles for it. */
interface ParsedRule {
  readonly dirs: readonly string[];
  readonly negative: boolean;
  readonly regexp: RegExp;
  /** How many parent-path components a match of the rule needs at least (its non-`**` parts). */
  readonly minDirs: number;
  readonly globstar: boolean;
}

/**
 * The rules and regexps of a @balena/dockerignore matcher, read from the matcher itself so that
 * parsing and pattern semantics stay the library's; undefined if its internals ever change shape,
 * and then every answer comes from its public `ignores`.
 */
function parsedRules(matcher: Ignore): ParsedRule[] | undefined {
  const internals = matcher as unknown as { _rules?: unknown; _compile?: (rule: unknown) => { regexp?: unknown } };
  if (!Array.isArray(internals._rules) || typeof internals._compile !== "function") return undefined;
  const rules: ParsedRule[] = [];
  for (const rule of internals._rules as { dirs?: unknown; negative?: unknown }[]) {
    const regexp = internals._compile.call(matcher, rule).regexp;
    if (!(regexp instanceof RegExp) || regexp.global || regexp.sticky || !Array.isArray(rule.dirs) || typeof rule.negative !== "boolean") return undefined;
    const dirs = rule.dirs as string[];
    rules.push({ dirs, negative: rule.negative, regexp, minDirs: dirs.filter((d) => d !== "**").length, globstar: dirs.includes("**") });
  }
  return rules;
}

/**
 * A .dockerignore file's rules (Docker's semantics, via @balena/dockerignore), with answers
 * memoized. Docker decides a path by its last matching rule, where a rule matches a path or one
 * of its parent directories; the parent half depends only on the directory, so it is computed
 * once per directory instead of once per file (the library re-tests every parent of every path).
 * Case-sensitive, as Docker on Linux is (the library ignores case unless told otherwise).
 */
export class DockerIgnore {
  private readonly matcher: Ignore;
  private readonly rules: readonly ParsedRule[] | undefined;
  private readonly answers = new Map<string, boolean>();
  private readonly parentMatches = new Map<string, readonly boolean[]>();
  /** The `!` rules (root-relative): an ignored directory holding a path one of them matches must still be walked. */
  readonly negations: readonly PathPattern[];

  /** Its rules are relative to the build context, `context` (root-relative). */
  constructor(
    root: string,
    file: string | undefined,
    private readonly context: string,
  ) {
    const lines = file ? fs.readFileSync(path.join(root, file), "utf8").split(/\r?\n/) : [];
    const rules = lines.map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
    this.matcher = newIgnore({ ignorecase: false }).add(rules);
    this.rules = parsedRules(this.matcher);
    this.negations = rules
      .filter((l) => l.startsWith("!"))
      .map((l) => {
        const norm = normalizeRelative(l.slice(1).replace(/^\/+/, ""));
        return new PathPattern(joinPath(context, "error" in norm ? "" : norm.path));
      });
  }

  /** Whether the root-relative path `p` is left out of the context. */
  ignores(p: string): boolean {
    let answer = this.answers.get(p);
    if (answer === undefined) {
      const inContext = this.context === "" ? p : p === this.context ? "" : p.startsWith(`${this.context}/`) ? p.slice(this.context.length + 1) : undefined;
      answer = inContext === undefined ? true : inContext === "" ? false : this.ignoresInContext(inContext);
      this.answers.set(p, answer);
    }
    return answer;
  }

  /** The library's decision for a clean, context-relative path, with the parent half memoized. */
  private ignoresInContext(p: string): boolean {
    if (!this.rules) return this.matcher.ignores(p);
    const slash = p.lastIndexOf("/");
    const parents = slash < 0 ? undefined : this.parentsMatch(p.slice(0, slash));
    let ignored = false;
    for (let r = 0; r < this.rules.length; r++) {
      const rule = this.rules[r]!;
      if (rule.regexp.test(p) || parents?.[r]) ignored = !rule.negative;
    }
    return ignored;
  }

  /** Per rule: whether it matches `dir` or one of its parents, the way the library tests a path's parent directory. */
  private parentsMatch(dir: string): readonly boolean[] {
    let known = this.parentMatches.get(dir);
    if (!known) {
      const dirs = dir.split("/");
      const prefix = (n: number) => dirs.slice(0, n).join("/");
      known = this.rules!.map((rule) => {
        if (rule.globstar) {
          // `**` stands for any number of directories, so every long enough prefix counts.
          for (let n = rule.minDirs; n <= dirs.length; n++) if (rule.regexp.test(prefix(n))) return true;
          return false;
        }
        return rule.dirs.length <= dirs.length && rule.regexp.test(prefix(rule.dirs.length));
      });
      this.parentMatches.set(dir, known);
    }
    return known;
  }
}

function selectFor(index: RepositoryIndex, rules: ImageRules, memo: SelectionMemo): ImageSelection {
  const { image } = rules;
  const root = index.root;
  const isExcluded = (p: string) => rules.excludedPackages.find((pkg) => isInsidePath(p, pkg));
  const isIgnored = (p: string) => rules.ignore.ignores(p);

  // Each selector reads only below its literal prefix; the source checks then look only at these.
  const perSelector = rules.selectors.map((selector) => memo.collect(index, selector, rules));
  const problems: { line: number; text: string }[] = [];
  const warnings = [...rules.warnings];
  const ignoredBy = rules.ignoreFile ?? ".dockerignore";

  // Every COPY/ADD source must still name something once exclusions apply: otherwise the build fails later.
  rules.sources.forEach((source, i) => {
    const pattern = rules.patterns[i]!;
    const where = `${image.dockerfile}:${source.line}`;
    const shown = contextRelative(image.context, source.pattern);
    const fail = (text: string) => problems.push({ line: source.line, text: `${where}: ${text}` });
    const excludedBy = isExcluded(pattern.literalPrefix) ?? rules.excludedPackages.find((pkg) => pattern.matches(pkg));
    if (excludedBy !== undefined && source.pattern !== image.context) {
      fail(
        `${source.instruction} ${shown || "."} reads ${excludedBy}, which ${image.kind} image ${image.name} leaves out because its base image ${image.baseImage} already installs it. Fix: remove this ${source.instruction} from ${image.dockerfile} (the package comes from the base image), or drop baseImage for ${image.name}`,
      );
      return;
    }
    // The whole context: right to leave the base's packages out, but say so (they may be missed).
    if (source.pattern === image.context) {
      const left = rules.excludedPackages.filter((pkg) => image.context === "" || isInsidePath(pkg, image.context));
      if (left.length > 0) {
        const them = left.length === 1 ? "it" : "them";
        warnings.push(
          `${where}: ${source.instruction} ${shown || "."} leaves out ${left.map((p) => `${contextRelative(image.context, p)}/`).join(", ")}: base image ${image.baseImage} already installs ${them}, so ${image.kind} image ${image.name} gets ${them} from there, not from this ${source.instruction}`,
        );
      }
    }
    const existing = perSelector[i]!.found;
    const isDir = !pattern.hasWildcard && index.isDirectory(pattern.pattern);
    // The walk does not enter an ignored directory, so a source inside one finds no entries:
    // it exists, but .dockerignore removes it from the context.
    const ignoredOnDisk =
      pattern.literalPrefix !== image.context && isIgnored(pattern.literalPrefix) && fs.existsSync(path.join(root, pattern.literalPrefix));
    if ((existing.length === 0 && !isDir && ignoredOnDisk) || (existing.length > 0 && existing.every((e) => isIgnored(e.path)))) {
      fail(`${source.instruction} source "${shown}" is excluded by ${ignoredBy}, so the build would not find it. Fix: remove the matching rule from ${ignoredBy}, or this ${source.instruction}`);
    } else if (existing.length === 0 && !isDir) {
      fail(
        `${source.instruction} source "${shown}" matches no file in the build context (${image.context || "the repository root"}). Fix: correct the path (sources are relative to the build context), or create the file`,
      );
    }
  });
  // An include glob that matches nothing is a typo: what the user meant to ship is not shipped.
  image.include.forEach((glob, j) => {
    if (perSelector[rules.patterns.length + j]!.found.length === 0) {
      problems.push({
        line: Number.MAX_SAFE_INTEGER,
        text: `${image.kind === "base" ? "base image" : "image"} ${image.name}: include "${glob}" matches no file in the build context (${image.context || "the repository root"}). Fix: correct the glob (it is relative to the build context), or remove it`,
      });
    }
  });
  if (problems.length > 0) {
    // In line order: where the build would fail first.
    throw new SelectionError(problems.sort((a, b) => a.line - b.line).map((p) => p.text).join("\n"));
  }

  const selected = new Map<string, WalkEntry>();
  for (const { kept } of perSelector) {
    for (const entry of kept) if (entry.path !== image.dockerfile && !selected.has(entry.path)) selected.set(entry.path, entry);
  }
  const dockerfileEntry = index.fileEntry(image.dockerfile);
  if (!dockerfileEntry) throw new SelectionError(`${image.name}: Dockerfile ${image.dockerfile} disappeared during the walk. Fix: run synth again`);
  selected.set(dockerfileEntry.path, dockerfileEntry);

  // Sorted once, here; a problem with a file is reported for the first such path.
  const files = [...selected.values()]
    .sort((a, b) => (a.path < b.path ? -1 : 1))
    .map((entry): SelectedFile => {
      if (entry.kind === "other") {
        throw new SelectionError(
          `${image.name}: ${entry.path} is not a regular file (a socket, FIFO or device) but is selected for the build context. Fix: add it to ${ignoredBy}`,
        );
      }
      return entry.kind === "symlink" ? { entry, linkTarget: symlinkTarget(root, entry) } : { entry };
    });
  const sourcePatterns = rules.selectors.map((p) => p.pattern);
  return {
    image,
    dockerfileText: rules.dockerfileText,
    files,
    sourcePatterns,
    excludedPackages: rules.excludedPackages,
    warnings,
  };
}

/** A root-relative path as seen from the build context (what the Dockerfile writes). */
export function contextRelative(context: string, p: string): string {
  if (context === "") return p;
  return p === context ? "" : p.startsWith(`${context}/`) ? p.slice(context.length + 1) : p;
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
