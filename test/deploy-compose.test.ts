import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { probes } from '../probes/index.js';
import { loadConfigText } from '../src/config/load.js';

/**
 * deploy/compose.yaml: valid for Debian's docker-compose (`docker-compose config -q`), and wired to
 * what vigil really reads: its config loads with vigil's own loader, listens on 0.0.0.0, and the
 * ports, hosts and files the other services use are the ones vigil and the config name.
 * (No Docker engine here: nothing is started.)
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const compose = path.join(root, 'deploy/compose.yaml');
const dockerCompose = process.env.VIGIL_DOCKER_COMPOSE ?? 'docker-compose';
const token = 'compose-test-token-0123456789-abcdef';

interface Service {
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  read_only?: boolean;
}

function resolved(): { services: Record<string, Service>; volumes: Record<string, unknown> } {
  // Short volume and port syntax kept as written (docker-compose 1.29 prints them in short form).
  const out = execFileSync(dockerCompose, ['-f', compose, 'config'], { encoding: 'utf8', env: { ...process.env, VIGIL_ADMIN_TOKEN: token } });
  return parse(out) as { services: Record<string, Service>; volumes: Record<string, unknown> };
}

/** The compose config, as the vigil containers load it (the catalog path is the image's /app/config). */
function composeConfig(env: NodeJS.ProcessEnv) {
  const file = path.join(root, 'deploy/compose/vigil.yaml');
  const text = readFileSync(file, 'utf8').replace('controls: /app/config/controls.yaml', `controls: ${path.join(root, 'config/controls.yaml')}`);
  return loadConfigText(text, file, probes, env);
}

