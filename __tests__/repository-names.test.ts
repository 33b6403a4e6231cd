import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { defineManifest } from "../src/manifest/load.ts";
import type { ManifestInput } from "../src/manifest/schema.ts";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";
import { resourcesOf, synthExample } from "./helpers/synth.ts";

/**
 * ECR repository names are unique per account and region ("The repository name must be unique
 * within the registry": https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreateRepository.html),
 * so two projects deploying the same stack name into one account must get different names for
 * every repository, base images' included.
 */

let copy: ExampleCopy;
let original: string;

async function repositoryNames(name: string, edit: (text: string) => string): Promise<string[]> {
  const manifest = path.join(copy.dir, `${name}.yaml`);
  fs.writeFileSync(manifest, edit(original));
  const synth = await synthExample(copy.dir, path.join(path.dirname(copy.dir), `out-${name}`), { manifest });
  return Object.values(synth.stacks).flatMap((stack) => Object.values(resourcesOf(stack, "aws_ecr_repository")).map((r) => r.name as string)).sort();
}

const renamed = (project: string) => (text: string) => text.replace("project: portfolio\n", `project: ${project}\n`);
const names: Record<string, string[]> = {};

beforeAll(async () => {
  copy = copyExample({ prefix: "repository-names-" });
  original = fs.readFileSync(copy.manifest, "utf8");
  expect(original).toContain("project: portfolio\n");
  names.portfolio = await repositoryNames("portfolio", (t) => t);
  names.billing = await repositoryNames("billing", renamed("billing"));
  names.legacy = await repositoryNames("legacy", (t) => t.replace("  maxAgeDays: 30\n", "  maxAgeDays: 30\n  legacyBaseRepositoryNames: true\n"));
});
afterAll(() => copy.cleanup());

describe("ECR repository names", () => {
  it("carry the project for base images too: <project>-base-<name>-<stack>", () => {
    expect(names.portfolio!.filter((n) => n.includes("-base-"))).toEqual([
      "portfolio-base-receipt-dynamo-dev",
      "portfolio-base-receipt-dynamo-prod",
      "portfolio-base-receipt-label-dev",
      "portfolio-base-receipt-label-prod",
    ]);
    expect(names.portfolio!.every((n) => n.startsWith("portfolio-"))).toBe(true);
  });

  it("of two projects with the same stacks and images never collide in one account", () => {
    expect(names.billing).toHaveLength(names.portfolio!.length);
    expect(names.billing!.filter((n) => names.portfolio!.includes(n))).toEqual([]);
  });

  it("stay base-<name>-<stack> with ecr.legacyBaseRepositoryNames, so deployed repositories are kept", () => {
    expect(names.legacy!.filter((n) => !n.startsWith("portfolio-"))).toEqual([
      "base-receipt-dynamo-dev",
      "base-receipt-dynamo-prod",
      "base-receipt-label-dev",
      "base-receipt-label-prod",
    ]);
    // Only the base repositories change.
    expect(names.legacy!.filter((n) => n.startsWith("portfolio-"))).toEqual(names.portfolio!.filter((n) => !n.includes("-base-")));
  });
});

describe("name checks on the new names", () => {
  const example = () => parse(fs.readFileSync(copy.manifest, "utf8")) as ManifestInput & { lambdas: Record<string, unknown> };

  it("reject a base repository name over ECR's 256 characters, counting the project", () => {
    // A repository name is at most 256 characters:
    // https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreateRepository.html
    const input = example();
    input.lambdas = {};
    // 240 characters of project: base-receipt-label-prod (23) fitted, <project>-base-receipt-label-prod (264) does not.
    const project = `p${"x".repeat(239)}`;
    input.project = project;
    expect(() => defineManifest(input, { baseDir: copy.dir })).toThrow(
      `manifest: baseImages.receipt-label: the ECR repository name "${project}-base-receipt-label-prod" (project-base-name-stack) is 264 characters; ECR allows 256. Fix: shorten the base image, project or stack name by 8 characters`,
    );
  });
});
