/**
 * WholeClusterChecker: the safety properties of a whole simulated cluster (Raft metadata quorum,
 * controller, partition replication), checked from outside the nodes after every step. It reads
 * nodes only through their inspection getters, their Raft disks and their replica logs, and
 * throws a Violation the moment a property fails. It composes the two existing checkers instead of
 * restating them:
 *
 * - Raft (src/sim/checker.ts, SafetyChecker): at most one leader per term; committed entries never
 *   change or get lost (every node's committed prefix and every applied entry equals the record);
 *   committed entries durable on a quorum; Leader Completeness; Log Matching; entries applied in
 *   order.
 * - Metadata: the checker folds the committed Raft entries, in index order, into its own reference
 *   MetadataImage. Every node's applied image must equal the reference image at the node's offset
 *   (so it is the image of a prefix of the committed log), snapshots included; a node's image is
 *   never ahead of what was seen committed.
 * - Replication (src/replication/sim/checker.ts, one ReplicationChecker per partition, with the
 *   committed ISR of the reference image as the controller's ISR): the committed record prefix
 *   (everything below any leader's high watermark) never changes on any replica; a leader's high
 *   watermark never goes back within its epoch (and process incarnation); a new leader holds every
 *   record committed in earlier epochs; every committed ISR member (its durable log when crashed)
 *   holds the committed prefix; an acks=all acknowledgement is given only below the high watermark;
 *   no replica truncates a record committed in its epoch or before.
 * - Partition leadership: at most one broker leads a partition in any leader epoch.
 *
 * `finalCheck` runs after faults stop and the cluster has quiesced: every record a producer saw
 * acknowledged is in the final leader's log at its offset, and every ISR member agrees with the
 * leader below the high watermark.
 */

import type { MetadataImage } from '../metadata/image.js';
import { MetadataImage as Image } from '../metadata/image.js';
import { decodeMetadataBatch } from '../metadata/records.js';
import type { LogEntry } from '../raft/raft.js';
import type { PartitionReplica } from '../replication/partition-replica.js';
import { MemoryReplicaLog, type StoredBatch } from '../replication/replica-log.js';
import { type NodeView as ReplicaNodeView, ReplicationChecker, valueAt } from '../replication/sim/checker.js';
import { type NodeView, SafetyChecker, Violation } from './checker.js';

export { Violation };

/** What the checker reads of one node. */
export interface WholeNodeView extends NodeView {
  /** The node's applied metadata image (meaningful only while the node is up). */
  readonly image: MetadataImage;
  /** The replicas this incarnation hosts, by partition key (`topic-partition`). */
  readonly replicas: ReadonlyMap<string, { readonly replica: PartitionReplica }>;
  /** The node's replica logs by partition key; they outlive crashes (the durable image then). */
  readonly logs: ReadonlyMap<string, { readonly log: MemoryReplicaLog }>;
}

export function partitionKey(topic: string, partition: number): string {
  return `${topic}-${partition}`;
}

interface PartitionTrack {
  readonly checker: ReplicationChecker;
  /** leader epoch -> the broker seen leading in it. */
  readonly leaderByEpoch: Map<number, number>;
}

const EMPTY_LOG = new MemoryReplicaLog();

/** Converts the replication checker's Violation (its own class) into ours. */
function asViolation(err: unknown): unknown {
  if (err instanceof Violation) return err;
  if (err instanceof Error && err.name === 'Violation' && 'property' in err) {
    const property = String((err as { property: unknown }).property);
    return new Violation(property, err.message.slice(property.length + 2));
  }
  return err;
}

export class WholeClusterChecker {
  readonly raft: SafetyChecker;
  /** The image of the committed metadata log, as far as it was seen committed. */
  readonly reference = new Image();
  private referenceIndex = 0;
  /** JSON of the reference image after each committed index (noop entries share their predecessor's). */
  private readonly referenceJson = new Map<number, string>();
  private readonly partitions = new Map<string, PartitionTrack>();
  /** What the committed metadata log did (for the simulator's statistics). */
  readonly committedEvents = { fences: 0, leaderChanges: 0, offlinePartitions: 0, isrChanges: 0 };

