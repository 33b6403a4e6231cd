// The bundled runner CLI, run as Terraform's local-exec would run it, against the fake AWS.
import { runRunner, type RunResult } from "./helpers/runner-process.ts";
import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { bundleRunner } from "../src/runner/bundle.ts";
import {
  FAKE_ACCOUNT,
  FAKE_REGION,
  FAKE_SECRET_ACCESS_KEY,
  FakeAwsError,
  fakeAwsEnv,
  startFakeCodeBuild,
  type FakeAws,
  type FakeModel,
} from "./fake-aws/index.ts";

const PROJECT = "lambda-images";
const REPO = `${FAKE_ACCOUNT}.dkr.ecr.${FAKE_REGION}.amazonaws.com/app`;
const TAG = "c0ffee1234";
const SOURCE = "build-contexts/app/c0ffee1234.zip";
const BASE = `${FAKE_ACCOUNT}.dkr.ecr.${FAKE_REGION}.amazonaws.com/base:beef5678`;
const ARGS = [
  "build",
  "--project", PROJECT,
  "--source-location", SOURCE,
  "--repository-uri", REPO,
  "--image-tag", TAG,
  "--base-image-uri", BASE,
];
const FAST = { RUNNER_POLL_MS: "20", RUNNER_RETRY_BASE_MS: "5" };
const PHASE_LINE = (phase: string) => new RegExp(`^\\[\\s*\\d+(m\\d\\d)?s\\] ${phase}$`, "m");

let workDir: string;
let cliFile: string;
let fake: FakeAws;
let model: FakeModel;
/** Every byte any runner printed in this file, checked for the secret at the end. */
const allOutput: string[] = [];

async function run(
  args: string[],
  env: Record<string, string>,
  onStdout?: (soFar: string, child: ChildProcess) => void,
): Promise<RunResult> {
  const result = await runRunner(cliFile, args, env, workDir, onStdout);
  allOutput.push(result.stdout, result.stderr);
  return result;
}

const env = (extra: Record<string, string> = {}) => fakeAwsEnv(fake.endpoint, { extra: { ...FAST, ...extra } });
const ops = () => fake.calls.map((c) => c.operation);

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), "runner-cli-test-"));
  ({ cliFile } = await bundleRunner(join(workDir, "dist")));
});

afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

beforeEach(async () => {
  ({ fake, model } = await startFakeCodeBuild({ projects: [PROJECT] }));
});

afterEach(async () => {
  await fake.close();
});

