import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EmulatedApiError, StytchEmulator, type StytchEmulatorOptions } from './emulator.js';

/** How a test reaches the emulator: in-process through `emulator.fetch`, or over real HTTP. */
interface Transport {
  call(path: string, init?: RequestInit): Promise<Response>;
  close(): Promise<void>;
}

const TRANSPORTS: Array<[string, (emulator: StytchEmulator) => Promise<Transport>]> = [
  [
    'emulator.fetch',
    async (emulator) => ({
      call: (path, init) => emulator.fetch(`http://stytch.local${path}`, init),
      close: async () => {},
    }),
  ],
  [
    'HTTP listen()',
    async (emulator) => {
      const server = await emulator.listen();
      return { call: (path, init) => fetch(`${server.url}${path}`, init), close: server.close };
    },
  ],
];

const URL_SAFE_SECRET = /^[A-Za-z0-9_-]{43,}$/;
const REQUEST_ID = /^request-id-test-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** Reads a JSON body with just enough typing for assertions. */
async function json(response: Response): Promise<Record<string, any>> {
  return (await response.json()) as Record<string, any>;
}

describe.each(TRANSPORTS)('Class: StytchEmulator over %s', (_name, connect) => {
  let clock: number;
  let emulator: StytchEmulator;
  let transport: Transport;
  let project: { projectId: string; secret: string };
  let auth: string;

  async function start(options: StytchEmulatorOptions = {}): Promise<void> {
    emulator = new StytchEmulator({ now: () => clock, ...options });
    transport = await connect(emulator);
    project = emulator.createProject();
    auth = basic(project.projectId, project.secret);
  }

  beforeEach(async () => {
    clock = 1_700_000_000_000;
    await start();
  });

  afterEach(async () => {
    await transport.close();
  });

  const get = (path: string, authorization: string | null = auth): Promise<Response> =>
    transport.call(path, { headers: authorization === null ? {} : { authorization } });
  const post = (path: string, body: string | null = '{}', authorization: string | null = auth): Promise<Response> =>
    transport.call(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(authorization === null ? {} : { authorization }) },
      ...(body === null ? {} : { body }),
    });
  const caPath = (clientId: string, suffix = ''): string => `/v1/connected_apps/clients/${encodeURIComponent(clientId)}${suffix}`;
  const m2mPath = (clientId: string, suffix = ''): string => `/v1/m2m/clients/${encodeURIComponent(clientId)}${suffix}`;
  const tokenPath = (projectId = project.projectId): string => `/v1/public/${projectId}/oauth2/token`;
  const form = (fields: Record<string, string>): RequestInit => ({
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });

  describe('Endpoint: GET /v1/connected_apps/clients/{client_id}', () => {
    it('returns the Connected App with every documented field and no rotation in progress', async () => {
      // Prepare
      const app = emulator.createConnectedApp(project.projectId, { clientType: 'third_party', clientName: 'Billing' });

      // Act
      const response = await get(caPath(app.client_id));
      const body = await json(response);

      // Assess
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      expect(body).toMatchObject({ status_code: 200, request_id: expect.stringMatching(REQUEST_ID) });
      expect(body.connected_app).toEqual({
        client_id: app.client_id,
        client_name: 'Billing',
        client_description: expect.any(String),
        status: 'active',
        full_access_allowed: false,
        client_type: 'third_party',
        redirect_urls: [],
        access_token_expiry_minutes: expect.any(Number),
        access_token_template_content: '',
        post_logout_redirect_urls: [],
        bypass_consent_for_offline_access: false,
        creation_method: expect.any(String),
        id_token_template_content: '',
        client_secret_last_four: app.client_secret!.slice(-4),
        next_client_secret_last_four: null,
        access_token_custom_audience: '',
        logo_url: '',
        client_id_metadata_url: '',
      });
    });

    it('decodes a URL-encoded client id', async () => {
      const app = emulator.createConnectedApp(project.projectId, { clientId: 'odd/id with space' });

      const response = await get(caPath(app.client_id));

      expect(response.status).toBe(200);
      expect((await json(response)).connected_app.client_id).toBe('odd/id with space');
    });

    it('shows a public client with no secret last four', async () => {
      const app = emulator.createConnectedApp(project.projectId, { clientType: 'first_party_public' });

      const body = await json(await get(caPath(app.client_id)));

      expect(app.client_secret).toBeNull();
      expect(body.connected_app).toMatchObject({ client_type: 'first_party_public', client_secret_last_four: null });
    });

    it('answers 404 idp_client_not_found for an unknown client, with the documented error JSON', async () => {
      const response = await get(caPath('connected-app-test-missing'));
      const body = await json(response);

      expect(response.status).toBe(404);
      expect(body).toEqual({
        status_code: 404,
        request_id: expect.stringMatching(REQUEST_ID),
        error_type: 'idp_client_not_found',
        error_message: expect.any(String),
        error_url: 'https://stytch.com/docs/api/errors/404#idp_client_not_found',
      });
    });

    it('answers 404 for a client of another project', async () => {
      const other = emulator.createProject();
      const app = emulator.createConnectedApp(other.projectId);

      const response = await get(caPath(app.client_id));

      expect(response.status).toBe(404);
      expect((await json(response)).error_type).toBe('idp_client_not_found');
    });

    it('answers 404 idp_client_not_found for an M2M client id', async () => {
      const m2m = emulator.createM2MClient(project.projectId);

      const response = await get(caPath(m2m.client_id));

      expect(response.status).toBe(404);
      expect((await json(response)).error_type).toBe('idp_client_not_found');
    });

    it.each([
      ['no Authorization header', () => null],
      ['a wrong project secret', (projectId: string) => basic(projectId, 'secret-test-wrong')],
      ['an unknown project', () => basic('project-test-unknown', 'secret-test-wrong')],
      ['a non-Basic scheme', () => 'Bearer something'],
    ])('answers 401 unauthorized_credentials for %s', async (_case, header) => {
      const app = emulator.createConnectedApp(project.projectId);

      const response = await get(caPath(app.client_id), header(project.projectId));
      const body = await json(response);

      expect(response.status).toBe(401);
      expect(body).toMatchObject({
        status_code: 401,
        error_type: 'unauthorized_credentials',
        error_url: 'https://stytch.com/docs/api/errors/401#unauthorized_credentials',
      });
    });

    it('rejects the old project secret after rotateProjectSecret and accepts the new one', async () => {
      const app = emulator.createConnectedApp(project.projectId);

      const { secret } = emulator.rotateProjectSecret(project.projectId);

      expect((await get(caPath(app.client_id))).status).toBe(401);
      expect((await get(caPath(app.client_id), basic(project.projectId, secret))).status).toBe(200);
    });
  });

  describe('Endpoint: GET /v1/m2m/clients/{client_id}', () => {
    it('returns the M2M client with its scopes and last fours', async () => {
      const m2m = emulator.createM2MClient(project.projectId, { clientName: 'Worker', scopes: ['read:users', 'write:users'] });

      const response = await get(m2mPath(m2m.client_id));
      const body = await json(response);

      expect(response.status).toBe(200);
      expect(body).toMatchObject({ status_code: 200, request_id: expect.stringMatching(REQUEST_ID) });
      expect(body.m2m_client).toEqual({
        client_id: m2m.client_id,
        client_name: 'Worker',
        client_description: expect.any(String),
        status: 'active',
        scopes: ['read:users', 'write:users'],
        client_secret_last_four: m2m.client_secret.slice(-4),
        next_client_secret_last_four: null,
        trusted_metadata: {},
      });
    });

    it('answers 404 m2m_client_not_found for an unknown client and for a Connected App id', async () => {
      const app = emulator.createConnectedApp(project.projectId);

      for (const id of ['m2m-client-test-missing', app.client_id]) {
        const response = await get(m2mPath(id));
        expect(response.status).toBe(404);
        expect((await json(response)).error_type).toBe('m2m_client_not_found');
      }
    });
  });

  describe.each([
    ['Connected App', 'connected_apps', 'idp_client', 'connected_app'],
    ['M2M', 'm2m', 'm2m_client', 'm2m_client'],
  ] as const)('Rotation endpoints for %s clients', (_label, segment, errorPrefix, field) => {
    let clientId: string;
    let oldSecret: string;
    const path = (suffix = ''): string => `/v1/${segment}/clients/${encodeURIComponent(clientId)}${suffix}`;

    beforeEach(() => {
      const created =
        segment === 'm2m' ? emulator.createM2MClient(project.projectId) : emulator.createConnectedApp(project.projectId);
      clientId = created.client_id;
      oldSecret = created.client_secret!;
    });

    it('rotate/start returns next_client_secret once and then both secrets are accepted', async () => {
      const response = await post(path('/secrets/rotate/start'));
      const body = await json(response);
      const next = body[field].next_client_secret as string;

      expect(response.status).toBe(200);
      expect(next).toMatch(URL_SAFE_SECRET);
      expect(body[field]).toMatchObject({
        client_id: clientId,
        client_secret_last_four: oldSecret.slice(-4),
        next_client_secret_last_four: next.slice(-4),
      });
      expect(emulator.isAccepted(clientId, oldSecret)).toBe(true);
      expect(emulator.isAccepted(clientId, next)).toBe(true);

      // GET shows the next secret's last four, never the secret itself.
      const text = await (await get(path())).text();
      expect(text).not.toContain(next);
      expect(JSON.parse(text)[field].next_client_secret_last_four).toBe(next.slice(-4));
    });

    if (segment === 'connected_apps') {
      it('rotate/start omits creation_method, as ConnectedAppWithNextClientSecret does', async () => {
        const body = await json(await post(path('/secrets/rotate/start')));
        expect(body.connected_app).not.toHaveProperty('creation_method');
      });
    }

    it('rotate/start accepts an empty body as well as {}', async () => {
      const response = await post(path('/secrets/rotate/start'), null);
      expect(response.status).toBe(200);
    });

    it(`rotate/start answers 400 ${errorPrefix}_already_rotating_secret during a rotation and keeps the pending secret`, async () => {
      const first = await json(await post(path('/secrets/rotate/start')));
      const next = first[field].next_client_secret as string;

      const response = await post(path('/secrets/rotate/start'));
      const body = await json(response);

      expect(response.status).toBe(400);
      expect(body).toMatchObject({
        status_code: 400,
        error_type: `${errorPrefix}_already_rotating_secret`,
        error_url: `https://stytch.com/docs/api/errors/400#${errorPrefix}_already_rotating_secret`,
      });
      expect(JSON.stringify(body)).not.toContain(next);
      expect(emulator.clientState(clientId).nextClientSecretLast4).toBe(next.slice(-4));
    });

    it('rotate promotes the next secret: only it is accepted, the old one is rejected', async () => {
      const next = (await json(await post(path('/secrets/rotate/start'))))[field].next_client_secret as string;

      const response = await post(path('/secrets/rotate'));
      const body = await json(response);

      expect(response.status).toBe(200);
      expect(body[field]).toMatchObject({ client_secret_last_four: next.slice(-4), next_client_secret_last_four: null });
      expect(body[field]).not.toHaveProperty('next_client_secret');
      expect(emulator.isAccepted(clientId, next)).toBe(true);
      expect(emulator.isAccepted(clientId, oldSecret)).toBe(false);
    });

    it('rotate/cancel discards the next secret: only the old one is accepted', async () => {
      const next = (await json(await post(path('/secrets/rotate/start'))))[field].next_client_secret as string;

      const response = await post(path('/secrets/rotate/cancel'));
      const body = await json(response);

      expect(response.status).toBe(200);
      expect(body[field]).toMatchObject({ client_secret_last_four: oldSecret.slice(-4), next_client_secret_last_four: null });
      expect(emulator.isAccepted(clientId, oldSecret)).toBe(true);
      expect(emulator.isAccepted(clientId, next)).toBe(false);
    });

    it.each(['/secrets/rotate', '/secrets/rotate/cancel'])(
      `%s answers 400 ${errorPrefix}_not_rotating_secret when no rotation is in progress`,
      async (suffix) => {
        const response = await post(path(suffix));

        expect(response.status).toBe(400);
        expect((await json(response)).error_type).toBe(`${errorPrefix}_not_rotating_secret`);
        expect(emulator.isAccepted(clientId, oldSecret)).toBe(true);
      },
    );

    it(`answers 404 ${errorPrefix}_not_found on every rotation endpoint for an unknown client`, async () => {
      for (const suffix of ['/secrets/rotate/start', '/secrets/rotate', '/secrets/rotate/cancel']) {
        const response = await post(`/v1/${segment}/clients/unknown-client${suffix}`);
        expect(response.status).toBe(404);
        expect((await json(response)).error_type).toBe(`${errorPrefix}_not_found`);
      }
    });

    it('answers 401 unauthorized_credentials before touching the client', async () => {
      const response = await post(path('/secrets/rotate/start'), '{}', basic(project.projectId, 'wrong'));

      expect(response.status).toBe(401);
      expect((await json(response)).error_type).toBe('unauthorized_credentials');
      expect(emulator.clientState(clientId).nextClientSecretLast4).toBeNull();
    });

    it.each([
      ['malformed JSON', '{"oops'],
      ['a JSON array', '[]'],
    ])('answers 400 invalid_request_body for %s and changes nothing', async (_case, body) => {
      const response = await post(path('/secrets/rotate/start'), body);

      expect(response.status).toBe(400);
      expect((await json(response)).error_type).toBe('invalid_request_body');
      expect(emulator.clientState(clientId).nextClientSecretLast4).toBeNull();
    });
  });

  describe('Public Connected App clients', () => {
    it.each(['first_party_public', 'third_party_public'] as const)(
      'answer 400 invalid_idp_client_type on every rotation endpoint (%s)',
      async (clientType) => {
        const app = emulator.createConnectedApp(project.projectId, { clientType });

        for (const suffix of ['/secrets/rotate/start', '/secrets/rotate', '/secrets/rotate/cancel']) {
          const response = await post(caPath(app.client_id, suffix));
          expect(response.status).toBe(400);
          expect((await json(response)).error_type).toBe('invalid_idp_client_type');
        }
      },
    );
  });

  describe('Endpoint: POST /v1/public/{project_id}/oauth2/token', () => {
    let m2m: { client_id: string; client_secret: string };

    beforeEach(() => {
      m2m = emulator.createM2MClient(project.projectId, { scopes: ['read:users', 'write:users'] });
    });

    it('issues a bearer token for a form-encoded client_credentials request, without project credentials', async () => {
      const response = await transport.call(
        tokenPath(),
        form({ grant_type: 'client_credentials', client_id: m2m.client_id, client_secret: m2m.client_secret }),
      );
      const body = await json(response);

      expect(response.status).toBe(200);
      expect(body).toEqual({
        access_token: expect.any(String),
        token_type: 'bearer',
        expires_in: 3600,
        request_id: expect.stringMatching(REQUEST_ID),
        status_code: 200,
      });
    });

    it('accepts a JSON body', async () => {
      const response = await transport.call(tokenPath(), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ grant_type: 'client_credentials', client_id: m2m.client_id, client_secret: m2m.client_secret }),
      });

      expect(response.status).toBe(200);
    });

    it('accepts client credentials in a Basic header, as the docs allow', async () => {
      const response = await transport.call(tokenPath(), {
        ...form({ grant_type: 'client_credentials' }),
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: basic(m2m.client_id, m2m.client_secret),
        },
      });

      expect(response.status).toBe(200);
    });

    it('accepts the next secret during a rotation and rejects the old one after rotate', async () => {
      const next = emulator.adminRotateStart(m2m.client_id);
      const tokenWith = (secret: string): Promise<Response> =>
        transport.call(tokenPath(), form({ grant_type: 'client_credentials', client_id: m2m.client_id, client_secret: secret }));

      expect((await tokenWith(next)).status).toBe(200);
      expect((await tokenWith(m2m.client_secret)).status).toBe(200);
      emulator.adminRotate(m2m.client_id);
      expect((await tokenWith(next)).status).toBe(200);
      expect((await tokenWith(m2m.client_secret)).status).toBe(401);
    });

    it('answers 401 invalid_client in the OAuth error shape for a wrong secret, without echoing it', async () => {
      const wrong = 'wrong-secret-value-that-must-not-be-echoed';

      const response = await transport.call(
        tokenPath(),
        form({ grant_type: 'client_credentials', client_id: m2m.client_id, client_secret: wrong }),
      );
      const text = await response.text();

      expect(response.status).toBe(401);
      expect(JSON.parse(text)).toEqual({
        status_code: 401,
        request_id: expect.stringMatching(REQUEST_ID),
        error: 'invalid_client',
        error_description: expect.any(String),
        error_uri: 'https://stytch.com/docs/api/errors/401#invalid_client',
      });
      expect(text).not.toContain(wrong);
    });

    it('answers 401 invalid_client for a Connected App client and for a client of another project', async () => {
      const app = emulator.createConnectedApp(project.projectId);
      const other = emulator.createProject();

      const asApp = await transport.call(
        tokenPath(),
        form({ grant_type: 'client_credentials', client_id: app.client_id, client_secret: app.client_secret! }),
      );
      const wrongProject = await transport.call(
        tokenPath(other.projectId),
        form({ grant_type: 'client_credentials', client_id: m2m.client_id, client_secret: m2m.client_secret }),
      );

      expect(asApp.status).toBe(401);
      expect(wrongProject.status).toBe(401);
      expect((await json(wrongProject)).error).toBe('invalid_client');
    });

    it.each([
      ['an unsupported grant type', { grant_type: 'authorization_code' }, 'unsupported_grant_type'],
      ['a missing grant type', {}, 'invalid_request'],
      ['a missing client secret', { grant_type: 'client_credentials', client_secret: '' }, 'invalid_request'],
      ['a scope the client was not granted', { grant_type: 'client_credentials', scope: 'read:users admin' }, 'invalid_scope'],
    ])('answers 400 for %s', async (_case, fields, error) => {
      const response = await transport.call(
        tokenPath(),
        form({ client_id: m2m.client_id, client_secret: m2m.client_secret, ...fields }),
      );

      expect(response.status).toBe(400);
      expect((await json(response)).error).toBe(error);
    });

    it('issues a token for a subset of the granted scopes', async () => {
      const response = await transport.call(
        tokenPath(),
        form({ grant_type: 'client_credentials', client_id: m2m.client_id, client_secret: m2m.client_secret, scope: 'read:users' }),
      );

      expect(response.status).toBe(200);
    });
  });

  describe('Routing', () => {
    it.each([
      ['an unknown path', 'GET', '/v1/users'],
      ['a trailing slash', 'GET', '/v1/m2m/clients/some-client/'],
      ['a doubled slash', 'GET', '//v1/m2m/clients/some-client'],
      ['the wrong method', 'GET', '/v1/m2m/clients/some-client/secrets/rotate/start'],
      ['POST on a client', 'POST', '/v1/m2m/clients/some-client'],
    ])('answers 404 route_not_found for %s', async (_case, method, path) => {
      const response = await transport.call(path, { method, headers: { authorization: auth } });

      expect(response.status).toBe(404);
      expect(await json(response)).toMatchObject({ status_code: 404, error_type: 'route_not_found' });
      expect(emulator.requests.at(-1)).toMatchObject({ operation: 'unknown', status: 404 });
    });

    it('ignores the query string', async () => {
      const m2m = emulator.createM2MClient(project.projectId);

      const response = await get(`${m2mPath(m2m.client_id)}?expand=1`);

      expect(response.status).toBe(200);
    });
  });

  describe('Faults', () => {
    let app: { client_id: string; client_secret: string | null };
    beforeEach(() => {
      app = emulator.createConnectedApp(project.projectId);
    });

    it("'before' answers 503 internal_server_error without applying the effect, once", async () => {
      emulator.addFault({ operation: 'connected_app.rotate_start', mode: 'before' });

      const failed = await post(caPath(app.client_id, '/secrets/rotate/start'));

      expect(failed.status).toBe(503);
      expect(await json(failed)).toMatchObject({
        status_code: 503,
        error_type: 'internal_server_error',
        error_url: 'https://stytch.com/docs/api/errors/503#internal_server_error',
      });
      expect(emulator.clientState(app.client_id).nextClientSecretLast4).toBeNull();
      expect(emulator.requests.at(-1)).toMatchObject({ status: 503, faulted: 'before' });
      // Consumed: the retry goes through.
      expect((await post(caPath(app.client_id, '/secrets/rotate/start'))).status).toBe(200);
    });

    it("'before' with status 429 answers too_many_requests with Retry-After", async () => {
      emulator.addFault({ mode: 'before', status: 429 });

      const response = await get(caPath(app.client_id));

      expect(response.status).toBe(429);
      expect(response.headers.get('retry-after')).toBe('1');
      expect((await json(response)).error_type).toBe('too_many_requests');
    });

    it("'before' uses the given status and error type", async () => {
      emulator.addFault({ mode: 'before', status: 500, errorType: 'unknown_error' });

      const response = await get(caPath(app.client_id));

      expect(response.status).toBe(500);
      expect((await json(response)).error_type).toBe('unknown_error');
    });

    it("'after' applies the effect and then answers the error, so the next secret is lost to the caller", async () => {
      emulator.addFault({ operation: 'connected_app.rotate_start', mode: 'after' });

      const failed = await post(caPath(app.client_id, '/secrets/rotate/start'));

      expect(failed.status).toBe(503);
      expect(JSON.stringify(await json(failed))).not.toMatch(/next_client_secret/);
      expect(emulator.clientState(app.client_id).nextClientSecretLast4).not.toBeNull();
      expect(emulator.requests.at(-1)).toMatchObject({ status: 503, faulted: 'after' });
      const retry = await post(caPath(app.client_id, '/secrets/rotate/start'));
      expect((await json(retry)).error_type).toBe('idp_client_already_rotating_secret');
    });

    it("'after' on rotate completes the rotation although the caller sees 503", async () => {
      const next = emulator.adminRotateStart(app.client_id);
      emulator.addFault({ operation: 'connected_app.rotate', mode: 'after' });

      expect((await post(caPath(app.client_id, '/secrets/rotate'))).status).toBe(503);

      expect(emulator.isAccepted(app.client_id, next)).toBe(true);
      expect(emulator.isAccepted(app.client_id, app.client_secret!)).toBe(false);
    });

    it("'drop' fails the connection with TypeError('fetch failed') and applies nothing", async () => {
      emulator.addFault({ operation: 'connected_app.rotate_start', mode: 'drop' });

      const error = await post(caPath(app.client_id, '/secrets/rotate/start')).catch((e: unknown) => e);

      expect(error).toBeInstanceOf(TypeError);
      expect((error as TypeError).message).toBe('fetch failed');
      expect(emulator.clientState(app.client_id).nextClientSecretLast4).toBeNull();
      expect(emulator.requests).toEqual([expect.objectContaining({ operation: 'connected_app.rotate_start', status: 0, faulted: 'drop' })]);
    });

    it("'delay' answers normally after the delay", async () => {
      emulator.addFault({ operation: 'connected_app.get', mode: 'delay', delayMs: 50 });
      const started = performance.now();

      const response = await get(caPath(app.client_id));

      expect(response.status).toBe(200);
      expect(performance.now() - started).toBeGreaterThanOrEqual(40);
      expect(emulator.requests.at(-1)).toMatchObject({ status: 200, faulted: 'delay' });
    });

    it("'delay' honours an abort: the call rejects with the signal's reason and nothing is applied", async () => {
      emulator.addFault({ operation: 'connected_app.rotate_start', mode: 'delay', delayMs: 300 });
      const controller = new AbortController();
      const reason = new DOMException('caller timed out', 'TimeoutError');
      setTimeout(() => controller.abort(reason), 20);

      const error = await transport
        .call(caPath(app.client_id, '/secrets/rotate/start'), {
          method: 'POST',
          headers: { authorization: auth },
          body: '{}',
          signal: controller.signal,
        })
        .catch((e: unknown) => e);

      expect(error).toBe(reason);
      await vi.waitFor(() => expect(emulator.requests.at(-1)).toMatchObject({ status: 0, faulted: 'delay' }));
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(emulator.clientState(app.client_id).nextClientSecretLast4).toBeNull();
    });

    it('rejects at once with an AbortError when the signal is already aborted', async () => {
      const error = await transport
        .call(caPath(app.client_id), { headers: { authorization: auth }, signal: AbortSignal.abort() })
        .catch((e: unknown) => e);

      expect(error).toMatchObject({ name: 'AbortError' });
    });

    it('applies only to its operation, and to any operation when none is given', async () => {
      emulator.addFault({ operation: 'connected_app.rotate', mode: 'before' });

      expect((await get(caPath(app.client_id))).status).toBe(200);
      emulator.clearFaults();
      emulator.addFault({ mode: 'before' });
      expect((await get(caPath(app.client_id))).status).toBe(503);
    });

    it('applies `times` times, including Infinity, until cleared', async () => {
      emulator.addFault({ mode: 'before', times: 2 });
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await get(caPath(app.client_id))).status);
      expect(statuses).toEqual([503, 503, 200]);

      emulator.addFault({ mode: 'before', times: Infinity });
      for (let i = 0; i < 5; i++) expect((await get(caPath(app.client_id))).status).toBe(503);
      emulator.clearFaults();
      expect((await get(caPath(app.client_id))).status).toBe(200);
    });

    it('answers token-endpoint faults in the OAuth error shape', async () => {
      const m2m = emulator.createM2MClient(project.projectId);
      emulator.addFault({ operation: 'm2m.token', mode: 'before' });

      const response = await transport.call(
        tokenPath(),
        form({ grant_type: 'client_credentials', client_id: m2m.client_id, client_secret: m2m.client_secret }),
      );

      expect(response.status).toBe(503);
      expect(await json(response)).toMatchObject({ status_code: 503, error: 'internal_server_error' });
    });
  });

  describe('Rate limit', () => {
    let app: { client_id: string };
    beforeEach(() => {
      app = emulator.createConnectedApp(project.projectId);
      emulator.setRateLimit({ requestsPerSecond: 3 });
    });

    it('answers 429 too_many_requests with Retry-After: 1 past the per-second budget', async () => {
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await get(caPath(app.client_id))).status);
      const limited = await get(caPath(app.client_id));

      expect(statuses).toEqual([200, 200, 200]);
      expect(limited.status).toBe(429);
      expect(limited.headers.get('retry-after')).toBe('1');
      expect(await json(limited)).toMatchObject({
        status_code: 429,
        error_type: 'too_many_requests',
        error_url: 'https://stytch.com/docs/api/errors/429#too_many_requests',
      });
    });

    it('recovers after a second', async () => {
      for (let i = 0; i < 3; i++) await get(caPath(app.client_id));
      expect((await get(caPath(app.client_id))).status).toBe(429);

      clock += 1000;

      for (let i = 0; i < 3; i++) expect((await get(caPath(app.client_id))).status).toBe(200);
    });

    it('counts each project separately', async () => {
      const other = emulator.createProject();
      const otherApp = emulator.createConnectedApp(other.projectId);
      for (let i = 0; i < 3; i++) await get(caPath(app.client_id));

      const response = await get(caPath(otherApp.client_id), basic(other.projectId, other.secret));

      expect(response.status).toBe(200);
    });

    it('does not let a rate-limited request consume a fault', async () => {
      for (let i = 0; i < 3; i++) await get(caPath(app.client_id));
      emulator.addFault({ mode: 'before' });

      expect((await get(caPath(app.client_id))).status).toBe(429);
      clock += 1000;
      expect((await get(caPath(app.client_id))).status).toBe(503);
    });

    it('is off after setRateLimit(null)', async () => {
      emulator.setRateLimit(null);

      for (let i = 0; i < 10; i++) expect((await get(caPath(app.client_id))).status).toBe(200);
    });
  });

  describe('Property: requests', () => {
    it('records every request without bodies or secrets, and resetRequests clears it', async () => {
      const m2m = emulator.createM2MClient(project.projectId);
      const next = (await json(await post(m2mPath(m2m.client_id, '/secrets/rotate/start')))).m2m_client.next_client_secret as string;
      await transport.call(
        tokenPath(),
        form({ grant_type: 'client_credentials', client_id: m2m.client_id, client_secret: next }),
      );
      await get(m2mPath(m2m.client_id), basic(project.projectId, 'wrong-project-secret'));

      expect(emulator.requests).toEqual([
        { method: 'POST', path: m2mPath(m2m.client_id, '/secrets/rotate/start'), operation: 'm2m.rotate_start', status: 200, clientId: m2m.client_id },
        { method: 'POST', path: tokenPath(), operation: 'm2m.token', status: 200, clientId: m2m.client_id },
        { method: 'GET', path: m2mPath(m2m.client_id), operation: 'm2m.get', status: 401, clientId: m2m.client_id },
      ]);
      const log = JSON.stringify(emulator.requests);
      for (const secret of [next, m2m.client_secret, project.secret, 'wrong-project-secret']) expect(log).not.toContain(secret);

      emulator.resetRequests();
      expect(emulator.requests).toEqual([]);
    });
  });
});

