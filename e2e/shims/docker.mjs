// E2E-ONLY `docker` stand-in: maps the docker commands our generated buildspecs use onto buildah
// (vfs storage, chroot isolation, no daemon). It is NOT docker; anything it does not know fails
// loudly ("docker shim: unsupported ...", exit 125) rather than pretending.
//
// Plain .mjs (not .ts) so each call starts in ~50 ms with bare node; invoked by e2e/shims/bin/docker.
//
// Docker Hub is out of reach, as it is for a CodeBuild build whose anonymous pulls are rate
// limited (toomanyrequests): anything that would pull from docker.io fails, saying what it would
// have pulled. That is booting a docker-container builder (moby/buildkit:buildx-stable-1, buildx's
// driver/bkimage DefaultImage) and `docker run` of a Docker Hub image such as tonistiigi/binfmt.
// The default builder is the daemon's own BuildKit (the `docker` driver) with the classic image
// store, as in CodeBuild's images: it exports only the inline cache and builds one platform at a
// time (https://docs.docker.com/build/builders/drivers/, https://docs.docker.com/build/cache/backends/).
//
// Environment (set by the CodeBuild stand-in, e2e/lib/codebuild.ts):
//   CONTAINERS_STORAGE_CONF, CONTAINERS_REGISTRIES_CONF, BUILDAH_ISOLATION, STORAGE_DRIVER  buildah's own
//   E2E_SHIM_STATE          directory for what docker would remember (RepoDigests after a push)
//   E2E_INSECURE_REGISTRIES comma-separated host:port spoken to over plain http (tls-verify=false)
//   E2E_PLATFORM_MAP        optional "linux/arm64=linux/amd64,..." rewrite of requested platforms
//   E2E_BUILDAH             buildah binary (default "buildah")
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync, existsSync, mkdtempSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";

const BUILDAH = process.env.E2E_BUILDAH || "buildah";
const STATE = process.env.E2E_SHIM_STATE || join(tmpdir(), "e2e-docker-shim-state");
const INSECURE = (process.env.E2E_INSECURE_REGISTRIES || "")
  .split(",")
  .map((s) => s.trim())
  .filter(Boolean);

const MANIFEST_ACCEPT = [
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.oci.image.manifest.v1+json",
].join(", ");

class ShimError extends Error {
  constructor(message, code = 1) {
    super(message);
    this.code = code;
  }
}
const unsupported = (what) => new ShimError(`docker shim: unsupported ${what}`, 125);

function note(msg) {
  process.stderr.write(`docker shim: ${msg}\n`);
}

/** Runs buildah with inherited stdio; throws on failure. */
function buildah(args, { input } = {}) {
  process.stderr.write(`+ ${BUILDAH} ${args.map(shq).join(" ")}\n`);
  const r = spawnSync(BUILDAH, args, {
    stdio: [input === undefined ? "inherit" : "pipe", "inherit", "inherit"],
    input,
  });
  if (r.error) throw new ShimError(`docker shim: cannot run ${BUILDAH}: ${r.error.message}`, 127);
  if (r.status !== 0) throw new ShimError(`docker shim: buildah ${args[0]} failed (exit ${r.status})`, r.status ?? 1);
}

function buildahOut(args) {
  const r = spawnSync(BUILDAH, args, { encoding: "utf8" });
  if (r.status !== 0) throw new ShimError(`docker shim: buildah ${args[0]} failed: ${(r.stderr || "").trim()}`, r.status ?? 1);
  return r.stdout;
}

