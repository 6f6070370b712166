/**
 * Goal: the programs in examples/ keep working against Sluice, and show what they claim: three
 * groups each process every message of the message service; one group's members each see their
 * drivers' pings in order.
 * Method: a real broker process; each example runs as a child process with --bootstrap; its exit
 * code and summary lines are checked.
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { promisify } from 'node:util';
import { BrokerProcess, REPO_ROOT, freePort } from './helpers/broker-process.js';

const run = promisify(execFile);
let broker: BrokerProcess;

before(async () => {
  broker = await BrokerProcess.start({ set: ['group.initial.rebalance.delay.ms=0'] });
});

after(async () => {
  await broker.destroy();
});

it('message service: every group processes every message', { timeout: 120_000 }, async () => {
  const port = await freePort();
  const { stdout } = await run(
    process.execPath,
    [
      join(REPO_ROOT, 'examples/message-service.mjs'),
      '--bootstrap',
      broker.bootstrap,
      '--messages',
      '14',
      '--port',
      String(port),
    ],
    { timeout: 110_000 },
  );
  for (const group of ['notifier', 'analytics', 'fraud-filter']) {
    assert.match(stdout, new RegExp(`${group}: processed 14 messages`));
  }
  assert.match(stdout, /fraud-filter flagged 2/);
});

it('driver locations: pings arrive in order per driver', { timeout: 120_000 }, async () => {
  const { stdout } = await run(
    process.execPath,
    [
      join(REPO_ROOT, 'examples/driver-locations.mjs'),
      '--bootstrap',
      broker.bootstrap,
      '--drivers',
      '8',
      '--pings',
      '20',
    ],
    { timeout: 110_000 },
  );
  assert.match(stdout, /160 pings from 8 drivers; out of order: 0;/);
  assert.match(stdout, /^member \d+: /m);
});
