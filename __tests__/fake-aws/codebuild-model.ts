// TEST-ONLY FAKE of AWS CodeBuild, ECR (DescribeImages) and CloudWatch Logs (GetLogEvents).
// This is NOT AWS: an in-memory model with just enough behaviour for the build runner's tests,
// served over the JSON 1.1 protocol by router.ts.
//
// Builds are driven either by a script (phase sequence + final status, advanced one step per
// BatchGetBuilds poll, so tests are deterministic whatever the timing) or by hand through
// BuildControls — e.g. from `onBuildStarted`, where an end-to-end test can really execute a
// buildspec and report its phases, log lines and pushed image.
import { createHash, randomUUID } from "node:crypto";
import { FakeAwsError, RawResponse, startFakeAws, type FakeAws, type FakeHandlers } from "./router.ts";

export const FAKE_ACCOUNT = "123456789012";
export const FAKE_REGION = "eu-west-1";

/** CodeBuild's phases in order (COMPLETED is added when a build ends). */
export const STANDARD_PHASES = [
  "SUBMITTED",
  "QUEUED",
  "PROVISIONING",
  "DOWNLOAD_SOURCE",
  "INSTALL",
  "PRE_BUILD",
  "BUILD",
  "POST_BUILD",
  "UPLOAD_ARTIFACTS",
  "FINALIZING",
] as const;

export type FinalStatus = "SUCCEEDED" | "FAILED" | "FAULT" | "TIMED_OUT" | "STOPPED";

export interface BuildScript {
  /** Phases to go through; default STANDARD_PHASES. */
  phases?: string[];
  /** Default SUCCEEDED. */
  status?: FinalStatus;
  /** For a non-SUCCEEDED status: the phase that ends badly (default the last); later phases are skipped. */
  failedPhase?: string;
  /** Context recorded on the failed phase. */
  failure?: { statusCode: string; message: string };
  /** Written to the build's log stream when it starts. */
  logLines?: string[];
  /** On SUCCEEDED, push IMAGE_TAG into REPOSITORY_URI's repository (default true). */
  pushImage?: boolean;
  /** BatchGetBuilds polls spent in each phase (default 1). */
  pollsPerPhase?: number;
  /** Stay in this phase forever (timeout and signal tests). */
  hangIn?: string;
}

export interface FakePhase {
  phaseType: string;
  phaseStatus?: string;
  startTime: number;
  endTime?: number;
  durationInSeconds?: number;
  contexts?: { statusCode: string; message: string }[];
}

export interface FakeBuild {
  id: string;
  arn: string;
  buildNumber: number;
  projectName: string;
  startTime: number;
  endTime?: number;
  currentPhase: string;
  buildStatus: string;
  buildComplete: boolean;
  phases: FakePhase[];
  source: { type: string; location?: string };
  environment: {
    type: string;
    image: string;
    computeType: string;
    environmentVariables: { name: string; value: string; type?: string }[];
  };
  logs: { groupName: string; streamName: string; deepLink: string };
  initiator: string;
}

export interface BuildControls {
  readonly build: FakeBuild;
  /** Value of one of the build's environment variables (IMAGE_TAG, REPOSITORY_URI, ...). */
  env(name: string): string | undefined;
  /** Ends the current phase as SUCCEEDED and starts `phaseType`. */
  enterPhase(phaseType: string): void;
  appendLog(...lines: string[]): void;
  /** Ends the build: the current phase gets `status` (and the context), then COMPLETED. */
  finish(status: FinalStatus, failure?: { statusCode: string; message: string }): void;
  /** Puts a tag into the fake ECR (default: the build's REPOSITORY_URI:IMAGE_TAG). */
  pushImage(repositoryUri?: string, tag?: string, digest?: string): string;
}

