/**
 * The consumer of explicitly assigned partitions (no consumer groups yet). It owns each
 * partition's position (the next offset to return) and turns Fetch responses into records.
 *
 * Invariants:
 * - Records of a partition are returned in offset order, each exactly once, starting at the
 *   assigned offset: records below the position inside a returned batch (the broker answers
 *   with whole batches) are skipped, and control batches (transaction markers) are skipped but
 *   still advance the position.
 * - OFFSET_OUT_OF_RANGE resets the position per autoOffsetReset ('earliest' | 'latest'), or
 *   throws with 'none'. Leader errors refresh metadata and the next poll retries.
 * - Fetches are plain full fetches (sessionless: sessionId 0, epoch -1), one per leader, long
 *   polling with maxWaitMs/minBytes. This is the only fetch path of the client: the group
 *   consumer (group-consumer.ts) drives one of these with the partitions its group assigns.
 * - With nothing assigned, poll() waits maxWaitMs and returns no records (it never spins).
 */

import { ErrorCode } from '../protocol/errors.js';
import type { FetchResponse } from '../protocol/generated/fetch-response.js';
import { ApiKey } from '../protocol/generated/index.js';
import { type RecordHeader, decodeRecordBatches } from '../protocol/records/record-batch.js';
import { EARLIEST_OFFSET, LATEST_OFFSET } from './admin.js';
import { Cluster, type ClusterOptions, sleep } from './cluster.js';
import type { Connection } from './connection.js';
import { InvalidArgumentError, SluiceClientError, kafkaError, needsMetadataRefresh } from './errors.js';

export type OffsetReset = 'earliest' | 'latest' | 'none';

export interface ConsumerOptions extends ClusterOptions {
  /** Longest time the broker holds a fetch waiting for minBytes. Default 500. */
  maxWaitMs?: number;
  /** Bytes a fetch waits for. Default 1. */
  minBytes?: number;
  /** Response size limit across partitions. Default 50 MiB. */
  fetchBytesMax?: number;
  /** Per-partition size limit. Default 1 MiB. */
  partitionFetchBytesMax?: number;
  /** What to do when the position is not in the log. Default 'latest'. */
  autoOffsetReset?: OffsetReset;
}

export interface TopicPartitionOffset {
  topic: string;
  partition: number;
  /** A number, 'earliest' or 'latest' (default 'latest'). */
  offset?: number | 'earliest' | 'latest';
}

export interface ConsumerRecord {
  topic: string;
  partition: number;
  offset: number;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
}

interface Assigned {
  topic: string;
  partition: number;
  position: number;
  highWatermark: number;
}

const key = (topic: string, partition: number) => `${topic}\u0000${partition}`;

export class Consumer {
  readonly cluster: Cluster;
  private readonly maxWaitMs: number;
  private readonly minBytes: number;
  private readonly fetchBytesMax: number;
  private readonly partitionFetchBytesMax: number;
  private readonly autoOffsetReset: OffsetReset;
  private readonly assigned = new Map<string, Assigned>();
  private closed = false;

  constructor(options: ConsumerOptions) {
    this.cluster = new Cluster(options);
    this.maxWaitMs = options.maxWaitMs ?? 500;
    this.minBytes = options.minBytes ?? 1;
    this.fetchBytesMax = options.fetchBytesMax ?? 50 * 1024 * 1024;
    this.partitionFetchBytesMax = options.partitionFetchBytesMax ?? 1024 * 1024;
    this.autoOffsetReset = options.autoOffsetReset ?? 'latest';
  }

  async connect(): Promise<void> {
    await this.cluster.refreshMetadata([]);
  }

