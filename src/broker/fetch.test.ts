/**
 * Goal: Fetch behaves as Kafka's does for the features clients lean on: incremental fetch
 * sessions (KIP-227), long polling woken by appends, KIP-74 limits, and the metrics endpoint
 * reports what happened.
 * Method: a broker in-process on port 0; raw Fetch requests (v12 names, v13 topic ids) through
 * Sluice's client Connection; records written with the Producer.
 */

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startBroker } from '../cli/start.js';
import { Admin, Connection, Producer } from '../client/index.js';
import { ErrorCode } from '../protocol/errors.js';
import { ApiKey } from '../protocol/generated/index.js';
import type { Broker } from './broker.js';

let broker: Broker;
let dataDir: string;
let bootstrap: string;
let conn: Connection;
let producer: Producer;

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'sluice-fetch-'));
  broker = await startBroker({ dataDir, listen: '127.0.0.1:0', metricsListen: '127.0.0.1:0' });
  bootstrap = `127.0.0.1:${broker.address.port}`;
  const admin = new Admin({ bootstrapServers: bootstrap });
  await admin.connect();
  await admin.createTopic('s', { partitions: 2 });
  await admin.close();
  conn = await Connection.connect({ host: '127.0.0.1', port: broker.address.port });
  producer = new Producer({ bootstrapServers: bootstrap, acks: -1, lingerMs: 0 });
  await producer.connect();
});

after(async () => {
  await producer.close();
  conn.close();
  await broker.stop();
  await rm(dataDir, { recursive: true, force: true });
});

function fetchReq(
  sessionId: number,
  sessionEpoch: number,
  parts: { p: number; offset: number }[],
  maxWaitMs = 0,
  minBytes = 0,
) {
  return {
    replicaId: -1,
    maxWaitMs,
    minBytes,
    maxBytes: 1 << 20,
    isolationLevel: 0,
    sessionId,
    sessionEpoch,
    topics: parts.length
      ? [
          {
            topic: 's',
            partitions: parts.map(({ p, offset }) => ({
              partition: p,
              fetchOffset: offset,
              partitionMaxBytes: 1 << 20,
            })),
          },
        ]
      : [],
    forgottenTopicsData: [],
    rackId: '',
  };
}

describe('incremental fetch sessions (KIP-227)', () => {
  it('opens a session, then answers only partitions with news', async () => {
    await producer.send('s', [{ value: Buffer.from('a'), partition: 0 }]);
    const full = await conn.send(
      ApiKey.Fetch,
      fetchReq(0, 0, [
        { p: 0, offset: 0 },
        { p: 1, offset: 0 },
      ]),
      { version: 12 },
    );
    assert.equal(full.errorCode, 0);
    assert.ok(full.sessionId > 0, 'a new session gets an id');
    assert.equal(full.responses[0]?.partitions.length, 2, 'the first answer of a session is full');

    // Epoch 1, nothing changed: nothing to report.
    const quiet = await conn.send(ApiKey.Fetch, fetchReq(full.sessionId, 1, [{ p: 0, offset: 1 }]), {
      version: 12,
    });
    assert.equal(quiet.errorCode, 0);
    assert.equal(quiet.sessionId, full.sessionId);
    assert.equal(quiet.responses.length, 0, 'no partition has news');

    // A write to partition 1 is news for partition 1 only.
    await producer.send('s', [{ value: Buffer.from('b'), partition: 1 }]);
    const news = await conn.send(ApiKey.Fetch, fetchReq(full.sessionId, 2, []), { version: 12 });
    assert.equal(news.responses.length, 1);
    assert.deepEqual(
      news.responses[0]?.partitions.map((p) => [p.partitionIndex, p.highWatermark]),
      [[1, 1]],
    );
    assert.ok((news.responses[0]?.partitions[0]?.records?.length ?? 0) > 0, 'the new record is returned');

    // A wrong epoch is refused; so is an unknown session.
    const stale = await conn.send(ApiKey.Fetch, fetchReq(full.sessionId, 2, []), { version: 12 });
    assert.equal(stale.errorCode, ErrorCode.INVALID_FETCH_SESSION_EPOCH);
    const unknown = await conn.send(ApiKey.Fetch, fetchReq(987654, 1, []), { version: 12 });
    assert.equal(unknown.errorCode, ErrorCode.FETCH_SESSION_ID_NOT_FOUND);

    // Epoch -1 closes the session and fetches sessionless.
    const closed = await conn.send(ApiKey.Fetch, fetchReq(full.sessionId, -1, [{ p: 0, offset: 0 }]), {
      version: 12,
    });
    assert.equal(closed.sessionId, 0);
    const gone = await conn.send(ApiKey.Fetch, fetchReq(full.sessionId, 3, []), { version: 12 });
    assert.equal(gone.errorCode, ErrorCode.FETCH_SESSION_ID_NOT_FOUND);
  });

  it('fetches by topic id from v13 and reports UNKNOWN_TOPIC_ID for unknown ids', async () => {
    const topicId = broker.topics.get('s')!.meta.topicId;
    const req = fetchReq(0, -1, [{ p: 0, offset: 0 }]);
    const byId = await conn.send(
      ApiKey.Fetch,
      {
        ...req,
        topics: [{ topicId, partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20 }] }],
      },
      { version: 13 },
    );
    assert.equal(byId.responses[0]?.topicId, topicId);
    assert.equal(byId.responses[0]?.partitions[0]?.errorCode, 0);
    const bad = await conn.send(
      ApiKey.Fetch,
      {
        ...req,
        topics: [
          {
            topicId: 'ab'.repeat(16),
            partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20 }],
          },
        ],
      },
      { version: 13 },
    );
    assert.equal(bad.responses[0]?.partitions[0]?.errorCode, ErrorCode.UNKNOWN_TOPIC_ID);
  });
});

