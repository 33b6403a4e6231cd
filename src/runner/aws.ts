// AWS client construction and the up-front checks shared by the CLI and the Lambda entry.
import { CodeBuildClient } from "@aws-sdk/client-codebuild";
import { ECRClient } from "@aws-sdk/client-ecr";
import { CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
import type { RunnerClients } from "./core.ts";

/**
 * Clients for the runner. No `endpoint` is passed on purpose: the SDK then honours
 * AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_CODEBUILD / _ECR / _CLOUDWATCH_LOGS (and the same settings
 * in the shared config file), which is how tests and LocalStack-style setups redirect us.
 * maxAttempts: 1 because retry.ts is the single retry layer.
 * `region` undefined lets the SDK's own chain (AWS_REGION, profile) decide.
 */
export function createClients(region: string | undefined, ecrRegion?: string): RunnerClients {
  // The project targets Node 20; the SDK's "upgrade to Node 22" notice would land in every apply log.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  const common = { maxAttempts: 1, ...(region ? { region } : {}) };
  return {
    codebuild: new CodeBuildClient(common),
    ecr: new ECRClient({ ...common, ...(ecrRegion ? { region: ecrRegion } : {}) }),
    logs: new CloudWatchLogsClient(common),
  };
}

export class SetupError extends Error {
  override name = "SetupError";
}

export const NO_CREDENTIALS_MESSAGE =
  "no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, " +
  "or run where an instance role is available)";

export const NO_REGION_MESSAGE = "no AWS region configured (pass --region or set AWS_REGION / a profile region)";

/**
 * Resolves region and credentials through the SDK's default chains before any API call, so a
 * misconfigured environment fails with one clear line instead of a stack trace mid-build.
 * Returns the region and the secret values that must never be printed.
 */
export async function preflight(client: CodeBuildClient): Promise<{ region: string; secrets: string[] }> {
  let region: string;
  try {
    region = await client.config.region();
  } catch {
    throw new SetupError(NO_REGION_MESSAGE);
  }
  if (!region) throw new SetupError(NO_REGION_MESSAGE);
  try {
    const creds = await client.config.credentials();
    if (!creds?.accessKeyId || !creds.secretAccessKey) throw new Error("empty credentials");
    return { region, secrets: [creds.secretAccessKey, creds.sessionToken ?? ""].filter(Boolean) };
  } catch (err) {
    // Keep the provider chain's reason (e.g. an expired SSO session) when it is not the generic one.
    const detail = (err as Error)?.message ?? "";
    const generic = !detail || /could not load credentials from any providers|empty credentials/i.test(detail);
    throw new SetupError(generic ? NO_CREDENTIALS_MESSAGE : `${NO_CREDENTIALS_MESSAGE}: ${firstLine(detail)}`);
  }
}

function firstLine(s: string): string {
  return s.split("\n", 1)[0]!.trim();
}

/**
 * Replaces known secret values with `****`. Output we echo (SDK error messages, build log tails)
 * is not ours to filter, but our own credentials must never appear in it, whatever the source.
 */
export function makeRedactor(secrets: string[]): (text: string) => string {
  const values = secrets.filter((s) => s.length >= 8).sort((a, b) => b.length - a.length);
  return (text) => values.reduce((t, v) => t.split(v).join("****"), text);
}
