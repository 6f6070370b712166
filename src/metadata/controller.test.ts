/**
 * Goal: each Controller operation answers with Kafka's error codes and messages and writes the
 * records KRaft would: registration and heartbeats (fencing, unfencing, controlled shutdown),
 * session expiry and leader election (clean from the ISR only; unclean only where enabled),
 * preferred leader rebalance, topic creation and placement, deletion, partition creation, config
 * changes, AlterPartition and producer id blocks.
 *
 * Method: a harness drives one Controller over one MetadataImage the way the active controller
 * does: each operation's records go through the codec and are applied (as one batch, at the next
 * offset) before the next operation. Placement is also checked with fast-check over random broker
 * sets (with and without racks): leaders spread within ±1 per broker, replicas on distinct brokers
 * and on distinct racks while racks without a replica remain.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ErrorCode } from '../protocol/errors.js';
import { Prng } from '../sim/prng.js';
import {
  type AlterPartitionData,
  Controller,
  type ControllerConfig,
  type CreatableTopic,
  PARTITIONS_PER_REQUEST_MAX,
} from './controller.js';
import { MetadataImage, type PartitionMeta, type TopicImage } from './image.js';
import { ZERO_TOPIC_ID } from './names.js';
import { type MetadataRecord, decodeMetadataBatch, encodeMetadataBatch } from './records.js';

const CONFIG: ControllerConfig = {
  sessionTimeoutMs: 9000,
  defaultReplicationFactor: 1,
  defaultNumPartitions: 1,
  topicConfigDefaults: {},
  leaderImbalanceCheckIntervalMs: 300_000,
  autoLeaderRebalance: false,
};

/** One controller over one image; every operation's records are applied before the next. */
class Harness {
  readonly image = new MetadataImage();
  readonly controller: Controller;
  nowMs = 0;

  constructor(config: Partial<ControllerConfig> = {}, seed = 1) {
    const prng = new Prng(seed);
    this.controller = new Controller(this.image, { ...CONFIG, ...config }, () => prng.next());
    this.controller.activate(this.nowMs);
  }

  apply(records: readonly MetadataRecord[]): void {
    if (records.length > 0)
      this.image.apply(decodeMetadataBatch(encodeMetadataBatch(records)), this.image.offset + 1);
  }

  /** Registers broker `id` and, with a heartbeat, unfences it. */
  addBroker(id: number, rack: string | null = null, incarnationId = `inc-${id}`): void {
    const r = this.controller.registerBroker(
      { brokerId: id, incarnationId, host: `h${id}`, port: 9092, rack },
      this.nowMs,
    );
    assert.equal(r.errorCode, ErrorCode.NONE);
    this.apply(r.records);
    assert.equal(this.heartbeat(id).isFenced, false);
  }

  heartbeat(id: number, o: { wantShutDown?: boolean; behind?: boolean } = {}) {
    const b = this.image.broker(id)!;
    const r = this.controller.heartbeat(
      {
        brokerId: id,
        brokerEpoch: b.epoch,
        currentMetadataOffset: o.behind ? b.epoch - 1 : this.image.offset,
        wantShutDown: o.wantShutDown ?? false,
      },
      this.nowMs,
    );
    this.apply(r.records);
    return r;
  }

  /** Moves the clock `ms` on; every unfenced broker but `silent` heartbeats; then a tick. */
  advance(ms: number, silent: readonly number[] = []): MetadataRecord[] {
    this.nowMs += ms;
    for (const b of this.image.brokers()) if (!silent.includes(b.id) && !b.fenced) this.heartbeat(b.id);
    const records = this.controller.tick(this.nowMs);
    this.apply(records);
    return records;
  }

  createTopic(name: string, numPartitions: number, rf: number, configs: [string, string][] = []): TopicImage {
    const r = this.controller.createTopics([{ name, numPartitions, replicationFactor: rf, configs }], false);
    assert.equal(r.results[0]!.errorCode, ErrorCode.NONE, r.results[0]!.errorMessage ?? undefined);
    this.apply(r.records);
    return this.image.topic(name)!;
  }

  /** Creates one partition with exactly these replicas (a manual assignment). */
  createPartition(name: string, replicas: number[], configs: [string, string][] = []): PartitionMeta {
    const r = this.controller.createTopics(
      [
        {
          name,
          numPartitions: -1,
          replicationFactor: -1,
          assignments: [{ partitionIndex: 0, brokerIds: replicas }],
          configs,
        },
      ],
      false,
    );
    assert.equal(r.results[0]!.errorCode, ErrorCode.NONE, r.results[0]!.errorMessage ?? undefined);
    this.apply(r.records);
    return this.image.partition(name, 0)!;
  }

