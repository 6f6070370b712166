/**
 * Cluster: what a broker runs when it is a node of a replicated cluster (controller.quorum.voters
 * set). The composition root of this layer:
 *
 *   MetadataQuorum (Raft + image + active controller)
 *     └─ deltas ─> ReplicaManager (replicas, fetchers) ─> group coordinator (offsets leadership)
 *   ControllerService (controller side of the broker APIs)   ControllerChannel (broker side)
 *   BrokerLifecycle (registration, heartbeats, controlled shutdown)
 *   ClusterTopicAdmin (topic changes through the controller)
 *
 * Start: the quorum first (so the image starts filling), then the replica manager, then — once
 * the broker's client listener is bound, because the registration carries its address — the
 * lifecycle. Stop: controlled shutdown (leaderships move away first), then the reverse order.
 */

import { createHash } from 'node:crypto';
import type { BrokerConfig } from '../broker/config.js';
import type { Logger } from '../broker/network.js';
import type { TopicManager } from '../broker/topics.js';
import { CONSUMER_OFFSETS_CONFIGS, CONSUMER_OFFSETS_TOPIC } from '../group/group-log.js';
import { ErrorCode, KafkaError } from '../protocol/errors.js';
import { BrokerLifecycle } from './broker-lifecycle.js';
import { ClusterTopicAdmin } from './cluster-topic-admin.js';
import { ControllerChannel } from './controller-channel.js';
import { ControllerService } from './controller-service.js';
import { MetadataQuorum } from './metadata-quorum.js';
import { ReplicaManager } from './replica-manager.js';

export interface ClusterDeps {
  readonly config: BrokerConfig;
  readonly clusterId: string;
  readonly topics: TopicManager;
  readonly logger: Logger;
  readonly advertised: () => { host: string; port: number };
  readonly onOffsetsLeadership: (partition: number, leader: boolean, leaderEpoch: number) => void;
  /** This node's metadata quorum member failed for good (MetadataQuorumOptions.onFatal). */
  readonly onFatal?: (err: Error) => void;
}

/** Every node derives the same cluster id from the voter list when none is configured. */
export function clusterIdFromVoters(voters: BrokerConfig['voters']): string {
  const text = voters
    .map((v) => `${v.id}@${v.host}:${v.port}`)
    .sort()
    .join(',');
  return createHash('sha256').update(text).digest().subarray(0, 16).toString('base64url');
}

export class Cluster {
  readonly quorum: MetadataQuorum;
  readonly service: ControllerService;
  readonly channel: ControllerChannel;
  readonly replicas: ReplicaManager;
  readonly lifecycle: BrokerLifecycle;
  readonly topicAdmin: ClusterTopicAdmin;

  constructor(private readonly deps: ClusterDeps) {
    const c = deps.config;
    this.quorum = new MetadataQuorum({
      nodeId: c.nodeId,
      voters: c.voters,
      listen: { host: c.controllerHost, port: c.controllerPort },
      dataDir: c.dataDir,
      clusterId: deps.clusterId,
      electionTimeoutMs: c.controllerQuorumElectionTimeoutMs,
      localAddress: c.localAddress,
      onFatal: deps.onFatal,
      logger: deps.logger,
      controller: {
        sessionTimeoutMs: c.brokerSessionTimeoutMs,
        defaultReplicationFactor: c.defaultReplicationFactor,
        defaultNumPartitions: c.numPartitions,
        topicConfigDefaults: { ...c.topicDefaults },
        leaderImbalanceCheckIntervalMs: 300_000,
        autoLeaderRebalance: true,
      },
    });
    this.service = new ControllerService(this.quorum);
    this.channel = new ControllerChannel(c.nodeId, this.quorum, this.service, c.localAddress);
    this.lifecycle = new BrokerLifecycle({
      nodeId: c.nodeId,
      clusterId: deps.clusterId,
      advertised: deps.advertised,
      rack: c.brokerRack,
      heartbeatIntervalMs: c.brokerHeartbeatIntervalMs,
      channel: this.channel,
      quorum: this.quorum,
      logger: deps.logger,
    });
    this.replicas = new ReplicaManager({
      nodeId: c.nodeId,
      topics: deps.topics,
      channel: this.channel,
      brokerEpoch: () => this.lifecycle.brokerEpoch,
      replicaLagTimeMaxMs: c.replicaLagTimeMaxMs,
      replicaFetchMaxBytes: c.replicaFetchMaxBytes,
      replicaFetchWaitMaxMs: c.replicaFetchWaitMaxMs,
      minInsyncReplicas: (topic) =>
        Number(
          deps.topics.get(topic)?.meta.configs['min.insync.replicas'] ??
            c.topicDefaults['min.insync.replicas'],
        ),
      logger: deps.logger,
      dataDir: c.dataDir,
      highWatermarkCheckpointIntervalMs: 5_000,
      onOffsetsLeadership: deps.onOffsetsLeadership,
      localAddress: c.localAddress,
    });
    this.topicAdmin = new ClusterTopicAdmin(this.quorum, this.service, this.channel, {
      numPartitions: c.numPartitions,
      defaultReplicationFactor: c.defaultReplicationFactor,
      autoCreateTopicsEnable: c.autoCreateTopicsEnable,
    });
    this.quorum.onDelta((delta, image) => {
      void this.replicas.applyDelta(delta, image);
    });
  }

  get nodeId(): number {
    return this.deps.config.nodeId;
  }

  /** Starts the quorum member and the replica manager (before the client listener opens). */
  async start(): Promise<void> {
    await this.replicas.start();
    await this.quorum.start();
  }

  /** Registers with the controller; call once the client listener is bound. */
  startLifecycle(): void {
    this.lifecycle.start();
    // Unfenced means the controller saw this broker's metadata reach its registration: from then
    // on the replicas follow the image (see ReplicaManager.catchUp).
    void this.lifecycle.unfenced.then(() => this.replicas.catchUp(this.quorum.image));
  }

  async stop(): Promise<void> {
    const moved = await this.lifecycle.shutdown(5_000);
    if (!moved) this.deps.logger.warn('controlled shutdown did not finish in 5 s; stopping anyway');
    await this.lifecycle.stop();
    await this.replicas.stop();
    this.channel.close();
    await this.quorum.stop();
  }

  /** Creates __consumer_offsets if it does not exist yet (FindCoordinator's first use). */
  async ensureOffsetsTopic(): Promise<void> {
    const c = this.deps.config;
    try {
      await this.topicAdmin.ensureTopic(
        CONSUMER_OFFSETS_TOPIC,
        c.offsetsTopicNumPartitions,
        c.offsetsTopicReplicationFactor,
        CONSUMER_OFFSETS_CONFIGS,
      );
    } catch (err) {
      if (err instanceof KafkaError && err.errorCode === ErrorCode.TOPIC_ALREADY_EXISTS) return;
      throw err;
    }
  }

  /** The broker that leads a partition (its host and port), or undefined when it has none. */
  leaderOf(topic: string, partition: number): { id: number; host: string; port: number } | undefined {
    const m = this.quorum.image.partition(topic, partition);
    if (!m || m.leader < 0) return undefined;
    const b = this.quorum.image.broker(m.leader);
    return b ? { id: b.id, host: b.host, port: b.port } : undefined;
  }
}
