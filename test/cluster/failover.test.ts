/**
 * Goal: a 3-node cluster loses no acknowledged record when the leader of a partition dies, and
 * clients carry on through the other brokers.
 * Method: three real broker processes on 127.0.0.1 (every node a Raft voter and a broker); kafkajs
 * creates a topic with replication factor 3 and min.insync.replicas=2; an idempotent kafkajs
 * producer sends unique values with acks=all while the test SIGKILLs the leader of partition 0,
 * restarts it, then SIGSTOPs the new leader for a few seconds and SIGCONTs it. Every send's outcome
 * is recorded. At the end each partition is read from its current leader: every acknowledged value
 * must be there exactly once, at the offset it was acknowledged with, in send order per partition.
 * A consumer group then reads everything, and keeps reading after the leader of its
 * __consumer_offsets partition (its coordinator) is killed.
 */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Admin, Kafka as KafkaClient } from 'kafkajs';
import kafkajs from 'kafkajs';
import { partitionForKey } from '../../src/client/partitioner.js';
import { partitionForGroup } from '../../src/group/coordinator.js';
import { ErrorCode } from '../../src/protocol/errors.js';
import { ApiKey } from '../../src/protocol/generated/index.js';
import { BrokerProcess, freePort } from '../helpers/broker-process.js';
import { produceBody, readPartition } from '../helpers/read-partition.js';
import { WireClient } from '../helpers/wire-client.js';

const { Kafka, logLevel } = kafkajs;
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const NODES = 3;
/**
 * kafkajs 2.2.4's idempotent producer can acknowledge a batch that was never written: when a
 * produce request fails, it rolls back the sequence numbers of every partition in it (even one
 * whose batch the failing broker had written), and when the retry finds that partition's new
 * leader already answered an earlier request of the same send(), it does not resend it. The next
 * send() then reuses those sequence numbers for new records, and the broker — as Kafka does —
 * answers them as a duplicate of the written batch, with its offset. The check below sees that
 * as loss (other values at the acknowledged offsets, no send error). With idempotence off every
 * acknowledgement is a real write; duplicates from retries are counted. SLUICE_IT_IDEMPOTENT=1
 * runs the idempotent variant (see node_modules/kafkajs/src/producer/sendMessages.js).
 */
const IDEMPOTENT = process.env.SLUICE_IT_IDEMPOTENT === '1';
const TOPIC = 'replicated';
const PARTITIONS = 3;

const nodes: BrokerProcess[] = [];
let kafka: KafkaClient;
let admin: Admin;

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await sleep(200);
  }
  throw new Error(
    `timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}\n${nodes.map((n, i) => `--- node ${i + 1}\n${n.output.slice(-3000)}`).join('\n')}`,
  );
}

function nodeById(id: number): BrokerProcess {
  return nodes[id - 1]!;
}

async function partitionLeaders(): Promise<Map<number, { leader: number; isr: number[] }>> {
  const md = await admin.fetchTopicMetadata({ topics: [TOPIC] });
  const out = new Map<number, { leader: number; isr: number[] }>();
  for (const p of md.topics[0]!.partitions) out.set(p.partitionId, { leader: p.leader, isr: p.isr });
  return out;
}

before(async () => {
  const ports = await Promise.all(Array.from({ length: NODES * 2 }, () => freePort()));
  const voters = Array.from({ length: NODES }, (_, i) => `${i + 1}@127.0.0.1:${ports[NODES + i]}`).join(',');
  const common = [
    `controller.quorum.voters=${voters}`,
    'cluster.id=cluster-test',
    'broker.session.timeout.ms=3000',
    'broker.heartbeat.interval.ms=500',
    'replica.lag.time.max.ms=4000',
    'controller.quorum.election.timeout.ms=500',
    'group.initial.rebalance.delay.ms=0',
    'offsets.topic.num.partitions=5',
  ];
  for (let i = 0; i < NODES; i++) {
    nodes.push(
      await BrokerProcess.start({
        port: ports[i]!,
        set: [...common, `node.id=${i + 1}`, `controller.listen=127.0.0.1:${ports[NODES + i]}`],
      }),
    );
  }
  kafka = new Kafka({
    clientId: 'cluster-it',
    brokers: nodes.map((n) => n.bootstrap),
    logLevel: logLevel.NOTHING,
    // A paused broker never answers: give up on a request after 5 s (kafkajs waits 30 s by default).
    requestTimeout: 5000,
    retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 1000 },
  });
  admin = kafka.admin();
  await waitFor('three live brokers', async () => {
    await admin.connect();
    const c = await admin.describeCluster();
    return c.brokers.length === NODES ? c : undefined;
  });
});

