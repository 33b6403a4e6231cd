// Phase 1 proof: the fixture monorepo (e2e/fixtures/mono) built through the CodeBuild stand-in
// with buildspecs from the project's own renderBuildspec(): a multi-platform base image that pip
// installs a local package (one build per platform, as each platform's CodeBuild project runs it,
// then the join into an index), then a linux/arm64 Lambda image FROM it. Checks what landed in the
// registry through its HTTP API and runs Python inside the images.
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { analyzeImagesSync } from "../src/analyze.ts";
import { writeContextArchiveSync } from "../src/archive/context-archive.ts";
import { loadManifest } from "../src/manifest/load.ts";
import { platformTag, renderBuildspec, renderJoinBuildspec, TARGET_PLATFORM_VAR } from "../src/buildspec.ts";
import { bundleRunner } from "../src/runner/bundle.ts";
import { fakeAwsEnv } from "../__tests__/fake-aws/index.ts";
import { startFakeCodeBuildWithStandIn } from "./lib/fake-codebuild.ts";
import { onCleanup } from "./lib/services.ts";
import { REPO_ROOT } from "./lib/buildenv.ts";
import { CONTEXT_BUCKET, zipDir, type BuildRun, type Harness } from "./lib/harness.ts";
import { isIndex } from "./lib/registry.ts";

const FIXTURE = join(REPO_ROOT, "e2e", "fixtures", "mono");

export interface Check {
  name: string;
  ok: boolean;
  detail?: string;
}

export interface Phase1Result {
  builds: BuildRun[];
  checks: Check[];
  uploaded: Record<string, number>;
}

