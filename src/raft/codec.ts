/**
 * Binary encoding of RaftMessages for the controller listener (src/raft/transport.ts).
 *
 * A message (the payload of one transport frame) is:
 *   u8 formatVersion (1) | u8 type | i32 from | i32 to | i64 term | type-specific fields
 * and must be consumed exactly: trailing bytes are an error. Every length and count is checked
 * against the bytes that remain before anything is allocated (primitives.ts Reader), so a hostile
 * frame fails with a DecodeError instead of exhausting memory.
 *
 * Type codes and how each maps onto KRaft's RPCs (KIP-595 / KIP-996), for the day a translating
 * layer lets Kafka's tools (kafka-metadata-quorum.sh, a KRaft voter) talk to this quorum:
 *   1 PreVote                 → VoteRequest with PreVote=true (KIP-996); term = epoch the candidate
 *                               would take; lastLogIndex/lastLogTerm = LastOffset/LastOffsetEpoch.
 *   2 PreVoteResponse         → VoteResponse (VoteGranted) to a pre-vote.
 *   3 Vote                    → VoteRequest (CandidateEpoch, CandidateId, LastOffsetEpoch, LastOffset).
 *   4 VoteResponse            → VoteResponse (LeaderEpoch, VoteGranted).
 *   5 AppendEntries           → a FetchResponse pushed by the leader: entries are the records,
 *                               leaderCommit is the HighWatermark. The first one of a term plays
 *                               BeginQuorumEpoch; an empty one is a heartbeat (KRaft followers
 *                               instead poll with Fetch within fetch.timeout).
 *   6 AppendEntriesResponse   → the follower's next FetchRequest: matchIndex + 1 is FetchOffset and
 *                               on a mismatch conflictIndex/conflictTerm are the DivergingEpoch
 *                               (EndOffset, Epoch) that KRaft puts in the FetchResponse instead.
 *   7 InstallSnapshot         → FetchSnapshotResponse (whole snapshot, not chunked; SnapshotId =
 *                               index/term, i.e. EndOffset/Epoch).
 *   8 InstallSnapshotResponse → the Fetch that follows a completed FetchSnapshot.
 */

import { DecodeError, Reader, Writer } from '../protocol/primitives.js';
import type { EntryKind, LogEntry, NodeId } from './log.js';
import type { RaftMessage, RaftMessageType, Snapshot } from './messages.js';

export const CODEC_VERSION = 1;

const TYPE_CODE: Record<RaftMessageType, number> = {
  PreVote: 1,
  PreVoteResponse: 2,
  Vote: 3,
  VoteResponse: 4,
  AppendEntries: 5,
  AppendEntriesResponse: 6,
  InstallSnapshot: 7,
  InstallSnapshotResponse: 8,
};

/** index + term + kind + data length: the least an entry takes on the wire. */
const ENTRY_MIN_BYTES = 8 + 8 + 1 + 4;

function writeEntry(w: Writer, e: LogEntry): void {
  w.int64(e.index)
    .int64(e.term)
    .uint8(e.kind === 'noop' ? 1 : 0)
    .bytes(e.data);
}

function nonNegative(r: Reader, what: string): number {
  const v = r.int64();
  if (!Number.isSafeInteger(v) || v < 0) throw new DecodeError(`${what} ${v} out of range`);
  return v;
}

function readEntry(r: Reader): LogEntry {
  const index = nonNegative(r, 'entry index');
  const term = nonNegative(r, 'entry term');
  const k = r.uint8();
  let kind: EntryKind;
  if (k === 0) kind = 'data';
  else if (k === 1) kind = 'noop';
  else throw new DecodeError(`unknown entry kind ${k}`);
  const data = Buffer.from(r.bytes());
  return { index, term, kind, data };
}

export function encodeMessage(m: RaftMessage): Buffer {
  const w = new Writer(m.type === 'AppendEntries' || m.type === 'InstallSnapshot' ? 1024 : 64);
  w.uint8(CODEC_VERSION).uint8(TYPE_CODE[m.type]).int32(m.from).int32(m.to).int64(m.term);
  switch (m.type) {
    case 'PreVote':
    case 'Vote':
      w.int64(m.lastLogIndex).int64(m.lastLogTerm);
      break;
    case 'PreVoteResponse':
    case 'VoteResponse':
      w.bool(m.granted);
      break;
    case 'AppendEntries':
      w.int64(m.prevLogIndex).int64(m.prevLogTerm).int64(m.leaderCommit).int32(m.entries.length);
      for (const e of m.entries) writeEntry(w, e);
      break;
    case 'AppendEntriesResponse':
      w.bool(m.success)
        .int64(m.matchIndex)
        .int64(m.rejectedIndex)
        .int64(m.conflictTerm ?? -1)
        .int64(m.conflictIndex);
      break;
    case 'InstallSnapshot':
      w.int64(m.snapshot.index).int64(m.snapshot.term).bytes(m.snapshot.data);
      break;
    case 'InstallSnapshotResponse':
      w.int64(m.matchIndex);
      break;
  }
  return w.toBuffer();
}

