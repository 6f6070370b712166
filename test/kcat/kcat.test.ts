/**
 * Goal: librdkafka (through the kcat CLI) works against Sluice: metadata, keyed produce with the
 * default and the murmur2 partitioner, consume from the beginning, and every compression codec
 * librdkafka writes (gzip, snappy, lz4, zstd) stored as sent and read back intact.
 * Method: a real broker process and the `kcat` binary (`apt-get install kcat`). When kcat is not
 * on PATH the whole suite is skipped, loudly: a console warning and a skip reason.
 * Compressed pass-through is verified twice: kcat reads the records back, and our own Fetch
 * reader shows the stored batches still carry the producer's codec.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { partitionForKey } from '../../src/client/partitioner.js';
import { Compression } from '../../src/protocol/records/index.js';
import { BrokerProcess } from '../helpers/broker-process.js';
import { createTopic, readPartition } from '../helpers/read-partition.js';

function kcatVersion(): string | null {
  const r = spawnSync('kcat', ['-V'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return null;
  return /Version (\S+)/.exec(r.stdout)?.[1] ?? 'unknown';
}

const version = kcatVersion();
const skip =
  version === null
    ? 'kcat is not on PATH (install it: apt-get install -y kcat); librdkafka interop NOT tested'
    : false;
if (skip) console.warn(`\n*** WARNING: skipping test/kcat/kcat.test.ts: ${skip} ***\n`);

let broker: BrokerProcess;

function kcat(args: string[], input?: string): string {
  const r = spawnSync('kcat', ['-b', broker.bootstrap, ...args], {
    input,
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`kcat ${args.join(' ')} exited ${r.status}:\n${r.stderr}`);
  return r.stdout;
}

interface Consumed {
  key: string;
  value: string;
  partition: number;
  offset: number;
}

function consumeAll(topic: string): Consumed[] {
  const out = kcat(['-C', '-t', topic, '-e', '-o', 'beginning', '-q', '-f', '%k:%s:%p:%o\\n']);
  return out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const [key, value, p, o] = l.split(':');
      return { key: key!, value: value!, partition: Number(p), offset: Number(o) };
    });
}

/** Keys "key-<i>", values "<tag>-<i>" padded so compression pays off. */
function lines(tag: string, n: number): string {
  return (
    Array.from({ length: n }, (_, i) => `key-${i}:${tag}-${i}-${'abcdefgh'.repeat(8)}`).join('\n') + '\n'
  );
}

/** Every line came back once, in send order within each partition, offsets contiguous from 0. */
function assertAllBack(got: Consumed[], tag: string, n: number, partitions: number): void {
  assert.equal(got.length, n, `${tag}: ${got.length} of ${n} records read back`);
  const values = new Set(got.map((c) => c.value));
  for (let i = 0; i < n; i++)
    assert.ok(values.has(`${tag}-${i}-${'abcdefgh'.repeat(8)}`), `${tag}-${i} read back`);
  for (let p = 0; p < partitions; p++) {
    const inP = got.filter((c) => c.partition === p);
    assert.deepEqual(
      inP.map((c) => c.offset),
      inP.map((_, i) => i),
      `${tag} partition ${p}: offsets`,
    );
    const seqs = inP.map((c) => Number(c.value.split('-')[1]));
    assert.deepEqual(
      seqs,
      [...seqs].sort((a, b) => a - b),
      `${tag} partition ${p}: send order`,
    );
    for (const c of inP) assert.equal(c.key, `key-${c.value.split('-')[1]}`);
  }
}

describe(`kcat ${version ?? '(not installed)'}`, { skip }, () => {
  before(async () => {
    broker = await BrokerProcess.start();
  });
  after(async () => {
    await broker?.destroy();
  });

  test('-L lists the broker and topics', async () => {
    await createTopic(broker.port, 'kcat-meta', 3);
    const text = kcat(['-L']);
    assert.match(text, /1 brokers:/);
    assert.match(text, new RegExp(`broker 1 at 127\\.0\\.0\\.1:${broker.port}`));
    assert.match(text, /topic "kcat-meta" with 3 partitions:/);
    const json = JSON.parse(kcat(['-L', '-J']));
    assert.deepEqual(json.brokers, [{ id: 1, name: `127.0.0.1:${broker.port}` }]);
    const t = json.topics.find((x: { topic: string }) => x.topic === 'kcat-meta');
    assert.equal(t.partitions.length, 3);
    for (const p of t.partitions) assert.equal(p.leader, 1);
  });

  test('-P -K: 100 keyed lines (default partitioner), -C reads them all back', () => {
    const topic = 'kcat-keyed';
    // Auto-created by kcat's metadata request: num.partitions is 1.
    kcat(['-P', '-t', topic, '-K:'], lines('dflt', 100));
    assertAllBack(consumeAll(topic), 'dflt', 100, 1);
  });

  test('-X partitioner=murmur2_random: every key lands on partitionForKey(key, 4)', async () => {
    const topic = 'kcat-murmur';
    await createTopic(broker.port, topic, 4);
    kcat(['-P', '-t', topic, '-K:', '-X', 'partitioner=murmur2_random'], lines('mm', 100));
    const got = consumeAll(topic);
    assertAllBack(got, 'mm', 100, 4);
    for (const c of got) assert.equal(c.partition, partitionForKey(Buffer.from(c.key), 4), `key ${c.key}`);
    assert.equal(new Set(got.map((c) => c.partition)).size, 4, 'all partitions used');
  });

  const codecs: [string, Compression][] = [
    ['gzip', Compression.Gzip],
    ['snappy', Compression.Snappy],
    ['lz4', Compression.Lz4],
    ['zstd', Compression.Zstd],
  ];
  // librdkafka (<= 2.x) enables its LZ4 feature only when the broker advertises FindCoordinator
  // v0 (rdkafka_feature.c: LZ4 depends on {FindCoordinator, 0, 0}, a stand-in for "broker >=
  // 0.8.2"); Sluice serves FindCoordinator, so lz4 batches arrive compressed like the others.
  for (const [name, codec] of codecs) {
    const topic = `kcat-${name}`;
    test(`-z ${name}: produced and read back intact`, async () => {
      await createTopic(broker.port, topic, 2);
      kcat(['-P', '-t', topic, '-K:', '-z', name, '-X', 'partitioner=murmur2_random'], lines(name, 200));
      assertAllBack(consumeAll(topic), name, 200, 2);
      for (let p = 0; p < 2; p++) {
        const { records } = await readPartition(broker.port, topic, p);
        for (const r of records) assert.equal(partitionForKey(r.key!, 2), p);
      }
    });
    test(`-z ${name}: stored batches keep the producer's codec (compressed pass-through)`, async () => {
      for (let p = 0; p < 2; p++) {
        const { batches } = await readPartition(broker.port, topic, p);
        assert.ok(batches.length > 0);
        for (const b of batches)
          assert.equal(b.compression, codec, `partition ${p} batch at ${b.baseOffset} keeps codec ${name}`);
      }
    });
  }
});
