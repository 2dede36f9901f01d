import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The alerts that read time() on a realistic clock (deploy/prometheus/vigil-rules.clock.test.yml):
 * promtool's clock starts at unix 0, where a 0 timestamp looks fresh. Run with Prometheus' promtool.
 */
const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'deploy', 'prometheus');
const promtool = process.env.VIGIL_PROMTOOL ?? 'promtool';

describe('Prometheus alert rules on a 2026 clock', () => {
  it('snapshot overdue: silent on a fresh install and after rebuild, fires when really overdue; a 0 timestamp would page; probe not judged for 6 hours', () => {
    const out = execFileSync(promtool, ['test', 'rules', 'vigil-rules.clock.test.yml'], { cwd: dir, encoding: 'utf8' });
    expect(out).toContain('SUCCESS');
  }, 120_000);
});