  /** Replaces the assignment; 'earliest'/'latest' are resolved to offsets now. */
  async assign(partitions: TopicPartitionOffset[]): Promise<void> {
    this.assigned.clear();
    for (const tp of partitions) {
      const meta = await this.cluster.topic(tp.topic);
      if (!meta.partitions.some((p) => p.partition === tp.partition)) {
        throw kafkaError(
          ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
          `partition ${tp.partition} of topic "${tp.topic}" (it has ${meta.partitions.length})`,
        );
      }
      const spec = tp.offset ?? 'latest';
      let position: number;
      if (typeof spec === 'number') {
        if (!Number.isInteger(spec) || spec < 0)
          throw new InvalidArgumentError(`offset must be a non-negative integer, got ${spec}`);
        position = spec;
      } else {
        position = await this.offsetAt(
          tp.topic,
          tp.partition,
          spec === 'earliest' ? EARLIEST_OFFSET : LATEST_OFFSET,
        );
      }
      this.assigned.set(key(tp.topic, tp.partition), {
        topic: tp.topic,
        partition: tp.partition,
        position,
        highWatermark: -1,
      });
    }
  }

  assignment(): { topic: string; partition: number }[] {
    return [...this.assigned.values()].map((a) => ({ topic: a.topic, partition: a.partition }));
  }

  /** Every assigned partition with its position (the next offset poll() returns). */
  positions(): { topic: string; partition: number; offset: number }[] {
    return [...this.assigned.values()].map((a) => ({
      topic: a.topic,
      partition: a.partition,
      offset: a.position,
    }));
  }

  /** The next offset poll() will return for a partition. */
  position(topic: string, partition: number): number {
    const a = this.assigned.get(key(topic, partition));
    if (!a) throw new InvalidArgumentError(`partition ${partition} of topic "${topic}" is not assigned`);
    return a.position;
  }

  /** The high watermark seen in the last fetch of a partition (-1 before the first). */
  highWatermark(topic: string, partition: number): number {
    return this.assigned.get(key(topic, partition))?.highWatermark ?? -1;
  }

  seek(topic: string, partition: number, offset: number): void {
    const a = this.assigned.get(key(topic, partition));
    if (!a) throw new InvalidArgumentError(`partition ${partition} of topic "${topic}" is not assigned`);
    a.position = offset;
  }

