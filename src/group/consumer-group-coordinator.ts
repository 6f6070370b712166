/**
 * The coordinator of KIP-848 consumer groups: ConsumerGroupHeartbeat (join, heartbeat, leave,
 * static leave) and ConsumerGroupDescribe, with the group's records in `__consumer_offsets`.
 *
 * One heartbeat, as Kafka's GroupMetadataManager handles it:
 * 1. validate the request (INVALID_REQUEST, UNSUPPORTED_ASSIGNOR), find or create the group and
 *    the member (UNKNOWN_MEMBER_ID, FENCED_MEMBER_EPOCH, UNRELEASED_INSTANCE_ID,
 *    FENCED_INSTANCE_ID, GROUP_MAX_SIZE_REACHED);
 * 2. update the member's metadata (subscription, assignor, rebalance timeout, ...) and the
 *    group's subscription metadata (partition counts of subscribed topics); if either changed
 *    what the assignment depends on, bump the group epoch;
 * 3. if the group epoch is ahead of the assignment epoch, compute a new target assignment with
 *    the server-side assignor;
 * 4. reconcile the member one step towards its target (consumer-group.ts), arming the rebalance
 *    timeout while it must revoke partitions;
 * 5. write the records of every change, wait until they are durable, and answer with the member
 *    epoch and, when it changed (or on a full request), the assignment.
 *
 * State changes are applied synchronously before the write (so concurrent heartbeats see them
 * in order, and the log receives records in the same order). If a write fails, the request gets
 * the mapped error and the group is rebuilt from the log.
 *
 * Timers: a session timeout per member (group.consumer.session.timeout.ms, reset by every
 * heartbeat) and a rebalance timeout while a member holds partitions it must revoke; either
 * expiring fences the member (removes it and bumps the group epoch).
 *
 * Topic metadata comes with each call (TopicView), as Kafka's coordinator reads the metadata
 * image: partition count changes are noticed on the next heartbeat of any member.
 */

import { randomBytes } from 'node:crypto';
import { ErrorCode, KafkaError } from '../protocol/errors.js';
import type { ConsumerGroupMemberMetadataValue } from '../protocol/generated/consumer-group-member-metadata-value.js';
import {
  type GroupAssignment,
  type GroupSpec,
  SERVER_ASSIGNORS,
  type TopicPartitionMap,
  UNIFORM_ASSIGNOR,
} from './assignors.js';
import {
  type ConsumerGroupRecord,
  consumerGroupCurrentMemberAssignmentRecord,
  consumerGroupMemberMetadataRecord,
  consumerGroupMetadataRecord,
  consumerGroupPartitionMetadataRecord,
  consumerGroupTargetAssignmentMemberRecord,
  consumerGroupTargetAssignmentMetadataRecord,
} from './consumer-group-records.js';
import {
  ConsumerGroup,
  ConsumerGroupMember,
  LEAVE_GROUP_MEMBER_EPOCH,
  LEAVE_GROUP_STATIC_MEMBER_EPOCH,
  MemberState,
  type SubscribedTopicMetadata,
  assignmentFromList,
  assignmentToList,
  assignmentsEqual,
  nextMemberAssignment,
  sameMemberAssignmentState,
} from './consumer-group.js';
import type { GroupLog } from './group-log.js';
import { OffsetStore } from './offsets.js';
import type { GroupLogRecord } from './records.js';
import type { Clock, Scheduler, TimerHandle } from './time.js';

export interface ConsumerGroupConfig {
  /** group.consumer.heartbeat.interval.ms */
  heartbeatIntervalMs: number;
  /** group.consumer.session.timeout.ms */
  sessionTimeoutMs: number;
  /** group.consumer.max.size */
  maxSize: number;
  /** group.consumer.assignors (the first is the default) */
  assignors: string[];
}

export const DEFAULT_CONSUMER_GROUP_CONFIG: ConsumerGroupConfig = {
  heartbeatIntervalMs: 5000,
  sessionTimeoutMs: 45000,
  maxSize: 2147483647,
  assignors: [UNIFORM_ASSIGNOR, 'range'],
};

/** What the coordinator needs to know about topics (the broker's TopicManager, or a test double). */
export interface TopicView {
  byName(name: string): { topicId: string; numPartitions: number } | undefined;
  byId(topicId: string): { name: string; numPartitions: number } | undefined;
}

export interface ConsumerGroupHeartbeatParams {
  apiVersion: number;
  groupId: string;
  memberId: string;
  memberEpoch: number;
  instanceId: string | null;
  rackId: string | null;
  rebalanceTimeoutMs: number;
  subscribedTopicNames: string[] | null;
  subscribedTopicRegex: string | null;
  serverAssignor: string | null;
  topicPartitions: { topicId: string; partitions: number[] }[] | null;
  clientId: string;
  clientHost: string;
}

export interface ConsumerGroupHeartbeatResult {
  errorCode: number;
  errorMessage: string | null;
  memberId: string | null;
  memberEpoch: number;
  heartbeatIntervalMs: number;
  assignment: { topicPartitions: { topicId: string; partitions: number[] }[] } | null;
}

export interface DescribedConsumerGroup {
  errorCode: number;
  errorMessage: string | null;
  groupId: string;
  groupState: string;
  groupEpoch: number;
  assignmentEpoch: number;
  assignorName: string;
  members: {
    memberId: string;
    instanceId: string | null;
    rackId: string | null;
    memberEpoch: number;
    clientId: string;
    clientHost: string;
    subscribedTopicNames: string[];
    subscribedTopicRegex: string | null;
    assignment: { topicPartitions: { topicId: string; topicName: string; partitions: number[] }[] };
    targetAssignment: { topicPartitions: { topicId: string; topicName: string; partitions: number[] }[] };
  }[];
}

