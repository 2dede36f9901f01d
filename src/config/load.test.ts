import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { probes as registry } from '../../probes/index.js';
import { validateCron } from '../queue/cron.js';
import { fakeProbe } from '../../test/helpers/fake-probe.js';
import { ConfigError, loadConfig, loadConfigText, MAX_CONFIG_BYTES } from './load.js';

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

function problems(yaml: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    loadConfigText(`controls: ./controls.yaml\n${yaml}`, file, [fakeProbe], env);
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
    ['an admin token shorter than 32 characters', 'http:\n  admin: { token: { env: SHORT_TOKEN } }\n', `${file}: http.admin.token: the admin token is shorter than 32 characters: use a random one`],
    ['an admin token with a control character', 'http:\n  admin: { token: { env: ODD_TOKEN } }\n', `${file}: http.admin.token: the admin token must be printable ASCII without spaces`],
    ['an SMTP URL whose query would override the TLS policy', 'email: { smtp: { env: SMTP_QUERY }, from: v@example.com, to: [s@example.com] }\n', `${file}: email.smtp: the SMTP URL must not carry query parameters or a fragment: TLS is configured by vigil (see email.allowPlaintext)`],
    ['duplicate target names', 'tls:\n  - { name: web, endpoints: [a.example] }\n  - { name: web, endpoints: [b.example] }\n', `${file}: tls[1].name: duplicate target name "web"`],
  ])('%s', (_name, yaml, expected) => {
    const got = problems(yaml, { SHORT_TOKEN: 'x'.repeat(31), ODD_TOKEN: `${'x'.repeat(32)}\u0007`, SMTP_QUERY: 'smtp://u:Pw-in-url-77@mail.example.com:587?requireTLS=false' });
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
    writeFileSync(path.join(dir, 'token'), 'file-token-value-0123456789abcdefghij\n', { mode: 0o600 });
    chmodSync(path.join(dir, 'token'), 0o600);
    const loaded = loadConfigText(
      'controls: ./controls.yaml\nredis: { url: "redis://127.0.0.1:1", password: { env: PW } }\nhttp: { admin: { token: { file: ./token } } }\n',
      file,
      [fakeProbe],
      { PW: 'env-password-value' },
    );
    expect(loaded.secrets).toEqual({ adminToken: 'file-token-value-0123456789abcdefghij', redisPassword: 'env-password-value' });
    expect(loaded.warnings).toEqual([]);
  });

  it('a disabled probe is not configured', () => {
    const loaded = loadConfigText('controls: ./controls.yaml\nprobes:\n  fake-check: { enabled: false }\n', file, [fakeProbe]);
    expect(loaded.probes.has('fake-check')).toBe(false);
  });

  it('accepts a 32-character admin token', () => {
    const loaded = loadConfigText('controls: ./controls.yaml\nhttp: { admin: { token: { env: T } } }\n', file, [fakeProbe], { T: 'y'.repeat(32) });
    expect(loaded.secrets.adminToken).toHaveLength(32);
  });
});

describe('email TLS', () => {
  const email = (extra: string) => `controls: ./controls.yaml\nemail: { smtp: { env: SMTP }, from: v@example.com, to: [s@example.com]${extra} }\n`;
  it('email.allowPlaintext is off by default; on, with smtp://, it is a warning', () => {
    const env = { SMTP: 'smtp://vigil:Pw-77-secret@mail.example.com:587' };
    const off = loadConfigText(email(''), file, [fakeProbe], env);
    expect(off.config.email?.allowPlaintext).toBe(false);
    expect(off.warnings).toEqual([]);
    const on = loadConfigText(email(', allowPlaintext: true'), file, [fakeProbe], env);
    expect(on.warnings).toEqual([`${file}: email.allowPlaintext: on: if the SMTP server offers no STARTTLS, the SMTP password and the snapshot travel in clear text`]);
    expect(on.warnings.join('\n')).not.toContain('Pw-77-secret');
    // smtps:// is TLS from the first byte: nothing to warn about.
    expect(loadConfigText(email(', allowPlaintext: true'), file, [fakeProbe], { SMTP: 'smtps://vigil:Pw-77-secret@mail.example.com:465' }).warnings).toEqual([]);
  });
});

