// The stack's IAM policies against IAM's size quotas and condition semantics, at the scale of a
// large monorepo (100 images in one stack), through the constructs and images.yaml alike.
//
// Quotas: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html ("IAM and
// STS character quotas": role trust policy length 2,048 characters by default, 4,096 at most on
// request; all inline policies of a role together 10,240; IAM does not count white space).
// ArnLike: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_ARN
// (each of the six colon-delimited components of the ARN is checked separately and may hold the
// wildcards * and ?; StringEquals/ArnEquals compare a value literally).
import * as os from "node:os";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { App, Testing, TerraformStack } from "cdktf";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider/index.js";
import { AppImages, BaseImage, ImageBuildEnvironment, ImageConstructsError, LambdaImage } from "../src/index.ts";
import { coverNames, iamPolicyLength, matchesIamPattern } from "../src/constructs/iam.ts";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";
import { arnLike } from "./helpers/iam-eval.ts";
import { synthExample, resourcesOf, type TfJson } from "./helpers/synth.ts";

const QUOTAS = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html";
const TRUST_DEFAULT = 2048;
const INLINE_TOTAL = 10240;

type Statement = { Effect: string; Action: string | string[]; Resource?: string | string[]; Condition?: Record<string, Record<string, string | string[]>> };

/**
 * A policy's length as IAM counts it once Terraform has filled it in: every value Terraform
 * interpolates taken at its longest (account 12 digits, partition aws-us-gov, a 15-character region,
 * a 63-character bucket name), white space not counted. An interpolation not listed fails the test.
 */
function worstCaseLength(policy: string): number {
  const filled = policy
    .replace(/\$\{data\.aws_caller_identity\.[^}]+\.account_id\}/g, "123456789012")
    .replace(/\$\{data\.aws_partition\.[^}]+\.partition\}/g, "aws-us-gov")
    .replace(/\$\{data\.aws_region\.[^}]+\}/g, "us-isof-south-1")
    .replace(/\$\{aws_s3_bucket\.[^}]+\.arn\}/g, `arn:aws-us-gov:s3:::${"b".repeat(63)}`)
    .replace(/\$\{aws_cloudwatch_log_group\.[^}]+\.arn\}/g, `arn:aws-us-gov:logs:us-isof-south-1:123456789012:log-group:${"l".repeat(512)}`);
  expect(filled, "every interpolation is accounted for").not.toMatch(/\$\{/);
  return filled.replace(/\s/g, "").length;
}

const statementsOf = (policy: string) => JSON.parse(policy).Statement as Statement[];
const resourcesIn = (statements: Statement[], sid: string) => [(statements as (Statement & { Sid?: string })[]).find((s) => s.Sid === sid)?.Resource ?? []].flat();

function testApp(cacheDir: string): App {
  const app = Testing.app();
  AppImages.configure(app, { cacheDir, writeSnapshot: false });
  return app;
}

let scratch: string;
let copy: ExampleCopy;
beforeAll(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), "iam-quotas-test-"));
  copy = copyExample({ prefix: "iam-quotas-" });
});
afterAll(() => {
  copy.cleanup();
  fs.rmSync(scratch, { recursive: true, force: true });
});

describe("the pieces", () => {
  it("covers a stack's names with its pattern and lists only the names it does not make", () => {
    const names = ["shop-orders", "shop-base-common", "custom-name", "shop-orders"];
    expect(coverNames(names, ["shop-*"])).toEqual(["shop-*", "custom-name"]);
    expect(coverNames(["custom-name"], ["shop-*"])).toEqual(["custom-name"]);
    expect(coverNames(names, [])).toEqual(["shop-orders", "shop-base-common", "custom-name"]);
  });

  it("counts a policy as IAM does: tokens at their longest value, white space left out", () => {
    const token = "${TfToken[TOKEN.7]}";
    expect(iamPolicyLength(`{ "a": "${token}:x" }`, new Map([[token, "123456789012"]]))).toBe('{"a":"123456789012:x"}'.length);
    // A token of unknown length counts as empty: the check can only under-count.
    expect(iamPolicyLength(`"\${TfToken[TOKEN.9]}"`, new Map())).toBe(2);
  });
});

