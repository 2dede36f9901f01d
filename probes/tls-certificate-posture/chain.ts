/**
 * Pure X.509 logic of the TLS probe: parse a certificate into the facts we judge, build and
 * verify a chain to a trust anchor at a given moment, match a host name. No I/O and no clock:
 * the time of validation is always an argument.
 *
 * Node 20's X509Certificate does the cryptography (signature checks, issuer matching, host
 * matching); the few fields it does not expose (signature algorithm, validity as dates) are read
 * from the DER with a minimal reader.
 */
import { X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';

// ---------------------------------------------------------------------------------------------
// Minimal DER reader

interface Tlv {
  tag: number;
  /** Offset of the content. */
  start: number;
  /** Offset just past the content. */
  end: number;
}

function readTlv(buf: Buffer, offset: number): Tlv {
  const tag = buf[offset];
  let lengthByte = buf[offset + 1];
  if (tag === undefined || lengthByte === undefined) throw new Error('truncated DER');
  let start = offset + 2;
  let length = lengthByte;
  if (lengthByte & 0x80) {
    const count = lengthByte & 0x7f;
    if (count === 0 || count > 4) throw new Error('unsupported DER length');
    length = 0;
    for (let i = 0; i < count; i++) {
      lengthByte = buf[start + i];
      if (lengthByte === undefined) throw new Error('truncated DER');
      length = length * 256 + lengthByte;
    }
    start += count;
  }
  const end = start + length;
  if (end > buf.length) throw new Error('truncated DER');
  return { tag, start, end };
}

/** The TLVs directly inside a constructed TLV. */
function children(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.start; at < parent.end; ) {
    const child = readTlv(buf, at);
    out.push(child);
    at = child.end;
  }
  return out;
}

function readOid(buf: Buffer, tlv: Tlv): string {
  if (tlv.tag !== 0x06) throw new Error('expected an OID');
  const bytes = buf.subarray(tlv.start, tlv.end);
  const first = bytes[0] ?? 0;
  const parts = [first < 80 ? Math.floor(first / 40) : 2, first < 80 ? first % 40 : first - 80];
  let value = 0;
  for (let i = 1; i < bytes.length; i++) {
    const b = bytes[i] ?? 0;
    value = value * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      parts.push(value);
      value = 0;
    }
  }
  return parts.join('.');
}

function readTime(buf: Buffer, tlv: Tlv): Date {
  const text = buf.toString('latin1', tlv.start, tlv.end);
  let m: RegExpExecArray | null;
  let year: number;
  if (tlv.tag === 0x17 && (m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?Z$/.exec(text))) {
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy; // RFC 5280 4.1.2.5.1
  } else if (tlv.tag === 0x18 && (m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?(?:\.\d+)?Z$/.exec(text))) {
    year = Number(m[1]);
  } else {
    throw new Error(`unsupported time "${text}"`);
  }
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0)));
}

// ---------------------------------------------------------------------------------------------
// Signature algorithms

