/**
 * What every client program shares: the scenario names, the record set, and the result line.
 * Each client prints exactly one JSON line: { client, scenario, ok, na?, detail, data? }.
 * - ok: the scenario passed; na: the client has no such feature (a cell shown as "n/a").
 * The runner compares `data` across clients where a check spans clients (key placement).
 */

export const SCENARIOS = [
  'metadata',
  'create-topic',
  'produce',
  'consume-group',
  'describe-group',
  'offsets-by-time',
  'configs',
  'delete-records',
  'errors',
  'fidelity',
  'delete-topic',
] as const;
export type Scenario = (typeof SCENARIOS)[number];

export const RECORDS = 10_000;
export const PARTITIONS = 6;
/** Keys whose placement is compared across clients. */
export const PLACEMENT_KEYS = 1_000;
/** Records the first consumer of consume-group reads and commits before it stops. */
export const FIRST_CONSUMER_RECORDS = 4_000;
export const key = (i: number) => `key-${i}`;
export const value = (i: number) => `value-${i}`;
/** The topic config the configs scenario sets, and the value it must read back. */
export const ALTER_CONFIG = { name: 'retention.ms', value: '3600000' } as const;
export const DELETE_RECORDS_BEFORE = 100;

export interface ScenarioResult {
  client: string;
  scenario: string;
  ok: boolean;
  na?: boolean;
  detail: string;
  data?: Record<string, unknown>;
}

/** Kafka's murmur2 as the Java client's partitioner uses it: toPositive(murmur2(key)) % n. */
export function murmur2Partition(keyStr: string, n: number): number {
  const buf = Buffer.from(keyStr, 'utf8');
  const data = (i: number) => buf[i] ?? 0;
  const length = buf.length;
  const seed = 0x9747b28c;
  const m = 0x5bd1e995;
  const r = 24;
  let h = (seed ^ length) | 0;
  const length4 = length >> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k =
      (data(i4) & 0xff) +
      ((data(i4 + 1) & 0xff) << 8) +
      ((data(i4 + 2) & 0xff) << 16) +
      ((data(i4 + 3) & 0xff) << 24);
    k = Math.imul(k, m);
    k ^= k >>> r;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  const rem = length % 4;
  const base = length & ~3;
  if (rem === 3) h ^= (data(base + 2) & 0xff) << 16;
  if (rem >= 2) h ^= (data(base + 1) & 0xff) << 8;
  if (rem >= 1) {
    h ^= data(base) & 0xff;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return (h & 0x7fffffff) % n;
}

/** Parses `--name value` pairs. */
export function parseArgs(argv: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a.startsWith('--')) {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) out[a.slice(2)] = 'true';
      else {
        out[a.slice(2)] = next;
        i++;
      }
    }
  }
  return out;
}

export type Status = 'pass' | 'fail' | 'n/a' | 'skip';
/** One cell of the matrix, as the runner records it. */
export interface Cell {
  status: Status;
  detail: string;
  ms: number;
  data?: Record<string, unknown>;
  stderr?: string;
}
