/**
 * Goal: every generated codec round-trips. For EVERY schema in schemaDescriptors (requests,
 * responses, headers, group-coordinator and other data records) and EVERY version in its valid
 * range, decode(encode(x)) equals x and consumes exactly the bytes written.
 *
 * Method: a fast-check arbitrary is built from the schema's descriptor for that one version: only
 * fields whose version range includes it, null only where nullable at that version, tagged fields
 * only in their tagged range (plus random unknown tagged fields in flexible versions), ints per
 * type, int64 within +-2^53, uuids as 32 hex chars, ascii and full-unicode strings, small
 * depth-limited arrays (occasionally 127+ elements/bytes so compact lengths need 2-byte varints).
 * Each value is encoded with `encode<Name>` and decoded with `decode<Name>` from
 * ./generated/<module>.js, and we check:
 *   1. the decoder consumed exactly all bytes;
 *   2. the decoded value deep-equals the struct defaults overlaid with every field present at
 *      that version (field by field, recursively; absent fields must come back as defaults);
 *   3. decode(encode(decoded)) equals decoded, and for values that set every present field,
 *      re-encoding the decoded value gives the very same bytes.
 * Also the all-defaults message ({}): missing fields must be written as the schema's defaults
 * (a struct-typed tagged field equal to its default may or may not be written; 2 and 3 hold).
 * ~8 runs per (schema, version) keep the whole file at a few seconds.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { FieldDescriptor, SchemaDescriptor } from './codec-support.js';
import { schemaDescriptors } from './generated/descriptors.js';
import { Reader, Writer } from './primitives.js';

// biome-ignore lint/suspicious/noExplicitAny: generated modules are looked up by name
type CodecModule = Record<string, any>;

const inRange = (r: [number, number] | undefined, v: number): boolean =>
  r !== undefined && r[0] <= v && v <= r[1];

function isFlexible(d: SchemaDescriptor, version: number): boolean {
  return d.flexibleMin >= 0 && version >= d.flexibleMin;
}

/** Whether a field is on the wire at `version` (tagged fields only in their tagged range, and only when flexible). */
function fieldPresent(d: SchemaDescriptor, f: FieldDescriptor, version: number): boolean {
  if (!inRange(f.versions, version)) return false;
  if (f.tagged) return isFlexible(d, version) && inRange(f.tagged, version);
  return true;
}

function versionsOf(d: SchemaDescriptor): number[] {
  const out: number[] = [];
  for (let v = d.valid[0]; v <= d.valid[1]; v++) out.push(v);
  return out;
}

async function loadModule(d: SchemaDescriptor): Promise<CodecModule> {
  return (await import(`./generated/${d.module}.js`)) as CodecModule;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

const INT64_MAX = 2 ** 53;
const stringArb = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 8 }) },
  { weight: 4, arbitrary: fc.string({ unit: 'binary', maxLength: 6 }) },
  // Long enough that a compact length needs a 2-byte uvarint.
  { weight: 1, arbitrary: fc.string({ minLength: 127, maxLength: 140 }) },
);
const bytesArb = fc
  .oneof(
    { weight: 6, arbitrary: fc.uint8Array({ maxLength: 12 }) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 127, maxLength: 140 }) },
  )
  .map((u) => Buffer.from(u));

function primitiveArb(type: string): fc.Arbitrary<unknown> | undefined {
  switch (type) {
    case 'bool':
      return fc.boolean();
    case 'int8':
      return fc.integer({ min: -128, max: 127 });
    case 'int16':
      return fc.integer({ min: -32768, max: 32767 });
    case 'uint16':
      return fc.integer({ min: 0, max: 65535 });
    case 'int32':
      return fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
    case 'uint32':
      return fc.integer({ min: 0, max: 2 ** 32 - 1 });
    case 'int64':
      return fc.oneof(
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        fc.maxSafeInteger(),
        fc.constantFrom(INT64_MAX, -INT64_MAX, -1, 0, 2 ** 32, -(2 ** 32), 2 ** 32 - 1),
      );
    case 'float64':
      return fc.double();
    case 'string':
      return stringArb;
    case 'bytes':
    case 'records':
      return bytesArb;
    case 'uuid':
      return fc.uint8Array({ minLength: 16, maxLength: 16 }).map(hex);
    default:
      return undefined;
  }
}

const MAX_DEPTH = 4;

/**
 * Random values of `structName` at `version`: only fields on the wire at that version, null only
 * where nullable at that version, plus (in flexible versions) a few unknown tagged fields.
 */
function structArb(
  d: SchemaDescriptor,
  structName: string,
  version: number,
  depth = 0,
): fc.Arbitrary<Record<string, unknown>> {
  const fields = d.structs[structName];
  if (!fields) throw new Error(`${d.name}: no struct ${structName}`);
  const rec: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of fields) {
    if (!fieldPresent(d, f, version)) continue;
    let arb = valueArb(d, f.type, version, depth);
    if (inRange(f.nullable, version) || (f.type === 'records' && inRange(f.versions, version))) {
      arb = fc.option(arb, { nil: null, freq: 3 });
    }
    rec[f.name] = arb;
  }
  if (isFlexible(d, version)) {
    const known = new Set(fields.filter((f) => f.tag !== undefined).map((f) => f.tag));
    rec.unknownTaggedFields = fc
      .uniqueArray(fc.integer({ min: 0, max: 20000 }), { maxLength: 2 })
      .map((tags) => tags.filter((t) => !known.has(t)).sort((a, b) => a - b))
      .chain((tags) =>
        fc.tuple(...tags.map((t) => bytesArb.map((data) => ({ tag: t, data })))),
      ) as fc.Arbitrary<unknown>;
    return fc
      .record(rec)
      .map(({ unknownTaggedFields, ...r }) =>
        (unknownTaggedFields as unknown[]).length === 0 ? r : { ...r, unknownTaggedFields },
      );
  }
  return fc.record(rec);
}

