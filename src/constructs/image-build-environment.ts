import * as fs from "node:fs";
import * as path from "node:path";
import { Construct, type IConstruct } from "constructs";
import { Lazy, TerraformStack, Token } from "cdktf";
import { DataAwsCallerIdentity } from "@cdktf/provider-aws/lib/data-aws-caller-identity/index.js";
import { DataAwsPartition } from "@cdktf/provider-aws/lib/data-aws-partition/index.js";
import { DataAwsRegion } from "@cdktf/provider-aws/lib/data-aws-region/index.js";
import { IamRole } from "@cdktf/provider-aws/lib/iam-role/index.js";
import { IamRolePolicy } from "@cdktf/provider-aws/lib/iam-role-policy/index.js";
import { EcrRepository } from "@cdktf/provider-aws/lib/ecr-repository/index.js";
import { CodebuildProject } from "@cdktf/provider-aws/lib/codebuild-project/index.js";
import { DockerProvider } from "@cdktf/provider-docker/lib/provider/index.js";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider/index.js";
import { boundedName, kebabName } from "../naming.ts";
import type { Problem } from "../manifest/checks.ts";
import { AppImages } from "./app-images.ts";
import { BuildStarter } from "./build-starter.ts";
import type { BuildLauncher } from "./build-trigger.ts";
import { ContextBucket, CONTEXT_PREFIX } from "./context-bucket.ts";
import { assumeRolePolicyFor, coverNames, IAM_QUOTAS, iamPolicyLength, matchesIamPattern } from "./iam.ts";
import { ImageProblems, type AwsNameKind } from "./problems.ts";
import { StagedAsset } from "./staged-asset.ts";
import { platformProjectName } from "./codebuild-build.ts";
import { platform } from "../manifest/schema.ts";
import { ecrImageReference, frontendImage } from "../selection/dockerfile.ts";

/** A bucket for context archives: one you manage yourself. */
export interface IContextBucket {
  /** Bucket name. */
  readonly name: string;
  /** Bucket ARN. */
  readonly arn: string;
}

export interface ImageBuildEnvironmentProps {
  /** The repository root that image paths (dockerfile, context, packages) are relative to (absolute, or relative to the working directory). @default the top of the git work tree holding the app (so an app in `infra/` of a monorepo takes paths from the monorepo's top), else the directory holding cdktf.json, else the working directory */
  readonly root?: string;
  /** The project part of default AWS names, so two projects' stacks of the same name can share an account. @default the `name` in the package.json beside cdktf.json (its npm scope left out), kebab-cased */
  readonly project?: string;
  /** Prefix of every AWS name this stack's images get (repositories, CodeBuild projects, functions, roles). @default `<project>-<stack id>`, kebab-cased */
  readonly namePrefix?: string;
  /** The region builds run in (for ARNs and the runner). @default the AWS provider's region */
  readonly region?: string;
  /** How builds start: `local-exec` runs the bundled runner with node where Terraform runs; `lambda` invokes a build starter Lambda through the AWS provider (Terraform Cloud). @default "local-exec" */
  readonly buildTrigger?: "local-exec" | "lambda";
  /** Keep this many most recent content-tagged images per repository. @default 10 */
  readonly maxImages?: number;
  /** Expire untagged images after this many days. @default 30 */
  readonly maxAgeDays?: number;
  /** Tag base images `stable` instead of by content (the seed's use-static-base-image). @default false */
  readonly staticBaseImageTags?: boolean;
  /** A bucket you manage for the context archives. @default a private, encrypted, TLS-only bucket created for the stack */
  readonly contextBucket?: IContextBucket;
  /** A role you manage for CodeBuild; the stack's least-privilege build policy is attached to it. @default a role created for the stack */
  readonly codebuildRole?: IamRole;
  /** Name prefix of the created context bucket. @default `<namePrefix>-contexts-` */
  readonly contextBucketPrefix?: string;
  /** Name of the created CodeBuild role. @default `<namePrefix>-image-builds` */
  readonly codebuildRoleName?: string;
  /** Name of the build starter Lambda (buildTrigger: lambda). @default `<namePrefix>-build-starter` */
  readonly buildStarterName?: string;
  /**
   * How the stack's AWS names (repositories, CodeBuild projects) are made from a name part (an
   * image's name, `base-<name>` for a base image). The IAM policies name the stack's resources by
   * the ARN pattern this function gives for the part `*`, so they stay small however many images
   * the stack has; a name it does not make (one set by hand) is listed on its own.
   * @default `<namePrefix>-<part>`
   */
  readonly resourceName?: (part: string) => string;
  /**
   * The account's IAM "Role trust policy length" quota, if an increase was granted (AWS allows at
   * most 4,096). Synth fails when the CodeBuild role's trust policy would exceed it. @default 2048
   */
  readonly roleTrustPolicyQuota?: number;
}

