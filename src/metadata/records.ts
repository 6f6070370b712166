/**
 * The cluster metadata records (KRaft's, KIP-500/KIP-631), under Kafka's record names and fields
 * where they apply, and their encoding as one Raft entry.
 *
 * One Raft entry holds one batch: the records one controller operation decided, applied atomically
 * (`MetadataImage.apply`). The encoding is a version byte followed by the batch as UTF-8 JSON (the
 * KRaft binary schemas are not available here). Every record is checked on both sides of the
 * boundary: `encodeMetadataBatch` refuses to write a malformed record and `decodeMetadataBatch`
 * refuses to return one, so an entry in the log is always well formed. These checks are
 * structural (types, ranges, distinct broker lists); whether a record fits the image it is applied
 * to (a known topic id, an ISR within the replicas) is the image's check.
 */

import { isTopicId, validateTopicName } from './names.js';

export type MetadataRecord =
  | {
      type: 'RegisterBroker';
      brokerId: number;
      incarnationId: string;
      host: string;
      port: number;
      rack: string | null;
      /**
       * Only in snapshots (`MetadataImage.toRecords`): the registration's epoch and fencing state.
       * Absent (as the controller writes it) the epoch is the batch's offset and the broker fenced.
       */
      brokerEpoch?: number;
      fenced?: boolean;
    }
  | { type: 'FenceBroker'; brokerId: number; brokerEpoch: number }
  | { type: 'UnfenceBroker'; brokerId: number; brokerEpoch: number }
  | { type: 'UnregisterBroker'; brokerId: number; brokerEpoch: number }
  | { type: 'Topic'; name: string /** 32 hex chars */; topicId: string }
  | {
      type: 'Partition';
      topicId: string;
      partitionId: number;
      replicas: number[];
      isr: number[];
      leader: number;
      leaderEpoch: number;
      partitionEpoch: number;
    }
  | {
      type: 'PartitionChange';
      topicId: string;
      partitionId: number;
      isr?: number[];
      leader?: number;
      replicas?: number[];
    }
  | {
      type: 'Config';
      resourceType: 'topic' | 'broker';
      /** A topic name, or for brokers a broker id ('' is the cluster-wide default, as in Kafka). */
      resourceName: string;
      name: string;
      /** null removes the config. */
      value: string | null;
    }
  | { type: 'RemoveTopic'; topicId: string }
  | { type: 'ProducerIds'; brokerId: number; brokerEpoch: number; nextProducerId: number };

/** The encoding's version; a decoder refuses any other. */
export const METADATA_BATCH_VERSION = 1;

/**
 * Upper bound of one encoded batch, checked before parsing. The controller bounds its operations
 * (10000 partitions per request, 10000 partition changes per operation) well below it.
 */
export const METADATA_BATCH_BYTES_MAX = 32 * 1024 * 1024;

/** Kafka strings are int16-length-prefixed; the controller refuses longer config values. */
export const STRING_CHARS_MAX = 32767;
const INCARNATION_ID_CHARS_MAX = 64;
const INT32_MAX = 2147483647;

/** fatal: invalid UTF-8 is corruption, not something to replace with U+FFFD. */
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** A metadata record or batch that is malformed (decoding), or does not fit the image (applying). */
export class MetadataRecordError extends Error {
  readonly code = 'INVALID_METADATA_RECORD';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MetadataRecordError';
  }
}

/** Encodes one batch; throws MetadataRecordError for a malformed record or an oversized batch. */
export function encodeMetadataBatch(records: readonly MetadataRecord[]): Buffer {
  const checked = records.map((r, i) => checkMetadataRecord(r, i));
  const json = Buffer.from(JSON.stringify(checked), 'utf8');
  if (json.length + 1 > METADATA_BATCH_BYTES_MAX) {
    throw new MetadataRecordError(
      `metadata batch of ${json.length + 1} bytes exceeds ${METADATA_BATCH_BYTES_MAX}`,
    );
  }
  const out = Buffer.allocUnsafe(json.length + 1);
  out[0] = METADATA_BATCH_VERSION;
  json.copy(out, 1);
  return out;
}

