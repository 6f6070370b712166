/**
 * AlterConfigs (key 33), v0-2, and IncrementalAlterConfigs (key 44, KIP-339), v0-1, for topics.
 * AlterConfigs replaces a topic's whole set of configs; IncrementalAlterConfigs applies SET (0),
 * DELETE (1), APPEND (2) and SUBTRACT (3, list configs only) one config at a time. Values are
 * validated before anything changes; validateOnly checks without applying. Broker resources
 * are read-only here (static config): answered with INVALID_REQUEST.
 */

import { ErrorCode } from '../../protocol/errors.js';
import { ApiKey } from '../../protocol/generated/index.js';
import type { Broker } from '../broker.js';
import { type TopicConfigName, validateTopicConfig } from '../config.js';
import { defineHandler } from '../dispatcher.js';
import { RESOURCE_BROKER, RESOURCE_TOPIC } from './describe-configs.js';

type Configs = Partial<Record<TopicConfigName, string>>;
type Outcome = { errorCode: number; errorMessage: string | null };

async function applyTopicConfigs(
  broker: Broker,
  resourceType: number,
  name: string,
  validateOnly: boolean,
  compute: (current: Configs) => Configs | Outcome,
): Promise<Outcome> {
  if (resourceType === RESOURCE_BROKER) {
    return {
      errorCode: ErrorCode.INVALID_REQUEST,
      errorMessage: 'Broker configs are static in Sluice: set them in the config file and restart',
    };
  }
  if (resourceType !== RESOURCE_TOPIC)
    return {
      errorCode: ErrorCode.INVALID_REQUEST,
      errorMessage: `Unsupported resource type ${resourceType}`,
    };
  const topic = broker.topics.get(name);
  if (!topic)
    return { errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: `Topic ${name} does not exist` };
  const next = compute({ ...topic.meta.configs });
  if ('errorCode' in next) return next as Outcome;
  for (const [k, v] of Object.entries(next)) {
    const err = validateTopicConfig(k, v as string);
    if (err) return { errorCode: ErrorCode.INVALID_CONFIG, errorMessage: err };
  }
  if (!validateOnly) await broker.topicAdmin.setConfigs(name, next as Configs);
  return { errorCode: 0, errorMessage: null };
}

export const alterConfigsHandler = defineHandler<Broker, ApiKey.AlterConfigs>(
  ApiKey.AlterConfigs,
  { min: 0, max: 2 },
  async (ctx, req) => {
    const responses = [];
    for (const res of req.resources) {
      const outcome = await applyTopicConfigs(
        ctx.broker,
        res.resourceType,
        res.resourceName,
        req.validateOnly,
        () => {
          const next: Configs = {};
          for (const c of res.configs) if (c.value !== null) next[c.name as TopicConfigName] = c.value;
          return next;
        },
      );
      responses.push({ ...outcome, resourceType: res.resourceType, resourceName: res.resourceName });
    }
    return { throttleTimeMs: 0, responses };
  },
);

export const incrementalAlterConfigsHandler = defineHandler<Broker, ApiKey.IncrementalAlterConfigs>(
  ApiKey.IncrementalAlterConfigs,
  { min: 0, max: 1 },
  async (ctx, req) => {
    const responses = [];
    for (const res of req.resources) {
      const outcome = await applyTopicConfigs(
        ctx.broker,
        res.resourceType,
        res.resourceName,
        req.validateOnly,
        (current) => {
          for (const c of res.configs) {
            const key = c.name as TopicConfigName;
            const known = validateTopicConfig(key, c.value ?? '');
            if (known?.startsWith('Unknown topic config'))
              return { errorCode: ErrorCode.INVALID_CONFIG, errorMessage: known };
            switch (c.configOperation) {
              case 0:
                if (c.value === null)
                  return {
                    errorCode: ErrorCode.INVALID_REQUEST,
                    errorMessage: `Null value not supported for ${c.name}`,
                  };
                current[key] = c.value;
                break;
              case 1:
                delete current[key];
                break;
              case 2:
              case 3: {
                if (key !== 'cleanup.policy') {
                  return {
                    errorCode: ErrorCode.INVALID_CONFIG,
                    errorMessage: `Config value append/subtract is not allowed for config key ${c.name}`,
                  };
                }
                const list = (current[key] ?? ctx.broker.config.topicDefaults[key])
                  .split(',')
                  .filter((s) => s !== '');
                const items = (c.value ?? '').split(',').filter((s) => s !== '');
                const updated =
                  c.configOperation === 2
                    ? [...list, ...items.filter((i) => !list.includes(i))]
                    : list.filter((i) => !items.includes(i));
                current[key] = updated.join(',');
                break;
              }
              default:
                return {
                  errorCode: ErrorCode.INVALID_REQUEST,
                  errorMessage: `Unknown config operation ${c.configOperation}`,
                };
            }
          }
          return current;
        },
      );
      responses.push({ ...outcome, resourceType: res.resourceType, resourceName: res.resourceName });
    }
    return { throttleTimeMs: 0, responses };
  },
);