  /** The leader's AlterPartition for `name`-0 setting the ISR. */
  alterIsr(name: string, newIsr: number[], p = 0): ErrorCode {
    const m = this.image.partition(name, p)!;
    const r = this.controller.alterPartition({
      brokerId: m.leader,
      brokerEpoch: this.image.broker(m.leader)!.epoch,
      topicId: m.topicId,
      partition: p,
      leaderEpoch: m.leaderEpoch,
      partitionEpoch: m.partitionEpoch,
      newIsr,
    });
    this.apply(r.records);
    return r.errorCode;
  }

  state(name: string, p = 0): { leader: number; isr: readonly number[] } {
    const m = this.image.partition(name, p)!;
    return { leader: m.leader, isr: m.isr };
  }
}

function topicSpec(name: string, o: Partial<CreatableTopic> = {}): CreatableTopic {
  return { name, numPartitions: 1, replicationFactor: 1, configs: [], ...o };
}

// ---- brokers -------------------------------------------------------------------------------------

test('registerBroker: a new incarnation registers (fenced, epoch = offset); the same one writes nothing', () => {
  const h = new Harness();
  const r = h.controller.registerBroker(
    { brokerId: 1, incarnationId: 'x', host: 'h', port: 1, rack: 'r' },
    0,
  );
  assert.deepEqual(r, {
    errorCode: ErrorCode.NONE,
    records: [{ type: 'RegisterBroker', brokerId: 1, incarnationId: 'x', host: 'h', port: 1, rack: 'r' }],
  });
  h.apply(r.records);
  assert.deepEqual(h.image.broker(1), {
    id: 1,
    epoch: h.image.offset,
    incarnationId: 'x',
    host: 'h',
    port: 1,
    rack: 'r',
    fenced: true,
  });
  assert.deepEqual(
    h.controller.registerBroker({ brokerId: 1, incarnationId: 'x', host: 'h', port: 1, rack: 'r' }, 0),
    {
      errorCode: ErrorCode.NONE,
      records: [],
    },
  );
  for (const bad of [
    { brokerId: -1, incarnationId: 'x', host: 'h', port: 1, rack: null },
    { brokerId: 1, incarnationId: '', host: 'h', port: 1, rack: null },
    { brokerId: 1, incarnationId: 'x', host: 'h', port: 65536, rack: null },
  ]) {
    assert.deepEqual(h.controller.registerBroker(bad, 0), {
      errorCode: ErrorCode.INVALID_REGISTRATION,
      records: [],
    });
  }
});

test('registerBroker: a restart (new incarnation) takes the old leaderships and ISR places away', () => {
  const h = new Harness();
  for (const id of [1, 2, 3]) h.addBroker(id);
  h.createPartition('t', [1, 2, 3]);
  h.createPartition('solo', [1]);
  const oldEpoch = h.image.broker(1)!.epoch;
  const r = h.controller.registerBroker(
    { brokerId: 1, incarnationId: 'again', host: 'h', port: 1, rack: null },
    0,
  );
  assert.equal(r.records[0]?.type, 'RegisterBroker');
  h.apply(r.records);
  assert.ok(h.image.broker(1)!.epoch > oldEpoch);
  assert.equal(h.image.broker(1)!.fenced, true);
  assert.deepEqual(h.state('t'), { leader: 2, isr: [2, 3] });
  assert.deepEqual(h.state('solo'), { leader: -1, isr: [1] }, 'the last ISR member stays, offline');
  // Caught up again, it is unfenced and the offline partition it holds elects it.
  h.heartbeat(1);
  assert.deepEqual(h.state('solo'), { leader: 1, isr: [1] });
});

test('heartbeat: stale epochs, catching up, unfencing', () => {
  const h = new Harness();
  const hb = (brokerId: number, brokerEpoch: number, currentMetadataOffset: number) =>
    h.controller.heartbeat({ brokerId, brokerEpoch, currentMetadataOffset, wantShutDown: false }, 0);
  const stale = {
    errorCode: ErrorCode.STALE_BROKER_EPOCH,
    records: [],
    isCaughtUp: false,
    isFenced: true,
    shouldShutDown: false,
  };
  assert.deepEqual(hb(1, 0, 0), stale, 'not registered');
  h.apply(
    h.controller.registerBroker({ brokerId: 1, incarnationId: 'x', host: 'h', port: 1, rack: null }, 0)
      .records,
  );
  const epoch = h.image.broker(1)!.epoch;
  assert.deepEqual(hb(1, epoch + 1, epoch), stale, 'another epoch');
  assert.deepEqual(hb(1, epoch, epoch - 1), {
    errorCode: ErrorCode.NONE,
    records: [],
    isCaughtUp: false,
    isFenced: true,
    shouldShutDown: false,
  });
  assert.deepEqual(hb(1, epoch, epoch), {
    errorCode: ErrorCode.NONE,
    records: [{ type: 'UnfenceBroker', brokerId: 1, brokerEpoch: epoch }],
    isCaughtUp: true,
    isFenced: false,
    shouldShutDown: false,
  });
});

