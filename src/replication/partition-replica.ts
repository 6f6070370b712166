/**
 * PartitionReplica: one partition on one broker, as leader or follower, as a pure state machine.
 *
 * It owns no sockets, timers or clock. The driver (the broker later, the simulator now) feeds it the
 * controller's partition state, requests and responses, flush completions and `tick(nowMs)`, and
 * drains its outputs (AlterPartition proposals, completed produces) with `drainOutputs()`. A
 * follower's next request comes from `pollRequest(nowMs)`. The same inputs in the same order give
 * the same outputs.
 *
 * Leader (Kafka's Partition + ReplicaManager roles):
 * - Tracks each follower's log end offset from its Fetch (fetchOffset) and the last time it was
 *   caught up (fetchOffset >= the leader's log end offset now, or >= the leader's log end offset at
 *   the follower's previous fetch, as Kafka's Replica.updateFetchState does).
 * - Proposes ISR changes to the controller (AlterPartition, KIP-497): shrink when a follower has not
 *   caught up for replicaLagTimeMaxMs, expand when a follower has reached the high watermark and
 *   the start of the current epoch. A change takes effect only when the controller confirms it.
 * - The high watermark is min(own flushed offset, followers' fetch offsets) over the *maximal* ISR:
 *   the confirmed ISR plus every member of a proposal whose outcome is not yet known. So the HW is
 *   always computed over a superset of any ISR the controller may hold for this leader epoch, and
 *   any replica the controller may elect holds everything below it. It never goes back.
 * - acks=all: rejected with NOT_ENOUGH_REPLICAS when the ISR is below min.insync.replicas before
 *   the append; completes when HW > the batch's last offset, with NOT_ENOUGH_REPLICAS_AFTER_APPEND
 *   if the maximal ISR is below min.insync.replicas by then.
 * - Fetch carries lastFetchedEpoch (Fetch v12+); a follower whose log diverges from the leader's epoch
 *   cache gets divergingEpoch {epoch, endOffset} and no records (KIP-320).
 *
 * Durability model: the leader counts its own offsets toward the HW only once flushed, and a
 * follower sends its next Fetch (which reports its log end offset) only after everything it
 * appended is flushed. Hence every offset below the HW is fsynced on every member of the maximal
 * ISR, and acks=all answers only then: a crash of any replica loses no acknowledged record.
 *
 * Follower:
 * - On a new leader epoch it truncates by epoch before fetching (OffsetForLeaderEpoch, KIP-101,
 *   repeated per KIP-279 until the answer names an epoch it has) — or, with
 *   `truncation: 'fetch-diverging-epoch'`, relies on the leader's divergingEpoch answers (KIP-320).
 *   Truncation is by epoch, never by high watermark alone.
 * - Appends fetched batches as they are (offsets and epochs set by the leader) and records every
 *   new epoch in its cache; its HW is min(leader's HW, own log end offset).
 *
 * Leader change (controller input): a new leader starts its epoch at its log end offset
 * (`assign(epoch, logEndOffset)`); produces waiting on a replica that becomes follower fail with
 * NOT_LEADER_OR_FOLLOWER.
 *
 * Bounds: one outstanding AlterPartition, one outstanding follower request, at most
 * `pendingProducesMax` produces waiting for the HW.
 */

import { ErrorCode } from '../protocol/errors.js';
import { LeaderEpochCache, UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET } from './leader-epoch-cache.js';
import {
  type AlterPartitionRequest,
  type AlterPartitionResponse,
  type BrokerId,
  type FollowerRequest,
  type LeaderResponse,
  NO_LEADER,
  type OffsetForLeaderEpochRequest,
  type OffsetForLeaderEpochResponse,
  type PartitionState,
  type ReplicaFetchRequest,
  type ReplicaFetchResponse,
} from './messages.js';
import { type ReplicaLog, batchBaseOffset, splitBatches } from './replica-log.js';

export type Role = 'none' | 'leader' | 'follower';

