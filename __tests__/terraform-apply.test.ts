// The build triggers applied by the real `terraform` binary: the synthesized `terraform_data`
// resources with their local-exec provisioners, exactly as synthesized except that references
// to AWS resources are literal placeholders (no provider can be downloaded here) and `depends_on`
// keeps only the other triggers. The runner command's `node` is a stub first on PATH that
// records its argv and exits 0, or 1 when told to. So Terraform itself shows which builds a
// change replaces, that a Lambda's build waits for its base image's build, and that a failed
// build taints its resource so the next apply runs it again.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";
import { flagValue, localExecArgv, resourcesOf, synthExample, type SynthResult, type TfJson } from "./helpers/synth.ts";
import { constructPath, findTerraform, placeholder, removeTerraformCliConfig, replaceProviderReferences, terraform } from "./helpers/terraform.ts";

const TERRAFORM = findTerraform();
if (!TERRAFORM) console.warn("terraform-apply.test.ts: SKIPPED, no `terraform` binary on PATH (install Terraform >= 1.4 to run it)");
const describeWithTerraform = TERRAFORM ? describe : describe.skip;
afterAll(removeTerraformCliConfig);

const STACK = "prod";
/** Each image's repository, and the repository of the base image it is built FROM. */
const BUILT_FROM: Record<string, string> = {
  "portfolio-base-receipt-label-prod": "portfolio-base-receipt-dynamo-prod",
  "portfolio-create-labels-prod": "portfolio-base-receipt-label-prod",
  "portfolio-upload-images-prod": "portfolio-base-receipt-label-prod",
  "portfolio-sync-dynamo-prod": "portfolio-base-receipt-dynamo-prod",
};
const ALL_IMAGES = ["portfolio-base-receipt-dynamo-prod", "portfolio-base-receipt-label-prod", "portfolio-create-labels-prod", "portfolio-create-labels-standalone-prod", "portfolio-sync-dynamo-prod", "portfolio-upload-images-prod"];

interface Run {
  readonly args: string[];
  readonly start: number;
  readonly end: number;
  readonly exit: number;
}

/** The stub `node`: appends {args, start, end, exit} to $FAKE_NODE_LOG; fails when an argument is listed in $FAKE_NODE_FAIL. */
function writeFakeNode(binDir: string): void {
  fs.mkdirSync(binDir, { recursive: true });
  const script = `#!${process.execPath}
const fs = require("node:fs");
const args = process.argv.slice(2);
const start = Date.now();
const failOn = fs.existsSync(process.env.FAKE_NODE_FAIL) ? fs.readFileSync(process.env.FAKE_NODE_FAIL, "utf8").split("\\n").filter(Boolean) : [];
const exit = failOn.some((f) => args.includes(f)) ? 1 : 0;
// Long enough that a build started before its base build ended would show in the times.
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
fs.appendFileSync(process.env.FAKE_NODE_LOG, JSON.stringify({ args, start, end: Date.now(), exit }) + "\\n");
if (exit) console.error("fake build failed");
process.exit(exit);
`;
  fs.writeFileSync(path.join(binDir, "node"), script, { mode: 0o755 });
}

/** A configuration holding the stack's build triggers only, provider references as placeholders. */
function triggersConfig(stack: TfJson): object {
  const triggers = Object.fromEntries(
    Object.entries(resourcesOf(stack, "terraform_data")).map(([id, r]) => [
      id,
      {
        triggers_replace: r.triggers_replace,
        depends_on: ((r.depends_on ?? []) as string[]).filter((d) => d.startsWith("terraform_data.")),
        provisioner: r.provisioner,
      },
    ]),
  );
  const { value, locals } = replaceProviderReferences(stack, triggers, (type) => type === "terraform_data");
  return { locals, resource: { terraform_data: value } };
}

/** The repository name (e.g. portfolio-upload-images-prod) a runner argv builds, from its --repository-uri reference or placeholder. */
function repositoryOf(stack: TfJson, args: string[]): string {
  const uri = flagValue(args, "--repository-uri") ?? "";
  const m = /^(?:<|\$\{)aws_ecr_repository\.([^.]+)\.repository_url(?:>|\})$/.exec(uri);
  if (!m) throw new Error(`--repository-uri ${uri} is not a repository's URL`);
  return String(resourcesOf(stack, "aws_ecr_repository")[m[1]!]!.name);
}

