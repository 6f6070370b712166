/**
 * `sluice topic create|list|describe|alter|delete`: topic administration through the Admin
 * client. Text output is for people (aligned tables, one confirmation line); --json prints one
 * JSON document on stdout for programs.
 */

import { parseArgs } from 'node:util';
import { Admin, type TopicDescription } from '../client/index.js';
import {
  GLOBAL_OPTIONS,
  type GlobalFlags,
  UsageError,
  globalFlags,
  parseIntFlag,
  parseKeyValues,
  table,
} from './common.js';

export const TOPIC_USAGE = `Usage: sluice topic <subcommand> [options]

Subcommands:
  create NAME [--partitions N] [--replication-factor N] [--config K=V]...
  list
  describe NAME
  alter NAME --config K=V... [--delete-config K]...
  delete NAME

Global options: --bootstrap-server HOST:PORT (default $SLUICE_BOOTSTRAP_SERVER or 127.0.0.1:9092), --json`;

function nonDefaultConfigs(d: TopicDescription) {
  return d.configs.filter((c) => !c.isDefault);
}

function print(flags: GlobalFlags, text: string, json: unknown): void {
  console.log(flags.json ? JSON.stringify(json, null, 2) : text);
}

export async function runTopic(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...GLOBAL_OPTIONS,
      partitions: { type: 'string' },
      'replication-factor': { type: 'string' },
      config: { type: 'string', multiple: true },
      'delete-config': { type: 'string', multiple: true },
    },
  });
  const [sub, name, ...extra] = positionals;
  if (values.help || sub === undefined) {
    console.log(TOPIC_USAGE);
    return values.help ? 0 : 1;
  }
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`, TOPIC_USAGE);
  const flags = globalFlags(values);
  const needName = (): string => {
    if (!name) throw new UsageError(`topic ${sub} needs a topic NAME`, TOPIC_USAGE);
    return name;
  };
  const admin = new Admin({ bootstrapServers: flags.bootstrapServer, clientId: 'sluice-cli' });
  try {
    switch (sub) {
      case 'create': {
        const topic = needName();
        const created = await admin.createTopic(topic, {
          partitions: parseIntFlag('partitions', values.partitions, TOPIC_USAGE, 1) ?? -1,
          replicationFactor:
            parseIntFlag('replication-factor', values['replication-factor'], TOPIC_USAGE, 1) ?? -1,
          configs: parseKeyValues('config', values.config, TOPIC_USAGE),
        });
        const parts =
          created.partitions >= 0
            ? `${created.partitions} partition${created.partitions === 1 ? '' : 's'}`
            : 'default partitions';
        const rf = created.replicationFactor >= 0 ? `, replication factor ${created.replicationFactor}` : '';
        print(flags, `Created topic ${topic} (${parts}${rf})`, created);
        return 0;
      }
      case 'list': {
        if (name) throw new UsageError('topic list takes no NAME', TOPIC_USAGE);
        const topics = await admin.listTopics();
        if (flags.json) print(flags, '', topics);
        else if (topics.length > 0) console.log(topics.map((t) => t.name).join('\n'));
        return 0;
      }
      case 'describe': {
        const d = await admin.describeTopic(needName());
        const rf = d.partitions[0]?.replicas.length ?? 0;
        const lines = [
          `Topic: ${d.name}  TopicId: ${d.topicId}  Partitions: ${d.partitions.length}  ReplicationFactor: ${rf}`,
          table([
            ['Partition', 'Leader', 'Replicas', 'ISR', 'LogStartOffset', 'LogEndOffset'],
            ...d.partitions.map((p) => [
              String(p.partition),
              String(p.leader),
              p.replicas.join(','),
              p.isr.join(','),
              String(p.logStartOffset),
              String(p.logEndOffset),
            ]),
          ])
            .split('\n')
            .map((l) => `  ${l}`)
            .join('\n'),
        ];
        const configs = nonDefaultConfigs(d);
        lines.push(
          configs.length === 0
            ? 'Configs: (all defaults)'
            : `Configs:\n${configs.map((c) => `  ${c.name}=${c.value ?? ''}`).join('\n')}`,
        );
        print(flags, lines.join('\n'), {
          ...d,
          configs: Object.fromEntries(configs.map((c) => [c.name, c.value])),
        });
        return 0;
      }
      case 'alter': {
        const topic = needName();
        const changes: Record<string, string | null> = parseKeyValues('config', values.config, TOPIC_USAGE);
        for (const k of values['delete-config'] ?? []) changes[k] = null;
        if (Object.keys(changes).length === 0)
          throw new UsageError(
            'topic alter needs at least one --config K=V or --delete-config K',
            TOPIC_USAGE,
          );
        await admin.alterConfigs(topic, changes);
        const desc = Object.entries(changes).map(([k, v]) =>
          v === null ? `${k} (back to default)` : `${k}=${v}`,
        );
        print(flags, `Updated topic ${topic}: ${desc.join(', ')}`, { topic, changes });
        return 0;
      }
      case 'delete': {
        const topic = needName();
        await admin.deleteTopics([topic]);
        print(flags, `Deleted topic ${topic}`, { topic, deleted: true });
        return 0;
      }
      default:
        throw new UsageError(`unknown topic subcommand "${sub}"`, TOPIC_USAGE);
    }
  } finally {
    await admin.close();
  }
}
