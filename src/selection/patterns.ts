import picomatch from "picomatch";

const GLOB_CHARS = /[*?[\]\\]/;

/**
 * A root-relative path or wildcard pattern that selects a path and everything below it, as a
 * COPY source does. Wildcards follow Docker's (Go filepath.Match) rules: `*` and `?` never
 * cross `/`. `**` crosses any number of directories in manifest include globs and
 * .dockerignore rules; in a COPY/ADD source (`globstar: false`) it is two `*`s, one path
 * segment, since BuildKit resolves sources with Go's filepath.Match (tonistiigi/fsutil
 * copy.resolveWildcards; "matching will be done using Go's filepath.Match rules", Dockerfile
 * reference, COPY).
 */
export class PathPattern {
  private readonly segments: readonly string[];
  private readonly segmentMatchers: readonly ((s: string) => boolean)[];
  private readonly globstar?: (p: string) => boolean;
  /** The literal leading directories, before the first wildcard. */
  readonly literalPrefix: string;
  readonly hasWildcard: boolean;

  constructor(
    readonly pattern: string,
    { globstar = true }: { readonly globstar?: boolean } = {},
  ) {
    this.segments = pattern === "" ? [] : pattern.split("/");
    this.hasWildcard = GLOB_CHARS.test(pattern);
    const firstGlob = this.segments.findIndex((s) => GLOB_CHARS.test(s));
    this.literalPrefix = (firstGlob < 0 ? this.segments : this.segments.slice(0, firstGlob)).join("/");
    const options = { dot: true, nobrace: true, noextglob: true };
    if (globstar && this.segments.includes("**")) {
      this.globstar = picomatch(pattern, options);
    }
    this.segmentMatchers = this.segments.map((s) =>
      GLOB_CHARS.test(s) ? picomatch(s, { ...options, noglobstar: true }) : (x: string) => x === s,
    );
  }

  /** True when `p` itself is selected (and so, if a directory, all of it). */
  matches(p: string): boolean {
    if (this.segments.length === 0) return true;
    if (this.globstar) return this.globstar(p);
    if (!this.hasWildcard) return p === this.pattern;
    const parts = p.split("/");
    return parts.length === this.segments.length && parts.every((part, i) => this.segmentMatchers[i]!(part));
  }

  /** True when `p` or one of its parent directories is selected. */
  selects(p: string): boolean {
    if (this.segments.length === 0) return true;
    if (!this.hasWildcard) return p === this.pattern || p.startsWith(this.pattern + "/");
    if (this.globstar) {
      if (!p.startsWith(this.literalPrefix)) return false;
      const parts = p.split("/");
      for (let n = parts.length; n > 0; n--) if (this.globstar(parts.slice(0, n).join("/"))) return true;
      return false;
    }
    const parts = p.split("/");
    if (parts.length < this.segments.length) return false;
    return this.segments.every((_, i) => this.segmentMatchers[i]!(parts[i]!));
  }

  /** True when a directory could hold a selected path, so the walk has to enter it. */
  mayEnter(dir: string): boolean {
    if (this.selects(dir)) return true;
    const parts = dir.split("/");
    if (this.globstar) {
      const prefix = this.literalPrefix;
      return prefix === "" || prefix.startsWith(dir + "/") || dir.startsWith(prefix);
    }
    if (parts.length >= this.segments.length) return false;
    return parts.every((part, i) => this.segmentMatchers[i]!(part));
  }
}
