/**
 * Review R3 of github-release-sbom's SBOM check: an SPDX document that names only its own
 * subject lists nothing (as a CycloneDX BOM with only `metadata.component` does not), and what a
 * hostile document puts into the finding's message stays bounded.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { checkSbom } from './sbom.js';

const require = createRequire(import.meta.url);
/** GitHub's own SPDX 2.3 export (GET /repos/{o}/{r}/dependency-graph/sbom), from its published example. */
const githubSpdx = (): Record<string, unknown> =>
  (JSON.parse(readFileSync(require.resolve('@octokit/openapi/generated/api.github.com.json'), 'utf8')) as {
    components: { examples: Record<string, { value: { sbom: Record<string, unknown> } }> };
  }).components.examples['dependency-graph-export-sbom-response']!.value.sbom;
const check = (doc: unknown) => checkSbom(Buffer.from(JSON.stringify(doc)));
const problem = (doc: unknown): string => {
  const got = check(doc);
  return got.valid ? '' : got.problem;
};

describe('SPDX: "names at least one package" (review R3)', () => {
  const doc = githubSpdx() as { packages: Array<{ SPDXID: string }>; relationships: unknown[] };
  const repoOnly = { ...doc, packages: doc.packages.filter((p) => p.SPDXID === 'SPDXRef-Repository'), relationships: [{ relationshipType: 'DESCRIBES', spdxElementId: 'SPDXRef-DOCUMENT', relatedSpdxElement: 'SPDXRef-Repository' }] };

  it("GitHub's export of a repository without dependencies (only the repository itself) names no package", () => {
    expect(problem(repoOnly)).toBe('valid SPDX 2.3 but names no package besides the one it describes (SPDXRef-Repository)');
  });
  it('the same with the deprecated documentDescribes, or DESCRIBED_BY', () => {
    expect(problem({ ...repoOnly, relationships: [], documentDescribes: ['SPDXRef-Repository'] })).toContain('names no package besides the one it describes');
    expect(problem({ ...repoOnly, relationships: [{ relationshipType: 'DESCRIBED_BY', spdxElementId: 'SPDXRef-Repository', relatedSpdxElement: 'SPDXRef-DOCUMENT' }] })).toContain('names no package besides');
  });
  it('the subject is not counted; its dependencies are', () => {
    expect(check(doc)).toEqual({ valid: true, format: 'SPDX', version: '2.3', packages: 1 });
  });
  it('one package and no DESCRIBES: it is the inventory, counted', () => {
    expect(check({ ...repoOnly, relationships: [] })).toMatchObject({ valid: true, packages: 1 });
  });
  it('a document describing several packages counts them all', () => {
    const both = [
      { relationshipType: 'DESCRIBES', spdxElementId: 'SPDXRef-DOCUMENT', relatedSpdxElement: 'SPDXRef-Repository' },
      { relationshipType: 'DESCRIBES', spdxElementId: 'SPDXRef-DOCUMENT', relatedSpdxElement: 'SPDXRef-Package' },
    ];
    expect(check({ ...doc, relationships: both })).toMatchObject({ valid: true, packages: 2 });
  });
});

describe('messages from hostile documents stay bounded (review R3)', () => {
  it('a megabyte-long unknown property name is cut in the problem', () => {
    const name = `x${'\n'.repeat(10)}${'y'.repeat(1024 * 1024)}`;
    const got = problem({ ...githubSpdx(), [name]: 1 });
    expect(got).toContain('must NOT have additional properties "x??????????yyy');
    expect(got.length).toBeLessThan(400);
    expect(got).not.toContain('\n');
  });
  it('a long path in an error is cut too', () => {
    const doc = githubSpdx() as { packages: Array<Record<string, unknown>> };
    const key = 'k'.repeat(100_000);
    const got = problem({ ...doc, annotations: [{ annotationDate: '2026-01-01T00:00:00Z', annotationType: 'OTHER', annotator: 'a', comment: 'c', [key]: 1 }] });
    expect(got.length).toBeLessThan(400);
  });
});
