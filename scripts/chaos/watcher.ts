/**
 * The metadata watcher: asks every running node, every few hundred milliseconds, who leads each
 * partition of the topic, and records each change of a node's view (leader, leader epoch, ISR)
 * with its time. It is evidence for reports, not input to the checker: when an anomaly is found,
 * the views around it show which node believed it was the leader, at which epoch, and when
 * (e.g. a node that has just restarted announcing a leadership it lost while it was down).
 *
 * Bounded: at most EVENTS_MAX changes are kept (a run of minutes makes a few hundred).
 */

import { type ChaosCluster, NODES, sleep } from './cluster.js';

const POLL_MS = 300;
const EVENTS_MAX = 20_000;

export interface ViewChange {
  atMs: number;
  /** The node whose metadata answer this is. */
  node: number;
  partition: number;
  leader: number;
  leaderEpoch: number;
  isr: number[];
}

export class MetadataWatcher {
  readonly changes: ViewChange[] = [];
  private readonly last = new Map<string, string>();
  /** Each node's previous answer per partition, while it answers every poll. */
  private readonly previous = new Map<string, ViewChange>();
  /** Elections of a leader outside an observer's previous ISR, per partition and leader epoch. */
  private readonly unclean = new Map<string, { change: ViewChange; observers: Set<number> }>();
  private stopped = false;
  private loop: Promise<void> | null = null;

  constructor(
    private readonly cluster: ChaosCluster,
    private readonly topic: string,
    private readonly t0: number,
  ) {}

  start(): void {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      await Promise.all(
        Array.from({ length: NODES }, async (_, i) => {
          const node = i + 1;
          const view = await this.cluster.metadataFrom(node, this.topic);
          if (!view) {
            // A node that did not answer may miss elections: do not compare across the gap.
            for (const k of [...this.previous.keys()]) if (k.startsWith(`${node}/`)) this.previous.delete(k);
            return;
          }
          const atMs = Date.now() - this.t0;
          for (const p of view) {
            const k = `${node}/${p.partition}`;
            const prev = this.previous.get(k);
            const current = {
              atMs,
              node,
              partition: p.partition,
              leader: p.leader,
              leaderEpoch: p.leaderEpoch,
              isr: p.isr,
            };
            this.previous.set(k, current);
            if (prev && p.leader > 0 && p.leaderEpoch > prev.leaderEpoch && !prev.isr.includes(p.leader)) {
              const e = this.unclean.get(`${p.partition}/${p.leaderEpoch}`) ?? {
                change: current,
                observers: new Set(),
              };
              e.observers.add(node);
              this.unclean.set(`${p.partition}/${p.leaderEpoch}`, e);
            }
            const v = `${p.leader}/${p.leaderEpoch}/${p.isr.join(',')}`;
            if (this.last.get(k) === v) continue;
            this.last.set(k, v);
            if (this.changes.length < EVENTS_MAX)
              this.changes.push({
                atMs,
                node,
                partition: p.partition,
                leader: p.leader,
                leaderEpoch: p.leaderEpoch,
                isr: p.isr,
              });
          }
        }),
      );
      await sleep(POLL_MS);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  /**
   * Elections whose new leader was not in the ISR of the observer's answer just before, seen so by
   * at least two nodes: unclean ones, one per partition and leader epoch. An observer that missed
   * a poll is not compared across the gap, and one alone does not count (a node that has just
   * restarted may first answer from an old image). Polls can miss a short-lived state, so this is
   * a lower bound.
   */
  uncleanElections(): ViewChange[] {
    return [...this.unclean.values()].filter((e) => e.observers.size >= 2).map((e) => e.change);
  }

  /** The smallest ISR any node reported for any partition (NODES if none was seen shrinking). */
  minIsrSize(): number {
    return Math.min(NODES, ...this.changes.filter((c) => c.leader > 0).map((c) => c.isr.length));
  }

  /** The view changes of `partition` within [fromMs, toMs]. */
  around(partition: number, fromMs: number, toMs: number): ViewChange[] {
    return this.changes.filter((c) => c.partition === partition && c.atMs >= fromMs && c.atMs <= toMs);
  }
}