test('session expiry fences a silent broker and elects new leaders from the ISR', () => {
  const h = new Harness();
  for (const id of [1, 2, 3]) h.addBroker(id);
  h.createPartition('t', [1, 2, 3]);
  assert.deepEqual(h.advance(9000, [1]), [], 'exactly the timeout is not yet expired');
  const records = h.advance(1, [1]);
  assert.deepEqual(records, [
    { type: 'FenceBroker', brokerId: 1, brokerEpoch: h.image.broker(1)!.epoch },
    { type: 'PartitionChange', topicId: h.image.topic('t')!.topicId, partitionId: 0, isr: [2, 3], leader: 2 },
  ]);
  const p = h.image.partition('t', 0)!;
  assert.deepEqual([p.leader, p.leaderEpoch, p.partitionEpoch], [2, 1, 1]);
  // Heartbeats keep the others' sessions alive indefinitely.
  for (let i = 0; i < 5; i++) assert.deepEqual(h.advance(8000, [1]), []);
});

test('failover elects from the ISR only; with no live ISR member the partition goes offline', () => {
  const h = new Harness();
  for (const id of [1, 2, 3]) h.addBroker(id);
  h.createPartition('t', [1, 2, 3]);
  assert.equal(h.alterIsr('t', [1, 2]), ErrorCode.NONE);
  h.advance(9001, [1]);
  assert.deepEqual(h.state('t'), { leader: 2, isr: [2] });
  h.advance(9001, [1, 2]);
  assert.deepEqual(h.state('t'), { leader: -1, isr: [2] }, 'broker 3 is live but not in the ISR');
  assert.deepEqual(h.advance(1000, [1, 2]), [], 'an offline partition stays so, without records');
  // The last ISR member returning leads again (a clean election).
  h.addBroker(2, null, 'inc-2b');
  assert.deepEqual(h.state('t'), { leader: 2, isr: [2] });
});

test('unclean leader election only where unclean.leader.election.enable is true', () => {
  const scenarios: {
    name: string;
    topicConfigs: [string, string][];
    defaults: Record<string, string>;
    cluster?: string;
  }[] = [
    { name: 'topic config', topicConfigs: [['unclean.leader.election.enable', 'true']], defaults: {} },
    { name: 'broker default', topicConfigs: [], defaults: { 'unclean.leader.election.enable': 'true' } },
    { name: 'cluster dynamic default', topicConfigs: [], defaults: {}, cluster: 'true' },
    { name: 'disabled', topicConfigs: [], defaults: {} },
    {
      name: 'topic overrides default',
      topicConfigs: [['unclean.leader.election.enable', 'false']],
      defaults: { 'unclean.leader.election.enable': 'true' },
    },
  ];
  for (const s of scenarios) {
    const h = new Harness({ topicConfigDefaults: s.defaults });
    for (const id of [1, 2, 3]) h.addBroker(id);
    if (s.cluster) {
      h.apply([
        {
          type: 'Config',
          resourceType: 'broker',
          resourceName: '',
          name: 'unclean.leader.election.enable',
          value: s.cluster,
        },
      ]);
    }
    h.createPartition('t', [1, 2, 3], s.topicConfigs);
    assert.equal(h.alterIsr('t', [1]), ErrorCode.NONE);
    h.advance(9001, [1]);
    const unclean = s.name !== 'disabled' && s.name !== 'topic overrides default';
    assert.deepEqual(h.state('t'), unclean ? { leader: 2, isr: [2] } : { leader: -1, isr: [1] }, s.name);
  }
});

test('controlled shutdown moves leaderships, leaves ISRs, fences, then allows shutdown', () => {
  const h = new Harness();
  for (const id of [1, 2, 3]) h.addBroker(id);
  h.createPartition('a', [1, 2, 3]);
  h.createPartition('b', [2, 1]);
  h.createPartition('solo', [1]);
  const r = h.heartbeat(1, { wantShutDown: true });
  assert.equal(r.errorCode, ErrorCode.NONE);
  assert.deepEqual([r.isFenced, r.shouldShutDown], [true, true]);
  assert.deepEqual(r.records[0], { type: 'FenceBroker', brokerId: 1, brokerEpoch: h.image.broker(1)!.epoch });
  assert.equal(h.image.broker(1)!.fenced, true);
  assert.deepEqual(h.state('a'), { leader: 2, isr: [2, 3] });
  assert.deepEqual(h.state('b'), { leader: 2, isr: [2] });
  assert.deepEqual(h.state('solo'), { leader: -1, isr: [1] });
  // Further shutdown heartbeats change nothing and keep allowing shutdown.
  const again = h.heartbeat(1, { wantShutDown: true });
  assert.deepEqual([again.records, again.shouldShutDown], [[], true]);
});

