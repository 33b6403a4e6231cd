import * as fs from "node:fs";
import * as path from "node:path";
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type YAMLError } from "yaml";
import { z } from "zod";
import { ManifestError, type ManifestProblem } from "./errors.ts";
import type { ImageSpec } from "./spec.ts";
import { baseImageProblems, checkImage, shownPath, type Problem } from "./checks.ts";
import {
  baseImageDefaults,
  baseImageSchema,
  imageDefaults,
  imageSchema,
  LAMBDA_ONLY_FIELDS,
  lambdaDefaults,
  lambdaSchema,
  manifestJsonSchema,
  manifestSchema,
  resourceName,
  stackSchema,
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
  /** Images no Lambda runs (kind "image"): built and pushed, no function. */
  readonly images: readonly ImageSpec[];
  /** What is worth a look but not wrong (names that sound like a secret), one line each, located like errors. */
  readonly warnings: readonly string[];
}

/** Where the manifest is: env IMAGES_MANIFEST, else cdktf.json context.manifest, else images.yaml, all relative to `cwd` (the user's repository). */
export function manifestPath(cwd = process.cwd(), env: NodeJS.ProcessEnv = process.env): string {
  if (env.IMAGES_MANIFEST) return path.resolve(cwd, env.IMAGES_MANIFEST);
  const cdktfJson = path.join(cwd, "cdktf.json");
  if (fs.existsSync(cdktfJson)) {
    const manifest = JSON.parse(fs.readFileSync(cdktfJson, "utf8"))?.context?.manifest;
    if (typeof manifest === "string") return path.resolve(cwd, manifest);
  }
  return path.resolve(cwd, "images.yaml");
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
  // merge: YAML merge keys (`<<: *defaults`), as YAML 1.1 and most tools read them.
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, merge: true });
  // A duplicate key leaves a usable document (the last value wins): name each one and go on to
  // the other checks. Of other YAML errors only the first: the parser's later ones mostly follow from it.
  const duplicates = doc.errors.filter((e) => e.code === "DUPLICATE_KEY").map((e) => duplicateKeyProblem(e, text, doc));
  const fatal = doc.errors.find((e) => e.code !== "DUPLICATE_KEY");
  if (fatal) throw new ManifestError(shown, [yamlProblem(fatal)]);
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
  const lineAt = (node: unknown) => {
    const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
    return range ? lineCounter.linePos(range[0]).line : undefined;
  };
  // The line of the field's key (its value may start on a later line, e.g. a nested map), or of the
  // nearest enclosing key that exists (a missing field is reported where its parent is).
  const lineOf = (fieldPath: readonly PropertyKey[]): number | undefined => {
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
  // How a scalar was written, to show a value YAML read as a number or a boolean as it was typed.
  const sourceOf = (fieldPath: readonly PropertyKey[]): string | undefined => {
    const node = doc.getIn(fieldPath as unknown[], true);
    return isScalar(node) && typeof node.source === "string" ? node.source : undefined;
  };

  return validateManifest(doc.toJS(), { shown, baseDir: path.dirname(abs), file: abs, lineOf, sourceOf, yamlProblems: duplicates });
}

/** A duplicate key, named: the parser's message says only that keys must be unique. */
function duplicateKeyProblem(error: YAMLError, text: string, doc: Document): ManifestProblem {
  const at = error.pos[0];
  const key = /^("(?:[^"\\]|\\.)*"|'[^']*'|[^:#\n]*?)\s*:/.exec(text.slice(at))?.[1]?.trim();
  const position = error.linePos?.[0];
  // The field the second key is at, as the other messages name fields.
  let field = "";
  visit(doc, {
    Pair(_, pair, ancestors) {
      if (isScalar(pair.key) && pair.key.range?.[0] === at) {
        field = [...ancestors.filter(isPair), pair].map((p) => String(isScalar(p.key) ? p.key.value : p.key)).join(".");
        return visit.BREAK;
      }
      return undefined;
    },
  });
  return {
    field,
    line: position?.line,
    message: key ? `the key "${key.replace(/^["']|["']$/g, "")}" appears twice in the same map` : "a key appears twice in the same map",
    fix: "keep one of them: YAML would silently use only the last",
  };
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

