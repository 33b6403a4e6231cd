import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { analyzeImages, type ImageAnalysis } from "../src/analyze.ts";
import { loadManifest, type Manifest } from "../src/manifest/load.ts";
import { openDigestCache } from "../src/hashing/cache.ts";
import { later, quiet } from "./helpers/cache-clock.ts";
import { repoTree, type RepoTree } from "./helpers/repo-tree.ts";

/**
 * Differential test of the warm path (issue 22, item 1): on a generated repository, a long
 * seeded sequence of random changes (content, mode, add, delete, rename, ignore-file,
 * Dockerfile and manifest edits, over files several images share); after each one, the analysis
 * through the persistent caches (saved, and read by the next step, as consecutive synths do)
 * must equal a fresh one, image by image: hash, context hash, files and their executable bits,
 * warnings, or the same error.
 *
 * The racy window: the caches never trust a file or directory changed within 2 s of the session
 * that looked at it, so a tree edited a moment ago would exercise no reuse at all. The cached
 * runs use a clock 10 s ahead (everything counts as old), and before each change the test waits
 * until the filesystem's timestamps have moved on from the last run, which is exactly what the
 * margin stands for: every edit then shows in a ctime the cache has not seen. The test checks
 * that most images were in fact reused.
 *
 * Replay a failure with the seed and step it prints:
 *   DIFF_SEED=<seed> DIFF_STEPS=<step> npx vitest run __tests__/selection-cache-differential.test.ts
 */

const SEEDS = process.env.DIFF_SEED ? [Number(process.env.DIFF_SEED)] : [1, 2, 3, 4];
/** Per seed: 4 × 520 = 2,080 edits in all. */
const EDITS = Number(process.env.DIFF_EDITS ?? 520);
/** With DIFF_STEPS, a replay stops after that step. */
const STOP_AFTER = process.env.DIFF_STEPS ? Number(process.env.DIFF_STEPS) : Infinity;

/**
 * Where the repositories and caches go: a memory file system when there is one. Each step saves
 * the caches (a rename over the old file), which ext4 follows with a flush of several ms; the
 * semantics under test (ns timestamps, inodes, modes) are the same.
 */
const MEMORY_TMP = fs.existsSync("/dev/shm") && fs.statSync("/dev/shm").isDirectory() ? "/dev/shm" : os.tmpdir();

/** mulberry32: a small, well-spread PRNG, so a seed replays the same run anywhere. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  return { next, int, pick, chance: (p: number) => next() < p };
}
type Rng = ReturnType<typeof prng>;

const BASE_FROM = "ARG BASE_IMAGE_URI\nFROM ${BASE_IMAGE_URI:-public.ecr.aws/lambda/python:3.12}\n";
const PLAIN_FROM = "FROM public.ecr.aws/lambda/python:3.12\n";

/** Dockerfiles: what each always copies (kept valid) and extra COPY lines the edits add and remove. */
const DOCKERFILES: Record<string, { head: string; fixed: string[]; extra: string[] }> = {
  "dockerfiles/Dockerfile.b0": { head: PLAIN_FROM, fixed: ["COPY pkg0/ /tmp/pkg0/"], extra: ["COPY shared/common.py /tmp/common.py", "COPY shared/util/ /tmp/util/"] },
  "dockerfiles/Dockerfile.b1": {
    head: BASE_FROM,
    fixed: ["COPY pkg1/ /tmp/pkg1/"],
    extra: ["COPY shared/common.py /tmp/common.py", "COPY shared/**/*.py /tmp/shared/", "COPY pkg1/pkg1/sub/ /tmp/sub/"],
  },
  "svc/s0/Dockerfile": {
    head: BASE_FROM,
    fixed: ["COPY svc/s0/*.py ${LAMBDA_TASK_ROOT}/", "COPY shared/common.py ${LAMBDA_TASK_ROOT}/"],
    extra: ["COPY shared/util/ ${LAMBDA_TASK_ROOT}/util/", "COPY svc/s1/handler.py /tmp/s1.py", "COPY shared/*.txt /tmp/"],
  },
  "svc/s1/Dockerfile": {
    head: BASE_FROM,
    fixed: ["COPY svc/s1/ ${LAMBDA_TASK_ROOT}/", "COPY shared/ ${LAMBDA_TASK_ROOT}/shared/"],
    extra: ["COPY svc/s0/handler.py /tmp/s0.py", "COPY pkg2/ /tmp/pkg2/"],
  },
  "svc/s2/Dockerfile": {
    head: PLAIN_FROM,
    fixed: ["COPY pkg0/ /tmp/pkg0/", "COPY pkg1/ /tmp/pkg1/", "COPY pkg2/ /tmp/pkg2/", "COPY svc/s2/handler.py ${LAMBDA_TASK_ROOT}/", "COPY shared/common.py ${LAMBDA_TASK_ROOT}/"],
    extra: ["COPY shared/util/*.py /tmp/util/", "COPY svc/s0/ /tmp/s0/", "COPY pkg*/pyproject.toml /tmp/"],
  },
  "svc/s3/Dockerfile": { head: PLAIN_FROM, fixed: ["COPY . /app/"], extra: ["COPY lib/ /lib2/", "COPY handler.py /h.py"] },
};

