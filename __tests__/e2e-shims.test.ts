// The e2e docker/aws shims' command mapping, against a stub buildah (no images are built here).
import { afterAll, describe, expect, it } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createServer } from "node:http";
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

  it("unknown commands and flags exit 125", () => {
    expect(sh("docker frobnicate").code).toBe(125);
    expect(sh("docker buildx build --squash .").code).toBe(125);
  });

  // CodeBuild builds must not need Docker Hub (anonymous pulls from CodeBuild's shared addresses
  // are rate limited, toomanyrequests). A docker-container builder boots from
  // moby/buildkit:buildx-stable-1 and QEMU's installer is tonistiigi/binfmt, both on Docker Hub
  // (buildx driver/bkimage; https://docs.docker.com/build/builders/drivers/docker-container/).
  it("a docker-container builder is created, but booting it (the first build) would pull moby/buildkit from Docker Hub: refused", () => {
    reset();
    expect(sh("docker buildx create --name lambda-images --driver docker-container --use || docker buildx use lambda-images").out).toBe("lambda-images\n");
    const r = sh("docker buildx build --platform linux/arm64 -t 127.0.0.1:5999/app:t --load .");
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/booting builder lambda-images \(driver docker-container\) pulls moby\/buildkit:buildx-stable-1 from docker\.io/);
    expect(calls()).toEqual([]);
    // Back on the default builder (the docker driver), builds run.
    expect(sh("docker buildx use default").code).toBe(0);
    expect(sh("docker buildx build --platform linux/arm64 -t 127.0.0.1:5999/app:t --load .").code).toBe(0);
    expect(sh("docker buildx build --builder lambda-images -t 127.0.0.1:5999/app:t --load .").code).toBe(1);
  });

  it("docker run of a Docker Hub image (the binfmt installer) is refused as a Docker Hub pull; other runs are unsupported", () => {
    const r = sh("docker run --privileged --rm tonistiigi/binfmt --install all");
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/pulls tonistiigi\/binfmt from docker\.io/);
    expect(sh("docker run --rm 127.0.0.1:5999/x:1 true").code).toBe(125);
  });

  // "Cache export: Inline only" for the docker driver (https://docs.docker.com/build/builders/drivers/);
  // buildx rejects any other --cache-to before building (docker/buildx build/opt.go).
  it("the default builder exports the inline cache only, and builds one platform at a time, as the docker driver does", () => {
    reset();
    const registry = sh("docker buildx build -t 127.0.0.1:5999/app:t --cache-to type=registry,ref=127.0.0.1:5999/app:cache,mode=max --load .");
    expect(registry.code).toBe(1);
    expect(registry.err).toMatch(/Cache export is not supported for the docker driver/);
    const multi = sh("docker buildx build --platform linux/arm64,linux/amd64 -t 127.0.0.1:5999/base:b1 --push .");
    expect(multi.code).toBe(1);
    expect(multi.err).toMatch(/Multi-platform build is not supported for the docker driver/);
    expect(calls()).toEqual([]);
  });

  it("buildx build --load maps onto buildah bud; cache and attestation flags are dropped", () => {
    reset();
    const r = sh(
      `REPOSITORY_URI=127.0.0.1:5999/app; IMAGE_TAG=t1; BASE_IMAGE_URI=127.0.0.1:5999/base:b1
       docker buildx build --platform linux/arm64 --provenance=false --sbom=false --build-arg BASE_IMAGE_URI="$BASE_IMAGE_URI" --build-arg X='a b' -f infra/x/Dockerfile.with_base -t "$REPOSITORY_URI:$IMAGE_TAG" --cache-from type=registry,ref="$REPOSITORY_URI:cache" --cache-to type=inline --load .`,
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

  it("E2E_PLATFORM_MAP rewrites platforms, saying so", () => {
    reset();
    const r = sh("E2E_PLATFORM_MAP=linux/arm64=linux/amd64 docker buildx build --platform linux/arm64 -t 127.0.0.1:5999/m:1 --load .");
    expect(r.err).toMatch(/platform linux\/arm64 mapped to linux\/amd64/);
    expect(calls()[0]).toEqual(expect.arrayContaining(["--platform", "linux/amd64"]));
  });

  // "Create a new manifest list based on source manifests ... [which] must already exist in the
  // registry ... If only one source is specified, create performs a carbon copy."
  // (https://docs.docker.com/reference/cli/docker/buildx/imagetools/create/)
  it("imagetools create joins per-platform images already in the registry into a manifest list, and copies one source as it is", async () => {
    const reg = await miniRegistry();
    try {
      const arm = reg.putImage("base", "b1-arm64", { architecture: "arm64", os: "linux", variant: "v8" });
      const amd = reg.putImage("base", "b1-amd64", { architecture: "amd64", os: "linux" });
      const r = await shAsync(`R=${reg.host}/base; docker buildx imagetools create -t "$R:b1" "$R:b1-arm64" "$R:b1-amd64"`);
      expect(r.code, r.err).toBe(0);
      const list = reg.manifests.get("base:b1")!;
      expect(list.type).toBe("application/vnd.docker.distribution.manifest.list.v2+json");
      expect(JSON.parse(list.body).manifests).toEqual([
        { mediaType: "application/vnd.docker.distribution.manifest.v2+json", size: arm.size, digest: arm.digest, platform: { architecture: "arm64", os: "linux", variant: "v8" } },
        { mediaType: "application/vnd.docker.distribution.manifest.v2+json", size: amd.size, digest: amd.digest, platform: { architecture: "amd64", os: "linux" } },
      ]);
      const copy = await shAsync(`R=${reg.host}/base; docker buildx imagetools create -t "$R:cache" "$R:b1"`);
      expect(copy.code, copy.err).toBe(0);
      expect(reg.manifests.get("base:cache")).toEqual(list);
      const missing = await shAsync(`R=${reg.host}/base; docker buildx imagetools create -t "$R:b2" "$R:b2-arm64" "$R:b2-amd64"`);
      expect(missing.code).toBe(1);
      expect(missing.err).toMatch(/b2-arm64: not found/);
      expect(reg.manifests.has("base:b2")).toBe(false);
    } finally {
      await reg.close();
    }
  });
});

/** Runs a shell command without blocking the event loop (the mini registry answers in this process). */
function shAsync(cmd: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn("bash", ["-c", cmd], {
      env: { PATH: `${SHIMS}:${process.env.PATH}`, E2E_BUILDAH: stub, E2E_SHIM_STATE: join(dir, "state"), TMPDIR: dir },
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("exit", (code) => resolve({ code, out, err }));
  });
}

/** The registry API's manifest and blob endpoints (distribution spec), in memory. */
async function miniRegistry() {
  const manifests = new Map<string, { type: string; body: string }>();
  const blobs = new Map<string, string>();
  const digestOf = (s: string) => `sha256:${createHash("sha256").update(s).digest("hex")}`;
  const server = createServer((req, res) => {
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(req.url ?? "");
    if (!m) return void res.writeHead(404).end();
    const [, repo, kind, ref] = m;
    if (kind === "blobs") {
      const b = blobs.get(ref!);
      return void (b ? res.writeHead(200, { "Content-Type": "application/octet-stream" }).end(b) : res.writeHead(404).end());
    }
    if (req.method === "PUT") {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        const entry = { type: String(req.headers["content-type"]), body };
        manifests.set(`${repo}:${ref}`, entry);
        manifests.set(`${repo}:${digestOf(body)}`, entry);
        res.writeHead(201, { "Docker-Content-Digest": digestOf(body) }).end();
      });
      return;
    }
    const found = manifests.get(`${repo}:${ref}`);
    if (!found) return void res.writeHead(404).end();
    res.writeHead(200, { "Content-Type": found.type, "Docker-Content-Digest": digestOf(found.body) }).end(req.method === "HEAD" ? undefined : found.body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const host = `127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    host,
    manifests,
    putImage(repo: string, tag: string, platform: Record<string, string>) {
      const config = JSON.stringify({ ...platform, config: {}, rootfs: { type: "layers", diff_ids: [] } });
      blobs.set(digestOf(config), config);
      const body = JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.docker.distribution.manifest.v2+json",
        config: { mediaType: "application/vnd.docker.container.image.v1+json", size: config.length, digest: digestOf(config) },
        layers: [],
      });
      manifests.set(`${repo}:${tag}`, { type: "application/vnd.docker.distribution.manifest.v2+json", body });
      return { digest: digestOf(body), size: Buffer.byteLength(body) };
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
