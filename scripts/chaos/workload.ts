/**
 * The chaos workload: two kafkajs producers sending unique values with acks=all, a consumer with
 * assigned partitions (a raw Fetch loop per partition that follows the leader itself) and one
 * kafkajs consumer-group member. Each records its history in the shapes checker.ts reads: every
 * send's outcome, every read in read order, every group join and offset reset.
 *
 * Sends: one value per partition per send (`p<producer>-<n>`, partition n % partitions), so one
 * kafkajs send is a request with one batch per partition whose acknowledged base offset is the
 * value's offset. A send is 'ok' with the acknowledged offset, 'failed' when kafkajs gave up with
 * a definite broker refusal (the request was not appended: NOT_ENOUGH_REPLICAS, NOT_LEADER_...,
 * connection refused), else 'unknown' (timeouts, dropped connections, errors after append). Note
 * that kafkajs retries: an earlier attempt of a 'failed' send may still have been appended, which is
 * why the checker only reports failed values it finds, never fails on them.
 *
 * After any error the idempotent producer is thrown away and a new one made (a new producer id).
 * kafkajs advances its sequence numbers only on success; reusing a producer whose last batch may
 * have been appended would send the next values under the same sequence, and a broker rightly
 * answers those as duplicates of the earlier batch (acknowledged, not appended): a client defect
 * the checker would report as lost writes. The Java client bumps its epoch for the same reason.
 */

import type { Consumer, Kafka as KafkaClient, Producer } from 'kafkajs';
import kafkajs from 'kafkajs';
import { ErrorCode, errorName } from '../../src/protocol/errors.js';
import { ApiKey } from '../../src/protocol/generated/index.js';
import { decodeRecordBatches } from '../../src/protocol/records/index.js';
import { listOffset } from '../../test/helpers/read-partition.js';
import { WireClient } from '../../test/helpers/wire-client.js';
import type { ConsumerHistory, SendRecord } from './checker.js';
import { type ChaosCluster, PROBE_TIMEOUT_MS, sleep, withTimeout } from './cluster.js';

const { Kafka, logLevel } = kafkajs;
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

/** A send that has not settled this long after the producers are told to stop is 'unknown'. */
const SEND_SETTLE_MS_MAX = 30_000;
const FETCH_TIMEOUT_MS = 3_000;
const FETCH_MAX_WAIT_MS = 250;

export function kafkaClient(cluster: ChaosCluster, clientId: string): KafkaClient {
  return new Kafka({
    clientId,
    brokers: cluster.bootstraps,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1_000,
    requestTimeout: 5_000,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1_000 },
  });
}

/** Every error in a kafkajs error's chain (cause, originalError, aggregate errors). */
function errorChain(e: unknown, out: Record<string, unknown>[] = [], depth = 0): Record<string, unknown>[] {
  if (!e || typeof e !== 'object' || depth > 8) return out;
  const r = e as Record<string, unknown>;
  out.push(r);
  errorChain(r.cause, out, depth + 1);
  if (r.originalError !== r.cause) errorChain(r.originalError, out, depth + 1);
  if (Array.isArray(r.errors)) for (const x of r.errors) errorChain(x, out, depth + 1);
  return out;
}

const DEFINITE_REFUSALS = new Set([
  'NOT_ENOUGH_REPLICAS',
  'NOT_LEADER_OR_FOLLOWER',
  'NOT_LEADER_FOR_PARTITION',
  'LEADER_NOT_AVAILABLE',
  'UNKNOWN_TOPIC_OR_PARTITION',
]);

/** 'failed' when the last error in the chain is a refusal before any append, else 'unknown'. */
export function classifySendError(e: unknown): { outcome: 'failed' | 'unknown'; error: string } {
  const chain = errorChain(e);
  const innermost = chain[chain.length - 1] ?? {};
  const type = typeof innermost.type === 'string' ? innermost.type : undefined;
  const code = typeof innermost.code === 'string' ? innermost.code : undefined;
  const name = typeof innermost.name === 'string' ? innermost.name : 'Error';
  const error = [name, type ?? code].filter(Boolean).join(':');
  const definite = (type !== undefined && DEFINITE_REFUSALS.has(type)) || code === 'ECONNREFUSED';
  return { outcome: definite ? 'failed' : 'unknown', error };
}

