/**
 * Small helpers shared by the compatibility runner and the reference-broker script: free ports,
 * child processes with captured output, a raw ApiVersions probe (no client library needed), and
 * progress lines.
 */

import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import net from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const COMPAT_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_ROOT = resolve(COMPAT_DIR, '..');
export const CACHE_DIR = resolve(COMPAT_DIR, '.cache');

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const t0 = Date.now();
/** A progress line on stderr, prefixed with seconds since start. */
export function progress(msg: string): void {
  process.stderr.write(`[compat ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.unref();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => res(port));
    });
  });
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  timedOut: boolean;
}

/** Runs a command to completion, capturing output; kills its process group after timeoutMs. */
export function run(
  cmd: string,
  args: string[],
  opts: SpawnOptions & { timeoutMs?: number; input?: string } = {},
): Promise<RunResult> {
  const start = Date.now();
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, { ...opts, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.length > 4_000_000) stderr = stderr.slice(-2_000_000);
    });
    child.on('error', rej);
    const timer =
      opts.timeoutMs !== undefined
        ? setTimeout(() => {
            timedOut = true;
            killGroup(child, 'SIGKILL');
          }, opts.timeoutMs)
        : undefined;
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      res({ code, signal, stdout, stderr, ms: Date.now() - start, timedOut });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

/** Signals a child started with detached: true, and everything it started. */
export function killGroup(child: ChildProcess | number, sig: NodeJS.Signals): void {
  const pid = typeof child === 'number' ? child : child.pid;
  if (!pid) return;
  try {
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {}
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface ApiVersionRange {
  apiKey: number;
  minVersion: number;
  maxVersion: number;
}

/**
 * Sends ApiVersions v0 (header v1, client id "sluice-compat") and returns the advertised ranges.
 * v0 is answered by every Kafka broker, and its response is the plain array of key/min/max.
 */
export function apiVersions(host: string, port: number, timeoutMs = 3000): Promise<ApiVersionRange[]> {
  return new Promise((res, rej) => {
    const sock = net.connect({ host, port });
    const clientId = Buffer.from('sluice-compat');
    const body = Buffer.alloc(2 + 2 + 4 + 2 + clientId.length);
    body.writeInt16BE(18, 0); // ApiVersions
    body.writeInt16BE(0, 2);
    body.writeInt32BE(7, 4);
    body.writeInt16BE(clientId.length, 8);
    clientId.copy(body, 10);
    const frame = Buffer.alloc(4 + body.length);
    frame.writeInt32BE(body.length, 0);
    body.copy(frame, 4);
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      rej(new Error('ApiVersions timed out'));
    }, timeoutMs);
    sock.on('connect', () => sock.write(frame));
    sock.on('error', (e) => {
      clearTimeout(timer);
      rej(e);
    });
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length < 4) return;
      const size = buf.readInt32BE(0);
      if (buf.length < 4 + size) return;
      clearTimeout(timer);
      sock.destroy();
      const r = buf.subarray(4, 4 + size);
      const errorCode = r.readInt16BE(4);
      if (errorCode !== 0) return rej(new Error(`ApiVersions error code ${errorCode}`));
      const n = r.readInt32BE(6);
      const out: ApiVersionRange[] = [];
      for (let i = 0; i < n; i++) {
        const o = 10 + i * 6;
        out.push({
          apiKey: r.readInt16BE(o),
          minVersion: r.readInt16BE(o + 2),
          maxVersion: r.readInt16BE(o + 4),
        });
      }
      res(out);
    });
  });
}

/** Polls ApiVersions until the broker answers, or throws after timeoutMs (or when alive() turns false). */
export async function waitForApiVersions(
  host: string,
  port: number,
  timeoutMs: number,
  alive: () => boolean = () => true,
): Promise<ApiVersionRange[]> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    if (!alive()) throw new Error(`process exited before ${host}:${port} answered ApiVersions`);
    try {
      return await apiVersions(host, port, 2000);
    } catch (e) {
      last = e;
      await sleep(300);
    }
  }
  throw new Error(
    `${host}:${port} did not answer ApiVersions within ${timeoutMs} ms (${(last as Error)?.message})`,
  );
}
