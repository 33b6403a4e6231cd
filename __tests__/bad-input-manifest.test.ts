import * as fs from "node:fs";
import * as path from "node:path";
import { App, TerraformStack, TerraformVariable, Token } from "cdktf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadManifest } from "../src/manifest/load.ts";
import { ManifestError } from "../src/manifest/errors.ts";
import { environmentBytes, lambdaLimitProblems } from "../src/manifest/limits.ts";
import { closestRegion, knownRegions, regionProblem } from "../src/manifest/regions.ts";
import { looksLikeSecret } from "../src/manifest/secrets.ts";
import { manifestSchema, SECRET_LIKE_NAME } from "../src/manifest/schema.ts";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";
import { edit, lineOf } from "./helpers/manifest-text.ts";

let copy: ExampleCopy;
let original: string;
let counter = 0;

beforeAll(() => {
  copy = copyExample({ prefix: "bad-input-manifest-" });
  original = fs.readFileSync(copy.manifest, "utf8");
});
afterAll(() => copy.cleanup());


/** Writes `text` next to the example's manifest and returns the lines of the ManifestError it gets. */
function errorLines(text: string): { lines: string[]; shown: string } {
  const file = path.join(copy.dir, `variant-${++counter}.yaml`);
  fs.writeFileSync(file, text);
  const shown = path.relative(process.cwd(), file);
  try {
    loadManifest(file);
  } catch (error) {
    expect(error).toBeInstanceOf(ManifestError);
    return { lines: (error as Error).message.split("\n"), shown };
  }
  throw new Error(`expected ${file} to be rejected`);
}

function loads(text: string): void {
  const file = path.join(copy.dir, `variant-${++counter}.yaml`);
  fs.writeFileSync(file, text);
  loadManifest(file);
}

const PROD = "  prod:\n    region: us-east-1\n";

describe("regions: checked against the AWS SDK's partitions data", () => {
  it("an unknown stack region names the closest real one", () => {
    const text = edit(original, PROD, "  prod:\n    region: us-east-9\n");
    const { lines, shown } = errorLines(text);
    expect(lines).toEqual([
      `${shown}:${lineOf(text, "us-east-9")}: stacks.prod.region: "us-east-9" is not an AWS region. Fix: use us-east-1, the closest AWS region name; if us-east-9 is a region newer than the installed AWS SDK, update @aws-sdk/core`,
    ]);
  });

  it("an unknown S3 backend region is refused the same way", () => {
    const text = edit(original, PROD, `${PROD}    backend:\n      s3: { bucket: acme-tfstate, key: images/prod.tfstate, region: eu-wset-1 }\n`);
    const { lines, shown } = errorLines(text);
    expect(lines).toEqual([`${shown}:${lineOf(text, "eu-wset-1")}: stacks.prod.backend.s3.region: "eu-wset-1" is not an AWS region. Fix: use eu-west-1, the closest AWS region name; if eu-wset-1 is a region newer than the installed AWS SDK, update @aws-sdk/core`]);
  });

  it.each(["af-south-1", "me-central-1", "ap-southeast-5", "cn-north-1", "us-gov-west-1", "us-iso-east-1", "us-isob-east-1"])(
    "%s (opt-in region or another partition) is accepted",
    (region) => {
      expect(regionProblem(region)).toBeUndefined();
      loads(edit(original, PROD, `  prod:\n    region: ${region}\n`));
    },
  );

  it("the list really comes from the SDK: several partitions, no pseudo-regions, no guesses", () => {
    const regions = knownRegions();
    expect(regions).toEqual(expect.arrayContaining(["us-east-1", "eu-west-1", "cn-northwest-1", "us-gov-east-1"]));
    expect(regions.filter((r) => r.endsWith("-global"))).toEqual([]);
    expect(regions).not.toContain("us-east-9");
    expect(closestRegion("mars-north-1")).toBeUndefined();
    expect(regionProblem("mars-north-1")).toEqual({ message: '"mars-north-1" is not an AWS region', fix: "use an AWS region such as us-east-1" });
  });
});

