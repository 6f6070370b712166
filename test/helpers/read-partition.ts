/**
 * Reads a partition back for tests without consumer groups: sessionless Fetch (v12, topic names)
 * over a plain socket with the generated codec, decoding batches with decodeRecordBatches (CRC
 * checked, every codec). Also ListOffsets, raw Produce and topic creation helpers for tests that
 * drive the broker directly.
 */

import { ErrorCode, errorName } from '../../src/protocol/errors.js';
import { ApiKey } from '../../src/protocol/generated/index.js';
import {
  Compression,
  type RecordInput,
  decodeRecordBatches,
  encodeRecordBatch,
} from '../../src/protocol/records/index.js';
import { WireClient } from './wire-client.js';

export interface ReadRecord {
  offset: number;
  key: Buffer | null;
  value: Buffer | null;
  timestamp: number;
  headers: { key: string; value: Buffer | null }[];
  batchBaseOffset: number;
  compression: Compression;
  producerId: number;
  baseSequence: number;
}

export interface PartitionContents {
  records: ReadRecord[];
  /** Each batch's base offset, last offset and compression, in log order. */
  batches: {
    baseOffset: number;
    lastOffset: number;
    compression: Compression;
    producerId: number;
    baseSequence: number;
  }[];
  highWatermark: number;
  logStartOffset: number;
}

export const FETCH_VERSION = 12;

