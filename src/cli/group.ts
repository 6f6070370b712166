/**
 * `sluice group list|describe|reset-offsets|delete`: consumer-group administration through the
 * Admin client, modelled on Kafka's kafka-consumer-groups tool. Text output is for people
 * (aligned tables); --json prints one JSON document on stdout for programs.
 *
 * reset-offsets is a dry run (prints the plan: current -> new offset per partition) unless
 * --execute is given, and is refused while the group has active members.
 */

import { parseArgs } from 'node:util';
import { Admin, type GroupDescription, type OffsetResetSpec } from '../client/index.js';
import { GLOBAL_OPTIONS, type GlobalFlags, UsageError, globalFlags, parseIntFlag, table } from './common.js';

export const GROUP_USAGE = `Usage: sluice group <subcommand> [options]

Subcommands:
  list [--state S]...       every consumer group with its state (filter by state, e.g. --state Stable)
  describe G                state, protocol, members (client id, host, assignment) and per partition
                            the committed offset, log end offset and lag
  reset-offsets G --topic T[:P,P...] (--to-earliest | --to-latest | --to-offset N |
                --to-datetime ISO | --shift-by N) [--execute]
                            new committed offsets for a group with no active members; prints the
                            plan and changes nothing unless --execute (negative shifts: --shift-by=-N)
  delete G...               delete groups (their committed offsets too); refused for active groups

Global options: --bootstrap-server HOST:PORT (default $SLUICE_BOOTSTRAP_SERVER or 127.0.0.1:9092), --json`;

function print(flags: GlobalFlags, text: string, json: unknown): void {
  console.log(flags.json ? JSON.stringify(json, null, 2) : text);
}

const dash = (v: string | number | null | undefined): string =>
  v === null || v === undefined || v === '' || v === -1 ? '-' : String(v);

function assignmentText(a: { topic: string; partitions: number[] }[]): string {
  return a.length === 0 ? '-' : a.map((t) => `${t.topic}:${t.partitions.join(',')}`).join(' ');
}

/** "T" or "T:0,1,2". */
function parseTopicArg(v: string): { topic: string; partitions?: number[] } {
  const i = v.lastIndexOf(':');
  if (i < 0) return { topic: v };
  const topic = v.slice(0, i);
  const list = v.slice(i + 1).split(',');
  if (topic === '' || list.some((p) => !/^\d+$/.test(p)))
    throw new UsageError(`--topic expects TOPIC or TOPIC:P,P,..., got "${v}"`, GROUP_USAGE);
  return { topic, partitions: [...new Set(list.map(Number))] };
}

function resetSpec(values: {
  'to-earliest'?: boolean;
  'to-latest'?: boolean;
  'to-offset'?: string;
  'to-datetime'?: string;
  'shift-by'?: string;
}): OffsetResetSpec {
  const specs: OffsetResetSpec[] = [];
  if (values['to-earliest']) specs.push({ to: 'earliest' });
  if (values['to-latest']) specs.push({ to: 'latest' });
  if (values['to-offset'] !== undefined)
    specs.push({ to: 'offset', offset: parseIntFlag('to-offset', values['to-offset'], GROUP_USAGE, 0)! });
  if (values['to-datetime'] !== undefined) {
    const t = Date.parse(values['to-datetime']);
    if (Number.isNaN(t))
      throw new UsageError(
        `--to-datetime expects an ISO date-time (e.g. 2024-05-01T12:00:00Z), got "${values['to-datetime']}"`,
        GROUP_USAGE,
      );
    specs.push({ to: 'datetime', timestamp: t });
  }
  if (values['shift-by'] !== undefined)
    specs.push({
      to: 'shift',
      by: parseIntFlag('shift-by', values['shift-by'], GROUP_USAGE, Number.MIN_SAFE_INTEGER)!,
    });
  if (specs.length !== 1)
    throw new UsageError(
      'reset-offsets needs exactly one of --to-earliest, --to-latest, --to-offset N, --to-datetime ISO, --shift-by N',
      GROUP_USAGE,
    );
  return specs[0]!;
}

