import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadManifest } from "../src/manifest/load.ts";
import { ManifestError } from "../src/manifest/errors.ts";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";
import { edit, lineOf } from "./helpers/manifest-text.ts";

let copy: ExampleCopy;
let original: string;
let counter = 0;

beforeAll(() => {
  copy = copyExample({ prefix: "manifest-test-" });
  original = fs.readFileSync(copy.manifest, "utf8");
});
afterAll(() => copy.cleanup());


/** Writes `text` as a manifest next to the example's (same root) and returns what loading it throws. */
function loadError(text: string): { error: ManifestError; file: string } {
  const file = path.join(copy.dir, `variant-${++counter}.yaml`);
  fs.writeFileSync(file, text);
  try {
    loadManifest(file);
  } catch (error) {
    expect(error).toBeInstanceOf(ManifestError);
    return { error: error as ManifestError, file };
  }
  throw new Error(`expected ${file} to be rejected`);
}

interface Expected {
  field: string;
  line?: number;
  message: RegExp;
  fix: RegExp;
}

/** The error names the manifest file, the field path (with line when given), what is wrong and a fix. */
function expectProblem({ error, file }: { error: ManifestError; file: string }, want: Expected): void {
  const shown = path.relative(process.cwd(), file);
  expect(error.file).toBe(shown);
  const prefix = want.line ? [`${shown}:${want.line}: ${want.field}: `] : [`${shown}: ${want.field}: `, `${shown}:`];
  const line = error.message
    .split("\n")
    .find((l) => (want.line ? l.startsWith(prefix[0]!) : l.startsWith(prefix[0]!) || (l.startsWith(prefix[1]!) && /^:\d+: /.test(l.slice(shown.length)) && l.includes(`: ${want.field}: `))));
  expect(line, `no line for ${want.field} in:\n${error.message}`).toBeDefined();
  const [what, fix] = line!.slice(line!.indexOf(`${want.field}: `) + want.field.length + 2).split(". Fix: ");
  expect(what).toMatch(want.message);
  expect(fix).toMatch(want.fix);
}

describe("loadManifest on the example", () => {
  it("loads it with paths relative to the symlink-resolved root and base images parents first", () => {
    const manifest = loadManifest(copy.manifest);
    expect(manifest.root).toBe(fs.realpathSync(copy.dir));
    expect(manifest.file).toBe(copy.manifest);
    expect(manifest.baseImages.map((b) => b.name)).toEqual(["receipt-dynamo", "receipt-label"]);
    expect(manifest.lambdas.map((l) => l.name)).toEqual(["create-labels", "upload-images", "sync-dynamo", "create-labels-standalone"]);
    const createLabels = manifest.lambdas.find((l) => l.name === "create-labels")!;
    expect(createLabels).toMatchObject({
      dockerfile: "infra/create_labels_step_functions/lambdas/Dockerfile.with_base",
      baseImage: "receipt-label",
      platforms: ["linux/arm64"],
      lambda: { memorySize: 1024, timeout: 300, environment: { LOG_LEVEL: "INFO" } },
    });
    // Defaults apply where the example leaves fields out.
    expect(manifest.lambdas.find((l) => l.name === "sync-dynamo")!.lambda!.memorySize).toBe(1024);
    expect(manifest.stacks.prod!.useStaticBaseImage).toBe(false);
  });

  it("accepts ./ prefixes and trailing slashes, normalizing them", () => {
    const text = edit(original, "packages: [receipt_dynamo]", "packages: [./receipt_dynamo/]");
    const file = path.join(copy.dir, "normalized.yaml");
    fs.writeFileSync(file, text);
    expect(loadManifest(file).baseImages[0]!.packages).toEqual(["receipt_dynamo"]);
  });
});

