/**
 * ReplicaManager: every partition replica this broker holds, kept in step with the metadata image.
 *
 * - On each metadata delta (in log order) it opens the replicas assigned to this broker, feeds
 *   them the controller's partition state (leader, leader epoch, ISR, partition epoch), closes
 *   the ones removed, and tells the group coordinator when it gains or loses the leadership of a
 *   `__consumer_offsets` partition.
 * - It runs one ReplicaFetcher per leader this broker follows, and a tick (ISR shrink, produce
 *   timeouts, AlterPartition retries).
 * - ISR proposals (AlterPartition) go to the controller; the answer goes back to the replica.
 *
 * Deltas are applied one at a time on a promise chain (opening a log is asynchronous) so a
 * partition never sees states out of order.
 */

import type { Logger } from '../broker/network.js';
import type { TopicManager } from '../broker/topics.js';
import { CONSUMER_OFFSETS_TOPIC } from '../group/group-log.js';
import { type MetadataDelta, MetadataImage, type PartitionMeta, type TopicImage } from '../metadata/image.js';
import { ErrorCode } from '../protocol/errors.js';
import type { AlterPartitionRequest } from '../replication/messages.js';
import { DEFAULT_REPLICA_CONFIG, type ReplicaConfig } from '../replication/partition-replica.js';
import type { ControllerChannel } from './controller-channel.js';
import {
  type HighWatermarks,
  partitionKey,
  readHighWatermarks,
  writeHighWatermarks,
} from './hw-checkpoint.js';
import { diffImages } from './metadata-quorum.js';
import { ReplicaFetcher } from './replica-fetcher.js';
import { ReplicatedPartition } from './replicated-partition.js';

export interface ReplicaManagerOptions {
  readonly nodeId: number;
  readonly topics: TopicManager;
  readonly channel: ControllerChannel;
  readonly brokerEpoch: () => number;
  readonly replicaLagTimeMaxMs: number;
  readonly replicaFetchMaxBytes: number;
  readonly replicaFetchWaitMaxMs: number;
  readonly minInsyncReplicas: (topic: string) => number;
  readonly logger: Logger;
  readonly dataDir: string;
  /** replica.high.watermark.checkpoint.interval.ms */
  readonly highWatermarkCheckpointIntervalMs: number;
  /** Called when this broker becomes or stops being the leader of a __consumer_offsets partition. */
  readonly onOffsetsLeadership: (partition: number, leader: boolean, leaderEpoch: number) => void;
  /** node.local.address: the local IP of replica fetch connections. */
  readonly localAddress?: string;
}

const TICK_MS = 100;
const RETRY_MS = 1_000;

export class ReplicaManager {
  private readonly replicas = new Map<string, ReplicatedPartition>();
  private readonly fetchers = new Map<number, ReplicaFetcher>();
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private image: MetadataImage | undefined;
  private stopped = false;
  private checkpointTimer: NodeJS.Timeout | undefined;
  private checkpointed: HighWatermarks = new Map();
  private checkpointing: Promise<void> = Promise.resolve();

  constructor(private readonly o: ReplicaManagerOptions) {}

  /** Reads the high-watermark checkpoint, then starts the tick and checkpoint timers. */
  async start(): Promise<void> {
    this.checkpointed = await readHighWatermarks(this.o.dataDir, (m) => this.o.logger.warn(m));
    this.timer = setInterval(() => {
      for (const rp of this.replicas.values()) rp.tick();
      this.retryFailed();
    }, TICK_MS);
    this.timer.unref();
    this.checkpointTimer = setInterval(
      () => void this.checkpoint(),
      this.o.highWatermarkCheckpointIntervalMs,
    );
    this.checkpointTimer.unref();
  }

