// Every category of bad input, through the real `cdktf synth` path (the cdktf CLI running the
// app as cdktf.json says): one clear line per problem (`where: what. Fix: how`), exit 1, no stack
// trace, and the output directory of the last good synth left byte-identical.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { unprivilegedRunner } from "./helpers/unprivileged.ts";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

let tmp: string;
let outdir: string;
let goodTree: string;

function cdktfSynth(manifest: string) {
  return spawnSync("npx", ["cdktf", "synth", "--output", outdir], {
    cwd: REPO,
    env: { ...process.env, IMAGES_MANIFEST: manifest, CHECKPOINT_DISABLE: "1", LAMBDA_IMAGES_CACHE_DIR: path.join(tmp, "cache"), FORCE_COLOR: "0" },
    encoding: "utf8",
    timeout: 120_000,
  });
}

/** Every file under `dir` with its bytes' digest and mode: what "nothing written or changed" compares. */
function treeDigest(dir: string): string {
  const lines: string[] = [];
  const walk = (rel: string) => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const child = path.join(rel, entry.name);
      if (entry.isDirectory()) walk(child);
      else {
        const abs = path.join(dir, child);
        const st = fs.statSync(abs);
        lines.push(`${child} ${st.mode.toString(8)} ${st.mtimeMs} ${createHash("sha256").update(fs.readFileSync(abs)).digest("hex")}`);
      }
    }
  };
  walk("");
  return lines.join("\n");
}

beforeAll(() => {
  tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "bad-input-synth-")));
  outdir = path.join(tmp, "cdktf.out");
  const good = copyExample({ prefix: "bad-input-good-" });
  try {
    const result = cdktfSynth(good.manifest);
    expect(result.status, result.stderr).toBe(0);
  } finally {
    good.cleanup();
  }
  goodTree = treeDigest(outdir);
}, 180_000);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Case {
  readonly name: string;
  /** Breaks a fresh copy of the example; returns the manifest to synthesize. */
  readonly apply: (copy: ExampleCopy) => string;
  /** Fragments each expected error line holds, one pattern per line. */
  readonly lines: readonly RegExp[];
}

const edit = (copy: ExampleCopy, rel: string, change: (text: string) => string) => fs.writeFileSync(copy.file(rel), change(fs.readFileSync(copy.file(rel), "utf8")));
const manifestEdit = (change: (text: string) => string) => (copy: ExampleCopy) => {
  edit(copy, "images.yaml", change);
  return copy.manifest;
};
const dockerfileEdit = (rel: string, change: (text: string) => string) => (copy: ExampleCopy) => {
  edit(copy, rel, change);
  return copy.manifest;
};
const SYNC = "infra/sync_dynamo/Dockerfile";

