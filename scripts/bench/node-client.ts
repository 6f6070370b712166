/**
 * The Node-client view: one load-generator process per measurement, printing one JSON line.
 *
 *   node --import tsx scripts/bench/node-client.ts --target kafka|nats|redis --client kafkajs|sluice
 *        --mode produce|consume|e2e --endpoint HOST:PORT --topic T [--partitions P] [--records N]
 *        [--size BYTES] [--acks 1|all] [--rate R --seconds S --warmup-seconds W] [--window W]
 *        [--nodelay]   (kafkajs: TCP_NODELAY on its sockets, as Kafka's Java client; default off)
 *
 * Clients: kafkajs 2.2.4 (or Sluice's own client, --client sluice) for Sluice and Kafka; nats 2.x
 * (JetStream) for NATS; node-redis 4.x for Redis Streams.
 *
 * produce: N records of S bytes (random capital letters, as ProducerPerformance) as fast as the
 *   window allows. kafkajs: each send() carries one 16 KiB batch per partition (the Java producer's
 *   batch.size) and at most 5 are outstanding (its max.in.flight.requests.per.connection).
 *   JetStream and Redis have no batches: `--window` publishes / XADDs are outstanding (node-redis
 *   pipelines the commands of one tick). Latency: from handing a record to the client to its ack.
 *   Partitions: Kafka partitions; one JetStream stream (subject T.p) or Redis key (T-p) each.
 * consume: reads the N records already in the log from the start, one partition; fetches are
 *   up to 1 MiB (Kafka's max.partition.fetch.bytes; COUNT/max_messages of 1 MiB for the others).
 * e2e: a consumer follows the log while a producer sends R records/s for S seconds, each stamped
 *   with its scheduled send time; latency is receipt minus scheduled time (so a stalled producer
 *   counts too), the first W seconds excluded. `extra` reports this process's own event-loop delay
 *   over the measured part (loopDelayP50Ms/P99Ms/MaxMs): the share of a latency percentile that
 *   the load generator, not the broker, is responsible for.
 */

import net from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { ToolResult } from './java-tools.js';
import { MiB, percentile } from './lib.js';

const { values: v } = parseArgs({
  options: {
    target: { type: 'string', default: 'kafka' },
    client: { type: 'string', default: 'kafkajs' },
    mode: { type: 'string', default: 'produce' },
    endpoint: { type: 'string' },
    topic: { type: 'string', default: 'bench' },
    partitions: { type: 'string', default: '1' },
    records: { type: 'string', default: '100000' },
    size: { type: 'string', default: '1024' },
    acks: { type: 'string', default: 'all' },
    rate: { type: 'string', default: '10000' },
    seconds: { type: 'string', default: '10' },
    'warmup-seconds': { type: 'string', default: '1' },
    window: { type: 'string', default: '500' },
    nodelay: { type: 'boolean', default: false },
  },
});

const endpoint = v.endpoint ?? '127.0.0.1:9092';
const topic = v.topic!;
const partitions = Number(v.partitions);
const records = Number(v.records);
const size = Number(v.size);
const acks = v.acks === 'all' ? -1 : 1;
const rate = Number(v.rate);
const seconds = Number(v.seconds);
const warmupSeconds = Number(v['warmup-seconds']);
const windowSize = Number(v.window);
const KAFKA_BATCH_BYTES = 16384;
const KAFKA_MAX_IN_FLIGHT = 5;
const FETCH_BYTES = MiB;

function payload(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = 65 + Math.floor(Math.random() * 26);
  return b;
}

/** A record for e2e: its scheduled send time (performance.now()) in the first 8 bytes. */
function stamped(template: Buffer, scheduledMs: number): Buffer {
  const b = Buffer.from(template);
  b.writeDoubleLE(scheduledMs, 0);
  return b;
}

function result(
  count: number,
  elapsedS: number,
  lat: Float64Array | null,
  extra: Record<string, number> = {},
): ToolResult {
  let p50 = Number.NaN;
  let p99 = Number.NaN;
  let p999 = Number.NaN;
  let avg = Number.NaN;
  let max = Number.NaN;
  if (lat && lat.length > 0) {
    lat.sort();
    p50 = percentile(lat, 50);
    p99 = percentile(lat, 99);
    p999 = percentile(lat, 99.9);
    max = lat[lat.length - 1]!;
    let s = 0;
    for (const x of lat) s += x;
    avg = s / lat.length;
  }
  const rps = count / elapsedS;
  return {
    ok: true,
    recordsPerSec: rps,
    mibPerSec: (rps * size) / MiB,
    p50Ms: p50,
    p99Ms: p99,
    p999Ms: p999,
    avgMs: avg,
    maxMs: max,
    extra,
    command: '',
    seconds: elapsedS,
  };
}

