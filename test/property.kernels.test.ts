// Property tests of the calls (issue 7), fast-check, 10⁴ cases each: random shapes (sizes
// around every SIMD width and tile), values that include huge, tiny, subnormal and ±0 numbers,
// random objectives and reductions, on every backend. Invariants: results match the float64
// reference; wasm-simd and wasm agree bit for bit (the JS core within the reference's
// tolerance); nothing non-finite leaves a call, and NON_FINITE comes only where f32 can overflow;
// bad inputs give the same code on every backend, in the ABI's precedence, and change nothing.
import fc from "fast-check";
import { afterAll, beforeAll, describe, it } from "vitest";
import { entropyBits, init, Model, SGD, sigmoid } from "entrograd";
import * as ref from "./reference";
import { BACKENDS, type Backend, bits, defined, paramsOf } from "./helpers";
import {
  F32_MAX,
  RUNS,
  allFinite,
  attempt,
  attemptValue,
  check,
  close,
  floats,
  mayOverflow,
  objective,
  reduction,
  regime,
  sameBits,
  settings,
  shape,
  targets,
  tolerancesWithFloor,
  uniform,
  EPS32,
  MIN_SUB,
} from "./property.helpers";

beforeAll(async () => {
  await init();
});

/** One model per backend and size, reused across cases (parameters are set per case). */
const pool = new Map<string, InstanceType<typeof Model>>();
function model(backend: Backend, inputs: number, outputs: number): InstanceType<typeof Model> {
  const key = `${backend}:${inputs}x${outputs}`;
  let m = pool.get(key);
  if (m === undefined) {
    m = new Model({ inputs, outputs, backend, init: "zeros" });
    pool.set(key, m);
  }
  return m;
}
afterAll(() => {
  for (const m of pool.values()) m.dispose();
  pool.clear();
});

const caseArb = fc.tuple(shape, regime).chain(([s, r]) =>
  fc.record({
    s: fc.constant(s),
    r: fc.constant(r),
    x: floats(r, s.batch * s.inputs, 2),
    w: floats(r, s.outputs * s.inputs, 1 / Math.sqrt(s.inputs)),
    g: floats(r, s.outputs * s.inputs, 0.3),
    b: floats(r, s.outputs, 0.5),
    y: targets(s.batch * s.outputs),
    objective,
    reduction,
  }),
);

interface Outcome {
  code: string | null;
  z?: Float32Array;
  d?: Float32Array;
  units?: Float32Array;
  meanH?: number;
  loss?: number;
  entropy?: number;
  dw?: Float32Array;
  db?: Float32Array;
  unitLoss?: Float32Array;
}