/** How the consumer-group coordinator reaches its host (GroupCoordinator) and the classic side. */
export interface ConsumerGroupHost {
  log: GroupLog;
  clock: Clock;
  scheduler: Scheduler;
  logger: { info(msg: string): void; warn(msg: string): void; error(msg: string): void };
  partitionFor(groupId: string): number;
  /**
   * INVALID_GROUP_ID / COORDINATOR_NOT_AVAILABLE / COORDINATOR_LOAD_IN_PROGRESS / NOT_COORDINATOR
   * (the group's `__consumer_offsets` partition is not served here), or NONE.
   */
  statusError(groupId: string): number;
  /** 'none' (no classic group), 'empty' (classic group without members) or 'active'. */
  classicGroupStatus(groupId: string): 'none' | 'empty' | 'active';
  /** Removes an empty classic group (writing its tombstone) and hands over its offsets. */
  takeEmptyClassicGroup(groupId: string): { offsets: OffsetStore; records: GroupLogRecord[] };
  /** Rebuilds one group from the log after a failed write. */
  reloadGroup(groupId: string): Promise<void>;
}

class HeartbeatError extends Error {
  constructor(
    readonly errorCode: number,
    message: string,
  ) {
    super(message);
  }
}

function fail(errorCode: number, message: string): never {
  throw new HeartbeatError(errorCode, message);
}

/** Kafka's mapping of a failed group write (classic or consumer group) to the error clients see. */
export function groupStoreError(err: unknown): number {
  if (err instanceof KafkaError) {
    switch (err.errorCode) {
      case ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
      case ErrorCode.NOT_ENOUGH_REPLICAS:
      case ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND:
      case ErrorCode.REQUEST_TIMED_OUT:
        return ErrorCode.COORDINATOR_NOT_AVAILABLE;
      case ErrorCode.NOT_LEADER_OR_FOLLOWER:
      case ErrorCode.KAFKA_STORAGE_ERROR:
        return ErrorCode.NOT_COORDINATOR;
      case ErrorCode.MESSAGE_TOO_LARGE:
      case ErrorCode.RECORD_LIST_TOO_LARGE:
      case ErrorCode.INVALID_FETCH_SIZE:
        return ErrorCode.UNKNOWN_SERVER_ERROR;
      default:
        return err.errorCode;
    }
  }
  return ErrorCode.COORDINATOR_NOT_AVAILABLE;
}

/** Kafka's consumer member ids: a random UUID in URL-safe base64 (22 characters). */
export function newConsumerMemberId(): string {
  return randomBytes(16).toString('base64url');
}

function sortedEqual(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const sa = [...a].sort();
  const sb = [...b].sort();
  return sa.every((x, i) => x === sb[i]);
}

/** Whether reported owned partitions are all in `assigned` (not reported = no). */
function isSubset(
  owned: { topicId: string; partitions: number[] }[] | null,
  assigned: TopicPartitionMap,
): boolean {
  if (owned === null) return false;
  for (const tp of owned) {
    const s = assigned.get(tp.topicId);
    for (const p of tp.partitions) if (!s?.has(p)) return false;
  }
  return true;
}

export class ConsumerGroupCoordinator {
  readonly config: ConsumerGroupConfig;
  readonly groups = new Map<string, ConsumerGroup>();
  /** Groups being rebuilt after a failed write. */
  private readonly reloading = new Set<string>();
  private readonly newMemberId: () => string;

  constructor(
    private readonly host: ConsumerGroupHost,
    config: Partial<ConsumerGroupConfig> = {},
    newMemberId?: () => string,
  ) {
    this.config = { ...DEFAULT_CONSUMER_GROUP_CONFIG, ...config };
    this.newMemberId = newMemberId ?? newConsumerMemberId;
  }

  private now(): number {
    return this.host.clock.nowMs();
  }

  group(groupId: string): ConsumerGroup | undefined {
    const g = this.groups.get(groupId);
    return g && !g.dead ? g : undefined;
  }

  // ---- heartbeat ------------------------------------------------------------------------------

  async heartbeat(p: ConsumerGroupHeartbeatParams, topics: TopicView): Promise<ConsumerGroupHeartbeatResult> {
    const errorResult = (errorCode: number, errorMessage: string | null): ConsumerGroupHeartbeatResult => ({
      errorCode,
      errorMessage,
      memberId: null,
      memberEpoch: 0,
      heartbeatIntervalMs: 0,
      assignment: null,
    });
    const status = this.host.statusError(p.groupId);
    if (status !== ErrorCode.NONE) {
      if (status === ErrorCode.INVALID_GROUP_ID)
        return errorResult(ErrorCode.INVALID_REQUEST, "GroupId can't be empty.");
      return errorResult(status, null);
    }
    if (this.reloading.has(p.groupId)) return errorResult(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, null);
    let outcome: { result: ConsumerGroupHeartbeatResult; records: GroupLogRecord[] };
    try {
      this.validate(p);
      outcome =
        p.memberEpoch === LEAVE_GROUP_MEMBER_EPOCH || p.memberEpoch === LEAVE_GROUP_STATIC_MEMBER_EPOCH
          ? this.leave(p, topics)
          : this.doHeartbeat(p, topics);
    } catch (err) {
      if (err instanceof HeartbeatError) return errorResult(err.errorCode, err.message);
      throw err;
    }
    const error = await this.write(p.groupId, outcome.records);
    if (error !== ErrorCode.NONE) return errorResult(error, null);
    return outcome.result;
  }

