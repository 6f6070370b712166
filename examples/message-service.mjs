// A message service on Sluice, with kafkajs.
//
// POST /messages saves the message and answers at once (202); the slow work — notify the
// recipient, update analytics, run the fraud filter — happens afterwards, each in its own consumer
// group, so each sees every message and a slow one never delays the others or the sender.
//
// Run a broker (`npx sluice start`), then: node examples/message-service.mjs
// It serves on 127.0.0.1:8080, posts a few demo messages to itself, waits until all three groups
// have processed them, prints what each did, and exits. Options: --bootstrap HOST:PORT,
// --messages N, --serve (keep serving instead of exiting).

import http from 'node:http';
import { parseArgs } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';

const { values } = parseArgs({
  options: {
    bootstrap: { type: 'string', default: process.env.SLUICE_BOOTSTRAP_SERVER ?? '127.0.0.1:9092' },
    messages: { type: 'string', default: '20' },
    port: { type: 'string', default: '8080' },
    serve: { type: 'boolean', default: false },
  },
});
const total = Number(values.messages);
const TOPIC = 'messages';

const kafka = new Kafka({ clientId: 'message-service', brokers: [values.bootstrap], logLevel: logLevel.NOTHING });
const admin = kafka.admin();
await admin.connect();
await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 3 }] });
await admin.disconnect();

// The store the request path writes synchronously (a real service would use its database).
const saved = new Map();
const producer = kafka.producer({ idempotent: true });
await producer.connect();

const server = http.createServer((req, res) => {
  if (req.method !== 'POST' || req.url !== '/messages') {
    res.writeHead(404).end();
    return;
  }
  let body = '';
  req.on('data', (c) => {
    body += c;
  });
  req.on('end', async () => {
    const msg = JSON.parse(body);
    const id = `m${saved.size + 1}`;
    saved.set(id, msg);
    // Keyed by recipient: one user's messages stay in order for every group.
    await producer.send({ topic: TOPIC, acks: -1, messages: [{ key: msg.to, value: JSON.stringify({ id, ...msg }) }] });
    res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ id }));
  });
});
await new Promise((r) => server.listen(Number(values.port), '127.0.0.1', r));

const processed = { notifier: [], analytics: [], 'fraud-filter': [] };
const work = {
  notifier: async (m) => `notify ${m.to} (${m.to.length % 2 ? 'push' : 'e-mail'})`,
  analytics: async (m) => `count message from ${m.from}`,
  'fraud-filter': async (m) => (/free money/i.test(m.text) ? `FLAG ${m.id}` : `ok ${m.id}`),
};
const consumers = [];
for (const group of Object.keys(work)) {
  const consumer = kafka.consumer({ groupId: group, sessionTimeout: 10000 });
  await consumer.connect();
  await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const m = JSON.parse(message.value.toString());
      await new Promise((r) => setTimeout(r, 5)); // the slow part
      processed[group].push(await work[group](m));
    },
  });
  consumers.push(consumer);
}

const users = ['ana', 'bo', 'chen', 'dee'];
const t0 = Date.now();
for (let i = 0; i < total; i++) {
  const msg = { from: users[i % 4], to: users[(i + 1) % 4], text: i % 7 === 3 ? 'free money!' : `hello ${i}` };
  const started = Date.now();
  const res = await fetch(`http://127.0.0.1:${values.port}/messages`, { method: 'POST', body: JSON.stringify(msg) });
  if (res.status !== 202) throw new Error(`POST failed: ${res.status}`);
  if (i === 0) console.log(`first message answered in ${Date.now() - started} ms (saved + published; no waiting for the slow work)`);
}
console.log(`${total} messages accepted in ${Date.now() - t0} ms`);

if (!values.serve) {
  const deadline = Date.now() + 60000;
  while (Object.values(processed).some((p) => p.length < total)) {
    if (Date.now() > deadline) throw new Error(`timed out: ${JSON.stringify(Object.fromEntries(Object.entries(processed).map(([k, v]) => [k, v.length])))}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const [group, done] of Object.entries(processed)) {
    console.log(`${group}: processed ${done.length} messages, e.g. ${done.slice(0, 2).join('; ')}`);
  }
  console.log(`fraud-filter flagged ${processed['fraud-filter'].filter((s) => s.startsWith('FLAG')).length}`);
  for (const c of consumers) await c.disconnect();
  await producer.disconnect();
  server.close();
}
