// The bundled runner under contention and faults: several applies reaching the same tag at once,
// and a StartBuild whose answer never arrives intact. Run as child processes against the fake AWS.
import { runRunner, type RunResult } from "./helpers/runner-process.ts";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { bundleRunner } from "../src/runner/bundle.ts";
import {
  createFakeCodeBuildModel,
  FAKE_ACCOUNT,
  FAKE_REGION,
  FakeAwsError,
  fakeAwsEnv,
  startFakeAws,
  type FakeAws,
  type FakeHandlers,
  type FakeModel,
  type FakeModelOptions,
} from "./fake-aws/index.ts";

const PROJECT = "lambda-images";
const REPO = `${FAKE_ACCOUNT}.dkr.ecr.${FAKE_REGION}.amazonaws.com/app`;
const TAG = "c0ffee1234";
const ARGS = [
  "build",
  "--project", PROJECT,
  "--source-location", "build-contexts/app/c0ffee1234.zip",
  "--repository-uri", REPO,
  "--image-tag", TAG,
];
const RUNNERS = 5;

let workDir: string;
let cliFile: string;
let fake: FakeAws | undefined;
let model: FakeModel;

function run(args: string[] = ARGS, extra: Record<string, string> = {}): Promise<RunResult> {
  return runRunner(cliFile, args, fakeAwsEnv(fake!.endpoint, { extra: { RUNNER_POLL_MS: "20", RUNNER_RETRY_BASE_MS: "5", ...extra } }), workDir);
}

/**
 * The fake, with ListBuildsForProject held until `barrier` runners have asked: every runner then
 * sees the same empty (or same) list and goes on to StartBuild together, the race two CI jobs or
 * Terraform Cloud and a laptop run into. Without the hold, process start-up jitter would let the
 * first runner's build show up in the others' lists and hide the race.
 */
async function startFake(opts: FakeModelOptions & { barrier?: number } = {}): Promise<void> {
  model = createFakeCodeBuildModel({ projects: [PROJECT], ...opts });
  let waiting: (() => void)[] = [];
  let barrier = opts.barrier ?? 0;
  const handlers: FakeHandlers = { ...model.handlers };
  handlers.ListBuildsForProject = async (input, call) => {
    if (barrier > 1) {
      await new Promise<void>((resolve) => {
        waiting.push(resolve);
        if (waiting.length >= barrier) {
          waiting.forEach((w) => w());
          waiting = [];
          barrier = 0;
        }
        // Never hang a test on a runner that died early.
        setTimeout(resolve, 10_000).unref();
      });
    }
    return model.handlers.ListBuildsForProject!(input, call);
  };
  fake = await startFakeAws(handlers);
}

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), "runner-contention-test-"));
  ({ cliFile } = await bundleRunner(join(workDir, "dist")));
});

afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

describe(`${RUNNERS} applies reaching the same tag at once`, () => {
  it("start exactly one build, and all of them report its outcome", async () => {
    await startFake({ barrier: RUNNERS, defaultScript: { pollsPerPhase: 2 } });
    const results = await Promise.all(Array.from({ length: RUNNERS }, () => run()));

    // Every runner did call StartBuild (none saw a build to attach to): the token collapsed them.
    expect(fake!.callsOf("StartBuild")).toHaveLength(RUNNERS);
    expect(model.builds.size).toBe(1);
    const [build] = [...model.builds.values()];
    const digest = model.images.get("app")!.get(TAG)!;
    for (const r of results) {
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`build ${build!.id} SUCCEEDED`);
      expect(r.stdout).toContain(`digest ${digest}`);
    }
  });

  it("share one failed build; a retry then really starts a second build", async () => {
    await startFake({ barrier: RUNNERS });
    model.scriptNextBuild({ status: "FAILED", failedPhase: "BUILD", logLines: ["npm ERR! boom"] });
    const failed = await Promise.all(Array.from({ length: RUNNERS }, () => run()));

    expect(model.builds.size).toBe(1);
    const [first] = [...model.builds.values()];
    for (const r of failed) {
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`runner: build ${first!.id} FAILED in phase BUILD`);
      expect(r.stderr).toContain("  | npm ERR! boom");
    }

    // Seconds later, well inside CodeBuild's five-minute token window: the same token would be
    // handed the failed build back, so the retry must use a new one.
    const retry = await run();
    expect(retry.code).toBe(0);
    expect(model.builds.size).toBe(2);
    const second = [...model.builds.values()].find((b) => b.id !== first!.id)!;
    expect(retry.stdout).toContain(`started build ${second.id}`);
    expect(second.buildStatus).toBe("SUCCEEDED");
    const tokens = fake!.callsOf("StartBuild").map((c) => c.input.idempotencyToken);
    expect(new Set(tokens).size).toBe(2);
  });
});