/** Decodes one message; throws DecodeError on anything malformed. */
export function decodeMessage(buf: Buffer): RaftMessage {
  const r = new Reader(buf);
  const version = r.uint8();
  if (version !== CODEC_VERSION) throw new DecodeError(`unsupported raft message version ${version}`);
  const code = r.uint8();
  const from: NodeId = r.int32();
  const to: NodeId = r.int32();
  if (from < 0 || to < 0) throw new DecodeError(`node ids must be non-negative (${from} → ${to})`);
  const term = nonNegative(r, 'term');
  const env = { from, to, term };
  let m: RaftMessage;
  switch (code) {
    case 1:
    case 3: {
      const lastLogIndex = nonNegative(r, 'lastLogIndex');
      const lastLogTerm = nonNegative(r, 'lastLogTerm');
      m = { type: code === 1 ? 'PreVote' : 'Vote', ...env, lastLogIndex, lastLogTerm };
      break;
    }
    case 2:
    case 4:
      m = { type: code === 2 ? 'PreVoteResponse' : 'VoteResponse', ...env, granted: r.bool() };
      break;
    case 5: {
      const prevLogIndex = nonNegative(r, 'prevLogIndex');
      const prevLogTerm = nonNegative(r, 'prevLogTerm');
      const leaderCommit = nonNegative(r, 'leaderCommit');
      const n = r.int32();
      r.checkCount(n, ENTRY_MIN_BYTES, 'entries');
      const entries: LogEntry[] = [];
      for (let i = 0; i < n; i++) {
        const e = readEntry(r);
        if (e.index !== prevLogIndex + 1 + i) {
          throw new DecodeError(`entry ${i} has index ${e.index}, expected ${prevLogIndex + 1 + i}`);
        }
        entries.push(e);
      }
      m = { type: 'AppendEntries', ...env, prevLogIndex, prevLogTerm, leaderCommit, entries };
      break;
    }
    case 6: {
      const success = r.bool();
      const matchIndex = nonNegative(r, 'matchIndex');
      const rejectedIndex = nonNegative(r, 'rejectedIndex');
      const ct = r.int64();
      if (ct < -1 || !Number.isSafeInteger(ct)) throw new DecodeError(`conflictTerm ${ct} out of range`);
      const conflictIndex = nonNegative(r, 'conflictIndex');
      m = {
        type: 'AppendEntriesResponse',
        ...env,
        success,
        matchIndex,
        rejectedIndex,
        conflictTerm: ct === -1 ? undefined : ct,
        conflictIndex,
      };
      break;
    }
    case 7: {
      const index = nonNegative(r, 'snapshot index');
      const sterm = nonNegative(r, 'snapshot term');
      const snapshot: Snapshot = { index, term: sterm, data: Buffer.from(r.bytes()) };
      m = { type: 'InstallSnapshot', ...env, snapshot };
      break;
    }
    case 8:
      m = { type: 'InstallSnapshotResponse', ...env, matchIndex: nonNegative(r, 'matchIndex') };
      break;
    default:
      throw new DecodeError(`unknown raft message type ${code}`);
  }
  if (r.remaining !== 0) throw new DecodeError(`${r.remaining} trailing bytes after ${m.type}`);
  return m;
}

/**
 * The first frame on every controller connection: who is calling, for which cluster.
 *   magic "SLRQ" | u8 version | i32 nodeId | i16 clusterId length | clusterId (utf-8)
 */
const HELLO_MAGIC = 0x534c5251;

export interface Hello {
  readonly nodeId: NodeId;
  readonly clusterId: string;
}

export function encodeHello(h: Hello): Buffer {
  return new Writer(32)
    .uint32(HELLO_MAGIC)
    .uint8(CODEC_VERSION)
    .int32(h.nodeId)
    .string(h.clusterId)
    .toBuffer();
}

export function decodeHello(buf: Buffer): Hello {
  const r = new Reader(buf);
  if (r.uint32() !== HELLO_MAGIC) throw new DecodeError('not a raft controller hello');
  const version = r.uint8();
  if (version !== CODEC_VERSION) throw new DecodeError(`unsupported hello version ${version}`);
  const nodeId = r.int32();
  if (nodeId < 0) throw new DecodeError(`node id ${nodeId} out of range`);
  const clusterId = r.string();
  if (r.remaining !== 0) throw new DecodeError(`${r.remaining} trailing bytes after hello`);
  return { nodeId, clusterId };
}
