import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { TfJson, TfResource } from "./synth.ts";

/**
 * Running the real `terraform` binary offline, on configurations made from the synthesized
 * stacks with every reference to a provider's resource or data source replaced by a literal
 * placeholder, so no provider is ever needed (only the built-in `terraform_data`).
 */

/** The `terraform` on PATH, or undefined when there is none (tests then skip with a reason). */
export function findTerraform(): string | undefined {
  const run = spawnSync("terraform", ["version"], { encoding: "utf8", env: terraformEnv() });
  return run.status === 0 ? "terraform" : undefined;
}

let cliConfig: string | undefined;

/** Environment for an offline terraform: an empty CLI config, no version check, no prompts. */
export function terraformEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  if (!cliConfig) {
    cliConfig = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "tf-cli-")), "empty.tfrc");
    fs.writeFileSync(cliConfig, "");
  }
  const env: NodeJS.ProcessEnv = { ...process.env, TF_CLI_CONFIG_FILE: cliConfig, CHECKPOINT_DISABLE: "1", TF_IN_AUTOMATION: "1", TF_INPUT: "0", ...extra };
  // A provider cache or plugin directory from the caller's environment must not matter.
  delete env.TF_PLUGIN_CACHE_DIR;
  delete env.TF_DATA_DIR;
  return env;
}

/** Removes the empty CLI configuration file (call from afterAll). */
export function removeTerraformCliConfig(): void {
  if (cliConfig) fs.rmSync(path.dirname(cliConfig), { recursive: true, force: true });
  cliConfig = undefined;
}

export interface TerraformRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `terraform <args>` in `dir`; throws with its output when it fails and `allowFailure` is not set. */
export function terraform(dir: string, args: string[], options: { env?: Record<string, string>; allowFailure?: boolean } = {}): TerraformRun {
  const run = spawnSync("terraform", [...args, ...(args[0] === "output" || args[0] === "show" ? [] : ["-no-color"])], {
    cwd: dir,
    encoding: "utf8",
    env: terraformEnv(options.env),
    timeout: 120_000,
  });
  const result = { status: run.status, stdout: run.stdout, stderr: run.stderr };
  if (run.status !== 0 && !options.allowFailure) {
    throw new Error(`terraform ${args.join(" ")} in ${dir} exited ${run.status}:\n${run.stdout}\n${run.stderr}`);
  }
  return result;
}

/** `<type.name.attr>` or `<data.type.name.attr>`: what a reference to a provider's object reads as. */
export function placeholder(ref: string): string {
  return `<${ref}>`;
}

const REFERENCE = /(data\.)?([a-z][a-z0-9_]*)\.([A-Za-z0-9_-]+)\.([a-z0-9_]+)/g;

/**
 * Rewrites every string of `value` so that references to the stack's provider resources and data
 * sources (`aws_x.name.attr`, `data.aws_y.name.attr`) read `local.<…>.attr` instead, and returns
 * the locals that give each such attribute its placeholder. Nothing else in a string changes:
 * escapes (`$${`, `%%{`), functions and literal text are left for Terraform to read.
 * `keep(type)` names resource types that stay real (terraform_data).
 */
export function replaceProviderReferences(
  stack: TfJson,
  value: unknown,
  keep: (type: string) => boolean = () => false,
): { value: unknown; locals: Record<string, Record<string, string>> } {
  const known = new Set<string>();
  for (const [type, byName] of Object.entries((stack.resource ?? {}) as Record<string, object>)) {
    if (!keep(type)) for (const name of Object.keys(byName)) known.add(`${type}.${name}`);
  }
  for (const [type, byName] of Object.entries((stack.data ?? {}) as Record<string, object>)) {
    for (const name of Object.keys(byName)) known.add(`data.${type}.${name}`);
  }
  const locals: Record<string, Record<string, string>> = {};
  const rewrite = (s: string) =>
    s.replace(REFERENCE, (match, data: string | undefined, type: string, name: string, attr: string) => {
      const object = `${data ?? ""}${type}.${name}`;
      if (!known.has(object)) return match;
      const local = `${data ? "d" : "r"}__${type}__${name}`;
      (locals[local] ??= {})[attr] = placeholder(`${object}.${attr}`);
      return `local.${local}.${attr}`;
    });
  const walk = (v: unknown): unknown => {
    if (typeof v === "string") return rewrite(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, k === "//" ? x : walk(x)]));
    return v;
  };
  return { value: walk(value), locals };
}

/** Every string value under `value` with its JSON path (construct metadata `//` excluded). */
export function stringsOf(value: unknown, at = ""): { where: string; value: string }[] {
  if (typeof value === "string") return [{ where: at, value }];
  if (Array.isArray(value)) return value.flatMap((v, i) => stringsOf(v, `${at}[${i}]`));
  if (value && typeof value === "object") {
    return Object.entries(value).flatMap(([k, v]) => (k === "//" ? [] : stringsOf(v, at ? `${at}.${k}` : k)));
  }
  return [];
}

/** The construct path (`//.metadata.path`) of a synthesized resource. */
export function constructPath(resource: TfResource): string {
  return String(resource["//"]?.metadata?.path ?? "");
}
