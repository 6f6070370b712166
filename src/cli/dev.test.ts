/**
 * Goal: `sluice dev cluster` plans what it promises — node ids 1..N, client ports base..,
 * controller ports base+100.., data dirs <dir>/node-<id>, one voter list and one cluster id for
 * all, user settings after its own — and refuses impossible plans with a usage error; the CLI
 * entry it re-runs is what started it.
 * Method: the pure functions (planDevCluster, devClusterId, devReadyLine, cliEntry) on fixed input.
 */

import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { parseVoters } from '../broker/config.js';
import { UsageError } from './common.js';
import { cliEntry, devClusterId, devReadyLine, planDevCluster } from './dev.js';

function flag(args: string[], name: string): string[] {
  const out: string[] = [];
  args.forEach((a, i) => {
    if (a === name) out.push(args[i + 1]!);
  });
  return out;
}

describe('planDevCluster', () => {
  const plan = planDevCluster({ nodes: 3, basePort: 19092, dataDir: 'dev-data', set: ['num.partitions=3'] });

  it('gives node ids 1..N, client ports from the base, controller ports 100 above', () => {
    assert.deepEqual(
      plan.map((n) => [n.id, n.clientPort, n.controllerPort, n.dataDir]),
      [
        [1, 19092, 19192, join('dev-data', 'node-1')],
        [2, 19093, 19193, join('dev-data', 'node-2')],
        [3, 19094, 19194, join('dev-data', 'node-3')],
      ],
    );
  });

  it('starts every node with the same voters and cluster id, each with its own flags', () => {
    const voters = plan.map((n) => flag(n.args, '--voters')[0]!);
    assert.equal(new Set(voters).size, 1);
    assert.deepEqual(parseVoters('--voters', voters[0]!), [
      { id: 1, host: '127.0.0.1', port: 19192 },
      { id: 2, host: '127.0.0.1', port: 19193 },
      { id: 3, host: '127.0.0.1', port: 19194 },
    ]);
    for (const n of plan) {
      assert.equal(n.args[0], 'start');
      assert.deepEqual(flag(n.args, '--node-id'), [String(n.id)]);
      assert.deepEqual(flag(n.args, '--listen'), [`127.0.0.1:${n.clientPort}`]);
      assert.deepEqual(flag(n.args, '--controller-listen'), [`127.0.0.1:${n.controllerPort}`]);
      assert.deepEqual(flag(n.args, '--data-dir'), [n.dataDir]);
      assert.deepEqual(
        flag(n.args, '--metrics-listen'),
        ['127.0.0.1:0'],
        'no clash on the default metrics port',
      );
      // The user's --set comes after the cluster id, so it could override it.
      assert.deepEqual(flag(n.args, '--set'), [`cluster.id=${devClusterId('dev-data')}`, 'num.partitions=3']);
    }
  });

  it('refuses node counts and base ports it cannot honour', () => {
    for (const o of [
      { nodes: 0, basePort: 19092 },
      { nodes: 17, basePort: 19092 },
      { nodes: 3, basePort: 65500 },
      { nodes: 3, basePort: 0 },
    ])
      assert.throws(() => planDevCluster({ ...o, dataDir: 'd', set: [] }), UsageError, JSON.stringify(o));
  });
});

describe('devClusterId', () => {
  it('is a Kafka-style id (22 base64url chars), stable for a data dir, different for another', () => {
    const id = devClusterId('dev-data');
    assert.match(id, /^[A-Za-z0-9_-]{22}$/);
    assert.equal(devClusterId(resolve('dev-data')), id, 'relative and absolute spellings agree');
    assert.notEqual(devClusterId('other-data'), id);
  });
});

describe('devReadyLine', () => {
  it('names every bootstrap server and the status command', () => {
    const plan = planDevCluster({ nodes: 3, basePort: 19092, dataDir: 'd', set: [] });
    const line = devReadyLine(plan);
    assert.ok(!line.includes('\n'));
    assert.match(line, /^Sluice dev cluster ready: 3 nodes/);
    assert.ok(line.includes('127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094'));
    assert.ok(line.includes('sluice cluster status --bootstrap 127.0.0.1:19092'));
  });
});

describe('cliEntry', () => {
  it('is process.argv without the arguments main() got, after the loader flags', () => {
    const argv = ['dev', 'cluster', '--nodes', '3'];
    assert.deepEqual(cliEntry(argv, ['/usr/bin/node', '/x/bin/sluice.js', ...argv], []), [
      '/x/bin/sluice.js',
    ]);
    assert.deepEqual(
      cliEntry(
        argv,
        ['/usr/bin/node', '/x/runner.mjs', '/x/build/cli/main.js', ...argv],
        ['--import', 'tsx'],
      ),
      ['--import', 'tsx', '/x/runner.mjs', '/x/build/cli/main.js'],
    );
  });

  it('leaves out debugger and test-runner flags', () => {
    assert.deepEqual(
      cliEntry(['dev'], ['/usr/bin/node', '/x/bin/sluice.js', 'dev'], ['--inspect=9229', '--test-only']),
      ['/x/bin/sluice.js'],
    );
  });

  it('falls back to bin/sluice.js when main() was called with other arguments', () => {
    const entry = cliEntry(['dev', 'cluster'], ['/usr/bin/node', '/x/other.js'], []);
    assert.equal(entry.length, 1);
    assert.match(entry[0]!, /bin[/\\]sluice\.js$/);
  });
});
