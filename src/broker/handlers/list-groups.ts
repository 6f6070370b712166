/**
 * ListGroups (key 16), v0-5. v3 is flexible, v4 filters by state and returns it (KIP-518), v5
 * filters by type and returns it (KIP-848: "classic" or "consumer"; consumer groups list
 * protocol type "consumer" and states Empty, Assigning, Reconciling, Stable). Filters compare
 * case-insensitively.
 */

import { ApiKey } from '../../protocol/generated/index.js';
import type { Broker } from '../broker.js';
import { defineHandler } from '../dispatcher.js';

export const listGroupsHandler = defineHandler<Broker, ApiKey.ListGroups>(
  ApiKey.ListGroups,
  { min: 0, max: 5 },
  async (ctx, req) => {
    const v = ctx.apiVersion;
    const r = ctx.broker.groups.listGroups(v >= 4 ? req.statesFilter : [], v >= 5 ? req.typesFilter : []);
    return { throttleTimeMs: 0, errorCode: r.errorCode, groups: r.groups };
  },
);
