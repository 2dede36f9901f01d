/**
 * The observation promises the chain "as Node's getPeerCertificate(true) links it". collect takes
 * that object from Node's own identity check when the chain verified (handshake.ts: Node builds it
 * to call checkServerIdentity; building it twice cost a quarter of a millisecond per endpoint), and
 * asks for it when the chain did not verify. These tests hold both paths to Node's linking, against
 * servers sending chains in and out of order, with extras, with and without their root, trusted
 * and not, with a fresh getPeerCertificate(true) as the oracle.
 */
import tls, { type DetailedPeerCertificate } from 'node:tls';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCertificate, createTestPki, pemChain, writeCaFile, type TestCertificate } from '../../test/helpers/tls-certs.js';
import { startTlsPeer, type TlsPeer } from '../../test/helpers/tls-peer.js';
import { createHandshakeContexts, loadTrustStore } from './handshake.js';
import { probe } from './probe.js';

const DAY = 86_400_000;
const now = Date.now();
const pki = createTestPki({ hostnames: ['vigil.test'] });
const otherRoot = createCertificate({ commonName: 'Unknown Root CA', keySlot: 'other-root', ca: true, notBefore: new Date(now - 100 * DAY), notAfter: new Date(now + 3000 * DAY) });
const otherIntermediate = createCertificate({ commonName: 'Unknown Intermediate CA', keySlot: 'other-intermediate', ca: true, issuer: otherRoot });
const otherLeaf = createCertificate({ commonName: 'vigil.test', keySlot: 'leaf', issuer: otherIntermediate, altNames: ['vigil.test'] });
const selfSigned = createCertificate({ commonName: 'vigil.test', keySlot: 'leaf', altNames: ['vigil.test'] });

const chains: Array<[string, TestCertificate[]]> = [
  ['leaf and intermediate (the root comes from the trust store)', [pki.leaf, pki.intermediate]],
  ['leaf, intermediate and root', [pki.leaf, pki.intermediate, pki.root]],
  ['out of order: leaf, root, intermediate', [pki.leaf, pki.root, pki.intermediate]],
  ['with an unrelated extra certificate', [pki.leaf, otherIntermediate, pki.intermediate]],
  ['leaf only (intermediate missing)', [pki.leaf]],
  ['self-signed leaf', [selfSigned]],
  ['under an untrusted root, sent', [otherLeaf, otherIntermediate, otherRoot]],
];

/** What Node's getPeerCertificate(true) links, through the probe's own secure context. */
async function nodeLinkedChain(port: number, context: tls.SecureContext): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'vigil.test', secureContext: context, rejectUnauthorized: false }, () => {
      const out: string[] = [];
      const seen = new Set<string>();
      let cert: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
      while (cert?.raw && !seen.has(cert.fingerprint256)) {
        seen.add(cert.fingerprint256);
        out.push(cert.raw.toString('base64'));
        cert = cert.issuerCertificate;
      }
      socket.destroy();
      resolve(out);
    });
    socket.on('error', reject);
  });
}

describe('the chain in the observation is the chain Node links', () => {
  const peers: TlsPeer[] = [];
  let caFile = '';

  beforeAll(async () => {
    caFile = await writeCaFile([pki.root]);
    for (const [, chain] of chains) peers.push(await startTlsPeer({ cert: pemChain(...chain), key: (chain[0] as TestCertificate).keyPem }));
  });
  afterAll(async () => {
    await Promise.all(peers.map((p) => p.close()));
  });

  it.each(chains.map(([name], i) => [name, i] as const))('%s', async (_name, i) => {
    const port = (peers[i] as TlsPeer).port;
    const store = await loadTrustStore(caFile);
    const expected = await nodeLinkedChain(port, createHandshakeContexts(store).main);
    const observation = await probe.collect({
      target: { name: 't', spec: { endpoints: [{ host: '127.0.0.1', port, servername: 'vigil.test', name: `127.0.0.1:${port}` }], caFile } },
      params: probe.params.parse({}),
      signal: new AbortController().signal,
      log: pino({ level: 'silent' }),
      now: new Date(),
    });
    expect(observation.endpoints[0]?.peerChain).toEqual(expected);
    expect(expected.length).toBeGreaterThan(0);
  });
});
