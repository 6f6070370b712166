/**
 * The group coordinator for the classic group protocol (JoinGroup / SyncGroup / Heartbeat /
 * LeaveGroup) and committed offsets, as Kafka's broker answers them.
 *
 * It is a state machine: time comes in through Clock and Scheduler, durability through GroupLog
 * (`__consumer_offsets`). Everything that changes state runs synchronously (no await between a
 * check and the change it guards); writes to the log are awaited only where Kafka waits for
 * them (the leader's SyncGroup, offset commits, group deletion, static member replacement), and
 * the state is re-checked when they complete. JoinGroup and SyncGroup requests that must wait
 * for other members are held as callbacks on the member and answered by later transitions.
 *
 * Group ids map to partitions of `__consumer_offsets` exactly as Kafka does
 * (`Utils.abs(groupId.hashCode()) % partitions`), so in a cluster the coordinator of a group is
 * the leader of its partition.
 *
 * Ownership. With `ownership: 'all'` (a single broker) load() replays every partition and the
 * coordinator serves every group. With `ownership: 'assigned'` (a cluster) it serves only the
 * partitions it was told to: becomeCoordinator(p) replays p (its groups answer
 * COORDINATOR_LOAD_IN_PROGRESS meanwhile) and then serves it; resignCoordinator(p) unloads p, as
 * Kafka's GroupMetadataManager.removeGroupsForPartition does (groups become Dead, waiting
 * JoinGroup/SyncGroup requests get NOT_COORDINATOR, timers stop). Groups of a partition that is
 * not owned answer NOT_COORDINATOR. Optional partition leader epochs (as Kafka's onElection /
 * onResignation) let a broker that missed a resign reload, and make a stale resign harmless.
 * Invariants: groups in memory belong to active partitions only; a load or a reload applies its
 * replay only if the partition's ownership entry is still the one it started under (a resign, or
 * a resign and a new becomeCoordinator, discards it).
 */

import { randomUUID } from 'node:crypto';
import { EMPTY_BUFFER } from '../protocol/codec-support.js';
import { ErrorCode, KafkaError } from '../protocol/errors.js';
import type { GroupMetadataValue } from '../protocol/generated/group-metadata-value.js';
import {
  CONSUMER_PROTOCOL_TYPE,
  ClassicGroup,
  ClassicMember,
  type GroupState,
  type JoinResult,
  type MemberProtocol,
  type SyncResult,
} from './classic-group.js';
import {
  type ConsumerGroupConfig,
  ConsumerGroupCoordinator,
  type ConsumerGroupHeartbeatParams,
  type ConsumerGroupHeartbeatResult,
  type DescribedConsumerGroup,
  type TopicView,
  groupStoreError,
} from './consumer-group-coordinator.js';
import type { ConsumerGroupRecord } from './consumer-group-records.js';
import type { ConsumerGroup } from './consumer-group.js';
import type { GroupLog } from './group-log.js';
import { type CommittedOffset, OffsetStore } from './offsets.js';
import {
  type GroupLogRecord,
  type OffsetCommitRecordValue,
  decodeGroupRecord,
  groupMetadataRecord,
  offsetCommitRecord,
} from './records.js';
import type { Clock, Scheduler, TimerHandle } from './time.js';

export type { GroupState, JoinResult, SyncResult, MemberProtocol };

export interface GroupCoordinatorConfig {
  /** group.initial.rebalance.delay.ms */
  initialRebalanceDelayMs: number;
  /** group.min.session.timeout.ms */
  minSessionTimeoutMs: number;
  /** group.max.session.timeout.ms */
  maxSessionTimeoutMs: number;
  /** group.max.size */
  maxSize: number;
  /** offsets.retention.ms */
  offsetsRetentionMs: number;
  /** offsets.retention.check.interval.ms */
  offsetsRetentionCheckIntervalMs: number;
  /** offset.metadata.max.bytes */
  offsetMetadataMaxBytes: number;
  /** How long a member that joined but never completed a join may wait (Kafka: 5 minutes). */
  newMemberJoinTimeoutMs: number;
}

export const DEFAULT_GROUP_COORDINATOR_CONFIG: GroupCoordinatorConfig = {
  initialRebalanceDelayMs: 3000,
  minSessionTimeoutMs: 6000,
  maxSessionTimeoutMs: 1800000,
  maxSize: 2147483647,
  offsetsRetentionMs: 7 * 24 * 3600 * 1000,
  offsetsRetentionCheckIntervalMs: 600000,
  offsetMetadataMaxBytes: 4096,
  newMemberJoinTimeoutMs: 300000,
};

export interface CoordinatorLogger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

const silentLogger: CoordinatorLogger = { info() {}, warn() {}, error() {} };

/**
 * Which partitions of `__consumer_offsets` the coordinator serves: every one ('all', a single
 * broker), or those it is made coordinator of with becomeCoordinator ('assigned', a cluster, where
 * the coordinator of a partition is its leader).
 */
export type CoordinatorOwnership = 'all' | 'assigned';

/**
 * One partition the coordinator loads or serves ('assigned' mode). Each becomeCoordinator that
 * loads creates a new entry, and work that started under one entry (a load, a reload after a
 * failed write) applies its result only while that same entry is still in the map.
 */
interface OwnedPartition {
  state: 'loading' | 'active';
  /** Settles when the load has been applied or discarded. */
  loaded: Promise<void>;
  /** The partition leader epoch this ownership was granted in, when the caller gave one. */
  leaderEpoch: number | undefined;
}

export interface GroupCoordinatorOptions {
  log: GroupLog;
  clock: Clock;
  scheduler: Scheduler;
  config?: Partial<GroupCoordinatorConfig>;
  logger?: CoordinatorLogger;
  /** Member id generator (Kafka: prefix + "-" + UUID); injectable for deterministic tests. */
  newMemberId?: (prefix: string) => string;
  /** KIP-848 consumer groups: group.consumer.* settings. */
  consumer?: Partial<ConsumerGroupConfig>;
  /** Member id generator for consumer groups whose members do not send one (v0). */
  newConsumerMemberId?: () => string;
  /** 'all' (default: every partition, load() replays them all) or 'assigned' (see becomeCoordinator). */
  ownership?: CoordinatorOwnership;
}

export interface JoinGroupParams {
  groupId: string;
  memberId: string;
  groupInstanceId: string | null;
  protocolType: string;
  protocols: MemberProtocol[];
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  clientId: string;
  clientHost: string;
  /** JoinGroup v4+ (KIP-394): a first join without member id gets MEMBER_ID_REQUIRED. */
  requireKnownMemberId: boolean;
  /** JoinGroup v9+ (KIP-814): a rejoining static leader is told to skip the assignment. */
  supportsSkipAssignment: boolean;
  reason?: string | null;
}

export interface SyncGroupParams {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
  protocolType: string | null;
  protocolName: string | null;
  assignments: { memberId: string; assignment: Buffer }[];
}

export interface HeartbeatParams {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
}

export interface LeaveResult {
  errorCode: number;
  members: { memberId: string; groupInstanceId: string | null; errorCode: number }[];
}

export interface CommitOffsetsParams {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
  /** OffsetCommit request version (GROUP_ID_NOT_FOUND vs ILLEGAL_GENERATION for unknown groups). */
  apiVersion: number;
  /** OffsetCommit v2-4 retention time; -1 = broker default. */
  retentionTimeMs: number;
  offsets: {
    topic: string;
    partition: number;
    offset: number;
    leaderEpoch: number;
    metadata: string | null;
    /** -1 = now (only OffsetCommit v1 sends one). */
    commitTimestamp: number;
  }[];
}

export interface PartitionResult {
  topic: string;
  partition: number;
  errorCode: number;
}

export interface FetchedOffsets {
  errorCode: number;
  topics: {
    name: string;
    partitions: {
      partitionIndex: number;
      committedOffset: number;
      committedLeaderEpoch: number;
      metadata: string;
      errorCode: number;
    }[];
  }[];
}

export interface DescribedGroup {
  errorCode: number;
  groupId: string;
  groupState: string;
  protocolType: string;
  protocolData: string;
  members: {
    memberId: string;
    groupInstanceId: string | null;
    clientId: string;
    clientHost: string;
    memberMetadata: Buffer;
    memberAssignment: Buffer;
  }[];
}

export interface ListedGroup {
  groupId: string;
  protocolType: string;
  groupState: string;
  groupType: string;
}

/** Java's String.hashCode. */
export function javaStringHashCode(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(31, h) + s.charCodeAt(i)) | 0;
  return h;
}

/** Kafka's Utils.abs: Math.abs, except Integer.MIN_VALUE maps to 0. */
export function kafkaAbs(n: number): number {
  return n === -2147483648 ? 0 : Math.abs(n);
}

/** The `__consumer_offsets` partition of a group, as Kafka computes it. */
export function partitionForGroup(groupId: string, partitions: number): number {
  return kafkaAbs(javaStringHashCode(groupId)) % partitions;
}

function joinError(memberId: string, errorCode: number): JoinResult {
  return {
    errorCode,
    generationId: -1,
    protocolType: null,
    protocolName: null,
    leader: '',
    skipAssignment: false,
    memberId,
    members: [],
  };
}

function syncError(errorCode: number): SyncResult {
  return { errorCode, protocolType: null, protocolName: null, assignment: EMPTY_BUFFER };
}

/** Kafka's mapping of a failed offset-commit write. */
function commitError(err: unknown): number {
  if (err instanceof KafkaError) {
    switch (err.errorCode) {
      case ErrorCode.MESSAGE_TOO_LARGE:
      case ErrorCode.RECORD_LIST_TOO_LARGE:
      case ErrorCode.INVALID_FETCH_SIZE:
        return ErrorCode.INVALID_COMMIT_OFFSET_SIZE;
      default:
        return groupStoreError(err);
    }
  }
  return ErrorCode.COORDINATOR_NOT_AVAILABLE;
}

