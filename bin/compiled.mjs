// Runs this package's compiled JavaScript, never TypeScript through tsx at run time (tsx costs
// ~0.8 s before any of our code runs). An installed package has only dist/. A development
// checkout has src/ too: dist/ is used when it is at least as new as every source file, else it
// is brought up to date first with an incremental `tsc` (the same compiler and settings as
// `npm run build`); only if that fails does the caller fall back to tsx.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { bundleCommands } from "./bundle.mjs";

export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const DIST = path.join(PACKAGE_ROOT, "dist");
/** Written after each successful build; its mtime is when that build started. */
const STAMP = path.join(DIST, ".built");
const BUILD_INFO = path.join(DIST, ".tsbuildinfo");
/** What the compiled output depends on, besides src/. */
const INPUTS = ["main.ts", "tsconfig.json", "tsconfig.build.json", "package-lock.json"];

/** Newest mtime (ms) of the sources: files and directories (a deleted or renamed file changes its directory's). */
function newestSource() {
  let newest = 0;
  const visit = (p) => {
    let st;
    try {
      st = fs.lstatSync(p);
    } catch {
      return;
    }
    newest = Math.max(newest, st.mtimeMs, st.ctimeMs);
    if (st.isDirectory()) for (const name of fs.readdirSync(p)) visit(path.join(p, name));
  };
  visit(path.join(PACKAGE_ROOT, "src"));
  for (const f of INPUTS) visit(path.join(PACKAGE_ROOT, f));
  return newest;
}

function builtAt() {
  try {
    return fs.statSync(STAMP).mtimeMs;
  } catch {
    return -1;
  }
}

/**
 * The absolute path of `relative` (under dist/) once it is up to date, or undefined when it
 * cannot be (no compiler, a compile error): the caller then runs the sources through tsx.
 */
export function compiledEntry(relative) {
  const compiled = path.join(DIST, relative);
  const isDevCheckout = fs.existsSync(path.join(PACKAGE_ROOT, "src"));
  if (!isDevCheckout) return fs.existsSync(compiled) ? compiled : undefined;
  if (fs.existsSync(compiled) && newestSource() < builtAt()) return compiled;
  const tsc = path.join(PACKAGE_ROOT, "node_modules", "typescript", "bin", "tsc");
  if (!fs.existsSync(tsc)) return undefined;
  return withLock(() => {
    // Another process may have built it while this one waited.
    if (fs.existsSync(compiled) && newestSource() < builtAt()) return compiled;
    return build(tsc, compiled);
  });
}

function build(tsc, compiled) {
  // A build info file without the outputs it describes would make tsc skip emitting them.
  if (!fs.existsSync(compiled)) fs.rmSync(BUILD_INFO, { force: true });
  const started = Date.now();
  const r = spawnSync(process.execPath, [tsc, "-p", path.join(PACKAGE_ROOT, "tsconfig.build.json"), "--incremental", "--tsBuildInfoFile", BUILD_INFO], {
    cwd: PACKAGE_ROOT,
    stdio: ["ignore", "ignore", "inherit"],
  });
  if (r.status !== 0) return undefined;
  try {
    bundleCommands();
  } catch (error) {
    // The commands then run unbundled from dist/, only slower to load.
    process.stderr.write(`lambda-images: could not bundle the commands (${error.message})\n`);
  }
  if (!fs.existsSync(compiled)) return undefined;
  fs.writeFileSync(STAMP, "");
  // Whole seconds down: a source saved in the same second as the build started counts as newer.
  const at = Math.floor(started / 1000);
  fs.utimesSync(STAMP, at, at);
  return compiled;
}

/** One build at a time (parallel test files, two terminals): the others wait for it. */
function withLock(fn) {
  fs.mkdirSync(DIST, { recursive: true });
  const lock = path.join(DIST, ".building");
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      fs.closeSync(fs.openSync(lock, "wx"));
      break;
    } catch (error) {
      if (error.code !== "EEXIST") throw error;
      // A lock left by a killed build is stale after two minutes.
      let age = 0;
      try {
        age = Date.now() - fs.statSync(lock).mtimeMs;
      } catch {
        continue;
      }
      if (age > 120_000 || Date.now() > deadline) fs.rmSync(lock, { force: true });
      else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  }
  try {
    return fn();
  } finally {
    fs.rmSync(lock, { force: true });
  }
}
