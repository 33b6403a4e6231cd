import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { iamPolicies, IamError, stackPolicies, TERRAFORM_GRANTS, type IamPolicy, type StackPolicies } from "../src/cli/iam.ts";
import { run, USAGE } from "../src/cli/main.ts";
import { RUNNER_AWS_CALLS } from "../src/runner/core.ts";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";
import { resourcesOf, synthExample, type SynthResult } from "./helpers/synth.ts";

/**
 * `lambda-images iam`: the policies it prints are derived from the synthesized stacks and from
 * the runner's own list of calls; these tests hold them to what the runner really sends and to
 * what the stacks really contain.
 */

const RUNNER_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../src/runner");
/** IAM service prefix of each AWS SDK v3 client package the runner imports. */
const SERVICE_PREFIX: Record<string, string> = { "client-codebuild": "codebuild", "client-ecr": "ecr", "client-cloudwatch-logs": "logs" };

/** `service:Operation` of every `new …Command(` in the runner's sources, from the package each command is imported from. */
function runnerSdkCalls(): string[] {
  const calls = new Set<string>();
  for (const file of fs.readdirSync(RUNNER_DIR).filter((f) => f.endsWith(".ts"))) {
    const text = fs.readFileSync(path.join(RUNNER_DIR, file), "utf8");
    for (const [, command] of text.matchAll(/new (\w+)Command\(/g)) {
      const from = [...text.matchAll(/import\s*\{([^}]*)\}\s*from\s*"@aws-sdk\/([^"]+)"/g)].find(([, names]) => new RegExp(`\\b${command}Command\\b`).test(names!));
      if (!from) throw new Error(`${file}: ${command}Command is not imported from an @aws-sdk client`);
      const prefix = SERVICE_PREFIX[from[2]!];
      if (!prefix) throw new Error(`${file}: no IAM prefix known for @aws-sdk/${from[2]}`);
      calls.add(`${prefix}:${command}`);
    }
  }
  return [...calls].sort();
}

const actionsOf = (policy: IamPolicy) => [...new Set(policy.Statement.flatMap((s) => s.Action))].sort();
const resourcesFor = (policy: IamPolicy, action: string) => policy.Statement.filter((s) => s.Action.includes(action)).flatMap((s) => [s.Resource].flat()).sort();

let copy: ExampleCopy;
let example: Record<string, StackPolicies>;
let lambdaMode: Record<string, StackPolicies>;
let synth: SynthResult;
let lambdaSynth: SynthResult;
let lambdaManifest: string;

beforeAll(async () => {
  copy = copyExample({ prefix: "iam-command-" });
  example = iamPolicies(copy.manifest, { account: "123456789012" });
  synth = await synthExample(copy.dir, path.join(path.dirname(copy.dir), "out"));
  let text = fs.readFileSync(copy.manifest, "utf8");
  for (const [from, to] of [
    ["  prod:\n    region: us-east-1\n", "  prod:\n    region: us-east-1\n    buildTrigger: lambda\n"],
    ["  dev:\n    region: us-east-1\n", "  dev:\n    region: us-east-1\n    backend:\n      s3: { bucket: acme-tfstate, key: images/dev.tfstate, region: eu-west-1, dynamodbTable: tf-locks }\n"],
    ["    platforms: [linux/arm64]\n", "    platforms: [linux/arm64]\n    builder: codebuild\n"],
    ["    baseImage: receipt-dynamo\nlambdas:", "    baseImage: receipt-dynamo\n    builder: codebuild\nlambdas:"],
  ] as const) {
    expect(text).toContain(from);
    text = text.replace(from, to);
  }
  lambdaManifest = path.join(copy.dir, "lambda-mode.yaml");
  fs.writeFileSync(lambdaManifest, text);
  lambdaMode = iamPolicies(lambdaManifest, { account: "123456789012" });
  lambdaSynth = await synthExample(copy.dir, path.join(path.dirname(copy.dir), "out-lambda"), { manifest: lambdaManifest });
});
afterAll(() => copy.cleanup());

