/**
 * The broker's composition root: wires config, topics (storage), producer ids, fetch sessions,
 * metrics, the request dispatcher and the network server, and owns their start and stop order.
 *
 * Start order: data dir and meta.properties, then topics (logs recover here), then the group
 * coordinator (replays __consumer_offsets), then the Kafka listener, then metrics; the "ready" line is printed by the CLI only after all of them.
 * Stop order is the reverse, so no request can reach a closed log.
 */

import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
// Loaded only when the node is part of a cluster, so a single node starts without the Raft,
// metadata and replication modules.
import type { Cluster } from '../cluster/cluster.js';
import { GroupCoordinator } from '../group/coordinator.js';
import { TopicGroupLog } from '../group/group-log.js';
import { realClock, realScheduler } from '../group/time.js';
import { ErrorCode, KafkaError } from '../protocol/errors.js';
import type { BrokerConfig } from './config.js';
import { Dispatcher } from './dispatcher.js';
import { FetchSessionCache } from './fetch-sessions.js';
import { allHandlers } from './handlers/index.js';
import { BrokerMetrics } from './metrics.js';
import { type Logger, NetworkServer } from './network.js';
import { BlockProducerIds, ProducerIdManager, type ProducerIdSource } from './producer-ids.js';
import { type TopicAdmin, TopicManager } from './topics.js';

export const consoleLogger: Logger = {
  info: (m) => console.log(`[sluice] ${m}`),
  warn: (m) => console.warn(`[sluice] WARN ${m}`),
  error: (m) => console.error(`[sluice] ERROR ${m}`),
};

/** Kafka's cluster ids are 16 random bytes in URL-safe base64 without padding (22 chars). */
function newClusterId(): string {
  return randomBytes(16).toString('base64url');
}

export class Broker {
  readonly topics: TopicManager;
  readonly fetchSessions = new FetchSessionCache();
  readonly metrics: BrokerMetrics;
  readonly dispatcher: Dispatcher<Broker>;
  /** `__consumer_offsets`, created on first use. */
  readonly groupLog: TopicGroupLog;
  readonly groups: GroupCoordinator;
  producerIds!: ProducerIdSource;
  /** Set when this node is part of a replicated cluster (controller.quorum.voters). */
  cluster: Cluster | undefined;
  clusterId = '';
  private network?: NetworkServer;
  private retentionTimer?: NodeJS.Timeout;
  /** The address actually bound (port 0 in tests picks a free one). */
  address = { host: '', port: 0 };
  metricsAddress: { host: string; port: number } | null = null;
  /**
   * Resolves (never rejects) when this node can no longer run safely: in a cluster, its metadata
   * log could not be written (a full or failing disk). The process should stop, as Kafka does
   * when its metadata log dir fails; `sluice start` does.
   */
  readonly fatal: Promise<Error>;
  private resolveFatal: (err: Error) => void = () => {};

  constructor(
    readonly config: BrokerConfig,
    readonly log: Logger = consoleLogger,
  ) {
    this.fatal = new Promise<Error>((resolve) => {
      this.resolveFatal = resolve;
    });
    this.topics = new TopicManager(config, log);
    this.groupLog = new TopicGroupLog(this.topics, config.offsetsTopicNumPartitions);
    this.groups = new GroupCoordinator({
      log: this.groupLog,
      clock: realClock,
      scheduler: realScheduler,
      logger: log,
      // In a cluster this broker coordinates only the groups of the __consumer_offsets
      // partitions it leads; the ReplicaManager tells it when that changes.
      ownership: config.voters.length > 0 ? 'assigned' : 'all',
      config: {
        initialRebalanceDelayMs: config.groupInitialRebalanceDelayMs,
        minSessionTimeoutMs: config.groupMinSessionTimeoutMs,
        maxSessionTimeoutMs: config.groupMaxSessionTimeoutMs,
        maxSize: config.groupMaxSize,
        offsetsRetentionMs: config.offsetsRetentionMs,
        offsetsRetentionCheckIntervalMs: config.offsetsRetentionCheckIntervalMs,
        offsetMetadataMaxBytes: config.offsetMetadataMaxBytes,
      },
      consumer: {
        heartbeatIntervalMs: config.groupConsumerHeartbeatIntervalMs,
        sessionTimeoutMs: config.groupConsumerSessionTimeoutMs,
        maxSize: config.groupConsumerMaxSize,
        assignors: config.groupConsumerAssignors,
      },
    });
    this.metrics = new BrokerMetrics(this);
    this.dispatcher = new Dispatcher<Broker>(this, allHandlers, this.metrics);
  }

