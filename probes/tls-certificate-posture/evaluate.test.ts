/**
 * evaluate, table-driven, at a fixed `now`, on certificates generated for each case (the keys
 * are cached, so this is fast). No network: observations are built as collect would write them.
 */
import { describe, expect, it } from 'vitest';
import type { Finding, ProbeResult } from '../../src/probe/contract.js';
import { VigilConfig } from '../../src/config/schema.js';
import { createCertificate, createTestPki, type CertificateSpec, type TestCertificate } from '../../test/helpers/tls-certs.js';
import type { EndpointObservation } from './observation.js';
import { probe, type Params } from './probe.js';

const NOW = new Date('2026-11-22T12:00:00Z');
const DAY = 86_400_000;
const at = (days: number): Date => new Date(NOW.getTime() + days * DAY);
const defaults = probe.params.parse({});
const pki = createTestPki({ now: NOW, hostnames: ['vigil.test', '127.0.0.1'] });
const otherRoot = createCertificate({ commonName: 'Unknown Root CA', keySlot: 'other-root', ca: true, notBefore: at(-100), notAfter: at(3000) });

/** A leaf under the test intermediate, valid for vigil.test and 127.0.0.1 unless overridden. */
function leaf(spec: Partial<CertificateSpec> = {}): TestCertificate {
  return createCertificate({
    commonName: 'vigil.test',
    keySlot: 'leaf',
    issuer: pki.intermediate,
    altNames: ['vigil.test', '127.0.0.1'],
    notBefore: at(-10),
    notAfter: at(80),
    ...spec,
  });
}

/** What collect writes for a server that sends `chain` to a client trusting `anchors`. */
function endpoint(
  chain: TestCertificate[],
  over: Omit<Partial<EndpointObservation>, 'anchors'> & { anchors?: TestCertificate[] } = {},
): EndpointObservation {
  const { anchors = [pki.root], ...rest } = over;
  return {
    endpoint: 'vigil.test:443',
    host: 'vigil.test',
    port: 443,
    sni: 'vigil.test',
    expectedName: 'vigil.test',
    protocol: 'TLSv1.3',
    cipher: 'TLS_AES_256_GCM_SHA384',
    peerChain: chain.map((c) => c.der.toString('base64')),
    anchors: anchors.map((c) => c.der.toString('base64')),
    tlsAuthorized: true,
    acceptsTls10: false,
    acceptsTls11: false,
    ...rest,
  };
}

function evaluateOne(ep: EndpointObservation, params: Partial<Params> = {}): Finding {
  const findings = probe.evaluate({ endpoints: [ep] }, { ...defaults, ...params }, NOW);
  expect(findings).toHaveLength(1);
  return findings[0] as Finding;
}

interface Case {
  name: string;
  observation: () => EndpointObservation;
  params?: Partial<Params>;
  outcome: Finding['outcome'];
  /** The whole message, when given; else each fragment must appear in it. */
  message?: string;
  contains?: string[];
  details?: Record<string, unknown>;
}

const expiringIntermediate = createCertificate({
  commonName: 'Short-lived Intermediate CA',
  keySlot: 'intermediate',
  ca: true,
  issuer: pki.root,
  notBefore: at(-100),
  notAfter: at(10),
});
const expiredIntermediate = createCertificate({
  commonName: 'Expired Intermediate CA',
  keySlot: 'intermediate',
  ca: true,
  issuer: pki.root,
  notBefore: at(-400),
  notAfter: at(-3),
});
const otherIntermediate = createCertificate({
  commonName: 'Unknown Intermediate CA',
  keySlot: 'other-intermediate',
  ca: true,
  issuer: otherRoot,
  notBefore: at(-100),
  notAfter: at(1000),
});
const weakIntermediate = createCertificate({
  commonName: 'Weak Intermediate CA',
  keySlot: 'weak-intermediate',
  key: { type: 'rsa', bits: 1024 },
  hash: 'sha1',
  ca: true,
  issuer: pki.root,
  notBefore: at(-100),
  notAfter: at(1000),
});
const sha1Root = createCertificate({ commonName: 'SHA-1 Root CA', keySlot: 'root', hash: 'sha1', ca: true, notBefore: at(-100), notAfter: at(3000) });
const selfSigned = createCertificate({ commonName: 'vigil.test', keySlot: 'leaf', altNames: ['vigil.test'], notBefore: at(-10), notAfter: at(80) });
const notAfterIso = (d: Date): string => new Date(Math.floor(d.getTime() / 1000) * 1000).toISOString();