interface Where {
  readonly shown: string;
  readonly baseDir: string;
  readonly file?: string;
  readonly lineOf?: (p: readonly PropertyKey[]) => number | undefined;
  readonly sourceOf?: (p: readonly PropertyKey[]) => string | undefined;
  /** Problems the YAML parser found that did not stop it (duplicate keys). */
  readonly yamlProblems?: readonly ManifestProblem[];
}

function validateManifest(raw: unknown, where: Where): Manifest {
  const lineOf = where.lineOf ?? (() => undefined);
  const { input, fromDefaults } = prepare(raw);
  // What came from `defaults` is reported where `defaults` says it, once.
  const located = (fieldPath: readonly PropertyKey[]): PropertyKey[] => {
    const [section, name, key, ...rest] = fieldPath.map(String);
    if ((section === "lambdas" || section === "baseImages" || section === "images") && name !== undefined && key !== undefined) {
      const inherited = fromDefaults.get(`${section}.${name}`);
      const sub = rest[0];
      if (inherited?.has(key) || (sub !== undefined && inherited?.has(`${key}.${sub}`))) return ["defaults", section, key, ...rest];
    }
    return [...fieldPath];
  };
  // reportInput: without it zod 4 leaves issue.input undefined, and every wrong type would read as "is required".
  const parsed = manifestSchema.safeParse(input, { reportInput: true });
  const problems: ManifestProblem[] = [...(where.yamlProblems ?? [])];
  if (!parsed.success) problems.push(...parsed.error.issues.map((issue) => describeIssue(issue, lineOf, where.sourceOf)));
  // Every problem in one run: with type errors, the parts that are well-typed are checked too.
  const data = parsed.success ? parsed.data : salvage(input);
  const semantic = checkSemantics(data, where.baseDir, (p) => lineOf(located(p)), located, knownBaseNames(input));
  problems.push(...semantic.problems);
  if (problems.length > 0 || !parsed.success) {
    const error = new ManifestError(where.shown, sortByLine(dedupe(problems)));
    const partial = semantic.partial ?? semantic.manifest;
    if (partial) Object.defineProperty(error, PARTIAL, { value: { ...partial, file: where.file, warnings: [] } });
    throw error;
  }
  const warnings = sortByLine(dedupe(semantic.warnings)).map((w) => `${where.shown}${w.line ? `:${w.line}` : ""}: ${w.field}: ${w.message}. ${w.fix}`);
  return { ...semantic.manifest!, file: where.file, warnings };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The manifest as the schema reads it: top-level `x-` keys (a place for YAML anchors, as in
 * Compose files) dropped, and `defaults` applied to every Lambda and base image. Only the
 * defaults that are valid are applied; the others are reported under `defaults`, once. Returns
 * which fields of which image came from `defaults`.
 */
function prepare(raw: unknown): { input: unknown; fromDefaults: Map<string, Set<string>> } {
  const fromDefaults = new Map<string, Set<string>>();
  if (!isRecord(raw)) return { input: raw, fromDefaults };
  const input: Record<string, unknown> = Object.fromEntries(Object.entries(raw).filter(([key]) => !key.startsWith("x-")));
  const defaults = input.defaults;
  if (!isRecord(defaults)) return { input, fromDefaults };
  const sections = [
    ["lambdas", lambdaDefaults],
    ["baseImages", baseImageDefaults],
    ["images", imageDefaults],
  ] as const;
  for (const [section, schema] of sections) {
    const shared = defaults[section];
    const images = input[section];
    if (!isRecord(shared) || !isRecord(images)) continue;
    const shape = schema.shape as Record<string, z.ZodType>;
    const valid = Object.entries(shared).filter(([key, value]) => shape[key]?.safeParse(value).success);
    input[section] = Object.fromEntries(
      Object.entries(images).map(([name, image]) => {
        if (!isRecord(image)) return [name, image];
        const merged: Record<string, unknown> = { ...image };
        const inherited = new Set<string>();
        for (const [key, value] of valid) {
          if ((key === "environment" || key === "buildArgs") && isRecord(value)) {
            const own = isRecord(image[key]) ? image[key] : {};
            for (const sub of Object.keys(value)) if (!(sub in own)) inherited.add(`${key}.${sub}`);
            merged[key] = { ...value, ...own };
          } else if (key === "notSecret" && Array.isArray(value)) {
            merged[key] = [...new Set([...value, ...(Array.isArray(image[key]) ? image[key] : [])])];
          } else if (!(key in image)) {
            inherited.add(key);
            merged[key] = value;
          }
        }
        fromDefaults.set(`${section}.${name}`, inherited);
        return [name, merged];
      }),
    );
  }
  return { input, fromDefaults };
}

/** The base image names the manifest defines, well-formed or not: a reference to one is not a second problem. */
function knownBaseNames(input: unknown): string[] {
  return isRecord(input) && isRecord(input.baseImages) ? Object.keys(input.baseImages) : [];
}

/**
 * The well-typed parts of a manifest that failed its schema, so the checks that need the
 * repository (paths, references, Dockerfiles) run on them in the same run. `project` is empty
 * when it is not valid: the name length checks need it.
 */
function salvage(input: unknown): ManifestData {
  const obj = isRecord(input) ? input : {};
  // An entry that fails keeps its valid fields (the others take their defaults), so its paths are
  // still checked; one whose dockerfile is not valid is left out.
  const entries = <T>(schema: z.ZodType<T>, value: unknown, fields?: Record<string, z.ZodType>): Record<string, T> => {
    if (!isRecord(value)) return {};
    const out: Record<string, T> = {};
    for (const [name, entry] of Object.entries(value)) {
      if (!resourceName.safeParse(name).success) continue;
      const r = schema.safeParse(entry);
      if (r.success) out[name] = r.data;
      else if (fields && isRecord(entry)) {
        const kept = Object.fromEntries(
          Object.entries(fields).flatMap(([key, fieldSchema]) => {
            const f = fieldSchema.safeParse(entry[key]);
            if (f.success) return f.data === undefined ? [] : [[key, f.data]];
            const fallback = fieldSchema.safeParse(undefined);
            return fallback.success && fallback.data !== undefined ? [[key, fallback.data]] : [];
          }),
        );
        if (typeof kept.dockerfile === "string") out[name] = kept as T;
      }
    }
    return out;
  };
  const field = <T>(schema: z.ZodType<T>, value: unknown, fallback: T): T => {
    const r = schema.safeParse(value);
    return r.success ? r.data : fallback;
  };
  const shape = manifestSchema.shape;
  return {
    project: field(shape.project, obj.project, ""),
    root: field(shape.root, obj.root, "."),
    tags: field(shape.tags, obj.tags, "content"),
    ecr: field(shape.ecr, obj.ecr, { maxImages: 10, maxAgeDays: 30, legacyBaseRepositoryNames: false }),
    stacks: entries(stackSchema, obj.stacks),
    defaults: undefined,
    baseImages: entries(baseImageSchema, obj.baseImages, baseImageSchema.shape),
    lambdas: entries(lambdaSchema, obj.lambdas, lambdaSchema.shape),
    images: entries(imageSchema, obj.images, imageSchema.shape),
  };
}

/** In file order; problems with no line (object input) keep their order, after the located ones. */
function sortByLine<T extends { readonly line?: number }>(problems: readonly T[]): T[] {
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => (a.p.line ?? Number.MAX_SAFE_INTEGER) - (b.p.line ?? Number.MAX_SAFE_INTEGER) || a.i - b.i)
    .map(({ p }) => p);
}

