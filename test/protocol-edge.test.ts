/**
 * Goal: the broker's network and dispatch edges behave as Kafka clients rely on.
 * Method: a real broker process (socket.request.max.bytes=1024) and raw sockets speaking bytes
 * built with the generated codec: ApiVersions v0 and v3 (response header v0, Produce advertised
 * from 0, Fetch from 4); ApiVersions v127 answered in v0 with UNSUPPORTED_VERSION and the API
 * list; an oversized frame and garbage frames close only their own connection, each with exactly
 * one stderr line; 50 pipelined requests (slow long-poll fetches mixed with fast ones) come back
 * in request order; Produce acks=0 gets no response yet the next request is answered.
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ErrorCode } from '../src/protocol/errors.js';
import { ApiKey } from '../src/protocol/generated/index.js';
import { Writer } from '../src/protocol/primitives.js';
import { BrokerProcess } from './helpers/broker-process.js';
import { PRODUCE_VERSION, createTopic, listOffset, produceBody } from './helpers/read-partition.js';
import { WireClient, decodeResponseFrame, encodeRequestFrame } from './helpers/wire-client.js';

const MAX_REQUEST = 1024;
let broker: BrokerProcess;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

before(async () => {
  broker = await BrokerProcess.start({ set: [`socket.request.max.bytes=${MAX_REQUEST}`] });
});
after(async () => {
  await broker?.destroy();
});

/** Stderr lines that appeared after `mark` (a previous stderr length), once output settles. */
async function newStderrLines(mark: number): Promise<string[]> {
  await sleep(300);
  return broker.stderr
    .slice(mark)
    .split('\n')
    .filter((l) => l.trim() !== '');
}

/** Asserts the connection is closed by the broker within 5 s. */
async function assertClosedByBroker(c: WireClient): Promise<void> {
  const frame = await Promise.race([c.nextFrame(5000), sleep(5000).then(() => 'timeout' as const)]);
  assert.equal(frame, null, 'the broker should close the connection without answering');
  assert.equal(c.closed, true);
}

async function assertWorks(c: WireClient): Promise<void> {
  const res = await c.request(ApiKey.ApiVersions, 0, {});
  assert.equal(res.errorCode, 0);
}

describe('ApiVersions', () => {
  for (const version of [0, 3]) {
    test(`v${version}: response header v0, Produce from 0, Fetch from 4`, async () => {
      const c = await WireClient.connect(broker.port);
      try {
        c.write(
          encodeRequestFrame(ApiKey.ApiVersions, version, 77, {
            clientSoftwareName: 'sluice-it',
            clientSoftwareVersion: '1.0',
          }),
        );
        const frame = (await c.nextFrame())!;
        assert.ok(frame);
        // Response header v0: correlation id, then the body straight away (v3 body is flexible,
        // but its first field is errorCode int16 = 0; a v1 header would put a 0x00 tag byte first).
        assert.equal(frame.readInt32BE(0), 77);
        assert.equal(frame.readInt16BE(4), 0, 'errorCode directly after the correlation id');
        const { body } = decodeResponseFrame(ApiKey.ApiVersions, version, frame);
        assert.equal(body.errorCode, 0);
        const byKey = new Map(body.apiKeys.map((k) => [k.apiKey, k]));
        assert.equal(byKey.get(ApiKey.Produce)?.minVersion, 0);
        assert.ok((byKey.get(ApiKey.Produce)?.maxVersion ?? 0) >= 9);
        assert.equal(byKey.get(ApiKey.Fetch)?.minVersion, 4);
        assert.ok((byKey.get(ApiKey.Fetch)?.maxVersion ?? 0) >= 12);
        assert.ok(byKey.has(ApiKey.ApiVersions));
        assert.ok(byKey.has(ApiKey.Metadata));
        const keys = body.apiKeys.map((k) => k.apiKey);
        assert.deepEqual(
          keys,
          [...keys].sort((a, b) => a - b),
          'sorted by api key',
        );
      } finally {
        c.close();
      }
    });
  }

  test('v127 gets a v0 UNSUPPORTED_VERSION answer listing the APIs', async () => {
    const c = await WireClient.connect(broker.port);
    try {
      // Header v2 (as a client of a newer version would send) and a body we know nothing of.
      const w = new Writer(64);
      w.int32(0).int16(ApiKey.ApiVersions).int16(127).int32(4242).nullableString('future-client').uvarint(0);
      w.raw(Buffer.from([0x01, 0x02, 0x03]));
      const buf = w.toBuffer();
      buf.writeInt32BE(buf.length - 4, 0);
      c.write(buf);
      const frame = (await c.nextFrame())!;
      assert.ok(frame, 'answered, not closed');
      const { correlationId, body } = decodeResponseFrame(ApiKey.ApiVersions, 0, frame);
      assert.equal(correlationId, 4242);
      assert.equal(body.errorCode, ErrorCode.UNSUPPORTED_VERSION);
      const av = body.apiKeys.find((k) => k.apiKey === ApiKey.ApiVersions);
      assert.ok(av, 'lists ApiVersions');
      assert.ok(av.maxVersion >= 3 && av.maxVersion < 127);
      assert.ok(body.apiKeys.length >= 10);
      // The connection stays usable: retry with a version the broker knows.
      c.write(
        encodeRequestFrame(ApiKey.ApiVersions, av.maxVersion, 4243, {
          clientSoftwareName: 'x',
          clientSoftwareVersion: '1',
        }),
      );
      const again = decodeResponseFrame(ApiKey.ApiVersions, av.maxVersion, (await c.nextFrame())!);
      assert.equal(again.correlationId, 4243);
      assert.equal(again.body.errorCode, 0);
    } finally {
      c.close();
    }
  });
});

