/**
 * Goal: `sluice start`'s cluster flags become Kafka's settings (--voters is
 * controller.quorum.voters, --controller-listen is controller.listen, ...), bad voter lists fail
 * with a message that names the problem, and the ready line says single node or node N of a
 * K-voter cluster.
 * Method: startSettings and applySettings on fixed flags; readyLine on fixed input.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, applySettings, defaultBrokerConfig } from '../broker/config.js';
import { readyLine, startSettings } from './start.js';

const VOTERS = '1@127.0.0.1:19192,2@127.0.0.1:19193,3@127.0.0.1:19194';

describe('startSettings', () => {
  it('maps each flag to its Kafka setting, --set last', () => {
    const s = startSettings({
      nodeId: '2',
      listen: '127.0.0.1:19093',
      controllerListen: '127.0.0.1:19193',
      voters: VOTERS,
      dataDir: 'd/node-2',
      set: ['cluster.id=abc', 'node.id=7'],
    });
    assert.deepEqual(Object.fromEntries(s), {
      'node.id': '7',
      listeners: '127.0.0.1:19093',
      'controller.listen': '127.0.0.1:19193',
      'controller.quorum.voters': VOTERS,
      'log.dirs': 'd/node-2',
      'cluster.id': 'abc',
    });
  });

  it('gives a cluster config: voters, this node, its controller address', () => {
    const cfg = applySettings(
      defaultBrokerConfig(),
      startSettings({ nodeId: '2', voters: VOTERS, listen: '127.0.0.1:19093' }),
    );
    assert.equal(cfg.nodeId, 2);
    assert.deepEqual(
      cfg.voters.map((v) => `${v.id}@${v.host}:${v.port}`),
      VOTERS.split(','),
    );
    // Without --controller-listen the node binds its own voter entry.
    assert.deepEqual([cfg.controllerHost, cfg.controllerPort], ['127.0.0.1', 19193]);
    const own = applySettings(
      defaultBrokerConfig(),
      startSettings({ nodeId: '2', voters: VOTERS, controllerListen: '0.0.0.0:29193' }),
    );
    assert.deepEqual([own.controllerHost, own.controllerPort], ['0.0.0.0', 29193]);
  });

  it('rejects voter lists that cannot work, saying why', () => {
    const cases: [string, string, RegExp][] = [
      ['1', '1@127.0.0.1', /must be HOST:PORT/],
      ['1', '127.0.0.1:19192', /ID@HOST:PORT/],
      ['1', '1@a:1,1@b:2', /names node 1 twice/],
      ['4', VOTERS, /does not name this node \(node\.id 4\)/],
    ];
    for (const [nodeId, voters, message] of cases)
      assert.throws(
        () => applySettings(defaultBrokerConfig(), startSettings({ nodeId, voters })),
        (err: unknown) => err instanceof ConfigError && message.test(err.message),
        voters,
      );
    assert.throws(() => startSettings({ set: ['novalue'] }), ConfigError);
  });
});

describe('readyLine', () => {
  const base = {
    address: { host: '127.0.0.1', port: 19092 },
    nodeId: 1,
    clusterId: 'F3seLp3qL3qtm31mzQLwlA',
    dataDir: 'd/node-1',
    elapsedMs: 41.6,
  };

  it('says single node when there are no voters', () => {
    assert.equal(
      readyLine({ ...base, voterCount: 0, metrics: { host: '127.0.0.1', port: 9464 } }),
      'Sluice ready on 127.0.0.1:19092 (single node, node id 1, cluster id F3seLp3qL3qtm31mzQLwlA, data d/node-1, metrics http://127.0.0.1:9464/metrics) in 42 ms',
    );
  });

  it('says node N of a K-voter cluster, with its controller address', () => {
    assert.equal(
      readyLine({ ...base, voterCount: 3, controller: { host: '127.0.0.1', port: 19192 } }),
      'Sluice ready on 127.0.0.1:19092 (node 1 of a 3-voter cluster, cluster id F3seLp3qL3qtm31mzQLwlA, controller 127.0.0.1:19192, data d/node-1) in 42 ms',
    );
  });
});