export interface ReplicaConfig {
  readonly brokerId: BrokerId;
  /** replica.lag.time.max.ms */
  readonly replicaLagTimeMaxMs: number;
  /** min.insync.replicas */
  readonly minInsyncReplicas: number;
  /** replica.fetch.max.bytes (per partition) */
  readonly replicaFetchMaxBytes: number;
  /**
   * Resend an unanswered AlterPartition after this long. It must exceed the transport's delivery
   * bound (Kafka: one request in flight on a TCP connection, resent on a new one after the request
   * timeout), so that at most one copy of a proposal is ever live.
   */
  readonly alterPartitionRetryMs: number;
  /** Resend a follower request that got no answer after this long. */
  readonly followerRequestTimeoutMs: number;
  /** Wait this long after an error answer before the next follower request. */
  readonly followerBackoffMs: number;
  /** How a follower of a new epoch finds where its log diverges (see the file comment). */
  readonly truncation: 'offset-for-leader-epoch' | 'fetch-diverging-epoch';
  readonly pendingProducesMax: number;
  /** Deliberate bugs, for the simulator to prove its checker catches them. Never set in production. */
  readonly unsafe?: {
    /** A follower reports (fetches at) its log end offset before it is flushed. */
    readonly reportUnflushed?: boolean;
    /** Pre-KIP-101: a follower of a new epoch truncates to its HW, and no epoch check is made. */
    readonly truncateToHighWatermark?: boolean;
    /** The HW counts only the confirmed ISR, not the members of a pending expansion. */
    readonly hwOverConfirmedIsr?: boolean;
  };
}

export const DEFAULT_REPLICA_CONFIG: Omit<ReplicaConfig, 'brokerId'> = Object.freeze({
  replicaLagTimeMaxMs: 30_000,
  minInsyncReplicas: 1,
  replicaFetchMaxBytes: 1_048_576,
  alterPartitionRetryMs: 5_000,
  followerRequestTimeoutMs: 30_000,
  followerBackoffMs: 1_000,
  truncation: 'offset-for-leader-epoch',
  pendingProducesMax: 10_000,
});

export type Acks = -1 | 0 | 1;

export interface ProduceResult {
  readonly errorCode: ErrorCode;
  readonly baseOffset: number;
  readonly lastOffset: number;
  /** acks=all waiting for the HW: the answer comes later as a 'produce-completed' output. */
  readonly pending: boolean;
}

export type ReplicaOutput =
  | { readonly type: 'alter-partition'; readonly request: AlterPartitionRequest }
  | {
      readonly type: 'produce-completed';
      readonly produceId: number;
      readonly errorCode: ErrorCode;
      readonly baseOffset: number;
      readonly lastOffset: number;
    };

/** What the leader knows of one follower. */
export interface FollowerProgress {
  /** undefined until the follower fetches (validly) in this leader epoch. */
  logEndOffset: number | undefined;
  lastCaughtUpTimeMs: number;
  lastFetchTimeMs: number;
  lastFetchLeaderLogEndOffset: number;
}

interface PendingProduce {
  readonly produceId: number;
  readonly baseOffset: number;
  readonly lastOffset: number;
  readonly deadlineMs: number;
}

interface OutstandingProposal {
  readonly request: AlterPartitionRequest;
  sentAtMs: number;
  /** Answered with an error that leaves its outcome unknown: wait for a newer partition state. */
  awaitingState: boolean;
}

interface InflightRequest {
  readonly request: FollowerRequest;
  readonly sentAtMs: number;
}

export interface TruncationDecision {
  readonly offset: number;
  /** false: truncated to an intermediate point; ask again with the new latest epoch (KIP-279). */
  readonly complete: boolean;
}

export class ReplicaStateError extends Error {
  readonly code = 'REPLICA_STATE';
  constructor(message: string) {
    super(message);
    this.name = 'ReplicaStateError';
  }
}

export class PartitionReplica {
  readonly config: ReplicaConfig;
  readonly log: ReplicaLog;
  readonly epochCache: LeaderEpochCache;
  private roleValue: Role = 'none';
  private leaderIdValue: BrokerId = NO_LEADER;
  private leaderEpochValue = -1;
  private partitionEpochValue = -1;
  private isrValue: readonly BrokerId[] = [];
  private replicasValue: readonly BrokerId[] = [];
  private highWatermarkValue: number;
  /** Leader: where the current epoch started in the log. */
  private epochStartOffset = 0;
  private readonly progress = new Map<BrokerId, FollowerProgress>();
  private outstanding: OutstandingProposal | undefined;
  private pendingProduces: PendingProduce[] = [];
  private outputs: ReplicaOutput[] = [];
  /** Follower */
  private followerPhase: 'truncating' | 'fetching' = 'fetching';
  private inflight: InflightRequest | undefined;
  private backoffUntilMs = 0;
  private correlationSeq = 0;
  readonly stats = {
    truncations: 0,
    truncatedOffsets: 0,
    hwFallbackTruncations: 0,
    divergingEpochAnswers: 0,
    isrShrinkProposals: 0,
    isrExpandProposals: 0,
  };

