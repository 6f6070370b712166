/**
 * RaftNode: Raft as a pure, deterministic state machine.
 *
 * It owns no timers, sockets, files or randomness: the driver feeds it `tick()`, `receive(msg)`,
 * `propose(data)`, `compact(index, data)` and `diskWritten(writeId)`, and drains its outputs with
 * `ready()`. The same inputs in the same order produce the same outputs, which is what lets the
 * simulator (src/sim) replay any run from a seed. Terms are Kafka's leader epochs.
 *
 * Features: randomized election timeouts; PreVote (Raft thesis §9.6: a node that cannot win does
 * not bump its term, so a partitioned node rejoining does not disrupt a stable leader); leader
 * leases for votes and CheckQuorum (a leader that has not heard from a quorum within an election
 * timeout steps down; a follower that heard from a leader within the minimum election timeout
 * ignores vote requests); pipelined log replication with the consistency check and fast conflict
 * backoff; commitment only of current-term entries by counting (§5.4.2), helped by a no-op entry
 * appended on election; snapshots with log compaction, and InstallSnapshot for followers whose
 * next entry was compacted away.
 *
 * Durability ("fsync before acknowledging"): every change to the term, vote or log goes into a
 * PersistWrite handed out by `ready()`. A message that promises something about persistent state
 * — a vote, an append or snapshot acknowledgement, a vote request (it carries the candidate's
 * own vote), any message a non-leader sends — is held back until every write taken before the
 * message was made has been reported durable. A leader's AppendEntries and InstallSnapshot promise
 * nothing and go out at once, so a leader writes its own log in parallel with replication, counting
 * itself towards a quorum only up to its durable index. PreVote traffic changes no state and is
 * never held back.
 *
 * Static membership: `voters` is fixed for the node's life (joint consensus comes later).
 */

import { type LogEntry, type NodeId, RaftLog } from './log.js';
import type {
  AppendEntriesRequest,
  AppendEntriesResponse,
  InstallSnapshotRequest,
  InstallSnapshotResponse,
  PreVoteRequest,
  PreVoteResponse,
  RaftMessage,
  Snapshot,
  VoteRequest,
  VoteResponse,
} from './messages.js';
import { type DurableState, type HardState, type PersistWrite, WriteTracker } from './persistence.js';
import { ProgressTracker } from './progress.js';
import { VoteTally } from './tally.js';

export type { DurableState, HardState, PersistWrite } from './persistence.js';
export type { LogEntry, NodeId } from './log.js';
export type * from './messages.js';

export type Role = 'follower' | 'precandidate' | 'candidate' | 'leader';

export interface RaftConfig {
  readonly id: NodeId;
  readonly voters: readonly NodeId[];
  /** Election timeouts are drawn uniformly from [min, max] ticks each time the timer resets. */
  readonly electionTimeoutTicks: { readonly min: number; readonly max: number };
  readonly heartbeatTicks: number;
  /** Uniform in [0, 1); injected so runs are reproducible. */
  readonly random: () => number;
  readonly preVote?: boolean;
  readonly checkQuorum?: boolean;
  /** Upper bound on entries in one AppendEntries. */
  readonly appendEntriesMax?: number;
  /** Upper bound on entries the leader holds beyond its commit index; propose() refuses beyond. */
  readonly uncommittedEntriesMax?: number;
  /** Upper bound on messages queued for the driver or held back for fsync; beyond, they drop. */
  readonly messagesQueuedMax?: number;
  /** Upper bound on committed entries handed out by one ready(). */
  readonly applyEntriesMax?: number;
  /**
   * Deliberate bugs, for tests that prove the simulator's checkers catch them. Never set these
   * outside tests.
   */
  readonly unsafe?: {
    /** Acknowledge appends and votes before they are durable. */
    readonly ackBeforeFsync?: boolean;
    /** Commit entries of earlier terms by counting replicas (the Figure 8 bug of §5.4.2). */
    readonly commitPreviousTermByCounting?: boolean;
    /** Grant votes without the §5.4.1 log up-to-date check. */
    readonly voteWithoutLogCheck?: boolean;
  };
}

