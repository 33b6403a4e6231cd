// Lambda entry of the build runner ("build starter"), bundled to build-starter/index.js and
// invoked by Terraform's aws_lambda_invocation. Thin shell: event validation, the Lambda
// deadline and error shaping; the work is in core.ts.
import { createClients, makeRedactor, preflight } from "./aws.ts";
import {
  AwsCallError,
  BuildFailedError,
  BuildStillRunningError,
  describeFailure,
  runBuild,
  StartUnknownError,
  type BuildOutcome,
  type RunnerClients,
  type RunnerLogger,
} from "./core.ts";
import { parseRepositoryUri, validateBuildRequest, type BuildRequest } from "./request.ts";
import { DEFAULT_RETRY, IAM_SETTLE_MS, type RetryPolicy } from "./retry.ts";

/** What Terraform's aws_lambda_invocation sends: a build request; the region is the Lambda's own. */
export type BuildStarterEvent = Omit<BuildRequest, "region"> & {
  /** Added by aws_lambda_invocation with lifecycle_scope = "CRUD". */
  tf?: { action?: string; prev_input?: unknown };
};

export interface BuildStarterResult {
  /** "noop-delete": Terraform's CRUD lifecycle invoked us for a destroy; nothing to build. */
  outcome: BuildOutcome | "noop-delete";
  imageUri: string;
  digest: string | null;
  buildId: string | null;
}

/** The part of the Lambda context we use. */
export interface LambdaContextLike {
  getRemainingTimeInMillis(): number;
}

export interface HandlerDeps {
  /** Defaults to SDK clients from the Lambda's environment (region and role credentials). */
  clients?: (ecrRegion: string | undefined) => RunnerClients;
  pollIntervalMs?: number;
  retry?: RetryPolicy;
  /** Detach this long before the Lambda's own deadline, leaving the build running. */
  deadlineMarginMs?: number;
  logger?: RunnerLogger;
}

const DEFAULT_MARGIN_MS = 20_000;

/** What to do when a build outlives the starter's Lambda timeout (15 minutes at most). */
export const LONG_BUILD_ADVICE =
  "runner: the build starter waits at most 15 minutes (the Lambda limit). Re-run the apply: it attaches to " +
  "this build and waits again. If this image's builds regularly take that long, give it a larger CodeBuild " +
  "compute type (BUILD_GENERAL1_MEDIUM or BUILD_GENERAL1_LARGE), or use buildTrigger: local-exec, which has no such limit.";
const EVENT_KEYS = new Set(["projectName", "sourceLocation", "repositoryUri", "imageTag", "baseImageUri", "force", "tf"]);

/** Checks the event's shape; throws one Error listing every problem. */
export function parseEvent(event: unknown): BuildStarterEvent {
  if (!event || typeof event !== "object" || Array.isArray(event)) {
    throw new Error("invalid build-starter event: expected a JSON object");
  }
  const e = event as Record<string, unknown>;
  const problems: string[] = [];
  const unknownKeys = Object.keys(e).filter((k) => !EVENT_KEYS.has(k));
  if (unknownKeys.length) problems.push(`unknown field(s) ${unknownKeys.join(", ")}`);
  for (const k of ["projectName", "sourceLocation", "repositoryUri", "imageTag"]) {
    if (typeof e[k] !== "string" || !e[k]) problems.push(`${k} must be a non-empty string`);
  }
  if (e.baseImageUri !== undefined && e.baseImageUri !== null && typeof e.baseImageUri !== "string") {
    problems.push("baseImageUri must be a string when given");
  }
  if (e.force !== undefined && typeof e.force !== "boolean") problems.push("force must be a boolean when given");
  if (!problems.length) {
    problems.push(
      ...validateBuildRequest({
        projectName: e.projectName as string,
        sourceLocation: e.sourceLocation as string,
        repositoryUri: e.repositoryUri as string,
        imageTag: e.imageTag as string,
        ...(typeof e.baseImageUri === "string" ? { baseImageUri: e.baseImageUri } : {}),
      }),
    );
  }
  if (problems.length) throw new Error(`invalid build-starter event: ${problems.join("; ")}`);
  const out: BuildStarterEvent = {
    projectName: e.projectName as string,
    sourceLocation: e.sourceLocation as string,
    repositoryUri: e.repositoryUri as string,
    imageTag: e.imageTag as string,
    force: e.force === true,
  };
  if (typeof e.baseImageUri === "string" && e.baseImageUri) out.baseImageUri = e.baseImageUri;
  if (e.tf && typeof e.tf === "object") out.tf = e.tf as BuildStarterEvent["tf"];
  return out;
}

