/**
 * The producer: batches records per partition and sends them to partition leaders.
 *
 * What it owns and the invariants it keeps:
 * - Partitioning is Kafka's default: a keyed record goes to partitionForKey(key, n) (murmur2, as
 *   the Java client, kafkajs's DefaultPartitioner and librdkafka's murmur2_random); an unkeyed one
 *   to the topic's sticky partition, which changes whenever a batch for it is closed (KIP-480),
 *   so unkeyed records fill whole batches instead of spraying one record per partition.
 * - A batch closes when it reaches batchBytesMax or lingerMs after its first record (or on
 *   flush); closed batches of one partition are sent in order, one in flight at a time, so a
 *   retry can never reorder records.
 * - With idempotence (default when acks=-1) the producer gets a producer id (InitProducerId) and
 *   numbers each partition's records; a batch's sequence and bytes are fixed the first time it
 *   is sent and a retry resends exactly those bytes, so the broker drops a duplicate instead of
 *   writing it twice.
 * - Retriable errors (leader moved, timeouts, lost connections) are retried with backoff until
 *   deliveryTimeoutMs after the batch closed; then, or on any other error, the batch's send()
 *   promises reject with a typed error.
 * - Records of successive send() calls are appended in call order, even while metadata is loading.
 */

import { ErrorCode } from '../protocol/errors.js';
import { ApiKey } from '../protocol/generated/index.js';
import { Compression } from '../protocol/records/batch-header.js';
import { type RecordHeader, type RecordInput, encodeRecordBatch } from '../protocol/records/record-batch.js';
import { Cluster, type ClusterOptions, sleep } from './cluster.js';
import type { Connection } from './connection.js';
import {
  InvalidArgumentError,
  KafkaResponseError,
  SluiceClientError,
  kafkaError,
  needsMetadataRefresh,
} from './errors.js';
import { partitionForKey } from './partitioner.js';

export type Acks = 0 | 1 | -1 | 'all';
export type CompressionName = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';

const COMPRESSION_CODES: Record<CompressionName, Compression> = {
  none: Compression.None,
  gzip: Compression.Gzip,
  snappy: Compression.Snappy,
  lz4: Compression.Lz4,
  zstd: Compression.Zstd,
};

export function parseCompression(name: string): Compression {
  const c = COMPRESSION_CODES[name as CompressionName];
  if (c === undefined)
    throw new InvalidArgumentError(`unknown compression "${name}"; use none, gzip, snappy, lz4 or zstd`);
  return c;
}

export interface ProducerOptions extends ClusterOptions {
  /** 0: no response; 1: leader wrote it; -1/'all': all in-sync replicas have it (default). */
  acks?: Acks;
  /** Default true when acks is -1; requires acks -1. */
  idempotent?: boolean;
  /** How long a batch waits for more records after its first one. Default 5. */
  lingerMs?: number;
  /** A batch closes once it holds this many bytes (Java's batch.size). Default 16384. */
  batchBytesMax?: number;
  compression?: CompressionName;
  /** Wait between retries of a batch. Default 100. */
  retryBackoffMs?: number;
  /** Give up on a batch this long after it closed. Default 120000. */
  deliveryTimeoutMs?: number;
  /** Ask the broker to create unknown topics (if it allows that). Default true, as Java's producer. */
  allowAutoTopicCreation?: boolean;
}

export interface ProducerRecord {
  key?: Buffer | string | null;
  value: Buffer | string | null;
  headers?: Record<string, string | Buffer> | RecordHeader[];
  /** Pin the partition instead of using the partitioner. */
  partition?: number;
  /** Create time in ms; default now. */
  timestamp?: number;
}

export interface RecordMetadata {
  topic: string;
  partition: number;
  /** -1 when acks=0 (the broker does not say). */
  offset: number;
}

interface PendingRecord {
  input: RecordInput;
  resolve: (m: RecordMetadata) => void;
  reject: (e: Error) => void;
}