export type ProposeResult =
  | { readonly ok: true; readonly index: number; readonly term: number }
  | {
      readonly ok: false;
      readonly reason: 'not_leader' | 'backpressure';
      readonly leaderId: NodeId | undefined;
      readonly term: number;
    };

export interface LeaderChange {
  readonly leaderId: NodeId | undefined;
  readonly term: number;
  readonly role: Role;
}

/** Everything the driver must act on, drained by `ready()`. */
export interface Ready {
  /** Write (and fsync) before calling diskWritten(persist.writeId); writes complete in order. */
  readonly persist: PersistWrite | undefined;
  /** Messages that may be sent now. */
  readonly messages: readonly RaftMessage[];
  /** A snapshot the state machine must load before applying `committed` (from a leader or on restart). */
  readonly snapshot: Snapshot | undefined;
  /** Newly committed entries, in index order, to apply (noop entries included; skip them). */
  readonly committed: readonly LogEntry[];
  /** Set when leader, term or role changed since the last ready(). */
  readonly leaderChange: LeaderChange | undefined;
}

export class RaftInvariantError extends Error {
  readonly code = 'RAFT_INVARIANT';
  constructor(message: string) {
    super(message);
    this.name = 'RaftInvariantError';
  }
}

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new RaftInvariantError(message);
}

const EMPTY = new Uint8Array(0);

interface HeldMessage {
  readonly message: RaftMessage;
  readonly requiresWriteId: number;
}

export class RaftNode {
  readonly id: NodeId;
  readonly voters: readonly NodeId[];
  private readonly peers: readonly NodeId[];
  private readonly quorum: number;
  private readonly config: RaftConfig;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly appendEntriesMax: number;
  private readonly uncommittedEntriesMax: number;
  private readonly messagesQueuedMax: number;
  private readonly applyEntriesMax: number;

  // Persistent state (mirrored on disk through PersistWrites).
  private currentTerm: number;
  private votedFor: NodeId | undefined;
  private readonly raftLog: RaftLog;
  private latestSnapshot: Snapshot | undefined;

  // Volatile state.
  private currentRole: Role = 'follower';
  private currentLeader: NodeId | undefined = undefined;
  private commit: number;
  private applied: number;
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private tally: VoteTally | undefined;
  /** The write holding the candidate's vote for itself; the vote counts once it is durable. */
  private selfVoteWriteId = 0;
  private progress: ProgressTracker | undefined;

  // Outputs.
  private readonly writes: WriteTracker;
  private outbox: RaftMessage[] = [];
  private held: HeldMessage[] = [];
  private snapshotToApply: Snapshot | undefined;
  private lastReported: LeaderChange | undefined;
  /** Messages dropped because a queue was at its bound (the network may drop them anyway). */
  messagesDroppedCount = 0;

