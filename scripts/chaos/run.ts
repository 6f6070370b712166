/**
 * `npm run chaos`: the fault-injection harness of issue 7. Each run starts a fresh 3-node Sluice
 * cluster of real processes, creates topic `chaos` (3 partitions, replication factor 3,
 * min.insync.replicas=2), runs two acks=all producers, a consumer of assigned partitions and a
 * consumer-group member against it while a seeded nemesis SIGKILLs/restarts and SIGSTOPs/SIGCONTs
 * nodes, cuts the network between them (a TCP proxy, proxy.ts) and corrupts segment tails, then heals the cluster, waits for every partition to have a leader and a full ISR, stops
 * the producers, reads every partition from offset 0 to its high watermark from its leader (again,
 * a second later, until no high watermark moves), lets the consumers catch up, and hands the
 * history to checker.ts. A metadata watcher records every node's view of the partitions meanwhile
 * (evidence for reports; see watcher.ts).
 *
 *   npm run chaos -- [options]
 *
 * Options:
 *   --seed N              base seed (default: random); run k uses seed N + k and prints its replay
 *   --runs R              runs (default 1)
 *   --duration S          seconds of faults per run (default 60)
 *   --faults K,K          fault kinds among kill, pause, partition, corrupt, disk (default all
 *                         but disk, which needs root to mount a tmpfs per node; see nemesis.ts)
 *   --idempotence on|off|both   on: both producers idempotent; off: neither; both (default): p0
 *                         idempotent, p1 not
 *   --unclean             topic with unclean.leader.election.enable=true, min.insync.replicas=1
 *   --scenario unclean-loss   instead of random faults, the scripted schedule that makes an
 *                         unclean election lose acknowledged writes (implies --unclean; the run
 *                         passes when the checker finds that loss; see nemesis.ts)
 *   --producer kafkajs|java   the producers' client: kafkajs 2.2.4 in this process (default), or
 *                         the Apache Kafka Java client 4.4.0 in a child JVM each (java-producer.ts;
 *                         built with Maven on first use). kafkajs's idempotent producer has
 *                         defects of its own (docs/operations.md); the Java client is the
 *                         reference for "no duplicates with idempotence on".
 *   --out FILE.json       write every run's settings, faults, counts and anomaly examples
 *
 * Exit code 1 when any run lost acknowledged writes, had inconsistent offsets or acknowledged-
 * offset mismatches, duplicates from an idempotent producer, or could not be checked (the cluster
 * did not heal or could not be read). Node logs of every run are kept under the printed directory.
 */

import { execSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { Prng } from '../../src/sim/prng.js';
import { type FinalRecord, type History, type Report, type SendRecord, check, failures } from './checker.js';
import { ChaosCluster, NODES, sleep, withTimeout } from './cluster.js';
import { JavaProducerWorker, ensureJavaProducerBuilt } from './java-producer.js';
import {
  DEFAULT_FAULTS,
  FAULT_KINDS,
  type FaultEvent,
  type FaultKind,
  runNemesis,
  runUncleanScenario,
} from './nemesis.js';
import { MetadataWatcher, type ViewChange } from './watcher.js';
import { AssignedConsumer, GroupConsumer, ProducerWorker, kafkaClient } from './workload.js';

const TOPIC = 'chaos';
const PARTITIONS = 3;
const HEAL_TIMEOUT_MS = 60_000;
const CATCH_UP_TIMEOUT_MS = 30_000;
const WARM_UP_MS = 2_000;
/** Each node's tmpfs when the disk fault is on. */
const DISK_BYTES = 256 * 2 ** 20;
/** Reads of every partition at most, a second apart, until the high watermarks stop moving. */
const DRAIN_ROUNDS_MAX = 10;

type Idempotence = 'on' | 'off' | 'both';

interface Settings {
  seed: number;
  runs: number;
  durationS: number;
  faults: FaultKind[];
  idempotence: Idempotence;
  unclean: boolean;
  scenario?: 'unclean-loss';
  producer: 'kafkajs' | 'java';
  out?: string;
}

function parseSettings(): Settings {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string' },
      runs: { type: 'string', default: '1' },
      duration: { type: 'string', default: '60' },
      faults: { type: 'string', default: DEFAULT_FAULTS.join(',') },
      idempotence: { type: 'string', default: 'both' },
      unclean: { type: 'boolean', default: false },
      scenario: { type: 'string' },
      producer: { type: 'string', default: 'kafkajs' },
      out: { type: 'string' },
    },
  });
  const int = (name: string, v: string, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, not ${v}`);
    return n;
  };
  const faults = values.faults.split(',').filter(Boolean);
  for (const f of faults)
    if (!(FAULT_KINDS as readonly string[]).includes(f))
      throw new Error(`--faults: unknown fault ${f} (known: ${FAULT_KINDS.join(', ')})`);
  if (faults.length === 0) throw new Error('--faults: name at least one fault');
  if (!['on', 'off', 'both'].includes(values.idempotence))
    throw new Error(`--idempotence must be on, off or both, not ${values.idempotence}`);
  if (values.scenario !== undefined && values.scenario !== 'unclean-loss')
    throw new Error(`--scenario: unknown scenario ${values.scenario} (known: unclean-loss)`);
  if (values.producer !== 'kafkajs' && values.producer !== 'java')
    throw new Error(`--producer must be kafkajs or java, not ${values.producer}`);
  return {
    scenario: values.scenario as Settings['scenario'],
    producer: values.producer,
    seed: values.seed === undefined ? randomInt(2 ** 31) : int('seed', values.seed, 0),
    runs: int('runs', values.runs, 1),
    durationS: int('duration', values.duration, 1),
    faults: faults as FaultKind[],
    idempotence: values.idempotence as Idempotence,
    unclean: values.unclean || values.scenario === 'unclean-loss',
    out: values.out,
  };
}

function command(s: Settings, seed: number, runs: number): string {
  return [
    'npm run chaos --',
    `--seed ${seed}`,
    `--runs ${runs}`,
    `--duration ${s.durationS}`,
    `--faults ${s.faults.join(',')}`,
    `--idempotence ${s.idempotence}`,
    s.producer === 'java' ? '--producer java' : '',
    s.scenario ? `--scenario ${s.scenario}` : s.unclean ? '--unclean' : '',
  ]
    .filter(Boolean)
    .join(' ');
}

interface RunResult {
  run: number;
  seed: number;
  replay: string;
  /** --scenario unclean-loss: the run is meant to lose acknowledged writes, and passes if it does. */
  expectLoss: boolean;
  /** The compiled src the brokers ran (test/.build/<hash of src>, see BrokerProcess). */
  build: string;
  logsDir: string;
  /** Why the run could not be completed or checked (the cluster did not heal, ...). */
  errors: string[];
  timings: { clusterStartMs: number; faultPhaseMs: number; healMs: number | null; catchUpMs: number | null };
  faults: FaultEvent[];
  faultCounts: Record<string, number>;
  producers: {
    name: string;
    idempotent: boolean;
    sends: number;
    errors: Record<string, number>;
    reinitialisations: number;
    /** The first sends that were not acknowledged, with their errors. */
    notAcknowledged: SendRecord[];
  }[];
  consumers: {
    assigned: { reads: number; errors: Record<string, number> };
    group: { reads: number; joins: number; crashes: number };
  };
  final: { partition: number; leader: number; highWatermark: number; records: number }[];
  /** From the metadata watcher: elections of a leader outside the previous ISR, smallest ISR seen. */
  elections: { unclean: ViewChange[]; minIsrSize: number };
  /** High watermarks that moved between the first read of the drain and the last (after healing). */
  hwMovedAfterDrain: string[];
  report: Report | null;
  failures: string[];
  /** For each inconsistent offset found: every read of it and the sends of the values involved. */
  evidence: Evidence[];
}

interface Evidence {
  partition: number;
  offset: number;
  /** Every read of this offset by a consumer. */
  reads: { consumer: string; value: string; node?: number; atMs?: number }[];
  /** The values involved and the offsets next to this one in the final read, with producer id and sequence. */
  final: (FinalRecord & { partition: number })[];
  /** The sends of the values involved (acknowledged here, or read here). */
  sends: SendRecord[];
  /** Each node's view of the partition's leadership around those sends. */
  views: ViewChange[];
  faults: FaultEvent[];
}

const EVIDENCE_WINDOW_MS = 3_000;
const EVIDENCE_NEIGHBOURS = 3;

/** What a bug report needs about each lost write and inconsistent offset (examples only). */
function gatherEvidence(
  report: Report,
  history: History,
  watcher: MetadataWatcher,
  faults: FaultEvent[],
): Evidence[] {
  const sendByValue = new Map(history.sends.map((x) => [x.value, x]));
  const spots = new Map<string, { partition: number; offset: number; values: Set<string> }>();
  const spot = (partition: number, offset: number, values: string[]) => {
    const k = `${partition}:${offset}`;
    const e = spots.get(k) ?? { partition, offset, values: new Set<string>() };
    for (const v of values) e.values.add(v);
    spots.set(k, e);
  };
  for (const x of report.inconsistentOffsets.examples) spot(x.partition, x.offset, Object.keys(x.values));
  for (const x of report.lost.examples) spot(x.acked.partition, x.acked.offset, [x.value]);
  for (const x of report.ackMismatch.examples) spot(x.acked.partition, x.acked.offset, [x.value]);
  for (const x of report.duplicates.examples) {
    if (x.idempotent && x.at[0]) spot(x.at[0].partition, x.at[0].offset, [x.value]);
  }
  return [...spots.values()].map(({ partition, offset, values }) => {
    const reads = history.consumers.flatMap((c) =>
      c.reads
        .filter((r) => r.partition === partition && r.offset === offset)
        .map((r) => ({ consumer: c.name, value: r.value, node: r.node, atMs: r.atMs })),
    );
    for (const r of reads) values.add(r.value);
    const sends = [...values].flatMap((v) => sendByValue.get(v) ?? []);
    // The values involved wherever they are, and the final read's neighbourhood of the offset.
    const final = history.final.flatMap((fp) =>
      fp.records
        .filter(
          (r) =>
            values.has(r.value) ||
            (fp.partition === partition && Math.abs(r.offset - offset) <= EVIDENCE_NEIGHBOURS),
        )
        .map((r) => ({ partition: fp.partition, ...r })),
    );
    const times = [
      ...sends.flatMap((x) => [x.startMs, x.endMs ?? x.startMs]),
      ...reads.map((r) => r.atMs ?? 0),
    ];
    const from = Math.min(...times) - EVIDENCE_WINDOW_MS;
    const to = Math.max(...times) + EVIDENCE_WINDOW_MS;
    return {
      partition,
      offset,
      reads,
      final,
      sends,
      views: watcher.around(partition, from, to),
      faults: faults.filter((f) => (f.healedMs ?? Number.POSITIVE_INFINITY) >= from && f.startMs <= to),
    };
  });
}

let current: ChaosCluster | null = null;

async function oneRun(s: Settings, run: number, seed: number): Promise<RunResult> {
  const log = (line: string) => console.log(`  ${line}`);
  const prng = new Prng(seed);
  const logsDir = join(tmpdir(), `sluice-chaos-${seed}`);
  const result: RunResult = {
    run,
    seed,
    replay: command(s, seed, 1),
    expectLoss: s.scenario === 'unclean-loss',
    build: '',
    logsDir,
    errors: [],
    timings: { clusterStartMs: 0, faultPhaseMs: 0, healMs: null, catchUpMs: null },
    faults: [],
    faultCounts: {},
    producers: [],
    consumers: { assigned: { reads: 0, errors: {} }, group: { reads: 0, joins: 0, crashes: 0 } },
    final: [],
    elections: { unclean: [], minIsrSize: NODES },
    hwMovedAfterDrain: [],
    report: null,
    failures: [],
    evidence: [],
  };
  console.log(`\n=== run ${run + 1}/${s.runs}: seed ${seed}`);
  console.log(`  replay: ${result.replay}`);
  const t0 = Date.now();
  const cluster = await ChaosCluster.start(
    `chaos-${seed}`,
    s.faults.includes('disk') ? { diskBytes: DISK_BYTES } : {},
  );
  current = cluster;
  result.build = basename(cluster.nodes[0]!.buildDir);
  try {
    // Topic creation through kafkajs (it finds the controller-forwarding broker itself).
    const kafka = kafkaClient(cluster, 'chaos-admin');
    const admin = kafka.admin();
    const configEntries = s.unclean
      ? [
          { name: 'min.insync.replicas', value: '1' },
          { name: 'unclean.leader.election.enable', value: 'true' },
        ]
      : [{ name: 'min.insync.replicas', value: '2' }];
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.connect();
        const c = await admin.describeCluster();
        if (c.brokers.length !== NODES) throw new Error(`${c.brokers.length} brokers registered`);
        await admin.createTopics({
          topics: [{ topic: TOPIC, numPartitions: PARTITIONS, replicationFactor: NODES, configEntries }],
        });
        break;
      } catch (e) {
        if (attempt >= 60) throw new Error(`could not create the topic: ${(e as Error).message}`);
        await sleep(500);
      }
    }
    await admin.disconnect().catch(() => {});
    if ((await cluster.waitHealthy(TOPIC, PARTITIONS, 30_000)) === null)
      throw new Error(`topic ${TOPIC} never had a full ISR on every partition`);
    result.timings.clusterStartMs = Date.now() - t0;
    log(`cluster up, topic created in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    const idem = (i: number) => s.idempotence === 'on' || (s.idempotence === 'both' && i === 0);
    const producers: (ProducerWorker | JavaProducerWorker)[] = [0, 1].map((i) =>
      s.producer === 'java'
        ? new JavaProducerWorker(cluster.bootstraps, `p${i}`, idem(i), TOPIC, PARTITIONS, t0)
        : new ProducerWorker(kafkaClient(cluster, `chaos-p${i}`), `p${i}`, idem(i), TOPIC, PARTITIONS, t0),
    );
    const assigned = new AssignedConsumer(cluster, TOPIC, PARTITIONS, t0);
    const group = new GroupConsumer(
      kafkaClient(cluster, 'chaos-group'),
      `chaos-${seed}`,
      TOPIC,
      PARTITIONS,
      t0,
    );
    const watcher = new MetadataWatcher(cluster, TOPIC, t0);
    watcher.start();
    assigned.start();
    await group.start();
    for (const p of producers) p.start();
    await sleep(WARM_UP_MS);

    const faultStart = Date.now();
    result.faults =
      s.scenario === 'unclean-loss'
        ? await runUncleanScenario(cluster, { topic: TOPIC, t0, log })
        : await runNemesis(cluster, prng, {
            kinds: s.faults,
            durationMs: s.durationS * 1000,
            topic: TOPIC,
            partitions: PARTITIONS,
            t0,
            log,
          });
    result.timings.faultPhaseMs = Date.now() - faultStart;
    for (const f of result.faults) result.faultCounts[f.kind] = (result.faultCounts[f.kind] ?? 0) + 1;

    log(`[+${((Date.now() - t0) / 1000).toFixed(1)}s] healing`);
    await cluster.heal();
    result.timings.healMs = await cluster.waitHealthy(TOPIC, PARTITIONS, HEAL_TIMEOUT_MS);
    if (result.timings.healMs === null) {
      const m = await cluster.metadata(TOPIC);
      result.errors.push(
        `cluster did not heal within ${HEAL_TIMEOUT_MS / 1000} s (metadata: ${JSON.stringify(m)})`,
      );
      log(`NOT HEALED within ${HEAL_TIMEOUT_MS / 1000} s: ${JSON.stringify(m)}`);
    } else {
      log(`healed: every partition led with a full ISR after ${(result.timings.healMs / 1000).toFixed(1)} s`);
    }
    await Promise.all(producers.map((p) => p.stop()));

    // The final read. A new leader's high watermark can lag behind its log for a moment (it
    // advances once every ISR follower has fetched from it), so the partitions are read until two
    // reads a second apart agree on every high watermark; changes are logged.
    let final: History['final'] = [];
    for (let round = 0; round < DRAIN_ROUNDS_MAX; round++) {
      const previous = final;
      final = [];
      result.final = [];
      for (let p = 0; p < PARTITIONS; p++) {
        try {
          const d = await cluster.drain(TOPIC, p);
          final.push({ partition: p, highWatermark: d.highWatermark, records: d.records });
          result.final.push({
            partition: p,
            leader: d.leader,
            highWatermark: d.highWatermark,
            records: d.records.length,
          });
        } catch (e) {
          result.errors.push((e as Error).message);
        }
      }
      if (final.length < PARTITIONS) break;
      if (round === 0) {
        await sleep(1_000);
        continue;
      }
      const moved = final
        .filter((f) => previous[f.partition]?.highWatermark !== f.highWatermark)
        .map((f) => `p${f.partition} ${previous[f.partition]?.highWatermark} -> ${f.highWatermark}`);
      if (moved.length === 0) break;
      log(`high watermark moved after the first read: ${moved.join(', ')}`);
      result.hwMovedAfterDrain.push(...moved);
      await sleep(1_000);
    }
    log(
      `drained: ${result.final.map((f) => `p${f.partition} hw ${f.highWatermark} (node ${f.leader})`).join(', ')}`,
    );

    // Let the consumers read up to the high watermarks of the drain.
    const tc = Date.now();
    const caughtUp = () =>
      final.every(
        (f) =>
          (assigned.positions[f.partition] ?? 0) >= f.highWatermark &&
          (group.maxOffsets[f.partition] ?? -1) >= f.highWatermark - 1,
      );
    while (!caughtUp() && Date.now() - tc < CATCH_UP_TIMEOUT_MS) await sleep(250);
    result.timings.catchUpMs = caughtUp() ? Date.now() - tc : null;
    if (result.timings.catchUpMs === null)
      log(
        `consumers did not catch up within ${CATCH_UP_TIMEOUT_MS / 1000} s (assigned ${assigned.positions.join(',')}, group ${group.maxOffsets.join(',')})`,
      );
    await assigned.stop();
    await group.stop();
    await watcher.stop();
    result.elections = { unclean: watcher.uncleanElections(), minIsrSize: watcher.minIsrSize() };

    result.producers = producers.map((p) => ({
      name: p.name,
      idempotent: p.idempotent,
      sends: p.sends.length,
      errors: Object.fromEntries(p.errors),
      reinitialisations: p.reinitialisations,
      notAcknowledged: p.sends.filter((x) => x.outcome !== 'ok').slice(0, 20),
    }));
    result.consumers = {
      assigned: { reads: assigned.history.reads.length, errors: Object.fromEntries(assigned.errors) },
      group: { reads: group.history.reads.length, joins: group.joins, crashes: group.crashes },
    };
    if (final.length === PARTITIONS) {
      const history: History = {
        sends: producers.flatMap((p) => p.sends),
        consumers: [assigned.history, group.history],
        final,
      };
      const report = check(history);
      result.report = report;
      result.failures = failures(report);
      result.evidence = gatherEvidence(report, history, watcher, result.faults);
    }
    return result;
  } catch (e) {
    result.errors.push((e as Error).message);
    return result;
  } finally {
    mkdirSync(logsDir, { recursive: true });
    for (let id = 1; id <= NODES; id++) writeFileSync(join(logsDir, `node-${id}.log`), cluster.log(id));
    await cluster.destroy();
    current = null;
  }
}