const CASES: Case[] = [
  {
    name: "IMAGES_MANIFEST names a directory",
    apply: (copy) => copy.dir,
    lines: [/is a directory, not a manifest file.*Fix: point IMAGES_MANIFEST/],
  },
  { name: "an empty manifest", apply: manifestEdit(() => ""), lines: [/images\.yaml.*empty.*Fix:/] },
  { name: "a YAML syntax error", apply: manifestEdit((t) => t.replace("project: portfolio", "project: [portfolio")), lines: [/images\.yaml:\d+: .*invalid YAML.*Fix: correct the YAML syntax/] },
  { name: "an unknown key", apply: manifestEdit((t) => t.replace("    memorySize: 512", "    memroySize: 512")), lines: [/lambdas\.upload-images: unknown key "memroySize"\. Fix:/] },
  { name: "an unknown region", apply: manifestEdit((t) => t.replace("  prod:\n    region: us-east-1", "  prod:\n    region: us-east-9")), lines: [/stacks\.prod\.region: "us-east-9" is not an AWS region\. Fix: use us-east-1/] },
  {
    name: "backend.s3 without bucket",
    apply: manifestEdit((t) => t.replace("  prod:\n    region: us-east-1", "  prod:\n    region: us-east-1\n    backend:\n      s3: { key: images/prod.tfstate, region: us-east-1 }")),
    lines: [/stacks\.prod\.backend\.s3\.bucket: is required\. Fix:/],
  },
  { name: "a memory size Lambda refuses", apply: manifestEdit((t) => t.replace("    memorySize: 512", "    memorySize: 64")), lines: [/lambdas\.upload-images\.memorySize: .*128.*10240.*Fix:/] },
  {
    name: "environment variables over 4 KB",
    apply: manifestEdit((t) => t.replace("      LOG_LEVEL: INFO", `      LOG_LEVEL: INFO\n      BIG: "${"x".repeat(4200)}"`)),
    lines: [/lambdas\.create-labels\.environment: .*4.*KB.*Fix:/i],
  },
  { name: "a secret value", apply: manifestEdit((t) => t.replace("      LOG_LEVEL: INFO", "      LOG_LEVEL: INFO\n      DATABASE_URL: postgres://app:hunter2@db.internal/app")), lines: [/lambdas\.create-labels\.environment\.DATABASE_URL: the value holds a password in a URL.*Fix:/] },
  { name: "an unknown base image", apply: manifestEdit((t) => t.replace("    baseImage: receipt-dynamo\n    timeout: 60", "    baseImage: receipt-dynamoo\n    timeout: 60")), lines: [/lambdas\.sync-dynamo\.baseImage: base image "receipt-dynamoo" is not defined\. Fix:/] },
  { name: "a missing Dockerfile", apply: manifestEdit((t) => t.replace("dockerfile: infra/sync_dynamo/Dockerfile", "dockerfile: infra/sync_dynamo/Dockerfile.missing")), lines: [/lambdas\.sync-dynamo\.dockerfile: .*does not exist \(paths are relative to root, .*\)\. Fix:/] },
  { name: "a FROMM typo", apply: dockerfileEdit(SYNC, (t) => t.replace(/^FROM /m, "FROMM ")), lines: [/infra\/sync_dynamo\/Dockerfile:\d+: .*FROMM.*Fix:/] },
  { name: "an empty Dockerfile", apply: dockerfileEdit(SYNC, () => ""), lines: [/infra\/sync_dynamo\/Dockerfile:\d+: .*Fix:/] },
  { name: "a COPY with one argument", apply: dockerfileEdit(SYNC, (t) => `${t}COPY handler.py\n`), lines: [/infra\/sync_dynamo\/Dockerfile:\d+: .*COPY.*Fix:/] },
  { name: "a JSON COPY without its closing bracket", apply: dockerfileEdit(SYNC, (t) => `${t}COPY ["infra/sync_dynamo/handler.py", "/x/"\n`), lines: [/infra\/sync_dynamo\/Dockerfile:\d+: .*Fix:/] },
  {
    name: "a Lambda with a base image whose Dockerfile never uses BASE_IMAGE_URI",
    apply: dockerfileEdit(SYNC, (t) => t.replace(/^FROM .*$/m, "FROM public.ecr.aws/lambda/python:3.12")),
    lines: [/infra\/sync_dynamo\/Dockerfile:\d+: .*BASE_IMAGE_URI.*Fix:/],
  },
  {
    name: "a base package its Dockerfile never copies",
    apply: manifestEdit((t) => t.replace("packages: [receipt_dynamo]\n", "packages: [receipt_dynamo, receipt_chroma]\n")),
    lines: [/dockerfiles\/Dockerfile\.receipt_dynamo:1: base image receipt-dynamo lists package receipt_chroma.*Fix:/],
  },
  {
    name: "an include glob that matches nothing",
    apply: manifestEdit((t) => t.replace("    memorySize: 512", "    include: [infra/upload_images/missing/*.py]\n    memorySize: 512")),
    lines: [/image upload-images: include "infra\/upload_images\/missing\/\*\.py" matches no file.*Fix:/],
  },
  {
    name: "COPY sources that match nothing, in two images: every one reported, each Dockerfile's in line order",
    apply: (copy) => {
      edit(copy, SYNC, (t) => `${t}COPY infra/sync_dynamo/nope1.py /x/\nCOPY infra/sync_dynamo/nope2.py /x/\n`);
      edit(copy, "infra/upload_images/Dockerfile", (t) => `${t}COPY infra/upload_images/nope3.py /x/\n`);
      return copy.manifest;
    },
    lines: [/infra\/upload_images\/Dockerfile:\d+: COPY source "infra\/upload_images\/nope3\.py" matches no file/, /infra\/sync_dynamo\/Dockerfile:(\d+): COPY source "infra\/sync_dynamo\/nope1\.py"/, /infra\/sync_dynamo\/Dockerfile:\d+: COPY source "infra\/sync_dynamo\/nope2\.py"/],
  },
];

