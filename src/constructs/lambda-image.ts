import { Construct } from "constructs";
import type { ITerraformDependable } from "cdktf";
import type { AnalyzedImage } from "../analyze.ts";
import type { Platform } from "../manifest/schema.ts";
import type { ImageSpec } from "../manifest/spec.ts";
import { externalFrom, pullsFromPublicEcr } from "../selection/dockerfile.ts";

import { boundedName, kebabName } from "../naming.ts";
import { AppImages } from "./app-images.ts";
import type { BaseImage } from "./base-image.ts";
import { addCodeBuildBuild, type CodeBuildBuild } from "./codebuild-build.ts";
import { ImageBuildEnvironment } from "./image-build-environment.ts";
import { defineImage } from "./image-definition.ts";
import { ImageRepository } from "./image-repository.ts";
import { imageOutput } from "./built-image.ts";
import { ImageProblems, otherAppProblem } from "./problems.ts";

export interface LambdaImageProps {
  /** The Dockerfile, relative to the repository root. */
  readonly dockerfile: string;
  /** The build context directory, relative to the repository root: COPY sources and `.dockerignore` are relative to it. @default the repository root */
  readonly context?: string;
  /** The base image it is built FROM (its Dockerfile takes `ARG BASE_IMAGE_URI`); its packages are left out of this context. @default none: the image carries its packages itself */
  readonly baseImage?: BaseImage;
  /** The platform to build, and so the function's architecture. @default "linux/arm64" */
  readonly platform?: Platform;
  /** Docker build args: passed as --build-arg and part of the content hash. @default none */
  readonly buildArgs?: Readonly<Record<string, string>>;
  /** Extra globs, relative to the build context, hashed and shipped. @default none */
  readonly include?: readonly string[];
  /** The image's name in AWS names and in `plan`. @default the construct id in kebab-case */
  readonly name?: string;
  /** ECR repository name. @default `<namePrefix>-<name>` */
  readonly repositoryName?: string;
  /** CodeBuild project name. @default `<namePrefix>-<name>` */
  readonly projectName?: string;
  /** CodeBuild compute type. @default "BUILD_GENERAL1_SMALL" */
  readonly computeType?: string;
  /** CodeBuild build timeout in minutes. @default 30 */
  readonly buildTimeoutMinutes?: number;
  /** The stack's shared build pieces. @default the stack's ImageBuildEnvironment, created on first use */
  readonly environment?: ImageBuildEnvironment;
  /** Tags on the image's AWS resources (repository, CodeBuild project, log group), beside the provider's default_tags. @default none */
  readonly tags?: Readonly<Record<string, string>>;
  /** Add Terraform outputs `<id>-uri` and `<id>-hash` to the stack. @default true */
  readonly outputs?: boolean;
  /**
   * What runs it, as `plan`, `graph` and the outputs name it: "lambda" for a LambdaImageFunction,
   * "image" for an image something else runs (an ECS task, a Batch job). The build is the same.
   * @default "lambda"
   */
  readonly kind?: "lambda" | "image";
}

/**
 * A Lambda container image built in CodeBuild from a context archive holding exactly the files
 * its Dockerfile reads, pushed under a content tag (`sha-<12 hex>`). A change to those files,
 * its Dockerfile, build args or base image rebuilds it; anything else does not.
 */
export class LambdaImage extends Construct {
  readonly name: string;
  readonly spec: ImageSpec;
  /** Its selection and hash. */
  readonly analysis: AnalyzedImage;
  /** Content hash (hex SHA-256) of what it is built from, its base image's hash included. */
  readonly hash: string;
  /** `sha-<12 hex>`: a new tag per content change, so Lambda re-resolves the digest. */
  readonly tag: string;
  readonly platform: Platform;
  readonly repository: ImageRepository;
  /** `repository:tag`, for the function's `image_uri`. */
  readonly imageUri: string;
  /** Depend on these to run after the image is in the registry. */
  readonly built: readonly ITerraformDependable[];
  /** The CodeBuild project, log group, context object and trigger. */
  readonly build: CodeBuildBuild;
  /** False when its props (or its base image's) have problems: they are reported when the App is synthesized, and nothing of it is written. */
  readonly valid: boolean;

