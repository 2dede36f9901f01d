/**
 * evaluate remembers parsed certificates and chain verdicts per process (chain.ts). These tests
 * evaluate one endpoint again and again in the same process, changing one thing each time, and
 * show that the verdict follows the change: a cached verdict is never a stale one. They also
 * cover how evaluate judges the age of a TLS 1.0/1.1 verdict that collect reused.
 */
import { describe, expect, it } from 'vitest';
import type { Finding } from '../../src/probe/contract.js';
import { createCertificate, createTestPki, type TestCertificate } from '../../test/helpers/tls-certs.js';
import { legacyStaleGraceMs } from './assess.js';
import { LruMap } from './chain.js';
import type { EndpointObservation } from './observation.js';
import { probe, type Params } from './probe.js';

const NOW = new Date('2026-11-22T12:00:00Z');
const DAY = 86_400_000;
const HOUR = 3_600_000;
const at = (days: number): Date => new Date(NOW.getTime() + days * DAY);
const defaults = probe.params.parse({});
const pki = createTestPki({ now: NOW, hostnames: ['vigil.test'] });
const otherRoot = createCertificate({ commonName: 'Unknown Root CA', keySlot: 'other-root', ca: true, notBefore: at(-100), notAfter: at(3000) });
const otherIntermediate = createCertificate({ commonName: 'Unknown Intermediate CA', keySlot: 'other-intermediate', ca: true, issuer: otherRoot, notBefore: at(-100), notAfter: at(1000) });
const leafUnder = (issuer: TestCertificate, notAfter = at(80)): TestCertificate =>
  createCertificate({ commonName: 'vigil.test', keySlot: 'leaf', issuer, altNames: ['vigil.test'], notBefore: at(-10), notAfter });

function endpoint(chain: TestCertificate[], anchors: TestCertificate[], over: Partial<EndpointObservation> = {}): EndpointObservation {
  return {
    endpoint: 'vigil.test:443',
    host: 'vigil.test',
    port: 443,
    sni: 'vigil.test',
    expectedName: 'vigil.test',
    protocol: 'TLSv1.3',
    peerChain: chain.map((c) => c.der.toString('base64')),
    anchors: anchors.map((c) => c.der.toString('base64')),
    tlsAuthorized: true,
    acceptsTls10: false,
    acceptsTls11: false,
    ...over,
  };
}

function judge(ep: EndpointObservation, now = NOW, params: Partial<Params> = {}): Finding {
  return probe.evaluate({ endpoints: [ep] }, { ...defaults, ...params }, now)[0] as Finding;
}

