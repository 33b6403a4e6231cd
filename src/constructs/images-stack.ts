import { CloudBackend, LocalBackend, NamedCloudWorkspace, S3Backend, TerraformElement, TerraformOutput, TerraformStack } from "cdktf";
import type { Construct, Node } from "constructs";
// cdktf's own logical-id scheme (allocateLogicalId is the documented place to change it).
import { makeUniqueId } from "cdktf/lib/private/unique.js";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider/index.js";
import { codebuildProjectName, imageRepositoryName, lambdaFunctionName, type Manifest } from "../manifest/load.ts";
import type { BackendSpec } from "../manifest/schema.ts";
import type { ImageSpec } from "../manifest/spec.ts";
import { boundedName } from "../naming.ts";
import { manifestGitInputs } from "../analyze.ts";
import { BaseImageSet } from "./base-image-set.ts";
import { ImageBuildEnvironment } from "./image-build-environment.ts";
import { LambdaImage } from "./lambda-image.ts";
import { LambdaImageFunction } from "./lambda-image-function.ts";
import { terraformLiteral } from "./terraform-literal.ts";

export interface ImagesStackProps {
  /** The validated manifest. */
  readonly manifest: Manifest;
  /** The manifest's stack name (dev, prod, ...). */
  readonly stackName: string;
}

/**
 * One manifest stack, made of the same constructs a user composes in their own stacks: the
 * providers, the stack's image build environment, the base images, per manifest Lambda a
 * LambdaImage and a LambdaImageFunction, per entry of `images` a LambdaImage alone; outputs of
 * every image's URI and hash.
 */
export class ImagesStack extends TerraformStack {
  /**
   * The shared pieces live in the stack's ImageBuildEnvironment; their Terraform addresses stay
   * the ones this app gave them before that construct existed (`aws_s3_bucket.contexts_bucket_…`,
   * `aws_iam_role.codebuild-role`), so deployed stacks keep their state.
   */
  protected allocateLogicalId(element: TerraformElement | Node): string {
    const node = TerraformElement.isTerraformElement(element) ? element.node : (element as Node);
    const components = node.scopes.slice(node.scopes.indexOf(this) + 1).map((c) => c.node.id);
    if (components[0] !== ImageBuildEnvironment.DEFAULT_ID || components.length < 2) return super.allocateLogicalId(element);
    return makeUniqueId(components.slice(1));
  }