  constructor(config: RaftConfig, durable: DurableState) {
    assert(config.voters.includes(config.id), `node ${config.id} is not among voters ${config.voters}`);
    assert(new Set(config.voters).size === config.voters.length, 'voters must be distinct');
    assert(
      config.electionTimeoutTicks.min > config.heartbeatTicks &&
        config.electionTimeoutTicks.max >= config.electionTimeoutTicks.min,
      'need heartbeatTicks < electionTimeoutTicks.min <= electionTimeoutTicks.max',
    );
    this.config = config;
    this.id = config.id;
    this.voters = [...config.voters];
    this.peers = this.voters.filter((v) => v !== config.id);
    this.quorum = Math.floor(this.voters.length / 2) + 1;
    this.preVote = config.preVote ?? true;
    this.checkQuorum = config.checkQuorum ?? true;
    this.appendEntriesMax = config.appendEntriesMax ?? 64;
    this.uncommittedEntriesMax = config.uncommittedEntriesMax ?? 4096;
    this.messagesQueuedMax = config.messagesQueuedMax ?? 4096;
    this.applyEntriesMax = config.applyEntriesMax ?? 1024;

    this.currentTerm = durable.hardState.term;
    this.votedFor = durable.hardState.votedFor;
    const snap = durable.snapshot;
    this.raftLog = new RaftLog(snap?.index ?? 0, snap?.term ?? 0, durable.entries);
    this.latestSnapshot = snap;
    this.snapshotToApply = snap;
    // Commit index is volatile: it restarts at the snapshot and is relearned from the leader.
    this.commit = this.raftLog.snapshotIndex;
    this.applied = this.raftLog.snapshotIndex;
    this.writes = new WriteTracker(this.raftLog.lastIndex);
    this.resetElectionTimer();
  }

  // ---------------------------------------------------------------------------------------------
  // Inspection (read-only; the simulator's checkers use these).

  get term(): number {
    return this.currentTerm;
  }
  get role(): Role {
    return this.currentRole;
  }
  get leaderId(): NodeId | undefined {
    return this.currentLeader;
  }
  get commitIndex(): number {
    return this.commit;
  }
  get appliedIndex(): number {
    return this.applied;
  }
  get vote(): NodeId | undefined {
    return this.votedFor;
  }
  get log(): Pick<
    RaftLog,
    'snapshotIndex' | 'snapshotTerm' | 'firstIndex' | 'lastIndex' | 'lastTerm' | 'term' | 'entry' | 'slice'
  > {
    return this.raftLog;
  }
  get snapshot(): Snapshot | undefined {
    return this.latestSnapshot;
  }
  /** Highest index whose entry (as in the current log) is on disk. */
  get durableIndex(): number {
    return this.writes.durableMatchIndex();
  }
  /**
   * The leader's replication progress: per follower, the highest index known to be durable there.
   * Empty unless this node is the leader. A copy; status reporting (DescribeQuorum) reads it.
   */
  followerProgress(): { readonly id: NodeId; readonly matchIndex: number }[] {
    if (this.currentRole !== 'leader' || this.progress === undefined) return [];
    return [...this.progress.all()].map((p) => ({ id: p.id, matchIndex: p.matchIndex }));
  }

  // ---------------------------------------------------------------------------------------------
  // Inputs.

  tick(): void {
    if (this.currentRole === 'leader') {
      this.heartbeatElapsed++;
      this.electionElapsed++;
      if (this.electionElapsed >= this.config.electionTimeoutTicks.min) {
        this.electionElapsed = 0;
        if (this.checkQuorum && !this.progress!.quorumActive()) {
          this.becomeFollower(this.currentTerm, undefined);
          return;
        }
      }
      if (this.heartbeatElapsed >= this.config.heartbeatTicks) {
        this.heartbeatElapsed = 0;
        for (const peer of this.peers) this.sendAppend(peer, true);
      }
      return;
    }
    this.electionElapsed++;
    if (this.electionElapsed >= this.randomizedElectionTimeout) this.campaign();
  }

  propose(data: Uint8Array): ProposeResult {
    if (this.currentRole !== 'leader') {
      return { ok: false, reason: 'not_leader', leaderId: this.currentLeader, term: this.currentTerm };
    }
    if (this.raftLog.lastIndex - this.commit >= this.uncommittedEntriesMax) {
      return { ok: false, reason: 'backpressure', leaderId: this.id, term: this.currentTerm };
    }
    const index = this.appendAsLeader('data', data);
    return { ok: true, index, term: this.currentTerm };
  }

