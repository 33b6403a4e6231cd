import * as fs from "node:fs";
import * as path from "node:path";
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type YAMLError } from "yaml";
import type { z } from "zod";
import { ManifestError, type ManifestProblem } from "./errors.ts";
import type { ImageSpec } from "./spec.ts";
import { baseImageProblems, checkImage, type Problem } from "./checks.ts";
import {
  manifestJsonSchema,
  manifestSchema,
  type ManifestData,
  type ManifestInput,
  type StackSpec,
} from "./schema.ts";

export type { ImageSpec } from "./spec.ts";

export interface Manifest {
  /** Absolute path of the manifest file (none for a manifest given as an object). */
  readonly file?: string;
  /** Absolute, symlink-resolved repository root. */
  readonly root: string;
  readonly project: string;
  readonly tags: "content" | "git";
  readonly ecr: { readonly maxImages: number; readonly maxAgeDays: number; readonly legacyBaseRepositoryNames: boolean };
  readonly stacks: Readonly<Record<string, StackSpec>>;
  /** Base images, parents before the images built FROM them. */
  readonly baseImages: readonly ImageSpec[];
  readonly lambdas: readonly ImageSpec[];
}

/** Where the manifest is: env IMAGES_MANIFEST, else cdktf.json context.manifest, else the example. */
export function manifestPath(cwd = process.cwd(), env: NodeJS.ProcessEnv = process.env): string {
  if (env.IMAGES_MANIFEST) return path.resolve(cwd, env.IMAGES_MANIFEST);
  const cdktfJson = path.join(cwd, "cdktf.json");
  if (fs.existsSync(cdktfJson)) {
    const manifest = JSON.parse(fs.readFileSync(cdktfJson, "utf8"))?.context?.manifest;
    if (typeof manifest === "string") return path.resolve(cwd, manifest);
  }
  return path.resolve(cwd, "example/images.yaml");
}

/** AWS limits on names built from the manifest's names. */
const LAMBDA_NAME_MAX = 64;
const ECR_NAME_MAX = 256;

export function lambdaFunctionName(project: string, lambda: string, stack: string): string {
  return `${project}-${lambda}-${stack}`;
}
/** How ECR repositories are named. */
export interface RepositoryNaming {
  /** `base-<name>-<stack>`, the names base repositories had before they carried the project. @default false */
  readonly legacyBaseRepositoryNames?: boolean;
}
/**
 * `<project>-base-<name>-<stack>`: the project keeps two projects' base images apart in one
 * account. `base-<name>-<stack>` with `legacyBaseRepositoryNames`.
 */
export function baseRepositoryName(project: string, base: string, stack: string, naming: RepositoryNaming = {}): string {
  return naming.legacyBaseRepositoryNames ? `base-${base}-${stack}` : `${project}-base-${base}-${stack}`;
}
export function lambdaRepositoryName(project: string, lambda: string, stack: string): string {
  return `${project}-${lambda}-${stack}`;
}
/** The ECR repository of any image. */
export function imageRepositoryName(project: string, image: Pick<ImageSpec, "kind" | "name">, stack: string, naming: RepositoryNaming = {}): string {
  return image.kind === "base" ? baseRepositoryName(project, image.name, stack, naming) : lambdaRepositoryName(project, image.name, stack);
}
/** The CodeBuild project that builds an image (≤ 255 characters, checked by the manifest's name rules). */
export function codebuildProjectName(project: string, image: Pick<ImageSpec, "kind" | "name">, stack: string): string {
  return image.kind === "base" ? `${project}-base-${image.name}-${stack}` : `${project}-${image.name}-${stack}`;
}

