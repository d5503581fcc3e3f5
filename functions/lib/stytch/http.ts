import { StytchApiError } from '../errors.js';

/**
 * The one way to Stytch: Basic auth, a timeout on every request bounded by the
 * Lambda's remaining time, retries with exponential backoff and full jitter for
 * network errors, 429 and 5xx, typed errors (DESIGN.md §5). Bodies are never
 * logged: a successful rotate/start carries the new secret.
 */

export type FetchFn = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

export interface StytchCredentials {
  projectId: string;
  secret: string;
  baseUrl: string;
}

/** Where credentials come from; `refresh` re-reads them once after a 401 (the project secret may have been replaced). */
export interface CredentialsSource {
  get(): Promise<StytchCredentials>;
  refresh(): Promise<StytchCredentials>;
}

export type DebugLogger = {
  debug: (message: string, extra?: Record<string, unknown>) => void;
  warn: (message: string, extra?: Record<string, unknown>) => void;
};

export interface HttpOptions {
  fetch: FetchFn;
  /** Epoch ms by which every call must have ended (the Lambda's deadline less a reserve). */
  deadline: number;
  requestTimeoutMs: number;
  maxAttempts: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  now?: () => number;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
  logger?: DebugLogger;
  /** Called once per retry, for metrics and benchmarks. */
  onRetry?: (operation: string) => void;
}

export interface StytchRequest {
  /** A stable name for logs, errors and metrics, e.g. `connected_app.rotate_start`. */
  operation: string;
  method: 'GET' | 'POST' | 'DELETE';
  path: (credentials: StytchCredentials) => string;
  /**
   * false for a call that must not run twice (creating a project secret): only a 429, which Stytch refused
   * before acting, is retried; any other failure is the caller's to resolve (IV).
   */
  idempotent?: boolean;
  /** false: a 401 is the answer (a probe of given credentials), not a reason to re-read them. */
  refreshOn401?: boolean;
  /** `basic`: project Basic auth and a JSON body; `form`: the OAuth token endpoint (no project auth). */
  auth: 'basic' | 'none';
  json?: unknown;
  form?: Record<string, string>;
}

export interface StytchResponse {
  body: Record<string, unknown>;
  requestId: string | undefined;
  /**
   * Requests sent for this call, retries included. More than one means an earlier request's failure
   * was taken for a refusal: if it was in fact an answer lost after the effect, the call acted twice.
   */
  attempts?: number;
}

