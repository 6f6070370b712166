/**
 * Kafka's own load generators from org.apache.kafka:kafka-tools 4.4.0, run with identical
 * arguments against Sluice and Apache Kafka:
 *
 *   java -cp 'libs/*' org.apache.kafka.tools.ProducerPerformance --topic T --num-records N
 *        --record-size S --throughput -1 --command-property bootstrap.servers=HOST:PORT acks=A ...
 *   java -cp 'libs/*' org.apache.kafka.tools.ConsumerPerformance --bootstrap-server HOST:PORT
 *        --topic T --num-records N --timeout 60000
 *   java -cp 'libs/*' org.apache.kafka.tools.EndToEndLatency --bootstrap-server HOST:PORT
 *        --topic T --num-records N --producer-acks A --record-size S
 *
 * The jars are the reference broker's (compat/kafka-reference.ts `ensureKafkaJars`: kafka_2.13 and
 * kafka-tools 4.4.0 with their runtime dependencies, from Maven Central, cached in
 * compat/.cache/kafka-4.4.0/libs). JVM options are those of Kafka's bin/kafka-*-perf-test.sh
 * (-Xmx512M and kafka-run-class.sh's G1 settings).
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureKafkaJars, kafkaClasspath } from '../../compat/kafka-reference.js';
import { BENCH_DIR, type ExecResult, exec } from './lib.js';

const CACHE = join(BENCH_DIR, '.cache');
const LOG4J = join(CACHE, 'tools-log4j2.properties');

export async function ensureTools(): Promise<void> {
  await ensureKafkaJars();
  mkdirSync(CACHE, { recursive: true });
  writeFileSync(
    LOG4J,
    [
      'status = warn',
      'appender.err.type = Console',
      'appender.err.name = STDERR',
      'appender.err.target = SYSTEM_ERR',
      'appender.err.layout.type = PatternLayout',
      'appender.err.layout.pattern = [%d] %p %m (%c)%n',
      'rootLogger.level = WARN',
      'rootLogger.appenderRef.err.ref = STDERR',
      '',
    ].join('\n'),
  );
}

export const JVM_OPTS = [
  '-Xmx512M',
  '-server',
  '-XX:+UseG1GC',
  '-XX:MaxGCPauseMillis=20',
  '-XX:InitiatingHeapOccupancyPercent=35',
  '-XX:+ExplicitGCInvokesConcurrent',
  '-Djava.awt.headless=true',
];

function javaArgs(mainClass: string, args: string[]): string[] {
  return [...JVM_OPTS, `-Dlog4j2.configurationFile=${LOG4J}`, '-cp', kafkaClasspath(), mainClass, ...args];
}

/** The command line as a user would type it (for docs/benchmarks.md). */
export function javaCommand(mainClass: string, args: string[]): string {
  return ['java', '-Xmx512M', "-cp 'libs/*'", mainClass, ...args].join(' ');
}

export interface ToolResult {
  ok: boolean;
  error?: string;
  recordsPerSec: number;
  mibPerSec: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  avgMs: number;
  maxMs: number;
  /** Extra figures a tool reports (e.g. ConsumerPerformance's rebalance time). */
  extra: Record<string, number>;
  command: string;
  seconds: number;
}

function firstError(r: ExecResult): string {
  const lines = (r.stderr + r.stdout).split('\n');
  const e =
    lines.find((l) => /Error: [A-Z_]+/.test(l)) ??
    lines.find((l) => /Exception|ERROR/.test(l)) ??
    lines.slice(-3).join(' ');
  return (r.timedOut ? 'timed out; ' : '') + e.slice(0, 400);
}

function failed(command: string, r: ExecResult, why?: string): ToolResult {
  return {
    ok: false,
    error: why ?? firstError(r),
    recordsPerSec: Number.NaN,
    mibPerSec: Number.NaN,
    p50Ms: Number.NaN,
    p99Ms: Number.NaN,
    p999Ms: Number.NaN,
    avgMs: Number.NaN,
    maxMs: Number.NaN,
    extra: {},
    command,
    seconds: r.ms / 1000,
  };
}

export interface ProducerPerfOptions {
  bootstrap: string;
  topic: string;
  records: number;
  recordSize: number;
  acks: '1' | 'all';
  /** -1: as fast as possible. */
  throughput: number;
  /** Further producer properties (key=value). */
  props: string[];
  timeoutMs: number;
  /** Records left out of the figures (--warmup-records): the tool then reports a steady state. */
  warmupRecords?: number;
}

export function producerPerfArgs(o: ProducerPerfOptions, bootstrapText = o.bootstrap): string[] {
  return [
    '--topic',
    o.topic,
    '--num-records',
    String(o.records),
    '--record-size',
    String(o.recordSize),
    '--throughput',
    String(o.throughput),
    ...(o.warmupRecords ? ['--warmup-records', String(o.warmupRecords)] : []),
    '--command-property',
    `bootstrap.servers=${bootstrapText}`,
    `acks=${o.acks}`,
    ...o.props,
  ];
}

