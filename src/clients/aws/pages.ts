import type { z } from 'zod';
import { MalformedResponseError } from '../../probe/errors.js';

/** A runaway NextToken loop is a malformed answer, not a reason to hang. */
export const MAX_PAGES = 1000;

/**
 * Every page of one AWS list call, each parsed by `schema` at the edge. `send` makes the request
 * for a NextToken (undefined for the first page). A token repeated by the server would otherwise
 * end the walk early on a partial list — a verdict on half the resources — so it is a malformed
 * answer, as is more than {@link MAX_PAGES} pages.
 */
export async function allPages<S extends z.ZodType<{ NextToken?: string | undefined }>>(
  what: string,
  schema: S,
  send: (token: string | undefined) => Promise<unknown>,
): Promise<Array<z.output<S>>> {
  const pages: Array<z.output<S>> = [];
  let token: string | undefined;
  for (;;) {
    if (pages.length >= MAX_PAGES) throw new MalformedResponseError(`${what} returned more than ${MAX_PAGES} pages`);
    const parsed = schema.safeParse(await send(token));
    if (!parsed.success) throw new MalformedResponseError(`${what} answered something vigil cannot read: ${parsed.error.issues[0]?.message ?? 'schema mismatch'}`);
    pages.push(parsed.data);
    const next = parsed.data.NextToken;
    if (!next) return pages;
    if (next === token) throw new MalformedResponseError(`${what} returned the same NextToken twice: the list would be incomplete`);
    token = next;
  }
}