function shq(s) {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** "host:port/a/b:tag" -> { host, repo, tag }; digests ("@sha256:...") kept in `digest`. */
function parseRef(ref) {
  let rest = ref;
  let digest;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  const slash = rest.indexOf("/");
  let host = "docker.io";
  if (slash > 0 && /[.:]|^localhost$/.test(rest.slice(0, slash))) {
    host = rest.slice(0, slash);
    rest = rest.slice(slash + 1);
  }
  let tag;
  const colon = rest.lastIndexOf(":");
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  if (!digest && !tag) tag = "latest";
  return { host, repo: rest, tag, digest };
}

function isInsecure(host) {
  return INSECURE.includes(host) || /^(127\.\d+\.\d+\.\d+|localhost)(:\d+)?$/.test(host);
}

function tlsArgs(ref) {
  return isInsecure(parseRef(ref).host) ? ["--tls-verify=false"] : [];
}

function stateFile(kind, ref) {
  const dir = join(STATE, kind);
  mkdirSync(dir, { recursive: true });
  return join(dir, createHash("sha256").update(ref).digest("hex").slice(0, 32) + ".json");
}

function rememberRepoDigest(ref, digest, extra = {}) {
  const { host, repo } = parseRef(ref);
  writeFileSync(stateFile("images", ref), JSON.stringify({ ref, repoDigest: `${host}/${repo}@${digest}`, ...extra }));
}

function recalled(ref) {
  const f = stateFile("images", ref);
  return existsSync(f) ? JSON.parse(readFileSync(f, "utf8")) : undefined;
}

async function registryGet(ref, method = "GET") {
  const { host, repo, tag, digest } = parseRef(ref);
  const scheme = isInsecure(host) ? "http" : "https";
  const url = `${scheme}://${host}/v2/${repo}/manifests/${digest || tag}`;
  const res = await fetch(url, { method, headers: { Accept: MANIFEST_ACCEPT } });
  if (res.status === 404) throw new ShimError(`ERROR: ${ref}: not found`);
  if (!res.ok) throw new ShimError(`ERROR: ${ref}: registry answered ${res.status}`);
  const body = method === "GET" ? Buffer.from(await res.arrayBuffer()) : Buffer.alloc(0);
  const dcd = res.headers.get("docker-content-digest");
  return {
    mediaType: (res.headers.get("content-type") || "").split(";")[0],
    digest: dcd || `sha256:${createHash("sha256").update(body).digest("hex")}`,
    size: method === "GET" ? body.length : Number(res.headers.get("content-length") || 0),
    body,
  };
}

function mapPlatforms(spec) {
  const map = new Map(
    (process.env.E2E_PLATFORM_MAP || "")
      .split(",")
      .filter((s) => s.includes("="))
      .map((s) => s.split("=").map((x) => x.trim())),
  );
  const out = [];
  for (const p of spec.split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = map.get(p) ?? p;
    if (m !== p) note(`platform ${p} mapped to ${m} (E2E_PLATFORM_MAP)`);
    if (!out.includes(m)) out.push(m);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// docker login [-u U | --username U] [-p P | --password P | --password-stdin] [SERVER]

function login(args) {
  let user;
  let stdin = false;
  let password;
  const pos = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "-u" || a === "--username") user = args[++i];
    else if (a.startsWith("--username=")) user = a.slice(11);
    else if (a === "--password-stdin") stdin = true;
    else if (a === "-p" || a === "--password") password = args[++i];
    else if (a.startsWith("--password=")) password = a.slice(11);
    else if (a.startsWith("-")) throw unsupported(`docker login flag ${a}`);
    else pos.push(a);
  }
  if (stdin) password = readFileSync(0, "utf8").replace(/\r?\n$/, "");
  if (!password) {
    // What docker says when the piped password is empty (e.g. the `aws ... |` half failed).
    throw new ShimError("Error: Cannot perform an interactive login from a non TTY device");
  }
  // Local registries have no auth; the login is a recorded no-op (buildah has nothing to store).
  note(`login ${user ?? "(no user)"} @ ${pos[0] ?? "docker.io"} accepted without contacting the registry`);
  process.stdout.write("Login Succeeded\n");
}

// ---------------------------------------------------------------------------------------------
// docker buildx ...

function parseBuildx(args) {
  const o = {
    platforms: [],
    buildArgs: [],
    tags: [],
    file: undefined,
    load: false,
    push: false,
    target: undefined,
    labels: [],
    noCache: false,
    metadataFile: undefined,
    ignored: [],
    context: undefined,
    builder: undefined,
    cacheTo: [],
    cacheFrom: [],
  };
  const takes = (a, i) => {
    const eq = a.indexOf("=");
    if (a.startsWith("--") && eq > 0) return [a.slice(eq + 1), i];
    if (args[i + 1] === undefined) throw new ShimError(`docker shim: ${a} needs a value`, 125);
    return [args[i + 1], i + 1];
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const name = a.startsWith("--") && a.includes("=") ? a.slice(0, a.indexOf("=")) : a;
    let v;
    switch (name) {
      case "--platform":
        [v, i] = takes(a, i);
        o.platforms.push(...v.split(","));
        break;
      case "--build-arg": {
        [v, i] = takes(a, i);
        // `--build-arg K` takes K from the environment, as docker does.
        if (!v.includes("=")) {
          if (process.env[v] === undefined) break;
          v = `${v}=${process.env[v]}`;
        }
        o.buildArgs.push(v);
        break;
      }
      case "-f":
      case "--file":
        [v, i] = takes(a, i);
        o.file = v;
        break;
      case "-t":
      case "--tag":
        [v, i] = takes(a, i);
        o.tags.push(v);
        break;
      case "--target":
        [v, i] = takes(a, i);
        o.target = v;
        break;
      case "--label":
        [v, i] = takes(a, i);
        o.labels.push(v);
        break;
      case "--metadata-file":
        [v, i] = takes(a, i);
        o.metadataFile = v;
        break;
      case "--load":
        o.load = true;
        break;
      case "--push":
        o.push = true;
        break;
      case "--no-cache":
        o.noCache = true;
        break;
      case "-o":
      case "--output": {
        [v, i] = takes(a, i);
        const kv = Object.fromEntries(v.split(",").map((p) => (p.includes("=") ? p.split(/=(.*)/s).slice(0, 2) : ["type", p])));
        if (kv.type === "registry" || (kv.type === "image" && kv.push === "true")) o.push = true;
        else if (kv.type === "docker") o.load = true;
        else throw unsupported(`--output ${v}`);
        break;
      }
      // BuildKit-only knobs with no buildah equivalent. Attestations: buildah never makes any,
      // which is what --provenance=false/--sbom=false ask for. Cache export/import: ignored, so
      // every e2e build is a cold build (the registry cache refs are never written or read).
      case "--provenance":
      case "--sbom":
        // bare form is a boolean; "--provenance=false" carries its value inline
        o.ignored.push(name);
        break;
      case "--cache-from":
        [v, i] = takes(a, i);
        o.cacheFrom.push(v);
        o.ignored.push(name);
        break;
      case "--cache-to":
        [v, i] = takes(a, i);
        o.cacheTo.push(v);
        o.ignored.push(name);
        break;
      case "--builder":
        [v, i] = takes(a, i);
        o.builder = v;
        break;
      case "--progress":
        [v, i] = takes(a, i);
        o.ignored.push(name);
        break;
      case "--pull":
        o.ignored.push(name); // the shim always resolves FROM through the registry (see below)
        break;
      default:
        if (a.startsWith("-")) throw unsupported(`docker buildx build flag ${a}`);
        if (o.context !== undefined) throw new ShimError(`docker shim: two build contexts (${o.context}, ${a})`, 125);
        o.context = a;
    }
  }
  if (o.context === undefined) throw new ShimError('ERROR: "docker buildx build" requires exactly 1 argument.', 1);
  return o;
}

async function buildxBuild(args) {
  const o = parseBuildx(args);
  const builder = o.builder ?? currentBuilder();
  if (builder !== "default") bootBuilder(builder);
  // With the docker driver, buildx lets only the inline cache through (docker/buildx build/opt.go).
  for (const c of o.cacheTo) {
    const type = /(?:^|,)type=([^,]+)/.exec(c)?.[1] ?? "registry";
    if (type !== "inline") {
      throw new ShimError(
        "ERROR: Cache export is not supported for the docker driver.\nSwitch to a different driver, or turn on the containerd image store, and try again.\nLearn more at https://docs.docker.com/go/build-cache-backends/",
      );
    }
  }
  const ignored = [...new Set(o.ignored)];
  if (ignored.length) note(`ignoring ${ignored.join(" ")} (BuildKit-only; no cache import/export, no attestations)`);
  const platforms = o.platforms.length ? mapPlatforms(o.platforms.join(",")) : [];
  if (platforms.length > 1) {
    throw new ShimError(
      "ERROR: Multi-platform build is not supported for the docker driver.\nSwitch to a different driver, or turn on the containerd image store, and try again.\nLearn more at https://docs.docker.com/go/build-multi-platform/",
    );
  }
  if (o.push && !o.load) note("--push: built, then pushed tag by tag");
  if (!o.load && !o.push) note("the docker driver loads the result into the image store (--load is implied)");
  const common = ["--layers", "--format", "docker", "--pull=true"];
  if (o.file) common.push("-f", o.file);
  if (o.target) common.push("--target", o.target);
  if (o.noCache) common.push("--no-cache");
  for (const b of o.buildArgs) common.push("--build-arg", b);
  for (const l of o.labels) common.push("--label", l);
  const registries = new Set();
  for (const t of o.tags) if (isInsecure(parseRef(t).host)) registries.add(parseRef(t).host);
  if (registries.size) common.push("--tls-verify=false");

  const metadata = {};
  const plat = platforms.length ? ["--platform", platforms[0]] : [];
  const tags = o.tags.flatMap((t) => ["-t", t]);
  const iid = join(mkdtempSync(join(tmpdir(), "shim-")), "iid");
  buildah(["bud", ...common, ...plat, ...tags, "--iidfile", iid, o.context]);
  metadata["containerimage.config.digest"] = readFileSync(iid, "utf8").trim();
  if (o.push) for (const t of o.tags) metadata["containerimage.digest"] = pushOne(t, { quiet: true });
  for (const t of o.tags) process.stdout.write(`naming to ${t} done\n`);
  if (o.metadataFile) {
    if (o.tags[0]) metadata["image.name"] = o.tags.join(",");
    writeFileSync(o.metadataFile, JSON.stringify(metadata, null, 2));
  }
}

// ---------------------------------------------------------------------------------------------
// Builders: `default` (the docker driver, nothing to boot) and those `buildx create` made.

const DOCKER_HUB = "docker.io, which this build cannot reach (CodeBuild's anonymous Docker Hub pulls are rate limited: toomanyrequests)";

function buildersFile() {
  mkdirSync(STATE, { recursive: true });
  return join(STATE, "builders.json");
}
function builders() {
  const f = buildersFile();
  return existsSync(f) ? JSON.parse(readFileSync(f, "utf8")) : { current: "default", list: {} };
}
function saveBuilders(b) {
  writeFileSync(buildersFile(), JSON.stringify(b));
}
function currentBuilder() {
  return builders().current;
}

/** A docker-container builder's first use boots BuildKit in a container: its image comes from Docker Hub. */
function bootBuilder(name) {
  const b = builders().list[name];
  if (!b) throw new ShimError(`ERROR: no builder "${name}" found`);
  if (parseRef(b.image).host === "docker.io") {
    throw new ShimError(
      `docker shim: booting builder ${name} (driver ${b.driver}) pulls ${b.image} from ${DOCKER_HUB}. Build with the default (docker driver) builder.`,
    );
  }
  throw unsupported(`builder ${name}: a ${b.driver} builder (${b.image}) needs a BuildKit container, which the e2e does not run`);
}

function buildxCreate(args) {
  let name;
  let driver = "docker-container"; // buildx create's default driver
  let use = false;
  let image = "moby/buildkit:buildx-stable-1";
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--name") name = args[++i];
    else if (a.startsWith("--name=")) name = a.slice(7);
    else if (a === "--driver") driver = args[++i];
    else if (a.startsWith("--driver=")) driver = a.slice(9);
    else if (a === "--use") use = true;
    else if (a === "--driver-opt" || a.startsWith("--driver-opt=")) {
      const v = a.includes("=") && a.startsWith("--driver-opt=") ? a.slice(13) : args[++i];
      const m = /(?:^|,)image=([^,]+)/.exec(v);
      if (m) image = m[1];
    } else throw unsupported(`docker buildx create flag ${a}`);
  }
  if (driver === "docker") throw new ShimError('ERROR: additional instances of driver "docker" cannot be created');
  if (driver !== "docker-container") throw unsupported(`docker buildx create --driver ${driver}`);
  const b = builders();
  name ??= `builder-${Object.keys(b.list).length}`;
  if (b.list[name]) throw new ShimError(`ERROR: existing instance for "${name}" but no append mode, specify the node name to make changes for existing instances`);
  b.list[name] = { driver, image };
  if (use) b.current = name;
  saveBuilders(b);
  if (parseRef(image).host === "docker.io") note(`builder ${name} will pull ${image} from Docker Hub when it boots`);
  process.stdout.write(`${name}\n`);
}