describe('secret files', () => {
  it('a secret file open to group or others is used with a warning naming the file and mode, never the value', () => {
    const secretFile = path.join(dir, 'loose-token');
    const value = 'loose-token-value-0123456789abcdefghijkl';
    writeFileSync(secretFile, `${value}\n`);
    chmodSync(secretFile, 0o644);
    const loaded = loadConfigText('controls: ./controls.yaml\nhttp: { admin: { token: { file: ./loose-token } } }\n', file, [fakeProbe]);
    expect(loaded.secrets.adminToken).toBe(value);
    expect(loaded.warnings).toEqual([
      `${file}: http.admin.token: secret file ${secretFile} is accessible to group or others (mode 0644): restrict it with chmod 600 (or 0400), owned by the user vigil runs as`,
    ]);
    chmodSync(secretFile, 0o600);
    expect(loadConfigText('controls: ./controls.yaml\nhttp: { admin: { token: { file: ./loose-token } } }\n', file, [fakeProbe]).warnings).toEqual([]);
  });

  it('a secret file larger than 64 KiB is refused without reading it into the message', () => {
    writeFileSync(path.join(dir, 'huge-secret'), 'S'.repeat(70 * 1024), { mode: 0o600 });
    expect(problems('redis: { url: "redis://127.0.0.1:1", password: { file: ./huge-secret } }\n')).toEqual([
      `${file}: redis.password: secret file ${path.join(dir, 'huge-secret')} is larger than 64 KiB: is it the right file?`,
    ]);
  });
});

