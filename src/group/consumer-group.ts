/**
 * The in-memory model of a KIP-848 consumer group ("consumer" group type) and the pure rules of
 * incremental reconciliation.
 *
 * Epochs: the group epoch is bumped whenever what the assignment depends on changes (members,
 * their subscriptions or assignor, partition counts of subscribed topics). The target assignment
 * is recomputed for that epoch (assignment epoch = group epoch). Each member then moves from its
 * current assignment to its target one step at a time (Kafka's CurrentAssignmentBuilder):
 *
 * - partitions it owns that are no longer in its target are revoked first: the member stays in its
 *   epoch (UNREVOKED_PARTITIONS) and is told its assignment without them; it acknowledges by
 *   reporting owned partitions without them;
 * - it then moves to the assignment epoch and gets the new partitions that no other member still
 *   owns (a partition is owned by a member from the moment it is assigned to it until the member
 *   has acknowledged its revocation); while some are still owned elsewhere it waits in
 *   UNRELEASED_PARTITIONS and gets them as they are released;
 * - STABLE once it owns exactly its target.
 *
 * So a partition is never owned by two members at once, and members keep every partition that
 * does not move: the group as a whole never stops.
 */

import type { TopicPartitionMap } from './assignors.js';
import type { OffsetStore } from './offsets.js';
import type { GroupLogRecord } from './records.js';

export type { TopicPartitionMap };

/** ConsumerGroupCurrentMemberAssignmentValue.State values (Kafka's MemberState). */
export enum MemberState {
  STABLE = 0,
  UNREVOKED_PARTITIONS = 1,
  UNRELEASED_PARTITIONS = 2,
}

export type ConsumerGroupState = 'Empty' | 'Assigning' | 'Reconciling' | 'Stable' | 'Dead';

/** Member epoch sent to leave the group. */
export const LEAVE_GROUP_MEMBER_EPOCH = -1;
/** Member epoch sent by a static member leaving temporarily (it keeps its assignment). */
export const LEAVE_GROUP_STATIC_MEMBER_EPOCH = -2;

export function cloneAssignment(m: TopicPartitionMap): TopicPartitionMap {
  const out: TopicPartitionMap = new Map();
  for (const [t, s] of m) if (s.size > 0) out.set(t, new Set(s));
  return out;
}

export function assignmentsEqual(a: TopicPartitionMap, b: TopicPartitionMap): boolean {
  const norm = (m: TopicPartitionMap) => [...m].filter(([, s]) => s.size > 0);
  const na = norm(a);
  const nb = norm(b);
  if (na.length !== nb.length) return false;
  for (const [t, s] of na) {
    const o = b.get(t);
    if (!o || o.size !== s.size) return false;
    for (const p of s) if (!o.has(p)) return false;
  }
  return true;
}

export function assignmentFromList(list: { topicId: string; partitions: number[] }[]): TopicPartitionMap {
  const out: TopicPartitionMap = new Map();
  for (const tp of list) {
    if (tp.partitions.length === 0) continue;
    let s = out.get(tp.topicId);
    if (!s) {
      s = new Set();
      out.set(tp.topicId, s);
    }
    for (const p of tp.partitions) s.add(p);
  }
  return out;
}

/** Sorted list form (records and responses). */
export function assignmentToList(m: TopicPartitionMap): { topicId: string; partitions: number[] }[] {
  return [...m]
    .filter(([, s]) => s.size > 0)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([topicId, s]) => ({ topicId, partitions: [...s].sort((x, y) => x - y) }));
}

export class ConsumerGroupMember {
  memberEpoch = 0;
  previousMemberEpoch = -1;
  state = MemberState.STABLE;
  assigned: TopicPartitionMap = new Map();
  pendingRevocation: TopicPartitionMap = new Map();

  instanceId: string | null = null;
  rackId: string | null = null;
  clientId = '';
  clientHost = '';
  subscribedTopicNames: string[] = [];
  subscribedTopicRegex: string | null = null;
  rebalanceTimeoutMs = -1;
  serverAssignor: string | null = null;

  /** Runtime only (not persisted). */
  sessionTimer: unknown = null;
  rebalanceTimer: unknown = null;

  constructor(readonly memberId: string) {}

  /** A copy of the reconciliation fields (for computing a next state). */
  snapshot(): MemberAssignmentState {
    return {
      memberEpoch: this.memberEpoch,
      previousMemberEpoch: this.previousMemberEpoch,
      state: this.state,
      assigned: cloneAssignment(this.assigned),
      pendingRevocation: cloneAssignment(this.pendingRevocation),
    };
  }