export async function phase1(h: Harness, log: (l: string) => void, o: { platforms?: { base: string[]; lambda: string } } = {}): Promise<Phase1Result> {
  const checks: Check[] = [];
  const check = (name: string, ok: boolean, detail?: string) => {
    checks.push({ name, ok, detail });
    log(`${ok ? "  ok  " : "  FAIL"} ${name}${detail ? ` — ${detail}` : ""}`);
  };
  const basePlatforms = o.platforms?.base ?? ["linux/arm64", "linux/amd64"];
  const lambdaPlatform = o.platforms?.lambda ?? "linux/arm64";
  const lambdaArch = lambdaPlatform.split("/")[1]!;

  // Context archives: exactly each image's files at their repo-relative paths.
  const uploaded: Record<string, number> = {};
  const baseZip = await zipDir(FIXTURE, [
    "infra/base/Dockerfile",
    "packages/tinypkg/pyproject.toml",
    "packages/tinypkg/src/tinypkg/__init__.py",
  ]);
  const helloZip = await zipDir(FIXTURE, ["infra/hello/Dockerfile.with_base", "infra/hello/handler.py"]);
  uploaded["contexts/e2e-base.zip"] = await h.upload("contexts/e2e-base.zip", baseZip);
  uploaded["contexts/e2e-hello.zip"] = await h.upload("contexts/e2e-hello.zip", helloZip);

  const baseSpec = renderBuildspec({
    dockerfile: "infra/base/Dockerfile",
    platforms: basePlatforms as never,
    buildArgs: {},
    loginPublicEcr: true,
  });
  const helloSpec = renderBuildspec({
    dockerfile: "infra/hello/Dockerfile.with_base",
    platforms: [lambdaPlatform] as never,
    buildArgs: {},
    baseImage: { name: "e2e-base", skippedPackages: ["tinypkg"] },
    loginPublicEcr: false,
  });

  const host = h.registry.host;
  const baseRepo = "e2e-base";
  const helloRepo = "e2e-hello";
  const builds: BuildRun[] = [];
  const phaseTrail: string[] = [];

  // Each platform on its own project (TARGET_PLATFORM from the project), then the join, as the
  // synthesized per-platform and join triggers run them.
  const perPlatform = basePlatforms.length > 1;
  const baseRuns = perPlatform
    ? await Promise.all(
        basePlatforms.map((p, i) =>
          h.runBuild({
            name: `e2e-base-${p.split("/")[1]}`,
            buildspec: baseSpec,
            key: "contexts/e2e-base.zip",
            env: { IMAGE_TAG: platformTag("b1", p as never), REPOSITORY_URI: `${host}/${baseRepo}`, [TARGET_PLATFORM_VAR]: p },
            hooks: i === 0 ? { phaseStarted: (ph) => phaseTrail.push(ph.phaseType) } : undefined,
          }),
        ),
      )
    : [];
  builds.push(...baseRuns);
  for (const [i, run] of baseRuns.entries()) {
    check(`base build of ${basePlatforms[i]} SUCCEEDED`, run.buildStatus === "SUCCEEDED", `${run.buildStatus} in ${run.seconds.toFixed(1)}s, log ${run.logFile}`);
  }
  if (baseRuns.some((r) => r.buildStatus !== "SUCCEEDED")) return { builds, checks, uploaded };
  const base = await h.runBuild({
    name: perPlatform ? "e2e-base-join" : "e2e-base",
    buildspec: perPlatform ? renderJoinBuildspec(basePlatforms as never) : baseSpec,
    key: "contexts/e2e-base.zip",
    env: { IMAGE_TAG: "b1", REPOSITORY_URI: `${host}/${baseRepo}` },
    hooks: perPlatform ? undefined : { phaseStarted: (p) => phaseTrail.push(p.phaseType) },
  });
  builds.push(base);
  check(perPlatform ? "base join SUCCEEDED" : "base build SUCCEEDED", base.buildStatus === "SUCCEEDED", `${base.buildStatus} in ${base.seconds.toFixed(1)}s, log ${base.logFile}`);
  check(
    "phases reported in CodeBuild order",
    phaseTrail.join(",") ===
      "SUBMITTED,QUEUED,PROVISIONING,DOWNLOAD_SOURCE,INSTALL,PRE_BUILD,BUILD,POST_BUILD,UPLOAD_ARTIFACTS,FINALIZING,COMPLETED",
    phaseTrail.join(","),
  );
  if (base.buildStatus !== "SUCCEEDED") return { builds, checks, uploaded };

  const hello = await h.runBuild({
    name: "e2e-hello",
    buildspec: helloSpec,
    key: "contexts/e2e-hello.zip",
    env: { IMAGE_TAG: "h1", REPOSITORY_URI: `${host}/${helloRepo}`, BASE_IMAGE_URI: `${host}/${baseRepo}:b1` },
  });
  builds.push(hello);
  check("lambda build SUCCEEDED", hello.buildStatus === "SUCCEEDED", `${hello.buildStatus} in ${hello.seconds.toFixed(1)}s, log ${hello.logFile}`);
  if (hello.buildStatus !== "SUCCEEDED") return { builds, checks, uploaded };

  // --- the registry's view --------------------------------------------------------------------
  const baseTop = await h.reg.manifest(baseRepo, "b1");
  const basePlats = (baseTop.manifests ?? []).map((d) => `${d.platform?.os}/${d.platform?.architecture}`).sort();
  if (basePlatforms.length > 1) {
    check("multi-platform base is an index with one entry per platform", isIndex(baseTop.mediaType) && basePlats.join() === [...basePlatforms].sort().join(), `${baseTop.mediaType} [${basePlats}]`);
    const inspectLine = base.logs.find((l) => l.startsWith("Digest:"));
    check("imagetools inspect printed the index digest", inspectLine?.includes(baseTop.digest) ?? false, inspectLine);
    // The index points at exactly the images the per-platform builds pushed, each under its own platform.
    const pushed = await Promise.all(basePlatforms.map(async (p) => `${p}=${await h.reg.headDigest(baseRepo, platformTag("b1", p as never))}`));
    const entries = (baseTop.manifests ?? []).map((d) => `${d.platform?.os}/${d.platform?.architecture}=${d.digest}`);
    check("the index's entries are the per-platform builds' <tag>-<arch> images", entries.sort().join() === pushed.sort().join(), entries.join(" "));
    const cacheDigest = await h.reg.headDigest(baseRepo, "cache");
    check("the join tagged the index cache (the next per-platform builds' --cache-from)", cacheDigest === baseTop.digest, cacheDigest);
  }
  const helloTop = await h.reg.manifest(helloRepo, "h1");
  check("lambda manifest is a single image manifest (not an index)", !isIndex(helloTop.mediaType) && !!helloTop.layers, helloTop.mediaType);
  const pushedLine = hello.logs.find((l) => l.startsWith("Pushed "));
  check("post_build printed the pushed RepoDigest", pushedLine === `Pushed ${host}/${helloRepo}@${helloTop.digest}`, pushedLine);
  const pushLine = hello.logs.find((l) => /^h1: digest: sha256:[0-9a-f]{64} size: \d+$/.test(l));
  check("docker push printed docker's digest line", pushLine === `h1: digest: ${helloTop.digest} size: ${helloTop.size}`, pushLine);

  const helloCache = await h.reg.headDigest(helloRepo, "cache");
  check("post_build moved the cache tag to the pushed image", helloCache === helloTop.digest, helloCache);
  const dockerHub = builds.flatMap((b) => b.logs).filter((l) => /docker\.io|moby\/buildkit|tonistiigi/.test(l));
  check("no build touched Docker Hub", dockerHub.length === 0, dockerHub.slice(0, 3).join(" | ") || "no docker.io, moby/buildkit or binfmt in any build log");

  const helloCfg = await h.reg.imageConfig(helloRepo, helloTop);
  check(`lambda image is ${lambdaPlatform}`, `${helloCfg.os}/${helloCfg.architecture}` === lambdaPlatform, `${helloCfg.os}/${helloCfg.architecture}`);
  check("lambda CMD/ENTRYPOINT/WORKDIR have the Lambda shape",
    JSON.stringify(helloCfg.config.Cmd) === '["handler.lambda_handler"]' &&
      JSON.stringify(helloCfg.config.Entrypoint) === '["/lambda-entrypoint.sh"]' &&
      helloCfg.config.WorkingDir === "/var/task",
    `${JSON.stringify(helloCfg.config.Entrypoint)} ${JSON.stringify(helloCfg.config.Cmd)} ${helloCfg.config.WorkingDir}`); // prettier-ignore

  const baseArch = await h.reg.imageManifest(baseRepo, "b1", lambdaPlatform);
  const standinArch = await h.reg.imageManifest("lambda/python", "3.12", lambdaPlatform);
  const bl = baseArch.layers!.map((l) => l.digest);
  const hl = helloTop.layers!.map((l) => l.digest);
  const sl = standinArch.layers!.map((l) => l.digest);
  check("base layers = stand-in layers + COPY + RUN", bl.length === sl.length + 2 && sl.every((d, i) => bl[i] === d), `${sl.length} -> ${bl.length}`);
  const newLayers = helloTop.layers!.slice(bl.length);
  check("lambda layers = base layers + only the handler's", hl.length === bl.length + 1 && bl.every((d, i) => hl[i] === d),
    `${bl.length} -> ${hl.length}, new: ${newLayers.map((l) => `${l.digest.slice(7, 19)} ${l.size} B`).join(", ")}`); // prettier-ignore

  // --- run Python inside the images ----------------------------------------------------------
  for (const p of basePlatforms) {
    const ctr = (await h.buildah(["from", "--quiet", "--platform", p, "--tls-verify=false", `${host}/${baseRepo}:b1`])).trim();
    try {
      const out = await h.buildah(["run", ctr, "--", "python3", "-c", "import tinypkg, platform; print(tinypkg.describe())"]);
      const machine = p.endsWith("arm64") ? "aarch64" : "x86_64";
      check(`python3 -c "import tinypkg" in the ${p} base`, out.trim() === `tinypkg 42 on ${machine}`, out.trim());
    } finally {
      await h.buildah(["rm", ctr]).catch(() => "");
    }
  }
  const ctr = (await h.buildah(["from", "--quiet", "--tls-verify=false", `${host}/${helloRepo}:h1`])).trim();
  try {
    const out = await h.buildah(["run", "--env", 'E2E_EVENT={"n":1}', ctr, "--", "/lambda-entrypoint.sh", "handler.lambda_handler"]);
    const machine = lambdaArch === "arm64" ? "aarch64" : "x86_64";
    let parsed: any;
    try {
      parsed = JSON.parse(out.trim());
    } catch {
      parsed = undefined;
    }
    check("lambda handler runs in its image", parsed?.value === 42 && parsed?.where === `tinypkg 42 on ${machine}` && parsed?.event?.n === 1, out.trim());
  } finally {
    await h.buildah(["rm", ctr]).catch(() => "");
  }

  // --- a Dockerfile outside its build context, through the real selection, archive and buildspec ---
  checks.push(...(await outsideDockerfile(h, log, { basePlatforms, lambdaPlatform, baseUri: `${host}/${baseRepo}:b1`, builds })));

  // --- through the real (bundled) runner and the fake CodeBuild API ---------------------------
  const runnerChecks = await viaRunner(h, log, { helloSpec, lambdaTag: "h2", baseUri: `${host}/${baseRepo}:b1`, helloRepo });
  checks.push(...runnerChecks.checks);
  builds.push(...runnerChecks.builds);
  return { builds, checks, uploaded };
}

