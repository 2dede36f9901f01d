/**
 * The pure chain logic against third-party material: real badssl.com chains (validated at fixed
 * moments, since their leaves expired long ago) and the x509-limbo test vectors. See
 * fixtures/README.md for where each file comes from.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildChain, certificateMatchesName, parseCertificate, parsePemBundle, type Certificate } from './chain.js';
import type { EndpointObservation } from './observation.js';
import { probe } from './probe.js';

const fixture = (path: string): string => readFileSync(new URL(`./fixtures/${path}`, import.meta.url), 'utf8');
const badssl = (file: string): Certificate[] => parsePemBundle(fixture(`badssl/${file}`));
const roots = parsePemBundle(fixture('badssl/roots.pem'));
const superfishRoot = badssl('ca-superfish.crt');
const defaults = probe.params.parse({});

/** An observation as collect would write it for a server sending `chain`, trusted anchors given. */
function observed(chain: Certificate[], anchors: Certificate[], expectedName: string): EndpointObservation {
  return {
    endpoint: `${expectedName}:443`,
    host: expectedName,
    port: 443,
    sni: expectedName,
    expectedName,
    protocol: 'TLSv1.3',
    peerChain: chain.map((c) => c.der.toString('base64')),
    anchors: anchors.map((c) => c.der.toString('base64')),
    tlsAuthorized: true,
    acceptsTls10: false,
    acceptsTls11: false,
  };
}

function evaluateAt(at: string, chain: Certificate[], anchors: Certificate[], name: string, params = defaults) {
  const [finding] = probe.evaluate({ endpoints: [observed(chain, anchors, name)] }, params, new Date(at));
  if (!finding) throw new Error('no finding');
  return finding;
}

describe('certificate parsing (badssl.com)', () => {
  it('reads validity, key and signature algorithm from the DER', () => {
    const [leaf, intermediate] = badssl('wildcard-rsa2048.pem');
    expect(leaf?.subjectLabel).toBe('*.badssl.com');
    expect(leaf?.issuerLabel).toBe('DigiCert SHA2 Secure Server CA');
    expect(leaf?.notBefore.toISOString()).toBe('2020-03-23T00:00:00.000Z');
    expect(leaf?.notAfter.toISOString()).toBe('2022-05-17T12:00:00.000Z');
    expect(leaf?.key.label).toBe('RSA 2048');
    expect(leaf?.signature.name).toBe('sha256WithRSAEncryption');
    expect(leaf?.isCa).toBe(false);
    expect(intermediate?.isCa).toBe(true);
    expect(intermediate?.selfSigned).toBe(false);
  });

  it('names EC keys by curve and ECDSA signatures by hash', () => {
    const [leaf, intermediate] = badssl('wildcard-ecc256.pem');
    expect(leaf?.key).toEqual({ type: 'EC', bits: 256, label: 'EC P-256' });
    expect(leaf?.signature).toMatchObject({ name: 'ecdsa-with-SHA384', hash: 'sha384' });
    expect(intermediate?.key.label).toBe('EC P-384');
    expect(badssl('wildcard-rsa8192.pem')[0]?.key.label).toBe('RSA 8192');
  });

  it('recognises SHA-1 signatures and a self-signed root', () => {
    const [root] = superfishRoot;
    expect(root?.signature).toMatchObject({ name: 'sha1WithRSAEncryption', hash: 'sha1' });
    expect(root?.key.label).toBe('RSA 1024');
    expect(root?.selfSigned).toBe(true);
  });
});

