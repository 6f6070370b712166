/** CreatePartitions (key 37), v0-3: raises a topic's partition count (never lowers it). */

import { ErrorCode, KafkaError } from '../../protocol/errors.js';
import { ApiKey } from '../../protocol/generated/index.js';
import type { Broker } from '../broker.js';
import { defineHandler } from '../dispatcher.js';

export const createPartitionsHandler = defineHandler<Broker, ApiKey.CreatePartitions>(
  ApiKey.CreatePartitions,
  { min: 0, max: 3 },
  async (ctx, req) => {
    const broker = ctx.broker;
    const results = [];
    for (const t of req.topics) {
      const topic = broker.topics.get(t.name);
      if (!topic) {
        results.push({
          name: t.name,
          errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
          errorMessage: `The topic '${t.name}' does not exist.`,
        });
        continue;
      }
      if (t.count <= topic.meta.partitions) {
        const msg =
          t.count === topic.meta.partitions
            ? `Topic already has ${t.count} partitions.`
            : `Topic currently has ${topic.meta.partitions} partitions, which is higher than the requested ${t.count}.`;
        results.push({ name: t.name, errorCode: ErrorCode.INVALID_PARTITIONS, errorMessage: msg });
        continue;
      }
      if (t.assignments && t.assignments.length !== t.count - topic.meta.partitions) {
        results.push({
          name: t.name,
          errorCode: ErrorCode.INVALID_REPLICA_ASSIGNMENT,
          errorMessage: 'Increasing the number of partitions requires one assignment per new partition.',
        });
        continue;
      }
      if (req.validateOnly) {
        results.push({ name: t.name, errorCode: 0, errorMessage: null });
        continue;
      }
      try {
        await broker.topicAdmin.addPartitions(t.name, t.count, t.assignments?.map((a) => [...a.brokerIds]));
        results.push({ name: t.name, errorCode: 0, errorMessage: null });
      } catch (e) {
        if (!(e instanceof KafkaError)) throw e;
        results.push({ name: t.name, errorCode: e.errorCode, errorMessage: e.message });
      }
    }
    return { throttleTimeMs: 0, results };
  },
);