  /** The driver's persistence completion: write `writeId` and all before it are fsynced. */
  diskWritten(writeId: number): void {
    this.writes.completed(writeId);
    const durable = this.writes.durableWriteId;
    if (this.held.length > 0) {
      const still: HeldMessage[] = [];
      for (const h of this.held) {
        if (h.requiresWriteId <= durable) this.queue(h.message);
        else still.push(h);
      }
      this.held = still;
    }
    if (this.currentRole === 'candidate' && this.selfVoteWriteId <= durable && !this.tally!.has(this.id)) {
      this.tally!.record(this.id, true);
      this.checkElection();
    }
    if (this.currentRole === 'leader') this.maybeAdvanceCommit();
  }

  /**
   * Replaces entries up to `index` (which must be applied) with a snapshot of the state machine
   * taken at `index`. Returns false when `index` is not above the current snapshot.
   */
  compact(index: number, data: Uint8Array): boolean {
    assert(index <= this.applied, `compact(${index}) beyond applied index ${this.applied}`);
    if (index <= this.raftLog.snapshotIndex) return false;
    const term = this.raftLog.term(index);
    assert(term !== undefined, `compact(${index}): no entry`);
    this.raftLog.compact(index);
    this.latestSnapshot = { index, term, data };
    this.writes.markSnapshot(this.latestSnapshot);
    return true;
  }

  receive(m: RaftMessage): void {
    if (m.to !== this.id || m.from === this.id || !this.voters.includes(m.from)) return;

    if (m.term > this.currentTerm) {
      if (m.type === 'PreVote' || (m.type === 'PreVoteResponse' && m.granted)) {
        // Pre-votes never move terms: that is their whole point.
      } else if (m.type === 'Vote' && this.inLease()) {
        // A leader is alive as far as we know: a higher-term candidate is disruptive, not needed.
        return;
      } else {
        const leader = m.type === 'AppendEntries' || m.type === 'InstallSnapshot' ? m.from : undefined;
        this.becomeFollower(m.term, leader);
      }
    } else if (m.term < this.currentTerm) {
      // Answer stale leaders and candidates with our term so they step down; drop stale responses.
      switch (m.type) {
        case 'AppendEntries':
        case 'InstallSnapshot':
          this.send(this.appendResponse(m.from, false, 0, 0, undefined, 0));
          return;
        case 'PreVote':
          this.send({
            type: 'PreVoteResponse',
            from: this.id,
            to: m.from,
            term: this.currentTerm,
            granted: false,
          });
          return;
        case 'Vote':
          this.send({
            type: 'VoteResponse',
            from: this.id,
            to: m.from,
            term: this.currentTerm,
            granted: false,
          });
          return;
        default:
          return;
      }
    }

    switch (m.type) {
      case 'PreVote':
        this.onPreVote(m);
        break;
      case 'PreVoteResponse':
        this.onPreVoteResponse(m);
        break;
      case 'Vote':
        this.onVote(m);
        break;
      case 'VoteResponse':
        this.onVoteResponse(m);
        break;
      case 'AppendEntries':
        this.onAppendEntries(m);
        break;
      case 'AppendEntriesResponse':
        this.onAppendEntriesResponse(m);
        break;
      case 'InstallSnapshot':
        this.onInstallSnapshot(m);
        break;
      case 'InstallSnapshotResponse':
        this.onInstallSnapshotResponse(m);
        break;
    }
  }

  hasReady(): boolean {
    return (
      this.writes.gathering ||
      this.outbox.length > 0 ||
      this.snapshotToApply !== undefined ||
      this.applied < this.commit ||
      this.leaderChangePending()
    );
  }

  ready(): Ready {
    const persist = this.writes.take(this.raftLog, { term: this.currentTerm, votedFor: this.votedFor });
    const messages = this.outbox;
    this.outbox = [];
    const snapshot = this.snapshotToApply;
    this.snapshotToApply = undefined;
    let committed: LogEntry[] = [];
    if (this.applied < this.commit) {
      committed = this.raftLog.slice(this.applied + 1, this.commit + 1, this.applyEntriesMax);
      const last = committed[committed.length - 1];
      if (last !== undefined) this.applied = last.index;
    }
    let leaderChange: LeaderChange | undefined;
    if (this.leaderChangePending()) {
      leaderChange = { leaderId: this.currentLeader, term: this.currentTerm, role: this.currentRole };
      this.lastReported = leaderChange;
    }
    return { persist, messages, snapshot, committed, leaderChange };
  }

