/**
 * The local stack: the Stytch and Secrets Manager emulators and DynamoDB
 * (dynalite) on loopback, and the BUILT rotation function
 * (dist/rotate-stytch-secret/index.mjs) registered as the rotation Lambda,
 * reaching Secrets Manager and its state table through its own bundled AWS SDK
 * via AWS_ENDPOINT_URL_SECRETS_MANAGER and AWS_ENDPOINT_URL_DYNAMODB, exactly
 * as it would in AWS. One port answers Secrets Manager, DynamoDB and Lambda's
 * Invoke (the function by name), so one --endpoint-url serves the AWS CLI.
 * Depends on the built function, never the other way round.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import { isScheduledEvent } from '../../functions/lib/schemas.js';
import { LocalDynamoDB, STATE_TABLE_NAME } from './dynamodb.js';
import { lambdaContext } from './lambda-context.js';
import { SecretsManagerEmulator, SecretsManagerServiceError, type RotationEvent } from './secrets-manager/index.js';
import { startServer } from './secrets-manager/server.js';
import { StytchEmulator, type CreatedProject, type ProjectSecretState, type WorkspaceKey } from './stytch/emulator.js';

export const LOCAL_FUNCTION_NAME = 'stytch-secret-rotation-local';
export const LOCAL_LAMBDA_ARN = `arn:aws:lambda:us-east-1:123456789012:function:${LOCAL_FUNCTION_NAME}`;
export { STATE_TABLE_NAME };
export const CREDENTIALS_SECRET_NAME = 'stytch/project-credentials';
/** The workspace management key the function rotates project secrets with (DESIGN.md §4b). */
export const MANAGEMENT_CREDENTIALS_SECRET_NAME = 'stytch/management-credentials';
export const DEFAULT_BUNDLE = resolve('dist/rotate-stytch-secret/index.mjs');

type Handler = (event: unknown, context: unknown) => Promise<unknown>;

/** The item a DynamoDB request names (its key), and its expressions. */
function dynamoTarget(body: Buffer): { target: string | undefined; expression: string | undefined } {
  try {
    const input = JSON.parse(body.toString('utf8')) as { Key?: { pk?: { S?: string } }; Item?: { pk?: { S?: string } }; UpdateExpression?: string; ConditionExpression?: string };
    return { target: input.Key?.pk?.S ?? input.Item?.pk?.S, expression: input.UpdateExpression ?? input.ConditionExpression };
  } catch {
    return { target: undefined, expression: undefined };
  }
}

async function loadHandler(bundle: string): Promise<Handler> {
  const url = `${pathToFileURL(bundle).href}?container=${++containerCount}`;
  return ((await import(url)) as { handler: Handler }).handler;
}

function injectedFailure(): SecretsManagerServiceError {
  return new SecretsManagerServiceError('InternalServiceError', 'Injected fault.', 500);
}

const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations(?:\?.*)?$/;
const CONFIGURATION_PATH = /^\/2015-03-31\/functions\/([^/]+)\/configuration\/?(?:\?.*)?$/;
/** The function's settings that Lambda's GetFunctionConfiguration shows (what the CLI reads to find the stack). */
const CONFIGURATION_VARIABLES = ['STYTCH_CREDENTIALS_SECRET_ID', 'STYTCH_MANAGEMENT_CREDENTIALS_SECRET_ID', 'ROTATION_STATE_TABLE', 'PREVIOUS_SECRET_GRACE_SECONDS', 'STYTCH_API_BASE_URL', 'POWERTOOLS_SERVICE_NAME'];


/** A standard EventBridge scheduled event, as the sweep's schedule sends it. */
export function scheduledEvent(time = new Date()): Record<string, unknown> {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: '123456789012',
    time: time.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region: 'us-east-1',
    resources: ['arn:aws:events:us-east-1:123456789012:rule/stytch-secret-rotation-local-sweep'],
    detail: {},
  };
}

/**
 * Process-wide, not per stack: ESM caches modules by URL, so a second stack in
 * the same process counting from 1 again would get the first stack's module,
 * whose SDK client still points at the first stack's (closed) endpoint.
 */
let containerCount = 0;