export class GroupCoordinator {
  readonly config: GroupCoordinatorConfig;
  private readonly groups = new Map<string, ClassicGroup>();
  private readonly log: GroupLog;
  private readonly clock: Clock;
  private readonly scheduler: Scheduler;
  private readonly logger: CoordinatorLogger;
  private readonly newMemberId: (prefix: string) => string;
  private numPartitions: number;
  private loaded = false;
  private active = true;
  private cleanupTimer: TimerHandle | null = null;
  readonly ownership: CoordinatorOwnership;
  /** 'assigned' mode: the partitions being loaded or served (at most numPartitions entries). */
  private readonly partitions = new Map<number, OwnedPartition>();
  /** KIP-848 consumer groups (a group id is either classic, in `groups`, or consumer, here). */
  readonly consumer: ConsumerGroupCoordinator;

  constructor(opts: GroupCoordinatorOptions) {
    this.log = opts.log;
    this.clock = opts.clock;
    this.scheduler = opts.scheduler;
    this.logger = opts.logger ?? silentLogger;
    this.config = { ...DEFAULT_GROUP_COORDINATOR_CONFIG, ...opts.config };
    this.newMemberId = opts.newMemberId ?? ((prefix) => `${prefix}-${randomUUID()}`);
    this.numPartitions = opts.log.partitionCount();
    this.ownership = opts.ownership ?? 'all';
    this.consumer = new ConsumerGroupCoordinator(
      {
        log: this.log,
        clock: this.clock,
        scheduler: this.scheduler,
        logger: this.logger,
        partitionFor: (groupId) => this.partitionFor(groupId),
        statusError: (groupId) => this.groupStatusError(groupId),
        classicGroupStatus: (groupId) => this.classicGroupStatus(groupId),
        takeEmptyClassicGroup: (groupId) => this.takeEmptyClassicGroup(groupId),
        reloadGroup: (groupId) => this.reloadConsumerGroup(groupId),
      },
      { maxSize: this.config.maxSize, ...opts.consumer },
      opts.newConsumerMemberId,
    );
  }

  private now(): number {
    return this.clock.nowMs();
  }

  partitionFor(groupId: string): number {
    return partitionForGroup(groupId, this.numPartitions);
  }

  get isLoaded(): boolean {
    return this.loaded;
  }

  /** The group's current state (for tests and tools); undefined if unknown. */
  group(groupId: string): ClassicGroup | undefined {
    return this.groups.get(groupId);
  }

  groupIds(): string[] {
    return [...this.groups.keys()];
  }

  // ---- loading --------------------------------------------------------------------------------

  /**
   * 'all': replays every partition of the log to rebuild groups and offsets. 'assigned': loads
   * nothing (becomeCoordinator loads partitions) and marks the coordinator ready.
   */
  async load(): Promise<void> {
    if (this.ownership === 'assigned') {
      if (this.partitions.size === 0) this.numPartitions = this.log.partitionCount();
      this.loaded = true;
      this.scheduleCleanup();
      return;
    }
    this.loaded = false;
    this.numPartitions = this.log.partitionCount();
    const current = () => this.active;
    for (let p = 0; p < this.numPartitions; p++) await this.loadPartition(p, current);
    this.loaded = true;
    this.scheduleCleanup();
  }

  // ---- partition ownership ('assigned' mode) --------------------------------------------------

  private assertAssigned(what: string): void {
    if (this.ownership !== 'assigned')
      throw new Error(`${what} needs ownership 'assigned' (this coordinator serves every partition)`);
  }

  /**
   * Makes this coordinator the coordinator of a `__consumer_offsets` partition (its leader):
   * replays the partition, then serves its groups. While it loads, their requests answer
   * COORDINATOR_LOAD_IN_PROGRESS. Calling it again while the partition loads or is served returns
   * the same load. Rejects if the replay fails (the partition is then not owned; call again).
   *
   * `leaderEpoch` (optional, as Kafka's onElection): when the partition is already owned from an
   * older epoch, leadership went away and came back without this coordinator seeing the resign
   * in between, so what it holds may be stale: it unloads and loads again. An epoch not newer
   * than the owned one changes nothing.
   */
  becomeCoordinator(partition: number, leaderEpoch?: number): Promise<void> {
    this.assertAssigned('becomeCoordinator');
    if (!this.active) return Promise.resolve();
    const existing = this.partitions.get(partition);
    if (existing) {
      if (
        leaderEpoch === undefined ||
        existing.leaderEpoch === undefined ||
        leaderEpoch <= existing.leaderEpoch
      )
        return existing.loaded;
      this.logger.info(
        `__consumer_offsets-${partition}: leader epoch ${leaderEpoch} after ${existing.leaderEpoch} without a resign; reloading`,
      );
      this.partitions.delete(partition);
      this.unloadPartition(partition);
    }
    // The partition count comes from the log; it is fixed while any partition is owned.
    if (this.partitions.size === 0) this.numPartitions = this.log.partitionCount();
    if (!Number.isInteger(partition) || partition < 0 || partition >= this.numPartitions)
      return Promise.reject(
        new RangeError(`__consumer_offsets has no partition ${partition} (${this.numPartitions} partitions)`),
      );
    const entry: OwnedPartition = { state: 'loading', loaded: Promise.resolve(), leaderEpoch };
    this.partitions.set(partition, entry);
    entry.loaded = this.loadOwnedPartition(partition, entry);
    return entry.loaded;
  }

  private async loadOwnedPartition(partition: number, entry: OwnedPartition): Promise<void> {
    const current = () => this.active && this.partitions.get(partition) === entry;
    this.logger.info(`__consumer_offsets-${partition}: loading (becoming its coordinator)`);
    try {
      await this.loadPartition(partition, current);
    } catch (err) {
      if (this.partitions.get(partition) === entry) this.partitions.delete(partition);
      this.logger.error(`__consumer_offsets-${partition}: load failed: ${(err as Error).message}`);
      throw err;
    }
    if (!current()) {
      this.logger.info(`__consumer_offsets-${partition}: load discarded (resigned while loading)`);
      return;
    }
    entry.state = 'active';
    this.logger.info(`__consumer_offsets-${partition}: loaded; now its coordinator`);
  }

  /**
   * Stops serving a partition (its leadership moved): its classic and consumer groups and their
   * offsets leave memory, their timers stop, and JoinGroup/SyncGroup requests waiting in them get
   * NOT_COORDINATOR. A load in progress is discarded. A later becomeCoordinator reloads it.
   *
   * `leaderEpoch` (optional, as Kafka's onResignation): the epoch of the new leadership; a resign
   * whose epoch is not newer than the one this coordinator was elected in is stale and ignored.
   */
  resignCoordinator(partition: number, leaderEpoch?: number): void {
    this.assertAssigned('resignCoordinator');
    const entry = this.partitions.get(partition);
    if (!entry) return;
    if (leaderEpoch !== undefined && entry.leaderEpoch !== undefined && leaderEpoch <= entry.leaderEpoch) {
      this.logger.info(
        `__consumer_offsets-${partition}: ignored a resign for leader epoch ${leaderEpoch} (coordinator since epoch ${entry.leaderEpoch})`,
      );
      return;
    }
    this.partitions.delete(partition);
    this.unloadPartition(partition);
    this.logger.info(
      `__consumer_offsets-${partition}: resigned as its coordinator${entry.state === 'loading' ? ' (load discarded)' : ''}`,
    );
  }

  /** Whether this coordinator serves the partition's groups now (loaded, not loading). */
  ownsPartition(partition: number): boolean {
    if (this.ownership === 'all')
      return this.loaded && this.active && partition >= 0 && partition < this.numPartitions;
    return this.active && this.partitions.get(partition)?.state === 'active';
  }

  /** The partitions this coordinator serves, ascending. */
  ownedPartitions(): number[] {
    if (this.ownership === 'all')
      return this.loaded && this.active ? Array.from({ length: this.numPartitions }, (_, p) => p) : [];
    if (!this.active) return [];
    return [...this.partitions]
      .filter(([, e]) => e.state === 'active')
      .map(([p]) => p)
      .sort((a, b) => a - b);
  }

  /** Kafka's onGroupUnloaded for every group of the partition. */
  private unloadPartition(partition: number): void {
    const now = this.now();
    for (const g of [...this.groups.values()]) {
      if (this.partitionFor(g.groupId) !== partition) continue;
      this.cancelGroupTimers(g);
      g.transitionTo('Dead', now);
      for (const m of g.members.values()) {
        this.clearSession(m);
        this.respondJoin(m, joinError(m.memberId, ErrorCode.NOT_COORDINATOR));
        this.respondSync(m, syncError(ErrorCode.NOT_COORDINATOR));
      }
      this.groups.delete(g.groupId);
    }
    this.consumer.dropGroups((groupId) => this.partitionFor(groupId) === partition);
  }