describeWithTerraform("build triggers applied by real Terraform", () => {
  let copy: ExampleCopy;
  let tmp: string;
  let tfDir: string;
  let log: string;
  let failFile: string;
  let env: Record<string, string>;
  let synth: SynthResult;
  let synths = 0;
  let seen = 0;

  /** Re-synthesizes the copy and writes its triggers as the Terraform configuration. */
  async function synthAndConfigure(): Promise<void> {
    synth = await synthExample(copy.dir, path.join(tmp, `out-${++synths}`), { manifest: path.join(copy.dir, "codebuild-bases.yaml") });
    fs.writeFileSync(path.join(tfDir, "main.tf.json"), JSON.stringify(triggersConfig(synth.stacks[STACK]!), null, 1));
  }
  /** Runner invocations since the last call. */
  function newRuns(): Run[] {
    const lines = fs.existsSync(log) ? fs.readFileSync(log, "utf8").split("\n").filter(Boolean) : [];
    const runs = lines.slice(seen).map((l) => JSON.parse(l) as Run);
    seen = lines.length;
    return runs;
  }
  const names = (runs: Run[]) => runs.map((r) => repositoryOf(synth.stacks[STACK]!, r.args)).sort();
  const apply = (allowFailure = false) => terraform(tfDir, ["apply", "-auto-approve", "-input=false"], { env, allowFailure });
  /** Each image that ran waited for its base image's build, when that ran too. */
  function expectBasesFirst(runs: Run[]): void {
    const byName = new Map(runs.map((r) => [repositoryOf(synth.stacks[STACK]!, r.args), r]));
    for (const [image, base] of Object.entries(BUILT_FROM)) {
      const [child, parent] = [byName.get(image), byName.get(base)];
      if (child && parent) expect(child.start, `${image} starts after ${base} ends`).toBeGreaterThanOrEqual(parent.end);
    }
  }

  beforeAll(async () => {
    copy = copyExample({ prefix: "tf-apply-" });
    tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "tf-apply-work-")));
    tfDir = path.join(tmp, "terraform");
    fs.mkdirSync(tfDir);
    log = path.join(tmp, "runs.jsonl");
    failFile = path.join(tmp, "fail-on");
    writeFakeNode(path.join(tmp, "bin"));
    env = { PATH: `${path.join(tmp, "bin")}${path.delimiter}${process.env.PATH}`, FAKE_NODE_LOG: log, FAKE_NODE_FAIL: failFile };
    // Both base images built in CodeBuild, so every build is a terraform_data and chains through depends_on.
    let text = fs.readFileSync(copy.manifest, "utf8");
    text = text.replace("    platforms: [linux/arm64]\n", "    platforms: [linux/arm64]\n    builder: codebuild\n");
    text = text.replace("    baseImage: receipt-dynamo\nlambdas:", "    baseImage: receipt-dynamo\n    builder: codebuild\nlambdas:");
    expect(text.match(/builder: codebuild/g)).toHaveLength(2);
    fs.writeFileSync(path.join(copy.dir, "codebuild-bases.yaml"), text);
    await synthAndConfigure();
    terraform(tfDir, ["init", "-input=false"], { env });
  }, 120_000);
  afterAll(() => {
    copy?.cleanup();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("the first apply runs every build once, with the synthesized arguments, each base before the images built FROM it", () => {
    const stack = synth.stacks[STACK]!;
    // The resources under test are found by type, and told apart by what they build, whatever
    // their logical ids: one trigger per CodeBuild-built image, its construct path naming the image.
    const triggers = Object.values(resourcesOf(stack, "terraform_data"));
    expect(triggers).toHaveLength(ALL_IMAGES.length);
    for (const t of triggers) {
      const repository = repositoryOf(stack, localExecArgv(t.provisioner[0]["local-exec"].command as string));
      expect(constructPath(t)).toContain(repository.replace(/^portfolio-(base-)?/, "").replace(/-prod$/, ""));
    }
    apply();
    const runs = newRuns();
    expect(names(runs)).toEqual(ALL_IMAGES);
    expectBasesFirst(runs);
    for (const run of runs) {
      const repository = repositoryOf(stack, run.args);
      const image = synth.analysis.images.find((i) => repository === (i.spec.kind === "base" ? `portfolio-base-${i.spec.name}-${STACK}` : `portfolio-${i.spec.name}-${STACK}`))!;
      expect(run.args[0], repository).toMatch(/^assets\/runner\/[0-9A-F]+\/runner\.cjs$/);
      expect(run.args[1]).toBe("build");
      expect(flagValue(run.args, "--image-tag")).toBe(synth.analysis.tagFor(image, STACK));
      expect(flagValue(run.args, "--region")).toBe("us-east-1");
      // Quoting survived the shell: each placeholder arrived as one argument.
      const project = /^<aws_codebuild_project\.([^.]+)\.name>$/.exec(flagValue(run.args, "--project")!);
      expect(resourcesOf(stack, "aws_codebuild_project")[project![1]!]!.name).toMatch(new RegExp(`-${image.spec.name}-${STACK}$`));
      const source = /^<aws_s3_bucket\.[^.]+\.bucket>\/<aws_s3_object\.([^.]+)\.key>$/.exec(flagValue(run.args, "--source-location")!);
      expect(resourcesOf(stack, "aws_s3_object")[source![1]!]!.key).toBe(`contexts/${image.spec.kind === "base" ? "base-" : ""}${image.spec.name}/${image.hash}.zip`);
      const base = BUILT_FROM[repository];
      if (base) {
        const baseImage = synth.analysis.images.find((i) => `portfolio-base-${i.spec.name}-${STACK}` === base)!;
        const [repoId] = Object.entries(resourcesOf(stack, "aws_ecr_repository")).find(([, r]) => r.name === base)!;
        expect(flagValue(run.args, "--base-image-uri")).toBe(`${placeholder(`aws_ecr_repository.${repoId}.repository_url`)}:${synth.analysis.tagFor(baseImage, STACK)}`);
      } else {
        expect(run.args).not.toContain("--base-image-uri");
      }
    }
  });

  it("with nothing changed, the plan is empty and an apply runs no build", () => {
    expect(terraform(tfDir, ["plan", "-detailed-exitcode", "-input=false"], { env }).status).toBe(0);
    apply();
    expect(newRuns()).toEqual([]);
  });

  it("a handler edit replaces exactly that Lambda's build", async () => {
    fs.appendFileSync(copy.file("infra/upload_images/handler/naming.py"), "\n# edited\n");
    await synthAndConfigure();
    apply();
    expect(names(newRuns())).toEqual(["portfolio-upload-images-prod"]);
  });

  it("a base package edit rebuilds that base, the base built FROM it and every image on them, bases first", async () => {
    fs.appendFileSync(copy.file("receipt_dynamo/receipt_dynamo/models.py"), "\n# edited\n");
    await synthAndConfigure();
    apply();
    const runs = newRuns();
    // The standalone image carries every package in its own context, so it rebuilds too.
    expect(names(runs)).toEqual(ALL_IMAGES);
    expectBasesFirst(runs);
  });

  it("a failed build fails the apply, taints its resource and skips the images built on it; the next apply runs them", async () => {
    const stack = () => synth.stacks[STACK]!;
    fs.appendFileSync(copy.file("receipt_label/receipt_label/__init__.py"), "\n# edited\n");
    await synthAndConfigure();
    const [labelRepoId] = Object.entries(resourcesOf(stack(), "aws_ecr_repository")).find(([, r]) => r.name === "portfolio-base-receipt-label-prod")!;
    fs.writeFileSync(failFile, `${placeholder(`aws_ecr_repository.${labelRepoId}.repository_url`)}\n`);
    const failed = apply(true);
    expect(failed.status).not.toBe(0);
    expect(failed.stdout + failed.stderr).toMatch(/local-exec provisioner error|exit status 1/);
    let runs = newRuns();
    expect(runs.filter((r) => r.exit !== 0).map((r) => repositoryOf(stack(), r.args))).toEqual(["portfolio-base-receipt-label-prod"]);
    // The images built FROM it did not start; the standalone image (no base) still built.
    expect(names(runs)).toEqual(["portfolio-base-receipt-label-prod", "portfolio-create-labels-standalone-prod"]);

    const state = JSON.parse(terraform(tfDir, ["show", "-json"], { env }).stdout) as { values: { root_module: { resources: { address: string; tainted?: boolean }[] } } };
    const tainted = state.values.root_module.resources.filter((r) => r.tainted).map((r) => resourcesOf(stack(), "terraform_data")[r.address.replace(/^terraform_data\./, "")]!);
    expect(tainted.map((t) => repositoryOf(stack(), localExecArgv(t.provisioner[0]["local-exec"].command as string)))).toEqual(["portfolio-base-receipt-label-prod"]);

    fs.rmSync(failFile);
    apply();
    runs = newRuns();
    expect(names(runs)).toEqual(["portfolio-base-receipt-label-prod", "portfolio-create-labels-prod", "portfolio-upload-images-prod"]);
    expectBasesFirst(runs);
    expect(terraform(tfDir, ["plan", "-detailed-exitcode", "-input=false"], { env }).status).toBe(0);
  });
});

