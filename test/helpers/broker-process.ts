/**
 * Runs the built broker (`node bin/sluice.js start`) as a real child process for integration
 * tests: free 127.0.0.1 port, fresh mkdtemp data dir, waits for the "Sluice ready on" line
 * (10 s timeout; the error carries the process output), and offers stop (SIGTERM), kill
 * (SIGKILL) and restart (same data dir and port).
 *
 * ensureBuilt() compiles src to dist once when dist/cli/main.js is missing or older than any
 * file under src. Test files run in parallel (`npm test` uses --test-concurrency=2), so the build
 * is serialised with a lock directory; a type error elsewhere in src (someone else's work in
 * progress) still emits JavaScript, so it is reported as a warning, not a failure.
 */

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MAIN_JS = join(REPO_ROOT, 'dist', 'cli', 'main.js');
const BIN = join(REPO_ROOT, 'bin', 'sluice.js');
const READY_TIMEOUT_MS = 10_000;

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts'))
      newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

function isStale(): boolean {
  try {
    return statSync(MAIN_JS).mtimeMs < newestMtime(join(REPO_ROOT, 'src'));
  } catch {
    return true;
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Builds dist if it is missing or older than src. Safe to call from parallel test files. */
export async function ensureBuilt(): Promise<void> {
  if (!isStale()) return;
  const lock = join(tmpdir(), `sluice-build-lock-${Buffer.from(REPO_ROOT).toString('hex').slice(-32)}`);
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // Someone else is building; a lock older than 2 minutes is stale.
      try {
        if (Date.now() - statSync(lock).mtimeMs > 120_000) rmSync(lock, { recursive: true, force: true });
      } catch {}
      if (Date.now() > deadline) throw new Error(`timed out waiting for build lock ${lock}`);
      await sleep(200);
    }
  }
  try {
    if (!isStale()) return;
    const tsc = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    await new Promise<void>((res) => {
      execFile(
        process.execPath,
        [tsc, '-p', 'tsconfig.build.json'],
        { cwd: REPO_ROOT, maxBuffer: 16 << 20 },
        (err, stdout, stderr) => {
          if (err)
            console.warn(
              `[broker-process] tsc reported errors (JavaScript is still emitted):\n${stdout}${stderr}`,
            );
          res();
        },
      );
    });
    statSync(MAIN_JS); // throws if nothing was emitted
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** A port that was free a moment ago (listen on 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = net.createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => res(port));
    });
  });
}

export interface BrokerProcessOptions {
  /** Extra `--set KEY=VALUE` settings. */
  set?: string[];
  dataDir?: string;
  port?: number;
}

export class BrokerProcess {
  readonly host = '127.0.0.1';
  /** Everything the current process printed (stdout and stderr interleaved as received). */
  output = '';
  stdout = '';
  stderr = '';
  private child: ChildProcess | null = null;
  private exited: Promise<number | null> = Promise.resolve(null);

  private constructor(
    readonly dataDir: string,
    readonly port: number,
    readonly set: string[],
  ) {}

  static async start(opts: BrokerProcessOptions = {}): Promise<BrokerProcess> {
    await ensureBuilt();
    const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'sluice-it-'));
    const port = opts.port ?? (await freePort());
    const b = new BrokerProcess(dataDir, port, opts.set ?? []);
    await b.spawn();
    return b;
  }

  get bootstrap(): string {
    return `${this.host}:${this.port}`;
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  private async spawn(): Promise<void> {
    this.output = '';
    this.stdout = '';
    this.stderr = '';
    const args = [
      BIN,
      'start',
      '--data-dir',
      this.dataDir,
      '--listen',
      `${this.host}:${this.port}`,
      '--metrics-listen',
      '127.0.0.1:0',
    ];
    for (const s of this.set) args.push('--set', s);
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.exited = new Promise((res) => child.once('exit', (code) => res(code)));
    child.stdout!.setEncoding('utf8');
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (s: string) => {
      this.stderr += s;
      this.output += s;
    });
    await new Promise<void>((res, rej) => {
      const timer = setTimeout(() => {
        fail(
          new Error(
            `broker did not print its ready line within ${READY_TIMEOUT_MS} ms; output:\n${this.output}`,
          ),
        );
      }, READY_TIMEOUT_MS);
      const onOut = (s: string) => {
        this.stdout += s;
        this.output += s;
        if (/^Sluice ready on /m.test(this.stdout)) done();
      };
      const onExit = (code: number | null, sig: string | null) => {
        fail(
          new Error(
            `broker exited (code ${code}, signal ${sig}) before it was ready; output:\n${this.output}`,
          ),
        );
      };
      const cleanup = () => {
        clearTimeout(timer);
        child.off('exit', onExit);
      };
      const done = () => {
        cleanup();
        res();
      };
      const fail = (e: Error) => {
        cleanup();
        child.kill('SIGKILL');
        rej(e);
      };
      child.stdout!.on('data', onOut);
      child.once('exit', onExit);
    });
  }

  /** SIGTERM and wait for exit (SIGKILL after 10 s). Returns the exit code. */
  async stop(): Promise<number | null> {
    if (!this.running) return this.child?.exitCode ?? null;
    this.child!.kill('SIGTERM');
    const t = setTimeout(() => this.child?.kill('SIGKILL'), 10_000);
    try {
      return await this.exited;
    } finally {
      clearTimeout(t);
    }
  }

  /** SIGKILL (no shutdown code runs) and wait for exit. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child!.kill('SIGKILL');
    await this.exited;
  }

  /** Starts the broker again on the same data dir and port (stopping it first if running). */
  async restart(): Promise<void> {
    await this.stop();
    // The port was just released; retry briefly in case the OS has not let go yet.
    for (let attempt = 0; ; attempt++) {
      try {
        await this.spawn();
        return;
      } catch (e) {
        if (attempt >= 3 || !/address in use/i.test((e as Error).message)) throw e;
        await sleep(250);
      }
    }
  }

  /** Stops the broker and removes its data dir. */
  async destroy(): Promise<void> {
    await this.kill();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
