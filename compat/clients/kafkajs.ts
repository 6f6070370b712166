/**
 * The kafkajs 2.2.4 client program of the compatibility suite.
 *   node --import tsx compat/clients/kafkajs.ts --bootstrap 127.0.0.1:9092 --scenario produce --topic T
 * Prints one JSON line (see compat/lib/scenario.ts). Options: --group G (consume-group,
 * describe-group), --ts-base MS (offsets-by-time: the timestamp of record 0 written by produce).
 */

import kafkajs from 'kafkajs';
import {
  ALTER_CONFIG,
  DELETE_RECORDS_BEFORE,
  FIRST_CONSUMER_RECORDS,
  PARTITIONS,
  PLACEMENT_KEYS,
  RECORDS,
  type ScenarioResult,
  key,
  parseArgs,
  value,
} from '../lib/scenario.js';

const { ConfigResourceTypes, Kafka, logLevel, Partitioners } = kafkajs;
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const args = parseArgs(process.argv.slice(2));
const bootstrap = args.bootstrap ?? '127.0.0.1:9092';
const scenario = args.scenario ?? 'metadata';
const topic = args.topic ?? 'compat';
const groupId = args.group ?? `${topic}-group`;

const kafka = new Kafka({
  clientId: 'sluice-compat-kafkajs',
  brokers: [bootstrap],
  logLevel: logLevel.NOTHING,
  connectionTimeout: 5000,
  requestTimeout: 15000,
  retry: { retries: 3, initialRetryTime: 200 },
});

type Out = Omit<ScenarioResult, 'client' | 'scenario'>;
const withTimeout = <T>(p: Promise<T>, ms: number, what: string) =>
  Promise.race([
    p,
    new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`${what}: timed out after ${ms} ms`)), ms)),
  ]);

async function metadata(): Promise<Out> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const c = await admin.describeCluster();
    const topics = await admin.listTopics();
    const ok = c.brokers.length >= 1 && typeof c.clusterId === 'string' && c.clusterId.length > 0;
    return {
      ok,
      detail: `${c.brokers.length} broker(s), cluster ${c.clusterId}, controller ${c.controller}, ${topics.length} topic(s)`,
      data: { brokers: c.brokers, clusterId: c.clusterId, controller: c.controller },
    };
  } finally {
    await admin.disconnect();
  }
}

async function createTopic(): Promise<Out> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const created = await admin.createTopics({
      topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }],
      waitForLeaders: true,
    });
    const md = await admin.fetchTopicMetadata({ topics: [topic] });
    const n = md.topics[0]?.partitions.length ?? 0;
    const leaders = md.topics[0]?.partitions.every((p) => p.leader >= 0) ?? false;
    return {
      ok: created && n === PARTITIONS && leaders,
      detail: `created=${created}, ${n} partitions, all with a leader: ${leaders}`,
    };
  } finally {
    await admin.disconnect();
  }
}

async function produce(): Promise<Out> {
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  const tsBase = Date.now();
  const placement: number[] = [];
  let acked = 0;
  try {
    // The first PLACEMENT_KEYS records one per send, so the broker's answer says where each key went.
    for (let i = 0; i < PLACEMENT_KEYS; i++) {
      const md = await producer.send({
        topic,
        acks: -1,
        messages: [{ key: key(i), value: value(i), timestamp: String(tsBase + i) }],
      });
      placement.push(md[0]?.partition ?? -1);
      acked++;
    }
    for (let i = PLACEMENT_KEYS; i < RECORDS; i += 500) {
      const messages = [];
      for (let j = i; j < Math.min(RECORDS, i + 500); j++)
        messages.push({ key: key(j), value: value(j), timestamp: String(tsBase + j) });
      await producer.send({ topic, acks: -1, messages });
      acked += messages.length;
    }
  } finally {
    await producer.disconnect();
  }
  return {
    ok: acked === RECORDS,
    detail: `${acked} records acknowledged (idempotent, acks=all)`,
    data: { tsBase, placement, acked },
  };
}