/** OID → name, as OpenSSL prints them, with the hash each one uses. */
const signatureAlgorithms: Record<string, { name: string; hash: string | undefined }> = {
  '1.2.840.113549.1.1.2': { name: 'md2WithRSAEncryption', hash: 'md2' },
  '1.2.840.113549.1.1.3': { name: 'md4WithRSAEncryption', hash: 'md4' },
  '1.2.840.113549.1.1.4': { name: 'md5WithRSAEncryption', hash: 'md5' },
  '1.2.840.113549.1.1.5': { name: 'sha1WithRSAEncryption', hash: 'sha1' },
  '1.3.14.3.2.29': { name: 'sha1WithRSA', hash: 'sha1' },
  '1.2.840.113549.1.1.14': { name: 'sha224WithRSAEncryption', hash: 'sha224' },
  '1.2.840.113549.1.1.11': { name: 'sha256WithRSAEncryption', hash: 'sha256' },
  '1.2.840.113549.1.1.12': { name: 'sha384WithRSAEncryption', hash: 'sha384' },
  '1.2.840.113549.1.1.13': { name: 'sha512WithRSAEncryption', hash: 'sha512' },
  '1.2.840.113549.1.1.10': { name: 'rsassaPss', hash: undefined }, // hash read from the parameters
  '1.2.840.10045.4.1': { name: 'ecdsa-with-SHA1', hash: 'sha1' },
  '1.2.840.10045.4.3.1': { name: 'ecdsa-with-SHA224', hash: 'sha224' },
  '1.2.840.10045.4.3.2': { name: 'ecdsa-with-SHA256', hash: 'sha256' },
  '1.2.840.10045.4.3.3': { name: 'ecdsa-with-SHA384', hash: 'sha384' },
  '1.2.840.10045.4.3.4': { name: 'ecdsa-with-SHA512', hash: 'sha512' },
  '1.2.840.10040.4.3': { name: 'dsa-with-SHA1', hash: 'sha1' },
  '2.16.840.1.101.3.4.3.1': { name: 'dsa-with-SHA224', hash: 'sha224' },
  '2.16.840.1.101.3.4.3.2': { name: 'dsa-with-SHA256', hash: 'sha256' },
  '1.3.101.112': { name: 'ED25519', hash: undefined },
  '1.3.101.113': { name: 'ED448', hash: undefined },
};

const hashOids: Record<string, string> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.4': 'sha224',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
  '1.2.840.113549.2.5': 'md5',
};

/** Hashes vigil can classify; a signature over anything else is judged unknown. */
export const knownHashes: ReadonlySet<string> = new Set(['md2', 'md4', 'md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512']);

/** Hashes that no longer resist collisions: a signature over them can be forged. */
export const weakHashes: ReadonlySet<string> = new Set(['md2', 'md4', 'md5', 'sha1']);

/** The signature algorithm of a certificate (what its issuer signed it with). */
export interface SignatureAlgorithm {
  oid: string;
  /** OpenSSL's name, e.g. `sha256WithRSAEncryption`; the OID when unknown. */
  name: string;
  /** Hash used, lower case (`sha1`, `sha256`…); undefined for Ed25519/Ed448 and unknown algorithms. */
  hash: string | undefined;
}

function readSignatureAlgorithm(der: Buffer, algorithm: Tlv): SignatureAlgorithm {
  const [idTlv, params] = children(der, algorithm);
  if (!idTlv) throw new Error('empty AlgorithmIdentifier');
  const id = readOid(der, idTlv);
  const known = signatureAlgorithms[id];
  if (!known) return { oid: id, name: id, hash: undefined };
  if (id !== '1.2.840.113549.1.1.10') return { oid: id, ...known };
  // RSASSA-PSS-params: hashAlgorithm [0] defaults to SHA-1 (RFC 4055 3.1).
  let hash = 'sha1';
  if (params?.tag === 0x30) {
    const hashField = children(der, params).find((t) => t.tag === 0xa0);
    const hashAlg = hashField ? children(der, hashField)[0] : undefined;
    const hashId = hashAlg ? children(der, hashAlg)[0] : undefined;
    if (hashId) hash = hashOids[readOid(der, hashId)] ?? readOid(der, hashId);
  }
  return { oid: id, name: `rsassaPss(${hash})`, hash };
}

// ---------------------------------------------------------------------------------------------
// Certificates

/** A certificate's public key, as the probe judges it. */
export interface KeyInfo {
  /** `RSA`, `EC`, `Ed25519`, `Ed448`, `DSA`, or the type Node reports. */
  type: string;
  /** Modulus length (RSA, DSA) or curve size (EC); undefined when not applicable. */
  bits: number | undefined;
  /** e.g. `RSA 2048`, `EC P-256`, `Ed25519`. */
  label: string;
}

