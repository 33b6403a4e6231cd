// E2E-ONLY CodeBuild stand-in: executes a buildspec (version 0.2) on this machine.
//
// What it models (https://docs.aws.amazon.com/codebuild/latest/userguide/build-spec-ref.html):
// - phases in CodeBuild's order and names (SUBMITTED .. COMPLETED, as BatchGetBuilds reports them);
// - DOWNLOAD_SOURCE: GetObject of the source zip from S3 (the real S3 API, here s3rver), unzip into
//   a fresh CODEBUILD_SRC_DIR; buildspec errors fail this phase with YAML_FILE_ERROR;
// - one shell session (env.shell, default bash) for ALL commands of ALL phases: `cd`, variables and
//   functions persist across commands and phases (version 0.2 semantics);
// - a command fails its phase when it exits non-zero (the rest of the phase's commands are skipped,
//   its `finally` block still runs); on-failure: ABORT (default) | CONTINUE;
// - INSTALL or PRE_BUILD failing ends the build (no BUILD / POST_BUILD); POST_BUILD always runs
//   after BUILD, with CODEBUILD_BUILD_SUCCEEDING=0 if BUILD failed; UPLOAD_ARTIFACTS runs once BUILD
//   was reached; FINALIZING and COMPLETED always;
// - env.variables (lowest precedence) < project environment < StartBuild overrides;
// - log lines in the agent's "[Container] date time message" shape interleaved with command output;
// - StopBuild: an AbortSignal kills the session, the current phase ends STOPPED, the build STOPPED.
// Not modelled: artifacts/cache/reports (logged and ignored), parameter-store/secrets-manager
// (rejected: YAML_FILE_ERROR), runtime-versions (ignored), run-as, timeouts.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync, createWriteStream } from "node:fs";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { Readable } from "node:stream";
import { parse as parseYaml } from "yaml";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { STANDARD_PHASES } from "../../__tests__/fake-aws/codebuild-model.ts";

/** CodeBuild's phases in order, as the fake API reports them, then COMPLETED. */
export const PHASE_ORDER = [...STANDARD_PHASES, "COMPLETED"] as const;
export type PhaseType = (typeof PHASE_ORDER)[number];
export type PhaseStatus = "SUCCEEDED" | "FAILED" | "FAULT" | "TIMED_OUT" | "IN_PROGRESS" | "STOPPED";
export type BuildStatus = "IN_PROGRESS" | "SUCCEEDED" | "FAILED" | "FAULT" | "STOPPED";

/** Shaped like CodeBuild's BuildPhase (BatchGetBuilds). */
export interface PhaseRecord {
  phaseType: PhaseType;
  phaseStatus?: PhaseStatus;
  startTime: Date;
  endTime?: Date;
  durationInSeconds?: number;
  contexts?: { statusCode: string; message: string }[];
}

export type BuildSource =
  | { kind: "s3"; client: S3Client; bucket: string; key: string }
  | { kind: "zip"; path: string };

export interface BuildRequest {
  buildId: string;
  /** The buildspec YAML text (inline in the project, or buildspecOverride). */
  buildspec: string;
  source: BuildSource;
  /** Project environment variables merged with StartBuild overrides (later wins). */
  env: Record<string, string>;
  /** A fresh directory for this build: source, shell scratch files. */
  workDir: string;
  /** Variables of the "build host" itself: PATH with the shims, buildah configuration, ... */
  hostEnv: Record<string, string>;
  signal?: AbortSignal;
}

export interface BuildHooks {
  /** A CloudWatch-style log line (no trailing newline) and its epoch-ms timestamp. */
  log?(line: string, timestamp: number): void;
  /** A phase started (its record has no status yet). */
  phaseStarted?(phase: PhaseRecord, all: PhaseRecord[]): void;
  /** A phase ended with a status. */
  phaseEnded?(phase: PhaseRecord, all: PhaseRecord[]): void;
}

export interface BuildResult {
  buildId: string;
  buildStatus: BuildStatus;
  phases: PhaseRecord[];
  logs: string[];
  /** The same lines as CloudWatch Logs events. */
  logEvents: { timestamp: number; message: string }[];
  startTime: Date;
  endTime: Date;
  srcDir: string;
}

interface PhaseSpec {
  commands: string[];
  finally: string[];
  onFailure: "ABORT" | "CONTINUE";
}

interface ParsedBuildspec {
  shell: string;
  variables: Record<string, string>;
  phases: Partial<Record<"install" | "pre_build" | "build" | "post_build", PhaseSpec>>;
  notes: string[];
}

export class BuildspecError extends Error {}

