/**
 * TEST-ONLY clock for the chaos runs (test/chaos/, bench/chaos.ts): preloaded into a replica with
 * `node --import ./test/chaos/fake-clock.mjs bin/vigil.js start …`. Never part of the daemon.
 *
 * - `VIGIL_CHAOS_CLOCK_FILE`: a file holding `{"offsetMs": N}`; the process's wall clock (`Date`,
 *   `Date.now()`, `new Date()`) reads real time + N (+ the skew), re-read every 25 ms. The harness
 *   moves every replica's clock at once by rewriting it, e.g. to just before the next midnight.
 *   Timers (setTimeout, the monotonic clock) and Redis keep real time.
 * - `VIGIL_CHAOS_SKEW_MS`: this replica's own offset on top (e.g. ±2000 for clocks 2 s apart).
 * - `VIGIL_CHAOS_INTERVAL_DIVISOR`: setInterval periods of 60 s or more run this many times faster
 *   (the daemon's one-minute periodic pass), so a day closes within a second of its midnight.
 */
import { readFileSync } from 'node:fs';

const file = process.env.VIGIL_CHAOS_CLOCK_FILE;
const skew = Number(process.env.VIGIL_CHAOS_SKEW_MS ?? 0);
const divisor = Number(process.env.VIGIL_CHAOS_INTERVAL_DIVISOR ?? 1);
const RealDate = Date;
const realNow = RealDate.now.bind(RealDate);
let offset = 0;

function reload() {
  if (!file) return;
  try {
    const value = Number(JSON.parse(readFileSync(file, 'utf8')).offsetMs);
    if (Number.isFinite(value)) offset = value;
  } catch {
    // Mid-rewrite: keep the previous offset.
  }
}
reload();
const realSetInterval = globalThis.setInterval;
realSetInterval(reload, 25).unref();

function fakeNow() {
  return realNow() + offset + skew;
}

class FakeDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(fakeNow());
    else super(...args);
  }
  static now() {
    return fakeNow();
  }
  // Dates made before the patch, or by Node itself (fs.Stats), are dates too.
  static [Symbol.hasInstance](value) {
    return value instanceof RealDate;
  }
}
// `Date()` called as a function returns a string of the current time.
const DateShim = new Proxy(FakeDate, {
  apply() {
    return new RealDate(fakeNow()).toString();
  },
});
globalThis.Date = DateShim;

if (divisor > 1) {
  globalThis.setInterval = function chaosSetInterval(fn, ms, ...args) {
    const period = typeof ms === 'number' && ms >= 60_000 ? ms / divisor : ms;
    return realSetInterval(fn, period, ...args);
  };
}
