import { Construct } from "constructs";
import { EcrRepository } from "@cdktf/provider-aws/lib/ecr-repository/index.js";
import { EcrLifecyclePolicy } from "@cdktf/provider-aws/lib/ecr-lifecycle-policy/index.js";
import { CACHE_TAG, platformTag } from "../buildspec.ts";
import { STATIC_TAG } from "../hashing/tags.ts";
import { platform } from "../manifest/schema.ts";

export interface ImageRepositoryProps {
  /** ECR repository name. */
  readonly name: string;
  /**
   * Whether the static tags (`stable` and its per-platform tags) move from image to image. Only
   * they, and BuildKit's `cache` tag, may be overwritten; content-addressed tags never are.
   * @default false
   */
  readonly mutableTags?: boolean;
  /** Keep this many most recent images of each content-tag kind (`sha-`, `git-`) and platform suffix. */
  readonly maxImages: number;
  /** Expire untagged images after this many days. */
  readonly maxAgeDays: number;
  /** Let `terraform destroy` delete the repository while it still holds images. @default true */
  readonly forceDelete?: boolean;
  /** Tags on the repository. @default none */
  readonly tags?: Readonly<Record<string, string>>;
}

/** An ECR repository with scan on push, tag immutability for content tags and a lifecycle policy. */
export class ImageRepository extends Construct {
  readonly repository: EcrRepository;

  constructor(scope: Construct, id: string, props: ImageRepositoryProps) {
    super(scope, id);
    this.repository = new EcrRepository(this, "repository", {
      name: props.name,
      imageScanningConfiguration: { scanOnPush: true },
      // Content tags never change meaning: only the tags that must move (the BuildKit cache tag on
      // every build, the static tags of a static-tag stack) are excluded from immutability.
      imageTagMutability: "IMMUTABLE_WITH_EXCLUSION",
      imageTagMutabilityExclusionFilter: movingTags(props.mutableTags ?? false).map((filter) => ({ filter, filterType: "WILDCARD" })),
      encryptionConfiguration: [{ encryptionType: "AES256" }],
      // The repository is this stack's own build output: every image in it can be rebuilt from
      // the monorepo, and ECR refuses to delete a repository that still holds images.
      forceDelete: props.forceDelete ?? true,
      tags: props.tags ? { ...props.tags } : undefined,
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

/** Tags that are moved from image to image (never content-addressed): `cache`, `stable`, `<arch>-stable`. */
const MOVING_TAGS: readonly string[] = [CACHE_TAG, STATIC_TAG, ...platform.options.map((p) => platformTag(STATIC_TAG, p))];

/**
 * ECR takes at most 5 tag mutability exclusion filters per repository
 * (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_PutImageTagMutability.html).
 */
export const MAX_MUTABILITY_EXCLUSION_FILTERS = 5;

/**
 * The tags a repository lets move (its tag mutability exclusion filters, matched exactly: none
 * holds a `*`): `cache` always; `stable` and `<arch>-stable` when the repository holds static tags.
 */
export function movingTags(staticTags: boolean): string[] {
  const tags = staticTags ? [...MOVING_TAGS] : [CACHE_TAG];
  if (tags.length > MAX_MUTABILITY_EXCLUSION_FILTERS) throw new Error(`${tags.length} moving tags; ECR takes at most ${MAX_MUTABILITY_EXCLUSION_FILTERS} exclusion filters`);
  return tags;
}

/** Content-tag kinds: `sha-<hash>` and `git-<commit>`; a multi-platform image's per-platform images carry them prefixed `<arch>-` (platformTag). */
const CONTENT_TAG_PREFIXES = ["sha-", "git-"] as const;

/**
 * ECR applies rules in priority order, and an image that meets a rule's tagging requirements can
 * be expired only by that rule; a `tagPatternList` selects images carrying *all* its patterns,
 * so each kind of tag needs a rule of its own
 * (https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html).
 *
 * 1. One rule per moving tag (`cache`, `stable`, `<arch>-stable`) keeping more than one image:
 *    a tag names one image at a time, so these never expire anything, and they claim the image a
 *    stack uses before any count rule could.
 * 2. Untagged images (superseded `stable`/`cache` manifests, an index's per-platform images once
 *    the index is gone) expire `maxAgeDays` after their push.
 * 3. Per content-tag kind and platform (`arm64-sha-*`, `amd64-sha-*`, `sha-*`, then the same for
 *    `git-`), the `maxImages` most recent images are kept: a multi-platform image pushes one image
 *    per platform (a Docker-built base only those; a CodeBuild-built base also the index joining
 *    them), and each platform, and the indexes, keep `maxImages` builds. The per-platform tags
 *    carry the architecture as a prefix so that `sha-*` cannot match them: a rule counts every
 *    image carrying a matching tag, also images a higher-priority rule claims, so a suffixed
 *    `sha-…-arm64` made `sha-*` keep only a third as many indexes.
 */
export function lifecyclePolicy(maxImages: number, maxAgeDays: number): object {
  const rules: object[] = [];
  const rule = (description: string, selection: object) =>
    rules.push({ rulePriority: rules.length + 1, description, selection, action: { type: "expire" } });
  for (const tag of MOVING_TAGS) {
    rule(`Never expire the image tagged ${tag} by count`, { tagStatus: "tagged", tagPatternList: [tag], countType: "imageCountMoreThan", countNumber: 1 });
  }
  rule(`Expire untagged images after ${maxAgeDays} days`, { tagStatus: "untagged", countType: "sinceImagePushed", countUnit: "days", countNumber: maxAgeDays });
  for (const prefix of CONTENT_TAG_PREFIXES) {
    // Disjoint patterns: `sha-*` matches no `<arch>-sha-…` tag, so each rule counts only its own images.
    for (const pattern of [...platform.options.map((p) => platformTag(`${prefix}*`, p)), `${prefix}*`]) {
      rule(`Keep the ${maxImages} most recent ${pattern} images`, { tagStatus: "tagged", tagPatternList: [pattern], countType: "imageCountMoreThan", countNumber: maxImages });
    }
  }
  return { rules };
}
