/**
 * The compatibility runner: real Kafka clients and tools through the same scenarios against Sluice
 * (built from this repo, fresh data dir) and Apache Kafka 4.4.0 (compat/kafka-reference.ts).
 *
 *   node --import tsx compat/run.ts [--clients kafkajs,java,kcat,...] [--brokers sluice,kafka]
 *                                   [--no-tools] [--doc | --no-doc] [--strict]
 *
 * Installs or builds what each client needs (cached under compat/.cache), prints the matrix, writes
 * docs/compatibility.md (by default only when both brokers ran) and compat/.cache/last-run.json.
 * Exit code: 1 when a cell fails on Sluice and is not listed in compat/expected-failures.txt
 * (with --strict: any Sluice failure), or when a cell fails on Kafka (the suite itself is wrong).
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  KAFKA_LIBS,
  KAFKA_VERSION,
  type KafkaHandle,
  ensureKafkaJars,
  kafkaClasspath,
  startKafka,
} from './kafka-reference.js';
import { CLIENTS, type ClientDef } from './lib/clients.js';
import { diagnose } from './lib/differences.js';
import {
  type Cell,
  PARTITIONS,
  PLACEMENT_KEYS,
  SCENARIOS,
  type ScenarioResult,
  type Status,
  key,
  murmur2Partition,
  parseArgs,
} from './lib/scenario.js';
import { TOOL_ROWS, runTools } from './lib/tools.js';
import {
  type ApiVersionRange,
  CACHE_DIR,
  COMPAT_DIR,
  REPO_ROOT,
  apiVersions,
  freePort,
  killGroup,
  progress,
  run,
  sleep,
} from './lib/util.js';

type BrokerId = 'sluice' | 'kafka';
/** results[broker][client][row] */
type Results = Record<string, Record<string, Record<string, Cell>>>;

const ROWS = [
  'metadata',
  'create-topic',
  'produce',
  'placement',
  'consume-group',
  'describe-group',
  'offsets-by-time',
  'configs',
  'delete-records',
  'errors',
  'fidelity',
  'delete-topic',
] as const;
const ROW_TITLES: Record<string, string> = {
  metadata: 'metadata + ApiVersions',
  'create-topic': 'create topic (6 partitions)',
  produce: 'produce 10,000 keyed (idempotent, acks=all)',
  placement: 'key → partition agrees (1,000 keys)',
  'consume-group': 'group consume, commit, restart, resume',
  'describe-group': 'describe group + lag',
  'offsets-by-time': 'list offsets by timestamp',
  configs: 'alter + describe topic configs',
  'delete-records': 'delete records',
  errors: 'admin error paths (9 cases)',
  fidelity: 'record fidelity (5 codecs, headers, nulls, 900 kB)',
  'delete-topic': 'delete topic',
};
const NEEDS: Record<string, string[]> = {
  produce: ['create-topic'],
  'consume-group': ['produce'],
  'describe-group': ['consume-group'],
  'offsets-by-time': ['produce'],
  configs: ['create-topic'],
  'delete-records': ['produce'],
  errors: ['produce'],
  'delete-topic': ['create-topic'],
};

interface BrokerHandle {
  id: BrokerId;
  bootstrap: string;
  host: string;
  port: number;
  version: string;
  notes: string[];
  stop(): Promise<void>;
}

const opts = parseArgs(process.argv.slice(2));
const started = Date.now();

function pickClients(): ClientDef[] {
  const want = (opts.clients ?? 'all')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (want.includes('all')) return CLIENTS.filter((c) => c.default);
  const out: ClientDef[] = [];
  for (const w of want) {
    const m = CLIENTS.filter((c) => c.id === w || c.family === w);
    if (m.length === 0)
      throw new Error(`unknown client "${w}" (known: ${CLIENTS.map((c) => c.id).join(', ')}, java)`);
    for (const c of m) if (!out.includes(c)) out.push(c);
  }
  return out;
}