describe('config errors never echo the file', () => {
  function loadProblems(configFile: string): string[] {
    try {
      loadConfig(configFile, [fakeProbe]);
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
    return [];
  }

  it('a file that is not a config (/etc/shadow) is named key by key without its hashes or salts', () => {
    const shadow = path.join(dir, 'shadow');
    writeFileSync(
      shadow,
      [
        'root:$6$Qm3salt9Zp$secrethashROOT0a1b2c3d4e5f6g7h8i9j0kLMNOPqrstuvwxyzABCDEF0123456789:19700:0:99999:7:::',
        'daemon:*:19700:0:99999:7:::',
        'alice:$y$j9T$aliceSaltXYZ$secrethashALICEzzzyyyxxxwwwvvvuuuttt:19701:0:99999:7:::',
        '',
      ].join('\n'),
    );
    const got = loadProblems(shadow);
    expect(got).toEqual([
      `${shadow}: "root:$6$Qm3s"… (104 characters): unknown key`,
      `${shadow}: "daemon:*:197"… (26 characters): unknown key`,
      `${shadow}: "alice:$y$j9T"… (80 characters): unknown key`,
    ]);
    for (const leaked of ['secrethash', 'salt9Zp', 'aliceSalt', '19700:0:99999']) expect(got.join('\n')).not.toContain(leaked);
  });

  it('past 10 unknown keys at one level, one line counts the rest', () => {
    const got = problems(Array.from({ length: 25 }, (_, i) => `bogus${i}: 1`).join('\n'));
    expect(got).toHaveLength(11);
    expect(got[10]).toBe(`${file}: (top level): 15 more unknown key(s) not listed: is this the right file?`);
  });

  it('keys with control characters are escaped, long keys cut', () => {
    const got = problems(`"\\e[31mred": 1\n${'k'.repeat(100)}: 1\n`);
    expect(got).toContain(`${file}: "\\u001b[31mred": unknown key`);
    expect(got).toContain(`${file}: ${'k'.repeat(40)}…: unknown key`);
    expect(got.join('\n')).not.toContain('\u001b');
  });

  it('a YAML syntax error names the line and column, not the line content', () => {
    const got = problems('http:\n  admin: { listen: 127.0.0.1:9464\nleaked-Line-Content-S3cr3t: [1, 2\n');
    expect(got.length).toBeGreaterThan(0);
    for (const line of got) {
      expect(line).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: line \\d+, column \\d+: YAML syntax error: `));
      expect(line).not.toContain('S3cr3t');
      expect(line).not.toContain('127.0.0.1:9464');
    }
  });

  it('a document that is not a mapping says so without quoting it', () => {
    for (const [text, kind] of [
      ['- root:x:0:0:root:/root:/bin/bash\n- bin:x:1:1::/:/usr/sbin/nologin\n', 'a list'],
      ['-----BEGIN PRIVATE KEY----- MC4CAQAwBQYDK2VwBCIEIHc2ZXJ5c2VjcmV0a2V5\n', 'a text'],
    ]) {
      try {
        loadConfigText(text!, file, [fakeProbe]);
        expect.unreachable();
      } catch (err) {
        expect((err as ConfigError).problems).toEqual([`${file}: (top level): expected a mapping of settings (key: value lines), got ${kind}: is this the right file?`]);
      }
    }
  });

  it('a config over 1 MiB is one size error, from text or from a file; a device is not read to the end', () => {
    const big = `controls: ./controls.yaml\n# ${'x'.repeat(2 * 1024 * 1024)}\n`;
    const expected = [`${file}: the config file is larger than ${MAX_CONFIG_BYTES / 1024} KiB: is it the right file?`];
    try {
      loadConfigText(big, file, [fakeProbe]);
      expect.unreachable();
    } catch (err) {
      expect((err as ConfigError).problems).toEqual(expected);
    }
    const bigFile = path.join(dir, 'big.yaml');
    writeFileSync(bigFile, big);
    expect(loadProblems(bigFile)).toEqual([`${bigFile}: the config file is larger than 1024 KiB: is it the right file?`]);
    expect(loadProblems('/dev/zero')).toEqual(['/dev/zero: the config file is larger than 1024 KiB: is it the right file?']);
  });

  it('a control catalog over 1 MiB is one size error', () => {
    writeFileSync(path.join(dir, 'big-controls.yaml'), `controls: []\n# ${'y'.repeat(1024 * 1024)}\n`);
    try {
      loadConfigText('controls: ./big-controls.yaml\n', file, [fakeProbe]);
      expect.unreachable();
    } catch (err) {
      expect((err as ConfigError).problems).toEqual([`${path.join(dir, 'big-controls.yaml')}: the control catalog is larger than 1024 KiB: is it the right file?`]);
    }
  });

  it.each([
    ['__proto__ at the top level', '__proto__: { polluted: true }\n', `${file}: __proto__: "__proto__" is not allowed as a key (a reserved JavaScript property name)`],
    ['constructor inside probe params', 'probes:\n  fake-check: { params: { constructor: { prototype: 1 } } }\n', `${file}: probes.fake-check.params.constructor: "constructor" is not allowed as a key (a reserved JavaScript property name)`],
    ['prototype in a list item', 'tls:\n  - { name: web, endpoints: [a.example], prototype: 1 }\n', `${file}: tls[0].prototype: "prototype" is not allowed as a key (a reserved JavaScript property name)`],
  ])('%s is an error naming its path', (_name, yaml, expected) => {
    expect(problems(yaml)).toEqual([expected]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('__proto__ in the control catalog is an error naming its path', () => {
    const bad = path.join(dir, 'proto-controls.yaml');
    writeFileSync(bad, 'controls:\n  - { id: x, title: X, publicTitle: X, publicDescription: X, frameworks: { __proto__: { soc2: [CC6.1] } }, probes: [fake-check] }\n');
    try {
      loadConfigText('controls: ./proto-controls.yaml\n', file, [fakeProbe]);
      expect.unreachable();
    } catch (err) {
      expect((err as ConfigError).problems).toEqual([`${bad}: controls[0].frameworks.__proto__: "__proto__" is not allowed as a key (a reserved JavaScript property name)`]);
    }
  });

  it('a catalog naming an odd probe quotes it escaped and cut', () => {
    const bad = path.join(dir, 'odd-probe-controls.yaml');
    writeFileSync(bad, `controls:\n  - { id: x, title: X, publicTitle: X, publicDescription: X, frameworks: {}, probes: ["\\e]0;pwned\\u0007${'z'.repeat(60)}"] }\n`);
    try {
      loadConfigText('controls: ./odd-probe-controls.yaml\n', file, [fakeProbe]);
      expect.unreachable();
    } catch (err) {
      const [line] = (err as ConfigError).problems;
      expect(line).toBe(`${bad}: controls[0].probes[0]: unknown probe "\\u001b]0;pwned\\u0007${'z'.repeat(30)}"… (known: fake-check)`);
    }
  });

  it('nesting deeper than 64 levels is one error naming where', () => {
    expect(problems(`probes:\n  fake-check: { params: { level: ${'['.repeat(70)}1${']'.repeat(70)} } }\n`)).toEqual([
      `${file}: probes.fake-check.params.level${'[0]'.repeat(60)}: nested deeper than 64 levels`,
    ]);
  });

  it('a schedule that is not a short printable cron expression is refused without echoing it', () => {
    expect(problems(`probes:\n  fake-check: { schedule: "${'9'.repeat(300)}" }\n`)).toEqual([
      `${file}: probes.fake-check.schedule: expected a cron expression of 5 or 6 fields (printable ASCII, at most 100 characters)`,
    ]);
  });

  it('only a schedule the config sets is checked at load; every registered probe\'s own default is checked here', () => {
    // A default is code: loading does not pay cron-parser (and ICU's time-zone data) to re-check it on every start.
    const oddDefault = { ...fakeProbe, schedule: '*/99 * * *' };
    expect(() => loadConfigText('controls: ./controls.yaml\n', file, [oddDefault], {})).not.toThrow();
    expect(() => loadConfigText('controls: ./controls.yaml\nprobes:\n  fake-check: { schedule: "*/99 * * *" }\n', file, [oddDefault], {})).toThrow(ConfigError);
    for (const probe of registry) expect({ probe: probe.id, problem: validateCron(probe.schedule) }).toEqual({ probe: probe.id, problem: undefined });
  });
});

describe('files that are not regular files', () => {
  it('a FIFO named as the config or as a secret file is refused at once, never waited on', async () => {
    const { execFileSync } = await import('node:child_process');
    const dir = mkdtempSync(path.join(tmpdir(), 'vigil-fifo-'));
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const started = Date.now();
    expect(() => loadConfig(fifo, registry)).toThrow(/not a regular file/);
    const cfg = path.join(dir, 'vigil.yaml');
    writeFileSync(cfg, `http: { admin: { token: { file: ${fifo} } } }\n`);
    expect(() => loadConfig(cfg, registry)).toThrow(/cannot read secret file .*fifo \(ENOTREG\)/);
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});
