/**
 * Properties of the server-side assignors (fast-check):
 * - every partition of a subscribed topic is assigned exactly once, to a member subscribed to it;
 *   nothing else is assigned;
 * - uniform: with identical subscriptions every member holds floor(P/M) or ceil(P/M); with
 *   different subscriptions no single move between two members would improve balance;
 * - uniform is sticky: recomputing from its own result changes nothing, and adding a member to a
 *   balanced group moves exactly the partitions the newcomer takes (floor(P/(M+1))), none
 *   between existing members; removing a member moves only the partitions it had;
 * - range: per topic, consecutive ranges in member id order.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  type GroupAssignment,
  type GroupSpec,
  type TopicPartitionMap,
  countPartitions,
  rangeAssignor,
  uniformAssignor,
} from './assignors.js';

const topicIds = ['tA', 'tB', 'tC', 'tD'];

function spec(
  topics: number[],
  subs: number[][],
  previous: GroupAssignment = new Map(),
  ids: string[] = subs.map((_, i) => `m${String(i).padStart(2, '0')}`),
): GroupSpec {
  const t = new Map<string, number>();
  topics.forEach((n, i) => t.set(topicIds[i] as string, n));
  return {
    topics: t,
    members: subs.map((s, i) => {
      const memberId = ids[i] as string;
      return {
        memberId,
        subscribedTopicIds: new Set(s.filter((x) => x < topics.length).map((x) => topicIds[x] as string)),
        previous: previous.get(memberId) ?? new Map(),
      };
    }),
  };
}

/** Every partition of a subscribed topic exactly once, only to members subscribed to it. */
function checkCoverage(s: GroupSpec, a: GroupAssignment): void {
  const owners = new Map<string, string>();
  for (const [memberId, m] of a) {
    const member = s.members.find((x) => x.memberId === memberId);
    assert.ok(member, `unknown member ${memberId}`);
    for (const [t, parts] of m) {
      assert.ok(member.subscribedTopicIds.has(t), `${memberId} got ${t} without subscribing`);
      for (const p of parts) {
        const n = s.topics.get(t);
        assert.ok(n !== undefined && p >= 0 && p < n, `${t}-${p} does not exist`);
        const k = `${t}-${p}`;
        assert.ok(!owners.has(k), `${k} assigned to ${owners.get(k)} and ${memberId}`);
        owners.set(k, memberId);
      }
    }
  }
  for (const [t, n] of s.topics) {
    const subscribed = s.members.some((m) => m.subscribedTopicIds.has(t));
    for (let p = 0; p < n; p++)
      assert.equal(owners.has(`${t}-${p}`), subscribed, `${t}-${p} assigned: ${owners.has(`${t}-${p}`)}`);
  }
  for (const m of s.members) assert.ok(a.has(m.memberId), `${m.memberId} has an entry`);
}

function counts(a: GroupAssignment): Map<string, number> {
  return new Map([...a].map(([id, m]) => [id, countPartitions(m)]));
}

function moved(from: GroupAssignment, to: GroupAssignment): number {
  let n = 0;
  for (const [id, m] of to)
    for (const [t, parts] of m) for (const p of parts) if (!from.get(id)?.get(t)?.has(p)) n++;
  return n;
}

function has(m: TopicPartitionMap | undefined, t: string, p: number): boolean {
  return m?.get(t)?.has(p) ?? false;
}

const topicsArb = fc.array(fc.integer({ min: 0, max: 24 }), { minLength: 1, maxLength: 4 });
const membersArb = fc.integer({ min: 1, max: 9 });

