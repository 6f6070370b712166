/**
 * The client's view of a cluster: bootstrap, connections per broker, and the topic ->
 * partitions -> leader map from Metadata. Producer, consumer and admin each own one Cluster.
 *
 * Invariants:
 * - At most one open Connection per broker address; a closed one is replaced on next use.
 * - Metadata is the only source of leaders; callers report NOT_LEADER_OR_FOLLOWER /
 *   UNKNOWN_TOPIC_OR_PARTITION (needsMetadataRefresh) and the map is refreshed before the retry.
 * - Bootstrap addresses are tried in order; the first that answers wins, and the brokers it lists
 *   (advertised addresses) are used from then on.
 */

import { ZERO_UUID } from '../protocol/codec-support.js';
import { ErrorCode } from '../protocol/errors.js';
import { ApiKey } from '../protocol/generated/index.js';
import type { MetadataResponse } from '../protocol/generated/metadata-response.js';
import { Connection } from './connection.js';
import { BrokerNotAvailableError, InvalidArgumentError, SluiceClientError, kafkaError } from './errors.js';

export interface ClusterOptions {
  /** "host:port", a comma-separated list, or an array of them. */
  bootstrapServers: string | string[];
  clientId?: string;
  requestTimeoutMs?: number;
  connectTimeoutMs?: number;
}

export interface BrokerAddress {
  nodeId: number;
  host: string;
  port: number;
  rack: string | null;
}

export interface PartitionMetadata {
  partition: number;
  leader: number;
  leaderEpoch: number;
  replicas: number[];
  isr: number[];
  offlineReplicas: number[];
  errorCode: number;
}

export interface TopicMetadata {
  name: string;
  topicId: string;
  isInternal: boolean;
  partitions: PartitionMetadata[];
}

export function parseHostPort(s: string, defaultPort = 9092): { host: string; port: number } {
  const t = s.trim();
  if (t === '') throw new InvalidArgumentError('empty broker address; expected HOST:PORT');
  // [v6]:port, host:port, or a bare host.
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(t) ?? /^([^:]+)(?::(\d+))?$/.exec(t);
  if (!m) throw new InvalidArgumentError(`"${s}" is not a broker address; expected HOST:PORT`);
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  if (!Number.isInteger(port) || port <= 0 || port > 65535)
    throw new InvalidArgumentError(`"${s}" has an invalid port; expected HOST:PORT`);
  return { host: m[1]!, port };
}

export function parseBootstrap(servers: string | string[]): { host: string; port: number }[] {
  const list = (Array.isArray(servers) ? servers : [servers])
    .flatMap((s) => s.split(','))
    .filter((s) => s.trim() !== '');
  if (list.length === 0) throw new InvalidArgumentError('no bootstrap servers given; expected HOST:PORT');
  return list.map((s) => parseHostPort(s));
}

export class Cluster {
  private readonly bootstrap: { host: string; port: number }[];
  private readonly connections = new Map<string, Promise<Connection>>();
  readonly brokers = new Map<number, BrokerAddress>();
  readonly topics = new Map<string, TopicMetadata>();
  clusterId: string | null = null;
  controllerId = -1;
  private closed = false;

  constructor(readonly options: ClusterOptions) {
    this.bootstrap = parseBootstrap(options.bootstrapServers);
  }

  private connect(host: string, port: number): Promise<Connection> {
    if (this.closed) return Promise.reject(new SluiceClientError('CLIENT_CLOSED', 'the client was closed'));
    const key = `${host}:${port}`;
    const existing = this.connections.get(key);
    if (existing) {
      return existing.then(
        (c) => {
          if (c.isOpen) return c;
          this.connections.delete(key);
          return this.connect(host, port);
        },
        () => {
          this.connections.delete(key);
          return this.connect(host, port);
        },
      );
    }
    const p = Connection.connect({
      host,
      port,
      clientId: this.options.clientId,
      requestTimeoutMs: this.options.requestTimeoutMs,
      connectTimeoutMs: this.options.connectTimeoutMs,
    });
    this.connections.set(key, p);
    p.catch(() => {
      if (this.connections.get(key) === p) this.connections.delete(key);
    });
    return p;
  }

  /** A connection to any broker: a known one first, else the bootstrap list in order. */
  async anyConnection(): Promise<Connection> {
    const candidates = [
      ...[...this.brokers.values()].map((b) => ({ host: b.host, port: b.port })),
      ...this.bootstrap,
    ];
    let first: unknown = null;
    for (const c of candidates) {
      try {
        return await this.connect(c.host, c.port);
      } catch (err) {
        first ??= err;
      }
    }
    if (first instanceof Error) throw first;
    const b = this.bootstrap[0]!;
    throw new BrokerNotAvailableError(b.host, b.port);
  }

