import type { Construct } from "constructs";
import type { ITerraformDependable } from "cdktf";
import { S3Object } from "@cdktf/provider-aws/lib/s3-object/index.js";
import { CodebuildProject } from "@cdktf/provider-aws/lib/codebuild-project/index.js";
import { CloudwatchLogGroup } from "@cdktf/provider-aws/lib/cloudwatch-log-group/index.js";
import type { Platform } from "../manifest/schema.ts";
import { buildspecHash } from "../buildspec.ts";
import { codebuildEnvironment } from "../naming.ts";
import type { ArchiveResult } from "../archive/context-archive.ts";
import type { BuiltImage } from "./built-image.ts";
import { BuildTrigger } from "./build-trigger.ts";
import { ImageRepository, type ImageRepositoryProps } from "./image-repository.ts";
import { terraformLiteral } from "./terraform-literal.ts";
import { CONTEXT_PREFIX } from "./context-bucket.ts";
import type { ImageBuildEnvironment } from "./image-build-environment.ts";
import { StagedAsset } from "./staged-asset.ts";

export interface CodeBuildBuildProps {
  /** The image's name, used in the context key (`contexts/<name>/<hash>.zip`). */
  readonly imageName: string;
  /** The image's ECR repository: name, tag mutability and lifecycle. */
  readonly repository: ImageRepositoryProps;
  readonly projectName: string;
  /** Content hash of the image's inputs. */
  readonly hash: string;
  /** Tag to push. */
  readonly tag: string;
  readonly platforms: readonly Platform[];
  /** The buildspec text (see src/buildspec.ts). */
  readonly buildspec: string;
  /** The deterministic context archive. */
  readonly archive: ArchiveResult;
  /** The base image it is built FROM. @default none */
  readonly baseImage?: BuiltImage;
  /** CodeBuild compute type. @default "BUILD_GENERAL1_SMALL" */
  readonly computeType?: string;
  /** CodeBuild build timeout in minutes. @default 30 */
  readonly buildTimeoutMinutes?: number;
  /** Build log retention in days. @default 14 */
  readonly logRetentionDays?: number;
}

/** What an image built in CodeBuild consists of. */
export interface CodeBuildBuild {
  readonly repository: ImageRepository;
  readonly project: CodebuildProject;
  readonly logGroup: CloudwatchLogGroup;
  readonly contextObject: S3Object;
  readonly trigger: BuildTrigger;
  /** `repository:tag`. */
  readonly uri: string;
  /** What exists once the image is in the registry. */
  readonly built: readonly ITerraformDependable[];
}

/**
 * Wires one image built in CodeBuild into `scope`: its repository, its context archive in S3
 * under a content-addressed key, its CodeBuild project and log group, and the trigger that runs
 * the build when the content hash, base image or buildspec changes.
 */
export function addCodeBuildBuild(scope: Construct, env: ImageBuildEnvironment, props: CodeBuildBuildProps): CodeBuildBuild {
  const repository = new ImageRepository(scope, "repository", props.repository);
  const archive = new StagedAsset(scope, "context", { source: props.archive.file, contentHash: props.archive.sha256 });
  const contextKey = `${CONTEXT_PREFIX}${props.imageName}/${props.hash}.zip`;
  const contextObject = new S3Object(scope, "context-object", {
    bucket: env.bucket.name,
    key: contextKey,
    source: archive.path,
    contentType: "application/zip",
  });
  const logGroup = new CloudwatchLogGroup(scope, "logs", {
    name: `/aws/codebuild/${props.projectName}`,
    retentionInDays: props.logRetentionDays ?? 14,
  });
  // A multi-platform image is built on the first platform's machine with QEMU for the rest.
  const environment = codebuildEnvironment(props.platforms[0]!);
  const buildTimeoutMinutes = props.buildTimeoutMinutes ?? 30;
  const project = new CodebuildProject(scope, "project", {
    name: props.projectName,
    description: `Builds ${props.repository.name} from ${props.imageName}'s context archive`,
    serviceRole: env.codebuildRole.arn,
    buildTimeout: buildTimeoutMinutes,
    artifacts: { type: "NO_ARTIFACTS" },
    source: { type: "S3", location: `${env.bucket.name}/${contextKey}`, buildspec: terraformLiteral(props.buildspec) },
    environment: {
      type: environment.type,
      image: environment.image,
      computeType: props.computeType ?? "BUILD_GENERAL1_SMALL",
      privilegedMode: true,
      environmentVariable: [{ name: "REPOSITORY_URI", value: repository.url }],
    },
    logsConfig: { cloudwatchLogs: { groupName: logGroup.name, status: "ENABLED" } },
  });

  const baseImageUri = props.baseImage?.uri(props.platforms[0]!);
  const trigger = new BuildTrigger(scope, "trigger", {
    launcher: env.launcher,
    projectName: project.name,
    sourceLocation: `${env.bucket.name}/${contextObject.key}`,
    repositoryUri: repository.url,
    imageTag: props.tag,
    baseImageUri,
    region: env.region,
    // The runner gives up a little after CodeBuild itself would.
    timeoutSeconds: buildTimeoutMinutes * 60 + 300,
    // A mutable tag existing says nothing about its content: the trigger decided, so build.
    force: props.repository.mutableTags ?? false,
    triggers: {
      content_hash: props.hash,
      base_image_uri: baseImageUri ?? "",
      buildspec_hash: buildspecHash(props.buildspec),
    },
    dependsOn: [contextObject, project, ...(props.baseImage?.built ?? []), env.codebuildPolicy],
  });
  return {
    repository,
    project,
    logGroup,
    contextObject,
    trigger,
    // A multi-platform build pushes one index under the tag; FROM picks the platform.
    uri: `${repository.url}:${props.tag}`,
    built: [trigger.resource],
  };
}
