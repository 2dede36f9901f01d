/**
 * Test certificates, built byte by byte: a small DER writer for X.509 v3 certificates, signed
 * with Node's crypto. No openssl CLI and no dependency, and full control over what the TLS
 * probe judges: validity dates (also in the past), key type and size, signature hash (SHA-1,
 * MD5), subject alternative names, CA flag.
 *
 * Keys are the slow part (RSA-2048 takes ~350 ms on two cores), so they are cached in memory and
 * on disk under the OS temp dir: a role (`keySlot`) always gets the same key.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  X509Certificate,
  type KeyObject,
} from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Key algorithm and size of a test certificate. */
export type KeySpec =
  | { type: 'rsa'; bits: number }
  | { type: 'ec'; curve: 'P-256' | 'P-384' | 'P-521' }
  | { type: 'ed25519' };

/** Hash the issuer signs with. `md5` and `sha1` exist to test that the probe flags them. */
export type SignatureHash = 'sha256' | 'sha384' | 'sha512' | 'sha1' | 'md5';

/** What to put in a certificate. Everything but `commonName` has a sensible default. */
export interface CertificateSpec {
  commonName: string;
  organization?: string;
  /** Default RSA 2048. */
  key?: KeySpec;
  /** Name of the cached key to use; certificates with the same slot and key spec share a key. Default: `commonName`. */
  keySlot?: string;
  /** The CA that signs it. Default: self-signed. */
  issuer?: TestCertificate;
  /** Default: one hour before now. */
  notBefore?: Date;
  /** Default: 90 days after now. */
  notAfter?: Date;
  /** Default sha256. */
  hash?: SignatureHash;
  /** DNS names and IP literals (told apart with net.isIP). */
  altNames?: string[];
  /** A CA certificate (basicConstraints cA, keyCertSign). Default false. */
  ca?: boolean;
  /** Decimal or bigint serial. Default: random. */
  serial?: bigint;
}

/** A generated certificate with its key, in the forms tests need. */
export interface TestCertificate {
  spec: CertificateSpec;
  /** PEM of the certificate alone. */
  pem: string;
  der: Buffer;
  /** PKCS#8 PEM of the private key. */
  keyPem: string;
  privateKey: KeyObject;
  x509: X509Certificate;
  /** DER of the subject Name, used as the issuer of certificates this one signs. */
  subjectName: Buffer;
  /** Subject key identifier, used as the authority key identifier of certificates this one signs. */
  keyId: Buffer;
}

// ---------------------------------------------------------------------------------------------
// DER writer

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

const seq = (...parts: Buffer[]): Buffer => tlv(0x30, ...parts);
const set = (...parts: Buffer[]): Buffer => tlv(0x31, ...parts);
const octets = (b: Buffer): Buffer => tlv(0x04, b);
const bitString = (b: Buffer, unusedBits = 0): Buffer => tlv(0x03, Buffer.from([unusedBits]), b);
const derNull = (): Buffer => Buffer.from([0x05, 0x00]);
const derTrue = (): Buffer => Buffer.from([0x01, 0x01, 0xff]);
const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 + n, inner);

