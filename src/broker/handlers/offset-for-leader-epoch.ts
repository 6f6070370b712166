/**
 * OffsetForLeaderEpoch (key 23), v0-4 (KIP-101, KIP-279, KIP-320): the end offset of the largest
 * leader epoch <= the one asked for. Followers use it to find where their log diverges after a
 * leader change; consumers (replicaId -1) use it to validate their position after one. Answered
 * by the partition's leader from its leader-epoch cache; on a single node every batch carries
 * epoch 0 and the answer is (0, log end offset).
 */

import { ErrorCode } from '../../protocol/errors.js';
import { ApiKey } from '../../protocol/generated/index.js';
import type { Broker } from '../broker.js';
import { defineHandler } from '../dispatcher.js';

export const offsetForLeaderEpochHandler = defineHandler<Broker, ApiKey.OffsetForLeaderEpoch>(
  ApiKey.OffsetForLeaderEpoch,
  { min: 2, max: 4 },
  async (ctx, req) => {
    const broker = ctx.broker;
    const replicaId = ctx.apiVersion >= 3 ? req.replicaId : -1;
    return {
      throttleTimeMs: 0,
      topics: req.topics.map((t) => ({
        topic: t.topic,
        partitions: t.partitions.map((p) => {
          const answer = (errorCode: number, leaderEpoch = -1, endOffset = -1) => ({
            errorCode,
            partition: p.partition,
            leaderEpoch,
            endOffset,
          });
          const topic = broker.topics.get(t.topic);
          const partition = topic?.partitions[p.partition];
          if (!partition) {
            const known = topic !== undefined && p.partition >= 0 && p.partition < topic.meta.partitions;
            return answer(known ? ErrorCode.NOT_LEADER_OR_FOLLOWER : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
          }
          const rp = broker.cluster?.replicas.get(t.topic, p.partition);
          if (!rp) {
            if (p.currentLeaderEpoch > 0) return answer(ErrorCode.UNKNOWN_LEADER_EPOCH);
            return answer(ErrorCode.NONE, 0, partition.logEndOffset);
          }
          const r = rp.handleOffsetForLeaderEpoch({
            kind: 'offset-for-leader-epoch',
            correlationId: 0,
            replicaId,
            currentLeaderEpoch: p.currentLeaderEpoch,
            leaderEpoch: p.leaderEpoch,
          });
          if (r.errorCode !== ErrorCode.NONE) return answer(r.errorCode);
          // A consumer may not learn of offsets above the high watermark (KIP-320).
          const end = replicaId < 0 ? Math.min(r.endOffset, rp.highWatermark) : r.endOffset;
          return answer(ErrorCode.NONE, r.leaderEpoch, end);
        }),
      })),
    };
  },
);
