// Contract checks: the bundled runner against moto (a third-party AWS emulator), for what moto
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
// models faithfully, and our fake against moto where both answer the same call. moto's CodeBuild
// build records carry ISO-8601 timestamps that AWS SDK v3 cannot parse, so a build's lifecycle
// stays on our fake (CodeBuild endpoint → fake; ECR and CloudWatch Logs → moto).
import { runRunner, type RunResult } from "./helpers/runner-process.ts";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CodeBuildClient, CreateProjectCommand, ListBuildsForProjectCommand, StartBuildCommand } from "@aws-sdk/client-codebuild";
import { CreateRepositoryCommand, DescribeImagesCommand, ECRClient, PutImageCommand } from "@aws-sdk/client-ecr";
import {
  CloudWatchLogsClient,
  CreateLogGroupCommand,
  CreateLogStreamCommand,
  PutLogEventsCommand,
} from "@aws-sdk/client-cloudwatch-logs";
import { bundleRunner } from "../src/runner/bundle.ts";
import {
  FAKE_ACCOUNT,
  FAKE_REGION,
  fakeAwsEnv,
  startFakeCodeBuild,
  type BuildControls,
  type FakeAws,
  type FakeBuild,
  type FakeModel,
  type FakeModelOptions,
} from "./fake-aws/index.ts";

const PROJECT = "lambda-images";
const REPO_NAME = "app";
const REPO = `${FAKE_ACCOUNT}.dkr.ecr.${FAKE_REGION}.amazonaws.com/${REPO_NAME}`;
const TAG = "c0ffee1234";
const ARGS = ["build", "--project", PROJECT, "--source-location", "ctx/app.zip", "--repository-uri", REPO, "--image-tag", TAG];

/** moto 5.2 ships in this machine image's Python 3; it cannot be installed from the registries here. */
const MOTO = spawnSync("python3", ["-c", "import moto.server"], { stdio: "ignore" }).status === 0;
if (!MOTO) console.warn("runner-moto: skipped: moto is not installed in python3 (python3 -m moto.server)");

let workDir: string;
let cliFile: string;
let moto: { endpoint: string; child: ChildProcess } | undefined;
let fake: FakeAws | undefined;
let model: FakeModel;
/** moto keeps state across tests; each test uses its own repository, project or stream names. */
let unique = 0;

const sdk = { region: FAKE_REGION, credentials: { accessKeyId: "AKIAFAKE", secretAccessKey: "fake" }, maxAttempts: 1 };
const motoEcr = () => new ECRClient({ ...sdk, endpoint: moto!.endpoint });
const motoLogs = () => new CloudWatchLogsClient({ ...sdk, endpoint: moto!.endpoint });
const motoCodeBuild = () => new CodeBuildClient({ ...sdk, endpoint: moto!.endpoint });

function startMoto(): Promise<{ endpoint: string; child: ChildProcess }> {
  return new Promise((resolve, reject) => {
    const child = spawn("python3", ["-m", "moto.server", "-H", "127.0.0.1", "-p", "0"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    const onData = (d: Buffer) => {
      out += d;
      const m = /Running on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) resolve({ endpoint: m[1]!, child });
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("error", reject);
    child.on("exit", (code) => reject(new Error(`moto.server exited (${code}): ${out}`)));
  });
}

function run(args: string[], endpoints: { default: string; codebuild?: string }): Promise<RunResult> {
  const extra: Record<string, string> = { RUNNER_POLL_MS: "20", RUNNER_RETRY_BASE_MS: "5" };
  if (endpoints.codebuild) extra.AWS_ENDPOINT_URL_CODEBUILD = endpoints.codebuild;
  return runRunner(cliFile, args, fakeAwsEnv(endpoints.default, { extra }), workDir);
}

/** An image manifest moto accepts; its digest is the sha256 of these bytes, as in a registry. */
function manifestFor(seed: string): { text: string; digest: string } {
  const layer = (s: string) => ({ mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip", size: 32, digest: `sha256:${createHash("sha256").update(s).digest("hex")}` });
  const text = JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.docker.distribution.manifest.v2+json",
    config: { mediaType: "application/vnd.docker.container.image.v1+json", size: 7, digest: layer(`config ${seed}`).digest },
    layers: [layer(seed)],
  });
  return { text, digest: `sha256:${createHash("sha256").update(text).digest("hex")}` };
}

async function pushToMoto(repositoryName: string, tag: string): Promise<string> {
  const ecr = motoEcr();
  const { text } = manifestFor(`${repositoryName}:${tag}`);
  const out = await ecr.send(new PutImageCommand({ repositoryName, imageTag: tag, imageManifest: text }));
  ecr.destroy();
  return out.image!.imageId!.imageDigest!;
}

async function startFake(opts: FakeModelOptions = {}): Promise<void> {
  ({ fake, model } = await startFakeCodeBuild({ projects: [PROJECT], ...opts }));
}

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), "runner-moto-test-"));
  ({ cliFile } = await bundleRunner(join(workDir, "dist")));
  if (MOTO) moto = await startMoto();
});