  apply(s: MemberAssignmentState): void {
    this.memberEpoch = s.memberEpoch;
    this.previousMemberEpoch = s.previousMemberEpoch;
    this.state = s.state;
    this.assigned = cloneAssignment(s.assigned);
    this.pendingRevocation = cloneAssignment(s.pendingRevocation);
  }

  isReconciledTo(assignmentEpoch: number): boolean {
    return this.state === MemberState.STABLE && this.memberEpoch === assignmentEpoch;
  }
}

export interface MemberAssignmentState {
  memberEpoch: number;
  previousMemberEpoch: number;
  state: MemberState;
  assigned: TopicPartitionMap;
  pendingRevocation: TopicPartitionMap;
}

export function sameMemberAssignmentState(a: MemberAssignmentState, b: MemberAssignmentState): boolean {
  return (
    a.memberEpoch === b.memberEpoch &&
    a.previousMemberEpoch === b.previousMemberEpoch &&
    a.state === b.state &&
    assignmentsEqual(a.assigned, b.assigned) &&
    assignmentsEqual(a.pendingRevocation, b.pendingRevocation)
  );
}

/** Topic metadata the group's assignment was computed from (PartitionMetadata record). */
export interface SubscribedTopicMetadata {
  topicId: string;
  topicName: string;
  numPartitions: number;
}

export class ConsumerGroup {
  groupEpoch = 0;
  assignmentEpoch = 0;
  readonly members = new Map<string, ConsumerGroupMember>();
  /** instance id -> member id */
  readonly staticMembers = new Map<string, string>();
  /** member id -> target assignment (for assignmentEpoch). */
  readonly targetAssignment = new Map<string, TopicPartitionMap>();
  /** topic name -> metadata, as of the last group epoch bump. */
  subscriptionMetadata = new Map<string, SubscribedTopicMetadata>();
  /** `${topicId}:${partition}` -> epoch of the member that owns it (assigned or pending revocation). */
  readonly partitionEpochs = new Map<string, { memberId: string; epoch: number }>();
  dead = false;
  /** When the group last became Empty (offset retention). */
  emptySinceMs: number;

  constructor(
    readonly groupId: string,
    nowMs: number,
    readonly offsets: OffsetStore,
  ) {
    this.emptySinceMs = nowMs;
  }

  get state(): ConsumerGroupState {
    if (this.dead) return 'Dead';
    if (this.members.size === 0) return 'Empty';
    if (this.groupEpoch > this.assignmentEpoch) return 'Assigning';
    for (const m of this.members.values()) if (!m.isReconciledTo(this.assignmentEpoch)) return 'Reconciling';
    return 'Stable';
  }

  /** The epoch of the member currently owning the partition, or -1 if it is free. */
  currentPartitionEpoch(topicId: string, partition: number): number {
    return this.partitionEpochs.get(`${topicId}:${partition}`)?.epoch ?? -1;
  }

  private forEachOwned(
    m: { assigned: TopicPartitionMap; pendingRevocation: TopicPartitionMap },
    fn: (k: string) => void,
  ): void {
    for (const [t, s] of m.assigned) for (const p of s) fn(`${t}:${p}`);
    for (const [t, s] of m.pendingRevocation) for (const p of s) fn(`${t}:${p}`);
  }

  /** Replaces a member's owned partitions in the partition epoch index. */
  updateMember(m: ConsumerGroupMember, next: MemberAssignmentState | null): void {
    this.forEachOwned(m, (k) => {
      if (this.partitionEpochs.get(k)?.memberId === m.memberId) this.partitionEpochs.delete(k);
    });
    if (next === null) return;
    m.apply(next);
    this.forEachOwned(m, (k) => this.partitionEpochs.set(k, { memberId: m.memberId, epoch: m.memberEpoch }));
  }

  addMember(m: ConsumerGroupMember): void {
    this.members.set(m.memberId, m);
    if (m.instanceId !== null) this.staticMembers.set(m.instanceId, m.memberId);
    this.forEachOwned(m, (k) => this.partitionEpochs.set(k, { memberId: m.memberId, epoch: m.memberEpoch }));
  }

