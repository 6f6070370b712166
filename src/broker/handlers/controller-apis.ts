/**
 * The broker-to-controller APIs, served on the client listener of the active controller:
 * BrokerRegistration (62), BrokerHeartbeat (63), AlterPartition (56), AllocateProducerIds (67).
 * Kafka serves them on its controller listener; Sluice's nodes reach each other's controller
 * through the address each broker registered, so they come here. Outside a cluster, or on a node
 * that is not the active controller, the answer is NOT_CONTROLLER.
 */

import { ErrorCode } from '../../protocol/errors.js';
import { ApiKey } from '../../protocol/generated/index.js';
import type { Broker } from '../broker.js';
import { defineHandler } from '../dispatcher.js';

export const brokerRegistrationHandler = defineHandler<Broker, ApiKey.BrokerRegistration>(
  ApiKey.BrokerRegistration,
  { min: 0, max: 4 },
  async (ctx, req) => {
    const c = ctx.broker.cluster;
    if (!c) return { throttleTimeMs: 0, errorCode: ErrorCode.NOT_CONTROLLER, brokerEpoch: -1 };
    return c.service.brokerRegistration(req);
  },
);

export const brokerHeartbeatHandler = defineHandler<Broker, ApiKey.BrokerHeartbeat>(
  ApiKey.BrokerHeartbeat,
  { min: 0, max: 1 },
  async (ctx, req) => {
    const c = ctx.broker.cluster;
    if (!c)
      return {
        throttleTimeMs: 0,
        errorCode: ErrorCode.NOT_CONTROLLER,
        isCaughtUp: false,
        isFenced: true,
        shouldShutDown: false,
      };
    return c.service.brokerHeartbeat(req);
  },
);

export const alterPartitionHandler = defineHandler<Broker, ApiKey.AlterPartition>(
  ApiKey.AlterPartition,
  { min: 0, max: 3 },
  async (ctx, req) => {
    const c = ctx.broker.cluster;
    if (!c) return { throttleTimeMs: 0, errorCode: ErrorCode.NOT_CONTROLLER, topics: [] };
    return c.service.alterPartition(req);
  },
);

export const allocateProducerIdsHandler = defineHandler<Broker, ApiKey.AllocateProducerIds>(
  ApiKey.AllocateProducerIds,
  { min: 0, max: 0 },
  async (ctx, req) => {
    const c = ctx.broker.cluster;
    if (!c)
      return {
        throttleTimeMs: 0,
        errorCode: ErrorCode.NOT_CONTROLLER,
        producerIdStart: -1,
        producerIdLen: 0,
      };
    return c.service.allocateProducerIds(req);
  },
);
