/**
 * Unit tests of RaftNode, driven by hand: each test builds a small cluster on a hand-cranked
 * network (messages are queued and delivered only when the test says, optionally filtered) and
 * SimDisks that complete writes at once or only when the test syncs them. Each test names the
 * Raft property it checks. Randomized, many-seed testing lives in src/sim/sim.test.ts.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SimDisk } from '../sim/disk.js';
import type { LogEntry, NodeId } from './log.js';
import { type DurableState, type RaftConfig, type RaftMessage, RaftNode, type Snapshot } from './raft.js';

const ELECTION = { min: 10, max: 20 };

interface TestNode {
  raft: RaftNode;
  disk: SimDisk;
  /** When false, writes stay pending until sync(). */
  autoSync: boolean;
  applied: LogEntry[];
  loadedSnapshot: Snapshot | undefined;
}

class Cluster {
  readonly nodes = new Map<NodeId, TestNode>();
  queue: RaftMessage[] = [];
  /** Nodes cut off from everyone: their messages in and out are dropped. */
  readonly isolated = new Set<NodeId>();
  delivered: RaftMessage[] = [];

  constructor(
    readonly ids: NodeId[],
    overrides: Partial<RaftConfig> = {},
    durable: Partial<Record<NodeId, DurableState>> = {},
  ) {
    for (const id of ids) {
      const disk = new SimDisk();
      const state = durable[id];
      if (state !== undefined) {
        disk.submit(
          {
            writeId: 0,
            snapshot: state.snapshot,
            truncateFromIndex: undefined,
            entries: state.entries,
            hardState: state.hardState,
          },
          0,
        );
        disk.completeDue(0);
      }
      const raft = new RaftNode(
        // Every timeout is the maximum (20 ticks): elect() relies on it to time one node out first.
        {
          id,
          voters: ids,
          electionTimeoutTicks: ELECTION,
          heartbeatTicks: 3,
          random: () => 0.99,
          ...overrides,
        },
        disk.durableState(),
      );
      this.nodes.set(id, { raft, disk, autoSync: true, applied: [], loadedSnapshot: undefined });
      this.drain(id);
    }
  }

  node(id: NodeId): TestNode {
    return this.nodes.get(id)!;
  }

  raft(id: NodeId): RaftNode {
    return this.node(id).raft;
  }

  drain(id: NodeId): void {
    const n = this.node(id);
    while (n.raft.hasReady()) {
      const rd = n.raft.ready();
      if (rd.persist) n.disk.submit(rd.persist, 0);
      this.queue.push(...rd.messages);
      if (rd.snapshot) n.loadedSnapshot = rd.snapshot;
      n.applied.push(...rd.committed);
      if (n.autoSync) this.sync(id);
    }
  }

  sync(id: NodeId): void {
    const n = this.node(id);
    const done = n.disk.completeDue(0);
    if (done !== undefined) {
      n.raft.diskWritten(done);
      this.drain(id);
    }
  }

  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) {
      this.raft(id).tick();
      this.drain(id);
    }
  }

  /** Delivers one queued message (the first matching `pick`); returns it, or undefined. */
  deliverOne(pick: (m: RaftMessage) => boolean = () => true): RaftMessage | undefined {
    const i = this.queue.findIndex(pick);
    if (i < 0) return undefined;
    const [m] = this.queue.splice(i, 1);
    if (this.isolated.has(m!.from) || this.isolated.has(m!.to)) return m;
    this.delivered.push(m!);
    this.raft(m!.to).receive(m!);
    this.drain(m!.to);
    return m;
  }

  deliverAll(limit = 10_000): void {
    for (let i = 0; this.queue.length > 0; i++) {
      assert.ok(i < limit, 'messages keep flowing');
      this.deliverOne();
    }
  }

  /**
   * Runs an election that `id` wins: the other reachable non-leaders are ticked past the minimum
   * election timeout (so they are out of their leader lease and will vote) but short of their own
   * timeout, then `id` times out.
   */
  elect(id: NodeId): void {
    for (const other of this.ids) {
      if (other !== id && !this.isolated.has(other) && this.raft(other).role !== 'leader')
        this.tick(other, ELECTION.min);
    }
    this.tick(id, ELECTION.max);
    this.deliverAll();
    assert.equal(this.raft(id).role, 'leader');
  }

  /** A heartbeat round from the leader, delivered. */
  heartbeat(leader: NodeId): void {
    this.tick(leader, 3);
    this.deliverAll();
  }
}

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (e: LogEntry) => new TextDecoder().decode(e.data);
const dataOf = (entries: readonly LogEntry[]) => entries.filter((e) => e.kind === 'data').map(text);

