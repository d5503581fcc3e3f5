import type { ClientKind } from '../functions/lib/schemas.js';
import type { LeaseInfo, Retirement } from '../functions/lib/state/table.js';

/**
 * What `status` sees, as plain data: Secrets Manager's versions and stages,
 * reduced to last fours (invariant V: no value is kept), and Stytch's two last
 * fours. `diagnose` works on this alone, so every state of DESIGN.md §4 can be
 * written down in a unit test.
 */

/** A version's value, reduced to what the verdicts need. */
export type VersionValue =
  /**
   * A valid rotated secret: its client and the last four characters of its
   * client_secret. `copyOfCurrent`: the same client_secret as AWSCURRENT (a
   * pending copy, never a new secret), decided while reading and kept as a flag only.
   */
  | { kind: 'value'; clientId: string; last4: string; copyOfCurrent?: boolean }
  /** No value yet: the placeholder Secrets Manager labels AWSPENDING before createSecret stores one. */
  | { kind: 'none' }
  /** A value that is not a valid rotated secret; `reason` names fields, never a value. */
  | { kind: 'invalid'; reason: string };

export interface VersionView {
  versionId: string;
  stages: string[];
  value: VersionValue;
}

export interface RotationConfig {
  enabled: boolean;
  lambdaArn: string | undefined;
  /** e.g. `rate(30 days)`, with `, window 2h` when a Duration is set. */
  schedule: string | undefined;
  /** ISO 8601 */
  lastRotatedDate: string | undefined;
  nextRotationDate: string | undefined;
}

export interface Snapshot {
  /** The id the operator passed (name or ARN). */
  secretId: string;
  name: string;
  arn: string;
  rotation: RotationConfig;
  /** AWSCURRENT: always a valid value (the reader refuses a secret without one). */
  current: VersionView & { value: Extract<VersionValue, { kind: 'value' }> };
  /** AWSPENDING on a version that is not AWSCURRENT: an unfinished rotation. */
  pending: VersionView | undefined;
  /** AWSPENDING left on the AWSCURRENT version by a finished rotation: harmless, Secrets Manager ignores it. */
  pendingOnCurrent: boolean;
  previous: VersionView | undefined;
  client: { id: string; kind: ClientKind };
  /** Stytch's client_secret_last_four and next_client_secret_last_four. */
  stytch: { secretLast4: string | null; nextSecretLast4: string | null };
  /** What the function's state table says about this secret and its client. */
  state: StateView;
  /** When it was read (epoch ms): the overlap window is judged against it. */
  readAt: number;
}

/** A client, its project and the credentials secret a value names (undefined: the function's default credentials). */
export interface BindingRef {
  clientId: string;
  projectId: string;
  credentialsSecretId: string | undefined;
}

/**
 * The state table's view (leases VI, bindings VII, the overlap window):
 * `unknown` when no table is named or it could not be read, with why.
 */
export type StateView =
  | { kind: 'unknown'; reason: string }
  | {
      kind: 'read';
      table: string;
      /** What AWSCURRENT's value names: the binding a rotation would act under; undefined when the value or its credentials could not be read. */
      valueNames: BindingRef | undefined;
      /** The secret's binding as its own item records it; undefined until its first rotation. */
      binding: (BindingRef & { boundAt: string | undefined }) | undefined;
      /** The binding the value's client records (which secret it belongs to), if any. */
      clientBinding: (BindingRef & { secretArn: string; boundAt: string | undefined }) | undefined;
      /** The lease on the value's client, expired or not. */
      lease: LeaseInfo | undefined;
      /** The previous secret of the value's client waiting to be retired (the overlap window). */
      retirement: Retirement | undefined;
    };

/**
 * What status could read, when some part could not be: a Snapshot is a
 * Survey with every part read. AWSCURRENT may be missing or not a rotated
 * secret, the client may be known only from the binding, Stytch may be
 * unreadable; `problems` says why each missing part is missing.
 */
export interface Survey {
  secretId: string;
  name: string;
  arn: string;
  rotation: RotationConfig;
  current: VersionView | undefined;
  pending: VersionView | undefined;
  pendingOnCurrent: boolean;
  previous: VersionView | undefined;
  /** From AWSCURRENT's value, else from the secret's binding in the state table. */
  client: { id: string; kind: ClientKind } | undefined;
  /** Undefined when Stytch could not be read (see problems). */
  stytch: { secretLast4: string | null; nextSecretLast4: string | null } | undefined;
  state: StateView;
  readAt: number;
  /** The Stytch credentials secret used, and where the CLI found it. */
  credentials?: { id: string; source: string } | undefined;
  problems?: SurveyProblem[];
}

/** Why a part of the survey could not be read. `message` names ids and error codes only (V). */
export type SurveyProblem =
  | { kind: 'credentials-unknown'; message: string; cause?: unknown }
  | { kind: 'credentials-unreadable'; message: string; credentialsSecretId: string; cause?: unknown }
  | { kind: 'stytch-credentials-rejected'; message: string; credentialsSecretId: string; cause?: unknown }
  | { kind: 'client-not-found'; message: string; credentialsSecretId: string; cause?: unknown }
  | { kind: 'stytch-unreachable'; message: string; cause?: unknown }
  | { kind: 'stytch-error'; message: string; cause?: unknown }
  | { kind: 'public-client'; message: string; cause?: unknown }
  | { kind: 'client-kind-unknown'; message: string; cause?: unknown };

/** Everything was read: the verdicts of diagnose apply. */
export function isComplete(s: Survey): s is Snapshot {
  return (s.problems ?? []).length === 0 && s.current?.value.kind === 'value' && s.client !== undefined && s.stytch !== undefined;
}

export const CLIENT_LABELS: Record<ClientKind, string> = { connected_app: 'Connected App', m2m: 'M2M client' };
