// `entrograd info`: the runtime, which backends work here, and WebAssembly SIMD.

import { backend, init, Model, type BackendName } from "../index.js";

// The smallest module using a SIMD opcode: validate() tells whether the engine has SIMD128.
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11,
]);

export interface Info {
  version: string;
  runtime: string;
  platform: string;
  webAssembly: boolean;
  simd: boolean;
  backends: Record<BackendName, boolean>;
  default: BackendName;
}

function runtime(): string {
  const g = globalThis as { Deno?: { version: { deno: string } }; Bun?: { version: string } };
  if (g.Deno) return `Deno ${g.Deno.version.deno}`;
  if (g.Bun) return `Bun ${g.Bun.version}`;
  return `Node.js ${process.version}`;
}

export async function info(version: string): Promise<Info> {
  const webAssembly = typeof WebAssembly === "object" && typeof WebAssembly.instantiate === "function";
  let simd = false;
  try {
    simd = webAssembly && WebAssembly.validate(SIMD_PROBE);
  } catch {
    simd = false;
  }
  try {
    await init();
  } catch {
    // No usable WebAssembly: the js backend still works.
  }
  const backends = {} as Record<BackendName, boolean>;
  for (const name of ["wasm-simd", "wasm", "js"] as const) {
    try {
      new Model({ inputs: 2, outputs: 1, backend: name }).dispose();
      backends[name] = true;
    } catch {
      backends[name] = false;
    }
  }
  return {
    version,
    runtime: runtime(),
    platform: `${process.platform} ${process.arch}`,
    webAssembly,
    simd,
    backends,
    default: backend(),
  };
}

export function formatInfo(i: Info): string {
  const yes = (b: boolean) => (b ? "yes" : "no");
  return [
    `entrograd ${i.version}`,
    `runtime      ${i.runtime} (${i.platform})`,
    `WebAssembly  ${yes(i.webAssembly)}`,
    `SIMD128      ${yes(i.simd)}`,
    `backends     ${Object.entries(i.backends)
      .map(([k, v]) => `${k} ${v ? "available" : "unavailable"}`)
      .join(", ")}`,
    `default      ${i.default}`,
  ].join("\n");
}