/** A parsed certificate with the facts the probe judges. */
export interface Certificate {
  x509: X509Certificate;
  der: Buffer;
  /** SHA-256 of the DER, hex, as Node prints it (AA:BB:…). */
  fingerprint: string;
  /** Distinguished names, as Node prints them (one RDN a line). */
  subject: string;
  issuer: string;
  /** Short names for messages: the CN, or the first RDN, or `(no subject)`. */
  subjectLabel: string;
  issuerLabel: string;
  notBefore: Date;
  notAfter: Date;
  signature: SignatureAlgorithm;
  key: KeyInfo;
  /** basicConstraints cA. */
  isCa: boolean;
  /** Subject and issuer are the same name. */
  selfIssued: boolean;
  /** Self-issued and its signature verifies with its own key (a root, or a self-signed leaf). */
  selfSigned: boolean;
  /** The public key, created once (X509Certificate.publicKey makes a new object each call). */
  publicKey: KeyObject | undefined;
}

const curveBits: Record<string, { bits: number; name: string }> = {
  prime192v1: { bits: 192, name: 'P-192' },
  secp224r1: { bits: 224, name: 'P-224' },
  prime256v1: { bits: 256, name: 'P-256' },
  secp384r1: { bits: 384, name: 'P-384' },
  secp521r1: { bits: 521, name: 'P-521' },
  secp256k1: { bits: 256, name: 'secp256k1' },
};

function keyInfo(key: KeyObject | undefined): KeyInfo {
  if (!key) return { type: 'unknown', bits: undefined, label: 'unknown key' };
  const type = key.asymmetricKeyType ?? 'unknown';
  const details = key.asymmetricKeyDetails ?? {};
  switch (type) {
    case 'rsa':
    case 'rsa-pss':
      return { type: 'RSA', bits: details.modulusLength, label: `RSA ${details.modulusLength ?? '?'}` };
    case 'dsa':
      return { type: 'DSA', bits: details.modulusLength, label: `DSA ${details.modulusLength ?? '?'}` };
    case 'ec': {
      const curve = details.namedCurve ?? 'unknown curve';
      const known = curveBits[curve];
      return { type: 'EC', bits: known?.bits, label: `EC ${known?.name ?? curve}` };
    }
    case 'ed25519':
      return { type: 'Ed25519', bits: 256, label: 'Ed25519' };
    case 'ed448':
      return { type: 'Ed448', bits: 456, label: 'Ed448' };
    default:
      return { type, bits: undefined, label: type };
  }
}

function nameLabel(dn: string): string {
  const lines = dn.split('\n').filter((l) => l.length > 0);
  const cn = lines.find((l) => l.startsWith('CN='));
  if (cn) return cn.slice(3);
  return lines[lines.length - 1] ?? '(no subject)';
}

/** Parses one DER certificate. Throws when it is not a certificate. */
export function parseCertificate(der: Buffer): Certificate {
  const x509 = new X509Certificate(der);
  const raw = x509.raw;
  const cert = readTlv(raw, 0);
  const [tbs, sigAlg] = children(raw, cert);
  if (!tbs || !sigAlg) throw new Error('not a certificate');
  const tbsFields = children(raw, tbs);
  const skip = tbsFields[0]?.tag === 0xa0 ? 1 : 0; // optional [0] version
  const validity = tbsFields[skip + 3];
  if (!validity) throw new Error('certificate has no validity');
  const [notBefore, notAfter] = children(raw, validity);
  if (!notBefore || !notAfter) throw new Error('certificate has no validity');
  let publicKey: KeyObject | undefined;
  try {
    publicKey = x509.publicKey;
  } catch {
    publicKey = undefined; // an algorithm OpenSSL cannot load: reported as an unknown key
  }
  const selfIssued = x509.subject === x509.issuer;
  // Checked on first use: a trust store holds ~150 self-issued roots, and verifying each root's
  // own signature up front (a public-key operation each) would cost every process tens of ms.
  let selfSigned: boolean | undefined;
  const verifySelf = (): boolean => {
    if (!selfIssued || !publicKey) return false;
    try {
      return x509.verify(publicKey);
    } catch {
      return false;
    }
  };
  return {
    x509,
    der: raw,
    fingerprint: x509.fingerprint256,
    subject: x509.subject,
    issuer: x509.issuer,
    subjectLabel: nameLabel(x509.subject),
    issuerLabel: nameLabel(x509.issuer),
    notBefore: readTime(raw, notBefore),
    notAfter: readTime(raw, notAfter),
    signature: readSignatureAlgorithm(raw, sigAlg),
    key: keyInfo(publicKey),
    isCa: x509.ca,
    selfIssued,
    get selfSigned(): boolean {
      selfSigned ??= verifySelf();
      return selfSigned;
    },
    publicKey,
  };
}

