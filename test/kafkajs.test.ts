/**
 * Goal: kafkajs 2.2.4, an unmodified third-party client, works against Sluice end to end.
 * Method: a real broker process; kafkajs admin creates topics (3 and 6 partitions), lists and
 * describes them; kafkajs producers send keyed and unkeyed records with acks 0, 1 and -1 and
 * with idempotence; everything is read back IN ORDER PER PARTITION with a raw sessionless Fetch
 * (test/helpers/read-partition.ts, since Sluice has no consumer groups yet). Then offsets
 * (fetchTopicOffsets, fetchTopicOffsetsByTimestamp), configs (describe/alter retention.ms),
 * createPartitions, deleteTopicRecords and deleteTopics are checked against what was produced,
 * and 200 keys land where both kafkajs's DefaultPartitioner and our partitionForKey say.
 */

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Admin, Kafka as KafkaClient, Producer } from 'kafkajs';
import kafkajs from 'kafkajs';
import { partitionForKey } from '../src/client/partitioner.js';
import { BrokerProcess } from './helpers/broker-process.js';
import { readPartition } from './helpers/read-partition.js';

// kafkajs is CommonJS; its named exports are not statically detectable from ESM.
const { Kafka, logLevel, ConfigResourceTypes } = kafkajs;
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

let broker: BrokerProcess;
let kafka: KafkaClient;
let admin: Admin;
const producers: Producer[] = [];

const T3 = 'kjs-three';
const T6 = 'kjs-six';

before(async () => {
  broker = await BrokerProcess.start();
  kafka = new Kafka({
    clientId: 'sluice-it',
    brokers: [broker.bootstrap],
    logLevel: logLevel.NOTHING,
    retry: { retries: 3, initialRetryTime: 100 },
  });
  admin = kafka.admin();
  await admin.connect();
});

after(async () => {
  for (const p of producers) await p.disconnect().catch(() => {});
  await admin?.disconnect().catch(() => {});
  await broker?.destroy();
});

async function newProducer(opts: { idempotent?: boolean } = {}): Promise<Producer> {
  const p = kafka.producer({
    idempotent: opts.idempotent ?? false,
    maxInFlightRequests: opts.idempotent ? 1 : undefined,
    allowAutoTopicCreation: false,
  });
  await p.connect();
  producers.push(p);
  return p;
}

/** Values are "<tag>:<seq>"; returns per partition the records as {tag, seq, key, offset}. */
async function readAll(topic: string, partitions: number) {
  const out: { tag: string; seq: number; key: string | null; offset: number; partition: number }[][] = [];
  for (let p = 0; p < partitions; p++) {
    const { records } = await readPartition(broker.port, topic, p);
    out.push(
      records.map((r) => {
        const [tag, seq] = r.value!.toString().split(':');
        return {
          tag: tag!,
          seq: Number(seq),
          key: r.key?.toString() ?? null,
          offset: r.offset,
          partition: p,
        };
      }),
    );
  }
  return out;
}