describe("bad input through `cdktf synth`", () => {
  for (const c of CASES) {
    it(c.name, () => {
      const copy = copyExample({ prefix: "bad-input-case-" });
      try {
        const result = cdktfSynth(c.apply(copy));
        const output = `${result.stdout}\n${result.stderr}`;
        expect(result.status, output).not.toBe(0);
        for (const pattern of c.lines) expect(output, `no line matching ${pattern}`).toMatch(pattern);
        // No Node stack trace, no JavaScript error names.
        expect(output).not.toMatch(/\n\s+at .+:\d+:\d+\)?\n/);
        expect(output).not.toMatch(/(TypeError|SyntaxError|ReferenceError|EISDIR|EACCES):/);
        // Every line naming a problem says where, what and how to fix it (the CLI indents its summary).
        for (const line of output.split("\n").filter((l) => c.lines.some((p) => p.test(l)))) expect(line).toMatch(/^\s*(\[ERROR\] default - )?\S.*: .+\. Fix: .+/);
        expect(treeDigest(outdir)).toBe(goodTree);
      } finally {
        copy.cleanup();
      }
    });
  }
});

describe("a selected file the user cannot read", () => {
  // It runs the app's sources from the checkout: skipped (saying so) where nobody cannot read them.
  const asNobodyCommand = unprivilegedRunner("the EACCES check", [path.join(REPO, "main.ts"), path.join(REPO, "node_modules/tsx/dist/loader.mjs")]);
  it.skipIf(!asNobodyCommand)("is one line naming the file and the fix, in synth and in plan, and nothing is written", () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), "eacces-"));
    fs.chmodSync(base, 0o777);
    const copy = copyExample({ prefix: "eacces-" });
    try {
      fs.chmodSync(path.dirname(copy.dir), 0o755);
      for (const dir of ["", ...fs.readdirSync(copy.dir, { recursive: true }).map(String)]) {
        const p = path.join(copy.dir, dir);
        if (fs.statSync(p).isDirectory()) fs.chmodSync(p, 0o755);
        else fs.chmodSync(p, 0o644);
      }
      fs.chmodSync(copy.file("infra/sync_dynamo/handler.py"), 0o600);
      const out = path.join(base, "cdktf.out");
      const loader = path.join(REPO, "node_modules/tsx/dist/loader.mjs");
      const asNobody = (args: string[], env: NodeJS.ProcessEnv) =>
        spawnSync(...asNobodyCommand!(process.execPath, ["--import", `file://${loader}`, ...args]), {
          cwd: REPO,
          env: { ...process.env, ...env, HOME: base, LAMBDA_IMAGES_CACHE_DIR: path.join(base, "cache"), IMAGES_MANIFEST: copy.manifest, CDKTF_OUTDIR: out },
          encoding: "utf8",
        });
      const synth = asNobody([path.join(REPO, "main.ts")], {});
      expect(synth.status, synth.stderr).toBe(1);
      expect(synth.stderr).toMatch(/handler\.py: the file cannot be read \(EACCES\)\. Fix: make it readable by the user running synth/);
      expect(synth.stderr).not.toMatch(/\n\s+at /);
      // cdktf's App may create the empty output directory; nothing is written into it.
      expect(fs.existsSync(out) ? treeDigest(out) : "").toBe("");
      const plan = asNobody([path.join(REPO, "src/cli/main.ts"), "plan", "--out", out], {});
      expect(plan.status, plan.stderr).toBe(1);
      expect(plan.stderr).toMatch(/handler\.py: the file cannot be read \(EACCES\)\. Fix:/);
      expect(plan.stderr).not.toMatch(/\n\s+at /);
    } finally {
      copy.cleanup();
      fs.rmSync(base, { recursive: true, force: true });
    }
  });
});
