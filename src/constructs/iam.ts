import { Lazy } from "cdktf";

/** Who may make a service assume a role: the account, and optionally the exact resources, acting through it. */
export interface TrustConditions {
  /** The account whose resources may have the service assume the role (`aws:SourceAccount`). */
  readonly sourceAccount: string;
  /**
   * The resources the service acts for (`aws:SourceArn`, matched with `ArnLike`, so ARN patterns
   * with `*` work), read at synth so the list may still grow. @default any resource of that account
   */
  readonly sourceArns?: readonly string[] | (() => readonly string[]);
  /** Called with the policy text before it is written, e.g. to check its size. */
  readonly check?: (policy: string) => void;
}

/**
 * Trust policy letting one AWS service assume a role, only on behalf of this account's resources
 * (AWS's cross-service confused deputy guidance:
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html). The service sets
 * `aws:SourceAccount`/`aws:SourceArn` when it assumes the role; a condition on a key it does not
 * set would deny it, so callers pass only keys their service documents. `aws:SourceArn` is
 * compared with `ArnLike`, whose values may hold `*` and `?` wildcards in each ARN component
 * (`StringEquals`/`ArnEquals` would compare a pattern literally):
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_ARN
 */
export function assumeRolePolicyFor(service: "lambda.amazonaws.com" | "codebuild.amazonaws.com", conditions: TrustConditions): string {
  return Lazy.stringValue({
    produce: () => {
      const condition: Record<string, Record<string, string | string[]>> = { StringEquals: { "aws:SourceAccount": conditions.sourceAccount } };
      const arns = typeof conditions.sourceArns === "function" ? conditions.sourceArns() : conditions.sourceArns;
      if (arns) condition.ArnLike = { "aws:SourceArn": [...arns] };
      const policy = JSON.stringify({
        Version: "2012-10-17",
        Statement: [{ Effect: "Allow", Principal: { Service: service }, Action: "sts:AssumeRole", Condition: condition }],
      });
      conditions.check?.(policy);
      return policy;
    },
  });
}

/**
 * IAM's size quotas on a role's policies, in characters not counting white space
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html, "IAM and STS
 * character quotas"): a role trust policy 2,048 by default (an increase can be requested, to at
 * most 4,096), and all of a role's inline policies together 10,240.
 */
export const IAM_QUOTAS = {
  roleTrustPolicyDefault: 2048,
  roleTrustPolicyMax: 4096,
  roleInlinePoliciesTotal: 10240,
} as const;

/** Whether `name` matches an IAM wildcard pattern (`*` any run of characters, `?` one character). */
export function matchesIamPattern(name: string, pattern: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${re}$`, "s").test(name);
}

/**
 * Few resource names that grant what `names` need, given the stack's name patterns: in order,
 * each pattern that covers a name no pattern before it covers, then every name no pattern covers
 * (a name the user set by hand), in their first order and without repeats.
 */
export function coverNames(names: readonly string[], patterns: readonly string[]): string[] {
  const used: string[] = [];
  for (const p of patterns) {
    if (names.some((n) => matchesIamPattern(n, p) && !used.some((u) => matchesIamPattern(n, u)))) used.push(p);
  }
  const rest = [...new Set(names)].filter((n) => !used.some((p) => matchesIamPattern(n, p)));
  return [...used, ...rest];
}

/**
 * A policy's size as IAM counts it once Terraform has filled in its values: white space is not
 * counted; each CDKTF token in `text` is replaced by the longest value it can take (`worstCase`),
 * and a token not listed there counts as empty, so the result can only under-count.
 */
export function iamPolicyLength(text: string, worstCase: ReadonlyMap<string, string>): number {
  let resolved = text;
  for (const [token, value] of worstCase) resolved = resolved.split(token).join(value);
  resolved = resolved.replace(/\$\{TfToken\[[^\]]*\]\}/g, "");
  return resolved.replace(/\s/g, "").length;
}
