/**
 * Goal: a produce the disk cannot take is answered KAFKA_STORAGE_ERROR and changes nothing — not
 * the log, not the idempotent-producer table — so the producer's retry, once space is back, is
 * written (not answered as a duplicate of a batch that is not there) at the offset it would have
 * had, and readers see exactly the acknowledged records.
 * Method: a broker in-process whose partition `full-0` is swapped for one on a MemoryFileSystem
 * with a byte budget (capacityBytes); an idempotent producer over the wire.
 */

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { startBroker } from '../cli/start.js';
import { Connection } from '../client/index.js';
import { ErrorCode } from '../protocol/errors.js';
import { ApiKey } from '../protocol/generated/index.js';
import { decodeRecordBatches, encodeRecordBatch } from '../protocol/records/record-batch.js';
import { MemoryFileSystem, PartitionLog } from '../storage/index.js';
import type { Broker } from './broker.js';
import { TOPIC_CONFIG_DEFAULTS } from './config.js';
import { Partition } from './partition.js';

let broker: Broker;
let dataDir: string;
let conn: Connection;
const fs = new MemoryFileSystem();
const errors: string[] = [];

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'sluice-produce-full-'));
  broker = await startBroker({ dataDir, listen: '127.0.0.1:0', metricsListen: '127.0.0.1:0' });
  await broker.topics.create('full', 1);
  const log = await PartitionLog.open('/full-0', {}, { fs, logger: { warn: () => {} } });
  broker.topics.get('full')!.partitions[0] = new Partition(
    'full',
    0,
    log,
    { ...TOPIC_CONFIG_DEFAULTS },
    Date.now,
  );
  const original = broker.log.error.bind(broker.log);
  broker.log.error = (m: string) => {
    errors.push(m);
    if (!/KAFKA_STORAGE_ERROR/.test(m)) original(m);
  };
  conn = await Connection.connect({ host: '127.0.0.1', port: broker.address.port });
});

after(async () => {
  conn.close();
  await broker.stop();
  await rm(dataDir, { recursive: true, force: true });
});

async function produce(producerId: number, baseSequence: number, count = 10) {
  const records = await encodeRecordBatch({
    records: Array.from({ length: count }, (_, i) => ({ value: Buffer.from(`v${baseSequence + i}`) })),
    producerId,
    producerEpoch: 0,
    baseSequence,
  });
  const res = await conn.send(
    ApiKey.Produce,
    {
      transactionalId: null,
      acks: -1,
      timeoutMs: 5000,
      topicData: [{ name: 'full', partitionData: [{ index: 0, records }] }],
    },
    { version: 9 },
  );
  const p = res.responses[0]!.partitionResponses[0]!;
  return { errorCode: p.errorCode, baseOffset: Number(p.baseOffset), message: p.errorMessage };
}

it('answers KAFKA_STORAGE_ERROR on a full disk, and the retry after freeing space is written at the same offset', async () => {
  const init = await conn.send(ApiKey.InitProducerId, {
    transactionalId: null,
    transactionTimeoutMs: 60000,
    producerId: -1,
    producerEpoch: -1,
  });
  const pid = init.producerId;
  assert.deepEqual(await produce(pid, 0).then((r) => [r.errorCode, r.baseOffset]), [0, 0]);

  fs.capacityBytes = fs.usedBytes() + 20; // part of the next batch fits
  const failed = await produce(pid, 10);
  assert.equal(failed.errorCode, ErrorCode.KAFKA_STORAGE_ERROR);
  assert.match(failed.message ?? '', /ENOSPC/);
  // The retry while still full: the same answer (not a duplicate, not out of order).
  assert.equal((await produce(pid, 10)).errorCode, ErrorCode.KAFKA_STORAGE_ERROR);
  const partition = broker.topics.partition('full', 0)!;
  assert.equal(partition.logEndOffset, 10);
  assert.equal(
    partition.producers.check(pid, 0, 10, 9).kind,
    'append',
    'the failed batch is not in the producer table',
  );

  fs.capacityBytes = Number.POSITIVE_INFINITY;
  const retried = await produce(pid, 10);
  assert.deepEqual([retried.errorCode, retried.baseOffset], [0, 10]);
  assert.deepEqual(await produce(pid, 20).then((r) => [r.errorCode, r.baseOffset]), [0, 20]);

  const read = await partition.log.read(0, 1 << 20);
  const values = (await decodeRecordBatches(read.records)).flatMap((b) =>
    b.records.map((r) => `${r.offset}:${r.value?.toString()}`),
  );
  assert.deepEqual(
    values,
    Array.from({ length: 30 }, (_, i) => `${i}:v${i}`),
  );
  assert.equal(errors.filter((m) => /KAFKA_STORAGE_ERROR/.test(m)).length, 1, 'logged once, rate-limited');
});
