import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { createImagesApp } from "../../src/app.ts";
import type { ImageAnalysis } from "../../src/analyze.ts";

/** A synthesized `cdk.tf.json`, loosely typed: tests index into it the way a reader would. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type TfJson = Record<string, any>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type TfResource = Record<string, any>;

export interface SynthResult {
  /** cdktf output directory (holds `stacks/<stack>/cdk.tf.json` and the stacks' assets). */
  readonly outdir: string;
  /** Where synth kept its archives, staged contexts and runner bundle. */
  readonly workDir: string;
  /** Parsed `cdk.tf.json` of every stack, by stack name. */
  readonly stacks: Readonly<Record<string, TfJson>>;
  readonly analysis: ImageAnalysis;
}

export interface SynthOptions {
  /** Manifest to synthesize. @default `<copyDir>/images.yaml` */
  readonly manifest?: string;
  /** Synth's work directory. @default `<outdir>.work`, beside the output directory */
  readonly workDir?: string;
}

/**
 * Synthesizes a copy of the example (see `copyExample`) in-process into `outdir` and returns
 * the parsed JSON of every stack. Give each synth its own `outdir` (and so its own work dir)
 * so tests never share generated files.
 */
export async function synthExample(copyDir: string, outdir: string, options: SynthOptions = {}): Promise<SynthResult> {
  const manifestFile = options.manifest ?? path.join(copyDir, "images.yaml");
  const workDir = options.workDir ?? `${path.resolve(outdir)}.work`;
  const { app, analysis } = await createImagesApp({ manifestFile, workDir, outdir });
  app.synth();
  const stacksDir = path.join(outdir, "stacks");
  const stacks: Record<string, TfJson> = {};
  for (const name of fs.readdirSync(stacksDir).sort()) {
    stacks[name] = JSON.parse(fs.readFileSync(path.join(stacksDir, name, "cdk.tf.json"), "utf8")) as TfJson;
  }
  return { outdir, workDir, stacks, analysis };
}

/** The resources of one type in a stack, by logical id (empty when there are none). */
export function resourcesOf(stack: TfJson, type: string): Record<string, TfResource> {
  return (stack.resource?.[type] ?? {}) as Record<string, TfResource>;
}

/** The one resource of `type` whose construct path (`//.metadata.path`) ends with `pathSuffix`. */
export function resourceAt(stack: TfJson, type: string, pathSuffix: string): TfResource {
  const found = Object.values(resourcesOf(stack, type)).filter((r) => String(r["//"]?.metadata?.path ?? "").endsWith(pathSuffix));
  if (found.length !== 1) throw new Error(`expected one ${type} at …${pathSuffix}, found ${found.length}`);
  return found[0]!;
}

/**
 * Replaces asset hashes (`assets/<id>/<HASH>` → `assets/<id>/<ASSET>`), so a snapshot does not
 * change with the runner bundle's bytes. Nothing else differs between checkouts
 * (checkout-location.test.ts).
 */
export function normalizeSynth<T>(json: T): T {
  const text = JSON.stringify(json).replace(/(assets\/[^/"\\]+\/)[0-9A-F]{32}/g, "$1<ASSET>");
  return JSON.parse(text) as T;
}

/** A Terraform reference `${type.id.attribute}` (the whole string), or undefined. */
export function parseRef(expr: unknown): { type: string; id: string; attribute: string } | undefined {
  const m = typeof expr === "string" ? /^\$\{([a-z0-9_]+)\.([^.}]+)\.([a-z0-9_]+)\}$/.exec(expr) : null;
  return m ? { type: m[1]!, id: m[2]!, attribute: m[3]! } : undefined;
}

/**
 * The argv a local-exec command gives its program once Terraform has interpolated it: every
 * `${…}` becomes the placeholder `<…>` (as Terraform would put a value there), then bash
 * parses the line. Proves the quoting as well as the arguments.
 */
export function localExecArgv(command: string): string[] {
  const interpolations: string[] = [];
  const substituted = command.replace(/\$\{[^}]*\}/g, (m) => `@@TF${interpolations.push(m) - 1}@@`);
  const run = spawnSync("bash", ["-c", `printf '%s\\0' ${substituted}`], { encoding: "utf8" });
  if (run.status !== 0) throw new Error(`bash could not parse ${command}: ${run.stderr}`);
  return run.stdout
    .split("\0")
    .slice(0, -1)
    .map((arg) => arg.replace(/@@TF(\d+)@@/g, (_, i: string) => interpolations[Number(i)]!));
}

/** The value after `flag` in argv (undefined when absent). */
export function flagValue(argv: readonly string[], flag: string): string | undefined {
  const at = argv.indexOf(flag);
  return at < 0 ? undefined : argv[at + 1];
}
