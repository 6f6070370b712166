/**
 * `sluice dev cluster`: a replicated cluster of N nodes on this machine, for development.
 *
 * Each node is a child process running this same CLI (`sluice start`), node ids 1..N, client
 * ports base..base+N-1, controller (Raft) ports base+100.., data in <dir>/node-<id>, every node a
 * voter, one cluster id for all (derived from the data dir, so a restart finds its data again).
 * Each output line of a node is printed with a `[node N]` prefix. Once every node has printed its
 * ready line and registered as a broker, one line gives the bootstrap servers.
 *
 * Lifetime: SIGINT/SIGTERM stops every node (SIGTERM, SIGKILL after 10 s; a second Ctrl-C kills
 * at once) and then exits. A node that exits on its own is reported and the others keep running
 * (a cluster of 3 survives one failure); when none is left the command exits with code 1.
 *
 * Bounds: at most NODES_MAX nodes; the last lines of each node's output kept for error messages
 * are bounded (TAIL_LINES_MAX).
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Admin } from '../client/index.js';
import { CliError, UsageError, parseIntFlag } from './common.js';

export const DEV_USAGE = `Usage: sluice dev cluster [--nodes N] [--base-port P] [--data-dir D] [--set KEY=VALUE]...

Runs an N-node replicated cluster on 127.0.0.1 in the foreground (Ctrl-C stops every node).
  --nodes N        number of nodes, each a voter and a broker (default 3, at most 16)
  --base-port P    client ports P..P+N-1, controller ports P+100..P+100+N-1 (default 19092)
  --data-dir D     node N keeps its data in D/node-N (default ./sluice-dev-cluster)
  --set KEY=VALUE  a broker setting for every node (repeatable), e.g. --set num.partitions=3`;

export const NODES_MAX = 16;
const DEFAULT_NODES = 3;
const DEFAULT_BASE_PORT = 19092;
const DEFAULT_DATA_DIR = './sluice-dev-cluster';
/** Controller ports sit this far above the client ports. */
export const CONTROLLER_PORT_OFFSET = 100;
const READY_TIMEOUT_MS = 60_000;
const REGISTER_TIMEOUT_MS = 30_000;
const STOP_KILL_AFTER_MS = 10_000;
const TAIL_LINES_MAX = 40;
const HOST = '127.0.0.1';

export interface DevClusterOptions {
  nodes: number;
  basePort: number;
  dataDir: string;
  set: string[];
}

export interface DevNodePlan {
  id: number;
  clientPort: number;
  controllerPort: number;
  dataDir: string;
  /** Arguments after the CLI entry: `start ...`. */
  args: string[];
}

/**
 * The shared cluster id: Kafka's format (16 bytes, URL-safe base64 without padding), derived
 * from the absolute data dir so the same dev cluster keeps the same id across restarts.
 */
export function devClusterId(dataDir: string): string {
  return createHash('sha256')
    .update(`sluice dev cluster ${resolve(dataDir)}`)
    .digest()
    .subarray(0, 16)
    .toString('base64url');
}

/** Every node's ports, data dir and `sluice start` arguments. */
export function planDevCluster(o: DevClusterOptions): DevNodePlan[] {
  if (!Number.isInteger(o.nodes) || o.nodes < 1 || o.nodes > NODES_MAX)
    throw new UsageError(`--nodes must be between 1 and ${NODES_MAX}, got ${o.nodes}`, DEV_USAGE);
  const top = o.basePort + CONTROLLER_PORT_OFFSET + o.nodes - 1;
  if (o.basePort < 1 || top > 65535)
    throw new UsageError(
      `--base-port ${o.basePort} puts ports outside 1..65535 (the highest would be ${top})`,
      DEV_USAGE,
    );
  const ids = Array.from({ length: o.nodes }, (_, i) => i + 1);
  const voters = ids.map((id) => `${id}@${HOST}:${o.basePort + CONTROLLER_PORT_OFFSET + id - 1}`).join(',');
  const clusterId = devClusterId(o.dataDir);
  return ids.map((id) => {
    const clientPort = o.basePort + id - 1;
    const controllerPort = o.basePort + CONTROLLER_PORT_OFFSET + id - 1;
    const dataDir = join(o.dataDir, `node-${id}`);
    const args = [
      'start',
      '--node-id',
      String(id),
      '--listen',
      `${HOST}:${clientPort}`,
      '--controller-listen',
      `${HOST}:${controllerPort}`,
      '--voters',
      voters,
      '--data-dir',
      dataDir,
      // Each node's own free port: the default 9464 would clash between nodes.
      '--metrics-listen',
      `${HOST}:0`,
      '--set',
      `cluster.id=${clusterId}`,
    ];
    for (const s of o.set) args.push('--set', s);
    return { id, clientPort, controllerPort, dataDir, args };
  });
}

