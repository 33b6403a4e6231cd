import * as path from "node:path";
import { DockerfileParser, type Dockerfile, type Instruction } from "dockerfile-ast";
import { normalizeRelative } from "../manifest/paths.ts";
import { SelectionError } from "../manifest/errors.ts";
import { lintDockerfile } from "./dockerfile-lint.ts";
import { PathPattern } from "./patterns.ts";

const parsed = new Map<string, Dockerfile>();

/** dockerfile-ast's parse of a Dockerfile's text, once per text: an image's Dockerfile is read by several checks. */
function parseDockerfile(text: string): Dockerfile {
  let dockerfile = parsed.get(text);
  if (!dockerfile) {
    if (parsed.size >= 512) parsed.clear();
    dockerfile = DockerfileParser.parse(text);
    parsed.set(text, dockerfile);
  }
  return dockerfile;
}

/** A path or Docker wildcard pattern, relative to the build context, that a COPY or ADD reads. */
export interface ContextSource {
  /** Root-relative POSIX path or pattern ("" is the whole context). */
  readonly pattern: string;
  /** 1-based Dockerfile line, for error messages. */
  readonly line: number;
  readonly instruction: "COPY" | "ADD";
}

export interface DockerfileSources {
  readonly sources: readonly ContextSource[];
  readonly warnings: readonly string[];
}

/**
 * The build-context paths a Dockerfile reads through COPY and ADD. Stage copies (`--from=`),
 * heredocs and remote URLs read nothing from the context and are left out. Variables in
 * sources are expanded the way BuildKit does: from build args, else ARG defaults, else ENV.
 * The Dockerfile is validated first (lintDockerfile): its errors are thrown, one per line, and
 * its warnings returned with the others.
 */
export function dockerfileSources(text: string, buildArgs: Readonly<Record<string, string>>, dockerfileName: string): DockerfileSources {
  const lint = lintDockerfile(text, dockerfileName);
  if (lint.errors.length > 0) throw new SelectionError(lint.errors.join("\n"));
  const dockerfile = parseDockerfile(text);
  const sources: ContextSource[] = [];
  const warnings: string[] = [...lint.warnings];
  const globalArgs = new Map<string, string | undefined>();
  let stageVars = new Map<string, string | undefined>();
  let inStage = false;
  // Each stage's name and the stages or images it reads (FROM, COPY --from, RUN --mount from=);
  // what COPY/ADD read and warn about, by stage: only stages the target needs count (below).
  const stages: { readonly name?: string; readonly refs: string[] }[] = [];
  const stageOf = new Map<ContextSource | string, number>();

  for (const instruction of dockerfile.getInstructions()) {
    const keyword = instruction.getKeyword();
    const line = instruction.getRange().start.line + 1;
    const where = `${dockerfileName}:${line}`;
    switch (keyword) {
      case "FROM": {
        inStage = true;
        stageVars = new Map();
        const words = (instruction.getArgumentsContent() ?? "").trim().split(/\s+/).filter((w) => !w.startsWith("--"));
        const asAt = words.findIndex((w) => w.toLowerCase() === "as");
        stages.push({ name: asAt > 0 ? words[asAt + 1]?.toLowerCase() : undefined, refs: words[0] ? [words[0]] : [] });
        break;
      }
      case "RUN": {
        const flags = (instruction as unknown as { getFlags(): { getName(): string; getValue(): string | null }[] }).getFlags();
        for (const flag of flags) {
          if (flag.getName().toLowerCase() !== "mount") continue;
          const from = /(?:^|,)from=([^,]+)/.exec(flag.getValue() ?? "");
          if (from) stages[stages.length - 1]?.refs.push(from[1]!);
        }
        break;
      }
      case "ARG":
        for (const [name, defaultValue] of argDeclarations(instruction)) {
          if (!inStage) {
            globalArgs.set(name, name in buildArgs ? buildArgs[name] : defaultValue);
          } else {
            // An ARG in a stage re-imports a global ARG's value unless it sets its own default.
            const value = name in buildArgs ? buildArgs[name] : defaultValue ?? globalArgs.get(name);
            stageVars.set(name, value);
          }
        }
        break;
      case "ENV":
        for (const property of (instruction as unknown as EnvLike).getProperties()) {
          const raw = property.getValue() ?? "";
          // An ENV may refer to variables we cannot know (ENV PATH=/x:$PATH, from the parent image):
          // that is only a problem if a COPY/ADD source uses the result, and expand() says so then.
          let value: string | undefined;
          try {
            value = expand(raw, stageVars, where, "ENV");
          } catch (error) {
            if (!(error instanceof SelectionError)) throw error;
          }
          stageVars.set(property.getName(), value);
        }
        break;
      case "COPY":
      case "ADD": {
        if (!inStage) break;
        const parsed = copySources(instruction, text, where, keyword);
        if (parsed.fromStage !== undefined) {
          stages[stages.length - 1]?.refs.push(parsed.fromStage);
          break;
        }
        const stage = stages.length - 1;
        const warn = (message: string) => {
          warnings.push(message);
          stageOf.set(message, stage);
        };
        for (const raw of parsed.sources) {
          if (keyword === "ADD" && /^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) {
            warn(`${where}: ADD ${raw} downloads at build time; its content is not part of the image's content hash, so a change there does not trigger a rebuild`);
            continue;
          }
          if (keyword === "ADD" && /^git@/.test(raw)) {
            warn(`${where}: ADD ${raw} clones at build time; its content is not tracked by the content hash`);
            continue;
          }
          const expanded = expand(raw, stageVars, where, keyword, globalArgs);
          const clamped = clampToContext(expanded);
          if (clamped.clamped) {
            warn(
              `${where}: ${keyword} source "${raw}" climbs above the build context; BuildKit clamps it to the context root and reads "${clamped.path || "."}". Fix: write it as ${clamped.path || "."}`,
            );
          }
          const normalized = normalizeRelative(clamped.path || ".");
          if ("error" in normalized) {
            throw new SelectionError(`${where}: ${keyword} source ${normalized.error}. Fix: copy from paths inside the build context (the repository root)`);
          }
          const source: ContextSource = { pattern: normalized.path, line, instruction: keyword };
          sources.push(source);
          stageOf.set(source, stage);
        }
        break;
      }
      default:
        break;
    }
  }
  const needed = stagesNeeded(stages);
  const kept = <T extends ContextSource | string>(item: T) => !stageOf.has(item) || needed.has(stageOf.get(item)!);
  return { sources: sources.filter(kept), warnings: warnings.filter(kept) };
}

