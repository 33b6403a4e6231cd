// The e2e CodeBuild stand-in's buildspec semantics, with plain shell commands (no buildah, no S3).
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, createWriteStream } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import yazl from "yazl";
import { executeBuild, parseBuildspec, type BuildRequest } from "../e2e/lib/codebuild.ts";

const root = mkdtempSync(join(tmpdir(), "e2e-codebuild-test-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let n = 0;
async function zipOf(files: Record<string, string>): Promise<string> {
  const path = join(root, `src-${++n}.zip`);
  const z = new yazl.ZipFile();
  for (const [name, body] of Object.entries(files)) z.addBuffer(Buffer.from(body), name);
  z.end();
  await new Promise<void>((resolve, reject) => {
    z.outputStream.pipe(createWriteStream(path)).on("close", () => resolve()).on("error", reject);
  });
  return path;
}

async function run(buildspec: string, opts: Partial<BuildRequest> = {}, files = { "hello.txt": "hi\n" }) {
  const id = `proj:${++n}`;
  return executeBuild({
    buildId: id,
    buildspec,
    source: { kind: "zip", path: await zipOf(files) },
    env: { IMAGE_TAG: "t1", ...(opts.env ?? {}) },
    workDir: mkdtempSync(join(root, "build-")),
    hostEnv: { PATH: process.env.PATH!, HOME: root },
    ...opts,
  });
}

const statuses = (r: Awaited<ReturnType<typeof run>>) =>
  r.phases.map((p) => `${p.phaseType}${p.phaseStatus ? ":" + p.phaseStatus : ""}`);
const output = (r: Awaited<ReturnType<typeof run>>) => r.logs.filter((l) => !l.startsWith("[Container]"));

describe("e2e CodeBuild stand-in", () => {
  it("runs all phases in one shell session: cd, variables and functions persist", async () => {
    const r = await run(`
version: 0.2
env:
  shell: bash
  variables:
    FROM_SPEC: spec
    IMAGE_TAG: from-spec-loses
phases:
  install:
    commands:
      - X=1; f() { echo "f says $1"; }
      - mkdir sub && cd sub
  pre_build:
    commands:
      - echo "x=$X pwd=$(basename "$PWD") tag=$IMAGE_TAG spec=$FROM_SPEC"
  build:
    commands:
      - f build
      - cat ../hello.txt
      - |
        echo multi
        echo line
  post_build:
    commands:
      - echo "succeeding=$CODEBUILD_BUILD_SUCCEEDING src=$(basename "$CODEBUILD_SRC_DIR")"
`);
    expect(r.buildStatus).toBe("SUCCEEDED");
    expect(statuses(r)).toEqual([
      "SUBMITTED:SUCCEEDED",
      "QUEUED:SUCCEEDED",
      "PROVISIONING:SUCCEEDED",
      "DOWNLOAD_SOURCE:SUCCEEDED",
      "INSTALL:SUCCEEDED",
      "PRE_BUILD:SUCCEEDED",
      "BUILD:SUCCEEDED",
      "POST_BUILD:SUCCEEDED",
      "UPLOAD_ARTIFACTS:SUCCEEDED",
      "FINALIZING:SUCCEEDED",
      "COMPLETED",
    ]);
    expect(output(r)).toEqual(["x=1 pwd=sub tag=t1 spec=spec", "f says build", "hi", "multi", "line", "succeeding=1 src=src"]);
    expect(r.logs).toContain(r.logs.find((l) => /\[Container\] .* Running command f build$/.test(l)));
  });

  it("a failing build command skips the rest of BUILD, POST_BUILD still runs with SUCCEEDING=0", async () => {
    const r = await run(`
version: 0.2
phases:
  build:
    commands:
      - echo one
      - "false"
      - echo never
    finally:
      - echo cleanup
  post_build:
    commands:
      - echo "succeeding=$CODEBUILD_BUILD_SUCCEEDING"
      - test "$CODEBUILD_BUILD_SUCCEEDING" = "1"
      - echo never2
`);
    expect(r.buildStatus).toBe("FAILED");
    expect(output(r)).toEqual(["one", "cleanup", "succeeding=0"]);
    const build = r.phases.find((p) => p.phaseType === "BUILD")!;
    expect(build.phaseStatus).toBe("FAILED");
    expect(build.contexts?.[0]).toEqual({
      statusCode: "COMMAND_EXECUTION_ERROR",
      message: "Error while executing command: false. Reason: exit status 1",
    });
    expect(r.phases.find((p) => p.phaseType === "POST_BUILD")!.phaseStatus).toBe("FAILED");
    expect(statuses(r).slice(-3)).toEqual(["UPLOAD_ARTIFACTS:SUCCEEDED", "FINALIZING:SUCCEEDED", "COMPLETED"]);
  });

  it("a failing PRE_BUILD ends the build without BUILD or POST_BUILD", async () => {
    const r = await run(`
version: 0.2
phases:
  pre_build:
    commands:
      - exit 3
  build:
    commands:
      - echo never
  post_build:
    commands:
      - echo never
`);
    expect(r.buildStatus).toBe("FAILED");
    expect(statuses(r).slice(4)).toEqual(["INSTALL:SUCCEEDED", "PRE_BUILD:FAILED", "FINALIZING:SUCCEEDED", "COMPLETED"]);
    expect(r.phases[5]!.contexts?.[0]?.message).toBe("Error while executing command: exit 3. Reason: exit status 3");
    expect(output(r)).toEqual([]);
  });

  it("on-failure: CONTINUE goes on to the next phase but the build still fails", async () => {
    const r = await run(`
version: 0.2
phases:
  install:
    on-failure: CONTINUE
    commands:
      - "false"
  build:
    commands:
      - echo "built succeeding=$CODEBUILD_BUILD_SUCCEEDING"
`);
    expect(r.buildStatus).toBe("FAILED");
    expect(output(r)).toEqual(["built succeeding=0"]);
  });

  it("a command reading stdin does not eat the following commands; output order is kept", async () => {
    const r = await run(`
version: 0.2
phases:
  build:
    commands:
      - cat; echo after-cat
      - echo out; echo err >&2; echo out2
      - printf 'no newline'
      - exec >/dev/null; echo hidden
      - echo still running >&3
`);
    expect(r.buildStatus).toBe("SUCCEEDED");
    expect(output(r)).toEqual(["after-cat", "out", "err", "out2", "no newline", "still running"]);
  });

  it("bad buildspecs fail DOWNLOAD_SOURCE with YAML_FILE_ERROR", async () => {
    const r = await run("version: 0.1\nphases: {}\n");
    expect(r.buildStatus).toBe("FAILED");
    const dl = r.phases.find((p) => p.phaseType === "DOWNLOAD_SOURCE")!;
    expect(dl.phaseStatus).toBe("FAILED");
    expect(dl.contexts?.[0]?.statusCode).toBe("YAML_FILE_ERROR");
    expect(() => parseBuildspec("version: 0.2\nenv:\n  secrets-manager:\n    A: b\n")).toThrow(/secrets-manager/);
  });

  it("StopBuild (abort) ends the running phase STOPPED and the build STOPPED", async () => {
    const ac = new AbortController();
    const p = run(
      `
version: 0.2
phases:
  build:
    commands:
      - echo started; sleep 30
  post_build:
    commands:
      - echo never
`,
      { signal: ac.signal },
    );
    setTimeout(() => ac.abort(), 500);
    const r = await p;
    expect(r.buildStatus).toBe("STOPPED");
    expect(r.phases.find((x) => x.phaseType === "BUILD")!.phaseStatus).toBe("STOPPED");
    expect(r.phases.some((x) => x.phaseType === "POST_BUILD")).toBe(false);
    expect(r.endTime.getTime() - r.startTime.getTime()).toBeLessThan(10_000);
  });
});
