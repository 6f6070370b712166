/**
 * InitProducerId (key 22), v0-5: hands an idempotent producer its id and epoch (KIP-98).
 * A producer that passes its current id and epoch (KIP-360, v3+) gets the epoch bumped.
 * Transactional ids are not supported yet: answered with COORDINATOR_NOT_AVAILABLE.
 */

import { ErrorCode } from '../../protocol/errors.js';
import { ApiKey } from '../../protocol/generated/index.js';
import type { Broker } from '../broker.js';
import { defineHandler } from '../dispatcher.js';

export const initProducerIdHandler = defineHandler<Broker, ApiKey.InitProducerId>(
  ApiKey.InitProducerId,
  { min: 0, max: 5 },
  async (ctx, req) => {
    if (req.transactionalId !== null) {
      return { throttleTimeMs: 0, errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, producerId: -1, producerEpoch: -1 };
    }
    if (req.producerId >= 0 && req.producerEpoch >= 0 && req.producerEpoch < 32766) {
      return { throttleTimeMs: 0, errorCode: 0, producerId: req.producerId, producerEpoch: req.producerEpoch + 1 };
    }
    const producerId = await ctx.broker.producerIds.allocate();
    return { throttleTimeMs: 0, errorCode: 0, producerId, producerEpoch: 0 };
  },
);
