// E2E-ONLY: the small part of Terraform that phase 2 needs to apply a synthesized cdk.tf.json
// without a terraform binary: JSON-syntax string templates (`${…}` interpolation, `$${` / `%%{`
// escapes), reference resolution against emulated resources, the dependency graph (depends_on +
// references) walked with Terraform's parallelism, and "what changes" decided against the state of
// the previous apply. Unknown references, functions or directives fail loudly: nothing is guessed.
//
// What is interpreted (everything else is an error where a value is needed):
//   ${TYPE.NAME.ATTR}       resolved by the caller's `resolve` (the emulated resource's attribute)
//   ${abspath("rel")}       path.resolve(stackDir, rel), as Terraform run in the stack directory
//   $${ and %%{             the literal `${` and `%{`
import { resolve as resolvePath } from "node:path";

export type TfValue = string | number | boolean | null | TfValue[] | { [k: string]: TfValue };

export interface TfDoc {
  resource?: Record<string, Record<string, Record<string, TfValue>>>;
  data?: Record<string, Record<string, Record<string, TfValue>>>;
  [k: string]: unknown;
}

export type TemplatePart = { lit: string } | { expr: string };

export class TemplateError extends Error {}

/**
 * Splits a Terraform (JSON syntax) string template into literals and `${…}` expressions. A `%{`
 * directive is rejected (none is expected in this project's output). Braces and quoted strings
 * inside an expression are balanced, so `${abspath("a}b")}` is one expression.
 */
export function parseTemplate(s: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let lit = "";
  let i = 0;
  while (i < s.length) {
    if ((s.startsWith("$${", i) || s.startsWith("%%{", i))) {
      lit += s[i] + "{";
      i += 3;
      continue;
    }
    if (s.startsWith("%{", i)) throw new TemplateError(`template directive %{…} at offset ${i} is not supported: ${excerpt(s, i)}`);
    if (s.startsWith("${", i)) {
      let depth = 1;
      let j = i + 2;
      let quote = false;
      for (; j < s.length && depth > 0; j++) {
        const c = s[j];
        if (quote) {
          if (c === "\\") j++;
          else if (c === '"') quote = false;
        } else if (c === '"') quote = true;
        else if (c === "{") depth++;
        else if (c === "}") depth--;
      }
      if (depth !== 0) throw new TemplateError(`unterminated \${ at offset ${i}: ${excerpt(s, i)}`);
      if (lit) parts.push({ lit });
      lit = "";
      parts.push({ expr: s.slice(i + 2, j - 1).trim() });
      i = j;
      continue;
    }
    lit += s[i];
    i++;
  }
  if (lit || !parts.length) parts.push({ lit });
  return parts;
}

function excerpt(s: string, i: number): string {
  return JSON.stringify(s.slice(Math.max(0, i - 20), i + 40));
}

const TRAVERSAL = /^(data\.)?([a-z][a-z0-9_]*)\.([A-Za-z_][\w-]*)\.([A-Za-z_][\w]*)$/;
const CALL = /^([a-z][a-z0-9_]*)\((.*)\)$/s;
const STRING_LIT = /^"((?:[^"\\]|\\.)*)"$/s;

export interface Reference {
  data: boolean;
  type: string;
  name: string;
  attr: string;
}

/** `TYPE.NAME.ATTR` / `data.TYPE.NAME.ATTR`, else undefined. */
export function parseReference(expr: string): Reference | undefined {
  const m = TRAVERSAL.exec(expr);
  return m ? { data: !!m[1], type: m[2]!, name: m[3]!, attr: m[4]! } : undefined;
}

/** Terraform functions this project's output uses; anything else is a lint error. */
const KNOWN_FUNCTIONS = new Set(["abspath", "pathexpand", "jsonencode", "join", "lower", "format"]);

/**
 * Every problem Terraform would have with the strings of `doc` as templates: unparsable
 * templates, expressions that are neither a reference to a declared resource / data source nor
 * a call of a known function. Returns "resource path: problem" lines.
 */
export function lintTemplates(doc: TfDoc): string[] {
  const problems: string[] = [];
  const declared = (r: Reference) => (r.data ? doc.data : doc.resource)?.[r.type]?.[r.name] !== undefined;
  const visit = (v: unknown, path: string) => {
    if (typeof v === "string") {
      let parts: TemplatePart[];
      try {
        parts = parseTemplate(v);
      } catch (err) {
        problems.push(`${path}: ${(err as Error).message}`);
        return;
      }
      for (const p of parts) {
        if (!("expr" in p)) continue;
        const ref = parseReference(p.expr);
        if (ref) {
          if (!declared(ref)) problems.push(`${path}: \${${p.expr}} refers to an undeclared ${ref.data ? "data source" : "resource"}`);
          continue;
        }
        const call = CALL.exec(p.expr);
        if (call && KNOWN_FUNCTIONS.has(call[1]!)) continue;
        problems.push(`${path}: \${${p.expr}} is not a valid Terraform expression (unescaped shell syntax? write $\${…})`);
      }
    } else if (Array.isArray(v)) v.forEach((x, i) => visit(x, `${path}[${i}]`));
    else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) if (k !== "//") visit(x, `${path}.${k}`);
  };
  for (const section of ["resource", "data", "output", "provider", "locals"] as const) {
    const s = doc[section];
    if (s && typeof s === "object") visit(s, section);
  }
  return problems;
}

export interface EvalContext {
  /** The stack directory: Terraform's working directory. */
  stackDir: string;
  /** Value of a resource attribute; throw for anything not emulated. */
  resolve(ref: Reference): string;
}