// ---- output ------------------------------------------------------------------------------------

const secs = (ms: number) => (ms / 1000).toFixed(2);

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** The metric rows of one run, in display order. */
function metrics(r: RunResult): [string, string][] {
  const rep = r.report;
  const n = (v: number | undefined) => (v === undefined ? '-' : String(v));
  const unseen = (name: string) => n(rep?.unseen[name]?.count);
  return [
    [
      'sends ok / failed / unknown',
      rep ? `${rep.sends.ok} / ${rep.sends.failed} / ${rep.sends.unknown}` : '-',
    ],
    ['reads assigned / group', `${r.consumers.assigned.reads} / ${r.consumers.group.reads}`],
    ['records in final read', n(rep?.finalRecords)],
    [
      'faults kill / pause / partition / corrupt / disk',
      `${r.faultCounts.kill ?? 0} / ${r.faultCounts.pause ?? 0} / ${r.faultCounts.partition ?? 0} / ${r.faultCounts.corrupt ?? 0} / ${r.faultCounts.disk ?? 0}`,
    ],
    ['group joins', String(r.consumers.group.joins)],
    ['smallest ISR seen', String(r.elections.minIsrSize)],
    ['unclean elections seen', String(r.elections.unclean.length)],
    ['HW moved after 1st drain', String(r.hwMovedAfterDrain.length)],
    ['heal time (s)', r.timings.healMs === null ? 'NOT HEALED' : (r.timings.healMs / 1000).toFixed(1)],
    ['LOST acknowledged', n(rep?.lost.count)],
    ['INCONSISTENT offsets', n(rep?.inconsistentOffsets.count)],
    ['ACK-OFFSET mismatches', n(rep?.ackMismatch.count)],
    ['duplicates idempotent (FAIL)', n(rep?.duplicatesIdempotent)],
    [
      '  same batch twice / sent twice / ?',
      rep
        ? `${rep.duplicatesIdempotentCause.broker} / ${rep.duplicatesIdempotentCause.client} / ${rep.duplicatesIdempotentCause.unknown}`
        : '-',
    ],
    ['duplicates non-idempotent', n(rep?.duplicatesNonIdempotent)],
    ['failed writes present', n(rep?.failedPresent.count)],
    ['unknown writes present', n(rep?.unknownPresent)],
    ['non-monotonic reads', n(rep?.nonMonotonic.count)],
    ['rewinds after rebalance', n(rep?.rewindsAfterRebalance)],
    ['skipped offsets', n(rep?.skips.count)],
    ['non-monotonic sends', n(rep?.nonMonotonicSends.count)],
    ['offset resets', n(rep?.resets.count)],
    ['unseen: assigned / group', `${unseen('assigned')} / ${unseen('group')}`],
    ['phantom values / log gaps', rep ? `${rep.phantoms.count} / ${rep.finalGaps.count}` : '-'],
    ['verdict', verdict(r)],
  ];
}

