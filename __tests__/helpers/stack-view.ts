import * as path from "node:path";
import { parseRef, type TfJson, type TfResource } from "./synth.ts";

/** Reads a synthesized stack the way a reviewer does: find a resource, follow its references. */
export class StackView {
  constructor(
    readonly name: string,
    readonly json: TfJson,
    /** `<outdir>/stacks/<name>`: where Terraform runs and asset paths are relative to. */
    readonly dir: string,
  ) {}

  static of(outdir: string, name: string, json: TfJson): StackView {
    return new StackView(name, json, path.join(outdir, "stacks", name));
  }

  /** [logical id, resource] of every resource of a type. */
  all(type: string): [string, TfResource][] {
    return Object.entries((this.json.resource?.[type] ?? {}) as Record<string, TfResource>);
  }

  get(type: string, id: string): TfResource {
    const r = this.json.resource?.[type]?.[id] as TfResource | undefined;
    if (!r) throw new Error(`${this.name}: no ${type}.${id}`);
    return r;
  }

  /** The only resource of `type` for which `where` holds, with its id. */
  one(type: string, where: (r: TfResource, id: string) => boolean): [string, TfResource] {
    const found = this.all(type).filter(([id, r]) => where(r, id));
    if (found.length !== 1) throw new Error(`${this.name}: expected one matching ${type}, found ${found.length}`);
    return found[0]!;
  }

  /** The resource a whole-string reference `${type.id.attr}` points at (of the expected type). */
  deref(expr: unknown, type: string, attribute?: string): [string, TfResource] {
    const ref = parseRef(expr);
    if (!ref) throw new Error(`${this.name}: ${JSON.stringify(expr)} is not a reference to ${type}`);
    if (ref.type !== type) throw new Error(`${this.name}: ${String(expr)} refers to a ${ref.type}, not a ${type}`);
    if (attribute && ref.attribute !== attribute) throw new Error(`${this.name}: ${String(expr)} is not the ${attribute} of a ${type}`);
    return [ref.id, this.get(type, ref.id)];
  }

  /** `${type.id.attr}` of a resource. */
  static ref(type: string, id: string, attribute: string): string {
    return `\${${type}.${id}.${attribute}}`;
  }
}
