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
 * A failed append (a full disk: the PartitionLog undid it, see storage/partition-log.ts) makes
 * memory and disk disagree about the end: `failed` is set, every later call throws, and the
 * appends queued behind it are dropped (their offsets assumed it). Once the queue has drained,
 * `end` is taken from the log again, `failed` is cleared and `onRecovered` tells the owner, which
 * rewinds the state machine (PartitionReplica.logRewound); the next append retries the write.
 * A failed truncation stays fatal (`fatal` is set): what it left on disk is not known, and only a
 * restart (recovery) can reconcile memory with it.
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
  /** Mutations queued and not yet settled. */
  private queued = 0;
  /** Set from a failed write until the log is consistent again (see the file comment). */
  failed: Error | undefined;
  /** Set by a failed truncation: the replica stays stopped until a restart. */
  fatal = false;

  constructor(
    readonly log: PartitionLog,
    /** A write failed; `rewindTo` is the offset the failed append was to start at. */
    private readonly onError: (err: Error, rewindTo: number) => void,
    /** The queue drained after a failed append and `logEndOffset` is the log's again. */
    private readonly onRecovered: () => void = () => {},
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

  private enqueue<T>(
    fn: () => Promise<T>,
    what: { kind: 'append'; baseOffset: number } | { kind: 'truncate'; offset: number },
  ): Promise<T> {
    if (this.failed) throw this.failed;
    this.queued++;
    const run = this.chain.then(() => {
      // An append queued behind a failed one was given offsets after it: drop it.
      if (this.failed && what.kind === 'append') throw this.failed;
      return fn();
    });
    this.chain = run
      .then(
        () => undefined,
        (err: unknown) => {
          if (this.failed) return;
          this.failed = err as Error;
          if (what.kind === 'truncate') this.fatal = true;
          this.onError(err as Error, what.kind === 'append' ? what.baseOffset : what.offset);
        },
      )
      .finally(() => {
        if (--this.queued === 0 && this.failed && !this.fatal) this.recover();
      });
    return run;
  }

  /** After a failed append, with nothing queued: the log's end is the truth again. */
  private recover(): void {
    this.end = this.log.logEndOffset;
    this.failed = undefined;
    this.onRecovered();
  }

  /** Appends at the tracked end; resolves when the bytes are in the log (not yet fsynced). */
  appendAsync(batches: Buffer, leaderEpoch?: number): { info: AppendInfo; written: Promise<unknown> } {
    if (this.failed) throw this.failed;
    const spans = splitBatches(batches);
    let count = 0;
    for (const s of spans) count += s.lastOffsetDelta + 1;
    const baseOffset = this.end;
    this.end += count;
    const written = this.enqueue(
      () => this.log.append(batches, leaderEpoch === undefined ? {} : { leaderEpoch }),
      { kind: 'append', baseOffset },
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
    if (this.failed) throw this.failed;
    if (offset >= this.end) return;
    this.end = offset;
    this.pendingTruncations++;
    this.truncationFloor = Math.min(this.truncationFloor, offset);
    this.enqueue(() => this.log.truncateTo(offset), { kind: 'truncate', offset })
      .finally(() => {
        if (--this.pendingTruncations === 0) this.truncationFloor = Number.POSITIVE_INFINITY;
      })
      .catch(() => undefined);
  }

  /** fsyncs everything queued so far (group commit in the PartitionLog). Never throws at once. */
  flush(): Promise<void> {
    return this.chain.then(() => this.log.flush());
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
