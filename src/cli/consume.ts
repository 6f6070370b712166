/**
 * `sluice consume TOPIC`: prints records, one per line — the value (text) or a JSON object
 * (json). Like kafka-console-consumer it starts at the end unless told --from-beginning or
 * --offset N, and reads every partition unless given --partition N. It stops after
 * --max-messages, after --timeout-ms without a new record, on Ctrl-C, or when stdout closes.
 *
 * With --group G it is a member of consumer group G instead: the group's coordinator assigns it
 * partitions, it starts at the group's committed offsets (else at the end, or the beginning with
 * --from-beginning), commits as it goes, and on exit (Ctrl-C included) commits what it printed
 * and leaves the group, so the other members take over its partitions at once. A second Ctrl-C
 * exits without waiting.
 */

import { parseArgs } from 'node:util';
import { Consumer, type ConsumerRecord, GroupConsumer } from '../client/index.js';
import { GLOBAL_OPTIONS, UsageError, globalFlags, parseIntFlag, writeOut } from './common.js';

export const CONSUME_USAGE = `Usage: sluice consume TOPIC [options]

  --from-beginning      start at the earliest offset (default: only new records)
  --offset N            start at offset N
  --partition N         read only partition N (default: all partitions)
  --max-messages N      exit after N records
  --format text|json    text: the value per line; json: {topic, partition, offset, timestamp, key, value, headers}
  --timeout-ms N        exit after N ms without a new record
  --group G             consume as a member of consumer group G (commits as it goes; not with
                        --offset/--partition; --from-beginning applies when G has no committed offset)
  --group-instance-id ID  static group membership (KIP-345)

Global options: --bootstrap-server HOST:PORT, --json (same as --format json)`;

function str(b: Buffer | null): string | null {
  return b === null ? null : b.toString('utf8');
}

export function formatRecord(r: ConsumerRecord, format: 'text' | 'json'): string {
  if (format === 'text') return str(r.value) ?? 'null';
  return JSON.stringify({
    topic: r.topic,
    partition: r.partition,
    offset: r.offset,
    timestamp: r.timestamp,
    key: str(r.key),
    value: str(r.value),
    headers: r.headers.map((h) => ({ key: h.key, value: str(h.value) })),
  });
}

