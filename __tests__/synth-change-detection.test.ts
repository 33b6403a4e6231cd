import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";
import { synthExample, type SynthResult, type TfJson, type TfResource } from "./helpers/synth.ts";

/**
 * The seed's change-detection promises, checked on what Terraform would see: a fresh copy of
 * example/ is edited, synthesized, and every build resource's triggers (terraform_data
 * triggers_replace, docker_image / docker_registry_image triggers) and every Lambda's image_uri
 * are compared with those of an unedited copy.
 */

type Edit = { file: string; change: "append" | "create" };

const copies: ExampleCopy[] = [];
let baseline: SynthResult;
const edited = new Map<string, SynthResult>();

async function synthCopy(edits: Edit[]): Promise<SynthResult> {
  const copy = copyExample({ prefix: "synth-change-" });
  copies.push(copy);
  for (const edit of edits) {
    const file = copy.file(edit.file);
    if (edit.change === "append") {
      expect(fs.existsSync(file), `${edit.file} exists in the example`).toBe(true);
      fs.appendFileSync(file, "\n# edited by a change-detection test\n");
    } else {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, "new file\n");
    }
  }
  return synthExample(copy.dir, path.join(path.dirname(copy.dir), "cdktf.out"));
}

const SCENARIOS: Record<string, Edit[]> = {
  "create-labels handler": [{ file: "infra/create_labels_step_functions/lambdas/handler.py", change: "append" }],
  "upload-images handler module": [{ file: "infra/upload_images/handler/naming.py", change: "append" }],
  "receipt_dynamo package": [{ file: "receipt_dynamo/receipt_dynamo/models.py", change: "append" }],
  "receipt_label package": [{ file: "receipt_label/receipt_label/labeler.py", change: "append" }],
  "receipt_chroma package": [{ file: "receipt_chroma/receipt_chroma/store.py", change: "append" }],
  "unrelated README": [{ file: "portfolio/README.md", change: "append" }],
  "unrelated new file": [{ file: "portfolio/notes/todo.txt", change: "create" }],
  "ignored package tests": [{ file: "receipt_dynamo/tests/test_models.py", change: "append" }],
  "ignored handler tests": [{ file: "infra/upload_images/handler/tests/test_naming.py", change: "append" }],
  "ignored bytecode in a package": [{ file: "receipt_label/receipt_label/__pycache__/labeler.cpython-312.pyc", change: "create" }],
};

beforeAll(async () => {
  baseline = await synthCopy([]);
  // Independent copies, outdirs and work dirs: synthesizing them concurrently overlaps the
  // runner bundling (esbuild runs out of process).
  const results = await Promise.all(Object.entries(SCENARIOS).map(async ([name, edits]) => [name, await synthCopy(edits)] as const));
  for (const [name, result] of results) edited.set(name, result);
});
afterAll(() => copies.forEach((c) => c.cleanup()));

/** Which image a build resource or function belongs to, from its construct path. */
function imageOf(resource: TfResource): string {
  const p = String(resource["//"]?.metadata?.path);
  const m = /^[^/]+\/(?:lambda-([^/]+)\/trigger\/|function-([^/]+)\/function$|base\/([^/]+)\/(?:image|push|trigger\/))/.exec(p);
  if (!m) throw new Error(`cannot tell which image ${p} belongs to`);
  return m[1] ?? m[2] ? `lambda:${m[1] ?? m[2]}` : `base:${m[3]}`;
}

/** Everything that decides whether Terraform rebuilds or redeploys, by `type.id`, with its image. */
function rebuildInputs(stack: TfJson): Map<string, { image: string; value: unknown }> {
  const out = new Map<string, { image: string; value: unknown }>();
  const each = (type: string, pick: (r: TfResource) => unknown) => {
    for (const [id, r] of Object.entries((stack.resource?.[type] ?? {}) as Record<string, TfResource>)) {
      out.set(`${type}.${id}`, { image: imageOf(r), value: pick(r) });
    }
  };
  each("terraform_data", (r) => r.triggers_replace);
  each("docker_image", (r) => ({ triggers: r.triggers, name: r.name }));
  each("docker_registry_image", (r) => r.triggers);
  each("aws_lambda_function", (r) => r.image_uri);
  return out;
}

/** Images with any rebuild input changed, per stack. */
function changedImages(before: SynthResult, after: SynthResult): Record<string, string[]> {
  const result: Record<string, string[]> = {};
  for (const stack of Object.keys(before.stacks)) {
    const a = rebuildInputs(before.stacks[stack]!);
    const b = rebuildInputs(after.stacks[stack]!);
    expect([...b.keys()].sort(), `${stack}: the same build resources`).toEqual([...a.keys()].sort());
    const changed = new Set<string>();
    for (const [key, { image, value }] of a) if (JSON.stringify(value) !== JSON.stringify(b.get(key)!.value)) changed.add(image);
    result[stack] = [...changed].sort();
  }
  return result;
}

