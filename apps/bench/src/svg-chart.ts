/**
 * Minimal hand-written SVG charts for the self-contained HTML report: an x/y
 * chart with optional error bars (points joined per series) and a bar chart.
 * No external library, no script, no network.
 */

export interface Point {
  x: number;
  y: number;
  /** Optional error bar (absolute y values). */
  yLow?: number;
  yHigh?: number;
  label?: string;
}

export interface Series {
  name: string;
  points: Point[];
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
  /** Fixed x range, widened if data fall outside (e.g. [0, 100] for sparsity in percent). */
  xDomain?: [number, number];
  /** Draw a horizontal reference line (e.g. speedup 1). */
  referenceY?: number;
  xFormat?: (v: number) => string;
  yFormat?: (v: number) => string;
}

export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22', '#393b79', '#ad494a', '#637939'];

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** "Nice" tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) {
    const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = Math.floor(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks[ticks.length - 1]! < hi) ticks.push(Number((ticks[ticks.length - 1]! + step).toPrecision(12)));
  return ticks;
}

function defaultFormat(v: number): string {
  return Math.abs(v) >= 1000 ? v.toFixed(0) : Number(v.toPrecision(4)).toString();
}

export function xyChart(series: readonly Series[], options: ChartOptions): string {
  const width = options.width ?? 560;
  const height = options.height ?? 340;
  const m = { left: 64, right: 16, top: 36, bottom: 48 };
  const legendHeight = 18 * Math.ceil(series.length / 3);
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom - legendHeight;
  const all = series.flatMap((s) => s.points);
  const fx = options.xFormat ?? defaultFormat;
  const fy = options.yFormat ?? defaultFormat;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeXml(options.title)}">`);
  parts.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  parts.push(`<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="600">${escapeXml(options.title)}</text>`);
  if (all.length === 0) {
    parts.push(`<text x="${width / 2}" y="${height / 2}" text-anchor="middle" font-size="13" fill="#777">no data</text></svg>`);
    return parts.join('');
  }
  const xs = [...all.map((p) => p.x), ...(options.xDomain ?? [])];
  const ys = all.flatMap((p) => [p.y, p.yLow ?? p.y, p.yHigh ?? p.y]);
  if (options.referenceY !== undefined) ys.push(options.referenceY);
  const xt = niceTicks(Math.min(...xs), Math.max(...xs));
  const yt = niceTicks(Math.min(...ys), Math.max(...ys));
  const x0 = xt[0]!;
  const x1 = xt[xt.length - 1]!;
  const y0 = yt[0]!;
  const y1 = yt[yt.length - 1]!;
  const sx = (v: number) => m.left + ((v - x0) / (x1 - x0 || 1)) * plotW;
  const sy = (v: number) => m.top + plotH - ((v - y0) / (y1 - y0 || 1)) * plotH;
  parts.push('<g font-size="11" fill="#333">');
  for (const t of yt) {
    parts.push(`<line x1="${m.left}" x2="${m.left + plotW}" y1="${sy(t)}" y2="${sy(t)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${m.left - 6}" y="${sy(t) + 4}" text-anchor="end">${escapeXml(fy(t))}</text>`);
  }
  for (const t of xt) {
    parts.push(`<line x1="${sx(t)}" x2="${sx(t)}" y1="${m.top}" y2="${m.top + plotH}" stroke="#f0f0f0"/>`);
    parts.push(`<text x="${sx(t)}" y="${m.top + plotH + 16}" text-anchor="middle">${escapeXml(fx(t))}</text>`);
  }
  parts.push('</g>');
  parts.push(`<rect x="${m.left}" y="${m.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`);
  if (options.referenceY !== undefined) {
    const y = sy(options.referenceY);
    parts.push(`<line x1="${m.left}" x2="${m.left + plotW}" y1="${y}" y2="${y}" stroke="#999" stroke-dasharray="4 3"/>`);
  }
  parts.push(`<text x="${m.left + plotW / 2}" y="${m.top + plotH + 34}" text-anchor="middle" font-size="12">${escapeXml(options.xLabel)}</text>`);
  parts.push(
    `<text transform="translate(16 ${m.top + plotH / 2}) rotate(-90)" text-anchor="middle" font-size="12">${escapeXml(options.yLabel)}</text>`,
  );
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    const pts = [...s.points].sort((a, b) => a.x - b.x);
    if (pts.length > 1) {
      parts.push(`<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${pts.map((p) => `${sx(p.x)},${sy(p.y)}`).join(' ')}"/>`);
    }
    for (const p of pts) {
      if (p.yLow !== undefined && p.yHigh !== undefined) {
        parts.push(`<line x1="${sx(p.x)}" x2="${sx(p.x)}" y1="${sy(p.yLow)}" y2="${sy(p.yHigh)}" stroke="${color}"/>`);
        for (const yy of [p.yLow, p.yHigh]) parts.push(`<line x1="${sx(p.x) - 4}" x2="${sx(p.x) + 4}" y1="${sy(yy)}" y2="${sy(yy)}" stroke="${color}"/>`);
      }
      parts.push(`<circle cx="${sx(p.x)}" cy="${sy(p.y)}" r="4" fill="${color}"><title>${escapeXml(`${s.name}: ${p.label ?? ''} (${fx(p.x)}, ${fy(p.y)})`)}</title></circle>`);
    }
    const lx = m.left + (i % 3) * (plotW / 3);
    const ly = height - legendHeight + 18 * Math.floor(i / 3) + 2;
    parts.push(`<rect x="${lx}" y="${ly}" width="10" height="10" fill="${color}"/>`);
    parts.push(`<text x="${lx + 14}" y="${ly + 9}" font-size="11">${escapeXml(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}

export interface BarGroup {
  name: string;
  values: number[];
}

/** Grouped bars over an index axis (e.g. layers 0..L-1), one colour per group. */
export function barChart(groups: readonly BarGroup[], options: ChartOptions): string {
  const width = options.width ?? 1100;
  const height = options.height ?? 300;
  const m = { left: 64, right: 16, top: 36, bottom: 48 };
  const legendHeight = 18 * Math.ceil(groups.length / 4);
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom - legendHeight;
  const n = Math.max(0, ...groups.map((g) => g.values.length));
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeXml(options.title)}">`);
  parts.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  parts.push(`<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="600">${escapeXml(options.title)}</text>`);
  if (n === 0) {
    // A short placeholder rather than an empty plot area.
    return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="64" viewBox="0 0 ${width} 64" role="img" aria-label="${escapeXml(options.title)}"><rect width="${width}" height="64" fill="#fff"/><text x="${width / 2}" y="24" text-anchor="middle" font-size="14" font-weight="600">${escapeXml(options.title)}</text><text x="${width / 2}" y="48" text-anchor="middle" font-size="12" fill="#777">no data (the sparse runtime reports it)</text></svg>`;
  }
  const yMax = Math.max(...groups.flatMap((g) => g.values), 0);
  const yt = niceTicks(0, yMax > 0 ? yMax : 1);
  const y1 = yt[yt.length - 1]!;
  const sy = (v: number) => m.top + plotH - (v / y1) * plotH;
  const slot = plotW / n;
  const bw = Math.max(1, (slot * 0.8) / groups.length);
  const fy = options.yFormat ?? defaultFormat;
  for (const t of yt) {
    parts.push(`<line x1="${m.left}" x2="${m.left + plotW}" y1="${sy(t)}" y2="${sy(t)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${m.left - 6}" y="${sy(t) + 4}" text-anchor="end" font-size="11">${escapeXml(fy(t))}</text>`);
  }
  groups.forEach((g, gi) => {
    const color = PALETTE[gi % PALETTE.length]!;
    g.values.forEach((v, i) => {
      const x = m.left + i * slot + slot * 0.1 + gi * bw;
      parts.push(`<rect x="${x}" y="${sy(v)}" width="${bw}" height="${sy(0) - sy(v)}" fill="${color}"><title>${escapeXml(`${g.name} layer ${i}: ${fy(v)}`)}</title></rect>`);
    });
    const lx = m.left + (gi % 4) * (plotW / 4);
    const ly = height - legendHeight + 18 * Math.floor(gi / 4) + 2;
    parts.push(`<rect x="${lx}" y="${ly}" width="10" height="10" fill="${color}"/>`);
    parts.push(`<text x="${lx + 14}" y="${ly + 9}" font-size="11">${escapeXml(g.name)}</text>`);
  });
  const labelEvery = Math.max(1, Math.ceil(n / 30));
  for (let i = 0; i < n; i += labelEvery) {
    parts.push(`<text x="${m.left + i * slot + slot / 2}" y="${m.top + plotH + 16}" text-anchor="middle" font-size="10">${i}</text>`);
  }
  parts.push(`<rect x="${m.left}" y="${m.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`);
  parts.push(`<text x="${m.left + plotW / 2}" y="${m.top + plotH + 34}" text-anchor="middle" font-size="12">${escapeXml(options.xLabel)}</text>`);
  parts.push(
    `<text transform="translate(16 ${m.top + plotH / 2}) rotate(-90)" text-anchor="middle" font-size="12">${escapeXml(options.yLabel)}</text>`,
  );
  parts.push('</svg>');
  return parts.join('');
}
