/**
 * Prometheus metrics over HTTP (GET /metrics on metrics.listen, 127.0.0.1:9464 by default).
 *
 * The request path only adds to plain numbers here: counts by api and error, bytes in and out,
 * and a latency histogram per api (fixed buckets). They, and the gauges that describe the logs
 * (log end offsets, computed when scraped), are written in Prometheus's text format by this
 * module. prom-client supplies only the Node process metrics (`sluice_process_*`) and is loaded
 * on the first scrape, not at start: loading it was ~10 % of `sluice start`'s time
 * (docs/benchmarks.md, "Startup time"), and a broker nobody scrapes never needs it. So the
 * process metrics that count events (GC, event-loop delay) start at the first scrape.
 */

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { errorName } from '../protocol/errors.js';
import { ApiKey } from '../protocol/generated/index.js';
import type { DispatchObserver } from './dispatcher.js';

interface MetricsSource {
  topics: {
    list(): {
      meta: { name: string };
      partitions: ({ index: number; logEndOffset: number; logStartOffset: number } | undefined)[];
    }[];
  };
}

/** Upper bounds (seconds) of the request-duration histogram's buckets; +Inf is implied. */
export const LATENCY_BUCKETS = [
  0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** The content type of the Prometheus text exposition format, version 0.0.4. */
const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

interface RequestCount {
  labels: string;
  n: number;
}

interface Latency {
  api: string;
  /** Observations per bucket (not cumulative), then the +Inf overflow. */
  buckets: Float64Array;
  sum: number;
  count: number;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function header(out: string[], name: string, type: string, help: string): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
}

export class BrokerMetrics implements DispatchObserver {
  /** By api key and error code (null, 0 and negative codes apart; see onRequest). */
  private readonly requests = new Map<number, RequestCount>();
  /** The same counts by label text, so keys that share labels (null and 0) add up. */
  private readonly requestsByLabels = new Map<string, RequestCount>();
  private readonly latency = new Map<number, Latency>();
  private bytesIn = 0;
  private bytesOut = 0;
  private processRegistry?: Promise<Registry>;
  private server?: http.Server;

  constructor(private readonly source: MetricsSource) {}

  onRequest(
    apiKey: number,
    _v: number,
    errorCode: number | null,
    durationMs: number,
    bytesIn: number,
    bytesOut: number,
  ): void {
    const key = apiKey * 0x20000 + (errorCode === null ? 0x10000 : errorCode & 0xffff);
    let requests = this.requests.get(key);
    if (!requests) {
      const labels = `api="${ApiKey[apiKey] ?? String(apiKey)}",error="${errorCode === null ? 'NONE' : errorName(errorCode)}"`;
      requests = this.requestsByLabels.get(labels);
      if (!requests) {
        requests = { labels, n: 0 };
        this.requestsByLabels.set(labels, requests);
      }
      this.requests.set(key, requests);
    }
    requests.n++;
    this.bytesIn += bytesIn;
    this.bytesOut += bytesOut;
    let latency = this.latency.get(apiKey);
    if (!latency) {
      latency = {
        api: ApiKey[apiKey] ?? String(apiKey),
        buckets: new Float64Array(LATENCY_BUCKETS.length + 1),
        sum: 0,
        count: 0,
      };
      this.latency.set(apiKey, latency);
    }
    const seconds = durationMs / 1000;
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[i]!) i++;
    latency.buckets[i]!++;
    latency.sum += seconds;
    latency.count++;
  }

  /** Sluice's own metrics in the Prometheus text format (no process metrics; see render). */
  brokerText(): string {
    const out: string[] = [];
    header(out, 'sluice_requests_total', 'counter', 'Requests handled, by API and top-level error code');
    for (const r of this.requestsByLabels.values()) out.push(`sluice_requests_total{${r.labels}} ${r.n}`);
    header(out, 'sluice_bytes_in_total', 'counter', 'Request bytes received');
    out.push(`sluice_bytes_in_total ${this.bytesIn}`);
    header(out, 'sluice_bytes_out_total', 'counter', 'Response bytes sent');
    out.push(`sluice_bytes_out_total ${this.bytesOut}`);
    header(
      out,
      'sluice_request_duration_seconds',
      'histogram',
      'Time from a request decoded to its response encoded (Produce includes fsync for acks=all; Fetch includes long-poll waiting)',
    );
    for (const l of this.latency.values()) {
      const api = escapeLabel(l.api);
      let cumulative = 0;
      for (let i = 0; i <= LATENCY_BUCKETS.length; i++) {
        cumulative += l.buckets[i]!;
        const le = i < LATENCY_BUCKETS.length ? String(LATENCY_BUCKETS[i]) : '+Inf';
        out.push(`sluice_request_duration_seconds_bucket{le="${le}",api="${api}"} ${cumulative}`);
      }
      out.push(`sluice_request_duration_seconds_sum{api="${api}"} ${l.sum}`);
      out.push(`sluice_request_duration_seconds_count{api="${api}"} ${l.count}`);
    }
    const topics = this.source.topics.list();
    for (const [name, help, value] of [
      ['sluice_log_end_offset', 'Log end offset per partition', 'logEndOffset'],
      ['sluice_log_start_offset', 'Log start offset per partition', 'logStartOffset'],
    ] as const) {
      header(out, name, 'gauge', help);
      for (const t of topics) {
        const topic = escapeLabel(t.meta.name);
        for (const p of t.partitions)
          if (p) out.push(`${name}{topic="${topic}",partition="${p.index}"} ${p[value]}`);
      }
    }
    return `${out.join('\n')}\n`;
  }

  /** Everything GET /metrics answers: the process metrics (prom-client, loaded now if not yet), then Sluice's. */
  async render(): Promise<string> {
    this.processRegistry ??= import('prom-client').then((prom) => {
      const registry = new prom.Registry();
      prom.collectDefaultMetrics({ register: registry, prefix: 'sluice_process_' });
      return registry;
    });
    const processText = await (await this.processRegistry).metrics();
    return `${processText}${processText.endsWith('\n') ? '' : '\n'}${this.brokerText()}`;
  }

  listen(port: number, host: string): Promise<{ host: string; port: number }> {
    this.server = http.createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end('try /metrics\n');
        return;
      }
      this.render().then(
        (text) => {
          res.writeHead(200, { 'content-type': CONTENT_TYPE }).end(text);
        },
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
    });
    const server = this.server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        const a = server.address() as AddressInfo;
        resolve({ host: a.address, port: a.port });
      });
    });
  }

  close(): Promise<void> {
    const s = this.server;
    if (!s) return Promise.resolve();
    return new Promise((resolve) => s.close(() => resolve()));
  }
}
