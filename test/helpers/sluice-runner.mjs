// Twin of bin/sluice.js for tests: runs the CLI compiled into a given directory.
// Usage: node sluice-runner.mjs <build>/cli/main.js <sluice args...>
import { pathToFileURL } from 'node:url';

const [mainJs, ...args] = process.argv.slice(2);
const { main } = await import(pathToFileURL(mainJs).href);
main(args).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code;
  },
  (err) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  },
);
