// --plot: a hand-written SVG of accuracy and mean entropy over the adaptation steps, one line
// per method, on one test condition of the first seed. No plotting dependency.

import type { Trace } from "./demo.js";

const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function panel(
  traces: Trace[],
  pick: (t: Trace) => number[],
  title: string,
  yMax: number,
  ticks: number[],
  fmt: (v: number) => string,
  top: number,
  width: number,
  height: number,
): string {
  const left = 60,
    right = 190,
    plotW = width - left - right,
    plotH = height - 50;
  const steps = Math.max(...traces.map((t) => pick(t).length)) - 1;
  const sx = (i: number) => left + (steps > 0 ? (i / steps) * plotW : 0);
  const sy = (v: number) => top + 20 + plotH - (Math.min(v, yMax) / yMax) * plotH;
  const out: string[] = [];
  out.push(`<text x="${left}" y="${top + 12}" font-size="13" font-weight="bold">${esc(title)}</text>`);
  for (const t of ticks) {
    out.push(`<line x1="${left}" x2="${left + plotW}" y1="${sy(t)}" y2="${sy(t)}" stroke="#ddd"/>`);
    out.push(`<text x="${left - 6}" y="${sy(t) + 4}" font-size="11" text-anchor="end">${fmt(t)}</text>`);
  }
  const xTicks = 5;
  for (let k = 0; k <= xTicks; k++) {
    const i = Math.round((k / xTicks) * steps);
    out.push(`<text x="${sx(i)}" y="${top + 20 + plotH + 16}" font-size="11" text-anchor="middle">${i}</text>`);
  }
  out.push(`<rect x="${left}" y="${top + 20}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`);
  traces.forEach((t, k) => {
    const pts = pick(t)
      .map((v, i) => `${sx(i).toFixed(1)},${sy(v).toFixed(1)}`)
      .join(" ");
    // The first line (plain entropy minimisation) wide, so lines drawn over it stay readable.
    out.push(
      `<polyline points="${pts}" fill="none" stroke="${COLOURS[k % COLOURS.length]}" stroke-width="${k === 0 ? 3.5 : 1.6}"/>`,
    );
    const ly = top + 30 + k * 16;
    out.push(
      `<line x1="${left + plotW + 12}" x2="${left + plotW + 32}" y1="${ly}" y2="${ly}" stroke="${COLOURS[k % COLOURS.length]}" stroke-width="2"/>`,
    );
    out.push(`<text x="${left + plotW + 38}" y="${ly + 4}" font-size="11">${esc(t.method)}</text>`);
  });
  return out.join("\n");
}

export function plotSvg(traces: Trace[], subtitle: string): string {
  const width = 820,
    height = 300,
    footer = 30;
  const eMax = niceMax(Math.max(...traces.flatMap((t) => t.entropy)));
  const eTicks = [0, 0.25, 0.5, 0.75, 1].map((f) => f * eMax);
  const body = [
    panel(
      traces,
      (t) => t.accuracy.map((v) => 100 * v),
      "Accuracy (%) during adaptation",
      100,
      [0, 25, 50, 75, 100],
      (v) => v.toFixed(0),
      30,
      width,
      height,
    ),
    panel(
      traces,
      (t) => t.entropy,
      "Mean entropy (bits per image)",
      eMax,
      eTicks,
      (v) => v.toFixed(2),
      30 + height,
      width,
      height,
    ),
    `<text x="${width / 2}" y="${30 + 2 * height + footer - 6}" font-size="12" text-anchor="middle">adaptation step (step 0: before adaptation)</text>`,
  ];
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${2 * height + 30 + footer}" viewBox="0 0 ${width} ${2 * height + 30 + footer}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="18" font-size="12" fill="#444">${esc(subtitle)}</text>`,
    ...body,
    `</svg>`,
    "",
  ].join("\n");
}
