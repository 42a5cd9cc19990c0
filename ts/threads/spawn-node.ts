// Workers in the Node entry: node:worker_threads in Node and Deno (unref'd: a process never
// waits for them; Deno's Web Workers cannot be unref'd), Web Workers in Bun (whose
// worker_threads do not run an `eval` program; its Web Workers can be unref'd).

import * as os from "node:os";
import type { Spawn, WorkerHandle } from "./pool.js";
import { webSpawner } from "./spawn-web.js";
import { BODY } from "./worker.js";

/** The program for Node's worker_threads (`new Worker(source, { eval: true })`): a script that
 *  runs as CommonJS or, when the process runs with --input-type=module (workers inherit it), as
 *  a module: so no require() and no top-level import, but import(). Messages wait in the port
 *  until the listener is there. */
export const NODE_WORKER = `import("node:worker_threads").then(({ parentPort }) => {
const port = { post: (m) => parentPort.postMessage(m), on: (f) => parentPort.on("message", f) };
${BODY}
});`;

export async function nodeSpawner(): Promise<Spawn | string> {
  if (typeof process === "object" && process.versions?.bun !== undefined) return webSpawner();
  const { Worker } = await import("node:worker_threads");
  return (): WorkerHandle => {
    const w = new Worker(NODE_WORKER, { eval: true, name: "entrograd" });
    return {
      post: (m) => w.postMessage(m),
      listen(onMessage, onError) {
        w.on("message", onMessage);
        w.on("error", onError);
        w.on("exit", (code) => onError(`the worker exited (code ${code})`));
      },
      unref: () => w.unref(), // after the listeners (a "message" listener refs it again)
      terminate: () => void w.terminate(),
    };
  };
}

/** Logical cores (threads: "auto"). */
export function nodeCores(): number {
  return typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length;
}