describe('cached chain verdicts follow the certificates', () => {
  it('a replaced certificate (another fingerprint) is judged anew, and the old one again as before', () => {
    const trusted = endpoint([pki.leaf, pki.intermediate], [pki.root]);
    expect(judge(trusted).outcome).toBe('pass');
    expect(judge(trusted).outcome).toBe('pass'); // from the cache

    // Same endpoint, same names and dates: only the issuer (and so the fingerprint) differs.
    const untrusted = endpoint([leafUnder(otherIntermediate), otherIntermediate], [pki.root]);
    const finding = judge(untrusted);
    expect(finding.outcome).toBe('fail');
    expect(finding.details).toMatchObject({ verified: false, verifyCode: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' });

    expect(judge(trusted).outcome).toBe('pass');
  });

  it('the same chain under another trust store (the root left the caFile) is no longer trusted', () => {
    const chain = [pki.leaf, pki.intermediate];
    expect(judge(endpoint(chain, [pki.root])).outcome).toBe('pass');
    const finding = judge(endpoint(chain, []));
    expect(finding.outcome).toBe('fail');
    expect(finding.details).toMatchObject({ verified: false, verifyCode: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' });
  });

  it('the same chain judged after its intermediate expired fails, though it passed before', () => {
    const shortIntermediate = createCertificate({ commonName: 'Short Intermediate CA', keySlot: 'intermediate', ca: true, issuer: pki.root, notBefore: at(-100), notAfter: at(40) });
    const ep = endpoint([leafUnder(shortIntermediate, at(200)), shortIntermediate], [pki.root]);
    expect(judge(ep, NOW).outcome).toBe('pass');
    const later = judge(ep, at(41));
    expect(later.outcome).toBe('fail');
    expect(later.details).toMatchObject({ verified: false, verifyCode: 'CERT_HAS_EXPIRED', chainNotAfterSubject: 'Short Intermediate CA' });
    expect(judge(ep, NOW).outcome).toBe('pass');
  });

  it('an endpoint that sends its intermediate no more is judged incomplete, though the leaf is the same', () => {
    expect(judge(endpoint([pki.leaf, pki.intermediate], [pki.root])).outcome).toBe('pass');
    const finding = judge(endpoint([pki.leaf], [pki.root]));
    expect(finding.outcome).toBe('fail');
    expect(finding.details).toMatchObject({ verifyCode: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
  });
});

describe('the age of a reused TLS 1.0/1.1 verdict', () => {
  const chain = [pki.leaf, pki.intermediate];
  const observedHoursAgo = (hours: number, over: Partial<EndpointObservation> = {}): EndpointObservation =>
    endpoint(chain, [pki.root], { legacyObservedAt: new Date(NOW.getTime() - hours * HOUR).toISOString(), ...over });

  it('a verdict within legacyProtocolCheckHours counts, and says when it was taken', () => {
    const finding = judge(observedHoursAgo(20));
    expect(finding.outcome).toBe('pass');
    expect(finding.details).toMatchObject({ acceptsTls10: false, acceptsTls11: false, legacyCheckedAt: new Date(NOW.getTime() - 20 * HOUR).toISOString() });
  });

  it('a verdict older than legacyProtocolCheckHours (plus the grace of one run) is unknown, never pass', () => {
    const hours = 24 + legacyStaleGraceMs / HOUR + 1;
    const finding = judge(observedHoursAgo(hours));
    expect(finding.outcome).toBe('unknown');
    const checked = new Date(NOW.getTime() - hours * HOUR).toISOString();
    expect(finding.message).toContain(`could not tell whether it accepts TLS 1.0 (last checked ${checked}, longer ago than legacyProtocolCheckHours (24 h) allows)`);
    expect(finding.details).toMatchObject({ acceptsTls10: null, acceptsTls11: null });
  });

  it('an old "accepts TLS 1.0" is unknown too: it may have been fixed since', () => {
    expect(judge(observedHoursAgo(30, { acceptsTls10: true, acceptsTls11: true })).outcome).toBe('unknown');
    expect(judge(observedHoursAgo(2, { acceptsTls10: true, acceptsTls11: true })).outcome).toBe('fail');
  });

  it('a shorter legacyProtocolCheckHours makes the same verdict stale sooner', () => {
    expect(judge(observedHoursAgo(3), NOW, { legacyProtocolCheckHours: 24 }).outcome).toBe('pass');
    expect(judge(observedHoursAgo(3), NOW, { legacyProtocolCheckHours: 1 }).outcome).toBe('unknown');
  });

  it('an unreadable time is unknown (a hostile stored observation changes nothing to green)', () => {
    const finding = judge(endpoint(chain, [pki.root], { legacyObservedAt: 'yesterday-ish' }));
    expect(finding.outcome).toBe('unknown');
    expect(finding.message).toContain('could not tell whether it accepts TLS 1.0 (the time of the last check cannot be read)');
  });

  it('an observation written before legacyObservedAt existed is judged as it always was', () => {
    expect(judge(endpoint(chain, [pki.root])).outcome).toBe('pass');
  });
});

describe('the caches stay within their budget', () => {
  it('forgets the least recently used entry first, by count and by weight, and never keeps an oversized one', () => {
    const lru = new LruMap<string>(3, 10, (_key, value) => value.length);
    lru.set('a', 'aaa');
    lru.set('b', 'bbb');
    lru.set('c', 'ccc');
    expect(lru.get('a')).toBe('aaa'); // a is now the most recent
    lru.set('d', 'd'); // 4 entries: b, the least recent, goes
    expect([lru.get('a'), lru.get('b'), lru.get('c'), lru.get('d')]).toEqual(['aaa', undefined, 'ccc', 'd']);
    lru.set('e', 'eeeeeee'); // weight 3 + 3 + 1 + 7 = 14 > 10: a, then c go (the least recent), leaving 8
    expect([lru.get('a'), lru.get('c'), lru.get('d'), lru.get('e')]).toEqual([undefined, undefined, 'd', 'eeeeeee']);
    lru.set('huge', 'x'.repeat(11)); // heavier than the whole budget: not kept, nothing evicted for it
    expect([lru.get('huge'), lru.get('d'), lru.get('e')]).toEqual([undefined, 'd', 'eeeeeee']);
  });
});
