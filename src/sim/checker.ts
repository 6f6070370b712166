/**
 * SafetyChecker: Raft's safety properties, checked from outside the nodes (TigerBeetle keeps its
 * state_checker apart from the simulator the same way). It reads nodes only through their public
 * inspection getters and the simulated disks, and throws a Violation the moment a property fails.
 *
 * Properties:
 * - Election Safety: at most one leader per term, over the whole run (crashes included).
 * - Commit monotonicity: a node's commit index never goes back within one incarnation.
 * - Committed entries are immutable: a global record maps each index ever seen committed (on any
 *   node) to its entry; every node's log at or below its commit index, and every entry a state
 *   machine applies, must equal that record. A different entry committed at a recorded index
 *   — e.g. after a crash lost an acknowledged write — is caught here.
 * - Durability: every recorded committed entry is on the durable disk (log or snapshot) of a
 *   quorum of nodes. Checked after every crash, when it matters most, and periodically.
 * - Leader Completeness: a new leader holds every entry that was seen committed before its term
 *   began on it.
 * - Log Matching: two logs that hold an entry with the same index and term agree on every entry
 *   up to it (checked periodically and at the end; it is O(log length) per pair).
 */

import type { LogEntry, NodeId, RaftNode } from '../raft/raft.js';
import type { SimDisk } from './disk.js';

export interface NodeView {
  readonly id: NodeId;
  readonly incarnation: number;
  /** undefined while the node is crashed. */
  readonly raft: RaftNode | undefined;
  readonly disk: SimDisk;
}

