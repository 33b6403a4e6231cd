import type { ImageAnalysis } from "../analyze.ts";
import { contextArchiveSizes, dockerContextBytes } from "../archive/context-archive.ts";
import { buildSnapshot, fileCount, type ImageSnapshot, type ReadSnapshotResult, type Snapshot } from "./snapshot.ts";

/** Why an image will be rebuilt. */
export type PlanReason =
  | { readonly type: "files"; readonly added: readonly string[]; readonly removed: readonly string[]; readonly changed: readonly string[] }
  | { readonly type: "dockerfile"; readonly from: string; readonly to: string }
  | { readonly type: "platforms"; readonly from: readonly string[]; readonly to: readonly string[] }
  | { readonly type: "buildArgs" }
  /** `switched`: built FROM another base image; `rebuilt`: its base image will be rebuilt. */
  | { readonly type: "baseImage"; readonly change: "switched" | "rebuilt"; readonly from: string | null; readonly to: string | null }
  | { readonly type: "tag"; readonly from: string; readonly to: string }
  /** The hash changed and none of the recorded inputs did: the hash layout itself changed. */
  | { readonly type: "hashFormat" };

export type PlanStatus = "new" | "rebuild" | "unchanged";

export interface PlannedImage {
  readonly kind: "base" | "lambda";
  readonly name: string;
  readonly tag: string;
  readonly previousTag: string | null;
  readonly hash: string;
  /** Files in the build context (the Dockerfile included). */
  readonly files: number;
  /** Bytes of the compressed context archive; null when not measured. */
  readonly contextBytes: number | null;
  readonly baseImage: string | null;
  readonly platforms: readonly string[];
  readonly status: PlanStatus;
  readonly reasons: readonly PlanReason[];
}

export interface Plan {
  /** Whether the last synth's snapshot was there to compare with. */
  readonly snapshot: ReadSnapshotResult["status"];
  readonly stacks: readonly { readonly name: string; readonly images: readonly PlannedImage[] }[];
  readonly summary: { readonly images: number; readonly new: number; readonly rebuild: number; readonly unchanged: number };
}

/** Compares the current analysis with the last synth's snapshot. Pure. */
export function computePlan(
  analysis: ImageAnalysis,
  stacks: readonly string[],
  previous: ReadSnapshotResult,
  contextBytes: ReadonlyMap<string, number> = new Map(),
): Plan {
  return comparePlans(buildSnapshot(analysis, stacks), previous, contextBytes);
}

/**
 * What the next synth (`current`) rebuilds compared with the last one (`previous`), per stack and
 * image, with the reasons. Pure: both front ends end here, images.yaml with a fresh analysis,
 * a construct app with the snapshot of a synth into a scratch directory.
 */
export function comparePlans(current: Snapshot, previous: ReadSnapshotResult, contextBytes: ReadonlyMap<string, number> = new Map()): Plan {
  const counts = { images: 0, new: 0, rebuild: 0, unchanged: 0 };
  const planned = Object.keys(current.stacks)
    .sort()
    .map((stack) => {
      const before = previous.status === "found" ? previous.snapshot.stacks[stack]?.images : undefined;
      const now = current.stacks[stack]!.images;
      const images = Object.keys(now)
        .sort()
        .map((key): PlannedImage => {
          const image = now[key]!;
          const was = before?.[key];
          const reasons = was ? diffImage(was, image) : [];
          const status: PlanStatus = !was ? "new" : reasons.length > 0 ? "rebuild" : "unchanged";
          counts.images++;
          counts[status]++;
          return {
            kind: image.kind,
            name: image.name,
            tag: image.tag,
            previousTag: was?.tag ?? null,
            hash: image.hash,
            files: fileCount(image),
            contextBytes: contextBytes.get(key) ?? image.contextBytes ?? null,
            baseImage: image.baseImage,
            platforms: image.platforms,
            status,
            reasons,
          };
        });
      return { name: stack, images };
    });
  return { snapshot: previous.status, stacks: planned, summary: counts };
}

