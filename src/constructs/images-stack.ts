import { AssetType, CloudBackend, NamedCloudWorkspace, S3Backend, TerraformAsset, TerraformOutput, TerraformStack } from "cdktf";
import type { Construct } from "constructs";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider/index.js";
import { DataAwsCallerIdentity } from "@cdktf/provider-aws/lib/data-aws-caller-identity/index.js";
import { DataAwsPartition } from "@cdktf/provider-aws/lib/data-aws-partition/index.js";
import { IamRole } from "@cdktf/provider-aws/lib/iam-role/index.js";
import { IamRolePolicy } from "@cdktf/provider-aws/lib/iam-role-policy/index.js";
import { DockerProvider } from "@cdktf/provider-docker/lib/provider/index.js";
import type { AnalyzedImage, ImageAnalysis } from "../analyze.ts";
import { imageKey, type BuildAssets } from "../assets.ts";
import { codebuildProjectName, imageRepositoryName, lambdaFunctionName } from "../manifest/load.ts";
import { boundedName } from "../naming.ts";
import { pullsFromPublicEcr } from "../selection/dockerfile.ts";
import { BaseImages } from "./base-images.ts";
import { CodeBuildDockerImage } from "./codebuild-docker-image.ts";
import { ContextBucket, CONTEXT_PREFIX } from "./context-bucket.ts";
import { LambdaImageFunction } from "./lambda-image-function.ts";
import { BuildStarter } from "./build-starter.ts";
import type { BuildLauncher } from "./build-trigger.ts";
import type { BackendSpec } from "../manifest/schema.ts";
import { assumeRolePolicyFor } from "./iam.ts";

export interface ImagesStackProps {
  /** The analyzed manifest: images, hashes and tags. */
  readonly analysis: ImageAnalysis;
  /** The manifest's stack name (dev, prod, ...). */
  readonly stackName: string;
  /** Archives, staged contexts and the runner bundle prepared at synth. */
  readonly assets: BuildAssets;
}

/**
 * One manifest stack: providers, the context bucket, the CodeBuild role, base images, one
 * CodeBuild-built image and Lambda function per manifest Lambda, and outputs of every image.
 */