  /** A connection to the broker with this node id (from Metadata). */
  async connectionTo(nodeId: number): Promise<Connection> {
    let b = this.brokers.get(nodeId);
    if (!b) {
      await this.refreshMetadata();
      b = this.brokers.get(nodeId);
    }
    if (!b)
      throw new SluiceClientError('BROKER_UNKNOWN', `broker ${nodeId} is not in the cluster metadata`, {
        canRetry: true,
      });
    return this.connect(b.host, b.port);
  }

  /** The controller, or any broker when the cluster does not name one. */
  async controllerConnection(): Promise<Connection> {
    if (this.controllerId < 0) await this.refreshMetadata([]);
    if (this.controllerId >= 0 && this.brokers.has(this.controllerId))
      return this.connectionTo(this.controllerId);
    return this.anyConnection();
  }

  /**
   * Fetches metadata for the named topics (null: all topics) and merges it into the maps.
   * Returns the raw response so callers can see per-topic errors.
   */
  async refreshMetadata(
    topics: string[] | null = null,
    allowAutoTopicCreation = false,
  ): Promise<MetadataResponse> {
    const conn = await this.anyConnection();
    const res = await conn.send(ApiKey.Metadata, {
      topics: topics === null ? null : topics.map((name) => ({ name, topicId: ZERO_UUID })),
      allowAutoTopicCreation,
      includeClusterAuthorizedOperations: false,
      includeTopicAuthorizedOperations: false,
    });
    this.brokers.clear();
    for (const b of res.brokers)
      this.brokers.set(b.nodeId, { nodeId: b.nodeId, host: b.host, port: b.port, rack: b.rack });
    this.clusterId = res.clusterId;
    this.controllerId = res.controllerId;
    if (topics === null) this.topics.clear();
    for (const t of res.topics) {
      if (t.name === null) continue;
      if (t.errorCode !== 0) {
        this.topics.delete(t.name);
        continue;
      }
      this.topics.set(t.name, {
        name: t.name,
        topicId: t.topicId,
        isInternal: t.isInternal,
        partitions: t.partitions
          .map((p) => ({
            partition: p.partitionIndex,
            leader: p.leaderId,
            leaderEpoch: p.leaderEpoch,
            replicas: p.replicaNodes,
            isr: p.isrNodes,
            offlineReplicas: p.offlineReplicas,
            errorCode: p.errorCode,
          }))
          .sort((a, b) => a.partition - b.partition),
      });
    }
    return res;
  }

  /**
   * Metadata of one topic, fetched if not known. LEADER_NOT_AVAILABLE (a topic being created)
   * is retried briefly; an unknown topic throws UNKNOWN_TOPIC_OR_PARTITION.
   */
  async topic(
    name: string,
    options: { allowAutoTopicCreation?: boolean; refresh?: boolean } = {},
  ): Promise<TopicMetadata> {
    const known = this.topics.get(name);
    if (known && !options.refresh) return known;
    let lastCode = 0;
    for (let attempt = 0; attempt < 10; attempt++) {
      const res = await this.refreshMetadata([name], options.allowAutoTopicCreation ?? false);
      const t = res.topics.find((x) => x.name === name);
      lastCode = t?.errorCode ?? ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
      const meta = this.topics.get(name);
      if (meta && meta.partitions.length > 0 && meta.partitions.every((p) => p.leader >= 0)) return meta;
      if (lastCode !== ErrorCode.LEADER_NOT_AVAILABLE && lastCode !== 0) break;
      await sleep(50 * (attempt + 1));
    }
    throw kafkaError(lastCode || ErrorCode.LEADER_NOT_AVAILABLE, `topic "${name}"`);
  }

  /** The leader's node id for a partition (metadata fetched if needed). */
  async leaderOf(topic: string, partition: number): Promise<number> {
    const t = await this.topic(topic);
    const p = t.partitions[partition];
    if (!p || p.partition !== partition) {
      const fresh = await this.topic(topic, { refresh: true });
      const q = fresh.partitions.find((x) => x.partition === partition);
      if (!q)
        throw kafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `partition ${partition} of topic "${topic}"`);
      return q.leader;
    }
    return p.leader;
  }

  /** Forgets a topic's metadata so the next use fetches it again. */
  invalidate(topic: string): void {
    this.topics.delete(topic);
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.connections.values()];
    this.connections.clear();
    await Promise.all(
      all.map((p) =>
        p.then(
          (c) => c.close(),
          () => undefined,
        ),
      ),
    );
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