async function withClient<T>(
  port: number,
  fn: (c: WireClient) => Promise<T>,
  client?: WireClient,
): Promise<T> {
  if (client) return fn(client);
  const c = await WireClient.connect(port);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

/**
 * Every record of topic-partition from `fromOffset` (default: the log start offset) to the high
 * watermark, in offset order. Fails on any partition error.
 */
export async function readPartition(
  port: number,
  topic: string,
  partition: number,
  opts: { fromOffset?: number; client?: WireClient } = {},
): Promise<PartitionContents> {
  return withClient(
    port,
    async (c) => {
      let offset = opts.fromOffset ?? (await listOffset(port, topic, partition, -2, c));
      const out: PartitionContents = { records: [], batches: [], highWatermark: -1, logStartOffset: -1 };
      for (let round = 0; round < 100_000; round++) {
        const res = await c.request(ApiKey.Fetch, FETCH_VERSION, {
          replicaId: -1,
          maxWaitMs: 0,
          minBytes: 0,
          maxBytes: 4 << 20,
          isolationLevel: 0,
          sessionId: 0,
          sessionEpoch: -1,
          topics: [
            {
              topic,
              partitions: [
                {
                  partition,
                  fetchOffset: offset,
                  partitionMaxBytes: 1 << 20,
                  logStartOffset: -1,
                  currentLeaderEpoch: -1,
                  lastFetchedEpoch: -1,
                },
              ],
            },
          ],
          forgottenTopicsData: [],
          rackId: '',
        });
        if (res.errorCode !== 0) throw new Error(`fetch error ${errorName(res.errorCode)}`);
        const pd = res.responses[0]?.partitions[0];
        if (!pd) throw new Error(`fetch response names no partition: ${JSON.stringify(res)}`);
        if (pd.errorCode !== 0)
          throw new Error(`fetch ${topic}-${partition}@${offset}: ${errorName(pd.errorCode)}`);
        out.highWatermark = pd.highWatermark;
        out.logStartOffset = pd.logStartOffset;
        const batches = pd.records && pd.records.length > 0 ? await decodeRecordBatches(pd.records) : [];
        for (const b of batches) {
          out.batches.push({
            baseOffset: b.baseOffset,
            lastOffset: b.baseOffset + b.lastOffsetDelta,
            compression: b.compression,
            producerId: b.producerId,
            baseSequence: b.baseSequence,
          });
          for (const r of b.records) {
            if (r.offset < offset) continue; // a batch can start before the requested offset
            out.records.push({
              offset: r.offset,
              key: r.key,
              value: r.value,
              timestamp: r.timestamp,
              headers: r.headers,
              batchBaseOffset: b.baseOffset,
              compression: b.compression,
              producerId: b.producerId,
              baseSequence: b.baseSequence,
            });
          }
          offset = Math.max(offset, b.baseOffset + b.lastOffsetDelta + 1);
        }
        if (offset >= pd.highWatermark) return out;
        if (batches.length === 0)
          throw new Error(`fetch at ${offset} returned nothing below high watermark ${pd.highWatermark}`);
      }
      throw new Error('readPartition did not finish');
    },
    opts.client,
  );
}

/** ListOffsets v7 for one partition: -1 latest, -2 earliest, -3 max timestamp, or a timestamp. */
export async function listOffsetFull(
  port: number,
  topic: string,
  partition: number,
  timestamp: number,
  client?: WireClient,
): Promise<{ errorCode: number; offset: number; timestamp: number }> {
  return withClient(
    port,
    async (c) => {
      const res = await c.request(ApiKey.ListOffsets, 7, {
        replicaId: -1,
        isolationLevel: 0,
        topics: [
          { name: topic, partitions: [{ partitionIndex: partition, currentLeaderEpoch: -1, timestamp }] },
        ],
      });
      const p = res.topics[0]!.partitions[0]!;
      return { errorCode: p.errorCode, offset: p.offset, timestamp: p.timestamp };
    },
    client,
  );
}

export async function listOffset(
  port: number,
  topic: string,
  partition: number,
  timestamp: number,
  client?: WireClient,
): Promise<number> {
  const r = await listOffsetFull(port, topic, partition, timestamp, client);
  if (r.errorCode !== 0)
    throw new Error(`ListOffsets ${topic}-${partition} ts=${timestamp}: ${errorName(r.errorCode)}`);
  return r.offset;
}

export async function createTopic(
  port: number,
  name: string,
  numPartitions: number,
  configs: Record<string, string> = {},
  client?: WireClient,
  replicationFactor = 1,
): Promise<void> {
  await withClient(
    port,
    async (c) => {
      const res = await c.request(ApiKey.CreateTopics, 5, {
        topics: [
          {
            name,
            numPartitions,
            replicationFactor,
            assignments: [],
            configs: Object.entries(configs).map(([k, v]) => ({ name: k, value: v })),
          },
        ],
        timeoutMs: 10_000,
        validateOnly: false,
      });
      const t = res.topics[0]!;
      if (t.errorCode !== ErrorCode.NONE && t.errorCode !== ErrorCode.TOPIC_ALREADY_EXISTS) {
        throw new Error(`CreateTopics ${name}: ${errorName(t.errorCode)} ${t.errorMessage}`);
      }
    },
    client,
  );
}

export const PRODUCE_VERSION = 9;

/** Encodes one produce request body for a single partition and batch. */
export async function produceBody(
  topic: string,
  partition: number,
  records: RecordInput[],
  acks: number,
  compression = Compression.None,
) {
  const batch = await encodeRecordBatch({ records, compression });
  return {
    transactionalId: null,
    acks,
    timeoutMs: 10_000,
    topicData: [{ name: topic, partitionData: [{ index: partition, records: batch }] }],
  };
}

/** Produces one batch and returns the partition response (throws on a partition error). */
export async function produce(
  client: WireClient,
  topic: string,
  partition: number,
  records: RecordInput[],
  acks = -1,
): Promise<{ baseOffset: number }> {
  const res = await client.request(
    ApiKey.Produce,
    PRODUCE_VERSION,
    await produceBody(topic, partition, records, acks),
  );
  const p = res.responses[0]!.partitionResponses[0]!;
  if (p.errorCode !== 0)
    throw new Error(`produce ${topic}-${partition}: ${errorName(p.errorCode)} ${p.errorMessage ?? ''}`);
  return { baseOffset: p.baseOffset };
}