describe("runner CLI (bundled runner.cjs against the fake AWS)", () => {
  it("starts a build, prints each phase and the digest, exits 0", async () => {
    const r = await run(ARGS, env());

    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    for (const phase of ["SUBMITTED", "QUEUED", "PROVISIONING", "BUILD", "POST_BUILD", "COMPLETED"]) {
      expect(r.stdout).toMatch(PHASE_LINE(phase));
    }
    const digest = model.images.get("app")!.get(TAG)!;
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(r.stdout).toContain(`digest ${digest}`);
    expect(r.stdout).toMatch(/started build lambda-images:[0-9a-f-]{36}/);

    const [start] = fake.callsOf("StartBuild");
    expect(start!.input).toEqual({
      projectName: PROJECT,
      sourceTypeOverride: "S3",
      sourceLocationOverride: SOURCE,
      environmentVariablesOverride: [
        { name: "IMAGE_TAG", value: TAG, type: "PLAINTEXT" },
        { name: "REPOSITORY_URI", value: REPO, type: "PLAINTEXT" },
        { name: "BASE_IMAGE_URI", value: BASE, type: "PLAINTEXT" },
      ],
      idempotencyToken: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    // Checked before (absent) and after (present) the build, in the registry the URI names.
    expect(fake.callsOf("DescribeImages").map((c) => c.input)).toEqual([
      { registryId: FAKE_ACCOUNT, repositoryName: "app", imageIds: [{ imageTag: TAG }] },
      { registryId: FAKE_ACCOUNT, repositoryName: "app", imageIds: [{ imageTag: TAG }] },
    ]);
    // No sortOrder: newest first is the default, and AWS documents that setting one on a project
    // with more than 100 builds is an error
    // (https://docs.aws.amazon.com/codebuild/latest/APIReference/API_ListBuildsForProject.html).
    expect(fake.callsOf("ListBuildsForProject")[0]!.input).toEqual({ projectName: PROJECT });
    expect(ops()).not.toContain("StopBuild");
  });

  it("omits BASE_IMAGE_URI when no base image is given", async () => {
    const r = await run(ARGS.slice(0, -2), env());
    expect(r.code).toBe(0);
    const names = fake.callsOf("StartBuild")[0]!.input.environmentVariablesOverride.map((v: any) => v.name);
    expect(names).toEqual(["IMAGE_TAG", "REPOSITORY_URI"]);
  });

  it("on failure prints the failed phase, its message, exactly the last 50 log lines and the console link; exits 1", async () => {
    const logLines = Array.from({ length: 80 }, (_, i) => `build output line ${i + 1}`);
    model.scriptNextBuild({
      status: "FAILED",
      failedPhase: "BUILD",
      failure: {
        statusCode: "COMMAND_EXECUTION_ERROR",
        message: "Error while executing command: docker build -t $REPOSITORY_URI:$IMAGE_TAG .. Reason: exit status 1",
      },
      logLines,
    });
    const r = await run(ARGS, env());

    expect(r.code).toBe(1);
    const buildId = fake.callsOf("StartBuild")[0] && [...model.builds.keys()][0]!;
    expect(r.stderr).toContain(`runner: build ${buildId} FAILED in phase BUILD`);
    expect(r.stderr).toContain(
      "COMMAND_EXECUTION_ERROR: Error while executing command: docker build -t $REPOSITORY_URI:$IMAGE_TAG .. Reason: exit status 1",
    );
    const tail = r.stderr.split("\n").filter((l) => l.startsWith("  | "));
    expect(tail).toEqual(logLines.slice(-50).map((l) => `  | ${l}`));
    expect(r.stderr).toContain(
      `https://${FAKE_REGION}.console.aws.amazon.com/codesuite/codebuild/projects/${PROJECT}/build/${encodeURIComponent(buildId)}/?region=${FAKE_REGION}`,
    );
    expect(fake.callsOf("GetLogEvents")[0]!.input).toEqual({
      logGroupName: `/aws/codebuild/${PROJECT}`,
      logStreamName: model.builds.get(buildId)!.logs.streamName,
      startFromHead: false,
      limit: 50,
    });
  });

  it.each(["FAULT", "TIMED_OUT", "STOPPED"] as const)("treats %s as a failure (exit 1)", async (status) => {
    model.scriptNextBuild({ status, failedPhase: "PROVISIONING", logLines: ["only line"] });
    const r = await run(ARGS, env());
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${status} in phase PROVISIONING`);
    expect(r.stderr).toContain("  | only line");
  });

  it("skips the build when the content-addressed tag already exists", async () => {
    const digest = model.seedImage(REPO, TAG);
    const r = await run(ARGS, env());

    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`${REPO}:${TAG} already exists (content-addressed tag), skipping build`);
    expect(r.stdout).toContain(`digest ${digest}`);
    expect(ops()).toEqual(["DescribeImages"]);
  });

  it("--force rebuilds although the tag exists", async () => {
    model.seedImage(REPO, TAG, "sha256:" + "0".repeat(64));
    const r = await run([...ARGS, "--force"], env());

    expect(r.code).toBe(0);
    expect(ops()).toContain("StartBuild");
    expect(ops()[0]).not.toBe("DescribeImages");
    expect(r.stdout).toMatch(PHASE_LINE("COMPLETED"));
  });

  it("backs off and retries throttling and transient errors, then succeeds", async () => {
    model.failNext("DescribeImages", 1, new FakeAwsError("TooManyRequestsException", "Too many requests", 429));
    model.failNext("StartBuild", 2, new FakeAwsError("ThrottlingException", "Rate exceeded"));
    model.failNext("BatchGetBuilds", 3, new FakeAwsError("InternalFailure", "try again", 500));
    const r = await run(ARGS, env());

    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/runner: StartBuild: ThrottlingException: Rate exceeded; retrying in \d+\.\ds/);
    expect(r.stderr).toContain("TooManyRequestsException");
    expect(r.stderr).toContain("InternalFailure");
    // The retried StartBuild reuses the invocation's idempotency token, and only one build exists.
    const tokens = fake.callsOf("StartBuild").map((c) => c.input.idempotencyToken);
    expect(tokens).toHaveLength(3);
    expect(new Set(tokens).size).toBe(1);
    expect(model.builds.size).toBe(1);
    expect(r.stdout).toContain("digest sha256:");
  });

  // IAM is eventually consistent: a role or policy the same apply just created may not be visible
  // to CodeBuild yet, and StartBuild answers AccessDeniedException until it is
  // (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency).
  it("retries AccessDenied on the first StartBuild while the apply's IAM changes propagate, then builds once", async () => {
    model.failNext(
      "StartBuild",
      3,
      new FakeAwsError("AccessDeniedException", "User is not authorized to perform: codebuild:StartBuild"),
    );
    const r = await run(ARGS, env());

    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(
      /runner: StartBuild: AccessDeniedException: User is not authorized to perform: codebuild:StartBuild; IAM changes of this apply may not have propagated yet, retrying in \d+\.\ds/,
    );
    expect(fake.callsOf("StartBuild")).toHaveLength(4);
    // Refused calls start nothing, and the retries carry the same idempotency token.
    expect(new Set(fake.callsOf("StartBuild").map((c) => c.input.idempotencyToken)).size).toBe(1);
    expect(model.builds.size).toBe(1);
    expect(r.stdout).toMatch(PHASE_LINE("COMPLETED"));
  });

  it("gives up on an AccessDenied that outlasts the bounded IAM window, naming the call", async () => {
    model.failNext(
      "StartBuild",
      10_000,
      new FakeAwsError("AccessDeniedException", "User is not authorized to perform: codebuild:StartBuild"),
    );
    const started = Date.now();
    const r = await run(ARGS, env({ RUNNER_IAM_SETTLE_MS: "400" }));

    expect(r.code).toBe(1);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(fake.callsOf("StartBuild").length).toBeGreaterThan(1);
    expect(model.builds.size).toBe(0);
    const lines = r.stderr.trim().split("\n");
    expect(lines.at(-2)).toMatch(/^runner: still denied after \d+s of retries: a permission is missing, not propagating$/);
    expect(lines.at(-1)).toBe("runner: StartBuild: AccessDeniedException: User is not authorized to perform: codebuild:StartBuild");
  });

  it("when polling is denied, exits 1 saying the build may still be running (and does not stop it)", async () => {
    model.failNext("BatchGetBuilds", 1, new FakeAwsError("AccessDeniedException", "not authorized: codebuild:BatchGetBuilds"));
    const r = await run(ARGS, env());

    // Once the build has started, the permissions were visible: AccessDenied is final, not retried.
    expect(fake.callsOf("BatchGetBuilds")).toHaveLength(1);
    expect(r.stderr).not.toContain("may not have propagated");
    expect(r.code).toBe(1);
    const buildId = [...model.builds.keys()][0]!;
    expect(r.stderr).toContain(
      `runner: lost track of build ${buildId} (BatchGetBuilds: AccessDeniedException: not authorized: codebuild:BatchGetBuilds); it may still be running: https://`,
    );
    expect(ops()).not.toContain("StopBuild");
  });

  it("--timeout stops the build and exits 124", async () => {
    model.scriptNextBuild({ hangIn: "BUILD" });
    const r = await run([...ARGS, "--timeout", "1"], env());

    expect(r.code).toBe(124);
    const buildId = [...model.builds.keys()][0]!;
    expect(fake.callsOf("StopBuild").map((c) => c.input)).toEqual([{ id: buildId }]);
    expect(r.stderr).toContain("timeout of 1s reached");
    expect(r.stderr).toContain(`build ${buildId} was stopped`);
    expect(model.builds.get(buildId)!.buildStatus).toBe("STOPPED");
  });

  it.each([
    ["SIGTERM", 143],
    ["SIGINT", 130],
  ] as const)("%s stops the build and exits %i", async (signal, exitCode) => {
    model.scriptNextBuild({ hangIn: "BUILD" });
    let sent = false;
    const r = await run(ARGS, env(), (out, child) => {
      if (!sent && PHASE_LINE("BUILD").test(out)) {
        sent = true;
        child.kill(signal);
      }
    });

    expect(sent).toBe(true);
    expect(r.code).toBe(exitCode);
    expect(fake.callsOf("StopBuild")).toHaveLength(1);
    expect(r.stderr).toContain(`received ${signal}`);
    expect(r.stderr).toMatch(/build lambda-images:\S+ was stopped/);
  });

  it("attaches to an in-progress build of the same tag instead of starting one", async () => {
    model.seedBuild({ projectName: PROJECT, imageTag: TAG, repositoryUri: REPO, finished: "FAILED" });
    const running = model.seedBuild({ projectName: PROJECT, imageTag: TAG, repositoryUri: REPO });
    model.seedBuild({ projectName: PROJECT, imageTag: "other-tag", repositoryUri: REPO });
    const r = await run(ARGS, env());

    expect(r.code).toBe(0);
    expect(ops()).not.toContain("StartBuild");
    expect(r.stdout).toContain(`attaching to in-progress build ${running.id}`);
    expect(r.stdout).toMatch(PHASE_LINE("COMPLETED"));
    expect(r.stdout).toContain(`digest ${model.images.get("app")!.get(TAG)}`);
  });

  it("looks at the second page of ListBuildsForProject when attaching", async () => {
    await fake.close();
    ({ fake, model } = await startFakeCodeBuild({ projects: [PROJECT], listPageSize: 2 }));
    const running = model.seedBuild({ projectName: PROJECT, imageTag: TAG, repositoryUri: REPO });
    model.seedBuild({ projectName: PROJECT, imageTag: "x1", repositoryUri: REPO, finished: "SUCCEEDED" });
    model.seedBuild({ projectName: PROJECT, imageTag: "x2", repositoryUri: REPO, finished: "SUCCEEDED" });
    const r = await run(ARGS, env());

    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`attaching to in-progress build ${running.id}`);
    expect(fake.callsOf("ListBuildsForProject")).toHaveLength(2);
  });

  it("exits 1 with a clear message when the build succeeded but the tag is missing", async () => {
    model.scriptNextBuild({ pushImage: false });
    const r = await run(ARGS, env());

    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/SUCCEEDED but .*app:c0ffee1234 is not in the registry/);
  });

  it("uses the path as repository name and no registry id for a non-ECR registry", async () => {
    const args = ARGS.map((a) => (a === REPO ? "127.0.0.1:5000/team/app" : a));
    const r = await run(args, env());

    expect(r.code).toBe(0);
    expect(fake.callsOf("DescribeImages")[0]!.input).toEqual({ repositoryName: "team/app", imageIds: [{ imageTag: TAG }] });
  });

  it("honours the per-service AWS_ENDPOINT_URL_* overrides", async () => {
    const r = await run(
      ARGS,
      env({
        AWS_ENDPOINT_URL: "http://127.0.0.1:9", // nothing listens there
        AWS_ENDPOINT_URL_CODEBUILD: fake.endpoint,
        AWS_ENDPOINT_URL_ECR: fake.endpoint,
        AWS_ENDPOINT_URL_CLOUDWATCH_LOGS: fake.endpoint,
      }),
    );
    expect(r.code).toBe(0);
  });

  it("without credentials exits 2 with one clear line and no stack trace", async () => {
    const r = await run(ARGS, fakeAwsEnv(fake.endpoint, { credentials: false, extra: FAST }));

    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(
      "runner: no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, " +
        "or run where an instance role is available)\n",
    );
    expect(fake.calls).toHaveLength(0);
  });

  it("without a region exits 2 with one clear line", async () => {
    const r = await run(ARGS, fakeAwsEnv(fake.endpoint, { region: false, extra: FAST }));

    expect(r.code).toBe(2);
    expect(r.stderr).toBe("runner: no AWS region configured (pass --region or set AWS_REGION / a profile region)\n");
    expect(fake.calls).toHaveLength(0);
  });

  it("--region is used when AWS_REGION is not set", async () => {
    const r = await run([...ARGS, "--region", "us-east-2"], fakeAwsEnv(fake.endpoint, { region: false, extra: FAST }));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("https://us-east-2.console.aws.amazon.com/");
  });

  it.each([
    ["no command", ARGS.slice(1), /expected the command "build"/],
    ["a missing option", ARGS.filter((a) => a !== "--image-tag" && a !== TAG), /missing --image-tag/],
    ["an unknown option", [...ARGS, "--colour"], /Unknown option '--colour'/],
    ["a bad source location", ARGS.map((a) => (a === SOURCE ? "no-key" : a)), /source location must be BUCKET\/KEY/],
    ["a tag in the repository URI", ARGS.map((a) => (a === REPO ? `${REPO}:latest` : a)), /must not contain a tag/],
    ["a bad timeout", [...ARGS, "--timeout", "soon"], /--timeout must be a positive number/],
  ])("rejects %s with usage on stderr and exit 2", async (_, args, message) => {
    const r = await run(args, env());

    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain("usage: runner build --project NAME");
    expect(r.stdout).toBe("");
    expect(fake.calls).toHaveLength(0);
  });

  it("--help prints usage on stdout and exits 0", async () => {
    const r = await run(["--help"], env());
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("exit codes: 0 built or skipped");
  });

  it("redacts its own credentials even when the build output or an AWS error echoes them", async () => {
    model.scriptNextBuild({
      status: "FAILED",
      failure: { statusCode: "COMMAND_EXECUTION_ERROR", message: `bad key ${FAKE_SECRET_ACCESS_KEY}` },
      logLines: [`echo ${FAKE_SECRET_ACCESS_KEY}`, "done"],
    });
    const r = await run(ARGS, env());

    expect(r.code).toBe(1);
    expect(r.stderr).toContain("  | echo ****");
    expect(r.stderr).toContain("bad key ****");
    expect(r.stdout + r.stderr).not.toContain(FAKE_SECRET_ACCESS_KEY);
  });

  it("never printed the secret access key in any test above", () => {
    expect(allOutput.length).toBeGreaterThan(20);
    for (const out of allOutput) expect(out).not.toContain(FAKE_SECRET_ACCESS_KEY);
  });
});
