/**
 * Broker and topic configuration, under Kafka's own names.
 *
 * Broker settings come from defaults, then an optional properties file (`--config FILE`, the
 * server.properties format), then command-line flags. Topic settings are Kafka's topic-level
 * configs; a topic stores only what was set on it and falls back to the broker default.
 */

import { readFileSync } from 'node:fs';

export interface BrokerConfig {
  nodeId: number;
  host: string;
  port: number;
  /** Host clients are told to connect to (advertised.listeners); defaults to `host`. */
  advertisedHost: string;
  advertisedPort: number;
  dataDir: string;
  clusterId: string;
  metricsHost: string;
  /** Port of the Prometheus endpoint; 0 picks a free port, -1 disables it. */
  metricsPort: number;
  socketRequestMaxBytes: number;
  messageMaxBytes: number;
  queuedMaxRequestBytes: number;
  maxConnections: number;
  maxConnectionsPerIp: number;
  /** Upper bound on requests being processed per connection before reading pauses. */
  maxInflightRequestsPerConnection: number;
  numPartitions: number;
  defaultReplicationFactor: number;
  autoCreateTopicsEnable: boolean;
  deleteTopicEnable: boolean;
  logRetentionCheckIntervalMs: number;
  /** Kafka's log.flush.interval.messages: 1 fsyncs before acknowledging any produce. */
  logFlushIntervalMessages: number;
  /** Topic defaults (log.* broker settings), keyed by the topic config name. */
  topicDefaults: TopicConfigValues;
  /** Group coordinator (Kafka's names): group.initial.rebalance.delay.ms, ... */
  groupInitialRebalanceDelayMs: number;
  groupMinSessionTimeoutMs: number;
  groupMaxSessionTimeoutMs: number;
  groupMaxSize: number;
  offsetsTopicNumPartitions: number;
  offsetsRetentionMs: number;
  offsetsRetentionCheckIntervalMs: number;
  offsetMetadataMaxBytes: number;
  /** KIP-848 consumer groups: group.consumer.heartbeat.interval.ms, .session.timeout.ms, .max.size, .assignors. */
  groupConsumerHeartbeatIntervalMs: number;
  groupConsumerSessionTimeoutMs: number;
  groupConsumerMaxSize: number;
  groupConsumerAssignors: string[];
  /**
   * Cluster mode (KRaft-style combined mode). `controller.quorum.voters` (`1@host:port,...`) lists
   * every voter's controller address; empty means a single node with no quorum (the default).
   */
  voters: { id: number; host: string; port: number }[];
  /** Where this node's controller (Raft) listener binds (`controller.listen`); defaults to its voter entry. */
  controllerHost: string;
  controllerPort: number;
  /** broker.rack: rack-aware replica placement. */
  brokerRack: string | null;
  /** broker.session.timeout.ms: a broker silent for this long is fenced and loses its leaderships. */
  brokerSessionTimeoutMs: number;
  /** broker.heartbeat.interval.ms */
  brokerHeartbeatIntervalMs: number;
  /** replica.lag.time.max.ms: a follower not caught up for this long leaves the ISR. */
  replicaLagTimeMaxMs: number;
  /** replica.fetch.max.bytes (per partition), replica.fetch.wait.max.ms */
  replicaFetchMaxBytes: number;
  replicaFetchWaitMaxMs: number;
  /** offsets.topic.replication.factor (capped to the brokers registered when it is created). */
  offsetsTopicReplicationFactor: number;
  /** Raft timing: controller.quorum.election.timeout.ms (the minimum; up to 2x), fetch/heartbeat tick. */
  controllerQuorumElectionTimeoutMs: number;
  /**
   * node.local.address (Sluice's own): the local IP this node's connections to the other nodes
   * (Raft, replica fetches, controller requests) come from. Unset: the OS chooses. Lets a
   * fault-injecting proxy tell nodes apart (scripts/chaos), or pins traffic to one interface.
   */
  localAddress?: string;
}

