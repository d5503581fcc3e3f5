import { InvalidInputError } from './errors.js';

/** The function's configuration, read once per container from the environment. */
export interface FunctionConfig {
  /** Default Stytch credentials secret (a rotated secret may override it). */
  credentialsSecretId: string | undefined;
  /** Base URL override for every Stytch call when the credentials secret has none. */
  apiBaseUrl: string | undefined;
  /** How long Stytch project credentials are cached in a warm container. */
  credentialsTtlMs: number;
  /** Timeout of a single Stytch request (further bounded by the Lambda's remaining time). */
  requestTimeoutMs: number;
  /** Attempts per Stytch request, the first included. */
  maxAttempts: number;
  /** DynamoDB table of leases, bindings and due retirements (DESIGN.md §4a); required by the function. */
  stateTableName: string | undefined;
  /** How long the previous secret keeps working after AWSCURRENT moves (0: retired at the end of finishSecret). */
  graceSeconds: number;
  /** The workspace management key's secret, needed only to rotate project secrets (DESIGN.md §4b). */
  managementCredentialsSecretId: string | undefined;
  /** Base URL override for the management API when the management credentials secret has none. */
  managementBaseUrl: string | undefined;
  /** How long the deletion of a previous project secret Stytch saw in use after the move is put off, once. */
  inUseDeferSeconds: number;
}

function positiveInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) {
    throw new InvalidInputError(`Environment variable ${name} must be a positive integer (1 or more); unset it to use ${fallback}.`);
  }
  return value;
}

function nonNegativeInt(env: NodeJS.ProcessEnv, name: string, fallback: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value > max) {
    throw new InvalidInputError(`Environment variable ${name} must be a whole number of seconds from 0 to ${max}; unset it to use ${fallback}.`);
  }
  return value;
}

/** A week: a longer overlap would keep a retired credential alive for longer than any cache needs. */
const MAX_GRACE_SECONDS = 7 * 86_400;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): FunctionConfig {
  const graceSeconds = nonNegativeInt(env, 'PREVIOUS_SECRET_GRACE_SECONDS', 3600, MAX_GRACE_SECONDS);
  return {
    credentialsSecretId: env.STYTCH_CREDENTIALS_SECRET_ID || undefined,
    apiBaseUrl: env.STYTCH_API_BASE_URL || undefined,
    credentialsTtlMs: positiveInt(env, 'STYTCH_CREDENTIALS_TTL_SECONDS', 300) * 1000,
    requestTimeoutMs: positiveInt(env, 'STYTCH_REQUEST_TIMEOUT_MS', 10_000),
    maxAttempts: positiveInt(env, 'STYTCH_MAX_ATTEMPTS', 6),
    stateTableName: env.ROTATION_STATE_TABLE || undefined,
    graceSeconds,
    managementCredentialsSecretId: env.STYTCH_MANAGEMENT_CREDENTIALS_SECRET_ID || undefined,
    managementBaseUrl: env.STYTCH_MANAGEMENT_API_BASE_URL || undefined,
    // Default: one more overlap window (at least an hour), as the deferral gives the late reader a whole window again.
    inUseDeferSeconds: nonNegativeInt(env, 'PROJECT_SECRET_IN_USE_DEFER_SECONDS', Math.max(graceSeconds, 3600), MAX_GRACE_SECONDS),
  };
}

/** The function refuses every event without its state table (DESIGN.md §2). */
export function requireStateTable(config: FunctionConfig): string {
  if (config.stateTableName === undefined) {
    throw new InvalidInputError(
      'ROTATION_STATE_TABLE is not set: the function needs its DynamoDB state table (partition key pk, TTL attribute expires_at) for leases, bindings and retirements. ' +
        'Deploy it with serverless.yml, or set ROTATION_STATE_TABLE to the name of such a table.',
    );
  }
  return config.stateTableName;
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

function isLoopback(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname) || /^127(\.\d{1,3}){3}$/.test(hostname);
}

/**
 * Stytch base URL (DESIGN.md §2): `base_url` from the credentials secret, else
 * STYTCH_API_BASE_URL, else live or test by project id prefix, as the official
 * SDK does. Plain http is for loopback only: the project secret travels in the
 * Authorization header of every call.
 */
export function resolveBaseUrl(projectId: string, fromSecret: string | undefined, fromEnv: string | undefined): string {
  const fallback = projectId.startsWith('project-live-') ? 'https://api.stytch.com' : 'https://test.stytch.com';
  return resolveUrl(fromSecret, fromEnv, fallback, {
    fromSecret: 'base_url in the Stytch credentials secret',
    fromEnv: 'STYTCH_API_BASE_URL',
    example: 'https://api.stytch.com',
    credentialFields: 'Stytch credentials belong in project_id and secret',
  });
}

/**
 * A base URL from a secret, else from the environment, else the default. Plain http is for loopback only:
 * the secret or key travels in the Authorization header of every call (V).
 */
export function resolveUrl(
  fromSecret: string | undefined,
  fromEnv: string | undefined,
  fallback: string,
  names: { fromSecret: string; fromEnv: string; example: string; credentialFields: string },
): string {
  const chosen = fromSecret ?? fromEnv;
  const source = fromSecret !== undefined ? names.fromSecret : names.fromEnv;
  if (chosen === undefined) return fallback;
  let url: URL;
  try {
    url = new URL(chosen);
  } catch {
    throw new InvalidInputError(`${source} is not a valid URL; use e.g. ${names.example} or remove it.`);
  }
  if (url.username || url.password) {
    throw new InvalidInputError(`${source} must not contain a user name or password; ${names.credentialFields}.`);
  }
  if (url.protocol === 'https:') return url.origin + url.pathname.replace(/\/+$/, '');
  if (url.protocol === 'http:' && isLoopback(url.hostname)) return url.origin + url.pathname.replace(/\/+$/, '');
  throw new InvalidInputError(
    `${source} must use https (plain http is accepted only for loopback hosts such as 127.0.0.1); got ${url.protocol}//${url.hostname}.`,
  );
}
