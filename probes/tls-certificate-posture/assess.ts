/**
 * The verdict on one endpoint: pure, synchronous, and clocked only by its `now` argument.
 * Everything wrong is listed in one line, each problem followed by how to fix it.
 */
import type { Finding } from '../../src/probe/contract.js';
import {
  buildChainCached,
  certificateFromBase64,
  certificateMatchesName,
  certificateNames,
  knownHashes,
  weakHashes,
  type Certificate,
  type ChainResult,
} from './chain.js';
import type { EndpointObservation } from './observation.js';

/** The params evaluate reads (see probe.ts for defaults). */
export interface AssessParams {
  minDaysValid: number;
  allowTls11: boolean;
  minRsaBits: number;
  minEcBits: number;
  /**
   * How long a TLS 1.0/1.1 verdict may be reused (collect re-checks when it is older). Evaluate
   * reports the protocols unknown when the verdict it is given is older than this plus
   * {@link legacyStaleGraceMs}. Undefined: the verdict's age is not judged (older observations).
   */
  legacyProtocolCheckHours?: number;
}

/**
 * Slack on top of `legacyProtocolCheckHours` before evaluate calls a legacy verdict stale: collect
 * decides on reuse at the start of a run and evaluate judges at its end, a run budget later.
 */
export const legacyStaleGraceMs = 3_600_000;

/** Machine-readable problem kinds, in `details.problems`. */
export type ProblemKind =
  | 'leaf-expired'
  | 'leaf-not-yet-valid'
  | 'leaf-expiring'
  | 'chain-expired'
  | 'chain-not-yet-valid'
  | 'chain-expiring'
  | 'hostname-mismatch'
  | 'untrusted-chain'
  | 'weak-key'
  | 'weak-signature'
  | 'tls10-accepted'
  | 'tls11-accepted';

interface Problem {
  kinds: ProblemKind[];
  text: string;
}

const DAY_MS = 86_400_000;

function isoDate(d: Date): string {
  return d.toISOString().slice(0, 10);
}

function days(n: number): string {
  return n === 1 ? '1 day' : `${n} days`;
}

function hashLabel(hash: string): string {
  return hash === 'sha1' ? 'SHA-1' : hash.toUpperCase();
}

const quote = (s: string): string => `"${s}"`;

/** Plain words and a fix for a chain failure found by our own path building. */
function chainProblem(result: ChainResult): { reason: string; fix: string } | undefined {
  const error = result.error;
  if (!error) return undefined;
  const cert = error.cert;
  const trustFix = "use a certificate from a publicly trusted CA, or add that root to the target's caFile";
  switch (error.code) {
    case 'CERT_HAS_EXPIRED':
    case 'CERT_NOT_YET_VALID':
      return undefined; // reported per certificate by the validity checks
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
      return {
        reason: 'certificate is self-signed',
        fix: "replace it with one issued by a trusted CA (or, for an internal service, add it to the target's caFile)",
      };
    case 'SELF_SIGNED_CERT_IN_CHAIN':
      return { reason: `chain ends at root ${quote(cert.subjectLabel)}, which is not trusted`, fix: trustFix };
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
      return {
        reason: `server does not send its intermediate certificate (issuer ${quote(cert.issuerLabel)} is neither sent nor trusted)`,
        fix: 'configure the full chain (certificate, then intermediates) on the server',
      };
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
      return {
        reason: `chain does not lead to a trusted root (${quote(cert.issuerLabel)}, issuer of ${quote(cert.subjectLabel)}, is neither sent nor trusted)`,
        fix: trustFix,
      };
    case 'CERT_SIGNATURE_FAILURE':
      return {
        reason: `signature of ${quote(cert.subjectLabel)} does not verify against its issuer`,
        fix: 'install the intermediates your CA issued with this certificate',
      };
    case 'INVALID_CA':
      return {
        reason: `${quote(cert.subjectLabel)} sits in the chain as an issuer but is not a CA certificate`,
        fix: 'install the intermediates your CA provides',
      };
    case 'CERT_CHAIN_TOO_LONG':
      return { reason: 'certificate chain is too long to build', fix: 'send only the certificate and its intermediates' };
  }
}