/** The names of the stack's CodeBuild-built images' repositories and projects, and of the base repositories its builds pull. */
interface BuildRegistry {
  readonly pushRepositories: string[];
  readonly pullRepositories: string[];
  readonly projects: string[];
  publicEcr: boolean;
  /** ARNs of ECR repositories holding the Dockerfile frontend a build arg BUILDKIT_SYNTAX names. */
  readonly frontendRepositories: string[];
}

/** What the stack's IAM policies name: ARNs and ARN patterns. */
interface IamResources {
  readonly pushRepositoryArns: string[];
  /** Repositories the builds only pull from that a push pattern also matches: pushing to them is denied. */
  readonly pullOnlyRepositoryArns: string[];
  readonly pullRepositoryArns: string[];
  readonly projectArns: string[];
  readonly logGroupArns: string[];
}

/** A name part no naming function changes, standing for `*` when the stack's name pattern is made. */
const WILDCARD_PART = "zzzwildcardzzz";
/**
 * The longest values the data-source tokens in an ARN can take, for the size checks: the
 * partition `aws-us-gov`, a region like `us-isof-south-1`, and a bucket ARN with a 63-character
 * name (S3's longest).
 */
const LONGEST_PARTITION = "aws-us-gov";
const LONGEST_REGION = "us-isof-south-1";
const LONGEST_BUCKET_ARN = `arn:${LONGEST_PARTITION}:s3:::${"b".repeat(63)}`;

/**
 * What the images of one stack share: the repository root, the context bucket, the CodeBuild
 * role and its least-privilege policy, and how builds start (the runner shipped with the stack,
 * or the build starter Lambda). Created on first use by the first image of a stack; create it
 * yourself, before the images, to set its props.
 */
export class ImageBuildEnvironment extends Construct {
  /** The id the environment gets when an image creates it. */
  static readonly DEFAULT_ID = "image-builds";

  private static readonly byStack = new WeakMap<TerraformStack, ImageBuildEnvironment>();

  /** The stack's environment (wherever in the stack it was created), created with default props if the stack has none yet. */
  static of(scope: IConstruct): ImageBuildEnvironment {
    const stack = TerraformStack.of(scope);
    return ImageBuildEnvironment.byStack.get(stack) ?? new ImageBuildEnvironment(stack, ImageBuildEnvironment.DEFAULT_ID);
  }

  /** Absolute, symlink-resolved repository root; undefined when it does not exist (a problem reported at synth). */
  readonly root: string | undefined;
  /** How the root was chosen, for messages about paths. */
  readonly rootSource: string;
  readonly namePrefix: string;
  readonly region: string;
  readonly maxImages: number;
  readonly maxAgeDays: number;
  readonly staticBaseImageTags: boolean;
  readonly bucket: IContextBucket;
  readonly codebuildRole: IamRole;
  readonly codebuildPolicy: IamRolePolicy;
  readonly launcher: BuildLauncher;
  /** The stack's name, as `plan` reports it. */
  readonly stackName: string;
  /** The account Terraform deploys to (a data source token): for ARNs and `aws:SourceAccount` conditions. */
  readonly account: string;
  /** The AWS partition (a data source token): for ARNs. */
  readonly partition: string;
  /** The region as a literal where the stack names one (for the collision check), else undefined. */
  private readonly regionName: string | undefined;
  private docker?: DockerProvider;
  private readonly registry: BuildRegistry = { pushRepositories: [], pullRepositories: [], projects: [], publicEcr: false, frontendRepositories: [] };
  private readonly makeName: (part: string) => string;
  private readonly roleTrustPolicyQuota: number;

