/**
 * How collect checks TLS 1.0/1.1 against real servers: one handshake offering TLS 1.0–1.1 for a
 * modern server, pinned handshakes for an old one, and — within one process — a verdict reused
 * for `legacyProtocolCheckHours` unless the server presents another chain, re-checked when due.
 *
 * The endpoint is a TCP front whose backend the test switches between runs, so "the same
 * endpoint" can change its behaviour the way a reconfigured server does. `now` is handed to
 * collect, as the runner does, so time passes without waiting.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { constants } from 'node:crypto';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createCertificate, createTestPki, pemChain, writeCaFile } from '../../test/helpers/tls-certs.js';
import { startTlsPeer, type TlsPeer } from '../../test/helpers/tls-peer.js';
import type { Finding } from '../../src/probe/contract.js';
import type { EndpointObservation } from './observation.js';
import { maxConcurrentEndpoints, probe, type Params } from './probe.js';

const log = pino({ level: 'silent' });
const HOUR = 3_600_000;
const weakServer = 'DEFAULT:@SECLEVEL=0';
const pki = createTestPki({ hostnames: ['vigil.test'] });
const defaults = probe.params.parse({});
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** A TCP front on a fixed port, forwarding each new connection to whichever backend port is current. */
async function front(): Promise<{ port: number; backend: number; connections: number }> {
  const state = { port: 0, backend: 0, connections: 0 };
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    state.connections++;
    sockets.add(client);
    client.on('error', () => undefined);
    client.pause();
    const upstream = connect(state.backend, '127.0.0.1', () => {
      client.pipe(upstream).pipe(client);
      client.resume();
    });
    sockets.add(upstream);
    upstream.on('error', () => client.destroy());
    client.once('close', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('no port');
  state.port = addr.port;
  return state;
}

async function peer(options: Parameters<typeof startTlsPeer>[0]): Promise<TlsPeer> {
  const p = await startTlsPeer(options);
  closers.push(() => p.close());
  return p;
}

const legacyServer = (): Promise<TlsPeer> => peer({ cert: pki.chainPem, key: pki.keyPem, minVersion: 'TLSv1', ciphers: weakServer });
const modernServer = (): Promise<TlsPeer> => peer({ cert: pki.chainPem, key: pki.keyPem });

async function collectAt(port: number, now: Date, params: Partial<Params> = {}): Promise<{ ep: EndpointObservation; finding: Finding }> {
  const caFile = await writeCaFile([pki.root]);
  const all = { ...defaults, ...params };
  const observation = await probe.collect({
    target: { name: 't', spec: { endpoints: [{ host: '127.0.0.1', port, servername: 'vigil.test', name: `127.0.0.1:${port}` }], caFile } },
    params: all,
    signal: new AbortController().signal,
    log,
    now,
  });
  return { ep: observation.endpoints[0] as EndpointObservation, finding: probe.evaluate(observation, all, now)[0] as Finding };
}

describe('legacy-protocol checks', () => {
  it('a modern server needs one legacy handshake, offering TLS 1.0–1.1, to be judged on both', async () => {
    const f = await front();
    f.backend = (await modernServer()).port;
    const { ep, finding } = await collectAt(f.port, new Date());
    expect(finding.outcome).toBe('pass');
    expect(ep).toMatchObject({ acceptsTls10: false, acceptsTls11: false });
    expect(f.connections).toBe(2); // main, then the TLS 1.0–1.1 offer
  });

  it('a TLS 1.3 server that skips TLS 1.1 but accepts 1.0 is found accepting 1.0 (its downgraded answer is not read as a refusal)', async () => {
    const server = createTlsServer({
      cert: pki.chainPem,
      key: pki.keyPem,
      minVersion: 'TLSv1',
      ciphers: weakServer,
      secureOptions: constants.SSL_OP_NO_TLSv1_1,
    });
    server.on('secureConnection', (s: TLSSocket) => s.end());
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server.address() as { port: number }).port;
    const { ep, finding } = await collectAt(port, new Date());
    expect(ep).toMatchObject({ protocol: 'TLSv1.3', acceptsTls10: true, acceptsTls11: false });
    expect(finding.outcome).toBe('fail');
    expect(finding.message).toContain('accepts TLS 1.0: disable TLS 1.0 and 1.1 on the server');
  });

  it('a server whose best is TLS 1.0 gets a handshake pinned to each legacy version', async () => {
    const old = await peer({ cert: pki.chainPem, key: pki.keyPem, minVersion: 'TLSv1', maxVersion: 'TLSv1', ciphers: weakServer });
    const { ep } = await collectAt(old.port, new Date());
    expect(ep).toMatchObject({ protocol: 'TLSv1', acceptsTls10: true, acceptsTls11: false });
    expect(old.handshakes).toBe(2); // main and pinned TLS 1.0; the pinned TLS 1.1 one was refused
  });
});