/** Plain words for OpenSSL's verification codes (Node's `authorizationError`). */
const opensslReasons: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'certificate is self-signed',
  SELF_SIGNED_CERT_IN_CHAIN: 'chain ends at a root that is not trusted',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'server does not send its intermediate certificate',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'chain does not lead to a trusted root',
  UNABLE_TO_GET_ISSUER_CERT: 'chain does not lead to a trusted root',
  CERT_SIGNATURE_FAILURE: 'a signature in the chain does not verify',
  INVALID_CA: 'a certificate in the chain acts as a CA but is not one',
  PATH_LENGTH_EXCEEDED: 'a CA in the chain issues deeper than its path length constraint allows',
  INVALID_PURPOSE: 'certificate is not valid for TLS server authentication (extended key usage)',
  UNHANDLED_CRITICAL_EXTENSION: 'a certificate in the chain has a critical extension TLS clients cannot process',
  PERMITTED_VIOLATION: "certificate names fall outside its CA's name constraints",
  EXCLUDED_VIOLATION: "certificate names are excluded by its CA's name constraints",
  CERT_CHAIN_TOO_LONG: 'certificate chain is too long',
  CERT_REVOKED: 'certificate is revoked',
  CERT_HAS_EXPIRED: 'a certificate in the chain has expired',
  CERT_NOT_YET_VALID: 'a certificate in the chain is not valid yet',
};

/** OpenSSL codes about time: judged by our own checks at `now`, not at collection time. */
const timeCodes = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CRL_HAS_EXPIRED', 'CRL_NOT_YET_VALID']);

function opensslReason(code: string): string {
  return opensslReasons[code] ?? `TLS verification failed (${code})`;
}

function unknownFinding(ep: EndpointObservation, reason: string): Finding {
  return {
    resource: ep.endpoint,
    outcome: 'unknown',
    message: `could not connect to ${ep.endpoint}: ${reason}`,
    details: { endpoint: ep.endpoint, expectedName: ep.expectedName, ...(ep.sni ? { sni: ep.sni } : {}), error: reason },
  };
}

function parseAll(b64s: readonly string[]): Certificate[] {
  return b64s.map((b64) => certificateFromBase64(b64));
}

/**
 * The TLS 1.0/1.1 verdicts evaluate may use at `now`: as observed, or both unknown when the
 * observation says they were checked longer ago than the params allow (or says so unreadably).
 */
function legacyVerdicts(
  ep: EndpointObservation,
  params: AssessParams,
  now: Date,
): { acceptsTls10: boolean | null; acceptsTls11: boolean | null; why: string | undefined } {
  const observed = { acceptsTls10: ep.acceptsTls10, acceptsTls11: ep.acceptsTls11, why: ep.legacyError };
  if (ep.legacyObservedAt === undefined || params.legacyProtocolCheckHours === undefined) return observed;
  const at = Date.parse(ep.legacyObservedAt);
  const maxAgeMs = params.legacyProtocolCheckHours * 3_600_000 + legacyStaleGraceMs;
  if (Number.isFinite(at) && now.getTime() - at <= maxAgeMs) return observed;
  const why = Number.isFinite(at)
    ? `last checked ${new Date(at).toISOString()}, longer ago than legacyProtocolCheckHours (${params.legacyProtocolCheckHours} h) allows`
    : 'the time of the last check cannot be read';
  return { acceptsTls10: null, acceptsTls11: null, why };
}

