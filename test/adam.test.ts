// Adam with decoupled weight decay (AdamW) against the float64 twin in reference.ts.
import { beforeAll, describe, expect, it } from "vitest";
import * as pkg from "entrograd";
import * as ref from "./reference";
import { BACKENDS, batchX, bits, expectClose, expectCloseNumber, paramsOf, targetsFor } from "./helpers";

beforeAll(async () => {
  await pkg.init();
});

const CASES: { name: string; options: ref.AdamOptions }[] = [
  { name: "defaults", options: { lr: 0.01 } },
  { name: "betas and eps", options: { lr: 0.02, betas: [0.8, 0.99], eps: 1e-6 } },
  { name: "decoupled weight decay", options: { lr: 0.01, weightDecay: 0.1 } },
  { name: "groups", options: { lr: 0.01, weightDecay: 0.05, groups: { g: { lr: 0.002 }, b: { frozen: true } } } },
];

describe.each(BACKENDS)("Adam on %s", (backend) => {
  // Adam divides by √v̂, so a float32 gradient error δg moves a step by about lr·δg/|g|. With the
  // cross-entropy objective the gradients here stay well away from 0, and 20 steps are compared
  // to 2e−4·lr·step of drift: a missing bias correction (×10 at step 1), L2 instead of
  // decoupled decay, or a wrong β moves the parameters by orders of magnitude more.
  it.each(CASES)("$name: 20 steps follow the float64 reference", ({ options }) => {
    const rng = new ref.Rng(404);
    const m = new pkg.Model({ inputs: 5, outputs: 3, seed: 21, backend });
    const data = Array.from({ length: 4 }, () => ({ x: batchX(rng, 8, 5), targets: targetsFor(rng, 24) }));
    const { groups, ...rest } = options;
    const opt = new pkg.Adam(m, groups ? { ...rest, groups } : rest);
    const twin = new ref.ReferenceAdam(paramsOf(m), options);
    const b0 = bits(m.b);
    for (let s = 0; s < 20; s++) {
      const { x, targets } = data[s % 4];
      const call = { objective: { crossEntropy: 1, entropy: 0.1 }, targets };
      const got = opt.step(x, call);
      const want = twin.step(x, call);
      expectCloseNumber(got.loss, want.loss, 1e-4 * Math.abs(want.loss), `step ${s} loss`);
      for (const k of ["w", "g", "b"] as const) {
        if (options.groups?.[k]?.frozen) {
          expect(Array.from(bits(m[k])), `frozen ${k}`).toEqual(Array.from(b0));
          continue;
        }
        const lr = options.groups?.[k]?.lr ?? options.lr;
        expectClose(Array.from(m[k]), twin.p[k], 2e-4 * lr * (s + 1) + 1e-6, `step ${s} ${k}`);
      }
    }
    m.dispose();
  });
});