  private async offsetAt(topic: string, partition: number, timestamp: number): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      const leader = await this.cluster.leaderOf(topic, partition);
      const conn = await this.cluster.connectionTo(leader);
      const res = await conn.send(ApiKey.ListOffsets, {
        replicaId: -1,
        isolationLevel: 0,
        timeoutMs: conn.requestTimeoutMs,
        topics: [
          {
            name: topic,
            partitions: [{ partitionIndex: partition, currentLeaderEpoch: -1, timestamp, maxNumOffsets: 1 }],
          },
        ],
      });
      const p = res.topics[0]?.partitions[0];
      const code = p?.errorCode ?? ErrorCode.UNKNOWN_SERVER_ERROR;
      if (p && code === 0)
        return conn.versionFor(ApiKey.ListOffsets) === 0 ? (p.oldStyleOffsets[0] ?? 0) : p.offset;
      if (attempt < 3 && needsMetadataRefresh(code)) {
        this.cluster.invalidate(topic);
        await sleep(100);
        continue;
      }
      throw kafkaError(code, `partition ${partition} of topic "${topic}"`);
    }
  }

  /**
   * One round of fetches (one per leader, in parallel). Returns the records that arrived, in
   * offset order per partition; an empty array after maxWaitMs with nothing new.
   */
  async poll(): Promise<ConsumerRecord[]> {
    if (this.closed) return [];
    if (this.assigned.size === 0) {
      await sleep(this.maxWaitMs);
      return [];
    }
    const byLeader = new Map<number, Assigned[]>();
    for (const a of this.assigned.values()) {
      let leader: number;
      try {
        leader = await this.cluster.leaderOf(a.topic, a.partition);
      } catch (err) {
        if (err instanceof SluiceClientError && err.canRetry) continue;
        throw err;
      }
      const list = byLeader.get(leader) ?? [];
      list.push(a);
      byLeader.set(leader, list);
    }
    if (byLeader.size === 0) {
      await sleep(100);
      return [];
    }
    const results = await Promise.all([...byLeader].map(([leader, parts]) => this.fetchFrom(leader, parts)));
    return results.flat();
  }

  private async fetchFrom(leader: number, parts: Assigned[]): Promise<ConsumerRecord[]> {
    let conn: Connection;
    try {
      conn = await this.cluster.connectionTo(leader);
    } catch (err) {
      if (this.closed) return [];
      throw err;
    }
    const version = conn.versionFor(ApiKey.Fetch);
    const useIds = version >= 13;
    const topics = new Map<string, Assigned[]>();
    for (const a of parts) {
      const list = topics.get(a.topic) ?? [];
      list.push(a);
      topics.set(a.topic, list);
    }
    const idToName = new Map<string, string>();
    const request = {
      clusterId: null,
      replicaId: -1,
      replicaState: { replicaId: -1, replicaEpoch: -1 },
      maxWaitMs: this.maxWaitMs,
      minBytes: this.minBytes,
      maxBytes: this.fetchBytesMax,
      isolationLevel: 0,
      sessionId: 0,
      sessionEpoch: -1,
      forgottenTopicsData: [],
      rackId: '',
      topics: [...topics].map(([topic, list]) => {
        const topicId = this.cluster.topics.get(topic)?.topicId ?? '';
        if (useIds) idToName.set(topicId, topic);
        return {
          topic,
          topicId,
          partitions: list.map((a) => ({
            partition: a.partition,
            currentLeaderEpoch: -1,
            fetchOffset: a.position,
            lastFetchedEpoch: -1,
            logStartOffset: -1,
            partitionMaxBytes: this.partitionFetchBytesMax,
          })),
        };
      }),
    };
    let res: FetchResponse;
    try {
      res = await conn.send(ApiKey.Fetch, request, { timeoutMs: conn.requestTimeoutMs + this.maxWaitMs });
    } catch (err) {
      if (this.closed) return [];
      if (err instanceof SluiceClientError && err.canRetry) {
        for (const t of topics.keys()) this.cluster.invalidate(t);
        await sleep(100);
        return [];
      }
      throw err;
    }
    if (res.errorCode !== 0) {
      if (needsMetadataRefresh(res.errorCode) || res.errorCode === ErrorCode.FETCH_SESSION_ID_NOT_FOUND)
        return [];
      throw kafkaError(res.errorCode, 'fetch');
    }
    const out: ConsumerRecord[] = [];
    for (const t of res.responses) {
      const topic = useIds ? (idToName.get(t.topicId) ?? t.topic) : t.topic;
      for (const p of t.partitions) {
        const a = this.assigned.get(key(topic, p.partitionIndex));
        if (!a) continue;
        if (p.errorCode === ErrorCode.OFFSET_OUT_OF_RANGE) {
          await this.resetOffset(a);
          continue;
        }
        if (p.errorCode !== 0) {
          if (needsMetadataRefresh(p.errorCode)) {
            this.cluster.invalidate(topic);
            continue;
          }
          throw kafkaError(p.errorCode, `partition ${p.partitionIndex} of topic "${topic}"`);
        }
        a.highWatermark = p.highWatermark;
        if (!p.records || p.records.length === 0) continue;
        const batches = await decodeRecordBatches(p.records);
        for (const b of batches) {
          const next = b.baseOffset + b.lastOffsetDelta + 1;
          if (next <= a.position) continue;
          if (!b.isControl) {
            for (const r of b.records) {
              if (r.offset < a.position) continue;
              out.push({
                topic,
                partition: a.partition,
                offset: r.offset,
                timestamp: r.timestamp,
                key: r.key,
                value: r.value,
                headers: r.headers,
              });
            }
          }
          a.position = next;
        }
      }
    }
    return out;
  }

  private async resetOffset(a: Assigned): Promise<void> {
    if (this.autoOffsetReset === 'none') {
      throw kafkaError(
        ErrorCode.OFFSET_OUT_OF_RANGE,
        `offset ${a.position} of partition ${a.partition} of topic "${a.topic}"`,
      );
    }
    a.position = await this.offsetAt(
      a.topic,
      a.partition,
      this.autoOffsetReset === 'earliest' ? EARLIEST_OFFSET : LATEST_OFFSET,
    );
  }

  /** Yields records until close() is called. */
  async *[Symbol.asyncIterator](): AsyncGenerator<ConsumerRecord> {
    while (!this.closed) {
      const records = await this.poll();
      for (const r of records) {
        if (this.closed) return;
        yield r;
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.cluster.close();
  }
}
