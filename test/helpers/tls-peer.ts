/**
 * Real TLS servers on loopback for integration tests: node:tls on port 0, serving whatever
 * chain and key the test hands in (see tls-certs.ts), plus a silent TCP peer (never answers a
 * ClientHello) and a port that is known to be closed.
 *
 * The quickest start for a test that needs "a TLS endpoint with a valid chain":
 *
 * ```ts
 * const peer = await startValidTlsPeer();            // RSA-2048 root → intermediate → leaf
 * // config: tls: [{ name: 'local', endpoints: [peer.endpoint], caFile: peer.caFile }]
 * await peer.close();                                // closes the server, removes the caFile
 * ```
 */
import { rm } from 'node:fs/promises';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { createSecureContext, createServer, type SecureContext, type SecureVersion, type TLSSocket } from 'node:tls';
import { createTestPki, defaultTestHostnames, writeCaFile, type TestPki } from './tls-certs.js';

/** How a test TLS server is configured. */
export interface TlsPeerOptions {
  /** PEM chain the server sends, leaf first. */
  cert: string;
  /** PEM private key of the leaf. */
  key: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default: Node's (TLSv1.2). Use 'TLSv1' with `ciphers: 'DEFAULT:@SECLEVEL=0'` for a legacy server. */
  minVersion?: SecureVersion;
  /** Default: Node's (TLSv1.3). */
  maxVersion?: SecureVersion;
  /**
   * OpenSSL cipher string. Default: Node's. OpenSSL 3 refuses to serve RSA-1024 or SHA-1
   * certificates, and to speak TLS 1.0/1.1, unless this ends with `@SECLEVEL=0`.
   */
  ciphers?: string;
  /**
   * Other certificates served by SNI name (virtual hosts on one address): a ClientHello naming
   * one of these gets its chain; any other name, or none, gets `cert`.
   */
  virtualHosts?: Record<string, { cert: string; key: string }>;
}

/** A running TLS server. */
export interface TlsPeer {
  host: string;
  port: number;
  /** `host:port` (IPv6 in brackets), as written in vigil's `tls[].endpoints`. */
  endpoint: string;
  /** The SNI name of each completed handshake, in order; `false` when the client sent none. */
  readonly servernames: ReadonlyArray<string | false>;
  /** Handshakes that completed. */
  readonly handshakes: number;
  /** TCP connections open now, and the most ever open at once. */
  readonly connections: number;
  readonly peakConnections: number;
  close(): Promise<void>;
}

function endpointOf(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function closeServer(server: TcpServer, sockets: Set<Socket>): Promise<void> {
  for (const s of sockets) s.destroy();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Picks the virtual host's context by SNI name; undefined (the default `cert`) for other names. */
function sniCallback(options: TlsPeerOptions): (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void {
  const contexts = new Map<string, SecureContext>();
  for (const [name, vhost] of Object.entries(options.virtualHosts ?? {})) {
    contexts.set(
      name.toLowerCase(),
      createSecureContext({
        cert: vhost.cert,
        key: vhost.key,
        ...(options.minVersion ? { minVersion: options.minVersion } : {}),
        ...(options.maxVersion ? { maxVersion: options.maxVersion } : {}),
        ...(options.ciphers ? { ciphers: options.ciphers } : {}),
      }),
    );
  }
  return (servername, cb) => cb(null, contexts.get(servername.toLowerCase()));
}

/** Starts a TLS server on a free loopback port. Connections are closed right after the handshake. */
export async function startTlsPeer(options: TlsPeerOptions): Promise<TlsPeer> {
  const host = options.host ?? '127.0.0.1';
  const servernames: Array<string | false> = [];
  const sockets = new Set<Socket>();
  let peakConnections = 0;
  const server = createServer({
    cert: options.cert,
    key: options.key,
    ...(options.minVersion ? { minVersion: options.minVersion } : {}),
    ...(options.maxVersion ? { maxVersion: options.maxVersion } : {}),
    ...(options.ciphers ? { ciphers: options.ciphers } : {}),
    ...(options.virtualHosts ? { SNICallback: sniCallback(options) } : {}),
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    peakConnections = Math.max(peakConnections, sockets.size);
    socket.on('error', () => undefined);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    servernames.push((socket as TLSSocket & { servername?: string | false }).servername ?? false);
    socket.on('error', () => undefined);
    socket.end();
  });
  // Rejected handshakes (a TLS 1.0 hello to a TLS 1.2 server) are the point of some tests, not errors.
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('TLS test server has no port');
  return {
    host,
    port: address.port,
    endpoint: endpointOf(host, address.port),
    servernames,
    get handshakes() {
      return servernames.length;
    },
    get connections() {
      return sockets.size;
    },
    get peakConnections() {
      return peakConnections;
    },
    close: () => closeServer(server, sockets),
  };
}

/** A TLS server with a valid chain, and the caFile that makes a client trust it. */
export interface ValidTlsPeer extends TlsPeer {
  /** Absolute path of a PEM file holding the test root: pass it as `tls[].caFile`. */
  caFile: string;
  pki: TestPki;
}

/**
 * Starts a server that sends leaf + intermediate under a fresh test root (RSA-2048, SHA-256,
 * valid for 90 days, names `hostnames`: by default localhost, vigil.test, 127.0.0.1 and ::1),
 * and writes the root to a caFile in a temp dir. `close()` stops the server and removes the dir.
 */
export async function startValidTlsPeer(
  options: { hostnames?: readonly string[]; host?: string } = {},
): Promise<ValidTlsPeer> {
  const pki = createTestPki({ hostnames: options.hostnames ?? defaultTestHostnames });
  const caFile = await writeCaFile([pki.root]);
  const peer = await startTlsPeer({ cert: pki.chainPem, key: pki.keyPem, ...(options.host ? { host: options.host } : {}) });
  return {
    host: peer.host,
    port: peer.port,
    endpoint: peer.endpoint,
    get servernames() {
      return peer.servernames;
    },
    get handshakes() {
      return peer.handshakes;
    },
    get connections() {
      return peer.connections;
    },
    get peakConnections() {
      return peer.peakConnections;
    },
    caFile,
    pki,
    async close() {
      await peer.close();
      await rm(dirname(caFile), { recursive: true, force: true });
    },
  };
}

/** A TCP server that accepts connections and never says a word. */
export interface SilentPeer {
  host: string;
  port: number;
  endpoint: string;
  /** TCP connections open now: 0 once a client gave up and closed its sockets. */
  readonly connections: number;
  close(): Promise<void>;
}

/** Starts a TCP server that accepts connections and never answers a ClientHello: for timeout and abort tests. */
export async function startSilentPeer(host = '127.0.0.1'): Promise<SilentPeer> {
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    // Read and drop the ClientHello: a paused socket would never see the client's FIN, and
    // `connections` would not drop when the client gives up.
    socket.resume();
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('silent test server has no port');
  return {
    host,
    port: address.port,
    endpoint: endpointOf(host, address.port),
    get connections() {
      return sockets.size;
    },
    close: () => closeServer(server, sockets),
  };
}

/** A loopback port nothing listens on: bound once to get it from the OS, then released. */
export async function closedPort(host = '127.0.0.1'): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('could not reserve a port');
  return address.port;
}
