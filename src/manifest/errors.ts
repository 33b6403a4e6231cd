/** One thing wrong with the manifest, located as precisely as we can. */
export interface ManifestProblem {
  /** Dotted field path, e.g. `lambdas.create-labels.platform`. */
  readonly field: string;
  /** What is wrong. */
  readonly message: string;
  /** What to do about it. */
  readonly fix: string;
  /** 1-based line in the manifest, when known. */
  readonly line?: number;
}

/** Raised before anything is written when the manifest (or what it points at) is unusable. */
export class ManifestError extends Error {
  constructor(
    readonly file: string,
    readonly problems: readonly ManifestProblem[],
  ) {
    super(
      problems
        .map((p) => `${file}${p.line ? `:${p.line}` : ""}: ${p.field || "(top level)"}: ${p.message}. Fix: ${p.fix}`)
        .join("\n"),
    );
    this.name = "ManifestError";
  }
}

/** Errors found while selecting an image's files (Dockerfile sources, symlinks, exclusions). */
export class SelectionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SelectionError";
  }
}

/** A construct's props are unusable: reported with the construct path, like images.yaml's file:line. */
export class PropsError extends Error {
  constructor(
    readonly constructPath: string,
    readonly problems: readonly { readonly field: string; readonly message: string; readonly fix: string }[],
  ) {
    super(problems.map((p) => `${constructPath}: ${p.field ? `${p.field}: ` : ""}${p.message}. Fix: ${p.fix}`).join("\n"));
    this.name = "PropsError";
  }
}

/** A command's input is unusable (a flag, a stack name): one line saying what and how to fix it. */
export class CommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * Marks the errors that are the user's to fix (a bad manifest, props, Dockerfile, flag): a command
 * prints their message, one line per problem, and no stack trace. A global symbol rather than
 * instanceof: a command's bundle and a module it imports each have their own copy of these classes.
 */
const USER_ERROR = Symbol.for("lambda-images.user-error");
for (const cls of [ManifestError, SelectionError, PropsError, CommandError]) {
  Object.defineProperty(cls.prototype, USER_ERROR, { value: true });
}

/** True for errors whose message is the whole story (see USER_ERROR). */
export function isUserError(error: unknown): error is Error {
  return typeof error === "object" && error !== null && (error as Record<symbol, unknown>)[USER_ERROR] === true;
}