describe("calls against the float64 reference", () => {
  it(`forward, entropy, gradients: reference, wasm-simd = wasm bitwise, no NaN out (${RUNS} cases)`, () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const { inputs: I, outputs: O, batch: B } = c.s;
        const p: ref.Params = { inputs: I, outputs: O, w: c.w, g: c.g, b: c.b };
        const a = ref.weightsOf(c.objective);
        const opts = {
          objective: c.objective,
          targets: a.crossEntropy !== 0 ? c.y : undefined,
          reduction: c.reduction,
        };
        const e = ref.evaluate(p, c.x, opts);
        const t = tolerancesWithFloor(p, c.x, e, opts);
        // The mean entropy and its tolerance: the sum's divided by the batch (both are linear in
        // the reduction's scale), so one reference evaluation serves both.
        const perSample = c.reduction === "mean" ? 1 : 1 / B;
        const eh = { entropy: e.entropy * perSample },
          th = { entropy: t.entropy * perSample };
        const scale = c.reduction === "mean" ? 1 / B : 1;
        const overForward = mayOverflow(p, c.x, { entropy: 0, crossEntropy: 0 }, 0);
        const over = mayOverflow(p, c.x, a, scale);
        const outcomes = new Map<Backend, Outcome[]>();
        for (const backend of BACKENDS) {
          const m = model(backend, I, O);
          m.w.set(c.w);
          m.g.set(c.g);
          m.b.set(c.b);
          const label = `${backend} ${I}×${O} batch ${B} (${c.r})`;
          const out: Outcome[] = [];
          // forward
          const [fv, fErr] = attemptValue(() => {
            const r = m.forward(c.x);
            return { z: r.z.slice(), d: r.d.slice() };
          });
          const f: Outcome = { code: fErr?.code ?? null, ...fv };
          if (fv !== undefined) {
            close(fv.z, e.z, t.z, `${label} z`);
            close(fv.d, e.d, t.d, `${label} d`);
          } else
            check(f.code === "NON_FINITE" && overForward, () => `${label}: forward threw ${f.code} without overflow`);
          out.push(f);
          // entropy, per unit and mean
          const [hv, hErr] = attemptValue(() => {
            const units = m.entropy(c.x, { reduction: "none" });
            return { units, meanH: m.entropy(c.x) };
          });
          const h: Outcome = { code: hErr?.code ?? null, ...hv };
          if (hv !== undefined) {
            check(
              hv.units.every((v) => v >= 0 && v <= 1),
              () => `${label}: H outside [0, 1]: ${hv.units}`,
            );
            close(hv.units, e.unitEntropy, t.unitEntropy, `${label} H per unit`);
            close([hv.meanH], [eh.entropy], [th.entropy], `${label} mean H`);
            // At most O bits, up to the float32 rounding of the mean's 1/batch (the core's scale).
            check(hv.meanH <= O * (1 + EPS32), () => `${label}: mean H ${hv.meanH} above ${O} bits`);
          } else
            check(h.code === "NON_FINITE" && overForward, () => `${label}: entropy threw ${h.code} without overflow`);
          out.push(h);
          // gradients
          const [gv, gErr] = attemptValue(() => {
            const r = m.gradients(c.x, opts);
            return { loss: r.loss, entropy: r.entropy, dw: r.dw.slice(), db: r.db.slice() };
          });
          const g: Outcome = { code: gErr?.code ?? null, ...gv };
          if (gv !== undefined) {
            close([gv.loss], [e.loss], [t.loss], `${label} loss`);
            close([gv.entropy], [e.entropy], [t.entropy], `${label} entropy`);
            close(gv.dw, e.dw, t.dw, `${label} dw`);
            close(gv.db, e.db, t.db, `${label} db`);
          } else check(g.code === "NON_FINITE" && over, () => `${label}: gradients threw ${g.code} without overflow`);
          out.push(g);
          outcomes.set(backend, out);
        }
        // wasm-simd and wasm: same kernels, same order of operations, same bits.
        const s = defined(outcomes.get("wasm-simd"), "wasm-simd outcomes"),
          w = defined(outcomes.get("wasm"), "wasm outcomes");
        for (let k = 0; k < s.length; k++) {
          check(s[k].code === w[k].code, () => `call ${k}: wasm-simd ${s[k].code} vs wasm ${w[k].code}`);
          for (const key of ["z", "d", "units", "dw", "db"] as const) {
            const u = s[k][key],
              v = w[k][key];
            if (u !== undefined) check(v !== undefined && sameBits(u, v), () => `${key}: wasm-simd and wasm differ`);
          }
          for (const key of ["loss", "entropy", "meanH"] as const) {
            const u = s[k][key],
              v = w[k][key];
            if (u !== undefined)
              check(v !== undefined && Math.abs(u - v) <= 1e-12 * Math.abs(u) + 1e-300, () => `${key}: ${u} vs ${v}`);
          }
        }
      }),
      settings(1),
    );
  });

  it(`a step moves the parameters as torch.optim.SGD from the gradients it reports, or changes nothing (${RUNS} cases)`, () => {
    const ruleArb = fc.record({
      lr: fc.oneof({ weight: 8, arbitrary: uniform(0, 1) }, { weight: 1, arbitrary: fc.constantFrom(0, 1e30, 1e38) }),
      momentum: fc.oneof(fc.constant(0), uniform(0, 0.99)),
      dampening: fc.oneof(fc.constant(0), uniform(0, 1)),
      weightDecay: fc.oneof(fc.constant(0), uniform(0, 0.1)),
      nesterov: fc.boolean(),
      frozen: fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
    });
    const arb = fc.record({
      c: caseArb,
      rule: ruleArb,
      steps: fc.integer({ min: 1, max: 3 }),
      backend: fc.constantFrom(...BACKENDS),
    });
    fc.assert(
      fc.property(arb, ({ c, rule, steps, backend }) => {
        const { inputs: I, outputs: O } = c.s;
        const nesterov = rule.nesterov && rule.momentum > 0 && rule.dampening === 0;
        const m = Model.from({ inputs: I, outputs: O, w: c.w, g: c.g, b: c.b, backend });
        try {
          const opt = new SGD(m, {
            lr: rule.lr,
            momentum: rule.momentum,
            dampening: rule.dampening,
            weightDecay: rule.weightDecay,
            nesterov,
            groups: { g: { frozen: rule.frozen } },
          });
          const a = ref.weightsOf(c.objective);
          const opts = {
            objective: c.objective,
            targets: a.crossEntropy !== 0 ? c.y : undefined,
            reduction: c.reduction,
          };
          for (let s = 0; s < steps; s++) {
            const before = { w: m.w.slice(), g: m.g.slice(), b: m.b.slice() };
            const state = opt.stateDict();
            const [grads, gErr] = attemptValue(() => {
              const r = m.gradients(c.x, opts);
              return { dw: r.dw.slice(), db: r.db.slice(), loss: r.loss };
            });
            const [result, err] = attemptValue(() => opt.step(c.x, opts));
            if (err !== null) {
              check(err.code === "NON_FINITE", () => `${backend}: step threw ${err.code}`);
              for (const k of ["w", "g", "b"] as const)
                check(sameBits(m[k], before[k]), () => `${backend}: ${k} changed by a failed step`);
              check(
                JSON.stringify(opt.stateDict(), (_, v) => (v instanceof Float32Array ? Array.from(bits(v)) : v)) ===
                  JSON.stringify(state, (_, v) => (v instanceof Float32Array ? Array.from(bits(v)) : v)),
                () => "optimizer state changed",
              );
              return;
            }
            check(gErr === null, () => `${backend}: gradients failed (${gErr?.code}) but the step succeeded`);
            const gr = defined(grads, "gradients");
            const res = defined(result, "step result");
            check(res.loss === gr.loss, () => `${backend}: step loss ${res.loss} vs gradients ${gr.loss}`);
            const bufs = state.state;
            // The wasm cores hold the options as float32, the JS core as given.
            const f = backend === "js" ? (v: number) => v : Math.fround;
            const lr = f(rule.lr),
              mu = f(rule.momentum),
              wd = f(rule.weightDecay),
              keep = f(1 - f(rule.dampening));
            for (const [k, grad] of [
              ["w", gr.dw],
              ["g", gr.dw],
              ["b", gr.db],
            ] as const) {
              const frozen = k === "g" && rule.frozen;
              if (frozen) {
                check(sameBits(m.g, before.g), () => "frozen g moved");
                continue;
              }
              const buf = bufs[k].momentumBuffer;
              const now = m[k];
              for (let i = 0; i < now.length; i++) {
                const t = before[k][i],
                  gi = grad[i];
                const u = gi + wd * t;
                const um = Math.abs(gi) + Math.abs(wd * t);
                let u2 = u,
                  u2m = um;
                if (mu !== 0) {
                  const bv = buf !== null ? mu * buf[i] + keep * u : u;
                  const bm = buf !== null ? Math.abs(mu * buf[i]) + keep * um : um;
                  u2 = nesterov ? u + mu * bv : bv;
                  u2m = nesterov ? um + mu * bm : bm;
                }
                const want = t - lr * u2;
                const tol = 8 * EPS32 * (Math.abs(t) + lr * u2m) * (1 + mu) + 64 * MIN_SUB * (1 + lr);
                check(
                  Math.abs(now[i] - want) <= tol && Number.isFinite(now[i]),
                  () =>
                    `${backend} ${k}[${i}] after step ${s}: ${now[i]} vs ${want} ± ${tol} (${JSON.stringify(rule)})`,
                );
              }
            }
          }
        } finally {
          m.dispose();
        }
      }),
      settings(2),
    );
  });
});

