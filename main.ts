import { App } from "cdktf";
import { analyzeImages } from "./src/analyze.ts";
import { loadManifest, manifestPath } from "./src/manifest/load.ts";
import { ManifestError, SelectionError } from "./src/manifest/errors.ts";
import { ImagesStack } from "./src/constructs/images-stack.ts";
import { prepareBuildAssets, workDirectory } from "./src/assets.ts";

async function main(): Promise<void> {
  const manifest = loadManifest(manifestPath());
  const analysis = await analyzeImages(manifest);
  for (const warning of analysis.warnings) console.warn(`warning: ${warning}`);

  const assets = await prepareBuildAssets(analysis, workDirectory());

  const app = new App();
  for (const stackName of Object.keys(manifest.stacks)) {
    new ImagesStack(app, stackName, { analysis, stackName, assets });
  }
  app.synth();
}

main().catch((error: unknown) => {
  // Bad input is the user's to fix: say what and where, without a stack trace.
  if (error instanceof ManifestError || error instanceof SelectionError) {
    console.error(error.message);
  } else {
    console.error(error);
  }
  process.exit(1);
});