export class ProducerWorker {
  readonly sends: SendRecord[] = [];
  /** kafkajs errors by kind, for the report. */
  readonly errors = new Map<string, number>();
  reinitialisations = 0;
  private producer: Producer | null = null;
  private stopped = false;
  private loop: Promise<void> | null = null;
  private n = 0;

  constructor(
    private readonly kafka: KafkaClient,
    readonly name: string,
    readonly idempotent: boolean,
    private readonly topic: string,
    private readonly partitions: number,
    private readonly t0: number,
  ) {}

  private async connect(): Promise<Producer> {
    const p = this.idempotent
      ? this.kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
      : this.kafka.producer({ idempotent: false, maxInFlightRequests: 1 });
    await p.connect();
    return p;
  }

  start(): void {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        this.producer ??= await withTimeout(this.connect(), 15_000, `${this.name} connect`);
      } catch {
        await sleep(500);
        continue;
      }
      const records: SendRecord[] = [];
      for (let i = 0; i < this.partitions; i++) {
        const n = this.n++;
        records.push({
          value: `${this.name}-${n}`,
          producer: this.name,
          idempotent: this.idempotent,
          partition: n % this.partitions,
          outcome: 'unknown',
          startMs: Date.now() - this.t0,
        });
      }
      this.sends.push(...records);
      try {
        const res = await this.producer.send({
          topic: this.topic,
          acks: -1,
          timeout: 5_000,
          messages: records.map((r) => ({ value: r.value, partition: r.partition })),
        });
        const endMs = Date.now() - this.t0;
        // kafkajs can resolve a send without a partition's acknowledgement: when a retry finds the
        // partition's new leader among brokers that already answered, it never resends it.
        for (const r of records) {
          const meta = res.find((m) => m.partition === r.partition);
          r.endMs = endMs;
          if (meta && meta.errorCode === 0 && meta.baseOffset !== undefined) {
            r.outcome = 'ok';
            r.offset = Number(meta.baseOffset);
          } else {
            r.error = `no acknowledgement for partition ${r.partition}: ${JSON.stringify(meta)}`;
            this.errors.set('no acknowledgement', (this.errors.get('no acknowledgement') ?? 0) + 1);
          }
        }
        if (this.idempotent && records.some((r) => r.outcome !== 'ok')) this.discardProducer();
      } catch (e) {
        const { outcome, error } = classifySendError(e);
        const endMs = Date.now() - this.t0;
        for (const r of records) Object.assign(r, { outcome, error, endMs });
        this.errors.set(error, (this.errors.get(error) ?? 0) + 1);
        if (this.idempotent) this.discardProducer();
        await sleep(100);
      }
    }
  }

  private discardProducer(): void {
    const old = this.producer;
    this.producer = null;
    this.reinitialisations++;
    if (old) void withTimeout(old.disconnect(), 5_000, 'disconnect').catch(() => {});
  }

  /** Stops sending; a send still in flight after SEND_SETTLE_MS_MAX stays 'unknown'. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.loop) await withTimeout(this.loop, SEND_SETTLE_MS_MAX, `${this.name} stop`).catch(() => {});
    if (this.producer) await withTimeout(this.producer.disconnect(), 5_000, 'disconnect').catch(() => {});
  }
}

/**
 * A consumer of assigned partitions: one loop per partition, each fetching (Fetch v12, no session)
 * from the partition's current leader as the metadata of any running node names it, starting at
 * offset 0. On OFFSET_OUT_OF_RANGE (its position above the leader's log: a truncation) it records
 * a reset and continues from the leader's high watermark, like auto.offset.reset=latest.
 */
