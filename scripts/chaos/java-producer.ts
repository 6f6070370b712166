/**
 * A chaos producer on the official Java client (org.apache.kafka:kafka-clients 4.4.0, acks=all,
 * enable.idempotence on or off), run as a subprocess: scripts/chaos/java/ChaosProducer.java. It has
 * the public surface of ProducerWorker (workload.ts) and records sends in the same SendRecord shape
 * (checker.ts), so the harness can use either. Why a second producer: kafkajs's idempotent
 * producer reuses sequence numbers after errors, which a broker rightly answers as duplicates; the
 * Java client is the reference implementation of idempotence, so a duplicate it produces is the
 * broker's.
 *
 * Differences from ProducerWorker: one value per send (`<name>-<seq>` to partition seq %
 * partitions), up to `maxOutstanding` sends awaiting their callback (the client batches and keeps
 * up to 5 requests in flight per connection, in order: the idempotent producer keeps order per
 * partition), at `ratePerSec`. After an error the client retries by itself until
 * delivery.timeout.ms (30 s) and recovers its idempotent state itself (it bumps its epoch); the
 * producer is only closed and a new one made when the client is in a fatal state (counted in
 * `reinitialisations`), as is the Java process if it dies.
 *
 * History: the program prints a line when it hands a value to send() and another when the value's
 * callback fires (see ChaosProducer.java). A send is recorded, as 'unknown', at the first line (so
 * `sends` is in send order) and settled at the second:
 * - 'ok' with the acknowledged offset;
 * - 'failed' when the callback's exception says the record was not appended: it fired inside
 *   send() (never sent: a metadata or buffer timeout, or a producer in its fatal state, whose
 *   batches are aborted unsent), or the last answer was a refusal before any append
 *   (NOT_ENOUGH_REPLICAS, NOT_LEADER_OR_FOLLOWER, ...; as with kafkajs, an earlier attempt of the
 *   send may still have been appended, which the checker allows);
 * - else 'unknown' with the error (delivery timeouts, disconnections, a forced close).
 * A send whose callback never fired (the process was killed, or close timed out) stays 'unknown'.
 * Times are converted from the Java process's epoch milliseconds to milliseconds since t0.
 *
 * How the client behaves (seen against Sluice): a broker killed and restarted, or paused past
 * request.timeout.ms, costs nothing (every send retried into an acknowledgement, no duplicate);
 * with no broker reachable at all, kafka-clients 4.x re-bootstraps (metadata.recovery.strategy)
 * and forgets the topic, so send() blocks for max.block.ms (10 s here) and then fails inside
 * send(). stop() takes up to flushTimeoutMs when sends cannot settle. Without idempotence and
 * with 5 requests in flight, a retried request can land after a later one: 'non-monotonic sends'
 * (informational in the checker) are then the client's, not the broker's.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withDirLock } from '../../test/helpers/dir-lock.js';
import type { SendRecord } from './checker.js';
import { sleep, withTimeout } from './cluster.js';

export const KAFKA_CLIENTS_VERSION = '4.4.0';
const JAVA_DIR = join(dirname(fileURLToPath(import.meta.url)), 'java');
const TARGET = join(JAVA_DIR, 'target');
/** Written after a successful build: the run classpath. Newer than every source = up to date. */
const STAMP = join(TARGET, 'chaos-producer.classpath');
const MAIN_CLASS = 'sluice.chaos.ChaosProducer';
/** Small heap and serial GC: the machine is shared and the producer holds at most a few hundred records. */
const JVM_FLAGS = ['-XX:+UseSerialGC', '-Xmx256m', '-XX:TieredStopAtLevel=1'];
const STDERR_TAIL_MAX = 16_384;

function log(msg: string): void {
  console.log(`[java-producer] ${msg}`);
}

function newestMtime(p: string): number {
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let n = st.mtimeMs;
  for (const e of readdirSync(p)) n = Math.max(n, newestMtime(join(p, e)));
  return n;
}