  /** Appends records; on failure maps the error and rebuilds the group from the log. */
  private async write(groupId: string, records: GroupLogRecord[]): Promise<number> {
    if (records.length === 0) return ErrorCode.NONE;
    try {
      await this.host.log.append(this.host.partitionFor(groupId), records);
      return ErrorCode.NONE;
    } catch (err) {
      this.host.logger.warn(`consumer group ${groupId}: write failed: ${(err as Error).message}`);
      void this.reload(groupId);
      return groupStoreError(err);
    }
  }

  private async reload(groupId: string): Promise<void> {
    if (this.reloading.has(groupId)) return;
    this.reloading.add(groupId);
    try {
      await this.host.reloadGroup(groupId);
    } catch (err) {
      this.host.logger.error(`consumer group ${groupId}: reload failed: ${(err as Error).message}`);
    } finally {
      this.reloading.delete(groupId);
    }
  }

  /** Kafka's throwIfConsumerGroupHeartbeatRequestIsInvalid. */
  private validate(p: ConsumerGroupHeartbeatParams): void {
    if (p.apiVersion >= 1 && p.memberId === '') fail(ErrorCode.INVALID_REQUEST, "MemberId can't be empty.");
    if (p.instanceId !== null && p.instanceId === '')
      fail(ErrorCode.INVALID_REQUEST, "InstanceId can't be empty.");
    if (p.rackId !== null && p.rackId === '') fail(ErrorCode.INVALID_REQUEST, "RackId can't be empty.");
    if (p.memberEpoch === 0) {
      if (p.rebalanceTimeoutMs === -1)
        fail(ErrorCode.INVALID_REQUEST, 'RebalanceTimeoutMs must be provided in first request.');
      if (p.topicPartitions === null || p.topicPartitions.length > 0)
        fail(ErrorCode.INVALID_REQUEST, 'TopicPartitions must be empty when (re-)joining.');
      if ((p.subscribedTopicNames === null || p.subscribedTopicNames.length === 0) && !p.subscribedTopicRegex)
        fail(
          ErrorCode.INVALID_REQUEST,
          'SubscribedTopicNames or SubscribedTopicRegex must be set in first request.',
        );
    } else if (p.memberEpoch === LEAVE_GROUP_STATIC_MEMBER_EPOCH) {
      if (p.instanceId === null) fail(ErrorCode.INVALID_REQUEST, "InstanceId can't be null.");
    } else if (p.memberEpoch < LEAVE_GROUP_STATIC_MEMBER_EPOCH) {
      fail(ErrorCode.INVALID_REQUEST, 'MemberEpoch is invalid.');
    }
    if (p.memberEpoch !== 0 && p.memberId === '') fail(ErrorCode.INVALID_REQUEST, "MemberId can't be empty.");
    if (p.subscribedTopicRegex !== null && p.subscribedTopicRegex !== '')
      fail(
        ErrorCode.INVALID_REQUEST,
        'SubscribedTopicRegex is not supported by Sluice; subscribe to topic names.',
      );
    if (p.serverAssignor !== null && !this.config.assignors.includes(p.serverAssignor))
      fail(
        ErrorCode.UNSUPPORTED_ASSIGNOR,
        `ServerAssignor ${p.serverAssignor} is not supported. Supported assignors: ${this.config.assignors.join(', ')}.`,
      );
  }

