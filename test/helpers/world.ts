/**
 * A whole world for tests of the rotation logic, in-process and fast: the
 * Stytch emulator answering through its `fetch`, the Secrets Manager emulator
 * behind a real SecretsManagerClient, and a handler built from source with
 * those collaborators. Everything the handler logs or emits (Powertools writes
 * to stdout) is captured so tests can assert on it and scan it for secrets.
 *
 * Two ways to reach Secrets Manager (`smTransport`):
 * - 'mock' (default): aws-sdk-client-mock stubs `client.send`, so the SDK's
 *   middleware stack, retries included, is bypassed: an error reaches the
 *   function at once, as it would after the SDK's own retries ran out.
 * - 'direct': the same without aws-sdk-client-mock (a bare `send` that
 *   dispatches on the command), for suites that run thousands of invocations.
 * - 'sdk': the real SDK pipeline (serialization, the standard retry strategy
 *   with the handler's maxAttempts: 3, error parsing) over an in-process
 *   request handler that speaks awsJson1_1 to the emulator; only the backoff
 *   delay is zero. A lost response is then retried by the SDK, as in Lambda.
 *
 * Every call the handler makes to either service is recorded in order in
 * `externalCalls`, tagged with the invocation that made it, and can be failed
 * or slowed by `interceptor` (the reliability suites' fault injection).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  InternalServiceError,
  PutSecretValueCommand,
  SecretsManagerClient,
  SecretsManagerServiceException,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { DeleteItemCommand, DynamoDBClient, GetItemCommand, PutItemCommand, ScanCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { ConfiguredRetryStrategy } from '@smithy/core/retry';
import { mockClient, type AwsStub } from 'aws-sdk-client-mock';
import type { MetadataBearer } from '@smithy/types';
import type { Context } from 'aws-lambda';
import { vi } from 'vitest';
import { createHandler } from '../../functions/rotate-stytch-secret/handler.js';
import { DynamoDBServiceError, LocalDynamoDB } from '../../infra/local/dynamodb.js';
import { scheduledEvent } from '../../infra/local/stack.js';
import { StytchEmulator } from '../../infra/local/stytch/emulator.js';
import { SecretsManagerEmulator, SecretsManagerServiceError, type SecretSnapshot } from '../../infra/local/secrets-manager/index.js';

export const LAMBDA_ARN = 'arn:aws:lambda:us-east-1:123456789012:function:rotate-stytch-secret';
export const CREDENTIALS_SECRET = 'stytch/project-credentials';
export const MANAGEMENT_SECRET = 'stytch/management-credentials';
export const STATE_TABLE = 'rotation-state';
export { scheduledEvent };
/** How far the World's clock moves on when a lease may have been left behind: past any lease's end. */
export const LEASE_SPAN_MS = 3 * 60_000;

export type Step = 'createSecret' | 'setSecret' | 'testSecret' | 'finishSecret';
export const STEPS: Step[] = ['createSecret', 'setSecret', 'testSecret', 'finishSecret'];

export interface WorldOptions {
  /** project_secret: the rotated secret is one of the project's API secrets, rotated through the management API. */
  kind?: 'connected_app' | 'm2m' | 'project_secret';
  clientType?: 'first_party' | 'third_party' | 'first_party_public' | 'third_party_public';
  extraFields?: Record<string, unknown>;
  rotationEnabled?: boolean;
  /** Attempts of a failing rotation within one RotateSecret (the emulator's driver); default 1. */
  maxAttempts?: number;
  env?: Record<string, string>;
  /** How the handler reaches Secrets Manager (see the file comment); default 'mock'. */
  smTransport?: 'mock' | 'direct' | 'sdk';
  /** The Secrets Manager emulator sends a RotationToken in every step event and requires it on the put. */
  rotationTokens?: boolean;
  /** The handler's backoff sleep; default: returns at once. */
  sleep?: (ms: number) => Promise<void>;
  /** The Stytch emulator's source for ids and secrets, like Math.random (default node:crypto): a test that needs two secrets ending alike. */
  stytchRandom?: () => number;
  /** Builds the handler under test; default: createHandler from source (a test may pass a built bundle's, or a mutant's). */
  createHandler?: typeof createHandler;
}

export type Service = 'secretsmanager' | 'stytch' | 'dynamodb';

/** What a real SDK surfaces for Secrets Manager after its retries, or what fetch sees from Stytch. */
export type SecretsManagerFailure = 'InternalServiceError' | 'ThrottlingException' | 'NetworkError';
/** Transient: a dropped connection, 429 and any 5xx (a plain 500 included). */
export type StytchTransientFailure = 500 | 502 | 503 | 504 | 429 | 'drop';
/** Definitive: Stytch refuses the request (the failure policy cancels the rotation). */
export type StytchDefinitiveFailure = 400 | 403 | 404;
export type StytchFailure = StytchTransientFailure | StytchDefinitiveFailure;
export const STYTCH_TRANSIENT_FAILURES: readonly StytchTransientFailure[] = [500, 502, 503, 504, 429, 'drop'];
export const STYTCH_DEFINITIVE_FAILURES: readonly StytchDefinitiveFailure[] = [400, 403, 404];

