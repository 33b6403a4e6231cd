import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createImagesApp } from "../src/app.ts";
import { run } from "../src/cli/main.ts";
import type { Plan } from "../src/cli/plan.ts";
import { ManifestError } from "../src/manifest/errors.ts";
import { loadManifest } from "../src/manifest/load.ts";
import { Testing, TerraformStack } from "cdktf";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider/index.js";
import { AppImages, ImageBuildEnvironment, LambdaImage, LambdaImageFunction } from "../src/index.ts";
import { repoTree, type RepoTree } from "./helpers/repo-tree.ts";
import { resourcesOf, type TfJson } from "./helpers/synth.ts";

// Issue 22, item 7: an image no Lambda runs (an ECS task's, a Batch job's) in the same
// repository, described under `images:` in images.yaml: built in CodeBuild and pushed like a
// Lambda's image, optionally FROM a base image, with outputs of its URI and hash, and no function.

let repo: RepoTree;
afterEach(() => repo?.cleanup());

const MANIFEST = [
  "project: demo",
  "stacks: { dev: { region: us-east-1 } }",
  "baseImages:",
  "  shared: { dockerfile: docker/Dockerfile.shared, packages: [shared], builder: codebuild }",
  "lambdas:",
  "  api: { dockerfile: docker/Dockerfile.api, baseImage: shared }",
  "images:",
  "  worker:",
  "    dockerfile: docker/Dockerfile.worker",
  "    baseImage: shared",
  "",
].join("\n");

function fixture(manifest = MANIFEST): RepoTree {
  return repoTree({
    "images.yaml": manifest,
    "docker/Dockerfile.shared": "FROM public.ecr.aws/lambda/python:3.12\nCOPY shared /tmp/shared\nRUN pip install /tmp/shared\n",
    "docker/Dockerfile.api": 'ARG BASE_IMAGE_URI\nFROM ${BASE_IMAGE_URI}\nCOPY api/handler.py ${LAMBDA_TASK_ROOT}/\nCMD ["handler.handler"]\n',
    "docker/Dockerfile.worker": 'ARG BASE_IMAGE_URI\nFROM ${BASE_IMAGE_URI}\nCOPY worker/main.py /app/\nENTRYPOINT ["python", "/app/main.py"]\n',
    "shared/pyproject.toml": "[project]\nname = 'shared'\n",
    "api/handler.py": "def handler(e, c):\n    return 1\n",
    "worker/main.py": "print('working')\n",
  });
}

const outdir = () => path.join(path.dirname(repo.dir), "out");

function synth(): TfJson {
  const { app } = createImagesApp({ manifestFile: repo.manifest, workDir: `${outdir()}.work`, outdir: outdir() });
  app.synth();
  return JSON.parse(fs.readFileSync(path.join(outdir(), "stacks", "dev", "cdk.tf.json"), "utf8")) as TfJson;
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await run(args, { out: { write: (s: string) => (stdout += s) }, err: { write: (s: string) => (stderr += s) }, cwd: repo.dir });
  return { code, stdout, stderr };
}

function manifestError(): string {
  try {
    loadManifest(repo.manifest);
  } catch (error) {
    if (error instanceof ManifestError) return error.message;
    throw error;
  }
  throw new Error("the manifest was accepted");
}