export interface LocalStackOptions {
  stytchPort?: number;
  secretsManagerPort?: number;
  /** Attempts of a failing rotation inside one RotateSecret (Secrets Manager reattempts). */
  maxAttempts?: number;
  bundlePath?: string;
  /** Where the function's log lines go: kept in `logs` (default), or also printed. */
  echoLogs?: boolean;
  /** Extra environment for the function (e.g. POWERTOOLS_LOG_LEVEL). */
  env?: Record<string, string>;
  /** Lambda timeout the context counts down from. */
  timeoutMs?: number;
  /** PREVIOUS_SECRET_GRACE_SECONDS of the function (default 0: the previous secret is retired in finishSecret). */
  graceSeconds?: number;
}

export interface SeededSecret {
  name: string;
  arn: string;
  clientId: string;
  kind: 'connected_app' | 'm2m';
}

/** A secret value the stack holds, with a label that names it without showing it. */
export interface KnownSecret {
  label: string;
  value: string;
}

export interface LeakScan {
  /** Lines the function printed (logs and EMF metrics). */
  lines: number;
  /** How many of those lines, or of the errors it threw, contain a known secret. */
  linesWithSecret: number;
  /** Labels (never values) of the secrets found. */
  leaked: string[];
}

/**
 * Called for every Secrets Manager and DynamoDB request the stack serves,
 * before its effect and after it (before the answer): a test may delay either
 * phase, or answer 'fail' (an InternalServerError, HTTP 500, which the SDK
 * retries; after the effect, a lost answer). Races are made on purpose with
 * it, and the concurrency fuzzer adds random latencies.
 */
export type AwsInterceptor = (call: AwsCall) => Promise<'fail' | void> | 'fail' | void;

export interface AwsCall {
  service: 'secretsmanager' | 'dynamodb';
  operation: string;
  phase: 'before' | 'after';
  /** What the call names: the SecretId for Secrets Manager, the item's key (`client#…`, `secret#…`) for DynamoDB; undefined for a Scan. */
  target: string | undefined;
  /** A DynamoDB write's UpdateExpression or ConditionExpression, to tell a lease taken from one given back. */
  expression?: string | undefined;
}

/** One Lambda container: its own copy of the bundle (own SDK clients and caches), invoked like the stack's. */
export type Container = (event: RotationEvent | Record<string, unknown>) => Promise<void>;

export interface InvocationRecord {
  step: string;
  ok: boolean;
  ms: number;
  error?: string;
}

export class LocalStack {
  /** Every line the function printed (structured logs and EMF metrics). */
  readonly logs: string[] = [];
  /** Every invocation of the function, in order. */
  readonly invocations: InvocationRecord[] = [];
  /** See AwsInterceptor; Stytch's own is `stytch.interceptor`. */
  interceptor: AwsInterceptor | undefined;
  private handler: Handler | undefined;

  private constructor(
    readonly stytch: StytchEmulator,
    readonly sm: SecretsManagerEmulator,
    /** The state table's DynamoDB (dynalite), answering on the Secrets Manager port too. */
    readonly dynamo: LocalDynamoDB,
    readonly stytchUrl: string,
    readonly secretsManagerUrl: string,
    /**
     * The emulated Stytch project environment as the stack created it: ids, slugs
     * and its first secret (`secret`, `secretId`), which the credentials secret
     * holds until something rotates it.
     */
    readonly project: CreatedProject,
    /** The workspace management key held in the management credentials secret. */
    readonly workspaceKey: WorkspaceKey,
    private readonly closers: Array<() => Promise<void>>,
    private readonly options: LocalStackOptions,
  ) {}

  /** Name of the project credentials secret (`STYTCH_CREDENTIALS_SECRET_ID`), itself a rotatable project secret. */
  readonly credentialsSecretName = CREDENTIALS_SECRET_NAME;
  /** Name of the management credentials secret (`STYTCH_MANAGEMENT_CREDENTIALS_SECRET_ID`). */
  readonly managementSecretName = MANAGEMENT_CREDENTIALS_SECRET_NAME;

  /** The project's secrets as Stytch holds them now (ids, last fours, created/used times in epoch ms; never values). */
  projectSecrets(): ProjectSecretState[] {
    return this.stytch.projectSecrets(this.project.projectId);
  }

