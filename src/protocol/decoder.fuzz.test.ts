/**
 * Goal: no byte sequence can make a request decoder do anything but return a value or throw
 * DecodeError, and no frame can make it allocate far beyond its own size.
 *
 * Method: every request decoder (and the request header) at every version in its valid range is
 * fed (a) random bytes, up to 64 KiB, and (b) valid frames built from the schema descriptor (the
 * same descriptor-driven fast-check arbitraries as codec.property.test.ts) and then mutated: bit
 * flips, inserted/deleted/overwritten bytes, truncation, 4-byte windows set to 0x7fffffff, 5-byte
 * windows set to a maximal uvarint. Any exception other than DecodeError fails the test (a
 * RangeError from a Buffer read would mean a missing bounds check in primitives.ts). Every 8th
 * decode (and every explicit case) is bracketed by process.memoryUsage(); arrayBuffers + heapUsed
 * must not grow by more than 64 MiB for a frame of at most 64 KiB. Explicit hostile frames cover
 * an array count of 2^31-1, a compact array count of 2^31, a tagged-field count of 10^6 with no
 * bytes, a string length of 32767 with 3 bytes present, and a few relatives.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { FieldDescriptor, SchemaDescriptor } from './codec-support.js';
import { schemaDescriptors } from './generated/descriptors.js';
import { DecodeError, Reader, Writer } from './primitives.js';
import { type CodecModule, hex, loadModule, structArb, versionsOf } from './schema-arbitraries.js';

// ---- descriptor-driven arbitraries (kept in step with codec.property.test.ts) ----

// biome-ignore lint/suspicious/noExplicitAny: generated modules are looked up by name

// ---- the fuzzing harness ----

const RUNS = Number(process.env.DECODER_FUZZ_RUNS ?? 40);
const MEMORY_LIMIT = 64 * 1024 * 1024;
const MAX_FRAME = 64 * 1024;

let decodes = 0;
const memNow = (): number => {
  const m = process.memoryUsage();
  return m.arrayBuffers + m.heapUsed;
};

/** Decodes `frame`; returns a description of what went wrong, or undefined if all is well. */
function tryDecode(
  decode: (r: Reader, v: number) => unknown,
  version: number,
  frame: Buffer,
  measure = ++decodes % 8 === 0,
): string | undefined {
  const before = measure ? memNow() : 0;
  try {
    decode(new Reader(frame), version);
  } catch (e) {
    if (!(e instanceof DecodeError)) return `threw ${(e as Error)?.name}: ${(e as Error)?.message}`;
  }
  if (measure) {
    const grew = memNow() - before;
    if (grew > MEMORY_LIMIT) return `memory grew by ${(grew / 1048576).toFixed(1)} MiB`;
  }
  return undefined;
}

function encodeFrame(mod: CodecModule, d: SchemaDescriptor, version: number, value: unknown): Buffer {
  const w = new Writer(64);
  mod[`encode${d.name}`](w, value, version);
  return w.toBuffer();
}

type Mutation =
  | { kind: 'flip'; pos: number; bit: number }
  | { kind: 'insert'; pos: number; byte: number }
  | { kind: 'delete'; pos: number }
  | { kind: 'set'; pos: number; byte: number }
  | { kind: 'truncate'; pos: number }
  | { kind: 'int32max'; pos: number }
  | { kind: 'uvarintmax'; pos: number };

const pos = fc.nat();
const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), pos, bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('insert' as const), pos, byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('delete' as const), pos }),
  fc.record({ kind: fc.constant('set' as const), pos, byte: fc.constantFrom(0x00, 0x7f, 0x80, 0xff) }),
  fc.record({ kind: fc.constant('truncate' as const), pos }),
  fc.record({ kind: fc.constant('int32max' as const), pos }),
  fc.record({ kind: fc.constant('uvarintmax' as const), pos }),
);

function mutate(frame: Buffer, muts: Mutation[]): Buffer {
  let b = Buffer.from(frame);
  for (const m of muts) {
    const at = b.length === 0 ? 0 : m.pos % b.length;
    switch (m.kind) {
      case 'flip':
        if (b.length > 0) b[at] = b[at]! ^ (1 << m.bit);
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), Buffer.from([m.byte]), b.subarray(at)]);
        break;
      case 'delete':
        if (b.length > 0) b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
        break;
      case 'set':
        if (b.length > 0) b[at] = m.byte;
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'int32max':
        if (b.length >= 4) b.writeInt32BE(0x7fffffff, Math.min(at, b.length - 4));
        break;
      case 'uvarintmax':
        if (b.length >= 5) Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]).copy(b, Math.min(at, b.length - 5));
        break;
    }
  }
  return b;
}

