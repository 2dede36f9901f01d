import { gzipSync } from 'node:zlib';

/**
 * Above this size (UTF-8 bytes of the archived day file) the daily email attaches the file
 * gzip-compressed. A 5,000-repository org's day file is ~0.6 MiB (bench/population.ts) and
 * compresses ~30×; base64 makes any attachment a third larger, and many mail systems refuse
 * messages above 10 MiB.
 */
export const GZIP_ATTACHMENT_ABOVE_BYTES = 1024 * 1024;

/** The day file as the email attaches it: byte for byte, or gzip-compressed when large. */
export interface SnapshotAttachment {
  filename: string;
  content: Buffer;
  contentType: string;
  contentTransferEncoding: 'base64';
}

/**
 * The attachment of a day's email: `vigil-snapshot-<date>.json` with the archived bytes, or, when
 * they exceed {@link GZIP_ATTACHMENT_ABOVE_BYTES}, `vigil-snapshot-<date>.json.gz` whose
 * decompression (`gunzip`) gives exactly the archived bytes. gzip's header carries no time or
 * name here, so the same day always gives the same attachment.
 */
export function snapshotAttachment(date: string, archivedJson: string, gzipAboveBytes = GZIP_ATTACHMENT_ABOVE_BYTES): SnapshotAttachment {
  const bytes = Buffer.from(archivedJson, 'utf8');
  // base64 keeps the bytes exact whatever the line lengths; no 8bit or QP rewrapping.
  if (bytes.length <= gzipAboveBytes) return { filename: `vigil-snapshot-${date}.json`, content: bytes, contentType: 'application/json', contentTransferEncoding: 'base64' };
  return { filename: `vigil-snapshot-${date}.json.gz`, content: gzipSync(bytes, { level: 9 }), contentType: 'application/gzip', contentTransferEncoding: 'base64' };
}
