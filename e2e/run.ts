// `npm run e2e`: really builds images on this machine (no Docker daemon, no AWS): buildah behind a
// docker shim, a local registry, s3rver and a CodeBuild stand-in. See e2e/README.md.
//
// Environment knobs:
//   E2E_SKIP_SETUP=1      do not run e2e/setup.sh (apt-get installs, binfmt)
//   E2E_NO_QEMU=1         no arm64 emulation: linux/arm64 is built as the host platform (loud note)
//   E2E_KEEP=1            keep buildah storage and sources of each build under .e2e/runs/
//   E2E_VERBOSE=1         echo every build log line
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "./lib/buildenv.ts";
import { startHarness } from "./lib/harness.ts";
import { runCleanup } from "./lib/services.ts";
import { phase1 } from "./phase1.ts";

const log = (line: string) => process.stdout.write(line + "\n");

async function main(): Promise<number> {
  const t0 = Date.now();
  // The SDK's "upgrade to Node 22" notice is noise here (the project targets Node 20).
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  if (process.env.E2E_SKIP_SETUP !== "1") {
    const t = Date.now();
    execFileSync("bash", [join(REPO_ROOT, "e2e", "setup.sh")], { stdio: "inherit" });
    log(`e2e: setup ${((Date.now() - t) / 1000).toFixed(1)}s`);
  }
  const noQemu = process.env.E2E_NO_QEMU === "1" && process.arch !== "arm64";
  const platformMap = noQemu ? "linux/arm64=linux/amd64" : undefined;
  if (noQemu) {
    log("e2e: !!! E2E_NO_QEMU=1: linux/arm64 builds are mapped to linux/amd64 (images are NOT arm64) !!!");
  }

  const h = await startHarness({
    log,
    platformMap,
    keepStorage: process.env.E2E_KEEP === "1",
    echoBuildLogs: process.env.E2E_VERBOSE === "1",
  });
  log(`e2e: stand-in ready in ${h.timings.standin!.toFixed(1)}s (rootfs: ${JSON.stringify(h.standin.rootfsSeconds)}, import+push ${h.standin.importSeconds.toFixed(1)}s)`);

  log("e2e: phase 1 — fixture monorepo through the CodeBuild stand-in");
  const p1 = await phase1(h, log, noQemu ? { platforms: { base: ["linux/amd64"], lambda: "linux/amd64" } } : {});

  const failed = p1.checks.filter((c) => !c.ok);
  const report = {
    seconds: (Date.now() - t0) / 1000,
    timings: h.timings,
    standin: h.standin,
    builds: p1.builds.map((b) => ({ name: b.name, status: b.buildStatus, seconds: b.seconds, log: b.logFile })),
    uploaded: p1.uploaded,
    checks: p1.checks,
  };
  writeFileSync(join(h.runDir, "report.json"), JSON.stringify(report, null, 2));
  log("");
  log("e2e report");
  for (const b of report.builds) log(`  build ${b.name.padEnd(12)} ${b.status.padEnd(9)} ${b.seconds.toFixed(1).padStart(6)}s`);
  for (const [k, v] of Object.entries(p1.uploaded)) log(`  uploaded ${k} ${v} B`);
  log(`  total ${report.seconds.toFixed(1)}s; report ${join(h.runDir, "report.json")}`);
  log(`${p1.checks.length - failed.length} passed, ${failed.length} failed`);
  return failed.length ? 1 : 0;
}

main()
  .then(async (code) => {
    await runCleanup();
    process.exit(code);
  })
  .catch(async (err) => {
    process.stderr.write(`e2e: ${err?.stack ?? err}\n`);
    await runCleanup();
    process.exit(1);
  });
