/**
 * Prometheus metrics over HTTP (GET /metrics on metrics.listen, 127.0.0.1:9464 by default).
 *
 * Counters and histograms are updated on the request path; gauges that describe the logs (log
 * end offsets, sizes) are computed when scraped, so the hot path pays nothing for them.
 */

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
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

export class BrokerMetrics implements DispatchObserver {
  readonly registry = new Registry();
  private readonly requests: Counter<'api' | 'error'>;
  private readonly bytesIn: Counter;
  private readonly bytesOut: Counter;
  private readonly latency: Histogram<'api'>;
  /**
   * The labelled children used on the request path, by api key (and error code): prom-client
   * hashes a label object on every inc/observe otherwise.
   */
  private readonly requestChildren = new Map<number, { inc(): void }>();
  private readonly latencyChildren = new Map<number, { observe(v: number): void }>();
  private server?: http.Server;

  constructor(source: MetricsSource) {
    collectDefaultMetrics({ register: this.registry, prefix: 'sluice_process_' });
    this.requests = new Counter({
      name: 'sluice_requests_total',
      help: 'Requests handled, by API and top-level error code',
      labelNames: ['api', 'error'],
      registers: [this.registry],
    });
    this.bytesIn = new Counter({
      name: 'sluice_bytes_in_total',
      help: 'Request bytes received',
      registers: [this.registry],
    });
    this.bytesOut = new Counter({
      name: 'sluice_bytes_out_total',
      help: 'Response bytes sent',
      registers: [this.registry],
    });
    this.latency = new Histogram({
      name: 'sluice_request_duration_seconds',
      help: 'Time from a request decoded to its response encoded (Produce includes fsync for acks=all; Fetch includes long-poll waiting)',
      labelNames: ['api'],
      buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
    new Gauge({
      name: 'sluice_log_end_offset',
      help: 'Log end offset per partition',
      labelNames: ['topic', 'partition'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const t of source.topics.list()) {
          for (const p of t.partitions)
            if (p) this.set({ topic: t.meta.name, partition: String(p.index) }, p.logEndOffset);
        }
      },
    });
    new Gauge({
      name: 'sluice_log_start_offset',
      help: 'Log start offset per partition',
      labelNames: ['topic', 'partition'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const t of source.topics.list()) {
          for (const p of t.partitions)
            if (p) this.set({ topic: t.meta.name, partition: String(p.index) }, p.logStartOffset);
        }
      },
    });
  }

  onRequest(
    apiKey: number,
    _v: number,
    errorCode: number | null,
    durationMs: number,
    bytesIn: number,
    bytesOut: number,
  ): void {
    const api = () => ApiKey[apiKey] ?? String(apiKey);
    const key = apiKey * 0x20000 + (errorCode === null ? 0x10000 : errorCode & 0xffff);
    let requests = this.requestChildren.get(key);
    if (!requests) {
      requests = this.requests.labels(api(), errorCode === null ? 'NONE' : errorName(errorCode));
      this.requestChildren.set(key, requests);
    }
    requests.inc();
    this.bytesIn.inc(bytesIn);
    this.bytesOut.inc(bytesOut);
    let latency = this.latencyChildren.get(apiKey);
    if (!latency) {
      latency = this.latency.labels(api());
      this.latencyChildren.set(apiKey, latency);
    }
    latency.observe(durationMs / 1000);
  }

  listen(port: number, host: string): Promise<{ host: string; port: number }> {
    this.server = http.createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end('try /metrics\n');
        return;
      }
      this.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': this.registry.contentType }).end(text);
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
