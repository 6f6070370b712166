/**
 * DescribeConfigs (key 32), v0-4, for topics (resource type 2) and brokers (4).
 * A topic config set on the topic has source DYNAMIC_TOPIC_CONFIG (1); otherwise it comes from
 * the broker default: STATIC_BROKER_CONFIG (4) when the broker's log.* setting was given, else
 * DEFAULT_CONFIG (5). Synonyms (KIP-226) list the topic value, then the broker setting, then the
 * default, when the request includes them. v3+ carries the config type (KIP-569).
 */

import type { Encodable } from '../../protocol/codec-support.js';
import { ErrorCode } from '../../protocol/errors.js';
import type { DescribeConfigsResourceResult } from '../../protocol/generated/describe-configs-response.js';
import { ApiKey } from '../../protocol/generated/index.js';
import type { Broker } from '../broker.js';
import { TOPIC_CONFIG_BROKER_SYNONYMS, TOPIC_CONFIG_DEFAULTS, type TopicConfigName } from '../config.js';
import { defineHandler } from '../dispatcher.js';
import type { TopicMeta } from '../topics.js';

export const RESOURCE_TOPIC = 2;
export const RESOURCE_BROKER = 4;

export enum ConfigSource {
  DYNAMIC_TOPIC_CONFIG = 1,
  DYNAMIC_BROKER_CONFIG = 2,
  DYNAMIC_DEFAULT_BROKER_CONFIG = 3,
  STATIC_BROKER_CONFIG = 4,
  DEFAULT_CONFIG = 5,
}

enum ConfigType {
  BOOLEAN = 1,
  STRING = 2,
  INT = 3,
  LONG = 5,
  DOUBLE = 6,
  LIST = 7,
}

function configType(name: string): ConfigType {
  if (name === 'cleanup.policy' || name.endsWith('.throttled.replicas')) return ConfigType.LIST;
  if (
    [
      'preallocate',
      'unclean.leader.election.enable',
      'errors.deadletterqueue.group.enable',
      'remote.storage.enable',
      'remote.log.copy.disable',
      'remote.log.delete.on.disable',
    ].includes(name)
  )
    return ConfigType.BOOLEAN;
  if (name === 'min.cleanable.dirty.ratio') return ConfigType.DOUBLE;
  if (name === 'compression.type' || name === 'message.timestamp.type') return ConfigType.STRING;
  if (
    [
      'max.message.bytes',
      'min.insync.replicas',
      'segment.bytes',
      'index.interval.bytes',
      'segment.index.bytes',
      'compression.gzip.level',
      'compression.lz4.level',
      'compression.zstd.level',
      'max.decompressed.message.bytes',
    ].includes(name)
  )
    return ConfigType.INT;
  return ConfigType.LONG;
}

export interface DescribedConfig {
  name: string;
  value: string;
  readOnly: boolean;
  isDefault: boolean;
  configSource: ConfigSource;
  synonyms: { name: string; value: string; source: ConfigSource }[];
  configType: number;
}

export function describeTopicConfigs(
  broker: Broker,
  meta: TopicMeta,
  keys: string[] | null,
  includeSynonyms: boolean,
  _includeDocs: boolean,
): DescribedConfig[] {
  const out: DescribedConfig[] = [];
  for (const name of Object.keys(TOPIC_CONFIG_DEFAULTS).sort() as TopicConfigName[]) {
    if (keys && !keys.includes(name)) continue;
    const topicValue = meta.configs[name];
    const brokerValue = broker.config.topicDefaults[name];
    const defaultValue = TOPIC_CONFIG_DEFAULTS[name];
    const brokerSet = brokerValue !== defaultValue;
    const synonyms: DescribedConfig['synonyms'] = [];
    if (topicValue !== undefined)
      synonyms.push({ name, value: topicValue, source: ConfigSource.DYNAMIC_TOPIC_CONFIG });
    const brokerName = TOPIC_CONFIG_BROKER_SYNONYMS[name];
    if (brokerName && brokerSet)
      synonyms.push({ name: brokerName, value: brokerValue, source: ConfigSource.STATIC_BROKER_CONFIG });
    if (brokerName)
      synonyms.push({ name: brokerName, value: defaultValue, source: ConfigSource.DEFAULT_CONFIG });
    out.push({
      name,
      value: topicValue ?? brokerValue,
      readOnly: false,
      isDefault: topicValue === undefined,
      configSource:
        topicValue !== undefined
          ? ConfigSource.DYNAMIC_TOPIC_CONFIG
          : brokerSet
            ? ConfigSource.STATIC_BROKER_CONFIG
            : ConfigSource.DEFAULT_CONFIG,
      synonyms: includeSynonyms ? synonyms : [],
      configType: configType(name),
    });
  }
  return out;
}

