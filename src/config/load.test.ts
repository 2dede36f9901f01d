import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fakeProbe } from '../../test/helpers/fake-probe.js';
import { ConfigError, loadConfigText } from './load.js';

const dir = mkdtempSync(path.join(tmpdir(), 'vigil-config-'));
const catalog = path.join(dir, 'controls.yaml');
writeFileSync(
  catalog,
  `controls:
  - id: fake-control
    title: Fake
    publicTitle: Fake
    publicDescription: Fake control
    frameworks: { soc2: [CC6.7], iso27001: [A.8.24] }
    probes: [fake-check]
`,
);
const file = path.join(dir, 'vigil.yaml');

function problems(yaml: string): string[] {
  try {
    loadConfigText(`controls: ./controls.yaml\n${yaml}`, file, [fakeProbe]);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('config validation', () => {
  it.each([
    ['port out of range names the full key path', 'tls:\n  - name: web\n    endpoints: [a.example, b.example, { host: c.example, port: 70000 }]\n', `${file}: tls[0].endpoints[2].port: expected a number 1–65535`],
    ['port that is not a number', 'tls:\n  - name: web\n    endpoints: [{ host: c.example, port: "https" }]\n', `${file}: tls[0].endpoints[0].port: expected a number 1–65535`],
    ['unknown top-level key', 'tsl: []\n', `${file}: tsl: unknown key`],
    ['unknown nested key', 'http:\n  admin: { listen: 127.0.0.1:9464, tokne: { env: X } }\n', `${file}: http.admin.tokne: unknown key`],
    ['secret given as a value', 'http:\n  admin: { token: hunter2hunter2 }\n', `${file}: http.admin.token: secrets are never values in YAML: write { env: VAR_NAME } or { file: /path/to/secret }`],
    ['password inside the redis URL', 'redis: { url: "redis://:pw@127.0.0.1:6379" }\n', `${file}: redis.url: expected a URL without a password: put it in redis.password as { env: NAME } or { file: PATH }`],
    ['bad time zone', 'timezone: Mars/Olympus\n', `${file}: timezone: expected an IANA time zone such as UTC or Europe/Berlin`],
    ['unknown probe id', 'probes:\n  tls-cert: {}\n', `${file}: probes.tls-cert: unknown probe (known: fake-check)`],
    ['probe params checked against the probe schema', 'probes:\n  fake-check: { params: { level: 9 } }\n', `${file}: probes.fake-check.params.level: Too big: expected number to be <=3`],
    ['unknown probe param', 'probes:\n  fake-check: { params: { levle: 1 } }\n', `${file}: probes.fake-check.params.levle: unknown key`],
    ['bad cron schedule', 'probes:\n  fake-check: { schedule: "*/99 * * *" }\n', `${file}: probes.fake-check.schedule: invalid cron expression "*/99 * * *"`],
    ['a named Redis password variable that is unset', 'redis: { url: "redis://127.0.0.1:6379", password: { env: VIGIL_TEST_UNSET_PASSWORD } }\n', `${file}: redis.password: environment variable VIGIL_TEST_UNSET_PASSWORD is not set`],
    ['a secret file that does not exist', 'http:\n  admin: { token: { file: ./no-such-token } }\n', `${file}: http.admin.token: cannot read secret file ${path.join(dir, 'no-such-token')} (ENOENT)`],
    ['a caFile that does not exist', 'tls:\n  - { name: web, endpoints: [a.example], caFile: ./missing.pem }\n', `${file}: tls[0].caFile: cannot read ${path.join(dir, 'missing.pem')} (ENOENT)`],
    ['duplicate target names', 'tls:\n  - { name: web, endpoints: [a.example] }\n  - { name: web, endpoints: [b.example] }\n', `${file}: tls[1].name: duplicate target name "web"`],
  ])('%s', (_name, yaml, expected) => {
    const got = problems(yaml);
    expect(got.some((line) => line.startsWith(expected)), `got:\n${got.join('\n')}`).toBe(true);
  });

  it('reports every problem at once, one line each', () => {
    const got = problems('tsl: []\ntimezone: Nowhere/Else\nworker: { concurrency: 0 }\n');
    expect(got).toHaveLength(3);
  });

  it('refuses a catalog that names an unknown probe', () => {
    const bad = path.join(dir, 'bad-controls.yaml');
    writeFileSync(bad, 'controls:\n  - { id: x, title: X, publicTitle: X, publicDescription: X, frameworks: {}, probes: [github-branch-protection] }\n');
    try {
      loadConfigText(`controls: ./bad-controls.yaml\n`, file, [fakeProbe]);
      expect.unreachable();
    } catch (err) {
      expect((err as ConfigError).problems).toEqual([`${bad}: controls[0].probes[0]: unknown probe "github-branch-protection" (known: fake-check)`]);
    }
  });

  it('refuses framework references that do not exist', () => {
    const bad = path.join(dir, 'typo-controls.yaml');
    writeFileSync(bad, 'controls:\n  - { id: x, title: X, publicTitle: X, publicDescription: X, frameworks: { soc2: [CC6.9], iso27001: [A.8.35] }, probes: [fake-check] }\n');
    try {
      loadConfigText(`controls: ./typo-controls.yaml\n`, file, [fakeProbe]);
      expect.unreachable();
    } catch (err) {
      expect((err as ConfigError).problems).toEqual([
        `${bad}: controls[0].frameworks.soc2[0]: not a SOC 2 Trust Services Criterion (e.g. CC6.1)`,
        `${bad}: controls[0].frameworks.iso27001[0]: not an ISO/IEC 27001:2022 Annex A control (e.g. A.8.24)`,
      ]);
    }
  });

  it('applies defaults and resolves paths relative to the config file', () => {
    writeFileSync(path.join(dir, 'roots.pem'), '');
    const loaded = loadConfigText('controls: ./controls.yaml\ntls:\n  - { name: web, endpoints: ["[::1]:8443", example.com], caFile: ./roots.pem }\n', file, [fakeProbe]);
    expect(loaded.config.timezone).toBe('UTC');
    expect(loaded.config.http.admin.listen).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(loaded.config.tls[0]?.caFile).toBe(path.join(dir, 'roots.pem'));
    expect(loaded.config.tls[0]?.endpoints.map((e) => e.name)).toEqual(['[::1]:8443', 'example.com:443']);
    const fake = loaded.probes.get('fake-check');
    expect(fake?.schedule).toBe('*/5 * * * *');
    expect(fake?.intervalMs).toBe(5 * 60_000);
    expect(fake?.params).toEqual({ level: 1 });
  });

  it('reads secrets from env and files at load time', () => {
    writeFileSync(path.join(dir, 'token'), 'file-token-value\n');
    const loaded = loadConfigText(
      'controls: ./controls.yaml\nredis: { url: "redis://127.0.0.1:1", password: { env: PW } }\nhttp: { admin: { token: { file: ./token } } }\n',
      file,
      [fakeProbe],
      { PW: 'env-password-value' },
    );
    expect(loaded.secrets).toEqual({ adminToken: 'file-token-value', redisPassword: 'env-password-value' });
  });

  it('a disabled probe is not configured', () => {
    const loaded = loadConfigText('controls: ./controls.yaml\nprobes:\n  fake-check: { enabled: false }\n', file, [fakeProbe]);
    expect(loaded.probes.has('fake-check')).toBe(false);
  });
});
