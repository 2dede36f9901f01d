import { execFileSync, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Deployment } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Namespace, PersistentVolumeClaim, Service } from 'kubernetes-models/v1';
import { PrometheusRule, ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { PROMETHEUS_RULE_FILE, prometheusRuleYaml, RULES_FILE } from '../deploy/kubernetes/prometheusrule.js';
import { probes } from '../probes/index.js';
import { loadConfigText } from '../src/config/load.js';

/**
 * deploy/kubernetes: the Kustomize base and the example overlay render (`kubectl kustomize`; without
 * kubectl the base is rendered here from its kustomization), every object validates against the
 * Kubernetes and Prometheus Operator schemas (kubernetes-models), and the manifests name the ports,
 * paths, config keys, secrets and rules vigil really uses.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const base = path.join(root, 'deploy/kubernetes/base');
const overlay = path.join(root, 'deploy/kubernetes/overlays/example');
const kubectl = process.env.VIGIL_KUBECTL ?? 'kubectl';
const hasKubectl = spawnSync(kubectl, ['version', '--client'], { encoding: 'utf8' }).status === 0;

type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; [k: string]: unknown };

function kustomize(dir: string): K8sObject[] {
  const out = execFileSync(kubectl, ['kustomize', dir], { encoding: 'utf8' });
  return parseAllDocuments(out).map((d) => d.toJS() as K8sObject);
}

/** The base rendered from its kustomization.yaml: resources, and the ConfigMap generated from files. */
function renderBase(): K8sObject[] {
  const k = parse(readFileSync(path.join(base, 'kustomization.yaml'), 'utf8')) as {
    resources: string[];
    configMapGenerator: Array<{ name: string; files: string[] }>;
    generatorOptions: { disableNameSuffixHash: boolean; labels: Record<string, string> };
  };
  const objects = k.resources.flatMap((r) => parseAllDocuments(readFileSync(path.join(base, r), 'utf8')).map((d) => d.toJS() as K8sObject));
  expect(k.generatorOptions.disableNameSuffixHash).toBe(true);
  for (const g of k.configMapGenerator) {
    const data = Object.fromEntries(g.files.map((f) => [path.basename(f), readFileSync(path.join(base, f), 'utf8')]));
    objects.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: g.name, labels: k.generatorOptions.labels }, data });
  }
  return objects;
}

const byKey = (objs: K8sObject[]) => new Map(objs.map((o) => [`${o.kind}/${o.metadata.name}`, o]));

const MODELS: Record<string, new (o: never) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'v1/Service': Service,
  'v1/ConfigMap': ConfigMap,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'v1/Namespace': Namespace,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
};

function validateAll(objects: K8sObject[]): void {
  for (const o of objects) {
    const Model = MODELS[`${o.apiVersion}/${o.kind}`];
    expect(Model, `a schema for ${o.apiVersion} ${o.kind}`).toBeDefined();
    expect(() => new Model!(o as never).validate(), `${o.kind}/${o.metadata.name}`).not.toThrow();
  }
}

