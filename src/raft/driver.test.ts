/**
 * Three RaftDrivers in one process on 127.0.0.1 ports, with real files in a tmp dir: election,
 * 200 proposals applied in the same order everywhere, leader failover, catch-up of a restarted
 * node, and a restart of the whole quorum from disk. Timeouts are generous (a loaded 2-core CI
 * machine), the happy path takes a few seconds.
 */

import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { NodeFileSystem } from '../storage/fs.js';
import { NotLeaderError, type PeerAddress, RaftDriver } from './driver.js';
import { DurableRaftLog } from './durable-log.js';

interface Applied {
  readonly index: number;
  readonly term: number;
  readonly data: string;
}

async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  const ports: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = net.createServer();
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    ports.push((s.address() as net.AddressInfo).port);
    servers.push(s);
  }
  for (const s of servers) await new Promise<void>((resolve) => s.close(() => resolve()));
  return ports;
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => T | undefined | false): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const decoder = new TextDecoder();

class Harness {
  readonly drivers = new Map<number, RaftDriver>();
  readonly applied = new Map<number, Applied[]>();
  readonly warnings: string[] = [];
  readonly snapshotsLoaded: { id: number; index: number }[] = [];
  voters: PeerAddress[] = [];
  constructor(readonly dir: string) {}

  async init(): Promise<void> {
    const ports = await freePorts(3);
    this.voters = ports.map((port, i) => ({ id: i + 1, host: '127.0.0.1', port }));
  }

  async start(id: number): Promise<RaftDriver> {
    this.applied.set(id, []);
    // The "state machine" is the list of applied entries; a snapshot is that list as JSON.
    const d = await RaftDriver.start({
      id,
      voters: this.voters,
      dataDir: path.join(this.dir, `node-${id}`),
      apply: (e) =>
        this.applied.get(id)!.push({ index: e.index, term: e.term, data: decoder.decode(e.data) }),
      loadSnapshot: (snap) => {
        this.snapshotsLoaded.push({ id, index: snap.index });
        this.applied.set(id, JSON.parse(decoder.decode(snap.data)) as Applied[]);
      },
      logger: { warn: (msg) => this.warnings.push(msg) },
    });
    d.on('fatal', (err) => this.warnings.push(`fatal ${id}: ${err.message}`));
    this.drivers.set(id, d);
    return d;
  }

  async stop(id: number): Promise<void> {
    const d = this.drivers.get(id);
    this.drivers.delete(id);
    await d?.stop();
  }

  /** The live leader every live node agrees on, if any. */
  leader(): RaftDriver | undefined {
    const live = [...this.drivers.values()];
    const leaders = live.filter((d) => d.status().role === 'leader');
    if (leaders.length !== 1) return undefined;
    const l = leaders[0]!;
    const { term } = l.status();
    return live.every((d) => d.status().leaderId === l.id && d.status().term === term) ? l : undefined;
  }

  async waitLeader(timeoutMs = 15_000): Promise<RaftDriver> {
    return waitFor('a leader all live nodes agree on', timeoutMs, () => this.leader());
  }

  /** Proposes until acknowledged; a proposal caught by a leader change is retried only if lost. */
  async propose(payload: string): Promise<{ index: number; term: number }> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const leader = await this.waitLeader();
      try {
        return await leader.propose(Buffer.from(payload));
      } catch (err) {
        if (!(err instanceof NotLeaderError)) throw err;
        if (err.mayHaveCommitted) {
          // Let the next leader commit its first entry, then look for ours.
          const next = await this.waitLeader();
          const target = next.status().lastIndex;
          await waitFor(
            'the new leader to apply its log',
            15_000,
            () => next.status().appliedIndex >= target,
          );
          const found = this.applied.get(next.id)!.find((a) => a.data === payload);
          if (found !== undefined) return { index: found.index, term: found.term };
        }
      }
    }
    throw new Error(`could not commit ${payload}`);
  }

  async waitApplied(ids: readonly number[], count: number, timeoutMs = 20_000): Promise<void> {
    await waitFor(`nodes ${ids} to apply ${count} entries`, timeoutMs, () =>
      ids.every((id) => (this.applied.get(id)?.length ?? 0) >= count),
    );
  }

  /** Snapshots a node's state machine at its applied index. */
  compact(id: number): number {
    const d = this.drivers.get(id)!;
    const index = d.status().appliedIndex;
    assert.ok(d.compact(index, Buffer.from(JSON.stringify(this.applied.get(id)))));
    return index;
  }

  async stopAll(): Promise<void> {
    for (const id of [...this.drivers.keys()]) await this.stop(id);
  }
}

