import { App } from "cdktf";
import { OrdersStack } from "./stack.ts";

const app = new App();
new OrdersStack(app, "orders");
app.synth();
