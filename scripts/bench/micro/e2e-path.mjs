// The produce-to-consumer path, in process: a Fetch long poll waits at the log end, a Produce of
// 10 x 1 KiB records (acks=all) arrives, and the time until the Fetch is answered is recorded;
// N times, through the broker's dispatcher (no sockets, no client). Prints that latency's p50/p99
// and the broker's CPU per produce+fetch pair (fdatasync's kernel time included).
//
//   npm run build && ROOT=dist N=3000 node scripts/bench/micro/e2e-path.mjs
import { loadavg } from 'node:os';
import { resolve } from 'node:path';

const root = resolve(process.env.ROOT ?? 'dist');
const N = Number(process.env.N ?? 3000);
const { startInProcessBroker } = await import(`${root}/broker/in-process.js`);
const { encodeRecordBatch } = await import(`${root}/protocol/records/record-batch.js`);
const { apiCodecs } = await import(`${root}/protocol/generated/index.js`);
const { encodeRequestHeader } = await import(`${root}/protocol/generated/request-header.js`);
const { Writer } = await import(`${root}/protocol/primitives.js`);

const b = await startInProcessBroker({});
await b.topics.create('t', 1);
const value = Buffer.alloc(1024, 65);
const batch = await encodeRecordBatch({ records: Array.from({ length: 10 }, () => ({ value })) });

function frame(key, version, body) {
  const codec = apiCodecs[key];
  const w = new Writer(256);
  const flexible = codec.flexibleMin >= 0 && version >= codec.flexibleMin;
  const header = { requestApiKey: key, requestApiVersion: version, correlationId: 1, clientId: 'x' };
  encodeRequestHeader(w, header, flexible ? 2 : 1);
  codec.encodeRequest(w, body, version);
  return w.toBuffer();
}
const fetchFrame = (offset) =>
  frame(1, 11, {
    replicaId: -1,
    maxWaitMs: 500,
    minBytes: 1,
    maxBytes: 50 << 20,
    isolationLevel: 0,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [
      {
        topic: 't',
        partitions: [
          {
            partition: 0,
            currentLeaderEpoch: -1,
            fetchOffset: offset,
            logStartOffset: -1,
            partitionMaxBytes: 1 << 20,
          },
        ],
      },
    ],
    forgottenTopicsData: [],
    rackId: '',
  });
const produceFrame = () =>
  frame(0, 9, {
    transactionalId: null,
    acks: -1,
    timeoutMs: 5000,
    topicData: [{ name: 't', partitionData: [{ index: 0, records: Buffer.from(batch) }] }],
  });

const conn = { id: 1, remoteAddress: '127.0.0.1', remotePort: 1 };
const lat = [];
let off = 0;
const c0 = process.cpuUsage();
for (let i = 0; i < N; i++) {
  const produce = produceFrame();
  const t = performance.now();
  const fetched = b.dispatcher.handleFrame(fetchFrame(off), conn); // waits at the end
  const acked = b.dispatcher.handleFrame(produce, conn);
  await fetched;
  lat.push(performance.now() - t);
  await acked;
  off += 10;
}
const c = process.cpuUsage(c0);
lat.sort((x, y) => x - y);
const us = (ms) => Math.round(ms * 1000);
console.log(
  JSON.stringify({
    fetchAnsweredP50us: us(lat[N >> 1]),
    fetchAnsweredP99us: us(lat[Math.floor(N * 0.99)]),
    cpuUsPerPair: Math.round((c.user + c.system) / N),
    load1: loadavg()[0],
  }),
);
await b.stop();
