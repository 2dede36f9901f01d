/**
 * Times shown to people (the email, the trust page) in the configured `timezone`, e.g.
 * "2026-11-21 14:03 CET". Machine-readable fields (JSON, `datetime` attributes) stay ISO/UTC.
 * Pure apart from Intl's time-zone data: the same instant and zone always give the same text.
 */

const formatters = new Map<string, Intl.DateTimeFormat[]>();

function formattersFor(timeZone: string): Intl.DateTimeFormat[] {
  let f = formatters.get(timeZone);
  if (!f) {
    const opts: Intl.DateTimeFormatOptions = {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
      timeZoneName: 'short',
    };
    // en-GB names European zones (CET, BST), en-US the American ones (EST, PDT); elsewhere both say GMT±h.
    f = [new Intl.DateTimeFormat('en-GB', opts), new Intl.DateTimeFormat('en-US', opts)];
    formatters.set(timeZone, f);
  }
  return f;
}

/**
 * "YYYY-MM-DD HH:MM ZONE" for an ISO timestamp in `timeZone` (an IANA name). The zone is an
 * abbreviation where one is in common use (CET, EST, UTC), else an offset ("GMT+9"). The input
 * is returned unchanged when it is not a timestamp; UTC when the zone is unknown to Intl.
 */
export function formatLocalTime(iso: string, timeZone: string): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  let fs: Intl.DateTimeFormat[];
  try {
    fs = formattersFor(timeZone);
  } catch {
    fs = formattersFor('UTC');
  }
  let best: Record<string, string> | undefined;
  for (const f of fs) {
    const parts = Object.fromEntries(f.formatToParts(new Date(t)).map((p) => [p.type, p.value]));
    if (!best) best = parts;
    if (!/^GMT[+-]/.test(parts.timeZoneName ?? '')) {
      best = parts;
      break;
    }
  }
  const p = best ?? {};
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute} ${p.timeZoneName === 'GMT' && timeZone === 'UTC' ? 'UTC' : p.timeZoneName}`;
}
