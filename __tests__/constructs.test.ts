// The construct library as a user composes it in their own CDKTF stacks: one call per image,
// hashing inside, the same checks as images.yaml, cdktf's Testing helpers, one walk per App.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { App, Testing, TerraformStack } from "cdktf";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider/index.js";
import { LambdaFunction } from "@cdktf/provider-aws/lib/lambda-function/index.js";
import { DynamodbTable } from "@cdktf/provider-aws/lib/dynamodb-table/index.js";
import {
  AppImages,
  BaseImage,
  BaseImageSet,
  defineManifest,
  ImageBuildEnvironment,
  LambdaImage,
  LambdaImageFunction,
  ManifestError,
  ImageConstructsError,
  ImagesStack,
} from "../src/index.ts";
import { OrdersStack } from "../examples/own-stack/stack.ts";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";
import { readSnapshot } from "../src/snapshot/snapshot.ts";
import { run } from "../src/cli/main.ts";

/** How `cdktf synth` runs the example app (cdktf.json "app"), without npx's start-up. */
const APP = `${process.execPath} --import tsx main.ts`;
const OWN_STACK = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../examples/own-stack");

/**
 * A fresh copy of examples/own-stack (its monorepo files and app), so tests can edit it. It sits
 * under the repository's .scratch/, so its app resolves cdktf and the package as the example does.
 */
function copyOwnStack(): { dir: string; cleanup(): void } {
  const parent = path.resolve(OWN_STACK, "../../.scratch");
  fs.mkdirSync(parent, { recursive: true });
  const tmp = fs.realpathSync(fs.mkdtempSync(path.join(parent, "own-stack-")));
  const dir = path.join(tmp, "own-stack");
  fs.cpSync(OWN_STACK, dir, { recursive: true, filter: (src) => !/[/\\](node_modules|cdktf\.out)$/.test(src) });
  return { dir, cleanup: () => fs.rmSync(tmp, { recursive: true, force: true }) };
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const edit = (copy: ExampleCopy, rel: string, change: (text: string) => string) => fs.writeFileSync(copy.file(rel), change(fs.readFileSync(copy.file(rel), "utf8")));

function testApp(cacheDir: string): App {
  const app = Testing.app();
  AppImages.configure(app, { cacheDir, writeSnapshot: false });
  return app;
}

let scratch: string;
beforeAll(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), "constructs-test-"));
});
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

