import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createImagesApp } from "../app.ts";
import { CONTEXT_PREFIX } from "../constructs/context-bucket.ts";
import { loadManifest } from "../manifest/load.ts";
import { CommandError } from "../manifest/errors.ts";
import { RUNNER_AWS_CALLS } from "../runner/core.ts";

// `lambda-images iam`: the least-privilege IAM policies for whoever runs `terraform apply` on a
// synthesized stack, and for the local-exec build runner. Both are derived from the stack as
// synthesized (its resource types, names and build commands) and from the runner's own list of
// the calls it makes, so they follow the code that wires the resources.

/** A synthesized `cdk.tf.json`, read loosely. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type TfJson = Record<string, any>;

export interface IamStatement {
  readonly Sid: string;
  readonly Effect: "Allow";
  readonly Action: string[];
  readonly Resource: string | string[];
}
export interface IamPolicy {
  readonly Version: "2012-10-17";
  readonly Statement: IamStatement[];
}

/** The policies of one stack. */
export interface StackPolicies {
  readonly buildTrigger: "local-exec" | "lambda";
  /** For the identity running `terraform apply` (or `cdktf deploy`). */
  readonly terraform: IamPolicy;
  /** For the build runner's calls; in local-exec stacks it runs with the same credentials as Terraform. Absent in lambda stacks: the build starter's role, which the stack creates, makes them. */
  readonly runner?: IamPolicy;
}

/** What an action applies to: sets of ARNs collected from the stack, or "*" where AWS does not scope the action. */
type Scope =
  | "repositories"
  | "function-repositories"
  | "docker-pushed-repositories"
  | "docker-pulled-repositories"
  | "bucket"
  | "bucket-objects"
  | "context-objects"
  | "roles"
  | "log-groups"
  | "all-log-groups"
  | "projects"
  | "functions"
  | "invoked-functions"
  | "state-bucket"
  | "state-object"
  | "state-lock-table"
  | "runner-projects"
  | "runner-repositories"
  | "runner-log-streams"
  | "*";

interface Grant {
  readonly actions: readonly string[];
  readonly on: Scope;
}

/**
 * What the AWS provider (and, for Docker-built bases, the Docker credential helper) calls to
 * create, read, update, tag and delete each resource or data source type the program writes
 * (read from the provider's implementation and AWS's Service Authorization Reference). A type
 * missing here fails the command, naming the type, so a new resource cannot be forgotten.
 */
