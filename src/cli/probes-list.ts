import type { LoadedConfig } from '../config/load.js';
import type { AnyProbe } from '../probe/contract.js';

/** Output formats of `vigil probes`: `text` for a terminal (no markup), `md` for documentation. */
export const PROBES_FORMATS = ['text', 'md'] as const;
export type ProbesFormat = (typeof PROBES_FORMATS)[number];

/**
 * Inline Markdown of the probe docs (written for the README) as plain text: code spans lose their
 * backticks, emphasis its asterisks, a link becomes "text (url)"; backslash escapes are undone.
 */
export function plainText(markdown: string): string {
  return markdown
    .replace(/`([^`]*)`/g, '$1')
    .replace(/\*\*([^*]+)\*\*/g, '$1')
    .replace(/(^|[\s(])\*([^*\s][^*]*)\*(?=[\s).,;:]|$)/g, '$1$2')
    .replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, '$1 ($2)')
    .replace(/\\([\\`*_[\]()|])/g, '$1');
}

interface ProbeLine {
  probe: AnyProbe;
  schedule: string;
  targets: string;
}

function lines(loaded: LoadedConfig, registry: readonly AnyProbe[]): ProbeLine[] {
  return registry.map((probe) => {
    const configured = loaded.probes.get(probe.id);
    return {
      probe,
      schedule: `${configured ? configured.schedule : 'disabled'}${configured && configured.schedule !== probe.schedule ? ` (default ${probe.schedule})` : ''}`,
      targets: configured
        ? probe
            .targets(loaded.config)
            .map((t) => (t.schedule && t.schedule !== configured.schedule ? `${t.name} (${t.schedule})` : t.name))
            .join(', ') || '(none configured)'
        : '-',
    };
  });
}

/** What `vigil probes` prints: every registered probe with its controls, schedule, targets and permissions. */
export function formatProbes(loaded: LoadedConfig, registry: readonly AnyProbe[], format: ProbesFormat): string {
  if (format === 'md') {
    const blocks = lines(loaded, registry).map(({ probe, schedule, targets }) =>
      [
        `## \`${probe.id}\` — ${probe.title}`,
        '',
        `- **source:** ${probe.source}`,
        `- **controls:** ${probe.controls.map((c) => `\`${c}\``).join(', ')}`,
        `- **schedule:** \`${schedule}\``,
        `- **targets:** ${targets}`,
        `- **permissions:** ${probe.docs.permissions}`,
        ...(probe.actions?.length ? [`- **actions:** ${probe.actions.map((a) => `\`${a}\``).join(', ')}`] : []),
        '',
      ].join('\n'),
    );
    return `# vigil probes\n\n${blocks.join('\n')}`;
  }
  return lines(loaded, registry)
    .map(({ probe, schedule, targets }) =>
      [
        `${probe.id} — ${plainText(probe.title)}`,
        `  source:      ${probe.source}`,
        `  controls:    ${probe.controls.join(', ')}`,
        `  schedule:    ${schedule}`,
        `  targets:     ${targets}`,
        `  permissions: ${plainText(probe.docs.permissions)}`,
        ...(probe.actions?.length ? [`  actions:     ${probe.actions.join(', ')}`] : []),
        '',
      ].join('\n'),
    )
    .join('');
}