  constructor(scope: Construct, id: string, props: ImagesStackProps) {
    super(scope, id);
    const { manifest, stackName } = props;
    const stackSpec = manifest.stacks[stackName]!;
    const { region } = stackSpec;
    configureBackend(this, stackSpec.backend);
    // terraform_data needs Terraform 1.4; Terraform itself enforces this.
    this.addOverride("terraform.required_version", ">= 1.4");

    new AwsProvider(this, "aws", {
      region,
      defaultTags: [{ tags: { Project: manifest.project, Stack: stackName, ManagedBy: "cdktf" } }],
    });
    const environment = new ImageBuildEnvironment(this, ImageBuildEnvironment.DEFAULT_ID, {
      root: manifest.root,
      namePrefix: `${manifest.project}-${stackName}`,
      // The manifest's names, `<project>-<name>-<stack>`: the IAM policies name the stack's
      // repositories and projects by this function's pattern, `<project>-*-<stack>`.
      resourceName: (part) => codebuildProjectName(manifest.project, { kind: "lambda", name: part }, stackName),
      region,
      buildTrigger: stackSpec.buildTrigger,
      maxImages: manifest.ecr.maxImages,
      maxAgeDays: manifest.ecr.maxAgeDays,
      staticBaseImageTags: stackSpec.useStaticBaseImage,
      contextBucketPrefix: `${boundedName(`${manifest.project}-contexts-${stackName}`, 36)}-`,
      codebuildRoleName: boundedName(`${manifest.project}-${stackName}-image-builds`, 64),
      buildStarterName: boundedName(`${manifest.project}-build-starter-${stackName}`, 64),
    });

    const tag = stackSpec.useStaticBaseImage ? "stable" : manifest.tags === "git" ? { extraInputs: manifestGitInputs(manifest) } : "content";
    const bases = new BaseImageSet(this, "base", {
      images: Object.fromEntries(
        manifest.baseImages.map((spec) => [
          spec.name,
          {
            dockerfile: spec.dockerfile,
            context: spec.context || undefined,
            packages: spec.packages,
            platforms: spec.platforms,
            builder: spec.builder,
            baseImage: spec.baseImage,
            include: spec.include,
            buildArgs: spec.buildArgs,
            tag,
            repositoryName: imageRepositoryName(manifest.project, spec, stackName, manifest.ecr),
            projectName: codebuildProjectName(manifest.project, spec, stackName),
            computeType: spec.computeType,
            environment,
            // The stack names its outputs itself, as it did before images had their own.
            outputs: false,
          },
        ]),
      ),
    });

    // A Lambda's image, or (kind "image") an image no Lambda runs: the same build either way.
    const imageOf = (spec: ImageSpec, kind: "lambda" | "image") =>
      new LambdaImage(this, `${kind}-${spec.name}`, {
        ...(kind === "image" ? { kind } : {}),
        name: spec.name,
        dockerfile: spec.dockerfile,
        context: spec.context || undefined,
        baseImage: spec.baseImage ? bases.get(spec.baseImage) : undefined,
        platform: spec.platforms[0],
        buildArgs: spec.buildArgs,
        include: spec.include,
        repositoryName: imageRepositoryName(manifest.project, spec, stackName, manifest.ecr),
        projectName: codebuildProjectName(manifest.project, spec, stackName),
        computeType: spec.computeType,
        environment,
        outputs: false,
      });
    for (const spec of manifest.lambdas) {
      const image = imageOf(spec, "lambda");
      new LambdaImageFunction(this, `function-${spec.name}`, {
        image,
        functionName: lambdaFunctionName(manifest.project, spec.name, stackName),
        memorySize: spec.lambda!.memorySize,
        timeout: spec.lambda!.timeout,
        // Lambda's own default is left unwritten, as before the setting existed.
        ephemeralStorage: spec.lambda!.ephemeralStorage === 512 ? undefined : spec.lambda!.ephemeralStorage,
        // Literal strings from YAML: Terraform must take `${…}` in them as text.
        environment: Object.fromEntries(Object.entries(spec.lambda!.environment).map(([k, v]) => [k, terraformLiteral(v)])),
      });
      new TerraformOutput(this, `lambda-${spec.name}-uri`, { value: image.imageUri, description: `Image of Lambda ${spec.name}` });
      new TerraformOutput(this, `lambda-${spec.name}-hash`, { value: image.hash, description: `Content hash of Lambda image ${spec.name}` });
    }
    for (const spec of manifest.images) {
      const image = imageOf(spec, "image");
      new TerraformOutput(this, `image-${spec.name}-uri`, { value: image.imageUri, description: `Image ${spec.name}` });
      new TerraformOutput(this, `image-${spec.name}-hash`, { value: image.hash, description: `Content hash of image ${spec.name}` });
    }
    for (const base of bases.all) {
      new TerraformOutput(this, `base-${base.name}-uri`, {
        value: base.platforms.map((p) => base.uri(p)).join(","),
        description: `Image of base ${base.name} (one per platform)`,
      });
      new TerraformOutput(this, `base-${base.name}-hash`, { value: base.hash, description: `Content hash of base image ${base.name}` });
    }
  }
}

/**
 * Where the default local state lives, relative to the stack directory (`<outdir>/stacks/<stack>`,
 * Terraform's working directory, which a local backend's `path` is relative to): beside the
 * output directory, so the project root for the default `cdktf.out`. That is the file cdktf's
 * own default (an absolute `<cwd>/terraform.<stack>.tfstate`) names, without writing the
 * checkout's path into the stack, and outside the output directory, which synth may delete.
 */
export function localStatePath(stackName: string): string {
  return `../../../terraform.${stackName}.tfstate`;
}

/** Local state unless the manifest names Terraform Cloud / Enterprise or an S3 bucket. */
function configureBackend(stack: TerraformStack, backend: BackendSpec | undefined): void {
  if (!backend) {
    new LocalBackend(stack, { path: localStatePath(stack.node.id) });
    return;
  }
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

