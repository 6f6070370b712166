/**
 * The `sluice` command line: argument parsing and dispatch to subcommands.
 * Each subcommand lives in its own file; this file knows only names and flags.
 */

import { parseArgs } from 'node:util';
import { runStart } from './start.js';

const USAGE = `Usage: sluice <command> [options]

Commands:
  start [--data-dir D] [--listen HOST:PORT] [--config FILE] [--metrics-listen HOST:PORT] [--set KEY=VALUE]...
        Run a broker (default 127.0.0.1:9092, data in ./sluice-data).

Run 'sluice <command> --help' for a command's options.`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'start': {
      const { values } = parseArgs({
        args: rest,
        options: {
          'data-dir': { type: 'string' },
          listen: { type: 'string' },
          config: { type: 'string' },
          'metrics-listen': { type: 'string' },
          'node-id': { type: 'string' },
          set: { type: 'string', multiple: true },
          help: { type: 'boolean' },
        },
      });
      if (values.help) {
        console.log(USAGE);
        return 0;
      }
      return runStart({
        dataDir: values['data-dir'],
        listen: values.listen,
        config: values.config,
        metricsListen: values['metrics-listen'],
        nodeId: values['node-id'],
        set: values.set,
      });
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return command === undefined ? 1 : 0;
    default:
      console.error(`unknown command "${command}"\n\n${USAGE}`);
      return 1;
  }
}
