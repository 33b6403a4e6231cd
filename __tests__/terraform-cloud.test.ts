// Terraform Cloud support: state backends and `buildTrigger: lambda`, synthesized from temporary
// copies of the example. The Lambda handler itself is tested in build-starter.test.ts.
import { BUILD_STARTER_RUNTIME } from "../src/runner/runtime.ts";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";
import { resourcesOf, synthExample, type SynthResult, type TfJson } from "./helpers/synth.ts";
import { allows, type PolicyStatement } from "./helpers/iam-eval.ts";
import { loadManifest } from "../src/manifest/load.ts";
import { ManifestError } from "../src/manifest/errors.ts";

/** The example with both base images built in CodeBuild, so both trigger modes build the same set. */
function writeVariant(copy: ExampleCopy, prod: string, dev: string): void {
  let text = fs.readFileSync(copy.manifest, "utf8");
  text = text.replace("  dev:\n    region: us-east-1\n", `  dev:\n    region: us-east-1\n${dev}`);
  text = text.replace("  prod:\n    region: us-east-1\n", `  prod:\n    region: us-east-1\n${prod}`);
  text = text.replace("    platforms: [linux/arm64]\n", "    platforms: [linux/arm64]\n    builder: codebuild\n");
  text = text.replace("    baseImage: receipt-dynamo\nlambdas:", "    baseImage: receipt-dynamo\n    builder: codebuild\nlambdas:");
  fs.writeFileSync(copy.manifest, text);
}

const LAMBDA_MODE =
  "    buildTrigger: lambda\n    backend:\n      cloud: { organization: acme, workspace: images-prod }\n";
const S3_BACKEND =
  "    backend:\n      s3: { bucket: acme-tfstate, key: images/dev.tfstate, region: us-east-1, dynamodbTable: tf-locks }\n";

/** Build-trigger resources of a stack by construct path, with the values that decide a rebuild. */
function buildTriggers(stack: TfJson): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const r of Object.values(resourcesOf(stack, "terraform_data"))) out[r["//"].metadata.path] = r.triggers_replace;
  for (const r of Object.values(resourcesOf(stack, "aws_lambda_invocation"))) out[r["//"].metadata.path] = r.triggers;
  return out;
}

