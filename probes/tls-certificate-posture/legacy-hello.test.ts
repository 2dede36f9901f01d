/**
 * The raw TLS 1.0–1.1 ClientHello (legacy-hello.ts) against real servers: Node TLS servers with
 * and without TLS 1.0/1.1, OpenSSL's s_server pinned to TLS 1.0 (security level 0) and to
 * TLS 1.2, a server that resets, a silent one and a closed port. The hello must be the bytes
 * OpenSSL itself sends, and collect's TLS 1.0/1.1 verdicts must be the same with it and without it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect as connectTcp, createServer as createTcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect as connectTls } from 'node:tls';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, writeCaFile } from '../../test/helpers/tls-certs.js';
import { closedPort, startSilentPeer, startTlsPeer, type SilentPeer, type TlsPeer } from '../../test/helpers/tls-peer.js';
import { createHandshakeContexts, legacyHelloOptions, loadTrustStore } from './handshake.js';
import { buildHello, helloTemplate, parseHelloTemplate, sendRawHello, type HelloTemplate } from './legacy-hello.js';
import type { EndpointObservation } from './observation.js';
import { probe } from './probe.js';

const pki = createTestPki({ hostnames: ['vigil.test'] });
const weak = 'DEFAULT:@SECLEVEL=0';
const dir = mkdtempSync(path.join(tmpdir(), 'vigil-legacy-hello-'));
const certFile = path.join(dir, 'chain.pem');
const keyFile = path.join(dir, 'key.pem');
writeFileSync(certFile, pki.chainPem);
writeFileSync(keyFile, pki.keyPem, { mode: 0o600 });

let template: HelloTemplate;
const servers: Record<string, { port: number; close: () => Promise<void> }> = {};
let silent: SilentPeer;
let closed: number;
let caFile: string;

/** OpenSSL's own server, pinned to one protocol version. */
async function startOpenSsl(version: '-tls1' | '-tls1_2'): Promise<{ port: number; close: () => Promise<void> }> {
  const port = await closedPort();
  const child: ChildProcess = spawn('openssl', ['s_server', '-accept', String(port), '-cert', certFile, '-key', keyFile, version, '-cipher', weak, '-quiet'], {
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  for (let i = 0; ; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = connectTcp({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (up) break;
    if (i > 100 || child.exitCode !== null) throw new Error(`openssl s_server ${version} did not start`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** A TCP server that resets every connection as soon as the client speaks (as IIS does to TLS 1.0). */
async function startResetter(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createTcpServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.once('data', () => s.resetAndDestroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

const tlsPeer = async (options: Partial<Parameters<typeof startTlsPeer>[0]>): Promise<{ port: number; close: () => Promise<void> }> => {
  const p: TlsPeer = await startTlsPeer({ cert: pki.chainPem, key: pki.keyPem, ...options });
  return { port: p.port, close: () => p.close() };
};

beforeAll(async () => {
  const store = await loadTrustStore(undefined);
  template = (await helloTemplate(createHandshakeContexts(store).legacy)) as HelloTemplate;
  caFile = await writeCaFile([pki.root]);
  [servers.modern, servers.tls10to13, servers.tls10only, servers.tls11only, servers.opensslTls1, servers.opensslTls12, servers.resetter] = await Promise.all([
    tlsPeer({}),
    tlsPeer({ minVersion: 'TLSv1', ciphers: weak }),
    tlsPeer({ minVersion: 'TLSv1', maxVersion: 'TLSv1', ciphers: weak }),
    tlsPeer({ minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: weak }),
    startOpenSsl('-tls1'),
    startOpenSsl('-tls1_2'),
    startResetter(),
  ]);
  silent = await startSilentPeer();
  closed = await closedPort();
}, 30_000);

afterAll(async () => {
  await Promise.all([...Object.values(servers).map((s) => s.close()), silent.close()]);
});

/** The first TLS record a real Node client with the legacy context writes, read off the wire. */
async function helloOnTheWire(servername: string | undefined): Promise<Buffer> {
  const store = await loadTrustStore(undefined);
  const context = createHandshakeContexts(store).legacy;
  return new Promise((resolve, reject) => {
    const server = createTcpServer((s) => {
      let got = Buffer.alloc(0);
      s.on('data', (chunk: Buffer) => {
        got = Buffer.concat([got, chunk]);
        if (got.length >= 5 && got.length >= 5 + got.readUInt16BE(3)) {
          s.destroy();
          server.close();
          resolve(got.subarray(0, 5 + got.readUInt16BE(3)));
        }
      });
    });
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      const client = connectTls({ host: '127.0.0.1', port, secureContext: context, rejectUnauthorized: false, ...(servername ? { servername } : {}) });
      client.on('error', () => undefined);
    });
    server.on('error', reject);
  });
}

const withoutRandom = (record: Buffer): string => {
  const copy = Buffer.from(record);
  copy.fill(0, 11, 43);
  return copy.toString('hex');
};

describe('the raw TLS 1.0–1.1 ClientHello', () => {
  it('is byte for byte what OpenSSL sends, but for the client random (with SNI, and without for IP literals)', async () => {
    for (const sni of ['vigil.test', 'a-much-longer-name.example.internal', undefined]) {
      const wire = await helloOnTheWire(sni);
      const built = buildHello(template, sni) as Buffer;
      expect(withoutRandom(built)).toBe(withoutRandom(wire));
      expect(wire.readUInt16BE(9)).toBe(0x0302); // offers at most TLS 1.1
    }
  });

  it('gets a fresh client random every time', () => {
    const a = buildHello(template, 'vigil.test') as Buffer;
    const b = buildHello(template, 'vigil.test') as Buffer;
    expect(withoutRandom(a)).toBe(withoutRandom(b));
    expect(a.subarray(11, 43).equals(b.subarray(11, 43))).toBe(false);
  });

  it('leaves a name OpenSSL would not send (over 255 bytes) to the full handshake', () => {
    expect(buildHello(template, `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}.test`)).toBeUndefined();
    expect(buildHello(template, 'a'.repeat(255))).toBeDefined();
  });

  it('refuses to make a template of bytes that are not one ClientHello record', () => {
    const good = buildHello(template, 'vigil.test') as Buffer;
    expect(parseHelloTemplate(good)).toBeDefined();
    expect(parseHelloTemplate(good.subarray(0, good.length - 1))).toBeUndefined();
    expect(parseHelloTemplate(Buffer.from('GET / HTTP/1.1\r\n\r\n'))).toBeUndefined();
    const wrongType = Buffer.from(good);
    wrongType[5] = 2;
    expect(parseHelloTemplate(wrongType)).toBeUndefined();
  });

  const raw = (port: number, timeoutMs = 5_000) =>
    sendRawHello({ host: '127.0.0.1', port, hello: buildHello(template, 'vigil.test') as Buffer, timeoutMs, register: () => undefined, unregister: () => undefined });

  it.each([
    ['a Node server with TLS 1.2–1.3 only', 'modern'],
    ['OpenSSL s_server pinned to TLS 1.2', 'opensslTls12'],
  ])('%s answers with a fatal alert: decided, refused', async (_name, key) => {
    const answer = await raw(servers[key]!.port);
    expect(answer).toMatchObject({ decided: true, stage: 'handshake', alert: true, peerAlert: true });
    expect(answer.reason).toMatch(/^TLS handshake failed: tlsv1 alert (protocol version|handshake failure)$/);
  });

  it.each([
    ['a Node server with TLS 1.0–1.3', 'tls10to13', 0x0302],
    ['a Node server with TLS 1.0 only', 'tls10only', 0x0301],
    ['a Node server with TLS 1.1 only', 'tls11only', 0x0302],
    ['OpenSSL s_server pinned to TLS 1.0 (security level 0)', 'opensslTls1', 0x0301],
  ])('%s answers with a ServerHello: undecided (the full handshake judges it), with the version it chose', async (_name, key, serverVersion) => {
    expect(await raw(servers[key]!.port)).toEqual({ decided: false, reason: 'the server answered with a handshake record', serverVersion });
  });

  it('a reset is reported as the TLS socket would report it', async () => {
    expect(await raw(servers.resetter!.port)).toEqual({ decided: true, stage: 'handshake', reason: 'connection reset by the server' });
  });

  it('a silent server times out, a closed port is refused', async () => {
    expect(await raw(silent.port, 300)).toEqual({ decided: true, stage: 'timeout', reason: 'no TLS handshake within 300 ms' });
    expect(await raw(closed)).toEqual({ decided: true, stage: 'connect', reason: 'connection refused' });
  });
});

describe('collect gives the same TLS 1.0/1.1 verdicts with and without the raw ClientHello', () => {
  async function legacyVerdicts(): Promise<Array<Pick<EndpointObservation, 'endpoint' | 'protocol' | 'acceptsTls10' | 'acceptsTls11' | 'legacyError'>>> {
    const params = probe.params.parse({ legacyProtocolCheckHours: 0, connectTimeoutMs: 5_000 });
    const endpoints = Object.entries(servers).map(([name, s]) => ({ host: '127.0.0.1', port: s.port, servername: 'vigil.test', name }));
    const observation = await probe.collect({
      target: { name: 't', spec: { endpoints, caFile } },
      params,
      signal: new AbortController().signal,
      log: pino({ level: 'silent' }),
      now: new Date(),
    });
    return observation.endpoints.map((e) => ({ endpoint: e.endpoint, protocol: e.protocol, acceptsTls10: e.acceptsTls10, acceptsTls11: e.acceptsTls11, legacyError: e.legacyError }));
  }

  it('on servers that do and do not accept TLS 1.0/1.1', async () => {
    legacyHelloOptions.raw = true;
    const withRaw = await legacyVerdicts();
    legacyHelloOptions.raw = false;
    let withoutRaw: Awaited<ReturnType<typeof legacyVerdicts>>;
    try {
      withoutRaw = await legacyVerdicts();
    } finally {
      legacyHelloOptions.raw = true;
    }
    expect(withRaw).toEqual(withoutRaw);
    const byName = Object.fromEntries(withRaw.map((v) => [v.endpoint, [v.acceptsTls10, v.acceptsTls11]]));
    expect(byName).toEqual({
      modern: [false, false],
      tls10to13: [true, true],
      tls10only: [true, false],
      tls11only: [false, true],
      opensslTls1: [true, false],
      opensslTls12: [false, false],
      resetter: [null, null], // never completes a main handshake: no certificate, nothing to judge
    });
  }, 60_000);
});
