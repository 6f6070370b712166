/**
 * Goal: librdkafka (kcat) producing with acks=all and idempotence to a 3-node cluster carries on
 * when the leader of a partition is SIGKILLed and when a leader is SIGSTOPped, and every record it
 * reports delivered is in the log exactly once.
 * Method: kcat -P reads lines from a pipe fed at a steady rate (one unique value per line, keyed);
 * the test kills the leader of partition 0 (restarting it later), then pauses the leader of
 * partition 1 for a few seconds. kcat exits 0 only when every message was delivered (it prints
 * a delivery error and exits non-zero otherwise). The final read from each partition's leader
 * must hold every value exactly once.
 */

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { BrokerProcess, freePort } from '../helpers/broker-process.js';
import { createTopic, readPartition } from '../helpers/read-partition.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const hasKcat = spawnSync('kcat', ['-V']).status === 0;
if (!hasKcat)
  console.warn('\n*** WARNING: kcat is not on PATH; test/kcat/kcat-cluster.test.ts is skipped ***\n');

const NODES = 3;
const TOPIC = 'kcat-replicated';
const nodes: BrokerProcess[] = [];

function kcatJson(args: string[]): unknown {
  const r = spawnSync(
    'kcat',
    [
      '-b',
      nodes
        .filter((n) => n.running)
        .map((n) => n.bootstrap)
        .join(','),
      ...args,
    ],
    {
      encoding: 'utf8',
      timeout: 20_000,
    },
  );
  if (r.status !== 0) throw new Error(`kcat ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

interface KcatMetadata {
  topics: { topic: string; partitions: { partition: number; leader: number; isrs: number[] }[] }[];
}

function leaders(): Map<number, { leader: number; isr: number[] }> {
  const md = kcatJson(['-L', '-J', '-t', TOPIC]) as KcatMetadata;
  const t = md.topics.find((x) => x.topic === TOPIC);
  return new Map((t?.partitions ?? []).map((p) => [p.partition, { leader: p.leader, isr: p.isrs }]));
}

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const v = probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

before(async () => {
  if (!hasKcat) return;
  const ports = await Promise.all(Array.from({ length: NODES * 2 }, () => freePort()));
  const voters = Array.from({ length: NODES }, (_, i) => `${i + 1}@127.0.0.1:${ports[NODES + i]}`).join(',');
  for (let i = 0; i < NODES; i++) {
    nodes.push(
      await BrokerProcess.start({
        port: ports[i]!,
        set: [
          `controller.quorum.voters=${voters}`,
          'cluster.id=kcat-cluster',
          'broker.session.timeout.ms=3000',
          'broker.heartbeat.interval.ms=500',
          'replica.lag.time.max.ms=4000',
          'controller.quorum.election.timeout.ms=500',
          `node.id=${i + 1}`,
          `controller.listen=127.0.0.1:${ports[NODES + i]}`,
        ],
      }),
    );
  }
});

after(async () => {
  for (const n of nodes) {
    n.signal('SIGCONT');
    await n.destroy();
  }
});

test(
  'kcat produces through a leader SIGKILL and a leader SIGSTOP; every delivered record is there once',
  { skip: !hasKcat },
  async () => {
    await waitFor('three brokers', () => {
      const md = kcatJson(['-L', '-J']) as { brokers: unknown[] };
      return md.brokers.length === NODES ? true : undefined;
    });
    // kcat cannot create topics: CreateTopics (replication factor 3) through the wire helper.
    await createTopic(nodes[0]!.port, TOPIC, 3, { 'min.insync.replicas': '2' }, undefined, 3);
    await waitFor('ISR of 3 everywhere', () => {
      const m = leaders();
      return m.size === 3 && [...m.values()].every((p) => p.leader > 0 && p.isr.length === 3) ? m : undefined;
    });

    const kcat = spawn(
      'kcat',
      [
        '-b',
        nodes.map((n) => n.bootstrap).join(','),
        '-P',
        '-t',
        TOPIC,
        '-K',
        ':',
        '-X',
        'acks=all',
        '-X',
        'enable.idempotence=true',
        '-X',
        'request.timeout.ms=5000',
        '-X',
        'message.timeout.ms=120000',
        '-X',
        'topic.metadata.refresh.interval.ms=1000',
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let stderr = '';
    kcat.stderr.setEncoding('utf8').on('data', (s: string) => {
      stderr += s;
    });
    const exited = new Promise<number | null>((resolve) => kcat.once('exit', (code) => resolve(code)));
    let sent = 0;
    let feeding = true;
    const feeder = (async () => {
      while (feeding) {
        const lines: string[] = [];
        for (let i = 0; i < 20; i++, sent++) lines.push(`k${sent}:v-${sent}`);
        kcat.stdin.write(`${lines.join('\n')}\n`);
        await sleep(50);
      }
      kcat.stdin.end();
    })();

    await sleep(3000);
    const victim = leaders().get(0)!.leader;
    await nodes[victim - 1]!.kill();
    await sleep(6000);
    await nodes[victim - 1]!.restart();
    await waitFor(
      'the restarted broker back in every ISR',
      () => {
        const m = leaders();
        return [...m.values()].every((p) => p.isr.length === 3) ? true : undefined;
      },
      60_000,
    );
    const paused = leaders().get(1)!.leader;
    nodes[paused - 1]!.signal('SIGSTOP');
    await sleep(8000);
    nodes[paused - 1]!.signal('SIGCONT');
    await sleep(3000);
    feeding = false;
    await feeder;
    const code = await Promise.race([exited, sleep(150_000).then(() => 'timeout' as const)]);
    assert.equal(code, 0, `kcat exited ${code}; stderr:\n${stderr.slice(-3000)}`);

    await waitFor(
      'every partition led and fully in sync',
      () => {
        const m = leaders();
        return [...m.values()].every((p) => p.leader > 0 && p.isr.length === 3) ? true : undefined;
      },
      60_000,
    );
    const m = leaders();
    const seen = new Map<string, number>();
    for (const [p, { leader }] of m) {
      const contents = await readPartition(nodes[leader - 1]!.port, TOPIC, p);
      for (const r of contents.records)
        seen.set(r.value!.toString(), (seen.get(r.value!.toString()) ?? 0) + 1);
    }
    const missing: string[] = [];
    const dup: string[] = [];
    for (let i = 0; i < sent; i++) {
      const n = seen.get(`v-${i}`) ?? 0;
      if (n === 0) missing.push(`v-${i}`);
      if (n > 1) dup.push(`v-${i}`);
    }
    assert.deepEqual(
      { missing: missing.slice(0, 20), dup: dup.slice(0, 20) },
      { missing: [], dup: [] },
      `of ${sent} delivered`,
    );
    console.log(
      `# kcat delivered ${sent} records through a SIGKILL of broker ${victim} and a SIGSTOP of broker ${paused}; all present once`,
    );
  },
);