function verdict(r: RunResult): string {
  if (r.errors.length > 0) return 'INCOMPLETE';
  if (r.expectLoss) return passed(r) ? 'ok (loss expected and found)' : 'FAIL (expected loss not found)';
  return r.failures.length > 0 ? 'FAIL' : 'ok';
}

function passed(r: RunResult): boolean {
  if (r.errors.length > 0) return false;
  if (r.expectLoss) return (r.report?.lost.count ?? 0) > 0;
  return r.failures.length === 0;
}

function printRun(r: RunResult): void {
  console.log(`\n  run ${r.run + 1}, seed ${r.seed}:`);
  console.log(table(['metric', 'value'], metrics(r)).replace(/^/gm, '  '));
  const rep = r.report;
  if (rep) {
    const show = (label: string, a: { count: number; examples: unknown[] }) => {
      if (a.count > 0) console.log(`  ${label} (${a.count}), e.g. ${JSON.stringify(a.examples.slice(0, 3))}`);
    };
    show('lost', rep.lost);
    show('inconsistent offsets', rep.inconsistentOffsets);
    show('acknowledged-offset mismatches', rep.ackMismatch);
    show('duplicates', rep.duplicates);
    show('failed writes present', rep.failedPresent);
    show('non-monotonic', rep.nonMonotonic);
    show('skips', rep.skips);
    show('non-monotonic sends', rep.nonMonotonicSends);
    show('offset resets', rep.resets);
    for (const [c, a] of Object.entries(rep.unseen)) show(`unseen by ${c}`, a);
    show('phantoms', rep.phantoms);
    show('gaps in the final read', rep.finalGaps);
    if (rep.duplicatesNonIdempotent > 0)
      console.log(
        '  note: duplicates of a non-idempotent producer are expected: the client retries a request whose' +
          ' response was lost, and without producer ids the broker cannot tell the retry from new data.',
      );
  }
  for (const e of r.evidence) {
    console.log(`  evidence for p${e.partition}@${e.offset}:`);
    for (const x of e.reads)
      console.log(
        `    read by ${x.consumer}: ${x.value}${x.node ? ` from node ${x.node}` : ''} at +${secs(x.atMs ?? 0)}s`,
      );
    for (const x of e.final)
      console.log(
        `    final read p${x.partition}@${x.offset}: ${x.value} (producer id ${x.producerId}, sequence ${x.sequence})`,
      );
    for (const x of e.sends)
      console.log(
        `    sent ${x.value} to p${x.partition} at +${secs(x.startMs)}s: ${x.outcome}${x.offset !== undefined ? ` at ${x.offset}` : ''}${x.error ? ` (${x.error})` : ''} at +${secs(x.endMs ?? 0)}s`,
      );
    for (const f of e.faults)
      console.log(
        `    fault: ${f.kind} node ${f.node} from +${secs(f.startMs)}s to +${secs(f.healedMs ?? 0)}s`,
      );
    for (const v of e.views)
      console.log(
        `    +${secs(v.atMs)}s node ${v.node} says: p${v.partition} leader ${v.leader} epoch ${v.leaderEpoch} isr [${v.isr.join(',')}]`,
      );
  }
  for (const p of r.producers)
    console.log(
      `  producer ${p.name} (${p.idempotent ? 'idempotent' : 'not idempotent'}): ${p.sends} values; errors ${JSON.stringify(p.errors)}${p.idempotent ? `; re-initialised ${p.reinitialisations}x` : ''}`,
    );
  console.log(`  assigned consumer errors: ${JSON.stringify(r.consumers.assigned.errors)}`);
  for (const e of r.errors) console.log(`  ERROR: ${e.split('\n')[0]}`);
  for (const f of r.failures) console.log(`  FAILURE: ${f}`);
  console.log(`  node logs: ${r.logsDir}; build ${r.build}`);
}