describe('legacy checks beside the main handshakes', () => {
  /** The legacy_version of a ClientHello in the first bytes of a connection (0x0301 = TLS 1.0, 0x0302 = 1.1). */
  const helloVersion = (chunk: Buffer): number | undefined =>
    chunk.length >= 11 && chunk[0] === 0x16 && chunk[5] === 0x01 ? chunk.readUInt16BE(9) : undefined;

  it('a slow legacy check does not hold a main-handshake slot: every main handshake completes while they all wait', async () => {
    const backend = await modernServer();
    const held: Array<() => void> = [];
    const gate = createServer((client) => {
      client.on('error', () => undefined);
      client.once('data', (first: Buffer) => {
        const forward = (): void => {
          const upstream = connect(backend.port, '127.0.0.1', () => {
            upstream.write(first);
            client.pipe(upstream).pipe(client);
          });
          upstream.on('error', () => client.destroy());
          client.once('close', () => upstream.destroy());
        };
        const version = helloVersion(first);
        if (version === 0x0301 || version === 0x0302) held.push(forward); // answered only once released
        else forward();
      });
    });
    await new Promise<void>((resolve) => gate.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise<void>((resolve) => gate.close(() => resolve())));
    const port = (gate.address() as { port: number }).port;
    const count = maxConcurrentEndpoints + 8;
    const endpoints = Array.from({ length: count }, (_, i) => ({ host: '127.0.0.1', port, servername: `e${i}.vigil.test`, name: `e${i}` }));
    const caFile = await writeCaFile([pki.root]);
    const run = probe.collect({
      target: { name: 't', spec: { endpoints, caFile } },
      params: defaults,
      signal: new AbortController().signal,
      log,
      now: new Date(),
    });
    try {
      // Sequential checks in one slot would stall at maxConcurrentEndpoints main handshakes here.
      await expect.poll(() => backend.handshakes, { timeout: 5_000 }).toBe(count);
      expect(held.length).toBeGreaterThan(0);
    } finally {
      const release = (): void => {
        for (const forward of held.splice(0)) forward();
      };
      release();
      const timer = setInterval(release, 10); // legacy checks still queued for a slot arrive later
      await run.finally(() => clearInterval(timer));
    }
    const observation = await run;
    expect(observation.endpoints.map((e) => [e.acceptsTls10, e.acceptsTls11])).toEqual(endpoints.map(() => [false, false]));
  });
});

describe('legacy-protocol verdicts reused within legacyProtocolCheckHours', () => {
  const t0 = new Date(); // the test certificates are valid from now on
  const after = (hours: number): Date => new Date(t0.getTime() + hours * HOUR);

  it('reuses the verdict (with its time) within the window, and checks again once it is due', async () => {
    const f = await front();
    f.backend = (await legacyServer()).port;
    const first = await collectAt(f.port, t0);
    expect(first.ep).toMatchObject({ acceptsTls10: true, acceptsTls11: true, legacyObservedAt: t0.toISOString() });
    expect(first.finding.outcome).toBe('fail');

    // The server drops TLS 1.0/1.1 without touching its certificate.
    const modern = await modernServer();
    f.backend = modern.port;
    const before = f.connections;
    const reused = await collectAt(f.port, after(23));
    expect(f.connections - before).toBe(1); // the main handshake only
    expect(reused.ep).toMatchObject({ acceptsTls10: true, acceptsTls11: true, legacyObservedAt: t0.toISOString() });
    expect(reused.finding.details).toMatchObject({ legacyCheckedAt: t0.toISOString() });
    expect(reused.finding.outcome).toBe('fail');

    const due = await collectAt(f.port, after(24));
    expect(due.ep).toMatchObject({ acceptsTls10: false, acceptsTls11: false, legacyObservedAt: after(24).toISOString() });
    expect(due.finding.outcome).toBe('pass');
  });

  it('checks again at once when the endpoint presents another certificate', async () => {
    const f = await front();
    f.backend = (await legacyServer()).port;
    expect((await collectAt(f.port, t0)).ep).toMatchObject({ acceptsTls10: true });

    // Reissued certificate (another fingerprint), and TLS 1.0/1.1 off: a reconfigured server.
    const reissued = createCertificate({ commonName: 'vigil.test', keySlot: 'leaf', issuer: pki.intermediate, altNames: ['vigil.test'] });
    f.backend = (await peer({ cert: pemChain(reissued, pki.intermediate), key: reissued.keyPem })).port;
    const next = await collectAt(f.port, after(1));
    expect(next.ep).toMatchObject({ acceptsTls10: false, acceptsTls11: false, legacyObservedAt: after(1).toISOString() });
    expect(next.finding.outcome).toBe('pass');
  });

  it('legacyProtocolCheckHours: 0 checks at every run', async () => {
    const f = await front();
    f.backend = (await legacyServer()).port;
    expect((await collectAt(f.port, t0, { legacyProtocolCheckHours: 0 })).ep).toMatchObject({ acceptsTls10: true });
    f.backend = (await modernServer()).port;
    const next = await collectAt(f.port, after(0.01), { legacyProtocolCheckHours: 0 });
    expect(next.ep).toMatchObject({ acceptsTls10: false, acceptsTls11: false });
  });

  it('"could not tell" is not remembered: the next run asks again', async () => {
    // The first legacy attempt is cut, and so is the control handshake: unknown.
    const f = await front();
    const modern = await modernServer();
    let cutting = true;
    const gate = createServer((client) => {
      client.on('error', () => undefined);
      if (cutting && gateConnections++ > 0) {
        client.resetAndDestroy();
        return;
      }
      const upstream = connect(modern.port, '127.0.0.1', () => client.pipe(upstream).pipe(client));
      upstream.on('error', () => client.destroy());
      client.once('close', () => upstream.destroy());
    });
    let gateConnections = 0;
    await new Promise<void>((resolve) => gate.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise<void>((resolve) => gate.close(() => resolve())));
    f.backend = (gate.address() as { port: number }).port;
    const first = await collectAt(f.port, t0);
    expect(first.ep).toMatchObject({ acceptsTls10: null, acceptsTls11: null });
    expect(first.finding.outcome).toBe('unknown');

    cutting = false;
    const next = await collectAt(f.port, after(1));
    expect(next.ep).toMatchObject({ acceptsTls10: false, acceptsTls11: false });
    expect(next.finding.outcome).toBe('pass');
  });
});
