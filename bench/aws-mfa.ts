/**
 * AWS MFA sweep: the real aws-iam-user-mfa probe (collect, then evaluate) over one emulated
 * account of many IAM users, every answer delayed by 30 ms, beside the per-user baseline several
 * tools use (`ListUsers` pages, then `ListMFADevices` and `GetLoginProfile` for every user).
 *
 *   npm run build && node dist/bench/aws-mfa.js [users=10000] [latencyMs=30] [baselineConcurrency=32]
 *
 * Targets: ≤ 5 requests per account, ≥ 1,000× fewer than the baseline, ≤ 3 s; and
 * `vigil run-once --json` of all the findings arrives whole through a pipe.
 *
 * 1. The probe through the real IAM/STS SDK clients against test/helpers/aws-peer.ts (SigV4
 *    verified, answers serialised from botocore's IAM model): requests, wall time, and every
 *    verdict checked against what the account was built with (10 % of users have a console
 *    password and no MFA, 20 % no console password).
 * 2. The baseline with the same SDK client: `ListUsers` (100 a page, the SDK default), then per
 *    user `ListMFADevices` and `GetLoginProfile`, `baselineConcurrency` calls in flight.
 * 3. `node bin/vigil.js run-once --probe aws-iam-user-mfa --json` in a child process, stdout a
 *    pipe: the document is parsed whole and its findings counted.
 *
 * Exits 1 if a verdict is wrong, a target is missed, or the piped JSON is cut short.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GetLoginProfileCommand, IAMClient, ListMFADevicesCommand, ListUsersCommand } from '@aws-sdk/client-iam';
import pino from 'pino';
import { resetAwsClientState } from '../src/clients/aws/client.js';
import { resetCredentialReportCache } from '../src/clients/aws/credential-report.js';
import { AwsTarget } from '../src/config/schema.js';
import { runProbe } from '../src/probe/runner.js';
import { probe } from '../probes/aws-iam-user-mfa/probe.js';
import { EXAMPLE_KEY, startAwsPeer, useEnvCredentials, type PeerIamUser } from '../test/helpers/aws-peer.js';

const userCount = Number(process.argv[2] ?? 10_000);
const latencyMs = Number(process.argv[3] ?? 30);
const concurrency = Number(process.argv[4] ?? 32);
const targets = { requests: 5, ratio: 1000, seconds: 3 };
const ACCOUNT = '111111111111';
const root = path.resolve(import.meta.dirname, '..', '..');
let failed = false;

function check(ok: boolean, what: string): void {
  if (!ok) {
    failed = true;
    console.log(`  FAIL: ${what}`);
  }
}

// 10 % console users without MFA, 20 % programmatic-only, the rest console users with MFA.
const users: PeerIamUser[] = Array.from({ length: userCount }, (_, i) => ({ name: `user-${String(i).padStart(5, '0')}`, password: i % 10 !== 1 && i % 10 !== 2, mfa: i % 10 >= 3 }));
const expected = { fail: users.filter((u) => u.password && !u.mfa).length, pass: users.filter((u) => u.password && u.mfa).length, not_applicable: users.filter((u) => !u.password).length };

useEnvCredentials(EXAMPLE_KEY);
const peer = await startAwsPeer({ keys: [{ ...EXAMPLE_KEY, account: ACCOUNT }], accounts: { [ACCOUNT]: { users, reportPolls: 1 } }, latencyMs });
const spec = AwsTarget.parse({ name: 'prod', regions: ['us-east-1'], endpoints: { iam: peer.url, sts: peer.url, config: peer.url } });
console.log(`aws-mfa: ${userCount} IAM users in one account, ${latencyMs} ms per answer (node ${process.version})`);

// 1. The probe.
resetAwsClientState();
resetCredentialReportCache();
let t0 = performance.now();
const { result } = await runProbe({ probe, target: { name: 'prod', spec }, params: probe.params.parse({}), runId: 'bench', scheduledFor: new Date(), timeoutMs: 120_000, log: pino({ level: 'silent' }) });
const probeSeconds = (performance.now() - t0) / 1000;
const probeRequests = peer.requests.length;
const counts: Record<string, number> = { pass: 0, fail: 0, not_applicable: 0, unknown: 0 };
for (const f of result.findings) counts[f.outcome] = (counts[f.outcome] ?? 0) + 1;
console.log(`probe:    ${probeRequests} requests (${peer.requests.map((r) => r.action).join(', ')}), ${probeSeconds.toFixed(2)} s, ${result.findings.length} findings ${JSON.stringify(counts)}`);
check(result.error === undefined, `run error ${JSON.stringify(result.error)}`);
check(counts.fail === expected.fail && counts.pass === expected.pass && counts.not_applicable === expected.not_applicable && counts.unknown === 0, `verdicts ${JSON.stringify(counts)} != ${JSON.stringify(expected)}`);

// 2. The per-user baseline, with the same SDK.
peer.requests.length = 0;
const iam = new IAMClient({ region: 'us-east-1', endpoint: peer.url, maxAttempts: 4 });
t0 = performance.now();
const names: string[] = [];
for (let marker: string | undefined; ; ) {
  const page = await iam.send(new ListUsersCommand(marker ? { Marker: marker } : {}));
  names.push(...(page.Users ?? []).map((u) => u.UserName as string));
  if (!page.IsTruncated) break;
  marker = page.Marker;
}
let baselineFails = 0;
let next = 0;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < names.length) {
      const name = names[next++] as string;
      const mfa = await iam.send(new ListMFADevicesCommand({ UserName: name }));
      const hasPassword = await iam.send(new GetLoginProfileCommand({ UserName: name })).then(
        () => true,
        (err: Error & { Code?: string }) => (err.Code === 'NoSuchEntity' ? false : Promise.reject(err)),
      );
      if (hasPassword && (mfa.MFADevices ?? []).length === 0) baselineFails++;
    }
  }),
);
const baselineSeconds = (performance.now() - t0) / 1000;
const baselineRequests = peer.requests.length;
iam.destroy();
console.log(`baseline: ${baselineRequests} requests (ListUsers ×${peer.requests.filter((r) => r.action === 'ListUsers').length}, then 2 per user, ${concurrency} in flight), ${baselineSeconds.toFixed(2)} s, ${baselineFails} users failing`);
check(baselineFails === expected.fail, `baseline found ${baselineFails} failing users, expected ${expected.fail}`);

const ratio = baselineRequests / probeRequests;
console.log(`ratio:    ${Math.round(ratio)}× fewer requests, ${(baselineSeconds / probeSeconds).toFixed(1)}× faster`);
check(probeRequests <= targets.requests, `${probeRequests} requests > ${targets.requests}`);
check(ratio >= targets.ratio, `only ${ratio.toFixed(0)}× fewer requests than the baseline (target ${targets.ratio}×)`);
check(probeSeconds <= targets.seconds, `${probeSeconds.toFixed(2)} s > ${targets.seconds} s`);

// 3. run-once --json through a pipe, in a fresh process (its own report generation).
const dir = mkdtempSync(path.join(tmpdir(), 'vigil-bench-aws-'));
const config = path.join(dir, 'vigil.yaml');
writeFileSync(config, `dataDir: ${dir}\naws:\n  - name: prod\n    regions: [us-east-1]\n    endpoints: { iam: "${peer.url}", sts: "${peer.url}", config: "${peer.url}" }\n`);
peer.accounts[ACCOUNT] = { users, reportPolls: 1 };
t0 = performance.now();
const child = spawn(process.execPath, [path.join(root, 'bin', 'vigil.js'), 'run-once', '--config', config, '--probe', 'aws-iam-user-mfa', '--json'], { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
const chunks: Buffer[] = [];
let stderr = '';
child.stdout.on('data', (c: Buffer) => chunks.push(c));
child.stderr.on('data', (c: Buffer) => (stderr += String(c)));
const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
const out = Buffer.concat(chunks);
const pipeSeconds = (performance.now() - t0) / 1000;
let piped = -1;
try {
  const doc = JSON.parse(out.toString('utf8')) as { results: Array<{ findings: unknown[] }> };
  piped = doc.results[0]?.findings.length ?? -1;
} catch (err) {
  console.log(`  could not parse the piped JSON (${out.length} bytes): ${(err as Error).message}; stderr: ${stderr.slice(0, 300)}`);
}
console.log(`run-once: exit ${code}, ${(out.length / 1024).toFixed(0)} KiB of JSON through the pipe in ${pipeSeconds.toFixed(2)} s, ${piped} findings parsed`);
check(piped === userCount, `piped JSON held ${piped} findings, expected ${userCount}`);

await peer.close();
console.log(failed ? 'aws-mfa: FAILED' : 'aws-mfa: all targets met');
process.exit(failed ? 1 : 0);
