import { Construct } from "constructs";
import type { ITerraformDependable } from "cdktf";
import type { ImageAnalysis } from "../analyze.ts";
import { imageKey, type BuildAssets } from "../assets.ts";
import { codebuildProjectName, imageRepositoryName } from "../manifest/load.ts";
import { STATIC_TAG } from "../hashing/tags.ts";
import type { BuiltImage } from "./built-image.ts";
import { CodeBuildDockerImage } from "./codebuild-docker-image.ts";
import type { BuildLauncher } from "./build-trigger.ts";
import { DockerBaseImage } from "./docker-base-image.ts";
import type { ContextBucket } from "./context-bucket.ts";

export interface BaseImagesProps {
  readonly analysis: ImageAnalysis;
  readonly stackName: string;
  readonly assets: BuildAssets;
  readonly bucket: ContextBucket;
  /** CodeBuild service role, for base images with `builder: codebuild`. */
  readonly codebuildRoleArn: string;
  /** How CodeBuild-built base images start their builds. */
  readonly launcher: BuildLauncher;
  readonly region: string;
  /** Resources CodeBuild-built images wait for (the role's policy). @default none */
  readonly dependsOn?: readonly ITerraformDependable[];
}

/**
 * Every base image of the manifest, parents before the images built FROM them: built by the
 * Docker provider (`builder: docker`) or in CodeBuild like the Lambda images (`builder: codebuild`).
 */
export class BaseImages extends Construct {
  private readonly images = new Map<string, BuiltImage>();
  /** Base images built in CodeBuild (their projects, logs and buckets need IAM access). */
  readonly codebuildImages: CodeBuildDockerImage[] = [];

  constructor(scope: Construct, id: string, props: BaseImagesProps) {
    super(scope, id);
    const { analysis, stackName } = props;
    const manifest = analysis.manifest;
    for (const image of analysis.images.filter((i) => i.spec.kind === "base")) {
      const spec = image.spec;
      const tag = analysis.tagFor(image, stackName);
      const parent = spec.baseImage ? this.get(spec.baseImage) : undefined;
      const common = {
        repository: {
          name: imageRepositoryName(manifest.project, spec, stackName),
          mutableTags: tag === STATIC_TAG,
          maxImages: manifest.ecr.maxImages,
          maxAgeDays: manifest.ecr.maxAgeDays,
        },
        hash: image.hash,
        tag,
        platforms: spec.platforms,
      };
      if (spec.builder === "docker") {
        this.images.set(
          spec.name,
          new DockerBaseImage(this, spec.name, {
            ...common,
            dockerfile: spec.dockerfile,
            contextDir: props.assets.stagedContexts.get(imageKey(image))!,
            buildArgs: spec.buildArgs,
            parent,
          }),
        );
      } else {
        const built = new CodeBuildDockerImage(this, spec.name, {
          ...common,
          imageName: `base-${spec.name}`,
          projectName: codebuildProjectName(manifest.project, spec, stackName),
          buildspec: image.buildspec!,
          archiveFile: props.assets.archives.get(imageKey(image))!.file,
          bucket: props.bucket,
          roleArn: props.codebuildRoleArn,
          baseImage: parent,
          launcher: props.launcher,
          region: props.region,
          dependsOn: props.dependsOn,
        });
        this.codebuildImages.push(built);
        this.images.set(spec.name, built);
      }
    }
  }

  get(name: string): BuiltImage {
    const image = this.images.get(name);
    if (!image) throw new Error(`unknown base image ${name}`);
    return image;
  }

  get all(): readonly BuiltImage[] {
    return [...this.images.values()];
  }
}
