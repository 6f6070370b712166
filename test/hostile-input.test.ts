/**
 * Goal: bad or abusive clients cannot take the broker down or starve other clients (issue 7,
 * "Hostile input"), against a real broker process with the limits set by their Kafka names.
 * Method: raw sockets and hand-built frames (test/helpers/wire-client.ts), hostile batches from
 * test/hostile/bombs.ts; the broker's RSS is read from /proc/<pid>/status.
 *
 * (a) slowloris: one byte a second neither blocks other clients nor escapes the frame limit;
 * (b) 10,000 idle connections: the broker still serves, RSS stays bounded; max.connections and
 *     max.connections.per.ip refuse connections beyond them (second broker, small limits);
 * (c) frames over socket.request.max.bytes (and negative sizes) close the connection;
 * (d) array counts of 2^31-1, millions of tagged fields, record counts larger than the bytes
 *     present: an error or a closed connection, broker alive;
 * (e) gzip/zstd/lz4/snappy bombs (> 1 GiB decompressed): stored on a plain topic (the produce path
 *     does not decompress), then ListOffsets by timestamp (which decodes the batch) answers with
 *     an error; refused on a compacted topic (the produce path decodes): CORRUPT_MESSAGE; RSS
 *     bounded throughout;
 * (f) a batch over message.max.bytes: MESSAGE_TOO_LARGE;
 * (g) pipelining 1 MiB produce requests on one connection (queued.max.request.bytes=4 MiB) does
 *     not grow the broker's memory with the bytes sent.
 */

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ErrorCode, errorName } from '../src/protocol/errors.js';
import { ApiKey } from '../src/protocol/generated/index.js';
import { Writer } from '../src/protocol/primitives.js';
import { Compression } from '../src/protocol/records/batch-header.js';
import { BrokerProcess } from './helpers/broker-process.js';
import { createTopic, listOffsetFull } from './helpers/read-partition.js';
import { WireClient, encodeRequestFrame } from './helpers/wire-client.js';
import { GIB, gzipBomb, lz4Bomb, plainRecord, rawBatch, snappyBomb, zstdBomb } from './hostile/bombs.js';

const MAX_REQUEST = 16 << 20;
const QUEUED_MAX = Number(process.env.HOSTILE_QUEUED_MAX ?? 4 << 20);
const IDLE_CONNECTIONS = 10_000;
const MiB = 1 << 20;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

let broker: BrokerProcess;

function pidOf(b: BrokerProcess): number {
  const child = (b as unknown as { child: ChildProcess | null }).child;
  assert.ok(child?.pid, 'broker process has a pid');
  return child.pid;
}

