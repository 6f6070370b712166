/**
 * ReplicatedPartition: runs one partition's replication state machine (src/replication's
 * PartitionReplica) for real, on the broker's Partition and its PartitionLog.
 *
 * The state machine decides; this class does the I/O it asks for and feeds the results back:
 * - leader appends go through `appendAsLeader` (the Partition has validated them already); every
 *   append is followed by a flush, and the flush's completion is what lets the leader's own
 *   offsets count toward the high watermark (`onFlushed`);
 * - a follower's fetched batches are appended through the same adapter and flushed before its
 *   next Fetch is allowed out (the state machine checks `flushedOffset`), so the offset a
 *   follower reports to its leader is always on its disk;
 * - outputs are drained after every input: completed produces resolve their promises, ISR
 *   proposals go to the controller (AlterPartition) through the `sendAlterPartition` callback;
 * - when the high watermark moves, waiting consumer fetches are woken.
 *
 * Clock: `nowMs` is passed in; timers belong to the ReplicaManager, which calls `tick`.
 */

import type { Partition, ReplicationHooks } from '../broker/partition.js';
import { ErrorCode, KafkaError } from '../protocol/errors.js';
import { batchOffsets, readBatchHeader } from '../protocol/records/batch-header.js';
import { LeaderEpochCache } from '../replication/leader-epoch-cache.js';
import type {
  AlterPartitionRequest,
  AlterPartitionResponse,
  LeaderResponse,
  OffsetForLeaderEpochRequest,
  OffsetForLeaderEpochResponse,
  PartitionState,
  ReplicaFetchRequest,
  ReplicaFetchResponse,
} from '../replication/messages.js';
import { type FollowerRequest, NO_LEADER } from '../replication/messages.js';
import { PartitionReplica, type ReplicaConfig } from '../replication/partition-replica.js';
import { AsyncReplicaLog } from './replica-log-adapter.js';

const FLUSH_RETRY_MS = 1_000;
const STORAGE_ERROR_LOG_INTERVAL_MS = 10_000;

export interface ReplicatedPartitionDeps {
  readonly nowMs: () => number;
  readonly sendAlterPartition: (rp: ReplicatedPartition, request: AlterPartitionRequest) => void;
  readonly logger: { info(m: string): void; warn(m: string): void; error(m: string): void };
}

interface Waiting {
  resolve: () => void;
  reject: (err: Error) => void;
}

export class ReplicatedPartition implements ReplicationHooks {
  readonly replica: PartitionReplica;
  readonly adapter: AsyncReplicaLog;
  private produceSeq = 0;
  private readonly waiting = new Map<number, Waiting>();
  private flushing = false;
  private flushAgain = false;
  private lastHighWatermark: number;
  /** Resolved whenever a flush completes (the follower's fetcher waits on it). */
  private flushWaiters: (() => void)[] = [];

  private constructor(
    readonly partition: Partition,
    replica: PartitionReplica,
    adapter: AsyncReplicaLog,
    private readonly deps: ReplicatedPartitionDeps,
  ) {
    this.replica = replica;
    this.adapter = adapter;
    this.lastHighWatermark = replica.highWatermark;
  }

