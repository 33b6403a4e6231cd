// What a user of images.yaml meets when a manifest is wrong or repetitive: every problem in one
// run and in file order, values shown as YAML read them, shared settings through `defaults` and
// merge keys, secrets told by their values, Dockerfile errors naming every image using the file.
import * as fs from "node:fs";
import * as path from "node:path";
import { Token } from "cdktf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createImagesApp } from "../src/app.ts";
import { environmentProblems, environmentWarnings } from "../src/manifest/checks.ts";
import { ManifestError, SelectionError } from "../src/manifest/errors.ts";
import { loadManifest } from "../src/manifest/load.ts";
import { looksLikeSecret, secretValueReason } from "../src/manifest/secrets.ts";
import { manifestJsonSchema } from "../src/manifest/schema.ts";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";
import { edit, lineOf } from "./helpers/manifest-text.ts";

let copy: ExampleCopy;
let original: string;
let counter = 0;

beforeAll(() => {
  copy = copyExample({ prefix: "usability-" });
  original = fs.readFileSync(copy.manifest, "utf8");
});
afterAll(() => copy.cleanup());

function write(text: string): string {
  const file = path.join(copy.dir, `usability-${++counter}.yaml`);
  fs.writeFileSync(file, text);
  return file;
}

function errorLines(text: string): { lines: string[]; shown: string } {
  const file = write(text);
  try {
    loadManifest(file);
  } catch (error) {
    expect(error).toBeInstanceOf(ManifestError);
    return { lines: (error as Error).message.split("\n"), shown: path.relative(process.cwd(), file) };
  }
  throw new Error(`expected ${file} to be rejected`);
}

describe("every problem in one run, in file order", () => {
  it("five mistakes of five kinds: a number where a string goes, a duplicate key, an undefined base image, a missing Dockerfile, a secret value", () => {
    let text = original;
    text = edit(text, "    packages: [receipt_dynamo]\n", "    packages: [receipt_dynamo]\n    buildArgs:\n      PYTHON: 3.10\n");
    text = edit(text, "    memorySize: 1024\n", "    memorySize: 1024\n    memorySize: 2048\n");
    text = edit(text, "      LOG_LEVEL: INFO\n", "      LOG_LEVEL: INFO\n      DATABASE_URL: postgres://admin:hunter2@db.example.com/app\n");
    text = edit(text, "    dockerfile: infra/upload_images/Dockerfile\n", "    dockerfile: infra/upload_images/Dockerfile.missing\n");
    text = edit(text, "    baseImage: receipt-dynamo\n    timeout: 60", "    baseImage: receipt-dynamoo\n    timeout: 60");
    const { lines, shown } = errorLines(text);
    expect(lines).toEqual([
      `${shown}:${lineOf(text, "PYTHON: 3.10")}: baseImages.receipt-dynamo.buildArgs.PYTHON: expected a string, but YAML reads 3.10 as the number 3.1. Fix: quote it: PYTHON: "3.10"`,
      `${shown}:${lineOf(text, "memorySize: 2048")}: lambdas.create-labels.memorySize: the key "memorySize" appears twice in the same map. Fix: keep one of them: YAML would silently use only the last`,
      expect.stringMatching(new RegExp(`^${shown}:${lineOf(text, "DATABASE_URL")}: lambdas\\.create-labels\\.environment\\.DATABASE_URL: the value holds a password in a URL .*Fix: read the secret at run time .*notSecret$`)),
      `${shown}:${lineOf(text, "Dockerfile.missing")}: lambdas.upload-images.dockerfile: "infra/upload_images/Dockerfile.missing" does not exist (paths are relative to root, ${path.relative(process.cwd(), copy.dir)}/). Fix: point it at an existing file inside root`,
      `${shown}:${lineOf(text, "receipt-dynamoo")}: lambdas.sync-dynamo.baseImage: base image "receipt-dynamoo" is not defined. Fix: use one of: receipt-dynamo, receipt-label`,
    ]);
    // The secret itself is never echoed.
    expect(lines.join("\n")).not.toContain("hunter2");
  });

  it("a type error no longer hides the checks of the rest of the same image", () => {
    let text = edit(original, "    memorySize: 512\n", "    memorySize: lots\n");
    text = edit(text, "    dockerfile: infra/upload_images/Dockerfile\n", "    dockerfile: infra/upload_images/Dockerfile.missing\n");
    const { lines } = errorLines(text);
    expect(lines).toEqual([
      expect.stringMatching(/lambdas\.upload-images\.dockerfile: "infra\/upload_images\/Dockerfile\.missing" does not exist/),
      expect.stringMatching(/lambdas\.upload-images\.memorySize: expected a number, but it is the string "lots"\. Fix: write a number here$/),
    ]);
  });

  it("a boolean where a string goes is shown as YAML read it", () => {
    const text = edit(original, "      LOG_LEVEL: INFO\n", "      LOG_LEVEL: INFO\n      FEATURE: true\n");
    expect(errorLines(text).lines).toEqual([expect.stringMatching(/environment\.FEATURE: expected a string, but YAML reads it as the boolean true\. Fix: quote it: FEATURE: "true"$/)]);
  });
});