/** The commit the brokers were built from, and whether src had uncommitted changes. */
function sourceState(): string {
  try {
    const head = execSync('git rev-parse --short HEAD', { encoding: 'utf8' }).trim();
    const dirty = execSync('git status --porcelain -- src', { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean);
    return dirty.length > 0 ? `${head} + uncommitted changes to ${dirty.length} file(s) under src/` : head;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

async function main(): Promise<void> {
  const s = parseSettings();
  const source = sourceState();
  console.log(`chaos: seed ${s.seed}`);
  console.log(`source: ${source}`);
  console.log(`replay: ${command(s, s.seed, s.runs)}`);
  console.log(
    `settings: ${s.runs} run(s), ${s.durationS} s of faults [${s.faults.join(', ')}], ${s.producer} producers, idempotence ${s.idempotence}${s.unclean ? ', UNCLEAN elections, min.insync.replicas=1' : ''}`,
  );
  if (s.producer === 'java') await ensureJavaProducerBuilt();
  const results: RunResult[] = [];
  for (let run = 0; run < s.runs; run++) {
    const r = await oneRun(s, run, (s.seed + run) >>> 0);
    results.push(r);
    printRun(r);
  }

  console.log('\n=== summary');
  const rows = metrics(results[0]!).map(([label], i) => [label, ...results.map((r) => metrics(r)[i]![1])]);
  console.log(table(['metric', ...results.map((r) => `seed ${r.seed}`)], rows));
  const failed = results.filter((r) => !passed(r));
  console.log(
    failed.length === 0
      ? `\nall ${results.length} run(s) passed`
      : `\n${failed.length} of ${results.length} run(s) failed: ${failed.map((r) => `seed ${r.seed} (${[...r.failures, ...r.errors.map((e) => e.split('\n')[0])].join('; ')})`).join(', ')}`,
  );
  console.log(`replay: ${command(s, s.seed, s.runs)}`);
  if (s.out) {
    writeFileSync(
      s.out,
      `${JSON.stringify({ command: command(s, s.seed, s.runs), settings: s, source, date: new Date().toISOString(), runs: results }, null, 2)}\n`,
    );
    console.log(`results written to ${s.out}`);
  }
  process.exitCode = failed.length > 0 ? 1 : 0;
}

// Do not leave broker processes behind when interrupted.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    console.error(`\n${sig}: stopping the cluster`);
    void withTimeout(current?.destroy() ?? Promise.resolve(), 15_000, 'destroy')
      .catch(() => {})
      .finally(() => process.exit(130));
  });
}

main().then(
  // kafkajs may keep timers alive after disconnect; the results are out, so leave.
  () => setTimeout(() => process.exit(process.exitCode ?? 0), 500).unref(),
  (e) => {
    console.error(e);
    process.exit(2);
  },
);