  /**
   * Rebuilds the leader-epoch cache from the batches on disk, then wraps the partition.
   *
   * `currentLeaderEpoch` is the partition's leader epoch in the metadata image now. No leader
   * can have stamped a batch with a later epoch, so a batch that carries one is damaged (the
   * partitionLeaderEpoch field is outside the batch CRC, so recovery cannot tell): the log is cut
   * before it and the replica fetches the rest from the leader. Kept, it would make the replica
   * ignore every partition state up to that epoch as history, i.e. never follow again.
   */
  static async open(
    partition: Partition,
    config: ReplicaConfig,
    deps: ReplicatedPartitionDeps,
    highWatermarkCheckpoint = 0,
    currentLeaderEpoch = Number.MAX_SAFE_INTEGER,
  ): Promise<ReplicatedPartition> {
    let cache = new LeaderEpochCache();
    let damagedAt: { offset: number; epoch: number } | undefined;
    for await (const { header } of partition.log.batchHeaders()) {
      const e = header.partitionLeaderEpoch;
      if (e > currentLeaderEpoch) {
        damagedAt = { offset: header.baseOffset, epoch: e };
        break;
      }
      if (e >= 0 && e > cache.latestEpoch) cache.assign(e, header.baseOffset);
    }
    if (damagedAt) {
      deps.logger.warn(
        `${partition.topic}-${partition.index}: the batch at offset ${damagedAt.offset} carries leader epoch ${damagedAt.epoch}, above the partition's current ${currentLeaderEpoch}: damaged (that field is outside the CRC); truncating the log to ${damagedAt.offset} and fetching the rest from the leader`,
      );
      await partition.log.truncateTo(damagedAt.offset);
      await partition.rebuildProducerState();
      cache = new LeaderEpochCache();
      for await (const { header } of partition.log.batchHeaders()) {
        const e = header.partitionLeaderEpoch;
        if (e >= 0 && e > cache.latestEpoch) cache.assign(e, header.baseOffset);
      }
    }
    const ref: { self?: ReplicatedPartition } = {};
    const adapter = new AsyncReplicaLog(
      partition.log,
      (err, rewindTo) => ref.self?.onWriteFailed(err, rewindTo),
      () => ref.self?.onWriteRecovered(),
    );
    // The HW restarts from its checkpoint (cluster/hw-checkpoint.ts), never above the log end.
    const replica = new PartitionReplica(
      config,
      adapter,
      cache,
      Math.min(highWatermarkCheckpoint, adapter.logEndOffset),
    );
    const self = new ReplicatedPartition(partition, replica, adapter, deps);
    ref.self = self;
    partition.replication = self;
    return self;
  }

  get topic(): string {
    return this.partition.topic;
  }
  get index(): number {
    return this.partition.index;
  }
  get isLeader(): boolean {
    return this.replica.role === 'leader' && !this.adapter.fatal;
  }
  get leaderEpoch(): number {
    return this.replica.leaderEpoch;
  }
  get leaderId(): number {
    return this.replica.leaderId;
  }
  get highWatermark(): number {
    return this.replica.highWatermark;
  }

  applyState(state: PartitionState): void {
    const role = this.replica.role;
    const epoch = this.replica.leaderEpoch;
    this.replica.applyPartitionState(state, this.deps.nowMs());
    if (this.replica.role !== role || this.replica.leaderEpoch !== epoch) {
      // Kafka logs these transitions too: they are what an operator reads after a failover.
      this.deps.logger.info(
        `${this.topic}-${this.index}: ${this.replica.role} in leader epoch ${this.replica.leaderEpoch} (leader ${this.replica.leaderId}, ISR ${this.replica.isr.join(',')}, log end ${this.adapter.logEndOffset}, HW ${this.replica.highWatermark})`,
      );
    }
    this.afterInput();
  }