describe('Class: StytchEmulator (in-process API)', () => {
  describe('Method: fetch', () => {
    it('accepts a Request object and a URL, ignoring the host', async () => {
      const emulator = new StytchEmulator();
      const project = emulator.createProject();
      const app = emulator.createConnectedApp(project.projectId);
      const authorization = basic(project.projectId, project.secret);

      const viaRequest = await emulator.fetch(
        new Request(`https://test.stytch.com/v1/connected_apps/clients/${app.client_id}`, { headers: { authorization } }),
      );
      const viaUrl = await emulator.fetch(new URL(`http://elsewhere:1234/v1/connected_apps/clients/${app.client_id}`), {
        headers: { authorization },
      });

      expect(viaRequest.status).toBe(200);
      expect(viaUrl.status).toBe(200);
    });

    it('can be passed around unbound, as a fetch implementation', async () => {
      const emulator = new StytchEmulator();
      const { fetch: detached } = emulator;

      const response = await detached('http://stytch.local/v1/nowhere');

      expect(response.status).toBe(404);
    });
  });

  describe('Setup methods', () => {
    it('create ids and secrets in Stytch formats', () => {
      const emulator = new StytchEmulator();

      const project = emulator.createProject();
      const app = emulator.createConnectedApp(project.projectId);
      const m2m = emulator.createM2MClient(project.projectId);

      expect(project.projectId).toMatch(/^project-test-[0-9a-f-]{36}$/);
      expect(project.secret).toMatch(/^secret-test-[A-Za-z0-9_-]+$/);
      expect(project.secretId).toMatch(/^secret-test-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(project.projectSlug).toBe(project.projectId.slice('project-test-'.length));
      expect(project.environmentSlug).toBe('test');
      expect(emulator.createWorkspaceKey()).toEqual({
        workspaceKeyId: expect.stringMatching(/^workspace-key-test-[0-9a-f-]{36}$/),
        workspaceKeySecret: expect.stringMatching(URL_SAFE_SECRET),
      });
      expect(app.client_id).toMatch(/^connected-app-test-[0-9a-f-]{36}$/);
      expect(app.client_secret).toMatch(URL_SAFE_SECRET);
      expect(m2m.client_id).toMatch(/^m2m-client-test-[0-9a-f-]{36}$/);
      expect(m2m.client_secret).toMatch(URL_SAFE_SECRET);
    });

    it('use the given ids and project secret, and refuse duplicates', () => {
      const emulator = new StytchEmulator();

      const project = emulator.createProject({ projectId: 'project-test-fixed', secret: 'secret-test-fixed' });
      emulator.createM2MClient(project.projectId, { clientId: 'm2m-fixed' });

      expect(project).toEqual({
        projectId: 'project-test-fixed',
        secret: 'secret-test-fixed',
        secretId: expect.stringMatching(/^secret-test-/),
        projectSlug: 'fixed',
        environmentSlug: 'test',
      });
      expect(() => emulator.createProject({ projectId: 'project-test-fixed' })).toThrow(/already exists/);
      expect(() => emulator.createConnectedApp(project.projectId, { clientId: 'm2m-fixed' })).toThrow(/already exists/);
      expect(() => emulator.createM2MClient('project-test-unknown')).toThrow(/No project/);
    });

    it('are reproducible with an injected random source', () => {
      const seeded = (): (() => number) => {
        let state = 42;
        return () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
      };
      const a = new StytchEmulator({ random: seeded() });
      const b = new StytchEmulator({ random: seeded() });

      const [pa, pb] = [a.createProject(), b.createProject()];

      expect(pa).toEqual(pb);
      expect(a.createM2MClient(pa.projectId)).toEqual(b.createM2MClient(pb.projectId));
    });
  });

  describe('Project secrets and slugs', () => {
    it('derive live environments and take given slugs, refusing a taken environment or a bad slug', () => {
      const emulator = new StytchEmulator();

      const live = emulator.createProject({ projectId: 'project-live-shop' });
      const test = emulator.createProject({ projectId: 'project-test-shop' });
      const named = emulator.createProject({ projectSlug: 'local-project', environmentSlug: 'staging' });

      expect(live).toMatchObject({ projectSlug: 'shop', environmentSlug: 'production', secretId: expect.stringMatching(/^secret-live-/) });
      expect(live.secret).toMatch(/^secret-live-/);
      expect(test).toMatchObject({ projectSlug: 'shop', environmentSlug: 'test' });
      expect(named).toMatchObject({ projectSlug: 'local-project', environmentSlug: 'staging' });
      expect(() => emulator.createProject({ projectSlug: 'local-project', environmentSlug: 'staging' })).toThrow(
        /local-project already has an environment staging/,
      );
      expect(() => emulator.createProject({ projectSlug: 'Not A Slug' })).toThrow(/projectSlug "Not A Slug" is not a slug/);
    });

    it('record created_at and used_at on the injected clock; only a project-API request counts as a use', async () => {
      let clock = 1_700_000_000_000;
      const emulator = new StytchEmulator({ now: () => clock });
      const project = emulator.createProject();
      const app = emulator.createConnectedApp(project.projectId);
      expect(emulator.projectSecrets(project.projectId)).toEqual([
        { secretId: project.secretId, lastFour: project.secret.slice(-4), createdAt: 1_700_000_000_000, usedAt: null },
      ]);

      clock += 5000;
      expect(emulator.isProjectSecretAccepted(project.projectId, project.secret)).toBe(true);
      expect(emulator.projectSecrets(project.projectId)[0]!.usedAt).toBeNull();
      const response = await emulator.fetch(`http://stytch.local/v1/connected_apps/clients/${app.client_id}`, {
        headers: { authorization: basic(project.projectId, project.secret) },
      });

      expect(response.status).toBe(200);
      expect(emulator.projectSecrets(project.projectId)[0]!.usedAt).toBe(1_700_000_005_000);
    });

    it('rotateProjectSecret replaces every secret with one new one', () => {
      const emulator = new StytchEmulator();
      const project = emulator.createProject();
      const second = emulator.createProjectSecret(project.projectId);

      const rotated = emulator.rotateProjectSecret(project.projectId);

      expect(emulator.projectSecrets(project.projectId).map((s) => s.secretId)).toEqual([rotated.secretId]);
      expect(emulator.isProjectSecretAccepted(project.projectId, rotated.secret)).toBe(true);
      expect(emulator.isProjectSecretAccepted(project.projectId, project.secret)).toBe(false);
      expect(emulator.isProjectSecretAccepted(project.projectId, second.secret)).toBe(false);
    });

    it('createProjectSecret stops at the limit of 50 with an error naming no secret', () => {
      const emulator = new StytchEmulator();
      const project = emulator.createProject();
      for (let i = 1; i < 50; i++) emulator.createProjectSecret(project.projectId);

      const error = (() => {
        try {
          emulator.createProjectSecret(project.projectId);
        } catch (e) {
          return e;
        }
      })();

      expect(error).toMatchObject({ status: 400, errorType: 'too_many_secrets' });
      expect(String((error as Error).message)).not.toContain(project.secret);
      expect(emulator.projectSecrets(project.projectId)).toHaveLength(50);
      emulator.deleteProjectSecret(project.projectId, project.secretId);
      expect(emulator.createProjectSecret(project.projectId).secretId).toMatch(/^secret-test-/);
      expect(() => emulator.deleteProjectSecret(project.projectId, project.secretId)).toThrow(/was not found/);
    });
  });

  describe('Method: clientState', () => {
    it('reports last fours, kind and client type', () => {
      const emulator = new StytchEmulator();
      const project = emulator.createProject();
      const app = emulator.createConnectedApp(project.projectId, { clientType: 'third_party' });
      const m2m = emulator.createM2MClient(project.projectId);

      const next = emulator.adminRotateStart(app.client_id);

      expect(emulator.clientState(app.client_id)).toEqual({
        clientSecretLast4: app.client_secret!.slice(-4),
        nextClientSecretLast4: next.slice(-4),
        kind: 'connected_app',
        clientType: 'third_party',
      });
      expect(emulator.clientState(m2m.client_id)).toEqual({
        clientSecretLast4: m2m.client_secret.slice(-4),
        nextClientSecretLast4: null,
        kind: 'm2m',
      });
      expect(() => emulator.clientState('nobody')).toThrow(/No client/);
    });
  });

  describe('Admin actions', () => {
    it('run the same state machine as the API, bypassing faults, the rate limit and the request log', async () => {
      const emulator = new StytchEmulator({ now: () => 0 });
      const project = emulator.createProject();
      const app = emulator.createConnectedApp(project.projectId);
      emulator.addFault({ mode: 'drop', times: Infinity });
      emulator.setRateLimit({ requestsPerSecond: 1 });

      const orphan = emulator.adminRotateStart(app.client_id);
      expect(emulator.isAccepted(app.client_id, orphan)).toBe(true);
      expect(emulator.isAccepted(app.client_id, app.client_secret!)).toBe(true);
      expect(() => emulator.adminRotateStart(app.client_id)).toThrow(EmulatedApiError);

      emulator.adminRotateCancel(app.client_id);
      expect(emulator.isAccepted(app.client_id, orphan)).toBe(false);
      expect(() => emulator.adminRotate(app.client_id)).toThrow(/not rotating/);

      const next = emulator.adminRotateStart(app.client_id);
      emulator.adminRotate(app.client_id);
      expect(emulator.isAccepted(app.client_id, next)).toBe(true);
      expect(emulator.isAccepted(app.client_id, app.client_secret!)).toBe(false);
      expect(emulator.requests).toEqual([]);
    });

    it('throw errors carrying the API error type and no secret', () => {
      const emulator = new StytchEmulator();
      const project = emulator.createProject();
      const m2m = emulator.createM2MClient(project.projectId);
      const next = emulator.adminRotateStart(m2m.client_id);

      const error = (() => {
        try {
          emulator.adminRotateStart(m2m.client_id);
        } catch (e) {
          return e;
        }
      })();

      expect(error).toMatchObject({ status: 400, errorType: 'm2m_client_already_rotating_secret' });
      expect(String((error as Error).message)).not.toContain(next);
      expect(String((error as Error).message)).not.toContain(m2m.client_secret);
    });
  });

  describe('Method: addFault', () => {
    it('rejects invalid faults', () => {
      const emulator = new StytchEmulator();

      expect(() => emulator.addFault({ mode: 'explode' as 'drop' })).toThrow(/mode/);
      expect(() => emulator.addFault({ mode: 'before', operation: 'nope' as 'unknown' })).toThrow(/operation/);
      expect(() => emulator.addFault({ mode: 'before', times: 0 })).toThrow(/times/);
      expect(() => emulator.addFault({ mode: 'before', status: 200 })).toThrow(/status/);
    });
  });
});
