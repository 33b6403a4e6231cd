// Phase 2: the real example, synthesized and applied end to end.
//
// A temporary copy of example/ is synthesized with createImagesApp() (src/app.ts); the prod
// stack's cdk.tf.json is applied by e2e/lib/apply.ts (Docker provider → docker shim → buildah for
// the base images; S3 objects through the S3 API; CodeBuild projects registered with the fake
// CodeBuild, whose builds the CodeBuild stand-in executes; terraform_data local-exec = the bundled
// runner as a child process). Then what landed in the registry is checked, a handler and a base
// package are edited, and the same procedure runs again after each edit, against the state of the
// previous apply, as Terraform would.
import { cpSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { execFileSync } from "node:child_process";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { createImagesApp } from "../src/app.ts";
import { apply, EMULATED, localExec, localExecEnv, shellWords, type ApplyRecord, type State } from "./lib/apply.ts";
import { REPO_ROOT, hostEnv, unmountUnder } from "./lib/buildenv.ts";
import { startFakeCodeBuildWithStandIn, type StandInProject } from "./lib/fake-codebuild.ts";
import type { BuildRun, Harness } from "./lib/harness.ts";
import { isIndex, MANIFEST_TYPES, type Manifest } from "./lib/registry.ts";
import { onCleanup } from "./lib/services.ts";
import { evalTemplate, lintTemplates, resources, type TfDoc } from "./lib/terraform.ts";
import type { Check } from "./phase1.ts";

const STACK = "prod";

/** What the example's images must contain (example/images.yaml and its Dockerfiles). */
const BASES: Record<string, { parent?: string; imports: string[]; newLayers: number }> = {
  "receipt-dynamo": { imports: ["receipt_dynamo"], newLayers: 2 }, // COPY + RUN
  "receipt-label": { parent: "receipt-dynamo", imports: ["receipt_dynamo", "receipt_chroma", "receipt_label"], newLayers: 3 }, // COPY, COPY, RUN
};
interface LambdaSpec {
  base?: string;
  files: string[];
  absent?: string[];
  imports: string[];
  event: unknown;
  /** Checks the handler's JSON result; `edited` = after the handler edit. */
  expect: (r: any, s: { naming: boolean; models: boolean }) => boolean;
}
const LAMBDAS: Record<string, LambdaSpec> = {
  "create-labels": {
    base: "receipt-label",
    files: ["/var/task/handler.py"],
    imports: ["receipt_dynamo", "receipt_chroma", "receipt_label"],
    event: { receipt_id: "r1", lines: [{ id: 1, text: "ACME" }, { id: 2, text: "TOTAL 9.99" }] },
    expect: (r) => r?.receipt_id === "r1" && r?.labels?.["1"] === "MERCHANT" && r?.labels?.["2"] === "TOTAL",
  },
  "upload-images": {
    base: "receipt-label",
    files: ["/var/task/handler/__init__.py", "/var/task/handler/upload.py", "/var/task/handler/naming.py"],
    absent: ["/var/task/handler/tests"],
    imports: ["receipt_dynamo", "receipt_label"],
    event: { receipt_id: "ab123", merchant: "acme" },
    expect: (r, s) =>
      r?.key === (s.naming ? "uploads/ab/ab123.png" : "raw/ab/ab123.png") && r?.item?.merchant === "acme" && (r?.item?.schema_version === 2) === s.models,
  },
  "sync-dynamo": {
    base: "receipt-dynamo",
    files: ["/var/task/handler.py"],
    imports: ["receipt_dynamo"],
    event: { receipts: [{ id: "r1", merchant: "acme" }] },
    expect: (r, s) => r?.items?.[0]?.PK === "RECEIPT#r1" && (r?.items?.[0]?.schema_version === 2) === s.models,
  },
  "create-labels-standalone": {
    files: ["/var/task/handler.py"],
    imports: ["receipt_dynamo", "receipt_chroma", "receipt_label"],
    event: { receipt_id: "r2", lines: [{ id: 7, text: "2024-01-02" }] },
    expect: (r) => r?.receipt_id === "r2" && r?.labels?.["7"] === "DATE",
  },
};

/** The two edits of the issue, applied to the temporary copy. */
const EDITS = [
  {
    name: "handler edit (infra/upload_images/handler/naming.py)",
    file: "infra/upload_images/handler/naming.py",
    from: 'f"raw/{receipt_id[:2]}/{receipt_id}.png"',
    to: 'f"uploads/{receipt_id[:2]}/{receipt_id}.png"',
    rebuilds: ["lambda:upload-images"],
  },
  {
    name: "base package edit (receipt_dynamo/receipt_dynamo/models.py)",
    file: "receipt_dynamo/receipt_dynamo/models.py",
    from: '"line_count": len(self.lines)}',
    to: '"line_count": len(self.lines), "schema_version": 2}',
    // The base, its chained base, every Lambda on them, and the standalone Lambda that copies
    // every package: all of the example.
    rebuilds: ["base:receipt-dynamo", "base:receipt-label", "lambda:create-labels", "lambda:upload-images", "lambda:sync-dynamo", "lambda:create-labels-standalone"],
  },
];

export interface ImageBuild {
  apply: number;
  image: string;
  via: "docker provider" | "CodeBuild stand-in";
  seconds: number;
  /** The CodeBuild stand-in's own build time (Lambdas). */
  buildSeconds?: number;
  contextBytes?: number;
  newLayerBytes?: number;
  newLayers?: number;
}

export interface Phase2Result {
  checks: Check[];
  builds: ImageBuild[];
  applies: { label: string; seconds: number; synthSeconds: number; records: ApplyRecord[] }[];
  notEmulated: string[];
}

/** "prod/lambda-upload-images/trigger/build" → "lambda:upload-images"; base image and push too. */
function imageOf(path: string): string | undefined {
  const m = /^[^/]+\/(?:lambda-([^/]+)\/(?:trigger\/build|context-object|project)|base\/([^/]+)\/(?:image|push))$/.exec(path);
  return m ? (m[1] ? `lambda:${m[1]}` : `base:${m[2]}`) : undefined;
}

function splitRef(ref: string): { repo: string; tag: string } {
  const slash = ref.indexOf("/");
  const rest = ref.slice(slash + 1);
  const colon = rest.lastIndexOf(":");
  return { repo: rest.slice(0, colon), tag: rest.slice(colon + 1) };
}

function argOf(words: string[], flag: string): string | undefined {
  const i = words.indexOf(flag);
  return i >= 0 ? words[i + 1] : undefined;
}

export async function phase2(h: Harness, log: (l: string) => void, o: { platformMap?: string } = {}): Promise<Phase2Result> {
  const checks: Check[] = [];
  const check = (name: string, ok: boolean, detail?: string) => {
    checks.push({ name, ok, detail });
    log(`${ok ? "  ok  " : "  FAIL"} ${name}${detail ? ` — ${detail}` : ""}`);
    return ok;
  };
  const mapPlatform = (p: string) => {
    for (const pair of (o.platformMap ?? "").split(",").filter(Boolean)) {
      const [from, to] = pair.split("=");
      if (from === p) return to!;
    }
    return p;
  };

  const dir = join(h.runDir, "phase2");
  const example = join(dir, "example");
  cpSync(join(REPO_ROOT, "example"), example, { recursive: true, filter: (src) => !src.includes("__pycache__") });
  // The persistent digest cache of these synths stays inside the run (not node_modules/.cache).
  process.env.LAMBDA_IMAGES_CACHE_DIR = join(dir, "digest-cache");

  // The fake CodeBuild/ECR/Logs API, with the projects the applies register.
  const projects = new Map<string, StandInProject>();
  const fcb = await startFakeCodeBuildWithStandIn(h, (name) => projects.get(name));
  onCleanup(() => fcb.close());

  // The "Terraform host"'s docker: the shim over one buildah store that lives for the whole run.
  const tfHost = join(dir, "tf-host");
  const dockerEnv = hostEnv({ registryHost: h.registry.host, registriesConf: h.registriesConf, storageRoot: join(tfHost, "storage"), tmpDir: join(tfHost, "tmp"), platformMap: o.platformMap });
  onCleanup(() => {
    unmountUnder(join(tfHost, "storage"));
    if (process.env.E2E_KEEP !== "1") rmSync(join(tfHost, "storage"), { recursive: true, force: true });
  });

  const result: Phase2Result = { checks, builds: [], applies: [], notEmulated: [] };
  let state: State = new Map();
  let prevDoc: TfDoc | undefined;
  const edited = { naming: false, models: false };

  for (let round = 0; round <= EDITS.length; round++) {
    const edit = round > 0 ? EDITS[round - 1]! : undefined;
    const label = edit ? `apply ${round + 1}: after the ${edit.name}` : "apply 1: from scratch";
    log(`e2e: phase 2 — ${label}`);
    if (edit) {
      const f = join(example, edit.file);
      const text = readFileSync(f, "utf8");
      if (!text.includes(edit.from)) throw new Error(`edit: ${edit.file} does not contain ${edit.from}`);
      writeFileSync(f, text.replace(edit.from, edit.to));
      if (edit.file.includes("naming")) edited.naming = true;
      else edited.models = true;
    }

    // --- synth ----------------------------------------------------------------------------------
    let t = Date.now();
    // One output directory for every synth, as `cdktf synth` + `terraform apply` in one checkout:
    // the stack dir (Terraform's working directory, and the Docker provider's context paths) stays
    // the same; the previous synth's JSON is kept in memory (and copied for the record).
    const outdir = join(dir, "cdktf.out");
    const { app } = await createImagesApp({ manifestFile: join(example, "images.yaml"), workDir: join(dir, "synth-work"), outdir });
    app.synth();
    const synthSeconds = (Date.now() - t) / 1000;
    const stackDir = join(outdir, "stacks", STACK);
    const json = readFileSync(join(stackDir, "cdk.tf.json"), "utf8");
    writeFileSync(join(dir, `synth-${round + 1}.cdk.tf.json`), json);
    const doc = JSON.parse(json) as TfDoc;
    log(`  synth ${synthSeconds.toFixed(1)}s → ${relative(h.runDir, stackDir)}/cdk.tf.json`);

    if (round === 0) {
      const problems = lintTemplates(doc);
      const where = [...new Set(problems.map((p) => p.split(": ")[0]!.replace(/^resource\.([^.]+)\.[^.]+\./, "$1.")))];
      const what = [...new Set(problems.map((p) => /(\$\{.*?\}) is not/.exec(p)?.[1] ?? p))];
      writeFileSync(join(dir, "template-problems.txt"), problems.join("\n") + "\n");
      check(
        "every string of cdk.tf.json is a valid Terraform template (references resolve)",
        problems.length === 0,
        problems.length ? `${problems.length} problems in ${where.join(", ")}: ${what.join(" ")} (Terraform would fail at plan; the buildspec needs $\${…}; list in phase2/template-problems.txt)` : undefined,
      );
      result.notEmulated = [...new Set(resources(doc).map((r) => r.type))].filter((t) => !EMULATED.has(t)).sort();
    }

    // What Terraform would replace, from the two synths alone: triggers of the build resources.
    const triggersOf = (d: TfDoc) => {
      const m = new Map<string, string>();
      for (const r of resources(d)) {
        const img = imageOf(((r.config["//"] as any)?.metadata?.path ?? "") as string);
        if (r.type === "terraform_data" && img) m.set(img, JSON.stringify(r.config.triggers_replace));
        if (r.type === "docker_image" && img) m.set(img, JSON.stringify(r.config.triggers) + JSON.stringify(r.config.name));
      }
      return m;
    };
    const now = triggersOf(doc);
    if (edit && prevDoc) {
      const before = triggersOf(prevDoc);
      const changed = [...now.keys()].filter((k) => before.get(k) !== now.get(k)).sort();
      check(`${edit.name}: exactly the expected trigger values change`, changed.join() === [...edit.rebuilds].sort().join(), `changed: ${changed.join(", ") || "none"}`);
    }

    // --- apply ----------------------------------------------------------------------------------
    t = Date.now();
    const runsBefore = fcb.runs.length;
    const applied = await apply(doc, stackDir, state, {
      h,
      projects,
      endpoint: fcb.fake.endpoint,
      dockerEnv,
      logDir: join(dir, `apply-${round + 1}`),
      parallelism: Number(process.env.E2E_PARALLELISM ?? 10),
      log,
    });
    const applySeconds = (Date.now() - t) / 1000;
    const builds = (await Promise.all(fcb.runs.slice(runsBefore))) as BuildRun[];
    result.applies.push({ label, seconds: applySeconds, synthSeconds, records: applied.records });
    const failed = applied.walk.filter((w) => !w.ok);
    if (!check(`${label}: every resource applied`, failed.length === 0, failed.length ? failed.map((f) => `${f.address}: ${f.error?.split("\n").slice(0, 6).join(" | ")}`).join("; ") : `${applySeconds.toFixed(1)}s`)) {
      return result;
    }
    state = applied.state;

    const rec = (type: string, img: string) => applied.records.find((r) => r.type === type && imageOf(r.path) === img);
    const ran = applied.records.filter((r) => (r.type === "terraform_data" || r.type === "docker_image") && r.action !== "no-op").map((r) => imageOf(r.path)!).sort();
    const expected = edit ? [...edit.rebuilds].sort() : [...Object.keys(BASES).map((b) => `base:${b}`), ...Object.keys(LAMBDAS).map((l) => `lambda:${l}`)].sort();
    check(`${label}: builds exactly ${expected.join(", ")}`, ran.join() === expected.join(), `ran: ${ran.join(", ") || "none"}`);
    const lambdasRan = ran.filter((r) => r.startsWith("lambda:")).length;
    check(`${label}: one CodeBuild build per rebuilt Lambda`, builds.length === lambdasRan && builds.every((b) => b.buildStatus === "SUCCEEDED"), `${builds.length} builds: ${builds.map((b) => `${b.name} ${b.buildStatus} ${b.seconds.toFixed(1)}s`).join(", ")}`);

    // Order: a build starts only after the push of the base it is built on.
    const orderProblems: string[] = [];
    for (const [name, spec] of Object.entries(BASES)) {
      if (!spec.parent) continue;
      const img = rec("docker_image", `base:${name}`);
      const push = rec("docker_registry_image", `base:${spec.parent}`);
      if (img?.action !== "no-op" && push && push.action !== "no-op" && img!.start < push.end) orderProblems.push(`base ${name} before ${spec.parent}'s push`);
    }
    for (const [name, spec] of Object.entries(LAMBDAS)) {
      if (!spec.base) continue;
      const trig = rec("terraform_data", `lambda:${name}`);
      const push = rec("docker_registry_image", `base:${spec.base}`);
      if (trig && trig.action !== "no-op" && push && push.action !== "no-op" && trig.start < push.end) orderProblems.push(`${name} before ${spec.base}'s push`);
    }
    check(`${label}: depends_on order (bases, then chained base, then Lambdas)`, orderProblems.length === 0, orderProblems.join("; ") || undefined);

    // Contexts: what was uploaded, and that a Lambda's context holds only its own files.
    for (const r of applied.records.filter((r) => r.type === "aws_s3_object" && r.bytes !== undefined)) {
      const img = imageOf(r.path)!;
      const name = img.split(":")[1]!;
      const key = (state.get(r.address)!.attrs.key as string) ?? "";
      const bucket = state.get(r.address)!.attrs.bucket as string;
      const zipFile = join(dir, `apply-${round + 1}`, `${name}.zip`);
      const obj = await h.s3client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      writeFileSync(zipFile, Buffer.from(await obj.Body!.transformToByteArray()));
      const entries = execFileSync("unzip", ["-Z1", zipFile], { encoding: "utf8" }).split("\n").filter(Boolean);
      const spec = LAMBDAS[name]!;
      const packages = entries.filter((e) => /^receipt_(dynamo|chroma|label)\//.test(e));
      check(
        `${label}: ${name} context (${r.bytes} B, ${entries.length} files) ${spec.base ? "holds no base package" : "holds every package"}`,
        spec.base ? packages.length === 0 && !entries.some((e) => e.includes("/tests/")) : packages.length > 0,
        entries.join(" "),
      );
    }

    // --- the registry's view of every image this apply built ------------------------------------
    const refs = new Map<string, string>(); // image → pushed ref
    for (const [name] of Object.entries(BASES)) refs.set(`base:${name}`, state.get(rec("docker_registry_image", `base:${name}`)!.address)!.computed.name!);
    const lambdaBase = new Map<string, string>();
    const projectOf = new Map<string, string>();
    for (const name of Object.keys(LAMBDAS)) {
      const r = rec("terraform_data", `lambda:${name}`)!;
      // The command as Terraform would run it (references substituted), also for unchanged ones.
      const cmd = evalCommand(doc, r.address, state, stackDir);
      const words = shellWords(cmd);
      refs.set(`lambda:${name}`, `${argOf(words, "--repository-uri")}:${argOf(words, "--image-tag")}`);
      const base = argOf(words, "--base-image-uri");
      if (base) lambdaBase.set(name, base);
      projectOf.set(name, argOf(words, "--project")!);
    }
    for (const img of ran) {
      const [kind, name] = img.split(":") as ["base" | "lambda", string];
      const ref = refs.get(img)!;
      const { repo, tag } = splitRef(ref);
      const m = await h.reg.manifest(repo, tag);
      const spec = kind === "base" ? undefined : LAMBDAS[name]!;
      const platform = mapPlatform(kind === "base" ? "linux/arm64" : name === "create-labels-standalone" ? "linux/amd64" : "linux/arm64");
      check(`${label}: ${ref.slice(h.registry.host.length + 1)} is a plain image manifest`, !isIndex(m.mediaType) && !!m.layers && m.mediaType === MANIFEST_TYPES.dockerManifest, m.mediaType);
      const cfg = await h.reg.imageConfig(repo, m);
      check(`${label}: ${kind} ${name} is ${platform}`, `${cfg.os}/${cfg.architecture}` === platform, `${cfg.os}/${cfg.architecture}`);

      // Layers: parent's + only this image's own.
      let parent: Manifest;
      let expectNew: number;
      if (kind === "base") {
        const p = BASES[name]!.parent;
        parent = p ? await manifestOf(h, refs.get(`base:${p}`)!) : await h.reg.imageManifest("lambda/python", "3.12", platform);
        expectNew = BASES[name]!.newLayers;
        if (p) {
          const words = (rec("docker_image", img)!.command ?? "").split(" ");
          check(`${label}: base ${name} was built with BASE_IMAGE_URI=${refs.get(`base:${p}`)!.slice(h.registry.host.length + 1)}`, words.includes(`BASE_IMAGE_URI=${refs.get(`base:${p}`)}`), rec("docker_image", img)!.command);
        }
      } else if (spec!.base) {
        const baseRef = lambdaBase.get(name)!;
        check(`${label}: ${name} is built on the current ${spec!.base} base`, baseRef === refs.get(`base:${spec!.base}`), baseRef);
        parent = await manifestOf(h, baseRef);
        expectNew = 1; // COPY of the handler (CMD adds no layer)
      } else {
        parent = await h.reg.imageManifest("lambda/python", "3.12", platform);
        expectNew = 5; // COPY ×3 + RUN (stage "dependencies") + COPY handler
      }
      const pl = parent.layers!.map((l) => l.digest);
      const ml = m.layers!.map((l) => l.digest);
      const fresh = m.layers!.slice(pl.length);
      const freshBytes = fresh.reduce((n, l) => n + l.size, 0);
      check(
        `${label}: ${name} layers = ${kind === "base" ? (BASES[name]!.parent ?? "stand-in") : (spec!.base ?? "stand-in")} layers + ${expectNew} of its own`,
        ml.length === pl.length + expectNew && pl.every((d, i) => ml[i] === d),
        `${pl.length} -> ${ml.length}, new ${fresh.map((l) => `${l.size} B`).join(" + ")}`,
      );
      if (kind === "lambda" && spec!.base) check(`${label}: ${name}'s new layer is small (< 64 KiB)`, freshBytes < 65536, `${freshBytes} B`);

      // Inside the image: packages importable, handler files present, the handler runs.
      const build = rec(kind === "base" ? "docker_image" : "terraform_data", img)!;
      const codebuild = kind === "lambda" ? builds.find((b) => b.name === projectOf.get(name)) : undefined;
      const s3 = applied.records.find((r) => r.type === "aws_s3_object" && imageOf(r.path) === img);
      const push = kind === "base" ? rec("docker_registry_image", img) : undefined;
      result.builds.push({
        apply: round + 1,
        image: img,
        via: kind === "base" ? "docker provider" : "CodeBuild stand-in",
        seconds: build.seconds + (push?.seconds ?? 0),
        buildSeconds: codebuild?.seconds,
        contextBytes: s3?.bytes,
        newLayerBytes: freshBytes,
        newLayers: fresh.length,
      });
      const imports = kind === "base" ? BASES[name]!.imports : spec!.imports;
      const files = kind === "base" ? [] : spec!.files;
      const absent = kind === "base" ? [] : (spec!.absent ?? []);
      const probe = [
        "import importlib, json, os, sys",
        "mods, files, absent = sys.argv[1:4]",
        "ok = {m: getattr(importlib.import_module(m), '__name__', m) for m in mods.split(',')}",
        "print(json.dumps({'imported': sorted(ok), 'missing': [f for f in files.split(',') if f and not os.path.isfile(f)], 'present': [f for f in absent.split(',') if f and os.path.exists(f)]}))",
      ].join("\n");
      const ctr = (await h.buildah(["from", "--quiet", "--tls-verify=false", ref])).trim();
      try {
        const out = await h.buildah(["run", ctr, "--", "python3", "-c", probe, imports.join(","), files.join(","), absent.join(",")]);
        const r = JSON.parse(out.trim());
        check(
          `${label}: ${name}: python3 -c "import ${imports.join(", ")}"${files.length ? `, ${files.join(" ")} present` : ""}${absent.length ? `, ${absent.join(" ")} absent` : ""}`,
          r.imported.length === imports.length && r.missing.length === 0 && r.present.length === 0,
          out.trim(),
        );
        if (kind === "lambda") {
          const cmd = cfg.config.Cmd?.[0] ?? "";
          const res = await h.buildah(["run", "--env", `E2E_EVENT=${JSON.stringify(spec!.event)}`, ctr, "--", "/lambda-entrypoint.sh", cmd]);
          let parsed: unknown;
          try {
            parsed = JSON.parse(res.trim());
          } catch {
            parsed = undefined;
          }
          check(`${label}: ${name}: the handler (${cmd}) runs and returns the expected result`, spec!.expect(parsed, edited), res.trim());
        }
      } finally {
        await h.buildah(["rm", ctr]).catch(() => "");
      }
    }

    // The runner's own skip: every unchanged Lambda's local-exec command run again (as
    // `terraform apply -replace=…` or a lost state would) must exit 0 without a build, saying why.
    if (edit) {
      const unchanged = Object.keys(LAMBDAS).filter((n) => !ran.includes(`lambda:${n}`));
      const before = fcb.runs.length;
      const lines: string[] = [];
      let allSkipped = true;
      for (const name of unchanged) {
        const r = rec("terraform_data", `lambda:${name}`)!;
        const cmd = evalCommand(doc, r.address, state, stackDir);
        const res = await localExec(cmd, stackDir, localExecEnv(fcb.fake.endpoint), join(dir, `apply-${round + 1}`, `replay-${name}.log`));
        const line = res.out.split("\n").find((l) => l.includes("already exists")) ?? res.out.trim().split("\n").pop() ?? "";
        lines.push(`${name}: ${line.trim()}`);
        if (res.code !== 0 || !/already exists \(content-addressed tag\), skipping build/.test(res.out)) allSkipped = false;
      }
      check(
        `${label}: the runner skips every unchanged Lambda (${unchanged.length}) because its tag exists`,
        allSkipped && fcb.runs.length === before,
        unchanged.length ? `${lines.join("; ")}; builds started: ${fcb.runs.length - before}` : "no unchanged Lambda: every image depends on receipt_dynamo",
      );
    }
    prevDoc = doc;
  }

  // Nothing in the registry is an index or an attestation (Lambda rejects both).
  const bad: string[] = [];
  let count = 0;
  // The stack's repositories (not the stand-in, a list like the real public image, nor phase 1's).
  const repos = [...state.values()].filter((r) => r.type === "aws_ecr_repository").map((r) => r.computed.name!);
  const catalog = await h.reg.catalog();
  for (const repo of repos) {
    if (!catalog.includes(repo)) bad.push(`${repo}: no images`);
    for (const tag of await h.reg.tags(repo)) {
      count++;
      const m = await h.reg.manifest(repo, tag);
      const cfgType = m.config?.mediaType ?? "";
      if (isIndex(m.mediaType) || !m.layers || !/image\.config|container\.image/.test(cfgType)) bad.push(`${repo}:${tag} ${m.mediaType} ${cfgType}`);
    }
  }
  check("no pushed manifest is an index or an attestation", bad.length === 0 && count > 0, bad.join("; ") || `${count} tags in ${repos.length} repositories, all plain image manifests`);
  await fcb.close();
  return result;
}

async function manifestOf(h: Harness, ref: string): Promise<Manifest> {
  const { repo, tag } = splitRef(ref);
  return h.reg.manifest(repo, tag);
}

/** A terraform_data's local-exec command with references substituted from the current state
 * (also for a resource this apply left alone). */
function evalCommand(doc: TfDoc, address: string, state: State, stackDir: string): string {
  const [type, name] = address.split(".") as [string, string];
  const cfg = doc.resource![type]![name]!;
  const command = (cfg.provisioner as any[])[0]["local-exec"].command as string;
  return evalTemplate(command, {
    stackDir,
    resolve(ref) {
      const v = state.get(`${ref.type}.${ref.name}`)?.computed[ref.attr];
      if (v === undefined) throw new Error(`${address}: cannot resolve \${${ref.type}.${ref.name}.${ref.attr}}`);
      return v;
    },
  });
}