// ---------- Sluice ----------

async function buildSluice(): Promise<void> {
  progress('building Sluice (npm run build)');
  const r = await run('npm', ['run', '-s', 'build'], { cwd: REPO_ROOT, timeoutMs: 300_000 });
  if (r.code !== 0) {
    if (!existsSync(join(REPO_ROOT, 'dist', 'cli', 'main.js')))
      throw new Error(`npm run build failed:\n${r.stdout}${r.stderr}`);
    progress(
      `WARN: tsc reported errors (JavaScript was still emitted):\n${(r.stdout + r.stderr).slice(0, 2000)}`,
    );
  }
}

function sluiceVersion(): string {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
  let rev = '';
  try {
    const head = readFileSync(join(REPO_ROOT, '.git', 'HEAD'), 'utf8').trim();
    rev = head.startsWith('ref: ')
      ? readFileSync(join(REPO_ROOT, '.git', head.slice(5)), 'utf8').trim()
      : head;
  } catch {}
  return `${pkg.version}${rev ? ` (${rev.slice(0, 10)})` : ''}`;
}

async function startSluiceOnce(
  extra: string[],
): Promise<{ child: ChildProcess; dir: string; port: number; out: string } | { error: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-compat-'));
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      join(REPO_ROOT, 'bin', 'sluice.js'),
      'start',
      '--data-dir',
      join(dir, 'data'),
      '--listen',
      `127.0.0.1:${port}`,
      '--metrics-listen',
      '127.0.0.1:0',
      ...extra,
    ],
    {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    },
  );
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const ok = await new Promise<boolean>((res) => {
    const t = setTimeout(() => res(false), 30_000);
    const check = () => {
      if (out.includes('Sluice ready on')) {
        clearTimeout(t);
        res(true);
      }
    };
    child.stdout?.on('data', check);
    child.on('exit', () => {
      clearTimeout(t);
      res(out.includes('Sluice ready on'));
    });
  });
  if (!ok) {
    killGroup(child, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    return { error: out };
  }
  // keep draining so the pipe never fills
  child.stdout?.removeAllListeners('data');
  child.stderr?.removeAllListeners('data');
  child.stdout?.resume();
  child.stderr?.resume();
  return { child, dir, port, out };
}