test('preferred leader rebalance moves leadership back to replicas[0], at most every interval', () => {
  for (const autoLeaderRebalance of [true, false]) {
    const h = new Harness({ autoLeaderRebalance, leaderImbalanceCheckIntervalMs: 60_000 });
    for (const id of [1, 2, 3]) h.addBroker(id);
    h.createPartition('t', [1, 2, 3]);
    h.advance(9001, [1]);
    assert.equal(h.state('t').leader, 2);
    h.addBroker(1, null, 'inc-1b');
    assert.equal(h.state('t').leader, 2, 'a returning broker is not in the ISR yet');
    assert.equal(h.alterIsr('t', [2, 3, 1]), ErrorCode.NONE);
    h.advance(1000);
    assert.equal(h.state('t').leader, 2, 'rebalance waits for its interval');
    h.advance(60_000);
    assert.equal(h.state('t').leader, autoLeaderRebalance ? 1 : 2);
  }
});

// ---- topics --------------------------------------------------------------------------------------

test('createTopics: records and results of a successful creation', () => {
  const h = new Harness({ defaultNumPartitions: 3, defaultReplicationFactor: 2 });
  for (const id of [1, 2, 3]) h.addBroker(id);
  const r = h.controller.createTopics(
    [topicSpec('t', { numPartitions: -1, replicationFactor: -1, configs: [['retention.ms', '10']] })],
    false,
  );
  const res = r.results[0]!;
  assert.equal(res.errorCode, ErrorCode.NONE);
  assert.deepEqual([res.errorMessage, res.numPartitions, res.replicationFactor], [null, 3, 2]);
  assert.deepEqual(
    r.records.map((x) => x.type),
    ['Topic', 'Config', 'Partition', 'Partition', 'Partition'],
  );
  h.apply(r.records);
  const t = h.image.topic('t')!;
  assert.equal(t.topicId, res.topicId);
  assert.deepEqual(t.configs, { 'retention.ms': '10' });
  for (const p of t.partitions) {
    assert.deepEqual([p.isr, p.leader, p.leaderEpoch, p.partitionEpoch], [p.replicas, p.replicas[0], 0, 0]);
    assert.equal(new Set(p.replicas).size, 2);
  }
  // validateOnly: the same answer, no records, no id.
  const v = h.controller.createTopics([topicSpec('u', { numPartitions: 2, replicationFactor: 3 })], true);
  assert.deepEqual(v.records, []);
  assert.deepEqual(v.results[0], {
    name: 'u',
    errorCode: ErrorCode.NONE,
    errorMessage: null,
    topicId: ZERO_TOPIC_ID,
    numPartitions: 2,
    replicationFactor: 3,
  });
});

