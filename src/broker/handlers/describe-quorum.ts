/**
 * DescribeQuorum (key 55), v0-2 (KIP-595; v1 adds the fetch and caught-up times, KIP-836; v2 the
 * error message and the voters' controller listeners, KIP-853): the state of the metadata quorum,
 * topic `__cluster_metadata` partition 0.
 *
 * - The Raft leader answers from its own state: leader id, leader epoch (the Raft term), high
 *   watermark (the commit index) and per voter its log end offset (the leader's match index for
 *   it), when it last fetched and when it was last caught up (the leader's wall clock). Sluice's
 *   Raft indexes start at 1, so index i is Kafka offset i - 1 and an index is also the log end
 *   offset after it: commit index = high watermark, match index = log end offset.
 * - Any other node forwards the request to the leader, as Kafka's brokers forward it to the
 *   active controller; during an election (no leader known) it answers NOT_LEADER_OR_FOLLOWER
 *   at once and the client retries. A request that was itself forwarded (it comes from a
 *   broker's controller channel) is never forwarded again: a node that is no longer the leader
 *   answers NOT_LEADER_OR_FOLLOWER and the client retries, so two nodes with stale views cannot
 *   bounce a request between them.
 * - Without a quorum (a single node, controller.quorum.voters unset) the answer is
 *   INVALID_REQUEST with a message (v2). Kafka 4 has no such node (every node belongs to a KRaft
 *   quorum); Kafka 3's ZooKeeper brokers did not advertise the API (its schema names only the
 *   broker and controller listeners) and closed the connection on it. Sluice advertises it
 *   always (ApiVersions lists every handler) and says why it cannot answer.
 *
 * Not implemented: observers (every Sluice cluster node is a voter), replica directory ids (zero).
 */

import type { Encodable } from '../../protocol/codec-support.js';
import { ZERO_UUID } from '../../protocol/codec-support.js';
import { ErrorCode, KafkaError } from '../../protocol/errors.js';
import type { DescribeQuorumRequest } from '../../protocol/generated/describe-quorum-request.js';
import type {
  DescribeQuorumResponse,
  ReplicaState,
} from '../../protocol/generated/describe-quorum-response.js';
import { ApiKey } from '../../protocol/generated/index.js';
import type { RaftStatus } from '../../raft/driver.js';
import type { Broker } from '../broker.js';
import { defineHandler } from '../dispatcher.js';

export const METADATA_TOPIC = '__cluster_metadata';

/** The client id of a broker's connection to the controller (src/cluster/controller-channel.ts). */
const FORWARDED_CLIENT_ID = /^sluice-broker-\d+$/;

type Response = Encodable<DescribeQuorumResponse>;

/** Every requested partition answered with one error (Kafka's getPartitionLevelErrorResponse). */
function partitionErrors(req: DescribeQuorumRequest, errorCode: number, message: string | null): Response {
  return {
    errorCode: 0,
    errorMessage: null,
    topics: req.topics.map((t) => ({
      topicName: t.topicName,
      partitions: t.partitions.map((p) => ({
        partitionIndex: p.partitionIndex,
        errorCode,
        errorMessage: message,
        leaderId: -1,
        leaderEpoch: -1,
        highWatermark: -1,
        currentVoters: [],
        observers: [],
      })),
    })),
    nodes: [],
  };
}

/** Kafka accepts exactly one topic with one partition: __cluster_metadata-0. */
function asksForMetadataPartition(req: DescribeQuorumRequest): boolean {
  const t = req.topics[0];
  return (
    req.topics.length === 1 &&
    t !== undefined &&
    t.topicName === METADATA_TOPIC &&
    t.partitions.length === 1 &&
    t.partitions[0]!.partitionIndex === 0
  );
}

/**
 * The leader's answer from its Raft status. `voters` are the controller addresses (v2 `nodes`).
 * Pure: `nowMs` is the leader's wall clock.
 */
export function quorumResponse(
  status: RaftStatus,
  voters: readonly { id: number; host: string; port: number }[],
  nowMs: number,
): Response {
  const currentVoters: Encodable<ReplicaState>[] = status.voters.map((id) => {
    if (id === status.id)
      return {
        replicaId: id,
        replicaDirectoryId: ZERO_UUID,
        logEndOffset: status.lastIndex,
        lastFetchTimestamp: nowMs,
        lastCaughtUpTimestamp: nowMs,
      };
    const f = status.followers.find((x) => x.id === id);
    return {
      replicaId: id,
      replicaDirectoryId: ZERO_UUID,
      logEndOffset: f?.lastContactMs === undefined ? -1 : f.matchIndex,
      lastFetchTimestamp: f?.lastContactMs ?? -1,
      lastCaughtUpTimestamp: f?.lastCaughtUpMs ?? -1,
    };
  });
  return {
    errorCode: 0,
    errorMessage: null,
    topics: [
      {
        topicName: METADATA_TOPIC,
        partitions: [
          {
            partitionIndex: 0,
            errorCode: 0,
            errorMessage: null,
            leaderId: status.id,
            leaderEpoch: status.term,
            highWatermark: status.commitIndex,
            currentVoters,
            observers: [],
          },
        ],
      },
    ],
    nodes: voters.map((v) => ({
      nodeId: v.id,
      listeners: [{ name: 'CONTROLLER', host: v.host, port: v.port }],
    })),
  };
}

export const describeQuorumHandler = defineHandler<Broker, ApiKey.DescribeQuorum>(
  ApiKey.DescribeQuorum,
  { min: 0, max: 2 },
  async (ctx, req) => {
    const cluster = ctx.broker.cluster;
    if (!cluster)
      return {
        errorCode: ErrorCode.INVALID_REQUEST,
        errorMessage:
          'this Sluice node runs alone, without a metadata quorum (controller.quorum.voters is not set)',
        topics: [],
        nodes: [],
      };
    if (!asksForMetadataPartition(req))
      return partitionErrors(
        req,
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        `the metadata quorum is ${METADATA_TOPIC} partition 0`,
      );
    const status = cluster.quorum.status();
    if (status.role === 'leader') return quorumResponse(status, ctx.broker.config.voters, Date.now());
    const notLeader = (why: string) =>
      partitionErrors(
        req,
        ErrorCode.NOT_LEADER_OR_FOLLOWER,
        `node ${status.id} is not the quorum leader (${why})`,
      );
    // No leader yet (an election): answer now, the client retries; forwarding would wait for one.
    if (status.leaderId === undefined) return notLeader('no leader elected yet');
    if (ctx.clientId !== null && FORWARDED_CLIENT_ID.test(ctx.clientId))
      return notLeader(`leader ${status.leaderId}`);
    try {
      return await cluster.channel.forward(ApiKey.DescribeQuorum, req, (r) => r.errorCode);
    } catch (err) {
      if (err instanceof KafkaError) return notLeader(err.message);
      throw err;
    }
  },
);
