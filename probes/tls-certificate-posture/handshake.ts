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
import { certificateFromBase64, LruMap, parsePemBundle, type Certificate } from './chain.js';
import { buildHello, helloTemplate, sendRawHello } from './legacy-hello.js';
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

/** The base64 body of each PEM certificate block in `text`, whitespace removed. */
function pemBodies(text: string): string[] {
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => b.slice('-----BEGIN CERTIFICATE-----'.length, -'-----END CERTIFICATE-----'.length).replace(/\s+/g, ''));
}

/**
 * Node's bundled Mozilla roots plus the first OS bundle found, parsed once per process. The two
 * mostly hold the same roots: identical blocks are dropped before parsing, which halves the cost.
 */
function systemRoots(): { certs: Certificate[]; pems: string[] } {
  if (systemCertificates) return systemCertificates;
  const texts = [...tls.rootCertificates];
  for (const file of systemBundlePaths) {
    try {
      texts.push(readFileSync(file, 'utf8'));
      break;
    } catch {
      // not on this distribution
    }
  }
  const bodies = new Set<string>();
  for (const text of texts) for (const body of pemBodies(text)) bodies.add(body);
  const seen = new Set<string>();
  const certs: Certificate[] = [];
  const keptPems: string[] = [];
  for (const body of bodies) {
    let cert: Certificate;
    try {
      cert = certificateFromBase64(body);
    } catch {
      continue; // a block OpenSSL cannot read trusts nothing
    }
    if (seen.has(cert.fingerprint)) continue;
    seen.add(cert.fingerprint);
    certs.push(cert);
    keptPems.push(cert.x509.toString());
  }
  systemCertificates = { certs, pems: keptPems };
  return systemCertificates;
}

/**
 * Trust stores built in this process, by caFile path and content: a daemon re-reads the caFile
 * every run (so an edit is picked up) but indexes it, and creates its secure contexts, only when
 * the text changed. A few entries: one per configured target.
 */
const trustStores = new Map<string, TrustStore>();
const maxTrustStores = 16;

