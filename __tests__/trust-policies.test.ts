import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";
import { resourcesOf, synthExample, type SynthResult, type TfJson, type TfResource } from "./helpers/synth.ts";
import { arnLike } from "./helpers/iam-eval.ts";

/**
 * The roles AWS services assume, and what the CodeBuild role may do. Synthesized from the example
 * (prod: local-exec) and from a variant whose prod stack starts builds with the build starter
 * Lambda, so every role the program creates is looked at.
 */

let copy: ExampleCopy;
let localExec: SynthResult;
let lambdaMode: SynthResult;

beforeAll(async () => {
  copy = copyExample({ prefix: "trust-policies-" });
  localExec = await synthExample(copy.dir, path.join(path.dirname(copy.dir), "out-local-exec"));
  let text = fs.readFileSync(copy.manifest, "utf8");
  for (const [from, to] of [
    ["  prod:\n    region: us-east-1\n", "  prod:\n    region: us-east-1\n    buildTrigger: lambda\n"],
    ["    platforms: [linux/arm64]\n", "    platforms: [linux/arm64]\n    builder: codebuild\n"],
    ["    baseImage: receipt-dynamo\nlambdas:", "    baseImage: receipt-dynamo\n    builder: codebuild\nlambdas:"],
  ] as const) {
    expect(text).toContain(from);
    text = text.replace(from, to);
  }
  fs.writeFileSync(path.join(copy.dir, "lambda-mode.yaml"), text);
  lambdaMode = await synthExample(copy.dir, path.join(path.dirname(copy.dir), "out-lambda"), { manifest: path.join(copy.dir, "lambda-mode.yaml") });
});
afterAll(() => copy.cleanup());

const ACCOUNT = "${data.aws_caller_identity.account.account_id}";
const PARTITION = "${data.aws_partition.partition.partition}";

type Statement = { Effect: string; Principal: { Service: string }; Action: string | string[]; Condition?: Record<string, Record<string, string | string[]>>; Resource?: string | string[] };
const trustOf = (role: TfResource) => JSON.parse(role.assume_role_policy as string).Statement as Statement[];
const roles = (stack: TfJson) => Object.entries(resourcesOf(stack, "aws_iam_role"));

const stacks = () => ({ "dev (local-exec)": localExec.stacks.dev!, "prod (local-exec)": localExec.stacks.prod!, "prod (lambda)": lambdaMode.stacks.prod! });