test("createTopics: Kafka's errors and messages", () => {
  const h = new Harness();
  for (const id of [1, 2, 3]) h.addBroker(id);
  h.createTopic('exists', 1, 1);
  h.createTopic('a.b', 1, 1);
  h.apply(
    h.controller.registerBroker({ brokerId: 9, incarnationId: 'f', host: 'h', port: 1, rack: null }, 0)
      .records,
  );
  const cases: [CreatableTopic, ErrorCode, string | null][] = [
    [topicSpec(''), ErrorCode.INVALID_TOPIC_EXCEPTION, "Topic name is illegal, it can't be empty"],
    [
      topicSpec('a b'),
      ErrorCode.INVALID_TOPIC_EXCEPTION,
      `Topic name "a b" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'`,
    ],
    [topicSpec('exists'), ErrorCode.TOPIC_ALREADY_EXISTS, "Topic 'exists' already exists."],
    [topicSpec('a_b'), ErrorCode.INVALID_TOPIC_EXCEPTION, "Topic 'a_b' collides with existing topic: a.b"],
    [
      topicSpec('t', { numPartitions: 0 }),
      ErrorCode.INVALID_PARTITIONS,
      'Number of partitions was set to an invalid non-positive value.',
    ],
    [
      topicSpec('t', { replicationFactor: -2 }),
      ErrorCode.INVALID_REPLICATION_FACTOR,
      'Replication factor must be larger than 0, or -1 to use the default value.',
    ],
    [
      topicSpec('t', { replicationFactor: 4 }),
      ErrorCode.INVALID_REPLICATION_FACTOR,
      'Unable to replicate the partition 4 time(s): The target replication factor of 4 cannot be reached because only 3 broker(s) are registered.',
    ],
    [
      topicSpec('t', { configs: [['no.such', '1']] }),
      ErrorCode.INVALID_CONFIG,
      'Unknown topic config name: no.such',
    ],
    [
      topicSpec('t', { configs: [['constructor', '1']] }),
      ErrorCode.INVALID_CONFIG,
      'Unknown topic config name: constructor',
    ],
    [
      topicSpec('t', { configs: [['cleanup.policy', 'keep']] }),
      ErrorCode.INVALID_CONFIG,
      'Invalid value keep for configuration cleanup.policy: must be delete, compact or both',
    ],
    [
      topicSpec('t', { numPartitions: -1, assignments: [{ partitionIndex: 0, brokerIds: [1] }] }),
      ErrorCode.INVALID_REQUEST,
      'A manual partition assignment was specified, but replication factor was not set to -1.',
    ],
    [
      topicSpec('t', { replicationFactor: -1, assignments: [{ partitionIndex: 0, brokerIds: [1] }] }),
      ErrorCode.INVALID_REQUEST,
      'A manual partition assignment was specified, but numPartitions was not set to -1.',
    ],
  ];
  const manual = (assignments: { partitionIndex: number; brokerIds: number[] }[]) =>
    topicSpec('t', { numPartitions: -1, replicationFactor: -1, assignments });
  cases.push(
    [
      manual([
        { partitionIndex: 0, brokerIds: [1] },
        { partitionIndex: 0, brokerIds: [2] },
      ]),
      ErrorCode.INVALID_REPLICA_ASSIGNMENT,
      'Found multiple manual partition assignments for partition 0',
    ],
    [
      manual([{ partitionIndex: 0, brokerIds: [] }]),
      ErrorCode.INVALID_REPLICA_ASSIGNMENT,
      'The manual partition assignment includes an empty replica list.',
    ],
    [
      manual([{ partitionIndex: 0, brokerIds: [1, 7] }]),
      ErrorCode.INVALID_REPLICA_ASSIGNMENT,
      'The manual partition assignment includes broker 7, but no such broker is registered.',
    ],
    [
      manual([{ partitionIndex: 0, brokerIds: [2, 1, 2] }]),
      ErrorCode.INVALID_REPLICA_ASSIGNMENT,
      'The manual partition assignment includes the broker 2 more than once.',
    ],
    [
      manual([
        { partitionIndex: 0, brokerIds: [1, 2] },
        { partitionIndex: 1, brokerIds: [3] },
      ]),
      ErrorCode.INVALID_REPLICA_ASSIGNMENT,
      'The manual partition assignment includes a partition with 1 replica(s), but this is not consistent with previous partitions, which have 2 replica(s).',
    ],
    [
      manual([{ partitionIndex: 1, brokerIds: [1] }]),
      ErrorCode.INVALID_REPLICA_ASSIGNMENT,
      'partitions should be a consecutive 0-based integer sequence',
    ],
    [
      manual([{ partitionIndex: 0, brokerIds: [9] }]),
      ErrorCode.INVALID_REPLICA_ASSIGNMENT,
      'All brokers specified in the manual partition assignment for partition 0 are fenced or in controlled shutdown.',
    ],
  );
  for (const [spec, errorCode, errorMessage] of cases) {
    const r = h.controller.createTopics([spec], false);
    assert.deepEqual(r.records, [], errorMessage ?? '');
    assert.deepEqual(
      r.results[0],
      {
        name: spec.name,
        errorCode,
        errorMessage,
        topicId: ZERO_TOPIC_ID,
        numPartitions: -1,
        replicationFactor: -1,
      },
      errorMessage ?? '',
    );
  }
  // Duplicates in one request fail every mention; the others still succeed.
  const dup = h.controller.createTopics([topicSpec('d'), topicSpec('ok'), topicSpec('d')], false);
  assert.deepEqual(
    dup.results.map((x) => [x.errorCode, x.errorMessage]),
    [
      [ErrorCode.INVALID_REQUEST, 'Duplicate topic name.'],
      [ErrorCode.NONE, null],
      [ErrorCode.INVALID_REQUEST, 'Duplicate topic name.'],
    ],
  );
  // Two names of one request that collide: the second fails.
  const col = h.controller.createTopics([topicSpec('x.y'), topicSpec('x_y')], false);
  assert.deepEqual(
    col.results.map((x) => x.errorCode),
    [ErrorCode.NONE, ErrorCode.INVALID_TOPIC_EXCEPTION],
  );
  // Too many partitions in one request fails it whole.
  const big = h.controller.createTopics(
    [topicSpec('p1', { numPartitions: PARTITIONS_PER_REQUEST_MAX }), topicSpec('p2')],
    false,
  );
  assert.deepEqual(big.records, []);
  assert.deepEqual(
    big.results.map((x) => [x.errorCode, x.errorMessage]),
    [
      [ErrorCode.POLICY_VIOLATION, 'Excessively large number of partitions per request.'],
      [ErrorCode.POLICY_VIOLATION, 'Excessively large number of partitions per request.'],
    ],
  );
});