describe('long poll', () => {
  it('waits up to maxWaitMs when nothing is ready', async () => {
    const end = broker.topics.partition('s', 0)!.logEndOffset;
    const t0 = performance.now();
    const res = await conn.send(ApiKey.Fetch, fetchReq(0, -1, [{ p: 0, offset: end }], 300, 1), {
      version: 12,
    });
    const waited = performance.now() - t0;
    assert.ok(waited >= 250, `waited ${waited} ms`);
    assert.equal(res.responses[0]?.partitions[0]?.records?.length ?? 0, 0);
  });

  it('is woken by an append before maxWaitMs', async () => {
    const end = broker.topics.partition('s', 0)!.logEndOffset;
    const t0 = performance.now();
    const pending = conn.send(ApiKey.Fetch, fetchReq(0, -1, [{ p: 0, offset: end }], 10000, 1), {
      version: 12,
      timeoutMs: 20000,
    });
    await new Promise((r) => setTimeout(r, 100));
    await producer.send('s', [{ value: Buffer.from('wake'), partition: 0 }]);
    const res = await pending;
    const waited = performance.now() - t0;
    assert.ok(waited < 5000, `woken after ${waited} ms`);
    assert.ok((res.responses[0]?.partitions[0]?.records?.length ?? 0) > 0);
  });
});

describe('KIP-74 limits', () => {
  it('returns one whole batch even when it exceeds maxBytes, and respects maxBytes otherwise', async () => {
    const big = Buffer.alloc(20000, 1);
    const [first] = await producer.send('s', [{ value: big, partition: 1 }]);
    await producer.send('s', [{ value: big, partition: 1 }]);
    const req = fetchReq(0, -1, [{ p: 1, offset: first!.offset }]);
    const res = await conn.send(
      ApiKey.Fetch,
      {
        ...req,
        maxBytes: 100,
        topics: [
          { topic: 's', partitions: [{ partition: 1, fetchOffset: first!.offset, partitionMaxBytes: 100 }] },
        ],
      },
      { version: 12 },
    );
    const bytes = res.responses[0]?.partitions[0]?.records?.length ?? 0;
    assert.ok(bytes > 20000 && bytes < 40000, `exactly one batch (${bytes} bytes)`);
  });
});

describe('metrics', () => {
  it('serves Prometheus text with request counts and log end offsets', async () => {
    const m = broker.metricsAddress!;
    const text = await (await fetch(`http://127.0.0.1:${m.port}/metrics`)).text();
    assert.match(text, /sluice_requests_total\{api="Fetch",error="NONE"\} \d+/);
    assert.match(text, /sluice_requests_total\{api="Produce",error="NONE"\} \d+/);
    assert.match(text, /sluice_log_end_offset\{topic="s",partition="0"\} [1-9]/);
    assert.match(text, /sluice_request_duration_seconds_bucket\{le="0.001",api="Produce"\}/);
  });
});
