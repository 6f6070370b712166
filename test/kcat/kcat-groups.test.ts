/**
 * Goal: librdkafka's balanced consumer (kcat -G, classic group protocol) works against Sluice's
 * group coordinator: two members split a 6-partition topic (disjoint assignments covering every
 * partition, read back from DescribeGroups), every record is consumed once, and librdkafka's
 * commits are visible through OffsetFetch; and a static member (group.instance.id, KIP-345)
 * that is stopped and restarted within its session timeout comes back WITHOUT a rebalance: the
 * generation is unchanged and the same partitions return to it.
 *
 * Method: a real broker process (`--set group.initial.rebalance.delay.ms=0`) and the `kcat`
 * binary. Group state is read with Sluice's own Admin client (DescribeGroups with the consumer
 * protocol's assignments decoded, OffsetFetch). The generation is probed with Heartbeat: a
 * heartbeat carrying a member's id, instance id and generation g is answered NONE only when g is
 * the group's current generation (ILLEGAL_GENERATION otherwise) and changes nothing. librdkafka
 * static members send no LeaveGroup on close, so SIGTERM (a clean kcat exit) leaves the member
 * registered on the broker until its session times out. When kcat is not on PATH the suite is
 * skipped, loudly.
 */

import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { Admin, type GroupDescription } from '../../src/client/admin.js';
import { Cluster } from '../../src/client/cluster.js';
import { Connection } from '../../src/client/connection.js';
import { findCoordinator } from '../../src/client/group-protocol.js';
import { ErrorCode } from '../../src/protocol/errors.js';
import { ApiKey } from '../../src/protocol/generated/index.js';
import { BrokerProcess } from '../helpers/broker-process.js';
import { createTopic } from '../helpers/read-partition.js';

function kcatVersion(): string | null {
  const r = spawnSync('kcat', ['-V'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return null;
  return /Version (\S+)/.exec(r.stdout)?.[1] ?? 'unknown';
}

const version = kcatVersion();
const skip =
  version === null
    ? 'kcat is not on PATH (install it: apt-get install -y kcat); librdkafka consumer groups NOT tested'
    : false;
if (skip) console.warn(`\n*** WARNING: skipping test/kcat/kcat-groups.test.ts: ${skip} ***\n`);

let broker: BrokerProcess;
let admin: Admin;
const children: ChildProcess[] = [];
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitFor<T>(
  what: string,
  timeoutMs: number,
  fn: () => Promise<T | null | undefined | false>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last: ${(last as Error).message})` : ''}`,
      );
    await sleep(200);
  }
}

function kcatProduce(topic: string, input: string): void {
  const r = spawnSync(
    'kcat',
    ['-b', broker.bootstrap, '-P', '-t', topic, '-K:', '-X', 'partitioner=murmur2_random'],
    { input, encoding: 'utf8', timeout: 30_000 },
  );
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`kcat -P exited ${r.status}:\n${r.stderr}`);
}