function integer(value: bigint): Buffer {
  let hex = value.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let bytes = Buffer.from(hex, 'hex');
  if ((bytes[0] ?? 0) & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return tlv(0x02, bytes);
}

function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const [a = 0, b = 0, ...rest] = parts;
  const out = [a * 40 + b];
  for (const p of rest) {
    const chunk: number[] = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

/** UTCTime for 1950–2049, GeneralizedTime otherwise (RFC 5280 4.1.2.5). */
function time(d: Date): Buffer {
  const iso = d.toISOString(); // 2026-11-22T06:03:00.000Z
  const digits = iso.slice(0, 19).replace(/[-:T]/g, '');
  const year = d.getUTCFullYear();
  if (year >= 1950 && year < 2050) return tlv(0x17, Buffer.from(`${digits.slice(2)}Z`, 'ascii'));
  return tlv(0x18, Buffer.from(`${digits}Z`, 'ascii'));
}

function name(commonName: string, organization?: string): Buffer {
  const rdn = (type: string, value: string): Buffer => set(seq(oid(type), tlv(0x0c, Buffer.from(value, 'utf8'))));
  const rdns = organization ? [rdn('2.5.4.10', organization), rdn('2.5.4.3', commonName)] : [rdn('2.5.4.3', commonName)];
  return seq(...rdns);
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), derTrue(), octets(value)) : seq(oid(id), octets(value));
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  // IPv6: expand "::" and write 8 groups.
  const [head = '', tail] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail === undefined ? [] : tail ? tail.split(':') : [];
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function signatureAlgorithm(key: KeyObject, hash: SignatureHash): { algorithm: Buffer; digest: string | null } {
  if (key.asymmetricKeyType === 'ed25519') return { algorithm: seq(oid('1.3.101.112')), digest: null };
  if (key.asymmetricKeyType === 'ec') {
    const ids: Record<SignatureHash, string> = {
      sha1: '1.2.840.10045.4.1',
      sha256: '1.2.840.10045.4.3.2',
      sha384: '1.2.840.10045.4.3.3',
      sha512: '1.2.840.10045.4.3.4',
      md5: '1.2.840.10045.4.1', // no ECDSA-with-MD5 exists; never asked for in tests
    };
    return { algorithm: seq(oid(ids[hash])), digest: hash };
  }
  const ids: Record<SignatureHash, string> = {
    md5: '1.2.840.113549.1.1.4',
    sha1: '1.2.840.113549.1.1.5',
    sha256: '1.2.840.113549.1.1.11',
    sha384: '1.2.840.113549.1.1.12',
    sha512: '1.2.840.113549.1.1.13',
  };
  return { algorithm: seq(oid(ids[hash]), derNull()), digest: hash };
}

// ---------------------------------------------------------------------------------------------
// Keys

const keyCache = new Map<string, KeyObject>();
const keyDir = join(tmpdir(), 'vigil-test-keys-v1');

function keyLabel(spec: KeySpec): string {
  if (spec.type === 'rsa') return `rsa${spec.bits}`;
  if (spec.type === 'ec') return `ec-${spec.curve}`;
  return 'ed25519';
}

/** The private key for a slot, generated once and then reused from memory or the disk cache. */
export function testKey(spec: KeySpec, slot: string): KeyObject {
  const id = `${keyLabel(spec)}-${slot.replace(/[^a-z0-9_-]+/gi, '_')}`;
  const cached = keyCache.get(id);
  if (cached) return cached;
  const file = join(keyDir, `${id}.pem`);
  let key: KeyObject | undefined;
  try {
    key = createPrivateKey(readFileSync(file, 'utf8'));
  } catch {
    key = undefined;
  }
  if (!key) {
    key =
      spec.type === 'rsa'
        ? generateKeyPairSync('rsa', { modulusLength: spec.bits }).privateKey
        : spec.type === 'ec'
          ? generateKeyPairSync('ec', { namedCurve: spec.curve }).privateKey
          : generateKeyPairSync('ed25519').privateKey;
    try {
      mkdirSync(keyDir, { recursive: true });
      // Write then rename, so a parallel test worker never reads half a key.
      const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}`;
      writeFileSync(tmp, key.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      renameSync(tmp, file);
    } catch {
      // A read-only temp dir only costs speed.
    }
  }
  keyCache.set(id, key);
  return key;
}

// ---------------------------------------------------------------------------------------------
// Certificates

const DAY = 86_400_000;

/** Builds and signs one certificate. */
export function createCertificate(spec: CertificateSpec): TestCertificate {
  const keySpec = spec.key ?? { type: 'rsa', bits: 2048 };
  const privateKey = testKey(keySpec, spec.keySlot ?? spec.commonName);
  const spki = createPublicKeyDer(privateKey);
  const keyId = createHash('sha1').update(spki).digest();
  const subjectName = name(spec.commonName, spec.organization);
  const issuer = spec.issuer;
  const signerKey = issuer ? issuer.privateKey : privateKey;
  const issuerName = issuer ? issuer.subjectName : subjectName;
  const authorityKeyId = issuer ? issuer.keyId : keyId;
  const now = Date.now();
  const notBefore = spec.notBefore ?? new Date(now - 3_600_000);
  const notAfter = spec.notAfter ?? new Date(now + 90 * DAY);
  const { algorithm, digest } = signatureAlgorithm(signerKey, spec.hash ?? 'sha256');

  const isRsa = privateKey.asymmetricKeyType === 'rsa';
  const extensions: Buffer[] = [
    extension('2.5.29.19', true, spec.ca ? seq(derTrue()) : seq()),
    // keyUsage: CA → keyCertSign|cRLSign; leaf → digitalSignature (+ keyEncipherment for RSA key exchange).
    extension(
      '2.5.29.15',
      true,
      spec.ca ? bitString(Buffer.from([0x06]), 1) : isRsa ? bitString(Buffer.from([0xa0]), 5) : bitString(Buffer.from([0x80]), 7),
    ),
    extension('2.5.29.14', false, octets(keyId)),
    extension('2.5.29.35', false, seq(tlv(0x80, authorityKeyId))),
  ];
  if (!spec.ca) extensions.push(extension('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'))));
  if (spec.altNames?.length) {
    const names = spec.altNames.map((n) => (isIP(n) ? tlv(0x87, ipBytes(n)) : tlv(0x82, Buffer.from(n, 'ascii'))));
    extensions.push(extension('2.5.29.17', false, seq(...names)));
  }

  const serial = spec.serial ?? BigInt(`0x${createHash('sha256').update(`${spec.commonName}${now}${Math.random()}`).digest('hex').slice(0, 30)}`);
  const tbs = seq(
    explicit(0, integer(2n)),
    integer(serial),
    algorithm,
    issuerName,
    seq(time(notBefore), time(notAfter)),
    subjectName,
    spki,
    explicit(3, seq(...extensions)),
  );
  const signature = sign(digest, tbs, signerKey);
  const der = seq(tbs, algorithm, bitString(signature));
  const pem = toPem(der);
  return {
    spec,
    pem,
    der,
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    privateKey,
    x509: new X509Certificate(der),
    subjectName,
    keyId,
  };
}

/** The SubjectPublicKeyInfo DER of a key pair: exactly what goes into the certificate. */
function createPublicKeyDer(privateKey: KeyObject): Buffer {
  return Buffer.from(createPublicKey(privateKey).export({ type: 'spki', format: 'der' }));
}

/** PEM text of a DER certificate. */
export function toPem(der: Buffer): string {
  const b64 = der.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}-----END CERTIFICATE-----\n`;
}

/** Concatenated PEMs, in the order given (a server chain is leaf first). */
export function pemChain(...certs: TestCertificate[]): string {
  return certs.map((c) => c.pem).join('');
}

/** A root → intermediate → leaf hierarchy, valid now, for a server named by `hostnames`. */
export interface TestPki {
  root: TestCertificate;
  intermediate: TestCertificate;
  leaf: TestCertificate;
  /** What a correctly configured server sends: leaf then intermediate (PEM). */
  chainPem: string;
  /** The leaf's private key (PEM). */
  keyPem: string;
  /** What a client must trust: the root (PEM). */
  caPem: string;
}

/** Default names of a test server: reachable as localhost, 127.0.0.1 or ::1. */
export const defaultTestHostnames: readonly string[] = ['localhost', 'vigil.test', '127.0.0.1', '::1'];

/**
 * A valid three-level PKI with RSA-2048/SHA-256 everywhere. Keys come from the cache, so this is
 * cheap after the first call; `now` moves the validity window (default: the real clock).
 */
export function createTestPki(options: { hostnames?: readonly string[]; now?: Date } = {}): TestPki {
  const now = (options.now ?? new Date()).getTime();
  const root = createCertificate({
    commonName: 'vigil Test Root CA',
    organization: 'vigil tests',
    keySlot: 'root',
    ca: true,
    notBefore: new Date(now - 365 * DAY),
    notAfter: new Date(now + 10 * 365 * DAY),
  });
  const intermediate = createCertificate({
    commonName: 'vigil Test Intermediate CA',
    organization: 'vigil tests',
    keySlot: 'intermediate',
    ca: true,
    issuer: root,
    notBefore: new Date(now - 30 * DAY),
    notAfter: new Date(now + 5 * 365 * DAY),
  });
  const leaf = createCertificate({
    commonName: options.hostnames?.[0] ?? 'localhost',
    keySlot: 'leaf',
    issuer: intermediate,
    altNames: [...(options.hostnames ?? defaultTestHostnames)],
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + 90 * DAY),
  });
  return { root, intermediate, leaf, chainPem: pemChain(leaf, intermediate), keyPem: leaf.keyPem, caPem: root.pem };
}

/** Writes PEMs to `ca.pem` in a fresh temp dir (or `dir`) and returns its absolute path. */
export async function writeCaFile(certs: TestCertificate[], dir?: string): Promise<string> {
  const where = dir ?? (await mkdtemp(join(tmpdir(), 'vigil-ca-')));
  const file = join(where, 'ca.pem');
  await writeFile(file, pemChain(...certs));
  return file;
}