  private doHeartbeat(
    p: ConsumerGroupHeartbeatParams,
    topics: TopicView,
  ): { result: ConsumerGroupHeartbeatResult; records: GroupLogRecord[] } {
    const records: GroupLogRecord[] = [];
    const now = this.now();
    const joining = p.memberEpoch === 0;
    let g = this.group(p.groupId);
    if (!g) {
      const classic = this.host.classicGroupStatus(p.groupId);
      if (classic === 'active' || (classic === 'empty' && !joining))
        fail(ErrorCode.GROUP_ID_NOT_FOUND, `Group ${p.groupId} is not a consumer group.`);
      if (!joining) fail(ErrorCode.GROUP_ID_NOT_FOUND, `Consumer group ${p.groupId} not found.`);
      let offsets = new OffsetStore();
      if (classic === 'empty') {
        const taken = this.host.takeEmptyClassicGroup(p.groupId);
        offsets = taken.offsets;
        records.push(...taken.records);
      }
      g = new ConsumerGroup(p.groupId, now, offsets);
      this.groups.set(p.groupId, g);
      this.host.logger.info(`consumer group ${p.groupId}: created`);
    }
    const group = g;

    // ---- find or create the member
    let member: ConsumerGroupMember | undefined;
    let isNew = false;
    let replacedStatic: ConsumerGroupMember | undefined;
    const memberId = p.memberId === '' ? this.newMemberId() : p.memberId;
    if (joining) {
      if (p.instanceId !== null) {
        const existingId = group.staticMembers.get(p.instanceId);
        const existing = existingId === undefined ? undefined : group.members.get(existingId);
        if (existing && existing.memberId !== memberId) {
          if (existing.memberEpoch !== LEAVE_GROUP_STATIC_MEMBER_EPOCH)
            fail(
              ErrorCode.UNRELEASED_INSTANCE_ID,
              `Static member ${memberId} with instance id ${p.instanceId} cannot join the group because the instance id is owned by member ${existing.memberId}.`,
            );
          replacedStatic = existing;
        } else if (existing) {
          member = existing;
        }
      }
      member ??= group.members.get(memberId);
      if (!member) {
        if (!replacedStatic && group.members.size >= this.config.maxSize)
          fail(
            ErrorCode.GROUP_MAX_SIZE_REACHED,
            `The consumer group has reached its maximum capacity of ${this.config.maxSize} members.`,
          );
        member = new ConsumerGroupMember(memberId);
        isNew = true;
      }
    } else {
      if (p.instanceId !== null) {
        const staticId = group.staticMembers.get(p.instanceId);
        if (staticId === undefined)
          fail(ErrorCode.UNKNOWN_MEMBER_ID, `Instance id ${p.instanceId} is unknown.`);
        if (staticId !== memberId)
          fail(
            ErrorCode.FENCED_INSTANCE_ID,
            `Static member ${memberId} with instance id ${p.instanceId} was fenced by member ${staticId}.`,
          );
      }
      member = group.members.get(memberId);
      if (!member)
        fail(ErrorCode.UNKNOWN_MEMBER_ID, `Member ${memberId} is not a member of group ${p.groupId}.`);
      this.checkMemberEpoch(member, p.memberEpoch, p.topicPartitions);
    }
    const m = member;

    // ---- member metadata (subscription, assignor, ...)
    const before = {
      names: m.subscribedTopicNames,
      assignor: m.serverAssignor,
      meta: isNew ? null : this.memberMetadataValue(m),
    };
    if (replacedStatic) {
      // The new instance takes over the departed one's assignment and target (no rebalance).
      m.subscribedTopicNames = replacedStatic.subscribedTopicNames;
      m.serverAssignor = replacedStatic.serverAssignor;
      m.rackId = replacedStatic.rackId;
      m.rebalanceTimeoutMs = replacedStatic.rebalanceTimeoutMs;
      m.instanceId = replacedStatic.instanceId;
      before.names = m.subscribedTopicNames;
      before.assignor = m.serverAssignor;
    }
    if (p.instanceId !== null) m.instanceId = p.instanceId;
    if (p.rackId !== null) m.rackId = p.rackId;
    if (p.rebalanceTimeoutMs !== -1) m.rebalanceTimeoutMs = p.rebalanceTimeoutMs;
    if (p.subscribedTopicNames !== null) m.subscribedTopicNames = [...p.subscribedTopicNames];
    if (p.serverAssignor !== null) m.serverAssignor = p.serverAssignor;
    m.clientId = p.clientId;
    m.clientHost = p.clientHost;
    const subscriptionChanged =
      (isNew && !replacedStatic) ||
      !sortedEqual(before.names, m.subscribedTopicNames) ||
      before.assignor !== m.serverAssignor;

    let bumpGroupEpoch = isNew && !replacedStatic;
    if (replacedStatic) {
      const target = group.targetAssignment.get(replacedStatic.memberId);
      records.push(...this.removeMemberRecords(group, replacedStatic, now));
      m.memberEpoch = 0;
      m.previousMemberEpoch = 0;
      m.state = MemberState.STABLE;
      m.assigned = new Map(replacedStatic.assigned);
      m.pendingRevocation = new Map();
      group.addMember(m);
      if (target) {
        group.targetAssignment.set(m.memberId, target);
        records.push(this.targetRecord(group.groupId, m.memberId, target));
      }
      this.host.logger.info(
        `consumer group ${group.groupId}: static member ${m.instanceId} rejoined as ${m.memberId} (replacing ${replacedStatic.memberId})`,
      );
      if (subscriptionChanged) bumpGroupEpoch = true;
    } else if (isNew) {
      group.addMember(m);
      this.host.logger.info(`consumer group ${group.groupId}: member ${m.memberId} joined`);
    } else if (joining) {
      // A known member rejoining with epoch 0 owns nothing (it says so): it starts over.
      group.updateMember(m, {
        memberEpoch: 0,
        previousMemberEpoch: 0,
        state: MemberState.STABLE,
        assigned: new Map(),
        pendingRevocation: new Map(),
      });
      records.push(this.currentRecord(group.groupId, m));
    }
    if (!isNew && !replacedStatic && subscriptionChanged) bumpGroupEpoch = true;
    const metaValue = this.memberMetadataValue(m);
    if (before.meta === null || replacedStatic || JSON.stringify(before.meta) !== JSON.stringify(metaValue))
      records.push(consumerGroupMemberMetadataRecord(group.groupId, m.memberId, metaValue));

    // ---- subscription metadata and group epoch
    if (this.refreshSubscriptionMetadata(group, topics, records)) bumpGroupEpoch = true;
    if (bumpGroupEpoch) {
      group.groupEpoch++;
      records.push(consumerGroupMetadataRecord(group.groupId, { epoch: group.groupEpoch }));
    }

    // ---- target assignment
    if (group.groupEpoch > group.assignmentEpoch) this.updateTargetAssignment(group, records);

    // ---- reconcile this member
    const target = group.targetAssignment.get(m.memberId) ?? new Map<string, Set<number>>();
    const owned = p.topicPartitions === null ? null : assignmentFromList(p.topicPartitions);
    const assignedBefore = new Map(m.assigned);
    this.reconcile(group, m, target, owned, records);

    this.scheduleSession(group, m);
    const fullRequest =
      p.rebalanceTimeoutMs !== -1 && p.subscribedTopicNames !== null && p.topicPartitions !== null;
    const sendAssignment = joining || fullRequest || !assignmentsEqual(assignedBefore, m.assigned);
    return {
      records,
      result: {
        errorCode: ErrorCode.NONE,
        errorMessage: null,
        memberId: m.memberId,
        memberEpoch: m.memberEpoch,
        heartbeatIntervalMs: this.config.heartbeatIntervalMs,
        assignment: sendAssignment ? { topicPartitions: assignmentToList(m.assigned) } : null,
      },
    };
  }