function changedTriggers(before: TfJson, after: TfJson): string[] {
  const a = buildTriggers(before);
  const b = buildTriggers(after);
  return Object.keys(b)
    .filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]))
    .map((k) => k.replace(/^[^/]+\//, "").replace(/\/trigger\/build$/, ""))
    .sort();
}

describe("buildTrigger: lambda and state backends", () => {
  let copy: ExampleCopy;
  let first: SynthResult;
  let afterHandlerEdit: SynthResult;
  let afterPackageEdit: SynthResult;

  beforeAll(async () => {
    copy = copyExample({ prefix: "tfc-" });
    writeVariant(copy, LAMBDA_MODE, S3_BACKEND);
    first = await synthExample(copy.dir, path.join(copy.dir, "..", "out-1"));
    fs.appendFileSync(copy.file("infra/upload_images/handler/naming.py"), "\n# edited\n");
    afterHandlerEdit = await synthExample(copy.dir, path.join(copy.dir, "..", "out-2"));
    fs.appendFileSync(copy.file("receipt_dynamo/receipt_dynamo/models.py"), "\n# edited\n");
    afterPackageEdit = await synthExample(copy.dir, path.join(copy.dir, "..", "out-3"));
  }, 120_000);
  afterAll(() => copy?.cleanup());

  it("writes the cloud block for Terraform Cloud and an encrypted S3 backend with locking", () => {
    expect(first.stacks.prod!.terraform.cloud).toEqual({ organization: "acme", workspaces: { name: "images-prod" } });
    expect(first.stacks.dev!.terraform.backend).toEqual({
      s3: { bucket: "acme-tfstate", key: "images/dev.tfstate", region: "us-east-1", dynamodb_table: "tf-locks", encrypt: true },
    });
  });

  it("starts every build with an aws_lambda_invocation, never local-exec, in lambda mode", () => {
    const prod = first.stacks.prod!;
    expect(Object.keys(resourcesOf(prod, "terraform_data"))).toEqual([]);
    // Nothing runs on the Terraform host, so the CLI runner is not shipped with the stack.
    expect(fs.existsSync(path.join(first.outdir, "stacks", "prod", "assets", "runner"))).toBe(false);
    expect(fs.existsSync(path.join(first.outdir, "stacks", "dev", "assets", "runner"))).toBe(true);
    const invocations = Object.values(resourcesOf(prod, "aws_lambda_invocation"));
    expect(invocations).toHaveLength(6); // 2 bases + 4 Lambdas
    for (const invocation of invocations) {
      expect(invocation.function_name).toMatch(/^\$\{aws_lambda_function\.build-starter_function_\w+\.function_name\}$/);
      const input = JSON.parse(invocation.input);
      expect(Object.keys(input).sort()).toEqual(expect.arrayContaining(["imageTag", "projectName", "repositoryUri", "sourceLocation"]));
      expect(input.imageTag).toMatch(/^sha-[0-9a-f]{12}$/);
      expect(Object.keys(invocation.triggers).sort()).toEqual(["base_image_uri", "buildspec_hash", "content_hash"]);
    }
    const createLabels = invocations.find((i) => i["//"].metadata.path === "prod/lambda-create-labels/trigger/build")!;
    expect(JSON.parse(createLabels.input).baseImageUri).toMatch(/base_receipt-label_repository_\w+\.repository_url\}:sha-[0-9a-f]{12}$/);
    expect(createLabels.depends_on).toEqual(expect.arrayContaining([expect.stringMatching(/^aws_lambda_invocation\.base_receipt-label_trigger_build_/)]));
  });

  it("holds the same trigger values in both modes", () => {
    const lambdaMode = buildTriggers(first.stacks.prod!);
    const localExec = buildTriggers(first.stacks.dev!);
    // dev tags bases by content too here (no useStaticBaseImage change), so only the stack name differs.
    const strip = (t: Record<string, unknown>) =>
      Object.fromEntries(
        Object.entries(t).map(([k, v]) => [k.replace(/^\w+\//, ""), { ...(v as object), base_image_uri: undefined }]),
      );
    const contentOnly = (t: Record<string, unknown>) => JSON.parse(JSON.stringify(strip(t)));
    expect(Object.keys(localExec).length).toBe(6);
    expect(contentOnly(lambdaMode)).toEqual(contentOnly(localExec));
  });

  it("rebuilds the same images in lambda mode as in local-exec mode", () => {
    const handlerLambda = changedTriggers(first.stacks.prod!, afterHandlerEdit.stacks.prod!);
    const handlerLocal = changedTriggers(first.stacks.dev!, afterHandlerEdit.stacks.dev!);
    expect(handlerLambda).toEqual(["lambda-upload-images"]);
    expect(handlerLocal).toEqual(handlerLambda);

    const packageLambda = changedTriggers(afterHandlerEdit.stacks.prod!, afterPackageEdit.stacks.prod!);
    const packageLocal = changedTriggers(afterHandlerEdit.stacks.dev!, afterPackageEdit.stacks.dev!);
    expect(packageLambda).toEqual([
      "base/receipt-dynamo",
      "base/receipt-label",
      "lambda-create-labels",
      "lambda-create-labels-standalone",
      "lambda-sync-dynamo",
      "lambda-upload-images",
    ]);
    expect(packageLocal).toEqual(packageLambda);
  });

  it("deploys the build starter from a deterministic zip whose hash Terraform checks", () => {
    const prod = first.stacks.prod!;
    const starter = Object.values(resourcesOf(prod, "aws_lambda_function")).find((f) => f.function_name === "portfolio-build-starter-prod")!;
    expect(starter).toMatchObject({ runtime: BUILD_STARTER_RUNTIME, handler: "index.handler", timeout: 900 });
    const zip = fs.readFileSync(path.join(first.outdir, "stacks", "prod", starter.filename));
    expect(starter.source_code_hash).toBe(createHash("sha256").update(zip).digest("base64"));
    const again = fs.readFileSync(path.join(afterPackageEdit.outdir, "stacks", "prod", starter.filename));
    expect(again.equals(zip)).toBe(true);
    // local-exec stacks carry no starter.
    expect(Object.values(resourcesOf(first.stacks.dev!, "aws_lambda_function")).map((f) => f.function_name)).not.toContain(
      "portfolio-build-starter-dev",
    );
  });

  it("lets the build starter touch only the stack's projects, repositories and build logs", () => {
    const prod = first.stacks.prod!;
    const policy = Object.values(resourcesOf(prod, "aws_iam_role_policy")).find((p) => p.name === "start-stack-builds")!;
    const statements = JSON.parse(policy.policy).Statement as (PolicyStatement & { Action: string | string[]; Resource: string | string[] })[];
    const byAction = new Map(statements.flatMap((s) => [s.Action].flat().map((a) => [a, [s.Resource].flat()] as const)));
    expect([...byAction.keys()].sort()).toEqual([
      "codebuild:BatchGetBuilds",
      "codebuild:ListBuildsForProject",
      "codebuild:StartBuild",
      "codebuild:StopBuild",
      "ecr:DescribeImages",
      "logs:CreateLogStream",
      "logs:GetLogEvents",
      "logs:PutLogEvents",
    ]);
    for (const resources of byAction.values()) expect(resources).not.toContain("*");
    // The stack's names are covered by its name pattern (<project>-*-<stack>, iam-quotas.test.ts):
    // what counts is what the policy allows, judged as IAM does (helpers/iam-eval.ts).
    const arn = (service: string, resource: string) =>
      `arn:\${data.aws_partition.partition.partition}:${service}:us-east-1:\${data.aws_caller_identity.account.account_id}:${resource}`;
    const names = (stack: TfJson, type: string) => Object.values(resourcesOf(stack, type)).map((r) => r.name as string);
    const expectedProjects = [
      "portfolio-base-receipt-dynamo-prod",
      "portfolio-base-receipt-label-prod",
      "portfolio-create-labels-prod",
      "portfolio-create-labels-standalone-prod",
      "portfolio-sync-dynamo-prod",
      "portfolio-upload-images-prod",
    ];
    expect(names(prod, "aws_codebuild_project").sort()).toEqual(expectedProjects);
    for (const name of expectedProjects) {
      expect(allows(statements, "codebuild:StartBuild", arn("codebuild", `project/${name}`)), name).toBe(true);
      expect(allows(statements, "ecr:DescribeImages", arn("ecr", `repository/${name}`)), name).toBe(true);
      expect(allows(statements, "logs:GetLogEvents", arn("logs", `log-group:/aws/codebuild/${name}:log-stream:b`)), name).toBe(true);
    }
    for (const name of names(first.stacks.dev!, "aws_codebuild_project")) {
      expect(allows(statements, "codebuild:StartBuild", arn("codebuild", `project/${name}`)), `dev's ${name}`).toBe(false);
    }
    for (const name of names(first.stacks.dev!, "aws_ecr_repository")) {
      expect(allows(statements, "ecr:DescribeImages", arn("ecr", `repository/${name}`)), `dev's ${name}`).toBe(false);
    }
  });

  it("rejects a lambda-mode stack with a Docker-built base image, saying to use builder: codebuild", () => {
    const bad = copyExample({ prefix: "tfc-bad-" });
    try {
      const text = fs.readFileSync(bad.manifest, "utf8").replace("  prod:\n    region: us-east-1\n", `  prod:\n    region: us-east-1\n${LAMBDA_MODE}`);
      fs.writeFileSync(bad.manifest, text);
      let error: unknown;
      try {
        loadManifest(bad.manifest);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ManifestError);
      const message = (error as Error).message;
      expect(message).toMatch(/images\.yaml:\d+: stacks\.prod\.buildTrigger: .*base image receipt-dynamo uses builder: docker/);
      expect(message).toContain("Fix: set builder: codebuild on baseImages.receipt-dynamo");
    } finally {
      bad.cleanup();
    }
  });
});