/** The config of a rendered ConfigMap, loaded by vigil's own loader (secrets and files supplied). */
function loadRenderedConfig(objects: K8sObject[]) {
  const cm = byKey(objects).get('ConfigMap/vigil-config') as K8sObject & { data: Record<string, string> };
  const dir = mkdtempSync(path.join(tmpdir(), 'vigil-k8s-'));
  const ed = generateKeyPairSync('ed25519');
  writeFileSync(path.join(dir, 'archive-signing-key'), ed.privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(path.join(dir, 'github-app-key'), rsa.privateKey.export({ format: 'pem', type: 'pkcs1' }), { mode: 0o600 });
  const text = cm.data['vigil.yaml']!.replaceAll('/etc/vigil/secrets/', `${dir}/`).replace('controls: /app/config/controls.yaml', `controls: ${path.join(root, 'config/controls.yaml')}`);
  const env = { VIGIL_ADMIN_TOKEN: 'k8s-test-admin-token-0123456789abcdef', VIGIL_SMTP_URL: 'smtps://u:p@mail.example.com:465', VIGIL_REDIS_PASSWORD: 'redis-pass', GITHUB_TOKEN: 'ghp_example000000' };
  return { loaded: loadConfigText(text, path.join(dir, 'vigil.yaml'), probes, env), text: cm.data['vigil.yaml']!, secretsDir: dir };
}

interface Container {
  args: string[];
  ports: Array<{ name: string; containerPort: number }>;
  env: Array<{ name: string; valueFrom: { secretKeyRef: { name: string; key: string; optional?: boolean } } }>;
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  resources: { requests: { memory: string }; limits: { memory: string } };
  securityContext: { readOnlyRootFilesystem: boolean; allowPrivilegeEscalation: boolean; capabilities: { drop: string[] } };
  volumeMounts: Array<{ name: string; mountPath: string }>;
}
interface PodSpec {
  securityContext: { runAsNonRoot: boolean; runAsUser: number };
  containers: Container[];
  volumes: Array<{ name: string; persistentVolumeClaim?: { claimName: string }; secret?: { secretName: string; items: Array<{ key: string; path: string }> }; configMap?: { name: string } }>;
}
const mebibytes = (q: string) => Number(/^(\d+)Mi$/.exec(q)![1]);

/** Checks shared by the base and the overlay. */
function checkWiring(objects: K8sObject[]): void {
  const all = byKey(objects);
  const dep = all.get('Deployment/vigil') as K8sObject & { spec: { replicas: number; template: { spec: PodSpec } } };
  const pod = dep.spec.template.spec;
  const c = pod.containers[0]!;
  const { loaded, text, secretsDir } = loadRenderedConfig(objects);
  const { config } = loaded;

  expect(dep.spec.replicas).toBe(2);
  // Ports: what the config listens on, on all interfaces.
  const port = (name: string) => c.ports.find((p) => p.name === name)!.containerPort;
  expect(config.http.public.listen).toEqual({ host: '0.0.0.0', port: port('public') });
  expect(config.http.admin.listen).toEqual({ host: '0.0.0.0', port: port('admin') });
  // Probes: /healthz (both listeners) and /readyz (admin only).
  expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'public' });
  expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'admin' });
  // The config is the mounted ConfigMap.
  const mount = (name: string) => c.volumeMounts.find((m) => m.name === name)!.mountPath;
  expect(c.args).toEqual(['start', '--config', `${mount('config')}/vigil.yaml`]);
  expect(pod.volumes.find((v) => v.name === 'config')!.configMap!.name).toBe('vigil-config');
  // Every { env } secret of the config comes from Secret vigil-secrets; nothing else is set.
  const envRefs = [...text.matchAll(/\{ env: (\w+) \}/g)].map((m) => m[1]!).sort();
  const required = c.env.filter((e) => !e.valueFrom.secretKeyRef.optional).map((e) => e.name).sort();
  expect(required).toEqual(envRefs.filter((n) => n !== 'GITHUB_TOKEN'));
  for (const e of c.env) expect(e.valueFrom.secretKeyRef.name).toBe('vigil-secrets');
  // Every { file } secret is a key of the secret volume mounted where the config looks.
  const fileRefs = [...text.matchAll(/\{ file: ([^ }]+) \}/g)].map((m) => m[1]!);
  const secretVolume = pod.volumes.find((v) => v.name === 'secrets')!.secret!;
  for (const f of fileRefs) {
    expect(path.dirname(f)).toBe(mount('secrets'));
    expect(secretVolume.items.map((i) => i.path)).toContain(path.basename(f));
  }
  expect(secretsDir).not.toBe('');
  // Owner-read only (vigil warns on wider modes); written in decimal, which every YAML reader agrees on.
  expect((secretVolume as { defaultMode?: number }).defaultMode).toBe(0o400);
  // dataDir and the archive on their volumes; the archive on the ReadWriteMany claim.
  expect(config.dataDir).toBe(mount('data'));
  expect(loaded.archiveDir).toBe(mount('archive'));
  const claim = pod.volumes.find((v) => v.name === 'archive')!.persistentVolumeClaim!.claimName;
  expect((all.get(`PersistentVolumeClaim/${claim}`) as K8sObject & { spec: { accessModes: string[] } }).spec.accessModes).toEqual(['ReadWriteMany']);
  // Hardened, and sized from the measured idle RSS (~90 MiB) with room for a sweep.
  expect(pod.securityContext.runAsNonRoot).toBe(true);
  expect(pod.securityContext.runAsUser).toBe(10001);
  expect(readFileSync(path.join(root, 'Dockerfile'), 'utf8')).toContain('--uid 10001');
  expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
  expect(mebibytes(c.resources.requests.memory)).toBeGreaterThanOrEqual(96);
  expect(mebibytes(c.resources.limits.memory)).toBeGreaterThanOrEqual(2 * 96);

  // Services: public and admin, on the container's named ports.
  const svc = (name: string) => all.get(`Service/${name}`) as K8sObject & { spec: { selector: Record<string, string>; ports: Array<{ name: string; targetPort: string }> } };
  expect(svc('vigil-public').spec.ports.map((p) => p.targetPort)).toEqual(['public']);
  expect(svc('vigil-admin').spec.ports.map((p) => p.targetPort)).toEqual(['admin']);
  for (const s of ['vigil-public', 'vigil-admin']) expect(svc(s).spec.selector).toEqual({ 'app.kubernetes.io/name': 'vigil' });

  // ServiceMonitor: the admin Service, /metrics, and job="vigil" as the rules expect.
  const sm = all.get('ServiceMonitor/vigil') as K8sObject & { spec: { jobLabel: string; selector: { matchLabels: Record<string, string> }; endpoints: Array<{ port: string; path: string }> } };
  const admin = svc('vigil-admin');
  for (const [k, v] of Object.entries(sm.spec.selector.matchLabels)) expect(admin.metadata.labels?.[k]).toBe(v);
  expect(svc('vigil-public').metadata.labels?.['app.kubernetes.io/component']).not.toBe(sm.spec.selector.matchLabels['app.kubernetes.io/component']);
  expect(sm.spec.endpoints).toEqual([expect.objectContaining({ port: 'admin', path: '/metrics' })]);
  expect(admin.metadata.labels?.[sm.spec.jobLabel]).toBe('vigil');

  // PodDisruptionBudget keeps one replica; NetworkPolicy: public open, admin only from monitoring.
  expect((all.get('PodDisruptionBudget/vigil') as K8sObject & { spec: { minAvailable: number } }).spec.minAvailable).toBe(1);
  const np = all.get('NetworkPolicy/vigil') as K8sObject & { spec: { ingress: Array<{ from?: unknown[]; ports: Array<{ port: string }> }> } };
  const publicRule = np.spec.ingress.find((r) => r.ports.some((p) => p.port === 'public'))!;
  const adminRule = np.spec.ingress.find((r) => r.ports.some((p) => p.port === 'admin'))!;
  expect(publicRule.from).toBeUndefined();
  expect(adminRule.from).toEqual([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }]);
  expect(adminRule.ports.map((p) => p.port)).toEqual(['admin']);

  // PrometheusRule: exactly the rules of the file.
  const rule = all.get('PrometheusRule/vigil') as K8sObject & { spec: { groups: unknown } };
  expect(rule.spec.groups).toEqual((parse(readFileSync(path.join(root, RULES_FILE), 'utf8')) as { groups: unknown }).groups);
}

