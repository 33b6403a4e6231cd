import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXAMPLE_DIR } from "./helpers/example-copy.ts";
import type { TfJson } from "./helpers/synth.ts";

/**
 * The same tree synthesized at two checkout paths (a laptop and a CI runner) must give the same
 * stacks, byte for byte, and nothing in them may resolve differently at apply time: an absolute
 * path in a `docker_image`'s `build.context` would replace every Docker-built base image on the
 * other machine (the Docker provider's `context` forces replacement), and an absolute state path
 * would point the other machine's Terraform at a state file that is not there.
 *
 * Each copy is synthesized the way a user runs it: `cdktf synth` (here, the app it runs) with the
 * checkout as working directory and the default, relative output directory.
 */

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const roots: string[] = [];
const checkouts: string[] = [];

function synthAt(checkout: string): void {
  fs.mkdirSync(path.dirname(checkout), { recursive: true });
  fs.cpSync(EXAMPLE_DIR, checkout, { recursive: true });
  const run = spawnSync(process.execPath, [path.join(REPO, "node_modules/tsx/dist/cli.mjs"), path.join(REPO, "main.ts")], {
    cwd: checkout,
    encoding: "utf8",
    env: {
      ...process.env,
      IMAGES_MANIFEST: "images.yaml",
      CDKTF_OUTDIR: "cdktf.out",
      LAMBDA_IMAGES_CACHE_DIR: path.join(path.dirname(checkout), "cache"),
      CHECKPOINT_DISABLE: "1",
    },
    timeout: 180_000,
  });
  if (run.status !== 0) throw new Error(`synth in ${checkout} failed:\n${run.stdout}\n${run.stderr}`);
}

/** Every file under `dir` (relative POSIX path → bytes), symlinks as their target. */
function tree(dir: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const walk = (at: string) => {
    for (const entry of fs.readdirSync(at, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(at, entry.name);
      const rel = path.relative(dir, full).split(path.sep).join("/");
      if (entry.isDirectory()) walk(full);
      else if (entry.isSymbolicLink()) files.set(`${rel} -> symlink`, Buffer.from(fs.readlinkSync(full)));
      else files.set(rel, fs.readFileSync(full));
    }
  };
  walk(dir);
  return files;
}

const stacksDir = (checkout: string) => path.join(checkout, "cdktf.out", "stacks");
const stackJson = (checkout: string, stack: string) => JSON.parse(fs.readFileSync(path.join(stacksDir(checkout), stack, "cdk.tf.json"), "utf8")) as TfJson;

beforeAll(() => {
  for (const nested of ["laptop/src/example", "ci/builds/runner-7/checkout/a/much/deeper/path/example"]) {
    const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "checkout-location-")));
    roots.push(root);
    checkouts.push(path.join(root, nested));
  }
  for (const checkout of checkouts) synthAt(checkout);
}, 400_000);
afterAll(() => roots.forEach((r) => fs.rmSync(r, { recursive: true, force: true })));

describe("synthesizing the same tree at two checkout paths", () => {
  it("gives byte-identical stacks: every cdk.tf.json and every asset", () => {
    const [a, b] = checkouts.map((c) => tree(stacksDir(c!)));
    expect([...a!.keys()]).toEqual([...b!.keys()]);
    expect([...a!.keys()].filter((k) => k.endsWith("cdk.tf.json")).sort()).toEqual(["dev/cdk.tf.json", "prod/cdk.tf.json"]);
    for (const [file, bytes] of a!) expect(bytes.equals(b!.get(file)!), `${file} differs between the two checkouts`).toBe(true);
  });

  it.each(["dev", "prod"])("%s names no path of the checkout, and nothing Terraform would resolve against its working directory's absolute path", (stack) => {
    for (const checkout of checkouts) {
      const text = JSON.stringify(stackJson(checkout, stack));
      expect(text).not.toContain(roots[checkouts.indexOf(checkout)]!);
      // abspath() and path.cwd/path.root give an absolute path at apply time, different per checkout.
      expect(text).not.toMatch(/abspath\(|path\.cwd|path\.root/);
    }
  });

  // The local backend's `path` is "relative to the root module", i.e. Terraform's working
  // directory, which cdktf makes the stack directory:
  // https://developer.hashicorp.com/terraform/language/backend/local
  it.each(["dev", "prod"])("%s keeps its local state where the default did: beside the output directory, in the checkout", (stack) => {
    for (const checkout of checkouts) {
      const statePath = stackJson(checkout, stack).terraform.backend.local.path as string;
      expect(path.isAbsolute(statePath)).toBe(false);
      const stackDir = path.join(stacksDir(checkout), stack);
      expect(path.resolve(stackDir, statePath)).toBe(path.join(checkout, `terraform.${stack}.tfstate`));
    }
  });

  // The Docker provider turns `build.context` into an absolute path with Go's filepath.Abs,
  // i.e. against the provider's working directory, which is Terraform's (the stack directory);
  // `dockerfile` is relative to the context
  // (https://registry.terraform.io/providers/kreuzwerker/docker/latest/docs/resources/image#context).
  it("points each Docker-built base image's build context at its staged asset, relative to the stack directory", () => {
    for (const checkout of checkouts) {
      const images = Object.values(stackJson(checkout, "prod").resource.docker_image ?? {}) as TfJson[];
      expect(images.length).toBeGreaterThan(0);
      for (const image of images) {
        const context = image.build.context as string;
        expect(context).toMatch(/^assets\/[^/]+\/[0-9A-F]{32}$/);
        const staged = path.join(stacksDir(checkout), "prod", context);
        expect(fs.statSync(path.join(staged, image.build.dockerfile as string)).isFile()).toBe(true);
      }
    }
  });
});
