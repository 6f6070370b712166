/**
 * The active controller's side of the broker-to-controller APIs, in Kafka's wire shapes:
 * BrokerRegistration (62), BrokerHeartbeat (63), AlterPartition (56), AllocateProducerIds (67),
 * and the topic operations other brokers forward (CreateTopics, DeleteTopics, CreatePartitions,
 * AlterConfigs). Each runs as one MetadataQuorum operation; a node that is not the active
 * controller answers NOT_CONTROLLER and the caller retries against the right one.
 */

import type { MetadataImage, TopicImage } from '../metadata/image.js';
import type { Encodable } from '../protocol/codec-support.js';
import { ErrorCode, KafkaError } from '../protocol/errors.js';
import type { AllocateProducerIdsRequest } from '../protocol/generated/allocate-producer-ids-request.js';
import type { AllocateProducerIdsResponse } from '../protocol/generated/allocate-producer-ids-response.js';
import type { AlterPartitionRequest } from '../protocol/generated/alter-partition-request.js';
import type { AlterPartitionResponse } from '../protocol/generated/alter-partition-response.js';
import type { BrokerHeartbeatRequest } from '../protocol/generated/broker-heartbeat-request.js';
import type { BrokerHeartbeatResponse } from '../protocol/generated/broker-heartbeat-response.js';
import type { BrokerRegistrationRequest } from '../protocol/generated/broker-registration-request.js';
import type { BrokerRegistrationResponse } from '../protocol/generated/broker-registration-response.js';
import { type MetadataQuorum, NotControllerError } from './metadata-quorum.js';

function errorOf(err: unknown): ErrorCode {
  if (err instanceof KafkaError) return err.errorCode;
  throw err;
}

export interface CreateTopicSpec {
  name: string;
  numPartitions: number;
  replicationFactor: number;
  assignments?: { partitionIndex: number; brokerIds: number[] }[];
  configs: [string, string][];
}

export class ControllerService {
  constructor(private readonly quorum: MetadataQuorum) {}

  get isActive(): boolean {
    return this.quorum.isActiveController;
  }

  async brokerRegistration(req: BrokerRegistrationRequest): Promise<Encodable<BrokerRegistrationResponse>> {
    const l = req.listeners[0];
    if (!l) return { throttleTimeMs: 0, errorCode: ErrorCode.INVALID_REQUEST, brokerEpoch: -1 };
    try {
      return await this.quorum.run(
        (c, now) => {
          const r = c.registerBroker(
            {
              brokerId: req.brokerId,
              incarnationId: req.incarnationId,
              host: l.host,
              port: l.port,
              rack: req.rack,
            },
            now,
          );
          return { records: r.records, result: r.errorCode };
        },
        (errorCode, image) => ({
          throttleTimeMs: 0,
          errorCode,
          brokerEpoch: errorCode === ErrorCode.NONE ? (image.broker(req.brokerId)?.epoch ?? -1) : -1,
        }),
      );
    } catch (err) {
      return { throttleTimeMs: 0, errorCode: errorOf(err), brokerEpoch: -1 };
    }
  }

  async brokerHeartbeat(req: BrokerHeartbeatRequest): Promise<Encodable<BrokerHeartbeatResponse>> {
    try {
      return await this.quorum.run(
        (c, now) => {
          const r = c.heartbeat(
            {
              brokerId: req.brokerId,
              brokerEpoch: req.brokerEpoch,
              currentMetadataOffset: req.currentMetadataOffset,
              wantShutDown: req.wantShutDown,
            },
            now,
          );
          return { records: r.records, result: r };
        },
        (r, image) => {
          const b = image.broker(req.brokerId);
          return {
            throttleTimeMs: 0,
            errorCode: r.errorCode,
            isCaughtUp: r.isCaughtUp,
            // After the records applied: an UnfenceBroker in this very batch counts.
            isFenced: b ? b.fenced : true,
            shouldShutDown: r.shouldShutDown,
          };
        },
      );
    } catch (err) {
      return {
        throttleTimeMs: 0,
        errorCode: errorOf(err),
        isCaughtUp: false,
        isFenced: true,
        shouldShutDown: false,
      };
    }
  }