test('createTopics: a manual assignment keeps its order; the ISR is its live replicas', () => {
  const h = new Harness();
  for (const id of [1, 2, 3]) h.addBroker(id);
  h.apply(
    h.controller.registerBroker({ brokerId: 4, incarnationId: 'f', host: 'h', port: 1, rack: null }, 0)
      .records,
  );
  const p = h.createPartition('m', [4, 3, 1]);
  assert.deepEqual([p.replicas, p.isr, p.leader], [[4, 3, 1], [3, 1], 3]);
});

/** Leaders per live broker, and the check that every partition's replicas are distinct. */
function checkPlacement(h: Harness, t: TopicImage, rf: number): void {
  const live = h.image.liveBrokers();
  const leaders = new Map(live.map((b) => [b.id, 0]));
  const racks = new Set(live.map((b) => b.rack));
  for (const p of t.partitions) {
    assert.equal(p.replicas.length, rf);
    assert.equal(new Set(p.replicas).size, rf, 'replicas on distinct brokers');
    for (const id of p.replicas) assert.equal(h.image.broker(id)?.fenced, false, 'only live brokers');
    leaders.set(p.leader, leaders.get(p.leader)! + 1);
    const used = new Set(p.replicas.map((id) => h.image.broker(id)!.rack));
    assert.equal(used.size, Math.min(rf, racks.size), `racks of ${p.replicas}`);
  }
  const counts = [...leaders.values()];
  assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `leaders per broker ${counts}`);
}

test('placement: leaders spread within ±1, replicas on distinct brokers and racks', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 9 }),
      fc.integer({ min: 0, max: 4 }),
      fc.integer({ min: 1, max: 50 }),
      fc.integer({ min: 1, max: 9 }),
      fc.integer(),
      (brokers, rackCount, partitions, rfWanted, seed) => {
        const h = new Harness({}, seed);
        // Racks: none (0), or broker i on rack i % rackCount.
        for (let id = 0; id < brokers; id++)
          h.addBroker(id * 3 + 1, rackCount === 0 ? null : `r${id % rackCount}`);
        // A fenced broker is never placed on.
        h.apply(
          h.controller.registerBroker(
            { brokerId: 100, incarnationId: 'f', host: 'h', port: 1, rack: 'r0' },
            0,
          ).records,
        );
        const rf = Math.min(rfWanted, brokers);
        const t = h.createTopic('t', partitions, rf);
        checkPlacement(h, t, rf);
        // More partitions continue the stripe: the topic stays balanced.
        const more = h.controller.createPartitions([{ name: 't', count: partitions + brokers }], false);
        assert.equal(more.results[0]!.errorCode, ErrorCode.NONE);
        h.apply(more.records);
        checkPlacement(h, h.image.topic('t')!, rf);
      },
    ),
    { numRuns: 200 },
  );
});

test('deleteTopics: by name or id; unknown and duplicate mentions', () => {
  const h = new Harness();
  h.addBroker(1);
  const a = h.createTopic('a', 1, 1);
  const b = h.createTopic('b', 1, 1);
  const c = h.createTopic('c', 1, 1);
  const other = 'f'.repeat(32);
  const r = h.controller.deleteTopics([
    'a',
    { topicId: b.topicId },
    'nope',
    { topicId: other },
    'c',
    { topicId: c.topicId },
    { name: 'x', topicId: other },
  ]);
  assert.deepEqual(r.results, [
    { name: 'a', topicId: a.topicId, errorCode: ErrorCode.NONE, errorMessage: null },
    { name: 'b', topicId: b.topicId, errorCode: ErrorCode.NONE, errorMessage: null },
    {
      name: 'nope',
      topicId: ZERO_TOPIC_ID,
      errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
      errorMessage: null,
    },
    { name: null, topicId: other, errorCode: ErrorCode.UNKNOWN_TOPIC_ID, errorMessage: null },
    {
      name: 'c',
      topicId: c.topicId,
      errorCode: ErrorCode.INVALID_REQUEST,
      errorMessage: 'Duplicate topic name.',
    },
    {
      name: 'c',
      topicId: c.topicId,
      errorCode: ErrorCode.INVALID_REQUEST,
      errorMessage: 'Duplicate topic id.',
    },
    {
      name: 'x',
      topicId: other,
      errorCode: ErrorCode.INVALID_REQUEST,
      errorMessage: 'Exactly one of topic name and topic id must be set.',
    },
  ]);
  assert.deepEqual(r.records, [
    { type: 'RemoveTopic', topicId: a.topicId },
    { type: 'RemoveTopic', topicId: b.topicId },
  ]);
  h.apply(r.records);
  assert.deepEqual(
    h.image.topics().map((t) => t.name),
    ['c'],
  );
});