const strList = (v: unknown, what: string): string[] => {
  if (v == null) return [];
  if (!Array.isArray(v)) throw new BuildspecError(`${what} must be a list`);
  return v.map((c) => {
    if (c == null || typeof c === "object") throw new BuildspecError(`${what}: each command must be a string`);
    return String(c);
  });
};

export function parseBuildspec(text: string): ParsedBuildspec {
  let doc: any;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new BuildspecError(`YAML parse error: ${(err as Error).message.split("\n")[0]}`);
  }
  if (!doc || typeof doc !== "object") throw new BuildspecError("buildspec is not a YAML mapping");
  if (String(doc.version) !== "0.2") throw new BuildspecError(`unsupported buildspec version ${doc.version} (only 0.2)`);
  const notes: string[] = [];
  const env = doc.env ?? {};
  for (const k of ["parameter-store", "secrets-manager"]) {
    if (env[k]) throw new BuildspecError(`env.${k} is not supported by the e2e CodeBuild stand-in`);
  }
  for (const k of ["exported-variables", "git-credential-helper"]) if (env[k]) notes.push(`env.${k} ignored`);
  const shell = env.shell ?? "bash";
  if (!["bash", "sh", "/bin/bash", "/bin/sh"].includes(shell)) throw new BuildspecError(`env.shell ${shell} not supported`);
  const variables: Record<string, string> = {};
  for (const [k, v] of Object.entries(env.variables ?? {})) variables[k] = v == null ? "" : String(v);
  const phases: ParsedBuildspec["phases"] = {};
  for (const [name, p] of Object.entries(doc.phases ?? {}) as [string, any][]) {
    if (!["install", "pre_build", "build", "post_build"].includes(name)) throw new BuildspecError(`unknown phase ${name}`);
    if (p == null) continue;
    const onFailure = p["on-failure"] ?? "ABORT";
    if (onFailure !== "ABORT" && onFailure !== "CONTINUE") throw new BuildspecError(`${name}.on-failure ${onFailure} not supported`);
    if (p["runtime-versions"]) notes.push(`${name}.runtime-versions ignored`);
    if (p["run-as"]) notes.push(`${name}.run-as ignored`);
    phases[name as keyof ParsedBuildspec["phases"]] = {
      commands: strList(p.commands, `phases.${name}.commands`),
      finally: strList(p.finally, `phases.${name}.finally`),
      onFailure,
    };
  }
  for (const k of ["artifacts", "cache", "reports", "batch"]) if (doc[k]) notes.push(`${k} section ignored`);
  return { shell, variables, phases, notes };
}

/** One long-lived shell: commands are sourced from files so they cannot eat the control stream. */
class ShellSession {
  private child: ChildProcessWithoutNullStreams;
  private buf = "";
  private waiting?: { resolve: (rc: number) => void };
  private seq = 0;
  private readonly marker = `__E2E_CODEBUILD_DONE_${randomBytes(6).toString("hex")}__`;
  exited = false;

  constructor(
    private readonly shell: string,
    private readonly cwd: string,
    private readonly env: Record<string, string>,
    private readonly scratch: string,
    private readonly onLine: (line: string) => void,
  ) {
    this.child = this.start();
  }

  private start(): ChildProcessWithoutNullStreams {
    const bin = this.shell.includes("bash") ? "bash" : "sh";
    const args = bin === "bash" ? ["--noprofile", "--norc"] : [];
    const child = spawn(bin, args, { cwd: this.cwd, env: this.env, stdio: ["pipe", "pipe", "pipe"], detached: true });
    this.exited = false;
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stdout.on("data", (d: string) => this.feed(d));
    child.stderr.on("data", (d: string) => this.feed(d));
    child.on("exit", (code, sig) => {
      this.exited = true;
      this.flush();
      // `exit N` inside a command ends the session; CodeBuild would report that command failed.
      this.waiting?.resolve(code ?? (sig ? 128 + 1 : 1));
      this.waiting = undefined;
    });
    // fd 3 keeps the original stdout for our markers even if a command redirects stdout.
    child.stdin.write("exec 3>&1 2>&1\n");
    return child;
  }

  private feed(d: string) {
    this.buf += d;
    let nl: number;
    while ((nl = this.buf.indexOf("\n")) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      const at = line.indexOf(this.marker);
      if (at >= 0) {
        if (at > 0) this.onLine(line.slice(0, at));
        const rc = Number(line.slice(at + this.marker.length).trim());
        const w = this.waiting;
        this.waiting = undefined;
        w?.resolve(rc);
      } else {
        this.onLine(line);
      }
    }
  }