describe("bad inputs", () => {
  const bad = fc.constantFrom(NaN, Infinity, -Infinity);
  const outOfRange = fc.constantFrom(1.5, -0.25, Math.fround(1.0000001), -1e-30, 3e38);
  const arb = caseArb.chain((c) => {
    const n = c.s.batch * c.s.outputs;
    return fc.record({
      c: fc.constant(c),
      xBad: fc.option(fc.tuple(fc.nat(c.x.length - 1), bad), { freq: 2 }),
      yBad: fc.option(fc.tuple(fc.nat(n - 1), bad), { freq: 2 }),
      yOut: fc.option(fc.tuple(fc.nat(n - 1), outOfRange), { freq: 2 }),
      call: fc.constantFrom("forward", "entropy", "gradients", "step"),
    });
  });

  it(`NaN/±∞ in x or targets and targets outside [0, 1]: the same code on every backend, in the ABI's precedence, nothing changed (${RUNS} cases)`, () => {
    fc.assert(
      fc.property(arb, ({ c, xBad, yBad, yOut, call }) => {
        const { inputs: I, outputs: O } = c.s;
        const x = c.x.slice();
        if (xBad) x[xBad[0]] = xBad[1];
        const y = c.y.slice();
        if (yOut) y[yOut[0]] = yOut[1];
        if (yBad) y[yBad[0]] = yBad[1];
        const ce = call === "gradients" || call === "step";
        const opts = { objective: { crossEntropy: 1, entropy: 0.5 }, targets: y, reduction: c.reduction };
        const yNonFinite = Array.from(y).some((v) => !Number.isFinite(v));
        const yOutside = Array.from(y).some((v) => v < 0 || v > 1);
        const want = xBad ? "NON_FINITE" : ce && yNonFinite ? "NON_FINITE" : ce && yOutside ? "OPTION" : null;
        const codes: (string | null)[] = [];
        for (const backend of BACKENDS) {
          // A fresh model for a step (an optimizer's state lives as long as its model).
          const fresh = call === "step";
          const m = fresh ? new Model({ inputs: I, outputs: O, backend, init: "zeros" }) : model(backend, I, O);
          // Moderate parameters: only the planted values can fail a call.
          m.w.fill(0.25);
          m.g.fill(-0.125);
          m.b.fill(0.5);
          const opt = fresh ? new SGD(m, { lr: 0.1, momentum: 0.9 }) : null;
          opt?.step(c.x.map((v) => (Number.isFinite(v) && Math.abs(v) < 1e3 ? v : 0)));
          const before = { w: m.w.slice(), g: m.g.slice(), b: m.b.slice() };
          const state = opt?.stateDict();
          const err = attempt(() => {
            if (call === "forward") m.forward(x);
            else if (call === "entropy") m.entropy(x);
            else if (call === "gradients") m.gradients(x, opts);
            else defined(opt, "optimizer").step(x, opts);
          });
          codes.push(err?.code ?? null);
          if (want === null) {
            // Nothing planted: it works, or only an overflow of huge values stops it.
            check(err === null || err.code === "NON_FINITE", () => `${backend} ${call}: ${err?.code} on good inputs`);
          }
          if (err !== null)
            for (const k of ["w", "g", "b"] as const)
              check(sameBits(m[k], before[k]), () => `${backend} ${call}: ${k} changed`);
          if (opt && state !== undefined && err !== null) {
            const now = opt.stateDict();
            for (const k of ["w", "g", "b"] as const) {
              const u = now.state[k].momentumBuffer,
                v = state.state[k].momentumBuffer;
              check(u === v || (u !== null && v !== null && sameBits(u, v)), () => `${backend}: momentum ${k} changed`);
            }
          }
          if (fresh) m.dispose();
        }
        const [s, w, j] = codes;
        // Without planted values the JS core (float64 inside) may get through an overflow.
        check(
          s === w && (w === j || want === null),
          () =>
            `${call}: wasm-simd ${s}, wasm ${w}, js ${j} (x bad ${JSON.stringify(xBad)}, y bad ${JSON.stringify(yBad)}, y out ${JSON.stringify(yOut)})`,
        );
        if (want !== null) check(s === want, () => `${call}: ${s}, expected ${want}`);
      }),
      settings(3),
    );
  });
});

