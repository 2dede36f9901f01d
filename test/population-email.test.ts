import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { GZIP_ATTACHMENT_ABOVE_BYTES, snapshotAttachment } from '../src/notify/email-attachment.js';
import { createMailer, type Mailer } from '../src/notify/email.js';
import type { PopulationUnit, Snapshot } from '../src/posture/snapshot-types.js';
import { snapshotHash } from '../src/posture/snapshot-types.js';
import { snapshotFileText } from '../src/store/archive.js';
import { startSmtpPeer, type SmtpPeer } from './helpers/smtp-peer.js';
import { sampleControl, sampleSnapshot } from './helpers/snapshots.js';
import { createTestPki } from './helpers/tls-certs.js';

/**
 * A big org's day file (the whole tested population) goes out gzip-compressed; a small one byte
 * for byte — through nodemailer to a real SMTP peer, and decompressing gives the archived bytes.
 */
const pki = createTestPki();
let peer: SmtpPeer | undefined;
let mailer: Mailer | undefined;
afterEach(async () => {
  mailer?.close();
  mailer = undefined;
  await peer?.close();
  peer = undefined;
});

function withPopulation(resources: number): Snapshot {
  const population: PopulationUnit[] = [
    {
      probe: 'github-branch-protection',
      target: 'acme-corp',
      resources: Array.from({ length: resources }, (_, i) => ({ resource: `github.com/acme-corp/service-${String(i).padStart(5, '0')}`, outcome: 'pass' as const })),
    },
  ];
  const base = sampleSnapshot('2026-11-21', [sampleControl({ id: 'branch-protection' })]);
  const { hash: _h, ...body } = base;
  const full = { ...body, population };
  return { ...full, hash: snapshotHash(full) };
}

describe('the email attaches a large day file gzip-compressed (real SMTP peer)', () => {
  it.each([
    ['100 resources: the JSON as is', 100, 'vigil-snapshot-2026-11-21.json', 'application/json'],
    ['20,000 resources: .json.gz', 20_000, 'vigil-snapshot-2026-11-21.json.gz', 'application/gzip'],
  ] as const)('%s', async (_name, resources, filename, contentType) => {
    const s = withPopulation(resources);
    const json = snapshotFileText(s);
    expect(Buffer.byteLength(json) > GZIP_ATTACHMENT_ABOVE_BYTES).toBe(filename.endsWith('.gz'));
    peer = await startSmtpPeer({ tls: { key: pki.keyPem, cert: pki.chainPem } });
    mailer = createMailer({ smtpUrl: peer.url, from: 'vigil <vigil@example.com>', to: ['security@example.com'], organization: 'Acme', ca: pki.caPem });
    await mailer.send(s, json);
    const a = peer.messages[0]?.parsed.attachments[0];
    expect(a?.filename).toBe(filename);
    expect(a?.contentType).toBe(contentType);
    const bytes = filename.endsWith('.gz') ? gunzipSync(a!.content) : a!.content;
    expect(Buffer.compare(bytes, Buffer.from(json, 'utf8'))).toBe(0);
    if (filename.endsWith('.gz')) expect(a!.content.length).toBeLessThan(Buffer.byteLength(json) / 10);
    // The email body shows counts, not 20,000 names.
    expect(peer.messages[0]?.parsed.html).toContain(`${resources} judged: ${resources} passed`);
    expect(String(peer.messages[0]?.parsed.html)).not.toContain('service-00042<');
  });

  it('the same day gives the same compressed bytes', () => {
    const json = snapshotFileText(withPopulation(30_000));
    expect(snapshotAttachment('2026-11-21', json).content.equals(snapshotAttachment('2026-11-21', json).content)).toBe(true);
    expect(snapshotAttachment('2026-11-21', 'x'.repeat(10), 5).filename).toBe('vigil-snapshot-2026-11-21.json.gz');
  });
});
