import { Construct } from "constructs";
import type { ITerraformDependable } from "cdktf";
import type { AnalyzedImage } from "../analyze.ts";
import { imageTag } from "../analyze.ts";
import { dockerContextBytes } from "../archive/context-archive.ts";
import type { Platform } from "../manifest/schema.ts";
import type { ImageSpec } from "../manifest/spec.ts";
import { dockerfileInContext, dockerfileOutsideContext, STAGED_OUTSIDE_DOCKERFILE } from "../manifest/spec.ts";
import { externalFrom, pullsFromPublicEcr } from "../selection/dockerfile.ts";

import { boundedName, kebabName } from "../naming.ts";
import { AppImages } from "./app-images.ts";
import { imageOutput, type BuiltImage } from "./built-image.ts";
import { addCodeBuildBuild } from "./codebuild-build.ts";
import { addDockerBuild } from "./docker-build.ts";
import { ImageBuildEnvironment } from "./image-build-environment.ts";
import { defineImage } from "./image-definition.ts";
import { ImageRepository } from "./image-repository.ts";
import { ImageProblems, otherAppProblem } from "./problems.ts";

/** Tag base images with the last commit that touched their inputs, when those are clean in git. */
export interface GitTagging {
  /** Files (relative to the root) that define the image besides its Dockerfile and sources, e.g. the file declaring it. */
  readonly extraInputs: readonly string[];
}

export interface BaseImageProps {
  /** The Dockerfile, relative to the repository root. */
  readonly dockerfile: string;
  /** The build context directory, relative to the repository root: COPY sources and `.dockerignore` are relative to it. @default the repository root */
  readonly context?: string;
  /** Package directories (relative to the root) this image installs: images built FROM it leave them out of their contexts. */
  readonly packages: readonly string[];
  /** Platforms to build. @default ["linux/arm64"] */
  readonly platforms?: readonly Platform[];
  /** Where it is built: `docker` (the Docker provider, a local daemon) or `codebuild`. @default "docker" */
  readonly builder?: "docker" | "codebuild";
  /** Another base image this one is built FROM (chaining); its packages are left out too. @default none */
  readonly baseImage?: BaseImage;
  /** Extra globs, relative to the build context, hashed and shipped. @default none */
  readonly include?: readonly string[];
  /** Docker build args: passed as --build-arg and part of the content hash. @default none */
  readonly buildArgs?: Readonly<Record<string, string>>;
  /** The image's name in AWS names and in `plan`. @default the construct id in kebab-case */
  readonly name?: string;
  /** How it is tagged: by content (`sha-<12 hex>`), `stable`, or by git commit. @default "stable" when the environment sets staticBaseImageTags, else "content" */
  readonly tag?: "content" | "stable" | GitTagging;
  /** ECR repository name. @default `<namePrefix>-base-<name>` */
  readonly repositoryName?: string;
  /** CodeBuild project name (builder: codebuild). @default `<namePrefix>-base-<name>` */
  readonly projectName?: string;
  /** CodeBuild compute type (builder: codebuild). @default "BUILD_GENERAL1_SMALL" */
  readonly computeType?: string;
  /** The stack's shared build pieces. @default the stack's ImageBuildEnvironment, created on first use */
  readonly environment?: ImageBuildEnvironment;
  /** Tags on the image's AWS resources (repository, CodeBuild project, log group), beside the provider's default_tags. @default none */
  readonly tags?: Readonly<Record<string, string>>;
  /** Add Terraform outputs `<id>-uri` (one URI per platform, comma-separated) and `<id>-hash` to the stack. @default true */
  readonly outputs?: boolean;
}

/**
 * A base image holding shared packages, pushed to its own ECR repository and rebuilt only when
 * its content hash changes. Lambda images (and other base images) built FROM it leave its
 * packages out of their build contexts, and rebuild when it does.
 */
export class BaseImage extends Construct implements BuiltImage {
  readonly name: string;
  readonly spec: ImageSpec;
  /** Its selection and hash (includes its parent's hash). */
  readonly analysis: AnalyzedImage;
  readonly hash: string;
  readonly tag: string;
  readonly repository: ImageRepository;
  /** The ECR repository's name. */
  readonly repositoryName: string;
  readonly platforms: readonly Platform[];
  readonly built: readonly ITerraformDependable[];
  /** False when its props have problems: they are reported when the App is synthesized, and nothing of it is written. */
  readonly valid: boolean;
  private readonly uris: ReadonlyMap<Platform, string>;

