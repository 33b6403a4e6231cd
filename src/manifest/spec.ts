import type { Platform } from "./schema.ts";

/**
 * An image to build, base or Lambda, as both front ends (images.yaml and the constructs) describe
 * it once validated: every path normalized, POSIX, relative to the repository root.
 */
export interface ImageSpec {
  readonly kind: "base" | "lambda";
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

/** The Dockerfile's path inside the build context (what `docker build -f` gets there). */
export function dockerfileInContext(spec: Pick<ImageSpec, "dockerfile" | "context">): string {
  return spec.context === "" ? spec.dockerfile : spec.dockerfile.slice(spec.context.length + 1);
}
