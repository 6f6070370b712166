/**
 * Goal: the request counters and latency histogram count every request under the right labels
 * (null and 0 error codes both as NONE, negative codes apart), the histogram's buckets are
 * cumulative, the log gauges follow the partitions, and the process metrics join them on a
 * scrape (prom-client, loaded then).
 * Method: a BrokerMetrics without a listener; onRequest calls; its text output.
 */

import assert from 'node:assert/strict';
import { it } from 'node:test';
import { ErrorCode } from '../protocol/errors.js';
import { ApiKey } from '../protocol/generated/index.js';
import { BrokerMetrics } from './metrics.js';

it('counts requests by api and error, and observes latency by api', async () => {
  const m = new BrokerMetrics({ topics: { list: () => [] } });
  m.onRequest(ApiKey.Produce, 9, null, 1, 100, 10);
  m.onRequest(ApiKey.Produce, 9, 0, 1, 100, 10);
  m.onRequest(ApiKey.Produce, 9, ErrorCode.UNKNOWN_SERVER_ERROR, 1, 100, 10);
  m.onRequest(ApiKey.Produce, 9, ErrorCode.UNKNOWN_SERVER_ERROR, 1, 100, 10);
  m.onRequest(ApiKey.Fetch, 12, null, 2, 50, 5000);
  const text = await m.render();
  assert.match(text, /sluice_requests_total\{api="Produce",error="NONE"\} 2\n/);
  assert.match(text, /sluice_requests_total\{api="Produce",error="UNKNOWN_SERVER_ERROR"\} 2\n/);
  assert.match(text, /sluice_requests_total\{api="Fetch",error="NONE"\} 1\n/);
  assert.match(text, /sluice_request_duration_seconds_count\{api="Produce"\} 4\n/);
  assert.match(text, /sluice_request_duration_seconds_count\{api="Fetch"\} 1\n/);
  assert.match(text, /sluice_bytes_in_total 450\n/);
});

it('writes cumulative histogram buckets and per-partition log gauges, and the process metrics', async () => {
  const m = new BrokerMetrics({
    topics: {
      list: () => [
        {
          meta: { name: 'orders' },
          partitions: [
            { index: 0, logEndOffset: 42, logStartOffset: 7 },
            undefined,
            { index: 2, logEndOffset: 5, logStartOffset: 0 },
          ],
        },
      ],
    },
  });
  // 0.3 ms, 0.3 ms, 3 ms and 20 s: buckets le=0.0005 holds 2, le=0.005 holds 3, +Inf all 4.
  for (const ms of [0.3, 0.3, 3, 20_000]) m.onRequest(ApiKey.Metadata, 12, 0, ms, 10, 20);
  const text = m.brokerText();
  assert.match(text, /sluice_request_duration_seconds_bucket\{le="0.0001",api="Metadata"\} 0\n/);
  assert.match(text, /sluice_request_duration_seconds_bucket\{le="0.0005",api="Metadata"\} 2\n/);
  assert.match(text, /sluice_request_duration_seconds_bucket\{le="0.005",api="Metadata"\} 3\n/);
  assert.match(text, /sluice_request_duration_seconds_bucket\{le="10",api="Metadata"\} 3\n/);
  assert.match(text, /sluice_request_duration_seconds_bucket\{le="\+Inf",api="Metadata"\} 4\n/);
  assert.match(text, /sluice_request_duration_seconds_count\{api="Metadata"\} 4\n/);
  const sum = Number(/sluice_request_duration_seconds_sum\{api="Metadata"\} (\S+)\n/.exec(text)?.[1]);
  assert.ok(Math.abs(sum - 20.0036) < 1e-9, `sum ${sum}`);
  assert.match(text, /sluice_bytes_out_total 80\n/);
  assert.match(text, /sluice_log_end_offset\{topic="orders",partition="0"\} 42\n/);
  assert.match(text, /sluice_log_end_offset\{topic="orders",partition="2"\} 5\n/);
  assert.match(text, /sluice_log_start_offset\{topic="orders",partition="0"\} 7\n/);
  assert.doesNotMatch(text, /partition="1"/);
  // Every sample line belongs to a family declared by # TYPE (what a Prometheus parser requires).
  const families = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((x) => x[1]));
  for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) {
    const name = line.split(/[{ ]/)[0]!.replace(/_(bucket|sum|count)$/, '');
    assert.ok(families.has(name) || families.has(line.split(/[{ ]/)[0]!), `no # TYPE for ${line}`);
  }
  const all = await m.render();
  assert.match(all, /^# HELP sluice_process_/m);
  assert.match(all, /sluice_process_process_resident_memory_bytes \d+/);
  assert.ok(all.endsWith(text), 'the broker metrics follow the process metrics');
});
