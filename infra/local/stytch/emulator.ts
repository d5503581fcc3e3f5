/**
 * An in-memory Stytch API for tests and the local stack (DESIGN.md §6): the
 * Connected App and M2M secret-rotation endpoints, the M2M token endpoint,
 * project Basic auth, the management API's project-secret endpoints (workspace
 * key Basic auth; DESIGN.md §4b), Stytch's error JSON, fault injection and a
 * per-caller rate limit.
 *
 * One handler serves both entry points, so `emulator.fetch` (in-process) and
 * `listen()` (real HTTP, for the official SDK and the CLI) cannot drift apart.
 * Request pipeline, in order:
 *   route → rate limit → fault (drop / before / delay) → auth + effect → fault (after) → record
 * Rate limiting comes first so a throttled request never consumes a fault, and
 * faults come before auth because they model the network and Stytch's edge,
 * which fail whoever the caller is.
 *
 * Invariant V (no secret leaves the vault) applies here too: `requests` keeps
 * no bodies or headers, and error messages name ids and types only.
 */
import { generateKeyPairSync, type KeyObject, randomUUID, sign as cryptoSign } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { listen } from '../listen.js';
import {
  EmulatedApiError,
  StytchModel,
  connectedAppJson,
  createdSecretJson,
  lastFour,
  m2mClientJson,
  maskedSecretJson,
  secretEquals,
  type ClientKind,
  type ConnectedAppClientType,
  type CreatedProject,
  type CreateProjectOptions,
  type WorkspaceKey,
} from './model.js';

export { MAX_PROJECT_SECRETS } from './model.js';
export type { ConnectedAppClientType, CreatedProject, CreateProjectOptions, WorkspaceKey } from './model.js';

export interface StytchEmulatorOptions {
  /** Clock in epoch milliseconds for the rate limiter, tokens, and secrets' created_at / used_at (default Date.now). */
  now?: () => number;
  /** Source for ids and secrets, like Math.random (default node:crypto). For reproducible runs only. */
  random?: () => number;
}

export type Operation =
  | 'connected_app.get'
  | 'connected_app.rotate_start'
  | 'connected_app.rotate'
  | 'connected_app.rotate_cancel'
  | 'm2m.get'
  | 'm2m.rotate_start'
  | 'm2m.rotate'
  | 'm2m.rotate_cancel'
  | 'm2m.token'
  | 'sessions.jwks'
  | 'secrets.create'
  | 'secrets.list'
  | 'secrets.get'
  | 'secrets.delete'
  | 'unknown';

/** A project secret as the management API lists it, with times as epoch milliseconds (never the value). */
export interface ProjectSecretState {
  secretId: string;
  lastFour: string;
  createdAt: number;
  /** null until the secret authenticates a project-API request. */
  usedAt: number | null;
}

export interface Fault {
  /** undefined = any operation. */
  operation?: Operation;
  /**
   * before: answer with an error without applying the effect;
   * after: apply the effect, then answer with the error (the response is lost);
   * drop: apply nothing and fail the connection; delay: wait delayMs, then handle normally.
   */
  mode: 'before' | 'after' | 'drop' | 'delay';
  /** Default 503 for before/after. */
  status?: number;
  /** Default 'too_many_requests' for 429, else 'internal_server_error'. */
  errorType?: string;
  /** Default 1000 for delay. */
  delayMs?: number;
  /** How many requests it applies to (default 1); Infinity allowed. */
  times?: number;
}

export interface RequestRecord {
  readonly method: string;
  readonly path: string;
  readonly operation: Operation;
  /** 0 when no response was sent: a dropped connection, or a caller that gave up during a delay. */
  readonly status: number;
  readonly clientId?: string;
  readonly faulted?: Fault['mode'];
}

export interface ClientState {
  clientSecretLast4: string | null;
  nextClientSecretLast4: string | null;
  kind: 'connected_app' | 'm2m';
  clientType?: string;
}

