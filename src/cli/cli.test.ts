/**
 * CLI tests: the built `sluice` binary against a broker started in-process.
 *
 * Goal: the commands people type work end to end and fail the way the docs promise (one line,
 * exit code 1, a hint to run `sluice start` when no broker listens).
 * Method: `npm run build` once, then spawn `node bin/sluice.js ...` with SLUICE_BOOTSTRAP_SERVER
 * pointing at the in-process broker; check exit codes, stdout and stderr.
 */

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Broker } from '../broker/broker.js';
import { partitionForKey } from '../client/partitioner.js';
import { startBroker } from './start.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'bin', 'sluice.js');

let broker: Broker;
let dataDir: string;
let bootstrap: string;

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(
  args: string[],
  options: { stdin?: string; env?: Record<string, string> } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, SLUICE_BOOTSTRAP_SERVER: bootstrap, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.stdin ?? '');
  });
}

function build(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', 'build'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`npm run build failed:\n${out}`)),
    );
  });
}

before(async () => {
  await build();
  dataDir = await mkdtemp(join(tmpdir(), 'sluice-cli-test-'));
  broker = await startBroker({ dataDir, listen: '127.0.0.1:0', metricsListen: '127.0.0.1:0' });
  bootstrap = `127.0.0.1:${broker.address.port}`;
});

after(async () => {
  await broker.stop();
  await rm(dataDir, { recursive: true, force: true });
});

describe('sluice topic', () => {
  it('create, list, describe, alter, delete', async () => {
    let r = await run([
      'topic',
      'create',
      'orders',
      '--partitions',
      '3',
      '--config',
      'retention.ms=86400000',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Created topic orders \(3 partitions/);

    r = await run(['topic', 'create', 'orders', '--partitions', '3']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    assert.match(r.stderr, /already exists/);

    r = await run(['topic', 'list']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.split('\n').includes('orders'));

    r = await run(['topic', 'list', '--json']);
    assert.ok(
      (JSON.parse(r.stdout) as { name: string; partitions: number }[]).some(
        (t) => t.name === 'orders' && t.partitions === 3,
      ),
    );

    r = await run(['topic', 'describe', 'orders']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Topic: orders .*Partitions: 3/);
    assert.match(
      r.stdout,
      /Partition\s+Leader\s+LeaderEpoch\s+Replicas\s+ISR\s+Offline\s+LogStartOffset\s+LogEndOffset/,
    );
    assert.match(r.stdout, /retention\.ms=86400000/);
    assert.doesNotMatch(r.stdout, /segment\.bytes/, 'default configs are not listed');

    r = await run(['topic', 'alter', 'orders', '--config', 'cleanup.policy=compact']);
    assert.equal(r.code, 0, r.stderr);
    r = await run(['topic', 'describe', 'orders', '--json']);
    const d = JSON.parse(r.stdout) as {
      partitions: { leader: number; replicas: number[]; isr: number[] }[];
      configs: Record<string, string>;
    };
    assert.equal(d.partitions.length, 3);
    assert.deepEqual(d.configs, { 'cleanup.policy': 'compact', 'retention.ms': '86400000' });
    assert.ok(d.partitions.every((p) => p.leader >= 0 && p.replicas.length === 1 && p.isr.length === 1));

    r = await run(['topic', 'alter', 'orders', '--config', 'no.such.config=1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: .*config/);

    r = await run(['topic', 'delete', 'orders']);
    assert.equal(r.code, 0, r.stderr);
    r = await run(['topic', 'list']);
    assert.ok(!r.stdout.split('\n').includes('orders'));

    r = await run(['topic', 'describe', 'orders']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /does not exist/);
  });
});

describe('sluice produce / consume', () => {
  it('produces stdin lines with --key-separator and consumes them back as JSON', async () => {
    let r = await run(['topic', 'create', 'lines', '--partitions', '2']);
    assert.equal(r.code, 0, r.stderr);
    const lines = Array.from({ length: 10 }, (_, i) => `user${i % 3}:event ${i}`);
    r = await run(['produce', 'lines', '--key-separator', ':', '--header', 'source=cli'], {
      stdin: `${lines.join('\n')}\n`,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Produced 10 records to lines/);
    assert.match(r.stderr, /partition \d offsets 0-\d/);

    r = await run(['consume', 'lines', '--from-beginning', '--max-messages', '10', '--format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const records = r.stdout
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as {
            topic: string;
            partition: number;
            offset: number;
            timestamp: number;
            key: string;
            value: string;
            headers: { key: string; value: string }[];
          },
      );
    assert.equal(records.length, 10);
    for (const rec of records) {
      assert.equal(rec.topic, 'lines');
      assert.equal(rec.partition, partitionForKey(Buffer.from(rec.key), 2));
      assert.ok(lines.includes(`${rec.key}:${rec.value}`), `${rec.key}:${rec.value} was a line`);
      assert.deepEqual(rec.headers, [{ key: 'source', value: 'cli' }]);
      assert.equal(typeof rec.timestamp, 'number');
    }
    assert.deepEqual(records.map((x) => x.value).sort(), lines.map((l) => l.split(':')[1]).sort());

    // Text format, one partition, from an offset; --timeout-ms ends the run.
    r = await run([
      'consume',
      'lines',
      '--partition',
      String(partitionForKey(Buffer.from('user0'), 2)),
      '--offset',
      '1',
      '--timeout-ms',
      '500',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const onPartition = records
      .filter((x) => x.partition === partitionForKey(Buffer.from('user0'), 2))
      .sort((a, b) => a.offset - b.offset);
    assert.deepEqual(
      r.stdout.trim().split('\n'),
      onPartition.slice(1).map((x) => x.value),
    );

    // Without --from-beginning it starts at the end: nothing old is printed.
    r = await run(['consume', 'lines', '--timeout-ms', '300']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
  });
});

describe('sluice errors', () => {
  it('no broker: one line that says to run `sluice start`, exit 1', async () => {
    const r = await run(['topic', 'list', '--bootstrap-server', '127.0.0.1:1']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.match(r.stderr, /no broker at 127\.0\.0\.1:1 — start one with `sluice start`/);
    assert.doesNotMatch(r.stderr, /\s+at\s+\S+\s+\(/, 'no stack trace');
  });

  it('unknown command or flag prints usage and exits 1', async () => {
    let r = await run(['frobnicate']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Usage: sluice/);
    r = await run(['consume', 'x', '--no-such-flag']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Usage: sluice consume/);
    r = await run(['produce']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /produce needs a TOPIC/);
  });
});
