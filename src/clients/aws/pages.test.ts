import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MalformedResponseError } from '../../probe/errors.js';
import { allPages } from './pages.js';

const Page = z.looseObject({ Items: z.array(z.number()), NextToken: z.string().optional() });

describe('allPages', () => {
  it('follows NextToken to the last page', async () => {
    const answers: Record<string, unknown> = { '': { Items: [1], NextToken: 'a' }, a: { Items: [2], NextToken: 'b' }, b: { Items: [3] } };
    const pages = await allPages('x:List', Page, async (t) => answers[t ?? '']);
    expect(pages.flatMap((p) => p.Items)).toEqual([1, 2, 3]);
  });

  it('a server repeating its NextToken is malformed, never a shorter list', async () => {
    await expect(allPages('x:List', Page, async () => ({ Items: [1], NextToken: 'same' }))).rejects.toThrow(MalformedResponseError);
  });

  it('a page that fails its schema is malformed', async () => {
    await expect(allPages('x:List', Page, async () => ({ Items: 'nope' }))).rejects.toThrow(/cannot read/);
  });
});
