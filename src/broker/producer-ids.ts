/**
 * Hands out producer ids for InitProducerId, unique across restarts.
 *
 * Ids are reserved in blocks: the end of the current block is fsynced to a file before any id
 * of it is handed out, so after a crash the broker resumes past every id it may have given.
 */

import { open, readFile, rename } from 'node:fs/promises';

export const PRODUCER_ID_BLOCK_SIZE = 1000;

/** Where InitProducerId gets ids: a local block file (single node) or the controller (cluster). */
export interface ProducerIdSource {
  allocate(): Promise<number>;
}

/**
 * Producer ids in a cluster: blocks of ids come from the controller (AllocateProducerIds), which
 * records each block in the metadata log, so no two brokers ever hand out the same id.
 */
export class BlockProducerIds implements ProducerIdSource {
  private next = 0;
  private end = 0;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly fetchBlock: () => Promise<{ start: number; length: number }>) {}

  allocate(): Promise<number> {
    const run = async () => {
      if (this.next >= this.end) {
        const b = await this.fetchBlock();
        this.next = b.start;
        this.end = b.start + b.length;
      }
      return this.next++;
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }
}

export class ProducerIdManager implements ProducerIdSource {
  private next: number;
  private blockEnd: number;

  private constructor(
    private readonly path: string,
    start: number,
  ) {
    this.next = start;
    this.blockEnd = start;
  }

  static async open(path: string): Promise<ProducerIdManager> {
    let start = 0;
    try {
      const n = Number((await readFile(path, 'utf8')).trim());
      if (Number.isSafeInteger(n) && n >= 0) start = n;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return new ProducerIdManager(path, start);
  }

  private chain: Promise<unknown> = Promise.resolve();

  /** The next producer id; reserves a new block on disk when the current one is used up. */
  allocate(): Promise<number> {
    const run = async () => {
      if (this.next >= this.blockEnd) {
        const end = this.next + PRODUCER_ID_BLOCK_SIZE;
        const tmp = `${this.path}.tmp`;
        const fh = await open(tmp, 'w');
        try {
          await fh.writeFile(String(end));
          await fh.sync();
        } finally {
          await fh.close();
        }
        await rename(tmp, this.path);
        this.blockEnd = end;
      }
      return this.next++;
    };
    const p = this.chain.then(run, run);
    this.chain = p;
    return p;
  }
}
