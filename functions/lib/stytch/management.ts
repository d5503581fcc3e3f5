import * as z from 'zod/mini';
import { resolveUrl } from '../config.js';
import { InvalidInputError, StytchApiError, VerificationError } from '../errors.js';
import { managementCredentialsSchema, parseSecretJson, shownSecretId, type ProjectSecret } from '../schemas.js';
import type { ReadSecret } from './credentials.js';
import type { CredentialsSource, StytchCredentials, StytchHttp } from './http.js';

/**
 * Stytch's management API for project secrets (DESIGN.md §4b, reference
 * stytch-api.md): create, list, get and delete the API secrets of one project
 * environment, with a workspace management key. There is no rotate verb and a
 * secret carries no name, so what may be deleted is decided by the caller from
 * its own records, never from this list (II).
 */

export const MANAGEMENT_BASE_URL = 'https://management.stytch.com';

/** A project environment, as the management API addresses it. */
export interface ProjectEnvironment {
  projectSlug: string;
  environmentSlug: string;
}

/** A project secret as the management API lists it: masked. */
export interface ProjectSecretInfo {
  secretId: string;
  last4: string;
  /** ISO 8601, as Stytch gives it. */
  createdAt: string | undefined;
  /** When the secret last authenticated a project-API request; undefined if never (or Stytch does not say). */
  usedAt: string | undefined;
}

export interface ManagementApi {
  /** Creates a secret; its value is shown this once. Never retried on its own (IV): the caller resolves a lost answer. */
  /**
   * `retried`: the request was sent more than once (a 429 is retried: Stytch refuses before acting). Should
   * an earlier request have acted after all, its answer lost, Stytch holds a secret this call never saw.
   */
  create(env: ProjectEnvironment): Promise<{ secretId: string; secret: string; retried?: boolean }>;
  list(env: ProjectEnvironment): Promise<ProjectSecretInfo[]>;
  /** undefined when Stytch has no secret with that id in the environment. */
  get(env: ProjectEnvironment, secretId: string): Promise<ProjectSecretInfo | undefined>;
  /** 'absent' when it was already gone (a retried delete whose first answer was lost). */
  delete(env: ProjectEnvironment, secretId: string): Promise<'deleted' | 'absent'>;
}

const secretInfoSchema = z.looseObject({
  secret_id: z.string(),
  last_four: z.string(),
  created_at: z.nullish(z.string()),
  used_at: z.nullish(z.string()),
});
const createdSchema = z.looseObject({ secret_id: z.string(), secret: z.string().check(z.minLength(4)) });

const toInfo = (s: z.infer<typeof secretInfoSchema>): ProjectSecretInfo => ({
  secretId: s.secret_id,
  last4: s.last_four,
  createdAt: s.created_at ?? undefined,
  usedAt: s.used_at ?? undefined,
});

function invalid(operation: string, requestId: string | undefined, what: string): StytchApiError {
  return new StytchApiError({ statusCode: 200, errorType: 'invalid_response', requestId, errorMessage: what, operation: `management.${operation}` });
}

const notFound = (error: unknown) => error instanceof StytchApiError && error.statusCode === 404;

export function createManagementApi(http: StytchHttp): ManagementApi {
  const base = (env: ProjectEnvironment) =>
    `/pwa/v3/projects/${encodeURIComponent(env.projectSlug)}/environments/${encodeURIComponent(env.environmentSlug)}/secrets`;

  return {
    async create(env) {
      const { body, requestId, attempts } = await http.call({
        operation: 'management.secrets_create',
        method: 'POST',
        auth: 'basic',
        path: () => base(env),
        json: {},
        idempotent: false,
      });
      const parsed = createdSchema.safeParse(body.secret);
      // Never echo the body: it holds the new secret.
      if (!parsed.success) throw invalid('secrets_create', requestId, 'the answer has no valid secret object');
      return { secretId: parsed.data.secret_id, secret: parsed.data.secret, retried: (attempts ?? 1) > 1 };
    },
    async list(env) {
      const { body, requestId } = await http.call({ operation: 'management.secrets_list', method: 'GET', auth: 'basic', path: () => base(env) });
      const parsed = z.array(secretInfoSchema).safeParse(body.secrets);
      if (!parsed.success) throw invalid('secrets_list', requestId, 'the answer has no valid secrets list');
      return parsed.data.map(toInfo);
    },
    async get(env, secretId) {
      try {
        const { body, requestId } = await http.call({
          operation: 'management.secrets_get',
          method: 'GET',
          auth: 'basic',
          path: () => `${base(env)}/${encodeURIComponent(secretId)}`,
        });
        const parsed = secretInfoSchema.safeParse(body.secret);
        if (!parsed.success) throw invalid('secrets_get', requestId, 'the answer has no valid secret object');
        return toInfo(parsed.data);
      } catch (error) {
        if (notFound(error)) return undefined;
        throw error;
      }
    },
    async delete(env, secretId) {
      try {
        await http.call({ operation: 'management.secrets_delete', method: 'DELETE', auth: 'basic', path: () => `${base(env)}/${encodeURIComponent(secretId)}` });
        return 'deleted';
      } catch (error) {
        if (notFound(error)) return 'absent';
        throw error;
      }
    },
  };
}

