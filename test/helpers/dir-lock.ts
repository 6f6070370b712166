/**
 * A lock between processes made of a directory (mkdir is atomic): builds that several test or
 * harness processes may start at once (the compiled broker, the chaos harness's Java producer)
 * run one at a time. A lock older than `staleMs` is taken to be left by a dead process.
 */

import { mkdirSync, rmSync, statSync } from 'node:fs';

export async function withDirLock<T>(
  lock: string,
  o: { waitMs: number; staleMs: number; pollMs: number },
  fn: () => Promise<T>,
): Promise<T> {
  const deadline = Date.now() + o.waitMs;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      try {
        if (Date.now() - statSync(lock).mtimeMs > o.staleMs) rmSync(lock, { recursive: true, force: true });
      } catch {}
      if (Date.now() > deadline) throw new Error(`timed out waiting for the build lock ${lock}`);
      await new Promise((r) => setTimeout(r, o.pollMs));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}
