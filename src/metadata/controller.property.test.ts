/**
 * Goal: whatever happens to the cluster, the records the Controller writes keep the partition
 * state safe: a leader is -1 or an ISR member; the ISR is a non-empty subset of the replicas; no
 * leader from outside the ISR unless the topic allows unclean election; leader and partition
 * epochs never decrease, the partition epoch rises on every change (and a change always changes
 * something), the leader epoch on every leader change; producer id blocks never overlap.
 * Liveness too: after every operation a leader is a live broker, a partition with a live ISR
 * member has a leader, fenced brokers are out of every ISR that has a live member, and after a
 * tick no broker silent for longer than the session timeout is still unfenced.
 *
 * Method: fast-check generates a seed (the controller's randomness) and a sequence of operations:
 * brokers registering (and restarting with a new incarnation), heartbeating (current, stale,
 * behind, or asking for controlled shutdown), the clock advancing with a tick (some brokers
 * heartbeating first), topics created (some with unclean.leader.election.enable) and deleted,
 * partitions added, unclean election switched per topic, AlterPartition requests valid and stale,
 * producer id blocks allocated. Each operation's records go through the codec and are applied
 * before the next, as the active controller runs them; the checks compare the image before and
 * after every step. METADATA_PROPERTY_RUNS sets the number of runs (200 by default) and
 * METADATA_PROPERTY_SEED the fast-check seed (1 by default; a failure prints the seed and path).
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ErrorCode } from '../protocol/errors.js';
import { Prng } from '../sim/prng.js';
import { Controller, type ControllerConfig } from './controller.js';
import { MetadataImage, type PartitionMeta } from './image.js';
import { type MetadataRecord, decodeMetadataBatch, encodeMetadataBatch } from './records.js';

const RUNS = Number(process.env.METADATA_PROPERTY_RUNS ?? 200);
/** Fixed by default so every run checks the same cases; set another to explore further. */
const SEED = Number(process.env.METADATA_PROPERTY_SEED ?? 1);
const BROKERS = 5;
const UNCLEAN = 'unclean.leader.election.enable';

const CONFIG: ControllerConfig = {
  sessionTimeoutMs: 5000,
  defaultReplicationFactor: 2,
  defaultNumPartitions: 2,
  topicConfigDefaults: { [UNCLEAN]: 'false' },
  leaderImbalanceCheckIntervalMs: 1000,
  autoLeaderRebalance: true,
};

/** How often the interesting events happened over all runs: the generator must reach them. */
const seen = {
  elections: 0,
  uncleanElections: 0,
  offline: 0,
  isrChanges: 0,
  controlledShutdowns: 0,
  sessionExpiries: 0,
  rebalances: 0,
};

/** 'caughtUp': every live follower rejoins the ISR; 'valid': a random subset of them. */
type AlterVariant =
  | 'valid'
  | 'caughtUp'
  | 'staleLeaderEpoch'
  | 'stalePartitionEpoch'
  | 'notLeader'
  | 'staleBrokerEpoch';

type Op =
  | { kind: 'register'; broker: number; restart: boolean; rack: number }
  | { kind: 'heartbeat'; broker: number; stale: boolean; behind: boolean; wantShutDown: boolean }
  | { kind: 'advance'; ms: number; heartbeats: number }
  | { kind: 'createTopic'; name: number; partitions: number; rf: number; unclean: boolean }
  | { kind: 'deleteTopic'; pick: number }
  | { kind: 'createPartitions'; pick: number; add: number }
  | { kind: 'setUnclean'; pick: number; value: boolean | null }
  | { kind: 'alterPartition'; pick: number; variant: AlterVariant; mask: number }
  | { kind: 'allocateProducerIds'; broker: number };

