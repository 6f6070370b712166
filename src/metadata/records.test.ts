/**
 * Goal: every metadata record survives encode/decode unchanged, and no input makes the decoder do
 * anything but return well-formed records or throw MetadataRecordError.
 *
 * Method: a fixed round trip of every record type (optional fields present and absent), then
 * fast-check: random valid batches round-trip; random bytes, and valid batches mutated as text
 * (characters replaced, inserted, deleted) or as JSON (a field deleted, retyped or added, a record
 * replaced by a random JSON value) either decode to records that encode again or throw
 * MetadataRecordError. Explicit cases cover each kind of malformed input, and the size bound.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  METADATA_BATCH_BYTES_MAX,
  METADATA_BATCH_VERSION,
  type MetadataRecord,
  MetadataRecordError,
  checkMetadataRecord,
  decodeMetadataBatch,
  encodeMetadataBatch,
  metadataBatchBytes,
} from './records.js';

const TOPIC_ID = '0123456789abcdef0123456789abcdef';

const EVERY_TYPE: MetadataRecord[] = [
  { type: 'RegisterBroker', brokerId: 1, incarnationId: 'inc-1', host: 'h1', port: 9092, rack: null },
  {
    type: 'RegisterBroker',
    brokerId: 2,
    incarnationId: 'inc-2',
    host: 'h2',
    port: 0,
    rack: 'r1',
    brokerEpoch: 17,
    fenced: false,
  },
  { type: 'FenceBroker', brokerId: 1, brokerEpoch: 3 },
  { type: 'UnfenceBroker', brokerId: 1, brokerEpoch: 3 },
  { type: 'UnregisterBroker', brokerId: 2, brokerEpoch: 17 },
  { type: 'Topic', name: 'orders', topicId: TOPIC_ID },
  {
    type: 'Partition',
    topicId: TOPIC_ID,
    partitionId: 0,
    replicas: [1, 2, 3],
    isr: [1, 2],
    leader: 1,
    leaderEpoch: 0,
    partitionEpoch: 0,
  },
  { type: 'PartitionChange', topicId: TOPIC_ID, partitionId: 0 },
  { type: 'PartitionChange', topicId: TOPIC_ID, partitionId: 0, isr: [2], leader: 2, replicas: [2, 3] },
  { type: 'PartitionChange', topicId: TOPIC_ID, partitionId: 4, leader: -1 },
  { type: 'Config', resourceType: 'topic', resourceName: 'orders', name: 'retention.ms', value: '1000' },
  { type: 'Config', resourceType: 'broker', resourceName: '', name: 'log.retention.ms', value: null },
  { type: 'RemoveTopic', topicId: TOPIC_ID },
  { type: 'ProducerIds', brokerId: 1, brokerEpoch: 3, nextProducerId: 2000 },
];

function rejects(buf: Buffer, pattern?: RegExp): void {
  assert.throws(
    () => decodeMetadataBatch(buf),
    (err: unknown) =>
      err instanceof MetadataRecordError && (pattern === undefined || pattern.test(err.message)),
  );
}

/** A batch holding `json` as its text. */
function batchOf(json: string): Buffer {
  return Buffer.concat([Buffer.from([METADATA_BATCH_VERSION]), Buffer.from(json, 'utf8')]);
}

test('every record type round-trips', () => {
  const buf = encodeMetadataBatch(EVERY_TYPE);
  assert.equal(buf[0], METADATA_BATCH_VERSION);
  assert.equal(buf.length, metadataBatchBytes(EVERY_TYPE));
  assert.deepEqual(decodeMetadataBatch(buf), EVERY_TYPE);
  assert.deepEqual(decodeMetadataBatch(encodeMetadataBatch([])), []);
});

test('decoded records are fresh copies holding only their fields', () => {
  const records: MetadataRecord[] = [
    { type: 'PartitionChange', topicId: TOPIC_ID, partitionId: 0, isr: [1], leader: undefined },
  ];
  const checked = checkMetadataRecord(records[0]);
  assert.deepEqual(Object.keys(checked), ['type', 'topicId', 'partitionId', 'isr']);
  assert.notEqual((checked as { isr: number[] }).isr, (records[0] as { isr: number[] }).isr);
});

test('encode refuses malformed records', () => {
  const bad = [
    { type: 'FenceBroker', brokerId: -1, brokerEpoch: 0 },
    { type: 'Topic', name: 'orders', topicId: 'not-hex' },
    { type: 'Topic', name: 'bad name', topicId: TOPIC_ID },
    {
      type: 'Partition',
      topicId: TOPIC_ID,
      partitionId: 0,
      replicas: [],
      isr: [],
      leader: -1,
      leaderEpoch: 0,
      partitionEpoch: 0,
    },
  ] as unknown as MetadataRecord[];
  for (const r of bad) assert.throws(() => encodeMetadataBatch([r]), MetadataRecordError);
});