describe("Lambda limits", () => {
  it("memory, timeout and ephemeral storage outside Lambda's ranges name the range", () => {
    let text = edit(original, "    memorySize: 512\n", "    memorySize: 20480\n    ephemeralStorage: 256\n");
    text = edit(text, "    timeout: 60\n", "    timeout: 901\n");
    const { lines, shown } = errorLines(text);
    expect(lines).toEqual([
      `${shown}:${lineOf(text, "memorySize: 20480")}: lambdas.upload-images.memorySize: is 20480 MB, outside Lambda's range of 128–10240 MB. Fix: set memorySize to a whole number from 128 to 10240`,
      `${shown}:${lineOf(text, "ephemeralStorage: 256")}: lambdas.upload-images.ephemeralStorage: is 256 MB, outside Lambda's range of 512–10240 MB. Fix: set ephemeralStorage to a whole number from 512 to 10240`,
      `${shown}:${lineOf(text, "timeout: 901")}: lambdas.sync-dynamo.timeout: is 901 s, outside Lambda's range of 1–900 s. Fix: set timeout to a whole number from 1 to 900`,
    ]);
  });

  it("ephemeralStorage defaults to 512 and takes Lambda's maximum", () => {
    const file = path.join(copy.dir, `variant-${++counter}.yaml`);
    fs.writeFileSync(file, edit(original, "    memorySize: 512\n", "    memorySize: 512\n    ephemeralStorage: 10240\n"));
    const manifest = loadManifest(file);
    expect(manifest.lambdas.find((l) => l.name === "upload-images")).toBeDefined();
    // The schema's output carries it (ImageSpec.lambda gets it when checkSemantics passes it on).
    const parsed = manifestSchema.parse({ project: "p", stacks: { dev: { region: "us-east-1" } }, lambdas: { a: { dockerfile: "D" }, b: { dockerfile: "D", ephemeralStorage: 10240 } } });
    expect(parsed.lambdas.a!.ephemeralStorage).toBe(512);
    expect(parsed.lambdas.b!.ephemeralStorage).toBe(10240);
  });

  // "Function environment variables: 4 KB, for all environment variables associated with the
  // function, in aggregate": https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
  it("environment variables over 4 KB of keys and values together are refused, naming the largest", () => {
    const big = "x".repeat(4096 - "LOG_LEVEL".length - "INFO".length - "PROMPT".length + 1);
    const text = edit(original, "      LOG_LEVEL: INFO\n", `      LOG_LEVEL: INFO\n      PROMPT: ${big}\n`);
    const { lines, shown } = errorLines(text);
    expect(lines).toEqual([
      `${shown}:${lineOf(text, "environment:")}: lambdas.create-labels.environment: keys and values take 4097 bytes; Lambda allows 4096 bytes (4 KB) for all of a function's environment variables together. Fix: shorten or remove variables (the largest is PROMPT), or keep large settings in SSM Parameter Store or S3 and pass their name`,
    ]);
    // Exactly 4096 bytes is within the limit.
    loads(edit(original, "      LOG_LEVEL: INFO\n", `      LOG_LEVEL: INFO\n      PROMPT: ${big.slice(1)}\n`));
  });

  it("sizes are UTF-8 bytes, not characters", () => {
    expect(environmentBytes({ A: "é" })).toBe(3);
  });

  it("the construct front end gets the same checks; token values have unknown size and are skipped", () => {
    const stack = new TerraformStack(new App(), "limits");
    const fromTerraform = new TerraformVariable(stack, "prompt", { type: "string" });
    expect(
      lambdaLimitProblems({ memorySize: 64, timeout: 300, ephemeralStorage: 512, environment: { PROMPT: fromTerraform.stringValue, SMALL: "x".repeat(4000) } }),
    ).toEqual([{ field: "memorySize", message: "is 64 MB, outside Lambda's range of 128–10240 MB", fix: "set memorySize to a whole number from 128 to 10240" }]);
    // The literal part still counts: a token's key is known.
    expect(lambdaLimitProblems({ environment: { PROMPT: fromTerraform.stringValue, SMALL: "x".repeat(4096 - "SMALL".length) } }).map((p) => p.field)).toEqual(["environment"]);
    expect(lambdaLimitProblems({ memorySize: Token.asNumber(fromTerraform.value) })).toEqual([]);
    expect(lambdaLimitProblems({ memorySize: 128, timeout: 900, ephemeralStorage: 10240, environment: {} })).toEqual([]);
  });
});

