/**
 * KIP-848 consumer groups in the coordinator, on manual time and an in-memory `__consumer_offsets`:
 * - the protocol step by step (join, revocation before assignment, epochs, what the response
 *   carries), the errors Kafka answers, static members, timeouts, offsets, ListGroups, JoinGroup
 *   on a consumer group, restart from the log, failed writes;
 * - a seeded simulation (200 seeds) of clients that behave like the Java consumer (send owned
 *   partitions when they change, revoke before they acknowledge) under random heartbeats, joins,
 *   leaves, crashes, subscription and partition-count changes, time jumps and coordinator
 *   restarts. At every step: no partition is owned by two members on the coordinator, no two live
 *   clients consume the same partition, and a client only consumes what the coordinator counts
 *   as its own; at the end everything subscribed is consumed by exactly one client, the group is
 *   Stable, and a coordinator rebuilt from the log has the same state.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ErrorCode } from '../protocol/errors.js';
import type { ConsumerGroupHeartbeatParams, TopicView } from './consumer-group-coordinator.js';
import { type ConsumerGroup, MemberState, assignmentToList } from './consumer-group.js';
import { GroupCoordinator } from './coordinator.js';
import { InMemoryGroupLog } from './group-log.js';
import { decodeGroupRecord } from './records.js';
import { ManualTime } from './time.js';

const HB = 1000;
const SESSION = 10_000;

class Topics implements TopicView {
  readonly map = new Map<string, { topicId: string; numPartitions: number }>();
  add(name: string, n: number): string {
    const topicId = `${name.padEnd(8, '0')}`
      .slice(0, 8)
      .replace(/[^0-9a-f]/g, 'a')
      .padEnd(32, '0');
    this.map.set(name, { topicId, numPartitions: n });
    return topicId;
  }
  byName(name: string) {
    return this.map.get(name);
  }
  byId(topicId: string) {
    for (const [name, t] of this.map)
      if (t.topicId === topicId) return { name, numPartitions: t.numPartitions };
    return undefined;
  }
}

interface Env {
  time: ManualTime;
  log: InMemoryGroupLog;
  topics: Topics;
  c: GroupCoordinator;
}

async function newEnv(
  opts: { log?: InMemoryGroupLog; time?: ManualTime; topics?: Topics; maxSize?: number } = {},
): Promise<Env> {
  const time = opts.time ?? new ManualTime();
  const log = opts.log ?? new InMemoryGroupLog(5);
  const topics = opts.topics ?? new Topics();
  let n = 0;
  const c = new GroupCoordinator({
    log,
    clock: time,
    scheduler: time,
    config: { initialRebalanceDelayMs: 0 },
    consumer: {
      heartbeatIntervalMs: HB,
      sessionTimeoutMs: SESSION,
      ...(opts.maxSize ? { maxSize: opts.maxSize } : {}),
    },
    newConsumerMemberId: () => `gen-${++n}`,
  });
  await c.load();
  return { time, log, topics, c };
}

function hbParams(
  p: Partial<ConsumerGroupHeartbeatParams> & { memberId: string; memberEpoch: number },
): ConsumerGroupHeartbeatParams {
  return {
    apiVersion: 1,
    groupId: 'g',
    instanceId: null,
    rackId: null,
    rebalanceTimeoutMs: -1,
    subscribedTopicNames: null,
    subscribedTopicRegex: null,
    serverAssignor: null,
    topicPartitions: null,
    clientId: 'client',
    clientHost: '/127.0.0.1',
    ...p,
  };
}

function join(
  env: Env,
  memberId: string,
  topics: string[],
  extra: Partial<ConsumerGroupHeartbeatParams> = {},
) {
  return env.c.consumerGroupHeartbeat(
    hbParams({
      memberId,
      memberEpoch: 0,
      rebalanceTimeoutMs: 5000,
      subscribedTopicNames: topics,
      topicPartitions: [],
      ...extra,
    }),
    env.topics,
  );
}

function beat(
  env: Env,
  memberId: string,
  memberEpoch: number,
  owned: { topicId: string; partitions: number[] }[] | null = null,
  extra: Partial<ConsumerGroupHeartbeatParams> = {},
) {
  return env.c.consumerGroupHeartbeat(
    hbParams({ memberId, memberEpoch, topicPartitions: owned, ...extra }),
    env.topics,
  );
}

const parts = (r: { assignment: { topicPartitions: { partitions: number[] }[] } | null }) =>
  r.assignment === null
    ? null
    : r.assignment.topicPartitions.flatMap((tp) => tp.partitions).sort((a, b) => a - b);

describe('consumer group protocol', () => {
  test('first member gets everything; a second one gets partitions only after the first revoked them', async () => {
    const env = await newEnv();
    const t = env.topics.add('orders', 4);
    const a1 = await join(env, 'A', ['orders']);
    assert.equal(a1.errorCode, 0);
    assert.equal(a1.memberId, 'A');
    assert.equal(a1.memberEpoch, 1);
    assert.equal(a1.heartbeatIntervalMs, HB);
    assert.deepEqual(parts(a1), [0, 1, 2, 3]);
    // Unchanged heartbeat: no assignment in the response.
    const a2 = await beat(env, 'A', 1, [{ topicId: t, partitions: [0, 1, 2, 3] }]);
    assert.equal(a2.memberEpoch, 1);
    assert.equal(a2.assignment, null);

    const b1 = await join(env, 'B', ['orders']);
    assert.equal(b1.memberEpoch, 2);
    assert.deepEqual(parts(b1), [], 'B waits: its partitions are still owned by A');
    assert.equal(env.c.consumer.group('g')?.members.get('B')?.state, MemberState.UNRELEASED_PARTITIONS);
    assert.equal(env.c.describeConsumerGroup('g', env.topics).groupState, 'Reconciling');

    const a3 = await beat(env, 'A', 1);
    assert.equal(a3.memberEpoch, 1, 'A keeps its epoch until it revoked');
    assert.equal(parts(a3)?.length, 2);
    const kept = parts(a3) as number[];
    // Still owned by A: B gets nothing yet.
    assert.deepEqual(parts(await beat(env, 'B', 2)), null);
    const a4 = await beat(env, 'A', 1, [{ topicId: t, partitions: kept }]);
    assert.equal(a4.memberEpoch, 2);
    const b2 = await beat(env, 'B', 2);
    assert.deepEqual(
      parts(b2),
      [0, 1, 2, 3].filter((p) => !kept.includes(p)),
    );
    assert.equal(env.c.describeConsumerGroup('g', env.topics).groupState, 'Stable');

    const d = env.c.describeConsumerGroup('g', env.topics);
    assert.equal(d.groupEpoch, 2);
    assert.equal(d.assignmentEpoch, 2);
    assert.equal(d.assignorName, 'uniform');
    assert.deepEqual(
      d.members.map((m) => [m.memberId, m.memberEpoch, m.assignment.topicPartitions[0]?.topicName]).sort(),
      [
        ['A', 2, 'orders'],
        ['B', 2, 'orders'],
      ],
    );
  });

  test('v0: the coordinator generates the member id', async () => {
    const env = await newEnv();
    env.topics.add('orders', 1);
    const r = await join(env, '', ['orders'], { apiVersion: 0 });
    assert.equal(r.errorCode, 0);
    assert.equal(r.memberId, 'gen-1');
  });

  test('request validation and member errors', async () => {
    const env = await newEnv();
    const t = env.topics.add('orders', 2);
    const codes = async (p: Promise<{ errorCode: number }>) => (await p).errorCode;
    assert.equal(
      await codes(join(env, '', ['orders'])),
      ErrorCode.INVALID_REQUEST,
      'v1 requires a member id',
    );
    assert.equal(
      await codes(join(env, 'A', ['orders'], { rebalanceTimeoutMs: -1 })),
      ErrorCode.INVALID_REQUEST,
    );
    assert.equal(await codes(join(env, 'A', [], {})), ErrorCode.INVALID_REQUEST);
    assert.equal(
      await codes(join(env, 'A', ['orders'], { topicPartitions: [{ topicId: t, partitions: [0] }] })),
      ErrorCode.INVALID_REQUEST,
    );
    const regex = await join(env, 'A', ['orders'], { subscribedTopicRegex: 'ord.*' });
    assert.equal(regex.errorCode, ErrorCode.INVALID_REQUEST);
    assert.match(regex.errorMessage ?? '', /regex/i);
    assert.equal(
      await codes(join(env, 'A', ['orders'], { serverAssignor: 'sticky' })),
      ErrorCode.UNSUPPORTED_ASSIGNOR,
    );
    assert.equal(await codes(beat(env, 'A', 3)), ErrorCode.GROUP_ID_NOT_FOUND);
    assert.equal(await codes(beat(env, 'A', -3)), ErrorCode.INVALID_REQUEST);
    assert.equal(
      await codes(beat(env, 'A', -2)),
      ErrorCode.INVALID_REQUEST,
      'static leave needs an instance id',
    );

    assert.equal(await codes(join(env, 'A', ['orders'])), 0);
    assert.equal(await codes(beat(env, 'X', 1)), ErrorCode.UNKNOWN_MEMBER_ID);
    assert.equal(await codes(beat(env, 'A', 5)), ErrorCode.FENCED_MEMBER_EPOCH);
    assert.equal(await codes(join(env, 'B', ['orders'])), 0);
    // A is at epoch 1 with epoch 2 pending: the previous epoch is accepted only with a subset of its assignment.
    const a = env.c.consumer.group('g')?.members.get('A');
    assert.ok(a);
    const kept = parts(await beat(env, 'A', 1)) as number[];
    assert.equal(kept.length, 1);
    assert.equal(a.state, MemberState.UNREVOKED_PARTITIONS);
    await beat(env, 'A', 1, [{ topicId: t, partitions: kept }]);
    assert.equal(a.memberEpoch, 2);
    assert.equal(
      (await beat(env, 'A', 1, [{ topicId: t, partitions: kept }])).errorCode,
      0,
      'previous epoch with a subset',
    );
    assert.equal(
      await codes(beat(env, 'A', 1, [{ topicId: t, partitions: [0, 1] }])),
      ErrorCode.FENCED_MEMBER_EPOCH,
    );
    assert.equal(await codes(beat(env, 'A', 1, null)), ErrorCode.FENCED_MEMBER_EPOCH);
    assert.equal(await codes(beat(env, 'A', 2)), 0);
  });

  test('group.consumer.max.size', async () => {
    const env = await newEnv({ maxSize: 2 });
    env.topics.add('orders', 2);
    assert.equal((await join(env, 'A', ['orders'])).errorCode, 0);
    assert.equal((await join(env, 'B', ['orders'])).errorCode, 0);
    assert.equal((await join(env, 'C', ['orders'])).errorCode, ErrorCode.GROUP_MAX_SIZE_REACHED);
  });

  test('leave (-1) frees partitions for the others at once; the other member keeps its own', async () => {
    const env = await newEnv();
    const t = env.topics.add('orders', 4);
    await join(env, 'A', ['orders']);
    await join(env, 'B', ['orders']);
    const kept = parts(await beat(env, 'A', 1)) as number[];
    await beat(env, 'A', 1, [{ topicId: t, partitions: kept }]);
    await beat(env, 'B', 2);
    const leave = await beat(env, 'B', -1);
    assert.equal(leave.errorCode, 0);
    assert.equal(leave.memberEpoch, -1);
    const a = await beat(env, 'A', 2);
    assert.equal(a.memberEpoch, 3);
    assert.deepEqual(parts(a), [0, 1, 2, 3]);
    assert.equal(env.c.consumer.group('g')?.members.get('A')?.state, MemberState.STABLE);
  });

  test('session timeout fences a silent member; rebalance timeout fences one that does not revoke', async () => {
    const env = await newEnv();
    env.topics.add('orders', 4);
    await join(env, 'A', ['orders']);
    await join(env, 'B', ['orders']);
    // A never answers the revocation; B keeps heartbeating.
    for (let i = 0; i < 6; i++) {
      await env.time.advance(1000);
      await beat(env, 'B', 2);
    }
    assert.ok(env.c.consumer.group('g')?.members.has('A'), 'A only silent for 6 s');
    await beat(env, 'A', 1);
    assert.equal(env.c.consumer.group('g')?.members.get('A')?.state, MemberState.UNREVOKED_PARTITIONS);
    for (let i = 0; i < 6; i++) {
      await env.time.advance(1000);
      await beat(env, 'B', 2);
      await beat(env, 'A', 1).catch(() => {});
    }
    assert.ok(!env.c.consumer.group('g')?.members.has('A'), 'A fenced after the 5 s rebalance timeout');
    assert.equal((await beat(env, 'A', 1)).errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
    const b = env.c.consumer.group('g')?.members.get('B');
    assert.deepEqual(assignmentToList(b?.assigned ?? new Map())[0]?.partitions, [0, 1, 2, 3]);
    assert.equal(b?.memberEpoch, 3);
    await env.time.advance(SESSION + 1);
    assert.equal(env.c.consumer.group('g')?.members.size, 0, 'B fenced by its session timeout');
    assert.equal(env.c.describeConsumerGroup('g', env.topics).groupState, 'Empty');
  });

  test('static membership: -2 keeps the assignment; a new instance takes it over without a rebalance', async () => {
    const env = await newEnv();
    env.topics.add('orders', 2);
    await join(env, 'A', ['orders'], { instanceId: 'i-a' });
    await join(env, 'B', ['orders'], { instanceId: 'i-b' });
    const g = env.c.consumer.group('g') as ConsumerGroup;
    // Converge.
    for (let i = 0; i < 4; i++) {
      for (const id of ['A', 'B']) {
        const m = g.members.get(id);
        if (m)
          await beat(env, id, m.memberEpoch, assignmentToList(m.assigned), {
            instanceId: id === 'A' ? 'i-a' : 'i-b',
          });
      }
    }
    assert.equal(g.state, 'Stable');
    const epoch = g.groupEpoch;
    const aAssigned = assignmentToList(g.members.get('A')?.assigned ?? new Map());
    assert.equal(
      (await join(env, 'A2', ['orders'], { instanceId: 'i-a' })).errorCode,
      ErrorCode.UNRELEASED_INSTANCE_ID,
    );
    assert.equal(
      (await beat(env, 'A2', 1, null, { instanceId: 'i-a' })).errorCode,
      ErrorCode.FENCED_INSTANCE_ID,
    );
    const left = await beat(env, 'A', -2, null, { instanceId: 'i-a' });
    assert.equal(left.memberEpoch, -2);
    assert.equal(g.members.get('A')?.memberEpoch, -2);
    const r = await join(env, 'A2', ['orders'], { instanceId: 'i-a' });
    assert.equal(r.errorCode, 0);
    assert.equal(r.memberEpoch, epoch);
    assert.deepEqual(r.assignment?.topicPartitions, aAssigned);
    assert.equal(g.groupEpoch, epoch, 'no rebalance');
    assert.ok(!g.members.has('A'));
  });

  test('partition count changes bump the group epoch on the next heartbeat', async () => {
    const env = await newEnv();
    const t = env.topics.add('orders', 2);
    await join(env, 'A', ['orders']);
    env.topics.map.set('orders', { topicId: t, numPartitions: 3 });
    const r = await beat(env, 'A', 1);
    assert.equal(r.memberEpoch, 2);
    assert.deepEqual(parts(r), [0, 1, 2]);
  });

  test('offsets: member epoch rules for OffsetCommit and OffsetFetch v9', async () => {
    const env = await newEnv();
    env.topics.add('orders', 2);
    await join(env, 'A', ['orders']);
    const commit = (memberId: string, generationId: number, apiVersion = 9) =>
      env.c.commitOffsets({
        groupId: 'g',
        generationId,
        memberId,
        groupInstanceId: null,
        apiVersion,
        retentionTimeMs: -1,
        offsets: [
          { topic: 'orders', partition: 0, offset: 5, leaderEpoch: -1, metadata: '', commitTimestamp: -1 },
        ],
      });
    assert.equal((await commit('A', 1))[0]?.errorCode, 0);
    assert.equal((await commit('A', 0))[0]?.errorCode, ErrorCode.STALE_MEMBER_EPOCH);
    assert.equal((await commit('A', 2))[0]?.errorCode, ErrorCode.STALE_MEMBER_EPOCH);
    assert.equal((await commit('X', 1))[0]?.errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
    assert.equal(
      (await commit('', -1))[0]?.errorCode,
      ErrorCode.UNKNOWN_MEMBER_ID,
      'admin commit on a non-empty group',
    );
    assert.equal((await commit('A', 1, 8))[0]?.errorCode, ErrorCode.UNSUPPORTED_VERSION);
    const f = env.c.fetchOffsets('g', [{ name: 'orders', partitions: [0] }], {
      memberId: 'A',
      memberEpoch: 1,
    });
    assert.equal(f.topics[0]?.partitions[0]?.committedOffset, 5);
    assert.equal(
      env.c.fetchOffsets('g', null, { memberId: 'A', memberEpoch: 0 }).errorCode,
      ErrorCode.STALE_MEMBER_EPOCH,
    );
    assert.equal(
      env.c.fetchOffsets('g', null, { memberId: 'X', memberEpoch: 1 }).errorCode,
      ErrorCode.UNKNOWN_MEMBER_ID,
    );
    assert.equal(env.c.fetchOffsets('g', null, { memberId: null, memberEpoch: -1 }).errorCode, 0);
    await beat(env, 'A', -1);
    assert.equal((await commit('', -1))[0]?.errorCode, 0, 'admin commit on an empty group');
    assert.equal((await env.c.deleteGroups(['g']))[0]?.errorCode, 0);
    assert.equal(env.c.consumer.group('g'), undefined);
    assert.equal(env.c.describeConsumerGroup('g', env.topics).errorCode, ErrorCode.GROUP_ID_NOT_FOUND);
  });

  test('ListGroups types, JoinGroup on a consumer group, ConsumerGroupDescribe of a classic group', async () => {
    const env = await newEnv();
    env.topics.add('orders', 2);
    await join(env, 'A', ['orders']);
    const types = (f: string[]) =>
      env.c
        .listGroups([], f)
        .groups.map((g) => `${g.groupId}:${g.groupType}:${g.protocolType}:${g.groupState}`);
    assert.deepEqual(types([]), ['g:consumer:consumer:Stable']);
    assert.deepEqual(types(['Consumer']), ['g:consumer:consumer:Stable']);
    assert.deepEqual(types(['classic']), []);
    assert.deepEqual(env.c.listGroups(['stable'], []).groups.length, 1);
    assert.deepEqual(env.c.listGroups(['empty'], []).groups.length, 0);
    const joinClassic = () =>
      env.c.joinGroup({
        groupId: 'g',
        memberId: '',
        groupInstanceId: null,
        protocolType: 'consumer',
        protocols: [{ name: 'range', metadata: Buffer.alloc(0) }],
        sessionTimeoutMs: 10000,
        rebalanceTimeoutMs: 10000,
        clientId: 'c',
        clientHost: 'h',
        requireKnownMemberId: false,
        supportsSkipAssignment: false,
      });
    assert.equal((await joinClassic()).errorCode, ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    // An empty consumer group becomes classic; a classic group with members refuses consumer members.
    await beat(env, 'A', -1);
    const j = joinClassic();
    await env.time.advance(10);
    assert.equal((await j).errorCode, 0);
    assert.deepEqual(types([]), ['g:classic:consumer:CompletingRebalance']);
    assert.equal((await join(env, 'B', ['orders'])).errorCode, ErrorCode.GROUP_ID_NOT_FOUND);
    const d = env.c.describeConsumerGroup('g', env.topics);
    assert.equal(d.errorCode, ErrorCode.GROUP_ID_NOT_FOUND);
    assert.match(d.errorMessage ?? '', /not a consumer group/);
  });

  test('records in __consumer_offsets use key versions 3-8; a restart restores members, epochs and assignments', async () => {
    const env = await newEnv();
    const t = env.topics.add('orders', 3);
    await join(env, 'A', ['orders']);
    await join(env, 'B', ['orders'], { instanceId: 'i-b', serverAssignor: 'range' });
    await beat(env, 'A', 1);
    const versions = new Set(env.log.all().map((r) => r.key.readInt16BE(0)));
    for (const v of [3, 4, 5, 6, 7, 8]) assert.ok(versions.has(v), `key version ${v} written`);
    for (const r of env.log.all()) assert.equal(decodeGroupRecord(r.key, r.value).type, 'consumer');
    const before = env.c.describeConsumerGroup('g', env.topics);
    env.c.shutdown();
    const env2 = await newEnv({ log: env.log, time: env.time, topics: env.topics });
    const after = env2.c.describeConsumerGroup('g', env.topics);
    assert.deepEqual(after, before);
    const g = env2.c.consumer.group('g') as ConsumerGroup;
    assert.equal(g.members.get('A')?.state, MemberState.UNREVOKED_PARTITIONS);
    assert.equal(g.staticMembers.get('i-b'), 'B');
    assert.equal(g.preferredAssignor('uniform'), 'range');
    // The restored group goes on: A revokes, B gets its partitions.
    const kept = [...(g.members.get('A')?.assigned.get(t) ?? [])];
    assert.equal((await beat(env2, 'A', 1, [{ topicId: t, partitions: kept }])).memberEpoch, 2);
    assert.equal((await beat(env2, 'B', 2)).errorCode, 0);
    assert.equal(g.state, 'Stable');
    // Members that never come back are fenced by the session timeouts scheduled on load.
    await env2.time.advance(SESSION + 1);
    assert.equal(g.members.size, 0);
  });

  test('a failed write answers an error and the group is rebuilt from the log', async () => {
    const env = await newEnv();
    env.topics.add('orders', 2);
    await join(env, 'A', ['orders']);
    env.log.failAppends = new Error('disk full');
    const r = await join(env, 'B', ['orders']);
    assert.equal(r.errorCode, ErrorCode.COORDINATOR_NOT_AVAILABLE);
    env.log.failAppends = null;
    await env.time.advance(1);
    const g = env.c.consumer.group('g') as ConsumerGroup;
    assert.deepEqual([...g.members.keys()], ['A']);
    assert.equal(g.groupEpoch, 1);
    assert.equal((await join(env, 'B', ['orders'])).memberEpoch, 2);
  });
});

// ---- simulation -------------------------------------------------------------------------------

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Owned = Map<string, Set<number>>;

interface SimClient {
  memberId: string;
  epoch: number;
  owned: Owned;
  /** The last assignment received and not yet reconciled. */
  pending: Owned | null;
  pendingSince: number;
  lastSentOwned: string | null;
  subs: string[];
  subsChanged: boolean;
  lastHeartbeat: number;
  alive: boolean;
}