test('decode refuses each kind of malformed input', () => {
  const valid = JSON.parse(encodeMetadataBatch(EVERY_TYPE).subarray(1).toString()) as Record<
    string,
    unknown
  >[];
  const withRecord = (r: unknown) => batchOf(JSON.stringify([r]));
  const partition = valid[6]!;
  rejects(Buffer.alloc(0), /empty/);
  rejects(Buffer.from([2, 0x5b, 0x5d]), /version/);
  rejects(batchOf('[{"type":'), /JSON/);
  rejects(Buffer.from([METADATA_BATCH_VERSION, 0x5b, 0xff, 0x5d]), /UTF-8/);
  rejects(batchOf('{}'), /not an array/);
  rejects(withRecord(7), /not an object/);
  rejects(withRecord(null), /not an object/);
  rejects(withRecord({ type: 'NoSuchRecord' }), /unknown record type/);
  rejects(withRecord({ brokerId: 1, brokerEpoch: 0 }), /missing field type/);
  rejects(withRecord({ type: 'FenceBroker', brokerId: 1 }), /missing field brokerEpoch/);
  rejects(withRecord({ type: 'FenceBroker', brokerId: '1', brokerEpoch: 0 }), /brokerId/);
  rejects(withRecord({ type: 'FenceBroker', brokerId: 1.5, brokerEpoch: 0 }), /brokerId/);
  rejects(withRecord({ type: 'FenceBroker', brokerId: 1, brokerEpoch: 2 ** 60 }), /brokerEpoch/);
  rejects(
    withRecord({ type: 'FenceBroker', brokerId: 1, brokerEpoch: 0, extra: true }),
    /unknown field extra/,
  );
  rejects(withRecord({ ...partition, replicas: [1, 1] }), /twice/);
  rejects(withRecord({ ...partition, isr: [] }), /at least 1/);
  rejects(withRecord({ ...partition, leader: -2 }), /leader/);
  rejects(withRecord({ ...partition, topicId: '0'.repeat(32) }), /topicId/);
  rejects(withRecord({ ...partition, topicId: TOPIC_ID.toUpperCase() }), /topicId/);
  rejects(withRecord({ type: 'Topic', name: '..', topicId: TOPIC_ID }), /name/);
  rejects(
    withRecord({ type: 'Config', resourceType: 'group', resourceName: 'g', name: 'x', value: null }),
    /resourceType/,
  );
  rejects(
    withRecord({ type: 'RegisterBroker', brokerId: 1, incarnationId: '', host: 'h', port: 1, rack: null }),
    /incarnationId/,
  );
  rejects(
    withRecord({
      type: 'RegisterBroker',
      brokerId: 1,
      incarnationId: 'i',
      host: 'h',
      port: 70000,
      rack: null,
    }),
    /port/,
  );
  rejects(
    withRecord({
      type: 'RegisterBroker',
      brokerId: 1,
      incarnationId: 'i',
      host: 'h',
      port: 1,
      rack: null,
      fenced: 1,
    }),
    /fenced/,
  );
});

test('the size bound is checked before parsing, on both sides', () => {
  rejects(Buffer.alloc(METADATA_BATCH_BYTES_MAX + 1, 0x20), /exceeds/);
  const value = 'x'.repeat(30000);
  const big: MetadataRecord[] = [];
  for (let i = 0; i < Math.ceil(METADATA_BATCH_BYTES_MAX / value.length) + 1; i++) {
    big.push({ type: 'Config', resourceType: 'broker', resourceName: String(i), name: 'n', value });
  }
  assert.throws(() => encodeMetadataBatch(big), /exceeds/);
});

// ---- property tests ------------------------------------------------------------------------------

const brokerIdArb = fc.integer({ min: 0, max: 2147483647 });
const epochArb = fc.oneof(
  fc.integer({ min: 0, max: 1000 }),
  fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
);
const topicIdArb = fc
  .array(fc.constantFrom(...'0123456789abcdef'), { minLength: 32, maxLength: 32 })
  .map((cs) => cs.join(''))
  .filter((id) => id !== '0'.repeat(32));
const topicNameArb = fc
  .array(fc.constantFrom(...'abcXYZ019._-'), { minLength: 1, maxLength: 40 })
  .map((cs) => cs.join(''))
  .filter((n) => n !== '.' && n !== '..');
const brokerListArb = fc.uniqueArray(fc.integer({ min: 0, max: 20 }), { minLength: 1, maxLength: 5 });