/** Topic-level configs Sluice understands, with Kafka's names and defaults. */
export const TOPIC_CONFIG_DEFAULTS = {
  'cleanup.policy': 'delete',
  'compression.gzip.level': '-1',
  'compression.lz4.level': '9',
  'compression.type': 'producer',
  'compression.zstd.level': '3',
  'delete.retention.ms': '86400000',
  'errors.deadletterqueue.group.enable': 'false',
  'file.delete.delay.ms': '60000',
  'flush.messages': '9223372036854775807',
  'flush.ms': '9223372036854775807',
  'follower.replication.throttled.replicas': '',
  'index.interval.bytes': '4096',
  'leader.replication.throttled.replicas': '',
  'local.retention.bytes': '-2',
  'local.retention.ms': '-2',
  'max.compaction.lag.ms': '9223372036854775807',
  'max.decompressed.message.bytes': '2147483639',
  'max.message.bytes': '1048588',
  'message.timestamp.after.max.ms': '3600000',
  'message.timestamp.before.max.ms': '9223372036854775807',
  'message.timestamp.type': 'CreateTime',
  'min.cleanable.dirty.ratio': '0.5',
  'min.compaction.lag.ms': '0',
  'min.insync.replicas': '1',
  preallocate: 'false',
  'remote.copy.lag.bytes': '-1',
  'remote.copy.lag.ms': '0',
  'remote.log.copy.disable': 'false',
  'remote.log.delete.on.disable': 'false',
  'remote.storage.enable': 'false',
  'retention.bytes': '-1',
  'retention.ms': '604800000',
  'segment.bytes': '1073741824',
  'segment.index.bytes': '10485760',
  'segment.jitter.ms': '0',
  'segment.ms': '604800000',
  'unclean.leader.election.enable': 'false',
} as const satisfies Record<string, string>;

export type TopicConfigName = keyof typeof TOPIC_CONFIG_DEFAULTS;
export type TopicConfigValues = Record<TopicConfigName, string>;

/** The broker setting (log.*) that supplies each topic config's default, as Kafka maps them. */
export const TOPIC_CONFIG_BROKER_SYNONYMS: Partial<Record<TopicConfigName, string>> = {
  'cleanup.policy': 'log.cleanup.policy',
  'retention.ms': 'log.retention.ms',
  'retention.bytes': 'log.retention.bytes',
  'segment.bytes': 'log.segment.bytes',
  'segment.ms': 'log.roll.ms',
  'index.interval.bytes': 'log.index.interval.bytes',
  'max.message.bytes': 'message.max.bytes',
  'min.insync.replicas': 'min.insync.replicas',
  'compression.type': 'compression.type',
  'flush.messages': 'log.flush.interval.messages',
  'message.timestamp.type': 'log.message.timestamp.type',
  'delete.retention.ms': 'log.cleaner.delete.retention.ms',
  'unclean.leader.election.enable': 'unclean.leader.election.enable',
};