/** The classpath of the last build if it is newer than the sources and its jars still exist. */
function builtClasspath(): string | null {
  if (!existsSync(STAMP)) return null;
  const sources = Math.max(newestMtime(join(JAVA_DIR, 'src')), statSync(join(JAVA_DIR, 'pom.xml')).mtimeMs);
  if (statSync(STAMP).mtimeMs <= sources) return null;
  const cp = readFileSync(STAMP, 'utf8').trim();
  if (!cp || cp.split(':').some((p) => !existsSync(p))) return null;
  if (!existsSync(join(TARGET, 'classes', ...MAIN_CLASS.split('.')) + '.class')) return null;
  return cp;
}

/** Runs a program to completion; rejects with a what-to-do message when it is not installed. */
function runTool(
  cmd: string,
  args: string[],
  onLine?: (line: string) => void,
): Promise<{ code: number | null; output: string }> {
  return new Promise((res, rej) => {
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, { cwd: JAVA_DIR, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      rej(e);
      return;
    }
    let output = '';
    let partial = '';
    const take = (s: string) => {
      output += s;
      if (output.length > 200_000) output = output.slice(-100_000);
      partial += s;
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      if (onLine) for (const l of lines) onLine(l);
    };
    child.stdout!.setEncoding('utf8').on('data', take);
    child.stderr!.setEncoding('utf8').on('data', take);
    child.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT')
        rej(
          new Error(
            `\`${cmd}\` is not installed (or not on PATH). The Java chaos producer needs a JDK 17+ (java, javac) and Maven 3.6+ (mvn): e.g. \`apt-get install openjdk-17-jdk-headless maven\`, or use the kafkajs producers.`,
          ),
        );
      else rej(e);
    });
    child.once('close', (code) => {
      if (partial && onLine) onLine(partial);
      res({ code, output });
    });
  });
}

let built: Promise<string> | null = null;

/**
 * Builds scripts/chaos/java with Maven once (skipped when the build is newer than pom.xml and the
 * sources) and returns the classpath to run it with (its classes and kafka-clients' jars in the
 * local Maven repository). The first build downloads kafka-clients and Maven's plugins (~45 MB
 * into ~/.m2); later ones need no network.
 */
export function ensureJavaProducerBuilt(): Promise<string> {
  built ??= buildOnce().catch((e) => {
    built = null;
    throw e;
  });
  return built;
}

function withLock<T>(fn: () => Promise<T>): Promise<T> {
  mkdirSync(TARGET, { recursive: true });
  return withDirLock(join(TARGET, '.build-lock'), { waitMs: 900_000, staleMs: 900_000, pollMs: 500 }, fn);
}

async function buildOnce(): Promise<string> {
  const cached = builtClasspath();
  if (cached) return cached;
  return withLock(async () => {
    const again = builtClasspath(); // another process may have built it while we waited
    if (again) return again;
    const java = await runTool('java', ['-version']);
    if (java.code !== 0) throw new Error(`\`java -version\` failed:\n${java.output}`);
    const started = Date.now();
    log(
      `building the Java producer (kafka-clients ${KAFKA_CLIENTS_VERSION}): mvn -B compile in ${JAVA_DIR}` +
        ' (the first build downloads ~45 MB into ~/.m2)',
    );
    let downloads = 0;
    let lastInfo = '';
    const ticker = setInterval(() => {
      log(
        `  still building (${Math.round((Date.now() - started) / 1000)} s, ${downloads} files downloaded)${lastInfo ? `: ${lastInfo}` : ''}`,
      );
    }, 10_000);
    let r: { code: number | null; output: string };
    try {
      r = await runTool('mvn', ['-B', '-Dstyle.color=never', 'compile'], (line) => {
        if (/^(\[INFO\] )?Downloaded from /.test(line)) downloads++;
        const m = /^\[INFO\] (--- .*)$/.exec(line);
        if (m) lastInfo = m[1]!;
      });
    } finally {
      clearInterval(ticker);
    }
    const depCp = join(TARGET, 'classpath.txt');
    if (r.code !== 0 || !existsSync(depCp))
      throw new Error(
        `building the Java chaos producer failed (mvn -B compile in ${JAVA_DIR}, exit ${r.code}). ` +
          `Maven needs Maven Central (or a mirror in ~/.m2/settings.xml) the first time. Output:\n${r.output.slice(-3000)}`,
      );
    const cp = [join(TARGET, 'classes'), readFileSync(depCp, 'utf8').trim()].filter(Boolean).join(':');
    writeFileSync(STAMP, `${cp}\n`);
    log(`built in ${((Date.now() - started) / 1000).toFixed(1)} s (${downloads} files downloaded)`);
    return cp;
  });
}

