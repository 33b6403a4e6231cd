// The constructs in the shapes real CDKTF projects have: stacks sharing a base image, names that
// must not collide in one account, two projects' `dev` stacks side by side, an app in `infra/` of
// a monorepo, the whole set of Lambda settings, a Docker provider of the user's, and every
// problem of an App reported at once before anything is written.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { App, TerraformOutput, TerraformStack, Testing } from "cdktf";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider/index.js";
import { DockerProvider } from "@cdktf/provider-docker/lib/provider/index.js";
import { AppImages, BaseImage, ImageBuildEnvironment, ImageConstructsError, LambdaImage, LambdaImageFunction } from "../src/index.ts";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";
import { dependsOnProblems } from "./helpers/depends-on.ts";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

let copy: ExampleCopy;
let scratch: string;
beforeAll(() => {
  copy = copyExample({ prefix: "real-projects-" });
  scratch = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "real-projects-")));
});
afterAll(() => {
  copy.cleanup();
  fs.rmSync(scratch, { recursive: true, force: true });
});

function newApp(outdir = fs.mkdtempSync(path.join(scratch, "out-"))): App {
  const app = new App({ outdir, skipValidation: true });
  AppImages.configure(app, { cacheDir: path.join(scratch, "cache"), writeSnapshot: false });
  return app;
}

function stackIn(app: App, id: string, options: { project?: string; region?: string } = {}): TerraformStack {
  const stack = new TerraformStack(app, id);
  new AwsProvider(stack, "aws", { region: options.region ?? "us-east-1" });
  new ImageBuildEnvironment(stack, "image-builds", { root: copy.dir, project: options.project ?? "shop" });
  return stack;
}

const dynamoBase = (stack: TerraformStack, id = "dynamo") => new BaseImage(stack, id, { dockerfile: "dockerfiles/Dockerfile.receipt_dynamo", packages: ["receipt_dynamo"], builder: "codebuild" });
const syncImage = (stack: TerraformStack, id: string, props: Partial<ConstructorParameters<typeof LambdaImage>[2]> = {}) =>
  new LambdaImage(stack, id, { dockerfile: "infra/sync_dynamo/Dockerfile", ...props });

function synthError(app: App): ImageConstructsError {
  try {
    app.synth();
  } catch (error) {
    if (error instanceof ImageConstructsError) return error;
    throw error;
  }
  throw new Error("expected the App to be refused");
}

function stackJson(app: App, stack: string): Json {
  return JSON.parse(fs.readFileSync(path.join(app.outdir, "stacks", stack, "cdk.tf.json"), "utf8")) as Json;
}


describe("a base image shared across the stacks of one App", () => {
  it("a Lambda in stack B built FROM a base in stack A gets valid depends_on, the base's URI through cdktf's cross-stack outputs, and the base's hash", () => {
    const app = newApp();
    const shared = stackIn(app, "shared");
    const base = dynamoBase(shared);
    const services = stackIn(app, "services");
    const image = syncImage(services, "sync", { baseImage: base });
    new LambdaImageFunction(services, "sync-fn", { image });
    app.synth();

    const servicesJson = stackJson(app, "services");
    expect(dependsOnProblems(servicesJson)).toEqual([]);
    expect(dependsOnProblems(stackJson(app, "shared"))).toEqual([]);
    // The base image's URI reaches the build through the remote state of the shared stack.
    const trigger = Object.values(servicesJson.resource.terraform_data as Json)[0] as Json;
    expect(trigger.triggers_replace.base_image_uri).toMatch(/^\$\{data\.terraform_remote_state\.[^}]+\}:sha-[0-9a-f]{12}$/);
    expect(servicesJson.data.terraform_remote_state).toBeDefined();
  });

  it("a base package change changes the Lambda image's hash in the other stack", () => {
    const hashes = () => {
      const app = newApp();
      const base = dynamoBase(stackIn(app, "shared"));
      return { base: base.hash, lambda: syncImage(stackIn(app, "services"), "sync", { baseImage: base }).hash };
    };
    const before = hashes();
    const file = copy.file("receipt_dynamo/receipt_dynamo/models.py");
    const text = fs.readFileSync(file, "utf8");
    fs.writeFileSync(file, `${text}\n# changed\n`);
    try {
      const after = hashes();
      expect(after.base).not.toBe(before.base);
      expect(after.lambda).not.toBe(before.lambda);
    } finally {
      fs.writeFileSync(file, text);
    }
  });

  it("a base image from another App is refused, naming both constructs", () => {
    const other = newApp();
    const base = dynamoBase(stackIn(other, "shared"));
    const app = newApp();
    syncImage(stackIn(app, "services"), "sync", { baseImage: base });
    const error = synthError(app);
    expect(error.message).toBe("services/sync: baseImage: shared/dynamo belongs to another cdktf App, whose stacks this App never synthesizes or deploys. Fix: define the base image in this App (a base image can be shared by the stacks of one App)");
  });
});

