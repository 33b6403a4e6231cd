import { Construct } from "constructs";
import type { ITerraformDependable } from "cdktf";
import { IamRole } from "@cdktf/provider-aws/lib/iam-role/index.js";
import { IamRolePolicy } from "@cdktf/provider-aws/lib/iam-role-policy/index.js";
import { CloudwatchLogGroup } from "@cdktf/provider-aws/lib/cloudwatch-log-group/index.js";
import { LambdaFunction } from "@cdktf/provider-aws/lib/lambda-function/index.js";
import type { Platform } from "../manifest/schema.ts";
import { architectureOf, boundedName } from "../naming.ts";
import { assumeRolePolicyFor } from "./iam.ts";
import { terraformLiteral } from "./terraform-literal.ts";

export interface LambdaImageFunctionProps {
  readonly functionName: string;
  /** `repository:sha-…`: a new tag per content change, so Lambda re-resolves the digest. */
  readonly imageUri: string;
  readonly platform: Platform;
  /** Memory in MB. */
  readonly memorySize: number;
  /** Timeout in seconds. */
  readonly timeout: number;
  readonly environment: Readonly<Record<string, string>>;
  /** Log retention in days. @default 30 */
  readonly logRetentionDays?: number;
  /** The image build the function waits for. */
  readonly built: readonly ITerraformDependable[];
}

/** A container-image Lambda function with its own log group and a role that may only write to it. */
export class LambdaImageFunction extends Construct {
  readonly function: LambdaFunction;
  readonly role: IamRole;
  readonly logGroup: CloudwatchLogGroup;

  constructor(scope: Construct, id: string, props: LambdaImageFunctionProps) {
    super(scope, id);
    this.logGroup = new CloudwatchLogGroup(this, "logs", {
      name: `/aws/lambda/${props.functionName}`,
      retentionInDays: props.logRetentionDays ?? 30,
    });
    this.role = new IamRole(this, "role", {
      name: boundedName(`${props.functionName}-exec`, 64),
      assumeRolePolicy: assumeRolePolicyFor("lambda.amazonaws.com"),
    });
    const logging = new IamRolePolicy(this, "logging", {
      role: this.role.id,
      name: "write-own-logs",
      policy: JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          { Effect: "Allow", Action: ["logs:CreateLogStream", "logs:PutLogEvents"], Resource: `${this.logGroup.arn}:*` },
        ],
      }),
    });
    const variables = Object.fromEntries(Object.entries(props.environment).map(([k, v]) => [k, terraformLiteral(v)]));
    const environment = Object.keys(variables).length ? { variables } : undefined;
    this.function = new LambdaFunction(this, "function", {
      functionName: props.functionName,
      role: this.role.arn,
      packageType: "Image",
      imageUri: props.imageUri,
      architectures: [architectureOf(props.platform)],
      memorySize: props.memorySize,
      timeout: props.timeout,
      environment,
      loggingConfig: { logFormat: "Text", logGroup: this.logGroup.name },
      dependsOn: [...props.built, this.logGroup, logging],
    });
  }
}
