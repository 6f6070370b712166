/**
 * `sluice produce TOPIC`: one record per stdin line. Lines are sent in chunks without waiting
 * for each acknowledgement (the producer batches them), with a bound on unacknowledged chunks so
 * a huge input does not pile up in memory. At the end a summary (count and offset range per
 * partition) goes to stderr — stdout stays free for --json output — and, on a terminal, a
 * progress line is refreshed about every 2 s.
 */

import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { type Acks, Producer, type ProducerRecord, type RecordMetadata } from '../client/index.js';
import { GLOBAL_OPTIONS, UsageError, globalFlags, parseIntFlag, parseKeyValues } from './common.js';

export const PRODUCE_USAGE = `Usage: sluice produce TOPIC [options] < lines

Reads one record per line from stdin.
  --key K               key for every record
  --key-separator S     each line is KEY<S>VALUE
  --partition N         write to partition N (default: key hash, or sticky partition for no key)
  --acks 0|1|all        default all (idempotent)
  --header K=V          add a header to every record (repeatable)
  --compression C       none, gzip, snappy, lz4 or zstd (default none)
  --linger-ms N         batch wait (default 5)

Global options: --bootstrap-server HOST:PORT, --json`;

const CHUNK_RECORDS = 500;
const CHUNKS_IN_FLIGHT_MAX = 64;
const PROGRESS_INTERVAL_MS = 2000;

interface PartitionSummary {
  partition: number;
  count: number;
  firstOffset: number;
  lastOffset: number;
}

function parseAcks(v: string | undefined): Acks {
  if (v === undefined || v === 'all' || v === '-1') return -1;
  if (v === '0') return 0;
  if (v === '1') return 1;
  throw new UsageError(`--acks expects 0, 1 or all, got "${v}"`, PRODUCE_USAGE);
}

export async function runProduce(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...GLOBAL_OPTIONS,
      key: { type: 'string' },
      'key-separator': { type: 'string' },
      partition: { type: 'string' },
      acks: { type: 'string' },
      header: { type: 'string', multiple: true },
      compression: { type: 'string' },
      'linger-ms': { type: 'string' },
    },
  });
  if (values.help) {
    console.log(PRODUCE_USAGE);
    return 0;
  }
  const [topic, ...extra] = positionals;
  if (!topic) throw new UsageError('produce needs a TOPIC', PRODUCE_USAGE);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`, PRODUCE_USAGE);
  if (values.key !== undefined && values['key-separator'] !== undefined)
    throw new UsageError('use either --key or --key-separator, not both', PRODUCE_USAGE);
  if (values['key-separator'] === '')
    throw new UsageError('--key-separator must not be empty', PRODUCE_USAGE);
  const flags = globalFlags(values);
  const partition = parseIntFlag('partition', values.partition, PRODUCE_USAGE, 0);
  const headers = parseKeyValues('header', values.header, PRODUCE_USAGE);
  const acks = parseAcks(values.acks);
  const producer = new Producer({
    bootstrapServers: flags.bootstrapServer,
    clientId: 'sluice-cli',
    acks,
    compression: (values.compression ?? 'none') as 'none',
    lingerMs: parseIntFlag('linger-ms', values['linger-ms'], PRODUCE_USAGE, 0),
  });

  const summary = new Map<number, PartitionSummary>();
  let sent = 0;
  let acked = 0;
  const started = Date.now();
  const record = (m: RecordMetadata) => {
    acked++;
    const s = summary.get(m.partition);
    if (!s)
      summary.set(m.partition, {
        partition: m.partition,
        count: 1,
        firstOffset: m.offset,
        lastOffset: m.offset,
      });
    else {
      s.count++;
      if (m.offset >= 0 && (s.firstOffset < 0 || m.offset < s.firstOffset)) s.firstOffset = m.offset;
      if (m.offset > s.lastOffset) s.lastOffset = m.offset;
    }
  };
  const progress =
    process.stderr.isTTY === true
      ? setInterval(() => {
          const secs = (Date.now() - started) / 1000;
          process.stderr.write(
            `\r${acked} records acknowledged (${Math.round(acked / Math.max(secs, 0.001))}/s)   `,
          );
        }, PROGRESS_INTERVAL_MS)
      : null;

  let failure: unknown = null;
  const inFlight = new Set<Promise<void>>();
  const flushChunk = async (chunk: ProducerRecord[]) => {
    if (chunk.length === 0) return;
    const p: Promise<void> = producer.send(topic, chunk).then(
      (ms) => ms.forEach(record),
      (err: unknown) => {
        failure ??= err;
      },
    );
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
    if (inFlight.size >= CHUNKS_IN_FLIGHT_MAX) await Promise.race(inFlight);
  };

  try {
    const sep = values['key-separator'];
    const rl = createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY });
    let chunk: ProducerRecord[] = [];
    let lineNo = 0;
    for await (const line of rl) {
      lineNo++;
      let key: string | null = values.key ?? null;
      let value = line;
      if (sep !== undefined) {
        const i = line.indexOf(sep);
        if (i < 0) throw new UsageError(`line ${lineNo} has no key separator "${sep}"`, PRODUCE_USAGE);
        key = line.slice(0, i);
        value = line.slice(i + sep.length);
      }
      chunk.push({ key, value, headers, partition });
      sent++;
      if (chunk.length >= CHUNK_RECORDS) {
        await flushChunk(chunk);
        chunk = [];
      }
      if (failure) break;
    }
    await flushChunk(chunk);
    await Promise.all(inFlight);
    await producer.flush();
  } finally {
    if (progress) {
      clearInterval(progress);
      process.stderr.write('\r\x1b[K');
    }
    await producer.close().catch(() => undefined);
  }
  if (failure) throw failure;

  const parts = [...summary.values()].sort((a, b) => a.partition - b.partition);
  if (flags.json) {
    console.log(JSON.stringify({ topic, count: acked, partitions: parts }));
  } else {
    const detail =
      acks === 0
        ? parts.map((p) => `partition ${p.partition}: ${p.count}`).join(', ')
        : parts.map((p) => `partition ${p.partition} offsets ${p.firstOffset}-${p.lastOffset}`).join(', ');
    process.stderr.write(
      `Produced ${acked} record${acked === 1 ? '' : 's'} to ${topic}${detail ? ` (${detail})` : ''}\n`,
    );
  }
  return sent === acked ? 0 : 1;
}