/** Ignore files and the rules the edits add to and remove from them. */
const IGNORE_FILES = [".dockerignore", "dockerfiles/Dockerfile.b1.dockerignore", "svc/s0/Dockerfile.dockerignore", "svc/s3/.dockerignore"];
const IGNORE_RULES = ["**/__pycache__", "**/*.pyc", "**/tests", "*.md", "**/*.txt", "pkg1/pkg1/sub", "!pkg1/pkg1/sub/keep.py", "shared/util", "!shared/util/keep.py", "pkg0/pkg0/b.py", "lib/*.py", "!lib/keep.py", "svc/s0/extra*.py", "**/new_*"];

/** Files the Dockerfiles name literally (or as their only glob match): deleting them only makes every step an error. */
const PROTECTED = new Set([
  "images.yaml",
  ...Object.keys(DOCKERFILES),
  "svc/s0/handler.py",
  "svc/s1/handler.py",
  "svc/s2/handler.py",
  "svc/s3/handler.py",
  "shared/common.py",
  "pkg0/pyproject.toml",
  "pkg1/pyproject.toml",
  "pkg2/pyproject.toml",
]);

/** Files more than one image selects. */
const SHARED = ["shared/common.py", "shared/util/u.py", "shared/util/keep.py", "svc/s0/handler.py", "svc/s1/handler.py", "pkg0/pkg0/a.py", "pkg1/pkg1/a.py", "pkg1/pkg1/sub/keep.py", "pkg2/pkg2/a.py", "svc/s3/lib/l.py", "svc/s3/handler.py"];

interface ManifestModel {
  includeS1: string[];
  buildArgB0: string;
  s3Platform: string;
}

function manifestText(m: ManifestModel): string {
  return [
    "project: diff",
    "stacks: { dev: { region: us-east-1 } }",
    "baseImages:",
    "  b0: { dockerfile: dockerfiles/Dockerfile.b0, packages: [pkg0], buildArgs: { LEVEL: '" + m.buildArgB0 + "' } }",
    "  b1: { dockerfile: dockerfiles/Dockerfile.b1, packages: [pkg1], baseImage: b0 }",
    "lambdas:",
    "  s0: { dockerfile: svc/s0/Dockerfile, baseImage: b1 }",
    "  s0-on-b0: { dockerfile: svc/s0/Dockerfile, baseImage: b0 }",
    `  s1: { dockerfile: svc/s1/Dockerfile, baseImage: b0, include: [${m.includeS1.map((g) => JSON.stringify(g)).join(", ")}] }`,
    "  s2: { dockerfile: svc/s2/Dockerfile }",
    `  s3: { dockerfile: svc/s3/Dockerfile, context: svc/s3, platform: ${m.s3Platform} }`,
    "  s3-again: { dockerfile: svc/s3/Dockerfile, context: svc/s3 }",
    "",
  ].join("\n");
}

function dockerfileText(file: string, extra: readonly string[], comment: number): string {
  const d = DOCKERFILES[file]!;
  return `# revision ${comment}\n${d.head}${[...d.fixed, ...extra].join("\n")}\n`;
}

