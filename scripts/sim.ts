/**
 * Replays one seed of a simulator with a step log, or sweeps a range of seeds.
 *
 * The Raft cluster simulator (src/sim/cluster.ts):
 *   npm run sim -- --seed N [--nodes 3|5] [--steps K] [--verbose] [--bug ackBeforeFsync|...]
 *   npm run sim -- --seeds FROM..TO [--nodes 3|5]     (sweep; prints failing seeds)
 *
 * The whole-cluster simulator (src/sim/whole-cluster.ts: Raft + controller + replication):
 *   npm run sim -- --whole --seed N [--nodes 3|5] [--steps K] [--verbose] [--quiet] [--bug NAME]
 *   npm run sim -- --whole --seeds FROM..TO [--nodes 3|5] [--bug NAME]
 * NAME is one of WHOLE_SIM_BUGS (unclean-election, replica-report-unflushed, ...); with a bug,
 * liveness is not judged and a sweep reports the seeds whose safety checks failed.
 *
 * The same seed always replays the same run: every random choice comes from the seed.
 */

import { parseArgs } from 'node:util';
import type { RaftConfig } from '../src/raft/raft.js';
import { runSimulation } from '../src/sim/cluster.js';
import { WHOLE_SIM_BUGS, type WholeSimBug, runWholeClusterSim } from '../src/sim/whole-cluster.js';

const { values } = parseArgs({
  options: {
    whole: { type: 'boolean', default: false },
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

function seedRange(text: string): [number, number] {
  const [from, to] = text.split('..').map(Number);
  if (
    from === undefined ||
    to === undefined ||
    !Number.isInteger(from) ||
    !Number.isInteger(to) ||
    to < from
  ) {
    console.error(`--seeds wants FROM..TO, not ${text}`);
    process.exit(2);
  }
  return [from, to];
}

function runWhole(): never {
  const bug = values.bug as WholeSimBug | undefined;
  if (bug !== undefined && !WHOLE_SIM_BUGS.includes(bug)) {
    console.error(`--bug must be one of ${WHOLE_SIM_BUGS.join(', ')}`);
    process.exit(2);
  }
  if (values.seeds !== undefined) {
    const [from, to] = seedRange(values.seeds);
    const started = Date.now();
    let failed = 0;
    for (let seed = from; seed <= to; seed++) {
      const r = runWholeClusterSim({ seed, nodeCount, bug });
      if (!r.ok) {
        failed++;
        console.log(`seed ${seed} FAILED: ${r.violation?.message.split('\n')[0]}`);
      }
    }
    const ms = Date.now() - started;
    console.log(
      `${to - from + 1} seeds, ${failed} failed, ${ms} ms (${(ms / (to - from + 1)).toFixed(1)} ms a seed)`,
    );
    process.exit(failed > 0 ? 1 : 0);
  }
  if (values.seed === undefined) {
    console.error(
      'usage: npm run sim -- --whole --seed N [--nodes 3|5] [--steps K] [--verbose] [--bug NAME]',
    );
    process.exit(2);
  }
  const result = runWholeClusterSim({
    seed: Number(values.seed),
    nodeCount,
    bug,
    ticksMax: values.steps === undefined ? undefined : Number(values.steps),
    verbose: values.verbose,
    log: values.quiet ? undefined : (line) => console.log(line),
  });
  console.log(JSON.stringify({ seed: result.seed, ok: result.ok, ticks: result.ticks, stats: result.stats }));
  if (!result.ok) {
    console.log(`VIOLATION ${result.violation?.message}`);
    process.exit(1);
  }
  process.exit(0);
}

if (values.whole) runWhole();

const unsafe: RaftConfig['unsafe'] = values.bug === undefined ? undefined : { [values.bug]: true };

if (values.seeds !== undefined) {
  const [from, to] = seedRange(values.seeds);
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
  console.error(
    'usage: npm run sim -- [--whole] --seed N [--nodes 3|5] [--steps K] [--verbose] [--bug NAME]',
  );
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
