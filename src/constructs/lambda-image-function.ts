import { Construct } from "constructs";
import { Lazy, Token, type ITerraformDependable } from "cdktf";
import { EcrRepositoryPolicy } from "@cdktf/provider-aws/lib/ecr-repository-policy/index.js";
import { IamRole } from "@cdktf/provider-aws/lib/iam-role/index.js";
import { IamRolePolicy } from "@cdktf/provider-aws/lib/iam-role-policy/index.js";
import { CloudwatchLogGroup } from "@cdktf/provider-aws/lib/cloudwatch-log-group/index.js";
import { LambdaFunction } from "@cdktf/provider-aws/lib/lambda-function/index.js";
import type { Platform } from "../manifest/schema.ts";
import { environmentProblems, nameLengthProblem, type Problem } from "../manifest/checks.ts";
import { PropsError } from "../manifest/errors.ts";
import { lambdaLimitProblems } from "../manifest/limits.ts";
import { architectureOf, boundedName, kebabName } from "../naming.ts";
import { assumeRolePolicyFor } from "./iam.ts";
import { ImageBuildEnvironment } from "./image-build-environment.ts";
import type { ImageRepository } from "./image-repository.ts";
import { LambdaImage } from "./lambda-image.ts";

/** The image a function runs: a {@link LambdaImage}, or any image URI you build yourself. */
export interface FunctionImage {
  /** `repository:tag`. */
  readonly imageUri: string;
  readonly platform: Platform;
  /** What the function waits for before it is created or updated. */
  readonly built: readonly ITerraformDependable[];
}

export interface LambdaImageFunctionProps {
  /** The image to run. */
  readonly image: LambdaImage | FunctionImage;
  /** Function name. @default `<namePrefix>-<construct id in kebab-case>` */
  readonly functionName?: string;
  /** Memory in MB (128–10240). @default 1024 */
  readonly memorySize?: number;
  /** Timeout in seconds (1–900). @default 300 */
  readonly timeout?: number;
  /** Size of the function's /tmp in MB (512–10240). @default 512 (Lambda's default; not written to the configuration) */
  readonly ephemeralStorage?: number;
  /** Environment variables. Values may be tokens (`table.name`); nothing is escaped, so write `$${…}` yourself where Terraform must not interpolate. @default none */
  readonly environment?: Readonly<Record<string, string>>;
  /** The execution role. @default a role that may only write to the function's log group */
  readonly role?: IamRole;
  /** Log retention in days. @default 30 */
  readonly logRetentionDays?: number;
}

/** A container-image Lambda function with its own log group and a role that may only write to it. */
export class LambdaImageFunction extends Construct {
  readonly function: LambdaFunction;
  readonly role: IamRole;
  readonly logGroup: CloudwatchLogGroup;
  /** The policy letting Lambda pull the function's image: set for a {@link LambdaImage}, none for an image you bring. */
  readonly repositoryPolicy?: EcrRepositoryPolicy;

  constructor(scope: Construct, id: string, props: LambdaImageFunctionProps) {
    super(scope, id);
    const functionName = props.functionName ?? boundedName(`${ImageBuildEnvironment.of(this).namePrefix}-${kebabName(id)}`, 64);
    const memorySize = props.memorySize ?? 1024;
    const timeout = props.timeout ?? 300;
    const environment = props.environment ?? {};
    checkFunction(this.node.path, { functionName, memorySize, timeout, ephemeralStorage: props.ephemeralStorage, environment });

    this.logGroup = new CloudwatchLogGroup(this, "logs", {
      name: `/aws/lambda/${functionName}`,
      retentionInDays: props.logRetentionDays ?? 30,
    });
    this.role =
      props.role ??
      new IamRole(this, "role", {
        name: boundedName(`${functionName}-exec`, 64),
        assumeRolePolicy: assumeRolePolicyFor("lambda.amazonaws.com", { sourceAccount: ImageBuildEnvironment.of(this).account }),
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
    if (props.image instanceof LambdaImage) this.repositoryPolicy = lambdaPullPolicy(props.image, functionName);
    this.function = new LambdaFunction(this, "function", {
      functionName,
      role: this.role.arn,
      packageType: "Image",
      imageUri: props.image.imageUri,
      architectures: [architectureOf(props.image.platform)],
      memorySize,
      timeout,
      ephemeralStorage: props.ephemeralStorage === undefined ? undefined : { size: props.ephemeralStorage },
      environment: Object.keys(environment).length ? { variables: { ...environment } } : undefined,
      loggingConfig: { logFormat: "Text", logGroup: this.logGroup.name },
      dependsOn: [...props.image.built, this.logGroup, logging, ...(this.repositoryPolicy ? [this.repositoryPolicy] : [])],
    });
  }
}

/**
 * Lambda pulls a function's image with `ecr:BatchGetImage` and `ecr:GetDownloadUrlForLayer`
 * granted to `lambda.amazonaws.com` by the repository's policy; without one, Lambda writes that
 * policy itself when the function is created (which needs `ecr:SetRepositoryPolicy` on whoever
 * applies, and leaves a policy no one manages). A repository has one policy, so every function
 * running an image of the repository is listed in it, by ARN (`aws:SourceArn`: no other
 * function, in this account or another, may pull through it).
 */
const pullPolicies = new WeakMap<ImageRepository, { policy: EcrRepositoryPolicy; functionArns: string[] }>();

function lambdaPullPolicy(image: LambdaImage, functionName: string): EcrRepositoryPolicy {
  const repository = image.repository;
  let entry = pullPolicies.get(repository);
  if (!entry) {
    const functionArns: string[] = [];
    const policy = new EcrRepositoryPolicy(repository, "lambda-pull", {
      repository: repository.repository.name,
      policy: Lazy.stringValue({ produce: () => JSON.stringify(lambdaPullPolicyDocument(functionArns)) }),
    });
    entry = { policy, functionArns };
    pullPolicies.set(repository, entry);
  }
  // The repository's account and region: Lambda pulls images only from its own region.
  const arn = ImageBuildEnvironment.of(repository).functionArn(functionName);
  if (!entry.functionArns.includes(arn)) entry.functionArns.push(arn);
  return entry.policy;
}

/** The repository policy letting Lambda pull images for exactly these functions (any version or alias of them). */
export function lambdaPullPolicyDocument(functionArns: readonly string[]): object {
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "LambdaECRImageRetrievalPolicy",
        Effect: "Allow",
        Principal: { Service: "lambda.amazonaws.com" },
        Action: ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
        Condition: { ArnLike: { "aws:SourceArn": functionArns.flatMap((arn) => [arn, `${arn}:*`]) } },
      },
    ],
  };
}

/** The checks images.yaml's lambdas get, on construct props (literal values only: tokens are Terraform's to check). */
function checkFunction(
  where: string,
  fn: { functionName: string; memorySize: number; timeout: number; ephemeralStorage?: number; environment: Readonly<Record<string, string>> },
): void {
  const problems: Problem[] = [];
  if (!Token.isUnresolved(fn.functionName)) {
    const long = nameLengthProblem("functionName", "function", fn.functionName, "Lambda function name");
    if (long) problems.push(long);
  }
  problems.push(...lambdaLimitProblems(fn), ...environmentProblems(fn.environment));
  if (problems.length) throw new PropsError(where, problems);
}
