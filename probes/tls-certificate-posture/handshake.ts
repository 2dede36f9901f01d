/**
 * The I/O half of the TLS probe: handshakes with real endpoints and a trust-store lookup. No
 * verdicts here: what the server presented goes into an EndpointObservation, judged by assess.ts.
 *
 * Every handshake is lenient on purpose (`rejectUnauthorized: false`, `@SECLEVEL=0`), so that a
 * server with an RSA-1024 or SHA-1 certificate, or one that only speaks TLS 1.0, still completes
 * it and its weakness can be reported instead of becoming "could not connect".
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import tls, { type PeerCertificate, type SecureContext, type TLSSocket } from 'node:tls';
import { parseCertificate, parsePemBundle, type Certificate } from './chain.js';
import type { EndpointObservation } from './observation.js';

/** OpenSSL 3 neither offers TLS 1.0/1.1 nor accepts weak keys or SHA-1 chains above security level 0. */
const lenientCiphers = 'DEFAULT:@SECLEVEL=0';

/** An endpoint as the config gives it (src/config/schema.ts TlsEndpoint). */
export interface EndpointSpec {
  host: string;
  port: number;
  servername?: string | undefined;
  name: string;
}

// ---------------------------------------------------------------------------------------------
// Trust store

/** Trusted certificates indexed by subject, to find the anchors an observed chain may end at. */
export interface TrustStore {
  bySubject: Map<string, Certificate[]>;
  /** The PEMs, for OpenSSL's own verification during the handshake. */
  pems: readonly string[];
}

let systemCertificates: { certs: Certificate[]; pems: string[] } | undefined;

/**
 * The operating system's CA bundles, where the distribution keeps them: roots an administrator
 * added with update-ca-certificates (a private CA) are trusted just as the OS trusts them.
 */
export const systemBundlePaths: readonly string[] = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];

/** Node's bundled Mozilla roots plus the first OS bundle found, parsed once per process. */
function systemRoots(): { certs: Certificate[]; pems: string[] } {
  if (systemCertificates) return systemCertificates;
  const pems = [...tls.rootCertificates];
  for (const file of systemBundlePaths) {
    try {
      pems.push(readFileSync(file, 'utf8'));
      break;
    } catch {
      // not on this distribution
    }
  }
  const seen = new Set<string>();
  const certs: Certificate[] = [];
  const keptPems: string[] = [];
  for (const pem of pems) {
    let parsed: Certificate[];
    try {
      parsed = parsePemBundle(pem);
    } catch {
      continue;
    }
    for (const cert of parsed) {
      if (seen.has(cert.fingerprint)) continue;
      seen.add(cert.fingerprint);
      certs.push(cert);
      keptPems.push(cert.x509.toString());
    }
  }
  systemCertificates = { certs, pems: keptPems };
  return systemCertificates;
}

/** The system roots plus the PEM certificates of `caFile` (an absolute path), if any. */
export async function loadTrustStore(caFile: string | undefined): Promise<TrustStore> {
  const extra: Certificate[] = [];
  const extraPems: string[] = [];
  if (caFile !== undefined) {
    let text: string;
    try {
      text = await readFile(caFile, 'utf8');
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'error';
      throw new Error(`could not read caFile ${caFile} (${code}): fix the path in tls[].caFile`, { cause: err });
    }
    let parsed: Certificate[];
    try {
      parsed = parsePemBundle(text);
    } catch (err) {
      throw new Error(`caFile ${caFile} holds a certificate that cannot be parsed: replace it with PEM certificates`, { cause: err });
    }
    if (parsed.length === 0) throw new Error(`caFile ${caFile} holds no PEM certificate: put the trusted root(s) in it, PEM-encoded`);
    extra.push(...parsed);
    extraPems.push(...parsed.map((c) => c.x509.toString()));
  }
  const bySubject = new Map<string, Certificate[]>();
  const system = systemRoots();
  for (const cert of [...system.certs, ...extra]) {
    const list = bySubject.get(cert.subject);
    if (list) list.push(cert);
    else bySubject.set(cert.subject, [cert]);
  }
  return { bySubject, pems: [...system.pems, ...extraPems] };
}

/**
 * The trusted certificates that may end a chain built from `presented`: those named as the issuer
 * of a presented certificate, or of such a trusted certificate (a caFile may hold an intermediate
 * and its root), plus presented certificates that are themselves trusted.
 */
export function anchorsFor(presented: readonly Certificate[], store: TrustStore): Certificate[] {
  const found = new Map<string, Certificate>();
  const queue = [...presented];
  for (const cert of presented) {
    for (const trusted of store.bySubject.get(cert.subject) ?? []) {
      if (trusted.fingerprint === cert.fingerprint) found.set(trusted.fingerprint, trusted);
    }
  }
  while (queue.length > 0 && found.size < 32) {
    const cert = queue.shift() as Certificate;
    for (const trusted of store.bySubject.get(cert.issuer) ?? []) {
      if (found.has(trusted.fingerprint)) continue;
      found.set(trusted.fingerprint, trusted);
      queue.push(trusted);
    }
  }
  return [...found.values()];
}

