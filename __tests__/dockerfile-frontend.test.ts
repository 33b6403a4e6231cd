import { afterEach, describe, expect, it } from "vitest";
import { createImagesApp } from "../src/app.ts";
import { isDockerHubReference, syntaxDirective } from "../src/selection/dockerfile.ts";
import { repoTree, type RepoTree } from "./helpers/repo-tree.ts";
import * as fs from "node:fs";
import * as path from "node:path";
import { Testing, TerraformStack } from "cdktf";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider/index.js";
import { AppImages, ImageBuildEnvironment, LambdaImage } from "../src/index.ts";
import { allows, type PolicyStatement } from "./helpers/iam-eval.ts";
import { resourcesOf, type TfJson } from "./helpers/synth.ts";

// Issue 22, item 4: `# syntax=docker/dockerfile:1` makes BuildKit pull a Dockerfile frontend image
// from Docker Hub before it reads the Dockerfile.
//
// Docker's documentation, "Custom Dockerfile syntax" (https://docs.docker.com/build/buildkit/frontend/):
// BuildKit loads the frontend named by the `# syntax=[remote image reference]` directive on the
// Dockerfile's first line, and "you can also use the predefined BUILDKIT_SYNTAX build argument to
// set the frontend image reference on the command line" (`--build-arg BUILDKIT_SYNTAX=…`).
// BuildKit reads that build arg before the directive (moby/buildkit
// frontend/dockerfile/builder/build.go: `keySyntaxArg` is checked first, `parser.DetectSyntax`
// only without it), so it redirects the pull. Parser directives are the `# name=value` lines at
// the very top; any other line ends them (https://docs.docker.com/reference/dockerfile/#parser-directives).
// Without a directive BuildKit uses its built-in frontend and pulls nothing.

describe("the syntax directive", () => {
  it.each([
    ["# syntax=docker/dockerfile:1\nFROM x\n", { ref: "docker/dockerfile:1", line: 1 }],
    ["# escape=`\n#  SYNTAX = docker/dockerfile:1.7 --flag\nFROM x\n", { ref: "docker/dockerfile:1.7", line: 2 }],
    ["# a comment first\n# syntax=docker/dockerfile:1\nFROM x\n", undefined],
    ["\n# syntax=docker/dockerfile:1\nFROM x\n", undefined],
    ["FROM x\n# syntax=docker/dockerfile:1\n", undefined],
  ])("%j", (text, expected) => {
    expect(syntaxDirective(text)).toEqual(expected);
  });

  it.each([
    ["docker/dockerfile:1", true],
    ["docker.io/docker/dockerfile:1", true],
    ["index.docker.io/docker/dockerfile:1", true],
    ["dockerfile:1", true],
    ["123456789012.dkr.ecr.us-east-1.amazonaws.com/docker-hub/docker/dockerfile:1", false],
    ["public.ecr.aws/acme/dockerfile:1", false],
    ["localhost:5000/dockerfile:1", false],
    ["registry.internal:5000/docker/dockerfile:1", false],
  ])("%s is on Docker Hub: %s", (ref, hub) => {
    expect(isDockerHubReference(ref)).toBe(hub);
  });
});

let repo: RepoTree;
afterEach(() => repo?.cleanup());

const HANDLER = 'COPY app/handler.py ${LAMBDA_TASK_ROOT}/\nCMD ["handler.handler"]\n';

function synthWarnings(lambda: string, base = ""): { warnings: readonly string[]; buildspec: (name: string) => string } {
  repo = repoTree({
    "images.yaml": `project: demo\nstacks: { dev: { region: us-east-1 } }\n${base}lambdas:\n  app:\n    dockerfile: docker/Dockerfile.app\n${lambda}`,
    "docker/Dockerfile.app": `# syntax=docker/dockerfile:1\nFROM public.ecr.aws/lambda/python:3.12\n${HANDLER}`,
    "docker/Dockerfile.base": "# syntax=docker/dockerfile:1\nFROM public.ecr.aws/lambda/python:3.12\nCOPY shared /tmp/shared\n",
    "app/handler.py": "def handler(e, c):\n    return 1\n",
    "shared/setup.py": "",
  });
  const out = path.join(path.dirname(repo.dir), "out");
  const { analysis } = createImagesApp({ manifestFile: repo.manifest, workDir: `${out}.work`, outdir: out });
  return { warnings: analysis.warnings, buildspec: (name) => analysis.images.find((i) => i.spec.name === name)!.buildspec! };
}

