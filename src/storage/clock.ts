/**
 * Wall-clock access for the storage layer. Everything that depends on time (segment age, retention,
 * append timestamps) reads it through `Clock` so tests and a simulator can drive time by hand.
 */

export interface Clock {
  nowMs(): number;
}

export const systemClock: Clock = { nowMs: () => Date.now() };

/** A clock that only moves when told to; starts at `startMs`. */
export class ManualClock implements Clock {
  private currentMs: number;
  constructor(startMs = 1_700_000_000_000) {
    this.currentMs = startMs;
  }
  nowMs(): number {
    return this.currentMs;
  }
  advance(deltaMs: number): void {
    this.currentMs += deltaMs;
  }
  set(ms: number): void {
    this.currentMs = ms;
  }
}
