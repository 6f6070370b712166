/**
 * The chaos checker: pure functions from a recorded history (every send's outcome, every
 * consumer's reads in read order with its rebalances and offset resets, and the final drain of
 * every partition) to a report of anomalies. Nothing here touches a process, a socket or a clock,
 * so the checker is tested on hand-built histories (checker.test.ts) apart from the harness.
 *
 * The anomaly classes are those of Jepsen's Kafka analysis (jepsen.tests.kafka), restricted to what
 * a workload without transactions can show:
 * - lost: a write acknowledged (acks=all) whose value is nowhere in the final read of the log;
 * - duplicate: one value at more than one (partition, offset), over every observation; for an
 *   idempotent producer's value the final read's producer ids and sequences tell a batch the broker
 *   appended twice (same sequence) from a value the client sent twice (two sequences);
 * - inconsistent offset: one (partition, offset) seen with two different values, over every
 *   observation (acknowledgements, each consumer's reads, the final read);
 * - acknowledged-offset mismatch: acknowledged at (p, X) but found in the final read at (q, Y);
 * - failed write present: a send reported as failed whose value is in the log (allowed: a failed
 *   request may have been appended before the error, or an earlier attempt may have committed);
 * - non-monotonic poll: within one consumer's reads of a partition, an offset not above the one
 *   read before it, except the first read of a partition after a group rebalance (a rebalance
 *   resumes from the committed offset, which may be below what was already read);
 * - skipped offsets: within one consumer's reads of a partition, an offset more than one above the
 *   previous one (the log of this workload has no gaps: no transactions, no compaction);
 * - non-monotonic send: a producer's acknowledged offsets in one partition not increasing in the
 *   order it sent them (each producer here has one send in flight at a time);
 * - unseen: acknowledged writes in the final read that a consumer never read.
 *
 * Invariants of the input the harness guarantees: values are unique per send (`p<producer>-<n>`),
 * a send has one value, offsets are integers >= 0.
 */

/** How many examples of each anomaly a report keeps. */
export const EXAMPLES_MAX = 5;

export type SendOutcome = 'ok' | 'failed' | 'unknown';

export interface SendRecord {
  value: string;
  producer: string;
  /** Whether the producer that sent it was idempotent (enable.idempotence). */
  idempotent: boolean;
  /** The partition the value was sent to. */
  partition: number;
  outcome: SendOutcome;
  /** The offset acknowledged (outcome 'ok' only). */
  offset?: number;
  error?: string;
  startMs: number;
  endMs?: number;
}

export interface ReadRecord {
  partition: number;
  offset: number;
  value: string;
  /** Evidence for reports, not used by the checks: the node that served the read, and when. */
  node?: number;
  atMs?: number;
}

export interface ConsumerMarker {
  /** reads.length when the marker was recorded: it applies to reads[readIndex] onwards. */
  readIndex: number;
  atMs: number;
  kind: 'rebalance' | 'reset';
  /** For 'reset': the partition and why (e.g. OFFSET_OUT_OF_RANGE), and the new position. */
  partition?: number;
  detail?: string;
}

export interface ConsumerHistory {
  name: string;
  reads: ReadRecord[];
  markers: ConsumerMarker[];
}

export interface FinalRecord {
  offset: number;
  value: string;
  /** Evidence for reports, not used by the checks: the batch's producer id and the record's sequence. */
  producerId?: number;
  sequence?: number;
}

export interface FinalPartition {
  partition: number;
  highWatermark: number;
  records: FinalRecord[];
}

export interface History {
  sends: SendRecord[];
  consumers: ConsumerHistory[];
  final: FinalPartition[];
}

export interface Anomaly<T> {
  count: number;
  examples: T[];
}

interface Position {
  partition: number;
  offset: number;
}

export interface Report {
  sends: { total: number; ok: number; failed: number; unknown: number };
  reads: Record<string, number>;
  finalRecords: number;
  lost: Anomaly<{ value: string; acked: Position }>;
  duplicates: Anomaly<{ value: string; idempotent: boolean; at: Position[]; cause?: DuplicateCause }>;
  /** Duplicates of values sent by an idempotent producer (a failure). */
  duplicatesIdempotent: number;
  /**
   * Where the final read shows two copies of an idempotent producer's value with producer ids
   * and sequences: the same (producer id, sequence) twice is the broker appending one batch twice;
   * two sequences is the client sending the value in two batches, which no broker can catch.
   * 'unknown' when the final read does not hold two copies (one was only seen by a consumer).
   */
  duplicatesIdempotentCause: { broker: number; client: number; unknown: number };
  /** Duplicates of values sent by a non-idempotent producer (retries: expected, not a failure). */
  duplicatesNonIdempotent: number;
  inconsistentOffsets: Anomaly<{ partition: number; offset: number; values: Record<string, string[]> }>;
  ackMismatch: Anomaly<{ value: string; acked: Position; found: Position[] }>;
  failedPresent: Anomaly<{ value: string; error: string | undefined }>;
  /** Sends of unknown outcome whose value is in the final read (informational). */
  unknownPresent: number;
  nonMonotonic: Anomaly<{ consumer: string; partition: number; previous: number; offset: number }>;
  /** Rewinds excused because they followed a group rebalance (informational). */
  rewindsAfterRebalance: number;
  skips: Anomaly<{ consumer: string; partition: number; previous: number; offset: number }>;
  nonMonotonicSends: Anomaly<{ producer: string; partition: number; previous: string; value: string }>;
  /** Offset resets a consumer recorded (e.g. OFFSET_OUT_OF_RANGE after a truncation). */
  resets: Anomaly<{ consumer: string; partition: number | undefined; detail: string | undefined }>;
  unseen: Record<string, Anomaly<{ value: string; at: Position }>>;
  /** Values read that no send produced (corruption). */
  phantoms: Anomaly<{ source: string; partition: number; offset: number; value: string }>;
  /** Offsets below a partition's high watermark missing from its final read. */
  finalGaps: Anomaly<{ partition: number; offset: number }>;
}

