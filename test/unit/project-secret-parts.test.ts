import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../functions/lib/config.js';
import { InvalidInputError, StytchApiError, VerificationError } from '../../functions/lib/errors.js';
import { isProjectSecretText, managementCredentialsSchema, parseSecretJson, projectSecretSchema } from '../../functions/lib/schemas.js';
import { assertPreservable, withFields } from '../../functions/lib/secret-json.js';
import { StytchHttp, type FetchFn } from '../../functions/lib/stytch/http.js';
import { createManagementApi, fixedCredentials, managementCredentialsSource, probeProjectSecret } from '../../functions/lib/stytch/management.js';

/**
 * The parts of the project-secret rotation (DESIGN.md §4b) that need no
 * emulator: the value's schema and its exact copy, the configuration, and the
 * management client's requests and answers over a scripted fetch.
 */

const VALUE = {
  project_id: 'project-test-11111111-1111-4111-8111-111111111111',
  secret: 'secret-test-current-value-aaaa',
  secret_id: 'secret-test-22222222-2222-4222-8222-222222222222',
  project_slug: 'acme',
  environment_slug: 'test',
};

function scripted(answers: Array<Response | Error>) {
  const sent: Array<{ url: string; method: string; auth: string | undefined; body: unknown }> = [];
  const fetch: FetchFn = async (input, init = {}) => {
    const headers = init.headers as Record<string, string>;
    sent.push({ url: String(input), method: String(init.method), auth: headers.Authorization, body: init.body });
    const next = answers.shift();
    if (!next) throw new Error('no more scripted answers');
    if (next instanceof Error) throw next;
    return next;
  };
  return { fetch, sent };
}

const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
const stytchError = (status: number, errorType: string) => json(status, { status_code: status, request_id: `request-id-${status}`, error_type: errorType, error_message: `a ${errorType}` });

function managementOver(fetch: FetchFn, maxAttempts = 3) {
  const creds = fixedCredentials({ projectId: 'workspace-key-id-1', secret: 'workspace-key-secret-1', baseUrl: 'https://management.stytch.com' });
  return createManagementApi(new StytchHttp(creds, { fetch, deadline: Date.now() + 60_000, requestTimeoutMs: 1_000, maxAttempts, sleep: async () => {}, random: () => 0 }));
}

const env = { projectSlug: 'acme', environmentSlug: 'test' };
const BASE = 'https://management.stytch.com/pwa/v3/projects/acme/environments/test/secrets';
const BASIC = `Basic ${Buffer.from('workspace-key-id-1:workspace-key-secret-1').toString('base64')}`;