// ---------------------------------------------------------------------------------------------
// Handshakes

/** Secure contexts shared by every handshake of one run (creating one with 140 roots costs ~50 ms). */
export interface HandshakeContexts {
  /** Offers TLS 1.0–1.3 and verifies against the trust store. */
  main: SecureContext;
  tls10: SecureContext;
  tls11: SecureContext;
}

export function createHandshakeContexts(store: TrustStore): HandshakeContexts {
  const pinned = (version: 'TLSv1' | 'TLSv1.1'): SecureContext =>
    tls.createSecureContext({ ciphers: lenientCiphers, minVersion: version, maxVersion: version });
  return {
    main: tls.createSecureContext({ ca: [...store.pems], ciphers: lenientCiphers, minVersion: 'TLSv1', maxVersion: 'TLSv1.3' }),
    tls10: pinned('TLSv1'),
    tls11: pinned('TLSv1.1'),
  };
}

/** Live sockets of one run, so an abort can end them all at once with a single listener. */
export class SocketSet {
  private readonly live = new Set<() => void>();
  add(abort: () => void): void {
    this.live.add(abort);
  }
  delete(abort: () => void): void {
    this.live.delete(abort);
  }
  abortAll(): void {
    for (const abort of [...this.live]) abort();
  }
}

type HandshakeResult =
  | {
      ok: true;
      protocol: string | undefined;
      cipher: string | undefined;
      authorized: boolean;
      authorizationError: string | undefined;
      chain: Buffer[];
    }
  | {
      ok: false;
      /** `connect`: never reached the server; `handshake`: it answered but no handshake completed. */
      stage: 'connect' | 'handshake' | 'timeout' | 'aborted';
      reason: string;
      /** True when the server refused at the TLS layer (an alert), not by resetting or closing the connection. */
      alert?: boolean;
    };

const connectErrors: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host name not found (DNS)',
  EAI_AGAIN: 'DNS lookup failed temporarily',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EADDRNOTAVAIL: 'address not available',
  ECONNRESET: 'connection reset by the server',
  EPIPE: 'connection closed by the server',
};

function describeError(err: Error & { code?: string; reason?: string }): string {
  const code = err.code ?? '';
  const known = connectErrors[code];
  if (known) return known;
  if (code.startsWith('ERR_SSL_') || err.reason) {
    // OpenSSL errors carry a readable `reason`, e.g. "tlsv1 alert protocol version".
    return `TLS handshake failed: ${err.reason ?? code}`;
  }
  return code ? `${err.message} (${code})` : err.message;
}

/** Certificates as Node links them from the peer: leaf first, each followed by its issuer. */
function peerChain(socket: TLSSocket): Buffer[] {
  const out: Buffer[] = [];
  const seen = new Set<string>();
  let cert: PeerCertificate | undefined = socket.getPeerCertificate(true);
  while (cert?.raw && !seen.has(cert.fingerprint256) && out.length < 16) {
    seen.add(cert.fingerprint256);
    out.push(cert.raw);
    const next = (cert as tls.DetailedPeerCertificate).issuerCertificate as PeerCertificate | undefined;
    cert = next;
  }
  return out;
}

/** One TLS handshake; never rejects. */
function handshake(options: {
  host: string;
  port: number;
  sni: string | undefined;
  context: SecureContext;
  timeoutMs: number;
  sockets: SocketSet;
  readChain: boolean;
}): Promise<HandshakeResult> {
  return new Promise((resolve) => {
    let settled = false;
    let tcpConnected = false;
    const socket = tls.connect({
      host: options.host,
      port: options.port,
      ...(options.sni ? { servername: options.sni } : {}),
      secureContext: options.context,
      rejectUnauthorized: false,
      // The name is judged by assess.ts; Node's check would only muddle authorizationError.
      checkServerIdentity: () => undefined,
    });
    const finish = (result: HandshakeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.sockets.delete(abort);
      if (result.ok) {
        // Close politely: end() flushes our last handshake message (TLS 1.3 client Finished), so
        // the server logs a completed handshake, not an aborted one. destroy() follows shortly.
        socket.end();
        setTimeout(() => socket.destroy(), 1_000).unref();
      } else {
        socket.destroy();
      }
      resolve(result);
    };
    const abort = (): void => finish({ ok: false, stage: 'aborted', reason: 'aborted' });
    const timer = setTimeout(
      () =>
        finish({
          ok: false,
          stage: 'timeout',
          reason: tcpConnected ? `no TLS handshake within ${options.timeoutMs} ms` : `no TCP connection within ${options.timeoutMs} ms`,
        }),
      options.timeoutMs,
    );
    options.sockets.add(abort);
    socket.on('error', (err: Error & { code?: string; reason?: string }) =>
      finish({
        ok: false,
        stage: tcpConnected ? 'handshake' : 'connect',
        reason: describeError(err),
        alert: (err.code ?? '').startsWith('ERR_SSL_') || err.reason !== undefined,
      }),
    );
    socket.once('connect', () => {
      tcpConnected = true;
    });
    socket.once('close', () =>
      finish({ ok: false, stage: tcpConnected ? 'handshake' : 'connect', reason: 'connection closed during the TLS handshake' }),
    );
    socket.once('secureConnect', () => {
      const protocol = socket.getProtocol() ?? undefined;
      const cipher = socket.getCipher()?.name;
      const authorizationError = socket.authorizationError as unknown as string | Error | null | undefined;
      finish({
        ok: true,
        protocol,
        cipher,
        authorized: socket.authorized,
        authorizationError:
          authorizationError === null || authorizationError === undefined
            ? undefined
            : typeof authorizationError === 'string'
              ? authorizationError
              : ((authorizationError as Error & { code?: string }).code ?? authorizationError.message),
        chain: options.readChain ? peerChain(socket) : [],
      });
    });
  });
}