  private flush() {
    if (this.buf) this.onLine(this.buf);
    this.buf = "";
  }

  /** Runs one buildspec command in the session; resolves with its exit status. */
  run(command: string): Promise<number> {
    if (this.exited) {
      this.onLine(`[e2e codebuild] shell session ended (a command ran \`exit\`); starting a new one: state is lost`);
      this.child = this.start();
    }
    const file = join(this.scratch, `cmd-${++this.seq}.sh`);
    writeFileSync(file, command + "\n");
    return new Promise((resolve) => {
      this.waiting = { resolve };
      this.child.stdin.write(`. '${file}' </dev/null; printf '%s %d\\n' '${this.marker}' "$?" >&3\n`);
    });
  }

  setEnv(name: string, value: string): Promise<number> {
    return this.run(`export ${name}='${value.replace(/'/g, `'\\''`)}'`);
  }

  kill() {
    if (this.exited) return;
    try {
      process.kill(-this.child.pid!, "SIGKILL"); // the whole process group: buildah and friends
    } catch {
      this.child.kill("SIGKILL");
    }
  }

  async close() {
    if (this.exited) return;
    const done = new Promise<void>((r) => this.child.once("exit", () => r()));
    this.child.stdin.end("exit 0\n");
    const t = setTimeout(() => this.kill(), 5000);
    await done;
    clearTimeout(t);
  }
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");
function agentStamp(d = new Date()): string {
  return (
    `${d.getUTCFullYear()}/${pad(d.getUTCMonth() + 1)}/${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}000`
  );
}

async function fetchSource(source: BuildSource, zipPath: string): Promise<string> {
  if (source.kind === "zip") return source.path;
  const res = await source.client.send(new GetObjectCommand({ Bucket: source.bucket, Key: source.key }));
  await pipeline(res.Body as Readable, createWriteStream(zipPath));
  return zipPath;
}

async function unzip(zip: string, dir: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const p = spawn("unzip", ["-q", "-o", zip, "-d", dir], { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    p.stderr.on("data", (d) => (err += d));
    p.on("error", reject);
    p.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`unzip exited ${code}: ${err.trim()}`))));
  });
}

/** Runs one build to completion. Never throws for build failures: they are in the result. */
export async function executeBuild(req: BuildRequest, hooks: BuildHooks = {}): Promise<BuildResult> {
  const logs: string[] = [];
  const logEvents: { timestamp: number; message: string }[] = [];
  const phases: PhaseRecord[] = [];
  const startTime = new Date();
  const srcDir = join(req.workDir, "src");
  const scratch = join(req.workDir, "shell");
  mkdirSync(srcDir, { recursive: true });
  mkdirSync(scratch, { recursive: true });

  const out = (line: string) => {
    const timestamp = Date.now();
    logs.push(line);
    logEvents.push({ timestamp, message: line });
    hooks.log?.(line, timestamp);
  };
  const agent = (msg: string) => out(`[Container] ${agentStamp()} ${msg}`);

  let current: PhaseRecord | undefined;
  const begin = (t: PhaseType) => {
    current = { phaseType: t, startTime: new Date() };
    phases.push(current);
    hooks.phaseStarted?.(current, phases);
    if (t !== "COMPLETED" && !["SUBMITTED", "QUEUED", "PROVISIONING"].includes(t)) agent(`Entering phase ${t}`);
    return current;
  };
  const end = (status: PhaseStatus, ctx?: { statusCode: string; message: string }) => {
    const p = current!;
    p.phaseStatus = status;
    p.endTime = new Date();
    p.durationInSeconds = Math.round((p.endTime.getTime() - p.startTime.getTime()) / 1000);
    p.contexts = [ctx ?? { statusCode: "", message: "" }];
    if (!["SUBMITTED", "QUEUED", "PROVISIONING"].includes(p.phaseType)) {
      agent(`Phase complete: ${p.phaseType} State: ${status}`);
      agent(`Phase context status code: ${p.contexts[0]!.statusCode} Message: ${p.contexts[0]!.message}`);
    }
    hooks.phaseEnded?.(p, phases);
    current = undefined;
  };

  let buildStatus: BuildStatus = "IN_PROGRESS";
  let stopped = false;
  let session: ShellSession | undefined;
  const onAbort = () => {
    stopped = true;
    session?.kill();
  };
  req.signal?.addEventListener("abort", onAbort, { once: true });

  const finish = async (): Promise<BuildResult> => {
    req.signal?.removeEventListener("abort", onAbort);
    if (current) end(stopped ? "STOPPED" : "FAILED");
    if (!phases.some((p) => p.phaseType === "FINALIZING")) {
      begin("FINALIZING");
      await session?.close();
      end("SUCCEEDED");
    } else await session?.close();
    begin("COMPLETED");
    const endTime = new Date();
    return { buildId: req.buildId, buildStatus, phases, logs, logEvents, startTime, endTime, srcDir };
  };

  for (const t of ["SUBMITTED", "QUEUED", "PROVISIONING"] as const) {
    begin(t);
    if (t === "PROVISIONING") agent(`Running on the e2e CodeBuild stand-in (build ${req.buildId})`);
    end("SUCCEEDED");
  }

  // DOWNLOAD_SOURCE: source zip from S3, and the buildspec itself.
  begin("DOWNLOAD_SOURCE");
  let spec: ParsedBuildspec;
  try {
    const zip = await fetchSource(req.source, join(req.workDir, "source.zip"));
    await unzip(zip, srcDir);
    agent(`CODEBUILD_SRC_DIR=${srcDir}`);
    agent(`YAML location is inline (buildspec from the project)`);
    spec = parseBuildspec(req.buildspec);
    for (const n of spec.notes) agent(`e2e stand-in: ${n}`);
    agent(`Processing environment variables`);
    agent(`Moving to directory ${srcDir}`);
  } catch (err) {
    const yaml = err instanceof BuildspecError;
    agent(yaml ? `Phase context status code: YAML_FILE_ERROR Message: ${(err as Error).message}` : `${(err as Error).message}`);
    buildStatus = "FAILED";
    end("FAILED", { statusCode: yaml ? "YAML_FILE_ERROR" : "CLIENT_ERROR", message: (err as Error).message });
    return finish();
  }
  end("SUCCEEDED");

  const env: Record<string, string> = {
    ...req.hostEnv,
    ...spec.variables,
    CODEBUILD_BUILD_ID: req.buildId,
    CODEBUILD_BUILD_ARN: `arn:aws:codebuild:${req.env.AWS_REGION ?? "us-east-1"}:123456789012:build/${req.buildId}`,
    CODEBUILD_INITIATOR: "e2e",
    CODEBUILD_START_TIME: String(startTime.getTime()),
    CODEBUILD_SRC_DIR: srcDir,
    CODEBUILD_BUILD_SUCCEEDING: "1",
    CODEBUILD_CI: "true",
    ...req.env,
  };
  session = new ShellSession(spec.shell, srcDir, env, scratch, out);

  let succeeding = true;
  const runPhase = async (t: PhaseType, p: PhaseSpec | undefined): Promise<boolean> => {
    begin(t);
    await session!.setEnv("CODEBUILD_BUILD_SUCCEEDING", succeeding ? "1" : "0");
    let failure: { statusCode: string; message: string } | undefined;
    const runList = async (cmds: string[]) => {
      for (const c of cmds) {
        agent(`Running command ${c}`);
        const rc = await session!.run(c);
        if (stopped) return false;
        if (rc !== 0) {
          agent(`Command did not exit successfully ${c} exit status ${rc}`);
          failure ??= {
            statusCode: "COMMAND_EXECUTION_ERROR",
            message: `Error while executing command: ${c}. Reason: exit status ${rc}`,
          };
          return false;
        }
      }
      return true;
    };
    if (p) {
      await runList(p.commands);
      if (!stopped && p.finally.length) await runList(p.finally);
    }
    if (stopped) {
      buildStatus = "STOPPED";
      end("STOPPED", { statusCode: "BUILD_STOPPED", message: "Build was stopped (StopBuild)" });
      return false;
    }
    if (failure) {
      succeeding = false;
      buildStatus = "FAILED";
      end("FAILED", failure);
      return p?.onFailure === "CONTINUE";
    }
    end("SUCCEEDED");
    return true;
  };

  if (!(await runPhase("INSTALL", spec.phases.install))) return finish();
  if (!(await runPhase("PRE_BUILD", spec.phases.pre_build))) return finish();
  const buildOk = await runPhase("BUILD", spec.phases.build);
  if (stopped) return finish();
  // POST_BUILD runs after BUILD whatever BUILD did (ABORT only stops before it when BUILD was
  // never reached); CODEBUILD_BUILD_SUCCEEDING tells the commands.
  void buildOk;
  await runPhase("POST_BUILD", spec.phases.post_build);
  if (stopped) return finish();
  begin("UPLOAD_ARTIFACTS");
  end("SUCCEEDED");
  if (buildStatus === "IN_PROGRESS") buildStatus = "SUCCEEDED";
  return finish();
}
