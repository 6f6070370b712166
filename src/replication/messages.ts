/**
 * The messages partition replication exchanges, as plain values: the partition-level parts of
 * Kafka's Fetch (v12+, replica fetches with lastFetchedEpoch and divergingEpoch, KIP-320),
 * OffsetForLeaderEpoch (KIP-101/279), AlterPartition (KIP-497) and the controller's partition state
 * (what KRaft's PartitionRecord/PartitionChangeRecord carry). The broker will map these to and
 * from the generated codecs; the state machine and the simulator use them directly.
 */

import type { ErrorCode } from '../protocol/errors.js';

export type BrokerId = number;

/** -1: no leader (offline partition). */
export const NO_LEADER = -1;

/** The controller's view of one partition; `partitionEpoch` orders every change to it. */
export interface PartitionState {
  readonly leaderId: BrokerId;
  readonly leaderEpoch: number;
  /** Bumped by every change (leader or ISR), KIP-497's partition epoch. */
  readonly partitionEpoch: number;
  readonly isr: readonly BrokerId[];
  readonly replicas: readonly BrokerId[];
}

export interface ReplicaFetchRequest {
  readonly kind: 'fetch';
  /** Matches the response to the request; a response to an older request is ignored. */
  readonly correlationId: number;
  readonly replicaId: BrokerId;
  readonly currentLeaderEpoch: number;
  /** The follower's log end offset. */
  readonly fetchOffset: number;
  /** The epoch of the follower's last batch (-1 when it has none, or to skip the check). */
  readonly lastFetchedEpoch: number;
  readonly logStartOffset: number;
  readonly maxBytes: number;
}

export interface DivergingEpoch {
  readonly epoch: number;
  readonly endOffset: number;
}

export interface ReplicaFetchResponse {
  readonly kind: 'fetch-response';
  readonly correlationId: number;
  readonly errorCode: ErrorCode;
  readonly highWatermark: number;
  readonly logStartOffset: number;
  /** Set when the follower's log diverges from the leader's at lastFetchedEpoch (KIP-320). */
  readonly divergingEpoch: DivergingEpoch | undefined;
  readonly records: Buffer;
}

export interface OffsetForLeaderEpochRequest {
  readonly kind: 'offset-for-leader-epoch';
  readonly correlationId: number;
  readonly replicaId: BrokerId;
  readonly currentLeaderEpoch: number;
  /** The epoch whose end offset is asked for (the follower's latest). */
  readonly leaderEpoch: number;
}

export interface OffsetForLeaderEpochResponse {
  readonly kind: 'offset-for-leader-epoch-response';
  readonly correlationId: number;
  readonly errorCode: ErrorCode;
  /** The largest epoch <= the requested one that the leader has (KIP-279), or -1. */
  readonly leaderEpoch: number;
  readonly endOffset: number;
}

export type FollowerRequest = ReplicaFetchRequest | OffsetForLeaderEpochRequest;
export type LeaderResponse = ReplicaFetchResponse | OffsetForLeaderEpochResponse;

export interface AlterPartitionRequest {
  readonly brokerId: BrokerId;
  readonly leaderEpoch: number;
  /** The partition epoch the proposal is based on; the controller rejects it if stale. */
  readonly partitionEpoch: number;
  readonly newIsr: readonly BrokerId[];
}

export interface AlterPartitionResponse {
  readonly errorCode: ErrorCode;
  /** The state after the change (when errorCode is NONE). */
  readonly state: PartitionState | undefined;
  /** The partition epoch the answered request was based on. */
  readonly requestPartitionEpoch: number;
}
