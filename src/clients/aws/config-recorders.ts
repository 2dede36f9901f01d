/**
 * The AWS Config answers about configuration recorders (JSON 1.1, lower-case member names), shared
 * by the probes that read them (aws-config-recording, and aws-backup-freshness's coverage). The
 * lists are required: an answer without one is malformed (a run error), never "no recorder".
 */
import { z } from 'zod';

/** DescribeConfigurationRecorders. */
export const RecordersAnswer = z.looseObject({
  ConfigurationRecorders: z.array(
    z.looseObject({
      name: z.string().optional(),
      servicePrincipal: z.string().optional(),
      recordingGroup: z
        .looseObject({
          allSupported: z.boolean().optional(),
          resourceTypes: z.array(z.string()).optional(),
          exclusionByResourceTypes: z.looseObject({ resourceTypes: z.array(z.string()).optional() }).optional(),
          recordingStrategy: z.looseObject({ useOnly: z.string().optional() }).optional(),
        })
        .optional(),
    }),
  ),
});

/** DescribeConfigurationRecorderStatus. */
export const StatusAnswer = z.looseObject({
  ConfigurationRecordersStatus: z.array(
    z.looseObject({ name: z.string().optional(), recording: z.boolean().optional(), lastStatus: z.string().optional(), lastErrorCode: z.string().optional(), servicePrincipal: z.string().optional() }),
  ),
});