/** Relative path → sha256 of every file under each stack directory (JSON and assets). */
function stackFiles(result: SynthResult): Record<string, string> {
  const files: Record<string, string> = {};
  const root = path.join(result.outdir, "stacks");
  const walk = (rel: string) => {
    for (const d of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${d.name}` : d.name;
      if (d.isDirectory()) walk(child);
      else files[child] = createHash("sha256").update(fs.readFileSync(path.join(root, child))).digest("hex");
    }
  };
  walk("");
  return files;
}

const both = (images: string[]) => ({ dev: images, prod: images });
const fnOf = (result: SynthResult, stack: string, name: string) =>
  Object.values(result.stacks[stack]!.resource.aws_lambda_function as Record<string, TfResource>).find((f) => f.function_name === `portfolio-${name}-${stack}`)!;
const triggerOf = (result: SynthResult, stack: string, image: string) =>
  Object.values(result.stacks[stack]!.resource.terraform_data as Record<string, TfResource>).find((t) => imageOf(t) === image)!.triggers_replace as Record<string, string>;
const dockerImagesOf = (result: SynthResult, stack: string, base: string) =>
  Object.values(result.stacks[stack]!.resource.docker_image as Record<string, TfResource>).filter((d) => imageOf(d) === `base:${base}`);

describe("what a change rebuilds", () => {
  it("an unedited copy synthesizes the baseline's exact output (the comparison is sound)", async () => {
    const again = await synthCopy([]);
    expect(again.stacks).toEqual(baseline.stacks);
    expect(changedImages(baseline, again)).toEqual(both([]));
  });

  it("a handler edit rebuilds only that Lambda (and the standalone Lambda that copies the same file)", () => {
    const after = edited.get("create-labels handler")!;
    expect(changedImages(baseline, after)).toEqual(both(["lambda:create-labels", "lambda:create-labels-standalone"]));
    for (const stack of ["dev", "prod"]) {
      const before = triggerOf(baseline, stack, "lambda:create-labels");
      const now = triggerOf(after, stack, "lambda:create-labels");
      expect(now.content_hash).not.toBe(before.content_hash);
      expect(now.base_image_uri).toBe(before.base_image_uri);
      expect(now.buildspec_hash).toBe(before.buildspec_hash);
      for (const name of ["create-labels", "create-labels-standalone"]) {
        expect(fnOf(after, stack, name).image_uri).not.toBe(fnOf(baseline, stack, name).image_uri);
      }
      expect(fnOf(after, stack, "upload-images").image_uri).toBe(fnOf(baseline, stack, "upload-images").image_uri);
    }
  });

  it("an edit in a handler package rebuilds only its Lambda", () => {
    expect(changedImages(baseline, edited.get("upload-images handler module")!)).toEqual(both(["lambda:upload-images"]));
  });

  it("a receipt_dynamo edit rebuilds that base, the base chained on it and all their Lambdas (+ standalone)", () => {
    const all = ["base:receipt-dynamo", "base:receipt-label", "lambda:create-labels", "lambda:create-labels-standalone", "lambda:sync-dynamo", "lambda:upload-images"];
    const after = edited.get("receipt_dynamo package")!;
    expect(changedImages(baseline, after)).toEqual(both(all));
    // prod: the Lambdas' base image URIs carry the new content tag.
    expect(triggerOf(after, "prod", "lambda:sync-dynamo").base_image_uri).not.toBe(triggerOf(baseline, "prod", "lambda:sync-dynamo").base_image_uri);
  });

  it.each(["receipt_label package", "receipt_chroma package"])("a %s edit rebuilds receipt-label and its Lambdas (+ standalone), not receipt-dynamo nor sync-dynamo", (scenario) => {
    expect(changedImages(baseline, edited.get(scenario)!)).toEqual(
      both(["base:receipt-label", "lambda:create-labels", "lambda:create-labels-standalone", "lambda:upload-images"]),
    );
  });

  it.each(["unrelated README", "unrelated new file", "ignored package tests", "ignored handler tests", "ignored bytecode in a package"])(
    "an %s changes nothing at all: same JSON, same asset files, byte for byte",
    (scenario) => {
      const after = edited.get(scenario)!;
      expect(changedImages(baseline, after)).toEqual(both([]));
      // Not even asset hashes differ: no normalization is needed.
      expect(after.stacks).toEqual(baseline.stacks);
      expect(stackFiles(after)).toEqual(stackFiles(baseline));
    },
  );
});

describe("useStaticBaseImage (dev)", () => {
  it("tags base images stable in dev and by content in prod", () => {
    for (const base of ["receipt-dynamo", "receipt-label"]) {
      expect(dockerImagesOf(baseline, "dev", base).map((d) => String(d.name).split(":").at(-1))).toEqual(["stable"]);
      expect(dockerImagesOf(baseline, "prod", base).map((d) => String(d.name).split(":").at(-1))[0]).toMatch(/^sha-[0-9a-f]{12}$/);
    }
  });

  it("still rebuilds the base (same stable name, new trigger) and its Lambdas when the base's packages change", () => {
    const after = edited.get("receipt_dynamo package")!;
    for (const base of ["receipt-dynamo", "receipt-label"]) {
      const [before] = dockerImagesOf(baseline, "dev", base);
      const [now] = dockerImagesOf(after, "dev", base);
      expect(now!.name).toBe(before!.name);
      expect(String(now!.name).endsWith(":stable")).toBe(true);
      expect(now!.triggers).not.toEqual(before!.triggers);
    }
    for (const name of ["create-labels", "upload-images", "sync-dynamo"]) {
      const before = triggerOf(baseline, "dev", `lambda:${name}`);
      const now = triggerOf(after, "dev", `lambda:${name}`);
      // The base URI is `…:stable` either way: the content hash is what changes.
      expect(now.base_image_uri).toBe(before.base_image_uri);
      expect(now.base_image_uri.endsWith(":stable")).toBe(true);
      expect(now.content_hash).not.toBe(before.content_hash);
      expect(fnOf(after, "dev", name).image_uri).not.toBe(fnOf(baseline, "dev", name).image_uri);
    }
  });
});
