import * as fs from "node:fs";
import { manifestJsonSchema } from "../manifest/schema.ts";

/** The manifest's JSON Schema, as committed in `images.schema.json`. */
export function schemaText(): string {
  return `${JSON.stringify(manifestJsonSchema(), null, 2)}\n`;
}

export function writeSchema(file: string): void {
  fs.writeFileSync(file, schemaText());
}
