/**
 * Apache Kafka's own command-line tools (kafka-tools 4.4.0 jars, run as `java -cp libs/* CLASS`)
 * against a broker: kafka-topics, kafka-console-producer/consumer and kafka-consumer-groups.
 */

import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KAFKA_HOME, kafkaClasspath } from '../kafka-reference.js';
import { type Cell, murmur2Partition } from './scenario.js';
import { run, sleep } from './util.js';

export const TOOL_ROWS = [
  { id: 'topics-create', title: 'kafka-topics --create' },
  { id: 'topics-describe', title: 'kafka-topics --describe' },
  { id: 'topics-list', title: 'kafka-topics --list' },
  { id: 'console-producer', title: 'kafka-console-producer' },
  { id: 'console-consumer', title: 'kafka-console-consumer --partition' },
  { id: 'console-consumer-group', title: 'kafka-console-consumer --group' },
  { id: 'consumer-groups', title: 'kafka-consumer-groups --describe' },
  { id: 'topics-delete', title: 'kafka-topics --delete' },
] as const;

const CLASSES = {
  topics: 'org.apache.kafka.tools.TopicCommand',
  producer: 'org.apache.kafka.tools.ConsoleProducer',
  consumer: 'org.apache.kafka.tools.consumer.ConsoleConsumer',
  groups: 'org.apache.kafka.tools.consumer.group.ConsumerGroupCommand',
};

const TOOLS_LOG4J2 = `status = warn
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = STDERR
`;

const RECORDS = 100;
const PARTITIONS = 3;

async function tool(cls: string, args: string[], input?: string, timeoutMs = 60_000) {
  const cfg = join(KAFKA_HOME, 'tools-log4j2.properties');
  if (!existsSync(cfg)) writeFileSync(cfg, TOOLS_LOG4J2);
  return run(
    'java',
    [
      '-Xmx256m',
      '-XX:TieredStopAtLevel=1',
      `-Dlog4j2.configurationFile=${cfg}`,
      '-cp',
      kafkaClasspath(),
      cls,
      ...args,
    ],
    { timeoutMs, input },
  );
}

const clip = (s: string) => s.replace(/\s+/g, ' ').trim().slice(0, 400);

