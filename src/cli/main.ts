import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { analyzeImages } from "../analyze.ts";
import { defaultCacheDir, openDigestCache } from "../hashing/cache.ts";
import { CommandError, ManifestError, PropsError, SelectionError } from "../manifest/errors.ts";
import { loadManifest, manifestPath } from "../manifest/load.ts";
import { manifestGraphImages, mermaidGraph, type GraphImage } from "./graph.ts";
import { comparePlans, computePlan, formatPlanTable, measureContextBytes, type Plan } from "./plan.ts";
import { writeSchema, schemaText } from "./schema.ts";
import { readSnapshot, type Snapshot } from "./snapshot.ts";
import { stableStringify } from "./stable-json.ts";

/**
 * Set by bin/run-bundle.mjs when this command runs from its bundle as a vm script (compiled from
 * V8's code cache), where Node 20 refuses import(): it imports a module beside the bundle.
 */
const bundleImport = () => (globalThis as { [key: symbol]: ((specifier: string) => Promise<unknown>) | undefined })[Symbol.for("lambda-images.bundle-import")];

export const USAGE = `lambda-images: see what the next synth builds, and why

Usage:
  lambda-images plan [--json] [--manifest FILE | --app COMMAND] [--out DIR] [--no-cache]
      Per stack and image: tag, file count, compressed context size, base image, platforms,
      and whether it will be rebuilt compared with the last synth (DIR/images.snapshot.json),
      with the reason: files added/removed/changed, Dockerfile, platforms, build args, base image.
      --json      stable JSON (sorted keys, no timestamps) for scripts
      --manifest  the manifest (default: env IMAGES_MANIFEST, else cdktf.json context.manifest)
      --app       a CDKTF app using the constructs (default, when there is no manifest: cdktf.json
                  "app"): it is synthesized into a scratch directory and compared with DIR
      --out       the synth output directory (default: cdktf.json "output", else cdktf.out)
      --no-cache  hash every file (also env LAMBDA_IMAGES_NO_CACHE=1)
  lambda-images graph [--manifest FILE | --app COMMAND]
      A Mermaid flowchart (external images -> base images -> Lambdas) on stdout.
  lambda-images iam [--stack NAME] [--account ID] [--manifest FILE]
      Least-privilege IAM policies (JSON) per stack: "terraform" for whoever runs terraform apply,
      "runner" for the local-exec build runner's AWS calls (same credentials in local-exec stacks).
      --account   the account id to put in ARNs (default "*")
  lambda-images schema [--stdout] [--file FILE]
      Writes the manifest's JSON Schema to images.schema.json (or FILE), or prints it.

Environment: IMAGES_MANIFEST, LAMBDA_IMAGES_CACHE_DIR (digest cache directory, default
node_modules/.cache/lambda-images), LAMBDA_IMAGES_NO_CACHE=1.
Exit status: 0 on success (whatever the plan says), 1 on a bad manifest, 2 on bad usage.
`;

class UsageError extends Error {}
/** The construct app could not be synthesized: its own output says why. */
class AppError extends CommandError {}

/** What cdktf.json says: the app command, the output directory, the manifest (images.yaml front end). */
function cdktfJson(cwd: string): { app?: string; output?: string; manifest?: string } {
  try {
    const json = JSON.parse(fs.readFileSync(path.join(cwd, "cdktf.json"), "utf8"));
    const str = (v: unknown) => (typeof v === "string" ? v : undefined);
    return { app: str(json?.app), output: str(json?.output), manifest: str(json?.context?.manifest) };
  } catch {
    return {};
  }
}

function cdktfOutput(cwd: string): string {
  return path.resolve(cwd, cdktfJson(cwd).output ?? "cdktf.out");
}

/**
 * Synthesizes a construct app into a scratch directory and returns the snapshot its image
 * build environments wrote: what a synth now would build, without touching the real output.
 * `noCache` (plan's `--no-cache`) reaches the app as LAMBDA_IMAGES_NO_CACHE=1, which its
 * digest and selection caches obey.
 */