export function loadManifest(file: string): Manifest {
  const abs = path.resolve(file);
  const shown = path.relative(process.cwd(), abs) || abs;
  const text = readManifestText(abs, shown);
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true });
  // Only the first YAML error: the parser's later ones mostly follow from it.
  if (doc.errors.length > 0) throw new ManifestError(shown, [yamlProblem(doc.errors[0]!)]);
  if (doc.contents === null || (isScalar(doc.contents) && (doc.contents.value === null || doc.contents.value === ""))) {
    throw new ManifestError(shown, [
      {
        field: "",
        line: 1,
        message: "the manifest is empty",
        fix: "write at least project and stacks (see README.md, \"The manifest\"), or point IMAGES_MANIFEST at another file",
      },
    ]);
  }
  // The line of the field's key (its value may start on a later line, e.g. a nested map), or of the
  // nearest enclosing key that exists (a missing field is reported where its parent is).
  const lineOf = (fieldPath: readonly PropertyKey[]): number | undefined => {
    const lineAt = (node: unknown) => {
      const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
      return range ? lineCounter.linePos(range[0]).line : undefined;
    };
    for (let n = fieldPath.length; n > 0; n--) {
      const parent = n === 1 ? doc.contents : doc.getIn(fieldPath.slice(0, n - 1) as unknown[], true);
      const key = String(fieldPath[n - 1]);
      let line: number | undefined;
      if (isMap(parent)) line = lineAt(parent.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === key)?.key);
      else if (isSeq(parent)) line = lineAt(parent.items[Number(key)]);
      if (line !== undefined) return line;
    }
    return lineAt(doc.contents);
  };

  return validateManifest(doc.toJS(), { shown, baseDir: path.dirname(abs), file: abs, lineOf });
}

export interface DefineManifestOptions {
  /** What `root` is relative to. @default process.cwd() */
  readonly baseDir?: string;
  /** How errors name the manifest. @default "manifest" */
  readonly name?: string;
}

/**
 * Validates a manifest given as an object (the shape of images.yaml) with every check
 * images.yaml gets, and returns it normalized. Errors name the field path instead of a line.
 */
export function defineManifest(input: ManifestInput, options: DefineManifestOptions = {}): Manifest {
  return validateManifest(input, { shown: options.name ?? "manifest", baseDir: path.resolve(options.baseDir ?? process.cwd()) });
}

function validateManifest(
  raw: unknown,
  where: { shown: string; baseDir: string; file?: string; lineOf?: (p: readonly PropertyKey[]) => number | undefined },
): Manifest {
  const lineOf = where.lineOf ?? (() => undefined);
  // reportInput: without it zod 4 leaves issue.input undefined, and every wrong type would read as "is required".
  const parsed = manifestSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) {
    throw new ManifestError(
      where.shown,
      parsed.error.issues.map((issue) => describeIssue(issue, lineOf)),
    );
  }
  const problems = checkSemantics(parsed.data, where.baseDir, lineOf);
  if (problems.problems.length > 0) throw new ManifestError(where.shown, problems.problems);
  return { ...problems.manifest!, file: where.file };
}

/** The manifest's text; a path that is missing, a directory or unreadable is the user's to fix. */
function readManifestText(abs: string, shown: string): string {
  const fail = (message: string, fix: string): never => {
    throw new ManifestError(shown, [{ field: "", message, fix }]);
  };
  let stat: fs.Stats;
  try {
    stat = fs.statSync(abs);
  } catch {
    return fail("the manifest file does not exist", "create it, or point IMAGES_MANIFEST or cdktf.json context.manifest at it");
  }
  if (stat.isDirectory()) {
    const inside = fs.existsSync(path.join(abs, "images.yaml")) ? ` (${path.join(shown, "images.yaml")} exists)` : "";
    return fail(`is a directory, not a manifest file${inside}`, "point IMAGES_MANIFEST or cdktf.json context.manifest at the images.yaml file itself");
  }
  try {
    return fs.readFileSync(abs, "utf8");
  } catch (error) {
    return fail(`cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`, "check the file's permissions");
  }
}