export class ConfigError extends Error {
  readonly code = 'CONFIG_ERROR';
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

function isInt(v: string): boolean {
  return /^-?\d+$/.test(v);
}

/** Validates one topic config value; returns an error message or null. */
export function validateTopicConfig(name: string, value: string): string | null {
  if (!(name in TOPIC_CONFIG_DEFAULTS)) return `Unknown topic config name: ${name}`;
  switch (name as TopicConfigName) {
    case 'cleanup.policy': {
      const parts = value.split(',').map((s) => s.trim());
      if (parts.length === 0 || parts.some((p) => p !== 'delete' && p !== 'compact')) {
        return `Invalid value ${value} for configuration cleanup.policy: must be delete, compact or both`;
      }
      return null;
    }
    case 'compression.type':
      return ['producer', 'uncompressed', 'gzip', 'snappy', 'lz4', 'zstd'].includes(value)
        ? null
        : `Invalid value ${value} for configuration compression.type`;
    case 'message.timestamp.type':
      return value === 'CreateTime' || value === 'LogAppendTime'
        ? null
        : `Invalid value ${value} for configuration message.timestamp.type`;
    case 'remote.storage.enable':
      if (value === 'true') return 'Tiered storage (remote.storage.enable=true) is not supported by Sluice';
      return value === 'false'
        ? null
        : `Invalid value ${value} for configuration ${name}: expected true or false`;
    case 'follower.replication.throttled.replicas':
    case 'leader.replication.throttled.replicas':
      return /^(|\*|\d+:\d+(,\d+:\d+)*)$/.test(value.replace(/\s/g, ''))
        ? null
        : `Invalid value ${value} for configuration ${name}`;
    case 'compression.gzip.level': {
      const n = Number(value);
      return isInt(value) && (n === -1 || (n >= 1 && n <= 9))
        ? null
        : `Invalid value ${value} for configuration ${name}: must be -1 or in [1,...,9]`;
    }
    case 'compression.lz4.level': {
      const n = Number(value);
      return isInt(value) && n >= 1 && n <= 17
        ? null
        : `Invalid value ${value} for configuration ${name}: must be in [1,...,17]`;
    }
    case 'compression.zstd.level': {
      const n = Number(value);
      return isInt(value) && n >= -131072 && n <= 22
        ? null
        : `Invalid value ${value} for configuration ${name}: must be in [-131072,...,22]`;
    }
    case 'errors.deadletterqueue.group.enable':
    case 'remote.log.copy.disable':
    case 'remote.log.delete.on.disable':
    case 'preallocate':
    case 'unclean.leader.election.enable':
      return value === 'true' || value === 'false'
        ? null
        : `Invalid value ${value} for configuration ${name}: expected true or false`;
    case 'min.cleanable.dirty.ratio': {
      const n = Number(value);
      return Number.isFinite(n) && n >= 0 && n <= 1
        ? null
        : `Invalid value ${value} for configuration ${name}`;
    }
    case 'segment.bytes':
      if (!isInt(value) || Number(value) < 14)
        return `Invalid value ${value} for configuration segment.bytes: Value must be at least 14`;
      return null;
    case 'min.insync.replicas':
    case 'max.message.bytes':
    case 'index.interval.bytes':
      if (!isInt(value) || Number(value) < (name === 'min.insync.replicas' ? 1 : 0))
        return `Invalid value ${value} for configuration ${name}`;
      return null;
    default:
      return isInt(value)
        ? null
        : `Invalid value ${value} for configuration ${name}: Not a number of type LONG`;
  }
}

export function defaultBrokerConfig(): BrokerConfig {
  return {
    nodeId: 1,
    host: '127.0.0.1',
    port: 9092,
    advertisedHost: '127.0.0.1',
    advertisedPort: 9092,
    dataDir: './sluice-data',
    clusterId: '',
    metricsHost: '127.0.0.1',
    metricsPort: 9464,
    socketRequestMaxBytes: 104857600,
    messageMaxBytes: 1048588,
    queuedMaxRequestBytes: 104857600,
    maxConnections: 10000,
    maxConnectionsPerIp: 10000,
    maxInflightRequestsPerConnection: 100,
    numPartitions: 1,
    defaultReplicationFactor: 1,
    autoCreateTopicsEnable: true,
    deleteTopicEnable: true,
    logRetentionCheckIntervalMs: 300000,
    logFlushIntervalMessages: Number.MAX_SAFE_INTEGER,
    topicDefaults: { ...TOPIC_CONFIG_DEFAULTS },
    groupInitialRebalanceDelayMs: 3000,
    groupMinSessionTimeoutMs: 6000,
    groupMaxSessionTimeoutMs: 1800000,
    groupMaxSize: 2147483647,
    offsetsTopicNumPartitions: 50,
    offsetsRetentionMs: 604800000,
    offsetsRetentionCheckIntervalMs: 600000,
    offsetMetadataMaxBytes: 4096,
    groupConsumerHeartbeatIntervalMs: 5000,
    groupConsumerSessionTimeoutMs: 45000,
    groupConsumerMaxSize: 2147483647,
    groupConsumerAssignors: ['uniform', 'range'],
    voters: [],
    controllerHost: '',
    controllerPort: 0,
    brokerRack: null,
    brokerSessionTimeoutMs: 9000,
    brokerHeartbeatIntervalMs: 2000,
    replicaLagTimeMaxMs: 30000,
    replicaFetchMaxBytes: 1048576,
    replicaFetchWaitMaxMs: 500,
    offsetsTopicReplicationFactor: 3,
    controllerQuorumElectionTimeoutMs: 1000,
  };
}

/** Parses Java-properties text (`key=value`, `#` comments) into a map. */
export function parseProperties(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith('!')) continue;
    const m = /^([^=:\s]+)\s*[=:\s]\s*(.*)$/.exec(line);
    if (!m) throw new ConfigError(`cannot parse config line: ${raw}`);
    out.set(m[1]!, m[2]!);
  }
  return out;
}

function intSetting(key: string, v: string): number {
  if (!isInt(v)) throw new ConfigError(`${key} must be an integer, got "${v}"`);
  return Number(v);
}