  appendAsLeader(
    records: Buffer,
    acks: number,
    timeoutMs: number,
  ): { baseOffset: number; done: Promise<void> } {
    if (this.adapter.failed) throw new KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, this.adapter.failed.message);
    const id = ++this.produceSeq;
    const mode = acks === -1 ? -1 : acks === 0 ? 0 : 1;
    const before = this.adapter.lastWritten;
    const result = this.replica.appendAsLeader(id, records, mode, this.deps.nowMs(), timeoutMs);
    const written = this.adapter.lastWritten === before ? Promise.resolve() : this.adapter.lastWritten;
    if (result.errorCode !== ErrorCode.NONE) throw new KafkaError(result.errorCode);
    // Followers long-polling for this partition read from the log: wake them once it holds the bytes.
    written.then(
      () => this.partition.notifyWaiters(),
      () => undefined,
    );
    let done: Promise<void>;
    if (result.pending) {
      done = new Promise<void>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    } else {
      done = written.then(() => undefined);
    }
    this.scheduleFlush();
    this.afterInput();
    return { baseOffset: result.baseOffset, done };
  }

  /** A follower's Fetch for this partition, answered by the leader (records read from disk). */
  async handleReplicaFetch(req: ReplicaFetchRequest, maxBytes: number): Promise<ReplicaFetchResponse> {
    const { response, read } = this.replica.acceptFetch(req, this.deps.nowMs());
    this.afterInput();
    if (read === undefined) return response;
    try {
      const r = await this.partition.log.read(read.offset, Math.min(read.maxBytes, maxBytes), {
        minOneBatch: true,
        maxOffset: this.adapter.logEndOffset,
      });
      return { ...response, records: r.records };
    } catch (err) {
      // A concurrent truncation or retention moved the log: let the follower ask again.
      this.deps.logger.warn(
        `${this.topic}-${this.index}: replica read at ${read.offset}: ${(err as Error).message}`,
      );
      return { ...response, errorCode: ErrorCode.OFFSET_OUT_OF_RANGE };
    }
  }

  handleOffsetForLeaderEpoch(req: OffsetForLeaderEpochRequest): OffsetForLeaderEpochResponse {
    return this.replica.handleOffsetForLeaderEpoch(req);
  }

  /** The follower's next request to its leader, if one is due. */
  pollRequest(): FollowerRequest | undefined {
    if (this.adapter.failed) return undefined;
    return this.replica.pollRequest(this.deps.nowMs());
  }

  /** The leader's answer to this follower's request. */
  handleLeaderResponse(resp: LeaderResponse): void {
    // A write failed and is being undone: drop the answer; the follower asks again afterwards.
    if (this.adapter.failed) return;
    const before = this.adapter.logEndOffset;
    this.replica.handleResponse(resp, this.deps.nowMs());
    const after = this.adapter.logEndOffset;
    if (after > before && resp.kind === 'fetch-response') {
      // The idempotent-producer table follows the log on followers too, so a follower that
      // becomes leader checks the next sequence of every producer exactly as the old leader would.
      this.recordProducers(resp.records);
    } else if (after < before) {
      this.deps.logger.info(
        `${this.topic}-${this.index}: truncated from ${before} to ${after} (leader epoch ${this.replica.leaderEpoch})`,
      );
      // Truncated: forget the batches that are gone, so a producer retrying one of them is
      // written again rather than answered as a duplicate of a batch this log no longer has.
      this.partition.producers.truncateFrom(after);
    }
    if (after !== before) this.scheduleFlush();
    this.afterInput();
  }

  private recordProducers(records: Buffer): void {
    for (const { at } of batchOffsets(records)) {
      const h = readBatchHeader(records, at);
      if (h.producerId >= 0 && h.baseSequence >= 0) {
        this.partition.producers.record(
          h.producerId,
          h.producerEpoch,
          h.baseSequence,
          h.lastOffsetDelta,
          h.baseOffset,
          h.maxTimestamp,
        );
      }
    }
  }

  onAlterPartitionResponse(resp: AlterPartitionResponse): void {
    this.replica.onAlterPartitionResponse(resp, this.deps.nowMs());
    this.afterInput();
  }

  tick(): void {
    this.replica.tick(this.deps.nowMs());
    this.afterInput();
  }

  /** Whether the follower is waiting for its own flush before it may fetch again. */
  get awaitingFlush(): boolean {
    return this.adapter.flushedOffset < this.adapter.logEndOffset;
  }

  /** Resolves after the next flush completes (or at once when nothing is unflushed). */
  flushed(): Promise<void> {
    if (!this.awaitingFlush) return Promise.resolve();
    return new Promise((resolve) => this.flushWaiters.push(resolve));
  }

  get leaderKnown(): boolean {
    return this.replica.leaderId !== NO_LEADER;
  }

  private scheduleFlush(): void {
    if (this.flushing) {
      this.flushAgain = true;
      return;
    }
    this.flushing = true;
    this.adapter.flush().then(
      () => {
        this.flushing = false;
        this.replica.onFlushed();
        this.afterInput();
        const ws = this.flushWaiters;
        this.flushWaiters = [];
        for (const w of ws) w();
        if (this.flushAgain || this.awaitingFlush) {
          this.flushAgain = false;
          this.scheduleFlush();
        }
      },
      (err: unknown) => {
        this.flushing = false;
        this.flushAgain = false;
        this.reportStorageError(`flush failed: ${(err as Error).message}`);
        this.failAll(err as Error);
        // The bytes are still unflushed (a follower may not fetch until they are): try again.
        this.flushRetry ??= setTimeout(() => {
          this.flushRetry = undefined;
          if (!this.closed && this.awaitingFlush) this.scheduleFlush();
        }, FLUSH_RETRY_MS);
        this.flushRetry.unref?.();
      },
    );
  }

  private flushRetry: NodeJS.Timeout | undefined;
  /** The last failed write, named in the KAFKA_STORAGE_ERROR answers it causes. */
  private lastWriteError: Error | undefined;
  private closed = false;
  private lastStorageErrorMs = Number.NEGATIVE_INFINITY;
  private storageErrorsSuppressed = 0;

  /** Logs a storage failure at most once every 10 s (a full disk fails every write). */
  private reportStorageError(message: string): void {
    const now = this.deps.nowMs();
    if (now - this.lastStorageErrorMs < STORAGE_ERROR_LOG_INTERVAL_MS) {
      this.storageErrorsSuppressed++;
      return;
    }
    const more = this.storageErrorsSuppressed > 0 ? ` (and ${this.storageErrorsSuppressed} more since)` : '';
    this.lastStorageErrorMs = now;
    this.storageErrorsSuppressed = 0;
    this.deps.logger.error(`${this.topic}-${this.index}: ${message}${more}`);
  }

  /**
   * An append failed (the log undid it). Forget at once the producer batches from its offset on,
   * so a retry is written again rather than answered as a duplicate of a batch that is not there;
   * let the fetcher go on. The rest waits for onWriteRecovered (the adapter's queue to drain).
   */
  private onWriteFailed(err: Error, rewindTo: number): void {
    if (this.adapter.fatal) {
      this.deps.logger.error(
        `${this.topic}-${this.index}: log truncation failed, the replica stops: ${err.message}`,
      );
      this.failAll(err);
      return;
    }
    this.reportStorageError(
      `log write failed at offset ${rewindTo}, retried ${this.replica.role === 'leader' ? 'with the next produce' : 'after a backoff'}: ${err.message}`,
    );
    this.lastWriteError = err;
    this.partition.producers.truncateFrom(rewindTo);
    this.resolveFlushWaiters();
  }

  /** The log is consistent again after a failed append: rewind the state machine to it. */
  private onWriteRecovered(): void {
    if (this.closed) return;
    const end = this.adapter.logEndOffset;
    this.partition.producers.truncateFrom(end);
    this.replica.logRewound(this.deps.nowMs());
    this.afterInput();
    if (this.awaitingFlush) this.scheduleFlush();
    this.resolveFlushWaiters();
  }

  private resolveFlushWaiters(): void {
    const ws = this.flushWaiters;
    this.flushWaiters = [];
    for (const w of ws) w();
  }

  private afterInput(): void {
    for (const out of this.replica.drainOutputs()) {
      if (out.type === 'produce-completed') {
        const w = this.waiting.get(out.produceId);
        if (!w) continue;
        this.waiting.delete(out.produceId);
        if (out.errorCode === ErrorCode.NONE) w.resolve();
        else
          w.reject(
            new KafkaError(
              out.errorCode,
              out.errorCode === ErrorCode.KAFKA_STORAGE_ERROR ? this.lastWriteError?.message : undefined,
            ),
          );
      } else {
        this.deps.sendAlterPartition(this, out.request);
      }
    }
    const hw = this.replica.highWatermark;
    if (hw !== this.lastHighWatermark) {
      this.lastHighWatermark = hw;
      this.partition.notifyWaiters();
    }
  }

  private failAll(err: Error): void {
    const e = new KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, err.message);
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
    this.resolveFlushWaiters();
  }

  /** Stops: every waiting produce fails with NOT_LEADER_OR_FOLLOWER (the replica is closing). */
  close(): void {
    this.closed = true;
    if (this.flushRetry) clearTimeout(this.flushRetry);
    this.flushRetry = undefined;
    const e = new KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER);
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
    this.partition.replication = undefined;
  }
}