/**
 * A Lambda whose Dockerfile lies outside its build context (issue 22): context infra/hello, Dockerfile
 * infra/dockerfiles/Dockerfile.hello_outside, analyzed from a manifest by the library itself; its
 * context archive and buildspec are the ones synth would upload, built FROM the base above. The
 * image must run its handler and hold exactly the context's files (`COPY .`): not the Dockerfile.
 */
async function outsideDockerfile(
  h: Harness,
  log: (l: string) => void,
  o: { basePlatforms: string[]; lambdaPlatform: string; baseUri: string; builds: BuildRun[] },
): Promise<Check[]> {
  const checks: Check[] = [];
  const check = (name: string, ok: boolean, detail?: string) => {
    checks.push({ name, ok, detail });
    log(`${ok ? "  ok  " : "  FAIL"} ${name}${detail ? ` — ${detail}` : ""}`);
  };
  const manifestFile = join(h.runDir, "outside-dockerfile.images.yaml");
  writeFileSync(
    manifestFile,
    [
      "project: e2e",
      `root: ${relative(h.runDir, FIXTURE)}`,
      "stacks: { dev: { region: us-east-1 } }",
      "baseImages:",
      `  base: { dockerfile: infra/base/Dockerfile, packages: [packages/tinypkg], builder: codebuild, platforms: [${o.basePlatforms.join(", ")}] }`,
      "lambdas:",
      `  hello-outside: { dockerfile: infra/dockerfiles/Dockerfile.hello_outside, context: infra/hello, baseImage: base, platform: ${o.lambdaPlatform} }`,
      "",
    ].join("\n"),
  );
  const image = analyzeImagesSync(loadManifest(manifestFile)).image("hello-outside", "lambda");
  const zip = join(h.runDir, "contexts", "e2e-hello-outside.zip");
  writeContextArchiveSync(FIXTURE, image.selection.files, zip, image.spec.context, { dockerfile: image.spec.dockerfile });
  await h.upload("contexts/e2e-hello-outside.zip", readFileSync(zip));
  const host = h.registry.host;
  const run = await h.runBuild({
    name: "e2e-hello-outside",
    buildspec: image.buildspec!,
    key: "contexts/e2e-hello-outside.zip",
    env: { IMAGE_TAG: "o1", REPOSITORY_URI: `${host}/e2e-hello-outside`, BASE_IMAGE_URI: o.baseUri },
  });
  o.builds.push(run);
  check("outside-context Dockerfile: lambda build SUCCEEDED", run.buildStatus === "SUCCEEDED", `${run.buildStatus} in ${run.seconds.toFixed(1)}s, log ${run.logFile}`);
  if (run.buildStatus !== "SUCCEEDED") return checks;
  const ctr = (await h.buildah(["from", "--quiet", "--tls-verify=false", `${host}/e2e-hello-outside:o1`])).trim();
  try {
    const listed = (await h.buildah(["run", ctr, "--", "ls", "-A", "/var/task"])).trim().split(/\s+/).sort();
    check("outside-context Dockerfile: COPY . brought the context's files and not the Dockerfile", listed.join(" ") === "Dockerfile.with_base handler.py", listed.join(" "));
    const out = await h.buildah(["run", "--env", 'E2E_EVENT={"n":2}', ctr, "--", "/lambda-entrypoint.sh", "handler.lambda_handler"]);
    let parsed: any;
    try {
      parsed = JSON.parse(out.trim());
    } catch {
      parsed = undefined;
    }
    check("outside-context Dockerfile: the handler runs in its image", parsed?.value === 42 && parsed?.event?.n === 2, out.trim());
  } finally {
    await h.buildah(["rm", ctr]).catch(() => "");
  }
  return checks;
}

