#!/usr/bin/env node
// `npm run synth`: the images.yaml app (main.ts) synthesized directly, compiled, in this process,
// as `cdktf synth` would run it (same environment for the app, same output directory, orphaned
// stack directories removed), without the cdktf CLI's and tsx's start-up (~2-3 s together).
// `cdktf synth` keeps working: it runs cdktf.json's "app". Usage: npm run synth [-- --output DIR]
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { APP_BUNDLE } from "./bundle.mjs";
import { compiledEntry, PACKAGE_ROOT } from "./compiled.mjs";
import { runCompiled } from "./run-bundle.mjs";

const { values } = parseArgs({ options: { output: { type: "string", short: "o" } }, strict: true });
const cwd = process.cwd();
let config = {};
try {
  config = JSON.parse(fs.readFileSync(path.join(cwd, "cdktf.json"), "utf8"));
} catch {
  // No cdktf.json: cdktf's defaults.
}
const outdir = path.resolve(cwd, values.output ?? config.output ?? "cdktf.out");
const before = listStacks(outdir);
// cdktf's App makes only the last directory of the output path (the CLI makes the rest first).
fs.mkdirSync(outdir, { recursive: true });
// What the cdktf CLI gives the app it starts (@cdktf/cli-core src/lib/synth-stack.js).
process.env.CDKTF_OUTDIR = outdir;
process.env.CDKTF_CONTINUE_SYNTH_ON_ERROR_ANNOTATIONS = "true";
process.env.CDKTF_CONTEXT_JSON = JSON.stringify({ ...(process.env.CDKTF_CONTEXT_JSON ? JSON.parse(process.env.CDKTF_CONTEXT_JSON) : {}), cdktfRelativeModules: [] });
process.env.SYNTH_HCL_OUTPUT = "false";

// The app's one-file bundle when there is one (see bundle.mjs), else its modules.
const compiled = compiledEntry(APP_BUNDLE) ?? compiledEntry("main.js");
if (compiled) {
  process.on("exit", (code) => {
    if (code === 0) finish();
  });
  await runCompiled(compiled);
} else {
  const r = spawnSync(process.execPath, ["--import", import.meta.resolve("tsx"), path.join(PACKAGE_ROOT, "main.ts")], { stdio: "inherit" });
  if (r.status !== 0) process.exit(r.status ?? 1);
  finish();
}

function listStacks(dir) {
  try {
    return fs.readdirSync(path.join(dir, "stacks"));
  } catch {
    return [];
  }
}

function finish() {
  let stacks;
  try {
    stacks = Object.keys(JSON.parse(fs.readFileSync(path.join(outdir, "manifest.json"), "utf8")).stacks ?? {});
  } catch (error) {
    process.stderr.write(`synth: the app wrote no ${path.join(outdir, "manifest.json")} (${error.message})\n`);
    process.exitCode = 1;
    return;
  }
  for (const name of before) if (!stacks.includes(name)) fs.rmSync(path.join(outdir, "stacks", name), { recursive: true, force: true });
  process.stdout.write(`Generated Terraform code for the stacks: ${stacks.join(", ")}\n`);
}