describe("a Dockerfile frontend from Docker Hub", () => {
  it("warns at synth, naming the Dockerfile's line, the Docker Hub pull and both fixes", () => {
    const { warnings } = synthWarnings("");
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/docker\/Dockerfile\.app:1: # syntax=docker\/dockerfile:1 makes BuildKit pull its Dockerfile frontend from Docker Hub/);
    expect(warnings[0]).toMatch(/Fix: remove the line to use BuildKit's built-in frontend, or set build arg BUILDKIT_SYNTAX/);
    expect(warnings[0]).toMatch(/defaults\.lambdas\.buildArgs/);
  });

  it("BUILDKIT_SYNTAX in buildArgs silences it and reaches the CodeBuild build as --build-arg", () => {
    const mirror = "123456789012.dkr.ecr.us-east-1.amazonaws.com/docker-hub/docker/dockerfile:1";
    const { warnings, buildspec } = synthWarnings(`    buildArgs: { BUILDKIT_SYNTAX: "${mirror}" }\n`);
    expect(warnings).toEqual([]);
    expect(buildspec("app")).toContain(`--build-arg BUILDKIT_SYNTAX=${mirror}`);
  });

  it("defaults.lambdas.buildArgs sets it for every Lambda", () => {
    const mirror = "123456789012.dkr.ecr.us-east-1.amazonaws.com/docker-hub/docker/dockerfile:1";
    const { warnings, buildspec } = synthWarnings("", `defaults:\n  lambdas: { buildArgs: { BUILDKIT_SYNTAX: "${mirror}" } }\n`);
    expect(warnings).toEqual([]);
    expect(buildspec("app")).toContain(`--build-arg BUILDKIT_SYNTAX=${mirror}`);
  });

  it("a frontend in another registry, or none, is not warned about", () => {
    expect(synthWarningsWith("# syntax=public.ecr.aws/acme/dockerfile:1\n")).toEqual([]);
    repo.cleanup();
    expect(synthWarningsWith("")).toEqual([]);
  });

  it("a Docker-built base (the provider's classic builder reads the directive as a comment) is not warned about; a CodeBuild-built one is", () => {
    const base = (builder: string) => `baseImages:\n  shared: { dockerfile: docker/Dockerfile.base, packages: [shared], builder: ${builder} }\n`;
    const docker = synthWarnings("", base("docker")).warnings;
    expect(docker.filter((w) => w.includes("Dockerfile.base"))).toEqual([]);
    repo.cleanup();
    const codebuild = synthWarnings("", base("codebuild")).warnings;
    expect(codebuild.filter((w) => w.includes("Dockerfile.base"))).toEqual([expect.stringMatching(/docker\/Dockerfile\.base:1: .*defaults\.baseImages\.buildArgs sets it for every base image\)$/)]);
  });
});

function synthWarningsWith(firstLine: string): readonly string[] {
  repo = repoTree({
    "images.yaml": "project: demo\nstacks: { dev: { region: us-east-1 } }\nlambdas:\n  app: { dockerfile: docker/Dockerfile.app }\n",
    "docker/Dockerfile.app": `${firstLine}FROM public.ecr.aws/lambda/python:3.12\n${HANDLER}`,
    "app/handler.py": "def handler(e, c):\n    return 1\n",
  });
  const out = path.join(path.dirname(repo.dir), "out");
  return createImagesApp({ manifestFile: repo.manifest, workDir: `${out}.work`, outdir: out }).analysis.warnings;
}

