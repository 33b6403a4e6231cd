// The floor for `npm run synth`: a CDKTF app that synthesizes one empty stack.
import { App, TerraformStack } from "cdktf";

const app = new App();
new TerraformStack(app, "empty");
app.synth();
