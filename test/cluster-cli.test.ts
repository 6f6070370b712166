/**
 * Goal: the cluster commands of the `sluice` CLI work end to end: `sluice dev cluster --nodes 3`
 * starts three nodes and prints the bootstrap servers; `sluice cluster status` names the three
 * nodes and the quorum leader and exits 0; `topic create --replication-factor 3` makes a topic
 * that `topic describe` shows with three replicas per partition; a node killed under the dev
 * cluster is reported (the others keep running) and `cluster status` then exits 2; Ctrl-C
 * (SIGINT) stops every node and the dev cluster exits 0.
 *
 * Method: the CLI compiled by test/helpers/broker-process.ts (test/.build/<hash>), run through
 * test/helpers/sluice-runner.mjs, each command its own process. The dev cluster gets a random
 * base port in 20000-40000 (another is tried when one of its six ports is taken) and a fresh
 * data dir; node pids come from its "[dev] node N: pid P" lines, so the test can check that each
 * node process is gone at the end.
 */

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO_ROOT, ensureBuilt } from './helpers/broker-process.js';

const RUNNER = join(REPO_ROOT, 'test', 'helpers', 'sluice-runner.mjs');
const TOPIC = 'cli-rf3';
const DEV_READY_TIMEOUT_MS = 90_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

let buildDir: string;
let dataDir: string;
let dev: ChildProcess | null = null;
let devOut = '';
let devExit: Promise<number | null> = Promise.resolve(null);
let bootstrap = '';
const nodePids = new Map<number, number>();

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function mainJs(): string {
  return join(buildDir, 'cli', 'main.js');
}