const consoleLogger: RunnerLogger = {
  info: (line) => console.log(line),
  warn: (line) => console.warn(line),
};

export function createHandler(deps: HandlerDeps = {}) {
  // Clients live across warm invocations; keyed by ECR region since the URI may name another one.
  const clientCache = new Map<string, RunnerClients>();
  const clientsFor = (ecrRegion: string | undefined): RunnerClients => {
    const key = ecrRegion ?? "";
    let c = clientCache.get(key);
    if (!c) {
      c = deps.clients ? deps.clients(ecrRegion) : createClients(undefined, ecrRegion);
      clientCache.set(key, c);
    }
    return c;
  };

  return async function handler(event: unknown, context: LambdaContextLike): Promise<BuildStarterResult> {
    const ev = parseEvent(event);
    const imageUri = `${ev.repositoryUri}:${ev.imageTag}`;
    if (ev.tf?.action === "delete") {
      return { outcome: "noop-delete", imageUri, digest: null, buildId: null };
    }
    // Read per invocation so a redeploy with new settings applies without code changes.
    const pollIntervalMs = deps.pollIntervalMs ?? envInt("RUNNER_POLL_MS", 5000);
    const marginMs = deps.deadlineMarginMs ?? envInt("RUNNER_DEADLINE_MARGIN_MS", DEFAULT_MARGIN_MS);
    const retry = deps.retry ?? {
      ...DEFAULT_RETRY,
      baseMs: envInt("RUNNER_RETRY_BASE_MS", DEFAULT_RETRY.baseMs),
      iamSettleMs: envInt("RUNNER_IAM_SETTLE_MS", IAM_SETTLE_MS),
    };

    const clients = clientsFor(parseRepositoryUri(ev.repositoryUri).region);
    const { region, secrets } = await preflight(clients.codebuild);
    const redact = makeRedactor(secrets);
    const base = deps.logger ?? consoleLogger;
    const log: RunnerLogger = { info: (l) => base.info(redact(l)), warn: (l) => base.warn(redact(l)) };

    const request: BuildRequest = {
      projectName: ev.projectName,
      sourceLocation: ev.sourceLocation,
      repositoryUri: ev.repositoryUri,
      imageTag: ev.imageTag,
      ...(ev.baseImageUri ? { baseImageUri: ev.baseImageUri } : {}),
      force: ev.force,
      region,
    };
    try {
      const result = await runBuild(request, clients, log, {
        pollIntervalMs,
        retry,
        detachAt: Date.now() + context.getRemainingTimeInMillis() - marginMs,
      });
      return { outcome: result.outcome, imageUri: result.imageUri, digest: result.digest, buildId: result.buildId ?? null };
    } catch (err) {
      if (err instanceof BuildFailedError) {
        // The message is what `terraform apply` shows, so it carries the whole report.
        const e = new Error(redact(describeFailure(err).join("\n")));
        e.name = "BuildFailed";
        throw e;
      }
      if (err instanceof BuildStillRunningError) {
        const e = new Error(redact(`runner: ${err.message}\n${LONG_BUILD_ADVICE}`));
        e.name = "BuildStillRunning";
        throw e;
      }
      if (err instanceof StartUnknownError || err instanceof AwsCallError) {
        const e = new Error(redact(`runner: ${err.message}`));
        e.name = err instanceof AwsCallError ? "AwsCallFailed" : "BuildStartUnknown";
        throw e;
      }
      if (err instanceof Error) err.message = redact(err.message);
      throw err;
    }
  };
}

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  const n = raw === undefined || raw === "" ? NaN : Number(raw);
  return Number.isInteger(n) && n >= 0 ? n : fallback;
}

export const handler = createHandler();