export interface FakeModelOptions {
  region?: string;
  /**
   * The CodeBuild projects that exist. StartBuild and ListBuildsForProject on any other name
   * answer ResourceNotFoundException, as CodeBuild does. Default: none (add them with addProject).
   */
  projects?: readonly string[] | ((projectName: string) => boolean);
  /** Clock in epoch ms, for the idempotency token's five-minute validity. Default Date.now. */
  now?: () => number;
  /** Used for builds started without a queued script and without onBuildStarted. Default: success. */
  defaultScript?: BuildScript;
  /**
   * Called after StartBuild creates a build. Builds without a queued script are then driven by hand
   * through `controls`. StartBuild's response waits for the returned promise, so start long work
   * (e.g. running a buildspec) without awaiting it and report progress through `controls`.
   */
  onBuildStarted?: (build: FakeBuild, controls: BuildControls) => void | Promise<void>;
  /** Replaces the in-memory ECR for DescribeImages (e.g. to ask a local registry). */
  describeImages?: (input: any) => unknown | Promise<unknown>;
  /** Page size of ListBuildsForProject (AWS: 100). */
  listPageSize?: number;
}

/** How long CodeBuild honours a StartBuild idempotency token (API reference: "valid for 5 minutes"). */
export const IDEMPOTENCY_WINDOW_MS = 5 * 60_000;

export interface FakeModel {
  handlers: FakeHandlers;
  builds: Map<string, FakeBuild>;
  /** repositoryName → tag → digest. */
  images: Map<string, Map<string, string>>;
  /** Script for the next StartBuild (FIFO). */
  scriptNextBuild(script: BuildScript): void;
  /** A build that already exists (e.g. started by an earlier, interrupted apply). */
  seedBuild(opts: {
    projectName: string;
    imageTag: string;
    repositoryUri: string;
    script?: BuildScript;
    /** Seed an already finished build instead. */
    finished?: FinalStatus;
  }): FakeBuild;
  seedImage(repositoryUri: string, tag: string, digest?: string): string;
  /** Makes a CodeBuild project exist. */
  addProject(projectName: string): void;
  /** The next `count` calls of `operation` fail with `error` (default: ThrottlingException). */
  failNext(operation: string, count: number, error?: FakeAwsError): void;
  /**
   * The next `count` calls of `operation` take effect (a StartBuild does start its build) but are
   * answered with a body the SDK cannot parse, as a response cut short would be.
   */
  garbleNext(operation: string, count: number): void;
  controls(buildId: string): BuildControls;
  /** Lets a scripted build that `hangIn` a phase carry on with its script. */
  resume(buildId: string): void;
  logEvents(buildId: string): string[];
}

export function fakeDigest(seed: string): string {
  return `sha256:${createHash("sha256").update(seed).digest("hex")}`;
}

function repositoryNameOf(uri: string): string {
  return uri.slice(uri.indexOf("/") + 1);
}

const nowSeconds = () => Date.now() / 1000;

