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
import {
  type CodecModule,
  fieldPresent,
  hex,
  loadModule,
  structArb,
  versionsOf,
} from './schema-arbitraries.js';

// biome-ignore lint/suspicious/noExplicitAny: generated modules are looked up by name

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
