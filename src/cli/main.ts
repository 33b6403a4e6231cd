import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { analyzeImages } from "../analyze.ts";
import { defaultCacheDir, openDigestCache } from "../hashing/cache.ts";
import { CommandError, isUserError } from "../manifest/errors.ts";
import { loadManifest, manifestPath } from "../manifest/load.ts";
import { manifestGraphImages, mermaidGraph, type GraphImage } from "./graph.ts";
import { comparePlans, computePlan, formatPlanMarkdown, formatPlanTable, measureContextBytes, type Plan } from "./plan.ts";
import { initCommand } from "./init.ts";
import { writeSchema, schemaText } from "./schema.ts";
import { readSnapshot, type Snapshot } from "../snapshot/snapshot.ts";
import { stableStringify } from "../snapshot/stable-json.ts";

/**
 * Set by bin/run-bundle.mjs when this command runs from its bundle as a vm script (compiled from
 * V8's code cache), where Node 20 refuses import(): it imports a module beside the bundle.
 */
const bundleImport = () => (globalThis as { [key: symbol]: ((specifier: string) => Promise<unknown>) | undefined })[Symbol.for("lambda-images.bundle-import")];

/** Each command: its synopsis and help, and the options it takes (any other is an error). */
interface CommandSpec {
  readonly synopsis: string;
  readonly help: string;
  readonly options: Record<string, { type: "boolean" | "string"; short?: string }>;
}

const MANIFEST_HELP = "      --manifest  the manifest (default: env IMAGES_MANIFEST, else cdktf.json context.manifest, else images.yaml)";

export const COMMANDS: Record<string, CommandSpec> = {
  plan: {
    synopsis: "lambda-images plan [--json | --markdown] [--verbose] [--manifest FILE | --app COMMAND] [--out DIR] [--no-cache]",
    help: `      What the next synth builds, and why: a summary first, then per stack and image its tag,
      file count, compressed context size, base image, platforms, and whether it will be rebuilt
      compared with the last synth (DIR/images.snapshot.json), with the reason: files
      added/removed/changed, Dockerfile, platforms, build args, base image.
      --json      stable JSON (sorted keys, no timestamps) for scripts
      --markdown  a Markdown summary to post on a pull request: which images rebuild and why
      --verbose   every changed file (default: the first few per image, and how many more)
${MANIFEST_HELP}
      --app       a CDKTF app using the constructs (default, when there is no manifest: cdktf.json
                  "app"): it is synthesized into a scratch directory and compared with DIR
      --out       the synth output directory (default: cdktf.json "output", else cdktf.out)
      --no-cache  hash every file (also env LAMBDA_IMAGES_NO_CACHE=1)`,
    options: {
      json: { type: "boolean" },
      markdown: { type: "boolean" },
      verbose: { type: "boolean", short: "v" },
      manifest: { type: "string" },
      app: { type: "string" },
      out: { type: "string" },
      "no-cache": { type: "boolean" },
    },
  },
  graph: {
    synopsis: "lambda-images graph [--manifest FILE | --app COMMAND]",
    help: `      A Mermaid flowchart (external images -> base images -> Lambdas and other images) on stdout.
${MANIFEST_HELP}
      --app       a CDKTF app using the constructs (default, when there is no manifest: cdktf.json "app")`,
    options: { manifest: { type: "string" }, app: { type: "string" } },
  },
  iam: {
    synopsis: "lambda-images iam [--stack NAME] [--account ID] [--manifest FILE]",
    help: `      Least-privilege IAM policies (JSON) per stack: "terraform" for whoever runs terraform apply,
      "runner" for the local-exec build runner's AWS calls (same credentials in local-exec stacks).
      --stack     only this stack (default: every stack of the manifest)
      --account   the account id to put in ARNs (default "*")
${MANIFEST_HELP}`,
    options: { stack: { type: "string" }, account: { type: "string" }, manifest: { type: "string" } },
  },
  schema: {
    synopsis: "lambda-images schema [--stdout] [--file FILE]",
    help: `      Writes the manifest's JSON Schema to images.schema.json (or FILE), or prints it.`,
    options: { stdout: { type: "boolean" }, file: { type: "string" } },
  },
  init: {
    synopsis: "lambda-images init [--force]",
    help: `      Sets up the current directory (your monorepo, with this package installed as a dev
      dependency) for the images.yaml app: writes cdktf.json (its app is the installed package's),
      images.yaml proposed from the Dockerfiles found (every guess marked for review), and
      .gitignore entries for cdktf.out and the caches. Then: npx cdktf synth, npx lambda-images plan.
      --force     overwrite cdktf.json and images.yaml if they exist (default: leave them, exit 1)`,
    options: { force: { type: "boolean" } },
  },
};

