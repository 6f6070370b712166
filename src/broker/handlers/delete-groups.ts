/**
 * DeleteGroups (key 42), v0-2 (v2 is flexible). Only Empty groups can be deleted
 * (NON_EMPTY_GROUP otherwise; GROUP_ID_NOT_FOUND for unknown ones); deletion writes tombstones
 * for the group's metadata and every committed offset to `__consumer_offsets`.
 */

import { ApiKey } from '../../protocol/generated/index.js';
import type { Broker } from '../broker.js';
import { defineHandler } from '../dispatcher.js';

export const deleteGroupsHandler = defineHandler<Broker, ApiKey.DeleteGroups>(
  ApiKey.DeleteGroups,
  { min: 0, max: 2 },
  async (ctx, req) => {
    const results = await ctx.broker.groups.deleteGroups(req.groupsNames);
    return { throttleTimeMs: 0, results };
  },
);