/**
 * A bounded map that forgets the least recently used entry first, bounded both in entries and in
 * total weight (e.g. bytes), so that a server sending huge or ever-new certificates cannot make
 * it hold more than its budget.
 */
export class LruMap<V> {
  private readonly map = new Map<string, { value: V; weight: number }>();
  private total = 0;
  constructor(
    private readonly maxEntries: number,
    private readonly maxWeight: number,
    private readonly weigh: (key: string, value: V) => number,
  ) {}
  get(key: string): V | undefined {
    const entry = this.map.get(key);
    if (entry === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, entry);
    return entry.value;
  }
  set(key: string, value: V): void {
    const weight = this.weigh(key, value);
    if (weight > this.maxWeight) return; // never worth evicting everything else for
    this.delete(key);
    this.map.set(key, { value, weight });
    this.total += weight;
    while (this.map.size > this.maxEntries || this.total > this.maxWeight) this.delete(this.map.keys().next().value as string);
  }
  private delete(key: string): void {
    const entry = this.map.get(key);
    if (entry === undefined) return;
    this.map.delete(key);
    this.total -= entry.weight;
  }
}

/**
 * Certificates already parsed in this process, by their base64 DER. A certificate is a pure
 * function of its bytes, so the cache can only answer what parsing would: endpoints behind one
 * CA share intermediates and roots, collect and evaluate of one run see the same leaves, and a
 * daemon sees them again every run. Bounded to 4096 certificates and 8 MiB of base64 (about
 * 2.5 times that in memory, with the native X.509 and key objects): ~2,000 typical ones.
 */
const parsedCertificates = new LruMap<Certificate>(4096, 8 * 1024 * 1024, (b64) => b64.length);

/**
 * {@link parseCertificate} of base64 DER, through the per-process cache. The result is frozen
 * (shared between callers). Throws, and caches nothing, when it is not a certificate.
 */
export function certificateFromBase64(b64: string): Certificate {
  const hit = parsedCertificates.get(b64);
  if (hit) return hit;
  const cert = Object.freeze(parseCertificate(Buffer.from(b64, 'base64')));
  parsedCertificates.set(b64, cert);
  return cert;
}

/** Parses every certificate of a PEM bundle (e.g. a caFile); text outside the blocks is ignored. */
export function parsePemBundle(pem: string): Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((block) => parseCertificate(new X509Certificate(block).raw));
}

// ---------------------------------------------------------------------------------------------
// Chains

/** Why a chain did not verify, named after OpenSSL's codes so operators recognise them. */
export type ChainErrorCode =
  | 'CERT_HAS_EXPIRED'
  | 'CERT_NOT_YET_VALID'
  | 'DEPTH_ZERO_SELF_SIGNED_CERT'
  | 'SELF_SIGNED_CERT_IN_CHAIN'
  | 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'
  | 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'
  | 'CERT_SIGNATURE_FAILURE'
  | 'INVALID_CA'
  | 'CERT_CHAIN_TOO_LONG';

/** The outcome of building a chain from a leaf to a trust anchor. */
export interface ChainResult {
  /** A path to a trust anchor exists and every certificate on it is valid at the given time. */
  ok: boolean;
  /** The path, leaf first: up to the trust anchor when `anchored`, else as far as it could be built. */
  chain: Certificate[];
  /** The path ends at a trust anchor (it may still contain expired certificates). */
  anchored: boolean;
  /** Why it did not verify, and the certificate concerned. */
  error?: { code: ChainErrorCode; cert: Certificate };
}

/** Inputs of chain building. */
export interface ChainInput {
  leaf: Certificate;
  /** Certificates the server sent after the leaf, in any order; untrusted. */
  intermediates: readonly Certificate[];
  /** Trusted certificates (system roots and the caFile). Any of them may end a chain. */
  anchors: readonly Certificate[];
  /** The moment of validation. */
  at: Date;
  /** Certificates allowed above the leaf. Default 10. */
  maxDepth?: number;
}