  constructor(scope: Construct, id: string, props: BaseImageProps) {
    super(scope, id);
    const env = props.environment ?? ImageBuildEnvironment.of(this);
    this.name = props.name ?? kebabName(id);
    const builder = props.builder ?? "docker";
    const platforms = props.platforms ?? ["linux/arm64"];
    // The environment's naming, which its IAM policies' name pattern also comes from.
    const repositoryName = env.awsName("ECR repository", props.repositoryName ?? boundedName(env.resourceName(`base-${this.name}`), 256), props.repositoryName ? "repositoryName" : "name", this);
    const projectName = props.projectName ?? boundedName(env.resourceName(`base-${this.name}`), 255);
    this.repositoryName = repositoryName;
    this.platforms = platforms;
    const parent = props.baseImage;
    const tagging = props.tag ?? (env.staticBaseImageTags ? "stable" : "content");
    const parentProblem = parent && otherAppProblem(this, parent);
    if (parentProblem) ImageProblems.of(this).add(this, [parentProblem]);
    const analysis = defineImage(
      this,
      env,
      {
        kind: "base",
        name: this.name,
        dockerfile: props.dockerfile,
        context: props.context,
        platforms,
        include: props.include,
        buildArgs: props.buildArgs,
        baseImage: parent?.name,
        packages: props.packages,
        builder,
        computeType: props.computeType,
      },
      parentProblem || parent?.valid === false ? "invalid" : parent && { spec: parent.spec, analysis: parent.analysis, path: parent.node.path },
      { repositoryName: { kind: "repository", value: repositoryName }, projectName: { kind: "project", value: projectName } },
      { platforms: "platforms" },
      typeof tagging === "object" ? { gitTag: { extraInputs: tagging.extraInputs } } : {},
    );
    const dockerProblems = builder === "docker" ? env.dockerProvider(this) : [];
    if (dockerProblems.length) ImageProblems.of(this).add(this, dockerProblems);
    const repository = {
      name: repositoryName,
      mutableTags: props.tag === "stable" || (props.tag === undefined && env.staticBaseImageTags),
      maxImages: env.maxImages,
      maxAgeDays: env.maxAgeDays,
      tags: props.tags,
    };
    if (!analysis || dockerProblems.length) {
      // Reported at synth; what is defined here only keeps code that reads the image working until then.
      this.valid = false;
      this.analysis = analysis!;
      this.spec = analysis?.spec as ImageSpec;
      this.hash = "";
      this.tag = "invalid";
      this.repository = new ImageRepository(this, "repository", repository);
      this.uris = new Map(platforms.map((p) => [p, `${this.repository.url}:invalid`]));
      this.built = [];
      return;
    }
    this.valid = true;
    this.analysis = analysis;
    this.spec = this.analysis.spec;
    this.hash = this.analysis.hash;
    this.tag = imageTag(this.analysis, tagging === "stable");
    const app = AppImages.of(this);
    env.addBaseRepository(repositoryName);
    // Built FROM a base of another stack: this stack's builds pull it too.
    if (parent) env.addBaseRepository(parent.repositoryName);
    let contextBytes: number | (() => number) | undefined;

    if (builder === "docker") {
      const built = addDockerBuild(this, {
        repository,
        hash: this.hash,
        tag: this.tag,
        platforms,
        dockerfile: dockerfileOutsideContext(this.spec) ? STAGED_OUTSIDE_DOCKERFILE : dockerfileInContext(this.spec),
        context: app.stagedContext(this.analysis, env.root!),
        buildArgs: this.spec.buildArgs,
        parent,
      });
      this.repository = built.repository;
      this.uris = built.uris;
      this.built = built.built;
      contextBytes = dockerContextBytes(this.analysis);
    } else {
      const archive = app.contextArchive(this.analysis, env.root!);
      env.addCodeBuildImage(repositoryName, projectName, pullsFromPublicEcr(this.analysis.selection.dockerfileText, parent !== undefined));
      env.addDockerfileFrontend(this.analysis.spec.buildArgs);
      const built = addCodeBuildBuild(this, env, {
        imageName: `base-${this.name}`,
        repository,
        projectName,
        hash: this.hash,
        tag: this.tag,
        platforms,
        buildspec: this.analysis.buildspec!,
        archive,
        baseImage: parent,
        computeType: props.computeType,
        tags: props.tags,
      });
      this.repository = built.repository;
      this.uris = new Map(platforms.map((p) => [p, built.uri]));
      this.built = built.built;
      contextBytes = () => archive.bytes;
    }
    app.record(env.stackName, {
      image: this.analysis,
      tag: this.tag,
      digests: app.analyzer(env.root!).digests,
      contextBytes,
      from: parent ? undefined : externalFrom(this.analysis.selection.dockerfileText),
    });
    if (props.outputs !== false) {
      imageOutput(this, "uri", { value: platforms.map((p) => this.uri(p)).join(","), description: `Image of base ${this.name} (one per platform)` });
      imageOutput(this, "hash", { value: this.hash, description: `Content hash of base image ${this.name}` });
    }
  }

  /** `repository:tag` to pull for a platform (`<arch>-<tag>` for a multi-platform Docker-built image). */
  uri(platform: Platform): string {
    const uri = this.uris.get(platform);
    if (!uri) throw new Error(`${this.node.path}: base image ${this.name} is not built for ${platform}`);
    return uri;
  }

  /** The packages images built FROM it leave out (its own and its bases'). */
  get providedPackages(): readonly string[] {
    return this.analysis.providedPackages;
  }

  get repositoryArn(): string {
    return this.repository.arn;
  }
}
