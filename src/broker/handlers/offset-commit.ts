/**
 * OffsetCommit (key 8), v0-9. v1 adds generation, member id and a commit timestamp per
 * partition; v2-4 a retention time (stored as the offset's expire timestamp); v5 drops it; v6
 * adds the leader epoch; v7 groupInstanceId (KIP-345); v8 is flexible; v9 (KIP-848) answers
 * GROUP_ID_NOT_FOUND instead of ILLEGAL_GENERATION for an unknown group with a generation.
 * For a KIP-848 consumer group, generationIdOrMemberEpoch is the member epoch: the member must
 * exist (UNKNOWN_MEMBER_ID), commit with v9+ (UNSUPPORTED_VERSION) and send its current epoch
 * (STALE_MEMBER_EPOCH); epoch -1 without member only while the group has no members.
 *
 * Partitions of unknown topics get UNKNOWN_TOPIC_OR_PARTITION (as Kafka's KafkaApis); the rest
 * go to the coordinator, which validates generation and member, writes the commit records to
 * `__consumer_offsets` and answers once they are durable.
 */

import type { CommitOffsetsParams } from '../../group/coordinator.js';
import { ErrorCode } from '../../protocol/errors.js';
import { ApiKey } from '../../protocol/generated/index.js';
import type { Broker } from '../broker.js';
import { defineHandler } from '../dispatcher.js';

export const offsetCommitHandler = defineHandler<Broker, ApiKey.OffsetCommit>(
  ApiKey.OffsetCommit,
  { min: 0, max: 9 },
  async (ctx, req) => {
    const v = ctx.apiVersion;
    const broker = ctx.broker;
    const errors = new Map<string, number>();
    const key = (t: string, p: number) => `${p}:${t}`;
    const offsets: CommitOffsetsParams['offsets'] = [];
    for (const t of req.topics) {
      for (const p of t.partitions) {
        if (!broker.topics.partition(t.name, p.partitionIndex)) {
          errors.set(key(t.name, p.partitionIndex), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
          continue;
        }
        offsets.push({
          topic: t.name,
          partition: p.partitionIndex,
          offset: p.committedOffset,
          leaderEpoch: v >= 6 ? p.committedLeaderEpoch : -1,
          metadata: p.committedMetadata,
          commitTimestamp: v === 1 ? p.commitTimestamp : -1,
        });
      }
    }
    const results = await broker.groups.commitOffsets({
      groupId: req.groupId,
      generationId: v >= 1 ? req.generationIdOrMemberEpoch : -1,
      memberId: v >= 1 ? req.memberId : '',
      groupInstanceId: v >= 7 ? req.groupInstanceId : null,
      apiVersion: v,
      retentionTimeMs: v >= 2 && v <= 4 ? req.retentionTimeMs : -1,
      offsets,
    });
    for (const r of results) errors.set(key(r.topic, r.partition), r.errorCode);
    return {
      throttleTimeMs: 0,
      topics: req.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({
          partitionIndex: p.partitionIndex,
          errorCode: errors.get(key(t.name, p.partitionIndex)) ?? 0,
        })),
      })),
    };
  },
);
