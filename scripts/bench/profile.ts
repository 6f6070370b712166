/**
 * Where Sluice's time goes under the acks=all produce workload: runs the broker under
 * `node --cpu-prof`, drives it with ProducerPerformance (1 KiB records, acks=all), stops it
 * (SIGTERM; the profile is written at exit) and sums self time per function.
 *
 *   node --import tsx scripts/bench/profile.ts [--records 300000] [--durability defaults|fsync]
 *        [--workload produce|consume]   (consume: ConsumerPerformance reading a log filled beforehand)
 */

import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { consumerPerformance, producerPerformance } from './java-tools.js';
import { BENCH_DIR, REPO_ROOT, progress } from './lib.js';
import { type Durability, startSystem } from './systems.js';

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: CpuProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileEntry {
  fn: string;
  where: string;
  selfMs: number;
  pct: number;
  /** For the top entries: where their self time was called from (caller chain, ms). */
  callers?: { chain: string; ms: number }[];
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  top: ProfileEntry[];
  byFile: ProfileEntry[];
  records: number;
  recordsPerSec: number;
  profilePath: string;
  workload: 'produce' | 'consume';
}

function where(url: string, line: number): string {
  if (!url) return '';
  const path = url.startsWith('file://') ? relative(REPO_ROOT, new URL(url).pathname) : url;
  return `${path}:${line + 1}`;
}

