// The pool's choice, call by call, between running a shape with helpers and alone
// (ts/threads/pool.ts, Tuning), driven by simulated calls: what each way costs on a quiet
// machine, with another process busy, while models take turns, and after warm-up and outliers.
import { describe, expect, it } from "vitest";
import { Tuning } from "../ts/threads/pool";

/** What one call costs: its time in ms, and whether it had to wake the worker. */
type Cost = (team: boolean, call: number, previousTeam: boolean) => { ms: number; woke: boolean };

/** Runs `calls` calls of one shape as the pool does; returns the share run with helpers after
 *  `from` and the mean time per call there. */
function drive(cost: Cost, calls = 4000, from = 500) {
  const t = new Tuning();
  let previousTeam = true,
    team = 0,
    total = 0;
  for (let k = 0; k < calls; k++) {
    const withHelpers = t.probe() !== t.useTeam;
    const { ms, woke } = cost(withHelpers, k, previousTeam);
    t.record(withHelpers, ms, withHelpers && woke);
    previousTeam = withHelpers;
    if (k >= from) {
      team += withHelpers ? 1 : 0;
      total += ms;
    }
  }
  return { teamShare: team / (calls - from), mean: total / (calls - from) };
}

const SOLO = 0.18; // ms, a (256, 64, 128) step alone
const TEAM = 0.105; // with a worker awake
const WAKE = 0.05; // waking a sleeping worker

describe("the pool's tuning", () => {
  it("a quiet machine: helpers nearly always, the worker woken only after a call alone", () => {
    // After a call alone the worker has slept (its spin is shorter than the call).
    const r = drive((team, _k, prev) =>
      team ? { ms: TEAM + (prev ? 0 : WAKE), woke: !prev } : { ms: SOLO, woke: false },
    );
    expect(r.teamShare).toBeGreaterThan(0.95);
    expect(r.mean).toBeLessThan(1.05 * TEAM);
  });

  it("a fresh model's slow first calls do not keep it on one thread", () => {
    const r = drive((team, k, prev) => {
      const warm = k < 20 ? 1 + (k % 5) : k < 60 ? 0.2 : 0; // the engine's optimised code comes later
      return team ? { ms: warm + TEAM + (prev ? 0 : WAKE), woke: !prev } : { ms: warm + SOLO, woke: false };
    });
    expect(r.teamShare).toBeGreaterThan(0.95);
  });

  it("one call held up once (a time slice elsewhere) does not drop the helpers", () => {
    const r = drive((team, k, prev) =>
      team ? { ms: (k === 1000 ? 4 : 0) + TEAM + (prev ? 0 : WAKE), woke: !prev } : { ms: SOLO, woke: false },
    );
    expect(r.teamShare).toBeGreaterThan(0.95);
  });

  it("another process busy on the second core: every call wakes a worker the OS runs late, so alone", () => {
    const r = drive((team, k) =>
      team ? { ms: SOLO + (k % 7 === 0 ? 3 : 0.1), woke: true } : { ms: SOLO, woke: false },
    );
    expect(r.teamShare).toBeLessThan(0.05);
    expect(r.mean).toBeLessThan(1.1 * SOLO); // within the busy-core target of 0.9x one thread
  });

  it("models used in turns, whose every call wakes the worker for no gain, run alone", () => {
    const r = drive((team) => (team ? { ms: SOLO + 0.01, woke: true } : { ms: SOLO, woke: false }));
    expect(r.teamShare).toBeLessThan(0.05);
  });

  it("models used in turns keep their helpers where a call gains more than the wake-up", () => {
    // (1024, 256, 256): 5 ms alone, 2.8 ms with a worker, woken at every call.
    const r = drive((team) => (team ? { ms: 2.8 + WAKE, woke: true } : { ms: 5, woke: false }));
    expect(r.teamShare).toBeGreaterThan(0.95);
  });

  it("helpers come back when the second core frees up", () => {
    const r = drive(
      (team, k, prev) => {
        if (k < 2000) return team ? { ms: 2 * SOLO, woke: true } : { ms: SOLO, woke: false };
        return team ? { ms: TEAM + (prev ? 0 : WAKE), woke: !prev } : { ms: SOLO, woke: false };
      },
      6000,
      4000,
    );
    expect(r.teamShare).toBeGreaterThan(0.9);
  });
});
