/**
 * Physical limits of this machine, measured where the brokers keep their data (the temp dir):
 *
 * - sequential write with fdatasync: `dd if=/dev/zero of=F bs=1M count=1024 oflag=direct conv=fdatasync`;
 * - 4 KiB synced appends: `dd if=/dev/zero of=F bs=4k count=1000 oflag=dsync`, and a Node loop of
 *   write + fdatasync appending 4 KiB to a growing file (as a log does), with percentiles;
 * - loopback TCP: `iperf3` (if installed) and a Node socket pair (one process writes 64 KiB
 *   buffers, another reads and discards), each for a few seconds.
 */

import { spawn } from 'node:child_process';
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MiB, exec, freePort, percentile, sleep } from './lib.js';

export interface Limits {
  ddSeqMiBps: number;
  ddSeqCommand: string;
  dd4kDsyncAvgMs: number;
  dd4kCommand: string;
  sync4kP50Ms: number;
  sync4kP99Ms: number;
  sync4kPerSec: number;
  iperf3MiBps: number;
  nodeLoopbackMiBps: number;
}

function ddSeconds(stderr: string): number {
  // "1073741824 bytes (1.1 GB, 1.0 GiB) copied, 2.5 s, 429 MB/s"
  const m = /copied, ([\d.]+) s/.exec(stderr);
  return m ? Number(m[1]) : Number.NaN;
}

async function nodeLoopback(seconds: number): Promise<number> {
  const port = await freePort();
  const server = spawn(
    process.execPath,
    [
      '-e',
      `let n=0;require('net').createServer(s=>{s.on('data',d=>{n+=d.length});s.on('end',()=>{process.stdout.write(String(n));process.exit(0)})}).listen(${port},'127.0.0.1',()=>process.stdout.write('L'))`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  server.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  while (!out.startsWith('L')) await sleep(10);
  const sock = net.connect(port, '127.0.0.1');
  await new Promise<void>((r) => sock.once('connect', () => r()));
  const buf = Buffer.alloc(64 * 1024, 1);
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const pump = () => {
      while (performance.now() - t0 < seconds * 1000) {
        if (!sock.write(buf)) return void sock.once('drain', pump);
      }
      sock.end(() => resolve());
    };
    pump();
  });
  await new Promise<void>((r) => server.once('exit', () => r()));
  const elapsed = (performance.now() - t0) / 1000;
  return Number(out.slice(1)) / MiB / elapsed;
}

async function iperf3(seconds: number): Promise<number> {
  const which = await exec('sh', ['-c', 'command -v iperf3'], { timeoutMs: 5000 });
  if (which.code !== 0) return Number.NaN;
  const port = await freePort();
  const server = spawn('iperf3', ['-s', '-1', '-B', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  await sleep(500);
  const r = await exec('iperf3', ['-c', '127.0.0.1', '-p', String(port), '-t', String(seconds), '-J'], {
    timeoutMs: (seconds + 20) * 1000,
  });
  server.kill('SIGTERM');
  try {
    const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
    return j.end.sum_received.bits_per_second / 8 / MiB;
  } catch {
    return Number.NaN;
  }
}

export async function measureLimits(): Promise<Limits> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-limits-'));
  try {
    const f = join(dir, 'dd');
    const seqArgs = ['if=/dev/zero', `of=${f}`, 'bs=1M', 'count=1024', 'oflag=direct', 'conv=fdatasync'];
    const seq = await exec('dd', seqArgs, { timeoutMs: 300_000 });
    const ddSeqMiBps = 1024 / ddSeconds(seq.stderr);
    rmSync(f, { force: true });
    const k4Args = ['if=/dev/zero', `of=${f}`, 'bs=4k', 'count=1000', 'oflag=dsync'];
    const k4 = await exec('dd', k4Args, { timeoutMs: 300_000 });
    const dd4kDsyncAvgMs = ddSeconds(k4.stderr);
    rmSync(f, { force: true });

    // write + fdatasync appending 4 KiB at a time to a growing file
    const n = 1000;
    const lat = new Float64Array(n);
    const fd = openSync(f, 'w');
    const page = Buffer.alloc(4096, 7);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const s = performance.now();
      writeSync(fd, page, 0, page.length, i * 4096);
      fdatasyncSync(fd);
      lat[i] = performance.now() - s;
    }
    const total = (performance.now() - t0) / 1000;
    closeSync(fd);
    lat.sort();
    return {
      ddSeqMiBps,
      ddSeqCommand: `dd ${seqArgs.join(' ').replace(f, 'F')}`,
      dd4kDsyncAvgMs,
      dd4kCommand: `dd ${k4Args.join(' ').replace(f, 'F')}`,
      sync4kP50Ms: percentile(lat, 50),
      sync4kP99Ms: percentile(lat, 99),
      sync4kPerSec: n / total,
      iperf3MiBps: await iperf3(5),
      nodeLoopbackMiBps: await nodeLoopback(5),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