interface GroupMember {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** kcat -G GROUP TOPIC: librdkafka's balanced consumer, printing partition:offset:value. */
function kcatGroup(group: string, topic: string, extra: string[] = []): GroupMember {
  const child = spawn(
    'kcat',
    [
      '-b',
      broker.bootstrap,
      '-G',
      group,
      '-q',
      '-u',
      '-f',
      '%p:%o:%s\\n',
      '-X',
      'auto.offset.reset=earliest',
      '-X',
      'auto.commit.interval.ms=500',
      '-X',
      'heartbeat.interval.ms=500',
      ...extra,
      topic,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((res) => child.once('close', (code) => res(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function stop(m: GroupMember, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (m.child.exitCode !== null || m.child.signalCode !== null) return;
  m.child.kill(signal);
  const t = setTimeout(() => m.child.kill('SIGKILL'), 15_000);
  await m.exited;
  clearTimeout(t);
}

function consumed(out: string): { partition: number; offset: number; value: string }[] {
  return out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const [p, o, ...v] = l.split(':');
      return { partition: Number(p), offset: Number(o), value: v.join(':') };
    });
}

function partitionsOf(d: GroupDescription, topic: string): number[][] {
  return d.members.map((m) =>
    m.assignment
      .filter((t) => t.topic === topic)
      .flatMap((t) => t.partitions)
      .sort((a, b) => a - b),
  );
}

/** The group's current generation, probed with Heartbeat as one of its members (see the header). */
async function probeGeneration(group: string, memberId: string, instanceId: string | null): Promise<number> {
  const cluster = new Cluster({ bootstrapServers: broker.bootstrap, clientId: 'generation-probe' });
  const addr = await findCoordinator(cluster, group);
  const conn = await Connection.connect({ host: addr.host, port: addr.port, clientId: 'generation-probe' });
  try {
    for (let g = 1; g <= 50; g++) {
      const res = await conn.send(ApiKey.Heartbeat, {
        groupId: group,
        generationId: g,
        memberId,
        groupInstanceId: instanceId,
      });
      if (res.errorCode === ErrorCode.NONE) return g;
      if (res.errorCode !== ErrorCode.ILLEGAL_GENERATION)
        throw new Error(`heartbeat probe for generation ${g}: error ${res.errorCode}`);
    }
    throw new Error('no generation in 1..50 answered NONE');
  } finally {
    conn.close();
    await cluster.close();
  }
}

describe(`kcat ${version ?? '(not installed)'} -G (librdkafka balanced consumer)`, { skip }, () => {
  before(async () => {
    broker = await BrokerProcess.start({ set: ['group.initial.rebalance.delay.ms=0'] });
    admin = new Admin({ bootstrapServers: broker.bootstrap, clientId: 'kcat-groups-test' });
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await admin?.close();
    await broker?.destroy();
  });

  test('two kcat -G members split 6 partitions, consume everything once, commits visible', async () => {
    const topic = 'kg-split';
    const group = 'kg-split-group';
    const n = 600;
    await createTopic(broker.port, topic, 6);
    kcatProduce(topic, `${Array.from({ length: n }, (_, i) => `key-${i}:v-${i}`).join('\n')}\n`);
    const ends = await admin.listOffsetsMany(topic, [0, 1, 2, 3, 4, 5], -1);
    assert.equal(
      [...ends.values()].reduce((s, e) => s + e.offset, 0),
      n,
    );

    const a = kcatGroup(group, topic);
    const b = kcatGroup(group, topic);

    const d = await waitFor('a stable group of two members owning all 6 partitions', 45_000, async () => {
      const g = await admin.describeGroup(group);
      if (g.state !== 'Stable' || g.members.length !== 2) return null;
      const parts = partitionsOf(g, topic);
      return parts.flat().length === 6 && parts.every((p) => p.length > 0) ? g : null;
    });
    assert.equal(d.protocolType, 'consumer');
    const parts = partitionsOf(d, topic);
    assert.deepEqual(
      parts.flat().sort((x, y) => x - y),
      [0, 1, 2, 3, 4, 5],
      `assignments ${JSON.stringify(parts)} are disjoint and cover all 6 partitions`,
    );
    for (const m of d.members) {
      assert.match(m.clientId, /rdkafka/);
      assert.deepEqual(m.subscription, [topic]);
    }

    // Everything consumed; commits (auto.commit.interval.ms=500) reach each partition's end.
    await waitFor('every record consumed', 30_000, async () => {
      return consumed(a.stdout()).length + consumed(b.stdout()).length >= n;
    });
    const committed = await waitFor('commits at the log end of all 6 partitions', 30_000, async () => {
      const offsets = await admin.listGroupOffsets(group, [topic]);
      if (offsets.length !== 6) return null;
      return offsets.every((o) => o.offset === ends.get(o.partition)?.offset) ? offsets : null;
    });
    assert.equal(committed.length, 6);

    const all = [...consumed(a.stdout()), ...consumed(b.stdout())];
    assert.equal(all.length, n, 'each record consumed once across the group');
    assert.equal(new Set(all.map((r) => r.value)).size, n);
    // Each member consumed only its own partitions.
    const byMember = [consumed(a.stdout()), consumed(b.stdout())].map(
      (rs) => new Set(rs.map((r) => r.partition)),
    );
    assert.equal([...byMember[0]!].filter((p) => byMember[1]!.has(p)).length, 0, 'no partition read by both');

    const lag = await admin.groupLag(group);
    for (const row of lag) assert.equal(row.lag, 0, `partition ${row.partition} lag`);

    await stop(a);
    await stop(b);
    // Dynamic librdkafka members leave on close: the group is empty without a session timeout.
    const empty = await waitFor('the group empty after both closed', 10_000, async () => {
      const g = await admin.describeGroup(group);
      return g.members.length === 0 ? g : null;
    });
    assert.equal(empty.state, 'Empty');
  });

  test('static member restarted within session.timeout.ms: no rebalance, same partitions back', async () => {
    const topic = 'kg-static';
    const group = 'kg-static-group';
    await createTopic(broker.port, topic, 6);
    kcatProduce(topic, `${Array.from({ length: 120 }, (_, i) => `key-${i}:first-${i}`).join('\n')}\n`);
    const staticArgs = (id: string) => [
      '-X',
      `group.instance.id=${id}`,
      '-X',
      'session.timeout.ms=10000',
      '-d',
      'cgrp',
    ];
    const s1 = kcatGroup(group, topic, staticArgs('static-1'));
    const s2 = kcatGroup(group, topic, staticArgs('static-2'));

    const before = await waitFor('two static members owning all 6 partitions', 45_000, async () => {
      const g = await admin.describeGroup(group);
      if (g.state !== 'Stable' || g.members.length !== 2) return null;
      return partitionsOf(g, topic).flat().length === 6 ? g : null;
    });
    const m1 = before.members.find((m) => m.groupInstanceId === 'static-1');
    const m2 = before.members.find((m) => m.groupInstanceId === 'static-2');
    assert.ok(m1 && m2, 'both static members are listed with their instance ids');
    const m1Parts = m1.assignment.flatMap((t) => t.partitions).sort((a, b) => a - b);
    const m2Parts = m2.assignment.flatMap((t) => t.partitions).sort((a, b) => a - b);
    assert.ok(m1Parts.length > 0 && m2Parts.length > 0);
    const generation = await probeGeneration(group, m1.memberId, 'static-1');
    // Let the first records be consumed and committed.
    await waitFor('the first 120 records consumed', 30_000, async () => {
      return consumed(s1.stdout()).length + consumed(s2.stdout()).length >= 120;
    });
    await waitFor('first commits', 30_000, async () => {
      const offsets = await admin.listGroupOffsets(group, [topic]);
      const lag = await admin.groupLag(group);
      return offsets.length === 6 && lag.every((r) => r.lag === 0);
    });

    // Stop static-1 (librdkafka sends no LeaveGroup for a static member) and restart it well
    // within its 10 s session timeout.
    const stoppedAt = Date.now();
    const s2LogAtStop = s2.stderr().length;
    await stop(s1, 'SIGTERM');
    const during = await admin.describeGroup(group);
    assert.equal(during.members.length, 2, 'the stopped static member stays registered');
    assert.equal(during.state, 'Stable', 'stopping a static member does not start a rebalance');
    const s1b = kcatGroup(group, topic, staticArgs('static-1'));

    const afterRestart = await waitFor('static-1 back with an assignment', 20_000, async () => {
      const g = await admin.describeGroup(group);
      const m = g.members.find((x) => x.groupInstanceId === 'static-1');
      if (g.state !== 'Stable' || !m || m.memberId === m1.memberId) return null;
      return m.assignment.length > 0 ? g : null;
    });
    assert.ok(Date.now() - stoppedAt < 10_000, 'restarted within the session timeout');
    const n1 = afterRestart.members.find((m) => m.groupInstanceId === 'static-1')!;
    const n2 = afterRestart.members.find((m) => m.groupInstanceId === 'static-2')!;
    assert.equal(afterRestart.members.length, 2);
    assert.deepEqual(
      n1.assignment.flatMap((t) => t.partitions).sort((a, b) => a - b),
      m1Parts,
      'the same partitions return to static-1',
    );
    assert.deepEqual(
      n2.assignment.flatMap((t) => t.partitions).sort((a, b) => a - b),
      m2Parts,
      'static-2 keeps its partitions',
    );
    assert.equal(n2.memberId, m2.memberId, 'static-2 was not touched');
    assert.equal(
      await probeGeneration(group, n1.memberId, 'static-1'),
      generation,
      'the generation is unchanged: no rebalance',
    );
    assert.equal(await probeGeneration(group, n2.memberId, 'static-2'), generation);
    // librdkafka's own view (-d cgrp): static-2 got no JoinGroup response after the restart.
    const joinsAfter = [
      ...s2
        .stderr()
        .slice(s2LogAtStop)
        .matchAll(/JoinGroup response: GenerationId (\d+)/g),
    ];
    assert.equal(joinsAfter.length, 0, `static-2 rejoined: ${joinsAfter.map((m) => m[0]).join('; ')}`);

    // The restarted member resumes from its committed offsets: new records only, no re-reads.
    kcatProduce(topic, `${Array.from({ length: 60 }, (_, i) => `key-${i}:second-${i}`).join('\n')}\n`);
    await waitFor('the second batch consumed', 30_000, async () => {
      const seen = [...consumed(s1b.stdout()), ...consumed(s2.stdout())].filter((r) =>
        r.value.startsWith('second-'),
      );
      return seen.length >= 60;
    });
    const reread = consumed(s1b.stdout()).filter((r) => r.value.startsWith('first-'));
    assert.equal(reread.length, 0, 'the restarted static member re-read nothing');
    for (const r of consumed(s1b.stdout())) assert.ok(m1Parts.includes(r.partition));

    await stop(s1b);
    await stop(s2);
  });
});
