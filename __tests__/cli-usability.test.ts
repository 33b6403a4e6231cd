// The lambda-images command as a user meets it: each command's own help, options a command does
// not take refused, iam's mistakes in one line, a plan that starts with its summary and stays
// short, Markdown for a pull request, and `init` in a monorepo.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COMMANDS, run, USAGE } from "../src/cli/main.ts";
import { initCommand } from "../src/cli/init.ts";
import { formatPlanMarkdown, formatPlanTable, type Plan, type PlannedImage } from "../src/cli/plan.ts";
import type { ReadSnapshotResult } from "../src/snapshot/snapshot.ts";
import { loadManifest } from "../src/manifest/load.ts";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BIN = path.join(REPO, "bin", "lambda-images.mjs");

function io() {
  let out = "";
  let err = "";
  return { io: { out: { write: (t: string) => (out += t) }, err: { write: (t: string) => (err += t) }, cwd: REPO }, out: () => out, err: () => err };
}

function bin(args: string[], cwd = REPO) {
  const env: NodeJS.ProcessEnv = { ...process.env, CHECKPOINT_DISABLE: "1" };
  delete env.IMAGES_MANIFEST;
  return spawnSync(process.execPath, [BIN, ...args], { cwd, env, encoding: "utf8", timeout: 180_000 });
}

describe("help and options", () => {
  it.each(Object.keys(COMMANDS))("%s --help prints that command's help only", async (command) => {
    const r = io();
    expect(await run([command, "--help"], r.io)).toBe(0);
    expect(r.out()).toMatch(new RegExp(`^Usage: lambda-images ${command}\\b`));
    for (const other of Object.keys(COMMANDS).filter((c) => c !== command)) expect(r.out()).not.toContain(`lambda-images ${other} `);
  });

  it("the global help lists every command and says each takes --help", () => {
    for (const spec of Object.values(COMMANDS)) expect(USAGE).toContain(spec.synopsis);
    expect(USAGE).toContain("Each command takes --help");
  });

  it("an option the command does not take is an error naming the commands that take it (exit 2)", () => {
    const schema = bin(["schema", "--manifest", "x.yaml"]);
    expect(schema.status).toBe(2);
    expect(schema.stderr.split("\n")[0]).toBe("lambda-images schema: --manifest is not an option of schema (plan, graph, iam take it); schema takes --stdout, --file");
    const graph = bin(["graph", "--json"]);
    expect(graph.status).toBe(2);
    expect(graph.stderr).toMatch(/^lambda-images graph: --json is not an option of graph \(plan takes it\)/);
    expect(graph.stderr).toContain("Usage: lambda-images graph");
    expect(fs.existsSync(path.join(REPO, "x.yaml"))).toBe(false);
  });
});

describe("iam: a mistake is one line, no stack trace", () => {
  it.each([
    [["iam", "--stack", "staging", "--manifest", "example/images.yaml"], /^lambda-images iam: --stack staging: no such stack in the manifest\. Fix: use one of dev, prod$/],
    [["iam", "--account", "12", "--manifest", "example/images.yaml"], /^lambda-images iam: --account 12: not an AWS account id\. Fix: /],
    [["iam", "--manifest", "example/nope.yaml"], /^example\/nope\.yaml: \(top level\): the manifest file does not exist\. Fix: /],
  ])("%j", (args, line) => {
    const r = bin(args);
    expect(r.status).toBe(1);
    expect(r.stderr.trimEnd().split("\n")).toEqual([expect.stringMatching(line)]);
  });
});

describe("plan output", () => {
  const image = (name: string, over: Partial<PlannedImage> = {}): PlannedImage => ({
    kind: "lambda",
    name,
    tag: "sha-0123456789ab",
    previousTag: "sha-ba9876543210",
    hash: "0".repeat(64),
    files: 50,
    contextBytes: 2048,
    baseImage: null,
    platforms: ["linux/arm64"],
    status: "unchanged",
    reasons: [],
    ...over,
  });
  const many = Array.from({ length: 43 }, (_, i) => `services/api/module_${String(i).padStart(2, "0")}.py`);
  const busy = image("api", { status: "rebuild", reasons: [{ type: "files", added: [], removed: [], changed: many }] });
  const plan: Plan = {
    snapshot: "found",
    stacks: [
      { name: "dev", images: [busy, image("worker")] },
      { name: "prod", images: [busy, image("worker")] },
    ],
    summary: { images: 4, new: 0, rebuild: 2, unchanged: 2 },
  };
  const found: ReadSnapshotResult = {
    status: "found",
    file: path.join(REPO, "cdktf.out", "images.snapshot.json"),
    snapshot: { format: "lambda-images-snapshot", version: 1, stacks: { dev: { images: { "lambda:api": {} as never } } } } as never,
  };

  it("starts with the summary, shows five changed files and counts the rest, and does not repeat a stack's reasons", () => {
    const text = formatPlanTable(plan, { snapshotNote: "" }, found);
    const lines = text.split("\n");
    expect(lines[0]).toBe("2 to rebuild, 0 new, 2 unchanged (4 images in 2 stacks).");
    expect(lines.filter((l) => /^ +- changed /.test(l))).toHaveLength(5);
    expect(text).toContain("- … and 38 more files (--verbose lists them): 43 changed");
    expect(text).toContain("- the same changes as in stack dev");
    expect(lines.length).toBeLessThanOrEqual(20);
    const verbose = formatPlanTable(plan, { snapshotNote: "", verbose: true }, found);
    expect(verbose.split("\n").filter((l) => /^ +- changed /.test(l))).toHaveLength(43);
  });

  it("says when the last synth came from another manifest", () => {
    const other: ReadSnapshotResult = { ...found, snapshot: { format: "lambda-images-snapshot", version: 1, stacks: { shop: { images: { "lambda:orders": {} as never } } } } as never };
    const fresh: Plan = { ...plan, stacks: plan.stacks.map((s) => ({ ...s, images: s.images.map((i) => ({ ...i, status: "new" as const, reasons: [] })) })) };
    expect(formatPlanTable(fresh, { snapshotNote: "" }, other).split("\n")[1]).toMatch(/^note: the last synth in cdktf\.out came from another manifest or app \(its stacks: shop; none of its images is in this one\)/);
  });

  it("--markdown: the summary in bold, a table of what rebuilds and why, the unchanged folded", () => {
    const md = formatPlanMarkdown(plan, { snapshotNote: "" }, found);
    expect(md).toContain("**2 to rebuild, 0 new, 2 unchanged (4 images in 2 stacks).**");
    expect(md).toContain("| Stack | Image | Status | Tag | Why |");
    expect(md).toMatch(/^\| dev \| lambda `api` \| rebuild \| `sha-0123456789ab` \| changed services\/api\/module_00\.py<br>.*… and 38 more files/m);
    expect(md).toContain("<details><summary>2 unchanged</summary>");
  });
});

