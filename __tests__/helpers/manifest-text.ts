import { expect } from "vitest";

/** Replaces `from` (which must occur) in a manifest's text. */
export function edit(text: string, from: string, to: string): string {
  expect(text, `the example manifest no longer contains ${JSON.stringify(from)}`).toContain(from);
  return text.replace(from, to);
}

/** 1-based line of the first line containing `marker`. */
export function lineOf(text: string, marker: string): number {
  const index = text.split("\n").findIndex((l) => l.includes(marker));
  expect(index, `marker ${JSON.stringify(marker)} not found`).toBeGreaterThanOrEqual(0);
  return index + 1;
}