after(async () => {
  await admin?.disconnect().catch(() => {});
  for (const n of nodes) {
    n.signal('SIGCONT');
    await n.destroy();
  }
});

test('a replicated topic: every partition has three replicas in sync and any broker answers metadata', async () => {
  await admin.createTopics({
    topics: [
      {
        topic: TOPIC,
        numPartitions: PARTITIONS,
        replicationFactor: 3,
        configEntries: [{ name: 'min.insync.replicas', value: '2' }],
      },
    ],
  });
  const leaders = await waitFor('ISR of 3 everywhere', async () => {
    const m = await partitionLeaders();
    return [...m.values()].every((p) => p.isr.length === 3 && p.leader > 0) ? m : undefined;
  });
  // KIP-951: Produce (v10+) to a broker that does not lead the partition names the leader.
  const leader0 = leaders.get(0)!.leader;
  const other = nodes.find((_, i) => i + 1 !== leader0)!;
  const wire = await WireClient.connect(other.port);
  try {
    const res = await wire.request(
      ApiKey.Produce,
      11,
      await produceBody(TOPIC, 0, [{ value: Buffer.from('x') }], -1),
    );
    const p = res.responses[0]!.partitionResponses[0]!;
    assert.equal(p.errorCode, ErrorCode.NOT_LEADER_OR_FOLLOWER);
    assert.equal(p.currentLeader.leaderId, leader0);
    assert.ok(
      res.nodeEndpoints.some((n) => n.nodeId === leader0 && n.port === nodeById(leader0).port),
      JSON.stringify(res.nodeEndpoints),
    );
    // Fetch (v12+) from a non-leader names the leader too.
    const f = await wire.request(ApiKey.Fetch, 12, {
      clusterId: null,
      replicaId: -1,
      replicaState: { replicaId: -1, replicaEpoch: -1 },
      maxWaitMs: 0,
      minBytes: 0,
      maxBytes: 1 << 20,
      isolationLevel: 0,
      sessionId: 0,
      sessionEpoch: -1,
      topics: [
        {
          topic: TOPIC,
          topicId: '00000000000000000000000000000000',
          partitions: [
            {
              partition: 0,
              currentLeaderEpoch: -1,
              fetchOffset: 0,
              lastFetchedEpoch: -1,
              logStartOffset: -1,
              partitionMaxBytes: 1 << 20,
              replicaDirectoryId: '00000000000000000000000000000000',
            },
          ],
        },
      ],
      forgottenTopicsData: [],
      rackId: '',
    });
    const fp = f.responses[0]!.partitions[0]!;
    assert.equal(fp.errorCode, ErrorCode.NOT_LEADER_OR_FOLLOWER);
    assert.equal(fp.currentLeader.leaderId, leader0);
  } finally {
    wire.close();
  }
  // Leaders are spread: no broker leads every partition.
  assert.ok(
    new Set([...leaders.values()].map((p) => p.leader)).size > 1,
    `leaders spread: ${JSON.stringify([...leaders])}`,
  );
  for (const n of nodes) {
    const k = new Kafka({ clientId: 'probe', brokers: [n.bootstrap], logLevel: logLevel.NOTHING });
    const a = k.admin();
    await a.connect();
    const md = await a.fetchTopicMetadata({ topics: [TOPIC] });
    assert.equal(md.topics[0]!.partitions.length, PARTITIONS);
    await a.disconnect();
  }
});

