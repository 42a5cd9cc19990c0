// The threads of the browser entry: a chunk of its own, loaded by init({ threads }) only. The
// module is fetched from next to this file (bundlers copy it: the URL stays a literal), else
// taken from its copy inlined in JS.

import { webSpawner } from "./spawn-web.js";
import { startThreads } from "./start.js";

const isWasm = (b: Uint8Array): boolean => b.length >= 8 && [0, 97, 115, 109, 1, 0, 0, 0].every((v, i) => b[i] === v);

async function bytes(): Promise<Uint8Array> {
  try {
    const response = await fetch(new URL("./entrograd-threads.wasm", import.meta.url));
    const b = new Uint8Array(await response.arrayBuffer());
    if (response.ok && isWasm(b)) return b;
  } catch {
    // the inlined copy below
  }
  const { inlinedThreads } = await import("./inline.js");
  return inlinedThreads();
}

export function start(wanted: number | "auto"): Promise<void> {
  return startThreads(wanted, {
    bytes,
    spawner: async () => webSpawner(),
    cores: () =>
      typeof navigator === "object" && navigator.hardwareConcurrency > 0 ? navigator.hardwareConcurrency : 1,
  });
}
