/**
 * ListOffsets (key 2), v0-10. Special timestamps: -1 latest (the high watermark, or the last
 * stable offset for read_committed), -2 earliest (log start offset), -3 the record with the
 * largest timestamp (KIP-734, v7+), -4 earliest local (v8+; equals earliest here, no tiering),
 * -5 latest tiered (v9+; -1 here, no tiering). Any other timestamp finds the first record whose
 * timestamp is at or after it: the time index finds the batch, then the batch is decoded to find
 * the exact record.
 */

import type { Encodable } from '../../protocol/codec-support.js';
import { ErrorCode } from '../../protocol/errors.js';
import { ApiKey } from '../../protocol/generated/index.js';
import type { ListOffsetsPartitionResponse } from '../../protocol/generated/list-offsets-response.js';
import { DecodeError } from '../../protocol/primitives.js';
import { decodeRecordBatch } from '../../protocol/records/record-batch.js';
import type { Broker } from '../broker.js';
import { defineHandler } from '../dispatcher.js';
import type { Partition } from '../partition.js';

export const LATEST_TIMESTAMP = -1;
export const EARLIEST_TIMESTAMP = -2;
export const MAX_TIMESTAMP = -3;
export const EARLIEST_LOCAL_TIMESTAMP = -4;
export const LATEST_TIERED_TIMESTAMP = -5;

/** The first offset whose record timestamp is >= ts, exact to the record. */
export async function offsetForTimestamp(
  p: Partition,
  ts: number,
): Promise<{ offset: number; timestamp: number } | null> {
  const found = await p.log.offsetForTimestamp(ts);
  if (!found) return null;
  const read = await p.log.read(Math.max(found.offset, p.logStartOffset), 1, {
    minOneBatch: true,
    maxOffset: p.highWatermark,
  });
  if (read.records.length === 0) return found;
  const batch = await decodeRecordBatch(read.records, 0);
  for (const r of batch.records) {
    if (r.offset >= p.logStartOffset && r.timestamp >= ts)
      return { offset: r.offset, timestamp: r.timestamp };
  }
  return found;
}

export const listOffsetsHandler = defineHandler<Broker, ApiKey.ListOffsets>(
  ApiKey.ListOffsets,
  { min: 0, max: 10 },
  async (ctx, req) => {
    const broker = ctx.broker;
    const topics = await Promise.all(
      req.topics.map(async (t) => ({
        name: t.name,
        partitions: await Promise.all(
          t.partitions.map(async (rp): Promise<Encodable<ListOffsetsPartitionResponse>> => {
            const base = {
              partitionIndex: rp.partitionIndex,
              timestamp: -1,
              offset: -1,
              leaderEpoch: -1,
              oldStyleOffsets: [] as number[],
            };
            const p = broker.topics.partition(t.name, rp.partitionIndex);
            if (!p) return { ...base, errorCode: broker.partitionMissingError(t.name, rp.partitionIndex) };
            if (!p.isLeader) return { ...base, errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER };
            let offset = -1;
            let timestamp = -1;
            switch (rp.timestamp) {
              case LATEST_TIMESTAMP:
                offset = p.highWatermark;
                break;
              case EARLIEST_TIMESTAMP:
              case EARLIEST_LOCAL_TIMESTAMP:
                offset = p.logStartOffset;
                break;
              case LATEST_TIERED_TIMESTAMP:
                offset = -1;
                break;
              case MAX_TIMESTAMP: {
                if (p.logEndOffset > p.logStartOffset) {
                  const m = p.log.maxTimestampOffset();
                  offset = m.offset;
                  timestamp = m.timestamp;
                }
                break;
              }
              default: {
                if (rp.timestamp < 0) return { ...base, errorCode: ErrorCode.INVALID_REQUEST };
                let f: { offset: number; timestamp: number } | null;
                try {
                  f = await offsetForTimestamp(p, rp.timestamp);
                } catch (err) {
                  // The stored batch does not decode (corrupt, or a compression bomb over the
                  // decompression cap): an error for this partition, not a closed connection.
                  if (err instanceof DecodeError) return { ...base, errorCode: ErrorCode.CORRUPT_MESSAGE };
                  throw err;
                }
                if (f) {
                  offset = f.offset;
                  timestamp = f.timestamp;
                }
              }
            }
            const leaderEpoch = offset >= 0 ? p.leaderEpoch : -1;
            if (ctx.apiVersion === 0) {
              return {
                ...base,
                errorCode: 0,
                oldStyleOffsets: offset >= 0 && rp.maxNumOffsets > 0 ? [offset] : [],
              };
            }
            return { ...base, errorCode: 0, offset, timestamp, leaderEpoch };
          }),
        ),
      })),
    );
    return { throttleTimeMs: 0, topics };
  },
);
