// Phase 3: a multi-platform base image built in CodeBuild, synthesized and applied end to end.
//
// A copy of example/ whose receipt-dynamo base is `builder: codebuild` with
// `platforms: [linux/arm64, linux/amd64]`, trimmed to that base and the Lambda built on it
// (sync-dynamo). Its prod stack is applied like phase 2's: the synthesized per-platform projects
// (TARGET_PLATFORM from the project), their triggers (the bundled runner), and the join project's
// build, all executed by the CodeBuild stand-in with the generated buildspecs. No build may reach
// Docker Hub: the docker shim refuses what would.
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { parseDocument } from "yaml";
import { createImagesApp } from "../src/app.ts";
import { platformTag } from "../src/buildspec.ts";
import { apply, localExec, localExecEnv, shellWords, type ApplyRecord, type State } from "./lib/apply.ts";
import { hostEnv, REPO_ROOT } from "./lib/buildenv.ts";
import { startFakeCodeBuildWithStandIn, type StandInProject } from "./lib/fake-codebuild.ts";
import type { BuildRun, Harness } from "./lib/harness.ts";
import { isIndex } from "./lib/registry.ts";
import { onCleanup } from "./lib/services.ts";
import type { TfDoc } from "./lib/terraform.ts";
import type { Check } from "./phase1.ts";

const STACK = "prod";
/** Its own project name, so its bucket and repositories are not phase 2's. */
const PROJECT = "e2e-mp";
const BASE = "receipt-dynamo";
const LAMBDA = "sync-dynamo";
const PLATFORMS = ["linux/arm64", "linux/amd64"] as const;

export interface Phase3Result {
  checks: Check[];
  builds: { name: string; status: string; seconds: number; log: string }[];
  synthSeconds: number;
  applySeconds: number;
}