const ownedKey = (o: Owned) => JSON.stringify(assignmentToList(o));

async function heartbeatClient(env: Env, c: SimClient): Promise<void> {
  const joining = c.epoch === 0;
  const ownedNow = ownedKey(c.owned);
  const sendOwned = joining || ownedNow !== c.lastSentOwned;
  const r = await env.c.consumerGroupHeartbeat(
    hbParams({
      memberId: c.memberId,
      memberEpoch: c.epoch,
      rebalanceTimeoutMs: joining ? 5000 : -1,
      subscribedTopicNames: joining || c.subsChanged ? [...c.subs] : null,
      topicPartitions: joining ? [] : sendOwned ? assignmentToList(c.owned) : null,
    }),
    env.topics,
  );
  c.lastHeartbeat = env.time.nowMs();
  if (r.errorCode === ErrorCode.FENCED_MEMBER_EPOCH || r.errorCode === ErrorCode.UNKNOWN_MEMBER_ID) {
    // Fenced: the client drops everything (onPartitionsLost) and rejoins with epoch 0.
    c.owned = new Map();
    c.pending = null;
    c.epoch = 0;
    c.lastSentOwned = null;
    return;
  }
  if (r.errorCode !== 0) throw new Error(`unexpected heartbeat error ${r.errorCode} ${r.errorMessage}`);
  if (sendOwned) c.lastSentOwned = ownedNow;
  c.subsChanged = false;
  c.epoch = r.memberEpoch;
  if (r.assignment) {
    const next: Owned = new Map();
    for (const tp of r.assignment.topicPartitions) next.set(tp.topicId, new Set(tp.partitions));
    c.pending = next;
    c.pendingSince = env.time.nowMs();
  }
}