describe('RaftNode election', () => {
  test('a single voter elects itself once its vote is durable, then commits on its own fsync', () => {
    const c = new Cluster([1]);
    c.node(1).autoSync = false;
    c.tick(1, ELECTION.max);
    assert.equal(c.raft(1).role, 'candidate');
    assert.equal(c.raft(1).term, 1);
    c.sync(1);
    assert.equal(c.raft(1).role, 'leader');
    const r = c.raft(1).propose(bytes('a'));
    assert.deepEqual(r, { ok: true, index: 2, term: 1 });
    c.drain(1);
    assert.equal(c.raft(1).commitIndex, 0, 'nothing commits before the leader fsyncs');
    c.sync(1);
    assert.equal(c.raft(1).commitIndex, 2);
    assert.deepEqual(dataOf(c.node(1).applied), ['a']);
  });

  test('three nodes: pre-vote then vote, one leader, the others follow it; followers refuse proposals', () => {
    const c = new Cluster([1, 2, 3]);
    c.tick(1, ELECTION.max);
    assert.equal(c.raft(1).role, 'precandidate');
    assert.equal(c.raft(1).term, 0, 'pre-vote does not bump the term');
    c.deliverAll();
    assert.equal(c.raft(1).role, 'leader');
    assert.equal(c.raft(1).term, 1);
    for (const id of [2, 3]) {
      assert.equal(c.raft(id).role, 'follower');
      assert.equal(c.raft(id).leaderId, 1);
      assert.equal(c.raft(id).vote === 1 || c.raft(id).vote === undefined, true);
    }
    assert.equal(c.raft(1).commitIndex, 1, 'the no-op of term 1 is committed');
    const refused = c.raft(2).propose(bytes('x'));
    assert.deepEqual(refused, { ok: false, reason: 'not_leader', leaderId: 1, term: 1 });
    c.raft(1).propose(bytes('a'));
    c.raft(1).propose(bytes('b'));
    c.drain(1);
    c.deliverAll();
    c.heartbeat(1);
    for (const id of [1, 2, 3]) assert.deepEqual(dataOf(c.node(id).applied), ['a', 'b']);
  });

  test('a vote is persisted before it is sent, and the candidate waits for its own vote to be durable', () => {
    const c = new Cluster([1, 2, 3]);
    c.node(1).autoSync = false;
    c.node(2).autoSync = false;
    c.tick(1, ELECTION.max);
    c.deliverAll(); // pre-votes need no disk
    assert.equal(c.raft(1).role, 'candidate');
    assert.equal(c.queue.length, 0, 'Vote requests wait for the candidate term and self-vote to be durable');
    c.sync(1);
    assert.equal(c.queue.filter((m) => m.type === 'Vote').length, 2);
    c.node(3).autoSync = false;
    c.deliverOne((m) => m.to === 2);
    c.deliverOne((m) => m.to === 3);
    assert.equal(c.queue.length, 0, 'granted votes are held until the vote is fsynced');
    c.sync(2);
    assert.deepEqual(
      c.queue.map((m) => [m.type, m.from]),
      [['VoteResponse', 2]],
    );
    c.deliverAll();
    assert.equal(c.raft(1).role, 'leader');
  });

  test('a follower acknowledges appends only after they are durable', () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.node(2).autoSync = false;
    c.raft(1).propose(bytes('a'));
    c.drain(1);
    c.deliverOne((m) => m.to === 2);
    assert.equal(c.queue.filter((m) => m.from === 2).length, 0, 'no ack before fsync');
    assert.equal(c.node(2).disk.pendingCount, 1);
    c.sync(2);
    const ack = c.queue.find((m) => m.from === 2);
    assert.ok(ack?.type === 'AppendEntriesResponse' && ack.success && ack.matchIndex === 2);
  });

  test('pre-vote: a partitioned node does not bump its term, and rejoining does not disrupt the leader', () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.isolated.add(3);
    for (let round = 0; round < 10; round++) {
      c.tick(3, ELECTION.max);
      c.heartbeat(1);
    }
    assert.equal(c.raft(3).term, 1, 'ten election timeouts later, still term 1');
    assert.equal(c.raft(3).role, 'precandidate');
    c.isolated.delete(3);
    // Its pre-votes reach nodes that heard from the leader recently: rejected.
    c.tick(3, ELECTION.max);
    c.deliverAll();
    assert.equal(c.raft(1).role, 'leader');
    assert.equal(c.raft(1).term, 1);
    c.heartbeat(1);
    assert.equal(c.raft(3).role, 'follower');
    assert.equal(c.raft(3).leaderId, 1);
    assert.equal(c.raft(3).term, 1);
  });

  test('without pre-vote the same rejoin disrupts the leader (what pre-vote prevents)', () => {
    const c = new Cluster([1, 2, 3], { preVote: false, checkQuorum: false });
    c.elect(1);
    c.isolated.add(3);
    for (let round = 0; round < 5; round++) {
      c.tick(3, ELECTION.max);
      c.heartbeat(1);
    }
    assert.ok(c.raft(3).term > 1);
    c.isolated.delete(3);
    c.heartbeat(1);
    assert.notEqual(c.raft(1).role, 'leader', 'the old leader saw a higher term and stepped down');
  });

  test('check-quorum: a leader that hears from no quorum within an election timeout steps down', () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.isolated.add(2);
    for (let i = 0; i < 4 * ELECTION.min; i++) {
      c.tick(1);
      c.deliverAll();
    }
    assert.equal(c.raft(1).role, 'leader', 'node 3 still answers: a quorum with the leader');
    c.isolated.add(3);
    for (let i = 0; i < 2 * ELECTION.min; i++) {
      c.tick(1);
      c.deliverAll();
    }
    assert.notEqual(c.raft(1).role, 'leader');
    assert.equal(c.raft(1).leaderId, undefined);
    assert.equal(c.raft(1).term, 1, 'stepping down does not change the term, and isolated pre-votes fail');
  });

  test('a follower in contact with its leader ignores higher-term vote requests (leader lease)', () => {
    const c = new Cluster([1, 2, 3], { preVote: false });
    c.elect(1);
    c.isolated.add(1);
    c.tick(3, ELECTION.max); // node 3 campaigns at term 2, but node 2 heard from leader 1 recently
    c.isolated.delete(1);
    assert.ok(c.deliverOne((m) => m.type === 'Vote' && m.to === 2 && m.term === 2));
    assert.equal(c.raft(2).term, 1);
    assert.equal(c.raft(2).vote, 1);
  });
});