interface Seen {
  keys: string[];
  next: Map<number, string>;
}

async function consumeOnce(limit: number, already: Set<string>, idleMs: number): Promise<Seen> {
  const consumer = kafka.consumer({
    groupId,
    sessionTimeout: 10000,
    heartbeatInterval: 1000,
    rebalanceTimeout: 10000,
    retry: { retries: 2 },
  });
  await consumer.connect();
  const seen: Seen = { keys: [], next: new Map() };
  let done = false;
  let lastActivity = Date.now();
  let resolveDone: () => void = () => {};
  const finished = new Promise<void>((r) => {
    resolveDone = r;
  });
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        if (done) return;
        lastActivity = Date.now();
        seen.keys.push(message.key?.toString() ?? '');
        seen.next.set(partition, (BigInt(message.offset) + 1n).toString());
        const union = new Set([...already, ...seen.keys]).size;
        if (seen.keys.length >= limit || union >= RECORDS) {
          done = true;
          resolveDone();
        }
      },
    });
    const idle = setInterval(() => {
      if (Date.now() - lastActivity > idleMs) {
        done = true;
        resolveDone();
      }
    }, 250);
    lastActivity = Date.now() + 10_000; // allow time for the first join
    await withTimeout(finished, 90_000, 'consume');
    clearInterval(idle);
    await consumer.commitOffsets([...seen.next].map(([partition, offset]) => ({ topic, partition, offset })));
  } finally {
    await consumer.disconnect();
  }
  return seen;
}

async function consumeGroup(): Promise<Out> {
  const first = await consumeOnce(FIRST_CONSUMER_RECORDS, new Set(), 8000);
  const firstKeys = new Set(first.keys);
  const second = await consumeOnce(RECORDS, firstKeys, 8000);
  const all = new Set([...first.keys, ...second.keys]);
  const duplicates = first.keys.length + second.keys.length - all.size;
  const lost = RECORDS - all.size;
  return {
    ok: lost === 0 && duplicates === 0 && first.keys.length === FIRST_CONSUMER_RECORDS,
    detail: `first consumer ${first.keys.length}, restarted consumer ${second.keys.length}, lost ${lost}, duplicates ${duplicates}`,
    data: { first: first.keys.length, second: second.keys.length, lost, duplicates },
  };
}

async function describeGroup(): Promise<Out> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { groups } = await admin.describeGroups([groupId]);
    const g = groups[0];
    const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
    const ends = await admin.fetchTopicOffsets(topic);
    let committedSum = 0;
    let lag = 0;
    for (const p of committed[0]?.partitions ?? []) {
      const end = Number(ends.find((e) => e.partition === p.partition)?.high ?? 0);
      const off = Number(p.offset);
      if (off >= 0) committedSum += off;
      lag += end - Math.max(off, 0);
    }
    const ok =
      g !== undefined &&
      g.state === 'Empty' &&
      g.protocolType === 'consumer' &&
      committedSum === RECORDS &&
      lag === 0;
    return {
      ok,
      detail: `state ${g?.state}, protocolType ${g?.protocolType}, ${g?.members.length} member(s), committed ${committedSum}, lag ${lag}`,
      data: { state: g?.state, committedSum, lag },
    };
  } finally {
    await admin.disconnect();
  }
}

