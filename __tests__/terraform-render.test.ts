// Every string of the synthesized stacks, read by the real `terraform` binary: Terraform treats
// each JSON string as a template, so a shell `${VAR%%/*}` in a buildspec or a user's `${HOME}` in
// an environment value must arrive escaped, and what Terraform hands to CodeBuild, Lambda and the
// shell must be exactly what we generated. References to AWS/Docker objects become literal
// placeholders (no provider can be downloaded here); the configuration is outputs only.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseTemplate } from "../e2e/lib/terraform.ts";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";
import { resourcesOf, synthExample, type SynthResult, type TfJson } from "./helpers/synth.ts";
import { findTerraform, placeholder, removeTerraformCliConfig, replaceProviderReferences, stringsOf, terraform } from "./helpers/terraform.ts";

const TERRAFORM = findTerraform();
if (!TERRAFORM) console.warn("terraform-render.test.ts: SKIPPED, no `terraform` binary on PATH (install Terraform >= 1.4 to run it)");
const describeWithTerraform = TERRAFORM ? describe : describe.skip;
afterAll(removeTerraformCliConfig);

const GREETING = "${HOME} and %{ if x }";

interface Rendered {
  readonly where: string;
  readonly original: string;
  readonly rendered: string;
}

/**
 * Renders every string of a stack with `terraform apply` on an outputs-only configuration and
 * returns them by JSON path. `abspath()` resolves against `dir`, `pathexpand("~")` against `home`.
 */
function renderStack(stack: TfJson, dir: string, home: string): Map<string, Rendered> {
  const strings = stringsOf({ resource: stack.resource, data: stack.data, provider: stack.provider, output: stack.output, locals: stack.locals });
  const { value, locals } = replaceProviderReferences(stack, strings.map((s) => s.value));
  const rewritten = value as string[];
  const config = { locals, output: Object.fromEntries(rewritten.map((v, i) => [`s${i}`, { value: v }])) };
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "main.tf.json"), JSON.stringify(config, null, 1));
  terraform(dir, ["init", "-input=false"], { env: { HOME: home } });
  terraform(dir, ["apply", "-auto-approve", "-input=false"], { env: { HOME: home } });
  const outputs = JSON.parse(terraform(dir, ["output", "-json"], { env: { HOME: home } }).stdout) as Record<string, { value: string }>;
  return new Map(strings.map((s, i) => [s.where, { where: s.where, original: s.value, rendered: outputs[`s${i}`]!.value }]));
}

/**
 * What a string must read as once Terraform has rendered it, by the e2e interpreter's template
 * parser: literal text with `$${`/`%%{` unescaped, references as their placeholders, and the two
 * functions the stacks call.
 */
function expectedReading(s: string, dir: string, home: string): string {
  return parseTemplate(s)
    .map((part) => {
      if ("lit" in part) return part.lit;
      if (/^(data\.)?[a-z][a-z0-9_]*\.[A-Za-z0-9_-]+\.[a-z0-9_]+$/.test(part.expr)) return placeholder(part.expr);
      const abspath = /^abspath\("([^"\\]*)"\)$/.exec(part.expr);
      if (abspath) return path.join(dir, abspath[1]!);
      const home_ = /^pathexpand\("~\/([^"\\]*)"\)$/.exec(part.expr);
      if (home_) return path.join(home, home_[1]!);
      throw new Error(`unexpected expression \${${part.expr}} in ${JSON.stringify(s)}`);
    })
    .join("");
}

