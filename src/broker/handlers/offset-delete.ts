/**
 * OffsetDelete (key 47), v0 (KIP-496). Deletes committed offsets of a group: any partition of an
 * Empty group; for a consumer group with members, only topics its members do not subscribe to
 * (GROUP_SUBSCRIBED_TO_TOPIC otherwise, from the members' consumer-protocol subscriptions).
 * Unknown topics answer UNKNOWN_TOPIC_OR_PARTITION, as Kafka's KafkaApis does.
 */

import { ErrorCode } from '../../protocol/errors.js';
import { ApiKey } from '../../protocol/generated/index.js';
import type { Broker } from '../broker.js';
import { defineHandler } from '../dispatcher.js';

export const offsetDeleteHandler = defineHandler<Broker, ApiKey.OffsetDelete>(
  ApiKey.OffsetDelete,
  { min: 0, max: 0 },
  async (ctx, req) => {
    const broker = ctx.broker;
    const known = req.topics.filter((t) => broker.topics.get(t.name));
    const r = await broker.groups.deleteOffsets(
      req.groupId,
      known.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => p.partitionIndex) })),
    );
    if (r.errorCode !== 0) return { throttleTimeMs: 0, errorCode: r.errorCode, topics: [] };
    const byName = new Map(r.topics.map((t) => [t.name, t]));
    return {
      throttleTimeMs: 0,
      errorCode: 0,
      topics: req.topics.map((t) => {
        const done = byName.get(t.name);
        return {
          name: t.name,
          partitions: t.partitions.map((p) => ({
            partitionIndex: p.partitionIndex,
            errorCode: done
              ? (done.partitions.find((x) => x.partitionIndex === p.partitionIndex)?.errorCode ?? 0)
              : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
          })),
        };
      }),
    };
  },
);
