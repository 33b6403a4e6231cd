import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";
import { normalizeSynth, synthExample, type SynthResult } from "./helpers/synth.ts";

/**
 * The synthesized JSON of the example, stack by stack, guarded by a snapshot. Only asset hashes
 * are normalized (the runner bundle's bytes follow its dependencies); content hashes stay, so
 * a change that would rebuild images shows up here. After an intended change, review the diff
 * and run `npx vitest run __tests__/synth-snapshot.test.ts -u`.
 */

let copy: ExampleCopy;
let synth: SynthResult;

beforeAll(async () => {
  copy = copyExample({ prefix: "synth-snapshot-" });
  synth = await synthExample(copy.dir, path.join(path.dirname(copy.dir), "cdktf.out"));
});
afterAll(() => copy.cleanup());

describe("synthesized example", () => {
  it("writes every manifest stack", () => {
    expect(Object.keys(synth.stacks)).toEqual(["dev", "prod"]);
    for (const stack of ["dev", "prod"]) {
      expect(fs.existsSync(path.join(synth.outdir, "stacks", stack, "cdk.tf.json"))).toBe(true);
    }
  });

  it.each(["dev", "prod"])("%s matches the snapshot", (stack) => {
    const text = JSON.stringify(normalizeSynth(synth.stacks[stack]), null, 2);
    // Nothing machine-specific is left after normalization.
    expect(text).not.toContain(copy.dir);
    expect(text).not.toContain(process.cwd());
    expect(text).not.toMatch(/assets\/[^/"]+\/[0-9A-F]{32}/);
    expect(normalizeSynth(synth.stacks[stack])).toMatchSnapshot();
  });

  it("normalization only touches asset hashes", () => {
    const raw = JSON.stringify(synth.stacks.prod);
    const normalized = JSON.stringify(normalizeSynth(synth.stacks.prod));
    const stripped = (s: string) => s.replace(/assets\/[^/"\\]+\/(<ASSET>|[0-9A-F]{32})/g, "assets/X");
    expect(stripped(normalized)).toBe(stripped(raw));
    expect(normalized).not.toBe(raw);
  });
});

describe("npm run synth", () => {
  it("writes every stack of example/images.yaml, the same JSON as the in-process synth", () => {
    const tmp = fs.mkdtempSync(path.join(path.dirname(copy.dir), "npm-synth-"));
    const outdir = path.join(tmp, "out");
    const run = spawnSync("npm", ["run", "synth", "--", "--output", outdir], {
      encoding: "utf8",
      env: { ...process.env, CI: "1", CHECKPOINT_DISABLE: "1", LAMBDA_IMAGES_CACHE_DIR: path.join(tmp, "cache"), CDKTF_OUTDIR: undefined },
      timeout: 180_000,
    });
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(fs.readdirSync(path.join(outdir, "stacks")).sort()).toEqual(["dev", "prod"]);
    for (const stack of ["dev", "prod"]) {
      const json = JSON.parse(fs.readFileSync(path.join(outdir, "stacks", stack, "cdk.tf.json"), "utf8"));
      // example/ and its copy hold the same files, so even the asset hashes agree.
      expect(normalizeSynth(json)).toEqual(normalizeSynth(synth.stacks[stack]));
    }
    // The cache went where it was told, not into node_modules/.cache. (The runner bundle is kept
    // with the compiled code, dist/runner, so an empty cache directory does not bundle it again.)
    expect(fs.readdirSync(path.join(tmp, "cache")).filter((f) => /^(digests|selection)-/.test(f)).length).toBe(2);
    expect(fs.existsSync(path.join("dist", "runner", "runner.cjs"))).toBe(true);

    // The synth (the app's bundle) and `plan` (the command's bundle) are built from the same
    // compiled sources, so they fingerprint the same code: the selection cache one writes is the
    // other's, not set aside as written by other code.
    const selectionCache = () => {
      const file = fs.readdirSync(path.join(tmp, "cache")).find((f) => /^selection-.*\.json$/.test(f));
      return file ? (JSON.parse(fs.readFileSync(path.join(tmp, "cache", file), "utf8")) as { code: string }) : undefined;
    };
    const bySynth = selectionCache()?.code;
    expect(bySynth).toMatch(/^[0-9a-f]{64}$/);
    const plan = spawnSync(process.execPath, ["bin/lambda-images.mjs", "plan", "--json", "--out", outdir], {
      encoding: "utf8",
      env: { ...process.env, LAMBDA_IMAGES_CACHE_DIR: path.join(tmp, "cache") },
    });
    expect(plan.status, plan.stderr).toBe(0);
    expect(JSON.parse(plan.stdout).summary).toMatchObject({ rebuild: 0, new: 0 });
    expect(selectionCache()?.code).toBe(bySynth);
  }, 240_000);
});
