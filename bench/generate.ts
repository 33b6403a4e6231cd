import * as fs from "node:fs";
import * as path from "node:path";

/**
 * A synthetic Python monorepo shaped like the seed's: three packages (receipt_dynamo,
 * receipt_chroma, receipt_label), a web app's node_modules, 30 Lambda handler directories, tests
 * and docs; with a manifest of two stacks, 3 chained base images and 30 Lambdas (27 built FROM a base image,
 * 3 standalone that copy every package, like the example's create-labels-standalone).
 * Deterministic: the same (files, seed) always gives the same paths and bytes.
 */
export interface TreeOptions {
  /** Total number of files (default 20,000: ~170 MB). */
  readonly files: number;
  readonly seed: number;
}

export interface GeneratedTree {
  readonly root: string;
  readonly manifest: string;
  readonly files: number;
  readonly bytes: number;
}

export const DEFAULT_FILES = 20_000;
export const PACKAGES = ["receipt_dynamo", "receipt_chroma", "receipt_label"] as const;
export const LAMBDAS = 30;
const GENERATOR_VERSION = 3;

/** mulberry32: small, fast, seeded. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  "def return self import from class if else elif for while in not and or None True False try except finally with as " +
  "yield lambda pass raise assert global table item receipt label dynamo chroma vector embed store client model field " +
  "value key index batch query scan put get update delete response request handler event context logger config"
).split(" ");

/** ~4 MB of Python-looking text to slice file contents from (compresses like source code). */
function corpus(random: () => number): string {
  const lines: string[] = [];
  let size = 0;
  while (size < 4 << 20) {
    const indent = "    ".repeat(Math.floor(random() * 3));
    const n = 3 + Math.floor(random() * 9);
    const words: string[] = [];
    for (let i = 0; i < n; i++) words.push(WORDS[Math.floor(random() * WORDS.length)]!);
    if (random() < 0.3) words.push(`${Math.floor(random() * 1e6)}`);
    const line = `${indent}${words.join(" ")}\n`;
    lines.push(line);
    size += line.length;
  }
  return lines.join("");
}

interface Plan {
  readonly files: Map<string, number>;
  readonly texts: Map<string, string>;
}

function planTree(options: TreeOptions): Plan {
  const random = rng(options.seed);
  const scale = options.files / DEFAULT_FILES;
  const count = (n: number, min = 1) => Math.max(min, Math.round(n * scale));
  // Sizes: log-uniform between lo and hi bytes.
  const size = (lo: number, hi: number) => Math.round(lo * Math.pow(hi / lo, random()));
  const files = new Map<string, number>();
  const texts = new Map<string, string>();

  // Three packages, ~9,000 modules in sub-packages of ~50, plus ~1,800 test files.
  const modulesPerPackage = count(3000);
  for (const pkg of PACKAGES) {
    texts.set(`${pkg}/pyproject.toml`, `[project]\nname = "${pkg}"\nversion = "1.0.0"\n`);
    texts.set(`${pkg}/${pkg}/__init__.py`, `"""${pkg}."""\n`);
    for (let i = 0; i < modulesPerPackage; i++) {
      const sub = `sub_${String(Math.floor(i / 50)).padStart(3, "0")}`;
      if (i % 50 === 0) texts.set(`${pkg}/${pkg}/${sub}/__init__.py`, "");
      files.set(`${pkg}/${pkg}/${sub}/module_${String(i).padStart(5, "0")}.py`, size(1000, 35_000));
    }
    for (let i = 0; i < count(600); i++) files.set(`${pkg}/tests/test_${String(i).padStart(4, "0")}.py`, size(400, 6000));
  }
  // A web app's dependencies: never selected; the walk must not pay for them.
  texts.set("portfolio/package.json", `{"name":"portfolio","private":true}\n`);
  const nodeModules = count(8000);
  for (let i = 0; i < nodeModules; i++) {
    const dep = `dep-${String(Math.floor(i / 40)).padStart(3, "0")}`;
    files.set(`portfolio/node_modules/${dep}/lib/file_${String(i % 40).padStart(2, "0")}.js`, size(600, 35_000));
  }
  // Docs.
  for (let i = 0; i < count(400); i++) files.set(`docs/page_${String(i).padStart(4, "0")}.md`, size(500, 8000));
  // 30 handler directories: handler package (+ its tests, .dockerignored) and a Dockerfile.
  const handlerFiles = count(20, 2);
  for (let n = 0; n < LAMBDAS; n++) {
    const dir = `infra/fn_${String(n).padStart(2, "0")}`;
    texts.set(`${dir}/handler/__init__.py`, "");
    for (let i = 0; i < handlerFiles; i++) files.set(`${dir}/handler/part_${String(i).padStart(2, "0")}.py`, size(500, 12_000));
    for (let i = 0; i < count(5); i++) files.set(`${dir}/handler/tests/test_${i}.py`, size(300, 3000));
    texts.set(`${dir}/Dockerfile`, lambdaDockerfile(n, dir));
  }
  // Base images' Dockerfiles, the .dockerignore, .gitignore and the manifest.
  texts.set("dockerfiles/Dockerfile.receipt_dynamo", baseDockerfile(["receipt_dynamo"], false));
  texts.set("dockerfiles/Dockerfile.receipt_chroma", baseDockerfile(["receipt_chroma"], true));
  texts.set("dockerfiles/Dockerfile.receipt_label", baseDockerfile(["receipt_label"], true));
  texts.set(".dockerignore", "**/__pycache__\n**/*.pyc\n**/tests\n**/.pytest_cache\n**/node_modules\n");
  texts.set(".gitignore", "node_modules/\n__pycache__/\n");
  texts.set("images.yaml", manifestText());
  return { files, texts };
}