export async function runConsume(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...GLOBAL_OPTIONS,
      'from-beginning': { type: 'boolean' },
      offset: { type: 'string' },
      partition: { type: 'string' },
      'max-messages': { type: 'string' },
      format: { type: 'string' },
      'timeout-ms': { type: 'string' },
      group: { type: 'string' },
      'group-instance-id': { type: 'string' },
    },
  });
  if (values.help) {
    console.log(CONSUME_USAGE);
    return 0;
  }
  const [topic, ...extra] = positionals;
  if (!topic) throw new UsageError('consume needs a TOPIC', CONSUME_USAGE);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`, CONSUME_USAGE);
  const flags = globalFlags(values);
  const format = values.format ?? (flags.json ? 'json' : 'text');
  if (format !== 'text' && format !== 'json')
    throw new UsageError(`--format expects text or json, got "${format}"`, CONSUME_USAGE);
  const offset = parseIntFlag('offset', values.offset, CONSUME_USAGE, 0);
  if (offset !== undefined && values['from-beginning'])
    throw new UsageError('use either --from-beginning or --offset, not both', CONSUME_USAGE);
  const onlyPartition = parseIntFlag('partition', values.partition, CONSUME_USAGE, 0);
  const maxMessages = parseIntFlag('max-messages', values['max-messages'], CONSUME_USAGE, 1);
  const timeoutMs = parseIntFlag('timeout-ms', values['timeout-ms'], CONSUME_USAGE, 0);

  if (values['group-instance-id'] !== undefined && values.group === undefined)
    throw new UsageError('--group-instance-id needs --group', CONSUME_USAGE);
  if (values.group !== undefined) {
    if (values.group === '') throw new UsageError('--group needs a group id', CONSUME_USAGE);
    if (offset !== undefined)
      throw new UsageError(
        '--offset cannot be used with --group (reset the group with `sluice group reset-offsets`)',
        CONSUME_USAGE,
      );
    if (onlyPartition !== undefined)
      throw new UsageError(
        '--partition cannot be used with --group (the group assigns partitions)',
        CONSUME_USAGE,
      );
    return consumeAsGroup(topic, values.group, {
      bootstrapServer: flags.bootstrapServer,
      json: flags.json,
      format,
      fromBeginning: values['from-beginning'] ?? false,
      maxMessages,
      timeoutMs,
      groupInstanceId: values['group-instance-id'],
    });
  }

  const options = { bootstrapServers: flags.bootstrapServer, clientId: 'sluice-cli' };
  const consumer = new Consumer({
    ...options,
    maxWaitMs: timeoutMs !== undefined ? Math.max(10, Math.min(500, timeoutMs)) : 500,
    autoOffsetReset: values['from-beginning'] ? 'earliest' : 'latest',
  });
  let stopping = false;
  const onSigint = () => {
    stopping = true;
    void consumer.close();
  };
  process.once('SIGINT', onSigint);
  let count = 0;
  try {
    const meta = await consumer.cluster.topic(topic);
    const partitions =
      onlyPartition !== undefined ? [onlyPartition] : meta.partitions.map((p) => p.partition);
    const start = offset ?? (values['from-beginning'] ? 'earliest' : 'latest');
    await consumer.assign(partitions.map((partition) => ({ topic, partition, offset: start })));
    let lastRecordMs = Date.now();
    while (!stopping) {
      const records = await consumer.poll();
      if (stopping) break;
      if (records.length > 0) {
        lastRecordMs = Date.now();
        const take = maxMessages !== undefined ? records.slice(0, maxMessages - count) : records;
        count += take.length;
        const open = await writeOut(`${take.map((r) => formatRecord(r, format)).join('\n')}\n`);
        if (!open) break;
        if (maxMessages !== undefined && count >= maxMessages) break;
      } else if (timeoutMs !== undefined && Date.now() - lastRecordMs >= timeoutMs) {
        break;
      }
    }
  } finally {
    process.removeListener('SIGINT', onSigint);
    await consumer.close();
  }
  if (!flags.json) process.stderr.write(`Processed a total of ${count} message${count === 1 ? '' : 's'}\n`);
  return 0;
}

interface GroupConsumeOptions {
  bootstrapServer: string;
  json: boolean;
  format: 'text' | 'json';
  fromBeginning: boolean;
  maxMessages: number | undefined;
  timeoutMs: number | undefined;
  groupInstanceId: string | undefined;
}

async function consumeAsGroup(topic: string, groupId: string, o: GroupConsumeOptions): Promise<number> {
  const consumer = new GroupConsumer({
    bootstrapServers: o.bootstrapServer,
    clientId: 'sluice-cli',
    groupId,
    topics: [topic],
    groupInstanceId: o.groupInstanceId ?? null,
    autoOffsetReset: o.fromBeginning ? 'earliest' : 'latest',
    maxWaitMs: o.timeoutMs !== undefined ? Math.max(10, Math.min(500, o.timeoutMs)) : 500,
  });
  // Ctrl-C (or SIGTERM) ends the loop after the fetch in progress; close() then commits what was
  // printed and leaves the group. A second signal exits at once.
  let stopping = false;
  const onSignal = () => {
    if (stopping) process.exit(130);
    stopping = true;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let count = 0;
  try {
    await consumer.cluster.topic(topic);
    await consumer.connect(); // join first: --timeout-ms counts from the first assignment
    let lastRecordMs = Date.now();
    while (!stopping) {
      const records = await consumer.poll();
      if (records.length > 0) {
        lastRecordMs = Date.now();
        let take = records;
        if (o.maxMessages !== undefined && records.length > o.maxMessages - count) {
          take = records.slice(0, o.maxMessages - count);
          // Give back what is not printed, so the commit on close covers exactly what was.
          const firstUnprinted = new Map<string, ConsumerRecord>();
          for (const r of records.slice(take.length)) {
            const k = `${r.topic}\u0000${r.partition}`;
            if (!firstUnprinted.has(k)) firstUnprinted.set(k, r);
          }
          for (const r of firstUnprinted.values()) consumer.seek(r.topic, r.partition, r.offset);
        }
        count += take.length;
        const open = await writeOut(`${take.map((r) => formatRecord(r, o.format)).join('\n')}\n`);
        if (!open) break;
        if (o.maxMessages !== undefined && count >= o.maxMessages) break;
      } else if (o.timeoutMs !== undefined && Date.now() - lastRecordMs >= o.timeoutMs) {
        break;
      }
    }
  } finally {
    await consumer.close();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
  if (!o.json) process.stderr.write(`Processed a total of ${count} message${count === 1 ? '' : 's'}\n`);
  return 0;
}
