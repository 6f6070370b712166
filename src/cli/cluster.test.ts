/**
 * Goal: `sluice cluster status` judges and prints a cluster as documented in cluster.ts: healthy
 * when every voter is a live broker, the quorum has a leader and every partition has its full
 * ISR; degraded (with the reasons) otherwise; a single node without a quorum is healthy. Also
 * `topic describe`'s partition table (leader epoch, offline replicas, the problem partitions).
 * Method: assessCluster / formatClusterStatus / describeLines on hand-built states, fixed clock.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { QuorumDescription, TopicDescription } from '../client/index.js';
import { type ClusterStatus, ago, assessCluster, formatClusterStatus } from './cluster.js';
import { describeLines } from './topic.js';

const NOW = 1_700_000_000_000;

function broker(id: number) {
  return { nodeId: id, host: '127.0.0.1', port: 19091 + id, rack: id === 3 ? 'r3' : null };
}

function quorum(overrides: Partial<QuorumDescription> = {}): QuorumDescription {
  return {
    leaderId: 2,
    leaderEpoch: 4,
    highWatermark: 120,
    voters: [
      { nodeId: 1, logEndOffset: 118, lastFetchTimestamp: NOW - 35, lastCaughtUpTimestamp: NOW - 2_400 },
      { nodeId: 2, logEndOffset: 120, lastFetchTimestamp: NOW, lastCaughtUpTimestamp: NOW },
      { nodeId: 3, logEndOffset: 120, lastFetchTimestamp: NOW - 80, lastCaughtUpTimestamp: NOW - 80 },
    ],
    observers: [],
    ...overrides,
  };
}

function healthy(): ClusterStatus {
  return {
    cluster: { clusterId: 'abc', controllerId: 2, brokers: [broker(1), broker(2), broker(3)] },
    quorum: { kind: 'ok', quorum: quorum() },
    topicCount: 1,
    partitions: [0, 1].map((p) => ({
      topic: 'orders',
      partition: p,
      leader: p + 1,
      replicas: [1, 2, 3],
      isr: [1, 2, 3],
      offlineReplicas: [],
    })),
  };
}

describe('assessCluster and formatClusterStatus', () => {
  it('a healthy 3-node cluster: nodes, quorum with lag and ages, no problem partitions', () => {
    const s = healthy();
    const h = assessCluster(s);
    assert.equal(h.healthy, true);
    assert.deepEqual(h.problems, []);
    const text = formatClusterStatus(s, h, NOW);
    assert.equal(
      text,
      [
        'Cluster abc  controller: node 2',
        'Nodes (3 live of 3):',
        '  Id  Address          Rack  Status',
        '  1   127.0.0.1:19092  -     live',
        '  2   127.0.0.1:19093  -     live, controller',
        '  3   127.0.0.1:19094  r3    live',
        'Quorum (__cluster_metadata-0): leader node 2, epoch 4, high watermark 120',
        '  Node  Role      LogEndOffset  Lag  LastFetch  LastCaughtUp',
        '  1     follower  118           2    35 ms ago  2.4 s ago',
        '  2     leader    120           0    -          -',
        '  3     follower  120           0    80 ms ago  80 ms ago',
        'Partitions: 2 in 1 topic, all fully replicated',
        'Status: healthy',
      ].join('\n'),
    );
  });

  it('a node down: the voter shows as down, its partitions under-replicated or offline', () => {
    const s = healthy();
    s.cluster.brokers = [broker(1), broker(2)];
    s.quorum = {
      kind: 'ok',
      quorum: quorum({
        voters: [
          ...quorum().voters.slice(0, 2),
          { nodeId: 3, logEndOffset: 90, lastFetchTimestamp: NOW - 61_000, lastCaughtUpTimestamp: -1 },
        ],
      }),
    };
    s.partitions = [
      { topic: 'orders', partition: 0, leader: 1, replicas: [1, 3], isr: [1], offlineReplicas: [3] },
      { topic: 'orders', partition: 1, leader: -1, replicas: [3], isr: [3], offlineReplicas: [3] },
    ];
    const h = assessCluster(s);
    assert.equal(h.healthy, false);
    assert.deepEqual(h.downNodes, [3]);
    assert.deepEqual(
      h.underReplicated.map((p) => p.partition),
      [0],
    );
    assert.deepEqual(
      h.offline.map((p) => p.partition),
      [1],
    );
    const text = formatClusterStatus(s, h, NOW);
    assert.match(text, /Nodes \(2 live of 3\):/);
    assert.match(text, /\n {2}3 {3}- +- +down \(not a live broker\)\n/);
    assert.match(text, /\n {2}3 +follower +90 +30 +1 min ago +-\n/);
    assert.match(
      text,
      /Offline partitions \(1\):\n {2}Topic +Partition +Leader +Replicas +ISR +Offline\n {2}orders +1 +none +3 +3 +3\n/,
    );
    assert.match(text, /Under-replicated partitions \(1\):\n.*\n {2}orders +0 +1 +1,3 +1 +3(\n|$)/);
    assert.match(
      text,
      /Status: degraded: 1 voter not a live broker \(3\); 1 partition under-replicated; 1 partition offline$/,
    );
  });

  it('a single node without a quorum is healthy', () => {
    const s: ClusterStatus = {
      cluster: { clusterId: 'solo', controllerId: 1, brokers: [broker(1)] },
      quorum: { kind: 'none', reason: 'a single node, not part of a replicated cluster' },
      topicCount: 0,
      partitions: [],
    };
    const h = assessCluster(s);
    assert.equal(h.healthy, true);
    const text = formatClusterStatus(s, h, NOW);
    assert.match(text, /Quorum: none \(a single node, not part of a replicated cluster\)/);
    assert.match(text, /Partitions: 0 in 0 topics, all fully replicated\nStatus: healthy$/);
  });

  it('a quorum without a leader is degraded', () => {
    const s = healthy();
    s.quorum = { kind: 'unavailable', reason: 'NOT_LEADER_OR_FOLLOWER' };
    const h = assessCluster(s);
    assert.equal(h.healthy, false);
    assert.match(
      formatClusterStatus(s, h, NOW),
      /Status: degraded: no quorum leader \(NOT_LEADER_OR_FOLLOWER\)$/,
    );
  });
});

describe('ago', () => {
  it('prints ages in ms, s and min; unknown as -', () => {
    assert.equal(ago(NOW, -1), '-');
    assert.equal(ago(NOW, NOW + 5), '0 ms ago', 'a leader clock slightly ahead is not negative');
    assert.equal(ago(NOW, NOW - 999), '999 ms ago');
    assert.equal(ago(NOW, NOW - 12_640), '12.6 s ago');
    assert.equal(ago(NOW, NOW - 185_000), '3 min ago');
  });
});

describe('topic describe (describeLines)', () => {
  const d: TopicDescription = {
    name: 'orders',
    topicId: 'id',
    isInternal: false,
    configs: [],
    partitions: [
      {
        partition: 0,
        leader: 2,
        leaderEpoch: 3,
        replicas: [2, 3, 1],
        isr: [2, 3, 1],
        offlineReplicas: [],
        logStartOffset: 0,
        logEndOffset: 10,
      },
      {
        partition: 1,
        leader: 3,
        leaderEpoch: 1,
        replicas: [3, 1, 2],
        isr: [3, 2],
        offlineReplicas: [1],
        logStartOffset: 0,
        logEndOffset: 7,
      },
      {
        partition: 2,
        leader: -1,
        leaderEpoch: 5,
        replicas: [1],
        isr: [1],
        offlineReplicas: [1],
        logStartOffset: -1,
        logEndOffset: -1,
      },
    ],
  };

  it('shows leader, leader epoch, replicas, ISR and offline replicas per partition', () => {
    assert.deepEqual(describeLines(d), [
      'Topic: orders  TopicId: id  Partitions: 3  ReplicationFactor: 3',
      [
        '  Partition  Leader  LeaderEpoch  Replicas  ISR    Offline  LogStartOffset  LogEndOffset',
        '  0          2       3            2,3,1     2,3,1  -        0               10',
        '  1          3       1            3,1,2     3,2    1        0               7',
        '  2          none    5            1         1      1        -               -',
      ].join('\n'),
      'Offline partitions (no leader): 2',
      'Under-replicated partitions (ISR smaller than replicas): 1',
    ]);
  });
});
