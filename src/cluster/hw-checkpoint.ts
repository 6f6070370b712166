/**
 * The high-watermark checkpoint (Kafka's `replication-offset-checkpoint`): every partition
 * replica's high watermark, written to one file in the data directory every
 * `replica.high.watermark.checkpoint.interval.ms` (5 s) and on shutdown.
 *
 * Why: the high watermark lives in memory; without the checkpoint a restarted replica starts at
 * HW 0, and as leader it shows consumers nothing until its followers fetch again. A checkpointed
 * value is a high watermark the ISR reached at some point, so it is never above what is
 * committed, and restarting from it is safe (the replica also caps it at its log end).
 *
 * Format (Kafka's): a version line `0`, a count line, then `topic partition offset` per line.
 * Written atomically (temp file, fsync, rename): a crash, or a write the disk refuses (full), leaves
 * the old or the new file, and a failed write removes its temp file. An
 * unreadable file is reported and ignored (the replicas then start at 0, as without it).
 */

import { open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';

export const HW_CHECKPOINT_FILE = 'replication-offset-checkpoint';

export type HighWatermarks = Map<string, number>;

/** One partition as a map key (the checkpoint's and the replica manager's). */
export const partitionKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

export async function readHighWatermarks(
  dataDir: string,
  warn: (m: string) => void,
): Promise<HighWatermarks> {
  const out: HighWatermarks = new Map();
  let text: string;
  try {
    text = await readFile(join(dataDir, HW_CHECKPOINT_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return out;
    throw err;
  }
  const lines = text.split('\n').filter((l) => l !== '');
  const count = Number(lines[1]);
  if (lines[0] !== '0' || !Number.isSafeInteger(count) || count !== lines.length - 2) {
    warn(`ignoring unreadable ${HW_CHECKPOINT_FILE}`);
    return out;
  }
  for (const line of lines.slice(2)) {
    const m = /^(\S+) (\d+) (\d+)$/.exec(line);
    if (!m) {
      warn(`ignoring unreadable ${HW_CHECKPOINT_FILE}`);
      return new Map();
    }
    out.set(partitionKey(m[1]!, Number(m[2])), Number(m[3]));
  }
  return out;
}

export async function writeHighWatermarks(
  dataDir: string,
  entries: { topic: string; partition: number; highWatermark: number }[],
): Promise<void> {
  const body = [
    '0',
    String(entries.length),
    ...entries.map((e) => `${e.topic} ${e.partition} ${e.highWatermark}`),
  ].join('\n');
  const path = join(dataDir, HW_CHECKPOINT_FILE);
  const tmp = `${path}.tmp`;
  try {
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(`${body}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    // A full disk (ENOSPC): the old checkpoint is untouched; free what the temp file took.
    await unlink(tmp).catch(() => {});
    throw err;
  }
}
