import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { DockerfileParser } from "dockerfile-ast";
import { CommandError } from "../manifest/errors.ts";
import { packageRootOf } from "../manifest/paths.ts";

// `lambda-images init`: sets up a user's monorepo for the images.yaml app, the package being
// installed there as a dev dependency. Everything it writes is in the current directory; the
// app it names is the installed package's, run with the monorepo as its working directory, so
// cdktf.out, the Terraform state and the caches land in the monorepo.

export class InitError extends CommandError {}

/** Where this package is: node_modules/lambda-image-builds in a user's repository. */
const PACKAGE_ROOT = packageRootOf(path.dirname(fileURLToPath(import.meta.url)));

/** Directories never searched for Dockerfiles. */
const SKIP_DIRS = new Set(["node_modules", ".git", "cdktf.out", ".terraform", "dist", "build", ".venv", "venv", "__pycache__", ".tox", ".cache"]);
/** Directory names too generic to name a Lambda after (`infra/orders/lambdas/Dockerfile` is `orders`). */
const GENERIC_DIRS = new Set(["lambda", "lambdas", "docker", "dockerfiles", "src", "app", "image", "images", "container", "function", "functions", "build"]);
const PEERS = ["cdktf", "cdktf-cli", "constructs", "@cdktf/provider-aws", "@cdktf/provider-docker"];
const IGNORES = [
  { line: "cdktf.out/", why: "synthesized Terraform (npx cdktf synth)" },
  { line: ".terraform/", why: "Terraform's providers and modules" },
  { line: "terraform.*.tfstate*", why: "local Terraform state: it may hold secrets; use a backend for shared state" },
  { line: "node_modules/", why: "also holds the digest and archive caches (node_modules/.cache/lambda-images)" },
];

/** What a Dockerfile tells about the image it builds. */
interface FoundDockerfile {
  /** Root-relative POSIX path. */
  readonly file: string;
  /** Its final stage is FROM ${BASE_IMAGE_URI}: it is built on one of our base images. */
  readonly onBase: boolean;
  /** It has a CMD or ENTRYPOINT: a Lambda image. Without one it is a base image. */
  readonly runs: boolean;
  /** Root-relative directories it COPYs that look like packages (pyproject.toml, setup.py, package.json…). */
  readonly packages: readonly string[];
}

export interface InitOptions {
  readonly force?: boolean;
}

export function initCommand(io: { out: { write(t: string): unknown }; err: { write(t: string): unknown }; cwd: string }, options: InitOptions = {}): number {
  const root = fs.realpathSync(io.cwd);
  if (fs.realpathSync(PACKAGE_ROOT) === root) {
    throw new InitError("lambda-images init: this is the lambda-image-builds package itself. Fix: run init in your own monorepo, with the package installed there (npm install --save-dev lambda-image-builds)");
  }
  const targets = { cdktf: path.join(root, "cdktf.json"), manifest: path.join(root, "images.yaml") };
  const existing = Object.values(targets).filter((f) => fs.existsSync(f));
  if (existing.length > 0 && !options.force) {
    throw new InitError(
      `lambda-images init: ${existing.map((f) => path.basename(f)).join(" and ")} already exist${existing.length === 1 ? "s" : ""}; nothing was written. Fix: run lambda-images init --force to replace ${existing.length === 1 ? "it" : "them"}, or edit ${existing.length === 1 ? "it" : "them"} yourself (see the package README, "Use it on your own repository")`,
    );
  }

  const dockerfiles = findDockerfiles(root).map((file) => describeDockerfile(root, file));
  const manifestText = proposeManifest(root, dockerfiles);
  const app = path.relative(root, path.join(PACKAGE_ROOT, "bin", "app.mjs")).split(path.sep).join("/");
  const cdktf = {
    language: "typescript",
    app: `node ${app.includes(" ") ? JSON.stringify(app) : app}`,
    output: "cdktf.out",
    sendCrashReports: "false",
    terraformProviders: [],
    terraformModules: [],
    context: { manifest: "images.yaml" },
  };
  // Written together: each to a temporary name first, then renamed.
  writeAtomically(targets.cdktf, `${JSON.stringify(cdktf, null, 2)}\n`);
  writeAtomically(targets.manifest, manifestText);
  const added = addIgnores(path.join(root, ".gitignore"));

  const bases = dockerfiles.filter((d) => !d.runs).length;
  const lambdas = dockerfiles.length - bases;
  io.out.write(`wrote cdktf.json (app: node ${app})\n`);
  io.out.write(`wrote images.yaml: ${bases} base image${bases === 1 ? "" : "s"} and ${lambdas} Lambda${lambdas === 1 ? "" : "s"} from ${dockerfiles.length} Dockerfile${dockerfiles.length === 1 ? "" : "s"}; review every line marked REVIEW\n`);
  io.out.write(added.length ? `added to .gitignore: ${added.join(", ")}\n` : ".gitignore already ignores cdktf.out, the state and the caches\n");
  const require = createRequire(path.join(root, "package.json"));
  const missing = PEERS.filter((p) => {
    try {
      require.resolve(`${p}/package.json`);
      return false;
    } catch {
      return true;
    }
  });
  io.out.write("\nNext:\n");
  if (missing.length) io.out.write(`  npm install --save-dev ${missing.join(" ")}   (the app needs them)\n`);
  io.out.write("  review images.yaml (project, region, base images, packages)\n  npx cdktf synth\n  npx lambda-images plan\n");
  return 0;
}