test('acks=all producing through a SIGKILL and a SIGSTOP of the leader loses no acknowledged record', async () => {
  // A send that fails leaves the idempotent producer's sequence numbers in doubt: the batch may
  // have been written. kafkajs reuses those sequence numbers for its next batch, which the broker
  // (like Kafka) then answers as a duplicate of the written one — acknowledged, not written. The
  // Java client bumps its epoch instead (KIP-360); here a failed send gets a fresh producer.
  const newProducer = () =>
    kafka.producer({
      idempotent: IDEMPOTENT,
      maxInFlightRequests: 1,
      retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 },
    });
  let producer = newProducer();
  await producer.connect();
  const acked = new Map<string, { partition: number; offset: number }>();
  let failed = 0;
  const errors = new Map<string, number>();
  let seq = 0;
  let stop = false;
  const send = async () => {
    while (!stop) {
      const batch = Array.from({ length: 10 }, () => `v-${seq++}`);
      try {
        const r = await producer.send({
          topic: TOPIC,
          acks: -1,
          timeout: 10_000,
          messages: batch.map((v) => ({ key: v, value: v })),
        });
        // One batch per partition per request: kafkajs reports the base offset of each.
        const byPartition = new Map<number, string[]>();
        for (const v of batch) {
          // Keyed with murmur2 like the broker expects; recompute the partition per record.
          const p = partitionForKey(Buffer.from(v), PARTITIONS);
          const list = byPartition.get(p) ?? [];
          list.push(v);
          byPartition.set(p, list);
        }
        for (const meta of r) {
          const list = byPartition.get(meta.partition) ?? [];
          list.forEach((v, i) =>
            acked.set(v, { partition: meta.partition, offset: Number(meta.baseOffset) + i }),
          );
        }
      } catch (err) {
        failed += batch.length;
        const m = (err as Error).message;
        errors.set(m, (errors.get(m) ?? 0) + 1);
        await producer.disconnect().catch(() => {});
        producer = newProducer();
        await producer.connect().catch(() => {});
      }
    }
  };
  const sender = send();
  const ackedAfter = async (n: number) => {
    try {
      await waitFor(`${n} acknowledged records`, async () => (acked.size >= n ? true : undefined), 60_000);
    } catch (err) {
      throw new Error(
        `${(err as Error).message}\nacknowledged ${acked.size}; send errors: ${JSON.stringify([...errors])}`,
      );
    }
  };

  await ackedAfter(300);
  const leader0 = (await partitionLeaders()).get(0)!.leader;
  await nodeById(leader0).kill();
  const atKill = acked.size;
  await ackedAfter(atKill + 300);
  const afterKill = await partitionLeaders();
  assert.notEqual(afterKill.get(0)!.leader, leader0, 'partition 0 has a new leader');
  await nodeById(leader0).restart();
  await waitFor(
    'the restarted broker back in every ISR',
    async () => {
      const m = await partitionLeaders();
      return [...m.values()].every((p) => p.isr.length === 3) ? true : undefined;
    },
    60_000,
  );

  // SIGSTOP: the paused broker keeps its sockets open and answers nothing. The cluster must move
  // its leaderships within the session timeout. kafkajs retries a timed-out Produce on the same
  // broker without refreshing metadata (a client behaviour, the same against Apache Kafka), so
  // the running producer stalls until SIGCONT; a client that asks any live broker for metadata
  // is pointed at the new leaders and writes during the pause.
  const leader0b = (await partitionLeaders()).get(0)!.leader;
  nodeById(leader0b).signal('SIGSTOP');
  const live = nodes.filter((_, i) => i + 1 !== leader0b);
  const liveKafka = new Kafka({
    clientId: 'cluster-it-pause',
    brokers: live.map((n) => n.bootstrap),
    logLevel: logLevel.NOTHING,
    requestTimeout: 5000,
  });
  const liveAdmin = liveKafka.admin();
  await liveAdmin.connect();
  const t0 = Date.now();
  await waitFor(
    "new leaders for the paused broker's partitions",
    async () => {
      const md = await liveAdmin.fetchTopicMetadata({ topics: [TOPIC] });
      return md.topics[0]!.partitions.every((p) => p.leader > 0 && p.leader !== leader0b) ? true : undefined;
    },
    20_000,
  );
  const failoverMs = Date.now() - t0;
  const producer2 = liveKafka.producer({
    idempotent: true,
    retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 },
  });
  await producer2.connect();
  for (let i = 0; i < 20; i++) {
    const batch = Array.from({ length: 10 }, (_, j) => `pause-${i * 10 + j}`);
    const r = await producer2.send({
      topic: TOPIC,
      acks: -1,
      timeout: 10_000,
      messages: batch.map((v) => ({ key: v, value: v })),
    });
    const byPartition = new Map<number, string[]>();
    for (const v of batch) {
      const p = partitionForKey(Buffer.from(v), PARTITIONS);
      byPartition.set(p, [...(byPartition.get(p) ?? []), v]);
    }
    for (const meta of r) {
      (byPartition.get(meta.partition) ?? []).forEach((v, k) =>
        acked.set(v, { partition: meta.partition, offset: Number(meta.baseOffset) + k }),
      );
    }
  }
  await producer2.disconnect();
  await liveAdmin.disconnect();
  nodeById(leader0b).signal('SIGCONT');
  console.log(`# leaders moved off the paused broker ${failoverMs} ms after SIGSTOP`);
  await ackedAfter(acked.size + 100);
  stop = true;
  await sender;
  await producer.disconnect();

  // Final read from each partition's leader once the cluster has healed.
  await waitFor(
    'every partition led and fully in sync',
    async () => {
      const m = await partitionLeaders();
      return [...m.values()].every((p) => p.leader > 0 && p.isr.length === 3) ? true : undefined;
    },
    60_000,
  );
  const leaders = await partitionLeaders();
  // Every acknowledgement names (partition, offset): that offset must hold that value.
  const byOffset = new Map<string, string>();
  const copies = new Map<string, number>();
  for (let p = 0; p < PARTITIONS; p++) {
    const port = nodeById(leaders.get(p)!.leader).port;
    const contents = await readPartition(port, TOPIC, p);
    for (const r of contents.records) {
      const v = r.value!.toString();
      byOffset.set(`${p}/${r.offset}`, v);
      copies.set(v, (copies.get(v) ?? 0) + 1);
    }
  }
  const duplicates = [...copies.values()].filter((n) => n > 1).length;
  if (IDEMPOTENT) assert.equal(duplicates, 0, `${duplicates} values written twice with idempotence on`);
  const lost: string[] = [];
  for (const [v, at] of acked) {
    const there = byOffset.get(`${at.partition}/${at.offset}`);
    if (there !== v)
      lost.push(
        `${v}@${at.partition}/${at.offset} (log has ${there ?? 'nothing'} there; ${copies.get(v) ?? 0} copies elsewhere)`,
      );
  }
  if (lost.length > 0) {
    assert.fail(
      `${lost.length} of ${acked.size} acknowledged records not at their offsets: ${lost.slice(0, 10).join('; ')}\nsend errors: ${JSON.stringify([...errors])}\nleaders ${JSON.stringify([...leaders])}\n${nodes
        .map(
          (n, i) =>
            `--- node ${i + 1}\n${n.output
              .split('\n')
              .filter((l) => !/raft: \[raft|__consumer_offsets/.test(l))
              .join('\n')
              .slice(-6000)}`,
        )
        .join('\n')}`,
    );
  }
  const seen = copies;
  console.log(
    `# acknowledged ${acked.size}, failed sends ${failed}, read ${seen.size} distinct values, ${duplicates} duplicated (idempotence ${IDEMPOTENT ? 'on' : 'off'}); leader ${leader0} killed, ${leader0b} paused`,
  );
});

