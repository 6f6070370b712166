/**
 * Goal: the consumer-group commands of the `sluice` CLI work end to end against a real broker
 * process: two `sluice consume --group` processes split a 4-partition topic, commit as they go
 * and leave cleanly on Ctrl-C; `group describe` shows members, assignments and lag;
 * `group reset-offsets` plans without --execute, refuses while members are active, commits with
 * --execute, and a new member then re-reads everything; `group delete` and `group list`.
 *
 * Method: `sluice start --set group.initial.rebalance.delay.ms=0` through test/helpers/
 * broker-process.ts; every sluice command runs as its own process (the broker's compiled build,
 * through test/helpers/sluice-runner.mjs), the consumers are stopped with SIGINT.
 */

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BrokerProcess, REPO_ROOT } from './helpers/broker-process.js';

const RUNNER = join(REPO_ROOT, 'test', 'helpers', 'sluice-runner.mjs');
const TOPIC = 'gc-orders';
const GROUP = 'gc-group';
const RECORDS = 200;

let broker: BrokerProcess;
const children: ChildProcess[] = [];

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface Running {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

function start(args: string[], stdin = ''): Running {
  const child = spawn(process.execPath, [RUNNER, join(broker.buildDir, 'cli', 'main.js'), ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, SLUICE_BOOTSTRAP_SERVER: broker.bootstrap },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((res) => child.once('close', (code) => res(code)));
  child.stdin!.end(stdin);
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function sluice(args: string[], stdin = '', timeoutMs = 60_000): Promise<RunResult> {
  const r = start(args, stdin);
  const t = setTimeout(() => r.child.kill('SIGKILL'), timeoutMs);
  const code = await r.exited;
  clearTimeout(t);
  return { code, stdout: r.stdout(), stderr: r.stderr() };
}

async function ok(args: string[], stdin = ''): Promise<string> {
  const r = await sluice(args, stdin);
  assert.equal(r.code, 0, `sluice ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
  return r.stdout;
}

async function waitFor<T>(
  what: string,
  timeoutMs: number,
  fn: () => Promise<T | null | undefined | false>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last: ${(last as Error).message})` : ''}`,
      );
    await sleep(250);
  }
}

interface DescribeJson {
  groupId: string;
  state: string;
  protocolType: string;
  protocol: string;
  members: {
    memberId: string;
    clientId: string;
    host: string;
    assignment: { topic: string; partitions: number[] }[];
  }[];
  partitions: {
    topic: string;
    partition: number;
    committedOffset: number;
    logEndOffset: number;
    lag: number | null;
    memberId: string | null;
  }[];
}

async function describeGroup(): Promise<DescribeJson> {
  return JSON.parse(await ok(['group', 'describe', GROUP, '--json'])) as DescribeJson;
}

interface JsonRecord {
  partition: number;
  offset: number;
  key: string;
  value: string;
}

function records(stdout: string): JsonRecord[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as JsonRecord);
}

describe('sluice consume --group and sluice group', () => {
  before(async () => {
    broker = await BrokerProcess.start({ set: ['group.initial.rebalance.delay.ms=0'] });
    await ok(['topic', 'create', TOPIC, '--partitions', '4']);
    const lines = Array.from({ length: RECORDS }, (_, i) => `key-${i}:value-${i}`).join('\n');
    await ok(['produce', TOPIC, '--key-separator', ':'], `${lines}\n`);
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await broker?.destroy();
  });

  test('two members split the topic, commit as they go, describe shows zero lag, reset and re-read', async () => {
    const args = ['consume', TOPIC, '--group', GROUP, '--from-beginning', '--format', 'json'];
    const a = start(args);
    const b = start(args);

    // Both members in one stable generation with disjoint assignments covering all 4 partitions,
    // and every partition committed up to its log end (lag 0).
    const settled = await waitFor('two members with zero lag', 45_000, async () => {
      const d = await describeGroup();
      if (d.state !== 'Stable' || d.members.length !== 2) return null;
      const owned = d.members.flatMap((m) => m.assignment.flatMap((t) => t.partitions));
      if (owned.length !== 4 || d.members.some((m) => m.assignment.length === 0)) return null;
      if (d.partitions.length !== 4 || d.partitions.some((p) => p.lag !== 0)) return null;
      return d;
    });
    assert.equal(settled.protocolType, 'consumer');
    assert.ok(['range', 'roundrobin'].includes(settled.protocol), `assignor ${settled.protocol}`);
    const owned = settled.members.flatMap((m) => m.assignment.flatMap((t) => t.partitions)).sort();
    assert.deepEqual(owned, [0, 1, 2, 3], 'assignments are disjoint and cover every partition');
    for (const m of settled.members) {
      assert.equal(m.clientId, 'sluice-cli');
      assert.match(m.host, /127\.0\.0\.1/);
    }
    for (const p of settled.partitions) {
      assert.equal(p.committedOffset, p.logEndOffset, `partition ${p.partition} committed to its end`);
      assert.ok(p.memberId !== null, `partition ${p.partition} has an owner`);
    }
    const total = settled.partitions.reduce((s, p) => s + p.logEndOffset, 0);
    assert.equal(total, RECORDS);

    // The text form: a members table and a kafka-consumer-groups-like partition table.
    const text = await ok(['group', 'describe', GROUP]);
    assert.match(text, /State: Stable/);
    for (const m of settled.members) assert.ok(text.includes(m.memberId), `describe lists ${m.memberId}`);
    assert.match(
      text,
      /TOPIC\s+PARTITION\s+CURRENT-OFFSET\s+LOG-END-OFFSET\s+LAG\s+CONSUMER-ID\s+HOST\s+CLIENT-ID/,
    );

    // Every record was printed by exactly one of the two members.
    const seen = [...records(a.stdout()), ...records(b.stdout())];
    assert.equal(seen.length, RECORDS, 'each record printed once across the group');
    assert.equal(new Set(seen.map((r) => r.value)).size, RECORDS);

    // Resetting an active group is refused.
    const refused = await sluice([
      'group',
      'reset-offsets',
      GROUP,
      '--topic',
      TOPIC,
      '--to-earliest',
      '--execute',
    ]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /stop the group's consumers first/);

    // Ctrl-C: both commit, leave the group and exit 0; the group is empty at once (no session
    // timeout to wait for).
    const stoppedAt = Date.now();
    a.child.kill('SIGINT');
    b.child.kill('SIGINT');
    assert.equal(await a.exited, 0, a.stderr());
    assert.equal(await b.exited, 0, b.stderr());
    const empty = await describeGroup();
    assert.equal(empty.state, 'Empty');
    assert.equal(empty.members.length, 0);
    assert.ok(Date.now() - stoppedAt < 10_000, 'members left without waiting for the session timeout');
    for (const p of empty.partitions) assert.equal(p.committedOffset, p.logEndOffset);

    // Dry run: the plan, nothing changed.
    const dry = await sluice(['group', 'reset-offsets', GROUP, '--topic', TOPIC, '--to-earliest']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /GROUP\s+TOPIC\s+PARTITION\s+CURRENT-OFFSET\s+NEW-OFFSET/);
    for (const p of empty.partitions)
      assert.match(
        dry.stdout,
        new RegExp(`${GROUP}\\s+${TOPIC}\\s+${p.partition}\\s+${p.logEndOffset}\\s+0\\b`),
      );
    assert.match(dry.stderr, /Dry run/);
    assert.deepEqual(
      (await describeGroup()).partitions.map((p) => p.committedOffset),
      empty.partitions.map((p) => p.committedOffset),
      'a dry run commits nothing',
    );

    // --execute commits the plan.
    await ok(['group', 'reset-offsets', GROUP, '--topic', TOPIC, '--to-earliest', '--execute']);
    const reset = await describeGroup();
    for (const p of reset.partitions) {
      assert.equal(p.committedOffset, 0);
      assert.equal(p.lag, p.logEndOffset);
    }

    // A new member starts at the reset offsets (no --from-beginning needed) and re-reads all.
    const again = await sluice([
      'consume',
      TOPIC,
      '--group',
      GROUP,
      '--format',
      'json',
      '--max-messages',
      String(RECORDS),
    ]);
    assert.equal(again.code, 0, again.stderr);
    const reread = records(again.stdout);
    assert.equal(reread.length, RECORDS);
    assert.equal(new Set(reread.map((r) => r.value)).size, RECORDS);
    const after = await describeGroup();
    assert.equal(after.members.length, 0);
    for (const p of after.partitions) assert.equal(p.committedOffset, p.logEndOffset, 'its commits on exit');

    // list, delete, list.
    const listed = await ok(['group', 'list']);
    assert.match(listed, new RegExp(`^${GROUP}\\s+Empty\\s+consumer$`, 'm'));
    const listedJson = JSON.parse(await ok(['group', 'list', '--json'])) as { groupId: string }[];
    assert.ok(listedJson.some((g) => g.groupId === GROUP));
    assert.match(await ok(['group', 'delete', GROUP]), new RegExp(`Deleted group ${GROUP}`));
    assert.ok(!(await ok(['group', 'list'])).includes(GROUP), 'a deleted group is not listed');
    const gone = await sluice(['group', 'delete', GROUP]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /error: /);
  });

  test('usage errors: --offset/--partition with --group, reset without a spec', async () => {
    const r1 = await sluice(['consume', TOPIC, '--group', 'x', '--offset', '3']);
    assert.equal(r1.code, 1);
    assert.match(r1.stderr, /--offset cannot be used with --group/);
    const r2 = await sluice(['consume', TOPIC, '--group', 'x', '--partition', '1']);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /--partition cannot be used with --group/);
    const r3 = await sluice(['group', 'reset-offsets', 'x', '--topic', TOPIC]);
    assert.equal(r3.code, 1);
    assert.match(r3.stderr, /needs exactly one of --to-earliest/);
    const r4 = await sluice([
      'group',
      'reset-offsets',
      'x',
      '--topic',
      TOPIC,
      '--to-latest',
      '--to-earliest',
    ]);
    assert.equal(r4.code, 1);
  });
});
