/**
 * The nemesis: a seeded schedule of faults and the loop that applies them to a cluster.
 *
 * One fault at a time: wait a gap (1-4 s), pick a kind among the enabled ones and a target, apply
 * it, hold it (1-5 s; partitions 2-8 s, since a partition shorter than the session timeout does
 * little), heal it, repeat until the fault phase is over. The target is, with even odds, a node
 * drawn at random or the current leader of a partition drawn at random (leaders are where faults
 * hurt). Every draw comes from the run's Prng in a fixed number per fault, so a seed gives the same
 * sequence of (gap, kind, node or partition, hold, shape); which node leads a partition at that
 * moment depends on timing, so a replay repeats the schedule, not necessarily the exact
 * interleaving.
 *
 * Kinds:
 * - kill: SIGKILL, then restart on the same data dir and ports.
 * - pause: SIGSTOP, then SIGCONT.
 * - partition: through the proxy (proxy.ts), either the node is cut off from both others, or only
 *   the link between it and one other node is cut (each still reaches the third: connectivity that
 *   is not transitive). Clients still reach every node.
 * - corrupt: SIGKILL, then damage the newest segment of one partition of the chaos topic on that
 *   node's disk (cut its tail off at a random point, or flip one bit in its last 4 KiB), then
 *   restart. Recovery must drop the damaged batches and the replica must fetch them again; the
 *   other replicas still hold every acknowledged record.
 * - disk: fill the node's own tmpfs (disk.ts) until writes fail with ENOSPC, free it when the
 *   fault heals. Its partitions refuse writes (KAFKA_STORAGE_ERROR) and its followers stop
 *   advancing meanwhile; if its metadata log write fails the node stops (as Kafka does), and the
 *   harness restarts it once the disk has room again, as a supervisor would.
 */

import { readdir, stat, truncate } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Prng } from '../../src/sim/prng.js';
import { type ChaosCluster, NODES, sleep } from './cluster.js';

