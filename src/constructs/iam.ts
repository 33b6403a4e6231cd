import { Lazy } from "cdktf";

/** Who may make a service assume a role: the account, and optionally the exact resources, acting through it. */
export interface TrustConditions {
  /** The account whose resources may have the service assume the role (`aws:SourceAccount`). */
  readonly sourceAccount: string;
  /** The resources the service acts for (`aws:SourceArn`), read at synth so the list may still grow. @default any resource of that account */
  readonly sourceArns?: readonly string[];
}

/**
 * Trust policy letting one AWS service assume a role, only on behalf of this account's resources
 * (AWS's cross-service confused deputy guidance:
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html). The service sets
 * `aws:SourceAccount`/`aws:SourceArn` when it assumes the role; a condition on a key it does not
 * set would deny it, so callers pass only keys their service documents.
 */
export function assumeRolePolicyFor(service: "lambda.amazonaws.com" | "codebuild.amazonaws.com", conditions: TrustConditions): string {
  return Lazy.stringValue({
    produce: () => {
      const condition: Record<string, Record<string, string | string[]>> = { StringEquals: { "aws:SourceAccount": conditions.sourceAccount } };
      if (conditions.sourceArns) condition.ArnLike = { "aws:SourceArn": [...conditions.sourceArns] };
      return JSON.stringify({
        Version: "2012-10-17",
        Statement: [{ Effect: "Allow", Principal: { Service: service }, Action: "sts:AssumeRole", Condition: condition }],
      });
    },
  });
}
