// E2E-ONLY: "terraform apply" of one synthesized stack (cdk.tf.json) against the local stand-ins,
// for the resource types that build images. Each emulated type does what its provider would do:
//
//   aws_ecr_repository     nothing to create (the registry makes a repository on first push);
//                          repository_url = 127.0.0.1:PORT/<name>
//   aws_s3_bucket          CreateBucket on the S3 server (bucket, or bucket_prefix + "e2e")
//   aws_s3_object          PutObject of `source` (a file of the stack dir) to bucket/key
//   aws_codebuild_project  registers its inline source.buildspec and environment variables with the
//                          fake CodeBuild, whose builds the CodeBuild stand-in executes
//   docker_image           the Docker provider's build: `docker build` (the shim → buildah) of the
//                          `build.context` dir with its dockerfile, platform and build_args, tagged
//                          `name`, in one persistent "Terraform host" image store (keep_locally)
//   docker_registry_image  `docker push name`
//   terraform_data         runs each local-exec provisioner command with /bin/sh -c, cwd = the stack
//                          dir, with AWS_ENDPOINT_URL at the fake API and dummy credentials
// Everything else (IAM, log groups, Lambda functions, lifecycle rules, …) is a graph node that does
// nothing: it is listed as "not emulated" and its references are never evaluated.
//
// Create/replace decisions follow Terraform: a resource not in the previous state is created;
// terraform_data is replaced when its evaluated `triggers_replace` differs; docker_image when
// `name`, `build` or `triggers` (all ForceNew) differ; docker_registry_image when `name` or
// `triggers` differ; aws_s3_object uploads when bucket, key or source differ; anything else no-op.
import { spawn } from "node:child_process";
import { createWriteStream, mkdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve as resolvePath } from "node:path";
import { CreateBucketCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { fakeAwsEnv } from "../../__tests__/fake-aws/index.ts";
import type { Harness } from "./harness.ts";
import { trackChild } from "./services.ts";
import { sh } from "./standin.ts";
import {
  dependencies,
  evalDeep,
  evalTemplate,
  resources,
  TemplateError,
  walkGraph,
  type EvalContext,
  type Reference,
  type TfDoc,
  type TfValue,
  type WalkResult,
} from "./terraform.ts";
import type { StandInProject } from "./fake-codebuild.ts";

export interface ResourceState {
  type: string;
  /** The evaluated attributes compared between applies. */
  attrs: Record<string, TfValue>;
  /** Attributes other resources may reference. */
  computed: Record<string, string>;
}
export type State = Map<string, ResourceState>;

export type Action = "create" | "replace" | "update" | "no-op" | "not emulated";

export interface ApplyRecord {
  address: string;
  type: string;
  /** `//.metadata.path`, e.g. prod/lambda-upload-images/trigger/build */
  path: string;
  action: Action;
  ok: boolean;
  error?: string;
  start: number;
  end: number;
  seconds: number;
  /** PutObject bytes (aws_s3_object). */
  bytes?: number;
  /** Command output (terraform_data, docker_*). */
  output?: string;
  logFile?: string;
  /** The evaluated local-exec command (terraform_data). */
  command?: string;
  notes?: string[];
}

export interface ApplyContext {
  h: Harness;
  /** Projects the fake CodeBuild knows (shared with its projects callback). */
  projects: Map<string, StandInProject>;
  /** The fake CodeBuild/ECR/Logs endpoint for the runner. */
  endpoint: string;
  /** Environment of the "Terraform host"'s docker (the shim over one persistent buildah store). */
  dockerEnv: Record<string, string>;
  logDir: string;
  parallelism?: number;
  log: (line: string) => void;
}

export const EMULATED = new Set([
  "aws_ecr_repository",
  "aws_s3_bucket",
  "aws_s3_object",
  "aws_codebuild_project",
  "docker_image",
  "docker_registry_image",
  "terraform_data",
]);

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Applies `doc` (its stack directory is `stackDir`) over `prev`; returns the new state. */
export async function apply(
  doc: TfDoc,
  stackDir: string,
  prev: State,
  ctx: ApplyContext,
): Promise<{ state: State; records: ApplyRecord[]; walk: WalkResult[] }> {
  const state: State = new Map();
  const records: ApplyRecord[] = [];
  const all = resources(doc);
  const byAddress = new Map(all.map((r) => [r.address, r]));
  mkdirSync(ctx.logDir, { recursive: true });

  const evalCtx: EvalContext = {
    stackDir,
    resolve(ref: Reference) {
      const address = `${ref.type}.${ref.name}`;
      const s = state.get(address);
      if (!byAddress.has(address)) throw new TemplateError(`reference to undeclared resource ${address}`);
      if (!EMULATED.has(ref.type)) throw new TemplateError(`\${${address}.${ref.attr}}: ${ref.type} is not emulated, its attributes are unknown`);
      if (!s) throw new TemplateError(`\${${address}.${ref.attr}} evaluated before ${address} was applied (missing dependency?)`);
      const v = s.computed[ref.attr];
      if (v === undefined) throw new TemplateError(`\${${address}.${ref.attr}}: attribute ${ref.attr} of ${ref.type} is not emulated`);
      return v;
    },
  };

  const nodes = new Map<string, Set<string>>();
  for (const r of all) nodes.set(r.address, dependencies(r.config));

  const run = async (address: string) => {
    const r = byAddress.get(address)!;
    const path = ((r.config["//"] as { metadata?: { path?: string } } | undefined)?.metadata?.path ?? address) as string;
    const rec: ApplyRecord = { address, type: r.type, path, action: "no-op", ok: false, start: Date.now(), end: 0, seconds: 0 };
    records.push(rec);
    const ev = (v: TfValue, attr: string) => evalDeep(v, evalCtx, `${address}.${attr}`);
    const before = prev.get(address);
    try {
      switch (r.type) {
        case "aws_ecr_repository": {
          const name = ev(r.config.name!, "name") as string;
          rec.action = before ? (same(before.attrs, { name }) ? "no-op" : "replace") : "create";
          state.set(address, { type: r.type, attrs: { name }, computed: { name, repository_url: `${ctx.h.registry.host}/${name}` } });
          break;
        }
        case "aws_s3_bucket": {
          const bucket = r.config.bucket !== undefined ? (ev(r.config.bucket, "bucket") as string) : `${ev(r.config.bucket_prefix!, "bucket_prefix") as string}e2e`;
          rec.action = before ? (same(before.attrs, { bucket }) ? "no-op" : "replace") : "create";
          if (rec.action !== "no-op") await ctx.h.s3client.send(new CreateBucketCommand({ Bucket: bucket }));
          state.set(address, { type: r.type, attrs: { bucket }, computed: { bucket, id: bucket } });
          break;
        }
        case "aws_s3_object": {
          const attrs = {
            bucket: ev(r.config.bucket!, "bucket"),
            key: ev(r.config.key!, "key"),
            source: ev(r.config.source!, "source"),
            content_type: r.config.content_type === undefined ? null : ev(r.config.content_type, "content_type"),
          };
          rec.action = !before ? "create" : before.attrs.bucket !== attrs.bucket || before.attrs.key !== attrs.key ? "replace" : same(before.attrs, attrs) ? "no-op" : "update";
          if (rec.action !== "no-op") {
            // Terraform resolves a relative `source` against its working directory, the stack dir.
            const body = readFileSync(join(stackDir, attrs.source as string));
            await ctx.h.s3client.send(
              new PutObjectCommand({ Bucket: attrs.bucket as string, Key: attrs.key as string, Body: body, ContentType: (attrs.content_type as string) ?? undefined }),
            );
            rec.bytes = body.length;
          }
          state.set(address, { type: r.type, attrs, computed: { key: attrs.key as string, bucket: attrs.bucket as string, id: attrs.key as string } });
          break;
        }
        case "aws_codebuild_project": {
          const name = ev(r.config.name!, "name") as string;
          const source = r.config.source as Record<string, TfValue>;
          const raw = source.buildspec as string;
          let buildspec: string;
          try {
            buildspec = evalTemplate(raw, evalCtx, `${address}.source.buildspec`);
          } catch (err) {
            if (!(err instanceof TemplateError)) throw err;
            // Terraform would reject this string at plan (see the template check); go on with the
            // text as the buildspec's author meant it, so the build itself is still exercised.
            buildspec = raw.replace(/\$\$\{/g, "${").replace(/%%\{/g, "%{");
            rec.notes = [`source.buildspec is not a valid Terraform template (${err.message}); used verbatim`];
          }
          const env: Record<string, string> = {};
          const envConfig = (r.config.environment as Record<string, TfValue>)?.environment_variable as Record<string, TfValue>[] | undefined;
          for (const [i, v] of (envConfig ?? []).entries()) {
            env[ev(v.name!, `environment.environment_variable[${i}].name`) as string] = ev(v.value!, `environment.environment_variable[${i}].value`) as string;
          }
          const attrs = { name, buildspec, env };
          rec.action = before ? (same(before.attrs, attrs) ? "no-op" : before.attrs.name !== name ? "replace" : "update") : "create";
          ctx.projects.set(name, { buildspec, env });
          state.set(address, { type: r.type, attrs, computed: { name, id: name } });
          break;
        }
        case "docker_image": {
          const build = ev(r.config.build!, "build") as Record<string, TfValue>;
          const attrs = { name: ev(r.config.name!, "name"), build, triggers: ev(r.config.triggers ?? {}, "triggers") };
          rec.action = !before ? "create" : same(before.attrs, attrs) ? "no-op" : "replace";
          if (rec.action !== "no-op") {
            // Relative to the stack directory, where Terraform (and so the Docker provider) runs.
            const context = resolvePath(stackDir, build.context as string);
            const args = ["build"];
            if (build.platform) args.push("--platform", build.platform as string);
            // The provider's `dockerfile` is relative to the context (the docker CLI's -f is not).
            args.push("-f", join(context, (build.dockerfile as string) ?? "Dockerfile"));
            for (const [k, v] of Object.entries((build.build_args as Record<string, string>) ?? {})) args.push("--build-arg", `${k}=${v}`);
            if (build.pull_parent === true) args.push("--pull");
            args.push("-t", attrs.name as string, context);
            rec.logFile = join(ctx.logDir, `${r.name}.log`);
            rec.command = `docker ${args.join(" ")}`;
            await sh("docker", args, { env: ctx.dockerEnv, logFile: rec.logFile });
            rec.output = readFileSync(rec.logFile, "utf8");
          }
          state.set(address, { type: r.type, attrs, computed: { name: attrs.name as string, id: attrs.name as string } });
          break;
        }
        case "docker_registry_image": {
          const attrs = { name: ev(r.config.name!, "name"), triggers: ev(r.config.triggers ?? {}, "triggers") };
          rec.action = !before ? "create" : same(before.attrs, attrs) ? "no-op" : "replace";
          let digest = before?.computed.sha256_digest ?? "";
          if (rec.action !== "no-op") {
            rec.logFile = join(ctx.logDir, `${r.name}.log`);
            rec.command = `docker push ${attrs.name}`;
            const out = await sh("docker", ["push", attrs.name as string], { env: ctx.dockerEnv, logFile: rec.logFile, capture: true });
            rec.output = out;
            digest = /digest: (sha256:[0-9a-f]{64})/.exec(out)?.[1] ?? "";
            if (!digest) throw new Error(`docker push ${attrs.name}: no digest in its output`);
          }
          state.set(address, { type: r.type, attrs, computed: { name: attrs.name as string, sha256_digest: digest, id: digest } });
          break;
        }
        case "terraform_data": {
          const attrs = { triggers_replace: ev(r.config.triggers_replace ?? null, "triggers_replace") };
          rec.action = !before ? "create" : same(before.attrs, attrs) ? "no-op" : "replace";
          if (rec.action !== "no-op") {
            // Provisioners run only when the resource is created (a replacement is a create).
            const provisioners = (r.config.provisioner as Record<string, Record<string, TfValue>>[] | undefined) ?? [];
            rec.logFile = join(ctx.logDir, `${r.name}.log`);
            rec.output = "";
            for (const [i, p] of provisioners.entries()) {
              const [kind, body] = Object.entries(p)[0]!;
              if (kind !== "local-exec") throw new Error(`${address}: provisioner ${kind} is not emulated`);
              if (body.interpreter || body.working_dir || body.environment) throw new Error(`${address}: local-exec interpreter/working_dir/environment are not emulated`);
              const command = ev(body.command!, `provisioner[${i}].local-exec.command`) as string;
              rec.command = command;
              const res = await localExec(command, stackDir, localExecEnv(ctx.endpoint), rec.logFile);
              rec.output += res.out;
              if (res.code !== 0) throw new Error(`local-exec provisioner error: exit status ${res.code}\n${res.out.split("\n").slice(-15).join("\n")}`);
            }
          }
          state.set(address, { type: r.type, attrs, computed: { id: address } });
          break;
        }
        default:
          rec.action = "not emulated";
      }
      rec.ok = true;
    } catch (err) {
      rec.error = (err as Error).message;
      throw err;
    } finally {
      rec.end = Date.now();
      rec.seconds = (rec.end - rec.start) / 1000;
      if (rec.action !== "no-op" && rec.action !== "not emulated") {
        ctx.log(`    ${rec.ok ? "" : "FAILED "}${rec.action.padEnd(7)} ${address} (${rec.seconds.toFixed(1)}s${rec.bytes !== undefined ? `, ${rec.bytes} B` : ""})`);
      }
    }
  };

  const walk = await walkGraph(nodes, run, ctx.parallelism ?? 10);
  return { state, records, walk };
}

/** The environment Terraform's local-exec would give the runner: ours, with the SDK pointed at
 * the fake API and dummy credentials, `node` on PATH. */
export function localExecEnv(endpoint: string): Record<string, string> {
  const env = fakeAwsEnv(endpoint, { extra: { RUNNER_POLL_MS: "300", AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" } });
  env.PATH = `${dirname(process.execPath)}:${env.PATH}`;
  return env;
}

/** `/bin/sh -c command` in `cwd` (what local-exec does on Unix); stdout+stderr to `logFile`. */
export function localExec(command: string, cwd: string, env: Record<string, string>, logFile: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("/bin/sh", ["-c", command], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    trackChild(child);
    const log = createWriteStream(logFile, { flags: "a" });
    log.write(`$ ${command}\n`);
    let out = "";
    const take = (d: Buffer) => {
      out += d;
      log.write(d);
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    child.on("error", reject);
    child.on("close", (code) => log.end(() => resolve({ code: code ?? 1, out })));
  });
}

/** Splits a command line the way /bin/sh would for plain words and double/single quotes. */
export function shellWords(command: string): string[] {
  const words: string[] = [];
  let cur = "";
  let inWord = false;
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    if (c === "'") {
      const j = command.indexOf("'", i + 1);
      cur += command.slice(i + 1, j);
      i = j;
      inWord = true;
    } else if (c === '"') {
      let j = i + 1;
      for (; command[j] !== '"'; j++) {
        if (command[j] === "\\" && /["\\$`]/.test(command[j + 1] ?? "")) j++;
        cur += command[j];
      }
      i = j;
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = "";
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return words;
}