describe("init in a monorepo", () => {
  let copy: ExampleCopy;
  beforeAll(() => {
    copy = copyExample({ prefix: "init-" });
    fs.rmSync(copy.manifest);
    fs.writeFileSync(path.join(copy.dir, ".gitignore"), "node_modules\n");
  });
  afterAll(() => copy.cleanup());

  it("writes cdktf.json naming the installed app, an images.yaml proposed from the Dockerfiles, and ignore entries", () => {
    let out = "";
    const code = initCommand({ out: { write: (t: string) => (out += t) }, err: { write: () => 0 }, cwd: copy.dir });
    expect(code).toBe(0);
    const cdktf = JSON.parse(fs.readFileSync(path.join(copy.dir, "cdktf.json"), "utf8"));
    expect(cdktf).toMatchObject({ app: expect.stringMatching(/^node \S*bin\/app\.mjs$/), output: "cdktf.out", context: { manifest: "images.yaml" } });
    expect(path.resolve(copy.dir, cdktf.app.slice("node ".length))).toBe(path.join(REPO, "bin", "app.mjs"));
    const text = fs.readFileSync(path.join(copy.dir, "images.yaml"), "utf8");
    // Bases: the Dockerfiles without CMD; a chained base and the Lambdas on ${BASE_IMAGE_URI}.
    expect(text).toContain("  receipt-dynamo: # REVIEW: a base image");
    expect(text).toMatch(/  receipt-label: # REVIEW[^\n]*\n[^\n]*\n    packages: \[receipt_chroma, receipt_label\] # REVIEW/);
    expect(text).toMatch(/    baseImage: receipt-dynamo # REVIEW: it is built FROM \$\{BASE_IMAGE_URI\}/);
    expect(text).toMatch(/  sync-dynamo: # REVIEW[^\n]*\n    dockerfile: infra\/sync_dynamo\/Dockerfile\n    baseImage: receipt-label # REVIEW/);
    // Every guess is marked.
    for (const line of text.split("\n").filter((l) => l !== "  dev:" && /^(project|  \S+:|    (packages|baseImage|memorySize|timeout|region):)/.test(l))) expect(line).toContain("# REVIEW");
    // And it is a manifest that loads.
    expect(loadManifest(path.join(copy.dir, "images.yaml")).lambdas.map((l) => l.name)).toContain("sync-dynamo");
    const ignore = fs.readFileSync(path.join(copy.dir, ".gitignore"), "utf8");
    expect(ignore.startsWith("node_modules\n")).toBe(true);
    expect(ignore).toContain("\ncdktf.out/\n");
    expect(ignore).not.toContain("\nnode_modules/\n");
    expect(out).toContain("npx cdktf synth");
  });

  it("never overwrites without --force, and writes nothing then", () => {
    fs.writeFileSync(path.join(copy.dir, "images.yaml"), "# mine\n");
    const before = fs.readFileSync(path.join(copy.dir, ".gitignore"), "utf8");
    expect(() => initCommand({ out: { write: () => 0 }, err: { write: () => 0 }, cwd: copy.dir })).toThrow(
      /^lambda-images init: cdktf\.json and images\.yaml already exist; nothing was written\. Fix: run lambda-images init --force/,
    );
    expect(fs.readFileSync(path.join(copy.dir, "images.yaml"), "utf8")).toBe("# mine\n");
    expect(fs.readFileSync(path.join(copy.dir, ".gitignore"), "utf8")).toBe(before);
    initCommand({ out: { write: () => 0 }, err: { write: () => 0 }, cwd: copy.dir }, { force: true });
    expect(fs.readFileSync(path.join(copy.dir, "images.yaml"), "utf8")).toContain("# REVIEW");
    // Ignore entries are added once.
    expect(fs.readFileSync(path.join(copy.dir, ".gitignore"), "utf8")).toBe(before);
  });

  it("refuses to run in the package's own checkout", () => {
    expect(() => initCommand({ out: { write: () => 0 }, err: { write: () => 0 }, cwd: REPO })).toThrow(/this is the lambda-image-builds package itself/);
  });
});