  constructor(scope: Construct, id: string, props: LambdaImageProps) {
    super(scope, id);
    const env = props.environment ?? ImageBuildEnvironment.of(this);
    this.name = props.name ?? kebabName(id);
    this.platform = props.platform ?? "linux/arm64";
    // The environment's naming, which its IAM policies' name pattern also comes from.
    const repositoryName = env.awsName("ECR repository", props.repositoryName ?? boundedName(env.resourceName(this.name), 256), props.repositoryName ? "repositoryName" : "name", this);
    const projectName = props.projectName ?? boundedName(env.resourceName(this.name), 255);
    const base = props.baseImage;
    const baseProblem = base && otherAppProblem(this, base);
    if (baseProblem) ImageProblems.of(this).add(this, [baseProblem]);
    const analysis = defineImage(
      this,
      env,
      {
        kind: props.kind ?? "lambda",
        name: this.name,
        dockerfile: props.dockerfile,
        context: props.context,
        platforms: [this.platform],
        include: props.include,
        buildArgs: props.buildArgs,
        baseImage: base?.name,
        builder: "codebuild",
        computeType: props.computeType,
      },
      baseProblem || base?.valid === false ? "invalid" : base && { spec: base.spec, analysis: base.analysis, path: base.node.path },
      { repositoryName: { kind: "repository", value: repositoryName }, projectName: { kind: "project", value: projectName } },
      { platforms: "platform" },
    );
    const repository = { name: repositoryName, maxImages: env.maxImages, maxAgeDays: env.maxAgeDays };
    if (!analysis) {
      // Reported at synth; what is defined here only keeps code that reads the image working until then.
      this.valid = false;
      this.analysis = analysis!;
      this.spec = undefined as unknown as ImageSpec;
      this.hash = "";
      this.tag = "invalid";
      this.repository = new ImageRepository(this, "repository", { ...repository, tags: props.tags });
      this.imageUri = `${this.repository.url}:invalid`;
      this.built = [];
      this.build = undefined as unknown as CodeBuildBuild;
      return;
    }
    this.valid = true;
    this.analysis = analysis;
    this.spec = this.analysis.spec;
    this.hash = this.analysis.hash;
    this.tag = this.analysis.contentTag;
    const app = AppImages.of(this);
    const archive = app.contextArchive(this.analysis, env.root!);
    // The base may belong to another stack's environment: this stack's builds pull it either way.
    if (base) env.addBaseRepository(base.repositoryName);
    env.addCodeBuildImage(repositoryName, projectName, pullsFromPublicEcr(this.analysis.selection.dockerfileText, base !== undefined));
    env.addDockerfileFrontend(this.analysis.spec.buildArgs);
    this.build = addCodeBuildBuild(this, env, {
      imageName: this.name,
      repository,
      projectName,
      hash: this.hash,
      tag: this.tag,
      platforms: [this.platform],
      buildspec: this.analysis.buildspec!,
      archive,
      baseImage: base,
      computeType: props.computeType,
      buildTimeoutMinutes: props.buildTimeoutMinutes,
      tags: props.tags,
    });
    this.repository = this.build.repository;
    this.imageUri = this.build.uri;
    this.built = this.build.built;
    app.record(env.stackName, {
      image: this.analysis,
      tag: this.tag,
      digests: app.analyzer(env.root!).digests,
      contextBytes: () => archive.bytes,
      from: base ? undefined : externalFrom(this.analysis.selection.dockerfileText),
    });
    if (props.outputs !== false) {
      const what = props.kind === "image" ? "image" : "Lambda image";
      imageOutput(this, "uri", { value: this.imageUri, description: `Image of ${props.kind === "image" ? "" : "Lambda "}${this.name}` });
      imageOutput(this, "hash", { value: this.hash, description: `Content hash of ${what} ${this.name}` });
    }
  }
}
