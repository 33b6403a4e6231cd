// Argument and environment parsing for the CLI, kept pure so it is testable without a process.
import { parseArgs } from "node:util";
import { validateBuildRequest, type BuildRequest } from "./request.ts";

export const USAGE = `usage: runner build --project NAME --source-location BUCKET/KEY --repository-uri URI
                    --image-tag TAG [--base-image-uri URI] [--region REGION]
                    [--timeout SECONDS] [--force]

Builds URI:TAG in CodeBuild unless it already exists in the registry, attaching to an
in-progress build of the same tag when there is one, and waits for it. Runs that reach the
same tag at once share one build (StartBuild's idempotency token is derived from the request).

options:
  --project NAME              CodeBuild project
  --source-location B/K       S3 bucket/key of the zipped build context
  --repository-uri URI        image repository, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/app
  --image-tag TAG             content-addressed tag to build
  --base-image-uri URI        passed to the build as BASE_IMAGE_URI
  --region REGION             default: the AWS SDK's (AWS_REGION, profile)
  --timeout SECONDS           stop the build and exit 124 after this long
  --force                     build even if the tag already exists
  -h, --help                  show this text

environment:
  RUNNER_POLL_MS              status poll interval in ms (default 5000)
  RUNNER_RETRY_BASE_MS        base of the throttling/transient-error backoff in ms (default 500)
  RUNNER_IAM_SETTLE_MS        how long AccessDenied is retried before the build starts, while a
                              first apply's IAM changes propagate, in ms (default 120000)
  AWS_ENDPOINT_URL[_SERVICE]  standard AWS SDK endpoint overrides

exit codes: 0 built or skipped, 1 build failed or AWS error, 2 usage/credentials/region,
            124 --timeout, 130 SIGINT, 143 SIGTERM`;

export type CliParse =
  | { kind: "help" }
  | { kind: "error"; message: string }
  | { kind: "build"; request: Omit<BuildRequest, "region"> & { region?: string }; timeoutSeconds?: number };

export function parseCliArgs(argv: string[]): CliParse {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        project: { type: "string" },
        "source-location": { type: "string" },
        "repository-uri": { type: "string" },
        "image-tag": { type: "string" },
        "base-image-uri": { type: "string" },
        region: { type: "string" },
        timeout: { type: "string" },
        force: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    return { kind: "error", message: (err as Error).message };
  }
  const { values: v, positionals } = parsed;
  if (v.help) return { kind: "help" };
  if (positionals.length !== 1 || positionals[0] !== "build") {
    return { kind: "error", message: `expected the command "build", got ${JSON.stringify(positionals.join(" "))}` };
  }
  const missing = ["project", "source-location", "repository-uri", "image-tag"].filter(
    (k) => !v[k as keyof typeof v],
  );
  if (missing.length) return { kind: "error", message: `missing ${missing.map((m) => `--${m}`).join(", ")}` };

  let timeoutSeconds: number | undefined;
  if (v.timeout !== undefined) {
    timeoutSeconds = Number(v.timeout);
    if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) {
      return { kind: "error", message: `--timeout must be a positive number of seconds, got ${JSON.stringify(v.timeout)}` };
    }
  }
  const request = {
    projectName: v.project!,
    sourceLocation: v["source-location"]!,
    repositoryUri: v["repository-uri"]!,
    imageTag: v["image-tag"]!,
    ...(v["base-image-uri"] !== undefined ? { baseImageUri: v["base-image-uri"] } : {}),
    ...(v.region ? { region: v.region } : {}),
    force: !!v.force,
  };
  const problems = validateBuildRequest(request);
  if (problems.length) return { kind: "error", message: problems.join("; ") };
  return { kind: "build", request, timeoutSeconds };
}

/** A positive integer from the environment, or the default; throws with the variable's name. */
export function envMillis(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer (milliseconds)`);
  return n;
}
