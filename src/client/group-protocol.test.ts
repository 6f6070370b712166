/**
 * Goal: the consumer protocol pieces of the group consumer match Kafka: the range and
 * roundrobin assignors give the assignments Kafka documents for its RangeAssignor and
 * RoundRobinAssignor, cover every partition once, and subscription/assignment bytes round-trip
 * (versions 0-3, with the int16 version prefix).
 * Method: pure functions, examples from Kafka's javadoc plus a randomised coverage check.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type AssignorMember,
  assign,
  decodeAssignment,
  decodeSubscription,
  encodeAssignment,
  encodeSubscription,
} from './group-protocol.js';

const member = (
  memberId: string,
  topics: string[],
  groupInstanceId: string | null = null,
): AssignorMember => ({
  memberId,
  groupInstanceId,
  topics,
});

const flat = (m: Map<string, { topic: string; partitions: number[] }[]>, id: string) =>
  (m.get(id) ?? []).flatMap((t) => t.partitions.map((p) => `${t.topic}p${p}`));

describe('assignors', () => {
  it('range: Kafka RangeAssignor javadoc example', () => {
    const counts = new Map([
      ['t0', 3],
      ['t1', 3],
    ]);
    const r = assign('range', [member('C1', ['t0', 't1']), member('C0', ['t0', 't1'])], counts);
    assert.deepEqual(flat(r, 'C0'), ['t0p0', 't0p1', 't1p0', 't1p1']);
    assert.deepEqual(flat(r, 'C1'), ['t0p2', 't1p2']);
  });

  it('roundrobin: Kafka RoundRobinAssignor javadoc examples', () => {
    const same = assign(
      'roundrobin',
      [member('C0', ['t0', 't1']), member('C1', ['t0', 't1'])],
      new Map([
        ['t0', 3],
        ['t1', 3],
      ]),
    );
    assert.deepEqual(flat(same, 'C0'), ['t0p0', 't0p2', 't1p1']);
    assert.deepEqual(flat(same, 'C1'), ['t0p1', 't1p0', 't1p2']);
    const mixed = assign(
      'roundrobin',
      [member('C0', ['t0']), member('C1', ['t0', 't1']), member('C2', ['t0', 't1', 't2'])],
      new Map([
        ['t0', 1],
        ['t1', 2],
        ['t2', 3],
      ]),
    );
    assert.deepEqual(flat(mixed, 'C0'), ['t0p0']);
    assert.deepEqual(flat(mixed, 'C1'), ['t1p0']);
    assert.deepEqual(flat(mixed, 'C2'), ['t1p1', 't2p0', 't2p1', 't2p2']);
  });

  it('static members sort by instance id before dynamic ones; members with nothing get an entry', () => {
    const r = assign(
      'range',
      [member('a', ['t']), member('z', ['t'], 'inst-1'), member('b', ['t'])],
      new Map([['t', 2]]),
    );
    assert.deepEqual(flat(r, 'z'), ['tp0']);
    assert.deepEqual(flat(r, 'a'), ['tp1']);
    assert.deepEqual(r.get('b'), []);
  });

  it('every partition of every subscribed topic goes to exactly one subscribed member', () => {
    for (let seed = 1; seed <= 200; seed++) {
      let x = seed;
      const rnd = (n: number) => {
        x = (x * 1103515245 + 12345) % 2147483648;
        return x % n;
      };
      const topics = ['a', 'b', 'c', 'd'].slice(0, 1 + rnd(4));
      const counts = new Map(topics.map((t) => [t, 1 + rnd(8)]));
      const members = Array.from({ length: 1 + rnd(6) }, (_, i) =>
        member(`m${i}`, topics.filter(() => rnd(3) > 0).concat(i === 0 ? topics : [])),
      );
      for (const name of ['range', 'roundrobin'] as const) {
        const r = assign(name, members, counts);
        const owners = new Map<string, string>();
        for (const [id, tps] of r)
          for (const t of tps)
            for (const p of t.partitions) {
              const k = `${t.topic}/${p}`;
              assert.ok(!owners.has(k), `${name} seed ${seed}: ${k} assigned twice`);
              assert.ok(members.find((m) => m.memberId === id)!.topics.includes(t.topic));
              owners.set(k, id);
            }
        const total = [...counts.values()].reduce((s, n) => s + n, 0);
        assert.equal(owners.size, total, `${name} seed ${seed}: every partition owned`);
      }
    }
  });
});

describe('consumer protocol bytes', () => {
  it('subscriptions round-trip at every version', () => {
    for (let v = 0; v <= 3; v++) {
      const buf = encodeSubscription(
        {
          topics: ['x', 'y'],
          userData: Buffer.from('u'),
          ownedPartitions: [{ topic: 'x', partitions: [1, 2] }],
          generationId: 7,
          rackId: 'r1',
        },
        v,
      );
      assert.equal(buf.readInt16BE(0), v);
      const s = decodeSubscription(buf)!;
      assert.deepEqual(s.topics, ['x', 'y']);
      assert.deepEqual(s.userData, Buffer.from('u'));
      assert.deepEqual(s.ownedPartitions, v >= 1 ? [{ topic: 'x', partitions: [1, 2] }] : []);
      assert.equal(s.generationId, v >= 2 ? 7 : -1);
      assert.equal(s.rackId, v >= 3 ? 'r1' : null);
    }
  });

  it('assignments round-trip; a newer version is read as the newest known; empty is null', () => {
    for (let v = 0; v <= 3; v++) {
      const a = decodeAssignment(encodeAssignment([{ topic: 't', partitions: [3, 1] }], v))!;
      assert.equal(a.version, v);
      assert.deepEqual(a.assignedPartitions, [{ topic: 't', partitions: [1, 3] }]);
    }
    const future = encodeAssignment([{ topic: 't', partitions: [0] }], 3);
    future.writeInt16BE(9, 0);
    assert.deepEqual(decodeAssignment(future)?.assignedPartitions, [{ topic: 't', partitions: [0] }]);
    assert.equal(decodeAssignment(Buffer.alloc(0)), null);
    assert.equal(decodeSubscription(Buffer.from([0xff])), null);
  });
});
