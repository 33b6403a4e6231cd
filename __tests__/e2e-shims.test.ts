// The e2e docker/aws shims' command mapping, against a stub buildah (no images are built here).
import { afterAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const SHIMS = resolve(import.meta.dirname, "..", "e2e", "shims", "bin");
const dir = mkdtempSync(join(tmpdir(), "e2e-shims-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Records its argv (one line per call, arguments separated by \x1f) and fakes the files buildah writes.
const stub = join(dir, "buildah");
writeFileSync(
  stub,
  `#!/usr/bin/env bash
(IFS=$'\\x1f'; printf '%s\\n' "$*") >> "${join(dir, "calls.txt")}"
prev=""
for a in "$@"; do
  case "$prev" in
    --digestfile) printf 'sha256:%064d' 7 > "$a" ;;
    --iidfile) printf 'sha256:%064d' 3 > "$a" ;;
  esac
  prev="$a"
done
if [ "$1" = inspect ]; then echo '{"FromImageID":"${"3".padStart(64, "0")}","OCIv1":{"architecture":"arm64","os":"linux","config":{}}}'; fi
`,
);
chmodSync(stub, 0o755);

function sh(cmd: string, input = "") {
  const r = spawnSync("bash", ["-c", cmd], {
    input,
    timeout: 20_000,
    encoding: "utf8",
    env: {
      PATH: `${SHIMS}:${process.env.PATH}`,
      E2E_BUILDAH: stub,
      E2E_SHIM_STATE: join(dir, "state"),
      E2E_INSECURE_REGISTRIES: "127.0.0.1:5999",
      TMPDIR: dir,
    },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
const calls = (): string[][] => {
  try {
    return readFileSync(join(dir, "calls.txt"), "utf8").trim().split("\n").filter(Boolean).map((l) => l.split("\x1f"));
  } catch {
    return [];
  }
};
const reset = () => rmSync(join(dir, "calls.txt"), { force: true });

describe("e2e aws shim", () => {
  it("answers get-login-password and refuses anything else", () => {
    expect(sh('aws ecr get-login-password --region "us-east-1"').out.trim()).toBe("e2e-dummy-registry-password");
    expect(sh("aws ecr-public get-login-password --region us-east-1").code).toBe(0);
    const r = sh("aws s3 ls");
    expect(r.code).toBe(252);
    expect(r.err).toMatch(/unsupported command: aws s3 ls/);
  });
});

describe("e2e docker shim", () => {
  it("login accepts a piped password and fails like docker on an empty one", () => {
    expect(sh("aws ecr get-login-password --region r | docker login --username AWS --password-stdin 127.0.0.1:5999").out).toBe("Login Succeeded\n");
    const r = sh("true | docker login --username AWS --password-stdin 127.0.0.1:5999");
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/Cannot perform an interactive login from a non TTY device/);
  });

  it("buildx create/use are no-ops; unknown commands exit 125", () => {
    expect(sh("docker buildx create --name lambda-images --driver docker-container --use || docker buildx use lambda-images").out).toBe("lambda-images\n");
    expect(sh("docker frobnicate").code).toBe(125);
    expect(sh("docker buildx build --squash .").code).toBe(125);
    expect(sh("docker run --rm alpine true").code).toBe(125);
  });

  it("the binfmt installer run is answered from binfmt_misc", () => {
    const r = sh("docker run --privileged --rm tonistiigi/binfmt --install all");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).supported).toContain(`linux/${process.arch === "x64" ? "amd64" : process.arch}`);
  });

  it("buildx build --load maps onto buildah bud; cache and attestation flags are dropped", () => {
    reset();
    const r = sh(
      `REPOSITORY_URI=127.0.0.1:5999/app; IMAGE_TAG=t1; BASE_IMAGE_URI=127.0.0.1:5999/base:b1
       docker buildx build --platform linux/arm64 --provenance=false --sbom=false --build-arg BASE_IMAGE_URI="$BASE_IMAGE_URI" --build-arg X='a b' -f infra/x/Dockerfile.with_base -t "$REPOSITORY_URI:$IMAGE_TAG" --cache-from type=registry,ref="$REPOSITORY_URI:cache" --cache-to type=registry,ref="$REPOSITORY_URI:cache",mode=max,image-manifest=true,oci-mediatypes=true --load .`,
    );
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/ignoring --provenance --sbom --cache-from --cache-to/);
    const [bud] = calls();
    expect(bud!.slice(0, 1)).toEqual(["bud"]);
    expect(bud).toEqual(expect.arrayContaining(["--layers", "--format", "docker", "--tls-verify=false", "--platform", "linux/arm64", "-t", "127.0.0.1:5999/app:t1"]));
    expect(bud!.join(" ")).toContain("--build-arg BASE_IMAGE_URI=127.0.0.1:5999/base:b1 --build-arg X=a b");
    expect(bud!.join(" ")).toContain("-f infra/x/Dockerfile.with_base");
    expect(bud!.at(-1)).toBe(".");
    expect(bud!.join(" ")).not.toMatch(/cache|provenance|sbom/);
    expect(calls()).toHaveLength(1); // --load: no push
  });

  it("RepoDigests are empty until a push, then REPO@digest", () => {
    reset();
    const inspect = `docker inspect --format '{{index .RepoDigests 0}}' 127.0.0.1:5999/app2:t1`;
    const before = sh(inspect);
    expect(before.code).toBe(1);
    expect(before.err).toMatch(/index out of range: 0/);
    expect(sh("docker buildx build --platform linux/amd64 -t 127.0.0.1:5999/app2:t1 --push .").code).toBe(0);
    const push = calls().find((c) => c[0] === "push")!;
    expect(push).toEqual(expect.arrayContaining(["--tls-verify=false", "127.0.0.1:5999/app2:t1", "docker://127.0.0.1:5999/app2:t1"]));
    expect(sh(inspect).out).toBe(`127.0.0.1:5999/app2@sha256:${"7".padStart(64, "0")}\n`);
  });

  it("several platforms: a manifest list, pushed with --all; --load is refused like buildx", () => {
    reset();
    const r = sh("docker buildx build --platform linux/arm64,linux/amd64 -f D -t 127.0.0.1:5999/base:b1 --push .");
    expect(r.code).toBe(0);
    const c = calls();
    expect(c.find((x) => x[0] === "bud")).toEqual(expect.arrayContaining(["--platform", "linux/arm64,linux/amd64", "--manifest", "127.0.0.1:5999/base:b1"]));
    expect(c.find((x) => x[0] === "manifest" && x[1] === "push")).toEqual(expect.arrayContaining(["--all", "--format", "v2s2"]));
    const load = sh("docker buildx build --platform linux/arm64,linux/amd64 -t x:1 --load .");
    expect(load.code).toBe(1);
    expect(load.err).toMatch(/docker exporter does not currently support exporting manifest lists/);
  });

  it("E2E_PLATFORM_MAP rewrites platforms, saying so", () => {
    reset();
    const r = sh("E2E_PLATFORM_MAP=linux/arm64=linux/amd64 docker buildx build --platform linux/arm64 -t 127.0.0.1:5999/m:1 --load .");
    expect(r.err).toMatch(/platform linux\/arm64 mapped to linux\/amd64/);
    expect(calls()[0]).toEqual(expect.arrayContaining(["--platform", "linux/amd64"]));
  });
});