export const TERRAFORM_GRANTS: Readonly<Record<string, readonly Grant[]>> = {
  aws_ecr_repository: [
    {
      actions: [
        "ecr:CreateRepository",
        "ecr:DescribeRepositories",
        "ecr:DeleteRepository",
        "ecr:PutImageScanningConfiguration",
        "ecr:PutImageTagMutability",
        "ecr:ListTagsForResource",
        "ecr:TagResource",
        "ecr:UntagResource",
      ],
      on: "repositories",
    },
  ],
  aws_ecr_lifecycle_policy: [{ actions: ["ecr:PutLifecyclePolicy", "ecr:GetLifecyclePolicy", "ecr:DeleteLifecyclePolicy"], on: "repositories" }],
  aws_ecr_repository_policy: [{ actions: ["ecr:SetRepositoryPolicy", "ecr:GetRepositoryPolicy", "ecr:DeleteRepositoryPolicy"], on: "repositories" }],
  aws_s3_bucket: [
    {
      actions: [
        "s3:CreateBucket",
        "s3:DeleteBucket",
        "s3:ListBucket",
        "s3:ListBucketVersions",
        "s3:GetBucketAcl",
        "s3:GetBucketCORS",
        "s3:GetBucketWebsite",
        "s3:GetBucketVersioning",
        "s3:GetAccelerateConfiguration",
        "s3:GetBucketRequestPayment",
        "s3:GetBucketLogging",
        "s3:GetLifecycleConfiguration",
        "s3:GetReplicationConfiguration",
        "s3:GetEncryptionConfiguration",
        "s3:GetBucketObjectLockConfiguration",
        "s3:GetBucketPolicy",
        "s3:GetBucketTagging",
        "s3:PutBucketTagging",
      ],
      on: "bucket",
    },
    // force_destroy empties the bucket before deleting it.
    { actions: ["s3:DeleteObject", "s3:DeleteObjectVersion"], on: "bucket-objects" },
  ],
  aws_s3_bucket_lifecycle_configuration: [{ actions: ["s3:PutLifecycleConfiguration", "s3:GetLifecycleConfiguration"], on: "bucket" }],
  aws_s3_bucket_ownership_controls: [{ actions: ["s3:PutBucketOwnershipControls", "s3:GetBucketOwnershipControls"], on: "bucket" }],
  aws_s3_bucket_policy: [{ actions: ["s3:PutBucketPolicy", "s3:GetBucketPolicy", "s3:DeleteBucketPolicy"], on: "bucket" }],
  aws_s3_bucket_public_access_block: [{ actions: ["s3:PutBucketPublicAccessBlock", "s3:GetBucketPublicAccessBlock"], on: "bucket" }],
  aws_s3_bucket_server_side_encryption_configuration: [{ actions: ["s3:PutEncryptionConfiguration", "s3:GetEncryptionConfiguration"], on: "bucket" }],
  aws_s3_object: [{ actions: ["s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:GetObjectTagging", "s3:PutObjectTagging"], on: "context-objects" }],
  aws_iam_role: [
    {
      actions: [
        "iam:CreateRole",
        "iam:GetRole",
        "iam:DeleteRole",
        "iam:UpdateAssumeRolePolicy",
        "iam:TagRole",
        "iam:UntagRole",
        "iam:ListRolePolicies",
        "iam:ListAttachedRolePolicies",
        "iam:ListInstanceProfilesForRole",
      ],
      on: "roles",
    },
  ],
  aws_iam_role_policy: [{ actions: ["iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy"], on: "roles" }],
  aws_cloudwatch_log_group: [
    { actions: ["logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:PutRetentionPolicy", "logs:ListTagsForResource", "logs:TagResource", "logs:UntagResource"], on: "log-groups" },
    { actions: ["logs:DescribeLogGroups"], on: "all-log-groups" },
  ],
  aws_codebuild_project: [
    { actions: ["codebuild:CreateProject", "codebuild:UpdateProject", "codebuild:DeleteProject", "codebuild:BatchGetProjects"], on: "projects" },
    // The project runs as the stack's CodeBuild role.
    { actions: ["iam:PassRole"], on: "roles" },
  ],
  aws_lambda_function: [
    {
      actions: [
        "lambda:CreateFunction",
        "lambda:GetFunction",
        "lambda:GetFunctionCodeSigningConfig",
        "lambda:GetRuntimeManagementConfig",
        "lambda:ListVersionsByFunction",
        "lambda:UpdateFunctionCode",
        "lambda:UpdateFunctionConfiguration",
        "lambda:DeleteFunction",
        "lambda:ListTags",
        "lambda:TagResource",
        "lambda:UntagResource",
      ],
      on: "functions",
    },
    { actions: ["iam:PassRole"], on: "roles" },
    // Whoever creates or updates an image function must be able to read its image
    // (https://repost.aws/knowledge-center/lambda-ecr-image).
    { actions: ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], on: "function-repositories" },
  ],
  aws_lambda_invocation: [{ actions: ["lambda:InvokeFunction"], on: "invoked-functions" }],
  // Built by the local Docker daemon and pushed with the ecr-login credential helper, i.e. with
  // the credentials of whoever runs Terraform.
  docker_image: [{ actions: ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"], on: "docker-pulled-repositories" }],
  docker_registry_image: [
    { actions: ["ecr:GetAuthorizationToken"], on: "*" },
    {
      actions: [
        "ecr:BatchCheckLayerAvailability",
        "ecr:InitiateLayerUpload",
        "ecr:UploadLayerPart",
        "ecr:CompleteLayerUpload",
        "ecr:PutImage",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
      ],
      on: "docker-pushed-repositories",
    },
  ],
  terraform_data: [],
  // GetCallerIdentity needs no permission; partition and region are answered locally.
  "data.aws_caller_identity": [],
  "data.aws_partition": [],
  "data.aws_region": [],
};

const BACKEND_GRANTS: Readonly<Record<string, readonly Grant[]>> = {
  local: [],
  remote: [],
  cloud: [],
  // https://developer.hashicorp.com/terraform/language/backend/s3#permissions-required
  s3: [
    { actions: ["s3:ListBucket"], on: "state-bucket" },
    { actions: ["s3:GetObject", "s3:PutObject"], on: "state-object" },
    { actions: ["dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"], on: "state-lock-table" },
  ],
};

export class IamError extends CommandError {}

export interface IamOptions {
  /** The account to name in ARNs. @default "*" */
  readonly account?: string;
}

/** The policies of every stack of a manifest, from a fresh synth into a temporary directory. */
export function iamPolicies(manifestFile: string, options: IamOptions = {}): Record<string, StackPolicies> {
  if (options.account !== undefined && !/^\d{12}$/.test(options.account)) {
    throw new IamError(`lambda-images iam: --account ${options.account}: not an AWS account id. Fix: give the 12-digit id of the account the stacks deploy to, or leave --account out for "*"`);
  }
  const manifest = loadManifest(manifestFile);
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), "lambda-images-iam-"));
  try {
    const { app } = createImagesApp({ manifestFile, outdir });
    app.synth();
    const result: Record<string, StackPolicies> = {};
    for (const [stackName, spec] of Object.entries(manifest.stacks)) {
      const json = JSON.parse(fs.readFileSync(path.join(outdir, "stacks", stackName, "cdk.tf.json"), "utf8")) as TfJson;
      result[stackName] = stackPolicies(stackName, json, { region: spec.region, account: options.account ?? "*", buildTrigger: spec.buildTrigger });
    }
    return result;
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}

