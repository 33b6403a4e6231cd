// The ECR lifecycle policy every image repository gets, judged by what ECR would expire from a
// repository's pushed images. The evaluator (helpers/ecr-lifecycle.ts) follows AWS's documented
// semantics; its first tests replay AWS's own worked examples, so it is checked against AWS's
// stated outcomes before it judges our policy.
import { describe, expect, it } from "vitest";
import { Testing, TerraformStack } from "cdktf";
import { checkPolicy, expiredImages, tagMatchesPattern, type LifecyclePolicy, type LifecycleRule, type PushedImage } from "./helpers/ecr-lifecycle.ts";
import { ImageRepository, lifecyclePolicy } from "../src/constructs/image-repository.ts";
import { platformTag } from "../src/buildspec.ts";
import type { Platform } from "../src/manifest/schema.ts";

const EXAMPLES = "https://docs.aws.amazon.com/AmazonECR/latest/userguide/lifecycle_policy_examples.html";

function countRule(priority: number, tags: Partial<Pick<LifecycleRule["selection"], "tagPatternList" | "tagPrefixList">>, count: number): LifecycleRule {
  return { rulePriority: priority, selection: { tagStatus: "tagged", ...tags, countType: "imageCountMoreThan", countNumber: count }, action: { type: "expire" } };
}
const ids = (s: Set<string>) => [...s].sort();

describe("the evaluator reproduces AWS's worked examples", () => {
  // Source: EXAMPLES, "Filtering on multiple rules" (examples A and B) and "Filtering on multiple tags in a single rule".
  const abc: PushedImage[] = [
    { id: "A", tags: ["beta-1", "prod-1"], pushedDaysAgo: 10 },
    { id: "B", tags: ["beta-2", "prod-2"], pushedDaysAgo: 9 },
    { id: "C", tags: ["beta-3"], pushedDaysAgo: 8 },
  ];

  it(`multiple rules, example A (prod before beta): only A expires (${EXAMPLES})`, () => {
    const policy = { rules: [countRule(1, { tagPrefixList: ["prod"] }, 1), countRule(2, { tagPrefixList: ["beta"] }, 1)] };
    expect(ids(expiredImages(policy, abc))).toEqual(["A"]);
  });

  it("multiple rules, example B (beta before prod): A and B expire", () => {
    const policy = { rules: [countRule(1, { tagPrefixList: ["beta"] }, 1), countRule(2, { tagPrefixList: ["prod"] }, 1)] };
    expect(ids(expiredImages(policy, abc))).toEqual(["A", "B"]);
  });

  it("several tags in one rule select only images carrying all of them (age and count examples)", () => {
    const images: PushedImage[] = [
      { id: "A", tags: ["alpha-1"], pushedDaysAgo: 12 },
      { id: "B", tags: ["beta-1"], pushedDaysAgo: 11 },
      { id: "C", tags: ["alpha-2", "beta-2"], pushedDaysAgo: 10 },
      { id: "D", tags: ["alpha-3"], pushedDaysAgo: 4 },
      { id: "E", tags: ["beta-3"], pushedDaysAgo: 3 },
      { id: "F", tags: ["alpha-4", "beta-4"], pushedDaysAgo: 2 },
    ];
    const byAge: LifecyclePolicy = {
      rules: [{ rulePriority: 1, selection: { tagStatus: "tagged", tagPatternList: ["alpha*", "beta*"], countType: "sinceImagePushed", countUnit: "days", countNumber: 5 }, action: { type: "expire" } }],
    };
    expect(ids(expiredImages(byAge, images))).toEqual(["C"]);
    const threeTags: PushedImage[] = [
      { id: "A", tags: ["alpha-1", "beta-1", "gamma-1"], pushedDaysAgo: 10 },
      { id: "B", tags: ["alpha-2", "beta-2"], pushedDaysAgo: 9 },
      { id: "C", tags: ["alpha-3", "beta-3", "gamma-2"], pushedDaysAgo: 8 },
    ];
    expect(ids(expiredImages({ rules: [countRule(1, { tagPrefixList: ["alpha", "beta"] }, 1)] }, threeTags))).toEqual(["A", "B"]);
  });

  it("matches tag patterns as ECR documents them: prod* selects prod, prod1, prod2", () => {
    for (const tag of ["prod", "prod1", "prod2"]) expect(tagMatchesPattern(tag, "prod*")).toBe(true);
    expect(tagMatchesPattern("preprod", "prod*")).toBe(false);
    expect(tagMatchesPattern("sha-0123-arm64", "sha-*-arm64")).toBe(true);
    expect(tagMatchesPattern("sha-0123", "sha-*-arm64")).toBe(false);
  });

  it("rejects policies ECR rejects", () => {
    const untagged = { rulePriority: 2, selection: { tagStatus: "untagged", countType: "sinceImagePushed", countUnit: "days", countNumber: 1 }, action: { type: "expire" } } as const;
    expect(() => checkPolicy({ rules: [countRule(1, { tagPatternList: ["a*"] }, 1), countRule(1, { tagPatternList: ["b*"] }, 1)] })).toThrow(/unique/);
    expect(() => checkPolicy({ rules: [{ ...untagged, rulePriority: 1 }, untagged] })).toThrow(/unique|only one rule/);
    expect(() => checkPolicy({ rules: [{ rulePriority: 1, selection: { tagStatus: "any", countType: "imageCountMoreThan", countNumber: 5 }, action: { type: "expire" } }, untagged] })).toThrow(/highest/);
    expect(() => checkPolicy({ rules: [{ rulePriority: 1, selection: { tagStatus: "tagged", countType: "imageCountMoreThan", countNumber: 5 }, action: { type: "expire" } }] })).toThrow(/tagged needs/);
  });
});

