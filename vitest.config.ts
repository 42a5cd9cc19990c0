// Tests run against the built package (dist/), as users get it: `entrograd` and `entrograd/js`
// resolve to dist/, which `npm test`'s pretest (scripts/setup.sh) builds.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const dist = (file: string): string => fileURLToPath(new URL(`./dist/${file}`, import.meta.url));

export default defineConfig({
  resolve: {
    // Exact matches: a plain "entrograd" alias would also rewrite "entrograd/js".
    alias: [
      { find: /^entrograd$/, replacement: dist("index.js") },
      { find: /^entrograd\/js$/, replacement: dist("js.js") },
    ],
  },
  test: {
    include: ["test/**/*.test.ts"],
    environment: "node",
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Timing-sensitive checks are rare here; a failure should be a failure, not a retry.
    retry: 0,
    // A stray .only fails the run everywhere, not only under CI (Biome's noFocusedTests is off: see biome.jsonc).
    allowOnly: false,
  },
});
