import { createHash } from "node:crypto";
import type { Platform } from "./manifest/schema.ts";

/** Fits a name into an AWS length limit, keeping it unique with a short hash of the full name. */
export function boundedName(name: string, max: number): string {
  if (name.length <= max) return name;
  const suffix = createHash("sha256").update(name).digest("hex").slice(0, 8);
  return `${name.slice(0, max - suffix.length - 1).replace(/-+$/, "")}-${suffix}`;
}

/** `linux/arm64` → `arm64`, the Lambda architecture and tag suffix. */
export function architectureOf(platform: Platform): "arm64" | "x86_64" {
  return platform === "linux/arm64" ? "arm64" : "x86_64";
}

/** `linux/arm64` → `arm64` for tags; `linux/amd64` → `amd64`. */
export function platformSuffix(platform: Platform): string {
  return platform.split("/")[1]!;
}

/**
 * CodeBuild's managed image and environment type for a platform. The arm64 image is Amazon Linux
 * 2023 `standard:3.0` under the name CodeBuild documents since 2024-11-22 (`amazonlinux-…`; the
 * old `amazonlinux2-…` alias names the same image):
 * https://docs.aws.amazon.com/codebuild/latest/userguide/ec2-compute-images.html
 */
export function codebuildEnvironment(platform: Platform): { type: string; image: string } {
  return platform === "linux/arm64"
    ? { type: "ARM_CONTAINER", image: "aws/codebuild/amazonlinux-aarch64-standard:3.0" }
    : { type: "LINUX_CONTAINER", image: "aws/codebuild/standard:7.0" };
}

/** `ApiImage` → `api-image`: the default AWS-name part of a construct id. */
export function kebabName(id: string): string {
  return id
    .replace(/([a-z0-9])([A-Z])/g, "$1-$2")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
}
