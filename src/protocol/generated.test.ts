/**
 * Goal: the committed generated codec is exactly what the generator makes from Kafka's schemas.
 * Method: regenerate in memory and compare file by file. When ../shared/kafka-protocol is absent
 * (a checkout without the reference data) the test is skipped, loudly.
 */

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { defaultOutDir, defaultSpecDir, generateAll } from '../../scripts/generate-protocol.js';

const haveSpecs = existsSync(join(defaultSpecDir, 'message'));

test('generated protocol code is up to date with the Kafka schemas', { skip: haveSpecs ? false : `SKIPPED: no Kafka schemas at ${defaultSpecDir}` }, () => {
  const files = generateAll(defaultSpecDir);
  const committed = readdirSync(defaultOutDir).sort();
  assert.deepEqual(committed, files.map((f) => f.path).sort(), 'the set of generated files differs; run `npm run generate`');
  for (const f of files) {
    const onDisk = readFileSync(join(defaultOutDir, f.path), 'utf8');
    assert.ok(onDisk === f.content, `${f.path} is stale; run \`npm run generate\``);
  }
});

if (!haveSpecs) console.warn(`\n*** generated-code staleness test SKIPPED: ${defaultSpecDir} not found ***\n`);
