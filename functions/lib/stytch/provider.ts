import * as z from 'zod/mini';
import { StytchApiError, VerificationError } from '../errors.js';
import type { ClientKind } from '../schemas.js';
import type { StytchHttp } from './http.js';

/**
 * The handful of verbs the rotation needs from a kind of Stytch client. The
 * steps in rotation.ts are written once against this interface; Connected
 * Apps and M2M clients differ only in the small specs that implement it.
 */
export interface ClientState {
  clientId: string;
  kind: ClientKind;
  /** Stytch's `client_secret_last_four`. */
  secretLast4: string | null;
  /** Stytch's `next_client_secret_last_four`: null when no rotation is in progress. */
  nextSecretLast4: string | null;
  /** Public clients have no secret to rotate. */
  confidential: boolean;
  clientType: string | undefined;
}

export interface ClientProvider {
  readonly kind: ClientKind;
  get(clientId: string): Promise<ClientState>;
  /** Returns the new secret: the only time Stytch ever shows it. */
  rotateStart(clientId: string): Promise<{ state: ClientState; nextSecret: string }>;
  rotate(clientId: string): Promise<ClientState>;
  rotateCancel(clientId: string): Promise<ClientState>;
  /** Proves a secret authenticates, where Stytch documents a way (M2M: client_credentials). */
  /** Proves `secret` authenticates; `which` names it in the failure: the pending secret (default) or AWSCURRENT's. */
  probe: ((clientId: string, secret: string, which?: ProbedSecret) => Promise<void>) | undefined;
  isAlreadyRotating(error: unknown): boolean;
  isNotRotating(error: unknown): boolean;
}

export interface ProviderSpec {
  kind: ClientKind;
  /** e.g. `/v1/connected_apps/clients` */
  basePath: string;
  /** Key of the client object in responses, e.g. `connected_app`. */
  responseKey: string;
  /** Prefix of this kind's error types, e.g. `idp_client` (`idp_client_already_rotating_secret`). */
  errorPrefix: string;
  /** Name used in messages. */
  label: string;
  isConfidential(client: StytchClientObject): boolean;
  /** Optional probe through a documented token endpoint. */
  probe?: (http: StytchHttp, clientId: string, secret: string, which: ProbedSecret) => Promise<void>;
}

/** The fields the rotation reads; everything else Stytch returns is ignored. */
export const stytchClientSchema = z.looseObject({
  client_id: z.string(),
  client_type: z.optional(z.string()),
  status: z.optional(z.string()),
  client_secret_last_four: z.nullish(z.string()),
  next_client_secret_last_four: z.nullish(z.string()),
  next_client_secret: z.optional(z.string()),
});
export type StytchClientObject = z.infer<typeof stytchClientSchema>;

function errorOf(spec: ProviderSpec, operation: string, requestId: string | undefined, what: string): StytchApiError {
  return new StytchApiError({ statusCode: 200, errorType: 'invalid_response', requestId, errorMessage: what, operation: `${spec.kind}.${operation}` });
}

export function createProvider(spec: ProviderSpec, http: StytchHttp): ClientProvider {
  const path = (clientId: string, suffix = '') => () => `${spec.basePath}/${encodeURIComponent(clientId)}${suffix}`;

  async function send(operation: string, clientId: string, suffix: string, method: 'GET' | 'POST') {
    const { body, requestId } = await http.call({ operation: `${spec.kind}.${operation}`, method, path: path(clientId, suffix), auth: 'basic', json: {} });
    const parsed = stytchClientSchema.safeParse(body[spec.responseKey]);
    // Never echo the body: a rotate/start answer holds the new secret.
    if (!parsed.success) throw errorOf(spec, operation, requestId, `the answer has no valid ${spec.responseKey} object`);
    return { client: parsed.data, requestId };
  }

  function toState(client: StytchClientObject): ClientState {
    return {
      clientId: client.client_id,
      kind: spec.kind,
      secretLast4: client.client_secret_last_four ?? null,
      nextSecretLast4: client.next_client_secret_last_four ?? null,
      confidential: spec.isConfidential(client),
      clientType: client.client_type,
    };
  }

  const hasType = (error: unknown, suffix: string) =>
    error instanceof StytchApiError && error.errorType === `${spec.errorPrefix}_${suffix}`;

  return {
    kind: spec.kind,
    async get(clientId) {
      return toState((await send('get', clientId, '', 'GET')).client);
    },
    async rotateStart(clientId) {
      const { client, requestId } = await send('rotate_start', clientId, '/secrets/rotate/start', 'POST');
      if (!client.next_client_secret) throw errorOf(spec, 'rotate_start', requestId, 'the answer has no next_client_secret');
      // The next secret's last four are not in this answer; derive them so callers see one shape.
      const state = { ...toState(client), nextSecretLast4: client.next_client_secret.slice(-4) };
      return { state, nextSecret: client.next_client_secret };
    },
    async rotate(clientId) {
      return toState((await send('rotate', clientId, '/secrets/rotate', 'POST')).client);
    },
    async rotateCancel(clientId) {
      return toState((await send('rotate_cancel', clientId, '/secrets/rotate/cancel', 'POST')).client);
    },
    probe: spec.probe ? (clientId, secret, which = 'pending') => spec.probe!(http, clientId, secret, which) : undefined,
    isAlreadyRotating: (error) => hasType(error, 'already_rotating_secret'),
    isNotRotating: (error) => hasType(error, 'not_rotating_secret'),
  };
}

/** Which secret a probe tests: the rotation's pending one, or AWSCURRENT's (the configuration test). */
export type ProbedSecret = 'pending' | 'current';

/** Turns a failed probe into a verification failure a person can act on, naming the secret that failed. */
export function probeFailure(spec: Pick<ProviderSpec, 'label'>, clientId: string, error: StytchApiError, which: ProbedSecret = 'pending'): VerificationError {
  const failed = `does not authenticate at Stytch's token endpoint (${error.statusCode} ${error.errorType}${error.requestId ? `, request_id ${error.requestId}` : ''}).`;
  return new VerificationError(
    which === 'current'
      ? `The AWSCURRENT secret of ${spec.label} ${clientId} ${failed} Consumers of this secret are failing: put the client's current secret into it, or rotate it now to issue a new one.`
      : `The pending secret of ${spec.label} ${clientId} ${failed}`,
    { cause: error },
  );
}
