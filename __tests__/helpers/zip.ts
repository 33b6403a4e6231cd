import * as fs from "node:fs";
import { inflateRawSync } from "node:zlib";
import { expect } from "vitest";

/** One entry of a zip's central directory, with its data. */
export interface ZipEntry {
  name: string;
  /** Unix mode from the external attributes (type and permission bits). */
  mode: number;
  /** DOS date and time words as stored. */
  dosTime: number;
  dosDate: number;
  data: Buffer;
}

/** A minimal zip reader: the central directory, then each entry's local data (stored or deflated). */
export function readZip(file: string): ZipEntry[] {
  const buf = fs.readFileSync(file);
  const eocd = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  expect(eocd, `${file} has no end-of-central-directory record`).toBeGreaterThanOrEqual(0);
  const count = buf.readUInt16LE(eocd + 10);
  let at = buf.readUInt32LE(eocd + 16);
  const entries: ZipEntry[] = [];
  for (let i = 0; i < count; i++) {
    expect(buf.readUInt32LE(at)).toBe(0x02014b50);
    const method = buf.readUInt16LE(at + 10);
    const dosTime = buf.readUInt16LE(at + 12);
    const dosDate = buf.readUInt16LE(at + 14);
    const compressedSize = buf.readUInt32LE(at + 20);
    const nameLength = buf.readUInt16LE(at + 28);
    const extraLength = buf.readUInt16LE(at + 30);
    const commentLength = buf.readUInt16LE(at + 32);
    const external = buf.readUInt32LE(at + 38);
    const local = buf.readUInt32LE(at + 42);
    const name = buf.toString("utf8", at + 46, at + 46 + nameLength);
    const dataStart = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    const raw = buf.subarray(dataStart, dataStart + compressedSize);
    entries.push({ name, mode: external >>> 16, dosTime, dosDate, data: method === 8 ? inflateRawSync(raw) : Buffer.from(raw) });
    at += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}