function anomaly<T>(): Anomaly<T> {
  return { count: 0, examples: [] };
}

function note<T>(a: Anomaly<T>, example: T): void {
  a.count++;
  if (a.examples.length < EXAMPLES_MAX) a.examples.push(example);
}

const posKey = (partition: number, offset: number) => `${partition}:${offset}`;

function parsePos(key: string): Position {
  const [p, o] = key.split(':');
  return { partition: Number(p), offset: Number(o) };
}

/** Checks one run's history. */
export function check(h: History): Report {
  const sendByValue = new Map<string, SendRecord>();
  for (const s of h.sends) {
    if (sendByValue.has(s.value)) throw new Error(`value ${s.value} sent twice: the harness is broken`);
    sendByValue.set(s.value, s);
  }

  const report: Report = {
    sends: { total: h.sends.length, ok: 0, failed: 0, unknown: 0 },
    reads: {},
    finalRecords: 0,
    lost: anomaly(),
    duplicates: anomaly(),
    duplicatesIdempotent: 0,
    duplicatesIdempotentCause: { broker: 0, client: 0, unknown: 0 },
    duplicatesNonIdempotent: 0,
    inconsistentOffsets: anomaly(),
    ackMismatch: anomaly(),
    failedPresent: anomaly(),
    unknownPresent: 0,
    nonMonotonic: anomaly(),
    rewindsAfterRebalance: 0,
    skips: anomaly(),
    nonMonotonicSends: anomaly(),
    resets: anomaly(),
    unseen: {},
    phantoms: anomaly(),
    finalGaps: anomaly(),
  };
  for (const s of h.sends) report.sends[s.outcome]++;

  // Every observation of (partition, offset) -> value, with its sources, and value -> positions.
  const valuesAt = new Map<string, Map<string, Set<string>>>();
  const positionsOf = new Map<string, Set<string>>();
  const observe = (source: string, partition: number, offset: number, value: string) => {
    const k = posKey(partition, offset);
    const byValue = valuesAt.get(k) ?? new Map<string, Set<string>>();
    valuesAt.set(k, byValue);
    const sources = byValue.get(value) ?? new Set<string>();
    byValue.set(value, sources);
    sources.add(source);
    const positions = positionsOf.get(value) ?? new Set<string>();
    positionsOf.set(value, positions);
    positions.add(k);
  };
  const phantom = (source: string, partition: number, offset: number, value: string) => {
    if (!sendByValue.has(value)) note(report.phantoms, { source, partition, offset, value });
  };

  for (const s of h.sends) {
    if (s.outcome === 'ok' && s.offset !== undefined) observe('ack', s.partition, s.offset, s.value);
  }

  // The final read: value -> its positions there.
  const finalPositions = new Map<string, Position[]>();
  const finalRecords = new Map<string, FinalRecord[]>();
  for (const fp of h.final) {
    let expected = 0;
    for (const r of fp.records) {
      for (; expected < r.offset && expected < fp.highWatermark; expected++)
        note(report.finalGaps, { partition: fp.partition, offset: expected });
      expected = Math.max(expected, r.offset + 1);
      report.finalRecords++;
      observe('final', fp.partition, r.offset, r.value);
      phantom('final', fp.partition, r.offset, r.value);
      const list = finalPositions.get(r.value) ?? [];
      list.push({ partition: fp.partition, offset: r.offset });
      finalPositions.set(r.value, list);
      const records = finalRecords.get(r.value) ?? [];
      records.push(r);
      finalRecords.set(r.value, records);
    }
    for (; expected < fp.highWatermark; expected++)
      note(report.finalGaps, { partition: fp.partition, offset: expected });
  }

  for (const c of h.consumers) {
    report.reads[c.name] = c.reads.length;
    checkConsumerOrder(c, report);
    for (const r of c.reads) {
      observe(c.name, r.partition, r.offset, r.value);
      phantom(c.name, r.partition, r.offset, r.value);
    }
  }

  for (const [k, byValue] of valuesAt) {
    if (byValue.size < 2) continue;
    const { partition, offset } = parsePos(k);
    const values: Record<string, string[]> = {};
    for (const [v, sources] of byValue) values[v] = [...sources].sort();
    note(report.inconsistentOffsets, { partition, offset, values });
  }

  for (const [value, positions] of positionsOf) {
    if (positions.size < 2) continue;
    const idempotent = sendByValue.get(value)?.idempotent ?? false;
    const at = [...positions].sort().map(parsePos);
    if (!idempotent) {
      report.duplicatesNonIdempotent++;
      note(report.duplicates, { value, idempotent, at });
      continue;
    }
    report.duplicatesIdempotent++;
    const cause = duplicateCause(finalRecords.get(value) ?? []);
    report.duplicatesIdempotentCause[cause]++;
    note(report.duplicates, { value, idempotent, at, cause });
  }

  for (const s of h.sends) {
    const found = finalPositions.get(s.value);
    if (s.outcome === 'ok') {
      const acked = { partition: s.partition, offset: s.offset ?? -1 };
      if (!found) note(report.lost, { value: s.value, acked });
      else if (!found.some((f) => f.partition === acked.partition && f.offset === acked.offset))
        note(report.ackMismatch, { value: s.value, acked, found });
    } else if (found) {
      if (s.outcome === 'failed') note(report.failedPresent, { value: s.value, error: s.error });
      else report.unknownPresent++;
    }
  }

  // Acknowledged offsets per producer and partition, in send order (h.sends is in send order).
  const lastAck = new Map<string, SendRecord>();
  for (const s of h.sends) {
    if (s.outcome !== 'ok' || s.offset === undefined) continue;
    const k = `${s.producer}/${s.partition}`;
    const prev = lastAck.get(k);
    if (prev?.offset !== undefined && s.offset <= prev.offset)
      note(report.nonMonotonicSends, {
        producer: s.producer,
        partition: s.partition,
        previous: `${prev.value}@${prev.offset}`,
        value: `${s.value}@${s.offset}`,
      });
    lastAck.set(k, s);
  }

  for (const c of h.consumers) {
    const seen = new Set(c.reads.map((r) => r.value));
    const unseen = anomaly<{ value: string; at: Position }>();
    for (const s of h.sends) {
      if (s.outcome !== 'ok' || seen.has(s.value)) continue;
      const found = finalPositions.get(s.value);
      if (found?.[0]) note(unseen, { value: s.value, at: found[0] });
    }
    report.unseen[c.name] = unseen;
  }
  return report;
}