  constructor(scope: Construct, id: string, props: ImageBuildEnvironmentProps = {}) {
    super(scope, id);
    ImageProblems.checkBeforeSynth(this, this);
    const stack = TerraformStack.of(this);
    const other = ImageBuildEnvironment.byStack.get(stack);
    const problems = ImageProblems.of(this);
    if (other) {
      problems.add(this, [{ field: "", message: `the stack already has an ImageBuildEnvironment (${other.node.path})`, fix: "create one per stack, before its images" }]);
    } else {
      ImageBuildEnvironment.byStack.set(stack, this);
    }
    this.stackName = stack.node.id;
    // The app's directory: where cdktf.json is, at or above the working directory.
    const appDir = findUpwards(process.cwd(), "cdktf.json");
    const root = resolveRoot(props.root, appDir);
    this.root = root.root;
    this.rootSource = root.source;
    if (root.problem) problems.add(this, [root.problem]);
    let prefix = props.namePrefix;
    if (prefix === undefined) {
      const project = props.project ?? defaultProject(appDir, this.root);
      if (project === undefined) {
        problems.add(this, [
          {
            field: "project",
            message: "no project name was given, and no package.json with a name was found beside cdktf.json",
            fix: "set project (or namePrefix) on the stack's ImageBuildEnvironment, e.g. new ImageBuildEnvironment(stack, \"image-builds\", { project: \"shop\" })",
          },
        ]);
      }
      prefix = kebabName(project === undefined ? stack.node.id : `${project}-${stack.node.id}`);
    }
    this.namePrefix = prefix;
    this.regionName = props.region ?? providerRegion(stack);
    this.maxImages = props.maxImages ?? 10;
    this.maxAgeDays = props.maxAgeDays ?? 30;
    this.staticBaseImageTags = props.staticBaseImageTags ?? false;
    this.makeName = props.resourceName ?? ((part) => `${this.namePrefix}-${part}`);
    this.roleTrustPolicyQuota = props.roleTrustPolicyQuota ?? IAM_QUOTAS.roleTrustPolicyDefault;
    if (!Number.isInteger(this.roleTrustPolicyQuota) || this.roleTrustPolicyQuota < 1 || this.roleTrustPolicyQuota > IAM_QUOTAS.roleTrustPolicyMax) {
      problems.add(this, [
        { field: "roleTrustPolicyQuota", message: `is ${this.roleTrustPolicyQuota}; IAM's role trust policy length quota is at most ${IAM_QUOTAS.roleTrustPolicyMax} characters`, fix: "set the quota your account has (2048 unless an increase was granted), or leave it out" },
      ]);
    }
    this.account = new DataAwsCallerIdentity(this, "account").accountId;
    this.partition = new DataAwsPartition(this, "partition").partition;
    this.region = props.region ?? new DataAwsRegion(this, "region").region;

    this.bucket =
      props.contextBucket ??
      new ContextBucket(this, "contexts", {
        namePrefix: props.contextBucketPrefix ?? `${boundedName(`${this.namePrefix}-contexts`, 36)}-`,
      });
    this.codebuildRole =
      props.codebuildRole ??
      new IamRole(this, "codebuild-role", {
        name: this.awsName("IAM role", props.codebuildRoleName ?? boundedName(`${this.namePrefix}-image-builds`, 64), props.codebuildRoleName ? "codebuildRoleName" : "namePrefix"),
        // CodeBuild sets both keys when it assumes a project's service role, the project's ARN as
        // aws:SourceArn (https://docs.aws.amazon.com/codebuild/latest/userguide/setting-up-service-role.html).
        assumeRolePolicy: assumeRolePolicyFor("codebuild.amazonaws.com", {
          sourceAccount: this.account,
          sourceArns: () => this.iamResources().projectArns,
          check: (policy) => this.checkPolicySize(policy, "the CodeBuild role's trust policy", this.roleTrustPolicyQuota, "Role trust policy length"),
        }),
      });
    // Names are known at synth, so the policy is written before the resources it governs and
    // every build can wait for it; the lists fill as the stack's images are defined.
    this.codebuildPolicy = new IamRolePolicy(this, "codebuild-policy", {
      role: this.codebuildRole.id,
      name: "build-stack-images",
      policy: Lazy.stringValue({
        produce: () => {
          const resources = this.iamResources();
          const policy = JSON.stringify(
            codebuildPolicy({
              pushRepositories: resources.pushRepositoryArns,
              pullRepositories: resources.pullRepositoryArns,
              pullOnlyRepositories: resources.pullOnlyRepositoryArns,
              bucketArn: this.bucket.arn,
              logGroupArns: resources.logGroupArns,
              publicEcr: this.registry.publicEcr,
              frontendRepositories: this.registry.frontendRepositories,
            }),
          );
          // Only this policy is known here: a role passed in may hold others that count too.
          this.checkPolicySize(policy, "the CodeBuild role's inline policy build-stack-images", IAM_QUOTAS.roleInlinePoliciesTotal, "Role policy size (all inline policies of a role together)");
          return policy;
        },
      }),
    });

    const app = AppImages.of(this);
    if ((props.buildTrigger ?? "local-exec") === "lambda") {
      const starter = new BuildStarter(this, "build-starter", {
        functionName: this.awsName("Lambda function", props.buildStarterName ?? boundedName(`${this.namePrefix}-build-starter`, 64), props.buildStarterName ? "buildStarterName" : "namePrefix"),
        bundle: app.starterZip(),
        projectArns: () => this.iamResources().projectArns,
        repositoryArns: () => this.iamResources().pushRepositoryArns,
        buildLogGroupArns: () => this.iamResources().logGroupArns,
        sourceAccount: this.account,
        checkPolicy: (policy) =>
          this.checkPolicySize(policy, "the build starter role's inline policy start-stack-builds", IAM_QUOTAS.roleInlinePoliciesTotal, "Role policy size (all inline policies of a role together)"),
      });
      this.launcher = { kind: "lambda", functionName: starter.function.functionName, ready: [starter.function, starter.policy] };
    } else {
      const bundle = app.runnerBundle();
      this.launcher = { kind: "local-exec", runnerDir: new StagedAsset(this, "runner", { source: bundle.dir, contentHash: bundle.hash }).path };
    }

    // After the stack is written: save digests, and record what was built for `plan`.
    Object.defineProperty(this, Symbol.for("cdktf/customSynthesis"), {
      value: { onSynthesize: (session: { outdir: string }) => app.stackSynthesized(this.stackName, session.outdir) },
      enumerable: false,
    });
  }

