import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reportErrors, reportWarning, underCdktfCli } from "../src/report.ts";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

let copy: ExampleCopy;
let tmp: string;
let badManifest: string;
let warnManifest: string;
let errorLine: string;
let warningText: string;

beforeAll(() => {
  copy = copyExample({ prefix: "bad-input-report-" });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bad-input-report-out-"));
  const original = fs.readFileSync(copy.manifest, "utf8");
  badManifest = path.join(copy.dir, "bad.yaml");
  fs.writeFileSync(badManifest, original.replace("  prod:\n    region: us-east-1\n", "  prod:\n    region: us-east-9\n"));
  const line = original.split("\n").indexOf("    region: us-east-1", original.split("\n").indexOf("  prod:")) + 1;
  errorLine = `${path.relative(REPO, badManifest)}:${line}: stacks.prod.region: "us-east-9" is not an AWS region. Fix: use us-east-1, the closest AWS region name; if us-east-9 is a region newer than the installed AWS SDK, update @aws-sdk/core`;
  // A Dockerfile ADD of a URL is a warning (its content is not hashed), not an error.
  const dockerfile = copy.file("infra/sync_dynamo/Dockerfile");
  fs.appendFileSync(dockerfile, "ADD https://example.com/model.txt /opt/model.txt\n");
  const addLine = fs.readFileSync(dockerfile, "utf8").split("\n").indexOf("ADD https://example.com/model.txt /opt/model.txt") + 1;
  warnManifest = copy.manifest;
  // Located from the working directory, as the manifest's errors are.
  warningText = `warning: ${path.relative(REPO, dockerfile)}:${addLine}: ADD https://example.com/model.txt downloads at build time; its content is not part of the image's content hash, so a change there does not trigger a rebuild`;
});
afterAll(() => {
  copy.cleanup();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

function env(manifest: string): NodeJS.ProcessEnv {
  return { ...process.env, IMAGES_MANIFEST: manifest, CHECKPOINT_DISABLE: "1", LAMBDA_IMAGES_CACHE_DIR: path.join(tmp, "cache"), FORCE_COLOR: "0" };
}

/** The real cdktf CLI (0.21.0), which runs the app cdktf.json names. */
function cdktfSynth(manifest: string) {
  return spawnSync("npx", ["cdktf", "synth", "--output", path.join(tmp, "cdktf.out")], { cwd: REPO, env: env(manifest), encoding: "utf8", timeout: 120_000 });
}

function plainMain(manifest: string) {
  const loader = pathToFileURL(path.join(REPO, "node_modules/tsx/dist/loader.mjs")).href;
  return spawnSync(process.execPath, ["--import", loader, path.join(REPO, "main.ts")], {
    cwd: REPO,
    env: { ...env(manifest), CDKTF_OUTDIR: path.join(tmp, "plain.out") },
    encoding: "utf8",
    timeout: 120_000,
  });
}

describe("under `cdktf synth`", () => {
  it("a warning reads as a warning, once, not as [ERROR]", () => {
    const run = cdktfSynth(warnManifest);
    expect(run.status, run.stderr).toBe(0);
    const output = run.stdout + run.stderr;
    expect(count(output, warningText)).toBe(1);
    const shown = run.stdout.split("\n").find((l) => l.includes(warningText))!;
    expect(shown).not.toContain("[ERROR]");
    expect(output).toContain("Generated Terraform code for the stacks: dev, prod");
  }, 150_000);

  it("an error is printed by the app once; the CLI shows it live and once more in its failure summary", () => {
    const run = cdktfSynth(badManifest);
    expect(run.status).not.toBe(0);
    // Live, through the CLI's logger (its stdout), and in "Command output on stderr" (its stderr):
    // the CLI repeats any output of a failed app, on whichever stream (see src/report.ts).
    expect(count(run.stdout, errorLine)).toBe(1);
    expect(count(run.stderr, errorLine)).toBe(1);
    expect(run.stderr).toContain("Command output on stderr:");
    expect(run.stderr).not.toContain("Command output on stdout:");
    expect(run.stdout + run.stderr).not.toMatch(/\n\s+at .*\.ts:\d+/); // no stack trace
  }, 150_000);
});

describe("under plain node", () => {
  it("a warning goes to stderr once, and nothing to stdout", () => {
    const run = plainMain(warnManifest);
    expect(run.status, run.stderr).toBe(0);
    expect(count(run.stderr, warningText)).toBe(1);
    expect(run.stdout).toBe("");
  }, 150_000);

  it("an error goes to stderr once, with no stack trace", () => {
    const run = plainMain(badManifest);
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(`${errorLine}\n`);
    expect(run.stdout).toBe("");
  }, 150_000);
});

describe("report.ts", () => {
  const streams = () => {
    const out: string[] = [];
    const err: string[] = [];
    return { out, err, streams: { stdout: { write: (t: string) => out.push(t) }, stderr: { write: (t: string) => err.push(t) } } };
  };

  it("knows the cdktf CLI by the variables it sets for the app", () => {
    expect(underCdktfCli({ CDKTF_OUTDIR: "cdktf.out", SYNTH_HCL_OUTPUT: "false" })).toBe(true);
    expect(underCdktfCli({ CDKTF_OUTDIR: "cdktf.out" })).toBe(false);
    expect(underCdktfCli({})).toBe(false);
  });

  it("warnings: stdout under the CLI, stderr otherwise, one line each", () => {
    const s = streams();
    reportWarning("a\nb", s.streams, { CDKTF_OUTDIR: "o", SYNTH_HCL_OUTPUT: "false" });
    reportWarning("c", s.streams, {});
    expect(s.out).toEqual(["warning: a b\n"]);
    expect(s.err).toEqual(["warning: c\n"]);
  });

  it("errors: one write, one line each, repeats dropped", () => {
    const s = streams();
    reportErrors(["x:1: a. Fix: b\ny:2: c. Fix: d", "x:1: a. Fix: b", ""], s.streams);
    expect(s.err).toEqual(["x:1: a. Fix: b\ny:2: c. Fix: d\n"]);
    expect(s.out).toEqual([]);
  });
});