describe('The project secret value', () => {
  it('is recognised by a secret_id field or "kind": "project_secret", and only then', () => {
    expect(isProjectSecretText(JSON.stringify(VALUE))).toBe(true);
    expect(isProjectSecretText(JSON.stringify({ kind: 'project_secret', project_id: 'project-test-1' }))).toBe(true);
    expect(isProjectSecretText(JSON.stringify({ client_id: 'connected-app-test-1', client_secret: 'x' }))).toBe(false);
    expect(isProjectSecretText(JSON.stringify({ client_id: 'c', client_secret: 'x', kind: 'other' }))).toBe(false);
    expect(isProjectSecretText('not json')).toBe(false);
    expect(isProjectSecretText(JSON.stringify([{ secret_id: 'x' }]))).toBe(false);
    expect(isProjectSecretText(undefined)).toBe(false);
    expect(isProjectSecretText('null')).toBe(false);
    expect(isProjectSecretText('"secret_id"')).toBe(false);
    expect(isProjectSecretText('7')).toBe(false);
    // An inherited key is not a field of the value.
    expect(isProjectSecretText('{"__proto__": {"secret_id": "x"}}')).toBe(false);
  });

  it('names each missing or malformed field with its fix, never a value', () => {
    const fix = 'Fix it.';
    expect(() => parseSecretJson(projectSecretSchema, JSON.stringify({ ...VALUE, secret_id: undefined }), 'The value', fix)).toThrow(/secret_id must be a string: the id Stytch gives the project secret/);
    expect(() => parseSecretJson(projectSecretSchema, JSON.stringify({ ...VALUE, project_slug: 'a b' }), 'The value', fix)).toThrow(/project_slug must be a slug/);
    expect(() => parseSecretJson(projectSecretSchema, JSON.stringify({ ...VALUE, environment_slug: 7 }), 'The value', fix)).toThrow(/environment_slug must be a string/);
    expect(() => parseSecretJson(projectSecretSchema, JSON.stringify({ ...VALUE, secret: 'abc' }), 'The value', fix)).toThrow(/secret must be at least 4 characters/);
    expect(() => parseSecretJson(projectSecretSchema, JSON.stringify({ ...VALUE, kind: 'client' }), 'The value', fix)).toThrow(/kind must be "project_secret"/);
    const error = (() => {
      try {
        parseSecretJson(projectSecretSchema, JSON.stringify({ ...VALUE, secret_id: 'secret with spaces-do-not-echo' }), 'The value', fix);
      } catch (e) {
        return e as Error;
      }
    })();
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error!.message).not.toContain('do-not-echo');
    expect(error!.message).not.toContain(VALUE.secret);
  });

  it('accepts a whole value, with kind and base_url, keeping unknown fields', () => {
    const value = { ...VALUE, kind: 'project_secret', base_url: 'https://api.stytch.com', team: 'platform' };
    expect(parseSecretJson(projectSecretSchema, JSON.stringify(value), 'The value', 'Fix it.')).toEqual(value);
    expect(parseSecretJson(projectSecretSchema, JSON.stringify({ ...VALUE, secret_id: 'a', project_slug: 'b', environment_slug: 'c' }), 'The value', 'Fix it.')).toMatchObject({ secret_id: 'a' });
  });

  const rows: Array<[string, Record<string, unknown>, RegExp]> = [
    ['secret as a number', { secret: 1234 }, /secret must be a string: the Stytch project secret/],
    ['secret of 4097 characters', { secret: 's'.repeat(4097) }, /secret is longer than 4096 characters/],
    ['secret_id empty', { secret_id: '' }, /secret_id must not be empty/],
    ['secret_id of 257 characters', { secret_id: 'i'.repeat(257) }, /secret_id is longer than any Stytch secret id \(256 characters\)/],
    ['secret_id with a slash', { secret_id: 'secret-test-1/2' }, /secret_id may only contain letters, digits and - _ \. : \(a Stytch secret id\)/],
    ['project_slug as a number', { project_slug: 7 }, /project_slug must be a string: the project's slug in the Stytch workspace \(the management API addresses projects by slug\)/],
    ['environment_slug with a space', { environment_slug: 'te st' }, /environment_slug must be a slug: letters, digits, - and _ \(Stytch dashboard, project settings\)/],
    ['kind of another value', { kind: '' }, /kind must be "project_secret" when present; remove it for a client secret/],
  ];
  for (const [name, fields, message] of rows) {
    it(`refuses ${name}, saying so`, () => {
      expect(() => parseSecretJson(projectSecretSchema, JSON.stringify({ ...VALUE, ...fields }), 'The value', 'Fix it.')).toThrow(message);
    });
  }

  it('is copied exactly with only secret and secret_id replaced', () => {
    const text = `{ "project_id":"${VALUE.project_id}",\n  "secret" : "old-secret-0000", "n": 12345678901234567890, "secret_id":"old-id",\n "project_slug":"acme","environment_slug":"test","x":[1e400,-0] }`;
    const out = withFields(text, { secret: 'new-secret-1111', secret_id: 'new-id' }, 'The value', 'Fix it.');
    expect(out).toBe(text.replace('"old-secret-0000"', '"new-secret-1111"').replace('"old-id"', '"new-id"'));
    expect(() => withFields('{"secret": "a"}', { secret: 'b', secret_id: 'c' }, 'The value', 'Fix it.')).toThrow(/The value has no secret_id field/);
    expect(() => assertPreservable('{"secret_id": "a", "secret_id": "b"}', 'The value', 'Fix it.')).toThrow(/gives the key "secret_id" twice/);
  });
});

