/**
 * fast-check arbitraries built from the generated schema descriptors: a random, valid value of
 * any message at any version. Shared by the codec property test and the decoder fuzz test.
 * Not a test file itself (no `.test.ts`), so the runner does not execute it.
 */

import fc from 'fast-check';
import type { FieldDescriptor, SchemaDescriptor } from './codec-support.js';

// biome-ignore lint/suspicious/noExplicitAny: generated modules are looked up by name
export type CodecModule = Record<string, any>;

export const inRange = (r: [number, number] | undefined, v: number): boolean =>
  r !== undefined && r[0] <= v && v <= r[1];

export function isFlexible(d: SchemaDescriptor, version: number): boolean {
  return d.flexibleMin >= 0 && version >= d.flexibleMin;
}

/** Whether a field is on the wire at `version` (tagged fields only in their tagged range, and only when flexible). */
export function fieldPresent(d: SchemaDescriptor, f: FieldDescriptor, version: number): boolean {
  if (!inRange(f.versions, version)) return false;
  if (f.tagged) return isFlexible(d, version) && inRange(f.tagged, version);
  return true;
}

export function versionsOf(d: SchemaDescriptor): number[] {
  const out: number[] = [];
  for (let v = d.valid[0]; v <= d.valid[1]; v++) out.push(v);
  return out;
}

export async function loadModule(d: SchemaDescriptor): Promise<CodecModule> {
  return (await import(`./generated/${d.module}.js`)) as CodecModule;
}

export const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

export const INT64_MAX = 2 ** 53;
export const stringArb = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 8 }) },
  { weight: 4, arbitrary: fc.string({ unit: 'binary', maxLength: 6 }) },
  // Long enough that a compact length needs a 2-byte uvarint.
  { weight: 1, arbitrary: fc.string({ minLength: 127, maxLength: 140 }) },
);
export const bytesArb = fc
  .oneof(
    { weight: 6, arbitrary: fc.uint8Array({ maxLength: 12 }) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 127, maxLength: 140 }) },
  )
  .map((u) => Buffer.from(u));

export function primitiveArb(type: string): fc.Arbitrary<unknown> | undefined {
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

export const MAX_DEPTH = 4;

/**
 * Random values of `structName` at `version`: only fields on the wire at that version, null only
 * where nullable at that version, plus (in flexible versions) a few unknown tagged fields.
 */
export function structArb(
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

export function valueArb(
  d: SchemaDescriptor,
  type: string,
  version: number,
  depth: number,
): fc.Arbitrary<unknown> {
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
