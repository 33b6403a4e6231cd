import { createHash } from "node:crypto";
import { stringify } from "yaml";
import type { Platform } from "./manifest/schema.ts";
import type { AnalyzedImage } from "./analyze.ts";
import { ecrImageReference, frontendImage, pullsFromPublicEcr } from "./selection/dockerfile.ts";
import { archiveLayout } from "./manifest/spec.ts";
import { platformSuffix } from "./naming.ts";

export interface BuildspecInput {
  /** The Dockerfile's path inside the context archive. */
  readonly dockerfile: string;
  /** The build context's directory inside the context archive. @default "." */
  readonly contextDir?: string;
  readonly platforms: readonly Platform[];
  readonly buildArgs: Readonly<Record<string, string>>;
  /** Set when the image is built FROM one of our base images (BASE_IMAGE_URI at build time). */
  readonly baseImage?: { readonly name: string; readonly skippedPackages: readonly string[] };
  /** Log in to public.ecr.aws because a FROM pulls from it. */
  readonly loginPublicEcr: boolean;
}

/**
 * The tag each repository's build cache is read from: the newest image (or, for a multi-platform
 * image, the newest index) carries BuildKit's inline cache and is also tagged `cache` (mutable by
 * design).
 */
export const CACHE_TAG = "cache";

/**
 * The project environment variable naming the platform a multi-platform image's per-platform
 * build produces. Each platform has its own CodeBuild project on a machine of that architecture,
 * so nothing is emulated.
 */
export const TARGET_PLATFORM_VAR = "TARGET_PLATFORM";

const REGISTRY = '"${REPOSITORY_URI%%/*}"';
const IMAGE = '"$REPOSITORY_URI:$IMAGE_TAG"';
const CACHE = `"$REPOSITORY_URI:${CACHE_TAG}"`;
const LOGIN = `aws ecr get-login-password --region "$AWS_REGION" | docker login --username AWS --password-stdin ${REGISTRY}`;
// CodeBuild runs post_build even when build failed; never push what did not build.
const REFUSE_FAILED = 'if [ "$CODEBUILD_BUILD_SUCCEEDING" != "1" ]; then echo "build failed; not pushing" >&2; exit 1; fi';

/**
 * `<arch>-<tag>` (`arm64-sha-…`): the tag one platform's image of a multi-platform image is pushed
 * under. The architecture comes first so that no pattern counting an image's own tags (the ECR
 * lifecycle rule `sha-*` that keeps `maxImages` indexes) can match a per-platform tag: `sha-*`
 * would match a suffixed `sha-…-arm64`, and ECR has no way to exclude a suffix.
 */
export function platformTag(tag: string, platform: Platform): string {
  return `${platformSuffix(platform)}-${tag}`;
}

/**
 * CodeBuild buildspec (version 0.2) for one image. REPOSITORY_URI, IMAGE_TAG and BASE_IMAGE_URI
 * come from the build's environment (the runner sets them), so the text depends only on the
 * image's definition and its hash is a stable trigger input.
 *
 * Nothing is pulled from Docker Hub: the build uses the Docker daemon's own BuildKit (the default
 * `docker` driver; a `docker-container` builder would pull moby/buildkit when it boots, and
 * QEMU's binfmt installer is tonistiigi/binfmt). The docker driver exports only the inline cache,
 * and imports it from a registry image. A multi-platform image is built by one such build per
 * platform, each on its own architecture's machine (TARGET_PLATFORM set by its project, IMAGE_TAG
 * `<arch>-<tag>`); `renderJoinBuildspec` then joins them into an index.
 */
