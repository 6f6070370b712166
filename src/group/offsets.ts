/**
 * A group's committed offsets, as loaded from and written to `__consumer_offsets`: topic ->
 * partition -> the last committed value. The coordinator updates this only after the commit
 * record is durable, so what OffsetFetch returns has always been persisted.
 */

import type { OffsetCommitRecordValue } from './records.js';

export type CommittedOffset = OffsetCommitRecordValue;

export class OffsetStore {
  private readonly topics = new Map<string, Map<number, CommittedOffset>>();

  get(topic: string, partition: number): CommittedOffset | undefined {
    return this.topics.get(topic)?.get(partition);
  }

  set(topic: string, partition: number, value: CommittedOffset): void {
    let t = this.topics.get(topic);
    if (!t) {
      t = new Map();
      this.topics.set(topic, t);
    }
    t.set(partition, value);
  }

  delete(topic: string, partition: number): boolean {
    const t = this.topics.get(topic);
    if (!t) return false;
    const had = t.delete(partition);
    if (t.size === 0) this.topics.delete(topic);
    return had;
  }

  get size(): number {
    let n = 0;
    for (const t of this.topics.values()) n += t.size;
    return n;
  }

  topicNames(): string[] {
    return [...this.topics.keys()];
  }

  /** Every committed offset, topics and partitions in insertion order. */
  *entries(): Generator<{ topic: string; partition: number; value: CommittedOffset }> {
    for (const [topic, parts] of this.topics)
      for (const [partition, value] of parts) yield { topic, partition, value };
  }

  partitionsOf(topic: string): [number, CommittedOffset][] {
    return [...(this.topics.get(topic)?.entries() ?? [])].sort((a, b) => a[0] - b[0]);
  }

  clear(): void {
    this.topics.clear();
  }
}
