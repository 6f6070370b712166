/**
 * Runs the built broker as a real child process for integration tests: free 127.0.0.1 port,
 * fresh mkdtemp data dir, waits for the "Sluice ready on" line (10 s timeout; the error carries
 * the process output), and offers stop (SIGTERM), kill (SIGKILL) and restart (same data dir and
 * port).
 *
 * Build: src is compiled with tsconfig.build.json into test/.build/<hash of src>/ (gitignored),
 * not into dist/, and run through test/helpers/sluice-runner.mjs, the twin of bin/sluice.js.
 * Why not dist: test files run in parallel and other people rebuild dist while they work, and a
 * broker started while tsc is halfway through rewriting dist fails with missing exports. A
 * content-addressed directory is written once (tmp dir, then rename) and never changes, so every
 * broker a test starts, restarts included, runs one consistent snapshot of src. Builds are
 * serialised across test files with a lock directory; a type error somewhere in src (someone
 * else's work in progress) still emits JavaScript, so it is a warning, not a failure.
 */

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withDirLock } from './dir-lock.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BUILD_ROOT = join(REPO_ROOT, 'test', '.build');
const RUNNER = join(REPO_ROOT, 'test', 'helpers', 'sluice-runner.mjs');
const READY_TIMEOUT_MS = 10_000;
const BUILDS_KEPT = 3;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function srcFiles(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) srcFiles(p, out);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

/** Hash of every non-test source file (path and content) plus the build config. */
function srcHash(): string {
  const h = createHash('sha256');
  for (const f of srcFiles(join(REPO_ROOT, 'src')).sort())
    h.update(relative(REPO_ROOT, f)).update('\0').update(readFileSync(f)).update('\0');
  for (const f of ['tsconfig.json', 'tsconfig.build.json']) h.update(readFileSync(join(REPO_ROOT, f)));
  return h.digest('hex').slice(0, 16);
}

let built: Promise<string> | null = null;

/** Compiles the current src (once per content) and returns the output directory. */
export function ensureBuilt(): Promise<string> {
  built ??= buildOnce().catch((e) => {
    built = null;
    throw e;
  });
  return built;
}

function withLock<T>(fn: () => Promise<T>): Promise<T> {
  mkdirSync(BUILD_ROOT, { recursive: true });
  return withDirLock(join(BUILD_ROOT, 'lock'), { waitMs: 180_000, staleMs: 120_000, pollMs: 200 }, fn);
}

async function buildOnce(): Promise<string> {
  const hash = srcHash();
  const outDir = join(BUILD_ROOT, hash);
  const done = join(outDir, '.complete');
  if (existsSync(done)) return outDir;
  return withLock(async () => {
    if (existsSync(done)) return outDir;
    const tmp = join(BUILD_ROOT, `tmp-${process.pid}-${Date.now()}`);
    const tsc = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    await new Promise<void>((res) => {
      execFile(
        process.execPath,
        [tsc, '-p', 'tsconfig.build.json', '--outDir', tmp],
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
    if (!existsSync(join(tmp, 'cli', 'main.js')))
      throw new Error(`tsc emitted no ${join(tmp, 'cli', 'main.js')}`);
    writeFileSync(join(tmp, '.complete'), `${new Date().toISOString()}\n`);
    rmSync(outDir, { recursive: true, force: true });
    renameSync(tmp, outDir);
    // Keep the newest few builds (another test file may still be restarting a broker from one).
    const old = readdirSync(BUILD_ROOT)
      .filter((n) => /^[0-9a-f]{16}$/.test(n) && n !== hash)
      .map((n) => ({ n, t: statSync(join(BUILD_ROOT, n)).mtimeMs }))
      .sort((a, b) => b.t - a.t)
      .slice(BUILDS_KEPT - 1);
    for (const o of old) rmSync(join(BUILD_ROOT, o.n), { recursive: true, force: true });
    return outDir;
  });
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
    /** The compiled src this broker runs (see ensureBuilt). */
    readonly buildDir: string,
  ) {}

  static async start(opts: BrokerProcessOptions = {}): Promise<BrokerProcess> {
    const buildDir = await ensureBuilt();
    const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'sluice-it-'));
    const port = opts.port ?? (await freePort());
    const b = new BrokerProcess(dataDir, port, opts.set ?? [], buildDir);
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
      RUNNER,
      join(this.buildDir, 'cli', 'main.js'),
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

  /** Sends a signal (SIGSTOP / SIGCONT to pause and resume the process). */
  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child!.kill(sig);
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