// "200000 records sent, 49455.98 records/sec (48.30 MB/sec), 489.77 ms avg latency,
//  677.00 ms max latency, 506 ms 50th, 647 ms 95th, 670 ms 99th, 674 ms 99.9th."
const PP_FINAL =
  /(\d+) (steady state )?records sent, ([\d.]+) records\/sec \(([\d.]+) MB\/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th/g;

export async function producerPerformance(o: ProducerPerfOptions): Promise<ToolResult> {
  const main = 'org.apache.kafka.tools.ProducerPerformance';
  const args = producerPerfArgs(o);
  const command = javaCommand(main, producerPerfArgs(o, 'HOST:PORT'));
  const r = await exec('java', javaArgs(main, args), { timeoutMs: o.timeoutMs });
  // With --warmup-records the tool prints a second, "steady state" summary: prefer it.
  const all = [...r.stdout.matchAll(PP_FINAL)];
  const m = all.find((x) => x[2]) ?? all[all.length - 1];
  if (!m || r.code !== 0) return failed(command, r);
  // Retried errors (e.g. OUT_OF_ORDER_SEQUENCE_NUMBER) still count: the run was not clean.
  const retried = (r.stderr.match(/Got error produce response/g) ?? []).length;
  const rps = Number(m[3]);
  return {
    ok: Number(m[1]) === o.records - (m[2] ? (o.warmupRecords ?? 0) : 0),
    error: retried ? `${retried} produce errors retried, first: ${firstError(r)}` : undefined,
    recordsPerSec: rps,
    mibPerSec: (rps * o.recordSize) / (1024 * 1024),
    avgMs: Number(m[5]),
    maxMs: Number(m[6]),
    p50Ms: Number(m[7]),
    p99Ms: Number(m[9]),
    p999Ms: Number(m[10]),
    extra: { p95Ms: Number(m[8]), retriedErrors: retried, steadyState: m[2] ? 1 : 0 },
    command,
    seconds: r.ms / 1000,
  };
}

export interface ConsumerPerfOptions {
  bootstrap: string;
  topic: string;
  records: number;
  recordSize: number;
  timeoutMs: number;
}

export function consumerPerfArgs(o: ConsumerPerfOptions, bootstrapText = o.bootstrap): string[] {
  return [
    '--bootstrap-server',
    bootstrapText,
    '--topic',
    o.topic,
    '--num-records',
    String(o.records),
    '--timeout',
    '60000',
  ];
}

/**
 * Records/s is ConsumerPerformance's fetch.nMsg.sec: from the end of the group join to the last
 * record (its nMsg.sec also counts joining the group, reported as extra.rebalanceMs).
 */
export async function consumerPerformance(o: ConsumerPerfOptions): Promise<ToolResult> {
  const main = 'org.apache.kafka.tools.ConsumerPerformance';
  const command = javaCommand(main, consumerPerfArgs(o, 'HOST:PORT'));
  const r = await exec('java', javaArgs(main, consumerPerfArgs(o)), { timeoutMs: o.timeoutMs });
  const lines = r.stdout.trim().split('\n');
  const header = lines.findIndex((l) => l.startsWith('start.time'));
  const row = header >= 0 ? lines[header + 1] : undefined;
  if (!row || r.code !== 0) return failed(command, r);
  const f = row.split(',').map((s) => s.trim());
  const consumed = Number(f[4]);
  const nan = Number.NaN;
  return {
    ok: consumed >= o.records && !/WARNING: Exiting before/.test(r.stdout + r.stderr),
    error: consumed < o.records ? `consumed only ${consumed} of ${o.records}` : undefined,
    recordsPerSec: Number(f[9]),
    mibPerSec: (Number(f[9]) * o.recordSize) / (1024 * 1024),
    p50Ms: nan,
    p99Ms: nan,
    p999Ms: nan,
    avgMs: nan,
    maxMs: nan,
    extra: {
      overallRecordsPerSec: Number(f[5]),
      rebalanceMs: Number(f[6]),
      fetchMs: Number(f[7]),
      consumed,
    },
    command,
    seconds: r.ms / 1000,
  };
}

export interface EndToEndOptions {
  bootstrap: string;
  topic: string;
  records: number;
  recordSize: number;
  acks: '1' | 'all';
  timeoutMs: number;
}

export function endToEndArgs(o: EndToEndOptions, bootstrapText = o.bootstrap): string[] {
  return [
    '--bootstrap-server',
    bootstrapText,
    '--topic',
    o.topic,
    '--num-records',
    String(o.records),
    '--producer-acks',
    o.acks,
    '--record-size',
    String(o.recordSize),
  ];
}

/**
 * EndToEndLatency sends one record, waits until its consumer has it, then sends the next (one
 * record in flight; the tool has no rate option). Percentiles are whole milliseconds.
 */
export async function endToEndLatency(o: EndToEndOptions): Promise<ToolResult> {
  const main = 'org.apache.kafka.tools.EndToEndLatency';
  const command = javaCommand(main, endToEndArgs(o, 'HOST:PORT'));
  const r = await exec('java', javaArgs(main, endToEndArgs(o)), { timeoutMs: o.timeoutMs });
  const avg = /Avg latency: ([\d.]+) ms/.exec(r.stdout);
  const pct = /Percentiles: 50th = (\d+), 99th = (\d+), 99.9th = (\d+)/.exec(r.stdout);
  if (!avg || !pct || r.code !== 0) return failed(command, r);
  const avgMs = Number(avg[1]);
  return {
    ok: true,
    recordsPerSec: 1000 / avgMs,
    mibPerSec: ((1000 / avgMs) * o.recordSize) / (1024 * 1024),
    avgMs,
    maxMs: Number.NaN,
    p50Ms: Number(pct[1]),
    p99Ms: Number(pct[2]),
    p999Ms: Number(pct[3]),
    extra: {},
    command,
    seconds: r.ms / 1000,
  };
}