  constructor(config: ReplicaConfig, log: ReplicaLog, epochCache: LeaderEpochCache, highWatermark = 0) {
    this.config = config;
    this.log = log;
    this.epochCache = epochCache;
    this.highWatermarkValue = Math.max(log.logStartOffset, Math.min(highWatermark, log.logEndOffset));
  }

  /**
   * A replica over an existing log after a restart: the epoch cache is rebuilt from the batches'
   * partitionLeaderEpoch (what Kafka's recovery does with its checkpoint), the HW comes from a
   * checkpoint (never above the log end). It has no role until the controller's state arrives.
   */
  static recover(config: ReplicaConfig, log: ReplicaLog, highWatermarkCheckpoint = 0): PartitionReplica {
    const cache = new LeaderEpochCache();
    for (const b of log.batches(log.logStartOffset)) {
      if (b.leaderEpoch >= 0 && b.leaderEpoch > cache.latestEpoch) cache.assign(b.leaderEpoch, b.baseOffset);
    }
    return new PartitionReplica(config, log, cache, highWatermarkCheckpoint);
  }

  // ---- inspection -------------------------------------------------------------------------------

  get brokerId(): BrokerId {
    return this.config.brokerId;
  }
  get role(): Role {
    return this.roleValue;
  }
  get leaderId(): BrokerId {
    return this.leaderIdValue;
  }
  get leaderEpoch(): number {
    return this.leaderEpochValue;
  }
  get partitionEpoch(): number {
    return this.partitionEpochValue;
  }
  get highWatermark(): number {
    return this.highWatermarkValue;
  }
  get isr(): readonly BrokerId[] {
    return this.isrValue;
  }
  get replicas(): readonly BrokerId[] {
    return this.replicasValue;
  }
  get pendingProduceCount(): number {
    return this.pendingProduces.length;
  }
  get hasOutstandingAlterPartition(): boolean {
    return this.outstanding !== undefined;
  }

  /** The ISR the HW is computed over: confirmed ISR plus members of an unresolved proposal. */
  get maximalIsr(): readonly BrokerId[] {
    if (this.outstanding === undefined) return this.isrValue;
    const out = [...this.isrValue];
    for (const id of this.outstanding.request.newIsr) if (!out.includes(id)) out.push(id);
    return out;
  }

  followerProgress(id: BrokerId): Readonly<FollowerProgress> | undefined {
    return this.progress.get(id);
  }

  /** Internal consistency; the simulator calls it after every step. */
  assertInvariants(): void {
    const leo = this.log.logEndOffset;
    if (this.highWatermarkValue > leo) {
      throw new ReplicaStateError(`broker ${this.brokerId}: HW ${this.highWatermarkValue} above LEO ${leo}`);
    }
    this.epochCache.assertValid();
    const latest = this.epochCache.latestEntry();
    if (latest !== undefined && latest.startOffset > leo) {
      throw new ReplicaStateError(
        `broker ${this.brokerId}: epoch ${latest.epoch} starts at ${latest.startOffset} > LEO ${leo}`,
      );
    }
    if (this.roleValue === 'leader') {
      if (!this.isrValue.includes(this.brokerId)) {
        throw new ReplicaStateError(`broker ${this.brokerId}: leader not in its ISR [${this.isrValue}]`);
      }
      if (this.epochCache.latestEpoch !== this.leaderEpochValue) {
        throw new ReplicaStateError(
          `broker ${this.brokerId}: leader of epoch ${this.leaderEpochValue} has latest cached epoch ${this.epochCache.latestEpoch}`,
        );
      }
      if (this.highWatermarkValue > this.log.flushedOffset) {
        throw new ReplicaStateError(`broker ${this.brokerId}: leader HW above its flushed offset`);
      }
    }
  }

  drainOutputs(): ReplicaOutput[] {
    const out = this.outputs;
    this.outputs = [];
    return out;
  }

  // ---- controller input -------------------------------------------------------------------------

  /**
   * The controller's state of the partition (LeaderAndIsr / a metadata PartitionChangeRecord).
   * Stale or repeated states (partition epoch not newer) are ignored, so delivery may reorder.
   */
  applyPartitionState(state: PartitionState, nowMs: number): void {
    if (state.partitionEpoch <= this.partitionEpochValue) return;
    if (state.leaderEpoch < this.leaderEpochValue) return;
    // The log already holds batches of a newer epoch: this state is history (e.g. replayed metadata
    // after a restart). Acting on it would make this replica lead an old epoch and rewrite its
    // epoch cache, and a later truncation would be computed from the wrong epochs.
    if (state.leaderEpoch < this.epochCache.latestEpoch) return;
    if (!state.replicas.includes(this.brokerId)) {
      this.resign(ErrorCode.NOT_LEADER_OR_FOLLOWER);
      this.roleValue = 'none';
      this.acceptState(state);
      return;
    }
    const newEpoch = state.leaderEpoch > this.leaderEpochValue || this.roleValue === 'none';
    if (newEpoch) {
      if (state.leaderId === this.brokerId) this.becomeLeader(state, nowMs);
      else this.becomeFollower(state);
      return;
    }
    // Same leader epoch, newer partition epoch: an ISR change.
    this.acceptState(state);
    if (this.roleValue === 'leader') {
      this.maybeAdvanceHighWatermark();
      this.completeProduces();
    }
  }

