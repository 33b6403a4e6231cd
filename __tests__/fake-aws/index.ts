// TEST-ONLY FAKE of the AWS control-plane APIs used by the build runner; not AWS.
export * from "./router.ts";
export * from "./codebuild-model.ts";
export * from "./env.ts";
