import type { Platform } from "./schema.ts";

/**
 * What an image is for: a base image other images are built FROM, a Lambda function's image, or
 * an image built and pushed for something else to run (ECS, Batch): no function.
 */
export type ImageKind = "base" | "lambda" | "image";

/**
 * An image to build, base, Lambda or other, as both front ends (images.yaml and the constructs)
 * describe it once validated: every path normalized, POSIX, relative to the repository root.
 */
export interface ImageSpec {
  readonly kind: ImageKind;
  readonly name: string;
  /** Root-relative POSIX path of the Dockerfile (inside `context`). */
  readonly dockerfile: string;
  /** Root-relative build context directory ("" is the repository root): COPY sources and `.dockerignore` are relative to it. */
  readonly context: string;
  readonly platforms: readonly Platform[];
  /** Extra globs, relative to the build context, hashed and shipped. */
  readonly include: readonly string[];
  readonly buildArgs: Readonly<Record<string, string>>;
  /** Name of the base image this one is built FROM. */
  readonly baseImage?: string;
  /** Root-relative directories installed in this image (base images only). */
  readonly packages: readonly string[];
  readonly builder: "docker" | "codebuild";
  /** CodeBuild compute type, for images built in CodeBuild. @default BUILD_GENERAL1_SMALL */
  readonly computeType?: string;
  readonly lambda?: {
    readonly memorySize: number;
    readonly timeout: number;
    /** Size of /tmp in MB. */
    readonly ephemeralStorage?: number;
    readonly environment: Readonly<Record<string, string>>;
  };
}

/** The Dockerfile's path inside the build context (what `docker build -f` gets there), for a Dockerfile inside it. */
export function dockerfileInContext(spec: Pick<ImageSpec, "dockerfile" | "context">): string {
  return spec.context === "" ? spec.dockerfile : spec.dockerfile.slice(spec.context.length + 1);
}

/**
 * Whether the Dockerfile lies outside the build context. Docker allows it: `docker build -f`
 * names any file, and BuildKit receives the Dockerfile apart from the context.
 */
export function dockerfileOutsideContext(spec: Pick<ImageSpec, "dockerfile" | "context">): boolean {
  return spec.context !== "" && !spec.dockerfile.startsWith(`${spec.context}/`);
}

/**
 * Where an image's files are in its context archive, which CodeBuild unpacks and builds in. With
 * the Dockerfile inside the context, the archive is the context (paths relative to it) and the
 * build runs `-f <Dockerfile in context> .`. With the Dockerfile outside, the context is the
 * archive's `context/` and the Dockerfile is `dockerfile/<its name>`, beside an empty
 * `<its name>.dockerignore` (BuildKit reads that before the context's `.dockerignore`; the
 * archive holds only selected files already), and the build runs `-f dockerfile/<name> context`.
 */
export interface ArchiveLayout {
  /** The build context directory inside the archive (`.` or `context`). */
  readonly contextDir: string;
  /** The Dockerfile's path inside the archive. */
  readonly dockerfile: string;
  /** An empty file the archive holds beside an outside Dockerfile. */
  readonly emptyIgnoreFile?: string;
  /** The archive path of a selected root-relative file. */
  path(rootRelative: string): string;
}

export function archiveLayout(spec: Pick<ImageSpec, "dockerfile" | "context">): ArchiveLayout {
  const inContext = (p: string) => (spec.context === "" ? p : p === spec.context ? "" : p.slice(spec.context.length + 1));
  if (!dockerfileOutsideContext(spec)) return { contextDir: ".", dockerfile: dockerfileInContext(spec), path: inContext };
  const dockerfile = `dockerfile/${spec.dockerfile.slice(spec.dockerfile.lastIndexOf("/") + 1)}`;
  return {
    contextDir: "context",
    dockerfile,
    emptyIgnoreFile: `${dockerfile}.dockerignore`,
    path: (p) => (p === spec.dockerfile ? dockerfile : `context/${inContext(p)}`),
  };
}

/**
 * What the Docker provider builds a staged context with an outside Dockerfile from: the
 * provider sends one directory, so the Dockerfile goes into it under this name, and a
 * `.dockerignore` there lists it (and itself), as the Docker CLI does for `-f` outside the
 * context: the daemon reads the Dockerfile, COPY never sees it.
 */
export const STAGED_OUTSIDE_DOCKERFILE = ".dockerfile.lambda-images";
