/**
 * Full disks for the chaos harness's `disk` fault: each node's data dir lives on a tmpfs of its
 * own (mounted by the harness; needs root and a kernel that allows it), and the fault fills that
 * tmpfs with a filler file until the kernel answers ENOSPC, then deletes it when the fault heals.
 */

import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { open, rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';

/** A tmpfs mounted for one node; the node's data dir is `dataDir` inside it. */
export class NodeDisk {
  private constructor(
    readonly mountPoint: string,
    readonly sizeBytes: number,
  ) {}

  get dataDir(): string {
    return join(this.mountPoint, 'data');
  }

  private get filler(): string {
    return join(this.mountPoint, 'chaos-filler');
  }

  /** Mounts a tmpfs of `sizeBytes` at `mountPoint`; throws, saying what is needed, if refused. */
  static mount(mountPoint: string, sizeBytes: number): NodeDisk {
    mkdirSync(mountPoint, { recursive: true });
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}`, 'tmpfs', mountPoint], {
        stdio: 'pipe',
      });
    } catch (e) {
      rmSync(mountPoint, { recursive: true, force: true });
      const why = (e as { stderr?: Buffer }).stderr?.toString().trim() || (e as Error).message;
      throw new Error(
        `the disk fault needs to mount a tmpfs per node (run as root where mount -t tmpfs is allowed): ${why}`,
      );
    }
    mkdirSync(join(mountPoint, 'data'));
    return new NodeDisk(mountPoint, sizeBytes);
  }

  /** Fills the file system until a write fails with ENOSPC; returns the bytes written. */
  async fill(): Promise<number> {
    const chunk = Buffer.alloc(1 << 20);
    const fh = await open(this.filler, 'a');
    let written = 0;
    try {
      for (;;) {
        const free = await this.freeBytes();
        if (free <= 0) break;
        const n = Math.min(chunk.length, free);
        try {
          const { bytesWritten } = await fh.write(chunk, 0, n);
          written += bytesWritten;
          if (bytesWritten < n) break;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw e;
        }
      }
    } finally {
      await fh.close().catch(() => {});
    }
    return written;
  }

  async free(): Promise<void> {
    await rm(this.filler, { force: true });
  }

  async freeBytes(): Promise<number> {
    const s = await statfs(this.mountPoint);
    return s.bavail * s.bsize;
  }

  /** Unmounts (lazily if busy) and removes the mount point. */
  unmount(): void {
    try {
      execFileSync('umount', [this.mountPoint], { stdio: 'pipe' });
    } catch {
      try {
        execFileSync('umount', ['-l', this.mountPoint], { stdio: 'pipe' });
      } catch {
        // Left mounted; nothing else to do.
      }
    }
    rmSync(this.mountPoint, { recursive: true, force: true });
  }
}
