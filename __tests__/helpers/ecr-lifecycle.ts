/**
 * A small evaluator of Amazon ECR lifecycle policies, written from AWS's documentation (not
 * from our policy code), so tests can ask "which of these pushed images would ECR expire?".
 *
 * Sources (Amazon ECR User Guide):
 * - Lifecycle policy properties:
 *   https://docs.aws.amazon.com/AmazonECR/latest/userguide/lifecycle_policy_parameters.html
 *   rulePriority: "Sets the order in which rules are applied, lowest to highest … must give them
 *   each a unique value … A rule with a tagStatus value of any must have the highest value for
 *   rulePriority and be evaluated last." tagStatus "tagged" needs tagPrefixList or
 *   tagPatternList; "untagged" must omit both. tagPatternList: wildcards (*), "prod*" selects
 *   prod, prod1, prod2; "If you specify multiple tags, only the images with all specified tags
 *   are selected"; at most four wildcards per string. countNumber: positive integers.
 * - How lifecycle policies work, "Lifecycle policy evaluation rules":
 *   https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html
 *   "All rules are evaluated at the same time, regardless of rule priority. After all rules are
 *   evaluated, they are then applied based on rule priority." "An image is expired by exactly one
 *   or zero rules." "An image that matches the tagging requirements of a rule cannot be expired
 *   by a rule with a lower priority." "Rules can never mark images that are marked by higher
 *   priority rules, but can still identify them as if they haven't been expired." "Only one
 *   rule is allowed to select untagged images." "If an image is referenced by a manifest list,
 *   it cannot be expired without the manifest list being deleted first." "Expiration is always
 *   ordered by pushed_at_time … older images before newer ones." tagPrefixList/tagPatternList:
 *   "an image is successfully matched if all of the tags in the … value are matched against any
 *   of the image's tags." imageCountMoreThan: "images are sorted from youngest to oldest based
 *   on pushed_at_time and then all images greater than the specified count are expired";
 *   sinceImagePushed: "all images whose pushed_at_time is older than the specified number of
 *   days based on countNumber are expired".
 * - Examples of lifecycle policies (the worked examples the evaluator's own tests replay):
 *   https://docs.aws.amazon.com/AmazonECR/latest/userguide/lifecycle_policy_examples.html
 * - Service quotas: "Lifecycle policy length … 30,720 … The maximum number of characters in a
 *   lifecycle policy": https://docs.aws.amazon.com/AmazonECR/latest/userguide/service-quotas.html
 */

export interface LifecycleRule {
  readonly rulePriority: number;
  readonly description?: string;
  readonly selection: {
    readonly tagStatus: "tagged" | "untagged" | "any";
    readonly tagPatternList?: readonly string[];
    readonly tagPrefixList?: readonly string[];
    readonly countType: "imageCountMoreThan" | "sinceImagePushed";
    readonly countUnit?: "days";
    readonly countNumber: number;
  };
  readonly action: { readonly type: "expire" };
}

export interface LifecyclePolicy {
  readonly rules: readonly LifecycleRule[];
}

/** An image in a repository: its tags, when it was pushed, and the manifest list that references it. */
export interface PushedImage {
  readonly id: string;
  readonly tags: readonly string[];
  readonly pushedDaysAgo: number;
  /** Id of the image index (manifest list) that references this image. */
  readonly referencedBy?: string;
}

