/**
 * Goal: acknowledged writes survive a crash, and a damaged log tail is cut back to the last valid
 * batch on restart, after which the log continues from there.
 * Method: a real broker process.
 * (a) A raw producer pipelines acks=-1 Produce requests of numbered records (8 in flight, two
 *     partitions, small segments so several roll) and records every acknowledgement; the broker
 *     is SIGKILLed mid-stream and restarted on the same data dir. Read back with Fetch: offsets
 *     are contiguous from 0, every acknowledged record is present exactly once at its
 *     acknowledged offset, nothing unknown or duplicated is there, and every segment file on disk
 *     is a whole number of valid (CRC-checked) batches.
 * (b) With the broker stopped, the active segment's tail is damaged: truncated mid-batch, a byte
 *     flipped inside the last batch, zeros appended. On restart ListOffsets(latest) is the end of
 *     the last valid batch, the surviving records are intact, and a new produce continues at
 *     that offset.
 */

import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { errorName } from '../src/protocol/errors.js';
import { ApiKey } from '../src/protocol/generated/index.js';
import { completeBatchOffsets, decodeRecordBatch } from '../src/protocol/records/index.js';
import { BrokerProcess } from './helpers/broker-process.js';
import {
  PRODUCE_VERSION,
  createTopic,
  listOffset,
  produce,
  produceBody,
  readPartition,
} from './helpers/read-partition.js';
import { WireClient, decodeResponseFrame, encodeRequestFrame } from './helpers/wire-client.js';

const brokers: BrokerProcess[] = [];
after(async () => {
  for (const b of brokers) await b.destroy();
});

async function startBroker(): Promise<BrokerProcess> {
  const b = await BrokerProcess.start();
  brokers.push(b);
  return b;
}

/** Asserts every .log file in a partition dir is a whole number of valid batches; returns their count. */
async function assertSegmentsClean(dir: string): Promise<number> {
  let batches = 0;
  for (const name of readdirSync(dir)
    .filter((n) => n.endsWith('.log'))
    .sort()) {
    const buf = readFileSync(join(dir, name));
    const spans = completeBatchOffsets(buf);
    const end = spans.length ? spans[spans.length - 1]!.at + spans[spans.length - 1]!.size : 0;
    assert.equal(end, buf.length, `${name}: ${buf.length - end} bytes after the last whole batch`);
    for (const s of spans) await decodeRecordBatch(buf.subarray(0, s.at + s.size), s.at); // CRC checked
    batches += spans.length;
  }
  return batches;
}

