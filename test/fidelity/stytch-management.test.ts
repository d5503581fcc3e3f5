/**
 * The Stytch management API's project-secret endpoints, as the emulator serves
 * them over real HTTP, checked against the shapes in the official management
 * clients' public source (no npm package of them exists to drive directly):
 *
 * - stytchauth/stytch-management-node @ 0a564eff7e862669326047005ee815841314ec4f
 *   `lib/secrets.ts`: routes, methods, bodies (`data: {}` on create and delete,
 *   none on GET), `MaskedSecret {secret_id, last_four, created_at?, used_at?}`,
 *   `Secret {secret_id, secret, created_at?}`, the four response types;
 * - same repository @ 086e3f0534c625f0df748239a4165eea719e159b
 *   `lib/shared/client.ts` (Basic `workspace_key_id:workspace_key_secret`,
 *   `Content-Type: application/json`), `lib/shared/index.ts` (status >= 400 is an
 *   error whose JSON is `lib/shared/errors.ts`'s
 *   `{status_code, request_id, error_type, error_message, error_url}`),
 *   `lib/secrets.test.ts` (get and delete of an unknown id fail; `last_four` is
 *   the value's last four; `created_at` is the same in create and get);
 * - stytchauth/stytch-management-go @ 0013a5e914c7cd5e29a5e9cda5a2f2807b0a6dd3
 *   `pkg/api/secrets_test.go` ("only the default secret exists": a new
 *   environment lists exactly one secret).
 *
 * The project-API side is driven by the official `stytch` SDK too: a secret made
 * through the management API must authenticate a real, independent client.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { Client, StytchError } from 'stytch';
import { StytchEmulator, type CreatedProject, type ListeningEmulator, type WorkspaceKey } from '../../infra/local/stytch/emulator.js';

const REQUEST_ID = /^request-id-test-[0-9a-f-]{36}$/;
const SECRET_ID = /^secret-test-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const START = Date.parse('2026-03-01T12:00:00.000Z');

let clock = START;
let emulator: StytchEmulator;
let server: ListeningEmulator;

beforeAll(async () => {
  // The SDK warns on every construction with a non-Stytch `env`; that is expected here.
  vi.spyOn(console, 'warn').mockImplementation(() => {});
  emulator = new StytchEmulator({ now: () => clock });
  server = await emulator.listen();
});

afterAll(async () => {
  await server.close();
  vi.restoreAllMocks();
});

afterEach(() => {
  emulator.clearFaults();
  emulator.resetRequests();
});

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** Reads a JSON body with just enough typing for assertions. */
async function json(response: Response): Promise<Record<string, any>> {
  return (await response.json()) as Record<string, any>;
}

function expectErrorJson(body: Record<string, any>, status: number, errorType: string): void {
  expect(Object.keys(body).sort()).toEqual(['error_message', 'error_type', 'error_url', 'request_id', 'status_code']);
  expect(body).toEqual({
    status_code: status,
    request_id: expect.stringMatching(REQUEST_ID),
    error_type: errorType,
    error_message: expect.any(String),
    error_url: expect.stringContaining(errorType),
  });
}