describe('RaftNode replication', () => {
  test('conflicting entries of a deposed leader are replaced, found with fast backoff', () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.raft(1).propose(bytes('a'));
    c.drain(1);
    c.deliverAll();
    c.heartbeat(1);
    // Leader 1 is cut off and keeps accepting proposals nobody will see.
    c.isolated.add(1);
    for (let i = 0; i < 20; i++) c.raft(1).propose(bytes(`lost${i}`));
    c.drain(1);
    c.deliverAll();
    assert.equal(c.raft(1).log.lastIndex, 22);
    // Nodes 2 and 3 elect 2 in term 2 and write their own entries.
    c.elect(2);
    for (let i = 0; i < 5; i++) c.raft(2).propose(bytes(`kept${i}`));
    c.drain(2);
    c.deliverAll();
    c.heartbeat(2);
    c.isolated.delete(1);
    c.delivered = [];
    for (let i = 0; i < 3; i++) c.heartbeat(2);
    const rejections = c.delivered.filter((m) => m.type === 'AppendEntriesResponse' && !m.success);
    assert.ok(
      rejections.length <= 2,
      `fast backoff: ${rejections.length} rejections for 20 conflicting entries`,
    );
    for (const id of [1, 3]) {
      const a = c.raft(2).log;
      const b = c.raft(id).log;
      assert.equal(b.lastIndex, a.lastIndex);
      for (let i = 1; i <= a.lastIndex; i++) assert.equal(b.term(i), a.term(i), `node ${id} index ${i}`);
    }
    assert.deepEqual(dataOf(c.node(1).applied), ['a', 'kept0', 'kept1', 'kept2', 'kept3', 'kept4']);
  });

  test('a follower behind the leader snapshot gets InstallSnapshot and catches up', () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.isolated.add(3);
    for (let i = 0; i < 30; i++) c.raft(1).propose(bytes(`e${i}`));
    c.drain(1);
    c.deliverAll();
    c.heartbeat(1);
    const leader = c.raft(1);
    assert.equal(leader.appliedIndex, 31);
    assert.equal(leader.compact(25, bytes('state@25')), true);
    assert.equal(leader.log.snapshotIndex, 25);
    assert.equal(leader.log.term(10), undefined, 'entries below the snapshot are gone');
    c.drain(1);
    assert.equal(c.node(1).disk.snapshotIndex, 25, 'the snapshot was persisted');
    c.isolated.delete(3);
    c.delivered = [];
    c.heartbeat(1);
    c.heartbeat(1);
    assert.ok(c.delivered.some((m) => m.type === 'InstallSnapshot' && m.to === 3));
    const f = c.node(3);
    assert.equal(f.loadedSnapshot?.index, 25);
    assert.equal(new TextDecoder().decode(f.loadedSnapshot!.data), 'state@25');
    assert.equal(f.raft.log.snapshotIndex, 25);
    assert.equal(f.raft.log.lastIndex, 31);
    assert.equal(f.raft.commitIndex, 31);
    assert.deepEqual(dataOf(f.applied), ['e24', 'e25', 'e26', 'e27', 'e28', 'e29']);
    // Restarting from disk alone gives back the snapshot and the entries after it.
    const again = new RaftNode(
      { id: 3, voters: [1, 2, 3], electionTimeoutTicks: ELECTION, heartbeatTicks: 3, random: () => 0 },
      f.disk.durableState(),
    );
    assert.equal(again.log.snapshotIndex, 25);
    assert.equal(again.log.lastIndex, 31);
    assert.equal(again.ready().snapshot?.index, 25);
  });

  /**
   * Raft §5.4.2 / Figure 8. Node 1 leads term 4 with an entry of term 2 at index 2 that only it
   * holds; replicating entry by entry, there is a moment when index 2 is on a quorum (nodes 1
   * and 2) but the no-op of term 4 is not. Counting replicas then would commit index 2 — and a
   * node whose last entry is of term 3 could still be elected and overwrite it. The correct node
   * commits nothing until its own term's entry is on a quorum.
   */
  function figure8(unsafe: RaftConfig['unsafe']): {
    committedPreviousTermAlone: boolean;
    finalCommit: number;
  } {
    const e = (index: number, term: number): LogEntry => ({
      index,
      term,
      kind: 'data',
      data: bytes(`${index}@${term}`),
    });
    const c = new Cluster(
      [1, 2, 3],
      { appendEntriesMax: 1, unsafe },
      {
        1: { hardState: { term: 3, votedFor: undefined }, snapshot: undefined, entries: [e(1, 1), e(2, 2)] },
        2: { hardState: { term: 3, votedFor: undefined }, snapshot: undefined, entries: [e(1, 1)] },
        3: { hardState: { term: 3, votedFor: undefined }, snapshot: undefined, entries: [e(1, 1), e(2, 3)] },
      },
    );
    c.isolated.add(3);
    c.tick(2, ELECTION.min);
    c.tick(1, ELECTION.max);
    while (c.raft(1).role !== 'leader') assert.ok(c.deliverOne(), 'node 1 wins with node 2');
    assert.equal(c.raft(1).term, 4);
    let committedPreviousTermAlone = false;
    for (let i = 0; i < 50 && c.queue.length > 0; i++) {
      c.deliverOne();
      const leaderCommit = c.raft(1).commitIndex;
      if (leaderCommit >= 2 && c.raft(2).log.term(3) !== 4) committedPreviousTermAlone = true;
    }
    c.heartbeat(1);
    return { committedPreviousTermAlone, finalCommit: c.raft(1).commitIndex };
  }

  test('entries of earlier terms are not committed by counting replicas (§5.4.2)', () => {
    const ok = figure8(undefined);
    assert.equal(ok.committedPreviousTermAlone, false);
    assert.equal(ok.finalCommit, 3, 'they commit with the no-op of the current term');
    const buggy = figure8({ commitPreviousTermByCounting: true });
    assert.equal(buggy.committedPreviousTermAlone, true, 'the deliberate bug is visible to this test');
  });

  test('stale and duplicated AppendEntries never truncate matching entries', () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.raft(1).propose(bytes('a'));
    c.drain(1);
    const first = c.queue.find((m) => m.type === 'AppendEntries' && m.to === 2)!;
    c.deliverAll();
    for (let i = 0; i < 3; i++) c.raft(1).propose(bytes(`b${i}`));
    c.drain(1);
    c.deliverAll();
    const before = c.raft(2).log.lastIndex;
    c.raft(2).receive(first);
    c.drain(2);
    assert.equal(c.raft(2).log.lastIndex, before);
  });

  test('a restarted node keeps its durable vote and will not vote twice in a term', () => {
    const c = new Cluster([1, 2, 3], { preVote: false });
    c.tick(1, ELECTION.max);
    c.sync(1);
    c.deliverOne((m) => m.type === 'Vote' && m.to === 2);
    assert.equal(c.raft(2).vote, 1);
    const restarted = new RaftNode(
      {
        id: 2,
        voters: [1, 2, 3],
        electionTimeoutTicks: ELECTION,
        heartbeatTicks: 3,
        random: () => 0,
        preVote: false,
      },
      c.node(2).disk.durableState(),
    );
    assert.equal(restarted.term, 1);
    assert.equal(restarted.vote, 1);
    restarted.receive({ type: 'Vote', from: 3, to: 2, term: 1, lastLogIndex: 5, lastLogTerm: 1 });
    const answer = restarted.ready().messages.find((m) => m.type === 'VoteResponse');
    assert.ok(answer?.type === 'VoteResponse' && !answer.granted);
  });
});
