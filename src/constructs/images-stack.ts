import { TerraformOutput, TerraformStack } from "cdktf";
import type { Construct } from "constructs";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider/index.js";
import type { ImageAnalysis } from "../analyze.ts";

export interface ImagesStackProps {
  /** The analyzed manifest: images, hashes and tags. */
  readonly analysis: ImageAnalysis;
  /** The manifest's stack name (dev, prod, ...). */
  readonly stackName: string;
}

/** One manifest stack: its AWS provider and, per image, the content hash and tag. */
export class ImagesStack extends TerraformStack {
  constructor(scope: Construct, id: string, props: ImagesStackProps) {
    super(scope, id);
    const { analysis, stackName } = props;
    const stack = analysis.manifest.stacks[stackName]!;
    new AwsProvider(this, "aws", {
      region: stack.region,
      defaultTags: [{ tags: { Project: analysis.manifest.project, Stack: stackName, ManagedBy: "cdktf" } }],
    });
    for (const image of analysis.images) {
      const id = `${image.spec.kind}-${image.spec.name}`;
      new TerraformOutput(this, `${id}-hash`, { value: image.hash, description: `Content hash of ${image.spec.kind} image ${image.spec.name}` });
      new TerraformOutput(this, `${id}-tag`, { value: analysis.tagFor(image, stackName), description: `Tag of ${image.spec.kind} image ${image.spec.name}` });
    }
  }
}
