/**
 * Test support: a broker in this process on a temporary data dir, and typed requests through its
 * dispatcher without sockets. Used by tests of layers above the network (groups, compaction).
 * Not a test file itself (no `.test.ts`).
 */

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Encodable } from '../protocol/codec-support.js';
import { apiCodecs } from '../protocol/generated/index.js';
import { encodeRequestHeader } from '../protocol/generated/request-header.js';
import { Reader, Writer } from '../protocol/primitives.js';
import { Broker } from './broker.js';
import { type BrokerConfig, defaultBrokerConfig } from './config.js';

type Codecs = typeof apiCodecs;
export type RequestOf<K extends keyof Codecs> = ReturnType<Codecs[K]['decodeRequest']>;
export type ResponseOf<K extends keyof Codecs> = ReturnType<Codecs[K]['decodeResponse']>;

const quiet = { info() {}, warn() {}, error() {} };

/**
 * Starts a broker on port 0 with metrics off and no initial rebalance delay; `dataDir` defaults
 * to a new temporary folder (the caller removes it). `configure` adjusts the config first.
 */
export async function startInProcessBroker(
  opts: { dataDir?: string; configure?: (cfg: BrokerConfig) => void } = {},
): Promise<Broker> {
  const cfg = defaultBrokerConfig();
  cfg.dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'sluice-inproc-'));
  cfg.port = 0;
  cfg.metricsPort = -1;
  cfg.groupInitialRebalanceDelayMs = 0;
  opts.configure?.(cfg);
  const b = new Broker(cfg, quiet);
  await b.start();
  return b;
}

let correlation = 1;

/** Sends one request through the broker's dispatcher and decodes the response. */
export async function callApi<K extends keyof Codecs>(
  b: Broker,
  apiKey: K,
  version: number,
  body: Encodable<RequestOf<K>>,
): Promise<ResponseOf<K>> {
  const codec = apiCodecs[apiKey];
  const flexible = codec.flexibleMin >= 0 && version >= codec.flexibleMin;
  const w = new Writer(256);
  encodeRequestHeader(
    w,
    { requestApiKey: apiKey, requestApiVersion: version, correlationId: correlation++, clientId: 'tester' },
    flexible ? 2 : 1,
  );
  (codec.encodeRequest as (w: Writer, v: unknown, version: number) => void)(w, body, version);
  const out = await b.dispatcher.handleFrame(w.toBuffer(), {
    id: 1,
    remoteAddress: '127.0.0.1',
    remotePort: 5555,
  });
  if (!out) throw new Error(`no response to api ${apiKey} v${version}`);
  const r = new Reader(Buffer.concat(out));
  r.int32();
  if (flexible) r.taggedFields();
  return codec.decodeResponse(r, version) as ResponseOf<K>;
}
