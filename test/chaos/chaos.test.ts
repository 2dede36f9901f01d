import { describe, expect, it } from 'vitest';
import { closedOnceInOrder, runChaos } from '../../bench/chaos-harness.js';

/**
 * The short chaos run (the long one is `npm run bench:chaos`): 3 replicas with clocks 2 s apart
 * on one Redis with AOF cross 3 midnights while replicas are SIGKILLed at random, right after a
 * day close and while the SMTP server accepts an email, and Redis is SIGKILLed before a close.
 */
describe('chaos: replicas and Redis killed around day closes', () => {
  it('closes each day once and in order, mails each day (duplicates counted), records nothing twice, loses nothing', async () => {
    const lines: string[] = [];
    const report = await runChaos({ replicas: 3, midnights: 3, skewsMs: [-2000, 0, 2000], seed: 7, progress: (l) => lines.push(l) });
    const context = JSON.stringify({ report, lines }, null, 1);
    expect({ ...report.kills, afterClose: Math.min(report.kills.afterClose, 1) }, context).toEqual({ random: 1, afterClose: 1, midSmtp: 1, redis: 1 });
    // Each day closed exactly once, in order (archived once, chained), and the archive verifies.
    expect(report.archiveDays, context).toEqual(report.days);
    expect(closedOnceInOrder(report), context).toBe(true);
    expect(report.closeOrder.length, context).toBeGreaterThanOrEqual(report.days.length - 1);
    expect(report.verifyArchiveExit, context).toBe(0);
    // One email per day; copies beyond the first only as counted resends, with the same Message-ID.
    let duplicates = 0;
    for (const day of report.days) {
      const e = report.emails[day]!;
      expect(e.copies, `${day}: ${context}`).toBeGreaterThanOrEqual(1);
      expect(e.messageIds, `${day}: ${context}`).toBe(1);
      duplicates += e.copies - 1;
    }
    expect(report.emailCounts.sent, context).toBe(report.days.length);
    expect(report.emailCounts.failed ?? 0, context).toBe(0);
    expect(duplicates, context).toBeLessThanOrEqual(report.emailCounts.resent ?? 0);
    // The sender killed after the server accepted its message resumed: counted, and the copy arrived.
    expect(report.emailCounts.resent ?? 0, context).toBeGreaterThanOrEqual(1);
    // Nothing recorded twice, nothing lost between the queues, runs per slot ≤ 1 + ε.
    expect(report.counted, context).toBe(report.distinctRecorded);
    expect(report.lost, context).toBe(0);
    expect(report.runs.slots, context).toBeGreaterThan(10);
    expect(report.runs.runs / report.runs.slots, context).toBeLessThanOrEqual(1.2);
    // Measured again within a minute after the chaos stopped.
    expect(report.measuredAfterChaosMs, context).toBeDefined();
    expect(report.measuredAfterChaosMs!, context).toBeLessThan(60_000);
  }, 150_000);
});
