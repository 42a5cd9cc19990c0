// The threaded backend (issue 15), checked in every runtime from the installed tarball.
// test/runtimes/run.mjs copies this file next to views-check.mjs; each fixture's views entry
// calls it after the views check and prints what it returns:
//   "threads <n> model=<m> same=<yes|NO> others=<untouched|CHANGED> helped=<yes|no> why=<reason>"
// n: threads() after init({ threads: 2 }). model: the threads a new model took. same: two
// threads gave the one-thread parameters bit for bit. others: garbage written through views
// kept past dispose() of a threaded model left the next one alone (a shared memory is never
// detached). helped: a worker ran part of the calls. why: threadInfo().reason.
export async function threadsCheck({ init, Model, SGD, threads, threadInfo }) {
  await init({ threads: 2 });
  const [inputs, outputs, batch] = [512, 64, 128];
  const x = Float32Array.from({ length: batch * inputs }, (_, i) => ((i * 37) % 17) / 8 - 1);
  const train = (n, steps) => {
    const m = new Model({ inputs, outputs, seed: 3, threads: n });
    const sgd = new SGD(m, { lr: 0.1, momentum: 0.9 });
    for (let k = 0; k < steps; k++) sgd.step(x);
    const out = { w: Array.from(m.w).join(), used: m.threads };
    m.dispose();
    return out;
  };
  const one = train(1, 5);
  const two = train(2, 5);
  // A worker that wakes late may miss a few calls: give it up to 100 more steps to take part.
  for (let k = 0; k < 20 && threadInfo().helperChunks === 0 && threads() > 1; k++) train(2, 5);
  const a = new Model({ inputs, outputs, seed: 1 });
  const kept = [a.w, a.input(batch), a.forward(x).z];
  a.dispose();
  const b = new Model({ inputs, outputs, seed: 7 });
  const before = Array.from(b.w).join();
  for (const v of kept) for (let i = 0; i < v.length; i++) v[i] = 123;
  const untouched = Array.from(b.w).join() === before && b.forward(x).z.every(Number.isFinite);
  b.dispose();
  const info = threadInfo();
  return (
    `threads ${threads()} model=${two.used} same=${one.w === two.w ? "yes" : "NO"} ` +
    `others=${untouched ? "untouched" : "CHANGED"} helped=${info.helperChunks > 0 ? "yes" : "no"} why=${info.reason}`
  );
}