describe('chain building (badssl.com)', () => {
  it('valid chain builds up to DigiCert Global Root CA', () => {
    const [leaf, ...rest] = badssl('wildcard-rsa2048.pem') as [Certificate, ...Certificate[]];
    const result = buildChain({ leaf, intermediates: rest, anchors: roots, at: new Date('2021-06-01T00:00:00Z') });
    expect(result.ok).toBe(true);
    expect(result.chain.map((c) => c.subjectLabel)).toEqual(['*.badssl.com', 'DigiCert SHA2 Secure Server CA', 'DigiCert Global Root CA']);
  });

  it('expired leaf still anchors, through the self-signed COMODO root rather than the expired cross-signed one', () => {
    const [leaf, ...rest] = badssl('wildcard-expired.pem') as [Certificate, ...Certificate[]];
    const result = buildChain({ leaf, intermediates: rest, anchors: roots, at: new Date('2021-06-01T00:00:00Z') });
    expect(result.ok).toBe(false);
    expect(result.anchored).toBe(true);
    expect(result.error?.code).toBe('CERT_HAS_EXPIRED');
    expect(result.error?.cert.subjectLabel).toBe('*.badssl.com');
    expect(result.chain.at(-1)?.fingerprint).toBe(roots[1]?.fingerprint);
  });

  it('the same chain verifies inside its validity', () => {
    const [leaf, ...rest] = badssl('wildcard-expired.pem') as [Certificate, ...Certificate[]];
    expect(buildChain({ leaf, intermediates: rest, anchors: roots, at: new Date('2015-04-10T00:00:00Z') }).ok).toBe(true);
  });

  it('leaf alone is an incomplete chain', () => {
    const [leaf] = badssl('wildcard-incomplete-chain.pem') as [Certificate];
    const result = buildChain({ leaf, intermediates: [], anchors: roots, at: new Date('2021-06-01T00:00:00Z') });
    expect(result.error?.code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  });

  it('self-signed leaf is reported as such', () => {
    const [leaf] = badssl('wildcard-self-signed.pem') as [Certificate];
    const result = buildChain({ leaf, intermediates: [], anchors: roots, at: new Date('2017-06-01T00:00:00Z') });
    expect(result.error?.code).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
  });

  it('a leaf under a root outside the trust store does not verify, and does once the root is trusted', () => {
    const [leaf] = badssl('subdomain-superfish.pem') as [Certificate];
    const at = new Date('2019-06-01T00:00:00Z');
    expect(buildChain({ leaf, intermediates: [], anchors: roots, at }).error?.code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect(buildChain({ leaf, intermediates: [], anchors: superfishRoot, at }).ok).toBe(true);
  });
});

describe('host names (badssl.com)', () => {
  const [wildcard] = badssl('wildcard-rsa2048.pem') as [Certificate];
  const [noCn] = badssl('subdomain-no-common-name.pem') as [Certificate];
  it.each([
    [wildcard, 'rsa2048.badssl.com', true],
    [wildcard, 'badssl.com', true],
    [wildcard, 'RSA2048.BadSSL.com', true],
    [wildcard, 'a.b.badssl.com', false],
    [wildcard, 'badssl.com.evil.example', false],
    [noCn, 'no-common-name.badssl.com', true],
    [noCn, 'badssl.com', false],
  ] as const)('%#: %s', (cert, name, expected) => {
    expect(certificateMatchesName(cert, name)).toBe(expected);
  });
});

describe('evaluate on badssl.com chains at fixed moments', () => {
  it('valid RSA chain passes', () => {
    const f = evaluateAt('2021-06-01T00:00:00Z', badssl('wildcard-rsa2048.pem'), roots, 'rsa2048.badssl.com');
    expect(f.outcome).toBe('pass');
    expect(f.details).toMatchObject({
      verified: true,
      hostnameOk: true,
      leafNotAfter: '2022-05-17T12:00:00.000Z',
      chainNotAfter: '2022-05-17T12:00:00.000Z',
      leafKey: 'RSA 2048',
      leafSignature: 'sha256WithRSAEncryption',
      leafIssuer: 'DigiCert SHA2 Secure Server CA',
      weak: [],
    });
  });

  it('the same chain 16 days before expiry fails the 21-day minimum', () => {
    const f = evaluateAt('2022-05-01T12:00:00Z', badssl('wildcard-rsa2048.pem'), roots, 'rsa2048.badssl.com');
    expect(f.outcome).toBe('fail');
    expect(f.message).toBe(
      'rsa2048.badssl.com:443: certificate expires in 16 days (2022-05-17), under the 21-day minimum: renew it',
    );
  });

  it('expired leaf fails, with its expiry and the reason it does not verify', () => {
    const f = evaluateAt('2021-06-01T00:00:00Z', badssl('wildcard-expired.pem'), roots, 'expired.badssl.com');
    expect(f.outcome).toBe('fail');
    expect(f.message).toBe('expired.badssl.com:443: certificate expired on 2015-04-12 (2241 days ago): renew it');
    expect(f.details).toMatchObject({
      verified: false,
      verifyCode: 'CERT_HAS_EXPIRED',
      leafNotAfter: '2015-04-12T23:59:59.000Z',
      chainNotAfter: '2015-04-12T23:59:59.000Z',
      chainSource: 'verified',
    });
  });

  it('incomplete chain fails and keeps the leaf expiry', () => {
    const f = evaluateAt('2021-06-01T00:00:00Z', badssl('wildcard-incomplete-chain.pem'), roots, 'incomplete-chain.badssl.com');
    expect(f.outcome).toBe('fail');
    expect(f.message).toBe(
      'incomplete-chain.badssl.com:443: server does not send its intermediate certificate (issuer "DigiCert SHA2 Secure Server CA" is neither sent nor trusted): configure the full chain (certificate, then intermediates) on the server',
    );
    expect(f.details).toMatchObject({ verified: false, verifyCode: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', leafNotAfter: '2022-05-17T12:00:00.000Z', chainSource: 'presented' });
  });

  it('SHA-1 leaf and intermediate both fail, under a trusted root', () => {
    const f = evaluateAt('2016-06-01T00:00:00Z', badssl('wildcard-sha1-2017.pem'), roots, 'sha1-2017.badssl.com');
    expect(f.outcome).toBe('fail');
    expect(f.details).toMatchObject({
      verified: true,
      weak: ['leaf signature sha1WithRSAEncryption', 'intermediate "DigiCert Secure Server CA" signature sha1WithRSAEncryption'],
    });
    expect(f.message).toBe(
      'sha1-2017.badssl.com:443: certificate is signed with SHA-1 (sha1WithRSAEncryption): reissue it with SHA-256; intermediate certificate "DigiCert Secure Server CA" is signed with SHA-1 (sha1WithRSAEncryption): install the SHA-256 intermediate your CA provides',
    );
  });

  it('SHA-1 intermediate under a root no longer trusted reports both', () => {
    const f = evaluateAt('2019-06-01T00:00:00Z', badssl('wildcard-sha1-intermediate.pem'), roots, 'sha1-intermediate.badssl.com');
    expect(f.outcome).toBe('fail');
    expect(f.details?.problems).toEqual(['untrusted-chain', 'weak-signature']);
    expect(f.message).toContain('"AddTrust External CA Root", issuer of "COMODO SSL CA", is neither sent nor trusted');
    expect(f.message).toContain('intermediate certificate "COMODO SSL CA" is signed with SHA-1');
  });

  it('EC P-256 chain passes the default minimum and fails a 384-bit one', () => {
    const chain = badssl('wildcard-ecc256.pem');
    expect(evaluateAt('2021-06-01T00:00:00Z', chain, roots, 'ecc256.badssl.com').outcome).toBe('pass');
    const strict = evaluateAt('2021-06-01T00:00:00Z', chain, roots, 'ecc256.badssl.com', { ...defaults, minEcBits: 384 });
    expect(strict.details?.weak).toEqual(['leaf key EC P-256']);
  });

  it('a trusted root\'s own RSA-1024 and SHA-1 do not count against the endpoint', () => {
    const f = evaluateAt('2019-06-01T00:00:00Z', badssl('subdomain-superfish.pem'), superfishRoot, 'superfish.badssl.com');
    expect(f.outcome).toBe('pass');
  });
});

// ---------------------------------------------------------------------------------------------
// x509-limbo

interface LimboCase {
  id: string;
  features: string[] | null;
  expected_result: 'SUCCESS' | 'FAILURE';
  expected_peer_name: { kind: 'DNS' | 'IP' | 'RFC822'; value: string } | null;
  validation_time: string | null;
  trusted_certs?: string[];
  untrusted_intermediates?: string[];
  peer_certificate?: string;
}

/**
 * The rule: a case is in scope when what it tests is something this probe decides itself —
 * building a path to a trust anchor, the validity period, signature verification, whether an
 * issuer may issue, host-name matching against SANs, and key strength (judged by evaluate, not
 * the chain builder). Checked by prefix of the case id.
 */
const inScope: ReadonlyArray<{ prefix: string; via: 'chain' | 'evaluate' }> = [
  // path building and trust
  { prefix: 'pathological::', via: 'chain' },
  { prefix: 'rfc5280::chain-untrusted-root', via: 'chain' },
  { prefix: 'webpki::cryptographydotio-chain', via: 'chain' },
  { prefix: 'online::', via: 'chain' },
  // who may issue: CA bit, keyCertSign
  { prefix: 'rfc5280::intermediate-ca-without-ca-bit', via: 'chain' },
  { prefix: 'rfc5280::intermediate-ca-missing-basic-constraints', via: 'chain' },
  { prefix: 'rfc5280::ica-ku-keycertsign', via: 'chain' },
  // valid chains that merely lack optional extensions must not be rejected
  { prefix: 'rfc5280::ee-aia', via: 'chain' },
  { prefix: 'rfc5280::no-keyusage', via: 'chain' },
  { prefix: 'rfc5280::no-basicconstraints', via: 'chain' },
  { prefix: 'rfc5280::eku::ee-without-eku', via: 'chain' },
  { prefix: 'rfc5280::aki::self-signed-root-missing-aki', via: 'chain' },
  // validity period
  { prefix: 'rfc5280::validity::', via: 'chain' },
  // signatures
  { prefix: 'rfc5280::mismatching-signature-algorithm', via: 'chain' },
  // host names (see the two exceptions below)
  { prefix: 'webpki::san::', via: 'chain' },
  // key strength: P-192 and DSA leaf keys
  { prefix: 'webpki::forbidden-p192-spki-leaf', via: 'evaluate' },
  { prefix: 'webpki::forbidden-dsa-spki-leaf', via: 'evaluate' },
  { prefix: 'webpki::forbidden-signature-algorithm-in-leaf', via: 'evaluate' },
];

/**
 * Skipped, and why. Most of these are checked anyway during the live handshake: collect records
 * OpenSSL's verdict (`tlsAuthorizationError`), and evaluate fails the endpoint with it.
 */
const skipped: ReadonlyArray<{ prefix: string; why: string }> = [
  { prefix: 'pathlen::', why: 'pathLenConstraint and max chain depth: not parsed by chain.ts; OpenSSL enforces them live (PATH_LENGTH_EXCEEDED)' },
  { prefix: 'rfc5280::nc::', why: 'name constraints: not implemented in chain.ts; OpenSSL enforces them live (PERMITTED_/EXCLUDED_VIOLATION)' },
  { prefix: 'webpki::nc::', why: 'name constraints, as above' },
  { prefix: 'rfc5280::aki::', why: 'key identifier encoding (RFC 5280 profile linting), not whether clients accept the chain' },
  { prefix: 'rfc5280::ski::', why: 'key identifier encoding (profile linting)' },
  { prefix: 'webpki::aki::', why: 'key identifier encoding (profile linting)' },
  { prefix: 'rfc5280::serial::', why: 'serial number encoding (profile linting)' },
  { prefix: 'rfc5280::eku::', why: 'EKU policy: OpenSSL checks the serverAuth purpose live (INVALID_PURPOSE)' },
  { prefix: 'webpki::eku::', why: 'EKU policy (pedantic CABF), as above' },
  { prefix: 'rfc5280::san::', why: 'malformed SAN encoding (profile linting)' },
  { prefix: 'rfc5280::ee-empty-issuer', why: 'name encoding (profile linting)' },
  { prefix: 'rfc5280::ca-empty-subject', why: 'name encoding (profile linting)' },
  { prefix: 'rfc5280::unknown-critical-extension-', why: 'critical extensions: OpenSSL rejects them live (UNHANDLED_CRITICAL_EXTENSION)' },
  { prefix: 'rfc5280::root-', why: 'trust anchor profile: anchors are trusted by configuration in chain.ts' },
  { prefix: 'rfc5280::leaf-ku-keycertsign', why: 'leaf key usage profile (linting)' },
  { prefix: 'rfc5280::ee-critical-aia-invalid', why: 'extension criticality (linting)' },
  { prefix: 'rfc5280::duplicate-extensions', why: 'extension encoding (linting)' },
  { prefix: 'webpki::malformed-aia', why: 'extension encoding (linting)' },
  { prefix: 'webpki::v1-cert', why: 'certificate version policy (linting)' },
  { prefix: 'webpki::ee-basicconstraints-ca', why: 'leaf profile (linting)' },
  { prefix: 'webpki::san::san-critical-with-nonempty-subject', why: 'SAN criticality is encoding, not which names match' },
  { prefix: 'webpki::san::public-suffix-wildcard-san', why: 'needs the public suffix list, which the probe does not carry' },
  { prefix: 'webpki::forbidden-signature-algorithm-in-root', why: 'DSA signature policy: the probe flags weak hashes, and never judges the trust anchor key' },
];

/** The most specific rule for an id: the longest matching prefix, in scope or skipped. */
function classify(id: string): { kind: 'run'; via: 'chain' | 'evaluate' } | { kind: 'skip'; why: string } | undefined {
  const candidates = [
    ...inScope.filter((r) => id.startsWith(r.prefix)).map((r) => ({ len: r.prefix.length, value: { kind: 'run' as const, via: r.via } })),
    ...skipped.filter((r) => id.startsWith(r.prefix)).map((r) => ({ len: r.prefix.length, value: { kind: 'skip' as const, why: r.why } })),
  ].sort((a, b) => b.len - a.len);
  return candidates[0]?.value;
}

const limbo = JSON.parse(fixture('x509-limbo/limbo-trimmed.json')) as { testcases: LimboCase[] };
/** x509-limbo's default validation time is "now"; its synthetic certificates are valid 1970–2969. */
const limboNow = '2024-06-01T00:00:00Z';
const pemCert = (pem: string): Certificate => parseCertificate(new X509Certificate(pem).raw);

describe('x509-limbo', () => {
  it('every case is either run or skipped for a stated reason', () => {
    const unclassified = limbo.testcases.filter((t) => classify(t.id) === undefined).map((t) => t.id);
    expect(unclassified).toEqual([]);
    const run = limbo.testcases.filter((t) => classify(t.id)?.kind === 'run');
    expect(limbo.testcases).toHaveLength(135);
    expect(run).toHaveLength(48); // 45 through buildChain + host name, 3 through evaluate
    // The trimmed fixture kept certificates exactly for the cases run here (see trim.mjs).
    expect(run.every((t) => t.peer_certificate !== undefined)).toBe(true);
    expect(limbo.testcases.filter((t) => classify(t.id)?.kind === 'skip').every((t) => t.peer_certificate === undefined)).toBe(true);
  });

  const runnable = limbo.testcases.filter((t) => classify(t.id)?.kind === 'run');

  it.each(runnable.filter((t) => (classify(t.id) as { via: string }).via === 'chain').map((t) => [t.id, t] as const))(
    '%s',
    (_id, t) => {
      const leaf = pemCert(t.peer_certificate as string);
      const result = buildChain({
        leaf,
        intermediates: (t.untrusted_intermediates ?? []).map(pemCert),
        anchors: (t.trusted_certs ?? []).map(pemCert),
        at: new Date(t.validation_time ?? limboNow),
      });
      const name = t.expected_peer_name;
      const nameOk = name === null || certificateMatchesName(leaf, name.value);
      expect(result.ok && nameOk ? 'SUCCESS' : 'FAILURE').toBe(t.expected_result);
    },
  );

  it.each(runnable.filter((t) => (classify(t.id) as { via: string }).via === 'evaluate').map((t) => [t.id, t] as const))(
    '%s (through evaluate)',
    (_id, t) => {
      const chain = [pemCert(t.peer_certificate as string), ...(t.untrusted_intermediates ?? []).map(pemCert)];
      const anchors = (t.trusted_certs ?? []).map(pemCert);
      const f = evaluateAt(t.validation_time ?? limboNow, chain, anchors, t.expected_peer_name?.value ?? 'example.com');
      expect(t.expected_result).toBe('FAILURE');
      expect(f.outcome).toBe('fail');
      expect(f.details?.problems).toEqual(['weak-key']);
    },
  );
});
