// Driver locations on Sluice, with kafkajs: pings keyed by driver id, read by one consumer group.
//
// Each driver's pings carry a sequence number. Keyed by driver id, all pings of one driver land in
// one partition (murmur2(key) % partitions), so whichever group member owns that partition sees
// that driver's pings in the order they were sent — which is what drawing a path on a map needs.
// The program checks exactly that and prints which member got which drivers.
//
// Run a broker (`npx sluice start`), then: node examples/driver-locations.mjs
// Options: --bootstrap HOST:PORT, --drivers N, --pings N (per driver), --members N.

import { parseArgs } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';

const { values } = parseArgs({
  options: {
    bootstrap: { type: 'string', default: process.env.SLUICE_BOOTSTRAP_SERVER ?? '127.0.0.1:9092' },
    drivers: { type: 'string', default: '12' },
    pings: { type: 'string', default: '50' },
    members: { type: 'string', default: '3' },
  },
});
const drivers = Number(values.drivers);
const pings = Number(values.pings);
const members = Number(values.members);
const TOPIC = 'driver-locations';

const kafka = new Kafka({ clientId: 'driver-locations', brokers: [values.bootstrap], logLevel: logLevel.NOTHING });
const admin = kafka.admin();
await admin.connect();
await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 6 }] });
await admin.disconnect();

const lastSeq = new Map(); // driver -> last sequence seen
const byMember = new Map(); // member -> Set of drivers
let received = 0;
let outOfOrder = 0;
let redelivered = 0;
const consumers = [];
for (let m = 0; m < members; m++) {
  const consumer = kafka.consumer({ groupId: 'map-tracker', sessionTimeout: 10000 });
  await consumer.connect();
  await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message, partition }) => {
      const ping = JSON.parse(message.value.toString());
      const prev = lastSeq.get(ping.driver) ?? -1;
      // A ping after a gap is out of order. A ping at or before the last one is a redelivery
      // (a rebalance moved the partition before its offset was committed): at-least-once, in order.
      if (ping.seq > prev + 1) outOfOrder++;
      if (ping.seq <= prev) redelivered++;
      else received++;
      lastSeq.set(ping.driver, Math.max(prev, ping.seq));
      if (!byMember.has(m)) byMember.set(m, new Set());
      byMember.get(m).add(`${ping.driver}@p${partition}`);
    },
  });
  consumers.push(consumer);
}

const producer = kafka.producer({ idempotent: true });
await producer.connect();
for (let seq = 0; seq < pings; seq++) {
  const messages = [];
  for (let d = 0; d < drivers; d++) {
    const driver = `driver-${d}`;
    messages.push({ key: driver, value: JSON.stringify({ driver, seq, lat: 12.9 + d / 100, lng: 77.5 + seq / 1000 }) });
  }
  await producer.send({ topic: TOPIC, acks: -1, messages });
}

const deadline = Date.now() + 60000;
while (received < drivers * pings) {
  if (Date.now() > deadline) throw new Error(`timed out after ${received} of ${drivers * pings} pings`);
  await new Promise((r) => setTimeout(r, 100));
}
for (const [m, ds] of [...byMember].sort((a, b) => a[0] - b[0])) {
  console.log(`member ${m}: ${[...ds].sort().join(' ')}`);
}
console.log(`${received} pings from ${drivers} drivers; out of order: ${outOfOrder}; redelivered after rebalances: ${redelivered}`);
for (const c of consumers) await c.disconnect();
await producer.disconnect();
process.exitCode = outOfOrder === 0 ? 0 : 1;
