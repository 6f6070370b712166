// What one thread-pool round trip costs on this machine, next to a synchronous write: N times a
// 10 KiB FileHandle.write, fdatasync, FileHandle.read (each a hop to a libuv worker and back),
// fs.writeSync and a setImmediate turn, 1 ms apart; prints p50/p99/p99.9/max in ms of each.
//
//   node scripts/bench/micro/hops.mjs [FILE]
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { loadavg } from 'node:os';

const N = Number(process.env.N ?? 3000);
const file = process.argv[2] ?? '/tmp/sluice-hops.dat';
const h = await fsp.open(file, 'w+');
const buf = Buffer.alloc(10240, 65);
const q = (a) => {
  a.sort((x, y) => x - y);
  const at = (p) => a[Math.min(a.length - 1, Math.floor(a.length * p))].toFixed(3);
  return `p50 ${at(0.5)} p99 ${at(0.99)} p99.9 ${at(0.999)} max ${a[a.length - 1].toFixed(3)}`;
};
const write = [];
const sync = [];
const read = [];
const writeSync = [];
const turn = [];
let pos = 0;
for (let i = 0; i < N; i++) {
  let t = performance.now();
  await h.write(buf, 0, buf.length, pos);
  write.push(performance.now() - t);
  t = performance.now();
  await h.datasync();
  sync.push(performance.now() - t);
  t = performance.now();
  await h.read(Buffer.allocUnsafe(buf.length), 0, buf.length, pos);
  read.push(performance.now() - t);
  pos += buf.length;
  t = performance.now();
  fs.writeSync(h.fd, buf, 0, buf.length, pos);
  writeSync.push(performance.now() - t);
  pos += buf.length;
  t = performance.now();
  await new Promise((r) => setImmediate(r));
  turn.push(performance.now() - t);
  await new Promise((r) => setTimeout(r, 1));
}
await h.close();
fs.unlinkSync(file);
console.log(`load ${loadavg()[0]}`);
console.log(`FileHandle.write (hop)  ${q(write)}`);
console.log(`fdatasync (hop)         ${q(sync)}`);
console.log(`FileHandle.read (hop)   ${q(read)}`);
console.log(`fs.writeSync            ${q(writeSync)}`);
console.log(`setImmediate turn       ${q(turn)}`);