test("createPartitions: Kafka's errors; new partitions keep the replication factor", () => {
  const h = new Harness();
  for (const id of [1, 2, 3]) h.addBroker(id);
  h.createTopic('t', 2, 2);
  const one = (req: { name: string; count: number; assignments?: number[][] }, validateOnly = false) =>
    h.controller.createPartitions([req], validateOnly);
  const failing: [{ name: string; count: number; assignments?: number[][] }, ErrorCode, string | null][] = [
    [{ name: 'nope', count: 3 }, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, null],
    [
      { name: 't', count: 1 },
      ErrorCode.INVALID_PARTITIONS,
      'The topic t currently has 2 partition(s); 1 would not be an increase.',
    ],
    [{ name: 't', count: 2 }, ErrorCode.INVALID_PARTITIONS, 'Topic already has 2 partition(s).'],
    [
      { name: 't', count: 4, assignments: [[1, 2]] },
      ErrorCode.INVALID_REPLICA_ASSIGNMENT,
      'Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified.',
    ],
    [
      { name: 't', count: 3, assignments: [[1]] },
      ErrorCode.INVALID_REPLICA_ASSIGNMENT,
      'The manual partition assignment includes a partition with 1 replica(s), but this is not consistent with previous partitions, which have 2 replica(s).',
    ],
    [
      { name: 't', count: 2 + PARTITIONS_PER_REQUEST_MAX + 1 },
      ErrorCode.POLICY_VIOLATION,
      'Excessively large number of partitions per request.',
    ],
  ];
  for (const [req, errorCode, errorMessage] of failing) {
    assert.deepEqual(one(req), { results: [{ name: req.name, errorCode, errorMessage }], records: [] });
  }
  assert.deepEqual(
    h.controller.createPartitions(
      [
        { name: 't', count: 3 },
        { name: 't', count: 4 },
      ],
      false,
    ).results,
    [
      { name: 't', errorCode: ErrorCode.INVALID_REQUEST, errorMessage: 'Duplicate topic name.' },
      { name: 't', errorCode: ErrorCode.INVALID_REQUEST, errorMessage: 'Duplicate topic name.' },
    ],
  );
  assert.deepEqual(one({ name: 't', count: 4 }, true).records, [], 'validateOnly');
  h.apply(
    one({
      name: 't',
      count: 4,
      assignments: [
        [3, 1],
        [2, 3],
      ],
    }).records,
  );
  assert.deepEqual(
    h.image
      .topic('t')!
      .partitions.slice(2)
      .map((p) => [p.partition, p.replicas, p.isr, p.leader]),
    [
      [2, [3, 1], [3, 1], 3],
      [3, [2, 3], [2, 3], 2],
    ],
  );
  h.apply(one({ name: 't', count: 6 }).records);
  assert.deepEqual(
    h.image.topic('t')!.partitions.map((p) => p.replicas.length),
    [2, 2, 2, 2, 2, 2],
  );
  // Replication factor 2 needs 2 live brokers.
  h.heartbeat(2, { wantShutDown: true });
  h.heartbeat(3, { wantShutDown: true });
  assert.equal(one({ name: 't', count: 7 }).results[0]!.errorCode, ErrorCode.INVALID_REPLICATION_FACTOR);
});

test('alterTopicConfigs writes the difference to the resulting set', () => {
  const h = new Harness();
  h.addBroker(1);
  h.createTopic('t', 1, 1, [
    ['retention.ms', '1'],
    ['segment.ms', '2'],
  ]);
  const r = h.controller.alterTopicConfigs(
    't',
    { 'retention.ms': '1', 'segment.ms': null, 'cleanup.policy': 'compact' },
    false,
  );
  assert.deepEqual(r, {
    errorCode: ErrorCode.NONE,
    errorMessage: null,
    records: [
      { type: 'Config', resourceType: 'topic', resourceName: 't', name: 'cleanup.policy', value: 'compact' },
      { type: 'Config', resourceType: 'topic', resourceName: 't', name: 'segment.ms', value: null },
    ],
  });
  assert.deepEqual(
    h.controller.alterTopicConfigs('t', { 'retention.ms': '5' }, true).records,
    [],
    'validateOnly',
  );
  h.apply(r.records);
  assert.deepEqual(h.image.topic('t')!.configs, { 'retention.ms': '1', 'cleanup.policy': 'compact' });
  // Absent from the resulting set is removed too.
  h.apply(h.controller.alterTopicConfigs('t', { 'cleanup.policy': 'compact' }, false).records);
  assert.deepEqual(h.image.topic('t')!.configs, { 'cleanup.policy': 'compact' });
  assert.deepEqual(h.controller.alterTopicConfigs('t', { 'cleanup.policy': 'compact' }, false).records, []);
  assert.deepEqual(h.controller.alterTopicConfigs('t', { 'min.insync.replicas': '0' }, false), {
    errorCode: ErrorCode.INVALID_CONFIG,
    errorMessage: 'Invalid value 0 for configuration min.insync.replicas',
    records: [],
  });
  assert.deepEqual(h.controller.alterTopicConfigs('nope', {}, false), {
    errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    errorMessage: "The topic 'nope' does not exist.",
    records: [],
  });
});

