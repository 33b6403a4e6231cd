// The bundled "build starter" Lambda handler (build-starter/index.js), loaded with plain Node
// `require` as the Lambda runtime would, and run against the fake AWS.
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { bundleRunner } from "../src/runner/bundle.ts";
import {
  createFakeCodeBuildModel,
  FAKE_ACCOUNT,
  FAKE_REGION,
  FAKE_SECRET_ACCESS_KEY,
  fakeAwsEnv,
  startFakeAws,
  type FakeAws,
  type FakeModel,
} from "./fake-aws/index.ts";

const PROJECT = "lambda-images";
const REPO = `${FAKE_ACCOUNT}.dkr.ecr.${FAKE_REGION}.amazonaws.com/app`;
const TAG = "c0ffee1234";
const EVENT = {
  projectName: PROJECT,
  sourceLocation: "build-contexts/app/c0ffee1234.zip",
  repositoryUri: REPO,
  imageTag: TAG,
  baseImageUri: `${FAKE_ACCOUNT}.dkr.ecr.${FAKE_REGION}.amazonaws.com/base:beef5678`,
};

type Handler = (event: unknown, context: { getRemainingTimeInMillis(): number }) => Promise<any>;

let workDir: string;
let handler: Handler;
let fake: FakeAws;
/** Replaced per test; the server (and the handler's cached SDK clients) live for the whole file. */
let model: FakeModel;
const logged: string[] = [];

/** A Lambda context whose deadline is `ms` from now. */
const contextWith = (ms: number) => {
  const deadline = Date.now() + ms;
  return { getRemainingTimeInMillis: () => deadline - Date.now() };
};
const plenty = () => contextWith(15 * 60_000);
const ops = () => fake.calls.map((c) => c.operation);

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), "build-starter-test-"));
  const { lambdaFile } = await bundleRunner(join(workDir, "dist"));
  fake = await startFakeAws(
    Object.fromEntries(
      ["StartBuild", "BatchGetBuilds", "ListBuildsForProject", "StopBuild", "DescribeImages", "GetLogEvents"].map(
        (op) => [op, (input: unknown, call: any) => model.handlers[op]!(input, call)],
      ),
    ),
  );
  for (const k of Object.keys(process.env)) if (k.startsWith("AWS_")) delete process.env[k];
  Object.assign(process.env, fakeAwsEnv(fake.endpoint, { extra: { RUNNER_POLL_MS: "10", RUNNER_RETRY_BASE_MS: "5" } }));
  vi.spyOn(console, "log").mockImplementation((...a) => void logged.push(a.join(" ")));
  vi.spyOn(console, "warn").mockImplementation((...a) => void logged.push(a.join(" ")));
  handler = createRequire(import.meta.url)(lambdaFile).handler;
});

afterAll(async () => {
  vi.restoreAllMocks();
  await fake?.close();
  await rm(workDir, { recursive: true, force: true });
});

beforeEach(() => {
  model = createFakeCodeBuildModel({ projects: [PROJECT] });
  fake.calls.length = 0;
});