  // ---------------------------------------------------------------------------------------------
  // Roles.

  private becomeFollower(term: number, leader: NodeId | undefined): void {
    assert(term >= this.currentTerm, `term would go back from ${this.currentTerm} to ${term}`);
    if (term > this.currentTerm) {
      this.currentTerm = term;
      this.votedFor = undefined;
      this.writes.markHardState();
    }
    this.currentRole = 'follower';
    this.currentLeader = leader;
    this.tally = undefined;
    this.progress = undefined;
    this.resetElectionTimer();
  }

  private campaign(): void {
    if (this.preVote) this.becomePreCandidate();
    else this.becomeCandidate();
  }

  private becomePreCandidate(): void {
    this.currentRole = 'precandidate';
    this.currentLeader = undefined;
    this.progress = undefined;
    this.tally = new VoteTally(this.voters);
    this.tally.record(this.id, true);
    this.resetElectionTimer();
    this.checkElection();
    if (this.currentRole !== 'precandidate') return;
    for (const peer of this.peers) {
      this.send({
        type: 'PreVote',
        from: this.id,
        to: peer,
        term: this.currentTerm + 1,
        lastLogIndex: this.raftLog.lastIndex,
        lastLogTerm: this.raftLog.lastTerm,
      });
    }
  }

  private becomeCandidate(): void {
    this.currentTerm++;
    this.votedFor = this.id;
    this.writes.markHardState();
    this.currentRole = 'candidate';
    this.currentLeader = undefined;
    this.progress = undefined;
    this.tally = new VoteTally(this.voters);
    this.selfVoteWriteId = this.writes.coveringWriteId;
    this.resetElectionTimer();
    // Our own vote counts once it is durable (diskWritten); a crash before that must not leave
    // us free to vote for someone else in this term after having counted ourselves.
    if (this.config.unsafe?.ackBeforeFsync) {
      this.tally.record(this.id, true);
      this.checkElection();
      if (this.currentRole !== 'candidate') return;
    }
    for (const peer of this.peers) {
      this.send({
        type: 'Vote',
        from: this.id,
        to: peer,
        term: this.currentTerm,
        lastLogIndex: this.raftLog.lastIndex,
        lastLogTerm: this.raftLog.lastTerm,
      });
    }
  }

  private becomeLeader(): void {
    this.currentRole = 'leader';
    this.currentLeader = this.id;
    this.tally = undefined;
    this.progress = new ProgressTracker(this.peers, this.raftLog.lastIndex);
    this.heartbeatElapsed = 0;
    this.electionElapsed = 0;
    // The no-op lets this term commit, and with it every earlier entry (§5.4.2, §8).
    this.appendAsLeader('noop', EMPTY);
  }

  /** Moves on when the tally is decided: a won pre-vote starts the real election. */
  private checkElection(): void {
    const outcome = this.tally!.outcome();
    if (outcome === 'pending') return;
    if (outcome === 'lost') this.becomeFollower(this.currentTerm, undefined);
    else if (this.currentRole === 'precandidate') this.becomeCandidate();
    else this.becomeLeader();
  }

  private inLease(): boolean {
    return (
      this.checkQuorum &&
      this.currentLeader !== undefined &&
      this.electionElapsed < this.config.electionTimeoutTicks.min
    );
  }

  private resetElectionTimer(): void {
    this.electionElapsed = 0;
    const { min, max } = this.config.electionTimeoutTicks;
    this.randomizedElectionTimeout = min + Math.floor(this.config.random() * (max - min + 1));
  }

