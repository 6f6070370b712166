/**
 * The KIP-848 consumer group records of `__consumer_offsets`, in Kafka's formats
 * (group-coordinator/ConsumerGroup*.json). The key version tells the record type:
 *
 *   3 ConsumerGroupMetadata          group epoch
 *   4 ConsumerGroupPartitionMetadata topics (id, name, partition count) the assignment used
 *   5 ConsumerGroupMemberMetadata    a member's subscription, assignor, client id/host, ...
 *   6 ConsumerGroupTargetAssignmentMetadata   assignment epoch
 *   7 ConsumerGroupTargetAssignmentMember     a member's target assignment
 *   8 ConsumerGroupCurrentMemberAssignment    a member's epochs, state, owned partitions
 *
 * Value version 0 for all; a null value (tombstone) deletes the key. Kafka writes a removed
 * member's tombstones in the order current assignment, target assignment, member metadata, and
 * a deleted group's after all its members as target-assignment metadata, partition metadata,
 * group metadata; replaying in log order rebuilds the same state.
 */

import type { Encodable } from '../protocol/codec-support.js';
import {
  decodeConsumerGroupCurrentMemberAssignmentKey,
  encodeConsumerGroupCurrentMemberAssignmentKey,
} from '../protocol/generated/consumer-group-current-member-assignment-key.js';
import {
  type ConsumerGroupCurrentMemberAssignmentValue,
  decodeConsumerGroupCurrentMemberAssignmentValue,
  encodeConsumerGroupCurrentMemberAssignmentValue,
} from '../protocol/generated/consumer-group-current-member-assignment-value.js';
import {
  decodeConsumerGroupMemberMetadataKey,
  encodeConsumerGroupMemberMetadataKey,
} from '../protocol/generated/consumer-group-member-metadata-key.js';
import {
  type ConsumerGroupMemberMetadataValue,
  decodeConsumerGroupMemberMetadataValue,
  encodeConsumerGroupMemberMetadataValue,
} from '../protocol/generated/consumer-group-member-metadata-value.js';
import {
  decodeConsumerGroupMetadataKey,
  encodeConsumerGroupMetadataKey,
} from '../protocol/generated/consumer-group-metadata-key.js';
import {
  type ConsumerGroupMetadataValue,
  decodeConsumerGroupMetadataValue,
  encodeConsumerGroupMetadataValue,
} from '../protocol/generated/consumer-group-metadata-value.js';
import {
  decodeConsumerGroupPartitionMetadataKey,
  encodeConsumerGroupPartitionMetadataKey,
} from '../protocol/generated/consumer-group-partition-metadata-key.js';
import {
  type ConsumerGroupPartitionMetadataValue,
  decodeConsumerGroupPartitionMetadataValue,
  encodeConsumerGroupPartitionMetadataValue,
} from '../protocol/generated/consumer-group-partition-metadata-value.js';
import {
  decodeConsumerGroupTargetAssignmentMemberKey,
  encodeConsumerGroupTargetAssignmentMemberKey,
} from '../protocol/generated/consumer-group-target-assignment-member-key.js';
import {
  type ConsumerGroupTargetAssignmentMemberValue,
  decodeConsumerGroupTargetAssignmentMemberValue,
  encodeConsumerGroupTargetAssignmentMemberValue,
} from '../protocol/generated/consumer-group-target-assignment-member-value.js';
import {
  decodeConsumerGroupTargetAssignmentMetadataKey,
  encodeConsumerGroupTargetAssignmentMetadataKey,
} from '../protocol/generated/consumer-group-target-assignment-metadata-key.js';
import {
  type ConsumerGroupTargetAssignmentMetadataValue,
  decodeConsumerGroupTargetAssignmentMetadataValue,
  encodeConsumerGroupTargetAssignmentMetadataValue,
} from '../protocol/generated/consumer-group-target-assignment-metadata-value.js';
import { Reader, Writer } from '../protocol/primitives.js';
import type { GroupLogRecord } from './records.js';

export const CONSUMER_GROUP_METADATA_KEY_VERSION = 3;
export const CONSUMER_GROUP_PARTITION_METADATA_KEY_VERSION = 4;
export const CONSUMER_GROUP_MEMBER_METADATA_KEY_VERSION = 5;
export const CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA_KEY_VERSION = 6;
export const CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER_KEY_VERSION = 7;
export const CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT_KEY_VERSION = 8;
const VALUE_VERSION = 0;

export type ConsumerGroupRecord =
  | { kind: 'group'; groupId: string; value: ConsumerGroupMetadataValue | null }
  | { kind: 'partitions'; groupId: string; value: ConsumerGroupPartitionMetadataValue | null }
  | { kind: 'member'; groupId: string; memberId: string; value: ConsumerGroupMemberMetadataValue | null }
  | { kind: 'targetEpoch'; groupId: string; value: ConsumerGroupTargetAssignmentMetadataValue | null }
  | {
      kind: 'target';
      groupId: string;
      memberId: string;
      value: ConsumerGroupTargetAssignmentMemberValue | null;
    }
  | {
      kind: 'current';
      groupId: string;
      memberId: string;
      value: ConsumerGroupCurrentMemberAssignmentValue | null;
    };

function bytes(version: number, write: (w: Writer) => void): Buffer {
  const w = new Writer(64);
  w.int16(version);
  write(w);
  return w.toBuffer();
}

function value<T>(v: T | null, enc: (w: Writer, v: T, version: number) => void): Buffer | null {
  return v === null ? null : bytes(VALUE_VERSION, (w) => enc(w, v, VALUE_VERSION));
}