/** Revoke what is no longer assigned, then take the rest (what the Java consumer does). */
function reconcileClient(c: SimClient): void {
  if (!c.pending) return;
  c.owned = new Map([...c.pending].map(([t, s]) => [t, new Set(s)]));
  c.pending = null;
}

function checkInvariants(env: Env, clients: SimClient[], where: string): void {
  const g = env.c.consumer.group('g');
  if (!g) return;
  // Coordinator: a partition is owned (assigned or pending revocation) by at most one member.
  const serverOwner = new Map<string, string>();
  for (const m of g.members.values()) {
    for (const side of [m.assigned, m.pendingRevocation])
      for (const [t, s] of side)
        for (const p of s) {
          const k = `${t}:${p}`;
          assert.ok(!serverOwner.has(k), `${where}: ${k} owned by ${serverOwner.get(k)} and ${m.memberId}`);
          serverOwner.set(k, m.memberId);
        }
  }
  assert.equal(g.partitionEpochs.size, serverOwner.size, `${where}: partition epoch index`);
  // Clients: live, unfenced clients consume disjoint partitions, each one the coordinator counts as theirs.
  const clientOwner = new Map<string, string>();
  for (const c of clients) {
    if (!c.alive || c.epoch === 0) continue;
    const m = g.members.get(c.memberId);
    if (!m) continue; // fenced: it learns on its next heartbeat (not while its session is alive here)
    for (const [t, s] of c.owned)
      for (const p of s) {
        const k = `${t}:${p}`;
        assert.ok(!clientOwner.has(k), `${where}: ${k} consumed by ${clientOwner.get(k)} and ${c.memberId}`);
        clientOwner.set(k, c.memberId);
        assert.equal(
          serverOwner.get(k),
          c.memberId,
          `${where}: ${c.memberId} consumes ${k} owned by ${serverOwner.get(k)} on the coordinator`,
        );
      }
  }
}