/** The policies for one synthesized stack. */
export function stackPolicies(stackName: string, stack: TfJson, where: { region: string; account: string; buildTrigger: "local-exec" | "lambda" }): StackPolicies {
  const arns = collectArns(stack, where);
  const grants: Grant[] = [];
  const types = [
    ...Object.keys(stack.resource ?? {}),
    ...Object.keys(stack.data ?? {}).map((t) => `data.${t}`),
  ].sort();
  for (const type of types) {
    const known = TERRAFORM_GRANTS[type];
    if (!known) {
      throw new IamError(
        `lambda-images iam: stack ${stackName}: the IAM table has no entry for ${type}. Fix: add what the provider calls for ${type} to TERRAFORM_GRANTS in src/cli/iam.ts`,
      );
    }
    grants.push(...known);
  }
  const backendType = Object.keys(stack.terraform?.backend ?? { local: {} })[0]!;
  const backend = BACKEND_GRANTS[backendType];
  if (!backend) throw new IamError(`lambda-images iam: stack ${stackName}: unknown backend ${backendType}. Fix: add it to BACKEND_GRANTS in src/cli/iam.ts`);
  grants.push(...backend);

  const terraform = policyOf(grants, arns);
  if (where.buildTrigger === "lambda") return { buildTrigger: "lambda", terraform };
  const runnerScope = { repository: "runner-repositories", project: "runner-projects", "build-log-group": "runner-log-streams" } as const;
  const runnerGrants: Grant[] = RUNNER_AWS_CALLS.map((call) => ({ actions: [call.action], on: runnerScope[call.on] }));
  return { buildTrigger: "local-exec", terraform, runner: policyOf(runnerGrants, arns) };
}

type ArnSets = Record<string, string[]>;

/** One statement per scope, actions sorted and de-duplicated; scopes with nothing in them are left out. */
function policyOf(grants: readonly Grant[], arns: ArnSets): IamPolicy {
  const byScope = new Map<string, Set<string>>();
  for (const grant of grants) {
    const actions = byScope.get(grant.on) ?? new Set<string>();
    grant.actions.forEach((a) => actions.add(a));
    byScope.set(grant.on, actions);
  }
  const statements: IamStatement[] = [];
  for (const [scope, actions] of [...byScope].sort(([a], [b]) => a.localeCompare(b))) {
    if (actions.size === 0) continue;
    const resources = scope === "*" ? "*" : [...new Set(arns[scope] ?? [])].sort();
    if (resources !== "*" && resources.length === 0) continue;
    statements.push({ Sid: sid(scope), Effect: "Allow", Action: [...actions].sort(), Resource: resources });
  }
  return { Version: "2012-10-17", Statement: statements };
}

function sid(scope: string): string {
  return scope === "*" ? "Unscoped" : scope.split("-").map((w) => w[0]!.toUpperCase() + w.slice(1)).join("");
}

/** `aws`, `aws-cn` or `aws-us-gov`, from the region's name. */
function partitionOf(region: string): string {
  if (region.startsWith("cn-")) return "aws-cn";
  if (region.startsWith("us-gov-")) return "aws-us-gov";
  return "aws";
}

/** The resource a whole-string reference `${type.id.attr}` names, if it is one. */
function deref(stack: TfJson, expr: unknown): { type: string; resource: TfJson } | undefined {
  const m = typeof expr === "string" ? /^\$\{([a-z0-9_]+)\.([^.}]+)\.[a-z0-9_]+\}$/.exec(expr) : null;
  const resource = m ? stack.resource?.[m[1]!]?.[m[2]!] : undefined;
  return resource ? { type: m![1]!, resource } : undefined;
}

/** A literal name, or the name of the resource a reference points at. */
function literal(stack: TfJson, value: unknown, field: string): string | undefined {
  if (typeof value === "string" && !value.includes("${")) return value;
  const target = deref(stack, value)?.resource;
  const name = target?.[field];
  return typeof name === "string" && !name.includes("${") ? name : undefined;
}

/** The values after each flag of a shell command line: `--flag "value"` or `--flag value`. */
function flagValues(command: string, flag: string): string[] {
  return [...command.matchAll(new RegExp(`${flag} (?:"([^"]*)"|(\\S+))`, "g"))].map((m) => m[1] ?? m[2]!);
}