/** A YAML syntax error on one line: the parser's first sentence, without its "at line L, column C:" tail. */
function yamlProblem(error: YAMLError): ManifestProblem {
  const position = error.linePos?.[0];
  const first = error.message.split("\n")[0]!.replace(/\s*at line \d+, column \d+:?\s*$/, "").replace(/[\s.:]+$/, "");
  return {
    field: "",
    line: position?.line,
    message: `invalid YAML${position ? ` at column ${position.col}` : ""}: ${first}`,
    fix: "correct the YAML syntax (quote values that hold \": \" or start with a special character such as *, &, ! or @)",
  };
}

function fieldName(p: readonly PropertyKey[]): string {
  return p.map(String).join(".");
}

function describeIssue(issue: z.core.$ZodIssue, lineOf: (p: readonly PropertyKey[]) => number | undefined): ManifestProblem {
  const field = fieldName(issue.path);
  const line = lineOf(issue.path);
  switch (issue.code) {
    case "unrecognized_keys": {
      const allowed = allowedKeysAt(issue.path);
      return {
        field,
        line: lineOf([...issue.path, issue.keys[0]!]) ?? line,
        message: `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `"${k}"`).join(", ")}`,
        fix: `remove it or correct the spelling${allowed.length ? `; allowed keys: ${allowed.join(", ")}` : ""}`,
      };
    }
    case "invalid_type":
      return {
        field,
        line,
        message: issue.input === undefined ? "is required" : `expected ${issue.expected}${issue.input === null ? ", but it is empty" : ""}`,
        fix: issue.input === undefined ? `add ${field || "it"}` : `write a ${issue.expected} here`,
      };
    case "invalid_value":
      return { field, line, message: `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`, fix: "use one of those values" };
    case "too_small":
    case "too_big":
      return { field, line, message: issue.message, fix: "use a value within the allowed range" };
    case "invalid_key":
      return { field, line, message: `has an invalid key: ${issue.issues[0]?.message ?? issue.message}`, fix: "rename the key" };
    case "invalid_union":
      return describeUnion(issue, lineOf);
    case "custom": {
      const fix = (issue.params as { fix?: unknown } | undefined)?.fix;
      return { field, line, message: issue.message, fix: typeof fix === "string" ? fix : "correct the value" };
    }
    default:
      return { field, line, message: issue.message, fix: "correct the value" };
  }
}

/**
 * A value that matches none of a union's forms (a backend with neither a whole `cloud` nor a
 * whole `s3`). zod's own message is "Invalid input"; the useful one is the first problem of the
 * form the user evidently meant: the one whose problems all lie inside keys they wrote.
 */
function describeUnion(issue: z.core.$ZodIssueInvalidUnion, lineOf: (p: readonly PropertyKey[]) => number | undefined): ManifestProblem {
  const input = issue.input;
  const written = input && typeof input === "object" ? Object.keys(input) : [];
  const strays = (branch: readonly z.core.$ZodIssue[]) =>
    branch.filter((i) => i.path.length === 0 || !written.includes(String(i.path[0]))).length;
  const branches = [...issue.errors].sort((a, b) => strays(a) - strays(b) || a.length - b.length);
  const best = branches[0];
  if (best && best.length > 0 && strays(best) === 0) {
    return describeIssue({ ...best[0]!, path: [...issue.path, ...best[0]!.path] } as z.core.$ZodIssue, lineOf);
  }
  // No form fits: name the keys that tell the forms apart.
  const forms = issue.errors
    .map((branch) => branch.find((i) => i.code === "invalid_type" && i.path.length === 1 && i.input === undefined)?.path[0])
    .filter((k): k is PropertyKey => k !== undefined)
    .map(String);
  const field = fieldName(issue.path);
  const unknown = [...new Set(issue.errors.flat().flatMap((i) => (i.code === "unrecognized_keys" && i.path.length === 0 ? i.keys : [])))].sort();
  if (forms.length === 0 && unknown.length > 1 && unknown.every((k) => written.includes(k))) {
    return { field, line: lineOf(issue.path), message: `has ${unknown.join(" and ")}, but takes exactly one of them`, fix: `keep one of ${unknown.join(", ")}` };
  }
  return {
    field,
    line: lineOf(issue.path),
    message: forms.length ? `needs exactly one of ${forms.join(", ")}${written.length ? `, but has ${written.join(", ")}` : ""}` : "does not match any allowed form",
    fix: forms.length ? `write one of ${forms.map((f) => `${f}: {…}`).join(" or ")} (see README.md)` : "see README.md for the allowed forms",
  };
}

