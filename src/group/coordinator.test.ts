/**
 * Unit tests of the classic group coordinator on manual time and an in-memory log: join, sync
 * and heartbeat flows, KIP-394 member ids, KIP-345 static members, session expiry, generation
 * checks, standalone commits, persistence across a "restart" (a new coordinator replaying the
 * same log), and the admin APIs (describe, list, delete groups, delete offsets).
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ErrorCode } from '../protocol/errors.js';
import { encodeConsumerProtocolSubscription } from '../protocol/generated/consumer-protocol-subscription.js';
import { Writer } from '../protocol/primitives.js';
import {
  GroupCoordinator,
  type GroupCoordinatorConfig,
  type JoinGroupParams,
  javaStringHashCode,
  partitionForGroup,
} from './coordinator.js';
import { InMemoryGroupLog } from './group-log.js';
import { decodeGroupRecord } from './records.js';
import { ManualTime, flushMicrotasks } from './time.js';

function subscription(topics: string[]): Buffer {
  const w = new Writer(64);
  w.int16(0);
  encodeConsumerProtocolSubscription(w, { topics, userData: null }, 0);
  return w.toBuffer();
}

interface Env {
  time: ManualTime;
  log: InMemoryGroupLog;
  coord: GroupCoordinator;
  restart(): Promise<GroupCoordinator>;
}

async function setup(
  config: Partial<GroupCoordinatorConfig> = {},
  log = new InMemoryGroupLog(50),
): Promise<Env> {
  const time = new ManualTime();
  let n = 0;
  const make = async () => {
    const c = new GroupCoordinator({
      log,
      clock: time,
      scheduler: time,
      config: { initialRebalanceDelayMs: 0, ...config },
      newMemberId: (p) => `${p}-${++n}`,
    });
    await c.load();
    return c;
  };
  const env: Env = {
    time,
    log,
    coord: await make(),
    async restart() {
      env.coord.shutdown();
      env.coord = await make();
      return env.coord;
    },
  };
  return env;
}

function joinParams(over: Partial<JoinGroupParams> = {}): JoinGroupParams {
  return {
    groupId: 'g',
    memberId: '',
    groupInstanceId: null,
    protocolType: 'consumer',
    protocols: [{ name: 'range', metadata: subscription(['t']) }],
    sessionTimeoutMs: 10000,
    rebalanceTimeoutMs: 30000,
    clientId: 'c',
    clientHost: '/127.0.0.1',
    requireKnownMemberId: true,
    supportsSkipAssignment: true,
    ...over,
  };
}

/** Joins with KIP-394 (first MEMBER_ID_REQUIRED) and returns the pending join promise. */
async function joinNew(env: Env, over: Partial<JoinGroupParams> = {}) {
  const first = await env.coord.joinGroup(joinParams(over));
  assert.equal(first.errorCode, ErrorCode.MEMBER_ID_REQUIRED);
  assert.ok(first.memberId.length > 0);
  return env.coord.joinGroup(joinParams({ ...over, memberId: first.memberId }));
}

/** Settles pending promises and fires timers due now. */
async function tick(env: Env, ms = 0): Promise<void> {
  await env.time.advance(ms);
  await flushMicrotasks();
}

/** One member forms generation 1 and syncs; returns its member id. */
async function singleStable(
  env: Env,
  over: Partial<JoinGroupParams> = {},
): Promise<{ memberId: string; generationId: number }> {
  // Static members are not asked for a member id first (KIP-345).
  const p = over.groupInstanceId ? env.coord.joinGroup(joinParams(over)) : joinNew(env, over);
  await tick(env);
  const j = await p;
  assert.equal(j.errorCode, 0);
  const s = await env.coord.syncGroup({
    groupId: over.groupId ?? 'g',
    generationId: j.generationId,
    memberId: j.memberId,
    groupInstanceId: over.groupInstanceId ?? null,
    protocolType: 'consumer',
    protocolName: 'range',
    assignments: [{ memberId: j.memberId, assignment: Buffer.from('A') }],
  });
  assert.equal(s.errorCode, 0);
  return { memberId: j.memberId, generationId: j.generationId };
}