const randomFrameArb = fc
  .oneof(
    { weight: 6, arbitrary: fc.uint8Array({ maxLength: 64 }) },
    { weight: 2, arbitrary: fc.uint8Array({ minLength: 64, maxLength: 2048 }) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: MAX_FRAME - 16, maxLength: MAX_FRAME }) },
  )
  .map((u) => Buffer.from(u));

const targets = schemaDescriptors.filter((d) => d.type === 'request' || d.name === 'RequestHeader');

test('fuzz targets: every request schema plus the request header', () => {
  assert.ok(targets.filter((d) => d.type === 'request').length > 60);
  assert.ok(targets.some((d) => d.name === 'RequestHeader'));
});

for (const d of targets) {
  test(`${d.name} decoder survives random and mutated frames at v${d.valid[0]}-v${d.valid[1]}`, async () => {
    const mod = await loadModule(d);
    const decode = mod[`decode${d.name}`] as (r: Reader, v: number) => unknown;
    for (const version of versionsOf(d)) {
      const frameArb = fc.oneof(
        { weight: 1, arbitrary: randomFrameArb },
        {
          weight: 3,
          arbitrary: fc
            .tuple(structArb(d, d.name, version), fc.array(mutationArb, { minLength: 1, maxLength: 4 }))
            .map(([value, muts]) => mutate(encodeFrame(mod, d, version, value), muts)),
        },
      );
      fc.assert(
        fc.property(frameArb, (frame) => {
          const problem = tryDecode(decode, version, frame);
          assert.equal(
            problem,
            undefined,
            `${d.name} v${version} on ${frame.length} bytes ${frame.subarray(0, 48).toString('hex')}: ${problem}`,
          );
        }),
        { numRuns: RUNS },
      );
    }
  });
}

// ---- explicit hostile frames ----

async function decoderOf(name: string): Promise<(r: Reader, v: number) => unknown> {
  const d = schemaDescriptors.find((s) => s.name === name);
  assert.ok(d, `no schema ${name}`);
  return (await loadModule(d))[`decode${name}`];
}

const uvarint = (n: number): Buffer => new Writer(8).uvarint(n).toBuffer();
const int32 = (n: number): Buffer => new Writer(4).int32(n).toBuffer();
const int16 = (n: number): Buffer => new Writer(2).int16(n).toBuffer();
const compactStr = (s: string): Buffer => new Writer(16).compactString(s).toBuffer();

/** The frame must be rejected with a DecodeError, quickly and without a large allocation. */
function assertRejected(
  decode: (r: Reader, v: number) => unknown,
  version: number,
  frame: Buffer,
  what: string,
  why?: RegExp,
): void {
  const before = memNow();
  const t0 = performance.now();
  assert.throws(
    () => decode(new Reader(frame), version),
    (e: unknown) => e instanceof DecodeError && (why === undefined || why.test(e.message)),
    what,
  );
  const grew = memNow() - before;
  assert.ok(grew < MEMORY_LIMIT, `${what}: memory grew by ${(grew / 1048576).toFixed(1)} MiB`);
  assert.ok(performance.now() - t0 < 1000, `${what}: took ${performance.now() - t0} ms`);
}

test('an array count of 2^31-1 with 3 bytes behind it is rejected without allocating', async () => {
  const metadata = await decoderOf('MetadataRequest');
  // Metadata v1: Topics is a nullable classic array of structs.
  assertRejected(
    metadata,
    1,
    Buffer.concat([int32(0x7fffffff), Buffer.from([0, 1, 97])]),
    'Metadata v1 topics',
    /count 2147483647 exceeds/,
  );
  const fetch = await decoderOf('FetchRequest');
  // Fetch v4: replicaId, maxWait, minBytes, maxBytes, isolationLevel, then Topics.
  assertRejected(
    fetch,
    4,
    Buffer.concat([
      int32(-1),
      int32(0),
      int32(0),
      int32(1),
      Buffer.from([0]),
      int32(0x7fffffff),
      Buffer.from([0, 1, 97]),
    ]),
    'Fetch v4 topics',
    /count 2147483647 exceeds/,
  );
  // A nested array of strings: DescribeConfigs v0 resources[] -> configurationKeys (nullable []string).
  const describeConfigs = await decoderOf('DescribeConfigsRequest');
  const resource = Buffer.concat([
    Buffer.from([2]),
    int16(1),
    Buffer.from('t'),
    int32(0x7fffffff),
    Buffer.from([0, 1, 97]),
  ]);
  assertRejected(
    describeConfigs,
    0,
    Buffer.concat([int32(1), resource]),
    'DescribeConfigs v0 configurationKeys',
    /count 2147483647 exceeds/,
  );
});

