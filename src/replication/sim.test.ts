/**
 * Runs the partition replication simulator over many seeds and requires every run to be safe and
 * live (see sim/cluster.ts for the model and sim/checker.ts for the properties).
 *
 * Method: for each seed, one partition with three replicas and a controller runs 1500 ticks under
 * the faults that seed picks (crashes losing unflushed tails, restarts, pauses, partitions,
 * message loss/duplication/reordering, controlled leader moves) with acks=all
 * (min.insync.replicas=2) and acks=1 producers and a consumer reading up to the HW; then faults stop
 * and new acks=all records and full convergence are required. REPL_SIM_SEEDS sets the number of
 * seeds (default 500), REPL_SIM_SEED_START the first. A failure prints the seed and how to replay it.
 *
 * The second group proves the checker has teeth: with unclean leader election on, or with a
 * deliberate bug in every replica, the simulator must report the loss within a few dozen seeds.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ReplicaConfig } from './partition-replica.js';
import { type ReplicationSimResult, runReplicationSim } from './sim/cluster.js';

const seedCount = Number(process.env.REPL_SIM_SEEDS ?? 500);
const seedStart = Number(process.env.REPL_SIM_SEED_START ?? 1);

function replayHint(r: ReplicationSimResult, extra = ''): string {
  return `seed ${r.seed} FAILED: ${r.violation?.message}\n  replay: node --import tsx src/replication/sim/replay.ts --seed ${r.seed}${extra}`;
}

describe('replication simulator', () => {
  test(`${seedCount} seeds: no acknowledged record lost, no divergence below the HW, live after faults`, () => {
    const failures: ReplicationSimResult[] = [];
    const total = {
      acked: 0,
      crashes: 0,
      elections: 0,
      truncations: 0,
      diverging: 0,
      shrinks: 0,
      consumed: 0,
    };
    const byTruncation = { 'offset-for-leader-epoch': 0, 'fetch-diverging-epoch': 0 };
    for (let seed = seedStart; seed < seedStart + seedCount; seed++) {
      const r = runReplicationSim({ seed });
      if (!r.ok) failures.push(r);
      total.acked += r.stats.acksAllAcked;
      total.crashes += r.stats.crashes;
      total.elections += r.stats.elections;
      total.truncations += r.stats.truncations;
      total.diverging += r.stats.divergingEpochAnswers;
      total.shrinks += r.stats.isrShrinks;
      total.consumed += r.stats.consumedRecords;
      byTruncation[r.profile.truncation]++;
    }
    for (const f of failures) console.log(replayHint(f));
    console.log(`replication sim: ${JSON.stringify(total)}`);
    assert.deepEqual(
      failures.map((f) => f.seed),
      [],
      `${failures.length} of ${seedCount} seeds failed`,
    );
    // Not vacuous: work got done, faults and every recovery path were exercised.
    assert.ok(total.acked > seedCount * 50, `only ${total.acked} acks=all acknowledged`);
    if (seedCount >= 50) {
      assert.ok(total.crashes > seedCount && total.elections > seedCount, 'crashes and elections happened');
      assert.ok(
        total.truncations > 0 && total.diverging > 0 && total.shrinks > 0,
        'truncation and ISR paths ran',
      );
      assert.ok(byTruncation['offset-for-leader-epoch'] > 0 && byTruncation['fetch-diverging-epoch'] > 0);
    }
  });

  test('a seed replays exactly', () => {
    const logs: string[][] = [[], []];
    const results = [0, 1].map((i) => runReplicationSim({ seed: 7, log: (l) => logs[i]!.push(l) }));
    assert.ok(logs[0]!.length > 20);
    assert.deepEqual(logs[0], logs[1]);
    assert.deepEqual(results[0]!.stats, results[1]!.stats);
  });
});

describe('the checker catches loss', () => {
  function firstViolation(
    opts: { uncleanLeaderElection?: boolean; unsafe?: ReplicaConfig['unsafe'] },
    seedsMax: number,
    accept: (property: string) => boolean,
  ): ReplicationSimResult | undefined {
    for (let seed = 1; seed <= seedsMax; seed++) {
      const r = runReplicationSim({ seed, ...opts, checkLiveness: false });
      if (!r.ok && accept(r.violation!.property)) return r;
    }
    return undefined;
  }

  test('unclean leader election loses acknowledged acks=all records', () => {
    const r = firstViolation({ uncleanLeaderElection: true }, 100, (p) => p === 'acked-record-lost');
    assert.ok(r !== undefined, 'no acknowledged-record loss found in 100 seeds with unclean election');
    console.log(`unclean election: ${replayHint(r, ' --unclean')}`);
  });

  test('a follower that reports offsets before fsync loses acknowledged records in a crash', () => {
    const r = firstViolation({ unsafe: { reportUnflushed: true } }, 100, (p) => p === 'acked-record-lost');
    assert.ok(r !== undefined, 'no loss found in 100 seeds');
    console.log(`reportUnflushed: ${replayHint(r, ' --bug reportUnflushed')}`);
  });

  test('truncating to the high watermark instead of by epoch (pre-KIP-101) is caught', () => {
    const r = firstViolation({ unsafe: { truncateToHighWatermark: true } }, 50, (p) => p !== 'liveness');
    assert.ok(r !== undefined, 'no violation found in 50 seeds');
    console.log(`truncateToHighWatermark: ${replayHint(r, ' --bug truncateToHighWatermark')}`);
  });

  test('a HW that ignores a pending ISR expansion loses acknowledged records', () => {
    const r = firstViolation({ unsafe: { hwOverConfirmedIsr: true } }, 100, (p) => p === 'acked-record-lost');
    assert.ok(r !== undefined, 'no loss found in 100 seeds');
    console.log(`hwOverConfirmedIsr: ${replayHint(r, ' --bug hwOverConfirmedIsr')}`);
  });
});