function buildxUse(args) {
  const name = args.find((a) => !a.startsWith("-"));
  const b = builders();
  if (name !== "default" && !b.list[name]) throw new ShimError(`ERROR: run \`docker buildx create --name ${name}\` first`);
  b.current = name;
  saveBuilders(b);
}

/** buildah push with --digestfile; remembers the digest as docker remembers RepoDigests. */
function pushOne(ref, { quiet } = {}) {
  const dg = join(mkdtempSync(join(tmpdir(), "shim-")), "digest");
  buildah(["push", ...tlsArgs(ref), "--digestfile", dg, ...(quiet ? ["--quiet"] : []), ref, `docker://${ref}`]);
  const digest = readFileSync(dg, "utf8").trim();
  rememberRepoDigest(ref, digest);
  return digest;
}

async function push(args) {
  const pos = args.filter((a) => !a.startsWith("-"));
  for (const a of args) if (a.startsWith("-") && a !== "-q" && a !== "--quiet") throw unsupported(`docker push flag ${a}`);
  if (pos.length !== 1) throw new ShimError('"docker push" requires exactly 1 argument.', 1);
  const ref = pos[0];
  const { host, repo, tag } = parseRef(ref);
  process.stdout.write(`The push refers to repository [${host}/${repo}]\n`);
  const digest = pushOne(ref, { quiet: true });
  const m = await registryGet(`${host}/${repo}@${digest}`);
  // docker's closing line, which scripts grep for.
  process.stdout.write(`${tag}: digest: ${digest} size: ${m.size}\n`);
}

