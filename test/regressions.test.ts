// Regression tests for bugs the property tests and fuzzers of issue 7 found. Each names the
// property that found it and the input it shrank to.
import { beforeAll, describe, expect, it } from "vitest";
import { entropyBits, init, Model } from "entrograd";
import { BACKENDS } from "./helpers";

beforeAll(async () => {
  await init();
});

describe("regressions", () => {
  // property.kernels: "per-unit entropy lies in [0, 1]" found entropyBits(-1.076e-8) =
  // 1.0000000000000002 (and the kernels' 1.0000001 at z = -2.712e-6): roundings next to z = 0.
  it("the entropy of one unit never exceeds 1 bit, on every backend and in entropyBits", () => {
    const zs = [-1.0760903279560807e-8, -1.2834322049570801e-8, 1.2962135365057748e-8, 1.0995849564210403e-8,
      -2.712015e-6, 3.2704775e-4, -6.482005e-5];
    for (const z of zs) expect(entropyBits(z), `entropyBits(${z})`).toBeLessThanOrEqual(1);
    expect(entropyBits(NaN)).toBeNaN();
    for (const backend of BACKENDS) {
      const m = Model.from({ inputs: 1, outputs: 1, w: [1], backend });
      const x = Float32Array.from(zs);
      const h = m.entropy(x, { reduction: "none" });
      for (let k = 0; k < h.length; k++) expect(h[k], `${backend} H(${zs[k]})`).toBeLessThanOrEqual(1);
      for (const z of zs) expect(m.entropy(Float32Array.of(z)), `${backend} mean H(${z})`).toBeLessThanOrEqual(1);
      m.dispose();
    }
  });
});
