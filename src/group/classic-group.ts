/**
 * A classic (JoinGroup/SyncGroup) group: its state, generation, members and the selected
 * protocol. This file holds the data and the pure rules (protocol support and selection,
 * subscribed topics); the transitions that involve timers, waiting requests and the log are in
 * coordinator.ts.
 *
 * States, as Kafka's GroupState / ClassicGroupState:
 *   Empty               no members; offsets may still be committed (generation -1) and fetched
 *   PreparingRebalance  waiting for known members to (re)join, until all did or the rebalance
 *                       timeout (or, from Empty, group.initial.rebalance.delay.ms) passes
 *   CompletingRebalance the generation is formed; waiting for the leader's SyncGroup
 *   Stable              assignments handed out; heartbeats keep members alive
 *   Dead                removed (deleted, or all offsets expired); never reused
 */

import { EMPTY_BUFFER } from '../protocol/codec-support.js';
import {
  ConsumerProtocolSubscriptionVersions,
  decodeConsumerProtocolSubscription,
} from '../protocol/generated/consumer-protocol-subscription.js';
import { Reader } from '../protocol/primitives.js';
import { OffsetStore } from './offsets.js';
import type { TimerHandle } from './time.js';

export type GroupState = 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable' | 'Dead';

export const GROUP_STATES: GroupState[] = [
  'Empty',
  'PreparingRebalance',
  'CompletingRebalance',
  'Stable',
  'Dead',
];

export const CONSUMER_PROTOCOL_TYPE = 'consumer';

export interface MemberProtocol {
  name: string;
  metadata: Buffer;
}

export interface JoinResult {
  errorCode: number;
  generationId: number;
  protocolType: string | null;
  protocolName: string | null;
  leader: string;
  skipAssignment: boolean;
  memberId: string;
  members: { memberId: string; groupInstanceId: string | null; metadata: Buffer }[];
}

export interface SyncResult {
  errorCode: number;
  protocolType: string | null;
  protocolName: string | null;
  assignment: Buffer;
}

export class ClassicMember {
  assignment: Buffer = EMPTY_BUFFER;
  /** Set while the member's JoinGroup waits for the rebalance to complete. */
  joinWaiter: ((r: JoinResult) => void) | null = null;
  /** Set while the member's SyncGroup waits for the leader's assignment. */
  syncWaiter: ((r: SyncResult) => void) | null = null;
  /** Joined in the current rebalance and has not completed a join yet (KIP-394). */
  isNew = false;
  sessionTimer: TimerHandle | null = null;

  constructor(
    public memberId: string,
    public groupInstanceId: string | null,
    public clientId: string,
    public clientHost: string,
    public rebalanceTimeoutMs: number,
    public sessionTimeoutMs: number,
    public protocolType: string,
    public protocols: MemberProtocol[],
  ) {}

  get isStatic(): boolean {
    return this.groupInstanceId !== null;
  }

  get isAwaitingJoin(): boolean {
    return this.joinWaiter !== null;
  }

  get isAwaitingSync(): boolean {
    return this.syncWaiter !== null;
  }

  metadata(protocol: string | null): Buffer {
    if (protocol === null) return EMPTY_BUFFER;
    return this.protocols.find((p) => p.name === protocol)?.metadata ?? EMPTY_BUFFER;
  }

  /** Same protocols, in the same order, with the same metadata. */
  matches(protocols: MemberProtocol[]): boolean {
    if (protocols.length !== this.protocols.length) return false;
    return protocols.every((p, i) => {
      const q = this.protocols[i]!;
      return p.name === q.name && Buffer.compare(p.metadata, q.metadata) === 0;
    });
  }

  /** The member's most preferred protocol among the candidates. */
  vote(candidates: Set<string>): string {
    const p = this.protocols.find((x) => candidates.has(x.name));
    if (!p) throw new Error(`member ${this.memberId} does not support any of the candidate protocols`);
    return p.name;
  }
}

export class ClassicGroup {
  state: GroupState = 'Empty';
  generationId = 0;
  protocolType: string | null = null;
  protocolName: string | null = null;
  leaderId: string | null = null;
  currentStateTimestamp: number;
  readonly members = new Map<string, ClassicMember>();
  /** group.instance.id -> member id */
  readonly staticMembers = new Map<string, string>();
  /** Member ids handed out with MEMBER_ID_REQUIRED, not joined yet -> their expiry timer. */
  readonly pendingMembers = new Map<string, TimerHandle>();
  /** Members of the current generation that have not sent SyncGroup yet. */
  readonly pendingSyncMembers = new Set<string>();
  pendingSyncTimer: TimerHandle | null = null;
  /** Completes the join phase (DelayedJoin / InitialDelayedJoin). */
  joinTimer: TimerHandle | null = null;
  /** Set while the initial rebalance delay (from Empty) runs: the time still allowed after it. */
  initialDelayRemainingMs: number | null = null;
  newMemberAdded = false;
  /** Topics the members subscribe to (consumer protocol); null when unknown. */
  subscribedTopics: Set<string> | null = null;
  readonly offsets = new OffsetStore();