test('a compact array count of 2^31 is rejected without allocating', async () => {
  const metadata = await decoderOf('MetadataRequest');
  // Metadata v9 is flexible: Topics is a compact nullable array (uvarint N+1).
  assertRejected(
    metadata,
    9,
    Buffer.concat([uvarint(2 ** 31 + 1), Buffer.from([1, 2, 3])]),
    'Metadata v9 topics',
    /count 2147483648 exceeds/,
  );
  // The largest count a uvarint can carry (2^32-1 -> 2^32-2 elements).
  assertRejected(
    metadata,
    9,
    Buffer.concat([uvarint(2 ** 32 - 1), Buffer.from([1, 2, 3])]),
    'Metadata v9 topics, max uvarint',
    /count 4294967294 exceeds/,
  );
});

test('a tagged-field count of 10^6 with no bytes behind it is rejected', async () => {
  const apiVersions = await decoderOf('ApiVersionsRequest');
  assertRejected(
    apiVersions,
    3,
    Buffer.concat([compactStr('sluice'), compactStr('1.0'), uvarint(1_000_000)]),
    'ApiVersions v3 tagged fields',
    /tagged field count 1000000 exceeds/,
  );
  const header = await decoderOf('RequestHeader');
  assertRejected(
    header,
    2,
    Buffer.concat([int16(18), int16(3), int32(7), int16(-1), uvarint(1_000_000)]),
    'RequestHeader v2 tagged fields',
    /tagged field count 1000000 exceeds/,
  );
  // One tagged field claiming 2^31 bytes.
  assertRejected(
    apiVersions,
    3,
    Buffer.concat([
      compactStr('a'),
      compactStr('b'),
      uvarint(1),
      uvarint(5),
      uvarint(2 ** 31),
      Buffer.from([0]),
    ]),
    'ApiVersions v3 tagged field size 2^31',
    /need 2147483648 tagged field bytes/,
  );
});

test('a string length of 32767 with 3 bytes present is rejected', async () => {
  const findCoordinator = await decoderOf('FindCoordinatorRequest');
  assertRejected(
    findCoordinator,
    0,
    Buffer.concat([int16(32767), Buffer.from('abc')]),
    'FindCoordinator v0 key',
    /need 32767 string bytes/,
  );
  // The same for a compact string (FindCoordinator v3 is flexible).
  assertRejected(
    findCoordinator,
    3,
    Buffer.concat([uvarint(32768), Buffer.from('abc')]),
    'FindCoordinator v3 key',
    /need 32767 string bytes/,
  );
  // And bytes: SaslAuthenticate v0 AuthBytes with a length of 2^31-1.
  const sasl = await decoderOf('SaslAuthenticateRequest');
  assertRejected(
    sasl,
    0,
    Buffer.concat([int32(0x7fffffff), Buffer.from('abc')]),
    'SaslAuthenticate v0 authBytes',
    /need 2147483647 bytes/,
  );
});

test('over-long varints, negative non-null lengths and empty frames are DecodeErrors', async () => {
  const metadata = await decoderOf('MetadataRequest');
  assertRejected(
    metadata,
    9,
    Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
    'a 7-byte uvarint',
    /varint longer than 5 bytes/,
  );
  const fetch = await decoderOf('FetchRequest');
  assertRejected(
    fetch,
    4,
    Buffer.concat([int32(-1), int32(0), int32(0), int32(1), Buffer.from([0]), int32(-2)]),
    'Fetch v4 topics count -2',
    /not nullable/,
  );
  const findCoordinator = await decoderOf('FindCoordinatorRequest');
  assertRejected(
    findCoordinator,
    0,
    Buffer.concat([int16(-1)]),
    'FindCoordinator v0 null key',
    /null string/,
  );
  for (const d of targets) {
    const decode = (await loadModule(d))[`decode${d.name}`] as (r: Reader, v: number) => unknown;
    for (const version of versionsOf(d)) {
      const problem = tryDecode(decode, version, Buffer.alloc(0), false);
      assert.equal(problem, undefined, `${d.name} v${version} on an empty frame: ${problem}`);
    }
  }
});