function dedupe<T extends ManifestProblem>(problems: readonly T[]): T[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.line}\0${p.field}\0${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
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

function describeIssue(
  issue: z.core.$ZodIssue,
  lineOf: (p: readonly PropertyKey[]) => number | undefined,
  sourceOf?: (p: readonly PropertyKey[]) => string | undefined,
): ManifestProblem {
  const field = fieldName(issue.path);
  const line = lineOf(issue.path);
  switch (issue.code) {
    case "unrecognized_keys": {
      const lambdaOnly = issue.path.length === 2 && issue.path[0] === "images" ? issue.keys.filter((k) => LAMBDA_ONLY_FIELDS.includes(k)) : [];
      if (lambdaOnly.length > 0 && lambdaOnly.length === issue.keys.length) {
        const name = String(issue.path[1]);
        return {
          field: fieldName([...issue.path, lambdaOnly[0]!]),
          line: lineOf([...issue.path, lambdaOnly[0]!]) ?? line,
          message: `${lambdaOnly.join(", ")} ${lambdaOnly.length > 1 ? "are Lambda function settings" : "is a Lambda function setting"}, and an image under images has no function`,
          fix: `if a Lambda runs this image, move it to lambdas.${name}; otherwise remove ${lambdaOnly.join(" and ")}`,
        };
      }
      const allowed = allowedKeysAt(issue.path);
      return {
        field,
        line: lineOf([...issue.path, issue.keys[0]!]) ?? line,
        message: `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `"${k}"`).join(", ")}`,
        fix: `remove it or correct the spelling${allowed.length ? `; allowed keys: ${allowed.join(", ")}` : ""}`,
      };
    }
    case "invalid_type":
      if (issue.input === undefined) return { field, line, message: "is required", fix: `add ${field || "it"}` };
      return { field, line, ...wrongType(issue.expected, issue.input, sourceOf?.(issue.path), issue.path) };
    case "invalid_value":
      return { field, line, message: `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`, fix: "use one of those values" };
    case "too_small":
    case "too_big":
      return { field, line, message: issue.message, fix: "use a value within the allowed range" };
    case "invalid_key":
      return { field, line, message: `has an invalid key: ${issue.issues[0]?.message ?? issue.message}`, fix: "rename the key" };
    case "invalid_union":
      return describeUnion(issue, lineOf, sourceOf);
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
function describeUnion(
  issue: z.core.$ZodIssueInvalidUnion,
  lineOf: (p: readonly PropertyKey[]) => number | undefined,
  sourceOf?: (p: readonly PropertyKey[]) => string | undefined,
): ManifestProblem {
  const input = issue.input;
  const written = input && typeof input === "object" ? Object.keys(input) : [];
  const strays = (branch: readonly z.core.$ZodIssue[]) =>
    branch.filter((i) => i.path.length === 0 || !written.includes(String(i.path[0]))).length;
  const branches = [...issue.errors].sort((a, b) => strays(a) - strays(b) || a.length - b.length);
  const best = branches[0];
  if (best && best.length > 0 && strays(best) === 0) {
    return describeIssue({ ...best[0]!, path: [...issue.path, ...best[0]!.path] } as z.core.$ZodIssue, lineOf, sourceOf);
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

/**
 * A value of the wrong type, shown as it was parsed and as it was written: `python: 3.12` is a
 * number to YAML (and `3.10` the number 3.1), `on` or `yes` may be a boolean; quoting keeps the text.
 */
function wrongType(expected: string, input: unknown, written: string | undefined, at: readonly PropertyKey[]): { message: string; fix: string } {
  const key = at.length ? String(at[at.length - 1]) : "";
  if (input === null) return { message: `expected ${article(expected)}, but it is empty`, fix: `write ${article(expected)} after "${key}:"` };
  const kind = Array.isArray(input) ? "a list" : typeof input === "object" ? "a map" : `the ${typeof input === "bigint" ? "number" : typeof input} ${String(input)}`;
  if (expected === "string" && (typeof input === "number" || typeof input === "boolean" || typeof input === "bigint")) {
    const text = written ?? String(input);
    const as = written !== undefined && written !== String(input) ? `YAML reads ${written} as ${kind}` : `YAML reads it as ${kind}`;
    return { message: `expected a string, but ${as}`, fix: `quote it: ${key ? `${key}: ` : ""}"${text.replace(/"/g, '\\"')}"` };
  }
  if (typeof input === "string") return { message: `expected ${article(expected)}, but it is the string ${JSON.stringify(input)}`, fix: `write ${article(expected)} here` };
  if (written !== undefined) return { message: `expected ${article(expected)}, but ${written} is ${kind}`, fix: `write ${article(expected)} here` };
  return { message: `expected ${article(expected)}, but it is ${kind}`, fix: `write ${article(expected)} here` };
}

function article(type: string): string {
  const words: Record<string, string> = { object: "a map", array: "a list", record: "a map", string: "a string", number: "a number", boolean: "true or false", int: "a whole number" };
  return words[type] ?? `a ${type}`;
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
  located: (p: readonly PropertyKey[]) => PropertyKey[] = (p) => [...p],
  definedBases: readonly string[] = Object.keys(data.baseImages),
): { manifest?: Omit<Manifest, "file" | "warnings">; partial?: Omit<Manifest, "file" | "warnings">; problems: ManifestProblem[]; warnings: ManifestProblem[] } {
  const problems: ManifestProblem[] = [];
  const warnings: ManifestProblem[] = [];
  const add = (fieldPath: PropertyKey[], message: string, fix: string) =>
    problems.push({ field: fieldName(located(fieldPath)), line: lineOf(fieldPath), message, fix });
  const warn = (fieldPath: PropertyKey[], message: string, fix: string) =>
    warnings.push({ field: fieldName(located(fieldPath)), line: lineOf(fieldPath), message, fix });

  const rootAbs = path.resolve(manifestDir, data.root);
  let root: string;
  try {
    root = fs.realpathSync(rootAbs);
  } catch {
    add(["root"], `the directory ${shownPath(rootAbs)} does not exist (root is relative to the manifest's directory)`, "set root to the monorepo directory, relative to the manifest");
    return { problems, warnings };
  }

  // A path that is not there: say what it is relative to, the manifest's own paths being relative to root.
  const rootNote = ` (paths are relative to root, ${shownPath(root)}/)`;
  const addAll = (at: PropertyKey[], found: readonly Problem[]) =>
    found.forEach((p) => add([...at, ...p.field.split(".")], /does not exist$/.test(p.message) ? `${p.message}${rootNote}` : p.message, p.fix));
  const warnAll = (at: PropertyKey[], found: readonly Problem[]) =>
    found.forEach((p) => warn([...at, ...p.field.split(".")], p.message, p.fix));

  // Name lengths need a valid project (a manifest that failed its schema may not have one).
  for (const stack of data.project ? Object.keys(data.stacks) : []) {
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

  const baseNames = definedBases;
  const images: ImageSpec[] = [];
  for (const [name, spec] of Object.entries(data.baseImages)) {
    const at = ["baseImages", name];
    const checked = checkImage(root, { kind: "base", name, ...spec, context: spec.context });
    addAll(at, checked.problems);
    warnAll(at, checked.warnings);
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

  // Lambdas and images no Lambda runs are checked alike; only a Lambda has function settings.
  const checkBuilt = (section: "lambdas" | "images", name: string, spec: (typeof data.images)[string] & Partial<(typeof data.lambdas)[string]>): ImageSpec | undefined => {
    const at = [section, name];
    const checked = checkImage(root, {
      kind: section === "lambdas" ? "lambda" : "image",
      name,
      dockerfile: spec.dockerfile,
      context: spec.context,
      platforms: [spec.platform],
      include: spec.include,
      buildArgs: spec.buildArgs,
      baseImage: spec.baseImage,
      builder: "codebuild",
      computeType: spec.computeType,
      ...(section === "lambdas"
        ? { lambda: { memorySize: spec.memorySize!, timeout: spec.timeout!, ephemeralStorage: spec.ephemeralStorage!, environment: spec.environment! } }
        : {}),
      notSecret: spec.notSecret,
    });
    addAll(at, checked.problems);
    warnAll(at, checked.warnings);
    if (spec.baseImage !== undefined && !baseNames.includes(spec.baseImage)) {
      add([...at, "baseImage"], `base image "${spec.baseImage}" is not defined`, baseNames.length ? `use one of: ${baseNames.join(", ")}` : "define it under baseImages, or remove baseImage");
    }
    const base = spec.baseImage ? images.find((i) => i.name === spec.baseImage) : undefined;
    if (base && checked.spec) addAll(at, baseImageProblems(checked.spec, base, `baseImages.${base.name}`));
    return checked.spec;
  };
  const lambdas = Object.entries(data.lambdas).flatMap(([name, spec]) => checkBuilt("lambdas", name, spec) ?? []);
  const others = Object.entries(data.images).flatMap(([name, spec]) => checkBuilt("images", name, spec) ?? []);
  // A Lambda called base-foo and a base image foo would share a CodeBuild project, log group and ECR repository.
  for (const stack of data.project ? Object.keys(data.stacks) : []) {
    const owners = new Map<string, string>();
    for (const image of [...images, ...lambdas, ...others]) {
      const field = `${image.kind === "base" ? "baseImages" : image.kind === "image" ? "images" : "lambdas"}.${image.name}`;
      for (const name of new Set([codebuildProjectName(data.project, image, stack), imageRepositoryName(data.project, image, stack, data.ecr)])) {
        const other = owners.get(name);
        if (other && other !== field) {
          add(field.split("."), `gets the AWS name ${name} in stack ${stack}, which ${other} also gets`, `rename one of ${other} and ${field}`);
        }
        owners.set(name, field);
      }
    }
  }

  if (problems.length > 0) {
    // The images whose whole base chain checked out: the front end checks their Dockerfiles in the
    // same run, so a manifest mistake does not hide a Dockerfile's.
    const checked = new Map(images.map((i) => [i.name, i]));
    const resolves = (name: string | undefined, seen = new Set<string>()): boolean => {
      if (name === undefined) return true;
      const image = checked.get(name);
      if (!image || seen.has(name)) return false;
      seen.add(name);
      return resolves(image.baseImage, seen);
    };
    const partial = {
      root,
      project: data.project,
      tags: data.tags,
      ecr: data.ecr,
      stacks: data.stacks,
      baseImages: parentsFirst(images.filter((i) => resolves(i.name))),
      lambdas: lambdas.filter((l) => resolves(l.baseImage)),
      images: others.filter((l) => resolves(l.baseImage)),
    };
    return { problems, warnings, partial };
  }
  return {
    problems,
    warnings,
    manifest: {
      root,
      project: data.project,
      tags: data.tags,
      ecr: data.ecr,
      stacks: data.stacks,
      baseImages: parentsFirst(images),
      lambdas,
      images: others,
    },
  };
}

const PARTIAL = Symbol("partial manifest");

/**
 * What of a rejected manifest can still be checked further: its images whose paths and base
 * chain are sound. The images.yaml app checks their Dockerfiles too, to report everything in one run.
 */
export function partialManifestOf(error: ManifestError): Manifest | undefined {
  return (error as unknown as { [PARTIAL]?: Manifest })[PARTIAL];
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
