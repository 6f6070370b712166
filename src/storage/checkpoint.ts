/**
 * The per-partition logStartOffset checkpoint file.
 *
 * DeleteRecords can move logStartOffset into the middle of a segment, where no file name records
 * it, so it is persisted here. Format (Kafka's checkpoint style): a version line "0" and the offset
 * on the next line. Written atomically (tmp + fsync + rename + dir fsync): a crash leaves the old
 * or the new value, never a torn one. An unreadable file is reported and treated as absent, which
 * only makes already-deleted records readable again — never loses data.
 */

import * as path from 'node:path';
import type { LogFileSystem } from './fs.js';
import { readWholeFile, writeFileAtomic } from './segment.js';

export const LOG_START_OFFSET_CHECKPOINT = 'log-start-offset.checkpoint';
const CHECKPOINT_VERSION = '0';

export async function readLogStartCheckpoint(
  fs: LogFileSystem,
  dir: string,
  warn: (msg: string) => void,
): Promise<number | null> {
  const p = path.join(dir, LOG_START_OFFSET_CHECKPOINT);
  const bytes = await readWholeFile(fs, p);
  if (!bytes) return null;
  const lines = bytes.toString('utf8').split('\n');
  const value = lines[1] ?? '';
  if (lines[0] !== CHECKPOINT_VERSION || !/^\d{1,16}$/.test(value)) {
    warn(`ignoring unreadable log start offset checkpoint ${p}`);
    return null;
  }
  const offset = Number(value);
  return Number.isSafeInteger(offset) ? offset : null;
}

export async function writeLogStartCheckpoint(
  fs: LogFileSystem,
  dir: string,
  logStartOffset: number,
): Promise<void> {
  const p = path.join(dir, LOG_START_OFFSET_CHECKPOINT);
  await writeFileAtomic(fs, p, Buffer.from(`${CHECKPOINT_VERSION}\n${logStartOffset}\n`, 'utf8'));
  await fs.fsyncDir(dir);
}
