/**
 * Client end-to-end tests against a real broker started in-process (startBroker, a mkdtemp data
 * dir, port 0).
 *
 * Goal: what the producer writes, the consumer reads back exactly: every record once, in order
 * per partition, keyed records on Kafka's murmur2 partition, unkeyed ones spread by the sticky
 * partitioner, contiguous offsets — for acks -1 (idempotent), 1 and 0. And idempotence works on
 * the wire: a batch sent twice with the same sequence is written once.
 * Method: produce 1,000 keyed + 1,000 unkeyed records per acks mode into its own 3-partition
 * topic, then read every partition from the earliest offset up to its high watermark and check
 * the invariants; the retry case uses a bare Connection to resend identical Produce bytes.
 */

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Broker } from '../broker/broker.js';
import { startBroker } from '../cli/start.js';
import { ApiKey } from '../protocol/generated/index.js';
import { encodeRecordBatch } from '../protocol/records/record-batch.js';
import {
  Admin,
  BrokerNotAvailableError,
  Connection,
  Consumer,
  type ConsumerRecord,
  EARLIEST_OFFSET,
  LATEST_OFFSET,
  Producer,
  partitionForKey,
} from './index.js';

let broker: Broker;
let dataDir: string;
let bootstrap: string;
let admin: Admin;

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'sluice-client-test-'));
  broker = await startBroker({ dataDir, listen: '127.0.0.1:0', metricsListen: '127.0.0.1:0' });
  bootstrap = `127.0.0.1:${broker.address.port}`;
  admin = new Admin({ bootstrapServers: bootstrap });
});

after(async () => {
  await admin.close();
  await broker.stop();
  await rm(dataDir, { recursive: true, force: true });
});

/** Reads partitions of a topic from the earliest offset until each reaches `ends` (or the deadline). */
async function readAll(
  topic: string,
  partitions: number[],
  ends: Map<number, number>,
  deadlineMs = 15_000,
): Promise<Map<number, ConsumerRecord[]>> {
  const consumer = new Consumer({ bootstrapServers: bootstrap, maxWaitMs: 100 });
  const out = new Map<number, ConsumerRecord[]>(partitions.map((p) => [p, []]));
  try {
    await consumer.assign(partitions.map((partition) => ({ topic, partition, offset: 'earliest' as const })));
    const stopAt = Date.now() + deadlineMs;
    while (partitions.some((p) => consumer.position(topic, p) < (ends.get(p) ?? 0)) && Date.now() < stopAt) {
      for (const r of await consumer.poll()) out.get(r.partition)!.push(r);
    }
  } finally {
    await consumer.close();
  }
  return out;
}

async function endOffsets(topic: string): Promise<Map<number, number>> {
  const m = await admin.listOffsetsMany(topic, [0, 1, 2], LATEST_OFFSET);
  return new Map([...m].map(([p, o]) => [p, o.offset]));
}

const modes: { name: string; acks: 0 | 1 | -1 }[] = [
  { name: 'acks -1 (idempotent)', acks: -1 },
  { name: 'acks 1', acks: 1 },
  { name: 'acks 0', acks: 0 },
];

