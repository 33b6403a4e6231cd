// The floor for a compiled app under `cdktf synth`: one empty stack, plain node (no tsx).
import { App, TerraformStack } from "cdktf";

const app = new App();
new TerraformStack(app, "empty");
app.synth();