describe("shared settings: defaults and YAML merge keys", () => {
  it("defaults apply to every Lambda unless it sets its own; environment maps are merged", () => {
    let text = edit(original, "baseImages:\n", "defaults:\n  lambdas:\n    memorySize: 2048\n    environment:\n      LOG_LEVEL: DEBUG\n      REGION_NAME: us-east-1\nbaseImages:\n");
    text = edit(text, "  sync-dynamo:\n", "  sync-dynamo:\n    environment:\n      LOG_LEVEL: WARN\n");
    const manifest = loadManifest(write(text));
    const fn = (name: string) => manifest.lambdas.find((l) => l.name === name)!.lambda!;
    expect(fn("sync-dynamo")).toMatchObject({ memorySize: 2048, environment: { LOG_LEVEL: "WARN", REGION_NAME: "us-east-1" } });
    expect(fn("create-labels")).toMatchObject({ memorySize: 1024, environment: { LOG_LEVEL: "INFO", REGION_NAME: "us-east-1" } });
    expect(fn("upload-images").memorySize).toBe(512);
  });

  it("a bad default is reported once, under defaults", () => {
    const text = edit(original, "baseImages:\n", "defaults:\n  lambdas:\n    timeout: 5000\n    baseImage: receipt-dynamoo\nbaseImages:\n");
    const { lines, shown } = errorLines(text);
    expect(lines).toEqual([
      expect.stringMatching(new RegExp(`^${shown}:${lineOf(text, "timeout: 5000")}: defaults\\.lambdas\\.timeout: .*900`)),
      `${shown}:${lineOf(text, "receipt-dynamoo")}: defaults.lambdas.baseImage: base image "receipt-dynamoo" is not defined. Fix: use one of: receipt-dynamo, receipt-label`,
    ]);
  });

  it("merge keys (<<: *anchor) are accepted, with anchors under a top-level x- key", () => {
    let text = edit(original, "stacks:\n", "x-small: &small\n  memorySize: 256\n  timeout: 30\nstacks:\n");
    text = edit(text, "  sync-dynamo:\n", "  sync-dynamo:\n    <<: *small\n");
    const manifest = loadManifest(write(text));
    expect(manifest.lambdas.find((l) => l.name === "sync-dynamo")!.lambda).toMatchObject({ memorySize: 256, timeout: 60 });
  });

  it("images.schema.json describes defaults and the x- keys, and is what the schema command writes", () => {
    const schema = manifestJsonSchema() as { properties: Record<string, { properties?: Record<string, unknown> }>; patternProperties: Record<string, unknown> };
    expect(Object.keys(schema.properties.defaults!.properties!)).toEqual(["lambdas", "baseImages", "images"]);
    expect(Object.keys(schema.patternProperties)).toEqual(["^x-"]);
    const committed = fs.readFileSync(path.join(import.meta.dirname, "..", "images.schema.json"), "utf8");
    expect(committed).toBe(`${JSON.stringify(schema, null, 2)}\n`);
  });
});

describe("secrets by value, not by name", () => {
  it.each(["MAX_TOKEN_LENGTH", "SECRETS_MANAGER_REGION", "TOKEN_TTL_SECONDS", "PASSWORD_MIN_LENGTH"])("%s is a setting, not a secret", (name) => {
    expect(looksLikeSecret(name)).toBe(false);
    expect(environmentProblems({ [name]: "60" })).toEqual([]);
    expect(environmentWarnings({ [name]: "60" })).toEqual([]);
  });

  it.each([
    ["postgres://admin:hunter2@db.example.com/app", /password in a URL/],
    ["AKIAIOSFODNN7EXAMPLE", /AWS access key id/],
    ["-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----", /private key/],
    ["wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", /random-looking/],
    ["ghp_0123456789abcdefghijABCDEFGHIJ012345", /GitHub token/],
  ])("%s is a secret value", (value, why) => {
    expect(secretValueReason(value)).toMatch(why);
    expect(environmentProblems({ SETTING: value })).toEqual([expect.objectContaining({ field: "environment.SETTING" })]);
    expect(environmentProblems({ SETTING: value }, { notSecret: ["SETTING"] })).toEqual([]);
  });

  it.each(["https://api.example.com/v1", "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf", "receipt-label-production-bucket-2024", "123e4567-e89b-12d3-a456-426614174000", "a".repeat(64)])(
    "%s is not",
    (value) => expect(secretValueReason(value)).toBeUndefined(),
  );

  it("a name that sounds secret warns for a literal, never for a token or a Terraform reference", () => {
    expect(environmentProblems({ DB_PASSWORD: "hunter2" })).toEqual([]);
    expect(environmentWarnings({ DB_PASSWORD: "hunter2" })).toEqual([expect.objectContaining({ field: "environment.DB_PASSWORD", fix: expect.stringMatching(/notSecret/) })]);
    const token = Token.asString({ resolve: () => "orders" });
    expect(environmentProblems({ TOKEN_TABLE: token })).toEqual([]);
    expect(environmentWarnings({ TOKEN_TABLE: token })).toEqual([]);
    expect(environmentWarnings({ API_TOKEN: "${aws_secretsmanager_secret.api.arn}" })).toEqual([]);
    expect(environmentWarnings({ DB_PASSWORD: "hunter2" }, { notSecret: ["DB_PASSWORD"] })).toEqual([]);
  });

  it("notSecret in images.yaml lets a value through", () => {
    const text = edit(original, "      LOG_LEVEL: INFO\n", "      LOG_LEVEL: INFO\n      PUBLIC_KEY_ID: AKIAIOSFODNN7EXAMPLE\n    notSecret: [PUBLIC_KEY_ID]\n");
    expect(() => loadManifest(write(text))).not.toThrow();
  });
});

