/**
 * DescribeGroups (key 15), v0-5. v1 adds throttle time, v3 authorized operations (KIP-430), v4
 * groupInstanceId per member, v5 is flexible. An unknown group is described as state "Dead"
 * with no error (GROUP_ID_NOT_FOUND only arrives in v6). Member metadata and assignments are
 * filled only while the group is Stable, as Kafka does. A KIP-848 consumer group is not a
 * classic group: it is described here as unknown (use ConsumerGroupDescribe).
 */

import { ApiKey } from '../../protocol/generated/index.js';
import type { Broker } from '../broker.js';
import { defineHandler } from '../dispatcher.js';

/** AclOperation bits a group supports: READ(3), DELETE(6), DESCRIBE(8), DESCRIBE_CONFIGS(10), ALTER_CONFIGS(11). */
export const GROUP_AUTHORIZED_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8) | (1 << 10) | (1 << 11);
const OPERATIONS_NOT_REQUESTED = -2147483648;

export const describeGroupsHandler = defineHandler<Broker, ApiKey.DescribeGroups>(
  ApiKey.DescribeGroups,
  { min: 0, max: 5 },
  async (ctx, req) => {
    const ops =
      ctx.apiVersion >= 3 && req.includeAuthorizedOperations
        ? GROUP_AUTHORIZED_OPERATIONS
        : OPERATIONS_NOT_REQUESTED;
    return {
      throttleTimeMs: 0,
      groups: req.groups.map((id) => ({ ...ctx.broker.groups.describeGroup(id), authorizedOperations: ops })),
    };
  },
);