  private acceptState(state: PartitionState): void {
    this.leaderIdValue = state.leaderId;
    this.leaderEpochValue = state.leaderEpoch;
    this.partitionEpochValue = state.partitionEpoch;
    this.isrValue = [...state.isr];
    this.replicasValue = [...state.replicas];
    // A newer partition state settles any proposal made against an older one: it was either
    // applied (and this state, or a later one, includes it) or it never will be.
    if (this.outstanding !== undefined && this.outstanding.request.partitionEpoch < state.partitionEpoch) {
      this.outstanding = undefined;
    }
  }

  private becomeLeader(state: PartitionState, nowMs: number): void {
    this.acceptState(state);
    this.roleValue = 'leader';
    this.outstanding = undefined;
    this.inflight = undefined;
    const leo = this.log.logEndOffset;
    this.epochCache.assign(state.leaderEpoch, leo);
    this.epochStartOffset = leo;
    this.highWatermarkValue = Math.min(this.highWatermarkValue, leo);
    this.progress.clear();
    for (const id of state.replicas) {
      if (id === this.brokerId) continue;
      this.progress.set(id, {
        logEndOffset: undefined,
        lastCaughtUpTimeMs: state.isr.includes(id) ? nowMs : 0,
        lastFetchTimeMs: nowMs,
        lastFetchLeaderLogEndOffset: 0,
      });
    }
    this.maybeAdvanceHighWatermark();
    this.completeProduces();
  }

  private becomeFollower(state: PartitionState): void {
    this.resign(ErrorCode.NOT_LEADER_OR_FOLLOWER);
    this.acceptState(state);
    this.roleValue = 'follower';
    this.progress.clear();
    this.outstanding = undefined;
    this.inflight = undefined;
    this.backoffUntilMs = 0;
    this.followerPhase =
      this.config.truncation === 'offset-for-leader-epoch' ||
      this.config.unsafe?.truncateToHighWatermark === true
        ? 'truncating'
        : 'fetching';
    this.highWatermarkValue = Math.min(this.highWatermarkValue, this.log.logEndOffset);
  }

  /** Fails every waiting produce (this replica is no longer the leader). */
  private resign(errorCode: ErrorCode): void {
    for (const p of this.pendingProduces) {
      this.outputs.push({
        type: 'produce-completed',
        produceId: p.produceId,
        errorCode,
        baseOffset: p.baseOffset,
        lastOffset: p.lastOffset,
      });
    }
    this.pendingProduces = [];
  }

  onAlterPartitionResponse(response: AlterPartitionResponse, nowMs: number): void {
    const o = this.outstanding;
    if (this.roleValue !== 'leader' || o === undefined) return;
    if (response.requestPartitionEpoch !== o.request.partitionEpoch) return; // an older proposal's answer
    if (response.errorCode === ErrorCode.NONE && response.state !== undefined) {
      this.applyPartitionState(response.state, nowMs);
      return;
    }
    if (response.errorCode === ErrorCode.INELIGIBLE_REPLICA) {
      // Checked after the partition epoch, which therefore still equals ours: no copy of this
      // proposal was applied, and (one live copy at most) none will be. Drop it; retry later.
      this.outstanding = undefined;
      return;
    }
    // INVALID_UPDATE_VERSION, FENCED_LEADER_EPOCH, NOT_LEADER...: an earlier copy may have been
    // applied; only a newer partition state tells. Keep counting the proposal's members meanwhile.
    o.awaitingState = true;
  }

  // ---- leader ------------------------------------------------------------------------------------

