#!/usr/bin/env node
// Bundles the compiled command (dist/src/cli/main.js) and its dependencies into one module beside
// it, dist/src/cli/main.bundle.mjs: Node then loads one file instead of hundreds (zod, yaml and
// the Dockerfile parser are many small ES and CommonJS modules), ~60 ms off every
// `lambda-images` command. It sits beside main.js so that what the compiled modules find relative
// to themselves (the `iam` command, imported from ./iam.js only when it runs, since it loads cdktf
// and the providers; the code the selection cache fingerprints) is found the same way.
// `node bin/bundle-cli.mjs` runs it alone; `npm run build` and compiled.mjs run it after tsc.
import * as fs from "node:fs";
import * as path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const CLI_DIR = path.join(PACKAGE_ROOT, "dist", "src", "cli");
export const CLI_BUNDLE = "src/cli/main.bundle.mjs";

/** Writes dist/{@link CLI_BUNDLE} from the compiled dist/src/cli/main.js; throws when esbuild cannot. */
export function bundleCli() {
  const { buildSync } = createRequire(import.meta.url)("esbuild");
  const outfile = path.join(CLI_DIR, `main.bundle.mjs.tmp-${process.pid}`);
  buildSync({
    entryPoints: [path.join(CLI_DIR, "main.js")],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    minify: true,
    legalComments: "none",
    logLevel: "silent",
    external: ["./iam.js"],
    // CommonJS dependencies bundled into an ES module still call require() for Node's built-ins.
    banner: { js: 'import { createRequire as __bundleRequire } from "node:module"; const require = __bundleRequire(import.meta.url);' },
  });
  const file = path.join(PACKAGE_ROOT, "dist", CLI_BUNDLE);
  fs.renameSync(outfile, file);
  return file;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const file = bundleCli();
  console.log(`${path.relative(process.cwd(), file)} ${(fs.statSync(file).size / 1024).toFixed(0)} KiB`);
}
