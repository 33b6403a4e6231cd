/**
 * What an identity policy allows, judged as IAM documents it, so tests can ask "may the role do
 * this to that?" whether the policy names resources one by one or by pattern.
 *
 * - Resource and `ArnLike` matching: each of the ARN's six colon-separated components is matched
 *   on its own, `*` standing for any run of characters and `?` for one
 *   (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html,
 *   https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_ARN).
 * - Evaluation: an explicit Deny overrides any Allow; without an Allow the request is denied
 *   (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).
 */
export interface PolicyStatement {
  readonly Sid?: string;
  readonly Effect: string;
  readonly Action: string | readonly string[];
  readonly Resource?: string | readonly string[];
}

function wildcard(value: string, pattern: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${re}$`, "s").test(value);
}

/** `ArnLike` / Resource matching of an ARN against an ARN pattern. */
export function arnLike(arn: string, pattern: string): boolean {
  if (pattern === "*") return true;
  const split = (a: string) => {
    const parts = a.split(":");
    return [...parts.slice(0, 5), parts.slice(5).join(":")];
  };
  const [a, p] = [split(arn), split(pattern)];
  return a.length === 6 && p.length === 6 && a.every((c, i) => wildcard(c, p[i]!));
}

const list = (v: string | readonly string[] | undefined): readonly string[] => (v === undefined ? [] : typeof v === "string" ? [v] : v);

/** Whether the statements allow `action` on `arn` (no condition keys are modelled). */
export function allows(statements: readonly PolicyStatement[], action: string, arn: string): boolean {
  const applies = (s: PolicyStatement) => list(s.Action).some((a) => wildcard(action, a)) && list(s.Resource).some((r) => arnLike(arn, r));
  if (statements.some((s) => s.Effect === "Deny" && applies(s))) return false;
  return statements.some((s) => s.Effect === "Allow" && applies(s));
}
