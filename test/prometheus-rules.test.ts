import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/** The alert rules in deploy/prometheus are checked and unit-tested with Prometheus' own promtool. */
const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'deploy', 'prometheus');
const promtool = process.env.VIGIL_PROMTOOL ?? 'promtool';

describe('Prometheus alert rules', () => {
  it('are valid rules', () => {
    const out = execFileSync(promtool, ['check', 'rules', 'vigil-rules.yml'], { cwd: dir, encoding: 'utf8' });
    expect(out).toContain('SUCCESS: 9 rules found');
  });

  it('pass their unit tests (red after 30 min, unknown after 2 h, left the feed, snapshot overdue, email rejected, certificate expiring)', () => {
    const out = execFileSync(promtool, ['test', 'rules', 'vigil-rules.test.yml'], { cwd: dir, encoding: 'utf8' });
    expect(out).toContain('SUCCESS');
  });
});