function describeBrokerConfigs(broker: Broker, keys: string[] | null): DescribedConfig[] {
  const c = broker.config;
  const entries: [string, string, ConfigType][] = [
    ['node.id', String(c.nodeId), ConfigType.INT],
    ['broker.id', String(c.nodeId), ConfigType.INT],
    ['listeners', `PLAINTEXT://${c.host}:${broker.address.port || c.port}`, ConfigType.LIST],
    [
      'advertised.listeners',
      `PLAINTEXT://${broker.advertised.host}:${broker.advertised.port}`,
      ConfigType.LIST,
    ],
    ['log.dirs', c.dataDir, ConfigType.STRING],
    ['num.partitions', String(c.numPartitions), ConfigType.INT],
    ['default.replication.factor', String(c.defaultReplicationFactor), ConfigType.INT],
    ['auto.create.topics.enable', String(c.autoCreateTopicsEnable), ConfigType.BOOLEAN],
    ['delete.topic.enable', String(c.deleteTopicEnable), ConfigType.BOOLEAN],
    ['socket.request.max.bytes', String(c.socketRequestMaxBytes), ConfigType.INT],
    ['message.max.bytes', String(c.messageMaxBytes), ConfigType.INT],
    ['queued.max.request.bytes', String(c.queuedMaxRequestBytes), ConfigType.LONG],
    ['max.connections', String(c.maxConnections), ConfigType.INT],
    ['max.connections.per.ip', String(c.maxConnectionsPerIp), ConfigType.INT],
    ['log.retention.check.interval.ms', String(c.logRetentionCheckIntervalMs), ConfigType.LONG],
  ];
  for (const [topicName, brokerName] of Object.entries(TOPIC_CONFIG_BROKER_SYNONYMS)) {
    if (!entries.some((e) => e[0] === brokerName)) {
      entries.push([brokerName, c.topicDefaults[topicName as TopicConfigName], configType(topicName)]);
    }
  }
  return entries
    .filter(([name]) => !keys || keys.includes(name))
    .map(([name, value, type]) => ({
      name,
      value,
      readOnly: true,
      isDefault: false,
      configSource: ConfigSource.STATIC_BROKER_CONFIG,
      synonyms: [],
      configType: type,
    }));
}

export const describeConfigsHandler = defineHandler<Broker, ApiKey.DescribeConfigs>(
  ApiKey.DescribeConfigs,
  { min: 0, max: 4 },
  async (ctx, req) => {
    const broker = ctx.broker;
    const results = req.resources.map((res) => {
      const base = { resourceType: res.resourceType, resourceName: res.resourceName };
      let configs: DescribedConfig[];
      if (res.resourceType === RESOURCE_TOPIC) {
        const topic = broker.topics.get(res.resourceName);
        if (!topic)
          return {
            ...base,
            errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
            errorMessage: `Topic ${res.resourceName} does not exist`,
            configs: [],
          };
        configs = describeTopicConfigs(
          broker,
          topic.meta,
          res.configurationKeys,
          req.includeSynonyms,
          req.includeDocumentation,
        );
      } else if (res.resourceType === RESOURCE_BROKER) {
        if (res.resourceName !== '' && res.resourceName !== String(broker.nodeId)) {
          return {
            ...base,
            errorCode: ErrorCode.INVALID_REQUEST,
            errorMessage: `Unexpected broker id ${res.resourceName}`,
            configs: [],
          };
        }
        configs = describeBrokerConfigs(broker, res.configurationKeys);
      } else {
        return {
          ...base,
          errorCode: ErrorCode.INVALID_REQUEST,
          errorMessage: `Unsupported resource type ${res.resourceType}`,
          configs: [],
        };
      }
      const entries: Encodable<DescribeConfigsResourceResult>[] = configs.map((c) => ({
        name: c.name,
        value: c.value,
        readOnly: c.readOnly,
        isDefault: c.isDefault,
        configSource: c.configSource,
        isSensitive: false,
        synonyms: c.synonyms,
        configType: c.configType,
        documentation: null,
      }));
      return { ...base, errorCode: 0, errorMessage: null, configs: entries };
    });
    return { throttleTimeMs: 0, results };
  },
);
