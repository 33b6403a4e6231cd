// The e2e's small Terraform interpreter (e2e/lib/terraform.ts, e2e/lib/apply.ts helpers): string
// templates, strict reference resolution, the lint, the dependency graph and its walk.
import { describe, expect, it } from "vitest";
import {
  dependencies,
  evalTemplate,
  lintTemplates,
  parseTemplate,
  TemplateError,
  walkGraph,
  type EvalContext,
  type TfDoc,
} from "../e2e/lib/terraform.ts";
import { shellWords } from "../e2e/lib/apply.ts";

const ctx: EvalContext = {
  stackDir: "/stack",
  resolve(ref) {
    if (ref.type === "aws_ecr_repository" && ref.attr === "repository_url") return `127.0.0.1:5000/${ref.name}`;
    throw new TemplateError(`unknown ${ref.type}.${ref.name}.${ref.attr}`);
  },
};

describe("string templates", () => {
  it("splits literals and interpolations, and unescapes $${ and %%{", () => {
    expect(parseTemplate('a ${x.y.z} $${HOME} %%{ b')).toEqual([{ lit: "a " }, { expr: "x.y.z" }, { lit: " ${HOME} %{ b" }]);
    expect(parseTemplate('${abspath("a}b")}')).toEqual([{ expr: 'abspath("a}b")' }]);
    expect(() => parseTemplate("%{ if true }x%{ endif }")).toThrow(/directive/);
    expect(() => parseTemplate("${x.y")).toThrow(/unterminated/);
  });

  it("resolves references and abspath(), and fails loudly on anything else", () => {
    expect(evalTemplate("${aws_ecr_repository.r.repository_url}:sha-1", ctx)).toBe("127.0.0.1:5000/r:sha-1");
    expect(evalTemplate('${abspath("assets/x")}', ctx)).toBe("/stack/assets/x");
    expect(() => evalTemplate("${aws_s3_bucket.b.bucket}", ctx)).toThrow(/unknown aws_s3_bucket/);
    expect(() => evalTemplate("${data.aws_caller_identity.a.account_id}", ctx)).toThrow(/not emulated/);
    expect(() => evalTemplate('"${REPOSITORY_URI%%/*}"', ctx)).toThrow(/cannot interpret/);
    expect(() => evalTemplate("${upper(x)}", ctx)).toThrow(/cannot interpret/);
    expect(evalTemplate('"$${REPOSITORY_URI%%/*}"', ctx)).toBe('"${REPOSITORY_URI%%/*}"');
  });
});

describe("lintTemplates", () => {
  const doc: TfDoc = {
    resource: {
      aws_ecr_repository: { r: { name: "r" } },
      aws_codebuild_project: {
        p: { environment: { environment_variable: [{ name: "REPOSITORY_URI", value: "${aws_ecr_repository.r.repository_url}" }] }, source: { buildspec: 'login "${REPOSITORY_URI%%/*}" $${OK}' } },
      },
      terraform_data: { t: { input: "${aws_ecr_repository.gone.name} ${data.aws_partition.p.partition} ${BARE}" } },
    },
    data: { aws_partition: { p: {} } },
  };
  it("reports shell syntax, bare identifiers and undeclared resources; accepts escapes and data sources", () => {
    const problems = lintTemplates(doc);
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/aws_codebuild_project\.p\.source\.buildspec: \$\{REPOSITORY_URI%%\/\*\} is not a valid Terraform expression/);
    expect(problems[1]).toMatch(/aws_ecr_repository\.gone\.name\} refers to an undeclared resource/);
    expect(problems[2]).toMatch(/\$\{BARE\} is not a valid/);
  });
});

describe("the graph", () => {
  it("derives dependencies from depends_on and references, not from data sources", () => {
    const deps = dependencies({
      depends_on: ["aws_iam_role_policy.p"],
      name: '${abspath("x")}',
      cmd: "run ${aws_s3_bucket.b.bucket}/${aws_s3_object.o.key} ${data.aws_partition.p.partition}",
    });
    expect([...deps].sort()).toEqual(["aws_iam_role_policy.p", "aws_s3_bucket.b", "aws_s3_object.o"]);
  });

  it("walks dependencies first, in parallel, and skips dependents of a failure", async () => {
    const order: string[] = [];
    const nodes = new Map<string, Set<string>>([
      ["base", new Set()],
      ["chained", new Set(["base"])],
      ["lambda", new Set(["chained"])],
      ["standalone", new Set()],
      ["bad", new Set()],
      ["after-bad", new Set(["bad"])],
      ["after-after-bad", new Set(["after-bad"])],
    ]);
    const results = await walkGraph(nodes, async (a) => {
      order.push(`start ${a}`);
      await new Promise((r) => setTimeout(r, 5));
      if (a === "bad") throw new Error("boom");
      order.push(`end ${a}`);
    });
    expect(order.indexOf("start chained")).toBeGreaterThan(order.indexOf("end base"));
    expect(order.indexOf("start lambda")).toBeGreaterThan(order.indexOf("end chained"));
    expect(order.indexOf("start standalone")).toBeLessThan(order.indexOf("end base"));
    const by = new Map(results.map((r) => [r.address, r]));
    expect(by.get("bad")).toMatchObject({ ok: false, error: "boom" });
    expect(by.get("after-bad")).toMatchObject({ ok: false, skipped: true });
    expect(by.get("after-after-bad")).toMatchObject({ ok: false, skipped: true });
    expect(by.get("lambda")!.ok).toBe(true);
  });

  it("refuses a cycle and an undeclared dependency", async () => {
    await expect(walkGraph(new Map([["a", new Set(["b"])], ["b", new Set(["a"])]]), async () => {})).rejects.toThrow(/Cycle: a -> b -> a/);
    await expect(walkGraph(new Map([["a", new Set(["zz"])]]), async () => {})).rejects.toThrow(/not declared/);
  });
});

describe("shellWords", () => {
  it("splits the runner command the way /bin/sh does", () => {
    expect(shellWords('node a/runner.cjs build --project "p q" --tag sha-1 \'x y\' "a\\"b"')).toEqual([
      "node", "a/runner.cjs", "build", "--project", "p q", "--tag", "sha-1", "x y", 'a"b',
    ]); // prettier-ignore
  });
});