describe('bad frames close only their own connection', () => {
  test('a frame larger than socket.request.max.bytes', async () => {
    const good = await WireClient.connect(broker.port);
    const bad = await WireClient.connect(broker.port);
    try {
      await assertWorks(good);
      const mark = broker.stderr.length;
      const frame = encodeRequestFrame(ApiKey.Metadata, 1, 1, {
        topics: [{ name: 'x'.repeat(MAX_REQUEST) }],
      });
      assert.ok(frame.length - 4 > MAX_REQUEST);
      bad.write(frame);
      await assertClosedByBroker(bad);
      await assertWorks(good);
      const lines = await newStderrLines(mark);
      assert.equal(lines.length, 1, `exactly one stderr line, got:\n${lines.join('\n')}`);
      assert.match(lines[0]!, /socket\.request\.max\.bytes/);
      // A frame of exactly the limit is still accepted on a fresh connection.
      const edge = await WireClient.connect(broker.port);
      try {
        const w = new Writer(MAX_REQUEST + 4);
        w.int32(MAX_REQUEST)
          .int16(ApiKey.ApiVersions)
          .int16(0)
          .int32(9)
          .nullableString('p'.repeat(MAX_REQUEST - 10));
        const b = w.toBuffer();
        assert.equal(b.length, MAX_REQUEST + 4);
        edge.write(b);
        const f = await edge.nextFrame();
        assert.ok(f, 'a frame of exactly socket.request.max.bytes is served');
        assert.equal(f.readInt32BE(0), 9);
      } finally {
        edge.close();
      }
    } finally {
      good.close();
      bad.close();
    }
  });

  const garbage: [string, () => Buffer][] = [
    [
      'random bytes with an unknown api key',
      () =>
        Buffer.concat([
          Buffer.from([0, 0, 0, 12, 0x7f, 0x7f, 0, 0]),
          Buffer.from('deadbeefcafe', 'hex'),
          Buffer.alloc(2),
        ]),
    ],
    ['a frame shorter than a request header', () => Buffer.from([0, 0, 0, 3, 1, 2, 3])],
    [
      'a Metadata v1 body claiming 1000 topics it does not carry',
      () => {
        const w = new Writer(64);
        w.int32(0).int16(ApiKey.Metadata).int16(1).int32(5).nullableString('g').int32(1000);
        const b = w.toBuffer();
        b.writeInt32BE(b.length - 4, 0);
        return b;
      },
    ],
    [
      'a known api at a version below the served range (Fetch v0)',
      () => {
        const w = new Writer(64);
        w.int32(0).int16(ApiKey.Fetch).int16(0).int32(6).nullableString('g').raw(Buffer.alloc(20));
        const b = w.toBuffer();
        b.writeInt32BE(b.length - 4, 0);
        return b;
      },
    ],
  ];
  for (const [name, make] of garbage) {
    test(`garbage: ${name}`, async () => {
      const good = await WireClient.connect(broker.port);
      const bad = await WireClient.connect(broker.port);
      try {
        await assertWorks(good);
        const mark = broker.stderr.length;
        bad.write(make());
        await assertClosedByBroker(bad);
        await assertWorks(good);
        const lines = await newStderrLines(mark);
        assert.equal(lines.length, 1, `exactly one stderr line, got:\n${lines.join('\n')}`);
        assert.match(lines[0]!, /closing connection/);
        assert.ok(broker.running, 'the broker is still running');
      } finally {
        good.close();
        bad.close();
      }
    });
  }
});

