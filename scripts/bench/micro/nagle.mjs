// Does a client's Nagle algorithm hold request k+1 until the answer to request k (which carries
// the ACK)? A socket pair on loopback: the client writes a 10 KiB request every ms (its send time
// inside), the server answers each after DELAY ms (as an fsync before acknowledging would); prints
// how late requests arrive, with Node's default (Nagle on, as kafkajs) or with TCP_NODELAY.
//
//   node scripts/bench/micro/nagle.mjs DELAY_MS [nodelay]
import net from 'node:net';
const D = Number(process.argv[2] ?? 3); // server response delay, ms (like an fsync)
const noDelay = process.argv[3] === 'nodelay';
const now = () => performance.timeOrigin + performance.now();
const delays = [];
const srv = net.createServer((s) => {
  s.setNoDelay(true);
  let buf = Buffer.alloc(0);
  s.on('data', (c) => {
    buf = Buffer.concat([buf, c]);
    while (buf.length >= 10240) {
      const sent = buf.readDoubleLE(0);
      delays.push(now() - sent);
      buf = buf.subarray(10240);
      setTimeout(() => s.write(Buffer.alloc(64, 1)), D);
    }
  });
});
await new Promise((r) => srv.listen(0, '127.0.0.1', r));
const c = net.connect(srv.address().port, '127.0.0.1');
if (noDelay) c.setNoDelay(true);
c.on('data', () => {});
await new Promise((r) => c.on('connect', r));
for (let i = 0; i < 1000; i++) {
  const b = Buffer.alloc(10240, 2);
  b.writeDoubleLE(now(), 0);
  c.write(b);
  await new Promise((r) => setTimeout(r, 1));
}
await new Promise((r) => setTimeout(r, 200));
delays.sort((a, b) => a - b);
console.log(
  `response delay ${D} ms, ${noDelay ? 'NODELAY' : 'Nagle (default)'}: request arrival delay p50 ${delays[delays.length >> 1].toFixed(3)} p90 ${delays[Math.floor(delays.length * 0.9)].toFixed(3)} p99 ${delays[Math.floor(delays.length * 0.99)].toFixed(3)} ms (n=${delays.length})`,
);
c.destroy();
srv.close();
