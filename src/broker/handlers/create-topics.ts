/**
 * CreateTopics (key 19), v0-7. Validates name, partition count, replication factor and configs
 * as Kafka does (TOPIC_ALREADY_EXISTS, INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR,
 * INVALID_CONFIG, INVALID_TOPIC_EXCEPTION); -1 means the broker default (num.partitions,
 * default.replication.factor; KIP-464). validateOnly checks without creating. v5+ returns the
 * topic's id, partition count, replication factor and configs.
 */

import { type Encodable, ZERO_UUID } from '../../protocol/codec-support.js';
import { ErrorCode, KafkaError } from '../../protocol/errors.js';
import type { CreatableTopicResult } from '../../protocol/generated/create-topics-response.js';
import { ApiKey } from '../../protocol/generated/index.js';
import type { Broker } from '../broker.js';
import { defineHandler } from '../dispatcher.js';
import { describeTopicConfigs } from './describe-configs.js';

export const createTopicsHandler = defineHandler<Broker, ApiKey.CreateTopics>(
  ApiKey.CreateTopics,
  { min: 0, max: 7 },
  async (ctx, req) => {
    const broker = ctx.broker;
    const seen = new Map<string, number>();
    for (const t of req.topics) seen.set(t.name, (seen.get(t.name) ?? 0) + 1);
    const topics: Encodable<CreatableTopicResult>[] = [];
    for (const t of req.topics) {
      const base = {
        name: t.name,
        topicId: ZERO_UUID,
        numPartitions: -1,
        replicationFactor: -1,
        configs: null,
        topicConfigErrorCode: 0,
      };
      if ((seen.get(t.name) ?? 0) > 1) {
        topics.push({
          ...base,
          errorCode: ErrorCode.INVALID_REQUEST,
          errorMessage: `Create topics request from client contains duplicate topic ${t.name}`,
        });
        continue;
      }
      if (t.assignments.length > 0 && t.numPartitions !== -1) {
        topics.push({
          ...base,
          errorCode: ErrorCode.INVALID_REQUEST,
          errorMessage: 'Both numPartitions or replicationFactor and replicasAssignments were set.',
        });
        continue;
      }
      const numPartitions =
        t.assignments.length > 0
          ? t.assignments.length
          : t.numPartitions === -1
            ? broker.config.numPartitions
            : t.numPartitions;
      const rf =
        t.assignments.length > 0
          ? (t.assignments[0]?.brokerIds.length ?? 1)
          : t.replicationFactor === -1
            ? broker.config.defaultReplicationFactor
            : t.replicationFactor;
      const configs: [string, string][] = t.configs
        .filter((c) => c.value !== null)
        .map((c) => [c.name, c.value as string]);
      const err = broker.topicAdmin.validateCreate(t.name, numPartitions, rf, configs);
      if (err) {
        topics.push({ ...base, errorCode: err.errorCode, errorMessage: err.message });
        continue;
      }
      if (req.validateOnly) {
        topics.push({ ...base, errorCode: 0, errorMessage: null, numPartitions, replicationFactor: rf });
        continue;
      }
      try {
        const topic = await broker.topicAdmin.create(
          t.name,
          numPartitions,
          configs,
          rf,
          t.assignments.map((a) => ({ partitionIndex: a.partitionIndex, brokerIds: [...a.brokerIds] })),
        );
        topics.push({
          ...base,
          topicId: topic.meta.topicId,
          errorCode: 0,
          errorMessage: null,
          numPartitions,
          replicationFactor: topic.replicationFactor ?? 1,
          configs: describeTopicConfigs(broker, topic.meta, null, false, false).map((c) => ({
            name: c.name,
            value: c.value,
            readOnly: c.readOnly,
            configSource: c.configSource,
            isSensitive: false,
          })),
        });
      } catch (e) {
        if (e instanceof KafkaError)
          topics.push({ ...base, errorCode: e.errorCode, errorMessage: e.message });
        else throw e;
      }
    }
    return { throttleTimeMs: 0, topics };
  },
);