describe("the repositories' lifecycle policy", () => {
  const MAX_IMAGES = 10;
  const MAX_AGE_DAYS = 30;
  const policy = lifecyclePolicy(MAX_IMAGES, MAX_AGE_DAYS) as LifecyclePolicy;
  /** `n` builds tagged `<prefix><i><suffix>`, the newest pushed 1 day ago, one a day before that. */
  const builds = (n: number, prefix: string, suffix = "", startDaysAgo = 1): PushedImage[] =>
    Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}${suffix}`, tags: [`${prefix}${i}${suffix}`], pushedDaysAgo: startDaysAgo + n - 1 - i }));

  it("is a policy ECR accepts, even at the schema's largest maxImages and maxAgeDays", () => {
    expect(() => checkPolicy(policy)).not.toThrow();
    expect(() => checkPolicy(lifecyclePolicy(1000, 3650) as LifecyclePolicy)).not.toThrow();
  });

  it("lists its rules in ascending rulePriority, as ECR returns them, so plans show no spurious diff", () => {
    // The provider's aws_ecr_lifecycle_policy docs: ECR reorders rules by rulePriority, and rules
    // not sorted ascending make the resource show a change on every plan.
    const priorities = policy.rules.map((r) => r.rulePriority);
    expect(priorities).toEqual([...priorities].sort((a, b) => a - b));
  });

  it("keeps the maxImages most recent sha- images and expires the rest, oldest first", () => {
    const images = builds(15, "sha-");
    expect(ids(expiredImages(policy, images))).toEqual(["sha-0", "sha-1", "sha-2", "sha-3", "sha-4"]);
  });

  it("(the previous policy, sha-* and git-* in one rule, selected nothing: no image carries both)", () => {
    const previous: LifecyclePolicy = { rules: [countRule(1, { tagPatternList: ["sha-*", "git-*"] }, MAX_IMAGES)] };
    expect(expiredImages(previous, builds(50, "sha-")).size).toBe(0);
  });

  it("counts sha- and git- images separately: maxImages of each kind", () => {
    // A base image with `tags: git` falls back to sha- tags on a dirty tree, so one repository can hold both.
    const images = [...builds(12, "git-"), ...builds(12, "sha-", "", 13)];
    expect(ids(expiredImages(policy, images))).toEqual(["git-0", "git-1", "sha-0", "sha-1"]);
  });

  it("counts each platform of a multi-platform Docker base on its own, and never expires <arch>-stable", () => {
    const perPlatform = (n: number, arch: string) => builds(n, "sha-").map((i) => ({ ...i, id: `${arch}-${i.id}`, tags: [platformTag(i.tags[0]!, `linux/${arch}` as Platform)] }));
    const images = [
      ...perPlatform(12, "arm64"),
      ...perPlatform(12, "amd64"),
      { id: "arm64-stable", tags: [platformTag("stable", "linux/arm64")], pushedDaysAgo: 400 },
      { id: "amd64-stable", tags: [platformTag("stable", "linux/amd64")], pushedDaysAgo: 400 },
    ];
    expect(ids(expiredImages(policy, images))).toEqual(["amd64-sha-0", "amd64-sha-1", "arm64-sha-0", "arm64-sha-1"]);
  });

  /**
   * `builds` builds of a multi-platform CodeBuild base, one a day: each pushes one image per
   * platform under its per-platform tag, then the index joining them under the content tag, and
   * moves `cache` to that index (a copy of the same manifest: the same image, a second tag).
   * `tagOf` gives the per-platform tag; the shipped one is platformTag.
   */
  function multiPlatformBuilds(count: number, tagOf: (tag: string, platform: Platform) => string = platformTag): PushedImage[] {
    const images: PushedImage[] = [];
    for (let i = 0; i < count; i++) {
      const day = count - i;
      const tag = `sha-${String(i).padStart(12, "0")}`;
      for (const p of ["linux/arm64", "linux/amd64"] as const) {
        images.push({ id: `${tag}/${p}`, tags: [tagOf(tag, p)], pushedDaysAgo: day + 0.5, referencedBy: tag });
      }
      images.push({ id: tag, tags: i === count - 1 ? [tag, "cache"] : [tag], pushedDaysAgo: day });
    }
    return images;
  }
  const keptIndexes = (images: PushedImage[], expired: Set<string>) => images.filter((i) => !i.id.includes("/") && !expired.has(i.id)).map((i) => i.id);

  // ECR: a rule counts every image carrying a matching tag, also one a higher-priority rule
  // claims ("can still identify them as if they haven't been expired"), and an image an index
  // references is not expired while the index remains
  // (https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html).
  it.each([1, 3, 5, 10])("keeps maxImages = %i indexes of a multi-platform CodeBuild base, and each one's platform images, after many builds", (n) => {
    const images = multiPlatformBuilds(3 * n + 4);
    const expired = expiredImages(lifecyclePolicy(n, MAX_AGE_DAYS) as LifecyclePolicy, images);
    const newest = images.filter((i) => !i.id.includes("/")).slice(-n).map((i) => i.id);
    expect(keptIndexes(images, expired)).toEqual(newest);
    const kept = images.filter((i) => !expired.has(i.id)).map((i) => i.id);
    expect(kept.sort()).toEqual(newest.flatMap((t) => [t, `${t}/linux/arm64`, `${t}/linux/amd64`]).sort());
  });

  it("(with per-platform tags suffixed <tag>-<arch>, the sha-* rule counted them too: 2 of 5 indexes kept after 6 builds)", () => {
    const images = multiPlatformBuilds(6, (tag, p) => `${tag}-${p.split("/")[1]}`);
    const expired = expiredImages(lifecyclePolicy(5, MAX_AGE_DAYS) as LifecyclePolicy, images);
    expect(keptIndexes(images, expired)).toHaveLength(2);
  });

  it("never expires the cache or stable image by count, even when it also carries an old content tag", () => {
    const images: PushedImage[] = [
      { id: "stable", tags: ["stable", "sha-old"], pushedDaysAgo: 300 },
      { id: "cache", tags: ["cache"], pushedDaysAgo: 200 },
      ...builds(12, "sha-"),
    ];
    const expired = expiredImages(policy, images);
    expect(expired.has("stable")).toBe(false);
    expect(expired.has("cache")).toBe(false);
    // The stable image still counts toward the sha- count (ECR "can still identify" it), so 11 sha- images remain.
    expect(ids(expired)).toEqual(["sha-0", "sha-1"]);
  });

  it("expires untagged images (superseded stable/cache manifests) after maxAgeDays, not before", () => {
    const images: PushedImage[] = [
      { id: "old", tags: [], pushedDaysAgo: MAX_AGE_DAYS + 1 },
      { id: "young", tags: [], pushedDaysAgo: MAX_AGE_DAYS - 1 },
      { id: "cache", tags: ["cache"], pushedDaysAgo: 400 },
    ];
    expect(ids(expiredImages(policy, images))).toEqual(["old"]);
  });

  it("keeps the per-platform images of a kept multi-platform index, and lets them go with it", () => {
    const index = (n: number, daysAgo: number): PushedImage[] => [
      { id: `sha-${n}`, tags: [`sha-${n}`], pushedDaysAgo: daysAgo },
      { id: `sha-${n}/arm64`, tags: [], pushedDaysAgo: daysAgo, referencedBy: `sha-${n}` },
      { id: `sha-${n}/amd64`, tags: [], pushedDaysAgo: daysAgo, referencedBy: `sha-${n}` },
    ];
    const images = Array.from({ length: 11 }, (_, i) => index(i, 100 - i)).flat();
    expect(ids(expiredImages(policy, images))).toEqual(["sha-0", "sha-0/amd64", "sha-0/arm64"]);
  });
});

describe("ImageRepository", () => {
  function synthRepository(props: { forceDelete?: boolean; mutableTags?: boolean }) {
    const app = Testing.app();
    const stack = new TerraformStack(app, "test");
    new ImageRepository(stack, "repo", { name: "r", maxImages: 3, maxAgeDays: 7, ...props });
    const json = JSON.parse(Testing.synth(stack)) as { resource: Record<string, Record<string, Record<string, unknown>>> };
    return Object.values(json.resource.aws_ecr_repository!)[0]!;
  }

  /**
   * Whether ECR lets a push move an existing tag, from the repository's synthesized settings.
   * https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-tag-mutability.html: with tag
   * immutability on, pushing a tag already in the repository fails with
   * ImageTagAlreadyExistsException, except for tags matching an exclusion filter (a tag name, or
   * `*` wildcards); MUTABLE lets every tag move.
   * https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_PutImageTagMutability.html: at
   * most 5 exclusion filters, of filterType WILDCARD.
   */
  function tagMayMove(repo: Record<string, unknown>, tag: string): boolean {
    const filters = (repo.image_tag_mutability_exclusion_filter as { filter: string; filter_type: string }[] | undefined) ?? [];
    expect(filters.length).toBeLessThanOrEqual(5);
    for (const f of filters) expect(f.filter_type).toBe("WILDCARD");
    const excluded = filters.some((f) => tagMatchesPattern(tag, f.filter));
    switch (repo.image_tag_mutability) {
      case "MUTABLE":
        return true;
      case "IMMUTABLE":
        return false;
      case "IMMUTABLE_WITH_EXCLUSION":
        return excluded;
      case "MUTABLE_WITH_EXCLUSION":
        return !excluded;
      default:
        throw new Error(`unknown image_tag_mutability ${String(repo.image_tag_mutability)}`);
    }
  }

  it("lets only the tags that must move be overwritten: content tags stay immutable, in static-tag repositories too", () => {
    const contentTags = ["sha-0123456789ab", "git-0123456", "sha-0123456789ab-arm64", "git-0123456-amd64"];
    const contentRepo = synthRepository({});
    expect(tagMayMove(contentRepo, "cache")).toBe(true);
    for (const tag of [...contentTags, "stable"]) expect(tagMayMove(contentRepo, tag), tag).toBe(false);

    const staticRepo = synthRepository({ mutableTags: true });
    for (const tag of ["cache", "stable", platformTag("stable", "linux/arm64"), platformTag("stable", "linux/amd64")]) expect(tagMayMove(staticRepo, tag), tag).toBe(true);
    // A static-tag stack's base repository also receives content tags (a stack switched from
    // content tags, or another stack's pushes): those never move.
    for (const tag of [...contentTags, platformTag("sha-0123456789ab", "linux/arm64"), "stable-old", "latest"]) expect(tagMayMove(staticRepo, tag), tag).toBe(false);
  });

  it("lets terraform destroy delete a repository that still holds images, unless told not to", () => {
    // ECR's DeleteRepository fails on a repository that contains images unless forced
    // (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DeleteRepository.html); the
    // provider's force_delete sets that flag.
    expect(synthRepository({}).force_delete).toBe(true);
    expect(synthRepository({ forceDelete: false }).force_delete).toBe(false);
  });
});
