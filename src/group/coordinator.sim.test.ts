/**
 * Seeded simulation of the classic group coordinator: simulated consumers on manual time join,
 * leave, crash (stop heartbeating without leaving), restart as static members, and follow the
 * protocol (MEMBER_ID_REQUIRED -> rejoin with the id; REBALANCE_IN_PROGRESS / ILLEGAL_GENERATION
 * -> revoke everything and rejoin; UNKNOWN_MEMBER_ID -> rejoin without an id). The leader assigns
 * the 6 partitions of one topic range-style. Properties:
 * - at every step, no partition is owned by two live members that believe they are in the same
 *   generation;
 * - once activity stops and time passes, every live member is in the group's current generation
 *   and every partition is owned by exactly one of them.
 * 200 seeds (SIM_SEEDS=n for more); a failure names its seed and prints the trace (re-run one
 * with SIM_SEED=n).
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode } from '../protocol/errors.js';
import { GroupCoordinator } from './coordinator.js';
import { InMemoryGroupLog } from './group-log.js';
import { ManualTime, flushMicrotasks } from './time.js';

const PARTITIONS = 6;
const SESSION_MS = 10000;
const REBALANCE_MS = 20000;
const HEARTBEAT_MS = 2000;
const GROUP = 'sim';

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class SimClient {
  memberId = '';
  generation = -1;
  owned: number[] = [];
  crashed = false;
  left = false;
  /** A static member whose instance id was taken over by a restarted incarnation. */
  replaced = false;
  joins = 0;

  constructor(
    readonly name: string,
    readonly instanceId: string | null,
    private readonly coord: () => GroupCoordinator,
    private readonly time: ManualTime,
    private readonly trace: string[],
  ) {}

  get alive(): boolean {
    return !this.crashed && !this.left;
  }

  private revoke(): void {
    this.owned = [];
  }

  async run(): Promise<void> {
    while (this.alive) {
      const ok = await this.joinAndSync();
      // A fenced static member stops, as the Java client does (FENCED_INSTANCE_ID is fatal).
      if (!this.alive || this.replaced) return;
      if (!ok) {
        await this.time.sleep(100);
        continue;
      }
      // Stable: heartbeat until told to rejoin.
      for (;;) {
        await this.time.sleep(HEARTBEAT_MS);
        if (!this.alive) return;
        const hb = this.coord().heartbeat({
          groupId: GROUP,
          generationId: this.generation,
          memberId: this.memberId,
          groupInstanceId: this.instanceId,
        });
        if (hb === ErrorCode.NONE) continue;
        this.trace.push(`${this.name} heartbeat ${ErrorCode[hb]}`);
        this.revoke();
        if (hb === ErrorCode.UNKNOWN_MEMBER_ID) this.memberId = '';
        if (hb === ErrorCode.FENCED_INSTANCE_ID) {
          this.replaced = true;
          return;
        }
        break;
      }
    }
  }

  /** One join + sync round; true when the member ends Stable with an assignment. */
  private async joinAndSync(): Promise<boolean> {
    this.revoke();
    this.joins++;
    const j = await this.coord().joinGroup({
      groupId: GROUP,
      memberId: this.memberId,
      groupInstanceId: this.instanceId,
      protocolType: 'consumer',
      protocols: [{ name: 'range', metadata: Buffer.from('t') }],
      sessionTimeoutMs: SESSION_MS,
      rebalanceTimeoutMs: REBALANCE_MS,
      clientId: this.name,
      clientHost: '/sim',
      requireKnownMemberId: true,
      supportsSkipAssignment: true,
    });
    if (!this.alive) return false;
    if (j.errorCode === ErrorCode.MEMBER_ID_REQUIRED) {
      this.memberId = j.memberId;
      return false;
    }
    if (j.errorCode !== ErrorCode.NONE) {
      this.trace.push(`${this.name} join ${ErrorCode[j.errorCode]}`);
      if (j.errorCode === ErrorCode.UNKNOWN_MEMBER_ID) this.memberId = '';
      if (j.errorCode === ErrorCode.FENCED_INSTANCE_ID) this.replaced = true;
      return false;
    }
    this.memberId = j.memberId;
    this.generation = j.generationId;
    const assignments: { memberId: string; assignment: Buffer }[] = [];
    if (j.leader === j.memberId && !j.skipAssignment) {
      // Range-style: members sorted by id take consecutive partitions.
      const ids = j.members.map((m) => m.memberId).sort();
      const per = Math.floor(PARTITIONS / ids.length);
      const extra = PARTITIONS % ids.length;
      let next = 0;
      ids.forEach((id, i) => {
        const n = per + (i < extra ? 1 : 0);
        const parts = Array.from({ length: n }, (_, k) => next + k);
        next += n;
        assignments.push({ memberId: id, assignment: Buffer.from(JSON.stringify(parts)) });
      });
    }
    this.trace.push(
      `${this.name} joined gen ${j.generationId} as ${j.memberId}${j.leader === j.memberId ? ' (leader)' : ''}`,
    );
    const s = await this.coord().syncGroup({
      groupId: GROUP,
      generationId: j.generationId,
      memberId: j.memberId,
      groupInstanceId: this.instanceId,
      protocolType: 'consumer',
      protocolName: 'range',
      assignments,
    });
    if (!this.alive) return false;
    if (s.errorCode !== ErrorCode.NONE) {
      this.trace.push(`${this.name} sync ${ErrorCode[s.errorCode]}`);
      if (s.errorCode === ErrorCode.UNKNOWN_MEMBER_ID) this.memberId = '';
      if (s.errorCode === ErrorCode.FENCED_INSTANCE_ID) this.replaced = true;
      return false;
    }
    this.owned = s.assignment.length > 0 ? (JSON.parse(s.assignment.toString()) as number[]) : [];
    this.trace.push(`${this.name} owns ${JSON.stringify(this.owned)} in gen ${this.generation}`);
    return true;
  }

  leave(): void {
    this.left = true;
    this.revoke();
    if (this.memberId !== '')
      this.coord().leaveGroup(GROUP, [{ memberId: this.memberId, groupInstanceId: this.instanceId }]);
  }
}

