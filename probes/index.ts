import type { AnyProbe } from '../src/probe/contract.js';
import { probe as awsBackupFreshness } from './aws-backup-freshness/probe.js';
import { probe as awsConfigRecording } from './aws-config-recording/probe.js';
import { probe as awsConfigRulesCompliant } from './aws-config-rules-compliant/probe.js';
import { probe as awsIamAccessKeyAge } from './aws-iam-access-key-age/probe.js';
import { probe as awsIamUserMfa } from './aws-iam-user-mfa/probe.js';
import { probe as awsRootMfa } from './aws-root-mfa/probe.js';
import { probe as backupRepository } from './backup-repository/probe.js';
import { probe as backupRestoreDrill } from './backup-restore-drill/probe.js';
import { probe as evidenceCadence } from './evidence-cadence/probe.js';
import { probe as githubBranchProtection } from './github-branch-protection/probe.js';
import { probe as githubChangeReview } from './github-change-review/probe.js';
import { probe as githubOrg2fa } from './github-org-2fa/probe.js';
import { probe as githubReleaseSbom } from './github-release-sbom/probe.js';
import { probe as githubWorkflowRuns } from './github-workflow-runs/probe.js';
import { probe as iacDrift } from './iac-drift/probe.js';
import { probe as tlsCertificatePosture } from './tls-certificate-posture/probe.js';

/** Every probe vigil knows, in display order. A probe not listed here does not exist. */
export const probes: readonly AnyProbe[] = [
  tlsCertificatePosture,
  githubBranchProtection,
  githubOrg2fa,
  githubChangeReview,
  githubWorkflowRuns,
  githubReleaseSbom,
  awsRootMfa,
  awsIamUserMfa,
  awsIamAccessKeyAge,
  awsConfigRecording,
  awsConfigRulesCompliant,
  awsBackupFreshness,
  backupRepository,
  backupRestoreDrill,
  iacDrift,
  evidenceCadence,
];