/**
 * The stages the build runs: BuildKit builds only the stages the target (the last stage; images
 * here have no --target) depends on, through FROM <stage>, COPY --from=<stage> and RUN
 * --mount=from=<stage>, where <stage> is an earlier stage's name or index ("BuildKit only builds
 * the stages that the target stage depends on": Docker's multi-stage builds guide, "Differences
 * between legacy builder and BuildKit"). A reference written with a variable could name any
 * stage: then every stage counts.
 */
function stagesNeeded(stages: readonly { readonly name?: string; readonly refs: readonly string[] }[]): Set<number> {
  const all = new Set(stages.keys());
  if (stages.some((s) => s.refs.some((r) => r.includes("$")))) return all;
  const resolve = (ref: string, before: number): number | undefined => {
    if (/^\d+$/.test(ref)) return Number(ref) < before ? Number(ref) : undefined;
    const i = stages.findIndex((s) => s.name === ref.toLowerCase());
    return i >= 0 && i < before ? i : undefined;
  };
  const needed = new Set<number>();
  const visit = (i: number) => {
    if (needed.has(i)) return;
    needed.add(i);
    for (const ref of stages[i]!.refs) {
      const j = resolve(ref, i);
      if (j !== undefined) visit(j);
    }
  };
  if (stages.length > 0) visit(stages.length - 1);
  return needed;
}

interface EnvLike {
  getProperties(): { getName(): string; getValue(): string | null }[];
}

/**
 * The variables an ARG declares. One ARG may declare several (`ARG A=1 B=2`, `ARG A B`);
 * dockerfile-ast's getProperty() is null then, and getProperties() reads `ARG A B` as A="B".
 */
