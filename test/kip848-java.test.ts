/**
 * Goal: a real KIP-848 client works against Sluice: the Java consumer of kafka-clients 4.4.0 with
 * group.protocol=consumer (ConsumerGroupHeartbeat, the broker computes the assignment).
 *
 * Method: test/java-kip848 is a one-class Maven project (kafka-clients 4.4.0 + slf4j-simple),
 * built here with `mvn -q -B -o package` (online if the offline build fails) into
 * test/java-kip848/target (gitignored; reused while newer than its sources). Each consumer runs
 * as a child process printing JSON lines (assigned / revoked / lost / record); "close" on stdin
 * makes it leave the group (member epoch -1). Two consumers share a 6-partition topic:
 * - their assignments are disjoint at every observed moment and together cover all 6;
 * - every produced record is consumed;
 * - when one leaves, the other gets all 6 without losing (revoking) any partition it had, and
 *   reads records produced afterwards on every partition.
 * The group is also checked through ListGroups (type "consumer").
 *
 * Skips (loudly) when java or mvn are missing or the project cannot be built.
 */

import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Admin, Kafka as KafkaClient, Producer } from 'kafkajs';
import kafkajs from 'kafkajs';
import { BrokerProcess, REPO_ROOT } from './helpers/broker-process.js';

const { Kafka, logLevel } = kafkajs;
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