describe('Fidelity: the management API project-secret routes of the Stytch emulator', () => {
  let project: CreatedProject;
  let key: WorkspaceKey;

  beforeEach(() => {
    clock = START;
    project = emulator.createProject();
    key = emulator.createWorkspaceKey();
  });

  const secretsPath = (p: { projectSlug: string; environmentSlug: string } = project, secretId?: string): string =>
    `/pwa/v3/projects/${encodeURIComponent(p.projectSlug)}/environments/${encodeURIComponent(p.environmentSlug)}/secrets` +
    (secretId === undefined ? '' : `/${encodeURIComponent(secretId)}`);

  /** A request as the management client builds it: JSON content type, Basic workspace key, `{}` on POST and DELETE. */
  const manage = (method: 'GET' | 'POST' | 'DELETE', path: string, authorization: string | null = basic(key.workspaceKeyId, key.workspaceKeySecret)) =>
    fetch(`${server.url}${path}`, {
      method,
      headers: { 'Content-Type': 'application/json', 'User-Agent': 'Stytch Management Node v1.0.0', ...(authorization === null ? {} : { Authorization: authorization }) },
      ...(method === 'GET' ? {} : { body: '{}' }),
    });

  /** A project-API request (project Basic auth) that any accepted secret answers with 200. */
  const projectApiGet = (secret: string, clientId: string) =>
    fetch(`${server.url}/v1/m2m/clients/${encodeURIComponent(clientId)}`, { headers: { Authorization: basic(project.projectId, secret) } });

  async function createSecret(): Promise<{ secret_id: string; secret: string; created_at: string }> {
    const response = await manage('POST', secretsPath());
    expect(response.status).toBe(200);
    return (await json(response)).secret as { secret_id: string; secret: string; created_at: string };
  }

  describe('Route: POST .../secrets (secrets.create)', () => {
    it('answers CreateResponse with the value, shown only here, and the secret authenticates at once', async () => {
      const m2m = emulator.createM2MClient(project.projectId);
      clock = START + 60_000;

      const response = await manage('POST', secretsPath());
      const body = await json(response);

      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/application\/json/);
      expect(Object.keys(body).sort()).toEqual(['request_id', 'secret', 'status_code']);
      expect(body.request_id).toMatch(REQUEST_ID);
      expect(body.status_code).toBe(200);
      expect(Object.keys(body.secret).sort()).toEqual(['created_at', 'secret', 'secret_id']);
      expect(body.secret.secret_id).toMatch(SECRET_ID);
      expect(body.secret.secret).toMatch(/^secret-test-[A-Za-z0-9_-]{36}$/);
      expect(body.secret.created_at).toBe('2026-03-01T12:01:00.000Z');
      expect((await projectApiGet(body.secret.secret, m2m.client_id)).status).toBe(200);
      expect((await projectApiGet(project.secret, m2m.client_id)).status).toBe(200);
    });

    it('refuses the 51st secret of an environment with a 400 error and creates nothing', async () => {
      for (let i = 1; i < 50; i++) emulator.createProjectSecret(project.projectId);

      const response = await manage('POST', secretsPath());
      const body = await json(response);

      expect(response.status).toBe(400);
      expectErrorJson(body, 400, 'too_many_secrets');
      expect(emulator.projectSecrets(project.projectId)).toHaveLength(50);
    });

    it('refuses a body that is not a JSON object', async () => {
      const response = await fetch(`${server.url}${secretsPath()}`, {
        method: 'POST',
        headers: { Authorization: basic(key.workspaceKeyId, key.workspaceKeySecret), 'Content-Type': 'application/json' },
        body: '[1]',
      });

      expect(response.status).toBe(400);
      expectErrorJson(await json(response), 400, 'invalid_request_body');
      expect(emulator.projectSecrets(project.projectId)).toHaveLength(1);
    });
  });

  describe('Route: GET .../secrets (secrets.list)', () => {
    it('lists only the default secret of a new environment, masked, with no used_at before any use', async () => {
      const response = await manage('GET', secretsPath());
      const text = await response.text();
      const body = JSON.parse(text) as Record<string, any>;

      expect(response.status).toBe(200);
      expect(Object.keys(body).sort()).toEqual(['request_id', 'secrets', 'status_code']);
      expect(body.secrets).toEqual([{ secret_id: project.secretId, last_four: project.secret.slice(-4), created_at: '2026-03-01T12:00:00.000Z' }]);
      expect(text).not.toContain(project.secret);
    });

    it('lists every secret, oldest first, and never a value', async () => {
      const second = await createSecret();
      const third = await createSecret();

      const response = await manage('GET', secretsPath());
      const text = await response.text();
      const { secrets } = JSON.parse(text) as { secrets: Array<Record<string, unknown>> };

      expect(secrets.map((s) => s.secret_id)).toEqual([project.secretId, second.secret_id, third.secret_id]);
      expect(secrets.map((s) => s.last_four)).toEqual([project.secret, second.secret, third.secret].map((v) => v.slice(-4)));
      for (const value of [project.secret, second.secret, third.secret]) expect(text).not.toContain(value);
    });
  });

  describe('Route: GET .../secrets/{secret_id} (secrets.get)', () => {
    it('answers GetResponse with the masked secret, the same created_at as the create', async () => {
      const created = await createSecret();

      const response = await manage('GET', secretsPath(project, created.secret_id));
      const body = await json(response);

      expect(response.status).toBe(200);
      expect(Object.keys(body).sort()).toEqual(['request_id', 'secret', 'status_code']);
      expect(body.secret).toEqual({ secret_id: created.secret_id, last_four: created.secret.slice(-4), created_at: created.created_at });
    });

    it('answers 404 secret_not_found for an unknown id', async () => {
      const response = await manage('GET', secretsPath(project, 'secret-does-not-exist'));

      expect(response.status).toBe(404);
      expectErrorJson(await json(response), 404, 'secret_not_found');
    });
  });

  describe('Route: DELETE .../secrets/{secret_id} (secrets.delete)', () => {
    it('answers DeleteResponse; the deleted secret gets 401 from the very next request, the others keep working', async () => {
      const m2m = emulator.createM2MClient(project.projectId);
      const created = await createSecret();
      expect((await projectApiGet(created.secret, m2m.client_id)).status).toBe(200);

      const response = await manage('DELETE', secretsPath(project, created.secret_id));
      const body = await json(response);

      expect(response.status).toBe(200);
      expect(Object.keys(body).sort()).toEqual(['request_id', 'status_code']);
      expect(body.status_code).toBe(200);
      const refused = await projectApiGet(created.secret, m2m.client_id);
      expect(refused.status).toBe(401);
      expectErrorJson(await json(refused), 401, 'unauthorized_credentials');
      expect((await projectApiGet(project.secret, m2m.client_id)).status).toBe(200);
      expect((await manage('GET', secretsPath(project, created.secret_id))).status).toBe(404);
    });

    it('answers 404 secret_not_found for an unknown or already deleted id', async () => {
      const created = await createSecret();
      await manage('DELETE', secretsPath(project, created.secret_id));

      for (const id of ['secret-does-not-exist', created.secret_id]) {
        const response = await manage('DELETE', secretsPath(project, id));
        expect(response.status).toBe(404);
        expectErrorJson(await json(response), 404, 'secret_not_found');
      }
      expect(emulator.projectSecrets(project.projectId).map((s) => s.secretId)).toEqual([project.secretId]);
    });
  });

  describe('Authentication and addressing', () => {
    it.each([
      ['no Authorization header', () => null],
      ['a wrong workspace key secret', (k: WorkspaceKey) => basic(k.workspaceKeyId, 'not-the-key-secret')],
      ['the project id and a project secret', (_k: WorkspaceKey, p: CreatedProject) => basic(p.projectId, p.secret)],
    ])('refuses %s with 401 unauthorized_credentials and changes nothing', async (_name, authorization) => {
      for (const [method, path] of [
        ['POST', secretsPath()],
        ['GET', secretsPath()],
        ['GET', secretsPath(project, project.secretId)],
        ['DELETE', secretsPath(project, project.secretId)],
      ] as const) {
        const response = await manage(method, path, authorization(key, project));
        expect(response.status).toBe(401);
        expectErrorJson(await json(response), 401, 'unauthorized_credentials');
      }
      expect(emulator.projectSecrets(project.projectId).map((s) => s.secretId)).toEqual([project.secretId]);
    });

    it('refuses a workspace key on the project API with 401', async () => {
      const m2m = emulator.createM2MClient(project.projectId);

      const asKey = await fetch(`${server.url}/v1/m2m/clients/${m2m.client_id}`, { headers: { Authorization: basic(key.workspaceKeyId, key.workspaceKeySecret) } });

      expect(asKey.status).toBe(401);
      expectErrorJson(await json(asKey), 401, 'unauthorized_credentials');
    });

    it('lets one workspace key manage every project of the emulator', async () => {
      const other = emulator.createProject({ projectSlug: 'other-project', environmentSlug: 'staging' });

      const response = await manage('GET', secretsPath(other));

      expect(response.status).toBe(200);
      expect((await json(response)).secrets.map((s: { secret_id: string }) => s.secret_id)).toEqual([other.secretId]);
    });

    it('answers 404 for an unknown project slug or environment slug', async () => {
      const unknownProject = await manage('GET', secretsPath({ projectSlug: 'no-such-project', environmentSlug: 'test' }));
      const unknownEnvironment = await manage('POST', secretsPath({ projectSlug: project.projectSlug, environmentSlug: 'no-such-env' }));

      expect(unknownProject.status).toBe(404);
      expectErrorJson(await json(unknownProject), 404, 'project_not_found');
      expect(unknownEnvironment.status).toBe(404);
      expectErrorJson(await json(unknownEnvironment), 404, 'environment_not_found');
    });

    it('answers 404 route_not_found for other methods and non-exact paths', async () => {
      const auth = basic(key.workspaceKeyId, key.workspaceKeySecret);
      const responses = await Promise.all([
        fetch(`${server.url}${secretsPath()}`, { method: 'PUT', headers: { Authorization: auth }, body: '{}' }),
        fetch(`${server.url}${secretsPath()}/`, { headers: { Authorization: auth } }),
        fetch(`${server.url}${secretsPath(project, project.secretId)}`, { method: 'POST', headers: { Authorization: auth }, body: '{}' }),
      ]);

      for (const response of responses) {
        expect(response.status).toBe(404);
        expectErrorJson(await json(response), 404, 'route_not_found');
      }
    });
  });

  describe('used_at: when a secret last authenticated a project-API request', () => {
    it('is set by project-Basic calls only, to the time of the last one, for the secret that was used', async () => {
      const m2m = emulator.createM2MClient(project.projectId, { scopes: ['read:x'] });
      const app = emulator.createConnectedApp(project.projectId);
      const second = await createSecret();
      const usedAt = async (secretId: string): Promise<unknown> =>
        ((await json(await manage('GET', secretsPath(project, secretId)))).secret as Record<string, unknown>).used_at;

      clock = START + 1000;
      // Not project-Basic: the M2M token endpoint (client credentials), the JWKS, a wrong secret.
      const token = await fetch(`${server.url}/v1/public/${project.projectId}/oauth2/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', Authorization: basic(project.projectId, second.secret) },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: m2m.client_id, client_secret: m2m.client_secret }).toString(),
      });
      expect(token.status).toBe(200);
      expect((await fetch(`${server.url}/v1/sessions/jwks/${project.projectId}`)).status).toBe(200);
      expect((await projectApiGet(`${second.secret}x`, m2m.client_id)).status).toBe(401);
      expect(await usedAt(second.secret_id)).toBeUndefined();

      clock = START + 2000;
      expect((await projectApiGet(second.secret, m2m.client_id)).status).toBe(200);
      expect(await usedAt(second.secret_id)).toBe('2026-03-01T12:00:02.000Z');
      expect(await usedAt(project.secretId)).toBeUndefined();

      // A Connected App call, and a rotate/start, count too; so does an authenticated call that ends in 404.
      clock = START + 3000;
      const get = await fetch(`${server.url}/v1/connected_apps/clients/${app.client_id}`, { headers: { Authorization: basic(project.projectId, second.secret) } });
      expect(get.status).toBe(200);
      expect(await usedAt(second.secret_id)).toBe('2026-03-01T12:00:03.000Z');
      clock = START + 4000;
      const start = await fetch(`${server.url}/v1/m2m/clients/${m2m.client_id}/secrets/rotate/start`, {
        method: 'POST',
        headers: { Authorization: basic(project.projectId, project.secret), 'content-type': 'application/json' },
        body: '{}',
      });
      expect(start.status).toBe(200);
      expect(await usedAt(project.secretId)).toBe('2026-03-01T12:00:04.000Z');
      clock = START + 5000;
      expect((await projectApiGet(project.secret, 'm2m-client-test-unknown')).status).toBe(404);
      expect(await usedAt(project.secretId)).toBe('2026-03-01T12:00:05.000Z');
      // Management calls are not uses of a project secret.
      clock = START + 6000;
      await manage('GET', secretsPath());
      expect(await usedAt(project.secretId)).toBe('2026-03-01T12:00:05.000Z');
    });

    it('is not set by a request that a fault failed before its effect', async () => {
      const m2m = emulator.createM2MClient(project.projectId);
      emulator.addFault({ operation: 'm2m.get', mode: 'before', status: 500 });

      expect((await projectApiGet(project.secret, m2m.client_id)).status).toBe(500);

      expect(emulator.projectSecrets(project.projectId)[0]!.usedAt).toBeNull();
    });
  });

  describe('Fault injection on the management routes', () => {
    it("'before' on secrets.create answers the error and creates nothing", async () => {
      emulator.addFault({ operation: 'secrets.create', mode: 'before', status: 503 });

      const response = await manage('POST', secretsPath());

      expect(response.status).toBe(503);
      expectErrorJson(await json(response), 503, 'internal_server_error');
      expect(emulator.projectSecrets(project.projectId)).toHaveLength(1);
      expect(emulator.requests).toEqual([expect.objectContaining({ operation: 'secrets.create', status: 503, faulted: 'before' })]);
    });

    it("'after' on secrets.create creates the secret and loses the answer (the value is never seen)", async () => {
      emulator.addFault({ operation: 'secrets.create', mode: 'after', status: 502 });

      const response = await manage('POST', secretsPath());

      expect(response.status).toBe(502);
      expect(await response.text()).not.toMatch(/secret-test-[A-Za-z0-9_-]{36}/);
      const held = emulator.projectSecrets(project.projectId);
      expect(held).toHaveLength(2);
      expect(held[1]!.usedAt).toBeNull();
    });

    it("'after' on secrets.delete deletes the secret; 'drop' before it fails the connection and deletes nothing", async () => {
      const a = await createSecret();
      const b = await createSecret();
      emulator.addFault({ operation: 'secrets.delete', mode: 'after' });
      emulator.addFault({ operation: 'secrets.delete', mode: 'drop' });

      expect((await manage('DELETE', secretsPath(project, a.secret_id))).status).toBe(503);
      await expect(manage('DELETE', secretsPath(project, b.secret_id))).rejects.toThrow();

      expect(emulator.projectSecrets(project.projectId).map((s) => s.secretId)).toEqual([project.secretId, b.secret_id]);
    });

    it('a fault named for one management operation leaves the others and the project API alone', async () => {
      const m2m = emulator.createM2MClient(project.projectId);
      emulator.addFault({ operation: 'secrets.list', mode: 'before', times: Infinity });

      expect((await manage('GET', secretsPath())).status).toBe(503);
      expect((await manage('GET', secretsPath(project, project.secretId))).status).toBe(200);
      expect((await projectApiGet(project.secret, m2m.client_id)).status).toBe(200);
      expect(emulator.requests.map((r) => r.operation)).toEqual(['secrets.list', 'secrets.get', 'm2m.get']);
    });
  });

  describe('The official stytch SDK with a secret made through the management API', () => {
    it('authenticates with the second secret, sets its used_at, and gets 401 once it is deleted', async () => {
      const m2m = emulator.createM2MClient(project.projectId, { clientName: 'sdk-probe' });
      const created = await createSecret();
      const sdk = new Client({ project_id: project.projectId, secret: created.secret, env: `${server.url}/` });
      clock = START + 42_000;

      const got = await sdk.m2m.clients.get({ client_id: m2m.client_id });

      expect(got.m2m_client.client_name).toBe('sdk-probe');
      const listed = (await json(await manage('GET', secretsPath()))).secrets as Array<Record<string, unknown>>;
      expect(listed.find((s) => s.secret_id === created.secret_id)?.used_at).toBe('2026-03-01T12:00:42.000Z');
      expect(listed.find((s) => s.secret_id === project.secretId)?.used_at).toBeUndefined();

      await manage('DELETE', secretsPath(project, created.secret_id));
      const error = await sdk.m2m.clients.get({ client_id: m2m.client_id }).then(
        () => undefined,
        (e: unknown) => e,
      );

      expect(error).toBeInstanceOf(StytchError);
      expect((error as StytchError).status_code).toBe(401);
      expect((error as StytchError).error_type).toBe('unauthorized_credentials');
    });
  });
});