/** Polls the sum of high watermarks until it reaches `total` (5 s). */
async function waitForTotal(topic: string, partitions: number, total: number): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const offsets = await admin.fetchTopicOffsets(topic);
    const sum = offsets.reduce((a, o) => a + Number(o.high), 0);
    if (sum >= total) return;
    if (Date.now() > deadline) throw new Error(`${topic} holds ${sum} records, expected ${total}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('kafkajs 2.2.4', () => {
  test('admin: createTopics, listTopics, fetchTopicMetadata', async () => {
    const created = await admin.createTopics({
      topics: [
        { topic: T3, numPartitions: 3 },
        { topic: T6, numPartitions: 6 },
      ],
      waitForLeaders: true,
    });
    assert.equal(created, true);
    // Creating again reports "already exists" as false, not an error.
    assert.equal(await admin.createTopics({ topics: [{ topic: T3, numPartitions: 3 }] }), false);
    const topics = await admin.listTopics();
    assert.ok(topics.includes(T3) && topics.includes(T6), `listTopics: ${topics}`);
    const md = await admin.fetchTopicMetadata({ topics: [T3, T6] });
    const byName = new Map(md.topics.map((t) => [t.name, t]));
    assert.equal(byName.get(T3)?.partitions.length, 3);
    assert.equal(byName.get(T6)?.partitions.length, 6);
    for (const t of md.topics) {
      for (const p of t.partitions) {
        assert.equal(p.leader, 1);
        assert.deepEqual(p.replicas, [1]);
        assert.deepEqual(p.isr, [1]);
        assert.equal(p.partitionErrorCode, 0);
      }
    }
    const cluster = await admin.describeCluster();
    assert.equal(cluster.brokers.length, 1);
    assert.equal(cluster.brokers[0]!.port, broker.port);
  });

  test('produce keyed and unkeyed with acks 0, 1, -1 and idempotent; read back in order per partition', async () => {
    const plain = await newProducer();
    const idem = await newProducer({ idempotent: true });
    const modes: { tag: string; producer: Producer; acks: number }[] = [
      { tag: 'a1', producer: plain, acks: 1 },
      { tag: 'aall', producer: plain, acks: -1 },
      { tag: 'a0', producer: plain, acks: 0 },
      { tag: 'idem', producer: idem, acks: -1 },
    ];
    const N = 60; // per mode: 30 keyed, 30 unkeyed, sent in batches of 10
    const sentKeys = new Map<string, string | null>(); // "tag:seq" -> key
    for (const m of modes) {
      for (let start = 0; start < N; start += 10) {
        const messages = [];
        for (let seq = start; seq < start + 10; seq++) {
          const key = seq % 2 === 0 ? `key-${seq % 7}` : null;
          sentKeys.set(`${m.tag}:${seq}`, key);
          messages.push({ key, value: `${m.tag}:${seq}` });
        }
        const res = await m.producer.send({ topic: T6, acks: m.acks, messages });
        if (m.acks !== 0) for (const r of res) assert.equal(r.errorCode, 0);
      }
      // acks=0 has no answer to wait for: before the next mode (another connection) starts, wait
      // until the broker has appended everything, so modes appear in send order in every partition.
      await waitForTotal(T6, 6, (modes.indexOf(m) + 1) * N);
    }
    const parts = await readAll(T6, 6);
    const all = parts.flat();
    assert.equal(all.length, modes.length * N, 'every record is in the log exactly once');
    const seen = new Set<string>();
    for (const r of all) {
      const id = `${r.tag}:${r.seq}`;
      assert.ok(!seen.has(id), `duplicate ${id}`);
      seen.add(id);
      assert.equal(r.key, sentKeys.get(id), `key of ${id}`);
      if (r.key !== null)
        assert.equal(r.partition, partitionForKey(Buffer.from(r.key), 6), `${id} (key ${r.key}) partition`);
    }
    for (const [p, recs] of parts.entries()) {
      // Offsets are contiguous from 0 and, per producer mode, sequence numbers only grow.
      assert.deepEqual(
        recs.map((r) => r.offset),
        recs.map((_, i) => i),
        `partition ${p} offsets`,
      );
      for (const m of modes) {
        const seqs = recs.filter((r) => r.tag === m.tag).map((r) => r.seq);
        assert.deepEqual(
          seqs,
          [...seqs].sort((a, b) => a - b),
          `partition ${p} order for ${m.tag}`,
        );
      }
      // Modes were sent one after the other, so they appear in that order in every partition.
      const order = recs.map((r) => modes.findIndex((m) => m.tag === r.tag));
      assert.deepEqual(
        order,
        [...order].sort((a, b) => a - b),
        `partition ${p}: modes in send order`,
      );
    }
    // The idempotent producer's batches carry its producer id and growing sequences.
    for (let p = 0; p < 6; p++) {
      const { batches, records } = await readPartition(broker.port, T6, p);
      const idemBatches = batches.filter((b) =>
        records.some((r) => r.batchBaseOffset === b.baseOffset && r.value!.toString().startsWith('idem:')),
      );
      for (const b of idemBatches)
        assert.ok(b.producerId >= 0 && b.baseSequence >= 0, 'idempotent batch has producer id and sequence');
      const plainBatches = batches.filter((b) => !idemBatches.includes(b));
      for (const b of plainBatches) assert.equal(b.producerId, -1);
    }
  });

  test('200 keys: kafkajs DefaultPartitioner == partitionForKey, and the record is there', async () => {
    const p = await newProducer();
    const keys = Array.from({ length: 200 }, (_, i) =>
      i % 3 === 0 ? `user-${i}` : i % 3 === 1 ? `${i * 7919}` : `κλειδί-${i}-${'x'.repeat(i % 13)}`,
    );
    const results = await Promise.all(
      keys.map((key) => p.send({ topic: T3, acks: -1, messages: [{ key, value: `k:${key}` }] })),
    );
    const kafkajsChoice = new Map<string, number>();
    results.forEach((res, i) => {
      assert.equal(res.length, 1);
      kafkajsChoice.set(keys[i]!, res[0]!.partition);
    });
    const mismatches = keys.filter((k) => kafkajsChoice.get(k) !== partitionForKey(Buffer.from(k), 3));
    assert.deepEqual(mismatches, [], 'partitionForKey agrees with kafkajs DefaultPartitioner');
    const used = new Set(kafkajsChoice.values());
    assert.equal(used.size, 3, 'keys spread over all partitions');
    const parts = await readAll(T3, 3);
    for (const key of keys) {
      const found = parts.flat().filter((r) => r.key === key);
      assert.equal(found.length, 1, `key ${key} once`);
      assert.equal(found[0]!.partition, kafkajsChoice.get(key));
    }
  });

  test('fetchTopicOffsets and fetchTopicOffsetsByTimestamp agree with what was produced', async () => {
    const topic = 'kjs-times';
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] });
    const p = await newProducer();
    const t0 = Date.now() - 100_000;
    // Partition 0: 20 records at t0, t0+1000, ...; partition 1: 10 records at t0+500, t0+1500, ...
    for (let i = 0; i < 20; i++)
      await p.send({
        topic,
        acks: -1,
        messages: [{ partition: 0, value: `t:${i}`, timestamp: String(t0 + i * 1000) }],
      });
    await p.send({
      topic,
      acks: -1,
      messages: Array.from({ length: 10 }, (_, i) => ({
        partition: 1,
        value: `t:${i}`,
        timestamp: String(t0 + 500 + i * 1000),
      })),
    });

    const offsets = await admin.fetchTopicOffsets(topic);
    offsets.sort((a, b) => a.partition - b.partition);
    assert.deepEqual(
      offsets.map((o) => ({ partition: o.partition, low: o.low, high: o.high, offset: o.offset })),
      [
        { partition: 0, low: '0', high: '20', offset: '20' },
        { partition: 1, low: '0', high: '10', offset: '10' },
      ],
    );
    for (const o of offsets)
      assert.equal(Number(o.high), (await readPartition(broker.port, topic, o.partition)).highWatermark);

    const at = async (ts: number) => {
      const r = await admin.fetchTopicOffsetsByTimestamp(topic, ts);
      return r.sort((a, b) => a.partition - b.partition).map((x) => Number(x.offset));
    };
    assert.deepEqual(await at(t0 - 1), [0, 0], 'before everything: earliest');
    assert.deepEqual(await at(t0), [0, 0]);
    // t0+5000: partition 0 record 5 (exact), partition 1 first record >= it is index 5 (t0+5500),
    // inside a single batch: the broker must resolve to the record, not the batch.
    assert.deepEqual(await at(t0 + 5000), [5, 5]);
    assert.deepEqual(await at(t0 + 5001), [6, 5]);
    assert.deepEqual(await at(t0 + 9500), [10, 9]);
    assert.deepEqual(
      await at(t0 + 10_000),
      [10, 10],
      'past partition 1: kafkajs falls back to its high watermark',
    );
    assert.deepEqual(await at(t0 + 1_000_000), [20, 10], 'past everything: high watermarks');
  });

  test('describeConfigs / alterConfigs round trip retention.ms', async () => {
    const describe = async () => {
      const res = await admin.describeConfigs({
        resources: [{ type: ConfigResourceTypes.TOPIC, name: T3, configNames: ['retention.ms'] }],
        includeSynonyms: false,
      });
      assert.equal(res.resources.length, 1);
      const r = res.resources[0]!;
      assert.equal(r.errorCode, 0);
      const e = r.configEntries.find((c) => c.configName === 'retention.ms');
      assert.ok(e, 'retention.ms described');
      return e;
    };
    const before = await describe();
    assert.equal(before.configValue, '604800000');
    assert.equal(before.isDefault, true);
    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: ConfigResourceTypes.TOPIC,
          name: T3,
          configEntries: [{ name: 'retention.ms', value: '3600000' }],
        },
      ],
    });
    const afterAlter = await describe();
    assert.equal(afterAlter.configValue, '3600000');
    assert.equal(afterAlter.isDefault, false);
    // All configs (no names) include it too, and an invalid value is refused without change.
    const all = await admin.describeConfigs({
      resources: [{ type: ConfigResourceTypes.TOPIC, name: T3 }],
      includeSynonyms: false,
    });
    assert.ok(all.resources[0]!.configEntries.length > 10);
    await assert.rejects(
      admin.alterConfigs({
        validateOnly: false,
        resources: [
          {
            type: ConfigResourceTypes.TOPIC,
            name: T3,
            configEntries: [{ name: 'retention.ms', value: 'soon' }],
          },
        ],
      }),
    );
    assert.equal((await describe()).configValue, '3600000');
    // Survives a restart (topics.json).
    await admin.disconnect();
    await broker.restart();
    await admin.connect();
    assert.equal((await describe()).configValue, '3600000');
  });

  test('createPartitions', async () => {
    const beforeRecords = (await readAll(T3, 3)).flat().length;
    await admin.createPartitions({ topicPartitions: [{ topic: T3, count: 5 }] });
    const md = await admin.fetchTopicMetadata({ topics: [T3] });
    assert.equal(md.topics[0]!.partitions.length, 5);
    await assert.rejects(
      admin.createPartitions({ topicPartitions: [{ topic: T3, count: 4 }] }),
      'cannot shrink',
    );
    // The new partitions accept records; the old ones kept theirs.
    const p = await newProducer();
    const res = await p.send({ topic: T3, acks: -1, messages: [{ partition: 4, value: 'new:0' }] });
    assert.equal(res[0]!.partition, 4);
    const parts = await readAll(T3, 5);
    assert.equal(parts[4]!.length, 1);
    assert.equal(parts.slice(0, 3).flat().length, beforeRecords);
  });

  test('deleteTopicRecords moves the low watermark', async () => {
    const topic = 'kjs-delrec';
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
    const p = await newProducer();
    await p.send({ topic, acks: -1, messages: Array.from({ length: 20 }, (_, i) => ({ value: `d:${i}` })) });
    await p.send({
      topic,
      acks: -1,
      messages: Array.from({ length: 5 }, (_, i) => ({ value: `d:${20 + i}` })),
    });
    // kafkajs quirk (same against Apache Kafka): deleteTopicRecords looks the leader up in cached
    // metadata before loading it, so the admin must have seen the topic first.
    assert.equal((await admin.fetchTopicOffsets(topic))[0]!.high, '25');
    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '7' }] });
    let o = (await admin.fetchTopicOffsets(topic))[0]!;
    assert.equal(o.low, '7');
    assert.equal(o.high, '25');
    const read = await readPartition(broker.port, topic, 0);
    assert.equal(read.logStartOffset, 7);
    assert.deepEqual(
      read.records.map((r) => r.value!.toString()),
      Array.from({ length: 18 }, (_, i) => `d:${7 + i}`),
    );
    // -1 means "up to the high watermark".
    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '-1' }] });
    o = (await admin.fetchTopicOffsets(topic))[0]!;
    assert.equal(o.low, '25');
    assert.equal(o.high, '25');
  });

  test('deleteTopics', async () => {
    await admin.deleteTopics({ topics: [T6] });
    const topics = await admin.listTopics();
    assert.ok(!topics.includes(T6));
    assert.ok(topics.includes(T3));
    for (let p = 0; p < 6; p++)
      assert.equal(existsSync(join(broker.dataDir, `${T6}-${p}`)), false, `${T6}-${p} removed`);
    await assert.rejects(admin.fetchTopicMetadata({ topics: [T6] }));
  });
});
