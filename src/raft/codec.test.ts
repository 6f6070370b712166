/**
 * Raft message codec: every message type round-trips; every truncation, trailing byte, unknown
 * type or version, and oversized count fails with a DecodeError (never a crash or a huge
 * allocation); random bytes never decode into something unchecked.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { DecodeError } from '../protocol/primitives.js';
import { decodeHello, decodeMessage, encodeHello, encodeMessage } from './codec.js';
import type { RaftMessage } from './messages.js';

const env = { from: 1, to: 2, term: 7 };
const bytes = (s: string) => Buffer.from(s);

const samples: RaftMessage[] = [
  { type: 'PreVote', ...env, term: 8, lastLogIndex: 100, lastLogTerm: 6 },
  { type: 'PreVoteResponse', ...env, granted: true },
  { type: 'Vote', ...env, lastLogIndex: 2 ** 40, lastLogTerm: 7 },
  { type: 'VoteResponse', ...env, granted: false },
  {
    type: 'AppendEntries',
    ...env,
    prevLogIndex: 10,
    prevLogTerm: 6,
    leaderCommit: 9,
    entries: [
      { index: 11, term: 7, kind: 'noop', data: Buffer.alloc(0) },
      { index: 12, term: 7, kind: 'data', data: bytes('hello') },
    ],
  },
  { type: 'AppendEntries', ...env, prevLogIndex: 0, prevLogTerm: 0, leaderCommit: 0, entries: [] },
  {
    type: 'AppendEntriesResponse',
    ...env,
    success: false,
    matchIndex: 0,
    rejectedIndex: 12,
    conflictTerm: undefined,
    conflictIndex: 5,
  },
  {
    type: 'AppendEntriesResponse',
    ...env,
    success: true,
    matchIndex: 12,
    rejectedIndex: 0,
    conflictTerm: 3,
    conflictIndex: 0,
  },
  { type: 'InstallSnapshot', ...env, snapshot: { index: 50, term: 5, data: bytes('{"image":1}') } },
  { type: 'InstallSnapshotResponse', ...env, matchIndex: 50 },
];

function plain(m: RaftMessage): unknown {
  return JSON.parse(
    JSON.stringify(m, (_k, v) =>
      v instanceof Uint8Array || (v && v.type === 'Buffer') ? Buffer.from(v).toString('hex') : v,
    ),
  );
}

describe('raft codec', () => {
  test('every message type round-trips', () => {
    for (const m of samples) assert.deepEqual(plain(decodeMessage(encodeMessage(m))), plain(m), m.type);
  });

  test('every strict prefix and any trailing byte is a DecodeError', () => {
    for (const m of samples) {
      const b = encodeMessage(m);
      for (let n = 0; n < b.length; n++) {
        assert.throws(() => decodeMessage(b.subarray(0, n)), DecodeError, `${m.type} cut at ${n}`);
      }
      assert.throws(() => decodeMessage(Buffer.concat([b, Buffer.from([0])])), DecodeError);
    }
  });

  test('unknown version or type, negative ids and huge counts are refused', () => {
    const b = encodeMessage(samples[4]!);
    const v = Buffer.from(b);
    v[0] = 2;
    assert.throws(() => decodeMessage(v), /version/);
    const t = Buffer.from(b);
    t[1] = 99;
    assert.throws(() => decodeMessage(t), /unknown raft message type/);
    const id = Buffer.from(b);
    id.writeInt32BE(-5, 2);
    assert.throws(() => decodeMessage(id), DecodeError);
    const count = Buffer.from(b);
    count.writeInt32BE(0x7fffffff, 2 + 8 + 8 + 8 + 8 + 8);
    assert.throws(() => decodeMessage(count), /exceeds/);
    const bad = Buffer.from(b);
    bad.writeBigInt64BE(99n, 2 + 8 + 8 + 8 + 8 + 8 + 4); // first entry index no longer prevLogIndex + 1
    assert.throws(() => decodeMessage(bad), /expected 11/);
  });

  test('random bytes either decode or raise DecodeError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (arr) => {
        const b = Buffer.from(arr);
        if (b.length > 1) b[0] = 1;
        try {
          decodeMessage(b);
        } catch (err) {
          if (!(err instanceof DecodeError)) throw err;
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('hello round-trips and rejects foreign bytes', () => {
    assert.deepEqual(decodeHello(encodeHello({ nodeId: 3, clusterId: 'c1' })), {
      nodeId: 3,
      clusterId: 'c1',
    });
    assert.throws(() => decodeHello(Buffer.from('GET / HTTP/1.1')), DecodeError);
    assert.throws(() => decodeHello(encodeHello({ nodeId: 3, clusterId: 'c1' }).subarray(0, 8)), DecodeError);
  });
});
