/**
 * The reference broker: Apache Kafka 4.4.0 in KRaft combined mode (broker + controller in one
 * JVM), from Maven Central jars, on a loopback port, with its data in a temp directory.
 *
 *   node --import tsx compat/kafka-reference.ts start   # prints "Kafka 4.4.0 ready on 127.0.0.1:PORT"
 *   node --import tsx compat/kafka-reference.ts stop
 *
 * Jars: `mvn dependency:copy-dependencies` on compat/java/reference-pom.xml (kafka_2.13 + kafka-tools
 * and their runtime dependencies, plus the log4j2 slf4j binding) into compat/.cache/kafka-4.4.0/libs,
 * once; later runs reuse them. Storage is formatted with `kafka.tools.StorageTool format --standalone`
 * (Kafka 4.x: a single-node dynamic quorum, so controller.quorum.bootstrap.servers is set and
 * controller.quorum.voters must not be).
 */

import { type ChildProcess, spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CACHE_DIR,
  COMPAT_DIR,
  freePort,
  isAlive,
  killGroup,
  progress,
  run,
  sleep,
  waitForApiVersions,
} from './lib/util.js';

export const KAFKA_VERSION = '4.4.0';
export const KAFKA_HOME = join(CACHE_DIR, `kafka-${KAFKA_VERSION}`);
export const KAFKA_LIBS = join(KAFKA_HOME, 'libs');
const STATE_FILE = join(CACHE_DIR, 'kafka-reference.json');

/** Classpath for `java -cp`: every jar of the reference distribution. */
export const kafkaClasspath = () => `${KAFKA_LIBS}/*`;

/** Downloads (once) Kafka's server and tools jars with their runtime dependencies. */
export async function ensureKafkaJars(): Promise<void> {
  const marker = join(KAFKA_HOME, '.complete');
  if (existsSync(marker)) return;
  progress(`fetching Apache Kafka ${KAFKA_VERSION} jars from Maven Central into ${KAFKA_LIBS}`);
  rmSync(KAFKA_LIBS, { recursive: true, force: true });
  mkdirSync(KAFKA_LIBS, { recursive: true });
  const r = await run(
    'mvn',
    [
      '-B',
      '-q',
      '-f',
      join(COMPAT_DIR, 'java', 'reference-pom.xml'),
      `-Dkafka.version=${KAFKA_VERSION}`,
      'dependency:copy-dependencies',
      '-DincludeScope=runtime',
      `-DoutputDirectory=${KAFKA_LIBS}`,
    ],
    { timeoutMs: 15 * 60_000 },
  );
  if (r.code !== 0)
    throw new Error(`mvn dependency:copy-dependencies failed (${r.code}):\n${r.stdout}${r.stderr}`);
  const jars = readdirSync(KAFKA_LIBS).filter((f) => f.endsWith('.jar'));
  if (!jars.some((j) => j.startsWith(`kafka_2.13-${KAFKA_VERSION}`)))
    throw new Error('kafka_2.13 jar missing after mvn');
  writeFileSync(join(KAFKA_HOME, 'log4j2.properties'), LOG4J2);
  writeFileSync(marker, `${jars.length} jars\n`);
  progress(`Kafka ${KAFKA_VERSION}: ${jars.length} jars cached`);
}

/** Logs WARN and above to stdout (captured into the data dir's kafka.out). */
const LOG4J2 = `status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = STDOUT
logger.kafka.name = kafka.server.KafkaRaftServer
logger.kafka.level = INFO
`;

export interface KafkaHandle {
  host: string;
  port: number;
  controllerPort: number;
  dir: string;
  pid: number;
  bootstrap: string;
  /** Path of the server's combined stdout/stderr. */
  logFile: string;
  stop(): Promise<void>;
}

function javaEnv(): NodeJS.ProcessEnv {
  return { ...process.env, KAFKA_HEAP_OPTS: '' };
}

/**
 * Formats a fresh data dir and starts Kafka; resolves once the port answers ApiVersions.
 * With detached: true the JVM outlives this process (used by the CLI's `start`).
 */