describe("examples/own-stack: a user's own stack with cdktf's Testing helpers", () => {
  let copy: { dir: string; cleanup(): void };
  let synthesized: string;
  let app: App;
  beforeAll(() => {
    copy = copyOwnStack();
    app = testApp(path.join(scratch, "own-cache"));
    const stack = new OrdersStack(app, "orders", { root: copy.dir });
    synthesized = Testing.synth(stack);
  });
  afterAll(() => copy.cleanup());

  it("synthesizes valid Terraform with the table, state machine, API route and the image-built function", () => {
    expect(Testing.toHaveResourceWithProperties(synthesized, DynamodbTable.tfResourceType, { name: "orders" })).toBe(true);
    expect(Testing.toHaveResource(synthesized, "aws_sfn_state_machine")).toBe(true);
    expect(Testing.toHaveResourceWithProperties(synthesized, "aws_apigatewayv2_route", { route_key: "POST /orders/{id}" })).toBe(true);
    expect(Testing.toHaveResourceWithProperties(synthesized, LambdaFunction.tfResourceType, { package_type: "Image", architectures: ["arm64"], memory_size: 512 })).toBe(true);
  });

  it("works inside Testing.synthScope too", () => {
    const json = Testing.synthScope((scope) => {
      new ImageBuildEnvironment(scope, "image-builds", { root: copy.dir });
      const image = new LambdaImage(scope, "orders", { dockerfile: "services/orders/Dockerfile", context: "services/orders" });
      new LambdaImageFunction(scope, "fn", { image, timeout: 10 });
    });
    expect(Testing.toHaveResourceWithProperties(json, LambdaFunction.tfResourceType, { package_type: "Image", timeout: 10 })).toBe(true);
    expect(Testing.toHaveResource(json, "aws_codebuild_project")).toBe(true);
  });

  it("a file that changes after it was hashed fails the synth before any stack is written, a stack without images included", () => {
    // Archives are written after every stack is prepared (the worker threads compress meanwhile),
    // just before the first stack is written; a file edited since it was hashed must not reach an
    // archive under the old hash, nor leave some stacks written and others not.
    const edited = copyOwnStack();
    try {
      const app = testApp(path.join(scratch, "changed-cache"));
      const plain = new TerraformStack(app, "a-plain");
      new AwsProvider(plain, "aws", { region: "us-east-1" });
      new DynamodbTable(plain, "table", { name: "plain", hashKey: "id", attribute: [{ name: "id", type: "S" }], billingMode: "PAY_PER_REQUEST" });
      const stack = new TerraformStack(app, "orders");
      new AwsProvider(stack, "aws", { region: "us-east-1" });
      new ImageBuildEnvironment(stack, "image-builds", { root: edited.dir });
      new LambdaImage(stack, "orders", { dockerfile: "services/orders/Dockerfile", context: "services/orders" });
      fs.appendFileSync(path.join(edited.dir, "services/orders/app.py"), "\n# edited during the synth\n");
      expect(() => app.synth()).toThrow(/services\/orders\/app\.py changed while it was archived/);
      const written = fs.existsSync(path.join(app.outdir, "stacks")) ? fs.readdirSync(path.join(app.outdir, "stacks"), { recursive: true }).map(String) : [];
      expect(written.filter((f) => f.endsWith("cdk.tf.json"))).toEqual([]);
    } finally {
      edited.cleanup();
    }
  });

  it("builds on the compute type the image asks for (a large base stays well under the build starter's 15 minutes)", () => {
    const json = JSON.parse(
      Testing.synthScope((scope) => {
        new ImageBuildEnvironment(scope, "image-builds", { root: copy.dir, project: "shop" });
        new BaseImage(scope, "common", { dockerfile: "docker/base.Dockerfile", packages: ["packages/common"], builder: "codebuild", computeType: "BUILD_GENERAL1_LARGE" });
        new LambdaImage(scope, "orders", { dockerfile: "services/orders/Dockerfile", context: "services/orders" });
      }),
    ) as Json;
    const computeTypes = Object.values(json.resource.aws_codebuild_project as Json).map((p) => [p.name, p.environment.compute_type]);
    expect(computeTypes.sort()).toEqual([
      ["shop-stack-base-common", "BUILD_GENERAL1_LARGE"],
      ["shop-stack-orders", "BUILD_GENERAL1_SMALL"],
    ]);
  });

  it("passes the table's name to the function as a reference, not an escaped literal", () => {
    expect(Testing.toHaveResourceWithProperties(synthesized, LambdaFunction.tfResourceType, { environment: { variables: { TABLE_NAME: "${aws_dynamodb_table.orders.name}" } } })).toBe(true);
  });

  it("builds the Lambda image FROM the base image, and the function waits for its build", () => {
    const json = JSON.parse(synthesized) as Json;
    // The base image is built by the Docker provider; the one CodeBuild trigger is the Lambda image's.
    const triggers = Object.values(json.resource.terraform_data as Json);
    expect(triggers).toHaveLength(1);
    const lambdaBuild = triggers[0]!;
    expect(lambdaBuild.provisioner[0]["local-exec"].command).toContain("--base-image-uri");
    expect(lambdaBuild.depends_on).toEqual(expect.arrayContaining([expect.stringMatching(/^docker_registry_image\.common_push_/)]));
    const fn = Object.values(json.resource.aws_lambda_function as Json)[0]!;
    expect(fn.depends_on).toEqual(expect.arrayContaining([expect.stringMatching(/^terraform_data\.orders-image_trigger_build_/)]));
  });

  it("resolves COPY against the image's own build context: the archive holds only the service's files, at context-relative paths", () => {
    const image = app.node.findAll().find((c): c is LambdaImage => c instanceof LambdaImage)!;
    expect(image.analysis.selection.files.map((f) => f.entry.path)).toEqual([
      "services/orders/Dockerfile",
      "services/orders/app.py",
      "services/orders/requirements.txt",
    ]);
    // The buildspec builds the Dockerfile at its place inside the context archive.
    expect(image.analysis.buildspec).toContain("-f Dockerfile ");
  });
});

