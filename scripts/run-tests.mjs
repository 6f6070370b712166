#!/usr/bin/env node
// Runs the test suites with node:test. Node 20 has no glob support in `node --test`, so this
// finds the files. `node scripts/run-tests.mjs` runs src/**/*.test.ts and test/*.test.ts (what
// needs only `npm install`); pass folders (e.g. test/kcat) to run suites that need outside programs.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
const roots = args.length > 0 ? args : ['src', 'test'];
const files = [];
for (const root of roots) {
  if (statSync(root).isFile()) {
    files.push(root);
    continue;
  }
  // With no arguments, `test/` contributes only its top level: its subfolders hold suites that
  // need programs from outside npm (kcat, Java, ...) and have npm scripts of their own.
  const recursive = args.length > 0 || root !== 'test';
  for (const f of readdirSync(root, { recursive })) {
    const p = join(root, String(f));
    if (p.endsWith('.test.ts') && !p.includes('node_modules')) files.push(p);
  }
}
files.sort();
// No --test-force-exit: on Node 24 it ends a test file's process before all of its results have
// reached the runner, so tests go unreported without failing (src/protocol/codec.property.test.ts
// reported 264-280 of its 312 tests with it, all 312 without). A file that may leave a client's
// handles open ends itself once its tests are done (test/groups-kafkajs.test.ts).
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', ...files],
  {
    stdio: 'inherit',
  },
);
process.exit(r.status ?? 1);
