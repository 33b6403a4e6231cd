import { Construct } from "constructs";
import { AssetType, Fn, TerraformAsset, type ITerraformDependable } from "cdktf";
import { Image } from "@cdktf/provider-docker/lib/image/index.js";
import { RegistryImage } from "@cdktf/provider-docker/lib/registry-image/index.js";
import type { Platform } from "../manifest/schema.ts";
import { platformSuffix } from "../naming.ts";
import type { BuiltImage } from "./built-image.ts";
import { ImageRepository, type ImageRepositoryProps } from "./image-repository.ts";
import { terraformLiteral } from "./terraform-literal.ts";

export interface DockerBaseImageProps {
  /** The image's ECR repository: name, tag mutability and lifecycle. */
  readonly repository: ImageRepositoryProps;
  /** Content hash of the base image's inputs (including its parent's). */
  readonly hash: string;
  /** Tag to push (`sha-…`, `git-…` or `stable`). */
  readonly tag: string;
  readonly platforms: readonly Platform[];
  /** Root-relative Dockerfile path inside the staged context. */
  readonly dockerfile: string;
  /** Local directory holding exactly the image's selected files. */
  readonly contextDir: string;
  readonly buildArgs: Readonly<Record<string, string>>;
  /** The base image this one is built FROM. @default none */
  readonly parent?: BuiltImage;
}

/**
 * A base image built by the local Docker daemon through the Docker provider and pushed to its
 * ECR repository. With several platforms, each is pushed under `<tag>-<arch>`: the provider
 * builds one platform per image and cannot assemble an index.
 */
export class DockerBaseImage extends Construct implements BuiltImage {
  readonly repository: ImageRepository;
  readonly hash: string;
  private readonly uris = new Map<Platform, string>();
  private readonly pushed: RegistryImage[] = [];

  constructor(scope: Construct, id: string, props: DockerBaseImageProps) {
    super(scope, id);
    this.hash = props.hash;
    this.repository = new ImageRepository(this, "repository", props.repository);
    const context = new TerraformAsset(this, "context", { path: props.contextDir, type: AssetType.DIRECTORY });
    const triggers = { content_hash: props.hash };

    for (const platform of props.platforms) {
      const suffix = props.platforms.length > 1 ? `-${platformSuffix(platform)}` : "";
      const name = `${this.repository.url}:${props.tag}${suffix}`;
      const buildArgs = Object.fromEntries(Object.entries(props.buildArgs).map(([k, v]) => [k, terraformLiteral(v)]));
      if (props.parent) buildArgs.BASE_IMAGE_URI = props.parent.uri(platform);
      const image = new Image(this, `image${suffix}`, {
        name,
        triggers,
        keepLocally: true,
        buildAttribute: {
          context: Fn.abspath(context.path),
          dockerfile: props.dockerfile,
          platform,
          buildArgs,
          // Lambda rejects image indexes; the classic builder never makes attestations.
          pullParent: props.parent === undefined,
        },
        dependsOn: [...(props.parent?.built ?? [])],
      });
      this.pushed.push(
        new RegistryImage(this, `push${suffix}`, {
          name: image.name,
          keepRemotely: true,
          triggers,
        }),
      );
      this.uris.set(platform, name);
    }
  }

  uri(platform: Platform): string {
    const uri = this.uris.get(platform);
    if (!uri) throw new Error(`base image ${this.repository.node.id} is not built for ${platform}`);
    return uri;
  }
  get repositoryArn(): string {
    return this.repository.arn;
  }
  get built(): readonly ITerraformDependable[] {
    return this.pushed;
  }
}
