#!/usr/bin/env node
// The images.yaml app (main.ts) as a cdktf "app" command, compiled: `cdktf synth --app "node bin/app.mjs"`
// (or cdktf.json "app": "node bin/app.mjs") runs it without tsx's start-up; with sources that
// cannot be compiled it runs them through tsx, as `npx tsx main.ts` would.
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { APP_BUNDLE } from "./bundle.mjs";
import { compiledEntry, PACKAGE_ROOT } from "./compiled.mjs";
import { runCompiled } from "./run-bundle.mjs";

// The app's one-file bundle when there is one (see bundle.mjs), else its modules.
const compiled = compiledEntry(APP_BUNDLE) ?? compiledEntry("main.js");
if (compiled) await runCompiled(compiled);
else {
  const r = spawnSync(process.execPath, ["--import", import.meta.resolve("tsx"), path.join(PACKAGE_ROOT, "main.ts")], { stdio: "inherit" });
  process.exit(r.status ?? 1);
}