describe("manifest errors", () => {
  it("an unknown key names the allowed keys", () => {
    const text = edit(original, "    memorySize: 512\n", "    memorySize: 512\n    memroySize: 256\n");
    expectProblem(loadError(text), {
      field: "lambdas.upload-images",
      line: lineOf(text, "memroySize"),
      message: /unknown key "memroySize"/,
      fix: /allowed keys: dockerfile, context, baseImage, platform, include, buildArgs, computeType, memorySize, timeout, ephemeralStorage, environment, notSecret$/,
    });
  });

  it("an unknown top-level key names the top-level keys", () => {
    const text = `${original}lambda:\n  x: 1\n`;
    expectProblem(loadError(text), {
      field: "(top level)",
      line: lineOf(text, "lambda:"),
      message: /unknown key "lambda"/,
      fix: /allowed keys: project, root, tags, ecr, stacks, defaults, baseImages, lambdas/,
    });
  });

  it("a value of the wrong type says what type is expected (not that it is missing)", () => {
    const text = edit(original, "memorySize: 512", "memorySize: lots");
    expectProblem(loadError(text), {
      field: "lambdas.upload-images.memorySize",
      line: lineOf(text, "memorySize: lots"),
      message: /^expected a number, but it is the string "lots"$/,
      fix: /write a number/,
    });
  });

  it("a missing required field says it is required", () => {
    const text = edit(original, "    dockerfile: infra/sync_dynamo/Dockerfile\n", "");
    expectProblem(loadError(text), {
      field: "lambdas.sync-dynamo.dockerfile",
      line: lineOf(text, "sync-dynamo:"),
      message: /is required/,
      fix: /add lambdas\.sync-dynamo\.dockerfile/,
    });
  });

  it("a baseImage that does not exist lists the defined ones", () => {
    const text = edit(original, "baseImage: receipt-dynamo\n    timeout: 60", "baseImage: receipt-dynamoo\n    timeout: 60");
    expectProblem(loadError(text), {
      field: "lambdas.sync-dynamo.baseImage",
      line: lineOf(text, "receipt-dynamoo"),
      message: /base image "receipt-dynamoo" is not defined/,
      fix: /receipt-dynamo, receipt-label/,
    });
  });

  it("a Lambda whose AWS names collide with a base image's is rejected, naming both", () => {
    const text = edit(original, "  sync-dynamo:\n", "  base-receipt-label:\n    dockerfile: infra/sync_dynamo/Dockerfile\n    baseImage: receipt-dynamo\n  sync-dynamo:\n");
    expectProblem(loadError(text), {
      field: "lambdas.base-receipt-label",
      line: lineOf(text, "  base-receipt-label:"),
      message: /gets the AWS name portfolio-base-receipt-label-dev in stack dev, which baseImages\.receipt-label also gets/,
      fix: /rename one of baseImages\.receipt-label and lambdas\.base-receipt-label/,
    });
  });

  it("a baseImage cycle names the chain", () => {
    const text = edit(original, "    platforms: [linux/arm64]\n", "    platforms: [linux/arm64]\n    baseImage: receipt-label\n");
    const result = loadError(text);
    expectProblem(result, {
      field: "baseImages.receipt-dynamo.baseImage",
      line: lineOf(text, "baseImage: receipt-label"),
      message: /cycle: receipt-dynamo -> receipt-label -> receipt-dynamo/,
      fix: /remove one baseImage link/,
    });
  });

  it("a base image built FROM itself is a cycle", () => {
    const text = edit(original, "    platforms: [linux/arm64]\n", "    platforms: [linux/arm64]\n    baseImage: receipt-dynamo\n");
    expectProblem(loadError(text), {
      field: "baseImages.receipt-dynamo.baseImage",
      message: /cycle: receipt-dynamo -> receipt-dynamo/,
      fix: /remove one baseImage link/,
    });
  });

  it("a missing Dockerfile", () => {
    const text = edit(original, "dockerfile: infra/sync_dynamo/Dockerfile", "dockerfile: infra/sync_dynamo/Dockerfile.missing");
    expectProblem(loadError(text), {
      field: "lambdas.sync-dynamo.dockerfile",
      line: lineOf(text, "Dockerfile.missing"),
      message: /"infra\/sync_dynamo\/Dockerfile\.missing" does not exist/,
      fix: /existing file inside root/,
    });
  });

  it("a Dockerfile that is a directory", () => {
    const text = edit(original, "dockerfile: infra/sync_dynamo/Dockerfile", "dockerfile: infra/sync_dynamo");
    expectProblem(loadError(text), { field: "lambdas.sync-dynamo.dockerfile", message: /is not a file/, fix: /Dockerfile/ });
  });

  it("a missing package directory", () => {
    const text = edit(original, "packages: [receipt_dynamo, receipt_chroma, receipt_label]", "packages: [receipt_dynamo, receipt_chromadb, receipt_label]");
    expectProblem(loadError(text), {
      field: "baseImages.receipt-label.packages.1",
      line: lineOf(text, "receipt_chromadb"),
      message: /"receipt_chromadb" does not exist/,
      fix: /existing directory inside root/,
    });
  });

  it.each([
    ["../x", /"\.\.\/x" leaves the repository root/],
    ["receipt_dynamo/../../x", /leaves the repository root/],
    ["/tmp", /"\/tmp" is absolute/],
  ])("a package path %s that leaves root", (value, message) => {
    const text = edit(original, "packages: [receipt_dynamo]", `packages: ["${value}"]`);
    expectProblem(loadError(text), {
      field: "baseImages.receipt-dynamo.packages.0",
      line: lineOf(text, "packages: [\""),
      message,
      fix: /relative to root that stays inside it/,
    });
  });

  it("an absolute Dockerfile path and an include glob leaving root", () => {
    let text = edit(original, "dockerfile: infra/sync_dynamo/Dockerfile", `dockerfile: ${path.join(copy.dir, "infra/sync_dynamo/Dockerfile")}`);
    text = edit(text, "    timeout: 120\n", "    timeout: 120\n    include: [\"../shared/**\"]\n");
    const result = loadError(text);
    expectProblem(result, { field: "lambdas.sync-dynamo.dockerfile", message: /is absolute/, fix: /relative to root/ });
    expectProblem(result, { field: "lambdas.upload-images.include.0", line: lineOf(text, "../shared"), message: /leaves the repository root/, fix: /stays inside it/ });
  });

  it("a symlink out of root, as Dockerfile or package", () => {
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), "manifest-outside-"));
    try {
      fs.writeFileSync(path.join(outside, "Dockerfile"), "FROM scratch\n");
      fs.symlinkSync(path.join(outside, "Dockerfile"), path.join(copy.dir, "infra/sync_dynamo/Dockerfile.out"));
      fs.symlinkSync(outside, path.join(copy.dir, "outside_pkg"));
      let text = edit(original, "dockerfile: infra/sync_dynamo/Dockerfile", "dockerfile: infra/sync_dynamo/Dockerfile.out");
      text = edit(text, "packages: [receipt_dynamo]", "packages: [receipt_dynamo, outside_pkg]");
      const result = loadError(text);
      expectProblem(result, {
        field: "lambdas.sync-dynamo.dockerfile",
        line: lineOf(text, "Dockerfile.out"),
        message: /resolves outside the repository root/,
        fix: /inside root/,
      });
      expectProblem(result, { field: "baseImages.receipt-dynamo.packages.1", message: /"outside_pkg" resolves outside the repository root/, fix: /inside root/ });
    } finally {
      fs.rmSync(path.join(copy.dir, "infra/sync_dynamo/Dockerfile.out"));
      fs.rmSync(path.join(copy.dir, "outside_pkg"));
      fs.rmSync(outside, { recursive: true });
    }
  });

  it("a name ECR or Lambda would reject (bad characters)", () => {
    const text = edit(original, "  sync-dynamo:", "  sync_Dynamo:");
    expectProblem(loadError(text), {
      field: "lambdas.sync_Dynamo",
      line: lineOf(text, "sync_Dynamo:"),
      message: /lower-case letters, digits and single hyphens/,
      fix: /rename/,
    });
    const base = edit(original, "  receipt-label:\n    dockerfile", "  receipt--label:\n    dockerfile");
    expectProblem(loadError(base), { field: "baseImages.receipt--label", message: /single hyphens/, fix: /rename/ });
  });

  it("a Lambda name longer than 64 characters once prefixed project-lambda-stack, per stack", () => {
    // portfolio-<name>-prod: 15 characters around the name, so a 50-character name makes 65 (prod) and 64 (dev).
    const name = `sync-${"d".repeat(45)}`;
    expect(name).toHaveLength(50);
    const text = edit(original, "  sync-dynamo:", `  ${name}:`);
    const { error, file } = loadError(text);
    expectProblem({ error, file }, {
      field: `lambdas.${name}`,
      line: lineOf(text, name),
      message: new RegExp(`"portfolio-${name}-prod" \\(project-lambda-stack\\) is 65 characters; Lambda allows 64`),
      fix: /shorten the Lambda, project or stack name by 1 character/,
    });
    expect(error.message).not.toContain(`portfolio-${name}-dev"`);
    // One character less fits in every stack.
    const fits = path.join(copy.dir, "fits.yaml");
    fs.writeFileSync(fits, edit(original, "  sync-dynamo:", `  ${name.slice(1)}:`));
    expect(() => loadManifest(fits)).not.toThrow();
  });

  it("a secret value in a build arg or environment variable is refused; a secret-sounding name is only a warning", () => {
    let text = edit(original, "      LOG_LEVEL: INFO\n", "      LOG_LEVEL: INFO\n      DATABASE_URL: postgres://admin:hunter2@db.example.com/app\n");
    text = edit(text, "    timeout: 60\n", "    timeout: 60\n    buildArgs:\n      PIP_INDEX: AKIAIOSFODNN7EXAMPLE\n");
    const result = loadError(text);
    expectProblem(result, {
      field: "lambdas.create-labels.environment.DATABASE_URL",
      line: lineOf(text, "DATABASE_URL"),
      message: /password in a URL.*plain text/,
      fix: /Secrets Manager or SSM Parameter Store.*notSecret/,
    });
    expectProblem(result, {
      field: "lambdas.sync-dynamo.buildArgs.PIP_INDEX",
      line: lineOf(text, "PIP_INDEX"),
      message: /AWS access key id/,
      fix: /Secrets Manager/,
    });
    // The value is never echoed.
    expect(result.error.message).not.toContain("hunter2");
    // Names alone: a warning, located like an error.
    const file = path.join(copy.dir, `variant-${++counter}.yaml`);
    fs.writeFileSync(file, edit(original, "      LOG_LEVEL: INFO\n", "      LOG_LEVEL: INFO\n      DB_PASSWORD: hunter2\n      MAX_TOKEN_LENGTH: \"512\"\n"));
    const manifest = loadManifest(file);
    expect(manifest.warnings).toEqual([expect.stringMatching(/:\d+: lambdas\.create-labels\.environment\.DB_PASSWORD: the name sounds like a secret.*notSecret/)]);
    expect(manifest.warnings.join("\n")).not.toContain("hunter2");
  });

  it("reports every problem at once, one line each", () => {
    let text = edit(original, "memorySize: 512", "memorySize: lots");
    text = edit(text, "platform: linux/amd64", "platform: linux/386");
    const { error } = loadError(text);
    expect(error.problems.map((p) => p.field).sort()).toEqual(["lambdas.create-labels-standalone.platform", "lambdas.upload-images.memorySize"]);
    expect(error.message.split("\n")).toHaveLength(2);
  });

  it("a manifest that does not exist", () => {
    const missing = path.join(copy.dir, "nope.yaml");
    expect(() => loadManifest(missing)).toThrow(/nope\.yaml: \(top level\): the manifest file does not exist\. Fix: create it/);
  });

  it("invalid YAML gives its line", () => {
    const text = edit(original, "  prod:\n", "  prod:\n   bad: [\n");
    const { error } = loadError(text);
    expect(error.message).toMatch(/variant-\d+\.yaml:\d+: \(top level\): invalid YAML/);
  });

  it("synth writes nothing when the manifest is invalid", () => {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "manifest-synth-"));
    try {
      const bad = path.join(copy.dir, "bad-synth.yaml");
      fs.writeFileSync(bad, edit(original, "memorySize: 512", "memorySize: lots"));
      const before = listTree(copy.dir);
      const result = spawnSync(process.execPath, ["--import", pathToFileURL(path.resolve("node_modules/tsx/dist/loader.mjs")).href, path.resolve("main.ts")], {
        cwd,
        env: { ...process.env, IMAGES_MANIFEST: bad, CDKTF_OUTDIR: path.join(cwd, "out") },
        encoding: "utf8",
      });
      expect(result.status).toBe(1);
      expect(result.stderr).toContain("bad-synth.yaml:");
      expect(result.stderr).toContain('lambdas.upload-images.memorySize: expected a number, but it is the string "lots". Fix:');
      expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
      expect(fs.readdirSync(cwd)).toEqual([]);
      expect(listTree(copy.dir)).toEqual(before);
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  });
});

function listTree(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).sort();
}
