import { Construct } from "constructs";
import { AssetType, TerraformAsset, type ITerraformDependable } from "cdktf";
import { S3Object } from "@cdktf/provider-aws/lib/s3-object/index.js";
import { CodebuildProject } from "@cdktf/provider-aws/lib/codebuild-project/index.js";
import { CloudwatchLogGroup } from "@cdktf/provider-aws/lib/cloudwatch-log-group/index.js";
import type { Platform } from "../manifest/schema.ts";
import { buildspecHash } from "../buildspec.ts";
import { codebuildEnvironment } from "../naming.ts";
import type { BuiltImage } from "./built-image.ts";
import { BuildTrigger, type BuildLauncher } from "./build-trigger.ts";
import { ImageRepository, type ImageRepositoryProps } from "./image-repository.ts";
import { terraformLiteral } from "./terraform-literal.ts";
import { CONTEXT_PREFIX, type ContextBucket } from "./context-bucket.ts";

export interface CodeBuildDockerImageProps {
  /** The image's manifest name, used in the context key. */
  readonly imageName: string;
  /** The image's ECR repository: name, tag mutability and lifecycle. */
  readonly repository: ImageRepositoryProps;
  /** CodeBuild project name. */
  readonly projectName: string;
  /** Content hash of the image's inputs. */
  readonly hash: string;
  /** Tag to push. */
  readonly tag: string;
  readonly platforms: readonly Platform[];
  /** The buildspec text (see src/buildspec.ts). */
  readonly buildspec: string;
  /** Local path of the deterministic context archive. */
  readonly archiveFile: string;
  readonly bucket: ContextBucket;
  /** Service role the CodeBuild project runs as. */
  readonly roleArn: string;
  /** The base image it is built FROM. @default none */
  readonly baseImage?: BuiltImage;
  /** How the build is started. */
  readonly launcher: BuildLauncher;
  readonly region: string;
  /** CodeBuild build timeout in minutes. @default 30 */
  readonly buildTimeoutMinutes?: number;
  /** Build log retention in days. @default 14 */
  readonly logRetentionDays?: number;
  /** Extra resources the build waits for (the IAM policy). @default none */
  readonly dependsOn?: readonly ITerraformDependable[];
}

/**
 * One image built in CodeBuild: its repository, its context archive in S3 under a
 * content-addressed key, its CodeBuild project and log group, and the trigger that runs the
 * build when the content hash, base image or buildspec changes.
 */
export class CodeBuildDockerImage extends Construct implements BuiltImage {
  readonly repository: ImageRepository;
  readonly project: CodebuildProject;
  readonly logGroup: CloudwatchLogGroup;
  readonly contextObject: S3Object;
  readonly trigger: BuildTrigger;
  readonly hash: string;
  readonly contextKey: string;
  readonly buildspec: string;
  private readonly tag: string;

  constructor(scope: Construct, id: string, props: CodeBuildDockerImageProps) {
    super(scope, id);
    this.hash = props.hash;
    this.tag = props.tag;
    this.buildspec = props.buildspec;
    this.repository = new ImageRepository(this, "repository", props.repository);

    const archive = new TerraformAsset(this, "context", { path: props.archiveFile, type: AssetType.FILE });
    this.contextKey = `${CONTEXT_PREFIX}${props.imageName}/${props.hash}.zip`;
    this.contextObject = new S3Object(this, "context-object", {
      bucket: props.bucket.name,
      key: this.contextKey,
      source: archive.path,
      contentType: "application/zip",
    });

    this.logGroup = new CloudwatchLogGroup(this, "logs", {
      name: `/aws/codebuild/${props.projectName}`,
      retentionInDays: props.logRetentionDays ?? 14,
    });
    // A multi-platform image is built on the first platform's machine with QEMU for the rest.
    const environment = codebuildEnvironment(props.platforms[0]!);
    const buildTimeoutMinutes = props.buildTimeoutMinutes ?? 30;
    this.project = new CodebuildProject(this, "project", {
      name: props.projectName,
      description: `Builds ${props.repository.name} from ${props.imageName}'s context archive`,
      serviceRole: props.roleArn,
      buildTimeout: buildTimeoutMinutes,
      artifacts: { type: "NO_ARTIFACTS" },
      source: { type: "S3", location: `${props.bucket.name}/${this.contextKey}`, buildspec: terraformLiteral(props.buildspec) },
      environment: {
        type: environment.type,
        image: environment.image,
        computeType: "BUILD_GENERAL1_SMALL",
        privilegedMode: true,
        environmentVariable: [{ name: "REPOSITORY_URI", value: this.repository.url }],
      },
      logsConfig: { cloudwatchLogs: { groupName: this.logGroup.name, status: "ENABLED" } },
    });

    const baseImageUri = props.baseImage?.uri(props.platforms[0]!);
    this.trigger = new BuildTrigger(this, "trigger", {
      launcher: props.launcher,
      projectName: this.project.name,
      sourceLocation: `${props.bucket.name}/${this.contextObject.key}`,
      repositoryUri: this.repository.url,
      imageTag: props.tag,
      baseImageUri,
      region: props.region,
      // The runner gives up a little after CodeBuild itself would.
      timeoutSeconds: buildTimeoutMinutes * 60 + 300,
      // A mutable tag existing says nothing about its content: the trigger decided, so build.
      force: props.repository.mutableTags ?? false,
      triggers: {
        content_hash: props.hash,
        base_image_uri: baseImageUri ?? "",
        buildspec_hash: buildspecHash(props.buildspec),
      },
      dependsOn: [this.contextObject, this.project, ...(props.baseImage?.built ?? []), ...(props.dependsOn ?? [])],
    });
  }

  uri(_platform: Platform): string {
    // A multi-platform build pushes one index under the tag; FROM picks the platform.
    return `${this.repository.url}:${this.tag}`;
  }
  get repositoryArn(): string {
    return this.repository.arn;
  }
  get built(): readonly ITerraformDependable[] {
    return [this.trigger.resource];
  }
}