function argDeclarations(instruction: Instruction): [string, string | undefined][] {
  const arg = instruction as unknown as { getProperties(): { getName(): string; getValue(): string | null }[] };
  const words = instruction.getArguments().map((a) => a.getValue());
  // Quoted defaults may hold spaces (`ARG A="x y"`): getProperties() unquotes and joins them.
  if (words.some((w) => /["']/.test(w))) return arg.getProperties().map((p) => [p.getName(), p.getValue() ?? undefined]);
  return words.map((w) => {
    const eq = w.indexOf("=");
    return eq < 0 ? [w, undefined] : [w.slice(0, eq), w.slice(eq + 1)];
  });
}

/**
 * A COPY/ADD source as BuildKit resolves it: relative to the context root, with a `..` that
 * would climb above the root clamped to it. BuildKit's copy (moby/buildkit
 * solver/llbsolver/file/backend.go, docopy → fsutil copy.Copy and copy.ResolveWildcards) resolves
 * every source with fsutil's rootPath (tonistiigi/fsutil copy/copy.go), which joins it to "/"
 * (`filepath.Join("/", p)`) before continuity's fs.RootPath: `../../x` is `/x`, the context's
 * `x`. `clamped` says a `..` went above the root.
 */
export function clampToContext(source: string): { path: string; clamped: boolean } {
  const posix = source.replace(/\\/g, "/");
  const relative = path.posix.normalize(posix.replace(/^\/+/, "") || ".");
  const rooted = path.posix.normalize("/" + posix).replace(/^\/+/, "").replace(/\/+$/, "");
  const clamped = relative === ".." || relative.startsWith("../");
  return { path: rooted === "." ? "" : rooted, clamped };
}

/** Sources of a COPY/ADD: flags dropped, JSON form decoded, heredoc bodies skipped, destination dropped. */
function copySources(instruction: Instruction, text: string, where: string, keyword: string): { fromStage?: string; sources: string[] } {
  const flags = (instruction as unknown as { getFlags(): { getName(): string; getValue(): string | null }[] }).getFlags();
  const from = flags.find((f) => f.getName().toLowerCase() === "from");
  if (from) return { fromStage: from.getValue() ?? "", sources: [] };
  const heredocs = (instruction as unknown as { getHeredocs?(): { getName(): string }[] }).getHeredocs?.() ?? [];

  const content = instruction.getArgumentsContent() ?? "";
  const withoutFlags = content.replace(/^(\s*--[a-zA-Z-]+(=\S*)?\s+)*/, "");
  if (withoutFlags.trimStart().startsWith("[")) {
    const json = parseJsonForm(withoutFlags);
    if (!json) {
      throw new SelectionError(
        `${where}: ${keyword} ${withoutFlags.trim().replace(/\s+/g, " ")} starts like the JSON form but is not a JSON array of strings (Docker would take its brackets and quotes as part of the paths). Fix: write ${keyword} ["source", "destination"] with double quotes and the closing ], or drop the brackets`,
      );
    }
    return { sources: json.slice(0, -1) };
  }
  let args = instruction.getArguments().map((a) => a.getValue());
  args = args.filter((a) => !a.startsWith("--"));
  if (heredocs.length > 0) {
    // Only the instruction's own line holds sources; the rest are the heredoc bodies.
    const firstLine = text.split("\n")[instruction.getRange().start.line] ?? "";
    args = firstLine.trim().split(/\s+/).slice(1).filter((a) => !a.startsWith("--") && !/^<<-?/.test(a));
    return { sources: args.slice(0, -1) };
  }
  return { sources: args.slice(0, -1) };
}

/** The JSON form's strings, or undefined when it is not a JSON array of strings (a missing `]`, single quotes). */
function parseJsonForm(s: string): string[] | undefined {
  const start = s.indexOf("[");
  const end = s.lastIndexOf("]");
  if (end < start) return undefined;
  try {
    const value: unknown = JSON.parse(s.slice(start, end + 1).replace(/\\\r?\n/g, ""));
    return Array.isArray(value) && value.every((v) => typeof v === "string") ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Expands $VAR, ${VAR}, ${VAR:-default} and ${VAR:+alt} from the variables in scope. A variable
 * with no value would make the source path depend on something we cannot see at synth time.
 */
function expand(value: string, vars: Map<string, string | undefined>, where: string, keyword: string, globalArgs?: ReadonlyMap<string, string | undefined>): string {
  return value.replace(/\\\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (match, braced, op, word, bare) => {
    if (match === "\\$") return "$";
    const name: string = braced ?? bare;
    const current = vars.get(name);
    const isSet = current !== undefined && (op?.startsWith(":") ? current !== "" : true);
    if (op === ":-" || op === "-") return isSet ? current! : word;
    if (op === ":+" || op === "+") return isSet ? word : "";
    if (current === undefined) {
      // An ARG declared only before the first FROM is out of scope in a stage until redeclared there.
      if (globalArgs?.get(name) !== undefined && !vars.has(name)) {
        throw new SelectionError(
          `${where}: ${keyword} source uses \${${name}}, but ARG ${name} is declared only before FROM, and a stage does not see such an ARG unless it declares it again. Fix: redeclare it after FROM with a line "ARG ${name}" (no value: it keeps the one given before FROM)`,
        );
      }
      throw new SelectionError(
        `${where}: ${keyword} source uses \${${name}}, which has no value at synth time. Fix: give ARG ${name} a default in the Dockerfile, or pass it in the image's buildArgs`,
      );
    }
    return current;
  });
}

/**
 * True when a FROM pulls from public.ecr.aws. With a base image, the default of
 * `${BASE_IMAGE_URI:-…}` is never used, so it does not count.
 */
export function pullsFromPublicEcr(text: string, hasBaseImage: boolean): boolean {
  return parseDockerfile(text)
    .getFROMs()
    .some((from) => {
      let image = from.getArgumentsContent() ?? "";
      if (hasBaseImage) image = image.replace(/\$\{BASE_IMAGE_URI:?-[^}]*\}/g, "");
      return image.includes("public.ecr.aws");
    });
}

/** What a base image check needs to know about the image. */
export interface BaseImageUse {
  /** The manifest's baseImage: the build passes its URI as build arg BASE_IMAGE_URI. */
  readonly hasBaseImage: boolean;
  /** The manifest's buildArgs (a BASE_IMAGE_URI there stands in for a default). */
  readonly buildArgs: Readonly<Record<string, string>>;
  /** The base image's name, for messages. @default "its base image" */
  readonly baseImage?: string;
}

/** BuildKit defines these in the global scope, so FROM may use them undeclared. */
const AUTOMATIC_PLATFORM_ARGS = new Set(["TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT", "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT"]);

/**
 * The seed's trap, both ways: an image with a base image whose final stage is not built FROM
 * ${BASE_IMAGE_URI} builds fine, without the base image's packages, and fails on import; an
 * image without one whose FROM needs BASE_IMAGE_URI (or any ARG) with no value fails to build.
 * Returns one error line per problem (`file:line: what. Fix: how`).
 */
export function checkBaseImageUse(text: string, file: string, use: BaseImageUse): string[] {
  const errors: string[] = [];
  const dockerfile = parseDockerfile(text);
  const instructions = dockerfile.getInstructions();
  const firstFrom = instructions.findIndex((i) => i.getKeyword() === "FROM");
  if (firstFrom < 0) return errors;
  // Only ARGs before the first FROM reach a FROM line.
  const globalArgs = new Map<string, string | undefined>();
  for (const instruction of instructions.slice(0, firstFrom)) {
    if (instruction.getKeyword() === "ARG") for (const [name, value] of argDeclarations(instruction)) globalArgs.set(name, value);
  }
  const base = use.baseImage ? `base image ${use.baseImage}` : "its base image";

  interface Stage { readonly image: string; readonly name?: string; readonly line: number }
  const stages: Stage[] = dockerfile.getFROMs().map((from) => {
    const words = (from.getArgumentsContent() ?? "").trim().split(/\s+/).filter((w) => !w.startsWith("--"));
    const asAt = words.findIndex((w) => w.toLowerCase() === "as");
    return { image: words[0] ?? "", name: asAt > 0 ? words[asAt + 1]?.toLowerCase() : undefined, line: from.getRange().start.line + 1 };
  });

  for (const stage of stages) {
    for (const ref of variableRefs(stage.image)) {
      const where = `${file}:${stage.line}`;
      if (ref.name === "BASE_IMAGE_URI" && use.hasBaseImage) {
        if (!globalArgs.has("BASE_IMAGE_URI")) {
          errors.push(
            `${where}: FROM ${stage.image} uses BASE_IMAGE_URI, but no ARG BASE_IMAGE_URI comes before the first FROM, so the ${base} URI the build passes never reaches it${ref.hasDefault ? " and the default is used instead" : ""}. Fix: add ARG BASE_IMAGE_URI above the first FROM`,
          );
        }
        continue;
      }
      if (ref.hasDefault || AUTOMATIC_PLATFORM_ARGS.has(ref.name)) continue;
      const declared = globalArgs.has(ref.name);
      const value = declared ? (ref.name in use.buildArgs ? use.buildArgs[ref.name] : globalArgs.get(ref.name)) : undefined;
      if (value !== undefined && value !== "") continue;
      errors.push(
        ref.name === "BASE_IMAGE_URI"
          ? `${where}: FROM ${stage.image} has no value: this image has no baseImage, so nothing passes BASE_IMAGE_URI, and the build fails. Fix: give it a default (FROM \${BASE_IMAGE_URI:-public.ecr.aws/lambda/python:3.12}), or give the image a baseImage`
          : `${where}: FROM ${stage.image} uses ${ref.name}, which has no value${declared ? "" : " (no ARG " + ref.name + " before the first FROM)"}, so the build fails. Fix: ${declared ? `give ARG ${ref.name} a default, or pass it in the image's buildArgs` : `declare ARG ${ref.name} with a default above the first FROM`}`,
      );
    }
  }

  if (use.hasBaseImage && errors.length === 0) {
    // Follow the final stage back through stage names to the image it starts from.
    const byName = new Map(stages.filter((s) => s.name).map((s) => [s.name!, s]));
    let stage = stages[stages.length - 1]!;
    const seen = new Set<Stage>();
    while (byName.has(stage.image.toLowerCase()) && !seen.has(stage)) {
      seen.add(stage);
      stage = byName.get(stage.image.toLowerCase())!;
    }
    if (!variableRefs(stage.image).some((r) => r.name === "BASE_IMAGE_URI")) {
      errors.push(
        `${file}:${stage.line}: the image is built FROM ${stage.image}, not FROM ${base}: the Dockerfile never uses BASE_IMAGE_URI in its final stage's FROM, so it builds without ${base}'s packages and fails when the handler imports them. Fix: add ARG BASE_IMAGE_URI above the first FROM and write FROM \${BASE_IMAGE_URI}`,
      );
    }
  }
  return errors;
}

/** The variables a FROM image refers to, and whether each carries its own default (`${X:-d}`). */
function variableRefs(image: string): { name: string; hasDefault: boolean }[] {
  const refs: { name: string; hasDefault: boolean }[] = [];
  for (const m of image.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g)) {
    const op = m[2];
    refs.push({ name: (m[1] ?? m[4])!, hasDefault: op === ":-" || op === "-" ? (m[3] ?? "") !== "" : op === ":+" || op === "+" });
  }
  return refs;
}

/**
 * A base image's `packages` that its Dockerfile never COPYs or ADDs: every image built on it
 * leaves them out of its context, and nobody installs them. `sources` are the context-relative
 * patterns dockerfileSources returns; `packages` root-relative directories. Packages that a
 * base image it is built FROM already lists (`inherited`) are installed there, not here.
 */
export function uncopiedPackages(sources: readonly Pick<ContextSource, "pattern">[], packages: readonly string[], inherited: readonly string[] = []): string[] {
  const patterns = sources.map((s) => new PathPattern(s.pattern, { globstar: false }));
  return packages.filter((pkg) => !inherited.includes(pkg) && !patterns.some((p) => p.mayEnter(pkg)));
}

/** uncopiedPackages as error lines, for a base image's Dockerfile. */
export function checkBasePackagesCopied(
  sources: readonly Pick<ContextSource, "pattern">[],
  packages: readonly string[],
  file: string,
  baseImage: string,
  inherited: readonly string[] = [],
): string[] {
  return uncopiedPackages(sources, packages, inherited).map(
    (pkg) =>
      `${file}:1: base image ${baseImage} lists package ${pkg}, but its Dockerfile never COPYs or ADDs it (nor does a base image it is built FROM list it): the images built on ${baseImage} leave ${pkg} out of their context, so nobody installs it. Fix: COPY ${pkg}/ into the image and install it, or remove ${pkg} from baseImages.${baseImage}.packages`,
  );
}

/**
 * The external image the first stage of a Dockerfile starts FROM, with `${VAR:-default}`
 * resolved to its default; undefined when it cannot be told without build args.
 */
export function externalFrom(text: string): string | undefined {
  const stages = new Set<string>();
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (!m) continue;
    const ref = m[1]!.replace(/\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}/g, "$1");
    if (m[2]) stages.add(m[2].toLowerCase());
    if (stages.has(ref.toLowerCase()) && ref.toLowerCase() !== m[2]?.toLowerCase()) continue;
    return ref.includes("$") || ref === "" ? undefined : ref;
  }
  return undefined;
}

/**
 * The `# syntax=` parser directive of a Dockerfile: the image of the Dockerfile frontend BuildKit
 * runs it with. Parser directives are the `# name=value` lines at the very top; the first other
 * line (a comment, a blank line, an instruction) ends them (Dockerfile reference, "Parser
 * directives": https://docs.docker.com/reference/dockerfile/#parser-directives).
 */
export function syntaxDirective(text: string): { readonly ref: string; readonly line: number } | undefined {
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const m = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.*?)\s*$/.exec(lines[i]!);
    if (!m) return undefined;
    // Directive names are case-insensitive; the value's first word is the image (the rest, its command line).
    if (m[1]!.toLowerCase() === "syntax" && m[2] !== "") return { ref: m[2]!.split(/\s+/)[0]!, line: i + 1 };
  }
  return undefined;
}