  /** Registers an image built in CodeBuild: its repository is pushed to, its project's logs written. */
  addCodeBuildImage(repositoryName: string, projectName: string, pullsFromPublicEcr: boolean): void {
    // A multi-platform image registers one project per platform for the same repository.
    if (!this.registry.pushRepositories.includes(repositoryName)) this.registry.pushRepositories.push(repositoryName);
    this.registry.projects.push(projectName);
    if (pullsFromPublicEcr) this.registry.publicEcr = true;
  }

  /**
   * Registers the Dockerfile frontend a CodeBuild build pulls when its build args set
   * BUILDKIT_SYNTAX (BuildKit reads it before a `# syntax=` directive): an image in public ECR or
   * in a private ECR registry, whose repository the builds may then pull from.
   */
  addDockerfileFrontend(buildArgs: Readonly<Record<string, string>>): void {
    const image = frontendImage(buildArgs);
    if (image === undefined) return;
    if (image.startsWith("public.ecr.aws/")) this.registry.publicEcr = true;
    const ecr = ecrImageReference(image);
    if (!ecr) return;
    const arn = `arn:${ecr.partition}:ecr:${ecr.region}:${ecr.account}:repository/${ecr.repository}`;
    if (!this.registry.frontendRepositories.includes(arn)) this.registry.frontendRepositories.push(arn);
  }

  /** Registers a base image repository the stack's builds pull from. */
  addBaseRepository(repositoryName: string): void {
    if (!this.registry.pullRepositories.includes(repositoryName)) this.registry.pullRepositories.push(repositoryName);
  }

  /**
   * The stack's AWS name for a name part (`orders`, `base-common`): `resourceName`, by default
   * `<namePrefix>-<part>`. The images' default repository and project names come from here, and
   * the IAM policies' name pattern is this function applied to `*`.
   */
  resourceName(part: string): string {
    return this.makeName(part);
  }

