import type { ITerraformDependable } from "cdktf";
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
