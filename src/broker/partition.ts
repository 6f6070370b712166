/**
 * One partition as the broker serves it: its log, high watermark, idempotent-producer state and
 * the readers waiting for new data (long-poll fetches).
 *
 * Invariants:
 * - Appends go through `appendBatches`, which validates every batch (size, magic, CRC, producer
 *   sequence) before any byte reaches the log, so the log only ever holds valid batches.
 * - On this single-node broker the high watermark is the log end offset: a record is visible
 *   once written (to the page cache), and waiting long polls are woken then. acks=all waits for
 *   fsync (`log.flush()`, a group commit) before answering, so a consumer may read a record before
 *   its producer is acknowledged, and a power loss may take back a record a consumer has read
 *   (as with Apache Kafka on one node; docs/benchmarks.md, 2026-12-07).
 * - Producer state is updated only after the log accepted the append, so a failed write never
 *   makes a retry look like a duplicate. A write the disk refuses (full disk, I/O error) is
 *   answered KAFKA_STORAGE_ERROR; the log has undone it (storage/partition-log.ts).
 */

import { ErrorCode, KafkaError } from '../protocol/errors.js';
import { DecodeError } from '../protocol/primitives.js';
import {
  BATCH_HEADER_BYTES,
  COMPRESSION_MASK,
  Compression,
  OFF_ATTRIBUTES,
  OFF_CRC,
  OFF_MAX_TIMESTAMP,
  TIMESTAMP_TYPE_LOG_APPEND,
  batchHeaderInternals,
  computeBatchCrc,
  readBatchHeader,
  validateBatchAt,
} from '../protocol/records/batch-header.js';
import { MIN_RECORD_BYTES, decodeRecordBatch } from '../protocol/records/record-batch.js';
import { type PartitionLog, StorageIoError } from '../storage/index.js';
import type { TopicConfigValues } from './config.js';
import { ProducerStateTable } from './producer-state.js';

export interface AppendOutcome {
  baseOffset: number;
  logAppendTimeMs: number;
  logStartOffset: number;
}

const COMPRESSION_NAMES: Record<number, string> = {
  [Compression.None]: 'uncompressed',
  [Compression.Gzip]: 'gzip',
  [Compression.Snappy]: 'snappy',
  [Compression.Lz4]: 'lz4',
  [Compression.Zstd]: 'zstd',
};

/**
 * Header-only checks of a batch's record count (no decompression): Kafka's LogValidator requires
 * lastOffsetDelta + 1 == recordsCount for client batches, and uncompressed records each take at
 * least MIN_RECORD_BYTES. Without them a one-record batch claiming 2^31-1 records would be stored
 * (and claim 2^31 offsets), and only fail later for every consumer that decodes it.
 */
function checkRecordCount(records: Buffer, at: number, size: number): void {
  const h = readBatchHeader(records, at);
  if (h.recordsCount <= 0 || h.lastOffsetDelta + 1 !== h.recordsCount) {
    throw new KafkaError(
      ErrorCode.INVALID_RECORD,
      `Inconsistent batch offset range [0, ${h.lastOffsetDelta}] and count of records ${h.recordsCount}`,
    );
  }
  if (
    (h.attributes & COMPRESSION_MASK) === Compression.None &&
    h.recordsCount * MIN_RECORD_BYTES > size - BATCH_HEADER_BYTES
  ) {
    throw new KafkaError(
      ErrorCode.CORRUPT_MESSAGE,
      `batch claims ${h.recordsCount} records in ${size - BATCH_HEADER_BYTES} bytes`,
    );
  }
}

/**
 * What a replicated partition (src/cluster) plugs into a Partition: the leader's append that
 * waits for the ISR, the high watermark, and the leadership the handlers check. Without it the
 * partition is the single-node one: always the leader, HW = log end offset.
 */