const cases: Case[] = [
  {
    name: 'valid chain to a trusted root passes and reports both expiries',
    observation: () => endpoint([leaf(), pki.intermediate]),
    outcome: 'pass',
    message: 'vigil.test:443: certificate for vigil.test valid until 2027-02-10 (80 days), chain trusted, TLSv1.3, RSA 2048',
    details: {
      verified: true,
      verifyError: undefined,
      hostnameOk: true,
      leafNotAfter: notAfterIso(at(80)),
      chainNotAfter: notAfterIso(at(80)),
      chainSource: 'verified',
      leafKey: 'RSA 2048',
      leafSignature: 'sha256WithRSAEncryption',
      leafSubject: 'vigil.test',
      leafIssuer: 'vigil Test Intermediate CA',
      protocol: 'TLSv1.3',
      acceptsTls10: false,
      acceptsTls11: false,
      weak: [],
      problems: [],
    },
  },
  {
    name: 'leaf expiring inside minDaysValid fails with the days left, the date and the fix',
    observation: () => endpoint([leaf({ notAfter: at(5.25) }), pki.intermediate]),
    outcome: 'fail',
    message: 'vigil.test:443: certificate expires in 5 days (2026-11-27), under the 21-day minimum: renew it',
    details: { verified: true, problems: ['leaf-expiring'], daysLeft: 5 },
  },
  {
    name: 'leaf with more days left than minDaysValid passes',
    observation: () => endpoint([leaf({ notAfter: at(21.25) }), pki.intermediate]),
    outcome: 'pass',
  },
  {
    name: 'minDaysValid is a param',
    observation: () => endpoint([leaf({ notAfter: at(21.25) }), pki.intermediate]),
    params: { minDaysValid: 30 },
    outcome: 'fail',
    contains: ['certificate expires in 21 days (2026-12-13), under the 30-day minimum: renew it'],
  },
  {
    name: 'expired leaf fails, keeps its expiry, and is not verified',
    observation: () => endpoint([leaf({ notBefore: at(-100), notAfter: at(-2) }), pki.intermediate]),
    outcome: 'fail',
    message: 'vigil.test:443: certificate expired on 2026-11-20 (2 days ago): renew it',
    details: { verified: false, verifyCode: 'CERT_HAS_EXPIRED', verifyError: 'a certificate in the chain has expired', leafNotAfter: notAfterIso(at(-2)) },
  },
  {
    name: 'leaf not yet valid fails',
    observation: () => endpoint([leaf({ notBefore: at(2), notAfter: at(90) }), pki.intermediate]),
    outcome: 'fail',
    contains: ['certificate is not valid before 2026-11-24: check the clocks, or install a certificate valid now'],
    details: { verified: false, verifyCode: 'CERT_NOT_YET_VALID' },
  },
  {
    name: 'expired intermediate fails although the leaf is fine, and sets chainNotAfter',
    observation: () => endpoint([leaf({ issuer: expiredIntermediate }), expiredIntermediate]),
    outcome: 'fail',
    message: 'vigil.test:443: intermediate certificate "Expired Intermediate CA" expired on 2026-11-19 (3 days ago): install the intermediate your CA issues today',
    details: { verified: false, leafNotAfter: notAfterIso(at(80)), chainNotAfter: notAfterIso(at(-3)), chainNotAfterSubject: 'Expired Intermediate CA' },
  },
  {
    name: 'intermediate expiring before the leaf and inside minDaysValid fails',
    observation: () => endpoint([leaf({ issuer: expiringIntermediate }), expiringIntermediate]),
    outcome: 'fail',
    message:
      'vigil.test:443: intermediate certificate "Short-lived Intermediate CA" expires in 10 days (2026-12-02), under the 21-day minimum: install the intermediate your CA issues today',
    details: { verified: true, chainNotAfter: notAfterIso(at(10)), problems: ['chain-expiring'] },
  },
  {
    name: 'hostname mismatch fails and says which names the certificate has',
    observation: () => endpoint([leaf(), pki.intermediate], { expectedName: 'www.example.test', sni: 'www.example.test' }),
    outcome: 'fail',
    message:
      'vigil.test:443: certificate is not valid for "www.example.test" (it names vigil.test, 127.0.0.1): reissue it with "www.example.test" among its subject alternative names',
    details: { hostnameOk: false, verified: true },
  },
  {
    name: 'wildcard matches a single left-most label',
    observation: () => endpoint([leaf({ altNames: ['*.example.test'] }), pki.intermediate], { expectedName: 'api.example.test' }),
    outcome: 'pass',
  },
  {
    name: 'wildcard does not match two labels',
    observation: () => endpoint([leaf({ altNames: ['*.example.test'] }), pki.intermediate], { expectedName: 'a.api.example.test' }),
    outcome: 'fail',
    details: { hostnameOk: false },
  },
  {
    name: 'subject CN alone does not make the name valid (no SAN), as in browsers',
    observation: () => endpoint([leaf({ altNames: [] }), pki.intermediate]),
    outcome: 'fail',
    contains: ['certificate is not valid for "vigil.test" (it has no subject alternative names)'],
  },
  {
    name: 'an IP literal endpoint is matched against IP SANs',
    observation: () => endpoint([leaf(), pki.intermediate], { expectedName: '127.0.0.1', host: '127.0.0.1', sni: undefined }),
    outcome: 'pass',
  },
  {
    name: 'an IP literal missing from the SANs fails',
    observation: () => endpoint([leaf(), pki.intermediate], { expectedName: '10.1.2.3', host: '10.1.2.3', sni: undefined }),
    outcome: 'fail',
    details: { hostnameOk: false },
  },
  {
    name: 'self-signed leaf fails as self-signed',
    observation: () => endpoint([selfSigned]),
    outcome: 'fail',
    message:
      "vigil.test:443: certificate is self-signed: replace it with one issued by a trusted CA (or, for an internal service, add it to the target's caFile)",
    details: { verified: false, verifyCode: 'DEPTH_ZERO_SELF_SIGNED_CERT', verifyError: 'certificate is self-signed' },
  },
  {
    name: 'self-signed leaf trusted through the caFile passes',
    observation: () => endpoint([selfSigned], { anchors: [selfSigned] }),
    outcome: 'pass',
    details: { verified: true },
  },
  {
    name: 'server that omits its intermediate fails with "configure the full chain"',
    observation: () => endpoint([leaf()]),
    outcome: 'fail',
    message:
      'vigil.test:443: server does not send its intermediate certificate (issuer "vigil Test Intermediate CA" is neither sent nor trusted): configure the full chain (certificate, then intermediates) on the server',
    details: { verified: false, verifyCode: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', chainSource: 'presented', leafNotAfter: notAfterIso(at(80)) },
  },
  {
    name: 'chain sent up to a root that is not trusted fails as untrusted root',
    observation: () => endpoint([leaf({ issuer: otherIntermediate }), otherIntermediate, otherRoot]),
    outcome: 'fail',
    message:
      'vigil.test:443: chain ends at root "Unknown Root CA", which is not trusted: use a certificate from a publicly trusted CA, or add that root to the target\'s caFile',
    details: { verified: false, verifyCode: 'SELF_SIGNED_CERT_IN_CHAIN' },
  },
  {
    name: 'chain whose root is neither sent nor trusted fails as untrusted',
    observation: () => endpoint([leaf({ issuer: otherIntermediate }), otherIntermediate]),
    outcome: 'fail',
    message:
      'vigil.test:443: chain does not lead to a trusted root ("Unknown Root CA", issuer of "Unknown Intermediate CA", is neither sent nor trusted): use a certificate from a publicly trusted CA, or add that root to the target\'s caFile',
    details: { verified: false, verifyCode: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' },
  },
  {
    name: 'RSA-1024 leaf fails',
    observation: () => endpoint([leaf({ key: { type: 'rsa', bits: 1024 }, keySlot: 'weak-leaf' }), pki.intermediate]),
    outcome: 'fail',
    message: 'vigil.test:443: certificate key is RSA 1024, under the 2048-bit minimum: reissue it with an RSA 2048+ or ECDSA P-256 key',
    details: { leafKey: 'RSA 1024', weak: ['leaf key RSA 1024'], verified: true },
  },
  {
    name: 'minRsaBits is a param',
    observation: () => endpoint([leaf(), pki.intermediate]),
    params: { minRsaBits: 3072 },
    outcome: 'fail',
    contains: ['certificate key is RSA 2048, under the 3072-bit minimum'],
  },
  {
    name: 'RSA-1024 SHA-1 intermediate fails on both counts',
    observation: () => endpoint([leaf({ issuer: weakIntermediate }), weakIntermediate]),
    outcome: 'fail',
    message:
      'vigil.test:443: intermediate certificate "Weak Intermediate CA" key is RSA 1024, under the 2048-bit minimum: use a CA chain with stronger keys; intermediate certificate "Weak Intermediate CA" is signed with SHA-1 (sha1WithRSAEncryption): install the SHA-256 intermediate your CA provides',
    details: { weak: ['intermediate "Weak Intermediate CA" key RSA 1024', 'intermediate "Weak Intermediate CA" signature sha1WithRSAEncryption'] },
  },
  {
    name: 'EC P-256 leaf passes the default minimum',
    observation: () => endpoint([leaf({ key: { type: 'ec', curve: 'P-256' }, keySlot: 'ec-leaf' }), pki.intermediate]),
    outcome: 'pass',
    details: { leafKey: 'EC P-256' },
  },
  {
    name: 'EC P-256 leaf fails minEcBits 384',
    observation: () => endpoint([leaf({ key: { type: 'ec', curve: 'P-256' }, keySlot: 'ec-leaf' }), pki.intermediate]),
    params: { minEcBits: 384 },
    outcome: 'fail',
    contains: ['certificate key is EC P-256, under the 384-bit minimum'],
  },
  {
    name: 'SHA-1 signed leaf fails',
    observation: () => endpoint([leaf({ hash: 'sha1' }), pki.intermediate]),
    outcome: 'fail',
    message: 'vigil.test:443: certificate is signed with SHA-1 (sha1WithRSAEncryption): reissue it with SHA-256',
    details: { leafSignature: 'sha1WithRSAEncryption', weak: ['leaf signature sha1WithRSAEncryption'] },
  },
  {
    name: 'MD5 signed leaf fails',
    observation: () => endpoint([leaf({ hash: 'md5' }), pki.intermediate]),
    outcome: 'fail',
    contains: ['certificate is signed with MD5 (md5WithRSAEncryption): reissue it with SHA-256'],
  },
  {
    name: "a trusted root's own SHA-1 self-signature does not count",
    observation: () => {
      const intermediate = createCertificate({ commonName: 'Modern Intermediate', keySlot: 'intermediate', ca: true, issuer: sha1Root, notBefore: at(-10), notAfter: at(900) });
      return endpoint([leaf({ issuer: intermediate }), intermediate, sha1Root], { anchors: [sha1Root] });
    },
    outcome: 'pass',
  },
  {
    name: 'TLS 1.0 accepted fails',
    observation: () => endpoint([leaf(), pki.intermediate], { acceptsTls10: true }),
    outcome: 'fail',
    message: 'vigil.test:443: accepts TLS 1.0: disable TLS 1.0 and 1.1 on the server',
    details: { acceptsTls10: true, problems: ['tls10-accepted'] },
  },
  {
    name: 'TLS 1.0 and 1.1 accepted are one problem',
    observation: () => endpoint([leaf(), pki.intermediate], { acceptsTls10: true, acceptsTls11: true }),
    outcome: 'fail',
    message: 'vigil.test:443: accepts TLS 1.0 and 1.1: disable TLS 1.0 and 1.1 on the server',
    details: { problems: ['tls10-accepted', 'tls11-accepted'] },
  },
  {
    name: 'TLS 1.1 accepted fails by default',
    observation: () => endpoint([leaf(), pki.intermediate], { acceptsTls11: true }),
    outcome: 'fail',
    message: 'vigil.test:443: accepts TLS 1.1: disable TLS 1.0 and 1.1 on the server',
  },
  {
    name: 'TLS 1.1 accepted passes with allowTls11',
    observation: () => endpoint([leaf(), pki.intermediate], { acceptsTls11: true }),
    params: { allowTls11: true },
    outcome: 'pass',
  },
  {
    name: 'TLS 1.0 accepted fails even with allowTls11',
    observation: () => endpoint([leaf(), pki.intermediate], { acceptsTls10: true, acceptsTls11: true }),
    params: { allowTls11: true },
    outcome: 'fail',
    message: 'vigil.test:443: accepts TLS 1.0: disable TLS 1.0 on the server',
  },
  {
    name: 'legacy protocol support that could not be told makes a clean endpoint unknown, not pass',
    observation: () => endpoint([leaf(), pki.intermediate], { acceptsTls10: null, acceptsTls11: null, legacyError: 'no TLS handshake within 10000 ms' }),
    outcome: 'unknown',
    contains: ['could not tell whether it accepts TLS 1.0 (no TLS handshake within 10000 ms)', 'otherwise certificate for vigil.test valid until'],
  },
  {
    name: 'unreachable endpoint is unknown with the reason',
    observation: () => ({
      endpoint: '127.0.0.1:1',
      host: '127.0.0.1',
      port: 1,
      expectedName: '127.0.0.1',
      error: 'connection refused',
      peerChain: [],
      anchors: [],
      acceptsTls10: null,
      acceptsTls11: null,
    }),
    outcome: 'unknown',
    message: 'could not connect to 127.0.0.1:1: connection refused',
    details: { error: 'connection refused' },
  },
  {
    name: 'a chain OpenSSL refused for a reason our path building does not model fails with that reason',
    observation: () => endpoint([leaf(), pki.intermediate], { tlsAuthorized: false, tlsAuthorizationError: 'PATH_LENGTH_EXCEEDED' }),
    outcome: 'fail',
    message:
      'vigil.test:443: a CA in the chain issues deeper than its path length constraint allows (PATH_LENGTH_EXCEEDED): reissue the certificate through your CA and install the chain it provides',
    details: { verified: false, verifyCode: 'PATH_LENGTH_EXCEEDED' },
  },
  {
    name: "OpenSSL's expiry verdict from collection time yields to evaluation at now",
    observation: () => endpoint([leaf(), pki.intermediate], { tlsAuthorized: false, tlsAuthorizationError: 'CERT_HAS_EXPIRED' }),
    outcome: 'pass',
    details: { verified: true },
  },
  {
    name: 'every problem is listed, in one line',
    observation: () =>
      endpoint([leaf({ notAfter: at(3.2), hash: 'sha1', key: { type: 'rsa', bits: 1024 }, keySlot: 'weak-leaf' })], {
        expectedName: 'other.test',
        acceptsTls10: true,
        acceptsTls11: true,
      }),
    outcome: 'fail',
    message:
      'vigil.test:443: certificate expires in 3 days (2026-11-25), under the 21-day minimum: renew it; ' +
      'server does not send its intermediate certificate (issuer "vigil Test Intermediate CA" is neither sent nor trusted): configure the full chain (certificate, then intermediates) on the server; ' +
      'certificate is not valid for "other.test" (it names vigil.test, 127.0.0.1): reissue it with "other.test" among its subject alternative names; ' +
      'certificate key is RSA 1024, under the 2048-bit minimum: reissue it with an RSA 2048+ or ECDSA P-256 key; ' +
      'certificate is signed with SHA-1 (sha1WithRSAEncryption): reissue it with SHA-256; ' +
      'accepts TLS 1.0 and 1.1: disable TLS 1.0 and 1.1 on the server',
    details: {
      problems: ['leaf-expiring', 'untrusted-chain', 'hostname-mismatch', 'weak-key', 'weak-signature', 'tls10-accepted', 'tls11-accepted'],
    },
  },
];

describe('evaluate', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const finding = evaluateOne(c.observation(), c.params);
    expect(finding.outcome).toBe(c.outcome);
    if (c.message !== undefined) expect(finding.message).toBe(c.message);
    for (const fragment of c.contains ?? []) expect(finding.message).toContain(fragment);
    expect(finding.message).not.toContain('\n');
    if (c.details) expect(finding.details).toMatchObject(c.details);
    if (finding.outcome !== 'unknown' || finding.details?.leafNotAfter !== undefined) expect(finding.resource).toBe('vigil.test:443');
  });

  it('gives the same findings for an observation that went through JSON (it is plain data)', () => {
    const observation = { endpoints: [endpoint([leaf({ notAfter: at(4.5) }), pki.intermediate]), endpoint([leaf()])] };
    const roundTripped = JSON.parse(JSON.stringify(observation)) as typeof observation;
    expect(roundTripped).toEqual(observation);
    expect(probe.evaluate(roundTripped, defaults, NOW)).toEqual(probe.evaluate(observation, defaults, NOW));
  });

  it('judges at the given now, not the clock: the same observation expires later', () => {
    const observation = { endpoints: [endpoint([leaf({ notAfter: at(30) }), pki.intermediate])] };
    expect(probe.evaluate(observation, defaults, NOW)[0]?.outcome).toBe('pass');
    expect(probe.evaluate(observation, defaults, at(10))[0]?.outcome).toBe('fail');
    expect(probe.evaluate(observation, defaults, at(31))[0]?.message).toContain('certificate expired on');
  });
});

