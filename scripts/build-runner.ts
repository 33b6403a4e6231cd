// `npm run build:runner`: bundles the runner into dist/runner and reports what it wrote.
import { stat } from "node:fs/promises";
import { relative } from "node:path";
import { bundleRunner } from "../src/runner/bundle.ts";

const started = performance.now();
const { cliFile, lambdaFile } = await bundleRunner("dist/runner");
const ms = Math.round(performance.now() - started);
for (const file of [cliFile, lambdaFile]) {
  const { size } = await stat(file);
  console.log(`${relative(process.cwd(), file).padEnd(32)} ${(size / 1024).toFixed(0).padStart(6)} KiB`);
}
console.log(`bundled in ${ms} ms`);
