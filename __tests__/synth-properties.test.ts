import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";
import { StackView } from "./helpers/stack-view.ts";
import { flagValue, localExecArgv, synthExample, type SynthResult, type TfResource } from "./helpers/synth.ts";
import { checkPolicy, expiredImages, type LifecyclePolicy, type PushedImage } from "./helpers/ecr-lifecycle.ts";
import { allows, arnLike } from "./helpers/iam-eval.ts";

/**
 * Properties of every resource the example synthesizes, checked the way a reviewer reads the
 * plan: find the Lambda function, follow its references to the build, the project, the context
 * object and the repository. The expected values come from example/images.yaml as written.
 */

const PROJECT = "portfolio";
const STACKS = ["dev", "prod"] as const;
const MAX_IMAGES = 10;
const MAX_AGE_DAYS = 30;

interface LambdaExpectation {
  platform: "linux/arm64" | "linux/amd64";
  memorySize: number;
  timeout: number;
  environment: Record<string, string>;
  base?: string;
}
const LAMBDAS: Record<string, LambdaExpectation> = {
  "create-labels": { platform: "linux/arm64", memorySize: 1024, timeout: 300, environment: { LOG_LEVEL: "INFO" }, base: "receipt-label" },
  "upload-images": { platform: "linux/arm64", memorySize: 512, timeout: 120, environment: {}, base: "receipt-label" },
  "sync-dynamo": { platform: "linux/arm64", memorySize: 1024, timeout: 60, environment: {}, base: "receipt-dynamo" },
  "create-labels-standalone": { platform: "linux/amd64", memorySize: 1024, timeout: 300, environment: {} },
};
const BASES: Record<string, { dockerfile: string; parent?: string; packages: string[] }> = {
  "receipt-dynamo": { dockerfile: "dockerfiles/Dockerfile.receipt_dynamo", packages: ["receipt_dynamo"] },
  "receipt-label": { dockerfile: "dockerfiles/Dockerfile.receipt_label", parent: "receipt-dynamo", packages: ["receipt_chroma", "receipt_label"] },
};

// Credentials in the environment of synth must never reach the output.
const SECRETS = {
  AWS_ACCESS_KEY_ID: `AKIA${randomBytes(8).toString("hex").toUpperCase()}`,
  AWS_SECRET_ACCESS_KEY: `secret/${randomBytes(15).toString("base64url")}`,
  AWS_SESSION_TOKEN: `token-${randomBytes(24).toString("hex")}`,
  DOCKER_PASSWORD: `docker-${randomBytes(12).toString("hex")}`,
};

let copy: ExampleCopy;
let synth: SynthResult;
const views: Record<string, StackView> = {};

beforeAll(async () => {
  copy = copyExample({ prefix: "synth-properties-" });
  const saved = Object.fromEntries(Object.keys(SECRETS).map((k) => [k, process.env[k]]));
  Object.assign(process.env, SECRETS);
  try {
    synth = await synthExample(copy.dir, path.join(path.dirname(copy.dir), "cdktf.out"));
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  for (const [name, json] of Object.entries(synth.stacks)) views[name] = StackView.of(synth.outdir, name, json);
});
afterAll(() => copy.cleanup());

const sha256 = (text: string | Buffer) => createHash("sha256").update(text).digest("hex");
const hashOf = (name: string, kind: "lambda" | "base") => synth.analysis.image(name, kind).hash;
const contentTag = (hash: string) => `sha-${hash.slice(0, 12)}`;
const asArray = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);

interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: string | string[];
  Principal?: unknown;
  Condition?: unknown;
}
const statementsOf = (policy: string): Statement[] => (JSON.parse(policy) as { Statement: Statement[] }).Statement;