function snapshot(g: ConsumerGroup | undefined) {
  if (!g) return null;
  return {
    groupEpoch: g.groupEpoch,
    assignmentEpoch: g.assignmentEpoch,
    metadata: [...g.subscriptionMetadata.values()].sort((a, b) => (a.topicName < b.topicName ? -1 : 1)),
    members: [...g.members.values()]
      .map((m) => ({
        id: m.memberId,
        epoch: m.memberEpoch,
        prev: m.previousMemberEpoch,
        state: m.state,
        subs: [...m.subscribedTopicNames].sort(),
        assigned: assignmentToList(m.assigned),
        pending: assignmentToList(m.pendingRevocation),
        target: assignmentToList(g.targetAssignment.get(m.memberId) ?? new Map()),
      }))
      .sort((a, b) => (a.id < b.id ? -1 : 1)),
  };
}

async function simulate(seed: number): Promise<{ steps: number; restarts: number; fenced: number }> {
  const rnd = mulberry32(seed);
  const pick = <T>(xs: T[]): T | undefined => xs[Math.floor(rnd() * xs.length)];
  let env = await newEnv();
  env.topics.add('orders', 1 + Math.floor(rnd() * 8));
  env.topics.add('audit', 1 + Math.floor(rnd() * 4));
  const clients: SimClient[] = [];
  let nextId = 0;
  let restarts = 0;
  let fenced = 0;
  const newClient = (): SimClient => ({
    memberId: `c${nextId++}`,
    epoch: 0,
    owned: new Map(),
    pending: null,
    pendingSince: 0,
    lastSentOwned: null,
    subs: rnd() < 0.7 ? ['orders'] : ['orders', 'audit'],
    subsChanged: false,
    lastHeartbeat: env.time.nowMs(),
    alive: true,
  });
  const live = () => clients.filter((c) => c.alive);
  const steps = 60 + Math.floor(rnd() * 140);
  for (let step = 0; step < steps; step++) {
    const where = `seed ${seed} step ${step}`;
    const x = rnd();
    if (x < 0.1 && live().length < 6) {
      const c = newClient();
      clients.push(c);
      await heartbeatClient(env, c);
    } else if (x < 0.45) {
      const c = pick(live());
      if (c) await heartbeatClient(env, c);
    } else if (x < 0.65) {
      const c = pick(live().filter((k) => k.pending));
      if (c) reconcileClient(c);
    } else if (x < 0.7) {
      // Graceful leave: the client revokes everything, then sends epoch -1.
      const c = pick(live());
      if (c && c.epoch > 0) {
        c.owned = new Map();
        c.alive = false;
        const r = await env.c.consumerGroupHeartbeat(
          hbParams({ memberId: c.memberId, memberEpoch: -1 }),
          env.topics,
        );
        assert.ok(
          r.errorCode === 0 || r.errorCode === ErrorCode.UNKNOWN_MEMBER_ID,
          `${where}: leave ${r.errorCode}`,
        );
      }
    } else if (x < 0.74) {
      // Crash: the process is gone (consumes nothing); the session timeout fences it.
      const c = pick(live());
      if (c) {
        c.alive = false;
        c.owned = new Map();
      }
    } else if (x < 0.77) {
      const c = pick(live());
      if (c) {
        c.subs = c.subs.includes('audit') ? ['orders'] : ['orders', 'audit'];
        c.subsChanged = true;
      }
    } else if (x < 0.79) {
      const name = rnd() < 0.5 ? 'orders' : 'audit';
      const t = env.topics.map.get(name);
      if (t && t.numPartitions < 12) env.topics.map.set(name, { ...t, numPartitions: t.numPartitions + 1 });
    } else if (x < 0.81) {
      // Coordinator restart (failover): the new one rebuilds everything from the log.
      const before = snapshot(env.c.consumer.group('g'));
      env.c.shutdown();
      env = await newEnv({ log: env.log, time: env.time, topics: env.topics });
      restarts++;
      assert.deepEqual(snapshot(env.c.consumer.group('g')), before, `${where}: state after restart`);
    } else {
      await env.time.advance(Math.floor(rnd() * 2000));
    }
    // Live clients behave like a real consumer: heartbeat at least every 5 s, reconcile within 3 s.
    for (const c of live()) {
      if (c.pending && env.time.nowMs() - c.pendingSince > 3000) reconcileClient(c);
      if (env.time.nowMs() - c.lastHeartbeat > 5000) await heartbeatClient(env, c);
    }
    const g = env.c.consumer.group('g');
    if (g) for (const c of live()) if (c.epoch > 0 && !g.members.has(c.memberId)) fenced++;
    checkInvariants(env, clients, where);
  }

  // Quiesce: live clients heartbeat and reconcile until everything is consumed.
  const g0 = () => env.c.consumer.group('g');
  for (let round = 0; round < 60; round++) {
    await env.time.advance(HB);
    for (const c of live()) {
      reconcileClient(c);
      await heartbeatClient(env, c);
      checkInvariants(env, clients, `seed ${seed} quiesce ${round}`);
    }
    const g = g0();
    if (!g || live().length === 0) break;
    if (g.state === 'Stable' && live().every((c) => c.pending === null) && g.members.size === live().length)
      break;
  }
  if (live().length > 0) {
    const g = g0();
    assert.ok(g);
    assert.equal(g.state, 'Stable', `seed ${seed}: group Stable at the end`);
    assert.equal(g.members.size, live().length, `seed ${seed}: crashed members fenced`);
    const consumed = new Map<string, string>();
    for (const c of live())
      for (const [t, s] of c.owned) for (const p of s) consumed.set(`${t}:${p}`, c.memberId);
    const subscribed = new Set(live().flatMap((c) => c.subs));
    for (const name of subscribed) {
      const t = env.topics.map.get(name);
      assert.ok(t);
      for (let p = 0; p < t.numPartitions; p++)
        assert.ok(consumed.has(`${t.topicId}:${p}`), `seed ${seed}: ${name}-${p} consumed by nobody`);
    }
  }
  const final = snapshot(g0());
  env.c.shutdown();
  const reloaded = await newEnv({ log: env.log, time: env.time, topics: env.topics });
  assert.deepEqual(
    snapshot(reloaded.c.consumer.group('g')),
    final,
    `seed ${seed}: state rebuilt from the log`,
  );
  reloaded.c.shutdown();
  return { steps, restarts, fenced };
}

describe('consumer group simulation', () => {
  test('200 seeds: never two owners, everything eventually consumed, restart keeps the state', async () => {
    let steps = 0;
    let restarts = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const r = await simulate(seed);
      steps += r.steps;
      restarts += r.restarts;
    }
    assert.ok(steps > 10_000);
    assert.ok(restarts > 50);
  });
});
