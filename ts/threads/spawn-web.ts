// Workers from the Web Worker API (browsers, Bun): the program of worker.ts from a blob: URL,
// as a module worker.

import type { Spawn, WorkerHandle } from "./pool.js";
import { WEB_WORKER } from "./worker.js";

/** A starter of Web Workers, or why there is none. */
export function webSpawner(): Spawn | string {
  if (typeof Worker !== "function") return "this runtime has no Worker";
  if (typeof Blob !== "function" || typeof URL.createObjectURL !== "function") return "this runtime has no blob: URLs";
  const url = URL.createObjectURL(new Blob([WEB_WORKER], { type: "text/javascript" }));
  return (): WorkerHandle => {
    const w = new Worker(url, { type: "module", name: "entrograd" });
    return {
      post: (m) => w.postMessage(m),
      listen(onMessage, onError) {
        w.onmessage = (e) => onMessage(e.data);
        w.onerror = (e) => {
          e.preventDefault();
          onError(e.message);
        };
      },
      // Bun's workers can be unref'd (then they never keep a process alive), browsers' not.
      unref: () => (w as { unref?: () => void }).unref?.(),
      terminate: () => w.terminate(),
    };
  };
}