/** The Lambda's function and, following references, its build and everything the build uses. */
function lambdaChain(view: StackView, name: string) {
  const [fnId, fn] = view.one("aws_lambda_function", (r) => r.function_name === `${PROJECT}-${name}-${view.name}`);
  const uri = /^(\$\{aws_ecr_repository\.[^.}]+\.repository_url\}):(.+)$/.exec(fn.image_uri as string);
  if (!uri) throw new Error(`image_uri ${fn.image_uri} is not <repository url>:<tag>`);
  const [repoId, repo] = view.deref(uri[1], "aws_ecr_repository", "repository_url");
  const triggers = (fn.depends_on as string[]).filter((d) => d.startsWith("terraform_data."));
  expect(triggers, `${name}'s function waits for exactly one build`).toHaveLength(1);
  const triggerId = triggers[0]!.slice("terraform_data.".length);
  const trigger = view.get("terraform_data", triggerId);
  const argv = localExecArgv(trigger.provisioner[0]["local-exec"].command as string);
  const [projectId, project] = view.deref(flagValue(argv, "--project"), "aws_codebuild_project", "name");
  return { fnId, fn, tag: uri[2]!, repoId, repo, triggerId, trigger, argv, projectId, project };
}

/** The base image's Docker resources, found by its repository's name. */
function dockerBase(view: StackView, name: string) {
  const [repoId, repo] = view.one("aws_ecr_repository", (r) => r.name === `portfolio-base-${name}-${view.name}`);
  const repoUrl = StackView.ref("aws_ecr_repository", repoId, "repository_url");
  const images = view.all("docker_image").filter(([, r]) => String(r.name).startsWith(`${repoUrl}:`));
  const pushes = view.all("docker_registry_image").filter(([, r]) => images.some(([id]) => r.name === StackView.ref("docker_image", id, "name")));
  return { repoId, repo, repoUrl, images, pushes };
}

function lifecycleOf(view: StackView, repoId: string) {
  const [, policy] = view.one("aws_ecr_lifecycle_policy", (r) => r.repository === StackView.ref("aws_ecr_repository", repoId, "name"));
  return JSON.parse(policy.policy as string) as {
    rules: { rulePriority: number; selection: Record<string, unknown>; action: { type: string } }[];
  };
}

describe("the synthesized example", () => {
  it("has every manifest stack", () => {
    expect(Object.keys(synth.stacks).sort()).toEqual([...STACKS].sort());
  });

  it.each(STACKS)("%s: every aws resource gets the provider's default tags (no other AWS provider, no per-resource provider)", (stack) => {
    const view = views[stack]!;
    const aws = view.json.provider.aws as TfResource[];
    expect(aws).toHaveLength(1);
    expect(aws[0]!.alias).toBeUndefined();
    expect(aws[0]!.region).toBe("us-east-1");
    expect(aws[0]!.default_tags).toEqual([{ tags: { Project: PROJECT, Stack: stack, ManagedBy: "cdktf" } }]);
    const awsResources = Object.entries(view.json.resource as Record<string, Record<string, TfResource>>).filter(([t]) => t.startsWith("aws_"));
    expect(awsResources.length).toBeGreaterThan(10);
    for (const [type, resources] of awsResources) {
      for (const [id, r] of Object.entries(resources)) expect(r.provider, `${type}.${id}`).toBeUndefined();
    }
  });

  it("no credential from synth's environment appears in any output file (JSON, assets, runner bundle)", () => {
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, d.name);
        if (d.isDirectory()) walk(p);
        else if (d.isFile()) files.push(p);
      }
    };
    walk(synth.outdir);
    expect(files.some((f) => f.endsWith("runner.cjs"))).toBe(true);
    expect(files.some((f) => f.endsWith(".zip"))).toBe(true);
    for (const file of files) {
      const bytes = fs.readFileSync(file);
      for (const [name, secret] of Object.entries(SECRETS)) {
        expect(bytes.includes(secret), `${name} found in ${path.relative(synth.outdir, file)}`).toBe(false);
      }
    }
  });
});