export type DuplicateCause = 'broker' | 'client' | 'unknown';

/** See Report.duplicatesIdempotentCause. */
function duplicateCause(copies: FinalRecord[]): DuplicateCause {
  const known = copies.filter(
    (c) => c.producerId !== undefined && c.sequence !== undefined && c.sequence >= 0,
  );
  if (known.length < 2) return 'unknown';
  const ids = new Set(known.map((c) => `${c.producerId}/${c.sequence}`));
  return ids.size < known.length ? 'broker' : 'client';
}

/**
 * Non-monotonic and skipping reads within one consumer's reads of each partition. A rebalance
 * marker excuses the next read of every partition (it may go anywhere: the group resumes from its
 * committed offset); a reset marker is only reported, it excuses nothing.
 */
function checkConsumerOrder(c: ConsumerHistory, report: Report): void {
  const last = new Map<number, number>();
  const excused = new Set<number>();
  const markers = [...c.markers].sort((a, b) => a.readIndex - b.readIndex);
  let m = 0;
  for (const mk of markers) {
    if (mk.kind === 'reset')
      note(report.resets, { consumer: c.name, partition: mk.partition, detail: mk.detail });
  }
  c.reads.forEach((r, i) => {
    for (; m < markers.length && markers[m]!.readIndex <= i; m++) {
      if (markers[m]!.kind === 'rebalance') for (const p of last.keys()) excused.add(p);
    }
    const previous = last.get(r.partition);
    last.set(r.partition, r.offset);
    if (previous === undefined) return;
    if (excused.delete(r.partition)) {
      if (r.offset <= previous) report.rewindsAfterRebalance++;
      return;
    }
    if (r.offset <= previous)
      note(report.nonMonotonic, { consumer: c.name, partition: r.partition, previous, offset: r.offset });
    else if (r.offset > previous + 1)
      note(report.skips, { consumer: c.name, partition: r.partition, previous, offset: r.offset });
  });
}

/** Why a report fails the run (empty when it passes). */
export function failures(r: Report): string[] {
  const out: string[] = [];
  if (r.lost.count > 0) out.push(`${r.lost.count} lost acknowledged writes`);
  if (r.inconsistentOffsets.count > 0) out.push(`${r.inconsistentOffsets.count} inconsistent offsets`);
  if (r.ackMismatch.count > 0) out.push(`${r.ackMismatch.count} acknowledged-offset mismatches`);
  if (r.duplicatesIdempotent > 0) {
    const c = r.duplicatesIdempotentCause;
    out.push(
      `${r.duplicatesIdempotent} duplicates from idempotent producers (same batch appended twice: ${c.broker}; sent twice by the client: ${c.client}; undetermined: ${c.unknown})`,
    );
  }
  return out;
}
