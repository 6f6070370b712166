/**
 * ReplicationChecker: the replication safety properties, checked from outside the replicas (apart
 * from the simulator, as TigerBeetle keeps its state_checker). It reads replicas only through their
 * inspection getters and logs, and throws a Violation the moment a property fails.
 *
 * The committed prefix: every offset below any leader's high watermark, ever, is committed. The
 * checker records the value at each such offset the first time it sees one (`committed`), and:
 * - divergence-below-hw: every live replica's log below its own HW equals the committed prefix
 *   (so no two replicas ever hold different values at one offset below a HW);
 * - hw-went-back: a leader's HW never decreases while it leads one epoch (one incarnation);
 * - acked-record-lost / committed-record-lost: every member of the controller's ISR (its durable
 *   log when crashed) and every newly elected leader holds the whole committed prefix, acks=all
 *   records included, at their offsets with their values;
 * - acked-not-committed: an acks=all acknowledgement is only given for records below the HW;
 * - consumed-record-changed: what a consumer read (up to the HW) is committed, so it can never
 *   disappear or change (the prefix checks above then keep it);
 * - committed-record-truncated: a replica acting in epoch e never truncates a record committed in
 *   an epoch <= e;
 * - replica-invariant: PartitionReplica.assertInvariants().
 */

import { decodeRecords } from '../../storage/test-batches.js';
import type { PartitionReplica } from '../partition-replica.js';
import type { MemoryReplicaLog, StoredBatch } from '../replica-log.js';

export class Violation extends Error {
  readonly code = 'REPLICATION_SIM_VIOLATION';
  constructor(
    readonly property: string,
    message: string,
  ) {
    super(`${property}: ${message}`);
    this.name = 'Violation';
  }
}

export interface NodeView {
  readonly id: number;
  readonly incarnation: number;
  /** undefined while crashed. */
  readonly replica: PartitionReplica | undefined;
  /** The in-memory log when live, the durable image when crashed. */
  readonly log: MemoryReplicaLog;
}

const valuesCache = new WeakMap<Buffer, string[]>();

/** The record values of a stored batch, in offset order (cached per batch buffer). */
export function batchValues(b: StoredBatch): string[] {
  let v = valuesCache.get(b.bytes);
  if (v === undefined) {
    v = decodeRecords(b.bytes).map((r) => r.value?.toString('utf8') ?? '');
    valuesCache.set(b.bytes, v);
  }
  return v;
}

/** The value at `offset` in `log`, or undefined. */
export function valueAt(log: MemoryReplicaLog, offset: number): string | undefined {
  const b = log.batchAt(offset);
  return b === undefined ? undefined : batchValues(b)[offset - b.baseOffset];
}

interface Track {
  incarnation: number;
  checkedUpTo: number;
  truncations: number;
  leaderEpoch: number;
  leaderHw: number;
}

export class ReplicationChecker {
  /** committed[o]: the value committed at offset o; the committed offsets are a prefix. */
  readonly committed: string[] = [];
  /** committedEpoch[o]: the leader epoch in which offset o was first seen below a HW. */
  readonly committedEpoch: number[] = [];
  readonly ackedOffsets = new Set<number>();
  readonly consumed = new Map<number, string>();
  private readonly tracks = new Map<number, Track>();
  checksCount = 0;

  /**
   * A replica acting in `leaderEpoch` truncated away `removed` (hooked into MemoryReplicaLog by the
   * simulator). It may drop records committed only in a later epoch — a follower still answering
   * to a superseded leader does, and refetches them once it learns the new epoch — but never one
   * committed in its own epoch or before.
   */
  onTruncate(nodeId: number, removed: readonly StoredBatch[], leaderEpoch: number): void {
    for (const b of removed) {
      const values = batchValues(b);
      for (let i = 0; i < values.length; i++) {
        const o = b.baseOffset + i;
        if (
          o < this.committed.length &&
          this.committed[o] === values[i] &&
          this.committedEpoch[o]! <= leaderEpoch
        ) {
          throw new Violation(
            'committed-record-truncated',
            `broker ${nodeId} in epoch ${leaderEpoch} truncated offset ${o} (${values[i]}) committed in epoch ${this.committedEpoch[o]}${this.ackedOffsets.has(o) ? ', an acknowledged acks=all record' : ''}`,
          );
        }
      }
    }
  }

  /** An acks=all produce was acknowledged at baseOffset with `values`. */
  onAcked(baseOffset: number, values: readonly string[], leader: PartitionReplica): void {
    for (let i = 0; i < values.length; i++) {
      const o = baseOffset + i;
      if (o >= leader.highWatermark) {
        throw new Violation(
          'acked-not-committed',
          `offset ${o} acknowledged with HW ${leader.highWatermark}`,
        );
      }
      this.ackedOffsets.add(o);
    }
    this.pendingAcks.push({ baseOffset, values: [...values] });
  }

  private pendingAcks: { baseOffset: number; values: string[] }[] = [];

  onConsumed(offset: number, value: string): void {
    const known = this.consumed.get(offset);
    if (known !== undefined && known !== value) {
      throw new Violation(
        'consumed-record-changed',
        `offset ${offset} was read as ${known}, now as ${value}`,
      );
    }
    this.consumed.set(offset, value);
    this.pendingConsumed.push(offset);
  }

