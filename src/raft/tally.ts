/**
 * VoteTally: the ballot box of one (pre-)election (Redpanda's vote_stm / prevote_stm reduced to
 * their arithmetic). A voter's first answer counts; later duplicates are ignored, so a duplicated
 * or replayed response cannot count twice.
 */

import type { NodeId } from './log.js';

export type ElectionOutcome = 'won' | 'lost' | 'pending';

export class VoteTally {
  private readonly answers = new Map<NodeId, boolean>();
  private readonly voters: ReadonlySet<NodeId>;
  readonly quorum: number;

  constructor(voters: readonly NodeId[]) {
    this.voters = new Set(voters);
    this.quorum = Math.floor(this.voters.size / 2) + 1;
  }

  record(voter: NodeId, granted: boolean): void {
    if (!this.voters.has(voter) || this.answers.has(voter)) return;
    this.answers.set(voter, granted);
  }

  has(voter: NodeId): boolean {
    return this.answers.has(voter);
  }

  outcome(): ElectionOutcome {
    let granted = 0;
    let rejected = 0;
    for (const g of this.answers.values()) g ? granted++ : rejected++;
    if (granted >= this.quorum) return 'won';
    // Lost once the voters who have not answered could no longer make a quorum with the grants.
    if (rejected > this.voters.size - this.quorum) return 'lost';
    return 'pending';
  }
}
