import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";
import { synthExample, type SynthResult, type TfResource } from "./helpers/synth.ts";
import { arnLike } from "./helpers/iam-eval.ts";

/**
 * A multi-platform CodeBuild-built base in a `buildTrigger: lambda` stack (Terraform Cloud): the
 * build starter starts each platform's project and the join project, so its role must allow
 * codebuild:StartBuild on each of them; CodeBuild authorizes StartBuild against the project's ARN
 * (https://docs.aws.amazon.com/codebuild/latest/userguide/auth-and-access-control-permissions-reference.html).
 */
let copy: ExampleCopy;
let synth: SynthResult;
beforeAll(async () => {
  copy = copyExample({ prefix: "multi-platform-lambda-" });
  let text = fs.readFileSync(copy.manifest, "utf8");
  for (const [from, to] of [
    ["    packages: [receipt_dynamo]\n    platforms: [linux/arm64]\n", "    packages: [receipt_dynamo]\n    builder: codebuild\n    platforms: [linux/arm64, linux/amd64]\n"],
    ["    baseImage: receipt-dynamo\nlambdas:", "    baseImage: receipt-dynamo\n    builder: codebuild\nlambdas:"],
    ["  prod:\n    region: us-east-1\n", "  prod:\n    region: us-east-1\n    buildTrigger: lambda\n"],
  ] as const) {
    if (!text.includes(from)) throw new Error(`the example manifest no longer contains ${JSON.stringify(from)}`);
    text = text.replace(from, to);
  }
  const manifest = path.join(copy.dir, "multi-platform-lambda.yaml");
  fs.writeFileSync(manifest, text);
  synth = await synthExample(copy.dir, path.join(path.dirname(copy.dir), "out-multi-platform-lambda"), { manifest });
});
afterAll(() => copy.cleanup());

it("the build starter is invoked for each platform's build and the join, and may start all three projects", () => {
  const stack = synth.stacks.prod! as { resource: Record<string, Record<string, TfResource>> };
  const hash = synth.analysis.image("receipt-dynamo", "base").hash;
  const tag = `sha-${hash.slice(0, 12)}`;
  const invocations = Object.values(stack.resource.aws_lambda_invocation ?? {}).map((r) => JSON.parse(r.input as string) as { projectName: string; imageTag: string });
  const projects = new Map(Object.entries(stack.resource.aws_codebuild_project!).map(([id, p]) => [`\${aws_codebuild_project.${id}.name}`, p.name as string]));
  const dynamo = invocations.filter((i) => i.imageTag.endsWith(tag)).map((i) => `${projects.get(i.projectName)} ${i.imageTag}`).sort();
  expect(dynamo).toEqual([
    `portfolio-base-receipt-dynamo-prod ${tag}`,
    `portfolio-base-receipt-dynamo-prod-amd64 amd64-${tag}`,
    `portfolio-base-receipt-dynamo-prod-arm64 arm64-${tag}`,
  ]);
  const startable = Object.values(stack.resource.aws_iam_role_policy!)
    .map((p) => JSON.parse(p.policy as string) as { Statement: { Action: string | string[]; Resource: string | string[] }[] })
    .flatMap((p) => p.Statement)
    .filter((s) => [s.Action].flat().includes("codebuild:StartBuild"))
    .flatMap((s) => [s.Resource].flat());
  for (const name of ["portfolio-base-receipt-dynamo-prod", "portfolio-base-receipt-dynamo-prod-arm64", "portfolio-base-receipt-dynamo-prod-amd64"]) {
    // The stack's projects are named by pattern (<project>-*-<stack>, and -<arch> for per-platform ones).
    expect(startable.some((r) => arnLike(`arn:aws:codebuild:us-east-1:123456789012:project/${name}`, r.replace(/\$\{[^}]+\}/g, "*"))), name).toBe(true);
  }
});