describe("AWS names that would collide in one account are refused before anything is written", () => {
  const outdirUntouched = (app: App) => {
    fs.mkdirSync(path.join(app.outdir, "stacks", "prod"), { recursive: true });
    fs.writeFileSync(path.join(app.outdir, "stacks", "prod", "cdk.tf.json"), "previous synth");
    const before = fs.readdirSync(app.outdir, { recursive: true }).sort();
    return () => {
      expect(fs.readdirSync(app.outdir, { recursive: true }).sort()).toEqual(before);
      expect(fs.readFileSync(path.join(app.outdir, "stacks", "prod", "cdk.tf.json"), "utf8")).toBe("previous synth");
    };
  };

  it("construct ids `ingest` and `Ingest`: the repository, project, log group and S3 key collide, and both paths are named", () => {
    const app = newApp();
    const check = outdirUntouched(app);
    const stack = stackIn(app, "prod");
    syncImage(stack, "ingest");
    syncImage(stack, "Ingest");
    const error = synthError(app);
    const lines = error.message.split("\n");
    expect(lines).toContain(
      'prod/Ingest: name: ECR repository name "shop-prod-ingest" is also used by prod/ingest; both would be created in one account and region, and the second fails half-way through the apply. Fix: give one of them another name (its name prop or a different construct id, or another namePrefix on its ImageBuildEnvironment)',
    );
    expect(lines.some((l) => l.startsWith('prod/Ingest: projectName: CodeBuild project name "shop-prod-ingest" is also used by prod/ingest'))).toBe(true);
    expect(lines.some((l) => l.startsWith('prod/Ingest: projectName: CloudWatch log group name "/aws/codebuild/shop-prod-ingest" is also used by prod/ingest'))).toBe(true);
    expect(lines.some((l) => /^prod\/Ingest: name: S3 object name "contexts\/ingest\/[0-9a-f]{64}\.zip" is also used by prod\/ingest/.test(l))).toBe(true);
    check();
  });

  it("`name` on a second image, and two functions of one name in stacks of one region", () => {
    const app = newApp();
    const check = outdirUntouched(app);
    const a = stackIn(app, "a", { project: "shop" });
    const b = stackIn(app, "b", { project: "shop" });
    syncImage(a, "ingest");
    const second = syncImage(a, "loader", { name: "ingest" });
    new LambdaImageFunction(a, "fn", { image: second, functionName: "shop-ingest" });
    new LambdaImageFunction(b, "fn", { image: syncImage(b, "other"), functionName: "shop-ingest" });
    const lines = synthError(app).message.split("\n");
    expect(lines.some((l) => l.startsWith('a/loader: name: ECR repository name "shop-a-ingest" is also used by a/ingest'))).toBe(true);
    expect(lines.some((l) => l.startsWith('b/fn: functionName: Lambda function name "shop-ingest" is also used by a/fn'))).toBe(true);
    expect(lines.some((l) => l.startsWith('b/fn: functionName: IAM role name "shop-ingest-exec" is also used by a/fn; both would be created in one account,'))).toBe(true);
    check();
  });

  it("the same names in two regions are fine, except IAM roles, which are global", () => {
    const app = newApp();
    const east = stackIn(app, "east", { region: "us-east-1" });
    const west = stackIn(app, "west", { region: "us-west-2" });
    new LambdaImageFunction(east, "fn", { image: syncImage(east, "ingest", { repositoryName: "ingest", projectName: "ingest" }), functionName: "ingest" });
    new LambdaImageFunction(west, "fn", { image: syncImage(west, "ingest", { repositoryName: "ingest", projectName: "ingest" }), functionName: "ingest" });
    expect(synthError(app).message.split("\n")).toEqual([expect.stringMatching(/^west\/fn: functionName: IAM role name "ingest-exec" is also used by east\/fn/)]);
  });

  it("two projects' `dev` stacks in one account get different names", () => {
    const names = (project: string) => {
      const app = newApp();
      const stack = stackIn(app, "dev", { project });
      new LambdaImageFunction(stack, "fn", { image: syncImage(stack, "ingest") });
      app.synth();
      const json = stackJson(app, "dev");
      return [
        ...Object.values(json.resource.aws_ecr_repository as Json).map((r) => (r as Json).name as string),
        ...Object.values(json.resource.aws_iam_role as Json).map((r) => (r as Json).name as string),
        ...Object.values(json.resource.aws_lambda_function as Json).map((r) => (r as Json).function_name as string),
      ];
    };
    const shop = names("shop");
    const blog = names("blog");
    expect(shop).toEqual(expect.arrayContaining(["shop-dev-ingest", "shop-dev-image-builds", "shop-dev-fn", "shop-dev-fn-exec"]));
    expect(shop.filter((n) => blog.includes(n))).toEqual([]);
  });
});