// ---------------------------------------------------------------------------------------------
// docker inspect / docker image inspect

function imageJson(ref) {
  const out = buildahOut(["inspect", "--type", "image", ref]);
  const b = JSON.parse(out);
  const mem = recalled(ref);
  const id = `sha256:${b.FromImageID}`;
  const oci = b.OCIv1 || {};
  return {
    Id: id,
    RepoTags: [ref],
    RepoDigests: mem ? [mem.repoDigest] : [],
    Architecture: oci.architecture,
    Os: oci.os,
    Config: { Env: oci.config?.Env, Cmd: oci.config?.Cmd, Entrypoint: oci.config?.Entrypoint, WorkingDir: oci.config?.WorkingDir },
    RootFS: { Type: "layers", Layers: oci.rootfs?.diff_ids ?? [] },
  };
}

function renderTemplate(format, obj) {
  const f = format.trim();
  let m;
  if ((m = /^\{\{\s*index\s+\.(\w+)\s+(\d+)\s*\}\}$/.exec(f))) {
    const arr = obj[m[1]];
    const i = Number(m[2]);
    if (!Array.isArray(arr) || i >= arr.length) {
      throw new ShimError(
        `template parsing error: template: :1:2: executing "" at <index .${m[1]} ${i}>: error calling index: index out of range: ${i}`,
      );
    }
    return String(arr[i]);
  }
  if ((m = /^\{\{\s*json\s+\.([\w.]+)\s*\}\}$/.exec(f))) return JSON.stringify(get(obj, m[1]));
  if ((m = /^\{\{\s*\.([\w.]+)\s*\}\}$/.exec(f))) {
    const v = get(obj, m[1]);
    return Array.isArray(v) ? `[${v.join(" ")}]` : String(v ?? "<no value>");
  }
  throw unsupported(`--format template ${format}`);
}