describe('uniform assignor', () => {
  test('homogeneous: exact coverage and balance within one', () => {
    fc.assert(
      fc.property(topicsArb, membersArb, (topics, n) => {
        const all = topics.map((_, i) => i);
        const s = spec(
          topics,
          Array.from({ length: n }, () => all),
        );
        const a = uniformAssignor.assign(s);
        checkCoverage(s, a);
        const c = [...counts(a).values()];
        assert.ok(Math.max(...c) - Math.min(...c) <= 1, `counts ${c}`);
      }),
      { numRuns: 300 },
    );
  });

  test('heterogeneous: exact coverage and no improving move', () => {
    fc.assert(
      fc.property(
        topicsArb,
        fc.array(fc.subarray([0, 1, 2, 3], { minLength: 1 }), { minLength: 1, maxLength: 8 }),
        (topics, subs) => {
          const s = spec(topics, subs);
          const a = uniformAssignor.assign(s);
          checkCoverage(s, a);
          const c = counts(a);
          for (const from of s.members)
            for (const to of s.members) {
              const fc_ = c.get(from.memberId) ?? 0;
              const tc = c.get(to.memberId) ?? 0;
              if (fc_ < tc + 2) continue;
              for (const t of a.get(from.memberId)?.keys() ?? [])
                assert.ok(
                  !to.subscribedTopicIds.has(t),
                  `${from.memberId}(${fc_}) could give ${t} to ${to.memberId}(${tc})`,
                );
            }
        },
      ),
      { numRuns: 300 },
    );
  });

  test('sticky: recomputing from its own result changes nothing', () => {
    fc.assert(
      fc.property(
        topicsArb,
        fc.array(fc.subarray([0, 1, 2, 3], { minLength: 1 }), { minLength: 1, maxLength: 8 }),
        (topics, subs) => {
          const first = uniformAssignor.assign(spec(topics, subs));
          const second = uniformAssignor.assign(spec(topics, subs, first));
          assert.equal(moved(first, second), 0);
        },
      ),
      { numRuns: 200 },
    );
  });

  test('sticky: a new member takes exactly its share, nothing moves between the others', () => {
    fc.assert(
      fc.property(topicsArb, membersArb, (topics, n) => {
        const all = topics.map((_, i) => i);
        const before = uniformAssignor.assign(
          spec(
            topics,
            Array.from({ length: n }, () => all),
          ),
        );
        const ids = [...Array.from({ length: n }, (_, i) => `m${String(i).padStart(2, '0')}`), 'new'];
        const s = spec(
          topics,
          Array.from({ length: n + 1 }, () => all),
          before,
          ids,
        );
        const after = uniformAssignor.assign(s);
        checkCoverage(s, after);
        const total = topics.reduce((x, y) => x + y, 0);
        const share = Math.floor(total / (n + 1));
        assert.equal(countPartitions(after.get('new') ?? new Map()), share);
        // Minimal movement: only what the newcomer takes changed owner.
        assert.equal(moved(before, after), share);
        for (const [id, m] of after) {
          if (id === 'new') continue;
          for (const [t, parts] of m)
            for (const p of parts) assert.ok(has(before.get(id), t, p), `${id} gained ${t}-${p}`);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('sticky: a member leaving moves only its partitions', () => {
    fc.assert(
      fc.property(topicsArb, fc.integer({ min: 2, max: 9 }), fc.nat(), (topics, n, which) => {
        const all = topics.map((_, i) => i);
        const ids = Array.from({ length: n }, (_, i) => `m${String(i).padStart(2, '0')}`);
        const before = uniformAssignor.assign(
          spec(
            topics,
            Array.from({ length: n }, () => all),
            new Map(),
            ids,
          ),
        );
        const gone = ids[which % n] as string;
        const rest = ids.filter((x) => x !== gone);
        const s = spec(
          topics,
          rest.map(() => all),
          before,
          rest,
        );
        const after = uniformAssignor.assign(s);
        checkCoverage(s, after);
        const c = [...counts(after).values()];
        assert.ok(Math.max(...c) - Math.min(...c) <= 1, `counts ${c}`);
        assert.equal(moved(before, after), countPartitions(before.get(gone) ?? new Map()));
      }),
      { numRuns: 300 },
    );
  });

  test('previous assignments of vanished topics or partitions are dropped', () => {
    const prev: GroupAssignment = new Map([
      [
        'm00',
        new Map([
          ['tA', new Set([0, 1, 7])],
          ['gone', new Set([0])],
        ]),
      ],
      ['m01', new Map([['tA', new Set([1, 2])]])],
    ]);
    const s = spec([4], [[0], [0]], prev);
    const a = uniformAssignor.assign(s);
    checkCoverage(s, a);
    assert.deepEqual([...(a.get('m00')?.get('tA') ?? [])].sort(), [0, 1]);
    assert.deepEqual([...(a.get('m01')?.get('tA') ?? [])].sort(), [2, 3]);
  });
});

describe('range assignor', () => {
  test('exact coverage; per topic consecutive ranges in member id order', () => {
    fc.assert(
      fc.property(
        topicsArb,
        fc.array(fc.subarray([0, 1, 2, 3], { minLength: 1 }), { minLength: 1, maxLength: 8 }),
        (topics, subs) => {
          const s = spec(topics, subs);
          const a = rangeAssignor.assign(s);
          checkCoverage(s, a);
          for (const [t, n] of s.topics) {
            const members = s.members
              .filter((m) => m.subscribedTopicIds.has(t))
              .map((m) => m.memberId)
              .sort();
            let next = 0;
            members.forEach((id, i) => {
              const size = Math.floor(n / members.length) + (i < n % members.length ? 1 : 0);
              const got = [...(a.get(id)?.get(t) ?? [])].sort((x, y) => x - y);
              assert.deepEqual(
                got,
                Array.from({ length: size }, (_, k) => next + k),
              );
              next += size;
            });
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  test('co-partitioning: the same partition numbers of two equal topics go to the same member', () => {
    const a = rangeAssignor.assign(
      spec(
        [6, 6],
        [
          [0, 1],
          [0, 1],
          [0, 1],
        ],
      ),
    );
    for (const m of a.values()) assert.deepEqual([...(m.get('tA') ?? [])], [...(m.get('tB') ?? [])]);
  });
});