function valueArb(d: SchemaDescriptor, type: string, version: number, depth: number): fc.Arbitrary<unknown> {
  if (type.startsWith('[]')) {
    const elem = type.slice(2);
    const prim = primitiveArb(elem);
    const maxLength = depth >= MAX_DEPTH ? 0 : depth >= 2 ? 1 : 3;
    if (prim) {
      // Occasionally long enough that a compact count needs a 2-byte uvarint.
      return fc.oneof(
        { weight: 8, arbitrary: fc.array(prim, { maxLength }) },
        { weight: depth === 0 ? 1 : 0, arbitrary: fc.array(prim, { minLength: 127, maxLength: 129 }) },
      );
    }
    return fc.array(structArb(d, elem, version, depth + 1), { maxLength });
  }
  const prim = primitiveArb(type);
  if (prim) return prim;
  return structArb(d, type, version, depth + 1);
}

/**
 * What the decoder should produce for `value`: the struct's defaults, overlaid with every field
 * that is on the wire at `version`.
 */
function expectedOf(
  mod: CodecModule,
  d: SchemaDescriptor,
  structName: string,
  version: number,
  value: Record<string, unknown>,
): Record<string, unknown> {
  const out = mod[`default${structName}`]() as Record<string, unknown>;
  for (const f of d.structs[structName]!) {
    if (!fieldPresent(d, f, version) || !(f.name in value)) continue;
    const v = value[f.name];
    out[f.name] = expectedValue(mod, d, f.type, version, v);
  }
  if (value.unknownTaggedFields) out.unknownTaggedFields = value.unknownTaggedFields;
  return out;
}

function expectedValue(
  mod: CodecModule,
  d: SchemaDescriptor,
  type: string,
  version: number,
  v: unknown,
): unknown {
  if (v === null) return null;
  if (type.startsWith('[]'))
    return (v as unknown[]).map((e) => expectedValue(mod, d, type.slice(2), version, e));
  if (d.structs[type]) return expectedOf(mod, d, type, version, v as Record<string, unknown>);
  return v;
}

const RUNS = Number(process.env.CODEC_PROPERTY_RUNS ?? 8);

function encode(mod: CodecModule, d: SchemaDescriptor, version: number, value: unknown): Buffer {
  const w = new Writer(16);
  mod[`encode${d.name}`](w, value, version);
  return w.toBuffer();
}

function decodeAll(
  mod: CodecModule,
  d: SchemaDescriptor,
  version: number,
  bytes: Buffer,
): Record<string, unknown> {
  const r = new Reader(bytes);
  const decoded = mod[`decode${d.name}`](r, version);
  assert.equal(
    r.offset,
    bytes.length,
    `${d.name} v${version}: decoder consumed ${r.offset} of ${bytes.length} bytes`,
  );
  return decoded;
}

/**
 * `complete`: the value sets every field present at this version, so re-encoding the decoded value
 * must give the very same bytes. For partial values (missing fields written as defaults) only the
 * decoded value must be stable: a struct-typed tagged field left at its default may be omitted
 * the first time and written the second.
 */
function roundTrip(
  mod: CodecModule,
  d: SchemaDescriptor,
  version: number,
  value: Record<string, unknown>,
  complete: boolean,
): void {
  const bytes = encode(mod, d, version, value);
  const decoded = decodeAll(mod, d, version, bytes);
  assert.deepEqual(
    decoded,
    expectedOf(mod, d, d.name, version, value),
    `${d.name} v${version}: round trip differs`,
  );
  const bytes2 = encode(mod, d, version, decoded);
  if (complete)
    assert.deepEqual(bytes2, bytes, `${d.name} v${version}: re-encoding the decoded value changed the bytes`);
  assert.deepEqual(
    decodeAll(mod, d, version, bytes2),
    decoded,
    `${d.name} v${version}: decode(encode(decoded)) differs`,
  );
}

test('descriptors cover requests, responses, headers and data records', () => {
  const kinds = new Set(schemaDescriptors.map((d) => d.type));
  for (const k of ['request', 'response', 'header', 'data']) assert.ok(kinds.has(k), `no ${k} schemas`);
  assert.ok(schemaDescriptors.length > 150);
});

for (const d of schemaDescriptors) {
  test(`${d.name} (${d.type}) round-trips at v${d.valid[0]}-v${d.valid[1]}`, async () => {
    const mod = await loadModule(d);
    assert.equal(typeof mod[`encode${d.name}`], 'function');
    assert.equal(typeof mod[`decode${d.name}`], 'function');
    for (const version of versionsOf(d)) {
      // The all-defaults message (every field omitted) must round-trip too.
      roundTrip(mod, d, version, {}, false);
      fc.assert(
        fc.property(structArb(d, d.name, version), (value) => roundTrip(mod, d, version, value, true)),
        { numRuns: RUNS },
      );
    }
  });
}
