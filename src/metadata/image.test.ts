/**
 * Goal: MetadataImage applies records with KRaft's semantics, atomically per batch, hands out
 * objects that never change (a changed partition is a new object, an unchanged one keeps its
 * identity), and its snapshot (toRecords) replays into an equal image.
 *
 * Method: explicit batches for each record type and each invalid reference; then fast-check
 * builds random histories (brokers registering, fencing with current and stale epochs, topics
 * created, changed, reconfigured and removed, producer id blocks) from ops interpreted against the
 * current image so every batch is valid, and checks after each batch that partition objects were replaced exactly
 * where the delta says, and that the snapshot replays, through the codec, into an image with the
 * same contents and the same snapshot.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { MetadataImage } from './image.js';
import {
  type MetadataRecord,
  MetadataRecordError,
  decodeMetadataBatch,
  encodeMetadataBatch,
} from './records.js';

const A = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
const B = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';

function register(brokerId: number, incarnationId = `inc-${brokerId}`): MetadataRecord {
  return {
    type: 'RegisterBroker',
    brokerId,
    incarnationId,
    host: `h${brokerId}`,
    port: 9000 + brokerId,
    rack: null,
  };
}

function partition(
  topicId: string,
  partitionId: number,
  replicas: number[],
  leader = replicas[0]!,
): MetadataRecord {
  return {
    type: 'Partition',
    topicId,
    partitionId,
    replicas,
    isr: replicas,
    leader,
    leaderEpoch: 0,
    partitionEpoch: 0,
  };
}

/** An image with brokers 1..3 registered (at offset 1) and topic "a" (id A) of two partitions on 1,2,3. */
function withTopic(): MetadataImage {
  const image = new MetadataImage();
  image.apply([register(1), register(2), register(3)], 1);
  image.apply(
    [{ type: 'Topic', name: 'a', topicId: A }, partition(A, 0, [1, 2, 3]), partition(A, 1, [2, 3, 1])],
    2,
  );
  return image;
}

/** Everything an image holds, for comparing two images. */
function contents(image: MetadataImage): unknown {
  return {
    offset: image.offset,
    nextProducerId: image.nextProducerId,
    brokers: image.brokers(),
    topics: image.topics(),
    clusterConfig: image.brokerConfig(''),
  };
}

test('RegisterBroker: epoch is the batch offset, fenced until unfenced; stale records are ignored', () => {
  const image = new MetadataImage();
  const delta = image.apply([register(1)], 5);
  assert.deepEqual(delta.brokersChanged, [1]);
  assert.deepEqual(image.broker(1), {
    id: 1,
    epoch: 5,
    incarnationId: 'inc-1',
    host: 'h1',
    port: 9001,
    rack: null,
    fenced: true,
  });
  assert.deepEqual(image.liveBrokers(), []);
  // A stale epoch (4) changes nothing and is not reported.
  assert.deepEqual(
    image.apply([{ type: 'UnfenceBroker', brokerId: 1, brokerEpoch: 4 }], 6).brokersChanged,
    [],
  );
  assert.equal(image.broker(1)?.fenced, true);
  image.apply([{ type: 'UnfenceBroker', brokerId: 1, brokerEpoch: 5 }], 7);
  assert.equal(image.broker(1)?.fenced, false);
  assert.deepEqual(
    image.liveBrokers().map((b) => b.id),
    [1],
  );
  // A restart: a new registration, a new epoch, fenced again; the old epoch is now stale.
  image.apply([register(1, 'inc-1b')], 8);
  assert.equal(image.broker(1)?.epoch, 8);
  assert.equal(image.broker(1)?.fenced, true);
  image.apply([{ type: 'UnregisterBroker', brokerId: 1, brokerEpoch: 5 }], 9);
  assert.ok(image.broker(1));
  image.apply([{ type: 'UnregisterBroker', brokerId: 1, brokerEpoch: 8 }], 10);
  assert.equal(image.broker(1), undefined);
  // Records about a broker that is not registered are stale too.
  assert.deepEqual(
    image.apply([{ type: 'FenceBroker', brokerId: 9, brokerEpoch: 1 }], 11).brokersChanged,
    [],
  );
  assert.equal(image.offset, 11);
});