describe('gauges', () => {
  it('read leaf expiry, earliest chain expiry and verification from the findings, skipping unreachable endpoints', () => {
    const observation = {
      endpoints: [
        endpoint([leaf({ issuer: expiringIntermediate }), expiringIntermediate], { endpoint: 'a.test:443' }),
        endpoint([leaf()], { endpoint: 'b.test:443' }),
        { endpoint: 'c.test:443', host: 'c.test', port: 443, expectedName: 'c.test', error: 'connection refused', peerChain: [], anchors: [], acceptsTls10: null, acceptsTls11: null },
      ],
    };
    const result: ProbeResult = {
      runId: 'r1',
      probe: probe.id,
      target: 'web',
      scheduledFor: NOW.toISOString(),
      startedAt: NOW.toISOString(),
      finishedAt: NOW.toISOString(),
      findings: probe.evaluate(observation, defaults, NOW),
    };
    const byName = Object.fromEntries((probe.gauges ?? []).map((g) => [g.name, g.fromResult(result)]));
    const leafSeconds = Math.floor(at(80).getTime() / 1000);
    expect(byName).toEqual({
      vigil_tls_certificate_expiry_timestamp_seconds: [
        { labels: { endpoint: 'a.test:443' }, value: leafSeconds },
        { labels: { endpoint: 'b.test:443' }, value: leafSeconds },
      ],
      vigil_tls_chain_expiry_timestamp_seconds: [
        { labels: { endpoint: 'a.test:443' }, value: Math.floor(at(10).getTime() / 1000) },
        { labels: { endpoint: 'b.test:443' }, value: leafSeconds },
      ],
      vigil_tls_verify_ok: [
        { labels: { endpoint: 'a.test:443' }, value: 1 },
        { labels: { endpoint: 'b.test:443' }, value: 0 },
      ],
    });
    for (const gauge of probe.gauges ?? []) expect(gauge.labelNames).toEqual(['endpoint']);
  });

  it('read nothing from a run that ended in an error', () => {
    const result: ProbeResult = {
      runId: 'r2',
      probe: probe.id,
      target: 'web',
      scheduledFor: NOW.toISOString(),
      startedAt: NOW.toISOString(),
      finishedAt: NOW.toISOString(),
      findings: [],
      error: { class: 'Error', message: 'could not read caFile' },
    };
    expect((probe.gauges ?? []).flatMap((g) => g.fromResult(result))).toEqual([]);
  });
});

