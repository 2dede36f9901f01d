/**
 * collect → evaluate against real TLS servers on loopback (node:tls, port 0), each serving a
 * certificate chain generated for the case. The test root is trusted through the target's caFile,
 * as a user would for an internal CA.
 */
import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Finding } from '../../src/probe/contract.js';
import { createCertificate, createTestPki, pemChain, writeCaFile, type TestCertificate } from '../../test/helpers/tls-certs.js';
import { closedPort, startSilentPeer, startTlsPeer, startValidTlsPeer, type TlsPeer, type TlsPeerOptions } from '../../test/helpers/tls-peer.js';
import type { TlsObservation } from './observation.js';
import { maxConcurrentEndpoints, probe, type Params, type TlsTargetSpec } from './probe.js';

const DAY = 86_400_000;
const log = pino({ level: 'silent' });
const defaults = probe.params.parse({});
const weakServer = 'DEFAULT:@SECLEVEL=0'; // lets OpenSSL 3 serve RSA-1024/SHA-1 and speak TLS 1.0

function collect(spec: TlsTargetSpec, params: Partial<Params> = {}, signal = new AbortController().signal): Promise<TlsObservation> {
  return probe.collect({ target: { name: 'test', spec }, params: { ...defaults, ...params }, signal, log, now: new Date() });
}

interface ServerCase {
  name: string;
  /** The chain and server settings. */
  server: () => Omit<TlsPeerOptions, 'host'>;
  /** Configured servername; undefined → the endpoint is the bare IP literal. */
  servername?: string;
  outcome: Finding['outcome'];
  /** Fragments of the message after "127.0.0.1:PORT: ". */
  says: string[];
  details?: Record<string, unknown>;
}