describe("every problem of the App at once, one line each, no stack trace", () => {
  it("problems in three constructs of two stacks come in one error, in the order they were defined", () => {
    const app = newApp();
    const a = stackIn(app, "a");
    syncImage(a, "missing", { dockerfile: "nope/Dockerfile" });
    const ok = syncImage(a, "ok");
    new LambdaImageFunction(a, "fn", { image: ok, memorySize: 64 });
    const b = stackIn(app, "b");
    syncImage(b, "arch", { platform: "linux/s390x" as never });
    const error = synthError(app);
    expect(error.message.split("\n").map((l) => l.slice(0, l.indexOf(":", l.indexOf(":") + 1)))).toEqual(["a/missing: dockerfile", "a/fn: memorySize", "b/arch: platform"]);
    expect(error.stack).not.toMatch(/^\s+at /m);
    expect(error.message).not.toMatch(/manifest|images\.yaml/);
  });

  it("`cdktf synth`'s way of running an app (plain node) prints the lines alone and exits 1", async () => {
    // Under the repository, so the app resolves cdktf as a user's app resolves it from its project.
    fs.mkdirSync(path.join(REPO, ".scratch"), { recursive: true });
    const dir = fs.mkdtempSync(path.join(REPO, ".scratch", "errors-app-"));
    onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
    const app = path.join(dir, "main.ts");
    fs.writeFileSync(
      app,
      [
        `import { App, TerraformStack } from "cdktf";`,
        `import { AwsProvider } from "@cdktf/provider-aws/lib/provider/index.js";`,
        `import { ImageBuildEnvironment, LambdaImage } from ${JSON.stringify(path.join(REPO, "src/index.ts"))};`,
        `const app = new App({ outdir: ${JSON.stringify(path.join(dir, "out"))} });`,
        `const stack = new TerraformStack(app, "dev");`,
        `new AwsProvider(stack, "aws", { region: "us-east-1" });`,
        `new ImageBuildEnvironment(stack, "image-builds", { root: ${JSON.stringify(copy.dir)}, project: "shop" });`,
        `new LambdaImage(stack, "a", { dockerfile: "nope/Dockerfile" });`,
        `new LambdaImage(stack, "b", { dockerfile: "infra/sync_dynamo/Dockerfile", platform: "linux/s390x" as never });`,
        `app.synth();`,
      ].join("\n"),
    );
    const { spawnSync } = await import("node:child_process");
    const run = spawnSync(process.execPath, ["--import", "tsx", app], { cwd: REPO, encoding: "utf8", env: { ...process.env, LAMBDA_IMAGES_CACHE_DIR: path.join(scratch, "cache") } });
    expect(run.status).toBe(1);
    const lines = run.stderr.trim().split("\n");
    expect(lines[0]).toBe("ImageConstructsError: 2 problems in the App's image constructs:");
    expect(lines.slice(1)).toEqual([expect.stringMatching(/^dev\/a: dockerfile: "nope\/Dockerfile" does not exist/), expect.stringMatching(/^dev\/b: platform: "linux\/s390x" is not a supported platform/)]);
    // cdktf makes the empty stacks folder when the App is created; no stack is written into it.
    expect(fs.readdirSync(path.join(dir, "out", "stacks"))).toEqual([]);
  });
});