  // ---------------------------------------------------------------------------------------------
  // Elections.

  private onPreVote(m: PreVoteRequest): void {
    const granted =
      m.term > this.currentTerm &&
      !this.inLease() &&
      (this.config.unsafe?.voteWithoutLogCheck || this.raftLog.isUpToDate(m.lastLogIndex, m.lastLogTerm));
    this.send({
      type: 'PreVoteResponse',
      from: this.id,
      to: m.from,
      term: granted ? m.term : this.currentTerm,
      granted,
    });
  }

  private onPreVoteResponse(m: PreVoteResponse): void {
    if (this.currentRole !== 'precandidate') return;
    // A rejection at our own term counts as a no; grants name the term we asked for.
    if (m.granted ? m.term !== this.currentTerm + 1 : m.term !== this.currentTerm) return;
    this.tally!.record(m.from, m.granted);
    this.checkElection();
  }

  private onVote(m: VoteRequest): void {
    // Here m.term === currentTerm (a higher term made us a follower of it first).
    const canVote =
      this.votedFor === m.from || (this.votedFor === undefined && this.currentLeader === undefined);
    const granted =
      canVote &&
      (this.config.unsafe?.voteWithoutLogCheck || this.raftLog.isUpToDate(m.lastLogIndex, m.lastLogTerm));
    if (granted) {
      if (this.votedFor !== m.from) {
        this.votedFor = m.from;
        this.writes.markHardState();
      }
      this.resetElectionTimer();
    }
    this.send({ type: 'VoteResponse', from: this.id, to: m.from, term: this.currentTerm, granted });
  }

  private onVoteResponse(m: VoteResponse): void {
    if (this.currentRole !== 'candidate') return;
    this.tally!.record(m.from, m.granted);
    this.checkElection();
  }

  // ---------------------------------------------------------------------------------------------
  // Replication, follower side.

  private acceptLeader(leader: NodeId): void {
    assert(
      this.currentRole !== 'leader',
      `node ${this.id}: two leaders in term ${this.currentTerm} (${this.id} and ${leader})`,
    );
    if (this.currentRole !== 'follower' || this.currentLeader !== leader)
      this.becomeFollower(this.currentTerm, leader);
    this.electionElapsed = 0;
  }

  private onAppendEntries(m: AppendEntriesRequest): void {
    this.acceptLeader(m.from);
    const lastNewIndex = m.prevLogIndex + m.entries.length;
    let prevIndex = m.prevLogIndex;
    let entries = m.entries;
    if (prevIndex < this.commit) {
      // Everything up to our commit index already matches the leader's log (Leader Completeness),
      // and part of it may be compacted: check consistency from the commit index instead.
      entries = entries.filter((e) => e.index > this.commit);
      prevIndex = this.commit;
    } else if (this.raftLog.term(prevIndex) !== m.prevLogTerm) {
      const conflictTerm = this.raftLog.term(prevIndex);
      const conflictIndex =
        conflictTerm === undefined
          ? this.raftLog.lastIndex + 1
          : Math.max(this.raftLog.firstIndexOfTermAt(prevIndex), this.commit + 1);
      this.send(this.appendResponse(m.from, false, 0, prevIndex, conflictTerm, conflictIndex));
      return;
    }
    if (entries.length > 0) {
      const { firstChangedIndex, truncatedFromIndex } = this.raftLog.merge(entries);
      if (truncatedFromIndex !== undefined) {
        assert(
          truncatedFromIndex > this.commit,
          `truncating committed entry ${truncatedFromIndex} <= ${this.commit}`,
        );
      }
      if (firstChangedIndex !== undefined) this.writes.markEntries(firstChangedIndex);
    }
    const matchIndex = Math.max(lastNewIndex, prevIndex);
    const newCommit = Math.min(m.leaderCommit, matchIndex);
    if (newCommit > this.commit) this.commit = newCommit;
    this.send(this.appendResponse(m.from, true, matchIndex, 0, undefined, 0));
  }