  /**
   * The environment of a fresh shell pointed at this stack, as `npm run serve` tells a
   * user to set it, with nothing read from the machine's own AWS configuration (no
   * profile, no credentials file, no instance metadata): for tests and benchmarks
   * that run the CLI as a process.
   */
  shellEnv(): Record<string, string> {
    return {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_ENDPOINT_URL: this.secretsManagerUrl,
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      AWS_EC2_METADATA_DISABLED: 'true',
    };
  }

  static async start(options: LocalStackOptions = {}): Promise<LocalStack> {
    const bundle = options.bundlePath ?? DEFAULT_BUNDLE;
    if (!existsSync(bundle)) throw new Error(`The built function is missing (${bundle}): run npm run build first.`);
    const stytch = new StytchEmulator();
    const sm = new SecretsManagerEmulator({ maxAttempts: options.maxAttempts ?? 3 });
    const dynamo = new LocalDynamoDB();
    await dynamo.createStateTable(STATE_TABLE_NAME);
    let stack: LocalStack | undefined;
    const stytchServer = await stytch.listen({ port: options.stytchPort ?? 0 });
    const routes = [
      { matches: (req: IncomingMessage) => LocalDynamoDB.isDynamoDBRequest(req), listener: (req: IncomingMessage, res: ServerResponse) => void stack?.serveDynamoDB(req, res) },
      { matches: (req: IncomingMessage) => INVOKE_PATH.test(req.url ?? ''), listener: (req: IncomingMessage, res: ServerResponse) => void stack?.serveInvoke(req, res) },
      {
        matches: (req: IncomingMessage) => CONFIGURATION_PATH.test(req.url ?? ''),
        listener: (req: IncomingMessage, res: ServerResponse) => stack?.serveConfiguration(req, res),
      },
    ];
    const serveSecretsManager = (operation: string, input: unknown) => stack!.serveSecretsManager(operation, input);
    const smServer = await startServer(serveSecretsManager, { port: options.secretsManagerPort ?? 0, routes }).catch(async (error: unknown) => {
      await stytchServer.close(); // a half-started stack must not keep the process alive
      await dynamo.close();
      throw error;
    });
    const project = stytch.createProject();
    const workspaceKey = stytch.createWorkspaceKey();
    stack = new LocalStack(stytch, sm, dynamo, stytchServer.url, smServer.url, project, workspaceKey, [stytchServer.close, smServer.close, () => dynamo.close()], options);

    await sm.handle('CreateSecret', {
      Name: CREDENTIALS_SECRET_NAME,
      ClientRequestToken: randomUUID(),
      Description: 'Stytch project credentials used by the rotation function (local stack)',
      // secret_id and the slugs name this secret in the management API, so the credentials secret can itself be rotated.
      SecretString: JSON.stringify({
        project_id: project.projectId,
        secret: project.secret,
        base_url: stytchServer.url,
        secret_id: project.secretId,
        project_slug: project.projectSlug,
        environment_slug: project.environmentSlug,
      }),
    });
    await sm.handle('CreateSecret', {
      Name: MANAGEMENT_CREDENTIALS_SECRET_NAME,
      ClientRequestToken: randomUUID(),
      Description: 'Stytch workspace management key used to rotate project secrets (local stack)',
      // The emulator serves the management API on the same origin as the project API.
      SecretString: JSON.stringify({
        workspace_key_id: workspaceKey.workspaceKeyId,
        workspace_key_secret: workspaceKey.workspaceKeySecret,
        base_url: stytchServer.url,
      }),
    });
    // The function reads its configuration from the environment, as in Lambda.
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_SECRETS_MANAGER: smServer.url,
      AWS_ENDPOINT_URL_DYNAMODB: smServer.url,
      ROTATION_STATE_TABLE: STATE_TABLE_NAME,
      PREVIOUS_SECRET_GRACE_SECONDS: String(options.graceSeconds ?? 0),
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      STYTCH_CREDENTIALS_SECRET_ID: CREDENTIALS_SECRET_NAME,
      STYTCH_MANAGEMENT_CREDENTIALS_SECRET_ID: MANAGEMENT_CREDENTIALS_SECRET_NAME,
      POWERTOOLS_SERVICE_NAME: 'stytch-secret-rotation',
      // The name the bundled SDK (3.1164) reads; without it its Node 20 warning lands in `logs`.
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...options.env,
    });
    delete process.env.AWS_SESSION_TOKEN;
    delete process.env.AWS_PROFILE;
    await stack.newContainer(bundle);
    sm.registerInvoker(LOCAL_LAMBDA_ARN, (event) => stack.invoke(event));
    return stack;
  }

  /** Loads the bundle afresh: a cold container with empty caches. */
  async newContainer(bundle = this.options.bundlePath ?? DEFAULT_BUNDLE): Promise<void> {
    this.handler = await loadHandler(bundle);
  }

  /**
   * Another container beside the current one, for concurrent invocations (Lambda
   * runs them in separate containers). Its invocations are recorded and
   * captured like the stack's own.
   */
  async createContainer(bundle = this.options.bundlePath ?? DEFAULT_BUNDLE): Promise<Container> {
    const handler = await loadHandler(bundle);
    return (event) => this.invoke(event, handler);
  }

  /** Secrets Manager's operations, through the interceptor. */
  async serveSecretsManager(operation: string, input: unknown): Promise<unknown> {
    const secretId = (input as { SecretId?: unknown } | undefined)?.SecretId;
    const target = typeof secretId === 'string' ? secretId : undefined;
    if ((await this.interceptor?.({ service: 'secretsmanager', operation, phase: 'before', target })) === 'fail') throw injectedFailure();
    const output = await this.sm.handle(operation, input);
    if ((await this.interceptor?.({ service: 'secretsmanager', operation, phase: 'after', target })) === 'fail') throw injectedFailure();
    return output;
  }

  /** DynamoDB's requests, through the interceptor, to dynalite's own handler. */
  async serveDynamoDB(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.interceptor) return this.dynamo.listener(req, res);
    // Read the body to tell the interceptor which item the call names, then hand dynalite the same request.
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const target = String(req.headers['x-amz-target'] ?? '');
    const call = { service: 'dynamodb' as const, operation: target.slice(target.indexOf('.') + 1), ...dynamoTarget(body) };
    const end = res.end.bind(res) as (chunk?: unknown) => ServerResponse;
    const fail = () => {
      const text = JSON.stringify({ __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError', message: 'Injected fault.' });
      res.statusCode = 500;
      for (const name of res.getHeaderNames()) res.removeHeader(name);
      res.setHeader('Content-Type', 'application/x-amz-json-1.0');
      res.setHeader('Content-Length', Buffer.byteLength(text));
      end(text);
    };
    if ((await this.interceptor({ ...call, phase: 'before' })) === 'fail') return fail();
    // The answer waits for the 'after' phase: hold back what dynalite writes until then.
    res.end = ((chunk?: unknown) => {
      void Promise.resolve(this.interceptor?.({ ...call, phase: 'after' })).then((verdict) => (verdict === 'fail' ? fail() : end(chunk)));
      return res;
    }) as typeof res.end;
    const replay = Object.assign(new PassThrough(), { headers: req.headers, method: req.method, url: req.url, socket: req.socket });
    replay.end(body);
    this.dynamo.listener(replay as unknown as IncomingMessage, res);
  }

  /** The retirement sweep, as the EventBridge schedule invokes it (DESIGN.md §2). */
  async sweep(): Promise<void> {
    await this.invoke(scheduledEvent());
  }

  /**
   * Lambda's Invoke API for this function, so `aws lambda invoke` reaches it:
   * `POST /2015-03-31/functions/<name or ARN>/invocations`. A failed
   * invocation answers 200 with X-Amz-Function-Error, as Lambda does.
   */
  async serveInvoke(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'x-amzn-RequestId': randomUUID(), ...headers });
      res.end(text);
    };
    const name = decodeURIComponent(INVOKE_PATH.exec(req.url ?? '')?.[1] ?? '');
    if (req.method !== 'POST' || (name !== LOCAL_FUNCTION_NAME && name !== LOCAL_LAMBDA_ARN)) {
      reply(404, { Type: 'User', message: `Function not found: ${name}. The local stack runs one function, ${LOCAL_FUNCTION_NAME}.` }, { 'x-amzn-ErrorType': 'ResourceNotFoundException' });
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    let event: unknown;
    try {
      event = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
    } catch {
      reply(400, { Type: 'User', message: 'Could not parse request body into json' }, { 'x-amzn-ErrorType': 'InvalidRequestContentException' });
      return;
    }
    try {
      await this.invoke(event as Record<string, unknown>);
      reply(200, null);
    } catch (error) {
      const e = error instanceof Error ? error : new Error(String(error));
      reply(200, { errorType: e.name, errorMessage: e.message }, { 'X-Amz-Function-Error': 'Unhandled' });
    }
  }

  /**
   * Lambda's GetFunctionConfiguration for this function
   * (`GET /2015-03-31/functions/<name or ARN>/configuration`): its runtime and
   * the environment it reads, so a client can find its credentials secret and
   * state table as it would in AWS.
   */
  serveConfiguration(req: IncomingMessage, res: ServerResponse): void {
    const name = decodeURIComponent(CONFIGURATION_PATH.exec(req.url ?? '')?.[1] ?? '');
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'x-amzn-RequestId': randomUUID(), ...headers });
      res.end(text);
    };
    if (req.method !== 'GET' || (name !== LOCAL_FUNCTION_NAME && name !== LOCAL_LAMBDA_ARN)) {
      reply(404, { Type: 'User', message: `Function not found: ${name}. The local stack runs one function, ${LOCAL_FUNCTION_NAME}.` }, { 'x-amzn-ErrorType': 'ResourceNotFoundException' });
      return;
    }
    reply(200, {
      FunctionName: LOCAL_FUNCTION_NAME,
      FunctionArn: LOCAL_LAMBDA_ARN,
      Runtime: 'nodejs22.x',
      Handler: 'index.handler',
      Role: 'arn:aws:iam::123456789012:role/stytch-secret-rotation-local',
      Timeout: Math.round((this.options.timeoutMs ?? 60_000) / 1000),
      MemorySize: 256,
      Architectures: ['arm64'],
      PackageType: 'Zip',
      State: 'Active',
      LastUpdateStatus: 'Successful',
      Version: '$LATEST',
      Environment: { Variables: this.functionEnvironment() },
    });
  }

  /** The environment the function runs with, as its configuration shows it (configuration only: no AWS credentials). */
  functionEnvironment(): Record<string, string> {
    return Object.fromEntries(CONFIGURATION_VARIABLES.flatMap((key) => (process.env[key] === undefined ? [] : [[key, process.env[key]!]])));
  }

  /** Invokes the function as Lambda would, capturing what it prints. */
  async invoke(event: RotationEvent | Record<string, unknown>, handler: Handler = this.handler!): Promise<void> {
    const started = performance.now();
    const step = isScheduledEvent(event) ? 'retirementSweep' : String((event as { Step?: unknown }).Step);
    const restore = this.captureOutput();
    try {
      await handler(event, lambdaContext({ functionArn: LOCAL_LAMBDA_ARN, timeoutMs: this.options.timeoutMs ?? 60_000 }));
      this.invocations.push({ step, ok: true, ms: performance.now() - started });
    } catch (error) {
      this.invocations.push({ step, ok: false, ms: performance.now() - started, error: (error as Error).message });
      throw error;
    } finally {
      restore();
    }
  }

  /** Creates a Stytch client and the secret that holds it; `rotate` attaches rotation. */
  async seedSecret(options: { name?: string; kind?: 'connected_app' | 'm2m'; extraFields?: Record<string, unknown> } = {}): Promise<SeededSecret> {
    const kind = options.kind ?? 'connected_app';
    const client =
      kind === 'm2m'
        ? this.stytch.createM2MClient(this.project.projectId, { clientName: 'demo-worker', scopes: ['read:reports'] })
        : this.stytch.createConnectedApp(this.project.projectId, { clientType: 'first_party', clientName: 'demo-app' });
    const name = options.name ?? `demo/stytch-${kind === 'm2m' ? 'm2m' : 'client'}`;
    const created = (await this.sm.handle('CreateSecret', {
      Name: name,
      ClientRequestToken: randomUUID(),
      SecretString: JSON.stringify({ client_id: client.client_id, client_secret: client.client_secret, ...options.extraFields }),
    })) as { ARN: string };
    return { name, arn: created.ARN, clientId: client.client_id, kind };
  }

  /** Attaches rotation (rules and Lambda) and runs one rotation, as `aws secretsmanager rotate-secret` would. */
  async rotate(secretId: string, options: { rotateImmediately?: boolean; schedule?: string } = {}): Promise<void> {
    await this.sm.handle('RotateSecret', {
      SecretId: secretId,
      ClientRequestToken: randomUUID(),
      RotationLambdaARN: LOCAL_LAMBDA_ARN,
      RotationRules: { ScheduleExpression: options.schedule ?? 'rate(30 days)' },
      RotateImmediately: options.rotateImmediately ?? true,
    });
  }

  /**
   * Every secret value the stack holds: the project secrets Stytch holds (also
   * one nobody stored), the workspace key secret, and the client_secret /
   * secret / workspace_key_secret / whole value of every version of every
   * secret in the Secrets Manager emulator. Values shorter than 8 characters
   * are left out (they would match by chance).
   */
  async knownSecrets(): Promise<KnownSecret[]> {
    const found = new Map<string, string>([[this.project.secret, 'the Stytch project secret']]);
    const add = (value: unknown, label: string) => {
      if (typeof value === 'string' && value.length >= 8 && !found.has(value)) found.set(value, label);
    };
    add(this.workspaceKey.workspaceKeySecret, 'the Stytch workspace key secret');
    for (const { secretId, secret } of this.stytch.projectSecretValues(this.project.projectId)) add(secret, `Stytch project secret ${secretId}`);
    let nextToken: string | undefined;
    do {
      const page = (await this.sm.handle('ListSecrets', { IncludePlannedDeletion: true, ...(nextToken ? { NextToken: nextToken } : {}) })) as {
        SecretList: Array<{ Name: string }>;
        NextToken?: string;
      };
      for (const { Name } of page.SecretList) {
        for (const [versionId, version] of Object.entries(this.sm.inspect(Name).versions)) {
          if (version.secretString === undefined) continue;
          const where = `${Name} version ${versionId.slice(0, 8)}`;
          try {
            const parsed = JSON.parse(version.secretString) as Record<string, unknown>;
            add(parsed.client_secret, `client_secret of ${where}`);
            add(parsed.secret, `secret of ${where}`);
            add(parsed.workspace_key_secret, `workspace_key_secret of ${where}`);
          } catch {
            // Not JSON: the whole value is the secret.
          }
          add(version.secretString, `the value of ${where}`);
        }
      }
      nextToken = page.NextToken;
    } while (nextToken);
    return [...found].map(([value, label]) => ({ label, value }));
  }

  /**
   * Invariant V over everything the function printed (`logs`) and every error
   * it threw (`invocations`): which known secrets, plus `extra` (e.g. an
   * orphan next secret only Stytch held), appear anywhere. Reports labels only.
   * Cost grows with lines × secrets: a long-running caller scans and then
   * drops what it scanned (see the demo's serve mode).
   */
  async scanForSecrets(extra: KnownSecret[] = []): Promise<LeakScan> {
    // Taken before the first await, so a caller may drop exactly the lines it had when it called.
    const lines = this.logs.join('').split('\n').filter((line) => line.trim() !== '');
    const errors = this.invocations.flatMap((i) => (i.error === undefined ? [] : [i.error]));
    const secrets = [...(await this.knownSecrets()), ...extra.filter((s) => s.value.length >= 8)];
    const leaked = new Set<string>();
    let linesWithSecret = 0;
    for (const text of [...lines, ...errors]) {
      const hits = secrets.filter((s) => text.includes(s.value));
      if (hits.length > 0) linesWithSecret++;
      for (const hit of hits) leaked.add(hit.label);
    }
    return { lines: lines.length, linesWithSecret, leaked: [...leaked] };
  }

  async close(): Promise<void> {
    await Promise.all(this.closers.map((close) => close()));
  }

  private captureDepth = 0;
  private restoreOutput: (() => void) | undefined;

  /** Reference-counted, so overlapping invocations (concurrent rotations) share one capture. */
  private captureOutput(): () => void {
    if (this.captureDepth++ === 0) {
      const echo = this.options.echoLogs === true;
      const streams = [process.stdout, process.stderr] as const;
      const originals = streams.map((s) => s.write);
      streams.forEach((stream, i) => {
        stream.write = ((chunk: unknown, ...rest: unknown[]) => {
          this.logs.push(String(chunk));
          return echo ? (originals[i] as (...a: unknown[]) => boolean).call(stream, chunk, ...rest) : true;
        }) as typeof stream.write;
      });
      this.restoreOutput = () => streams.forEach((stream, i) => (stream.write = originals[i]!));
    }
    return () => {
      if (--this.captureDepth === 0) this.restoreOutput?.();
    };
  }
}