/**
 * Drives `records` records through `sendChunk` with at most `maxOutstanding` chunks in flight;
 * sendChunk(first, count) resolves when the chunk is acknowledged.
 */
async function pumpChunks(
  chunkRecords: number,
  maxOutstanding: number,
  sendChunk: (first: number, count: number) => Promise<void>,
): Promise<ToolResult> {
  const lat = new Float64Array(records);
  let next = 0;
  let done = 0;
  let outstanding = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const pump = () => {
      while (outstanding < maxOutstanding && next < records) {
        const first = next;
        const count = Math.min(chunkRecords, records - next);
        next += count;
        outstanding++;
        const start = performance.now();
        sendChunk(first, count).then(() => {
          const l = performance.now() - start;
          lat.fill(l, first, first + count);
          outstanding--;
          done += count;
          if (done === records) resolve();
          else pump();
        }, reject);
      }
    };
    pump();
  });
  return result(records, (performance.now() - t0) / 1000, lat);
}

/** Every millisecond, hands the records due at `rate` records/s to send(first, count, t0). */
async function paced(total: number, send: (first: number, count: number, t0: number) => void): Promise<void> {
  const t0 = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate)) - sent;
    // A stalled event loop makes many records due at once: send them in chunks of at most 256
    // (one chunk of 1 KiB records stays under the brokers' 1 MB max.message.bytes).
    for (let left = due; left > 0; ) {
      const n = Math.min(left, 256);
      send(sent, n, t0);
      sent += n;
      left -= n;
    }
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** This process's event-loop delay, sampled every 1 ms, from `start()` on. */
class LoopDelay {
  private readonly h = monitorEventLoopDelay({ resolution: 1 });
  start(): void {
    this.h.reset();
    this.h.enable();
  }
  stats(): Record<string, number> {
    this.h.disable();
    const ms = (ns: number) => Math.round(ns / 1e4) / 100;
    return {
      loopDelayP50Ms: ms(this.h.percentile(50)),
      loopDelayP99Ms: ms(this.h.percentile(99)),
      loopDelayMaxMs: ms(this.h.max),
    };
  }
}

class LatencyRecorder {
  readonly lat: Float64Array;
  n = 0;
  received = 0;
  constructor(
    readonly total: number,
    readonly skip: number,
  ) {
    this.lat = new Float64Array(total);
  }
  onValue(value: Buffer | null | undefined): void {
    if (!value || value.length < 8) return;
    const l = performance.now() - value.readDoubleLE(0);
    if (this.received++ >= this.skip) this.lat[this.n++] = l;
  }
  done(): boolean {
    return this.received >= this.total;
  }
}

async function waitUntil(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

// ---------------------------------------------------------------- kafkajs

async function kafkajsRun(): Promise<ToolResult> {
  const { Kafka, logLevel } = await import('kafkajs');
  // kafkajs leaves Nagle's algorithm on (Node's default); Kafka's Java client sets TCP_NODELAY.
  // --nodelay makes kafkajs do the same (see docs/benchmarks.md, 2026-12-07).
  const socketFactory = v.nodelay
    ? ({ host, port, onConnect }: { host: string; port: number; onConnect: () => void }) => {
        const socket = net.connect({ host, port }, onConnect);
        socket.setNoDelay(true);
        socket.setKeepAlive(true, 60_000);
        return socket;
      }
    : undefined;
  const kafka = new Kafka({
    clientId: 'sluice-bench',
    brokers: [endpoint],
    logLevel: logLevel.NOTHING,
    ...(socketFactory ? { socketFactory } : {}),
  });
  const value = payload(size);
  if (v.mode === 'produce') {
    const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: false });
    await producer.connect();
    const perBatch = Math.max(1, Math.floor(KAFKA_BATCH_BYTES / (size + 20)));
    const messages = (count: number, first: number) => {
      const out: { value: Buffer; partition: number }[] = [];
      for (let i = 0; i < count; i++)
        out.push({ value, partition: Math.floor((first + i) / perBatch) % partitions });
      return out;
    };
    const r = await pumpChunks(perBatch * partitions, KAFKA_MAX_IN_FLIGHT, async (first, count) => {
      await producer.send({ topic, acks, messages: messages(count, first) });
    });
    await producer.disconnect();
    return r;
  }
  if (v.mode === 'consume') {
    const consumer = kafka.consumer({
      groupId: `bench-${process.pid}-${Date.now()}`,
      maxBytesPerPartition: FETCH_BYTES,
      minBytes: 1,
      maxWaitTimeInMs: 500,
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    let count = 0;
    let first = 0;
    let last = 0;
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        if (count === 0) first = performance.now();
        count += batch.messages.length;
        last = performance.now();
      },
    });
    const t0 = performance.now();
    await waitUntil(() => count >= records, 600_000, 'records');
    await consumer.disconnect();
    return result(count, (last - first) / 1000, null, { joinMs: first - t0 });
  }
  // e2e
  const total = Math.round(rate * seconds);
  const rec = new LatencyRecorder(total, Math.round(rate * warmupSeconds));
  const consumer = kafka.consumer({ groupId: `bench-e2e-${process.pid}`, minBytes: 1, maxWaitTimeInMs: 500 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let joined = false;
  consumer.on(consumer.events.GROUP_JOIN, () => {
    joined = true;
  });
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) rec.onValue(m.value);
    },
  });
  await waitUntil(() => joined, 60_000, 'group join');
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: false });
  await producer.connect();
  const t0 = performance.now();
  const loop = new LoopDelay();
  setTimeout(() => loop.start(), warmupSeconds * 1000);
  let failed: unknown;
  await paced(total, (first, count, start) => {
    const messages = [];
    for (let i = 0; i < count; i++)
      messages.push({ value: stamped(value, start + ((first + i) * 1000) / rate) });
    producer.send({ topic, acks, messages }).catch((e: unknown) => {
      failed = e;
    });
  });
  await waitUntil(() => rec.done() || failed !== undefined, 120_000, 'e2e records');
  if (failed) throw failed;
  const elapsed = (performance.now() - t0) / 1000;
  const extra = loop.stats();
  await producer.disconnect();
  await consumer.disconnect();
  return result(rec.received, elapsed, rec.lat.subarray(0, rec.n), extra);
}