function get(obj, path) {
  return path.split(".").reduce((o, k) => (o == null ? undefined : o[k === "ID" ? "Id" : k]), obj);
}

function inspect(args) {
  let format;
  const refs = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "-f" || a === "--format") format = args[++i];
    else if (a.startsWith("--format=")) format = a.slice(9);
    else if (a === "--type") {
      if (args[++i] !== "image") throw unsupported(`docker inspect --type ${args[i]}`);
    } else if (a.startsWith("-")) throw unsupported(`docker inspect flag ${a}`);
    else refs.push(a);
  }
  if (!refs.length) throw new ShimError('"docker inspect" requires at least 1 argument.', 1);
  const objs = refs.map((r) => {
    try {
      return imageJson(r);
    } catch {
      throw new ShimError(`Error: No such object: ${r}`);
    }
  });
  if (format) for (const o of objs) process.stdout.write(renderTemplate(format, o) + "\n");
  else process.stdout.write(JSON.stringify(objs, null, 4) + "\n");
}

// ---------------------------------------------------------------------------------------------
// docker buildx imagetools inspect REF [--raw] [--format T]

async function imagetoolsInspect(args) {
  let raw = false;
  let format;
  const refs = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--raw") raw = true;
    else if (a === "--format") format = args[++i];
    else if (a.startsWith("--format=")) format = a.slice(9);
    else if (a.startsWith("-")) throw unsupported(`imagetools inspect flag ${a}`);
    else refs.push(a);
  }
  if (refs.length !== 1) throw new ShimError("ERROR: imagetools inspect requires exactly 1 argument", 1);
  const ref = refs[0];
  const m = await registryGet(ref);
  if (raw) {
    process.stdout.write(m.body.toString("utf8") + "\n");
    return;
  }
  const manifest = { mediaType: m.mediaType, digest: m.digest, size: m.size };
  if (format) {
    process.stdout.write(renderTemplate(format, { Name: ref, Manifest: manifest, Digest: m.digest }) + "\n");
    return;
  }
  const lines = [`Name:      ${ref}`, `MediaType: ${m.mediaType}`, `Digest:    ${m.digest}`];
  const doc = JSON.parse(m.body.toString("utf8"));
  if (Array.isArray(doc.manifests)) {
    const { host, repo } = parseRef(ref);
    lines.push("", "Manifests:");
    for (const d of doc.manifests) {
      const p = d.platform ? [d.platform.os, d.platform.architecture, d.platform.variant].filter(Boolean).join("/") : "unknown";
      lines.push(`  Name:      ${host}/${repo}@${d.digest}`, `  MediaType: ${d.mediaType}`, `  Platform:  ${p}`, "");
    }
  }
  process.stdout.write(lines.join("\n") + "\n");
}