export class Violation extends Error {
  readonly code = 'SIM_VIOLATION';
  constructor(
    readonly property: string,
    message: string,
  ) {
    super(`${property}: ${message}`);
    this.name = 'Violation';
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function sameEntry(a: LogEntry, b: LogEntry): boolean {
  return (
    a === b || (a.index === b.index && a.term === b.term && a.kind === b.kind && bytesEqual(a.data, b.data))
  );
}

function describe(e: LogEntry | undefined): string {
  return e === undefined ? 'nothing' : `(term ${e.term}, ${e.kind}, ${e.data.length} bytes)`;
}

interface NodeTrack {
  incarnation: number;
  commit: number;
  /** Log entries up to here were checked against the record in this incarnation. */
  checkedIndex: number;
  term: number;
  termSinceStep: number;
  leaderTerm: number | undefined;
  /** Next index the state machine must apply. */
  nextApplyIndex: number;
}

export class SafetyChecker {
  private readonly leaderByTerm = new Map<number, NodeId>();
  /** committed[i]: the entry seen committed at index i; observedStep[i]: when it was first seen. */
  private readonly committed: (LogEntry | undefined)[] = [];
  private readonly observedStep: number[] = [];
  private readonly tracks = new Map<NodeId, NodeTrack>();
  private readonly quorum: number;
  committedIndexMax = 0;
  checksCount = 0;

  /**
   * `durability: false` turns off the quorum-durability check, so a test can show that a bug it
   * would catch early also ends in a lost or changed committed entry.
   */
  constructor(
    readonly nodeCount: number,
    private readonly durability = true,
  ) {
    this.quorum = Math.floor(nodeCount / 2) + 1;
  }

  /** The recorded committed entry at `index`, if any (the simulator's end checks use it). */
  committedEntry(index: number): LogEntry | undefined {
    return this.committed[index];
  }

  afterStep(step: number, nodes: readonly NodeView[], full: boolean): void {
    this.checksCount++;
    for (const n of nodes) {
      const r = n.raft;
      if (r === undefined) continue;
      const t = this.track(n, step);
      if (r.term !== t.term) {
        t.term = r.term;
        t.termSinceStep = step;
      }
      if (r.role === 'leader') {
        const other = this.leaderByTerm.get(r.term);
        if (other !== undefined && other !== n.id) {
          throw new Violation(
            'election-safety',
            `nodes ${other} and ${n.id} are both leaders of term ${r.term}`,
          );
        }
        this.leaderByTerm.set(r.term, n.id);
        if (t.leaderTerm !== r.term) {
          t.leaderTerm = r.term;
          this.checkLeaderCompleteness(n, r, t);
        }
      }
      if (r.commitIndex < t.commit) {
        throw new Violation(
          'commit-monotonic',
          `node ${n.id} commit index went from ${t.commit} to ${r.commitIndex}`,
        );
      }
      t.commit = r.commitIndex;
      if (r.commitIndex < r.log.snapshotIndex || r.commitIndex > r.log.lastIndex) {
        throw new Violation(
          'commit-bounds',
          `node ${n.id} commit ${r.commitIndex} outside its log ${r.log.snapshotIndex}..${r.log.lastIndex}`,
        );
      }
      const from = full ? r.log.snapshotIndex + 1 : Math.max(t.checkedIndex + 1, r.log.snapshotIndex + 1);
      this.checkCommittedPrefix(n, r, from, r.commitIndex, step);
      t.checkedIndex = r.commitIndex;
    }
    if (full) {
      this.checkLogMatching(nodes);
      this.checkDurability(nodes, 'periodic');
    }
  }

  afterCrash(nodes: readonly NodeView[]): void {
    this.checkDurability(nodes, 'after crash');
  }

  /** A state machine loaded a snapshot: its next applied entry must follow it. */
  onSnapshotLoaded(n: NodeView, index: number, step: number): void {
    const t = this.track(n, step);
    t.nextApplyIndex = index + 1;
  }

  onApply(n: NodeView, e: LogEntry, step: number): void {
    const t = this.track(n, step);
    if (e.index !== t.nextApplyIndex) {
      throw new Violation(
        'apply-order',
        `node ${n.id} applied index ${e.index}, expected ${t.nextApplyIndex}`,
      );
    }
    t.nextApplyIndex++;
    this.record(n, e, step, 'applied');
  }

  private track(n: NodeView, step: number): NodeTrack {
    let t = this.tracks.get(n.id);
    if (t === undefined || t.incarnation !== n.incarnation) {
      const r = n.raft;
      t = {
        incarnation: n.incarnation,
        commit: 0,
        checkedIndex: 0,
        term: r?.term ?? 0,
        termSinceStep: step,
        leaderTerm: undefined,
        nextApplyIndex: (r?.log.snapshotIndex ?? 0) + 1,
      };
      this.tracks.set(n.id, t);
    }
    return t;
  }

  private record(n: NodeView, e: LogEntry, step: number, how: string): void {
    const known = this.committed[e.index];
    if (known === undefined) {
      this.committed[e.index] = e;
      this.observedStep[e.index] = step;
      if (e.index > this.committedIndexMax) this.committedIndexMax = e.index;
      return;
    }
    if (!sameEntry(known, e)) {
      throw new Violation(
        'committed-entry-changed',
        `node ${n.id} ${how} ${describe(e)} at index ${e.index}, but ${describe(known)} was committed there`,
      );
    }
  }

  private checkCommittedPrefix(n: NodeView, r: RaftNode, from: number, to: number, step: number): void {
    for (let i = from; i <= to; i++) {
      const e = r.log.entry(i);
      if (e === undefined)
        throw new Violation('commit-bounds', `node ${n.id} has no entry at committed index ${i}`);
      this.record(n, e, step, 'has committed');
    }
  }

  private checkLeaderCompleteness(n: NodeView, r: RaftNode, t: NodeTrack): void {
    for (let i = r.log.snapshotIndex + 1; i <= this.committedIndexMax; i++) {
      const c = this.committed[i];
      if (c === undefined || this.observedStep[i]! >= t.termSinceStep) continue;
      const e = r.log.entry(i);
      if (e === undefined || !sameEntry(e, c)) {
        throw new Violation(
          'leader-completeness',
          `node ${n.id} became leader of term ${r.term} without committed index ${i} ${describe(c)}; it has ${describe(e)}`,
        );
      }
    }
  }

  private checkDurability(nodes: readonly NodeView[], when: string): void {
    if (!this.durability) return;
    for (let i = 1; i <= this.committedIndexMax; i++) {
      const c = this.committed[i];
      if (c === undefined) continue;
      let holders = 0;
      for (const n of nodes) {
        const d = n.disk;
        if (d.snapshotIndex >= i) holders++;
        else {
          const e = d.entry(i);
          if (e !== undefined && sameEntry(e, c)) holders++;
        }
      }
      if (holders < this.quorum) {
        throw new Violation(
          'committed-entry-durable',
          `${when}: committed index ${i} ${describe(c)} is durable on ${holders} nodes, quorum is ${this.quorum}`,
        );
      }
    }
  }

  private checkLogMatching(nodes: readonly NodeView[]): void {
    const live = nodes.filter((n) => n.raft !== undefined);
    for (let x = 0; x < live.length; x++) {
      for (let y = x + 1; y < live.length; y++) {
        const a = live[x]!.raft!;
        const b = live[y]!.raft!;
        const lo = Math.max(a.log.snapshotIndex, b.log.snapshotIndex) + 1;
        let i = Math.min(a.log.lastIndex, b.log.lastIndex);
        while (i >= lo && a.log.term(i) !== b.log.term(i)) i--;
        for (; i >= lo; i--) {
          const ea = a.log.entry(i)!;
          const eb = b.log.entry(i)!;
          if (!sameEntry(ea, eb)) {
            throw new Violation(
              'log-matching',
              `nodes ${a.id} and ${b.id} share a later (index, term) but differ at ${i}: ${describe(ea)} vs ${describe(eb)}`,
            );
          }
        }
      }
    }
  }
}