  /**
   * Replays one partition, applying it only if `current()` still holds when the replay ends (the
   * partition was not resigned meanwhile). With `onlyGroup`, rebuilds just that consumer group
   * (after a failed write left memory ahead of the log).
   */
  private async loadPartition(partition: number, current: () => boolean, onlyGroup?: string): Promise<void> {
    const metas = new Map<string, GroupMetadataValue | null>();
    const consumerRecords = new Map<string, ConsumerGroupRecord[]>();
    const offsets = new Map<
      string,
      Map<string, { topic: string; partition: number; value: OffsetCommitRecordValue | null }>
    >();
    let skipped = 0;
    await this.log.replay(partition, (r) => {
      let d: ReturnType<typeof decodeGroupRecord>;
      try {
        d = decodeGroupRecord(r.key, r.value);
      } catch (err) {
        skipped++;
        return;
      }
      if (onlyGroup !== undefined && d.type !== 'unknown' && d.group !== onlyGroup) return;
      if (d.type === 'group') {
        metas.set(d.group, d.value);
      } else if (d.type === 'consumer') {
        let list = consumerRecords.get(d.group);
        if (!list) {
          list = [];
          consumerRecords.set(d.group, list);
        }
        list.push(d.record);
      } else if (d.type === 'offset') {
        let g = offsets.get(d.group);
        if (!g) {
          g = new Map();
          offsets.set(d.group, g);
        }
        g.set(`${d.partition}:${d.topic}`, { topic: d.topic, partition: d.partition, value: d.value });
      }
    });
    if (skipped > 0)
      this.logger.warn(`__consumer_offsets-${partition}: skipped ${skipped} undecodable record(s)`);
    // Everything below is synchronous: the check and the changes it guards are one step.
    if (!current()) return;
    const now = this.now();
    if (onlyGroup !== undefined) {
      this.consumer.dropGroups((id) => id === onlyGroup);
      // Offsets are rebuilt from the log too; they never change before their write succeeds.
    }
    const consumerGroups = this.consumer.applyReplay(consumerRecords);
    if (onlyGroup !== undefined) {
      const cg = this.consumer.group(onlyGroup);
      for (const e of offsets.get(onlyGroup)?.values() ?? [])
        if (cg && e.value !== null) cg.offsets.set(e.topic, e.partition, e.value);
      return;
    }
    for (const [groupId, v] of metas) {
      if (v === null || consumerGroups.has(groupId)) continue;
      this.groups.set(groupId, this.groupFromRecord(groupId, v, now));
    }
    for (const [groupId, entries] of offsets) {
      const cg = consumerGroups.has(groupId) ? this.consumer.group(groupId) : undefined;
      if (cg) {
        for (const e of entries.values()) if (e.value !== null) cg.offsets.set(e.topic, e.partition, e.value);
        continue;
      }
      let g = this.groups.get(groupId);
      for (const e of entries.values()) {
        if (e.value === null) continue;
        if (!g) {
          g = new ClassicGroup(groupId, now);
          this.groups.set(groupId, g);
        }
        g.offsets.set(e.topic, e.partition, e.value);
      }
    }
  }

  private groupFromRecord(groupId: string, v: GroupMetadataValue, now: number): ClassicGroup {
    const g = new ClassicGroup(groupId, now);
    g.generationId = v.generation;
    g.protocolType = v.protocolType === '' ? null : v.protocolType;
    g.protocolName = v.protocol === null || v.protocol === '' ? null : v.protocol;
    for (const mv of v.members) {
      const m = new ClassicMember(
        mv.memberId,
        mv.groupInstanceId,
        mv.clientId,
        mv.clientHost,
        mv.rebalanceTimeout >= 0 ? mv.rebalanceTimeout : mv.sessionTimeout,
        mv.sessionTimeout,
        g.protocolType ?? '',
        g.protocolName === null ? [] : [{ name: g.protocolName, metadata: mv.subscription }],
      );
      m.assignment = mv.assignment;
      g.add(m);
    }
    g.leaderId =
      v.leader !== null && g.members.has(v.leader) ? v.leader : (g.members.keys().next().value ?? null);
    g.state = g.members.size === 0 ? 'Empty' : 'Stable';
    g.currentStateTimestamp = v.currentStateTimestamp >= 0 ? v.currentStateTimestamp : now;
    g.subscribedTopics = g.computeSubscribedTopics();
    for (const m of g.members.values()) this.scheduleSession(g, m);
    return g;
  }

  /**
   * Rebuilds one consumer group from its partition of the log, unless the partition stops being
   * served (or starts being served anew) before the replay ends.
   */
  private async reloadConsumerGroup(groupId: string): Promise<void> {
    const partition = this.partitionFor(groupId);
    const current = this.ownershipGuard(partition);
    if (!current()) return;
    await this.loadPartition(partition, current, groupId);
  }

  /** True while this coordinator keeps serving the partition under its present ownership. */
  private ownershipGuard(partition: number): () => boolean {
    if (this.ownership === 'all') return () => this.active;
    const entry = this.partitions.get(partition);
    return () => this.active && entry?.state === 'active' && this.partitions.get(partition) === entry;
  }

  // ---- KIP-848 consumer groups ----------------------------------------------------------------

  private classicGroupStatus(groupId: string): 'none' | 'empty' | 'active' {
    const g = this.groups.get(groupId);
    if (!g || g.is('Dead')) return 'none';
    return g.is('Empty') && g.size === 0 && g.pendingMembers.size === 0 && g.joinTimer === null
      ? 'empty'
      : 'active';
  }

  /** An empty classic group becomes a consumer group (Kafka 4 does the same): its offsets move over. */
  private takeEmptyClassicGroup(groupId: string): { offsets: OffsetStore; records: GroupLogRecord[] } {
    const g = this.groups.get(groupId);
    const offsets = new OffsetStore();
    if (!g) return { offsets, records: [] };
    for (const e of g.offsets.entries()) offsets.set(e.topic, e.partition, e.value);
    this.cancelGroupTimers(g);
    g.transitionTo('Dead', this.now());
    this.groups.delete(groupId);
    return { offsets, records: [groupMetadataRecord(groupId, null)] };
  }

  /** ConsumerGroupHeartbeat (KIP-848). */
  consumerGroupHeartbeat(
    p: ConsumerGroupHeartbeatParams,
    topics: TopicView,
  ): Promise<ConsumerGroupHeartbeatResult> {
    return this.consumer.heartbeat(p, topics);
  }

  /** ConsumerGroupDescribe (KIP-848). */
  describeConsumerGroup(groupId: string, topics: TopicView): DescribedConsumerGroup {
    return this.consumer.describe(groupId, topics);
  }

  /** Stops timers and answers waiting requests (NOT_COORDINATOR); later calls answer COORDINATOR_NOT_AVAILABLE. */
  shutdown(): void {
    this.active = false;
    // Loads in progress see their entry gone and discard their replay.
    this.partitions.clear();
    this.consumer.shutdown();
    if (this.cleanupTimer !== null) this.scheduler.clearTimeout(this.cleanupTimer);
    this.cleanupTimer = null;
    for (const g of this.groups.values()) {
      this.cancelGroupTimers(g);
      for (const m of g.members.values()) {
        this.clearSession(m);
        this.respondJoin(m, joinError(m.memberId, ErrorCode.NOT_COORDINATOR));
        this.respondSync(m, syncError(ErrorCode.NOT_COORDINATOR));
      }
    }
  }

  private cancelGroupTimers(g: ClassicGroup): void {
    if (g.joinTimer !== null) this.scheduler.clearTimeout(g.joinTimer);
    g.joinTimer = null;
    if (g.pendingSyncTimer !== null) this.scheduler.clearTimeout(g.pendingSyncTimer);
    g.pendingSyncTimer = null;
    for (const t of g.pendingMembers.values()) this.scheduler.clearTimeout(t);
    g.pendingMembers.clear();
  }

  // ---- common checks --------------------------------------------------------------------------

  /**
   * Kafka's validateGroupStatus: INVALID_GROUP_ID, COORDINATOR_NOT_AVAILABLE,
   * COORDINATOR_LOAD_IN_PROGRESS (not ready, or the group's partition is loading), NOT_COORDINATOR
   * (the group's partition is not owned). Every group API checks this first.
   */
  private groupStatusError(groupId: string): number {
    if (groupId === '') return ErrorCode.INVALID_GROUP_ID;
    if (!this.active) return ErrorCode.COORDINATOR_NOT_AVAILABLE;
    if (!this.loaded) return ErrorCode.COORDINATOR_LOAD_IN_PROGRESS;
    if (this.ownership === 'all') return ErrorCode.NONE;
    const entry = this.partitions.get(this.partitionFor(groupId));
    if (!entry) return ErrorCode.NOT_COORDINATOR;
    if (entry.state === 'loading') return ErrorCode.COORDINATOR_LOAD_IN_PROGRESS;
    return ErrorCode.NONE;
  }

  /** FENCED_INSTANCE_ID when a static member's id is not the registered one, UNKNOWN_MEMBER_ID when not a member. */
  private memberError(g: ClassicGroup, memberId: string, groupInstanceId: string | null): number {
    if (groupInstanceId !== null) {
      const existing = g.staticMembers.get(groupInstanceId);
      if (existing === undefined) return ErrorCode.UNKNOWN_MEMBER_ID;
      if (existing !== memberId) return ErrorCode.FENCED_INSTANCE_ID;
      return ErrorCode.NONE;
    }
    return g.has(memberId) ? ErrorCode.NONE : ErrorCode.UNKNOWN_MEMBER_ID;
  }

  // ---- session timers -------------------------------------------------------------------------

  private clearSession(m: ClassicMember): void {
    if (m.sessionTimer !== null) this.scheduler.clearTimeout(m.sessionTimer);
    m.sessionTimer = null;
  }

  /** Kafka's completeAndScheduleNextHeartbeatExpiration. */
  private scheduleSession(g: ClassicGroup, m: ClassicMember, timeoutMs = m.sessionTimeoutMs): void {
    this.clearSession(m);
    m.sessionTimer = this.scheduler.setTimeout(() => this.onSessionExpired(g, m), timeoutMs);
  }

  private onSessionExpired(g: ClassicGroup, m: ClassicMember): void {
    m.sessionTimer = null;
    if (g.members.get(m.memberId) !== m || g.is('Dead')) return;
    // Members waiting in a rebalance are kept alive by it; a new member is not (KIP-394/345).
    if (!m.isNew && (m.isAwaitingJoin || m.isAwaitingSync)) return;
    this.logger.info(`group ${g.groupId}: member ${m.memberId} session expired (${m.sessionTimeoutMs} ms)`);
    this.removeMemberAndUpdateGroup(g, m);
  }

  // ---- responding to waiting requests ---------------------------------------------------------

  private respondJoin(m: ClassicMember, r: JoinResult): boolean {
    const cb = m.joinWaiter;
    if (!cb) return false;
    m.joinWaiter = null;
    m.isNew = false;
    cb(r);
    return true;
  }

  private respondSync(m: ClassicMember, r: SyncResult): boolean {
    const cb = m.syncWaiter;
    if (!cb) return false;
    m.syncWaiter = null;
    cb(r);
    return true;
  }

