import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { loadConfigText, type LoadedConfig } from '../../src/config/load.js';
import { startDaemon, type Daemon } from '../../src/daemon.js';
import { createLogger } from '../../src/log.js';
import type { AnyProbe } from '../../src/probe/contract.js';

/** Captures everything the daemon logs, for assertions (and secret-leak checks). */
export class LogCapture extends Writable {
  lines: string[] = [];
  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: () => void): void {
    this.lines.push(...chunk.toString().split('\n').filter(Boolean));
    cb();
  }
  get text(): string {
    return this.lines.join('\n');
  }
}

/** Writes a config (and optional catalog) into a temp dir and loads it with the given registry. */
export function testConfig(yaml: string, registry: readonly AnyProbe[], catalog?: string, env: NodeJS.ProcessEnv = {}): LoadedConfig {
  const dir = mkdtempSync(path.join(tmpdir(), 'vigil-test-'));
  if (catalog) writeFileSync(path.join(dir, 'controls.yaml'), catalog);
  const file = path.join(dir, 'vigil.yaml');
  const text = `dataDir: ${dir}/var\n${catalog ? 'controls: ./controls.yaml\n' : ''}${yaml}`;
  writeFileSync(file, text);
  return loadConfigText(text, file, registry, env);
}

/** Starts a daemon whose logs go to a capture. */
export async function startTestDaemon(loaded: LoadedConfig): Promise<{ daemon: Daemon; logs: LogCapture }> {
  const logs = new LogCapture();
  const daemon = await startDaemon({ loaded, log: createLogger('debug', logs) });
  return { daemon, logs };
}

/** Polls until `check` returns a truthy value, or fails after `timeoutMs`. */
export async function waitFor<T>(check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** GET with an optional bearer token; returns status, headers and text. */
export async function get(url: string, token?: string): Promise<{ status: number; text: string; json: () => unknown; headers: Headers }> {
  const res = await fetch(url, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  const text = await res.text();
  return { status: res.status, text, json: () => JSON.parse(text), headers: res.headers };
}

/** The value of one sample line in a Prometheus text exposition, or undefined. */
export function metricValue(exposition: string, sample: string): number | undefined {
  for (const line of exposition.split('\n')) {
    if (line.startsWith(`${sample} `)) return Number(line.slice(sample.length + 1));
  }
  return undefined;
}