describe('produce and consume round trip', () => {
  for (const mode of modes) {
    it(`${mode.name}: 1,000 keyed + 1,000 unkeyed records come back in order on the right partitions`, async () => {
      const topic = `roundtrip-acks${mode.acks}`;
      await admin.createTopic(topic, { partitions: 3 });
      const producer = new Producer({ bootstrapServers: bootstrap, acks: mode.acks, lingerMs: 5 });
      assert.equal(producer.idempotent, mode.acks === -1);
      const keyed = Array.from({ length: 1000 }, (_, i) => ({
        key: `key-${i % 37}`,
        value: `keyed-${i}`,
        headers: { i: String(i) },
      }));
      const unkeyed = Array.from({ length: 1000 }, (_, i) => ({ value: `unkeyed-${i}-${'x'.repeat(100)}` }));
      // Several send() calls, not awaited one by one, so batching and ordering across calls matter.
      const sends: Promise<{ partition: number; offset: number }[]>[] = [];
      for (let i = 0; i < 1000; i += 100) {
        sends.push(producer.send(topic, keyed.slice(i, i + 100)));
        sends.push(producer.send(topic, unkeyed.slice(i, i + 100)));
      }
      const metas = (await Promise.all(sends)).flat();
      await producer.close();
      assert.equal(metas.length, 2000);

      // acks 0 resolves once the bytes left; the broker may still be appending them.
      let ends = await endOffsets(topic);
      const sum = (m: Map<number, number>) => [...m.values()].reduce((a, b) => a + b, 0);
      for (let i = 0; i < 100 && sum(ends) < 2000; i++) {
        await new Promise((r) => setTimeout(r, 50));
        ends = await endOffsets(topic);
      }
      const total = sum(ends);
      assert.equal(total, 2000, 'every record written exactly once');
      const byPartition = await readAll(topic, [0, 1, 2], ends);

      const seen = new Map<string, { partition: number; offset: number }>();
      const lastKeyedIndex = new Map<string, number>();
      const unkeyedPartitions = new Set<number>();
      for (const [partition, records] of byPartition) {
        assert.equal(records.length, ends.get(partition), `partition ${partition} read fully`);
        records.forEach((r, i) => assert.equal(r.offset, i, `offsets contiguous in partition ${partition}`));
        for (const r of records) {
          const value = r.value!.toString();
          assert.ok(!seen.has(value), `duplicate ${value}`);
          seen.set(value, { partition, offset: r.offset });
          if (r.key !== null) {
            const k = r.key.toString();
            assert.equal(partition, partitionForKey(r.key, 3), `key ${k} on its murmur2 partition`);
            const idx = Number(value.slice('keyed-'.length));
            assert.ok(idx > (lastKeyedIndex.get(k) ?? -1), `records of key ${k} in send order`);
            lastKeyedIndex.set(k, idx);
            assert.equal(r.headers[0]?.key, 'i');
            assert.equal(r.headers[0]?.value?.toString(), String(idx));
          } else {
            unkeyedPartitions.add(partition);
          }
        }
      }
      assert.equal(seen.size, 2000);
      assert.ok(unkeyedPartitions.size > 1, 'sticky partitioner moved on after a batch');

      // The offsets send() reported are where the records are (acks 0 cannot know them).
      if (mode.acks !== 0) {
        const valuesInOrder: string[] = [];
        for (let i = 0; i < 1000; i += 100) {
          valuesInOrder.push(...keyed.slice(i, i + 100).map((r) => r.value));
          valuesInOrder.push(...unkeyed.slice(i, i + 100).map((r) => r.value));
        }
        metas.forEach((m, i) =>
          assert.deepEqual(seen.get(valuesInOrder[i]!), { partition: m.partition, offset: m.offset }),
        );
      } else {
        assert.ok(metas.every((m) => m.offset === -1));
      }
    });
  }

  it('compressed batches (gzip, snappy, lz4, zstd) round trip', async () => {
    const topic = 'compressed';
    await admin.createTopic(topic, { partitions: 1 });
    for (const compression of ['gzip', 'snappy', 'lz4', 'zstd'] as const) {
      const producer = new Producer({ bootstrapServers: bootstrap, compression });
      await producer.send(
        topic,
        Array.from({ length: 50 }, (_, i) => ({ value: `${compression}-${i}`, partition: 0 })),
      );
      await producer.close();
    }
    const ends = await endOffsets(topic).catch(
      async () => new Map([[0, (await admin.listOffsets(topic, 0, LATEST_OFFSET)).offset]]),
    );
    const got = await readAll(topic, [0], new Map([[0, ends.get(0) ?? 200]]));
    assert.deepEqual(
      got.get(0)!.map((r) => r.value!.toString()),
      ['gzip', 'snappy', 'lz4', 'zstd'].flatMap((c) => Array.from({ length: 50 }, (_, i) => `${c}-${i}`)),
    );
  });

  it('a consumer assigned an offset inside a batch starts exactly there', async () => {
    const topic = 'mid-batch';
    await admin.createTopic(topic, { partitions: 1 });
    const producer = new Producer({ bootstrapServers: bootstrap, lingerMs: 50 });
    await producer.send(
      topic,
      Array.from({ length: 20 }, (_, i) => ({ value: `v${i}` })),
    );
    await producer.close();
    const consumer = new Consumer({ bootstrapServers: bootstrap, maxWaitMs: 100 });
    await consumer.assign([{ topic, partition: 0, offset: 7 }]);
    const records: ConsumerRecord[] = [];
    while (records.length < 13) records.push(...(await consumer.poll()));
    await consumer.close();
    assert.deepEqual(
      records.map((r) => r.offset),
      Array.from({ length: 13 }, (_, i) => i + 7),
    );
  });
});

describe('idempotence on the wire', () => {
  it('a batch resent with the same sequence is written once', async () => {
    const topic = 'retried-batch';
    await admin.createTopic(topic, { partitions: 1 });
    const conn = await Connection.connect({ host: '127.0.0.1', port: broker.address.port });
    try {
      const pid = await conn.send(ApiKey.InitProducerId, {
        transactionalId: null,
        transactionTimeoutMs: 60_000,
        producerId: -1,
        producerEpoch: -1,
      });
      assert.equal(pid.errorCode, 0);
      const batch = (baseSequence: number) =>
        encodeRecordBatch({
          records: Array.from({ length: 5 }, (_, i) => ({ value: Buffer.from(`r${baseSequence + i}`) })),
          producerId: pid.producerId,
          producerEpoch: pid.producerEpoch,
          baseSequence,
        });
      const produce = async (records: Buffer) => {
        const res = await conn.send(ApiKey.Produce, {
          transactionalId: null,
          acks: -1,
          timeoutMs: 5000,
          topicData: [{ name: topic, partitionData: [{ index: 0, records }] }],
        });
        return res.responses[0]!.partitionResponses[0]!;
      };
      const first = await batch(0);
      const a = await produce(first);
      const b = await produce(first); // the "retry": identical bytes, same sequence
      assert.equal(a.errorCode, 0);
      assert.equal(b.errorCode, 0);
      assert.equal(b.baseOffset, a.baseOffset, 'the duplicate is answered with the original offset');
      assert.equal((await admin.listOffsets(topic, 0, LATEST_OFFSET)).offset, 5, 'written once');
      const c = await produce(await batch(5));
      assert.equal(c.errorCode, 0);
      assert.equal(c.baseOffset, 5);
      assert.equal((await admin.listOffsets(topic, 0, LATEST_OFFSET)).offset, 10);
    } finally {
      conn.close();
    }
  });
});

