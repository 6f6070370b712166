/**
 * DeleteTopics (key 20), v0-6. Topics are named by name (v0-5 `topicNames`, v6 `topics[].name`)
 * or by id (v6). Deletion closes the partition logs and removes their directories.
 */

import { type Encodable, ZERO_UUID } from '../../protocol/codec-support.js';
import { ErrorCode, KafkaError } from '../../protocol/errors.js';
import type { DeletableTopicResult } from '../../protocol/generated/delete-topics-response.js';
import { ApiKey } from '../../protocol/generated/index.js';
import type { Broker } from '../broker.js';
import { defineHandler } from '../dispatcher.js';

export const deleteTopicsHandler = defineHandler<Broker, ApiKey.DeleteTopics>(
  ApiKey.DeleteTopics,
  { min: 0, max: 6 },
  async (ctx, req) => {
    const broker = ctx.broker;
    const targets: { name: string | null; topicId: string }[] =
      ctx.apiVersion >= 6
        ? req.topics.map((t) => ({ name: t.name, topicId: t.topicId }))
        : req.topicNames.map((n) => ({ name: n, topicId: ZERO_UUID }));
    const responses: Encodable<DeletableTopicResult>[] = [];
    for (const target of targets) {
      const topic =
        target.name !== null ? broker.topics.get(target.name) : broker.topics.getById(target.topicId);
      if (!topic) {
        const byId = target.name === null;
        responses.push({
          name: target.name,
          topicId: target.topicId,
          errorCode: byId ? ErrorCode.UNKNOWN_TOPIC_ID : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
          errorMessage: null,
        });
        continue;
      }
      if (!broker.config.deleteTopicEnable) {
        responses.push({
          name: topic.meta.name,
          topicId: topic.meta.topicId,
          errorCode: ErrorCode.TOPIC_DELETION_DISABLED,
          errorMessage: null,
        });
        continue;
      }
      try {
        await broker.topicAdmin.delete(topic.meta.name);
        responses.push({
          name: topic.meta.name,
          topicId: topic.meta.topicId,
          errorCode: 0,
          errorMessage: null,
        });
      } catch (e) {
        if (!(e instanceof KafkaError)) throw e;
        responses.push({
          name: topic.meta.name,
          topicId: topic.meta.topicId,
          errorCode: e.errorCode,
          errorMessage: e.message,
        });
      }
    }
    return { throttleTimeMs: 0, responses };
  },
);