  constructor(nodeCount: number, raftDurability = true) {
    this.raft = new SafetyChecker(nodeCount, raftDurability);
  }

  get committedIndex(): number {
    return this.referenceIndex;
  }

  // ---- inputs from the simulator ------------------------------------------------------------------

  onApply(n: WholeNodeView, e: LogEntry, tick: number): void {
    this.raft.onApply(n, e, tick);
  }

  onSnapshotLoaded(n: WholeNodeView, index: number, tick: number): void {
    this.raft.onSnapshotLoaded(n, index, tick);
  }

  /** A node's replica log truncated `removed` while its replica acted in `leaderEpoch`. */
  onTruncate(key: string, nodeId: number, removed: readonly StoredBatch[], leaderEpoch: number): void {
    this.wrap(() => this.track(key).checker.onTruncate(nodeId, removed, leaderEpoch));
  }

  /** A leader completed an acks=all produce (before its answer travels back to the client). */
  onAcked(key: string, baseOffset: number, values: readonly string[], leader: PartitionReplica): void {
    this.wrap(() => this.track(key).checker.onAcked(baseOffset, values, leader));
  }

  afterCrash(nodes: readonly WholeNodeView[], nodeId: number): void {
    this.raft.afterCrash(nodes);
    this.forEachPartition(nodes, (_key, track, views, isr) =>
      track.checker.checkDurability(views, isr, `after crash of node ${nodeId}`),
    );
  }

  afterStep(tick: number, nodes: readonly WholeNodeView[], full: boolean): void {
    this.raft.afterStep(tick, nodes, full);
    this.advanceReference();
    this.checkImages(nodes, full);
    this.forEachPartition(nodes, (key, track, views, isr) => {
      for (const v of views) {
        const r = v.replica;
        if (r === undefined || r.role !== 'leader') continue;
        const other = track.leaderByEpoch.get(r.leaderEpoch);
        if (other !== undefined && other !== v.id) {
          throw new Violation(
            'partition-leader-per-epoch',
            `${key}: brokers ${other} and ${v.id} both lead epoch ${r.leaderEpoch}`,
          );
        }
        track.leaderByEpoch.set(r.leaderEpoch, v.id);
      }
      track.checker.afterStep(views, isr, full);
    });
  }

  /**
   * After healing and quiescing: every acknowledged record is in the leader's log at its offset,
   * and every ISR member holds exactly the leader's records below the high watermark.
   */
  finalCheck(nodes: readonly WholeNodeView[], acked: ReadonlyMap<string, ReadonlyMap<number, string>>): void {
    for (const t of this.reference.topics()) {
      for (const p of t.partitions) {
        const key = partitionKey(t.name, p.partition);
        const leader = nodes.find((n) => n.id === p.leader);
        const lr = leader?.replicas.get(key)?.replica;
        const leaderLog = leader?.logs.get(key)?.log;
        if (lr === undefined || leaderLog === undefined || lr.role !== 'leader') {
          throw new Violation('final', `${key}: leader ${p.leader} is not acting as leader`);
        }
        for (const [offset, value] of acked.get(key) ?? []) {
          const have = valueAt(leaderLog, offset);
          if (have !== value) {
            throw new Violation(
              'acked-record-lost',
              `${key}: acknowledged offset ${offset} (${value}) is ${have ?? 'missing'} on final leader ${p.leader}`,
            );
          }
        }
        for (const id of p.isr) {
          const log = nodes.find((n) => n.id === id)?.logs.get(key)?.log ?? EMPTY_LOG;
          for (let o = lr.log.logStartOffset; o < lr.highWatermark; o++) {
            const want = valueAt(leaderLog, o);
            const have = valueAt(log, o);
            if (have !== want) {
              throw new Violation(
                'isr-diverges-below-hw',
                `${key}: ISR member ${id} has ${have ?? 'nothing'} at ${o}, leader ${p.leader} has ${want} (HW ${lr.highWatermark})`,
              );
            }
          }
        }
      }
    }
    this.forEachPartition(nodes, (_key, track, views, isr) =>
      track.checker.checkDurability(views, isr, 'at the end'),
    );
  }