afterAll(async () => {
  moto?.child.kill("SIGTERM");
  await rm(workDir, { recursive: true, force: true });
});

afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

describe.skipIf(!MOTO)("bundled runner against moto", () => {
  it("skips a tag that exists in moto's ECR and prints moto's digest", async () => {
    const repo = `skip-${++unique}`;
    const ecr = motoEcr();
    await ecr.send(new CreateRepositoryCommand({ repositoryName: repo }));
    ecr.destroy();
    const digest = await pushToMoto(repo, TAG);

    const r = await run(ARGS.map((a) => (a === REPO ? REPO.replace(/\/app$/, `/${repo}`) : a)), { default: moto!.endpoint });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("already exists (content-addressed tag), skipping build");
    expect(r.stdout).toContain(`digest ${digest}`);
  });

  it("a missing tag in an existing repository is built, and the digest is the one moto's ECR then reports", async () => {
    const repo = `missing-tag-${++unique}`;
    const ecr = motoEcr();
    await ecr.send(new CreateRepositoryCommand({ repositoryName: repo }));
    ecr.destroy();
    await pushToMoto(repo, "some-other-tag");
    let pushed = "";
    await startFake({
      onBuildStarted: async (_b: FakeBuild, c: BuildControls) => {
        c.enterPhase("BUILD");
        pushed = await pushToMoto(repo, c.env("IMAGE_TAG")!);
        c.finish("SUCCEEDED");
      },
    });

    const r = await run(ARGS.map((a) => (a === REPO ? REPO.replace(/\/app$/, `/${repo}`) : a)), { default: moto!.endpoint, codebuild: fake!.endpoint });
    expect(r.code).toBe(0);
    expect(fake!.callsOf("StartBuild")).toHaveLength(1);
    expect(pushed).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(r.stdout).toContain(`digest ${pushed}`);
  });

  it("a missing repository is built too; when the build does not create it, exit 1 says the image is not in the registry", async () => {
    const repo = `never-created-${++unique}`;
    await startFake({ onBuildStarted: (_b, c) => c.finish("SUCCEEDED") });

    const uri = REPO.replace(/\/app$/, `/${repo}`);
    const r = await run(ARGS.map((a) => (a === REPO ? uri : a)), { default: moto!.endpoint, codebuild: fake!.endpoint });
    expect(r.code).toBe(1);
    expect(fake!.callsOf("StartBuild")).toHaveLength(1);
    expect(r.stderr).toContain(`SUCCEEDED but ${uri}:${TAG} is not in the registry`);
  });

  it("an unknown project fails with exit 1 naming the call and the project, exactly as against our fake", async () => {
    const project = `no-such-project-${++unique}`;
    const args = ARGS.map((a) => (a === PROJECT ? project : a));
    const expected =
      `runner: ListBuildsForProject: ResourceNotFoundException: The provided project ` +
      `arn:aws:codebuild:${FAKE_REGION}:${FAKE_ACCOUNT}:project/${project} does not exist\n`;

    const againstMoto = await run(args, { default: moto!.endpoint });
    expect(againstMoto.code).toBe(1);
    expect(againstMoto.stderr).toBe(expected);

    await startFake();
    const againstFake = await run(args, { default: fake!.endpoint });
    expect(againstFake.code).toBe(1);
    expect(againstFake.stderr).toBe(expected);
  });

  it("reads a failed build's log tail with GetLogEvents: the last 50 of moto's events", async () => {
    const lines = Array.from({ length: 80 }, (_, i) => `step ${i + 1}`);
    await startFake({
      onBuildStarted: async (b, c) => {
        const logs = motoLogs();
        await logs.send(new CreateLogGroupCommand({ logGroupName: b.logs.groupName })).catch((e) => {
          if (e.name !== "ResourceAlreadyExistsException") throw e;
        });
        await logs.send(new CreateLogStreamCommand({ logGroupName: b.logs.groupName, logStreamName: b.logs.streamName }));
        const t0 = Date.now();
        await logs.send(
          new PutLogEventsCommand({
            logGroupName: b.logs.groupName,
            logStreamName: b.logs.streamName,
            logEvents: lines.map((message, i) => ({ timestamp: t0 + i, message })),
          }),
        );
        logs.destroy();
        c.enterPhase("BUILD");
        c.finish("FAILED", { statusCode: "COMMAND_EXECUTION_ERROR", message: "exit status 1" });
      },
    });

    const r = await run(ARGS, { default: moto!.endpoint, codebuild: fake!.endpoint });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("FAILED in phase BUILD");
    const tail = r.stderr.split("\n").filter((l) => l.startsWith("  | "));
    expect(tail).toEqual(lines.slice(-50).map((l) => `  | ${l}`));
  });
});

