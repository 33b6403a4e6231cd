import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { analyzeImages } from "../analyze.ts";
import { openDigestCache } from "../hashing/cache.ts";
import { ManifestError, SelectionError } from "../manifest/errors.ts";
import { loadManifest, manifestPath } from "../manifest/load.ts";
import { mermaidGraph } from "./graph.ts";
import { iamCommand, IamError } from "./iam.ts";
import { computePlan, formatPlanTable, measureContextBytes } from "./plan.ts";
import { writeSchema, schemaText } from "./schema.ts";
import { readSnapshot } from "./snapshot.ts";
import { stableStringify } from "./stable-json.ts";

export const USAGE = `lambda-images: see what the next synth builds, and why

Usage:
  lambda-images plan [--json] [--manifest FILE] [--out DIR] [--no-cache]
      Per stack and image: tag, file count, compressed context size, base image, platforms,
      and whether it will be rebuilt compared with the last synth (DIR/images.snapshot.json),
      with the reason: files added/removed/changed, Dockerfile, platforms, build args, base image.
      --json      stable JSON (sorted keys, no timestamps) for scripts
      --manifest  the manifest (default: env IMAGES_MANIFEST, else cdktf.json context.manifest)
      --out       the synth output directory (default: cdktf.json "output", else cdktf.out)
      --no-cache  hash every file (also env LAMBDA_IMAGES_NO_CACHE=1)
  lambda-images graph [--manifest FILE]
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

function cdktfOutput(cwd: string): string {
  try {
    const output = JSON.parse(fs.readFileSync(path.join(cwd, "cdktf.json"), "utf8"))?.output;
    if (typeof output === "string") return path.resolve(cwd, output);
  } catch {
    // No cdktf.json: the default.
  }
  return path.resolve(cwd, "cdktf.out");
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

  switch (command) {
    case "plan": {
      const manifest = loadManifest(manifestFile());
      const cache = openDigestCache({ root: manifest.root, disabled: values["no-cache"] === true, cwd: io.cwd });
      const analysis = await analyzeImages(manifest, { cache });
      await cache.save();
      for (const warning of analysis.warnings) io.err.write(`warning: ${warning}\n`);
      const outdir = typeof values.out === "string" ? path.resolve(io.cwd, values.out) : cdktfOutput(io.cwd);
      const previous = readSnapshot(outdir);
      const plan = computePlan(analysis, Object.keys(manifest.stacks), previous, await measureContextBytes(analysis));
      if (values.json) io.out.write(`${stableStringify(plan)}\n`);
      else io.out.write(`${formatPlanTable(plan, previous.status === "found" ? "" : previous.reason)}\n`);
      return 0;
    }
    case "graph": {
      const manifest = loadManifest(manifestFile());
      io.out.write(mermaidGraph(manifest, (image) => fs.readFileSync(path.join(manifest.root, image.dockerfile), "utf8")));
      return 0;
    }
    case "iam": {
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
      process.stderr.write(`${error instanceof ManifestError || error instanceof SelectionError || error instanceof IamError ? error.message : String((error as Error)?.stack ?? error)}\n`);
      process.exit(1);
    },
  );
}
