import * as fs from "node:fs";
import * as path from "node:path";
import { App, TerraformStack } from "cdktf";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AppImages, ImageBuildEnvironment, LambdaImage, LambdaImageFunction } from "../src/index.ts";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";
import { StackView } from "./helpers/stack-view.ts";
import { synthExample, type SynthResult, type TfJson, type TfResource } from "./helpers/synth.ts";

/**
 * Lambda pulls a function's image from ECR as the Lambda service: the repository's policy must
 * allow `ecr:BatchGetImage` and `ecr:GetDownloadUrlForLayer` to `lambda.amazonaws.com`, and when
 * it does not, Lambda adds that statement itself at CreateFunction, which needs
 * `ecr:SetRepositoryPolicy`/`ecr:GetRepositoryPolicy` on the caller
 * (https://docs.aws.amazon.com/lambda/latest/dg/images-create.html, "Amazon ECR permissions";
 * https://repost.aws/knowledge-center/lambda-ecr-image). AWS scopes such a statement with
 * `aws:sourceArn` to Lambda functions (the same pages' cross-account example).
 */

let copy: ExampleCopy;
let synth: SynthResult;

beforeAll(async () => {
  copy = copyExample({ prefix: "lambda-pull-policy-" });
  synth = await synthExample(copy.dir, path.join(path.dirname(copy.dir), "cdktf.out"));
});
afterAll(() => copy.cleanup());

const ACCOUNT = "${data.aws_caller_identity.account.account_id}";
const PARTITION = "${data.aws_partition.partition.partition}";

function policiesOf(view: StackView): [string, TfResource, { Statement: TfJson[] }][] {
  return view.all("aws_ecr_repository_policy").map(([id, r]) => [id, r, JSON.parse(r.policy as string)]);
}

describe.each(["dev", "prod"])("stack %s", (stack) => {
  const view = () => StackView.of(synth.outdir, stack, synth.stacks[stack]!);

  it("gives every function's image repository a policy letting Lambda pull it for that function only, and creates the function after it", () => {
    const functions = view().all("aws_lambda_function").filter(([, f]) => f.package_type === "Image");
    expect(functions.map(([, f]) => f.function_name).sort()).toEqual(
      ["create-labels", "create-labels-standalone", "sync-dynamo", "upload-images"].map((n) => `portfolio-${n}-${stack}`).sort(),
    );
    for (const [, fn] of functions) {
      const [repositoryId] = view().deref(String(fn.image_uri).replace(/:sha-[0-9a-f]{12}$/, ""), "aws_ecr_repository", "repository_url");
      const found = policiesOf(view()).filter(([, r]) => r.repository === `\${aws_ecr_repository.${repositoryId}.name}`);
      expect(found, `policy of ${fn.function_name}'s repository`).toHaveLength(1);
      const [policyId, , document] = found[0]!;
      expect(document.Statement).toEqual([
        {
          Sid: "LambdaECRImageRetrievalPolicy",
          Effect: "Allow",
          Principal: { Service: "lambda.amazonaws.com" },
          Action: ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
          Condition: {
            ArnLike: {
              "aws:SourceArn": [
                `arn:${PARTITION}:lambda:us-east-1:${ACCOUNT}:function:${fn.function_name}`,
                `arn:${PARTITION}:lambda:us-east-1:${ACCOUNT}:function:${fn.function_name}:*`,
              ],
            },
          },
        },
      ]);
      expect(fn.depends_on).toContain(`aws_ecr_repository_policy.${policyId}`);
    }
  });

  it("gives base image repositories no such policy: no function runs them", () => {
    const baseRepos = view().all("aws_ecr_repository").filter(([, r]) => String(r.name).includes("-base-")).map(([id]) => `\${aws_ecr_repository.${id}.name}`);
    expect(baseRepos).toHaveLength(2);
    expect(policiesOf(view()).filter(([, r]) => baseRepos.includes(r.repository as string))).toEqual([]);
  });
});

describe("LambdaImageFunction", () => {
  function stackWith(define: (stack: TerraformStack) => void): TfJson {
    const outdir = fs.mkdtempSync(path.join(path.dirname(copy.dir), "constructs-"));
    const app = new App({ outdir });
    AppImages.configure(app, { cacheDir: `${outdir}.work` });
    const stack = new TerraformStack(app, "svc");
    new AwsProvider(stack, "aws", { region: "eu-west-1" });
    new ImageBuildEnvironment(stack, "images", { root: copy.dir, region: "eu-west-1" });
    define(stack);
    app.synth();
    return JSON.parse(fs.readFileSync(path.join(outdir, "stacks", "svc", "cdk.tf.json"), "utf8")) as TfJson;
  }

  it("lists every function running one image in that repository's one policy", () => {
    const json = stackWith((stack) => {
      const image = new LambdaImage(stack, "Standalone", { dockerfile: "infra/create_labels_step_functions/lambdas/Dockerfile", platform: "linux/amd64" });
      new LambdaImageFunction(stack, "First", { image });
      new LambdaImageFunction(stack, "Second", { image });
    });
    const policies = Object.values(json.resource.aws_ecr_repository_policy) as TfResource[];
    expect(policies).toHaveLength(1);
    const arns = JSON.parse(policies[0]!.policy as string).Statement[0].Condition.ArnLike["aws:SourceArn"] as string[];
    const arn = (name: string) => new RegExp(`^arn:\\$\\{data\\.aws_partition\\.[^}]+\\}:lambda:eu-west-1:\\$\\{data\\.aws_caller_identity\\.[^}]+\\}:function:${name}$`);
    expect(arns.filter((a) => !a.endsWith(":*"))).toEqual([expect.stringMatching(arn("lambda-image-builds-svc-first")), expect.stringMatching(arn("lambda-image-builds-svc-second"))]);
  });

  it("writes no repository policy for an image it did not build: that repository is not ours", () => {
    const json = stackWith((stack) => {
      new LambdaImageFunction(stack, "Brought", { image: { imageUri: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/theirs:v1", platform: "linux/arm64", built: [] } });
    });
    expect(json.resource.aws_ecr_repository_policy).toBeUndefined();
    expect(Object.keys(json.resource.aws_lambda_function)).toHaveLength(1);
  });
});
