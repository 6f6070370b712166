/**
 * Apache Kafka's own command-line tools (kafka-tools 4.4.0 jars, run as `java -cp libs/* CLASS`)
 * against a broker: kafka-topics, kafka-console-producer/consumer and kafka-consumer-groups.
 */

import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
  { id: 'consumer-groups-list', title: 'kafka-consumer-groups --list' },
  { id: 'configs-alter', title: 'kafka-configs --alter --add-config' },
  { id: 'configs-describe', title: 'kafka-configs --describe' },
  { id: 'get-offsets', title: 'kafka-get-offsets' },
  { id: 'delete-records', title: 'kafka-delete-records' },
  { id: 'consumer-groups-reset', title: 'kafka-consumer-groups --reset-offsets' },
  { id: 'consumer-groups-delete', title: 'kafka-consumer-groups --delete' },
  { id: 'producer-perf', title: 'kafka-producer-perf-test' },
  { id: 'consumer-perf', title: 'kafka-consumer-perf-test' },
  { id: 'topics-delete', title: 'kafka-topics --delete' },
] as const;

const CLASSES = {
  topics: 'org.apache.kafka.tools.TopicCommand',
  producer: 'org.apache.kafka.tools.ConsoleProducer',
  consumer: 'org.apache.kafka.tools.consumer.ConsoleConsumer',
  groups: 'org.apache.kafka.tools.consumer.group.ConsumerGroupCommand',
  configs: 'org.apache.kafka.tools.ConfigCommand',
  offsets: 'org.apache.kafka.tools.GetOffsetShell',
  deleteRecords: 'org.apache.kafka.tools.DeleteRecordsCommand',
  producerPerf: 'org.apache.kafka.tools.ProducerPerformance',
  consumerPerf: 'org.apache.kafka.tools.ConsumerPerformance',
};
const PERF_RECORDS = 50_000;

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

  const fail = (r: Awaited<ReturnType<typeof tool>>) => clip(`exit ${r.code}: ${r.stdout} ${r.stderr}`);
  if (needs('consumer-groups-list', ['console-consumer-group'])) {
    r = await tool(CLASSES.groups, [...bs, '--list']);
    const ok =
      r.code === 0 &&
      r.stdout
        .split('\n')
        .map((l) => l.trim())
        .includes(group);
    record('consumer-groups-list', {
      status: ok ? 'pass' : 'fail',
      detail: ok ? `lists ${group}` : fail(r),
      ms: r.ms,
      stderr: r.stderr.slice(-3000),
    });
  }

  if (needs('configs-alter', ['topics-create'])) {
    r = await tool(CLASSES.configs, [
      ...bs,
      '--entity-type',
      'topics',
      '--entity-name',
      topic,
      '--alter',
      '--add-config',
      'retention.ms=86400000,max.message.bytes=2000000',
    ]);
    const ok = r.code === 0 && /Completed updating config/i.test(r.stdout);
    record('configs-alter', {
      status: ok ? 'pass' : 'fail',
      detail: ok ? clip(r.stdout) : fail(r),
      ms: r.ms,
      stderr: r.stderr.slice(-3000),
    });
  }
  if (needs('configs-describe', ['configs-alter'])) {
    r = await tool(CLASSES.configs, [...bs, '--entity-type', 'topics', '--entity-name', topic, '--describe']);
    const ok =
      r.code === 0 && /retention\.ms=86400000/.test(r.stdout) && /max\.message\.bytes=2000000/.test(r.stdout);
    record('configs-describe', {
      status: ok ? 'pass' : 'fail',
      detail: ok ? clip(r.stdout) : fail(r),
      ms: r.ms,
      stderr: r.stderr.slice(-3000),
    });
  }

  if (needs('get-offsets', ['console-producer'])) {
    r = await tool(CLASSES.offsets, [...bs, '--topic', topic, '--time', '-1']);
    const rows = r.stdout
      .split('\n')
      .map((l) => /^(.+):(\d+):(\d+)$/.exec(l.trim()))
      .filter((m) => m !== null);
    const sum = rows.reduce((a, m) => a + Number(m?.[3] ?? 0), 0);
    const ok = r.code === 0 && rows.length === PARTITIONS && sum === RECORDS;
    record('get-offsets', {
      status: ok ? 'pass' : 'fail',
      detail: ok ? `${rows.length} partitions, latest offsets sum to ${sum}` : fail(r),
      ms: r.ms,
      stderr: r.stderr.slice(-3000),
    });
  }

  if (needs('delete-records', ['console-producer'])) {
    const f = join(tmpdir(), `${topic}-delete-records.json`);
    writeFileSync(f, JSON.stringify({ version: 1, partitions: [{ topic, partition: 0, offset: 5 }] }));
    r = await tool(CLASSES.deleteRecords, [...bs, '--offset-json-file', f]);
    rmSync(f, { force: true });
    const ok = r.code === 0 && /low_watermark: 5/.test(r.stdout);
    record('delete-records', {
      status: ok ? 'pass' : 'fail',
      detail: ok ? clip(r.stdout) : fail(r),
      ms: r.ms,
      stderr: r.stderr.slice(-3000),
    });
  }

  if (needs('consumer-groups-reset', ['console-consumer-group'])) {
    r = await tool(CLASSES.groups, [
      ...bs,
      '--reset-offsets',
      '--group',
      group,
      '--topic',
      topic,
      '--to-earliest',
      '--execute',
    ]);
    const rows = r.stdout.split('\n').filter((l) => l.includes(topic));
    let ok = r.code === 0 && rows.length === PARTITIONS;
    let detail = ok ? `${rows.length} partitions reset to earliest` : fail(r);
    if (ok) {
      const d = await tool(CLASSES.groups, [...bs, '--describe', '--group', group]);
      // GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG ...
      const lag = d.stdout
        .split('\n')
        .filter((l) => l.includes(topic))
        .reduce((a, l) => a + (Number(l.trim().split(/\s+/)[5]) || 0), 0);
      const want = out['delete-records']?.status === 'pass' ? RECORDS - 5 : RECORDS;
      ok = lag === want;
      detail += `; describe then shows total lag ${lag} (want ${want})`;
    }
    record('consumer-groups-reset', {
      status: ok ? 'pass' : 'fail',
      detail,
      ms: r.ms,
      stderr: r.stderr.slice(-3000),
    });
  }

  if (needs('consumer-groups-delete', ['console-consumer-group'])) {
    r = await tool(CLASSES.groups, [...bs, '--delete', '--group', group]);
    const ok = r.code === 0 && /successful/i.test(r.stdout);
    record('consumer-groups-delete', {
      status: ok ? 'pass' : 'fail',
      detail: ok ? clip(r.stdout) : fail(r),
      ms: r.ms,
      stderr: r.stderr.slice(-3000),
    });
  }

  if (needs('producer-perf', ['topics-create'])) {
    r = await tool(
      CLASSES.producerPerf,
      [
        '--topic',
        topic,
        '--num-records',
        String(PERF_RECORDS),
        '--record-size',
        '100',
        '--throughput',
        '-1',
        '--producer-props',
        `bootstrap.servers=${bootstrap}`,
        'acks=all',
        'linger.ms=5',
      ],
      undefined,
      120_000,
    );
    const last = r.stdout.trim().split('\n').pop() ?? '';
    const ok = r.code === 0 && new RegExp(`^${PERF_RECORDS} records sent`).test(last);
    record('producer-perf', {
      status: ok ? 'pass' : 'fail',
      detail: ok ? clip(last) : fail(r),
      ms: r.ms,
      stderr: r.stderr.slice(-3000),
    });
  }
  if (needs('consumer-perf', ['producer-perf'])) {
    r = await tool(
      CLASSES.consumerPerf,
      [
        ...bs,
        '--topic',
        topic,
        '--messages',
        String(PERF_RECORDS),
        '--timeout',
        '30000',
        '--group',
        `${group}-perf`,
      ],
      undefined,
      120_000,
    );
    // start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, ...
    const row = r.stdout
      .trim()
      .split('\n')
      .pop()
      ?.split(',')
      .map((x) => x.trim());
    const n = Number(row?.[4]);
    const ok = r.code === 0 && n >= PERF_RECORDS;
    record('consumer-perf', {
      status: ok ? 'pass' : 'fail',
      detail: ok ? `${n} records, ${row?.[3]} MB/s, ${row?.[5]} records/s` : fail(r),
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
