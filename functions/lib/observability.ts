import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';

/**
 * The one place the Powertools instances are created, so the bundle holds one
 * of each. Service name and namespace can be overridden by the standard
 * POWERTOOLS_* variables.
 */
export const SERVICE_NAME = 'stytch-secret-rotation';
export const METRICS_NAMESPACE = 'StytchSecretRotation';

export function createLogger(): Logger {
  return new Logger({ serviceName: SERVICE_NAME });
}

export function createMetrics(): Metrics {
  return new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAME });
}

/** What the rotation logs through: narrow, so tests can capture every line. */
export type RotationLogger = {
  debug: (message: string, extra?: Record<string, unknown>) => void;
  info: (message: string, extra?: Record<string, unknown>) => void;
  warn: (message: string, extra?: Record<string, unknown>) => void;
  error: (message: string, extra?: Record<string, unknown>) => void;
};

/** Counters the rotation emits (EMF, unit Count). */
export type RotationMetric =
  | 'StepSucceeded'
  | 'StepFailed'
  | 'RotationStarted'
  | 'RotationCompleted'
  | 'RotationCancelled'
  | 'RotationResumed'
  | 'OrphanRepaired'
  | 'HalfDoneCompleted'
  | 'DeadPendingCleared'
  | 'DriftDetected'
  | 'StytchRetry'
  | 'PutOutcomeUnknown'
  // The state table (DESIGN.md §4a): leases (VI) and bindings (VII).
  | 'LeaseContended'
  | 'LeaseExpired'
  | 'LeaseLost'
  | 'BindingCreated'
  | 'BindingRefused'
  // The overlap window and the retirement sweep (III).
  | 'PreviousRetiredEarly'
  | 'PreviousSecretRetired'
  | 'RetirementRecordedLate'
  | 'RetirementCleared'
  | 'RetirementDeferred'
  | 'RetirementFailed'
  | 'SweepSucceeded'
  | 'SweepFailed'
  // Project secrets (DESIGN.md §4b).
  | 'OrphanProjectSecret'
  | 'PreviousSecretStillUsed';

export type RotationMetrics = { count: (name: RotationMetric) => void };