/** The size `encodeMetadataBatch` would give the batch, to bound an operation before proposing it. */
export function metadataBatchBytes(records: readonly MetadataRecord[]): number {
  return 1 + Buffer.byteLength(JSON.stringify(records), 'utf8');
}

/** Decodes one batch; throws MetadataRecordError (only) on anything malformed. */
export function decodeMetadataBatch(buf: Buffer): MetadataRecord[] {
  if (buf.length > METADATA_BATCH_BYTES_MAX) {
    throw new MetadataRecordError(
      `metadata batch of ${buf.length} bytes exceeds ${METADATA_BATCH_BYTES_MAX}`,
    );
  }
  if (buf.length === 0) throw new MetadataRecordError('empty metadata batch');
  if (buf[0] !== METADATA_BATCH_VERSION)
    throw new MetadataRecordError(`unknown metadata batch version ${buf[0]}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(UTF8.decode(buf.subarray(1)));
  } catch (err) {
    throw new MetadataRecordError('metadata batch is not valid UTF-8 JSON', { cause: err });
  }
  if (!Array.isArray(parsed)) throw new MetadataRecordError('metadata batch is not an array');
  return parsed.map((r, i) => checkMetadataRecord(r, i));
}

/**
 * Checks one record's shape and returns a fresh copy holding only its fields, so the caller owns
 * every array in it. Unknown types, missing, extra or mistyped fields throw MetadataRecordError.
 */
export function checkMetadataRecord(value: unknown, index = 0): MetadataRecord {
  const r = new FieldReader(value, index);
  const type = r.string('type', 32);
  switch (type) {
    case 'RegisterBroker': {
      const out: Extract<MetadataRecord, { type: 'RegisterBroker' }> = {
        type,
        brokerId: r.brokerId('brokerId'),
        incarnationId: r.nonEmptyString('incarnationId', INCARNATION_ID_CHARS_MAX),
        host: r.string('host', STRING_CHARS_MAX),
        port: r.int('port', 0, 65535),
        rack: r.nullableString('rack'),
      };
      if (r.has('brokerEpoch')) out.brokerEpoch = r.safeInt('brokerEpoch', 0);
      if (r.has('fenced')) out.fenced = r.boolean('fenced');
      return r.done(out);
    }
    case 'FenceBroker':
    case 'UnfenceBroker':
    case 'UnregisterBroker':
      return r.done({ type, brokerId: r.brokerId('brokerId'), brokerEpoch: r.safeInt('brokerEpoch', 0) });
    case 'Topic': {
      const name = r.string('name', STRING_CHARS_MAX);
      const nameError = validateTopicName(name);
      if (nameError !== null) throw r.error(`name: ${nameError}`);
      return r.done({ type, name, topicId: r.topicId('topicId') });
    }
    case 'Partition':
      return r.done({
        type,
        topicId: r.topicId('topicId'),
        partitionId: r.int('partitionId', 0, INT32_MAX),
        replicas: r.brokerList('replicas', 1),
        isr: r.brokerList('isr', 1),
        leader: r.int('leader', -1, INT32_MAX),
        leaderEpoch: r.int('leaderEpoch', 0, INT32_MAX),
        partitionEpoch: r.int('partitionEpoch', 0, INT32_MAX),
      });
    case 'PartitionChange': {
      const out: Extract<MetadataRecord, { type: 'PartitionChange' }> = {
        type,
        topicId: r.topicId('topicId'),
        partitionId: r.int('partitionId', 0, INT32_MAX),
      };
      if (r.has('isr')) out.isr = r.brokerList('isr', 1);
      if (r.has('leader')) out.leader = r.int('leader', -1, INT32_MAX);
      if (r.has('replicas')) out.replicas = r.brokerList('replicas', 1);
      return r.done(out);
    }
    case 'Config': {
      const resourceType = r.string('resourceType', 16);
      if (resourceType !== 'topic' && resourceType !== 'broker') {
        throw r.error(`resourceType must be "topic" or "broker", not ${JSON.stringify(resourceType)}`);
      }
      return r.done({
        type,
        resourceType,
        resourceName: r.string('resourceName', STRING_CHARS_MAX),
        name: r.nonEmptyString('name', STRING_CHARS_MAX),
        value: r.nullableString('value'),
      });
    }
    case 'RemoveTopic':
      return r.done({ type, topicId: r.topicId('topicId') });
    case 'ProducerIds':
      return r.done({
        type,
        brokerId: r.brokerId('brokerId'),
        brokerEpoch: r.safeInt('brokerEpoch', 0),
        nextProducerId: r.safeInt('nextProducerId', 0),
      });
    default:
      throw r.error(`unknown record type ${JSON.stringify(type)}`);
  }
}

/** Reads typed fields off one parsed record and remembers which it read, to refuse extra ones. */
class FieldReader {
  private readonly obj: Record<string, unknown>;
  private readonly read = new Set<string>();

  constructor(
    value: unknown,
    private readonly index: number,
  ) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new MetadataRecordError(`record ${index} is not an object`);
    }
    this.obj = value as Record<string, unknown>;
  }

  error(message: string): MetadataRecordError {
    const type = typeof this.obj.type === 'string' ? ` (${this.obj.type.slice(0, 32)})` : '';
    return new MetadataRecordError(`record ${this.index}${type}: ${message}`);
  }

  has(field: string): boolean {
    return Object.hasOwn(this.obj, field) && this.obj[field] !== undefined;
  }

  private get(field: string): unknown {
    if (!Object.hasOwn(this.obj, field)) throw this.error(`missing field ${field}`);
    this.read.add(field);
    return this.obj[field];
  }

  string(field: string, charsMax: number): string {
    const v = this.get(field);
    if (typeof v !== 'string') throw this.error(`${field} must be a string`);
    if (v.length > charsMax) throw this.error(`${field} is longer than ${charsMax} characters`);
    return v;
  }

  nonEmptyString(field: string, charsMax: number): string {
    const v = this.string(field, charsMax);
    if (v.length === 0) throw this.error(`${field} must not be empty`);
    return v;
  }

  nullableString(field: string): string | null {
    return this.get(field) === null ? null : this.string(field, STRING_CHARS_MAX);
  }

  boolean(field: string): boolean {
    const v = this.get(field);
    if (typeof v !== 'boolean') throw this.error(`${field} must be a boolean`);
    return v;
  }

  int(field: string, min: number, max: number): number {
    const v = this.get(field);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw this.error(`${field} must be an integer in [${min}, ${max}]`);
    }
    return v;
  }

  safeInt(field: string, min: number): number {
    return this.int(field, min, Number.MAX_SAFE_INTEGER);
  }

  brokerId(field: string): number {
    return this.int(field, 0, INT32_MAX);
  }

  topicId(field: string): string {
    const v = this.string(field, 32);
    if (!isTopicId(v)) throw this.error(`${field} must be 32 lowercase hex characters, not zero`);
    return v;
  }

  /** A list of distinct broker ids, at least `lengthMin` long. */
  brokerList(field: string, lengthMin: number): number[] {
    const v = this.get(field);
    if (!Array.isArray(v)) throw this.error(`${field} must be an array`);
    if (v.length < lengthMin) throw this.error(`${field} must hold at least ${lengthMin} broker id(s)`);
    const out: number[] = [];
    const seen = new Set<number>();
    for (const id of v) {
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > INT32_MAX) {
        throw this.error(`${field} must hold broker ids (integers in [0, ${INT32_MAX}])`);
      }
      if (seen.has(id)) throw this.error(`${field} lists broker ${id} twice`);
      seen.add(id);
      out.push(id);
    }
    return out;
  }

  /** Returns `out` once every field of the object was read: an extra field is malformed. */
  done<T extends MetadataRecord>(out: T): T {
    this.read.add('type');
    for (const key of Object.keys(this.obj)) {
      if (!this.read.has(key) && this.obj[key] !== undefined) throw this.error(`unknown field ${key}`);
    }
    return out;
  }
}