describe.each(STACKS)("stack %s", (stack) => {
  const view = () => views[stack]!;
  const staticBase = stack === "dev";
  const baseTag = (name: string) => (staticBase ? "stable" : contentTag(hashOf(name, "base")));

  describe.each(Object.entries(LAMBDAS))("Lambda %s", (name, want) => {
    it("is a container-image function with the manifest's architecture, memory, timeout and environment", () => {
      const { fn, tag } = lambdaChain(view(), name);
      expect(fn.package_type).toBe("Image");
      expect(fn.architectures).toEqual([want.platform === "linux/arm64" ? "arm64" : "x86_64"]);
      expect(fn.memory_size).toBe(want.memorySize);
      expect(fn.timeout).toBe(want.timeout);
      expect(fn.environment?.variables ?? {}).toEqual(want.environment);
      // A new tag per content change, so Lambda resolves a new digest.
      expect(tag).toBe(contentTag(hashOf(name, "lambda")));
      expect(tag).toMatch(/^sha-[0-9a-f]{12}$/);
    });

    it("has its own ECR repository: scan on push, immutable tags except the BuildKit cache tag", () => {
      const { repo } = lambdaChain(view(), name);
      expect(repo.name).toBe(`${PROJECT}-${name}-${stack}`);
      expect(repo.image_scanning_configuration).toEqual({ scan_on_push: true });
      expect(repo.image_tag_mutability).toBe("IMMUTABLE_WITH_EXCLUSION");
      expect(repo.image_tag_mutability_exclusion_filter).toEqual([{ filter: "cache", filter_type: "WILDCARD" }]);
      // Every image in it is rebuilt from the monorepo, so terraform destroy may delete it full;
      // ECR refuses to delete a repository with images unless forced
      // (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DeleteRepository.html).
      expect(repo.force_delete).toBe(true);
    });

    it("has a valid lifecycle policy: untagged expire after maxAgeDays, keep maxImages images per content-tag kind", () => {
      const { repoId } = lambdaChain(view(), name);
      expectValidLifecycle(lifecycleOf(view(), repoId));
    });

    it("uploads its context archive to contexts/<image>/<content hash>.zip from a zip synth wrote", () => {
      const { argv, project } = lambdaChain(view(), name);
      const location = flagValue(argv, "--source-location")!;
      const m = /^(\$\{aws_s3_bucket\.[^.}]+\.bucket\})\/(\$\{aws_s3_object\.[^.}]+\.key\})$/.exec(location);
      expect(m, `--source-location ${location} is <bucket>/<object key>`).not.toBeNull();
      const [, object] = view().deref(m![2], "aws_s3_object", "key");
      expect(object.key).toBe(`contexts/${name}/${hashOf(name, "lambda")}.zip`);
      expect(object.bucket).toBe(m![1]);
      const [bucketId] = view().deref(m![1], "aws_s3_bucket", "bucket");
      expect(bucketId).toBe(view().one("aws_s3_bucket", () => true)[0]);
      expect(project.source).toMatchObject({ type: "S3", location: `${m![1]}/${object.key}` });
      const zip = path.join(view().dir, object.source as string);
      expect(fs.existsSync(zip), `${object.source} exists in the stack directory`).toBe(true);
      expect(fs.readFileSync(zip).subarray(0, 4).toString("latin1")).toBe("PK\x03\x04");
    });

    it("is built by a privileged CodeBuild project on the platform's machine, logging to /aws/codebuild/<project> with retention", () => {
      const { project } = lambdaChain(view(), name);
      expect(project.name).toBe(`${PROJECT}-${name}-${stack}`);
      const env = project.environment;
      if (want.platform === "linux/arm64") {
        expect(env).toMatchObject({ type: "ARM_CONTAINER", image: "aws/codebuild/amazonlinux-aarch64-standard:3.0" });
      } else {
        expect(env).toMatchObject({ type: "LINUX_CONTAINER", image: "aws/codebuild/standard:7.0" });
      }
      expect(env.privileged_mode).toBe(true);
      expect(project.build_timeout).toBeGreaterThan(0);
      expect(project.build_timeout).toBeLessThanOrEqual(480);
      expect(project.artifacts).toEqual({ type: "NO_ARTIFACTS" });
      const [roleId] = view().deref(project.service_role, "aws_iam_role", "arn");
      expect(roleId).toBe(codebuildRoleId(view()));
      expect(project.logs_config.cloudwatch_logs.status).toBe("ENABLED");
      const [, logs] = view().deref(project.logs_config.cloudwatch_logs.group_name, "aws_cloudwatch_log_group", "name");
      expect(logs.name).toBe(`/aws/codebuild/${project.name}`);
      expect(logs.retention_in_days).toBeGreaterThan(0);
    });

    it("is rebuilt by a terraform_data whose triggers are the content hash, the base image URI and the buildspec's hash", () => {
      const { trigger, project } = lambdaChain(view(), name);
      expect(Object.keys(trigger.triggers_replace).sort()).toEqual(["base_image_uri", "buildspec_hash", "content_hash"]);
      expect(trigger.triggers_replace.content_hash).toBe(hashOf(name, "lambda"));
      // The buildspec is written with Terraform's escapes ($${…}); the hash is of what CodeBuild runs.
      const buildspec = (project.source.buildspec as string).replace(/([$%])\1\{/g, "$1{");
      expect(trigger.triggers_replace.buildspec_hash).toBe(sha256(buildspec));
      const expectedBase = want.base ? `${dockerBase(view(), want.base).repoUrl}:${baseTag(want.base)}` : "";
      expect(trigger.triggers_replace.base_image_uri).toBe(expectedBase);
    });

    it("runs the bundled runner with the project, context, repository, tag and base image", () => {
      const { argv, repoId, tag, trigger } = lambdaChain(view(), name);
      expect(argv[0]).toBe("node");
      expect(argv[1]).toMatch(/^assets\/runner\/[0-9A-F]{32}\/runner\.cjs$/);
      expect(fs.existsSync(path.join(view().dir, argv[1]!)), `${argv[1]} exists in the stack directory`).toBe(true);
      expect(argv[2]).toBe("build");
      expect(flagValue(argv, "--repository-uri")).toBe(StackView.ref("aws_ecr_repository", repoId, "repository_url"));
      expect(flagValue(argv, "--image-tag")).toBe(tag);
      expect(flagValue(argv, "--region")).toBe("us-east-1");
      expect(flagValue(argv, "--base-image-uri")).toBe(want.base ? trigger.triggers_replace.base_image_uri : undefined);
      // Content tags never need --force: the runner skips a tag that already exists.
      expect(argv).not.toContain("--force");
    });

    it("builds after its context object, project and IAM policy exist, and after its base image is pushed", () => {
      const { trigger, argv } = lambdaChain(view(), name);
      const deps = trigger.depends_on as string[];
      const objectRef = /\$\{aws_s3_object\.([^.}]+)\.key\}/.exec(flagValue(argv, "--source-location")!)![1];
      expect(deps).toContain(`aws_s3_object.${objectRef}`);
      expect(deps).toContain(`aws_codebuild_project.${view().deref(flagValue(argv, "--project"), "aws_codebuild_project")[0]}`);
      expect(deps).toContain(`aws_iam_role_policy.${codebuildPolicy(view())[0]}`);
      const pushedBases = deps.filter((d) => d.startsWith("docker_registry_image."));
      if (want.base) {
        // The seed's "Base Image Not Found": the build must wait for the base image's push.
        const { pushes } = dockerBase(view(), want.base);
        expect(pushedBases).toEqual(pushes.map(([id]) => `docker_registry_image.${id}`));
      } else {
        expect(pushedBases).toEqual([]);
      }
    });

    it("runs as a role that may only write to its own log group", () => {
      const { fn } = lambdaChain(view(), name);
      const [roleId, role] = view().deref(fn.role, "aws_iam_role", "arn");
      expect(statementsOf(role.assume_role_policy as string)).toEqual([
        {
          Effect: "Allow",
          Principal: { Service: "lambda.amazonaws.com" },
          Action: "sts:AssumeRole",
          Condition: { StringEquals: { "aws:SourceAccount": "${data.aws_caller_identity.account.account_id}" } },
        },
      ]);
      expect(role.managed_policy_arns).toBeUndefined();
      expect(view().all("aws_iam_role_policy_attachment").filter(([, a]) => String(a.role).includes(`.${roleId}.`))).toEqual([]);
      const policies = view().all("aws_iam_role_policy").filter(([, p]) => String(p.role).includes(`aws_iam_role.${roleId}.`));
      expect(policies).toHaveLength(1);
      const [logsId, logs] = view().deref(fn.logging_config.log_group, "aws_cloudwatch_log_group", "name");
      expect(logs.name).toBe(`/aws/lambda/${fn.function_name}`);
      expect(statementsOf(policies[0]![1].policy as string)).toEqual([
        {
          Effect: "Allow",
          Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
          Resource: `${StackView.ref("aws_cloudwatch_log_group", logsId, "arn")}:*`,
        },
      ]);
      expect(fn.depends_on).toContain(`aws_iam_role_policy.${policies[0]![0]}`);
    });
  });

  describe.each(Object.entries(BASES))("base image %s (built with Docker)", (name, want) => {
    it(`has repository portfolio-base-${name}-${stack}: scan on push, immutable except the cache tag${staticBase ? " and the stable tags" : ""}, a valid lifecycle`, () => {
      const { repo, repoId } = dockerBase(view(), name);
      expect(repo.image_scanning_configuration).toEqual({ scan_on_push: true });
      expect(repo.force_delete).toBe(true);
      expect(repo.image_tag_mutability).toBe("IMMUTABLE_WITH_EXCLUSION");
      const moving = staticBase ? ["cache", "stable", "arm64-stable", "amd64-stable"] : ["cache"];
      expect(repo.image_tag_mutability_exclusion_filter).toEqual(moving.map((filter) => ({ filter, filter_type: "WILDCARD" })));
      expectValidLifecycle(lifecycleOf(view(), repoId));
    });

    it(`is a docker_image tagged ${staticBase ? "stable" : "by content"}, built from the staged context with its build args, triggered by its content hash`, () => {
      const { images, repoUrl } = dockerBase(view(), name);
      expect(images).toHaveLength(1);
      const [, image] = images[0]!;
      expect(image.name).toBe(`${repoUrl}:${baseTag(name)}`);
      expect(image.triggers).toEqual({ content_hash: hashOf(name, "base") });
      expect(image.build.dockerfile).toBe(want.dockerfile);
      expect(image.build.platform).toBe("linux/arm64");
      const context = /^(assets\/[^"$]+)$/.exec(image.build.context as string);
      expect(context, `context ${image.build.context} is a staged asset, relative to the stack directory`).not.toBeNull();
      const staged = path.join(view().dir, context![1]!);
      // The staged context holds the Dockerfile and the base's packages, nothing else.
      const top = fs.readdirSync(staged).sort();
      expect(top).toEqual(["dockerfiles", ...want.packages].sort());
      expect(fs.existsSync(path.join(staged, want.dockerfile))).toBe(true);
      expect(fs.existsSync(path.join(staged, "receipt_dynamo", "tests"))).toBe(false);
      if (want.parent) {
        const parent = dockerBase(view(), want.parent);
        expect(image.build.build_args).toEqual({ BASE_IMAGE_URI: `${parent.repoUrl}:${baseTag(want.parent)}` });
        expect(image.depends_on).toEqual(parent.pushes.map(([id]) => `docker_registry_image.${id}`));
      } else {
        expect(image.build.build_args ?? {}).toEqual({});
      }
    });

    it("is pushed by a docker_registry_image kept remotely, with the same triggers", () => {
      const { images, pushes } = dockerBase(view(), name);
      expect(pushes).toHaveLength(1);
      const [, push] = pushes[0]!;
      expect(push.name).toBe(StackView.ref("docker_image", images[0]![0], "name"));
      expect(push.keep_remotely).toBe(true);
      expect(push.triggers).toEqual({ content_hash: hashOf(name, "base") });
    });
  });

  it("the Docker provider logs in to ECR with the Docker config file: no password in state", () => {
    const docker = view().json.provider.docker as TfResource[];
    expect(docker).toHaveLength(1);
    const auth = docker[0]!.registry_auth as TfResource[];
    expect(auth).toHaveLength(1);
    expect(auth[0]!.address).toBe("${data.aws_caller_identity.account.account_id}.dkr.ecr.us-east-1.amazonaws.com");
    expect(auth[0]!.config_file).toBeTruthy();
    expect(Object.keys(auth[0]!).sort()).toEqual(["address", "config_file"]);
    expect(view().json.data?.aws_ecr_authorization_token).toBeUndefined();
  });

  describe("the CodeBuild role (least privilege)", () => {
    const statements = () => statementsOf(codebuildPolicy(view())[1].policy as string);
    const arn = (service: string, resource: string) =>
      `arn:\${data.aws_partition.partition.partition}:${service}:us-east-1:\${data.aws_caller_identity.account.account_id}:${resource}`;
    const otherView = () => views[STACKS.find((s) => s !== stack)!]!;
    // The policies name the stack's resources by the pattern of its names, <project>-*-<stack>
    // (and the per-platform projects' <project>-*-<stack>-<arch>), to stay within IAM's size
    // quotas (iam-quotas.test.ts); what a user checks is what they allow, resource by resource.
    const ecrActionsOn = (repository: string) => ["ecr:BatchGetImage", "ecr:PutImage"].filter((a) => allows(statements(), a, arn("ecr", `repository/${repository}`)));

    it("is assumed by CodeBuild only and has this one inline policy", () => {
      const role = view().get("aws_iam_role", codebuildRoleId(view()));
      const projects = view().all("aws_codebuild_project").map(([, p]) => arn("codebuild", `project/${p.name as string}`));
      const trust = statementsOf(role.assume_role_policy as string) as { Condition: { ArnLike: { "aws:SourceArn": string[] } } }[];
      expect(trust).toMatchObject([
        {
          Effect: "Allow",
          Principal: { Service: "codebuild.amazonaws.com" },
          Action: "sts:AssumeRole",
          Condition: { StringEquals: { "aws:SourceAccount": "${data.aws_caller_identity.account.account_id}" } },
        },
      ]);
      const sourceArns = [...trust[0]!.Condition.ArnLike["aws:SourceArn"]];
      for (const project of projects) expect(sourceArns.some((p) => arnLike(project, p)), project).toBe(true);
      for (const [, p] of otherView().all("aws_codebuild_project")) {
        expect(sourceArns.some((a) => arnLike(arn("codebuild", `project/${p.name as string}`), a)), `${p.name} of the other stack`).toBe(false);
      }
      expect(role.managed_policy_arns).toBeUndefined();
      const onRole = view().all("aws_iam_role_policy").filter(([, p]) => String(p.role).includes(`aws_iam_role.${codebuildRoleId(view())}.`));
      expect(onRole.map(([id]) => id)).toEqual([codebuildPolicy(view())[0]]);
    });

    it("allows with no wildcard actions, and denies only pushes", () => {
      for (const s of statements()) {
        for (const action of asArray(s.Action)) expect(action).not.toMatch(/\*/);
        if (s.Effect === "Deny") for (const action of asArray(s.Action)) expect(["ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage"]).toContain(action);
        else expect(s.Effect).toBe("Allow");
      }
    });

    it("uses Resource \"*\" only for registry tokens: ECR, and the public ECR pair because a Dockerfile pulls from public.ecr.aws", () => {
      const star = statements().filter((s) => asArray(s.Resource).includes("*"));
      for (const s of star) expect(asArray(s.Resource)).toEqual(["*"]);
      expect(star.flatMap((s) => asArray(s.Action)).sort()).toEqual(["ecr-public:GetAuthorizationToken", "ecr:GetAuthorizationToken", "sts:GetServiceBearerToken"]);
    });

    it("reaches exactly the stack's repositories: pushes only those built in CodeBuild, pulls the base images", () => {
      const codebuilt = new Set(
        view()
          .all("aws_codebuild_project")
          .map(([, p]) => {
            const env = (p.environment.environment_variable as { name: string; value: string }[]).find((v) => v.name === "REPOSITORY_URI")!;
            return view().deref(env.value, "aws_ecr_repository", "repository_url")[1].name as string;
          }),
      );
      const repos = view().all("aws_ecr_repository").map(([, r]) => r.name as string);
      expect(repos.some((r) => r.includes("-base-") && !codebuilt.has(r))).toBe(true);
      for (const r of repos) expect(ecrActionsOn(r), r).toEqual(codebuilt.has(r) ? ["ecr:BatchGetImage", "ecr:PutImage"] : ["ecr:BatchGetImage"]);
      for (const [, r] of otherView().all("aws_ecr_repository")) expect(ecrActionsOn(r.name as string), `${r.name} of the other stack`).toEqual([]);
    });

    it("reads only contexts/* of the context bucket and writes nothing to S3", () => {
      const [bucketId] = view().one("aws_s3_bucket", () => true);
      const bucketArn = StackView.ref("aws_s3_bucket", bucketId, "arn");
      const s3 = statements().filter((s) => asArray(s.Action).some((a) => a.startsWith("s3:")));
      const objectResources = s3.filter((s) => asArray(s.Action).includes("s3:GetObject")).flatMap((s) => asArray(s.Resource));
      expect(objectResources).toEqual([`${bucketArn}/contexts/*`]);
      for (const s of s3) {
        for (const a of asArray(s.Action)) expect(a).toMatch(/^s3:Get/);
        for (const r of asArray(s.Resource)) expect([bucketArn, `${bucketArn}/contexts/*`]).toContain(r);
      }
    });

    it("writes only the stack's CodeBuild log groups", () => {
      const logs = statements().filter((s) => asArray(s.Action).some((a) => a.startsWith("logs:")));
      expect(logs.flatMap((s) => asArray(s.Action)).sort()).toEqual(["logs:CreateLogStream", "logs:PutLogEvents"]);
      const stream = (group: string) => `${arn("logs", `log-group:${group}`)}:log-stream:build-1`;
      for (const [, p] of view().all("aws_codebuild_project")) expect(allows(statements(), "logs:PutLogEvents", stream(`/aws/codebuild/${p.name}`)), p.name).toBe(true);
      for (const [, p] of otherView().all("aws_codebuild_project")) expect(allows(statements(), "logs:PutLogEvents", stream(`/aws/codebuild/${p.name}`)), p.name).toBe(false);
      for (const [, g] of view().all("aws_cloudwatch_log_group").filter(([, g]) => !String(g.name).startsWith("/aws/codebuild/"))) {
        expect(allows(statements(), "logs:PutLogEvents", stream(g.name as string)), g.name).toBe(false);
      }
    });

    it("every statement falls in one of the groups above (nothing else is granted)", () => {
      for (const s of statements()) {
        for (const a of asArray(s.Action)) expect(a, JSON.stringify(s)).toMatch(/^(ecr|ecr-public|sts|s3|logs):/);
      }
    });
  });

  describe("the context bucket", () => {
    const bucket = () => view().one("aws_s3_bucket", () => true);
    const onBucket = (type: string) => view().one(type, (r) => r.bucket === StackView.ref("aws_s3_bucket", bucket()[0], "id"))[1];

    it("blocks all public access", () => {
      expect(onBucket("aws_s3_bucket_public_access_block")).toMatchObject({
        block_public_acls: true,
        block_public_policy: true,
        ignore_public_acls: true,
        restrict_public_buckets: true,
      });
    });

    it("encrypts at rest and enforces bucket-owner ownership (no ACLs)", () => {
      const sse = onBucket("aws_s3_bucket_server_side_encryption_configuration");
      expect(["AES256", "aws:kms", "aws:kms:dsse"]).toContain(sse.rule[0].apply_server_side_encryption_by_default.sse_algorithm);
      expect(onBucket("aws_s3_bucket_ownership_controls").rule).toEqual({ object_ownership: "BucketOwnerEnforced" });
    });

    it("denies any request not made over TLS", () => {
      const policy = statementsOf(onBucket("aws_s3_bucket_policy").policy as string);
      const arn = StackView.ref("aws_s3_bucket", bucket()[0], "arn");
      expect(policy).toContainEqual(
        expect.objectContaining({
          Effect: "Deny",
          Principal: "*",
          Action: "s3:*",
          Resource: [arn, `${arn}/*`],
          Condition: { Bool: { "aws:SecureTransport": "false" } },
        }),
      );
    });

    it("keeps exactly the archives Terraform manages: no versioning, no expiry of current archives, destroy empties it", () => {
      // Terraform deletes an archive when its content-addressed key changes or its image goes
      // (the AWS provider's aws_s3_object delete removes every version of the key:
      // resourceObjectDelete in hashicorp/terraform-provider-aws internal/service/s3/object.go),
      // so nothing else has to. Expiring current archives would make the provider's refresh drop them from
      // state and every later plan upload them again. Incomplete multipart uploads are invisible
      // to Terraform and are aborted after a day.
      expect(view().all("aws_s3_bucket_versioning")).toEqual([]);
      const rules = onBucket("aws_s3_bucket_lifecycle_configuration").rule as TfResource[];
      expect(rules.filter((r) => r.expiration !== undefined || r.noncurrent_version_expiration !== undefined)).toEqual([]);
      expect(rules).toContainEqual(
        expect.objectContaining({ status: "Enabled", filter: [{ prefix: "contexts/" }], abort_incomplete_multipart_upload: [{ days_after_initiation: 1 }] }),
      );
      // "All objects (including all object versions and delete markers) in the bucket must be
      // deleted before the bucket itself can be deleted"
      // (https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteBucket.html); force_destroy
      // makes the provider empty it first.
      expect(bucket()[1].force_destroy).toBe(true);
    });

    it("is named per stack", () => {
      expect(bucket()[1].bucket_prefix).toBe(`${PROJECT}-contexts-${stack}-`);
    });
  });
});