async function offsetsByTime(): Promise<Out> {
  const tsBase = Number(args['ts-base']);
  if (!Number.isFinite(tsBase)) return { ok: false, detail: '--ts-base missing (produce did not run)' };
  const admin = kafka.admin();
  await admin.connect();
  try {
    const mid = RECORDS / 2;
    const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, tsBase + mid);
    const ends = await admin.fetchTopicOffsets(topic);
    let atOrAfter = 0;
    let earliestSum = 0;
    let latestSum = 0;
    for (const e of ends) {
      const o = Number(byTime.find((b) => b.partition === e.partition)?.offset ?? -1);
      atOrAfter += Number(e.high) - o;
      earliestSum += Number(e.low);
      latestSum += Number(e.high);
    }
    const ok = atOrAfter === RECORDS - mid && earliestSum === 0 && latestSum === RECORDS;
    return {
      ok,
      detail: `records at or after ts(record ${mid}): ${atOrAfter} (want ${RECORDS - mid}); earliest sum ${earliestSum}, latest sum ${latestSum}`,
    };
  } finally {
    await admin.disconnect();
  }
}

async function configs(): Promise<Out> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: ConfigResourceTypes.TOPIC,
          name: topic,
          configEntries: [{ name: ALTER_CONFIG.name, value: ALTER_CONFIG.value }],
        },
      ],
    });
    const d = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }],
    });
    const entries = d.resources[0]?.configEntries ?? [];
    const set = entries.find((e) => e.configName === ALTER_CONFIG.name);
    const seg = entries.find((e) => e.configName === 'segment.bytes');
    // configSource 1 = DYNAMIC_TOPIC_CONFIG
    const ok =
      d.resources[0]?.errorCode === 0 &&
      set?.configValue === ALTER_CONFIG.value &&
      set?.configSource === 1 &&
      seg !== undefined &&
      seg.isDefault;
    return {
      ok,
      detail: `${entries.length} entries; ${ALTER_CONFIG.name}=${set?.configValue} (source ${set?.configSource}); segment.bytes=${seg?.configValue} (default ${seg?.isDefault}, source ${seg?.configSource})`,
    };
  } finally {
    await admin.disconnect();
  }
}

async function deleteRecords(): Promise<Out> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.fetchTopicMetadata({ topics: [topic] }); // kafkajs needs the topic's metadata loaded first
    await admin.deleteTopicRecords({
      topic,
      partitions: [{ partition: 0, offset: String(DELETE_RECORDS_BEFORE) }],
    });
    const o = await admin.fetchTopicOffsets(topic);
    const p0 = o.find((x) => x.partition === 0);
    const ok = Number(p0?.low) === DELETE_RECORDS_BEFORE;
    return {
      ok,
      detail: `partition 0 log start offset ${p0?.low} (want ${DELETE_RECORDS_BEFORE}), end ${p0?.high}`,
    };
  } finally {
    await admin.disconnect();
  }
}

async function deleteTopic(): Promise<Out> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.deleteTopics({ topics: [topic], timeout: 10000 });
    const deadline = Date.now() + 10_000;
    let listed = true;
    while (Date.now() < deadline) {
      listed = (await admin.listTopics()).includes(topic);
      if (!listed) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    return {
      ok: !listed,
      detail: listed ? 'topic still listed 10 s after DeleteTopics' : 'deleted; no longer listed',
    };
  } finally {
    await admin.disconnect();
  }
}

const scenarios: Record<string, () => Promise<Out>> = {
  metadata,
  'create-topic': createTopic,
  produce,
  'consume-group': consumeGroup,
  'describe-group': describeGroup,
  'offsets-by-time': offsetsByTime,
  configs,
  'delete-records': deleteRecords,
  'delete-topic': deleteTopic,
};

async function main(): Promise<void> {
  const fn = scenarios[scenario];
  let out: Out;
  if (!fn) out = { ok: false, na: true, detail: `unknown scenario ${scenario}` };
  else {
    try {
      out = await withTimeout(fn(), 240_000, scenario);
    } catch (e) {
      const err = e as Error & { type?: string };
      out = { ok: false, detail: `${err.name}${err.type ? ` ${err.type}` : ''}: ${err.message}` };
    }
  }
  const res: ScenarioResult = { client: 'kafkajs', scenario, ...out };
  process.stdout.write(`${JSON.stringify(res)}\n`);
  process.exit(0);
}

main();
