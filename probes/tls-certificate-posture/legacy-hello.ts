/**
 * The cheap first question of the TLS 1.0/1.1 check: does the server refuse a ClientHello that
 * offers only TLS 1.0–1.1? Most servers do, with an alert as their very first record — and to
 * see that alert, a full Node TLS socket (OpenSSL state, key material, stream plumbing) is far
 * dearer than a plain TCP socket that writes the same ClientHello and reads one record.
 *
 * The ClientHello is OpenSSL's own: it is captured once per process from a Node TLS socket using
 * the probe's legacy context (TLS 1.0–1.1, `@SECLEVEL=0`) over an in-memory stream, then sent with
 * this endpoint's SNI and a fresh random. The server therefore sees exactly what the Node
 * handshake in handshake.ts would send, and answers the same. Only the outcomes that need nothing
 * more than the first record are decided here (an alert; the connection cut or refused; no
 * answer in time); anything else — a ServerHello, i.e. a server that may accept a legacy
 * protocol — is `undecided`, and the full Node handshake runs as before.
 */
import { randomFillSync } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import tls, { type SecureContext } from 'node:tls';

/** TLS record content types (RFC 5246 §6.2.1). */
const ALERT = 21;
const HANDSHAKE = 22;

/** A ClientHello record split around its server_name extension, so that any SNI can be put in. */
export interface HelloTemplate {
  /** Record header + handshake header + fields up to the extensions, with the SNI extension removed from what follows. */
  head: Buffer;
  /** The extensions other than server_name, in OpenSSL's order, and where server_name stood among them. */
  extensionsBefore: Buffer;
  extensionsAfter: Buffer;
  /** Offset of the 32-byte client random in the record. */
  randomOffset: number;
}

/** What the first record of the server's answer says, in the terms of handshake.ts's HandshakeResult. */
export type RawLegacyAnswer =
  | { decided: true; stage: 'handshake'; alert: true; peerAlert: true; reason: string }
  | { decided: true; stage: 'handshake' | 'connect' | 'timeout' | 'aborted'; alert?: undefined; reason: string }
  | {
      decided: false;
      reason: string;
      /**
       * The version a ServerHello in the first record chose (0x0301 = TLS 1.0, 0x0302 = TLS 1.1…):
       * the server's own choice, which stands even if OpenSSL then refuses the rest of its answer.
       */
      serverVersion?: number;
    };

/** TLS alert descriptions (RFC 5246 §7.2, RFC 8446 §6), as OpenSSL words them in its error reasons. */
const alertNames: Record<number, string> = {
  10: 'unexpected message',
  20: 'bad record mac',
  40: 'handshake failure',
  47: 'illegal parameter',
  50: 'decode error',
  70: 'protocol version',
  71: 'insufficient security',
  80: 'internal error',
  86: 'inappropriate fallback',
  90: 'user canceled',
  112: 'unrecognized name',
};

/**
 * Splits an OpenSSL ClientHello record into a template. Undefined when the bytes are not one
 * well-formed ClientHello record (the caller then keeps to full handshakes).
 */
export function parseHelloTemplate(record: Buffer): HelloTemplate | undefined {
  if (record.length < 5 + 4 + 2 + 32 + 1 || record[0] !== HANDSHAKE || record[5] !== 1) return undefined;
  if (record.readUInt16BE(3) !== record.length - 5) return undefined;
  if (record.readUIntBE(6, 3) !== record.length - 9) return undefined;
  const randomOffset = 11;
  let at = randomOffset + 32;
  const skip = (lengthBytes: number): boolean => {
    if (at + lengthBytes > record.length) return false;
    at += lengthBytes + record.readUIntBE(at, lengthBytes);
    return at <= record.length;
  };
  if (!skip(1) || !skip(2) || !skip(1)) return undefined; // session id, cipher suites, compression methods
  if (at + 2 > record.length || record.readUInt16BE(at) !== record.length - at - 2) return undefined;
  const extensionsStart = at + 2;
  const before: Buffer[] = [];
  const after: Buffer[] = [];
  let sawSni = false;
  for (let e = extensionsStart; e < record.length; ) {
    if (e + 4 > record.length) return undefined;
    const type = record.readUInt16BE(e);
    const end = e + 4 + record.readUInt16BE(e + 2);
    if (end > record.length) return undefined;
    if (type === 0) sawSni = true;
    else (sawSni ? after : before).push(record.subarray(e, end));
    e = end;
  }
  return {
    head: Buffer.from(record.subarray(0, at)),
    extensionsBefore: Buffer.concat(before),
    extensionsAfter: Buffer.concat(after),
    randomOffset,
  };
}

/** Longest host_name OpenSSL sends (TLSEXT_MAXLEN_host_name); a longer one is left to OpenSSL to refuse. */
const maxSniBytes = 255;

/**
 * The ClientHello record for `sni` (none for IP literals), with a fresh client random; undefined
 * when OpenSSL would not send that name (the caller then makes the full handshake).
 */
export function buildHello(template: HelloTemplate, sni: string | undefined): Buffer | undefined {
  let sniExtension = Buffer.alloc(0);
  if (sni !== undefined) {
    // UTF-8, as Node hands the servername to OpenSSL.
    const name = Buffer.from(sni, 'utf8');
    if (name.length === 0 || name.length > maxSniBytes) return undefined;
    sniExtension = Buffer.alloc(4 + 2 + 1 + 2 + name.length);
    sniExtension.writeUInt16BE(0, 0); // server_name
    sniExtension.writeUInt16BE(2 + 1 + 2 + name.length, 2);
    sniExtension.writeUInt16BE(1 + 2 + name.length, 4); // server_name_list
    sniExtension.writeUInt8(0, 6); // host_name
    sniExtension.writeUInt16BE(name.length, 7);
    name.copy(sniExtension, 9);
  }
  const extensionsLength = template.extensionsBefore.length + sniExtension.length + template.extensionsAfter.length;
  const record = Buffer.concat([template.head, Buffer.alloc(2), template.extensionsBefore, sniExtension, template.extensionsAfter]);
  record.writeUInt16BE(extensionsLength, template.head.length);
  record.writeUInt16BE(record.length - 5, 3);
  record.writeUIntBE(record.length - 9, 6, 3);
  randomFillSync(record, template.randomOffset, 32);
  return record;
}