// ---- AlterPartition, producer ids, internal topics --------------------------------------------------

test("alterPartition: KRaft's checks in order, and the ISR change it writes", () => {
  const h = new Harness();
  for (const id of [1, 2, 3]) h.addBroker(id);
  h.apply(
    h.controller.registerBroker({ brokerId: 4, incarnationId: 'f', host: 'h', port: 1, rack: null }, 0)
      .records,
  );
  const p = h.createPartition('t', [1, 2, 3]);
  const base: AlterPartitionData = {
    brokerId: 1,
    brokerEpoch: h.image.broker(1)!.epoch,
    topicId: p.topicId,
    partition: 0,
    leaderEpoch: 0,
    partitionEpoch: 0,
    newIsr: [1, 2],
  };
  const code = (o: Partial<AlterPartitionData>) => h.controller.alterPartition({ ...base, ...o }).errorCode;
  assert.equal(code({ brokerEpoch: base.brokerEpoch + 1 }), ErrorCode.STALE_BROKER_EPOCH);
  assert.equal(code({ brokerId: 7 }), ErrorCode.STALE_BROKER_EPOCH);
  assert.equal(code({ topicId: 'e'.repeat(32) }), ErrorCode.UNKNOWN_TOPIC_ID);
  assert.equal(code({ partition: 1 }), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  assert.equal(
    code({ brokerId: 2, brokerEpoch: h.image.broker(2)!.epoch }),
    ErrorCode.NOT_LEADER_OR_FOLLOWER,
  );
  assert.equal(code({ leaderEpoch: 1 }), ErrorCode.FENCED_LEADER_EPOCH);
  assert.equal(code({ partitionEpoch: 1 }), ErrorCode.INVALID_UPDATE_VERSION);
  for (const newIsr of [[2, 3], [1, 5], [1, 2, 2], [], [1, 4]]) {
    assert.equal(code({ newIsr }), ErrorCode.INELIGIBLE_REPLICA, `ISR ${newIsr}`);
  }
  assert.deepEqual(h.controller.alterPartition({ ...base, newIsr: [3, 2, 1] }), {
    errorCode: ErrorCode.NONE,
    records: [],
  });
  const ok = h.controller.alterPartition(base);
  assert.deepEqual(ok, {
    errorCode: ErrorCode.NONE,
    records: [{ type: 'PartitionChange', topicId: p.topicId, partitionId: 0, isr: [1, 2] }],
  });
  h.apply(ok.records);
  const after = h.image.partition('t', 0)!;
  assert.deepEqual([after.isr, after.leader, after.leaderEpoch, after.partitionEpoch], [[1, 2], 1, 0, 1]);
  // The same request again is now stale.
  assert.equal(h.controller.alterPartition(base).errorCode, ErrorCode.INVALID_UPDATE_VERSION);
  // A fenced broker may not rejoin the ISR.
  h.heartbeat(3, { wantShutDown: true });
  assert.equal(code({ partitionEpoch: 1, newIsr: [1, 2, 3] }), ErrorCode.INELIGIBLE_REPLICA);
});

test('allocateProducerIds hands out consecutive blocks of 1000', () => {
  const h = new Harness();
  h.addBroker(1);
  const epoch = h.image.broker(1)!.epoch;
  const first = h.controller.allocateProducerIds({ brokerId: 1, brokerEpoch: epoch });
  assert.deepEqual(first, {
    errorCode: ErrorCode.NONE,
    records: [{ type: 'ProducerIds', brokerId: 1, brokerEpoch: epoch, nextProducerId: 1000 }],
    firstProducerId: 0,
    count: 1000,
  });
  h.apply(first.records);
  const second = h.controller.allocateProducerIds({ brokerId: 1, brokerEpoch: epoch });
  assert.deepEqual([second.firstProducerId, second.count], [1000, 1000]);
  assert.equal(
    h.controller.allocateProducerIds({ brokerId: 1, brokerEpoch: epoch + 1 }).errorCode,
    ErrorCode.STALE_BROKER_EPOCH,
  );
});

test('ensureTopic creates an internal topic once, its replication factor capped to the live brokers', () => {
  const h = new Harness();
  assert.deepEqual(h.controller.ensureTopic('__consumer_offsets', 5, 3, []), [], 'no live broker');
  h.addBroker(1);
  h.addBroker(2);
  h.apply(h.controller.ensureTopic('__consumer_offsets', 5, 3, [['cleanup.policy', 'compact']]));
  const t = h.image.topic('__consumer_offsets')!;
  assert.equal(t.partitions.length, 5);
  assert.ok(t.partitions.every((p) => p.replicas.length === 2));
  assert.deepEqual(t.configs, { 'cleanup.policy': 'compact' });
  assert.deepEqual(h.controller.ensureTopic('__consumer_offsets', 5, 3, []), [], 'exists');
});
