/**
 * Admin operations: topics, configs, partitions, offsets and record deletion. Each call sends
 * one request (to the controller for topic-level changes, to the partition leader for offsets
 * and record deletion) and turns per-item error codes into KafkaResponseErrors.
 *
 * Invariants: a successful call returns only after the broker confirmed it; partition-level
 * calls that hit a stale leader refresh metadata and retry once.
 */

import { ZERO_UUID } from '../protocol/codec-support.js';
import { ErrorCode } from '../protocol/errors.js';
import { ApiKey } from '../protocol/generated/index.js';
import { Cluster, type ClusterOptions, type PartitionMetadata } from './cluster.js';
import { InvalidArgumentError, KafkaResponseError, kafkaError, needsMetadataRefresh } from './errors.js';

/** ListOffsets special timestamps. */
export const LATEST_OFFSET = -1;
export const EARLIEST_OFFSET = -2;

const RESOURCE_TOPIC = 2;
const OP_SET = 0;
const OP_DELETE = 1;

/** DescribeConfigs config sources (KIP-226). */
export enum ConfigSource {
  UNKNOWN = 0,
  DYNAMIC_TOPIC_CONFIG = 1,
  DYNAMIC_BROKER_CONFIG = 2,
  DYNAMIC_DEFAULT_BROKER_CONFIG = 3,
  STATIC_BROKER_CONFIG = 4,
  DEFAULT_CONFIG = 5,
}

export interface CreateTopicOptions {
  /** -1 (default): the broker's num.partitions. */
  partitions?: number;
  /** -1 (default): the broker's default.replication.factor. */
  replicationFactor?: number;
  configs?: Record<string, string>;
  validateOnly?: boolean;
}

export interface CreatedTopic {
  name: string;
  topicId: string;
  partitions: number;
  replicationFactor: number;
}

export interface TopicListing {
  name: string;
  topicId: string;
  partitions: number;
  isInternal: boolean;
}

export interface ConfigEntry {
  name: string;
  value: string | null;
  source: ConfigSource;
  /** True when the value is not set on the topic itself (broker setting or built-in default). */
  isDefault: boolean;
  readOnly: boolean;
  isSensitive: boolean;
}

export interface PartitionDescription {
  partition: number;
  leader: number;
  leaderEpoch: number;
  replicas: number[];
  isr: number[];
  logStartOffset: number;
  logEndOffset: number;
}

export interface TopicDescription {
  name: string;
  topicId: string;
  isInternal: boolean;
  partitions: PartitionDescription[];
  configs: ConfigEntry[];
}

export interface OffsetAndTimestamp {
  offset: number;
  timestamp: number;
}

export class Admin {
  readonly cluster: Cluster;
  private readonly ownsCluster: boolean;

  constructor(options: ClusterOptions | { cluster: Cluster }) {
    if ('cluster' in options) {
      this.cluster = options.cluster;
      this.ownsCluster = false;
    } else {
      this.cluster = new Cluster(options);
      this.ownsCluster = true;
    }
  }

  /** Checks a broker answers (and fetches cluster metadata). */
  async connect(): Promise<void> {
    await this.cluster.refreshMetadata([]);
  }

  async close(): Promise<void> {
    if (this.ownsCluster) await this.cluster.close();
  }

  async createTopic(name: string, options: CreateTopicOptions = {}): Promise<CreatedTopic> {
    const [created] = await this.createTopics([{ name, ...options }]);
    return created!;
  }

  /** Creates topics; throws the first per-topic error (TOPIC_ALREADY_EXISTS, INVALID_CONFIG, ...). */
  async createTopics(topics: (CreateTopicOptions & { name: string })[]): Promise<CreatedTopic[]> {
    const conn = await this.cluster.controllerConnection();
    const res = await conn.send(ApiKey.CreateTopics, {
      topics: topics.map((t) => ({
        name: t.name,
        numPartitions: t.partitions ?? -1,
        replicationFactor: t.replicationFactor ?? -1,
        assignments: [],
        configs: Object.entries(t.configs ?? {}).map(([k, v]) => ({ name: k, value: v })),
      })),
      timeoutMs: conn.requestTimeoutMs,
      validateOnly: topics.some((t) => t.validateOnly === true),
    });
    return res.topics.map((r) => {
      if (r.errorCode !== 0) throw kafkaError(r.errorCode, `topic "${r.name}"`, r.errorMessage);
      this.cluster.invalidate(r.name);
      const asked = topics.find((t) => t.name === r.name);
      return {
        name: r.name,
        topicId: r.topicId,
        partitions: r.numPartitions >= 0 ? r.numPartitions : (asked?.partitions ?? -1),
        replicationFactor: r.replicationFactor >= 0 ? r.replicationFactor : (asked?.replicationFactor ?? -1),
      };
    });
  }

