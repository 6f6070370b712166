/**
 * JoinGroup (key 11), v0-9. v1 adds rebalanceTimeoutMs (v0 uses the session timeout), v4 requires
 * a member id (KIP-394: a first join without one gets MEMBER_ID_REQUIRED and the id to use), v5
 * adds groupInstanceId (KIP-345 static membership), v6 is flexible, v7 returns protocolType
 * and a nullable protocolName, v8 adds the reason (KIP-800), v9 skipAssignment (KIP-814).
 * The request waits until the rebalance completes (src/group/coordinator.ts).
 */

import { ApiKey } from '../../protocol/generated/index.js';
import type { Broker } from '../broker.js';
import { defineHandler } from '../dispatcher.js';

export function clientHostOf(remoteAddress: string): string {
  return `/${remoteAddress}`;
}

export const joinGroupHandler = defineHandler<Broker, ApiKey.JoinGroup>(
  ApiKey.JoinGroup,
  { min: 0, max: 9 },
  async (ctx, req) => {
    const v = ctx.apiVersion;
    const r = await ctx.broker.groups.joinGroup({
      groupId: req.groupId,
      memberId: req.memberId,
      groupInstanceId: v >= 5 ? req.groupInstanceId : null,
      protocolType: req.protocolType,
      protocols: req.protocols.map((p) => ({ name: p.name, metadata: Buffer.from(p.metadata) })),
      sessionTimeoutMs: req.sessionTimeoutMs,
      rebalanceTimeoutMs: v >= 1 ? req.rebalanceTimeoutMs : req.sessionTimeoutMs,
      clientId: ctx.clientId ?? '',
      clientHost: clientHostOf(ctx.conn.remoteAddress),
      requireKnownMemberId: v >= 4,
      supportsSkipAssignment: v >= 9,
      reason: v >= 8 ? req.reason : null,
    });
    return {
      throttleTimeMs: 0,
      errorCode: r.errorCode,
      generationId: r.generationId,
      protocolType: r.protocolType,
      protocolName: r.protocolName,
      leader: r.leader,
      skipAssignment: r.skipAssignment,
      memberId: r.memberId,
      members: r.members,
    };
  },
);