  /** Kafka's throwIfMemberEpochIsInvalid. */
  private checkMemberEpoch(
    m: ConsumerGroupMember,
    received: number,
    owned: { topicId: string; partitions: number[] }[] | null,
  ): void {
    if (received > m.memberEpoch)
      fail(
        ErrorCode.FENCED_MEMBER_EPOCH,
        `The consumer group member has a greater epoch (${received}) than the one known by the group coordinator (${m.memberEpoch}). The member must abandon all its partitions and rejoin.`,
      );
    if (received < m.memberEpoch) {
      // The response that bumped the epoch may have been lost: accept the previous epoch if the
      // member owns a subset of what it is assigned now.
      if (received !== m.previousMemberEpoch || !isSubset(owned, m.assigned))
        fail(
          ErrorCode.FENCED_MEMBER_EPOCH,
          `The consumer group member has a smaller epoch (${received}) than the one known by the group coordinator (${m.memberEpoch}). The member must abandon all its partitions and rejoin.`,
        );
    }
  }

  private memberMetadataValue(m: ConsumerGroupMember): ConsumerGroupMemberMetadataValue {
    return {
      instanceId: m.instanceId,
      rackId: m.rackId,
      clientId: m.clientId,
      clientHost: m.clientHost,
      subscribedTopicNames: [...m.subscribedTopicNames],
      subscribedTopicRegex: m.subscribedTopicRegex,
      rebalanceTimeoutMs: m.rebalanceTimeoutMs,
      serverAssignor: m.serverAssignor,
      classicMemberMetadata: null,
    };
  }

  private targetRecord(groupId: string, memberId: string, target: TopicPartitionMap): GroupLogRecord {
    return consumerGroupTargetAssignmentMemberRecord(groupId, memberId, {
      topicPartitions: assignmentToList(target),
    });
  }

  private currentRecord(groupId: string, m: ConsumerGroupMember): GroupLogRecord {
    return consumerGroupCurrentMemberAssignmentRecord(groupId, m.memberId, {
      memberEpoch: m.memberEpoch,
      previousMemberEpoch: m.previousMemberEpoch,
      state: m.state,
      assignedPartitions: assignmentToList(m.assigned),
      partitionsPendingRevocation: assignmentToList(m.pendingRevocation),
    });
  }

  /**
   * Recomputes the metadata of every subscribed topic; returns true (and adds the record) when it
   * changed, which bumps the group epoch.
   */
  private refreshSubscriptionMetadata(
    g: ConsumerGroup,
    topics: TopicView,
    records: GroupLogRecord[],
  ): boolean {
    const next = new Map<string, SubscribedTopicMetadata>();
    for (const name of [...g.subscribedTopicNames()].sort()) {
      const t = topics.byName(name);
      if (t) next.set(name, { topicId: t.topicId, topicName: name, numPartitions: t.numPartitions });
    }
    let same = next.size === g.subscriptionMetadata.size;
    if (same)
      for (const [name, t] of next) {
        const o = g.subscriptionMetadata.get(name);
        if (!o || o.topicId !== t.topicId || o.numPartitions !== t.numPartitions) {
          same = false;
          break;
        }
      }
    if (same) return false;
    g.subscriptionMetadata = next;
    records.push(
      consumerGroupPartitionMetadataRecord(g.groupId, {
        topics: [...next.values()].map((t) => ({
          topicId: t.topicId,
          topicName: t.topicName,
          numPartitions: t.numPartitions,
          partitionMetadata: [],
        })),
      }),
    );
    return true;
  }

  /** Computes the target assignment for the group epoch (Kafka's TargetAssignmentBuilder). */
  private updateTargetAssignment(g: ConsumerGroup, records: GroupLogRecord[]): void {
    const assignorName = g.preferredAssignor(this.config.assignors[0] ?? UNIFORM_ASSIGNOR);
    const assignor = SERVER_ASSIGNORS.get(assignorName) ?? SERVER_ASSIGNORS.get(UNIFORM_ASSIGNOR);
    if (!assignor) return;
    const topicsById = new Map<string, number>();
    for (const t of g.subscriptionMetadata.values()) topicsById.set(t.topicId, t.numPartitions);
    const spec: GroupSpec = {
      topics: topicsById,
      members: [...g.members.values()].map((m) => ({
        memberId: m.memberId,
        subscribedTopicIds: new Set(
          m.subscribedTopicNames
            .map((n) => g.subscriptionMetadata.get(n)?.topicId)
            .filter((id): id is string => id !== undefined),
        ),
        previous: g.targetAssignment.get(m.memberId) ?? new Map(),
      })),
    };
    let result: GroupAssignment;
    try {
      result = assignor.assign(spec);
    } catch (err) {
      this.host.logger.error(
        `consumer group ${g.groupId}: assignor ${assignorName} failed: ${(err as Error).message}`,
      );
      return;
    }
    for (const m of g.members.values()) {
      const next = result.get(m.memberId) ?? new Map<string, Set<number>>();
      const prev = g.targetAssignment.get(m.memberId);
      if (!prev || !assignmentsEqual(prev, next))
        records.push(this.targetRecord(g.groupId, m.memberId, next));
      g.targetAssignment.set(m.memberId, next);
    }
    g.assignmentEpoch = g.groupEpoch;
    records.push(
      consumerGroupTargetAssignmentMetadataRecord(g.groupId, { assignmentEpoch: g.assignmentEpoch }),
    );
  }