/**
 * The workspace management key, read from its secret
 * (STYTCH_MANAGEMENT_CREDENTIALS_SECRET_ID) and cached like the project
 * credentials; re-read once on a 401. Read-only for the function.
 */
export function managementCredentialsSource(
  readSecret: ReadSecret,
  secretId: string | undefined,
  options: { envBaseUrl: string | undefined; ttlMs: number; now?: () => number },
): CredentialsSource {
  if (!secretId) {
    throw new InvalidInputError(
      'This secret is a Stytch project secret (it has a secret_id), and rotating one needs a workspace management key: ' +
        'store it as {"workspace_key_id", "workspace_key_secret"} in a secret and set STYTCH_MANAGEMENT_CREDENTIALS_SECRET_ID on the function ' +
        '(the managementCredentialsSecretArn deploy parameter). See docs/deploy.md, "Rotating the Stytch project secret".',
    );
  }
  let cached: { value: Promise<StytchCredentials>; expiresAt: number } | undefined;
  const now = options.now ?? Date.now;
  const load = async (): Promise<StytchCredentials> => {
    const parsed = parseSecretJson(
      managementCredentialsSchema,
      await readSecret(secretId),
      `The Stytch management credentials secret ${shownSecretId(secretId)}`,
      'It must be JSON {"workspace_key_id": "...", "workspace_key_secret": "...", "base_url"?: "https://..."}; fix it with aws secretsmanager put-secret-value.',
    );
    return {
      projectId: parsed.workspace_key_id,
      secret: parsed.workspace_key_secret,
      baseUrl: resolveUrl(parsed.base_url, options.envBaseUrl, MANAGEMENT_BASE_URL, {
        fromSecret: 'base_url in the Stytch management credentials secret',
        fromEnv: 'STYTCH_MANAGEMENT_API_BASE_URL',
        example: MANAGEMENT_BASE_URL,
        credentialFields: 'the key belongs in workspace_key_id and workspace_key_secret',
      }),
    };
  };
  const get = (force: boolean) => {
    if (cached && !force && cached.expiresAt > now()) return cached.value;
    const value = load();
    const entry = { value, expiresAt: now() + options.ttlMs };
    cached = entry;
    // A failed read is never cached.
    value.catch(() => {
      if (cached === entry) cached = undefined;
    });
    return value;
  };
  return { get: () => get(false), refresh: () => get(true) };
}

/**
 * Proves a project secret authenticates (testSecret): an authenticated read of an M2M client that does
 * not exist. Stytch checks the project's credentials first, so a 404 (or a 200) means they were accepted
 * and a 401 or 403 that they were not. Nothing is created or changed; Stytch records the use (used_at).
 */
export async function probeProjectSecret(
  http: StytchHttp,
  value: Pick<ProjectSecret, 'project_id' | 'secret_id'>,
  which: 'new' | 'current' = 'new',
): Promise<void> {
  const env = value.project_id.startsWith('project-live-') ? 'live' : 'test';
  try {
    await http.call({
      operation: 'project.probe',
      method: 'GET',
      auth: 'basic',
      refreshOn401: false,
      path: () => `/v1/m2m/clients/m2m-client-${env}-00000000-0000-4000-8000-000000000000`,
    });
  } catch (error) {
    if (error instanceof StytchApiError && error.statusCode === 404) return;
    if (error instanceof StytchApiError && (error.statusCode === 401 || error.statusCode === 403)) {
      throw new VerificationError(
        `${which === 'new' ? 'The new project secret' : "AWSCURRENT's project secret"} ${value.secret_id} does not authenticate at Stytch's project API ` +
          `(${error.statusCode} ${error.errorType}${error.requestId ? `, request_id ${error.requestId}` : ''}).` +
          (which === 'current' ? ' Nothing was changed. Put the secret that belongs to that secret_id into the value, then rotate again.' : ''),
        { cause: error },
      );
    }
    throw error;
  }
}

/** Fixed credentials: the project secret under test, never re-read. */
export function fixedCredentials(credentials: StytchCredentials): CredentialsSource {
  return { get: async () => credentials, refresh: async () => credentials };
}
