import { Construct } from "constructs";
import { DataResource, type ITerraformDependable } from "cdktf";
import { shellQuote } from "../buildspec.ts";

export interface BuildTriggerProps {
  /** Terraform path of the bundled runner directory (a TerraformAsset). */
  readonly runnerDir: string;
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
  /** The runner stops the build after this many seconds. */
  readonly timeoutSeconds: number;
  /** Build even when the tag exists: for mutable tags such as `stable`. @default false */
  readonly force?: boolean;
  /** Values whose change means the image must be rebuilt. */
  readonly triggers: Readonly<Record<string, string>>;
  /** Resources the build needs first (context object, project, base image build, IAM policy). */
  readonly dependsOn: readonly ITerraformDependable[];
}

/**
 * A `terraform_data` resource replaced whenever the image's triggers change; its local-exec
 * provisioner runs the build runner, which skips when the content-addressed tag already exists.
 */
export class BuildTrigger extends Construct {
  readonly resource: DataResource;

  constructor(scope: Construct, id: string, props: BuildTriggerProps) {
    super(scope, id);
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
    this.resource = new DataResource(this, "build", {
      triggersReplace: { ...props.triggers },
      dependsOn: [...props.dependsOn],
      provisioners: [
        {
          type: "local-exec",
          command: `node ${props.runnerDir}/runner.cjs ${args.map(quoteArg).join(" ")}`,
        },
      ],
    });
  }
}

/** Terraform interpolations are resolved before the shell sees them; quote them like any value. */
function quoteArg(arg: string): string {
  return arg.includes("${") ? `"${arg}"` : shellQuote(arg);
}
