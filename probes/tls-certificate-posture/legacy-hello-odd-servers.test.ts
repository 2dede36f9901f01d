/**
 * Review R5 of the raw TLS 1.0–1.1 ClientHello (legacy-hello.ts): servers that answer in odd
 * ways. The worst outcome is a false pass — "TLS 1.0/1.1 not accepted" for a server that accepts
 * them — so each odd answer is checked twice: what sendRawHello makes of it, and that collect's
 * TLS 1.0/1.1 verdict is the same with the raw hello as with full Node handshakes only.
 *
 * The odd servers sit behind a "mux" on one port: a connection whose ClientHello offers TLS 1.2+
 * (the main and control handshakes) is piped to a real Node TLS server; one that offers at most
 * TLS 1.1 (the legacy checks, raw or not) gets the odd bytes, written as the test says.
 */
import { connect as connectTcp, createServer as createTcpServer, type Server, type Socket } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, writeCaFile } from '../../test/helpers/tls-certs.js';
import { startTlsPeer, type TlsPeer } from '../../test/helpers/tls-peer.js';
import { createHandshakeContexts, legacyHelloOptions, loadTrustStore } from './handshake.js';
import { buildHello, helloTemplate, sendRawHello, type HelloTemplate } from './legacy-hello.js';
import { probe } from './probe.js';

const pki = createTestPki({ hostnames: ['vigil.test'] });
let template: HelloTemplate;
let backend: TlsPeer;
/** A server whose best is TLS 1.1: collect asks it with the pinned TLS 1.0 and TLS 1.1 handshakes directly. */
let legacyBackend: TlsPeer;
let caFile: string;

/** What a legacy ClientHello gets: writes on the socket, with pauses between them. */
type Script = (socket: Socket, hello: Buffer) => Promise<void> | void;

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
const alert = (level: number, description: number, recordVersion = 0x0301): Buffer => {
  const b = Buffer.from([21, 3, 1, 0, 2, level, description]);
  b.writeUInt16BE(recordVersion, 1);
  return b;
};
/** A minimal, well-formed ServerHello (TLS_RSA_WITH_AES_128_CBC_SHA, no extensions) in a handshake record. */
const serverHello = (helloVersion: number, recordVersion: number): Buffer => {
  const body = Buffer.alloc(2 + 32 + 1 + 2 + 1);
  body.writeUInt16BE(helloVersion, 0);
  body.fill(7, 2, 34);
  body.writeUInt8(0, 34); // session id length
  body.writeUInt16BE(0x002f, 35);
  body.writeUInt8(0, 37); // null compression
  const handshake = Buffer.concat([Buffer.from([2, 0, 0, body.length]), body]);
  const header = Buffer.from([22, 0, 0, 0, 0]);
  header.writeUInt16BE(recordVersion, 1);
  header.writeUInt16BE(handshake.length, 3);
  return Buffer.concat([header, handshake]);
};

/** The host_name of a ClientHello's server_name extension, or undefined when it has none. */
function sniOf(hello: Buffer): string | undefined {
  let at = 5 + 4 + 2 + 32;
  at += 1 + hello.readUInt8(at);
  at += 2 + hello.readUInt16BE(at);
  at += 1 + hello.readUInt8(at);
  const end = at + 2 + hello.readUInt16BE(at);
  for (let e = at + 2; e < end; e += 4 + hello.readUInt16BE(e + 2)) {
    if (hello.readUInt16BE(e) === 0) return hello.subarray(e + 9, e + 9 + hello.readUInt16BE(e + 7)).toString('utf8');
  }
  return undefined;
}

const muxes: Array<{ server: Server; sockets: Set<Socket> }> = [];

/** A port where modern hellos reach `to` (default `backend`) and legacy ones get `script`. */
async function startMux(script: Script, to?: TlsPeer): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    let got = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      got = Buffer.concat([got, chunk]);
      if (got.length < 11 || got.length < 5 + got.readUInt16BE(3)) return;
      socket.off('data', onData);
      if (got.readUInt16BE(9) >= 0x0303) {
        const peer = to ?? backend;
        const upstream = connectTcp({ host: peer.host, port: peer.port }, () => upstream.write(got));
        sockets.add(upstream);
        upstream.on('error', () => socket.destroy());
        socket.on('error', () => upstream.destroy());
        upstream.pipe(socket);
        socket.pipe(upstream);
      } else {
        void Promise.resolve(script(socket, got)).catch(() => socket.destroy());
      }
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  muxes.push({ server, sockets });
  return (server.address() as { port: number }).port;
}

