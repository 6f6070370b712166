/**
 * Server-side partition assignors of the KIP-848 consumer group protocol: the coordinator, not a
 * member, decides who reads which partition. Both are pure functions of a GroupSpec.
 *
 * - uniform (Kafka's default, group.consumer.assignors' first entry): balanced and sticky. Every
 *   partition of a subscribed topic goes to exactly one member subscribed to that topic; members
 *   keep what they had in the previous target assignment whenever balance allows; then, while a
 *   member holds at least two partitions more than another member that could take one of them,
 *   one partition moves. With identical subscriptions this ends with every member holding
 *   floor(P/M) or ceil(P/M) partitions, and moves only what balance requires (a new member takes
 *   exactly its share from the most loaded members). With different subscriptions the result is
 *   locally balanced (no single move between two members improves it).
 * - range: per topic, the members subscribed to it in member id order get consecutive ranges,
 *   the first P % M of them one partition more (co-partitioning: members with the same
 *   subscriptions get the same partition numbers of every topic with the same partition count).
 *
 * Topics are identified by topic id, as in Kafka's target assignment records.
 */

/** topic id -> partitions */
export type TopicPartitionMap = Map<string, Set<number>>;

export interface AssignorMember {
  memberId: string;
  /** Topic ids the member is subscribed to (only topics that exist). */
  subscribedTopicIds: ReadonlySet<string>;
  /** The member's previous target assignment (stickiness); partitions may no longer exist. */
  previous: TopicPartitionMap;
}

export interface GroupSpec {
  members: AssignorMember[];
  /** topic id -> partition count, for every topic some member subscribes to. */
  topics: ReadonlyMap<string, number>;
}

/** member id -> its target partitions (every member of the spec has an entry). */
export type GroupAssignment = Map<string, TopicPartitionMap>;

export interface ServerAssignor {
  readonly name: string;
  assign(spec: GroupSpec): GroupAssignment;
}

export const UNIFORM_ASSIGNOR = 'uniform';
export const RANGE_ASSIGNOR = 'range';

function addPartition(m: TopicPartitionMap, topicId: string, partition: number): void {
  let s = m.get(topicId);
  if (!s) {
    s = new Set();
    m.set(topicId, s);
  }
  s.add(partition);
}

function removePartition(m: TopicPartitionMap, topicId: string, partition: number): void {
  const s = m.get(topicId);
  if (!s) return;
  s.delete(partition);
  if (s.size === 0) m.delete(topicId);
}

export function countPartitions(m: TopicPartitionMap): number {
  let n = 0;
  for (const s of m.values()) n += s.size;
  return n;
}