// ---------------------------------------------------------------------------------------------
// docker buildx imagetools create [-t REF]... SOURCE...
// "Create a new manifest list based on source manifests. The source manifests can be manifest
// lists or single platform distribution manifests and must already exist in the registry where
// the new manifest is created. If only one source is specified, create performs a carbon copy."
// (https://docs.docker.com/reference/cli/docker/buildx/imagetools/create/). Done as buildx does
// it, on the registry alone: read the sources (and each image's config for its platform), PUT the
// list under every tag. Docker-format sources give a docker manifest list.

const LIST_TYPES = new Set(["application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.oci.image.index.v1+json"]);

async function imagetoolsCreate(args) {
  const tags = [];
  const sources = [];
  let dryRun = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "-t" || a === "--tag") tags.push(args[++i]);
    else if (a.startsWith("--tag=")) tags.push(a.slice(6));
    else if (a === "--dry-run") dryRun = true;
    else if (a.startsWith("-")) throw unsupported(`imagetools create flag ${a}`);
    else sources.push(a);
  }
  if (!sources.length) throw new ShimError("ERROR: no sources specified", 1);
  if (!tags.length && !dryRun) throw new ShimError("ERROR: can't push with no tags specified, please set --tag or --dry-run", 1);
  for (const t of tags) {
    for (const src of sources) {
      const a = parseRef(src);
      const b = parseRef(t);
      // Blobs would have to be copied across repositories; our joins never need it.
      if (a.host !== b.host || a.repo !== b.repo) throw unsupported(`imagetools create across repositories (${src} -> ${t})`);
    }
  }
  let body;
  let mediaType;
  const fetched = await Promise.all(sources.map((s) => registryGet(s)));
  if (sources.length === 1) {
    ({ body, mediaType } = fetched[0]);
  } else {
    const entries = [];
    let oci = false;
    for (const [i, m] of fetched.entries()) {
      const doc = JSON.parse(m.body.toString("utf8"));
      if (LIST_TYPES.has(m.mediaType)) {
        for (const d of doc.manifests) entries.push(d);
        oci ||= m.mediaType.includes("oci");
        continue;
      }
      const { host, repo } = parseRef(sources[i]);
      const cfg = await blobGet(`${host}/${repo}`, doc.config.digest);
      const platform = { architecture: cfg.architecture, os: cfg.os, ...(cfg.variant ? { variant: cfg.variant } : {}) };
      entries.push({ mediaType: m.mediaType, size: m.size, digest: m.digest, platform });
      oci ||= m.mediaType.includes("oci");
    }
    mediaType = oci ? "application/vnd.oci.image.index.v1+json" : "application/vnd.docker.distribution.manifest.list.v2+json";
    body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, manifests: entries }, null, 2));
  }
  if (dryRun) return void process.stdout.write(body.toString("utf8") + "\n");
  const digest = `sha256:${createHash("sha256").update(body).digest("hex")}`;
  for (const t of tags) {
    await registryPut(t, body, mediaType);
    process.stderr.write(`#1 pushing ${digest} to ${t}\n`);
  }
}