export function bootstrapServers(plan: readonly DevNodePlan[]): string {
  return plan.map((n) => `${HOST}:${n.clientPort}`).join(',');
}

/** The line that says the cluster is usable (tests and scripts wait for its prefix). */
export function devReadyLine(plan: readonly DevNodePlan[]): string {
  const servers = bootstrapServers(plan);
  return `Sluice dev cluster ready: ${plan.length} node${plan.length === 1 ? '' : 's'}, bootstrap servers ${servers} — try \`sluice cluster status --bootstrap ${servers}\`; Ctrl-C stops all nodes`;
}

/**
 * The `node` arguments that run this CLI again: process.argv minus the arguments main() got
 * (`bin/sluice.js`, or a test runner plus the compiled main.js), after Node's own flags (a
 * loader such as `--import tsx`; debugger and test-runner flags are left out, they would clash).
 * Falls back to bin/sluice.js beside the compiled CLI.
 */
export function cliEntry(
  argv: readonly string[],
  processArgv: readonly string[] = process.argv,
  execArgv: readonly string[] = process.execArgv,
): string[] {
  const n = processArgv.length - argv.length;
  const node = execArgv.filter((a) => !/^--(inspect|debug|test|watch)/.test(a));
  if (n >= 2 && argv.every((a, i) => processArgv[n + i] === a)) return [...node, ...processArgv.slice(1, n)];
  return [...node, fileURLToPath(new URL('../../bin/sluice.js', import.meta.url))];
}

/** Resolves with the ports (of those given) that cannot be bound on 127.0.0.1 right now. */
async function portsInUse(ports: readonly number[]): Promise<number[]> {
  const busy: number[] = [];
  for (const port of ports) {
    const free = await new Promise<boolean>((res) => {
      const srv = net.createServer();
      srv.once('error', () => res(false));
      srv.listen(port, HOST, () => srv.close(() => res(true)));
    });
    if (!free) busy.push(port);
  }
  return busy;
}

function portHint(o: DevClusterOptions): string {
  const next = o.basePort + 1000;
  return `pick other ports with --base-port (e.g. --base-port ${next}: ports ${next}..${next + o.nodes - 1} and ${next + CONTROLLER_PORT_OFFSET}..${next + CONTROLLER_PORT_OFFSET + o.nodes - 1})`;
}

interface RunningNode {
  plan: DevNodePlan;
  child: ChildProcess;
  ready: boolean;
  exited: boolean;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The last lines it printed (bounded), for error messages. */
  tail: string[];
}

function describeExit(e: { code: number | null; signal: NodeJS.Signals | null }): string {
  return e.signal ? `killed by ${e.signal}` : `exit code ${e.code}`;
}