beforeAll(async () => {
  template = (await helloTemplate(createHandshakeContexts(await loadTrustStore(undefined)).legacy)) as HelloTemplate;
  backend = await startTlsPeer({ cert: pki.chainPem, key: pki.keyPem });
  legacyBackend = await startTlsPeer({ cert: pki.chainPem, key: pki.keyPem, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' });
  caFile = await writeCaFile([pki.root]);
});

afterAll(async () => {
  await Promise.all(
    muxes.map(({ server, sockets }) => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    }),
  );
  await Promise.all([backend.close(), legacyBackend.close()]);
});

const raw = (port: number, sni: string | undefined = 'vigil.test', timeoutMs = 3_000) =>
  sendRawHello({ host: '127.0.0.1', port, hello: buildHello(template, sni) as Buffer, timeoutMs, register: () => undefined, unregister: () => undefined });

/** collect's TLS 1.0/1.1 verdict for one endpoint, with the raw hello on or off. */
async function verdict(port: number, useRaw: boolean, timeoutMs = 3_000) {
  legacyHelloOptions.raw = useRaw;
  try {
    const observation = await probe.collect({
      target: { name: 't', spec: { endpoints: [{ host: '127.0.0.1', port, servername: 'vigil.test', name: `vigil.test@127.0.0.1:${port}` }], caFile } },
      params: probe.params.parse({ legacyProtocolCheckHours: 0, connectTimeoutMs: timeoutMs }),
      signal: new AbortController().signal,
      log: pino({ level: 'silent' }),
      now: new Date(),
    });
    const e = observation.endpoints[0]!;
    return { protocol: e.protocol, acceptsTls10: e.acceptsTls10, acceptsTls11: e.acceptsTls11 };
  } finally {
    legacyHelloOptions.raw = true;
  }
}

const refusal = { decided: true, stage: 'handshake', alert: true, peerAlert: true, reason: 'TLS handshake failed: tlsv1 alert protocol version' };
const undecided = expect.objectContaining({ decided: false });

describe('the raw hello on odd servers (R5)', () => {
  it.each([1, 2, 3, 5, 6])('a fatal alert split across TCP segments after byte %i is still the refusal', async (at) => {
    const port = await startMux(async (s) => {
      const a = alert(2, 70);
      s.write(a.subarray(0, at));
      await pause(40);
      s.write(a.subarray(at));
    });
    expect(await raw(port)).toEqual(refusal);
    expect(await verdict(port, true)).toEqual(await verdict(port, false));
    expect(await verdict(port, true)).toMatchObject({ acceptsTls10: false, acceptsTls11: false });
  });

  it('a fatal alert in a TLS 1.2 record is the refusal', async () => {
    const port = await startMux((s) => void s.write(alert(2, 40, 0x0303)));
    expect(await raw(port)).toEqual({ ...refusal, reason: 'TLS handshake failed: tlsv1 alert handshake failure' });
  });

  it.each([
    ['a TLS 1.2 ServerHello to a TLS 1.0–1.1 hello, then a fatal alert', () => Buffer.concat([serverHello(0x0303, 0x0303), alert(2, 70)]), 0x0303],
    ['a warning alert (unrecognized_name), then a ServerHello', () => Buffer.concat([alert(1, 112), serverHello(0x0301, 0x0301)]), undefined],
    ['an SSLv2 SERVER-HELLO', () => Buffer.from([0x80, 0x2e, 0x04, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03, 0x00, 0x10]), undefined],
    ['an HTTP error page (a plain-HTTP port, or a middlebox)', () => Buffer.from('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'), undefined],
  ])('%s is undecided (the full handshake judges it), and the verdict is the same as without the raw hello', async (_name, bytes, serverVersion) => {
    const port = await startMux((s) => void s.write(bytes()));
    expect(await raw(port)).toEqual({ decided: false, reason: expect.any(String), ...(serverVersion ? { serverVersion } : {}) });
    expect(await verdict(port, true)).toEqual(await verdict(port, false));
  });

  // The server chose TLS 1.0 (or 1.1) in its ServerHello, and then OpenSSL refused the rest of its
  // answer — as OpenSSL 3 does with a DH group under 1024 bits even at security level 0. Full
  // handshakes alone read OpenSSL's own alert as the server's refusal: "TLS 1.0 not accepted", a
  // false pass. The raw hello saw the server's choice.
  const garbageCertificate = Buffer.from([22, 3, 1, 0, 6, 11, 0, 0, 2, 0xff, 0xff]);
  it('a server that chose TLS 1.0 is not reported as refusing it when OpenSSL then rejects its answer', async () => {
    const port = await startMux((s) => void s.write(Buffer.concat([serverHello(0x0301, 0x0301), garbageCertificate])));
    expect(await raw(port)).toEqual({ decided: false, reason: 'the server answered with a handshake record', serverVersion: 0x0301 });
    expect(await verdict(port, false)).toEqual({ protocol: 'TLSv1.3', acceptsTls10: false, acceptsTls11: false }); // the false pass
    expect(await verdict(port, true)).toEqual({ protocol: 'TLSv1.3', acceptsTls10: true, acceptsTls11: false });
  });

  /** ServerHello for the version the hello offers at most, then a record OpenSSL cannot parse. */
  const choosesOffered: Script = (s, hello) => void s.write(Buffer.concat([serverHello(hello.readUInt16BE(9), hello.readUInt16BE(9)), garbageCertificate]));

  it('chose TLS 1.1 for the 1.0–1.1 hello and TLS 1.0 for the pinned TLS 1.0 hello, OpenSSL refusing both answers: both accepted', async () => {
    const port = await startMux(choosesOffered);
    expect(await verdict(port, true)).toEqual({ protocol: 'TLSv1.3', acceptsTls10: true, acceptsTls11: true });
  });

  it('a server whose best is TLS 1.1 (pinned handshakes only) that OpenSSL then refuses is not reported as refusing TLS 1.0/1.1', async () => {
    const port = await startMux(choosesOffered, legacyBackend);
    expect(await verdict(port, false)).toEqual({ protocol: 'TLSv1.1', acceptsTls10: false, acceptsTls11: false }); // the false pass
    expect(await verdict(port, true)).toEqual({ protocol: 'TLSv1.1', acceptsTls10: true, acceptsTls11: true });
  });

  it('a pinned hello answered with a higher version than offered is still refused', async () => {
    const port = await startMux((s) => void s.write(Buffer.concat([serverHello(0x0303, 0x0303), garbageCertificate])), legacyBackend);
    expect(await verdict(port, true)).toEqual({ protocol: 'TLSv1.1', acceptsTls10: false, acceptsTls11: false });
  });

  it('the same for TLS 1.1 in its ServerHello, and a TLS 1.0-only hello gets its own (refused) answer', async () => {
    const port = await startMux((s, hello) =>
      void s.write(hello.readUInt16BE(9) === 0x0301 ? alert(2, 70) : Buffer.concat([serverHello(0x0302, 0x0302), garbageCertificate])),
    );
    expect(await verdict(port, true)).toEqual({ protocol: 'TLSv1.3', acceptsTls10: false, acceptsTls11: true });
  });

  it.each([
    ['a ServerHello (TLS 1.0) inside a TLS 1.2 record', () => serverHello(0x0301, 0x0303)],
    ['a ServerHello (TLS 1.0) that OpenSSL refuses, then a fatal alert', () => Buffer.concat([serverHello(0x0301, 0x0301), alert(2, 40)])],
  ])('%s: the server chose TLS 1.0', async (_name, bytes) => {
    const port = await startMux((s) => void s.write(bytes()));
    expect(await raw(port)).toEqual({ decided: false, reason: 'the server answered with a handshake record', serverVersion: 0x0301 });
    expect(await verdict(port, true)).toEqual({ protocol: 'TLSv1.3', acceptsTls10: true, acceptsTls11: false });
  });

  it('an alert record of a length other than 2 is no refusal to rely on', async () => {
    // 0x15 0x03 0x01 then a length of 16: not the two-byte alert OpenSSL would read as the server's word.
    const bogus = Buffer.concat([Buffer.from([21, 3, 1, 0, 16]), Buffer.from([2, 70]), Buffer.alloc(14, 0x41)]);
    const port = await startMux((s) => void s.write(bogus));
    expect(await raw(port)).toEqual(undecided);
  });

  it('a partial record and then silence times out (unknown), never a refusal', async () => {
    const port = await startMux((s) => void s.write(Buffer.from([21, 3, 1])));
    expect(await raw(port, 'vigil.test', 300)).toEqual({ decided: true, stage: 'timeout', reason: 'no TLS handshake within 300 ms' });
    expect(await verdict(port, true, 1_000)).toEqual({ protocol: 'TLSv1.3', acceptsTls10: null, acceptsTls11: null });
  });

  it('a partial record and then a close is undecided', async () => {
    const port = await startMux((s) => void s.end(Buffer.from([21, 3, 1, 0])));
    expect(await raw(port)).toEqual(undecided);
  });

  it('a server that resets only unknown SNI names sees the endpoint\'s name, spliced in intact', async () => {
    const seen: Array<string | undefined> = [];
    const port = await startMux((s, hello) => {
      const sni = sniOf(hello);
      seen.push(sni);
      if (sni === 'bücher.vigil.test.' || sni === 'vigil.test') s.write(serverHello(0x0301, 0x0301));
      else s.resetAndDestroy();
    });
    expect(await raw(port, 'bücher.vigil.test.')).toEqual(undecided); // UTF-8 as Node sends it, trailing dot kept
    expect(await raw(port, 'other.vigil.test')).toEqual({ decided: true, stage: 'handshake', reason: 'connection reset by the server' });
    const noSni = sendRawHello({ host: '127.0.0.1', port, hello: buildHello(template, undefined) as Buffer, timeoutMs: 3_000, register: () => undefined, unregister: () => undefined });
    expect(await noSni).toEqual({ decided: true, stage: 'handshake', reason: 'connection reset by the server' });
    expect(seen).toEqual(['bücher.vigil.test.', 'other.vigil.test', undefined]);
  });
});