test('a consumer group keeps consuming when its coordinator is killed', async () => {
  const groupId = 'cluster-group';
  const topic = 'group-topic';
  for (const n of nodes) {
    n.signal('SIGCONT');
    if (!n.running) await n.restart();
  }
  await waitFor('three live brokers', async () => {
    const c = await admin.describeCluster();
    return c.brokers.length === NODES ? c : undefined;
  });
  await admin.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: 3 }] });
  const producer = kafka.producer({ idempotent: true });
  await producer.connect();
  const sendRange = async (from: number, to: number) => {
    for (let i = from; i < to; i += 50) {
      await producer.send({
        topic,
        acks: -1,
        messages: Array.from({ length: Math.min(50, to - i) }, (_, j) => ({ value: `g-${i + j}` })),
      });
    }
  };
  await sendRange(0, 200);
  const seen = new Set<string>();
  // kafkajs keeps fetching from (and heartbeating to) a dead broker until its retries run out; it
  // then restarts the consumer, which finds the new coordinator and leaders. Its default consumer
  // retries (5) make that take seconds rather than minutes.
  const consumer = kafka.consumer({
    groupId,
    sessionTimeout: 10_000,
    heartbeatInterval: 500,
    retry: { retries: 5 },
  });
  const events: string[] = [];
  consumer.on(consumer.events.CRASH, (e) =>
    events.push(`crash: ${e.payload.error.message} (restart: ${e.payload.restart})`),
  );
  consumer.on(consumer.events.GROUP_JOIN, (e) =>
    events.push(
      `joined ${e.payload.memberId} leader ${e.payload.leaderId} assignment ${JSON.stringify(e.payload.memberAssignment)}`,
    ),
  );
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      seen.add(message.value!.toString());
    },
  });
  await waitFor('first 200 consumed', async () => (seen.size >= 200 ? true : undefined), 60_000);
  const md = await admin.fetchTopicMetadata({ topics: ['__consumer_offsets'] });
  const p = partitionForGroup(groupId, md.topics[0]!.partitions.length);
  const coordinator = md.topics[0]!.partitions.find((x) => x.partitionId === p)!.leader;
  await nodeById(coordinator).kill();
  await sendRange(200, 400);
  try {
    await waitFor(
      'all 400 consumed after the coordinator died',
      async () => (seen.size >= 400 ? true : undefined),
      90_000,
    );
  } catch (err) {
    throw new Error(
      `${(err as Error).message}\nconsumed ${seen.size}; coordinator ${coordinator} killed; consumer events: ${events.join(' | ')}`,
    );
  }
  await consumer.disconnect();
  await producer.disconnect();
  await nodeById(coordinator).restart();
  for (let i = 0; i < 400; i++) assert.ok(seen.has(`g-${i}`), `g-${i} consumed`);
});
