// The package as other CDKTF projects get it: `npm run build && npm pack` once, the tarball
// installed into scratch projects of the shapes users have, each synthesized by the cdktf CLI:
//   - README's example as an ES module run by plain node (no tsx);
//   - a project as `cdktf init --template=typescript` makes it: CommonJS, run by ts-node, TypeScript 5;
//   - an ES module app in infra/ of a git monorepo, two stacks, a Lambda in one built FROM a base in
//     the other;
// and the package's types under TypeScript's node10, node16 and bundler module resolutions.
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dependsOnProblems } from "./helpers/depends-on.ts";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const OWN_STACK = path.join(REPO, "examples", "own-stack");

/**
 * What a user writes: README's example ("Use the constructs in your own stacks"), one base image
 * and one Lambda built FROM it beside a table, in their own stack. Taken from README, so the
 * README's example is the one that is shown to work.
 */
const USER_APP = (() => {
  const readme = fs.readFileSync(path.join(REPO, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Use the constructs in your own stacks"));
  const block = /```ts\n([\s\S]*?)```/.exec(section);
  if (!block) throw new Error("README has no ts example under 'Use the constructs in your own stacks'");
  return block[1]!;
})();

const PEERS = ["cdktf", "constructs", "@cdktf/provider-aws", "@cdktf/provider-docker"];
/** cdktf-cli's own template for `cdktf init --template=typescript` (cdktf-cli is pinned with cdktf). */
const TS_TEMPLATE = path.join(REPO, "node_modules", "cdktf-cli", "bundle", "templates", "typescript");

/**
 * Installs the tarball, and `devTools` from the registry (or npm's cache), into `project`. cdktf,
 * constructs and the providers are peers the user already has: here, this repository's.
 */
function install(project: string, devTools: string[] = []): void {
  execFileSync("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--legacy-peer-deps", tarball, ...devTools], { cwd: project, stdio: "pipe" });
  for (const peer of PEERS) {
    const link = path.join(project, "node_modules", peer);
    fs.mkdirSync(path.dirname(link), { recursive: true });
    fs.symlinkSync(path.join(REPO, "node_modules", peer), link);
  }
}

/** Runs a command as the user would in `cwd`: not under vitest's NODE_OPTIONS. */
function run(command: string, args: string[], cwd: string) {
  const env: NodeJS.ProcessEnv = { ...process.env, CHECKPOINT_DISABLE: "1", CI: "1" };
  delete env.NODE_OPTIONS;
  const result = spawnSync(command, args, { cwd, env, encoding: "utf8", timeout: 240_000 });
  return { ...result, output: `${command} ${args.join(" ")} (exit ${result.status})\n${result.stdout}\n${result.stderr}` };
}

/** `cdktf synth` with the CLI the user's project has (this repository's, pinned with cdktf). */
const cdktfSynth = (cwd: string) => run(path.join(REPO, "node_modules", ".bin", "cdktf"), ["synth"], cwd);
/** The project's own TypeScript (5.x: ts-node needs its JavaScript API). */
const tsc = (cwd: string, ...args: string[]) => run(path.join(cwd, "node_modules", ".bin", "tsc"), args.length > 0 ? args : ["--noEmit"], cwd);

type TerraformJson = Record<string, Record<string, Record<string, Record<string, unknown>>>>;
/** Every stack `cdktf synth` wrote, by name, from cdktf.out/manifest.json. */
function synthesizedStacks(project: string): Record<string, TerraformJson> {
  const out = path.join(project, "cdktf.out");
  const manifest = JSON.parse(fs.readFileSync(path.join(out, "manifest.json"), "utf8")) as { stacks: Record<string, { synthesizedStackPath: string }> };
  return Object.fromEntries(Object.entries(manifest.stacks).map(([name, s]) => [name, JSON.parse(fs.readFileSync(path.join(out, s.synthesizedStackPath), "utf8")) as TerraformJson]));
}
const resourcesOf = (stack: TerraformJson, type: string) => Object.values(stack.resource?.[type] ?? {});


/**
 * Type-level uses of the package a user's code makes; each `@ts-expect-error` is itself an error
 * when the package's types do not load (everything `any`), so a passing typecheck shows they did.
 */
const TYPES_USE = `import { App, TerraformStack } from "cdktf";
import { BaseImage, LambdaImage, LambdaImageFunction, type LambdaImageProps } from "lambda-image-builds";

const stack = new TerraformStack(new App(), "types");
export function images(): string {
  const base = new BaseImage(stack, "base", { dockerfile: "docker/base.Dockerfile", packages: ["packages/common"] });
  const props: LambdaImageProps = { dockerfile: "services/orders/Dockerfile", context: "services/orders", baseImage: base };
  const image = new LambdaImage(stack, "image", props);
  new LambdaImageFunction(stack, "fn", { image, timeout: 30 });
  // @ts-expect-error: dockerfile is required
  new LambdaImage(stack, "no-dockerfile", {});
  // @ts-expect-error: memorySize is a number
  new LambdaImageFunction(stack, "bad-memory", { image, memorySize: "512" });
  const uri: string = image.imageUri;
  return uri;
}
`;

// One build and one tarball for every project below (a second `npm run build` would remove dist/
// under the first).
let scratch: string;
let tarball: string;
beforeAll(() => {
  scratch = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "pack-")));
  execFileSync("npm", ["run", "build"], { cwd: REPO, stdio: "pipe" });
  const name = execFileSync("npm", ["pack", "--ignore-scripts", "--pack-destination", scratch], { cwd: REPO, encoding: "utf8" }).trim().split("\n").pop()!;
  tarball = path.join(scratch, name);
}, 300_000);
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