  async alterPartition(req: AlterPartitionRequest): Promise<Encodable<AlterPartitionResponse>> {
    const topics: Encodable<AlterPartitionResponse>['topics'] = [];
    let topLevel: ErrorCode = ErrorCode.NONE;
    for (const t of req.topics) {
      const partitions = [];
      for (const p of t.partitions) {
        const newIsr = p.newIsrWithEpochs.length > 0 ? p.newIsrWithEpochs.map((b) => b.brokerId) : p.newIsr;
        const fail = (errorCode: ErrorCode) => ({
          partitionIndex: p.partitionIndex,
          errorCode,
          leaderId: -1,
          leaderEpoch: -1,
          isr: [],
          leaderRecoveryState: 0,
          partitionEpoch: -1,
        });
        try {
          const topicId =
            t.topicId !== '00000000000000000000000000000000'
              ? t.topicId
              : (this.quorum.image.topic(t.topicName)?.topicId ?? '');
          partitions.push(
            await this.quorum.run(
              (c) => {
                const r = c.alterPartition({
                  brokerId: req.brokerId,
                  brokerEpoch: req.brokerEpoch,
                  topicId,
                  partition: p.partitionIndex,
                  leaderEpoch: p.leaderEpoch,
                  partitionEpoch: p.partitionEpoch,
                  newIsr,
                });
                return { records: r.records, result: r.errorCode };
              },
              (errorCode, image) => {
                if (errorCode !== ErrorCode.NONE) return fail(errorCode);
                const m = image.topicById(topicId)?.partitions[p.partitionIndex];
                if (!m) return fail(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
                return {
                  partitionIndex: p.partitionIndex,
                  errorCode: ErrorCode.NONE,
                  leaderId: m.leader,
                  leaderEpoch: m.leaderEpoch,
                  isr: [...m.isr],
                  leaderRecoveryState: 0,
                  partitionEpoch: m.partitionEpoch,
                };
              },
            ),
          );
        } catch (err) {
          const code = errorOf(err);
          if (code === ErrorCode.NOT_CONTROLLER) topLevel = code;
          partitions.push(fail(code));
        }
      }
      topics.push({ topicName: t.topicName, topicId: t.topicId, partitions });
    }
    return { throttleTimeMs: 0, errorCode: topLevel, topics };
  }

  async allocateProducerIds(
    req: AllocateProducerIdsRequest,
  ): Promise<Encodable<AllocateProducerIdsResponse>> {
    try {
      return await this.quorum.run(
        (c) => {
          const r = c.allocateProducerIds({ brokerId: req.brokerId, brokerEpoch: req.brokerEpoch });
          return { records: r.records, result: r };
        },
        (r) => ({
          throttleTimeMs: 0,
          errorCode: r.errorCode,
          producerIdStart: r.errorCode === ErrorCode.NONE ? r.firstProducerId : -1,
          producerIdLen: r.errorCode === ErrorCode.NONE ? r.count : 0,
        }),
      );
    } catch (err) {
      return { throttleTimeMs: 0, errorCode: errorOf(err), producerIdStart: -1, producerIdLen: 0 };
    }
  }

  // ---- topic operations (from this node's handlers, or forwarded by another broker's) -----------

  /** Creates one topic; resolves with its image once applied, throws KafkaError with Kafka's answer. */
  async createTopic(
    spec: CreateTopicSpec,
    validateOnly: boolean,
  ): Promise<{ topic: TopicImage | undefined; replicationFactor: number; numPartitions: number }> {
    return this.quorum.run(
      (c) => {
        const r = c.createTopics(
          [
            {
              name: spec.name,
              numPartitions: spec.numPartitions,
              replicationFactor: spec.replicationFactor,
              ...(spec.assignments && spec.assignments.length > 0 ? { assignments: spec.assignments } : {}),
              configs: spec.configs,
            },
          ],
          validateOnly,
        );
        return { records: r.records, result: r.results[0]! };
      },
      (res, image) => {
        if (res.errorCode !== ErrorCode.NONE)
          throw new KafkaError(res.errorCode, res.errorMessage ?? undefined);
        return {
          topic: image.topic(spec.name),
          replicationFactor: res.replicationFactor,
          numPartitions: res.numPartitions,
        };
      },
    );
  }

  async deleteTopic(name: string): Promise<void> {
    await this.quorum.run(
      (c) => {
        const r = c.deleteTopics([name]);
        return { records: r.records, result: r.results[0]! };
      },
      (res) => {
        if (res.errorCode !== ErrorCode.NONE) throw new KafkaError(res.errorCode);
      },
    );
  }

  async createPartitions(
    name: string,
    count: number,
    assignments: number[][] | undefined,
    validateOnly: boolean,
  ): Promise<void> {
    await this.quorum.run(
      (c) => {
        const r = c.createPartitions(
          [{ name, count, ...(assignments ? { assignments } : {}) }],
          validateOnly,
        );
        return { records: r.records, result: r.results[0]! };
      },
      (res) => {
        if (res.errorCode !== ErrorCode.NONE)
          throw new KafkaError(res.errorCode, res.errorMessage ?? undefined);
      },
    );
  }

  /** Replaces the configs set on a topic with `configs` (AlterConfigs semantics). */
  async setTopicConfigs(name: string, configs: Record<string, string>, validateOnly: boolean): Promise<void> {
    await this.quorum.run(
      (c, _now) => {
        const current = this.quorum.image.topic(name)?.configs ?? {};
        const next: Record<string, string | null> = {};
        for (const k of Object.keys(current)) next[k] = null;
        for (const [k, v] of Object.entries(configs)) next[k] = v;
        const r = c.alterTopicConfigs(name, next, validateOnly);
        return { records: r.records, result: r };
      },
      (res) => {
        if (res.errorCode !== ErrorCode.NONE)
          throw new KafkaError(res.errorCode, res.errorMessage ?? undefined);
      },
    );
  }

  /** Creates an internal topic (e.g. __consumer_offsets) if it does not exist. */
  async ensureTopic(
    name: string,
    numPartitions: number,
    replicationFactor: number,
    configs: [string, string][],
  ): Promise<TopicImage | undefined> {
    return this.quorum.run(
      (c) => ({ records: c.ensureTopic(name, numPartitions, replicationFactor, configs), result: undefined }),
      (_r, image: MetadataImage) => image.topic(name),
    );
  }
}

export { NotControllerError };