  /** One reconciliation step of a member; writes its current assignment when it changes. */
  private reconcile(
    g: ConsumerGroup,
    m: ConsumerGroupMember,
    target: TopicPartitionMap,
    owned: TopicPartitionMap | null,
    records: GroupLogRecord[],
  ): void {
    if (m.memberEpoch === LEAVE_GROUP_STATIC_MEMBER_EPOCH) return;
    const current = m.snapshot();
    const next = nextMemberAssignment(current, g.assignmentEpoch, target, owned, (t, p) =>
      g.currentPartitionEpoch(t, p),
    );
    if (sameMemberAssignmentState(current, next)) return;
    g.updateMember(m, next);
    records.push(this.currentRecord(g.groupId, m));
    if (m.state === MemberState.UNREVOKED_PARTITIONS) this.scheduleRebalanceTimeout(g, m);
    else this.clearRebalanceTimeout(m);
  }

  // ---- leaving and fencing --------------------------------------------------------------------

  private leave(
    p: ConsumerGroupHeartbeatParams,
    topics: TopicView,
  ): { result: ConsumerGroupHeartbeatResult; records: GroupLogRecord[] } {
    const g = this.group(p.groupId);
    if (!g) {
      if (this.host.classicGroupStatus(p.groupId) !== 'none')
        fail(ErrorCode.GROUP_ID_NOT_FOUND, `Group ${p.groupId} is not a consumer group.`);
      fail(ErrorCode.GROUP_ID_NOT_FOUND, `Consumer group ${p.groupId} not found.`);
    }
    let m: ConsumerGroupMember | undefined;
    if (p.instanceId !== null) {
      const staticId = g.staticMembers.get(p.instanceId);
      if (staticId === undefined)
        fail(ErrorCode.UNKNOWN_MEMBER_ID, `Instance id ${p.instanceId} is unknown.`);
      if (staticId !== p.memberId)
        fail(
          ErrorCode.FENCED_INSTANCE_ID,
          `Static member ${p.memberId} with instance id ${p.instanceId} was fenced by member ${staticId}.`,
        );
      m = g.members.get(staticId);
    } else {
      m = g.members.get(p.memberId);
    }
    if (!m) fail(ErrorCode.UNKNOWN_MEMBER_ID, `Member ${p.memberId} is not a member of group ${p.groupId}.`);
    const records: GroupLogRecord[] = [];
    if (p.memberEpoch === LEAVE_GROUP_STATIC_MEMBER_EPOCH) {
      // A static member leaving temporarily keeps its assignment until its session expires.
      this.host.logger.info(
        `consumer group ${g.groupId}: static member ${m.instanceId} (${m.memberId}) left temporarily`,
      );
      this.clearRebalanceTimeout(m);
      g.updateMember(m, { ...m.snapshot(), memberEpoch: LEAVE_GROUP_STATIC_MEMBER_EPOCH });
      records.push(this.currentRecord(g.groupId, m));
    } else {
      this.host.logger.info(`consumer group ${g.groupId}: member ${m.memberId} left`);
      records.push(...this.fenceRecords(g, m, topics));
    }
    return {
      records,
      result: {
        errorCode: ErrorCode.NONE,
        errorMessage: null,
        memberId: m.memberId,
        memberEpoch: p.memberEpoch,
        heartbeatIntervalMs: 0,
        assignment: null,
      },
    };
  }

  /** Removes a member (tombstones) without bumping the epoch. */
  private removeMemberRecords(g: ConsumerGroup, m: ConsumerGroupMember, now: number): GroupLogRecord[] {
    this.clearSession(m);
    this.clearRebalanceTimeout(m);
    g.removeMember(m.memberId, now);
    return [
      consumerGroupCurrentMemberAssignmentRecord(g.groupId, m.memberId, null),
      consumerGroupTargetAssignmentMemberRecord(g.groupId, m.memberId, null),
      consumerGroupMemberMetadataRecord(g.groupId, m.memberId, null),
    ];
  }

  /** Removes a member and bumps the group epoch (leave, session or rebalance timeout). */
  private fenceRecords(g: ConsumerGroup, m: ConsumerGroupMember, topics: TopicView | null): GroupLogRecord[] {
    const records = this.removeMemberRecords(g, m, this.now());
    if (topics) this.refreshSubscriptionMetadata(g, topics, records);
    else this.dropUnsubscribedTopics(g, records);
    g.groupEpoch++;
    records.push(consumerGroupMetadataRecord(g.groupId, { epoch: g.groupEpoch }));
    return records;
  }

  /** Without a topic view (timers), keep metadata for the topics still subscribed. */
  private dropUnsubscribedTopics(g: ConsumerGroup, records: GroupLogRecord[]): void {
    const subscribed = g.subscribedTopicNames();
    const next = new Map([...g.subscriptionMetadata].filter(([name]) => subscribed.has(name)));
    if (next.size === g.subscriptionMetadata.size) return;
    g.subscriptionMetadata = next;
    records.push(
      consumerGroupPartitionMetadataRecord(g.groupId, {
        topics: [...next.values()].map((t) => ({ ...t, partitionMetadata: [] })),
      }),
    );
  }