  /** Appends a producer's batches as leader. `produceId` names a later 'produce-completed' output. */
  appendAsLeader(
    produceId: number,
    batches: Buffer,
    acks: Acks,
    nowMs: number,
    timeoutMs: number,
  ): ProduceResult {
    const fail = (errorCode: ErrorCode): ProduceResult => ({
      errorCode,
      baseOffset: -1,
      lastOffset: -1,
      pending: false,
    });
    if (this.roleValue !== 'leader') return fail(ErrorCode.NOT_LEADER_OR_FOLLOWER);
    if (acks === -1 && this.isrValue.length < this.config.minInsyncReplicas)
      return fail(ErrorCode.NOT_ENOUGH_REPLICAS);
    if (acks === -1 && this.pendingProduces.length >= this.config.pendingProducesMax) {
      return fail(ErrorCode.REQUEST_TIMED_OUT);
    }
    const { baseOffset, lastOffset } = this.log.append(batches, this.leaderEpochValue);
    if (acks !== -1) return { errorCode: ErrorCode.NONE, baseOffset, lastOffset, pending: false };
    this.pendingProduces.push({ produceId, baseOffset, lastOffset, deadlineMs: nowMs + timeoutMs });
    this.completeProduces();
    const stillPending = this.pendingProduces.some((p) => p.produceId === produceId);
    if (stillPending) return { errorCode: ErrorCode.NONE, baseOffset, lastOffset, pending: true };
    // Completed at once (cannot happen before a flush, but keep the contract simple).
    const done = this.outputs.findIndex((o) => o.type === 'produce-completed' && o.produceId === produceId);
    const out = this.outputs.splice(done, 1)[0] as Extract<ReplicaOutput, { type: 'produce-completed' }>;
    return { errorCode: out.errorCode, baseOffset, lastOffset, pending: false };
  }

  /** The driver's flush (fsync) completed: the leader's own durable offset may raise the HW. */
  onFlushed(): void {
    if (this.roleValue !== 'leader') return;
    this.maybeAdvanceHighWatermark();
    this.completeProduces();
  }

  handleFetch(req: ReplicaFetchRequest, nowMs: number): ReplicaFetchResponse {
    const { response, read } = this.acceptFetch(req, nowMs);
    if (read === undefined) return response;
    return { ...response, records: this.log.read(read.offset, read.maxBytes) };
  }

  /**
   * A follower's Fetch, without the read: the answer (records empty) and, when there is data to
   * send, where to read it. The broker reads from its asynchronous log; handleFetch reads the
   * synchronous ReplicaLog. Both run exactly this state change.
   */
  acceptFetch(
    req: ReplicaFetchRequest,
    nowMs: number,
  ): { response: ReplicaFetchResponse; read: { offset: number; maxBytes: number } | undefined } {
    const answer = (
      errorCode: ErrorCode,
      records = EMPTY,
      divergingEpoch?: ReplicaFetchResponse['divergingEpoch'],
    ) => ({
      kind: 'fetch-response' as const,
      correlationId: req.correlationId,
      errorCode,
      highWatermark: this.highWatermarkValue,
      logStartOffset: this.log.logStartOffset,
      divergingEpoch,
      records,
    });
    const epochError = this.checkLeaderEpoch(req.currentLeaderEpoch);
    if (epochError !== ErrorCode.NONE) return { response: answer(epochError), read: undefined };
    const p = this.progress.get(req.replicaId);
    if (p === undefined) return { response: answer(ErrorCode.NOT_LEADER_OR_FOLLOWER), read: undefined };
    const leo = this.log.logEndOffset;
    if (req.lastFetchedEpoch !== UNDEFINED_EPOCH) {
      const end = this.epochCache.endOffsetFor(req.lastFetchedEpoch, leo);
      if (end.epoch < req.lastFetchedEpoch || end.endOffset < req.fetchOffset) {
        // The follower's log is not a prefix of ours: it must truncate before its offset means anything.
        p.logEndOffset = undefined;
        this.stats.divergingEpochAnswers++;
        return {
          response: answer(ErrorCode.NONE, EMPTY, { epoch: end.epoch, endOffset: end.endOffset }),
          read: undefined,
        };
      }
    }
    if (req.fetchOffset > leo || req.fetchOffset < this.log.logStartOffset) {
      p.logEndOffset = undefined;
      return { response: answer(ErrorCode.OFFSET_OUT_OF_RANGE), read: undefined };
    }
    // Kafka's Replica.updateFetchState.
    if (req.fetchOffset >= leo) p.lastCaughtUpTimeMs = Math.max(p.lastCaughtUpTimeMs, nowMs);
    else if (req.fetchOffset >= p.lastFetchLeaderLogEndOffset) {
      p.lastCaughtUpTimeMs = Math.max(p.lastCaughtUpTimeMs, p.lastFetchTimeMs);
    }
    p.logEndOffset = req.fetchOffset;
    p.lastFetchLeaderLogEndOffset = leo;
    p.lastFetchTimeMs = nowMs;
    this.maybeExpandIsr(req.replicaId, nowMs);
    this.maybeAdvanceHighWatermark();
    this.completeProduces();
    const read = req.fetchOffset < leo ? { offset: req.fetchOffset, maxBytes: req.maxBytes } : undefined;
    return { response: answer(ErrorCode.NONE), read };
  }

