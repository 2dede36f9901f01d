/**
 * Limits of the day ledger that the pure posture code must know about. Kept here, not in
 * src/store/state.ts, so that pure modules (snapshot, exceptions) do not load the store.
 */

/**
 * At most this many failing resources of one run are kept in its day's ledger. A unit whose day
 * lists this many may have been cut, so no exception can prove it holds every failure.
 */
export const MAX_FAILING_PER_RUN = 2000;