/** The judgement of one endpoint at `now`. */
export function assessEndpoint(ep: EndpointObservation, params: AssessParams, now: Date): Finding {
  if (ep.error !== undefined || ep.peerChain.length === 0) return unknownFinding(ep, ep.error ?? 'the server sent no certificate');
  let presented: Certificate[];
  let anchors: Certificate[];
  try {
    presented = parseAll(ep.peerChain);
    anchors = parseAll(ep.anchors);
  } catch (err) {
    return {
      resource: ep.endpoint,
      outcome: 'unknown',
      message: `${ep.endpoint}: the server sent a certificate that cannot be parsed (${(err as Error).message}): check what the server is configured to send`,
      details: { endpoint: ep.endpoint, expectedName: ep.expectedName, error: (err as Error).message },
    };
  }
  const leaf = presented[0] as Certificate;
  const result = buildChainCached({ leaf, intermediates: presented.slice(1), anchors, at: now });
  const anchorPrints = new Set(anchors.map((a) => a.fingerprint));
  // Expiry and strength are judged on the verified path; when there is none, on what the server sent.
  const judged = result.anchored ? result.chain : presented;

  const problems: Problem[] = [];
  const problem = (text: string, ...kinds: ProblemKind[]): void => {
    problems.push({ kinds, text });
  };
  const unknowns: string[] = [];
  const weak: string[] = [];

  // --- validity periods
  const t = now.getTime();
  judged.forEach((cert, index) => {
    const isLeaf = index === 0;
    const isRoot = !isLeaf && (anchorPrints.has(cert.fingerprint) || cert.selfSigned);
    const who = isLeaf ? 'certificate' : isRoot ? `root certificate ${quote(cert.subjectLabel)}` : `intermediate certificate ${quote(cert.subjectLabel)}`;
    const fix = isLeaf
      ? 'renew it'
      : isRoot
        ? 'move to a certificate chain under a current root'
        : 'install the intermediate your CA issues today';
    const left = cert.notAfter.getTime() - t;
    if (left < 0) {
      problem(`${who} expired on ${isoDate(cert.notAfter)} (${days(Math.floor(-left / DAY_MS))} ago): ${fix}`, isLeaf ? 'leaf-expired' : 'chain-expired');
    } else if (cert.notBefore.getTime() > t) {
      problem(`${who} is not valid before ${isoDate(cert.notBefore)}: check the clocks, or install a certificate valid now`, isLeaf ? 'leaf-not-yet-valid' : 'chain-not-yet-valid');
    } else if (left < params.minDaysValid * DAY_MS) {
      const n = Math.floor(left / DAY_MS);
      problem(`${who} expires ${n === 0 ? 'within a day' : `in ${days(n)}`} (${isoDate(cert.notAfter)}), under the ${params.minDaysValid}-day minimum: ${fix}`, isLeaf ? 'leaf-expiring' : 'chain-expiring');
    }
  });

  // --- trust
  let verified = result.ok;
  let verifyCode: string | undefined = result.ok ? undefined : result.error?.code;
  let verifyError: string | undefined;
  if (!result.ok) {
    const words = chainProblem(result);
    if (words) problem(`${words.reason}: ${words.fix}`, 'untrusted-chain');
    verifyError = words?.reason ?? opensslReason(verifyCode ?? '');
  } else if (ep.tlsAuthorized === false && ep.tlsAuthorizationError && !timeCodes.has(ep.tlsAuthorizationError)) {
    // Our path is fine but OpenSSL, which also checks path length, key usage, name constraints and
    // critical extensions, refused the chain during the handshake.
    verified = false;
    verifyCode = ep.tlsAuthorizationError;
    verifyError = opensslReason(ep.tlsAuthorizationError);
    problem(`${verifyError} (${verifyCode}): reissue the certificate through your CA and install the chain it provides`, 'untrusted-chain');
  }

  // --- name
  const hostnameOk = certificateMatchesName(leaf, ep.expectedName);
  const names = certificateNames(leaf);
  if (!hostnameOk) {
    const listed = names.length === 0 ? 'it has no subject alternative names' : `it names ${names.slice(0, 5).join(', ')}${names.length > 5 ? ` and ${names.length - 5} more` : ''}`;
    problem(`certificate is not valid for ${quote(ep.expectedName)} (${listed}): reissue it with ${quote(ep.expectedName)} among its subject alternative names`, 'hostname-mismatch');
  }

  // --- key and signature strength (anything vigil cannot classify is unknown, never strong): the leaf and the intermediates, not the trust anchor
  judged.forEach((cert, index) => {
    const isLeaf = index === 0;
    if (!isLeaf && (anchorPrints.has(cert.fingerprint) || cert.selfSigned)) return;
    const who = isLeaf ? 'certificate' : `intermediate certificate ${quote(cert.subjectLabel)}`;
    const label = isLeaf ? 'leaf' : `intermediate ${quote(cert.subjectLabel)}`;
    const key = cert.key;
    const keyFix = isLeaf ? 'reissue it with an RSA 2048+ or ECDSA P-256 key' : 'use a CA chain with stronger keys';
    if (key.type === 'RSA' && key.bits !== undefined && key.bits < params.minRsaBits) {
      problem(`${who} key is ${key.label}, under the ${params.minRsaBits}-bit minimum: ${keyFix}`, 'weak-key');
      weak.push(`${label} key ${key.label}`);
    } else if (key.type === 'EC' && key.bits !== undefined && key.bits < params.minEcBits) {
      problem(`${who} key is ${key.label}, under the ${params.minEcBits}-bit minimum: ${keyFix}`, 'weak-key');
      weak.push(`${label} key ${key.label}`);
    } else if (key.type === 'DSA') {
      problem(`${who} key is ${key.label}, which TLS clients no longer accept: ${keyFix}`, 'weak-key');
      weak.push(`${label} key ${key.label}`);
    } else if (!(key.type === 'Ed25519' || key.type === 'Ed448') && key.bits === undefined) {
      // A key vigil cannot size is not a strong key: say so instead of passing it.
      unknowns.push(`cannot judge the strength of the ${label} key (${key.label})`);
    }
    // A self-signed certificate's own signature protects nothing: nobody checks it against an issuer.
    const hash = cert.signature.hash;
    const eddsa = cert.signature.name === 'ED25519' || cert.signature.name === 'ED448';
    if (!cert.selfSigned && !eddsa && (hash === undefined || !knownHashes.has(hash))) {
      unknowns.push(`cannot judge the signature algorithm of the ${label} (${cert.signature.name})`);
    }
    if (!cert.selfSigned && hash !== undefined && weakHashes.has(hash)) {
      const sigFix = isLeaf ? 'reissue it with SHA-256' : 'install the SHA-256 intermediate your CA provides';
      problem(`${who} is signed with ${hashLabel(hash)} (${cert.signature.name}): ${sigFix}`, 'weak-signature');
      weak.push(`${label} signature ${cert.signature.name}`);
    }
  });

  // --- protocols
  const legacyAllowed = params.allowTls11;
  const legacy = legacyVerdicts(ep, params, now);
  if (legacy.acceptsTls10 === true && legacy.acceptsTls11 === true && !legacyAllowed) {
    problem('accepts TLS 1.0 and 1.1: disable TLS 1.0 and 1.1 on the server', 'tls10-accepted', 'tls11-accepted');
  } else {
    if (legacy.acceptsTls10 === true)
      problem(`accepts TLS 1.0: disable TLS 1.0${legacyAllowed ? '' : ' and 1.1'} on the server`, 'tls10-accepted');
    if (legacy.acceptsTls11 === true && !legacyAllowed)
      problem('accepts TLS 1.1: disable TLS 1.0 and 1.1 on the server', 'tls11-accepted');
  }
  const legacyWhy = legacy.why ? ` (${legacy.why})` : '';
  if (legacy.acceptsTls10 === null) unknowns.push(`could not tell whether it accepts TLS 1.0${legacyWhy}`);
  if (legacy.acceptsTls11 === null && !legacyAllowed) unknowns.push(`could not tell whether it accepts TLS 1.1${legacyWhy}`);

  // --- the earliest expiry: of the verified path, or of what the server sent
  const earliest = judged.reduce((a, b) => (b.notAfter.getTime() < a.notAfter.getTime() ? b : a));
  const details: Record<string, unknown> = {
    endpoint: ep.endpoint,
    expectedName: ep.expectedName,
    ...(ep.sni ? { sni: ep.sni } : {}),
    protocol: ep.protocol,
    cipher: ep.cipher,
    leafNotBefore: leaf.notBefore.toISOString(),
    leafNotAfter: leaf.notAfter.toISOString(),
    daysLeft: Math.floor((leaf.notAfter.getTime() - t) / DAY_MS),
    chainNotAfter: earliest.notAfter.toISOString(),
    chainNotAfterSubject: earliest.subjectLabel,
    chainSource: result.anchored ? 'verified' : 'presented',
    verified,
    verifyCode,
    verifyError,
    tlsAuthorizationError: ep.tlsAuthorizationError,
    hostnameOk,
    names,
    leafSubject: leaf.subjectLabel,
    leafIssuer: leaf.issuerLabel,
    leafKey: leaf.key.label,
    leafSignature: leaf.signature.name,
    chain: judged.map((c) => ({
      subject: c.subjectLabel,
      issuer: c.issuerLabel,
      notAfter: c.notAfter.toISOString(),
      key: c.key.label,
      signature: c.signature.name,
      trusted: anchorPrints.has(c.fingerprint),
    })),
    acceptsTls10: legacy.acceptsTls10,
    acceptsTls11: legacy.acceptsTls11,
    ...(ep.legacyObservedAt !== undefined ? { legacyCheckedAt: ep.legacyObservedAt } : {}),
    weak,
    problems: problems.flatMap((p) => p.kinds),
  };

  const texts = problems.map((p) => p.text);
  if (texts.length > 0) return { resource: ep.endpoint, outcome: 'fail', message: `${ep.endpoint}: ${texts.join('; ')}`, details };
  const summary = `certificate for ${ep.expectedName} valid until ${isoDate(leaf.notAfter)} (${days(Math.floor((leaf.notAfter.getTime() - t) / DAY_MS))}), chain trusted, ${ep.protocol ?? 'unknown protocol'}, ${leaf.key.label}`;
  if (unknowns.length > 0) return { resource: ep.endpoint, outcome: 'unknown', message: `${ep.endpoint}: ${unknowns.join('; ')}; otherwise ${summary}`, details };
  return { resource: ep.endpoint, outcome: 'pass', message: `${ep.endpoint}: ${summary}`, details };
}