  handleOffsetForLeaderEpoch(req: OffsetForLeaderEpochRequest): OffsetForLeaderEpochResponse {
    const answer = (errorCode: ErrorCode, leaderEpoch: number, endOffset: number) => ({
      kind: 'offset-for-leader-epoch-response' as const,
      correlationId: req.correlationId,
      errorCode,
      leaderEpoch,
      endOffset,
    });
    const epochError = this.checkLeaderEpoch(req.currentLeaderEpoch);
    if (epochError !== ErrorCode.NONE) return answer(epochError, UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
    const end = this.epochCache.endOffsetFor(req.leaderEpoch, this.log.logEndOffset);
    return answer(ErrorCode.NONE, end.epoch, end.endOffset);
  }

  /** A consumer's read: whole batches from `offset`, never at or past the HW. */
  readCommitted(
    offset: number,
    maxBytes: number,
  ): { errorCode: ErrorCode; records: Buffer; highWatermark: number } {
    const hw = this.highWatermarkValue;
    if (this.roleValue !== 'leader')
      return { errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER, records: EMPTY, highWatermark: hw };
    if (offset < this.log.logStartOffset || offset > this.log.logEndOffset) {
      return { errorCode: ErrorCode.OFFSET_OUT_OF_RANGE, records: EMPTY, highWatermark: hw };
    }
    const records = offset < hw ? this.log.read(offset, maxBytes, hw) : EMPTY;
    return { errorCode: ErrorCode.NONE, records, highWatermark: hw };
  }

  /** FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH / NOT_LEADER_OR_FOLLOWER per KIP-320. */
  private checkLeaderEpoch(currentLeaderEpoch: number): ErrorCode {
    if (currentLeaderEpoch < this.leaderEpochValue) return ErrorCode.FENCED_LEADER_EPOCH;
    if (currentLeaderEpoch > this.leaderEpochValue) return ErrorCode.UNKNOWN_LEADER_EPOCH;
    if (this.roleValue !== 'leader') return ErrorCode.NOT_LEADER_OR_FOLLOWER;
    return ErrorCode.NONE;
  }

  tick(nowMs: number): void {
    if (this.roleValue !== 'leader') return;
    for (const p of this.pendingProduces) {
      if (p.deadlineMs <= nowMs) {
        this.outputs.push({
          type: 'produce-completed',
          produceId: p.produceId,
          errorCode: ErrorCode.REQUEST_TIMED_OUT,
          baseOffset: p.baseOffset,
          lastOffset: p.lastOffset,
        });
      }
    }
    this.pendingProduces = this.pendingProduces.filter((p) => p.deadlineMs > nowMs);
    const o = this.outstanding;
    if (o !== undefined) {
      if (!o.awaitingState && nowMs - o.sentAtMs >= this.config.alterPartitionRetryMs) {
        o.sentAtMs = nowMs;
        this.outputs.push({ type: 'alter-partition', request: o.request });
      }
      return;
    }
    const lagging = this.isrValue.filter((id) => {
      if (id === this.brokerId) return false;
      const p = this.progress.get(id);
      return p === undefined || nowMs - p.lastCaughtUpTimeMs > this.config.replicaLagTimeMaxMs;
    });
    if (lagging.length > 0) {
      this.stats.isrShrinkProposals++;
      this.propose(
        this.isrValue.filter((id) => !lagging.includes(id)),
        nowMs,
      );
    }
  }

  private maybeExpandIsr(id: BrokerId, nowMs: number): void {
    if (this.outstanding !== undefined || this.isrValue.includes(id)) return;
    const p = this.progress.get(id);
    const leo = p?.logEndOffset;
    if (leo === undefined || leo < this.highWatermarkValue || leo < this.epochStartOffset) return;
    this.stats.isrExpandProposals++;
    this.propose([...this.isrValue, id], nowMs);
  }

  private propose(newIsr: BrokerId[], nowMs: number): void {
    const request: AlterPartitionRequest = {
      brokerId: this.brokerId,
      leaderEpoch: this.leaderEpochValue,
      partitionEpoch: this.partitionEpochValue,
      newIsr,
    };
    this.outstanding = { request, sentAtMs: nowMs, awaitingState: false };
    this.outputs.push({ type: 'alter-partition', request });
  }

  private maybeAdvanceHighWatermark(): void {
    let hw = this.log.flushedOffset;
    const isr = this.config.unsafe?.hwOverConfirmedIsr === true ? this.isrValue : this.maximalIsr;
    for (const id of isr) {
      if (id === this.brokerId) continue;
      const leo = this.progress.get(id)?.logEndOffset;
      if (leo === undefined) return;
      hw = Math.min(hw, leo);
    }
    if (hw > this.highWatermarkValue) this.highWatermarkValue = hw;
  }

  private completeProduces(): void {
    if (this.pendingProduces.length === 0) return;
    const hw = this.highWatermarkValue;
    const enough = this.maximalIsr.length >= this.config.minInsyncReplicas;
    const keep: PendingProduce[] = [];
    for (const p of this.pendingProduces) {
      if (p.lastOffset < hw) {
        this.outputs.push({
          type: 'produce-completed',
          produceId: p.produceId,
          errorCode: enough ? ErrorCode.NONE : ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
          baseOffset: p.baseOffset,
          lastOffset: p.lastOffset,
        });
      } else {
        keep.push(p);
      }
    }
    this.pendingProduces = keep;
  }

  // ---- a failed write ----------------------------------------------------------------------------

  /**
   * The log's end moved back without a truncation decided here: a write failed (a full disk) and
   * the log undid it, with every append queued behind it. The driver calls this once the log is
   * consistent again. Produces waiting on offsets that are gone fail with `errorCode`; the epoch
   * cache and the HW are cut to the log; a leader keeps its epoch (restarted at the log end if it
   * had started beyond it); a follower forgets its request in flight and backs off before it
   * fetches again from its (durable) log end — so it retries the write, never skips it.
   */
  logRewound(nowMs: number, errorCode: ErrorCode = ErrorCode.KAFKA_STORAGE_ERROR): void {
    const leo = this.log.logEndOffset;
    const keep: PendingProduce[] = [];
    for (const p of this.pendingProduces) {
      if (p.lastOffset < leo) {
        keep.push(p);
        continue;
      }
      this.outputs.push({
        type: 'produce-completed',
        produceId: p.produceId,
        errorCode,
        baseOffset: p.baseOffset,
        lastOffset: p.lastOffset,
      });
    }
    this.pendingProduces = keep;
    if (this.roleValue === 'leader') {
      this.epochCache.truncateFromEnd(leo + 1);
      if (this.epochCache.latestEpoch !== this.leaderEpochValue)
        this.epochCache.assign(this.leaderEpochValue, leo);
      this.epochStartOffset = Math.min(this.epochStartOffset, leo);
    } else {
      this.epochCache.truncateFromEnd(leo);
      this.inflight = undefined;
      this.backoffUntilMs = nowMs + this.config.followerBackoffMs;
    }
    this.highWatermarkValue = Math.min(this.highWatermarkValue, leo);
  }

  // ---- follower ----------------------------------------------------------------------------------

  /** The follower's next request to its leader, if one is due. */
  pollRequest(nowMs: number): FollowerRequest | undefined {
    if (this.roleValue !== 'follower' || this.leaderIdValue === NO_LEADER) return undefined;
    if (
      this.inflight !== undefined &&
      nowMs - this.inflight.sentAtMs < this.config.followerRequestTimeoutMs
    ) {
      return undefined;
    }
    if (nowMs < this.backoffUntilMs) return undefined;
    // Report only what is durable: the next fetchOffset is a promise the leader counts on.
    if (this.log.flushedOffset < this.log.logEndOffset && this.config.unsafe?.reportUnflushed !== true)
      return undefined;
    const correlationId = ++this.correlationSeq;
    if (this.followerPhase === 'truncating' && this.epochCache.latestEpoch === UNDEFINED_EPOCH) {
      this.followerPhase = 'fetching';
    }
    if (this.followerPhase === 'truncating' && this.config.unsafe?.truncateToHighWatermark === true) {
      this.truncate(this.highWatermarkValue);
      this.followerPhase = 'fetching';
    }
    let request: FollowerRequest;
    if (this.followerPhase === 'truncating') {
      request = {
        kind: 'offset-for-leader-epoch',
        correlationId,
        replicaId: this.brokerId,
        currentLeaderEpoch: this.leaderEpochValue,
        leaderEpoch: this.epochCache.latestEpoch,
      };
    } else {
      request = {
        kind: 'fetch',
        correlationId,
        replicaId: this.brokerId,
        currentLeaderEpoch: this.leaderEpochValue,
        fetchOffset: this.log.logEndOffset,
        lastFetchedEpoch:
          this.config.unsafe?.truncateToHighWatermark === true
            ? UNDEFINED_EPOCH
            : this.epochCache.latestEpoch,
        logStartOffset: this.log.logStartOffset,
        maxBytes: this.config.replicaFetchMaxBytes,
      };
    }
    this.inflight = { request, sentAtMs: nowMs };
    return request;
  }

  handleResponse(resp: LeaderResponse, nowMs: number): void {
    const inflight = this.inflight;
    if (this.roleValue !== 'follower' || inflight === undefined) return;
    if (resp.correlationId !== inflight.request.correlationId) return;
    this.inflight = undefined;
    if (resp.errorCode !== ErrorCode.NONE) {
      if (resp.errorCode === ErrorCode.OFFSET_OUT_OF_RANGE) this.followerPhase = 'truncating';
      this.backoffUntilMs = nowMs + this.config.followerBackoffMs;
      return;
    }
    if (resp.kind === 'offset-for-leader-epoch-response') {
      const d = this.truncationFor(resp.leaderEpoch, resp.endOffset);
      this.truncate(d.offset);
      if (d.complete) this.followerPhase = 'fetching';
      return;
    }
    if (resp.divergingEpoch !== undefined) {
      // The next fetch names the new latest epoch and is checked again, so an intermediate
      // (KIP-279) truncation converges over successive fetches.
      this.truncate(this.truncationFor(resp.divergingEpoch.epoch, resp.divergingEpoch.endOffset).offset);
      return;
    }
    if (resp.records.length > 0) {
      const leo = this.log.logEndOffset;
      const first = batchBaseOffset(resp.records, 0);
      if (first !== leo) {
        // Not a continuation of our log (cannot happen with a correct leader): find the point again.
        this.followerPhase = 'truncating';
        return;
      }
      const spans = splitBatches(resp.records);
      let offset = leo;
      for (const s of spans) {
        if (s.epoch > this.leaderEpochValue || s.epoch < this.epochCache.latestEpoch) {
          throw new ReplicaStateError(
            `broker ${this.brokerId}: fetched batch at ${offset} has epoch ${s.epoch}, latest ${this.epochCache.latestEpoch}, leader epoch ${this.leaderEpochValue}`,
          );
        }
        if (s.epoch >= 0) this.epochCache.assign(s.epoch, offset);
        offset += s.lastOffsetDelta + 1;
      }
      this.log.append(resp.records);
    }
    this.highWatermarkValue = Math.min(resp.highWatermark, this.log.logEndOffset);
  }

  /**
   * Where to truncate given the leader's (epoch, endOffset) answer, as Kafka's
   * AbstractFetcherThread.getOffsetTruncationState:
   * - leader has no epoch information: fall back to the HW (never below it; not expected here,
   *   since every leader caches its own epoch);
   * - we also have the leader's epoch: truncate to min(leader's end, our end of that epoch);
   * - we do not (the leader answered with an older epoch, KIP-279): truncate to the end of our
   *   largest epoch below it and ask again;
   * - we have no epoch at or below it: truncate to the leader's end offset.
   */
  truncationFor(leaderEpoch: number, leaderEndOffset: number): TruncationDecision {
    const leo = this.log.logEndOffset;
    if (leaderEndOffset === UNDEFINED_EPOCH_OFFSET || leaderEpoch === UNDEFINED_EPOCH) {
      this.stats.hwFallbackTruncations++;
      return { offset: Math.min(this.highWatermarkValue, leo), complete: true };
    }
    const ours = this.epochCache.endOffsetFor(leaderEpoch, leo);
    if (ours.epoch === UNDEFINED_EPOCH) return { offset: Math.min(leaderEndOffset, leo), complete: true };
    if (ours.epoch !== leaderEpoch) return { offset: Math.min(ours.endOffset, leo), complete: false };
    return { offset: Math.min(ours.endOffset, leaderEndOffset, leo), complete: true };
  }

  private truncate(offset: number): void {
    const leo = this.log.logEndOffset;
    if (offset < leo) {
      this.log.truncateTo(offset);
      this.stats.truncations++;
      this.stats.truncatedOffsets += leo - this.log.logEndOffset;
    }
    // Also drops epochs that start at the end and hold no batch (e.g. an epoch we led and never wrote in).
    this.epochCache.truncateFromEnd(this.log.logEndOffset);
    this.highWatermarkValue = Math.min(this.highWatermarkValue, this.log.logEndOffset);
  }
}

const EMPTY: Buffer = Buffer.alloc(0);