function diffImage(was: ImageSnapshot, now: ImageSnapshot): PlanReason[] {
  const reasons: PlanReason[] = [];
  const dockerfileChanged = was.dockerfile !== now.dockerfile || was.dockerfileSha256 !== now.dockerfileSha256;
  const added: string[] = [];
  const removed: string[] = [];
  const changed: string[] = [];
  // The hash covers every file's path, type and digest: equal hashes, equal files (the common case, and the costly one to compare).
  if (was.hash !== now.hash) for (const [file, value] of Object.entries(now.files)) {
    if (dockerfileChanged && (file === now.dockerfile || file === was.dockerfile)) continue;
    if (!(file in was.files)) added.push(file);
    else if (was.files[file] !== value) changed.push(file);
  }
  if (was.hash !== now.hash) for (const file of Object.keys(was.files)) {
    if (dockerfileChanged && (file === now.dockerfile || file === was.dockerfile)) continue;
    if (!(file in now.files)) removed.push(file);
  }
  if (added.length || removed.length || changed.length) {
    reasons.push({ type: "files", added: added.sort(), removed: removed.sort(), changed: changed.sort() });
  }
  if (dockerfileChanged) reasons.push({ type: "dockerfile", from: was.dockerfile, to: now.dockerfile });
  if (was.platforms.join(",") !== now.platforms.join(",")) reasons.push({ type: "platforms", from: was.platforms, to: now.platforms });
  if (was.buildArgsSha256 !== now.buildArgsSha256) reasons.push({ type: "buildArgs" });
  if (was.baseImage !== now.baseImage) reasons.push({ type: "baseImage", change: "switched", from: was.baseImage, to: now.baseImage });
  else if (was.baseImageHash !== now.baseImageHash) reasons.push({ type: "baseImage", change: "rebuilt", from: was.baseImage, to: now.baseImage });
  if (was.hash !== now.hash && reasons.length === 0) reasons.push({ type: "hashFormat" });
  // A new hash gives a new content tag anyway; a new tag for the same content is a reason of its own
  // (e.g. useStaticBaseImage toggled, or a git tag once the inputs are committed).
  if (was.hash === now.hash && was.tag !== now.tag) reasons.push({ type: "tag", from: was.tag, to: now.tag });
  return reasons;
}

/**
 * Bytes of each image's build context as it travels, without compressing anything (plan uploads
 * nothing): for a CodeBuild-built image, its compressed archive in S3 when synth has built it
 * (the size recorded beside the archive it keeps in the cache directory, content-addressed, so an
 * unchanged image costs a read) or has compressed every one of its files (summed from the
 * compressed streams' sizes), else unmeasured; for a Docker-built base, the files Docker
 * receives (its build context is an uncompressed tar).
 */
export function measureContextBytes(analysis: ImageAnalysis, cacheDir: string): Map<string, number> {
  const sizes = new Map<string, number>();
  const archived = analysis.images.filter((image) => image.spec.builder !== "docker");
  const bytes = contextArchiveSizes(cacheDir, archived, analysis.manifest.root, analysis.digests);
  archived.forEach((image, i) => {
    if (bytes[i] !== undefined) sizes.set(`${image.spec.kind}:${image.spec.name}`, bytes[i]!);
  });
  for (const image of analysis.images) if (image.spec.builder === "docker") sizes.set(`${image.spec.kind}:${image.spec.name}`, dockerContextBytes(image));
  return sizes;
}

export function describeReason(reason: PlanReason): string[] {
  switch (reason.type) {
    case "files":
      return [
        ...reason.added.map((f) => `added ${f}`),
        ...reason.removed.map((f) => `removed ${f}`),
        ...reason.changed.map((f) => `changed ${f}`),
      ];
    case "dockerfile":
      return [reason.from === reason.to ? `Dockerfile ${reason.to} changed` : `Dockerfile is now ${reason.to} (was ${reason.from})`];
    case "platforms":
      return [`platforms ${reason.from.join(", ")} -> ${reason.to.join(", ")}`];
    case "buildArgs":
      return ["build args changed"];
    case "baseImage":
      return reason.change === "switched"
        ? [`base image ${reason.from ?? "(none)"} -> ${reason.to ?? "(none)"}`]
        : [`base image ${reason.to} will be rebuilt`];
    case "tag":
      return [`tag ${reason.from} -> ${reason.to}`];
    case "hashFormat":
      return ["the content hash format changed"];
  }
}

export function formatBytes(bytes: number | null): string {
  if (bytes === null) return "-";
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** The plan as a table for people. */
export function formatPlanTable(plan: Plan, snapshotNote: string): string {
  const lines: string[] = [];
  if (plan.snapshot !== "found") lines.push(`${snapshotNote}; every image is new.`, "");
  const header = ["IMAGE", "TAG", "FILES", "CONTEXT", "BASE", "PLATFORMS", "STATUS"];
  for (const stack of plan.stacks) {
    const rows = stack.images.map((i) => [
      `${i.kind} ${i.name}`,
      i.tag,
      String(i.files),
      formatBytes(i.contextBytes),
      i.baseImage ?? "-",
      i.platforms.join(","),
      i.status,
    ]);
    const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
    const row = (cells: string[]) => cells.map((cell, c) => (c === 2 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join("  ").trimEnd();
    lines.push(`stack ${stack.name}`, `  ${row(header)}`);
    stack.images.forEach((image, n) => {
      lines.push(`  ${row(rows[n]!)}`);
      for (const reason of image.reasons) for (const text of describeReason(reason)) lines.push(`      - ${text}`);
    });
    lines.push("");
  }
  const { images, rebuild, unchanged } = plan.summary;
  lines.push(`${rebuild} to rebuild, ${plan.summary.new} new, ${unchanged} unchanged (${images} images in ${plan.stacks.length} stacks).`);
  return lines.join("\n");
}