export interface ListeningEmulator {
  url: string;
  port: number;
  close(): Promise<void>;
}

const OPERATIONS: readonly Operation[] = [
  'connected_app.get',
  'connected_app.rotate_start',
  'connected_app.rotate',
  'connected_app.rotate_cancel',
  'm2m.get',
  'm2m.rotate_start',
  'm2m.rotate',
  'm2m.rotate_cancel',
  'm2m.token',
  'sessions.jwks',
  'secrets.create',
  'secrets.list',
  'secrets.get',
  'secrets.delete',
  'unknown',
];
const FAULT_MODES: ReadonlyArray<Fault['mode']> = ['before', 'after', 'drop', 'delay'];
const DEFAULT_DELAY_MS = 1000;
const TOKEN_LIFETIME_SECONDS = 3600;

interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  jwk: Record<string, string>;
}
let sharedSigningKey: SigningKey | undefined;

type ClientAction = 'get' | 'rotate_start' | 'rotate' | 'rotate_cancel';

type SecretsOperation = 'secrets.create' | 'secrets.list' | 'secrets.get' | 'secrets.delete';

type Route =
  | { operation: `${ClientKind}.${ClientAction}`; kind: ClientKind; action: ClientAction; clientId: string }
  | { operation: 'm2m.token' | 'sessions.jwks'; projectId: string }
  | { operation: SecretsOperation; projectSlug: string; environmentSlug: string; secretId?: string }
  | { operation: 'unknown' };

/** What both entry points hand to the shared handler. */
interface WireRequest {
  method: string;
  url: string;
  headers: Headers;
  body: string;
}

interface WireResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

type Outcome = { kind: 'response'; response: WireResponse } | { kind: 'drop' } | { kind: 'aborted' };

interface Bucket {
  tokens: number;
  updatedAt: number;
}

export class StytchEmulator {
  readonly #model: StytchModel;
  readonly #now: () => number;
  #faults: Array<Fault & { remaining: number }> = [];
  #rateLimit: { requestsPerSecond: number } | null = null;
  readonly #buckets = new Map<string, Bucket>();
  #requests: RequestRecord[] = [];

  constructor(options: StytchEmulatorOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#model = new StytchModel({ now: this.#now, ...(options.random === undefined ? {} : { random: options.random }) });
  }

  // ---- setup (as if done in the dashboard) -----------------------------------

  /**
   * A project environment with one secret. Its slugs address it in the management
   * API: by default the project id without `project-test-` and `test` (`production`
   * for a `project-live-` id).
   */
  createProject(opts?: CreateProjectOptions): CreatedProject {
    return this.#model.createProject(opts);
  }

  /** Replaces all of the project's secrets with one new one: every earlier secret gets 401 from now on. */
  rotateProjectSecret(projectId: string): { secret: string; secretId: string } {
    return this.#model.rotateProjectSecret(projectId);
  }

  /** A workspace management key for the management API (Basic `workspaceKeyId:workspaceKeySecret`); it manages every project. */
  createWorkspaceKey(): WorkspaceKey {
    return this.#model.createWorkspaceKey();
  }

  /** Adds a secret as someone in the dashboard would (bypasses faults; obeys the 50-secret limit). */
  createProjectSecret(projectId: string): { secretId: string; secret: string } {
    const record = this.#model.createProjectSecret(projectId);
    return { secretId: record.secretId, secret: record.secret };
  }

  /** Deletes a secret as someone in the dashboard would; it gets 401 at once. */
  deleteProjectSecret(projectId: string, secretId: string): void {
    this.#model.deleteProjectSecret(projectId, secretId);
  }

  createConnectedApp(
    projectId: string,
    opts?: { clientType?: ConnectedAppClientType; clientName?: string; clientId?: string },
  ): { client_id: string; client_secret: string | null } {
    return this.#model.createConnectedApp(projectId, opts);
  }

