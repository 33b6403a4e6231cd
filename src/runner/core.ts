// The build runner core: "make sure URI:TAG exists", by skipping, attaching to a running
// CodeBuild build or starting one, then waiting for it. Knows nothing of Terraform, argv,
// process exit codes or Lambda; the CLI and the Lambda handler are thin shells around runBuild.
import { createHash } from "node:crypto";
import {
  BatchGetBuildsCommand,
  ListBuildsForProjectCommand,
  StartBuildCommand,
  StopBuildCommand,
  type Build,
  type CodeBuildClient,
  type EnvironmentVariable,
} from "@aws-sdk/client-codebuild";
import { DescribeImagesCommand, type ECRClient } from "@aws-sdk/client-ecr";
import { GetLogEventsCommand, type CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
import { consoleLink, formatElapsed, parseRepositoryUri, phaseLine, projectConsoleLink, type BuildRequest } from "./request.ts";
import { AbortedError, backoffDelay, DEFAULT_RETRY, IAM_SETTLE_MS, isAccessDenied, sleep, withRetry, type RetryPolicy } from "./retry.ts";

/**
 * Every AWS API call the runner core sends (the CLI and the build starter alike), as the IAM
 * action it needs and what the action is on: `lambda-images iam` grants exactly these.
 */
export const RUNNER_AWS_CALLS = [
  { action: "ecr:DescribeImages", on: "repository" },
  { action: "codebuild:ListBuildsForProject", on: "project" },
  { action: "codebuild:StartBuild", on: "project" },
  { action: "codebuild:BatchGetBuilds", on: "project" },
  { action: "codebuild:StopBuild", on: "project" },
  { action: "logs:GetLogEvents", on: "build-log-group" },
] as const;

export interface RunnerClients {
  codebuild: CodeBuildClient;
  ecr: ECRClient;
  logs: CloudWatchLogsClient;
}

export interface RunnerLogger {
  /** A line of narrative (stdout for the CLI). */
  info(line: string): void;
  /** A warning or problem (stderr for the CLI). */
  warn(line: string): void;
  /** A transient status line, overwritten by the next one; only meaningful on a terminal. */
  progress?(line: string): void;
}

export interface RunOptions {
  pollIntervalMs: number;
  retry?: RetryPolicy;
  /** Aborting stops the build (StopBuild) and throws BuildInterruptedError; the reason is passed through. */
  signal?: AbortSignal;
  /** Epoch ms after which we stop waiting but leave the build running (BuildStillRunningError). */
  detachAt?: number;
  now?: () => number;
}

export type BuildOutcome = "skipped" | "built" | "attached-built";

export interface BuildResult {
  outcome: BuildOutcome;
  imageUri: string;
  digest: string;
  buildId?: string;
}

export class BuildFailedError extends Error {
  override name = "BuildFailedError";
  constructor(
    readonly buildId: string,
    readonly status: string,
    /** The first phase that did not succeed, e.g. BUILD. */
    readonly phase: string,
    /** `STATUS_CODE: message` from that phase's contexts. */
    readonly messages: string[],
    readonly logTail: string[],
    /** Why the log tail is empty or partial, if it is. */
    readonly logNote: string | undefined,
    readonly consoleLink: string,
  ) {
    super(`build ${buildId} ${status} in phase ${phase}${messages.length ? `: ${messages.join("; ")}` : ""}`);
  }
}

/** The caller's deadline came before the build finished; the build was deliberately left running. */
export class BuildStillRunningError extends Error {
  override name = "BuildStillRunningError";
  constructor(
    readonly buildId: string,
    readonly consoleLink: string,
  ) {
    super(
      `build ${buildId} is still running; it was left running and the next apply will attach to it ` +
        `(${consoleLink})`,
    );
  }
}

/** The caller aborted (signal or timeout); `stopped` says whether StopBuild went through. */
export class BuildInterruptedError extends Error {
  override name = "BuildInterruptedError";
  constructor(
    readonly reason: unknown,
    readonly buildId: string | undefined,
    readonly stopped: boolean,
    readonly consoleLink: string | undefined,
  ) {
    super(
      buildId
        ? stopped
          ? `build ${buildId} was stopped`
          : `build ${buildId} could not be stopped; it may still be running (${consoleLink})`
        : "interrupted before any build was started",
    );
  }
}

/** CodeBuild said SUCCEEDED but the tag is not in the registry (e.g. the buildspec pushed elsewhere). */
export class ImageMissingError extends Error {
  override name = "ImageMissingError";
  constructor(
    readonly buildId: string,
    readonly imageUri: string,
    readonly consoleLink: string,
  ) {
    super(
      `build ${buildId} SUCCEEDED but ${imageUri} is not in the registry; ` +
        `check that the buildspec pushes $REPOSITORY_URI:$IMAGE_TAG (${consoleLink})`,
    );
  }
}

/** An AWS call failed for good (after retries); the message names the call: `StartBuild: Name: message`. */
export class AwsCallError extends Error {
  override name = "AwsCallError";
  constructor(
    /** The API operation, e.g. `StartBuild`. */
    readonly call: string,
    override readonly cause: unknown,
  ) {
    super(`${call}: ${errorSummary(cause)}`);
  }
}

/**
 * StartBuild's outcome is unknown (its response could not be read) and the runner could not find
 * out whether a build of this tag is running.
 */
export class StartUnknownError extends Error {
  override name = "StartUnknownError";
}

const LOG_TAIL_LINES = 50;
/** ListBuildsForProject pages (100 ids each) searched for a build to attach to. */
const ATTACH_SEARCH_PAGES = 2;
const TERMINAL_FAILURES = new Set(["FAILED", "FAULT", "TIMED_OUT", "STOPPED"]);

export async function runBuild(
  req: BuildRequest,
  clients: RunnerClients,
  log: RunnerLogger,
  opts: RunOptions,
): Promise<BuildResult> {
  const ctx = new RunContext(req, clients, log, opts);
  const imageUri = `${req.repositoryUri}:${req.imageTag}`;

  if (!req.force) {
    const digest = await ctx.findImageDigest();
    if (digest) {
      log.info(`runner: ${imageUri} already exists (content-addressed tag), skipping build`);
      log.info(`runner: digest ${digest}`);
      return { outcome: "skipped", imageUri, digest };
    }
  } else {
    log.info(`runner: --force given, building ${imageUri} even if the tag exists`);
  }

  const scan = await ctx.scanBuilds();
  let buildId: string;
  let attached = false;
  if (scan.inProgress) {
    buildId = scan.inProgress;
    attached = true;
    ctx.buildIsUnderway();
    log.info(`runner: attaching to in-progress build ${buildId} of the same tag (started by an earlier or concurrent run)`);
  } else {
    const started = await ctx.startBuild(scan);
    buildId = started.id;
    if (!started.recovered) log.info(`runner: started build ${buildId}`);
  }
  log.info(`runner: console ${consoleLink(req.region, req.projectName, buildId)}`);

  const build = await ctx.waitForBuild(buildId);
  const status = build.buildStatus ?? "UNKNOWN";
  const took = build.startTime && build.endTime ? ` in ${formatElapsed(+build.endTime - +build.startTime)}` : "";
  if (status === "SUCCEEDED") {
    log.info(`runner: build ${buildId} SUCCEEDED${took}`);
    const digest = await ctx.findImageDigest();
    if (!digest) throw new ImageMissingError(buildId, imageUri, consoleLink(req.region, req.projectName, buildId));
    log.info(`runner: image ${imageUri}`);
    log.info(`runner: digest ${digest}`);
    return { outcome: attached ? "attached-built" : "built", imageUri, digest, buildId };
  }
  throw await ctx.failure(build);
}

/** Human-readable report of a failed build, one line per element (CLI stderr, Lambda error message). */
export function describeFailure(err: BuildFailedError): string[] {
  const lines = [`runner: build ${err.buildId} ${err.status} in phase ${err.phase}`];
  for (const m of err.messages) lines.push(`runner:   ${m}`);
  if (err.logTail.length) {
    lines.push(`runner: last ${err.logTail.length} log lines:`);
    for (const l of err.logTail) lines.push(`  | ${l}`);
  }
  if (err.logNote) lines.push(`runner: ${err.logNote}`);
  lines.push(`runner: console ${err.consoleLink}`);
  return lines;
}

/** Whether a build produces `imageTag` into `repositoryUri`, judged by its environment overrides. */
export function buildsSameImage(b: Build, imageTag: string, repositoryUri: string): boolean {
  const env = b.environment?.environmentVariables ?? [];
  const value = (name: string) => env.find((v) => v.name === name)?.value;
  const repo = value("REPOSITORY_URI");
  // A project may serve several repositories; the tag alone is not proof of the same image.
  return value("IMAGE_TAG") === imageTag && (repo === undefined || repo === repositoryUri);
}

/** Picks the IN_PROGRESS build that is producing the same tag into the same repository. */
export function pickAttachableBuild(builds: Build[], imageTag: string, repositoryUri: string): Build | undefined {
  return builds.find((b) => b.buildStatus === "IN_PROGRESS" && buildsSameImage(b, imageTag, repositoryUri));
}

/**
 * StartBuild's idempotency token for a request. CodeBuild hands back the build a token started,
 * instead of starting another, when the same token comes again within five minutes, and rejects
 * the token if a parameter changed (https://docs.aws.amazon.com/codebuild/latest/APIReference/API_StartBuild.html,
 * idempotencyToken). Derived from everything StartBuild carries, so two runs that reach the same
 * project, source and tag at once collapse into one build, and runs with different parameters
 * never collide. `generation` counts the finished builds of this tag, so a retry after a failed or
 * stopped build gets a fresh token and really starts again rather than being handed the failure.
 */
export function idempotencyTokenFor(req: BuildRequest, generation: number): string {
  const parts = [req.projectName, req.sourceLocation, req.repositoryUri, req.imageTag, req.baseImageUri ?? "", generation];
  return createHash("sha256").update(JSON.stringify(parts)).digest("hex");
}

/** What ListBuildsForProject and BatchGetBuilds say about this tag's builds. */
export interface BuildScan {
  /** Newest IN_PROGRESS build of the same image. */
  inProgress?: string;
  /** Finished builds (any status) of the same image: the idempotency token's generation. */
  finished: number;
  /** Builds of the same image, newest first. */
  sameImage: string[];
  /** Every build id seen, so that a build that appears later can be told apart. */
  seen: Set<string>;
}

/** The first phase that ended badly, and its context messages. */
export function failedPhaseOf(build: Build): { phase: string; messages: string[] } {
  const bad = (build.phases ?? []).find((p) => p.phaseStatus && TERMINAL_FAILURES.has(p.phaseStatus));
  const messages = (bad?.contexts ?? [])
    .filter((c) => c.message || c.statusCode)
    .map((c) => [c.statusCode, c.message].filter(Boolean).join(": "));
  return { phase: bad?.phaseType ?? build.currentPhase ?? "UNKNOWN", messages };
}

/** Last `n` lines of a set of log events (an event may hold several lines). */
export function tailLines(messages: string[], n = LOG_TAIL_LINES): string[] {
  const lines = messages.flatMap((m) => m.replace(/\r?\n$/, "").split(/\r?\n/));
  return lines.slice(-n);
}

class RunContext {
  private readonly retry: RetryPolicy;
  private readonly now: () => number;
  /** Set once a build of this run was started or attached to: from then on AccessDenied is final. */
  private buildUnderway = false;
  /** When the first AccessDenied of this run came (the start of the IAM grace window). */
  private firstDeniedAt?: number;
  private deniedRetries = 0;

  constructor(
    private readonly req: BuildRequest,
    private readonly clients: RunnerClients,
    private readonly log: RunnerLogger,
    private readonly opts: RunOptions,
  ) {
    this.retry = opts.retry ?? DEFAULT_RETRY;
    this.now = opts.now ?? Date.now;
  }

  /** One AWS call with retries; a final failure becomes an AwsCallError naming `what`. */
  private async call<T>(what: string, fn: (abortSignal?: AbortSignal) => Promise<T>, signal = this.opts.signal): Promise<T> {
    for (;;) {
      try {
        return await withRetry(what, () => fn(signal), {
          policy: this.retry,
          signal,
          onRetry: (w, err, delay) =>
            this.log.warn(`runner: ${w}: ${errorSummary(err)}; retrying in ${(delay / 1000).toFixed(1)}s`),
        });
      } catch (err) {
        if (err instanceof AbortedError || signal?.aborted) throw err;
        const delay = this.iamGraceDelay(err);
        if (delay === undefined) throw new AwsCallError(what, err);
        this.log.warn(
          `runner: ${what}: ${errorSummary(err)}; IAM changes of this apply may not have propagated yet, retrying in ${(delay / 1000).toFixed(1)}s`,
        );
        await sleep(delay, signal);
      }
    }
  }

  /**
   * Before the run's build is underway, an AccessDenied may be IAM's eventual consistency (the
   * policy an apply just wrote is not visible yet; see IAM_SETTLE_MS): retried with backoff for a
   * bounded time from the first one. Returns the delay, or undefined when the error is final.
   */
  private iamGraceDelay(err: unknown): number | undefined {
    if (this.buildUnderway || !isAccessDenied(err)) return undefined;
    const now = this.now();
    this.firstDeniedAt ??= now;
    const left = this.firstDeniedAt + (this.retry.iamSettleMs ?? IAM_SETTLE_MS) - now;
    if (left <= 0) {
      if (this.deniedRetries > 0) {
        this.log.warn(`runner: still denied after ${Math.round((now - this.firstDeniedAt) / 1000)}s of retries: a permission is missing, not propagating`);
      }
      return undefined;
    }
    return Math.min(left, Math.max(1, backoffDelay(this.deniedRetries++, this.retry)));
  }

  async findImageDigest(): Promise<string | undefined> {
    const ref = parseRepositoryUri(this.req.repositoryUri);
    try {
      const out = await this.call("DescribeImages", (abortSignal) =>
        this.clients.ecr.send(
          new DescribeImagesCommand({
            repositoryName: ref.repositoryName,
            ...(ref.registryId ? { registryId: ref.registryId } : {}),
            imageIds: [{ imageTag: this.req.imageTag }],
          }),
          { abortSignal },
        ),
      );
      return out.imageDetails?.find((d) => d.imageDigest)?.imageDigest;
    } catch (err) {
      // A missing repository is "no image yet": ECR create-on-push templates make it legitimate.
      if (isNamed(causeOf(err), "ImageNotFoundException", "RepositoryNotFoundException")) return undefined;
      throw await this.rethrowIfAborted(err, undefined);
    }
  }

  /**
   * Looks through the project's newest builds for this image. No sortOrder is sent: newest first
   * is ListBuildsForProject's default, and AWS documents that setting a sort order on a project
   * with more than 100 builds is an error
   * (https://docs.aws.amazon.com/codebuild/latest/APIReference/API_ListBuildsForProject.html).
   */
  async scanBuilds(): Promise<BuildScan> {
    const scan: BuildScan = { finished: 0, sameImage: [], seen: new Set() };
    let nextToken: string | undefined;
    try {
      for (let page = 0; page < ATTACH_SEARCH_PAGES; page++) {
        const list = await this.call("ListBuildsForProject", (abortSignal) =>
          this.clients.codebuild.send(
            new ListBuildsForProjectCommand({ projectName: this.req.projectName, ...(nextToken ? { nextToken } : {}) }),
            { abortSignal },
          ),
        );
        const ids = list.ids ?? [];
        ids.forEach((id) => scan.seen.add(id));
        for (let i = 0; i < ids.length; i += 100) {
          for (const b of await this.batchGetBuilds(ids.slice(i, i + 100))) {
            if (!b.id || !buildsSameImage(b, this.req.imageTag, this.req.repositoryUri)) continue;
            scan.sameImage.push(b.id);
            if (b.buildStatus === "IN_PROGRESS") scan.inProgress ??= b.id;
            else scan.finished++;
          }
        }
        nextToken = list.nextToken;
        if (!nextToken) break;
      }
    } catch (err) {
      throw await this.rethrowIfAborted(err, undefined);
    }
    return scan;
  }

  async startBuild(scan: BuildScan): Promise<{ id: string; recovered: boolean }> {
    const env: EnvironmentVariable[] = [
      { name: "IMAGE_TAG", value: this.req.imageTag, type: "PLAINTEXT" },
      { name: "REPOSITORY_URI", value: this.req.repositoryUri, type: "PLAINTEXT" },
    ];
    if (this.req.baseImageUri) env.push({ name: "BASE_IMAGE_URI", value: this.req.baseImageUri, type: "PLAINTEXT" });
    const idempotencyToken = idempotencyTokenFor(this.req, scan.finished);
    const send = () =>
      this.clients.codebuild.send(
        new StartBuildCommand({
          projectName: this.req.projectName,
          sourceTypeOverride: "S3",
          sourceLocationOverride: this.req.sourceLocation,
          environmentVariablesOverride: env,
          idempotencyToken,
        }),
      );
    if (this.opts.signal?.aborted) throw new BuildInterruptedError(this.opts.signal.reason, undefined, false, undefined);
    let id: string | undefined;
    let recovered = false;
    try {
      // Not abortable mid-flight: if the request reached CodeBuild we need the id to stop the build.
      // Retried with the same token, so a retry whose first attempt did start a build gets that build.
      const out = await this.call("StartBuild", send, undefined);
      id = out.build?.id;
      if (!id) throw new Error("the response carries no build id");
    } catch (err) {
      if (isRejection(err)) throw err;
      id = await this.recoverStart(err, send, scan);
      recovered = true;
    }
    this.buildIsUnderway();
    if (this.opts.signal?.aborted) throw await this.stop(id, this.opts.signal.reason);
    return { id, recovered };
  }

  /** The run's build is started or attached to: its permissions were visible, so AccessDenied is final from now on. */
  buildIsUnderway(): void {
    this.buildUnderway = true;
  }

  /**
   * StartBuild may have started a build whose id we never read (an unreadable response, or a
   * network or server error after the request went out). Finds that build, first by its token
   * (sending StartBuild again with it returns the build it started, within CodeBuild's five-minute
   * window) and then by tag, so it is attached to instead of left running unobserved.
   */
  private async recoverStart(err: unknown, send: () => Promise<{ build?: Build }>, scan: BuildScan): Promise<string> {
    const first = err instanceof AwsCallError ? err.message : `StartBuild: ${errorSummary(err)}`;
    this.log.warn(`runner: ${first}; looking for the build it may have started`);
    try {
      const again = await send();
      if (again.build?.id) {
        this.log.info(`runner: StartBuild with the same idempotency token returned build ${again.build.id}; attaching`);
        return again.build.id;
      }
    } catch (retryErr) {
      if (isRejection(retryErr)) throw new AwsCallError("StartBuild", retryErr);
    }
    let searchError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const now = await this.scanBuilds();
        // A build of this tag that was not there before our StartBuild: ours, or a concurrent
        // run's with the same token, which is the same build. It may even have finished already.
        const mine = now.sameImage.find((id) => !scan.seen.has(id));
        if (mine) {
          this.log.info(`runner: found build ${mine} of this tag; attaching`);
          return mine;
        }
        searchError = undefined;
      } catch (e) {
        if (this.opts.signal?.aborted) throw e;
        searchError = e;
      }
      await sleep(this.opts.pollIntervalMs, this.opts.signal).catch(() => undefined);
    }
    const projectLink = projectConsoleLink(this.req.region, this.req.projectName);
    throw new StartUnknownError(
      searchError
        ? `${first}; could not check whether it started a build (${errorSummary(searchError)}): one may be running, ` +
            `and the next apply attaches to it (${projectLink})`
        : `${first}; no build of ${this.req.imageTag} appeared in project ${this.req.projectName}, so none was started: re-run the apply`,
    );
  }

  async waitForBuild(buildId: string): Promise<Build> {
    let printedPhases = 0;
    let notFound = 0;
    const waitStart = this.now();
    try {
      for (;;) {
        if (this.opts.signal?.aborted) throw new AbortedError(this.opts.signal.reason);
        const [build] = await this.batchGetBuilds([buildId], this.opts.signal);
        if (!build) {
          // Tolerate a brief lag between StartBuild and BatchGetBuilds seeing the build.
          if (++notFound > 3) throw new Error(`CodeBuild does not know build ${buildId}`);
          await sleep(this.opts.pollIntervalMs, this.opts.signal);
          continue;
        }

        const buildStart = build.startTime ? +build.startTime : waitStart;
        const phases = build.phases ?? [];
        for (; printedPhases < phases.length; printedPhases++) {
          const p = phases[printedPhases]!;
          const at = p.startTime ? +p.startTime - buildStart : this.now() - waitStart;
          this.log.info(phaseLine(at, p.phaseType ?? "UNKNOWN"));
        }
        if (build.buildComplete || (build.buildStatus && build.buildStatus !== "IN_PROGRESS")) return build;

        const now = this.now();
        if (this.opts.detachAt !== undefined && now >= this.opts.detachAt) {
          throw new BuildStillRunningError(buildId, consoleLink(this.req.region, this.req.projectName, buildId));
        }
        this.log.progress?.(`${phaseLine(now - buildStart, build.currentPhase ?? "…")} …`);
        let wait = this.opts.pollIntervalMs;
        if (this.opts.detachAt !== undefined) wait = Math.max(0, Math.min(wait, this.opts.detachAt - now));
        await sleep(wait, this.opts.signal);
      }
    } catch (err) {
      const e = await this.rethrowIfAborted(err, buildId);
      if (e !== err || err instanceof BuildStillRunningError) throw e;
      // We lost track of the build, but it carries on: say where to find it.
      throw new Error(
        `lost track of build ${buildId} (${err instanceof AwsCallError ? err.message : errorSummary(err)}); it may still be running: ` +
          consoleLink(this.req.region, this.req.projectName, buildId),
      );
    }
  }

  async failure(build: Build): Promise<BuildFailedError> {
    const { phase, messages } = failedPhaseOf(build);
    const { lines, note } = await this.logTail(build);
    return new BuildFailedError(
      build.id!,
      build.buildStatus ?? "UNKNOWN",
      phase,
      messages,
      lines,
      note,
      consoleLink(this.req.region, this.req.projectName, build.id!),
    );
  }

  private async logTail(build: Build): Promise<{ lines: string[]; note?: string }> {
    const group = build.logs?.groupName;
    const stream = build.logs?.streamName;
    if (!group || !stream) return { lines: [], note: "no CloudWatch log stream recorded for this build" };
    try {
      const out = await this.call(
        "GetLogEvents",
        () =>
          this.clients.logs.send(
            new GetLogEventsCommand({
              logGroupName: group,
              logStreamName: stream,
              startFromHead: false,
              limit: LOG_TAIL_LINES,
            }),
          ),
        undefined,
      );
      const lines = tailLines((out.events ?? []).map((e) => e.message ?? ""));
      // CodeBuild ships logs asynchronously; right after the build ends the tail can lag.
      return lines.length ? { lines } : { lines, note: `log stream ${group}/${stream} is empty (logs may lag)` };
    } catch (err) {
      return { lines: [], note: `could not read log stream ${group}/${stream}: ${err instanceof AwsCallError ? err.message : errorSummary(err)}` };
    }
  }

  private async batchGetBuilds(ids: string[], signal = this.opts.signal): Promise<Build[]> {
    const out = await this.call(
      "BatchGetBuilds",
      (abortSignal) => this.clients.codebuild.send(new BatchGetBuildsCommand({ ids }), { abortSignal }),
      signal,
    );
    return out.builds ?? [];
  }

  /** Turns an abort (our signal fired) into a stopped build; other errors pass through. */
  private async rethrowIfAborted(err: unknown, buildId: string | undefined): Promise<unknown> {
    const signal = this.opts.signal;
    if (!signal?.aborted) return err;
    if (!buildId) return new BuildInterruptedError(signal.reason, undefined, false, undefined);
    return this.stop(buildId, signal.reason);
  }

  private async stop(buildId: string, reason: unknown): Promise<BuildInterruptedError> {
    const link = consoleLink(this.req.region, this.req.projectName, buildId);
    this.log.warn(`runner: stopping build ${buildId} (${String(reason)})`);
    try {
      // Deliberately without the aborted signal, and with a short retry budget: we are exiting.
      await withRetry("StopBuild", () => this.clients.codebuild.send(new StopBuildCommand({ id: buildId })), {
        policy: { ...this.retry, maxAttempts: Math.min(this.retry.maxAttempts, 4) },
      });
      this.log.warn(`runner: build ${buildId} stopped`);
      return new BuildInterruptedError(reason, buildId, true, link);
    } catch (err) {
      this.log.warn(`runner: StopBuild: ${errorSummary(err)}; the build may still be running: ${link}`);
      return new BuildInterruptedError(reason, buildId, false, link);
    }
  }
}

