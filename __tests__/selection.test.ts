import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { analyzeImages, type ImageAnalysis } from "../src/analyze.ts";
import { loadManifest } from "../src/manifest/load.ts";
import { SelectionError } from "../src/manifest/errors.ts";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";

let copy: ExampleCopy;
beforeEach(() => {
  copy = copyExample({ prefix: "selection-test-" });
});
afterEach(() => copy.cleanup());

function write(rel: string, text: string): void {
  fs.mkdirSync(path.dirname(copy.file(rel)), { recursive: true });
  fs.writeFileSync(copy.file(rel), text);
}

/** Adds a Lambda to the copy's manifest (lambdas is its last section). `extra` is indented YAML. */
function addLambda(name: string, dockerfile: string, dockerfileText: string, extra = ""): void {
  write(dockerfile, dockerfileText);
  fs.appendFileSync(copy.manifest, `  ${name}:\n    dockerfile: ${dockerfile}\n${extra}`);
}

async function analyze(): Promise<ImageAnalysis> {
  return analyzeImages(loadManifest(copy.manifest));
}

async function filesOf(name: string, kind: "base" | "lambda" = "lambda"): Promise<string[]> {
  return (await analyze()).image(name, kind).selection.files.map((f) => f.entry.path);
}

async function selectionError(): Promise<string> {
  const error = await analyze().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, "expected synth to reject the selection").toBeInstanceOf(SelectionError);
  return (error as Error).message;
}

describe("what the example images select", () => {
  it("each image gets exactly its sources and Dockerfile, minus .dockerignore and its bases' packages", async () => {
    const analysis = await analyze();
    const files = (name: string, kind: "base" | "lambda") => analysis.image(name, kind).selection.files.map((f) => f.entry.path);
    expect(files("receipt-dynamo", "base")).toEqual([
      "dockerfiles/Dockerfile.receipt_dynamo",
      "receipt_dynamo/pyproject.toml",
      "receipt_dynamo/receipt_dynamo/__init__.py",
      "receipt_dynamo/receipt_dynamo/client.py",
      "receipt_dynamo/receipt_dynamo/models.py",
    ]);
    // Chained on receipt-dynamo: receipt_dynamo comes from there.
    expect(files("receipt-label", "base").filter((f) => f.startsWith("receipt_dynamo"))).toEqual([]);
    expect(files("create-labels", "lambda")).toEqual([
      "infra/create_labels_step_functions/lambdas/Dockerfile.with_base",
      "infra/create_labels_step_functions/lambdas/handler.py",
    ]);
    // tests/ is .dockerignored.
    expect(files("upload-images", "lambda")).toEqual([
      "infra/upload_images/Dockerfile",
      "infra/upload_images/handler/__init__.py",
      "infra/upload_images/handler/naming.py",
      "infra/upload_images/handler/upload.py",
    ]);
    expect([...analysis.image("create-labels", "lambda").selection.excludedPackages].sort()).toEqual(["receipt_chroma", "receipt_dynamo", "receipt_label"]);
    expect(analysis.image("create-labels-standalone", "lambda").selection.excludedPackages).toEqual([]);
    expect(files("create-labels-standalone", "lambda")).toContain("receipt_dynamo/receipt_dynamo/models.py");
    expect(analysis.warnings).toEqual([]);
  });
});

