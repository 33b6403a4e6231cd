// The commands' bundles run from a V8 code cache kept beside them (bin/run-bundle.mjs). What a
// user would check: the command does the same with and without the cache, a rebuilt bundle never
// runs code compiled from the old one, and import() of a module beside the bundle still works.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from "vitest";
import { unprivilegedRunner } from "./helpers/unprivileged.ts";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const RUN_BUNDLE = pathToFileURL(path.join(REPO, "bin", "run-bundle.mjs")).href;

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "run-bundle-"));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Runs `bundle` as bin/lambda-images.mjs does, in a process of its own. */
function runBundle(bundle: string, kind: string, env: NodeJS.ProcessEnv = {}) {
  const driver = `import(${JSON.stringify(RUN_BUNDLE)}).then((m) => m.runCompiled(${JSON.stringify(bundle)}, ${JSON.stringify(kind)}))`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", driver], { encoding: "utf8", env: { ...process.env, ...env } });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}
const caches = () => fs.readdirSync(dir).filter((name) => name.endsWith(".v8cache")).sort();

describe("bundles run from a code cache", () => {
  it("writes the cache on the first run, reads it afterwards, and gives the same result", () => {
    const bundle = path.join(dir, "cmd.cjs");
    // Enough functions that the cache holds compiled code, and what a bundle uses: require, __filename, module.
    const functions = Array.from({ length: 200 }, (_, i) => `function f${i}(x) { return x * ${i} + ${i}; }`).join("\n");
    fs.writeFileSync(bundle, `${functions}\nlet t = 0; for (let i = 0; i < 200; i++) t += eval("f" + i)(2);\nconsole.log(require("node:path").basename(__filename), typeof module.exports, t);\n`);
    expect(runBundle(bundle, "plan")).toBe("cmd.cjs object 59700\n");
    const [cache] = caches();
    expect(cache).toMatch(/^cmd\.cjs\.[0-9a-f]{16}\.plan\.v8cache$/);
    const written = fs.statSync(path.join(dir, cache!));
    expect(written.size).toBeGreaterThan(1000);
    expect(runBundle(bundle, "plan")).toBe("cmd.cjs object 59700\n");
    // Accepted, so not written again; another kind of run has a cache of its own.
    expect(fs.statSync(path.join(dir, cache!)).mtimeMs).toBe(written.mtimeMs);
    runBundle(bundle, "--help");
    expect(caches()).toEqual([cache, cache!.replace(".plan.", ".other.")].sort());
  });

  it("never runs code compiled from an earlier build of the bundle, even one of the same length", () => {
    const bundle = path.join(dir, "cmd.cjs");
    fs.writeFileSync(bundle, 'function answer() { return "old"; }\nconsole.log(answer());\n');
    expect(runBundle(bundle, "plan")).toBe("old\n");
    const [before] = caches();
    // V8's own check of a code cache compares the source's length only.
    fs.writeFileSync(bundle, 'function answer() { return "new"; }\nconsole.log(answer());\n');
    expect(runBundle(bundle, "plan")).toBe("new\n");
    const after = caches();
    expect(after).toHaveLength(1);
    expect(after[0]).not.toBe(before);
  });

  it("lets the bundle import() a module beside it, which Node refuses a vm script", () => {
    fs.writeFileSync(path.join(dir, "beside.mjs"), "export const value = 42;\n");
    const bundle = path.join(dir, "cmd.cjs");
    fs.writeFileSync(bundle, 'globalThis[Symbol.for("lambda-images.bundle-import")]("./beside.mjs").then((m) => console.log(m.value));\n');
    expect(runBundle(bundle, "iam")).toBe("42\n");
  });

  const asNobody = unprivilegedRunner("the read-only install check");
  it.skipIf(!asNobody)("in a directory it cannot write (a read-only install), runs without a cache", () => {
    fs.chmodSync(dir, 0o755);
    const bundle = path.join(dir, "cmd.cjs");
    fs.writeFileSync(bundle, "console.log(6 * 7);\n");
    fs.chmodSync(bundle, 0o644);
    // run-bundle.mjs imports only Node's modules: a copy beside the bundle is all the unprivileged
    // user needs, so the check works from a checkout in a private directory too.
    const runBundleCopy = path.join(os.tmpdir(), `run-bundle-${process.pid}-${Date.now()}.mjs`);
    fs.copyFileSync(fileURLToPath(RUN_BUNDLE), runBundleCopy);
    fs.chmodSync(runBundleCopy, 0o644);
    const driver = `import(${JSON.stringify(pathToFileURL(runBundleCopy).href)}).then((m) => m.runCompiled(${JSON.stringify(bundle)}, "plan"))`;
    onTestFinished(() => fs.rmSync(runBundleCopy, { force: true }));
    for (let run = 0; run < 2; run++) {
      const r = spawnSync(...asNobody!(process.execPath, ["--input-type=module", "-e", driver]), { encoding: "utf8" });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toBe("42\n");
      expect(r.stderr).toBe("");
    }
    expect(fs.readdirSync(dir).sort()).toEqual(["cmd.cjs"]);
  });

  it("LAMBDA_IMAGES_NO_CODE_CACHE=1 neither reads nor writes one", () => {
    const bundle = path.join(dir, "cmd.cjs");
    fs.writeFileSync(bundle, "console.log(1 + 1);\n");
    expect(runBundle(bundle, "plan", { LAMBDA_IMAGES_NO_CODE_CACHE: "1" })).toBe("2\n");
    expect(caches()).toEqual([]);
  });

  it("the iam command, imported beside the CLI's bundle when it runs, works from the cache too", () => {
    const iam = () => {
      const r = spawnSync(process.execPath, [path.join(REPO, "bin", "lambda-images.mjs"), "iam", "--manifest", path.join(REPO, "example", "images.yaml")], {
        cwd: REPO,
        encoding: "utf8",
        env: { ...process.env, CHECKPOINT_DISABLE: "1" },
      });
      expect(r.status, r.stderr).toBe(0);
      return r.stdout;
    };
    const first = iam();
    const cli = path.join(REPO, "dist", "src", "cli");
    expect(fs.readdirSync(cli).some((name) => /^main\.bundle\.cjs\.[0-9a-f]{16}\.iam\.v8cache$/.test(name))).toBe(true);
    expect(iam()).toBe(first);
    expect(Object.keys(JSON.parse(first))).toEqual(["dev", "prod"]);
  }, 120_000);
});
