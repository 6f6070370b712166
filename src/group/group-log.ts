/**
 * Where the group coordinator keeps its state durably: a partitioned log of key/value records
 * (`__consumer_offsets`). The coordinator appends records and waits until they are durable
 * before it answers; on load it replays a partition's records in order (last value per key
 * wins, null is a tombstone).
 *
 * - InMemoryGroupLog: for tests and simulations (can be shared by two coordinators to model a
 *   restart, and can be told to fail appends).
 * - TopicGroupLog: the broker's internal topic `__consumer_offsets`, created on first use with
 *   offsets.topic.num.partitions partitions, cleanup.policy=compact and segment.bytes=100 MiB;
 *   records are written as v2 record batches and fsynced before append() resolves. In a
 *   replicated cluster the coordinator of a group is the leader of its partition, and this is
 *   the seam where "append" becomes "append and wait for the high watermark".
 */

import { decodeRecordBatches, encodeRecordBatchSync } from '../protocol/records/record-batch.js';
import type { GroupLogRecord } from './records.js';

export type { GroupLogRecord };

export const CONSUMER_OFFSETS_TOPIC = '__consumer_offsets';

export interface GroupLog {
  /** Number of partitions (fixed once the log exists; an existing topic's count wins). */
  partitionCount(): number;
  /** Appends records to one partition; resolves once they are durable. */
  append(partition: number, records: GroupLogRecord[]): Promise<void>;
  /** Calls onRecord for every record of the partition, oldest first. */
  replay(partition: number, onRecord: (r: GroupLogRecord) => void): Promise<void>;
}

export class InMemoryGroupLog implements GroupLog {
  readonly partitions = new Map<number, GroupLogRecord[]>();
  /** When set, append() rejects with this error (and writes nothing). */
  failAppends: Error | null = null;
  appends = 0;

  constructor(private readonly count = 50) {}

  partitionCount(): number {
    return this.count;
  }

  async append(partition: number, records: GroupLogRecord[]): Promise<void> {
    if (this.failAppends) throw this.failAppends;
    this.appends++;
    let list = this.partitions.get(partition);
    if (!list) {
      list = [];
      this.partitions.set(partition, list);
    }
    for (const r of records)
      list.push({ key: Buffer.from(r.key), value: r.value === null ? null : Buffer.from(r.value) });
  }

  async replay(partition: number, onRecord: (r: GroupLogRecord) => void): Promise<void> {
    for (const r of this.partitions.get(partition) ?? []) onRecord(r);
  }

  /** Every record of every partition (for assertions). */
  all(): GroupLogRecord[] {
    return [...this.partitions.values()].flat();
  }
}

/** What TopicGroupLog needs of a partition (satisfied by the broker's Partition). */
export interface OffsetsPartition {
  appendBatches(records: Buffer, acks: number): Promise<unknown>;
  readonly log: {
    readonly logStartOffset: number;
    readonly logEndOffset: number;
    read(
      offset: number,
      maxBytes: number,
      opts?: { minOneBatch?: boolean; maxOffset?: number },
    ): Promise<{ records: Buffer; nextOffset: number }>;
  };
}

/** What TopicGroupLog needs of the topic registry (satisfied by the broker's TopicManager). */
export interface OffsetsTopicHost {
  /** In a cluster a broker holds only some partitions: the others are undefined. */
  get(name: string): { partitions: (OffsetsPartition | undefined)[] } | undefined;
  create(
    name: string,
    partitions: number,
    configs: [string, string][],
  ): Promise<{ partitions: (OffsetsPartition | undefined)[] }>;
}

export const CONSUMER_OFFSETS_CONFIGS: [string, string][] = [
  ['cleanup.policy', 'compact'],
  ['segment.bytes', '104857600'],
];

const REPLAY_CHUNK_BYTES = 1 << 20;

export class TopicGroupLog implements GroupLog {
  private creating: Promise<{ partitions: (OffsetsPartition | undefined)[] }> | null = null;
  /** Appends to one partition are chained so they reach the log in call order. */
  private chains = new Map<number, Promise<void>>();

  constructor(
    private readonly topics: OffsetsTopicHost,
    private readonly configuredPartitions: number,
    private readonly nowMs: () => number = Date.now,
  ) {}

  partitionCount(): number {
    return this.topics.get(CONSUMER_OFFSETS_TOPIC)?.partitions.length ?? this.configuredPartitions;
  }

  /** Creates `__consumer_offsets` if it does not exist yet (safe to call concurrently). */
  async ensureTopic(): Promise<{ partitions: (OffsetsPartition | undefined)[] }> {
    const existing = this.topics.get(CONSUMER_OFFSETS_TOPIC);
    if (existing) return existing;
    if (!this.creating) {
      this.creating = this.topics
        .create(CONSUMER_OFFSETS_TOPIC, this.configuredPartitions, CONSUMER_OFFSETS_CONFIGS)
        .catch((err: unknown) => {
          this.creating = null;
          const again = this.topics.get(CONSUMER_OFFSETS_TOPIC);
          if (again) return again;
          throw err;
        });
    }
    return this.creating;
  }

  append(partition: number, records: GroupLogRecord[]): Promise<void> {
    const run = async () => {
      const topic = await this.ensureTopic();
      const p = topic.partitions[partition];
      if (!p) throw new Error(`${CONSUMER_OFFSETS_TOPIC} has no partition ${partition}`);
      const now = this.nowMs();
      const batch = encodeRecordBatchSync({
        records: records.map((r) => ({ key: r.key, value: r.value, timestamp: now })),
      });
      // acks=-1: the partition fsyncs (group commit) before resolving.
      await p.appendBatches(batch, -1);
    };
    const prev = this.chains.get(partition) ?? Promise.resolve();
    const next = prev.then(run, run);
    const tail = next.catch(() => {});
    this.chains.set(partition, tail);
    void tail.then(() => {
      if (this.chains.get(partition) === tail) this.chains.delete(partition);
    });
    return next;
  }

  async replay(partition: number, onRecord: (r: GroupLogRecord) => void): Promise<void> {
    const p = this.topics.get(CONSUMER_OFFSETS_TOPIC)?.partitions[partition];
    if (!p) return;
    let offset = p.log.logStartOffset;
    const end = p.log.logEndOffset;
    while (offset < end) {
      const read = await p.log.read(offset, REPLAY_CHUNK_BYTES, { minOneBatch: true, maxOffset: end });
      if (read.records.length === 0 || read.nextOffset <= offset) break;
      for (const batch of await decodeRecordBatches(read.records)) {
        if (batch.isControl) continue;
        for (const r of batch.records) {
          if (r.offset < offset || r.key === null) continue;
          onRecord({ key: r.key, value: r.value });
        }
      }
      offset = read.nextOffset;
    }
  }
}
