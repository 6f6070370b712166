/**
 * The topics this broker hosts: names, ids, partition counts, per-topic configs and the open
 * partition logs.
 *
 * Topic metadata lives in `<dataDir>/topics.json`, replaced atomically (write, fsync, rename) on
 * every change, so a crash leaves either the old or the new file. Partition data lives in
 * `<dataDir>/<topic>-<partition>/`, Kafka's layout. The replicated cluster will move this
 * metadata into the Raft metadata log; this class is the seam where that happens.
 */

import { mkdir, open, readFile, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { TOPIC_NAME_MAX_LENGTH, newTopicId, validateTopicName } from '../metadata/names.js';
import { ErrorCode, KafkaError } from '../protocol/errors.js';
import { type LogConfig, PartitionLog } from '../storage/index.js';
import {
  type BrokerConfig,
  TOPIC_CONFIG_DEFAULTS,
  type TopicConfigName,
  type TopicConfigValues,
  validateTopicConfig,
} from './config.js';
import type { Logger } from './network.js';
import { Partition } from './partition.js';

export interface TopicMeta {
  name: string;
  /** 32 hex chars (a Kafka Uuid). */
  topicId: string;
  partitions: number;
  /** Only the configs set on the topic; the rest come from broker defaults. */
  configs: Partial<Record<TopicConfigName, string>>;
}

export interface Topic {
  meta: TopicMeta;
  /**
   * Indexed by partition number. On a single node every partition is here; in a cluster only the
   * partitions this broker holds a replica of (the others are holes: undefined).
   */
  partitions: (Partition | undefined)[];
}

export { newTopicId, TOPIC_NAME_MAX_LENGTH, validateTopicName };

/**
 * Creating, deleting and changing topics. On a single node the TopicManager does it (topics.json);
 * in a cluster every change goes through the controller (src/cluster/cluster-topic-admin.ts).
 * Handlers call `broker.topicAdmin`, and read topics from `broker.topics` either way.
 */
export interface TopicAdmin {
  validateCreate(
    name: string,
    partitions: number,
    replicationFactor: number,
    configs: [string, string][],
  ): KafkaError | null;
  create(
    name: string,
    partitions: number,
    configs?: [string, string][],
    replicationFactor?: number,
    assignments?: { partitionIndex: number; brokerIds: number[] }[],
  ): Promise<{ meta: TopicMeta; replicationFactor?: number }>;
  autoCreate(name: string): Promise<{ meta: TopicMeta } | null>;
  delete(name: string): Promise<void>;
  addPartitions(name: string, total: number, assignments?: number[][]): Promise<void>;
  setConfigs(name: string, configs: Partial<Record<TopicConfigName, string>>): Promise<void>;
}

export class TopicManager implements TopicAdmin {
  private readonly topics = new Map<string, Topic>();
  private readonly byId = new Map<string, Topic>();
  private persistChain: Promise<void> = Promise.resolve();

  constructor(
    private readonly config: BrokerConfig,
    private readonly log: Logger,
    private readonly nowMs: () => number = Date.now,
  ) {}

  private get metaPath(): string {
    return join(this.config.dataDir, 'topics.json');
  }

  effectiveConfig(meta: TopicMeta): TopicConfigValues {
    return { ...this.config.topicDefaults, ...meta.configs } as TopicConfigValues;
  }

  private logConfig(values: TopicConfigValues): LogConfig {
    return {
      segmentBytes: Number(values['segment.bytes']),
      segmentMs: Number(values['segment.ms']),
      retentionMs: Number(values['retention.ms']),
      retentionBytes: Number(values['retention.bytes']),
      indexIntervalBytes: Number(values['index.interval.bytes']),
      ...compactionConfig(values),
    };
  }

  async load(): Promise<void> {
    await mkdir(this.config.dataDir, { recursive: true });
    let metas: TopicMeta[] = [];
    try {
      metas = JSON.parse(await readFile(this.metaPath, 'utf8')) as TopicMeta[];
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    for (const meta of metas) {
      const topic: Topic = { meta, partitions: [] };
      for (let p = 0; p < meta.partitions; p++) topic.partitions.push(await this.openPartition(meta, p));
      this.topics.set(meta.name, topic);
      this.byId.set(meta.topicId, topic);
    }
  }

  private async openPartition(meta: TopicMeta, index: number): Promise<Partition> {
    const values = this.effectiveConfig(meta);
    const dir = join(this.config.dataDir, `${meta.name}-${index}`);
    const log = await PartitionLog.open(dir, this.logConfig(values), {
      logger: { warn: (m: string) => this.log.warn(`${meta.name}-${index}: ${m}`) },
    });
    const partition = new Partition(meta.name, index, log, values, this.nowMs);
    await partition.rebuildProducerState();
    return partition;
  }

  private persist(): Promise<void> {
    const text = JSON.stringify(
      [...this.topics.values()].map((t) => t.meta),
      null,
      1,
    );
    const run = async () => {
      const tmp = `${this.metaPath}.tmp`;
      const fh = await open(tmp, 'w');
      try {
        await fh.writeFile(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.metaPath);
    };
    this.persistChain = this.persistChain.then(run, run);
    return this.persistChain;
  }

  get(name: string): Topic | undefined {
    return this.topics.get(name);
  }
  getById(topicId: string): Topic | undefined {
    return this.byId.get(topicId);
  }
  list(): Topic[] {
    return [...this.topics.values()];
  }

  partition(topic: string, index: number): Partition | undefined {
    return this.topics.get(topic)?.partitions[index];
  }

  /** Validates a topic creation without applying it; returns the error to answer or null. */
  validateCreate(
    name: string,
    partitions: number,
    replicationFactor: number,
    configs: [string, string][],
  ): KafkaError | null {
    const nameErr = validateTopicName(name);
    if (nameErr) return new KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION, nameErr);
    if (this.topics.has(name))
      return new KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, `Topic '${name}' already exists.`);
    if (partitions !== -1 && partitions < 1)
      return new KafkaError(ErrorCode.INVALID_PARTITIONS, 'Number of partitions must be larger than 0.');
    if (partitions > 100000)
      return new KafkaError(ErrorCode.INVALID_PARTITIONS, 'Number of partitions must be at most 100000.');
    if (replicationFactor !== -1 && replicationFactor !== 1) {
      return new KafkaError(
        ErrorCode.INVALID_REPLICATION_FACTOR,
        `Unable to replicate the partition ${replicationFactor} time(s): The target replication factor of ${replicationFactor} cannot be reached because only 1 broker(s) are registered.`,
      );
    }
    for (const [k, v] of configs) {
      const err = validateTopicConfig(k, v);
      if (err) return new KafkaError(ErrorCode.INVALID_CONFIG, err);
    }
    return null;
  }

  async create(name: string, partitions: number, configs: [string, string][] = []): Promise<Topic> {
    const n = partitions === -1 ? this.config.numPartitions : partitions;
    const err = this.validateCreate(name, n, 1, configs);
    if (err) throw err;
    const meta: TopicMeta = { name, topicId: newTopicId(), partitions: n, configs: {} };
    for (const [k, v] of configs) meta.configs[k as TopicConfigName] = v;
    const topic: Topic = { meta, partitions: [] };
    // Registered before the logs open so a concurrent create of the same name sees it.
    this.topics.set(name, topic);
    this.byId.set(meta.topicId, topic);
    try {
      for (let p = 0; p < n; p++) topic.partitions.push(await this.openPartition(meta, p));
      await this.persist();
    } catch (e) {
      this.topics.delete(name);
      this.byId.delete(meta.topicId);
      throw e;
    }
    this.log.info(`created topic ${name} with ${n} partition(s)`);
    return topic;
  }

  /** Auto-creation on Metadata/Produce (auto.create.topics.enable); returns the topic or null. */
  async autoCreate(name: string): Promise<Topic | null> {
    const existing = this.topics.get(name);
    if (existing) return existing;
    if (!this.config.autoCreateTopicsEnable || validateTopicName(name) !== null) return null;
    // Internal topics are created by their owners with their own settings (group coordinator).
    if (name === '__consumer_offsets') return null;
    try {
      return await this.create(name, this.config.numPartitions);
    } catch (err) {
      if (err instanceof KafkaError && err.errorCode === ErrorCode.TOPIC_ALREADY_EXISTS)
        return this.topics.get(name) ?? null;
      throw err;
    }
  }

  async delete(name: string): Promise<void> {
    const topic = this.topics.get(name);
    if (!topic) throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    this.topics.delete(name);
    this.byId.delete(topic.meta.topicId);
    await this.persist();
    for (const p of local(topic)) {
      await p.log.close();
      await rm(join(this.config.dataDir, `${name}-${p.index}`), { recursive: true, force: true });
    }
    this.log.info(`deleted topic ${name}`);
  }

  async addPartitions(name: string, total: number): Promise<void> {
    const topic = this.topics.get(name);
    if (!topic) throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    const current = topic.meta.partitions;
    if (total <= current) {
      throw new KafkaError(
        ErrorCode.INVALID_PARTITIONS,
        `Topic currently has ${current} partitions, which is higher than the requested ${total}.`,
      );
    }
    for (let p = current; p < total; p++) topic.partitions.push(await this.openPartition(topic.meta, p));
    topic.meta.partitions = total;
    await this.persist();
  }

  /** Replaces (AlterConfigs) or edits (IncrementalAlterConfigs) a topic's configs. */
  async setConfigs(name: string, configs: Partial<Record<TopicConfigName, string>>): Promise<void> {
    const topic = this.topics.get(name);
    if (!topic) throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    topic.meta.configs = configs;
    const values = this.effectiveConfig(topic.meta);
    for (const p of local(topic)) {
      p.updateConfig(values);
      p.log.updateConfig(this.logConfig(values));
    }
    await this.persist();
  }

  /**
   * Applies retention (cleanup.policy contains delete) and compaction (contains compact) to every
   * partition; returns the number of segments deleted by retention.
   */
  async applyRetention(): Promise<number> {
    let deleted = 0;
    for (const t of this.topics.values()) {
      for (const p of local(t)) {
        deleted += await p.log.applyRetention(this.nowMs());
        if (p.log.config.compact) {
          try {
            const r = await p.log.clean(this.nowMs());
            if (r.cleaned && r.recordsRemoved > 0) {
              this.log.info(
                `compacted ${t.meta.name}-${p.index}: ${r.recordsRemoved} record(s) removed, ${r.bytesBefore} -> ${r.bytesAfter} bytes`,
              );
            }
          } catch (err) {
            this.log.error(`compaction of ${t.meta.name}-${p.index} failed: ${(err as Error).message}`);
          }
        }
      }
    }
    return deleted;
  }

  async close(): Promise<void> {
    await this.persistChain.catch(() => {});
    for (const t of this.topics.values()) for (const p of local(t)) await p.log.close();
  }

  // ---- cluster mode: the metadata image decides which topics exist ----------------------------

  /**
   * Makes the registry match a topic of the cluster's metadata image (name, id, partition count,
   * configs) without touching topics.json: in a cluster the Raft metadata log is the record.
   * Returns the topic; partitions this broker holds are opened with `openReplica`.
   */
  syncClusterTopic(meta: TopicMeta): Topic {
    let topic = this.topics.get(meta.name);
    if (topic && topic.meta.topicId !== meta.topicId) {
      throw new Error(
        `topic ${meta.name} changed id from ${topic.meta.topicId} to ${meta.topicId}; remove it first`,
      );
    }
    if (!topic) {
      topic = { meta: { ...meta, configs: { ...meta.configs } }, partitions: [] };
      this.topics.set(meta.name, topic);
      this.byId.set(meta.topicId, topic);
    } else {
      const configsChanged = JSON.stringify(topic.meta.configs) !== JSON.stringify(meta.configs);
      topic.meta.partitions = meta.partitions;
      topic.meta.configs = { ...meta.configs };
      if (configsChanged) {
        const values = this.effectiveConfig(topic.meta);
        for (const p of local(topic)) {
          p.updateConfig(values);
          p.log.updateConfig(this.logConfig(values));
        }
      }
    }
    topic.partitions.length = Math.max(topic.partitions.length, meta.partitions);
    return topic;
  }

  /** Opens (creating or recovering) this broker's replica of one partition of a cluster topic. */
  async openReplica(meta: TopicMeta, index: number): Promise<Partition> {
    const topic = this.syncClusterTopic(meta);
    const existing = topic.partitions[index];
    if (existing) return existing;
    const partition = await this.openPartition(topic.meta, index);
    // Not a leader until the replica manager attaches its replication state.
    partition.clusterReplica = true;
    topic.partitions[index] = partition;
    return partition;
  }

  /** Closes and deletes this broker's replica of a partition (it left the replica set). */
  async removeReplica(name: string, index: number): Promise<void> {
    const topic = this.topics.get(name);
    const p = topic?.partitions[index];
    if (!topic || !p) return;
    topic.partitions[index] = undefined;
    await p.log.close();
    await rm(join(this.config.dataDir, `${name}-${index}`), { recursive: true, force: true });
  }

  /** Forgets a cluster topic (RemoveTopic) and deletes its local replicas. */
  async removeClusterTopic(name: string): Promise<void> {
    const topic = this.topics.get(name);
    if (!topic) return;
    this.topics.delete(name);
    this.byId.delete(topic.meta.topicId);
    for (const p of local(topic)) {
      await p.log.close();
      await rm(join(this.config.dataDir, `${name}-${p.index}`), { recursive: true, force: true });
    }
    this.log.info(`deleted topic ${name}`);
  }

  /** Partition directories on disk that belong to no known topic (left by a deletion while down). */
  async strayPartitionDirs(): Promise<string[]> {
    const out: string[] = [];
    for (const e of await readdir(this.config.dataDir, { withFileTypes: true })) {
      const m = /^(.+)-(\d+)$/.exec(e.name);
      if (!e.isDirectory() || !m) continue;
      const t = this.topics.get(m[1]!);
      if (!t || !t.partitions[Number(m[2])]) out.push(e.name);
    }
    return out;
  }
}

/** The partitions of a topic this broker holds. */
export function local(topic: Topic): Partition[] {
  return topic.partitions.filter((p): p is Partition => p !== undefined);
}

/** The cleanup.policy and compaction settings of a topic, as the storage layer takes them. */
export function compactionConfig(
  values: TopicConfigValues,
): Pick<
  LogConfig,
  | 'cleanupDelete'
  | 'compact'
  | 'deleteRetentionMs'
  | 'minCompactionLagMs'
  | 'maxCompactionLagMs'
  | 'minCleanableDirtyRatio'
> {
  const policy = values['cleanup.policy'].split(',').map((s) => s.trim());
  // Kafka's Long.MAX_VALUE defaults do not fit a JS integer; clamp them to "never".
  const ms = (v: string) => Math.min(Math.max(Number(v), 0), Number.MAX_SAFE_INTEGER);
  return {
    cleanupDelete: policy.includes('delete'),
    compact: policy.includes('compact'),
    deleteRetentionMs: ms(values['delete.retention.ms']),
    minCompactionLagMs: ms(values['min.compaction.lag.ms']),
    maxCompactionLagMs: ms(values['max.compaction.lag.ms']),
    minCleanableDirtyRatio: Number(values['min.cleanable.dirty.ratio']),
  };
}

export { TOPIC_CONFIG_DEFAULTS };