/**
 * What an interceptor does to one call. `before`: the call never reaches the
 * service; `after`: the service applies it, then the answer is lost (replaced
 * by the failure) or slowed. `delayMs` holds the answer back (a Stytch caller
 * that gives up first sees its own timeout); with `error`, the failure follows
 * the delay.
 */
export interface CallFault {
  when: 'before' | 'after';
  error?: SecretsManagerFailure | StytchFailure;
  delayMs?: number;
}

export interface ExternalCall {
  /** Position in World.externalCalls. */
  readonly index: number;
  readonly service: Service;
  /** Secrets Manager operation (`PutSecretValue`) or Stytch operation (`connected_app.rotate_start`). */
  readonly operation: string;
  /** The World.invocations id of the invocation that made the call. */
  readonly invocation: number | undefined;
  /** That invocation's ClientRequestToken. */
  readonly token: string | undefined;
  readonly step: string | undefined;
  /** The fault the interceptor applied, if any. */
  fault?: CallFault;
  /** A state-table write that gives a lease back. */
  readonly leaseRelease?: boolean;
  /** What the caller received: for Stytch the HTTP status (0: no answer), else the error name. */
  result?: { ok: boolean; status?: number; error?: string };
}

export interface InvocationRecord {
  readonly id: number;
  readonly step: string | undefined;
  readonly token: string | undefined;
  readonly container: number;
  done: boolean;
  error?: Error;
}

/** A call held on purpose (World.pause). */
export interface Gate {
  readonly when: 'before' | 'after';
  /** Resolves with the call once it is held. */
  readonly reached: Promise<ExternalCall>;
  release(): void;
}

export type CallInterceptor = (call: ExternalCall) => CallFault | undefined;

type Handler = ReturnType<typeof createHandler>;

/** A Lambda container: one handler instance with its own caches. */
export interface Container {
  id: number;
  handler: Handler;
}

export function fakeContext(remainingMs = 60_000): Context {
  const started = Date.now();
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'rotate-stytch-secret',
    functionVersion: '$LATEST',
    invokedFunctionArn: LAMBDA_ARN,
    memoryLimitInMB: '256',
    awsRequestId: randomUUID(),
    logGroupName: '/aws/lambda/rotate-stytch-secret',
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, remainingMs - (Date.now() - started)),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

const SM_COMMANDS = [
  [DescribeSecretCommand, 'DescribeSecret'],
  [GetSecretValueCommand, 'GetSecretValue'],
  [PutSecretValueCommand, 'PutSecretValue'],
  [UpdateSecretVersionStageCommand, 'UpdateSecretVersionStage'],
] as const;

const DYNAMODB_COMMANDS = [
  [GetItemCommand, 'GetItem'],
  [PutItemCommand, 'PutItem'],
  [UpdateItemCommand, 'UpdateItem'],
  [DeleteItemCommand, 'DeleteItem'],
  [ScanCommand, 'Scan'],
] as const;

/** A write that gives a lease back (the state table's release): if it fails, the lease may stay held until it expires. */
const isLeaseRelease = (operation: string, input: unknown) =>
  (operation === 'UpdateItem' || operation === 'DeleteItem') &&
  String((input as { ConditionExpression?: unknown } | undefined)?.ConditionExpression ?? '').startsWith('lease_holder = :holder');

const STYTCH_ROUTE = /^\/v1\/(connected_apps|m2m)\/clients\/[^/]+(\/secrets\/rotate(?:\/(start|cancel))?)?$/;
const MANAGEMENT_ROUTE = /^\/pwa\/v3\/projects\/[^/]+\/environments\/[^/]+\/secrets(\/[^/]+)?$/;

/** The emulator's operation name for a Stytch URL (the same names as its `requests` log). */
export function stytchOperation(url: string, method = 'GET'): string {
  const path = new URL(url, 'http://stytch.local').pathname;
  const managed = MANAGEMENT_ROUTE.exec(path);
  if (managed) {
    if (managed[1] === undefined) return method === 'POST' ? 'secrets.create' : 'secrets.list';
    return method === 'DELETE' ? 'secrets.delete' : 'secrets.get';
  }
  if (/^\/v1\/public\/[^/]+\/oauth2\/token$/.test(path)) return 'm2m.token';
  const m = STYTCH_ROUTE.exec(path);
  if (!m) return 'unknown';
  const kind = m[1] === 'm2m' ? 'm2m' : 'connected_app';
  const action = m[2] === undefined ? 'get' : m[3] === 'start' ? 'rotate_start' : m[3] === 'cancel' ? 'rotate_cancel' : 'rotate';
  return `${kind}.${action}`;
}

/** The error a real SDK client throws once its retries are spent. */
function sdkError(failure: SecretsManagerFailure): Error {
  const $metadata = { httpStatusCode: failure === 'InternalServiceError' ? 500 : failure === 'ThrottlingException' ? 400 : undefined, attempts: 3 };
  switch (failure) {
    case 'InternalServiceError':
      return new InternalServiceError({ message: 'An error occurred on the server side.', $metadata });
    case 'ThrottlingException':
      return new SecretsManagerServiceException({ name: 'ThrottlingException', $fault: 'client', message: 'Rate exceeded', $metadata });
    case 'NetworkError':
      return Object.assign(new Error('socket hang up'), { code: 'ECONNRESET', $metadata });
  }
}

