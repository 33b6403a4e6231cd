import type { Construct } from "constructs";
import type { ITerraformDependable } from "cdktf";
import { Image } from "@cdktf/provider-docker/lib/image/index.js";
import { RegistryImage } from "@cdktf/provider-docker/lib/registry-image/index.js";
import type { Platform } from "../manifest/schema.ts";
import { platformSuffix } from "../naming.ts";
import { platformTag } from "../buildspec.ts";
import { sameStack, type BuiltImage } from "./built-image.ts";
import { ImageRepository, type ImageRepositoryProps } from "./image-repository.ts";
import { terraformLiteral } from "./terraform-literal.ts";
import { StagedAsset } from "./staged-asset.ts";

export interface DockerBuildProps {
  /** The image's ECR repository: name, tag mutability and lifecycle. */
  readonly repository: ImageRepositoryProps;
  /** Content hash of the image's inputs (including its parent's). */
  readonly hash: string;
  /** Tag to push (`sha-…`, `git-…` or `stable`). */
  readonly tag: string;
  readonly platforms: readonly Platform[];
  /** The Dockerfile's path inside the staged context. */
  readonly dockerfile: string;
  /** Local directory holding exactly the image's selected files, at their context-relative paths, and what finishes copying them there. */
  readonly context: { readonly dir: string; readonly ready: () => void };
  readonly buildArgs: Readonly<Record<string, string>>;
  /** The base image this one is built FROM. @default none */
  readonly parent?: BuiltImage;
}

/** What an image built by the Docker provider consists of. */
export interface DockerBuild {
  readonly repository: ImageRepository;
  /** `repository:tag` per platform. */
  readonly uris: ReadonlyMap<Platform, string>;
  readonly built: readonly ITerraformDependable[];
}

/**
 * Wires a base image built by the local Docker daemon through the Docker provider and pushed to
 * its ECR repository into `scope`. With several platforms, each is pushed under `<arch>-<tag>`:
 * the provider builds one platform per image and cannot assemble an index.
 */
export function addDockerBuild(scope: Construct, props: DockerBuildProps): DockerBuild {
  const repository = new ImageRepository(scope, "repository", props.repository);
  const context = new StagedAsset(scope, "context", { source: props.context.dir, contentHash: props.hash, kind: "directory", ready: props.context.ready });
  const triggers = { content_hash: props.hash };
  const uris = new Map<Platform, string>();
  const pushed: RegistryImage[] = [];
  for (const platform of props.platforms) {
    const suffix = props.platforms.length > 1 ? `-${platformSuffix(platform)}` : "";
    const name = `${repository.url}:${props.platforms.length > 1 ? platformTag(props.tag, platform) : props.tag}`;
    const buildArgs = Object.fromEntries(Object.entries(props.buildArgs).map(([k, v]) => [k, terraformLiteral(v)]));
    if (props.parent) buildArgs.BASE_IMAGE_URI = props.parent.uri(platform);
    const image = new Image(scope, `image${suffix}`, {
      name,
      triggers,
      keepLocally: true,
      buildAttribute: {
        // Relative: the provider resolves it against Terraform's working directory (the stack
        // directory), and an absolute path would differ per checkout and, since `context`
        // forces replacement, rebuild the image from every other checkout.
        context: context.path,
        dockerfile: props.dockerfile,
        platform,
        buildArgs,
        // Lambda rejects image indexes; the classic builder never makes attestations.
        pullParent: props.parent === undefined,
      },
      dependsOn: sameStack(scope, props.parent?.built ?? []),
    });
    pushed.push(new RegistryImage(scope, `push${suffix}`, { name: image.name, keepRemotely: true, triggers }));
    uris.set(platform, name);
  }
  return { repository, uris, built: pushed };
}
