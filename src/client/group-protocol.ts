/**
 * What the group consumer and the admin client share about consumer groups: finding a group's
 * coordinator, the consumer protocol's embedded formats (subscription and assignment, each an
 * int16 version followed by the struct), Kafka's "range" and "roundrobin" assignors, and the
 * OffsetFetch / OffsetCommit calls across their request versions.
 *
 * Invariants:
 * - Embedded metadata is read at min(written version, highest version we know): newer versions
 *   only append fields, so an old reader reads the prefix it knows (what Kafka's clients do).
 * - Assignors are deterministic functions of (members, subscriptions, partition counts): members
 *   are ordered by group instance id when they have one, else by member id (Kafka's MemberInfo
 *   order), topics by name, partitions by number; every partition of a subscribed topic goes to
 *   exactly one member subscribed to that topic.
 * - A coordinator lookup retries COORDINATOR_NOT_AVAILABLE / COORDINATOR_LOAD_IN_PROGRESS (a
 *   coordinator still loading its offsets partition) with backoff, then gives up with the error.
 */

import { ErrorCode } from '../protocol/errors.js';
import {
  ConsumerProtocolAssignmentVersions,
  decodeConsumerProtocolAssignment,
  encodeConsumerProtocolAssignment,
} from '../protocol/generated/consumer-protocol-assignment.js';
import {
  ConsumerProtocolSubscriptionVersions,
  decodeConsumerProtocolSubscription,
  encodeConsumerProtocolSubscription,
} from '../protocol/generated/consumer-protocol-subscription.js';
import { ApiKey } from '../protocol/generated/index.js';
import { Reader, Writer } from '../protocol/primitives.js';
import { type Cluster, sleep } from './cluster.js';
import type { Connection } from './connection.js';
import { SluiceClientError, kafkaError } from './errors.js';

/** The protocol type of groups of consumers (as opposed to e.g. Kafka Connect workers). */
export const CONSUMER_PROTOCOL_TYPE = 'consumer';

export type AssignorName = 'range' | 'roundrobin';
export const ASSIGNORS: readonly AssignorName[] = ['range', 'roundrobin'];

export interface TopicPartitions {
  topic: string;
  partitions: number[];
}

export interface Subscription {
  /** Version of the embedded struct (0-3). */
  version: number;
  topics: string[];
  userData: Buffer | null;
  ownedPartitions: TopicPartitions[];
  generationId: number;
  rackId: string | null;
}

export interface MemberAssignment {
  version: number;
  assignedPartitions: TopicPartitions[];
  userData: Buffer | null;
}

// ---------------------------------------------------------------------------------------------
// Embedded formats

export function encodeSubscription(
  s: Partial<Omit<Subscription, 'version'>> & { topics: string[] },
  version: number = ConsumerProtocolSubscriptionVersions.max,
): Buffer {
  const w = new Writer(64);
  w.int16(version);
  encodeConsumerProtocolSubscription(
    w,
    {
      topics: s.topics,
      userData: s.userData ?? null,
      ownedPartitions: s.ownedPartitions ?? [],
      generationId: s.generationId ?? -1,
      rackId: s.rackId ?? null,
    },
    version,
  );
  return Buffer.from(w.view());
}

/** A member's subscription; null when the bytes are not a consumer-protocol subscription. */
export function decodeSubscription(buf: Buffer): Subscription | null {
  if (buf.length < 2) return null;
  try {
    const r = new Reader(buf);
    const version = r.int16();
    if (version < 0) return null;
    const s = decodeConsumerProtocolSubscription(
      r,
      Math.min(version, ConsumerProtocolSubscriptionVersions.max),
    );
    return {
      version,
      topics: s.topics,
      userData: s.userData,
      ownedPartitions: s.ownedPartitions.map((p) => ({ topic: p.topic, partitions: p.partitions })),
      generationId: s.generationId,
      rackId: s.rackId,
    };
  } catch {
    return null;
  }
}

export function encodeAssignment(
  assigned: TopicPartitions[],
  version: number = ConsumerProtocolAssignmentVersions.max,
  userData: Buffer | null = null,
): Buffer {
  const w = new Writer(64);
  w.int16(version);
  encodeConsumerProtocolAssignment(w, { assignedPartitions: assigned, userData }, version);
  return Buffer.from(w.view());
}