export async function startKafka(opts: { detached?: boolean; port?: number } = {}): Promise<KafkaHandle> {
  await ensureKafkaJars();
  const host = '127.0.0.1';
  const port = opts.port ?? (await freePort());
  let controllerPort = await freePort();
  while (controllerPort === port) controllerPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'sluice-compat-kafka-'));
  const logDir = join(dir, 'data');
  const props = [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.bootstrap.servers=${host}:${controllerPort}`,
    `listeners=PLAINTEXT://${host}:${port},CONTROLLER://${host}:${controllerPort}`,
    `advertised.listeners=PLAINTEXT://${host}:${port}`,
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'inter.broker.listener.name=PLAINTEXT',
    'controller.listener.names=CONTROLLER',
    `log.dirs=${logDir}`,
    'num.partitions=1',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=1',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    'auto.create.topics.enable=true',
  ].join('\n');
  const propsFile = join(dir, 'server.properties');
  writeFileSync(propsFile, `${props}\n`);
  const jvm = [
    '-Xms256m',
    '-Xmx768m',
    '-XX:+UseG1GC',
    `-Dlog4j2.configurationFile=${join(KAFKA_HOME, 'log4j2.properties')}`,
    '-Djava.awt.headless=true',
    '-cp',
    kafkaClasspath(),
  ];

  const uuid = await run('java', [...jvm, 'kafka.tools.StorageTool', 'random-uuid'], {
    env: javaEnv(),
    timeoutMs: 60_000,
  });
  const clusterId = uuid.stdout.trim().split('\n').pop() ?? '';
  if (uuid.code !== 0 || !/^[A-Za-z0-9_-]{22}$/.test(clusterId))
    throw new Error(`StorageTool random-uuid failed: ${uuid.stdout}${uuid.stderr}`);
  const fmt = await run(
    'java',
    [...jvm, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', propsFile, '--standalone'],
    { env: javaEnv(), timeoutMs: 60_000 },
  );
  if (fmt.code !== 0) throw new Error(`StorageTool format failed (${fmt.code}):\n${fmt.stdout}${fmt.stderr}`);

  const logFile = join(dir, 'kafka.out');
  const fd = openSync(logFile, 'a');
  const child: ChildProcess = spawn('java', [...jvm, 'kafka.Kafka', propsFile], {
    env: javaEnv(),
    stdio: ['ignore', fd, fd],
    detached: true,
  });
  closeSync(fd);
  const pid = child.pid;
  if (!pid) throw new Error('could not start java');
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  if (opts.detached) child.unref();
  try {
    await waitForApiVersions(host, port, 120_000, () => !exited && isAlive(pid));
  } catch (e) {
    killGroup(pid, 'SIGKILL');
    const out = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-4000) : '';
    throw new Error(`Kafka did not start: ${(e as Error).message}\n${out}`);
  }
  const handle: KafkaHandle = {
    host,
    port,
    controllerPort,
    dir,
    pid,
    logFile,
    bootstrap: `${host}:${port}`,
    stop: () => stopKafkaProcess(pid, dir),
  };
  return handle;
}

async function stopKafkaProcess(pid: number, dir: string): Promise<void> {
  if (isAlive(pid)) {
    killGroup(pid, 'SIGTERM');
    const deadline = Date.now() + 30_000;
    while (isAlive(pid) && Date.now() < deadline) await sleep(200);
    if (isAlive(pid)) killGroup(pid, 'SIGKILL');
    while (isAlive(pid)) await sleep(100);
  }
  rmSync(dir, { recursive: true, force: true });
}

async function cli(argv: string[]): Promise<number> {
  const cmd = argv[0];
  if (cmd === 'start') {
    if (existsSync(STATE_FILE)) {
      const s = JSON.parse(readFileSync(STATE_FILE, 'utf8')) as { pid: number; bootstrap: string };
      if (isAlive(s.pid)) {
        console.log(`Kafka ${KAFKA_VERSION} already running on ${s.bootstrap} (pid ${s.pid})`);
        return 0;
      }
    }
    const portArg = argv.indexOf('--port');
    const k = await startKafka({ detached: true, port: portArg > 0 ? Number(argv[portArg + 1]) : undefined });
    mkdirSync(CACHE_DIR, { recursive: true });
    writeFileSync(
      STATE_FILE,
      JSON.stringify({ pid: k.pid, dir: k.dir, bootstrap: k.bootstrap, logFile: k.logFile }, null, 2),
    );
    console.log(
      `Kafka ${KAFKA_VERSION} ready on ${k.bootstrap} (pid ${k.pid}, data ${k.dir}, log ${k.logFile})`,
    );
    return 0;
  }
  if (cmd === 'stop') {
    if (!existsSync(STATE_FILE)) {
      console.log('no reference broker recorded');
      return 0;
    }
    const s = JSON.parse(readFileSync(STATE_FILE, 'utf8')) as { pid: number; dir: string };
    await stopKafkaProcess(s.pid, s.dir);
    rmSync(STATE_FILE, { force: true });
    console.log(`stopped Kafka (pid ${s.pid})`);
    return 0;
  }
  if (cmd === 'fetch') {
    await ensureKafkaJars();
    console.log(KAFKA_LIBS);
    return 0;
  }
  console.error('usage: node --import tsx compat/kafka-reference.ts start [--port N] | stop | fetch');
  return 2;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  cli(process.argv.slice(2)).then(
    (c) => {
      process.exitCode = c;
    },
    (e) => {
      console.error((e as Error).message);
      process.exitCode = 1;
    },
  );
}