  private pendingConsumed: number[] = [];

  afterStep(nodes: readonly NodeView[], isr: readonly number[], full: boolean): void {
    this.checksCount++;
    for (const n of nodes) {
      const r = n.replica;
      if (r === undefined) continue;
      try {
        r.assertInvariants();
      } catch (err) {
        throw new Violation('replica-invariant', (err as Error).message);
      }
      const t = this.track(n);
      if (n.log.truncationsCount !== t.truncations) {
        t.truncations = n.log.truncationsCount;
        t.checkedUpTo = Math.min(t.checkedUpTo, n.log.logEndOffset);
      }
      if (r.role === 'leader') {
        if (t.leaderEpoch === r.leaderEpoch && r.highWatermark < t.leaderHw) {
          throw new Violation(
            'hw-went-back',
            `leader ${n.id} of epoch ${r.leaderEpoch}: HW ${t.leaderHw} -> ${r.highWatermark}`,
          );
        }
        if (t.leaderEpoch !== r.leaderEpoch) {
          t.leaderEpoch = r.leaderEpoch;
          // A leader holds what was committed in earlier epochs. (A paused leader of an old epoch
          // may wake up after later epochs committed more; it is fenced and can commit nothing.)
          this.checkHoldsCommitted(n, `new leader ${n.id} of epoch ${r.leaderEpoch}`, r.leaderEpoch);
        }
        t.leaderHw = r.highWatermark;
      }
      this.checkPrefix(n, t, r.highWatermark);
    }
    // Acknowledgements and reads of this step must now be inside the committed prefix.
    for (const a of this.pendingAcks) {
      for (let i = 0; i < a.values.length; i++)
        this.expectCommitted(a.baseOffset + i, a.values[i]!, 'acknowledged');
    }
    this.pendingAcks = [];
    for (const o of this.pendingConsumed) this.expectCommitted(o, this.consumed.get(o)!, 'consumed');
    this.pendingConsumed = [];
    if (full) this.checkDurability(nodes, isr, 'periodic');
  }

  /** Every controller ISR member (durable image if crashed) holds the committed prefix. */
  checkDurability(nodes: readonly NodeView[], isr: readonly number[], when: string): void {
    for (const n of nodes)
      if (isr.includes(n.id))
        this.checkHoldsCommitted(
          n,
          `${when}: ISR member ${n.id}${n.replica === undefined ? ' (crashed)' : ''}`,
        );
  }

  private expectCommitted(o: number, value: string, how: string): void {
    if (o >= this.committed.length || this.committed[o] !== value) {
      throw new Violation(
        'acked-not-committed',
        `${how} offset ${o} (${value}) but committed has ${this.committed[o] ?? 'nothing'} (prefix ${this.committed.length})`,
      );
    }
  }

  private checkHoldsCommitted(n: NodeView, who: string, beforeEpoch = Number.POSITIVE_INFINITY): void {
    for (let o = 0; o < this.committed.length; o++) {
      if (this.committedEpoch[o]! >= beforeEpoch) continue;
      const v = valueAt(n.log, o);
      if (v !== this.committed[o]) {
        const acked = this.ackedOffsets.has(o);
        const read = this.consumed.has(o);
        throw new Violation(
          acked ? 'acked-record-lost' : 'committed-record-lost',
          `${who} has ${v ?? 'nothing'} at offset ${o}, committed ${this.committed[o]}` +
            `${acked ? ' (acknowledged acks=all)' : ''}${read ? ' (read by a consumer)' : ''}`,
        );
      }
    }
  }

  private checkPrefix(n: NodeView, t: Track, hw: number): void {
    for (let o = t.checkedUpTo; o < hw; o++) {
      const v = valueAt(n.log, o);
      if (v === undefined)
        throw new Violation('divergence-below-hw', `broker ${n.id} has no record at ${o} < HW ${hw}`);
      if (o < this.committed.length) {
        if (this.committed[o] !== v) {
          const acked = this.ackedOffsets.has(o);
          throw new Violation(
            acked ? 'acked-record-lost' : 'divergence-below-hw',
            `broker ${n.id} (${n.replica?.role}, epoch ${n.replica?.leaderEpoch}) has ${v} at offset ${o} < HW ${hw}, committed ${this.committed[o]}${acked ? ' (acknowledged acks=all)' : ''}`,
          );
        }
      } else if (o === this.committed.length) {
        this.committed.push(v);
        this.committedEpoch.push(Math.max(0, n.replica?.leaderEpoch ?? 0));
      } else {
        throw new Violation('divergence-below-hw', `committed prefix has a gap at ${this.committed.length}`);
      }
    }
    t.checkedUpTo = Math.max(t.checkedUpTo, hw);
  }

  private track(n: NodeView): Track {
    let t = this.tracks.get(n.id);
    if (t === undefined || t.incarnation !== n.incarnation) {
      t = {
        incarnation: n.incarnation,
        checkedUpTo: 0,
        truncations: n.log.truncationsCount,
        leaderEpoch: -1,
        leaderHw: 0,
      };
      this.tracks.set(n.id, t);
    }
    return t;
  }
}