function generate(rng: Rng): { repo: RepoTree; state: State } {
  const files: Record<string, string> = {};
  const py = (name: string) => `# ${name}\nVALUE = ${rng.int(1000)}\n`;
  for (const pkg of ["pkg0", "pkg1", "pkg2"]) {
    files[`${pkg}/pyproject.toml`] = `[project]\nname = "${pkg}"\n`;
    for (const mod of ["__init__", "a", "b"]) files[`${pkg}/${pkg}/${mod}.py`] = py(mod);
    files[`${pkg}/tests/test_a.py`] = py("test");
  }
  files["pkg1/pkg1/sub/keep.py"] = py("keep");
  files["pkg1/pkg1/sub/other.py"] = py("other");
  files["shared/common.py"] = py("common");
  files["shared/notes.txt"] = "notes\n";
  files["shared/util/keep.py"] = py("keep");
  files["shared/util/u.py"] = py("u");
  for (const s of ["s0", "s1", "s2"]) files[`svc/${s}/handler.py`] = py(s);
  files["svc/s0/extra_a.py"] = py("extra");
  files["svc/s3/handler.py"] = py("s3");
  files["svc/s3/lib/keep.py"] = py("keep");
  files["svc/s3/lib/l.py"] = py("l");
  files["svc/s3/README.md"] = "readme\n";
  files["docs/guide.md"] = "guide\n";
  const state: State = {
    manifest: { includeS1: [], buildArgB0: "1", s3Platform: "linux/arm64" },
    extras: Object.fromEntries(Object.keys(DOCKERFILES).map((f) => [f, []])),
    revision: 0,
    counter: 0,
  };
  files["images.yaml"] = manifestText(state.manifest);
  for (const f of Object.keys(DOCKERFILES)) files[f] = dockerfileText(f, [], 0);
  files[".dockerignore"] = INITIAL_IGNORE;
  files["svc/s3/.dockerignore"] = INITIAL_S3_IGNORE;
  return { repo: repoTree(files, "selection-differential-", MEMORY_TMP), state };
}

interface State {
  manifest: ManifestModel;
  extras: Record<string, string[]>;
  revision: number;
  counter: number;
}

/** Every file and directory below the root (POSIX, root-relative), symlinks as files. */
function listTree(root: string): { files: string[]; dirs: string[] } {
  const files: string[] = [];
  const dirs: string[] = [];
  const visit = (rel: string) => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        dirs.push(p);
        visit(p);
      } else files.push(p);
    }
  };
  visit("");
  return { files: files.sort(), dirs: dirs.sort() };
}

const RENAMED_DIRS = [["pkg1/pkg1/sub", "pkg1/pkg1/sub2"], ["shared/util", "shared/util2"], ["svc/s3/lib", "svc/s3/lib2"], ["pkg0/tests", "pkg0/tests2"]] as const;
const INITIAL_IGNORE = "**/__pycache__\n**/*.pyc\n**/tests\n";
const INITIAL_S3_IGNORE = "*.md\n";

const NEW_NAMES = ["new_{n}.py", "m{n}.py", "keep.py", "n{n}.txt", "__pycache__/c{n}.pyc", "tests/test_{n}.py", "README.md", "extra_{n}.py", "x{n}.pyc"];

