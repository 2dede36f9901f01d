/**
 * Legacy-protocol checks against servers that cut connections instead of sending a TLS alert.
 * A reset is a refusal only when the server still answers a modern handshake right after it
 * (IIS/schannel refuse TLS 1.0 that way); when it cuts every follow-up connection (a rate limiter
 * or WAF) vigil cannot tell, and must not report "TLS 1.0 refused".
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestPki, writeCaFile } from '../../test/helpers/tls-certs.js';
import { startTlsPeer, type TlsPeer } from '../../test/helpers/tls-peer.js';
import { probe } from './probe.js';

const log = pino({ level: 'silent' });
const pki = createTestPki({ hostnames: ['vigil.test', '127.0.0.1'] });
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** The legacy_version of a ClientHello in the first bytes of a connection (0x0301 = TLS 1.0, 0x0302 = 1.1). */
function clientHelloVersion(chunk: Buffer): number | undefined {
  // record header (5) + handshake type (1) + length (3), then client_version (2)
  return chunk.length >= 11 && chunk[0] === 0x16 && chunk[5] === 0x01 ? chunk.readUInt16BE(9) : undefined;
}

/** A TCP front that passes connections to `backend` unless `cut(connectionIndex, helloVersion)` says to reset them. */
async function front(backend: TlsPeer, cut: (index: number, version: number | undefined) => boolean): Promise<{ port: number }> {
  let index = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const n = index++;
    sockets.add(client);
    client.on('error', () => undefined);
    client.once('data', (first: Buffer) => {
      if (cut(n, clientHelloVersion(first))) {
        client.resetAndDestroy();
        return;
      }
      const upstream = connect(backend.port, backend.host, () => {
        upstream.write(first);
        client.pipe(upstream).pipe(client);
      });
      upstream.on('error', () => client.destroy());
      sockets.add(upstream);
    });
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
  return { port: addr.port };
}

async function observe(port: number) {
  const caFile = await writeCaFile([pki.root]);
  const params = probe.params.parse({});
  const obs = await probe.collect({
    target: { name: 't', spec: { endpoints: [{ host: '127.0.0.1', port, servername: 'vigil.test', name: `127.0.0.1:${port}` }], caFile } },
    params,
    signal: new AbortController().signal,
    log,
    now: new Date(),
  });
  return probe.evaluate(obs, params, new Date())[0];
}

describe('legacy protocol checks when the server resets instead of alerting', () => {
  it('a server that resets only TLS 1.0/1.1 ClientHellos refuses them (and passes)', async () => {
    const modern = await startTlsPeer({ cert: pki.chainPem, key: pki.keyPem });
    closers.push(() => modern.close());
    const { port } = await front(modern, (_n, version) => version === 0x0301 || version === 0x0302);
    const finding = await observe(port);
    expect(finding?.details).toMatchObject({ acceptsTls10: false, acceptsTls11: false });
    expect(finding?.outcome).toBe('pass');
  });

  it('a server that accepts TLS 1.0 but resets every connection after the first is unknown, not "refused"', async () => {
    const legacy = await startTlsPeer({ cert: pki.chainPem, key: pki.keyPem, minVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0' });
    closers.push(() => legacy.close());
    const { port } = await front(legacy, (n) => n > 0);
    const finding = await observe(port);
    expect(finding?.details).toMatchObject({ acceptsTls10: null, acceptsTls11: null });
    expect(finding?.outcome).toBe('unknown');
    expect(finding?.message).toMatch(/follow-up modern handshake failed too/);
  });
});