describe("trust policies", () => {
  // AWS's cross-service confused deputy guidance: a service principal may assume a role only on
  // behalf of the account's own resources, via aws:SourceAccount / aws:SourceArn
  // (https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html).
  it("let each service assume a role only for this account's resources (aws:SourceAccount)", () => {
    for (const [name, stack] of Object.entries(stacks())) {
      expect(roles(stack).length, name).toBeGreaterThan(0);
      for (const [id, role] of roles(stack)) {
        const statements = trustOf(role);
        expect(statements, `${name} ${id}`).toHaveLength(1);
        expect(statements[0]!.Action).toBe("sts:AssumeRole");
        expect(statements[0]!.Condition?.StringEquals, `${name} ${id}`).toEqual({ "aws:SourceAccount": ACCOUNT });
      }
    }
  });

  // CodeBuild documents the service-role trust policy with aws:SourceAccount and, as
  // aws:SourceArn, the project's ARN
  // (https://docs.aws.amazon.com/codebuild/latest/userguide/setting-up-service-role.html).
  it("let CodeBuild assume the build role only for the stack's own projects (aws:SourceArn)", () => {
    for (const [name, stack] of Object.entries(stacks())) {
      const projects = Object.values(resourcesOf(stack, "aws_codebuild_project"));
      const roleRefs = new Set(projects.map((p) => p.service_role as string));
      expect(roleRefs.size, name).toBe(1);
      const [, role] = roles(stack).find(([id]) => roleRefs.has(`\${aws_iam_role.${id}.arn}`))!;
      const [statement] = trustOf(role);
      expect(statement!.Principal).toEqual({ Service: "codebuild.amazonaws.com" });
      // ArnLike takes wildcards (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_ARN):
      // the stack's projects are named by its name pattern, which must reach every one of them and
      // no project of the other stacks.
      const sourceArns = [statement!.Condition?.ArnLike?.["aws:SourceArn"]].flat() as string[];
      const projectArn = (p: TfResource) => `arn:${PARTITION}:codebuild:us-east-1:${ACCOUNT}:project/${p.name}`;
      for (const p of projects) expect(sourceArns.some((a) => arnLike(projectArn(p), a)), `${name} ${p.name}`).toBe(true);
      for (const [otherName, other] of Object.entries(stacks())) {
        if (other === stack || otherName.split(" ")[0] === name.split(" ")[0]) continue;
        for (const p of Object.values(resourcesOf(other, "aws_codebuild_project"))) expect(sourceArns.some((a) => arnLike(projectArn(p), a)), `${name} reaches ${otherName} ${p.name}`).toBe(false);
      }
      expect(JSON.stringify(statement!.Condition?.StringEquals ?? {})).not.toContain("*");
    }
  });

  it("give Lambda functions' roles, the build starter's included, to lambda.amazonaws.com only", () => {
    const functions = Object.values(resourcesOf(lambdaMode.stacks.prod!, "aws_lambda_function"));
    expect(functions.map((f) => f.function_name)).toContain("portfolio-build-starter-prod");
    for (const fn of functions) {
      const [id] = /^\$\{aws_iam_role\.([^.]+)\.arn\}$/.exec(fn.role as string)!.slice(1);
      expect(trustOf(resourcesOf(lambdaMode.stacks.prod!, "aws_iam_role")[id!]!)[0]!.Principal).toEqual({ Service: "lambda.amazonaws.com" });
    }
  });
});

describe("the CodeBuild role's permissions", () => {
  const codebuildStatements = (stack: TfJson) =>
    JSON.parse(Object.values(resourcesOf(stack, "aws_iam_role_policy")).find((p) => p.name === "build-stack-images")!.policy as string).Statement as Statement[];

  // docker push needs exactly these on the repository, pulls BatchGetImage and
  // GetDownloadUrlForLayer (https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-push-iam.html,
  // https://docs.aws.amazon.com/AmazonECR/latest/userguide/security_iam_id-based-policy-examples.html).
  // No build asks whether a tag exists: that is the runner's or the starter's DescribeImages.
  it("holds only the ECR actions a docker push and pull use", () => {
    for (const [name, stack] of Object.entries(stacks())) {
      const ecr = codebuildStatements(stack).flatMap((s) => [s.Action].flat()).filter((a) => a.startsWith("ecr:"));
      expect([...new Set(ecr)].sort(), name).toEqual([
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:CompleteLayerUpload",
        "ecr:GetAuthorizationToken",
        "ecr:GetDownloadUrlForLayer",
        "ecr:InitiateLayerUpload",
        "ecr:PutImage",
        "ecr:UploadLayerPart",
      ]);
    }
  });

  it("leaves ecr:DescribeImages to the build starter, which checks whether a tag exists", () => {
    const starter = JSON.parse(Object.values(resourcesOf(lambdaMode.stacks.prod!, "aws_iam_role_policy")).find((p) => p.name === "start-stack-builds")!.policy as string).Statement as Statement[];
    expect(starter.flatMap((s) => [s.Action].flat())).toContain("ecr:DescribeImages");
  });
});

// CodeBuild renamed its Linux standard image aliases from amazonlinux2-… to amazonlinux-… on
// 2024-11-22 and documents the new names (Amazon Linux 2023 AArch64 standard:3.0):
// https://docs.aws.amazon.com/codebuild/latest/userguide/ec2-compute-images.html
it("builds arm64 images on the documented Amazon Linux 2023 aarch64 image", () => {
  const arm = Object.values(resourcesOf(localExec.stacks.prod!, "aws_codebuild_project")).filter((p) => p.environment.type === "ARM_CONTAINER");
  expect(arm.length).toBeGreaterThan(0);
  for (const project of arm) expect(project.environment.image).toBe("aws/codebuild/amazonlinux-aarch64-standard:3.0");
});
