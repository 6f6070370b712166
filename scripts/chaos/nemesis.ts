/**
 * The nemesis: a seeded schedule of process faults and the loop that applies them to a cluster.
 *
 * One fault at a time: wait a gap (1-4 s), pick a kind among the enabled ones and a target, apply
 * it, hold it (1-5 s), heal it (SIGCONT, or restart on the same data dir and port), repeat until
 * the fault phase is over. The target is, with even odds, a node drawn at random or the current
 * leader of a partition drawn at random (leaders are where faults hurt). Every draw comes from the
 * run's Prng in a fixed number per fault, so a seed gives the same sequence of (gap, kind, node or
 * partition, hold); which node leads a partition at that moment depends on timing, so a replay
 * repeats the schedule, not necessarily the exact interleaving.
 */

import type { Prng } from '../../src/sim/prng.js';
import { type ChaosCluster, NODES, sleep } from './cluster.js';

export const FAULT_KINDS = ['kill', 'pause'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

const GAP_MS_MIN = 1_000;
const GAP_MS_MAX = 4_000;
const HOLD_MS_MIN = 1_000;
const HOLD_MS_MAX = 5_000;

export interface PlannedFault {
  gapMs: number;
  kind: FaultKind;
  /** 'leader': the leader of `partition` when the fault starts (else `node`). */
  target: 'node' | 'leader';
  node: number;
  partition: number;
  holdMs: number;
}

/** The next fault of a schedule: always six draws, whatever is drawn. */
export function nextFault(prng: Prng, kinds: readonly FaultKind[], partitions: number): PlannedFault {
  const gapMs = prng.int(GAP_MS_MIN, GAP_MS_MAX);
  const kind = prng.pick(kinds);
  const target = prng.chance(0.5) ? 'leader' : 'node';
  const node = prng.int(1, NODES);
  const partition = prng.int(0, partitions - 1);
  const holdMs = prng.int(HOLD_MS_MIN, HOLD_MS_MAX);
  return { gapMs, kind, target, node, partition, holdMs };
}

export interface FaultEvent {
  kind: FaultKind;
  node: number;
  /** How the node was chosen, e.g. "leader of p1" or "random". */
  why: string;
  /** Milliseconds since the run's start. */
  startMs: number;
  healedMs?: number;
  /** For a kill: how long the restart took until the node printed its ready line. */
  restartMs?: number;
  error?: string;
}

export interface NemesisOptions {
  kinds: readonly FaultKind[];
  durationMs: number;
  topic: string;
  partitions: number;
  /** The run's time origin (Date.now() at its start). */
  t0: number;
  log: (line: string) => void;
}

/** Applies faults until `durationMs` has passed since it was called; returns them all, healed. */
export async function runNemesis(
  cluster: ChaosCluster,
  prng: Prng,
  o: NemesisOptions,
): Promise<FaultEvent[]> {
  const events: FaultEvent[] = [];
  const until = Date.now() + o.durationMs;
  const now = () => Date.now() - o.t0;
  const secs = (ms: number) => (ms / 1000).toFixed(1);
  for (;;) {
    const f = nextFault(prng, o.kinds, o.partitions);
    if (Date.now() + f.gapMs >= until) break;
    await sleep(f.gapMs);
    let node = f.node;
    let why = 'random';
    if (f.target === 'leader') {
      const leader =
        (await cluster.metadata(o.topic))?.find((p) => p.partition === f.partition)?.leader ?? -1;
      if (leader > 0) {
        node = leader;
        why = `leader of p${f.partition}`;
      } else {
        why = `random (p${f.partition} has no known leader)`;
      }
    }
    const ev: FaultEvent = { kind: f.kind, node, why, startMs: now() };
    events.push(ev);
    o.log(`[+${secs(ev.startMs)}s] ${f.kind} node ${node} (${why}) for ${secs(f.holdMs)} s`);
    try {
      if (f.kind === 'kill') await cluster.kill(node);
      else cluster.pause(node);
      await sleep(f.holdMs);
      if (f.kind === 'kill') {
        const t = Date.now();
        await cluster.restart(node);
        ev.restartMs = Date.now() - t;
      } else {
        cluster.resume(node);
      }
      ev.healedMs = now();
      o.log(
        `[+${secs(ev.healedMs)}s] node ${node} ${f.kind === 'kill' ? `restarted (ready in ${secs(ev.restartMs ?? 0)} s)` : 'resumed'}`,
      );
    } catch (e) {
      ev.error = (e as Error).message.slice(0, 2_000);
      o.log(`[+${secs(now())}s] healing node ${node} failed: ${ev.error.split('\n')[0]}`);
      // Leave it to the heal phase; a node that cannot restart is reported there.
      await sleep(1_000);
    }
  }
  return events;
}
