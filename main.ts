// Placeholder until the manifest loader lands: one empty stack so `cdktf synth` runs.
import { App, TerraformStack } from "cdktf";

const app = new App();
new TerraformStack(app, "placeholder");
app.synth();
