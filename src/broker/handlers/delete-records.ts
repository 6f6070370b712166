/**
 * DeleteRecords (key 21), v0-2: moves a partition's log start offset forward. -1 means the high
 * watermark. An offset beyond the high watermark is OFFSET_OUT_OF_RANGE, as in Kafka.
 */

import { ErrorCode } from '../../protocol/errors.js';
import { ApiKey } from '../../protocol/generated/index.js';
import type { Broker } from '../broker.js';
import { defineHandler } from '../dispatcher.js';

export const deleteRecordsHandler = defineHandler<Broker, ApiKey.DeleteRecords>(
  ApiKey.DeleteRecords,
  { min: 0, max: 2 },
  async (ctx, req) => {
    const broker = ctx.broker;
    const topics = [];
    for (const t of req.topics) {
      const partitions = [];
      for (const rp of t.partitions) {
        const p = broker.topics.partition(t.name, rp.partitionIndex);
        if (!p) {
          partitions.push({
            partitionIndex: rp.partitionIndex,
            lowWatermark: -1,
            errorCode: broker.partitionMissingError(t.name, rp.partitionIndex),
          });
          continue;
        }
        if (!p.isLeader) {
          partitions.push({
            partitionIndex: rp.partitionIndex,
            lowWatermark: -1,
            errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER,
          });
          continue;
        }
        const target = rp.offset === -1 ? p.highWatermark : rp.offset;
        if (target < 0 || target > p.highWatermark) {
          partitions.push({
            partitionIndex: rp.partitionIndex,
            lowWatermark: -1,
            errorCode: ErrorCode.OFFSET_OUT_OF_RANGE,
          });
          continue;
        }
        if (target > p.logStartOffset) await p.log.deleteRecordsBefore(target);
        partitions.push({ partitionIndex: rp.partitionIndex, lowWatermark: p.logStartOffset, errorCode: 0 });
      }
      topics.push({ name: t.name, partitions });
    }
    return { throttleTimeMs: 0, topics };
  },
);
