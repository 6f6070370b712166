/**
 * SyncGroup (key 14), v0-5. v3 adds groupInstanceId (KIP-345), v4 is flexible, v5 adds
 * protocolType/protocolName, checked against the group's (INCONSISTENT_GROUP_PROTOCOL) and
 * returned. The leader's request carries every member's assignment; followers wait for it.
 */

import { ApiKey } from '../../protocol/generated/index.js';
import type { Broker } from '../broker.js';
import { defineHandler } from '../dispatcher.js';

export const syncGroupHandler = defineHandler<Broker, ApiKey.SyncGroup>(
  ApiKey.SyncGroup,
  { min: 0, max: 5 },
  async (ctx, req) => {
    const v = ctx.apiVersion;
    const r = await ctx.broker.groups.syncGroup({
      groupId: req.groupId,
      generationId: req.generationId,
      memberId: req.memberId,
      groupInstanceId: v >= 3 ? req.groupInstanceId : null,
      protocolType: v >= 5 ? req.protocolType : null,
      protocolName: v >= 5 ? req.protocolName : null,
      // Copied: the request's buffers are views into the network frame.
      assignments: req.assignments.map((a) => ({
        memberId: a.memberId,
        assignment: Buffer.from(a.assignment),
      })),
    });
    return {
      throttleTimeMs: 0,
      errorCode: r.errorCode,
      protocolType: r.protocolType,
      protocolName: r.protocolName,
      assignment: r.assignment,
    };
  },
);
