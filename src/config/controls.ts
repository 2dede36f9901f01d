import { z } from 'zod';
import type { AnyProbe } from '../probe/contract.js';
import { iso27001Controls, soc2Criteria } from './frameworks.js';
import { ConfigError, formatIssues, formatValue } from './errors.js';
import { MAX_CATALOG_BYTES, parseYamlText, readYamlFile } from './yaml.js';

/** One control of the catalog (DESIGN.md §2, §7). */
export const Control = z.strictObject({
  /** Stable id, kebab-case: it is a metric label and a public identifier. */
  id: z.string().regex(/^[a-z0-9]+(-[a-z0-9]+)*$/, 'expected a kebab-case id'),
  title: z.string().min(1),
  /** Listed on the public trust feed once 30-day green. Default false. */
  public: z.boolean().default(false),
  /** Safe for the public trust page: no internal names. */
  publicTitle: z.string().min(1),
  publicDescription: z.string().min(1),
  frameworks: z.strictObject({
    soc2: z.array(z.string().refine((c) => soc2Criteria.has(c), 'not a SOC 2 Trust Services Criterion (e.g. CC6.1)')).default([]),
    iso27001: z.array(z.string().refine((c) => iso27001Controls.has(c), 'not an ISO/IEC 27001:2022 Annex A control (e.g. A.8.24)')).default([]),
  }),
  /** Probes whose findings evidence this control. */
  probes: z.array(z.string()).min(1, 'list at least one probe that evidences this control'),
});
export type Control = z.infer<typeof Control>;

export const ControlCatalog = z.strictObject({
  controls: z.array(Control).min(1, 'the catalog lists no control'),
});
export type ControlCatalog = z.infer<typeof ControlCatalog>;

/** Reads the catalog and refuses duplicate ids and probes that do not exist. */
export function loadControlCatalog(file: string, registry: readonly AnyProbe[]): ControlCatalog {
  const raw = parseYamlText(file, readYamlFile(file, 'control catalog', MAX_CATALOG_BYTES), 'control catalog', MAX_CATALOG_BYTES);
  const parsed = ControlCatalog.safeParse(raw);
  if (!parsed.success) throw new ConfigError(formatIssues(file, parsed.error.issues));
  const known = new Set(registry.map((p) => p.id));
  const problems: string[] = [];
  const seen = new Set<string>();
  parsed.data.controls.forEach((control, i) => {
    if (seen.has(control.id)) problems.push(`${file}: controls[${i}].id: duplicate control id "${control.id}"`);
    seen.add(control.id);
    control.probes.forEach((probe, j) => {
      if (!known.has(probe)) problems.push(`${file}: controls[${i}].probes[${j}]: unknown probe ${formatValue(probe)} (known: ${[...known].join(', ')})`);
    });
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return parsed.data;
}
