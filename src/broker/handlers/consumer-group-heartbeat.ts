/**
 * ConsumerGroupHeartbeat (key 68), v0-1: the KIP-848 consumer group protocol. A member joins
 * with epoch 0, heartbeats with its current epoch (carrying only what changed since the last
 * heartbeat), leaves with -1 (or -2, a static member that will come back). v1 adds the
 * subscribed topic regex and, in Kafka 4, requires the client to choose its member id; v0
 * members get one from the coordinator. The coordinator (src/group/consumer-group-coordinator.ts)
 * computes the assignment and answers once its records are durable.
 */

import type { TopicView } from '../../group/consumer-group-coordinator.js';
import { ApiKey } from '../../protocol/generated/index.js';
import type { Broker } from '../broker.js';
import { defineHandler } from '../dispatcher.js';
import { clientHostOf } from './join-group.js';

/** The broker's topics as the group coordinator sees them. */
export function topicViewOf(broker: Broker): TopicView {
  return {
    byName(name) {
      const t = broker.topics.get(name);
      return t ? { topicId: t.meta.topicId, numPartitions: t.partitions.length } : undefined;
    },
    byId(topicId) {
      const t = broker.topics.getById(topicId);
      return t ? { name: t.meta.name, numPartitions: t.partitions.length } : undefined;
    },
  };
}

export const consumerGroupHeartbeatHandler = defineHandler<Broker, ApiKey.ConsumerGroupHeartbeat>(
  ApiKey.ConsumerGroupHeartbeat,
  { min: 0, max: 1 },
  async (ctx, req) => {
    const r = await ctx.broker.groups.consumerGroupHeartbeat(
      {
        apiVersion: ctx.apiVersion,
        groupId: req.groupId,
        memberId: req.memberId,
        memberEpoch: req.memberEpoch,
        instanceId: req.instanceId,
        rackId: req.rackId,
        rebalanceTimeoutMs: req.rebalanceTimeoutMs,
        subscribedTopicNames: req.subscribedTopicNames,
        subscribedTopicRegex: ctx.apiVersion >= 1 ? req.subscribedTopicRegex : null,
        serverAssignor: req.serverAssignor,
        topicPartitions: req.topicPartitions,
        clientId: ctx.clientId ?? '',
        clientHost: clientHostOf(ctx.conn.remoteAddress),
      },
      topicViewOf(ctx.broker),
    );
    return {
      throttleTimeMs: 0,
      errorCode: r.errorCode,
      errorMessage: r.errorMessage,
      memberId: r.memberId,
      memberEpoch: r.memberEpoch,
      heartbeatIntervalMs: r.heartbeatIntervalMs,
      assignment: r.assignment,
    };
  },
);