test('Topic, Config and Partition records create a topic, reported in the delta', () => {
  const image = new MetadataImage();
  image.apply([register(1), register(2)], 1);
  const delta = image.apply(
    [
      { type: 'Topic', name: 'a', topicId: A },
      { type: 'Config', resourceType: 'topic', resourceName: 'a', name: 'retention.ms', value: '5' },
      partition(A, 0, [1, 2]),
      partition(A, 1, [2, 1]),
    ],
    2,
  );
  const t = image.topic('a')!;
  assert.equal(image.topicById(A), t);
  assert.deepEqual(t.configs, { 'retention.ms': '5' });
  assert.deepEqual(delta.topicsCreated, [t]);
  assert.deepEqual(
    delta.partitionsChanged.map((c) => [c.current, c.previous]),
    [
      [t.partitions[0], undefined],
      [t.partitions[1], undefined],
    ],
  );
  assert.deepEqual(delta.topicConfigsChanged, []);
  assert.deepEqual(image.partition('a', 1), {
    topic: 'a',
    topicId: A,
    partition: 1,
    replicas: [2, 1],
    isr: [2, 1],
    leader: 2,
    leaderEpoch: 0,
    partitionEpoch: 0,
  });
  assert.ok(Object.isFrozen(t) && Object.isFrozen(t.partitions) && Object.isFrozen(t.partitions[0]!.isr));
});

test('PartitionChange: partitionEpoch +1 always, leaderEpoch +1 only with a new leader; identity', () => {
  const image = withTopic();
  const before = image.topic('a')!;
  const [p0, p1] = before.partitions;
  // ISR only.
  let delta = image.apply([{ type: 'PartitionChange', topicId: A, partitionId: 0, isr: [1, 2] }], 3);
  let t = image.topic('a')!;
  assert.notEqual(t, before);
  assert.notEqual(t.partitions[0], p0);
  assert.equal(t.partitions[1], p1, 'an unchanged partition keeps its object');
  assert.deepEqual(t.partitions[0], { ...p0, isr: [1, 2], partitionEpoch: 1 });
  assert.deepEqual(delta.partitionsChanged, [{ current: t.partitions[0], previous: p0 }]);
  assert.deepEqual(p0!.isr, [1, 2, 3], 'the previous object did not change');
  // A new leader.
  delta = image.apply([{ type: 'PartitionChange', topicId: A, partitionId: 0, leader: 2 }], 4);
  t = image.topic('a')!;
  assert.deepEqual(t.partitions[0], { ...p0, isr: [1, 2], leader: 2, leaderEpoch: 1, partitionEpoch: 2 });
  // Offline, then two changes of one partition in one batch: one delta entry, from the state before.
  const prev = t.partitions[0];
  delta = image.apply(
    [
      { type: 'PartitionChange', topicId: A, partitionId: 0, leader: -1, isr: [2] },
      { type: 'PartitionChange', topicId: A, partitionId: 0, leader: 2 },
    ],
    5,
  );
  t = image.topic('a')!;
  assert.deepEqual(t.partitions[0], { ...p0, isr: [2], leader: 2, leaderEpoch: 3, partitionEpoch: 4 });
  assert.deepEqual(delta.partitionsChanged, [{ current: t.partitions[0], previous: prev }]);
  // Replicas may change, with the ISR inside them.
  image.apply([{ type: 'PartitionChange', topicId: A, partitionId: 1, replicas: [2, 3], isr: [3, 2] }], 6);
  assert.deepEqual(image.partition('a', 1)?.replicas, [2, 3]);
  assert.deepEqual(image.partition('a', 1)?.leaderEpoch, 0);
});