/** One stack with a multi-platform CodeBuild base and `count` Lambda images built FROM it. */
function bigStack(app: App, stackName: string, count: number, opts: { names?: (i: number) => string; buildTrigger?: "lambda" } = {}): TerraformStack {
  const stack = new TerraformStack(app, stackName);
  new AwsProvider(stack, "aws", { region: "us-east-1" });
  // Names start with the stack's name alone, so two stacks' prefixes can overlap (production, production-eu).
  new ImageBuildEnvironment(stack, "image-builds", { root: copy.dir, namePrefix: stackName, buildTrigger: opts.buildTrigger });
  const base = new BaseImage(stack, "receipt-dynamo", {
    dockerfile: "dockerfiles/Dockerfile.receipt_dynamo",
    packages: ["receipt_dynamo"],
    platforms: ["linux/arm64", "linux/amd64"],
    builder: "codebuild",
  });
  for (let i = 0; i < count; i++) {
    const name = opts.names?.(i);
    new LambdaImage(stack, `handler-${String(i).padStart(3, "0")}-with-a-fairly-long-name`, {
      dockerfile: "infra/sync_dynamo/Dockerfile",
      baseImage: base,
      ...(name ? { repositoryName: name, projectName: name } : {}),
    });
  }
  return stack;
}

describe("100 images in one stack (constructs)", () => {
  let json: TfJson;
  let otherJson: TfJson;
  beforeAll(() => {
    const app = testApp(path.join(scratch, "cache-100"));
    const stack = bigStack(app, "production", 100);
    // Another stack of the App: the patterns may not reach it.
    const other = bigStack(app, "staging", 2);
    json = JSON.parse(Testing.synth(stack));
    otherJson = JSON.parse(Testing.synth(other));
  }, 120_000);

  const codebuildRole = (j: TfJson) => Object.values(resourcesOf(j, "aws_iam_role")).find((r) => String(r.name).endsWith("-image-builds"))!;
  const projectArnsOf = (j: TfJson) =>
    Object.values(resourcesOf(j, "aws_codebuild_project")).map((p) => `arn:aws:codebuild:us-east-1:123456789012:project/${p.name}`);
  const fill = (arn: string) => arn.replace(/\$\{data\.aws_caller_identity\.[^}]+\}/g, "123456789012").replace(/\$\{data\.aws_partition\.[^}]+\}/g, "aws").replace(/\$\{data\.aws_region\.[^}]+\}/g, "us-east-1");

  // Source: QUOTAS.
  it(`keeps the CodeBuild role's trust policy within IAM's default ${TRUST_DEFAULT} characters (${QUOTAS})`, () => {
    expect(Object.values(resourcesOf(json, "aws_codebuild_project"))).toHaveLength(103);
    expect(worstCaseLength(codebuildRole(json).assume_role_policy as string)).toBeLessThanOrEqual(TRUST_DEFAULT);
  });

  it(`keeps the CodeBuild role's inline policy within the role's ${INLINE_TOTAL} characters`, () => {
    const policy = Object.values(resourcesOf(json, "aws_iam_role_policy")).find((p) => p.name === "build-stack-images")!;
    expect(worstCaseLength(policy.policy as string)).toBeLessThanOrEqual(INLINE_TOTAL);
  });

  it("lets CodeBuild assume the role for every one of the stack's projects and for no project of the other stack", () => {
    const [statement] = statementsOf(codebuildRole(json).assume_role_policy as string);
    const patterns = [statement!.Condition!.ArnLike!["aws:SourceArn"]!].flat().map(fill);
    // Wildcards only where IAM evaluates them: under ArnLike, never StringEquals.
    expect(JSON.stringify(statement!.Condition!.StringEquals)).not.toContain("*");
    expect(patterns.length).toBeLessThanOrEqual(2);
    for (const arn of projectArnsOf(json)) expect(patterns.some((p) => arnLike(arn, p)), arn).toBe(true);
    for (const arn of projectArnsOf(otherJson)) expect(patterns.some((p) => arnLike(arn, p)), arn).toBe(false);
  });

  it("grants push on every repository of the stack and on no repository of the other stack", () => {
    const policy = Object.values(resourcesOf(json, "aws_iam_role_policy")).find((p) => p.name === "build-stack-images")!;
    const pushed = resourcesIn(statementsOf(policy.policy as string), "PushOwnImages").map(fill);
    const repoArn = (name: string) => `arn:aws:ecr:us-east-1:123456789012:repository/${name}`;
    for (const r of Object.values(resourcesOf(json, "aws_ecr_repository"))) expect(pushed.some((p) => arnLike(repoArn(r.name), p)), r.name).toBe(true);
    for (const r of Object.values(resourcesOf(otherJson, "aws_ecr_repository"))) expect(pushed.some((p) => arnLike(repoArn(r.name), p)), r.name).toBe(false);
    const logs = resourcesIn(statementsOf(policy.policy as string), "WriteBuildLogs").map(fill);
    for (const g of Object.values(resourcesOf(json, "aws_cloudwatch_log_group")).filter((g) => String(g.name).startsWith("/aws/codebuild/"))) {
      expect(logs.some((p) => arnLike(`arn:aws:logs:us-east-1:123456789012:log-group:${g.name}:log-stream:x`, p)), g.name).toBe(true);
    }
  });
});