/** Resident set size of the broker process, in bytes. */
function rssOf(b: BrokerProcess): number {
  const status = readFileSync(`/proc/${pidOf(b)}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  assert.ok(m, 'VmRSS in /proc/<pid>/status');
  return Number(m[1]) * 1024;
}

const mb = (n: number) => `${(n / MiB).toFixed(0)} MiB`;

async function assertServes(port = broker.port): Promise<number> {
  const started = performance.now();
  const c = await WireClient.connect(port);
  try {
    const res = await c.request(ApiKey.ApiVersions, 0, {});
    assert.equal(res.errorCode, 0);
    const meta = await c.request(ApiKey.Metadata, 1, { topics: null });
    assert.ok(meta.brokers.length === 1);
  } finally {
    c.close();
  }
  assert.ok(broker.running, 'broker still running');
  return performance.now() - started;
}

/** Resolves true if the broker closes `c` (within 5 s) without answering. */
async function closedByBroker(c: WireClient, timeoutMs = 5000): Promise<boolean> {
  const frame = await Promise.race([
    c.nextFrame(timeoutMs).catch(() => 'timeout'),
    sleep(timeoutMs).then(() => 'timeout'),
  ]);
  return frame === null && c.closed;
}

/** A request frame: header v1 (or v2 with empty tags) + raw body bytes. */
function rawFrame(
  apiKey: number,
  version: number,
  body: Buffer,
  headerV2 = false,
  headerTags?: Buffer,
): Buffer {
  const w = new Writer(64 + body.length);
  w.int32(0);
  w.int16(apiKey);
  w.int16(version);
  w.int32(99);
  w.int16(4);
  w.raw(Buffer.from('evil'));
  if (headerV2) w.raw(headerTags ?? Buffer.from([0]));
  w.raw(body);
  const buf = w.toBuffer();
  buf.writeInt32BE(buf.length - 4, 0);
  return buf;
}

function uvarint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Buffer.from(out);
}

async function produceRaw(
  c: WireClient,
  topic: string,
  batch: Buffer,
): Promise<{ errorCode: number; errorMessage: string | null | undefined; baseOffset: number }> {
  const res = await c.request(ApiKey.Produce, 9, {
    transactionalId: null,
    acks: -1,
    timeoutMs: 10_000,
    topicData: [{ name: topic, partitionData: [{ index: 0, records: batch }] }],
  });
  const p = res.responses[0]!.partitionResponses[0]!;
  return { errorCode: p.errorCode, errorMessage: p.errorMessage, baseOffset: p.baseOffset };
}

before(async () => {
  broker = await BrokerProcess.start({
    set: [
      `socket.request.max.bytes=${MAX_REQUEST}`,
      `queued.max.request.bytes=${QUEUED_MAX}`,
      `max.connections=${IDLE_CONNECTIONS + 200}`,
      `max.connections.per.ip=${IDLE_CONNECTIONS + 100}`,
      'group.initial.rebalance.delay.ms=0',
    ],
  });
});
after(async () => {
  await broker?.destroy();
});

describe('hostile input', { concurrency: false }, () => {
  test('(a) slowloris: one byte a second does not block others; the frame limit still applies', async () => {
    // A frame within the limit, trickled: the broker just waits for it.
    const slow = await WireClient.connect(broker.port);
    const frame = encodeRequestFrame(ApiKey.ApiVersions, 0, 7, {});
    // A size prefix over the limit, trickled: closed once the 4th byte arrives.
    const over = await WireClient.connect(broker.port);
    const overPrefix = Buffer.alloc(4);
    overPrefix.writeInt32BE(MAX_REQUEST + 1, 0);
    let slowest = 0;
    for (let i = 0; i < 5; i++) {
      slow.write(frame.subarray(i, i + 1));
      if (i < 4) over.write(overPrefix.subarray(i, i + 1));
      // Meanwhile a normal client is served at once.
      slowest = Math.max(slowest, await assertServes());
      await sleep(1000);
    }
    assert.ok(slowest < 1000, `normal requests took up to ${slowest.toFixed(0)} ms during the slowloris`);
    assert.ok(await closedByBroker(over), 'an oversized frame announced byte by byte closes the connection');
    assert.equal(slow.closed, false, 'a slow but legal frame is not cut');
    // The rest of the slow frame arrives: it is answered.
    slow.write(frame.subarray(5));
    const res = await slow.nextFrame();
    assert.ok(res && res.readInt32BE(0) === 7, 'the trickled request is answered');
    slow.close();
  });

  test(`(b) ${IDLE_CONNECTIONS} idle connections: still serving, RSS bounded`, async () => {
    const rssBefore = rssOf(broker);
    const sockets: net.Socket[] = [];
    const open = () =>
      new Promise<net.Socket>((res, rej) => {
        const s = net.connect(broker.port, '127.0.0.1');
        s.once('connect', () => res(s));
        s.once('error', rej);
      });
    try {
      const started = performance.now();
      for (let i = 0; i < IDLE_CONNECTIONS; i += 250) {
        sockets.push(
          ...(await Promise.all(Array.from({ length: Math.min(250, IDLE_CONNECTIONS - i) }, open))),
        );
      }
      const openMs = performance.now() - started;
      for (const s of sockets) s.on('error', () => {});
      await sleep(500);
      const closed = sockets.filter((s) => s.destroyed || s.readableEnded).length;
      assert.equal(closed, 0, 'no idle connection was refused or closed');
      const ms = await assertServes();
      const rssAfter = rssOf(broker);
      console.log(
        `# ${IDLE_CONNECTIONS} idle connections opened in ${openMs.toFixed(0)} ms; broker RSS ${mb(rssBefore)} -> ${mb(rssAfter)}; a normal client served in ${ms.toFixed(0)} ms`,
      );
      assert.ok(ms < 2000, `served in ${ms.toFixed(0)} ms`);
      assert.ok(rssAfter - rssBefore < 256 * MiB, `RSS grew by ${mb(rssAfter - rssBefore)}`);
    } finally {
      for (const s of sockets) s.destroy();
    }
    await sleep(500);
    await assertServes();
  });

  test('(b) max.connections and max.connections.per.ip refuse connections beyond the limit', async () => {
    const small = await BrokerProcess.start({ set: ['max.connections=8', 'max.connections.per.ip=5'] });
    const raw = (localAddress: string) =>
      new Promise<net.Socket>((res, rej) => {
        const s = net.connect({ port: small.port, host: '127.0.0.1', localAddress });
        s.once('connect', () => res(s));
        s.once('error', rej);
      });
    /** True if the broker answers an ApiVersions request on `s`, false if it closes it. */
    const answers = (s: net.Socket) =>
      new Promise<boolean>((res) => {
        const t = setTimeout(() => res(false), 5000);
        s.once('data', () => {
          clearTimeout(t);
          res(true);
        });
        s.once('close', () => {
          clearTimeout(t);
          res(false);
        });
        s.on('error', () => {});
        s.write(encodeRequestFrame(ApiKey.ApiVersions, 0, 1, {}));
      });
    const sockets: net.Socket[] = [];
    try {
      // Five from 127.0.0.1 are fine, the sixth is refused (max.connections.per.ip=5).
      for (let i = 0; i < 5; i++) sockets.push(await raw('127.0.0.1'));
      for (const s of sockets) assert.equal(await answers(s), true);
      const sixth = await raw('127.0.0.1');
      assert.equal(await answers(sixth), false, 'the 6th connection from one address is refused');
      // Three more from 127.0.0.2 reach max.connections=8; a ninth from 127.0.0.3 is refused.
      for (let i = 0; i < 3; i++) sockets.push(await raw('127.0.0.2'));
      for (const s of sockets.slice(5)) assert.equal(await answers(s), true);
      const ninth = await raw('127.0.0.3');
      assert.equal(await answers(ninth), false, 'the 9th connection is refused (max.connections=8)');
      // Closing one frees a slot.
      sockets.shift()!.destroy();
      await sleep(200);
      const again = await raw('127.0.0.1');
      sockets.push(again);
      assert.equal(await answers(again), true, 'a slot freed by a close is usable again');
      assert.ok(small.running);
      assert.match(small.stderr, /max\.connections/);
    } finally {
      for (const s of sockets) s.destroy();
      await small.destroy();
    }
  });

  test('(c) frames over socket.request.max.bytes and negative sizes close the connection', async () => {
    for (const size of [MAX_REQUEST + 1, 0x7fffffff, -1, -0x80000000]) {
      const c = await WireClient.connect(broker.port);
      const prefix = Buffer.alloc(4);
      prefix.writeInt32BE(size, 0);
      c.write(Buffer.concat([prefix, Buffer.alloc(1024)]));
      assert.ok(await closedByBroker(c), `size ${size} closes the connection`);
    }
    // A real frame of limit + 1 bytes (the broker must not buffer it first).
    const c = await WireClient.connect(broker.port);
    const big = Buffer.alloc(4 + MAX_REQUEST + 1);
    big.writeInt32BE(MAX_REQUEST + 1, 0);
    c.socket.write(big);
    assert.ok(await closedByBroker(c));
    await assertServes();
  });

  test('(d) array counts of 2^31-1 and millions of tagged fields: closed, broker alive', async () => {
    const i32 = (n: number) => {
      const b = Buffer.alloc(4);
      b.writeInt32BE(n, 0);
      return b;
    };
    const i16 = (n: number) => {
      const b = Buffer.alloc(2);
      b.writeInt16BE(n, 0);
      return b;
    };
    const cases: Array<[string, Buffer]> = [
      // Produce v3: transactionalId null, acks, timeout, topicData count 2^31-1, nothing more.
      [
        'Produce v3 topic count 2^31-1',
        rawFrame(ApiKey.Produce, 3, Buffer.concat([i16(-1), i16(-1), i32(1000), i32(0x7fffffff)])),
      ],
      // Produce v9 (flexible): compact array count 2^31-1 (uvarint N+1).
      [
        'Produce v9 compact topic count 2^31-1',
        rawFrame(
          ApiKey.Produce,
          9,
          Buffer.concat([Buffer.from([0]), i16(-1), i32(1000), uvarint(0x80000000)]),
          true,
        ),
      ],
      ['Metadata v1 topic count 2^31-1', rawFrame(ApiKey.Metadata, 1, i32(0x7fffffff))],
      // Produce v3, one topic whose partition count is 2^31-1.
      [
        'Produce v3 partition count 2^31-1',
        rawFrame(
          ApiKey.Produce,
          3,
          Buffer.concat([i16(-1), i16(-1), i32(1000), i32(1), i16(1), Buffer.from('t'), i32(0x7fffffff)]),
        ),
      ],
      // Request header v2 announcing 5,000,000 tagged fields and carrying none.
      [
        'header with 5,000,000 tagged fields announced',
        rawFrame(ApiKey.Metadata, 12, Buffer.alloc(8), true, uvarint(5_000_000)),
      ],
    ];
    for (const [name, frame] of cases) {
      const c = await WireClient.connect(broker.port);
      c.write(frame);
      assert.ok(await closedByBroker(c), `${name}: the connection is closed`);
    }
    await assertServes();
  });

  test('(d) record counts larger than the bytes present: refused with an error', async () => {
    const c = await WireClient.connect(broker.port);
    try {
      await createTopic(broker.port, 'lying-count', 1, {}, c);
      await createTopic(broker.port, 'lying-count-compact', 1, { 'cleanup.policy': 'compact' }, c);
      const now = Date.now();
      const oneRecord = plainRecord('k', 'v');
      for (const [recordsCount, lastOffsetDelta] of [
        [0x7fffffff, 0x7ffffffe],
        [0x7fffffff, 0],
        [1_000_000, 999_999],
      ] as const) {
        for (const topic of ['lying-count', 'lying-count-compact']) {
          const r = await produceRaw(
            c,
            topic,
            rawBatch({ section: oneRecord, recordsCount, lastOffsetDelta, timestampMs: now }),
          );
          assert.ok(
            r.errorCode === ErrorCode.CORRUPT_MESSAGE || r.errorCode === ErrorCode.INVALID_RECORD,
            `${topic}: recordsCount ${recordsCount} over one record's bytes: got ${errorName(r.errorCode)} ${r.errorMessage ?? ''}`,
          );
        }
      }
      // Nothing was written.
      const end = await listOffsetFull(broker.port, 'lying-count', 0, -1, c);
      assert.equal(end.offset, 0);
    } finally {
      c.close();
    }
    await assertServes();
  });

  const bombs: Array<[string, Compression, () => Buffer]> = [
    ['gzip', Compression.Gzip, () => gzipBomb()],
    ['zstd (declared size)', Compression.Zstd, () => zstdBomb()],
    ['zstd (no declared size)', Compression.Zstd, () => zstdBomb(GIB + (128 << 10), false)],
    ['lz4', Compression.Lz4, () => lz4Bomb()],
    ['snappy (xerial)', Compression.Snappy, () => snappyBomb()],
    ['snappy (raw block)', Compression.Snappy, () => snappyBomb(2 * GIB, false)],
  ];

  test('(e) compression bombs: ListOffsets by timestamp errors, compacted topic refuses, RSS bounded', async () => {
    const c = await WireClient.connect(broker.port);
    const rssBefore = rssOf(broker);
    let rssMax = rssBefore;
    try {
      for (const [name, codec, make] of bombs) {
        const topic = `bomb-${name.replace(/[^a-z0-9]+/g, '-')}`;
        const section = make();
        const now = Date.now();
        const batch = rawBatch({ section, compression: codec, recordsCount: 1000, timestampMs: now });
        await createTopic(broker.port, topic, 1, { 'max.message.bytes': String(8 * MiB) }, c);
        // A plain topic stores the batch as sent: the produce path never decompresses.
        const stored = await produceRaw(c, topic, batch);
        assert.equal(stored.errorCode, 0, `${name}: stored (${errorName(stored.errorCode)})`);
        // ListOffsets by timestamp decodes the batch to find the exact record: an error, not a crash.
        const lo = await WireClient.connect(broker.port);
        try {
          const r = await lo.request(ApiKey.ListOffsets, 7, {
            replicaId: -1,
            isolationLevel: 0,
            topics: [
              {
                name: topic,
                partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: now - 1000 }],
              },
            ],
          });
          const p = r.topics[0]!.partitions[0]!;
          assert.notEqual(
            p.errorCode,
            0,
            `${name}: ListOffsets by timestamp on a bomb answers with an error`,
          );
        } catch (err) {
          throw new Error(`${name}: ListOffsets by timestamp on a bomb: ${(err as Error).message}`);
        } finally {
          lo.close();
        }
        rssMax = Math.max(rssMax, rssOf(broker));
        // A compacted topic decodes on produce: refused.
        const compacted = `${topic}-compact`;
        await createTopic(
          broker.port,
          compacted,
          1,
          { 'cleanup.policy': 'compact', 'max.message.bytes': String(8 * MiB) },
          c,
        );
        const refused = await produceRaw(c, compacted, batch);
        assert.equal(
          refused.errorCode,
          ErrorCode.CORRUPT_MESSAGE,
          `${name}: compacted topic refuses (${errorName(refused.errorCode)})`,
        );
        rssMax = Math.max(rssMax, rssOf(broker));
        assert.ok(broker.running, `${name}: broker alive`);
      }
    } finally {
      c.close();
    }
    console.log(`# compression bombs (> 1 GiB each): broker RSS ${mb(rssBefore)}, max ${mb(rssMax)}`);
    assert.ok(rssMax - rssBefore < 512 * MiB, `RSS grew by ${mb(rssMax - rssBefore)}`);
    await assertServes();
  });

  test('(f) a batch over message.max.bytes gets MESSAGE_TOO_LARGE', async () => {
    const c = await WireClient.connect(broker.port);
    try {
      await createTopic(broker.port, 'too-large', 1, {}, c);
      const records = Buffer.concat(
        Array.from({ length: 3 }, (_, i) => plainRecord(null, 'x'.repeat(400_000), i)),
      );
      const r = await produceRaw(
        c,
        'too-large',
        rawBatch({ section: records, recordsCount: 3, timestampMs: Date.now() }),
      );
      assert.equal(r.errorCode, ErrorCode.MESSAGE_TOO_LARGE, errorName(r.errorCode));
      const ok = await produceRaw(
        c,
        'too-large',
        rawBatch({ section: plainRecord(null, 'small'), recordsCount: 1, timestampMs: Date.now() }),
      );
      assert.equal(ok.errorCode, 0);
    } finally {
      c.close();
    }
  });

  test('(g) queued.max.request.bytes: pipelined large produce requests do not grow memory unboundedly', async () => {
    const c = await WireClient.connect(broker.port);
    const N = 300;
    try {
      await createTopic(
        broker.port,
        'pipelined',
        1,
        { 'max.message.bytes': String(2 * MiB), 'retention.bytes': String(64 * MiB) },
        c,
      );
      const value = 'y'.repeat(MiB - 200);
      const frames: Buffer[] = [];
      for (let i = 0; i < 4; i++) {
        const batch = rawBatch({
          section: plainRecord(null, value),
          recordsCount: 1,
          timestampMs: Date.now(),
        });
        frames.push(
          encodeRequestFrame(ApiKey.Produce, 9, 1000 + i, {
            transactionalId: null,
            acks: -1,
            timeoutMs: 30_000,
            topicData: [{ name: 'pipelined', partitionData: [{ index: 0, records: batch }] }],
          }),
        );
      }
      const rssBefore = rssOf(broker);
      let rssMax = rssBefore;
      const sampler = setInterval(() => {
        rssMax = Math.max(rssMax, rssOf(broker));
      }, 20);
      // Write everything without waiting: ~300 MiB pushed as fast as the socket takes it.
      const started = performance.now();
      let written = 0;
      await new Promise<void>((res) => {
        const pump = () => {
          while (written < N) {
            const ok = c.socket.write(frames[written % frames.length]!);
            written++;
            if (!ok) {
              c.socket.once('drain', pump);
              return;
            }
          }
          res();
        };
        pump();
      });
      let answered = 0;
      for (let i = 0; i < N; i++) {
        const f = await c.nextFrame(60_000);
        assert.ok(f, 'response');
        answered++;
      }
      clearInterval(sampler);
      const secs = (performance.now() - started) / 1000;
      console.log(
        `# ${N} pipelined 1 MiB produce requests (queued.max.request.bytes=${mb(QUEUED_MAX)}): ${answered} answered in ${secs.toFixed(1)} s; broker RSS ${mb(rssBefore)}, max ${mb(rssMax)}`,
      );
      assert.ok(
        rssMax - rssBefore < 96 * MiB,
        `RSS grew by ${mb(rssMax - rssBefore)} while ${N} MiB were pipelined`,
      );
    } finally {
      c.close();
    }
    await assertServes();
  });

  test('(d) 2,000,000 tagged fields in one request header: refused, broker alive, RSS bounded', async () => {
    // 2,000,000 real (empty) tagged fields in a request header: ~8 MiB on the wire. More than
    // TAGGED_FIELDS_MAX (4096) in one struct is refused before any is kept: the connection closes.
    const rssBefore = rssOf(broker);
    const tags: Buffer[] = [uvarint(2_000_000)];
    for (let t = 0; t < 2_000_000; t++) tags.push(uvarint(t), Buffer.from([0]));
    const c = await WireClient.connect(broker.port);
    // Metadata v12 body: topics null (compact 0), allowAutoTopicCreation, includeTopicAuthorizedOperations, tags.
    c.write(rawFrame(ApiKey.Metadata, 12, Buffer.from([0, 1, 0, 0]), true, Buffer.concat(tags)));
    const res = await Promise.race([c.nextFrame(15_000), sleep(15_000).then(() => 'timeout' as const)]);
    assert.notEqual(res, 'timeout');
    assert.equal(res, null, 'the connection is closed');
    c.close();
    const rssAfter = rssOf(broker);
    console.log(
      `# 2,000,000 tagged fields: ${res === null ? 'closed' : 'answered'}; RSS ${mb(rssBefore)} -> ${mb(rssAfter)}`,
    );
    assert.ok(rssAfter - rssBefore < 512 * MiB, `RSS grew by ${mb(rssAfter - rssBefore)}`);
    await assertServes();
  });
});
