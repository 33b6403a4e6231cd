import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    // The examples import the package by name, as a user's app does; here that is the sources.
    alias: { "lambda-image-builds": fileURLToPath(new URL("./src/index.ts", import.meta.url)) },
  },
  test: {
    include: ["__tests__/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
  },
});