const templates = new WeakMap<SecureContext, Promise<HelloTemplate | undefined>>();

/**
 * The ClientHello a Node TLS socket with `context` sends, captured over an in-memory stream (no
 * network), once per context. The SNI used for the capture is replaced per endpoint.
 */
export function helloTemplate(context: SecureContext): Promise<HelloTemplate | undefined> {
  const known = templates.get(context);
  if (known) return known;
  const captured = new Promise<HelloTemplate | undefined>((resolve) => {
    let done = false;
    const chunks: Buffer[] = [];
    // The ClientHello is written synchronously inside tls.connect: nothing used here may be declared after it.
    let socket: tls.TLSSocket | undefined;
    const timer = setTimeout(() => finish(undefined), 2_000);
    timer.unref();
    const finish = (value: HelloTemplate | undefined): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(value);
      setImmediate(() => socket?.destroy());
    };
    const wire = new Duplex({
      read() {
        // The "server" never answers: only the ClientHello is wanted.
      },
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk);
        const all = Buffer.concat(chunks);
        if (all.length >= 5 && all.length >= 5 + all.readUInt16BE(3)) finish(parseHelloTemplate(all.subarray(0, 5 + all.readUInt16BE(3))));
        callback();
      },
    });
    socket = tls.connect({ socket: wire, secureContext: context, servername: 'capture.vigil.invalid', rejectUnauthorized: false });
    socket.on('error', () => finish(undefined));
  });
  templates.set(context, captured);
  return captured;
}

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

/**
 * Sends `hello` to host:port on a plain TCP socket and reads the first record of the answer:
 * an alert is the server's refusal; a cut, refused or silent connection is reported as the
 * corresponding failed handshake would be (same stage and reason as handshake.ts gives); a
 * handshake record (ServerHello) or anything else is undecided. Never rejects.
 */
export function sendRawHello(options: {
  host: string;
  port: number;
  hello: Buffer;
  timeoutMs: number;
  register: (abort: () => void) => void;
  unregister: (abort: () => void) => void;
}): Promise<RawLegacyAnswer> {
  return new Promise((resolve) => {
    let settled = false;
    let tcpConnected = false;
    let received: Buffer = Buffer.alloc(0);
    const socket: Socket = connect({ host: options.host, port: options.port });
    const finish = (answer: RawLegacyAnswer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.unregister(abort);
      socket.destroy();
      resolve(answer);
    };
    const abort = (): void => finish({ decided: true, stage: 'aborted', reason: 'aborted' });
    const timer = setTimeout(
      () =>
        finish({
          decided: true,
          stage: 'timeout',
          reason: tcpConnected ? `no TLS handshake within ${options.timeoutMs} ms` : `no TCP connection within ${options.timeoutMs} ms`,
        }),
      options.timeoutMs,
    );
    options.register(abort);
    socket.once('connect', () => {
      tcpConnected = true;
      socket.write(options.hello);
    });
    socket.on('data', (chunk: Buffer) => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      // A TCP segment may end anywhere, even inside the 5-byte record header: judge whole headers only.
      if (received.length < 5) return;
      if (received[0] === ALERT && received[1] === 3) {
        // Exactly one alert (level, description) is the server's word; any other length is left to OpenSSL.
        if (received.readUInt16BE(3) !== 2) return finish({ decided: false, reason: 'the server sent an alert record of an unexpected length' });
        if (received.length < 7) return; // header and the two alert bytes
        // A warning (e.g. unrecognized_name before a ServerHello) is no refusal: let OpenSSL judge the rest.
        if (received[5] !== 2) return finish({ decided: false, reason: 'the server sent a warning alert' });
        const description = received[6] as number;
        finish({ decided: true, stage: 'handshake', alert: true, peerAlert: true, reason: `TLS handshake failed: tlsv1 alert ${alertNames[description] ?? `number ${description}`}` });
      } else if (received[0] === HANDSHAKE && received[1] === 3) {
        // Record header, handshake type and length, then the ServerHello's server_version.
        if (received.length < 11) return;
        finish({ decided: false, reason: 'the server answered with a handshake record', ...(received[5] === 2 ? { serverVersion: received.readUInt16BE(9) } : {}) });
      } else {
        finish({ decided: false, reason: received[0] === HANDSHAKE ? 'the server answered with a handshake record' : 'the server answered with something other than TLS' });
      }
    });
    socket.on('error', (err: Error & { code?: string }) => {
      const code = err.code ?? '';
      finish({ decided: true, stage: tcpConnected ? 'handshake' : 'connect', reason: connectErrors[code] ?? (code ? `${err.message} (${code})` : err.message) });
    });
    // The server hung up without a word. Node reports that as ECONNRESET ("socket disconnected
    // before secure TLS connection was established"): same words here.
    const cut = (): void =>
      finish(
        received.length > 0
          ? { decided: false, reason: 'the server closed after a partial record' }
          : { decided: true, stage: tcpConnected ? 'handshake' : 'connect', reason: connectErrors.ECONNRESET as string },
      );
    socket.once('end', cut);
    socket.once('close', cut);
  });
}
