/**
 * `node --import tsx scripts/bench/sluice-client.ts`: throughput/latency of Sluice through
 * Sluice's own client (the first benchmark; the comparison suite is scripts/bench/run.ts).
 *
 * Starts a broker process on a free loopback port with a fresh data dir, creates a topic,
 * produces N records of S bytes (default 1,000,000 × 1 KiB) with the chosen acks, then consumes
 * them all from the start. Prints records/s, MB/s, produce latency percentiles (from send() to
 * acknowledgement, per record) and the broker's peak RSS. A script, not a test: figures from a
 * shared 2-core machine are noisy — run it several times and quote the median.
 *
 * Options: --records N --size BYTES --partitions P --acks all|1|0 --batch-bytes B --linger-ms L
 *          --inflight N (records outstanding) --runs R
 */

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Admin } from '../../src/client/admin.js';
import { Consumer } from '../../src/client/consumer.js';
import { Producer } from '../../src/client/producer.js';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '1000000' },
    size: { type: 'string', default: '1024' },
    partitions: { type: 'string', default: '1' },
    acks: { type: 'string', default: 'all' },
    'batch-bytes': { type: 'string', default: '1048576' },
    'linger-ms': { type: 'string', default: '5' },
    inflight: { type: 'string', default: '20000' },
    runs: { type: 'string', default: '1' },
  },
});

const records = Number(values.records);
const size = Number(values.size);
const partitions = Number(values.partitions);
const acks = values.acks === 'all' ? -1 : (Number(values.acks) as 0 | 1);
const batchBytesMax = Number(values['batch-bytes']);
const lingerMs = Number(values['linger-ms']);
const inflightMax = Number(values.inflight);
const runs = Number(values.runs);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

interface BrokerProc {
  port: number;
  pid: number;
  stop(): Promise<void>;
  rssKb(): number;
}

async function startBroker(dataDir: string): Promise<BrokerProc> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      'bin/sluice.js',
      'start',
      '--data-dir',
      dataDir,
      '--listen',
      `127.0.0.1:${port}`,
      '--metrics-listen',
      '127.0.0.1:0',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`broker did not start:\n${out}`)), 10000);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes('Sluice ready on')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`broker exited with ${code}:\n${out}`)));
  });
  const pid = child.pid!;
  return {
    port,
    pid,
    rssKb() {
      // VmHWM is the peak resident set size of the process so far.
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return m ? Number(m[1]) : -1;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        child.removeAllListeners('exit');
        child.on('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length));
  return sorted[i]!;
}

interface RunResult {
  produceRps: number;
  produceMBps: number;
  p50: number;
  p99: number;
  p999: number;
  consumeRps: number;
  consumeMBps: number;
  rssMb: number;
}

async function runOnce(run: number): Promise<RunResult> {
  const dataDir = mkdtempSync(join(tmpdir(), 'sluice-bench-'));
  const broker = await startBroker(dataDir);
  const bootstrapServers = `127.0.0.1:${broker.port}`;
  try {
    const admin = new Admin({ bootstrapServers });
    await admin.connect();
    await admin.createTopic('bench', { partitions });
    await admin.close();

    const producer = new Producer({
      bootstrapServers,
      acks,
      lingerMs,
      batchBytesMax,
      idempotent: acks === -1,
    });
    await producer.connect();
    const value = Buffer.alloc(size, 0x61);
    const latencies = new Float64Array(records);
    let outstanding = 0;
    let sent = 0;
    let done = 0;
    let failed: unknown = null;
    const t0 = performance.now();
    let lastReport = t0;
    await new Promise<void>((resolve, reject) => {
      const pump = () => {
        while (outstanding < inflightMax && sent < records) {
          const i = sent++;
          outstanding++;
          const start = performance.now();
          producer.send('bench', [{ value }]).then(
            () => {
              latencies[i] = performance.now() - start;
              outstanding--;
              done++;
              if (done === records) resolve();
              else pump();
            },
            (err: unknown) => {
              failed = err;
              reject(err);
            },
          );
        }
        const now = performance.now();
        if (now - lastReport > 2000 && process.stderr.isTTY) {
          lastReport = now;
          process.stderr.write(`\r  run ${run}: produced ${done}/${records}`);
        }
      };
      pump();
    });
    if (failed) throw failed;
    const produceS = (performance.now() - t0) / 1000;
    await producer.close();
    latencies.sort();

    const consumer = new Consumer({ bootstrapServers, maxWaitMs: 100 });
    await consumer.assign(
      Array.from({ length: partitions }, (_, p) => ({
        topic: 'bench',
        partition: p,
        offset: 'earliest' as const,
      })),
    );
    let read = 0;
    const c0 = performance.now();
    while (read < records) {
      const batch = await consumer.poll();
      read += batch.length;
    }
    const consumeS = (performance.now() - c0) / 1000;
    await consumer.close();
    const mb = (records * size) / 1e6;
    return {
      produceRps: records / produceS,
      produceMBps: mb / produceS,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      p999: percentile(latencies, 99.9),
      consumeRps: records / consumeS,
      consumeMBps: mb / consumeS,
      rssMb: broker.rssKb() / 1024,
    };
  } finally {
    await broker.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  console.log(
    `sluice bench: ${records.toLocaleString()} records × ${size} B, ${partitions} partition(s), acks=${values.acks}, batch ${batchBytesMax} B, linger ${lingerMs} ms, ${inflightMax} in flight, ${runs} run(s)`,
  );
  const results: RunResult[] = [];
  for (let r = 1; r <= runs; r++) {
    const res = await runOnce(r);
    if (process.stderr.isTTY) process.stderr.write('\r');
    console.log(
      `run ${r}: produce ${Math.round(res.produceRps).toLocaleString()} rec/s (${res.produceMBps.toFixed(1)} MB/s), latency p50 ${res.p50.toFixed(1)} ms p99 ${res.p99.toFixed(1)} ms p99.9 ${res.p999.toFixed(1)} ms; consume ${Math.round(res.consumeRps).toLocaleString()} rec/s (${res.consumeMBps.toFixed(1)} MB/s); broker peak RSS ${res.rssMb.toFixed(0)} MiB`,
    );
    results.push(res);
  }
  if (runs > 1) {
    const m = (f: (r: RunResult) => number) => median(results.map(f));
    console.log(
      `median of ${runs}: produce ${Math.round(m((r) => r.produceRps)).toLocaleString()} rec/s (${m((r) => r.produceMBps).toFixed(1)} MB/s), p50 ${m((r) => r.p50).toFixed(1)} ms p99 ${m((r) => r.p99).toFixed(1)} ms p99.9 ${m((r) => r.p999).toFixed(1)} ms; consume ${Math.round(m((r) => r.consumeRps)).toLocaleString()} rec/s (${m((r) => r.consumeMBps).toFixed(1)} MB/s); peak RSS ${m((r) => r.rssMb).toFixed(0)} MiB`,
    );
  }
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