  /** Writes every replica's high watermark (one at a time; a failure is logged, not fatal). */
  checkpoint(): Promise<void> {
    const run = async () => {
      if (this.replicas.size === 0) return;
      const entries = [...this.replicas.values()].map((rp) => ({
        topic: rp.topic,
        partition: rp.index,
        highWatermark: rp.highWatermark,
      }));
      try {
        await writeHighWatermarks(this.o.dataDir, entries);
      } catch (err) {
        this.o.logger.warn(`writing the high-watermark checkpoint failed: ${(err as Error).message}`);
      }
    };
    this.checkpointing = this.checkpointing.then(run, run);
    return this.checkpointing;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.checkpointTimer) clearInterval(this.checkpointTimer);
    await Promise.all([...this.fetchers.values()].map((f) => f.stop()));
    this.fetchers.clear();
    await this.chain.catch(() => undefined);
    await this.checkpoint();
    for (const rp of this.replicas.values()) rp.close();
  }

  get(topic: string, partition: number): ReplicatedPartition | undefined {
    return this.replicas.get(partitionKey(topic, partition));
  }

  all(): ReplicatedPartition[] {
    return [...this.replicas.values()];
  }

  /**
   * Replicas act on metadata only once this broker has caught up with the metadata log (the
   * controller unfenced it). Before that the deltas are history — a restarted broker replaying
   * its log would briefly "lead" partitions it led long ago — so they are not applied one by one;
   * `catchUp` applies the image as it is then, as one delta.
   */
  private caughtUp = false;

  catchUp(image: MetadataImage): Promise<void> {
    if (this.caughtUp) return this.chain;
    this.caughtUp = true;
    return this.applyDelta(diffImages(new MetadataImage(), image), image);
  }

  /** Queues one metadata delta; resolves when it has been applied to the replicas. */
  applyDelta(delta: MetadataDelta, image: MetadataImage): Promise<void> {
    this.image = image;
    if (!this.caughtUp) return this.chain;
    const run = () => this.apply(delta, image);
    this.chain = this.chain.then(run, run).catch((err: unknown) => {
      this.o.logger.error(`applying metadata to replicas failed: ${(err as Error).stack ?? err}`);
    });
    return this.chain;
  }

  /**
   * Partitions whose metadata could not be applied (opening the replica failed: a full or failing
   * disk). One failure must not stop the others of the delta, and the partition must not be left
   * behind once the disk recovers: they are retried from the current image every second.
   */
  private readonly failed = new Map<string, { topicId: string; partition: number }>();
  private lastRetryMs = 0;

  private async applyOrRetryLater(t: TopicImage, m: PartitionMeta): Promise<void> {
    const k = partitionKey(t.name, m.partition);
    const name = `${t.name}-${m.partition}`;
    try {
      await this.applyPartition(t, m);
      if (this.failed.delete(k)) this.o.logger.info(`${name}: its metadata applied after all`);
    } catch (err) {
      if (!this.failed.has(k))
        this.o.logger.error(
          `${name}: applying its metadata failed (${(err as Error).message}); retrying every second`,
        );
      this.failed.set(k, { topicId: t.topicId, partition: m.partition });
    }
  }

  private retryFailed(): void {
    const now = Date.now();
    if (this.failed.size === 0 || !this.caughtUp || now - this.lastRetryMs < RETRY_MS) return;
    this.lastRetryMs = now;
    const run = async () => {
      const image = this.image;
      if (this.stopped || !image) return;
      for (const [k, f] of [...this.failed]) {
        const t = image.topicById(f.topicId);
        const m = t?.partitions[f.partition];
        if (!t || !m) this.failed.delete(k);
        else await this.applyOrRetryLater(t, m);
      }
      this.reconcileFetchers();
    };
    this.chain = this.chain.then(run, run).catch((err: unknown) => {
      this.o.logger.error(`retrying metadata for replicas failed: ${(err as Error).stack ?? err}`);
    });
  }

  private async apply(delta: MetadataDelta, image: MetadataImage): Promise<void> {
    if (this.stopped) return;
    for (const t of delta.topicsRemoved) await this.removeTopic(t);
    for (const t of delta.topicsCreated) this.o.topics.syncClusterTopic(topicMeta(t));
    for (const name of delta.topicConfigsChanged) {
      const t = image.topic(name);
      if (t) this.o.topics.syncClusterTopic(topicMeta(t));
    }
    for (const { current } of delta.partitionsChanged) {
      const t = image.topicById(current.topicId);
      if (!t) continue;
      this.o.topics.syncClusterTopic(topicMeta(t));
      await this.applyOrRetryLater(t, current);
    }
    this.reconcileFetchers();
  }

  private async applyPartition(t: TopicImage, m: PartitionMeta): Promise<void> {
    const k = partitionKey(t.name, m.partition);
    let rp = this.replicas.get(k);
    if (!m.replicas.includes(this.o.nodeId)) {
      if (rp) {
        const wasLeader = rp.isLeader;
        rp.close();
        this.replicas.delete(k);
        await this.o.topics.removeReplica(t.name, m.partition);
        if (wasLeader && t.name === CONSUMER_OFFSETS_TOPIC)
          this.o.onOffsetsLeadership(m.partition, false, m.leaderEpoch);
      }
      return;
    }
    if (!rp) {
      const partition = await this.o.topics.openReplica(topicMeta(t), m.partition);
      rp = await ReplicatedPartition.open(
        partition,
        this.replicaConfig(t.name),
        {
          nowMs: Date.now,
          sendAlterPartition: (p, req) => this.sendAlterPartition(p, req),
          logger: this.o.logger,
        },
        this.checkpointed.get(partitionKey(t.name, m.partition)) ?? 0,
        m.leaderEpoch,
      );
      this.replicas.set(k, rp);
    }
    const wasLeader = rp.isLeader;
    const previousEpoch = rp.leaderEpoch;
    rp.applyState({
      leaderId: m.leader,
      leaderEpoch: m.leaderEpoch,
      partitionEpoch: m.partitionEpoch,
      isr: m.isr,
      replicas: m.replicas,
    });
    // Leader epochs let the coordinator ignore a stale resign and reload on a newer election.
    if (
      t.name === CONSUMER_OFFSETS_TOPIC &&
      (wasLeader !== rp.isLeader || (rp.isLeader && rp.leaderEpoch !== previousEpoch))
    ) {
      this.o.onOffsetsLeadership(m.partition, rp.isLeader, rp.leaderEpoch);
    }
  }

  private replicaConfig(topic: string): ReplicaConfig {
    return {
      ...DEFAULT_REPLICA_CONFIG,
      brokerId: this.o.nodeId,
      replicaLagTimeMaxMs: this.o.replicaLagTimeMaxMs,
      replicaFetchMaxBytes: this.o.replicaFetchMaxBytes,
      minInsyncReplicas: this.o.minInsyncReplicas(topic),
      // A follower whose request got no answer asks again after this long (Kafka's
      // replica.socket.timeout.ms is 30 s; the fetch's own wait is added by the fetcher).
      followerRequestTimeoutMs: 30_000 + this.o.replicaFetchWaitMaxMs,
      followerBackoffMs: 500,
    };
  }

  private async removeTopic(t: TopicImage): Promise<void> {
    for (const p of t.partitions) {
      const k = partitionKey(t.name, p.partition);
      const rp = this.replicas.get(k);
      if (!rp) continue;
      if (rp.isLeader && t.name === CONSUMER_OFFSETS_TOPIC)
        this.o.onOffsetsLeadership(p.partition, false, rp.leaderEpoch);
      rp.close();
      this.replicas.delete(k);
    }
    await this.o.topics.removeClusterTopic(t.name);
  }

  /** One fetcher per leader that some local follower replica follows. */
  private reconcileFetchers(): void {
    const leaders = new Set<number>();
    for (const rp of this.replicas.values()) {
      if (rp.replica.role === 'follower' && rp.leaderKnown) leaders.add(rp.leaderId);
    }
    for (const [id, f] of this.fetchers) {
      if (!leaders.has(id)) {
        this.fetchers.delete(id);
        void f.stop();
      }
    }
    for (const id of leaders) {
      let f = this.fetchers.get(id);
      if (!f) {
        f = new ReplicaFetcher({
          nodeId: this.o.nodeId,
          leaderId: id,
          address: () => {
            const b = this.image?.broker(id);
            return b ? { host: b.host, port: b.port } : undefined;
          },
          partitions: () =>
            [...this.replicas.values()].filter((rp) => rp.replica.role === 'follower' && rp.leaderId === id),
          fetchWaitMaxMs: this.o.replicaFetchWaitMaxMs,
          fetchMaxBytes: this.o.replicaFetchMaxBytes,
          logger: this.o.logger,
          localAddress: this.o.localAddress,
        });
        this.fetchers.set(id, f);
        f.start();
      }
      f.wake();
    }
  }

  private sendAlterPartition(rp: ReplicatedPartition, req: AlterPartitionRequest): void {
    const topicId = this.o.topics.get(rp.topic)?.meta.topicId ?? '00000000000000000000000000000000';
    this.o.channel
      .alterPartition({
        brokerId: this.o.nodeId,
        brokerEpoch: this.o.brokerEpoch(),
        topics: [
          {
            topicName: rp.topic,
            topicId,
            partitions: [
              {
                partitionIndex: rp.index,
                leaderEpoch: req.leaderEpoch,
                newIsr: [...req.newIsr],
                newIsrWithEpochs: req.newIsr.map((brokerId) => ({ brokerId, brokerEpoch: -1 })),
                leaderRecoveryState: 0,
                partitionEpoch: req.partitionEpoch,
              },
            ],
          },
        ],
      })
      .then(
        (resp) => {
          const p = resp.topics[0]?.partitions[0];
          const errorCode = p ? p.errorCode : resp.errorCode;
          rp.onAlterPartitionResponse({
            errorCode,
            requestPartitionEpoch: req.partitionEpoch,
            state:
              p && errorCode === ErrorCode.NONE
                ? {
                    leaderId: p.leaderId,
                    leaderEpoch: p.leaderEpoch,
                    partitionEpoch: p.partitionEpoch,
                    isr: p.isr,
                    replicas:
                      this.image?.topic(rp.topic)?.partitions[rp.index]?.replicas ?? rp.replica.replicas,
                  }
                : undefined,
          });
        },
        (err: unknown) => {
          // Unanswered: the replica resends after alterPartitionRetryMs.
          this.o.logger.warn(`AlterPartition ${rp.topic}-${rp.index}: ${(err as Error).message}`);
        },
      );
  }
}

export function topicMeta(t: TopicImage): {
  name: string;
  topicId: string;
  partitions: number;
  configs: Record<string, string>;
} {
  return { name: t.name, topicId: t.topicId, partitions: t.partitions.length, configs: { ...t.configs } };
}