async function sluice(args: string[], timeoutMs = 60_000): Promise<RunResult> {
  const child = spawn(process.execPath, [RUNNER, mainJs(), ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((res) => child.once('close', (c) => res(c)));
  clearTimeout(t);
  return { code, stdout, stderr };
}

async function waitFor<T>(
  what: string,
  timeoutMs: number,
  fn: () => Promise<T | null | undefined | false>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(250);
  }
}

function portFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = net.createServer();
    s.once('error', () => res(false));
    s.listen(port, '127.0.0.1', () => s.close(() => res(true)));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts `sluice dev cluster --nodes 3`; resolves with its ready line, or null when a port was taken. */
async function startDev(basePort: number): Promise<string | null> {
  devOut = '';
  nodePids.clear();
  const child = spawn(
    process.execPath,
    [
      RUNNER,
      mainJs(),
      'dev',
      'cluster',
      '--nodes',
      '3',
      '--base-port',
      String(basePort),
      '--data-dir',
      dataDir,
    ],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  dev = child;
  devExit = new Promise((res) => child.once('close', (code) => res(code)));
  const onData = (d: Buffer) => {
    devOut += d.toString();
    for (const m of devOut.matchAll(/^\[dev\] node (\d+): pid (\d+)/gm))
      nodePids.set(Number(m[1]), Number(m[2]));
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = devExit.then((code) => ({ code }));
  const deadline = Date.now() + DEV_READY_TIMEOUT_MS;
  for (;;) {
    const m = /^Sluice dev cluster ready: .*$/m.exec(devOut);
    if (m) return m[0];
    const done = await Promise.race([exited, sleep(100).then(() => null)]);
    if (done) {
      if (/in use/.test(devOut)) return null;
      throw new Error(
        `sluice dev cluster exited (code ${done.code}) before it was ready; output:\n${devOut}`,
      );
    }
    if (Date.now() > deadline) {
      child.kill('SIGINT');
      throw new Error(
        `sluice dev cluster printed no ready line within ${DEV_READY_TIMEOUT_MS} ms; output:\n${devOut}`,
      );
    }
  }
}

describe('sluice dev cluster / cluster status / topic describe', { timeout: 300_000 }, () => {
  before(async () => {
    buildDir = await ensureBuilt();
    dataDir = mkdtempSync(join(tmpdir(), 'sluice-dev-cluster-'));
  });

  after(async () => {
    if (dev && dev.exitCode === null && dev.signalCode === null) {
      dev.kill('SIGINT');
      await Promise.race([devExit, sleep(15_000)]);
    }
    for (const pid of nodePids.values()) if (alive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('starts 3 nodes and prints the bootstrap servers', { timeout: 150_000 }, async () => {
    let ready: string | null = null;
    for (let attempt = 0; ready === null; attempt++) {
      assert.ok(attempt < 8, 'found a free base port');
      const base = 20_000 + Math.floor(Math.random() * 19_800);
      const ports = [0, 1, 2, 100, 101, 102].map((d) => base + d);
      if (!(await Promise.all(ports.map(portFree))).every(Boolean)) continue;
      ready = await startDev(base);
      if (ready === null) continue;
      bootstrap = `127.0.0.1:${base},127.0.0.1:${base + 1},127.0.0.1:${base + 2}`;
    }
    assert.ok(ready.includes(`bootstrap servers ${bootstrap}`), ready);
    assert.ok(ready.includes(`sluice cluster status --bootstrap ${bootstrap}`), ready);
    assert.deepEqual([...nodePids.keys()].sort(), [1, 2, 3], devOut);
    for (const id of [1, 2, 3])
      assert.match(
        devOut,
        new RegExp(`^\\[node ${id}\\] Sluice ready on .*node ${id} of a 3-voter cluster`, 'm'),
      );
  });

  test('cluster status names 3 nodes and a quorum leader, exit code 0', { timeout: 60_000 }, async () => {
    const r = await waitFor('a healthy cluster status', 30_000, async () => {
      const x = await sluice(['cluster', 'status', '--bootstrap', bootstrap]);
      return x.code === 0 ? x : null;
    }).catch(async (err: Error) => {
      const last = await sluice(['cluster', 'status', '--bootstrap', bootstrap]);
      throw new Error(`${err.message}; last status (exit ${last.code}):\n${last.stdout}${last.stderr}`);
    });
    assert.match(r.stdout, /^Nodes \(3 live of 3\):$/m, r.stdout);
    for (const id of [1, 2, 3])
      assert.match(r.stdout, new RegExp(`^ {2}${id} +127\\.0\\.0\\.1:\\d+ +- +live`, 'm'), r.stdout);
    const leader = /^Quorum \(__cluster_metadata-0\): leader node (\d+), epoch (\d+)/m.exec(r.stdout);
    assert.ok(leader, r.stdout);
    assert.ok([1, 2, 3].includes(Number(leader[1])), r.stdout);
    assert.match(r.stdout, new RegExp(`^ {2}${leader[1]} +leader `, 'm'), r.stdout);
    assert.match(r.stdout, /^Status: healthy$/m);
  });

  test(
    'topic create --replication-factor 3; topic describe shows 3 replicas',
    { timeout: 60_000 },
    async () => {
      const created = await sluice([
        'topic',
        'create',
        TOPIC,
        '--partitions',
        '3',
        '--replication-factor',
        '3',
        '--bootstrap',
        bootstrap,
      ]);
      assert.equal(
        created.code,
        0,
        `topic create exited ${created.code}:\n${created.stdout}${created.stderr}`,
      );
      assert.match(created.stdout, /Created topic cli-rf3 \(3 partitions, replication factor 3\)/);

      const text = await sluice(['topic', 'describe', TOPIC, '--bootstrap', bootstrap]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /Partitions: 3 {2}ReplicationFactor: 3/);
      assert.match(text.stdout, /Partition\s+Leader\s+LeaderEpoch\s+Replicas\s+ISR\s+Offline/);
      const rows = text.stdout.split('\n').filter((l) => /^ {2}\d+ /.test(l));
      assert.equal(rows.length, 3, text.stdout);
      for (const row of rows) {
        const [, , , replicas] = row.trim().split(/\s+/);
        assert.deepEqual(replicas!.split(',').map(Number).sort(), [1, 2, 3], row);
      }

      const json = await sluice(['topic', 'describe', TOPIC, '--bootstrap', bootstrap, '--json']);
      const d = JSON.parse(json.stdout) as {
        partitions: { leader: number; replicas: number[]; isr: number[] }[];
      };
      for (const p of d.partitions) {
        assert.equal(p.replicas.length, 3);
        assert.ok(p.replicas.includes(p.leader));
      }
    },
  );

  test(
    'a killed node is reported, the others keep running, status exits 2',
    { timeout: 90_000 },
    async () => {
      const victim = 3;
      process.kill(nodePids.get(victim)!, 'SIGKILL');
      await waitFor('the dev cluster to report the exit', 10_000, async () =>
        new RegExp(`^\\[dev\\] node ${victim} exited unexpectedly`, 'm').test(devOut),
      );
      assert.ok(alive(nodePids.get(1)!) && alive(nodePids.get(2)!), 'the other nodes keep running');
      assert.equal(dev!.exitCode, null, 'the dev cluster keeps running');
      const others = bootstrap.split(',').slice(0, 2).join(',');
      const r = await waitFor('cluster status to report the lost node', 60_000, async () => {
        const x = await sluice(['cluster', 'status', '--bootstrap', others]);
        // Partitions go under-replicated (ISR shrink) before the controller fences the node
        // (broker.session.timeout.ms): wait for the node itself to be reported down.
        return x.code === 2 && new RegExp(`^ {2}${victim} +- +- +down`, 'm').test(x.stdout) ? x : null;
      });
      assert.match(r.stdout, new RegExp(`^ {2}${victim} +- +- +down`, 'm'), r.stdout);
      assert.match(r.stdout, /^Status: degraded: .*voter not a live broker/m, r.stdout);
    },
  );

  test('Ctrl-C stops every node and the dev cluster exits 0', { timeout: 60_000 }, async () => {
    dev!.kill('SIGINT');
    const code = await Promise.race([devExit, sleep(45_000).then(() => 'timeout' as const)]);
    assert.equal(code, 0, `dev cluster exit: ${code}; output:\n${devOut.slice(-3000)}`);
    assert.match(devOut, /^\[dev\] SIGINT: stopping 2 node\(s\)$/m);
    assert.match(devOut, /^\[dev\] all nodes stopped$/m);
    for (const [id, pid] of nodePids) assert.equal(alive(pid), false, `node ${id} (pid ${pid}) exited`);
  });
});