describe("npm pack → install → cdktf synth in a scratch project", () => {
  let project: string;
  beforeAll(() => {
    project = path.join(scratch, "shop");
    fs.mkdirSync(project);
    // The user's monorepo files: the example's base image, shared package and service.
    for (const dir of ["docker", "packages", "services"]) fs.cpSync(path.join(OWN_STACK, dir), path.join(project, dir), { recursive: true });
    fs.writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "shop", private: true, type: "module" }));
    fs.writeFileSync(path.join(project, "cdktf.json"), JSON.stringify({ language: "typescript", app: "node main.mjs", sendCrashReports: "false", terraformProviders: [] }));
    fs.writeFileSync(path.join(project, "main.mjs"), USER_APP);
    // The package's own dependencies come from the registry (or npm's cache); cdktf, constructs and
    // the providers are peers the user already has: here, this repository's.
    install(project);
  }, 300_000);

  it("the user's construct code is at most 15 lines, with no deep imports of the package and no precomputed hashes", () => {
    const lines = USER_APP.trim().split("\n").filter((l) => l.trim() !== "");
    expect(lines.length).toBeLessThanOrEqual(15);
    expect(USER_APP).not.toMatch(/lambda-image-builds\//);
    expect(USER_APP).not.toMatch(/\bhash\b|\.hash|analyze|archive|sha-/i);
  });

  it("installs compiled JavaScript with declarations, and no TypeScript sources", () => {
    const installed = path.join(project, "node_modules", "lambda-image-builds");
    expect(fs.existsSync(path.join(installed, "dist", "src", "index.js"))).toBe(true);
    expect(fs.existsSync(path.join(installed, "dist", "src", "index.d.ts"))).toBe(true);
    expect(fs.existsSync(path.join(installed, "dist", "runner", "runner.cjs"))).toBe(true);
    expect(fs.existsSync(path.join(installed, "src"))).toBe(false);
  });

  it("`cdktf synth` there writes the stack: the image built FROM the base, the function on it, the runner shipped with it", () => {
    const env: NodeJS.ProcessEnv = { ...process.env, CHECKPOINT_DISABLE: "1", CI: "1" };
    delete env.NODE_OPTIONS;
    const result = spawnSync(path.join(REPO, "node_modules", ".bin", "cdktf"), ["synth"], { cwd: project, env, encoding: "utf8" });
    expect(result.status, `${result.stdout}\n${result.stderr}`).toBe(0);
    const stackDir = path.join(project, "cdktf.out", "stacks", "shop");
    const stack = JSON.parse(fs.readFileSync(path.join(stackDir, "cdk.tf.json"), "utf8"));
    const [fn] = Object.values(stack.resource.aws_lambda_function) as Record<string, unknown>[];
    expect(fn).toMatchObject({ package_type: "Image", function_name: "shop-shop-orders-fn", environment: { variables: { TABLE_NAME: "${aws_dynamodb_table.orders-table.name}" } } });
    expect(String(fn!.image_uri)).toMatch(/:sha-[0-9a-f]{12}$/);
    const [trigger] = Object.values(stack.resource.terraform_data) as { provisioner: { "local-exec": { command: string } }[] }[];
    const command = trigger!.provisioner[0]!["local-exec"].command;
    expect(command).toContain("--base-image-uri");
    // The bundled runner the command names is in the stack directory: the stack is self-contained.
    const runner = /^node (\S+runner\.cjs) /.exec(command)![1]!;
    expect(fs.existsSync(path.join(stackDir, runner))).toBe(true);
    // And the context archive the S3 object uploads holds the service's files only.
    const [object] = Object.values(stack.resource.aws_s3_object) as { source: string }[];
    expect(fs.statSync(path.join(stackDir, object!.source)).size).toBeGreaterThan(0);
    expect(fs.existsSync(path.join(project, "cdktf.out", "images.snapshot.json"))).toBe(true);
    expect(dependsOnProblems(stack)).toEqual([]);
  });

  it("`npx lambda-images plan` there runs the installed command (its one-file bundle) on the construct app", () => {
    expect(fs.existsSync(path.join(project, "node_modules", "lambda-image-builds", "dist", "src", "cli", "main.bundle.cjs"))).toBe(true);
    const env: NodeJS.ProcessEnv = { ...process.env, CHECKPOINT_DISABLE: "1" };
    delete env.NODE_OPTIONS;
    const result = spawnSync(path.join(project, "node_modules", ".bin", "lambda-images"), ["plan", "--json"], { cwd: project, env, encoding: "utf8" });
    expect(result.status, result.stderr).toBe(0);
    const plan = JSON.parse(result.stdout) as { snapshot: string; summary: { images: number; unchanged: number } };
    // Right after the synth above: found, and nothing to rebuild.
    expect(plan.snapshot).toBe("found");
    expect(plan.summary.images).toBeGreaterThan(0);
    expect(plan.summary.unchanged).toBe(plan.summary.images);
  });
});

