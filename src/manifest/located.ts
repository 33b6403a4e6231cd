import * as path from "node:path";
import type { ImageSpec } from "./spec.ts";
import { shownPath } from "./checks.ts";

/**
 * Messages of the images.yaml app with one path base: every `file:line:` location relative to the
 * current directory (as the manifest's own are), however far the manifest's root is from it;
 * paths written in the manifest stay as written (relative to root), and say so where it matters.
 */
export function relocate(line: string, root: string, dockerfiles: Iterable<string>): string {
  for (const dockerfile of dockerfiles) {
    if (line.startsWith(`${dockerfile}:`)) return `${shownPath(path.join(root, dockerfile))}${line.slice(dockerfile.length)}`;
  }
  return line;
}

/**
 * Selection errors, each once, with every image a Dockerfile's error applies to: images sharing
 * a Dockerfile get the same error, and the one line names them all.
 */
export function selectionErrorLines(byImage: readonly { spec: ImageSpec; message: string }[], root: string): string[] {
  const dockerfiles = new Set(byImage.map((e) => e.spec.dockerfile));
  const order: string[] = [];
  const users = new Map<string, string[]>();
  for (const { spec, message } of byImage) {
    for (const text of message.split("\n")) {
      if (text.trim() === "") continue;
      if (!users.has(text)) {
        order.push(text);
        users.set(text, []);
      }
      if (text.startsWith(`${spec.dockerfile}:`)) users.get(text)!.push(`${spec.kind === "base" ? "base image" : spec.kind === "image" ? "image" : "lambda"} ${spec.name}`);
    }
  }
  return order.map((text) => {
    const names = users.get(text)!;
    return `${relocate(text, root, dockerfiles)}${names.length ? ` [Dockerfile of ${names.join(", ")}]` : ""}`;
  });
}
