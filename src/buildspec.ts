import { createHash } from "node:crypto";
import { stringify } from "yaml";
import type { Platform } from "./manifest/schema.ts";
import type { AnalyzedImage } from "./analyze.ts";
import { pullsFromPublicEcr } from "./selection/dockerfile.ts";
import { dockerfileInContext } from "./manifest/spec.ts";

export interface BuildspecInput {
  /** The Dockerfile's path inside the context archive. */
  readonly dockerfile: string;
  readonly platforms: readonly Platform[];
  readonly buildArgs: Readonly<Record<string, string>>;
  /** Set when the image is built FROM one of our base images (BASE_IMAGE_URI at build time). */
  readonly baseImage?: { readonly name: string; readonly skippedPackages: readonly string[] };
  /** Log in to public.ecr.aws because a FROM pulls from it. */
  readonly loginPublicEcr: boolean;
}

/** The tag BuildKit's registry cache lives under in each repository (mutable by design). */
export const CACHE_TAG = "cache";

const REGISTRY = '"${REPOSITORY_URI%%/*}"';
const IMAGE = '"$REPOSITORY_URI:$IMAGE_TAG"';

/**
 * CodeBuild buildspec (version 0.2) for one image. REPOSITORY_URI, IMAGE_TAG and BASE_IMAGE_URI
 * come from the build's environment (the runner sets them), so the text depends only on the
 * image's definition and its hash is a stable trigger input.
 */
export function renderBuildspec(input: BuildspecInput): string {
  const multiPlatform = input.platforms.length > 1;
  const preBuild = [`aws ecr get-login-password --region "$AWS_REGION" | docker login --username AWS --password-stdin ${REGISTRY}`];
  if (input.baseImage) {
    preBuild.push(
      'if [ -z "${BASE_IMAGE_URI:-}" ]; then echo "BASE_IMAGE_URI is not set; the build runner passes it" >&2; exit 1; fi',
      // The base may live in another account's registry; logging in twice to the same one is harmless.
      'aws ecr get-login-password --region "$AWS_REGION" | docker login --username AWS --password-stdin "${BASE_IMAGE_URI%%/*}"',
      `echo "Using base image \${BASE_IMAGE_URI} - skipping ${input.baseImage.skippedPackages.join(" ") || "no packages"}"`,
    );
  }
  if (input.loginPublicEcr) {
    preBuild.push("aws ecr-public get-login-password --region us-east-1 | docker login --username AWS --password-stdin public.ecr.aws");
  }
  if (multiPlatform) preBuild.push("docker run --privileged --rm tonistiigi/binfmt --install all");
  // The default `docker` driver cannot export a registry cache; a docker-container builder can.
  preBuild.push("docker buildx create --name lambda-images --driver docker-container --use || docker buildx use lambda-images");

  const buildArgs: string[] = [];
  if (input.baseImage) buildArgs.push('--build-arg BASE_IMAGE_URI="$BASE_IMAGE_URI"');
  for (const [name, value] of Object.entries(input.buildArgs).sort(([a], [b]) => (a < b ? -1 : 1))) {
    buildArgs.push(`--build-arg ${name}=${shellQuote(value)}`);
  }
  const build = [
    [
      "docker buildx build",
      `--platform ${input.platforms.join(",")}`,
      // Lambda accepts only a single image manifest: no attestation index.
      "--provenance=false --sbom=false",
      ...buildArgs,
      `-f ${shellQuote(input.dockerfile)}`,
      `-t ${IMAGE}`,
      `--cache-from type=registry,ref="$REPOSITORY_URI:${CACHE_TAG}"`,
      `--cache-to type=registry,ref="$REPOSITORY_URI:${CACHE_TAG}",mode=max,image-manifest=true,oci-mediatypes=true`,
      // A multi-platform index cannot be loaded into the local image store: push it directly.
      multiPlatform ? "--push" : "--load",
      ".",
    ].join(" "),
  ];
  const postBuild = [
    // CodeBuild runs post_build even when build failed; never push what did not build.
    'if [ "$CODEBUILD_BUILD_SUCCEEDING" != "1" ]; then echo "build failed; not pushing" >&2; exit 1; fi',
    ...(multiPlatform
      ? [`docker buildx imagetools inspect ${IMAGE}`]
      : [`docker push ${IMAGE}`, `echo "Pushed $(docker inspect --format '{{index .RepoDigests 0}}' ${IMAGE})"`]),
  ];

  return stringify(
    {
      version: 0.2,
      env: { shell: "bash", variables: { DOCKER_BUILDKIT: "1" } },
      phases: {
        pre_build: { commands: preBuild },
        build: { commands: build },
        post_build: { commands: postBuild },
      },
    },
    { lineWidth: 0 },
  );
}

export function buildspecHash(buildspec: string): string {
  return createHash("sha256").update(buildspec).digest("hex");
}

/** Single-quotes a value for bash. */
export function shellQuote(value: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(value) ? value : `'${value.replace(/'/g, `'"'"'`)}'`;
}

/** The buildspec of an image, as its CodeBuild project runs it. */
export function buildspecForImage(image: Pick<AnalyzedImage, "spec" | "selection">): string {
  const spec = image.spec;
  return renderBuildspec({
    dockerfile: dockerfileInContext(spec),
    platforms: spec.platforms,
    buildArgs: spec.buildArgs,
    baseImage: spec.baseImage ? { name: spec.baseImage, skippedPackages: image.selection.excludedPackages } : undefined,
    loginPublicEcr: pullsFromPublicEcr(image.selection.dockerfileText, spec.baseImage !== undefined),
  });
}
