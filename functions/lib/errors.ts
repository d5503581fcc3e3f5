/**
 * Typed errors. Each says what is wrong and how to fix it, and none ever
 * carries a secret value (invariant V): messages are built from ids, last
 * fours and Stytch's error types only.
 *
 * `transient` decides the failure policy (DESIGN.md §4 "On failure"):
 * transient errors are rethrown untouched so Secrets Manager reattempts with
 * the same token; definitive ones cancel the Stytch rotation and clear
 * AWSPENDING.
 */
export class RotationError extends Error {
  readonly transient: boolean = false;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'RotationError';
  }
}

/** Bad input: rejected before any Stytch call, changes nothing. */
export class InvalidInputError extends RotationError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'InvalidInputError';
  }
}

/** Stytch does not hold the secret Secrets Manager expects it to. */
export class VerificationError extends RotationError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'VerificationError';
  }
}

/** A Secrets Manager call failed in a way worth retrying (throttling, 5xx, network). */
export class TransientError extends RotationError {
  override readonly transient = true;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'TransientError';
  }
}

export interface StytchErrorDetails {
  statusCode: number;
  errorType: string;
  requestId?: string | undefined;
  /** Stytch's own message: never contains a secret (it describes the request). */
  errorMessage?: string | undefined;
  operation: string;
  /** From a 429's or 503's Retry-After header. */
  retryAfterMs?: number | undefined;
}

/**
 * An error from Stytch, or from the way to it (network, timeout: statusCode 0).
 * Network errors, timeouts, 429 and 5xx are transient; other 4xx are not.
 */
export class StytchApiError extends RotationError {
  override readonly transient: boolean;
  readonly statusCode: number;
  readonly errorType: string;
  readonly requestId: string | undefined;
  readonly operation: string;
  readonly retryAfterMs: number | undefined;
  constructor(details: StytchErrorDetails, options?: ErrorOptions) {
    super(
      `Stytch ${details.operation} failed: ${details.statusCode || 'no response'} ${details.errorType}` +
        (details.errorMessage ? ` (${details.errorMessage})` : '') +
        (details.requestId ? ` [request_id ${details.requestId}]` : ''),
      options,
    );
    this.name = 'StytchApiError';
    this.statusCode = details.statusCode;
    this.errorType = details.errorType;
    this.requestId = details.requestId;
    this.operation = details.operation;
    this.retryAfterMs = details.retryAfterMs;
    // A garbled answer (a proxy's page, a truncated body) says nothing about Stytch's state: retry, never cancel.
    this.transient = isTransientStatus(details.statusCode) || details.errorType === 'invalid_response';
  }
}

export function isTransientStatus(status: number): boolean {
  return status === 0 || status === 408 || status === 429 || status >= 500;
}

export function isTransient(error: unknown): boolean {
  return error instanceof RotationError ? error.transient : !(error instanceof Error && isDefinitiveAwsError(error));
}

/** AWS SDK errors a retry will not fix. Anything else from AWS (throttling, 5xx, network) is worth a reattempt. */
const DEFINITIVE_AWS_ERRORS = new Set([
  'ResourceNotFoundException',
  'InvalidParameterException',
  'InvalidRequestException',
  'ResourceExistsException',
  'AccessDeniedException',
  'DecryptionFailure',
  'EncryptionFailure',
  'ValidationException',
  'MalformedPolicyDocumentException',
]);

export function isDefinitiveAwsError(error: Error): boolean {
  return DEFINITIVE_AWS_ERRORS.has(error.name);
}
