/**
 * Starting and stopping the four systems on loopback, each with a fresh data directory:
 *
 * - Sluice: `node bin/sluice.js start` (run `npm run build` first);
 * - Apache Kafka 4.4.0: compat/kafka-reference.ts (KRaft combined mode, Maven Central jars);
 * - NATS JetStream: Debian's `nats-server` with a config file (file storage in the temp dir);
 * - Redis Streams: Debian's `redis-server` with no config file (built-in defaults).
 *
 * Durability modes: 'defaults' runs each as shipped; 'fsync' makes each fsync before it answers
 * a write: Sluice `--set log.flush.interval.messages=1` (acks=all fsyncs anyway), Kafka topic
 * config `flush.messages=1`, JetStream `sync_interval: always` (NATS 2.10+; Debian 12's 2.9.10
 * does not have it, see `natsSupportsSyncAlways`), Redis `appendonly yes` + `appendfsync always`.
 */

import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type KafkaHandle, startKafka } from '../../compat/kafka-reference.js';
import { Admin } from '../../src/client/admin.js';
import {
  REPO_ROOT,
  SLUICE_HOME,
  exec,
  freePort,
  isAlive,
  procCpuSeconds,
  procStatusKb,
  progress,
  sleep,
  stopPid,
} from './lib.js';

export type SystemName = 'sluice' | 'kafka' | 'nats' | 'redis';
export type Durability = 'defaults' | 'fsync';

export const SYSTEM_LABEL: Record<SystemName, string> = {
  sluice: 'Sluice',
  kafka: 'Apache Kafka 4.4.0',
  nats: 'NATS JetStream',
  redis: 'Redis Streams',
};

export interface Running {
  system: SystemName;
  durability: Durability;
  host: string;
  port: number;
  pid: number;
  dataDir: string;
  /** Peak resident set size of the broker process so far (VmHWM), MiB. */
  peakRssMiB(): number;
  /** CPU seconds (user + system) the broker process has used so far. */
  cpuSeconds(): number;
  /** Creates a topic (Kafka-wire), streams (JetStream, one per partition) or nothing (Redis). */
  createTopic(name: string, partitions: number): Promise<void>;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Extra node flags for Sluice (e.g. --cpu-prof). */
  nodeFlags?: string[];
  /** Extra `--set K=V` for Sluice. */
  sluiceSet?: string[];
  /** Sluice: use this directory (kept on stop) instead of a fresh one. */
  dataDir?: string;
}

export async function startSystem(
  system: SystemName,
  durability: Durability,
  opts: StartOptions = {},
): Promise<Running> {
  switch (system) {
    case 'sluice':
      return startSluice(durability, opts);
    case 'kafka':
      return startKafkaRef(durability);
    case 'nats':
      return startNats(durability);
    case 'redis':
      return startRedis(durability);
  }
}

function common(pid: number) {
  return {
    peakRssMiB: () => procStatusKb(pid, 'VmHWM') / 1024,
    cpuSeconds: () => procCpuSeconds(pid),
  };
}

async function kafkaWireCreate(bootstrap: string, name: string, partitions: number, configs = {}) {
  const admin = new Admin({ bootstrapServers: bootstrap });
  await admin.connect();
  try {
    await admin.createTopic(name, { partitions, replicationFactor: 1, configs });
  } finally {
    await admin.close();
  }
}

/** Spawns a server and waits for a line on its output; returns the child pid. */
async function spawnUntil(
  cmd: string,
  args: string[],
  logFile: string,
  ready: RegExp,
  timeoutMs: number,
): Promise<number> {
  const fd = openSync(logFile, 'a');
  const child = spawn(cmd, args, { stdio: ['ignore', fd, fd], cwd: REPO_ROOT });
  closeSync(fd);
  const pid = child.pid;
  if (!pid) throw new Error(`could not start ${cmd}`);
  let exited: number | null | undefined;
  child.on('exit', (code) => {
    exited = code;
  });
  child.unref();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const out = readFileSync(logFile, 'utf8');
    if (ready.test(out)) return pid;
    if (exited !== undefined) throw new Error(`${cmd} exited with ${exited}:\n${out.slice(-3000)}`);
    if (Date.now() > deadline) {
      await stopPid(pid, 2000);
      throw new Error(`${cmd} not ready after ${timeoutMs} ms:\n${out.slice(-3000)}`);
    }
    await sleep(20);
  }
}

