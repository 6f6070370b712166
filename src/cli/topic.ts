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

const ids = (xs: number[]) => (xs.length === 0 ? '-' : xs.join(','));

/**
 * The partition part of `topic describe`: per partition its leader and leader epoch, replicas,
 * ISR and offline replicas (Metadata), and log start/end offsets; then which partitions are
 * under-replicated (ISR smaller than the replicas) or offline (no leader), if any.
 */
export function describeLines(d: TopicDescription): string[] {
  const rf = d.partitions[0]?.replicas.length ?? 0;
  const lines = [
    `Topic: ${d.name}  TopicId: ${d.topicId}  Partitions: ${d.partitions.length}  ReplicationFactor: ${rf}`,
    table([
      ['Partition', 'Leader', 'LeaderEpoch', 'Replicas', 'ISR', 'Offline', 'LogStartOffset', 'LogEndOffset'],
      ...d.partitions.map((p) => [
        String(p.partition),
        p.leader < 0 ? 'none' : String(p.leader),
        String(p.leaderEpoch),
        ids(p.replicas),
        ids(p.isr),
        ids(p.offlineReplicas),
        p.logStartOffset < 0 ? '-' : String(p.logStartOffset),
        p.logEndOffset < 0 ? '-' : String(p.logEndOffset),
      ]),
    ])
      .split('\n')
      .map((l) => `  ${l}`)
      .join('\n'),
  ];
  const offline = d.partitions.filter((p) => p.leader < 0).map((p) => p.partition);
  const under = d.partitions
    .filter((p) => p.leader >= 0 && p.isr.length < p.replicas.length)
    .map((p) => p.partition);
  if (offline.length > 0) lines.push(`Offline partitions (no leader): ${offline.join(',')}`);
  if (under.length > 0)
    lines.push(`Under-replicated partitions (ISR smaller than replicas): ${under.join(',')}`);
  return lines;
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
        const lines = describeLines(d);
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