  /**
   * The patterns the stack's IAM policies name its resources by: `resourceName("*")` (when that
   * has the wildcard once and fixed text around it), and the names of a multi-platform image's
   * per-platform projects made from it (`platformProjectName`). A pattern matching a name another
   * stack of this App registered is left out (a prefix like `shop-*` would reach `shop-eu-*`), and
   * the names it would have covered are then listed one by one.
   */
  namePatterns(): string[] {
    return this.patternCandidates().filter((p) => this.stacksReachedBy(p).length === 0);
  }

  private patternCandidates(): string[] {
    const made = this.makeName(WILDCARD_PART);
    const at = made.indexOf(WILDCARD_PART);
    if (at < 0 || made.indexOf(WILDCARD_PART, at + 1) >= 0) return [];
    const pattern = `${made.slice(0, at)}*${made.slice(at + WILDCARD_PART.length)}`;
    if (/[*?]/.test(pattern.replace("*", "")) || pattern.length - 1 < 3) return [];
    return [pattern, ...platform.options.map((p) => platformProjectName(pattern, p))];
  }

  /** The other stacks of this App holding an ECR repository or CodeBuild project whose name `pattern` matches. */
  private stacksReachedBy(pattern: string): string[] {
    const mine = TerraformStack.of(this);
    const reached = new Set<string>();
    for (const c of this.node.root.node.findAll()) {
      if (!(c instanceof EcrRepository || c instanceof CodebuildProject)) continue;
      const stack = TerraformStack.of(c);
      // A name that is a token (unknown until apply) cannot be judged; names here are plain text.
      if (stack !== mine && typeof c.nameInput === "string" && matchesIamPattern(c.nameInput, pattern)) reached.add(stack.node.id);
    }
    return [...reached];
  }

  /** The ARNs (and ARN patterns) the stack's policies name, read at synth when every image is registered. */
  private iamResources(): IamResources {
    const patterns = this.namePatterns();
    const push = coverNames(this.registry.pushRepositories, patterns);
    const pull = coverNames(this.registry.pullRepositories, patterns).filter((r) => !push.includes(r));
    // A Docker-built base's repository matches the stack's pattern too, but the builds only pull it.
    const pullOnly = this.registry.pullRepositories.filter((r) => !this.registry.pushRepositories.includes(r) && push.some((p) => matchesIamPattern(r, p)));
    const logGroup = (project: string) => `/aws/codebuild/${project}`;
    return {
      pushRepositoryArns: push.map((r) => this.repositoryArn(r)),
      pullOnlyRepositoryArns: pullOnly.map((r) => this.repositoryArn(r)),
      pullRepositoryArns: pull.map((r) => this.repositoryArn(r)),
      projectArns: coverNames(this.registry.projects, patterns).map((p) => this.projectArn(p)),
      logGroupArns: coverNames(this.registry.projects.map(logGroup), patterns.map(logGroup)).map((g) => this.logGroupArn(g)),
    };
  }

  /**
   * Fails synth when a policy would exceed an IAM quota once Terraform fills in the account,
   * partition, region and bucket (each counted at its longest), so the apply is not refused
   * half-way (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html).
   */
  private checkPolicySize(policy: string, what: string, quota: number, quotaName: string): void {
    // Only tokens are replaced: a region or bucket given as plain text is counted as it is.
    const worstCase = new Map<string, string>(
      (
        [
          [this.account, "123456789012"],
          [this.partition, this.region.includes("TfToken[") ? LONGEST_PARTITION : partitionOf(this.region)],
          [this.region, LONGEST_REGION],
          [this.bucket.arn, LONGEST_BUCKET_ARN],
        ] as const
      ).filter(([token]) => token.includes("TfToken[")),
    );
    const length = iamPolicyLength(policy, worstCase);
    if (length <= quota) return;
    const [pattern] = this.patternCandidates();
    const reached = pattern ? this.stacksReachedBy(pattern) : [];
    const why = !pattern
      ? "; resourceName gives no name pattern, so every repository and project is listed one by one"
      : reached.length
        ? `; the name pattern ${pattern} is not used because it also matches names of stack ${reached.join(", ")}, so every name is listed one by one`
        : "";
    ImageProblems.of(this).fail(this, [
      {
        field: "",
        message:
          `stack ${this.stackName}: ${what} would be up to ${length} characters (white space not counted); ` +
          `IAM's "${quotaName}" quota is ${quota}, so the apply would be refused${why}`,
        fix:
          (reached.length
            ? `give the stacks name prefixes neither of which starts with the other (namePrefix or resourceName on their ImageBuildEnvironment), `
            : `let the images take their default names, which one pattern${pattern ? ` (${pattern})` : ""} covers (repositoryName/projectName set by hand are listed one by one), `) +
          `or split the images over more stacks` +
          (quotaName.startsWith("Role trust") ? `, or request a higher "Role trust policy length" quota (at most ${IAM_QUOTAS.roleTrustPolicyMax}) and set roleTrustPolicyQuota` : ""),
      },
    ]);
  }