export interface ReplicationHooks {
  readonly isLeader: boolean;
  readonly leaderEpoch: number;
  readonly highWatermark: number;
  /** The leader's id as the controller says (-1 unknown), for NOT_LEADER_OR_FOLLOWER answers. */
  readonly leaderId: number;
  /**
   * Appends validated batches as leader: offsets are assigned synchronously (so the idempotence
   * table stays in request order); `done` resolves when `acks` is satisfied (acks=all: the high
   * watermark passed the batch) and rejects with the KafkaError to answer. Throws KafkaError when
   * the append is refused outright (not leader, NOT_ENOUGH_REPLICAS).
   */
  appendAsLeader(
    records: Buffer,
    acks: number,
    timeoutMs: number,
  ): { baseOffset: number; done: Promise<void> };
}

export class Partition {
  readonly producers = new ProducerStateTable();
  private waiters = new Set<() => void>();
  private singleNodeLeaderEpoch = 0;
  /** Set by the cluster when this broker holds a replica of the partition. */
  replication: ReplicationHooks | undefined;
  /**
   * A cluster's replica (TopicManager.openReplica). Until the replica manager attaches
   * `replication` (it first scans the log for its leader epochs) and after it detaches it, such a
   * partition is nobody's leader here: it must not take writes as a single node would, stamped
   * with epoch 0 and acknowledged alone (a restarted broker did exactly that in chaos run 20261207).
   */
  clusterReplica = false;

  constructor(
    readonly topic: string,
    readonly index: number,
    readonly log: PartitionLog,
    private config: TopicConfigValues,
    private readonly nowMs: () => number,
  ) {}

  get highWatermark(): number {
    return this.replication ? this.replication.highWatermark : this.log.logEndOffset;
  }
  get leaderEpoch(): number {
    return this.replication ? this.replication.leaderEpoch : this.singleNodeLeaderEpoch;
  }
  /** Whether this broker serves produce and consumer fetches for the partition. */
  get isLeader(): boolean {
    return this.replication ? this.replication.isLeader : !this.clusterReplica;
  }
  get logStartOffset(): number {
    return this.log.logStartOffset;
  }
  get logEndOffset(): number {
    return this.log.logEndOffset;
  }

  updateConfig(config: TopicConfigValues): void {
    this.config = config;
  }

  /** Rebuilds idempotent-producer state from the batch headers in the log (on start). */
  async rebuildProducerState(): Promise<void> {
    this.producers.clear();
    for await (const { header } of this.log.batchHeaders()) {
      if (header.producerId >= 0 && header.baseSequence >= 0) {
        this.producers.record(
          header.producerId,
          header.producerEpoch,
          header.baseSequence,
          header.lastOffsetDelta,
          header.baseOffset,
          header.maxTimestamp,
        );
      }
    }
  }