/** Throws on a policy ECR's documentation says it would reject. */
export function checkPolicy(policy: LifecyclePolicy): void {
  const fail = (what: string) => {
    throw new Error(`invalid ECR lifecycle policy: ${what}`);
  };
  if (JSON.stringify(policy).length > 30_720) fail("longer than 30,720 characters");
  const priorities = policy.rules.map((r) => r.rulePriority);
  if (new Set(priorities).size !== priorities.length) fail("rulePriority values must be unique");
  const anyRules = policy.rules.filter((r) => r.selection.tagStatus === "any");
  for (const r of anyRules) if (r.rulePriority !== Math.max(...priorities)) fail(`the tagStatus "any" rule ${r.rulePriority} must have the highest rulePriority`);
  if (policy.rules.filter((r) => r.selection.tagStatus === "untagged").length > 1) fail("only one rule may select untagged images");
  for (const r of policy.rules) {
    const s = r.selection;
    const where = `rule ${r.rulePriority}`;
    // ECR also has `transition` actions, storage classes and the sinceImagePulled /
    // sinceImageTransitioned count types (lifecycle_policy_parameters.html); this evaluator does
    // not model them, so a policy using them must not be judged by it.
    if (r.action.type !== "expire") fail(`${where}: only expire actions are modelled here`);
    if (s.countType !== "imageCountMoreThan" && s.countType !== "sinceImagePushed") fail(`${where}: countType ${String(s.countType)} is not modelled here`);
    if ("storageClass" in s) fail(`${where}: storageClass is not modelled here`);
    if (!Number.isInteger(s.countNumber) || s.countNumber < 1) fail(`${where}: countNumber must be a positive integer`);
    if (s.countType === "sinceImagePushed" && s.countUnit !== "days") fail(`${where}: sinceImagePushed needs countUnit "days"`);
    if (s.countType === "imageCountMoreThan" && s.countUnit !== undefined) fail(`${where}: imageCountMoreThan takes no countUnit`);
    const lists = [s.tagPatternList, s.tagPrefixList].filter((l) => l !== undefined);
    if (s.tagStatus === "tagged" && lists.length !== 1) fail(`${where}: tagged needs exactly one of tagPatternList, tagPrefixList`);
    if (s.tagStatus === "tagged" && lists[0]!.length === 0) fail(`${where}: the tag list must not be empty`);
    if (s.tagStatus !== "tagged" && lists.length > 0) fail(`${where}: only tagged rules take a tag list`);
    for (const p of s.tagPatternList ?? []) if ((p.match(/\*/g) ?? []).length > 4) fail(`${where}: more than four wildcards in ${p}`);
  }
}

/** Whether a tag matches a tagPatternList entry: `*` stands for any run of characters, including none. */
export function tagMatchesPattern(tag: string, pattern: string): boolean {
  const re = new RegExp(`^${pattern.split("*").map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`);
  return re.test(tag);
}

/** The image meets the rule's tagging requirements (tag status and every listed tag). */
function matchesTagging(rule: LifecycleRule, image: PushedImage): boolean {
  const s = rule.selection;
  if (s.tagStatus === "any") return true;
  if (s.tagStatus === "untagged") return image.tags.length === 0;
  if (image.tags.length === 0) return false;
  if (s.tagPatternList) return s.tagPatternList.every((p) => image.tags.some((t) => tagMatchesPattern(t, p)));
  return s.tagPrefixList!.every((p) => image.tags.some((t) => t.startsWith(p)));
}

/** The images a rule marks, judged on its own against every image ("as if they haven't been expired"). */
function marked(rule: LifecycleRule, images: readonly PushedImage[]): Set<string> {
  const selected = images.filter((i) => matchesTagging(rule, i));
  const s = rule.selection;
  if (s.countType === "sinceImagePushed") return new Set(selected.filter((i) => i.pushedDaysAgo > s.countNumber).map((i) => i.id));
  const youngestFirst = [...selected].sort((a, b) => a.pushedDaysAgo - b.pushedDaysAgo);
  return new Set(youngestFirst.slice(s.countNumber).map((i) => i.id));
}

/** Ids of the images ECR would expire under `policy`. */
export function expiredImages(policy: LifecyclePolicy, images: readonly PushedImage[]): Set<string> {
  checkPolicy(policy);
  const rules = [...policy.rules].sort((a, b) => a.rulePriority - b.rulePriority);
  const marks = new Map(rules.map((r) => [r, marked(r, images)]));
  const expired = new Set<string>();
  for (const image of images) {
    // The first rule (by priority) whose tagging requirements the image meets is the only one that may expire it.
    const owner = rules.find((r) => matchesTagging(r, image));
    if (owner && marks.get(owner)!.has(image.id)) expired.add(image.id);
  }
  // An image an index still references stays until that index is expired too.
  for (const image of images) {
    if (image.referencedBy !== undefined && !expired.has(image.referencedBy)) expired.delete(image.id);
  }
  return expired;
}
