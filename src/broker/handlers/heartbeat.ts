/** Heartbeat (key 12), v0-4. v3 adds groupInstanceId (KIP-345), v4 is flexible. */

import { ApiKey } from '../../protocol/generated/index.js';
import type { Broker } from '../broker.js';
import { defineHandler } from '../dispatcher.js';

export const heartbeatHandler = defineHandler<Broker, ApiKey.Heartbeat>(
  ApiKey.Heartbeat,
  { min: 0, max: 4 },
  async (ctx, req) => {
    const errorCode = ctx.broker.groups.heartbeat({
      groupId: req.groupId,
      generationId: req.generationId,
      memberId: req.memberId,
      groupInstanceId: ctx.apiVersion >= 3 ? req.groupInstanceId : null,
    });
    return { throttleTimeMs: 0, errorCode };
  },
);