export class AssignedConsumer {
  readonly history: ConsumerHistory = { name: 'assigned', reads: [], markers: [] };
  readonly positions: number[];
  readonly errors = new Map<string, number>();
  private stopped = false;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly cluster: ChaosCluster,
    private readonly topic: string,
    partitions: number,
    private readonly t0: number,
  ) {
    this.positions = Array.from({ length: partitions }, () => 0);
  }

  start(): void {
    this.loops = this.positions.map((_, p) => this.run(p));
  }

  private countError(e: string): void {
    this.errors.set(e, (this.errors.get(e) ?? 0) + 1);
  }

  private async run(partition: number): Promise<void> {
    let client: WireClient | null = null;
    let leader = -1;
    const drop = () => {
      client?.close();
      client = null;
    };
    while (!this.stopped) {
      try {
        if (!client) {
          const m = await this.cluster.metadata(this.topic);
          leader = m?.find((x) => x.partition === partition)?.leader ?? -1;
          if (leader <= 0 || this.cluster.state[leader - 1] !== 'running') {
            await sleep(200);
            continue;
          }
          client = await withTimeout(
            WireClient.connect(this.cluster.portOf(leader)),
            PROBE_TIMEOUT_MS,
            'connect',
          );
        }
        const c: WireClient = client;
        const res = await withTimeout(
          c.request(ApiKey.Fetch, 12, {
            replicaId: -1,
            maxWaitMs: FETCH_MAX_WAIT_MS,
            minBytes: 1,
            maxBytes: 1 << 20,
            isolationLevel: 0,
            sessionId: 0,
            sessionEpoch: -1,
            topics: [
              {
                topic: this.topic,
                partitions: [
                  {
                    partition,
                    fetchOffset: this.positions[partition]!,
                    partitionMaxBytes: 1 << 20,
                    logStartOffset: -1,
                    currentLeaderEpoch: -1,
                    lastFetchedEpoch: -1,
                  },
                ],
              },
            ],
            forgottenTopicsData: [],
            rackId: '',
          }),
          FETCH_TIMEOUT_MS,
          'fetch',
          () => c.close(),
        );
        const pd = res.responses[0]?.partitions[0];
        const code = res.errorCode || (pd?.errorCode ?? ErrorCode.UNKNOWN_SERVER_ERROR);
        if (code === ErrorCode.OFFSET_OUT_OF_RANGE) {
          const hw = await listOffset(this.cluster.portOf(leader), this.topic, partition, -1, c);
          this.history.markers.push({
            readIndex: this.history.reads.length,
            atMs: Date.now() - this.t0,
            kind: 'reset',
            partition,
            detail: `OFFSET_OUT_OF_RANGE at ${this.positions[partition]} from node ${leader}; reset to ${hw}`,
          });
          this.positions[partition] = hw;
          continue;
        }
        if (code !== 0 || !pd) {
          this.countError(errorName(code));
          drop();
          await sleep(100);
          continue;
        }
        const batches = pd.records && pd.records.length > 0 ? await decodeRecordBatches(pd.records) : [];
        for (const b of batches) {
          for (const r of b.records) {
            if (r.offset < this.positions[partition]!) continue;
            this.history.reads.push({
              partition,
              offset: r.offset,
              value: r.value?.toString() ?? '',
              node: leader,
              atMs: Date.now() - this.t0,
            });
            this.positions[partition] = r.offset + 1;
          }
        }
      } catch (e) {
        this.countError((e as Error).message.replace(/[0-9]+/g, 'N').slice(0, 80));
        drop();
        await sleep(200);
      }
    }
    drop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }
}

/** One kafkajs consumer-group member subscribed from the beginning; records joins as rebalances. */
export class GroupConsumer {
  readonly history: ConsumerHistory = { name: 'group', reads: [], markers: [] };
  /** Highest offset read per partition. */
  readonly maxOffsets: number[];
  joins = 0;
  crashes = 0;
  private consumer: Consumer | null = null;

  constructor(
    private readonly kafka: KafkaClient,
    private readonly groupId: string,
    private readonly topic: string,
    partitions: number,
    private readonly t0: number,
  ) {
    this.maxOffsets = Array.from({ length: partitions }, () => -1);
  }

  async start(): Promise<void> {
    const consumer = this.kafka.consumer({
      groupId: this.groupId,
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
      maxWaitTimeInMs: FETCH_MAX_WAIT_MS,
      retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1_000, restartOnFailure: async () => true },
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, () => {
      this.joins++;
      this.history.markers.push({
        readIndex: this.history.reads.length,
        atMs: Date.now() - this.t0,
        kind: 'rebalance',
      });
    });
    consumer.on(consumer.events.CRASH, () => {
      this.crashes++;
    });
    await consumer.connect();
    await consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const offset = Number(message.offset);
        this.history.reads.push({
          partition,
          offset,
          value: message.value?.toString() ?? '',
          atMs: Date.now() - this.t0,
        });
        if (offset > (this.maxOffsets[partition] ?? -1)) this.maxOffsets[partition] = offset;
      },
    });
  }

  async stop(): Promise<void> {
    if (this.consumer)
      await withTimeout(this.consumer.disconnect(), 15_000, 'group disconnect').catch(() => {});
  }
}