/** The system roots plus the PEM certificates of `caFile` (an absolute path), if any. */
export async function loadTrustStore(caFile: string | undefined): Promise<TrustStore> {
  let text: string | undefined;
  if (caFile !== undefined) {
    try {
      text = await readFile(caFile, 'utf8');
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'error';
      throw new Error(`could not read caFile ${caFile} (${code}): fix the path in tls[].caFile`, { cause: err });
    }
  }
  const key = caFile === undefined ? '' : `${caFile}\0${text}`;
  const known = trustStores.get(key);
  if (known) return known;

  const extra: Certificate[] = [];
  const extraPems: string[] = [];
  if (caFile !== undefined && text !== undefined) {
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
  const store: TrustStore = { bySubject, pems: [...system.pems, ...extraPems] };
  if (trustStores.size >= maxTrustStores) trustStores.delete(trustStores.keys().next().value as string);
  trustStores.set(key, store);
  return store;
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

/** Secure contexts shared by every handshake with one trust store (creating one with 150 roots costs ~20 ms). */
export interface HandshakeContexts {
  /** Offers TLS 1.0–1.3 and verifies against the trust store. */
  main: SecureContext;
  /** Offers TLS 1.0–1.1 only: the server answers with the best of them it accepts, or refuses. */
  legacy: SecureContext;
  tls10: SecureContext;
  tls11: SecureContext;
}

const contextsByStore = new WeakMap<TrustStore, HandshakeContexts>();

/** The contexts for `store`, created once per trust store. */
export function createHandshakeContexts(store: TrustStore): HandshakeContexts {
  const known = contextsByStore.get(store);
  if (known) return known;
  const range = (min: 'TLSv1' | 'TLSv1.1', max: 'TLSv1' | 'TLSv1.1'): SecureContext =>
    tls.createSecureContext({ ciphers: lenientCiphers, minVersion: min, maxVersion: max });
  const contexts: HandshakeContexts = {
    main: tls.createSecureContext({ ca: [...store.pems], ciphers: lenientCiphers, minVersion: 'TLSv1', maxVersion: 'TLSv1.3' }),
    legacy: range('TLSv1', 'TLSv1.1'),
    tls10: range('TLSv1', 'TLSv1'),
    tls11: range('TLSv1.1', 'TLSv1.1'),
  };
  contextsByStore.set(store, contexts);
  return contexts;
}

/**
 * Live sockets of one run, so an abort can end them all at once with a single listener. Once
 * aborted, the set ends any socket added later at once: a legacy check that was between two
 * handshakes when the run ended opens nothing that outlives it.
 */
export class SocketSet {
  private readonly live = new Set<() => void>();
  private closed = false;
  add(abort: () => void): void {
    if (this.closed) abort();
    else this.live.add(abort);
  }
  delete(abort: () => void): void {
    this.live.delete(abort);
  }
  abortAll(): void {
    this.closed = true;
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
      chain: PresentedCertificate[];
    }
  | {
      ok: false;
      /** `connect`: never reached the server; `handshake`: it answered but no handshake completed. */
      stage: 'connect' | 'handshake' | 'timeout' | 'aborted';
      reason: string;
      /**
       * True when the handshake failed at the TLS layer — an alert from the server, or OpenSSL
       * refusing the server's answer — not by a reset or close of the connection.
       */
      alert?: boolean;
      /** True when the server itself sent the alert (not OpenSSL objecting to the server's answer). */
      peerAlert?: boolean;
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

/** A certificate the server presented: base64 DER and SHA-256 fingerprint (AA:BB:…). */
interface PresentedCertificate {
  b64: string;
  fingerprint: string;
}

/**
 * One base64 string per certificate in this process, by fingerprint: endpoints behind one CA share
 * the strings of their intermediate and root (in the observation, and as parse-cache keys).
 */
const base64ByFingerprint = new LruMap<string>(4096, 8 * 1024 * 1024, (_fingerprint, b64) => b64.length);

function base64Of(fingerprint: string, der: Buffer): string {
  const known = base64ByFingerprint.get(fingerprint);
  if (known !== undefined) return known;
  const b64 = der.toString('base64');
  base64ByFingerprint.set(fingerprint, b64);
  return b64;
}

/**
 * Certificates as Node links them from the peer: leaf first, each followed by its issuer.
 * `linked` is the same object when Node already built it (see the handshake's checkServerIdentity).
 *
 * Not getPeerX509Certificate(): on Node 20 every call leaks the native certificates of the chain
 * (a few MiB per 500 endpoints, for good, in a daemon that sweeps every 15 minutes).
 */
function peerChain(socket: TLSSocket, linked: PeerCertificate | undefined): PresentedCertificate[] {
  const out: PresentedCertificate[] = [];
  const seen = new Set<string>();
  let cert: PeerCertificate | undefined = linked ?? socket.getPeerCertificate(true);
  while (cert?.raw && !seen.has(cert.fingerprint256) && out.length < 16) {
    seen.add(cert.fingerprint256);
    out.push({ b64: base64Of(cert.fingerprint256, cert.raw), fingerprint: cert.fingerprint256 });
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
    let linked: PeerCertificate | undefined;
    const socket = tls.connect({
      host: options.host,
      port: options.port,
      ...(options.sni ? { servername: options.sni } : {}),
      secureContext: options.context,
      rejectUnauthorized: false,
      // The name is judged by assess.ts; Node's check would only muddle authorizationError. When
      // the chain verified, Node builds getPeerCertificate(true) to call this: keep it rather than
      // build it a second time (a quarter of a millisecond per endpoint).
      checkServerIdentity: (_name, cert) => {
        linked = cert;
        return undefined;
      },
    });
    const finish = (result: HandshakeResult): void => {
      if (settled) return;
      settled = true;
      linked = undefined; // the socket (and this closure) lives on for the polite close below
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
        // OpenSSL names a received alert SSLV3_ALERT_… / TLSV1_ALERT_… / TLSV13_ALERT_… ("tlsv1 alert protocol version").
        peerAlert: /^ERR_SSL_(SSLV3|TLSV1|TLSV13)_ALERT_/.test(err.code ?? '') || /\balert\b/.test(err.reason ?? ''),
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
        chain: options.readChain ? peerChain(socket, linked) : [],
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

type LegacyAnswer = ReturnType<typeof legacyAnswer>;

/** Handshake settings shared by the connections to one endpoint. */
interface Common {
  host: string;
  port: number;
  sni: string | undefined;
  timeoutMs: number;
  sockets: SocketSet;
}

/** What the legacy-protocol handshakes found. */
interface LegacyResult {
  acceptsTls10: boolean | null;
  acceptsTls11: boolean | null;
  error?: string;
}

/** Whether checkLegacy first sends its TLS 1.0–1.1 ClientHello on a plain TCP socket (legacy-hello.ts). Tests turn it off to compare. */
export const legacyHelloOptions = { raw: true };

/**
 * The answer to the TLS 1.0–1.1 ClientHello when its first record (or the lack of one) already
 * tells it, in the form handshake() would give (`result`); else the version the server's
 * ServerHello chose, if it sent one (`serverVersion`), and the full handshake must decide.
 */
async function rawRange(common: Common, context: SecureContext): Promise<{ result?: HandshakeResult; serverVersion?: number }> {
  if (!legacyHelloOptions.raw) return {};
  const template = await helloTemplate(context);
  const hello = template && buildHello(template, common.sni);
  if (!hello) return {};
  const answer = await sendRawHello({
    host: common.host,
    port: common.port,
    hello,
    timeoutMs: common.timeoutMs,
    register: (abort) => common.sockets.add(abort),
    unregister: (abort) => common.sockets.delete(abort),
  });
  if (!answer.decided) return answer.serverVersion === undefined ? {} : { serverVersion: answer.serverVersion };
  return {
    result: answer.alert
      ? { ok: false, stage: answer.stage, reason: answer.reason, alert: true, peerAlert: true }
      : { ok: false, stage: answer.stage, reason: answer.reason },
  };
}

/** TLS 1.0 and 1.1 as ServerHello.server_version and as Node names them. */
const legacyVersions: Record<number, string> = { 0x0301: 'TLSv1', 0x0302: 'TLSv1.1' };

/**
 * A handshake pinned to one legacy version, judged by legacyAnswer — except when OpenSSL itself
 * aborted it (its own alert, not the server's): then the same hello, sent raw, shows which
 * version the server's ServerHello chose, and a server that chose the pinned version accepts it
 * (see checkLegacy: OpenSSL's refusal of the rest of the answer is not the server's).
 */
async function pinnedAnswer(common: Common, context: SecureContext, version: 0x0301 | 0x0302): Promise<LegacyAnswer> {
  const result = await handshake({ ...common, context, readChain: false });
  const answer = legacyAnswer(result);
  if (result.ok || !(result.stage === 'handshake' && result.alert && !result.peerAlert)) return answer;
  return (await rawRange(common, context)).serverVersion === version ? { accepted: true } : answer;
}

/**
 * Whether the server accepts TLS 1.0 and TLS 1.1. `mainProtocol` is what the main handshake
 * negotiated (the server's best).
 *
 * A server whose best is TLS 1.2 or 1.3 runs a stack that negotiates versions as RFC 5246 E.1
 * says — it answers with the highest version it supports up to the client's — so one handshake
 * offering TLS 1.0–1.1 usually tells both: the server's alert means neither, TLS 1.1 means 1.1
 * (and one more handshake, pinned to TLS 1.0, asks about 1.0), TLS 1.0 means 1.0 but not 1.1.
 * When OpenSSL itself aborts that handshake — e.g. a TLS 1.3 server that skips 1.1 answers TLS
 * 1.0 with the RFC 8446 downgrade sentinel, which a client that offered 1.1 must refuse
 * (INAPPROPRIATE_FALLBACK) — the version the server's ServerHello chose (read by the raw hello)
 * decides; without one, one handshake pinned to each version asks again (pinnedAnswer). A server
 * whose best is TLS 1.0 or 1.1 gets the pinned pair directly.
 */
async function checkLegacy(common: Common, contexts: HandshakeContexts, mainProtocol: string | undefined): Promise<LegacyResult> {
  let tls10: LegacyAnswer | undefined;
  let tls11: LegacyAnswer | undefined;
  if (mainProtocol === 'TLSv1.2' || mainProtocol === 'TLSv1.3') {
    // The same ClientHello on a plain TCP socket first: a refusal (the common answer) costs no TLS
    // socket; a ServerHello or anything unclear gets the full handshake, as before.
    const raw = await rawRange(common, contexts.legacy);
    const range = raw.result ?? (await handshake({ ...common, context: contexts.legacy, readChain: false }));
    // OpenSSL itself may refuse the rest of a server's legacy answer (a DH group under 1024 bits,
    // which OpenSSL 3 refuses even at security level 0; a malformed record): the server still chose
    // TLS 1.0/1.1, so it accepts it. Without this, the pinned pair below read OpenSSL's own alert
    // as the server's refusal: a false pass. The downgrade sentinel (see above) is such a case
    // too: the server chose TLS 1.0, so it accepts 1.0 and (RFC 5246 E.1) not 1.1.
    const chosen =
      !range.ok && range.stage === 'handshake' && range.alert && !range.peerAlert && raw.serverVersion !== undefined
        ? legacyVersions[raw.serverVersion]
        : undefined;
    if ((range.ok && range.protocol === 'TLSv1') || chosen === 'TLSv1') {
      tls10 = { accepted: true };
      tls11 = { accepted: false };
    } else if ((range.ok && range.protocol === 'TLSv1.1') || chosen === 'TLSv1.1') {
      tls11 = { accepted: true };
      tls10 = await pinnedAnswer(common, contexts.tls10, 0x0301);
    } else if (range.ok) {
      const error = `the server negotiated ${range.protocol ?? 'an unknown protocol'} when offered only TLS 1.0–1.1`;
      tls10 = { accepted: null, error };
      tls11 = { accepted: null, error };
    } else if (!(range.stage === 'handshake' && range.alert && !range.peerAlert)) {
      tls10 = legacyAnswer(range);
      tls11 = { ...tls10 };
    }
    // else: OpenSSL refused the server's answer; the pinned pair below decides.
  }
  if (!tls10 || !tls11) {
    [tls10, tls11] = await Promise.all([pinnedAnswer(common, contexts.tls10, 0x0301), pinnedAnswer(common, contexts.tls11, 0x0302)]);
  }
  if (tls10.ambiguous || tls11.ambiguous) {
    // The legacy attempt was cut without an alert. If a modern handshake on a fresh connection
    // still succeeds, the server is answering and the cut was its refusal of the old protocol;
    // otherwise we cannot tell, and say so.
    const control = await handshake({ ...common, context: contexts.main, readChain: false });
    for (const answer of [tls10, tls11]) {
      if (!answer.ambiguous) continue;
      if (control.ok) {
        answer.accepted = false;
        delete answer.error;
      } else answer.error = `${answer.error ?? 'connection cut'}, and a follow-up modern handshake failed too (${control.reason})`;
    }
  }
  const error = tls10.error ?? tls11.error;
  return { acceptsTls10: tls10.accepted, acceptsTls11: tls11.accepted, ...(error ? { error } : {}) };
}

// ---------------------------------------------------------------------------------------------
// Legacy-protocol verdicts, remembered per process

/** A TLS 1.0/1.1 verdict, and what the server looked like when it was taken. */
interface RememberedLegacy {
  acceptsTls10: boolean;
  acceptsTls11: boolean;
  observedAt: number;
  /** Fingerprints of the presented chain, and the main protocol, at the time: a change means a reconfigured server. */
  chain: string;
  protocol: string | undefined;
}

const rememberedLegacy = new Map<string, RememberedLegacy>();
/** Endpoints remembered at most; the oldest is forgotten first (and simply checked again). */
const maxRememberedLegacy = 10_000;

/** When a legacy verdict may be reused, from the probe's params. */
export interface LegacyPolicy {
  /** Reuse a verdict younger than this; 0 checks at every run. */
  maxAgeMs: number;
  /** The run's start (ctx.now): the age of a verdict is measured from it, and new verdicts carry it. */
  now: Date;
}

function legacyKey(common: Common): string {
  return `${common.host}\0${common.port}\0${common.sni ?? ''}`;
}

/**
 * A verdict for this endpoint that may stand in for new legacy handshakes: younger than the
 * policy allows, and taken while the server presented the same chain and negotiated the same
 * protocol (a new certificate or protocol often means a reconfigured server: check again).
 */
function reusableLegacy(key: string, chain: string, protocol: string | undefined, policy: LegacyPolicy): RememberedLegacy | undefined {
  const known = rememberedLegacy.get(key);
  if (!known) return undefined;
  const age = policy.now.getTime() - known.observedAt;
  if (age < 0 || age >= policy.maxAgeMs || known.chain !== chain || known.protocol !== protocol) return undefined;
  return known;
}

function rememberLegacy(key: string, verdict: RememberedLegacy): void {
  rememberedLegacy.delete(key);
  rememberedLegacy.set(key, verdict);
  if (rememberedLegacy.size > maxRememberedLegacy) rememberedLegacy.delete(rememberedLegacy.keys().next().value as string);
}

/** What observeEndpoint needs from its run. */
export interface ObserveOptions {
  store: TrustStore;
  contexts: HandshakeContexts;
  timeoutMs: number;
  sockets: SocketSet;
  legacy: LegacyPolicy;
  /** Where legacy checks wait for a slot: their own pool, so they never hold a main-handshake slot. */
  legacySlots: Limiter;
  /** The run's signal: a legacy check still queued when it aborts opens no connection. */
  signal: AbortSignal;
}

/**
 * Observes one endpoint: the main handshake (certificates, protocol, OpenSSL's verdict), then,
 * if it completed, whether the server accepts TLS 1.0 and 1.1 (see checkLegacy) — unless this
 * process checked it less than `legacy.maxAgeMs` ago on the same chain and protocol, in which
 * case that verdict is reported with the time it was observed (`legacyObservedAt`).
 *
 * Resolves as soon as the main handshake is over, so that the caller's slot goes to the next
 * endpoint's main handshake while this one's legacy check runs in `legacySlots`: on a real
 * network the two overlap, and a sweep takes about as long as its main handshakes alone.
 * `observation` resolves (never rejects) once the legacy check is done too.
 */
export async function observeEndpoint(endpoint: EndpointSpec, options: ObserveOptions): Promise<{ observation: Promise<EndpointObservation> }> {
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
  const common: Common = { host: endpoint.host, port: endpoint.port, sni, timeoutMs: options.timeoutMs, sockets: options.sockets };
  const main = await handshake({ ...common, context: options.contexts.main, readChain: true });
  const unreachable = (error: string): { observation: Promise<EndpointObservation> } => ({
    observation: Promise.resolve({ ...base, error, peerChain: [], anchors: [], acceptsTls10: null, acceptsTls11: null }),
  });
  if (!main.ok) return unreachable(main.reason);
  if (main.chain.length === 0) return unreachable('the server sent no certificate');

  const peerChain = main.chain.map((c) => c.b64);
  const key = legacyKey(common);
  const chainKey = main.chain.map((c) => c.fingerprint).join(',');
  const reused = reusableLegacy(key, chainKey, main.protocol, options.legacy);
  const checking: Promise<LegacyResult> = reused
    ? Promise.resolve({ acceptsTls10: reused.acceptsTls10, acceptsTls11: reused.acceptsTls11 })
    : options.legacySlots.run(() =>
        options.signal.aborted ? Promise.resolve({ acceptsTls10: null, acceptsTls11: null, error: 'aborted' }) : checkLegacy(common, options.contexts, main.protocol),
      );
  const legacyObservedAt = reused ? new Date(reused.observedAt) : options.legacy.now;

  let anchors: string[] = [];
  try {
    const presented = peerChain.map((b64) => certificateFromBase64(b64));
    anchors = anchorsFor(presented, options.store).map((c) => base64Of(c.fingerprint, c.der));
  } catch {
    // An unparsable certificate is judged (and reported) by assess.ts; no anchors to offer.
  }

  const observation = checking.then((legacy): EndpointObservation => {
    // Only a fresh verdict is remembered; "could not tell" is asked again next run.
    if (!reused && options.legacy.maxAgeMs > 0 && legacy.acceptsTls10 !== null && legacy.acceptsTls11 !== null) {
      rememberLegacy(key, {
        acceptsTls10: legacy.acceptsTls10,
        acceptsTls11: legacy.acceptsTls11,
        observedAt: options.legacy.now.getTime(),
        chain: chainKey,
        protocol: main.protocol,
      });
    }
    return {
      ...base,
      ...(main.protocol ? { protocol: main.protocol } : {}),
      ...(main.cipher ? { cipher: main.cipher } : {}),
      peerChain,
      anchors,
      tlsAuthorized: main.authorized,
      ...(main.authorizationError ? { tlsAuthorizationError: main.authorizationError } : {}),
      acceptsTls10: legacy.acceptsTls10,
      acceptsTls11: legacy.acceptsTls11,
      ...(legacy.error ? { legacyError: legacy.error } : {}),
      legacyObservedAt: legacyObservedAt.toISOString(),
    };
  });
  return { observation };
}

/** Runs tasks with at most `limit` in flight, in the order they were handed in. */
export class Limiter {
  private running = 0;
  private readonly queue: Array<() => void> = [];
  constructor(private readonly limit: number) {}

  run<T>(task: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const start = (): void => {
        this.running++;
        task()
          .then(resolve, reject)
          .finally(() => {
            this.running--;
            this.queue.shift()?.();
          });
      };
      if (this.running < this.limit) start();
      else this.queue.push(start);
    });
  }
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
