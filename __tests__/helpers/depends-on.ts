// What Terraform accepts in `depends_on`, checked on synthesized stacks.

type TerraformJson = Record<string, Record<string, Record<string, unknown>> | undefined>;

/**
 * The `depends_on` entries of a synthesized stack that Terraform would refuse. Terraform's
 * depends_on "requires a list of references to other resources or child modules in the same
 * calling module. This list cannot include arbitrary expressions"
 * (https://developer.hashicorp.com/terraform/language/meta-arguments/depends_on); Terraform's JSON
 * syntax takes each as a string holding such a reference
 * (https://developer.hashicorp.com/terraform/language/syntax/json). So every entry is a whole
 * object: a resource `<type>.<name>`, a data source `data.<type>.<name>` or a module
 * `module.<name>` (identifiers: a letter or `_`, then letters, digits, `_`, `-`), never an
 * attribute of one ("Invalid depends_on reference"), and the object is declared in this stack.
 * Resources, data sources, modules and outputs may have depends_on.
 */
export function dependsOnProblems(stack: TerraformJson): string[] {
  const ident = "[A-Za-z_][A-Za-z0-9_-]*";
  const grammar = new RegExp(`^(?:module\\.${ident}|data\\.${ident}\\.${ident}|${ident}\\.${ident})$`);
  const declared = (ref: string): boolean => {
    const parts = ref.split(".");
    if (parts[0] === "module") return stack.module?.[parts[1]!] !== undefined;
    if (parts[0] === "data") return stack.data?.[parts[1]!]?.[parts[2]!] !== undefined;
    return stack.resource?.[parts[0]!]?.[parts[1]!] !== undefined;
  };
  const holders: [string, Record<string, unknown>][] = [];
  for (const kind of ["resource", "data"]) {
    for (const [type, objects] of Object.entries(stack[kind] ?? {})) for (const [name, body] of Object.entries(objects)) holders.push([`${kind === "data" ? "data." : ""}${type}.${name}`, body as Record<string, unknown>]);
  }
  for (const kind of ["module", "output"]) for (const [name, body] of Object.entries(stack[kind] ?? {})) holders.push([`${kind}.${name}`, body as Record<string, unknown>]);
  const problems: string[] = [];
  for (const [address, body] of holders) {
    const dependsOn = body.depends_on;
    if (dependsOn === undefined) continue;
    if (!Array.isArray(dependsOn)) {
      problems.push(`${address}: depends_on is not a list`);
      continue;
    }
    for (const ref of dependsOn) {
      if (typeof ref !== "string" || !grammar.test(ref)) problems.push(`${address}: ${JSON.stringify(ref)} is not a reference to a whole resource, data source or module`);
      else if (!declared(ref)) problems.push(`${address}: ${ref} is not declared in this stack`);
    }
  }
  return problems;
}
