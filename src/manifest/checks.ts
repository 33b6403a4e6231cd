import * as path from "node:path";
import type { Platform } from "./schema.ts";
import { isReference as isReferenceValue } from "./secrets.ts";
import { looksLikeSecret, secretValueReason } from "./secrets.ts";
import { normalizeRelative, statInside } from "./paths.ts";
import type { ImageKind, ImageSpec } from "./spec.ts";

/**
 * The checks both front ends run on an image: images.yaml reports them with file:line and the
 * field path, the constructs with the construct path. One place, so neither can drift.
 */
export interface Problem {
  /** The image's field, dotted (`dockerfile`, `environment.DB_PASSWORD`). */
  readonly field: string;
  readonly message: string;
  readonly fix: string;
}

/** An image as the user wrote it, paths not yet checked. */
export interface ImageInput {
  readonly kind: ImageKind;
  readonly name: string;
  readonly dockerfile: string;
  /** @default "" (the repository root) */
  readonly context?: string;
  readonly platforms: readonly Platform[];
  readonly include?: readonly string[];
  readonly buildArgs?: Readonly<Record<string, string>>;
  readonly baseImage?: string;
  readonly packages?: readonly string[];
  readonly builder: "docker" | "codebuild";
  readonly computeType?: string;
  readonly lambda?: ImageSpec["lambda"];
  /** Build args and environment variables whose values are not secrets, though they look like one. */
  readonly notSecret?: readonly string[];
}

const BUILD_ARG_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const LAMBDA_ENV_NAME = /^[a-zA-Z][a-zA-Z0-9_]*$/;
const RESERVED_LAMBDA_ENV = new Set(["_HANDLER", "_X_AMZN_TRACE_ID", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "TZ"]);

/**
 * Checks an image's paths and names against the repository at `root`; returns the normalized
 * spec when all is well, and warnings (names that sound like a secret) either way.
 */
export function checkImage(root: string, input: ImageInput): { spec?: ImageSpec; problems: Problem[]; warnings: Problem[] } {
  const warnings: Problem[] = [];
  const problems: Problem[] = [];
  const add = (field: string, message: string, fix: string) => problems.push({ field, message, fix });

  const checkPath = (field: string, value: string, want: "file" | "dir"): string | undefined => {
    const norm = normalizeRelative(value);
    if ("error" in norm) {
      add(field, norm.error, "use a path relative to root that stays inside it");
      return undefined;
    }
    const found = statInside(root, norm.path);
    if ("error" in found) {
      add(field, found.error, want === "file" ? "point it at an existing file inside root" : "point it at an existing directory inside root");
      return undefined;
    }
    if (want === "file" && !found.stat.isFile()) add(field, `"${value}" is not a file`, "point it at a Dockerfile");
    if (want === "dir" && !found.stat.isDirectory()) add(field, `"${value}" is not a directory`, field === "context" ? "point it at the directory the build runs in" : "list package directories");
    return norm.path;
  };

  const dockerfile = checkPath("dockerfile", input.dockerfile, "file");
  const context = input.context === undefined ? "" : checkPath("context", input.context, "dir");
  // A Dockerfile outside the context is fine, as with `docker build -f`: it is sent apart from the context.
  const packages = (input.packages ?? []).map((p, i) => checkPath(`packages.${i}`, p, "dir")).filter((p): p is string => p !== undefined);
  (input.include ?? []).forEach((g, i) => {
    const norm = normalizeRelative(g);
    if ("error" in norm) add(`include.${i}`, norm.error, "use a glob relative to the build context that stays inside it");
  });
  const buildArgs = input.buildArgs ?? {};
  for (const name of Object.keys(buildArgs)) {
    if (!BUILD_ARG_NAME.test(name)) add(`buildArgs.${name}`, "build arg names are letters, digits and _", "rename the build arg");
  }
  problems.push(...secretProblems("buildArgs", buildArgs, "build args", input.notSecret));
  warnings.push(...secretNameWarnings("buildArgs", buildArgs, "build args", input.notSecret));
  if (new Set(input.platforms).size !== input.platforms.length) add("platforms", "lists a platform twice", "list each platform once");
  if (input.lambda) {
    problems.push(...environmentProblems(input.lambda.environment, { notSecret: input.notSecret }));
    warnings.push(...environmentWarnings(input.lambda.environment, { notSecret: input.notSecret }));
  }
  if (problems.length > 0 || dockerfile === undefined || context === undefined) return { problems, warnings };
  return {
    problems,
    warnings,
    spec: {
      kind: input.kind,
      name: input.name,
      dockerfile,
      context,
      platforms: input.platforms,
      include: input.include ?? [],
      buildArgs,
      baseImage: input.baseImage,
      packages,
      builder: input.builder,
      ...(input.computeType ? { computeType: input.computeType } : {}),
      lambda: input.lambda,
    },
  };
}