const USER_AGENT = 'stytch-secret-rotation/0.1';
/** First backoff after a 429 without Retry-After (doubles on each further 429). */
const RATE_LIMIT_FLOOR_MS = 1_000;
/** Don't start an attempt that could not get at least this long to answer. */
const MIN_ATTEMPT_MS = 250;

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class StytchHttp {
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    private readonly credentials: CredentialsSource,
    private readonly options: HttpOptions,
  ) {
    this.baseDelayMs = options.baseDelayMs ?? 200;
    this.maxDelayMs = options.maxDelayMs ?? 5_000;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.sleep = options.sleep ?? defaultSleep;
  }

  async call(request: StytchRequest): Promise<StytchResponse> {
    const credentials = await this.credentials.get();
    const sent = { count: 0 };
    try {
      return { ...(await this.callWithRetries(request, credentials, sent)), attempts: sent.count };
    } catch (error) {
      // The project secret may have been replaced since it was cached: read it once more.
      if (request.auth === 'basic' && request.refreshOn401 !== false && error instanceof StytchApiError && error.statusCode === 401) {
        const fresh = await this.credentials.refresh();
        this.options.logger?.warn('Stytch rejected the project credentials; re-read them and retrying once', {
          operation: request.operation,
          requestId: error.requestId,
        });
        return { ...(await this.callWithRetries(request, fresh, sent)), attempts: sent.count };
      }
      throw error;
    }
  }

  private async callWithRetries(request: StytchRequest, credentials: StytchCredentials, sent: { count: number }): Promise<StytchResponse> {
    for (let attempt = 1; ; attempt++) {
      const remaining = this.options.deadline - this.now();
      if (remaining < MIN_ATTEMPT_MS) {
        throw new StytchApiError({
          statusCode: 0,
          errorType: 'deadline_exceeded',
          errorMessage: 'no time left in this invocation for another request; Secrets Manager will reattempt',
          operation: request.operation,
        });
      }
      let error: StytchApiError;
      let retryAfterMs = 0;
      try {
        // AbortSignal.timeout takes whole milliseconds only (a fraction throws a RangeError).
        sent.count++;
        return await this.once(request, credentials, Math.floor(Math.min(this.options.requestTimeoutMs, remaining)));
      } catch (caught) {
        // Stryker disable next-line ConditionalExpression: equivalent; anything else has no `transient`, so the check below rethrows it unchanged.
        if (!(caught instanceof StytchApiError)) throw caught;
        error = caught;
        retryAfterMs = caught.retryAfterMs ?? 0;
      }
      if (!error.transient || attempt >= this.options.maxAttempts) throw error;
      if (request.idempotent === false && error.statusCode !== 429) throw error;
      let delay = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1)) * this.random();
      if (error.statusCode === 429) {
        // Rate limited: back off from a higher floor (Stytch: "implement an exponential
        // backoff"), with equal jitter so concurrent rotations spread out but never retry at once.
        const floor = Math.min(this.maxDelayMs, RATE_LIMIT_FLOOR_MS * 2 ** (attempt - 1));
        delay = Math.max(delay, floor / 2 + (floor / 2) * this.random());
      }
      delay = Math.max(delay, Math.min(retryAfterMs, this.maxDelayMs));
      // Out of time: fail as transient now rather than be killed mid-request.
      if (this.now() + delay + MIN_ATTEMPT_MS > this.options.deadline) throw error;
      this.options.logger?.warn('Stytch request failed; retrying', {
        operation: request.operation,
        attempt,
        statusCode: error.statusCode,
        errorType: error.errorType,
        requestId: error.requestId,
        delayMs: Math.round(delay),
      });
      this.options.onRetry?.(request.operation);
      await this.sleep(delay);
    }
  }

  private async once(request: StytchRequest, credentials: StytchCredentials, timeoutMs: number): Promise<StytchResponse> {
    const headers: Record<string, string> = { 'User-Agent': USER_AGENT, Accept: 'application/json' };
    let body: string | undefined;
    if (request.auth === 'basic') {
      headers.Authorization = `Basic ${Buffer.from(`${credentials.projectId}:${credentials.secret}`).toString('base64')}`;
    }
    if (request.form) {
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(request.form).toString();
    } else if (request.method === 'POST') {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(request.json ?? {});
    }
    const url = credentials.baseUrl + request.path(credentials);
    let response: Response;
    let text: string;
    try {
      // V: never follow a redirect. A request carries the project secret (Basic auth) or a client secret
      // (the token form): it goes to the configured base URL and nowhere else.
      response = await this.options.fetch(url, { method: request.method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
      text = await response.text();
    } catch (cause) {
      const timedOut = cause instanceof Error && (cause.name === 'TimeoutError' || cause.name === 'AbortError');
      throw new StytchApiError(
        {
          statusCode: 0,
          errorType: timedOut ? 'timeout' : 'network_error',
          errorMessage: timedOut ? `no answer within ${timeoutMs} ms` : 'the connection failed',
          operation: request.operation,
        },
        { cause },
      );
    }
    if (response.status >= 300 && response.status < 400) throw redirectError(request.operation, response, url);
    let parsed: Record<string, unknown> = {};
    try {
      const value: unknown = text === '' ? {} : JSON.parse(text);
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) parsed = value as Record<string, unknown>;
    } catch {
      // Not JSON (a proxy's HTML error page, say): handled below by status.
      if (response.ok) {
        throw new StytchApiError({ statusCode: response.status, errorType: 'invalid_response', errorMessage: 'the answer is not JSON', operation: request.operation });
      }
    }
    const requestId = typeof parsed.request_id === 'string' ? parsed.request_id : undefined;
    this.options.logger?.debug('Stytch answered', { operation: request.operation, statusCode: response.status, requestId });
    if (response.ok) return { body: parsed, requestId };

    const errorType =
      typeof parsed.error_type === 'string' ? parsed.error_type : typeof parsed.error === 'string' ? parsed.error : `http_${response.status}`;
    const rawMessage =
      typeof parsed.error_message === 'string' ? parsed.error_message : typeof parsed.error_description === 'string' ? parsed.error_description : undefined;
    const retryAfter = Number(response.headers.get('retry-after'));
    throw new StytchApiError({
      statusCode: response.status,
      errorType,
      requestId,
      errorMessage: rawMessage?.slice(0, 300),
      operation: request.operation,
      retryAfterMs: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined,
    });
  }
}

/** A 3xx: definitive, naming the status and where it pointed (the host only: a URL's query could carry anything). */
function redirectError(operation: string, response: Response, url: string): StytchApiError {
  let where = 'no Location';
  const location = response.headers.get('location');
  if (location) {
    try {
      where = `a redirect to ${new URL(location, url).host}`;
    } catch {
      where = 'a malformed Location';
    }
  }
  return new StytchApiError({
    statusCode: response.status,
    errorType: 'redirect_refused',
    errorMessage: `answered ${response.status} with ${where}; redirects are never followed, so nothing was sent there. Check base_url in the Stytch credentials secret (or STYTCH_API_BASE_URL): it must be Stytch's API itself`,
    operation,
  });
}
