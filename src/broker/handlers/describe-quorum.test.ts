/**
 * Goal: DescribeQuorum answers as documented in describe-quorum.ts: outside a cluster an error
 * in every version (INVALID_REQUEST, with a message from v2); a one-voter cluster describes its
 * quorum (this node the leader, high watermark = commit index, v2 controller listeners); a wrong
 * partition is UNKNOWN_TOPIC_OR_PARTITION; the leader's answer maps follower progress to Kafka's
 * fields (pure function, fed a made-up Raft status).
 * Method: in-process brokers on port 0, requests over a real Connection in each version; the
 * Admin client's describeQuorum for the client side.
 */

import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Admin, Connection, KafkaResponseError } from '../../client/index.js';
import { ErrorCode } from '../../protocol/errors.js';
import { ApiKey } from '../../protocol/generated/index.js';
import type { RaftStatus } from '../../raft/driver.js';
import type { Broker } from '../broker.js';
import { startInProcessBroker } from '../in-process.js';
import { METADATA_TOPIC, quorumResponse } from './describe-quorum.js';

const REQUEST = { topics: [{ topicName: METADATA_TOPIC, partitions: [{ partitionIndex: 0 }] }] };

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('DescribeQuorum outside a cluster', () => {
  let broker: Broker;
  let conn: Connection;

  before(async () => {
    broker = await startInProcessBroker();
    conn = await Connection.connect({ host: '127.0.0.1', port: broker.address.port });
  });

  after(async () => {
    conn.close();
    await broker.stop();
    await rm(broker.config.dataDir, { recursive: true, force: true });
  });

  it('is advertised in v0-2 and answered INVALID_REQUEST in each', async () => {
    assert.equal(conn.versionFor(ApiKey.DescribeQuorum), 2);
    for (const version of [0, 1, 2]) {
      const res = await conn.send(ApiKey.DescribeQuorum, REQUEST, { version });
      assert.equal(res.errorCode, ErrorCode.INVALID_REQUEST, `v${version}`);
      assert.deepEqual(res.topics, []);
      if (version >= 2) assert.match(res.errorMessage ?? '', /without a metadata quorum/);
    }
  });

  it('Admin.describeQuorum throws a KafkaResponseError with the code', async () => {
    const admin = new Admin({ bootstrapServers: `127.0.0.1:${broker.address.port}` });
    try {
      await assert.rejects(
        admin.describeQuorum(),
        (err: unknown) => err instanceof KafkaResponseError && err.errorCode === ErrorCode.INVALID_REQUEST,
      );
    } finally {
      await admin.close();
    }
  });
});

describe('DescribeQuorum in a one-voter cluster', () => {
  let broker: Broker;
  let conn: Connection;
  let controllerPort: number;

  before(async () => {
    controllerPort = await freePort();
    broker = await startInProcessBroker({
      configure: (cfg) => {
        cfg.voters = [{ id: 1, host: '127.0.0.1', port: controllerPort }];
        cfg.controllerHost = '127.0.0.1';
        cfg.controllerPort = controllerPort;
      },
    });
    conn = await Connection.connect({ host: '127.0.0.1', port: broker.address.port });
  });

  after(async () => {
    conn.close();
    await broker.stop();
    await rm(broker.config.dataDir, { recursive: true, force: true });
  });

  it('describes the quorum with this node as leader', async () => {
    const admin = new Admin({ bootstrapServers: `127.0.0.1:${broker.address.port}` });
    try {
      const deadline = Date.now() + 10_000;
      let q = await admin.describeQuorum().catch(() => null);
      while ((q === null || q.highWatermark < 1) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        q = await admin.describeQuorum().catch(() => null);
      }
      assert.ok(q, 'a leader within 10 s');
      assert.equal(q.leaderId, 1);
      assert.ok(q.leaderEpoch >= 1);
      assert.ok(q.highWatermark >= 1);
      assert.deepEqual(
        q.voters.map((v) => v.nodeId),
        [1],
      );
      assert.ok(q.voters[0]!.logEndOffset >= q.highWatermark);
      assert.deepEqual(q.observers, []);
    } finally {
      await admin.close();
    }
    const v2 = await conn.send(ApiKey.DescribeQuorum, REQUEST, { version: 2 });
    assert.deepEqual(
      v2.nodes.map((n) => ({
        id: n.nodeId,
        listeners: n.listeners.map((l) => `${l.name} ${l.host}:${l.port}`),
      })),
      [{ id: 1, listeners: [`CONTROLLER 127.0.0.1:${controllerPort}`] }],
    );
  });

  it('answers UNKNOWN_TOPIC_OR_PARTITION for anything but __cluster_metadata-0', async () => {
    const res = await conn.send(ApiKey.DescribeQuorum, {
      topics: [{ topicName: 'orders', partitions: [{ partitionIndex: 0 }, { partitionIndex: 1 }] }],
    });
    assert.equal(res.errorCode, 0);
    assert.deepEqual(
      res.topics.flatMap((t) => t.partitions.map((p) => [t.topicName, p.partitionIndex, p.errorCode])),
      [
        ['orders', 0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
        ['orders', 1, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
      ],
    );
  });
});

describe('quorumResponse', () => {
  it("maps the leader's view of its followers to Kafka's replica states", () => {
    const status: RaftStatus = {
      id: 2,
      role: 'leader',
      term: 7,
      leaderId: 2,
      commitIndex: 40,
      appliedIndex: 40,
      lastIndex: 42,
      durableIndex: 42,
      snapshotIndex: 0,
      voters: [1, 2, 3],
      followers: [
        { id: 1, matchIndex: 42, lastContactMs: 1_000, lastCaughtUpMs: 1_000 },
        { id: 3, matchIndex: 0, lastContactMs: undefined, lastCaughtUpMs: undefined },
      ],
    };
    const voters = [1, 2, 3].map((id) => ({ id, host: '127.0.0.1', port: 9000 + id }));
    const r = quorumResponse(status, voters, 5_000);
    const p = r.topics?.[0]?.partitions?.[0];
    assert.ok(p);
    assert.equal(r.topics?.[0]?.topicName, '__cluster_metadata');
    assert.deepEqual(
      { leaderId: p.leaderId, leaderEpoch: p.leaderEpoch, highWatermark: p.highWatermark },
      { leaderId: 2, leaderEpoch: 7, highWatermark: 40 },
    );
    assert.deepEqual(
      p.currentVoters?.map((v) => [
        v.replicaId,
        v.logEndOffset,
        v.lastFetchTimestamp,
        v.lastCaughtUpTimestamp,
      ]),
      [
        [1, 42, 1_000, 1_000],
        [2, 42, 5_000, 5_000],
        [3, -1, -1, -1],
      ],
    );
    assert.equal(r.nodes?.length, 3);
  });
});
