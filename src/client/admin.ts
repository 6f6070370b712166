/**
 * Admin operations: topics, configs, partitions, offsets, record deletion and consumer groups.
 * Each call sends one request (to the controller for topic-level changes, to the partition
 * leader for offsets and record deletion, to the group's coordinator for group calls; ListGroups
 * to every broker) and turns per-item error codes into KafkaResponseErrors.
 *
 * Invariants: a successful call returns only after the broker confirmed it; partition-level
 * calls that hit a stale leader refresh metadata and retry once; group calls that hit a moved or
 * loading coordinator look it up again and retry. resetOffsets commits only to a group with no
 * active members (a standalone commit, generation -1), like Kafka's kafka-consumer-groups tool.
 */

import { ZERO_UUID } from '../protocol/codec-support.js';
import { ErrorCode } from '../protocol/errors.js';
import type { ReplicaState } from '../protocol/generated/describe-quorum-response.js';
import { ApiKey } from '../protocol/generated/index.js';
import {
  type BrokerAddress,
  Cluster,
  type ClusterOptions,
  type PartitionMetadata,
  type TopicMetadata,
  sleep,
} from './cluster.js';
import type { Connection } from './connection.js';
import {
  InvalidArgumentError,
  KafkaResponseError,
  SluiceClientError,
  kafkaError,
  needsMetadataRefresh,
} from './errors.js';
import {
  type TopicPartitions,
  commitOffsets,
  decodeAssignment,
  decodeSubscription,
  fetchOffsets,
  findCoordinator,
  isCoordinatorError,
} from './group-protocol.js';

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
  /** -1: the partition is offline (no replica can lead it). */
  leader: number;
  leaderEpoch: number;
  replicas: number[];
  isr: number[];
  /** Replicas on brokers that are down (fenced or gone). */
  offlineReplicas: number[];
  /** -1 when the partition is offline. */
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

export interface GroupListing {
  groupId: string;
  protocolType: string;
  /** Empty, Stable, PreparingRebalance, CompletingRebalance, Dead (or "" from old brokers). */
  state: string;
}

export interface GroupMemberDescription {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  host: string;
  /** Subscribed topics (consumer protocol), null when the metadata is not a consumer subscription. */
  subscription: string[] | null;
  /** Assigned partitions (consumer protocol); empty while a rebalance is in progress. */
  assignment: TopicPartitions[];
}

export interface GroupDescription {
  groupId: string;
  state: string;
  protocolType: string;
  /** The assignor chosen for the generation (e.g. "range"), "" when there is none. */
  protocol: string;
  /** Node id of the group's coordinator. */
  coordinator: number;
  members: GroupMemberDescription[];
}

export interface GroupOffset {
  topic: string;
  partition: number;
  offset: number;
  metadata: string | null;
}

export interface GroupPartitionLag {
  topic: string;
  partition: number;
  /** -1 when the group has committed nothing for the partition. */
  committedOffset: number;
  logEndOffset: number;
  /** logEndOffset - committedOffset; null without a committed offset. */
  lag: number | null;
  /** The member the partition is assigned to, if any. */
  memberId: string | null;
  clientId: string | null;
  host: string | null;
}

export interface ClusterDescription {
  clusterId: string;
  /** The active controller's node id, -1 if none. */
  controllerId: number;
  /** The live brokers, by node id. */
  brokers: BrokerAddress[];
}

/** One member of the metadata quorum as the leader sees it (DescribeQuorum's ReplicaState). */
export interface QuorumReplica {
  nodeId: number;
  /** -1 when the leader has not heard from it. */
  logEndOffset: number;
  /** Leader wall-clock ms of its last fetch; -1 unknown (and on brokers before DescribeQuorum v1). */
  lastFetchTimestamp: number;
  /** Leader wall-clock ms when it was last caught up; -1 unknown. */
  lastCaughtUpTimestamp: number;
}

/** The metadata quorum (`__cluster_metadata` partition 0): what `kafka-metadata-quorum describe` shows. */
export interface QuorumDescription {
  leaderId: number;
  leaderEpoch: number;
  highWatermark: number;
  voters: QuorumReplica[];
  observers: QuorumReplica[];
}

export type OffsetResetSpec =
  | { to: 'earliest' }
  | { to: 'latest' }
  | { to: 'offset'; offset: number }
  | { to: 'datetime'; timestamp: number }
  | { to: 'shift'; by: number };

export interface OffsetResetPlanEntry {
  topic: string;
  partition: number;
  /** -1 when the group has no committed offset for the partition. */
  currentOffset: number;
  newOffset: number;
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