export function consumerGroupMetadataRecord(
  groupId: string,
  v: Encodable<ConsumerGroupMetadataValue> | null,
): GroupLogRecord {
  const kv = CONSUMER_GROUP_METADATA_KEY_VERSION;
  return {
    key: bytes(kv, (w) => encodeConsumerGroupMetadataKey(w, { groupId }, kv)),
    value: value(v, encodeConsumerGroupMetadataValue),
  };
}

export function consumerGroupPartitionMetadataRecord(
  groupId: string,
  v: Encodable<ConsumerGroupPartitionMetadataValue> | null,
): GroupLogRecord {
  const kv = CONSUMER_GROUP_PARTITION_METADATA_KEY_VERSION;
  return {
    key: bytes(kv, (w) => encodeConsumerGroupPartitionMetadataKey(w, { groupId }, kv)),
    value: value(v, encodeConsumerGroupPartitionMetadataValue),
  };
}

export function consumerGroupMemberMetadataRecord(
  groupId: string,
  memberId: string,
  v: Encodable<ConsumerGroupMemberMetadataValue> | null,
): GroupLogRecord {
  const kv = CONSUMER_GROUP_MEMBER_METADATA_KEY_VERSION;
  return {
    key: bytes(kv, (w) => encodeConsumerGroupMemberMetadataKey(w, { groupId, memberId }, kv)),
    value: value(v, encodeConsumerGroupMemberMetadataValue),
  };
}

export function consumerGroupTargetAssignmentMetadataRecord(
  groupId: string,
  v: Encodable<ConsumerGroupTargetAssignmentMetadataValue> | null,
): GroupLogRecord {
  const kv = CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA_KEY_VERSION;
  return {
    key: bytes(kv, (w) => encodeConsumerGroupTargetAssignmentMetadataKey(w, { groupId }, kv)),
    value: value(v, encodeConsumerGroupTargetAssignmentMetadataValue),
  };
}

export function consumerGroupTargetAssignmentMemberRecord(
  groupId: string,
  memberId: string,
  v: Encodable<ConsumerGroupTargetAssignmentMemberValue> | null,
): GroupLogRecord {
  const kv = CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER_KEY_VERSION;
  return {
    key: bytes(kv, (w) => encodeConsumerGroupTargetAssignmentMemberKey(w, { groupId, memberId }, kv)),
    value: value(v, encodeConsumerGroupTargetAssignmentMemberValue),
  };
}

export function consumerGroupCurrentMemberAssignmentRecord(
  groupId: string,
  memberId: string,
  v: Encodable<ConsumerGroupCurrentMemberAssignmentValue> | null,
): GroupLogRecord {
  const kv = CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT_KEY_VERSION;
  return {
    key: bytes(kv, (w) => encodeConsumerGroupCurrentMemberAssignmentKey(w, { groupId, memberId }, kv)),
    value: value(v, encodeConsumerGroupCurrentMemberAssignmentValue),
  };
}

/** Decodes a record whose key version is 3-8 (the reader is positioned after the version). */
export function decodeConsumerGroupRecord(
  keyVersion: number,
  kr: Reader,
  v: Buffer | null,
): ConsumerGroupRecord | null {
  const vr = v === null ? null : new Reader(v);
  // Value versions above 0 only add tagged fields (KIP-915): read them as version 0.
  if (vr) vr.int16();
  switch (keyVersion) {
    case CONSUMER_GROUP_METADATA_KEY_VERSION: {
      const k = decodeConsumerGroupMetadataKey(kr, keyVersion);
      return {
        kind: 'group',
        groupId: k.groupId,
        value: vr && decodeConsumerGroupMetadataValue(vr, VALUE_VERSION),
      };
    }
    case CONSUMER_GROUP_PARTITION_METADATA_KEY_VERSION: {
      const k = decodeConsumerGroupPartitionMetadataKey(kr, keyVersion);
      return {
        kind: 'partitions',
        groupId: k.groupId,
        value: vr && decodeConsumerGroupPartitionMetadataValue(vr, VALUE_VERSION),
      };
    }
    case CONSUMER_GROUP_MEMBER_METADATA_KEY_VERSION: {
      const k = decodeConsumerGroupMemberMetadataKey(kr, keyVersion);
      return {
        kind: 'member',
        groupId: k.groupId,
        memberId: k.memberId,
        value: vr && decodeConsumerGroupMemberMetadataValue(vr, VALUE_VERSION),
      };
    }
    case CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA_KEY_VERSION: {
      const k = decodeConsumerGroupTargetAssignmentMetadataKey(kr, keyVersion);
      return {
        kind: 'targetEpoch',
        groupId: k.groupId,
        value: vr && decodeConsumerGroupTargetAssignmentMetadataValue(vr, VALUE_VERSION),
      };
    }
    case CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER_KEY_VERSION: {
      const k = decodeConsumerGroupTargetAssignmentMemberKey(kr, keyVersion);
      return {
        kind: 'target',
        groupId: k.groupId,
        memberId: k.memberId,
        value: vr && decodeConsumerGroupTargetAssignmentMemberValue(vr, VALUE_VERSION),
      };
    }
    case CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT_KEY_VERSION: {
      const k = decodeConsumerGroupCurrentMemberAssignmentKey(kr, keyVersion);
      return {
        kind: 'current',
        groupId: k.groupId,
        memberId: k.memberId,
        value: vr && decodeConsumerGroupCurrentMemberAssignmentValue(vr, VALUE_VERSION),
      };
    }
    default:
      return null;
  }
}