const byId = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Kafka's default server assignor: balanced, then sticky. */
export const uniformAssignor: ServerAssignor = {
  name: UNIFORM_ASSIGNOR,
  assign(spec) {
    const members = [...spec.members].sort((a, b) => byId(a.memberId, b.memberId));
    const out: GroupAssignment = new Map();
    const count = new Map<string, number>();
    for (const m of members) {
      out.set(m.memberId, new Map());
      count.set(m.memberId, 0);
    }
    const owner = new Map<string, string>(); // `${topicId}:${p}` -> member id
    const key = (t: string, p: number) => `${t}:${p}`;

    // 1. Stickiness: keep previous partitions that still exist and are still subscribed
    //    (first claimant in member id order wins a partition claimed twice).
    for (const m of members) {
      const mine = out.get(m.memberId) as TopicPartitionMap;
      for (const [topicId, parts] of m.previous) {
        const n = spec.topics.get(topicId);
        if (n === undefined || !m.subscribedTopicIds.has(topicId)) continue;
        for (const p of [...parts].sort((a, b) => a - b)) {
          if (p < 0 || p >= n || owner.has(key(topicId, p))) continue;
          owner.set(key(topicId, p), m.memberId);
          addPartition(mine, topicId, p);
          count.set(m.memberId, (count.get(m.memberId) ?? 0) + 1);
        }
      }
    }

    // Members eligible for each topic, in member id order.
    const eligible = new Map<string, AssignorMember[]>();
    for (const topicId of spec.topics.keys())
      eligible.set(
        topicId,
        members.filter((m) => m.subscribedTopicIds.has(topicId)),
      );

    // 2. Over-quota members give back their surplus before anything else is placed, so that a
    //    homogeneous group converges in one pass. Quota = ceil(P/M) over the members sharing
    //    exactly the same subscriptions (heterogeneous groups are evened out in step 4).
    const bySubscription = new Map<string, AssignorMember[]>();
    for (const m of members) {
      const sig = [...m.subscribedTopicIds]
        .filter((t) => spec.topics.has(t))
        .sort()
        .join(',');
      let list = bySubscription.get(sig);
      if (!list) {
        list = [];
        bySubscription.set(sig, list);
      }
      list.push(m);
    }
    if (bySubscription.size === 1) {
      const only = [...bySubscription.values()][0] ?? [];
      let total = 0;
      for (const t of spec.topics.keys())
        if (only[0]?.subscribedTopicIds.has(t)) total += spec.topics.get(t) ?? 0;
      if (only.length > 0) {
        const minQuota = Math.floor(total / only.length);
        let extra = total % only.length;
        // Members already above the minimum keep the extra slots first (stickiness).
        const ordered = [...only].sort(
          (a, b) =>
            (count.get(b.memberId) ?? 0) - (count.get(a.memberId) ?? 0) || byId(a.memberId, b.memberId),
        );
        for (const m of ordered) {
          let quota = minQuota;
          if (extra > 0 && (count.get(m.memberId) ?? 0) > minQuota) {
            quota++;
            extra--;
          }
          const mine = out.get(m.memberId) as TopicPartitionMap;
          let surplus = (count.get(m.memberId) ?? 0) - quota;
          if (surplus <= 0) continue;
          // Give back the highest partitions of the largest topics first (deterministic).
          const held: [string, number][] = [];
          for (const [t, s] of mine) for (const p of s) held.push([t, p]);
          held.sort((a, b) => byId(b[0], a[0]) || b[1] - a[1]);
          for (const [t, p] of held) {
            if (surplus <= 0) break;
            removePartition(mine, t, p);
            owner.delete(key(t, p));
            surplus--;
            count.set(m.memberId, (count.get(m.memberId) ?? 0) - 1);
          }
        }
      }
    }

    // 3. Place unassigned partitions on the least loaded eligible member; topics with the fewest
    //    eligible members first, so constrained partitions are placed while there is room.
    const topicOrder = [...spec.topics.keys()].sort(
      (a, b) => (eligible.get(a)?.length ?? 0) - (eligible.get(b)?.length ?? 0) || byId(a, b),
    );
    for (const topicId of topicOrder) {
      const candidates = eligible.get(topicId) ?? [];
      if (candidates.length === 0) continue;
      const n = spec.topics.get(topicId) ?? 0;
      for (let p = 0; p < n; p++) {
        if (owner.has(key(topicId, p))) continue;
        let best: AssignorMember | undefined;
        for (const c of candidates)
          if (!best || (count.get(c.memberId) ?? 0) < (count.get(best.memberId) ?? 0)) best = c;
        if (!best) continue;
        owner.set(key(topicId, p), best.memberId);
        addPartition(out.get(best.memberId) as TopicPartitionMap, topicId, p);
        count.set(best.memberId, (count.get(best.memberId) ?? 0) + 1);
      }
    }

    // 4. Balance: move one partition from a member to an eligible member holding at least two
    //    fewer, until no such move exists (each move lowers the sum of squared counts).
    for (;;) {
      let moved = false;
      const desc = [...members].sort(
        (a, b) => (count.get(b.memberId) ?? 0) - (count.get(a.memberId) ?? 0) || byId(a.memberId, b.memberId),
      );
      outer: for (const from of desc) {
        const fromCount = count.get(from.memberId) ?? 0;
        const fromMap = out.get(from.memberId) as TopicPartitionMap;
        for (let i = desc.length - 1; i >= 0; i--) {
          const to = desc[i] as AssignorMember;
          const toCount = count.get(to.memberId) ?? 0;
          if (toCount + 2 > fromCount) break;
          for (const t of [...fromMap.keys()].sort(byId)) {
            if (!to.subscribedTopicIds.has(t)) continue;
            const parts = fromMap.get(t);
            if (!parts || parts.size === 0) continue;
            const p = Math.max(...parts);
            removePartition(fromMap, t, p);
            addPartition(out.get(to.memberId) as TopicPartitionMap, t, p);
            owner.set(key(t, p), to.memberId);
            count.set(from.memberId, fromCount - 1);
            count.set(to.memberId, toCount + 1);
            moved = true;
            break outer;
          }
        }
      }
      if (!moved) break;
    }
    return out;
  },
};

/** Per topic, consecutive ranges by member id order. */
export const rangeAssignor: ServerAssignor = {
  name: RANGE_ASSIGNOR,
  assign(spec) {
    const members = [...spec.members].sort((a, b) => byId(a.memberId, b.memberId));
    const out: GroupAssignment = new Map();
    for (const m of members) out.set(m.memberId, new Map());
    for (const [topicId, n] of [...spec.topics].sort((a, b) => byId(a[0], b[0]))) {
      const subs = members.filter((m) => m.subscribedTopicIds.has(topicId));
      if (subs.length === 0) continue;
      const base = Math.floor(n / subs.length);
      const extra = n % subs.length;
      let next = 0;
      subs.forEach((m, i) => {
        const size = base + (i < extra ? 1 : 0);
        const mine = out.get(m.memberId) as TopicPartitionMap;
        for (let p = next; p < next + size; p++) addPartition(mine, topicId, p);
        next += size;
      });
    }
    return out;
  },
};

export const SERVER_ASSIGNORS: ReadonlyMap<string, ServerAssignor> = new Map([
  [UNIFORM_ASSIGNOR, uniformAssignor],
  [RANGE_ASSIGNOR, rangeAssignor],
]);
