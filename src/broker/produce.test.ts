/**
 * Goal: an idempotent producer may pipeline several batches to one partition (the Java client
 * sends up to 5 in flight) and the broker checks each sequence against the ones before it, in
 * request order; retries of any of them are answered with their original offsets.
 * Method: a broker in-process; one Connection sends 5 Produce requests without waiting, each a
 * batch of 10 records with consecutive sequence numbers, then resends all 5 (a retry after a lost
 * response), then one out-of-order batch.
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
import { encodeRecordBatch } from '../protocol/records/record-batch.js';
import type { Broker } from './broker.js';

let broker: Broker;
let dataDir: string;
let conn: Connection;

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'sluice-produce-'));
  broker = await startBroker({ dataDir, listen: '127.0.0.1:0', metricsListen: '127.0.0.1:0' });
  await broker.topics.create('p', 1);
  conn = await Connection.connect({ host: '127.0.0.1', port: broker.address.port });
});

after(async () => {
  conn.close();
  await broker.stop();
  await rm(dataDir, { recursive: true, force: true });
});

async function produceRequest(producerId: number, baseSequence: number) {
  const records = await encodeRecordBatch({
    records: Array.from({ length: 10 }, (_, i) => ({ value: Buffer.from(`v${baseSequence + i}`) })),
    producerId,
    producerEpoch: 0,
    baseSequence,
  });
  return {
    transactionalId: null,
    acks: -1,
    timeoutMs: 5000,
    topicData: [{ name: 'p', partitionData: [{ index: 0, records }] }],
  };
}

it('accepts 5 pipelined batches in order, and answers their retries with the original offsets', async () => {
  const init = await conn.send(ApiKey.InitProducerId, {
    transactionalId: null,
    transactionTimeoutMs: 60000,
    producerId: -1,
    producerEpoch: -1,
  });
  assert.equal(init.errorCode, 0);
  const pid = init.producerId;
  const requests = await Promise.all([0, 10, 20, 30, 40].map((seq) => produceRequest(pid, seq)));
  const first = await Promise.all(requests.map((r) => conn.send(ApiKey.Produce, r, { version: 9 })));
  const offsets = first.map((res) => {
    const p = res.responses[0]!.partitionResponses[0]!;
    assert.equal(p.errorCode, ErrorCode.NONE, `error ${p.errorCode}: ${p.errorMessage}`);
    return p.baseOffset;
  });
  assert.deepEqual(offsets, [0, 10, 20, 30, 40]);

  // The same 5 requests again, pipelined: duplicates, written once, answered with their offsets.
  const again = await Promise.all(requests.map((r) => conn.send(ApiKey.Produce, r, { version: 9 })));
  assert.deepEqual(
    again.map((res) => [
      res.responses[0]!.partitionResponses[0]!.errorCode,
      res.responses[0]!.partitionResponses[0]!.baseOffset,
    ]),
    [
      [0, 0],
      [0, 10],
      [0, 20],
      [0, 30],
      [0, 40],
    ],
  );
  assert.equal(broker.topics.partition('p', 0)!.logEndOffset, 50);

  // A gap in the sequence is refused.
  const gap = await conn.send(ApiKey.Produce, await produceRequest(pid, 60), { version: 9 });
  assert.equal(gap.responses[0]!.partitionResponses[0]!.errorCode, ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
  assert.equal(broker.topics.partition('p', 0)!.logEndOffset, 50);
});