describe('Configuration for project secrets', () => {
  it('reads the management key secret id, the base URL and the in-use deferral', () => {
    const config = loadConfig({ STYTCH_MANAGEMENT_CREDENTIALS_SECRET_ID: 'stytch/management', STYTCH_MANAGEMENT_API_BASE_URL: 'http://127.0.0.1:9', PROJECT_SECRET_IN_USE_DEFER_SECONDS: '120' });
    expect(config).toMatchObject({ managementCredentialsSecretId: 'stytch/management', managementBaseUrl: 'http://127.0.0.1:9', inUseDeferSeconds: 120 });
  });

  it('defers by one window by default, and at least an hour', () => {
    expect(loadConfig({ PREVIOUS_SECRET_GRACE_SECONDS: '7200' }).inUseDeferSeconds).toBe(7200);
    expect(loadConfig({ PREVIOUS_SECRET_GRACE_SECONDS: '60' }).inUseDeferSeconds).toBe(3600);
    expect(() => loadConfig({ PROJECT_SECRET_IN_USE_DEFER_SECONDS: 'soon' })).toThrow(/PROJECT_SECRET_IN_USE_DEFER_SECONDS must be a whole number of seconds from 0 to 604800/);
  });

  it('refuses a management key secret that is missing, malformed or points to plain http', async () => {
    expect(() => managementCredentialsSource(async () => undefined, undefined, { envBaseUrl: undefined, ttlMs: 1000 })).toThrow(
      /set STYTCH_MANAGEMENT_CREDENTIALS_SECRET_ID on the function .*docs\/deploy\.md/,
    );
    const read = (value: unknown) => async () => JSON.stringify(value);
    const source = (value: unknown, envBaseUrl?: string) => managementCredentialsSource(read(value), 'stytch/management', { envBaseUrl, ttlMs: 1000 });
    await expect(source({ workspace_key_id: 'k' }).get()).rejects.toThrow(/workspace_key_secret must be a string.*fix it with aws secretsmanager put-secret-value/);
    await expect(source({ workspace_key_id: 'k', workspace_key_secret: 's', base_url: 'http://management.example.com' }).get()).rejects.toThrow(
      /base_url in the Stytch management credentials secret must use https/,
    );
    await expect(source({ workspace_key_id: 'k', workspace_key_secret: 'key-secret-never-shown', base_url: 'https://u:key-secret-never-shown@management.stytch.com' }).get()).rejects.toThrow(
      /must not contain a user name or password; the key belongs in workspace_key_id and workspace_key_secret\.$/,
    );
    expect(await source({ workspace_key_id: 'k', workspace_key_secret: 's' }).get()).toEqual({ projectId: 'k', secret: 's', baseUrl: 'https://management.stytch.com' });
    expect((await source({ workspace_key_id: 'k', workspace_key_secret: 's' }, 'http://localhost:4010/').get()).baseUrl).toBe('http://localhost:4010');
    // Each field's message says what it must be, and where to find it.
    await expect(source({ workspace_key_id: 7, workspace_key_secret: 's' }).get()).rejects.toThrow(
      /workspace_key_id must be a string: the id of a Stytch workspace management key \(dashboard, Workspace settings, Management API\)/,
    );
    await expect(source({ workspace_key_id: '', workspace_key_secret: 's' }).get()).rejects.toThrow(/workspace_key_id must not be empty/);
    await expect(source({ workspace_key_id: 'k', workspace_key_secret: '' }).get()).rejects.toThrow(/workspace_key_secret must not be empty/);
    await expect(source({ workspace_key_id: 'k', workspace_key_secret: 's', base_url: 443 }).get()).rejects.toThrow(/base_url must be a string URL such as https:\/\/management\.stytch\.com/);
    await expect(source({ workspace_key_id: 'k', workspace_key_secret: 's', base_url: '' }).get()).rejects.toThrow(/base_url must not be empty; remove it to use the default/);
    expect(managementCredentialsSchema.safeParse({ workspace_key_id: '', workspace_key_secret: 's' }).success).toBe(false);
  });

  it('caches the key and re-reads it on refresh, never caching a failed read', async () => {
    let reads = 0;
    let fail = true;
    const source = managementCredentialsSource(
      async () => {
        reads++;
        if (fail) throw new Error('read failed');
        return JSON.stringify({ workspace_key_id: `k${reads}`, workspace_key_secret: 's' });
      },
      'stytch/management',
      { envBaseUrl: undefined, ttlMs: 60_000 },
    );
    await expect(source.get()).rejects.toThrow('read failed');
    fail = false;
    expect((await source.get()).projectId).toBe('k2');
    expect((await source.get()).projectId).toBe('k2');
    expect((await source.refresh()).projectId).toBe('k3');
    expect(reads).toBe(3);
  });
});

