/**
 * Startup time of `sluice start`: from spawning `node bin/sluice.js start` (fresh data dir) to the
 * first answered ApiVersions request on its port, probing every 2 ms. Median of N runs; the
 * broker's own "ready in X ms" figure (measured inside the process) is reported beside it.
 *
 *   node --import tsx scripts/bench/startup.ts [--runs 10]
 */

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SLUICE_HOME, freePort, median, sleep, stopPid } from './lib.js';

/** One ApiVersions v0 round trip; rejects when the port does not answer. */
function apiVersions(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const clientId = Buffer.from('bench');
    const frame = Buffer.alloc(4 + 10 + clientId.length);
    frame.writeInt32BE(10 + clientId.length, 0);
    frame.writeInt16BE(18, 4); // ApiVersions
    frame.writeInt16BE(0, 6); // v0
    frame.writeInt32BE(1, 8); // correlation id
    frame.writeInt16BE(clientId.length, 12);
    clientId.copy(frame, 14);
    let got = 0;
    let need = -1;
    const chunks: Buffer[] = [];
    sock.on('connect', () => sock.write(frame));
    sock.on('error', (e) => {
      sock.destroy();
      reject(e);
    });
    sock.on('close', () => reject(new Error('closed')));
    sock.on('data', (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (need < 0 && got >= 4) need = 4 + Buffer.concat(chunks).readInt32BE(0);
      if (need >= 0 && got >= need) {
        sock.destroy();
        const r = Buffer.concat(chunks);
        if (r.readInt16BE(8) === 0) resolve();
        else reject(new Error(`ApiVersions error ${r.readInt16BE(8)}`));
      }
    });
  });
}

export interface StartupSample {
  toApiVersionsMs: number;
  /** The broker's own figure from its "ready in X ms" line. */
  selfReportedMs: number;
}

export async function startupOnce(): Promise<StartupSample> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-startup-'));
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [
      join(SLUICE_HOME, 'bin', 'sluice.js'),
      'start',
      '--data-dir',
      join(dir, 'data'),
      '--listen',
      `127.0.0.1:${port}`,
      '--metrics-listen',
      '127.0.0.1:0',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  try {
    for (;;) {
      if (exited) throw new Error(`sluice exited before answering:\n${out}`);
      try {
        await apiVersions(port);
        break;
      } catch {
        await sleep(2);
      }
    }
    const toApiVersionsMs = performance.now() - t0;
    while (!/ready on .* in (\d+) ms/.test(out)) await sleep(5);
    const selfReportedMs = Number(/ready on .* in (\d+) ms/.exec(out)![1]);
    return { toApiVersionsMs, selfReportedMs };
  } finally {
    await stopPid(child.pid!, 10_000);
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function measureStartup(
  runs: number,
): Promise<{ samples: StartupSample[]; medianMs: number; medianSelfMs: number }> {
  const samples: StartupSample[] = [];
  for (let i = 0; i < runs; i++) samples.push(await startupOnce());
  return {
    samples,
    medianMs: median(samples.map((s) => s.toApiVersionsMs)),
    medianSelfMs: median(samples.map((s) => s.selfReportedMs)),
  };
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const i = process.argv.indexOf('--runs');
  const runs = i > 0 ? Number(process.argv[i + 1]) : 10;
  measureStartup(runs).then((r) => {
    for (const s of r.samples)
      console.log(
        `spawn → ApiVersions ${s.toApiVersionsMs.toFixed(0)} ms (self-reported ${s.selfReportedMs} ms)`,
      );
    console.log(`median of ${runs}: ${r.medianMs.toFixed(0)} ms (self-reported ${r.medianSelfMs} ms)`);
  });
}