  /**
   * Partitions with leaders, replicas, ISR and log start/end offsets, plus the topic's configs.
   * Offline partitions (leader -1) are described too, with offsets -1.
   */
  async describeTopic(name: string): Promise<TopicDescription> {
    let meta: TopicMetadata;
    try {
      meta = await this.cluster.topic(name, { refresh: true });
    } catch (err) {
      // cluster.topic waits for every partition to have a leader; an offline one never will.
      const known = this.cluster.topics.get(name);
      if (!(err instanceof KafkaResponseError && err.errorCode === ErrorCode.LEADER_NOT_AVAILABLE && known))
        throw err;
      meta = known;
    }
    const parts = meta.partitions.filter((p) => p.leader >= 0).map((p) => p.partition);
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
        offlineReplicas: p.offlineReplicas,
        logStartOffset: starts.get(p.partition)?.offset ?? -1,
        logEndOffset: ends.get(p.partition)?.offset ?? -1,
      })),
      configs,
    };
  }

  /** The cluster id, the active controller and the live brokers (DescribeCluster, KIP-700). */
  async describeCluster(): Promise<ClusterDescription> {
    const conn = await this.cluster.anyConnection();
    if (!conn.supports(ApiKey.DescribeCluster)) {
      // Brokers before Kafka 2.8: the same facts from Metadata.
      const res = await this.cluster.refreshMetadata([]);
      return {
        clusterId: res.clusterId ?? '',
        controllerId: res.controllerId,
        brokers: [...this.cluster.brokers.values()].sort((a, b) => a.nodeId - b.nodeId),
      };
    }
    const res = await conn.send(ApiKey.DescribeCluster, {
      includeClusterAuthorizedOperations: false,
      endpointType: 1,
    });
    if (res.errorCode !== 0) throw kafkaError(res.errorCode, 'DescribeCluster', res.errorMessage);
    return {
      clusterId: res.clusterId,
      controllerId: res.controllerId,
      brokers: res.brokers
        .map((b) => ({ nodeId: b.brokerId, host: b.host, port: b.port, rack: b.rack }))
        .sort((a, b) => a.nodeId - b.nodeId),
    };
  }

  /**
   * The metadata quorum: leader, epoch, high watermark and each voter's replication progress
   * (DescribeQuorum, KIP-595). Any broker answers (it forwards to the quorum leader); a leader
   * change in between (NOT_LEADER_OR_FOLLOWER, NOT_CONTROLLER) is retried for up to ~5 s.
   * A broker without a quorum (a single Sluice node) answers INVALID_REQUEST.
   */
  async describeQuorum(): Promise<QuorumDescription> {
    const retriable = new Set<number>([ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.NOT_CONTROLLER]);
    for (let attempt = 0; ; attempt++) {
      const conn = await this.cluster.anyConnection();
      const res = await conn.send(ApiKey.DescribeQuorum, {
        topics: [{ topicName: '__cluster_metadata', partitions: [{ partitionIndex: 0 }] }],
      });
      const p = res.topics[0]?.partitions[0];
      if (res.errorCode === 0 && p && p.errorCode === 0) {
        const replica = (r: ReplicaState): QuorumReplica => ({
          nodeId: r.replicaId,
          logEndOffset: r.logEndOffset,
          lastFetchTimestamp: r.lastFetchTimestamp,
          lastCaughtUpTimestamp: r.lastCaughtUpTimestamp,
        });
        return {
          leaderId: p.leaderId,
          leaderEpoch: p.leaderEpoch,
          highWatermark: p.highWatermark,
          voters: p.currentVoters.map(replica).sort((a, b) => a.nodeId - b.nodeId),
          observers: p.observers.map(replica).sort((a, b) => a.nodeId - b.nodeId),
        };
      }
      const [code, message] =
        res.errorCode !== 0
          ? [res.errorCode, res.errorMessage]
          : p
            ? [p.errorCode, p.errorMessage]
            : [ErrorCode.UNKNOWN_SERVER_ERROR, 'no partition in the answer'];
      if (attempt < 10 && retriable.has(code)) {
        await sleep(Math.min(100 * (attempt + 1), 1000));
        continue;
      }
      throw kafkaError(code, 'DescribeQuorum', message);
    }
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

  // -------------------------------------------------------------------------------------------
  // Consumer groups

  /** Runs `fn` against the group's coordinator; a moved or loading coordinator is retried. */
  private async withCoordinator<T>(groupId: string, fn: (conn: Connection) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        const c = await findCoordinator(this.cluster, groupId);
        return await fn(await this.cluster.connectionTo(c.nodeId));
      } catch (err) {
        if (attempt < 10 && err instanceof KafkaResponseError && isCoordinatorError(err.errorCode)) {
          await sleep(Math.min(100 * (attempt + 1), 1000));
          continue;
        }
        throw err;
      }
    }
  }

  /** Every group of every broker, sorted by id; `states` filters (ListGroups v4+). */
  async listGroups(options: { states?: string[] } = {}): Promise<GroupListing[]> {
    await this.cluster.refreshMetadata([]);
    const nodes = [...this.cluster.brokers.keys()];
    const out = new Map<string, GroupListing>();
    await Promise.all(
      nodes.map(async (nodeId) => {
        const conn = await this.cluster.connectionTo(nodeId);
        const res = await conn.send(ApiKey.ListGroups, {
          statesFilter: options.states ?? [],
          typesFilter: [],
        });
        if (res.errorCode !== 0) throw kafkaError(res.errorCode, `ListGroups on broker ${nodeId}`);
        for (const g of res.groups)
          out.set(g.groupId, { groupId: g.groupId, protocolType: g.protocolType, state: g.groupState });
      }),
    );
    const states = options.states?.map((s) => s.toLowerCase());
    return [...out.values()]
      .filter((g) => !states || g.state === '' || states.includes(g.state.toLowerCase()))
      .sort((a, b) => (a.groupId < b.groupId ? -1 : a.groupId > b.groupId ? 1 : 0));
  }

  /** State, protocol and members (with decoded subscriptions and assignments) of a group. */
  async describeGroup(groupId: string): Promise<GroupDescription> {
    return this.withCoordinator(groupId, async (conn) => {
      const res = await conn.send(ApiKey.DescribeGroups, {
        groups: [groupId],
        includeAuthorizedOperations: false,
      });
      const g = res.groups.find((x) => x.groupId === groupId) ?? res.groups[0];
      if (!g)
        throw new KafkaResponseError(ErrorCode.UNKNOWN_SERVER_ERROR, 'DescribeGroups returned no group');
      if (g.errorCode === ErrorCode.GROUP_ID_NOT_FOUND)
        return { groupId, state: 'Dead', protocolType: '', protocol: '', coordinator: -1, members: [] };
      if (g.errorCode !== 0) throw kafkaError(g.errorCode, `group "${groupId}"`);
      const consumer = g.protocolType === 'consumer' || g.protocolType === '';
      return {
        groupId,
        state: g.groupState,
        protocolType: g.protocolType,
        protocol: g.protocolData,
        coordinator:
          [...this.cluster.brokers.values()].find((b) => b.host === conn.host && b.port === conn.port)
            ?.nodeId ?? -1,
        members: g.members
          .map((m) => ({
            memberId: m.memberId,
            groupInstanceId: m.groupInstanceId,
            clientId: m.clientId,
            host: m.clientHost,
            subscription: consumer ? (decodeSubscription(m.memberMetadata)?.topics ?? null) : null,
            assignment: consumer ? (decodeAssignment(m.memberAssignment)?.assignedPartitions ?? []) : [],
          }))
          .sort((a, b) => (a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0)),
      };
    });
  }

  /** A group's committed offsets (OffsetFetch), for the given topics or all it has committed. */
  async listGroupOffsets(groupId: string, topics?: string[]): Promise<GroupOffset[]> {
    let request: TopicPartitions[] | null = null;
    if (topics) {
      request = [];
      for (const t of topics) {
        const meta = await this.cluster.topic(t);
        request.push({ topic: t, partitions: meta.partitions.map((p) => p.partition) });
      }
    }
    const committed = await this.withCoordinator(groupId, (conn) => fetchOffsets(conn, groupId, request));
    const out: GroupOffset[] = [];
    for (const [topic, parts] of committed)
      for (const [partition, c] of parts)
        if (c.offset >= 0) out.push({ topic, partition, offset: c.offset, metadata: c.metadata });
    return out.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
  }

  /**
   * Per partition the group has committed or is assigned: committed offset, log end offset
   * (ListOffsets latest) and lag, with the owning member (like kafka-consumer-groups --describe).
   */
  async groupLag(groupId: string, description?: GroupDescription): Promise<GroupPartitionLag[]> {
    const d = description ?? (await this.describeGroup(groupId));
    const offsets = await this.listGroupOffsets(groupId);
    const rows = new Map<string, GroupPartitionLag>();
    const k = (t: string, p: number) => `${t}\u0000${p}`;
    for (const m of d.members)
      for (const t of m.assignment)
        for (const p of t.partitions)
          rows.set(k(t.topic, p), {
            topic: t.topic,
            partition: p,
            committedOffset: -1,
            logEndOffset: -1,
            lag: null,
            memberId: m.memberId,
            clientId: m.clientId,
            host: m.host,
          });
    for (const o of offsets) {
      const row = rows.get(k(o.topic, o.partition)) ?? {
        topic: o.topic,
        partition: o.partition,
        committedOffset: -1,
        logEndOffset: -1,
        lag: null,
        memberId: null,
        clientId: null,
        host: null,
      };
      row.committedOffset = o.offset;
      rows.set(k(o.topic, o.partition), row);
    }
    const byTopic = new Map<string, number[]>();
    for (const r of rows.values()) byTopic.set(r.topic, [...(byTopic.get(r.topic) ?? []), r.partition]);
    for (const [topic, parts] of byTopic) {
      let ends: Map<number, OffsetAndTimestamp>;
      try {
        ends = await this.listOffsetsMany(topic, parts, LATEST_OFFSET);
      } catch (err) {
        if (err instanceof KafkaResponseError && err.errorCode === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
          continue;
        throw err;
      }
      for (const p of parts) {
        const row = rows.get(k(topic, p))!;
        row.logEndOffset = ends.get(p)?.offset ?? -1;
        if (row.committedOffset >= 0 && row.logEndOffset >= 0)
          row.lag = Math.max(0, row.logEndOffset - row.committedOffset);
      }
    }
    return [...rows.values()].sort((a, b) =>
      a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition,
    );
  }

  /**
   * Plans (and with `execute`, commits) new committed offsets for a group's partitions of a
   * topic (all partitions unless `partitions` is given). Offsets are clamped to the log's
   * [start, end]. Refuses when the group has active members: their commits would overwrite the
   * reset, so Kafka's tool refuses too.
   */
  async resetOffsets(
    groupId: string,
    topic: string,
    spec: OffsetResetSpec,
    options: { partitions?: number[]; execute?: boolean } = {},
  ): Promise<OffsetResetPlanEntry[]> {
    const d = await this.describeGroup(groupId);
    if (d.members.length > 0 || (d.state !== 'Empty' && d.state !== 'Dead' && d.state !== '')) {
      throw new SluiceClientError(
        'GROUP_NOT_EMPTY',
        `group "${groupId}" has ${d.members.length} active member${d.members.length === 1 ? '' : 's'} (state ${d.state}): offsets can only be reset when the group is inactive — stop the group's consumers first`,
      );
    }
    const meta = await this.cluster.topic(topic, { refresh: true });
    const all = meta.partitions.map((p) => p.partition);
    const partitions = options.partitions ?? all;
    for (const p of partitions)
      if (!all.includes(p))
        throw kafkaError(
          ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
          `partition ${p} of topic "${topic}" (it has ${all.length})`,
        );
    const committed = await this.withCoordinator(groupId, (conn) =>
      fetchOffsets(conn, groupId, [{ topic, partitions }]),
    );
    const [starts, ends] = await Promise.all([
      this.listOffsetsMany(topic, partitions, EARLIEST_OFFSET),
      this.listOffsetsMany(topic, partitions, LATEST_OFFSET),
    ]);
    const at = spec.to === 'datetime' ? await this.listOffsetsMany(topic, partitions, spec.timestamp) : null;
    const plan: OffsetResetPlanEntry[] = partitions
      .sort((a, b) => a - b)
      .map((p) => {
        const start = starts.get(p)?.offset ?? 0;
        const end = ends.get(p)?.offset ?? 0;
        const current = committed.get(topic)?.get(p)?.offset ?? -1;
        let target: number;
        switch (spec.to) {
          case 'earliest':
            target = start;
            break;
          case 'latest':
            target = end;
            break;
          case 'offset':
            target = spec.offset;
            break;
          case 'datetime': {
            const o = at?.get(p)?.offset ?? -1;
            target = o < 0 ? end : o;
            break;
          }
          case 'shift':
            if (current < 0)
              throw new SluiceClientError(
                'NO_OFFSET',
                `cannot shift partition ${p} of topic "${topic}": group "${groupId}" has no committed offset for it`,
              );
            target = current + spec.by;
            break;
        }
        return {
          topic,
          partition: p,
          currentOffset: current,
          newOffset: Math.min(end, Math.max(start, target)),
        };
      });
    if (options.execute) {
      await this.withCoordinator(groupId, (conn) =>
        commitOffsets(
          conn,
          { groupId, generationId: -1, memberId: '', groupInstanceId: null },
          plan.map((e) => ({ topic: e.topic, partition: e.partition, offset: e.newOffset })),
        ),
      );
    }
    return plan;
  }

  /** Deletes groups (their metadata and committed offsets); a group with members is refused. */
  async deleteGroups(groupIds: string[]): Promise<void> {
    for (const groupId of groupIds) {
      await this.withCoordinator(groupId, async (conn) => {
        const res = await conn.send(ApiKey.DeleteGroups, { groupsNames: [groupId] });
        const r = res.results.find((x) => x.groupId === groupId);
        const code = r?.errorCode ?? ErrorCode.UNKNOWN_SERVER_ERROR;
        if (code !== 0) throw kafkaError(code, `group "${groupId}"`);
      });
    }
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