test('Config changes are reported for existing topics; null removes; broker configs are kept apart', () => {
  const image = withTopic();
  let delta = image.apply(
    [
      { type: 'Config', resourceType: 'topic', resourceName: 'a', name: 'retention.ms', value: '1' },
      {
        type: 'Config',
        resourceType: 'broker',
        resourceName: '',
        name: 'unclean.leader.election.enable',
        value: 'true',
      },
    ],
    3,
  );
  assert.deepEqual(delta.topicConfigsChanged, ['a']);
  assert.deepEqual(image.topic('a')?.configs, { 'retention.ms': '1' });
  assert.deepEqual(image.brokerConfig(''), { 'unclean.leader.election.enable': 'true' });
  const t = image.topic('a');
  delta = image.apply(
    [{ type: 'Config', resourceType: 'topic', resourceName: 'a', name: 'retention.ms', value: '1' }],
    4,
  );
  assert.deepEqual(delta.topicConfigsChanged, [], 'setting the same value changes nothing');
  assert.equal(image.topic('a'), t);
  image.apply(
    [{ type: 'Config', resourceType: 'topic', resourceName: 'a', name: 'retention.ms', value: null }],
    5,
  );
  assert.deepEqual(image.topic('a')?.configs, {});
  // A config name that is an Object.prototype property is stored as an own property.
  image.apply(
    [{ type: 'Config', resourceType: 'topic', resourceName: 'a', name: '__proto__', value: 'x' }],
    6,
  );
  assert.deepEqual(Object.entries(image.topic('a')!.configs), [['__proto__', 'x']]);
});

test('RemoveTopic drops the topic and its configs; the name can be reused at once', () => {
  const image = withTopic();
  image.apply(
    [{ type: 'Config', resourceType: 'topic', resourceName: 'a', name: 'retention.ms', value: '1' }],
    3,
  );
  const old = image.topic('a')!;
  const delta = image.apply(
    [{ type: 'RemoveTopic', topicId: A }, { type: 'Topic', name: 'a', topicId: B }, partition(B, 0, [3])],
    4,
  );
  assert.deepEqual(delta.topicsRemoved, [old]);
  assert.equal(delta.topicsCreated.length, 1);
  assert.equal(image.topicById(A), undefined);
  assert.equal(image.topic('a')?.topicId, B);
  assert.deepEqual(image.topic('a')?.configs, {});
  assert.deepEqual(
    delta.partitionsChanged.map((c) => c.current.topicId),
    [B],
  );
  // A topic created and removed in one batch leaves no trace.
  const d2 = image.apply(
    [
      { type: 'Topic', name: 'b', topicId: A.replace(/a/g, 'c') },
      partition(A.replace(/a/g, 'c'), 0, [1]),
      { type: 'RemoveTopic', topicId: A.replace(/a/g, 'c') },
    ],
    5,
  );
  assert.deepEqual([d2.topicsCreated, d2.topicsRemoved, d2.partitionsChanged], [[], [], []]);
  assert.equal(image.topic('b'), undefined);
});

test('ProducerIds moves the next block forward only', () => {
  const image = new MetadataImage();
  assert.equal(image.nextProducerId, 0);
  image.apply([{ type: 'ProducerIds', brokerId: 1, brokerEpoch: 1, nextProducerId: 1000 }], 1);
  assert.equal(image.nextProducerId, 1000);
  assert.throws(
    () => image.apply([{ type: 'ProducerIds', brokerId: 1, brokerEpoch: 1, nextProducerId: 1000 }], 2),
    MetadataRecordError,
  );
});