describe("one walk per App", () => {
  let copy: ExampleCopy;
  beforeAll(() => {
    copy = copyExample({ prefix: "walks-" });
  });
  afterAll(() => copy.cleanup());

  it("30 images across 2 stacks are selected and hashed in one walk: every directory read once, every file hashed once", () => {
    const app = testApp(path.join(scratch, "walk-cache"));
    const images: LambdaImage[] = [];
    for (const stackName of ["one", "two"]) {
      const stack = new TerraformStack(app, stackName);
      new AwsProvider(stack, "aws", { region: "us-east-1" });
      new ImageBuildEnvironment(stack, "image-builds", { root: copy.dir });
      const bases = new BaseImageSet(stack, "bases", {
        images: {
          "receipt-dynamo": { dockerfile: "dockerfiles/Dockerfile.receipt_dynamo", packages: ["receipt_dynamo"] },
          "receipt-label": { dockerfile: "dockerfiles/Dockerfile.receipt_label", packages: ["receipt_dynamo", "receipt_chroma", "receipt_label"], baseImage: "receipt-dynamo" },
        },
      });
      for (let i = 0; i < 15; i++) {
        const [dockerfile, base] = [
          ["infra/create_labels_step_functions/lambdas/Dockerfile.with_base", "receipt-label"],
          ["infra/upload_images/Dockerfile", "receipt-label"],
          ["infra/sync_dynamo/Dockerfile", "receipt-dynamo"],
        ][i % 3]!;
        images.push(new LambdaImage(stack, `fn-${i}`, { dockerfile: dockerfile!, baseImage: bases.get(base!) }));
      }
    }
    app.synth();
    const state = AppImages.of(app);
    expect(images).toHaveLength(30);
    expect(state.walks).toBe(1);
    const [analyzer] = state.allAnalyzers;
    // Each directory the images needed was read exactly once, however many images and stacks read it.
    expect(analyzer!.index.stats.directoriesRead).toBe(analyzer!.index.directories.size);
    expect(analyzer!.index.stats.filesStatted).toBe(analyzer!.index.entries.length);
    // And the same image in both stacks has the same hash.
    expect(images[0]!.hash).toBe(images[15]!.hash);
  });
});