async function simulate(seed: number): Promise<void> {
  const trace: string[] = [];
  try {
    await runSimulation(seed, trace);
  } catch (err) {
    (err as Error).message += `\ntrace (last 60 events):\n  ${trace.slice(-60).join('\n  ')}`;
    throw err;
  }
}

async function runSimulation(seed: number, trace: string[]): Promise<void> {
  const rand = mulberry32(seed);
  const time = new ManualTime();
  const log = new InMemoryGroupLog(10);
  let ids = 0;
  const makeCoordinator = async () => {
    const c = new GroupCoordinator({
      log,
      clock: time,
      scheduler: time,
      config: { initialRebalanceDelayMs: rand() < 0.5 ? 0 : 3000 },
      newMemberId: (p) => `${p}-${++ids}`,
    });
    await c.load();
    return c;
  };
  let coord = await makeCoordinator();
  const clients: SimClient[] = [];
  let n = 0;

  const checkNoDoubleOwnership = (when: string) => {
    const owner = new Map<string, string>();
    for (const c of clients) {
      if (!c.alive || c.replaced) continue;
      for (const p of c.owned) {
        const k = `${c.generation}:${p}`;
        const other = owner.get(k);
        assert.equal(
          other,
          undefined,
          `${when}: partition ${p} owned by ${other} and ${c.name} in generation ${c.generation}`,
        );
        owner.set(k, c.name);
      }
    }
  };
  const advance = async (ms: number, when: string) => {
    trace.push(`advance ${ms} ms (${when})`);
    await time.advance(ms, async () => {
      await flushMicrotasks();
      checkNoDoubleOwnership(when);
    });
  };
  const start = (instanceId: string | null) => {
    const c = new SimClient(`c${++n}`, instanceId, () => coord, time, trace);
    clients.push(c);
    trace.push(`start ${c.name}${instanceId ? ` (static ${instanceId})` : ''}`);
    void c.run();
  };

  const steps = 20 + Math.floor(rand() * 30);
  for (let step = 0; step < steps; step++) {
    const live = clients.filter((c) => c.alive && !c.replaced);
    const r = rand();
    if (r < 0.35 || live.length === 0) {
      // Static instance ids are unique among running clients (two live processes with one id is
      // a misconfiguration that Kafka only resolves by fencing).
      const inst = `inst-${Math.floor(rand() * 3)}`;
      const taken = clients.some((c) => c.alive && c.instanceId === inst);
      start(rand() < 0.25 && !taken ? inst : null);
    } else if (r < 0.5) {
      const c = live[Math.floor(rand() * live.length)]!;
      trace.push(`leave ${c.name}`);
      c.leave();
    } else if (r < 0.65) {
      const c = live[Math.floor(rand() * live.length)]!;
      trace.push(`crash ${c.name}`);
      c.crashed = true;
      // A crashed static member often comes back with the same instance id.
      if (c.instanceId !== null && rand() < 0.7) start(c.instanceId);
    } else if (r < 0.7) {
      // Coordinator restart: a new coordinator replays the log; clients carry on.
      trace.push('coordinator restart');
      coord.shutdown();
      coord = await makeCoordinator();
    }
    await advance(Math.floor(rand() * 4000), `step ${step}`);
  }

  // Quiet period: no more actions; sessions and rebalances settle.
  await advance(3 * REBALANCE_MS + 2 * SESSION_MS, 'settling');
  const live = clients.filter((c) => c.alive && !c.replaced);
  const g = coord.group(GROUP);
  if (live.length === 0) return;
  assert.ok(g, 'group exists');
  assert.equal(g.state, 'Stable', `group state ${g.state}`);
  // Static instance ids used twice concurrently: only one incarnation is a member.
  const members = new Set(g.members.keys());
  const inGroup = live.filter((c) => members.has(c.memberId));
  assert.equal(
    inGroup.length,
    members.size,
    `members ${[...members]} vs live ${live.map((c) => `${c.name}:${c.memberId}`)}`,
  );
  const owned: number[] = [];
  for (const c of inGroup) {
    assert.equal(
      c.generation,
      g.generationId,
      `${c.name} in generation ${c.generation}, group in ${g.generationId}`,
    );
    owned.push(...c.owned);
  }
  assert.deepEqual(
    owned.sort((a, b) => a - b),
    Array.from({ length: PARTITIONS }, (_, i) => i),
    'every partition owned exactly once',
  );
  // Two live incarnations of one static instance: the fenced one must not own anything current.
  for (const c of live)
    if (!members.has(c.memberId))
      assert.deepEqual(
        c.owned.filter(() => c.generation === g.generationId),
        [],
        `${c.name} outside the group owns partitions`,
      );
  // Stop the clients' loops (their timers die with this ManualTime).
  for (const c of clients) c.crashed = true;
}

test(
  'seeded simulation: no double ownership within a generation; eventual full ownership',
  { timeout: 60_000 },
  async () => {
    const count = Number(process.env.SIM_SEEDS ?? 200);
    const only = process.env.SIM_SEED
      ? [Number(process.env.SIM_SEED)]
      : Array.from({ length: count }, (_, i) => i + 1);
    for (const seed of only) {
      try {
        await simulate(seed);
      } catch (err) {
        (err as Error).message = `seed ${seed}: ${(err as Error).message}`;
        throw err;
      }
    }
  },
);
