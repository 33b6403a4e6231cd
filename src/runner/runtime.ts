// Where the bundled runner runs, in one place: the build starter's Lambda runtime and the esbuild
// targets follow from these constants, so the construct and the bundle cannot drift apart.

/**
 * Lambda runtime of the build starter. nodejs20.x was deprecated on 2026-04-30 and Lambda now
 * blocks creating or updating functions on it; nodejs24.x is supported until 2028-04-30
 * (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html). The AWS provider accepts it
 * from v6.19 on. Node 24's runtime has no callback-style handlers; ours is async.
 */
export const BUILD_STARTER_RUNTIME = "nodejs24.x";

/** esbuild target of the build starter bundle: the Node major of BUILD_STARTER_RUNTIME. */
export const BUILD_STARTER_BUNDLE_TARGET = esbuildTargetOf(BUILD_STARTER_RUNTIME);

/**
 * esbuild target of the CLI bundle, which runs under whatever Node runs Terraform: the oldest
 * Node this package supports (package.json "engines").
 */
export const CLI_BUNDLE_TARGET = "node20";

/** `nodejs24.x` → `node24`. */
export function esbuildTargetOf(lambdaRuntime: string): string {
  const m = /^nodejs(\d+)\.x$/.exec(lambdaRuntime);
  if (!m) throw new Error(`not a Lambda Node.js runtime identifier: ${JSON.stringify(lambdaRuntime)}`);
  return `node${m[1]}`;
}
