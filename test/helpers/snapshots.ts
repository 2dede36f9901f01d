import { snapshotHash, type Snapshot, type SnapshotBody, type SnapshotControl } from '../../src/posture/snapshot-types.js';

/** A control for a test snapshot; everything can be overridden. */
export function sampleControl(over: Partial<SnapshotControl> & { id: string }): SnapshotControl {
  return {
    title: `Internal title of ${over.id}`,
    public: true,
    publicTitle: `Public ${over.id}`,
    publicDescription: `What ${over.id} means for customers.`,
    frameworks: { soc2: ['CC6.7'], iso27001: ['A.8.24'] },
    verdict: 'green',
    reasons: [],
    streak: 31,
    greenSince: '2026-10-22',
    thirtyDayGreen: true,
    lastGreenDay: '2026-11-21',
    lastMeasuredAt: '2026-11-21T23:45:02.000Z',
    cadence: [{ probe: 'tls-certificate-posture', schedule: '*/15 * * * *', intervalSeconds: 900 }],
    failing: [],
    ...over,
  };
}

/** Adds `hash` to a body. */
export function sealed(body: SnapshotBody): Snapshot {
  return { ...body, hash: snapshotHash(body) };
}

/** A snapshot for `date` with the given controls (counts computed), chained to `prevHash`. */
export function sampleSnapshot(date: string, controls: SnapshotControl[], prevHash: string | null = null, over: Partial<SnapshotBody> = {}): Snapshot {
  const count = (v: string) => controls.filter((c) => c.verdict === v).length;
  return sealed({
    schema: 'vigil.snapshot/1',
    date,
    timezone: 'UTC',
    minGreenDays: 30,
    prevHash,
    counts: { green: count('green'), red: count('red'), unknown: count('unknown') },
    controls,
    probeHealth: [
      { probe: 'tls-certificate-posture', target: 'public-web', runs: 96, errors: 0, unknown: 0, red: 0, lastRunAt: `${date}T23:45:02.000Z`, stale: false, sourceFreshness: null, lastError: null },
    ],
    coverage: { soc2: [{ id: 'CC6.7', status: 'measured', controls: controls.map((c) => c.id) }], iso27001: [{ id: 'A.8.24', status: 'measured', controls: controls.map((c) => c.id) }] },
    diff: { since: null, newReds: [], recoveries: [], reachedThirtyDays: [], leftFeed: [] },
    ...over,
  });
}

/** `days` consecutive daily snapshots starting at `first`, correctly chained. */
export function sampleChain(first: string, days: number, controls: SnapshotControl[] = [sampleControl({ id: 'tls-certificates' })]): Snapshot[] {
  const out: Snapshot[] = [];
  let prev: string | null = null;
  const start = Date.parse(`${first}T00:00:00Z`);
  for (let i = 0; i < days; i++) {
    const date = new Date(start + i * 86_400_000).toISOString().slice(0, 10);
    const s = sampleSnapshot(date, controls, prev, { diff: { since: out.at(-1)?.date ?? null, newReds: [], recoveries: [], reachedThirtyDays: [], leftFeed: [] } });
    out.push(s);
    prev = s.hash;
  }
  return out;
}