  private onInstallSnapshot(m: InstallSnapshotRequest): void {
    this.acceptLeader(m.from);
    const snap = m.snapshot;
    if (snap.index <= this.commit) {
      this.send(this.snapshotResponse(m.from, this.commit));
      return;
    }
    if (this.raftLog.term(snap.index) === snap.term) {
      // Our log already holds the snapshot's last entry; it matches the leader's through there.
      this.commit = snap.index;
      this.send(this.snapshotResponse(m.from, snap.index));
      return;
    }
    // Replace the whole log; entries above our commit index are dropped (they may conflict).
    this.writes.markEntries(this.commit + 1);
    this.raftLog.resetToSnapshot(snap.index, snap.term);
    this.latestSnapshot = snap;
    this.writes.markSnapshot(snap);
    this.commit = snap.index;
    this.applied = snap.index;
    this.snapshotToApply = snap;
    this.send(this.snapshotResponse(m.from, snap.index));
  }

  private appendResponse(
    to: NodeId,
    success: boolean,
    matchIndex: number,
    rejectedIndex: number,
    conflictTerm: number | undefined,
    conflictIndex: number,
  ): AppendEntriesResponse {
    return {
      type: 'AppendEntriesResponse',
      from: this.id,
      to,
      term: this.currentTerm,
      success,
      matchIndex,
      rejectedIndex,
      conflictTerm,
      conflictIndex,
    };
  }

  private snapshotResponse(to: NodeId, matchIndex: number): InstallSnapshotResponse {
    return { type: 'InstallSnapshotResponse', from: this.id, to, term: this.currentTerm, matchIndex };
  }

  // ---------------------------------------------------------------------------------------------
  // Replication, leader side.

  private appendAsLeader(kind: LogEntry['kind'], data: Uint8Array): number {
    const index = this.raftLog.lastIndex + 1;
    this.raftLog.append({ index, term: this.currentTerm, kind, data });
    this.writes.markEntries(index);
    for (const peer of this.peers) this.sendAppend(peer, false);
    this.maybeAdvanceCommit();
    return index;
  }

  /** Sends the follower what it needs next; with `heartbeat`, even when that is nothing. */
  private sendAppend(peer: NodeId, heartbeat: boolean): void {
    const p = this.progress!.get(peer)!;
    if (p.snapshotIndex !== undefined) {
      // Paused while a snapshot is in flight; heartbeats resend it in case it was lost.
      if (heartbeat) this.sendSnapshot(peer);
      return;
    }
    if (p.nextIndex > this.raftLog.lastIndex + 1) p.nextIndex = this.raftLog.lastIndex + 1;
    const prevLogIndex = p.nextIndex - 1;
    const prevLogTerm = this.raftLog.term(prevLogIndex);
    if (prevLogTerm === undefined) {
      this.sendSnapshot(peer);
      return;
    }
    const entries = this.raftLog.slice(p.nextIndex, this.raftLog.lastIndex + 1, this.appendEntriesMax);
    if (entries.length === 0 && !heartbeat) return;
    this.send({
      type: 'AppendEntries',
      from: this.id,
      to: peer,
      term: this.currentTerm,
      prevLogIndex,
      prevLogTerm,
      entries,
      leaderCommit: this.commit,
    });
    if (!p.probing) p.nextIndex += entries.length;
  }

  private sendSnapshot(peer: NodeId): void {
    const snap = this.latestSnapshot;
    assert(snap !== undefined, 'log compacted without a snapshot');
    this.progress!.get(peer)!.snapshotIndex = snap.index;
    this.send({ type: 'InstallSnapshot', from: this.id, to: peer, term: this.currentTerm, snapshot: snap });
  }