describe('crash recovery', () => {
  test('(a) SIGKILL while producing with acks=all loses no acknowledged record', async (t) => {
    const broker = await startBroker();
    const topic = 'crash';
    const PARTITIONS = 2;
    const RECORDS_PER_BATCH = 5;
    await createTopic(broker.port, topic, PARTITIONS, { 'segment.bytes': '8192' });

    // Pipelined producer: one connection, up to 8 requests in flight.
    const client = await WireClient.connect(broker.port);
    const inflight: { cid: number; partition: number; values: string[] }[] = [];
    const acked: { partition: number; baseOffset: number; values: string[] }[] = [];
    const sentValues = new Set<string>();
    let next = 0;
    let killed = false;
    let killAt = 150 + Math.floor(Math.random() * 100); // acknowledged requests before the kill

    const reader = (async () => {
      for (;;) {
        const f = await client.nextFrame(15_000).catch(() => null);
        if (!f) return;
        const sent = inflight.shift();
        assert.ok(sent, 'a response for a request we sent');
        const { correlationId, body } = decodeResponseFrame(ApiKey.Produce, PRODUCE_VERSION, f);
        assert.equal(correlationId, sent.cid);
        const pr = body.responses[0]!.partitionResponses[0]!;
        assert.equal(pr.errorCode, 0, `produce failed: ${errorName(pr.errorCode)} ${pr.errorMessage}`);
        acked.push({ partition: sent.partition, baseOffset: pr.baseOffset, values: sent.values });
        if (acked.length >= killAt && !killed) {
          killed = true;
          void broker.kill();
        }
      }
    })();

    const deadline = Date.now() + 20_000;
    while (!client.closed && Date.now() < deadline) {
      if (inflight.length >= 8) {
        await new Promise((r) => setImmediate(r));
        continue;
      }
      const partition = next % PARTITIONS;
      const values = Array.from({ length: RECORDS_PER_BATCH }, (_, i) => `rec-${next}-${i}`);
      for (const v of values) sentValues.add(v);
      const cid = client.correlationId();
      const body = await produceBody(
        topic,
        partition,
        values.map((v) => ({ key: Buffer.from(`k${next}`), value: Buffer.from(v) })),
        -1,
      );
      inflight.push({ cid, partition, values });
      client.write(encodeRequestFrame(ApiKey.Produce, PRODUCE_VERSION, cid, body));
      next++;
      if (next % 4 === 0) await new Promise((r) => setImmediate(r));
    }
    killAt = 0;
    await reader;
    assert.ok(killed, 'the broker was killed mid-stream');
    assert.ok(acked.length >= 150, `acknowledged ${acked.length} requests`);
    t.diagnostic(
      `sent ${next} produce requests, ${acked.length} acknowledged, ${inflight.length} in flight at the kill`,
    );

    await broker.restart();
    const expected = new Map<string, { partition: number; offset: number }>();
    for (const a of acked)
      a.values.forEach((v, i) => expected.set(v, { partition: a.partition, offset: a.baseOffset + i }));
    const seen = new Set<string>();
    for (let p = 0; p < PARTITIONS; p++) {
      const { records, highWatermark } = await readPartition(broker.port, topic, p);
      assert.deepEqual(
        records.map((r) => r.offset),
        Array.from({ length: highWatermark }, (_, i) => i),
        `partition ${p}: offsets contiguous from 0 to the high watermark`,
      );
      for (const r of records) {
        const v = r.value!.toString();
        assert.ok(
          sentValues.has(v),
          `partition ${p} offset ${r.offset}: unknown record ${JSON.stringify(v)}`,
        );
        assert.ok(!seen.has(v), `${v} appears twice`);
        seen.add(v);
        const e = expected.get(v);
        if (e)
          assert.deepEqual({ partition: p, offset: r.offset }, e, `${v} is where its acknowledgement said`);
      }
      const dir = join(broker.dataDir, `${topic}-${p}`);
      const segments = readdirSync(dir).filter((n) => n.endsWith('.log'));
      assert.ok(segments.length > 1, `partition ${p} rolled segments (${segments.length})`);
      await assertSegmentsClean(dir);
      // The log continues right after what survived.
      const c = await WireClient.connect(broker.port);
      try {
        const { baseOffset } = await produce(c, topic, p, [{ value: Buffer.from('after-restart') }]);
        assert.equal(baseOffset, highWatermark);
      } finally {
        c.close();
      }
    }
    const missing = [...expected.keys()].filter((v) => !seen.has(v));
    assert.deepEqual(missing.slice(0, 10), [], `${missing.length} acknowledged records missing`);
  });

  test('(b) a damaged active segment tail is cut to the last valid batch', async () => {
    const broker = await startBroker();
    const cases = ['truncated', 'flipped', 'zeros', 'intact'] as const;
    const BATCHES = 10;
    const PER_BATCH = 3;
    const c = await WireClient.connect(broker.port);
    try {
      for (const name of cases) {
        await createTopic(broker.port, `tail-${name}`, 1, {}, c);
        for (let b = 0; b < BATCHES; b++) {
          await produce(
            c,
            `tail-${name}`,
            0,
            Array.from({ length: PER_BATCH }, (_, i) => ({
              key: Buffer.from(`b${b}`),
              value: Buffer.from(`${name}-${b}-${i}-${'v'.repeat(40)}`),
            })),
          );
        }
      }
    } finally {
      c.close();
    }
    assert.equal(await broker.stop(), 0, 'clean stop');

    const segPath = (name: string) => join(broker.dataDir, `tail-${name}-0`, '00000000000000000000.log');
    const lastBatchAt = (name: string) => {
      const buf = readFileSync(segPath(name));
      const spans = completeBatchOffsets(buf);
      assert.equal(spans.length, BATCHES);
      return { at: spans[spans.length - 1]!.at, size: buf.length };
    };
    {
      const { at, size } = lastBatchAt('truncated');
      truncateSync(segPath('truncated'), at + Math.floor((size - at) / 2)); // mid last batch
    }
    {
      const { at, size } = lastBatchAt('flipped');
      const buf = readFileSync(segPath('flipped'));
      const pos = at + 61 + Math.floor((size - at - 61) / 2); // inside the records, covered by the CRC
      buf[pos] = buf[pos]! ^ 0x40;
      writeFileSync(segPath('flipped'), buf);
    }
    appendFileSync(segPath('zeros'), Buffer.alloc(4096));

    await broker.restart();
    const expectEnd: Record<(typeof cases)[number], number> = {
      truncated: (BATCHES - 1) * PER_BATCH,
      flipped: (BATCHES - 1) * PER_BATCH,
      zeros: BATCHES * PER_BATCH,
      intact: BATCHES * PER_BATCH,
    };
    for (const name of cases) {
      const topic = `tail-${name}`;
      const end = expectEnd[name];
      assert.equal(await listOffset(broker.port, topic, 0, -1), end, `${name}: ListOffsets latest`);
      assert.equal(await listOffset(broker.port, topic, 0, -2), 0, `${name}: ListOffsets earliest`);
      const before = await readPartition(broker.port, topic, 0);
      assert.equal(before.records.length, end);
      before.records.forEach((r, i) => {
        const b = Math.floor(i / PER_BATCH);
        assert.equal(r.value!.toString(), `${name}-${b}-${i % PER_BATCH}-${'v'.repeat(40)}`);
        assert.equal(r.offset, i);
      });
      await assertSegmentsClean(join(broker.dataDir, `${topic}-0`));
      const cl = await WireClient.connect(broker.port);
      try {
        const { baseOffset } = await produce(cl, topic, 0, [
          { value: Buffer.from('new-1') },
          { value: Buffer.from('new-2') },
        ]);
        assert.equal(baseOffset, end, `${name}: new produce continues at the recovered end`);
      } finally {
        cl.close();
      }
      const afterRead = await readPartition(broker.port, topic, 0);
      assert.deepEqual(
        afterRead.records.slice(end).map((r) => [r.offset, r.value!.toString()]),
        [
          [end, 'new-1'],
          [end + 1, 'new-2'],
        ],
      );
      await assertSegmentsClean(join(broker.dataDir, `${topic}-0`));
    }
    // Recovery said what it cut, once per damaged log, and nothing for the intact one.
    const cutLines = broker.output.split('\n').filter((l) => /truncating .*tail-/.test(l));
    assert.equal(cutLines.length, 3, cutLines.join('\n'));
    assert.ok(!cutLines.some((l) => l.includes('tail-intact')));

    // And a second restart is clean: nothing more is cut, data and offsets stay.
    await broker.restart();
    assert.ok(!/truncating/.test(broker.output), broker.output);
    for (const name of cases)
      assert.equal(await listOffset(broker.port, `tail-${name}`, 0, -1), expectEnd[name] + 2);
  });
});
