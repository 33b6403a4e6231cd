#!/usr/bin/env node
// CLI entry of the build runner, bundled to runner.cjs and run by Terraform's local-exec.
// Thin shell: arguments, environment, signals and exit codes; the work is in core.ts.
import { createClients, makeRedactor, preflight, SetupError } from "./aws.ts";
import { envMillis, parseCliArgs, USAGE } from "./cli-args.ts";
import {
  BuildFailedError,
  BuildInterruptedError,
  describeFailure,
  errorSummary,
  ImageMissingError,
  runBuild,
  StartUnknownError,
  type RunnerLogger,
} from "./core.ts";
import { parseRepositoryUri } from "./request.ts";
import { DEFAULT_RETRY, IAM_SETTLE_MS } from "./retry.ts";

const EXIT = { ok: 0, failed: 1, usage: 2, timeout: 124, sigint: 130, sigterm: 143 } as const;

function terminalLogger(redact: (s: string) => string): RunnerLogger {
  const tty = !!process.stdout.isTTY;
  let live = false;
  const clearLive = () => {
    if (live) process.stdout.write("\r\x1b[2K");
    live = false;
  };
  return {
    info: (line) => {
      clearLive();
      process.stdout.write(redact(line) + "\n");
    },
    warn: (line) => {
      clearLive();
      process.stderr.write(redact(line) + "\n");
    },
    // Only on a terminal: in Terraform's captured output a rewritten line is just noise.
    progress: tty
      ? (line) => {
          process.stdout.write("\r\x1b[2K" + redact(line));
          live = true;
        }
      : undefined,
  };
}

async function main(argv: string[]): Promise<number> {
  const parsed = parseCliArgs(argv);
  if (parsed.kind === "help") {
    process.stdout.write(USAGE + "\n");
    return EXIT.ok;
  }
  if (parsed.kind === "error") {
    process.stderr.write(`runner: ${parsed.message}\n\n${USAGE}\n`);
    return EXIT.usage;
  }

  let pollIntervalMs: number;
  let retryBaseMs: number;
  let iamSettleMs: number;
  try {
    pollIntervalMs = envMillis(process.env, "RUNNER_POLL_MS", 5000);
    retryBaseMs = envMillis(process.env, "RUNNER_RETRY_BASE_MS", DEFAULT_RETRY.baseMs);
    iamSettleMs = envMillis(process.env, "RUNNER_IAM_SETTLE_MS", IAM_SETTLE_MS);
  } catch (err) {
    process.stderr.write(`runner: ${(err as Error).message}\n`);
    return EXIT.usage;
  }

  const { request, timeoutSeconds } = parsed;
  // ECR is queried in the registry's own region, which the URI names.
  const clients = createClients(request.region, parseRepositoryUri(request.repositoryUri).region);
  let redact = (s: string) => s;
  const controller = new AbortController();
  let abortExit: number = EXIT.failed;
  const abort = (code: number, reason: string) => {
    if (controller.signal.aborted) {
      // A second Ctrl-C means "now": skip the StopBuild wait.
      process.stderr.write(`runner: ${reason} again, exiting without waiting for StopBuild\n`);
      process.exit(code);
    }
    abortExit = code;
    process.stderr.write(`runner: ${reason}\n`);
    controller.abort(reason);
  };
  const onSigint = () => abort(EXIT.sigint, "received SIGINT");
  const onSigterm = () => abort(EXIT.sigterm, "received SIGTERM");
  process.on("SIGINT", onSigint);
  process.on("SIGTERM", onSigterm);
  const timer =
    timeoutSeconds !== undefined
      ? setTimeout(() => abort(EXIT.timeout, `timeout of ${timeoutSeconds}s reached`), timeoutSeconds * 1000)
      : undefined;

  try {
    const { region, secrets } = await preflight(clients.codebuild);
    redact = makeRedactor(secrets);
    if (controller.signal.aborted) return abortExit;
    const log = terminalLogger(redact);
    await runBuild({ ...request, region }, clients, log, {
      pollIntervalMs,
      retry: { ...DEFAULT_RETRY, baseMs: retryBaseMs, iamSettleMs },
      signal: controller.signal,
    });
    return EXIT.ok;
  } catch (err) {
    const say = (line: string) => process.stderr.write(redact(line) + "\n");
    if (err instanceof SetupError) {
      say(`runner: ${err.message}`);
      return EXIT.usage;
    }
    if (err instanceof BuildInterruptedError) {
      say(`runner: ${err.message}`);
      return abortExit;
    }
    if (err instanceof BuildFailedError) {
      describeFailure(err).forEach(say);
      return EXIT.failed;
    }
    if (err instanceof ImageMissingError || err instanceof StartUnknownError) {
      say(`runner: ${err.message}`);
      return EXIT.failed;
    }
    say(`runner: ${errorSummary(err)}`);
    if (process.env.RUNNER_DEBUG && err instanceof Error && err.stack) say(err.stack);
    return EXIT.failed;
  } finally {
    if (timer) clearTimeout(timer);
    process.off("SIGINT", onSigint);
    process.off("SIGTERM", onSigterm);
    for (const c of Object.values(clients)) c.destroy();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Backstop only: nothing should keep the loop alive once the clients are destroyed.
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (err) => {
    process.stderr.write(`runner: internal error: ${errorSummary(err)}\n`);
    process.exit(EXIT.failed);
  },
);
