/**
 * Known provider noise: attributes a provider refreshes on every read, so that every plan shows
 * them "changed outside the code" although nobody changed anything. Each entry cites where the
 * behaviour is documented. Noise is counted and listed separately, never as drift, and only ever
 * for an in-place update of that one attribute (never a delete or a replacement). Any entry can be
 * switched off with the probe param `disableNoise: [id]`.
 */

/** One catalog entry. */
export interface NoiseEntry {
  /** `resource_type.attribute`, the id used in `disableNoise`. */
  id: string;
  resourceType: string;
  /** Attribute path glob (see ignore-rules.ts). */
  attribute: string;
  why: string;
  citation: string;
}

export const NOISE_CATALOG: readonly NoiseEntry[] = [
  {
    id: 'aws_db_instance.latest_restorable_time',
    resourceType: 'aws_db_instance',
    attribute: 'latest_restorable_time',
    why: 'computed by RDS and advanced every few minutes by point-in-time recovery; no configuration sets it',
    citation: 'https://github.com/terraform-aws-modules/terraform-aws-rds/pull/356 (and hashicorp/terraform#30509)',
  },
  {
    id: 'aws_eks_cluster.platform_version',
    resourceType: 'aws_eks_cluster',
    attribute: 'platform_version',
    why: 'computed; AWS upgrades EKS platform versions automatically within a Kubernetes version',
    citation: 'https://github.com/hashicorp/terraform-provider-aws/issues/48505',
  },
];

/** Ids of every catalog entry, for the params schema. */
export const NOISE_IDS: readonly string[] = NOISE_CATALOG.map((e) => e.id);