/** Every 10th Lambda is standalone: it copies all three packages and installs them itself. */
export const isStandalone = (n: number) => n % 10 === 0;
export const baseOf = (n: number) => ["receipt-dynamo", "receipt-chroma", "receipt-label"][n % 3]!;

function lambdaDockerfile(n: number, dir: string): string {
  if (isStandalone(n)) {
    return [
      "# syntax=docker/dockerfile:1",
      "FROM public.ecr.aws/lambda/python:3.12 AS dependencies",
      ...PACKAGES.map((p) => `COPY ${p}/ /tmp/${p}/`),
      `RUN ${PACKAGES.map((p) => `pip install --no-cache-dir /tmp/${p}`).join(" && ")}`,
      "FROM dependencies",
      `COPY ${dir}/handler/ \${LAMBDA_TASK_ROOT}/handler/`,
      'CMD ["handler.lambda_handler"]',
      "",
    ].join("\n");
  }
  return [
    "# syntax=docker/dockerfile:1",
    "ARG BASE_IMAGE_URI",
    "FROM ${BASE_IMAGE_URI:-public.ecr.aws/lambda/python:3.12}",
    `COPY ${dir}/handler/ \${LAMBDA_TASK_ROOT}/handler/`,
    'CMD ["handler.lambda_handler"]',
    "",
  ].join("\n");
}

function baseDockerfile(packages: readonly string[], chained: boolean): string {
  return [
    "# syntax=docker/dockerfile:1",
    ...(chained ? ["ARG BASE_IMAGE_URI", "FROM ${BASE_IMAGE_URI:-public.ecr.aws/lambda/python:3.12}"] : ["FROM public.ecr.aws/lambda/python:3.12"]),
    ...packages.map((p) => `COPY ${p}/ /tmp/${p}/`),
    `RUN ${packages.map((p) => `pip install --no-cache-dir /tmp/${p}`).join(" && ")} && rm -rf /tmp/receipt_*`,
    "",
  ].join("\n");
}

/** A manifest's opening lines: the project, the root, and the two stacks both bench trees use. */
function twoStacks(project: string): string[] {
  return [`project: ${project}`, "root: .", "stacks:", "  dev:", "    region: us-east-1", "  prod:", "    region: us-east-1"];
}