export async function runDev(args: string[], entry: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      nodes: { type: 'string' },
      'base-port': { type: 'string' },
      'data-dir': { type: 'string' },
      set: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [sub, ...extra] = positionals;
  if (values.help || sub === undefined) {
    console.log(DEV_USAGE);
    return values.help ? 0 : 1;
  }
  if (sub !== 'cluster') throw new UsageError(`unknown dev subcommand "${sub}"`, DEV_USAGE);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`, DEV_USAGE);
  for (const kv of values.set ?? [])
    if (kv.indexOf('=') <= 0) throw new UsageError(`--set expects KEY=VALUE, got "${kv}"`, DEV_USAGE);
  const opts: DevClusterOptions = {
    nodes: parseIntFlag('nodes', values.nodes, DEV_USAGE, 1) ?? DEFAULT_NODES,
    basePort: parseIntFlag('base-port', values['base-port'], DEV_USAGE, 1) ?? DEFAULT_BASE_PORT,
    dataDir: values['data-dir'] ?? DEFAULT_DATA_DIR,
    set: values.set ?? [],
  };
  const plan = planDevCluster(opts);
  const busy = await portsInUse(plan.flatMap((n) => [n.clientPort, n.controllerPort]));
  if (busy.length > 0)
    throw new CliError(
      'PORT_IN_USE',
      `port${busy.length === 1 ? '' : 's'} ${busy.join(', ')} ${busy.length === 1 ? 'is' : 'are'} in use (is a dev cluster already running?); ${portHint(opts)}`,
    );
  for (const n of plan) mkdirSync(n.dataDir, { recursive: true });
  return new DevCluster(opts, plan, entry).run();
}

class DevCluster {
  private readonly nodes: RunningNode[] = [];
  private stopping: Promise<void> | null = null;
  private signalled = false;
  private killNow: (() => void) | null = null;

  constructor(
    private readonly opts: DevClusterOptions,
    private readonly plan: DevNodePlan[],
    private readonly entry: string[],
  ) {}

  private log(line: string): void {
    console.log(`[dev] ${line}`);
  }

  async run(): Promise<number> {
    let resolveSignal: (() => void) | null = null;
    const signal = new Promise<void>((res) => {
      resolveSignal = res;
    });
    const onSignal = (sig: NodeJS.Signals) => {
      if (this.stopping) {
        this.log(`${sig} again: killing every node now`);
        this.killNow?.();
        return;
      }
      this.signalled = true;
      this.log(`${sig}: stopping ${this.nodes.filter((n) => !n.exited).length} node(s)`);
      resolveSignal?.();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      this.log(`starting ${this.plan.length} nodes (data in ${resolve(this.opts.dataDir)})`);
      for (const p of this.plan) this.nodes.push(this.spawnNode(p));
      const started = await Promise.race([
        this.waitReady().then(() => 'ready' as const),
        signal.then(() => 'signal' as const),
      ]).catch((err: unknown) => err as Error);
      if (started instanceof Error) {
        console.error(`error: ${started.message}`);
        await this.stopAll();
        return 1;
      }
      if (started === 'signal') {
        await this.stopAll();
        return 0;
      }
      await Promise.race([this.waitRegistered(), signal]);
      if (!this.signalled && this.nodes.some((n) => !n.exited)) console.log(devReadyLine(this.plan));
      const outcome = await Promise.race([
        signal.then(() => 'signal' as const),
        this.allExited().then(() => 'gone' as const),
      ]);
      if (outcome === 'gone') {
        console.error('error: every node has exited; see their output above');
        return 1;
      }
      await this.stopAll();
      return 0;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }

  private spawnNode(plan: DevNodePlan): RunningNode {
    const child = spawn(process.execPath, [...this.entry, ...plan.args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: process.env,
    });
    const node: RunningNode = {
      plan,
      child,
      ready: false,
      exited: false,
      tail: [],
      exit: new Promise((res) => {
        child.once('close', (code, signal) => res({ code, signal }));
        child.once('error', (err) => {
          node.tail.push(`cannot run ${process.execPath}: ${err.message}`);
          res({ code: null, signal: null });
        });
      }),
    };
    this.log(
      `node ${plan.id}: pid ${child.pid ?? '?'}, client ${HOST}:${plan.clientPort}, controller ${HOST}:${plan.controllerPort}, data ${plan.dataDir}`,
    );
    const prefix = `[node ${plan.id}] `;
    const keep = (line: string) => {
      node.tail.push(line);
      if (node.tail.length > TAIL_LINES_MAX) node.tail.shift();
    };
    createInterface({ input: child.stdout! }).on('line', (line) => {
      keep(line);
      if (!node.ready && line.startsWith('Sluice ready on ')) node.ready = true;
      process.stdout.write(`${prefix}${line}\n`);
    });
    createInterface({ input: child.stderr! }).on('line', (line) => {
      keep(line);
      process.stderr.write(`${prefix}${line}\n`);
    });
    void node.exit.then((e) => {
      node.exited = true;
      if (this.stopping || !node.ready) return;
      const left = this.nodes.filter((n) => !n.exited).length;
      this.log(
        `node ${plan.id} exited unexpectedly (${describeExit(e)}); ${left} of ${this.nodes.length} node(s) keep running` +
          (left > 0
            ? ` (a cluster of ${this.nodes.length} keeps a quorum while a majority runs); Ctrl-C stops them`
            : ''),
      );
    });
    return node;
  }

  /** Resolves once every node printed its ready line; rejects when one exits first or on timeout. */
  private waitReady(): Promise<void> {
    return new Promise((res, rej) => {
      const deadline = Date.now() + READY_TIMEOUT_MS;
      const timer = setInterval(() => {
        if (this.nodes.every((n) => n.ready)) {
          clearInterval(timer);
          res();
          return;
        }
        const dead = this.nodes.find((n) => n.exited && !n.ready);
        if (dead) {
          clearInterval(timer);
          const inUse = dead.tail.some((l) => /address in use|EADDRINUSE/i.test(l));
          rej(
            new Error(
              `node ${dead.plan.id} exited before it was ready` +
                (inUse
                  ? `: a port it needs is in use; ${portHint(this.opts)}`
                  : `; its output is above (last line: ${dead.tail[dead.tail.length - 1] ?? 'none'})`),
            ),
          );
          return;
        }
        if (Date.now() > deadline) {
          clearInterval(timer);
          const slow = this.nodes.filter((n) => !n.ready).map((n) => n.plan.id);
          rej(
            new Error(`node(s) ${slow.join(', ')} printed no ready line within ${READY_TIMEOUT_MS / 1000} s`),
          );
        }
      }, 50);
    });
  }

  /**
   * Waits (bounded) until every node is a live broker: the cluster then takes topics with
   * replication factor N. A timeout only warns; the bootstrap servers work with fewer brokers.
   */
  private async waitRegistered(): Promise<void> {
    const admin = new Admin({
      bootstrapServers: bootstrapServers(this.plan),
      clientId: 'sluice-dev-cluster',
      requestTimeoutMs: 5_000,
      connectTimeoutMs: 2_000,
    });
    const deadline = Date.now() + REGISTER_TIMEOUT_MS;
    let live = 0;
    try {
      while (!this.signalled && Date.now() < deadline) {
        try {
          const d = await admin.describeCluster();
          live = d.brokers.length;
          if (live >= this.plan.length && d.controllerId >= 0) return;
        } catch {
          // Not answering yet (elections): try again.
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      if (!this.signalled)
        this.log(
          `only ${live} of ${this.plan.length} nodes registered as brokers within ${REGISTER_TIMEOUT_MS / 1000} s; the cluster may still be electing a controller (see the node output)`,
        );
    } finally {
      await admin.close();
    }
  }

  private async allExited(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.exit));
  }

  /** SIGTERM every running node, SIGKILL those still running after 10 s (or on a second Ctrl-C). */
  private stopAll(): Promise<void> {
    this.stopping ??= (async () => {
      const running = this.nodes.filter((n) => !n.exited);
      const kill = () => {
        for (const n of running) if (!n.exited) n.child.kill('SIGKILL');
      };
      this.killNow = kill;
      for (const n of running) n.child.kill('SIGTERM');
      const timer = setTimeout(() => {
        const left = running.filter((n) => !n.exited).map((n) => n.plan.id);
        if (left.length > 0) this.log(`node(s) ${left.join(', ')} still running after 10 s: killing them`);
        kill();
      }, STOP_KILL_AFTER_MS);
      await Promise.all(running.map((n) => n.exit));
      clearTimeout(timer);
      this.log('all nodes stopped');
    })();
    return this.stopping;
  }
}