  /**
   * The Docker provider Docker-built base images push with: created on first use with the ECR
   * registry's auth, or the stack's own, which must then carry that auth (it cannot be added to
   * a provider the user configured without changing what else it pushes).
   */
  dockerProvider(user: IConstruct): Problem[] {
    const stack = TerraformStack.of(this);
    const own = stack.node.findAll().filter((c): c is DockerProvider => c instanceof DockerProvider && c.alias === undefined);
    if (own.length === 0) {
      if (!this.docker) {
        // Credentials come from the user's Docker config (the ecr-login helper), never from state.
        this.docker = new DockerProvider(this, "docker", {
          registryAuth: [{ address: this.registryAddress(), configFile: '${pathexpand("~/.docker/config.json")}' }],
        });
      }
      return [];
    }
    if (own.some((p) => p === this.docker || (p.registryAuth as unknown[] | undefined)?.length)) return [];
    return [
      {
        field: "builder",
        message: `is docker, and the stack's DockerProvider (${own[0]!.node.path}) has no registryAuth, so it cannot push to ECR (${user.node.path} needs it)`,
        fix: `add registryAuth: [{ address: "<account>.dkr.ecr.<region>.amazonaws.com", configFile: "\${pathexpand(\"~/.docker/config.json\")}" }] to that DockerProvider (with the amazon-ecr-credential-helper configured), or set builder: "codebuild"`,
      },
    ];
  }

  private registryAddress(): string {
    return `${this.account}.dkr.ecr.${this.region}.amazonaws.com`;
  }

  /** Records an AWS name this stack creates, so the App can refuse two of the same; returns it. */
  awsName(kind: AwsNameKind, name: string, prop: string, scope: IConstruct = this): string {
    ImageProblems.of(this).addName(scope, kind, name, kind === "IAM role" ? undefined : this.regionName, prop);
    return name;
  }

  repositoryArn(name: string): string {
    return `arn:${this.partition}:ecr:${this.region}:${this.account}:repository/${name}`;
  }
  projectArn(name: string): string {
    return `arn:${this.partition}:codebuild:${this.region}:${this.account}:project/${name}`;
  }
  /** The unqualified ARN of a Lambda function of this stack's account and region. */
  functionArn(name: string): string {
    return `arn:${this.partition}:lambda:${this.region}:${this.account}:function:${name}`;
  }
  logGroupArn(name: string): string {
    return `arn:${this.partition}:logs:${this.region}:${this.account}:log-group:${name}`;
  }
}

