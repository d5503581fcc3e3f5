import type { Snapshot, StateView, VersionValue } from './snapshot.js';

/**
 * Snapshots written down as last fours, for the unit tests of diagnose and
 * planRecovery: `cur`, Stytch's `S4`/`N4`, what AWSPENDING holds, and what
 * the state table says (binding, lease, overlap window).
 */
export const CUR_VERSION = 'cccccccc-0000-4000-8000-000000000001';
export const PEND_VERSION = 'pppppppp-0000-4000-8000-000000000002';
export const PREV_VERSION = 'vvvvvvvv-0000-4000-8000-000000000003';
export const CLIENT_ID = 'connected-app-test-0001';
export const PROJECT_ID = 'project-test-0001';
export const SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:demo/stytch-client-AbCdEf';
export const OTHER_SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:other/stytch-client-XyZ123';
export const STATE_TABLE = 'stytch-secret-rotation-state';
/** When every snapshot here was read. */
export const READ_AT = Date.parse('2026-01-15T12:00:00Z');

export type PendingSpec =
  | undefined
  /** placeholder without a value */
  | 'none'
  /** a value ending in these four */
  | string
  | { invalid: string }
  | { otherClient: string }
  /** the same client_secret as AWSCURRENT */
  | { copyOfCurrent: true };

/** The state table: unknown (no table named), or what it records; the secret is bound to what its value names unless `binding` says otherwise. */
export type TableSpec =
  | 'unknown'
  | {
      binding?: 'bound' | 'unbound' | { otherClient: string } | { otherProject: string } | { otherCredentials: string } | 'client-bound-elsewhere';
      /** A retirement recorded for the AWSCURRENT version (previous secret: Stytch's current), due this long after READ_AT; negative: past due. */
      windowDueInMs?: number;
      /** A lease on the client, ending this long after READ_AT. */
      lease?: { holder: string; what: string; untilInMs: number };
    };

export interface StateSpec {
  cur: string;
  S4: string | null;
  N4: string | null;
  pending?: PendingSpec;
  rotationEnabled?: boolean;
  pendingOnCurrent?: boolean;
  /** Default: a table where the secret is bound to its client, with no lease and no window. */
  table?: TableSpec;
}

function pendingValue(spec: Exclude<PendingSpec, undefined>, cur: string): VersionValue {
  if (spec === 'none') return { kind: 'none' };
  if (typeof spec === 'string') return { kind: 'value', clientId: CLIENT_ID, last4: spec };
  if ('invalid' in spec) return { kind: 'invalid', reason: spec.invalid };
  if ('copyOfCurrent' in spec) return { kind: 'value', clientId: CLIENT_ID, last4: cur, copyOfCurrent: true };
  return { kind: 'value', clientId: 'connected-app-test-other', last4: spec.otherClient };
}

export function stateOf(spec: StateSpec): StateView {
  const table = spec.table ?? {};
  if (table === 'unknown') return { kind: 'unknown', reason: 'no state table is named. Name it with --state-table NAME or ROTATION_STATE_TABLE.' };
  const valueNames = { clientId: CLIENT_ID, projectId: PROJECT_ID, credentialsSecretId: undefined };
  const boundAt = '2025-12-01T00:00:00.000Z';
  const b = table.binding ?? 'bound';
  const binding =
    b === 'unbound' || b === 'client-bound-elsewhere'
      ? undefined
      : b === 'bound'
        ? { ...valueNames, boundAt }
        : 'otherClient' in b
          ? { ...valueNames, clientId: b.otherClient, boundAt }
          : 'otherProject' in b
            ? { ...valueNames, projectId: b.otherProject, boundAt }
            : { ...valueNames, credentialsSecretId: b.otherCredentials, boundAt };
  const clientBinding =
    b === 'client-bound-elsewhere'
      ? { ...valueNames, secretArn: OTHER_SECRET_ARN, boundAt }
      : b === 'bound'
        ? { ...valueNames, secretArn: SECRET_ARN, boundAt }
        : undefined;
  return {
    kind: 'read',
    table: STATE_TABLE,
    valueNames,
    binding,
    clientBinding,
    lease: table.lease && { holder: table.lease.holder, what: table.lease.what, until: READ_AT + table.lease.untilInMs },
    retirement:
      table.windowDueInMs === undefined
        ? undefined
        : { dueAt: READ_AT + table.windowDueInMs, versionId: CUR_VERSION, last4: spec.cur, previousVersionId: PREV_VERSION, previousLast4: spec.S4 ?? '' },
  };
}

export function snapshotOf(spec: StateSpec): Snapshot {
  return {
    secretId: 'demo/stytch-client',
    name: 'demo/stytch-client',
    arn: SECRET_ARN,
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
    pending: spec.pending === undefined ? undefined : { versionId: PEND_VERSION, stages: ['AWSPENDING'], value: pendingValue(spec.pending, spec.cur) },
    pendingOnCurrent: spec.pendingOnCurrent ?? false,
    previous: { versionId: PREV_VERSION, stages: ['AWSPREVIOUS'], value: { kind: 'value', clientId: CLIENT_ID, last4: 'prev' } },
    client: { id: CLIENT_ID, kind: 'connected_app' },
    stytch: { secretLast4: spec.S4, nextSecretLast4: spec.N4 },
    state: stateOf(spec),
    readAt: READ_AT,
  };
}
