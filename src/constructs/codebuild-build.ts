import type { Construct } from "constructs";
import { Token, type ITerraformDependable } from "cdktf";
import { S3Object } from "@cdktf/provider-aws/lib/s3-object/index.js";
import { CodebuildProject } from "@cdktf/provider-aws/lib/codebuild-project/index.js";
import { CloudwatchLogGroup } from "@cdktf/provider-aws/lib/cloudwatch-log-group/index.js";
import type { Platform } from "../manifest/schema.ts";
import { buildspecHash, platformTag, renderJoinBuildspec, TARGET_PLATFORM_VAR } from "../buildspec.ts";
import { boundedName, codebuildEnvironment, platformSuffix } from "../naming.ts";
import type { ArchiveResult } from "../archive/context-archive.ts";
import { sameStack, type BuiltImage } from "./built-image.ts";
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
  /** The CodeBuild project; a multi-platform image also gets `<projectName>-<arch>` per platform, and this one joins their images. */
  readonly projectName: string;
  /** Content hash of the image's inputs. */
  readonly hash: string;
  /** Tag to push. */
  readonly tag: string;
  readonly platforms: readonly Platform[];
  /** The buildspec text (see src/buildspec.ts); each platform's, for a multi-platform image. */
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
  /** Tags on the repository, projects and log groups. @default none */
  readonly tags?: Readonly<Record<string, string>>;
}

/** One platform's build of a multi-platform image, pushed under `<tag>-<arch>`. */
export interface PlatformBuild {
  readonly platform: Platform;
  readonly project: CodebuildProject;
  readonly logGroup: CloudwatchLogGroup;
  readonly trigger: BuildTrigger;
}

/** What an image built in CodeBuild consists of. */
export interface CodeBuildBuild {
  readonly repository: ImageRepository;
  /** The project that builds the image; for a multi-platform image, the one that joins the platforms' images into an index. */
  readonly project: CodebuildProject;
  readonly logGroup: CloudwatchLogGroup;
  readonly contextObject: S3Object;
  /** The build that leaves `repository:tag` in the registry. */
  readonly trigger: BuildTrigger;
  /** A multi-platform image's per-platform builds (none for a single platform). */
  readonly platformBuilds: readonly PlatformBuild[];
  /** `repository:tag`. */
  readonly uri: string;
  /** What exists once the image is in the registry. */
  readonly built: readonly ITerraformDependable[];
}

/**
 * Wires one image built in CodeBuild into `scope`: its repository, its context archive in S3
 * under a content-addressed key, its CodeBuild project and log group, and the trigger that runs
 * the build when the content hash, base image or buildspec changes.
 *
 * A multi-platform image is built natively: one project per platform on a machine of that
 * architecture (arm64 on ARM_CONTAINER, amd64 on LINUX_CONTAINER), each pushing `<tag>-<arch>`,
 * then a build of `projectName` joins them into the index `<tag>`. No QEMU, no builder container,
 * so no image is ever pulled from Docker Hub.
 */