async function startSluice(): Promise<BrokerHandle> {
  const notes: string[] = [];
  let s = await startSluiceOnce(['--set', 'group.initial.rebalance.delay.ms=0']);
  if ('error' in s) {
    if (!/group\.initial\.rebalance\.delay\.ms/.test(s.error))
      throw new Error(`Sluice did not start:\n${s.error}`);
    notes.push('group.initial.rebalance.delay.ms is not a Sluice setting yet: started without it');
    s = await startSluiceOnce([]);
    if ('error' in s) throw new Error(`Sluice did not start:\n${s.error}`);
  } else notes.push('started with --set group.initial.rebalance.delay.ms=0');
  const { child, dir, port } = s;
  return {
    id: 'sluice',
    host: '127.0.0.1',
    port,
    bootstrap: `127.0.0.1:${port}`,
    version: sluiceVersion(),
    notes,
    stop: async () => {
      killGroup(child, 'SIGTERM');
      const deadline = Date.now() + 15_000;
      while (child.exitCode === null && child.signalCode === null && Date.now() < deadline) await sleep(100);
      if (child.exitCode === null && child.signalCode === null) killGroup(child, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startReference(): Promise<BrokerHandle> {
  progress(`starting Apache Kafka ${KAFKA_VERSION} (KRaft combined mode)`);
  const k: KafkaHandle = await startKafka();
  return {
    id: 'kafka',
    host: k.host,
    port: k.port,
    bootstrap: k.bootstrap,
    version: KAFKA_VERSION,
    notes: [`log: ${k.logFile}`],
    stop: () => k.stop(),
  };
}

// ---------- running the scenarios ----------

async function runScenario(
  c: ClientDef,
  b: BrokerHandle,
  scenario: string,
  topic: string,
  group: string,
  extra: string[],
): Promise<Cell> {
  const args = [
    '--bootstrap',
    b.bootstrap,
    '--scenario',
    scenario,
    '--topic',
    topic,
    '--group',
    group,
    ...extra,
  ];
  const [cmd, cargs] = c.command(args);
  const r = await run(cmd, cargs, { cwd: REPO_ROOT, timeoutMs: 300_000, env: { ...process.env } });
  const line = r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('{'))
    .pop();
  if (!line) {
    return {
      status: 'fail',
      detail: r.timedOut
        ? 'timed out after 300 s'
        : `no result line (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(-600)}`,
      ms: r.ms,
      stderr: r.stderr.slice(-4000),
    };
  }
  try {
    const res = JSON.parse(line) as ScenarioResult;
    return {
      status: res.na ? 'n/a' : res.ok ? 'pass' : 'fail',
      detail: res.detail,
      data: res.data,
      ms: r.ms,
      stderr: res.ok ? undefined : r.stderr.slice(-4000),
    };
  } catch {
    return { status: 'fail', detail: `unparseable result: ${line.slice(0, 300)}`, ms: r.ms };
  }
}

/** Creates a topic with the kafkajs admin for clients that cannot (kcat). */
async function helperCreateTopic(b: BrokerHandle, topic: string): Promise<Cell> {
  const kjs = CLIENTS.find((c) => c.id === 'kafkajs');
  if (!kjs) throw new Error('kafkajs client missing');
  const cell = await runScenario(kjs, b, 'create-topic', topic, `${topic}-g`, []);
  return cell;
}

async function runClient(c: ClientDef, b: BrokerHandle, out: Record<string, Cell>): Promise<void> {
  const suffix = Math.random().toString(36).slice(2, 8);
  const topic = `compat-${c.id.replace(/[^a-z0-9-]/gi, '-')}-${suffix}`;
  const group = `${topic}-group`;
  let tsBase: string | undefined;
  let topicExists = false;
  for (const s of SCENARIOS) {
    const missing = (NEEDS[s] ?? []).filter(
      (n) => out[n]?.status !== 'pass' && !(n === 'create-topic' && topicExists),
    );
    if (missing.length > 0) {
      out[s] = { status: 'skip', detail: `needs ${missing.join(', ')}`, ms: 0 };
      continue;
    }
    const extra = tsBase ? ['--ts-base', tsBase] : [];
    let cell = await runScenario(c, b, s, topic, group, extra);
    if (s === 'create-topic' && cell.status === 'n/a') {
      const h = await helperCreateTopic(b, topic);
      topicExists = h.status === 'pass';
      cell = { ...cell, detail: `${cell.detail}; topic created with kafkajs instead (${h.status})` };
    }
    if (s === 'create-topic' && cell.status === 'pass') topicExists = true;
    if (s === 'produce' && cell.data && typeof cell.data.tsBase === 'number')
      tsBase = String(cell.data.tsBase);
    out[s] = cell;
    progress(
      `  ${b.id.padEnd(6)} ${c.id.padEnd(12)} ${s.padEnd(16)} ${cell.status.toUpperCase().padEnd(5)} ${(cell.ms / 1000).toFixed(1)}s  ${cell.detail.slice(0, 140)}`,
    );
  }
}

/** The placement row: each client's partition for key-0..key-999 against murmur2 and the other clients. */
function placementRow(results: Results): void {
  const expected = Array.from({ length: PLACEMENT_KEYS }, (_, i) => murmur2Partition(key(i), PARTITIONS));
  for (const [, byClient] of Object.entries(results)) {
    const placements = new Map<string, number[]>();
    for (const [cid, rows] of Object.entries(byClient)) {
      const p = rows.produce?.data?.placement;
      if (rows.produce?.status === 'pass' && Array.isArray(p)) placements.set(cid, p as number[]);
    }
    for (const [cid, rows] of Object.entries(byClient)) {
      const p = placements.get(cid);
      if (!p) {
        rows.placement = { status: 'skip', detail: 'needs produce', ms: 0 };
        continue;
      }
      const vsMurmur = p.filter((x, i) => x === expected[i]).length;
      const others = [...placements].filter(([o]) => o !== cid);
      const disagree = others.filter(([, q]) => q.some((x, i) => x !== p[i])).map(([o]) => o);
      const ok = vsMurmur === PLACEMENT_KEYS && disagree.length === 0;
      rows.placement = {
        status: ok ? 'pass' : 'fail',
        detail: `${vsMurmur}/${PLACEMENT_KEYS} keys on murmur2(key) % ${PARTITIONS}${others.length ? `; ${disagree.length ? `differs from ${disagree.join(', ')}` : `same as ${others.map(([o]) => o).join(', ')}`}` : ''}`,
        ms: 0,
      };
    }
  }
}

/** Differences seen inside cells that pass on both brokers (worth knowing, not failures). */
function behaviourNotes(
  results: Results,
  av: Partial<Record<BrokerId, ApiVersionRange[]>>,
  apiNames: Map<number, string>,
): string[] {
  const notes: string[] = [];
  if (av.sluice && av.kafka) {
    const lower: string[] = [];
    const older: string[] = [];
    for (const s of av.sluice) {
      const k = av.kafka.find((r) => r.apiKey === s.apiKey);
      if (!k) continue;
      const n = apiNames.get(s.apiKey) ?? String(s.apiKey);
      if (s.maxVersion < k.maxVersion) lower.push(`${n} ${s.maxVersion} (Kafka ${k.maxVersion})`);
      if (s.minVersion < k.minVersion) older.push(`${n} from v${s.minVersion} (Kafka v${k.minVersion})`);
    }
    if (lower.length)
      notes.push(
        `Sluice's highest versions are below Kafka ${KAFKA_VERSION}'s for ${lower.join(', ')}. Clients negotiate down, so nothing in the matrix fails; the features of the newer versions are missing.`,
      );
    if (older.length)
      notes.push(
        `Sluice still serves versions that Kafka 4 removed (KIP-896): ${older.join(', ')}. Harmless for current clients; Kafka 4 answers those versions UNSUPPORTED_VERSION.`,
      );
  }
  const names = (b: string) => results[b]?.['java-4.4.0']?.configs?.data?.names as string[] | undefined;
  const s = names('sluice');
  const k = names('kafka');
  if (s && k) {
    const missing = k.filter((n) => !s.includes(n));
    const extra = s.filter((n) => !k.includes(n));
    if (missing.length || extra.length) {
      notes.push(
        `DescribeConfigs of a topic lists ${s.length} configs on Sluice and ${k.length} on Kafka ${KAFKA_VERSION}.${missing.length ? ` Kafka's that Sluice does not list: ${missing.map((n) => `\`${n}\``).join(', ')}.` : ''}${extra.length ? ` Sluice's that Kafka does not list: ${extra.map((n) => `\`${n}\``).join(', ')}.` : ''} Tools that show every config (\`kafka-configs --describe --all\`) show the shorter list; setting one of the missing names is rejected as an unknown config.`,
      );
    }
  }
  return notes.length
    ? ['### Other observed differences (cells pass on both)', '', ...notes.map((n) => `- ${n}`)]
    : [];
}

// ---------- ApiVersions table ----------

function apiKeyNames(): Map<number, string> {
  const names = new Map<number, string>();
  try {
    const src = readFileSync(join(REPO_ROOT, 'src', 'protocol', 'generated', 'index.ts'), 'utf8');
    const m = src.match(/export enum ApiKey \{([^}]*)\}/);
    for (const line of m?.[1]?.split('\n') ?? []) {
      const mm = line.match(/^\s*(\w+)\s*=\s*(\d+)/);
      if (mm?.[1] && mm[2]) names.set(Number(mm[2]), mm[1]);
    }
  } catch {}
  return names;
}

/** Names of API keys from kafka-clients 4.4.0 (compat/java/ApiKeyNames.java), for keys Sluice's codec does not know. */
async function kafkaApiKeyNames(names: Map<number, string>): Promise<void> {
  if (!existsSync(KAFKA_LIBS)) return;
  const r = await run('java', ['-cp', kafkaClasspath(), join(COMPAT_DIR, 'java', 'ApiKeyNames.java')], {
    timeoutMs: 60_000,
  });
  for (const line of r.stdout.split('\n')) {
    const m = /^(\d+) (\w+)$/.exec(line.trim());
    if (m?.[1] && m[2] && !names.has(Number(m[1]))) names.set(Number(m[1]), m[2]);
  }
}

function apiTable(av: Partial<Record<BrokerId, ApiVersionRange[]>>, names: Map<number, string>): string {
  const keys = new Set<number>();
  for (const l of Object.values(av)) for (const r of l ?? []) keys.add(r.apiKey);
  const fmt = (r?: ApiVersionRange) => (r ? `${r.minVersion}–${r.maxVersion}` : '—');
  const lines = ['| key | API | Sluice | Kafka 4.4.0 | |', '| ---: | --- | --- | --- | --- |'];
  for (const k of [...keys].sort((a, b) => a - b)) {
    const s = av.sluice?.find((r) => r.apiKey === k);
    const kf = av.kafka?.find((r) => r.apiKey === k);
    let note = '';
    if (s && kf)
      note =
        s.minVersion === kf.minVersion && s.maxVersion === kf.maxVersion
          ? 'same'
          : s.maxVersion < kf.maxVersion
            ? 'Sluice lower max'
            : s.maxVersion > kf.maxVersion
              ? 'Sluice higher max'
              : 'min differs';
    else if (kf) note = 'Kafka only';
    else if (s) note = 'Sluice only';
    lines.push(`| ${k} | ${names.get(k) ?? '?'} | ${fmt(s)} | ${fmt(kf)} | ${note} |`);
  }
  return lines.join('\n');
}

// ---------- output ----------

const SYM: Record<Status, string> = { pass: '✅', fail: '❌', 'n/a': 'n/a', skip: '–' };

function matrixText(results: Results, clients: ClientDef[], brokers: BrokerId[]): string {
  const w = 52;
  const colW = 14;
  let s = `${'scenario'.padEnd(w)}${clients.map((c) => c.id.padEnd(colW)).join('')}\n`;
  s += `${''.padEnd(w)}${clients
    .map(() =>
      brokers
        .map((b) => (b === 'sluice' ? 'S' : 'K'))
        .join(' / ')
        .padEnd(colW),
    )
    .join('')}\n`;
  for (const r of ROWS) {
    const cells = clients.map((c) =>
      brokers
        .map((b) => (results[b]?.[c.id]?.[r]?.status ?? '?').replace('pass', 'ok').replace('fail', 'FAIL'))
        .join(' / '),
    );
    s += `${(ROW_TITLES[r] ?? r).padEnd(w)}${cells.map((x) => x.padEnd(colW)).join('')}\n`;
  }
  return s;
}

function markdownMatrix(results: Results, clients: ClientDef[], brokers: BrokerId[]): string {
  const head = `| scenario | ${clients.map((c) => c.label).join(' | ')} |`;
  const sep = `| --- | ${clients.map(() => ':---:').join(' | ')} |`;
  const lines = [head, sep];
  for (const r of ROWS) {
    lines.push(
      `| ${ROW_TITLES[r]} | ${clients.map((c) => brokers.map((b) => SYM[results[b]?.[c.id]?.[r]?.status ?? 'skip']).join(' / ')).join(' | ')} |`,
    );
  }
  return lines.join('\n');
}

function summarize(
  results: Results,
  toolResults: Record<string, Record<string, Cell>>,
  brokers: BrokerId[],
): { pass: number; fail: number; expectedFail: number; skipped: number; unexpected: string[] } {
  const expected = existsSync(join(COMPAT_DIR, 'expected-failures.txt'))
    ? readFileSync(join(COMPAT_DIR, 'expected-failures.txt'), 'utf8')
        .split('\n')
        .map((l) => l.replace(/#.*/, '').trim())
        .filter(Boolean)
        .map((l) => l.split(/\s+/).slice(0, 2))
    : [];
  const isExpected = (client: string, row: string) =>
    expected.some(([c, r]) => (c === '*' || c === client) && (r === '*' || r === row));
  let pass = 0;
  let fail = 0;
  let expectedFail = 0;
  let skipped = 0;
  const unexpected: string[] = [];
  const visit = (b: string, client: string, row: string, cell: Cell) => {
    if (cell.status === 'pass') pass++;
    else if (cell.status === 'fail') {
      if (b === 'kafka') {
        fail++;
        unexpected.push(`kafka ${client} ${row}: fails on the reference broker: ${cell.detail}`);
      } else if (opts.strict === 'true' || !isExpected(client, row)) {
        fail++;
        unexpected.push(`sluice ${client} ${row}: ${cell.detail}`);
      } else expectedFail++;
    } else skipped++;
  };
  for (const b of brokers) {
    for (const [cid, rows] of Object.entries(results[b] ?? {}))
      for (const [row, cell] of Object.entries(rows)) visit(b, cid, row, cell);
    for (const [row, cell] of Object.entries(toolResults[b] ?? {})) visit(b, 'kafka-tools', row, cell);
  }
  return { pass, fail, expectedFail, skipped, unexpected };
}

async function main(): Promise<number> {
  const clients = pickClients();
  const brokers = (opts.brokers ?? 'sluice,kafka').split(',').map((s) => s.trim()) as BrokerId[];
  for (const b of brokers)
    if (b !== 'sluice' && b !== 'kafka') throw new Error(`unknown broker "${b}" (sluice, kafka)`);
  const withTools = opts['no-tools'] !== 'true';
  const writeDoc =
    opts['no-doc'] === 'true'
      ? false
      : opts.doc === 'true' || (brokers.includes('sluice') && brokers.includes('kafka'));
  mkdirSync(CACHE_DIR, { recursive: true });
  progress(
    `clients: ${clients.map((c) => c.id).join(', ')}; brokers: ${brokers.join(', ')}${withTools ? '; Kafka tools' : ''}`,
  );

  // Install / build everything first, so a broken install does not leave a broker running.
  const setupNotes: Record<string, string> = {};
  const usable: ClientDef[] = [];
  for (const c of clients) {
    try {
      progress(`setting up ${c.id}`);
      await c.setup();
      usable.push(c);
    } catch (e) {
      const msg = (e as Error).message.slice(0, 1500);
      setupNotes[c.id] = msg;
      progress(`  ${c.id}: setup failed: ${msg.split('\n')[0]}`);
    }
  }
  if (usable.some((c) => c.id === 'kcat') && !usable.some((c) => c.id === 'kafkajs')) {
    const k = CLIENTS.find((c) => c.id === 'kafkajs');
    if (k) await k.setup(); // kcat's topic is created with kafkajs
  }
  if (brokers.includes('kafka') || withTools) await ensureKafkaJars();
  if (brokers.includes('sluice')) await buildSluice();

  const results: Results = {};
  const toolResults: Record<string, Record<string, Cell>> = {};
  const av: Partial<Record<BrokerId, ApiVersionRange[]>> = {};
  const brokerInfo: Partial<Record<BrokerId, { version: string; notes: string[] }>> = {};
  for (const bid of brokers) {
    let b: BrokerHandle;
    try {
      b = bid === 'sluice' ? await startSluice() : await startReference();
    } catch (e) {
      progress(`${bid} did not start: ${(e as Error).message}`);
      const failed: Record<string, Record<string, Cell>> = {};
      for (const c of usable) {
        const rows: Record<string, Cell> = {};
        for (const r of ROWS) rows[r] = { status: 'fail', detail: `${bid} did not start`, ms: 0 };
        failed[c.id] = rows;
      }
      results[bid] = failed;
      continue;
    }
    progress(`${bid} ready on ${b.bootstrap} (${b.notes.join('; ')})`);
    brokerInfo[bid] = { version: b.version, notes: b.notes };
    try {
      av[bid] = await apiVersions(b.host, b.port);
      const byClient: Record<string, Record<string, Cell>> = {};
      results[bid] = byClient;
      for (const c of usable) {
        const rows: Record<string, Cell> = {};
        byClient[c.id] = rows;
        await runClient(c, b, rows);
      }
      if (withTools) {
        progress(`  ${bid}: Kafka ${KAFKA_VERSION} tools`);
        toolResults[bid] = await runTools(b.bootstrap, (row, cell) =>
          progress(
            `  ${bid.padEnd(6)} ${'kafka-tools'.padEnd(12)} ${row.padEnd(22)} ${cell.status.toUpperCase().padEnd(5)} ${(cell.ms / 1000).toFixed(1)}s  ${cell.detail.slice(0, 120)}`,
          ),
        );
      }
    } finally {
      progress(`stopping ${bid}`);
      await b.stop();
    }
  }
  placementRow(results);

  const elapsed = (Date.now() - started) / 1000;
  const text = matrixText(results, usable, brokers);
  process.stdout.write(`\n${text}`);
  if (withTools) {
    for (const row of TOOL_ROWS)
      process.stdout.write(
        `${`tool: ${row.title}`.padEnd(52)}${brokers.map((b) => (toolResults[b]?.[row.id]?.status ?? '?').replace('pass', 'ok').replace('fail', 'FAIL')).join(' / ')}\n`,
      );
  }
  for (const [id, n] of Object.entries(setupNotes))
    process.stdout.write(`not run: ${id}: ${n.split('\n')[0]}\n`);

  const summary = summarize(results, toolResults, brokers);
  const command = `npm run compat${process.argv.slice(2).length ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  writeFileSync(
    join(CACHE_DIR, 'last-run.json'),
    JSON.stringify(
      {
        date: new Date().toISOString(),
        command,
        elapsed,
        results,
        toolResults,
        apiVersions: av,
        brokerInfo,
        setupNotes,
      },
      null,
      2,
    ),
  );
  if (writeDoc) {
    const { renderDoc } = await import('./lib/doc.js');
    const names = apiKeyNames();
    await kafkaApiKeyNames(names);
    const md = renderDoc({
      results,
      toolResults,
      clients: usable,
      allClients: clients,
      setupNotes,
      brokers,
      brokerInfo,
      command,
      elapsed,
      matrix: markdownMatrix(results, usable, brokers),
      apiTable: apiTable(av, names),
      rowTitles: ROW_TITLES,
      rows: [...ROWS],
      diagnose,
      extraNotes: behaviourNotes(results, av, names),
    });
    writeFileSync(join(REPO_ROOT, 'docs', 'compatibility.md'), md);
    progress('wrote docs/compatibility.md');
  }
  process.stdout.write(`\ntook ${elapsed.toFixed(0)} s\n`);
  for (const u of summary.unexpected) process.stdout.write(`UNEXPECTED: ${u}\n`);
  if (summary.expectedFail)
    process.stdout.write(
      `${summary.expectedFail} Sluice failure(s) listed in compat/expected-failures.txt (not counted below)\n`,
    );
  process.stdout.write(
    `compat: ${summary.pass} passed, ${summary.fail} failed, ${summary.skipped} skipped\n`,
  );
  return summary.unexpected.length > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    console.error((e as Error).stack ?? String(e));
    process.exitCode = 2;
  },
);
