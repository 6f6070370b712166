/**
 * ProgressTracker: what a leader knows about each follower (Redpanda's recovery_stm state, etcd's
 * Progress). `matchIndex` is the highest index known to be durably replicated on the follower;
 * `nextIndex` is the next index to send, advanced optimistically when entries are sent (pipelining)
 * and pulled back by a rejection (which starts probing: one guess at a time until a success). A follower being sent a snapshot is paused: no appends go to it
 * until it answers or the next heartbeat resends the snapshot.
 *
 * Invariant: matchIndex < nextIndex for every follower.
 */

import type { NodeId } from './log.js';

export interface FollowerProgress {
  readonly id: NodeId;
  matchIndex: number;
  nextIndex: number;
  /** Heard from (any response in the current term) since the last check-quorum round. */
  recentlyActive: boolean;
  /**
   * Probing: nextIndex is a guess not yet confirmed by a success, so appends do not advance it
   * and only the rejection of the latest probe (rejectedIndex === nextIndex - 1) moves it back.
   * Otherwise replicating: appends advance nextIndex optimistically (pipelining).
   */
  probing: boolean;
  /** The snapshot index being sent, or undefined when replicating by entries. */
  snapshotIndex: number | undefined;
}

export class ProgressTracker {
  private readonly followers = new Map<NodeId, FollowerProgress>();
  readonly quorum: number;

  constructor(peers: readonly NodeId[], lastIndex: number) {
    for (const id of peers) {
      this.followers.set(id, {
        id,
        matchIndex: 0,
        nextIndex: lastIndex + 1,
        recentlyActive: false,
        probing: true,
        snapshotIndex: undefined,
      });
    }
    this.quorum = Math.floor((peers.length + 1) / 2) + 1;
  }

  get(id: NodeId): FollowerProgress | undefined {
    return this.followers.get(id);
  }

  all(): IterableIterator<FollowerProgress> {
    return this.followers.values();
  }

  /** Records a durable match; returns true when matchIndex moved forward. */
  advance(id: NodeId, matchIndex: number): boolean {
    const p = this.followers.get(id);
    if (p === undefined) return false;
    const moved = matchIndex > p.matchIndex;
    if (moved) p.matchIndex = matchIndex;
    if (p.nextIndex <= p.matchIndex) p.nextIndex = p.matchIndex + 1;
    return moved;
  }

  /**
   * The highest index durably held by a quorum, counting the leader's own durable index. Sorting
   * all match indexes descending, the quorum-th one is held by at least a quorum.
   */
  quorumMatchIndex(leaderDurableIndex: number): number {
    const matches = [leaderDurableIndex];
    for (const p of this.followers.values()) matches.push(p.matchIndex);
    matches.sort((a, b) => b - a);
    return matches[this.quorum - 1] ?? 0;
  }

  /** Check-quorum: has a quorum (the leader included) been heard from since the last round? Resets. */
  quorumActive(): boolean {
    let active = 1;
    for (const p of this.followers.values()) {
      if (p.recentlyActive) active++;
      p.recentlyActive = false;
    }
    return active >= this.quorum;
  }
}
