/**
 * RaftLog: unit and property tests. The property tests generate a leader log (non-decreasing
 * terms) and feed a follower windows of it in random order, as a lossy, reordering network would,
 * applying only those whose previous entry matches (Raft's consistency check). The follower's log
 * must always be a prefix of the leader's and never shrink.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { type LogEntry, RaftLog } from './log.js';

const entry = (index: number, term: number): LogEntry => ({
  index,
  term,
  kind: 'data',
  data: new Uint8Array([index & 0xff]),
});

function logFromTerms(terms: number[]): LogEntry[] {
  return terms.map((t, i) => entry(i + 1, t));
}

const termsArb = fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 40 }).map((steps) => {
  let t = 1;
  return steps.map((s) => {
    if (s > 2) t++;
    return t;
  });
});

describe('RaftLog', () => {
  test('term lookup, slicing and compaction keep the snapshot base', () => {
    const log = new RaftLog(0, 0, logFromTerms([1, 1, 2, 2, 3]));
    assert.equal(log.lastIndex, 5);
    assert.equal(log.lastTerm, 3);
    assert.equal(log.term(0), 0);
    assert.equal(log.term(6), undefined);
    assert.deepEqual(
      log.slice(2, 5).map((e) => e.index),
      [2, 3, 4],
    );
    assert.deepEqual(
      log.slice(2, 6, 2).map((e) => e.index),
      [2, 3],
    );
    log.compact(3);
    assert.equal(log.snapshotIndex, 3);
    assert.equal(log.snapshotTerm, 2);
    assert.equal(log.term(3), 2);
    assert.equal(log.term(2), undefined);
    assert.throws(() => log.slice(3, 5));
    assert.equal(log.firstIndexOfTermAt(5), 5);
    assert.equal(log.firstIndexOfTermAt(4), 4, 'stops at the snapshot base');
    assert.equal(log.lastIndexOfTerm(2), 4);
    assert.equal(log.lastIndexOfTerm(9), undefined);
  });

  test('merge truncates only from the first conflicting entry', () => {
    const log = new RaftLog(0, 0, logFromTerms([1, 1, 2, 2]));
    const unchanged = log.merge([entry(2, 1), entry(3, 2)]);
    assert.deepEqual(unchanged, { firstChangedIndex: undefined, truncatedFromIndex: undefined });
    const changed = log.merge([entry(3, 3), entry(4, 3), entry(5, 3)]);
    assert.deepEqual(changed, { firstChangedIndex: 3, truncatedFromIndex: 3 });
    assert.deepEqual(
      log.slice(1, 10).map((e) => e.term),
      [1, 1, 3, 3, 3],
    );
  });

  test('appends that break contiguity or term order are refused', () => {
    const log = new RaftLog(0, 0, logFromTerms([1, 2]));
    assert.throws(() => log.append(entry(4, 2)));
    assert.throws(() => log.append(entry(3, 1)));
    assert.throws(() => log.truncateFrom(0));
  });

  test('property: a follower fed windows in any order stays a growing prefix of the leader', () => {
    fc.assert(
      fc.property(
        termsArb,
        fc.array(fc.tuple(fc.nat(), fc.nat({ max: 10 })), { maxLength: 60 }),
        (terms, windows) => {
          const leader = logFromTerms(terms);
          const follower = new RaftLog();
          for (const [startRaw, len] of windows) {
            const prev = startRaw % (leader.length + 1);
            const prevTerm = prev === 0 ? 0 : leader[prev - 1]!.term;
            if (follower.term(prev) !== prevTerm) continue; // the consistency check rejects it
            const before = follower.lastIndex;
            follower.merge(leader.slice(prev, prev + len));
            assert.ok(follower.lastIndex >= before, 'a matching window never shortens the log');
            for (let i = 1; i <= follower.lastIndex; i++) assert.equal(follower.term(i), leader[i - 1]!.term);
          }
        },
      ),
    );
  });

  test('property: a diverged follower converges to the leader after one full merge', () => {
    fc.assert(
      fc.property(termsArb, termsArb, (leaderTerms, followerTerms) => {
        const leader = logFromTerms(leaderTerms);
        const follower = new RaftLog(0, 0, logFromTerms(followerTerms));
        // Terms of a later leader dominate: shift the leader's terms above the follower's.
        const shift = follower.lastTerm;
        const shifted = leader.map((e) => entry(e.index, e.term + shift));
        follower.merge(shifted);
        assert.ok(follower.lastIndex >= shifted.length);
        for (let i = 1; i <= shifted.length; i++) assert.equal(follower.term(i), shifted[i - 1]!.term);
      }),
    );
  });
});