/** The partition a region belongs to, by its prefix; a region not recognised counts as the longest partition. */
function partitionOf(region: string): string {
  const byPrefix: [string, string][] = [["cn-", "aws-cn"], ["us-gov-", "aws-us-gov"], ["us-isob-", "aws-iso-b"], ["us-isof-", "aws-iso-f"], ["eu-isoe-", "aws-iso-e"], ["us-iso-", "aws-iso"], ["eusc-", "aws-eusc"]];
  const known = byPrefix.find(([prefix]) => region.startsWith(prefix));
  if (known) return known[1];
  return /^(us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-\d+$/.test(region) ? "aws" : LONGEST_PARTITION;
}

/** The repository root and how it was chosen; a problem instead when it is not a directory. */
function resolveRoot(root: string | undefined, appDir: string | undefined): { root?: string; source: string; problem?: Problem } {
  let chosen: { dir: string; source: string };
  if (root !== undefined) {
    chosen = { dir: root, source: "set by root" };
  } else {
    const gitTop = findUpwards(appDir ?? process.cwd(), ".git");
    chosen = gitTop
      ? { dir: gitTop, source: "by default the top of the git work tree holding the app" }
      : appDir
        ? { dir: appDir, source: "by default the directory holding cdktf.json (no git work tree holds it)" }
        : { dir: process.cwd(), source: "by default the working directory (no cdktf.json or git work tree above it)" };
  }
  const abs = path.resolve(chosen.dir);
  try {
    const real = fs.realpathSync(abs);
    if (fs.statSync(real).isDirectory()) return { root: real, source: chosen.source };
  } catch {
    // Reported below.
  }
  return {
    source: chosen.source,
    problem: { field: "root", message: `the directory ${abs} does not exist`, fix: "set root to the repository's directory (absolute, or relative to the working directory)" },
  };
}

/** The nearest directory at or above `from` holding `name`. */
function findUpwards(from: string, name: string): string | undefined {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, name))) return dir;
    if (path.dirname(dir) === dir) return undefined;
  }
}

/** The app's package name (beside cdktf.json, else at the root), without its npm scope. */
function defaultProject(appDir: string | undefined, root: string | undefined): string | undefined {
  for (const dir of [appDir, root]) {
    if (!dir) continue;
    try {
      const name = (JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")) as { name?: unknown }).name;
      if (typeof name === "string" && kebabName(name.replace(/^@[^/]+\//, ""))) return kebabName(name.replace(/^@[^/]+\//, ""));
    } catch {
      // No package.json there, or not JSON: try the next place.
    }
  }
  return undefined;
}

/** The region the stack's default AWS provider names, when it is a literal. */
function providerRegion(stack: TerraformStack): string | undefined {
  const provider = stack.node.findAll().find((c): c is AwsProvider => c instanceof AwsProvider && c.alias === undefined);
  const region = provider?.region;
  return region === undefined || Token.isUnresolved(region) ? undefined : region;
}

export interface CodebuildPolicyInput {
  /** Repositories (ARNs or ARN patterns) the builds push to. */
  readonly pushRepositories: readonly string[];
  /** Repositories the builds pull from that `pushRepositories` does not already cover. */
  readonly pullRepositories: readonly string[];
  /** Repositories the builds only pull from although a `pushRepositories` pattern matches them: pushes are denied. @default none */
  readonly pullOnlyRepositories?: readonly string[];
  readonly bucketArn: string;
  readonly logGroupArns: readonly string[];
  readonly publicEcr: boolean;
  /** ECR repositories (ARNs) holding a Dockerfile frontend the builds pull (build arg BUILDKIT_SYNTAX). @default none */
  readonly frontendRepositories?: readonly string[];
}

/**
 * The CodeBuild role may touch only this stack's repositories, context prefix and log groups.
 * Registry tokens cannot be scoped to a resource, so those actions alone use "*".
 */
export function codebuildPolicy(input: CodebuildPolicyInput): object {
  const pull = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"];
  // What `docker push` needs (https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-push-iam.html);
  // whether a tag exists is the runner's question, asked with its own credentials.
  const push = ["ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage"];
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
  if (input.pullOnlyRepositories?.length) {
    // An explicit Deny wins over the pattern's Allow
    // (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).
    statements.splice(2, 0, { Sid: "NoPushToPulledBases", Effect: "Deny", Action: push, Resource: [...input.pullOnlyRepositories] });
  }
  if (input.frontendRepositories?.length) {
    // A pull-through cache imports the upstream image on the first pull, into a repository it
    // creates then: ecr:BatchImportUpstreamImage and ecr:CreateRepository
    // (https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache-iam.html).
    statements.push({
      Sid: "PullDockerfileFrontend",
      Effect: "Allow",
      Action: [...pull, "ecr:BatchImportUpstreamImage", "ecr:CreateRepository"],
      Resource: [...input.frontendRepositories],
    });
  }
  if (input.publicEcr) {
    statements.push({ Sid: "PublicRegistryLogin", Effect: "Allow", Action: ["ecr-public:GetAuthorizationToken", "sts:GetServiceBearerToken"], Resource: "*" });
  }
  return { Version: "2012-10-17", Statement: statements };
}