  /**
   * Validates and appends the record batches of one produce request for this partition.
   * Throws KafkaError with the code Kafka would answer.
   */
  async appendBatches(records: Buffer, acks: number, timeoutMs = 30_000): Promise<AppendOutcome> {
    try {
      if (this.replication) return await this.appendReplicated(records, acks, timeoutMs);
      return await this.appendLocal(records, acks);
    } catch (err) {
      // A write or fsync the disk refused (full: ENOSPC, EDQUOT; or EIO). The log undid the
      // append, so the producer may retry (Kafka's KAFKA_STORAGE_ERROR is retriable).
      if (err instanceof StorageIoError) throw new KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, err.message);
      throw err;
    }
  }

  private async appendLocal(records: Buffer, acks: number): Promise<AppendOutcome> {
    // Validation, the idempotence check, the append and the producer-state update run as one
    // serialized step per partition, entered synchronously in request order: pipelined batches of
    // one idempotent producer (Java's default is 5 in flight) are checked against each other's
    // sequences exactly as they were sent. The fsync stays outside so group commit still batches.
    const appended = await this.serialized(() => this.validateAndAppend(records));
    // The records are readable from here on (the high watermark is the log end offset, which the
    // append just moved), so long polls are woken now rather than after the fsync below: a fetch
    // arriving at this moment would read them anyway, and a waiting consumer should not pay an
    // fdatasync (and its thread-pool round trip) that only the producer's acknowledgement waits for.
    if (!appended.duplicate) this.notifyWaiters();
    const flushMessages = Number(this.config['flush.messages']);
    // A duplicate waits for the fsync too: its original may still be in flight to disk.
    if (acks === -1 || flushMessages <= 1) await this.log.flush();
    return {
      baseOffset: appended.baseOffset,
      logAppendTimeMs: appended.logAppendTimeMs,
      logStartOffset: this.log.logStartOffset,
    };
  }

  /** The cluster's leader append: validation and idempotence as above, then the ISR decides. */
  private async appendReplicated(records: Buffer, acks: number, timeoutMs: number): Promise<AppendOutcome> {
    let done: Promise<void> | undefined;
    const appended = await this.serialized(() =>
      this.validateAndAppend(records, (batches) => {
        const r = this.replication!.appendAsLeader(batches, acks, timeoutMs);
        done = r.done;
        return r.baseOffset;
      }),
    );
    // Wake long polls now: the followers' fetches are what lets the high watermark (and so
    // `done`) advance. Consumers woken early find nothing new below the HW and wait again.
    if (!appended.duplicate) this.notifyWaiters();
    if (done) await done;
    return {
      baseOffset: appended.baseOffset,
      logAppendTimeMs: appended.logAppendTimeMs,
      logStartOffset: this.log.logStartOffset,
    };
  }

  private appendChain: Promise<unknown> = Promise.resolve();

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.appendChain.then(fn, fn);
    this.appendChain = run.catch(() => undefined);
    return run;
  }

  private async validateAndAppend(
    records: Buffer,
    replicatedAppend?: (records: Buffer) => number,
  ): Promise<{ baseOffset: number; logAppendTimeMs: number; duplicate: boolean }> {
    if (!this.isLeader) throw new KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER);
    // Replication attached or detached while this request queued behind others: the path chosen
    // in appendBatches no longer fits; the client retries (the error is retriable).
    if ((replicatedAppend === undefined) !== (this.replication === undefined))
      throw new KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER);
    const maxMessageBytes = Number(this.config['max.message.bytes']);
    const batches: { at: number; size: number }[] = [];
    let at = 0;
    while (at < records.length) {
      let size: number;
      try {
        size = validateBatchAt(records, at, records.length);
      } catch (err) {
        if (err instanceof DecodeError && /exceeds the limit/.test(err.message))
          throw new KafkaError(ErrorCode.MESSAGE_TOO_LARGE);
        throw new KafkaError(ErrorCode.CORRUPT_MESSAGE, (err as Error).message);
      }
      if (size > maxMessageBytes) {
        throw new KafkaError(
          ErrorCode.MESSAGE_TOO_LARGE,
          `batch of ${size} bytes exceeds max.message.bytes ${maxMessageBytes}`,
        );
      }
      checkRecordCount(records, at, size);
      batches.push({ at, size });
      at += size;
    }
    if (batches.length === 0)
      throw new KafkaError(ErrorCode.CORRUPT_MESSAGE, 'produce request has no record batch');
    // Kafka's produce path accepts one batch per partition from v3 clients; several are fine here.
    const first = readBatchHeader(records, batches[0]!.at);
    if (first.attributes & 0x20)
      throw new KafkaError(ErrorCode.INVALID_RECORD, 'clients may not write control batches');
    const compression = first.attributes & COMPRESSION_MASK;
    if (!(compression in COMPRESSION_NAMES)) throw new KafkaError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE);
    if (this.config['cleanup.policy'].split(',').some((p) => p.trim() === 'compact')) {
      // Kafka's LogValidator: every record of a compacted topic needs a key.
      for (const b of batches) {
        let keyless: boolean;
        try {
          const batch = await decodeRecordBatch(records.subarray(b.at, b.at + b.size));
          keyless = batch.records.some((r) => r.key === null);
        } catch (err) {
          throw new KafkaError(ErrorCode.CORRUPT_MESSAGE, (err as Error).message);
        }
        if (keyless) {
          throw new KafkaError(
            ErrorCode.INVALID_RECORD,
            `Compacted topic cannot accept message without key in topic partition ${this.topic}-${this.index}.`,
          );
        }
      }
    }

    // Idempotence: checked per batch against the producer's last five.
    const idempotent = first.producerId >= 0 && first.baseSequence >= 0;
    if (idempotent) {
      if (batches.length !== 1)
        throw new KafkaError(
          ErrorCode.INVALID_RECORD,
          'idempotent produce must carry one batch per partition',
        );
      const c = this.producers.check(
        first.producerId,
        first.producerEpoch,
        first.baseSequence,
        first.lastOffsetDelta,
      );
      if (c.kind === 'duplicate')
        return { baseOffset: c.batch.firstOffset, logAppendTimeMs: -1, duplicate: true };
      if (c.kind === 'error') throw new KafkaError(c.errorCode, c.message);
    }

    const now = this.nowMs();
    const logAppendTime = this.config['message.timestamp.type'] === 'LogAppendTime';
    if (!logAppendTime) {
      // KIP-937: CreateTime timestamps too far in the future or past are refused. Checked per
      // batch (its max and base timestamps) so records are never decoded on the produce path.
      const afterMaxMs = Number(this.config['message.timestamp.after.max.ms']);
      const beforeMaxMs = Number(this.config['message.timestamp.before.max.ms']);
      for (const b of batches) {
        const h = readBatchHeader(records, b.at);
        if (
          h.maxTimestamp - now > afterMaxMs ||
          (h.baseTimestamp >= 0 && now - h.baseTimestamp > beforeMaxMs)
        ) {
          throw new KafkaError(
            ErrorCode.INVALID_TIMESTAMP,
            `Timestamp ${h.maxTimestamp > now ? h.maxTimestamp : h.baseTimestamp} of a record is out of range: more than message.timestamp.after.max.ms (${afterMaxMs}) ahead of or message.timestamp.before.max.ms (${beforeMaxMs}) behind the broker's time ${now}`,
          );
        }
      }
    }
    if (logAppendTime) {
      // Stamp the broker's time: set the timestamp type bit and maxTimestamp, then re-CRC.
      for (const b of batches) {
        const attrs = records.readInt16BE(b.at + OFF_ATTRIBUTES) | TIMESTAMP_TYPE_LOG_APPEND;
        records.writeInt16BE(attrs, b.at + OFF_ATTRIBUTES);
        batchHeaderInternals.writeInt64(records, b.at + OFF_MAX_TIMESTAMP, now);
        records.writeUInt32BE(computeBatchCrc(records, b.at, b.size), b.at + OFF_CRC);
      }
    }
    const result = replicatedAppend
      ? { baseOffset: replicatedAppend(records) }
      : await this.log.append(records, { leaderEpoch: this.leaderEpoch });
    if (idempotent) {
      this.producers.record(
        first.producerId,
        first.producerEpoch,
        first.baseSequence,
        first.lastOffsetDelta,
        result.baseOffset,
        first.maxTimestamp,
      );
    }
    return { baseOffset: result.baseOffset, logAppendTimeMs: logAppendTime ? now : -1, duplicate: false };
  }

  /** Registers a one-shot callback run at the next append; returns a function that cancels it. */
  onAppend(cb: () => void): () => void {
    this.waiters.add(cb);
    return () => this.waiters.delete(cb);
  }

  /** Wakes long-poll fetches (an append, or in a cluster a high watermark that moved). */
  notifyWaiters(): void {
    if (this.waiters.size === 0) return;
    const ws = this.waiters;
    this.waiters = new Set();
    for (const w of ws) w();
  }
}
