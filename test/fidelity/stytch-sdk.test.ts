/**
 * The official `stytch` Node SDK against the emulator over real HTTP. The SDK
 * builds the URLs, headers and bodies and parses the answers exactly as it does
 * against api.stytch.com, so these tests are what show that the emulator speaks
 * Stytch's protocol rather than our own idea of it.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { Client, RequestError, StytchError } from 'stytch';
import { StytchEmulator, type ListeningEmulator } from '../../infra/local/stytch/emulator.js';

const REQUEST_ID = /^request-id-test-[0-9a-f-]{36}$/;

let emulator: StytchEmulator;
let server: ListeningEmulator;

beforeAll(async () => {
  // The SDK warns on every construction with a non-Stytch `env`; that is expected here.
  vi.spyOn(console, 'warn').mockImplementation(() => {});
  emulator = new StytchEmulator();
  server = await emulator.listen();
});

afterAll(async () => {
  await server.close();
  vi.restoreAllMocks();
});

afterEach(() => {
  emulator.clearFaults();
  emulator.setRateLimit(null);
  emulator.resetRequests();
});

function sdkClient(project: { projectId: string; secret: string }, env = `${server.url}/`): Client {
  return new Client({ project_id: project.projectId, secret: project.secret, env });
}

/** Runs `call` and returns what it threw, failing the test if it did not throw. */
async function thrown(call: () => Promise<unknown>): Promise<unknown> {
  try {
    await call();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to throw');
}

function expectStytchError(error: unknown, statusCode: number, errorType: string): void {
  expect(error).toBeInstanceOf(StytchError);
  const e = error as StytchError;
  expect(e.status_code).toBe(statusCode);
  expect(e.error_type).toBe(errorType);
  expect(e.request_id).toMatch(REQUEST_ID);
  expect(e.error_message).toEqual(expect.any(String));
  expect(e.error_url).toBe(`https://stytch.com/docs/api/errors/${statusCode}#${errorType}`);
}

describe('Fidelity: official stytch SDK against the Stytch emulator', () => {
  let project: { projectId: string; secret: string };
  let client: Client;

  beforeEach(() => {
    project = emulator.createProject();
    client = sdkClient(project);
  });

  describe('Namespace: connectedApp.clients', () => {
    let app: { client_id: string; client_secret: string | null };
    let oldSecret: string;

    beforeEach(() => {
      app = emulator.createConnectedApp(project.projectId, { clientType: 'first_party' });
      oldSecret = app.client_secret!;
    });

    it('get returns the typed ConnectedApp with last fours', async () => {
      const response = await client.connectedApp.clients.get({ client_id: app.client_id });

      expect(response.status_code).toBe(200);
      expect(response.request_id).toMatch(REQUEST_ID);
      expect(response.connected_app).toMatchObject({
        client_id: app.client_id,
        client_type: 'first_party',
        client_secret_last_four: oldSecret.slice(-4),
        next_client_secret_last_four: null,
      });
    });

    it('secrets.rotateStart returns next_client_secret, and both secrets are accepted', async () => {
      const response = await client.connectedApp.clients.secrets.rotateStart({ client_id: app.client_id });
      const next = response.connected_app.next_client_secret;

      expect(response.status_code).toBe(200);
      expect(next).toMatch(/^[A-Za-z0-9_-]{43,}$/);
      expect(response.connected_app.client_secret_last_four).toBe(oldSecret.slice(-4));
      expect(response.connected_app.next_client_secret_last_four).toBe(next.slice(-4));
      expect(emulator.isAccepted(app.client_id, oldSecret)).toBe(true);
      expect(emulator.isAccepted(app.client_id, next)).toBe(true);
    });

    it('secrets.rotate makes next current and retires the old secret', async () => {
      const { connected_app: started } = await client.connectedApp.clients.secrets.rotateStart({ client_id: app.client_id });

      const response = await client.connectedApp.clients.secrets.rotate({ client_id: app.client_id });

      expect(response.connected_app.client_secret_last_four).toBe(started.next_client_secret.slice(-4));
      expect(response.connected_app.next_client_secret_last_four).toBeNull();
      expect(emulator.isAccepted(app.client_id, started.next_client_secret)).toBe(true);
      expect(emulator.isAccepted(app.client_id, oldSecret)).toBe(false);
    });

    it('secrets.rotateCancel discards next and keeps the old secret', async () => {
      const { connected_app: started } = await client.connectedApp.clients.secrets.rotateStart({ client_id: app.client_id });

      const response = await client.connectedApp.clients.secrets.rotateCancel({ client_id: app.client_id });

      expect(response.connected_app.client_secret_last_four).toBe(oldSecret.slice(-4));
      expect(response.connected_app.next_client_secret_last_four).toBeNull();
      expect(emulator.isAccepted(app.client_id, started.next_client_secret)).toBe(false);
      expect(emulator.isAccepted(app.client_id, oldSecret)).toBe(true);
    });

    it('secrets.rotateStart throws StytchError 400 idp_client_already_rotating_secret during a rotation', async () => {
      await client.connectedApp.clients.secrets.rotateStart({ client_id: app.client_id });

      const error = await thrown(() => client.connectedApp.clients.secrets.rotateStart({ client_id: app.client_id }));

      expectStytchError(error, 400, 'idp_client_already_rotating_secret');
    });

    it.each(['rotate', 'rotateCancel'] as const)(
      'secrets.%s throws StytchError 400 idp_client_not_rotating_secret when not rotating',
      async (method) => {
        const error = await thrown(() => client.connectedApp.clients.secrets[method]({ client_id: app.client_id }));

        expectStytchError(error, 400, 'idp_client_not_rotating_secret');
      },
    );

    it('throws StytchError 404 idp_client_not_found for an unknown client', async () => {
      const error = await thrown(() => client.connectedApp.clients.get({ client_id: 'connected-app-test-missing' }));

      expectStytchError(error, 404, 'idp_client_not_found');
    });

    it('throws StytchError 400 invalid_idp_client_type when rotating a public client', async () => {
      const publicApp = emulator.createConnectedApp(project.projectId, { clientType: 'third_party_public' });

      const error = await thrown(() => client.connectedApp.clients.secrets.rotateStart({ client_id: publicApp.client_id }));

      expectStytchError(error, 400, 'invalid_idp_client_type');
    });

    it('reaches a client id that needs URL encoding', async () => {
      const odd = emulator.createConnectedApp(project.projectId, { clientId: 'odd/id with space' });

      const response = await client.connectedApp.clients.get({ client_id: odd.client_id });

      expect(response.connected_app.client_id).toBe('odd/id with space');
      expect(emulator.requests.at(-1)?.path).toBe('/v1/connected_apps/clients/odd%2Fid%20with%20space');
    });
  });

  describe('Namespace: m2m', () => {
    let m2m: { client_id: string; client_secret: string };

    beforeEach(() => {
      m2m = emulator.createM2MClient(project.projectId, { scopes: ['read:users', 'write:users'] });
    });

    it('clients.get returns the typed M2MClient with last fours', async () => {
      const response = await client.m2m.clients.get({ client_id: m2m.client_id });

      expect(response.status_code).toBe(200);
      expect(response.m2m_client).toMatchObject({
        client_id: m2m.client_id,
        scopes: ['read:users', 'write:users'],
        client_secret_last_four: m2m.client_secret.slice(-4),
        next_client_secret_last_four: null,
      });
    });

    it('clients.secrets.rotateStart, rotate and token follow the rotation', async () => {
      const started = await client.m2m.clients.secrets.rotateStart({ client_id: m2m.client_id });
      const next = started.m2m_client.next_client_secret;
      expect(started.m2m_client.next_client_secret_last_four).toBe(next.slice(-4));

      // During the rotation both secrets authenticate.
      await expect(client.m2m.token({ client_id: m2m.client_id, client_secret: m2m.client_secret })).resolves.toBeDefined();
      await expect(client.m2m.token({ client_id: m2m.client_id, client_secret: next })).resolves.toBeDefined();

      const rotated = await client.m2m.clients.secrets.rotate({ client_id: m2m.client_id });
      expect(rotated.m2m_client.client_secret_last_four).toBe(next.slice(-4));
      expect(rotated.m2m_client.next_client_secret_last_four).toBeNull();

      const error = await thrown(() => client.m2m.token({ client_id: m2m.client_id, client_secret: m2m.client_secret }));
      expectStytchError(error, 401, 'invalid_client');
    });

    it('clients.secrets.rotateCancel keeps the old secret', async () => {
      const started = await client.m2m.clients.secrets.rotateStart({ client_id: m2m.client_id });

      const response = await client.m2m.clients.secrets.rotateCancel({ client_id: m2m.client_id });

      expect(response.m2m_client.client_secret_last_four).toBe(m2m.client_secret.slice(-4));
      expect(emulator.isAccepted(m2m.client_id, started.m2m_client.next_client_secret)).toBe(false);
    });

    it('clients.secrets.rotateStart throws StytchError 400 m2m_client_already_rotating_secret during a rotation', async () => {
      emulator.adminRotateStart(m2m.client_id);

      const error = await thrown(() => client.m2m.clients.secrets.rotateStart({ client_id: m2m.client_id }));

      expectStytchError(error, 400, 'm2m_client_already_rotating_secret');
    });

    it.each(['rotate', 'rotateCancel'] as const)(
      'clients.secrets.%s throws StytchError 400 m2m_client_not_rotating_secret when not rotating',
      async (method) => {
        const error = await thrown(() => client.m2m.clients.secrets[method]({ client_id: m2m.client_id }));

        expectStytchError(error, 400, 'm2m_client_not_rotating_secret');
      },
    );

    it('clients.get throws StytchError 404 m2m_client_not_found for an unknown client', async () => {
      const error = await thrown(() => client.m2m.clients.get({ client_id: 'm2m-client-test-missing' }));

      expectStytchError(error, 404, 'm2m_client_not_found');
    });

    it('token returns a bearer access token, with and without scopes', async () => {
      const token = await client.m2m.token({ client_id: m2m.client_id, client_secret: m2m.client_secret });
      const scoped = await client.m2m.token({ client_id: m2m.client_id, client_secret: m2m.client_secret, scopes: ['read:users'] });

      expect(token).toMatchObject({ access_token: expect.any(String), token_type: 'bearer', expires_in: 3600 });
      expect(scoped.token_type).toBe('bearer');
    });

    it('token maps the OAuth error fields onto StytchError for a wrong secret', async () => {
      const error = await thrown(() => client.m2m.token({ client_id: m2m.client_id, client_secret: 'not-the-secret' }));

      expectStytchError(error, 401, 'invalid_client');
    });

    it('token issues a JWT that authenticateToken verifies against the project JWKS, with its client and scopes', async () => {
      // Act: what an app does: get a token, then check it locally (the SDK fetches
      // /v1/sessions/jwks/{project_id} and verifies signature, issuer, audience, expiry).
      const token = await client.m2m.token({ client_id: m2m.client_id, client_secret: m2m.client_secret, scopes: ['read:users'] });
      const all = await client.m2m.token({ client_id: m2m.client_id, client_secret: m2m.client_secret });
      const checked = await client.m2m.authenticateToken({ access_token: token.access_token, required_scopes: ['read:users'] });

      // Assess
      expect(checked).toEqual({ client_id: m2m.client_id, scopes: ['read:users'], custom_claims: {} });
      expect((await client.m2m.authenticateToken({ access_token: all.access_token })).scopes).toEqual(['read:users', 'write:users']);
      const missing = await thrown(() => client.m2m.authenticateToken({ access_token: token.access_token, required_scopes: ['write:users'] }));
      expect(missing).toMatchObject({ code: 'missing_scopes' });
      expect(emulator.requests.map((r) => r.operation)).toContain('sessions.jwks');
    });

    it('authenticateToken rejects a token of another project, a tampered token and an expired one', async () => {
      // Prepare
      const other = emulator.createProject();
      const otherClient = emulator.createM2MClient(other.projectId, { scopes: ['read:users'] });
      const foreign = await sdkClient(other).m2m.token({ client_id: otherClient.client_id, client_secret: otherClient.client_secret });
      const own = await client.m2m.token({ client_id: m2m.client_id, client_secret: m2m.client_secret });
      const [header, payload, signature] = own.access_token.split('.');
      const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')) as Record<string, unknown>;
      const tampered = [header, Buffer.from(JSON.stringify({ ...claims, scope: 'admin' })).toString('base64url'), signature].join('.');

      // Act and assess: wrong audience and issuer; bad signature; past its expiry.
      for (const access_token of [foreign.access_token, tampered]) {
        expect(await thrown(() => client.m2m.authenticateToken({ access_token })), access_token.slice(0, 12)).toMatchObject({ code: 'jwt_invalid' });
      }
      // A token issued two hours ago (an emulator whose clock is behind) has expired.
      const past = new StytchEmulator({ now: () => Date.now() - 2 * 3600_000 });
      const pastServer = await past.listen();
      try {
        const pastProject = past.createProject();
        const pastClient = past.createM2MClient(pastProject.projectId, { scopes: ['read:users'] });
        const sdk = sdkClient(pastProject, `${pastServer.url}/`);
        const old = await sdk.m2m.token({ client_id: pastClient.client_id, client_secret: pastClient.client_secret });
        expect(await thrown(() => sdk.m2m.authenticateToken({ access_token: old.access_token }))).toMatchObject({ code: 'jwt_invalid' });
      } finally {
        await pastServer.close();
      }
      expect(claims).toMatchObject({ iss: `stytch.com/${project.projectId}`, aud: [project.projectId], sub: m2m.client_id });
      expect((claims.exp as number) - (claims.iat as number)).toBe(own.expires_in);
    });

    it('token does not need the project secret', async () => {
      const withWrongProjectSecret = sdkClient({ projectId: project.projectId, secret: 'secret-test-wrong' });

      const token = await withWrongProjectSecret.m2m.token({ client_id: m2m.client_id, client_secret: m2m.client_secret });

      expect(token.token_type).toBe('bearer');
    });
  });

  describe('Authentication', () => {
    it('throws StytchError 401 unauthorized_credentials for a wrong project secret', async () => {
      const app = emulator.createConnectedApp(project.projectId);
      const wrong = sdkClient({ projectId: project.projectId, secret: 'secret-test-wrong' });

      const error = await thrown(() => wrong.connectedApp.clients.get({ client_id: app.client_id }));

      expectStytchError(error, 401, 'unauthorized_credentials');
    });

    it('rejects the old project secret after it is replaced, and accepts the new one', async () => {
      const app = emulator.createConnectedApp(project.projectId);
      const { secret } = emulator.rotateProjectSecret(project.projectId);

      const error = await thrown(() => client.connectedApp.clients.get({ client_id: app.client_id }));
      const response = await sdkClient({ projectId: project.projectId, secret }).connectedApp.clients.get({ client_id: app.client_id });

      expectStytchError(error, 401, 'unauthorized_credentials');
      expect(response.status_code).toBe(200);
    });

    it('throws StytchError 404 idp_client_not_found for a client of another project', async () => {
      const other = emulator.createProject();
      const foreign = emulator.createConnectedApp(other.projectId);

      const error = await thrown(() => client.connectedApp.clients.get({ client_id: foreign.client_id }));

      expectStytchError(error, 404, 'idp_client_not_found');
    });
  });

  describe('Wire details', () => {
    it('sends exact paths with no trailing slash, which the emulator records', async () => {
      const app = emulator.createConnectedApp(project.projectId);
      const m2m = emulator.createM2MClient(project.projectId);

      await client.connectedApp.clients.get({ client_id: app.client_id });
      await client.connectedApp.clients.secrets.rotateStart({ client_id: app.client_id });
      await client.m2m.clients.secrets.rotateStart({ client_id: m2m.client_id });
      await client.m2m.clients.secrets.rotateCancel({ client_id: m2m.client_id });
      await client.m2m.token({ client_id: m2m.client_id, client_secret: m2m.client_secret });

      expect(emulator.requests.map((r) => `${r.method} ${r.path} ${r.operation} ${r.status}`)).toEqual([
        `GET /v1/connected_apps/clients/${app.client_id} connected_app.get 200`,
        `POST /v1/connected_apps/clients/${app.client_id}/secrets/rotate/start connected_app.rotate_start 200`,
        `POST /v1/m2m/clients/${m2m.client_id}/secrets/rotate/start m2m.rotate_start 200`,
        `POST /v1/m2m/clients/${m2m.client_id}/secrets/rotate/cancel m2m.rotate_cancel 200`,
        `POST /v1/public/${project.projectId}/oauth2/token m2m.token 200`,
      ]);
    });

    it('works with an env without a trailing slash, and drops any path in env (routes are absolute)', async () => {
      const app = emulator.createConnectedApp(project.projectId);

      const bare = await sdkClient(project, server.url).connectedApp.clients.get({ client_id: app.client_id });
      const prefixed = await sdkClient(project, `${server.url}/some/prefix/`).connectedApp.clients.get({ client_id: app.client_id });

      expect(bare.status_code).toBe(200);
      expect(prefixed.status_code).toBe(200);
      expect(emulator.requests.map((r) => r.path)).toEqual([
        `/v1/connected_apps/clients/${app.client_id}`,
        `/v1/connected_apps/clients/${app.client_id}`,
      ]);
    });
  });

  describe('Faults and rate limit as the SDK sees them', () => {
    let app: { client_id: string };
    beforeEach(() => {
      app = emulator.createConnectedApp(project.projectId);
    });

    it('surfaces a 503 fault as StytchError 503 internal_server_error', async () => {
      emulator.addFault({ operation: 'connected_app.rotate_start', mode: 'before' });

      const error = await thrown(() => client.connectedApp.clients.secrets.rotateStart({ client_id: app.client_id }));

      expectStytchError(error, 503, 'internal_server_error');
    });

    it("surfaces an 'after' fault as an error although the rotation started", async () => {
      emulator.addFault({ operation: 'connected_app.rotate_start', mode: 'after' });

      const error = await thrown(() => client.connectedApp.clients.secrets.rotateStart({ client_id: app.client_id }));
      const retry = await thrown(() => client.connectedApp.clients.secrets.rotateStart({ client_id: app.client_id }));

      expectStytchError(error, 503, 'internal_server_error');
      expectStytchError(retry, 400, 'idp_client_already_rotating_secret');
    });

    it('surfaces a dropped connection as RequestError("fetch failed"), not StytchError', async () => {
      emulator.addFault({ mode: 'drop' });

      const error = await thrown(() => client.connectedApp.clients.get({ client_id: app.client_id }));

      expect(error).toBeInstanceOf(RequestError);
      expect(error).not.toBeInstanceOf(StytchError);
      expect((error as RequestError).message).toBe('fetch failed');
    });

    it('surfaces the rate limit as StytchError 429 too_many_requests', async () => {
      emulator.setRateLimit({ requestsPerSecond: 1 });
      await client.connectedApp.clients.get({ client_id: app.client_id });

      const error = await thrown(() => client.connectedApp.clients.get({ client_id: app.client_id }));

      expectStytchError(error, 429, 'too_many_requests');
    });
  });
});