const recordArb: fc.Arbitrary<MetadataRecord> = fc.oneof(
  fc.record(
    {
      type: fc.constant('RegisterBroker' as const),
      brokerId: brokerIdArb,
      incarnationId: fc.string({ minLength: 1, maxLength: 40 }),
      host: fc.string({ maxLength: 40 }),
      port: fc.integer({ min: 0, max: 65535 }),
      rack: fc.option(fc.string({ maxLength: 10 })),
      brokerEpoch: epochArb,
      fenced: fc.boolean(),
    },
    { requiredKeys: ['type', 'brokerId', 'incarnationId', 'host', 'port', 'rack'] },
  ),
  fc.record({
    type: fc.constantFrom('FenceBroker' as const, 'UnfenceBroker' as const, 'UnregisterBroker' as const),
    brokerId: brokerIdArb,
    brokerEpoch: epochArb,
  }),
  fc.record({ type: fc.constant('Topic' as const), name: topicNameArb, topicId: topicIdArb }),
  fc.record({
    type: fc.constant('Partition' as const),
    topicId: topicIdArb,
    partitionId: fc.nat(),
    replicas: brokerListArb,
    isr: brokerListArb,
    leader: fc.integer({ min: -1, max: 20 }),
    leaderEpoch: fc.nat(),
    partitionEpoch: fc.nat(),
  }),
  fc.record(
    {
      type: fc.constant('PartitionChange' as const),
      topicId: topicIdArb,
      partitionId: fc.nat(),
      isr: brokerListArb,
      leader: fc.integer({ min: -1, max: 20 }),
      replicas: brokerListArb,
    },
    { requiredKeys: ['type', 'topicId', 'partitionId'] },
  ),
  fc.record({
    type: fc.constant('Config' as const),
    resourceType: fc.constantFrom('topic' as const, 'broker' as const),
    resourceName: fc.string({ maxLength: 20 }),
    name: fc.string({ minLength: 1, maxLength: 30 }),
    value: fc.option(fc.string({ maxLength: 30 })),
  }),
  fc.record({ type: fc.constant('RemoveTopic' as const), topicId: topicIdArb }),
  fc.record({
    type: fc.constant('ProducerIds' as const),
    brokerId: brokerIdArb,
    brokerEpoch: epochArb,
    nextProducerId: epochArb,
  }),
);

const batchArb = fc.array(recordArb, { maxLength: 12 });

/** Decoding either throws MetadataRecordError or returns records that are valid again. */
function decodesOrRejects(buf: Buffer): void {
  let records: MetadataRecord[];
  try {
    records = decodeMetadataBatch(buf);
  } catch (err) {
    if (err instanceof MetadataRecordError) return;
    throw err;
  }
  assert.deepEqual(decodeMetadataBatch(encodeMetadataBatch(records)), records);
}

test('property: valid batches round-trip', () => {
  fc.assert(
    fc.property(batchArb, (records) => {
      assert.deepEqual(decodeMetadataBatch(encodeMetadataBatch(records)), records);
    }),
    { numRuns: 300 },
  );
});

test('property: random bytes decode or throw MetadataRecordError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 512 }), fc.boolean(), (bytes, versioned) => {
      const buf = Buffer.from(bytes);
      if (versioned && buf.length > 0) buf[0] = METADATA_BATCH_VERSION;
      decodesOrRejects(buf);
    }),
    { numRuns: 500 },
  );
});

test('property: batches mutated as text decode or throw MetadataRecordError', () => {
  const edit = fc.record({
    at: fc.double({ min: 0, max: 1, noNaN: true }),
    deleteCount: fc.integer({ min: 0, max: 8 }),
    insert: fc.string({ maxLength: 8, unit: fc.constantFrom(...'{}[]":,0123456789-.etrunfalsx\\') }),
  });
  fc.assert(
    fc.property(batchArb, fc.array(edit, { minLength: 1, maxLength: 4 }), (records, edits) => {
      let text = encodeMetadataBatch(records).subarray(1).toString('utf8');
      for (const e of edits) {
        const at = Math.floor(e.at * text.length);
        text = text.slice(0, at) + e.insert + text.slice(at + e.deleteCount);
      }
      decodesOrRejects(batchOf(text));
    }),
    { numRuns: 500 },
  );
});

test('property: batches mutated as JSON decode or throw MetadataRecordError', () => {
  const mutation = fc.record({
    kind: fc.constantFrom('delete', 'retype', 'add', 'replace'),
    record: fc.nat(),
    field: fc.nat(),
    value: fc.jsonValue({ maxDepth: 2 }),
    name: fc.string({ maxLength: 10 }),
  });
  fc.assert(
    fc.property(
      batchArb.filter((b) => b.length > 0),
      fc.array(mutation, { minLength: 1, maxLength: 3 }),
      (records, ms) => {
        const json = JSON.parse(JSON.stringify(records)) as unknown[];
        for (const m of ms) {
          const i = m.record % json.length;
          const r = json[i];
          if (m.kind === 'replace' || typeof r !== 'object' || r === null) {
            json[i] = m.value;
            continue;
          }
          const obj = r as Record<string, unknown>;
          const keys = Object.keys(obj);
          const key = keys[m.field % keys.length]!;
          if (m.kind === 'delete') delete obj[key];
          else if (m.kind === 'retype') obj[key] = m.value;
          else obj[m.name] = m.value;
        }
        decodesOrRejects(batchOf(JSON.stringify(json)));
      },
    ),
    { numRuns: 500 },
  );
});