const PROJECT = join(REPO_ROOT, 'test', 'java-kip848');
const JAR = join(PROJECT, 'target', 'sluice-kip848-jar-with-dependencies.jar');
const TOPIC = 'kip848-six';
const GROUP = 'kip848-group';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function newestSource(dir: string): number {
  let newest = statSync(join(PROJECT, 'pom.xml')).mtimeMs;
  for (const f of readdirSync(dir, { recursive: true })) {
    const p = join(dir, String(f));
    if (statSync(p).isFile()) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** Builds the jar if needed; returns a reason to skip, or null. */
function buildJar(): string | null {
  for (const tool of ['java', 'mvn']) {
    const r = spawnSync(tool, ['-version'], { encoding: 'utf8' });
    if (r.error || r.status !== 0)
      return `${tool} is not available (${r.error?.message ?? `exit ${r.status}`})`;
  }
  if (existsSync(JAR) && statSync(JAR).mtimeMs >= newestSource(join(PROJECT, 'src'))) return null;
  let r = spawnSync('mvn', ['-q', '-B', '-o', 'package'], {
    cwd: PROJECT,
    encoding: 'utf8',
    timeout: 300_000,
  });
  if (r.status !== 0) {
    console.warn('kip848-java: offline Maven build failed, trying online');
    r = spawnSync('mvn', ['-q', '-B', 'package'], { cwd: PROJECT, encoding: 'utf8', timeout: 600_000 });
  }
  if (r.status !== 0 || !existsSync(JAR))
    return `could not build ${PROJECT}: ${(r.stdout ?? '').slice(-2000)}${(r.stderr ?? '').slice(-2000)}`;
  return null;
}

interface JavaEvent {
  type: 'started' | 'assigned' | 'revoked' | 'lost' | 'record' | 'closed';
  partitions?: number[];
  partition?: number;
  offset?: number;
  value?: string;
}

class JavaConsumer {
  readonly events: JavaEvent[] = [];
  readonly owned = new Set<number>();
  readonly seen = new Set<string>();
  output = '';
  private buffer = '';
  private readonly child: ChildProcess;
  readonly exited: Promise<number | null>;

  constructor(
    readonly name: string,
    bootstrap: string,
    private readonly onEvent: (c: JavaConsumer, e: JavaEvent) => void,
  ) {
    this.child = spawn('java', ['-jar', JAR, bootstrap, TOPIC, GROUP, name], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
    this.child.stdout?.on('data', (d: Buffer) => {
      this.buffer += d.toString();
      let nl = this.buffer.indexOf('\n');
      while (nl >= 0) {
        const line = this.buffer.slice(0, nl).trim();
        this.buffer = this.buffer.slice(nl + 1);
        if (line.startsWith('{')) this.handle(JSON.parse(line) as JavaEvent);
        else if (line) this.output += `${line}\n`;
        nl = this.buffer.indexOf('\n');
      }
    });
    this.child.stderr?.on('data', (d: Buffer) => {
      this.output += d.toString();
      if (this.output.length > 200_000) this.output = this.output.slice(-100_000);
    });
  }

  private handle(e: JavaEvent): void {
    this.events.push(e);
    if (e.type === 'assigned') for (const p of e.partitions ?? []) this.owned.add(p);
    if (e.type === 'revoked' || e.type === 'lost') for (const p of e.partitions ?? []) this.owned.delete(p);
    if (e.type === 'record' && e.value !== undefined) this.seen.add(e.value);
    this.onEvent(this, e);
  }

  close(): void {
    this.child.stdin?.write('close\n');
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

async function waitFor(
  what: string,
  timeoutMs: number,
  fn: () => boolean,
  debug: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${debug()}`);
    await sleep(100);
  }
}

const skipReason = buildJar();
if (skipReason) console.warn(`\n*** SKIPPING test/kip848-java.test.ts: ${skipReason} ***\n`);

let broker: BrokerProcess;
let kafka: KafkaClient;
let admin: Admin;
let producer: Producer;
const consumers: JavaConsumer[] = [];

describe(
  'KIP-848: Java consumer 4.4.0 with group.protocol=consumer',
  { skip: skipReason ?? false, timeout: 240_000 },
  () => {
    before(async () => {
      broker = await BrokerProcess.start();
      kafka = new Kafka({ clientId: 'kip848-it', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
      admin = kafka.admin();
      await admin.connect();
      producer = kafka.producer();
      await producer.connect();
    });

    after(async () => {
      for (const c of consumers) c.kill();
      await producer?.disconnect().catch(() => {});
      await admin?.disconnect().catch(() => {});
      await broker?.destroy();
    });

    const produce = async (from: number, count: number) => {
      const messages = [];
      for (let i = from; i < from + count; i++) messages.push({ partition: i % 6, value: `v${i}` });
      await producer.send({ topic: TOPIC, messages });
    };

    test('two consumers split 6 partitions; when one leaves the other takes all 6 without stopping', async () => {
      await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 6 }] });
      await produce(0, 120);

      const overlaps: string[] = [];
      const check = () => {
        const [a, b] = consumers;
        if (!a || !b) return;
        for (const p of a.owned)
          if (b.owned.has(p))
            overlaps.push(`partition ${p} owned by both at event ${a.events.length}/${b.events.length}`);
      };
      const debug = () =>
        consumers
          .map(
            (c) =>
              `${c.name}: owned=[${[...c.owned].sort()}] seen=${c.seen.size}\n  events=${JSON.stringify(c.events.filter((e) => e.type !== 'record'))}\n  log=${c.output.slice(-3000)}`,
          )
          .join('\n') + `\nbroker: ${broker.output.slice(-3000)}`;

      const a = new JavaConsumer('kip848-a', broker.bootstrap, check);
      consumers.push(a);
      await waitFor('consumer a to own all 6 partitions', 60_000, () => a.owned.size === 6, debug);
      const b = new JavaConsumer('kip848-b', broker.bootstrap, check);
      consumers.push(b);
      await waitFor(
        'a and b to split the 6 partitions',
        60_000,
        () => a.owned.size > 0 && b.owned.size > 0 && a.owned.size + b.owned.size === 6,
        debug,
      );
      assert.deepEqual(overlaps, []);
      assert.deepEqual([...new Set([...a.owned, ...b.owned])].sort(), [0, 1, 2, 3, 4, 5]);
      assert.ok(
        Math.abs(a.owned.size - b.owned.size) <= 0,
        `uniform assignor balances 3/3: ${a.owned.size}/${b.owned.size}`,
      );

      await produce(120, 60);
      const all = (n: number) => Array.from({ length: n }, (_, i) => `v${i}`);
      await waitFor(
        'every record to be consumed',
        60_000,
        () => all(180).every((v) => a.seen.has(v) || b.seen.has(v)),
        debug,
      );

      // The group through the admin API: ListGroups v5 says it is a consumer group.
      const listed = await admin.listGroups();
      const g = listed.groups.find((x) => x.groupId === GROUP);
      assert.ok(g, `group listed: ${JSON.stringify(listed)}`);
      assert.equal(g.protocolType, 'consumer');

      // b leaves; a must get b's partitions and keep its own (no revocation).
      const aBefore = new Set(a.owned);
      const aEventsBefore = a.events.length;
      b.close();
      await waitFor('b to close', 30_000, () => b.events.some((e) => e.type === 'closed'), debug);
      await waitFor('a to own all 6 partitions after b left', 60_000, () => a.owned.size === 6, debug);
      const aAfter = a.events.slice(aEventsBefore).filter((e) => e.type === 'revoked' || e.type === 'lost');
      assert.deepEqual(
        aAfter.filter((e) => (e.partitions ?? []).length > 0),
        [],
        `a kept consuming its partitions ${[...aBefore]} while taking over`,
      );
      assert.deepEqual(overlaps, []);

      await produce(180, 60);
      await waitFor(
        'a to consume records produced after b left',
        60_000,
        () =>
          all(240)
            .slice(180)
            .every((v) => a.seen.has(v)),
        debug,
      );
      a.close();
      await waitFor('a to close', 30_000, () => a.events.some((e) => e.type === 'closed'), debug);
    });
  },
);