describe('collect → evaluate against real TLS servers', () => {
  const now = Date.now();
  const pki = createTestPki({ hostnames: ['vigil.test', '127.0.0.1'] });
  const leaf = (spec: Partial<Parameters<typeof createCertificate>[0]> = {}): TestCertificate =>
    createCertificate({ commonName: 'vigil.test', keySlot: 'leaf', issuer: pki.intermediate, altNames: ['vigil.test', '127.0.0.1'], notBefore: new Date(now - DAY), notAfter: new Date(now + 90 * DAY), ...spec });
  const serve = (chain: TestCertificate[], extra: Omit<TlsPeerOptions, 'cert' | 'key' | 'host'> = {}): Omit<TlsPeerOptions, 'host'> => ({
    cert: pemChain(...chain),
    key: (chain[0] as TestCertificate).keyPem,
    ...extra,
  });
  const expiredIntermediate = createCertificate({ commonName: 'Expired Intermediate CA', keySlot: 'intermediate', ca: true, issuer: pki.root, notBefore: new Date(now - 400 * DAY), notAfter: new Date(now - 2 * DAY) });
  const otherRoot = createCertificate({ commonName: 'Unknown Root CA', keySlot: 'other-root', ca: true, notBefore: new Date(now - 100 * DAY), notAfter: new Date(now + 3000 * DAY) });
  const otherIntermediate = createCertificate({ commonName: 'Unknown Intermediate CA', keySlot: 'other-intermediate', ca: true, issuer: otherRoot });

  const cases: ServerCase[] = [
    {
      name: 'valid chain, endpoint given as an IP literal (checked against the IP SAN, no SNI)',
      server: () => serve([pki.leaf, pki.intermediate]),
      outcome: 'pass',
      says: ['certificate for 127.0.0.1 valid until', 'chain trusted, TLSv1.3, RSA 2048'],
      details: { verified: true, hostnameOk: true, protocol: 'TLSv1.3', acceptsTls10: false, acceptsTls11: false, tlsAuthorizationError: undefined, chainSource: 'verified' },
    },
    {
      name: 'valid chain with a servername (sent as SNI)',
      server: () => serve([pki.leaf, pki.intermediate]),
      servername: 'vigil.test',
      outcome: 'pass',
      says: ['certificate for vigil.test valid until'],
      details: { sni: 'vigil.test', verified: true },
    },
    {
      name: 'TLS 1.2-only server passes and reports TLSv1.2',
      server: () => serve([pki.leaf, pki.intermediate], { maxVersion: 'TLSv1.2' }),
      servername: 'vigil.test',
      outcome: 'pass',
      says: ['TLSv1.2'],
      details: { protocol: 'TLSv1.2' },
    },
    {
      name: 'expired leaf',
      server: () => serve([leaf({ notBefore: new Date(now - 100 * DAY), notAfter: new Date(now - 3 * DAY - 3_600_000) }), pki.intermediate]),
      servername: 'vigil.test',
      outcome: 'fail',
      says: [`certificate expired on ${new Date(now - 3 * DAY - 3_600_000).toISOString().slice(0, 10)} (3 days ago): renew it`],
      details: { verified: false, verifyCode: 'CERT_HAS_EXPIRED', tlsAuthorizationError: 'CERT_HAS_EXPIRED' },
    },
    {
      name: 'expired intermediate',
      server: () => serve([leaf({ issuer: expiredIntermediate }), expiredIntermediate]),
      servername: 'vigil.test',
      outcome: 'fail',
      says: ['intermediate certificate "Expired Intermediate CA" expired on', 'install the intermediate your CA issues today'],
      details: { verified: false, chainNotAfterSubject: 'Expired Intermediate CA' },
    },
    {
      name: 'leaf expiring inside minDaysValid',
      server: () => serve([leaf({ notAfter: new Date(now + 5 * DAY + 3_600_000) }), pki.intermediate]),
      servername: 'vigil.test',
      outcome: 'fail',
      says: [`certificate expires in 5 days (${new Date(now + 5 * DAY + 3_600_000).toISOString().slice(0, 10)}), under the 21-day minimum: renew it`],
      details: { verified: true, daysLeft: 5 },
    },
    {
      name: 'hostname mismatch',
      server: () => serve([pki.leaf, pki.intermediate]),
      servername: 'wrong.test',
      outcome: 'fail',
      says: ['certificate is not valid for "wrong.test" (it names vigil.test, 127.0.0.1)'],
      details: { hostnameOk: false, verified: true, sni: 'wrong.test' },
    },
    {
      name: 'self-signed certificate',
      server: () => serve([createCertificate({ commonName: 'vigil.test', keySlot: 'leaf', altNames: ['vigil.test'] })]),
      servername: 'vigil.test',
      outcome: 'fail',
      says: ['certificate is self-signed: replace it with one issued by a trusted CA'],
      details: { verified: false, verifyCode: 'DEPTH_ZERO_SELF_SIGNED_CERT', tlsAuthorizationError: 'DEPTH_ZERO_SELF_SIGNED_CERT' },
    },
    {
      name: 'incomplete chain: the server omits its intermediate',
      server: () => serve([pki.leaf]),
      servername: 'vigil.test',
      outcome: 'fail',
      says: ['server does not send its intermediate certificate (issuer "vigil Test Intermediate CA" is neither sent nor trusted): configure the full chain'],
      details: { verified: false, verifyCode: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', tlsAuthorizationError: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' },
    },
    {
      name: 'untrusted root, sent by the server',
      server: () => serve([leaf({ issuer: otherIntermediate }), otherIntermediate, otherRoot]),
      servername: 'vigil.test',
      outcome: 'fail',
      says: ['chain ends at root "Unknown Root CA", which is not trusted'],
      details: { verified: false, verifyCode: 'SELF_SIGNED_CERT_IN_CHAIN', tlsAuthorizationError: 'SELF_SIGNED_CERT_IN_CHAIN' },
    },
    {
      name: 'untrusted root, not in the caFile nor sent',
      server: () => serve([leaf({ issuer: otherIntermediate }), otherIntermediate]),
      servername: 'vigil.test',
      outcome: 'fail',
      says: ['chain does not lead to a trusted root ("Unknown Root CA", issuer of "Unknown Intermediate CA", is neither sent nor trusted)'],
      details: { verified: false, verifyCode: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' },
    },
    {
      name: 'RSA-1024 leaf',
      server: () => serve([leaf({ key: { type: 'rsa', bits: 1024 }, keySlot: 'weak-leaf' }), pki.intermediate], { ciphers: weakServer }),
      servername: 'vigil.test',
      outcome: 'fail',
      says: ['certificate key is RSA 1024, under the 2048-bit minimum'],
      details: { leafKey: 'RSA 1024', verified: true, weak: ['leaf key RSA 1024'] },
    },
    {
      name: 'SHA-1-signed leaf',
      server: () => serve([leaf({ hash: 'sha1' }), pki.intermediate], { ciphers: weakServer }),
      servername: 'vigil.test',
      outcome: 'fail',
      says: ['certificate is signed with SHA-1 (sha1WithRSAEncryption): reissue it with SHA-256'],
      details: { leafSignature: 'sha1WithRSAEncryption', verified: true },
    },
    {
      name: 'server that still accepts TLS 1.0 (and 1.1)',
      server: () => serve([pki.leaf, pki.intermediate], { minVersion: 'TLSv1', ciphers: weakServer }),
      servername: 'vigil.test',
      outcome: 'fail',
      says: ['accepts TLS 1.0 and 1.1: disable TLS 1.0 and 1.1 on the server'],
      details: { acceptsTls10: true, acceptsTls11: true, protocol: 'TLSv1.3', verified: true },
    },
    {
      name: 'server that accepts TLS 1.1 but not 1.0',
      server: () => serve([pki.leaf, pki.intermediate], { minVersion: 'TLSv1.1', ciphers: weakServer }),
      servername: 'vigil.test',
      outcome: 'fail',
      says: ['accepts TLS 1.1: disable TLS 1.0 and 1.1 on the server'],
      details: { acceptsTls10: false, acceptsTls11: true },
    },
  ];

  const peers: TlsPeer[] = [];
  let caFile = '';
  let closed = 0;
  let observation: TlsObservation;
  let findings: Finding[];
  let elapsedMs = 0;

  beforeAll(async () => {
    caFile = await writeCaFile([pki.root]);
    for (const c of cases) peers.push(await startTlsPeer(c.server()));
    closed = await closedPort();
    const endpoints = [
      ...cases.map((c, i) => {
        const port = (peers[i] as TlsPeer).port;
        return { host: '127.0.0.1', port, servername: c.servername, name: `127.0.0.1:${port}` };
      }),
      { host: '127.0.0.1', port: closed, servername: undefined, name: `127.0.0.1:${closed}` },
    ];
    const started = Date.now();
    observation = await collect({ endpoints, caFile });
    elapsedMs = Date.now() - started;
    findings = probe.evaluate(observation, defaults, new Date());
  });

  afterAll(async () => {
    await Promise.all(peers.map((p) => p.close()));
    if (caFile) await rm(dirname(caFile), { recursive: true, force: true });
  });

  it.each(cases.map((c, i) => [c.name, c, i] as const))('%s', (_name, c, i) => {
    const peer = peers[i] as TlsPeer;
    const finding = findings[i] as Finding;
    expect(finding.resource).toBe(`127.0.0.1:${peer.port}`);
    expect(finding.outcome).toBe(c.outcome);
    expect(finding.message.startsWith(`127.0.0.1:${peer.port}: `)).toBe(true);
    for (const fragment of c.says) expect(finding.message).toContain(fragment);
    if (c.details) expect(finding.details).toMatchObject(c.details);
    // The leaf's expiry is reported whatever else went wrong.
    expect(finding.details?.leafNotAfter).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('a closed port is unknown with the reason, never pass', () => {
    const finding = findings[cases.length] as Finding;
    expect(finding).toEqual({
      resource: `127.0.0.1:${closed}`,
      outcome: 'unknown',
      message: `could not connect to 127.0.0.1:${closed}: connection refused`,
      details: { endpoint: `127.0.0.1:${closed}`, expectedName: '127.0.0.1', error: 'connection refused' },
    });
  });

  it('sends SNI for names and none for IP literals (RFC 6066)', () => {
    expect(peers[0]?.servernames).toEqual([false]); // the main handshake; this server refuses TLS 1.0/1.1
    expect(peers[13]?.servernames).toEqual(['vigil.test', 'vigil.test', 'vigil.test']); // main, TLS 1.0, TLS 1.1
    expect(peers[1]?.servernames).toEqual(['vigil.test']);
    expect(peers[6]?.servernames).toEqual(['wrong.test']);
  });

  it('the observation is plain JSON, with the presented chain and the matching trust anchor', () => {
    expect(JSON.parse(JSON.stringify(observation))).toEqual(observation);
    const valid = observation.endpoints[1];
    expect(valid?.peerChain.map((b64) => Buffer.from(b64, 'base64'))).toEqual([pki.leaf.der, pki.intermediate.der, pki.root.der]);
    expect(valid?.anchors).toEqual([pki.root.der.toString('base64')]);
    const incomplete = observation.endpoints[8];
    expect(incomplete?.peerChain).toHaveLength(1);
    expect(incomplete?.anchors).toEqual([]);
  });

  it('checked all endpoints in well under the time budget', () => {
    expect(elapsedMs).toBeLessThan(5_000);
  });
});

describe('collect: limits and failures', () => {
  it('gives up on a silent server after connectTimeoutMs and reports it unknown', async () => {
    const silent = await startSilentPeer();
    try {
      const started = Date.now();
      const observation = await collect(
        { endpoints: [{ host: silent.host, port: silent.port, servername: undefined, name: silent.endpoint }], caFile: undefined },
        { connectTimeoutMs: 300 },
      );
      expect(Date.now() - started).toBeLessThan(2_000);
      const [finding] = probe.evaluate(observation, defaults, new Date());
      expect(finding).toMatchObject({ outcome: 'unknown', message: `could not connect to ${silent.endpoint}: no TLS handshake within 300 ms` });
      await expect.poll(() => silent.connections, { timeout: 1_000 }).toBe(0);
    } finally {
      await silent.close();
    }
  });

  it('stops every handshake and rejects when the signal aborts', async () => {
    const silent = await startSilentPeer();
    try {
      const endpoints = Array.from({ length: 40 }, (_, i) => ({ host: silent.host, port: silent.port, servername: `s${i}.test`, name: `${silent.endpoint}#${i}` }));
      const controller = new AbortController();
      const started = Date.now();
      const run = collect({ endpoints, caFile: undefined }, { connectTimeoutMs: 60_000 }, controller.signal);
      await expect.poll(() => silent.connections, { timeout: 2_000 }).toBe(maxConcurrentEndpoints);
      controller.abort(new Error('shutdown'));
      await expect(run).rejects.toThrow('shutdown');
      expect(Date.now() - started).toBeLessThan(3_000);
      await expect.poll(() => silent.connections, { timeout: 1_000 }).toBe(0);
    } finally {
      await silent.close();
    }
  });

  it('probes many endpoints with bounded concurrency, results in configuration order', async () => {
    const peer = await startValidTlsPeer();
    try {
      const endpoints = Array.from({ length: 60 }, (_, i) => ({ host: '127.0.0.1', port: peer.port, servername: i % 2 ? 'localhost' : 'vigil.test', name: `${peer.endpoint}/${i}` }));
      const observation = await collect({ endpoints, caFile: peer.caFile });
      const findings = probe.evaluate(observation, defaults, new Date());
      expect(findings.map((f) => f.resource)).toEqual(endpoints.map((e) => e.name));
      expect(findings.every((f) => f.outcome === 'pass')).toBe(true);
      // The server counts a TLS 1.3 handshake when our Finished arrives, a moment after our side is done.
      await expect.poll(() => peer.handshakes, { timeout: 2_000 }).toBe(60);
      // Per endpoint in flight: the main handshake, then the legacy-protocol check.
      expect(peer.peakConnections).toBeLessThanOrEqual(3 * maxConcurrentEndpoints);
    } finally {
      await peer.close();
    }
  });

  it('fails the run with a fix when the caFile cannot be read', async () => {
    await expect(
      collect({ endpoints: [{ host: '127.0.0.1', port: 1, servername: undefined, name: '127.0.0.1:1' }], caFile: '/nonexistent/ca.pem' }),
    ).rejects.toThrow('could not read caFile /nonexistent/ca.pem (ENOENT): fix the path in tls[].caFile');
  });

  it('without the caFile, the test root is not trusted (system roots only)', async () => {
    const peer = await startValidTlsPeer();
    try {
      const observation = await collect({ endpoints: [{ host: '127.0.0.1', port: peer.port, servername: 'localhost', name: peer.endpoint }], caFile: undefined });
      const [finding] = probe.evaluate(observation, defaults, new Date());
      expect(finding?.outcome).toBe('fail');
      expect(finding?.details).toMatchObject({ verified: false, verifyCode: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', tlsAuthorizationError: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' });
    } finally {
      await peer.close();
    }
  });
});