function manifestText(): string {
  const lines = [
    ...twoStacks("bench"),
    "baseImages:",
    "  receipt-dynamo:",
    "    dockerfile: dockerfiles/Dockerfile.receipt_dynamo",
    "    packages: [receipt_dynamo]",
    "  receipt-chroma:",
    "    dockerfile: dockerfiles/Dockerfile.receipt_chroma",
    "    packages: [receipt_dynamo, receipt_chroma]",
    "    baseImage: receipt-dynamo",
    "  receipt-label:",
    "    dockerfile: dockerfiles/Dockerfile.receipt_label",
    "    packages: [receipt_dynamo, receipt_chroma, receipt_label]",
    "    baseImage: receipt-chroma",
    "lambdas:",
  ];
  for (let n = 0; n < LAMBDAS; n++) {
    lines.push(`  fn-${String(n).padStart(2, "0")}:`, `    dockerfile: infra/fn_${String(n).padStart(2, "0")}/Dockerfile`);
    if (!isStandalone(n)) lines.push(`    baseImage: ${baseOf(n)}`);
  }
  return `${lines.join("\n")}\n`;
}

/**
 * Writes the tree under `dir` (reused when a previous run wrote the same files and seed).
 * Returns its root and manifest.
 */
export function generateTree(dir: string, options: TreeOptions): GeneratedTree {
  return writePlanned(dir, `tree-${options.files}-${options.seed}`, GENERATOR_VERSION, options.seed, planTree(options));
}

function writePlanned(dir: string, name: string, version: number, seed: number, plan: Plan): GeneratedTree {
  const root = path.join(dir, name);
  const marker = path.join(dir, `${name}.done`);
  const total = plan.files.size + plan.texts.size;
  if (fs.existsSync(marker) && fs.readFileSync(marker, "utf8") === `${version}\n`) {
    let bytes = 0;
    for (const n of plan.files.values()) bytes += n;
    for (const t of plan.texts.values()) bytes += Buffer.byteLength(t);
    return { root: fs.realpathSync(root), manifest: path.join(root, "images.yaml"), files: total, bytes };
  }
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(marker, { force: true });
  const random = rng(seed ^ 0x9e3779b9);
  const text = corpus(random);
  const made = new Set<string>();
  const write = (rel: string, content: string) => {
    const abs = path.join(root, rel);
    const parent = path.dirname(abs);
    if (!made.has(parent)) {
      fs.mkdirSync(parent, { recursive: true });
      made.add(parent);
    }
    fs.writeFileSync(abs, content);
  };
  let bytes = 0;
  for (const [rel, content] of plan.texts) {
    write(rel, content);
    bytes += Buffer.byteLength(content);
  }
  for (const [rel, size] of plan.files) {
    const header = `# ${rel}\n`;
    const start = Math.floor(random() * (text.length - 64 * 1024));
    let body = header;
    while (body.length < size) body += text.slice(start, start + Math.min(size - body.length, text.length - start));
    body = body.slice(0, size);
    write(rel, body);
    bytes += size;
  }
  fs.writeFileSync(marker, `${version}\n`);
  return { root: fs.realpathSync(root), manifest: path.join(root, "images.yaml"), files: total, bytes };
}

/**
 * The real repository's shape, as issue 23 measured it: two stacks, each with 2 base images
 * (receipt-dynamo, and receipt-label built FROM it) and 18 Lambdas, of which 16 have no base image
 * and each ship the same two packages (receipt_dynamo and receipt_label) beside their handler, and
 * 2 are built FROM receipt-label. 1,872 files in all; the images' context files add up to ~63 MiB
 * over both stacks (each of the 16 Lambdas per stack carries ~1.8 MiB of packages).
 * Deterministic: the same seed always gives the same paths and bytes.
 */
export const REAL_SHAPE = {
  files: 1872,
  lambdas: 18,
  /** Lambdas without a base image (they ship both packages). */
  standalone: 16,
  packages: ["receipt_dynamo", "receipt_label"] as const,
  /** Modules per package, and their size range in bytes (log-uniform). */
  modules: [700, 560] as const,
  moduleBytes: [300, 4450] as const,
  handlerFiles: 12,
} as const;
const REAL_GENERATOR_VERSION = 1;

