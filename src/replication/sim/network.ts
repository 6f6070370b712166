/**
 * SimNetwork: a simulated network for the replication simulator, in the style of src/sim/network.ts
 * but generic over the message type.
 *
 * Each message gets a random delay in [delayTicksMin, delayTicksMax] ticks (so messages reorder),
 * may be dropped, and — when the sender marks it duplicable — delivered twice. A message is
 * delivered only if the link from sender to receiver is up at delivery time. A crashed node's
 * connections die with it: `dropNode` discards everything in flight to or from it. At most
 * `inflightMax` messages are in flight; beyond that the network drops, like a full queue.
 */

import type { Prng } from '../../sim/prng.js';

export interface NetworkOptions {
  delayTicksMin: number;
  delayTicksMax: number;
  dropRate: number;
  duplicateRate: number;
  inflightMax: number;
}

export interface Addressed {
  readonly from: number;
  readonly to: number;
}

interface InFlight<M> {
  readonly deliverAtTick: number;
  readonly seq: number;
  readonly message: M;
}

export class SimNetwork<M extends Addressed> {
  options: NetworkOptions;
  private inflight: InFlight<M>[] = [];
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

  send(message: M, nowTick: number, duplicable: boolean, extraDelayTicks = 0): void {
    this.sentCount++;
    const o = this.options;
    if (this.prng.chance(o.dropRate)) {
      this.droppedCount++;
      return;
    }
    const copies = duplicable && this.prng.chance(o.duplicateRate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      if (this.inflight.length >= o.inflightMax) {
        this.droppedCount++;
        return;
      }
      const delay = this.prng.int(o.delayTicksMin, o.delayTicksMax) + extraDelayTicks;
      this.inflight.push({ deliverAtTick: nowTick + delay, seq: this.seq++, message });
    }
  }

  /** Removes and returns the messages due at or before `nowTick` over links that are up. */
  takeDue(nowTick: number): M[] {
    const due: InFlight<M>[] = [];
    const keep: InFlight<M>[] = [];
    for (const f of this.inflight) (f.deliverAtTick <= nowTick ? due : keep).push(f);
    this.inflight = keep;
    due.sort((x, y) => x.deliverAtTick - y.deliverAtTick || x.seq - y.seq);
    const out: M[] = [];
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

  dropNode(id: number): void {
    const before = this.inflight.length;
    this.inflight = this.inflight.filter((f) => f.message.from !== id && f.message.to !== id);
    this.droppedCount += before - this.inflight.length;
  }

  linkUp(from: number, to: number): boolean {
    return !this.cut.has(`${from}>${to}`);
  }

  /** Splits the nodes into groups; nodes in different groups cannot reach each other. */
  partition(groups: readonly (readonly number[])[]): void {
    this.cut.clear();
    for (const g of groups) {
      for (const h of groups) {
        if (g === h) continue;
        for (const a of g) for (const b of h) this.cut.add(`${a}>${b}`);
      }
    }
  }

  cutOneWay(from: number, to: number): void {
    this.cut.add(`${from}>${to}`);
  }

  heal(): void {
    this.cut.clear();
  }

  get partitioned(): boolean {
    return this.cut.size > 0;
  }
}