export function renderBuildspec(input: BuildspecInput): string {
  const perPlatform = input.platforms.length > 1;
  const preBuild = [LOGIN];
  if (perPlatform) {
    const allowed = input.platforms.join("|");
    preBuild.push(
      `case "\${${TARGET_PLATFORM_VAR}:-}" in ${allowed}) ;; *) echo "${TARGET_PLATFORM_VAR} is '\${${TARGET_PLATFORM_VAR}:-}', not one of ${input.platforms.join(" ")}; each platform's CodeBuild project sets it" >&2; exit 1 ;; esac`,
    );
  }
  if (input.baseImage) {
    preBuild.push(
      'if [ -z "${BASE_IMAGE_URI:-}" ]; then echo "BASE_IMAGE_URI is not set; the build runner passes it" >&2; exit 1; fi',
      // The base may live in another account's registry; logging in twice to the same one is harmless.
      'aws ecr get-login-password --region "$AWS_REGION" | docker login --username AWS --password-stdin "${BASE_IMAGE_URI%%/*}"',
      `echo "Using base image \${BASE_IMAGE_URI} - skipping ${input.baseImage.skippedPackages.join(" ") || "no packages"}"`,
    );
  }
  // A Dockerfile frontend from another ECR registry (a pull-through cache of Docker Hub): BuildKit pulls it with these credentials.
  const frontend = frontendImage(input.buildArgs);
  const frontendEcr = frontend === undefined ? undefined : ecrImageReference(frontend);
  if (frontendEcr) {
    preBuild.push(`aws ecr get-login-password --region ${frontendEcr.region} | docker login --username AWS --password-stdin ${frontendEcr.host}`);
  }
  if (input.loginPublicEcr || frontend?.startsWith("public.ecr.aws/")) {
    preBuild.push("aws ecr-public get-login-password --region us-east-1 | docker login --username AWS --password-stdin public.ecr.aws");
  }

  const buildArgs: string[] = [];
  if (input.baseImage) buildArgs.push('--build-arg BASE_IMAGE_URI="$BASE_IMAGE_URI"');
  for (const [name, value] of Object.entries(input.buildArgs).sort(([a], [b]) => (a < b ? -1 : 1))) {
    buildArgs.push(`--build-arg ${name}=${shellQuote(value)}`);
  }
  const build = [
    [
      "docker buildx build",
      `--platform ${perPlatform ? `"$${TARGET_PLATFORM_VAR}"` : input.platforms[0]}`,
      // Lambda accepts only a single image manifest: no attestation index.
      "--provenance=false --sbom=false",
      ...buildArgs,
      `-f ${shellQuote(input.dockerfile)}`,
      `-t ${IMAGE}`,
      // The only cache the docker driver exports (with its classic image store): inside the image.
      `--cache-from type=registry,ref=${CACHE}`,
      "--cache-to type=inline",
      "--load",
      shellQuote(input.contextDir ?? "."),
    ].join(" "),
  ];
  const postBuild = [REFUSE_FAILED, `docker push ${IMAGE}`];
  if (!perPlatform) {
    // The join tags a multi-platform image's index instead. A cache that cannot be written only
    // makes the next build slower, so it does not fail this one.
    postBuild.push(
      `docker tag ${IMAGE} ${CACHE} && docker push ${CACHE} || echo "warning: could not push the ${CACHE_TAG} tag; the next build starts without cache" >&2`,
    );
  }
  postBuild.push(`echo "Pushed $(docker inspect --format '{{index .RepoDigests 0}}' ${IMAGE})"`);

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

/**
 * The buildspec that joins a multi-platform image's per-platform images (`<arch>-$IMAGE_TAG`,
 * already in the repository) into one index under `$IMAGE_TAG`, and tags that index `cache` for
 * the next per-platform builds. `docker buildx imagetools create` works on the registry alone: no
 * builder container, no image pulled.
 */
export function renderJoinBuildspec(platforms: readonly Platform[]): string {
  const sources = platforms.map((p) => `"$REPOSITORY_URI:${platformTag("$IMAGE_TAG", p)}"`);
  return stringify(
    {
      version: 0.2,
      env: { shell: "bash" },
      phases: {
        pre_build: { commands: [LOGIN] },
        build: { commands: [`docker buildx imagetools create -t ${IMAGE} ${sources.join(" ")}`] },
        post_build: {
          commands: [
            REFUSE_FAILED,
            // One source: a carbon copy of the index.
            `docker buildx imagetools create -t ${CACHE} ${IMAGE} || echo "warning: could not tag the index ${CACHE_TAG}; the next builds start without cache" >&2`,
            `docker buildx imagetools inspect ${IMAGE}`,
          ],
        },
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

/** The buildspec of an image, as its CodeBuild project runs it (each platform's, for a multi-platform image). */
export function buildspecForImage(image: Pick<AnalyzedImage, "spec" | "selection">): string {
  const spec = image.spec;
  const layout = archiveLayout(spec);
  return renderBuildspec({
    dockerfile: layout.dockerfile,
    ...(layout.contextDir === "." ? {} : { contextDir: layout.contextDir }),
    platforms: spec.platforms,
    buildArgs: spec.buildArgs,
    baseImage: spec.baseImage ? { name: spec.baseImage, skippedPackages: image.selection.excludedPackages } : undefined,
    loginPublicEcr: pullsFromPublicEcr(image.selection.dockerfileText, spec.baseImage !== undefined),
  });
}
