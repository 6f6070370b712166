/**
 * Time as the group coordinator sees it: a clock and a scheduler, passed in so tests can run the
 * coordinator on manual time (ManualTime) and the broker on real time (realTime).
 */

export interface Clock {
  nowMs(): number;
}

export type TimerHandle = unknown;

export interface Scheduler {
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const realClock: Clock = { nowMs: () => Date.now() };

export const realScheduler: Scheduler = {
  setTimeout(fn, ms) {
    const t = setTimeout(fn, Math.max(0, ms));
    // Group timers never keep the process alive on their own.
    t.unref();
    return t;
  },
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

interface ManualTimer {
  id: number;
  at: number;
  fn: () => void;
}

/**
 * A clock and scheduler that move only when told. Timers fire in (time, creation) order; a timer
 * scheduled by a firing timer for the same instant fires in the same advance.
 */
export class ManualTime implements Clock, Scheduler {
  private now: number;
  private nextId = 1;
  private timers = new Map<number, ManualTimer>();

  constructor(startMs = 1_700_000_000_000) {
    this.now = startMs;
  }

  nowMs(): number {
    return this.now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.nextId++;
    this.timers.set(id, { id, at: this.now + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle as number);
  }

  get pendingTimers(): number {
    return this.timers.size;
  }

  private nextDue(until: number): ManualTimer | undefined {
    let best: ManualTimer | undefined;
    for (const t of this.timers.values()) {
      if (t.at > until) continue;
      if (!best || t.at < best.at || (t.at === best.at && t.id < best.id)) best = t;
    }
    return best;
  }

  /**
   * Moves time forward by `ms`, firing due timers in order. `settle` runs after each timer (e.g.
   * to let promise continuations run) before the next one is picked.
   */
  async advance(ms: number, settle: () => Promise<void> = flushMicrotasks): Promise<void> {
    const until = this.now + ms;
    await settle();
    for (;;) {
      const t = this.nextDue(until);
      if (!t) break;
      this.timers.delete(t.id);
      this.now = Math.max(this.now, t.at);
      t.fn();
      await settle();
    }
    this.now = until;
    await settle();
  }

  /** A promise resolved after `ms` of manual time. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.setTimeout(resolve, ms));
  }
}

/** Lets every queued promise continuation run (a macrotask turn drains the microtask queue). */
export function flushMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
