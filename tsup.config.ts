// tsup builds the published package into dist/:
//   ESM  index.js (Node, Deno, Bun), browser.js (browsers, and the default), workerd.js,
//        edge-light.js, js.js (the pure-JS subpath), with .d.ts
//   CJS  index.cjs and js.cjs, with .d.cts (require() exists only in Node among our runtimes)
//   CLI  cli.js, the `entrograd` command (package.json "bin"; ESM for Node)
// The wasm-bindgen glue in pkg/{simd,scalar}/ is bundled in; the .wasm files themselves are
// copied into dist/ by `npm run build`, not by tsup.
import { rmSync, readFileSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { defineConfig, type Options } from "tsup";

type Plugin = NonNullable<Options["esbuildPlugins"]>[number];

// What becomes of the entries' .wasm imports (declared in ts/load/wasm-imports.d.ts):
// - `X.wasm?base64` (the browser entry's fallback): a module whose default export is X in
//   base64, inlined here at build time; the entry imports it dynamically, so it is a chunk of
//   its own that bundlers load only when the .wasm file itself cannot be fetched.
// - `./entrograd-simd.wasm` (workerd) and `./entrograd-simd.wasm?module` (Vercel Edge): left
//   as imports of the file next to the entry in dist/, for the user's bundler (wrangler,
//   Vercel) to turn into a compiled WebAssembly.Module.
const wasmImports: Plugin = {
  name: "entrograd-wasm-imports",
  setup(build) {
    build.onResolve({ filter: /\.wasm\?base64$/ }, (args) => {
      const file = resolve(args.resolveDir, args.path.slice(0, -"?base64".length));
      // pkg/simd/… → "wasm-simd-base64": names the chunk (no absolute paths in dist/).
      return { path: `wasm-${basename(dirname(file))}-base64`, namespace: "wasm-base64", pluginData: file };
    });
    build.onLoad({ filter: /.*/, namespace: "wasm-base64" }, (args) => {
      const file = args.pluginData as string;
      const base64 = readFileSync(file).toString("base64");
      return { contents: `export default ${JSON.stringify(base64)};\n`, loader: "js", watchFiles: [file] };
    });
    build.onResolve({ filter: /\.wasm(\?module)?$/ }, (args) => ({ path: args.path, external: true }));
  },
};

// wasm-bindgen's glue (pkg/*/entrograd_core.js) instantiates only modules of its own realm
// synchronously (`instanceof WebAssembly.Module`). A module compiled by the host of a sandbox
// (edge-runtime, Next.js's edge sandbox) is of another realm, and these sandboxes refuse to
// compile it again. So the glue also exports its imports object and its finalizer, and the
// loader instantiates such a module itself (ts/load/loader.ts, instantiateSync).
const glueExports: Plugin = {
  name: "entrograd-glue-exports",
  setup(build) {
    build.onLoad({ filter: /[\\/]pkg[\\/](simd|scalar)[\\/]entrograd_core\.js$/ }, (args) => {
      const glue = readFileSync(args.path, "utf8");
      for (const name of ["__wbg_get_imports", "__wbg_finalize_init"]) {
        if (!glue.includes(`function ${name}(`))
          throw new Error(`${args.path}: wasm-bindgen's glue has no ${name}() any more`);
      }
      return { contents: `${glue}\nexport { __wbg_get_imports, __wbg_finalize_init };\n`, loader: "js" };
    });
  },
};

// The CLI imports the library as ../index.js; at run time that is the package's own
// dist/index.js, next to dist/cli.js, so one copy of the library is loaded, not two.
const libraryExternal: Plugin = {
  name: "entrograd-library-external",
  setup(build) {
    build.onResolve({ filter: /^\.\.\/index\.js$/ }, (args) =>
      /[\\/]ts[\\/]cli[\\/]/.test(args.importer) ? { path: "./index.js", external: true } : undefined,
    );
  },
};

const common: Options = {
  target: "es2022",
  // Neutral: the package runs in browsers, workers and Node. Only the Node loader
  // (ts/load/node.ts) may import Node built-ins, and those stay imports (`node:*`, never bundled).
  platform: "neutral",
  external: [/^node:/],
  // Keep the `node:` prefix (tsup strips it by default): browser bundlers know `node:fs` is not
  // for them; a bare `fs` they try to resolve. Node >= 18 takes `node:` in import and require.
  removeNodeProtocol: false,
  esbuildPlugins: [wasmImports, glueExports],
  // Neutral leaves mainFields empty; say where a bundled dependency's entry is, should one appear.
  esbuildOptions(options) {
    options.mainFields = ["module", "main"];
  },
  dts: true,
  sourcemap: false,
  treeshake: true,
  // tsup runs the two builds below at once, so neither may clean dist/: it is emptied here,
  // once, when this file is loaded (not in watch mode, where it is loaded again on changes).
  clean: false,
  outDir: "dist",
};

if (!process.argv.includes("--watch")) rmSync("dist", { recursive: true, force: true });

export default defineConfig([
  {
    ...common,
    entry: {
      index: "ts/index.ts",
      browser: "ts/browser.ts",
      workerd: "ts/workerd.ts",
      "edge-light": "ts/edge-light.ts",
      js: "ts/js-entry.ts",
    },
    format: ["esm"],
    splitting: true,
  },
  {
    ...common,
    entry: { index: "ts/index.ts", js: "ts/js-entry.ts" },
    // With "type": "module", CJS gets .cjs (and .d.cts).
    format: ["cjs"],
    // import.meta.url in the CJS build (the Node loader finds the .wasm files next to itself).
    shims: true,
    splitting: true,
  },
  {
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
  },
]);
