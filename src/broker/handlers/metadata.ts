/**
 * Metadata (key 3), v0-12. Answers for all topics (null list, or the empty list in v0) or the
 * named ones (by name, or by topic id in v10+), creating unknown topics when
 * auto.create.topics.enable is set and the request allows it (always for v0-3, as Kafka).
 * A single-node broker is leader and sole replica of every partition.
 */

import type { Cluster } from '../../cluster/cluster.js';
import type { MetadataImage, TopicImage } from '../../metadata/image.js';
import { type Encodable, ZERO_UUID } from '../../protocol/codec-support.js';
import { ErrorCode } from '../../protocol/errors.js';
import { ApiKey } from '../../protocol/generated/index.js';
import type { MetadataRequest } from '../../protocol/generated/metadata-request.js';
import type { MetadataResponseTopic } from '../../protocol/generated/metadata-response.js';
import type { Broker } from '../broker.js';
import { defineHandler } from '../dispatcher.js';
import { type Topic, local, validateTopicName } from '../topics.js';

export function describeTopic(broker: Broker, t: Topic): Encodable<MetadataResponseTopic> {
  return {
    errorCode: 0,
    name: t.meta.name,
    topicId: t.meta.topicId,
    isInternal: t.meta.name.startsWith('__'),
    partitions: local(t).map((p) => ({
      errorCode: 0,
      partitionIndex: p.index,
      leaderId: broker.nodeId,
      leaderEpoch: p.leaderEpoch,
      replicaNodes: [broker.nodeId],
      isrNodes: [broker.nodeId],
      offlineReplicas: [],
    })),
    topicAuthorizedOperations: -2147483648,
  };
}

/** A topic as the cluster's metadata image describes it (leaders, replicas, ISR of every partition). */
function describeClusterTopic(image: MetadataImage, t: TopicImage): Encodable<MetadataResponseTopic> {
  return {
    errorCode: 0,
    name: t.name,
    topicId: t.topicId,
    isInternal: t.name.startsWith('__'),
    partitions: t.partitions.map((p) => ({
      errorCode: p.leader < 0 ? ErrorCode.LEADER_NOT_AVAILABLE : 0,
      partitionIndex: p.partition,
      leaderId: p.leader,
      leaderEpoch: p.leaderEpoch,
      replicaNodes: [...p.replicas],
      isrNodes: [...p.isr],
      offlineReplicas: p.replicas.filter((id) => {
        const b = image.broker(id);
        return !b || b.fenced;
      }),
    })),
    topicAuthorizedOperations: -2147483648,
  };
}

/** The brokers clients may use: registered and not fenced (as Kafka lists alive brokers). */
export function clusterBrokers(
  image: MetadataImage,
): { nodeId: number; host: string; port: number; rack: string | null }[] {
  return image
    .liveBrokers()
    .map((b) => ({ nodeId: b.id, host: b.host, port: b.port, rack: b.rack }))
    .sort((a, b) => a.nodeId - b.nodeId);
}

export const metadataHandler = defineHandler<Broker, ApiKey.Metadata>(
  ApiKey.Metadata,
  { min: 0, max: 12 },
  async (ctx, req) => {
    const broker = ctx.broker;
    if (broker.cluster) return clusterMetadata(broker, broker.cluster, ctx.apiVersion, req);
    const topics: Encodable<MetadataResponseTopic>[] = [];
    const all = req.topics === null || (ctx.apiVersion === 0 && req.topics.length === 0);
    if (all) {
      for (const t of broker.topics.list()) topics.push(describeTopic(broker, t));
    } else {
      const allowAuto = ctx.apiVersion < 4 || req.allowAutoTopicCreation;
      for (const rt of req.topics ?? []) {
        if (rt.name === null || rt.name === undefined) {
          const t = rt.topicId && rt.topicId !== ZERO_UUID ? broker.topics.getById(rt.topicId) : undefined;
          if (t) topics.push(describeTopic(broker, t));
          else
            topics.push({
              errorCode: ErrorCode.UNKNOWN_TOPIC_ID,
              name: null,
              topicId: rt.topicId,
              partitions: [],
            });
          continue;
        }
        let t = broker.topics.get(rt.name);
        if (!t && allowAuto && (await broker.topicAdmin.autoCreate(rt.name))) t = broker.topics.get(rt.name);
        if (t) topics.push(describeTopic(broker, t));
        else {
          const invalid = validateTopicName(rt.name) !== null;
          topics.push({
            errorCode: invalid ? ErrorCode.INVALID_TOPIC_EXCEPTION : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
            name: rt.name,
            topicId: ZERO_UUID,
            partitions: [],
          });
        }
      }
    }
    const adv = broker.advertised;
    return {
      throttleTimeMs: 0,
      brokers: [{ nodeId: broker.nodeId, host: adv.host, port: adv.port, rack: null }],
      clusterId: broker.clusterId,
      controllerId: broker.nodeId,
      topics,
      clusterAuthorizedOperations: -2147483648,
    };
  },
);

async function clusterMetadata(broker: Broker, cluster: Cluster, apiVersion: number, req: MetadataRequest) {
  const image = cluster.quorum.image;
  const topics: Encodable<MetadataResponseTopic>[] = [];
  const all = req.topics === null || (apiVersion === 0 && req.topics.length === 0);
  if (all) {
    for (const t of image.topics()) topics.push(describeClusterTopic(image, t));
  } else {
    const allowAuto = apiVersion < 4 || req.allowAutoTopicCreation;
    for (const rt of req.topics ?? []) {
      if (rt.name === null || rt.name === undefined) {
        const t = rt.topicId && rt.topicId !== ZERO_UUID ? image.topicById(rt.topicId) : undefined;
        if (t) topics.push(describeClusterTopic(image, t));
        else
          topics.push({
            errorCode: ErrorCode.UNKNOWN_TOPIC_ID,
            name: null,
            topicId: rt.topicId,
            partitions: [],
          });
        continue;
      }
      let t = image.topic(rt.name);
      if (!t && allowAuto) {
        try {
          await broker.topicAdmin.autoCreate(rt.name);
        } catch (err) {
          broker.log.warn(`auto-creating ${rt.name}: ${(err as Error).message}`);
        }
        t = cluster.quorum.image.topic(rt.name);
        if (!t && validateTopicName(rt.name) === null && broker.config.autoCreateTopicsEnable) {
          // Being created (or no controller yet): Kafka answers LEADER_NOT_AVAILABLE and the client retries.
          topics.push({
            errorCode: ErrorCode.LEADER_NOT_AVAILABLE,
            name: rt.name,
            topicId: ZERO_UUID,
            partitions: [],
          });
          continue;
        }
      }
      if (t) topics.push(describeClusterTopic(image, t));
      else {
        const invalid = validateTopicName(rt.name) !== null;
        topics.push({
          errorCode: invalid ? ErrorCode.INVALID_TOPIC_EXCEPTION : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
          name: rt.name,
          topicId: ZERO_UUID,
          partitions: [],
        });
      }
    }
  }
  return {
    throttleTimeMs: 0,
    brokers: clusterBrokers(image),
    clusterId: broker.clusterId,
    controllerId: cluster.quorum.leaderId ?? -1,
    topics,
    clusterAuthorizedOperations: -2147483648,
  };
}