export class ImagesStack extends TerraformStack {
  constructor(scope: Construct, id: string, props: ImagesStackProps) {
    super(scope, id);
    const { analysis, stackName, assets } = props;
    const manifest = analysis.manifest;
    const stackSpec = manifest.stacks[stackName]!;
    const { region } = stackSpec;
    configureBackend(this, stackSpec.backend);
    // terraform_data needs Terraform 1.4; Terraform itself enforces this.
    this.addOverride("terraform.required_version", ">= 1.4");

    new AwsProvider(this, "aws", {
      region,
      defaultTags: [{ tags: { Project: manifest.project, Stack: stackName, ManagedBy: "cdktf" } }],
    });
    const account = new DataAwsCallerIdentity(this, "account");
    const partition = new DataAwsPartition(this, "partition");
    if (manifest.baseImages.some((b) => b.builder === "docker")) {
      // Credentials come from the user's Docker config (the ecr-login helper), never from state.
      new DockerProvider(this, "docker", {
        registryAuth: [
          {
            address: `${account.accountId}.dkr.ecr.${region}.amazonaws.com`,
            configFile: "${pathexpand(\"~/.docker/config.json\")}",
          },
        ],
      });
    }

    const bucket = new ContextBucket(this, "contexts", {
      namePrefix: `${boundedName(`${manifest.project}-contexts-${stackName}`, 36)}-`,
      expireAfterDays: manifest.ecr.maxAgeDays,
    });
    const role = new IamRole(this, "codebuild-role", {
      name: boundedName(`${manifest.project}-${stackName}-image-builds`, 64),
      assumeRolePolicy: assumeRolePolicyFor("codebuild.amazonaws.com"),
    });

    // Names are known at synth, so the policy is written before the resources it governs and
    // every build can wait for it.
    const arns = new ArnBuilder(partition.partition, region, account.accountId);
    const codebuilt = analysis.images.filter((i) => i.spec.kind === "lambda" || i.spec.builder === "codebuild");
    const repositoryName = (i: AnalyzedImage) => imageRepositoryName(manifest.project, i.spec, stackName);
    const projectName = (i: AnalyzedImage) => codebuildProjectName(manifest.project, i.spec, stackName);
    const policy = new IamRolePolicy(this, "codebuild-policy", {
      role: role.id,
      name: "build-stack-images",
      policy: JSON.stringify(
        codebuildPolicy({
          pushRepositories: codebuilt.map((i) => arns.repository(repositoryName(i))),
          pullRepositories: analysis.images.filter((i) => i.spec.kind === "base").map((i) => arns.repository(repositoryName(i))),
          bucketArn: bucket.arn,
          logGroupArns: codebuilt.map((i) => arns.logGroup(`/aws/codebuild/${projectName(i)}`)),
          publicEcr: codebuilt.some((i) => pullsFromPublicEcr(i.selection.dockerfileText, i.spec.baseImage !== undefined)),
        }),
      ),
    });

    const launcher: BuildLauncher =
      stackSpec.buildTrigger === "lambda"
        ? this.buildStarter(manifest.project, stackName, assets, codebuilt.map(projectName), codebuilt.map(repositoryName), arns)
        : { kind: "local-exec", runnerDir: new TerraformAsset(this, "runner", { path: assets.runnerDir, type: AssetType.DIRECTORY }).path };

    const bases = new BaseImages(this, "base", {
      analysis,
      stackName,
      assets,
      bucket,
      codebuildRoleArn: role.arn,
      launcher,
      region,
      dependsOn: [policy],
    });

    for (const image of analysis.images.filter((i) => i.spec.kind === "lambda")) {
      const spec = image.spec;
      const platform = spec.platforms[0]!;
      const built = new CodeBuildDockerImage(this, `lambda-${spec.name}`, {
        imageName: spec.name,
        repository: { name: repositoryName(image), maxImages: manifest.ecr.maxImages, maxAgeDays: manifest.ecr.maxAgeDays },
        projectName: projectName(image),
        hash: image.hash,
        tag: analysis.tagFor(image, stackName),
        platforms: spec.platforms,
        buildspec: image.buildspec!,
        archiveFile: assets.archives.get(imageKey(image))!.file,
        bucket,
        roleArn: role.arn,
        baseImage: spec.baseImage ? bases.get(spec.baseImage) : undefined,
        launcher,
        region,
        dependsOn: [policy],
      });
      new LambdaImageFunction(this, `function-${spec.name}`, {
        functionName: lambdaFunctionName(manifest.project, spec.name, stackName),
        imageUri: built.uri(platform),
        platform,
        memorySize: spec.lambda!.memorySize,
        timeout: spec.lambda!.timeout,
        environment: spec.lambda!.environment,
        built: built.built,
      });
      new TerraformOutput(this, `lambda-${spec.name}-uri`, { value: built.uri(platform), description: `Image of Lambda ${spec.name}` });
      new TerraformOutput(this, `lambda-${spec.name}-hash`, { value: image.hash, description: `Content hash of Lambda image ${spec.name}` });
    }
    for (const image of analysis.images.filter((i) => i.spec.kind === "base")) {
      const built = bases.get(image.spec.name);
      new TerraformOutput(this, `base-${image.spec.name}-uri`, {
        value: image.spec.platforms.map((p) => built.uri(p)).join(","),
        description: `Image of base ${image.spec.name} (one per platform)`,
      });
      new TerraformOutput(this, `base-${image.spec.name}-hash`, { value: image.hash, description: `Content hash of base image ${image.spec.name}` });
    }
  }