describe('RaftDriver: 3 nodes over TCP with files on disk', () => {
  let h: Harness;
  let tmp: string;
  /** The applied sequence everyone agreed on, across the steps. */
  let agreed: Applied[] = [];

  before(async () => {
    tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'sluice-raft-'));
    h = new Harness(tmp);
    await h.init();
  });

  after(async () => {
    await h.stopAll();
    await fsp.rm(tmp, { recursive: true, force: true });
  });

  test('elects a leader', async (t) => {
    for (const v of h.voters) await h.start(v.id);
    const t0 = Date.now();
    const leader = await h.waitLeader();
    const s = leader.status();
    assert.equal(s.role, 'leader');
    assert.deepEqual([...s.voters].sort(), [1, 2, 3]);
    assert.ok(s.term >= 1);
    t.diagnostic(`leader ${leader.id} term ${s.term} after ${Date.now() - t0} ms`);
  });

  test('200 proposals commit and apply in the same order on all 3', async () => {
    const leader = await h.waitLeader();
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        leader.propose(Buffer.from(`p${i}`)).catch(async (err: unknown) => {
          // A leader change under load: fall back to the retrying path.
          if (err instanceof NotLeaderError) return h.propose(`p${i}`);
          throw err;
        }),
      ),
    );
    for (let i = 1; i < results.length; i++) {
      assert.ok(results[i]!.index > results[i - 1]!.index, 'acknowledged in proposal order');
    }
    await h.waitApplied([1, 2, 3], 200);
    const seq1 = h.applied.get(1)!;
    assert.deepEqual(h.applied.get(2), seq1);
    assert.deepEqual(h.applied.get(3), seq1);
    assert.deepEqual(
      seq1.map((a) => a.data),
      Array.from({ length: 200 }, (_, i) => `p${i}`),
    );
    for (const [i, r] of results.entries()) {
      assert.deepEqual(
        seq1.find((a) => a.data === `p${i}`),
        { index: r.index, term: r.term, data: `p${i}` },
      );
    }
    agreed = [...seq1];
  });

  test('status(): the leader reports each follower caught up, other nodes report none', async () => {
    const leader = await h.waitLeader();
    const s = await waitFor('followers caught up', 10_000, () => {
      const st = leader.status();
      return st.followers.length === 2 &&
        st.followers.every((f) => f.matchIndex === st.lastIndex && f.lastCaughtUpMs !== undefined)
        ? st
        : undefined;
    });
    const now = Date.now();
    assert.deepEqual(
      s.followers.map((f) => f.id).sort(),
      [1, 2, 3].filter((id) => id !== leader.id),
    );
    for (const f of s.followers) {
      assert.ok(f.lastContactMs !== undefined && f.lastContactMs <= now && now - f.lastContactMs < 5_000);
      assert.ok(f.lastCaughtUpMs! <= f.lastContactMs);
    }
    for (const d of h.drivers.values()) if (d !== leader) assert.deepEqual(d.status().followers, []);
  });

  test('malformed frames close only their own connection', async () => {
    const target = h.voters[0]!;
    const closed = async (bytes: Buffer) => {
      const s = net.connect(target.port, '127.0.0.1');
      await new Promise<void>((resolve, reject) => {
        s.once('connect', () => s.write(bytes));
        s.once('close', () => resolve());
        s.once('error', () => {});
        setTimeout(() => reject(new Error('connection was not closed')), 5000);
      });
    };
    const huge = Buffer.alloc(4);
    huge.writeUInt32BE(0x7fffffff);
    await closed(huge);
    await closed(Buffer.from([0, 0, 0, 3, 1, 2, 3])); // not a hello
    const before = h.applied.get(1)!.length;
    await h.propose('after-garbage');
    await h.waitApplied([1, 2, 3], before + 1);
    assert.ok(h.warnings.some((w) => /closing connection/.test(w)));
    agreed = [...h.applied.get(1)!];
  });

  let stoppedId = 0;

  test('stopping the leader: a new leader within seconds, proposals continue', async (t) => {
    const old = await h.waitLeader();
    stoppedId = old.id;
    const oldTerm = old.status().term;
    const t0 = Date.now();
    await h.stop(old.id);
    const next = await h.waitLeader(15_000);
    const ms = Date.now() - t0;
    t.diagnostic(`new leader ${next.id} term ${next.status().term} after ${ms} ms`);
    assert.notEqual(next.id, old.id);
    assert.ok(next.status().term > oldTerm);
    assert.ok(ms < 10_000, `failover took ${ms} ms`);
    const live = h.voters.map((v) => v.id).filter((id) => id !== old.id);
    const base = agreed.length;
    for (let i = 0; i < 50; i++) await h.propose(`q${i}`);
    await h.waitApplied(live, base + 50);
    const a = h.applied.get(live[0]!)!;
    assert.deepEqual(h.applied.get(live[1]!), a);
    assert.deepEqual(a.slice(0, base), agreed, 'earlier entries unchanged');
    assert.deepEqual(
      a.slice(base).map((x) => x.data),
      Array.from({ length: 50 }, (_, i) => `q${i}`),
    );
    agreed = [...a];
  });

  test('the old leader restarts from its files and catches up', async () => {
    await h.start(stoppedId);
    await h.waitApplied([stoppedId], agreed.length);
    assert.deepEqual(h.applied.get(stoppedId)!.slice(0, agreed.length), agreed);
    const leader = await h.waitLeader();
    assert.equal(h.drivers.size, 3);
    assert.ok(leader.status().commitIndex >= agreed[agreed.length - 1]!.index);
  });

  test('a node that missed compacted entries catches up by snapshot', async () => {
    const leader = await h.waitLeader();
    const lagging = h.voters.map((v) => v.id).find((id) => id !== leader.id)!;
    const live = h.voters.map((v) => v.id).filter((id) => id !== lagging);
    await h.stop(lagging);
    const base = agreed.length;
    for (let i = 0; i < 30; i++) await h.propose(`s${i}`);
    await h.waitApplied(live, base + 30);
    for (const id of live) h.compact(id);
    const snapIndex = leader.status().snapshotIndex;
    assert.ok(snapIndex > 0);
    await h.start(lagging);
    await waitFor('the lagging node to load the snapshot', 15_000, () =>
      h.snapshotsLoaded.some((s) => s.id === lagging && s.index >= snapIndex),
    );
    await h.waitApplied([lagging], base + 30);
    agreed = [...h.applied.get(live[0]!)!];
    assert.deepEqual(h.applied.get(lagging)!.slice(0, agreed.length), agreed);
    assert.deepEqual(h.applied.get(live[1]!)!.slice(0, agreed.length), agreed);
    // Its own store compacted too: the snapshot came to disk as a new log generation.
    assert.ok(h.drivers.get(lagging)!.status().snapshotIndex >= snapIndex);
  });

  test('catch-up after a plain restart (no snapshot needed)', async () => {
    await h.stop(stoppedId);
    await h.start(stoppedId);
    await h.waitApplied([stoppedId], agreed.length);
    assert.deepEqual(h.applied.get(stoppedId)!.slice(0, agreed.length), agreed);
    const leader = await h.waitLeader();
    assert.equal(h.drivers.size, 3);
    assert.ok(leader.status().commitIndex >= agreed[agreed.length - 1]!.index);
  });

  test('all three restart from disk: log and commit survive', async () => {
    const lastIndex = agreed[agreed.length - 1]!.index;
    await h.stopAll();
    // What is on disk, read directly.
    for (const v of h.voters) {
      const store = new DurableRaftLog(
        new NodeFileSystem(),
        path.join(tmp, `node-${v.id}`, '__cluster_metadata-0'),
        {
          logger: { warn: (msg) => h.warnings.push(msg) },
        },
      );
      const s = await store.recover();
      await store.close();
      const fromSnapshot = s.snapshot
        ? (JSON.parse(decoder.decode(s.snapshot.data)) as Applied[]).map((a) => a.data)
        : [];
      const data = [
        ...fromSnapshot,
        ...s.entries.filter((e) => e.kind === 'data').map((e) => decoder.decode(e.data)),
      ];
      assert.deepEqual(
        data.slice(0, agreed.length),
        agreed.map((a) => a.data),
        `node ${v.id} log`,
      );
      assert.ok(s.hardState.term >= 1);
    }
    for (const v of h.voters) await h.start(v.id);
    const leader = await h.waitLeader();
    assert.ok(leader.status().lastIndex > lastIndex);
    // Commit is relearned once the new leader commits its first entry; everything replays.
    await h.waitApplied([1, 2, 3], agreed.length);
    for (const v of h.voters) assert.deepEqual(h.applied.get(v.id)!.slice(0, agreed.length), agreed);
    const r = await h.propose('after-restart');
    assert.ok(r.index > lastIndex);
    await h.waitApplied([1, 2, 3], agreed.length + 1);
    assert.deepEqual(
      h.warnings.filter((w) => /fatal|truncating/.test(w)),
      [],
    );
  });
});

describe('RaftDriver: single-node quorum (the default without --voters)', () => {
  test('elects itself, commits, and recovers from disk', async () => {
    const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'sluice-raft1-'));
    const applied: string[] = [];
    const opts = {
      id: 1,
      voters: [{ id: 1, host: '127.0.0.1', port: 0 }],
      dataDir: tmp,
      apply: (e: { data: Uint8Array }) => applied.push(decoder.decode(e.data)),
      logger: { warn: () => {} },
    };
    try {
      let d = await RaftDriver.start(opts);
      await waitFor('leadership', 10_000, () => d.status().role === 'leader');
      for (let i = 0; i < 20; i++) await d.propose(Buffer.from(`x${i}`));
      assert.equal(applied.length, 20);
      await d.stop();
      applied.length = 0;
      d = await RaftDriver.start(opts);
      await waitFor('replay after restart', 10_000, () => applied.length === 20);
      assert.deepEqual(
        applied,
        Array.from({ length: 20 }, (_, i) => `x${i}`),
      );
      await d.stop();
    } finally {
      await fsp.rm(tmp, { recursive: true, force: true });
    }
  });
});
