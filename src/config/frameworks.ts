/**
 * The framework requirements a control may cite. Catalog references are checked against these
 * lists so a typo ("CC6.9", "A.8.35") is refused instead of showing up on a trust page.
 */

function range(prefix: string, from: number, to: number): string[] {
  return Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${from + i}`);
}

/** AICPA Trust Services Criteria (2017, points of focus revised 2022). */
export const soc2Criteria: ReadonlySet<string> = new Set([
  ...range('CC1.', 1, 5),
  ...range('CC2.', 1, 3),
  ...range('CC3.', 1, 4),
  ...range('CC4.', 1, 2),
  ...range('CC5.', 1, 3),
  ...range('CC6.', 1, 8),
  ...range('CC7.', 1, 5),
  'CC8.1',
  ...range('CC9.', 1, 2),
  ...range('A1.', 1, 3),
  ...range('C1.', 1, 2),
  ...range('PI1.', 1, 5),
  'P1.1',
  ...range('P2.', 1, 1),
  ...range('P3.', 1, 2),
  ...range('P4.', 1, 3),
  ...range('P5.', 1, 2),
  ...range('P6.', 1, 7),
  'P7.1',
  'P8.1',
]);

/** ISO/IEC 27001:2022 Annex A controls: A.5.1–A.5.37, A.6.1–A.6.8, A.7.1–A.7.14, A.8.1–A.8.34. */
export const iso27001Controls: ReadonlySet<string> = new Set([
  ...range('A.5.', 1, 37),
  ...range('A.6.', 1, 8),
  ...range('A.7.', 1, 14),
  ...range('A.8.', 1, 34),
]);