describe("Dockerfile sources", () => {
  it("a wildcard source selects matching files in that directory only", async () => {
    write("infra/sync_dynamo/util.py", "X = 1\n");
    write("infra/sync_dynamo/notes.txt", "not python\n");
    write("infra/sync_dynamo/sub/deep.py", "Y = 2\n");
    expect(await filesOf("sync-dynamo")).toEqual(["infra/sync_dynamo/Dockerfile", "infra/sync_dynamo/handler.py", "infra/sync_dynamo/util.py"]);
  });

  it("--from= stage copies, heredocs and ADD <url> read nothing from the context; ADD <url> warns", async () => {
    addLambda(
      "probe",
      "infra/probe/Dockerfile",
      [
        "# No syntax directive: BuildKit's built-in frontend reads heredocs too.",
        "FROM public.ecr.aws/lambda/python:3.12 AS build",
        "COPY infra/sync_dynamo/handler.py /src/handler.py",
        "FROM public.ecr.aws/lambda/python:3.12",
        "COPY --from=build /src/handler.py ${LAMBDA_TASK_ROOT}/",
        "COPY --from=build portfolio/README.md /docs/",
        "COPY <<EOF /app/config.py",
        "COPY portfolio/README.md /x",
        "EOF",
        "RUN <<EOF",
        "echo receipt_label/pyproject.toml",
        "EOF",
        "ADD https://example.com/model.tar.gz /opt/model/",
        "",
      ].join("\n"),
    );
    const analysis = await analyze();
    const probe = analysis.image("probe", "lambda");
    expect(probe.selection.files.map((f) => f.entry.path)).toEqual(["infra/probe/Dockerfile", "infra/sync_dynamo/handler.py"]);
    expect(probe.warnings).toHaveLength(1);
    expect(probe.warnings[0]).toMatch(/^infra\/probe\/Dockerfile:13: ADD https:\/\/example\.com\/model\.tar\.gz downloads at build time; .*not part of the image's content hash/);
    expect(analysis.warnings).toEqual(probe.warnings);
    // A second image built from the same Dockerfile has the same warning: the user reads it once.
    fs.appendFileSync(copy.manifest, "  probe-two:\n    dockerfile: infra/probe/Dockerfile\n");
    const again = await analyze();
    expect(again.image("probe-two", "lambda").warnings).toEqual(probe.warnings);
    expect(again.warnings).toEqual(probe.warnings);
  });

  it("a source built from an ARG resolves from buildArgs, else the ARG default", async () => {
    const dockerfile = ["ARG HANDLER_DIR=infra/sync_dynamo", "FROM public.ecr.aws/lambda/python:3.12", "ARG HANDLER_DIR", "COPY ${HANDLER_DIR}/*.py ${LAMBDA_TASK_ROOT}/", ""].join("\n");
    addLambda("probe", "infra/probe/Dockerfile", dockerfile);
    expect(await filesOf("probe")).toEqual(["infra/probe/Dockerfile", "infra/sync_dynamo/handler.py"]);

    fs.appendFileSync(copy.manifest, "    buildArgs:\n      HANDLER_DIR: infra/create_labels_step_functions/lambdas\n");
    expect(await filesOf("probe")).toEqual(["infra/create_labels_step_functions/lambdas/handler.py", "infra/probe/Dockerfile"]);
  });

  it("ARG forms: several in one instruction, and ENV that refers to the parent image's variables", async () => {
    const dockerfile = [
      "FROM public.ecr.aws/lambda/python:3.12",
      "ARG DIR=infra/sync_dynamo NAME",
      'ENV PATH="/opt/venv/bin:${PATH}" SRC=${DIR}',
      "COPY ${SRC}/${NAME}.py ${LAMBDA_TASK_ROOT}/",
      "",
    ].join("\n");
    addLambda("probe", "infra/probe/Dockerfile", dockerfile, "    buildArgs:\n      NAME: handler\n");
    expect(await filesOf("probe")).toEqual(["infra/probe/Dockerfile", "infra/sync_dynamo/handler.py"]);
  });

  it("an ARG without a value in a source is rejected with the Dockerfile line and the fix", async () => {
    addLambda("probe", "infra/probe/Dockerfile", ["FROM public.ecr.aws/lambda/python:3.12", "ARG HANDLER_DIR", "COPY ${HANDLER_DIR}/handler.py ${LAMBDA_TASK_ROOT}/", ""].join("\n"));
    expect(await selectionError()).toBe(
      "infra/probe/Dockerfile:3: COPY source uses ${HANDLER_DIR}, which has no value at synth time. Fix: give ARG HANDLER_DIR a default in the Dockerfile, or pass it in the image's buildArgs",
    );
  });

  it("a source that matches nothing is an error", async () => {
    addLambda("probe", "infra/probe/Dockerfile", ["FROM public.ecr.aws/lambda/python:3.12", "COPY infra/probe/handler.py /x/", ""].join("\n"));
    expect(await selectionError()).toMatch(/^infra\/probe\/Dockerfile:2: COPY source "infra\/probe\/handler\.py" matches no file in the build context .* Fix: correct the path/);
  });

  // BuildKit resolves a COPY source joined to "/" (tonistiigi/fsutil copy/copy.go rootPath:
  // filepath.Join("/", p)), so a `..` above the context root stays at the root and the build
  // reads the clamped path: we select what it reads, and warn.
  it("a source that climbs above the context selects the path clamped to the root, with a warning", async () => {
    addLambda("probe", "infra/probe/Dockerfile", ["FROM public.ecr.aws/lambda/python:3.12", "COPY ../../../infra/sync_dynamo/handler.py /x/", ""].join("\n"));
    const analysis = await analyze();
    expect(analysis.image("probe", "lambda").selection.files.map((f) => f.entry.path)).toEqual(["infra/probe/Dockerfile", "infra/sync_dynamo/handler.py"]);
    expect(analysis.warnings).toContainEqual(
      'infra/probe/Dockerfile:2: COPY source "../../../infra/sync_dynamo/handler.py" climbs above the build context; BuildKit clamps it to the context root and reads "infra/sync_dynamo/handler.py". Fix: write it as infra/sync_dynamo/handler.py',
    );
  });

  it("a COPY of a path a base image provides is a synth-time error", async () => {
    addLambda(
      "probe",
      "infra/probe/Dockerfile",
      ["ARG BASE_IMAGE_URI", "FROM ${BASE_IMAGE_URI:-public.ecr.aws/lambda/python:3.12}", "COPY receipt_dynamo/receipt_dynamo/ /opt/receipt_dynamo/", ""].join("\n"),
      // receipt_dynamo comes from receipt-label's parent, receipt-dynamo.
      "    baseImage: receipt-label\n",
    );
    const message = await selectionError();
    expect(message).toMatch(/^infra\/probe\/Dockerfile:3: COPY receipt_dynamo\/receipt_dynamo reads receipt_dynamo, which lambda image probe leaves out because its base image receipt-label already installs it\./);
    expect(message).toMatch(/Fix: remove this COPY from infra\/probe\/Dockerfile .* or drop baseImage for probe$/);
  });

  it.each([
    ["an ignored directory", "receipt_dynamo/tests/", "receipt_dynamo/tests"],
    ["a file in an ignored directory", "receipt_dynamo/tests/test_models.py", "receipt_dynamo/tests/test_models.py"],
    ["a wildcard in an ignored directory", "receipt_dynamo/tests/*.py", "receipt_dynamo/tests/*.py"],
  ])("a COPY of a path entirely excluded by .dockerignore is an error: %s", async (_, source, shown) => {
    addLambda("probe", "infra/probe/Dockerfile", ["FROM public.ecr.aws/lambda/python:3.12", `COPY ${source} /tests/`, ""].join("\n"));
    expect(await selectionError()).toBe(
      `infra/probe/Dockerfile:2: COPY source "${shown}" is excluded by .dockerignore, so the build would not find it. Fix: remove the matching rule from .dockerignore, or this COPY`,
    );
  });

  it("a COPY whose files are all ignored (in a walked directory) is an error too", async () => {
    write("infra/probe/__pycache__/x.pyc", "bytecode");
    addLambda("probe", "infra/probe/Dockerfile", ["FROM public.ecr.aws/lambda/python:3.12", "COPY infra/probe/*.pyc /x/", "COPY infra/probe/Dockerfile /x/", ""].join("\n"));
    fs.writeFileSync(copy.file("infra/probe/stale.pyc"), "bytecode");
    expect(await selectionError()).toMatch(/^infra\/probe\/Dockerfile:2: COPY source "infra\/probe\/\*\.pyc" is excluded by \.dockerignore/);
  });

  it("an include glob adds files to the context and the hash", async () => {
    write("infra/shared/config.json", "{}\n");
    fs.writeFileSync(copy.manifest, fs.readFileSync(copy.manifest, "utf8").replace("    timeout: 60\n", '    timeout: 60\n    include: ["infra/shared/**"]\n'));
    expect(await filesOf("sync-dynamo")).toContain("infra/shared/config.json");
  });
});

describe(".dockerignore", () => {
  it("a ! negation brings a file back, even inside an ignored directory, which is then walked", async () => {
    write("infra/upload_images/handler/tests/conftest.py", "# stays ignored\n");
    fs.appendFileSync(copy.file(".dockerignore"), "!infra/upload_images/handler/tests/test_naming.py\n");
    const analysis = await analyze();
    expect(analysis.walk.directories.has("infra/upload_images/handler/tests")).toBe(true);
    expect(analysis.image("upload-images", "lambda").selection.files.map((f) => f.entry.path)).toEqual([
      "infra/upload_images/Dockerfile",
      "infra/upload_images/handler/__init__.py",
      "infra/upload_images/handler/naming.py",
      "infra/upload_images/handler/tests/test_naming.py",
      "infra/upload_images/handler/upload.py",
    ]);
    // The other tests directory has no negation under it: still not walked.
    expect(analysis.walk.directories.has("receipt_dynamo/tests")).toBe(false);
  });

  it("an ignored directory is not walked when no negation can reach into it", async () => {
    const analysis = await analyze();
    expect(analysis.walk.directories.has("infra/upload_images/handler/tests")).toBe(false);
    expect(analysis.walk.directories.has("receipt_dynamo/tests")).toBe(false);
  });

  it("<Dockerfile>.dockerignore next to the Dockerfile takes precedence over the root one", async () => {
    write("infra/upload_images/Dockerfile.dockerignore", "**/__pycache__\n**/naming.py\n");
    write("infra/upload_images/handler/__pycache__/upload.cpython-312.pyc", "bytecode");
    const analysis = await analyze();
    // The root file's **/tests no longer applies to upload-images; its own rules do.
    expect(analysis.image("upload-images", "lambda").selection.files.map((f) => f.entry.path)).toEqual([
      "infra/upload_images/Dockerfile",
      "infra/upload_images/handler/__init__.py",
      "infra/upload_images/handler/tests/test_naming.py",
      "infra/upload_images/handler/upload.py",
    ]);
    // Every other image still uses the root .dockerignore.
    expect(analysis.image("receipt-dynamo", "base").selection.files.map((f) => f.entry.path)).not.toContain("receipt_dynamo/tests/test_models.py");
  });
});