describe('The management API client', () => {
  it('creates a secret with one POST, Basic auth with the workspace key, and never retries a lost answer', async () => {
    const ok = scripted([json(200, { request_id: 'r1', status_code: 200, secret: { secret_id: 'secret-test-new', secret: 'secret-test-new-value-bbbb', created_at: '2026-12-01T00:00:00Z' } })]);
    expect(await managementOver(ok.fetch).create(env)).toEqual({ secretId: 'secret-test-new', secret: 'secret-test-new-value-bbbb', retried: false });
    expect(ok.sent).toEqual([{ url: BASE, method: 'POST', auth: BASIC, body: '{}' }]);

    // IV: a 500 may have created it: the caller resolves that from its record, so no second create is sent.
    const lost = scripted([stytchError(500, 'internal_server_error'), json(200, {})]);
    await expect(managementOver(lost.fetch).create(env)).rejects.toMatchObject({ statusCode: 500, transient: true });
    expect(lost.sent).toHaveLength(1);
    // A 429 was refused before Stytch acted: retried.
    const limited = scripted([stytchError(429, 'too_many_requests'), json(200, { secret: { secret_id: 'i', secret: 'ssss' } })]);
    // Sent twice: the caller is told, in case the refusal was an answer lost after the effect.
    expect(await managementOver(limited.fetch).create(env)).toMatchObject({ secretId: 'i', retried: true });
    expect(limited.sent).toHaveLength(2);
  });

  it('never echoes a create answer it cannot read (it may hold the new secret)', async () => {
    const { fetch } = scripted([json(200, { secret: { secret: 'secret-test-echo-me-cccc' } })]);
    const error = (await managementOver(fetch).create(env).catch((e: unknown) => e)) as StytchApiError;
    expect(error).toBeInstanceOf(StytchApiError);
    expect(error.message).toMatch(/the answer has no valid secret object/);
    expect(error.message).not.toContain('echo-me');
  });

  it('lists, gets and deletes by id; an unknown id is undefined or absent, not an error', async () => {
    const { fetch, sent } = scripted([
      json(200, { secrets: [{ secret_id: 'a', last_four: 'aaaa', created_at: '2026-01-01T00:00:00Z', used_at: null }, { secret_id: 'b', last_four: 'bbbb' }] }),
      json(200, { secret: { secret_id: 'a', last_four: 'aaaa', created_at: '2026-01-01T00:00:00Z', used_at: '2026-11-30T10:00:00Z' } }),
      stytchError(404, 'secret_not_found'),
      json(200, { status_code: 200 }),
      stytchError(404, 'secret_not_found'),
    ]);
    const m = managementOver(fetch);
    expect(await m.list(env)).toEqual([
      { secretId: 'a', last4: 'aaaa', createdAt: '2026-01-01T00:00:00Z', usedAt: undefined },
      { secretId: 'b', last4: 'bbbb', createdAt: undefined, usedAt: undefined },
    ]);
    expect(await m.get(env, 'a')).toEqual({ secretId: 'a', last4: 'aaaa', createdAt: '2026-01-01T00:00:00Z', usedAt: '2026-11-30T10:00:00Z' });
    expect(await m.get(env, 'gone')).toBeUndefined();
    expect(await m.delete(env, 'a')).toBe('deleted');
    expect(await m.delete(env, 'a/../b')).toBe('absent');
    expect(sent.map((s) => `${s.method} ${s.url.slice(BASE.length)}`)).toEqual(['GET ', 'GET /a', 'GET /gone', 'DELETE /a', 'DELETE /a%2F..%2Fb']);
  });

  it('passes other failures through: a 401 of the workspace key is not "absent"', async () => {
    const { fetch } = scripted([stytchError(401, 'unauthorized_credentials'), stytchError(401, 'unauthorized_credentials')]);
    await expect(managementOver(fetch).delete(env, 'a')).rejects.toMatchObject({ statusCode: 401 });
  });
});