describe("the same checks as images.yaml, reported with the construct path", () => {
  let copy: ExampleCopy;
  beforeAll(() => {
    copy = copyExample({ prefix: "props-" });
  });
  afterAll(() => copy.cleanup());

  // Problems are reported when the App is synthesized (every one at once), not by the constructor.
  const stackWith = (define: (stack: TerraformStack) => void) => {
    const app = testApp(path.join(scratch, "props-cache"));
    const stack = new TerraformStack(app, "MyStack");
    new AwsProvider(stack, "aws", { region: "us-east-1" });
    new ImageBuildEnvironment(stack, "image-builds", { root: copy.dir, project: "shop" });
    define(stack);
    Testing.synth(stack);
  };
  const errorOf = (define: (stack: TerraformStack) => void): Error => {
    try {
      stackWith(define);
    } catch (error) {
      return error as Error;
    }
    throw new Error("expected the props to be rejected");
  };

  it("a missing Dockerfile names the construct, the field and the fix", () => {
    const error = errorOf((stack) => new LambdaImage(stack, "api-image", { dockerfile: "services/api/Dockerfile" }));
    expect(error).toBeInstanceOf(ImageConstructsError);
    expect(error.message).toBe(
      `MyStack/api-image: dockerfile: "services/api/Dockerfile" does not exist (paths are relative to the repository root ${copy.dir}, set by root). Fix: point it at an existing file inside root, or set root on the stack's ImageBuildEnvironment`,
    );
  });

  it("paths that leave the root and an unknown platform (a Dockerfile outside its context is fine: see dockerfile-outside-context.test.ts)", () => {
    expect(errorOf((stack) => new LambdaImage(stack, "a", { dockerfile: "../outside/Dockerfile" })).message).toMatch(/^MyStack\/a: dockerfile: "\.\.\/outside\/Dockerfile" leaves the repository root \(paths are relative to the repository root .*, set by root\)\. Fix:/);
    expect(errorOf((stack) => new LambdaImage(stack, "c", { dockerfile: "infra/sync_dynamo/Dockerfile", platform: "linux/s390x" as never })).message).toMatch(/^MyStack\/c: platform: "linux\/s390x" is not a supported platform/);
  });

  it("a base image of the wrong platform, a secret-looking variable, a memory Lambda refuses, and a token where a literal is hashed", () => {
    expect(
      errorOf((stack) => {
        const base = new BaseImage(stack, "dynamo", { dockerfile: "dockerfiles/Dockerfile.receipt_dynamo", packages: ["receipt_dynamo"] });
        new LambdaImage(stack, "sync", { dockerfile: "infra/sync_dynamo/Dockerfile", baseImage: base, platform: "linux/amd64" });
      }).message,
    ).toMatch(/^MyStack\/sync: platform: is linux\/amd64, but base image dynamo is built only for linux\/arm64\. Fix: add linux\/amd64 to MyStack\/dynamo\.platforms/);
    const fn = (props: Partial<ConstructorParameters<typeof LambdaImageFunction>[2]>) => (stack: TerraformStack) => {
      const image = new LambdaImage(stack, "standalone", { dockerfile: "infra/create_labels_step_functions/lambdas/Dockerfile", platform: "linux/amd64" });
      new LambdaImageFunction(stack, "fn", { image, ...props });
    };
    expect(errorOf(fn({ environment: { DB_URL: "postgres://app:hunter2@db/app" } })).message).toMatch(/^MyStack\/fn: environment\.DB_URL: the value holds a password in a URL.*Fix: read the secret at run time/);
    expect(errorOf(fn({ memorySize: 64 })).message).toMatch(/^MyStack\/fn: memorySize: .*128.*10240/);
    const table = (stack: TerraformStack) => new DynamodbTable(stack, "t", { name: "t", hashKey: "pk", attribute: [{ name: "pk", type: "S" }] });
    expect(
      errorOf((stack) => new LambdaImage(stack, "tok", { dockerfile: "infra/sync_dynamo/Dockerfile", buildArgs: { TABLE: table(stack).name } })).message,
    ).toMatch(/^MyStack\/tok: buildArgs\.TABLE: is a token; image inputs are hashed at synth/);
  });

  it("a Dockerfile source that matches nothing is a selection error at file:line, prefixed with the construct path", () => {
    fs.mkdirSync(copy.file("infra/broken"), { recursive: true });
    fs.writeFileSync(copy.file("infra/broken/Dockerfile"), "FROM public.ecr.aws/lambda/python:3.12\nCOPY missing.py ./\nCOPY also-missing.py ./\n");
    const error = errorOf((stack) => new LambdaImage(stack, "broken", { dockerfile: "infra/broken/Dockerfile", context: "infra/broken" }));
    expect(error).toBeInstanceOf(ImageConstructsError);
    expect(error.message.split("\n")).toEqual([
      expect.stringMatching(/^MyStack\/broken: infra\/broken\/Dockerfile:2: COPY source "missing\.py" matches no file in the build context \(infra\/broken\)\. Fix:/),
      expect.stringMatching(/^MyStack\/broken: infra\/broken\/Dockerfile:3: COPY source "also-missing\.py"/),
    ]);
  });

  it("warnings reach the user as cdktf warning annotations on the image's construct, which `cdktf synth` prints", () => {
    fs.mkdirSync(copy.file("infra/fetching"), { recursive: true });
    fs.writeFileSync(copy.file("infra/fetching/Dockerfile"), "FROM public.ecr.aws/lambda/python:3.12\nADD https://example.com/model.bin /opt/model.bin\n");
    const app = testApp(path.join(scratch, "props-cache"));
    const stack = new TerraformStack(app, "MyStack");
    new AwsProvider(stack, "aws", { region: "us-east-1" });
    new ImageBuildEnvironment(stack, "image-builds", { root: copy.dir });
    new LambdaImage(stack, "fetching", { dockerfile: "infra/fetching/Dockerfile", context: "infra/fetching" });
    app.synth();
    // What the CLI reads and prints (@cdktf/cli-core printAnnotations): the stack's annotations in manifest.json.
    const manifest = JSON.parse(fs.readFileSync(path.join(app.outdir, "manifest.json"), "utf8")) as Json;
    expect(manifest.stacks.MyStack.annotations).toContainEqual(
      expect.objectContaining({
        constructPath: "MyStack/fetching",
        level: "@cdktf/warn",
        message: expect.stringMatching(/^infra\/fetching\/Dockerfile:2: ADD https:\/\/example\.com\/model\.bin downloads at build time; its content is not part of the image's content hash/),
      }),
    );
  });

  it("BaseImageSet: an unknown parent and a cycle are reported before anything is built", () => {
    expect(
      errorOf((stack) => new BaseImageSet(stack, "bases", { images: { a: { dockerfile: "dockerfiles/Dockerfile.receipt_dynamo", packages: ["receipt_dynamo"], baseImage: "nope" } } })).message,
    ).toBe('MyStack/bases: images.a.baseImage: base image "nope" is not defined. Fix: use one of: a');
    expect(
      errorOf(
        (stack) =>
          new BaseImageSet(stack, "bases", {
            images: { a: { dockerfile: "dockerfiles/Dockerfile.receipt_dynamo", packages: ["receipt_dynamo"], baseImage: "b" }, b: { dockerfile: "dockerfiles/Dockerfile.receipt_dynamo", packages: ["receipt_dynamo"], baseImage: "a" } },
          }),
      ).message,
    ).toMatch(/base images form a cycle/);
  });
});

describe("defineManifest: a manifest given as an object gets every check images.yaml gets", () => {
  let copy: ExampleCopy;
  beforeAll(() => {
    copy = copyExample({ prefix: "define-" });
  });
  afterAll(() => copy.cleanup());
  const base = () => ({
    project: "shop",
    stacks: { prod: { region: "us-east-1" } },
    baseImages: { dynamo: { dockerfile: "dockerfiles/Dockerfile.receipt_dynamo", packages: ["receipt_dynamo"] } },
    lambdas: { sync: { dockerfile: "infra/sync_dynamo/Dockerfile", baseImage: "dynamo" } },
  });

  it("accepts a valid one and normalizes it", () => {
    const manifest = defineManifest(base(), { baseDir: copy.dir });
    expect(manifest.root).toBe(copy.dir);
    expect(manifest.lambdas[0]).toMatchObject({ name: "sync", baseImage: "dynamo", platforms: ["linux/arm64"], context: "" });
  });

  it("rejects an unknown baseImage, a bad project name and a secret-looking variable, naming each field", () => {
    const bad = base();
    bad.project = "Shop_1";
    (bad.lambdas.sync as Record<string, unknown>).baseImage = "dynamoo";
    (bad.lambdas.sync as Record<string, unknown>).environment = { API_KEY: "AKIAIOSFODNN7EXAMPLE" };
    let error: Error | undefined;
    try {
      defineManifest(bad, { baseDir: copy.dir });
    } catch (e) {
      error = e as Error;
    }
    expect(error).toBeInstanceOf(ManifestError);
    const lines = error!.message.split("\n");
    expect(lines).toEqual(expect.arrayContaining([expect.stringMatching(/^manifest: project: must be lower-case letters/)]));
    // Schema errors come first; fixed, the semantic ones show.
    bad.project = "shop";
    try {
      defineManifest(bad, { baseDir: copy.dir });
    } catch (e) {
      error = e as Error;
    }
    expect(error!.message.split("\n")).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^manifest: lambdas\.sync\.baseImage: base image "dynamoo" is not defined\. Fix: use one of: dynamo$/),
        expect.stringMatching(/^manifest: lambdas\.sync\.environment\.API_KEY: the value holds an AWS access key id/),
      ]),
    );
  });
});