describe("context sizes", () => {
  it("handler-only contexts are under 10 KB each and smaller than the standalone Lambda's, which carries every package", () => {
    const view = views.prod!;
    const size = (name: string) => {
      const [, object] = view.one("aws_s3_object", (r) => String(r.key).startsWith(`contexts/${name}/`));
      return fs.statSync(path.join(view.dir, object.source as string)).size;
    };
    const standalone = size("create-labels-standalone");
    const sizes = Object.fromEntries(["create-labels", "upload-images", "sync-dynamo"].map((n) => [n, size(n)]));
    console.log(`context archive sizes (bytes): ${JSON.stringify({ ...sizes, "create-labels-standalone": standalone })}`);
    for (const [name, bytes] of Object.entries(sizes)) {
      expect(bytes, name).toBeLessThan(10 * 1024);
      expect(bytes, `${name} vs create-labels-standalone`).toBeLessThan(standalone);
    }
    // The same handler: the only difference is the packages the base image already has.
    expect(standalone).toBeGreaterThan(sizes["create-labels"]!);
  });
});

function expectValidLifecycle(policy: ReturnType<typeof lifecycleOf>): void {
  // Judged by what ECR would do with it (helpers/ecr-lifecycle.ts follows AWS's documented rules:
  // https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html).
  const ecrPolicy = policy as unknown as LifecyclePolicy;
  expect(() => checkPolicy(ecrPolicy)).not.toThrow();
  const builds = (prefix: string, n: number, startDaysAgo: number): PushedImage[] =>
    Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, tags: [`${prefix}${i}`], pushedDaysAgo: startDaysAgo + n - i }));
  const images: PushedImage[] = [
    ...builds("sha-", MAX_IMAGES + 3, 0),
    ...builds("git-", MAX_IMAGES + 1, 20),
    { id: "stable", tags: ["stable", "sha-older"], pushedDaysAgo: 500 },
    { id: "cache", tags: ["cache"], pushedDaysAgo: 500 },
    { id: "untagged-old", tags: [], pushedDaysAgo: MAX_AGE_DAYS + 1 },
    { id: "untagged-new", tags: [], pushedDaysAgo: MAX_AGE_DAYS - 1 },
  ];
  // maxImages of each content-tag kind stay (the stable image still counts toward sha-), the
  // cache and stable images never expire by count, untagged ones after maxAgeDays.
  expect([...expiredImages(ecrPolicy, images)].sort()).toEqual(["git-0", "sha-0", "sha-1", "sha-2", "untagged-old"]);
}

function codebuildRoleId(view: StackView): string {
  const ids = view.all("aws_iam_role").filter(([, r]) => String(r.assume_role_policy).includes("codebuild.amazonaws.com"));
  expect(ids).toHaveLength(1);
  return ids[0]![0];
}

function codebuildPolicy(view: StackView): [string, TfResource] {
  return view.one("aws_iam_role_policy", (p) => p.role === StackView.ref("aws_iam_role", codebuildRoleId(view), "id"));
}
