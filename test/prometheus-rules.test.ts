import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

/** The alert rules in deploy/prometheus are checked and unit-tested with Prometheus' own promtool. */
const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'deploy', 'prometheus');
const promtool = process.env.VIGIL_PROMTOOL ?? 'promtool';

describe('Prometheus alert rules', () => {
  it('are valid rules', () => {
    const out = execFileSync(promtool, ['check', 'rules', 'vigil-rules.yml'], { cwd: dir, encoding: 'utf8' });
    // Counted from the file, so adding a rule does not mean editing this test: promtool must see them all.
    const file = parse(readFileSync(path.join(dir, 'vigil-rules.yml'), 'utf8')) as { groups: Array<{ rules: unknown[] }> };
    const count = file.groups.reduce((n, g) => n + g.rules.length, 0);
    expect(count).toBeGreaterThan(0);
    expect(out).toContain(`SUCCESS: ${count} rules found`);
  });

  it('pass their unit tests (red after 30 min, unknown after 2 h, left the feed, snapshot overdue, email rejected, email given up, snapshot integrity failure, certificate expiring)', () => {
    const out = execFileSync(promtool, ['test', 'rules', 'vigil-rules.test.yml'], { cwd: dir, encoding: 'utf8' });
    expect(out).toContain('SUCCESS');
  });
});