/** One random edit; returns what it did, for the replay log. */
function randomEdit(rng: Rng, repo: RepoTree, state: State): string {
  const { files, dirs } = listTree(repo.dir);
  // Symlinks are added, removed, renamed and deleted, not edited through (they may dangle).
  const editable = files.filter((f) => !f.endsWith("images.yaml") && !fs.lstatSync(repo.file(f)).isSymbolicLink());
  const removable = files.filter((f) => !PROTECTED.has(f));
  const abs = repo.file;
  // Half the content and mode edits go to files several images select (a base and a standalone
  // Lambda, two Lambdas, two images of one context): where one image's record is invalidated
  // while another's still looks valid.
  const hot = SHARED.filter((f) => editable.includes(f));
  const target = (pool: readonly string[]) => (hot.length > 0 && rng.chance(0.5) ? rng.pick(hot) : rng.pick(pool));
  const kind = rng.pick([
    "content", "content", "content-same-size", "mode", "mode", "add", "add", "delete", "rename", "rename-dir",
    "ignore-rule", "ignore-file", "dockerfile-line", "dockerfile-comment", "manifest", "symlink",
  ] as const);
  switch (kind) {
    case "content": {
      const f = target(editable);
      if (DOCKERFILES[f]) return randomEdit(rng, repo, state);
      fs.appendFileSync(abs(f), `# edit ${state.counter++}\n`);
      return `append to ${f}`;
    }
    case "content-same-size": {
      const f = target(editable.filter((p) => !DOCKERFILES[p] && !IGNORE_FILES.includes(p)));
      const text = fs.readFileSync(abs(f), "utf8");
      if (text.length === 0) return `(empty ${f})`;
      const i = rng.int(text.length);
      const ch = text[i] === "#" ? "$" : "#";
      fs.writeFileSync(abs(f), text.slice(0, i) + ch + text.slice(i + 1));
      return `same-size edit of ${f} at ${i}`;
    }
    case "mode": {
      const f = target(editable);
      const mode = fs.statSync(abs(f)).mode & 0o777;
      fs.chmodSync(abs(f), mode & 0o111 ? 0o644 : 0o755);
      return `chmod ${mode & 0o111 ? "-x" : "+x"} ${f}`;
    }
    case "add": {
      const dir = rng.pick(["", ...dirs]);
      const name = rng.pick(NEW_NAMES).replace("{n}", String(state.counter++));
      const rel = dir ? `${dir}/${name}` : name;
      if (fs.existsSync(abs(rel))) return `(exists ${rel})`;
      fs.mkdirSync(path.dirname(abs(rel)), { recursive: true });
      fs.writeFileSync(abs(rel), `ADDED = ${state.counter}\n`);
      return `add ${rel}`;
    }
    case "delete": {
      if (removable.length === 0) return "(nothing to delete)";
      const f = rng.pick(removable);
      fs.rmSync(abs(f));
      return `delete ${f}`;
    }
    case "rename": {
      if (removable.length === 0) return "(nothing to rename)";
      const f = rng.pick(removable);
      const dir = rng.chance(0.5) ? path.posix.dirname(f) : rng.pick(dirs);
      const to = `${dir === "." ? "" : `${dir}/`}${rng.pick(NEW_NAMES).replace("{n}", String(state.counter++)).replace(/.*\//, "")}`;
      if (fs.existsSync(abs(to))) return `(exists ${to})`;
      fs.renameSync(abs(f), abs(to));
      return `rename ${f} -> ${to}`;
    }
    case "rename-dir": {
      const [a, b] = rng.pick(RENAMED_DIRS);
      const [from, to] = fs.existsSync(abs(a!)) ? [a!, b!] : [b!, a!];
      if (!fs.existsSync(abs(from)) || fs.existsSync(abs(to))) return `(cannot rename ${from})`;
      fs.renameSync(abs(from), abs(to));
      return `rename dir ${from} -> ${to}`;
    }
    case "ignore-rule": {
      const file = rng.pick(IGNORE_FILES);
      const lines = fs.existsSync(abs(file)) ? fs.readFileSync(abs(file), "utf8").split("\n").filter(Boolean) : [];
      if (lines.length > 0 && rng.chance(0.45)) {
        const drop = rng.int(lines.length);
        const [gone] = lines.splice(drop, 1);
        fs.writeFileSync(abs(file), lines.map((l) => `${l}\n`).join(""));
        return `remove "${gone}" from ${file}`;
      }
      const rule = rng.pick(IGNORE_RULES);
      fs.mkdirSync(path.dirname(abs(file)), { recursive: true });
      fs.appendFileSync(abs(file), `${rule}\n`);
      return `add "${rule}" to ${file}`;
    }
    case "ignore-file": {
      const file = rng.pick(IGNORE_FILES);
      if (fs.existsSync(abs(file))) {
        fs.rmSync(abs(file));
        return `delete ${file}`;
      }
      const rules = [rng.pick(IGNORE_RULES), rng.pick(IGNORE_RULES)];
      fs.writeFileSync(abs(file), rules.map((l) => `${l}\n`).join(""));
      return `create ${file} with ${JSON.stringify(rules)}`;
    }
    case "dockerfile-line": {
      const file = rng.pick(Object.keys(DOCKERFILES));
      const d = DOCKERFILES[file]!;
      const extras = state.extras[file]!;
      const line = rng.pick(d.extra);
      const at = extras.indexOf(line);
      if (at >= 0) extras.splice(at, 1);
      else extras.push(line);
      fs.writeFileSync(abs(file), dockerfileText(file, extras, state.revision));
      return `${at >= 0 ? "remove" : "add"} "${line}" in ${file}`;
    }
    case "dockerfile-comment": {
      const file = rng.pick(Object.keys(DOCKERFILES));
      state.revision++;
      fs.writeFileSync(abs(file), dockerfileText(file, state.extras[file]!, state.revision));
      return `comment edit in ${file}`;
    }
    case "manifest": {
      const m = state.manifest;
      const what = rng.pick(["include", "buildArg", "platform"] as const);
      if (what === "include") {
        const glob = rng.pick(["shared/util/*.py", "docs/*.md", "pkg2/pkg2/**"]);
        m.includeS1 = m.includeS1.includes(glob) ? m.includeS1.filter((g) => g !== glob) : [...m.includeS1, glob];
      } else if (what === "buildArg") m.buildArgB0 = String(rng.int(3));
      else m.s3Platform = m.s3Platform === "linux/arm64" ? "linux/amd64" : "linux/arm64";
      fs.writeFileSync(abs("images.yaml"), manifestText(m));
      return `manifest: ${what} -> ${JSON.stringify(m)}`;
    }
    case "symlink": {
      const links = files.filter((f) => fs.lstatSync(abs(f)).isSymbolicLink());
      if (links.length > 0 && rng.chance(0.6)) {
        const l = rng.pick(links);
        fs.rmSync(abs(l));
        return `remove symlink ${l}`;
      }
      const target = rng.pick(editable);
      const dir = rng.pick(["shared", "svc/s1", "pkg2/pkg2", "svc/s3"].filter((d) => fs.existsSync(abs(d))));
      const link = `${dir}/link${state.counter++}.py`;
      fs.symlinkSync(path.relative(path.dirname(abs(link)), abs(target)), abs(link));
      return `symlink ${link} -> ${target}`;
    }
  }
}

