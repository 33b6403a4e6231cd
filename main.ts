import { createImagesApp } from "./src/app.ts";
import { deferTokenStackTraces } from "./src/cdktf-stack-traces.ts";
import { manifestPath } from "./src/manifest/load.ts";
import { ManifestError, PropsError, SelectionError } from "./src/manifest/errors.ts";
import { reportErrors, reportWarning } from "./src/report.ts";

// The images.yaml app: `cdktf synth` runs it. The stacks' image build environments record what
// was built (images.snapshot.json, for `plan`) once the stacks are written.
// Thousands of tokens, none of whose creation stacks is printed unless one fails to resolve.
deferTokenStackTraces();
try {
  const { app, analysis } = createImagesApp({ manifestFile: manifestPath() });
  for (const warning of analysis.warnings) reportWarning(warning);
  app.synth();
} catch (error) {
  // Bad input is the user's to fix: say what and where, without a stack trace.
  if (error instanceof ManifestError || error instanceof SelectionError || error instanceof PropsError) {
    reportErrors(error.message.split("\n"));
  } else {
    console.error(error);
  }
  process.exit(1);
}