describe("build contexts below the root", () => {
  it("base-package exclusion, .dockerignore and hashing work inside a sub-context, in images.yaml and constructs alike", async () => {
    const copy = copyExample({ prefix: "subcontext-" });
    try {
      const write = (rel: string, text: string) => {
        fs.mkdirSync(path.dirname(copy.file(rel)), { recursive: true });
        fs.writeFileSync(copy.file(rel), text);
      };
      // A service written for its own directory as the context, vendoring a package a base image installs.
      write("services/x/Dockerfile", "ARG BASE_IMAGE_URI=public.ecr.aws/lambda/python:3.12\nFROM ${BASE_IMAGE_URI}\nCOPY . ${LAMBDA_TASK_ROOT}/\n");
      write("services/x/app.py", "print('x')\n");
      write("services/x/notes.md", "ignored\n");
      write("services/x/.dockerignore", "*.md\n");
      write("services/x/vendored/__init__.py", "");
      write("docker/vendored.Dockerfile", "FROM public.ecr.aws/lambda/python:3.12\nCOPY services/x/vendored /opt/vendored\n");
      edit(copy, "images.yaml", (t) =>
        t
          .replace("lambdas:\n", "lambdas:\n  x:\n    dockerfile: services/x/Dockerfile\n    context: services/x\n    baseImage: vendored\n    computeType: BUILD_GENERAL1_MEDIUM\n")
          .replace("baseImages:\n", "baseImages:\n  vendored:\n    dockerfile: docker/vendored.Dockerfile\n    packages: [services/x/vendored]\n"),
      );
      const { createImagesApp } = await import("../src/app.ts");
      const { app, analysis } = createImagesApp({ manifestFile: copy.manifest, workDir: path.join(scratch, "sub-cache"), outdir: path.join(scratch, "sub-out") });
      const x = analysis.image("x", "lambda");
      expect(x.selection.files.map((f) => f.entry.path)).toEqual(["services/x/.dockerignore", "services/x/Dockerfile", "services/x/app.py"]);
      expect(x.buildspec).toContain("-f Dockerfile ");
      app.synth();
      const prod = JSON.parse(fs.readFileSync(path.join(scratch, "sub-out", "stacks", "prod", "cdk.tf.json"), "utf8")) as Json;
      const project = Object.values(prod.resource.aws_codebuild_project as Json).find((p) => p.name === "portfolio-x-prod")!;
      expect(project.environment.compute_type).toBe("BUILD_GENERAL1_MEDIUM");
      // The archive holds the context's files at their paths inside it.
      const { unzipSync } = await import("fflate");
      const object = Object.values(prod.resource.aws_s3_object as Json).find((o) => String(o.key).startsWith("contexts/x/"))!;
      const entries = Object.keys(unzipSync(fs.readFileSync(path.join(scratch, "sub-out", "stacks", "prod", object.source)))).sort();
      expect(entries).toEqual([".dockerignore", "Dockerfile", "app.py"]);
      // An edit inside the vendored package rebuilds the base and the image, not through the image's own files.
      const before = x.hash;
      fs.appendFileSync(copy.file("services/x/vendored/__init__.py"), "# v2\n");
      const again = createImagesApp({ manifestFile: copy.manifest, workDir: path.join(scratch, "sub-cache2"), outdir: path.join(scratch, "sub-out2") }).analysis;
      expect(again.image("vendored", "base").hash).not.toBe(analysis.image("vendored", "base").hash);
      expect(again.image("x", "lambda").hash).not.toBe(before);
      expect(again.image("x", "lambda").selection.files.map((f) => f.entry.path)).toEqual(x.selection.files.map((f) => f.entry.path));
    } finally {
      copy.cleanup();
    }
  });
});

