/**
 * Goal: the GroupConsumer API against a broker started in-process: a member resumes from its
 * group's committed offsets; a second member triggers a rebalance that the first notices by
 * heartbeat and joins (eager: commit, revoke, rejoin), after which the two own disjoint halves
 * and no record is returned twice; close() commits and leaves, so the other member takes over
 * every partition at once; a static member (groupInstanceId) does not leave on close.
 * Method: real broker (startBroker) with group.initial.rebalance.delay.ms=0, short heartbeat
 * intervals, records produced with the Producer.
 */

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Broker } from '../broker/broker.js';
import { startBroker } from '../cli/start.js';
import { Admin } from './admin.js';
import type { ConsumerRecord } from './consumer.js';
import { GroupConsumer, type GroupConsumerOptions } from './group-consumer.js';
import { Producer } from './producer.js';

let broker: Broker;
let dataDir: string;
let bootstrap: string;
let admin: Admin;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function consumer(groupId: string, topic: string, extra: Partial<GroupConsumerOptions> = {}): GroupConsumer {
  return new GroupConsumer({
    bootstrapServers: bootstrap,
    clientId: 'gc-test',
    groupId,
    topics: [topic],
    autoOffsetReset: 'earliest',
    heartbeatIntervalMs: 100,
    sessionTimeoutMs: 6000,
    autoCommitIntervalMs: 200,
    maxWaitMs: 100,
    ...extra,
  });
}

async function produce(topic: string, n: number, tag: string): Promise<void> {
  const p = new Producer({ bootstrapServers: bootstrap });
  await p.send(
    topic,
    Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: `${tag}-${i}` })),
  );
  await p.close();
}

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'sluice-gc-test-'));
  broker = await startBroker({
    dataDir,
    listen: '127.0.0.1:0',
    metricsListen: '127.0.0.1:0',
    set: ['group.initial.rebalance.delay.ms=0'],
  });
  bootstrap = `127.0.0.1:${broker.address.port}`;
  admin = new Admin({ bootstrapServers: bootstrap });
});

after(async () => {
  await admin.close();
  await broker.stop();
  await rm(dataDir, { recursive: true, force: true });
});

describe('GroupConsumer', () => {
  it('rebalances between two members without duplicates, resumes from commits, leaves on close', async () => {
    const topic = 'gct-a';
    await admin.createTopic(topic, { partitions: 4 });
    await produce(topic, 100, 'one');
    const seen: ConsumerRecord[] = [];
    const a = consumer('gct-group', topic);
    await a.connect();
    assert.equal(a.assignment()[0]?.partitions.length, 4);
    const gen1 = a.generationId;
    while (seen.length < 50) seen.push(...(await a.poll()));

    const b = consumer('gct-group', topic);
    const bJoined = b.connect();
    // a keeps polling: its heartbeat sees the rebalance, the next poll commits and rejoins.
    while (a.generationId === gen1) seen.push(...(await a.poll()));
    await bJoined;
    assert.equal(a.generationId, b.generationId);
    const owned = [...a.assignment(), ...b.assignment()].flatMap((t) => t.partitions).sort();
    assert.deepEqual(owned, [0, 1, 2, 3]);
    assert.equal(a.assignment()[0]?.partitions.length, 2);
    const deadline = Date.now() + 20_000;
    while (seen.length < 100 && Date.now() < deadline) {
      const [ra, rb] = await Promise.all([a.poll(), b.poll()]);
      seen.push(...ra, ...rb);
    }
    assert.equal(seen.length, 100, 'every record once');
    assert.equal(new Set(seen.map((r) => `${r.partition}/${r.offset}`)).size, 100);

    // a closes (commit + LeaveGroup): b gets all four partitions at its next rejoin.
    await a.close();
    const gen2 = b.generationId;
    while (b.generationId === gen2) await b.poll();
    assert.equal(b.assignment()[0]?.partitions.length, 4);
    await b.close();

    // Everything committed: a new member of the group gets only new records.
    await produce(topic, 20, 'two');
    const c = consumer('gct-group', topic);
    const more: ConsumerRecord[] = [];
    const d2 = Date.now() + 10_000;
    while (more.length < 20 && Date.now() < d2) more.push(...(await c.poll()));
    await c.close();
    assert.equal(more.length, 20);
    assert.ok(more.every((r) => r.value?.toString().startsWith('two-')));
    const lag = await admin.groupLag('gct-group');
    assert.ok(lag.length === 4 && lag.every((r) => r.lag === 0));
  });

  it('a static member stays registered after close and comes back to the same generation', async () => {
    const topic = 'gct-static';
    await admin.createTopic(topic, { partitions: 2 });
    const s = consumer('gct-static-group', topic, { groupInstanceId: 'inst-1' });
    await s.connect();
    const generation = s.generationId;
    await s.close();
    const d = await admin.describeGroup('gct-static-group');
    assert.equal(d.members.length, 1);
    assert.equal(d.members[0]?.groupInstanceId, 'inst-1');
    const again = consumer('gct-static-group', topic, { groupInstanceId: 'inst-1' });
    await again.connect();
    assert.equal(again.generationId, generation, 'no rebalance for a returning static member');
    assert.deepEqual(again.assignment(), [{ topic, partitions: [0, 1] }]);
    await again.close();
  });
});