export function createFakeCodeBuildModel(opts: FakeModelOptions = {}): FakeModel {
  const region = opts.region ?? FAKE_REGION;
  const builds = new Map<string, FakeBuild>();
  const images = new Map<string, Map<string, string>>();
  const logStreams = new Map<string, { timestamp: number; message: string }[]>();
  const scripts = new Map<string, { script: BuildScript; pollsInPhase: number; seq: string[] }>();
  const queued: BuildScript[] = [];
  const failures = new Map<string, { count: number; error: FakeAwsError }>();
  const idempotency = new Map<string, { buildId: string; fingerprint: string; at: number }>();
  const garbles = new Map<string, number>();
  const now = opts.now ?? Date.now;
  const extraProjects = new Set<string>();
  const projectExists = (name: string) =>
    extraProjects.has(name) ||
    (typeof opts.projects === "function" ? opts.projects(name) : (opts.projects ?? []).includes(name));
  const projectArn = (name: string) => `arn:aws:codebuild:${region}:${FAKE_ACCOUNT}:project/${name}`;
  let buildNumber = 0;

  const seedImage = (repositoryUri: string, tag: string, digest?: string) => {
    const name = repositoryNameOf(repositoryUri);
    const d = digest ?? fakeDigest(`${repositoryUri}:${tag}`);
    if (!images.has(name)) images.set(name, new Map());
    images.get(name)!.set(tag, d);
    return d;
  };

  const controls = (buildId: string): BuildControls => {
    const build = builds.get(buildId);
    if (!build) throw new Error(`fake CodeBuild: no build ${buildId}`);
    const current = () => build.phases[build.phases.length - 1];
    const endCurrent = (status: string, context?: { statusCode: string; message: string }) => {
      const p = current();
      if (!p || p.endTime !== undefined) return;
      p.endTime = nowSeconds();
      p.durationInSeconds = Math.round(p.endTime - p.startTime);
      p.phaseStatus = status;
      if (context) p.contexts = [context];
    };
    const env = (name: string) => build.environment.environmentVariables.find((v) => v.name === name)?.value;
    const c: BuildControls = {
      build,
      env,
      enterPhase(phaseType) {
        endCurrent("SUCCEEDED");
        build.phases.push({ phaseType, startTime: nowSeconds(), phaseStatus: "IN_PROGRESS" });
        build.currentPhase = phaseType;
      },
      appendLog(...lines) {
        const stream = logStreams.get(build.logs.streamName)!;
        for (const message of lines) stream.push({ timestamp: Date.now(), message: `${message}\n` });
      },
      finish(status, failure) {
        if (build.buildComplete) return;
        endCurrent(status, status === "SUCCEEDED" ? undefined : failure);
        build.phases.push({ phaseType: "COMPLETED", startTime: nowSeconds() });
        build.currentPhase = "COMPLETED";
        build.buildStatus = status;
        build.buildComplete = true;
        build.endTime = nowSeconds();
        scripts.delete(build.id);
      },
      pushImage(repositoryUri, tag, digest) {
        return seedImage(repositoryUri ?? env("REPOSITORY_URI")!, tag ?? env("IMAGE_TAG")!, digest);
      },
    };
    return c;
  };

  const createBuild = (projectName: string, sourceLocation: string | undefined, envVars: FakeBuild["environment"]["environmentVariables"]) => {
    const uuid = randomUUID();
    const id = `${projectName}:${uuid}`;
    const build: FakeBuild = {
      id,
      arn: `arn:aws:codebuild:${region}:${FAKE_ACCOUNT}:build/${id}`,
      buildNumber: ++buildNumber,
      projectName,
      startTime: nowSeconds(),
      currentPhase: "SUBMITTED",
      buildStatus: "IN_PROGRESS",
      buildComplete: false,
      phases: [],
      source: { type: "S3", location: sourceLocation },
      environment: {
        type: "LINUX_CONTAINER",
        image: "aws/codebuild/standard:7.0",
        computeType: "BUILD_GENERAL1_SMALL",
        environmentVariables: envVars,
      },
      logs: {
        groupName: `/aws/codebuild/${projectName}`,
        streamName: uuid,
        deepLink: `https://console.aws.amazon.com/cloudwatch/home?region=${region}#logEvent:group=/aws/codebuild/${projectName};stream=${uuid}`,
      },
      initiator: "fake-user",
    };
    builds.set(id, build);
    logStreams.set(uuid, []);
    return build;
  };

  const attachScript = (build: FakeBuild, script: BuildScript) => {
    const all = script.phases ?? [...STANDARD_PHASES];
    const status = script.status ?? "SUCCEEDED";
    const failAt = status === "SUCCEEDED" ? -1 : script.failedPhase ? all.indexOf(script.failedPhase) : all.length - 1;
    if (script.failedPhase && failAt < 0) throw new Error(`fake CodeBuild: failedPhase ${script.failedPhase} not in phases`);
    const seq = failAt >= 0 ? all.slice(0, failAt + 1) : all;
    const c = controls(build.id);
    c.enterPhase(seq[0]!);
    if (script.logLines?.length) c.appendLog(...script.logLines);
    scripts.set(build.id, { script, pollsInPhase: 0, seq });
  };

  /** One scripted step: called for every build a BatchGetBuilds asks about. */
  const advance = (build: FakeBuild) => {
    const s = scripts.get(build.id);
    if (!s || build.buildComplete) return;
    if (s.script.hangIn && build.currentPhase === s.script.hangIn) return;
    if (++s.pollsInPhase < (s.script.pollsPerPhase ?? 1)) return;
    s.pollsInPhase = 0;
    const c = controls(build.id);
    const next = s.seq[s.seq.indexOf(build.currentPhase) + 1];
    if (next) {
      c.enterPhase(next);
      return;
    }
    const status = s.script.status ?? "SUCCEEDED";
    if (status === "SUCCEEDED" && s.script.pushImage !== false) c.pushImage();
    c.finish(status, s.script.failure ?? { statusCode: "COMMAND_EXECUTION_ERROR", message: `Error in ${build.currentPhase}` });
  };

  const failIfInjected = (operation: string) => {
    const f = failures.get(operation);
    if (f && f.count > 0) {
      f.count--;
      throw f.error;
    }
  };

  const wrap = (operation: string, fn: (input: any) => unknown | Promise<unknown>) => async (input: any) => {
    failIfInjected(operation);
    const out = await fn(input);
    const g = garbles.get(operation) ?? 0;
    if (g > 0) {
      garbles.set(operation, g - 1);
      const text = JSON.stringify(out);
      return new RawResponse(text.slice(0, Math.floor(text.length / 2)));
    }
    return out;
  };

  const handlers: FakeHandlers = {
    // https://docs.aws.amazon.com/codebuild/latest/APIReference/API_StartBuild.html
    StartBuild: wrap("StartBuild", async (input) => {
      if (!input.projectName) throw new FakeAwsError("InvalidInputException", "projectName is required");
      // Errors: ResourceNotFoundException "The specified AWS resource cannot be found." The message
      // is the one moto 5.2 gives (checked against it in runner-moto.test.ts).
      if (!projectExists(input.projectName)) {
        throw new FakeAwsError("ResourceNotFoundException", `Project cannot be found: ${projectArn(input.projectName)}`);
      }
      // idempotencyToken: "valid for 5 minutes. If you repeat the StartBuild request with the same
      // token, but change a parameter, CodeBuild returns a parameter mismatch error." The API lists
      // no dedicated error for that, so this answers InvalidInputException, StartBuild's error for
      // input that is not valid.
      const fingerprint = JSON.stringify({ ...input, idempotencyToken: undefined });
      if (input.idempotencyToken) {
        const prior = idempotency.get(input.idempotencyToken);
        if (prior && now() - prior.at < IDEMPOTENCY_WINDOW_MS) {
          if (prior.fingerprint !== fingerprint) {
            throw new FakeAwsError("InvalidInputException", "idempotency token was used with different parameters");
          }
          return { build: builds.get(prior.buildId) };
        }
      }
      const build = createBuild(input.projectName, input.sourceLocationOverride, input.environmentVariablesOverride ?? []);
      if (input.sourceTypeOverride) build.source.type = input.sourceTypeOverride;
      if (input.idempotencyToken) idempotency.set(input.idempotencyToken, { buildId: build.id, fingerprint, at: now() });
      const script = queued.shift() ?? (opts.onBuildStarted ? undefined : opts.defaultScript ?? {});
      if (script) attachScript(build, script);
      else controls(build.id).enterPhase("SUBMITTED");
      await opts.onBuildStarted?.(build, controls(build.id));
      return { build };
    }),
    BatchGetBuilds: wrap("BatchGetBuilds", (input) => {
      const ids: string[] = input.ids ?? [];
      const found = ids.map((id) => builds.get(id)).filter((b): b is FakeBuild => !!b);
      found.forEach(advance);
      return { builds: found, buildsNotFound: ids.filter((id) => !builds.has(id)) };
    }),
    // https://docs.aws.amazon.com/codebuild/latest/APIReference/API_ListBuildsForProject.html
    ListBuildsForProject: wrap("ListBuildsForProject", (input) => {
      if (!projectExists(input.projectName)) {
        throw new FakeAwsError("ResourceNotFoundException", `The provided project ${projectArn(input.projectName)} does not exist`);
      }
      // sortOrder: "sorted by build number … If this is not specified, the results are sorted in
      // descending order … If the project has more than 100 builds, setting the sort order will
      // result in an error."
      const all = [...builds.values()].filter((b) => b.projectName === input.projectName);
      if (input.sortOrder !== undefined) {
        if (input.sortOrder !== "ASCENDING" && input.sortOrder !== "DESCENDING") {
          throw new FakeAwsError("InvalidInputException", `Invalid sort order: ${input.sortOrder}`);
        }
        if (all.length > 100) {
          throw new FakeAwsError("InvalidInputException", "sortOrder cannot be set for a project with more than 100 builds");
        }
      }
      const ascending = input.sortOrder === "ASCENDING";
      const ordered = all.sort((a, b) => (ascending ? a.buildNumber - b.buildNumber : b.buildNumber - a.buildNumber)).map((b) => b.id);
      // nextToken: "if there are more than 100 items in the list, only the first 100 items are
      // returned, along with a unique string called a nextToken." Opaque to the caller.
      const pageSize = opts.listPageSize ?? 100;
      let offset = 0;
      if (input.nextToken !== undefined) {
        const m = /^fake-page-(\d+)$/.exec(String(input.nextToken));
        if (!m) throw new FakeAwsError("InvalidInputException", "Invalid next token");
        offset = Number(m[1]);
      }
      const ids = ordered.slice(offset, offset + pageSize);
      return { ids, ...(offset + pageSize < ordered.length ? { nextToken: `fake-page-${offset + pageSize}` } : {}) };
    }),
    StopBuild: wrap("StopBuild", (input) => {
      const build = builds.get(input.id);
      if (!build) throw new FakeAwsError("ResourceNotFoundException", `Build ${input.id} not found`);
      controls(build.id).finish("STOPPED");
      return { build };
    }),
    DescribeImages: wrap("DescribeImages", async (input) => {
      if (opts.describeImages) return opts.describeImages(input);
      const repo = images.get(input.repositoryName);
      const registryId = input.registryId ?? FAKE_ACCOUNT;
      if (!repo) {
        throw new FakeAwsError(
          "RepositoryNotFoundException",
          `The repository with name '${input.repositoryName}' does not exist in the registry with id '${registryId}'`,
        );
      }
      const details = [];
      for (const { imageTag } of input.imageIds ?? []) {
        const digest = repo.get(imageTag);
        if (!digest) {
          throw new FakeAwsError(
            "ImageNotFoundException",
            `The image with imageId {imageDigest:'null', imageTag:'${imageTag}'} does not exist within the repository with name '${input.repositoryName}' in the registry with id '${registryId}'`,
          );
        }
        details.push({ registryId, repositoryName: input.repositoryName, imageDigest: digest, imageTags: [imageTag], imagePushedAt: nowSeconds() });
      }
      return { imageDetails: details };
    }),
    GetLogEvents: wrap("GetLogEvents", (input) => {
      const stream = logStreams.get(input.logStreamName);
      if (!stream) throw new FakeAwsError("ResourceNotFoundException", "The specified log stream does not exist.");
      const limit = input.limit ?? 10_000;
      const events = input.startFromHead ? stream.slice(0, limit) : stream.slice(-limit);
      return {
        events: events.map((e) => ({ ...e, ingestionTime: e.timestamp })),
        nextForwardToken: "f/fake",
        nextBackwardToken: "b/fake",
      };
    }),
  };

  return {
    handlers,
    builds,
    images,
    scriptNextBuild: (script) => void queued.push(script),
    seedBuild({ projectName, imageTag, repositoryUri, script, finished }) {
      if (!projectExists(projectName)) throw new Error(`fake CodeBuild: seedBuild in unknown project ${projectName}`);
      const build = createBuild(projectName, "seed-bucket/seed.zip", [
        { name: "IMAGE_TAG", value: imageTag, type: "PLAINTEXT" },
        { name: "REPOSITORY_URI", value: repositoryUri, type: "PLAINTEXT" },
      ]);
      attachScript(build, script ?? {});
      if (finished) controls(build.id).finish(finished);
      return build;
    },
    seedImage,
    addProject: (name) => void extraProjects.add(name),
    garbleNext: (operation, count) => void garbles.set(operation, count),
    failNext(operation, count, error) {
      failures.set(operation, { count, error: error ?? new FakeAwsError("ThrottlingException", "Rate exceeded") });
    },
    controls,
    resume(buildId) {
      const s = scripts.get(buildId);
      if (s) s.script = { ...s.script, hangIn: undefined };
    },
    logEvents: (buildId) => logStreams.get(builds.get(buildId)?.logs.streamName ?? "")?.map((e) => e.message) ?? [],
  };
}

/** The usual pairing: the scripted model served on a random local port. */
export async function startFakeCodeBuild(opts: FakeModelOptions = {}): Promise<{ fake: FakeAws; model: FakeModel }> {
  const model = createFakeCodeBuildModel(opts);
  const fake = await startFakeAws(model.handlers);
  return { fake, model };
}