function describeText(d: GroupDescription, lag: Awaited<ReturnType<Admin['groupLag']>>): string {
  const lines: string[] = [];
  const protocol = d.protocolType === '' ? '-' : `${d.protocolType}${d.protocol ? ` (${d.protocol})` : ''}`;
  lines.push(
    `Group: ${d.groupId}  State: ${d.state || '-'}  Protocol: ${protocol}  Coordinator: ${dash(d.coordinator)}  Members: ${d.members.length}`,
  );
  lines.push('');
  if (d.members.length === 0) {
    lines.push(`Consumer group '${d.groupId}' has no active members.`);
  } else {
    lines.push(
      table([
        ['MEMBER-ID', 'INSTANCE-ID', 'CLIENT-ID', 'HOST', 'ASSIGNMENT'],
        ...d.members.map((m) => [
          m.memberId,
          dash(m.groupInstanceId),
          m.clientId,
          m.host,
          assignmentText(m.assignment),
        ]),
      ]),
    );
  }
  lines.push('');
  if (lag.length === 0) {
    lines.push('No committed offsets or assigned partitions.');
  } else {
    lines.push(
      table([
        ['TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'LOG-END-OFFSET', 'LAG', 'CONSUMER-ID', 'HOST', 'CLIENT-ID'],
        ...lag.map((r) => [
          r.topic,
          String(r.partition),
          dash(r.committedOffset),
          dash(r.logEndOffset),
          dash(r.lag),
          dash(r.memberId),
          dash(r.host),
          dash(r.clientId),
        ]),
      ]),
    );
  }
  return lines.join('\n');
}

export async function runGroup(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...GLOBAL_OPTIONS,
      state: { type: 'string', multiple: true },
      topic: { type: 'string' },
      'to-earliest': { type: 'boolean' },
      'to-latest': { type: 'boolean' },
      'to-offset': { type: 'string' },
      'to-datetime': { type: 'string' },
      'shift-by': { type: 'string' },
      execute: { type: 'boolean' },
      'dry-run': { type: 'boolean' },
    },
  });
  const [sub, ...names] = positionals;
  if (values.help || sub === undefined) {
    console.log(GROUP_USAGE);
    return values.help ? 0 : 1;
  }
  const flags = globalFlags(values);
  const oneName = (): string => {
    const [name, ...extra] = names;
    if (!name) throw new UsageError(`group ${sub} needs a group id`, GROUP_USAGE);
    if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`, GROUP_USAGE);
    return name;
  };
  const admin = new Admin({ bootstrapServers: flags.bootstrapServer, clientId: 'sluice-cli' });
  try {
    switch (sub) {
      case 'list': {
        if (names.length > 0) throw new UsageError('group list takes no group id', GROUP_USAGE);
        const groups = await admin.listGroups({ states: values.state });
        if (flags.json) print(flags, '', groups);
        else if (groups.length > 0)
          console.log(
            table([
              ['GROUP', 'STATE', 'PROTOCOL-TYPE'],
              ...groups.map((g) => [g.groupId, dash(g.state), dash(g.protocolType)]),
            ]),
          );
        return 0;
      }
      case 'describe': {
        const groupId = oneName();
        const d = await admin.describeGroup(groupId);
        if (d.state === 'Dead' && d.members.length === 0) {
          const offsets = await admin.listGroupOffsets(groupId);
          if (offsets.length === 0) {
            if (flags.json) print(flags, '', { ...d, partitions: [] });
            else console.error(`error: consumer group "${groupId}" does not exist`);
            return flags.json ? 0 : 1;
          }
        }
        const lag = await admin.groupLag(groupId, d);
        print(flags, describeText(d, lag), { ...d, partitions: lag });
        return 0;
      }
      case 'reset-offsets': {
        const groupId = oneName();
        if (!values.topic) throw new UsageError('reset-offsets needs --topic T', GROUP_USAGE);
        if (values.execute && values['dry-run'])
          throw new UsageError('use either --execute or --dry-run, not both', GROUP_USAGE);
        const { topic, partitions } = parseTopicArg(values.topic);
        const spec = resetSpec(values);
        const execute = values.execute ?? false;
        const plan = await admin.resetOffsets(groupId, topic, spec, { partitions, execute });
        print(
          flags,
          table([
            ['GROUP', 'TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'NEW-OFFSET'],
            ...plan.map((e) => [
              groupId,
              e.topic,
              String(e.partition),
              dash(e.currentOffset),
              String(e.newOffset),
            ]),
          ]),
          { groupId, executed: execute, partitions: plan },
        );
        if (!flags.json)
          process.stderr.write(
            execute
              ? `Committed new offsets for ${plan.length} partition${plan.length === 1 ? '' : 's'} of group ${groupId}\n`
              : 'Dry run: nothing was changed. Run again with --execute to commit these offsets.\n',
          );
        return 0;
      }
      case 'delete': {
        if (names.length === 0) throw new UsageError('group delete needs a group id', GROUP_USAGE);
        await admin.deleteGroups(names);
        print(flags, names.map((n) => `Deleted group ${n}`).join('\n'), { groups: names, deleted: true });
        return 0;
      }
      default:
        throw new UsageError(`unknown group subcommand "${sub}"`, GROUP_USAGE);
    }
  } finally {
    await admin.close();
  }
}