export function summarise(
  profile: CpuProfile,
  topN = 25,
): Omit<ProfileSummary, 'records' | 'recordsPerSec' | 'profilePath' | 'workload'> {
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const parent = new Map<number, CpuProfileNode>();
  for (const n of profile.nodes) {
    for (const c of n.children ?? []) parent.set(c, n);
  }
  const label = (n: CpuProfileNode) => {
    const w = where(n.callFrame.url, n.callFrame.lineNumber);
    return `${n.callFrame.functionName || '(anonymous)'}${w ? ` (${w.replace(/^.*\//, '')})` : ''}`;
  };
  /** Up to three callers that are not Node internals, nearest first. */
  const chainOf = (n: CpuProfileNode) => {
    const out: string[] = [];
    for (let p = parent.get(n.id); p && out.length < 3; p = parent.get(p.id)) {
      if (p.callFrame.url.startsWith('node:') || p.callFrame.functionName === '(root)') continue;
      out.push(label(p));
    }
    return out.join(' ← ') || '(no JavaScript caller)';
  };
  const callers = new Map<string, Map<string, number>>();
  const byFn = new Map<string, ProfileEntry>();
  const byFile = new Map<string, ProfileEntry>();
  let total = 0;
  let idle = 0;
  for (const n of profile.nodes) {
    const us = selfUs.get(n.id) ?? 0;
    if (!us) continue;
    total += us;
    const name = n.callFrame.functionName || '(anonymous)';
    if (name === '(idle)') idle += us;
    const w = where(n.callFrame.url, n.callFrame.lineNumber);
    const key = `${name} ${w}`;
    const e = byFn.get(key) ?? { fn: name, where: w, selfMs: 0, pct: 0 };
    e.selfMs += us / 1000;
    byFn.set(key, e);
    const cm = callers.get(key) ?? new Map<string, number>();
    const chain = chainOf(n);
    cm.set(chain, (cm.get(chain) ?? 0) + us / 1000);
    callers.set(key, cm);
    const file = n.callFrame.url ? w.replace(/:\d+$/, '') : name;
    const f = byFile.get(file) ?? { fn: file, where: '', selfMs: 0, pct: 0 };
    f.selfMs += us / 1000;
    byFile.set(file, f);
  }
  const busy = (total - idle) / 1000;
  const rank = (m: Map<string, ProfileEntry>) =>
    [...m.values()]
      .filter((e) => e.fn !== '(idle)')
      .map((e) => ({ ...e, pct: (100 * e.selfMs) / busy }))
      .sort((a, b) => b.selfMs - a.selfMs)
      .slice(0, topN);
  const top = rank(byFn);
  for (const e of top.slice(0, 8)) {
    const cm = callers.get(`${e.fn} ${e.where}`);
    if (cm)
      e.callers = [...cm]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 3)
        .map(([chain, ms]) => ({ chain, ms }));
  }
  return { totalMs: total / 1000, idleMs: idle / 1000, top, byFile: rank(byFile) };
}

export async function profileSluice(
  records: number,
  durability: Durability = 'defaults',
  workload: 'produce' | 'consume' = 'produce',
): Promise<ProfileSummary> {
  const dir = join(BENCH_DIR, '.cache', `profile-${workload}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const profiled = { nodeFlags: ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', '500'] };
  let rps = Number.NaN;
  if (workload === 'produce') {
    const broker = await startSystem('sluice', durability, profiled);
    try {
      await broker.createTopic('profile', 1);
      progress(`profile: ProducerPerformance ${records} × 1 KiB, acks=all, under node --cpu-prof`);
      const r = await producerPerformance({
        bootstrap: `127.0.0.1:${broker.port}`,
        topic: 'profile',
        records,
        recordSize: 1024,
        acks: 'all',
        throughput: -1,
        props: ['enable.idempotence=false'],
        timeoutMs: 900_000,
      });
      rps = r.recordsPerSec;
      if (!r.ok) progress(`profile: producer reported: ${r.error}`);
    } finally {
      await broker.stop();
    }
  } else {
    // Fill the log with an unprofiled broker, then profile a second one reading it from the start.
    const dataDir = mkdtempSync(join(tmpdir(), 'sluice-bench-profile-'));
    try {
      const filler = await startSystem('sluice', durability, { dataDir });
      try {
        await filler.createTopic('profile', 1);
        progress(`profile: filling ${records} × 1 KiB`);
        const f = await producerPerformance({
          bootstrap: `127.0.0.1:${filler.port}`,
          topic: 'profile',
          records,
          recordSize: 1024,
          acks: '1',
          throughput: -1,
          props: [],
          timeoutMs: 900_000,
        });
        if (!f.ok) throw new Error(`fill failed: ${f.error}`);
      } finally {
        await filler.stop();
      }
      const broker = await startSystem('sluice', durability, { ...profiled, dataDir });
      try {
        progress(`profile: ConsumerPerformance ${records} × 1 KiB under node --cpu-prof`);
        const r = await consumerPerformance({
          bootstrap: `127.0.0.1:${broker.port}`,
          topic: 'profile',
          records,
          recordSize: 1024,
          timeoutMs: 900_000,
        });
        rps = r.recordsPerSec;
        if (!r.ok) progress(`profile: consumer reported: ${r.error}`);
      } finally {
        await broker.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error('no .cpuprofile written (did the broker exit cleanly?)');
  const path = join(dir, file);
  const summary = summarise(JSON.parse(readFileSync(path, 'utf8')) as CpuProfile);
  return { ...summary, records, recordsPerSec: rps, profilePath: relative(REPO_ROOT, path), workload };
}

export function profileMarkdown(p: ProfileSummary): string {
  const busy = p.totalMs - p.idleMs;
  const lines = [
    `${p.workload === 'consume' ? 'ConsumerPerformance reading' : 'ProducerPerformance,'} ${p.records.toLocaleString('en-US')} records × 1 KiB${p.workload === 'consume' ? ' from the start of the log (written beforehand by an unprofiled broker)' : ', acks=all'}, 1 partition, against \`node --cpu-prof --cpu-prof-interval 500 bin/sluice.js start\` (${Math.round(p.recordsPerSec).toLocaleString('en-US')} records/s while profiled). Profile: ${(p.totalMs / 1000).toFixed(1)} s, of which ${(busy / 1000).toFixed(1)} s on the CPU (the rest idle: waiting for the network${p.workload === 'consume' ? ', the group join and the client' : ' and fdatasync'}).`,
    '',
    'Top self-time functions (share of on-CPU time):',
    '',
    '| # | function | where | self ms | % |',
    '| ---: | --- | --- | ---: | ---: |',
    ...p.top.map(
      (e, i) =>
        `| ${i + 1} | \`${e.fn}\` | ${e.where || '–'} | ${e.selfMs.toFixed(0)} | ${e.pct.toFixed(1)} |`,
    ),
    '',
    'Callers of the top entries (self time by JavaScript caller chain, nearest first):',
    '',
    ...p.top
      .filter((e) => e.callers)
      .flatMap((e) => [
        `- \`${e.fn}\`${e.where ? ` (${e.where})` : ''}:`,
        ...e.callers!.map((c) => `  - ${c.ms.toFixed(0)} ms ← ${c.chain}`),
      ]),
    '',
    'By file:',
    '',
    '| file | self ms | % |',
    '| --- | ---: | ---: |',
    ...p.byFile.slice(0, 15).map((e) => `| ${e.fn} | ${e.selfMs.toFixed(0)} | ${e.pct.toFixed(1)} |`),
  ];
  return lines.join('\n');
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const i = process.argv.indexOf('--records');
  const d = process.argv.indexOf('--durability');
  const w = process.argv.indexOf('--workload');
  profileSluice(
    i > 0 ? Number(process.argv[i + 1]) : 300_000,
    d > 0 ? (process.argv[d + 1] as Durability) : 'defaults',
    w > 0 ? (process.argv[w + 1] as 'produce' | 'consume') : 'produce',
  ).then(
    (p) => console.log(profileMarkdown(p)),
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
