/**
 * Diagnoses of the differences the matrix finds: for a cell that passes on Kafka and fails on
 * Sluice, what Sluice does wrong. Matched against the failing cell's client, scenario and detail;
 * written after investigating each one (see docs/compatibility.md, "Differences").
 */

import type { Cell } from './scenario.js';

interface Diagnosis {
  rows: RegExp;
  clients?: RegExp;
  detail?: RegExp;
  text: string;
}

const GROUPS =
  'Sluice does not serve the consumer-group APIs yet (FindCoordinator 10, JoinGroup 11, Heartbeat 12, LeaveGroup 13, SyncGroup 14, DescribeGroups 15, ListGroups 16, OffsetCommit 8, OffsetFetch 9 are absent from its ApiVersions answer). Expected until the group coordinator lands (in progress).';

export const DIAGNOSES: Diagnosis[] = [
  { rows: /^(consume-group|describe-group|console-consumer-group|consumer-groups)$/, text: GROUPS },
];

export function diagnose(
  client: string,
  row: string,
  sluice: Cell,
  kafka: Cell | undefined,
): string | undefined {
  void kafka;
  for (const d of DIAGNOSES) {
    if (!d.rows.test(row)) continue;
    if (d.clients && !d.clients.test(client)) continue;
    if (d.detail && !d.detail.test(`${sluice.detail}\n${sluice.stderr ?? ''}`)) continue;
    return d.text;
  }
  return undefined;
}
