// Pure pieces of the build runner: no processes, no network.
import { describe, expect, it } from "vitest";
import type { Build } from "@aws-sdk/client-codebuild";
import { AwsCallError, errorSummary, failedPhaseOf, idempotencyTokenFor, isRejection, pickAttachableBuild, tailLines } from "../src/runner/core.ts";
import { parseCliArgs } from "../src/runner/cli-args.ts";
import { makeRedactor } from "../src/runner/aws.ts";
import { consoleLink, parseRepositoryUri, phaseLine } from "../src/runner/request.ts";
import { backoffDelay, isRetryable, withRetry } from "../src/runner/retry.ts";
import { parseEvent } from "../src/runner/lambda-handler.ts";

const sdkError = (name: string, status: number, extra: object = {}) =>
  Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status }, ...extra });

describe("parseRepositoryUri", () => {
  it("reads registry id, region and (nested) repository name from an ECR URI", () => {
    expect(parseRepositoryUri("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app")).toEqual({
      repositoryName: "team/app",
      registryId: "123456789012",
      region: "eu-west-1",
    });
    expect(parseRepositoryUri("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/app").region).toBe("cn-north-1");
  });

  it("uses the path alone for other registries", () => {
    expect(parseRepositoryUri("localhost:5000/app")).toEqual({ repositoryName: "app" });
  });

  it("rejects URIs without a path or with a tag", () => {
    expect(() => parseRepositoryUri("app")).toThrow(/HOST\/REPOSITORY/);
    expect(() => parseRepositoryUri("localhost:5000/app:v1")).toThrow(/tag or digest/);
  });
});

describe("retry policy", () => {
  it("retries throttling, 429, 5xx and network resets but not auth or validation errors", () => {
    expect(isRetryable(sdkError("ThrottlingException", 400))).toBe(true);
    expect(isRetryable(sdkError("TooManyRequestsException", 400))).toBe(true);
    expect(isRetryable(sdkError("Whatever", 429))).toBe(true);
    expect(isRetryable(sdkError("InternalFailure", 500))).toBe(true);
    expect(isRetryable(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }))).toBe(true);
    expect(isRetryable(sdkError("AccessDeniedException", 400))).toBe(false);
    expect(isRetryable(sdkError("InvalidInputException", 400))).toBe(false);
    expect(isRetryable(sdkError("UnrecognizedClientException", 400))).toBe(false);
  });

  it("grows exponentially with full jitter up to the cap", () => {
    const policy = { baseMs: 100, capMs: 1000, maxAttempts: 5, random: () => 0.999 };
    expect([0, 1, 2, 3, 4, 10].map((a) => backoffDelay(a, policy))).toEqual([99, 199, 399, 799, 999, 999]);
    expect(backoffDelay(3, { ...policy, random: () => 0 })).toBe(0);
  });

  it("gives up after maxAttempts and passes non-retryable errors straight through", async () => {
    let calls = 0;
    const throttle = () => {
      calls++;
      return Promise.reject(sdkError("ThrottlingException", 400));
    };
    const policy = { baseMs: 1, capMs: 1, maxAttempts: 3 };
    await expect(withRetry("op", throttle, { policy })).rejects.toThrow("ThrottlingException");
    expect(calls).toBe(3);
    calls = 0;
    const denied = () => {
      calls++;
      return Promise.reject(sdkError("AccessDeniedException", 400));
    };
    await expect(withRetry("op", denied, { policy })).rejects.toThrow("AccessDeniedException");
    expect(calls).toBe(1);
  });
});

describe("build inspection", () => {
  const build = (status: string, env: Record<string, string>, id = status): Build => ({
    id,
    buildStatus: status as Build["buildStatus"],
    environment: {
      type: "LINUX_CONTAINER",
      image: "x",
      computeType: "BUILD_GENERAL1_SMALL",
      environmentVariables: Object.entries(env).map(([name, value]) => ({ name, value })),
    },
  });

  it("attaches only to an IN_PROGRESS build of the same tag and repository", () => {
    const builds = [
      build("FAILED", { IMAGE_TAG: "t", REPOSITORY_URI: "r" }),
      build("IN_PROGRESS", { IMAGE_TAG: "other", REPOSITORY_URI: "r" }, "other-tag"),
      build("IN_PROGRESS", { IMAGE_TAG: "t", REPOSITORY_URI: "other-repo" }, "other-repo"),
      build("IN_PROGRESS", { IMAGE_TAG: "t", REPOSITORY_URI: "r" }, "match"),
    ];
    expect(pickAttachableBuild(builds, "t", "r")?.id).toBe("match");
    expect(pickAttachableBuild(builds.slice(0, 3), "t", "r")).toBeUndefined();
  });

  it("reports the first phase that went wrong with its context messages", () => {
    const b: Build = {
      currentPhase: "COMPLETED",
      phases: [
        { phaseType: "PROVISIONING", phaseStatus: "SUCCEEDED" },
        { phaseType: "BUILD", phaseStatus: "FAILED", contexts: [{ statusCode: "COMMAND_EXECUTION_ERROR", message: "boom" }] },
        { phaseType: "POST_BUILD", phaseStatus: "FAILED", contexts: [{ statusCode: "X", message: "later" }] },
        { phaseType: "COMPLETED" },
      ],
    };
    expect(failedPhaseOf(b)).toEqual({ phase: "BUILD", messages: ["COMMAND_EXECUTION_ERROR: boom"] });
    expect(failedPhaseOf({ currentPhase: "QUEUED", phases: [] })).toEqual({ phase: "QUEUED", messages: [] });
  });

  it("takes the last lines of multi-line log events", () => {
    expect(tailLines(["a\n", "b\nc\n", "d"], 3)).toEqual(["b", "c", "d"]);
  });
});