  removeMember(memberId: string, nowMs: number): ConsumerGroupMember | undefined {
    const m = this.members.get(memberId);
    if (!m) return undefined;
    this.updateMember(m, null);
    this.members.delete(memberId);
    if (m.instanceId !== null && this.staticMembers.get(m.instanceId) === memberId)
      this.staticMembers.delete(m.instanceId);
    this.targetAssignment.delete(memberId);
    if (this.members.size === 0) this.emptySinceMs = nowMs;
    return m;
  }

  /** Every topic name some member subscribes to. */
  subscribedTopicNames(): Set<string> {
    const out = new Set<string>();
    for (const m of this.members.values()) for (const t of m.subscribedTopicNames) out.add(t);
    return out;
  }

  /** The assignor the group uses: the one most members ask for, else the default. */
  preferredAssignor(defaultAssignor: string): string {
    const counts = new Map<string, number>();
    for (const m of this.members.values())
      if (m.serverAssignor !== null) counts.set(m.serverAssignor, (counts.get(m.serverAssignor) ?? 0) + 1);
    let best: string | null = null;
    let bestCount = 0;
    for (const [name, c] of [...counts].sort((a, b) => (a[0] < b[0] ? -1 : 1)))
      if (c > bestCount) {
        best = name;
        bestCount = c;
      }
    return best ?? defaultAssignor;
  }
}

/**
 * The next reconciliation state of a member (Kafka's CurrentAssignmentBuilder), given the
 * group's target assignment for it and, when the member reported them, the partitions it owns.
 * `ownedPartitions` null means "not reported in this heartbeat": the member is assumed to still
 * own whatever it was asked to revoke.
 */
export function nextMemberAssignment(
  current: MemberAssignmentState,
  assignmentEpoch: number,
  target: TopicPartitionMap,
  ownedPartitions: TopicPartitionMap | null,
  currentPartitionEpoch: (topicId: string, partition: number) => number,
): MemberAssignmentState {
  const stillOwns = (revoking: TopicPartitionMap): boolean => {
    if (ownedPartitions === null) return true;
    for (const [t, s] of revoking) {
      const owned = ownedPartitions.get(t);
      if (!owned) continue;
      for (const p of s) if (owned.has(p)) return true;
    }
    return false;
  };

  const computeNext = (): MemberAssignmentState => {
    const kept: TopicPartitionMap = new Map();
    const revoking: TopicPartitionMap = new Map();
    const incoming: TopicPartitionMap = new Map();
    let unreleased = false;
    const topics = new Set([...target.keys(), ...current.assigned.keys()]);
    for (const t of topics) {
      const tgt = target.get(t) ?? new Set<number>();
      const cur = current.assigned.get(t) ?? new Set<number>();
      const k = new Set([...cur].filter((p) => tgt.has(p)));
      const r = new Set([...cur].filter((p) => !tgt.has(p)));
      const a = new Set<number>();
      for (const p of tgt) {
        if (k.has(p)) continue;
        if (currentPartitionEpoch(t, p) === -1) a.add(p);
        else unreleased = true;
      }
      if (k.size > 0) kept.set(t, k);
      if (r.size > 0) revoking.set(t, r);
      if (a.size > 0) incoming.set(t, a);
    }
    if (revoking.size > 0 && stillOwns(revoking)) {
      return {
        memberEpoch: current.memberEpoch,
        previousMemberEpoch: current.memberEpoch,
        state: MemberState.UNREVOKED_PARTITIONS,
        assigned: kept,
        pendingRevocation: revoking,
      };
    }
    for (const [t, s] of incoming) {
      const k = kept.get(t);
      if (k) for (const p of s) k.add(p);
      else kept.set(t, new Set(s));
    }
    return {
      memberEpoch: assignmentEpoch,
      previousMemberEpoch: current.memberEpoch,
      state: unreleased ? MemberState.UNRELEASED_PARTITIONS : MemberState.STABLE,
      assigned: kept,
      pendingRevocation: new Map(),
    };
  };

  switch (current.state) {
    case MemberState.STABLE:
      if (current.memberEpoch !== assignmentEpoch) return computeNext();
      return current;
    case MemberState.UNREVOKED_PARTITIONS:
      if (stillOwns(current.pendingRevocation)) return current;
      return computeNext();
    case MemberState.UNRELEASED_PARTITIONS:
      return computeNext();
  }
}

/** Records are grouped per change so callers can append them in one batch. */
export type ConsumerGroupRecords = GroupLogRecord[];