/**
 * After a change that left the repository unbuildable (a COPY source renamed away or ignored, an
 * include that matches nothing), the next change usually puts things back, so most steps compare
 * hashes rather than errors: directories get their first names, the ignore files their first
 * text, the include globs are dropped and the files the optional COPY lines name come back.
 */
function repair(repo: RepoTree, state: State): string {
  const abs = repo.file;
  for (const [a, b] of RENAMED_DIRS) if (!fs.existsSync(abs(a)) && fs.existsSync(abs(b))) fs.renameSync(abs(b), abs(a));
  for (const f of IGNORE_FILES) fs.rmSync(abs(f), { force: true });
  fs.writeFileSync(abs(".dockerignore"), INITIAL_IGNORE);
  fs.writeFileSync(abs("svc/s3/.dockerignore"), INITIAL_S3_IGNORE);
  for (const f of ["shared/notes.txt", "docs/guide.md", "pkg1/pkg1/sub/keep.py", "shared/util/u.py", "svc/s3/lib/l.py", "svc/s0/handler.py"]) {
    if (!fs.existsSync(abs(f))) {
      fs.mkdirSync(path.dirname(abs(f)), { recursive: true });
      fs.writeFileSync(abs(f), "RESTORED = 1\n");
    }
  }
  state.manifest.includeS1 = [];
  fs.writeFileSync(abs("images.yaml"), manifestText(state.manifest));
  return "repair";
}

/** Per image what a user sees (plan, archives, tags), or the error a synth would print. */
function view(analysis: ImageAnalysis) {
  return Object.fromEntries(
    analysis.images.map((i) => [
      `${i.spec.kind}:${i.spec.name}`,
      {
        hash: i.hash,
        contextHash: i.contextHash,
        files: i.selection.files.map((f) => `${f.entry.path}${f.entry.kind === "symlink" ? "@" : f.entry.mode & 0o111 ? "*" : ""}`),
        warnings: i.warnings,
      },
    ]),
  );
}