/** A Lambda function's environment: valid names, none the runtime reserves, no value that is a secret. */
export function environmentProblems(environment: Readonly<Record<string, string>>, options: { readonly notSecret?: readonly string[] } = {}): Problem[] {
  const problems: Problem[] = [];
  const names = Object.keys(environment);
  for (const name of names) {
    if (!LAMBDA_ENV_NAME.test(name)) {
      problems.push({ field: `environment.${name}`, message: "Lambda environment variable names are letters, digits and _, starting with a letter", fix: "rename the variable" });
    } else if (RESERVED_LAMBDA_ENV.has(name) || name.startsWith("AWS_")) {
      problems.push({ field: `environment.${name}`, message: `"${name}" is reserved by the Lambda runtime`, fix: "choose another name" });
    }
  }
  problems.push(...secretProblems("environment", environment, "Lambda environment variables", options.notSecret));
  return problems;
}

/** Environment variables whose names sound like a secret while their values do not show one: worth a look, not an error. */
export function environmentWarnings(environment: Readonly<Record<string, string>>, options: { readonly notSecret?: readonly string[] } = {}): Problem[] {
  return secretNameWarnings("environment", environment, "Lambda environment variables", options.notSecret);
}

/**
 * Values that are secrets (a password in a URL, an AWS access key id, a private key, a long
 * random string): they would be stored in plain text in the synthesized configuration and the
 * Terraform state. Tokens and Terraform references are not checked: their values are not there.
 */
export function secretProblems(field: string, values: Readonly<Record<string, string>>, where: string, notSecret: readonly string[] = []): Problem[] {
  return Object.entries(values).flatMap(([name, value]) => {
    if (notSecret.includes(name) || typeof value !== "string") return [];
    const reason = secretValueReason(value);
    if (!reason) return [];
    return [
      {
        field: `${field}.${name}`,
        message: `the value ${reason}, and ${where} are stored in plain text in the synthesized configuration and Terraform state`,
        fix: `read the secret at run time from Secrets Manager or SSM Parameter Store and pass only its name or ARN; if the value is not a secret, list ${name} under notSecret`,
      },
    ];
  });
}

/** Literal values under names that sound like a secret (`GITHUB_TOKEN`): a warning, never for a reference or token. */
export function secretNameWarnings(field: string, values: Readonly<Record<string, string>>, where: string, notSecret: readonly string[] = []): Problem[] {
  return Object.entries(values).flatMap(([name, value]) => {
    if (notSecret.includes(name) || typeof value !== "string" || value === "" || isReferenceValue(value) || !looksLikeSecret(name)) return [];
    if (secretValueReason(value)) return []; // an error already
    return [
      {
        field: `${field}.${name}`,
        message: `the name sounds like a secret, and ${where} are stored in plain text in the synthesized configuration and Terraform state`,
        fix: `pass a secret's name or ARN and read it at run time; if this value is not a secret, list ${name} under notSecret to silence this warning`,
      },
    ];
  });
}

/**
 * A path as messages show it: relative to the current directory, as the manifest's own name is
 * (one base for every location a message gives), or absolute on another drive.
 */
export function shownPath(abs: string, cwd = process.cwd()): string {
  const rel = path.relative(cwd, abs);
  return rel === "" ? "." : path.isAbsolute(rel) ? abs : rel;
}

/**
 * What an image built FROM `parent` needs of it: its platforms. (Each platform is built on its
 * own, FROM the parent's image for that platform, so a Docker-built parent's per-platform tags
 * serve a multi-platform CodeBuild-built child as well as an index would.)
 */
export function baseImageProblems(
  image: Pick<ImageSpec, "kind" | "name" | "platforms" | "builder">,
  parent: Pick<ImageSpec, "name" | "platforms" | "builder">,
  parentField: string,
): Problem[] {
  const problems: Problem[] = [];
  const missing = image.platforms.filter((p) => !parent.platforms.includes(p));
  if (missing.length) {
    problems.push(
      image.kind !== "base"
        ? {
            field: "platform",
            message: `is ${image.platforms[0]}, but base image ${parent.name} is built only for ${parent.platforms.join(", ")}`,
            fix: `add ${missing.join(", ")} to ${parentField}.platforms, or build this ${image.kind === "lambda" ? "Lambda" : "image"} for ${parent.platforms[0]}`,
          }
        : {
            field: "platforms",
            message: `includes ${missing.join(", ")}, but its base image ${parent.name} is built only for ${parent.platforms.join(", ")}`,
            fix: `add ${missing.join(", ")} to ${parentField}.platforms`,
          },
    );
  }
  return problems;
}

/** AWS name limits (ECR repository 256, CodeBuild project 255, Lambda function 64). */
export const NAME_LIMITS = { repository: 256, project: 255, function: 64 } as const;

/** A name AWS would reject for its length. */
export function nameLengthProblem(field: string, kind: keyof typeof NAME_LIMITS, name: string, what: string): Problem | undefined {
  const max = NAME_LIMITS[kind];
  if (name.length <= max) return undefined;
  return {
    field,
    message: `the ${what} "${name}" is ${name.length} characters; AWS allows ${max}`,
    fix: `shorten the names it is made of by ${name.length - max} characters`,
  };
}

