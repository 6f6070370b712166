/**
 * `sluice start`: runs a broker in the foreground until SIGINT/SIGTERM.
 * Settings: defaults, then `--config FILE` (server.properties format, Kafka's names), then flags.
 * Prints exactly one "ready" line once the listener accepts connections.
 */

import { Broker, consoleLogger } from '../broker/broker.js';
import { applySettings, defaultBrokerConfig, loadConfigFile } from '../broker/config.js';

export interface StartOptions {
  dataDir?: string;
  listen?: string;
  config?: string;
  metricsListen?: string;
  nodeId?: string;
  set?: string[];
}

export async function startBroker(opts: StartOptions): Promise<Broker> {
  const cfg = defaultBrokerConfig();
  if (opts.config) applySettings(cfg, loadConfigFile(opts.config));
  const flags = new Map<string, string>();
  if (opts.dataDir) flags.set('log.dirs', opts.dataDir);
  if (opts.listen) flags.set('listeners', opts.listen);
  if (opts.metricsListen) flags.set('metrics.listen', opts.metricsListen);
  if (opts.nodeId) flags.set('node.id', opts.nodeId);
  for (const kv of opts.set ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new Error(`--set expects KEY=VALUE, got "${kv}"`);
    flags.set(kv.slice(0, i), kv.slice(i + 1));
  }
  applySettings(cfg, flags);
  const broker = new Broker(cfg, consoleLogger);
  await broker.start();
  return broker;
}

export async function runStart(opts: StartOptions): Promise<number> {
  const t0 = performance.now();
  let broker: Broker;
  try {
    broker = await startBroker(opts);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE') {
      console.error(
        `cannot listen: address in use (${e.message}). Is another broker running? Pick another port with --listen HOST:PORT.`,
      );
      return 1;
    }
    throw err;
  }
  const a = broker.address;
  const m = broker.metricsAddress;
  console.log(
    `Sluice ready on ${a.host}:${a.port} (node ${broker.nodeId}, cluster ${broker.clusterId}, data ${broker.config.dataDir}${m ? `, metrics http://${m.host}:${m.port}/metrics` : ''}) in ${Math.round(performance.now() - t0)} ms`,
  );
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (sig: string) => {
      if (stopping) return;
      stopping = true;
      console.log(`[sluice] ${sig}: stopping`);
      broker.stop().then(resolve, (err: unknown) => {
        console.error(`[sluice] stop failed: ${(err as Error).message}`);
        resolve();
      });
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });
  return 0;
}
