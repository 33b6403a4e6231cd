import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { buildspecForImage, buildspecHash, renderBuildspec, renderJoinBuildspec, shellQuote, type BuildspecInput } from "../src/buildspec.ts";
import { analyzeImages, type ImageAnalysis } from "../src/analyze.ts";
import { loadManifest } from "../src/manifest/load.ts";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";

/**
 * The buildspec is run for real here: each phase's commands go through bash with stub `aws` and
 * `docker` executables on PATH that record their argv, so quoting and control flow are proven
 * by what the tools would have received, not by string matching alone.
 */

interface Buildspec {
  version: unknown;
  env?: { shell?: string; variables?: Record<string, string> };
  phases: Record<"pre_build" | "build" | "post_build", { commands: string[] }>;
}

const REPO = "123456789012.dkr.ecr.us-east-1.amazonaws.com/portfolio-create-labels-prod";
const BASE = "210987654321.dkr.ecr.eu-west-1.amazonaws.com/base-receipt-label-prod:sha-0123456789ab";
const DIGEST = `${REPO}@sha256:${"d".repeat(64)}`;

let stubDir: string;

beforeAll(() => {
  stubDir = fs.mkdtempSync(path.join(os.tmpdir(), "buildspec-stubs-"));
  // Each call appends one record (ended by \x1e): the tool name and its arguments, separated by \x1f.
  // The record is written with one printf, so `aws … | docker login` (two stubs running at once
  // in a pipeline) cannot interleave their records.
  const recorder = (tool: string, extra: string) =>
    `#!/usr/bin/env bash\nrecord="$(printf '%s' ${tool}; printf '\\x1f%s' "$@"; printf '\\x1e')"\nprintf '%s' "$record" >> "$STUB_LOG"\n${extra}\n`;
  fs.writeFileSync(
    path.join(stubDir, "docker"),
    recorder(
      "docker",
      [
        'case "$1" in',
        "  login) cat > \"$STUB_LOG.stdin.$RANDOM\" ;;",
        '  push) if [ "$2" = "${STUB_FAIL_PUSH:-}" ]; then echo "denied" >&2; exit 1; fi ;;',
        `  inspect) echo "${DIGEST}" ;;`,
        "esac",
      ].join("\n"),
    ),
    { mode: 0o755 },
  );
  fs.writeFileSync(path.join(stubDir, "aws"), recorder("aws", 'echo "registry-token"'), { mode: 0o755 });
});
afterAll(() => fs.rmSync(stubDir, { recursive: true, force: true }));

interface PhaseRun {
  /** Exit status of the phase: that of the first failing command, else 0. */
  status: number;
  stdout: string;
  stderr: string;
  /** argv of every stubbed tool call, in order. */
  calls: string[][];
}

/**
 * Runs a phase like CodeBuild does with `shell: bash`: one command after another, stopping at
 * the first that fails. `env` is the build's environment (the runner sets REPOSITORY_URI,
 * IMAGE_TAG and BASE_IMAGE_URI).
 */
function runPhase(spec: Buildspec, phase: keyof Buildspec["phases"], env: Record<string, string>): PhaseRun {
  const log = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "buildspec-run-")), "calls.log");
  fs.writeFileSync(log, "");
  let status = 0;
  let stdout = "";
  let stderr = "";
  for (const command of spec.phases[phase].commands) {
    const run = spawnSync("bash", ["-c", command], {
      encoding: "utf8",
      env: { PATH: `${stubDir}:${process.env.PATH}`, STUB_LOG: log, AWS_REGION: "us-east-1", ...spec.env?.variables, ...env },
    });
    stdout += run.stdout;
    stderr += run.stderr;
    if (run.status !== 0) {
      status = run.status ?? 1;
      break;
    }
  }
  const calls = fs
    .readFileSync(log, "utf8")
    .split("\x1e")
    .filter((l) => l !== "")
    .map((l) => l.split("\x1f"));
  fs.rmSync(path.dirname(log), { recursive: true, force: true });
  return { status, stdout, stderr, calls };
}

function spec(input: Partial<BuildspecInput> = {}): Buildspec {
  return parse(
    renderBuildspec({
      dockerfile: "infra/create_labels_step_functions/lambdas/Dockerfile.with_base",
      platforms: ["linux/arm64"],
      buildArgs: {},
      loginPublicEcr: false,
      ...input,
    }),
  ) as Buildspec;
}

