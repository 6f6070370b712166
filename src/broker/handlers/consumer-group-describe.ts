/**
 * ConsumerGroupDescribe (key 69), v0: state, group and assignment epochs, assignor, and per
 * member its epoch, subscription, current and target assignment (topic ids with names). A group
 * that does not exist, or is a classic group, answers GROUP_ID_NOT_FOUND with a message, as
 * Kafka does (admin clients then fall back to DescribeGroups for classic groups).
 */

import { ApiKey } from '../../protocol/generated/index.js';
import type { Broker } from '../broker.js';
import { defineHandler } from '../dispatcher.js';
import { topicViewOf } from './consumer-group-heartbeat.js';
import { GROUP_AUTHORIZED_OPERATIONS } from './describe-groups.js';

const OPERATIONS_NOT_REQUESTED = -2147483648;

export const consumerGroupDescribeHandler = defineHandler<Broker, ApiKey.ConsumerGroupDescribe>(
  ApiKey.ConsumerGroupDescribe,
  { min: 0, max: 0 },
  async (ctx, req) => {
    const topics = topicViewOf(ctx.broker);
    const ops = req.includeAuthorizedOperations ? GROUP_AUTHORIZED_OPERATIONS : OPERATIONS_NOT_REQUESTED;
    return {
      throttleTimeMs: 0,
      groups: req.groupIds.map((id) => ({
        ...ctx.broker.groups.describeConsumerGroup(id, topics),
        authorizedOperations: ops,
      })),
    };
  },
);
