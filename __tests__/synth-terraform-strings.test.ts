// Terraform reads every string of the configuration as a template: shell `${…}` in a buildspec,
// or in a user's environment value, must arrive escaped or the plan fails.
import * as path from "node:path";
import * as fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";
import { resourcesOf, synthExample, type SynthResult } from "./helpers/synth.ts";
import { lintTemplates, evalTemplate, type EvalContext, type TfDoc } from "../e2e/lib/terraform.ts";

/** Literal strings only: any reference is a test failure. */
const NO_REFERENCES: EvalContext = {
  stackDir: "",
  resolve: (ref) => {
    throw new Error(`unexpected reference ${JSON.stringify(ref)}`);
  },
};

describe("synthesized strings are valid Terraform templates", () => {
  let copy: ExampleCopy;
  let synth: SynthResult;

  beforeAll(async () => {
    copy = copyExample({ prefix: "tf-strings-" });
    // A user's value with shell and template syntax in it must reach Lambda as written.
    const text = fs
      .readFileSync(copy.manifest, "utf8")
      .replace("      LOG_LEVEL: INFO\n", '      LOG_LEVEL: INFO\n      GREETING: "${HOME} and %{ if x }"\n');
    fs.writeFileSync(copy.manifest, text);
    synth = await synthExample(copy.dir, path.join(copy.dir, "..", "out"));
  }, 120_000);
  afterAll(() => copy?.cleanup());

  it("has no unescaped ${…} or %{…} that Terraform would try to evaluate", () => {
    for (const [name, stack] of Object.entries(synth.stacks)) {
      expect(lintTemplates(stack as TfDoc), `stack ${name}`).toEqual([]);
    }
  });

  it("gives CodeBuild the buildspec exactly as generated, once Terraform has read its escapes", () => {
    const prod = synth.stacks.prod!;
    for (const project of Object.values(resourcesOf(prod, "aws_codebuild_project"))) {
      const image = synth.analysis.images.find((i) => project.name === `portfolio-${i.spec.name}-prod`)!;
      expect(evalTemplate(project.source.buildspec, NO_REFERENCES)).toBe(image.buildspec);
      expect(image.buildspec).toContain("${REPOSITORY_URI%%/*}");
    }
  });

  it("gives the Lambda function the environment value exactly as written", () => {
    const fn = Object.values(resourcesOf(synth.stacks.prod!, "aws_lambda_function")).find((f) => f.function_name === "portfolio-create-labels-prod")!;
    expect(evalTemplate(fn.environment.variables.GREETING, NO_REFERENCES)).toBe("${HOME} and %{ if x }");
  });
});