describe("BUILDKIT_SYNTAX naming an ECR pull-through cache", () => {
  const MIRROR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/docker-hub/docker/dockerfile:1";

  function synthStack(lambda: string): TfJson {
    repo = repoTree({
      "images.yaml": `project: demo\nstacks: { dev: { region: us-east-1 } }\nlambdas:\n  app:\n    dockerfile: docker/Dockerfile.app\n${lambda}`,
      "docker/Dockerfile.app": `# syntax=docker/dockerfile:1\nFROM public.ecr.aws/lambda/python:3.12\n${HANDLER}`,
      "app/handler.py": "def handler(e, c):\n    return 1\n",
    });
    const out = path.join(path.dirname(repo.dir), "out");
    createImagesApp({ manifestFile: repo.manifest, workDir: `${out}.work`, outdir: out }).app.synth();
    return JSON.parse(fs.readFileSync(path.join(out, "stacks", "dev", "cdk.tf.json"), "utf8")) as TfJson;
  }
  const statementsOf = (stack: TfJson): PolicyStatement[] =>
    (JSON.parse(Object.values(resourcesOf(stack, "aws_iam_role_policy")).find((p) => p.name === "build-stack-images")!.policy) as { Statement: PolicyStatement[] }).Statement;
  const buildspecOf = (stack: TfJson): string => Object.values(resourcesOf(stack, "aws_codebuild_project"))[0]!.source.buildspec;
  const ARN = "arn:aws:ecr:eu-west-1:123456789012:repository/docker-hub/docker/dockerfile";

  it("the build logs in to that registry, and the CodeBuild role may pull the frontend and let the cache import it (ECR's pull-through cache IAM page)", () => {
    const stack = synthStack(`    buildArgs: { BUILDKIT_SYNTAX: "${MIRROR}" }\n`);
    const buildspec = buildspecOf(stack);
    expect(buildspec).toContain("aws ecr get-login-password --region eu-west-1 | docker login --username AWS --password-stdin 123456789012.dkr.ecr.eu-west-1.amazonaws.com");
    expect(buildspec).toContain(`--build-arg BUILDKIT_SYNTAX=${MIRROR}`);
    // https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache-iam.html: pulls,
    // plus ecr:BatchImportUpstreamImage, and ecr:CreateRepository while the cached repository does not exist.
    const statements = statementsOf(stack);
    for (const action of ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchImportUpstreamImage", "ecr:CreateRepository"]) {
      expect(allows(statements, action, ARN), action).toBe(true);
    }
    expect(allows(statements, "ecr:PutImage", ARN)).toBe(false);
    expect(allows(statements, "ecr:BatchGetImage", "arn:aws:ecr:eu-west-1:123456789012:repository/docker-hub/library/python")).toBe(false);
  });

  it("without it, the role gets no such permission and the build no such login", () => {
    const stack = synthStack("");
    expect(buildspecOf(stack)).not.toContain("eu-west-1");
    expect(allows(statementsOf(stack), "ecr:BatchImportUpstreamImage", ARN)).toBe(false);
  });
});

describe("in your own stacks", () => {
  it("a LambdaImage whose Dockerfile pulls its frontend from Docker Hub gets a cdktf warning annotation; BUILDKIT_SYNTAX in its buildArgs silences it", () => {
    repo = repoTree({
      "docker/Dockerfile.app": `# syntax=docker/dockerfile:1\nFROM public.ecr.aws/lambda/python:3.12\n${HANDLER}`,
      "app/handler.py": "def handler(e, c):\n    return 1\n",
    });
    const warnings = (buildArgs: Record<string, string>) => {
      const app = Testing.app();
      AppImages.configure(app, { cacheDir: path.join(path.dirname(repo.dir), "cache"), writeSnapshot: false });
      const stack = new TerraformStack(app, "MyStack");
      new AwsProvider(stack, "aws", { region: "us-east-1" });
      new ImageBuildEnvironment(stack, "image-builds", { root: repo.dir });
      new LambdaImage(stack, "app", { dockerfile: "docker/Dockerfile.app", buildArgs });
      app.synth();
      const manifest = JSON.parse(fs.readFileSync(path.join(app.outdir, "manifest.json"), "utf8")) as { stacks: Record<string, { annotations: { level: string; message: string }[] }> };
      return manifest.stacks.MyStack!.annotations.filter((a) => a.level === "@cdktf/warn").map((a) => a.message);
    };
    expect(warnings({})).toEqual([expect.stringMatching(/^docker\/Dockerfile\.app:1: # syntax=docker\/dockerfile:1 makes BuildKit pull its Dockerfile frontend from Docker Hub/)]);
    expect(warnings({ BUILDKIT_SYNTAX: "123456789012.dkr.ecr.us-east-1.amazonaws.com/docker-hub/docker/dockerfile:1" })).toEqual([]);
  });
});