/** A member's assignment; null for an empty buffer (no assignment yet) or unparsable bytes. */
export function decodeAssignment(buf: Buffer): MemberAssignment | null {
  if (buf.length < 2) return null;
  try {
    const r = new Reader(buf);
    const version = r.int16();
    if (version < 0) return null;
    const a = decodeConsumerProtocolAssignment(r, Math.min(version, ConsumerProtocolAssignmentVersions.max));
    return {
      version,
      assignedPartitions: a.assignedPartitions.map((p) => ({
        topic: p.topic,
        partitions: [...p.partitions].sort((x, y) => x - y),
      })),
      userData: a.userData,
    };
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Assignors

export interface AssignorMember {
  memberId: string;
  groupInstanceId: string | null;
  topics: string[];
}

/** Kafka's MemberInfo order: members with a group instance id first, by it; then by member id. */
function memberOrder(a: AssignorMember, b: AssignorMember): number {
  if (a.groupInstanceId !== null && b.groupInstanceId !== null) {
    if (a.groupInstanceId !== b.groupInstanceId) return a.groupInstanceId < b.groupInstanceId ? -1 : 1;
  } else if (a.groupInstanceId !== null) {
    return -1;
  } else if (b.groupInstanceId !== null) {
    return 1;
  }
  return a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0;
}

function addTo(out: Map<string, Map<string, number[]>>, memberId: string, topic: string, partition: number) {
  const byTopic = out.get(memberId)!;
  const list = byTopic.get(topic) ?? [];
  list.push(partition);
  byTopic.set(topic, list);
}

function toResult(out: Map<string, Map<string, number[]>>): Map<string, TopicPartitions[]> {
  const result = new Map<string, TopicPartitions[]>();
  for (const [memberId, byTopic] of out) {
    result.set(
      memberId,
      [...byTopic.keys()].sort().map((topic) => ({
        topic,
        partitions: [...byTopic.get(topic)!].sort((a, b) => a - b),
      })),
    );
  }
  return result;
}

/**
 * Runs an assignor. `partitionCounts` holds the partition count of every subscribed topic that
 * exists (topics missing from it are skipped). Every member gets an entry, possibly empty.
 */
export function assign(
  assignor: AssignorName,
  members: AssignorMember[],
  partitionCounts: Map<string, number>,
): Map<string, TopicPartitions[]> {
  const sorted = [...members].sort(memberOrder);
  const out = new Map<string, Map<string, number[]>>(sorted.map((m) => [m.memberId, new Map()]));
  const topics = [...new Set(sorted.flatMap((m) => m.topics))].filter((t) => partitionCounts.has(t)).sort();
  if (assignor === 'range') {
    // Per topic: consumers in order, each a contiguous range; the first (n % c) get one more.
    for (const topic of topics) {
      const consumers = sorted.filter((m) => m.topics.includes(topic));
      const n = partitionCounts.get(topic)!;
      const per = Math.floor(n / consumers.length);
      const extra = n % consumers.length;
      consumers.forEach((m, i) => {
        const start = per * i + Math.min(i, extra);
        const length = per + (i < extra ? 1 : 0);
        for (let p = start; p < start + length; p++) addTo(out, m.memberId, topic, p);
      });
    }
  } else {
    // All partitions in (topic, partition) order, dealt round-robin to the members, skipping
    // members not subscribed to the partition's topic.
    let next = 0;
    for (const topic of topics) {
      const n = partitionCounts.get(topic)!;
      for (let p = 0; p < n; p++) {
        for (let tried = 0; tried < sorted.length; tried++) {
          const m = sorted[next % sorted.length]!;
          next++;
          if (m.topics.includes(topic)) {
            addTo(out, m.memberId, topic, p);
            break;
          }
        }
      }
    }
  }
  return toResult(out);
}

// ---------------------------------------------------------------------------------------------
// Coordinator

export interface CoordinatorAddress {
  nodeId: number;
  host: string;
  port: number;
}

const COORDINATOR_RETRY = new Set<number>([
  ErrorCode.COORDINATOR_NOT_AVAILABLE,
  ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
  ErrorCode.NOT_COORDINATOR,
]);

/** Error codes after which a group's coordinator must be looked up again. */
export function isCoordinatorError(code: number): boolean {
  return COORDINATOR_RETRY.has(code);
}

/** FindCoordinator (key type group), v4+ batched or the single-key form; retried while loading. */
export async function findCoordinator(
  cluster: Cluster,
  groupId: string,
  attempts = 20,
): Promise<CoordinatorAddress> {
  let lastCode: number = ErrorCode.COORDINATOR_NOT_AVAILABLE;
  let lastMessage: string | null = null;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const conn = await cluster.anyConnection();
    const batched = conn.versionFor(ApiKey.FindCoordinator) >= 4;
    const res = await conn.send(ApiKey.FindCoordinator, {
      key: groupId,
      keyType: 0,
      coordinatorKeys: batched ? [groupId] : [],
    });
    const c = batched
      ? res.coordinators.find((x) => x.key === groupId)
      : {
          nodeId: res.nodeId,
          host: res.host,
          port: res.port,
          errorCode: res.errorCode,
          errorMessage: res.errorMessage,
        };
    lastCode = c?.errorCode ?? ErrorCode.COORDINATOR_NOT_AVAILABLE;
    lastMessage = c?.errorMessage ?? null;
    if (c && lastCode === 0) return { nodeId: c.nodeId, host: c.host, port: c.port };
    if (!COORDINATOR_RETRY.has(lastCode)) break;
    await sleep(Math.min(100 * (attempt + 1), 1000));
  }
  throw kafkaError(lastCode, `coordinator of group "${groupId}"`, lastMessage);
}

// ---------------------------------------------------------------------------------------------
// Offsets

export interface CommittedOffset {
  /** -1 when the group has no committed offset for the partition. */
  offset: number;
  leaderEpoch: number;
  metadata: string | null;
}

/** topic -> partition -> committed offset. */
export type CommittedOffsets = Map<string, Map<number, CommittedOffset>>;

/**
 * OffsetFetch for one group. `topics` null asks for every partition the group has committed
 * (OffsetFetch v2+). Throws the group-level error; partition errors throw too.
 */
export async function fetchOffsets(
  conn: Connection,
  groupId: string,
  topics: TopicPartitions[] | null,
): Promise<CommittedOffsets> {
  const version = conn.versionFor(ApiKey.OffsetFetch);
  if (topics === null && version < 2)
    throw new SluiceClientError(
      'UNSUPPORTED_VERSION',
      `the broker at ${conn.address} cannot list all of a group's offsets (OffsetFetch v${version})`,
    );
  const reqTopics = topics?.map((t) => ({ name: t.topic, partitionIndexes: t.partitions })) ?? null;
  const res = await conn.send(ApiKey.OffsetFetch, {
    groupId,
    topics: reqTopics,
    groups: version >= 8 ? [{ groupId, memberId: null, memberEpoch: -1, topics: reqTopics }] : [],
    requireStable: false,
  });
  let groupError = 0;
  let resTopics: {
    name: string;
    partitions: {
      partitionIndex: number;
      committedOffset: number;
      committedLeaderEpoch: number;
      metadata: string | null;
      errorCode: number;
    }[];
  }[];
  if (version >= 8) {
    const g = res.groups.find((x) => x.groupId === groupId);
    groupError = g?.errorCode ?? ErrorCode.UNKNOWN_SERVER_ERROR;
    resTopics = g?.topics ?? [];
  } else {
    groupError = version >= 2 ? res.errorCode : 0;
    resTopics = res.topics;
  }
  if (groupError !== 0) throw kafkaError(groupError, `offsets of group "${groupId}"`);
  const out: CommittedOffsets = new Map();
  for (const t of resTopics) {
    const m = out.get(t.name) ?? new Map<number, CommittedOffset>();
    for (const p of t.partitions) {
      if (p.errorCode !== 0)
        throw kafkaError(
          p.errorCode,
          `offset of partition ${p.partitionIndex} of topic "${t.name}" in group "${groupId}"`,
        );
      m.set(p.partitionIndex, {
        offset: p.committedOffset,
        leaderEpoch: p.committedLeaderEpoch,
        metadata: p.metadata,
      });
    }
    out.set(t.name, m);
  }
  return out;
}

export interface CommitContext {
  groupId: string;
  /** -1 with memberId "" for a standalone commit (a group with no active members). */
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
}

export interface OffsetToCommit {
  topic: string;
  partition: number;
  offset: number;
  leaderEpoch?: number;
  metadata?: string | null;
}

/** OffsetCommit; throws the first partition error (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, ...). */
export async function commitOffsets(
  conn: Connection,
  ctx: CommitContext,
  offsets: OffsetToCommit[],
): Promise<void> {
  if (offsets.length === 0) return;
  const byTopic = new Map<string, OffsetToCommit[]>();
  for (const o of offsets) {
    const list = byTopic.get(o.topic) ?? [];
    list.push(o);
    byTopic.set(o.topic, list);
  }
  const res = await conn.send(ApiKey.OffsetCommit, {
    groupId: ctx.groupId,
    generationIdOrMemberEpoch: ctx.generationId,
    memberId: ctx.memberId,
    groupInstanceId: ctx.groupInstanceId,
    retentionTimeMs: -1,
    topics: [...byTopic].map(([name, list]) => ({
      name,
      partitions: list.map((o) => ({
        partitionIndex: o.partition,
        committedOffset: o.offset,
        committedLeaderEpoch: o.leaderEpoch ?? -1,
        commitTimestamp: -1,
        committedMetadata: o.metadata ?? '',
      })),
    })),
  });
  for (const t of res.topics) {
    for (const p of t.partitions) {
      if (p.errorCode !== 0)
        throw kafkaError(
          p.errorCode,
          `commit of partition ${p.partitionIndex} of topic "${t.name}" for group "${ctx.groupId}"`,
        );
    }
  }
}
