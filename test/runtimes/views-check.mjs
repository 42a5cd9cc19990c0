// The zero-copy views' guarantee, checked in every runtime from the installed tarball (issue 12).
// test/runtimes/run.mjs copies this file into each fixture, whose views entry (views.mjs,
// src/views.js, checks/views.js) calls it and prints what it returns:
//   "views <backend> grow0=<detaches|keeps> kept=<detached|set-apart> others=<untouched|CHANGED>"
// grow0: whether this engine's WebAssembly.Memory.prototype.grow(0) detaches the views of a
// (non-shared) memory, as the JS API says. kept: what became of views kept past dispose() once
// another model was made (the package detaches them before it reuses their memory; where grow(0)
// cannot detach, their memory stays set apart). others: the later model, after garbage was
// written through the kept views.
export async function viewsCheck({ init, Model }) {
  const backend = await init();
  const memory = new WebAssembly.Memory({ initial: 1 });
  const raw = new Float32Array(memory.buffer);
  memory.grow(0);
  const grow0 = raw.length === 0 ? "detaches" : "keeps";

  const a = new Model({ inputs: 4, outputs: 3, seed: 1 });
  const kept = [a.w, a.input(8), a.forward(new Float32Array(8).fill(0.5)).z];
  a.dispose();
  const b = new Model({ inputs: 4, outputs: 3, seed: 7 });
  const before = Array.from(b.w).join();
  for (const v of kept) for (let i = 0; i < v.length; i++) v[i] = 123;
  const untouched =
    Array.from(b.w).join() === before && b.forward(new Float32Array(4).fill(1)).z.every(Number.isFinite);
  const detached = kept.every((v) => v.length === 0);
  b.dispose();
  return `views ${backend} grow0=${grow0} kept=${detached ? "detached" : "set-apart"} others=${untouched ? "untouched" : "CHANGED"}`;
}
