// `npm run e2e`: really builds images on this machine (no Docker daemon, no AWS): buildah behind a
// docker shim, a local registry, s3rver and a CodeBuild stand-in. See e2e/README.md.
//
// Environment knobs:
//   E2E_SKIP_SETUP=1      do not run e2e/setup.sh (apt-get installs, binfmt)
//   E2E_NO_QEMU=1         no arm64 emulation: linux/arm64 is built as the host platform (loud note)
//   E2E_KEEP=1            keep buildah storage and sources of each build under .e2e/runs/
//   E2E_VERBOSE=1         echo every build log line
//   E2E_PHASES=1,2,3      which phases to run (default all; 1 is the fixture self-check: a
//                         multi-platform base built per platform and joined, phase order; 2 the
//                         real example; 3 the example with a multi-platform CodeBuild-built base)
//   E2E_PARALLELISM=N     concurrent resources in phase 2's and 3's applies (default 10, like Terraform)
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "./lib/buildenv.ts";
import { startHarness } from "./lib/harness.ts";
import { runCleanup } from "./lib/services.ts";
import { phase1, type Check } from "./phase1.ts";
import { phase2, type Phase2Result } from "./phase2.ts";
import { phase3, type Phase3Result } from "./phase3.ts";

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

  const phases = new Set((process.env.E2E_PHASES ?? "1,2,3").split(",").map((p) => p.trim()));
  const checks: Check[] = [];
  const report: Record<string, unknown> = { timings: h.timings, standin: h.standin };
  if (phases.has("1")) {
    log("e2e: phase 1 — fixture monorepo through the CodeBuild stand-in");
    const t = Date.now();
    const p1 = await phase1(h, log, noQemu ? { platforms: { base: ["linux/amd64"], lambda: "linux/amd64" } } : {});
    h.timings.phase1 = (Date.now() - t) / 1000;
    checks.push(...p1.checks);
    report.phase1 = {
      builds: p1.builds.map((b) => ({ name: b.name, status: b.buildStatus, seconds: b.seconds, log: b.logFile })),
      uploaded: p1.uploaded,
      checks: p1.checks,
    };
  }
  let p2: Phase2Result | undefined;
  if (phases.has("2")) {
    log("e2e: phase 2 — the synthesized example (prod stack), applied, edited, applied again");
    const t = Date.now();
    p2 = await phase2(h, log, { platformMap });
    h.timings.phase2 = (Date.now() - t) / 1000;
    checks.push(...p2.checks);
    report.phase2 = {
      applies: p2.applies.map((a) => ({
        label: a.label,
        synthSeconds: a.synthSeconds,
        applySeconds: a.seconds,
        resources: a.records.map((r) => ({ address: r.address, action: r.action, seconds: r.seconds, bytes: r.bytes, log: r.logFile, notes: r.notes, error: r.error })),
      })),
      builds: p2.builds,
      notEmulated: p2.notEmulated,
      checks: p2.checks,
    };
  }
  let p3: Phase3Result | undefined;
  if (phases.has("3") && noQemu) {
    log("e2e: phase 3 skipped: E2E_NO_QEMU=1 cannot build the linux/arm64 half of a multi-platform base");
  } else if (phases.has("3")) {
    log("e2e: phase 3 — a multi-platform base built in CodeBuild (one build per platform, then the join), applied");
    const t = Date.now();
    p3 = await phase3(h, log);
    h.timings.phase3 = (Date.now() - t) / 1000;
    checks.push(...p3.checks);
    report.phase3 = p3;
  }
  const failed = checks.filter((c) => !c.ok);
  report.seconds = (Date.now() - t0) / 1000;
  writeFileSync(join(h.runDir, "report.json"), JSON.stringify(report, null, 2));
  log("");
  log("e2e report");
  const t = h.timings;
  log(`  setup+services ${(t.services ?? 0).toFixed(1)}s, stand-in ${(t.standin ?? 0).toFixed(1)}s${t.phase1 !== undefined ? `, phase 1 ${t.phase1.toFixed(1)}s` : ""}${t.phase2 !== undefined ? `, phase 2 ${t.phase2.toFixed(1)}s` : ""}${t.phase3 !== undefined ? `, phase 3 ${t.phase3.toFixed(1)}s` : ""}`);
  if (p2) {
    for (const a of p2.applies) {
      log(`  ${a.label}: synth ${a.synthSeconds.toFixed(1)}s, apply ${a.seconds.toFixed(1)}s`);
      for (const b of p2.builds.filter((b) => a.label.startsWith(`apply ${b.apply}:`))) {
        const parts = [`${b.seconds.toFixed(1).padStart(6)}s`, b.via];
        if (b.buildSeconds !== undefined) parts.push(`build ${b.buildSeconds.toFixed(1)}s`);
        if (b.contextBytes !== undefined) parts.push(`context ${b.contextBytes} B uploaded`);
        parts.push(`${b.newLayers} new layer(s) ${fmtBytes(b.newLayerBytes ?? 0)}`);
        log(`    built ${b.image.padEnd(32)} ${parts.join(", ")}`);
      }
      const skipped = a.records.filter((r) => (r.type === "terraform_data" || r.type === "docker_image") && r.action === "no-op").length;
      if (skipped) log(`    unchanged (not replaced): ${skipped} build resource(s)`);
    }
    log(`  not emulated (no-op graph nodes): ${p2.notEmulated.join(", ")}`);
  }
  if (p3) {
    log(`  phase 3: synth ${p3.synthSeconds.toFixed(1)}s, apply ${p3.applySeconds.toFixed(1)}s`);
    for (const b of p3.builds) log(`    CodeBuild ${b.name.padEnd(40)} ${b.status} ${b.seconds.toFixed(1)}s`);
  }
  log(`  total ${(report.seconds as number).toFixed(1)}s; report ${join(h.runDir, "report.json")}`);
  log(`${checks.length - failed.length} passed, ${failed.length} failed`);
  for (const f of failed) log(`  FAILED: ${f.name}`);
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

function fmtBytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;
}
