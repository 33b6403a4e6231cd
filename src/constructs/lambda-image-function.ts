import { Construct } from "constructs";
import { Annotations, dependable, Lazy, Token, type ITerraformDependable } from "cdktf";
import { EcrRepositoryPolicy } from "@cdktf/provider-aws/lib/ecr-repository-policy/index.js";
import { IamRole } from "@cdktf/provider-aws/lib/iam-role/index.js";
import { IamRolePolicy } from "@cdktf/provider-aws/lib/iam-role-policy/index.js";
import { IamRolePolicyAttachment } from "@cdktf/provider-aws/lib/iam-role-policy-attachment/index.js";
import { CloudwatchLogGroup } from "@cdktf/provider-aws/lib/cloudwatch-log-group/index.js";
import { LambdaFunction, type LambdaFunctionConfig } from "@cdktf/provider-aws/lib/lambda-function/index.js";
import type { Platform } from "../manifest/schema.ts";
import { environmentProblems, environmentWarnings, nameLengthProblem, type Problem } from "../manifest/checks.ts";
import { lambdaLimitProblems } from "../manifest/limits.ts";
import { architectureOf, boundedName, kebabName } from "../naming.ts";
import { sameStack } from "./built-image.ts";
import { assumeRolePolicyFor } from "./iam.ts";
import { ImageBuildEnvironment } from "./image-build-environment.ts";
import type { ImageRepository } from "./image-repository.ts";
import { LambdaImage } from "./lambda-image.ts";
import { ImageProblems } from "./problems.ts";

/** The image a function runs: a {@link LambdaImage}, or any image URI you build yourself. */
export interface FunctionImage {
  /** `repository:tag`. */
  readonly imageUri: string;
  readonly platform: Platform;
  /** What the function waits for before it is created or updated. */
  readonly built: readonly ITerraformDependable[];
}

/**
 * `aws_lambda_function` settings that do not fit a function running a container image of this
 * package (the code and its runtime come from the image, its architecture from the image's
 * platform, its region from the image's repository), or that this construct takes in its own form.
 */
type SetByTheImage =
  | "architectures"
  | "codeSigningConfigArn"
  | "environment"
  | "ephemeralStorage"
  | "filename"
  | "functionName"
  | "handler"
  | "imageUri"
  | "layers"
  | "packageType"
  | "region"
  | "role"
  | "runtime"
  | "s3Bucket"
  | "s3Key"
  | "s3ObjectVersion"
  | "snapStart"
  | "sourceCodeHash"
  | "sourceKmsKeyArn";

/** Every other `aws_lambda_function` setting passes through as it is (vpcConfig, reservedConcurrentExecutions, imageConfig, tracingConfig, deadLetterConfig, description, tags, loggingConfig, kmsKeyArn, ...). */
export interface LambdaImageFunctionProps extends Omit<LambdaFunctionConfig, SetByTheImage> {
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
  /**
   * The execution role: a role construct (the function's log, VPC, tracing and dead-letter
   * permissions are attached to it) or a role ARN (managed elsewhere, with those permissions).
   * @default a role that may only write to the function's log group, plus what its vpcConfig, tracingConfig and deadLetterConfig need
   */
  readonly role?: IamRole | string;
  /** Log retention in days. @default 30 */
  readonly logRetentionDays?: number;
  /** Environment variables whose names sound secret but whose values are not (`TOKEN_TTL_SECONDS`): no warning for them. @default none */
  readonly notSecret?: readonly string[];
}

/** One statement of an IAM policy, as {@link LambdaImageFunction.addToRolePolicy} takes it. */
export interface PolicyStatement {
  /** @default "Allow" */
  readonly Effect?: "Allow" | "Deny";
  readonly Action: string | readonly string[];
  /** ARNs; tokens (`table.arn`) are fine. */
  readonly Resource: string | readonly string[];
  readonly Condition?: Readonly<Record<string, unknown>>;
  readonly Sid?: string;
}

/** A container-image Lambda function with its own log group and a role that may only write to it. */
export class LambdaImageFunction extends Construct {
  readonly function: LambdaFunction;
  /** The execution role, when it is a construct (created here or passed in); undefined for a role given by ARN. */
  readonly role?: IamRole;
  /** The execution role's ARN. */
  readonly roleArn: string;
  readonly logGroup: CloudwatchLogGroup;
  /** The policy letting Lambda pull the function's image: set for a {@link LambdaImage}, none for an image you bring. */
  readonly repositoryPolicy?: EcrRepositoryPolicy;
  private readonly statements: PolicyStatement[] = [];
  private permissions?: IamRolePolicy;