describe.skipIf(!MOTO)("our fake answers as moto does", () => {
  const errorOf = (p: Promise<unknown>) =>
    p.then(
      () => ({ name: "no error", message: "" }),
      (e: Error) => ({ name: e.name, message: e.message }),
    );

  it("StartBuild and ListBuildsForProject on an unknown project", async () => {
    await startFake();
    const fakeCb = new CodeBuildClient({ ...sdk, endpoint: fake!.endpoint });
    const motoCb = motoCodeBuild();
    for (const cmd of [new StartBuildCommand({ projectName: "ghost" }), new ListBuildsForProjectCommand({ projectName: "ghost" })]) {
      const [m, f] = [await errorOf(motoCb.send(cmd as any)), await errorOf(fakeCb.send(cmd as any))];
      expect(m.name).toBe("ResourceNotFoundException");
      expect(f).toEqual(m);
    }
    fakeCb.destroy();
    motoCb.destroy();
  });

  it("ListBuildsForProject on an existing project without builds", async () => {
    const project = `empty-${++unique}`;
    const motoCb = motoCodeBuild();
    await motoCb.send(
      new CreateProjectCommand({
        name: project,
        source: { type: "S3", location: "bucket/key.zip" },
        artifacts: { type: "NO_ARTIFACTS" },
        environment: { type: "ARM_CONTAINER", computeType: "BUILD_GENERAL1_SMALL", image: "aws/codebuild/amazonlinux-aarch64-standard:3.0" },
        serviceRole: `arn:aws:iam::${FAKE_ACCOUNT}:role/codebuild`,
      }),
    );
    await startFake({ projects: [project] });
    const fakeCb = new CodeBuildClient({ ...sdk, endpoint: fake!.endpoint });
    const m = await motoCb.send(new ListBuildsForProjectCommand({ projectName: project }));
    const f = await fakeCb.send(new ListBuildsForProjectCommand({ projectName: project }));
    expect(m.ids).toEqual([]);
    expect(f.ids).toEqual(m.ids);
    fakeCb.destroy();
    motoCb.destroy();
  });

  it("DescribeImages on a missing repository and on a missing tag", async () => {
    const repo = `compare-${++unique}`;
    await startFake();
    model.seedImage(REPO.replace(/\/app$/, `/${repo}`), "present");
    const ecr = motoEcr();
    await ecr.send(new CreateRepositoryCommand({ repositoryName: repo }));
    await pushToMoto(repo, "present");
    const fakeEcr = new ECRClient({ ...sdk, endpoint: fake!.endpoint });
    for (const input of [
      { repositoryName: `${repo}-missing`, registryId: FAKE_ACCOUNT, imageIds: [{ imageTag: TAG }] },
      { repositoryName: repo, registryId: FAKE_ACCOUNT, imageIds: [{ imageTag: TAG }] },
    ]) {
      const [m, f] = [await errorOf(ecr.send(new DescribeImagesCommand(input))), await errorOf(fakeEcr.send(new DescribeImagesCommand(input)))];
      expect(m.name).toMatch(/^(RepositoryNotFoundException|ImageNotFoundException)$/);
      expect(f.name).toBe(m.name);
    }
    ecr.destroy();
    fakeEcr.destroy();
  });
});
