// E2E-ONLY `docker` stand-in: maps the docker commands our generated buildspecs use onto buildah
// (vfs storage, chroot isolation, no daemon). It is NOT docker; anything it does not know fails
// loudly ("docker shim: unsupported ...", exit 125) rather than pretending.
//
// Plain .mjs (not .ts) so each call starts in ~50 ms with bare node; invoked by e2e/shims/bin/docker.
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
      case "--cache-to":
      case "--progress":
      case "--builder":
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
  const ignored = [...new Set(o.ignored)];
  if (ignored.length) note(`ignoring ${ignored.join(" ")} (BuildKit-only; no cache import/export, no attestations)`);
  const platforms = o.platforms.length ? mapPlatforms(o.platforms.join(",")) : [];
  const multi = platforms.length > 1;
  if (multi && o.load) {
    throw new ShimError("ERROR: docker exporter does not currently support exporting manifest lists");
  }
  if (!o.load && !o.push) {
    note("neither --load nor --push: the result stays only in the build cache (as with buildx)");
  }
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
  if (multi) {
    if (!o.tags.length) throw new ShimError("docker shim: multi-platform build needs -t", 125);
    const list = o.tags[0];
    // `bud --manifest` appends to an existing list of that name: start from an empty one.
    spawnSync(BUILDAH, ["manifest", "rm", list], { stdio: "ignore" });
    buildah(["bud", ...common, "--platform", platforms.join(","), "--manifest", list, o.context]);
    for (const t of o.tags.slice(1)) buildah(["tag", list, t]);
    if (o.push) {
      for (const t of o.tags) {
        const dg = join(mkdtempSync(join(tmpdir(), "shim-")), "digest");
        buildah(["manifest", "push", "--all", "--format", "v2s2", ...tlsArgs(t), "--digestfile", dg, t, `docker://${t}`]);
        const digest = readFileSync(dg, "utf8").trim();
        rememberRepoDigest(t, digest, { list: true });
        metadata["containerimage.digest"] = digest;
        process.stdout.write(`pushed ${t}@${digest}\n`);
      }
    }
  } else {
    const plat = platforms.length ? ["--platform", platforms[0]] : [];
    const tags = o.tags.flatMap((t) => ["-t", t]);
    const iid = join(mkdtempSync(join(tmpdir(), "shim-")), "iid");
    buildah(["bud", ...common, ...plat, ...tags, "--iidfile", iid, o.context]);
    metadata["containerimage.config.digest"] = readFileSync(iid, "utf8").trim();
    if (o.push) for (const t of o.tags) metadata["containerimage.digest"] = pushOne(t, { quiet: true });
    if (o.load) for (const t of o.tags) process.stdout.write(`naming to ${t} done\n`);
  }
  if (o.metadataFile) {
    if (o.tags[0]) metadata["image.name"] = o.tags.join(",");
    writeFileSync(o.metadataFile, JSON.stringify(metadata, null, 2));
  }
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
// docker run --privileged --rm tonistiigi/binfmt --install all
// The only container our buildspecs run: the binfmt installer before multi-platform builds. On
// this host qemu-user-static + binfmt_misc (e2e/setup.sh) do that job; the shim checks it and
// answers in the installer's JSON shape. Any other `docker run` is unsupported.

function run(args) {
  const image = args.find((a) => !a.startsWith("-"));
  if (!image || !/^(docker\.io\/)?tonistiigi\/binfmt(:|@|$)/.test(image)) throw unsupported(`docker run ${args.join(" ")}`);
  const dir = "/proc/sys/fs/binfmt_misc";
  const hostArch = process.arch === "x64" ? "amd64" : process.arch;
  const supported = [`linux/${hostArch}`];
  const emulators = [];
  const known = { "qemu-aarch64": "linux/arm64", "qemu-x86_64": "linux/amd64", "qemu-arm": "linux/arm/v7" };
  for (const [name, platform] of Object.entries(known)) {
    const f = join(dir, name);
    if (existsSync(f) && readFileSync(f, "utf8").startsWith("enabled")) {
      emulators.push(name);
      if (!supported.includes(platform)) supported.push(platform);
    }
  }
  process.stdout.write(JSON.stringify({ supported, emulators }, null, 2) + "\n");
  if (hostArch !== "arm64" && !supported.includes("linux/arm64")) {
    note("qemu-aarch64 is not registered in binfmt_misc (run e2e/setup.sh); linux/arm64 RUN steps will fail");
  }
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
          // `docker buildx create --name X --driver docker-container --use`: buildah has no builders.
          {
            const i = r.indexOf("--name");
            const name = i >= 0 ? r[i + 1] : (r.find((a) => a.startsWith("--name="))?.slice(7) ?? "e2e-builder");
            process.stdout.write(`${name}\n`);
          }
          return;
        case "use":
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