export const FAULT_KINDS = ['kill', 'pause', 'partition', 'corrupt', 'disk'] as const;
/** `disk` needs root (a tmpfs per node), so it is only run when asked for. */
export const DEFAULT_FAULTS = ['kill', 'pause', 'partition', 'corrupt'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

const GAP_MS_MIN = 1_000;
const GAP_MS_MAX = 4_000;
const HOLD_MS_MIN = 1_000;
const HOLD_MS_MAX = 5_000;
const PARTITION_HOLD_MS_MIN = 2_000;
const PARTITION_HOLD_MS_MAX = 8_000;
/** A bit flip lands in the last this-many bytes of the segment (the newest batches). */
const FLIP_WINDOW = 4_096;

export interface PlannedFault {
  gapMs: number;
  kind: FaultKind;
  /** 'leader': the leader of `partition` when the fault starts (else `node`). */
  target: 'node' | 'leader';
  node: number;
  partition: number;
  holdMs: number;
  /**
   * partition: isolate the node from both others, or cut only its link to one other node.
   * corrupt: truncate the segment's tail, or flip a bit near it.
   */
  shape: 'a' | 'b';
  /** partition (link): which other node, as an offset 1..NODES-1 from the target. */
  other: number;
  /** corrupt: where, as a fraction of the span damaged (tail bytes cut, or the flip's position). */
  at: number;
}

/** The next fault of a schedule: always nine draws, whatever is drawn. */
export function nextFault(prng: Prng, kinds: readonly FaultKind[], partitions: number): PlannedFault {
  const gapMs = prng.int(GAP_MS_MIN, GAP_MS_MAX);
  const kind = prng.pick(kinds);
  const target = prng.chance(0.5) ? 'leader' : 'node';
  const node = prng.int(1, NODES);
  const partition = prng.int(0, partitions - 1);
  const hold = prng.next();
  const shape = prng.chance(0.5) ? 'a' : 'b';
  const other = prng.int(1, NODES - 1);
  const at = prng.next();
  const [min, max] =
    kind === 'partition' ? [PARTITION_HOLD_MS_MIN, PARTITION_HOLD_MS_MAX] : [HOLD_MS_MIN, HOLD_MS_MAX];
  const holdMs = min + Math.floor(hold * (max - min + 1));
  return { gapMs, kind, target, node, partition, holdMs, shape, other, at };
}

/**
 * Damages the newest segment of `topic-partition` under `dataDir`: `shape` 'a' cuts 1..4096 bytes
 * off its end, 'b' flips one bit in its last 4 KiB. Returns what it did, for the log.
 */
export async function corruptSegment(
  dataDir: string,
  topic: string,
  partition: number,
  shape: 'a' | 'b',
  at: number,
): Promise<string> {
  const dir = join(dataDir, `${topic}-${partition}`);
  const logs = (await readdir(dir)).filter((f) => f.endsWith('.log')).sort();
  const newest = logs.at(-1);
  if (!newest) return `no segment in ${dir}`;
  const file = join(dir, newest);
  const size = (await stat(file)).size;
  if (size === 0) return `${newest} is empty`;
  const span = Math.min(size, FLIP_WINDOW);
  if (shape === 'a') {
    const cut = 1 + Math.floor(at * span);
    await truncate(file, size - cut);
    return `cut ${cut} bytes off the end of ${topic}-${partition}/${newest} (${size} -> ${size - cut})`;
  }
  const pos = size - span + Math.floor(at * span);
  const bit = Math.floor(at * 8 * span) % 8;
  const fh = await open(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, pos);
    b[0] = b[0]! ^ (1 << bit);
    await fh.write(b, 0, 1, pos);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return `flipped bit ${bit} of byte ${pos} of ${topic}-${partition}/${newest} (${size} bytes)`;
}

export interface FaultEvent {
  kind: FaultKind;
  node: number;
  /** partition: the links cut (e.g. ["1-2", "1-3"]); corrupt: what was damaged. */
  detail?: string;
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
    try {
      switch (f.kind) {
        case 'kill':
        case 'corrupt':
          await cluster.kill(node);
          if (f.kind === 'corrupt')
            ev.detail = await corruptSegment(cluster.node(node).dataDir, o.topic, f.partition, f.shape, f.at);
          break;
        case 'pause':
          cluster.pause(node);
          break;
        case 'disk':
          ev.detail = `filled its disk (${((await cluster.fillDisk(node)) / 2 ** 20).toFixed(0)} MiB)`;
          break;
        case 'partition': {
          if (f.shape === 'a') cluster.isolate(node);
          else cluster.cut(node, ((node - 1 + f.other) % NODES) + 1);
          ev.detail = cluster.proxy.cutLinks.join(' ');
          break;
        }
      }
      o.log(
        `[+${secs(ev.startMs)}s] ${f.kind} node ${node} (${why}) for ${secs(f.holdMs)} s${ev.detail ? `: ${ev.detail}` : ''}`,
      );
      await sleep(f.holdMs);
      let healed = 'resumed';
      if (f.kind === 'kill' || f.kind === 'corrupt') {
        const t = Date.now();
        await cluster.restart(node);
        ev.restartMs = Date.now() - t;
        healed = `restarted (ready in ${secs(ev.restartMs)} s)`;
      } else if (f.kind === 'pause') {
        cluster.resume(node);
      } else if (f.kind === 'disk') {
        await cluster.freeDisk(node);
        healed = 'has disk space again';
        if (!cluster.node(node).running) {
          const t = Date.now();
          await cluster.restart(node);
          ev.restartMs = Date.now() - t;
          ev.detail += '; the node had stopped (fatal: metadata log not writable), restarted';
          healed += `; it had stopped, restarted (ready in ${secs(ev.restartMs)} s)`;
        }
      } else {
        cluster.healNetwork();
        healed = 'reconnected';
      }
      ev.healedMs = now();
      o.log(`[+${secs(ev.healedMs)}s] node ${node} ${healed}`);
    } catch (e) {
      ev.error = (e as Error).message.slice(0, 2_000);
      o.log(`[+${secs(now())}s] healing node ${node} failed: ${ev.error.split('\n')[0]}`);
      // Leave it to the heal phase; a node that cannot restart is reported there.
      await sleep(1_000);
    }
  }
  return events;
}

