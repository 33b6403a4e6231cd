import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { loadManifest } from "../src/manifest/load.ts";
import { EXAMPLE_DIR } from "./helpers/example-copy.ts";
import { lintDockerfile } from "../src/selection/dockerfile-lint.ts";
import {
  checkBaseImageUse,
  checkBasePackagesCopied,
  clampToContext,
  dockerfileSources,
  uncopiedPackages,
} from "../src/selection/dockerfile.ts";
import { SelectionError } from "../src/manifest/errors.ts";

const FILE = "infra/probe/Dockerfile";

/** The message dockerfileSources throws, or fails the test when it does not throw. */
function sourcesError(text: string): string {
  try {
    dockerfileSources(text, {}, FILE);
  } catch (error) {
    expect(error).toBeInstanceOf(SelectionError);
    return (error as Error).message;
  }
  throw new Error("expected dockerfileSources to refuse the Dockerfile");
}

describe("broken Dockerfiles are refused with file:line and a fix", () => {
  it("a JSON-form COPY without its closing ] is a clear error, not a JSON SyntaxError", () => {
    const message = sourcesError('FROM public.ecr.aws/lambda/python:3.12\nCOPY ["handler.py", "/var/task/"\n');
    expect(message).toMatch(/^infra\/probe\/Dockerfile:2: COPY \["handler\.py", "\/var\/task\/" starts like the JSON form but is not a JSON array of strings .*\. Fix: write COPY \["source", "destination"\] with double quotes and the closing \]/);
    expect(message.split("\n")).toHaveLength(1);
  });

  it("single quotes in the JSON form are refused too", () => {
    expect(sourcesError("FROM python:3.12\nCOPY ['a.py', '/x/']\n")).toMatch(/^infra\/probe\/Dockerfile:2: COPY \['a\.py', '\/x\/'\] starts like the JSON form/);
  });

  it.each([
    ["a misspelled FROM", "FROMM python:3.12\nCOPY a.py /x/\n", /^infra\/probe\/Dockerfile:1: Unknown instruction: FROMM\. Fix: correct the instruction's spelling/],
    ["COPY with no argument", "FROM python:3.12\nCOPY\n", /^infra\/probe\/Dockerfile:2: COPY requires at least two arguments\. Fix: write the sources and then the destination/],
    ["COPY with one argument", "FROM python:3.12\nCOPY a.py\n", /^infra\/probe\/Dockerfile:2: COPY requires at least two arguments\. Fix:/],
    ["no FROM at all", "# a comment\nCOPY a.py /x/\nRUN true\n", /^infra\/probe\/Dockerfile:2: No source image provided with `FROM`\. Fix: start the build with FROM <image>/],
    ["an empty Dockerfile", "", /^infra\/probe\/Dockerfile:1: the Dockerfile is empty\. Fix: write its FROM and build steps$/],
    ["a Dockerfile of comments only", "# syntax=docker/dockerfile:1\n\n# nothing yet\n", /^infra\/probe\/Dockerfile:1: the Dockerfile is empty\./],
  ])("%s", (_what, text, expected) => {
    const lint = lintDockerfile(text, FILE);
    expect(lint.errors).toHaveLength(1); // FROMM's "no FROM" follow-up is not reported on top of it
    expect(lint.errors[0]).toMatch(expected);
    // dockerfileSources runs the validator, so selection refuses it with the same line.
    expect(sourcesError(text)).toBe(lint.errors[0]);
  });

  it("the validator's warnings are one-line warnings, and do not stop the build", () => {
    const text = "FROM python:3.12\nmaintainer someone\nCOPY a.py /x/\n";
    const lint = lintDockerfile(text, FILE);
    expect(lint.errors).toEqual([]);
    expect(lint.warnings).toEqual([
      "infra/probe/Dockerfile:2: Instructions should be written in uppercase letters",
      "infra/probe/Dockerfile:2: MAINTAINER has been deprecated",
    ]);
    expect(dockerfileSources(text, {}, FILE).warnings).toEqual(lint.warnings);
  });

  it("modern syntax is not flagged: heredocs, COPY/ADD/RUN flags, FROM --platform, escape directive", () => {
    const text = [
      "# syntax=docker/dockerfile:1",
      "ARG BASE_IMAGE_URI",
      "FROM --platform=$BUILDPLATFORM ${BASE_IMAGE_URI:-public.ecr.aws/lambda/python:3.12} AS base",
      "COPY --link --chmod=755 --chown=1000:1000 a.py ${LAMBDA_TASK_ROOT}/",
      "COPY --parents --exclude=*.md src/ /app/",
      "ADD --checksum=sha256:0000000000000000000000000000000000000000000000000000000000000000 https://example.com/x.tgz /tmp/",
      "RUN --mount=type=cache,target=/root/.cache pip install x",
      "COPY <<EOF /etc/motd",
      "hello",
      "EOF",
      'CMD ["handler.lambda_handler"]',
      "",
    ].join("\n");
    expect(lintDockerfile(text, FILE)).toEqual({ errors: [], warnings: [] });
  });
});

describe("BASE_IMAGE_URI, the seed's trap both ways", () => {
  const withBase = { hasBaseImage: true, buildArgs: {}, baseImage: "receipt-label" };
  const withoutBase = { hasBaseImage: false, buildArgs: {} };

  it("an image with a base image whose FROM never uses BASE_IMAGE_URI is an error", () => {
    const text = "ARG BASE_IMAGE_URI\nFROM public.ecr.aws/lambda/python:3.12\nCOPY handler.py /var/task/\n";
    expect(checkBaseImageUse(text, FILE, withBase)).toEqual([
      "infra/probe/Dockerfile:2: the image is built FROM public.ecr.aws/lambda/python:3.12, not FROM base image receipt-label: the Dockerfile never uses BASE_IMAGE_URI in its final stage's FROM, so it builds without base image receipt-label's packages and fails when the handler imports them. Fix: add ARG BASE_IMAGE_URI above the first FROM and write FROM ${BASE_IMAGE_URI}",
    ]);
  });

  it("a final stage that does not descend from the BASE_IMAGE_URI stage is an error; one that does is fine", () => {
    const unrelated = "ARG BASE_IMAGE_URI\nFROM ${BASE_IMAGE_URI} AS deps\nFROM python:3.12\nCOPY --from=deps /opt /opt\n";
    expect(checkBaseImageUse(unrelated, FILE, withBase)).toEqual([expect.stringMatching(/^infra\/probe\/Dockerfile:3: the image is built FROM python:3\.12, not FROM base image receipt-label/)]);
    const descends = "ARG BASE_IMAGE_URI\nFROM ${BASE_IMAGE_URI} AS deps\nRUN true\nFROM deps\nCOPY a.py /x/\n";
    expect(checkBaseImageUse(descends, FILE, withBase)).toEqual([]);
  });

  it("BASE_IMAGE_URI used in FROM without an ARG before the first FROM never gets the base image", () => {
    const text = "FROM ${BASE_IMAGE_URI:-public.ecr.aws/lambda/python:3.12}\n";
    expect(checkBaseImageUse(text, FILE, withBase)).toEqual([
      expect.stringMatching(/^infra\/probe\/Dockerfile:1: FROM \$\{BASE_IMAGE_URI:-public\.ecr\.aws\/lambda\/python:3\.12\} uses BASE_IMAGE_URI, but no ARG BASE_IMAGE_URI comes before the first FROM.* the default is used instead\. Fix: add ARG BASE_IMAGE_URI above the first FROM$/),
    ]);
  });

  it("the example's pattern passes with and without a base image", () => {
    const text = "ARG BASE_IMAGE_URI\nFROM ${BASE_IMAGE_URI:-public.ecr.aws/lambda/python:3.12}\nCOPY a.py /x/\n";
    expect(checkBaseImageUse(text, FILE, withBase)).toEqual([]);
    expect(checkBaseImageUse(text, FILE, withoutBase)).toEqual([]);
  });

  it("an image without a base image whose FROM ${BASE_IMAGE_URI} has no default is an error", () => {
    const text = "ARG BASE_IMAGE_URI\nFROM ${BASE_IMAGE_URI}\nCOPY a.py /x/\n";
    expect(checkBaseImageUse(text, FILE, withoutBase)).toEqual([
      "infra/probe/Dockerfile:2: FROM ${BASE_IMAGE_URI} has no value: this image has no baseImage, so nothing passes BASE_IMAGE_URI, and the build fails. Fix: give it a default (FROM ${BASE_IMAGE_URI:-public.ecr.aws/lambda/python:3.12}), or give the image a baseImage",
    ]);
    // An ARG default or a build arg gives it a value.
    expect(checkBaseImageUse("ARG BASE_IMAGE_URI=python:3.12\nFROM ${BASE_IMAGE_URI}\n", FILE, withoutBase)).toEqual([]);
    expect(checkBaseImageUse(text, FILE, { hasBaseImage: false, buildArgs: { BASE_IMAGE_URI: "python:3.12" } })).toEqual([]);
  });

  it("other FROM variables need a value too; BuildKit's platform args are always there", () => {
    expect(checkBaseImageUse("ARG PY\nFROM python:${PY}\n", FILE, withoutBase)).toEqual([
      "infra/probe/Dockerfile:2: FROM python:${PY} uses PY, which has no value, so the build fails. Fix: give ARG PY a default, or pass it in the image's buildArgs",
    ]);
    expect(checkBaseImageUse("FROM --platform=$BUILDPLATFORM python:3.12\n", FILE, withoutBase)).toEqual([]);
  });
});

describe("base image packages its Dockerfile never copies", () => {
  it("names each package no COPY/ADD source reaches", () => {
    const sources = dockerfileSources("FROM python:3.12\nCOPY receipt_chroma/ /tmp/receipt_chroma/\n", {}, "dockerfiles/Dockerfile.receipt_label").sources;
    expect(uncopiedPackages(sources, ["receipt_chroma", "receipt_label"])).toEqual(["receipt_label"]);
    expect(checkBasePackagesCopied(sources, ["receipt_chroma", "receipt_label"], "dockerfiles/Dockerfile.receipt_label", "receipt-label")).toEqual([
      "dockerfiles/Dockerfile.receipt_label:1: base image receipt-label lists package receipt_label, but its Dockerfile never COPYs or ADDs it (nor does a base image it is built FROM list it): the images built on receipt-label leave receipt_label out of their context, so nobody installs it. Fix: COPY receipt_label/ into the image and install it, or remove receipt_label from baseImages.receipt-label.packages",
    ]);
  });

  it("a package that a base image it is built FROM lists is installed there, as in the example's receipt-label", () => {
    const sources = [{ pattern: "receipt_chroma" }, { pattern: "receipt_label" }];
    expect(uncopiedPackages(sources, ["receipt_dynamo", "receipt_chroma", "receipt_label"], ["receipt_dynamo"])).toEqual([]);
    expect(uncopiedPackages(sources, ["receipt_dynamo", "receipt_chroma", "receipt_label"])).toEqual(["receipt_dynamo"]);
  });

  it("a whole-context COPY, a wildcard or a file inside the package counts as copying it", () => {
    expect(uncopiedPackages([{ pattern: "" }], ["receipt_dynamo"])).toEqual([]);
    expect(uncopiedPackages([{ pattern: "receipt_*" }], ["receipt_dynamo", "shared/lib"])).toEqual(["shared/lib"]);
    expect(uncopiedPackages([{ pattern: "shared/lib/pyproject.toml" }], ["shared/lib"])).toEqual([]);
  });
});

describe("COPY sources above the context root", () => {
  // BuildKit joins a COPY source to "/" before resolving it in the context (tonistiigi/fsutil
  // copy/copy.go rootPath: `p = filepath.Join("/", p)`, used by moby/buildkit
  // solver/llbsolver/file/backend.go docopy), so `..` cannot climb out: it stops at the root.
  it.each([
    ["../../../receipt_dynamo", "receipt_dynamo", true],
    ["infra/../../receipt_dynamo/x.py", "receipt_dynamo/x.py", true],
    ["..", "", true],
    ["./infra/x/", "infra/x", false],
    ["/receipt_dynamo", "receipt_dynamo", false],
    ["infra/../receipt_dynamo", "receipt_dynamo", false],
  ])("%s reads %j", (source, expected, clamped) => {
    expect(clampToContext(source)).toEqual({ path: expected, clamped });
  });

  it("selects the clamped path and warns", () => {
    const parsed = dockerfileSources("FROM python:3.12\nCOPY ../../../receipt_dynamo /tmp/x\n", {}, FILE);
    expect(parsed.sources).toEqual([{ pattern: "receipt_dynamo", line: 2, instruction: "COPY" }]);
    expect(parsed.warnings).toEqual([
      'infra/probe/Dockerfile:2: COPY source "../../../receipt_dynamo" climbs above the build context; BuildKit clamps it to the context root and reads "receipt_dynamo". Fix: write it as receipt_dynamo',
    ]);
  });
});

describe("the example passes every Dockerfile check, as select.ts would run them", () => {
  it("no errors and no warnings for any example image", () => {
    const manifest = loadManifest(path.join(EXAMPLE_DIR, "images.yaml"));
    const bases = new Map(manifest.baseImages.map((b) => [b.name, b]));
    for (const image of [...manifest.baseImages, ...manifest.lambdas]) {
      const text = fs.readFileSync(path.join(manifest.root, image.dockerfile), "utf8");
      const parsed = dockerfileSources(text, image.buildArgs, image.dockerfile);
      const inherited: string[] = [];
      for (let parent = image.baseImage; parent !== undefined; parent = bases.get(parent)?.baseImage) inherited.push(...(bases.get(parent)?.packages ?? []));
      expect(parsed.warnings, image.name).toEqual([]);
      expect(checkBaseImageUse(text, image.dockerfile, { hasBaseImage: image.baseImage !== undefined, buildArgs: image.buildArgs, baseImage: image.baseImage }), image.name).toEqual([]);
      if (image.kind === "base") expect(checkBasePackagesCopied(parsed.sources, image.packages, image.dockerfile, image.name, inherited), image.name).toEqual([]);
    }
  });
});
