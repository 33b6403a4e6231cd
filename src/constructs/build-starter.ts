import { Construct } from "constructs";
import { AssetType, Lazy, TerraformAsset } from "cdktf";
import { IamRole } from "@cdktf/provider-aws/lib/iam-role/index.js";
import { IamRolePolicy } from "@cdktf/provider-aws/lib/iam-role-policy/index.js";
import { CloudwatchLogGroup } from "@cdktf/provider-aws/lib/cloudwatch-log-group/index.js";
import { LambdaFunction } from "@cdktf/provider-aws/lib/lambda-function/index.js";
import type { ArchiveResult } from "../archive/context-archive.ts";
import { boundedName } from "../naming.ts";
import { assumeRolePolicyFor } from "./iam.ts";
import { BUILD_STARTER_RUNTIME } from "../runner/runtime.ts";

export interface BuildStarterProps {
  readonly functionName: string;
  /** Deterministic zip holding the bundled handler as `index.js`. */
  readonly bundle: ArchiveResult;
  /** ARNs (or ARN patterns) of the stack's CodeBuild projects (read at synth, when every image is registered). */
  readonly projectArns: () => readonly string[];
  /** ARNs (or ARN patterns) of the stack's ECR repositories (read at synth). */
  readonly repositoryArns: () => readonly string[];
  /** ARNs (or ARN patterns) of the stack's CodeBuild log groups (read at synth). */
  readonly buildLogGroupArns: () => readonly string[];
  /** Called with the policy text before it is written, e.g. to check its size. */
  readonly checkPolicy?: (policy: string) => void;
  /** The account whose Lambda service may assume the starter's role (`aws:SourceAccount`). */
  readonly sourceAccount: string;
  /** Log retention in days. @default 14 */
  readonly logRetentionDays?: number;
}

/** Lambda's ceiling: a build still running then is left running and attached to by the next apply. */
const MAX_TIMEOUT_SECONDS = 900;

/**
 * The stack's build starter: a small Node.js Lambda, bundled from the same runner core as the
 * CLI, that Terraform invokes through the AWS provider to start or attach to a build and wait.
 */
export class BuildStarter extends Construct {
  readonly function: LambdaFunction;
  readonly policy: IamRolePolicy;

  constructor(scope: Construct, id: string, props: BuildStarterProps) {
    super(scope, id);
    const logGroup = new CloudwatchLogGroup(this, "logs", {
      name: `/aws/lambda/${props.functionName}`,
      retentionInDays: props.logRetentionDays ?? 14,
    });
    const role = new IamRole(this, "role", {
      name: boundedName(`${props.functionName}-exec`, 64),
      assumeRolePolicy: assumeRolePolicyFor("lambda.amazonaws.com", { sourceAccount: props.sourceAccount }),
    });
    this.policy = new IamRolePolicy(this, "policy", {
      role: role.id,
      name: "start-stack-builds",
      // Read at synth: the stack's images register their projects and repositories after this is created.
      policy: Lazy.stringValue({ produce: () => {
        const policy = JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          {
            Sid: "RunStackBuilds",
            Effect: "Allow",
            Action: ["codebuild:StartBuild", "codebuild:StopBuild", "codebuild:BatchGetBuilds", "codebuild:ListBuildsForProject"],
            Resource: [...props.projectArns()],
          },
          { Sid: "CheckStackImages", Effect: "Allow", Action: "ecr:DescribeImages", Resource: [...props.repositoryArns()] },
          { Sid: "ReadBuildLogs", Effect: "Allow", Action: "logs:GetLogEvents", Resource: props.buildLogGroupArns().map((a) => `${a}:*`) },
          { Sid: "WriteOwnLogs", Effect: "Allow", Action: ["logs:CreateLogStream", "logs:PutLogEvents"], Resource: `${logGroup.arn}:*` },
        ],
        });
        props.checkPolicy?.(policy);
        return policy;
      } }),
    });
    const code = new TerraformAsset(this, "code", { path: props.bundle.file, type: AssetType.FILE });
    this.function = new LambdaFunction(this, "function", {
      functionName: props.functionName,
      description: "Starts or attaches to this stack's image builds in CodeBuild and waits for them",
      role: role.arn,
      runtime: BUILD_STARTER_RUNTIME,
      handler: "index.handler",
      filename: code.path,
      sourceCodeHash: Buffer.from(props.bundle.sha256, "hex").toString("base64"),
      architectures: ["arm64"],
      memorySize: 256,
      timeout: MAX_TIMEOUT_SECONDS,
      loggingConfig: { logFormat: "Text", logGroup: logGroup.name },
      dependsOn: [logGroup, this.policy],
    });
  }
}