describe('partitionFor', () => {
  test('Java String.hashCode and Utils.abs, as Kafka', () => {
    assert.equal(javaStringHashCode(''), 0);
    assert.equal(javaStringHashCode('hello'), 99162322);
    assert.equal(javaStringHashCode('polygenelubricants'), -2147483648);
    assert.equal(partitionForGroup('hello', 50), 99162322 % 50);
    assert.equal(partitionForGroup('polygenelubricants', 50), 0);
    // Negative hash: abs then modulo.
    const h = javaStringHashCode('console-consumer-12345');
    assert.equal(partitionForGroup('console-consumer-12345', 50), Math.abs(h) % 50);
  });
});

describe('JoinGroup / SyncGroup / Heartbeat', () => {
  test('KIP-394: first join gets MEMBER_ID_REQUIRED, second forms generation 1 with the member as leader', async () => {
    const env = await setup();
    const p = joinNew(env);
    await tick(env);
    const j = await p;
    assert.equal(j.errorCode, 0);
    assert.equal(j.generationId, 1);
    assert.equal(j.leader, j.memberId);
    assert.equal(j.protocolName, 'range');
    assert.equal(j.protocolType, 'consumer');
    assert.equal(j.members.length, 1);
    assert.equal(env.coord.group('g')!.state, 'CompletingRebalance');
  });

  test('join without KIP-394 (v0-3) joins directly', async () => {
    const env = await setup();
    const p = env.coord.joinGroup(joinParams({ requireKnownMemberId: false }));
    await tick(env);
    const j = await p;
    assert.equal(j.errorCode, 0);
    assert.equal(j.generationId, 1);
  });

  test('two members: rebalance, leader gets member metadata, follower waits for the leader sync', async () => {
    const env = await setup();
    const a = await singleStable(env, { clientId: 'a' });
    assert.equal(env.coord.group('g')!.state, 'Stable');
    // B joins: group prepares a rebalance; A learns by heartbeat and rejoins.
    const bJoin = joinNew(env, { clientId: 'b' });
    await tick(env);
    assert.equal(env.coord.group('g')!.state, 'PreparingRebalance');
    assert.equal(
      env.coord.heartbeat({ groupId: 'g', generationId: 1, memberId: a.memberId, groupInstanceId: null }),
      ErrorCode.REBALANCE_IN_PROGRESS,
    );
    const aJoin = env.coord.joinGroup(joinParams({ memberId: a.memberId, clientId: 'a' }));
    await tick(env);
    const [ja, jb] = await Promise.all([aJoin, bJoin]);
    assert.equal(ja.generationId, 2);
    assert.equal(jb.generationId, 2);
    assert.equal(ja.leader, a.memberId, 'leader kept');
    assert.equal(ja.members.length, 2);
    assert.equal(jb.members.length, 0);
    // Follower syncs first and waits.
    let bSynced = false;
    const bSync = env.coord
      .syncGroup({
        groupId: 'g',
        generationId: 2,
        memberId: jb.memberId,
        groupInstanceId: null,
        protocolType: null,
        protocolName: null,
        assignments: [],
      })
      .then((r) => {
        bSynced = true;
        return r;
      });
    await tick(env);
    assert.equal(bSynced, false);
    assert.equal(
      env.coord.heartbeat({ groupId: 'g', generationId: 2, memberId: jb.memberId, groupInstanceId: null }),
      0,
    );
    const aSync = await env.coord.syncGroup({
      groupId: 'g',
      generationId: 2,
      memberId: a.memberId,
      groupInstanceId: null,
      protocolType: 'consumer',
      protocolName: 'range',
      assignments: [
        { memberId: a.memberId, assignment: Buffer.from('AA') },
        { memberId: jb.memberId, assignment: Buffer.from('BB') },
      ],
    });
    assert.equal(aSync.assignment.toString(), 'AA');
    assert.equal((await bSync).assignment.toString(), 'BB');
    assert.equal(env.coord.group('g')!.state, 'Stable');
    // Heartbeats with the wrong generation, member or static id.
    assert.equal(
      env.coord.heartbeat({ groupId: 'g', generationId: 1, memberId: a.memberId, groupInstanceId: null }),
      ErrorCode.ILLEGAL_GENERATION,
    );
    assert.equal(
      env.coord.heartbeat({ groupId: 'g', generationId: 2, memberId: 'nope', groupInstanceId: null }),
      ErrorCode.UNKNOWN_MEMBER_ID,
    );
    assert.equal(
      env.coord.heartbeat({ groupId: 'nope', generationId: 2, memberId: 'x', groupInstanceId: null }),
      ErrorCode.UNKNOWN_MEMBER_ID,
    );
    // A SyncGroup of an old generation.
    const stale = await env.coord.syncGroup({
      groupId: 'g',
      generationId: 1,
      memberId: a.memberId,
      groupInstanceId: null,
      protocolType: null,
      protocolName: null,
      assignments: [],
    });
    assert.equal(stale.errorCode, ErrorCode.ILLEGAL_GENERATION);
    const wrongProto = await env.coord.syncGroup({
      groupId: 'g',
      generationId: 2,
      memberId: a.memberId,
      groupInstanceId: null,
      protocolType: null,
      protocolName: 'other',
      assignments: [],
    });
    assert.equal(wrongProto.errorCode, ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
  });

  test('a member that does not rejoin in the rebalance timeout is removed', async () => {
    const env = await setup();
    const a = await singleStable(env, { clientId: 'a', rebalanceTimeoutMs: 20000, sessionTimeoutMs: 30000 });
    const bJoin = joinNew(env, { clientId: 'b', rebalanceTimeoutMs: 20000 });
    await tick(env, 19999);
    assert.equal(env.coord.group('g')!.state, 'PreparingRebalance');
    await tick(env, 1);
    const jb = await bJoin;
    assert.equal(jb.errorCode, 0);
    assert.equal(jb.generationId, 2);
    assert.equal(jb.leader, jb.memberId, 'new leader: the old one left');
    assert.equal(env.coord.group('g')!.has(a.memberId), false);
  });

  test('group.initial.rebalance.delay.ms: the first rebalance waits, and new joins extend it', async () => {
    const env = await setup({ initialRebalanceDelayMs: 3000 });
    const results: number[] = [];
    const record = <T extends { generationId: number }>(r: T): T => {
      results.push(r.generationId);
      return r;
    };
    const a = joinNew(env, { clientId: 'a', rebalanceTimeoutMs: 10000 }).then(record);
    await tick(env, 2000);
    const b = joinNew(env, { clientId: 'b', rebalanceTimeoutMs: 10000 }).then(record);
    await tick(env, 1000); // 3000: first delay over, a member was added -> one more delay
    assert.deepEqual(results, []);
    await tick(env, 3000);
    const [ja, jb] = await Promise.all([a, b]);
    assert.equal(ja.generationId, 1);
    assert.equal(jb.generationId, 1);
    assert.equal(env.coord.group('g')!.size, 2);
  });

  test('session expiry removes a member and triggers a rebalance', async () => {
    const env = await setup();
    const a = await singleStable(env, { clientId: 'a', sessionTimeoutMs: 10000 });
    const bJoin = joinNew(env, { clientId: 'b', sessionTimeoutMs: 10000 });
    await tick(env);
    const aJoin = env.coord.joinGroup(
      joinParams({ memberId: a.memberId, clientId: 'a', sessionTimeoutMs: 10000 }),
    );
    await tick(env);
    const [ja, jb] = await Promise.all([aJoin, bJoin]);
    for (const j of [ja, jb]) {
      const s = env.coord.syncGroup({
        groupId: 'g',
        generationId: j.generationId,
        memberId: j.memberId,
        groupInstanceId: null,
        protocolType: null,
        protocolName: null,
        assignments: j.members.map((m) => ({ memberId: m.memberId, assignment: Buffer.from(m.memberId) })),
      });
      await tick(env);
      assert.equal((await s).errorCode, 0);
    }
    // Only B heartbeats; A's session runs out.
    for (let t = 0; t < 12; t++) {
      await tick(env, 1000);
      const hb = env.coord.heartbeat({
        groupId: 'g',
        generationId: 2,
        memberId: jb.memberId,
        groupInstanceId: null,
      });
      if (t < 9) assert.equal(hb, 0, `t=${t}`);
      else assert.equal(hb, ErrorCode.REBALANCE_IN_PROGRESS, `t=${t}`);
    }
    assert.equal(env.coord.group('g')!.has(a.memberId), false);
    const again = env.coord.joinGroup(
      joinParams({ memberId: jb.memberId, clientId: 'b', sessionTimeoutMs: 10000 }),
    );
    await tick(env);
    const r = await again;
    assert.equal(r.generationId, 3);
    assert.equal(r.members.length, 1);
  });

  test('a pending member id (MEMBER_ID_REQUIRED) expires after the session timeout', async () => {
    const env = await setup();
    const first = await env.coord.joinGroup(joinParams());
    await tick(env, 10001);
    const j = await env.coord.joinGroup(joinParams({ memberId: first.memberId }));
    assert.equal(j.errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
  });

  test('request validation: group id, session timeout, protocols, group size', async () => {
    const env = await setup({ maxSize: 1 });
    assert.equal(
      (await env.coord.joinGroup(joinParams({ groupId: '' }))).errorCode,
      ErrorCode.INVALID_GROUP_ID,
    );
    assert.equal(
      (await env.coord.joinGroup(joinParams({ sessionTimeoutMs: 5999 }))).errorCode,
      ErrorCode.INVALID_SESSION_TIMEOUT,
    );
    assert.equal(
      (await env.coord.joinGroup(joinParams({ sessionTimeoutMs: 1800001 }))).errorCode,
      ErrorCode.INVALID_SESSION_TIMEOUT,
    );
    assert.equal(
      (await env.coord.joinGroup(joinParams({ protocols: [] }))).errorCode,
      ErrorCode.INCONSISTENT_GROUP_PROTOCOL,
    );
    assert.equal(
      (await env.coord.joinGroup(joinParams({ memberId: 'ghost' }))).errorCode,
      ErrorCode.UNKNOWN_MEMBER_ID,
    );
    assert.equal(env.coord.listGroups([], []).groups.length, 0, 'failed joins leave no group behind');
    await singleStable(env);
    assert.equal((await env.coord.joinGroup(joinParams())).errorCode, ErrorCode.GROUP_MAX_SIZE_REACHED);
    env.coord.config.maxSize = 10;
    assert.equal(
      (await env.coord.joinGroup(joinParams({ protocolType: 'connect' }))).errorCode,
      ErrorCode.INCONSISTENT_GROUP_PROTOCOL,
    );
    assert.equal(
      (
        await env.coord.joinGroup(
          joinParams({ protocols: [{ name: 'roundrobin', metadata: Buffer.alloc(0) }] }),
        )
      ).errorCode,
      ErrorCode.INCONSISTENT_GROUP_PROTOCOL,
    );
  });

  test('protocol selection: the protocol all members support with the most votes', async () => {
    const env = await setup();
    const both = [
      { name: 'roundrobin', metadata: subscription(['t']) },
      { name: 'range', metadata: subscription(['t']) },
    ];
    const a = joinNew(env, { protocols: both });
    const b = joinNew(env, { protocols: [both[1]!, both[0]!] });
    const c = joinNew(env, { protocols: both });
    await tick(env);
    const rs = await Promise.all([a, b, c]);
    for (const r of rs) assert.equal(r.protocolName, 'roundrobin');
  });

  test('a SyncGroup before the rebalance completes gets REBALANCE_IN_PROGRESS; leaving members fail their waiting requests', async () => {
    const env = await setup();
    const a = await singleStable(env);
    const bJoin = joinNew(env, { clientId: 'b' });
    await tick(env);
    const s = await env.coord.syncGroup({
      groupId: 'g',
      generationId: 1,
      memberId: a.memberId,
      groupInstanceId: null,
      protocolType: null,
      protocolName: null,
      assignments: [],
    });
    assert.equal(s.errorCode, ErrorCode.REBALANCE_IN_PROGRESS);
    // B (awaiting join) leaves: its join is answered UNKNOWN_MEMBER_ID.
    const jbId = [...env.coord.group('g')!.members.keys()].find((id) => id !== a.memberId)!;
    const leave = env.coord.leaveGroup('g', [{ memberId: jbId, groupInstanceId: null }]);
    assert.deepEqual(
      leave.members.map((m) => m.errorCode),
      [0],
    );
    assert.equal((await bJoin).errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
  });
});

describe('static membership (KIP-345)', () => {
  test('a static member rejoining with a new member id replaces the old one without a rebalance', async () => {
    const env = await setup();
    const a = await singleStable(env, { groupInstanceId: 'ia', clientId: 'a' });
    const bJoin = env.coord.joinGroup(joinParams({ groupInstanceId: 'ib', clientId: 'b' }));
    await tick(env);
    const aJoin = env.coord.joinGroup(
      joinParams({ memberId: a.memberId, groupInstanceId: 'ia', clientId: 'a' }),
    );
    await tick(env);
    const [ja, jb] = await Promise.all([aJoin, bJoin]);
    assert.equal(jb.errorCode, 0, 'static members skip MEMBER_ID_REQUIRED');
    const leader = ja.leader === ja.memberId ? ja : jb;
    const syncs = [ja, jb].map((j) =>
      env.coord.syncGroup({
        groupId: 'g',
        generationId: j.generationId,
        memberId: j.memberId,
        groupInstanceId: j === ja ? 'ia' : 'ib',
        protocolType: null,
        protocolName: null,
        assignments:
          j === leader
            ? [
                { memberId: ja.memberId, assignment: Buffer.from('for-a') },
                { memberId: jb.memberId, assignment: Buffer.from('for-b') },
              ]
            : [],
      }),
    );
    await tick(env);
    await Promise.all(syncs);
    const gen = env.coord.group('g')!.generationId;
    // B restarts: joins with no member id and its instance id.
    const r = await (async () => {
      const p = env.coord.joinGroup(joinParams({ groupInstanceId: 'ib', clientId: 'b' }));
      await tick(env);
      return p;
    })();
    assert.equal(r.errorCode, 0);
    assert.notEqual(r.memberId, jb.memberId);
    assert.equal(r.generationId, gen, 'no new generation');
    assert.equal(env.coord.group('g')!.state, 'Stable');
    const s = await env.coord.syncGroup({
      groupId: 'g',
      generationId: gen,
      memberId: r.memberId,
      groupInstanceId: 'ib',
      protocolType: null,
      protocolName: null,
      assignments: [],
    });
    assert.equal(s.assignment.toString(), 'for-b', 'old assignment handed back');
    // The old incarnation is fenced.
    assert.equal(
      env.coord.heartbeat({ groupId: 'g', generationId: gen, memberId: jb.memberId, groupInstanceId: 'ib' }),
      ErrorCode.FENCED_INSTANCE_ID,
    );
    assert.equal(
      env.coord.heartbeat({ groupId: 'g', generationId: gen, memberId: r.memberId, groupInstanceId: 'ib' }),
      0,
    );
    // A's heartbeat is undisturbed.
    assert.equal(
      env.coord.heartbeat({ groupId: 'g', generationId: gen, memberId: ja.memberId, groupInstanceId: 'ia' }),
      0,
    );
    // The replacement is persisted: after a restart the new member id is known.
    await env.restart();
    assert.equal(
      env.coord.heartbeat({ groupId: 'g', generationId: gen, memberId: r.memberId, groupInstanceId: 'ib' }),
      0,
    );
  });

  test('a static leader rejoining (v9) is told to skip the assignment', async () => {
    const env = await setup();
    const a = await singleStable(env, { groupInstanceId: 'ia' });
    const p = env.coord.joinGroup(joinParams({ groupInstanceId: 'ia' }));
    await tick(env);
    const r = await p;
    assert.equal(r.errorCode, 0);
    assert.equal(r.leader, r.memberId);
    assert.equal(r.skipAssignment, true);
    assert.equal(r.members.length, 1);
    assert.notEqual(r.memberId, a.memberId);
  });

  test('a static member with changed protocols triggers a rebalance', async () => {
    const env = await setup();
    await singleStable(env, { groupInstanceId: 'ia' });
    const p = env.coord.joinGroup(
      joinParams({
        groupInstanceId: 'ia',
        protocols: [
          { name: 'roundrobin', metadata: Buffer.alloc(0) },
          { name: 'range', metadata: subscription(['t']) },
        ],
      }),
    );
    await tick(env);
    const r = await p;
    assert.equal(r.generationId, 2);
    assert.equal(r.protocolName, 'roundrobin');
  });

  test('LeaveGroup by instance id; a mismatched member id is fenced', async () => {
    const env = await setup();
    const a = await singleStable(env, { groupInstanceId: 'ia' });
    const r = env.coord.leaveGroup('g', [
      { memberId: 'other', groupInstanceId: 'ia' },
      { memberId: '', groupInstanceId: 'unknown' },
      { memberId: '', groupInstanceId: 'ia' },
    ]);
    assert.deepEqual(
      r.members.map((m) => m.errorCode),
      [ErrorCode.FENCED_INSTANCE_ID, ErrorCode.UNKNOWN_MEMBER_ID, 0],
    );
    assert.equal(env.coord.group('g')!.has(a.memberId), false);
    await tick(env);
    assert.equal(env.coord.group('g')!.state, 'Empty');
  });
});

describe('offsets', () => {
  const commit = (env: Env, over: Partial<Parameters<GroupCoordinator['commitOffsets']>[0]> = {}) =>
    env.coord.commitOffsets({
      groupId: 'g',
      generationId: -1,
      memberId: '',
      groupInstanceId: null,
      apiVersion: 8,
      retentionTimeMs: -1,
      offsets: [{ topic: 't', partition: 0, offset: 42, leaderEpoch: 3, metadata: 'm', commitTimestamp: -1 }],
      ...over,
    });

  test('standalone commits (generation -1) create a simple group and are fetched back', async () => {
    const env = await setup();
    const r = await commit(env);
    assert.deepEqual(r, [{ topic: 't', partition: 0, errorCode: 0 }]);
    const f = env.coord.fetchOffsets('g', [{ name: 't', partitions: [0, 1] }]);
    assert.deepEqual(f.topics[0]!.partitions, [
      { partitionIndex: 0, committedOffset: 42, committedLeaderEpoch: 3, metadata: 'm', errorCode: 0 },
      { partitionIndex: 1, committedOffset: -1, committedLeaderEpoch: -1, metadata: '', errorCode: 0 },
    ]);
    assert.deepEqual(
      env.coord.fetchOffsets('g', null).topics.map((t) => t.name),
      ['t'],
    );
    assert.deepEqual(env.coord.listGroups([], []).groups, [
      { groupId: 'g', protocolType: '', groupState: 'Empty', groupType: 'classic' },
    ]);
  });

  test('standalone commits are refused while the group has members', async () => {
    const env = await setup();
    const a = await singleStable(env);
    assert.equal((await commit(env))[0]!.errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
    assert.equal((await commit(env, { generationId: 1, memberId: a.memberId }))[0]!.errorCode, 0);
    assert.equal(
      (await commit(env, { generationId: 7, memberId: a.memberId }))[0]!.errorCode,
      ErrorCode.ILLEGAL_GENERATION,
    );
    assert.equal(
      (await commit(env, { generationId: 1, memberId: 'x' }))[0]!.errorCode,
      ErrorCode.UNKNOWN_MEMBER_ID,
    );
  });

  test('a commit with a generation for an unknown group: ILLEGAL_GENERATION (v8), GROUP_ID_NOT_FOUND (v9)', async () => {
    const env = await setup();
    assert.equal(
      (await commit(env, { generationId: 3, memberId: 'm' }))[0]!.errorCode,
      ErrorCode.ILLEGAL_GENERATION,
    );
    assert.equal(
      (await commit(env, { generationId: 3, memberId: 'm', apiVersion: 9 }))[0]!.errorCode,
      ErrorCode.GROUP_ID_NOT_FOUND,
    );
  });

  test('commits during CompletingRebalance get REBALANCE_IN_PROGRESS', async () => {
    const env = await setup();
    const p = joinNew(env);
    await tick(env);
    const j = await p;
    assert.equal(
      (await commit(env, { generationId: 1, memberId: j.memberId }))[0]!.errorCode,
      ErrorCode.REBALANCE_IN_PROGRESS,
    );
  });

  test('OFFSET_METADATA_TOO_LARGE beyond offset.metadata.max.bytes', async () => {
    const env = await setup({ offsetMetadataMaxBytes: 10 });
    const r = await commit(env, {
      offsets: [
        {
          topic: 't',
          partition: 0,
          offset: 1,
          leaderEpoch: -1,
          metadata: 'x'.repeat(11),
          commitTimestamp: -1,
        },
        {
          topic: 't',
          partition: 1,
          offset: 1,
          leaderEpoch: -1,
          metadata: 'x'.repeat(10),
          commitTimestamp: -1,
        },
      ],
    });
    assert.deepEqual(
      r.map((x) => x.errorCode),
      [ErrorCode.OFFSET_METADATA_TOO_LARGE, 0],
    );
  });

  test('a failed write is reported and leaves the committed offset unchanged', async () => {
    const env = await setup();
    await commit(env);
    env.log.failAppends = new Error('disk on fire');
    const r = await commit(env, {
      offsets: [
        { topic: 't', partition: 0, offset: 99, leaderEpoch: -1, metadata: null, commitTimestamp: -1 },
      ],
    });
    assert.equal(r[0]!.errorCode, ErrorCode.COORDINATOR_NOT_AVAILABLE);
    assert.equal(
      env.coord.fetchOffsets('g', [{ name: 't', partitions: [0] }]).topics[0]!.partitions[0]!.committedOffset,
      42,
    );
  });

  test('groups and offsets survive a restart (a new coordinator replays the log)', async () => {
    const env = await setup();
    const a = await singleStable(env, { clientId: 'a' });
    await commit(env, { generationId: 1, memberId: a.memberId });
    await commit(env, {
      groupId: 'simple',
      offsets: [
        { topic: 't', partition: 3, offset: 7, leaderEpoch: -1, metadata: null, commitTimestamp: -1 },
      ],
    });
    // Records are Kafka's: offset commit key v1 / value v3, group metadata key v2 / value v3.
    const kinds = env.log.all().map((r) => decodeGroupRecord(r.key, r.value).type);
    assert.ok(kinds.includes('offset') && kinds.includes('group'));
    assert.equal(env.log.all()[0]!.key.readInt16BE(0), 2);
    assert.equal(env.log.all()[0]!.value!.readInt16BE(0), 3);
    const c = await env.restart();
    assert.equal(
      c.fetchOffsets('g', [{ name: 't', partitions: [0] }]).topics[0]!.partitions[0]!.committedOffset,
      42,
    );
    assert.equal(c.fetchOffsets('simple', null).topics[0]!.partitions[0]!.committedOffset, 7);
    const g = c.group('g')!;
    assert.equal(g.state, 'Stable');
    assert.equal(g.generationId, 1);
    assert.equal(g.members.get(a.memberId)!.assignment.toString(), 'A');
    // The member carries on with its generation; a rejoin without change keeps the assignment.
    assert.equal(
      c.heartbeat({ groupId: 'g', generationId: 1, memberId: a.memberId, groupInstanceId: null }),
      0,
    );
    const s = await c.syncGroup({
      groupId: 'g',
      generationId: 1,
      memberId: a.memberId,
      groupInstanceId: null,
      protocolType: null,
      protocolName: null,
      assignments: [],
    });
    assert.equal(s.assignment.toString(), 'A');
    // Members that do not come back expire.
    await tick(env, 10001);
    assert.equal(c.group('g')!.has(a.memberId), false);
  });

  test('COORDINATOR_LOAD_IN_PROGRESS before the log is replayed', async () => {
    const time = new ManualTime();
    const c = new GroupCoordinator({ log: new InMemoryGroupLog(), clock: time, scheduler: time });
    assert.equal((await c.joinGroup(joinParams())).errorCode, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS);
    assert.equal(c.fetchOffsets('g', null).errorCode, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS);
    assert.equal(
      c.heartbeat({ groupId: 'g', generationId: 1, memberId: 'm', groupInstanceId: null }),
      ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
    );
    assert.equal(c.fetchOffsets('', null).errorCode, ErrorCode.INVALID_GROUP_ID);
  });

  test('offsets.retention.ms: offsets of an Empty group expire, then the group is removed', async () => {
    const env = await setup({ offsetsRetentionMs: 60000, offsetsRetentionCheckIntervalMs: 10000 });
    const a = await singleStable(env, { sessionTimeoutMs: 300000 });
    await commit(env, { generationId: 1, memberId: a.memberId });
    await tick(env, 50000);
    assert.equal(env.coord.fetchOffsets('g', null).topics.length, 1, 'kept while the group has members');
    env.coord.leaveGroup('g', [{ memberId: a.memberId, groupInstanceId: null }]);
    await tick(env);
    assert.equal(env.coord.group('g')!.state, 'Empty');
    await tick(env, 50000);
    assert.equal(env.coord.fetchOffsets('g', null).topics.length, 1, 'empty for less than the retention');
    await tick(env, 20000);
    assert.equal(env.coord.fetchOffsets('g', null).topics.length, 0);
    assert.equal(env.coord.group('g'), undefined);
    await env.restart();
    assert.equal(env.coord.group('g'), undefined, 'tombstones replayed');
  });
});

describe('admin APIs', () => {
  test('DescribeGroups and ListGroups with filters', async () => {
    const env = await setup();
    const a = await singleStable(env, { clientId: 'client-a' });
    const d = env.coord.describeGroup('g');
    assert.equal(d.groupState, 'Stable');
    assert.equal(d.protocolType, 'consumer');
    assert.equal(d.protocolData, 'range');
    assert.equal(d.members[0]!.memberId, a.memberId);
    assert.equal(d.members[0]!.clientId, 'client-a');
    assert.equal(d.members[0]!.memberAssignment.toString(), 'A');
    assert.deepEqual(d.members[0]!.memberMetadata, subscription(['t']));
    assert.equal(env.coord.describeGroup('nope').groupState, 'Dead');
    assert.equal(env.coord.describeGroup('nope').errorCode, 0);
    assert.deepEqual(
      env.coord.listGroups(['stable'], []).groups.map((g) => g.groupId),
      ['g'],
    );
    assert.deepEqual(env.coord.listGroups(['Empty'], []).groups, []);
    assert.deepEqual(env.coord.listGroups([], ['consumer']).groups, []);
    assert.deepEqual(
      env.coord.listGroups([], ['Classic']).groups.map((g) => g.groupId),
      ['g'],
    );
  });

  test('DeleteGroups: NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND, and tombstones that survive a restart', async () => {
    const env = await setup();
    const a = await singleStable(env);
    await env.coord.commitOffsets({
      groupId: 'g',
      generationId: 1,
      memberId: a.memberId,
      groupInstanceId: null,
      apiVersion: 8,
      retentionTimeMs: -1,
      offsets: [
        { topic: 't', partition: 0, offset: 5, leaderEpoch: -1, metadata: null, commitTimestamp: -1 },
      ],
    });
    assert.deepEqual(await env.coord.deleteGroups(['g', 'nope']), [
      { groupId: 'g', errorCode: ErrorCode.NON_EMPTY_GROUP },
      { groupId: 'nope', errorCode: ErrorCode.GROUP_ID_NOT_FOUND },
    ]);
    env.coord.leaveGroup('g', [{ memberId: a.memberId, groupInstanceId: null }]);
    await tick(env);
    assert.deepEqual(await env.coord.deleteGroups(['g']), [{ groupId: 'g', errorCode: 0 }]);
    assert.equal(env.coord.listGroups([], []).groups.length, 0);
    await env.restart();
    assert.equal(env.coord.listGroups([], []).groups.length, 0);
    assert.equal(env.coord.fetchOffsets('g', null).topics.length, 0);
  });

  test('OffsetDelete: GROUP_SUBSCRIBED_TO_TOPIC for subscribed topics of an active consumer group', async () => {
    const env = await setup();
    const a = await singleStable(env);
    await env.coord.commitOffsets({
      groupId: 'g',
      generationId: 1,
      memberId: a.memberId,
      groupInstanceId: null,
      apiVersion: 8,
      retentionTimeMs: -1,
      offsets: [
        { topic: 't', partition: 0, offset: 5, leaderEpoch: -1, metadata: null, commitTimestamp: -1 },
        { topic: 'old', partition: 0, offset: 9, leaderEpoch: -1, metadata: null, commitTimestamp: -1 },
      ],
    });
    const r = await env.coord.deleteOffsets('g', [
      { name: 't', partitions: [0] },
      { name: 'old', partitions: [0] },
    ]);
    assert.equal(r.errorCode, 0);
    assert.deepEqual(
      r.topics.map((t) => t.partitions[0]!.errorCode),
      [ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC, 0],
    );
    assert.deepEqual(
      env.coord.fetchOffsets('g', null).topics.map((t) => t.name),
      ['t'],
    );
    assert.equal((await env.coord.deleteOffsets('nope', [])).errorCode, ErrorCode.GROUP_ID_NOT_FOUND);
  });
});