  async deleteTopics(names: string[]): Promise<void> {
    const conn = await this.cluster.controllerConnection();
    const res = await conn.send(ApiKey.DeleteTopics, {
      topics: names.map((name) => ({ name, topicId: ZERO_UUID })),
      topicNames: names,
      timeoutMs: conn.requestTimeoutMs,
    });
    for (const r of res.responses) {
      if (r.name !== null) this.cluster.invalidate(r.name);
      if (r.errorCode !== 0) throw kafkaError(r.errorCode, `topic "${r.name ?? r.topicId}"`, r.errorMessage);
    }
  }

  /** All topics, sorted by name. Internal topics (names starting "__") are included only if asked. */
  async listTopics(options: { includeInternal?: boolean } = {}): Promise<TopicListing[]> {
    await this.cluster.refreshMetadata(null);
    return [...this.cluster.topics.values()]
      .filter((t) => options.includeInternal || !t.isInternal)
      .map((t) => ({
        name: t.name,
        topicId: t.topicId,
        partitions: t.partitions.length,
        isInternal: t.isInternal,
      }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Partitions with leaders, replicas, ISR and log start/end offsets, plus the topic's configs. */
  async describeTopic(name: string): Promise<TopicDescription> {
    const meta = await this.cluster.topic(name, { refresh: true });
    const parts = meta.partitions.map((p) => p.partition);
    const [starts, ends, configs] = await Promise.all([
      this.listOffsetsMany(name, parts, EARLIEST_OFFSET),
      this.listOffsetsMany(name, parts, LATEST_OFFSET),
      this.describeConfigs(name),
    ]);
    return {
      name: meta.name,
      topicId: meta.topicId,
      isInternal: meta.isInternal,
      partitions: meta.partitions.map((p: PartitionMetadata) => ({
        partition: p.partition,
        leader: p.leader,
        leaderEpoch: p.leaderEpoch,
        replicas: p.replicas,
        isr: p.isr,
        logStartOffset: starts.get(p.partition)?.offset ?? -1,
        logEndOffset: ends.get(p.partition)?.offset ?? -1,
      })),
      configs,
    };
  }

  /** A topic's configs (all of them; filter on `isDefault` or `source` for the overridden ones). */
  async describeConfigs(topic: string): Promise<ConfigEntry[]> {
    const conn = await this.cluster.anyConnection();
    const res = await conn.send(ApiKey.DescribeConfigs, {
      resources: [{ resourceType: RESOURCE_TOPIC, resourceName: topic, configurationKeys: null }],
      includeSynonyms: false,
      includeDocumentation: false,
    });
    const r = res.results[0];
    if (!r)
      throw new KafkaResponseError(
        ErrorCode.UNKNOWN_SERVER_ERROR,
        `DescribeConfigs for topic "${topic}" returned no result`,
      );
    if (r.errorCode !== 0) throw kafkaError(r.errorCode, `topic "${topic}"`, r.errorMessage);
    const v0 = conn.versionFor(ApiKey.DescribeConfigs) === 0;
    return r.configs
      .map((c) => {
        const source: ConfigSource = v0
          ? c.isDefault
            ? ConfigSource.DEFAULT_CONFIG
            : ConfigSource.DYNAMIC_TOPIC_CONFIG
          : (c.configSource as ConfigSource);
        return {
          name: c.name,
          value: c.value,
          source,
          isDefault: source !== ConfigSource.DYNAMIC_TOPIC_CONFIG,
          readOnly: c.readOnly,
          isSensitive: c.isSensitive,
        };
      })
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * Changes topic configs with IncrementalAlterConfigs: a string value is SET, null DELETEs the
   * override (back to the default). Other configs are left as they are.
   */
  async alterConfigs(topic: string, changes: Record<string, string | null>): Promise<void> {
    const entries = Object.entries(changes);
    if (entries.length === 0) throw new InvalidArgumentError('no config changes given');
    const conn = await this.cluster.controllerConnection();
    const res = await conn.send(ApiKey.IncrementalAlterConfigs, {
      resources: [
        {
          resourceType: RESOURCE_TOPIC,
          resourceName: topic,
          configs: entries.map(([name, value]) => ({
            name,
            value,
            configOperation: value === null ? OP_DELETE : OP_SET,
          })),
        },
      ],
      validateOnly: false,
    });
    for (const r of res.responses) {
      if (r.errorCode !== 0) throw kafkaError(r.errorCode, `topic "${topic}"`, r.errorMessage);
    }
  }

  /** Grows a topic to `totalCount` partitions. */
  async createPartitions(topic: string, totalCount: number): Promise<void> {
    const conn = await this.cluster.controllerConnection();
    const res = await conn.send(ApiKey.CreatePartitions, {
      topics: [{ name: topic, count: totalCount, assignments: null }],
      timeoutMs: conn.requestTimeoutMs,
      validateOnly: false,
    });
    for (const r of res.results) {
      if (r.errorCode !== 0) throw kafkaError(r.errorCode, `topic "${topic}"`, r.errorMessage);
    }
    this.cluster.invalidate(topic);
  }

  /**
   * Deletes records below the given offset per partition (-1: up to the high watermark).
   * Returns each partition's new log start offset (low watermark).
   */
  async deleteRecords(
    topic: string,
    offsets: Record<number, number> | Map<number, number>,
  ): Promise<Map<number, number>> {
    const entries =
      offsets instanceof Map
        ? [...offsets]
        : Object.entries(offsets).map(([p, o]) => [Number(p), o] as [number, number]);
    const out = new Map<number, number>();
    await this.perLeader(
      topic,
      entries.map(([p]) => p),
      async (conn, parts) => {
        const res = await conn.send(ApiKey.DeleteRecords, {
          topics: [
            {
              name: topic,
              partitions: parts.map((p) => ({
                partitionIndex: p,
                offset: entries.find(([q]) => q === p)![1],
              })),
            },
          ],
          timeoutMs: conn.requestTimeoutMs,
        });
        for (const t of res.topics) {
          for (const p of t.partitions) {
            if (p.errorCode !== 0)
              throw kafkaError(p.errorCode, `partition ${p.partitionIndex} of topic "${topic}"`);
            out.set(p.partitionIndex, p.lowWatermark);
          }
        }
      },
    );
    return out;
  }

  /**
   * The offset for a timestamp in one partition: -1 latest (high watermark), -2 earliest (log
   * start), -3 max timestamp, or a time in ms (first record at or after it; offset -1 if none).
   */
  async listOffsets(topic: string, partition: number, timestamp: number): Promise<OffsetAndTimestamp> {
    const m = await this.listOffsetsMany(topic, [partition], timestamp);
    return m.get(partition)!;
  }

  /** listOffsets for several partitions of a topic at once. */
  async listOffsetsMany(
    topic: string,
    partitions: number[],
    timestamp: number,
  ): Promise<Map<number, OffsetAndTimestamp>> {
    const out = new Map<number, OffsetAndTimestamp>();
    await this.perLeader(topic, partitions, async (conn, parts) => {
      const version = conn.versionFor(ApiKey.ListOffsets);
      const res = await conn.send(ApiKey.ListOffsets, {
        replicaId: -1,
        isolationLevel: 0,
        timeoutMs: conn.requestTimeoutMs,
        topics: [
          {
            name: topic,
            partitions: parts.map((p) => ({
              partitionIndex: p,
              currentLeaderEpoch: -1,
              timestamp,
              maxNumOffsets: 1,
            })),
          },
        ],
      });
      for (const t of res.topics) {
        for (const p of t.partitions) {
          if (p.errorCode !== 0)
            throw kafkaError(p.errorCode, `partition ${p.partitionIndex} of topic "${topic}"`);
          const offset = version === 0 ? (p.oldStyleOffsets[0] ?? -1) : p.offset;
          out.set(p.partitionIndex, { offset, timestamp: p.timestamp });
        }
      }
    });
    return out;
  }

  /** Groups partitions by leader and runs `fn` per leader; a stale leader refreshes and retries once. */
  private async perLeader(
    topic: string,
    partitions: number[],
    fn: (conn: Awaited<ReturnType<Cluster['connectionTo']>>, parts: number[]) => Promise<void>,
  ): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        const byLeader = new Map<number, number[]>();
        for (const p of partitions) {
          const leader = await this.cluster.leaderOf(topic, p);
          const list = byLeader.get(leader) ?? [];
          list.push(p);
          byLeader.set(leader, list);
        }
        await Promise.all(
          [...byLeader].map(async ([leader, parts]) => fn(await this.cluster.connectionTo(leader), parts)),
        );
        return;
      } catch (err) {
        if (attempt === 0 && err instanceof KafkaResponseError && needsMetadataRefresh(err.errorCode)) {
          this.cluster.invalidate(topic);
          continue;
        }
        throw err;
      }
    }
  }
}
