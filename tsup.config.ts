// tsup builds the published package: dist/index.{js,cjs} and dist/js.{js,cjs} with their .d.ts /
// .d.cts. The wasm-bindgen glue in pkg/{simd,scalar}/ is bundled in; the .wasm files themselves
// are copied into dist/ by `npm run build`, not by tsup.
import { defineConfig } from "tsup";

export default defineConfig({
  entry: {
    index: "ts/index.ts",
    js: "ts/js/index.ts",
  },
  format: ["esm", "cjs"],
  // With "type": "module", ESM gets .js and CJS .cjs (and .d.ts / .d.cts).
  dts: true,
  target: "es2022",
  // Neutral: the package runs in browsers, workers and Node. Only the Node loader
  // (ts/load/node.ts) may import Node built-ins, and those stay imports (`node:*`, never bundled).
  platform: "neutral",
  external: [/^node:/],
  // Keep the `node:` prefix (tsup strips it by default): browser bundlers know `node:fs` is not
  // for them; a bare `fs` they try to resolve. Node >= 18 takes `node:` in import and require.
  removeNodeProtocol: false,
  // import.meta.url in the CJS build (the Node loader finds the .wasm files next to itself).
  shims: true,
  // Neutral leaves mainFields empty; say where a bundled dependency's entry is, should one appear.
  esbuildOptions(options) {
    options.mainFields = ["module", "main"];
  },
  splitting: true,
  sourcemap: false,
  treeshake: true,
  clean: true,
  outDir: "dist",
});