function causeOf(err: unknown): unknown {
  return err instanceof AwsCallError ? err.cause : err;
}

/**
 * AWS answered with a modelled client error (ResourceNotFoundException, AccessDenied…): the
 * request was refused, so nothing was started. Unreadable responses, network errors and server
 * faults carry no such verdict.
 */
export function isRejection(err: unknown): boolean {
  const e = causeOf(err) as { $fault?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  const status = e?.$metadata?.httpStatusCode;
  return e?.$fault === "client" && status !== undefined && status >= 400 && status < 500;
}

function isNamed(err: unknown, ...names: string[]): boolean {
  return !!err && typeof err === "object" && names.includes((err as { name?: string }).name ?? "");
}

/** `Name: message` of an SDK error, without stack or request metadata. */
export function errorSummary(err: unknown): string {
  if (err instanceof AwsCallError) return err.message;
  if (err instanceof Error && /Deserialization error/.test(err.message)) {
    // The SDK appends a line about a hidden $response field, which is no help in an apply log.
    return `unreadable response (${err.name}: ${err.message.split("\n", 1)[0]})`;
  }
  if (err instanceof Error) {
    const msg = err.message && err.message !== err.name ? err.message : "";
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    const name = err.name === "Error" ? "" : err.name;
    return [name, msg].filter(Boolean).join(": ") + (status && !msg ? ` (HTTP ${status})` : "");
  }
  return String(err);
}
