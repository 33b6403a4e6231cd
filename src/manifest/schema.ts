import { z } from "zod";
import { LAMBDA_LIMITS, lambdaLimitProblems, rangeProblem, type LambdaRangeField } from "./limits.ts";
import { regionProblem } from "./regions.ts";
import { looksLikeSecret } from "./secrets.ts";

/** Names that become parts of ECR repository, CodeBuild project and Lambda function names. */
const NAME = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;
const nameRule = "lower-case letters, digits and single hyphens, starting with a letter (e.g. create-labels)";

export const resourceName = z.string().regex(NAME, { message: `must be ${nameRule}` });

export const platform = z.enum(["linux/arm64", "linux/amd64"]);

/**
 * Names of build args or environment variables that look like they carry a secret, matched by
 * their words (see looksLikeSecret). Kept with `.test()` for callers written against the regex.
 */
export const SECRET_LIKE_NAME: { test(name: string): boolean } = { test: looksLikeSecret };

/**
 * A custom issue whose fix the manifest loader prints as is (params.fix), so a check can say
 * both what is wrong and what to do.
 */
function addProblem(ctx: z.RefinementCtx, problem: { message: string; fix: string }, path: PropertyKey[] = []): void {
  ctx.addIssue({ code: "custom", message: problem.message, params: { fix: problem.fix }, path });
}

/** An AWS region that the installed AWS SDK knows, in any partition. */
const region = z
  .string()
  .superRefine((value, ctx) => {
    const problem = regionProblem(value);
    if (problem) addProblem(ctx, problem);
  })
  .describe("An AWS region, e.g. us-east-1 (any partition: aws, aws-cn, aws-us-gov, iso).");

/** A whole number in one of Lambda's ranges, with the range named in the message. */
function lambdaRange(field: LambdaRangeField, fallback: number, description: string) {
  const { min, max } = LAMBDA_LIMITS[field];
  return z
    .number()
    .superRefine((value, ctx) => {
      const problem = rangeProblem(field, value);
      if (problem) addProblem(ctx, problem);
    })
    // Only for the JSON Schema editors read; superRefine above gives the message.
    .meta({ minimum: min, maximum: max, type: "integer" })
    .default(fallback)
    .describe(description);
}

const buildArgs = z
  .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: "build arg names are letters, digits and _" }), z.string())
  .default({})
  .describe("Docker build args, passed as --build-arg and part of the content hash.");

const relativePath = z.string().min(1).describe("A path relative to the monorepo root.");

const backend = z.union([
  z.strictObject({
    cloud: z.strictObject({
      organization: z.string().min(1).describe("Terraform Cloud / Enterprise organization."),
      workspace: z.string().regex(/^[A-Za-z0-9_-]{1,90}$/, { message: "workspace names are letters, digits, - and _" }),
      hostname: z.string().min(1).optional().describe("Terraform Enterprise host. @default app.terraform.io"),
    }),
  }),
  z.strictObject({
    s3: z.strictObject({
      bucket: z.string().min(3),
      key: z.string().min(1),
      region,
      dynamodbTable: z.string().min(1).optional().describe("DynamoDB table for state locking."),
    }),
  }),
]);

const stack = z
  .strictObject({
    region,
    useStaticBaseImage: z
      .boolean()
      .default(false)
      .describe("Tag base images `stable` instead of by content (the seed's use-static-base-image)."),
    backend: backend.optional().describe("Where Terraform keeps this stack's state; default: local state."),
    buildTrigger: z
      .enum(["local-exec", "lambda"])
      .default("local-exec")
      .describe("How builds start: local-exec runs the bundled runner with node; lambda invokes a build starter Lambda through the AWS provider (Terraform Cloud)."),
  })
  .describe("One CDKTF stack, like a Pulumi stack.");

const context = relativePath
  .optional()
  .describe("The build context directory, relative to root: COPY sources and .dockerignore are relative to it. Default: root.");

