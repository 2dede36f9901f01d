/**
 * Reading vigil's YAML files (the config and the control catalog) defensively: a size cap, no
 * echo of the file's content in errors, a nesting cap, and no key that JavaScript treats
 * specially. `vigil config check --config /etc/shadow` must say "not a vigil config", not print
 * the file line by line.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import YAML, { LineCounter } from 'yaml';
import { ConfigError, formatPath, safeLine } from './errors.js';

/** Largest config file accepted (1 MiB); a real one is a few KB. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** Largest control catalog accepted (1 MiB); the shipped one is about 20 KB. */
export const MAX_CATALOG_BYTES = 1024 * 1024;

/** Deepest nesting of mappings and lists accepted; vigil's own files nest five levels. */
export const MAX_YAML_DEPTH = 64;

/** Alias expansions allowed when building the value (a "billion laughs" document is refused). */
export const MAX_YAML_ALIASES = 100;

/** Keys that would reach an object's prototype or constructor once parsed: refused wherever they occur. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** What a file is, in messages: "config file" or "control catalog". */
export type YamlFileKind = 'config file' | 'control catalog';

function sizeProblem(file: string, kind: YamlFileKind, max: number): ConfigError {
  return new ConfigError([`${file}: the ${kind} is larger than ${max / 1024} KiB: is it the right file?`]);
}

/**
 * Reads a YAML file, at most `max` bytes. Reads at most one byte past the cap, so naming a
 * device or a FIFO (`/dev/zero`) by mistake is refused rather than filling memory.
 */
export function readYamlFile(file: string, kind: YamlFileKind, max: number): string {
  let fd: number;
  try {
    // Non-blocking: opening a FIFO named by mistake must not wait for a writer forever.
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw new ConfigError([`${file}: cannot read the ${kind} (${(err as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  try {
    const stat = fstatSync(fd);
    if (stat.isDirectory()) throw new ConfigError([`${file}: cannot read the ${kind} (EISDIR)`]);
    if (stat.isFIFO() || stat.isSocket()) throw new ConfigError([`${file}: cannot read the ${kind}: not a regular file`]);
    if (stat.size > max) throw sizeProblem(file, kind, max);
    const buf = Buffer.alloc(max + 1);
    let length = 0;
    for (;;) {
      const n = readSync(fd, buf, length, buf.length - length, null);
      if (n === 0) break;
      length += n;
      if (length > max) throw sizeProblem(file, kind, max);
    }
    return buf.subarray(0, length).toString('utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError([`${file}: cannot read the ${kind} (${(err as NodeJS.ErrnoException).code ?? 'error'})`]);
  } finally {
    closeSync(fd);
  }
}

/** A YAML error without its code frame: yaml's pretty errors quote the offending line, which may be a secret. */
function syntaxProblem(file: string, err: YAML.YAMLError, lines: LineCounter): string {
  const { line, col } = lines.linePos(err.pos[0]);
  // The raw description is short ("Map keys must be unique", "Unexpected scalar at node end");
  // a few quote a tag or alias name, so it is cut and escaped.
  const description = safeLine(err.message.split('\n')[0] ?? '').slice(0, 80);
  return `${file}: line ${line}, column ${col}: YAML syntax error: ${description}`;
}

function kindOf(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return 'a text';
  return `a ${typeof value}`;
}

/**
 * Refuses {@link FORBIDDEN_KEYS} anywhere in the value and nesting deeper than
 * {@link MAX_YAML_DEPTH}, naming the key path. Iterative: the walk itself cannot overflow.
 */
function checkKeys(file: string, root: unknown): string[] {
  const problems: string[] = [];
  const stack: Array<{ value: unknown; path: PropertyKey[] }> = [{ value: root, path: [] }];
  while (stack.length > 0) {
    const { value, path } = stack.pop()!;
    if (value === null || typeof value !== 'object') continue;
    if (path.length >= MAX_YAML_DEPTH) {
      problems.push(`${file}: ${formatPath(path)}: nested deeper than ${MAX_YAML_DEPTH} levels`);
      continue;
    }
    if (Array.isArray(value)) {
      value.forEach((item, i) => stack.push({ value: item, path: [...path, i] }));
      continue;
    }
    for (const key of Object.keys(value)) {
      if (FORBIDDEN_KEYS.has(key)) {
        problems.push(`${file}: ${formatPath([...path, key])}: "${key}" is not allowed as a key (a reserved JavaScript property name)`);
        continue;
      }
      stack.push({ value: (value as Record<string, unknown>)[key], path: [...path, key] });
    }
  }
  return problems.sort();
}

/**
 * Parses YAML text into a plain value, or throws a {@link ConfigError} whose lines name the
 * file, the line/column or key path, and never quote the content. An empty document is `{}`;
 * a document that is not a mapping is refused.
 */
export function parseYamlText(file: string, text: string, kind: YamlFileKind, max: number): Record<string, unknown> {
  if (Buffer.byteLength(text, 'utf8') > max) throw sizeProblem(file, kind, max);
  const lines = new LineCounter();
  let value: unknown;
  try {
    const doc = YAML.parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter: lines });
    if (doc.errors.length > 0) throw new ConfigError(doc.errors.map((e) => syntaxProblem(file, e, lines)));
    value = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    // toJS refuses excessive aliases with a ReferenceError; a pathologically nested document can exhaust the stack.
    if (err instanceof ReferenceError) throw new ConfigError([`${file}: the ${kind} expands too many YAML aliases (more than ${MAX_YAML_ALIASES})`]);
    if (err instanceof RangeError) throw new ConfigError([`${file}: the ${kind} is nested too deeply`]);
    throw new ConfigError([`${file}: the ${kind} is not valid YAML`]);
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError([`${file}: (top level): expected a mapping of settings (key: value lines), got ${kindOf(value)}: is this the right file?`]);
  }
  const problems = checkKeys(file, value);
  if (problems.length > 0) throw new ConfigError(problems);
  return value as Record<string, unknown>;
}