describe("images: an image no Lambda runs", () => {
  it("synthesizes its repository, CodeBuild project, build trigger and outputs, and no Lambda function", () => {
    repo = fixture();
    const stack = synth();
    const only = (type: string, prefix: string) => Object.entries(resourcesOf(stack, type)).filter(([id]) => id.startsWith(prefix)).map(([, r]) => r);
    expect(only("aws_ecr_repository", "image-worker_").map((r) => r.name)).toEqual(["demo-worker-dev"]);
    expect(only("aws_codebuild_project", "image-worker_").map((r) => r.name)).toEqual(["demo-worker-dev"]);
    expect(only("terraform_data", "image-worker_trigger")).toHaveLength(1);
    // The Lambda beside it keeps its function; the image gets none, nor Lambda's pull permission.
    expect(Object.values(resourcesOf(stack, "aws_lambda_function")).map((f) => f.function_name)).toEqual(["demo-api-dev"]);
    expect(only("aws_ecr_repository_policy", "image-worker_")).toEqual([]);
    expect(stack.output["image-worker-uri"].value).toMatch(/^\$\{aws_ecr_repository\.image-worker_repository_\w+\.repository_url\}:sha-[0-9a-f]{12}$/);
    expect(stack.output["image-worker-hash"].value).toMatch(/^[0-9a-f]{64}$/);
  });

  it("a change to its base image rebuilds it: plan says so, and lists it as an image", async () => {
    repo = fixture();
    synth();
    fs.appendFileSync(repo.file("shared/pyproject.toml"), "version = '2'\n");
    const { code, stdout } = await cli(["plan", "--json", "--manifest", repo.manifest, "--out", outdir()]);
    expect(code).toBe(0);
    const plan = JSON.parse(stdout) as Plan;
    const worker = plan.stacks[0]!.images.find((i) => i.name === "worker")!;
    expect(worker.kind).toBe("image");
    expect(worker.status).toBe("rebuild");
    expect(worker.reasons).toContainEqual({ type: "baseImage", change: "rebuilt", from: "shared", to: "shared" });
    const text = await cli(["plan", "--manifest", repo.manifest, "--out", outdir()]);
    expect(text.stdout).toMatch(/image worker/);
  });

  it("an edit of only the Lambda leaves it unchanged", async () => {
    repo = fixture();
    synth();
    fs.appendFileSync(repo.file("api/handler.py"), "# edited\n");
    const plan = JSON.parse((await cli(["plan", "--json", "--manifest", repo.manifest, "--out", outdir()])).stdout) as Plan;
    const status = Object.fromEntries(plan.stacks[0]!.images.map((i) => [`${i.kind}:${i.name}`, i.status]));
    expect(status).toEqual({ "base:shared": "unchanged", "lambda:api": "rebuild", "image:worker": "unchanged" });
  });

  it("graph draws it, FROM its base image", async () => {
    repo = fixture();
    const { code, stdout } = await cli(["graph", "--manifest", repo.manifest]);
    expect(code).toBe(0);
    const lines = stdout.split("\n");
    expect(lines).toContain("  subgraph images [other images]");
    expect(lines).toContain('    image_worker["worker<br/>linux/arm64"]');
    expect(lines).toContain("  base_shared --> image_worker");
  });

  it("an unknown baseImage is an error naming the file, the field and the base images there are", () => {
    repo = fixture(MANIFEST.replace("    baseImage: shared", "    baseImage: shraed"));
    const message = manifestError();
    expect(message).toContain("images.yaml:10");
    expect(message).toMatch(/images\.worker\.baseImage: base image "shraed" is not defined\. Fix: use one of: shared/);
  });

  it("a Lambda function setting on it is an error saying it has no function and where the setting belongs", () => {
    repo = fixture(`${MANIFEST}    memorySize: 2048\n`);
    const message = manifestError();
    expect(message).toContain("images.yaml:11");
    expect(message).toContain("images.worker.memorySize: memorySize is a Lambda function setting, and an image under images has no function");
    expect(message).toContain("move it to lambdas.worker");
  });

  it("takes defaults.images, and not defaults.lambdas", () => {
    repo = fixture(`${MANIFEST.replace("lambdas:\n", "defaults:\n  images: { computeType: BUILD_GENERAL1_LARGE, buildArgs: { MODE: batch } }\n  lambdas: { computeType: BUILD_GENERAL1_MEDIUM }\nlambdas:\n")}`);
    const manifest = loadManifest(repo.manifest);
    expect(manifest.images.map((i) => [i.name, i.computeType, i.buildArgs])).toEqual([["worker", "BUILD_GENERAL1_LARGE", { MODE: "batch" }]]);
    expect(manifest.lambdas.map((i) => [i.name, i.computeType])).toEqual([["api", "BUILD_GENERAL1_MEDIUM"]]);
  });

  it("shares no AWS name with a Lambda of the same name", () => {
    repo = fixture(`${MANIFEST}  api: { dockerfile: docker/Dockerfile.worker }\n`);
    expect(manifestError()).toMatch(/images\.api: gets the AWS name demo-api-dev in stack dev, which lambdas\.api also gets/);
  });
});

describe("in your own stacks: a LambdaImage with kind \"image\"", () => {
  function synthOwn(withFunction: boolean): { stack: TfJson; error?: Error } {
    repo = fixture();
    const app = Testing.app();
    AppImages.configure(app, { cacheDir: path.join(path.dirname(repo.dir), "cache"), writeSnapshot: false });
    const stack = new TerraformStack(app, "MyStack");
    new AwsProvider(stack, "aws", { region: "us-east-1" });
    new ImageBuildEnvironment(stack, "image-builds", { root: repo.dir });
    const image = new LambdaImage(stack, "worker", { kind: "image", dockerfile: "docker/Dockerfile.worker", buildArgs: { BASE_IMAGE_URI: "public.ecr.aws/lambda/python:3.12" } });
    if (withFunction) new LambdaImageFunction(stack, "fn", { image });
    try {
      app.synth();
    } catch (error) {
      return { stack: {}, error: error as Error };
    }
    return { stack: JSON.parse(fs.readFileSync(path.join(app.outdir, "stacks", "MyStack", "cdk.tf.json"), "utf8")) as TfJson };
  }

  it("is built and pushed with outputs that call it an image", () => {
    const { stack } = synthOwn(false);
    expect(Object.keys(resourcesOf(stack, "aws_codebuild_project"))).toHaveLength(1);
    expect(stack.output["worker-uri"].description).toBe("Image of worker");
    expect(stack.output["worker-hash"].description).toBe("Content hash of image worker");
  });

  it("given to a LambdaImageFunction is an error naming the construct, the field and the fix", () => {
    const { error } = synthOwn(true);
    expect(error?.message).toMatch(/MyStack\/fn: image: is the LambdaImage MyStack\/worker, made with kind "image" \(an image no Lambda runs\)\. Fix: leave out kind/);
  });
});
