import { DockerfileParser, type Instruction } from "dockerfile-ast";
import { normalizeRelative } from "../manifest/paths.ts";
import { SelectionError } from "../manifest/errors.ts";

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
 */
export function dockerfileSources(text: string, buildArgs: Readonly<Record<string, string>>, dockerfileName: string): DockerfileSources {
  const dockerfile = DockerfileParser.parse(text);
  const sources: ContextSource[] = [];
  const warnings: string[] = [];
  const globalArgs = new Map<string, string | undefined>();
  let stageVars = new Map<string, string | undefined>();
  let inStage = false;

  for (const instruction of dockerfile.getInstructions()) {
    const keyword = instruction.getKeyword();
    const line = instruction.getRange().start.line + 1;
    const where = `${dockerfileName}:${line}`;
    switch (keyword) {
      case "FROM":
        inStage = true;
        stageVars = new Map();
        break;
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
        const parsed = copySources(instruction, text);
        if (parsed.fromStage) break;
        for (const raw of parsed.sources) {
          if (keyword === "ADD" && /^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) {
            warnings.push(`${where}: ADD ${raw} downloads at build time; its content is not part of the image's content hash, so a change there does not trigger a rebuild`);
            continue;
          }
          if (keyword === "ADD" && /^git@/.test(raw)) {
            warnings.push(`${where}: ADD ${raw} clones at build time; its content is not tracked by the content hash`);
            continue;
          }
          const expanded = expand(raw, stageVars, where, keyword);
          const normalized = normalizeRelative(expanded.replace(/^\/+/, "") || ".");
          if ("error" in normalized) {
            throw new SelectionError(`${where}: ${keyword} source ${normalized.error}. Fix: copy from paths inside the build context (the repository root)`);
          }
          sources.push({ pattern: normalized.path, line, instruction: keyword });
        }
        break;
      }
      default:
        break;
    }
  }
  return { sources, warnings };
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

/** Sources of a COPY/ADD: flags dropped, JSON form decoded, heredoc bodies skipped, destination dropped. */
function copySources(instruction: Instruction, text: string): { fromStage: boolean; sources: string[] } {
  const flags = (instruction as unknown as { getFlags(): { getName(): string }[] }).getFlags();
  if (flags.some((f) => f.getName().toLowerCase() === "from")) return { fromStage: true, sources: [] };
  const heredocs = (instruction as unknown as { getHeredocs?(): { getName(): string }[] }).getHeredocs?.() ?? [];

  const content = instruction.getArgumentsContent() ?? "";
  const withoutFlags = content.replace(/^(\s*--[a-zA-Z-]+(=\S*)?\s+)*/, "");
  if (withoutFlags.trimStart().startsWith("[")) {
    const json = JSON.parse(extractJsonArray(withoutFlags)) as string[];
    return { fromStage: false, sources: json.slice(0, -1) };
  }
  let args = instruction.getArguments().map((a) => a.getValue());
  args = args.filter((a) => !a.startsWith("--"));
  if (heredocs.length > 0) {
    // Only the instruction's own line holds sources; the rest are the heredoc bodies.
    const firstLine = text.split("\n")[instruction.getRange().start.line] ?? "";
    args = firstLine.trim().split(/\s+/).slice(1).filter((a) => !a.startsWith("--") && !/^<<-?/.test(a));
    return { fromStage: false, sources: args.slice(0, -1) };
  }
  return { fromStage: false, sources: args.slice(0, -1) };
}

function extractJsonArray(s: string): string {
  const start = s.indexOf("[");
  const end = s.lastIndexOf("]");
  return s.slice(start, end + 1).replace(/\\\r?\n/g, "");
}

/**
 * Expands $VAR, ${VAR}, ${VAR:-default} and ${VAR:+alt} from the variables in scope. A variable
 * with no value would make the source path depend on something we cannot see at synth time.
 */
function expand(value: string, vars: Map<string, string | undefined>, where: string, keyword: string): string {
  return value.replace(/\\\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (match, braced, op, word, bare) => {
    if (match === "\\$") return "$";
    const name: string = braced ?? bare;
    const current = vars.get(name);
    const isSet = current !== undefined && (op?.startsWith(":") ? current !== "" : true);
    if (op === ":-" || op === "-") return isSet ? current! : word;
    if (op === ":+" || op === "+") return isSet ? word : "";
    if (current === undefined) {
      throw new SelectionError(
        `${where}: ${keyword} source uses \${${name}}, which has no value at synth time. Fix: give ARG ${name} a default in the Dockerfile, or set it under buildArgs in the manifest`,
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
  return DockerfileParser.parse(text)
    .getFROMs()
    .some((from) => {
      let image = from.getArgumentsContent() ?? "";
      if (hasBaseImage) image = image.replace(/\$\{BASE_IMAGE_URI:?-[^}]*\}/g, "");
      return image.includes("public.ecr.aws");
    });
}
