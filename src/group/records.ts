/**
 * The records the group coordinator writes to `__consumer_offsets`, in Kafka's own formats
 * (group-coordinator/*.json): key = int16 version + key struct, value = int16 version + value
 * struct, or null (a tombstone) when the key is deleted.
 *
 * Versions written are the ones Kafka 4 writes for classic groups:
 * - offset commit: OffsetCommitKey v1, OffsetCommitValue v3 (v1 when the commit carries an
 *   explicit expire timestamp, i.e. OffsetCommit v2-4 with a retention time);
 * - group metadata: GroupMetadataKey v2, GroupMetadataValue v3.
 * Key versions 0/1 are offset commits and 2 is group metadata (what Kafka's loader branches on);
 * 3-8 are the KIP-848 consumer-group records (consumer-group-records.ts); other key versions
 * (share groups, ...) are reported as `unknown` and skipped.
 */

import type { Encodable } from '../protocol/codec-support.js';
import { decodeGroupMetadataKey, encodeGroupMetadataKey } from '../protocol/generated/group-metadata-key.js';
import {
  type GroupMetadataValue,
  GroupMetadataValueVersions,
  decodeGroupMetadataValue,
  encodeGroupMetadataValue,
} from '../protocol/generated/group-metadata-value.js';
import { decodeOffsetCommitKey, encodeOffsetCommitKey } from '../protocol/generated/offset-commit-key.js';
import {
  type OffsetCommitValue,
  OffsetCommitValueVersions,
  decodeOffsetCommitValue,
  encodeOffsetCommitValue,
} from '../protocol/generated/offset-commit-value.js';
import { Reader, Writer } from '../protocol/primitives.js';
import { type ConsumerGroupRecord, decodeConsumerGroupRecord } from './consumer-group-records.js';

export const OFFSET_COMMIT_KEY_VERSION = 1;
export const OFFSET_COMMIT_VALUE_VERSION = 3;
export const OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRE = 1;
export const GROUP_METADATA_KEY_VERSION = 2;
export const GROUP_METADATA_VALUE_VERSION = 3;

export interface GroupLogRecord {
  key: Buffer;
  /** null is a tombstone. */
  value: Buffer | null;
}

export interface OffsetCommitRecordValue {
  offset: number;
  leaderEpoch: number;
  metadata: string;
  commitTimestamp: number;
  /** -1 when the offset expires by the group's retention rules, not by its own deadline. */
  expireTimestamp: number;
}

export type DecodedGroupRecord =
  | { type: 'offset'; group: string; topic: string; partition: number; value: OffsetCommitRecordValue | null }
  | { type: 'group'; group: string; value: GroupMetadataValue | null }
  | { type: 'consumer'; group: string; record: ConsumerGroupRecord }
  | { type: 'unknown'; keyVersion: number };

function withVersion(version: number, write: (w: Writer) => void): Buffer {
  const w = new Writer(64);
  w.int16(version);
  write(w);
  return w.toBuffer();
}

export function offsetCommitKey(group: string, topic: string, partition: number): Buffer {
  return withVersion(OFFSET_COMMIT_KEY_VERSION, (w) =>
    encodeOffsetCommitKey(w, { group, topic, partition }, OFFSET_COMMIT_KEY_VERSION),
  );
}

export function offsetCommitValue(v: OffsetCommitRecordValue): Buffer {
  const version =
    v.expireTimestamp >= 0 ? OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRE : OFFSET_COMMIT_VALUE_VERSION;
  const value: Encodable<OffsetCommitValue> = {
    offset: v.offset,
    leaderEpoch: v.leaderEpoch,
    metadata: v.metadata,
    commitTimestamp: v.commitTimestamp,
    expireTimestamp: v.expireTimestamp,
  };
  return withVersion(version, (w) => encodeOffsetCommitValue(w, value, version));
}

export function offsetCommitRecord(
  group: string,
  topic: string,
  partition: number,
  v: OffsetCommitRecordValue | null,
): GroupLogRecord {
  return { key: offsetCommitKey(group, topic, partition), value: v === null ? null : offsetCommitValue(v) };
}

export function groupMetadataKey(group: string): Buffer {
  return withVersion(GROUP_METADATA_KEY_VERSION, (w) =>
    encodeGroupMetadataKey(w, { group }, GROUP_METADATA_KEY_VERSION),
  );
}

export function groupMetadataValue(v: Encodable<GroupMetadataValue>): Buffer {
  return withVersion(GROUP_METADATA_VALUE_VERSION, (w) =>
    encodeGroupMetadataValue(w, v, GROUP_METADATA_VALUE_VERSION),
  );
}

export function groupMetadataRecord(group: string, v: Encodable<GroupMetadataValue> | null): GroupLogRecord {
  return { key: groupMetadataKey(group), value: v === null ? null : groupMetadataValue(v) };
}

/**
 * Decodes one record of `__consumer_offsets`. Throws DecodeError on malformed bytes. Value
 * versions above what the schema knows are read as the highest known one (Kafka only adds
 * tagged fields now, KIP-915).
 */
export function decodeGroupRecord(key: Buffer, value: Buffer | null): DecodedGroupRecord {
  const kr = new Reader(key);
  const keyVersion = kr.int16();
  if (keyVersion === 0 || keyVersion === 1) {
    const k = decodeOffsetCommitKey(kr, keyVersion);
    if (value === null)
      return { type: 'offset', group: k.group, topic: k.topic, partition: k.partition, value: null };
    const vr = new Reader(value);
    const vv = Math.min(vr.int16(), OffsetCommitValueVersions.max);
    const v = decodeOffsetCommitValue(vr, vv);
    return {
      type: 'offset',
      group: k.group,
      topic: k.topic,
      partition: k.partition,
      value: {
        offset: v.offset,
        leaderEpoch: vv >= 3 ? v.leaderEpoch : -1,
        metadata: v.metadata,
        commitTimestamp: v.commitTimestamp,
        expireTimestamp: vv === 1 ? v.expireTimestamp : -1,
      },
    };
  }
  if (keyVersion === 2) {
    const k = decodeGroupMetadataKey(kr, keyVersion);
    if (value === null) return { type: 'group', group: k.group, value: null };
    const vr = new Reader(value);
    const vv = Math.min(vr.int16(), GroupMetadataValueVersions.max);
    return { type: 'group', group: k.group, value: decodeGroupMetadataValue(vr, vv) };
  }
  if (keyVersion >= 3 && keyVersion <= 8) {
    const record = decodeConsumerGroupRecord(keyVersion, kr, value);
    if (record) return { type: 'consumer', group: record.groupId, record };
  }
  return { type: 'unknown', keyVersion };
}
