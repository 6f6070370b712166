/**
 * `npm run bench`: Sluice against Apache Kafka 4.4.0, NATS JetStream and Redis Streams on this
 * machine, in one run; writes docs/benchmarks.md (generated blocks), docs/benchmarks-*.svg and
 * scripts/bench/results/latest.json.
 *
 *   npm run build && node --import tsx scripts/bench/run.ts [options]
 *
 * Every measurement starts the system with a fresh data dir on loopback and stops it afterwards.
 * Load generators: Kafka's ProducerPerformance / ConsumerPerformance / EndToEndLatency (Sluice and
 * Kafka, identical arguments), kafkajs (Sluice and Kafka), nats.js (JetStream), node-redis (Redis).
 *
 * Options:
 *   --records N          records per produce/consume workload (default 1000000)
 *   --runs R             runs of every workload (default 1); the median is reported
 *   --target-runs R      runs of the workloads behind the issue's targets (default 3)
 *   --tables defaults,fsync   --systems sluice,kafka,nats,redis   --workloads ID,... (see WORKLOADS)
 *   --generators java,kafkajs,nats,redis
 *   --e2e-rate 10000 --e2e-seconds 30 --e2e-seq-records 10000
 *   --java-idempotence   leave the Java producer's default enable.idempotence=true for acks=all
 *                        (default: enable.idempotence=false for both brokers; see docs/benchmarks.md)
 *   --kafkajs-nodelay    kafkajs sockets with TCP_NODELAY, as Kafka's Java client (default: kafkajs's
 *                        own default, Nagle on; see docs/benchmarks.md, 2026-12-07)
 *   --skip-limits --skip-startup --skip-profile --profile-records N --no-docs
 *   --merge FILE         start from an earlier results file (e.g. scripts/bench/results/latest.json):
 *                        its measurements of the (table, workload, run, system, load generator) run now are
 *                        replaced, the rest kept, as are its limits/startup/profile when skipped now
 *   --first-run N        start counting runs at N (with --merge: redo or add runs N..)
 */

import { execSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { KAFKA_VERSION } from '../../compat/kafka-reference.js';
import {
  type ToolResult,
  consumerPerfArgs,
  consumerPerformance,
  endToEndArgs,
  endToEndLatency,
  ensureTools,
  javaCommand,
  producerPerfArgs,
  producerPerformance,
} from './java-tools.js';
import { BENCH_DIR, REPO_ROOT, SLUICE_HOME, exec, loadAverage, median, progress } from './lib.js';
import { type Limits, measureLimits } from './limits.js';
import { type ProfileSummary, profileMarkdown, profileSluice } from './profile.js';
import {
  type BarGroup,
  type Row,
  barChartSvg,
  consoleTable,
  markdownTable,
  replaceBlocks,
} from './report.js';
import { measureStartup } from './startup.js';
import {
  type Durability,
  type Running,
  SYSTEM_LABEL,
  type SystemName,
  Unsupported,
  natsSupportsSyncAlways,
  startSystem,
} from './systems.js';

const { values: opt } = parseArgs({
  options: {
    records: { type: 'string', default: '1000000' },
    'other-records': { type: 'string', default: '' },
    runs: { type: 'string', default: '1' },
    'target-runs': { type: 'string', default: '3' },
    tables: { type: 'string', default: 'defaults,fsync' },
    systems: { type: 'string', default: 'sluice,kafka,nats,redis' },
    workloads: { type: 'string', default: '' },
    generators: { type: 'string', default: 'java,kafkajs,nats,redis' },
    'e2e-rate': { type: 'string', default: '10000' },
    'e2e-seconds': { type: 'string', default: '30' },
    'e2e-seq-records': { type: 'string', default: '10000' },
    'java-idempotence': { type: 'boolean', default: false },
    'kafkajs-nodelay': { type: 'boolean', default: false },
    'skip-limits': { type: 'boolean', default: false },
    'skip-startup': { type: 'boolean', default: false },
    'skip-profile': { type: 'boolean', default: false },
    'profile-records': { type: 'string', default: '300000' },
    'startup-runs': { type: 'string', default: '10' },
    'first-run': { type: 'string', default: '1' },
    'no-docs': { type: 'boolean', default: false },
    merge: { type: 'string', default: '' },
  },
});

const RECORDS = Number(opt.records);
/** Records of the rows not behind a target (default: --records). */
const OTHER_RECORDS = Number(opt['other-records'] || opt.records);
const RUNS = Number(opt.runs);
const TARGET_RUNS = Math.max(RUNS, Number(opt['target-runs']));
const E2E_RATE = Number(opt['e2e-rate']);
const E2E_SECONDS = Number(opt['e2e-seconds']);
const E2E_SEQ_RECORDS = Number(opt['e2e-seq-records']);
const TABLES = opt.tables!.split(',') as Durability[];
const SYSTEMS = opt.systems!.split(',') as SystemName[];
const GENERATORS = new Set(opt.generators!.split(','));

interface Workload {
  id: string;
  label: string;
  kind: 'produce' | 'consume' | 'e2e';
  size: number;
  partitions: number;
  acks: '1' | 'all';
  /** Behind one of the issue's targets in these tables: run TARGET_RUNS times there, with --records. */
  targetTables?: Durability[];
  /** Only in these tables. */
  tables?: Durability[];
}

const WORKLOADS: Workload[] = [
  {
    id: '1k-1p-all',
    label: 'produce 1 KiB, 1 partition, acks=all',
    kind: 'produce',
    size: 1024,
    partitions: 1,
    acks: 'all',
    targetTables: ['fsync'],
  },
  {
    id: '1k-1p-1',
    label: 'produce 1 KiB, 1 partition, acks=1',
    kind: 'produce',
    size: 1024,
    partitions: 1,
    acks: '1',
  },
  {
    id: '1k-6p-all',
    label: 'produce 1 KiB, 6 partitions, acks=all',
    kind: 'produce',
    size: 1024,
    partitions: 6,
    acks: 'all',
  },
  {
    id: '1k-6p-1',
    label: 'produce 1 KiB, 6 partitions, acks=1',
    kind: 'produce',
    size: 1024,
    partitions: 6,
    acks: '1',
  },
  {
    id: '100b-1p-all',
    label: 'produce 100 B, 1 partition, acks=all',
    kind: 'produce',
    size: 100,
    partitions: 1,
    acks: 'all',
  },
  {
    id: '100b-1p-1',
    label: 'produce 100 B, 1 partition, acks=1',
    kind: 'produce',
    size: 100,
    partitions: 1,
    acks: '1',
  },
  {
    id: 'consume',
    label: 'consume 1 KiB from the start of a full log, 1 partition',
    kind: 'consume',
    size: 1024,
    partitions: 1,
    acks: '1',
    targetTables: ['defaults'],
    tables: ['defaults'],
  },
  {
    id: 'e2e',
    label: `end-to-end 1 KiB at ${E2E_RATE.toLocaleString('en-US')} records/s, acks=all`,
    kind: 'e2e',
    size: 1024,
    partitions: 1,
    acks: 'all',
    // The end-to-end target is read against both tables (docs/benchmarks.md, Targets).
    targetTables: ['fsync', 'defaults'],
  },
];
const isTarget = (w: Workload, t: Durability) => w.targetTables?.includes(t) ?? false;
const recordsFor = (w: Workload, t: Durability) => (isTarget(w, t) ? RECORDS : OTHER_RECORDS);

const SELECTED = opt.workloads
  ? WORKLOADS.filter((w) => opt.workloads!.split(',').includes(w.id))
  : WORKLOADS;

/** Which load generators drive which system. */
function generatorsFor(system: SystemName): string[] {
  const g = system === 'sluice' || system === 'kafka' ? ['java', 'kafkajs'] : [system];
  return g.filter((x) => GENERATORS.has(x));
}

const GENERATOR_LABEL: Record<string, string> = {
  java: 'Kafka perf tool (Java)',
  kafkajs: 'kafkajs',
  nats: 'nats.js',
  redis: 'node-redis',
};

function durabilityText(system: SystemName, table: Durability, acks: '1' | 'all'): string {
  if (system === 'sluice') {
    if (acks === 'all') return 'fsync before ack (acks=all)';
    return table === 'fsync' ? 'fsync before ack (log.flush.interval.messages=1)' : 'page cache, no fsync';
  }
  if (system === 'kafka')
    return table === 'fsync' ? 'fsync before ack (flush.messages=1)' : 'page cache, OS flushes';
  if (system === 'nats')
    return table === 'fsync' ? 'fsync before ack (sync_interval: always)' : 'page cache, fsync every 2 min';
  return table === 'fsync' ? 'AOF fsync before reply (appendfsync always)' : 'memory; RDB snapshots (no AOF)';
}

// ----------------------------------------------------------------------------- measurements

interface Measurement {
  table: Durability;
  run: number;
  workload: string;
  kind: Row['kind'];
  system: SystemName;
  generator: string;
  result: ToolResult;
  peakRssMiB: number;
  brokerCpuS: number;
  load: [number, number, number];
}

const measurements: Measurement[] = [];
const commands = new Map<string, string>();
const startMs: Record<string, number[]> = {};

const javaProps = (acks: '1' | 'all') =>
  acks === 'all' && !opt['java-idempotence'] ? ['enable.idempotence=false'] : [];

function timeoutFor(records: number, size: number): number {
  // generous: 2,000 records/s of 1 KiB, plus a minute
  return 60_000 + (records * Math.max(size, 100)) / 1024 / 2;
}

async function nodeClient(args: string[], timeoutMs: number): Promise<ToolResult> {
  const r = await exec(process.execPath, ['--import', 'tsx', join(BENCH_DIR, 'node-client.ts'), ...args], {
    cwd: REPO_ROOT,
    timeoutMs,
  });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  try {
    const j = JSON.parse(last) as ToolResult;
    for (const k of ['recordsPerSec', 'mibPerSec', 'p50Ms', 'p99Ms', 'p999Ms', 'avgMs', 'maxMs'] as const) {
      if (j[k] === null || j[k] === undefined) j[k] = Number.NaN;
    }
    j.extra ??= {};
    return j;
  } catch {
    return {
      ok: false,
      error: `${r.timedOut ? 'timed out; ' : ''}${(r.stderr || r.stdout).slice(-400)}`,
      recordsPerSec: Number.NaN,
      mibPerSec: Number.NaN,
      p50Ms: Number.NaN,
      p99Ms: Number.NaN,
      p999Ms: Number.NaN,
      avgMs: Number.NaN,
      maxMs: Number.NaN,
      extra: {},
      command: '',
      seconds: r.ms / 1000,
    };
  }
}

function nodeArgs(
  sys: Running,
  generator: string,
  mode: string,
  w: Workload,
  topic: string,
  records: number,
): string[] {
  const target = generator === 'nats' ? 'nats' : generator === 'redis' ? 'redis' : 'kafka';
  return [
    '--target',
    target,
    '--client',
    'kafkajs',
    '--mode',
    mode,
    '--endpoint',
    `127.0.0.1:${sys.port}`,
    '--topic',
    topic,
    '--partitions',
    String(w.partitions),
    '--records',
    String(records),
    '--size',
    String(w.size),
    '--acks',
    w.acks,
    '--rate',
    String(E2E_RATE),
    '--seconds',
    String(E2E_SECONDS),
    '--warmup-seconds',
    '1',
    ...(opt['kafkajs-nodelay'] && target === 'kafka' ? ['--nodelay'] : []),
  ];
}

async function record(
  sys: Running,
  m: Omit<Measurement, 'peakRssMiB' | 'brokerCpuS' | 'load' | 'result'>,
  cpuBefore: number,
  result: ToolResult,
): Promise<void> {
  const x: Measurement = {
    ...m,
    result,
    peakRssMiB: sys.peakRssMiB(),
    brokerCpuS: sys.cpuSeconds() - cpuBefore,
    load: loadAverage(),
  };
  measurements.push(x);
  const r = x.result;
  progress(
    `  ${m.table} run ${m.run} ${m.workload} ${m.system}/${m.generator}: ${r.ok ? '' : `FAILED (${r.error}) `}${Math.round(r.recordsPerSec).toLocaleString('en-US')} rec/s, p50 ${r.p50Ms.toFixed(1)} p99 ${r.p99Ms.toFixed(1)} p99.9 ${r.p999Ms.toFixed(1)} ms, RSS ${x.peakRssMiB.toFixed(0)} MiB, broker CPU ${x.brokerCpuS.toFixed(1)} s, load ${x.load[0]}`,
  );
  if (r.ok && r.error) progress(`    note: ${r.error}`);
}

async function start(system: SystemName, table: Durability): Promise<Running> {
  const t = performance.now();
  const s = await startSystem(system, table);
  startMs[system] ??= [];
  startMs[system].push(performance.now() - t);
  return s;
}

async function measureProduce(
  table: Durability,
  run: number,
  w: Workload,
  system: SystemName,
): Promise<void> {
  const N = recordsFor(w, table);
  const sys = await start(system, table);
  try {
    for (const generator of generatorsFor(system)) {
      const topic = `bench-${w.id}-${generator}`;
      await sys.createTopic(topic, w.partitions);
      const cpu = sys.cpuSeconds();
      const base = { table, run, workload: w.id, kind: 'produce' as const, system, generator };
      if (generator === 'java') {
        const o = {
          bootstrap: `127.0.0.1:${sys.port}`,
          topic,
          records: N,
          recordSize: w.size,
          acks: w.acks,
          throughput: -1,
          props: javaProps(w.acks),
          timeoutMs: timeoutFor(N, w.size),
        };
        commands.set(
          `produce-java-${w.id}`,
          javaCommand('org.apache.kafka.tools.ProducerPerformance', producerPerfArgs(o, 'HOST:PORT')),
        );
        await record(sys, base, cpu, await producerPerformance(o));
      } else {
        const args = nodeArgs(sys, generator, 'produce', w, topic, N);
        commands.set(
          `produce-${generator}`,
          `node --import tsx scripts/bench/node-client.ts ${args.join(' ').replace(/127\.0\.0\.1:\d+/, 'HOST:PORT')}`,
        );
        await record(sys, base, cpu, await nodeClient(args, timeoutFor(N, w.size)));
      }
    }
  } finally {
    await sys.stop();
  }
}

async function measureConsume(
  table: Durability,
  run: number,
  w: Workload,
  system: SystemName,
): Promise<void> {
  const N = recordsFor(w, table);
  const sys = await start(system, table);
  try {
    const topic = 'bench-consume';
    await sys.createTopic(topic, 1);
    // Fill the log: ProducerPerformance for Kafka-wire systems, the Node client otherwise.
    progress(`  filling ${system} with ${N.toLocaleString('en-US')} × ${w.size} B`);
    const fill =
      system === 'sluice' || system === 'kafka'
        ? await producerPerformance({
            bootstrap: `127.0.0.1:${sys.port}`,
            topic,
            records: N,
            recordSize: w.size,
            acks: '1',
            throughput: -1,
            props: [],
            timeoutMs: timeoutFor(N, w.size),
          })
        : await nodeClient(nodeArgs(sys, system, 'produce', w, topic, N), timeoutFor(N, w.size));
    if (!fill.ok) throw new Error(`filling the log failed: ${fill.error}`);
    for (const generator of generatorsFor(system)) {
      const cpu = sys.cpuSeconds();
      const base = { table, run, workload: w.id, kind: 'consume' as const, system, generator };
      if (generator === 'java') {
        const o = {
          bootstrap: `127.0.0.1:${sys.port}`,
          topic,
          records: N,
          recordSize: w.size,
          timeoutMs: timeoutFor(N, w.size),
        };
        commands.set(
          'consume-java',
          javaCommand('org.apache.kafka.tools.ConsumerPerformance', consumerPerfArgs(o, 'HOST:PORT')),
        );
        await record(sys, base, cpu, await consumerPerformance(o));
      } else {
        const args = nodeArgs(sys, generator, 'consume', w, topic, N);
        commands.set(
          `consume-${generator}`,
          `node --import tsx scripts/bench/node-client.ts ${args.join(' ').replace(/127\.0\.0\.1:\d+/, 'HOST:PORT')}`,
        );
        await record(sys, base, cpu, await nodeClient(args, timeoutFor(N, w.size)));
      }
    }
  } finally {
    await sys.stop();
  }
}

async function measureE2e(table: Durability, run: number, w: Workload, system: SystemName): Promise<void> {
  const sys = await start(system, table);
  try {
    for (const generator of generatorsFor(system)) {
      if (generator === 'java') {
        // Kafka's EndToEndLatency: one record in flight (the tool has no rate option).
        let cpu = sys.cpuSeconds();
        await sys.createTopic('bench-e2e-seq', 1);
        const o = {
          bootstrap: `127.0.0.1:${sys.port}`,
          topic: 'bench-e2e-seq',
          records: E2E_SEQ_RECORDS,
          recordSize: w.size,
          acks: w.acks,
          timeoutMs: 60_000 + E2E_SEQ_RECORDS * 20,
        };
        commands.set(
          'e2e-seq-java',
          javaCommand('org.apache.kafka.tools.EndToEndLatency', endToEndArgs(o, 'HOST:PORT')),
        );
        await record(
          sys,
          { table, run, workload: w.id, kind: 'e2e-seq', system, generator: 'EndToEndLatency' },
          cpu,
          await endToEndLatency(o),
        );
        // ProducerPerformance at the fixed rate: acknowledgement latency.
        cpu = sys.cpuSeconds();
        await sys.createTopic('bench-ack-rate', 1);
        const p = {
          bootstrap: `127.0.0.1:${sys.port}`,
          topic: 'bench-ack-rate',
          records: E2E_RATE * E2E_SECONDS,
          recordSize: w.size,
          acks: w.acks,
          throughput: E2E_RATE,
          warmupRecords: E2E_RATE,
          props: javaProps(w.acks),
          timeoutMs: 120_000 + E2E_SECONDS * 2000,
        };
        commands.set(
          'ack-rate-java',
          javaCommand('org.apache.kafka.tools.ProducerPerformance', producerPerfArgs(p, 'HOST:PORT')),
        );
        await record(
          sys,
          { table, run, workload: w.id, kind: 'ack-rate', system, generator: 'ProducerPerformance' },
          cpu,
          await producerPerformance(p),
        );
      } else {
        const topic = `bench-e2e-${generator}`;
        await sys.createTopic(topic, 1);
        const cpu = sys.cpuSeconds();
        const args = nodeArgs(sys, generator, 'e2e', w, topic, 0);
        commands.set(
          `e2e-${generator}`,
          `node --import tsx scripts/bench/node-client.ts ${args.join(' ').replace(/127\.0\.0\.1:\d+/, 'HOST:PORT')}`,
        );
        await record(
          sys,
          { table, run, workload: w.id, kind: 'e2e', system, generator },
          cpu,
          await nodeClient(args, 120_000 + E2E_SECONDS * 3000),
        );
      }
    }
  } finally {
    await sys.stop();
  }
}

// ----------------------------------------------------------------------------- rows

function rowsFor(table: Durability): Row[] {
  const ms = measurements.filter((m) => m.table === table);
  const keys: string[] = [];
  const groups = new Map<string, Measurement[]>();
  for (const m of ms) {
    const k = `${m.workload}|${m.kind}|${m.system}|${m.generator}`;
    if (!groups.has(k)) {
      keys.push(k);
      groups.set(k, []);
    }
    groups.get(k)!.push(m);
  }
  const rows: Row[] = [];
  for (const w of WORKLOADS) {
    for (const k of keys.filter((k) => k.startsWith(`${w.id}|`))) {
      const g = groups.get(k)!;
      const ok = g.filter((m) => m.result.ok);
      const first = g[0]!;
      const med = (f: (m: Measurement) => number) => median(ok.map(f));
      const family: Row['family'] =
        first.generator === 'java' || first.kind === 'e2e-seq' || first.kind === 'ack-rate' ? 'java' : 'node';
      const genLabel =
        first.kind === 'e2e-seq'
          ? 'EndToEndLatency (1 in flight)'
          : first.kind === 'ack-rate'
            ? `ProducerPerformance at ${E2E_RATE.toLocaleString('en-US')}/s (ack latency)`
            : (GENERATOR_LABEL[first.generator] ?? first.generator);
      const unsupported = g.find((m) => m.result.error?.startsWith('unsupported:'));
      rows.push({
        table,
        workload: w.id,
        workloadLabel: w.label,
        kind: first.kind,
        system: first.system,
        systemLabel: SYSTEM_LABEL[first.system],
        generator: genLabel,
        family,
        durability: unsupported ? 'n/a' : durabilityText(first.system, table, w.acks),
        runs: g.length,
        okRuns: ok.length,
        errors: [...new Set(g.map((m) => m.result.error).filter((e): e is string => !!e))],
        recordsPerSec: med((m) => m.result.recordsPerSec),
        mibPerSec: med((m) => m.result.mibPerSec),
        p50Ms: med((m) => m.result.p50Ms),
        p99Ms: med((m) => m.result.p99Ms),
        p999Ms: med((m) => m.result.p999Ms),
        peakRssMiB: med((m) => m.peakRssMiB),
        brokerCpuS: med((m) => m.brokerCpuS),
        note: unsupported ? unsupported.result.error!.slice('unsupported: '.length) : undefined,
      });
    }
  }
  // ratios against Sluice's row of the same workload, kind and family (kafkajs for the Node rows)
  for (const r of rows) {
    if (r.system === 'sluice') continue;
    const s = rows.find(
      (x) =>
        x.system === 'sluice' &&
        x.workload === r.workload &&
        x.kind === r.kind &&
        x.family === r.family &&
        (r.family === 'java' || x.generator === GENERATOR_LABEL.kafkajs),
    );
    if (!s) continue;
    const latencyKind = r.kind === 'e2e' || r.kind === 'e2e-seq' || r.kind === 'ack-rate';
    r.ratio = latencyKind ? s.p99Ms / r.p99Ms : s.recordsPerSec / r.recordsPerSec;
    if (r.kind === 'produce') r.ratioRss = s.peakRssMiB / r.peakRssMiB;
  }
  return rows;
}

// ----------------------------------------------------------------------------- environment

function sh(cmd: string): string {
  try {
    return execSync(cmd, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (e) {
    return `(${cmd} failed: ${(e as Error).message.split('\n')[0]})`;
  }
}

function environment(): Record<string, string> {
  const pkg = (name: string) => {
    try {
      return (
        JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as {
          version: string;
        }
      ).version;
    } catch {
      return '?';
    }
  };
  return {
    nproc: sh('nproc'),
    'free -g': sh('free -g'),
    cpu: cpus()[0]?.model ?? '?',
    memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    kernel: sh('uname -r'),
    os: sh('. /etc/os-release && echo "$PRETTY_NAME"'),
    disk: sh(`df -hT ${JSON.stringify(process.env.TMPDIR ?? '/tmp')} | tail -1`),
    node: process.version,
    java: sh('java -version 2>&1 | head -1'),
    kafka: `Apache Kafka ${KAFKA_VERSION} (Maven Central jars, KRaft combined mode, compat/kafka-reference.ts: -Xms256m -Xmx768m, G1)`,
    'nats-server': sh('nats-server --version'),
    'redis-server': sh('redis-server --version'),
    sluice:
      SLUICE_HOME === REPO_ROOT
        ? `${sh(`git -C ${REPO_ROOT} rev-parse --short HEAD`)}${sh(`git -C ${REPO_ROOT} status --porcelain src`) ? ' + uncommitted changes in src/' : ''} (dist/ as built)`
        : `${sh(`cat ${JSON.stringify(join(SLUICE_HOME, 'REVISION'))}`)} (frozen build in ${SLUICE_HOME})`,

    kafkajs: pkg('kafkajs'),
    nats: pkg('nats'),
    redis: pkg('redis'),
  };
}

// ----------------------------------------------------------------------------- main

async function main(): Promise<void> {
  const env = environment();
  const loadStart = loadAverage();
  const started = new Date();
  progress(
    `bench: ${RECORDS.toLocaleString('en-US')} records, runs ${RUNS} (targets ${TARGET_RUNS}), tables ${TABLES.join(',')}, systems ${SYSTEMS.join(',')}; load ${loadStart.join(' ')}`,
  );
  await ensureTools();
  // Only asked of a nats-server that will run (a machine without one can still bench the others).
  const natsSync = SYSTEMS.includes('nats') ? await natsSupportsSyncAlways() : false;

  let limits: Limits | undefined;
  if (!opt['skip-limits']) {
    progress('physical limits (dd, fdatasync loop, iperf3, Node loopback)');
    limits = await measureLimits();
    progress(`  ${JSON.stringify(limits)}`);
  }
  let startup: Awaited<ReturnType<typeof measureStartup>> | undefined;
  if (!opt['skip-startup']) {
    startup = await measureStartup(Number(opt['startup-runs']));
    progress(`startup: median ${startup.medianMs.toFixed(0)} ms spawn → ApiVersions`);
  }

  for (const table of TABLES) {
    const maxRuns = Math.max(RUNS, ...SELECTED.filter((w) => isTarget(w, table)).map(() => TARGET_RUNS));
    for (let run = Number(opt['first-run']); run <= maxRuns; run++) {
      for (const w of SELECTED) {
        if (w.tables && !w.tables.includes(table)) continue;
        if (run > (isTarget(w, table) ? TARGET_RUNS : RUNS)) continue;
        // rotate the order of systems from run to run, so no system always goes first
        const order = SYSTEMS.map((_, i) => SYSTEMS[(i + run - 1) % SYSTEMS.length]!);
        for (const system of order) {
          if (generatorsFor(system).length === 0) continue;
          progress(`${table} run ${run}: ${w.label} — ${SYSTEM_LABEL[system]}`);
          try {
            if (w.kind === 'produce') await measureProduce(table, run, w, system);
            else if (w.kind === 'consume') await measureConsume(table, run, w, system);
            else await measureE2e(table, run, w, system);
          } catch (e) {
            const msg =
              e instanceof Unsupported
                ? `unsupported: ${e.message}`
                : String((e as Error).message ?? e).slice(0, 400);
            progress(`  ${system}: ${msg}`);
            for (const generator of generatorsFor(system)) {
              const kinds: Row['kind'][] =
                w.kind === 'e2e' && generator === 'java' ? ['e2e-seq', 'ack-rate'] : [w.kind];
              for (const kind of kinds) {
                measurements.push({
                  table,
                  run,
                  workload: w.id,
                  kind,
                  system,
                  generator:
                    kind === 'e2e-seq'
                      ? 'EndToEndLatency'
                      : kind === 'ack-rate'
                        ? 'ProducerPerformance'
                        : generator,
                  result: {
                    ok: false,
                    error: msg,
                    recordsPerSec: Number.NaN,
                    mibPerSec: Number.NaN,
                    p50Ms: Number.NaN,
                    p99Ms: Number.NaN,
                    p999Ms: Number.NaN,
                    avgMs: Number.NaN,
                    maxMs: Number.NaN,
                    extra: {},
                    command: '',
                    seconds: 0,
                  },
                  peakRssMiB: Number.NaN,
                  brokerCpuS: Number.NaN,
                  load: loadAverage(),
                });
              }
            }
          }
        }
      }
    }
  }

  let profile: ProfileSummary | undefined;
  if (!opt['skip-profile']) profile = await profileSluice(Number(opt['profile-records']));
  const loadEnd = loadAverage();
  const finished = new Date();

  let startedAt = started;
  let loadAtStart = loadStart;
  if (opt.merge) {
    const prior = JSON.parse(readFileSync(opt.merge, 'utf8'), (k, v) =>
      v === null && k !== 'error' ? Number.NaN : v,
    ) as {
      started: string;
      loadStart: [number, number, number];
      limits?: Limits;
      startup?: Awaited<ReturnType<typeof measureStartup>>;
      profile?: ProfileSummary;
      startMs: Record<string, number[]>;
      measurements: Measurement[];
      commands: Record<string, string>;
    };
    const key = (m: Measurement) => `${m.table}|${m.workload}|${m.run}|${m.system}|${m.generator}`;
    const ran = new Set(measurements.map(key));
    const kept = prior.measurements.filter((m) => !ran.has(key(m)));
    measurements.unshift(...kept);
    for (const [k, v] of Object.entries(prior.commands)) if (!commands.has(k)) commands.set(k, v);
    for (const [k, v] of Object.entries(prior.startMs)) startMs[k] = [...v, ...(startMs[k] ?? [])];
    limits ??= prior.limits;
    startup ??= prior.startup;
    profile ??= prior.profile;
    startedAt = new Date(prior.started);
    loadAtStart = prior.loadStart;
    progress(`merged ${kept.length} measurements from ${opt.merge}`);
  }
  const allTables = (['defaults', 'fsync'] as Durability[]).filter((t) =>
    measurements.some((m) => m.table === t),
  );
  const tables = Object.fromEntries(allTables.map((t) => [t, rowsFor(t)])) as Record<Durability, Row[]>;
  for (const t of allTables) {
    console.log(
      `\n${t === 'defaults' ? "Each broker's defaults" : 'fsync before acknowledging, for all'} (median of runs; ${RECORDS.toLocaleString('en-US')} records per target row, ${OTHER_RECORDS.toLocaleString('en-US')} per other produce row)\n`,
    );
    console.log(consoleTable(tables[t]));
  }
  const targets = targetLines(tables, startup);
  console.log(`\nTargets:\n${targets.map((t) => `- ${t}`).join('\n')}`);
  console.log(`\nload average at start ${loadAtStart.join(' ')}, at end ${loadEnd.join(' ')}`);

  const resultsDir = join(BENCH_DIR, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const raw = {
    started: startedAt.toISOString(),
    finished: finished.toISOString(),
    options: opt,
    env,
    loadStart: loadAtStart,
    loadEnd,
    limits,
    startup,
    startMs,
    profile,
    measurements,
    commands: Object.fromEntries(commands),
  };
  writeFileSync(join(resultsDir, 'latest.json'), `${JSON.stringify(raw, null, 2)}\n`);
  if (opt['no-docs']) return;
  writeDocs({
    env,
    tables,
    limits,
    startup,
    profile,
    targets,
    loadStart: loadAtStart,
    loadEnd,
    started: startedAt,
    finished,
    natsSync,
  });
}

function findRow(
  rows: Row[] | undefined,
  workload: string,
  kind: Row['kind'],
  system: string,
  family: Row['family'],
  generator?: string,
): Row | undefined {
  return rows?.find(
    (r) =>
      r.workload === workload &&
      r.kind === kind &&
      r.system === system &&
      r.family === family &&
      (!generator || r.generator === generator),
  );
}

function targetLines(tables: Partial<Record<Durability, Row[]>>, startup?: { medianMs: number }): string[] {
  const out: string[] = [];
  const verdict = (ok: boolean | undefined) =>
    ok === undefined ? 'not measured' : ok ? '**met**' : '**not met**';
  const ratio = (a?: number, b?: number) =>
    a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) ? a / b : undefined;
  const fmt = (x?: number) => (x === undefined ? '–' : `${x >= 0.1 ? x.toFixed(2) : x.toPrecision(2)}×`);
  {
    const s = findRow(tables.fsync, '1k-1p-all', 'produce', 'sluice', 'java');
    const k = findRow(tables.fsync, '1k-1p-all', 'produce', 'kafka', 'java');
    const r = ratio(s?.recordsPerSec, k?.recordsPerSec);
    out.push(
      `Produce 1 KiB, acks=all, fsync before ack for both (ProducerPerformance, 1 partition): Sluice ${Math.round(s?.recordsPerSec ?? Number.NaN).toLocaleString('en-US')} vs Kafka ${Math.round(k?.recordsPerSec ?? Number.NaN).toLocaleString('en-US')} records/s = ${fmt(r)} (target ≥ 1.0×): ${verdict(r === undefined ? undefined : r >= 1)}`,
    );
  }
  for (const t of ['fsync', 'defaults'] as Durability[]) {
    const s = findRow(tables[t], 'e2e', 'e2e', 'sluice', 'node');
    const k = findRow(tables[t], 'e2e', 'e2e', 'kafka', 'node');
    const r = ratio(s?.p99Ms, k?.p99Ms);
    if (!s && !k) continue;
    out.push(
      `End-to-end p99 at ${E2E_RATE.toLocaleString('en-US')} records/s (kafkajs, acks=all, ${t === 'fsync' ? 'fsync for both' : 'defaults: Sluice fsyncs, Kafka does not'}): Sluice ${s?.p99Ms.toFixed(1)} ms vs Kafka ${k?.p99Ms.toFixed(1)} ms = ${fmt(r)} (target ≤ 0.5×): ${verdict(r === undefined ? undefined : r <= 0.5)}`,
    );
  }
  for (const fam of ['java', 'node'] as const) {
    const s = findRow(tables.defaults, 'consume', 'consume', 'sluice', fam);
    const k = findRow(tables.defaults, 'consume', 'consume', 'kafka', fam);
    const r = ratio(s?.recordsPerSec, k?.recordsPerSec);
    if (!s && !k) continue;
    out.push(
      `Consumer throughput from a full log (${fam === 'java' ? 'ConsumerPerformance' : 'kafkajs'}): Sluice ${Math.round(s?.recordsPerSec ?? Number.NaN).toLocaleString('en-US')} vs Kafka ${Math.round(k?.recordsPerSec ?? Number.NaN).toLocaleString('en-US')} records/s = ${fmt(r)} (target ≥ 1.0×): ${verdict(r === undefined ? undefined : r >= 1)}`,
    );
  }
  for (const t of ['defaults', 'fsync'] as Durability[]) {
    const s = findRow(tables[t], '1k-1p-all', 'produce', 'sluice', 'java');
    const k = findRow(tables[t], '1k-1p-all', 'produce', 'kafka', 'java');
    const r = ratio(s?.peakRssMiB, k?.peakRssMiB);
    if (!s && !k) continue;
    out.push(
      `Broker peak RSS under the produce workload (1 KiB acks=all, ${t}): Sluice ${s?.peakRssMiB.toFixed(0)} MiB vs Kafka ${k?.peakRssMiB.toFixed(0)} MiB = ${fmt(r)} (target ≤ 0.5×): ${verdict(r === undefined ? undefined : r <= 0.5)}`,
    );
  }
  if (startup)
    out.push(
      `Time from \`sluice start\` to an answered ApiVersions: median ${startup.medianMs.toFixed(0)} ms (target < 500 ms): ${verdict(startup.medianMs < 500)}`,
    );
  return out;
}

function chartGroups(
  rows: Row[],
  pick: (r: Row) => number,
  text: (r: Row) => string,
  filter: (r: Row) => boolean,
): BarGroup[] {
  const groups: BarGroup[] = [];
  for (const r of rows.filter(filter)) {
    let g = groups.find((x) => x.title === r.workloadLabel);
    if (!g) {
      g = { title: r.workloadLabel, bars: [] };
      groups.push(g);
    }
    g.bars.push({
      label: `${r.systemLabel} · ${r.generator}`,
      system: r.system,
      value: r.okRuns ? pick(r) : Number.NaN,
      text: text(r),
    });
  }
  return groups;
}

function writeDocs(d: {
  env: Record<string, string>;
  tables: Partial<Record<Durability, Row[]>>;
  limits?: Limits;
  startup?: Awaited<ReturnType<typeof measureStartup>>;
  profile?: ProfileSummary;
  targets: string[];
  loadStart: number[];
  loadEnd: number[];
  started: Date;
  finished: Date;
  natsSync: boolean;
}): void {
  const docPath = join(REPO_ROOT, 'docs', 'benchmarks.md');
  const blocks: Record<string, string> = {};
  blocks.machine = [
    `Measured ${d.started.toISOString().slice(0, 16).replace('T', ' ')}–${d.finished.toISOString().slice(11, 16)} UTC; load average (1/5/15 min) at the start ${d.loadStart.join(' / ')}, at the end ${d.loadEnd.join(' / ')} (the machine has ${d.env.nproc} cores).`,
    '',
    '| | |',
    '| --- | --- |',
    ...Object.entries(d.env)
      .filter(([k]) => k !== 'free -g')
      .map(([k, v]) => `| ${k} | ${v.replace(/\|/g, '\\|')} |`),
    '',
    '```',
    '$ free -g',
    d.env['free -g'] ?? '',
    '```',
  ].join('\n');
  blocks.commands = ['```sh', ...[...commands].sort().map(([k, v]) => `# ${k}\n${v}`), '```'].join('\n');
  for (const t of ['defaults', 'fsync'] as Durability[]) {
    const rows = d.tables[t];
    const loads = measurements
      .filter((m) => m.table === t)
      .map((m) => m.load[0])
      .filter((x) => Number.isFinite(x));
    if (rows) {
      blocks[`table-${t}`] = [
        `1-minute load average while these rows ran: ${Math.min(...loads)}–${Math.max(...loads)} (median ${median(loads).toFixed(2)}) on ${d.env.nproc} cores.`,
        '',
        markdownTable(rows),
      ].join('\n');
    }
  }
  blocks.targets = d.targets.map((t) => `- ${t}`).join('\n');
  if (d.limits) {
    const L = d.limits;
    const best = (t: Durability, w: string) =>
      findRow(d.tables[t], w, 'produce', 'sluice', 'java')?.mibPerSec ?? Number.NaN;
    const frac = (x: number, of: number) =>
      Number.isFinite(x) && Number.isFinite(of) ? `${((100 * x) / of).toFixed(0)} %` : '–';
    const sAll = best('defaults', '1k-1p-all');
    const s1 = best('defaults', '1k-1p-1');
    blocks.limits = [
      '| limit | measured | Sluice 1 KiB acks=all (fsync) | Sluice 1 KiB acks=1 |',
      '| --- | ---: | ---: | ---: |',
      `| sequential write + fdatasync (\`${L.ddSeqCommand}\`) | ${L.ddSeqMiBps.toFixed(0)} MiB/s | ${frac(sAll, L.ddSeqMiBps)} | ${frac(s1, L.ddSeqMiBps)} |`,
      `| 4 KiB synced append (\`${L.dd4kCommand}\`) | ${L.dd4kDsyncAvgMs.toFixed(2)} ms each | | |`,
      `| 4 KiB append + fdatasync, Node loop of 1,000 | p50 ${L.sync4kP50Ms.toFixed(2)} ms, p99 ${L.sync4kP99Ms.toFixed(2)} ms (${Math.round(L.sync4kPerSec)}/s) | | |`,
      `| loopback TCP, iperf3 (5 s) | ${L.iperf3MiBps.toFixed(0)} MiB/s | ${frac(sAll, L.iperf3MiBps)} | ${frac(s1, L.iperf3MiBps)} |`,
      `| loopback TCP, Node socket pair (5 s) | ${L.nodeLoopbackMiBps.toFixed(0)} MiB/s | ${frac(sAll, L.nodeLoopbackMiBps)} | ${frac(s1, L.nodeLoopbackMiBps)} |`,
      '',
      `Sluice's figures: ProducerPerformance, defaults table (acks=all ${Number.isFinite(sAll) ? sAll.toFixed(1) : '–'} MiB/s, acks=1 ${Number.isFinite(s1) ? s1.toFixed(1) : '–'} MiB/s).`,
    ].join('\n');
  }
  if (d.startup) {
    const s = d.startup;
    blocks.startup = [
      `Median of ${s.samples.length}: **${s.medianMs.toFixed(0)} ms** from spawning \`node bin/sluice.js start\` (fresh data dir) to the first answered ApiVersions (probed every 2 ms); the broker's own "ready in" figure, which starts after Node has loaded the modules, has median ${s.medianSelfMs} ms.`,
      '',
      `Samples (ms): ${s.samples.map((x) => x.toApiVersionsMs.toFixed(0)).join(', ')}.`,
      '',
      ...(Object.keys(startMs).length
        ? [
            `For comparison, starting each system in this run (including data-dir setup; Kafka includes two \`kafka-storage\` JVM runs to format KRaft storage), median ms: ${Object.entries(
              startMs,
            )
              .map(([k, v]) => `${SYSTEM_LABEL[k as SystemName]} ${median(v).toFixed(0)}`)
              .join(', ')}.`,
          ]
        : []),
    ].join('\n');
  }
  if (d.profile) blocks.profile = profileMarkdown(d.profile);
  const charts: string[] = [];
  for (const t of ['defaults', 'fsync'] as Durability[]) {
    const rows = d.tables[t];
    if (!rows) continue;
    const tp = barChartSvg(
      `Throughput, ${t === 'defaults' ? "each broker's defaults" : 'fsync before ack for all'}`,
      'records/s (median)',
      chartGroups(
        rows,
        (r) => r.recordsPerSec,
        (r) => `${Math.round(r.recordsPerSec).toLocaleString('en-US')}/s`,
        (r) => r.kind === 'produce' || r.kind === 'consume',
      ),
    );
    const lat = barChartSvg(
      `Latency p99, ${t === 'defaults' ? "each broker's defaults" : 'fsync before ack for all'}`,
      'milliseconds (median of runs)',
      chartGroups(
        rows,
        (r) => r.p99Ms,
        (r) => `p50 ${r.p50Ms.toFixed(1)} · p99 ${r.p99Ms.toFixed(1)} · p99.9 ${r.p999Ms.toFixed(1)} ms`,
        (r) => r.kind === 'e2e' || r.kind === 'e2e-seq' || r.kind === 'ack-rate',
      ),
      { log: true },
    );
    writeFileSync(join(REPO_ROOT, 'docs', `benchmarks-throughput-${t}.svg`), tp);
    writeFileSync(join(REPO_ROOT, 'docs', `benchmarks-latency-${t}.svg`), lat);
    charts.push(
      `![throughput, ${t}](benchmarks-throughput-${t}.svg)`,
      '',
      `![latency, ${t}](benchmarks-latency-${t}.svg)`,
      '',
    );
  }
  blocks.charts = charts.join('\n');
  blocks.settings = settingsText(d.natsSync);
  replaceBlocks(docPath, blocks, SKELETON);
  progress(`wrote ${docPath}, docs/benchmarks-*.svg, scripts/bench/results/latest.json`);
}

function settingsText(natsSync: boolean): string {
  return [
    `- Records: ${RECORDS.toLocaleString('en-US')} per row behind a target (fsync table: produce 1 KiB 1 partition acks=all, end-to-end; defaults table: consume, end-to-end), ${OTHER_RECORDS.toLocaleString('en-US')} per other produce row; 1 KiB or 100 B each (random capital letters, no key, no compression). Each figure is the median of its runs; the "runs" column says how many succeeded of how many were attempted (rows behind a target: ${TARGET_RUNS}).`,
    "- Every row starts its system with a fresh data directory in the temp dir (same ext4 file system for all) on 127.0.0.1 and stops it afterwards. A produce row's broker serves the Java tool first, then kafkajs (peak RSS is VmHWM when the row ends, so a kafkajs row includes the Java run before it). The consume row fills the log first (ProducerPerformance acks=1; nats.js/node-redis for the others), then reads it from the start; page cache is warm for all.",
    `- Java producer: Kafka ${KAFKA_VERSION}'s defaults (batch.size 16384, linger.ms 5, max.in.flight 5, buffer.memory 32 MiB), acks as stated${opt['java-idempotence'] ? '' : ', and `enable.idempotence=false` for acks=all on both brokers (see "Problems found while benchmarking")'}. Records/s and latency are the tool's own figures (latency: send() to callback, whole ms).`,
    '- ConsumerPerformance: records/s is its fetch.nMsg.sec (after the group join); one consumer, fetch.max.bytes defaults.',
    '- kafkajs: each send() carries one 16 KiB batch per partition, at most 5 send() calls outstanding, idempotent off; consumer with a fresh group, maxBytesPerPartition 1 MiB. nats.js: async `js.publish` with 500 outstanding (best of 50/200/500/2,000/10,000 on this machine), one stream per partition (subject T.p, file storage); consumer: ordered consumer, 1 MiB worth of messages per pull. node-redis: XADD with 500 outstanding (pipelined; likewise chosen), one key per partition; consumer: XRANGE COUNT 1 MiB worth.',
    `- End-to-end: the Node harness sends ${E2E_RATE.toLocaleString('en-US')} records/s for ${E2E_SECONDS} s (1 KiB, acks=all) while a consumer in the same process follows the log; latency is receipt minus the scheduled send time; the first second is excluded. Kafka's EndToEndLatency keeps one record in flight (no rate option; ${E2E_SEQ_RECORDS.toLocaleString('en-US')} records, whole ms). ProducerPerformance --throughput ${E2E_RATE} --warmup-records ${E2E_RATE} gives the acknowledgement latency at that rate after the first second (its steady-state figures).`,
    '- Sluice: `node bin/sluice.js start --set group.initial.rebalance.delay.ms=0` (as the reference Kafka), fsync table adds `--set log.flush.interval.messages=1`. Kafka: compat/kafka-reference.ts, fsync table creates topics with `flush.messages=1`. Redis: `redis-server --port P --bind 127.0.0.1 --dir D` (built-in defaults), fsync table adds `--appendonly yes --appendfsync always`.',
    `- NATS: \`nats-server -c\` with \`jetstream { store_dir }\`; ${natsSync ? 'the fsync table adds `sync_interval: always`.' : "the fsync table needs `sync_interval: always`, which this nats-server (Debian 12's 2.9.10) does not have (NATS 2.10+): its fsync rows are marked n/a."}`,
    '- Acks: JetStream and Redis have one acknowledgement mode on a single server, so their acks=1 and acks=all rows run the same configuration.',
  ].join('\n');
}

const SKELETON = `# Benchmarks

Figures for Sluice beside Apache Kafka ${KAFKA_VERSION}, NATS JetStream and Redis Streams, measured in one
run on one machine by \`npm run bench\` (scripts/bench/run.ts). The blocks between \`bench:\` markers
are rewritten by each run; the rest is written by hand.

## Machine and versions

<!-- bench:machine -->
<!-- /bench:machine -->

## Settings

<!-- bench:settings -->
<!-- /bench:settings -->

## Targets

<!-- bench:targets -->
<!-- /bench:targets -->

## Each broker's defaults

<!-- bench:table-defaults -->
<!-- /bench:table-defaults -->

## fsync before acknowledging, for all

<!-- bench:table-fsync -->
<!-- /bench:table-fsync -->

## Charts

<!-- bench:charts -->
<!-- /bench:charts -->

## Physical limits of this machine

<!-- bench:limits -->
<!-- /bench:limits -->

## Startup time

<!-- bench:startup -->
<!-- /bench:startup -->

## Where the time goes

<!-- bench:profile -->
<!-- /bench:profile -->

## Commands

<!-- bench:commands -->
<!-- /bench:commands -->
`;

main().catch((err: unknown) => {
  console.error(`bench failed: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
