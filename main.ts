import { createImagesApp } from "./src/app.ts";
import { manifestPath } from "./src/manifest/load.ts";
import { ManifestError, SelectionError } from "./src/manifest/errors.ts";
import { workDirectory } from "./src/assets.ts";
import { buildSnapshot, writeSnapshot } from "./src/cli/snapshot.ts";
import { reportErrors, reportWarning } from "./src/report.ts";

async function main(): Promise<void> {
  const { app, analysis } = await createImagesApp({ manifestFile: manifestPath(), workDir: workDirectory() });
  for (const warning of analysis.warnings) reportWarning(warning);
  app.synth();
  // What `plan` compares the next state of the repository with.
  writeSnapshot(app.outdir, buildSnapshot(analysis, Object.keys(analysis.manifest.stacks)));
}

main().catch((error: unknown) => {
  // Bad input is the user's to fix: say what and where, without a stack trace.
  if (error instanceof ManifestError || error instanceof SelectionError) {
    reportErrors(error.message.split("\n"));
  } else {
    console.error(error);
  }
  process.exit(1);
});