describe("100 images in one stack started by the build starter Lambda", () => {
  it(`keeps the starter role's inline policy within ${INLINE_TOTAL} characters, reaching every project`, () => {
    const app = testApp(path.join(scratch, "cache-starter"));
    const json = JSON.parse(Testing.synth(bigStack(app, "production", 100, { buildTrigger: "lambda" })));
    const policy = Object.values(resourcesOf(json, "aws_iam_role_policy")).find((p) => p.name === "start-stack-builds")!;
    expect(worstCaseLength(policy.policy as string)).toBeLessThanOrEqual(INLINE_TOTAL);
    const start = statementsOf(policy.policy as string).find((s) => [s.Action].flat().includes("codebuild:StartBuild"))!;
    const fill = (a: string) => a.replace(/\$\{data\.aws_caller_identity\.[^}]+\}/g, "123456789012").replace(/\$\{data\.aws_partition\.[^}]+\}/g, "aws").replace(/\$\{data\.aws_region\.[^}]+\}/g, "us-east-1");
    for (const p of Object.values(resourcesOf(json, "aws_codebuild_project"))) {
      expect([start.Resource].flat().some((r) => arnLike(`arn:aws:codebuild:us-east-1:123456789012:project/${p.name}`, fill(r!))), p.name).toBe(true);
    }
  }, 120_000);
});