  private onAppendEntriesResponse(m: AppendEntriesResponse): void {
    if (this.currentRole !== 'leader') return;
    const p = this.progress!.get(m.from);
    if (p === undefined) return;
    p.recentlyActive = true;
    if (m.success) {
      if (this.progress!.advance(m.from, m.matchIndex)) this.maybeAdvanceCommit();
      if (p.probing && p.snapshotIndex === undefined) {
        p.probing = false;
        p.nextIndex = p.matchIndex + 1;
      }
      if (p.nextIndex <= this.raftLog.lastIndex) this.sendAppend(m.from, false);
      return;
    }
    // Stale rejections — at or below the match index, or of anything but the latest probe — are
    // answers to messages already superseded (reordered, duplicated or pipelined): ignore them.
    if (m.rejectedIndex <= p.matchIndex || p.snapshotIndex !== undefined) return;
    if (p.probing && m.rejectedIndex !== p.nextIndex - 1) return;
    p.probing = true;
    let next = m.conflictIndex;
    if (m.conflictTerm !== undefined) {
      const last = this.raftLog.lastIndexOfTerm(m.conflictTerm);
      if (last !== undefined) next = last + 1;
    }
    p.nextIndex = Math.max(p.matchIndex + 1, Math.min(next, m.rejectedIndex, this.raftLog.lastIndex + 1));
    this.sendAppend(m.from, true);
  }

  private onInstallSnapshotResponse(m: InstallSnapshotResponse): void {
    if (this.currentRole !== 'leader') return;
    const p = this.progress!.get(m.from);
    if (p === undefined) return;
    p.recentlyActive = true;
    p.snapshotIndex = undefined;
    if (this.progress!.advance(m.from, m.matchIndex)) this.maybeAdvanceCommit();
    p.nextIndex = p.matchIndex + 1;
    p.probing = false;
    this.sendAppend(m.from, false);
  }

  private maybeAdvanceCommit(): void {
    const selfIndex = this.config.unsafe?.ackBeforeFsync
      ? this.raftLog.lastIndex
      : this.writes.durableMatchIndex();
    const candidate = this.progress!.quorumMatchIndex(selfIndex);
    if (candidate <= this.commit) return;
    // §5.4.2: only an entry of the current term is committed by counting replicas; earlier ones
    // follow it by the Log Matching Property.
    if (
      this.raftLog.term(candidate) !== this.currentTerm &&
      !this.config.unsafe?.commitPreviousTermByCounting
    )
      return;
    assert(candidate <= this.raftLog.lastIndex, 'quorum match beyond the leader log');
    this.commit = candidate;
  }

  // ---------------------------------------------------------------------------------------------
  // Output queues.

  /**
   * Queues a message, holding it back until the writes it depends on are durable. A leader's
   * replication traffic and all pre-vote traffic depend on nothing.
   */
  private send(m: RaftMessage): void {
    const independent =
      m.type === 'PreVote' ||
      m.type === 'PreVoteResponse' ||
      (this.currentRole === 'leader' && (m.type === 'AppendEntries' || m.type === 'InstallSnapshot'));
    const requiresWriteId =
      independent || this.config.unsafe?.ackBeforeFsync ? 0 : this.writes.coveringWriteId;
    if (requiresWriteId <= this.writes.durableWriteId) {
      this.queue(m);
      return;
    }
    if (this.held.length >= this.messagesQueuedMax) {
      this.messagesDroppedCount++;
      return;
    }
    this.held.push({ message: m, requiresWriteId });
  }

  private queue(m: RaftMessage): void {
    if (this.outbox.length >= this.messagesQueuedMax) {
      this.messagesDroppedCount++;
      return;
    }
    this.outbox.push(m);
  }

  private leaderChangePending(): boolean {
    const r = this.lastReported;
    return (
      r === undefined ||
      r.leaderId !== this.currentLeader ||
      r.term !== this.currentTerm ||
      r.role !== this.currentRole
    );
  }
}
