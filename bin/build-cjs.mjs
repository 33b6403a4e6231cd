#!/usr/bin/env node
// The package's CommonJS flavour, for projects that `require` it: `cdktf init --template=typescript`
// makes a CommonJS project run by ts-node, and Node before 20.19 cannot `require` an ES module.
// Made from the compiled ES modules in dist/src (run after tsc; `npm run build` does):
//   dist/index.cjs   the library (dist/src/index.js and everything it imports from this package)
//                    in one CommonJS file. Every other package stays outside, `require`d at run
//                    time: cdktf, constructs and the providers are the user's (one copy of cdktf
//                    per App, or its `instanceof` checks fail), the dependencies are installed.
//   dist/cjs/        the same declarations as dist/src, under a package.json of type commonjs, so
//                    TypeScript (moduleResolution node16/nodenext) reads them as CommonJS
//                    declarations: a CommonJS file importing ES module declarations is error TS1479.
// The bundle sits in dist/ itself, beside no package.json of its own: the constructs find this
// package's root (and its prebuilt runner in dist/runner) as the nearest package.json above
// their module, and dist/cjs/package.json would be that. The bundled modules' `import.meta.url`
// is the bundle's URL; the selection cache fingerprints the compiled sources in dist/src, which
// this file is made from (LAMBDA_IMAGES_CODE_ROOT).
//
// Dual-package hazard: the constructs keep per-App state in module-level WeakMaps (AppImages, the
// per-stack ImageBuildEnvironment) and use `instanceof` on each other. A project that loads both
// flavours (its code `import`s the package while one of its dependencies `require`s it) gets two
// copies of that state, and images made with the two do not see each other (in one stack, the
// second flavour's ImageBuildEnvironment fails: "There is already a Construct with name
// 'image-builds'"). Load one flavour per App; a project does unless it mixes module systems.
import * as fs from "node:fs";
import * as path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const DIST = path.join(PACKAGE_ROOT, "dist");
/** Under dist/: the CommonJS bundle and the directory of CommonJS declarations. */
export const CJS_BUNDLE = "index.cjs";
export const CJS_TYPES = "cjs";

/** Writes dist/index.cjs and dist/cjs/ from dist/src; throws when esbuild cannot. */
export function buildCommonJs() {
  const { buildSync } = createRequire(import.meta.url)("esbuild");
  const file = path.join(DIST, CJS_BUNDLE);
  const tmp = `${file}.tmp-${process.pid}`;
  const { warnings } = buildSync({
    entryPoints: [path.join(DIST, "src", "index.js")],
    outfile: tmp,
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    // Not minified: users read its stack traces. Class names stay as written (cdktf and our
    // errors print them) even where bundling would rename one to avoid a clash.
    keepNames: true,
    legalComments: "none",
    logLevel: "silent",
    // Bare specifiers (cdktf, constructs, @cdktf/*, the dependencies) stay `require`s; node:* too.
    packages: "external",
    define: { LAMBDA_IMAGES_CODE_ROOT: JSON.stringify("./src/"), "import.meta.url": "__bundleUrl" },
    banner: { js: 'var __bundleUrl = require("node:url").pathToFileURL(__filename).href;' },
  });
  // A warning means the CommonJS flavour would behave differently from the ES modules: e.g. an
  // `import.meta.dirname` (not defined above) becomes undefined in CommonJS.
  if (warnings.length > 0) {
    fs.rmSync(tmp, { force: true });
    throw new Error(`esbuild: ${warnings.map((w) => `${w.location ? `${w.location.file}:${w.location.line}: ` : ""}${w.text}`).join("\n")}`);
  }
  fs.renameSync(tmp, file);

  const types = path.join(DIST, CJS_TYPES);
  fs.rmSync(types, { recursive: true, force: true });
  const src = path.join(DIST, "src");
  const copy = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const from = path.join(dir, entry.name);
      if (entry.isDirectory()) copy(from);
      else if (entry.name.endsWith(".d.ts")) {
        const to = path.join(types, path.relative(src, from));
        fs.mkdirSync(path.dirname(to), { recursive: true });
        fs.copyFileSync(from, to);
      }
    }
  };
  copy(src);
  fs.writeFileSync(path.join(types, "package.json"), '{ "type": "commonjs" }\n');
  return { file, types };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { file, types } = buildCommonJs();
  console.log(`${path.relative(process.cwd(), file)} ${(fs.statSync(file).size / 1024).toFixed(0)} KiB, declarations in ${path.relative(process.cwd(), types)}/`);
}