describe("the repository root of an app in infra/ of a monorepo", () => {
  it("defaults to the top of the git work tree; a path error names the root in use and how to change it", () => {
    const mono = path.join(scratch, "mono");
    fs.cpSync(copy.dir, mono, { recursive: true });
    fs.mkdirSync(path.join(mono, ".git"));
    fs.mkdirSync(path.join(mono, "infra", "app"), { recursive: true });
    fs.writeFileSync(path.join(mono, "infra", "app", "cdktf.json"), "{}");
    fs.writeFileSync(path.join(mono, "infra", "app", "package.json"), JSON.stringify({ name: "@acme/shop-infra" }));
    const cwd = process.cwd();
    process.chdir(path.join(mono, "infra", "app"));
    try {
      const app = newApp();
      const stack = new TerraformStack(app, "dev");
      new AwsProvider(stack, "aws", { region: "us-east-1" });
      const env = new ImageBuildEnvironment(stack, "image-builds");
      expect(env.root).toBe(fs.realpathSync(mono));
      // The project part comes from the app's package.json, without its npm scope.
      expect(env.namePrefix).toBe("shop-infra-dev");
      syncImage(stack, "ok");
      syncImage(stack, "bad", { dockerfile: "Dockerfile" });
      expect(synthError(app).message).toBe(
        `dev/bad: dockerfile: "Dockerfile" does not exist (paths are relative to the repository root ${fs.realpathSync(mono)}, by default the top of the git work tree holding the app). Fix: point it at an existing file inside root, or set root on the stack's ImageBuildEnvironment`,
      );
    } finally {
      process.chdir(cwd);
    }
  });
});

describe("LambdaImageFunction takes the settings of aws_lambda_function", () => {
  let json: Json;
  let fnJson: Json;
  beforeAll(() => {
    const app = newApp();
    const stack = stackIn(app, "dev");
    const image = syncImage(stack, "api", { tags: { team: "orders" } });
    const fn = new LambdaImageFunction(stack, "api-fn", {
      image,
      description: "Orders API",
      reservedConcurrentExecutions: 5,
      vpcConfig: { subnetIds: ["subnet-1", "subnet-2"], securityGroupIds: ["sg-1"] },
      imageConfig: { command: ["app.handler"], entryPoint: ["/lambda-entrypoint.sh"], workingDirectory: "/var/task" },
      tracingConfig: { mode: "Active" },
      deadLetterConfig: { targetArn: "arn:aws:sqs:us-east-1:123456789012:dlq" },
      tags: { team: "orders" },
    });
    fn.addToRolePolicy({ Action: ["dynamodb:GetItem"], Resource: "arn:aws:dynamodb:us-east-1:123456789012:table/orders" });
    new LambdaImageFunction(stack, "by-arn", { image, role: "arn:aws:iam::123456789012:role/existing" });
    app.synth();
    json = stackJson(app, "dev");
    fnJson = Object.values(json.resource.aws_lambda_function as Json).find((f) => (f as Json).function_name === "shop-dev-api-fn") as Json;
  });

  it("VPC, reserved concurrency, image command/entrypoint/workdir, tracing, dead-letter target, description and tags reach the function", () => {
    expect(fnJson).toMatchObject({
      description: "Orders API",
      reserved_concurrent_executions: 5,
      vpc_config: { subnet_ids: ["subnet-1", "subnet-2"], security_group_ids: ["sg-1"] },
      image_config: { command: ["app.handler"], entry_point: ["/lambda-entrypoint.sh"], working_directory: "/var/task" },
      tracing_config: { mode: "Active" },
      dead_letter_config: { target_arn: "arn:aws:sqs:us-east-1:123456789012:dlq" },
      tags: { team: "orders" },
      package_type: "Image",
    });
    expect(Object.values(json.resource.aws_ecr_repository as Json).map((r) => (r as Json).tags)).toContainEqual({ team: "orders" });
  });

  it("the role gets what those settings need, and the statements addToRolePolicy adds", () => {
    // VPC: AWSLambdaVPCAccessExecutionRole (https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html#configuration-vpc-permissions);
    // tracing: xray:PutTraceSegments and PutTelemetryRecords (https://docs.aws.amazon.com/lambda/latest/dg/services-xray.html);
    // an SQS dead-letter queue: sqs:SendMessage (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html).
    expect(Object.values(json.resource.aws_iam_role_policy_attachment as Json).map((a) => (a as Json).policy_arn)).toContainEqual(expect.stringMatching(/:iam::aws:policy\/service-role\/AWSLambdaVPCAccessExecutionRole$/));
    const permissions = Object.values(json.resource.aws_iam_role_policy as Json).find((p) => (p as Json).name === "function-permissions") as Json;
    expect(JSON.parse(permissions.policy as string).Statement).toEqual([
      { Effect: "Allow", Action: ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], Resource: "*" },
      { Effect: "Allow", Action: "sqs:SendMessage", Resource: "arn:aws:sqs:us-east-1:123456789012:dlq" },
      { Effect: "Allow", Action: ["dynamodb:GetItem"], Resource: "arn:aws:dynamodb:us-east-1:123456789012:table/orders" },
    ]);
    expect(fnJson.depends_on).toContainEqual(expect.stringMatching(/^aws_iam_role_policy\..*permissions/));
  });

  it("an existing role by ARN is used as it is, with no role or policy created for it", () => {
    const byArn = Object.values(json.resource.aws_lambda_function as Json).find((f) => (f as Json).function_name === "shop-dev-by-arn") as Json;
    expect(byArn.role).toBe("arn:aws:iam::123456789012:role/existing");
    expect(Object.values(json.resource.aws_iam_role as Json).map((r) => (r as Json).name)).not.toContain("shop-dev-by-arn-exec");
    expect(dependsOnProblems(json)).toEqual([]);
  });

  it("each image has Terraform outputs of its URI and hash", () => {
    expect(Object.keys(json.output as Json)).toEqual(expect.arrayContaining(["api-uri", "api-hash"]));
    expect((json.output as Json)["api-hash"].value).toMatch(/^[0-9a-f]{64}$/);
  });

  it("an output of the user's with an image output's name is refused, not silently replaced", () => {
    const app = newApp();
    const stack = stackIn(app, "dev");
    const image = syncImage(stack, "api");
    new TerraformOutput(stack, "api-uri", { value: image.imageUri });
    expect(synthError(app).message).toBe(
      'dev/api: outputs: the image\'s output "api-uri" has the name of dev/api-uri, and Terraform keeps only one of them. Fix: set outputs: false on the image, or give the other output another id',
    );
  });
});