function synthesizeApp(command: string, cwd: string, options: { noCache?: boolean } = {}): Snapshot {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "lambda-images-app-"));
  try {
    const env = { ...process.env, CDKTF_OUTDIR: scratch, ...(options.noCache ? { LAMBDA_IMAGES_NO_CACHE: "1" } : {}) };
    const result = spawnSync(command, { shell: true, cwd, env, encoding: "utf8", maxBuffer: 64 << 20 });
    if (result.status !== 0) {
      const tail = `${result.stderr ?? ""}${result.stdout ?? ""}`.trim().split("\n").slice(-20).join("\n");
      throw new AppError(`the app (${command}) failed with exit ${result.status ?? result.signal}:\n${tail}`);
    }
    const found = readSnapshot(scratch);
    if (found.status !== "found") {
      throw new AppError(`the app (${command}) wrote no ${path.basename(found.file)}: it defines no images with this library, or is not a CDKTF app. Fix: pass --app with the command that runs your app, or --manifest for images.yaml`);
    }
    return found.snapshot;
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

export interface CliIo {
  readonly out: { write(text: string): unknown };
  readonly err: { write(text: string): unknown };
  readonly cwd: string;
}

export async function run(argv: readonly string[], io: CliIo = { out: process.stdout, err: process.stderr, cwd: process.cwd() }): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    io.out.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...rest],
      options: {
        json: { type: "boolean" },
        manifest: { type: "string" },
        out: { type: "string" },
        "no-cache": { type: "boolean" },
        stdout: { type: "boolean" },
        file: { type: "string" },
        app: { type: "string" },
        stack: { type: "string" },
        account: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) {
    io.out.write(USAGE);
    return 0;
  }
  const manifestFile = () => (typeof values.manifest === "string" ? path.resolve(io.cwd, values.manifest) : manifestPath(io.cwd));
  // A construct app when asked for, or when nothing names a manifest and cdktf.json names an app.
  const config = cdktfJson(io.cwd);
  const appCommand =
    typeof values.app === "string"
      ? values.app
      : typeof values.manifest !== "string" && !process.env.IMAGES_MANIFEST && !config.manifest
        ? config.app
        : undefined;

  switch (command) {
    case "plan": {
      const outdir = typeof values.out === "string" ? path.resolve(io.cwd, values.out) : cdktfOutput(io.cwd);
      const previous = readSnapshot(outdir);
      let plan: Plan;
      if (appCommand) {
        plan = comparePlans(synthesizeApp(appCommand, io.cwd, { noCache: values["no-cache"] === true }), previous);
      } else {
        const manifest = loadManifest(manifestFile());
        const cache = openDigestCache({ root: manifest.root, disabled: values["no-cache"] === true, cwd: io.cwd });
        const analysis = await analyzeImages(manifest, { cache });
        cache.save();
        for (const warning of analysis.warnings) io.err.write(`warning: ${warning}\n`);
        plan = computePlan(analysis, Object.keys(manifest.stacks), previous, measureContextBytes(analysis, defaultCacheDir(process.env, io.cwd)));
      }
      if (values.json) io.out.write(`${stableStringify(plan)}\n`);
      else io.out.write(`${formatPlanTable(plan, previous.status === "found" ? "" : previous.reason)}\n`);
      return 0;
    }
    case "graph": {
      if (appCommand) {
        // One node per image across the app's stacks (a stack may build fewer).
        const images = new Map<string, GraphImage>();
        for (const stack of Object.values(synthesizeApp(appCommand, io.cwd).stacks)) {
          for (const [key, image] of Object.entries(stack.images)) if (!images.has(key)) images.set(key, image);
        }
        io.out.write(mermaidGraph([...images.values()]));
        return 0;
      }
      const manifest = loadManifest(manifestFile());
      io.out.write(mermaidGraph(manifestGraphImages(manifest, (image) => fs.readFileSync(path.join(manifest.root, image.dockerfile), "utf8"))));
      return 0;
    }
    case "iam": {
      // Loaded here: it synthesizes the stacks (cdktf, the providers, the runner's SDK calls), which plan and graph never need.
      const { iamCommand } = ((await bundleImport()?.("./iam.js")) ?? (await import("./iam.ts"))) as typeof import("./iam.ts");
      const text = iamCommand(manifestFile(), { stack: values.stack as string | undefined, account: values.account as string | undefined });
      io.out.write(text);
      return 0;
    }
    case "schema": {
      if (values.stdout) io.out.write(schemaText());
      else {
        const file = path.resolve(io.cwd, typeof values.file === "string" ? values.file : "images.schema.json");
        writeSchema(file);
        io.err.write(`wrote ${path.relative(io.cwd, file) || file}\n`);
      }
      return 0;
    }
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

const isEntry = process.argv[1] !== undefined && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname);
if (isEntry) {
  run(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      if (error instanceof UsageError) {
        process.stderr.write(`${error.message}\n\n${USAGE}`);
        process.exit(2);
      }
      // Bad input is the user's to fix: say what and where, without a stack trace.
      const known = error instanceof ManifestError || error instanceof SelectionError || error instanceof PropsError || error instanceof CommandError;
      process.stderr.write(`${known ? (error as Error).message : String((error as Error)?.stack ?? error)}\n`);
      process.exit(1);
    },
  );
}
