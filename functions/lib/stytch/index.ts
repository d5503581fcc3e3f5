import { InvalidInputError } from '../errors.js';
import type { ClientKind, RotatedSecret } from '../schemas.js';
import { connectedAppSpec } from './connected-app.js';
import type { StytchHttp } from './http.js';
import { m2mSpec } from './m2m.js';
import { createProvider, type ClientProvider, type ProviderSpec } from './provider.js';

export type { ClientProvider, ClientState } from './provider.js';

const SPECS: Record<ClientKind, ProviderSpec> = { connected_app: connectedAppSpec, m2m: m2mSpec };

/** The kind of Stytch client a secret names: `client_kind` if set, else the id's prefix. */
export function clientKindOf(secret: Pick<RotatedSecret, 'client_id' | 'client_kind'>): ClientKind {
  if (secret.client_kind) return secret.client_kind;
  if (secret.client_id.startsWith('m2m-client-')) return 'm2m';
  if (secret.client_id.startsWith('connected-app-')) return 'connected_app';
  throw new InvalidInputError(
    'The rotated secret\'s client_id starts with neither connected-app- nor m2m-client-; add "client_kind": "connected_app" or "m2m" to the secret JSON.',
  );
}

export function providerFor(kind: ClientKind, http: StytchHttp): ClientProvider {
  return createProvider(SPECS[kind], http);
}

export function labelOf(kind: ClientKind): string {
  return SPECS[kind].label;
}