export interface JavaProducerOptions {
  /** Sends per second (0: as fast as maxOutstanding allows). Default 500. */
  ratePerSec?: number;
  /** Sends awaiting their callback, at most (send() blocks beyond). Default 100. */
  maxOutstanding?: number;
  /** max.in.flight.requests.per.connection. Default 5 (the most idempotence allows). */
  maxInFlight?: number;
  /** delivery.timeout.ms (default 30000) and request.timeout.ms (default 5000). */
  deliveryTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** How long stop() lets sends settle (flush) before closing the producer. Default 30000. */
  flushTimeoutMs?: number;
  /** close() timeout at stop and at a re-initialisation. Default 5000. */
  closeTimeoutMs?: number;
  /** The client's log level on the process's stderr (kept in stderrTail). Default 'error'. */
  logLevel?: 'error' | 'warn' | 'info' | 'debug';
  /** For tests: after this many sends, put the first producer in its fatal state (-1: never). */
  injectFatalAfter?: number;
}

/** One line of ChaosProducer's stdout. */
interface JavaLine {
  ready?: boolean;
  done?: boolean;
  reinit?: boolean;
  sent?: string;
  value?: string;
  seq?: number;
  partition?: number;
  outcome?: 'ok' | 'failed';
  offset?: number;
  ackPartition?: number;
  error?: string;
  errorClass?: string;
  sync?: boolean;
  again?: boolean;
  startMs?: number;
  endMs?: number;
  nextSeq?: number;
  clientVersion?: string;
}

/** The last error before any append: the request was refused, not appended (see workload.ts). */
const DEFINITE_REFUSALS = new Set([
  'NotEnoughReplicasException',
  'NotLeaderOrFollowerException',
  'LeaderNotAvailableException',
  'UnknownTopicOrPartitionException',
]);

/** The outcome of a send whose callback fired with an exception. */
export function classifyJavaFailure(errorClass: string, sync: boolean): 'failed' | 'unknown' {
  if (sync) return 'failed';
  return DEFINITE_REFUSALS.has(errorClass.slice(errorClass.lastIndexOf('.') + 1)) ? 'failed' : 'unknown';
}

/** A low-cardinality key for the errors map: the exception's class and its message without numbers. */
function errorKey(errorClass: string, error: string, sync: boolean): string {
  const simple = errorClass.slice(errorClass.lastIndexOf('.') + 1);
  const first = error.split(' <- ')[0] ?? error;
  const msg = (
    first
      .slice(first.indexOf(':') + 1)
      .trim()
      .split('. ')[0] ?? ''
  )
    .replace(/[0-9]+/g, 'N')
    .slice(0, 90);
  return `${simple}${sync ? ' (in send())' : ''}${msg ? `: ${msg}` : ''}`;
}

export class JavaProducerWorker {
  readonly sends: SendRecord[] = [];
  /** Errors by kind (callback exceptions, re-initialisations, process failures), for the report. */
  readonly errors = new Map<string, number>();
  /** Producers closed and remade after a fatal error, plus Java processes restarted after dying. */
  reinitialisations = 0;
  /** The last of the Java process's stderr (the client's log, JVM errors). */
  stderrTail = '';
  /** The client version the program reported (from kafka-clients' jar). */
  clientVersion: string | undefined;
  /** Resolves when the first Java process has made its producer (rejects if it could not start). */
  readonly ready: Promise<void>;
  private resolveReady!: () => void;
  private rejectReady!: (e: Error) => void;
  private readonly byValue = new Map<string, SendRecord>();
  private readonly opts: Required<JavaProducerOptions>;
  private child: ChildProcess | null = null;
  private stopped = false;
  private loop: Promise<void> | null = null;
  private nextSeq = 0;
  private partial = '';

