// The package as another CDKTF project gets it: `npm run build && npm pack`, installed from the
// tarball into a scratch project, used with plain node (no tsx), synthesized by the cdktf CLI.
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

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

/** The packed tarball, built once for every describe of this file. */
let packed: { scratch: string; tarball: string } | undefined;
function pack(): { scratch: string; tarball: string } {
  if (!packed) {
    const scratch = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "pack-")));
    execFileSync("npm", ["run", "build"], { cwd: REPO, stdio: "pipe" });
    const tarball = execFileSync("npm", ["pack", "--ignore-scripts", "--pack-destination", scratch], { cwd: REPO, encoding: "utf8" }).trim().split("\n").pop()!;
    packed = { scratch, tarball };
  }
  return packed;
}
afterAll(() => {
  if (packed) fs.rmSync(packed.scratch, { recursive: true, force: true });
});

/** Installs the tarball into `project` as a user would, the peers linked from this repository. */
function installInto(project: string, tarball: string): void {
  // The package's own dependencies come from the registry (or npm's cache); cdktf, constructs and
  // the providers are peers the user already has: here, this repository's.
  execFileSync("npm", ["install", "--save-dev", "--prefer-offline", "--no-audit", "--no-fund", "--legacy-peer-deps", tarball], { cwd: project, stdio: "pipe" });
  for (const peer of ["cdktf", "constructs", "@cdktf/provider-aws", "@cdktf/provider-docker"]) {
    const link = path.join(project, "node_modules", peer);
    fs.mkdirSync(path.dirname(link), { recursive: true });
    fs.symlinkSync(path.join(REPO, "node_modules", peer), link);
  }
}

describe("npm pack → install → cdktf synth in a scratch project", () => {
  let scratch: string;
  let project: string;
  beforeAll(() => {
    const { tarball } = pack();
    scratch = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "pack-own-")));
    project = path.join(scratch, "shop");
    fs.mkdirSync(project);
    // The user's monorepo files: the example's base image, shared package and service.
    for (const dir of ["docker", "packages", "services"]) fs.cpSync(path.join(OWN_STACK, dir), path.join(project, dir), { recursive: true });
    fs.writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "shop", private: true, type: "module" }));
    fs.writeFileSync(path.join(project, "cdktf.json"), JSON.stringify({ language: "typescript", app: "node main.mjs", sendCrashReports: "false", terraformProviders: [] }));
    fs.writeFileSync(path.join(project, "main.mjs"), USER_APP);
    installInto(project, path.join(pack().scratch, tarball));
  }, 300_000);
  afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

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
    expect(fn).toMatchObject({ package_type: "Image", function_name: "shop-orders-fn", environment: { variables: { TABLE_NAME: "${aws_dynamodb_table.orders-table.name}" } } });
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
    const { scratch: packDir, tarball } = pack();
    scratch = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "init-mono-")));
    mono = path.join(scratch, "mono");
    home = path.join(scratch, "home");
    fs.mkdirSync(home);
    // A monorepo of the example's shape: Python packages, base image Dockerfiles, Lambda services.
    fs.cpSync(path.join(REPO, "example"), mono, { recursive: true });
    fs.rmSync(path.join(mono, "images.yaml"));
    fs.writeFileSync(path.join(mono, "package.json"), JSON.stringify({ name: "mono", private: true }));
    fs.writeFileSync(path.join(mono, ".gitignore"), ".venv/\n");
    installInto(mono, path.join(packDir, tarball));
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