  constructor(scope: Construct, id: string, props: LambdaImageFunctionProps) {
    super(scope, id);
    const {
      image,
      functionName: givenName,
      memorySize = 1024,
      timeout = 300,
      ephemeralStorage,
      environment = {},
      role,
      logRetentionDays,
      notSecret,
      loggingConfig,
      dependsOn,
      ...passThrough
    } = props;
    const env = ImageBuildEnvironment.of(this);
    const functionName = env.awsName("Lambda function", givenName ?? boundedName(`${env.namePrefix}-${kebabName(id)}`, 64), "functionName", this);
    const problems = functionProblems({ functionName, memorySize, timeout, ephemeralStorage, environment }, notSecret);
    // `kind: "image"` says no function runs it: plan and graph would call the function's image something else.
    if (image instanceof LambdaImage && image.valid && image.spec.kind === "image") {
      problems.push({ field: "image", message: `is the LambdaImage ${image.node.path}, made with kind "image" (an image no Lambda runs)`, fix: 'leave out kind (or set kind: "lambda") on that LambdaImage' });
    }
    if (problems.length) ImageProblems.of(this).add(this, problems);
    // A name that merely sounds secret is worth a look, not a refusal: the value decides.
    for (const w of environmentWarnings(environment, { notSecret })) Annotations.of(this).addWarning(`${w.field}: ${w.message}. Fix: ${w.fix}`);

    this.logGroup = new CloudwatchLogGroup(this, "logs", {
      name: env.awsName("CloudWatch log group", `/aws/lambda/${functionName}`, "functionName", this),
      retentionInDays: logRetentionDays ?? 30,
      tags: passThrough.tags,
    });
    this.role =
      typeof role === "string"
        ? undefined
        : (role ??
          new IamRole(this, "role", {
            name: env.awsName("IAM role", boundedName(`${functionName}-exec`, 64), "functionName", this),
            assumeRolePolicy: assumeRolePolicyFor("lambda.amazonaws.com", { sourceAccount: env.account }),
            tags: passThrough.tags,
          }));
    this.roleArn = typeof role === "string" ? role : this.role!.arn;
    const ready: ITerraformDependable[] = [this.logGroup];
    if (this.role) {
      ready.push(
        new IamRolePolicy(this, "logging", {
          role: this.role.id,
          name: "write-own-logs",
          policy: JSON.stringify({
            Version: "2012-10-17",
            Statement: [{ Effect: "Allow", Action: ["logs:CreateLogStream", "logs:PutLogEvents"], Resource: `${this.logGroup.arn}:*` }],
          }),
        }),
      );
      if (passThrough.vpcConfig) {
        // The network interfaces a function in a VPC needs: AWS's managed policy for exactly that
        // (https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html#configuration-vpc-permissions).
        ready.push(
          new IamRolePolicyAttachment(this, "vpc-access", {
            role: this.role.name,
            policyArn: `arn:${env.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole`,
          }),
        );
      }
    }
    if (image instanceof LambdaImage && image.valid) {
      this.repositoryPolicy = lambdaPullPolicy(image, functionName);
      ready.push(this.repositoryPolicy);
    }
    this.function = new LambdaFunction(this, "function", {
      ...passThrough,
      functionName,
      role: this.roleArn,
      packageType: "Image",
      imageUri: image.imageUri,
      architectures: [architectureOf(image.platform)],
      memorySize,
      timeout,
      ephemeralStorage: ephemeralStorage === undefined ? undefined : { size: ephemeralStorage },
      environment: Object.keys(environment).length ? { variables: { ...environment } } : undefined,
      loggingConfig: { logFormat: "Text", ...loggingConfig, logGroup: loggingConfig?.logGroup ?? this.logGroup.name },
      dependsOn: [...sameStack(this, [...image.built, ...ready]), ...(dependsOn ?? [])],
    });
    if (this.role) for (const statement of settingStatements(passThrough)) this.addToRolePolicy(statement);
  }

  /**
   * Adds a statement to the function's own role policy (`fn.addToRolePolicy({ Action: ["dynamodb:GetItem"], Resource: table.arn })`).
   * Only for a role this construct manages or was given as a construct; a role given by ARN is managed where it is defined.
   */
  addToRolePolicy(statement: PolicyStatement): void {
    if (!this.role) {
      throw new Error(`${this.node.path}: addToRolePolicy: the function's role was given by ARN, so its policies are managed where that role is defined. Fix: grant the permission there, or pass the role as a construct`);
    }
    if (!this.permissions) {
      const statements = this.statements;
      this.permissions = new IamRolePolicy(this, "permissions", {
        role: this.role.id,
        name: "function-permissions",
        policy: Lazy.stringValue({ produce: () => JSON.stringify({ Version: "2012-10-17", Statement: statements }) }),
      });
      this.function.dependsOn = [...(this.function.dependsOn ?? []), dependable(this.permissions)];
    }
    this.statements.push({ Effect: "Allow", ...statement, Action: copy(statement.Action), Resource: copy(statement.Resource) });
  }
}

function copy<T>(value: T | readonly T[]): T | T[] {
  return Array.isArray(value) ? [...(value as readonly T[])] : (value as T);
}

/** What the function's own settings need its role to allow (as Lambda's documentation lists them for each). */
function settingStatements(settings: Omit<LambdaImageFunctionProps, "image">): PolicyStatement[] {
  const statements: PolicyStatement[] = [];
  // https://docs.aws.amazon.com/lambda/latest/dg/services-xray.html: "xray:PutTraceSegments" and "xray:PutTelemetryRecords".
  if (settings.tracingConfig?.mode === "Active") statements.push({ Action: ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], Resource: "*" });
  // https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html#invocation-dlq: sqs:SendMessage or sns:Publish on the target.
  const target = settings.deadLetterConfig?.targetArn;
  if (target) {
    const sns = !Token.isUnresolved(target) && target.split(":")[2] === "sns";
    const sqs = !Token.isUnresolved(target) && target.split(":")[2] === "sqs";
    statements.push({ Action: sns ? "sns:Publish" : sqs ? "sqs:SendMessage" : ["sqs:SendMessage", "sns:Publish"], Resource: target });
  }
  return statements;
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
function functionProblems(
  fn: { functionName: string; memorySize: number; timeout: number; ephemeralStorage?: number; environment: Readonly<Record<string, string>> },
  notSecret: readonly string[] | undefined,
): Problem[] {
  const problems: Problem[] = [];
  if (!Token.isUnresolved(fn.functionName)) {
    const long = nameLengthProblem("functionName", "function", fn.functionName, "Lambda function name");
    if (long) problems.push(long);
  }
  problems.push(...lambdaLimitProblems(fn), ...environmentProblems(fn.environment, { notSecret }));
  return problems;
}