  /** Topic changes: the TopicManager on a single node, the controller in a cluster. */
  get topicAdmin(): TopicAdmin {
    return this.cluster ? this.cluster.topicAdmin : this.topics;
  }

  /**
   * The error for a partition this broker does not hold: NOT_LEADER_OR_FOLLOWER when it exists in
   * the cluster (the client refreshes metadata and goes to the leader), else UNKNOWN_TOPIC_OR_PARTITION.
   */
  partitionMissingError(topic: string, partition: number): ErrorCode {
    const t = this.topics.get(topic);
    return t && partition >= 0 && partition < t.meta.partitions
      ? ErrorCode.NOT_LEADER_OR_FOLLOWER
      : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
  }

  get nodeId(): number {
    return this.config.nodeId;
  }

  /** The host and port clients are told to use (advertised.listeners). */
  get advertised(): { host: string; port: number } {
    return {
      host: this.config.advertisedHost,
      port: this.config.advertisedPort === 0 ? this.address.port : this.config.advertisedPort,
    };
  }

  private async loadMetaProperties(): Promise<void> {
    const path = join(this.config.dataDir, 'meta.properties');
    try {
      const text = await readFile(path, 'utf8');
      const m = /^cluster\.id=(.+)$/m.exec(text);
      if (m) this.clusterId = m[1]!.trim();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (!this.clusterId) {
      this.clusterId =
        this.config.clusterId ||
        (this.config.voters.length > 0
          ? (await import('../cluster/cluster.js')).clusterIdFromVoters(this.config.voters)
          : newClusterId());
      await writeFile(
        path,
        `# Written by Sluice on first start\nversion=1\ncluster.id=${this.clusterId}\nnode.id=${this.config.nodeId}\n`,
      );
    }
  }

  async start(): Promise<void> {
    await mkdir(this.config.dataDir, { recursive: true });
    await this.loadMetaProperties();
    if (this.config.voters.length > 0) {
      // Cluster: topics come from the metadata log, not topics.json; replicas open as the
      // image assigns them, and groups load as this broker gains __consumer_offsets leaderships.
      const { Cluster } = await import('../cluster/cluster.js');
      const cluster = new Cluster({
        config: this.config,
        clusterId: this.clusterId,
        topics: this.topics,
        logger: this.log,
        advertised: () => this.advertised,
        onFatal: (err) => this.resolveFatal(err),
        onOffsetsLeadership: (partition, leader, leaderEpoch) => {
          if (leader) {
            this.groups.becomeCoordinator(partition, leaderEpoch).catch((err: unknown) => {
              this.log.error(
                `loading groups of __consumer_offsets-${partition} failed: ${(err as Error).message}`,
              );
            });
          } else {
            this.groups.resignCoordinator(partition, leaderEpoch);
          }
        },
      });
      this.cluster = cluster;
      this.producerIds = new BlockProducerIds(async () => {
        const r = await cluster.channel.allocateProducerIds({
          brokerId: this.config.nodeId,
          brokerEpoch: cluster.lifecycle.brokerEpoch,
        });
        if (r.errorCode !== ErrorCode.NONE)
          throw new KafkaError(r.errorCode, 'the controller refused a producer id block');
        return { start: r.producerIdStart, length: r.producerIdLen };
      });
      await this.groups.load();
      await cluster.start();
    } else {
      this.producerIds = await ProducerIdManager.open(join(this.config.dataDir, 'producer-ids'));
      await this.topics.load();
      // Groups and offsets are rebuilt from __consumer_offsets before the listener opens.
      await this.groups.load();
    }
    this.network = new NetworkServer(this.dispatcher, this.config, this.log);
    this.address = await this.network.listen(this.config.port, this.config.host);
    if (this.config.advertisedPort === 0) this.config.advertisedPort = this.address.port;
    this.cluster?.startLifecycle();
    if (this.config.metricsPort >= 0) {
      this.metricsAddress = await this.metrics.listen(this.config.metricsPort, this.config.metricsHost);
    }
    this.retentionTimer = setInterval(() => {
      this.topics.applyRetention().then(
        (n) => n > 0 && this.log.info(`retention deleted ${n} segment(s)`),
        (err: unknown) => this.log.error(`retention failed: ${(err as Error).message}`),
      );
    }, this.config.logRetentionCheckIntervalMs);
    this.retentionTimer.unref();
  }

  async stop(): Promise<void> {
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    // Controlled shutdown first, while clients can still be told where leaderships went.
    await this.cluster?.stop();
    this.groups.shutdown();
    await this.network?.close();
    await this.metrics.close();
    await this.topics.close();
  }
}
