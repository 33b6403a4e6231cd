/** Trust policy letting one AWS service assume a role. */
export function assumeRolePolicyFor(service: "lambda.amazonaws.com" | "codebuild.amazonaws.com"): string {
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Principal: { Service: service }, Action: "sts:AssumeRole" }],
  });
}