export async function phase3(h: Harness, log: (l: string) => void): Promise<Phase3Result> {
  const checks: Check[] = [];
  const check = (name: string, ok: boolean, detail?: string) => {
    checks.push({ name, ok, detail });
    log(`${ok ? "  ok  " : "  FAIL"} ${name}${detail ? ` — ${detail}` : ""}`);
    return ok;
  };
  const dir = join(h.runDir, "phase3");
  const example = join(dir, "example");
  cpSync(join(REPO_ROOT, "example"), example, { recursive: true, filter: (src) => !src.includes("__pycache__") });
  process.env.LAMBDA_IMAGES_CACHE_DIR = join(dir, "digest-cache");
  const manifestFile = join(example, "images.yaml");
  const doc = parseDocument(readFileSync(manifestFile, "utf8"));
  doc.setIn(["baseImages", BASE, "builder"], "codebuild");
  doc.setIn(["baseImages", BASE, "platforms"], [...PLATFORMS]);
  doc.set("project", PROJECT);
  const js = doc.toJS() as { baseImages: object; lambdas: object };
  for (const name of Object.keys(js.baseImages)) if (name !== BASE) doc.deleteIn(["baseImages", name]);
  for (const name of Object.keys(js.lambdas)) if (name !== LAMBDA) doc.deleteIn(["lambdas", name]);
  writeFileSync(manifestFile, doc.toString());

  let t = Date.now();
  const outdir = join(dir, "cdktf.out");
  const { app } = await createImagesApp({ manifestFile, workDir: join(dir, "synth-work"), outdir });
  app.synth();
  const synthSeconds = (Date.now() - t) / 1000;
  const stackDir = join(outdir, "stacks", STACK);
  const tf = JSON.parse(readFileSync(join(stackDir, "cdk.tf.json"), "utf8")) as TfDoc;
  log(`  synth ${synthSeconds.toFixed(1)}s → ${relative(h.runDir, stackDir)}/cdk.tf.json`);

  const projects = new Map<string, StandInProject>();
  const fcb = await startFakeCodeBuildWithStandIn(h, (name) => projects.get(name));
  onCleanup(() => fcb.close());
  const tfHost = join(dir, "tf-host");
  const dockerEnv = hostEnv({ registryHost: h.registry.host, registriesConf: h.registriesConf, storageRoot: join(tfHost, "storage"), tmpDir: join(tfHost, "tmp") });
  t = Date.now();
  const applied = await apply(tf, stackDir, new Map() as State, {
    h,
    projects,
    endpoint: fcb.fake.endpoint,
    dockerEnv,
    logDir: join(dir, "apply"),
    parallelism: Number(process.env.E2E_PARALLELISM ?? 10),
    log,
  });
  const applySeconds = (Date.now() - t) / 1000;
  const builds = (await Promise.all(fcb.runs)) as BuildRun[];
  const result: Phase3Result = {
    checks,
    builds: builds.map((b) => ({ name: b.name, status: b.buildStatus, seconds: b.seconds, log: b.logFile })),
    synthSeconds,
    applySeconds,
  };
  const failed = applied.walk.filter((w) => !w.ok);
  if (!check("multi-platform CodeBuild base: every resource applied", failed.length === 0, failed.length ? failed.map((f) => `${f.address}: ${f.error?.split("\n").slice(0, 6).join(" | ")}`).join("; ") : `${applySeconds.toFixed(1)}s`)) {
    await fcb.close();
    return result;
  }

  // What each trigger asked the runner for, as Terraform ran it.
  const trigger = (re: RegExp) => {
    const r = applied.records.find((x: ApplyRecord) => x.type === "terraform_data" && re.test(x.address));
    const words = shellWords(r?.command ?? "");
    const at = (flag: string) => words[words.indexOf(flag) + 1] ?? "";
    return { project: at("--project"), repository: at("--repository-uri"), tag: at("--image-tag") };
  };
  const joinTrigger = trigger(new RegExp(`_${BASE}_trigger_build_`));
  const platformTriggers = PLATFORMS.map((p) => trigger(new RegExp(`_${BASE}_trigger-${p.split("/")[1]}_build_`)));
  const lambdaTrigger = trigger(new RegExp(`${LAMBDA}_trigger_build_`));
  const project = joinTrigger.project;
  const tag = joinTrigger.tag;
  check(
    "the per-platform triggers build <arch>-<tag> on <project>-<arch>",
    /^sha-[0-9a-f]{12}$/.test(tag) && platformTriggers.every((t, i) => t.tag === platformTag(tag, PLATFORMS[i]!) && t.project === `${project}-${PLATFORMS[i]!.split("/")[1]}` && t.repository === joinTrigger.repository),
    [joinTrigger, ...platformTriggers].map((t) => `${t.project} ${t.tag}`).join("; "),
  );

  // The builds: one per platform on that platform's project, then the join, then the Lambda.
  const byName = new Map(builds.map((b) => [b.name, b]));
  const perPlatform = PLATFORMS.map((p) => byName.get(`${project}-${p.split("/")[1]}`));
  const join_ = byName.get(project);
  check(
    "one CodeBuild build per platform, each on its own project, and the join",
    perPlatform.every((b) => b?.buildStatus === "SUCCEEDED") && join_?.buildStatus === "SUCCEEDED" && builds.length === 4,
    builds.map((b) => `${b.name} ${b.buildStatus} ${b.seconds.toFixed(1)}s`).join(", "),
  );
  const lastPlatformEnd = Math.max(...perPlatform.map((b) => b?.endTime.getTime() ?? Infinity));
  check("the join starts after both platforms' builds end", !!join_ && join_.startTime.getTime() >= lastPlatformEnd);
  for (const [i, p] of PLATFORMS.entries()) {
    // The shim echoes the buildah command it runs, with TARGET_PLATFORM expanded.
    const built = perPlatform[i]?.logs.filter((l) => /^\+ \S*buildah bud /.test(l)) ?? [];
    check(`the ${p} build built ${p} only, on the docker driver`, built.length === 1 && built[0]!.includes(`--platform ${p}`) && !/buildx create|binfmt/.test(perPlatform[i]!.logs.join("\n")), built.join(" | "));
  }
  const hub = builds.flatMap((b) => b.logs).filter((l) => /docker\.io|moby\/buildkit|tonistiigi/.test(l));
  check("no build touched Docker Hub", hub.length === 0, hub.slice(0, 3).join(" | ") || undefined);

  // The registry: <tag> is an index of exactly the per-platform builds' <arch>-<tag> images.
  const repo = joinTrigger.repository.slice(h.registry.host.length + 1);
  const tags = await h.reg.tags(repo);
  const index = tag ? await h.reg.manifest(repo, tag) : undefined;
  const entries = (index?.manifests ?? []).map((d) => `${d.platform?.os}/${d.platform?.architecture}=${d.digest}`).sort();
  const pushed = tag ? (await Promise.all(PLATFORMS.map(async (p) => `${p}=${await h.reg.headDigest(repo, platformTag(tag, p))}`))).sort() : [];
  check(`${repo}:${tag} is an index of the per-platform builds' images`, !!index && isIndex(index.mediaType) && entries.join() === pushed.join(), `${index?.mediaType} ${entries.join(" ")}; tags ${tags.sort().join(" ")}`);
  check(`${repo}:cache is that index`, !!index && (await h.reg.headDigest(repo, "cache")) === index.digest);
  for (const p of PLATFORMS) {
    const m = tag ? await h.reg.manifest(repo, platformTag(tag, p)) : undefined;
    const cfg = m ? await h.reg.imageConfig(repo, m) : undefined;
    check(`${repo}:${tag ? platformTag(tag, p) : ""} is a plain ${p} image`, !!m && !isIndex(m.mediaType) && `${cfg?.os}/${cfg?.architecture}` === p, `${m?.mediaType} ${cfg?.os}/${cfg?.architecture}`);
    const ctr = (await h.buildah(["from", "--quiet", "--platform", p, "--tls-verify=false", `${h.registry.host}/${repo}:${tag}`])).trim();
    try {
      const out = await h.buildah(["run", ctr, "--", "python3", "-c", "import receipt_dynamo, platform; print(platform.machine())"]);
      check(`import receipt_dynamo in the ${p} image of the index`, out.trim() === (p.endsWith("arm64") ? "aarch64" : "x86_64"), out.trim());
    } finally {
      await h.buildah(["rm", ctr]).catch(() => "");
    }
  }

  // The Lambda on it: built FROM the index (its platform's image), after the join.
  const lambdaBuild = byName.get(lambdaTrigger.project);
  check(`${LAMBDA} was built after the join`, !!lambdaBuild && !!join_ && lambdaBuild.startTime.getTime() >= join_.endTime.getTime());
  const lambdaRepo = lambdaTrigger.repository.slice(h.registry.host.length + 1);
  const lambdaTag = lambdaTrigger.tag;
  const lambdaManifest = await h.reg.manifest(lambdaRepo, lambdaTag ?? "missing");
  const lambdaCfg = await h.reg.imageConfig(lambdaRepo, lambdaManifest);
  check(`${LAMBDA} is a plain linux/arm64 image manifest`, !isIndex(lambdaManifest.mediaType) && `${lambdaCfg.os}/${lambdaCfg.architecture}` === "linux/arm64", `${lambdaManifest.mediaType} ${lambdaCfg.os}/${lambdaCfg.architecture}`);
  const ctr = (await h.buildah(["from", "--quiet", "--tls-verify=false", `${h.registry.host}/${lambdaRepo}:${lambdaTag}`])).trim();
  try {
    const event = JSON.stringify({ receipts: [{ id: "r1", merchant: "acme" }] });
    const res = await h.buildah(["run", "--env", `E2E_EVENT=${event}`, ctr, "--", "/lambda-entrypoint.sh", lambdaCfg.config.Cmd?.[0] ?? ""]);
    let parsed: any;
    try {
      parsed = JSON.parse(res.trim());
    } catch {
      parsed = undefined;
    }
    check(`${LAMBDA} (FROM the multi-platform base) runs its handler`, parsed?.items?.[0]?.PK === "RECEIPT#r1", res.trim());
  } finally {
    await h.buildah(["rm", ctr]).catch(() => "");
  }
  // Every build command run again (apply -replace, a lost state): the runner skips each one,
  // the per-platform images and the index alike, because its tag exists.
  const before = fcb.runs.length;
  const replays: string[] = [];
  for (const r of applied.records.filter((x) => x.type === "terraform_data" && x.command)) {
    const res = await localExec(r.command!, stackDir, localExecEnv(fcb.fake.endpoint), join(dir, "apply", `replay-${r.address}.log`));
    if (res.code !== 0 || !/already exists \(content-addressed tag\), skipping build/.test(res.out)) replays.push(`${r.address}: exit ${res.code} ${res.out.trim().split("\n").pop()}`);
  }
  check("the runner skips every build again (per-platform tags, the index, the Lambda) because its tag exists", replays.length === 0 && fcb.runs.length === before, replays.join("; ") || `${applied.records.filter((x) => x.type === "terraform_data").length} commands, builds started: ${fcb.runs.length - before}`);
  await fcb.close();
  return result;
}