const computeType = z
  .enum(["BUILD_GENERAL1_SMALL", "BUILD_GENERAL1_MEDIUM", "BUILD_GENERAL1_LARGE", "BUILD_GENERAL1_XLARGE", "BUILD_GENERAL1_2XLARGE"])
  .default("BUILD_GENERAL1_SMALL")
  .describe("The CodeBuild compute type that builds this image.");

/** Names of build args or environment variables whose values are not secrets, though they look like one. */
const notSecret = z
  .array(z.string().min(1))
  .default([])
  .describe("Build args and environment variables whose values look like a secret but are not (a public key, a high-entropy id): the secret-value check skips them.");

const baseImageFields = {
  dockerfile: relativePath.describe("The base image's Dockerfile, relative to root."),
  context,
  packages: z.array(relativePath).min(1).describe("Monorepo directories installed in this base image."),
  platforms: z.array(platform).min(1).default(["linux/arm64"]).describe("Platforms to build."),
  builder: z.enum(["docker", "codebuild"]).default("docker").describe("Where the base image is built."),
  baseImage: resourceName.optional().describe("Another base image this one is built FROM (chaining)."),
  include: z.array(z.string().min(1)).default([]).describe("Extra globs (relative to the build context) hashed and shipped."),
  buildArgs,
  computeType: computeType.describe("The CodeBuild compute type (builder: codebuild)."),
  notSecret,
};
const baseImage = z.strictObject(baseImageFields);

const lambdaEnvName = z.string().regex(/^[a-zA-Z][a-zA-Z0-9_]*$/, {
  message: "Lambda environment variable names are letters, digits and _, starting with a letter",
});

const lambdaFields = {
  dockerfile: relativePath.describe("The Lambda image's Dockerfile, relative to root."),
  context,
  baseImage: resourceName.optional().describe("The base image it is built FROM; without it the image carries its packages itself."),
  platform: platform.default("linux/arm64"),
  include: z.array(z.string().min(1)).default([]).describe("Extra globs (relative to the build context) hashed and shipped."),
  buildArgs,
  computeType,
  memorySize: lambdaRange("memorySize", 1024, "Lambda memory in MB (128–10240)."),
  timeout: lambdaRange("timeout", 300, "Lambda timeout in seconds (1–900)."),
  ephemeralStorage: lambdaRange("ephemeralStorage", 512, "Size of the function's /tmp in MB (512–10240)."),
  environment: z.record(lambdaEnvName, z.string()).default({}).describe("Lambda environment variables (4 KB in all)."),
  notSecret,
};
const lambda = z
  .strictObject(lambdaFields)
  .superRefine((spec, ctx) => {
    // The ranges are checked field by field above; here only what spans fields.
    for (const problem of lambdaLimitProblems({ environment: spec.environment })) addProblem(ctx, problem, [problem.field]);
  });

/**
 * An image no Lambda runs (an ECS task's or a Batch job's): built in CodeBuild and pushed like a
 * Lambda image, without a function, so without the function's settings.
 */
const imageFields = {
  dockerfile: relativePath.describe("The image's Dockerfile, relative to root."),
  context,
  baseImage: resourceName.optional().describe("The base image it is built FROM; without it the image carries its packages itself."),
  platform: platform.default("linux/arm64"),
  include: lambdaFields.include,
  buildArgs,
  computeType,
  notSecret: z.array(z.string().min(1)).default([]).describe("Build args whose values look like a secret but are not: the secret-value check skips them."),
};
const image = z.strictObject(imageFields);
/** Lambda function settings, which an image under `images` does not take. */
export const LAMBDA_ONLY_FIELDS = Object.keys(lambdaFields).filter((key) => !(key in imageFields));

/**
 * What `defaults` may set: every field but the ones naming one image's own files. Without zod
 * defaults of their own, so a field left out of `defaults` stays the image's to default.
 */