describeWithTerraform("synthesized strings rendered by real Terraform", () => {
  let copy: ExampleCopy;
  let tmp: string;
  let home: string;
  let example: SynthResult;
  let lambdaMode: SynthResult;
  const rendered: Record<string, Map<string, Rendered>> = {};
  const renderDir = (name: string) => path.join(tmp, `render-${name}`);

  beforeAll(async () => {
    copy = copyExample({ prefix: "tf-render-" });
    tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "tf-render-work-")));
    home = path.join(tmp, "home");
    fs.mkdirSync(home);
    const original = fs.readFileSync(copy.manifest, "utf8");
    // A user's environment value with shell and template syntax must reach Lambda as written.
    const withGreeting = original.replace("      LOG_LEVEL: INFO\n", `      LOG_LEVEL: INFO\n      GREETING: ${JSON.stringify(GREETING)}\n`);
    expect(withGreeting).not.toBe(original);
    fs.writeFileSync(copy.manifest, withGreeting);
    example = await synthExample(copy.dir, path.join(tmp, "out-example"));
    // Lambda trigger mode: both bases built in CodeBuild, builds started by aws_lambda_invocation.
    const lambdaManifest = path.join(copy.dir, "lambda-mode.yaml");
    let text = withGreeting.replace("  prod:\n    region: us-east-1\n", "  prod:\n    region: us-east-1\n    buildTrigger: lambda\n");
    text = text.replace("    platforms: [linux/arm64]\n", "    platforms: [linux/arm64]\n    builder: codebuild\n");
    text = text.replace("    baseImage: receipt-dynamo\nlambdas:", "    baseImage: receipt-dynamo\n    builder: codebuild\nlambdas:");
    expect(text.match(/builder: codebuild/g)).toHaveLength(2);
    fs.writeFileSync(lambdaManifest, text);
    lambdaMode = await synthExample(copy.dir, path.join(tmp, "out-lambda"), { manifest: lambdaManifest });
    for (const [name, stack] of Object.entries(example.stacks)) rendered[name] = renderStack(stack, renderDir(name), home);
    rendered["lambda-mode prod"] = renderStack(lambdaMode.stacks.prod!, renderDir("lambda-prod"), home);
    // Its dev stack builds the bases in CodeBuild with local-exec triggers and the stable tag.
    rendered["codebuild-bases dev"] = renderStack(lambdaMode.stacks.dev!, renderDir("codebuild-dev"), home);
  }, 180_000);
  afterAll(() => {
    copy?.cleanup();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const RENDER_DIRS: Record<string, string> = { dev: "dev", prod: "prod", "lambda-mode prod": "lambda-prod", "codebuild-bases dev": "codebuild-dev" };
  it.each(Object.keys(RENDER_DIRS))("%s: every string renders exactly as written, with references as placeholders", (name) => {
    const dir = renderDir(RENDER_DIRS[name]!);
    const all = [...rendered[name]!.values()];
    expect(all.length).toBeGreaterThan(100);
    const wrong = all.filter((r) => r.rendered !== expectedReading(r.original, dir, home)).map((r) => `${r.where}: ${JSON.stringify(r.rendered)}`);
    expect(wrong).toEqual([]);
    // The escapes were really exercised: some strings hold $${ or %%{ and came out as ${ and %{.
    expect(all.some((r) => r.original.includes("$${") && r.rendered.includes("${") && !r.rendered.includes("$${"))).toBe(true);
  });

  it.each([
    ["prod", () => example.stacks.prod!, () => example, "prod"],
    ["lambda-mode prod", () => lambdaMode.stacks.prod!, () => lambdaMode, "prod"],
    ["codebuild-bases dev", () => lambdaMode.stacks.dev!, () => lambdaMode, "dev"],
  ] as const)("%s: CodeBuild receives each buildspec exactly as generated, shell expansions intact", (name, stack, synth, stackName) => {
    const projects = Object.entries(resourcesOf(stack(), "aws_codebuild_project"));
    const built = synth().analysis.images.filter((i) => i.buildspec !== undefined);
    expect(projects).toHaveLength(built.length);
    for (const image of built) {
      const matching = projects.filter(([, p]) => String(p.name).endsWith(`-${image.spec.name}-${stackName}`));
      expect(matching, image.spec.name).toHaveLength(1);
      const [id] = matching[0]!;
      const buildspec = rendered[name]!.get(`resource.aws_codebuild_project.${id}.source.buildspec`)!.rendered;
      expect(buildspec).toBe(image.buildspec);
      expect(buildspec).toContain('"${REPOSITORY_URI%%/*}"');
    }
  });

  it("Lambda receives the user's environment value exactly as written", () => {
    for (const name of Object.keys(RENDER_DIRS)) {
      const values = [...rendered[name]!.values()].filter((r) => r.where.endsWith(".environment.variables.GREETING"));
      expect(values.length, name).toBe(1);
      expect(values[0]!.rendered).toBe(GREETING);
    }
  });

  it("every IAM and bucket policy is valid JSON once rendered, with no template left in it", () => {
    let policies = 0;
    for (const [name, byPath] of Object.entries(rendered)) {
      for (const r of byPath.values()) {
        if (!/\.(policy|assume_role_policy)$/.test(r.where) || r.where.includes("aws_ecr_lifecycle_policy")) continue;
        policies++;
        const text = JSON.stringify(JSON.parse(r.rendered));
        expect(text, `${name} ${r.where}`).not.toMatch(/\$\{|%\{/);
      }
    }
    expect(policies).toBeGreaterThan(10);
  });

  it("lambda mode: each build starter invocation's input is JSON naming the project, context, repository and tag", () => {
    const invocations = Object.keys(resourcesOf(lambdaMode.stacks.prod!, "aws_lambda_invocation"));
    expect(invocations.length).toBe(lambdaMode.analysis.images.length);
    for (const id of invocations) {
      const input = JSON.parse(rendered["lambda-mode prod"]!.get(`resource.aws_lambda_invocation.${id}.input`)!.rendered) as Record<string, string>;
      expect(input.projectName).toMatch(/^<aws_codebuild_project\.[^.]+\.name>$/);
      expect(input.sourceLocation).toMatch(/^<aws_s3_bucket\.[^.]+\.bucket>\/<aws_s3_object\.[^.]+\.key>$/);
      expect(input.repositoryUri).toMatch(/^<aws_ecr_repository\.[^.]+\.repository_url>$/);
      expect(input.imageTag).toMatch(/^sha-[0-9a-f]{12}$/);
    }
  });

  it("(an unescaped shell expansion is rejected by Terraform: the escaping above is load-bearing)", () => {
    const dir = path.join(tmp, "unescaped");
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, "main.tf.json"), JSON.stringify({ output: { s: { value: 'login "${REPOSITORY_URI%%/*}"' } } }));
    terraform(dir, ["init", "-input=false"]);
    const run = terraform(dir, ["apply", "-auto-approve", "-input=false"], { allowFailure: true });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(/Invalid|Extra characters|Missing/);
  });
});
