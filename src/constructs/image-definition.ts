import { Annotations, Token } from "cdktf";
import type { Construct } from "constructs";
import type { AnalyzedImage, AnalyzeImageOptions } from "../analyze.ts";
import { baseImageProblems, checkImage, nameLengthProblem, type ImageInput, type Problem } from "../manifest/checks.ts";
import { PropsError, SelectionError } from "../manifest/errors.ts";
import { useCdktfTokens } from "../manifest/limits.ts";
import { platform, resourceName } from "../manifest/schema.ts";
import type { ImageSpec } from "../manifest/spec.ts";
import { AppImages } from "./app-images.ts";
import type { ImageBuildEnvironment } from "./image-build-environment.ts";

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

/**
 * Checks an image's props with the same rules images.yaml gets (reported with the construct
 * path), then selects and hashes it through the App's shared analyzer.
 */
export function defineImage(
  scope: Construct,
  env: ImageBuildEnvironment,
  input: ImageInput,
  parent: ParentImage | undefined,
  names: Readonly<Record<string, { kind: "repository" | "project" | "function"; value: string }>>,
  options: AnalyzeImageOptions = {},
): AnalyzedImage {
  const problems: Problem[] = [];
  const literal = (field: string, value: unknown) => {
    if (typeof value === "string" && Token.isUnresolved(value)) {
      problems.push({ field, message: "is a token; image inputs are hashed at synth, so they must be literal strings", fix: "pass a plain string" });
    }
  };
  if (!resourceName.safeParse(input.name).success) {
    problems.push({ field: "name", message: `"${input.name}" must be lower-case letters, digits and single hyphens, starting with a letter`, fix: "rename the construct or pass name" });
  }
  literal("dockerfile", input.dockerfile);
  literal("context", input.context);
  (input.packages ?? []).forEach((p, i) => literal(`packages.${i}`, p));
  (input.include ?? []).forEach((p, i) => literal(`include.${i}`, p));
  Object.entries(input.buildArgs ?? {}).forEach(([k, v]) => literal(`buildArgs.${k}`, v));
  input.platforms.filter((p) => !PLATFORMS.includes(p)).forEach((p) => problems.push({ field: "platforms", message: `"${p}" is not a supported platform`, fix: `use ${PLATFORMS.join(" or ")}` }));
  if (input.platforms.length === 0) problems.push({ field: "platforms", message: "is empty", fix: "list at least one platform" });
  for (const [field, name] of Object.entries(names)) {
    const what = name.kind === "function" ? "Lambda function name" : name.kind === "project" ? "CodeBuild project name" : "ECR repository name";
    const problem = nameLengthProblem(field, name.kind, name.value, what);
    if (problem && !Token.isUnresolved(name.value)) problems.push(problem);
  }
  if (input.kind === "base" && input.builder === "docker" && env.launcher.kind === "lambda") {
    problems.push({
      field: "builder",
      message: "is docker, which needs a Docker daemon where Terraform runs, but this stack starts builds through the AWS provider (buildTrigger: lambda)",
      fix: 'set builder: "codebuild", or use buildTrigger "local-exec" for this stack',
    });
  }
  if (problems.length > 0) throw new PropsError(scope.node.path, problems);

  const checked = checkImage(env.root, input);
  const all = [...checked.problems];
  if (checked.spec && parent) all.push(...baseImageProblems(checked.spec, parent.spec, parent.path));
  if (all.length > 0 || !checked.spec) throw new PropsError(scope.node.path, all);

  try {
    const app = AppImages.of(scope);
    const image = app.analyzer(env.root).analyze(checked.spec, parent?.analysis, options);
    if (app.annotatesWarnings) for (const warning of image.warnings) Annotations.of(scope).addWarning(warning);
    return image;
  } catch (error) {
    if (error instanceof SelectionError) {
      throw new SelectionError(error.message.split("\n").map((line) => `${scope.node.path}: ${line}`).join("\n"));
    }
    throw error;
  }
}
