import { Annotations, Token } from "cdktf";
import type { Construct } from "constructs";
import type { AnalyzedImage, AnalyzeImageOptions } from "../analyze.ts";
import { baseImageProblems, checkImage, nameLengthProblem, type ImageInput, type Problem } from "../manifest/checks.ts";
import { SelectionError } from "../manifest/errors.ts";
import { useCdktfTokens } from "../manifest/limits.ts";
import { platform, resourceName } from "../manifest/schema.ts";
import type { ImageSpec } from "../manifest/spec.ts";
import { AppImages } from "./app-images.ts";
import type { ImageBuildEnvironment } from "./image-build-environment.ts";
import { ImageProblems } from "./problems.ts";

useCdktfTokens(Token);

/** The platforms images.yaml accepts, from its schema. */
const PLATFORMS: readonly string[] = platform.options;

/** The parent a new image is built FROM, as its constructs know it. */
export interface ParentImage {
  readonly spec: ImageSpec;
  readonly analysis: AnalyzedImage;
  /** Construct path, for messages. */
  readonly path: string;
}

/** How the construct's props are named where they differ from the shared checks' field names. */
export interface PropNames {
  /** The prop holding the platform(s): `platforms` on a base image, `platform` on a Lambda image. */
  readonly platforms: "platforms" | "platform";
}

/** Fields whose problems are about a path inside the repository root. */
const PATH_FIELD = /^(dockerfile|context|packages|include)(\.|$)/;

/**
 * Checks an image's props with the same rules images.yaml gets, then selects and hashes it
 * through the App's shared analyzer. Problems are recorded with the construct path (see
 * {@link ImageProblems}) instead of thrown, so one synth reports every problem of the App; the
 * result is undefined then (or when `parent` is undefined because the parent had problems).
 */
export function defineImage(
  scope: Construct,
  env: ImageBuildEnvironment,
  input: ImageInput,
  parent: ParentImage | undefined | "invalid",
  names: Readonly<Record<string, { kind: "repository" | "project" | "function"; value: string }>>,
  propNames: PropNames,
  options: AnalyzeImageOptions = {},
): AnalyzedImage | undefined {
  const problems: Problem[] = [];
  const literal = (field: string, value: unknown) => {
    if (typeof value === "string" && Token.isUnresolved(value)) {
      problems.push({ field, message: "is a token; image inputs are hashed at synth, so they must be literal strings", fix: "pass a plain string" });
    }
  };
  if (!resourceName.safeParse(input.name).success) {
    problems.push({ field: "name", message: `"${input.name}" must be lower-case letters, digits and single hyphens, starting with a letter`, fix: "pass name, or give the construct an id that kebab-cases to such a name" });
  }
  literal("dockerfile", input.dockerfile);
  literal("context", input.context);
  (input.packages ?? []).forEach((p, i) => literal(`packages.${i}`, p));
  (input.include ?? []).forEach((p, i) => literal(`include.${i}`, p));
  Object.entries(input.buildArgs ?? {}).forEach(([k, v]) => literal(`buildArgs.${k}`, v));
  input.platforms.filter((p) => !PLATFORMS.includes(p)).forEach((p) => problems.push({ field: propNames.platforms, message: `"${p}" is not a supported platform`, fix: `use ${PLATFORMS.join(" or ")}` }));
  if (input.platforms.length === 0) problems.push({ field: propNames.platforms, message: "is empty", fix: "list at least one platform" });
  for (const [field, name] of Object.entries(names)) {
    const what = name.kind === "function" ? "Lambda function name" : name.kind === "project" ? "CodeBuild project name" : "ECR repository name";
    const problem = nameLengthProblem(field, name.kind, name.value, what);
    if (problem && !Token.isUnresolved(name.value)) problems.push(problem);
  }
  if (input.kind === "base" && input.builder === "docker" && env.launcher?.kind === "lambda") {
    problems.push({
      field: "builder",
      message: "is docker, which needs a Docker daemon where Terraform runs, but this stack starts builds through the AWS provider (buildTrigger: lambda)",
      fix: 'set builder: "codebuild", or use buildTrigger "local-exec" for this stack',
    });
  }
  const record = ImageProblems.of(scope);
  // Without a usable root (its environment's problem, reported there) no path can be checked.
  if (env.root === undefined) {
    record.add(scope, problems);
    return undefined;
  }
  const checked: { spec?: ImageSpec; problems: Problem[] } = problems.length === 0 ? checkImage(env.root, input) : { problems: [] };
  const all = [...problems, ...checked.problems.map((p) => inRoot(p, env))];
  if (checked.spec && parent && parent !== "invalid") {
    all.push(...baseImageProblems(checked.spec, parent.spec, parent.path).map((p) => (p.field === "platforms" ? { ...p, field: propNames.platforms } : p)));
  }
  if (all.length > 0 || !checked.spec) {
    record.add(scope, all);
    return undefined;
  }
  if (parent === "invalid") return undefined;

  try {
    const app = AppImages.of(scope);
    const image = app.analyzer(env.root).analyze(checked.spec, parent?.analysis, options);
    if (app.annotatesWarnings) for (const warning of image.warnings) Annotations.of(scope).addWarning(warning);
    return image;
  } catch (error) {
    if (!(error instanceof SelectionError)) throw error;
    // A selection error is `<file>:<line>: <what>. Fix: <how>`, one a line.
    record.add(
      scope,
      error.message.split("\n").map((line) => {
        const fix = line.lastIndexOf(". Fix: ");
        return fix < 0 ? { field: "", message: line.replace(/\.$/, ""), fix: "see the Dockerfile" } : { field: "", message: line.slice(0, fix), fix: line.slice(fix + 7).replace(/\.$/, "") };
      }),
    );
    return undefined;
  }
}

/** A path problem says which root the path was taken relative to, and how to choose another. */
function inRoot(problem: Problem, env: ImageBuildEnvironment): Problem {
  if (!PATH_FIELD.test(problem.field)) return problem;
  return {
    ...problem,
    message: `${problem.message} (paths are relative to the repository root ${env.root}, ${env.rootSource})`,
    fix: `${problem.fix}, or set root on the stack's ImageBuildEnvironment`,
  };
}
