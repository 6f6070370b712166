/**
 * OffsetFetch (key 9), v0-9. v0-1 name topics and report group errors per partition; v2 allows
 * null topics (every committed offset) and adds a top-level error; v5 returns the leader epoch;
 * v6 is flexible; v7 adds requireStable (no transactional offsets are pending here, so it
 * changes nothing); v8 fetches several groups at once (KIP-709); v9's member id and epoch are
 * only validated for KIP-848 consumer groups (UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH; a null
 * member id with epoch -1 is an admin fetch and always allowed). Partitions without a commit answer offset -1.
 */

import { ApiKey } from '../../protocol/generated/index.js';
import type { Broker } from '../broker.js';
import { defineHandler } from '../dispatcher.js';

export const offsetFetchHandler = defineHandler<Broker, ApiKey.OffsetFetch>(
  ApiKey.OffsetFetch,
  { min: 0, max: 9 },
  async (ctx, req) => {
    const v = ctx.apiVersion;
    const groups = ctx.broker.groups;
    if (v >= 8) {
      return {
        throttleTimeMs: 0,
        groups: req.groups.map((g) => {
          const r = groups.fetchOffsets(
            g.groupId,
            g.topics === null
              ? null
              : g.topics.map((t) => ({ name: t.name, partitions: t.partitionIndexes })),
            v >= 9 ? { memberId: g.memberId, memberEpoch: g.memberEpoch } : undefined,
          );
          return { groupId: g.groupId, errorCode: r.errorCode, topics: r.topics };
        }),
      };
    }
    const topics =
      req.topics === null ? null : req.topics.map((t) => ({ name: t.name, partitions: t.partitionIndexes }));
    const r = groups.fetchOffsets(req.groupId, v < 2 && topics === null ? [] : topics);
    if (v < 2 && r.errorCode !== 0) {
      // No top-level error before v2: the group's error goes on every partition asked for.
      return {
        throttleTimeMs: 0,
        topics: (topics ?? []).map((t) => ({
          name: t.name,
          partitions: t.partitions.map((p) => ({
            partitionIndex: p,
            committedOffset: -1,
            committedLeaderEpoch: -1,
            metadata: '',
            errorCode: r.errorCode,
          })),
        })),
      };
    }
    return { throttleTimeMs: 0, errorCode: r.errorCode, topics: r.topics };
  },
);