function defaultsOf<T extends Record<string, z.ZodType>>(fields: T, own: readonly string[]) {
  const shared = Object.fromEntries(
    Object.entries(fields)
      .filter(([key]) => !own.includes(key))
      .map(([key, schema]) => {
        const inner = schema instanceof z.ZodDefault ? (schema as z.ZodDefault<z.ZodType>).unwrap() : schema;
        return [key, schema.description ? inner.optional().describe(schema.description) : inner.optional()];
      }),
  );
  return z.strictObject(shared);
}
/** Fields that name one image's own files or packages: never shared through `defaults`. */
export const OWN_FIELDS = ["dockerfile", "context", "packages"] as const;
export const lambdaDefaults = defaultsOf(lambdaFields, OWN_FIELDS);
export const baseImageDefaults = defaultsOf(baseImageFields, OWN_FIELDS);
export const imageDefaults = defaultsOf(imageFields, OWN_FIELDS);
export { baseImage as baseImageSchema, lambda as lambdaSchema, image as imageSchema, stack as stackSchema };

export const manifestSchema = z
  .strictObject({
    project: resourceName.describe("Prefix of resource names."),
    root: z.string().default(".").describe("Monorepo root, relative to this file."),
    tags: z.enum(["content", "git"]).default("content").describe("Base image tags: content (sha-<12 hex>) or git (git-<7 hex>)."),
    ecr: z
      .strictObject({
        maxImages: z.number().int().min(1).max(1000).default(10).describe("Keep the N most recent images of each content-tag kind (sha-, git-) and platform per repository."),
        maxAgeDays: z.number().int().min(1).max(3650).default(30).describe("Expire untagged images after N days."),
        legacyBaseRepositoryNames: z
          .boolean()
          .default(false)
          .describe("Name base image repositories base-<name>-<stack>, without the project, as before they carried it (see README.md, \"Base repository names\")."),
      })
      .default({ maxImages: 10, maxAgeDays: 30, legacyBaseRepositoryNames: false }),
    stacks: z.record(resourceName, stack).refine((s) => Object.keys(s).length > 0, { message: "at least one stack is needed" }),
    defaults: z
      .strictObject({
        lambdas: lambdaDefaults.optional().describe("Settings every Lambda gets unless it sets its own; environment and buildArgs are merged, the Lambda's own values winning."),
        baseImages: baseImageDefaults.optional().describe("Settings every base image gets unless it sets its own; buildArgs are merged, the base image's own values winning."),
        images: imageDefaults.optional().describe("Settings every image under images gets unless it sets its own; buildArgs are merged, the image's own values winning."),
      })
      .optional()
      .describe("Shared settings. YAML merge keys (<<: *anchor) work too, anywhere."),
    baseImages: z.record(resourceName, baseImage).default({}),
    lambdas: z.record(resourceName, lambda).default({}),
    images: z
      .record(resourceName, image)
      .default({})
      .describe("Images no Lambda runs (an ECS task's, a Batch job's): built and pushed like a Lambda's image, with its URI and hash as outputs, and no function."),
  })
  .describe("images.yaml: base images, Lambda images and other images built from a monorepo. Shared settings: defaults, or YAML merge keys (<<: *anchor) with anchors under top-level x- keys.");

export type ManifestInput = z.input<typeof manifestSchema>;
export type ManifestData = z.output<typeof manifestSchema>;
export type BaseImageSpec = ManifestData["baseImages"][string];
export type LambdaSpec = ManifestData["lambdas"][string];
export type AppImageSpec = ManifestData["images"][string];
export type StackSpec = ManifestData["stacks"][string];
export type Platform = z.output<typeof platform>;
export type BackendSpec = z.output<typeof backend>;

/** The JSON Schema editors use to check images.yaml. */
export function manifestJsonSchema(): object {
  const schema = z.toJSONSchema(manifestSchema, { io: "input" }) as Record<string, unknown>;
  // Top-level `x-` keys are free, a place for YAML anchors (`x-lambda: &lambda {…}`), as in Compose files.
  return { ...schema, patternProperties: { "^x-": { description: "Ignored: a place for YAML anchors used with merge keys (<<: *name)." } } };
}
