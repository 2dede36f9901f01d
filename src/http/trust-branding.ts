import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../config/errors.js';
import type { VigilConfig } from '../config/schema.js';

/** Largest logo file accepted (`trust.logoFile`); it is inlined into every page view. */
export const MAX_LOGO_BYTES = 256 * 1024;

/** The trust page's branding, checked and ready to render (see {@link loadTrustBranding}). */
export interface TrustBranding {
  /** Heading and `<title>`; default the organisation. */
  title?: string;
  /** `https://…` URL or a `data:image/png;base64,…` / `data:image/svg+xml;base64,…` URI. */
  logoSrc?: string;
  /** Origin the page's CSP allows images from (logoUrl's), when the logo is remote. */
  logoOrigin?: string;
  /** #rrggbb colours. */
  colors?: { accent?: string; background?: string; text?: string };
  /** Plain text (escaped when rendered). */
  intro?: string;
  /** https:// link to the security page. */
  securityUrl?: string;
}

/** A branding setting that cannot be used; the message starts with the key path. A config error (exit 78). */
export class TrustBrandingError extends ConfigError {
  constructor(message: string) {
    super([message]);
  }
}

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * The logo file as a data: URI. Only PNG (by its signature) and SVG (an `<svg` root, no DOCTYPE or
 * entity declarations) are accepted. An SVG shown through `<img>` never runs script nor loads
 * anything, and the page's CSP forbids script anyway, so the file needs no further sanitising.
 */
export function logoDataUri(file: string): string {
  const key = 'trust.logoFile';
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new TrustBrandingError(`${key}: ${file} is not a file`);
    size = st.size;
  } catch (err) {
    if (err instanceof TrustBrandingError) throw err;
    throw new TrustBrandingError(`${key}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'}): give a PNG or SVG file, relative to the config file`);
  }
  if (size > MAX_LOGO_BYTES) throw new TrustBrandingError(`${key}: ${file} is ${size} bytes, more than the ${MAX_LOGO_BYTES} allowed: use a smaller PNG or an SVG`);
  const bytes = readFileSync(file);
  if (bytes.subarray(0, 8).equals(PNG_MAGIC)) return `data:image/png;base64,${bytes.toString('base64')}`;
  const text = bytes.toString('utf8').replace(/^\uFEFF/, '');
  const head = text.replace(/<\?xml[^>]*\?>/, '').replace(/<!--[\s\S]*?-->/g, '').trimStart();
  if (/^<svg[\s>]/i.test(head) && !/<!(DOCTYPE|ENTITY)/i.test(text)) return `data:image/svg+xml;base64,${Buffer.from(text, 'utf8').toString('base64')}`;
  throw new TrustBrandingError(`${key}: ${file} is neither a PNG nor an SVG image (SVG without DOCTYPE or ENTITY declarations): convert the logo to PNG or SVG`);
}

/**
 * Reads the `trust:` branding settings, resolving `logoFile` against `configDir` and inlining it.
 * Throws {@link TrustBrandingError} naming the key path when the logo file is unusable.
 */
export function loadTrustBranding(trust: VigilConfig['trust'], configDir: string): TrustBranding {
  const b: TrustBranding = {};
  if (trust.title !== undefined) b.title = trust.title;
  if (trust.logoUrl !== undefined) {
    b.logoSrc = trust.logoUrl;
    b.logoOrigin = new URL(trust.logoUrl).origin;
  } else if (trust.logoFile !== undefined) {
    b.logoSrc = logoDataUri(path.resolve(configDir, trust.logoFile));
  }
  if (trust.colors !== undefined) b.colors = { ...trust.colors };
  if (trust.intro !== undefined) b.intro = trust.intro;
  if (trust.securityUrl !== undefined) b.securityUrl = trust.securityUrl;
  return b;
}
