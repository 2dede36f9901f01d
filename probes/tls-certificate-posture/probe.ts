import { z } from 'zod';
import { defineProbe, type ProbeGauge, type ProbeResult } from '../../src/probe/contract.js';
import { assessEndpoint } from './assess.js';
// The handshake module (and with it node:tls, ~3 MiB on Node 20, ~9 on Node 24) is loaded by the
// first collect, not by the registry: config loading, `config check` and run-once on a config
// without a tls target never open a connection.
import type { EndpointSpec } from './handshake.js';
import type { TlsObservation } from './observation.js';

/**
 * Main handshakes of one target at once, and as many TLS 1.0/1.1 checks beside them: enough to
 * sweep hundreds of endpoints in seconds, few enough sockets (at most 32 + 64: an old server's
 * legacy check is two pinned handshakes at once). 32, as blackbox_exporter is scraped in the
 * benchmark (bench/tls-blackbox.ts).
 */
export const maxConcurrentEndpoints = 32;

/** The probe's params, validated at config load time. */
export const Params = z.strictObject({
  /** A certificate anywhere in the chain expiring sooner than this fails. Default 21 days. */
  minDaysValid: z.number().int().min(0).default(21),
  /** Accept TLS 1.1 (TLS 1.0 always fails). Default false. */
  allowTls11: z.boolean().default(false),
  /** Smallest RSA key for the leaf and intermediates. Default 2048. */
  minRsaBits: z.number().int().default(2048),
  /** Smallest EC key (curve size) for the leaf and intermediates. Default 256. */
  minEcBits: z.number().int().default(256),
  /** Time budget of one handshake, TCP connect included. Default 10 000 ms. */
  connectTimeoutMs: z.number().int().min(1).default(10_000),
  /**
   * How long a TLS 1.0/1.1 verdict is reused before the legacy handshakes are made again, in
   * hours; 0 checks at every run. The verdict is re-checked sooner when the endpoint presents
   * another chain or negotiates another protocol, and a process's first run always checks.
   * At most 24, so that no verdict is carried for more than a day. Default 24.
   */
  legacyProtocolCheckHours: z.number().min(0).max(24).default(24),
});
export type Params = z.output<typeof Params>;

/** A target: the endpoints of one `tls[]` entry and its extra trusted roots. */
export interface TlsTargetSpec {
  endpoints: EndpointSpec[];
  /** Absolute path of a PEM file of extra trusted roots (the config loader resolves it). */
  caFile: string | undefined;
}

/** Reads one number out of the details this probe writes, for each finding that has a certificate. */
function detailGauge(
  name: string,
  help: string,
  read: (details: Record<string, unknown>) => number | undefined,
): ProbeGauge {
  return {
    name,
    help,
    labelNames: ['endpoint'],
    fromResult(result: ProbeResult) {
      const out: Array<{ labels: Record<string, string>; value: number }> = [];
      for (const finding of result.findings) {
        const details = finding.details;
        if (!details || typeof details.leafNotAfter !== 'string') continue; // no certificate was read
        const value = read(details);
        if (value !== undefined && Number.isFinite(value)) out.push({ labels: { endpoint: finding.resource }, value });
      }
      return out;
    },
  };
}

const isoSeconds = (value: unknown): number | undefined =>
  typeof value === 'string' ? Date.parse(value) / 1000 : undefined;

export const probe = defineProbe<TlsTargetSpec, Params, TlsObservation>({
  id: 'tls-certificate-posture',
  title: 'TLS endpoints present a valid, trusted, strong certificate and no legacy protocol',
  source: 'tls',
  controls: ['tls-certificates'],
  schedule: '*/15 * * * *',
  docs: {
    checks:
      'For each configured endpoint: the certificate chain verifies against the system roots plus the target\'s caFile; ' +
      'the certificate is valid for the configured name (subject alternative names; SNI is sent except for IP literals); ' +
      'no certificate in the chain expires within `minDaysValid` days; leaf and intermediate keys are at least `minRsaBits` (RSA) / ' +
      '`minEcBits` (EC) and not signed with MD5 or SHA-1; the server refuses TLS 1.0, and TLS 1.1 unless `allowTls11` ' +
      '(checked at least every `legacyProtocolCheckHours`, and whenever the chain or protocol changes). ' +
      'An endpoint that cannot be reached is reported unknown, never pass.',
    permissions: 'none: it only opens TLS connections to the configured endpoints',
    remediation:
      'Renew certificates before the minimum; install the full chain (certificate, then intermediates); reissue with RSA 2048+ or ' +
      'ECDSA P-256 keys and SHA-256 signatures, with every served name in the subject alternative names; disable TLS 1.0 and 1.1. ' +
      'See probes/tls-certificate-posture/README.md for each failure message and its fix.',
  },
  params: Params,
  targets(config) {
    return config.tls.map((t) => ({ name: t.name, spec: { endpoints: t.endpoints, caFile: t.caFile } }));
  },
  async collect(ctx) {
    ctx.signal.throwIfAborted();
    const { createHandshakeContexts, Limiter, loadTrustStore, mapBounded, observeEndpoint, SocketSet } = await import('./handshake.js');
    const store = await loadTrustStore(ctx.target.spec.caFile);
    const contexts = createHandshakeContexts(store);
    const sockets = new SocketSet();
    const legacy = { maxAgeMs: ctx.params.legacyProtocolCheckHours * 3_600_000, now: ctx.now };
    const legacySlots = new Limiter(maxConcurrentEndpoints);
    const onAbort = (): void => sockets.abortAll();
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    try {
      const options = { store, contexts, timeoutMs: ctx.params.connectTimeoutMs, sockets, legacy, legacySlots, signal: ctx.signal };
      // Main handshakes take maxConcurrentEndpoints slots; each endpoint's legacy check then runs in
      // legacySlots while the next main handshake starts (see observeEndpoint).
      const started = await mapBounded(ctx.target.spec.endpoints, maxConcurrentEndpoints, async (endpoint) => {
        ctx.signal.throwIfAborted();
        return observeEndpoint(endpoint, options);
      });
      const endpoints = await Promise.all(started.map((s) => s.observation));
      ctx.signal.throwIfAborted();
      return { endpoints };
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
      sockets.abortAll();
    }
  },
  evaluate(observation, params, now) {
    return observation.endpoints.map((ep) => assessEndpoint(ep, params, now));
  },
  gauges: [
    detailGauge(
      'vigil_tls_certificate_expiry_timestamp_seconds',
      'When the leaf certificate of the endpoint expires (notAfter), unix seconds',
      (d) => isoSeconds(d.leafNotAfter),
    ),
    detailGauge(
      'vigil_tls_chain_expiry_timestamp_seconds',
      'When the first certificate of the endpoint\'s chain expires (earliest notAfter of the verified chain, else of the presented one), unix seconds',
      (d) => isoSeconds(d.chainNotAfter),
    ),
    detailGauge(
      'vigil_tls_verify_ok',
      '1 when the endpoint\'s certificate chain verifies against the trusted roots and names the endpoint, 0 when not (what a browser would accept)',
      (d) => (d.verified === true && d.hostnameOk === true ? 1 : 0),
    ),
  ],
});
