import type { AnyProbe } from '../src/probe/contract.js';
import { probe as githubBranchProtection } from './github-branch-protection/probe.js';
import { probe as githubOrg2fa } from './github-org-2fa/probe.js';
import { probe as tlsCertificatePosture } from './tls-certificate-posture/probe.js';

/** Every probe vigil knows, in display order. A probe not listed here does not exist. */
export const probes: readonly AnyProbe[] = [tlsCertificatePosture, githubBranchProtection, githubOrg2fa];
