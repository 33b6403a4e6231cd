/**
 * Printing warnings and errors so they read right both under the cdktf CLI and under plain
 * `node`/`tsx main.ts`.
 *
 * How `cdktf synth` (cdktf-cli 0.21.0) shows what the app prints: it runs the app through
 * @cdktf/commons `shell()`/`exec()` (src/util.js). A chunk on the app's stderr goes to
 * `processLoggerError`, a log4js `error()` call, so it is shown at once as
 * `[<time>] [ERROR] default - <chunk>`; a chunk on the app's stdout is shown at once as is
 * (`console.log`). When the app exits non-zero, @cdktf/cli-core's SynthStack.synth
 * (src/lib/synth-stack.js) prints "cdktf encountered an error while synthesizing" with the
 * app's whole stderr ("Command output on stderr") and whole stdout ("Command output on
 * stdout") again. So:
 * - a warning goes to stdout under the CLI: shown once, as `warning: …`, never as [ERROR];
 * - errors go to stderr in one write: the CLI shows them once live (under one [ERROR] label)
 *   and once in its failure summary. No stream avoids that second copy: the CLI repeats
 *   stdout and stderr alike after a failed synth, and exiting 0 instead would let the CLI read
 *   a previous synth's manifest.json as this one's result.
 * Under plain node, both go to stderr, once each.
 */

/** Where the lines go; the process's streams unless a test passes its own. */
export interface ReportStreams {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
}

/**
 * True when the app runs as the cdktf CLI's synth command: the CLI sets CDKTF_OUTDIR and
 * SYNTH_HCL_OUTPUT for the app it starts (@cdktf/cli-core src/lib/synth-stack.js).
 */
export function underCdktfCli(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.CDKTF_OUTDIR !== undefined && env.SYNTH_HCL_OUTPUT !== undefined;
}

/** Prints one warning line, `warning: <message>`. */
export function reportWarning(message: string, streams: ReportStreams = process, env: NodeJS.ProcessEnv = process.env): void {
  (underCdktfCli(env) ? streams.stdout : streams.stderr).write(`warning: ${oneLine(message)}\n`);
}

/**
 * Prints errors, one per line, each once (a message of several lines is split; repeats are
 * dropped), in a single write so the CLI labels them together.
 */
export function reportErrors(messages: readonly string[], streams: ReportStreams = process): void {
  const lines = [...new Set(messages.flatMap((m) => m.split(/\r?\n/)).map((l) => l.trimEnd()).filter((l) => l !== ""))];
  if (lines.length > 0) streams.stderr.write(`${lines.join("\n")}\n`);
}

function oneLine(message: string): string {
  return message.replace(/\s*\r?\n\s*/g, " ").trim();
}
