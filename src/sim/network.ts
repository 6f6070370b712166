/**
 * SimNetwork: a simulated message network on the simulated clock.
 *
 * Each message gets a random delay in [delayMin, delayMax] ticks (so messages reorder), may be
 * dropped or duplicated, and is delivered only if the link from sender to receiver is up at
 * delivery time. Links are cut by partitions (node sets that cannot talk to each other) or one way.
 * At most `inflightMax` messages are in flight; beyond that the network drops, like a full queue.
 */

import type { NodeId, RaftMessage } from '../raft/raft.js';
import type { Prng } from './prng.js';

export interface NetworkOptions {
  delayTicksMin: number;
  delayTicksMax: number;
  dropRate: number;
  duplicateRate: number;
  inflightMax: number;
}

interface InFlight {
  readonly deliverAtTick: number;
  readonly seq: number;
  readonly message: RaftMessage;
}

export class SimNetwork {
  options: NetworkOptions;
  private inflight: InFlight[] = [];
  private seq = 0;
  /** Cut links, as "from>to" keys. */
  private readonly cut = new Set<string>();
  sentCount = 0;
  droppedCount = 0;
  deliveredCount = 0;

  constructor(
    private readonly prng: Prng,
    options: NetworkOptions,
  ) {
    this.options = { ...options };
  }

  get inflightCount(): number {
    return this.inflight.length;
  }

  send(message: RaftMessage, nowTick: number): void {
    this.sentCount++;
    const o = this.options;
    if (this.prng.chance(o.dropRate)) {
      this.droppedCount++;
      return;
    }
    const copies = this.prng.chance(o.duplicateRate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      if (this.inflight.length >= o.inflightMax) {
        this.droppedCount++;
        return;
      }
      const delay = this.prng.int(o.delayTicksMin, o.delayTicksMax);
      this.inflight.push({ deliverAtTick: nowTick + delay, seq: this.seq++, message });
    }
  }

  /** Removes and returns the messages due at or before `nowTick` over links that are up. */
  takeDue(nowTick: number): RaftMessage[] {
    const due: InFlight[] = [];
    const keep: InFlight[] = [];
    for (const f of this.inflight) (f.deliverAtTick <= nowTick ? due : keep).push(f);
    this.inflight = keep;
    due.sort((x, y) => x.deliverAtTick - y.deliverAtTick || x.seq - y.seq);
    const out: RaftMessage[] = [];
    for (const f of due) {
      if (this.linkUp(f.message.from, f.message.to)) {
        out.push(f.message);
        this.deliveredCount++;
      } else {
        this.droppedCount++;
      }
    }
    return out;
  }

  linkUp(from: NodeId, to: NodeId): boolean {
    return !this.cut.has(`${from}>${to}`);
  }

  /** Splits the nodes into groups; nodes in different groups cannot reach each other. */
  partition(groups: readonly (readonly NodeId[])[]): void {
    this.cut.clear();
    for (const g of groups) {
      for (const h of groups) {
        if (g === h) continue;
        for (const a of g) for (const b of h) this.cut.add(`${a}>${b}`);
      }
    }
  }

  cutOneWay(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}>${to}`);
  }

  heal(): void {
    this.cut.clear();
  }

  get partitioned(): boolean {
    return this.cut.size > 0;
  }
}