describeWithTerraform("every stack's build triggers run through real Terraform", () => {
  let copy: ExampleCopy;
  let tmp: string;
  const synths: Partial<Record<"example" | "codebuild", SynthResult>> = {};
  const CASES = [
    { name: "example dev (Docker bases, stable tags)", stack: "dev", variant: "example" },
    { name: "example prod (Docker bases)", stack: "prod", variant: "example" },
    { name: "CodeBuild bases, dev (stable base tags)", stack: "dev", variant: "codebuild" },
  ] as const;

  beforeAll(async () => {
    copy = copyExample({ prefix: "tf-apply-stacks-" });
    tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "tf-apply-stacks-")));
    writeFakeNode(path.join(tmp, "bin"));
    synths.example = await synthExample(copy.dir, path.join(tmp, "out-example"));
    let text = fs.readFileSync(copy.manifest, "utf8");
    text = text.replace("    platforms: [linux/arm64]\n", "    platforms: [linux/arm64]\n    builder: codebuild\n");
    text = text.replace("    baseImage: receipt-dynamo\nlambdas:", "    baseImage: receipt-dynamo\n    builder: codebuild\nlambdas:");
    fs.writeFileSync(path.join(copy.dir, "codebuild-bases.yaml"), text);
    synths.codebuild = await synthExample(copy.dir, path.join(tmp, "out-codebuild"), { manifest: path.join(copy.dir, "codebuild-bases.yaml") });
  }, 120_000);
  afterAll(() => {
    copy?.cleanup();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it.each(CASES.map((c, i) => ({ ...c, i })))("$name: one build per trigger, tagged as analysed, --force exactly for mutable stable tags", ({ name, stack: stackName, variant, i }) => {
    const synth = synths[variant]!;
    const stack = synth.stacks[stackName]!;
    const dir = path.join(tmp, `terraform-${i}`);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, "main.tf.json"), JSON.stringify(triggersConfig(stack)));
    const log = path.join(tmp, `runs-${i}.jsonl`);
    const env = { PATH: `${path.join(tmp, "bin")}${path.delimiter}${process.env.PATH}`, FAKE_NODE_LOG: log, FAKE_NODE_FAIL: path.join(tmp, "no-failures") };
    terraform(dir, ["init", "-input=false"], { env });
    terraform(dir, ["apply", "-auto-approve", "-input=false"], { env });
    const runs = fs.readFileSync(log, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Run);
    expect(runs.length, name).toBe(Object.keys(resourcesOf(stack, "terraform_data")).length);
    for (const run of runs) {
      const repository = repositoryOf(stack, run.args);
      const image = synth.analysis.images.find((img) => repository === (img.spec.kind === "base" ? `portfolio-base-${img.spec.name}-${stackName}` : `portfolio-${img.spec.name}-${stackName}`))!;
      const tag = synth.analysis.tagFor(image, stackName);
      expect(flagValue(run.args, "--image-tag"), `${name}: ${repository}`).toBe(tag);
      expect(run.args.includes("--force"), `${name}: ${repository} --force`).toBe(tag === "stable");
      if (image.spec.baseImage) expect(flagValue(run.args, "--base-image-uri"), repository).toMatch(/^<(docker_image\.[^.]+\.name|aws_ecr_repository\.[^.]+\.repository_url)>(:(stable|sha-[0-9a-f]{12}))?$/);
    }
  });
});