describe("Dockerfile errors", () => {
  it("name every image that uses the Dockerfile, once, located from the current directory", () => {
    const text = edit(original, "  sync-dynamo:\n", "  sync-dynamo-copy:\n    dockerfile: infra/sync_dynamo/Dockerfile\n    baseImage: receipt-dynamo\n  sync-dynamo:\n");
    const file = write(text);
    fs.appendFileSync(copy.file("infra/sync_dynamo/Dockerfile"), "COPY infra/sync_dynamo/nope.py /x/\n");
    try {
      let error: unknown;
      try {
        createImagesApp({ manifestFile: file, outdir: path.join(copy.dir, "out"), workDir: path.join(copy.dir, "cache") });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(SelectionError);
      const dockerfile = path.relative(process.cwd(), copy.file("infra/sync_dynamo/Dockerfile"));
      expect((error as Error).message.split("\n")).toEqual([
        expect.stringMatching(new RegExp(`^${dockerfile.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:\\d+: COPY source "infra/sync_dynamo/nope\\.py" matches no file .*\\[Dockerfile of lambda sync-dynamo-copy, lambda sync-dynamo\\]$`)),
      ]);
    } finally {
      fs.writeFileSync(copy.file("infra/sync_dynamo/Dockerfile"), fs.readFileSync(copy.file("infra/sync_dynamo/Dockerfile"), "utf8").replace("COPY infra/sync_dynamo/nope.py /x/\n", ""));
    }
  });

  it("are reported in the same run as the manifest's mistakes, after them", () => {
    const text = edit(original, "    memorySize: 512\n", "    memorySize: lots\n");
    const file = write(text);
    const dockerfile = copy.file("infra/sync_dynamo/Dockerfile");
    const before = fs.readFileSync(dockerfile, "utf8");
    fs.writeFileSync(dockerfile, before.replace(/^COPY /m, "COPYY "));
    try {
      let error: unknown;
      try {
        createImagesApp({ manifestFile: file, outdir: path.join(copy.dir, "out-same-run"), workDir: path.join(copy.dir, "cache-same-run") });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ManifestError);
      expect((error as Error).message.split("\n")).toEqual([
        expect.stringMatching(/lambdas\.upload-images\.memorySize: expected a number/),
        expect.stringMatching(/infra\/sync_dynamo\/Dockerfile:\d+: Unknown instruction: COPYY\. Fix: .*\[Dockerfile of lambda sync-dynamo\]$/),
      ]);
      // Nothing written: no output, no cache.
      expect(fs.existsSync(path.join(copy.dir, "out-same-run"))).toBe(false);
      expect(fs.existsSync(path.join(copy.dir, "cache-same-run"))).toBe(false);
    } finally {
      fs.writeFileSync(dockerfile, before);
    }
  });

  it("an ARG declared only before FROM: the fix is to redeclare it after FROM", () => {
    const dockerfile = copy.file("infra/sync_dynamo/Dockerfile");
    const before = fs.readFileSync(dockerfile, "utf8");
    fs.writeFileSync(dockerfile, `ARG HANDLER_DIR=infra/sync_dynamo\n${before}COPY \${HANDLER_DIR}/handler.py /x/\n`);
    try {
      expect(() => createImagesApp({ manifestFile: copy.manifest, outdir: path.join(copy.dir, "out"), workDir: path.join(copy.dir, "cache") })).toThrow(
        /ARG HANDLER_DIR is declared only before FROM.*Fix: redeclare it after FROM with a line "ARG HANDLER_DIR"/,
      );
    } finally {
      fs.writeFileSync(dockerfile, before);
    }
  });
});