/** The keys the JSON Schema allows at a field path, for "did you mean" style hints. */
function allowedKeysAt(fieldPath: readonly PropertyKey[]): string[] {
  type Node = { properties?: Record<string, Node>; additionalProperties?: Node | boolean };
  let node: Node | undefined = manifestJsonSchema() as Node;
  for (const key of fieldPath) {
    if (!node) return [];
    node = node.properties?.[String(key)] ?? (typeof node.additionalProperties === "object" ? node.additionalProperties : undefined);
  }
  return Object.keys(node?.properties ?? {});
}

function checkSemantics(
  data: ManifestData,
  manifestDir: string,
  lineOf: (p: readonly PropertyKey[]) => number | undefined,
): { manifest?: Omit<Manifest, "file">; problems: ManifestProblem[] } {
  const problems: ManifestProblem[] = [];
  const add = (fieldPath: PropertyKey[], message: string, fix: string) =>
    problems.push({ field: fieldName(fieldPath), line: lineOf(fieldPath), message, fix });

  const rootAbs = path.resolve(manifestDir, data.root);
  let root: string;
  try {
    root = fs.realpathSync(rootAbs);
  } catch {
    add(["root"], `the directory ${rootAbs} does not exist`, "set root to the monorepo directory, relative to the manifest");
    return { problems };
  }

  const addAll = (at: PropertyKey[], found: readonly Problem[]) =>
    found.forEach((p) => add([...at, ...p.field.split(".")], p.message, p.fix));

  for (const stack of Object.keys(data.stacks)) {
    for (const [name] of Object.entries(data.baseImages)) {
      const repo = baseRepositoryName(data.project, name, stack, data.ecr);
      if (repo.length > ECR_NAME_MAX) {
        add(
          ["baseImages", name],
          `the ECR repository name "${repo}" (project-base-name-stack) is ${repo.length} characters; ECR allows ${ECR_NAME_MAX}`,
          `shorten the base image, project or stack name by ${repo.length - ECR_NAME_MAX} characters`,
        );
      }
    }
    for (const [name] of Object.entries(data.lambdas)) {
      const fn = lambdaFunctionName(data.project, name, stack);
      if (fn.length > LAMBDA_NAME_MAX) {
        add(
          ["lambdas", name],
          `the Lambda function name "${fn}" (project-lambda-stack) is ${fn.length} characters; Lambda allows ${LAMBDA_NAME_MAX}`,
          `shorten the Lambda, project or stack name by ${fn.length - LAMBDA_NAME_MAX} characters`,
        );
      }
    }
  }

  const baseNames = Object.keys(data.baseImages);
  const images: ImageSpec[] = [];
  for (const [name, spec] of Object.entries(data.baseImages)) {
    const at = ["baseImages", name];
    const checked = checkImage(root, { kind: "base", name, ...spec, context: spec.context });
    addAll(at, checked.problems);
    if (spec.baseImage !== undefined && !baseNames.includes(spec.baseImage)) {
      add([...at, "baseImage"], `base image "${spec.baseImage}" is not defined`, `use one of: ${baseNames.join(", ")}`);
    }
    if (checked.spec) images.push(checked.spec);
  }
  for (const image of images) {
    const parent = image.baseImage ? images.find((i) => i.name === image.baseImage) : undefined;
    if (parent) addAll(["baseImages", image.name], baseImageProblems(image, parent, `baseImages.${parent.name}`));
  }
  const cycle = findCycle(Object.fromEntries(Object.entries(data.baseImages).map(([name, b]) => [name, b.baseImage])));
  if (cycle) {
    add(["baseImages", cycle[0]!, "baseImage"], `base images form a cycle: ${cycle.join(" -> ")}`, "remove one baseImage link so the chain ends");
  }

  for (const [stackName, stackSpec] of Object.entries(data.stacks)) {
    if (stackSpec.buildTrigger !== "lambda") continue;
    for (const [name] of Object.entries(data.baseImages).filter(([, b]) => b.builder === "docker")) {
      add(
        ["stacks", stackName, "buildTrigger"],
        `stack ${stackName} starts builds through the AWS provider (buildTrigger: lambda), but base image ${name} uses builder: docker, which needs a Docker daemon where Terraform runs`,
        `set builder: codebuild on baseImages.${name}, or use buildTrigger: local-exec for this stack`,
      );
    }
  }

  const lambdas: ImageSpec[] = [];
  for (const [name, spec] of Object.entries(data.lambdas)) {
    const at = ["lambdas", name];
    const checked = checkImage(root, {
      kind: "lambda",
      name,
      dockerfile: spec.dockerfile,
      context: spec.context,
      platforms: [spec.platform],
      include: spec.include,
      buildArgs: spec.buildArgs,
      baseImage: spec.baseImage,
      builder: "codebuild",
      computeType: spec.computeType,
      lambda: { memorySize: spec.memorySize, timeout: spec.timeout, ephemeralStorage: spec.ephemeralStorage, environment: spec.environment },
    });
    addAll(at, checked.problems);
    if (spec.baseImage !== undefined && !baseNames.includes(spec.baseImage)) {
      add([...at, "baseImage"], `base image "${spec.baseImage}" is not defined`, baseNames.length ? `use one of: ${baseNames.join(", ")}` : "define it under baseImages, or remove baseImage");
    }
    const base = spec.baseImage ? images.find((i) => i.name === spec.baseImage) : undefined;
    if (base && checked.spec) addAll(at, baseImageProblems(checked.spec, base, `baseImages.${base.name}`));
    if (checked.spec) lambdas.push(checked.spec);
  }
  // A Lambda called base-foo and a base image foo would share a CodeBuild project, log group and ECR repository.
  for (const stack of Object.keys(data.stacks)) {
    const owners = new Map<string, string>();
    for (const image of [...images, ...lambdas]) {
      const field = `${image.kind === "base" ? "baseImages" : "lambdas"}.${image.name}`;
      for (const name of new Set([codebuildProjectName(data.project, image, stack), imageRepositoryName(data.project, image, stack, data.ecr)])) {
        const other = owners.get(name);
        if (other && other !== field) {
          add(field.split("."), `gets the AWS name ${name} in stack ${stack}, which ${other} also gets`, `rename one of ${other} and ${field}`);
        }
        owners.set(name, field);
      }
    }
  }

  if (problems.length > 0) return { problems };
  return {
    problems,
    manifest: {
      root,
      project: data.project,
      tags: data.tags,
      ecr: data.ecr,
      stacks: data.stacks,
      baseImages: parentsFirst(images),
      lambdas,
    },
  };
}

function findCycle(parentOf: Record<string, string | undefined>): string[] | undefined {
  for (const start of Object.keys(parentOf)) {
    const chain: string[] = [];
    let current: string | undefined = start;
    while (current !== undefined && current in parentOf) {
      const at = chain.indexOf(current);
      if (at >= 0) return [...chain.slice(at), current];
      chain.push(current);
      current = parentOf[current];
    }
  }
  return undefined;
}

function parentsFirst(images: ImageSpec[]): ImageSpec[] {
  const byName = new Map(images.map((i) => [i.name, i]));
  const ordered: ImageSpec[] = [];
  const visit = (img: ImageSpec) => {
    if (ordered.includes(img)) return;
    if (img.baseImage) visit(byName.get(img.baseImage)!);
    ordered.push(img);
  };
  images.forEach(visit);
  return ordered;
}