/** Evaluates one string template. Throws on anything not interpreted. */
export function evalTemplate(s: string, ctx: EvalContext, where = "value"): string {
  let out = "";
  for (const p of parseTemplate(s)) {
    if ("lit" in p) {
      out += p.lit;
      continue;
    }
    out += evalExpr(p.expr, ctx, where);
  }
  return out;
}

function evalExpr(expr: string, ctx: EvalContext, where: string): string {
  const ref = parseReference(expr);
  if (ref) {
    if (ref.data) throw new TemplateError(`${where}: data source reference \${${expr}} is not emulated`);
    return ctx.resolve(ref);
  }
  const call = CALL.exec(expr);
  if (call && call[1] === "abspath") {
    const arg = STRING_LIT.exec(call[2]!.trim());
    if (!arg) throw new TemplateError(`${where}: abspath() of a non-literal is not interpreted: \${${expr}}`);
    return resolvePath(ctx.stackDir, JSON.parse(`"${arg[1]}"`) as string);
  }
  throw new TemplateError(`${where}: cannot interpret \${${expr}} (only TYPE.NAME.ATTR references and abspath("…") are emulated)`);
}

/** Deep-evaluates every string of a JSON value. */
export function evalDeep(v: TfValue, ctx: EvalContext, where: string): TfValue {
  if (typeof v === "string") return evalTemplate(v, ctx, where);
  if (Array.isArray(v)) return v.map((x, i) => evalDeep(x, ctx, `${where}[${i}]`));
  if (v && typeof v === "object") {
    const o: Record<string, TfValue> = {};
    for (const [k, x] of Object.entries(v)) if (k !== "//") o[k] = evalDeep(x, ctx, `${where}.${k}`);
    return o;
  }
  return v;
}

/** Resource addresses (`TYPE.NAME`) of `doc`. */
export function resources(doc: TfDoc): { address: string; type: string; name: string; config: Record<string, TfValue> }[] {
  const out = [];
  for (const [type, byName] of Object.entries(doc.resource ?? {})) {
    for (const [name, config] of Object.entries(byName)) out.push({ address: `${type}.${name}`, type, name, config });
  }
  return out;
}

/** Dependencies of one resource, as Terraform derives them: depends_on plus every reference. */
export function dependencies(config: Record<string, TfValue>): Set<string> {
  const deps = new Set<string>();
  for (const d of (config.depends_on as string[] | undefined) ?? []) deps.add(d);
  const visit = (v: unknown) => {
    if (typeof v === "string") {
      let parts: TemplatePart[];
      try {
        parts = parseTemplate(v);
      } catch {
        return; // reported by lintTemplates
      }
      for (const p of parts) {
        if (!("expr" in p)) continue;
        // References anywhere in the expression (also inside function arguments).
        for (const m of p.expr.matchAll(/(?<![\w.])(data\.)?([a-z][a-z0-9_]*)\.([A-Za-z_][\w-]*)\.[A-Za-z_]/g)) {
          if (!m[1]) deps.add(`${m[2]}.${m[3]}`);
        }
      }
    } else if (Array.isArray(v)) v.forEach(visit);
    else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) if (k !== "//" && k !== "depends_on") visit(x);
  };
  visit(config);
  return deps;
}

export interface WalkResult {
  address: string;
  ok: boolean;
  error?: string;
  skipped?: boolean;
  start: number;
  end: number;
}

/**
 * Walks the graph like `terraform apply`: a resource starts when all its dependencies are done,
 * at most `parallelism` at once (Terraform's default is 10). A failed resource stops its
 * dependents (they are reported skipped); independent branches finish.
 */
export async function walkGraph(
  nodes: Map<string, Set<string>>,
  run: (address: string) => Promise<void>,
  parallelism = 10,
): Promise<WalkResult[]> {
  for (const [a, deps] of nodes) {
    for (const d of deps) if (!nodes.has(d)) throw new Error(`${a} depends on ${d}, which is not declared`);
  }
  // Terraform refuses a cycle ("Error: Cycle: …"); so do we, before starting anything.
  const state = new Map<string, 1 | 2>();
  const visit = (a: string, path: string[]) => {
    if (state.get(a) === 2) return;
    if (state.get(a) === 1) throw new Error(`Cycle: ${[...path.slice(path.indexOf(a)), a].join(" -> ")}`);
    state.set(a, 1);
    for (const d of nodes.get(a)!) visit(d, [...path, a]);
    state.set(a, 2);
  };
  for (const a of nodes.keys()) visit(a, []);
  const results = new Map<string, WalkResult>();
  const pending = new Set(nodes.keys());
  let running = 0;
  return new Promise((resolveAll, reject) => {
    const pump = () => {
      for (const a of [...pending]) {
        const deps = [...nodes.get(a)!];
        if (deps.some((d) => !results.has(d))) continue;
        if (deps.some((d) => !results.get(d)!.ok)) {
          pending.delete(a);
          results.set(a, { address: a, ok: false, skipped: true, error: "a dependency failed", start: Date.now(), end: Date.now() });
          continue;
        }
        if (running >= parallelism) break;
        pending.delete(a);
        running++;
        const start = Date.now();
        run(a).then(
          () => results.set(a, { address: a, ok: true, start, end: Date.now() }),
          (err) => results.set(a, { address: a, ok: false, error: (err as Error).message, start, end: Date.now() }),
        ).finally(() => {
          running--;
          pump();
        });
      }
      if (!pending.size && running === 0) resolveAll([...results.values()]);
      // Skipped dependents may have unblocked (skipped) others: go round again (no cycles, so it ends).
      else if (running === 0) setImmediate(pump);
    };
    try {
      pump();
    } catch (err) {
      reject(err);
    }
  });
}