async function startSluice(durability: Durability, opts: StartOptions): Promise<Running> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'sluice-bench-'));
  const port = await freePort();
  const set = ['group.initial.rebalance.delay.ms=0', ...(opts.sluiceSet ?? [])];
  if (durability === 'fsync') set.push('log.flush.interval.messages=1');
  const args = [
    ...(opts.nodeFlags ?? []),
    join(SLUICE_HOME, 'bin', 'sluice.js'),
    'start',
    '--data-dir',
    join(dataDir, 'data'),
    '--listen',
    `127.0.0.1:${port}`,
    '--metrics-listen',
    '127.0.0.1:0',
    ...set.flatMap((s) => ['--set', s]),
  ];
  const logFile = join(dataDir, 'sluice.out');
  const pid = await spawnUntil(process.execPath, args, logFile, /Sluice ready on/, 30_000);
  const bootstrap = `127.0.0.1:${port}`;
  return {
    system: 'sluice',
    durability,
    host: '127.0.0.1',
    port,
    pid,
    dataDir,
    ...common(pid),
    createTopic: (name, partitions) => kafkaWireCreate(bootstrap, name, partitions),
    async stop() {
      await stopPid(pid, 30_000);
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function startKafkaRef(durability: Durability): Promise<Running> {
  const k: KafkaHandle = await startKafka();
  const topicConfigs: Record<string, string> = durability === 'fsync' ? { 'flush.messages': '1' } : {};
  return {
    system: 'kafka',
    durability,
    host: k.host,
    port: k.port,
    pid: k.pid,
    dataDir: k.dir,
    ...common(k.pid),
    createTopic: (name, partitions) => kafkaWireCreate(k.bootstrap, name, partitions, topicConfigs),
    stop: () => k.stop(),
  };
}

let natsSyncAlways: boolean | undefined;
/** Whether this nats-server accepts `sync_interval: always` (added in NATS 2.10). */
export async function natsSupportsSyncAlways(): Promise<boolean> {
  if (natsSyncAlways !== undefined) return natsSyncAlways;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-natscheck-'));
  const conf = join(dir, 'n.conf');
  writeFileSync(conf, `jetstream {\n  store_dir: "${dir}"\n  sync_interval: always\n}\n`);
  const r = await exec('nats-server', ['-c', conf, '-t'], { timeoutMs: 10_000 });
  rmSync(dir, { recursive: true, force: true });
  natsSyncAlways = !/unknown field/.test(r.stdout + r.stderr) && r.code === 0;
  return natsSyncAlways;
}

async function startNats(durability: Durability): Promise<Running> {
  if (durability === 'fsync' && !(await natsSupportsSyncAlways())) {
    throw new Unsupported('this nats-server has no `sync_interval: always` (needs NATS 2.10+)');
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'sluice-bench-nats-'));
  const port = await freePort();
  const conf = join(dataDir, 'nats.conf');
  writeFileSync(
    conf,
    [
      `listen: 127.0.0.1:${port}`,
      'jetstream {',
      `  store_dir: "${join(dataDir, 'js')}"`,
      ...(durability === 'fsync' ? ['  sync_interval: always'] : []),
      '}',
      '',
    ].join('\n'),
  );
  const pid = await spawnUntil(
    'nats-server',
    ['-c', conf],
    join(dataDir, 'nats.out'),
    /Server is ready/,
    30_000,
  );
  const url = `127.0.0.1:${port}`;
  return {
    system: 'nats',
    durability,
    host: '127.0.0.1',
    port,
    pid,
    dataDir,
    ...common(pid),
    async createTopic(name, partitions) {
      const { connect, StorageType, RetentionPolicy } = await import('nats');
      const nc = await connect({ servers: url });
      try {
        const jsm = await nc.jetstreamManager();
        for (let p = 0; p < partitions; p++) {
          await jsm.streams.add({
            name: `${name}-${p}`,
            subjects: [`${name}.${p}`],
            storage: StorageType.File,
            retention: RetentionPolicy.Limits,
          });
        }
      } finally {
        await nc.close();
      }
    },
    async stop() {
      await stopPid(pid, 30_000);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function startRedis(durability: Durability): Promise<Running> {
  const dataDir = mkdtempSync(join(tmpdir(), 'sluice-bench-redis-'));
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dataDir, '--daemonize', 'no'];
  if (durability === 'fsync') args.push('--appendonly', 'yes', '--appendfsync', 'always');
  const pid = await spawnUntil(
    'redis-server',
    args,
    join(dataDir, 'redis.out'),
    /Ready to accept connections/,
    30_000,
  );
  return {
    system: 'redis',
    durability,
    host: '127.0.0.1',
    port,
    pid,
    dataDir,
    ...common(pid),
    createTopic: async () => {},
    async stop() {
      // SIGTERM makes Redis save an RDB snapshot first with the default `save` rules; that is
      // part of its shutdown, not of any measurement.
      await stopPid(pid, 60_000);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A system cannot run a workload in a mode (the row says so instead of a figure). */
export class Unsupported extends Error {}

export function stillRunning(r: Running): boolean {
  return isAlive(r.pid);
}
