import type { ImageSpec, Manifest } from "../manifest/load.ts";
import type { ImageKind } from "../manifest/spec.ts";
import { externalFrom } from "../selection/dockerfile.ts";

/** An image as the graph shows it. */
export interface GraphImage {
  readonly kind: ImageKind;
  readonly name: string;
  readonly platforms: readonly string[];
  /** The base image of ours it is built FROM. */
  readonly baseImage?: string | null;
  /** Otherwise, the external image its first stage starts FROM, when known. */
  readonly from?: string | null;
}

/** The graph of a manifest: its images, with the external FROM read from each Dockerfile's text. */
export function manifestGraphImages(manifest: Manifest, dockerfileText: (image: ImageSpec) => string): GraphImage[] {
  return [...manifest.baseImages, ...manifest.lambdas, ...manifest.images].map((image) => ({
    kind: image.kind,
    name: image.name,
    platforms: image.platforms,
    baseImage: image.baseImage,
    from: image.baseImage ? undefined : externalFrom(dockerfileText(image)),
  }));
}

/**
 * A Mermaid flowchart of what is built FROM what: external images → base images → chained base
 * images → Lambdas and other images, each labelled with its platforms.
 */
export function mermaidGraph(images: readonly GraphImage[]): string {
  const lines = ["flowchart LR"];
  const id = (image: Pick<GraphImage, "kind" | "name">) => `${image.kind}_${image.name.replace(/-/g, "_")}`;
  const externals = new Map<string, string>();
  const externalId = (ref: string) => {
    if (!externals.has(ref)) externals.set(ref, `ext_${externals.size + 1}`);
    return externals.get(ref)!;
  };
  const edges: string[] = [];
  for (const image of images) {
    if (image.baseImage) edges.push(`  base_${image.baseImage.replace(/-/g, "_")} --> ${id(image)}`);
    else if (image.from) edges.push(`  ${externalId(image.from)} --> ${id(image)}`);
  }
  for (const [ref, ext] of externals) lines.push(`  ${ext}[("${escape(ref)}")]`);
  const bases = images.filter((i) => i.kind === "base");
  const lambdas = images.filter((i) => i.kind === "lambda");
  if (bases.length) {
    lines.push("  subgraph bases [base images]");
    for (const b of bases) lines.push(`    ${id(b)}["${escape(b.name)}<br/>${b.platforms.join(", ")}"]`);
    lines.push("  end");
  }
  if (lambdas.length) {
    lines.push("  subgraph lambdas [Lambda images]");
    for (const l of lambdas) lines.push(`    ${id(l)}["${escape(l.name)}<br/>${l.platforms.join(", ")}"]`);
    lines.push("  end");
  }
  const others = images.filter((i) => i.kind === "image");
  if (others.length) {
    lines.push("  subgraph images [other images]");
    for (const o of others) lines.push(`    ${id(o)}["${escape(o.name)}<br/>${o.platforms.join(", ")}"]`);
    lines.push("  end");
  }
  lines.push(...edges);
  return `${lines.join("\n")}\n`;
}


const escape = (s: string) => s.replace(/"/g, "#quot;");