async function blobGet(repoRef, digest) {
  const { host, repo } = parseRef(`${repoRef}:x`);
  const res = await fetch(`${isInsecure(host) ? "http" : "https"}://${host}/v2/${repo}/blobs/${digest}`);
  if (!res.ok) throw new ShimError(`ERROR: ${repoRef}@${digest}: registry answered ${res.status}`);
  return JSON.parse(await res.text());
}

async function registryPut(ref, body, mediaType) {
  const { host, repo, tag } = parseRef(ref);
  const res = await fetch(`${isInsecure(host) ? "http" : "https"}://${host}/v2/${repo}/manifests/${tag}`, {
    method: "PUT",
    headers: { "Content-Type": mediaType },
    body,
  });
  if (!res.ok) throw new ShimError(`ERROR: pushing ${ref}: registry answered ${res.status}: ${(await res.text()).trim()}`);
}

// ---------------------------------------------------------------------------------------------
// docker run: no buildspec of ours runs a container. The one we used to (tonistiigi/binfmt, to
// install QEMU for multi-platform builds) comes from Docker Hub.

function run(args) {
  const image = args.find((a) => !a.startsWith("-"));
  if (image && parseRef(image).host === "docker.io") {
    throw new ShimError(`docker shim: docker run ${image} pulls ${image} from ${DOCKER_HUB}`);
  }
  throw unsupported(`docker run ${args.join(" ")}`);
}

// ---------------------------------------------------------------------------------------------

async function main(argv) {
  // Global flags docker accepts before the command; none are meaningful here.
  while (argv[0] && argv[0].startsWith("-")) {
    if (argv[0] === "--version" || argv[0] === "-v") return void process.stdout.write("Docker version 0.0.0-e2e-shim (buildah)\n");
    throw unsupported(`global flag ${argv[0]}`);
  }
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case "login":
      return login(rest);
    case "logout":
      return;
    case "version":
      return void process.stdout.write("Docker version 0.0.0-e2e-shim (buildah)\n");
    case "push":
      return push(rest);
    case "inspect":
      return inspect(rest);
    case "image":
      if (rest[0] === "inspect") return inspect(rest.slice(1));
      if (rest[0] === "push") return push(rest.slice(1));
      throw unsupported(`docker image ${rest[0]}`);
    case "tag":
      if (rest.length !== 2) throw new ShimError('"docker tag" requires exactly 2 arguments.', 1);
      return buildah(["tag", rest[0], rest[1]]);
    case "pull":
      if (rest.length !== 1) throw unsupported(`docker pull ${rest.join(" ")}`);
      return buildah(["pull", ...tlsArgs(rest[0]), rest[0]]);
    case "buildx": {
      const [sub, ...r] = rest;
      switch (sub) {
        case "create":
          return buildxCreate(r);
        case "use":
          return buildxUse(r);
        case "rm":
        case "stop":
          return;
        case "inspect":
          return void process.stdout.write("Name: e2e-shim\nDriver: buildah\n");
        case "version":
          return void process.stdout.write("github.com/docker/buildx v0.0.0-e2e-shim (buildah)\n");
        case "build":
          return buildxBuild(r);
        case "imagetools":
          if (r[0] === "inspect") return imagetoolsInspect(r.slice(1));
          if (r[0] === "create") return imagetoolsCreate(r.slice(1));
          throw unsupported(`docker buildx imagetools ${r[0]}`);
        default:
          throw unsupported(`docker buildx ${sub}`);
      }
    }
    case "run":
      return run(rest);
    case "build":
      // Classic `docker build` has no --platform lists or --push; route the common subset.
      return buildxBuild(["--load", ...rest]);
    default:
      throw unsupported(`command ${cmd ?? "(none)"}`);
  }
}

main(process.argv.slice(2)).catch((err) => {
  if (err instanceof ShimError) {
    process.stderr.write(err.message + "\n");
    process.exit(err.code);
  }
  process.stderr.write(`docker shim crashed: ${err?.stack ?? err}\n`);
  process.exit(125);
});