export function addCodeBuildBuild(scope: Construct, env: ImageBuildEnvironment, props: CodeBuildBuildProps): CodeBuildBuild {
  const repository = new ImageRepository(scope, "repository", { ...props.repository, tags: props.tags });
  const tags = props.tags ? { ...props.tags } : undefined;
  // The archive's digest is read when the path is resolved: until then it may still be written.
  const archive = new StagedAsset(scope, "context", { source: props.archive.file, contentHash: () => props.archive.sha256, kind: "file" });
  const contextKey = `${CONTEXT_PREFIX}${props.imageName}/${props.hash}.zip`;
  env.awsName("S3 object", `${Token.isUnresolved(env.bucket.name) ? env.node.path : env.bucket.name}\0${contextKey}`, "name", scope);
  const contextObject = new S3Object(scope, "context-object", {
    bucket: env.bucket.name,
    key: contextKey,
    source: archive.path,
    contentType: "application/zip",
  });
  const buildTimeoutMinutes = props.buildTimeoutMinutes ?? 30;

  const addProject = (suffix: string, o: { name: string; platform: Platform; buildspec: string; variables?: Record<string, string>; computeType?: string }) => {
    env.awsName("CodeBuild project", o.name, "projectName", scope);
    const logGroup = new CloudwatchLogGroup(scope, `logs${suffix}`, {
      name: env.awsName("CloudWatch log group", `/aws/codebuild/${o.name}`, "projectName", scope),
      retentionInDays: props.logRetentionDays ?? 14,
      tags,
    });
    const environment = codebuildEnvironment(o.platform);
    const project = new CodebuildProject(scope, `project${suffix}`, {
      name: o.name,
      description: suffix
        ? `Builds the ${o.platform} image of ${props.repository.name} from ${props.imageName}'s context archive`
        : props.platforms.length > 1
          ? `Joins the per-platform images of ${props.repository.name} into one index`
          : `Builds ${props.repository.name} from ${props.imageName}'s context archive`,
      serviceRole: env.codebuildRole.arn,
      buildTimeout: buildTimeoutMinutes,
      artifacts: { type: "NO_ARTIFACTS" },
      source: { type: "S3", location: `${env.bucket.name}/${contextKey}`, buildspec: terraformLiteral(o.buildspec) },
      environment: {
        type: environment.type,
        image: environment.image,
        computeType: o.computeType ?? props.computeType ?? "BUILD_GENERAL1_SMALL",
        // CodeBuild's managed images start the Docker daemon only in privileged mode.
        privilegedMode: true,
        environmentVariable: [
          { name: "REPOSITORY_URI", value: repository.url },
          ...Object.entries(o.variables ?? {}).map(([name, value]) => ({ name, value })),
        ],
      },
      logsConfig: { cloudwatchLogs: { groupName: logGroup.name, status: "ENABLED" } },
      tags,
    });
    return { project, logGroup };
  };
  const addTrigger = (
    id: string,
    o: { project: CodebuildProject; tag: string; baseImageUri?: string; buildspec: string; dependsOn: readonly ITerraformDependable[]; triggerBaseImageUri?: string },
  ) =>
    new BuildTrigger(scope, id, {
      launcher: env.launcher,
      projectName: o.project.name,
      sourceLocation: `${env.bucket.name}/${contextObject.key}`,
      repositoryUri: repository.url,
      imageTag: o.tag,
      baseImageUri: o.baseImageUri,
      region: env.region,
      // The runner gives up a little after CodeBuild itself would.
      timeoutSeconds: buildTimeoutMinutes * 60 + 300,
      // A mutable tag existing says nothing about its content: the trigger decided, so build.
      force: props.repository.mutableTags ?? false,
      triggers: {
        content_hash: props.hash,
        base_image_uri: o.triggerBaseImageUri ?? o.baseImageUri ?? "",
        buildspec_hash: buildspecHash(o.buildspec),
      },
      dependsOn: [contextObject, o.project, ...o.dependsOn, env.codebuildPolicy],
    });

  const uri = `${repository.url}:${props.tag}`;
  if (props.platforms.length === 1) {
    const platform = props.platforms[0]!;
    const { project, logGroup } = addProject("", { name: props.projectName, platform, buildspec: props.buildspec });
    const trigger = addTrigger("trigger", {
      project,
      tag: props.tag,
      baseImageUri: props.baseImage?.uri(platform),
      buildspec: props.buildspec,
      dependsOn: sameStack(scope, props.baseImage?.built ?? []),
    });
    return { repository, project, logGroup, contextObject, trigger, platformBuilds: [], uri, built: [trigger.resource] };
  }

  const platformBuilds: PlatformBuild[] = props.platforms.map((platform) => {
    const suffix = `-${platformSuffix(platform)}`;
    const name = platformProjectName(props.projectName, platform);
    const { project, logGroup } = addProject(suffix, { name, platform, buildspec: props.buildspec, variables: { [TARGET_PLATFORM_VAR]: platform } });
    // Its StartBuild (build starter) and its log group (CodeBuild role) need permissions too.
    env.addCodeBuildImage(props.repository.name, name, false);
    const trigger = addTrigger(`trigger${suffix}`, {
      project,
      tag: platformTag(props.tag, platform),
      // Each platform is built FROM its base's image of the same platform.
      baseImageUri: props.baseImage?.uri(platform),
      buildspec: props.buildspec,
      dependsOn: sameStack(scope, props.baseImage?.built ?? []),
    });
    return { platform, project, logGroup, trigger };
  });
  const joinBuildspec = renderJoinBuildspec(props.platforms);
  // The join only reads and writes manifests in the registry: the smallest machine will do.
  const { project, logGroup } = addProject("", { name: props.projectName, platform: props.platforms[0]!, buildspec: joinBuildspec, computeType: "BUILD_GENERAL1_SMALL" });
  const trigger = addTrigger("trigger", {
    project,
    tag: props.tag,
    // The join pulls nothing, but must run again whenever a platform's build does.
    triggerBaseImageUri: props.baseImage ? [...new Set(props.platforms.map((p) => props.baseImage!.uri(p)))].join(" ") : undefined,
    buildspec: props.buildspec + joinBuildspec,
    dependsOn: platformBuilds.map((b) => b.trigger.resource),
  });
  return { repository, project, logGroup, contextObject, trigger, platformBuilds, uri, built: [trigger.resource] };
}

/** The CodeBuild project that builds one platform of a multi-platform image: `<projectName>-<arch>`. */
export function platformProjectName(projectName: string, platform: Platform): string {
  return boundedName(`${projectName}-${platformSuffix(platform)}`, 255);
}