describe("formatting", () => {
  it("builds the CodeBuild console link with the build id URL-encoded", () => {
    expect(consoleLink("eu-west-1", "proj", "proj:1234-abcd")).toBe(
      "https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/projects/proj/build/proj%3A1234-abcd/?region=eu-west-1",
    );
  });

  it("prints phase lines with a fixed-width elapsed time", () => {
    expect(phaseLine(12_000, "PROVISIONING")).toBe("[   12s] PROVISIONING");
    expect(phaseLine(125_000, "BUILD")).toBe("[ 2m05s] BUILD");
  });

  it("redacts known secrets but leaves short strings alone", () => {
    const redact = makeRedactor(["wJalrXUtnFEMI/K7MDENG", "short", ""]);
    expect(redact("key=wJalrXUtnFEMI/K7MDENG short")).toBe("key=**** short");
  });
});

describe("argument and event parsing", () => {
  const base = ["build", "--project", "p", "--source-location", "b/k.zip", "--repository-uri", "h/r", "--image-tag", "t"];

  it("parses a full command line", () => {
    expect(parseCliArgs([...base, "--base-image-uri", "h/base:1", "--region", "us-east-1", "--timeout", "90", "--force"])).toEqual({
      kind: "build",
      timeoutSeconds: 90,
      request: {
        projectName: "p",
        sourceLocation: "b/k.zip",
        repositoryUri: "h/r",
        imageTag: "t",
        baseImageUri: "h/base:1",
        region: "us-east-1",
        force: true,
      },
    });
  });

  it("reports every missing option at once", () => {
    expect(parseCliArgs(["build"])).toEqual({
      kind: "error",
      message: "missing --project, --source-location, --repository-uri, --image-tag",
    });
  });

  it("validates Lambda events field by field", () => {
    expect(() => parseEvent({ projectName: "p", sourceLocation: "b/k", repositoryUri: "h/r", imageTag: "t", force: "yes" })).toThrow(
      "force must be a boolean",
    );
    expect(parseEvent({ projectName: "p", sourceLocation: "b/k", repositoryUri: "h/r", imageTag: "t", baseImageUri: null })).toEqual({
      projectName: "p",
      sourceLocation: "b/k",
      repositoryUri: "h/r",
      imageTag: "t",
      force: false,
    });
  });
});

describe("StartBuild idempotency and error classification", () => {
  const req = {
    projectName: "p",
    sourceLocation: "b/k.zip",
    repositoryUri: "h/r",
    imageTag: "t",
    baseImageUri: "h/base:1",
    region: "eu-west-1",
  };

  it("gives the same token to the same request, and a new one per generation or changed parameter", () => {
    const token = idempotencyTokenFor(req, 0);
    expect(idempotencyTokenFor({ ...req }, 0)).toBe(token);
    // The region is where the call goes, not a StartBuild parameter.
    expect(idempotencyTokenFor({ ...req, region: "us-east-1" }, 0)).toBe(token);
    const others = [
      idempotencyTokenFor(req, 1),
      idempotencyTokenFor({ ...req, projectName: "q" }, 0),
      idempotencyTokenFor({ ...req, sourceLocation: "b/other.zip" }, 0),
      idempotencyTokenFor({ ...req, repositoryUri: "h/s" }, 0),
      idempotencyTokenFor({ ...req, imageTag: "u" }, 0),
      idempotencyTokenFor({ ...req, baseImageUri: undefined }, 0),
    ];
    expect(new Set([token, ...others]).size).toBe(others.length + 1);
  });

  it("counts only AWS's modelled client errors as a refusal; unreadable responses and server faults may have started a build", () => {
    expect(isRejection(new AwsCallError("StartBuild", sdkError("ResourceNotFoundException", 400, { $fault: "client" })))).toBe(true);
    expect(isRejection(sdkError("AccessDeniedException", 400, { $fault: "client" }))).toBe(true);
    expect(isRejection(sdkError("InternalFailure", 500, { $fault: "server" }))).toBe(false);
    expect(isRejection(Object.assign(new SyntaxError("Unexpected end of JSON input"), { $metadata: { httpStatusCode: 200 } }))).toBe(false);
    expect(isRejection(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }))).toBe(false);
  });

  it("summarises an unreadable response in one line and prefixes the call", () => {
    const err = new TypeError("Expected real number, got implicit NaN\n  Deserialization error: to see the raw response, inspect the hidden field {error}.$response on this object.");
    expect(errorSummary(err)).toBe("unreadable response (TypeError: Expected real number, got implicit NaN)");
    expect(new AwsCallError("StartBuild", err).message).toBe("StartBuild: unreadable response (TypeError: Expected real number, got implicit NaN)");
  });
});