describe('definition', () => {
  it('has the documented params and defaults, and rejects unknown ones', () => {
    expect(probe.params.parse({})).toEqual({ minDaysValid: 21, allowTls11: false, minRsaBits: 2048, minEcBits: 256, connectTimeoutMs: 10_000, legacyProtocolCheckHours: 24 });
    expect(probe.params.safeParse({ minDaysValid: -1 }).success).toBe(false);
    expect(probe.params.safeParse({ minDayValid: 3 }).success).toBe(false);
  });

  it('maps each tls[] entry of the config to a target, endpoints and caFile passed through', () => {
    const config = VigilConfig.parse({
      tls: [
        { name: 'public', endpoints: ['example.com', '[2001:db8::1]:8443', { host: '192.0.2.10', servername: 'api.example.com' }] },
        { name: 'internal', endpoints: ['db.internal:5433'], caFile: '/etc/vigil/internal-ca.pem' },
      ],
    });
    expect(probe.targets(config)).toEqual([
      {
        name: 'public',
        spec: {
          caFile: undefined,
          endpoints: [
            { host: 'example.com', port: 443, servername: undefined, name: 'example.com:443' },
            { host: '2001:db8::1', port: 8443, servername: undefined, name: '[2001:db8::1]:8443' },
            { host: '192.0.2.10', port: 443, servername: 'api.example.com', name: 'api.example.com@192.0.2.10:443' },
          ],
        },
      },
      { name: 'internal', spec: { caFile: '/etc/vigil/internal-ca.pem', endpoints: [{ host: 'db.internal', port: 5433, servername: undefined, name: 'db.internal:5433' }] } },
    ]);
  });

  it('declares id, source, control, schedule and docs', () => {
    expect(probe).toMatchObject({ id: 'tls-certificate-posture', source: 'tls', controls: ['tls-certificates'], schedule: '*/15 * * * *' });
    expect(probe.docs.permissions).toBe('none: it only opens TLS connections to the configured endpoints');
  });
});