function writeAtomically(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

/** Appends the ignore lines .gitignore lacks (never rewrites what is there); returns those added. */
function addIgnores(file: string): string[] {
  const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
  const have = new Set(text.split(/\r?\n/).map((l) => l.trim().replace(/^\//, "")));
  const ignored = (line: string) => have.has(line) || have.has(line.replace(/\/$/, ""));
  const add = IGNORES.filter((i) => !ignored(i.line));
  if (add.length === 0) return [];
  const block = add.map((i) => `# ${i.why}\n${i.line}\n`).join("");
  fs.writeFileSync(file, `${text}${text === "" || text.endsWith("\n") ? "" : "\n"}${text === "" ? "" : "\n"}# lambda-images\n${block}`);
  return add.map((i) => i.line);
}

/** Dockerfile, Dockerfile.*, *.Dockerfile, *.dockerfile under root, sorted, root-relative. */
export function findDockerfiles(root: string): string[] {
  const found: string[] = [];
  const visit = (rel: string, depth: number) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(path.join(root, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (depth < 10 && !SKIP_DIRS.has(entry.name) && !entry.name.startsWith(".")) visit(child, depth + 1);
      } else if (entry.isFile() && /^Dockerfile(\..+)?$|\.[Dd]ockerfile$/.test(entry.name)) {
        found.push(child);
      }
    }
  };
  visit("", 0);
  return found.sort();
}

function describeDockerfile(root: string, file: string): FoundDockerfile {
  const text = fs.readFileSync(path.join(root, file), "utf8");
  const instructions = DockerfileParser.parse(text).getInstructions();
  let onBase = false;
  let runs = false;
  const packages = new Set<string>();
  for (const instruction of instructions) {
    const keyword = instruction.getKeyword();
    const args = instruction.getArguments().map((a) => a.getValue());
    if (keyword === "FROM") {
      // The final stage's FROM decides; a later FROM resets it.
      onBase = args.some((a) => /\$\{?BASE_IMAGE_URI\b/.test(a));
      runs = false;
    } else if (keyword === "CMD" || keyword === "ENTRYPOINT") {
      runs = true;
    } else if ((keyword === "COPY" || keyword === "ADD") && !args.some((a) => /^--from=/i.test(a))) {
      const sources = args.filter((a) => !a.startsWith("--")).slice(0, -1);
      for (const source of sources) {
        const dir = source.replace(/^\.?\/+/, "").replace(/\/+$/, "");
        if (dir === "" || dir.includes("$") || /[*?[]/.test(dir)) continue;
        if (isPackage(path.join(root, dir))) packages.add(dir);
      }
    }
  }
  return { file, onBase, runs, packages: [...packages].sort() };
}

/** A directory holding a Python, Node or Go package: what a base image installs. */
function isPackage(dir: string): boolean {
  try {
    if (!fs.statSync(dir).isDirectory()) return false;
  } catch {
    return false;
  }
  return ["pyproject.toml", "setup.py", "setup.cfg", "requirements.txt", "package.json", "go.mod"].some((f) => fs.existsSync(path.join(dir, f)));
}

/** A resource name (lower-case letters, digits, single hyphens) from a file or directory name. */
function resourceNameOf(raw: string): string {
  const name = raw
    .replace(/([a-z0-9])([A-Z])/g, "$1-$2")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^[^a-z]+/, "")
    .replace(/-+$/, "");
  return name || "image";
}

/** A name for the image a Dockerfile builds: its suffix (`Dockerfile.orders`), else its directory. */
function imageName(file: string, isBase: boolean): string {
  const base = path.posix.basename(file);
  const suffix = /^Dockerfile\.(.+)$/.exec(base)?.[1] ?? /^(.+)\.[Dd]ockerfile$/.exec(base)?.[1];
  const dirs = path.posix.dirname(file).split("/").filter((d) => d !== ".");
  const dir = [...dirs].reverse().find((d) => !GENERIC_DIRS.has(d.toLowerCase()));
  if (suffix && (isBase || !dir || !/^(with[-_]?base|base|prod|dev|lambda)$/i.test(suffix))) return resourceNameOf(suffix);
  return resourceNameOf(dir ?? suffix ?? "image");
}

function unique(names: Map<FoundDockerfile, string>): void {
  const seen = new Map<string, number>();
  for (const [d, name] of names) {
    const n = (seen.get(name) ?? 0) + 1;
    seen.set(name, n);
    if (n > 1) names.set(d, `${name}-${n}`);
  }
}

function yamlScalar(value: string): string {
  return /^[A-Za-z0-9_./-]+$/.test(value) && !/^(true|false|null|yes|no|on|off|~|[-.0-9].*)$/i.test(value) ? value : JSON.stringify(value);
}

/** The proposed images.yaml: every guess is followed by a `# REVIEW:` comment saying what was guessed from what. */
export function proposeManifest(root: string, dockerfiles: readonly FoundDockerfile[]): string {
  const bases = dockerfiles.filter((d) => !d.runs);
  const lambdas = dockerfiles.filter((d) => d.runs);
  const names = new Map<FoundDockerfile, string>();
  for (const d of bases) names.set(d, imageName(d.file, true));
  for (const d of lambdas) names.set(d, imageName(d.file, false));
  unique(names);
  // The bases nobody else builds FROM: a chained base's parent is a base not built FROM a base.
  const rootBases = bases.filter((b) => !b.onBase);
  const leafBases = bases.filter((b) => b.onBase).length ? bases.filter((b) => b.onBase) : bases;
  let project = path.basename(root);
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { name?: unknown };
    if (typeof pkg.name === "string") project = pkg.name.replace(/^@[^/]+\//, "");
  } catch {
    // No package.json: the directory's name.
  }
  const region = process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? "us-east-1";
  const schema = path.relative(root, path.join(PACKAGE_ROOT, "images.schema.json")).split(path.sep).join("/");
  const out: string[] = [
    "# Images built from this monorepo, proposed by `lambda-images init` from its Dockerfiles.",
    "# Every guess is marked REVIEW: check it, then delete the comment.",
    `# yaml-language-server: $schema=${schema}`,
    `project: ${resourceNameOf(project)} # REVIEW: prefix of every AWS resource name (from ${fs.existsSync(path.join(root, "package.json")) ? "package.json's name" : "the directory's name"})`,
    "root: .",
    "stacks:",
    "  dev:",
    `    region: ${region} # REVIEW: the region to deploy to`,
  ];
  if (bases.length) out.push("baseImages:");
  for (const b of bases) {
    out.push(`  ${names.get(b)}: # REVIEW: a base image, because ${b.file} has no CMD or ENTRYPOINT`);
    out.push(`    dockerfile: ${yamlScalar(b.file)}`);
    if (b.packages.length) {
      out.push(`    packages: [${b.packages.map(yamlScalar).join(", ")}] # REVIEW: the package directories it COPYs`);
    } else {
      out.push(`    packages: [] # REVIEW: list the monorepo directories this image installs (none found among its COPY sources)`);
    }
    if (b.onBase) {
      const parent = rootBases[0];
      if (parent) {
        out.push(`    baseImage: ${names.get(parent)} # REVIEW: it is built FROM \${BASE_IMAGE_URI}; ${rootBases.length > 1 ? `one of ${rootBases.map((r) => names.get(r)).join(", ")}` : "the only base image not built on another"}`);
      } else {
        out.push(`    # REVIEW: it is built FROM \${BASE_IMAGE_URI}, but no other base image was found: set baseImage, or drop the ARG`);
      }
    }
  }
  if (lambdas.length) out.push("lambdas:");
  for (const l of lambdas) {
    out.push(`  ${names.get(l)}: # REVIEW: the Lambda's name (from ${l.file})`);
    out.push(`    dockerfile: ${yamlScalar(l.file)}`);
    if (l.onBase) {
      // The base with the most packages among those nobody builds FROM: the most complete one.
      const base = [...leafBases].sort((a, b) => b.packages.length - a.packages.length)[0];
      if (base) {
        out.push(`    baseImage: ${names.get(base)} # REVIEW: it is built FROM \${BASE_IMAGE_URI}${leafBases.length > 1 ? `; one of ${leafBases.map((x) => names.get(x)).join(", ")}` : ""}`);
      } else {
        out.push("    # REVIEW: it is built FROM ${BASE_IMAGE_URI}, but no base image Dockerfile (one without CMD) was found: add it under baseImages");
      }
    }
    out.push("    memorySize: 1024 # REVIEW: MB");
    out.push("    timeout: 300 # REVIEW: seconds");
  }
  if (dockerfiles.length === 0) {
    out.push("# REVIEW: no Dockerfile was found (searched below this directory, skipping node_modules, dist and hidden directories).");
    out.push("lambdas: {}");
  }
  return `${out.join("\n")}\n`;
}
