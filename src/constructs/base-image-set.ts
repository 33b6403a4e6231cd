import { Construct } from "constructs";
import { BaseImage, type BaseImageProps } from "./base-image.ts";
import { ImageProblems } from "./problems.ts";

/** A base image of a set: like {@link BaseImageProps}, with its parent named instead of passed. */
export interface BaseImageSetEntry extends Omit<BaseImageProps, "baseImage" | "name"> {
  /** The name (in this set) of the base image this one is built FROM. @default none */
  readonly baseImage?: string;
}

export interface BaseImageSetProps {
  /** The base images by name (lower-case letters, digits and hyphens), in any order: parents are built first. */
  readonly images: Readonly<Record<string, BaseImageSetEntry>>;
}

/**
 * Several base images defined together, parents before the images built FROM them, looked up
 * by name (the seed's `base_images.label_base_image`): `bases.get("receipt-label")`.
 */
export class BaseImageSet extends Construct {
  private readonly images = new Map<string, BaseImage>();

  constructor(scope: Construct, id: string, props: BaseImageSetProps) {
    super(scope, id);
    const names = Object.keys(props.images);
    const problems = names.flatMap((name) => {
      const parent = props.images[name]!.baseImage;
      return parent !== undefined && !names.includes(parent)
        ? [{ field: `images.${name}.baseImage`, message: `base image "${parent}" is not defined`, fix: `use one of: ${names.join(", ")}` }]
        : [];
    });
    const cycle = names.find((start) => {
      const seen = new Set<string>();
      for (let at: string | undefined = start; at !== undefined; at = props.images[at]?.baseImage) {
        if (seen.has(at)) return true;
        seen.add(at);
      }
      return false;
    });
    if (cycle) problems.push({ field: `images.${cycle}.baseImage`, message: "base images form a cycle", fix: "remove one baseImage link so the chain ends" });
    if (problems.length) {
      // Reported at synth with every other problem of the App; the set defines none of its images.
      ImageProblems.of(this).add(this, problems);
      return;
    }

    const define = (name: string): BaseImage => {
      const existing = this.images.get(name);
      if (existing) return existing;
      const { baseImage, ...entry } = props.images[name]!;
      const parent = baseImage === undefined ? undefined : define(baseImage);
      const image = new BaseImage(this, name, { ...entry, name, baseImage: parent });
      this.images.set(name, image);
      return image;
    };
    names.forEach(define);
  }

  /** The base image named `name`. */
  get(name: string): BaseImage {
    const image = this.images.get(name);
    // A set with problems has no images: what is wrong so far is the better error.
    if (!image) ImageProblems.of(this).check();
    if (!image) throw new Error(`${this.node.path}: no base image named "${name}"; defined: ${[...this.images.keys()].join(", ")}`);
    return image;
  }

  /** Every base image, parents first. */
  get all(): readonly BaseImage[] {
    return [...this.images.values()];
  }
}
