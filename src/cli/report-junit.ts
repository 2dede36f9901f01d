import type { RunOnceReport } from './run-once.js';
import { reportItems, type ReportContext, type ReportItem } from './report-context.js';

/**
 * `vigil run-once --format junit`: JUnit XML as Jenkins, GitLab and most CI systems read it. One
 * `<testsuite>` per control, one `<testcase>` per control × probe × target × resource: `fail` →
 * `<failure>`, `unknown` and run errors → `<error>` (could not observe, never a pass),
 * `not_applicable` → `<skipped/>`. A control with nothing to show (not configured, or a probe
 * that reported no resource) still gets one test case carrying its status, so an unknown control
 * never disappears from the report. Everything is XML-escaped; characters XML 1.0 cannot carry
 * (control characters, lone surrogates) are dropped.
 */
export function formatJunit(report: RunOnceReport, context: ReportContext): string {
  const items = reportItems(report.results);
  const suites: string[] = [];
  const totals = { tests: 0, failures: 0, errors: 0 };
  for (const control of report.controls) {
    const probes = context.controls.find((c) => c.id === control.id)?.probes ?? [];
    const mine = items.filter((i) => probes.includes(i.probe));
    const cases = mine.map((item) => testcase(control.id, item));
    if (cases.length === 0) cases.push(statusCase(control));
    const counts = {
      tests: cases.length,
      failures: cases.filter((c) => c.kind === 'failure').length,
      errors: cases.filter((c) => c.kind === 'error').length,
      skipped: cases.filter((c) => c.kind === 'skipped').length,
    };
    totals.tests += counts.tests;
    totals.failures += counts.failures;
    totals.errors += counts.errors;
    const title = context.controls.find((c) => c.id === control.id)?.title ?? control.id;
    suites.push(
      `  <testsuite name="${attr(control.id)}" tests="${counts.tests}" failures="${counts.failures}" errors="${counts.errors}" skipped="${counts.skipped}"${suiteTime(report, probes)}>\n` +
        `    <properties>\n` +
        `      <property name="control.title" value="${attr(title)}"/>\n` +
        `      <property name="control.status" value="${attr(control.status)}"/>\n` +
        control.reasons.map((r) => `      <property name="control.reason" value="${attr(r)}"/>\n`).join('') +
        `    </properties>\n` +
        cases.map((c) => c.xml).join('') +
        `  </testsuite>\n`,
    );
  }
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<testsuites name="vigil run-once" tests="${totals.tests}" failures="${totals.failures}" errors="${totals.errors}"${wallTime(report)}>\n` +
    suites.join('') +
    `</testsuites>\n`
  );
}

interface Case {
  kind: 'pass' | 'failure' | 'error' | 'skipped';
  xml: string;
}

function testcase(controlId: string, item: ReportItem): Case {
  const open = `    <testcase classname="${attr(`${controlId}.${item.probe}`)}" name="${attr(`${item.resource} (${item.target})`)}"`;
  const body = text(
    [`probe: ${item.probe}`, `target: ${item.target}`, `resource: ${item.resource}`, item.message, ...(item.details ? [JSON.stringify(item.details)] : [])].join('\n'),
  );
  switch (item.outcome) {
    case 'pass':
      return { kind: 'pass', xml: `${open}/>\n` };
    case 'fail':
      return { kind: 'failure', xml: `${open}>\n      <failure type="fail" message="${attr(item.message)}">${body}</failure>\n    </testcase>\n` };
    case 'unknown':
      return { kind: 'error', xml: `${open}>\n      <error type="${attr(item.errorClass ?? 'unknown')}" message="${attr(item.message)}">${body}</error>\n    </testcase>\n` };
    case 'not_applicable':
      return { kind: 'skipped', xml: `${open}>\n      <skipped message="${attr(item.message)}"/>\n    </testcase>\n` };
  }
}

/** The one test case of a control none of whose probes reported a resource: its status decides. */
function statusCase(control: RunOnceReport['controls'][number]): Case {
  const open = `    <testcase classname="${attr(control.id)}" name="${attr(`${control.id} (control)`)}"`;
  const why = control.reasons.join('; ') || control.status;
  switch (control.status) {
    case 'green':
      return { kind: 'pass', xml: `${open}/>\n` };
    case 'red':
      return { kind: 'failure', xml: `${open}>\n      <failure type="red" message="${attr(why)}">${text(why)}</failure>\n    </testcase>\n` };
    case 'not_configured':
      return { kind: 'skipped', xml: `${open}>\n      <skipped message="${attr(why)}"/>\n    </testcase>\n` };
    default:
      return { kind: 'error', xml: `${open}>\n      <error type="unknown" message="${attr(why)}">${text(why)}</error>\n    </testcase>\n` };
  }
}

function suiteTime(report: RunOnceReport, probes: readonly string[]): string {
  const runs = report.results.filter((r) => probes.includes(r.probe));
  return runs.length ? ` time="${seconds(runs)}"` : '';
}

function wallTime(report: RunOnceReport): string {
  return report.results.length ? ` time="${seconds(report.results)}"` : '';
}

/** Seconds from the first start to the last finish of these runs. */
function seconds(runs: RunOnceReport['results']): string {
  const start = Math.min(...runs.map((r) => Date.parse(r.startedAt)));
  const end = Math.max(...runs.map((r) => Date.parse(r.finishedAt)));
  return Number.isFinite(end - start) ? (Math.max(0, end - start) / 1000).toFixed(3) : '0';
}

/** Characters XML 1.0 allows; everything else (C0 controls but tab/LF/CR, U+FFFE/FFFF, lone surrogates) is dropped. */
const NOT_XML = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/** Escaped for element content. */
export function text(value: string): string {
  return value.replace(NOT_XML, '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Escaped for a double-quoted attribute; line breaks and tabs as character references so parsers keep them. */
export function attr(value: string): string {
  return text(value).replace(/"/g, '&quot;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;').replace(/\t/g, '&#9;');
}
