/**
 * Per-partition ownership of the group coordinator ('assigned' mode, as in a cluster where the
 * coordinator of a group is the leader of its `__consumer_offsets` partition).
 *
 * Method: two coordinators A and B share one InMemoryGroupLog (the replicated partition) on one
 * ManualTime. Coordinatorship moves between them with becomeCoordinator / resignCoordinator, and
 * the tests check what clients see on each side: NOT_COORDINATOR where the partition is not
 * owned, COORDINATOR_LOAD_IN_PROGRESS while it loads (a log whose replay waits on a gate), waiting
 * requests answered on resign, and the new coordinator continuing the group (generation,
 * members, committed offsets; KIP-848 epochs and assignments). Failed appends carry the
 * partition's error (KafkaError) and are mapped as Kafka maps them; memory never stays ahead of
 * the log after one.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ErrorCode, KafkaError } from '../protocol/errors.js';
import type { ConsumerGroupHeartbeatParams, TopicView } from './consumer-group-coordinator.js';
import {
  type CommitOffsetsParams,
  GroupCoordinator,
  type JoinGroupParams,
  partitionForGroup,
} from './coordinator.js';
import { type GroupLog, type GroupLogRecord, InMemoryGroupLog } from './group-log.js';
import { ManualTime, flushMicrotasks } from './time.js';

const PARTITIONS = 10;
const GROUP = 'g';
const P = partitionForGroup(GROUP, PARTITIONS);
/** A group on another partition, to check that moving P leaves it alone. */
const OTHER = ['h', 'i', 'j', 'k', 'l'].find((id) => partitionForGroup(id, PARTITIONS) !== P)!;
const OTHER_P = partitionForGroup(OTHER, PARTITIONS);
const SESSION = 10_000;

/** One coordinator's view of the shared log: its replays can be held at a gate. */
class GatedLog implements GroupLog {
  replays = 0;
  private gate: Promise<void> | null = null;
  private release: (() => void) | null = null;

  constructor(readonly inner: InMemoryGroupLog) {}

  close(): void {
    this.gate = new Promise((resolve) => {
      this.release = resolve;
    });
  }

  open(): void {
    this.release?.();
    this.gate = null;
    this.release = null;
  }

  partitionCount(): number {
    return this.inner.partitionCount();
  }

  append(partition: number, records: GroupLogRecord[]): Promise<void> {
    return this.inner.append(partition, records);
  }

  async replay(partition: number, onRecord: (r: GroupLogRecord) => void): Promise<void> {
    this.replays++;
    if (this.gate) await this.gate;
    await this.inner.replay(partition, onRecord);
  }
}

