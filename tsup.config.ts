// tsup builds the published package: dist/index.{js,cjs} and dist/js.{js,cjs} with their .d.ts /
// .d.cts. The wasm-bindgen glue in pkg/{simd,scalar}/ is bundled in; the .wasm files themselves
// are copied into dist/ by `npm run build`, not by tsup. A second build makes the CLI,
// dist/cli.js (package.json "bin").
import { defineConfig, type Options } from "tsup";

// The CLI imports the library as ../index.js; at run time that is the package's own
// dist/index.js, next to dist/cli.js, so one copy of the library is loaded, not two.
const libraryExternal: NonNullable<Options["esbuildPlugins"]>[number] = {
  name: "entrograd-library-external",
  setup(build) {
    build.onResolve({ filter: /^\.\.\/index\.js$/ }, (args) =>
      /[\\/]ts[\\/]cli[\\/]/.test(args.importer) ? { path: "./index.js", external: true } : undefined,
    );
  },
};

export default defineConfig([{
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
  // Everything but the CLI, which the second build writes (the two run at the same time).
  clean: ["!cli.js"],
  outDir: "dist",
}, {
  entry: { cli: "ts/cli/index.ts" },
  format: ["esm"],
  platform: "node",
  target: "node18",
  // tsup marks a file that starts with a shebang executable.
  banner: { js: "#!/usr/bin/env node" },
  // commander and cli-progress are runtime dependencies: imported, not bundled.
  external: [/^node:/, "commander", "cli-progress"],
  removeNodeProtocol: false,
  esbuildPlugins: [libraryExternal],
  dts: false,
  splitting: false,
  sourcemap: false,
  clean: false,
  outDir: "dist",
}]);