describe('The management API client refuses answers it cannot read, naming the call', () => {
  const cases: Array<[string, (m: ReturnType<typeof managementOver>) => Promise<unknown>, RegExp]> = [
    ['list', (m) => m.list(env), /Stytch management\.secrets_list failed: 200 invalid_response \(the answer has no valid secrets list\) \[request_id r\]/],
    ['get', (m) => m.get(env, 'a'), /Stytch management\.secrets_get failed: 200 invalid_response \(the answer has no valid secret object\) \[request_id r\]/],
    ['create', (m) => m.create(env), /Stytch management\.secrets_create failed: 200 invalid_response \(the answer has no valid secret object\) \[request_id r\]/],
  ];
  for (const [name, call, message] of cases) {
    it(`${name}: a 200 without the expected object is an invalid answer (transient: it says nothing about Stytch's state)`, async () => {
      const { fetch } = scripted([json(200, { request_id: 'r', secrets: [{ secret_id: 'a' }], secret: { secret_id: 'a' } })]);
      const error = (await call(managementOver(fetch, 1)).catch((e: unknown) => e)) as StytchApiError;
      expect(error).toBeInstanceOf(StytchApiError);
      expect(error.message).toMatch(message);
      expect(error.transient).toBe(true);
    });
  }

  it('names the call in a failure it passes through', async () => {
    for (const [call, operation] of [
      [(m: ReturnType<typeof managementOver>) => m.delete(env, 'a'), 'management.secrets_delete'],
      [(m: ReturnType<typeof managementOver>) => m.get(env, 'a'), 'management.secrets_get'],
      [(m: ReturnType<typeof managementOver>) => m.list(env), 'management.secrets_list'],
      [(m: ReturnType<typeof managementOver>) => m.create(env), 'management.secrets_create'],
    ] as const) {
      const { fetch } = scripted([stytchError(403, 'forbidden')]);
      await expect(call(managementOver(fetch, 1))).rejects.toMatchObject({ operation, statusCode: 403 });
    }
  });

  it('re-reads the key only after its time is up', async () => {
    let now = 0;
    let reads = 0;
    const source = managementCredentialsSource(
      async () => JSON.stringify({ workspace_key_id: `k${++reads}`, workspace_key_secret: 's' }),
      'stytch/management',
      { envBaseUrl: undefined, ttlMs: 1000, now: () => now },
    );
    expect((await source.get()).projectId).toBe('k1');
    now = 999;
    expect((await source.get()).projectId).toBe('k1');
    now = 1000;
    expect((await source.get()).projectId).toBe('k2');
  });
});

