// `npm run bench` until package.json points at scripts/bench/run.ts: the benchmark suite moved
// to scripts/bench/ (run.ts; Sluice's own-client figure is scripts/bench/sluice-client.ts).
await import('./bench/run.js');