  constructor(
    private readonly bootstraps: string[],
    readonly name: string,
    readonly idempotent: boolean,
    private readonly topic: string,
    private readonly partitions: number,
    private readonly t0: number,
    opts: JavaProducerOptions = {},
  ) {
    this.opts = {
      ratePerSec: 500,
      maxOutstanding: 100,
      maxInFlight: 5,
      deliveryTimeoutMs: 30_000,
      requestTimeoutMs: 5_000,
      flushTimeoutMs: 30_000,
      closeTimeoutMs: 5_000,
      logLevel: 'error',
      injectFatalAfter: -1,
      ...opts,
    };
    this.ready = new Promise<void>((res, rej) => {
      this.resolveReady = res;
      this.rejectReady = rej;
    });
    this.ready.catch(() => {}); // a caller need not wait for it
  }

  private countError(key: string): void {
    this.errors.set(key, (this.errors.get(key) ?? 0) + 1);
  }

  /**
   * Builds the program if needed (ensureJavaProducerBuilt) and starts it; returns at once. A build
   * or start failure rejects `ready` and is counted in `errors`.
   */
  start(): void {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    let classpath: string;
    try {
      classpath = await ensureJavaProducerBuilt();
    } catch (e) {
      this.countError(`build: ${(e as Error).message.split('\n')[0]}`);
      this.rejectReady(e as Error);
      return;
    }
    let first = true;
    while (!this.stopped) {
      const code = await this.runProcess(classpath);
      if (this.stopped) break;
      // The process ended without being told to stop: start another, continuing the sequence.
      this.countError(`java process exited (code ${code})`);
      if (first && this.sends.length === 0) {
        const e = new Error(
          `the Java producer exited (code ${code}) before sending; stderr:\n${this.stderrTail}`,
        );
        this.countError(e.message.split('\n')[0]!);
        this.rejectReady(e);
        return;
      }
      first = false;
      this.reinitialisations++;
      await sleep(500);
    }
  }

  private runProcess(classpath: string): Promise<number | null> {
    const o = this.opts;
    const args = [
      ...JVM_FLAGS,
      '-cp',
      classpath,
      MAIN_CLASS,
      this.bootstraps.join(','),
      this.topic,
      String(this.partitions),
      this.name,
      String(this.idempotent),
      `max-outstanding=${o.maxOutstanding}`,
      `rate=${o.ratePerSec}`,
      `max-in-flight=${o.maxInFlight}`,
      `first-seq=${this.nextSeq}`,
      `delivery-timeout-ms=${o.deliveryTimeoutMs}`,
      `request-timeout-ms=${o.requestTimeoutMs}`,
      `flush-timeout-ms=${o.flushTimeoutMs}`,
      `close-timeout-ms=${o.closeTimeoutMs}`,
      `log=${o.logLevel}`,
      `inject-fatal-after=${o.injectFatalAfter}`,
    ];
    return new Promise((res) => {
      const child = spawn('java', args, { stdio: ['pipe', 'pipe', 'pipe'] });
      this.child = child;
      this.partial = '';
      child.stdout!.setEncoding('utf8').on('data', (s: string) => this.ingest(s));
      child.stderr!.setEncoding('utf8').on('data', (s: string) => {
        this.stderrTail = (this.stderrTail + s).slice(-STDERR_TAIL_MAX);
      });
      child.stdin!.on('error', () => {}); // EPIPE when the process is gone
      child.once('error', (e: NodeJS.ErrnoException) => {
        this.stderrTail += `\nspawn java: ${e.message}`;
        if (e.code === 'ENOENT') this.rejectReady(new Error('`java` is not installed (or not on PATH)'));
        res(null);
      });
      child.once('close', (code) => {
        if (this.partial) this.onLine(this.partial);
        this.partial = '';
        this.child = null;
        res(code);
      });
      // Told to stop while it was starting.
      if (this.stopped) child.stdin!.end('stop\n');
    });
  }

  /** Feeds a chunk of the program's stdout (lines may be split across chunks). */
  ingest(chunk: string): void {
    this.partial += chunk;
    let nl = this.partial.indexOf('\n');
    while (nl >= 0) {
      const line = this.partial.slice(0, nl);
      this.partial = this.partial.slice(nl + 1);
      if (line.trim()) this.onLine(line);
      nl = this.partial.indexOf('\n');
    }
  }

