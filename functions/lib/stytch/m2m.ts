import { StytchApiError } from '../errors.js';
import { probeFailure, type ProviderSpec } from './provider.js';

/** M2M clients: `/v1/m2m/clients/...`, errors `m2m_client_*`, and a real probe. */
export const m2mSpec: ProviderSpec = {
  kind: 'm2m',
  basePath: '/v1/m2m/clients',
  responseKey: 'm2m_client',
  errorPrefix: 'm2m_client',
  label: 'M2M client',
  isConfidential: () => true,
  async probe(http, clientId, secret, which) {
    try {
      // client_credentials proves the secret really authenticates; the token it returns is discarded unread.
      await http.call({
        operation: 'm2m.token',
        method: 'POST',
        auth: 'none',
        path: (credentials) => `/v1/public/${encodeURIComponent(credentials.projectId)}/oauth2/token`,
        form: { grant_type: 'client_credentials', client_id: clientId, client_secret: secret },
      });
    } catch (error) {
      // Stytch answers wrong client credentials in the OAuth shape, reportedly 400, possibly 401 (invalid_client):
      // both mean the secret does not authenticate. Anything else (a redirect, a missing route) is what it says.
      if (error instanceof StytchApiError && (error.statusCode === 400 || error.statusCode === 401)) throw probeFailure(m2mSpec, clientId, error, which);
      throw error;
    }
  },
};
