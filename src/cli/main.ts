/**
 * The `sluice` command line: argument parsing and dispatch to subcommands.
 * Each subcommand lives in its own file; this file knows only names and flags, and turns every
 * error of the client commands into one line on stderr and exit code 1 (usage errors add the
 * command's usage; nothing prints a stack trace).
 */

import { parseArgs } from 'node:util';
import { SluiceClientError } from '../client/errors.js';
import { CLUSTER_USAGE, runCluster } from './cluster.js';
import { CliError, UsageError } from './common.js';
import { CONSUME_USAGE, runConsume } from './consume.js';
import { DEV_USAGE, cliEntry, runDev } from './dev.js';
import { GROUP_USAGE, runGroup } from './group.js';
import { PRODUCE_USAGE, runProduce } from './produce.js';
import { START_USAGE, runStart } from './start.js';
import { TOPIC_USAGE, runTopic } from './topic.js';

const USAGE = `Usage: sluice <command> [options]

Commands:
  start [--data-dir D] [--listen HOST:PORT] [--config FILE] [--metrics-listen HOST:PORT] [--set KEY=VALUE]...
  start --node-id N --listen HOST:PORT --controller-listen HOST:PORT --voters 1@HOST:PORT,2@HOST:PORT,... --data-dir D
        Run a broker (default 127.0.0.1:9092, data in ./sluice-data); with --voters, a node of a cluster.
  dev cluster [--nodes 3] [--base-port 19092] [--data-dir ./sluice-dev-cluster] [--set KEY=VALUE]...
        Run a local N-node cluster in the foreground (Ctrl-C stops it).
  cluster status [--bootstrap HOST:PORT]
        Nodes, metadata quorum and under-replicated/offline partitions (exit code 2 when degraded).
  topic create NAME [--partitions N] [--replication-factor N] [--config K=V]...
  topic list | topic describe NAME | topic alter NAME --config K=V... | topic delete NAME
        Manage topics.
  produce TOPIC [--key K | --key-separator S] [--partition N] [--acks 0|1|all] [--header K=V]... [--compression C]
        Send stdin lines as records.
  consume TOPIC [--from-beginning | --offset N] [--partition N] [--max-messages N] [--format text|json] [--timeout-ms N]
  consume TOPIC --group G [--from-beginning] [--group-instance-id ID] ...
        Print records (with --group: as a member of consumer group G, committing as it goes).
  group list | group describe G | group delete G...
  group reset-offsets G --topic T (--to-earliest | --to-latest | --to-offset N | --to-datetime ISO | --shift-by N) [--execute]
        Manage consumer groups.

Global options (client commands): --bootstrap-server HOST:PORT (or --bootstrap; default
  $SLUICE_BOOTSTRAP_SERVER, else 127.0.0.1:9092), --json for machine-readable output.

Run 'sluice <command> --help' for a command's options.`;

/** parseArgs throws TypeErrors with these codes for unknown or malformed flags. */
function isParseArgsError(err: unknown): err is Error & { code: string } {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}

const COMMAND_USAGE: Record<string, string> = {
  topic: TOPIC_USAGE,
  produce: PRODUCE_USAGE,
  consume: CONSUME_USAGE,
  group: GROUP_USAGE,
  cluster: CLUSTER_USAGE,
  dev: DEV_USAGE,
};

async function runClientCommand(command: string, run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`error: ${err.message}\n\n${err.usage}`);
    } else if (isParseArgsError(err)) {
      console.error(`error: ${err.message}\n\n${COMMAND_USAGE[command] ?? USAGE}`);
    } else if (err instanceof SluiceClientError || err instanceof CliError) {
      console.error(`error: ${err.message}`);
    } else {
      console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    }
    return 1;
  }
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'topic':
      return runClientCommand(command, () => runTopic(rest));
    case 'produce':
      return runClientCommand(command, () => runProduce(rest));
    case 'consume':
      return runClientCommand(command, () => runConsume(rest));
    case 'group':
      return runClientCommand(command, () => runGroup(rest));
    case 'cluster':
      return runClientCommand(command, () => runCluster(rest));
    case 'dev':
      return runClientCommand(command, () => runDev(rest, cliEntry(argv)));
    case 'start': {
      const options = {
        'data-dir': { type: 'string' },
        listen: { type: 'string' },
        config: { type: 'string' },
        'metrics-listen': { type: 'string' },
        'node-id': { type: 'string' },
        voters: { type: 'string' },
        'controller-listen': { type: 'string' },
        set: { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h' },
      } as const;
      let parsed: ReturnType<typeof parseArgs<{ args: string[]; options: typeof options }>>;
      try {
        parsed = parseArgs({ args: rest, options });
      } catch (err) {
        if (!isParseArgsError(err)) throw err;
        console.error(`error: ${err.message}\n\n${START_USAGE}`);
        return 1;
      }
      const { values } = parsed;
      if (values.help) {
        console.log(START_USAGE);
        return 0;
      }
      return runStart({
        dataDir: values['data-dir'],
        listen: values.listen,
        config: values.config,
        metricsListen: values['metrics-listen'],
        nodeId: values['node-id'],
        voters: values.voters,
        controllerListen: values['controller-listen'],
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
