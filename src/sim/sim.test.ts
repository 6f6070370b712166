/**
 * Runs the Raft cluster simulator over many seeds and requires every run to be safe and live.
 *
 * Method: for each seed, a 3-node and a 5-node cluster run 1000 ticks under the faults that seed
 * picks (loss, duplication, reordering delays, partitions and one-way cuts, crashes that lose
 * unsynced writes, restarts, snapshots), then faults stop and liveness is required (see
 * cluster.ts). SIM_SEEDS sets the number of seeds per cluster size (default 500; CI runs 2000),
 * SIM_SEED_START the first one. A failure prints the seed and the command that replays it.
 *
 * The second group proves the checkers have teeth: with a deliberate bug switched on in every
 * node, the simulator must report a violation within a few dozen seeds.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type SimResult, runSimulation } from './cluster.js';

const seedCount = Number(process.env.SIM_SEEDS ?? 500);
const seedStart = Number(process.env.SIM_SEED_START ?? 1);

function sweep(nodeCount: number): void {
  const failures: SimResult[] = [];
  let acked = 0;
  let crashes = 0;
  let snapshots = 0;
  let elections = 0;
  for (let seed = seedStart; seed < seedStart + seedCount; seed++) {
    const r = runSimulation({ seed, nodeCount });
    if (!r.ok) failures.push(r);
    acked += r.stats.proposalsAcked;
    crashes += r.stats.crashes;
    snapshots += r.stats.snapshotsTaken;
    elections += r.stats.leaderTermMax;
  }
  for (const f of failures) {
    console.log(
      `seed ${f.seed} (${nodeCount} nodes) FAILED: ${f.violation?.message}\n` +
        `  replay: npm run sim -- --seed ${f.seed} --nodes ${nodeCount}`,
    );
  }
  assert.deepEqual(
    failures.map((f) => f.seed),
    [],
    `${failures.length} of ${seedCount} seeds failed`,
  );
  // The runs must not be vacuous: work got done and faults happened.
  assert.ok(acked > seedCount * 10, `only ${acked} proposals acknowledged`);
  if (seedCount >= 50) {
    assert.ok(crashes > 0 && snapshots > 0 && elections > seedCount, 'faults and snapshots were exercised');
  }
}

describe('raft simulator', () => {
  test(`${seedCount} seeds, 3 nodes: safe and live`, () => sweep(3));
  test(`${seedCount} seeds, 5 nodes: safe and live`, () => sweep(5));

  test('a seed replays exactly', () => {
    const logs: string[][] = [[], []];
    for (const i of [0, 1]) runSimulation({ seed: 42, verbose: true, log: (l) => logs[i]!.push(l) });
    assert.ok(logs[0]!.length > 1000);
    assert.deepEqual(logs[0], logs[1]);
  });
});

describe('the checkers catch deliberate bugs', () => {
  function firstViolation(
    unsafe: NonNullable<Parameters<typeof runSimulation>[0]['unsafe']>,
    seedsMax: number,
  ) {
    for (let seed = 1; seed <= seedsMax; seed++) {
      const r = runSimulation({ seed, unsafe });
      if (!r.ok) return r;
    }
    return undefined;
  }

  test('acknowledging appends and votes before fsync', () => {
    const r = firstViolation({ ackBeforeFsync: true }, 50);
    assert.ok(r !== undefined, 'no violation found in 50 seeds');
    console.log(`ackBeforeFsync: seed ${r.seed}: ${r.violation?.message}`);
  });

  test('acknowledging before fsync, with the durability check off, ends in a lost committed entry', () => {
    let found: SimResult | undefined;
    for (let seed = 1; seed <= 300 && found === undefined; seed++) {
      const r = runSimulation({ seed, unsafe: { ackBeforeFsync: true }, checkDurability: false });
      if (!r.ok && r.violation?.property !== 'liveness') found = r;
    }
    assert.ok(found !== undefined, 'no safety violation found in 300 seeds');
    console.log(`ackBeforeFsync without durability check: seed ${found.seed}: ${found.violation?.message}`);
  });

  test('voting without the log up-to-date check', () => {
    const r = firstViolation({ voteWithoutLogCheck: true }, 100);
    assert.ok(r !== undefined, 'no violation found in 100 seeds');
    console.log(`voteWithoutLogCheck: seed ${r.seed}: ${r.violation?.message}`);
  });
});
