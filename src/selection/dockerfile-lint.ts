import { validate, ValidationCode } from "dockerfile-utils";

/** What the Dockerfile validator found: errors stop the synth, warnings are printed. */
export interface DockerfileLint {
  /** One line each: `file:line: what. Fix: how`. */
  readonly errors: readonly string[];
  /** One line each: `file:line: what`. */
  readonly warnings: readonly string[];
}

/** LSP severities, as dockerfile-utils reports them. */
const ERROR = 1;
const WARNING = 2;

/**
 * Validates a Dockerfile with dockerfile-utils (by dockerfile-ast's authors, the validator behind
 * the VS Code Docker extension): unknown instructions (`FROMM`), missing arguments (`COPY a`),
 * no `FROM`, an empty file, bad flags. What it calls an error, the build would refuse too.
 */
export function lintDockerfile(text: string, file: string): DockerfileLint {
  const key = `${file}\0${text}`;
  let lint = linted.get(key);
  if (!lint) {
    if (linted.size >= 512) linted.clear();
    lint = lintOnce(text, file);
    linted.set(key, lint);
  }
  return lint;
}

/** Lints by file name and text: images sharing a Dockerfile (and each later analysis in a process) validate it once. */
const linted = new Map<string, DockerfileLint>();

function lintOnce(text: string, file: string): DockerfileLint {
  if (text.split(/\r?\n/).every((l) => l.trim() === "" || l.trim().startsWith("#"))) {
    return { errors: [`${file}:1: the Dockerfile is empty. Fix: write its FROM and build steps`], warnings: [] };
  }
  const errors: string[] = [];
  const warnings: string[] = [];
  const diagnostics = validate(text);
  // A misspelled FROM (`FROMM`) also reads as "no FROM": the misspelling is the one to fix.
  const misspelled = diagnostics.some((d) => d.code === ValidationCode.UNKNOWN_INSTRUCTION);
  for (const diagnostic of diagnostics) {
    if (misspelled && diagnostic.code === ValidationCode.NO_SOURCE_IMAGE) continue;
    const line = diagnostic.range.start.line + 1;
    const text = typeof diagnostic.message === "string" ? diagnostic.message : diagnostic.message.value;
    const what = text.replace(/[.\s]+$/, "");
    if (diagnostic.severity === ERROR) errors.push(`${file}:${line}: ${what}. Fix: ${fixFor(what)}`);
    else if (diagnostic.severity === WARNING) warnings.push(`${file}:${line}: ${what}`);
  }
  return { errors, warnings };
}

/** A fix for the validator's messages we know; otherwise the general one. */
function fixFor(message: string): string {
  if (/^No source image provided/.test(message)) return "start the build with FROM <image> (only ARG and comments may come before it)";
  if (/^Unknown instruction: (\S+)/.test(message)) return "correct the instruction's spelling (FROM, RUN, COPY, ADD, ARG, ENV, WORKDIR, CMD, …)";
  if (/requires (at least )?(one|two)/.test(message) && /^(COPY|ADD)/.test(message)) return "write the sources and then the destination, e.g. COPY src/ /app/";
  return "correct the instruction (see https://docs.docker.com/reference/dockerfile/)";
}
