/**
 * The `backups:` config section: what it refuses, what the loader resolves relative to the config
 * file, secrets checked at load, and the targets and gauges the two backup probes derive from it.
 */
import { describe, expect, it } from 'vitest';
import { probe as repositoryProbe } from '../probes/backup-repository/probe.js';
import { probe as drillProbe } from '../probes/backup-restore-drill/probe.js';
import { probes } from '../probes/index.js';
import { ConfigError } from '../src/config/errors.js';
import { loadConfigText } from '../src/config/load.js';
import { VigilConfig } from '../src/config/schema.js';
import type { ProbeResult } from '../src/probe/contract.js';

const FILE = '/etc/vigil/vigil.yaml';
const load = (yaml: string, env: NodeJS.ProcessEnv = {}) => loadConfigText(yaml, FILE, probes, env);

describe('backups: config', () => {
  it('resolves directories, files and secret files relative to the config file, and checks secrets at load', () => {
    const loaded = load(
      [
        'backups:',
        '  - { name: files, kind: restic, repository: /srv/restic, password: { env: RESTIC_PW }, environment: { AWS_ACCESS_KEY_ID: { env: KEY_ID } } }',
        '  - { name: hosts, kind: borg, repository: ssh://b@nas/./borg, keyFile: keys/borg.key, baseDir: state/borg, command: ./bin/borg }',
        '  - { name: db, kind: pgbackrest, stanza: main, configFile: pgbackrest.conf }',
        '  - { name: dumps, kind: dumps, dir: ../../var/backups, pattern: "*.dump", format: postgres-custom }',
        '  - { name: drills, kind: drills, dir: drills, systems: [billing-db] }',
      ].join('\n'),
      { RESTIC_PW: 'pw', KEY_ID: 'AKIAEXAMPLE' },
    );
    const [restic, borg, pgbr, dumps, drills] = loaded.config.backups;
    expect(restic).toMatchObject({ rpoHours: 26, check: true, readDataSubsets: 0, snapshots: [] });
    expect(borg).toMatchObject({ keyFile: '/etc/vigil/keys/borg.key', baseDir: '/etc/vigil/state/borg', command: '/etc/vigil/bin/borg', verifyDataEveryDays: 0 });
    expect(pgbr).toMatchObject({ configFile: '/etc/vigil/pgbackrest.conf', verify: true });
    expect(dumps).toMatchObject({ dir: '/var/backups' });
    expect(drills).toMatchObject({ dir: '/etc/vigil/drills', maxDaysSinceDrill: 90, maxRestoreMinutes: 240 });
    expect(repositoryProbe.targets(loaded.config).map((t) => t.name)).toEqual(['files', 'hosts', 'db', 'dumps']);
    expect(drillProbe.targets(loaded.config)).toEqual([
      { name: 'drills', spec: { source: 'records', dir: '/etc/vigil/drills', systems: ['billing-db'], maxDaysSinceDrill: 90, maxRestoreMinutes: 240 } },
    ]);
    // borg's own state defaults under dataDir, never in the repository.
    expect(repositoryProbe.targets(VigilConfig.parse({ dataDir: '/var/lib/vigil', backups: [{ name: 'b', kind: 'borg', repository: '/srv/borg' }] }))[0]?.spec).toMatchObject({ baseDir: '/var/lib/vigil/borg' });
    expect(() => load('backups:\n  - { name: files, kind: restic, repository: /srv/restic, password: { env: RESTIC_PW } }\n')).toThrow(/backups\[0\]\.password: environment variable RESTIC_PW is not set/);
  });

  it('refuses a password in the repository URL, a password as a value, an unknown kind and duplicate names', () => {
    const bad = (entries: unknown[]) => {
      const r = VigilConfig.safeParse({ backups: entries });
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    expect(bad([{ name: 'a', kind: 'restic', repository: 'rest:https://user:secret@host/repo', password: { env: 'X' } }]).join('\n')).toContain('put no password in the repository URL');
    expect(bad([{ name: 'a', kind: 'restic', repository: '/srv/r', password: 'hunter2' }]).join('\n')).toContain('secrets are never values in YAML');
    expect(bad([{ name: 'a', kind: 'tape', dir: '/x' }])).not.toEqual([]);
    expect(bad([{ name: 'a', kind: 'drills', dir: '/x' }, { name: 'a', kind: 'dumps', dir: '/y' }]).join('\n')).toContain('duplicate target name "a"');
    expect(bad([{ name: 'a', kind: 'dumps', dir: '/x', format: 'tar' }])).not.toEqual([]);
    expect(() => load('backups:\n  - { name: a, kind: restic, repository: /r, password: { env: X }, extra: 1 }\n', { X: 'x' })).toThrow(ConfigError);
  });

  it('the gauges read the newest backup time and the level from the findings', () => {
    const result: ProbeResult = {
      runId: 'r',
      probe: 'backup-repository',
      target: 'files',
      scheduledFor: '2026-12-01T06:41:00.000Z',
      startedAt: '2026-12-01T06:41:00.000Z',
      finishedAt: '2026-12-01T06:41:05.000Z',
      findings: [
        { resource: 'files/host=web-1', outcome: 'pass', message: 'ok', details: { level: 3, newestBackupAt: '2026-12-01T02:00:00.000Z' } },
        { resource: 'files/host=db-1', outcome: 'unknown', message: 'wrong password', details: { level: 0 } },
      ],
    };
    const [newest, level] = repositoryProbe.gauges ?? [];
    expect(newest?.fromResult(result)).toEqual([{ labels: { resource: 'files/host=web-1' }, value: Date.parse('2026-12-01T02:00:00.000Z') / 1000 }]);
    expect(level?.fromResult(result)).toEqual([
      { labels: { resource: 'files/host=web-1' }, value: 3 },
      { labels: { resource: 'files/host=db-1' }, value: 0 },
    ]);
  });
});
