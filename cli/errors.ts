import { RotationError, StytchApiError } from '../functions/lib/errors.js';

/**
 * Errors the CLI reports with exit code 3 (usage or access), and the one
 * place that turns any error into a message an operator can act on. Messages
 * are built from ids, error names and last fours only (invariant V): AWS and
 * Stytch error messages describe requests, never secret values.
 */
export class CliError extends Error {
  constructor(message: string, options?: ErrorOptions & { usage?: boolean }) {
    super(message, options);
    this.name = 'CliError';
    this.usage = options?.usage ?? false;
  }
  /** A wrong command line: the message is followed by a pointer to --help. */
  readonly usage: boolean;
}

export interface ErrorContext {
  secretId?: string | undefined;
  credentialsSecretId?: string | undefined;
}

/** A message for any error: ours and the shared library's already say how to fix; AWS SDK and network errors get a hint. */
export function explainError(error: unknown, context: ErrorContext = {}): string {
  if (error instanceof CliError) return error.message;
  if (error instanceof StytchApiError) return explainStytch(error, context);
  if (error instanceof RotationError) return error.message;
  if (!(error instanceof Error)) return String(error);

  const name = error.name;
  const message = error.message.replace(/\s+$/, '');
  const secret = context.secretId ? `secret ${context.secretId}` : 'the secret';
  if (name === 'ResourceNotFoundException') {
    return `Secrets Manager has no ${secret} (${message}). Check --secret-id, and the region and account you are using (--region, --profile, AWS_REGION, AWS_PROFILE).`;
  }
  if (name === 'AccessDeniedException' || name === 'UnrecognizedClientException' || name === 'InvalidSignatureException' || name === 'ExpiredTokenException') {
    return `AWS refused the request (${name}: ${message}). Check your AWS credentials (--profile, AWS_PROFILE, aws sso login) and that they may read ${secret} and the Stytch credentials secret.`;
  }
  if (name === 'CredentialsProviderError') {
    return `No AWS credentials were found (${message}). Use --profile or AWS_PROFILE, run aws sso login, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.`;
  }
  if (/region is missing/i.test(message)) {
    return 'No AWS region is set. Pass --region, set AWS_REGION or AWS_DEFAULT_REGION, or use a profile that has one.';
  }
  const code = networkErrorCode(error);
  if (code) {
    return `Secrets Manager could not be reached (${code}). Check --endpoint-url, AWS_ENDPOINT_URL_SECRETS_MANAGER and AWS_ENDPOINT_URL (for the local stack: is npm run serve running?), and your network.`;
  }
  return `${name}: ${message}`;
}

/** The code of a connection failure (ECONNREFUSED and the like), on the error or its cause. */
export function networkErrorCode(error: Error): string | undefined {
  const code = (error as { code?: unknown }).code ?? (error.cause as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && /^(ECONNREFUSED|ENOTFOUND|ECONNRESET|ETIMEDOUT|EAI_AGAIN)$/.test(code) ? code : undefined;
}

function explainStytch(error: StytchApiError, context: ErrorContext): string {
  const where = context.credentialsSecretId ? ` (credentials from secret ${context.credentialsSecretId})` : '';
  if (error.statusCode === 401) {
    return `${error.message}. Stytch rejected the project credentials${where}: put the project's current secret into the credentials secret, or point --credentials-secret-id at the right one.`;
  }
  if (error.statusCode === 404 || /_not_found$/.test(error.errorType)) {
    return `${error.message}. The client_id in the secret does not exist in the Stytch project of the credentials${where}: check the client_id and that the credentials are for the right project.`;
  }
  if (error.transient) {
    return `${error.message}. Stytch could not be reached or was unavailable after retries: try again shortly.`;
  }
  return error.message;
}
