import { getSecret } from '@aws-lambda-powertools/parameters/secrets';

/**
 * Reads a rotated Stytch client secret the way an app should: cached for
 * `maxAgeSeconds` (keep it shorter than the rotation's overlap window, one hour
 * by default, and no call ever sees a retired secret), and re-read once if
 * Stytch rejects it anyway.
 */
export function stytchClientSecret(secretId, { maxAgeSeconds = 300 } = {}) {
  const read = (forceFetch) => getSecret(secretId, { transform: 'json', maxAge: maxAgeSeconds, forceFetch });

  /** Runs `call({ client_id, client_secret, ... })`; on a rejection, re-reads AWSCURRENT and retries once. */
  async function withClientSecret(call) {
    try {
      return await call(await read(false));
    } catch (error) {
      if (!rejected(error)) throw error;
      return await call(await read(true)); // rotated and retired since it was cached
    }
  }
  return { withClientSecret };
}

/** Stytch's answer to a client secret it no longer accepts (OAuth token endpoint or API). */
function rejected(error) {
  return error?.status_code === 401 || error?.error === 'invalid_client' || error?.error_type === 'invalid_client';
}