  private rel(epochMs: number | undefined): number {
    return (epochMs ?? Date.now()) - this.t0;
  }

  private onLine(line: string): void {
    let m: JavaLine;
    try {
      m = JSON.parse(line) as JavaLine;
    } catch {
      this.countError('unparsable output line');
      this.stderrTail = `${this.stderrTail}\n[stdout] ${line}`.slice(-STDERR_TAIL_MAX);
      return;
    }
    if (typeof m.sent === 'string') {
      const r: SendRecord = {
        value: m.sent,
        producer: this.name,
        idempotent: this.idempotent,
        partition: m.partition ?? -1,
        outcome: 'unknown',
        startMs: this.rel(m.startMs),
      };
      if (this.byValue.has(r.value)) {
        this.countError('value sent twice (harness defect)');
        return;
      }
      this.byValue.set(r.value, r);
      this.sends.push(r);
      if (typeof m.seq === 'number') this.nextSeq = Math.max(this.nextSeq, m.seq + 1);
    } else if (typeof m.value === 'string' && m.outcome) {
      let r = this.byValue.get(m.value);
      if (!r) {
        // Cannot happen (the sent line is flushed before send()); keep the evidence anyway.
        this.countError('outcome without a sent line');
        r = {
          value: m.value,
          producer: this.name,
          idempotent: this.idempotent,
          partition: m.partition ?? -1,
          outcome: 'unknown',
          startMs: this.rel(m.startMs),
        };
        this.byValue.set(r.value, r);
        this.sends.push(r);
      }
      if (m.again) {
        // A second callback for one send (see ChaosProducer.java): only an acknowledgement adds
        // anything (it proves the value was appended, at that offset).
        this.countError(
          `callback fired again: ${m.outcome === 'ok' ? 'ok' : (m.errorClass ?? '?').replace(/^.*\./, '')}`,
        );
        if (m.outcome !== 'ok' || typeof m.offset !== 'number') return;
        r.error = `acknowledged after a failure: ${r.error ?? ''}`;
      }
      r.endMs = this.rel(m.endMs);
      if (m.outcome === 'ok' && typeof m.offset === 'number') {
        r.outcome = 'ok';
        r.offset = m.offset;
        if (m.ackPartition !== undefined && m.ackPartition !== r.partition) {
          r.error = `acknowledged in partition ${m.ackPartition}`;
          this.countError('acknowledged in another partition');
        }
      } else {
        const errorClass = m.errorClass ?? 'Unknown';
        r.outcome = classifyJavaFailure(errorClass, m.sync === true);
        r.error = m.error ?? errorClass;
        this.countError(errorKey(errorClass, r.error, m.sync === true));
      }
    } else if (m.reinit) {
      this.reinitialisations++;
      this.countError(`re-initialised: ${(m.error ?? '').replace(/[0-9]+/g, 'N').slice(0, 80)}`);
    } else if (m.ready) {
      this.clientVersion = m.clientVersion;
      this.resolveReady();
    } else if (m.done) {
      if (typeof m.nextSeq === 'number') this.nextSeq = Math.max(this.nextSeq, m.nextSeq);
    } else {
      this.countError('unrecognised output line');
    }
  }

  /**
   * Stops sending and lets sends settle (flush, at most flushTimeoutMs, then close); a send with no
   * callback by then stays 'unknown'. Kills the process if it has not exited well after that.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    const child = this.child;
    if (child && child.exitCode === null) child.stdin!.end('stop\n');
    if (this.loop) {
      const limit = this.opts.flushTimeoutMs + this.opts.closeTimeoutMs + 15_000;
      await withTimeout(this.loop, limit, `${this.name} stop`, () => {
        this.countError('java process killed: no exit after stop');
        this.child?.kill('SIGKILL');
      }).catch(() => {});
      // After a kill, wait for the process's close (and its last output).
      if (this.child) await withTimeout(this.loop, 5_000, `${this.name} kill`).catch(() => {});
    }
    for (const r of this.sends) if (r.outcome === 'unknown' && r.error === undefined) r.error = 'no callback';
  }
}