describe("build-starter Lambda handler (bundled index.js against the fake AWS)", () => {
  it("exports a handler function", () => {
    expect(typeof handler).toBe("function");
  });

  it("builds and returns the digest", async () => {
    const result = await handler(EVENT, plenty());

    const buildId = [...model.builds.keys()][0]!;
    expect(result).toEqual({
      outcome: "built",
      imageUri: `${REPO}:${TAG}`,
      digest: model.images.get("app")!.get(TAG),
      buildId,
    });
    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
    expect(fake.callsOf("StartBuild")[0]!.input.environmentVariablesOverride).toContainEqual({
      name: "BASE_IMAGE_URI",
      value: EVENT.baseImageUri,
      type: "PLAINTEXT",
    });
  });

  it("throws an error carrying the failed phase and the log tail", async () => {
    model.scriptNextBuild({
      status: "FAILED",
      failedPhase: "PRE_BUILD",
      failure: { statusCode: "COMMAND_EXECUTION_ERROR", message: "Error while executing command: docker login" },
      logLines: Array.from({ length: 60 }, (_, i) => `log ${i + 1}`),
    });

    const err = await handler(EVENT, plenty()).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).toContain("FAILED in phase PRE_BUILD");
    expect(err!.message).toContain("COMMAND_EXECUTION_ERROR: Error while executing command: docker login");
    expect(err!.message).toContain("  | log 60");
    expect(err!.message).toContain("  | log 11");
    expect(err!.message).not.toContain("  | log 10\n");
    expect(err!.message).toContain("https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/projects/lambda-images/build/");
  });

  it("skips when the tag exists", async () => {
    const digest = model.seedImage(REPO, TAG);
    const result = await handler(EVENT, plenty());

    expect(result).toEqual({ outcome: "skipped", imageUri: `${REPO}:${TAG}`, digest, buildId: null });
    expect(ops()).toEqual(["DescribeImages"]);
  });

  it("attaches to an in-progress build of the same tag", async () => {
    const running = model.seedBuild({ projectName: PROJECT, imageTag: TAG, repositoryUri: REPO });
    const result = await handler(EVENT, plenty());

    expect(result).toMatchObject({ outcome: "attached-built", buildId: running.id });
    expect(result.digest).toMatch(/^sha256:/);
    expect(ops()).not.toContain("StartBuild");
  });

  it("near its own deadline leaves the build running and says the next apply will attach", async () => {
    model.scriptNextBuild({ hangIn: "BUILD" });
    // 20 s margin: the handler has ~300 ms of waiting before it must give up.
    const err = await handler(EVENT, contextWith(20_300)).then(
      () => undefined,
      (e: Error) => e,
    );

    const build = [...model.builds.values()][0]!;
    expect(err!.message).toContain(`build ${build.id} is still running`);
    expect(err!.message).toContain("next apply will attach to it");
    // …and says what to do about it.
    expect(err!.message).toContain("Re-run the apply: it attaches to this build");
    expect(err!.message).toContain("larger CodeBuild compute type (BUILD_GENERAL1_MEDIUM or BUILD_GENERAL1_LARGE)");
    expect(err!.message).toContain("buildTrigger: local-exec");
    expect(ops()).not.toContain("StopBuild");
    expect(build.buildStatus).toBe("IN_PROGRESS");

    // …and the next invocation does attach to it.
    fake.calls.length = 0;
    model.resume(build.id);
    const result = await handler(EVENT, plenty());
    expect(result).toMatchObject({ outcome: "attached-built", buildId: build.id });
    expect(ops()).not.toContain("StartBuild");
  });

  it("names the AWS call when one fails, e.g. an unknown project", async () => {
    const err = await handler({ ...EVENT, projectName: "no-such-project" }, plenty()).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err!.message).toBe(
      `runner: ListBuildsForProject: ResourceNotFoundException: The provided project ` +
        `arn:aws:codebuild:${FAKE_REGION}:${FAKE_ACCOUNT}:project/no-such-project does not exist`,
    );
  });

  it("rejects a malformed event with a clear message and calls nothing", async () => {
    await expect(handler({ ...EVENT, imageTag: "", extra: 1 }, plenty())).rejects.toThrow(
      "invalid build-starter event: unknown field(s) extra; imageTag must be a non-empty string",
    );
    await expect(handler("not an object", plenty())).rejects.toThrow("expected a JSON object");
    expect(fake.calls).toHaveLength(0);
  });

  it("does nothing when Terraform's CRUD lifecycle invokes it for a delete", async () => {
    const result = await handler({ ...EVENT, tf: { action: "delete", prev_input: EVENT } }, plenty());
    expect(result).toEqual({ outcome: "noop-delete", imageUri: `${REPO}:${TAG}`, digest: null, buildId: null });
    expect(fake.calls).toHaveLength(0);
  });

  it("never logged or threw the secret access key", () => {
    expect(logged.length).toBeGreaterThan(10);
    expect(logged.join("\n")).not.toContain(FAKE_SECRET_ACCESS_KEY);
  });
});
