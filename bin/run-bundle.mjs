// Runs a command's CommonJS bundle (bundle.mjs) with a V8 code cache kept beside it, as Node 22's
// module compile cache would: the second run of a command skips parsing and compiling the ~1-2 MB
// of JavaScript its first run compiled (~30 ms off `lambda-images plan`, ~70 ms off a synth).
//
// The cache file is named after the bundle's SHA-256, Node's version and the architecture, so a
// rebuilt bundle never meets code compiled from another (V8's own check compares only the
// source's length). V8 refuses a cache made with other flags; the cache is then written again.
// It is written once, when the process exits, with every function the run compiled, one per kind
// of run (`plan` compiles other functions than `--help`); a directory that cannot be written (a
// read-only install) only means no cache.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import * as v8 from "node:v8";
import * as vm from "node:vm";

/**
 * Two V8 settings for commands that are short, and whose code cache is written at exit:
 * - `--interrupt-budget`: V8 optimizes a function after it has run a while (its interrupt budget,
 *   67,584 by default in Node 20). Most of what TurboFan compiled for our commands, on other
 *   threads, was thrown away at exit (~200 ms of CPU in a cold `plan` of the bench tree). Fifteen
 *   times the budget leaves those compiles out and still optimizes what runs long. Measured on the
 *   bench tree, 2 cores: cold `plan` 0.44 → 0.38 s; synth CPU 0.91 → 0.74 s at the same wall
 *   time; building every context archive (a 10 s job) ~1.5% slower.
 * - `--no-flush-bytecode`: in a long run (a first synth that compresses every archive), V8 drops
 *   the bytecode of functions that ran only early, so the cache written at exit lacked them and
 *   every later synth compiled them again: +70-80 ms (0.62 → 0.70 s) per warm synth of the bench
 *   tree, until the next build. Kept, the cache is as good as one a warm run writes; peak memory
 *   of that first synth is unchanged (253 MB).
 * V8 keys code caches by its flags, so the caches below are made with these.
 */
const V8_FLAGS = "--interrupt-budget=1000000 --no-flush-bytecode";

/** Where a bundle run as a vm script finds import() of a module beside it (src/cli/main.ts reads it). */
const BUNDLE_IMPORT = Symbol.for("lambda-images.bundle-import");
export const CODE_CACHE_SUFFIX = ".v8cache";

/** The code cache file of a bundle with this source, for one kind of run. */
export function codeCacheFile(bundle, source, kind = "run") {
  const key = createHash("sha256").update(source).update(`\0${process.version}\0${process.arch}`).digest("hex").slice(0, 16);
  return `${bundle}.${key}.${/^[a-z][a-z0-9-]{0,31}$/.test(kind) ? kind : "other"}${CODE_CACHE_SUFFIX}`;
}

/**
 * Runs a compiled entry: a CommonJS bundle (.cjs) through its code cache for this kind of run
 * (a command's name), an ES module by import.
 */
export async function runCompiled(file, kind) {
  if (file.endsWith(".cjs")) runBundle(file, kind);
  else await import(pathToFileURL(file).href);
}

/** Runs a CommonJS bundle in this context, as require() would, compiled from its code cache when there is one. */
export function runBundle(bundle, kind) {
  v8.setFlagsFromString(V8_FLAGS);
  const source = fs.readFileSync(bundle, "utf8");
  const cacheFile = codeCacheFile(bundle, source, kind);
  const enabled = process.env.LAMBDA_IMAGES_NO_CODE_CACHE !== "1";
  let cachedData;
  try {
    if (enabled) cachedData = fs.readFileSync(cacheFile);
  } catch {
    // None yet: this run writes it.
  }
  // Node's CommonJS wrapper, so the bundle sees what a required module sees.
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: bundle, cachedData });
  if (enabled && (cachedData === undefined || script.cachedDataRejected) && writable(path.dirname(bundle))) {
    process.once("exit", () => saveCodeCache(script, bundle, cacheFile));
  }
  // Node 20 lets no vm script import(): the bundle asks this module instead.
  globalThis[BUNDLE_IMPORT] = (specifier) => import(new URL(specifier, pathToFileURL(bundle)).href);
  const module = { exports: {}, id: bundle, filename: bundle, loaded: false };
  script.runInThisContext().call(module.exports, module.exports, createRequire(bundle), module, bundle, path.dirname(bundle));
  module.loaded = true;
}

/** Whether this process may write into `dir` (a read-only install: no cache, and no time spent making one). */
function writable(dir) {
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function saveCodeCache(script, bundle, cacheFile) {
  const tmp = `${cacheFile}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, script.createCachedData());
    fs.renameSync(tmp, cacheFile);
    // Caches of earlier builds of this bundle are never read again.
    const prefix = `${path.basename(bundle)}.`;
    const current = path.basename(cacheFile).slice(prefix.length).split(".")[0];
    for (const name of fs.readdirSync(path.dirname(bundle))) {
      if (name.startsWith(prefix) && name.endsWith(CODE_CACHE_SUFFIX) && name.slice(prefix.length).split(".")[0] !== current) {
        fs.rmSync(path.join(path.dirname(bundle), name), { force: true });
      }
    }
  } catch {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      // Nothing was written.
    }
  }
}