describe('deploy/compose.yaml', () => {
  it('validates with docker-compose config -q, and refuses to start without the admin token', () => {
    const ok = spawnSync(dockerCompose, ['-f', compose, 'config', '-q'], { encoding: 'utf8', env: { ...process.env, VIGIL_ADMIN_TOKEN: token } });
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    const env = { ...process.env };
    delete env.VIGIL_ADMIN_TOKEN;
    const missing = spawnSync(dockerCompose, ['-f', compose, 'config', '-q'], { encoding: 'utf8', env });
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toContain('VIGIL_ADMIN_TOKEN');
  });

  it('runs two vigil replicas on one config, one Redis with AOF and noeviction on a volume, Prometheus, Grafana and a mail catcher', () => {
    const { services, volumes } = resolved();
    const vigils = ['vigil-1', 'vigil-2'].map((n) => services[n]!);
    for (const v of vigils) {
      expect(v.command).toEqual(['start', '--config', '/etc/vigil/vigil.yaml']);
      expect(v.volumes).toContain(`${root}/deploy/compose/vigil.yaml:/etc/vigil/vigil.yaml:ro`);
      expect(v.environment?.VIGIL_ADMIN_TOKEN).toBe(token);
      expect(v.read_only).toBe(true);
    }
    expect(vigils[0]!.environment).toEqual(vigils[1]!.environment);
    const redis = services.redis!;
    expect(redis.command?.join(' ')).toMatch(/--appendonly yes\b/);
    expect(redis.command?.join(' ')).toMatch(/--maxmemory-policy noeviction\b/);
    expect(redis.volumes?.some((v) => v.startsWith('redis-data:/data'))).toBe(true);
    expect(Object.keys(volumes)).toEqual(expect.arrayContaining(['redis-data', 'vigil-data']));
    expect(services.prometheus!.volumes).toContain(`${root}/deploy/prometheus/vigil-rules.yml:/etc/prometheus/rules/vigil-rules.yml:ro`);
    expect(services.grafana!.volumes).toContain(`${root}/deploy/grafana/vigil.json:/var/lib/grafana/dashboards/vigil/vigil.json:ro`);
    expect(services.mailpit!.image).toMatch(/^axllent\/mailpit:v\d/);
    // Every image pulled is pinned to a version tag (vigil's is built from the Dockerfile, pinned below).
    for (const [name, s] of Object.entries(services)) if (!name.startsWith('vigil-')) expect(s.image, name).toMatch(/:v?\d[\w.-]*$/);
  });

  it('the mounted vigil config loads, listens on 0.0.0.0, and sends mail to the mail catcher in plaintext on purpose', () => {
    const { services } = resolved();
    const env = services['vigil-1']!.environment!;
    const loaded = composeConfig(env);
    const { config } = loaded;
    expect(config.http.public.listen).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(config.http.admin.listen).toEqual({ host: '0.0.0.0', port: 9464 });
    expect(loaded.secrets.adminToken).toBe(token);
    expect(config.email?.allowPlaintext).toBe(true);
    expect(loaded.secrets.smtpUrl).toBe('smtp://mailpit:1025');
    expect(new URL(config.redis.url!).hostname).toBe('redis');
    // The archive is in the volume both replicas mount.
    expect(loaded.archiveDir.startsWith(`${config.dataDir}/`)).toBe(true);
    expect(services['vigil-1']!.volumes).toContain(`vigil-data:${config.dataDir}:rw`);
  });

  it('a token shorter than 32 characters is refused by the config the replicas load', () => {
    expect(() => composeConfig({ VIGIL_ADMIN_TOKEN: 'short', VIGIL_SMTP_URL: 'smtp://mailpit:1025' })).toThrow(/32/);
  });

  it('Prometheus scrapes both replicas on the admin port as job "vigil" and loads the rules file it mounts; Grafana gets the datasource and dashboard', () => {
    const prom = parse(readFileSync(path.join(root, 'deploy/compose/prometheus.yml'), 'utf8')) as {
      rule_files: string[];
      scrape_configs: Array<{ job_name: string; metrics_path?: string; static_configs: Array<{ targets: string[] }> }>;
    };
    const job = prom.scrape_configs.find((j) => j.job_name === 'vigil')!;
    expect(job.metrics_path ?? '/metrics').toBe('/metrics');
    const env = { VIGIL_ADMIN_TOKEN: token, VIGIL_SMTP_URL: 'smtp://mailpit:1025' };
    const port = composeConfig(env).config.http.admin.listen.port;
    expect(job.static_configs.flatMap((s) => s.targets).sort()).toEqual([`vigil-1:${port}`, `vigil-2:${port}`]);
    expect(prom.rule_files).toEqual(['/etc/prometheus/rules/vigil-rules.yml']);
    // The rules' availability alerts name that job.
    expect(readFileSync(path.join(root, 'deploy/prometheus/vigil-rules.yml'), 'utf8')).toContain('up{job="vigil"}');
    // Both hosts Prometheus uses are on the admin listener's allow-list.
    const allowed = composeConfig(env).config.http.admin.allowedHosts ?? [];
    expect(allowed).toEqual(expect.arrayContaining(['vigil-1', 'vigil-2']));

    const ds = parse(readFileSync(path.join(root, 'deploy/compose/grafana/provisioning/datasources/prometheus.yaml'), 'utf8')) as { datasources: Array<{ type: string; url: string }> };
    expect(ds.datasources[0]).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090' });
    const dash = parse(readFileSync(path.join(root, 'deploy/compose/grafana/provisioning/dashboards/vigil.yaml'), 'utf8')) as { providers: Array<{ options: { path: string } }> };
    expect(dash.providers[0]!.options.path).toBe('/var/lib/grafana/dashboards/vigil');
  });

  it('the Dockerfile: base image pinned to a version tag, non-root, exposes the ports the configs use', () => {
    const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
    for (const from of dockerfile.match(/^FROM \S+/gm) ?? []) expect(from).toMatch(/^FROM node:\d+\.\d+\.\d+-[\w-]+$/);
    expect(dockerfile).toMatch(/^USER vigil$/m);
    expect(dockerfile).toMatch(/^EXPOSE 8080 9464$/m);
    expect(dockerfile).toContain('ENTRYPOINT ["node", "/app/bin/vigil.js"]');
  });
});
