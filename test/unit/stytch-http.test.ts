import { describe, expect, it } from 'vitest';
import { resolveBaseUrl } from '../../functions/lib/config.js';
import { InvalidInputError, isDefinitiveAwsError, isTransient, isTransientStatus, RotationError, StytchApiError, TransientError, VerificationError } from '../../functions/lib/errors.js';
import { StytchHttp, type CredentialsSource, type FetchFn, type HttpOptions } from '../../functions/lib/stytch/http.js';

/** A scripted Stytch: each call takes the next answer; records what was sent. */
function scripted(answers: Array<Response | Error | ((signal: AbortSignal) => Promise<Response>)>) {
  const sent: Array<{ url: string; init: RequestInit }> = [];
  const fetch: FetchFn = async (input, init = {}) => {
    sent.push({ url: String(input), init });
    const next = answers.shift();
    if (!next) throw new Error('no more scripted answers');
    if (next instanceof Error) throw next;
    if (typeof next === 'function') return next(init.signal!);
    return next;
  };
  return { fetch, sent };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
const stytchError = (status: number, errorType: string) =>
  json(status, { status_code: status, request_id: `request-id-${status}`, error_type: errorType, error_message: `a ${errorType}`, error_url: '' });

function credentials(...secrets: string[]): CredentialsSource & { refreshes: number } {
  const source = {
    refreshes: 0,
    get: async () => ({ projectId: 'project-test-1', secret: secrets[0]!, baseUrl: 'https://test.stytch.com' }),
    refresh: async () => {
      source.refreshes++;
      return { projectId: 'project-test-1', secret: secrets[1] ?? secrets[0]!, baseUrl: 'https://test.stytch.com' };
    },
  };
  return source;
}

function client(fetch: FetchFn, overrides: Partial<HttpOptions> = {}, creds = credentials('secret-one')) {
  const sleeps: number[] = [];
  const http = new StytchHttp(creds, {
    fetch,
    deadline: Date.now() + 60_000,
    requestTimeoutMs: 1_000,
    maxAttempts: 4,
    sleep: async (ms) => void sleeps.push(ms),
    random: () => 1,
    ...overrides,
  });
  return { http, sleeps };
}

const get = { operation: 'connected_app.get', method: 'GET' as const, path: () => '/v1/connected_apps/clients/connected-app-test-1', auth: 'basic' as const };

describe('Class: StytchHttp', () => {
  it('sends project Basic auth and returns the body with its request id', async () => {
    const { fetch, sent } = scripted([json(200, { request_id: 'request-id-ok', connected_app: {} })]);
    const { http } = client(fetch);
    const answer = await http.call(get);
    expect(answer.requestId).toBe('request-id-ok');
    expect(sent[0]!.url).toBe('https://test.stytch.com/v1/connected_apps/clients/connected-app-test-1');
    expect((sent[0]!.init.headers as Record<string, string>).Authorization).toBe(`Basic ${Buffer.from('project-test-1:secret-one').toString('base64')}`);
  });

  it('retries 429 and 5xx with exponential backoff, honouring Retry-After', async () => {
    const { fetch, sent } = scripted([stytchError(429, 'too_many_requests'), stytchError(503, 'internal_server_error'), json(200, {})]);
    const { http, sleeps } = client(fetch);
    // Every request sent counts: a caller of a call that must not run twice learns that it was retried.
    expect((await http.call(get)).attempts).toBe(3);
    expect(sent).toHaveLength(3);
    // 429 with no Retry-After header: a 1 s floor (equal jitter, here at its top); then 503: 200 ms × 2^1 × jitter(1).
    expect(sleeps).toEqual([1000, 400]);
    const withHeader = scripted([json(429, { error_type: 'too_many_requests' }, { 'retry-after': '2' }), json(200, {})]);
    const second = client(withHeader.fetch);
    await second.http.call(get);
    expect(second.sleeps).toEqual([2000]);
  });

  it('retries network errors and timeouts, then fails as transient with the operation named', async () => {
    const hang = (signal: AbortSignal) =>
      new Promise<Response>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
    const { fetch, sent } = scripted([new TypeError('fetch failed'), hang, new TypeError('fetch failed'), hang]);
    const { http } = client(fetch, { requestTimeoutMs: 20 });
    const error = await http.call(get).catch((e: unknown) => e);
    expect(sent).toHaveLength(4);
    expect(error).toBeInstanceOf(StytchApiError);
    expect(error).toMatchObject({ transient: true, statusCode: 0, errorType: 'timeout', operation: 'connected_app.get' });
  });

  it('does not retry other 4xx and carries status, error_type and request_id', async () => {
    const { fetch, sent } = scripted([stytchError(404, 'idp_client_not_found')]);
    const { http } = client(fetch);
    const error = await http.call(get).catch((e: unknown) => e);
    expect(sent).toHaveLength(1);
    expect(error).toMatchObject({ transient: false, statusCode: 404, errorType: 'idp_client_not_found', requestId: 'request-id-404' });
    expect((error as Error).message).toBe('Stytch connected_app.get failed: 404 idp_client_not_found (a idp_client_not_found) [request_id request-id-404]');
  });

  it('re-reads the credentials once on 401 and retries with them', async () => {
    const creds = credentials('secret-old', 'secret-new');
    const { fetch, sent } = scripted([stytchError(401, 'unauthorized_credentials'), json(200, {})]);
    const { http } = client(fetch, {}, creds);
    expect((await http.call(get)).attempts).toBe(2);
    expect(creds.refreshes).toBe(1);
    expect((sent[1]!.init.headers as Record<string, string>).Authorization).toContain(Buffer.from('project-test-1:secret-new').toString('base64'));
  });

  it('does not re-read the credentials on a 401 when the 401 is the answer (a probe of given credentials)', async () => {
    const creds = credentials('secret-old', 'secret-new');
    const { fetch, sent } = scripted([stytchError(401, 'unauthorized_credentials'), json(200, {})]);
    const { http } = client(fetch, {}, creds);
    await expect(http.call({ ...get, refreshOn401: false })).rejects.toMatchObject({ statusCode: 401, transient: false });
    expect(creds.refreshes).toBe(0);
    expect(sent).toHaveLength(1);
  });

  it('sends a call that must not run twice once on a 5xx, and again only after a 429 (refused before Stytch acted)', async () => {
    const create = { operation: 'management.secrets_create', method: 'POST' as const, path: () => '/secrets', auth: 'basic' as const, json: {}, idempotent: false };
    const lost = scripted([stytchError(503, 'service_unavailable'), json(200, {})]);
    await expect(client(lost.fetch).http.call(create)).rejects.toMatchObject({ statusCode: 503, transient: true });
    expect(lost.sent).toHaveLength(1);
    const limited = scripted([stytchError(429, 'too_many_requests'), json(200, {})]);
    expect((await client(limited.fetch).http.call(create)).attempts).toBe(2);
    expect(limited.sent).toHaveLength(2);
    // Any other call is retried on a 5xx as usual.
    const plain = scripted([stytchError(503, 'service_unavailable'), json(200, {})]);
    expect((await client(plain.fetch).http.call({ ...create, idempotent: undefined })).attempts).toBe(2);
  });

  it('gives up on 401 after one re-read', async () => {
    const creds = credentials('secret-old');
    const { fetch, sent } = scripted([stytchError(401, 'unauthorized_credentials'), stytchError(401, 'unauthorized_credentials')]);
    const { http } = client(fetch, {}, creds);
    await expect(http.call(get)).rejects.toMatchObject({ statusCode: 401, transient: false });
    expect(creds.refreshes).toBe(1);
    expect(sent).toHaveLength(2);
  });

  it('stops retrying when the Lambda deadline leaves no time, failing as transient', async () => {
    const { fetch, sent } = scripted([stytchError(503, 'internal_server_error'), json(200, {})]);
    const { http } = client(fetch, { deadline: Date.now() + 1_000, maxDelayMs: 5_000, random: () => 1, baseDelayMs: 2_000 });
    await expect(http.call(get)).rejects.toMatchObject({ statusCode: 503, transient: true });
    expect(sent).toHaveLength(1);
  });

  it('does not start a request with no time left', async () => {
    const { fetch, sent } = scripted([json(200, {})]);
    const { http } = client(fetch, { deadline: Date.now() + 10 });
    await expect(http.call(get)).rejects.toMatchObject({ errorType: 'deadline_exceeded', transient: true });
    expect(sent).toHaveLength(0);
  });

  it('bounds each request by the remaining time, not only by its own timeout', async () => {
    let timeoutSeen = 0;
    const fetch: FetchFn = async (_input, init) => {
      const started = Date.now();
      await new Promise<void>((resolve) => init!.signal!.addEventListener('abort', () => resolve(), { once: true }));
      timeoutSeen = Date.now() - started;
      throw init!.signal!.reason;
    };
    const { http } = client(fetch, { deadline: Date.now() + 400, requestTimeoutMs: 10_000, maxAttempts: 1 });
    await expect(http.call(get)).rejects.toMatchObject({ errorType: 'timeout' });
    expect(timeoutSeen).toBeLessThan(1_000);
  });

  it('accepts a deadline that leaves a fractional number of milliseconds', async () => {
    const { fetch, sent } = scripted([json(200, {})]);
    const { http } = client(fetch, { deadline: Date.now() + 3_997.2, requestTimeoutMs: 10_000 });
    await http.call(get);
    expect(sent).toHaveLength(1);
  });

  it.each([301, 302, 303, 307, 308])('never follows a %i: a definitive error naming the status and the target host, not its query; no retry', async (status) => {
    const { fetch, sent } = scripted([new Response(null, { status, headers: { location: 'https://elsewhere.example:8443/steal?token=abc' } })]);
    const { http } = client(fetch);
    const error = (await http.call(get).catch((e: unknown) => e)) as StytchApiError;
    expect(sent).toHaveLength(1);
    expect(sent[0]!.init.redirect).toBe('manual');
    expect(error).toBeInstanceOf(StytchApiError);
    expect(error.transient).toBe(false);
    expect(error.message).toContain(`${status} redirect_refused (answered ${status} with a redirect to elsewhere.example:8443; redirects are never followed`);
    expect(error.message).not.toContain('token=abc');
  });

  it('reads OAuth-shaped errors from the token endpoint', async () => {
    const { fetch } = scripted([json(401, { status_code: 401, request_id: 'r-1', error: 'invalid_client', error_description: 'bad client' })]);
    const { http } = client(fetch);
    await expect(
      http.call({ operation: 'm2m.token', method: 'POST', auth: 'none', path: () => '/v1/public/project-test-1/oauth2/token', form: { grant_type: 'client_credentials' } }),
    ).rejects.toMatchObject({ statusCode: 401, errorType: 'invalid_client' });
  });

  it('treats a success that is not JSON as transient (retried, never a reason to cancel) and does not quote it', async () => {
    const garbled = () => new Response('<html>secret-looking</html>', { status: 200 });
    const { fetch, sent } = scripted([garbled(), garbled()]);
    const { http } = client(fetch, { maxAttempts: 2 });
    const error = (await http.call(get).catch((e: unknown) => e)) as Error;
    expect(sent).toHaveLength(2);
    expect(error).toMatchObject({ errorType: 'invalid_response', transient: true });
    expect(error.message).toBe('Stytch connected_app.get failed: 200 invalid_response (the answer is not JSON)');
    expect(error.message).not.toContain('secret-looking');
  });
});

describe('Class: StytchHttp, requests and answers exactly', () => {
  const post = { operation: 'connected_app.rotate_start', method: 'POST' as const, path: () => '/v1/x/rotate/start', auth: 'basic' as const };
  const form = { operation: 'm2m.token', method: 'POST' as const, path: () => '/v1/public/p/oauth2/token', auth: 'none' as const, form: { grant_type: 'client_credentials', client_id: 'c' } };

  it('sends exactly these headers and bodies: Basic auth only for project calls, JSON for POST, a form for the token endpoint', async () => {
    const { fetch, sent } = scripted([json(200, {}), json(200, {}), json(200, {}), json(200, {})]);
    const { http } = client(fetch);
    await http.call(get);
    await http.call(post);
    await http.call({ ...post, json: { a: 1 } });
    await http.call(form);
    const basic = `Basic ${Buffer.from('project-test-1:secret-one').toString('base64')}`;
    const common = { 'User-Agent': 'stytch-secret-rotation/0.1', Accept: 'application/json' };
    expect(sent.map((s) => ({ method: s.init.method, headers: s.init.headers, body: s.init.body }))).toEqual([
      { method: 'GET', headers: { ...common, Authorization: basic }, body: undefined },
      { method: 'POST', headers: { ...common, Authorization: basic, 'Content-Type': 'application/json' }, body: '{}' },
      { method: 'POST', headers: { ...common, Authorization: basic, 'Content-Type': 'application/json' }, body: '{"a":1}' },
      { method: 'POST', headers: { ...common, 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials&client_id=c' },
    ]);
  });

  it('logs each answer at debug level with its operation, status and request id only', async () => {
    const { fetch } = scripted([json(200, { request_id: 'r-1', secret: 'never-logged' })]);
    const debug: unknown[][] = [];
    const { http } = client(fetch, { logger: { debug: (...args) => void debug.push(args), warn: () => undefined } });
    await http.call(get);
    expect(debug).toEqual([['Stytch answered', { operation: 'connected_app.get', statusCode: 200, requestId: 'r-1' }]]);
  });

  it('logs the re-read of the credentials after a 401 with the operation and request id', async () => {
    const { fetch } = scripted([stytchError(401, 'unauthorized_credentials'), json(200, {})]);
    const warn: unknown[][] = [];
    const { http } = client(fetch, { logger: { debug: () => undefined, warn: (...args) => void warn.push(args) } }, credentials('a', 'b'));
    await http.call(get);
    expect(warn).toEqual([['Stytch rejected the project credentials; re-read them and retrying once', { operation: 'connected_app.get', requestId: 'request-id-401' }]]);
  });

  it('reads an empty answer as {}, and an answer that is JSON but not an object (an array, null, a number) as no fields', async () => {
    const { fetch } = scripted([new Response('', { status: 200 }), json(200, [1, 2]), json(200, null), json(200, 7)]);
    const { http } = client(fetch);
    for (let i = 0; i < 4; i++) expect(await http.call(get)).toEqual({ body: {}, requestId: undefined, attempts: 1 });
  });

  it('ignores a request_id that is not a string', async () => {
    const { fetch } = scripted([json(200, { request_id: 42 })]);
    expect(await client(fetch).http.call(get)).toEqual({ body: { request_id: 42 }, requestId: undefined, attempts: 1 });
  });

  it('classifies a failed answer that is not JSON by its status (a proxy\'s 502 page is transient, its text never quoted)', async () => {
    const { fetch } = scripted([new Response('<html>bad gateway</html>', { status: 502 })]);
    const error = (await client(fetch, { maxAttempts: 1 }).http.call(get).catch((e: unknown) => e)) as StytchApiError;
    expect(error).toMatchObject({ statusCode: 502, errorType: 'http_502', transient: true, requestId: undefined });
    expect(error.message).toBe('Stytch connected_app.get failed: 502 http_502');
  });

  it('reads error_type, else OAuth error, else http_<status>; error_message, else error_description, cut to 300 characters', async () => {
    const long = 'x'.repeat(400);
    const { fetch } = scripted([
      json(400, { error_type: 'bad_request', error: 'ignored', error_message: 'first', error_description: 'ignored' }),
      json(400, { error: 'invalid_grant', error_description: 'second' }),
      json(400, { error_type: 7, error: 8, error_message: 9, error_description: 10 }),
      json(400, { error_message: long }),
    ]);
    const { http } = client(fetch, { maxAttempts: 1 });
    const errors = [];
    for (let i = 0; i < 4; i++) errors.push((await http.call(get).catch((e: unknown) => e)) as StytchApiError);
    expect(errors.map((e) => e.message)).toEqual([
      'Stytch connected_app.get failed: 400 bad_request (first)',
      'Stytch connected_app.get failed: 400 invalid_grant (second)',
      'Stytch connected_app.get failed: 400 http_400',
      `Stytch connected_app.get failed: 400 http_400 (${'x'.repeat(300)})`,
    ]);
  });

  it.each([
    ['2', 2_000],
    ['0', undefined],
    ['-1', undefined],
    ['soon', undefined],
  ])('reads Retry-After %s as %s ms', async (header, expected) => {
    const { fetch } = scripted([json(429, { error_type: 'too_many_requests' }, { 'retry-after': header })]);
    const error = (await client(fetch, { maxAttempts: 1 }).http.call(get).catch((e: unknown) => e)) as StytchApiError;
    expect(error.retryAfterMs).toBe(expected);
  });

  it.each([
    [new DOMException('The operation timed out.', 'TimeoutError'), 'timeout', 'no answer within 1000 ms'],
    [new DOMException('This operation was aborted', 'AbortError'), 'timeout', 'no answer within 1000 ms'],
    [new TypeError('fetch failed'), 'network_error', 'the connection failed'],
  ])('turns a fetch failure (%s) into a transient Stytch error with no status, keeping the cause', async (thrown, errorType, message) => {
    const { fetch } = scripted([thrown]);
    const error = (await client(fetch, { maxAttempts: 1 }).http.call(get).catch((e: unknown) => e)) as StytchApiError;
    expect(error).toBeInstanceOf(StytchApiError);
    expect(error.message).toBe(`Stytch connected_app.get failed: no response ${errorType} (${message})`);
    expect(error.cause).toBe(thrown);
    expect(error.transient).toBe(true);
  });

  it('a thrown value that is not an Error is a network error', async () => {
    const fetch: FetchFn = async () => {
      throw Object.assign(Object.create(null) as object, { name: 'TimeoutError' });
    };
    const error = (await client(fetch, { maxAttempts: 1 }).http.call(get).catch((e: unknown) => e)) as StytchApiError;
    expect(error.errorType).toBe('network_error');
  });

  it('refuses a 300 too, and names a missing or malformed Location', async () => {
    const { fetch } = scripted([new Response(null, { status: 300 }), new Response(null, { status: 302, headers: { location: 'http://[bad' } })]);
    const { http } = client(fetch);
    const first = (await http.call(get).catch((e: unknown) => e)) as StytchApiError;
    const second = (await http.call(get).catch((e: unknown) => e)) as StytchApiError;
    expect(first.message).toContain('300 redirect_refused (answered 300 with no Location; redirects are never followed, so nothing was sent there. Check base_url in the Stytch credentials secret (or STYTCH_API_BASE_URL): it must be Stytch\'s API itself)');
    expect(second.message).toContain('302 redirect_refused (answered 302 with a malformed Location;');
  });
});

describe('Class: StytchHttp, the deadline exactly', () => {
  /** A clock that moves only when the client sleeps. */
  function clocked(answers: Parameters<typeof scripted>[0], deadlineIn: number, options: Partial<HttpOptions> = {}) {
    let now = 1_000_000;
    const { fetch, sent } = scripted(answers);
    const sleeps: number[] = [];
    const http = new StytchHttp(credentials('secret-one'), {
      fetch,
      deadline: now + deadlineIn,
      requestTimeoutMs: 1_000,
      maxAttempts: 10,
      baseDelayMs: 200,
      random: () => 1,
      now: () => now,
      sleep: async (ms) => {
        sleeps.push(ms);
        now += ms;
      },
      ...options,
    });
    return { http, sent, sleeps };
  }

  it('starts a request with exactly 250 ms left, and none with less, failing with a message that says Secrets Manager will reattempt', async () => {
    const exactly = clocked([json(200, {})], 250);
    await exactly.http.call(get);
    expect(exactly.sent).toHaveLength(1);
    const under = clocked([json(200, {})], 249);
    const error = (await under.http.call(get).catch((e: unknown) => e)) as StytchApiError;
    expect(under.sent).toHaveLength(0);
    expect(error.message).toBe('Stytch connected_app.get failed: no response deadline_exceeded (no time left in this invocation for another request; Secrets Manager will reattempt)');
  });

  it('retries when the backoff still leaves exactly 250 ms for the next attempt, and not when it leaves less', async () => {
    // First backoff: 200 ms; the retry needs 200 + 250 ms before the deadline.
    const enough = clocked([stytchError(503, 'service_unavailable'), json(200, {})], 450);
    await enough.http.call(get);
    expect(enough.sleeps).toEqual([200]);
    const short = clocked([stytchError(503, 'service_unavailable'), json(200, {})], 449);
    await expect(short.http.call(get)).rejects.toMatchObject({ statusCode: 503, transient: true });
    expect(short.sleeps).toEqual([]);
    expect(short.sent).toHaveLength(1);
  });

  it('waits for real when no sleep is given (the default backoff)', async () => {
    const { fetch } = scripted([stytchError(503, 'service_unavailable'), json(200, {})]);
    const http = new StytchHttp(credentials('secret-one'), { fetch, deadline: Date.now() + 60_000, requestTimeoutMs: 1_000, maxAttempts: 2, baseDelayMs: 60, random: () => 1 });
    const started = performance.now();
    await http.call(get);
    expect(performance.now() - started).toBeGreaterThanOrEqual(55);
  });
});

describe('Class: StytchHttp, backoff with jitter', () => {
  it('spreads each retry over [0, base × 2^(n-1)] by the random draw (full jitter), capped at maxDelayMs', async () => {
    const answers = Array.from({ length: 5 }, () => stytchError(500, 'internal_server_error'));
    const { fetch, sent } = scripted([...answers, json(200, {})]);
    const draws = [0.5, 0.25, 0.75, 0.1, 0.9];
    const { http, sleeps } = client(fetch, { maxAttempts: 6, baseDelayMs: 200, maxDelayMs: 1_000, random: () => draws.shift()! });
    await http.call(get);
    expect(sent).toHaveLength(6);
    // 200 × 0.5, 400 × 0.25, 800 × 0.75, min(1000, 1600) × 0.1, min(1000, 3200) × 0.9
    expect(sleeps).toEqual([100, 100, 600, 100, 900]);
  });

  it('backs off a 429 with equal jitter above half of a 1 s floor that doubles, so concurrent rotations never retry at once', async () => {
    const { fetch } = scripted([stytchError(429, 'too_many_requests'), stytchError(429, 'too_many_requests'), stytchError(429, 'too_many_requests'), json(200, {})]);
    // Each attempt draws twice: the full jitter (lower here), then the equal jitter of the floor.
    const draws = [0, 0.5, 0, 0.25, 0, 0];
    const { http, sleeps } = client(fetch, { maxDelayMs: 5_000, random: () => draws.shift()! });
    await http.call(get);
    // Floors 1000, 2000, 4000: half of each, plus that half × the draw.
    expect(sleeps).toEqual([750, 1250, 2000]);
  });

  it('waits at least a Retry-After, up to maxDelayMs, whatever the jitter draws', async () => {
    const { fetch } = scripted([json(503, { error_type: 'internal_server_error' }, { 'retry-after': '3' }), json(503, { error_type: 'internal_server_error' }, { 'retry-after': '60' }), json(200, {})]);
    const { http, sleeps } = client(fetch, { maxDelayMs: 5_000, random: () => 0 });
    await http.call(get);
    expect(sleeps).toEqual([3_000, 5_000]);
  });

  it('logs each retry once with its operation, attempt, status and the rounded delay, and counts it', async () => {
    const { fetch } = scripted([stytchError(502, 'bad_gateway'), json(200, {})]);
    const warnings: Array<{ message: string; extra?: Record<string, unknown> }> = [];
    const retried: string[] = [];
    const { http } = client(fetch, {
      random: () => 0.333,
      logger: { debug: () => undefined, warn: (message, extra) => void warnings.push({ message, ...(extra ? { extra } : {}) }) },
      onRetry: (operation) => void retried.push(operation),
    });
    await http.call(get);
    expect(retried).toEqual(['connected_app.get']);
    expect(warnings.map((w) => w.extra)).toEqual([
      { operation: 'connected_app.get', attempt: 1, statusCode: 502, errorType: 'bad_gateway', requestId: 'request-id-502', delayMs: 67 },
    ]);
  });
});

describe('Function: isTransientStatus (the failure policy: transient errors are retried, never cancelled)', () => {
  it.each([
    [0, true],
    [408, true],
    [429, true],
    [500, true],
    [501, true],
    [502, true],
    [503, true],
    [504, true],
    [599, true],
    [400, false],
    [401, false],
    [403, false],
    [404, false],
    [409, false],
    [499, false],
  ])('status %i is transient: %s', (status, transient) => {
    expect(isTransientStatus(status)).toBe(transient);
    expect(new StytchApiError({ statusCode: status, errorType: 'x', operation: 'connected_app.get' }).transient).toBe(transient);
  });

  it('a garbled answer (invalid_response) is transient whatever its status; other error types follow the status', () => {
    expect(new StytchApiError({ statusCode: 200, errorType: 'invalid_response', operation: 'o' }).transient).toBe(true);
    expect(new StytchApiError({ statusCode: 400, errorType: 'invalid_response', operation: 'o' }).transient).toBe(true);
    expect(new StytchApiError({ statusCode: 400, errorType: 'bad_request', operation: 'o' }).transient).toBe(false);
  });

  it('a plain Stytch 500 and the other 5xx are retried by the client, then surface as transient', async () => {
    for (const status of [500, 502, 504]) {
      const { fetch, sent } = scripted([stytchError(status, 'internal_server_error'), stytchError(status, 'internal_server_error')]);
      const { http } = client(fetch, { maxAttempts: 2 });
      await expect(http.call(get)).rejects.toMatchObject({ statusCode: status, transient: true });
      expect(sent).toHaveLength(2);
    }
  });
});

describe('Errors: classes, names and what is transient', () => {
  it('names each class and marks only TransientError (and transient Stytch errors) transient', () => {
    const cause = new Error('root');
    const cases = [
      [new RotationError('a', { cause }), 'RotationError', false],
      [new InvalidInputError('b', { cause }), 'InvalidInputError', false],
      [new VerificationError('c', { cause }), 'VerificationError', false],
      [new TransientError('d', { cause }), 'TransientError', true],
    ] as const;
    for (const [error, name, transient] of cases) {
      expect(error).toBeInstanceOf(RotationError);
      expect(error.name).toBe(name);
      expect(error.transient).toBe(transient);
      expect(error.cause).toBe(cause);
      expect(isTransient(error)).toBe(transient);
    }
  });

  it('builds a Stytch error message from status, type, message and request id, saying "no response" for status 0', () => {
    const full = new StytchApiError({ statusCode: 404, errorType: 'client_not_found', errorMessage: 'no such client', requestId: 'r-9', operation: 'm2m.get', retryAfterMs: 2000 });
    expect(full.message).toBe('Stytch m2m.get failed: 404 client_not_found (no such client) [request_id r-9]');
    expect(full).toMatchObject({ name: 'StytchApiError', statusCode: 404, errorType: 'client_not_found', requestId: 'r-9', operation: 'm2m.get', retryAfterMs: 2000 });
    expect(new StytchApiError({ statusCode: 0, errorType: 'network_error', operation: 'm2m.get' }).message).toBe('Stytch m2m.get failed: no response network_error');
  });

  it.each([
    'ResourceNotFoundException',
    'InvalidParameterException',
    'InvalidRequestException',
    'ResourceExistsException',
    'AccessDeniedException',
    'DecryptionFailure',
    'EncryptionFailure',
    'ValidationException',
    'MalformedPolicyDocumentException',
  ])('an AWS %s is definitive (a retry will not fix it)', (name) => {
    const error = Object.assign(new Error('x'), { name });
    expect(isDefinitiveAwsError(error)).toBe(true);
    expect(isTransient(error)).toBe(false);
  });

  it.each(['ThrottlingException', 'InternalServiceError', 'Error', 'TimeoutError'])('an AWS %s, or anything else, is worth a reattempt', (name) => {
    const error = Object.assign(new Error('x'), { name });
    expect(isDefinitiveAwsError(error)).toBe(false);
    expect(isTransient(error)).toBe(true);
    expect(isTransient('a string thrown')).toBe(true);
  });
});

describe('Function: resolveBaseUrl', () => {
  it.each([
    ['project-live-123', undefined, undefined, 'https://api.stytch.com'],
    ['project-test-123', undefined, undefined, 'https://test.stytch.com'],
    ['project-test-123', 'https://auth.example.com/', undefined, 'https://auth.example.com'],
    ['project-test-123', undefined, 'https://env.example.com', 'https://env.example.com'],
    ['project-test-123', 'http://127.0.0.1:4567', undefined, 'http://127.0.0.1:4567'],
    ['project-test-123', 'http://localhost:4567', undefined, 'http://localhost:4567'],
    ['project-test-123', 'http://[::1]:4567', undefined, 'http://[::1]:4567'],
  ])('for %s with base_url %s and env %s uses %s', (projectId, fromSecret, fromEnv, expected) => {
    expect(resolveBaseUrl(projectId, fromSecret, fromEnv)).toBe(expected);
  });

  it.each([
    ['http://stytch.example.com', /must use https.*loopback/],
    ['ftp://127.0.0.1', /must use https/],
    ['not a url', /is not a valid URL/],
    ['http://127.0.0.1.example.com', /must use https/],
  ])('refuses %s', (url, message) => {
    expect(() => resolveBaseUrl('project-test-1', url, undefined)).toThrow(message);
  });
});
