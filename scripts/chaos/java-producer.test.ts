/**
 * Goal: the Java chaos producer (kafka-clients 4.4.0, enable.idempotence, acks=all) records a
 * history the checker can trust: on a healthy broker every send is acknowledged, each value once,
 * at the offset where a read of the partition finds it, in send order; and the history parser
 * copes with output split anywhere and classifies failures as workload.ts does; a producer put in
 * its fatal state is replaced without a value lost or written twice.
 * Method: a real Sluice broker (BrokerProcess), a 3-partition topic, JavaProducerWorker for ~3 s,
 * then every partition read back with sessionless Fetch and compared record by record. The fatal
 * state is injected in the Java program (inject-fatal-after: the client's own transition on
 * ProducerFencedException, reached reflectively).
 * Needs java and mvn (the first run builds scripts/chaos/java; see java-producer.ts).
 * Run: node --import tsx --test scripts/chaos/java-producer.test.ts
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BrokerProcess } from '../../test/helpers/broker-process.js';
import { createTopic, readPartition } from '../../test/helpers/read-partition.js';
import { sleep } from './cluster.js';
import { JavaProducerWorker, classifyJavaFailure, ensureJavaProducerBuilt } from './java-producer.js';

const PARTITIONS = 3;

test(
  'idempotent Java producer: every send acknowledged once, at the offset the log holds it',
  { timeout: 300_000 },
  async (t) => {
    await ensureJavaProducerBuilt();
    const broker = await BrokerProcess.start();
    try {
      const topic = 'java-chaos';
      await createTopic(broker.port, topic, PARTITIONS);
      const t0 = Date.now();
      const w = new JavaProducerWorker([broker.bootstrap], 'p0', true, topic, PARTITIONS, t0, {
        ratePerSec: 300,
      });
      w.start();
      await w.ready;
      const readyMs = Date.now() - t0;
      assert.equal(w.clientVersion, '4.4.0');
      await sleep(3_000);
      const stopAt = Date.now();
      await w.stop();
      t.diagnostic(
        `JVM ready after ${readyMs} ms; ${w.sends.length} sends; stop took ${Date.now() - stopAt} ms`,
      );

      assert.deepEqual(Object.fromEntries(w.errors), {}, `errors; stderr:\n${w.stderrTail}`);
      assert.equal(w.reinitialisations, 0);
      // ~300/s for 3 s; the JVM and the producer id take a moment, so ask for a third of that.
      assert.ok(w.sends.length >= 300, `only ${w.sends.length} sends`);
      // Values p0-0 .. p0-(n-1) in send order, each to partition seq % 3, all acknowledged.
      w.sends.forEach((s, i) => {
        assert.equal(s.value, `p0-${i}`);
        assert.equal(s.producer, 'p0');
        assert.equal(s.idempotent, true);
        assert.equal(s.partition, i % PARTITIONS);
        assert.equal(s.outcome, 'ok', `${s.value}: ${s.outcome} ${s.error ?? ''}`);
        assert.ok(Number.isInteger(s.offset) && s.offset! >= 0, `${s.value} offset ${s.offset}`);
        assert.ok(s.startMs >= 0 && s.endMs !== undefined && s.endMs >= s.startMs, `${s.value} times`);
      });

      for (let p = 0; p < PARTITIONS; p++) {
        const acked = w.sends.filter((s) => s.partition === p);
        // The only producer of the topic, in order (idempotence keeps order with 5 requests in
        // flight): its acknowledgements in send order are exactly offsets 0, 1, 2, ...
        assert.deepEqual(
          acked.map((s) => s.offset),
          acked.map((_, i) => i),
          `partition ${p}: acknowledged offsets`,
        );
        const log = await readPartition(broker.port, topic, p);
        assert.equal(log.highWatermark, acked.length, `partition ${p}: high watermark`);
        assert.deepEqual(
          log.records.map((r) => ({ offset: r.offset, value: r.value?.toString() })),
          acked.map((s) => ({ offset: s.offset, value: s.value })),
          `partition ${p}: the log holds each acknowledged value once, at its acknowledged offset`,
        );
        // Written by an idempotent producer: one producer id, sequences from 0 counting every record.
        const ids = new Set(log.batches.map((b) => b.producerId));
        assert.equal(ids.size, 1, `partition ${p}: producer ids ${[...ids]}`);
        assert.ok([...ids][0]! >= 0, `partition ${p}: producer id ${[...ids][0]}`);
        for (const b of log.batches)
          assert.equal(b.baseSequence, b.baseOffset, `partition ${p}: batch sequence`);
      }
    } finally {
      await broker.destroy();
    }
  },
);

test(
  'a producer in its fatal state is closed and replaced: no value lost or written twice',
  { timeout: 300_000 },
  async (t) => {
    await ensureJavaProducerBuilt();
    const broker = await BrokerProcess.start();
    try {
      const topic = 'java-chaos-fatal';
      await createTopic(broker.port, topic, PARTITIONS);
      const w = new JavaProducerWorker([broker.bootstrap], 'p0', true, topic, PARTITIONS, Date.now(), {
        ratePerSec: 300,
        injectFatalAfter: 150,
      });
      w.start();
      await w.ready;
      await sleep(3_000);
      await w.stop();
      t.diagnostic(`${w.sends.length} sends; errors ${JSON.stringify(Object.fromEntries(w.errors))}`);

      assert.equal(w.reinitialisations, 1, `stderr:\n${w.stderrTail}`);
      assert.ok(
        [...w.errors.keys()].some((k) => /^re-initialised: .*ProducerFencedException/.test(k)),
        JSON.stringify(Object.fromEntries(w.errors)),
      );
      w.sends.forEach((s, i) => {
        assert.equal(s.value, `p0-${i}`);
        assert.equal(s.partition, i % PARTITIONS);
      });
      // The first 150 sends were made before the fault; all of them were acknowledged or settled
      // with the fault's error (nothing stays without a callback), and the new producer carries on.
      const notOk = w.sends.filter((s) => s.outcome !== 'ok');
      assert.ok(notOk.length > 0, 'the injected fatal error failed no send');
      for (const s of notOk)
        assert.match(s.error ?? '', /ProducerFencedException|closed forcefully/, `${s.value}: ${s.error}`);
      assert.ok(w.sends.length > 450, `only ${w.sends.length} sends`);
      assert.ok(
        w.sends.slice(-100).every((s) => s.outcome === 'ok'),
        'the new producer acknowledges its sends',
      );

      const byValue = new Map(w.sends.map((s) => [s.value, s]));
      const producerIds = new Set<number>();
      const inLog = new Set<string>();
      for (let p = 0; p < PARTITIONS; p++) {
        const log = await readPartition(broker.port, topic, p);
        assert.deepEqual(
          log.records.map((r) => r.offset),
          log.records.map((_, i) => i),
          `partition ${p}: no gaps`,
        );
        for (const b of log.batches) producerIds.add(b.producerId);
        for (const r of log.records) {
          const v = r.value?.toString() ?? '';
          const s = byValue.get(v);
          assert.ok(s, `partition ${p}@${r.offset}: ${v} was never sent`);
          assert.equal(s.partition, p, `${v} in partition ${p}`);
          assert.ok(!inLog.has(v), `${v} is in the log twice`);
          inLog.add(v);
          if (s.outcome === 'ok') assert.equal(r.offset, s.offset, `${v}: acknowledged at ${s.offset}`);
          // Refused inside send() means never sent.
          else assert.notEqual(s.outcome, 'failed', `${v} reported failed but is in the log`);
        }
      }
      for (const s of w.sends) if (s.outcome === 'ok') assert.ok(inLog.has(s.value), `${s.value} lost`);
      // The replacement producer has a producer id of its own.
      assert.equal(producerIds.size, 2, `producer ids ${[...producerIds]}`);
    } finally {
      await broker.destroy();
    }
  },
);

test('history parsing: lines split across chunks, outcomes, unknowns and re-initialisations', () => {
  const t0 = 1_000_000;
  const w = new JavaProducerWorker(['127.0.0.1:1'], 'p1', true, 't', 2, t0);
  const lines = [
    '{"ready":true,"name":"p1","idempotent":true,"clientVersion":"4.4.0"}',
    '{"sent":"p1-0","seq":0,"partition":0,"startMs":1000010}',
    '{"sent":"p1-1","seq":1,"partition":1,"startMs":1000011}',
    '{"sent":"p1-2","seq":2,"partition":0,"startMs":1000012}',
    '{"sent":"p1-3","seq":3,"partition":1,"startMs":1000013}',
    '{"sent":"p1-4","seq":4,"partition":0,"startMs":1000014}',
    '{"value":"p1-1","seq":1,"partition":1,"outcome":"ok","offset":7,"startMs":1000011,"endMs":1000020}',
    '{"value":"p1-0","seq":0,"partition":0,"outcome":"failed","error":"TimeoutException: Expiring 1 record(s) for t-0:30001 ms has passed since batch creation","errorClass":"org.apache.kafka.common.errors.TimeoutException","sync":false,"startMs":1000010,"endMs":1000040}',
    '{"value":"p1-2","seq":2,"partition":0,"outcome":"failed","error":"NotEnoughReplicasException: x","errorClass":"org.apache.kafka.common.errors.NotEnoughReplicasException","sync":false,"startMs":1000012,"endMs":1000041}',
    '{"value":"p1-3","seq":3,"partition":1,"outcome":"failed","error":"TimeoutException: Topic t not present in metadata after 10000 ms.","errorClass":"org.apache.kafka.common.errors.TimeoutException","sync":true,"startMs":1000013,"endMs":1000042}',
    '{"reinit":true,"error":"fatal state: ProducerFencedException: x"}',
    '{"value":"p1-3","seq":3,"partition":1,"outcome":"failed","error":"ProducerFencedException: y","errorClass":"org.apache.kafka.common.errors.ProducerFencedException","sync":false,"again":true,"startMs":1000013,"endMs":1000050}',
    '{"done":true,"nextSeq":5}',
  ];
  const text = `${lines.join('\n')}\n`;
  // Feed it in chunks of 7 characters: every line arrives in pieces.
  for (let i = 0; i < text.length; i += 7) w.ingest(text.slice(i, i + 7));
  assert.equal(w.clientVersion, '4.4.0');
  assert.deepEqual(
    w.sends.map((s) => [s.value, s.partition, s.outcome, s.offset, s.startMs, s.endMs]),
    [
      ['p1-0', 0, 'unknown', undefined, 10, 40],
      ['p1-1', 1, 'ok', 7, 11, 20],
      ['p1-2', 0, 'failed', undefined, 12, 41],
      ['p1-3', 1, 'failed', undefined, 13, 42],
      ['p1-4', 0, 'unknown', undefined, 14, undefined],
    ],
  );
  assert.match(w.sends[0]!.error!, /^TimeoutException: Expiring/);
  assert.equal(w.reinitialisations, 1);
  assert.deepEqual(Object.fromEntries(w.errors), {
    'TimeoutException: Expiring N record(s) for t-N:N ms has passed since batch creation': 1,
    'NotEnoughReplicasException: x': 1,
    'TimeoutException (in send()): Topic t not present in metadata after N ms.': 1,
    're-initialised: fatal state: ProducerFencedException: x': 1,
    'callback fired again: ProducerFencedException': 1,
  });

  assert.equal(
    classifyJavaFailure('org.apache.kafka.common.errors.NotLeaderOrFollowerException', false),
    'failed',
  );
  assert.equal(
    classifyJavaFailure('org.apache.kafka.common.errors.NotEnoughReplicasAfterAppendException', false),
    'unknown',
  );
  assert.equal(classifyJavaFailure('org.apache.kafka.common.KafkaException', false), 'unknown');
  assert.equal(classifyJavaFailure('org.apache.kafka.common.KafkaException', true), 'failed');
});