/** The DynamoDB error a real SDK client throws once its retries are spent. */
function dynamoError(failure: SecretsManagerFailure): Error {
  const $metadata = { httpStatusCode: failure === 'InternalServiceError' ? 500 : failure === 'ThrottlingException' ? 400 : undefined, attempts: 3 };
  switch (failure) {
    case 'InternalServiceError':
      return Object.assign(new DynamoDBServiceError('InternalServerError', 'Internal server error', 500), { $fault: 'server', $metadata });
    case 'ThrottlingException':
      return Object.assign(new DynamoDBServiceError('ThrottlingException', 'Rate of requests exceeds the allowed throughput.', 400), { $fault: 'client', $metadata });
    case 'NetworkError':
      return Object.assign(new Error('socket hang up'), { code: 'ECONNRESET', $metadata });
  }
}

function dynamoWireFailure(failure: SecretsManagerFailure) {
  if (failure === 'NetworkError') throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
  const [status, type, message] =
    failure === 'InternalServiceError' ? [500, 'InternalServerError', 'Internal server error'] : [400, 'ThrottlingException', 'Rate of requests exceeds the allowed throughput.'];
  const body = JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${type}`, message });
  return { response: { statusCode: status, headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': randomUUID() }, body: Readable.from([Buffer.from(body)]) } };
}

function jsonBody(value: unknown): Readable {
  return Readable.from([Buffer.from(JSON.stringify(value))]);
}

/** An awsJson1_1 answer, as the SDK's in-process request handler returns it. */
function wireResponse(statusCode: number, payload: unknown, errorType?: string) {
  const headers: Record<string, string> = { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID() };
  if (errorType) headers['x-amzn-errortype'] = errorType;
  return { response: { statusCode, headers, body: jsonBody(payload) } };
}

function wireFailure(failure: SecretsManagerFailure) {
  if (failure === 'NetworkError') throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
  return failure === 'InternalServiceError'
    ? wireResponse(500, { __type: 'InternalServiceError', Message: 'An error occurred on the server side.' }, 'InternalServiceError')
    : wireResponse(400, { __type: 'ThrottlingException', Message: 'Rate exceeded' }, 'ThrottlingException');
}

/** Stytch's error_type for each injected status, as its API documents them. */
const STYTCH_ERROR_TYPES: Record<Exclude<StytchFailure, 'drop'>, string> = {
  400: 'bad_request',
  403: 'unauthorized_action',
  404: 'client_not_found',
  429: 'too_many_requests',
  500: 'internal_server_error',
  502: 'bad_gateway',
  503: 'service_unavailable',
  504: 'gateway_timeout',
};

function stytchFailure(failure: StytchFailure): Response {
  if (failure === 'drop') {
    // What undici's fetch throws when the server closes the socket without answering.
    throw new TypeError('fetch failed', { cause: Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }) });
  }
  const errorType = STYTCH_ERROR_TYPES[failure];
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (failure === 429) headers['retry-after'] = '1';
  return new Response(
    JSON.stringify({ status_code: failure, request_id: `request-id-test-${randomUUID()}`, error_type: errorType, error_message: 'Injected fault.' }),
    { status: failure, headers },
  );
}

function abortableSleep(ms: number, signal: AbortSignal | null | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

const isStytchFailure = (e: unknown): e is StytchFailure => (STYTCH_TRANSIENT_FAILURES as readonly unknown[]).includes(e) || (STYTCH_DEFINITIVE_FAILURES as readonly unknown[]).includes(e);
const isSmFailure = (e: unknown): e is SecretsManagerFailure => e === 'InternalServiceError' || e === 'ThrottlingException' || e === 'NetworkError';

export class World {
  /** On the World's clock, so used_at moves with it. */
  readonly stytch: StytchEmulator;
  readonly sm: SecretsManagerEmulator;
  /** The state table's DynamoDB (dynalite, in process). */
  readonly dynamo = new LocalDynamoDB();
  /** The client the handler uses for the state table: the real SDK pipeline ('sdk' transport) or a bare `send`. */
  readonly dynamoClient: DynamoDBClient;
  /** Milliseconds the handler's clock is ahead of the real one: waiting for a lease and a Lambda's death move it on. */
  clockOffset = 0;
  /** The handler's clock for leases and overlap windows (real time plus clockOffset; a wait moves it on without waiting). */
  readonly clock = {
    now: () => Date.now() + this.clockOffset,
    sleep: async (ms: number) => {
      this.clockOffset += ms;
      await new Promise((resolve) => setImmediate(resolve));
    },
  };
  /** The client the handler uses: mocked ('mock'), bare ('direct') or the real pipeline ('sdk'). */
  readonly smClient: SecretsManagerClient;
  readonly project: { projectId: string; secret: string; secretId: string; projectSlug: string; environmentSlug: string };
  readonly client: { client_id: string; client_secret: string };
  /** kind project_secret: the rotated value (another of the project's secrets than the credentials secret's). */
  readonly projectSecret: { project_id: string; secret: string; secret_id: string; project_slug: string; environment_slug: string } | undefined;
  /** kind project_secret: the workspace key in MANAGEMENT_SECRET. */
  readonly workspaceKey: { workspaceKeyId: string; workspaceKeySecret: string } | undefined;
  readonly secretArn: string;
  readonly secretName = 'demo/stytch-client';
  /** aws-sdk-client-mock's view of every command the handler sent ('mock' transport only). */
  smMock!: AwsStub<object, MetadataBearer, unknown>;
  /** Every line the handler printed (logs and EMF metrics). */
  readonly output: string[] = [];
  /** Every error any invocation threw. */
  readonly errors: Error[] = [];
  /** Every call the handler made to Secrets Manager or Stytch, in order. */
  readonly externalCalls: ExternalCall[] = [];
  readonly invocations: InvocationRecord[] = [];
  /** Every next_client_secret Stytch minted for the handler, delivered or lost: the leak scan looks for them too. */
  readonly mintedSecrets: string[] = [];
  /** Every RotationToken sent in an event (it is a credential of the rotation: never to be logged). */
  readonly rotationTokensSent: string[] = [];
  /** Decides a fault for each call of the handler; undefined lets it through. */
  interceptor: CallInterceptor | undefined;
  /** Called when each call of the handler has ended (its effect applied, its result recorded). */
  onCall: ((call: ExternalCall) => void) | undefined;
  /** Called when each invocation has ended. */
  onInvocation: ((invocation: InvocationRecord) => void) | undefined;
  handler: Handler;
  private container: Container;
  private containers = 0;
  private readonly env: Record<string, string>;

  constructor(private readonly options: WorldOptions = {}) {
    this.stytch = new StytchEmulator({ now: () => this.clock.now(), ...(options.stytchRandom === undefined ? {} : { random: options.stytchRandom }) });
    this.sm = new SecretsManagerEmulator({ maxAttempts: options.maxAttempts ?? 1, rotationTokens: options.rotationTokens ?? false });
    if (options.smTransport === 'sdk') {
      this.smClient = new SecretsManagerClient({
        region: 'us-east-1',
        credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
        // As the handler's own client (maxAttempts: 3, standard mode), without the backoff wait.
        maxAttempts: 3,
        retryStrategy: new ConfiguredRetryStrategy(3, () => 0),
        requestHandler: { handle: (request: { headers: Record<string, string>; body?: unknown }) => this.wire(request) },
      });
    } else if (options.smTransport === 'direct') {
      const names = new Map<unknown, string>(SM_COMMANDS.map(([command, name]) => [command, name]));
      const send = (command: { constructor: unknown; input: unknown }) => {
        const name = names.get(command.constructor);
        if (!name) return Promise.reject(new Error(`Test bug: the World does not route ${String(command.constructor)}`));
        return this.external('secretsmanager', name, (fault) => this.mockedCall(name, command.input, fault));
      };
      this.smClient = { send } as unknown as SecretsManagerClient;
    } else {
      this.smClient = new SecretsManagerClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
      const mock = mockClient(this.smClient);
      this.smMock = mock as unknown as AwsStub<object, MetadataBearer, unknown>;
      for (const [command, name] of SM_COMMANDS) {
        mock.on(command as never).callsFake((input: unknown) =>
          this.external('secretsmanager', name, (fault) => this.mockedCall(name, input, fault)),
        );
      }
    }
    if (options.smTransport === 'sdk') {
      this.dynamoClient = new DynamoDBClient({
        region: 'us-east-1',
        credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
        maxAttempts: 3,
        retryStrategy: new ConfiguredRetryStrategy(3, () => 0),
        requestHandler: { handle: (request: { headers: Record<string, string>; body?: unknown }) => this.dynamoWire(request) },
      });
    } else {
      const names = new Map<unknown, string>(DYNAMODB_COMMANDS.map(([command, name]) => [command, name]));
      const send = (command: { constructor: unknown; input: unknown }) => {
        const name = names.get(command.constructor);
        if (!name) return Promise.reject(new Error(`Test bug: the World does not route ${String(command.constructor)}`));
        return this.external('dynamodb', name, (fault) => this.dynamoCall(name, command.input, fault), command.input);
      };
      this.dynamoClient = { send } as unknown as DynamoDBClient;
    }
    this.project = this.stytch.createProject();
    if (options.kind === 'project_secret') {
      const second = this.stytch.createProjectSecret(this.project.projectId);
      this.projectSecret = {
        project_id: this.project.projectId,
        secret: second.secret,
        secret_id: second.secretId,
        project_slug: this.project.projectSlug,
        environment_slug: this.project.environmentSlug,
      };
      this.workspaceKey = this.stytch.createWorkspaceKey();
    }
    const created =
      options.kind === 'm2m' || options.kind === 'project_secret'
        ? this.stytch.createM2MClient(this.project.projectId)
        : this.stytch.createConnectedApp(this.project.projectId, { clientType: options.clientType ?? 'first_party' });
    this.client = { client_id: created.client_id, client_secret: created.client_secret ?? 'public-client-has-no-secret' };
    this.env = {
      STYTCH_CREDENTIALS_SECRET_ID: CREDENTIALS_SECRET,
      STYTCH_API_BASE_URL: 'http://127.0.0.1:9',
      STYTCH_MANAGEMENT_CREDENTIALS_SECRET_ID: MANAGEMENT_SECRET,
      STYTCH_MANAGEMENT_API_BASE_URL: 'http://127.0.0.1:9',
      ROTATION_STATE_TABLE: STATE_TABLE,
      // The suites written before the overlap window assume the previous secret dies in finishSecret; a window is opted into.
      PREVIOUS_SECRET_GRACE_SECONDS: '0',
      ...options.env,
    };
    this.container = this.createContainer();
    this.handler = this.container.handler;
    this.secretArn = '';
  }

  /** Creates both secrets and registers the handler as the rotation Lambda. */
  async init(): Promise<this> {
    await this.dynamo.createStateTable(STATE_TABLE);
    await this.sm.handle('CreateSecret', {
      Name: CREDENTIALS_SECRET,
      ClientRequestToken: randomUUID(),
      SecretString: JSON.stringify({ project_id: this.project.projectId, secret: this.project.secret }),
    });
    if (this.workspaceKey) {
      await this.sm.handle('CreateSecret', {
        Name: MANAGEMENT_SECRET,
        ClientRequestToken: randomUUID(),
        SecretString: JSON.stringify({ workspace_key_id: this.workspaceKey.workspaceKeyId, workspace_key_secret: this.workspaceKey.workspaceKeySecret }),
      });
    }
    const created = (await this.sm.handle('CreateSecret', {
      Name: this.secretName,
      ClientRequestToken: randomUUID(),
      SecretString: JSON.stringify({ ...(this.projectSecret ?? this.client), ...this.options.extraFields }),
    })) as { ARN: string };
    (this as { secretArn: string }).secretArn = created.ARN;
    this.sm.registerInvoker(LAMBDA_ARN, (event) => this.invokeRaw(event));
    if (this.options.rotationEnabled !== false) {
      // Turn rotation on without rotating: RotateImmediately=false runs only testSecret.
      await this.sm.handle('RotateSecret', {
        SecretId: this.secretArn,
        RotationLambdaARN: LAMBDA_ARN,
        RotationRules: { ScheduleExpression: 'rate(30 days)' },
        RotateImmediately: false,
      });
    }
    this.stytch.resetRequests();
    this.sm.resetCalls();
    return this;
  }

  /** A fresh Lambda container: new caches, same environment. Later invocations run in it. */
  newContainer(): Handler {
    this.container = this.createContainer();
    this.handler = this.container.handler;
    return this.handler;
  }

  /** Another container beside the current one (Lambda runs concurrent invocations in separate containers). */
  createContainer(): Container {
    const handler = (this.options.createHandler ?? createHandler)({
      secretsManager: this.smClient,
      dynamoDB: this.dynamoClient,
      fetch: this.fetch,
      env: this.env,
      sleep: this.options.sleep ?? (async () => undefined),
      clock: this.clock,
    });
    return { id: ++this.containers, handler };
  }

  /** Invokes the handler with any event, capturing its output; rethrows its error. */
  async invokeRaw(event: unknown, context: Context = fakeContext(), container: Container = this.container): Promise<void> {
    const e = (typeof event === 'object' && event !== null ? event : {}) as Record<string, unknown>;
    if (typeof e.RotationToken === 'string') this.rotationTokensSent.push(e.RotationToken);
    const record: InvocationRecord = {
      id: this.invocations.length,
      step: typeof e.Step === 'string' ? e.Step : undefined,
      token: typeof e.ClientRequestToken === 'string' ? e.ClientRequestToken : undefined,
      container: container.id,
      done: false,
    };
    this.invocations.push(record);
    const release = this.capture();
    try {
      await invocationContext.run({ record, output: this.output }, () => container.handler(event as never, context));
    } catch (error) {
      record.error = error as Error;
      this.errors.push(error as Error);
      throw error;
    } finally {
      release();
      record.done = true;
      // A lease this invocation could not give back stays held until it expires: Secrets Manager's
      // next attempt comes after that (the time a dead Lambda takes to time out, at least).
      const lastRelease = this.externalCalls.findLast((c) => c.invocation === record.id && c.leaseRelease);
      if (lastRelease && lastRelease.result?.ok !== true) this.advance(LEASE_SPAN_MS);
      this.onInvocation?.(record);
    }
  }

  /**
   * Holds the next call that matches, before it reaches the service or after
   * its effect (its answer held back), until `release()`: the way a race is
   * made to happen on purpose. `reached` resolves when the call is held.
   */
  pause(match: (call: ExternalCall) => boolean, when: 'before' | 'after' = 'before'): Gate {
    let reached!: (call: ExternalCall) => void;
    let release!: () => void;
    const gate: Gate & { match: typeof match; hold: (call: ExternalCall) => Promise<void> } = {
      when,
      match,
      reached: new Promise<ExternalCall>((resolve) => (reached = resolve)),
      release: () => release(),
      hold: (call) => {
        reached(call);
        return opened;
      },
    };
    const opened = new Promise<void>((resolve) => (release = resolve));
    this.gates.push(gate);
    return gate;
  }

  private readonly gates: Array<Gate & { match: (call: ExternalCall) => boolean; hold: (call: ExternalCall) => Promise<void> }> = [];

  private takeGate(call: ExternalCall) {
    const index = this.gates.findIndex((g) => g.match(call));
    return index < 0 ? undefined : this.gates.splice(index, 1)[0];
  }

  /** Moves the handler's clock on (overlap windows end, leases expire). */
  advance(ms: number): void {
    this.clockOffset += ms;
  }

  /** The EventBridge schedule's event: the function runs its retirement sweep. */
  sweep(container: Container = this.container): Promise<void> {
    return this.invokeRaw(scheduledEvent(), fakeContext(), container);
  }

  /** The state table's item for this world's client, as the function wrote it (DynamoDB JSON). */
  async stateItem(): Promise<Record<string, unknown> | undefined> {
    const out = await this.dynamo.handle('GetItem', {
      TableName: STATE_TABLE,
      Key: {
        pk: {
          S: this.projectSecret
            ? `client#${this.project.projectId}#${this.project.projectSlug}/${this.project.environmentSlug}`
            : `client#${this.project.projectId}#${this.client.client_id}`,
        },
      },
      ConsistentRead: true,
    });
    return out.Item as Record<string, unknown> | undefined;
  }

  invoke(step: Step, token: string, extra: Record<string, unknown> = {}): Promise<void> {
    return this.invokeRaw({ Step: step, SecretId: this.secretArn, ClientRequestToken: token, ...extra });
  }

  /** Keeps stdout captured for the whole of `run` (many invocations; cheaper than one capture each). */
  async capturing<T>(run: () => Promise<T>): Promise<T> {
    const release = this.capture();
    try {
      return await run();
    } finally {
      release();
    }
  }

  /** Labels a new token version AWSPENDING without a value, as RotateSecret does before createSecret. */
  async beginRotation(token: string = randomUUID()): Promise<string> {
    this.sm.beginRotation(this.secretArn, token);
    return token;
  }

  async rotateAllSteps(token?: string): Promise<string> {
    const t = await this.beginRotation(token);
    for (const step of STEPS) await this.invoke(step, t);
    return t;
  }

  snapshot() {
    return this.sm.inspect(this.secretArn);
  }

  versionWith(stage: string): { id: string; value: Record<string, unknown> | undefined } | undefined {
    for (const [id, v] of Object.entries(this.snapshot().versions)) {
      if (v.stages.includes(stage)) return { id, value: v.secretString === undefined ? undefined : JSON.parse(v.secretString) };
    }
    return undefined;
  }

  currentSecret(): string {
    return this.versionWith('AWSCURRENT')!.value!.client_secret as string;
  }

  stytchState() {
    return this.stytch.clientState(this.client.client_id);
  }

  stytchCalls(operationSuffix?: string) {
    return this.stytch.requests.filter((r) => !operationSuffix || r.operation.endsWith(operationSuffix));
  }

  /** Sum of each EMF metric the handler emitted, by name (e.g. `metricCounts().OrphanRepaired`). */
  metricCounts(lines: readonly string[] = this.output): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const line of lines) {
      if (!line.includes('"_aws"')) continue;
      let emf: Record<string, unknown>;
      try {
        emf = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      const defs = (emf._aws as { CloudWatchMetrics?: Array<{ Metrics: Array<{ Name: string }> }> } | undefined)?.CloudWatchMetrics ?? [];
      for (const def of defs) {
        for (const { Name } of def.Metrics) {
          const value = emf[Name];
          const sum = Array.isArray(value) ? value.reduce((a: number, b: unknown) => a + Number(b), 0) : Number(value);
          counts[Name] = (counts[Name] ?? 0) + sum;
        }
      }
    }
    return counts;
  }

  /** The handler's log records (Powertools JSON lines, EMF lines left out), in order: level, message and fields. */
  logRecords(lines: readonly string[] = this.output): Array<{ level: string; message: string } & Record<string, unknown>> {
    const records: Array<{ level: string; message: string } & Record<string, unknown>> = [];
    for (const line of lines) {
      if (line.includes('"_aws"')) continue;
      let record: Record<string, unknown>;
      try {
        record = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if (typeof record.level === 'string' && typeof record.message === 'string') records.push(record as { level: string; message: string });
    }
    return records;
  }

  /** How many log records of each level (`{ INFO: 5, WARN: 1 }`). */
  logLevels(lines: readonly string[] = this.output): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const { level } of this.logRecords(lines)) counts[level] = (counts[level] ?? 0) + 1;
    return counts;
  }

  /** Every secret this world has seen: the leak scan looks for each in all captured output and errors. */
  knownSecrets(extra: string[] = []): string[] {
    const values = new Set<string>([this.project.secret, this.client.client_secret, ...this.mintedSecrets, ...this.rotationTokensSent, ...extra]);
    // Every project secret, stored or not (a created one nobody stored included), and the workspace key.
    for (const { secret } of this.stytch.projectSecretValues(this.project.projectId)) values.add(secret);
    if (this.projectSecret) values.add(this.projectSecret.secret);
    if (this.workspaceKey) {
      values.add(this.workspaceKey.workspaceKeySecret);
      values.add(Buffer.from(`${this.workspaceKey.workspaceKeyId}:${this.workspaceKey.workspaceKeySecret}`).toString('base64'));
    }
    const basic = (projectId: unknown, secret: unknown) => {
      // The Authorization header of every Stytch call: logging headers would leak the project secret this way.
      if (typeof projectId === 'string' && typeof secret === 'string') values.add(Buffer.from(`${projectId}:${secret}`).toString('base64'));
    };
    basic(this.project.projectId, this.project.secret);
    for (const id of [this.secretArn, CREDENTIALS_SECRET]) {
      let versions: SecretSnapshot['versions'];
      try {
        versions = this.sm.inspect(id).versions;
      } catch {
        continue; // not created (init() not run) or deleted for good
      }
      for (const v of Object.values(versions)) {
        if (!v.secretString) continue;
        values.add(v.secretString);
        try {
          const parsed = JSON.parse(v.secretString) as Record<string, unknown>;
          if (typeof parsed.client_secret === 'string') values.add(parsed.client_secret);
          if (typeof parsed.secret === 'string') values.add(parsed.secret);
          basic(parsed.project_id, parsed.secret);
        } catch {
          // Not JSON: the whole value is what must not leak.
        }
      }
    }
    return [...values].filter((s) => s.length >= 8);
  }

  /**
   * Secrets found in any captured line, any thrown error (message, stack and
   * every string reachable from it, down its `cause` chain), or the errors the
   * Secrets Manager emulator recorded for failed rotation steps.
   */
  leaks(extra: string[] = []): string[] {
    const texts: string[] = [...this.output];
    for (const e of this.errors) collectStrings(e, texts);
    for (const record of this.sm.rotationHistory(this.secretArn || this.secretName)) {
      for (const attempt of record.attempts) for (const step of attempt.steps) if (step.error) texts.push(step.error);
    }
    const haystack = texts.join('\n');
    return this.knownSecrets(extra).filter((s) => haystack.includes(s));
  }

  // ---------------------------------------------------------------- plumbing

  /** Routes the process's stdout/stderr to this world while the returned release has not been called. */
  private capture(): () => void {
    return acquireCapture(this.output);
  }

  /** Records one call of the handler, asks the interceptor for a fault, and runs it. */
  private async external<T>(service: Service, operation: string, run: (fault: CallFault | undefined) => Promise<T>, input?: unknown): Promise<T> {
    const invocation = invocationContext.getStore()?.record;
    const call: ExternalCall = {
      index: this.externalCalls.length,
      service,
      operation,
      invocation: invocation?.id,
      token: invocation?.token,
      step: invocation?.step,
      ...(service === 'dynamodb' && isLeaseRelease(operation, input) ? { leaseRelease: true } : {}),
    };
    this.externalCalls.push(call);
    const fault = this.interceptor?.(call);
    if (fault) {
      if (fault.error !== undefined && (service === 'stytch' ? !isStytchFailure(fault.error) : !isSmFailure(fault.error))) {
        throw new Error(`Test bug: ${String(fault.error)} is not a ${service} failure`);
      }
      call.fault = fault;
    }
    const gate = this.takeGate(call);
    try {
      if (gate?.when === 'before') await gate.hold(call);
      const result = await run(fault);
      if (gate?.when === 'after') await gate.hold(call);
      const status = result instanceof Response ? result.status : (result as { response?: { statusCode?: number } } | undefined)?.response?.statusCode;
      call.result = status === undefined ? { ok: true } : { ok: status < 300, status };
      return result;
    } catch (error) {
      call.result = { ok: false, status: 0, error: (error as Error)?.name ?? String(error) };
      throw error;
    } finally {
      this.onCall?.(call);
    }
  }

  private async mockedCall(operation: string, input: unknown, fault: CallFault | undefined): Promise<unknown> {
    if (fault?.when === 'before') {
      if (fault.delayMs) await abortableSleep(fault.delayMs, undefined);
      if (fault.error) throw sdkError(fault.error as SecretsManagerFailure);
    }
    const output = await this.sm.handle(operation, input);
    if (fault?.when === 'after') {
      if (fault.delayMs) await abortableSleep(fault.delayMs, undefined);
      if (fault.error) throw sdkError(fault.error as SecretsManagerFailure);
    }
    return output;
  }

  private async dynamoCall(operation: string, input: unknown, fault: CallFault | undefined): Promise<unknown> {
    if (fault?.when === 'before') {
      if (fault.delayMs) await abortableSleep(fault.delayMs, undefined);
      if (fault.error) throw dynamoError(fault.error as SecretsManagerFailure);
    }
    const output = { ...(await this.dynamo.handle(operation, input)), $metadata: { httpStatusCode: 200 } };
    if (fault?.when === 'after') {
      if (fault.delayMs) await abortableSleep(fault.delayMs, undefined);
      if (fault.error) throw dynamoError(fault.error as SecretsManagerFailure);
    }
    return output;
  }

  /** The DynamoDB client's request handler ('sdk' transport): one attempt, in process. */
  private dynamoWire(request: { headers: Record<string, string>; body?: unknown }) {
    const target = Object.entries(request.headers).find(([k]) => k.toLowerCase() === 'x-amz-target')?.[1] ?? '';
    const operation = target.replace(/^DynamoDB_20120810\./, '');
    const raw = request.body;
    const text = typeof raw === 'string' ? raw : raw instanceof Uint8Array ? new TextDecoder().decode(raw) : '';
    const input: unknown = text ? JSON.parse(text) : {};
    return this.external(
      'dynamodb',
      operation,
      async (fault) => {
        if (fault?.when === 'before') {
          if (fault.delayMs) await abortableSleep(fault.delayMs, undefined);
          if (fault.error) return dynamoWireFailure(fault.error as SecretsManagerFailure);
        }
        const answer = await this.dynamo.sdkRequestHandler().handle({ headers: request.headers, body: text });
        // As an AWS endpoint does, by the world's clock (the CLI times its leases from it).
        answer.response.headers.date = new Date(this.clock.now()).toUTCString();
        if (fault?.when === 'after') {
          if (fault.delayMs) await abortableSleep(fault.delayMs, undefined);
          if (fault.error) return dynamoWireFailure(fault.error as SecretsManagerFailure);
        }
        return answer;
      },
      input,
    );
  }

  /** The SDK's request handler ('sdk' transport): one HTTP attempt, in process. */
  private wire(request: { headers: Record<string, string>; body?: unknown }) {
    const target = Object.entries(request.headers).find(([k]) => k.toLowerCase() === 'x-amz-target')?.[1] ?? '';
    const operation = target.replace(/^secretsmanager\./, '');
    return this.external('secretsmanager', operation, async (fault) => {
      if (fault?.when === 'before') {
        if (fault.delayMs) await abortableSleep(fault.delayMs, undefined);
        if (fault.error) return wireFailure(fault.error as SecretsManagerFailure);
      }
      const raw = request.body;
      const text = typeof raw === 'string' ? raw : raw instanceof Uint8Array ? new TextDecoder().decode(raw) : '';
      let answer;
      try {
        answer = wireResponse(200, (await this.sm.handle(operation, text ? JSON.parse(text) : {})) ?? {});
      } catch (error) {
        const e = error instanceof SecretsManagerServiceError ? error : new SecretsManagerServiceError('InternalServiceError', 'An error occurred on the server side.');
        answer = wireResponse(e.httpStatus, { __type: e.name, Message: e.message }, e.name);
      }
      (answer.response.headers as Record<string, string>).date = new Date(this.clock.now()).toUTCString();
      if (fault?.when === 'after') {
        if (fault.delayMs) await abortableSleep(fault.delayMs, undefined);
        if (fault.error) return wireFailure(fault.error as SecretsManagerFailure);
      }
      return answer;
    });
  }

  /** The fetch the handler uses: the emulator's, recorded and subject to the interceptor. */
  private readonly fetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const operation = stytchOperation(url, init?.method ?? (input instanceof Request ? input.method : 'GET'));
    const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
    return this.external('stytch', operation, async (fault) => {
      if (fault?.when === 'before') {
        if (fault.delayMs) await abortableSleep(fault.delayMs, signal);
        if (fault.error) return stytchFailure(fault.error as StytchFailure);
      }
      const response = await this.stytch.fetch(input, init);
      if (operation === 'secrets.create' && response.ok) {
        const next = ((await response.clone().json()) as { secret?: { secret?: unknown } }).secret?.secret;
        if (typeof next === 'string') this.mintedSecrets.push(next);
      }
      if (operation.endsWith('.rotate_start') && response.ok) {
        const body = (await response.clone().json()) as Record<string, { next_client_secret?: unknown } | undefined>;
        const next = (body.connected_app ?? body.m2m_client)?.next_client_secret;
        if (typeof next === 'string') this.mintedSecrets.push(next);
      }
      if (fault?.when === 'after') {
        if (fault.delayMs) await abortableSleep(fault.delayMs, signal);
        if (fault.error) return stytchFailure(fault.error as StytchFailure);
      }
      return response;
    });
  };
}