const broker = fc.integer({ min: 0, max: BROKERS - 1 });
const oneIn = (n: number) => fc.integer({ min: 1, max: n }).map((x) => x === 1);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('register' as const),
      broker,
      restart: fc.boolean(),
      rack: fc.integer({ min: 0, max: 2 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('heartbeat' as const),
      broker,
      stale: oneIn(5),
      behind: oneIn(4),
      wantShutDown: oneIn(8),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('advance' as const),
      // Mostly steady (short steps, everyone heartbeating), sometimes long silences.
      ms: fc.oneof(
        { weight: 3, arbitrary: fc.integer({ min: 0, max: 2000 }) },
        fc.integer({ min: 0, max: 7000 }),
      ),
      heartbeats: fc.oneof(fc.constant(2 ** BROKERS - 1), fc.nat({ max: 2 ** BROKERS - 1 })),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('createTopic' as const),
      name: fc.integer({ min: 0, max: 4 }),
      partitions: fc.integer({ min: -1, max: 4 }),
      rf: fc.integer({ min: -1, max: 3 }),
      unclean: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('deleteTopic' as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('createPartitions' as const),
      pick: fc.nat(),
      add: fc.integer({ min: 1, max: 2 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('setUnclean' as const),
      pick: fc.nat(),
      value: fc.option(fc.boolean()),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('alterPartition' as const),
      pick: fc.nat(),
      variant: fc.constantFrom<AlterVariant>(
        'valid',
        'caughtUp',
        'caughtUp',
        'staleLeaderEpoch',
        'stalePartitionEpoch',
        'notLeader',
        'staleBrokerEpoch',
      ),
      mask: fc.nat({ max: 2 ** BROKERS - 1 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('allocateProducerIds' as const), broker }) },
);

/** The active controller and its image, driven one operation at a time. */
class World {
  readonly image = new MetadataImage();
  readonly controller: Controller;
  nowMs = 0;
  /** When each broker last had a session refreshed (registration or accepted heartbeat). */
  readonly lastSeenMs = new Map<number, number>();
  /** The end of the last producer id block handed out. */
  producerIdsEnd = 0;

  constructor(seed: number) {
    const prng = new Prng(seed);
    this.controller = new Controller(this.image, CONFIG, () => prng.next());
    this.controller.activate(this.nowMs);
  }

  apply(records: readonly MetadataRecord[]): void {
    if (records.length > 0)
      this.image.apply(decodeMetadataBatch(encodeMetadataBatch(records)), this.image.offset + 1);
  }

  isLive(id: number): boolean {
    return this.image.broker(id)?.fenced === false;
  }

  uncleanAllowed(topicId: string): boolean {
    return this.image.topicById(topicId)?.configs[UNCLEAN] === 'true';
  }

  heartbeat(id: number, o: { stale?: boolean; behind?: boolean; wantShutDown?: boolean } = {}): void {
    const b = this.image.broker(id);
    const epoch = b?.epoch ?? 0;
    const r = this.controller.heartbeat(
      {
        brokerId: id,
        brokerEpoch: o.stale ? epoch + 1 : epoch,
        currentMetadataOffset: o.behind ? epoch - 1 : this.image.offset,
        wantShutDown: o.wantShutDown ?? false,
      },
      this.nowMs,
    );
    if (b === undefined || o.stale) {
      assert.equal(r.errorCode, ErrorCode.STALE_BROKER_EPOCH);
      assert.deepEqual(r.records, []);
      return;
    }
    assert.equal(r.errorCode, ErrorCode.NONE);
    this.lastSeenMs.set(id, this.nowMs);
    this.apply(r.records);
    assert.equal(this.image.broker(id)!.fenced, r.isFenced, 'isFenced answers the state after the records');
    if (o.wantShutDown) assert.ok(r.isFenced, 'controlled shutdown fences');
    if (r.shouldShutDown) {
      seen.controlledShutdowns++;
      for (const t of this.image.topics()) {
        for (const p of t.partitions) assert.notEqual(p.leader, id, 'shouldShutDown while still leading');
      }
    }
  }

  run(op: Op): void {
    const topics = this.image.topics();
    const pick = (n: number) => (topics.length === 0 ? undefined : topics[n % topics.length]);
    switch (op.kind) {
      case 'register': {
        const current = this.image.broker(op.broker);
        const incarnationId =
          op.restart || current === undefined
            ? `inc-${op.broker}-${this.image.offset}`
            : current.incarnationId;
        const r = this.controller.registerBroker(
          { brokerId: op.broker, incarnationId, host: 'h', port: 9092, rack: `r${op.rack}` },
          this.nowMs,
        );
        assert.equal(r.errorCode, ErrorCode.NONE);
        this.lastSeenMs.set(op.broker, this.nowMs);
        this.apply(r.records);
        return;
      }
      case 'heartbeat':
        this.heartbeat(op.broker, op);
        return;
      case 'advance': {
        this.nowMs += op.ms;
        for (const b of this.image.brokers()) if ((op.heartbeats >> b.id) & 1) this.heartbeat(b.id);
        const records = this.controller.tick(this.nowMs);
        seen.sessionExpiries += records.filter((r) => r.type === 'FenceBroker').length;
        this.apply(records);
        for (const b of this.image.liveBrokers()) {
          assert.ok(
            this.nowMs - this.lastSeenMs.get(b.id)! <= CONFIG.sessionTimeoutMs,
            `broker ${b.id} outlived its session`,
          );
        }
        return;
      }
      case 'createTopic': {
        const configs: [string, string][] = op.unclean ? [[UNCLEAN, 'true']] : [];
        const r = this.controller.createTopics(
          [{ name: `t${op.name}`, numPartitions: op.partitions, replicationFactor: op.rf, configs }],
          false,
        );
        this.apply(r.records);
        return;
      }
      case 'deleteTopic': {
        const t = pick(op.pick);
        if (t) this.apply(this.controller.deleteTopics([t.name]).records);
        return;
      }
      case 'createPartitions': {
        const t = pick(op.pick);
        if (t) {
          this.apply(
            this.controller.createPartitions([{ name: t.name, count: t.partitions.length + op.add }], false)
              .records,
          );
        }
        return;
      }
      case 'setUnclean': {
        const t = pick(op.pick);
        if (t) {
          const configs = { ...t.configs, [UNCLEAN]: op.value === null ? null : String(op.value) };
          const r = this.controller.alterTopicConfigs(t.name, configs, false);
          assert.equal(r.errorCode, ErrorCode.NONE);
          this.apply(r.records);
        }
        return;
      }
      case 'alterPartition': {
        const t = pick(op.pick);
        const p = t?.partitions[op.mask % t.partitions.length];
        if (p === undefined || p.leader === -1) return;
        this.alterPartition(p, op.variant, op.mask);
        return;
      }
      case 'allocateProducerIds': {
        const b = this.image.broker(op.broker);
        const r = this.controller.allocateProducerIds({ brokerId: op.broker, brokerEpoch: b?.epoch ?? 0 });
        if (b === undefined) {
          assert.equal(r.errorCode, ErrorCode.STALE_BROKER_EPOCH);
          return;
        }
        assert.equal(r.errorCode, ErrorCode.NONE);
        assert.ok(r.firstProducerId >= this.producerIdsEnd, 'producer id blocks overlap');
        this.producerIdsEnd = r.firstProducerId + r.count;
        this.apply(r.records);
        assert.equal(this.image.nextProducerId, this.producerIdsEnd);
        return;
      }
    }
  }

  /** The leader proposes an ISR of itself and the live replicas in `mask`; variants make it stale. */
  private alterPartition(p: PartitionMeta, variant: AlterVariant, mask: number): void {
    const leader = this.image.broker(p.leader)!;
    const inIsr = (id: number) => variant === 'caughtUp' || ((mask >> id) & 1) === 1;
    const newIsr = [p.leader, ...p.replicas.filter((id) => id !== p.leader && inIsr(id) && this.isLive(id))];
    const other = p.replicas.find((id) => id !== p.leader && this.image.broker(id) !== undefined);
    if (variant === 'notLeader' && other === undefined) return;
    const r = this.controller.alterPartition({
      brokerId: variant === 'notLeader' ? other! : p.leader,
      brokerEpoch:
        variant === 'notLeader'
          ? this.image.broker(other!)!.epoch
          : leader.epoch + (variant === 'staleBrokerEpoch' ? 1 : 0),
      topicId: p.topicId,
      partition: p.partition,
      leaderEpoch: p.leaderEpoch - (variant === 'staleLeaderEpoch' ? 1 : 0),
      partitionEpoch: p.partitionEpoch - (variant === 'stalePartitionEpoch' ? 1 : 0),
      newIsr,
    });
    const expected: Record<AlterVariant, ErrorCode> = {
      valid: ErrorCode.NONE,
      caughtUp: ErrorCode.NONE,
      staleLeaderEpoch: ErrorCode.FENCED_LEADER_EPOCH,
      stalePartitionEpoch: ErrorCode.INVALID_UPDATE_VERSION,
      notLeader: ErrorCode.NOT_LEADER_OR_FOLLOWER,
      staleBrokerEpoch: ErrorCode.STALE_BROKER_EPOCH,
    };
    assert.equal(r.errorCode, expected[variant], `AlterPartition ${variant}`);
    if (r.errorCode !== ErrorCode.NONE) assert.deepEqual(r.records, []);
    this.apply(r.records);
  }
}

/** The state checks: `before` is every partition of the previous image, keyed topicId:partition. */
function check(w: World, before: Map<string, PartitionMeta>, uncleanBefore: Map<string, boolean>): void {
  for (const t of w.image.topics()) {
    for (const p of t.partitions) {
      const where = `${t.name}-${p.partition}`;
      assert.ok(p.isr.length > 0, `${where}: empty ISR`);
      assert.equal(new Set(p.isr).size, p.isr.length, `${where}: ISR repeats a broker`);
      assert.ok(
        p.isr.every((id) => p.replicas.includes(id)),
        `${where}: ISR outside the replicas`,
      );
      assert.ok(p.leader === -1 || p.isr.includes(p.leader), `${where}: leader outside the ISR`);
      assert.ok(p.leader === -1 || w.isLive(p.leader), `${where}: leader ${p.leader} is not live`);
      const liveIsr = p.isr.filter((id) => w.isLive(id));
      if (liveIsr.length > 0) {
        assert.notEqual(p.leader, -1, `${where}: offline with a live ISR member`);
        assert.equal(
          liveIsr.length,
          p.isr.length,
          `${where}: a fenced broker kept in an ISR with live members`,
        );
      }
      const prev = before.get(`${t.topicId}:${p.partition}`);
      if (prev === undefined) {
        assert.deepEqual(
          [p.leaderEpoch, p.partitionEpoch],
          [0, 0],
          `${where}: a new partition starts at epoch 0`,
        );
        continue;
      }
      assert.ok(p.leaderEpoch >= prev.leaderEpoch, `${where}: leader epoch went back`);
      if (p === prev) continue;
      assert.equal(p.partitionEpoch, prev.partitionEpoch + 1, `${where}: one change, one partition epoch`);
      assert.ok(
        p.leader !== prev.leader ||
          p.isr.join() !== prev.isr.join() ||
          p.replicas.join() !== prev.replicas.join(),
        `${where}: a change that changes nothing`,
      );
      if (p.isr.join() !== prev.isr.join()) seen.isrChanges++;
      if (p.leader !== prev.leader) {
        assert.equal(p.leaderEpoch, prev.leaderEpoch + 1, `${where}: a new leader, a new leader epoch`);
        if (p.leader === -1) seen.offline++;
        else if (!prev.isr.includes(p.leader)) {
          assert.ok(
            uncleanBefore.get(t.topicId),
            `${where}: unclean leader ${p.leader} (ISR was ${prev.isr})`,
          );
          seen.uncleanElections++;
        } else if (p.leader === p.replicas[0] && w.isLive(prev.leader)) seen.rebalances++;
        else seen.elections++;
      } else {
        assert.equal(p.leaderEpoch, prev.leaderEpoch, `${where}: leader epoch bumped without a new leader`);
      }
    }
  }
}

test('property: controller decisions keep partitions safe and live', (ctx) => {
  fc.assert(
    fc.property(
      fc.integer(),
      fc.array(opArb, { minLength: 20, maxLength: 150, size: 'max' }),
      (seed, ops) => {
        const w = new World(seed);
        for (const op of ops) {
          const before = new Map<string, PartitionMeta>();
          const uncleanBefore = new Map<string, boolean>();
          for (const t of w.image.topics()) {
            uncleanBefore.set(t.topicId, w.uncleanAllowed(t.topicId));
            for (const p of t.partitions) before.set(`${t.topicId}:${p.partition}`, p);
          }
          w.run(op);
          check(w, before, uncleanBefore);
        }
      },
    ),
    { numRuns: RUNS, seed: SEED },
  );
  ctx.diagnostic(`events over ${RUNS} runs from seed ${SEED}: ${JSON.stringify(seen)}`);
  if (RUNS >= 100)
    for (const [event, count] of Object.entries(seen)) assert.ok(count > 0, `no ${event} in any run`);
});
