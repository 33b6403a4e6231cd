// TEST-ONLY: environment for processes that talk to the fake AWS instead of AWS.
import { join } from "node:path";
import { tmpdir } from "node:os";
import { FAKE_REGION } from "./codebuild-model.ts";

export const FAKE_ACCESS_KEY_ID = "AKIAFAKEFAKEFAKE0000";
/** Distinctive so tests can assert it never shows up in any output. */
export const FAKE_SECRET_ACCESS_KEY = "fakeSecret/DoNotPrint+9f8e7d6c5b4a3f2e1d0c";

/**
 * A clean environment (not inherited from the developer's shell) pointing the AWS SDK at
 * `endpoint`: no ~/.aws files, no instance metadata, no stray AWS_PROFILE or session token.
 * Pass `credentials: false` / `region: false` to leave them out.
 */
export function fakeAwsEnv(
  endpoint: string,
  opts: { credentials?: boolean; region?: boolean; extra?: Record<string, string> } = {},
): Record<string, string> {
  const nowhere = join(tmpdir(), "fake-aws-nonexistent-dir");
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: nowhere,
    AWS_ENDPOINT_URL: endpoint,
    AWS_CONFIG_FILE: join(nowhere, "config"),
    AWS_SHARED_CREDENTIALS_FILE: join(nowhere, "credentials"),
    AWS_EC2_METADATA_DISABLED: "true",
  };
  if (opts.credentials !== false) {
    env.AWS_ACCESS_KEY_ID = FAKE_ACCESS_KEY_ID;
    env.AWS_SECRET_ACCESS_KEY = FAKE_SECRET_ACCESS_KEY;
  }
  if (opts.region !== false) env.AWS_REGION = FAKE_REGION;
  return { ...env, ...opts.extra };
}
