/**
 * ReplicaFetcher: one per leader broker this node follows partitions of (Kafka's
 * ReplicaFetcherThread). It batches every due follower request into one OffsetForLeaderEpoch
 * (truncation after a leader change, KIP-101/279) and one Fetch (v12: replicaId,
 * lastFetchedEpoch, divergingEpoch) to that leader, hands each partition its answer, and waits for
 * the appended batches to be fsynced before asking again — the next Fetch's offset is what the
 * leader counts toward the high watermark, so it must be durable here first.
 *
 * A failed request (connection lost, timeout) is answered to each partition as an error, so the
 * state machine backs off and asks again instead of waiting for its request timeout.
 */

import { Connection } from '../client/connection.js';
import { ErrorCode } from '../protocol/errors.js';
import { ApiKey } from '../protocol/generated/index.js';
import type {
  FollowerRequest,
  OffsetForLeaderEpochRequest,
  ReplicaFetchRequest,
} from '../replication/messages.js';
import type { ReplicatedPartition } from './replicated-partition.js';

export interface ReplicaFetcherOptions {
  readonly nodeId: number;
  readonly leaderId: number;
  readonly address: () => { host: string; port: number } | undefined;
  /** The partitions that currently follow this leader. */
  readonly partitions: () => ReplicatedPartition[];
  readonly fetchWaitMaxMs: number;
  readonly fetchMaxBytes: number;
  readonly logger: { warn(m: string): void };
  readonly localAddress?: string;
}

const FETCH_VERSION = 12;
const OFFSET_FOR_LEADER_EPOCH_VERSION = 4;
const IDLE_MS = 25;

export class ReplicaFetcher {
  private conn: Connection | undefined;
  private stopped = false;
  private wakeUp: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private lastWarn = 0;

  constructor(private readonly o: ReplicaFetcherOptions) {}

  start(): void {
    this.running ??= this.loop();
  }

