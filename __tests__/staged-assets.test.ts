import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyExample, type ExampleCopy } from "./helpers/example-copy.ts";
import { resourcesOf, synthExample, type SynthResult } from "./helpers/synth.ts";

// What synth writes into cdktf.out is hard-linked from the cache: two stacks and repeated synths
// hold one copy of each content, and a large selected file is streamed, never read whole.

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
let copy: ExampleCopy;
let tmp: string;
beforeAll(() => {
  copy = copyExample();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "staged-assets-"));
});
afterAll(() => {
  copy.cleanup();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Every regular file under `dir`, root-relative, with its inode. */
function files(dir: string): Map<string, fs.Stats> {
  const out = new Map<string, fs.Stats>();
  const visit = (d: string) => {
    for (const child of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, child.name);
      if (child.isDirectory()) visit(p);
      else if (child.isFile()) out.set(path.relative(dir, p), fs.statSync(p));
    }
  };
  visit(dir);
  return out;
}

/** The asset directory of a base image's staged context in a stack. */
function baseContext(outdir: string, stack: string, base: string): string {
  const assets = path.join(outdir, "stacks", stack, "assets");
  const named = fs.readdirSync(assets).find((n) => n.startsWith(`base_${base}_context`))!;
  const [hash] = fs.readdirSync(path.join(assets, named));
  return path.join(assets, named, hash!);
}

describe("cdktf.out", () => {
  it("holds each content once: both stacks' staged contexts and archives are hard links to the cache", async () => {
    const outdir = path.join(tmp, "out");
    const workDir = path.join(tmp, "work");
    await synthExample(copy.dir, outdir, { workDir });
    await synthExample(copy.dir, outdir, { workDir }); // an unchanged second synth copies nothing either
    const dev = files(baseContext(outdir, "dev", "receipt-dynamo"));
    const prod = files(baseContext(outdir, "prod", "receipt-dynamo"));
    expect([...dev.keys()]).toContain("receipt_dynamo/receipt_dynamo/client.py");
    expect([...dev.keys()].sort()).toEqual([...prod.keys()].sort());
    for (const [rel, st] of dev) expect(prod.get(rel)!.ino, rel).toBe(st.ino);

    // On disk (per inode) against distinct contents: no second copy of anything.
    const all = files(path.join(outdir, "stacks"));
    const inodes = new Map([...all.values()].map((st) => [st.ino, st.size]));
    const contents = new Map([...all.keys()].map((rel) => [fs.readFileSync(path.join(outdir, "stacks", rel)).toString("base64"), all.get(rel)!.size]));
    const sum = (m: Map<unknown, number>) => [...m.values()].reduce((a, b) => a + b, 0);
    expect(sum(inodes)).toBeLessThanOrEqual(sum(contents) * 1.1);
    expect(sum(new Map([...all].map(([rel, st]) => [rel, st.size])))).toBeGreaterThan(sum(inodes) * 1.5); // the links are really shared
  });

  it("holds every file a stack references, each archive named by its SHA-256, and nothing else (what Terraform Cloud uploads)", async () => {
    // The archives' digests are read only when the stacks are rendered (the worker threads write
    // them meanwhile), so a path resolved too early would name a directory after a token.
    const outdir = path.join(tmp, "referenced-out");
    const { stacks } = await synthExample(copy.dir, outdir, { workDir: path.join(tmp, "referenced-work") });
    for (const [name, stack] of Object.entries(stacks)) {
      const stackDir = path.join(outdir, "stacks", name);
      const referenced = new Set<string>();
      for (const object of Object.values(resourcesOf(stack, "aws_s3_object"))) {
        if (typeof object.source !== "string" || !object.source.startsWith("assets/")) continue;
        const file = path.join(stackDir, object.source);
        const hash = path.basename(path.dirname(object.source));
        expect(createHash("sha256").update(fs.readFileSync(file)).digest("hex").slice(0, 32).toUpperCase(), object.source).toBe(hash);
        referenced.add(path.dirname(object.source));
      }
      for (const image of Object.values(resourcesOf(stack, "docker_image"))) {
        const context = image.build[0]?.context ?? image.build.context;
        expect(fs.statSync(path.join(stackDir, context)).isDirectory(), context).toBe(true);
        referenced.add(context);
      }
      const runner = JSON.stringify(stack).match(/assets\/runner\/[0-9A-F]{32}/)?.[0];
      expect(runner, "the runner's directory").toBeDefined();
      expect(fs.existsSync(path.join(stackDir, runner!, "runner.cjs"))).toBe(true);
      referenced.add(runner!);
      expect(referenced.size).toBeGreaterThan(2);
      // Nothing in the stack's directory that its configuration does not reference.
      const onDisk = fs.readdirSync(path.join(stackDir, "assets")).flatMap((id) => fs.readdirSync(path.join(stackDir, "assets", id)).map((hash) => `assets/${id}/${hash}`));
      expect(onDisk.sort()).toEqual([...referenced].sort());
      expect(fs.readdirSync(stackDir).sort()).toEqual(["assets", "cdk.tf.json"]);
    }
  });

  it("a staged base context keeps the executable bit (755) and makes every other file 644, whatever the checkout's modes", async () => {
    // The Docker provider sends this directory as the build context: Docker keeps file modes, so
    // a script that lost its x bit would fail in the image, and one left 600 would be unreadable there.
    const modes = copyExample({ prefix: "staged-modes-" });
    try {
      fs.chmodSync(modes.file("receipt_dynamo/receipt_dynamo/client.py"), 0o700);
      fs.chmodSync(modes.file("receipt_dynamo/receipt_dynamo/models.py"), 0o600);
      const outdir = path.join(tmp, "modes-out");
      await synthExample(modes.dir, outdir, { workDir: path.join(tmp, "modes-work") });
      const staged = files(baseContext(outdir, "prod", "receipt-dynamo"));
      expect(staged.get("receipt_dynamo/receipt_dynamo/client.py")!.mode & 0o777).toBe(0o755);
      expect(staged.get("receipt_dynamo/receipt_dynamo/models.py")!.mode & 0o777).toBe(0o644);
      expect(staged.get("receipt_dynamo/pyproject.toml")!.mode & 0o777).toBe(0o644);
    } finally {
      modes.cleanup();
    }
  });

  it("restores a staged context that was tampered with since the last synth", async () => {
    const outdir = path.join(tmp, "tampered");
    const workDir = path.join(tmp, "work");
    await synthExample(copy.dir, outdir, { workDir });
    const context = baseContext(outdir, "prod", "receipt-dynamo");
    const victim = path.join(context, "receipt_dynamo", "receipt_dynamo", "client.py");
    const expected = fs.readFileSync(victim, "utf8");
    fs.rmSync(victim);
    fs.writeFileSync(path.join(context, "receipt_dynamo", "stray.py"), "");
    await synthExample(copy.dir, outdir, { workDir });
    expect(fs.readFileSync(victim, "utf8")).toBe(expected);
    expect(fs.existsSync(path.join(context, "receipt_dynamo", "stray.py"))).toBe(false);
  });
});

describe("a base-package edit", () => {
  it("rebuilds the images built on that base without compressing or staging their unchanged contexts again", async () => {
    const edited = copyExample({ prefix: "staged-assets-edit-" });
    try {
      const outdir = path.join(tmp, "edit-out");
      const workDir = path.join(tmp, "edit-work");
      const cacheEntries = (sub: string) => new Map(fs.readdirSync(path.join(workDir, sub)).map((n) => [n, fs.statSync(path.join(workDir, sub, n))]));
      const contextObject = (result: SynthResult, image: string) => {
        const [object] = Object.values(resourcesOf(result.stacks.prod!, "aws_s3_object")).filter((o) => String(o.key).startsWith(`contexts/${image}/`));
        return object!;
      };
      const first = await synthExample(edited.dir, outdir, { workDir });
      const archivesBefore = cacheEntries("contexts");
      const stagedBefore = cacheEntries("staged");

      fs.appendFileSync(edited.file("receipt_dynamo/receipt_dynamo/models.py"), "\n# edited\n");
      const second = await synthExample(edited.dir, outdir, { workDir });

      for (const lambda of ["sync-dynamo", "create-labels", "upload-images"]) {
        // Rebuilt: its context goes up under its new content hash, which starts the build.
        expect(contextObject(second, lambda).key, lambda).not.toBe(contextObject(first, lambda).key);
        // From the same archive, byte for byte: the last synth's file, not written again.
        expect(contextObject(second, lambda).source, lambda).toBe(contextObject(first, lambda).source);
      }
      const archivesAfter = cacheEntries("contexts");
      const rewritten = [...archivesAfter].filter(([name, st]) => archivesBefore.get(name)?.mtimeMs !== st.mtimeMs).map(([name]) => name.replace(/-[0-9a-f]{16}\.zip(\.json)?$/, ""));
      // Only the Lambda that copies receipt_dynamo itself gets a new archive (and its size beside it).
      expect([...new Set(rewritten)]).toEqual(["lambda-create-labels-standalone"]);

      // receipt-label is rebuilt on the new receipt-dynamo from the same staged files; receipt-dynamo is staged again.
      const stagedAfter = cacheEntries("staged");
      const restaged = [...stagedAfter].filter(([name, st]) => stagedBefore.get(name)?.mtimeMs !== st.mtimeMs).map(([name]) => name.replace(/-[0-9a-f]{16}(\.complete)?$/, ""));
      expect([...new Set(restaged)]).toEqual(["receipt-dynamo"]);
      const dynamoContext = fs.readFileSync(path.join(baseContext(outdir, "prod", "receipt-dynamo"), "receipt_dynamo", "receipt_dynamo", "models.py"), "utf8");
      expect(dynamoContext).toContain("# edited");
    } finally {
      edited.cleanup();
    }
  });
});

describe("a 2 GB selected file", () => {
  it("is hashed and archived in bounded memory (peak RSS far below its size)", () => {
    // A sparse file: 2 GiB long, almost no disk. Hashing and zipping it streams 1 MiB chunks.
    const dir = path.join(tmp, "big");
    fs.mkdirSync(dir);
    const big = path.join(dir, "model.bin");
    const fd = fs.openSync(big, "w");
    fs.writeSync(fd, Buffer.from("end"), 0, 3, 2 ** 31 - 3);
    fs.closeSync(fd);
    const script = `
      import { digestFilesSync } from ${JSON.stringify(path.join(REPO, "src/hashing/digest.ts"))};
      import { writeContextArchiveSync } from ${JSON.stringify(path.join(REPO, "src/archive/context-archive.ts"))};
      import * as fs from "node:fs";
      const st = fs.lstatSync(${JSON.stringify(big)}, { bigint: true });
      const entry = { path: "model.bin", kind: "file", size: Number(st.size), mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino, mode: Number(st.mode) };
      const digest = digestFilesSync(${JSON.stringify(dir)}, [entry]).get("model.bin");
      const zip = writeContextArchiveSync(${JSON.stringify(dir)}, [{ entry }], ${JSON.stringify(path.join(tmp, "big.zip"))});
      process.stdout.write(JSON.stringify({ digest, zipBytes: zip.bytes, maxRss: process.resourceUsage().maxRSS * 1024 }));
    `;
    const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { cwd: REPO, encoding: "utf8", timeout: 600_000 });
    expect(r.status, r.stderr).toBe(0);
    const { digest, zipBytes, maxRss } = JSON.parse(r.stdout) as { digest: string; zipBytes: number; maxRss: number };
    const expected = spawnSync("sha256sum", [big], { encoding: "utf8" }).stdout.slice(0, 64);
    expect(digest).toBe(expected);
    expect(zipBytes).toBeGreaterThan(0);
    // Node itself, tsx and the modules take ~150 MB; the file is 2,048 MiB.
    expect(maxRss).toBeLessThan(400 * 2 ** 20);
  }, 600_000);
});
