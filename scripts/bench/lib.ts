/**
 * Helpers shared by the benchmark scripts: ports, child processes, /proc readings, statistics.
 */

import { type SpawnOptions, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(BENCH_DIR, '..', '..');
/**
 * Where the Sluice under test lives (its bin/sluice.js and dist/): this checkout, or a frozen
 * build elsewhere (SLUICE_BENCH_HOME), so that a rebuild of dist/ during a long run cannot mix
 * versions.
 */
export const SLUICE_HOME = resolve(process.env.SLUICE_BENCH_HOME ?? REPO_ROOT);

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const t0 = Date.now();
/** A progress line on stderr, prefixed with minutes:seconds since start. */
export function progress(msg: string): void {
  const s = Math.round((Date.now() - t0) / 1000);
  const stamp = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
  process.stderr.write(`[bench ${stamp.padStart(6)}] ${msg}\n`);
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

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  timedOut: boolean;
}

/**
 * Runs a command to completion in its own process group, capturing output (stderr keeps its
 * last 2 MB); kills the group after timeoutMs.
 */
export function exec(
  cmd: string,
  args: string[],
  opts: SpawnOptions & { timeoutMs?: number; onStderr?: (chunk: string) => void } = {},
): Promise<ExecResult> {
  const start = performance.now();
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.length > 4_000_000) stdout = stdout.slice(-2_000_000);
    });
    child.stderr?.on('data', (d: Buffer) => {
      const s = d.toString();
      opts.onStderr?.(s);
      stderr += s;
      if (stderr.length > 4_000_000) stderr = stderr.slice(-2_000_000);
    });
    child.on('error', rej);
    const timer =
      opts.timeoutMs !== undefined
        ? setTimeout(() => {
            timedOut = true;
            killGroup(child.pid, 'SIGKILL');
          }, opts.timeoutMs)
        : undefined;
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      res({ code, signal, stdout, stderr, ms: performance.now() - start, timedOut });
    });
  });
}

/** Signals a process group started with detached: true (falls back to the process alone). */
export function killGroup(pid: number | undefined, sig: NodeJS.Signals): void {
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

/** Waits for a process to exit: SIGTERM, then SIGKILL after graceMs. */
export async function stopPid(pid: number, graceMs = 30_000, group = false): Promise<void> {
  if (!isAlive(pid)) return;
  if (group) killGroup(pid, 'SIGTERM');
  else process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(50);
  if (isAlive(pid)) {
    if (group) killGroup(pid, 'SIGKILL');
    else process.kill(pid, 'SIGKILL');
  }
  while (isAlive(pid)) await sleep(20);
}

/** A field of /proc/PID/status in kB (VmHWM: peak resident set size; VmRSS: current). */
export function procStatusKb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** CPU time (user + system) of a process so far, in seconds, from /proc/PID/stat. */
export function procCpuSeconds(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // fields[11] = utime, fields[12] = stime (0-based after the comm field), in clock ticks.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** The 1-, 5- and 15-minute load averages. */
export function loadAverage(): [number, number, number] {
  const f = readFileSync('/proc/loadavg', 'utf8').split(' ');
  return [Number(f[0]), Number(f[1]), Number(f[2])];
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export const MiB = 1024 * 1024;
