/**
 * The messages Raft nodes exchange, as plain typed objects. Their wire encoding is codec.ts and
 * they travel over transport.ts (the controller listener).
 *
 * Mapping onto KRaft (KIP-595, KIP-996; the wire-level version is in codec.ts):
 * - `PreVote` / `Vote` and their responses are KRaft's Vote RPC (KIP-996 adds the PreVote flag);
 *   `term` is KRaft's epoch (leader epoch), `lastLogIndex/lastLogTerm` are lastOffset/lastOffsetEpoch.
 * - `AppendEntries` is push-based here, KRaft's Fetch is pull-based: a follower's Fetch(fetchOffset,
 *   lastFetchedEpoch) plays the part of an empty AppendEntriesResponse (it tells the leader the
 *   follower's match position), and the leader's FetchResponse carries records, the high watermark
 *   (leaderCommit) and, on a mismatch, a divergingEpoch (endOffset, epoch) — the same information
 *   as our `conflictIndex/conflictTerm` hint. The first AppendEntries of a new term plays the part
 *   of BeginQuorumEpoch; a leader stepping down could send EndQuorumEpoch (not modelled).
 * - `InstallSnapshot` is KRaft's FetchSnapshot (KRaft pulls snapshot chunks; here it is whole).
 * Every message carries the sender's `term` so the receiver can apply Raft's term rules first.
 */

import type { LogEntry, NodeId } from './log.js';

export interface Snapshot {
  /** Index and term of the last entry the snapshot covers. */
  readonly index: number;
  readonly term: number;
  /** The state machine's serialised state as of `index`; opaque to Raft. */
  readonly data: Uint8Array;
}

interface Envelope {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

/** Sent with `term` = the candidate's term + 1; the receiver's term is never changed by it. */
export interface PreVoteRequest extends Envelope {
  readonly type: 'PreVote';
  readonly lastLogIndex: number;
  readonly lastLogTerm: number;
}

/** `term` is the requested term when granted, the responder's own term when rejected. */
export interface PreVoteResponse extends Envelope {
  readonly type: 'PreVoteResponse';
  readonly granted: boolean;
}

export interface VoteRequest extends Envelope {
  readonly type: 'Vote';
  readonly lastLogIndex: number;
  readonly lastLogTerm: number;
}

export interface VoteResponse extends Envelope {
  readonly type: 'VoteResponse';
  readonly granted: boolean;
}

export interface AppendEntriesRequest extends Envelope {
  readonly type: 'AppendEntries';
  readonly prevLogIndex: number;
  readonly prevLogTerm: number;
  readonly entries: readonly LogEntry[];
  readonly leaderCommit: number;
}

export interface AppendEntriesResponse extends Envelope {
  readonly type: 'AppendEntriesResponse';
  readonly success: boolean;
  /** On success: the follower's log matches the leader's through this index, durably. */
  readonly matchIndex: number;
  /** On failure: the prevLogIndex that was rejected. */
  readonly rejectedIndex: number;
  /**
   * On failure, the fast-backoff hint (Raft thesis §5.3): the follower's term at rejectedIndex
   * (undefined when its log is shorter) and the first index of that term in its log (or its
   * lastIndex + 1 when shorter). KRaft's divergingEpoch carries the same information.
   */
  readonly conflictTerm: number | undefined;
  readonly conflictIndex: number;
}

export interface InstallSnapshotRequest extends Envelope {
  readonly type: 'InstallSnapshot';
  readonly snapshot: Snapshot;
}

export interface InstallSnapshotResponse extends Envelope {
  readonly type: 'InstallSnapshotResponse';
  readonly matchIndex: number;
}

export type RaftMessage =
  | PreVoteRequest
  | PreVoteResponse
  | VoteRequest
  | VoteResponse
  | AppendEntriesRequest
  | AppendEntriesResponse
  | InstallSnapshotRequest
  | InstallSnapshotResponse;

export type RaftMessageType = RaftMessage['type'];