/**
 * What a pinned legacy handshake says. A TLS alert is a refusal. A reset or close is ambiguous:
 * servers such as IIS refuse that way, but so does a rate limiter or WAF that drops follow-up
 * connections — `ambiguous` is settled by a control handshake (see observeEndpoint).
 */
function legacyAnswer(result: HandshakeResult): { accepted: boolean | null; ambiguous?: boolean; error?: string } {
  if (result.ok) return { accepted: true };
  if (result.stage === 'handshake' && result.alert) return { accepted: false };
  if (result.stage === 'handshake') return { accepted: null, ambiguous: true, error: result.reason };
  return { accepted: null, error: result.reason };
}

/**
 * Observes one endpoint: the main handshake (certificates, protocol, OpenSSL's verdict), then,
 * if it completed, one handshake pinned to TLS 1.0 and one pinned to TLS 1.1, in parallel.
 */
export async function observeEndpoint(
  endpoint: EndpointSpec,
  options: { store: TrustStore; contexts: HandshakeContexts; timeoutMs: number; sockets: SocketSet },
): Promise<EndpointObservation> {
  const expectedName = endpoint.servername ?? endpoint.host;
  // RFC 6066 §3: "Literal IPv4 and IPv6 addresses are not permitted in HostName."
  const sni = isIP(expectedName) ? undefined : expectedName;
  const base = {
    endpoint: endpoint.name,
    host: endpoint.host,
    port: endpoint.port,
    ...(sni ? { sni } : {}),
    expectedName,
  };
  const common = { host: endpoint.host, port: endpoint.port, sni, timeoutMs: options.timeoutMs, sockets: options.sockets };
  const main = await handshake({ ...common, context: options.contexts.main, readChain: true });
  if (!main.ok) return { ...base, error: main.reason, peerChain: [], anchors: [], acceptsTls10: null, acceptsTls11: null };
  if (main.chain.length === 0) {
    return { ...base, error: 'the server sent no certificate', peerChain: [], anchors: [], acceptsTls10: null, acceptsTls11: null };
  }

  let anchors: string[] = [];
  try {
    const presented = main.chain.map((der) => parseCertificate(der));
    anchors = anchorsFor(presented, options.store).map((c) => c.der.toString('base64'));
  } catch {
    // An unparsable certificate is judged (and reported) by assess.ts; no anchors to offer.
  }

  const [v10, v11] = await Promise.all([
    handshake({ ...common, context: options.contexts.tls10, readChain: false }),
    handshake({ ...common, context: options.contexts.tls11, readChain: false }),
  ]);
  const tls10 = legacyAnswer(v10);
  const tls11 = legacyAnswer(v11);
  if (tls10.ambiguous || tls11.ambiguous) {
    // The legacy attempt was cut without an alert. If a modern handshake on a fresh connection
    // still succeeds, the server is answering and the cut was its refusal of the old protocol;
    // otherwise we cannot tell, and say so.
    const control = await handshake({ ...common, context: options.contexts.main, readChain: false });
    for (const answer of [tls10, tls11]) {
      if (!answer.ambiguous) continue;
      if (control.ok) {
        answer.accepted = false;
        delete answer.error;
      } else answer.error = `${answer.error ?? 'connection cut'}, and a follow-up modern handshake failed too (${control.reason})`;
    }
  }
  const legacyError = tls10.error ?? tls11.error;
  return {
    ...base,
    ...(main.protocol ? { protocol: main.protocol } : {}),
    ...(main.cipher ? { cipher: main.cipher } : {}),
    peerChain: main.chain.map((der) => der.toString('base64')),
    anchors,
    tlsAuthorized: main.authorized,
    ...(main.authorizationError ? { tlsAuthorizationError: main.authorizationError } : {}),
    acceptsTls10: tls10.accepted,
    acceptsTls11: tls11.accepted,
    ...(legacyError ? { legacyError } : {}),
  };
}

/** Runs `worker` over `items` with at most `limit` in flight; results keep the input order. */
export async function mapBounded<T, R>(items: readonly T[], limit: number, worker: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const run = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await worker(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
  return results;
}
