/**
 * The errors the emulator answers with. `name` is the awsJson1_1 `__type`
 * (what the SDK exposes as `error.name`); messages follow the service's
 * wording where it is known and never contain a secret value (invariant V).
 */
export class SecretsManagerServiceError extends Error {
  /** HTTP status on the wire: the service answers 400 for client errors, 500 for its own faults. */
  readonly httpStatus: number;

  constructor(name: string, message: string, httpStatus?: number) {
    super(message);
    this.name = name;
    this.httpStatus = httpStatus ?? (name === 'InternalServiceError' ? 500 : 400);
  }
}

export const secretNotFound = (): SecretsManagerServiceError =>
  new SecretsManagerServiceError('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");

export const valueNotFoundForStage = (stage: string): SecretsManagerServiceError =>
  new SecretsManagerServiceError(
    'ResourceNotFoundException',
    `Secrets Manager can't find the specified secret value for staging label: ${stage}`,
  );

export const valueNotFoundForVersion = (versionId: string): SecretsManagerServiceError =>
  new SecretsManagerServiceError(
    'ResourceNotFoundException',
    `Secrets Manager can't find the specified secret value for VersionId: ${versionId}`,
  );

export const invalidRequest = (message: string): SecretsManagerServiceError =>
  new SecretsManagerServiceError('InvalidRequestException', message);

export const invalidParameter = (message: string): SecretsManagerServiceError =>
  new SecretsManagerServiceError('InvalidParameterException', message);

export const markedForDeletion = (): SecretsManagerServiceError =>
  invalidRequest("You can't perform this operation on the secret because it was marked for deletion.");

/** The service's framework-level answer to a value outside the API model's constraints. */
export const validation = (detail: string): SecretsManagerServiceError =>
  new SecretsManagerServiceError('ValidationException', `1 validation error detected: ${detail}`);

export const previousRotationIncomplete = (): SecretsManagerServiceError =>
  invalidRequest("A previous rotation isn't complete. That rotation will be reattempted.");

/** The wording AWS documents for InvalidRequestException; also what CancelRotateSecret answers (as moto does). */
export const noRotationFunction = (): SecretsManagerServiceError =>
  invalidRequest(
    "You tried to enable rotation on a secret that doesn't already have a Lambda function ARN configured and you didn't include such an ARN as a parameter in this call.",
  );
