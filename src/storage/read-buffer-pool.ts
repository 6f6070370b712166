/**
 * A bounded pool of large read buffers for the fetch path, so that serving a 1 MiB fetch does not
 * allocate (and later garbage-collect) a fresh 1 MiB Buffer: each fresh one costs page faults and
 * zeroed pages in the kernel on first touch, and external-memory pressure that triggers V8
 * mark-sweeps (the consume profile in docs/benchmarks.md).
 *
 * Ownership is the whole design:
 * - `acquire` leases a buffer. A leased buffer goes back to the free list only through `release`,
 *   which whoever last used its bytes calls when nothing refers to them any more — for a Fetch
 *   response, the network layer once the socket write of that chunk has completed (Node's
 *   `socket.write` callback without error).
 * - A leased buffer that is never released (the response was dropped, the connection closed, a
 *   caller kept the records) is simply garbage-collected: the pool tracks leases in a WeakMap keyed
 *   by the ArrayBuffer, so forgetting to release is safe and costs only the reuse.
 * - `release` of anything not currently leased (a chunk of another buffer, a second release) does
 *   nothing, so a chunk is reused at most once per lease.
 * - Bytes beyond what a reader filled are stale data of earlier reads; readers hand out only the
 *   filled part (as Buffer.allocUnsafe's contents would be).
 * - Free buffers are bounded by `freeBytesMax`; beyond it released buffers are dropped.
 */

/** Reads smaller than this allocate normally (Node's small-buffer slab already serves them). */
export const READ_POOL_MIN_BYTES = 64 * 1024;
/** Capacities are rounded up to a multiple of this, so similar fetch sizes share buffers. */
const CAPACITY_STEP_BYTES = 64 * 1024;
const DEFAULT_FREE_BYTES_MAX = 16 * 1024 * 1024;

export class ReadBufferPool {
  private readonly free = new Map<number, Buffer[]>();
  private freeBytes = 0;
  private readonly leased = new WeakMap<ArrayBufferLike, Buffer>();
  /** Counters for tests and diagnostics. */
  readonly stats = { acquired: 0, reused: 0, released: 0, dropped: 0 };

  constructor(
    readonly minBytes = READ_POOL_MIN_BYTES,
    private readonly freeBytesMax = DEFAULT_FREE_BYTES_MAX,
  ) {}

  /** A leased buffer of at least `lengthBytes` (its contents are stale; fill before use). */
  acquire(lengthBytes: number): Buffer {
    const capacity = Math.ceil(Math.max(lengthBytes, 1) / CAPACITY_STEP_BYTES) * CAPACITY_STEP_BYTES;
    this.stats.acquired++;
    const list = this.free.get(capacity);
    let buf = list?.pop();
    if (buf) {
      this.freeBytes -= capacity;
      this.stats.reused++;
    } else {
      // allocUnsafeSlow: a Buffer of its own ArrayBuffer, never a slice of Node's shared slab.
      buf = Buffer.allocUnsafeSlow(capacity);
    }
    this.leased.set(buf.buffer, buf);
    return buf;
  }

  /** True if `chunk` views a buffer currently leased from this pool. */
  isLeased(chunk: Uint8Array): boolean {
    return this.leased.has(chunk.buffer);
  }

  /**
   * Returns the buffer `chunk` views to the pool. The caller promises that nothing will read or
   * write any view of that buffer any more. Returns false if it was not leased.
   */
  release(chunk: Uint8Array): boolean {
    const buf = this.leased.get(chunk.buffer);
    if (!buf) return false;
    this.leased.delete(chunk.buffer);
    this.stats.released++;
    if (this.freeBytes + buf.length > this.freeBytesMax) {
      this.stats.dropped++;
      return true;
    }
    let list = this.free.get(buf.length);
    if (!list) {
      list = [];
      this.free.set(buf.length, list);
    }
    list.push(buf);
    this.freeBytes += buf.length;
    return true;
  }

  get freeBytesHeld(): number {
    return this.freeBytes;
  }
}

/**
 * The pool PartitionLog.read leases from and the broker's network layer releases to once a
 * response chunk has been written to its socket.
 */
export const fetchReadBuffers = new ReadBufferPool();
