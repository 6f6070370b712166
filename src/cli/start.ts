/**
 * `sluice start`: runs a broker in the foreground until SIGINT/SIGTERM.
 * Settings: defaults, then `--config FILE` (server.properties format, Kafka's names), then flags
 * (each flag is a Kafka setting under another name; `--set KEY=VALUE` sets any, last wins).
 * Prints exactly one "ready" line once the listener accepts connections; it says whether the
 * node runs alone or is one voter of a cluster (controller.quorum.voters set).
 */

import { Broker, consoleLogger } from '../broker/broker.js';
import { ConfigError, applySettings, defaultBrokerConfig, loadConfigFile } from '../broker/config.js';

export const START_USAGE = `Usage: sluice start [options]

Runs a broker in the foreground (Ctrl-C stops it).

Options:
  --data-dir D                 where the logs live (log.dirs; default ./sluice-data)
  --listen HOST:PORT           client listener (listeners; default 127.0.0.1:9092)
  --node-id N                  this node's id (node.id; default 1)
  --voters ID@HOST:PORT,...    join a cluster: every voter's controller address, this node's
                               included (controller.quorum.voters); unset: a single node
  --controller-listen HOST:PORT  where this node's controller (Raft) listener binds
                               (controller.listen; default: its own --voters entry)
  --metrics-listen HOST:PORT   Prometheus endpoint (metrics.listen; default 127.0.0.1:9464)
  --config FILE                settings in server.properties format (Kafka's names)
  --set KEY=VALUE              any setting by Kafka's name (repeatable; wins over the above)

A 3-node cluster on one machine (or use \`sluice dev cluster --nodes 3\`):
  sluice start --node-id 1 --listen 127.0.0.1:19092 --controller-listen 127.0.0.1:19192 \\
    --voters 1@127.0.0.1:19192,2@127.0.0.1:19193,3@127.0.0.1:19194 --data-dir ./data/node-1
  ... and the same for nodes 2 and 3 with their own ids, ports and data dirs.`;

export interface StartOptions {
  dataDir?: string;
  listen?: string;
  config?: string;
  metricsListen?: string;
  nodeId?: string;
  /** controller.quorum.voters: `ID@HOST:PORT,...` */
  voters?: string;
  /** controller.listen: HOST:PORT */
  controllerListen?: string;
  set?: string[];
}

/** The flags as Kafka-named settings, in the order they apply (--set last, so it wins). */
export function startSettings(opts: StartOptions): Map<string, string> {
  const flags = new Map<string, string>();
  if (opts.dataDir) flags.set('log.dirs', opts.dataDir);
  if (opts.listen) flags.set('listeners', opts.listen);
  if (opts.metricsListen) flags.set('metrics.listen', opts.metricsListen);
  if (opts.nodeId) flags.set('node.id', opts.nodeId);
  if (opts.voters) flags.set('controller.quorum.voters', opts.voters);
  if (opts.controllerListen) flags.set('controller.listen', opts.controllerListen);
  for (const kv of opts.set ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new ConfigError(`--set expects KEY=VALUE, got "${kv}"`);
    flags.set(kv.slice(0, i), kv.slice(i + 1));
  }
  return flags;
}

export async function startBroker(opts: StartOptions): Promise<Broker> {
  const cfg = defaultBrokerConfig();
  if (opts.config) applySettings(cfg, loadConfigFile(opts.config));
  applySettings(cfg, startSettings(opts));
  const broker = new Broker(cfg, consoleLogger);
  try {
    await broker.start();
  } catch (err) {
    // What did start (a cluster node's Raft listener and timers) would keep the process alive.
    await broker.stop().catch(() => undefined);
    throw err;
  }
  return broker;
}

export interface ReadyInfo {
  address: { host: string; port: number };
  nodeId: number;
  clusterId: string;
  dataDir: string;
  /** Number of voters; 0 for a single node. */
  voterCount: number;
  controller?: { host: string; port: number };
  metrics?: { host: string; port: number };
  elapsedMs: number;
}

/** The one line `sluice start` prints when it accepts connections (scripts wait for its prefix). */
export function readyLine(r: ReadyInfo): string {
  const role =
    r.voterCount > 0
      ? `node ${r.nodeId} of a ${r.voterCount}-voter cluster, cluster id ${r.clusterId}${r.controller ? `, controller ${r.controller.host}:${r.controller.port}` : ''}`
      : `single node, node id ${r.nodeId}, cluster id ${r.clusterId}`;
  const metrics = r.metrics ? `, metrics http://${r.metrics.host}:${r.metrics.port}/metrics` : '';
  return `Sluice ready on ${r.address.host}:${r.address.port} (${role}, data ${r.dataDir}${metrics}) in ${Math.round(r.elapsedMs)} ms`;
}

/** Which flag sets the address that was in use, for the hint. */
function listenFlagFor(err: NodeJS.ErrnoException & { port?: number }, opts: StartOptions): string {
  const port = String(err.port ?? '');
  if (port && opts.controllerListen?.endsWith(`:${port}`)) return '--controller-listen';
  if (port && opts.metricsListen?.endsWith(`:${port}`)) return '--metrics-listen';
  if (port && !opts.listen?.endsWith(`:${port}`) && opts.voters?.includes(`:${port}`))
    return "--controller-listen (or this node's --voters entry)";
  return '--listen';
}

export async function runStart(opts: StartOptions): Promise<number> {
  const t0 = performance.now();
  let broker: Broker;
  try {
    broker = await startBroker(opts);
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { port?: number };
    if (e.code === 'EADDRINUSE') {
      console.error(
        `cannot listen: address in use (${e.message}). Is another broker running? Pick another port with ${listenFlagFor(e, opts)} HOST:PORT.`,
      );
      return 1;
    }
    if (err instanceof ConfigError) {
      console.error(`error: ${err.message}`);
      return 1;
    }
    throw err;
  }
  const cfg = broker.config;
  const controllerPort = broker.cluster?.quorum.controllerPort ?? cfg.controllerPort;
  console.log(
    readyLine({
      address: broker.address,
      nodeId: broker.nodeId,
      clusterId: broker.clusterId,
      dataDir: cfg.dataDir,
      voterCount: cfg.voters.length,
      controller: cfg.voters.length > 0 ? { host: cfg.controllerHost, port: controllerPort } : undefined,
      metrics: broker.metricsAddress ?? undefined,
      elapsedMs: performance.now() - t0,
    }),
  );
  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (why: string, code: number) => {
      if (stopping) return;
      stopping = true;
      console.log(`[sluice] ${why}: stopping`);
      // A node whose disk failed may not complete a controlled shutdown; do not wait forever.
      const timer = setTimeout(() => resolve(code), code === 0 ? 60_000 : 5_000);
      timer.unref();
      broker.stop().then(
        () => resolve(code),
        (err: unknown) => {
          console.error(`[sluice] stop failed: ${(err as Error).message}`);
          resolve(code);
        },
      );
    };
    process.on('SIGINT', () => stop('SIGINT', 0));
    process.on('SIGTERM', () => stop('SIGTERM', 0));
    void broker.fatal.then((err) => {
      console.error(
        `[sluice] FATAL: the metadata log under ${cfg.dataDir} cannot be written (${err.message}). This node cannot take part in the cluster safely. Free space or fix the disk, then start it again; the other nodes keep the cluster running meanwhile.`,
      );
      stop('fatal error', 1);
      // Whatever a failed disk left pending must not keep a node that has to stop alive.
      setTimeout(() => process.exit(1), 10_000).unref();
    });
  });
}
