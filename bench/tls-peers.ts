/**
 * TLS servers for the benchmarks, in their own process so that their memory never counts
 * against the process being measured. bench/tls-sweep.ts and bench/idle-rss.ts call
 * {@link startPeerProcess}, which forks this file (`node dist/bench/tls-peers.js <count>`).
 *
 * The child starts `count` TLS servers on 127.0.0.1 (free ports), each sending leaf + intermediate under
 * a fresh test root (test/helpers/tls-certs.ts: RSA-2048, SHA-256, names localhost, vigil.test,
 * 127.0.0.1, ::1), writes the root to a caFile, and sends the parent
 * `{ type: 'ready', ports, caFile, rssBytes }`. Like test/helpers/tls-peer.ts, a server closes
 * each connection right after the handshake and uses Node's default protocol range (TLS 1.2–1.3),
 * so it refuses TLS 1.0 and 1.1.
 *
 * On `{ type: 'stats' }` it answers `{ type: 'stats', perPort }`: per server, the TCP connections
 * accepted, the handshakes completed, and the handshakes refused (`tlsClientError`). It exits on
 * `{ type: 'close' }` or when the parent goes away.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import { createTestPki, writeCaFile } from '../test/helpers/tls-certs.js';

/** Counts of one server since it started. */
export interface PeerCounts {
  port: number;
  connections: number;
  completed: number;
  refused: number;
}

/** Messages from the peer process. */
export type PeerMessage =
  | { type: 'ready'; ports: number[]; caFile: string; rssBytes: number }
  | { type: 'stats'; perPort: PeerCounts[]; rssBytes: number };

/** The running peer process, from the parent's side. */
export interface PeerProcess {
  pid: number;
  ports: number[];
  /** Absolute path of the PEM file holding the test root: the target's caFile. */
  caFile: string;
  /** RSS of the peer process once its servers listen. */
  rssBytes: number;
  /** Per-server counts so far. */
  stats(): Promise<{ perPort: PeerCounts[]; rssBytes: number }>;
  /** Closes the servers, removes the caFile and waits for the process to exit. */
  close(): Promise<void>;
}

/** Forks the peer process with `count` servers and waits until they all listen. */
export async function startPeerProcess(count: number): Promise<PeerProcess> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), [String(count)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ready = await new Promise<Extract<PeerMessage, { type: 'ready' }>>((resolve, reject) => {
    const onExit = (code: number | null): void => reject(new Error(`TLS peer process exited (code ${code}) before it was ready`));
    child.once('exit', onExit);
    child.once('message', (msg: PeerMessage) => {
      child.off('exit', onExit);
      if (msg.type === 'ready') resolve(msg);
      else reject(new Error(`unexpected message from the TLS peer process: ${msg.type}`));
    });
  });
  return {
    pid: child.pid ?? -1,
    ports: ready.ports,
    caFile: ready.caFile,
    rssBytes: ready.rssBytes,
    stats: () =>
      new Promise((resolve) => {
        child.once('message', (msg: PeerMessage) => {
          if (msg.type === 'stats') resolve({ perPort: msg.perPort, rssBytes: msg.rssBytes });
        });
        child.send({ type: 'stats' });
      }),
    close: async () => {
      if (child.exitCode === null && child.signalCode === null) child.send({ type: 'close' });
      await exited;
    },
  };
}

async function serve(): Promise<void> {
  if (!process.send) throw new Error('tls-peers must be forked with an IPC channel');
  const count = Number(process.argv[2] ?? 1);
  if (!Number.isInteger(count) || count < 1) throw new Error(`expected a server count, got ${process.argv[2]}`);

  const pki = createTestPki();
  const caFile = await writeCaFile([pki.root]);
  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  const counts: PeerCounts[] = [];

  for (let i = 0; i < count; i++) {
    const c: PeerCounts = { port: 0, connections: 0, completed: 0, refused: 0 };
    const server = createServer({ cert: pki.chainPem, key: pki.keyPem });
    server.on('connection', (socket: Socket) => {
      c.connections++;
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.once('close', () => sockets.delete(socket));
    });
    server.on('secureConnection', (socket: TLSSocket) => {
      c.completed++;
      socket.on('error', () => undefined);
      socket.end();
    });
    server.on('tlsClientError', () => {
      c.refused++;
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('TLS bench server has no port');
    c.port = address.port;
    servers.push(server);
    counts.push(c);
  }

  let closing = false;
  const close = (): void => {
    if (closing) return;
    closing = true;
    for (const s of sockets) s.destroy();
    for (const server of servers) server.close();
    rmSync(dirname(caFile), { recursive: true, force: true });
    process.exit(0);
  };
  process.on('message', (msg: { type?: string }) => {
    if (msg.type === 'stats') {
      const reply: PeerMessage = { type: 'stats', perPort: counts, rssBytes: process.memoryUsage().rss };
      process.send?.(reply);
    } else if (msg.type === 'close') close();
  });
  process.on('disconnect', close);
  process.on('SIGTERM', close);

  const ready: PeerMessage = { type: 'ready', ports: counts.map((c) => c.port), caFile, rssBytes: process.memoryUsage().rss };
  process.send(ready);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  serve().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