describe("a project as `cdktf init --template=typescript` makes it: CommonJS, ts-node, TypeScript 5", () => {
  let project: string;
  beforeAll(() => {
    project = path.join(scratch, "cjs-shop");
    fs.mkdirSync(project);
    // The template's files as `cdktf init` fills them in (package.json has no "type": CommonJS).
    const fill = (file: string) =>
      fs
        .readFileSync(path.join(TS_TEMPLATE, file), "utf8")
        .replaceAll("{{ $base }}", "cjs-shop")
        .replaceAll("{{projectId}}", "00000000-0000-4000-8000-000000000000")
        .replaceAll("{{sendCrashReports}}", "false")
        .replaceAll("{{futureFlags}}", "");
    for (const file of ["package.json", "cdktf.json", "tsconfig.json"]) fs.writeFileSync(path.join(project, file), `${JSON.stringify(JSON.parse(fill(file)), null, 2)}\n`);
    // The template's main.ts with the user's constructs where it says "define resources here",
    // imported the way CommonJS cdktf projects import the provider (no index.js).
    const main = fill("main.ts")
      .replace(
        'import { App, TerraformStack } from "cdktf";',
        `import { App, TerraformStack } from "cdktf";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider";
import { DynamodbTable } from "@cdktf/provider-aws/lib/dynamodb-table";
import { BaseImage, LambdaImage, LambdaImageFunction } from "lambda-image-builds";`,
      )
      .replace(
        "    // define resources here",
        `    new AwsProvider(this, "aws", { region: "us-east-1" });
    const table = new DynamodbTable(this, "orders-table", { name: "orders", hashKey: "pk", attribute: [{ name: "pk", type: "S" }], billingMode: "PAY_PER_REQUEST" });
    const common = new BaseImage(this, "common", { dockerfile: "docker/base.Dockerfile", packages: ["packages/common"] });
    const image = new LambdaImage(this, "orders", { dockerfile: "services/orders/Dockerfile", context: "services/orders", baseImage: common });
    new LambdaImageFunction(this, "orders-fn", { image, environment: { TABLE_NAME: table.name } });`,
      );
    expect(main).toContain('from "lambda-image-builds"');
    expect(main).toContain("new LambdaImageFunction(this");
    fs.writeFileSync(path.join(project, "main.ts"), main);
    fs.writeFileSync(path.join(project, "types-use.ts"), TYPES_USE);
    for (const dir of ["docker", "packages", "services"]) fs.cpSync(path.join(OWN_STACK, dir), path.join(project, dir), { recursive: true });
    // What the template's setup installs for running and typechecking main.ts.
    install(project, ["ts-node@10", "typescript@5", "@types/node@20"]);
  }, 300_000);

  it("is the template's shape: CommonJS package.json, tsconfig module CommonJS, app `npx ts-node main.ts`, TypeScript 5", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(project, "package.json"), "utf8")) as { type?: string };
    expect(pkg.type).toBeUndefined();
    const tsconfig = JSON.parse(fs.readFileSync(path.join(project, "tsconfig.json"), "utf8")) as { compilerOptions: { module: string } };
    expect(tsconfig.compilerOptions.module).toBe("CommonJS");
    expect(JSON.parse(fs.readFileSync(path.join(project, "cdktf.json"), "utf8"))).toMatchObject({ app: "npx ts-node main.ts" });
    expect(tsc(project, "--version").stdout).toMatch(/^Version 5\./);
  });

  it("`tsc --noEmit` passes with the template's tsconfig", () => {
    const result = tsc(project);
    expect(result.status, result.output).toBe(0);
  }, 240_000);

  it("the types load under moduleResolution node10 and node16 (CommonJS); under node16 our CommonJS declarations are checked too", () => {
    // skipLibCheck as the template has it, but for one run: checking every declaration file the
    // providers bring costs ~10 s of CPU each time.
    for (const [name, compilerOptions] of [
      ["node10", { module: "commonjs", moduleResolution: "node", skipLibCheck: true }],
      ["node16", { module: "node16", moduleResolution: "node16", skipLibCheck: false }],
    ] as const) {
      const file = `tsconfig.${name}.json`;
      fs.writeFileSync(path.join(project, file), JSON.stringify({ extends: "./tsconfig.json", compilerOptions: { ...compilerOptions, esModuleInterop: true, noEmit: true, incremental: false } }));
      const result = tsc(project, "-p", file);
      expect(result.status, `${name}: ${result.output}`).toBe(0);
    }
  }, 240_000);

  it("`cdktf synth` (ts-node) writes the stack: the image built FROM the base, the function on it, the runner shipped with it", () => {
    const result = cdktfSynth(project);
    expect(result.status, result.output).toBe(0);
    const stacks = synthesizedStacks(project);
    expect(Object.keys(stacks)).toEqual(["cjs-shop"]);
    const stack = stacks["cjs-shop"]!;
    const [fn, ...more] = resourcesOf(stack, "aws_lambda_function");
    expect(more).toHaveLength(0);
    expect(fn).toMatchObject({ package_type: "Image", environment: { variables: { TABLE_NAME: "${aws_dynamodb_table.orders-table.name}" } } });
    expect(String(fn!.image_uri)).toMatch(/:sha-[0-9a-f]{12}$/);
    // A repository each for the base and the Lambda image.
    expect(resourcesOf(stack, "aws_ecr_repository")).toHaveLength(2);
    const [trigger] = resourcesOf(stack, "terraform_data") as { provisioner: { "local-exec": { command: string } }[] }[];
    const command = trigger!.provisioner[0]!["local-exec"].command;
    expect(command).toContain("--base-image-uri");
    // The CommonJS flavour found the package's prebuilt runner (dist/runner) and shipped it.
    const stackDir = path.join(project, "cdktf.out", "stacks", "cjs-shop");
    const runner = /^node (\S+runner\.cjs) /.exec(command)![1]!;
    expect(fs.existsSync(path.join(stackDir, runner))).toBe(true);
    const [object] = resourcesOf(stack, "aws_s3_object") as { source: string }[];
    expect(fs.statSync(path.join(stackDir, object!.source)).size).toBeGreaterThan(0);
    expect(dependsOnProblems(stack)).toEqual([]);
  }, 240_000);

  it("plain node loads it with require() (without require(esm), as Node before 20.19) and with import(), the same exports", () => {
    // Node 20.19+ can require() an ES module; the flag turns that off, as older 20.x have it.
    const noRequireEsm = process.allowedNodeEnvironmentFlags.has("--experimental-require-module") ? ["--no-experimental-require-module"] : [];
    const required = run(process.execPath, [...noRequireEsm, "-e", 'console.log(JSON.stringify(Object.keys(require("lambda-image-builds")).sort()))'], project);
    expect(required.status, required.output).toBe(0);
    const imported = run(process.execPath, ["--input-type=module", "-e", 'console.log(JSON.stringify(Object.keys(await import("lambda-image-builds")).sort()))'], project);
    expect(imported.status, imported.output).toBe(0);
    const names = JSON.parse(required.stdout) as string[];
    expect(names).toEqual(expect.arrayContaining(["BaseImage", "BaseImageSet", "LambdaImage", "LambdaImageFunction", "ImageBuildEnvironment", "defineManifest"]));
    expect(JSON.parse(imported.stdout)).toEqual(names);
    // import() from CommonJS code (a CommonJS project's dynamic import) works too.
    const dynamic = run(process.execPath, ["-e", 'import("lambda-image-builds").then((m) => console.log(typeof m.LambdaImage))'], project);
    expect(dynamic.stdout.trim(), dynamic.output).toBe("function");
  }, 120_000);
});