describe("helpers", () => {
  it(`entropyBits(z) ∈ [0, 1] and sigmoid(z) ∈ [0, 1] for every double, NaN only from NaN (${10 * RUNS} cases)`, () => {
    fc.assert(
      fc.property(fc.oneof(fc.double(), uniform(-40, 40), uniform(-1e-3, 1e-3)), (z) => {
        const h = entropyBits(z),
          s = sigmoid(z);
        if (Number.isNaN(z)) return Number.isNaN(h) && Number.isNaN(s);
        if (!Number.isFinite(z)) {
          // The limits: no entropy left, σ saturated.
          check(h === 0 && s === (z > 0 ? 1 : 0), () => `z = ${z}: H = ${h}, σ = ${s}`);
          return true;
        }
        check(h >= 0 && h <= 1 && s >= 0 && s <= 1, () => `z = ${z}: H = ${h}, σ = ${s}`);
        const rh = ref.entropyBits(z),
          rs = ref.sigmoid(z);
        check(Math.abs(h - rh) <= 4 * 2 ** -52 * rh + 1e-300, () => `H(${z}) = ${h} vs ${rh}`);
        check(Math.abs(s - rs) <= 4 * 2 ** -52 * rs + 1e-300, () => `σ(${z}) = ${s} vs ${rs}`);
        return true;
      }),
      settings(4, 10 * RUNS),
    );
  });
});

void F32_MAX;
void allFinite;
void paramsOf;