export async function runTools(
  bootstrap: string,
  onCell: (row: string, cell: Cell) => void,
): Promise<Record<string, Cell>> {
  const out: Record<string, Cell> = {};
  const suffix = Math.random().toString(36).slice(2, 8);
  const topic = `compat-tools-${suffix}`;
  const group = `compat-tools-${suffix}-group`;
  const bs = ['--bootstrap-server', bootstrap];
  const record = (row: string, cell: Cell) => {
    out[row] = cell;
    onCell(row, cell);
  };
  const needs = (row: string, deps: string[]) => {
    const missing = deps.filter((d) => out[d]?.status !== 'pass');
    if (missing.length) {
      record(row, { status: 'skip', detail: `needs ${missing.join(', ')}`, ms: 0 });
      return false;
    }
    return true;
  };

  let r = await tool(CLASSES.topics, [
    ...bs,
    '--create',
    '--topic',
    topic,
    '--partitions',
    String(PARTITIONS),
    '--replication-factor',
    '1',
  ]);
  record('topics-create', {
    status: r.code === 0 && /Created topic/.test(r.stdout) ? 'pass' : 'fail',
    detail: clip(r.code === 0 ? r.stdout : `exit ${r.code}: ${r.stdout} ${r.stderr}`),
    ms: r.ms,
    stderr: r.stderr.slice(-3000),
  });

  if (needs('topics-describe', ['topics-create'])) {
    let ok = false;
    for (let i = 0; i < 10 && !ok; i++) {
      r = await tool(CLASSES.topics, [...bs, '--describe', '--topic', topic]);
      ok =
        r.code === 0 &&
        new RegExp(`PartitionCount:\\s*${PARTITIONS}`).test(r.stdout) &&
        (r.stdout.match(/Partition: \d+/g) ?? []).length === PARTITIONS;
      if (!ok) await sleep(500);
    }
    record('topics-describe', {
      status: ok ? 'pass' : 'fail',
      detail: clip(r.code === 0 ? r.stdout : `exit ${r.code}: ${r.stdout} ${r.stderr}`),
      ms: r.ms,
      stderr: r.stderr.slice(-3000),
    });
  }

  r = await tool(CLASSES.topics, [...bs, '--list']);
  const listed = r.stdout.split('\n').map((l) => l.trim());
  record('topics-list', {
    status:
      r.code === 0 && (out['topics-create']?.status !== 'pass' || listed.includes(topic)) ? 'pass' : 'fail',
    detail: clip(
      r.code === 0
        ? `${listed.filter(Boolean).length} topic(s) listed${listed.includes(topic) ? `, including ${topic}` : ''}`
        : `exit ${r.code}: ${r.stderr}`,
    ),
    ms: r.ms,
    stderr: r.stderr.slice(-3000),
  });

  if (needs('console-producer', ['topics-create'])) {
    const input = Array.from({ length: RECORDS }, (_, i) => `k${i}:v${i}`).join('\n');
    r = await tool(
      CLASSES.producer,
      [
        ...bs,
        '--topic',
        topic,
        '--reader-property',
        'parse.key=true',
        '--reader-property',
        'key.separator=:',
        '--producer-property',
        'acks=all',
      ],
      `${input}\n`,
    );
    const ok = r.code === 0 && !/ERROR|Exception/.test(r.stderr);
    record('console-producer', {
      status: ok ? 'pass' : 'fail',
      detail: ok ? `${RECORDS} keyed lines sent` : clip(`exit ${r.code}: ${r.stdout} ${r.stderr}`),
      ms: r.ms,
      stderr: r.stderr.slice(-3000),
    });
  }

  if (needs('console-consumer', ['console-producer'])) {
    const want = Array.from({ length: RECORDS }, (_, i) => `k${i}`).filter(
      (k) => murmur2Partition(k, PARTITIONS) === 0,
    ).length;
    r = await tool(CLASSES.consumer, [
      ...bs,
      '--topic',
      topic,
      '--partition',
      '0',
      '--offset',
      'earliest',
      '--max-messages',
      String(want),
      '--timeout-ms',
      '20000',
      '--formatter-property',
      'print.key=true',
    ]);
    const lines = r.stdout.split('\n').filter((l) => /^k\d+\s+v\d+$/.test(l.trim()));
    const ok = lines.length === want;
    record('console-consumer', {
      status: ok ? 'pass' : 'fail',
      detail: `${lines.length} of the ${want} records of partition 0 printed${ok ? '' : `; exit ${r.code}: ${clip(r.stderr)}`}`,
      ms: r.ms,
      stderr: r.stderr.slice(-3000),
    });
  }

  if (needs('console-consumer-group', ['console-producer'])) {
    r = await tool(
      CLASSES.consumer,
      [
        ...bs,
        '--topic',
        topic,
        '--group',
        group,
        '--from-beginning',
        '--max-messages',
        String(RECORDS),
        '--timeout-ms',
        '30000',
        '--formatter-property',
        'print.key=true',
      ],
      undefined,
      90_000,
    );
    const lines = r.stdout.split('\n').filter((l) => /^k\d+\s+v\d+$/.test(l.trim()));
    const ok = lines.length === RECORDS;
    record('console-consumer-group', {
      status: ok ? 'pass' : 'fail',
      detail: `${lines.length} of ${RECORDS} records printed${ok ? '' : `; exit ${r.code}: ${clip(r.stderr)}`}`,
      ms: r.ms,
      stderr: r.stderr.slice(-3000),
    });
  }

  if (needs('consumer-groups', ['console-consumer-group'])) {
    r = await tool(CLASSES.groups, [...bs, '--describe', '--group', group]);
    const rows = r.stdout.split('\n').filter((l) => l.includes(topic));
    const lagZero = rows.filter((l) => /\s0\s+\S+\s+\S+\s+\S+\s*$|\s0\s+-\s+-\s+-\s*$/.test(l)).length;
    const ok = r.code === 0 && rows.length === PARTITIONS;
    record('consumer-groups', {
      status: ok ? 'pass' : 'fail',
      detail: ok
        ? `${rows.length} partition rows for ${topic}; ${lagZero} with LAG 0`
        : clip(`exit ${r.code}: ${r.stdout} ${r.stderr}`),
      ms: r.ms,
      stderr: r.stderr.slice(-3000),
    });
  }

  if (needs('topics-delete', ['topics-create'])) {
    r = await tool(CLASSES.topics, [...bs, '--delete', '--topic', topic]);
    let gone = false;
    if (r.code === 0) {
      for (let i = 0; i < 10 && !gone; i++) {
        const l = await tool(CLASSES.topics, [...bs, '--list']);
        gone =
          l.code === 0 &&
          !l.stdout
            .split('\n')
            .map((x) => x.trim())
            .includes(topic);
        if (!gone) await sleep(500);
      }
    }
    record('topics-delete', {
      status: gone ? 'pass' : 'fail',
      detail: gone ? 'deleted; no longer listed' : clip(`exit ${r.code}: ${r.stdout} ${r.stderr}`),
      ms: r.ms,
      stderr: r.stderr.slice(-3000),
    });
  }
  return out;
}