describe("an ES module app in infra/ of a git monorepo: two stacks, a Lambda in one built FROM a base in the other", () => {
  let monorepo: string;
  let infra: string;
  beforeAll(() => {
    monorepo = path.join(scratch, "monorepo");
    infra = path.join(monorepo, "infra");
    fs.mkdirSync(infra, { recursive: true });
    // The Dockerfiles and packages live at the monorepo's top, beside infra/.
    for (const dir of ["docker", "packages", "services"]) fs.cpSync(path.join(OWN_STACK, dir), path.join(monorepo, dir), { recursive: true });
    fs.writeFileSync(path.join(infra, "package.json"), JSON.stringify({ name: "infra", private: true, type: "module" }, null, 2));
    fs.writeFileSync(path.join(infra, "cdktf.json"), JSON.stringify({ language: "typescript", app: "npx tsx main.ts", sendCrashReports: "false", terraformProviders: [], terraformModules: [], context: {} }, null, 2));
    // Paths relative to the monorepo's root, as its Dockerfiles' COPY lines are.
    fs.writeFileSync(
      path.join(infra, "main.ts"),
      `import { App, TerraformStack } from "cdktf";
import type { Construct } from "constructs";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider/index.js";
import { BaseImage, LambdaImage, LambdaImageFunction } from "lambda-image-builds";

/** The team's base image, shared by the service stacks. */
class SharedStack extends TerraformStack {
  readonly common: BaseImage;
  constructor(scope: Construct, id: string) {
    super(scope, id);
    new AwsProvider(this, "aws", { region: "us-east-1" });
    this.common = new BaseImage(this, "common", { dockerfile: "docker/base.Dockerfile", packages: ["packages/common"] });
  }
}

/** A service whose Lambda image is built FROM the shared stack's base. */
class OrdersStack extends TerraformStack {
  constructor(scope: Construct, id: string, base: BaseImage) {
    super(scope, id);
    new AwsProvider(this, "aws", { region: "us-east-1" });
    const image = new LambdaImage(this, "orders", { dockerfile: "services/orders/Dockerfile", context: "services/orders", baseImage: base });
    new LambdaImageFunction(this, "orders-fn", { image, memorySize: 512 });
  }
}

const app = new App();
const shared = new SharedStack(app, "shared");
new OrdersStack(app, "orders", shared.common);
app.synth();
`,
    );
    fs.writeFileSync(path.join(infra, "types-use.ts"), TYPES_USE);
    const strict = { target: "ES2022", lib: ["ES2022"], types: ["node"], strict: true, noEmit: true, skipLibCheck: true };
    fs.writeFileSync(path.join(infra, "tsconfig.json"), JSON.stringify({ compilerOptions: { ...strict, module: "node16", moduleResolution: "node16" }, include: ["*.ts"] }, null, 2));
    fs.writeFileSync(path.join(infra, "tsconfig.bundler.json"), JSON.stringify({ compilerOptions: { ...strict, module: "esnext", moduleResolution: "bundler" }, include: ["*.ts"] }, null, 2));
    const git = (...args: string[]) => execFileSync("git", args, { cwd: monorepo, stdio: "pipe", env: { ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@example.com", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@example.com" } });
    git("init", "-q");
    fs.writeFileSync(path.join(monorepo, ".gitignore"), "node_modules/\ncdktf.out/\n");
    install(infra, ["tsx@4", "typescript@5", "@types/node@20"]);
    git("add", "-A");
    git("commit", "-qm", "monorepo");
  }, 300_000);

  it("typechecks under moduleResolution node16 and bundler", () => {
    for (const file of ["tsconfig.json", "tsconfig.bundler.json"]) {
      const result = tsc(infra, "-p", file);
      expect(result.status, `${file}: ${result.output}`).toBe(0);
    }
  }, 240_000);

  it("`cdktf synth` in infra/ writes both stacks with paths from the monorepo's root, every depends_on a whole object of its own stack, the base's hash cascading", () => {
    const result = cdktfSynth(infra);
    expect(result.status, result.output).toBe(0);
    const stacks = synthesizedStacks(infra);
    expect(Object.keys(stacks).sort()).toEqual(["orders", "shared"]);
    const [fn, ...more] = resourcesOf(stacks.orders!, "aws_lambda_function");
    expect(more).toHaveLength(0);
    expect(fn).toMatchObject({ package_type: "Image", memory_size: 512 });
    expect(String(fn!.image_uri)).toMatch(/:sha-[0-9a-f]{12}$/);
    // The base is built in the shared stack only; the Lambda image in the orders stack only.
    expect(resourcesOf(stacks.shared!, "aws_ecr_repository")).toHaveLength(1);
    expect(resourcesOf(stacks.orders!, "aws_ecr_repository")).toHaveLength(1);
    expect(resourcesOf(stacks.shared!, "aws_lambda_function")).toHaveLength(0);
    for (const [name, stack] of Object.entries(stacks)) expect(dependsOnProblems(stack), `stack ${name}`).toEqual([]);

    // A change to the shared package rebuilds the base, and the Lambda image built FROM it.
    const before = fn!.image_uri;
    fs.appendFileSync(path.join(monorepo, "packages", "common", "src", "common", "__init__.py"), "\nCHANGED = True\n");
    const again = cdktfSynth(infra);
    expect(again.status, again.output).toBe(0);
    const [changed] = resourcesOf(synthesizedStacks(infra).orders!, "aws_lambda_function");
    expect(String(changed!.image_uri)).toMatch(/:sha-[0-9a-f]{12}$/);
    expect(changed!.image_uri).not.toBe(before);
  }, 360_000);
});