  constructor(
    readonly groupId: string,
    nowMs: number,
  ) {
    this.currentStateTimestamp = nowMs;
  }

  transitionTo(state: GroupState, nowMs: number): void {
    this.state = state;
    this.currentStateTimestamp = nowMs;
  }

  get size(): number {
    return this.members.size;
  }

  is(state: GroupState): boolean {
    return this.state === state;
  }

  isLeader(memberId: string): boolean {
    return this.leaderId === memberId;
  }

  has(memberId: string): boolean {
    return this.members.has(memberId);
  }

  get numAwaitingJoin(): number {
    let n = 0;
    for (const m of this.members.values()) if (m.isAwaitingJoin) n++;
    return n;
  }

  hasAllMembersJoined(): boolean {
    return this.numAwaitingJoin === this.members.size && this.pendingMembers.size === 0;
  }

  /** Longest rebalance timeout of the members (how long a rebalance may wait). */
  get rebalanceTimeoutMs(): number {
    let t = 0;
    for (const m of this.members.values()) t = Math.max(t, m.rebalanceTimeoutMs);
    return t;
  }

  staticMemberId(groupInstanceId: string | null): string | undefined {
    return groupInstanceId === null ? undefined : this.staticMembers.get(groupInstanceId);
  }

  add(member: ClassicMember): void {
    if (this.members.size === 0) this.protocolType = member.protocolType;
    this.members.set(member.memberId, member);
    if (member.groupInstanceId !== null) this.staticMembers.set(member.groupInstanceId, member.memberId);
    if (this.leaderId === null) this.leaderId = member.memberId;
  }

  remove(memberId: string): void {
    const m = this.members.get(memberId);
    if (!m) return;
    this.members.delete(memberId);
    if (m.groupInstanceId !== null && this.staticMembers.get(m.groupInstanceId) === memberId)
      this.staticMembers.delete(m.groupInstanceId);
    this.pendingSyncMembers.delete(memberId);
    if (this.leaderId === memberId) this.leaderId = this.members.keys().next().value ?? null;
  }

  /** Protocols every member supports. */
  candidateProtocols(): Set<string> {
    let set: Set<string> | null = null;
    for (const m of this.members.values()) {
      const names = new Set(m.protocols.map((p) => p.name));
      if (set === null) set = names;
      else for (const n of [...set]) if (!names.has(n)) set.delete(n);
    }
    return set ?? new Set();
  }

  /** Whether a member with these protocols may join (INCONSISTENT_GROUP_PROTOCOL otherwise). */
  supportsProtocols(protocolType: string, protocols: MemberProtocol[]): boolean {
    if (this.members.size === 0) return protocolType.length > 0 && protocols.length > 0;
    if (this.protocolType !== protocolType) return false;
    const candidates = this.candidateProtocols();
    return protocols.some((p) => candidates.has(p.name));
  }

  /** The protocol all members support with the most first-preference votes (ties: the first member's preference). */
  selectProtocol(): string {
    const candidates = this.candidateProtocols();
    const votes = new Map<string, number>();
    for (const m of this.members.values()) {
      const v = m.vote(candidates);
      votes.set(v, (votes.get(v) ?? 0) + 1);
    }
    let best: string | null = null;
    let bestVotes = -1;
    for (const [name, n] of votes) {
      if (n > bestVotes) {
        best = name;
        bestVotes = n;
      }
    }
    if (best === null) throw new Error(`group ${this.groupId} has no members to select a protocol`);
    return best;
  }

  /** Elects a leader among members awaiting join if the current one has not rejoined. */
  maybeElectNewJoinedLeader(): boolean {
    if (this.leaderId === null) return false;
    const leader = this.members.get(this.leaderId);
    if (leader?.isAwaitingJoin) return true;
    for (const m of this.members.values()) {
      if (m.isAwaitingJoin) {
        this.leaderId = m.memberId;
        return true;
      }
    }
    return false;
  }

  computeSubscribedTopics(): Set<string> | null {
    if (this.protocolType !== CONSUMER_PROTOCOL_TYPE || this.protocolName === null || this.members.size === 0)
      return null;
    const topics = new Set<string>();
    for (const m of this.members.values()) {
      const parsed = parseConsumerSubscription(m.metadata(this.protocolName));
      if (parsed === null) return null;
      for (const t of parsed) topics.add(t);
    }
    return topics;
  }

  /** Kafka's isSubscribedToTopic: unknown subscriptions count as subscribed. */
  isSubscribedToTopic(topic: string): boolean {
    if (this.subscribedTopics === null) return true;
    return this.subscribedTopics.has(topic);
  }

  allMemberIds(): string[] {
    return [...this.members.keys()];
  }
}

/** The topics of a consumer-protocol subscription (int16 version + struct), or null if unparsable. */
export function parseConsumerSubscription(metadata: Buffer): string[] | null {
  try {
    const r = new Reader(metadata);
    const version = r.int16();
    if (version < 0) return null;
    return decodeConsumerProtocolSubscription(r, Math.min(version, ConsumerProtocolSubscriptionVersions.max))
      .topics;
  } catch {
    return null;
  }
}