function parseHostPort(key: string, v: string): { host: string; port: number } {
  const s = v.replace(/^[A-Z_]+:\/\//, '');
  const i = s.lastIndexOf(':');
  if (i < 0) throw new ConfigError(`${key} must be HOST:PORT, got "${v}"`);
  return { host: s.slice(0, i) || '0.0.0.0', port: intSetting(key, s.slice(i + 1)) };
}

/** Applies Kafka-named settings (from a file or --set) onto a config. Unknown keys are rejected. */
export function applySettings(cfg: BrokerConfig, settings: Map<string, string>): BrokerConfig {
  let advertisedSet = false;
  for (const [key, v] of settings) {
    switch (key) {
      case 'node.id':
      case 'broker.id':
        cfg.nodeId = intSetting(key, v);
        break;
      case 'listeners': {
        const hp = parseHostPort(key, v.split(',')[0]!);
        cfg.host = hp.host;
        cfg.port = hp.port;
        break;
      }
      case 'advertised.listeners': {
        const hp = parseHostPort(key, v.split(',')[0]!);
        cfg.advertisedHost = hp.host;
        cfg.advertisedPort = hp.port;
        advertisedSet = true;
        break;
      }
      case 'log.dirs':
      case 'log.dir':
        cfg.dataDir = v.split(',')[0]!;
        break;
      case 'cluster.id':
        cfg.clusterId = v;
        break;
      case 'metrics.listen': {
        const hp = parseHostPort(key, v);
        cfg.metricsHost = hp.host;
        cfg.metricsPort = hp.port;
        break;
      }
      case 'socket.request.max.bytes':
        cfg.socketRequestMaxBytes = intSetting(key, v);
        break;
      case 'message.max.bytes':
        cfg.messageMaxBytes = intSetting(key, v);
        cfg.topicDefaults['max.message.bytes'] = v;
        break;
      case 'queued.max.request.bytes':
        cfg.queuedMaxRequestBytes = intSetting(key, v);
        break;
      case 'max.connections':
        cfg.maxConnections = intSetting(key, v);
        break;
      case 'max.connections.per.ip':
        cfg.maxConnectionsPerIp = intSetting(key, v);
        break;
      case 'num.partitions':
        cfg.numPartitions = intSetting(key, v);
        break;
      case 'default.replication.factor':
        cfg.defaultReplicationFactor = intSetting(key, v);
        break;
      case 'auto.create.topics.enable':
        cfg.autoCreateTopicsEnable = v === 'true';
        break;
      case 'delete.topic.enable':
        cfg.deleteTopicEnable = v === 'true';
        break;
      case 'log.retention.check.interval.ms':
        cfg.logRetentionCheckIntervalMs = intSetting(key, v);
        break;
      case 'log.retention.hours':
        cfg.topicDefaults['retention.ms'] = String(intSetting(key, v) * 3600000);
        break;
      case 'log.retention.minutes':
        cfg.topicDefaults['retention.ms'] = String(intSetting(key, v) * 60000);
        break;
      case 'log.roll.hours':
        cfg.topicDefaults['segment.ms'] = String(intSetting(key, v) * 3600000);
        break;
      case 'group.initial.rebalance.delay.ms':
        cfg.groupInitialRebalanceDelayMs = intSetting(key, v);
        break;
      case 'group.min.session.timeout.ms':
        cfg.groupMinSessionTimeoutMs = intSetting(key, v);
        break;
      case 'group.max.session.timeout.ms':
        cfg.groupMaxSessionTimeoutMs = intSetting(key, v);
        break;
      case 'group.max.size':
        cfg.groupMaxSize = intSetting(key, v);
        if (cfg.groupMaxSize < 1) throw new ConfigError(`group.max.size must be at least 1, got "${v}"`);
        break;
      case 'offsets.topic.num.partitions':
        cfg.offsetsTopicNumPartitions = intSetting(key, v);
        if (cfg.offsetsTopicNumPartitions < 1)
          throw new ConfigError(`offsets.topic.num.partitions must be at least 1, got "${v}"`);
        break;
      case 'offsets.retention.ms':
        cfg.offsetsRetentionMs = intSetting(key, v);
        break;
      case 'offsets.retention.minutes':
        cfg.offsetsRetentionMs = intSetting(key, v) * 60000;
        break;
      case 'offsets.retention.check.interval.ms':
        cfg.offsetsRetentionCheckIntervalMs = intSetting(key, v);
        break;
      case 'group.consumer.heartbeat.interval.ms':
        cfg.groupConsumerHeartbeatIntervalMs = intSetting(key, v);
        break;
      case 'group.consumer.session.timeout.ms':
        cfg.groupConsumerSessionTimeoutMs = intSetting(key, v);
        break;
      case 'group.consumer.max.size':
        cfg.groupConsumerMaxSize = intSetting(key, v);
        break;
      case 'group.consumer.assignors': {
        const names = v
          .split(',')
          .map((a) =>
            a
              .trim()
              .replace(/^org\.apache\.kafka\.coordinator\.group\.assignor\.(\w+)Assignor$/, (_, n: string) =>
                n.toLowerCase(),
              ),
          );
        for (const n of names)
          if (n !== 'uniform' && n !== 'range')
            throw new ConfigError(`group.consumer.assignors: unknown assignor "${n}" (uniform, range)`);
        cfg.groupConsumerAssignors = names;
        break;
      }
      case 'controller.quorum.voters':
        cfg.voters = parseVoters(key, v);
        break;
      case 'controller.listen': {
        const hp = parseHostPort(key, v);
        cfg.controllerHost = hp.host;
        cfg.controllerPort = hp.port;
        break;
      }
      case 'node.local.address':
        if (!/^[0-9a-fA-F.:]+$/.test(v))
          throw new ConfigError(`node.local.address must be an IP address, got "${v}"`);
        cfg.localAddress = v;
        break;
      case 'broker.rack':
        cfg.brokerRack = v === '' ? null : v;
        break;
      case 'broker.session.timeout.ms':
        cfg.brokerSessionTimeoutMs = intSetting(key, v);
        break;
      case 'broker.heartbeat.interval.ms':
        cfg.brokerHeartbeatIntervalMs = intSetting(key, v);
        break;
      case 'replica.lag.time.max.ms':
        cfg.replicaLagTimeMaxMs = intSetting(key, v);
        break;
      case 'replica.fetch.max.bytes':
        cfg.replicaFetchMaxBytes = intSetting(key, v);
        break;
      case 'replica.fetch.wait.max.ms':
        cfg.replicaFetchWaitMaxMs = intSetting(key, v);
        break;
      case 'offsets.topic.replication.factor':
        cfg.offsetsTopicReplicationFactor = intSetting(key, v);
        if (cfg.offsetsTopicReplicationFactor < 1)
          throw new ConfigError(`offsets.topic.replication.factor must be at least 1, got "${v}"`);
        break;
      case 'controller.quorum.election.timeout.ms':
        cfg.controllerQuorumElectionTimeoutMs = intSetting(key, v);
        break;
      case 'offset.metadata.max.bytes':
        cfg.offsetMetadataMaxBytes = intSetting(key, v);
        break;
      case 'log.flush.interval.messages':
        cfg.logFlushIntervalMessages = intSetting(key, v);
        cfg.topicDefaults['flush.messages'] = v;
        break;
      default: {
        const topicKey = (Object.entries(TOPIC_CONFIG_BROKER_SYNONYMS) as [TopicConfigName, string][]).find(
          ([, b]) => b === key,
        )?.[0];
        if (!topicKey)
          throw new ConfigError(
            `unknown broker config "${key}" (see docs/operations.md for the supported names)`,
          );
        const err = validateTopicConfig(topicKey, v);
        if (err) throw new ConfigError(err);
        cfg.topicDefaults[topicKey] = v;
      }
    }
  }
  if (!advertisedSet) {
    cfg.advertisedHost = cfg.host === '0.0.0.0' ? '127.0.0.1' : cfg.host;
    cfg.advertisedPort = cfg.port;
  }
  if (cfg.voters.length > 0) {
    const self = cfg.voters.find((v) => v.id === cfg.nodeId);
    if (!self)
      throw new ConfigError(
        `controller.quorum.voters (${cfg.voters.map((v) => `${v.id}@${v.host}:${v.port}`).join(',')}) does not name this node (node.id ${cfg.nodeId}); every Sluice node in a cluster is a voter`,
      );
    if (cfg.controllerPort === 0 && cfg.controllerHost === '') {
      cfg.controllerHost = self.host;
      cfg.controllerPort = self.port;
    }
  }
  return cfg;
}

/** `controller.quorum.voters`: `ID@HOST:PORT` entries separated by commas (Kafka's format). */
export function parseVoters(key: string, v: string): { id: number; host: string; port: number }[] {
  const out: { id: number; host: string; port: number }[] = [];
  for (const part of v
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '')) {
    const m = /^(\d+)@(.+)$/.exec(part);
    if (!m) throw new ConfigError(`${key} entries must be ID@HOST:PORT, got "${part}"`);
    const id = Number(m[1]);
    if (out.some((o) => o.id === id)) throw new ConfigError(`${key} names node ${id} twice`);
    out.push({ id, ...parseHostPort(key, m[2]!) });
  }
  return out;
}

export function loadConfigFile(path: string): Map<string, string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  return parseProperties(text);
}
