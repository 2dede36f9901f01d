import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Control } from '../config/controls.js';
import type { AnyProbe, Finding, ProbeResult } from '../probe/contract.js';

/** What a CI report needs besides the run-once report itself: probe and control metadata, and where the config lives. */
export interface ReportContext {
  /** The probes that ran (with `--probe`, that one), for rule metadata. */
  probes: ReadonlyArray<Pick<AnyProbe, 'id' | 'title' | 'controls' | 'docs'>>;
  /** The catalog's controls, for titles and which probes evidence each. */
  controls: ReadonlyArray<Pick<Control, 'id' | 'title' | 'probes'>>;
  /** Absolute path of the config file the targets come from: the one file a finding can point at. */
  configFile: string;
  /** Its text, to point a finding at the line that names its target (optional). */
  configText?: string;
  /** Directory the report's relative paths are relative to (the CI checkout, normally the working directory). */
  baseDir: string;
  /** vigil's version (package.json). */
  version: string;
  /** vigil's home page, when package.json names one. */
  informationUri?: string;
}

/** One verdict a CI report shows: a finding, or a run that could not observe its target (a run error). */
export interface ReportItem {
  probe: string;
  target: string;
  resource: string;
  /** A run error is reported as `unknown`: could not observe is never green. */
  outcome: Finding['outcome'];
  message: string;
  /** Set for a run error: the error class (e.g. `PermissionError`). */
  errorClass?: string;
  details?: Record<string, unknown>;
  /** A requirement or check id the probe put in the finding's details, if any. */
  check?: string;
}

/** Flattens results into report items, run errors included (as `unknown` on the whole target). */
export function reportItems(results: readonly ProbeResult[]): ReportItem[] {
  const items: ReportItem[] = [];
  for (const r of results) {
    if (r.error) {
      items.push({ probe: r.probe, target: r.target, resource: r.target, outcome: 'unknown', message: `could not observe: ${r.error.class}: ${r.error.message}`, errorClass: r.error.class });
    }
    for (const f of r.findings) {
      const check = checkOf(f.details);
      items.push({ probe: r.probe, target: r.target, resource: f.resource, outcome: f.outcome, message: f.message, ...(f.details ? { details: f.details } : {}), ...(check ? { check } : {}) });
    }
  }
  return items;
}

/** A finding's own requirement id, when its probe names one in details (`check` or `requirement`, kebab-case). */
function checkOf(details: Record<string, unknown> | undefined): string | undefined {
  for (const key of ['check', 'requirement']) {
    const value = details?.[key];
    if (typeof value === 'string' && /^[a-z0-9]+(-[a-z0-9]+)*$/.test(value) && value.length <= 64) return value;
  }
  return undefined;
}

/** The config file as a report names it: relative to the base directory with `/` separators, or absolute when outside it. */
export function configUri(context: ReportContext): { uri: string; relative: boolean } {
  const rel = path.relative(context.baseDir, context.configFile);
  if (rel && !rel.startsWith('..') && !path.isAbsolute(rel)) return { uri: rel.split(path.sep).map(encodeURIComponent).join('/'), relative: true };
  return { uri: pathToFileURL(path.resolve(context.configFile)).href, relative: false };
}

/** 1-based line of the config that names `target` (`name: <target>`), else 1. */
export function targetLine(context: ReportContext, target: string): number {
  if (!context.configText) return 1;
  const lines = context.configText.split('\n');
  const i = lines.findIndex((line) => {
    const m = /^\s*(?:-\s+)?name:\s*(['"]?)(.*?)\1\s*(?:#.*)?$/.exec(line);
    return m?.[2] === target;
  });
  return i >= 0 ? i + 1 : 1;
}