describe('admin', () => {
  it('describes, alters configs, adds partitions, deletes records and topics', async () => {
    const topic = 'admin-ops';
    const created = await admin.createTopic(topic, { partitions: 2, configs: { 'retention.ms': '3600000' } });
    assert.equal(created.partitions, 2);
    await assert.rejects(
      admin.createTopic(topic, { partitions: 2 }),
      (e: Error & { code?: string }) => e.code === 'TOPIC_ALREADY_EXISTS',
    );
    assert.ok((await admin.listTopics()).some((t) => t.name === topic));

    const producer = new Producer({ bootstrapServers: bootstrap });
    await producer.send(
      topic,
      Array.from({ length: 10 }, (_, i) => ({ value: `v${i}`, partition: 0 })),
    );
    await producer.close();

    let d = await admin.describeTopic(topic);
    assert.equal(d.partitions.length, 2);
    assert.deepEqual(
      d.partitions.map((p) => [
        p.partition,
        p.logStartOffset,
        p.logEndOffset,
        p.replicas.length,
        p.isr.length,
      ]),
      [
        [0, 0, 10, 1, 1],
        [1, 0, 0, 1, 1],
      ],
    );
    assert.deepEqual(
      d.configs.filter((c) => !c.isDefault).map((c) => [c.name, c.value]),
      [['retention.ms', '3600000']],
    );

    await admin.alterConfigs(topic, { 'cleanup.policy': 'compact', 'retention.ms': null });
    d = await admin.describeTopic(topic);
    assert.deepEqual(
      d.configs.filter((c) => !c.isDefault).map((c) => [c.name, c.value]),
      [['cleanup.policy', 'compact']],
    );

    await admin.createPartitions(topic, 4);
    assert.equal((await admin.describeTopic(topic)).partitions.length, 4);

    const low = await admin.deleteRecords(topic, { 0: 4 });
    assert.equal(low.get(0), 4);
    assert.equal((await admin.listOffsets(topic, 0, EARLIEST_OFFSET)).offset, 4);

    await admin.deleteTopics([topic]);
    assert.ok(!(await admin.listTopics()).some((t) => t.name === topic));
    await assert.rejects(
      admin.describeTopic(topic),
      (e: Error & { code?: string }) =>
        e.code === 'UNKNOWN_TOPIC_OR_PARTITION' && /sluice topic create/.test(e.message),
    );
  });
});

describe('errors', () => {
  it('connection refused is BrokerNotAvailableError telling the user to start a broker', async () => {
    await assert.rejects(Connection.connect({ host: '127.0.0.1', port: 1 }), (e: unknown) => {
      assert.ok(e instanceof BrokerNotAvailableError);
      assert.equal(e.code, 'BROKER_NOT_AVAILABLE');
      assert.equal(e.canRetry, true);
      assert.equal(e.message, 'no broker at 127.0.0.1:1 — start one with `sluice start`');
      return true;
    });
  });

  it('requests are matched by correlation id with many in flight', async () => {
    const conn = await Connection.connect({ host: '127.0.0.1', port: broker.address.port });
    try {
      const results = await Promise.all(
        Array.from({ length: 50 }, () =>
          conn.send(ApiKey.Metadata, {
            topics: [],
            allowAutoTopicCreation: false,
            includeClusterAuthorizedOperations: false,
            includeTopicAuthorizedOperations: false,
          }),
        ),
      );
      assert.ok(results.every((r) => r.brokers.length === 1));
      assert.equal(conn.versionFor(ApiKey.Metadata), 12);
    } finally {
      conn.close();
    }
  });
});

describe('producer retries', () => {
  it('a send pending while the broker restarts is delivered once it is back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-client-restart-'));
    let b = await startBroker({ dataDir: dir, listen: '127.0.0.1:0', metricsListen: '127.0.0.1:0' });
    const port = b.address.port;
    const producer = new Producer({ bootstrapServers: `127.0.0.1:${port}`, retryBackoffMs: 50 });
    try {
      const first = await producer.send('restart', [{ value: 'a', partition: 0 }]);
      assert.equal(first[0]!.offset, 0);
      await b.stop();
      const pending = producer.send('restart', [{ value: 'b', partition: 0 }]);
      await new Promise((r) => setTimeout(r, 300));
      b = await startBroker({ dataDir: dir, listen: `127.0.0.1:${port}`, metricsListen: '127.0.0.1:0' });
      const second = await pending;
      assert.deepEqual(second, [{ topic: 'restart', partition: 0, offset: 1 }]);
    } finally {
      await producer.close();
      await b.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