function timeError(chain: readonly Certificate[], at: Date): ChainResult['error'] {
  const t = at.getTime();
  for (const cert of chain) {
    if (cert.notAfter.getTime() < t) return { code: 'CERT_HAS_EXPIRED', cert };
    if (cert.notBefore.getTime() > t) return { code: 'CERT_NOT_YET_VALID', cert };
  }
  return undefined;
}

function signedBy(cert: Certificate, issuer: Certificate): boolean {
  if (!issuer.publicKey) return false;
  try {
    return cert.x509.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/**
 * Builds a path from the leaf to a trust anchor and verifies it at `at`.
 *
 * Depth-first over every candidate issuer (trust anchors first), so that a server sending an
 * expired cross-certificate next to a valid path (the "chain of pain") still verifies: the first
 * path whose certificates are all within their validity wins. An issuer must match by name and
 * key identifier and key usage (OpenSSL's X509_check_issued), carry a signature that verifies,
 * and — unless it is a trust anchor — be a CA. A certificate (or another certificate with the same
 * subject and key) never appears twice on a path, so cycles end.
 *
 * When no path verifies, the result says why, preferring a path that reaches an anchor (then the
 * failure is the validity period), else the longest path and what stopped it.
 */
export function buildChain(input: ChainInput): ChainResult {
  const { leaf, at } = input;
  const maxDepth = input.maxDepth ?? 10;
  const anchorFingerprints = new Set(input.anchors.map((a) => a.fingerprint));
  const pool: Certificate[] = [];
  const seen = new Set<string>();
  for (const cert of [...input.anchors, ...input.intermediates]) {
    if (seen.has(cert.fingerprint)) continue;
    seen.add(cert.fingerprint);
    pool.push(cert);
  }

  let firstAnchored: Certificate[] | undefined;
  let best: { chain: Certificate[]; code: ChainErrorCode; cert: Certificate } | undefined;
  let budget = 5_000; // issuer checks; no honest chain comes close
  let done: Certificate[] | undefined;

  const deadEnd = (chain: Certificate[], code: ChainErrorCode, cert: Certificate): void => {
    if (!best || chain.length > best.chain.length) best = { chain, code, cert };
  };

  const extend = (path: Certificate[]): void => {
    if (done) return;
    const current = path[path.length - 1] as Certificate;
    if (anchorFingerprints.has(current.fingerprint)) {
      if (!timeError(path, at)) done = path;
      else firstAnchored ??= path;
      return;
    }
    if (path.length > maxDepth + 1) {
      deadEnd(path, 'CERT_CHAIN_TOO_LONG', current);
      return;
    }
    let extended = false;
    let rejected: { code: ChainErrorCode; cert: Certificate } | undefined;
    for (const candidate of pool) {
      if (done || --budget < 0) return;
      const onPath = path.some(
        (p) =>
          p.fingerprint === candidate.fingerprint ||
          (p.subject === candidate.subject && p.publicKey !== undefined && candidate.publicKey !== undefined && p.publicKey.equals(candidate.publicKey)),
      );
      if (onPath) continue;
      if (!current.x509.checkIssued(candidate.x509)) continue;
      const isAnchor = anchorFingerprints.has(candidate.fingerprint);
      if (!isAnchor && !candidate.isCa) {
        rejected ??= { code: 'INVALID_CA', cert: candidate };
        continue;
      }
      if (!signedBy(current, candidate)) {
        rejected = { code: 'CERT_SIGNATURE_FAILURE', cert: current };
        continue;
      }
      extended = true;
      extend([...path, candidate]);
    }
    if (extended) return;
    if (rejected) deadEnd(path, rejected.code, rejected.cert);
    else if (current.selfSigned)
      deadEnd(path, path.length === 1 ? 'DEPTH_ZERO_SELF_SIGNED_CERT' : 'SELF_SIGNED_CERT_IN_CHAIN', current);
    else deadEnd(path, path.length === 1 ? 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' : 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', current);
  };

  extend([leaf]);
  if (done) return { ok: true, chain: done, anchored: true };
  if (firstAnchored) return { ok: false, chain: firstAnchored, anchored: true, error: timeError(firstAnchored, at) };
  const fallback = best ?? { chain: [leaf], code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' as const, cert: leaf };
  return { ok: false, chain: fallback.chain, anchored: false, error: { code: fallback.code, cert: fallback.cert } };
}

/** A chain verdict by fingerprints: it holds no certificate, so it keeps none alive. */
interface RememberedChain {
  ok: boolean;
  anchored: boolean;
  chain: readonly string[];
  error?: { code: ChainErrorCode; cert: string };
}

/**
 * Chain verdicts already computed in this process. {@link buildChain} depends on its inputs only
 * through the certificates (by fingerprint, in order), `maxDepth`, and — for the validation time —
 * whether each certificate is expired, not yet valid, or valid at `at`: the key is exactly that,
 * so a cached verdict is the verdict buildChain would give. A certificate that changes changes
 * the key; time moving past a notBefore or notAfter changes it too.
 */
const chainVerdicts = new LruMap<RememberedChain>(4096, 4 * 1024 * 1024, (key) => key.length * 2);

function chainKey(input: ChainInput): string {
  const t = input.at.getTime();
  const part = (certs: readonly Certificate[]): string =>
    certs.map((c) => `${c.fingerprint}${c.notAfter.getTime() < t ? 'x' : c.notBefore.getTime() > t ? 'n' : 'v'}`).join(',');
  return `${input.maxDepth ?? 10}|${part([input.leaf])}|${part(input.intermediates)}|${part(input.anchors)}`;
}

/** {@link buildChain}, remembered per process by {@link chainKey}: the same answer, computed once. */
export function buildChainCached(input: ChainInput): ChainResult {
  const key = chainKey(input);
  const hit = chainVerdicts.get(key);
  if (hit) {
    // Every certificate of a verdict comes from its input, and the key names them all.
    const byPrint = new Map([input.leaf, ...input.intermediates, ...input.anchors].map((c) => [c.fingerprint, c]));
    const cert = (print: string): Certificate => byPrint.get(print) as Certificate;
    return {
      ok: hit.ok,
      anchored: hit.anchored,
      chain: hit.chain.map(cert),
      ...(hit.error ? { error: { code: hit.error.code, cert: cert(hit.error.cert) } } : {}),
    };
  }
  const result = buildChain(input);
  chainVerdicts.set(key, {
    ok: result.ok,
    anchored: result.anchored,
    chain: result.chain.map((c) => c.fingerprint),
    ...(result.error ? { error: { code: result.error.code, cert: result.error.cert.fingerprint } } : {}),
  });
  return result;
}

// ---------------------------------------------------------------------------------------------
// Names

/**
 * Whether the certificate is valid for `name` (a DNS name or an IP literal), the way browsers
 * decide (RFC 6125 / CA/B Forum): subject alternative names only, never the subject CN; a
 * wildcard only as the whole left-most label, matching exactly one label.
 */
export function certificateMatchesName(cert: Certificate, name: string): boolean {
  if (isIP(name)) return cert.x509.checkIP(name) !== undefined;
  return (
    cert.x509.checkHost(name, {
      subject: 'never',
      wildcards: true,
      partialWildcards: false,
      multiLabelWildcards: false,
      singleLabelSubdomains: false,
    }) !== undefined
  );
}

/** The DNS names and IP addresses a certificate is valid for, from its subject alternative names. */
export function certificateNames(cert: Certificate): string[] {
  const san = cert.x509.subjectAltName;
  if (!san) return [];
  const out: string[] = [];
  // Node prints `DNS:a.example, IP Address:192.0.2.1`; values with commas are quoted JSON strings.
  for (const m of san.matchAll(/(DNS|IP Address):("(?:[^"\\]|\\.)*"|[^,]*)/g)) {
    const raw = (m[2] ?? '').trim();
    out.push(raw.startsWith('"') ? (JSON.parse(raw) as string) : raw);
  }
  return out;
}