/**
 * The Lambda image again, this time as Terraform's local-exec would: `node runner.cjs build ...`
 * against the fake CodeBuild/ECR/Logs endpoint, whose builds the stand-in really executes. Then
 * the same command again: the tag now exists in the registry, so the runner must skip.
 */
async function viaRunner(
  h: Harness,
  log: (l: string) => void,
  o: { helloSpec: string; lambdaTag: string; baseUri: string; helloRepo: string },
): Promise<{ checks: Check[]; builds: BuildRun[] }> {
  const checks: Check[] = [];
  const check = (name: string, ok: boolean, detail?: string) => {
    checks.push({ name, ok, detail });
    log(`${ok ? "  ok  " : "  FAIL"} ${name}${detail ? ` — ${detail}` : ""}`);
  };
  const { cliFile } = await bundleRunner(join(h.runDir, "runner"));
  const fcb = await startFakeCodeBuildWithStandIn(h, (name) => (name === "e2e-hello-runner" ? { buildspec: o.helloSpec } : undefined));
  onCleanup(() => fcb.close());
  const args = [
    cliFile, "build",
    "--project", "e2e-hello-runner",
    "--source-location", `${CONTEXT_BUCKET}/contexts/e2e-hello.zip`,
    "--repository-uri", `${h.registry.host}/${o.helloRepo}`,
    "--image-tag", o.lambdaTag,
    "--base-image-uri", o.baseUri,
    "--region", "us-east-1",
  ]; // prettier-ignore
  const env = fakeAwsEnv(fcb.fake.endpoint, { extra: { RUNNER_POLL_MS: "300", AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" } });
  const first = await node(args, env);
  writeFileSync(join(h.runDir, "runner-first.log"), first.out);
  const builds = await Promise.all(fcb.runs);
  check("runner: build via fake CodeBuild API exits 0", first.code === 0, `exit ${first.code}${first.code ? `\n${first.out}` : ""}`);
  const seen = ["PROVISIONING", "DOWNLOAD_SOURCE", "PRE_BUILD", "BUILD", "POST_BUILD"].filter((p) => first.out.includes(p));
  check("runner: printed the stand-in's real phases", seen.length === 5, `saw ${seen.join(",")}`);
  const digest = await h.reg.headDigest(o.helloRepo, o.lambdaTag);
  check("runner: reported the registry's digest", !!digest && first.out.includes(digest), digest);
  const second = await node(args, env);
  writeFileSync(join(h.runDir, "runner-second.log"), second.out);
  check("runner: second run skips (DescribeImages answered by the registry)", second.code === 0 && fcb.runs.length === 1, `exit ${second.code}, builds ${fcb.runs.length}: ${second.out.trim().split("\n").pop()}`);
  await fcb.close();
  return { checks, builds };
}

function node(args: string[], env: Record<string, string>): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("exit", (code) => resolve({ code: code ?? 1, out }));
  });
}