  // ---- internals ----------------------------------------------------------------------------------

  private wrap(f: () => void): void {
    try {
      f();
    } catch (err) {
      throw asViolation(err);
    }
  }

  private track(key: string): PartitionTrack {
    let t = this.partitions.get(key);
    if (t === undefined) {
      t = { checker: new ReplicationChecker(), leaderByEpoch: new Map() };
      this.partitions.set(key, t);
    }
    return t;
  }

  /** Folds newly committed entries into the reference image, in index order, without gaps. */
  private advanceReference(): void {
    for (;;) {
      const e = this.raft.committedEntry(this.referenceIndex + 1);
      if (e === undefined) return;
      const previous = this.referenceJson.get(this.referenceIndex) ?? '[]';
      if (e.kind === 'data') {
        try {
          const records = decodeMetadataBatch(Buffer.from(e.data));
          for (const r of records) {
            if (r.type === 'FenceBroker') this.committedEvents.fences++;
            if (r.type !== 'PartitionChange') continue;
            if (r.leader !== undefined) this.committedEvents.leaderChanges++;
            if (r.leader === -1) this.committedEvents.offlinePartitions++;
            if (r.isr !== undefined) this.committedEvents.isrChanges++;
          }
          this.reference.apply(records, e.index);
        } catch (err) {
          throw new Violation(
            'metadata-apply',
            `committed entry ${e.index} does not apply: ${(err as Error).message}`,
          );
        }
        this.referenceJson.set(e.index, JSON.stringify(this.reference.toRecords()));
      } else {
        this.referenceJson.set(e.index, previous);
      }
      this.referenceIndex = e.index;
    }
  }

  /** Every node's image is the reference image at its offset: the image of a committed prefix. */
  private checkImages(nodes: readonly WholeNodeView[], full: boolean): void {
    for (const n of nodes) {
      if (n.raft === undefined) continue;
      const offset = n.image.offset;
      if (offset < 0) continue;
      if (offset > this.referenceIndex) {
        throw new Violation(
          'metadata-ahead-of-commit',
          `node ${n.id} applied metadata up to ${offset}, committed only up to ${this.referenceIndex}`,
        );
      }
      if (!full) continue;
      const want = this.referenceJson.get(offset);
      const have = JSON.stringify(n.image.toRecords());
      if (want !== have) {
        throw new Violation(
          'metadata-image-diverges',
          `node ${n.id}'s image at offset ${offset} differs from the committed log's:\n  node:      ${have}\n  committed: ${want}`,
        );
      }
    }
  }

  /** Runs `f` for each partition of the reference image, with its replica views and committed ISR. */
  private forEachPartition(
    nodes: readonly WholeNodeView[],
    f: (key: string, track: PartitionTrack, views: ReplicaNodeView[], isr: readonly number[]) => void,
  ): void {
    for (const t of this.reference.topics()) {
      for (const p of t.partitions) {
        const key = partitionKey(t.name, p.partition);
        const views: ReplicaNodeView[] = [];
        for (const id of p.replicas) {
          const n = nodes.find((x) => x.id === id);
          if (n === undefined) continue;
          views.push({
            id,
            incarnation: n.incarnation,
            replica: n.raft === undefined ? undefined : n.replicas.get(key)?.replica,
            log: n.logs.get(key)?.log ?? EMPTY_LOG,
          });
        }
        this.wrap(() => f(key, this.track(key), views, p.isr));
      }
    }
  }
}