  private currentMembers(g: ClassicGroup): JoinResult['members'] {
    return [...g.members.values()].map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      metadata: m.metadata(g.protocolName),
    }));
  }

  /** Drops a group created by a join that did not go through, so it is not listed. */
  private maybeDropTransientGroup(g: ClassicGroup): void {
    if (
      g.is('Empty') &&
      g.generationId === 0 &&
      g.size === 0 &&
      g.pendingMembers.size === 0 &&
      g.offsets.size === 0 &&
      g.joinTimer === null
    ) {
      if (this.groups.get(g.groupId) === g) this.groups.delete(g.groupId);
    }
  }

  // ---- JoinGroup ------------------------------------------------------------------------------

  joinGroup(p: JoinGroupParams): Promise<JoinResult> {
    return new Promise((resolve) => this.doJoinGroup(p, resolve));
  }

  private doJoinGroup(p: JoinGroupParams, respond: (r: JoinResult) => void): void {
    const statusError = this.groupStatusError(p.groupId);
    if (statusError !== ErrorCode.NONE) {
      respond(joinError(p.memberId, statusError));
      return;
    }
    if (
      p.sessionTimeoutMs < this.config.minSessionTimeoutMs ||
      p.sessionTimeoutMs > this.config.maxSessionTimeoutMs
    ) {
      respond(joinError(p.memberId, ErrorCode.INVALID_SESSION_TIMEOUT));
      return;
    }
    const isUnknown = p.memberId === '';
    const cg = this.consumer.group(p.groupId);
    if (cg) {
      // Kafka 4 can move members between protocols (group.consumer.migration.policy); Sluice
      // does not: a classic join to a consumer group with members is refused, and an empty
      // consumer group becomes a classic group (its offsets move over).
      if (cg.members.size > 0) {
        respond(joinError(p.memberId, ErrorCode.INCONSISTENT_GROUP_PROTOCOL));
        return;
      }
      const classic = new ClassicGroup(p.groupId, this.now());
      for (const e of cg.offsets.entries()) classic.offsets.set(e.topic, e.partition, e.value);
      const tombstones = this.consumer.deletionRecords(cg);
      this.consumer.removeGroup(cg);
      this.groups.set(p.groupId, classic);
      this.log
        .append(this.partitionFor(p.groupId), tombstones)
        .catch((err: unknown) =>
          this.logger.warn(
            `group ${p.groupId}: could not delete consumer group records: ${(err as Error).message}`,
          ),
        );
    }
    let g = this.groups.get(p.groupId);
    if (!g) {
      if (!isUnknown) {
        respond(joinError(p.memberId, ErrorCode.UNKNOWN_MEMBER_ID));
        return;
      }
      g = new ClassicGroup(p.groupId, this.now());
      this.groups.set(p.groupId, g);
    }
    const group = g;
    if (!this.acceptJoiningMember(group, p.memberId)) {
      const existing = group.members.get(p.memberId);
      if (existing) this.removeMemberAndUpdateGroup(group, existing);
      respond(joinError('', ErrorCode.GROUP_MAX_SIZE_REACHED));
      this.maybeDropTransientGroup(group);
      return;
    }
    if (isUnknown) this.doNewMemberJoin(group, p, respond);
    else this.doCurrentMemberJoin(group, p, respond);
    this.maybeDropTransientGroup(group);
  }

  private acceptJoiningMember(g: ClassicGroup, memberId: string): boolean {
    switch (g.state) {
      case 'Empty':
      case 'Dead':
        return true;
      case 'PreparingRebalance':
        return (g.members.get(memberId)?.isAwaitingJoin ?? false) || g.numAwaitingJoin < this.config.maxSize;
      case 'CompletingRebalance':
      case 'Stable':
        return g.has(memberId) || g.size < this.config.maxSize;
    }
  }

  private doNewMemberJoin(g: ClassicGroup, p: JoinGroupParams, respond: (r: JoinResult) => void): void {
    if (g.is('Dead')) {
      respond(joinError(p.memberId, ErrorCode.COORDINATOR_NOT_AVAILABLE));
      return;
    }
    if (!g.supportsProtocols(p.protocolType, p.protocols)) {
      respond(joinError(p.memberId, ErrorCode.INCONSISTENT_GROUP_PROTOCOL));
      return;
    }
    const newMemberId = this.newMemberId(p.groupInstanceId ?? p.clientId);
    if (p.groupInstanceId !== null) {
      const oldMemberId = g.staticMembers.get(p.groupInstanceId);
      if (oldMemberId !== undefined && g.has(oldMemberId)) {
        this.updateStaticMemberAndRebalance(g, oldMemberId, newMemberId, p, respond);
      } else {
        this.addMemberAndRebalance(g, newMemberId, p, respond);
      }
      return;
    }
    if (p.requireKnownMemberId) {
      // KIP-394: hand out the id; the member must join again with it within the session timeout.
      const timer = this.scheduler.setTimeout(
        () => this.onPendingMemberExpired(g, newMemberId),
        p.sessionTimeoutMs,
      );
      g.pendingMembers.set(newMemberId, timer);
      respond(joinError(newMemberId, ErrorCode.MEMBER_ID_REQUIRED));
      return;
    }
    this.addMemberAndRebalance(g, newMemberId, p, respond);
  }

  private onPendingMemberExpired(g: ClassicGroup, memberId: string): void {
    if (!g.pendingMembers.delete(memberId)) return;
    if (g.is('PreparingRebalance')) this.tryCompleteJoin(g);
    this.maybeDropTransientGroup(g);
  }

  private doCurrentMemberJoin(g: ClassicGroup, p: JoinGroupParams, respond: (r: JoinResult) => void): void {
    if (g.is('Dead')) {
      respond(joinError(p.memberId, ErrorCode.COORDINATOR_NOT_AVAILABLE));
      return;
    }
    if (!g.supportsProtocols(p.protocolType, p.protocols)) {
      respond(joinError(p.memberId, ErrorCode.INCONSISTENT_GROUP_PROTOCOL));
      return;
    }
    const pendingTimer = g.pendingMembers.get(p.memberId);
    if (pendingTimer !== undefined) {
      if (p.groupInstanceId !== null) {
        respond(joinError(p.memberId, ErrorCode.UNKNOWN_MEMBER_ID));
        return;
      }
      this.addMemberAndRebalance(g, p.memberId, p, respond);
      return;
    }
    const memberError = this.memberError(g, p.memberId, p.groupInstanceId);
    if (memberError !== ErrorCode.NONE) {
      respond(joinError(p.memberId, memberError));
      return;
    }
    const m = g.members.get(p.memberId)!;
    switch (g.state) {
      case 'PreparingRebalance':
        this.updateMemberAndRebalance(g, m, p, respond);
        return;
      case 'CompletingRebalance':
        if (m.matches(p.protocols)) {
          // The member did not see the join response (e.g. a retry): answer with the current generation.
          this.scheduleSession(g, m);
          respond({
            errorCode: ErrorCode.NONE,
            generationId: g.generationId,
            protocolType: g.protocolType,
            protocolName: g.protocolName,
            leader: g.leaderId ?? '',
            skipAssignment: false,
            memberId: m.memberId,
            members: g.isLeader(m.memberId) ? this.currentMembers(g) : [],
          });
          return;
        }
        this.updateMemberAndRebalance(g, m, p, respond);
        return;
      case 'Stable':
        if (g.isLeader(m.memberId) || !m.matches(p.protocols)) {
          // A leader's join triggers a rebalance (it may know of metadata changes the others do not).
          this.updateMemberAndRebalance(g, m, p, respond);
        } else {
          this.scheduleSession(g, m);
          respond({
            errorCode: ErrorCode.NONE,
            generationId: g.generationId,
            protocolType: g.protocolType,
            protocolName: g.protocolName,
            leader: g.leaderId ?? '',
            skipAssignment: false,
            memberId: m.memberId,
            members: [],
          });
        }
        return;
      case 'Empty':
      case 'Dead':
        respond(joinError(p.memberId, ErrorCode.UNKNOWN_MEMBER_ID));
        return;
    }
  }

  private setJoinWaiter(m: ClassicMember, respond: (r: JoinResult) => void): void {
    // Kafka replaces the callback silently; the earlier request is answered here instead so it
    // does not hold its connection's response queue forever.
    if (m.joinWaiter) {
      const old = m.joinWaiter;
      m.joinWaiter = null;
      old(joinError(m.memberId, ErrorCode.REBALANCE_IN_PROGRESS));
    }
    m.joinWaiter = respond;
  }

  private addMemberAndRebalance(
    g: ClassicGroup,
    memberId: string,
    p: JoinGroupParams,
    respond: (r: JoinResult) => void,
  ): void {
    const m = new ClassicMember(
      memberId,
      p.groupInstanceId,
      p.clientId,
      p.clientHost,
      p.rebalanceTimeoutMs,
      p.sessionTimeoutMs,
      p.protocolType,
      p.protocols,
    );
    m.isNew = true;
    m.joinWaiter = respond;
    // Group-size trigger for the initial delay (Kafka: new members extend it in generation 0).
    if (g.is('PreparingRebalance') && g.generationId === 0) g.newMemberAdded = true;
    g.add(m);
    const pending = g.pendingMembers.get(memberId);
    if (pending !== undefined) {
      this.scheduler.clearTimeout(pending);
      g.pendingMembers.delete(memberId);
    }
    this.scheduleSession(g, m, this.config.newMemberJoinTimeoutMs);
    this.maybePrepareRebalanceOrCompleteJoin(g, `member ${memberId} joined`);
  }

  private updateMemberAndRebalance(
    g: ClassicGroup,
    m: ClassicMember,
    p: JoinGroupParams,
    respond: (r: JoinResult) => void,
  ): void {
    m.protocols = p.protocols;
    m.rebalanceTimeoutMs = p.rebalanceTimeoutMs;
    m.sessionTimeoutMs = p.sessionTimeoutMs;
    m.clientId = p.clientId;
    m.clientHost = p.clientHost;
    this.setJoinWaiter(m, respond);
    this.scheduleSession(g, m);
    this.maybePrepareRebalanceOrCompleteJoin(g, `member ${m.memberId} rejoined`);
  }

  private updateStaticMemberAndRebalance(
    g: ClassicGroup,
    oldMemberId: string,
    newMemberId: string,
    p: JoinGroupParams,
    respond: (r: JoinResult) => void,
  ): void {
    const currentLeader = g.leaderId;
    const old = g.members.get(oldMemberId)!;
    const oldProtocols = old.protocols;
    const oldRebalanceTimeoutMs = old.rebalanceTimeoutMs;
    const oldSessionTimeoutMs = old.sessionTimeoutMs;
    const m = this.replaceStaticMember(g, old, newMemberId);
    m.protocols = p.protocols;
    m.rebalanceTimeoutMs = p.rebalanceTimeoutMs;
    m.sessionTimeoutMs = p.sessionTimeoutMs;
    m.joinWaiter = respond;
    this.scheduleSession(g, m);
    switch (g.state) {
      case 'Stable': {
        if (g.protocolName === g.selectProtocol()) {
          // KIP-345: a static member that comes back with the same protocols keeps its
          // assignment and the group does not rebalance; the new member id is persisted first.
          this.logger.info(
            `group ${g.groupId}: static member ${p.groupInstanceId} rejoined as ${newMemberId} without a rebalance`,
          );
          const generation = g.generationId;
          this.log.append(this.partitionFor(g.groupId), [this.groupRecord(g, null)]).then(
            () => {
              if (g.members.get(newMemberId) !== m)
                return this.respondJoin(m, joinError(newMemberId, ErrorCode.UNKNOWN_MEMBER_ID));
              const isLeader = g.isLeader(newMemberId);
              if (p.supportsSkipAssignment) {
                this.respondJoin(m, {
                  errorCode: ErrorCode.NONE,
                  generationId: generation,
                  protocolType: g.protocolType,
                  protocolName: g.protocolName,
                  leader: g.leaderId ?? '',
                  skipAssignment: isLeader,
                  memberId: newMemberId,
                  members: isLeader ? this.currentMembers(g) : [],
                });
              } else {
                // Old clients: the old leader id is returned so the member does not assign.
                this.respondJoin(m, {
                  errorCode: ErrorCode.NONE,
                  generationId: generation,
                  protocolType: g.protocolType,
                  protocolName: g.protocolName,
                  leader: currentLeader ?? '',
                  skipAssignment: false,
                  memberId: newMemberId,
                  members: [],
                });
              }
              return true;
            },
            (err: unknown) => {
              this.logger.warn(
                `group ${g.groupId}: could not persist static member ${p.groupInstanceId}: ${(err as Error).message}; reverting`,
              );
              if (g.is('Dead') || g.members.get(newMemberId) !== m)
                return this.respondJoin(m, joinError('', groupStoreError(err)));
              const cb = m.joinWaiter;
              m.joinWaiter = null;
              m.protocols = oldProtocols;
              m.rebalanceTimeoutMs = oldRebalanceTimeoutMs;
              m.sessionTimeoutMs = oldSessionTimeoutMs;
              const back = this.replaceStaticMember(g, m, oldMemberId);
              this.scheduleSession(g, back);
              cb?.({
                ...joinError('', groupStoreError(err)),
                generationId: g.generationId,
                protocolType: g.protocolType,
                protocolName: g.protocolName,
                leader: currentLeader ?? '',
              });
              return true;
            },
          );
        } else {
          this.maybePrepareRebalanceOrCompleteJoin(
            g,
            `static member ${newMemberId} rejoined with other protocols`,
          );
        }
        return;
      }
      case 'CompletingRebalance':
        // The leader may already be assigning to the old member id: rebalance again.
        this.prepareRebalance(g, `static member ${newMemberId} rejoined during CompletingRebalance`);
        return;
      case 'PreparingRebalance':
        this.tryCompleteJoin(g);
        return;
      default:
        return;
    }
  }

  /** Moves a static member to a new member id, fencing whatever the old id was waiting for. */
  private replaceStaticMember(g: ClassicGroup, old: ClassicMember, newMemberId: string): ClassicMember {
    const wasLeader = g.isLeader(old.memberId);
    const wasPendingSync = g.pendingSyncMembers.has(old.memberId);
    this.respondJoin(old, joinError(old.memberId, ErrorCode.FENCED_INSTANCE_ID));
    this.respondSync(old, syncError(ErrorCode.FENCED_INSTANCE_ID));
    this.clearSession(old);
    g.members.delete(old.memberId);
    g.pendingSyncMembers.delete(old.memberId);
    const m = new ClassicMember(
      newMemberId,
      old.groupInstanceId,
      old.clientId,
      old.clientHost,
      old.rebalanceTimeoutMs,
      old.sessionTimeoutMs,
      old.protocolType,
      old.protocols,
    );
    m.assignment = old.assignment;
    g.members.set(newMemberId, m);
    if (old.groupInstanceId !== null) g.staticMembers.set(old.groupInstanceId, newMemberId);
    if (wasLeader) g.leaderId = newMemberId;
    if (wasPendingSync) g.pendingSyncMembers.add(newMemberId);
    return m;
  }

  // ---- rebalance ------------------------------------------------------------------------------

  private canRebalance(g: ClassicGroup): boolean {
    return g.is('Stable') || g.is('CompletingRebalance') || g.is('Empty');
  }

  private maybePrepareRebalanceOrCompleteJoin(g: ClassicGroup, reason: string): void {
    if (this.canRebalance(g)) this.prepareRebalance(g, reason);
    else if (g.is('PreparingRebalance')) this.tryCompleteJoin(g);
  }

  private prepareRebalance(g: ClassicGroup, reason: string): void {
    if (g.is('CompletingRebalance')) this.propagateAssignmentError(g, ErrorCode.REBALANCE_IN_PROGRESS);
    if (g.pendingSyncTimer !== null) this.scheduler.clearTimeout(g.pendingSyncTimer);
    g.pendingSyncTimer = null;
    g.pendingSyncMembers.clear();
    if (g.joinTimer !== null) this.scheduler.clearTimeout(g.joinTimer);
    const fromEmpty = g.is('Empty');
    g.transitionTo('PreparingRebalance', this.now());
    this.logger.info(
      `group ${g.groupId}: preparing to rebalance in generation ${g.generationId} (${reason})`,
    );
    if (fromEmpty) {
      const delay = this.config.initialRebalanceDelayMs;
      g.initialDelayRemainingMs = Math.max(g.rebalanceTimeoutMs - delay, 0);
      g.newMemberAdded = false;
      g.joinTimer = this.scheduler.setTimeout(() => this.onInitialDelayExpired(g), delay);
    } else {
      g.initialDelayRemainingMs = null;
      g.joinTimer = this.scheduler.setTimeout(() => this.onJoinTimeout(g), g.rebalanceTimeoutMs);
      this.tryCompleteJoin(g);
    }
  }

  private onInitialDelayExpired(g: ClassicGroup): void {
    g.joinTimer = null;
    if (!g.is('PreparingRebalance')) return;
    const remaining = g.initialDelayRemainingMs ?? 0;
    if (g.newMemberAdded && remaining > 0) {
      g.newMemberAdded = false;
      const delay = Math.min(this.config.initialRebalanceDelayMs, remaining);
      g.initialDelayRemainingMs = Math.max(remaining - delay, 0);
      g.joinTimer = this.scheduler.setTimeout(() => this.onInitialDelayExpired(g), delay);
      return;
    }
    this.completeJoin(g);
  }

  private onJoinTimeout(g: ClassicGroup): void {
    g.joinTimer = null;
    if (g.is('PreparingRebalance')) this.completeJoin(g);
  }

  private tryCompleteJoin(g: ClassicGroup): void {
    if (!g.is('PreparingRebalance') || g.initialDelayRemainingMs !== null) return;
    if (g.hasAllMembersJoined()) {
      if (g.joinTimer !== null) this.scheduler.clearTimeout(g.joinTimer);
      g.joinTimer = null;
      this.completeJoin(g);
    }
  }

  private completeJoin(g: ClassicGroup): void {
    if (g.joinTimer !== null) this.scheduler.clearTimeout(g.joinTimer);
    g.joinTimer = null;
    g.initialDelayRemainingMs = null;
    if (!g.is('PreparingRebalance')) return;
    // Dynamic members that did not rejoin in time leave the group; static ones stay until their
    // session expires (KIP-345).
    for (const m of [...g.members.values()]) {
      if (!m.isAwaitingJoin && !m.isStatic) {
        this.logger.info(`group ${g.groupId}: removing member ${m.memberId}, which did not rejoin in time`);
        this.clearSession(m);
        g.remove(m.memberId);
      }
    }
    if (!g.maybeElectNewJoinedLeader() && g.size > 0) {
      // Only static members that have not rejoined remain: wait for them (or their sessions).
      g.joinTimer = this.scheduler.setTimeout(() => this.onJoinTimeout(g), g.rebalanceTimeoutMs);
      return;
    }
    const now = this.now();
    g.generationId++;
    if (g.size > 0) {
      g.protocolName = g.selectProtocol();
      g.subscribedTopics = g.computeSubscribedTopics();
      g.transitionTo('CompletingRebalance', now);
    } else {
      // protocolType stays (Kafka keeps it for an Empty group: offsets expire by its rules).
      g.protocolName = null;
      g.subscribedTopics = null;
      g.leaderId = null;
      g.transitionTo('Empty', now);
    }
    this.logger.info(
      `group ${g.groupId}: generation ${g.generationId} (${g.state}, protocol ${g.protocolName ?? '-'}, ${g.size} member(s))`,
    );
    if (g.is('Empty')) {
      this.log.append(this.partitionFor(g.groupId), [this.groupRecord(g, null)]).catch((err: unknown) => {
        this.logger.warn(
          `group ${g.groupId}: could not persist empty generation ${g.generationId}: ${(err as Error).message}`,
        );
      });
      return;
    }
    const members = this.currentMembers(g);
    for (const m of g.members.values()) {
      this.respondJoin(m, {
        errorCode: ErrorCode.NONE,
        generationId: g.generationId,
        protocolType: g.protocolType,
        protocolName: g.protocolName,
        leader: g.leaderId ?? '',
        skipAssignment: false,
        memberId: m.memberId,
        members: g.isLeader(m.memberId) ? members : [],
      });
      m.isNew = false;
      this.scheduleSession(g, m);
    }
    // Members must SyncGroup within the rebalance timeout.
    for (const id of g.members.keys()) g.pendingSyncMembers.add(id);
    const generation = g.generationId;
    g.pendingSyncTimer = this.scheduler.setTimeout(
      () => this.onPendingSyncExpired(g, generation),
      g.rebalanceTimeoutMs,
    );
  }

  private onPendingSyncExpired(g: ClassicGroup, generation: number): void {
    g.pendingSyncTimer = null;
    if (generation !== g.generationId || !(g.is('CompletingRebalance') || g.is('Stable'))) return;
    if (g.pendingSyncMembers.size === 0) return;
    const late = [...g.pendingSyncMembers];
    this.logger.info(`group ${g.groupId}: members ${late.join(', ')} did not sync in time; removing them`);
    for (const id of late) {
      const m = g.members.get(id);
      if (!m) continue;
      this.clearSession(m);
      this.respondJoin(m, joinError(id, ErrorCode.UNKNOWN_MEMBER_ID));
      this.respondSync(m, syncError(ErrorCode.UNKNOWN_MEMBER_ID));
      g.remove(id);
    }
    g.pendingSyncMembers.clear();
    this.prepareRebalance(g, 'members failed to sync within the rebalance timeout');
  }

  private propagateAssignmentError(g: ClassicGroup, errorCode: number): void {
    for (const m of g.members.values()) {
      m.assignment = EMPTY_BUFFER;
      if (this.respondSync(m, syncError(errorCode))) this.scheduleSession(g, m);
    }
  }

  private removeMemberAndUpdateGroup(g: ClassicGroup, m: ClassicMember): void {
    this.respondJoin(m, joinError('', ErrorCode.UNKNOWN_MEMBER_ID));
    this.respondSync(m, syncError(ErrorCode.UNKNOWN_MEMBER_ID));
    this.clearSession(m);
    g.remove(m.memberId);
    if (g.is('Stable') || g.is('CompletingRebalance')) this.prepareRebalance(g, `member ${m.memberId} left`);
    else if (g.is('PreparingRebalance')) this.tryCompleteJoin(g);
  }

  private groupRecord(g: ClassicGroup, assignments: Map<string, Buffer> | null): GroupLogRecord {
    const value = {
      protocolType: g.protocolType ?? '',
      generation: g.generationId,
      protocol: g.protocolName,
      leader: g.leaderId,
      currentStateTimestamp: g.currentStateTimestamp,
      members: [...g.members.values()].map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        rebalanceTimeout: m.rebalanceTimeoutMs,
        sessionTimeout: m.sessionTimeoutMs,
        subscription: m.metadata(g.protocolName),
        assignment: assignments?.get(m.memberId) ?? m.assignment,
      })),
    };
    return groupMetadataRecord(g.groupId, value);
  }

  // ---- SyncGroup ------------------------------------------------------------------------------

  syncGroup(p: SyncGroupParams): Promise<SyncResult> {
    return new Promise((resolve) => this.doSyncGroup(p, resolve));
  }

  private doSyncGroup(p: SyncGroupParams, respond: (r: SyncResult) => void): void {
    const statusError = this.groupStatusError(p.groupId);
    if (statusError !== ErrorCode.NONE) {
      respond(syncError(statusError));
      return;
    }
    const g = this.groups.get(p.groupId);
    if (!g) {
      respond(syncError(ErrorCode.UNKNOWN_MEMBER_ID));
      return;
    }
    if (g.is('Dead')) {
      respond(syncError(ErrorCode.COORDINATOR_NOT_AVAILABLE));
      return;
    }
    const memberError = this.memberError(g, p.memberId, p.groupInstanceId);
    if (memberError !== ErrorCode.NONE) {
      respond(syncError(memberError));
      return;
    }
    if (p.generationId !== g.generationId) {
      respond(syncError(ErrorCode.ILLEGAL_GENERATION));
      return;
    }
    if (p.protocolType !== null && p.protocolType !== g.protocolType) {
      respond(syncError(ErrorCode.INCONSISTENT_GROUP_PROTOCOL));
      return;
    }
    if (p.protocolName !== null && p.protocolName !== g.protocolName) {
      respond(syncError(ErrorCode.INCONSISTENT_GROUP_PROTOCOL));
      return;
    }
    const m = g.members.get(p.memberId)!;
    switch (g.state) {
      case 'Empty':
        respond(syncError(ErrorCode.UNKNOWN_MEMBER_ID));
        return;
      case 'PreparingRebalance':
        respond(syncError(ErrorCode.REBALANCE_IN_PROGRESS));
        return;
      case 'CompletingRebalance': {
        if (m.syncWaiter) this.respondSync(m, syncError(ErrorCode.REBALANCE_IN_PROGRESS));
        m.syncWaiter = respond;
        this.removePendingSync(g, m.memberId);
        if (!g.isLeader(m.memberId)) return;
        const assignments = new Map<string, Buffer>();
        for (const a of p.assignments) assignments.set(a.memberId, a.assignment);
        const generation = g.generationId;
        this.log.append(this.partitionFor(g.groupId), [this.groupRecord(g, assignments)]).then(
          () => {
            if (!g.is('CompletingRebalance') || g.generationId !== generation) return;
            for (const member of g.members.values()) {
              member.assignment = assignments.get(member.memberId) ?? EMPTY_BUFFER;
              const sent = this.respondSync(member, {
                errorCode: ErrorCode.NONE,
                protocolType: g.protocolType,
                protocolName: g.protocolName,
                assignment: member.assignment,
              });
              if (sent) this.scheduleSession(g, member);
            }
            g.transitionTo('Stable', this.now());
          },
          (err: unknown) => {
            this.logger.warn(
              `group ${g.groupId}: could not persist generation ${generation}: ${(err as Error).message}`,
            );
            if (!g.is('CompletingRebalance') || g.generationId !== generation) return;
            this.propagateAssignmentError(g, groupStoreError(err));
            this.prepareRebalance(g, 'the assignment could not be stored');
          },
        );
        return;
      }
      case 'Stable':
        this.removePendingSync(g, m.memberId);
        this.scheduleSession(g, m);
        respond({
          errorCode: ErrorCode.NONE,
          protocolType: g.protocolType,
          protocolName: g.protocolName,
          assignment: m.assignment,
        });
        return;
      case 'Dead':
        respond(syncError(ErrorCode.COORDINATOR_NOT_AVAILABLE));
        return;
    }
  }

  private removePendingSync(g: ClassicGroup, memberId: string): void {
    g.pendingSyncMembers.delete(memberId);
    if (g.pendingSyncMembers.size === 0 && g.pendingSyncTimer !== null) {
      this.scheduler.clearTimeout(g.pendingSyncTimer);
      g.pendingSyncTimer = null;
    }
  }

  // ---- Heartbeat ------------------------------------------------------------------------------

  heartbeat(p: HeartbeatParams): number {
    const statusError = this.groupStatusError(p.groupId);
    if (statusError !== ErrorCode.NONE) return statusError;
    const g = this.groups.get(p.groupId);
    if (!g) return ErrorCode.UNKNOWN_MEMBER_ID;
    if (g.is('Dead')) return ErrorCode.COORDINATOR_NOT_AVAILABLE;
    const memberError = this.memberError(g, p.memberId, p.groupInstanceId);
    if (memberError !== ErrorCode.NONE) return memberError;
    if (p.generationId !== g.generationId) return ErrorCode.ILLEGAL_GENERATION;
    const m = g.members.get(p.memberId)!;
    switch (g.state) {
      case 'Empty':
        return ErrorCode.UNKNOWN_MEMBER_ID;
      case 'PreparingRebalance':
        this.scheduleSession(g, m);
        return ErrorCode.REBALANCE_IN_PROGRESS;
      case 'CompletingRebalance':
      case 'Stable':
        this.scheduleSession(g, m);
        return ErrorCode.NONE;
      case 'Dead':
        return ErrorCode.COORDINATOR_NOT_AVAILABLE;
    }
  }

  // ---- LeaveGroup -----------------------------------------------------------------------------

  leaveGroup(groupId: string, leaving: { memberId: string; groupInstanceId: string | null }[]): LeaveResult {
    const statusError = this.groupStatusError(groupId);
    if (statusError !== ErrorCode.NONE) return { errorCode: statusError, members: [] };
    const g = this.groups.get(groupId);
    if (!g) {
      return {
        errorCode: ErrorCode.NONE,
        members: leaving.map((l) => ({ ...l, errorCode: ErrorCode.UNKNOWN_MEMBER_ID })),
      };
    }
    if (g.is('Dead')) return { errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, members: [] };
    const results: LeaveResult['members'] = [];
    const removed: ClassicMember[] = [];
    let pendingRemoved = false;
    for (const l of leaving) {
      let memberId = l.memberId;
      if (l.groupInstanceId !== null) {
        const staticId = g.staticMembers.get(l.groupInstanceId);
        if (staticId === undefined) {
          results.push({ ...l, errorCode: ErrorCode.UNKNOWN_MEMBER_ID });
          continue;
        }
        if (l.memberId !== '' && l.memberId !== staticId) {
          results.push({ ...l, errorCode: ErrorCode.FENCED_INSTANCE_ID });
          continue;
        }
        memberId = staticId;
      } else {
        const pending = g.pendingMembers.get(memberId);
        if (pending !== undefined) {
          this.scheduler.clearTimeout(pending);
          g.pendingMembers.delete(memberId);
          pendingRemoved = true;
          results.push({ ...l, errorCode: ErrorCode.NONE });
          continue;
        }
      }
      const m = g.members.get(memberId);
      if (!m) {
        results.push({ ...l, errorCode: ErrorCode.UNKNOWN_MEMBER_ID });
        continue;
      }
      removed.push(m);
      results.push({ ...l, errorCode: ErrorCode.NONE });
    }
    for (const m of removed) {
      if (g.members.get(m.memberId) !== m) continue;
      this.logger.info(`group ${g.groupId}: member ${m.memberId} left`);
      this.respondJoin(m, joinError('', ErrorCode.UNKNOWN_MEMBER_ID));
      this.respondSync(m, syncError(ErrorCode.UNKNOWN_MEMBER_ID));
      this.clearSession(m);
      g.remove(m.memberId);
    }
    if (removed.length > 0 || pendingRemoved)
      this.maybePrepareRebalanceOrCompleteJoin(g, 'members left the group');
    return { errorCode: ErrorCode.NONE, members: results };
  }

  // ---- offsets --------------------------------------------------------------------------------

  async commitOffsets(p: CommitOffsetsParams): Promise<PartitionResult[]> {
    const all = (errorCode: number) =>
      p.offsets.map((o) => ({ topic: o.topic, partition: o.partition, errorCode }));
    const statusError = this.groupStatusError(p.groupId);
    if (statusError !== ErrorCode.NONE) return all(statusError);
    const cg = this.consumer.group(p.groupId);
    if (cg) {
      const error = this.consumer.validateOffsetCommit(cg, p.memberId, p.generationId, p.apiVersion);
      if (error !== ErrorCode.NONE) return all(error);
      return this.writeOffsets(p, cg.offsets, () => !cg.dead);
    }
    let g = this.groups.get(p.groupId);
    if (!g) {
      if (p.generationId >= 0)
        return all(p.apiVersion >= 9 ? ErrorCode.GROUP_ID_NOT_FOUND : ErrorCode.ILLEGAL_GENERATION);
      // A group that does not use group management ("simple" group).
      g = new ClassicGroup(p.groupId, this.now());
      this.groups.set(p.groupId, g);
    }
    const group = g;
    const validation = this.validateOffsetCommit(group, p);
    if (validation !== ErrorCode.NONE) return all(validation);
    const member = group.members.get(p.memberId);
    if (member && (group.is('Stable') || group.is('PreparingRebalance'))) this.scheduleSession(group, member);
    return this.writeOffsets(p, group.offsets, () => !group.is('Dead'));
  }

  /** Writes validated offset commits and applies them once durable (while `alive()`). */
  private async writeOffsets(
    p: CommitOffsetsParams,
    store: OffsetStore,
    alive: () => boolean,
  ): Promise<PartitionResult[]> {
    const now = this.now();
    const results: PartitionResult[] = [];
    const records: GroupLogRecord[] = [];
    const accepted: { topic: string; partition: number; value: CommittedOffset; result: PartitionResult }[] =
      [];
    for (const o of p.offsets) {
      const result: PartitionResult = { topic: o.topic, partition: o.partition, errorCode: ErrorCode.NONE };
      results.push(result);
      const metadata = o.metadata ?? '';
      if (metadata.length > this.config.offsetMetadataMaxBytes) {
        result.errorCode = ErrorCode.OFFSET_METADATA_TOO_LARGE;
        continue;
      }
      const commitTimestamp = o.commitTimestamp >= 0 ? o.commitTimestamp : now;
      const value: CommittedOffset = {
        offset: o.offset,
        leaderEpoch: o.leaderEpoch,
        metadata,
        commitTimestamp,
        expireTimestamp: p.retentionTimeMs >= 0 ? commitTimestamp + p.retentionTimeMs : -1,
      };
      records.push(offsetCommitRecord(p.groupId, o.topic, o.partition, value));
      accepted.push({ topic: o.topic, partition: o.partition, value, result });
    }
    if (records.length === 0) return results;
    try {
      await this.log.append(this.partitionFor(p.groupId), records);
    } catch (err) {
      const code = commitError(err);
      for (const a of accepted) a.result.errorCode = code;
      this.logger.warn(`group ${p.groupId}: offset commit failed: ${(err as Error).message}`);
      return results;
    }
    if (alive()) for (const a of accepted) store.set(a.topic, a.partition, a.value);
    return results;
  }

  /** Kafka 4's ClassicGroup.validateOffsetCommit. */
  private validateOffsetCommit(g: ClassicGroup, p: CommitOffsetsParams): number {
    if (g.is('Dead')) return ErrorCode.COORDINATOR_NOT_AVAILABLE;
    if (p.generationId < 0 && g.is('Empty')) return ErrorCode.NONE;
    if (p.generationId >= 0 || p.memberId !== '' || p.groupInstanceId !== null) {
      const memberError = this.memberError(g, p.memberId, p.groupInstanceId);
      if (memberError !== ErrorCode.NONE) return memberError;
      if (p.generationId !== g.generationId) return ErrorCode.ILLEGAL_GENERATION;
    } else if (!g.is('Empty')) {
      // Standalone commits (generation -1, no member) only when the group has no members.
      return ErrorCode.UNKNOWN_MEMBER_ID;
    }
    if (g.is('CompletingRebalance')) return ErrorCode.REBALANCE_IN_PROGRESS;
    return ErrorCode.NONE;
  }

  /**
   * OffsetFetch for one group; `topics` null means every committed offset. `member` (OffsetFetch
   * v9) is validated for consumer groups only (UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH).
   */
  fetchOffsets(
    groupId: string,
    topics: { name: string; partitions: number[] }[] | null,
    member?: { memberId: string | null; memberEpoch: number },
  ): FetchedOffsets {
    const statusError = this.groupStatusError(groupId);
    if (statusError !== ErrorCode.NONE) return { errorCode: statusError, topics: [] };
    const cg = this.consumer.group(groupId);
    if (cg && member) {
      const error = this.consumer.validateOffsetFetch(cg, member.memberId, member.memberEpoch);
      if (error !== ErrorCode.NONE) return { errorCode: error, topics: [] };
    }
    const g = this.groups.get(groupId);
    const offsets = cg ? cg.offsets : g && !g.is('Dead') ? g.offsets : null;
    const entry = (partitionIndex: number, v: CommittedOffset | undefined) => ({
      partitionIndex,
      committedOffset: v ? v.offset : -1,
      committedLeaderEpoch: v ? v.leaderEpoch : -1,
      metadata: v ? v.metadata : '',
      errorCode: ErrorCode.NONE,
    });
    if (topics === null) {
      if (!offsets) return { errorCode: ErrorCode.NONE, topics: [] };
      return {
        errorCode: ErrorCode.NONE,
        topics: offsets
          .topicNames()
          .map((name) => ({ name, partitions: offsets.partitionsOf(name).map(([p, v]) => entry(p, v)) })),
      };
    }
    return {
      errorCode: ErrorCode.NONE,
      topics: topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => entry(p, offsets?.get(t.name, p))),
      })),
    };
  }

  /** OffsetDelete: removes committed offsets of partitions the group does not consume. */
  async deleteOffsets(
    groupId: string,
    topics: { name: string; partitions: number[] }[],
  ): Promise<{
    errorCode: number;
    topics: { name: string; partitions: { partitionIndex: number; errorCode: number }[] }[];
  }> {
    const statusError = this.groupStatusError(groupId);
    if (statusError !== ErrorCode.NONE) return { errorCode: statusError, topics: [] };
    const cg = this.consumer.group(groupId);
    if (cg) {
      const subscribed = cg.subscribedTopicNames();
      return this.deleteOffsetsFrom(groupId, cg.offsets, topics, (t) => subscribed.has(t));
    }
    const g = this.groups.get(groupId);
    if (!g || g.is('Dead')) return { errorCode: ErrorCode.GROUP_ID_NOT_FOUND, topics: [] };
    if (!g.is('Empty') && g.protocolType !== CONSUMER_PROTOCOL_TYPE)
      return { errorCode: ErrorCode.NON_EMPTY_GROUP, topics: [] };
    return this.deleteOffsetsFrom(
      groupId,
      g.offsets,
      topics,
      (t) => !g.is('Empty') && g.isSubscribedToTopic(t),
    );
  }

  private async deleteOffsetsFrom(
    groupId: string,
    store: OffsetStore,
    topics: { name: string; partitions: number[] }[],
    isSubscribed: (topic: string) => boolean,
  ): Promise<{
    errorCode: number;
    topics: { name: string; partitions: { partitionIndex: number; errorCode: number }[] }[];
  }> {
    const records: GroupLogRecord[] = [];
    const toDelete: { topic: string; partition: number }[] = [];
    const out = topics.map((t) => {
      const subscribed = isSubscribed(t.name);
      return {
        name: t.name,
        partitions: t.partitions.map((p) => {
          if (subscribed) return { partitionIndex: p, errorCode: ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC };
          if (store.get(t.name, p)) {
            records.push(offsetCommitRecord(groupId, t.name, p, null));
            toDelete.push({ topic: t.name, partition: p });
          }
          return { partitionIndex: p, errorCode: ErrorCode.NONE };
        }),
      };
    });
    if (records.length > 0) {
      try {
        await this.log.append(this.partitionFor(groupId), records);
      } catch (err) {
        return { errorCode: groupStoreError(err), topics: [] };
      }
      for (const d of toDelete) store.delete(d.topic, d.partition);
    }
    return { errorCode: ErrorCode.NONE, topics: out };
  }

  // ---- DescribeGroups / ListGroups / DeleteGroups ---------------------------------------------

  describeGroup(groupId: string): DescribedGroup {
    const base = { groupId, groupState: 'Dead', protocolType: '', protocolData: '', members: [] };
    const statusError = this.groupStatusError(groupId);
    if (statusError !== ErrorCode.NONE) return { ...base, errorCode: statusError, groupState: '' };
    const g = this.groups.get(groupId);
    if (!g || g.is('Dead')) return { ...base, errorCode: ErrorCode.NONE };
    const stable = g.is('Stable');
    return {
      errorCode: ErrorCode.NONE,
      groupId,
      groupState: g.state,
      protocolType: g.protocolType ?? '',
      protocolData: stable ? (g.protocolName ?? '') : '',
      members: [...g.members.values()].map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        memberMetadata: stable ? m.metadata(g.protocolName) : EMPTY_BUFFER,
        memberAssignment: stable ? m.assignment : EMPTY_BUFFER,
      })),
    };
  }

  /** ListGroups; filters compare case-insensitively, as Kafka does. */
  listGroups(statesFilter: string[], typesFilter: string[]): { errorCode: number; groups: ListedGroup[] } {
    if (!this.active) return { errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, groups: [] };
    if (!this.loaded) return { errorCode: ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, groups: [] };
    // As Kafka's GroupCoordinator.handleListGroups: while any owned partition loads, the list
    // would be incomplete; the client retries.
    for (const e of this.partitions.values())
      if (e.state === 'loading') return { errorCode: ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, groups: [] };
    const owned = (groupId: string) => this.ownsPartition(this.partitionFor(groupId));
    const states = new Set(statesFilter.map((s) => s.toLowerCase()));
    const types = new Set(typesFilter.map((s) => s.toLowerCase()));
    const groups: ListedGroup[] = [];
    for (const g of this.groups.values()) {
      if (g.is('Dead') || !owned(g.groupId)) continue;
      if (states.size > 0 && !states.has(g.state.toLowerCase())) continue;
      if (types.size > 0 && !types.has('classic')) continue;
      groups.push({
        groupId: g.groupId,
        protocolType: g.protocolType ?? '',
        groupState: g.state,
        groupType: 'classic',
      });
    }
    for (const g of this.consumer.groups.values()) {
      if (g.dead || !owned(g.groupId)) continue;
      const state = g.state;
      if (states.size > 0 && !states.has(state.toLowerCase())) continue;
      if (types.size > 0 && !types.has('consumer')) continue;
      groups.push({
        groupId: g.groupId,
        protocolType: CONSUMER_PROTOCOL_TYPE,
        groupState: state,
        groupType: 'consumer',
      });
    }
    return { errorCode: ErrorCode.NONE, groups };
  }

  async deleteGroups(groupIds: string[]): Promise<{ groupId: string; errorCode: number }[]> {
    return Promise.all(
      groupIds.map(async (groupId) => ({ groupId, errorCode: await this.deleteGroup(groupId) })),
    );
  }

  private async deleteGroup(groupId: string): Promise<number> {
    const statusError = this.groupStatusError(groupId);
    if (statusError !== ErrorCode.NONE) return statusError;
    const cg = this.consumer.group(groupId);
    if (cg) return this.deleteConsumerGroup(cg);
    const g = this.groups.get(groupId);
    if (!g || g.is('Dead')) return ErrorCode.GROUP_ID_NOT_FOUND;
    if (!g.is('Empty')) return ErrorCode.NON_EMPTY_GROUP;
    const records: GroupLogRecord[] = [];
    for (const e of g.offsets.entries())
      records.push(offsetCommitRecord(groupId, e.topic, e.partition, null));
    records.push(groupMetadataRecord(groupId, null));
    // Dead while the tombstones are written, so nothing joins a group that is going away.
    const previousTimestamp = g.currentStateTimestamp;
    g.transitionTo('Dead', this.now());
    try {
      await this.log.append(this.partitionFor(groupId), records);
    } catch (err) {
      g.state = 'Empty';
      g.currentStateTimestamp = previousTimestamp;
      return groupStoreError(err);
    }
    this.cancelGroupTimers(g);
    g.offsets.clear();
    if (this.groups.get(groupId) === g) this.groups.delete(groupId);
    this.logger.info(`group ${groupId}: deleted`);
    return ErrorCode.NONE;
  }

  private async deleteConsumerGroup(cg: ConsumerGroup): Promise<number> {
    if (cg.members.size > 0) return ErrorCode.NON_EMPTY_GROUP;
    const records: GroupLogRecord[] = [];
    for (const e of cg.offsets.entries())
      records.push(offsetCommitRecord(cg.groupId, e.topic, e.partition, null));
    records.push(...this.consumer.deletionRecords(cg));
    // Dead while the tombstones are written, so no member joins a group that is going away.
    this.consumer.removeGroup(cg);
    try {
      await this.log.append(this.partitionFor(cg.groupId), records);
    } catch (err) {
      void this.reloadConsumerGroup(cg.groupId);
      return groupStoreError(err);
    }
    cg.offsets.clear();
    this.logger.info(`consumer group ${cg.groupId}: deleted`);
    return ErrorCode.NONE;
  }

  /** Consumer groups: Kafka's rules for groups of the consumer protocol (KIP-848), see below. */
  private async cleanupConsumerGroups(now: number): Promise<number> {
    const retention = this.config.offsetsRetentionMs;
    let removed = 0;
    for (const g of [...this.consumer.groups.values()]) {
      if (g.dead) continue;
      const empty = g.members.size === 0;
      const subscribed = g.subscribedTopicNames();
      const expired: { topic: string; partition: number }[] = [];
      for (const e of g.offsets.entries()) {
        if (!empty && subscribed.has(e.topic)) continue;
        const base = empty ? Math.max(g.emptySinceMs, e.value.commitTimestamp) : e.value.commitTimestamp;
        const isExpired =
          e.value.expireTimestamp >= 0 ? now >= e.value.expireTimestamp : now - base >= retention;
        if (isExpired) expired.push({ topic: e.topic, partition: e.partition });
      }
      const records = expired.map((e) => offsetCommitRecord(g.groupId, e.topic, e.partition, null));
      const dropGroup = empty && g.offsets.size === expired.length && now - g.emptySinceMs >= retention;
      if (dropGroup) records.push(...this.consumer.deletionRecords(g));
      if (records.length === 0) continue;
      try {
        await this.log.append(this.partitionFor(g.groupId), records);
      } catch (err) {
        this.logger.warn(`group ${g.groupId}: could not expire offsets: ${(err as Error).message}`);
        continue;
      }
      for (const e of expired) g.offsets.delete(e.topic, e.partition);
      removed += expired.length;
      if (dropGroup && g.members.size === 0 && g.offsets.size === 0) this.consumer.removeGroup(g);
    }
    return removed;
  }

  // ---- offset expiration (offsets.retention.ms) -----------------------------------------------

  private scheduleCleanup(): void {
    if (this.cleanupTimer !== null) this.scheduler.clearTimeout(this.cleanupTimer);
    this.cleanupTimer = this.scheduler.setTimeout(() => {
      this.cleanupTimer = null;
      this.cleanupExpiredOffsets().then(
        () => {
          if (this.active) this.scheduleCleanup();
        },
        (err: unknown) => {
          this.logger.error(`offset expiration failed: ${(err as Error).message}`);
          if (this.active) this.scheduleCleanup();
        },
      );
    }, this.config.offsetsRetentionCheckIntervalMs);
  }

  /**
   * Expires offsets as Kafka does (KIP-211): all offsets of a consumer group that has been Empty
   * for offsets.retention.ms; offsets of topics a Stable consumer group no longer subscribes to;
   * and offsets of simple (standalone) groups, offsetsRetentionMs after their commit. An offset
   * with its own expire timestamp (OffsetCommit v2-4 retention) expires then. Empty groups left
   * without offsets are removed. Returns the number of offsets removed.
   */
  async cleanupExpiredOffsets(): Promise<number> {
    if (!this.loaded || !this.active) return 0;
    const now = this.now();
    const retention = this.config.offsetsRetentionMs;
    let removed = 0;
    for (const g of [...this.groups.values()]) {
      if (g.is('Dead')) continue;
      let base: ((v: CommittedOffset, topic: string) => number | null) | null = null;
      if (g.protocolType === null && g.is('Empty')) base = (v) => v.commitTimestamp;
      else if (g.is('Empty')) base = () => g.currentStateTimestamp;
      else if (g.protocolType === CONSUMER_PROTOCOL_TYPE && g.subscribedTopics !== null && g.is('Stable')) {
        const subscribed = g.subscribedTopics;
        base = (v, topic) => (subscribed.has(topic) ? null : v.commitTimestamp);
      }
      const expired: { topic: string; partition: number }[] = [];
      if (base) {
        for (const e of g.offsets.entries()) {
          const b = base(e.value, e.topic);
          if (b === null) continue;
          const isExpired =
            e.value.expireTimestamp >= 0 ? now >= e.value.expireTimestamp : now - b >= retention;
          if (isExpired) expired.push({ topic: e.topic, partition: e.partition });
        }
      }
      const records = expired.map((e) => offsetCommitRecord(g.groupId, e.topic, e.partition, null));
      const dropGroup = g.is('Empty') && g.pendingMembers.size === 0 && g.offsets.size === expired.length;
      if (dropGroup) records.push(groupMetadataRecord(g.groupId, null));
      if (records.length === 0) continue;
      try {
        await this.log.append(this.partitionFor(g.groupId), records);
      } catch (err) {
        this.logger.warn(`group ${g.groupId}: could not expire offsets: ${(err as Error).message}`);
        continue;
      }
      for (const e of expired) g.offsets.delete(e.topic, e.partition);
      removed += expired.length;
      if (dropGroup && g.is('Empty') && g.offsets.size === 0 && g.size === 0) {
        g.transitionTo('Dead', now);
        this.cancelGroupTimers(g);
        if (this.groups.get(g.groupId) === g) this.groups.delete(g.groupId);
      }
    }
    removed += await this.cleanupConsumerGroups(now);
    if (removed > 0) this.logger.info(`expired ${removed} committed offset(s)`);
    return removed;
  }
}
