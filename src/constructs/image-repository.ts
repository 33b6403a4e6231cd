import { Construct } from "constructs";
import { EcrRepository } from "@cdktf/provider-aws/lib/ecr-repository/index.js";
import { EcrLifecyclePolicy } from "@cdktf/provider-aws/lib/ecr-lifecycle-policy/index.js";
import { CACHE_TAG } from "../buildspec.ts";

export interface ImageRepositoryProps {
  /** ECR repository name. */
  readonly name: string;
  /** Whether tags may be overwritten (the `stable` tag is); content-addressed tags never are. @default false */
  readonly mutableTags?: boolean;
  /** Keep this many most recent images. */
  readonly maxImages: number;
  /** Expire untagged images after this many days. */
  readonly maxAgeDays: number;
}

/** An ECR repository with scan on push, tag immutability for content tags and a lifecycle policy. */
export class ImageRepository extends Construct {
  readonly repository: EcrRepository;

  constructor(scope: Construct, id: string, props: ImageRepositoryProps) {
    super(scope, id);
    this.repository = new EcrRepository(this, "repository", {
      name: props.name,
      imageScanningConfiguration: { scanOnPush: true },
      // Content tags never change meaning; only the BuildKit cache tag is rewritten on every build.
      imageTagMutability: props.mutableTags ? "MUTABLE" : "IMMUTABLE_WITH_EXCLUSION",
      imageTagMutabilityExclusionFilter: props.mutableTags ? undefined : [{ filter: CACHE_TAG, filterType: "WILDCARD" }],
      encryptionConfiguration: [{ encryptionType: "AES256" }],
    });
    new EcrLifecyclePolicy(this, "lifecycle", {
      repository: this.repository.name,
      policy: JSON.stringify(lifecyclePolicy(props.maxImages, props.maxAgeDays)),
    });
  }

  get url(): string {
    return this.repository.repositoryUrl;
  }
  get arn(): string {
    return this.repository.arn;
  }
}

/**
 * Untagged images (superseded `stable` and `cache` manifests) expire after `maxAgeDays`; of the
 * content-tagged images (`sha-…`, `git-…`) the `maxImages` most recent are kept. The `cache` and
 * `stable` tags are never counted, so a burst of builds cannot expire the image a stack uses.
 */
export function lifecyclePolicy(maxImages: number, maxAgeDays: number): object {
  return {
    rules: [
      {
        rulePriority: 1,
        description: `Expire untagged images after ${maxAgeDays} days`,
        selection: { tagStatus: "untagged", countType: "sinceImagePushed", countUnit: "days", countNumber: maxAgeDays },
        action: { type: "expire" },
      },
      {
        rulePriority: 2,
        description: `Keep the ${maxImages} most recent content-tagged images`,
        selection: { tagStatus: "tagged", tagPatternList: ["sha-*", "git-*"], countType: "imageCountMoreThan", countNumber: maxImages },
        action: { type: "expire" },
      },
    ],
  };
}