describe('Kubernetes manifests', () => {
  it('base/prometheusrule.yaml is what the generator writes from the rules file (regenerate: node dist/deploy/kubernetes/prometheusrule.js)', () => {
    expect(readFileSync(path.join(root, PROMETHEUS_RULE_FILE), 'utf8')).toBe(prometheusRuleYaml(readFileSync(path.join(root, RULES_FILE), 'utf8')));
  });

  it('the base validates against the Kubernetes and Prometheus Operator schemas and is wired to what vigil uses', () => {
    const objects = renderBase();
    validateAll(objects);
    checkWiring(objects);
  });

  it.skipIf(!hasKubectl)('kubectl kustomize renders the base to the same objects', () => {
    const rendered = kustomize(base);
    const mine = byKey(renderBase());
    expect([...byKey(rendered).keys()].sort()).toEqual([...mine.keys()].sort());
    for (const [key, o] of byKey(rendered)) expect(o, key).toEqual(mine.get(key));
  });

  it.skipIf(!hasKubectl)('the example overlay renders, validates, and keeps the wiring (namespace, image, config with a GitHub App, operator labels)', () => {
    const objects = kustomize(overlay);
    validateAll(objects);
    checkWiring(objects);
    for (const o of objects) expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe('vigil');
    const all = byKey(objects);
    const dep = all.get('Deployment/vigil') as K8sObject & { spec: { template: { spec: PodSpec & { containers: Array<{ image: string }> } } } };
    expect(dep.spec.template.spec.containers[0]!.image).toBe('registry.example.com/vigil:0.1.0');
    expect(all.get('ServiceMonitor/vigil')!.metadata.labels?.release).toBe('kube-prometheus-stack');
    expect(all.get('PrometheusRule/vigil')!.metadata.labels?.release).toBe('kube-prometheus-stack');
    const { loaded } = loadRenderedConfig(objects);
    expect(loaded.config.github?.[0]?.name).toBe('acme');
  });
});