  private buildStarter(
    project: string,
    stackName: string,
    assets: BuildAssets,
    projects: readonly string[],
    repositories: readonly string[],
    arns: ArnBuilder,
  ): BuildLauncher {
    const starter = new BuildStarter(this, "build-starter", {
      functionName: boundedName(`${project}-build-starter-${stackName}`, 64),
      bundle: assets.starterZip,
      projectArns: projects.map((p) => arns.codebuildProject(p)),
      repositoryArns: repositories.map((r) => arns.repository(r)),
      buildLogGroupArns: projects.map((p) => arns.logGroup(`/aws/codebuild/${p}`)),
    });
    return { kind: "lambda", functionName: starter.function.functionName, ready: [starter.function, starter.policy] };
  }
}

/** Local state unless the manifest names Terraform Cloud / Enterprise or an S3 bucket. */
function configureBackend(stack: TerraformStack, backend: BackendSpec | undefined): void {
  if (!backend) return;
  if ("cloud" in backend) {
    new CloudBackend(stack, {
      organization: backend.cloud.organization,
      hostname: backend.cloud.hostname,
      workspaces: new NamedCloudWorkspace(backend.cloud.workspace),
    });
  } else {
    new S3Backend(stack, {
      bucket: backend.s3.bucket,
      key: backend.s3.key,
      region: backend.s3.region,
      dynamodbTable: backend.s3.dynamodbTable,
      encrypt: true,
    });
  }
}

/** ARNs of resources by name, so a policy can name them before they exist. */
class ArnBuilder {
  constructor(
    private readonly partition: string,
    private readonly region: string,
    private readonly account: string,
  ) {}
  repository(name: string): string {
    return `arn:${this.partition}:ecr:${this.region}:${this.account}:repository/${name}`;
  }
  codebuildProject(name: string): string {
    return `arn:${this.partition}:codebuild:${this.region}:${this.account}:project/${name}`;
  }
  logGroup(name: string): string {
    return `arn:${this.partition}:logs:${this.region}:${this.account}:log-group:${name}`;
  }
}

export interface CodebuildPolicyInput {
  readonly pushRepositories: readonly string[];
  readonly pullRepositories: readonly string[];
  readonly bucketArn: string;
  readonly logGroupArns: readonly string[];
  readonly publicEcr: boolean;
}

/**
 * The CodeBuild role may touch only this stack's repositories, context prefix and log groups.
 * Registry tokens cannot be scoped to a resource, so those actions alone use "*".
 */
export function codebuildPolicy(input: CodebuildPolicyInput): object {
  const pull = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"];
  const push = ["ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:DescribeImages"];
  const statements: object[] = [
    { Sid: "RegistryLogin", Effect: "Allow", Action: "ecr:GetAuthorizationToken", Resource: "*" },
    { Sid: "PushOwnImages", Effect: "Allow", Action: [...pull, ...push], Resource: [...input.pushRepositories] },
    { Sid: "ReadContexts", Effect: "Allow", Action: ["s3:GetObject", "s3:GetObjectVersion"], Resource: `${input.bucketArn}/${CONTEXT_PREFIX}*` },
    { Sid: "LocateContextBucket", Effect: "Allow", Action: ["s3:GetBucketAcl", "s3:GetBucketLocation"], Resource: input.bucketArn },
    { Sid: "WriteBuildLogs", Effect: "Allow", Action: ["logs:CreateLogStream", "logs:PutLogEvents"], Resource: input.logGroupArns.map((a) => `${a}:*`) },
  ];
  if (input.pullRepositories.length) {
    statements.splice(2, 0, { Sid: "PullBaseImages", Effect: "Allow", Action: pull, Resource: [...input.pullRepositories] });
  }
  if (input.publicEcr) {
    statements.push({ Sid: "PublicRegistryLogin", Effect: "Allow", Action: ["ecr-public:GetAuthorizationToken", "sts:GetServiceBearerToken"], Resource: "*" });
  }
  return { Version: "2012-10-17", Statement: statements };
}
