// Fetch path, in process: fills a one-partition log with MIB MiB of 16 KiB batches (16 records of
// 1 KiB, as ProducerPerformance writes them), then reads it from offset 0 with 1 MiB fetches
// through the broker's dispatcher (no sockets), REPS times, and prints CPU ms per MiB served.
//
//   npm run build && ROOT=dist MIB=64 REPS=4 node scripts/bench/micro/fetch.mjs
//
// ROOT: the compiled Sluice to measure (a frozen build's dist/ for before/after comparisons).
import { resolve } from 'node:path';

const root = resolve(process.env.ROOT ?? 'dist');
const MIB = Number(process.env.MIB ?? 64);
const REPS = Number(process.env.REPS ?? 4);
const { startInProcessBroker } = await import(`${root}/broker/in-process.js`);
const { encodeRecordBatch } = await import(`${root}/protocol/records/record-batch.js`);
const { apiCodecs } = await import(`${root}/protocol/generated/index.js`);
const { encodeRequestHeader } = await import(`${root}/protocol/generated/request-header.js`);
const { Writer } = await import(`${root}/protocol/primitives.js`);
const { fetchReadBuffers } = await import(`${root}/storage/read-buffer-pool.js`);

const b = await startInProcessBroker({});
await b.topics.create('t', 1);
const p = b.topics.partition('t', 0);
const value = Buffer.alloc(1024, 65);
const batch = await encodeRecordBatch({ records: Array.from({ length: 16 }, () => ({ value })) });
for (let i = 0; i < MIB * 64; i++) await p.log.append(Buffer.from(batch));
const end = p.log.logEndOffset;

function frame(offset) {
  const w = new Writer(256);
  encodeRequestHeader(w, { requestApiKey: 1, requestApiVersion: 12, correlationId: 1, clientId: 'x' }, 2);
  apiCodecs[1].encodeRequest(
    w,
    {
      replicaId: -1,
      maxWaitMs: 0,
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
              lastFetchedEpoch: -1,
              logStartOffset: -1,
              partitionMaxBytes: 1 << 20,
            },
          ],
        },
      ],
      forgottenTopicsData: [],
      rackId: '',
    },
    12,
  );
  return w.toBuffer();
}

const conn = { id: 1, remoteAddress: '127.0.0.1', remotePort: 1 };
for (let rep = 0; rep < REPS; rep++) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let off = 0;
  let bytes = 0;
  while (off < end) {
    const out = await b.dispatcher.handleFrame(frame(off), conn);
    let recs = null;
    for (const part of out) if (part.length > 10000 && (!recs || part.length > recs.length)) recs = part;
    if (!recs) throw new Error(`no records at ${off}`);
    // The next offset: after the last batch in the response.
    let at = 0;
    while (at + 61 <= recs.length) {
      off = Number(recs.readBigInt64BE(at)) + recs.readInt32BE(at + 23) + 1;
      at += 12 + recs.readInt32BE(at + 8);
    }
    bytes += recs.length;
    // As the network layer does once the socket has the bytes.
    for (const part of out) if (fetchReadBuffers.isLeased(part)) fetchReadBuffers.release(part);
  }
  const c = process.cpuUsage(c0);
  const mib = bytes / 1048576;
  console.log(
    JSON.stringify({
      cpuMsPerMiB: Math.round((c.user + c.system) / mib) / 1000,
      userMsPerMiB: Math.round(c.user / mib) / 1000,
      sysMsPerMiB: Math.round(c.system / mib) / 1000,
      wallMs: Math.round(performance.now() - t0),
    }),
  );
}
console.log(JSON.stringify({ readBuffers: fetchReadBuffers.stats }));
await b.stop();