/**
 * Whether an image reference resolves to Docker Hub: Docker takes the first path component as a
 * registry host only when it has a `.` or a `:` or is `localhost`; otherwise the image is on
 * Docker Hub (`docker/dockerfile:1` is `docker.io/docker/dockerfile:1`).
 */
export function isDockerHubReference(ref: string): boolean {
  const slash = ref.indexOf("/");
  const first = slash < 0 ? "" : ref.slice(0, slash);
  if (first === "" || !(first.includes(".") || first.includes(":") || first === "localhost")) return true;
  return ["docker.io", "index.docker.io", "registry-1.docker.io"].includes(first.toLowerCase());
}

/** The build arg BuildKit takes the Dockerfile frontend image from, before any `# syntax=` directive. */
export const SYNTAX_BUILD_ARG = "BUILDKIT_SYNTAX";

/**
 * A warning for a Dockerfile built with BuildKit whose `# syntax=` directive makes the build pull
 * its frontend from Docker Hub, unless build arg BUILDKIT_SYNTAX names another image (BuildKit
 * reads that first: https://docs.docker.com/build/buildkit/frontend/).
 */
export function dockerHubFrontendWarning(text: string, file: string, buildArgs: Readonly<Record<string, string>>, kind: string): string | undefined {
  if (SYNTAX_BUILD_ARG in buildArgs) return undefined;
  const directive = syntaxDirective(text);
  if (!directive || !isDockerHubReference(directive.ref)) return undefined;
  const section = kind === "base" ? "baseImages" : kind === "image" ? "images" : "lambdas";
  const noun = kind === "base" ? "base image" : kind === "image" ? "image" : "Lambda";
  return (
    `${file}:${directive.line}: # syntax=${directive.ref} makes BuildKit pull its Dockerfile frontend from Docker Hub when CodeBuild builds this image, ` +
    `so the build needs Docker Hub (and its pull rate limit). Fix: remove the line to use BuildKit's built-in frontend, or set build arg ${SYNTAX_BUILD_ARG} ` +
    `to a copy of ${directive.ref} in a registry the builds may use, such as an ECR pull-through cache of Docker Hub (in images.yaml, defaults.${section}.buildArgs sets it for every ${noun})`
  );
}

/** An image in a private ECR registry, read from its reference: the registry's host, account, region and the repository. */
export interface EcrImageReference {
  readonly host: string;
  readonly account: string;
  readonly region: string;
  readonly partition: "aws" | "aws-cn" | "aws-us-gov";
  readonly repository: string;
}

/** `<account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>[:tag][@digest]`, else undefined. */
export function ecrImageReference(ref: string): EcrImageReference | undefined {
  const m = /^((\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?)\/([a-z0-9][a-z0-9._\/-]*?)(:[\w][\w.-]*)?(@sha256:[0-9a-f]{64})?$/.exec(ref);
  if (!m) return undefined;
  const region = m[3]!;
  const partition = m[4] || region.startsWith("cn-") ? "aws-cn" : region.startsWith("us-gov-") ? "aws-us-gov" : "aws";
  return { host: m[1]!, account: m[2]!, region, partition, repository: m[5]! };
}

/** The Dockerfile frontend image a build arg BUILDKIT_SYNTAX names (its first word), if any. */
export function frontendImage(buildArgs: Readonly<Record<string, string>>): string | undefined {
  const value = buildArgs[SYNTAX_BUILD_ARG]?.trim();
  return value ? value.split(/\s+/)[0] : undefined;
}