function planRealTree(seed: number): Plan {
  const random = rng(seed);
  const size = (lo: number, hi: number) => Math.round(lo * Math.pow(hi / lo, random()));
  const files = new Map<string, number>();
  const texts = new Map<string, string>();
  REAL_SHAPE.packages.forEach((pkg, p) => {
    texts.set(`${pkg}/pyproject.toml`, `[project]\nname = "${pkg}"\nversion = "1.0.0"\n`);
    texts.set(`${pkg}/${pkg}/__init__.py`, `"""${pkg}."""\n`);
    for (let i = 0; i < REAL_SHAPE.modules[p]!; i++) {
      const sub = `sub_${String(Math.floor(i / 40)).padStart(2, "0")}`;
      if (i % 40 === 0) texts.set(`${pkg}/${pkg}/${sub}/__init__.py`, "");
      files.set(`${pkg}/${pkg}/${sub}/module_${String(i).padStart(4, "0")}.py`, size(REAL_SHAPE.moduleBytes[0], REAL_SHAPE.moduleBytes[1]));
    }
  });
  for (let n = 0; n < REAL_SHAPE.lambdas; n++) {
    const dir = `infra/fn_${String(n).padStart(2, "0")}`;
    texts.set(`${dir}/handler/__init__.py`, "");
    for (let i = 0; i < REAL_SHAPE.handlerFiles; i++) files.set(`${dir}/handler/part_${String(i).padStart(2, "0")}.py`, size(500, 12_000));
    texts.set(`${dir}/Dockerfile`, realLambdaDockerfile(n, dir));
  }
  texts.set("dockerfiles/Dockerfile.receipt_dynamo", baseDockerfile(["receipt_dynamo"], false));
  texts.set("dockerfiles/Dockerfile.receipt_label", baseDockerfile(["receipt_label"], true));
  texts.set(".dockerignore", "**/__pycache__\n**/*.pyc\n**/tests\n**/.pytest_cache\n**/node_modules\n");
  texts.set(".gitignore", "node_modules/\n__pycache__/\n");
  texts.set("images.yaml", realManifestText());
  // Tests and docs (never selected) up to the file count.
  let i = 0;
  while (files.size + texts.size < REAL_SHAPE.files) {
    const pkg = REAL_SHAPE.packages[i % 2]!;
    files.set(i % 3 === 2 ? `docs/page_${String(i).padStart(4, "0")}.md` : `${pkg}/tests/test_${String(i).padStart(4, "0")}.py`, size(400, 6000));
    i++;
  }
  return { files, texts };
}

const isRealStandalone = (n: number) => n < REAL_SHAPE.standalone;

function realLambdaDockerfile(n: number, dir: string): string {
  if (isRealStandalone(n)) {
    return [
      "# syntax=docker/dockerfile:1",
      "FROM public.ecr.aws/lambda/python:3.12",
      ...REAL_SHAPE.packages.map((p) => `COPY ${p}/ /tmp/${p}/`),
      `RUN ${REAL_SHAPE.packages.map((p) => `pip install --no-cache-dir /tmp/${p}`).join(" && ")}`,
      `COPY ${dir}/handler/ \${LAMBDA_TASK_ROOT}/handler/`,
      'CMD ["handler.lambda_handler"]',
      "",
    ].join("\n");
  }
  return lambdaDockerfile(1, dir);
}

function realManifestText(): string {
  const lines = [
    ...twoStacks("real"),
    "baseImages:",
    "  receipt-dynamo:",
    "    dockerfile: dockerfiles/Dockerfile.receipt_dynamo",
    "    packages: [receipt_dynamo]",
    "  receipt-label:",
    "    dockerfile: dockerfiles/Dockerfile.receipt_label",
    "    packages: [receipt_dynamo, receipt_label]",
    "    baseImage: receipt-dynamo",
    "lambdas:",
  ];
  for (let n = 0; n < REAL_SHAPE.lambdas; n++) {
    lines.push(`  fn-${String(n).padStart(2, "0")}:`, `    dockerfile: infra/fn_${String(n).padStart(2, "0")}/Dockerfile`);
    if (!isRealStandalone(n)) lines.push("    baseImage: receipt-label");
  }
  return `${lines.join("\n")}\n`;
}

/** Writes the real repository's shape under `dir` (reused when a previous run wrote it with the same seed). */
export function generateRealTree(dir: string, seed: number): GeneratedTree {
  return writePlanned(dir, `real-${seed}`, REAL_GENERATOR_VERSION, seed, planRealTree(seed));
}