describe("unclear messages made clear", () => {
  it("an S3 backend without bucket names the missing field, not 'Invalid input'", () => {
    const text = edit(original, PROD, `${PROD}    backend:\n      s3:\n        key: images/prod.tfstate\n        region: us-east-1\n`);
    const { lines, shown } = errorLines(text);
    expect(lines).toEqual([`${shown}:${lineOf(text, "s3:")}: stacks.prod.backend.s3.bucket: is required. Fix: add stacks.prod.backend.s3.bucket`]);
  });

  it("a backend with neither form, or both, says which keys it takes", () => {
    let { lines } = errorLines(edit(original, PROD, `${PROD}    backend: {}\n`));
    expect(lines).toEqual([expect.stringMatching(/: stacks\.prod\.backend: needs exactly one of cloud, s3\. Fix: write one of cloud: \{…\} or s3: \{…\}/)]);
    ({ lines } = errorLines(edit(original, PROD, `${PROD}    backend:\n      cloud: { organization: acme, workspace: w }\n      s3: { bucket: abc, key: k, region: us-east-1 }\n`)));
    expect(lines).toEqual([expect.stringMatching(/: stacks\.prod\.backend: has cloud and s3, but takes exactly one of them\. Fix: keep one of cloud, s3$/)]);
  });

  it("a YAML error reads as one clean sentence (no 'column 1:.')", () => {
    const text = edit(original, "tags: content\n", "tags: content\nroot: [.\n");
    const { lines, shown } = errorLines(text);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^${shown.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:\\d+: \\(top level\\): invalid YAML at column \\d+: [A-Z][^:]*[a-z\\]]\\. Fix: correct the YAML syntax`));
    expect(lines[0]).not.toMatch(/:\.|at line \d+, column/);
  });

  it.each([
    ["empty", ""],
    ["only comments", "# images.yaml\n# to be written\n"],
  ])("an %s manifest says the file is empty", (_what, text) => {
    const { lines, shown } = errorLines(text);
    expect(lines).toEqual([`${shown}:1: (top level): the manifest is empty. Fix: write at least project and stacks (see README.md, "The manifest"), or point IMAGES_MANIFEST at another file`]);
  });

  it("a manifest path that is a directory is a clear error, not EISDIR", () => {
    let thrown: unknown;
    try {
      loadManifest(copy.dir);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ManifestError);
    const shown = path.relative(process.cwd(), copy.dir);
    expect((thrown as Error).message).toBe(
      `${shown}: (top level): is a directory, not a manifest file (${path.join(shown, "images.yaml")} exists). Fix: point IMAGES_MANIFEST or cdktf.json context.manifest at the images.yaml file itself`,
    );
  });
});

describe("secret-looking names, matched by words", () => {
  it.each(["TOKENIZER_MODEL", "MAX_TOKENS", "KEYBOARD_LAYOUT", "SECRETARY_EMAIL", "DB_PASSWORD_SECRET_ARN", "OPENAI_API_KEY_PARAMETER", "AWS_ACCESS_KEY_ID", "LOG_LEVEL"])(
    "%s is accepted",
    (name) => {
      expect(looksLikeSecret(name)).toBe(false);
      expect(SECRET_LIKE_NAME.test(name)).toBe(false);
    },
  );

  it.each(["GITHUB_TOKEN", "HF_TOKEN", "DB_PASSWORD", "dbPassword", "MYSQL_PASSWD", "OPENAI_API_KEY", "apiKey", "SSH_PRIVATE_KEY", "AWS_SECRET_ACCESS_KEY", "CLIENT_SECRET", "GCP_CREDENTIALS", "credential"])(
    "%s sounds like a secret (a warning)",
    (name) => expect(looksLikeSecret(name)).toBe(true),
  );

  it("the manifest accepts TOKENIZER_MODEL, and HF_TOKEN with a literal value only warns", () => {
    loads(edit(original, "    timeout: 60\n", "    timeout: 60\n    environment:\n      TOKENIZER_MODEL: bert-base-uncased\n"));
    loads(edit(original, "    timeout: 60\n", "    timeout: 60\n    environment:\n      HF_TOKEN: hf_x\n"));
  });
});