function collectArns(stack: TfJson, where: { region: string; account: string }): ArnSets {
  const p = partitionOf(where.region);
  const arn = (service: string, resource: string, region = where.region) => `arn:${p}:${service}:${region}:${where.account}:${resource}`;
  const all = (type: string): TfJson[] => Object.values(stack.resource?.[type] ?? {});
  const repo = (name: string) => arn("ecr", `repository/${name}`);
  const logGroup = (name: string) => arn("logs", `log-group:${name}`);
  const repositoryOfUri = (uri: unknown) => {
    const ref = typeof uri === "string" ? /^\$\{aws_ecr_repository\.([^.}]+)\.repository_url\}/.exec(uri) : null;
    const name = ref ? stack.resource?.aws_ecr_repository?.[ref[1]!]?.name : undefined;
    return typeof name === "string" ? [repo(name)] : [];
  };

  const bucketPrefixes = all("aws_s3_bucket").map((b) => (b.bucket ?? `${b.bucket_prefix}*`) as string);
  const backend = stack.terraform?.backend?.s3 as { bucket: string; key: string; region: string; dynamodb_table?: string } | undefined;

  const projects = all("aws_codebuild_project");
  const localExecCommands = all("terraform_data").flatMap((d) =>
    [d.provisioner ?? []].flat().map((p: TfJson) => p?.["local-exec"]?.command as string | undefined).filter((c): c is string => typeof c === "string"),
  );
  const runnerProjects = localExecCommands.flatMap((c) => flagValues(c, "--project")).map((v) => literal(stack, v, "name")).filter((n): n is string => !!n);
  const runnerRepos = localExecCommands.flatMap((c) => flagValues(c, "--repository-uri")).flatMap(repositoryOfUri);
  const buildLogGroups = projects
    .filter((pj) => runnerProjects.includes(pj.name))
    .map((pj) => literal(stack, pj.logs_config?.cloudwatch_logs?.group_name, "name"))
    .filter((n): n is string => !!n);

  return {
    repositories: all("aws_ecr_repository").map((r) => repo(r.name)),
    "function-repositories": all("aws_lambda_function").filter((f) => f.package_type === "Image").flatMap((f) => repositoryOfUri(f.image_uri)),
    "docker-pushed-repositories": all("docker_registry_image").flatMap((r) => repositoryOfUri(deref(stack, r.name)?.resource.name)),
    "docker-pulled-repositories": all("docker_image").flatMap((i) => Object.values((i.build?.build_args ?? {}) as Record<string, unknown>).flatMap(repositoryOfUri)),
    bucket: bucketPrefixes.map((b) => `arn:${p}:s3:::${b}`),
    "bucket-objects": bucketPrefixes.map((b) => `arn:${p}:s3:::${b}/*`),
    // The prefix, not each object: an object's key changes with its image's content.
    "context-objects": all("aws_s3_object").length ? bucketPrefixes.map((b) => `arn:${p}:s3:::${b}/${CONTEXT_PREFIX}*`) : [],
    roles: all("aws_iam_role").map((r) => `arn:${p}:iam::${where.account}:role/${r.name}`),
    "log-groups": all("aws_cloudwatch_log_group").map((g) => logGroup(g.name)),
    "all-log-groups": [logGroup("*")],
    projects: projects.map((pj) => arn("codebuild", `project/${pj.name}`)),
    functions: all("aws_lambda_function").map((f) => arn("lambda", `function:${f.function_name}`)),
    "invoked-functions": all("aws_lambda_invocation")
      .map((i) => literal(stack, i.function_name, "function_name"))
      .filter((n): n is string => !!n)
      .map((n) => arn("lambda", `function:${n}`)),
    "state-bucket": backend ? [`arn:${p}:s3:::${backend.bucket}`] : [],
    "state-object": backend ? [`arn:${p}:s3:::${backend.bucket}/${backend.key}`] : [],
    "state-lock-table": backend?.dynamodb_table ? [arn("dynamodb", `table/${backend.dynamodb_table}`, backend.region)] : [],
    "runner-projects": runnerProjects.map((n) => arn("codebuild", `project/${n}`)),
    "runner-repositories": runnerRepos,
    "runner-log-streams": buildLogGroups.map((n) => `${logGroup(n)}:*`),
  };
}

/** The command: JSON of every stack's policies (or one stack's with `--stack`). */
export function iamCommand(manifestFile: string, options: IamOptions & { stack?: string }): string {
  const all = iamPolicies(manifestFile, options);
  if (options.stack === undefined) return `${JSON.stringify(all, null, 2)}\n`;
  const one = all[options.stack];
  if (!one) throw new IamError(`lambda-images iam: --stack ${options.stack}: no such stack in the manifest. Fix: use one of ${Object.keys(all).join(", ")}`);
  return `${JSON.stringify(one, null, 2)}\n`;
}