async function outcome<T>(run: () => Promise<T>): Promise<T | { error: string }> {
  try {
    return await run();
  } catch (error) {
    return { error: (error as Error).message };
  }
}

/**
 * Waits until a file changed now gets a ctime later than anything the last run saw (one timestamp
 * tick: a few ms where the kernel stamps files with its coarse clock, none with fine-grained ones).
 */
function waitForTimestampTick(probe: string): void {
  if (!fs.existsSync(probe)) fs.writeFileSync(probe, "");
  fs.chmodSync(probe, 0o644);
  const first = fs.statSync(probe, { bigint: true }).ctimeNs;
  for (let i = 1; ; i++) {
    fs.chmodSync(probe, i % 2 ? 0o600 : 0o644);
    if (fs.statSync(probe, { bigint: true }).ctimeNs > first) return;
  }
}

const repos: RepoTree[] = [];
afterAll(() => repos.forEach((r) => r.cleanup()));

describe("selection cache: warm analysis equals a fresh one after random changes", () => {
  for (const seed of SEEDS) {
    it(`seed ${seed}: ${EDITS} edits`, { timeout: 600_000 }, async () => {
      const rng = prng(seed);
      const { repo, state } = generate(rng);
      repos.push(repo);
      const cacheDir = path.join(path.dirname(repo.dir), "cache");
      const probe = path.join(path.dirname(repo.dir), "tick-probe");
      let reused = 0;
      const timing = { warm: 0, fresh: 0, edit: 0, tick: 0 };
      // Both analyses of a step read the same manifest (loading it is not what is under test).
      const both = async () => {
        let manifest: Manifest;
        try {
          manifest = loadManifest(repo.manifest);
        } catch (error) {
          return { warm: { error: (error as Error).message }, fresh: { error: (error as Error).message } };
        }
        let t = performance.now();
        const cache = openDigestCache({ root: repo.dir, dir: cacheDir, now: later, ...quiet });
        const warm = await outcome(async () => view(await analyzeImages(manifest, { cache })));
        cache.save();
        timing.warm += performance.now() - t;
        t = performance.now();
        reused += cache.selection!.stats().reused;
        const fresh = await outcome(async () => view(await analyzeImages(manifest)));
        timing.fresh += performance.now() - t;
        return { warm, fresh };
      };
      let analyzed = 0;
      let errors = 0;
      let edits = 0;
      let broken = false;
      const log: string[] = [];
      const first = await both();
      expect(first.warm).toEqual(first.fresh);
      for (let step = 1; edits < EDITS && step <= STOP_AFTER; step++) {
        let t = performance.now();
        waitForTimestampTick(probe);
        timing.tick += performance.now() - t;
        t = performance.now();
        const change = broken && rng.chance(0.7) ? [repair(repo, state)] : Array.from({ length: 1 + (rng.chance(0.3) ? rng.int(3) : 0) }, () => randomEdit(rng, repo, state));
        edits += change.length;
        timing.edit += performance.now() - t;
        log.push(`step ${step}: ${change.join("; ")}`);
        const { warm, fresh } = await both();
        broken = "error" in fresh;
        if (broken) errors++;
        else analyzed += Object.keys(fresh).length;
        if (process.env.DIFF_DEBUG) console.log(log.at(-1), broken ? fresh.error : "");
        if (JSON.stringify(warm) !== JSON.stringify(fresh)) {
          const replay = `replay: DIFF_SEED=${seed} DIFF_STEPS=${step} npx vitest run __tests__/selection-cache-differential.test.ts`;
          expect(warm, `seed ${seed}, step ${step} (${replay}); the last changes:\n${log.slice(-8).join("\n")}`).toEqual(fresh);
        }
      }
      if (process.env.DIFF_DEBUG) console.log(timing, { reused, analyzed, errors, steps: log.length });
      // The run must have exercised the cache: most steps buildable, and many images reused.
      expect(errors).toBeLessThan(log.length / 3);
      expect(reused).toBeGreaterThan(analyzed / 3);
    });
  }
});