test('invalid references throw MetadataRecordError and leave the image unchanged', () => {
  const cases: [string, MetadataRecord[]][] = [
    ['unknown topic id', [{ type: 'PartitionChange', topicId: B, partitionId: 0, isr: [1] }]],
    ['unknown partition', [{ type: 'PartitionChange', topicId: A, partitionId: 2, isr: [1] }]],
    ['partition gap', [partition(A, 3, [1])]],
    ['partition replaced', [partition(A, 0, [1])]],
    [
      'leader outside the ISR',
      [{ type: 'PartitionChange', topicId: A, partitionId: 0, isr: [1], leader: 2 }],
    ],
    ['ISR outside the replicas', [{ type: 'PartitionChange', topicId: A, partitionId: 0, replicas: [1, 2] }]],
    ['duplicate topic name', [{ type: 'Topic', name: 'a', topicId: B }]],
    ['duplicate topic id', [{ type: 'Topic', name: 'b', topicId: A }]],
    [
      'config of an unknown topic',
      [{ type: 'Config', resourceType: 'topic', resourceName: 'zz', name: 'n', value: 'v' }],
    ],
    ['remove an unknown topic', [{ type: 'RemoveTopic', topicId: B }]],
    [
      'change after remove',
      [
        { type: 'RemoveTopic', topicId: A },
        { type: 'PartitionChange', topicId: A, partitionId: 0 },
      ],
    ],
    ['malformed record', [{ type: 'FenceBroker', brokerId: -3, brokerEpoch: 1 }]],
  ];
  for (const [what, records] of cases) {
    const image = withTopic();
    const before = JSON.stringify(contents(image));
    // Each batch first makes a valid change, so atomicity is observable.
    const batch: MetadataRecord[] = [{ type: 'UnfenceBroker', brokerId: 1, brokerEpoch: 1 }, ...records];
    assert.throws(() => image.apply(batch, 3), MetadataRecordError, what);
    assert.equal(JSON.stringify(contents(image)), before, what);
  }
  const image = withTopic();
  assert.throws(() => image.apply([], 2), /does not follow/);
  assert.throws(() => image.apply([], 1.5), /does not follow/);
});

test('toRecords replays into an equal image', () => {
  const image = withTopic();
  image.apply(
    [
      { type: 'UnfenceBroker', brokerId: 2, brokerEpoch: 1 },
      { type: 'PartitionChange', topicId: A, partitionId: 1, leader: 3, isr: [3, 1] },
      { type: 'Config', resourceType: 'topic', resourceName: 'a', name: 'cleanup.policy', value: 'compact' },
      { type: 'Config', resourceType: 'broker', resourceName: '2', name: 'x', value: 'y' },
      { type: 'ProducerIds', brokerId: 2, brokerEpoch: 1, nextProducerId: 3000 },
    ],
    3,
  );
  const copy = MetadataImage.fromRecords(image.toRecords(), image.offset);
  assert.deepEqual(contents(copy), contents(image));
  assert.deepEqual(copy.toRecords(), image.toRecords());
  assert.deepEqual(copy.brokerConfig('2'), { x: 'y' });
});

// ---- random histories ---------------------------------------------------------------------------

type Op =
  | { kind: 'register'; broker: number; restart: boolean }
  | { kind: 'fence' | 'unfence' | 'unregister'; broker: number; stale: boolean }
  | { kind: 'createTopic'; name: number; partitions: number; rf: number }
  | { kind: 'change'; pick: number; isrMask: number; leaderPick: number; leaderless: boolean }
  | { kind: 'addPartition'; pick: number }
  | { kind: 'config'; pick: number; name: number; value: string | null }
  | { kind: 'removeTopic'; pick: number }
  | { kind: 'producerIds'; step: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('register' as const),
    broker: fc.integer({ min: 0, max: 4 }),
    restart: fc.boolean(),
  }),
  fc.record({
    kind: fc.constantFrom('fence' as const, 'unfence' as const, 'unregister' as const),
    broker: fc.integer({ min: 0, max: 4 }),
    stale: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('createTopic' as const),
    name: fc.integer({ min: 0, max: 5 }),
    partitions: fc.integer({ min: 1, max: 3 }),
    rf: fc.integer({ min: 1, max: 3 }),
  }),
  fc.record({
    kind: fc.constant('change' as const),
    pick: fc.nat(),
    isrMask: fc.nat(),
    leaderPick: fc.nat(),
    leaderless: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('addPartition' as const), pick: fc.nat() }),
  fc.record({
    kind: fc.constant('config' as const),
    pick: fc.nat(),
    name: fc.integer({ min: 0, max: 2 }),
    value: fc.option(fc.constantFrom('1', '2', 'compact')),
  }),
  fc.record({ kind: fc.constant('removeTopic' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('producerIds' as const), step: fc.integer({ min: 1, max: 5000 }) }),
);

