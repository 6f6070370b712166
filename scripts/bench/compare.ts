/**
 * Before/after table of two result files of scripts/bench/run.ts (medians per row), for the
 * "Optimisations and what they gained" section of docs/benchmarks.md. Apache Kafka's rows are the
 * control: the same software both times, so their change is the machine's (load, page cache).
 *
 *   node --import tsx scripts/bench/compare.ts BEFORE.json AFTER.json [--systems sluice,kafka]
 *        [--workloads 1k-1p-all,consume,...]
 */

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { median } from './lib.js';

interface M {
  table: string;
  run: number;
  workload: string;
  kind: string;
  system: string;
  generator: string;
  result: { ok: boolean; recordsPerSec: number; p99Ms: number };
  peakRssMiB: number;
  brokerCpuS: number;
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    systems: { type: 'string', default: 'sluice,kafka' },
    workloads: { type: 'string', default: '' },
  },
});
const [beforePath, afterPath] = positionals;
if (!beforePath || !afterPath) {
  console.error('usage: compare.ts BEFORE.json AFTER.json [--systems sluice,kafka] [--workloads ...]');
  process.exit(2);
}

const load = (p: string) =>
  (
    JSON.parse(readFileSync(p, 'utf8'), (k, v) => (v === null && k !== 'error' ? Number.NaN : v)) as {
      measurements: M[];
    }
  ).measurements;

const systems = values.systems!.split(',');
const workloads = values.workloads ? values.workloads.split(',') : null;

function medians(ms: M[]): Map<string, { rps: number; p99: number; cpu: number; rss: number; n: number }> {
  const groups = new Map<string, M[]>();
  for (const m of ms) {
    if (!m.result.ok || !systems.includes(m.system)) continue;
    if (workloads && !workloads.includes(m.workload)) continue;
    const k = [m.table, m.workload, m.kind, m.system, m.generator].join('|');
    groups.set(k, [...(groups.get(k) ?? []), m]);
  }
  const out = new Map<string, { rps: number; p99: number; cpu: number; rss: number; n: number }>();
  for (const [k, g] of groups) {
    out.set(k, {
      rps: median(g.map((m) => m.result.recordsPerSec)),
      p99: median(g.map((m) => m.result.p99Ms)),
      cpu: median(g.map((m) => m.brokerCpuS)),
      rss: median(g.map((m) => m.peakRssMiB)),
      n: g.length,
    });
  }
  return out;
}

const before = medians(load(beforePath));
const after = medians(load(afterPath));
const pct = (a: number, b: number) => {
  if (!Number.isFinite(a) || !Number.isFinite(b) || a === 0) return '';
  const d = ((b - a) / a) * 100;
  return ` (${d >= 0 ? '+' : ''}${d.toFixed(0)} %)`;
};
const n0 = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–');
const n1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '–');

console.log(
  '| table | workload | system · generator | records/s before → after | p99 ms before → after | broker CPU s before → after | runs |',
);
console.log('| --- | --- | --- | --- | --- | --- | --- |');
for (const [k, a] of after) {
  const b = before.get(k);
  if (!b) continue;
  const [table, workload, kind, system, generator] = k.split('|');
  const latencyRow = kind !== 'produce' && kind !== 'consume';
  console.log(
    `| ${table} | ${workload}${kind !== 'produce' && kind !== 'consume' && kind !== 'e2e' ? ` (${kind})` : ''} | ${system} · ${generator} | ${latencyRow ? '' : `${n0(b.rps)} → ${n0(a.rps)}${pct(b.rps, a.rps)}`} | ${kind === 'consume' ? '' : `${n1(b.p99)} → ${n1(a.p99)}${latencyRow ? pct(b.p99, a.p99) : ''}`} | ${n1(b.cpu)} → ${n1(a.cpu)}${pct(b.cpu, a.cpu)} | ${b.n} / ${a.n} |`,
  );
}