describe("images.yaml is a front end over the same constructs", () => {
  it("its stacks are made of BaseImage, LambdaImage and LambdaImageFunction", async () => {
    const copy = copyExample({ prefix: "front-" });
    try {
      const { createImagesApp } = await import("../src/app.ts");
      const { app } = createImagesApp({ manifestFile: copy.manifest, workDir: path.join(scratch, "front-cache"), outdir: path.join(scratch, "front-out") });
      const prod = app.node.findChild("prod");
      expect(prod).toBeInstanceOf(ImagesStack);
      const found = prod.node.findAll();
      expect(found.filter((c) => c instanceof BaseImage).map((c) => (c as BaseImage).name)).toEqual(["receipt-dynamo", "receipt-label"]);
      expect(found.filter((c) => c instanceof LambdaImage)).toHaveLength(4);
      expect(found.filter((c) => c instanceof LambdaImageFunction)).toHaveLength(4);
      expect(AppImages.of(app).walks).toBe(1);
    } finally {
      copy.cleanup();
    }
  });
});

describe("deterministic across checkouts", () => {
  it("the same tree at two paths synthesizes to the same JSON and the same hashes", () => {
    const [a, b] = [copyOwnStack(), copyOwnStack()];
    try {
      const synthAt = (dir: string) => {
        const app = testApp(path.join(scratch, `det-${path.basename(path.dirname(dir))}`));
        return Testing.synth(new OrdersStack(app, "orders", { root: dir }));
      };
      const [first, second] = [synthAt(a.dir), synthAt(b.dir)];
      expect(second).toBe(first);
    } finally {
      a.cleanup();
      b.cleanup();
    }
  });
});