// ---------------------------------------------------------------- Sluice's own client

async function sluiceClientRun(): Promise<ToolResult> {
  const { Producer } = await import('../../src/client/producer.js');
  const { Consumer } = await import('../../src/client/consumer.js');
  const value = payload(size);
  if (v.mode === 'produce') {
    const producer = new Producer({ bootstrapServers: endpoint, acks, lingerMs: 5, idempotent: false });
    await producer.connect();
    let i = 0;
    const r = await pumpChunks(1, windowSize, async () => {
      await producer.send(topic, [{ value, partition: i++ % partitions }]);
    });
    await producer.close();
    return r;
  }
  if (v.mode === 'consume') {
    const consumer = new Consumer({
      bootstrapServers: endpoint,
      maxWaitMs: 500,
      partitionFetchBytesMax: FETCH_BYTES,
    });
    await consumer.assign([{ topic, partition: 0, offset: 'earliest' }]);
    let count = 0;
    const t0 = performance.now();
    while (count < records) count += (await consumer.poll()).length;
    const elapsed = (performance.now() - t0) / 1000;
    await consumer.close();
    return result(count, elapsed, null);
  }
  const total = Math.round(rate * seconds);
  const rec = new LatencyRecorder(total, Math.round(rate * warmupSeconds));
  const consumer = new Consumer({ bootstrapServers: endpoint, maxWaitMs: 500 });
  await consumer.assign([{ topic, partition: 0, offset: 'earliest' }]);
  const producer = new Producer({ bootstrapServers: endpoint, acks, lingerMs: 0, idempotent: false });
  await producer.connect();
  let stop = false;
  const loop = (async () => {
    while (!stop && !rec.done()) for (const m of await consumer.poll()) rec.onValue(m.value);
  })();
  const t0 = performance.now();
  let failed: unknown;
  await paced(total, (first, count, start) => {
    const batch = [];
    for (let i = 0; i < count; i++)
      batch.push({ value: stamped(value, start + ((first + i) * 1000) / rate) });
    producer.send(topic, batch).catch((e: unknown) => {
      failed = e;
    });
  });
  await waitUntil(() => rec.done() || failed !== undefined, 120_000, 'e2e records');
  stop = true;
  if (failed) throw failed;
  const elapsed = (performance.now() - t0) / 1000;
  await loop;
  await producer.close();
  await consumer.close();
  return result(rec.received, elapsed, rec.lat.subarray(0, rec.n));
}

// ---------------------------------------------------------------- NATS JetStream

