/**
 * Turning measurements into the console table, the Markdown blocks of docs/benchmarks.md and the
 * SVG charts (hand-written SVG, no dependencies).
 */

import { existsSync, readFileSync, writeFileSync } from 'node:fs';

export interface Row {
  table: 'defaults' | 'fsync';
  workload: string;
  workloadLabel: string;
  kind: 'produce' | 'consume' | 'e2e' | 'e2e-seq' | 'ack-rate';
  system: string;
  systemLabel: string;
  generator: string;
  /** Rows compare with Sluice's row of the same family (java, or node). */
  family: 'java' | 'node';
  durability: string;
  runs: number;
  okRuns: number;
  errors: string[];
  recordsPerSec: number;
  mibPerSec: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  peakRssMiB: number;
  brokerCpuS: number;
  /** Sluice's figure divided by this row's (throughput; for e2e rows: p99 latency). */
  ratio?: number;
  ratioRss?: number;
  note?: string;
}

const fmtInt = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–');
const fmt1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '–');
const fmtMs = (x: number) =>
  Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2)) : '–';
const fmtRatio = (x: number | undefined) =>
  x !== undefined && Number.isFinite(x) ? `${x >= 0.1 ? x.toFixed(2) : x.toPrecision(2)}×` : '';

export const COLUMNS = [
  'workload',
  'system · load generator',
  'records/s',
  'MiB/s',
  'p50 ms',
  'p99 ms',
  'p99.9 ms',
  'peak RSS MiB',
  'broker CPU s',
  'Sluice ÷ this',
  'runs',
  'durability',
];

function cells(r: Row): string[] {
  const failed = r.okRuns === 0;
  const ratioText =
    r.system === 'sluice'
      ? ''
      : [
          r.ratio !== undefined && Number.isFinite(r.ratio)
            ? `${fmtRatio(r.ratio)} ${r.kind === 'e2e' || r.kind === 'e2e-seq' || r.kind === 'ack-rate' ? 'p99' : 'rec/s'}`
            : '',
          r.ratioRss !== undefined && Number.isFinite(r.ratioRss) ? `${fmtRatio(r.ratioRss)} RSS` : '',
        ]
          .filter(Boolean)
          .join(', ');
  return [
    r.workloadLabel,
    `${r.systemLabel} · ${r.generator}`,
    failed ? (r.note ? 'n/a' : 'failed') : fmtInt(r.recordsPerSec),
    failed ? '' : fmt1(r.mibPerSec),
    fmtMs(r.p50Ms),
    fmtMs(r.p99Ms),
    fmtMs(r.p999Ms),
    fmtInt(r.peakRssMiB),
    fmt1(r.brokerCpuS),
    ratioText,
    `${r.okRuns}/${r.runs}`,
    r.durability,
  ];
}

function notes(rows: Row[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const r of rows) {
    const msg = r.note ?? r.errors[0];
    if (!msg) continue;
    const key = `${r.systemLabel}|${msg}`;
    if (r.note && seen.has(key)) continue;
    seen.add(key);
    out.push(
      r.note
        ? `${r.systemLabel}: n/a: ${r.note}`
        : `${r.systemLabel} · ${r.generator}, ${r.workloadLabel}: ${msg}`,
    );
  }
  return out;
}