/**
 * One stdout/stderr capture for the whole process, shared by every World that
 * is capturing (tests may run several at once): a line written during an
 * invocation goes to that invocation's World, any other line to every
 * capturing World.
 */
const capturing = new Map<string[], number>();
/**
 * The invocation running in the current async context, and where its output
 * goes. One for the whole process: every live AsyncLocalStorage taxes every
 * promise, so one per World would slow a long property run quadratically.
 */
const invocationContext = new AsyncLocalStorage<{ record: InvocationRecord; output: string[] }>();
let restoreWrites: (() => void) | undefined;

function acquireCapture(sink: string[]): () => void {
  capturing.set(sink, (capturing.get(sink) ?? 0) + 1);
  if (!restoreWrites) {
    const write = (chunk: unknown) => {
      const text = String(chunk);
      const owner = invocationContext.getStore()?.output;
      if (owner && capturing.has(owner)) owner.push(text);
      else for (const s of capturing.keys()) s.push(text);
      return true;
    };
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(write as never);
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(write as never);
    restoreWrites = () => {
      out.mockRestore();
      err.mockRestore();
    };
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const n = (capturing.get(sink) ?? 1) - 1;
    if (n > 0) capturing.set(sink, n);
    else capturing.delete(sink);
    if (capturing.size === 0) {
      restoreWrites?.();
      restoreWrites = undefined;
    }
  };
}

/** Every string reachable from an error: message, stack, own fields, `cause` chains, AggregateError members. */
function collectStrings(value: unknown, out: string[], seen = new Set<unknown>(), depth = 0): void {
  if (typeof value === 'string') {
    out.push(value);
    return;
  }
  if (typeof value !== 'object' || value === null || seen.has(value) || depth > 8) return;
  seen.add(value);
  if (value instanceof Error) {
    out.push(value.message, value.stack ?? '', String(value));
    collectStrings(value.cause, out, seen, depth + 1);
  }
  if (value instanceof Readable || value instanceof Response) return;
  for (const key of Object.getOwnPropertyNames(value)) {
    let field: unknown;
    try {
      field = (value as Record<string, unknown>)[key];
    } catch {
      continue;
    }
    collectStrings(field, out, seen, depth + 1);
  }
}
