/**
 * Replays one seed of the replication simulator with its event log, or sweeps a range of seeds.
 *
 *   node --import tsx src/replication/sim/replay.ts --seed N [--unclean] [--bug NAME] [--steps K] [--quiet]
 *   node --import tsx src/replication/sim/replay.ts --seeds FROM..TO [--unclean] [--bug NAME]
 *
 * NAME is one of PartitionReplica's deliberate bugs: reportUnflushed, truncateToHighWatermark,
 * hwOverConfirmedIsr. The same seed always replays the same run.
 */

import { parseArgs } from 'node:util';
import type { ReplicaConfig } from '../partition-replica.js';
import { runReplicationSim } from './cluster.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    seeds: { type: 'string' },
    steps: { type: 'string' },
    unclean: { type: 'boolean', default: false },
    bug: { type: 'string' },
    quiet: { type: 'boolean', default: false },
  },
});

const unsafe: ReplicaConfig['unsafe'] = values.bug === undefined ? undefined : { [values.bug]: true };
const base = {
  uncleanLeaderElection: values.unclean,
  unsafe,
  checkLiveness: values.unclean || unsafe !== undefined ? false : undefined,
};

if (values.seeds !== undefined) {
  const [from, to] = values.seeds.split('..').map(Number) as [number, number];
  const started = Date.now();
  let failed = 0;
  for (let seed = from; seed <= to; seed++) {
    const r = runReplicationSim({ seed, ...base });
    if (!r.ok) {
      failed++;
      console.log(`seed ${seed} FAILED: ${r.violation?.message}`);
    }
  }
  console.log(`${to - from + 1} seeds, ${failed} failed, ${Date.now() - started} ms`);
  process.exit(failed > 0 ? 1 : 0);
}

if (values.seed === undefined) {
  console.error(
    'usage: replay.ts --seed N [--unclean] [--bug NAME] [--steps K] [--quiet] | --seeds FROM..TO',
  );
  process.exit(2);
}

const result = runReplicationSim({
  seed: Number(values.seed),
  ...base,
  ticksMax: values.steps === undefined ? undefined : Number(values.steps),
  log: values.quiet ? undefined : (line) => console.log(line),
});
console.log(JSON.stringify({ seed: result.seed, ok: result.ok, ticks: result.ticks, stats: result.stats }));
if (!result.ok) {
  console.log(`VIOLATION ${result.violation?.message}`);
  process.exit(1);
}