  /** Something changed (a partition joined, a flush completed): look for due requests now. */
  wake(): void {
    this.wakeUp?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    this.conn?.close();
    await this.running;
  }

  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wakeUp = done;
    });
  }

  private async connection(): Promise<Connection | undefined> {
    if (this.conn?.isOpen) return this.conn;
    const a = this.o.address();
    if (!a) return undefined;
    try {
      this.conn = await Connection.connect({
        host: a.host,
        port: a.port,
        clientId: `sluice-replica-fetcher-${this.o.nodeId}-from-${this.o.leaderId}`,
        requestTimeoutMs: 30_000,
        connectTimeoutMs: 3_000,
        localAddress: this.o.localAddress,
      });
      return this.conn;
    } catch (err) {
      this.warn(
        `cannot connect to leader ${this.o.leaderId} at ${a.host}:${a.port}: ${(err as Error).message}`,
      );
      return undefined;
    }
  }

  private warn(m: string): void {
    if (Date.now() - this.lastWarn < 5_000) return;
    this.lastWarn = Date.now();
    this.o.logger.warn(m);
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const due: { rp: ReplicatedPartition; req: FollowerRequest }[] = [];
      for (const rp of this.o.partitions()) {
        const req = rp.pollRequest();
        if (req) due.push({ rp, req });
      }
      if (due.length === 0) {
        await this.idle(IDLE_MS);
        continue;
      }
      const conn = await this.connection();
      if (!conn) {
        this.failAll(due);
        await this.idle(500);
        continue;
      }
      const epochs = due.filter((d) => d.req.kind === 'offset-for-leader-epoch');
      const fetches = due.filter((d) => d.req.kind === 'fetch');
      try {
        await Promise.all([
          epochs.length > 0 ? this.sendOffsetForLeaderEpoch(conn, epochs) : undefined,
          fetches.length > 0 ? this.sendFetch(conn, fetches) : undefined,
        ]);
      } catch (err) {
        this.warn(`replica fetch from leader ${this.o.leaderId} failed: ${(err as Error).message}`);
        conn.close();
        this.failAll(due);
        await this.idle(200);
        continue;
      }
      // The next request reports our log end offset: wait until what we appended is on disk.
      const unflushed = due.filter((d) => d.rp.awaitingFlush).map((d) => d.rp.flushed());
      if (unflushed.length > 0) await Promise.all(unflushed);
    }
  }

  private failAll(due: { rp: ReplicatedPartition; req: FollowerRequest }[]): void {
    for (const { rp, req } of due) {
      if (req.kind === 'fetch') {
        rp.handleLeaderResponse({
          kind: 'fetch-response',
          correlationId: req.correlationId,
          errorCode: ErrorCode.NETWORK_EXCEPTION,
          highWatermark: -1,
          logStartOffset: -1,
          divergingEpoch: undefined,
          records: Buffer.alloc(0),
        });
      } else {
        rp.handleLeaderResponse({
          kind: 'offset-for-leader-epoch-response',
          correlationId: req.correlationId,
          errorCode: ErrorCode.NETWORK_EXCEPTION,
          leaderEpoch: -1,
          endOffset: -1,
        });
      }
    }
  }

  private async sendOffsetForLeaderEpoch(
    conn: Connection,
    due: { rp: ReplicatedPartition; req: FollowerRequest }[],
  ): Promise<void> {
    const byTopic = groupByTopic(due as { rp: ReplicatedPartition; req: OffsetForLeaderEpochRequest }[]);
    const resp = await conn.send(
      ApiKey.OffsetForLeaderEpoch,
      {
        replicaId: this.o.nodeId,
        topics: [...byTopic].map(([topic, list]) => ({
          topic,
          partitions: list.map(({ rp, req }) => ({
            partition: rp.index,
            currentLeaderEpoch: req.currentLeaderEpoch,
            leaderEpoch: req.leaderEpoch,
          })),
        })),
      },
      { version: OFFSET_FOR_LEADER_EPOCH_VERSION },
    );
    for (const [topic, list] of byTopic) {
      const t = resp.topics.find((x) => x.topic === topic);
      for (const { rp, req } of list) {
        const p = t?.partitions.find((x) => x.partition === rp.index);
        rp.handleLeaderResponse({
          kind: 'offset-for-leader-epoch-response',
          correlationId: req.correlationId,
          errorCode: p ? p.errorCode : ErrorCode.UNKNOWN_SERVER_ERROR,
          leaderEpoch: p ? p.leaderEpoch : -1,
          endOffset: p ? p.endOffset : -1,
        });
      }
    }
  }

  private async sendFetch(
    conn: Connection,
    due: { rp: ReplicatedPartition; req: FollowerRequest }[],
  ): Promise<void> {
    const byTopic = groupByTopic(due as { rp: ReplicatedPartition; req: ReplicaFetchRequest }[]);
    const resp = await conn.send(
      ApiKey.Fetch,
      {
        clusterId: null,
        replicaId: this.o.nodeId,
        replicaState: { replicaId: -1, replicaEpoch: -1 },
        maxWaitMs: this.o.fetchWaitMaxMs,
        minBytes: 1,
        maxBytes: Math.max(this.o.fetchMaxBytes, 10 * 1024 * 1024),
        isolationLevel: 0,
        sessionId: 0,
        sessionEpoch: -1,
        topics: [...byTopic].map(([topic, list]) => ({
          topic,
          topicId: '00000000000000000000000000000000',
          partitions: list.map(({ rp, req }) => ({
            partition: rp.index,
            currentLeaderEpoch: req.currentLeaderEpoch,
            fetchOffset: req.fetchOffset,
            lastFetchedEpoch: req.lastFetchedEpoch,
            logStartOffset: req.logStartOffset,
            partitionMaxBytes: req.maxBytes,
            replicaDirectoryId: '00000000000000000000000000000000',
          })),
        })),
        forgottenTopicsData: [],
        rackId: '',
      },
      { version: FETCH_VERSION, timeoutMs: 30_000 + this.o.fetchWaitMaxMs },
    );
    if (resp.errorCode !== ErrorCode.NONE) throw new Error(`Fetch answered error ${resp.errorCode}`);
    for (const [topic, list] of byTopic) {
      const t = resp.responses.find((x) => x.topic === topic);
      for (const { rp, req } of list) {
        const p = t?.partitions.find((x) => x.partitionIndex === rp.index);
        rp.handleLeaderResponse({
          kind: 'fetch-response',
          correlationId: req.correlationId,
          errorCode: p ? p.errorCode : ErrorCode.UNKNOWN_SERVER_ERROR,
          highWatermark: p ? p.highWatermark : -1,
          logStartOffset: p ? p.logStartOffset : -1,
          divergingEpoch:
            p && p.divergingEpoch.epoch >= 0
              ? { epoch: p.divergingEpoch.epoch, endOffset: p.divergingEpoch.endOffset }
              : undefined,
          records: p?.records ?? Buffer.alloc(0),
        });
      }
    }
  }
}

/** The due requests grouped by topic, as the Fetch and OffsetForLeaderEpoch requests nest them. */
function groupByTopic<T extends { rp: ReplicatedPartition }>(due: T[]): Map<string, T[]> {
  const byTopic = new Map<string, T[]>();
  for (const d of due) {
    const list = byTopic.get(d.rp.topic) ?? [];
    list.push(d);
    byTopic.set(d.rp.topic, list);
  }
  return byTopic;
}