class Topics implements TopicView {
  readonly map = new Map<string, { topicId: string; numPartitions: number }>();
  add(name: string, n: number, topicId: string): string {
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

interface Cluster {
  time: ManualTime;
  log: InMemoryGroupLog;
  topics: Topics;
  logA: GatedLog;
  logB: GatedLog;
  a: GroupCoordinator;
  b: GroupCoordinator;
}

async function cluster(): Promise<Cluster> {
  const time = new ManualTime();
  const log = new InMemoryGroupLog(PARTITIONS);
  const topics = new Topics();
  topics.add('orders', 4, 'aaaaaaaa000000000000000000000000');
  let n = 0;
  const make = (name: string, l: GroupLog) =>
    new GroupCoordinator({
      log: l,
      clock: time,
      scheduler: time,
      ownership: 'assigned',
      config: { initialRebalanceDelayMs: 0 },
      consumer: { heartbeatIntervalMs: 1000, sessionTimeoutMs: SESSION },
      newMemberId: (prefix) => `${prefix}-${name}${++n}`,
    });
  const logA = new GatedLog(log);
  const logB = new GatedLog(log);
  const a = make('A', logA);
  const b = make('B', logB);
  await a.load();
  await b.load();
  return { time, log, topics, logA, logB, a, b };
}

async function tick(c: Cluster, ms = 0): Promise<void> {
  await c.time.advance(ms);
  await flushMicrotasks();
}

function joinParams(over: Partial<JoinGroupParams> = {}): JoinGroupParams {
  return {
    groupId: GROUP,
    memberId: '',
    groupInstanceId: null,
    protocolType: 'consumer',
    protocols: [{ name: 'range', metadata: Buffer.from('sub') }],
    sessionTimeoutMs: SESSION,
    rebalanceTimeoutMs: 30000,
    clientId: 'c',
    clientHost: '/127.0.0.1',
    requireKnownMemberId: true,
    supportsSkipAssignment: true,
    ...over,
  };
}

function commitParams(over: Partial<CommitOffsetsParams> = {}): CommitOffsetsParams {
  return {
    groupId: GROUP,
    generationId: -1,
    memberId: '',
    groupInstanceId: null,
    apiVersion: 8,
    retentionTimeMs: -1,
    offsets: [
      { topic: 'orders', partition: 0, offset: 42, leaderEpoch: -1, metadata: null, commitTimestamp: -1 },
    ],
    ...over,
  };
}

const offsetOf = (c: GroupCoordinator, groupId = GROUP, partition = 0) =>
  c.fetchOffsets(groupId, [{ name: 'orders', partitions: [partition] }]).topics[0]?.partitions[0]
    ?.committedOffset;

/** One member forms a generation on `coord` (KIP-394 join, then the leader's sync). */
async function stableMember(c: Cluster, coord: GroupCoordinator, groupId = GROUP) {
  const first = await coord.joinGroup(joinParams({ groupId }));
  assert.equal(first.errorCode, ErrorCode.MEMBER_ID_REQUIRED);
  const p = coord.joinGroup(joinParams({ groupId, memberId: first.memberId }));
  await tick(c);
  const j = await p;
  assert.equal(j.errorCode, ErrorCode.NONE);
  const s = await coord.syncGroup({
    groupId,
    generationId: j.generationId,
    memberId: j.memberId,
    groupInstanceId: null,
    protocolType: 'consumer',
    protocolName: 'range',
    assignments: [{ memberId: j.memberId, assignment: Buffer.from('orders:0-3') }],
  });
  assert.equal(s.errorCode, ErrorCode.NONE);
  return { memberId: j.memberId, generationId: j.generationId };
}

function hb(
  p: Partial<ConsumerGroupHeartbeatParams> & { memberId: string; memberEpoch: number },
): ConsumerGroupHeartbeatParams {
  return {
    apiVersion: 1,
    groupId: GROUP,
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

const consumerJoin = (c: Cluster, coord: GroupCoordinator, memberId: string) =>
  coord.consumerGroupHeartbeat(
    hb({
      memberId,
      memberEpoch: 0,
      rebalanceTimeoutMs: 5000,
      subscribedTopicNames: ['orders'],
      topicPartitions: [],
    }),
    c.topics,
  );

/** Every group API of `coord` for `groupId`, with the error code each answers. */
async function everyApi(
  c: Cluster,
  coord: GroupCoordinator,
  groupId: string,
): Promise<Record<string, number>> {
  const member = { groupId, memberId: 'm', groupInstanceId: null, generationId: 1 };
  return {
    join: (await coord.joinGroup(joinParams({ groupId }))).errorCode,
    sync: (await coord.syncGroup({ ...member, protocolType: null, protocolName: null, assignments: [] }))
      .errorCode,
    heartbeat: coord.heartbeat(member),
    leave: coord.leaveGroup(groupId, [{ memberId: 'm', groupInstanceId: null }]).errorCode,
    commit: (await coord.commitOffsets(commitParams({ groupId })))[0]!.errorCode,
    fetch: coord.fetchOffsets(groupId, null).errorCode,
    describe: coord.describeGroup(groupId).errorCode,
    delete: (await coord.deleteGroups([groupId]))[0]!.errorCode,
    deleteOffsets: (await coord.deleteOffsets(groupId, [{ name: 'orders', partitions: [0] }])).errorCode,
    consumerHeartbeat: (await consumerJoin(c, coord, 'x')).errorCode,
    consumerDescribe: coord.describeConsumerGroup(groupId, c.topics).errorCode,
  };
}

function allEqual(codes: Record<string, number>, expected: number): void {
  const wrong = Object.entries(codes).filter(([, code]) => code !== expected);
  assert.deepEqual(
    wrong.map(([api, code]) => `${api}: ${ErrorCode[code]}`),
    [],
    `expected ${ErrorCode[expected]} from every API`,
  );
}

describe('ownership modes', () => {
  test("'all' (default) serves every partition; the ownership calls are refused", async () => {
    const time = new ManualTime();
    const c = new GroupCoordinator({ log: new InMemoryGroupLog(4), clock: time, scheduler: time });
    assert.deepEqual(c.ownedPartitions(), []);
    await c.load();
    assert.equal(c.ownership, 'all');
    assert.deepEqual(c.ownedPartitions(), [0, 1, 2, 3]);
    assert.equal(c.ownsPartition(3), true);
    assert.throws(() => c.becomeCoordinator(0), /ownership 'assigned'/);
    assert.throws(() => c.resignCoordinator(0), /ownership 'assigned'/);
  });

  test("'assigned' loads nothing: every group API answers NOT_COORDINATOR until the partition is owned", async () => {
    const c = await cluster();
    assert.equal(c.logA.replays, 0, 'load() replays no partition');
    assert.deepEqual(c.a.ownedPartitions(), []);
    allEqual(await everyApi(c, c.a, GROUP), ErrorCode.NOT_COORDINATOR);
    assert.deepEqual(c.a.listGroups([], []), { errorCode: ErrorCode.NONE, groups: [] });
    await assert.rejects(c.a.becomeCoordinator(PARTITIONS), RangeError);
    await c.a.becomeCoordinator(P);
    assert.equal(c.logA.replays, 1);
    assert.deepEqual(c.a.ownedPartitions(), [P]);
    assert.equal(c.a.ownsPartition(P), true);
    assert.equal(c.a.ownsPartition(OTHER_P), false);
    assert.equal((await c.a.commitOffsets(commitParams()))[0]!.errorCode, ErrorCode.NONE);
    assert.equal(
      (await c.a.commitOffsets(commitParams({ groupId: OTHER })))[0]!.errorCode,
      ErrorCode.NOT_COORDINATOR,
    );
    // Idempotent: a second call neither replays again nor changes anything.
    await c.a.becomeCoordinator(P);
    assert.equal(c.logA.replays, 1);
    assert.equal(offsetOf(c.a), 42);
  });
});

describe('coordinatorship moves between coordinators', () => {
  test('a classic group: A serves it, resigns (waiting requests get NOT_COORDINATOR), B continues it', async () => {
    const c = await cluster();
    await c.a.becomeCoordinator(P);
    await c.a.becomeCoordinator(OTHER_P);
    const m1 = await stableMember(c, c.a);
    assert.equal(
      (await c.a.commitOffsets(commitParams({ generationId: m1.generationId, memberId: m1.memberId })))[0]!
        .errorCode,
      ErrorCode.NONE,
    );
    await stableMember(c, c.a, OTHER);
    // B is not the coordinator: it answers NOT_COORDINATOR to everything, and lists nothing.
    allEqual(await everyApi(c, c.b, GROUP), ErrorCode.NOT_COORDINATOR);
    assert.deepEqual(c.b.listGroups([], []).groups, []);
    assert.deepEqual(
      c.a
        .listGroups([], [])
        .groups.map((g) => g.groupId)
        .sort(),
      [GROUP, OTHER].sort(),
    );

    // A second member joins on A: the group prepares a rebalance and its join waits for m1.
    const first = await c.a.joinGroup(joinParams({ clientId: 'm2' }));
    let m2Join: number | null = null;
    void c.a.joinGroup(joinParams({ clientId: 'm2', memberId: first.memberId })).then((r) => {
      m2Join = r.errorCode;
    });
    await tick(c);
    assert.equal(c.a.group(GROUP)?.state, 'PreparingRebalance');
    assert.equal(m2Join, null, 'the join waits');

    const timersBefore = c.time.pendingTimers;
    c.a.resignCoordinator(P);
    await tick(c);
    assert.equal(m2Join, ErrorCode.NOT_COORDINATOR, 'the waiting join is answered on resign');
    assert.equal(c.a.ownsPartition(P), false);
    assert.equal(c.a.group(GROUP), undefined, 'the group left memory');
    assert.ok(c.time.pendingTimers < timersBefore, 'its timers were cancelled');
    allEqual(await everyApi(c, c.a, GROUP), ErrorCode.NOT_COORDINATOR);
    // The other partition is untouched.
    assert.equal(c.a.group(OTHER)?.state, 'Stable');
    assert.deepEqual(
      c.a.listGroups([], []).groups.map((g) => g.groupId),
      [OTHER],
    );

    // B takes over from the log: generation 1, member m1 (m2 never got in), the committed offset.
    await c.b.becomeCoordinator(P);
    const g = c.b.group(GROUP);
    assert.ok(g);
    assert.equal(g.generationId, m1.generationId);
    assert.equal(g.state, 'Stable');
    assert.deepEqual([...g.members.keys()], [m1.memberId]);
    assert.equal(offsetOf(c.b), 42);
    assert.equal(
      c.b.heartbeat({
        groupId: GROUP,
        generationId: m1.generationId,
        memberId: m1.memberId,
        groupInstanceId: null,
      }),
      ErrorCode.NONE,
    );
    const r = await c.b.commitOffsets(
      commitParams({
        generationId: m1.generationId,
        memberId: m1.memberId,
        offsets: [
          { topic: 'orders', partition: 0, offset: 43, leaderEpoch: -1, metadata: null, commitTimestamp: -1 },
        ],
      }),
    );
    assert.equal(r[0]!.errorCode, ErrorCode.NONE);
    assert.equal(offsetOf(c.b), 43);
    assert.equal(c.b.fetchOffsets(GROUP, null).errorCode, ErrorCode.NONE);
    // m2 rejoins at the new coordinator with the id A gave it: unknown there (it never got in).
    assert.equal(
      (await c.b.joinGroup(joinParams({ memberId: first.memberId }))).errorCode,
      ErrorCode.UNKNOWN_MEMBER_ID,
    );

    // And back to A, which reloads from the log (B's commit included).
    c.b.resignCoordinator(P);
    await c.a.becomeCoordinator(P);
    assert.equal(offsetOf(c.a), 43);
    assert.equal(c.a.group(GROUP)?.generationId, m1.generationId);
  });

  test('a SyncGroup waiting for the leader is answered NOT_COORDINATOR on resign', async () => {
    const c = await cluster();
    await c.a.becomeCoordinator(P);
    const m1 = await stableMember(c, c.a);
    const first = await c.a.joinGroup(joinParams());
    const m2 = c.a.joinGroup(joinParams({ memberId: first.memberId }));
    const m1Rejoin = c.a.joinGroup(joinParams({ memberId: m1.memberId }));
    await tick(c);
    const j2 = await m2;
    assert.equal((await m1Rejoin).generationId, 2);
    const follower = c.a.syncGroup({
      groupId: GROUP,
      generationId: 2,
      memberId: j2.memberId,
      groupInstanceId: null,
      protocolType: null,
      protocolName: null,
      assignments: [],
    });
    await tick(c);
    c.a.resignCoordinator(P);
    assert.equal((await follower).errorCode, ErrorCode.NOT_COORDINATOR);
    // Generation 2 never reached the log (its assignment was not stored): B resumes generation 1.
    await c.b.becomeCoordinator(P);
    assert.equal(c.b.group(GROUP)?.generationId, 1);
  });

  test('a KIP-848 consumer group: A serves it, resigns (its timers stop), B continues it', async () => {
    const c = await cluster();
    const t = c.topics.byName('orders')!.topicId;
    await c.a.becomeCoordinator(P);
    const x1 = await consumerJoin(c, c.a, 'X');
    assert.equal(x1.memberEpoch, 1);
    const y1 = await consumerJoin(c, c.a, 'Y');
    assert.equal(y1.errorCode, ErrorCode.NONE);
    // Y's join bumped the group epoch: X revokes what Y gets and moves to epoch 2.
    const xAssigned = x1.assignment!.topicPartitions[0]!.partitions;
    const x2 = await c.a.consumerGroupHeartbeat(hb({ memberId: 'X', memberEpoch: 1 }), c.topics);
    const kept = x2.assignment?.topicPartitions[0]?.partitions ?? xAssigned;
    const x3 = await c.a.consumerGroupHeartbeat(
      hb({ memberId: 'X', memberEpoch: x2.memberEpoch, topicPartitions: [{ topicId: t, partitions: kept }] }),
      c.topics,
    );
    assert.equal(x3.errorCode, ErrorCode.NONE);
    assert.equal(x3.memberEpoch, 2);
    const commit = await c.a.commitOffsets(
      commitParams({ apiVersion: 9, memberId: 'X', generationId: x3.memberEpoch }),
    );
    assert.equal(commit[0]!.errorCode, ErrorCode.NONE);
    const before = c.a.describeConsumerGroup(GROUP, c.topics);
    assert.equal(before.members.length, 2);

    const appends = c.log.appends;
    c.a.resignCoordinator(P);
    assert.equal(c.a.consumer.group(GROUP), undefined);
    assert.equal(
      (await c.a.consumerGroupHeartbeat(hb({ memberId: 'X', memberEpoch: x3.memberEpoch }), c.topics))
        .errorCode,
      ErrorCode.NOT_COORDINATOR,
    );
    assert.equal(c.a.describeConsumerGroup(GROUP, c.topics).errorCode, ErrorCode.NOT_COORDINATOR);
    // No coordinator for a while: A's session timers are gone, so nothing fences (writes) anything.
    await tick(c, SESSION * 2);
    assert.equal(c.log.appends, appends, 'A wrote nothing after resigning');

    await c.b.becomeCoordinator(P);
    assert.deepEqual(c.b.describeConsumerGroup(GROUP, c.topics), before);
    assert.equal(offsetOf(c.b), 42);
    const bx = await c.b.consumerGroupHeartbeat(
      hb({ memberId: 'X', memberEpoch: x3.memberEpoch, topicPartitions: [{ topicId: t, partitions: kept }] }),
      c.topics,
    );
    assert.equal(bx.errorCode, ErrorCode.NONE);
    assert.equal(bx.memberEpoch, x3.memberEpoch);
    const bc = await c.b.commitOffsets(
      commitParams({
        apiVersion: 9,
        memberId: 'X',
        generationId: bx.memberEpoch,
        offsets: [
          { topic: 'orders', partition: 0, offset: 50, leaderEpoch: -1, metadata: null, commitTimestamp: -1 },
        ],
      }),
    );
    assert.equal(bc[0]!.errorCode, ErrorCode.NONE);
    assert.equal(offsetOf(c.b), 50);
    // B schedules the loaded members' sessions: Y, which never comes back, is fenced by B.
    await tick(c, SESSION / 2);
    assert.equal(
      (await c.b.consumerGroupHeartbeat(hb({ memberId: 'X', memberEpoch: bx.memberEpoch }), c.topics))
        .errorCode,
      ErrorCode.NONE,
    );
    await tick(c, SESSION / 2 + 1);
    assert.deepEqual([...(c.b.consumer.group(GROUP)?.members.keys() ?? [])], ['X']);
  });
});

describe('loading', () => {
  test('COORDINATOR_LOAD_IN_PROGRESS while the partition loads; then served', async () => {
    const c = await cluster();
    await c.a.becomeCoordinator(P);
    const m1 = await stableMember(c, c.a);
    await c.a.commitOffsets(commitParams({ generationId: m1.generationId, memberId: m1.memberId }));
    c.a.resignCoordinator(P);

    c.logB.close();
    const loading = c.b.becomeCoordinator(P);
    await tick(c, 1000);
    assert.equal(c.b.ownsPartition(P), false);
    assert.deepEqual(c.b.ownedPartitions(), []);
    assert.equal(c.b.becomeCoordinator(P), loading, 'a second call returns the same load');
    allEqual(await everyApi(c, c.b, GROUP), ErrorCode.COORDINATOR_LOAD_IN_PROGRESS);
    assert.equal(c.b.listGroups([], []).errorCode, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS);
    // Groups of partitions B does not own still answer NOT_COORDINATOR.
    assert.equal(c.b.fetchOffsets(OTHER, null).errorCode, ErrorCode.NOT_COORDINATOR);
    assert.equal(c.logB.replays, 1);

    c.logB.open();
    await loading;
    assert.equal(c.b.ownsPartition(P), true);
    assert.equal(offsetOf(c.b), 42);
    assert.equal(
      c.b.heartbeat({
        groupId: GROUP,
        generationId: m1.generationId,
        memberId: m1.memberId,
        groupInstanceId: null,
      }),
      ErrorCode.NONE,
    );
    assert.deepEqual(
      c.b.listGroups([], []).groups.map((g) => g.groupId),
      [GROUP],
    );
  });

  test('a resign during the load discards it; a new becomeCoordinator loads again', async () => {
    const c = await cluster();
    await c.a.becomeCoordinator(P);
    await stableMember(c, c.a);
    c.a.resignCoordinator(P);

    c.logB.close();
    const first = c.b.becomeCoordinator(P);
    await tick(c);
    c.b.resignCoordinator(P);
    assert.equal(c.b.group(GROUP), undefined);
    c.logB.open();
    await first;
    await tick(c);
    assert.equal(c.b.ownsPartition(P), false, 'the discarded load does not make B the coordinator');
    assert.equal(c.b.group(GROUP), undefined, 'nor does it put the group in memory');
    assert.equal(c.b.groupIds().length, 0);
    assert.equal(c.time.pendingTimers, 2, 'only the two offset-expiration timers');
    assert.equal(c.b.fetchOffsets(GROUP, null).errorCode, ErrorCode.NOT_COORDINATOR);

    // Resign, then become again while the first load still waits: only the second applies.
    c.logB.close();
    const second = c.b.becomeCoordinator(P);
    await tick(c);
    c.b.resignCoordinator(P);
    const third = c.b.becomeCoordinator(P);
    assert.notEqual(third, second);
    c.logB.open();
    await Promise.all([second, third]);
    assert.equal(c.b.ownsPartition(P), true);
    assert.equal(c.b.group(GROUP)?.members.size, 1);
    assert.equal(
      c.b.heartbeat({
        groupId: GROUP,
        generationId: 1,
        memberId: [...c.b.group(GROUP)!.members.keys()][0]!,
        groupInstanceId: null,
      }),
      ErrorCode.NONE,
    );
  });

  test('a failed replay leaves the partition unowned; becomeCoordinator can be called again', async () => {
    const c = await cluster();
    const failing: GroupLog = {
      partitionCount: () => PARTITIONS,
      append: (p, r) => c.log.append(p, r),
      replay: async () => {
        throw new Error('read error');
      },
    };
    const time = c.time;
    const x = new GroupCoordinator({ log: failing, clock: time, scheduler: time, ownership: 'assigned' });
    await x.load();
    await assert.rejects(x.becomeCoordinator(P), /read error/);
    assert.equal(x.ownsPartition(P), false);
    assert.equal(x.fetchOffsets(GROUP, null).errorCode, ErrorCode.NOT_COORDINATOR);
    failing.replay = (p, on) => c.log.replay(p, on);
    await x.becomeCoordinator(P);
    assert.equal(x.ownsPartition(P), true);
  });

  test('a reload after a failed write does not bring back a group whose partition was resigned', async () => {
    const c = await cluster();
    await c.a.becomeCoordinator(P);
    assert.equal((await consumerJoin(c, c.a, 'X')).errorCode, ErrorCode.NONE);
    c.log.failAppends = new KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER);
    c.logA.close();
    const y = await consumerJoin(c, c.a, 'Y');
    assert.equal(y.errorCode, ErrorCode.NOT_COORDINATOR);
    assert.equal(c.logA.replays, 2, 'the group is being rebuilt from the log');
    // Leadership moved: the broker resigns A while the reload still waits for the log.
    c.a.resignCoordinator(P);
    c.log.failAppends = null;
    c.logA.open();
    await tick(c);
    assert.equal(c.a.consumer.group(GROUP), undefined);
    assert.equal(c.a.consumer.groups.size, 0);
    await c.b.becomeCoordinator(P);
    assert.deepEqual([...(c.b.consumer.group(GROUP)?.members.keys() ?? [])], ['X']);
  });
});

describe('leader epochs', () => {
  test('a become with a newer epoch reloads what a missed resign left stale; stale resigns are ignored', async () => {
    const c = await cluster();
    await c.a.becomeCoordinator(P, 1);
    assert.equal((await c.a.commitOffsets(commitParams()))[0]!.errorCode, ErrorCode.NONE);
    // Leadership moves to B (epoch 2); A never hears of it (its metadata updates were coalesced).
    await c.b.becomeCoordinator(P, 2);
    const r = await c.b.commitOffsets(
      commitParams({
        offsets: [
          { topic: 'orders', partition: 0, offset: 43, leaderEpoch: -1, metadata: null, commitTimestamp: -1 },
        ],
      }),
    );
    assert.equal(r[0]!.errorCode, ErrorCode.NONE);
    assert.equal(offsetOf(c.a), 42, 'A still serves what it loaded in epoch 1');
    // A resign older than B's election changes nothing.
    c.b.resignCoordinator(P, 2);
    c.b.resignCoordinator(P, 1);
    assert.equal(c.b.ownsPartition(P), true);
    // Back to A in epoch 3: it reloads and sees B's commit.
    c.b.resignCoordinator(P, 3);
    assert.equal(c.b.ownsPartition(P), false);
    const reload = c.a.becomeCoordinator(P, 3);
    assert.equal(c.a.fetchOffsets(GROUP, null).errorCode, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS);
    await reload;
    assert.equal(offsetOf(c.a), 43);
    // Not newer: nothing happens (no replay).
    const replays = c.logA.replays;
    await c.a.becomeCoordinator(P, 3);
    await c.a.becomeCoordinator(P, 2);
    await c.a.becomeCoordinator(P);
    assert.equal(c.logA.replays, replays);
    // Without epochs, resign always resigns.
    c.a.resignCoordinator(P);
    assert.equal(c.a.ownsPartition(P), false);
  });
});

describe('failed appends (the partition error of a replicated __consumer_offsets)', () => {
  // Kafka's GroupMetadataManager / CoordinatorRuntime mapping of append errors.
  const cases: { append: ErrorCode | 'plain'; commit: ErrorCode; group: ErrorCode }[] = [
    {
      append: ErrorCode.NOT_LEADER_OR_FOLLOWER,
      commit: ErrorCode.NOT_COORDINATOR,
      group: ErrorCode.NOT_COORDINATOR,
    },
    {
      append: ErrorCode.KAFKA_STORAGE_ERROR,
      commit: ErrorCode.NOT_COORDINATOR,
      group: ErrorCode.NOT_COORDINATOR,
    },
    {
      append: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
      commit: ErrorCode.COORDINATOR_NOT_AVAILABLE,
      group: ErrorCode.COORDINATOR_NOT_AVAILABLE,
    },
    {
      append: ErrorCode.NOT_ENOUGH_REPLICAS,
      commit: ErrorCode.COORDINATOR_NOT_AVAILABLE,
      group: ErrorCode.COORDINATOR_NOT_AVAILABLE,
    },
    {
      append: ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
      commit: ErrorCode.COORDINATOR_NOT_AVAILABLE,
      group: ErrorCode.COORDINATOR_NOT_AVAILABLE,
    },
    {
      append: ErrorCode.REQUEST_TIMED_OUT,
      commit: ErrorCode.COORDINATOR_NOT_AVAILABLE,
      group: ErrorCode.COORDINATOR_NOT_AVAILABLE,
    },
    {
      append: ErrorCode.MESSAGE_TOO_LARGE,
      commit: ErrorCode.INVALID_COMMIT_OFFSET_SIZE,
      group: ErrorCode.UNKNOWN_SERVER_ERROR,
    },
    {
      append: ErrorCode.RECORD_LIST_TOO_LARGE,
      commit: ErrorCode.INVALID_COMMIT_OFFSET_SIZE,
      group: ErrorCode.UNKNOWN_SERVER_ERROR,
    },
    {
      append: ErrorCode.INVALID_FETCH_SIZE,
      commit: ErrorCode.INVALID_COMMIT_OFFSET_SIZE,
      group: ErrorCode.UNKNOWN_SERVER_ERROR,
    },
    {
      append: ErrorCode.CORRUPT_MESSAGE,
      commit: ErrorCode.CORRUPT_MESSAGE,
      group: ErrorCode.CORRUPT_MESSAGE,
    },
    {
      append: 'plain',
      commit: ErrorCode.COORDINATOR_NOT_AVAILABLE,
      group: ErrorCode.COORDINATOR_NOT_AVAILABLE,
    },
  ];

  for (const k of cases) {
    const name = k.append === 'plain' ? 'a non-Kafka error' : ErrorCode[k.append];
    test(`${name}: OffsetCommit ${ErrorCode[k.commit]}, group writes ${ErrorCode[k.group]}; memory follows the log`, async () => {
      const c = await cluster();
      await c.a.becomeCoordinator(P);
      const m1 = await stableMember(c, c.a);
      await c.a.commitOffsets(commitParams({ generationId: m1.generationId, memberId: m1.memberId }));
      await c.a.becomeCoordinator(OTHER_P);
      const cg = OTHER;
      const join = (memberId: string) =>
        c.a.consumerGroupHeartbeat(
          hb({
            groupId: cg,
            memberId,
            memberEpoch: 0,
            rebalanceTimeoutMs: 5000,
            subscribedTopicNames: ['orders'],
            topicPartitions: [],
          }),
          c.topics,
        );
      assert.equal((await join('X')).errorCode, ErrorCode.NONE);
      const consumerBefore = c.a.describeConsumerGroup(cg, c.topics);

      c.log.failAppends =
        k.append === 'plain' ? new Error('disk on fire') : new KafkaError(k.append, 'append failed');

      // OffsetCommit: mapped; the committed offset stays what the log has.
      const r = await c.a.commitOffsets(
        commitParams({
          generationId: m1.generationId,
          memberId: m1.memberId,
          offsets: [
            {
              topic: 'orders',
              partition: 0,
              offset: 99,
              leaderEpoch: -1,
              metadata: null,
              commitTimestamp: -1,
            },
          ],
        }),
      );
      assert.equal(r[0]!.errorCode, k.commit);
      assert.equal(offsetOf(c.a), 42);

      // The leader's SyncGroup: the assignment is not stored; members rejoin.
      const rejoin = c.a.joinGroup(joinParams({ memberId: m1.memberId }));
      await tick(c);
      const j = await rejoin;
      assert.equal(j.generationId, m1.generationId + 1);
      const s = await c.a.syncGroup({
        groupId: GROUP,
        generationId: j.generationId,
        memberId: j.memberId,
        groupInstanceId: null,
        protocolType: 'consumer',
        protocolName: 'range',
        assignments: [{ memberId: j.memberId, assignment: Buffer.from('x') }],
      });
      assert.equal(s.errorCode, k.group);
      assert.equal(c.a.group(GROUP)?.state, 'PreparingRebalance');

      // ConsumerGroupHeartbeat: mapped; the group is rebuilt from the log.
      assert.equal((await join('Y')).errorCode, k.group);

      c.log.failAppends = null;
      await tick(c);
      assert.deepEqual(
        c.a.describeConsumerGroup(cg, c.topics),
        consumerBefore,
        'consumer group as in the log',
      );
      // What A holds equals what a coordinator loading the log now holds.
      c.a.resignCoordinator(P);
      c.a.resignCoordinator(OTHER_P);
      await c.b.becomeCoordinator(P);
      await c.b.becomeCoordinator(OTHER_P);
      assert.equal(offsetOf(c.b), 42);
      assert.deepEqual(c.b.describeConsumerGroup(cg, c.topics), consumerBefore);
      assert.equal(
        c.b.group(GROUP)?.generationId,
        m1.generationId,
        'the unstored generation is not in the log',
      );
    });
  }

  test('DeleteGroups and OffsetDelete map the error and delete nothing', async () => {
    const c = await cluster();
    await c.a.becomeCoordinator(P);
    assert.equal((await c.a.commitOffsets(commitParams()))[0]!.errorCode, ErrorCode.NONE);
    c.log.failAppends = new KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER);
    assert.equal(
      (await c.a.deleteOffsets(GROUP, [{ name: 'orders', partitions: [0] }])).errorCode,
      ErrorCode.NOT_COORDINATOR,
    );
    assert.deepEqual(await c.a.deleteGroups([GROUP]), [
      { groupId: GROUP, errorCode: ErrorCode.NOT_COORDINATOR },
    ]);
    c.log.failAppends = null;
    assert.equal(c.a.group(GROUP)?.state, 'Empty');
    assert.equal(offsetOf(c.a), 42);
  });
});