export function consoleTable(rows: Row[]): string {
  const body = rows.map(cells);
  const widths = COLUMNS.map((c, i) => Math.max(c.length, ...body.map((b) => b[i]!.length)));
  const line = (cs: string[]) =>
    cs.map((c, i) => (i >= 2 && i <= 8 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  return [
    line(COLUMNS),
    line(widths.map((w) => '-'.repeat(w))),
    ...body.map(line),
    ...notes(rows).map((n) => `  note: ${n}`),
  ].join('\n');
}

export function markdownTable(rows: Row[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const out = [
    `| ${COLUMNS.join(' | ')} |`,
    `|${COLUMNS.map((_, i) => (i >= 2 && i <= 8 ? ' ---: ' : ' --- ')).join('|')}|`,
  ];
  for (const r of rows) out.push(`| ${cells(r).map(esc).join(' | ')} |`);
  const ns = notes(rows);
  if (ns.length) out.push('', ...ns.map((n) => `- ${esc(n)}`));
  return out.join('\n');
}

/** Replaces `<!-- bench:NAME -->` … `<!-- /bench:NAME -->` blocks of a file (or appends them). */
export function replaceBlocks(path: string, blocks: Record<string, string>, skeleton: string): void {
  let doc = existsSync(path) ? readFileSync(path, 'utf8') : skeleton;
  for (const [name, content] of Object.entries(blocks)) {
    const open = `<!-- bench:${name} -->`;
    const close = `<!-- /bench:${name} -->`;
    const a = doc.indexOf(open);
    const b = doc.indexOf(close);
    const block = `${open}\n${content.trim()}\n${close}`;
    if (a >= 0 && b > a) doc = doc.slice(0, a) + block + doc.slice(b + close.length);
    else doc += `\n${block}\n`;
  }
  writeFileSync(path, doc);
}

// ------------------------------------------------------------------------------------ SVG

const COLORS: Record<string, string> = {
  sluice: '#1f77b4',
  kafka: '#d62728',
  nats: '#2ca02c',
  redis: '#9467bd',
};

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export interface BarGroup {
  title: string;
  bars: { label: string; system: string; value: number; text?: string }[];
}

/**
 * Horizontal grouped bar chart: one group per workload, one bar per system, each labelled with
 * its value; a log scale when `log` (latencies spanning orders of magnitude).
 */
export function barChartSvg(
  title: string,
  unit: string,
  groups: BarGroup[],
  opts: { log?: boolean } = {},
): string {
  const longest = Math.max(...groups.flatMap((g) => g.bars.map((b) => b.label.length)), 10);
  const labelW = Math.max(200, Math.ceil(longest * 6.6) + 12);
  const plotW = 420;
  const W = labelW + plotW + 280;
  const barH = 16;
  const gap = 4;
  const groupGap = 18;
  let y = 56;
  const values = groups.flatMap((g) => g.bars.map((b) => b.value)).filter((x) => Number.isFinite(x) && x > 0);
  const max = Math.max(...values, 1);
  const min = Math.min(...values, max);
  const lo = opts.log ? 10 ** Math.floor(Math.log10(min)) : 0;
  const niceCeil = (x: number) => {
    const e = 10 ** Math.floor(Math.log10(x));
    return ([1, 2, 2.5, 5, 10].find((m) => m * e >= x) ?? 10) * e;
  };
  const hi = opts.log ? 10 ** Math.ceil(Math.log10(max)) : niceCeil(max * 1.02);
  const scale = (x: number) =>
    opts.log
      ? ((Math.log10(Math.max(x, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotW
      : (x / hi) * plotW;
  const parts: string[] = [];
  for (const g of groups) {
    parts.push(`<text x="8" y="${y + 12}" font-weight="bold">${esc(g.title)}</text>`);
    y += 20;
    for (const b of g.bars) {
      const w = Number.isFinite(b.value) && b.value > 0 ? Math.max(1, scale(b.value)) : 0;
      parts.push(`<text x="${labelW - 6}" y="${y + 12}" text-anchor="end">${esc(b.label)}</text>`);
      if (w > 0) {
        parts.push(
          `<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${COLORS[b.system] ?? '#777'}"/>`,
        );
      }
      parts.push(
        `<text x="${(labelW + w + 4).toFixed(1)}" y="${y + 12}">${esc(w > 0 ? (b.text ?? String(b.value)) : 'n/a')}</text>`,
      );
      y += barH + gap;
    }
    y += groupGap;
  }
  // axis ticks
  const ticks: number[] = [];
  if (opts.log) for (let t = lo; t <= hi * 1.0001; t *= 10) ticks.push(t);
  else for (let i = 0; i <= 4; i++) ticks.push((hi / 4) * i);
  const axisY = y - groupGap + 4;
  const axis = ticks.map((t) => {
    const x = labelW + scale(t);
    const txt =
      t >= 1000
        ? `${Math.round(t / 1000).toLocaleString('en-US')}k`
        : t >= 1
          ? String(Math.round(t))
          : String(t);
    return `<line x1="${x.toFixed(1)}" y1="48" x2="${x.toFixed(1)}" y2="${axisY}" stroke="#ddd"/><text x="${x.toFixed(1)}" y="${axisY + 14}" text-anchor="middle" fill="#555">${txt}</text>`;
  });
  const H = axisY + 40;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="8" y="22" font-size="16" font-weight="bold">${esc(title)}</text>`,
    `<text x="8" y="40" fill="#555">${esc(unit)}${opts.log ? ' (log scale)' : ''}</text>`,
    ...axis,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