describe("plan and graph for a construct app", () => {
  it("plan compares a synth of the app with the last one; graph draws it", async () => {
    const copy = copyOwnStack();
    const out: string[] = [];
    const io = { out: { write: (t: string) => out.push(t) }, err: { write: () => undefined }, cwd: copy.dir };
    const planJson = async () => {
      out.length = 0;
      expect(await run(["plan", "--json", "--app", APP], io)).toBe(0);
      return JSON.parse(out.join("")) as Json;
    };
    try {
      const statuses = (plan: Json) => Object.fromEntries(plan.stacks[0].images.map((i: Json) => [i.name, i.status]));
      expect(statuses(await planJson())).toEqual({ common: "new", "orders-image": "new" });
      // A real synth of the app, as `cdktf synth` runs it, leaves the snapshot plan compares with.
      const { spawnSync } = await import("node:child_process");
      const synth = spawnSync(process.execPath, ["--import", "tsx", "main.ts"], { cwd: copy.dir, encoding: "utf8" });
      expect(synth.status, synth.stderr).toBe(0);
      expect(readSnapshot(path.join(copy.dir, "cdktf.out")).status).toBe("found");
      expect(statuses(await planJson())).toEqual({ common: "unchanged", "orders-image": "unchanged" });
      fs.appendFileSync(path.join(copy.dir, "services/orders/app.py"), "# edited\n");
      const plan = await planJson();
      expect(statuses(plan)).toEqual({ common: "unchanged", "orders-image": "rebuild" });
      expect(plan.stacks[0].images.find((i: Json) => i.name === "orders-image").reasons).toEqual([{ type: "files", added: [], removed: [], changed: ["services/orders/app.py"] }]);

      out.length = 0;
      expect(await run(["graph", "--app", APP], io)).toBe(0);
      expect(out.join("")).toContain("base_common --> lambda_orders_image");
      expect(out.join("")).toContain('ext_1[("public.ecr.aws/lambda/python:3.12")]');
    } finally {
      copy.cleanup();
    }
  });
});