const withBase = { baseImage: { name: "receipt-label", skippedPackages: ["receipt_dynamo", "receipt_chroma", "receipt_label"] } };
const buildEnv = { REPOSITORY_URI: REPO, IMAGE_TAG: "sha-c9efe0b64df7", BASE_IMAGE_URI: BASE };

/** The docker login calls' registries (the last argument). */
const logins = (calls: string[][]) => calls.filter((c) => c[0] === "docker" && c[1] === "login").map((c) => c.at(-1));

describe("buildspec shape", () => {
  it("is a version 0.2 buildspec run with bash, with the three phases", () => {
    const text = renderBuildspec({ dockerfile: "Dockerfile", platforms: ["linux/amd64"], buildArgs: {}, loginPublicEcr: false });
    const parsed = parse(text) as Buildspec;
    expect(String(parsed.version)).toBe("0.2");
    expect(text).toMatch(/^version: 0\.2$/m);
    expect(parsed.env?.shell).toBe("bash");
    expect(Object.keys(parsed.phases)).toEqual(["pre_build", "build", "post_build"]);
  });

  it("reads the repository, tag and base image at build time, so its hash is a stable trigger input", () => {
    const input: BuildspecInput = { dockerfile: "Dockerfile", platforms: ["linux/arm64"], buildArgs: { A: "1" }, loginPublicEcr: true, ...withBase };
    const saved = { ...process.env };
    Object.assign(process.env, buildEnv);
    let a: string;
    try {
      a = renderBuildspec(input);
    } finally {
      for (const k of Object.keys(buildEnv)) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
    expect(a).toBe(renderBuildspec(input));
    for (const value of Object.values(buildEnv)) expect(a).not.toContain(value);
    expect(a).toContain("$REPOSITORY_URI:$IMAGE_TAG");
    expect(a).toContain("$BASE_IMAGE_URI");
    expect(buildspecHash(a)).toBe(createHash("sha256").update(a).digest("hex"));
    const c = renderBuildspec({ dockerfile: "Dockerfile", platforms: ["linux/arm64"], buildArgs: { A: "2" }, loginPublicEcr: true });
    expect(buildspecHash(c)).not.toBe(buildspecHash(a));
  });

  it("orders build args by name, so the same manifest always gives the same buildspec", () => {
    const a = renderBuildspec({ dockerfile: "D", platforms: ["linux/arm64"], buildArgs: { B: "2", A: "1" }, loginPublicEcr: false });
    const b = renderBuildspec({ dockerfile: "D", platforms: ["linux/arm64"], buildArgs: { A: "1", B: "2" }, loginPublicEcr: false });
    expect(a).toBe(b);
  });
});

describe("pre_build", () => {
  it("logs in to the target repository's registry only, when there is no base image and no public pull", () => {
    const run = runPhase(spec(), "pre_build", { REPOSITORY_URI: REPO, IMAGE_TAG: "sha-1" });
    expect(run.status).toBe(0);
    expect(logins(run.calls)).toEqual(["123456789012.dkr.ecr.us-east-1.amazonaws.com"]);
    expect(run.calls).toContainEqual(["aws", "ecr", "get-login-password", "--region", "us-east-1"]);
  });

  it("also logs in to the base image's registry and says which packages the context skips", () => {
    const run = runPhase(spec(withBase), "pre_build", buildEnv);
    expect(run.status).toBe(0);
    expect(logins(run.calls)).toEqual(["123456789012.dkr.ecr.us-east-1.amazonaws.com", "210987654321.dkr.ecr.eu-west-1.amazonaws.com"]);
    expect(run.stdout).toContain(`Using base image ${BASE} - skipping receipt_dynamo receipt_chroma receipt_label\n`);
  });

  it("fails before building when the base image URI was not passed", () => {
    const run = runPhase(spec(withBase), "pre_build", { REPOSITORY_URI: REPO, IMAGE_TAG: "sha-1" });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain("BASE_IMAGE_URI is not set");
    expect(logins(run.calls)).toEqual(["123456789012.dkr.ecr.us-east-1.amazonaws.com"]);
  });

  it("logs in to public ECR (us-east-1) when a FROM pulls from public.ecr.aws", () => {
    const run = runPhase(spec({ loginPublicEcr: true }), "pre_build", { REPOSITORY_URI: REPO, IMAGE_TAG: "sha-1" });
    expect(run.status).toBe(0);
    expect(logins(run.calls)).toContain("public.ecr.aws");
    expect(run.calls).toContainEqual(["aws", "ecr-public", "get-login-password", "--region", "us-east-1"]);
  });

  it("a platform's build of a multi-platform image refuses to run without its project's TARGET_PLATFORM, or with another platform", () => {
    const multi = spec({ platforms: ["linux/arm64", "linux/amd64"] });
    for (const target of [undefined, "linux/386"]) {
      const run = runPhase(multi, "pre_build", { REPOSITORY_URI: REPO, IMAGE_TAG: "arm64-t", ...(target ? { TARGET_PLATFORM: target } : {}) });
      expect(run.status).not.toBe(0);
      expect(run.stderr).toContain(`TARGET_PLATFORM is '${target ?? ""}', not one of linux/arm64 linux/amd64`);
    }
    expect(runPhase(multi, "pre_build", { REPOSITORY_URI: REPO, IMAGE_TAG: "arm64-t", TARGET_PLATFORM: "linux/amd64" }).status).toBe(0);
  });
});

describe("build", () => {
  function dockerBuild(run: PhaseRun): string[] {
    const builds = run.calls.filter((c) => c[0] === "docker" && c[1] === "buildx" && c[2] === "build");
    expect(builds).toHaveLength(1);
    return builds[0]!;
  }
  /** The value following `flag` (every occurrence). */
  const values = (argv: string[], flag: string) => argv.flatMap((a, i) => (a === flag ? [argv[i + 1]!] : []));

  it("builds for the platform without attestations, from the base image, tagged repo:tag, with the inline cache read from the cache tag", () => {
    const run = runPhase(spec(withBase), "build", buildEnv);
    expect(run.status).toBe(0);
    const argv = dockerBuild(run);
    expect(values(argv, "--platform")).toEqual(["linux/arm64"]);
    // Lambda takes a single image manifest, not an index: the AWS docs build Lambda images with
    // the default builder and --provenance=false (https://docs.aws.amazon.com/lambda/latest/dg/python-image.html).
    expect(argv).toContain("--provenance=false");
    expect(argv).toContain("--sbom=false");
    expect(values(argv, "--build-arg")).toEqual([`BASE_IMAGE_URI=${BASE}`]);
    expect(values(argv, "-f")).toEqual(["infra/create_labels_step_functions/lambdas/Dockerfile.with_base"]);
    expect(values(argv, "-t")).toEqual([`${REPO}:sha-c9efe0b64df7`]);
    // https://docs.docker.com/build/cache/backends/inline/: export with --cache-to type=inline,
    // import with --cache-from type=registry,ref=<image>.
    expect(values(argv, "--cache-from")).toEqual([`type=registry,ref=${REPO}:cache`]);
    expect(values(argv, "--cache-to")).toEqual(["type=inline"]);
    // Single platform: loaded into the daemon's image store so post_build can push it and read its digest.
    expect(argv).toContain("--load");
    expect(argv).not.toContain("--push");
    expect(argv.at(-1)).toBe(".");
  });

  it("passes no BASE_IMAGE_URI build arg without a base image", () => {
    const argv = dockerBuild(runPhase(spec(), "build", { REPOSITORY_URI: REPO, IMAGE_TAG: "sha-1", BASE_IMAGE_URI: BASE }));
    expect(argv.some((a) => a.startsWith("BASE_IMAGE_URI="))).toBe(false);
  });

  it("builds one platform of a multi-platform image per build: the one its project names, tagged $IMAGE_TAG (<tag>-<arch>)", () => {
    const multi = spec({ platforms: ["linux/arm64", "linux/amd64"] });
    for (const platform of ["linux/arm64", "linux/amd64"]) {
      const tag = `t-${platform.slice(6)}`;
      const argv = dockerBuild(runPhase(multi, "build", { REPOSITORY_URI: REPO, IMAGE_TAG: tag, TARGET_PLATFORM: platform }));
      expect(values(argv, "--platform")).toEqual([platform]);
      expect(values(argv, "-t")).toEqual([`${REPO}:${tag}`]);
      expect(argv).toContain("--load");
      expect(argv).toContain("--provenance=false");
    }
  });

  it("passes build args with shell metacharacters to docker byte for byte, running nothing", () => {
    const marker = path.join(stubDir, "injected");
    const nasty = {
      QUOTES: `it's "quoted" \\ back`,
      SUBST: `$(touch ${marker}) \`touch ${marker}\` \${HOME}`,
      CONTROL: "a;b&&c|d>e<f *? ~ # !x",
      EMPTY: "",
      NEWLINE: "line1\nline2",
      PLAIN: "v1.2_3",
    };
    const text = renderBuildspec({ dockerfile: "dir with space/Dockerfile's", platforms: ["linux/amd64"], buildArgs: nasty, loginPublicEcr: false });
    const parsed = parse(text) as Buildspec;
    for (const command of parsed.phases.build.commands) {
      const check = spawnSync("bash", ["-n", "-c", command], { encoding: "utf8" });
      expect(check.status, check.stderr).toBe(0);
    }
    const argv = dockerBuild(runPhase(parsed, "build", { REPOSITORY_URI: REPO, IMAGE_TAG: "t" }));
    expect(fs.existsSync(marker)).toBe(false);
    expect(values(argv, "--build-arg").sort()).toEqual(Object.entries(nasty).map(([k, v]) => `${k}=${v}`).sort());
    expect(values(argv, "-f")).toEqual(["dir with space/Dockerfile's"]);
  });

  it("shellQuote round-trips any string through bash", () => {
    for (const value of ["", "plain", "a b", "'", "''", `"'"`, "$HOME", "a\\b", "x\ny", "--flag=1", "é ü"]) {
      const echoed = spawnSync("bash", ["-c", `printf '%s' ${shellQuote(value)}`], { encoding: "utf8" });
      expect(echoed.stdout).toBe(value);
    }
  });
});

describe("post_build", () => {
  it("refuses to push when the build phase failed (CodeBuild still runs post_build)", () => {
    const run = runPhase(spec(withBase), "post_build", { ...buildEnv, CODEBUILD_BUILD_SUCCEEDING: "0" });
    expect(run.status).not.toBe(0);
    expect(run.calls.filter((c) => c[0] === "docker" && c[1] === "push")).toEqual([]);
    expect(run.stderr).toContain("not pushing");
  });

  it("pushes repo:tag and prints the pushed digest when the build succeeded", () => {
    const run = runPhase(spec(withBase), "post_build", { ...buildEnv, CODEBUILD_BUILD_SUCCEEDING: "1" });
    expect(run.status).toBe(0);
    expect(run.calls).toContainEqual(["docker", "push", `${REPO}:sha-c9efe0b64df7`]);
    expect(run.stdout).toContain(`Pushed ${DIGEST}`);
  });

  it("after pushing, moves the cache tag to the new image; a failed cache push only warns", () => {
    const run = runPhase(spec(withBase), "post_build", { ...buildEnv, CODEBUILD_BUILD_SUCCEEDING: "1" });
    const pushes = run.calls.filter((c) => c[0] === "docker" && c[1] === "push").map((c) => c[2]);
    expect(pushes).toEqual([`${REPO}:sha-c9efe0b64df7`, `${REPO}:cache`]);
    expect(run.calls).toContainEqual(["docker", "tag", `${REPO}:sha-c9efe0b64df7`, `${REPO}:cache`]);
    const failing = runPhase(spec(withBase), "post_build", { ...buildEnv, CODEBUILD_BUILD_SUCCEEDING: "1", STUB_FAIL_PUSH: `${REPO}:cache` });
    expect(failing.status).toBe(0);
    expect(failing.stderr).toContain("could not push the cache tag");
  });

  it("a platform's build of a multi-platform image pushes only its own tag (the join tags the index cache)", () => {
    const run = runPhase(spec({ platforms: ["linux/arm64", "linux/amd64"] }), "post_build", {
      REPOSITORY_URI: REPO,
      IMAGE_TAG: "arm64-t",
      TARGET_PLATFORM: "linux/arm64",
      CODEBUILD_BUILD_SUCCEEDING: "1",
    });
    expect(run.status).toBe(0);
    expect(run.calls.filter((c) => c[1] === "push").map((c) => c[2])).toEqual([`${REPO}:arm64-t`]);
  });
});

describe("the join of a multi-platform image", () => {
  const join = () => parse(renderJoinBuildspec(["linux/arm64", "linux/amd64"])) as Buildspec;
  const env = { REPOSITORY_URI: REPO, IMAGE_TAG: "sha-1", CODEBUILD_BUILD_SUCCEEDING: "1" };

  it("logs in to the repository's registry and creates the index <tag> from arm64-<tag> and amd64-<tag> in the registry", () => {
    const pre = runPhase(join(), "pre_build", env);
    expect(pre.status).toBe(0);
    expect(logins(pre.calls)).toEqual(["123456789012.dkr.ecr.us-east-1.amazonaws.com"]);
    const build = runPhase(join(), "build", env);
    expect(build.status).toBe(0);
    // https://docs.docker.com/reference/cli/docker/buildx/imagetools/create/: "Create a new manifest
    // list based on source manifests ... [which] must already exist in the registry".
    expect(build.calls).toEqual([["docker", "buildx", "imagetools", "create", "-t", `${REPO}:sha-1`, `${REPO}:arm64-sha-1`, `${REPO}:amd64-sha-1`]]);
  });

  it("tags the index cache (a carbon copy: one source) and prints it; refuses after a failed build", () => {
    const post = runPhase(join(), "post_build", env);
    expect(post.status).toBe(0);
    expect(post.calls).toEqual([
      ["docker", "buildx", "imagetools", "create", "-t", `${REPO}:cache`, `${REPO}:sha-1`],
      ["docker", "buildx", "imagetools", "inspect", `${REPO}:sha-1`],
    ]);
    const failed = runPhase(join(), "post_build", { ...env, CODEBUILD_BUILD_SUCCEEDING: "0" });
    expect(failed.status).not.toBe(0);
    expect(failed.calls).toEqual([]);
  });
});

/**
 * Every CodeBuild build must work without Docker Hub: anonymous pulls from CodeBuild's shared
 * addresses hit its rate limit (`toomanyrequests`). A `docker buildx create --driver
 * docker-container` builder pulls its BuildKit image, `moby/buildkit:buildx-stable-1`, from Docker
 * Hub when it boots, and QEMU's installer is `tonistiigi/binfmt` (buildx driver/bkimage:
 * DefaultImage, QemuImage). The default `docker` driver "uses the BuildKit server components built
 * directly into the Docker Engine" (https://docs.docker.com/build/builders/drivers/docker/) and
 * exports the inline cache only ("Cache export: Inline only",
 * https://docs.docker.com/build/builders/drivers/; buildx lets `type=inline` past its driver check,
 * docker/buildx build/opt.go). So every docker command runs on the daemon or the target registry.
 */
describe("no build needs Docker Hub", () => {
  const multi: Partial<BuildspecInput> = { platforms: ["linux/arm64", "linux/amd64"] };
  const variants: [string, Buildspec, Record<string, string>][] = [
    ["a single-platform Lambda FROM a base image", spec(withBase), buildEnv],
    ["a single-platform image FROM public ECR", spec({ loginPublicEcr: true, platforms: ["linux/amd64"] }), { REPOSITORY_URI: REPO, IMAGE_TAG: "t" }],
    ["one platform of a multi-platform base", spec({ ...multi, ...withBase }), { ...buildEnv, IMAGE_TAG: "t-amd64", TARGET_PLATFORM: "linux/amd64" }],
    ["the join of a multi-platform base", parse(renderJoinBuildspec(["linux/arm64", "linux/amd64"])) as Buildspec, { REPOSITORY_URI: REPO, IMAGE_TAG: "t" }],
  ];
  const allCalls = (b: Buildspec, env: Record<string, string>) =>
    (["pre_build", "build", "post_build"] as const).flatMap((phase) => {
      const run = runPhase(b, phase, { ...env, CODEBUILD_BUILD_SUCCEEDING: "1" });
      expect(run.status, `${phase}: ${run.stderr}`).toBe(0);
      return run.calls.filter((c) => c[0] === "docker");
    });

  it.each(variants)("%s: uses the daemon's own builder, runs and pulls no image, and names only its registries", (_name, b, env) => {
    const calls = allCalls(b, env);
    expect(calls.length).toBeGreaterThan(0);
    for (const c of calls) {
      const command = c.slice(1, 3).join(" ");
      expect(["buildx create", "buildx use"], c.join(" ")).not.toContain(command);
      expect(["run", "pull"], c.join(" ")).not.toContain(c[1]);
      expect(c, "the build must run on the default (docker driver) builder").not.toContain("--builder");
      expect(c.join(" ")).not.toMatch(/moby\/buildkit|tonistiigi|docker\.io/);
    }
    // Every image reference (tags, cache sources, index sources) is in the repository's registry.
    const refs = calls.flatMap((c) => {
      if (c[1] === "buildx" && c[2] === "build") return c.flatMap((a, i) => (c[i - 1] === "-t" ? [a] : c[i - 1] === "--cache-from" ? [a.replace(/^type=registry,ref=/, "")] : []));
      if (c[1] === "buildx" && c[2] === "imagetools") return c.slice(4).filter((a) => !a.startsWith("-"));
      if (c[1] === "push" || c[1] === "tag") return c.slice(2);
      return [];
    });
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) expect(ref.startsWith(`${REPO}:`), ref).toBe(true);
  });

  it.each(variants.slice(0, 3))("%s: exports only the inline cache, the one the docker driver supports", (_name, b, env) => {
    const builds = allCalls(b, env).filter((c) => c[1] === "buildx" && c[2] === "build");
    expect(builds).toHaveLength(1);
    const argv = builds[0]!;
    const cacheTo = argv.flatMap((a, i) => (argv[i - 1] === "--cache-to" ? [a] : []));
    expect(cacheTo).toEqual(["type=inline"]);
  });
});