  private fenceFromTimer(g: ConsumerGroup, m: ConsumerGroupMember, why: string): void {
    if (this.groups.get(g.groupId) !== g || g.members.get(m.memberId) !== m) return;
    this.host.logger.info(`consumer group ${g.groupId}: member ${m.memberId} fenced (${why})`);
    const records = this.fenceRecords(g, m, null);
    void this.write(g.groupId, records);
  }

  private clearSession(m: ConsumerGroupMember): void {
    if (m.sessionTimer !== null) this.host.scheduler.clearTimeout(m.sessionTimer as TimerHandle);
    m.sessionTimer = null;
  }

  scheduleSession(g: ConsumerGroup, m: ConsumerGroupMember): void {
    this.clearSession(m);
    m.sessionTimer = this.host.scheduler.setTimeout(() => {
      m.sessionTimer = null;
      this.fenceFromTimer(g, m, `session timeout ${this.config.sessionTimeoutMs} ms`);
    }, this.config.sessionTimeoutMs);
  }

  private clearRebalanceTimeout(m: ConsumerGroupMember): void {
    if (m.rebalanceTimer !== null) this.host.scheduler.clearTimeout(m.rebalanceTimer as TimerHandle);
    m.rebalanceTimer = null;
  }

  /** Fences the member if it still has not revoked at this epoch when the timeout expires. */
  scheduleRebalanceTimeout(g: ConsumerGroup, m: ConsumerGroupMember): void {
    this.clearRebalanceTimeout(m);
    const epoch = m.memberEpoch;
    const timeout = m.rebalanceTimeoutMs > 0 ? m.rebalanceTimeoutMs : this.config.sessionTimeoutMs;
    m.rebalanceTimer = this.host.scheduler.setTimeout(() => {
      m.rebalanceTimer = null;
      if (m.state === MemberState.UNREVOKED_PARTITIONS && m.memberEpoch === epoch)
        this.fenceFromTimer(g, m, `did not revoke partitions within the rebalance timeout of ${timeout} ms`);
    }, timeout);
  }

  // ---- loading --------------------------------------------------------------------------------

  /**
   * Removes the matching consumer groups (before a replay rebuilds one, or when their partition is
   * unloaded) and cancels their timers. They are marked dead, so work still in flight for them
   * (a write, an offset expiration pass) does not change them.
   */
  dropGroups(filter: (groupId: string) => boolean): void {
    for (const [id, g] of [...this.groups]) {
      if (!filter(id)) continue;
      for (const m of g.members.values()) {
        this.clearSession(m);
        this.clearRebalanceTimeout(m);
      }
      g.dead = true;
      this.groups.delete(id);
    }
  }

  /** Builds groups from replayed records (in log order); returns the ids of groups built. */
  applyReplay(recordsByGroup: Map<string, ConsumerGroupRecord[]>): Set<string> {
    const now = this.now();
    const built = new Set<string>();
    for (const [groupId, recs] of recordsByGroup) {
      let g: ConsumerGroup | null = null;
      const metas = new Map<string, ConsumerGroupMemberMetadataValue>();
      const currents = new Map<
        string,
        NonNullable<Extract<ConsumerGroupRecord, { kind: 'current' }>['value']>
      >();
      const targets = new Map<string, TopicPartitionMap>();
      const ensure = () => {
        g ??= new ConsumerGroup(groupId, now, new OffsetStore());
        return g;
      };
      for (const r of recs) {
        switch (r.kind) {
          case 'group':
            if (r.value === null) {
              g = null;
              metas.clear();
              currents.clear();
              targets.clear();
            } else ensure().groupEpoch = r.value.epoch;
            break;
          case 'partitions':
            if (r.value !== null)
              ensure().subscriptionMetadata = new Map(
                r.value.topics.map((t) => [
                  t.topicName,
                  { topicId: t.topicId, topicName: t.topicName, numPartitions: t.numPartitions },
                ]),
              );
            else if (g) (g as ConsumerGroup).subscriptionMetadata = new Map();
            break;
          case 'member':
            if (r.value === null) {
              metas.delete(r.memberId);
              currents.delete(r.memberId);
              targets.delete(r.memberId);
            } else {
              ensure();
              metas.set(r.memberId, r.value);
            }
            break;
          case 'targetEpoch':
            if (r.value !== null) ensure().assignmentEpoch = r.value.assignmentEpoch;
            break;
          case 'target':
            if (r.value === null) targets.delete(r.memberId);
            else {
              ensure();
              targets.set(r.memberId, assignmentFromList(r.value.topicPartitions));
            }
            break;
          case 'current':
            if (r.value === null) currents.delete(r.memberId);
            else {
              ensure();
              currents.set(r.memberId, r.value);
            }
            break;
        }
      }
      const group = g as ConsumerGroup | null;
      if (!group) continue;
      for (const [memberId, meta] of metas) {
        const m = new ConsumerGroupMember(memberId);
        m.instanceId = meta.instanceId;
        m.rackId = meta.rackId;
        m.clientId = meta.clientId;
        m.clientHost = meta.clientHost;
        m.subscribedTopicNames = [...meta.subscribedTopicNames];
        m.subscribedTopicRegex = meta.subscribedTopicRegex;
        m.rebalanceTimeoutMs = meta.rebalanceTimeoutMs;
        m.serverAssignor = meta.serverAssignor;
        const c = currents.get(memberId);
        if (c) {
          m.memberEpoch = c.memberEpoch;
          m.previousMemberEpoch = c.previousMemberEpoch;
          m.state =
            c.state === MemberState.UNREVOKED_PARTITIONS || c.state === MemberState.UNRELEASED_PARTITIONS
              ? c.state
              : MemberState.STABLE;
          m.assigned = assignmentFromList(c.assignedPartitions);
          m.pendingRevocation = assignmentFromList(c.partitionsPendingRevocation);
        }
        group.addMember(m);
        const t = targets.get(memberId);
        if (t) group.targetAssignment.set(memberId, t);
      }
      this.groups.set(groupId, group);
      built.add(groupId);
      // Kafka schedules every loaded member's session timeout (and rebalance timeout while it
      // still has partitions to revoke): members that are gone are fenced after it.
      for (const m of group.members.values()) {
        this.scheduleSession(group, m);
        if (m.state === MemberState.UNREVOKED_PARTITIONS) this.scheduleRebalanceTimeout(group, m);
      }
    }
    return built;
  }

