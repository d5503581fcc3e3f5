import type { Snapshot, VersionValue } from './snapshot.js';

/**
 * Snapshots written down as last fours, for the unit tests of diagnose and
 * planRecovery: `cur`, Stytch's `S4`/`N4`, and what AWSPENDING holds.
 */
export const CUR_VERSION = 'cccccccc-0000-4000-8000-000000000001';
export const PEND_VERSION = 'pppppppp-0000-4000-8000-000000000002';
export const PREV_VERSION = 'vvvvvvvv-0000-4000-8000-000000000003';
export const CLIENT_ID = 'connected-app-test-0001';

export type PendingSpec =
  | undefined
  /** placeholder without a value */
  | 'none'
  /** a value ending in these four */
  | string
  | { invalid: string }
  | { otherClient: string };

export interface StateSpec {
  cur: string;
  S4: string | null;
  N4: string | null;
  pending?: PendingSpec;
  rotationEnabled?: boolean;
  pendingOnCurrent?: boolean;
}

function pendingValue(spec: Exclude<PendingSpec, undefined>): VersionValue {
  if (spec === 'none') return { kind: 'none' };
  if (typeof spec === 'string') return { kind: 'value', clientId: CLIENT_ID, last4: spec };
  if ('invalid' in spec) return { kind: 'invalid', reason: spec.invalid };
  return { kind: 'value', clientId: 'connected-app-test-other', last4: spec.otherClient };
}

export function snapshotOf(spec: StateSpec): Snapshot {
  return {
    secretId: 'demo/stytch-client',
    name: 'demo/stytch-client',
    arn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:demo/stytch-client-AbCdEf',
    rotation: {
      enabled: spec.rotationEnabled ?? true,
      lambdaArn: 'arn:aws:lambda:us-east-1:123456789012:function:rotate-stytch-secret',
      schedule: 'rate(30 days)',
      lastRotatedDate: '2026-01-01T00:00:00Z',
      nextRotationDate: '2026-01-31T00:00:00Z',
    },
    current: {
      versionId: CUR_VERSION,
      stages: spec.pendingOnCurrent ? ['AWSCURRENT', 'AWSPENDING'] : ['AWSCURRENT'],
      value: { kind: 'value', clientId: CLIENT_ID, last4: spec.cur },
    },
    pending: spec.pending === undefined ? undefined : { versionId: PEND_VERSION, stages: ['AWSPENDING'], value: pendingValue(spec.pending) },
    pendingOnCurrent: spec.pendingOnCurrent ?? false,
    previous: { versionId: PREV_VERSION, stages: ['AWSPREVIOUS'], value: { kind: 'value', clientId: CLIENT_ID, last4: 'prev' } },
    client: { id: CLIENT_ID, kind: 'connected_app' },
    stytch: { secretLast4: spec.S4, nextSecretLast4: spec.N4 },
  };
}
