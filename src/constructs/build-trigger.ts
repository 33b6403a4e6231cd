import { Construct } from "constructs";
import { TerraformResource, type ITerraformDependable, type TerraformMetaArguments } from "cdktf";
import { LambdaInvocation } from "@cdktf/provider-aws/lib/lambda-invocation/index.js";
import { shellQuote } from "../buildspec.ts";

/** How a stack starts its builds. */
export type BuildLauncher =
  /** `terraform_data` + local-exec running the bundled runner with `node`. */
  | { readonly kind: "local-exec"; readonly runnerDir: string }
  /** `aws_lambda_invocation` of the stack's build starter Lambda: needs nothing but Terraform. */
  | { readonly kind: "lambda"; readonly functionName: string; readonly ready: readonly ITerraformDependable[] };

export interface BuildTriggerProps {
  readonly launcher: BuildLauncher;
  /** CodeBuild project to start. */
  readonly projectName: string;
  /** `bucket/key` of the context archive. */
  readonly sourceLocation: string;
  /** ECR repository URL (without tag). */
  readonly repositoryUri: string;
  readonly imageTag: string;
  /** `repository:tag` of the base image, passed as BASE_IMAGE_URI. @default none */
  readonly baseImageUri?: string;
  readonly region: string;
  /** The local-exec runner stops the build after this many seconds. */
  readonly timeoutSeconds: number;
  /** Build even when the tag exists: for mutable tags such as `stable`. @default false */
  readonly force?: boolean;
  /** Values whose change means the image must be rebuilt. */
  readonly triggers: Readonly<Record<string, string>>;
  /** Resources the build needs first (context object, project, base image build, IAM policy). */
  readonly dependsOn: readonly ITerraformDependable[];
}

/**
 * The resource that runs an image's build whenever its triggers change. Either way the build
 * is skipped when the content-addressed tag already exists, and both modes carry the same
 * triggers, so what rebuilds does not depend on the mode.
 */
export class BuildTrigger extends Construct {
  readonly resource: TerraformResource;

  constructor(scope: Construct, id: string, props: BuildTriggerProps) {
    super(scope, id);
    const { launcher } = props;
    if (launcher.kind === "lambda") {
      this.resource = new LambdaInvocation(this, "build", {
        functionName: launcher.functionName,
        input: JSON.stringify({
          projectName: props.projectName,
          sourceLocation: props.sourceLocation,
          repositoryUri: props.repositoryUri,
          imageTag: props.imageTag,
          ...(props.baseImageUri ? { baseImageUri: props.baseImageUri } : {}),
          ...(props.force ? { force: true } : {}),
        }),
        triggers: { ...props.triggers },
        dependsOn: [...props.dependsOn, ...launcher.ready],
      });
      return;
    }
    const args = [
      "build",
      "--project", props.projectName,
      "--source-location", props.sourceLocation,
      "--repository-uri", props.repositoryUri,
      "--image-tag", props.imageTag,
      ...(props.baseImageUri ? ["--base-image-uri", props.baseImageUri] : []),
      "--region", props.region,
      "--timeout", String(props.timeoutSeconds),
      ...(props.force ? ["--force"] : []),
    ];
    this.resource = new TerraformData(this, "build", {
      triggersReplace: { ...props.triggers },
      dependsOn: [...props.dependsOn],
      provisioners: [
        {
          type: "local-exec",
          command: `node ${quoteArg(`${launcher.runnerDir}/runner.cjs`)} ${args.map(quoteArg).join(" ")}`,
        },
      ],
    });
  }
}

/** Terraform interpolations are resolved before the shell sees them; quote them like any value. */
function quoteArg(arg: string): string {
  return arg.includes("${") ? `"${arg}"` : shellQuote(arg);
}

/**
 * Terraform's built-in `terraform_data` resource. cdktf's own DataResource checks the local
 * terraform binary's version by spawning it on every synth (a third of a synth's time, and
 * meaningless where Terraform Cloud runs the plan); the stack declares
 * `required_version >= 1.4` instead, which Terraform itself enforces.
 */
class TerraformData extends TerraformResource {
  private readonly triggersReplace: Record<string, string>;

  constructor(scope: Construct, id: string, config: TerraformMetaArguments & { readonly triggersReplace: Record<string, string> }) {
    super(scope, id, { terraformResourceType: "terraform_data", ...config });
    this.triggersReplace = config.triggersReplace;
  }

  protected synthesizeAttributes(): Record<string, unknown> {
    return { triggers_replace: this.triggersReplace };
  }
}
