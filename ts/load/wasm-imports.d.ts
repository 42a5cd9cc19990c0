// Imports of .wasm files in the entries. tsup.config.ts says what becomes of each in dist/.

/** workerd: the runtime (wrangler, miniflare) hands over a compiled module. */
declare module "*.wasm" {
  const module: WebAssembly.Module;
  export default module;
}

/** Vercel Edge (edge-light): a compiled module, by Vercel's `?module` convention. */
declare module "*.wasm?module" {
  const module: WebAssembly.Module;
  export default module;
}

/** The web entry's fallback: the module's bytes in base64, inlined at build time. */
declare module "*.wasm?base64" {
  const base64: string;
  export default base64;
}
