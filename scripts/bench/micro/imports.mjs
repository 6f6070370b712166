// Where `sluice start`'s module loading goes: imports the CLI's dependency graph one layer at a
// time, in a fresh process, and prints how long each step added (a module already loaded by an
// earlier step costs nothing later, so read the figures as "what this step brought in").
//
//   ROOT=<checkout or frozen build> node scripts/bench/micro/imports.mjs   (ROOT defaults to this checkout)
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = process.env.ROOT ?? fileURLToPath(new URL('../../..', import.meta.url));
const steps = [
  'dist/protocol/generated/index.js',
  '@node-rs/crc32',
  'dist/protocol/records/index.js',
  'dist/storage/index.js',
  'dist/group/coordinator.js',
  'dist/broker/broker.js',
  'dist/client/index.js',
  'dist/cli/main.js',
];
const out = [];
const t0 = performance.now();
let t = t0;
for (const step of steps) {
  await import(step.startsWith('dist/') ? pathToFileURL(`${root}/${step}`).href : step);
  const now = performance.now();
  out.push(`${step.replace(/^dist\//, '')} +${(now - t).toFixed(0)} ms`);
  t = now;
}
console.log(`${out.join(' | ')} | total ${(t - t0).toFixed(0)} ms`);
