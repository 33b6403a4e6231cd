/**
 * Lambda container images from a monorepo, as CDKTF constructs: base images holding shared
 * packages, Lambda images built FROM them in CodeBuild from a context of exactly the files their
 * Dockerfile reads, and functions running them. Each image's filtered content hash, computed at
 * synth, decides what rebuilds.
 */
export { BaseImage, type BaseImageProps, type GitTagging } from "./constructs/base-image.ts";
export { BaseImageSet, type BaseImageSetEntry, type BaseImageSetProps } from "./constructs/base-image-set.ts";
export { LambdaImage, type LambdaImageProps } from "./constructs/lambda-image.ts";
export { LambdaImageFunction, type LambdaImageFunctionProps, type FunctionImage, type PolicyStatement } from "./constructs/lambda-image-function.ts";
export { ImageConstructsError, type ConstructProblem } from "./constructs/problems.ts";
export { ImageBuildEnvironment, type ImageBuildEnvironmentProps, type IContextBucket } from "./constructs/image-build-environment.ts";
export { AppImages, type AppImagesOptions } from "./constructs/app-images.ts";
export { ImagesStack, type ImagesStackProps } from "./constructs/images-stack.ts";
export type { BuiltImage } from "./constructs/built-image.ts";
export { createImagesApp, type ImagesAppOptions } from "./app.ts";
export { deferTokenStackTraces } from "./cdktf-stack-traces.ts";
export { defineManifest, loadManifest, type DefineManifestOptions, type Manifest } from "./manifest/load.ts";
export type { ManifestInput, Platform } from "./manifest/schema.ts";
export type { ImageSpec } from "./manifest/spec.ts";
export { ManifestError, PropsError, SelectionError } from "./manifest/errors.ts";
