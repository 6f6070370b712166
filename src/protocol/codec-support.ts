/**
 * Support for the generated codec: shared constants, the Encodable input type and tagged-field
 * writing. Kept apart from primitives.ts so the generated files depend on one small surface.
 */

import type { RawTaggedField, Writer } from './primitives.js';

export const EMPTY_BUFFER: Buffer = Buffer.alloc(0);
export const ZERO_UUID = '00000000000000000000000000000000';

/** Thrown when a value cannot be encoded at the requested version (e.g. null where not nullable). */
export class EncodeError extends Error {
  readonly code = 'ENCODE_ERROR';
  constructor(message: string) {
    super(message);
    this.name = 'EncodeError';
  }
}

/**
 * What an encoder accepts: the message type with every field optional, recursively. Missing
 * fields are written as the schema's default, so handlers only fill what a version needs.
 */
export type Encodable<T> = T extends Uint8Array
  ? T
  : T extends RawTaggedField
    ? T
    : T extends (infer U)[]
    ? Encodable<U>[]
    : T extends object
      ? { [K in keyof T]?: Encodable<T[K]> }
      : T;

/** Writes a tagged-field section; entries must be in ascending tag order (sorted here). */
export function writeTaggedFields(w: Writer, fields: RawTaggedField[]): void {
  if (fields.length === 0) {
    w.uvarint(0);
    return;
  }
  fields.sort((a, b) => a.tag - b.tag);
  w.uvarint(fields.length);
  for (const f of fields) {
    w.uvarint(f.tag);
    w.uvarint(f.data.length);
    w.raw(f.data);
  }
}

/** One field of a schema descriptor (see generated/descriptors.ts). */
export interface FieldDescriptor {
  name: string;
  type: string;
  versions: [number, number];
  nullable?: [number, number];
  tagged?: [number, number];
  tag?: number;
  flexible?: [number, number];
}

/** A schema as the generator saw it, for tests that build random messages of any API and version. */
export interface SchemaDescriptor {
  module: string;
  name: string;
  type: string;
  apiKey: number;
  valid: [number, number];
  flexibleMin: number;
  structs: Record<string, FieldDescriptor[]>;
}
