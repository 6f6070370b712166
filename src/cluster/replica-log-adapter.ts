/**
 * AsyncReplicaLog: the replication state machine's synchronous ReplicaLog over the broker's
 * asynchronous PartitionLog.
 *
 * PartitionReplica decides synchronously (it must: its decisions and the offsets they name are
 * one step). This adapter makes that true over a log whose writes are asynchronous:
 * - every mutation (append, truncate, flush) is queued on one promise chain, so the PartitionLog
 *   sees them in the order the state machine made them;
 * - `logEndOffset` is tracked here at call time (the end after every queued mutation), so an
 *   append can return its offsets at once — the log assigns the same ones when the write runs,
 *   because nothing else writes to it;
 * - `flushedOffset` is what the PartitionLog has fsynced, capped by any truncation still queued
 *   (the log's figure may still describe bytes that are about to be cut) and by the tracked end.
 *
 * Reads are not part of it: the leader answers a follower with `acceptFetch` and reads the
 * records from the PartitionLog itself; the epoch cache is rebuilt asynchronously on open.
 * A failed write is fatal for the partition (`failed` is set, every later call throws): memory
 * and disk would disagree about offsets, and only a restart (recovery) can reconcile them.
 */

import {
  type AppendInfo,
  type BatchInfo,
  type ReplicaLog,
  splitBatches,
} from '../replication/replica-log.js';
import type { PartitionLog } from '../storage/index.js';

export class AsyncReplicaLog implements ReplicaLog {
  private chain: Promise<unknown> = Promise.resolve();
  private end: number;
  private pendingTruncations = 0;
  private truncationFloor = Number.POSITIVE_INFINITY;
  failed: Error | undefined;

  constructor(
    readonly log: PartitionLog,
    private readonly onError: (err: Error) => void,
  ) {
    this.end = log.logEndOffset;
  }

  get logStartOffset(): number {
    return this.log.logStartOffset;
  }
  get logEndOffset(): number {
    return this.end;
  }
  get flushedOffset(): number {
    return Math.min(this.log.flushedOffset, this.end, this.truncationFloor);
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    if (this.failed) throw this.failed;
    const run = this.chain.then(fn);
    this.chain = run.catch((err: unknown) => {
      if (!this.failed) {
        this.failed = err as Error;
        this.onError(err as Error);
      }
    });
    return run;
  }

  /** Appends at the tracked end; resolves when the bytes are in the log (not yet fsynced). */
  appendAsync(batches: Buffer, leaderEpoch?: number): { info: AppendInfo; written: Promise<unknown> } {
    const spans = splitBatches(batches);
    let count = 0;
    for (const s of spans) count += s.lastOffsetDelta + 1;
    const baseOffset = this.end;
    this.end += count;
    const written = this.enqueue(() =>
      this.log.append(batches, leaderEpoch === undefined ? {} : { leaderEpoch }),
    );
    return { info: { baseOffset, lastOffset: this.end - 1 }, written };
  }

  /** The write of the latest append (acks=1 answers when it resolves). */
  lastWritten: Promise<unknown> = Promise.resolve();

  append(batches: Buffer, leaderEpoch?: number): AppendInfo {
    const { info, written } = this.appendAsync(batches, leaderEpoch);
    written.catch(() => undefined); // reported through onError
    this.lastWritten = written;
    return info;
  }

  truncateTo(offset: number): void {
    if (offset >= this.end) return;
    this.end = offset;
    this.pendingTruncations++;
    this.truncationFloor = Math.min(this.truncationFloor, offset);
    this.enqueue(() => this.log.truncateTo(offset))
      .finally(() => {
        if (--this.pendingTruncations === 0) this.truncationFloor = Number.POSITIVE_INFINITY;
      })
      .catch(() => undefined);
  }

  /** fsyncs everything queued so far (group commit in the PartitionLog). */
  flush(): Promise<void> {
    return this.enqueue(() => Promise.resolve()).then(() => this.log.flush());
  }

  /** Resolves when every queued mutation has run. */
  settled(): Promise<void> {
    return this.chain.then(() => undefined);
  }

  read(): Buffer {
    throw new Error('AsyncReplicaLog: reads go to the PartitionLog (acceptFetch), not through the adapter');
  }

  batches(): Iterable<BatchInfo> {
    throw new Error('AsyncReplicaLog: the epoch cache is rebuilt with rebuildEpochCache()');
  }
}