/**
 * A scripted schedule that makes `unclean.leader.election.enable=true` lose acknowledged records,
 * to show the checker catches loss when there is some (run with --scenario unclean-loss, which
 * sets min.insync.replicas=1 and unclean elections on the topic):
 * 1. The followers of partition 0 can no longer fetch from its leader L (their connections to L's
 *    Kafka listener are blocked; Raft traffic still flows, so the quorum stays whole). After
 *    replica.lag.time.max.ms L shrinks the ISR to itself and goes on acknowledging acks=all
 *    writes alone (min.insync.replicas=1).
 * 2. After a few seconds of such writes L is killed and the block lifted. No ISR member is alive,
 *    so the controller elects an out-of-sync follower: the writes only L had are gone.
 * 3. L restarts and truncates its log to the new leader's.
 */
export async function runUncleanScenario(
  cluster: ChaosCluster,
  o: Pick<NemesisOptions, 'topic' | 't0' | 'log'>,
): Promise<FaultEvent[]> {
  const now = () => Date.now() - o.t0;
  const secs = (ms: number) => (ms / 1000).toFixed(1);
  const p0 = async () => (await cluster.metadata(o.topic))?.find((p) => p.partition === 0);
  const waitFor = async (what: string, ok: (p: NonNullable<Awaited<ReturnType<typeof p0>>>) => boolean) => {
    const t = Date.now();
    while (Date.now() - t < 30_000) {
      const p = await p0();
      if (p && ok(p)) return p;
      await sleep(250);
    }
    throw new Error(
      `unclean-loss scenario: ${what} did not happen within 30 s (p0: ${JSON.stringify(await p0())})`,
    );
  };
  const start = await waitFor('a leader for p0', (p) => p.leader > 0 && p.isr.length === NODES);
  const leader = start.leader;
  const followers = Array.from({ length: NODES }, (_, i) => i + 1).filter((id) => id !== leader);
  const events: FaultEvent[] = [];
  const block: FaultEvent = { kind: 'partition', node: leader, why: 'leader of p0', startMs: now() };
  for (const f of followers) cluster.proxy.block(f, leader, 'kafka');
  block.detail = cluster.proxy.cutLinks.join(' ');
  events.push(block);
  o.log(
    `[+${secs(block.startMs)}s] followers ${followers.join(', ')} cannot fetch from leader ${leader}: ${block.detail}`,
  );
  const shrunk = await waitFor(
    'the ISR shrinking to the leader',
    (p) => p.isr.length === 1 && p.leader === leader,
  );
  o.log(
    `[+${secs(now())}s] p0 ISR is [${shrunk.isr.join(',')}]: writes are acknowledged by node ${leader} alone`,
  );
  await sleep(3_000);
  const kill: FaultEvent = { kind: 'kill', node: leader, why: 'sole ISR member of p0', startMs: now() };
  events.push(kill);
  await cluster.kill(leader);
  cluster.healNetwork();
  block.healedMs = now();
  o.log(`[+${secs(kill.startMs)}s] killed node ${leader}; followers reconnected`);
  const elected = await waitFor('an unclean election', (p) => p.leader > 0 && p.leader !== leader);
  o.log(
    `[+${secs(now())}s] p0 leader is now node ${elected.leader} (epoch ${elected.leaderEpoch}), elected from outside the ISR`,
  );
  await sleep(2_000);
  const t = Date.now();
  await cluster.restart(leader);
  kill.restartMs = Date.now() - t;
  kill.healedMs = now();
  o.log(`[+${secs(kill.healedMs)}s] node ${leader} restarted`);
  return events;
}