describe("a policy that would not fit is refused at synth", () => {
  it("names the stack, the policy and the quota", () => {
    const app = testApp(path.join(scratch, "cache-custom"));
    // Names set by hand are listed one by one: 60 of them do not fit a 2,048-character trust policy.
    const stack = bigStack(app, "production", 60, { names: (i) => `team-${i}-service` });
    let error: unknown;
    try {
      Testing.synth(stack);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ImageConstructsError);
    const message = (error as Error).message;
    expect(message).toMatch(/production\/image-builds: stack production: the CodeBuild role's trust policy would be up to \d+ characters/);
    expect(message).toContain(`IAM's "Role trust policy length" quota is ${TRUST_DEFAULT}`);
    expect(message).toContain("roleTrustPolicyQuota");
  });

  it("does not use a pattern that reaches another stack's names: production-* would match production-eu-*", () => {
    const app = testApp(path.join(scratch, "cache-overlap"));
    const production = bigStack(app, "production", 3);
    const eu = bigStack(app, "production-eu", 2);
    const trust = (stack: TerraformStack) => {
      const role = Object.values(resourcesOf(JSON.parse(Testing.synth(stack)), "aws_iam_role")).find((r) => String(r.name).endsWith("-image-builds"))!;
      return [statementsOf(role.assume_role_policy as string)[0]!.Condition!.ArnLike!["aws:SourceArn"]!].flat();
    };
    const euProjects = Object.values(resourcesOf(JSON.parse(Testing.synth(eu)), "aws_codebuild_project")).map((p) => p.name as string);
    const productionArns = trust(production);
    expect(productionArns.some((a) => a.includes("*"))).toBe(false);
    for (const name of euProjects) expect(productionArns.some((a) => a.endsWith(`:project/${name}`))).toBe(false);
    // production-eu's own pattern reaches nothing of production's.
    expect(trust(eu).some((a) => a.endsWith(":project/production-eu-*"))).toBe(true);

    // At 100 images the listed names no longer fit, and the error says why and what to do.
    const app2 = testApp(path.join(scratch, "cache-overlap"));
    const big = bigStack(app2, "production", 100);
    bigStack(app2, "production-eu", 1);
    expect(() => Testing.synth(big)).toThrow(/the name pattern production-\* is not used because it also matches names of stack production-eu.*Fix: give the stacks name prefixes neither of which starts with the other/);
  }, 120_000);

  it("keeps its pattern when another stack only pulls one of its base images", () => {
    const app = testApp(path.join(scratch, "cache-cross"));
    const alpha = bigStack(app, "alpha", 2);
    const beta = new TerraformStack(app, "beta");
    new AwsProvider(beta, "aws", { region: "us-east-1" });
    new ImageBuildEnvironment(beta, "image-builds", { root: copy.dir, namePrefix: "beta" });
    const base = alpha.node.findAll().find((c): c is BaseImage => c instanceof BaseImage)!;
    new LambdaImage(beta, "sync", { dockerfile: "infra/sync_dynamo/Dockerfile", baseImage: base });
    const role = Object.values(resourcesOf(JSON.parse(Testing.synth(alpha)), "aws_iam_role")).find((r) => String(r.name).endsWith("-image-builds"))!;
    const arns = [statementsOf(role.assume_role_policy as string)[0]!.Condition!.ArnLike!["aws:SourceArn"]!].flat();
    expect(arns.some((a) => a.endsWith(":project/alpha-*"))).toBe(true);
  }, 60_000);

  it("takes a raised trust policy quota, up to IAM's maximum of 4,096", () => {
    const app = testApp(path.join(scratch, "cache-custom"));
    const stack = new TerraformStack(app, "s");
    new ImageBuildEnvironment(stack, "image-builds", { root: copy.dir, roleTrustPolicyQuota: 5000 });
    expect(() => Testing.synth(stack)).toThrow(/^s\/image-builds: roleTrustPolicyQuota: is 5000; IAM's role trust policy length quota is at most 4096 characters/);
  });
});

describe("images.yaml: a stack named production, multi-platform CodeBuild bases", () => {
  it("names the stack's projects by the manifest's pattern <project>-*-<stack>, derived from its naming function", async () => {
    let text = fs.readFileSync(copy.manifest, "utf8");
    text = text.replace(/^ {2}prod:/m, "  production:").replace(/platforms: \[linux\/arm64\]/g, "platforms: [linux/arm64, linux/amd64]\n    builder: codebuild");
    fs.writeFileSync(path.join(copy.dir, "production.yaml"), text);
    const { stacks } = await synthExample(copy.dir, path.join(scratch, "out-production"), { manifest: path.join(copy.dir, "production.yaml") });
    const stack = stacks.production!;
    const role = Object.values(resourcesOf(stack, "aws_iam_role")).find((r) => String(r.name).endsWith("-image-builds"))!;
    const [statement] = statementsOf(role.assume_role_policy as string);
    const patterns = [statement!.Condition!.ArnLike!["aws:SourceArn"]!].flat();
    // The per-platform projects are named <project>-<arch> from the same names, so their pattern follows.
    const names = patterns.map((p) => p.replace(/^.*:project\//, ""));
    expect(names).toEqual(["portfolio-*-production", "portfolio-*-production-arm64", "portfolio-*-production-amd64"]);
    for (const p of Object.values(resourcesOf(stack, "aws_codebuild_project"))) {
      expect(names.some((n) => matchesIamPattern(p.name as string, n)), p.name).toBe(true);
    }
    expect(worstCaseLength(role.assume_role_policy as string)).toBeLessThanOrEqual(TRUST_DEFAULT);
    // The dev stack of the same manifest is not reached by the pattern.
    for (const p of Object.values(resourcesOf(stacks.dev!, "aws_codebuild_project"))) {
      expect(names.some((n) => matchesIamPattern(p.name as string, n)), p.name).toBe(false);
    }
  }, 120_000);
});