describe("the runner's policy", () => {
  it("lists every AWS SDK command the runner sends, and nothing else", () => {
    const sent = runnerSdkCalls();
    expect(sent.length).toBeGreaterThan(0);
    expect(RUNNER_AWS_CALLS.map((c) => c.action).sort()).toEqual(sent);
    for (const stack of ["dev", "prod"]) expect(actionsOf(example[stack]!.runner!), stack).toEqual(sent);
  });

  // Each action is scoped to the resource type the Service Authorization Reference gives it:
  // CodeBuild build actions to the project
  // (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awscodebuild.html),
  // DescribeImages to the repository
  // (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerregistry.html),
  // GetLogEvents to the log group's streams
  // (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatchlogs.html).
  it("names exactly the stack's CodeBuild projects, the repositories they push to and their build log groups", () => {
    const prod = synth.stacks.prod!;
    const projects = Object.values(resourcesOf(prod, "aws_codebuild_project"));
    const arn = (service: string, resource: string) => `arn:aws:${service}:us-east-1:123456789012:${resource}`;
    const runner = example.prod!.runner!;
    expect(resourcesFor(runner, "codebuild:StartBuild")).toEqual(projects.map((p) => arn("codebuild", `project/${p.name}`)).sort());
    expect(resourcesFor(runner, "logs:GetLogEvents")).toEqual(projects.map((p) => arn("logs", `log-group:/aws/codebuild/${p.name}:*`)).sort());
    const pushed = projects.map((p) => {
      const uri = (p.environment.environment_variable as { name: string; value: string }[]).find((v) => v.name === "REPOSITORY_URI")!.value;
      const id = /aws_ecr_repository\.([^.]+)\./.exec(uri)![1]!;
      return arn("ecr", `repository/${resourcesOf(prod, "aws_ecr_repository")[id]!.name}`);
    });
    expect(resourcesFor(runner, "ecr:DescribeImages")).toEqual(pushed.sort());
  });

  it("is what the build starter's role allows in a lambda stack (the starter runs the same core), which then needs no runner policy", () => {
    expect(lambdaMode.prod!.runner).toBeUndefined();
    const starter = Object.values(resourcesOf(lambdaSynth.stacks.prod!, "aws_iam_role_policy")).find((p) => p.name === "start-stack-builds")!;
    const allowed = (JSON.parse(starter.policy as string).Statement as { Action: string | string[] }[]).flatMap((st) => [st.Action].flat());
    for (const call of RUNNER_AWS_CALLS) expect(allowed).toContain(call.action);
  });
});

describe("the Terraform policy", () => {
  it("has an entry for every resource and data source type of every stack, local-exec or lambda, Docker- or CodeBuild-built bases", () => {
    const types = new Set<string>();
    for (const result of [synth, lambdaSynth]) {
      for (const stack of Object.values(result.stacks)) {
        Object.keys(stack.resource ?? {}).forEach((t) => types.add(t));
        Object.keys(stack.data ?? {}).forEach((t) => types.add(`data.${t}`));
      }
    }
    expect(types).toContain("docker_registry_image");
    expect(types).toContain("aws_lambda_invocation");
    expect([...types].filter((t) => !(t in TERRAFORM_GRANTS))).toEqual([]);
  });

  it("lets a lambda stack invoke only its build starter, and reach its S3 state and lock table", () => {
    expect(resourcesFor(lambdaMode.prod!.terraform, "lambda:InvokeFunction")).toEqual(["arn:aws:lambda:us-east-1:123456789012:function:portfolio-build-starter-prod"]);
    expect(resourcesFor(example.prod!.terraform, "lambda:InvokeFunction")).toEqual([]);
    const dev = lambdaMode.dev!.terraform;
    expect(resourcesFor(dev, "s3:PutObject")).toContain("arn:aws:s3:::acme-tfstate/images/dev.tfstate");
    expect(resourcesFor(dev, "dynamodb:PutItem")).toEqual(["arn:aws:dynamodb:eu-west-1:123456789012:table/tf-locks"]);
  });

  it("passes only the stack's own roles, and uses Resource \"*\" only for the registry token", () => {
    for (const [name, policies] of Object.entries(example)) {
      const roles = Object.values(resourcesOf(synth.stacks[name]!, "aws_iam_role")).map((r) => `arn:aws:iam::123456789012:role/${r.name}`).sort();
      expect(resourcesFor(policies.terraform, "iam:PassRole"), name).toEqual(roles);
      const star = policies.terraform.Statement.filter((s) => s.Resource === "*");
      expect(star.flatMap((s) => s.Action), name).toEqual(["ecr:GetAuthorizationToken"]);
      for (const s of policies.terraform.Statement) for (const a of s.Action) expect(a, name).not.toContain("*");
    }
  });

  it("refuses a resource type it has no entry for, in one line naming the type and the fix", () => {
    const stack = { resource: { aws_sqs_queue: { q: { name: "q" } } } };
    expect(() => stackPolicies("prod", stack, { region: "us-east-1", account: "*", buildTrigger: "local-exec" })).toThrow(IamError);
    expect(() => stackPolicies("prod", stack, { region: "us-east-1", account: "*", buildTrigger: "local-exec" })).toThrow(
      "lambda-images iam: stack prod: the IAM table has no entry for aws_sqs_queue. Fix: add what the provider calls for aws_sqs_queue to TERRAFORM_GRANTS in src/cli/iam.ts",
    );
  });
});

describe("lambda-images iam", () => {
  const io = () => {
    let out = "";
    let err = "";
    return { io: { out: { write: (t: string) => (out += t) }, err: { write: (t: string) => (err += t) }, cwd: copy.dir }, text: () => ({ out, err }) };
  };

  it("prints one stack's policies as JSON with --stack, and is in the usage text", async () => {
    const { io: streams, text } = io();
    expect(await run(["iam", "--stack", "prod", "--manifest", copy.manifest, "--account", "123456789012"], streams)).toBe(0);
    expect(JSON.parse(text().out)).toEqual(JSON.parse(JSON.stringify(example.prod)));
    expect(USAGE).toContain("lambda-images iam [--stack NAME] [--account ID] [--manifest FILE]");
  });

  it("names the stacks there are when --stack names none", async () => {
    const { io: streams } = io();
    await expect(run(["iam", "--stack", "staging", "--manifest", copy.manifest], streams)).rejects.toThrow(
      "lambda-images iam: --stack staging: no such stack in the manifest. Fix: use one of dev, prod",
    );
  });
});