/** The records an op makes against `image`: always a valid batch. */
function recordsFor(op: Op, image: MetadataImage, ids: () => string): MetadataRecord[] {
  const topics = image.topics();
  const pickTopic = (n: number) => (topics.length === 0 ? undefined : topics[n % topics.length]);
  switch (op.kind) {
    case 'register': {
      const b = image.broker(op.broker);
      const incarnation =
        op.restart || b === undefined ? `inc-${op.broker}-${image.offset}` : b.incarnationId;
      return [register(op.broker, incarnation)];
    }
    case 'fence':
    case 'unfence':
    case 'unregister': {
      const epoch = image.broker(op.broker)?.epoch ?? 0;
      const type =
        op.kind === 'fence' ? 'FenceBroker' : op.kind === 'unfence' ? 'UnfenceBroker' : 'UnregisterBroker';
      return [{ type, brokerId: op.broker, brokerEpoch: op.stale ? epoch + 1 : epoch }];
    }
    case 'createTopic': {
      const name = `t${op.name}`;
      if (image.topic(name)) return [];
      const topicId = ids();
      const replicas = [0, 1, 2, 3, 4].slice(0, op.rf);
      const out: MetadataRecord[] = [{ type: 'Topic', name, topicId }];
      for (let p = 0; p < op.partitions; p++) out.push(partition(topicId, p, replicas));
      return out;
    }
    case 'change': {
      const t = pickTopic(op.pick);
      if (!t) return [];
      const p = t.partitions[op.pick % t.partitions.length]!;
      const isr = p.replicas.filter((_, i) => (op.isrMask >> i) & 1);
      const newIsr = isr.length > 0 ? isr : [p.replicas[0]!];
      const leader = op.leaderless ? -1 : newIsr[op.leaderPick % newIsr.length]!;
      return [{ type: 'PartitionChange', topicId: t.topicId, partitionId: p.partition, isr: newIsr, leader }];
    }
    case 'addPartition': {
      const t = pickTopic(op.pick);
      return t ? [partition(t.topicId, t.partitions.length, [...t.partitions[0]!.replicas])] : [];
    }
    case 'config': {
      const t = pickTopic(op.pick);
      const name = ['retention.ms', 'cleanup.policy', 'segment.ms'][op.name]!;
      return t
        ? [{ type: 'Config', resourceType: 'topic', resourceName: t.name, name, value: op.value }]
        : [];
    }
    case 'removeTopic': {
      const t = pickTopic(op.pick);
      return t ? [{ type: 'RemoveTopic', topicId: t.topicId }] : [];
    }
    case 'producerIds':
      return [
        { type: 'ProducerIds', brokerId: 0, brokerEpoch: 0, nextProducerId: image.nextProducerId + op.step },
      ];
  }
}

test('property: after any history the snapshot replays into an equal image', () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
      const image = new MetadataImage();
      let n = 0;
      const ids = () => (++n).toString(16).padStart(32, '0');
      for (const op of ops) {
        const before = image.topics();
        const records = decodeMetadataBatch(encodeMetadataBatch(recordsFor(op, image, ids)));
        const delta = image.apply(records, image.offset + 1);
        // Identity: a partition object is replaced exactly when the delta reports it changed.
        const changed = new Set(delta.partitionsChanged.map((c) => c.current));
        for (const t of before) {
          const now = image.topicById(t.topicId);
          t.partitions.forEach((p, i) => {
            if (now) assert.equal(now.partitions[i] !== p, changed.has(now.partitions[i]!));
          });
        }
        const snapshot = decodeMetadataBatch(encodeMetadataBatch(image.toRecords()));
        const copy = MetadataImage.fromRecords(snapshot, image.offset);
        assert.deepEqual(contents(copy), contents(image));
        assert.deepEqual(copy.toRecords(), image.toRecords());
      }
    }),
    { numRuns: 200 },
  );
});
