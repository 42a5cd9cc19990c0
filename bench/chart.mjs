// The bench's chart: GFLOP/s of one training step per size for each contender, as an SVG
// (no dependency: a few rects and text elements). A log scale, because the contenders span two
// orders of magnitude (a naive loop near 1 GFLOP/s, the SIMD core near the peak); the peak of
// the run is a dashed line.

/** @typedef {{ name: string; values: (number | null)[] }} Series */

const COLORS = ["#1b6ac9", "#5aa2f0", "#8fb8e0", "#e07b39", "#d4a017", "#7a7a7a", "#b04a9b", "#3a9d5d"];

/** @param {string} s */
const esc = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/**
 * Grouped bars: one group per size, one bar per series, log-scaled GFLOP/s.
 * @param {{ title: string; subtitle: string; groups: string[]; series: Series[]; peak: number | null }} spec
 * @returns {string} the SVG document
 */
export function barChart({ title, subtitle, groups, series, peak }) {
  const width = 860,
    height = 440;
  const left = 64,
    right = 200,
    top = 64,
    bottom = 56;
  const plotW = width - left - right,
    plotH = height - top - bottom;
  /** @type {number[]} */
  const all = [];
  for (const s of series) for (const v of s.values) if (v !== null && v > 0) all.push(v);
  if (peak !== null) all.push(peak);
  const lo = 10 ** Math.floor(Math.log10(Math.min(...all, 1))),
    hi = 10 ** Math.ceil(Math.log10(Math.max(...all, 1)));
  const y = (/** @type {number} */ v) =>
    top + plotH * (1 - (Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)));
  const out = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">`,
  );
  out.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  out.push(`<text x="${left}" y="24" font-size="15" font-weight="600">${esc(title)}</text>`);
  out.push(`<text x="${left}" y="42" fill="#555">${esc(subtitle)}</text>`);
  // Grid: every power of ten, and 2× and 5× between.
  for (let d = lo; d <= hi; d *= 10) {
    for (const m of [1, 2, 5]) {
      const v = d * m;
      if (v > hi) break;
      const yy = y(v).toFixed(1);
      out.push(`<line x1="${left}" x2="${left + plotW}" y1="${yy}" y2="${yy}" stroke="${m === 1 ? "#ccc" : "#eee"}"/>`);
      out.push(`<text x="${left - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle" fill="#555">${v}</text>`);
    }
  }
  out.push(
    `<text transform="translate(16 ${top + plotH / 2}) rotate(-90)" text-anchor="middle" fill="#333">GFLOP/s (log scale)</text>`,
  );
  const groupW = plotW / groups.length;
  const barW = Math.min(18, (groupW - 16) / series.length);
  groups.forEach((g, gi) => {
    const x0 = left + gi * groupW + (groupW - barW * series.length) / 2;
    series.forEach((s, si) => {
      const v = s.values[gi];
      if (v === null || !(v > 0)) return;
      const yy = y(v);
      out.push(
        `<rect x="${(x0 + si * barW).toFixed(1)}" y="${yy.toFixed(1)}" width="${(barW - 1).toFixed(1)}" height="${(top + plotH - yy).toFixed(1)}" fill="${COLORS[si % COLORS.length]}"><title>${esc(`${s.name} at ${g}: ${v.toFixed(2)} GFLOP/s`)}</title></rect>`,
      );
    });
    out.push(
      `<text x="${(left + gi * groupW + groupW / 2).toFixed(1)}" y="${top + plotH + 18}" text-anchor="middle">${esc(g)}</text>`,
    );
  });
  if (peak !== null) {
    const yy = y(peak).toFixed(1);
    out.push(
      `<line x1="${left}" x2="${left + plotW}" y1="${yy}" y2="${yy}" stroke="#c00" stroke-dasharray="6 4"/>`,
      `<text x="${left + plotW - 4}" y="${Number(yy) - 5}" text-anchor="end" fill="#c00">peak ${peak.toFixed(1)}</text>`,
    );
  }
  series.forEach((s, si) => {
    const yy = top + 8 + si * 20;
    out.push(
      `<rect x="${left + plotW + 16}" y="${yy - 10}" width="12" height="12" fill="${COLORS[si % COLORS.length]}"/>`,
      `<text x="${left + plotW + 34}" y="${yy}" dominant-baseline="middle">${esc(s.name)}</text>`,
    );
  });
  out.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${top + plotH}" stroke="#333"/>`);
  out.push(`<line x1="${left}" x2="${left + plotW}" y1="${top + plotH}" y2="${top + plotH}" stroke="#333"/>`);
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
