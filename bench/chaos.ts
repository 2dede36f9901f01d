/**
 * `npm run bench:chaos`: the long chaos run (the short one runs in `npm test`, test/chaos/). Three
 * replicas — real `vigil start` processes, clocks −2 s, 0, +2 s — on one redis-server with AOF
 * cross CHAOS_MIDNIGHTS midnights (default 12) of a shifted clock while replicas are SIGKILLed at
 * random (also every CHAOS_KILL_EVERY_MS real ms, default 5000), right after day closes and while
 * the SMTP server accepts an email, and Redis is SIGKILLed and restarted on its AOF before closes.
 * Prints the figures and exits non-zero when an invariant does not hold.
 */
import { closedOnceInOrder, runChaos, type ChaosReport } from './chaos-harness.js';

function problems(r: ChaosReport): string[] {
  const out: string[] = [];
  // A close is logged after it is published: a replica killed in between publishes without the line.
  if (!closedOnceInOrder(r)) out.push(`"day closed" lines ${JSON.stringify(r.closeOrder)}: a day twice or out of order`);
  if (JSON.stringify(r.archiveDays) !== JSON.stringify(r.days)) out.push('archive days differ from the days closed');
  if (r.verifyArchiveExit !== 0) out.push(`verify-archive exited ${r.verifyArchiveExit}`);
  let duplicates = 0;
  for (const d of r.days) {
    const e = r.emails[d];
    if (!e || e.copies < 1) out.push(`no email for ${d}`);
    else if (e.messageIds !== 1) out.push(`${d}: ${e.messageIds} different Message-IDs`);
    else duplicates += e.copies - 1;
  }
  if (duplicates > (r.emailCounts.resent ?? 0)) out.push(`${duplicates} duplicate emails but only ${r.emailCounts.resent ?? 0} counted resent`);
  if (r.counted !== r.distinctRecorded) out.push(`runs counted ${r.counted} ≠ distinct runIds recorded ${r.distinctRecorded}`);
  if (r.lost > 0) out.push(`${r.lost} completed runs without a recorded result`);
  if (r.runs.runs / Math.max(1, r.runs.slots) > 1.05) out.push(`runs per slot ${(r.runs.runs / r.runs.slots).toFixed(3)} > 1.05`);
  if (r.measuredAfterChaosMs === undefined || r.measuredAfterChaosMs > 60_000) out.push('not measured within a minute after the chaos');
  return out;
}

const report = await runChaos({
  replicas: 3,
  midnights: Number(process.env.CHAOS_MIDNIGHTS ?? 12),
  skewsMs: [-2000, 0, 2000],
  randomKillEveryMs: Number(process.env.CHAOS_KILL_EVERY_MS ?? 5000),
  seed: Number(process.env.CHAOS_SEED ?? 12),
  progress: (line) => process.stderr.write(`${line}\n`),
});
const duplicates = report.days.reduce((n, d) => n + Math.max(0, (report.emails[d]?.copies ?? 0) - 1), 0);
console.log(
  [
    `chaos: ${report.days.length} days (${report.days[0]} … ${report.days.at(-1)}) in ${(report.durationMs / 1000).toFixed(0)} s, 3 replicas (clocks −2 s/0/+2 s)`,
    `kills: ${report.kills.random} random, ${report.kills.afterClose} right after a day close, ${report.kills.midSmtp} mid-SMTP (every replica), ${report.kills.redis} Redis (SIGKILL, restart on AOF)`,
    `days closed once and in order: ${closedOnceInOrder(report) && JSON.stringify(report.archiveDays) === JSON.stringify(report.days)} (${report.archiveDays.length} archived; ${report.closeOrder.length} "day closed" lines, none twice); verify-archive exit ${report.verifyArchiveExit}`,
    `emails: ${report.days.length - report.days.filter((d) => (report.emails[d]?.copies ?? 0) === 0).length}/${report.days.length} days delivered, ${duplicates} duplicates (same Message-ID), counters ${JSON.stringify(report.emailCounts)}`,
    `runs per slot: ${(report.runs.runs / Math.max(1, report.runs.slots)).toFixed(3)} (${report.runs.runs} runs, ${report.runs.slots} slots, max ${report.runs.maxPerSlot})`,
    `recorded: ${report.counted} counted, ${report.distinctRecorded} distinct runIds, ${report.lost} lost`,
    `measured again ${report.measuredAfterChaosMs === undefined ? 'never' : `${(report.measuredAfterChaosMs / 1000).toFixed(1)} s`} after the chaos stopped`,
  ].join('\n'),
);
const failed = problems(report);
for (const p of failed) console.error(`FAILED: ${p}`);
process.exitCode = failed.length > 0 ? 1 : 0;
