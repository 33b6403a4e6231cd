import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { ImageAnalysis } from "../analyze.ts";
import { fileListLines } from "../hashing/image-hash.ts";
import { stableStringify } from "./stable-json.ts";

/**
 * What a synth built, written next to the synthesized stacks so `plan` can tell what the next
 * synth would rebuild and why. Only hashes and paths: no timestamps, no absolute paths.
 */
export const SNAPSHOT_FILE = "images.snapshot.json";
const FORMAT = "lambda-images-snapshot";
const VERSION = 1;

export interface ImageSnapshot {
  readonly kind: "base" | "lambda";
  readonly name: string;
  readonly hash: string;
  readonly tag: string;
  /** Name of the base image it is built FROM. */
  readonly baseImage: string | null;
  /** That base image's content hash, at this synth. */
  readonly baseImageHash: string | null;
  readonly platforms: readonly string[];
  readonly dockerfile: string;
  /** SHA-256 of the Dockerfile text. */
  readonly dockerfileSha256: string;
  /** SHA-256 of the build args (sorted JSON). */
  readonly buildArgsSha256: string;
  /** Root-relative path → `f:<sha256>`, `x:<sha256>` (executable) or `l:<link target>`. */
  readonly files: Readonly<Record<string, string>>;
}

export interface StackSnapshot {
  /** By `<kind>:<name>`. */
  readonly images: Readonly<Record<string, ImageSnapshot>>;
}

export interface Snapshot {
  readonly format: typeof FORMAT;
  readonly version: typeof VERSION;
  readonly stacks: Readonly<Record<string, StackSnapshot>>;
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/** The snapshot of an analysis for the given stacks. Pure. */
export function buildSnapshot(analysis: ImageAnalysis, stacks: readonly string[]): Snapshot {
  const hashOf = new Map(analysis.images.map((i) => [`${i.spec.kind}:${i.spec.name}`, i.hash]));
  const out: Record<string, StackSnapshot> = {};
  for (const stack of stacks) {
    const images: Record<string, ImageSnapshot> = {};
    for (const image of analysis.images) {
      const { spec, selection } = image;
      const files: Record<string, string> = {};
      for (const line of fileListLines(selection.files, analysis.digests)) {
        const [file, type, value] = line.split("\0") as [string, string, string];
        files[file] = `${type}:${value}`;
      }
      images[`${spec.kind}:${spec.name}`] = {
        kind: spec.kind,
        name: spec.name,
        hash: image.hash,
        tag: analysis.tagFor(image, stack),
        baseImage: spec.baseImage ?? null,
        baseImageHash: spec.baseImage ? (hashOf.get(`base:${spec.baseImage}`) ?? null) : null,
        platforms: [...spec.platforms],
        dockerfile: spec.dockerfile,
        dockerfileSha256: sha256(selection.dockerfileText),
        buildArgsSha256: sha256(JSON.stringify(Object.entries(spec.buildArgs).sort(([a], [b]) => (a < b ? -1 : 1)))),
        files,
      };
    }
    out[stack] = { images };
  }
  return { format: FORMAT, version: VERSION, stacks: out };
}

/** Writes `<outdir>/images.snapshot.json` atomically (stable text: sorted keys). */
export function writeSnapshot(outdir: string, snapshot: Snapshot): string {
  fs.mkdirSync(outdir, { recursive: true });
  const file = path.join(outdir, SNAPSHOT_FILE);
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  fs.writeFileSync(tmp, `${stableStringify(snapshot)}\n`);
  fs.renameSync(tmp, file);
  return file;
}

export type ReadSnapshotResult =
  | { readonly status: "found"; readonly file: string; readonly snapshot: Snapshot }
  | { readonly status: "missing" | "unreadable"; readonly file: string; readonly reason: string };

/** Reads the snapshot the last synth left in `outdir`. Never throws. */
export function readSnapshot(outdir: string): ReadSnapshotResult {
  const file = path.join(outdir, SNAPSHOT_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return { status: "missing", file, reason: `no ${SNAPSHOT_FILE} in ${outdir}: not synthesized yet (or by a version that did not write one)` };
  }
  try {
    const data = JSON.parse(text) as Partial<Snapshot>;
    if (data.format !== FORMAT || data.version !== VERSION || typeof data.stacks !== "object" || data.stacks === null) {
      return { status: "unreadable", file, reason: `${file} is not a version ${VERSION} ${FORMAT}` };
    }
    return { status: "found", file, snapshot: data as Snapshot };
  } catch (error) {
    return { status: "unreadable", file, reason: `${file} is not valid JSON (${(error as Error).message})` };
  }
}
