#!/usr/bin/env node
// Entry point for `npx sluice`: runs the compiled CLI (built by `npm install` via the prepare script).
import module from 'node:module';

// Node 22.1+ keeps V8's compiled code of the modules loaded below on disk between runs, which
// shortens `sluice start` (docs/benchmarks.md, "Startup time"); Node 20 has no such cache.
// NODE_DISABLE_COMPILE_CACHE=1 turns it off.
module.enableCompileCache?.();

const { main } = await import('../dist/cli/main.js');

main(process.argv.slice(2)).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code;
  },
  (err) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  },
);