  createM2MClient(
    projectId: string,
    opts?: { clientName?: string; scopes?: string[]; clientId?: string },
  ): { client_id: string; client_secret: string } {
    return this.#model.createM2MClient(projectId, opts);
  }

  // ---- inspection -------------------------------------------------------------

  /** True when Stytch would accept `secret` for the client now (its current or next secret). */
  isAccepted(clientId: string, secret: string): boolean {
    return this.#model.isAccepted(clientId, secret);
  }

  /** The project's secrets as the management API would list them, oldest first. */
  projectSecrets(projectId: string): ProjectSecretState[] {
    return this.#model.projectSecrets(projectId).map((record) => ({
      secretId: record.secretId,
      lastFour: record.secret.slice(-4),
      createdAt: record.createdAt,
      usedAt: record.usedAt,
    }));
  }

  /** True when `secret` authenticates for the project now; unlike a request, it does not set used_at. */
  isProjectSecretAccepted(projectId: string, secret: string): boolean {
    return this.#model.isProjectSecretAccepted(projectId, secret);
  }

  /**
   * Every secret value the project holds, by id: for leak scans (invariant V) that
   * must also find a secret nobody stored. Never log what this returns.
   */
  projectSecretValues(projectId: string): Array<{ secretId: string; secret: string }> {
    return this.#model.projectSecrets(projectId).map(({ secretId, secret }) => ({ secretId, secret }));
  }

  clientState(clientId: string): ClientState {
    const client = this.#model.requireClient(clientId);
    return {
      clientSecretLast4: lastFour(client.secret),
      nextClientSecretLast4: lastFour(client.nextSecret),
      kind: client.kind,
      ...(client.clientType === undefined ? {} : { clientType: client.clientType }),
    };
  }

  get requests(): ReadonlyArray<RequestRecord> {
    return this.#requests;
  }

  resetRequests(): void {
    this.#requests = [];
  }

  // ---- outside actions: bypass auth, faults and the rate limit ---------------
  // They throw EmulatedApiError with the API's error type when the API would refuse.

  /** Starts a rotation by hand and returns the next secret (an "orphan" the function never saw). */
  adminRotateStart(clientId: string): string {
    return this.#model.rotateStart(this.#model.requireClient(clientId));
  }

  adminRotate(clientId: string): void {
    this.#model.rotate(this.#model.requireClient(clientId));
  }

  adminRotateCancel(clientId: string): void {
    this.#model.rotateCancel(this.#model.requireClient(clientId));
  }

  // ---- faults and rate limit ------------------------------------------------

  /**
   * Called for every request that passed the rate limit and the queued faults,
   * before its effect and again after it (before the answer): a test may
   * delay either (a slow request, a slow answer) or answer 'drop' (the
   * connection fails; after the effect, the answer is lost). For races made on
   * purpose and for the concurrency fuzzer.
   */
  interceptor: ((call: { operation: string; clientId: string | undefined; phase: 'before' | 'after' }) => Promise<'drop' | void> | 'drop' | void) | undefined;

  addFault(fault: Fault): void {
    if (!FAULT_MODES.includes(fault.mode)) throw new Error(`Unknown fault mode ${String(fault.mode)}`);
    if (fault.operation !== undefined && !OPERATIONS.includes(fault.operation)) {
      throw new Error(`Unknown operation ${String(fault.operation)}`);
    }
    const times = fault.times ?? 1;
    if (!(times > 0)) throw new Error('Fault times must be positive');
    if (fault.status !== undefined && !(Number.isInteger(fault.status) && fault.status >= 400 && fault.status <= 599)) {
      throw new Error('Fault status must be an HTTP error status (400-599)');
    }
    if (fault.delayMs !== undefined && !(fault.delayMs >= 0)) throw new Error('Fault delayMs must be >= 0');
    this.#faults.push({ ...fault, remaining: times });
  }

  clearFaults(): void {
    this.#faults = [];
  }

  /** Token bucket per project: `requestsPerSecond` is both the burst and the refill rate. null disables it. */
  setRateLimit(limit: { requestsPerSecond: number } | null): void {
    if (limit !== null && !(limit.requestsPerSecond > 0)) throw new Error('requestsPerSecond must be positive');
    this.#rateLimit = limit === null ? null : { requestsPerSecond: limit.requestsPerSecond };
    this.#buckets.clear();
  }

  // ---- entry points ---------------------------------------------------------

  /** WHATWG fetch over the same handler as `listen()`; the URL's host is ignored. */
  readonly fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    // Building a Request gives fetch's own validation and header/body/signal rules for free.
    const request = new Request(input, init);
    const signal = request.signal;
    if (signal.aborted) throw signal.reason;
    const body = await request.text();
    const outcome = await this.#handle({ method: request.method, url: request.url, headers: request.headers, body }, signal);
    switch (outcome.kind) {
      case 'drop':
        // What undici's fetch throws when the server closes the socket without answering.
        throw new TypeError('fetch failed', {
          cause: Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }),
        });
      case 'aborted':
        throw signal.reason;
      case 'response': {
        const { status, headers, body: text } = outcome.response;
        const response = new Response(text, { status, headers });
        Object.defineProperty(response, 'url', { value: request.url });
        return response;
      }
    }
  };

  /** Serves the API over real HTTP (default 127.0.0.1, ephemeral port). */
  async listen(options: { port?: number; host?: string } = {}): Promise<ListeningEmulator> {
    const server = createServer((req, res) => {
      this.#serveHttp(req, res).catch((error: unknown) => {
        // Only reachable through a bug in the emulator; do not leave the caller hanging.
        console.error('Stytch emulator: unexpected error', error);
        res.destroy();
      });
    });
    return listen(server, options);
  }

  async #serveHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of req) chunks.push(chunk as Buffer);
    } catch {
      // The caller hung up mid-body: nothing was handled, nothing to answer.
      res.destroy();
      return;
    }
    const headers = new Headers();
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);

    // A caller that hangs up (e.g. its timeout fired during a delay) aborts the request, as in fetch.
    const controller = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) controller.abort();
    });

    const outcome = await this.#handle(
      { method: req.method ?? 'GET', url: req.url ?? '/', headers, body: Buffer.concat(chunks).toString('utf8') },
      controller.signal,
    );
    if (outcome.kind === 'drop') {
      req.socket.destroy();
    } else if (outcome.kind === 'aborted') {
      res.destroy();
    } else {
      const { status, headers: responseHeaders, body } = outcome.response;
      res.writeHead(status, { ...responseHeaders, 'content-length': Buffer.byteLength(body) });
      res.end(body);
    }
  }

  // ---- the handler ------------------------------------------------------------

  async #handle(req: WireRequest, signal: AbortSignal): Promise<Outcome> {
    const path = pathOf(req);
    const route = matchRoute(req.method, path);
    const clientId =
      route.operation === 'm2m.token' ? tokenCredentials(req).clientId : 'clientId' in route ? route.clientId : undefined;
    const record = (status: number, faulted?: Fault['mode']): void => {
      this.#requests.push(
        Object.freeze({
          method: req.method,
          path,
          operation: route.operation,
          status,
          ...(clientId === undefined ? {} : { clientId }),
          ...(faulted === undefined ? {} : { faulted }),
        }),
      );
    };
    const respond = (response: WireResponse, faulted?: Fault['mode']): Outcome => {
      record(response.status, faulted);
      return { kind: 'response', response };
    };

    const projectKey = 'projectId' in route ? route.projectId : (parseBasic(req.headers)?.user ?? '');
    if (!this.#takeRateLimitToken(projectKey)) {
      const message = 'Too many requests. Slow down and retry with exponential backoff.';
      return respond(errorResponse(route, this.#newRequestId(), 429, 'too_many_requests', message));
    }

    const fault = this.#takeFault(route.operation);
    if (fault?.mode === 'drop') {
      record(0, 'drop');
      return { kind: 'drop' };
    }
    if (fault?.mode === 'before') return respond(this.#faultResponse(route, fault), 'before');
    if (fault?.mode === 'delay') {
      try {
        await sleep(fault.delayMs ?? DEFAULT_DELAY_MS, signal);
      } catch {
        record(0, 'delay');
        return { kind: 'aborted' };
      }
    }

    if (this.interceptor && (await this.interceptor({ operation: route.operation, clientId, phase: 'before' })) === 'drop') {
      record(0, 'drop');
      return { kind: 'drop' };
    }
    const response = this.#dispatch(route, req);
    if (this.interceptor && (await this.interceptor({ operation: route.operation, clientId, phase: 'after' })) === 'drop') {
      // The effect happened; the answer is lost.
      record(0, 'drop');
      return { kind: 'drop' };
    }
    // 'after': the effect above happened; only the answer is lost.
    if (fault?.mode === 'after') return respond(this.#faultResponse(route, fault), 'after');
    return respond(response, fault?.mode);
  }

  #dispatch(route: Route, req: WireRequest): WireResponse {
    const requestId = this.#newRequestId();
    try {
      switch (route.operation) {
        case 'unknown':
          return errorResponse(route, requestId, 404, 'route_not_found', `No route for ${req.method} ${pathOf(req)}.`);
        case 'm2m.token':
          return this.#token(route.projectId, req, requestId);
        case 'sessions.jwks':
          return jsonResponse(200, { keys: [this.#signingKey(route.projectId).jwk], request_id: requestId, status_code: 200 });
        case 'secrets.create':
        case 'secrets.list':
        case 'secrets.get':
        case 'secrets.delete':
          return this.#manageSecrets(route, req, requestId);
        default:
          return this.#manageClient(route, req, requestId);
      }
    } catch (error) {
      if (error instanceof EmulatedApiError) return errorResponse(route, requestId, error.status, error.errorType, error.message);
      throw error;
    }
  }

  /** The GET and rotate endpoints: project Basic auth, then the state machine. */
  #manageClient(route: Extract<Route, { kind: ClientKind }>, req: WireRequest, requestId: string): WireResponse {
    const credentials = parseBasic(req.headers);
    if (!credentials || !this.#model.authenticateProject(credentials.user, credentials.password)) {
      throw new EmulatedApiError(401, 'unauthorized_credentials', 'Unauthorized credentials: check the project ID and secret.');
    }
    if (req.method === 'POST') requireJsonObjectOrEmpty(req.body);

    const client = this.#model.lookup(route.kind, credentials.user, route.clientId);
    let nextSecret: string | undefined;
    switch (route.action) {
      case 'get':
        break;
      case 'rotate_start':
        nextSecret = this.#model.rotateStart(client);
        break;
      case 'rotate':
        this.#model.rotate(client);
        break;
      case 'rotate_cancel':
        this.#model.rotateCancel(client);
        break;
    }
    const body =
      route.kind === 'connected_app'
        ? { connected_app: connectedAppJson(client, nextSecret) }
        : { m2m_client: m2mClientJson(client, nextSecret) };
    return jsonResponse(200, { request_id: requestId, status_code: 200, ...body });
  }

  /**
   * The management API's project secrets (stytch-management-node `lib/secrets.ts`):
   * workspace-key Basic auth, then the environment by slugs, then the secret.
   */
  #manageSecrets(route: Extract<Route, { operation: SecretsOperation }>, req: WireRequest, requestId: string): WireResponse {
    const credentials = parseBasic(req.headers);
    if (!credentials || !this.#model.authenticateWorkspaceKey(credentials.user, credentials.password)) {
      const message = 'Unauthorized credentials: the management API takes a workspace key ID and secret, not a project secret.';
      throw new EmulatedApiError(401, 'unauthorized_credentials', message);
    }
    if (route.operation === 'secrets.create' || route.operation === 'secrets.delete') requireJsonObjectOrEmpty(req.body);
    const { projectId } = this.#model.environmentBySlugs(route.projectSlug, route.environmentSlug);
    const ok = (body: Record<string, unknown>): WireResponse => jsonResponse(200, { request_id: requestId, status_code: 200, ...body });
    switch (route.operation) {
      case 'secrets.create':
        return ok({ secret: createdSecretJson(this.#model.createProjectSecret(projectId)) });
      case 'secrets.list':
        return ok({ secrets: this.#model.projectSecrets(projectId).map(maskedSecretJson) });
      case 'secrets.get':
        return ok({ secret: maskedSecretJson(this.#model.requireProjectSecret(projectId, route.secretId!)) });
      case 'secrets.delete':
        this.#model.deleteProjectSecret(projectId, route.secretId!);
        return ok({});
    }
  }

  /** POST /v1/public/{project_id}/oauth2/token: client_credentials for M2M clients only. */
  #token(projectId: string, req: WireRequest, requestId: string): WireResponse {
    const { params, clientId, clientSecret } = tokenCredentials(req);
    if (params === undefined) throw new EmulatedApiError(400, 'invalid_request', 'The request body could not be parsed.');
    const grantType = params.get('grant_type');
    if (!grantType) throw new EmulatedApiError(400, 'invalid_request', 'grant_type is required.');
    if (grantType !== 'client_credentials') {
      const message = `grant_type ${grantType} is not supported; use client_credentials.`;
      throw new EmulatedApiError(400, 'unsupported_grant_type', message);
    }
    if (!clientId || !clientSecret) {
      throw new EmulatedApiError(400, 'invalid_request', 'client_id and client_secret are required.');
    }

    // Connected Apps are not documented as client_credentials clients, so the emulator refuses them outright.
    const client = this.#model.findClient(clientId);
    const authenticated =
      client !== undefined &&
      client.kind === 'm2m' &&
      client.projectId === projectId &&
      [client.secret, client.nextSecret].some((held) => held !== null && secretEquals(held, clientSecret));
    if (!authenticated) {
      const message = 'Client authentication failed: unknown client or wrong client secret.';
      throw new EmulatedApiError(401, 'invalid_client', message);
    }

    const scope = params.get('scope');
    if (scope) {
      const missing = scope.split(' ').filter((s) => s !== '' && !client.scopes.includes(s));
      if (missing.length > 0) {
        throw new EmulatedApiError(400, 'invalid_scope', `The client is not granted the scopes: ${missing.join(' ')}.`);
      }
    }
    // A JWT signed with the project's key, as Stytch issues it: an app can check it
    // locally against the project's JWKS (the official SDK's m2m.authenticateToken).
    const issuedAt = Math.floor(this.#now() / 1000);
    const granted = scope ? scope.split(' ').filter((s) => s !== '') : client.scopes;
    const accessToken = this.#signJwt(projectId, {
      aud: [projectId],
      exp: issuedAt + TOKEN_LIFETIME_SECONDS,
      iat: issuedAt,
      iss: `stytch.com/${projectId}`,
      nbf: issuedAt,
      scope: granted.join(' '),
      sub: client.clientId,
    });
    return jsonResponse(200, {
      access_token: accessToken,
      token_type: 'bearer',
      expires_in: TOKEN_LIFETIME_SECONDS,
      request_id: requestId,
      status_code: 200,
    });
  }

  /**
   * The project's RS256 signing key. One key pair serves every project of the process
   * (made once: RSA key generation costs ~100 ms, and tests create many projects);
   * a token still names its project in iss and aud, which the SDK checks.
   */
  #signingKey(_projectId: string): SigningKey {
    sharedSigningKey ??= (() => {
      const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const kid = `jwk-test-${randomUUID()}`;
      return { kid, privateKey, jwk: { ...(publicKey.export({ format: 'jwk' }) as Record<string, string>), kid, alg: 'RS256', use: 'sig' } };
    })();
    return sharedSigningKey;
  }

  #signJwt(projectId: string, claims: Record<string, unknown>): string {
    const key = this.#signingKey(projectId);
    const encode = (part: unknown) => Buffer.from(JSON.stringify(part)).toString('base64url');
    const signingInput = `${encode({ alg: 'RS256', kid: key.kid, typ: 'JWT' })}.${encode(claims)}`;
    return `${signingInput}.${cryptoSign('sha256', Buffer.from(signingInput), key.privateKey).toString('base64url')}`;
  }

  #faultResponse(route: Route, fault: Fault): WireResponse {
    const status = fault.status ?? 503;
    const errorType = fault.errorType ?? (status === 429 ? 'too_many_requests' : 'internal_server_error');
    const message = 'Injected fault: the emulator was told to fail this request.';
    return errorResponse(route, this.#newRequestId(), status, errorType, message);
  }

  #takeFault(operation: Operation): Fault | undefined {
    const index = this.#faults.findIndex((f) => f.operation === undefined || f.operation === operation);
    if (index < 0) return undefined;
    const fault = this.#faults[index]!;
    fault.remaining -= 1;
    if (fault.remaining <= 0) this.#faults.splice(index, 1);
    return fault;
  }

  #takeRateLimitToken(projectKey: string): boolean {
    if (!this.#rateLimit) return true;
    const { requestsPerSecond } = this.#rateLimit;
    const now = this.#now();
    const bucket = this.#buckets.get(projectKey) ?? { tokens: requestsPerSecond, updatedAt: now };
    bucket.tokens = Math.min(requestsPerSecond, bucket.tokens + ((now - bucket.updatedAt) / 1000) * requestsPerSecond);
    bucket.updatedAt = now;
    this.#buckets.set(projectKey, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  #newRequestId(): string {
    return `request-id-test-${this.#model.uuid()}`;
  }
}

// ---- wire helpers -----------------------------------------------------------------

const CLIENT_ROUTE = /^\/v1\/(connected_apps|m2m)\/clients\/([^/]+)(\/secrets\/rotate(?:\/(start|cancel))?)?$/;
const TOKEN_ROUTE = /^\/v1\/public\/([^/]+)\/oauth2\/token$/;
const JWKS_ROUTE = /^\/v1\/sessions\/jwks\/([^/]+)$/;
const SECRETS_ROUTE = /^\/pwa\/v3\/projects\/([^/]+)\/environments\/([^/]+)\/secrets(?:\/([^/]+))?$/;

/** Exact paths only: a trailing slash or doubled slash is a 404, as a strict server would answer. */
function matchRoute(method: string, pathname: string): Route {
  const client = CLIENT_ROUTE.exec(pathname);
  if (client) {
    const kind: ClientKind = client[1] === 'm2m' ? 'm2m' : 'connected_app';
    const clientId = safeDecode(client[2]!);
    const isRotate = client[3] !== undefined;
    const action: ClientAction = !isRotate
      ? 'get'
      : client[4] === 'start'
        ? 'rotate_start'
        : client[4] === 'cancel'
          ? 'rotate_cancel'
          : 'rotate';
    if (clientId === undefined || method !== (isRotate ? 'POST' : 'GET')) return { operation: 'unknown' };
    return { operation: `${kind}.${action}`, kind, action, clientId };
  }
  const token = TOKEN_ROUTE.exec(pathname);
  if (token && method === 'POST') {
    const projectId = safeDecode(token[1]!);
    if (projectId !== undefined) return { operation: 'm2m.token', projectId };
  }
  // Public, like the token endpoint: what apps fetch to check tokens locally.
  const jwks = JWKS_ROUTE.exec(pathname);
  if (jwks && method === 'GET') {
    const projectId = safeDecode(jwks[1]!);
    if (projectId !== undefined) return { operation: 'sessions.jwks', projectId };
  }
  const secrets = SECRETS_ROUTE.exec(pathname);
  if (secrets) {
    const [projectSlug, environmentSlug] = [safeDecode(secrets[1]!), safeDecode(secrets[2]!)];
    const secretId = secrets[3] === undefined ? undefined : safeDecode(secrets[3]);
    if (projectSlug === undefined || environmentSlug === undefined || secretId === '') return { operation: 'unknown' };
    const where = { projectSlug, environmentSlug };
    if (secrets[3] === undefined) {
      if (method === 'POST') return { operation: 'secrets.create', ...where };
      if (method === 'GET') return { operation: 'secrets.list', ...where };
    } else if (secretId !== undefined) {
      if (method === 'GET') return { operation: 'secrets.get', ...where, secretId };
      if (method === 'DELETE') return { operation: 'secrets.delete', ...where, secretId };
    }
  }
  return { operation: 'unknown' };
}

function pathOf(req: WireRequest): string {
  return new URL(req.url, 'http://stytch.local').pathname;
}

function safeDecode(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

function parseBasic(headers: Headers): { user: string; password: string } | undefined {
  const match = /^Basic\s+(\S+)\s*$/i.exec(headers.get('authorization') ?? '');
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * The token endpoint's parameters: form-encoded or JSON body (both documented),
 * client credentials from the body or, as RFC 6749 allows, a Basic header.
 * `params` is undefined when the body cannot be parsed.
 */
function tokenCredentials(req: WireRequest): { params?: URLSearchParams; clientId?: string; clientSecret?: string } {
  const params = parseTokenBody(req);
  const basic = parseBasic(req.headers);
  // RFC 6749 §2.3.1: Basic client credentials are form-encoded before base64.
  const fromBasic = (value: string | undefined): string | undefined =>
    value === undefined ? undefined : safeDecode(value.replace(/\+/g, ' '));
  const clientId = params?.get('client_id') ?? fromBasic(basic?.user);
  const clientSecret = params?.get('client_secret') ?? fromBasic(basic?.password);
  return {
    ...(params === undefined ? {} : { params }),
    ...(clientId ? { clientId } : {}),
    ...(clientSecret ? { clientSecret } : {}),
  };
}

function parseTokenBody(req: WireRequest): URLSearchParams | undefined {
  const contentType = req.headers.get('content-type') ?? '';
  if (!/application\/json/i.test(contentType)) return new URLSearchParams(req.body);
  try {
    const parsed: unknown = JSON.parse(req.body || '{}');
    if (!isPlainObject(parsed)) return undefined;
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(parsed)) {
      if (typeof value !== 'string') return undefined;
      params.set(key, value);
    }
    return params;
  } catch {
    return undefined;
  }
}

/** The rotate endpoints take `{}` (the SDKs send exactly that); an empty body is accepted too. */
function requireJsonObjectOrEmpty(body: string): void {
  if (body.trim() === '') return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new EmulatedApiError(400, 'invalid_request_body', 'The request body is not valid JSON.');
  }
  if (!isPlainObject(parsed)) throw new EmulatedApiError(400, 'invalid_request_body', 'The request body must be a JSON object.');
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function jsonResponse(status: number, body: unknown): WireResponse {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  // Stytch documents no Retry-After; sending one lets clients prove they honour it when present.
  if (status === 429) headers['retry-after'] = '1';
  return { status, headers, body: JSON.stringify(body) };
}

/** Stytch's error JSON; the OAuth token endpoint uses the RFC 6749 field names instead. */
function errorResponse(route: Route, requestId: string, status: number, errorType: string, message: string): WireResponse {
  const errorUrl = `https://stytch.com/docs/api/errors/${status}#${errorType}`;
  if (route.operation === 'm2m.token') {
    return jsonResponse(status, {
      status_code: status,
      request_id: requestId,
      error: errorType,
      error_description: message,
      error_uri: errorUrl,
    });
  }
  return jsonResponse(status, {
    status_code: status,
    request_id: requestId,
    error_type: errorType,
    error_message: message,
    error_url: errorUrl,
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export { EmulatedApiError };