  shutdown(): void {
    for (const g of this.groups.values())
      for (const m of g.members.values()) {
        this.clearSession(m);
        this.clearRebalanceTimeout(m);
      }
  }

  // ---- describe / list / delete / offsets -------------------------------------------------------

  describe(groupId: string, topics: TopicView): DescribedConsumerGroup {
    const base: DescribedConsumerGroup = {
      errorCode: ErrorCode.NONE,
      errorMessage: null,
      groupId,
      groupState: '',
      groupEpoch: 0,
      assignmentEpoch: 0,
      assignorName: '',
      members: [],
    };
    const status = this.host.statusError(groupId);
    if (status !== ErrorCode.NONE) return { ...base, errorCode: status };
    const g = this.group(groupId);
    if (!g) {
      const classic = this.host.classicGroupStatus(groupId) !== 'none';
      return {
        ...base,
        errorCode: ErrorCode.GROUP_ID_NOT_FOUND,
        errorMessage: classic ? `Group ${groupId} is not a consumer group.` : `Group ${groupId} not found.`,
      };
    }
    const named = (m: TopicPartitionMap) =>
      assignmentToList(m).map((tp) => ({
        topicId: tp.topicId,
        topicName: topics.byId(tp.topicId)?.name ?? '',
        partitions: tp.partitions,
      }));
    return {
      ...base,
      groupState: g.state,
      groupEpoch: g.groupEpoch,
      assignmentEpoch: g.assignmentEpoch,
      assignorName: g.preferredAssignor(this.config.assignors[0] ?? UNIFORM_ASSIGNOR),
      members: [...g.members.values()].map((m) => ({
        memberId: m.memberId,
        instanceId: m.instanceId,
        rackId: m.rackId,
        memberEpoch: m.memberEpoch,
        clientId: m.clientId,
        clientHost: m.clientHost,
        subscribedTopicNames: [...m.subscribedTopicNames],
        subscribedTopicRegex: m.subscribedTopicRegex,
        assignment: { topicPartitions: named(m.assigned) },
        targetAssignment: { topicPartitions: named(g.targetAssignment.get(m.memberId) ?? new Map()) },
      })),
    };
  }

  /**
   * Kafka's ConsumerGroup.validateOffsetCommit: a commit without member (epoch < 0) only while
   * the group has no members; otherwise the member must exist (UNKNOWN_MEMBER_ID), use
   * OffsetCommit v9+ (UNSUPPORTED_VERSION) and send its current epoch (STALE_MEMBER_EPOCH).
   */
  validateOffsetCommit(g: ConsumerGroup, memberId: string, memberEpoch: number, apiVersion: number): number {
    if (memberEpoch < 0 && g.members.size === 0) return ErrorCode.NONE;
    const m = g.members.get(memberId);
    if (!m) return ErrorCode.UNKNOWN_MEMBER_ID;
    if (apiVersion < 9) return ErrorCode.UNSUPPORTED_VERSION;
    if (memberEpoch !== m.memberEpoch) return ErrorCode.STALE_MEMBER_EPOCH;
    return ErrorCode.NONE;
  }

  /** Kafka's ConsumerGroup.validateOffsetFetch (OffsetFetch v9 with member id and epoch). */
  validateOffsetFetch(g: ConsumerGroup, memberId: string | null, memberEpoch: number): number {
    if (memberId === null && memberEpoch < 0) return ErrorCode.NONE;
    const m = memberId === null ? undefined : g.members.get(memberId);
    if (!m) return ErrorCode.UNKNOWN_MEMBER_ID;
    if (memberEpoch !== m.memberEpoch) return ErrorCode.STALE_MEMBER_EPOCH;
    return ErrorCode.NONE;
  }

  /** The tombstones that delete a group (Kafka's createGroupTombstoneRecords order). */
  deletionRecords(g: ConsumerGroup): GroupLogRecord[] {
    const records: GroupLogRecord[] = [];
    for (const m of g.members.values()) {
      records.push(consumerGroupCurrentMemberAssignmentRecord(g.groupId, m.memberId, null));
      records.push(consumerGroupTargetAssignmentMemberRecord(g.groupId, m.memberId, null));
      records.push(consumerGroupMemberMetadataRecord(g.groupId, m.memberId, null));
    }
    records.push(consumerGroupTargetAssignmentMetadataRecord(g.groupId, null));
    records.push(consumerGroupPartitionMetadataRecord(g.groupId, null));
    records.push(consumerGroupMetadataRecord(g.groupId, null));
    return records;
  }

  /** Forgets a group whose tombstones were written. */
  removeGroup(g: ConsumerGroup): void {
    for (const m of g.members.values()) {
      this.clearSession(m);
      this.clearRebalanceTimeout(m);
    }
    g.dead = true;
    if (this.groups.get(g.groupId) === g) this.groups.delete(g.groupId);
  }
}