describe("a Docker provider of the user's", () => {
  it("without registry auth is an error that says what to add; with it, it is used and no other is added", () => {
    const app = newApp();
    const stack = stackIn(app, "dev");
    new DockerProvider(stack, "docker");
    new BaseImage(stack, "dynamo", { dockerfile: "dockerfiles/Dockerfile.receipt_dynamo", packages: ["receipt_dynamo"] });
    expect(synthError(app).message).toMatch(/^dev\/dynamo: builder: is docker, and the stack's DockerProvider \(dev\/docker\) has no registryAuth, so it cannot push to ECR.*Fix: add registryAuth: \[\{ address: "<account>\.dkr\.ecr\.<region>\.amazonaws\.com"/);

    const ok = newApp();
    const okStack = stackIn(ok, "dev");
    new DockerProvider(okStack, "docker", { registryAuth: [{ address: "123456789012.dkr.ecr.us-east-1.amazonaws.com", configFile: "~/.docker/config.json" }] });
    new BaseImage(okStack, "dynamo", { dockerfile: "dockerfiles/Dockerfile.receipt_dynamo", packages: ["receipt_dynamo"] });
    ok.synth();
    expect(Object.keys(stackJson(ok, "dev").provider.docker as Json[])).toHaveLength(1);
  });
});

describe("the library layer stands on its own", () => {
  it("nothing under src/constructs imports from src/cli", () => {
    const dir = path.join(REPO, "src", "constructs");
    const offenders = fs.readdirSync(dir).filter((f) => /from "\.\.\/cli\//.test(fs.readFileSync(path.join(dir, f), "utf8")));
    expect(offenders).toEqual([]);
  });
});

describe("Testing.synth reports the problems too", () => {
  it("so snapshot tests fail on the same problems as cdktf synth", () => {
    const app = Testing.app();
    AppImages.configure(app, { cacheDir: path.join(scratch, "cache"), writeSnapshot: false });
    const stack = new TerraformStack(app, "dev");
    new ImageBuildEnvironment(stack, "image-builds", { root: copy.dir, project: "shop" });
    syncImage(stack, "missing", { dockerfile: "nope/Dockerfile" });
    expect(() => Testing.synth(stack)).toThrow(ImageConstructsError);
  });
});