describe("npx lambda-images init in a user's monorepo, then cdktf synth and plan there", () => {
  let scratch: string;
  let mono: string;
  let home: string;
  const env = (): NodeJS.ProcessEnv => {
    const e: NodeJS.ProcessEnv = { ...process.env, CHECKPOINT_DISABLE: "1", CI: "1", HOME: home };
    for (const name of ["NODE_OPTIONS", "IMAGES_MANIFEST", "LAMBDA_IMAGES_CACHE_DIR", "CDKTF_OUTDIR"]) delete e[name];
    return e;
  };
  beforeAll(() => {
    scratch = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "init-mono-")));
    mono = path.join(scratch, "mono");
    home = path.join(scratch, "home");
    fs.mkdirSync(home);
    // A monorepo of the example's shape: Python packages, base image Dockerfiles, Lambda services.
    fs.cpSync(path.join(REPO, "example"), mono, { recursive: true });
    fs.rmSync(path.join(mono, "images.yaml"));
    fs.writeFileSync(path.join(mono, "package.json"), JSON.stringify({ name: "mono", private: true }));
    fs.writeFileSync(path.join(mono, ".gitignore"), ".venv/\n");
    // As a dev dependency of the monorepo, as README's "Use it on your own repository" says.
    execFileSync("npm", ["install", "--save-dev", "--prefer-offline", "--no-audit", "--no-fund", "--legacy-peer-deps", tarball], { cwd: mono, stdio: "pipe" });
    for (const peer of PEERS) {
      const link = path.join(mono, "node_modules", peer);
      fs.mkdirSync(path.dirname(link), { recursive: true });
      fs.symlinkSync(path.join(REPO, "node_modules", peer), link);
    }
  }, 300_000);
  afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

  it("init writes cdktf.json running the installed app, a proposed images.yaml and ignore entries; synth and plan then work with everything inside the monorepo", () => {
    const init = spawnSync(path.join(mono, "node_modules", ".bin", "lambda-images"), ["init"], { cwd: mono, env: env(), encoding: "utf8" });
    expect(init.status, init.stderr).toBe(0);
    const cdktf = JSON.parse(fs.readFileSync(path.join(mono, "cdktf.json"), "utf8"));
    expect(cdktf.app).toBe("node node_modules/lambda-image-builds/bin/app.mjs");
    expect(fs.readFileSync(path.join(mono, "images.yaml"), "utf8")).toMatch(/# REVIEW/);
    expect(fs.readFileSync(path.join(mono, ".gitignore"), "utf8")).toMatch(/^\.venv\/\n[\s\S]*\ncdktf\.out\/\n/);
    // A second init does not overwrite.
    const again = spawnSync(path.join(mono, "node_modules", ".bin", "lambda-images"), ["init"], { cwd: mono, env: env(), encoding: "utf8" });
    expect(again.status).toBe(1);
    expect(again.stderr.trim().split("\n")).toEqual([expect.stringMatching(/already exist; nothing was written\. Fix: run lambda-images init --force/)]);

    const synth = spawnSync(path.join(REPO, "node_modules", ".bin", "cdktf"), ["synth"], { cwd: mono, env: env(), encoding: "utf8" });
    expect(synth.status, `${synth.stdout}\n${synth.stderr}`).toBe(0);
    expect(fs.existsSync(path.join(mono, "cdktf.out", "stacks", "dev", "cdk.tf.json"))).toBe(true);
    expect(fs.existsSync(path.join(mono, "cdktf.out", "images.snapshot.json"))).toBe(true);
    expect(fs.existsSync(path.join(mono, "node_modules", ".cache", "lambda-images"))).toBe(true);

    const plan = spawnSync(path.join(mono, "node_modules", ".bin", "lambda-images"), ["plan"], { cwd: mono, env: env(), encoding: "utf8" });
    expect(plan.status, plan.stderr).toBe(0);
    expect(plan.stdout.split("\n")[0]).toMatch(/^0 to rebuild, 0 new, \d+ unchanged/);

    // Nothing outside the monorepo: the scratch directory holds only it and the (empty) home.
    expect(fs.readdirSync(scratch).sort()).toEqual(["home", "mono"]);
    // (The cdktf CLI itself makes ~/.terraform.d, Terraform's per-user directory; npm its cache.)
    expect(fs.readdirSync(home).filter((name) => name !== ".npm" && name !== ".terraform.d")).toEqual([]);
    const userFiles = fs.existsSync(path.join(home, ".terraform.d")) ? fs.readdirSync(path.join(home, ".terraform.d"), { recursive: true }).map(String) : [];
    expect(userFiles.filter((f) => /tfstate|cdktf\.out|lambda-images/.test(f))).toEqual([]);
  }, 300_000);
});
