#!/usr/bin/env node
// Bundles the compiled commands with their dependencies into one CommonJS file each, so Node
// loads one file instead of hundreds (cdktf, zod, yaml and the Dockerfile parser are many small
// ES and CommonJS modules): ~60 ms off every `lambda-images` command, ~100 ms off every synth.
// CommonJS, because a CommonJS script can be compiled from a V8 code cache in Node 20
// (run-bundle.mjs runs them so); ES modules cannot.
//   dist/src/cli/main.bundle.cjs  `lambda-images` (dist/src/cli/main.js). The `iam` command
//                                 stays outside, imported from ./iam.js when it runs: it loads
//                                 cdktf and the providers, which plan and graph never need.
//   dist/main.bundle.cjs          the images.yaml app (dist/main.js) that `npm run synth` and
//                                 `cdktf synth` run. esbuild stays outside: its JavaScript API
//                                 finds its native binary relative to its own package.
// Bundled modules find the compiled sources (which the selection cache fingerprints) through
// LAMBDA_IMAGES_CODE_ROOT, relative to the bundle. `node bin/bundle.mjs` runs it alone;
// `npm run build` and compiled.mjs run it after tsc.
import * as fs from "node:fs";
import * as path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const DIST = path.join(PACKAGE_ROOT, "dist");
/** The bundles, under dist/. */
export const CLI_BUNDLE = "src/cli/main.bundle.cjs";
export const APP_BUNDLE = "main.bundle.cjs";

const BUNDLES = [
  { entry: "src/cli/main.js", out: CLI_BUNDLE, external: ["./iam.js"], codeRoot: "../" },
  { entry: "main.js", out: APP_BUNDLE, external: ["esbuild"], codeRoot: "./src/" },
];

/** Writes every bundle from the compiled dist/; throws when esbuild cannot. */
export function bundleCommands() {
  const { buildSync } = createRequire(import.meta.url)("esbuild");
  return BUNDLES.map(({ entry, out, external, codeRoot }) => {
    const file = path.join(DIST, out);
    const tmp = `${file}.tmp-${process.pid}`;
    buildSync({
      entryPoints: [path.join(DIST, entry)],
      outfile: tmp,
      bundle: true,
      platform: "node",
      format: "cjs",
      target: "node20",
      minify: true,
      legalComments: "none",
      logLevel: "silent",
      external,
      // The bundled ES modules' import.meta.url is the bundle's URL.
      define: { LAMBDA_IMAGES_CODE_ROOT: JSON.stringify(codeRoot), "import.meta.url": "__bundleUrl" },
      banner: { js: 'var __bundleUrl = require("node:url").pathToFileURL(__filename).href;' },
    });
    fs.renameSync(tmp, file);
    return file;
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const file of bundleCommands()) console.log(`${path.relative(process.cwd(), file)} ${(fs.statSync(file).size / 1024).toFixed(0)} KiB`);
}
