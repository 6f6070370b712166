/**
 * Replays one seed of the Raft cluster simulator with a step log.
 *
 *   npm run sim -- --seed N [--nodes 3|5] [--steps K] [--verbose] [--bug ackBeforeFsync|...]
 *   npm run sim -- --seeds FROM..TO [--nodes 3|5]     (sweep; prints failing seeds)
 *
 * The same seed always replays the same run: every random choice comes from the seed.
 */

import { parseArgs } from 'node:util';
import type { RaftConfig } from '../src/raft/raft.js';
import { runSimulation } from '../src/sim/cluster.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    seeds: { type: 'string' },
    nodes: { type: 'string' },
    steps: { type: 'string' },
    verbose: { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
    bug: { type: 'string' },
  },
});

const nodeCount = values.nodes === undefined ? undefined : Number(values.nodes);
const unsafe: RaftConfig['unsafe'] = values.bug === undefined ? undefined : { [values.bug]: true };

if (values.seeds !== undefined) {
  const [from, to] = values.seeds.split('..').map(Number) as [number, number];
  const started = Date.now();
  let failed = 0;
  for (let seed = from; seed <= to; seed++) {
    const r = runSimulation({ seed, nodeCount, unsafe });
    if (!r.ok) {
      failed++;
      console.log(`seed ${seed} FAILED: ${r.violation?.message}`);
    }
  }
  console.log(`${to - from + 1} seeds, ${failed} failed, ${Date.now() - started} ms`);
  process.exit(failed > 0 ? 1 : 0);
}

if (values.seed === undefined) {
  console.error('usage: npm run sim -- --seed N [--nodes 3|5] [--steps K] [--verbose] [--bug NAME]');
  process.exit(2);
}

const result = runSimulation({
  seed: Number(values.seed),
  nodeCount,
  unsafe,
  ticksMax: values.steps === undefined ? undefined : Number(values.steps),
  verbose: values.verbose,
  log: values.quiet ? undefined : (line) => console.log(line),
});
console.log(JSON.stringify({ seed: result.seed, ok: result.ok, ticks: result.ticks, stats: result.stats }));
if (!result.ok) {
  console.log(`VIOLATION ${result.violation?.message}`);
  process.exit(1);
}