async function natsRun(): Promise<ToolResult> {
  const { connect } = await import('nats');
  const nc = await connect({ servers: endpoint });
  const js = nc.jetstream();
  const value = payload(size);
  try {
    if (v.mode === 'produce') {
      const subjects = Array.from({ length: partitions }, (_, p) => `${topic}.${p}`);
      return await pumpChunks(1, windowSize, async (first) => {
        await js.publish(subjects[first % partitions]!, value);
      });
    }
    const batch = Math.max(1, Math.floor(FETCH_BYTES / size));
    if (v.mode === 'consume') {
      const c = await js.consumers.get(`${topic}-0`);
      const msgs = await c.consume({ max_messages: batch });
      let count = 0;
      const t0 = performance.now();
      for await (const _m of msgs) {
        if (++count >= records) break;
      }
      const elapsed = (performance.now() - t0) / 1000;
      await msgs.close();
      return result(count, elapsed, null);
    }
    const total = Math.round(rate * seconds);
    const rec = new LatencyRecorder(total, Math.round(rate * warmupSeconds));
    const c = await js.consumers.get(`${topic}-0`);
    const msgs = await c.consume({ max_messages: batch });
    const loop = (async () => {
      for await (const m of msgs) {
        rec.onValue(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength));
        if (rec.done()) break;
      }
    })();
    const t0 = performance.now();
    let failed: unknown;
    await paced(total, (first, count, start) => {
      for (let i = 0; i < count; i++) {
        js.publish(`${topic}.0`, stamped(value, start + ((first + i) * 1000) / rate)).catch((e: unknown) => {
          failed = e;
        });
      }
    });
    await waitUntil(() => rec.done() || failed !== undefined, 120_000, 'e2e records');
    if (failed) throw failed;
    const elapsed = (performance.now() - t0) / 1000;
    await loop;
    await msgs.close();
    return result(rec.received, elapsed, rec.lat.subarray(0, rec.n));
  } finally {
    await nc.drain();
  }
}

// ---------------------------------------------------------------- Redis Streams

async function redisRun(): Promise<ToolResult> {
  const { createClient, commandOptions } = await import('redis');
  const client = createClient({ url: `redis://${endpoint}` });
  client.on('error', () => {});
  await client.connect();
  const value = payload(size);
  const keys = Array.from({ length: partitions }, (_, p) => `${topic}-${p}`);
  try {
    if (v.mode === 'produce') {
      return await pumpChunks(1, windowSize, async (first) => {
        await client.xAdd(keys[first % partitions]!, '*', { v: value });
      });
    }
    const batch = Math.max(1, Math.floor(FETCH_BYTES / size));
    if (v.mode === 'consume') {
      let count = 0;
      let start = '-';
      const t0 = performance.now();
      while (count < records) {
        const got = await client.xRange(commandOptions({ returnBuffers: true }), keys[0]!, start, '+', {
          COUNT: batch,
        });
        if (got.length === 0) throw new Error(`stream ended after ${count} records`);
        count += got.length;
        start = `(${got[got.length - 1]!.id.toString()}`;
      }
      return result(count, (performance.now() - t0) / 1000, null);
    }
    const total = Math.round(rate * seconds);
    const rec = new LatencyRecorder(total, Math.round(rate * warmupSeconds));
    const reader = client.duplicate();
    reader.on('error', () => {});
    await reader.connect();
    const loop = (async () => {
      let id = '0-0';
      while (!rec.done()) {
        const res = await reader.xRead(
          commandOptions({ returnBuffers: true }),
          { key: keys[0]!, id },
          { COUNT: batch, BLOCK: 1000 },
        );
        if (!res) continue;
        for (const s of res) {
          for (const m of s.messages) rec.onValue(m.message.v as Buffer | undefined);
          const lastMsg = s.messages[s.messages.length - 1];
          if (lastMsg) id = lastMsg.id.toString();
        }
      }
    })();
    const t0 = performance.now();
    let failed: unknown;
    await paced(total, (first, count, start) => {
      for (let i = 0; i < count; i++) {
        client
          .xAdd(keys[0]!, '*', { v: stamped(value, start + ((first + i) * 1000) / rate) })
          .catch((e: unknown) => {
            failed = e;
          });
      }
    });
    await waitUntil(() => rec.done() || failed !== undefined, 120_000, 'e2e records');
    if (failed) throw failed;
    const elapsed = (performance.now() - t0) / 1000;
    await loop;
    await reader.quit();
    return result(rec.received, elapsed, rec.lat.subarray(0, rec.n));
  } finally {
    await client.quit();
  }
}

async function main(): Promise<void> {
  let r: ToolResult;
  if (v.target === 'nats') r = await natsRun();
  else if (v.target === 'redis') r = await redisRun();
  else if (v.client === 'sluice') r = await sluiceClientRun();
  else r = await kafkajsRun();
  process.stdout.write(`${JSON.stringify(r)}\n`);
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stdout.write(
    `${JSON.stringify({ ok: false, error: String((err as Error)?.stack ?? err).slice(0, 600) })}\n`,
  );
  process.exit(1);
});
