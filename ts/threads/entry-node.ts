// The threads of the Node entry (Node, Deno, Bun): a chunk of its own, loaded by init({ threads })
// only. The module is read from next to the bundle in dist/, else from its copy inlined in JS.

import { readFileSync } from "node:fs";
import { nodeCores, nodeSpawner } from "./spawn-node.js";
import { startThreads } from "./start.js";

async function bytes(): Promise<Uint8Array> {
  try {
    return readFileSync(new URL("./entrograd-threads.wasm", import.meta.url));
  } catch {
    const { inlinedThreads } = await import("./inline.js");
    return inlinedThreads();
  }
}

export function start(wanted: number | "auto"): Promise<void> {
  return startThreads(wanted, { bytes, spawner: nodeSpawner, cores: nodeCores });
}