describe('ordering', () => {
  test('50 pipelined requests are answered in request order', async () => {
    const topic = 'pipeline';
    await createTopic(broker.port, topic, 1);
    const c = await WireClient.connect(broker.port);
    try {
      const kinds: ('slow' | 'fast' | 'meta')[] = [];
      const bufs: Buffer[] = [];
      for (let i = 0; i < 50; i++) {
        const cid = 1000 + i;
        if (i % 10 === 0) {
          // Long poll on an empty partition: finishes ~150 ms later than everything after it.
          kinds.push('slow');
          bufs.push(
            encodeRequestFrame(ApiKey.Fetch, 12, cid, {
              replicaId: -1,
              maxWaitMs: 150,
              minBytes: 1,
              maxBytes: 1 << 20,
              sessionId: 0,
              sessionEpoch: -1,
              topics: [
                {
                  topic,
                  partitions: [
                    {
                      partition: 0,
                      fetchOffset: 0,
                      partitionMaxBytes: 1 << 20,
                      currentLeaderEpoch: -1,
                      lastFetchedEpoch: -1,
                      logStartOffset: -1,
                    },
                  ],
                },
              ],
              forgottenTopicsData: [],
              rackId: '',
            }),
          );
        } else if (i % 2 === 0) {
          kinds.push('meta');
          bufs.push(
            encodeRequestFrame(ApiKey.Metadata, 12, cid, {
              topics: [{ name: topic }],
              allowAutoTopicCreation: false,
            }),
          );
        } else {
          kinds.push('fast');
          bufs.push(
            encodeRequestFrame(ApiKey.ApiVersions, 3, cid, {
              clientSoftwareName: 'p',
              clientSoftwareVersion: '1',
            }),
          );
        }
      }
      c.write(Buffer.concat(bufs));
      const seen: number[] = [];
      for (let i = 0; i < 50; i++) {
        const f = await c.nextFrame();
        assert.ok(f, `response ${i} arrived`);
        const cid = f.readInt32BE(0);
        seen.push(cid);
        const kind = kinds[cid - 1000];
        const api = kind === 'slow' ? ApiKey.Fetch : kind === 'meta' ? ApiKey.Metadata : ApiKey.ApiVersions;
        const version = kind === 'slow' ? 12 : kind === 'meta' ? 12 : 3;
        const { body } = decodeResponseFrame(api, version, f);
        assert.equal((body as { errorCode?: number }).errorCode ?? 0, 0);
      }
      assert.deepEqual(
        seen,
        Array.from({ length: 50 }, (_, i) => 1000 + i),
      );
    } finally {
      c.close();
    }
  });

  test('Produce acks=0 sends no response, and the next request is answered', async () => {
    const topic = 'acks0';
    await createTopic(broker.port, topic, 1);
    const c = await WireClient.connect(broker.port);
    try {
      const body = await produceBody(
        topic,
        0,
        [{ key: Buffer.from('k'), value: Buffer.from('fire-and-forget') }],
        0,
      );
      c.write(encodeRequestFrame(ApiKey.Produce, PRODUCE_VERSION, 500, body));
      c.write(encodeRequestFrame(ApiKey.ApiVersions, 0, 501, {}));
      const f = await c.nextFrame();
      assert.ok(f);
      assert.equal(f.readInt32BE(0), 501, 'the first response is the ApiVersions one');
      await sleep(100);
      assert.equal(c.pendingFrames, 0, 'nothing else arrives');
      // The record was written all the same.
      assert.equal(await listOffset(broker.port, topic, 0, -1), 1);
      // Several acks=0 requests between answered ones keep ordering intact.
      const frames: Buffer[] = [];
      for (let i = 0; i < 5; i++) {
        frames.push(encodeRequestFrame(ApiKey.Produce, PRODUCE_VERSION, 600 + 2 * i, body));
        frames.push(encodeRequestFrame(ApiKey.ApiVersions, 0, 601 + 2 * i, {}));
      }
      c.write(Buffer.concat(frames));
      for (let i = 0; i < 5; i++) assert.equal((await c.nextFrame())!.readInt32BE(0), 601 + 2 * i);
      assert.equal(await listOffset(broker.port, topic, 0, -1), 6);
    } finally {
      c.close();
    }
  });
});
