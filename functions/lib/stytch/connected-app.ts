import type { ProviderSpec } from './provider.js';

/** Connected App clients: `/v1/connected_apps/clients/...`, errors `idp_client_*`. */
export const CONFIDENTIAL_CLIENT_TYPES = new Set(['first_party', 'third_party']);

export const connectedAppSpec: ProviderSpec = {
  kind: 'connected_app',
  basePath: '/v1/connected_apps/clients',
  responseKey: 'connected_app',
  errorPrefix: 'idp_client',
  label: 'Connected App',
  // first_party_public / third_party_public clients have no secret.
  isConfidential: (client) => client.client_type === undefined || CONFIDENTIAL_CLIENT_TYPES.has(client.client_type),
  // Stytch documents no client_credentials grant for Connected Apps, so there is no probe.
};