describe('The project secret probe', () => {
  const probe = (answers: Array<Response | Error>) => {
    const s = scripted(answers);
    const http = new StytchHttp(fixedCredentials({ projectId: VALUE.project_id, secret: 'secret-test-new-dddd', baseUrl: 'https://test.stytch.com' }), {
      fetch: s.fetch,
      deadline: Date.now() + 60_000,
      requestTimeoutMs: 1_000,
      maxAttempts: 3,
      sleep: async () => {},
    });
    return { run: () => probeProjectSecret(http, VALUE), sent: s.sent };
  };

  it('accepts a 404 for the client that does not exist: Stytch accepted the credentials first', async () => {
    const p = probe([stytchError(404, 'm2m_client_not_found')]);
    await p.run();
    expect(p.sent).toEqual([
      {
        url: 'https://test.stytch.com/v1/m2m/clients/m2m-client-test-00000000-0000-4000-8000-000000000000',
        method: 'GET',
        auth: `Basic ${Buffer.from(`${VALUE.project_id}:secret-test-new-dddd`).toString('base64')}`,
        body: undefined,
      },
    ]);
  });

  it('turns a 401 into a verification failure at once, without re-reading anything', async () => {
    const p = probe([stytchError(401, 'unauthorized_credentials')]);
    const error = (await p.run().catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(VerificationError);
    expect(error.message).toMatch(/The new project secret secret-test-22222222-2222-4222-8222-222222222222 does not authenticate at Stytch's project API \(401 unauthorized_credentials, request_id request-id-401\)/);
    expect(error.message).not.toContain('dddd');
    expect(p.sent).toHaveLength(1);
  });

  it('probes a live project with a live-shaped client id, and keeps the cause', async () => {
    const s = scripted([stytchError(404, 'm2m_client_not_found'), stytchError(401, 'unauthorized_credentials')]);
    const live = { ...VALUE, project_id: 'project-live-11111111-1111-4111-8111-111111111111' };
    const http = new StytchHttp(fixedCredentials({ projectId: live.project_id, secret: 'x', baseUrl: 'https://api.stytch.com' }), {
      fetch: s.fetch,
      deadline: Date.now() + 60_000,
      requestTimeoutMs: 1_000,
      maxAttempts: 1,
    });
    await probeProjectSecret(http, live);
    expect(s.sent[0]!.url).toBe('https://api.stytch.com/v1/m2m/clients/m2m-client-live-00000000-0000-4000-8000-000000000000');
    const error = (await probeProjectSecret(http, live, 'current').catch((e: unknown) => e)) as VerificationError;
    expect(error.cause).toMatchObject({ statusCode: 401, operation: 'project.probe' });
    expect(error.message).toMatch(/^AWSCURRENT's project secret \S+ does not authenticate .*\. Nothing was changed\. Put the secret that belongs to that secret_id into the value, then rotate again\.$/);
    const s2 = scripted([stytchError(401, 'unauthorized_credentials')]);
    const http2 = new StytchHttp(fixedCredentials({ projectId: live.project_id, secret: 'x', baseUrl: 'https://api.stytch.com' }), { fetch: s2.fetch, deadline: Date.now() + 60_000, requestTimeoutMs: 1_000, maxAttempts: 1 });
    const fresh = (await probeProjectSecret(http2, live, 'new').catch((e: unknown) => e)) as VerificationError;
    expect(fresh.message).not.toMatch(/Nothing was changed/);
  });

  it('retries a 503 and passes a 400 through as what it is', async () => {
    const p = probe([stytchError(503, 'unavailable'), stytchError(404, 'm2m_client_not_found')]);
    await p.run();
    expect(p.sent).toHaveLength(2);
    const q = probe([stytchError(400, 'invalid_client_id')]);
    await expect(q.run()).rejects.toMatchObject({ statusCode: 400, name: 'StytchApiError' });
  });
});
