import { TerraformOutput, TerraformStack, type ITerraformDependable, type TerraformOutputConfig } from "cdktf";
import { ImageProblems } from "./problems.ts";
import { Construct, type IConstruct } from "constructs";
import type { Platform } from "../manifest/schema.ts";

/** What an image built by this stack offers to the images and functions built on it. */
export interface BuiltImage {
  /** `repository:tag` to pull for a platform. */
  uri(platform: Platform): string;
  /** The image's content hash (includes its base images' hashes). */
  readonly hash: string;
  /** The ECR repository's ARN, for pull permissions. */
  readonly repositoryArn: string;
  /** Resources that exist once the image is in the registry. */
  readonly built: readonly ITerraformDependable[];
}

/** An image's Terraform output, named by its construct path inside the stack and what it holds (`api-image-uri`). */
export function imageOutput(image: Construct, what: "uri" | "hash", config: TerraformOutputConfig): TerraformOutput {
  const stack = TerraformStack.of(image);
  const parts = image.node.scopes.slice(image.node.scopes.indexOf(stack) + 1).map((c) => c.node.id);
  const output = new TerraformOutput(image, what, config);
  output.overrideLogicalId(`${parts.join("-").replace(/[^A-Za-z0-9_-]+/g, "-")}-${what}`);
  ImageProblems.of(image).addOutput(image, output);
  return output;
}

/**
 * What `scope` may name in `depends_on`: the resources of its own stack. Terraform takes only
 * whole resources of the configuration there, and a resource of another stack reaches this one
 * as an output of its remote state; the cross-stack values the build already reads (the base
 * image's repository URL) make cdktf deploy that stack first.
 */
export function sameStack(scope: IConstruct, dependables: readonly ITerraformDependable[]): ITerraformDependable[] {
  const stack = TerraformStack.of(scope);
  return dependables.filter((d) => !(d instanceof Construct) || TerraformStack.of(d) === stack);
}