interface Batch {
  topic: string;
  partition: number;
  records: PendingRecord[];
  bytes: number;
  /** Set when first sent: the encoded batch (sequence included) reused by every retry. */
  encoded: Buffer | null;
  deadlineMs: number;
  attempts: number;
  done: Promise<void>;
  finish: () => void;
}

interface PartitionQueue {
  topic: string;
  partition: number;
  open: Batch | null;
  lingerTimer: NodeJS.Timeout | null;
  ready: Batch[];
  inFlight: boolean;
  backoffUntilMs: number;
  nextSequence: number;
}

/** Bytes a batch adds on top of its records (the v2 header). */
const BATCH_OVERHEAD_BYTES = 61;
/** Upper bound of a record's own varint framing (length, attributes, deltas, lengths). */
const RECORD_OVERHEAD_BYTES = 21;
const INT32_MAX = 0x7fffffff;

function toBuffer(v: Buffer | string | null | undefined): Buffer | null {
  if (v === null || v === undefined) return null;
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
}

function normalizeHeaders(h: ProducerRecord['headers']): RecordHeader[] {
  if (!h) return [];
  if (Array.isArray(h)) return h;
  return Object.entries(h).map(([key, value]) => ({ key, value: toBuffer(value) }));
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

export class Producer {
  readonly cluster: Cluster;
  readonly acks: 0 | 1 | -1;
  readonly idempotent: boolean;
  readonly lingerMs: number;
  readonly batchBytesMax: number;
  readonly compression: Compression;
  private readonly retryBackoffMs: number;
  private readonly deliveryTimeoutMs: number;
  private readonly allowAutoTopicCreation: boolean;
  private readonly queues = new Map<string, PartitionQueue>();
  private readonly sticky = new Map<string, number>();
  private readonly inFlightBatches = new Set<Batch>();
  private readonly refreshing = new Map<string, Promise<unknown>>();
  private appendChain: Promise<unknown> = Promise.resolve();
  private producerIdPromise: Promise<{ producerId: number; producerEpoch: number }> | null = null;
  private producerId = -1;
  private producerEpoch = -1;
  private drainScheduled = false;
  private drainTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(options: ProducerOptions) {
    this.cluster = new Cluster(options);
    const acks = options.acks ?? -1;
    if (acks !== 0 && acks !== 1 && acks !== -1 && acks !== 'all')
      throw new InvalidArgumentError(`acks must be 0, 1 or all, got ${String(acks)}`);
    this.acks = acks === 'all' ? -1 : acks;
    if (options.idempotent && this.acks !== -1)
      throw new InvalidArgumentError('an idempotent producer needs acks=all (-1)');
    this.idempotent = options.idempotent ?? this.acks === -1;
    this.lingerMs = options.lingerMs ?? 5;
    this.batchBytesMax = options.batchBytesMax ?? 16384;
    this.compression = parseCompression(options.compression ?? 'none');
    this.retryBackoffMs = options.retryBackoffMs ?? 100;
    this.deliveryTimeoutMs = options.deliveryTimeoutMs ?? 120_000;
    this.allowAutoTopicCreation = options.allowAutoTopicCreation ?? true;
  }

  /** Connects to the cluster (and gets a producer id when idempotent); send() does this lazily. */
  async connect(): Promise<void> {
    await this.cluster.refreshMetadata([]);
    if (this.idempotent) await this.ensureProducerId();
  }

  private ensureProducerId(): Promise<{ producerId: number; producerEpoch: number }> {
    this.producerIdPromise ??= (async () => {
      const conn = await this.cluster.anyConnection();
      const res = await conn.send(ApiKey.InitProducerId, {
        transactionalId: null,
        transactionTimeoutMs: INT32_MAX,
        producerId: -1,
        producerEpoch: -1,
      });
      if (res.errorCode !== 0) throw kafkaError(res.errorCode, 'InitProducerId');
      this.producerId = res.producerId;
      this.producerEpoch = res.producerEpoch;
      return { producerId: res.producerId, producerEpoch: res.producerEpoch };
    })();
    this.producerIdPromise.catch(() => {
      this.producerIdPromise = null;
    });
    return this.producerIdPromise;
  }

  /**
   * Queues records for a topic; resolves with each record's partition and offset once the
   * broker acknowledged them (per `acks`).
   */
  send(topic: string, records: ProducerRecord[]): Promise<RecordMetadata[]> {
    if (this.closed) return Promise.reject(new SluiceClientError('CLIENT_CLOSED', 'the producer was closed'));
    const appended = this.appendChain.then(() => this.append(topic, records));
    this.appendChain = appended.catch(() => undefined);
    return appended.then((promises) => Promise.all(promises));
  }

  private async append(topic: string, records: ProducerRecord[]): Promise<Promise<RecordMetadata>[]> {
    if (this.idempotent) await this.ensureProducerId();
    let meta = this.cluster.topics.get(topic);
    if (!meta)
      meta = await this.cluster.topic(topic, { allowAutoTopicCreation: this.allowAutoTopicCreation });
    const n = meta.partitions.length;
    const now = Date.now();
    const out: Promise<RecordMetadata>[] = [];
    for (const r of records) {
      const key = toBuffer(r.key);
      const value = toBuffer(r.value);
      const headers = normalizeHeaders(r.headers);
      let size = RECORD_OVERHEAD_BYTES + (key?.length ?? 0) + (value?.length ?? 0);
      for (const h of headers) size += h.key.length + (h.value?.length ?? 0) + 10;
      let partition: number;
      if (r.partition !== undefined) {
        if (!Number.isInteger(r.partition) || r.partition < 0 || r.partition >= n) {
          out.push(
            Promise.reject(
              kafkaError(
                ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                `partition ${r.partition} of topic "${topic}" (it has ${n})`,
              ),
            ),
          );
          continue;
        }
        partition = r.partition;
      } else if (key !== null) {
        partition = partitionForKey(key, n);
      } else {
        partition = this.stickyPartition(topic, n);
        // KIP-480: a record that would start a new batch moves the sticky partition first.
        const q = this.queue(topic, partition);
        if (q.open && q.open.records.length > 0 && q.open.bytes + size > this.batchBytesMax) {
          this.closeBatch(q);
          partition = this.stickyPartition(topic, n);
        }
      }
      const q = this.queue(topic, partition);
      if (q.open && q.open.records.length > 0 && q.open.bytes + size > this.batchBytesMax) this.closeBatch(q);
      const batch = q.open ?? this.openBatch(q);
      out.push(
        new Promise<RecordMetadata>((resolve, reject) => {
          batch.records.push({
            input: { key, value, headers, timestamp: r.timestamp ?? now },
            resolve,
            reject,
          });
        }),
      );
      batch.bytes += size;
      if (batch.bytes >= this.batchBytesMax) this.closeBatch(q);
    }
    return out;
  }

  private stickyPartition(topic: string, n: number): number {
    const p = this.sticky.get(topic);
    if (p !== undefined && p < n) return p;
    const next = this.pickSticky(topic, n, -1);
    this.sticky.set(topic, next);
    return next;
  }

  /** A random partition with a leader, different from `previous` when there is a choice. */
  private pickSticky(topic: string, n: number, previous: number): number {
    const meta = this.cluster.topics.get(topic);
    let candidates = meta ? meta.partitions.filter((p) => p.leader >= 0).map((p) => p.partition) : [];
    if (candidates.length === 0) candidates = Array.from({ length: n }, (_, i) => i);
    if (candidates.length > 1) candidates = candidates.filter((p) => p !== previous);
    return candidates[Math.floor(Math.random() * candidates.length)] ?? 0;
  }

  private queue(topic: string, partition: number): PartitionQueue {
    const k = `${topic}\u0000${partition}`;
    let q = this.queues.get(k);
    if (!q) {
      q = {
        topic,
        partition,
        open: null,
        lingerTimer: null,
        ready: [],
        inFlight: false,
        backoffUntilMs: 0,
        nextSequence: 0,
      };
      this.queues.set(k, q);
    }
    return q;
  }

  private openBatch(q: PartitionQueue): Batch {
    const d = deferred();
    const b: Batch = {
      topic: q.topic,
      partition: q.partition,
      records: [],
      bytes: BATCH_OVERHEAD_BYTES,
      encoded: null,
      deadlineMs: 0,
      attempts: 0,
      done: d.promise,
      finish: d.resolve,
    };
    q.open = b;
    this.inFlightBatches.add(b);
    q.lingerTimer = setTimeout(() => {
      q.lingerTimer = null;
      if (q.open === b) this.closeBatch(q);
    }, this.lingerMs);
    return b;
  }

  private closeBatch(q: PartitionQueue): void {
    const b = q.open;
    if (!b) return;
    q.open = null;
    if (q.lingerTimer) {
      clearTimeout(q.lingerTimer);
      q.lingerTimer = null;
    }
    b.deadlineMs = Date.now() + this.deliveryTimeoutMs;
    q.ready.push(b);
    if (this.sticky.get(q.topic) === q.partition) {
      const n = this.cluster.topics.get(q.topic)?.partitions.length ?? q.partition + 1;
      this.sticky.set(q.topic, this.pickSticky(q.topic, n, q.partition));
    }
    this.scheduleDrain();
  }

  private scheduleDrain(delayMs = 0): void {
    if (delayMs > 0) {
      if (this.drainTimer) return;
      this.drainTimer = setTimeout(() => {
        this.drainTimer = null;
        this.drain();
      }, delayMs);
      return;
    }
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    setImmediate(() => {
      this.drainScheduled = false;
      this.drain();
    });
  }

  /** Sends the first ready batch of every idle partition, one Produce request per leader. */
  private drain(): void {
    const now = Date.now();
    const byLeader = new Map<number, { q: PartitionQueue; b: Batch }[]>();
    let waitMs = Number.POSITIVE_INFINITY;
    for (const q of this.queues.values()) {
      if (q.inFlight || q.ready.length === 0) continue;
      if (q.backoffUntilMs > now) {
        waitMs = Math.min(waitMs, q.backoffUntilMs - now);
        continue;
      }
      const meta = this.cluster.topics.get(q.topic);
      const leader = meta?.partitions.find((p) => p.partition === q.partition)?.leader ?? -1;
      if (leader < 0) {
        this.refreshTopic(q.topic);
        continue;
      }
      const b = q.ready.shift()!;
      q.inFlight = true;
      const list = byLeader.get(leader) ?? [];
      list.push({ q, b });
      byLeader.set(leader, list);
    }
    for (const [leader, items] of byLeader) void this.sendToLeader(leader, items);
    if (waitMs !== Number.POSITIVE_INFINITY) this.scheduleDrain(Math.max(1, waitMs));
  }

  private refreshTopic(topic: string): void {
    if (this.refreshing.has(topic)) return;
    const p = this.cluster
      .topic(topic, { refresh: true, allowAutoTopicCreation: this.allowAutoTopicCreation })
      .catch(async () => sleep(this.retryBackoffMs))
      .finally(() => {
        this.refreshing.delete(topic);
        this.failExpired(topic);
        this.scheduleDrain();
      });
    this.refreshing.set(topic, p);
  }

  /** Rejects ready batches of a topic whose delivery deadline passed while it had no leader. */
  private failExpired(topic: string): void {
    const now = Date.now();
    for (const q of this.queues.values()) {
      if (q.topic !== topic) continue;
      while (q.ready.length > 0 && q.ready[0]!.deadlineMs < now) {
        this.fail(
          q.ready.shift()!,
          kafkaError(
            ErrorCode.LEADER_NOT_AVAILABLE,
            `partition ${q.partition} of topic "${topic}" (gave up after ${this.deliveryTimeoutMs} ms)`,
          ),
        );
      }
    }
  }

  private async encode(q: PartitionQueue, b: Batch): Promise<Buffer> {
    if (b.encoded) return b.encoded;
    let baseSequence = -1;
    if (this.idempotent) {
      baseSequence = q.nextSequence;
      const next = q.nextSequence + b.records.length;
      q.nextSequence = next > INT32_MAX ? next - INT32_MAX - 1 : next;
    }
    b.encoded = await encodeRecordBatch({
      records: b.records.map((r) => r.input),
      compression: this.compression,
      producerId: this.idempotent ? this.producerId : -1,
      producerEpoch: this.idempotent ? this.producerEpoch : -1,
      baseSequence,
    });
    return b.encoded;
  }

  private async sendToLeader(leader: number, items: { q: PartitionQueue; b: Batch }[]): Promise<void> {
    try {
      const byTopic = new Map<string, { index: number; records: Buffer }[]>();
      for (const { q, b } of items) {
        const records = await this.encode(q, b);
        const list = byTopic.get(q.topic) ?? [];
        list.push({ index: q.partition, records });
        byTopic.set(q.topic, list);
      }
      const conn: Connection = await this.cluster.connectionTo(leader);
      const request = {
        transactionalId: null,
        acks: this.acks,
        timeoutMs: conn.requestTimeoutMs,
        topicData: [...byTopic].map(([name, partitionData]) => ({ name, partitionData })),
      };
      if (this.acks === 0) {
        await conn.send(ApiKey.Produce, request, { expectResponse: false });
        for (const { b } of items) this.succeed(b, -1);
        return;
      }
      const res = await conn.send(ApiKey.Produce, request);
      for (const { q, b } of items) {
        const pr = res.responses
          .find((t) => t.name === q.topic)
          ?.partitionResponses.find((p) => p.index === q.partition);
        if (!pr) {
          this.retryOrFail(
            q,
            b,
            new KafkaResponseError(
              ErrorCode.UNKNOWN_SERVER_ERROR,
              `no produce response for partition ${q.partition} of topic "${q.topic}"`,
              { canRetry: true },
            ),
          );
          continue;
        }
        if (pr.errorCode === ErrorCode.NONE) this.succeed(b, pr.baseOffset);
        else if (pr.errorCode === ErrorCode.DUPLICATE_SEQUENCE_NUMBER)
          this.succeed(b, -1); // already written earlier
        else
          this.retryOrFail(
            q,
            b,
            kafkaError(pr.errorCode, `partition ${q.partition} of topic "${q.topic}"`, pr.errorMessage),
          );
      }
    } catch (err) {
      for (const { q, b } of items) this.retryOrFail(q, b, err);
    } finally {
      for (const { q } of items) q.inFlight = false;
      this.scheduleDrain();
    }
  }

  private succeed(b: Batch, baseOffset: number): void {
    b.records.forEach((r, i) =>
      r.resolve({ topic: b.topic, partition: b.partition, offset: baseOffset < 0 ? -1 : baseOffset + i }),
    );
    this.inFlightBatches.delete(b);
    b.finish();
  }

  private fail(b: Batch, err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    for (const r of b.records) r.reject(e);
    this.inFlightBatches.delete(b);
    b.finish();
  }

  private retryOrFail(q: PartitionQueue, b: Batch, err: unknown): void {
    const canRetry = err instanceof SluiceClientError && err.canRetry;
    if (!canRetry || Date.now() >= b.deadlineMs || (this.closed && b.attempts > 3)) {
      this.fail(b, err);
      return;
    }
    b.attempts++;
    q.ready.unshift(b);
    q.backoffUntilMs = Date.now() + this.retryBackoffMs;
    if (!(err instanceof KafkaResponseError) || needsMetadataRefresh(err.errorCode)) {
      this.cluster.invalidate(q.topic);
      this.refreshTopic(q.topic);
    }
  }

  /** Sends every queued record now and waits until all of them are acknowledged or failed. */
  async flush(): Promise<void> {
    await this.appendChain;
    for (;;) {
      for (const q of this.queues.values()) this.closeBatch(q);
      if (this.inFlightBatches.size === 0) return;
      await Promise.all([...this.inFlightBatches].map((b) => b.done));
      await this.appendChain;
    }
  }

  /** Flushes, then closes connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.flush();
    } finally {
      this.closed = true;
      if (this.drainTimer) clearTimeout(this.drainTimer);
      await this.cluster.close();
    }
  }
}
