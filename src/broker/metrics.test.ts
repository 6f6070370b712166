/**
 * Goal: the request counters and latency histogram count every request under the right labels
 * with the labelled children cached per api key and error code (null, 0 and negative codes apart).
 * Method: a BrokerMetrics without a listener; onRequest calls; the registry's text output.
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
  const text = await m.registry.metrics();
  assert.match(text, /sluice_requests_total\{api="Produce",error="NONE"\} 2\n/);
  assert.match(text, /sluice_requests_total\{api="Produce",error="UNKNOWN_SERVER_ERROR"\} 2\n/);
  assert.match(text, /sluice_requests_total\{api="Fetch",error="NONE"\} 1\n/);
  assert.match(text, /sluice_request_duration_seconds_count\{api="Produce"\} 4\n/);
  assert.match(text, /sluice_request_duration_seconds_count\{api="Fetch"\} 1\n/);
  assert.match(text, /sluice_bytes_in_total 450\n/);
});