describe("buildspecs of the example's images", () => {
  let copy: ExampleCopy;
  let analysis: ImageAnalysis;
  beforeAll(async () => {
    copy = copyExample({ prefix: "buildspec-example-" });
    analysis = await analyzeImages(loadManifest(copy.manifest));
  });
  afterAll(() => copy.cleanup());

  const of = (name: string) => parse(buildspecForImage(analysis.image(name, "lambda"))) as Buildspec;

  it("a Lambda built FROM a base image logs in to the base's registry, skips its packages and never logs in to public ECR", () => {
    const run = runPhase(of("create-labels"), "pre_build", buildEnv);
    expect(run.status).toBe(0);
    expect(logins(run.calls)).not.toContain("public.ecr.aws");
    expect(run.stdout).toContain(`Using base image ${BASE} - skipping receipt_dynamo receipt_chroma receipt_label`);
    const sync = runPhase(of("sync-dynamo"), "pre_build", buildEnv);
    expect(sync.stdout).toContain(`Using base image ${BASE} - skipping receipt_dynamo\n`);
  });

  it("the standalone Lambda (FROM public.ecr.aws/lambda/python) logs in to public ECR and takes no base image", () => {
    const standalone = of("create-labels-standalone");
    const run = runPhase(standalone, "pre_build", { REPOSITORY_URI: REPO, IMAGE_TAG: "t" });
    expect(run.status).toBe(0);
    expect(logins(run.calls)).toEqual(["123456789012.dkr.ecr.us-east-1.amazonaws.com", "public.ecr.aws"]);
    expect(run.stdout).not.toContain("Using base image");
    const build = runPhase(standalone, "build", { REPOSITORY_URI: REPO, IMAGE_TAG: "t" });
    const argv = build.calls.find((c) => c[1] === "buildx" && c[2] === "build")!;
    expect(argv).toContain("linux/amd64");
    expect(argv).toContain("infra/create_labels_step_functions/lambdas/Dockerfile");
  });

  it("a Lambda whose FROM defaults to public ECR and has no base image logs in to public ECR", async () => {
    const variant = path.join(copy.dir, "no-base.yaml");
    fs.writeFileSync(
      variant,
      fs.readFileSync(copy.manifest, "utf8").replace(/(  sync-dynamo:\n    dockerfile: [^\n]+\n)    baseImage: receipt-dynamo\n/, "$1"),
    );
    const noBase = await analyzeImages(loadManifest(variant));
    const image = noBase.image("sync-dynamo", "lambda");
    expect(image.spec.baseImage).toBeUndefined();
    const run = runPhase(parse(buildspecForImage(image)) as Buildspec, "pre_build", { REPOSITORY_URI: REPO, IMAGE_TAG: "t" });
    expect(logins(run.calls)).toContain("public.ecr.aws");
  });
});