/** One command's help. */
export function commandUsage(command: string): string {
  const spec = COMMANDS[command]!;
  return `Usage: ${spec.synopsis}
${spec.help}
`;
}

export const USAGE = `lambda-images: see what the next synth builds, and why

Usage:
${Object.values(COMMANDS)
  .map((c) => `  ${c.synopsis}\n${c.help}`)
  .join("\n")}

Each command takes --help. Environment: IMAGES_MANIFEST, LAMBDA_IMAGES_CACHE_DIR (digest cache
directory, default node_modules/.cache/lambda-images), LAMBDA_IMAGES_NO_CACHE=1.
Exit status: 0 on success (whatever the plan says), 1 on a bad manifest, 2 on bad usage.
`;

class UsageError extends Error {
  constructor(
    message: string,
    /** The command whose help to point at. */
    readonly command?: string,
  ) {
    super(message);
  }
}
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

/** parseArgs's complaint, in this command's terms. */
function usageMessage(command: string, spec: CommandSpec, error: Error & { code?: string }): string {
  const takes = Object.keys(spec.options).map((o) => `--${o}`);
  const option = /'(-[^']*)'/.exec(error.message)?.[1];
  if (error.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && option) {
    const bare = option.replace(/^-+/, "");
    const others = Object.entries(COMMANDS)
      .filter(([name, c]) => name !== command && bare in c.options)
      .map(([name]) => name);
    return `lambda-images ${command}: ${option} is not an option of ${command}${others.length ? ` (${others.join(", ")} ${others.length > 1 ? "take" : "takes"} it)` : ""}; ${command} takes ${takes.join(", ") || "no options"}`;
  }
  if (error.code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL") return `lambda-images ${command}: takes no arguments, only options (${takes.join(", ")}): ${error.message.replace(/\.$/, "")}`;
  return `lambda-images ${command}: ${error.message.replace(/\.$/, "")}`;
}

export async function run(argv: readonly string[], io: CliIo = { out: process.stdout, err: process.stderr, cwd: process.cwd() }): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    io.out.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  const spec = COMMANDS[command];
  if (!spec) throw new UsageError(`unknown command "${command}" (commands: ${Object.keys(COMMANDS).join(", ")})`);
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...rest],
      options: { ...spec.options, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError(usageMessage(command, spec, error as Error & { code?: string }), command);
  }
  if (values.help) {
    io.out.write(commandUsage(command));
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
        for (const warning of [...manifest.warnings, ...analysis.warnings]) io.err.write(`warning: ${warning}\n`);
        plan = computePlan(analysis, Object.keys(manifest.stacks), previous, measureContextBytes(analysis, defaultCacheDir(process.env, io.cwd)));
      }
      const format = { snapshotNote: previous.status === "found" ? "" : previous.reason, verbose: values.verbose === true };
      if (values.json && values.markdown) throw new UsageError("lambda-images plan: --json and --markdown are two output forms; pick one", command);
      if (values.json) io.out.write(`${stableStringify(plan)}\n`);
      else if (values.markdown) io.out.write(formatPlanMarkdown(plan, format, previous));
      else io.out.write(`${formatPlanTable(plan, format, previous)}\n`);
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
    case "init": {
      return initCommand(io, { force: values.force === true });
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
        const synopsis = error.command ? COMMANDS[error.command]?.synopsis : undefined;
        process.stderr.write(`${error.message}\n${synopsis ? `Usage: ${synopsis}\n` : ""}See: lambda-images ${error.command ? `${error.command} ` : ""}--help\n`);
        process.exit(2);
      }
      // Bad input is the user's to fix: say what and where, without a stack trace.
      process.stderr.write(`${isUserError(error) ? error.message : String((error as Error)?.stack ?? error)}\n`);
      process.exit(1);
    },
  );
}
