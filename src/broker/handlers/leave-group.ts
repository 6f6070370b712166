/**
 * LeaveGroup (key 13), v0-5. v0-2 name one member (memberId) and answer with its error at the
 * top level; v3+ leave in batches (KIP-345: members by member id and/or group.instance.id) with
 * an error per member; v4 is flexible, v5 adds a reason per member (KIP-800).
 */

import { ApiKey } from '../../protocol/generated/index.js';
import type { Broker } from '../broker.js';
import { defineHandler } from '../dispatcher.js';

export const leaveGroupHandler = defineHandler<Broker, ApiKey.LeaveGroup>(
  ApiKey.LeaveGroup,
  { min: 0, max: 5 },
  async (ctx, req) => {
    const groups = ctx.broker.groups;
    if (ctx.apiVersion < 3) {
      const r = groups.leaveGroup(req.groupId, [{ memberId: req.memberId, groupInstanceId: null }]);
      const errorCode = r.errorCode !== 0 ? r.errorCode : (r.members[0]?.errorCode ?? 0);
      return { throttleTimeMs: 0, errorCode };
    }
    const r = groups.leaveGroup(
      req.groupId,
      req.members.map((m) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId })),
    );
    return { throttleTimeMs: 0, errorCode: r.errorCode, members: r.members };
  },
);