describe("a StartBuild whose response cannot be read", () => {
  it("is found again by its idempotency token and attached to, not left running unobserved", async () => {
    await startFake();
    model.garbleNext("StartBuild", 1);
    const r = await run();

    expect(r.code).toBe(0);
    expect(model.builds.size).toBe(1);
    const [build] = [...model.builds.values()];
    expect(r.stderr).toMatch(/^runner: StartBuild: unreadable response \(SyntaxError: [^\n]+\); looking for the build it may have started$/m);
    expect(r.stdout).toContain(`StartBuild with the same idempotency token returned build ${build!.id}; attaching`);
    expect(r.stdout).toContain(`build ${build!.id} SUCCEEDED`);
    expect(fake!.callsOf("StopBuild")).toHaveLength(0);
  });

  it("is found by its tag when StartBuild keeps answering unreadably", async () => {
    await startFake();
    model.garbleNext("StartBuild", 2);
    const r = await run();

    expect(r.code).toBe(0);
    expect(model.builds.size).toBe(1);
    const [build] = [...model.builds.values()];
    expect(r.stdout).toContain(`found build ${build!.id} of this tag; attaching`);
    expect(r.stdout).toContain(`build ${build!.id} SUCCEEDED`);
  });

  it("when no build appeared, exits 1 naming the call and saying none was started", async () => {
    await startFake();
    model.failNext("StartBuild", 20, new FakeAwsError("InternalFailure", "try again", 500));
    const r = await run();

    expect(r.code).toBe(1);
    expect(model.builds.size).toBe(0);
    expect(r.stderr).toContain(
      `runner: StartBuild: InternalFailure: try again; no build of ${TAG} appeared in project ${PROJECT}, so none was started: re-run the apply`,
    );
  });
});

describe("errors name the AWS call", () => {
  it("an unknown project fails with exit 1 naming the call and the project", async () => {
    await startFake();
    const r = await run(ARGS.map((a) => (a === PROJECT ? "no-such-project" : a)));

    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(
      `runner: ListBuildsForProject: ResourceNotFoundException: The provided project ` +
        `arn:aws:codebuild:${FAKE_REGION}:${FAKE_ACCOUNT}:project/no-such-project does not exist`,
    );
  });

  it("an ECR error other than a missing image names DescribeImages", async () => {
    await startFake();
    model.failNext("DescribeImages", 1, new FakeAwsError("InvalidParameterException", "Invalid parameter at 'imageIds'"));
    const r = await run();

    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe("runner: DescribeImages: InvalidParameterException: Invalid parameter at 'imageIds'");
  });

  // The build starter's first call is DescribeImages, made with the role and policy the same apply
  // created: IAM's eventual consistency can deny it for a while
  // (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency).
  it("an AccessDenied on DescribeImages before the build is retried for the bounded IAM window, then named", async () => {
    await startFake();
    model.failNext("DescribeImages", 2, new FakeAwsError("AccessDeniedException", "not authorized: ecr:DescribeImages"));
    const ok = await run();
    expect(ok.code).toBe(0);
    expect(ok.stderr).toContain("runner: DescribeImages: AccessDeniedException: not authorized: ecr:DescribeImages; IAM changes of this apply may not have propagated yet");

    await fake!.close();
    await startFake();
    model.failNext("DescribeImages", 10_000, new FakeAwsError("AccessDeniedException", "not authorized: ecr:DescribeImages"));
    const denied = await run(ARGS, { RUNNER_IAM_SETTLE_MS: "300" });
    expect(denied.code).toBe(1);
    expect(denied.stderr.trim().split("\n").at(-1)).toBe("runner: DescribeImages: AccessDeniedException: not authorized: ecr:DescribeImages");
    expect(fake!.callsOf("StartBuild")).toHaveLength(0);
  });
});
