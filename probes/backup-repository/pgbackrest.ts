import { z } from 'zod';
import type { PgbackrestBackup } from '../../src/config/schema.js';
import { MalformedResponseError } from '../../src/probe/errors.js';
import type { IntegrityCheck, RepositoryObservation } from './observation.js';
import { firstLines, runTool, type ToolResult, type ToolRun } from './run-tool.js';

export type PgbackrestSpec = z.output<typeof PgbackrestBackup>;

/** `pgbackrest info --output=json`: the fields vigil reads. */
const PgbackrestInfo = z.array(
  z.object({
    name: z.string(),
    cipher: z.string().optional(),
    status: z.object({
      code: z.number(),
      message: z.string(),
      lock: z.object({ backup: z.object({ held: z.boolean() }).optional() }).optional(),
    }),
    backup: z
      .array(
        z.object({
          label: z.string(),
          type: z.string().optional(),
          error: z.boolean().optional(),
          timestamp: z.object({ start: z.number(), stop: z.number() }),
        }),
      )
      .default([]),
    repo: z.array(z.object({ key: z.number(), status: z.object({ code: z.number(), message: z.string() }) })).default([]),
  }),
);

/** Stanza status codes that still describe a readable stanza: 0 ok, 2 no valid backups (a freshness failure, not a read failure). */
const READABLE_STATUS = new Set([0, 2]);

/** Logging of every call: nothing written to pgBackRest's log files, only the console vigil reads. */
const QUIET = ['--log-level-file=off'];

/**
 * Reads `pgbackrest verify --verbose` console output. pgBackRest 2.x exits 0 even when it prints
 * `status: error`, so the verdict is the status line of the stanza, never the exit code.
 */
export function judgeVerify(r: ToolResult, stanza: string): { outcome: IntegrityCheck['outcome']; message: string } {
  const out = r.stdout;
  const errorLine = out.split('\n').find((l) => /\bERROR: \[\d+\]/.test(l));
  const block = new RegExp(`stanza: ${stanza.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*\\n\\s*status: (ok|error)([\\s\\S]*?)(?=\\n\\S|$)`).exec(out);
  if (block?.[1] === 'error') {
    const detail = (block[2] ?? '')
      .split('\n')
      .map((l) => l.trim())
      .flatMap((l) => {
        if (/status: invalid|No usable/.test(l)) return [l];
        const nonzero = [...l.matchAll(/([a-z ]+?): (\d+)/g)].filter((m) => /missing|invalid|other/.test(m[1] ?? '') && m[2] !== '0');
        return nonzero.length > 0 ? [nonzero.map((m) => `${(m[1] ?? '').trim()}: ${m[2]}`).join(', ')] : [];
      });
    const bad = out.split('\n').filter((l) => /INFO: (invalid|missing|unable)/.test(l)).map((l) => l.replace(/^.*INFO: /, ''));
    return { outcome: 'fail', message: `status: error — ${firstLines([...bad, ...detail].join('\n'), 3) || 'see pgbackrest verify --verbose'}: find the cause, then take a new full backup` };
  }
  if (block?.[1] === 'ok' && r.code === 0 && !errorLine) return { outcome: 'pass', message: 'status: ok' };
  return {
    outcome: 'unknown',
    message: `pgbackrest verify ended with exit code ${r.code} without a status line for stanza ${stanza}: ${firstLines((errorLine ?? r.stdout) || r.stderr) || '(no output)'}`,
  };
}

/** Reads a pgBackRest stanza: `info --output=json`, then `verify`. Never `check`: it writes to the database. */
export async function collectPgbackrest(spec: PgbackrestSpec, run: ToolRun, target: string): Promise<RepositoryObservation> {
  const base: RepositoryObservation = { target, kind: 'pgbackrest', rpoHours: spec.rpoHours, groups: [], checks: [], notes: [] };
  const common = [...(spec.configFile ? [`--config=${spec.configFile}`] : []), `--stanza=${spec.stanza}`, ...(spec.repo ? [`--repo=${spec.repo}`] : []), ...QUIET];

  const info = await runTool(run, [...common, '--log-level-console=off', '--log-level-stderr=warn', 'info', '--output=json']);
  if (info.code !== 0 || info.truncated) {
    return { ...base, accessProblem: `pgbackrest info failed (exit ${info.code}): ${firstLines(info.stderr || info.stdout)} — check backups[].configFile and stanza` };
  }
  let stanzas: z.infer<typeof PgbackrestInfo>;
  try {
    // A wrong cipher passphrase makes pgBackRest quote the undecryptable file, raw control bytes included: blank them so the JSON parses.
    stanzas = PgbackrestInfo.parse(JSON.parse(info.stdout.replace(/[\x00-\x1f\x7f]/g, ' ')));
  } catch (err) {
    throw new MalformedResponseError('pgbackrest info --output=json printed something that is not a stanza list', { cause: err });
  }
  const stanza = stanzas.find((s) => s.name === spec.stanza);
  if (!stanza) return { ...base, accessProblem: `pgbackrest info lists no stanza "${spec.stanza}" — check backups[].stanza` };
  if (!READABLE_STATUS.has(stanza.status.code)) {
    const why = stanza.repo.map((r) => r.status.message.replace(/[^\x20-\x7e]+/g, ' ').replace(/:\s.*$/, '')).find((m) => m !== 'ok');
    return {
      ...base,
      accessProblem: `pgBackRest reports stanza "${spec.stanza}" as ${stanza.status.message} (status ${stanza.status.code}${why ? `: ${why.slice(0, 200)}` : ''}) — check backups[].stanza, configFile and cipherPass`,
    };
  }
  for (const repo of stanza.repo) {
    if (!READABLE_STATUS.has(repo.status.code)) base.notes.push(`repo${repo.key}: ${repo.status.message}`);
  }
  if (stanza.status.lock?.backup?.held) base.notes.push('a pgBackRest backup was running while vigil read');
  const newest = stanza.backup.reduce<(typeof stanza.backup)[number] | undefined>((a, b) => (a === undefined || b.timestamp.stop > a.timestamp.stop ? b : a), undefined);
  base.groups.push({
    label: '',
    describe: `stanza ${spec.stanza} (pgBackRest: ${stanza.status.message})`,
    newest: newest
      ? {
          id: newest.label,
          time: new Date(newest.timestamp.stop * 1000).toISOString(),
          ...(newest.error ? { error: 'pgBackRest flags it error: true (a file changed or failed a page checksum during the backup): see pgbackrest info --set=' + newest.label } : {}),
        }
      : undefined,
    count: stanza.backup.length,
  });
  if (stanza.cipher !== undefined) {
    base.protection = { ok: stanza.cipher !== 'none', how: stanza.cipher === 'none' ? 'not encrypted (repo cipher-type none)' : `encrypted (${stanza.cipher})` };
  }

  if (spec.verify) {
    const r = await runTool(run, [...common, '--log-level-console=info', '--log-level-stderr=off', 'verify', '--verbose']);
    base.checks.push({ name: 'pgbackrest verify', ...judgeVerify(r, spec.stanza), readsContent: true });
  }
  return base;
}
