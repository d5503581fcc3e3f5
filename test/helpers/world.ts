/**
 * A whole world for tests of the rotation logic, in-process and fast: the
 * Stytch emulator answering through its `fetch`, the Secrets Manager emulator
 * behind a real SecretsManagerClient whose commands aws-sdk-client-mock routes
 * to the emulator, and a handler built from source with those collaborators.
 * Everything the handler logs or emits (Powertools writes to stdout) is
 * captured so tests can assert on it and scan it for secrets.
 */
import { randomUUID } from 'node:crypto';
import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { mockClient, type AwsStub } from 'aws-sdk-client-mock';
import type { MetadataBearer } from '@smithy/types';
import type { Context } from 'aws-lambda';
import { vi } from 'vitest';
import { createHandler } from '../../functions/rotate-stytch-secret/handler.js';
import { StytchEmulator } from '../../infra/local/stytch/emulator.js';
import { SecretsManagerEmulator } from '../../infra/local/secrets-manager/index.js';

export const LAMBDA_ARN = 'arn:aws:lambda:us-east-1:123456789012:function:rotate-stytch-secret';
export const CREDENTIALS_SECRET = 'stytch/project-credentials';

export type Step = 'createSecret' | 'setSecret' | 'testSecret' | 'finishSecret';
export const STEPS: Step[] = ['createSecret', 'setSecret', 'testSecret', 'finishSecret'];

export interface WorldOptions {
  kind?: 'connected_app' | 'm2m';
  clientType?: 'first_party' | 'third_party' | 'first_party_public' | 'third_party_public';
  extraFields?: Record<string, unknown>;
  rotationEnabled?: boolean;
  maxAttempts?: number;
  env?: Record<string, string>;
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

export class World {
  readonly stytch = new StytchEmulator();
  readonly sm: SecretsManagerEmulator;
  readonly smClient = new SecretsManagerClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  readonly project: { projectId: string; secret: string };
  readonly client: { client_id: string; client_secret: string };
  readonly secretArn: string;
  readonly secretName = 'demo/stytch-client';
  /** aws-sdk-client-mock's view of every command the handler sent. */
  smMock!: AwsStub<object, MetadataBearer, unknown>;
  /** Every line the handler printed (logs and EMF metrics). */
  readonly output: string[] = [];
  /** Every error any invocation threw. */
  readonly errors: Error[] = [];
  handler: ReturnType<typeof createHandler>;
  private readonly env: Record<string, string>;

  constructor(private readonly options: WorldOptions = {}) {
    this.sm = new SecretsManagerEmulator({ maxAttempts: options.maxAttempts ?? 1 });
    const mock = mockClient(this.smClient);
    this.smMock = mock as unknown as AwsStub<object, MetadataBearer, unknown>;
    for (const [command, name] of [
      [DescribeSecretCommand, 'DescribeSecret'],
      [GetSecretValueCommand, 'GetSecretValue'],
      [PutSecretValueCommand, 'PutSecretValue'],
      [UpdateSecretVersionStageCommand, 'UpdateSecretVersionStage'],
    ] as const) {
      mock.on(command as never).callsFake((input: unknown) => this.sm.handle(name, input));
    }
    this.project = this.stytch.createProject();
    const created =
      options.kind === 'm2m'
        ? this.stytch.createM2MClient(this.project.projectId)
        : this.stytch.createConnectedApp(this.project.projectId, { clientType: options.clientType ?? 'first_party' });
    this.client = { client_id: created.client_id, client_secret: created.client_secret ?? 'public-client-has-no-secret' };
    this.env = {
      STYTCH_CREDENTIALS_SECRET_ID: CREDENTIALS_SECRET,
      STYTCH_API_BASE_URL: 'http://127.0.0.1:9',
      ...options.env,
    };
    this.handler = this.newContainer();
    this.secretArn = '';
  }

  /** Creates both secrets and registers the handler as the rotation Lambda. */
  async init(): Promise<this> {
    await this.sm.handle('CreateSecret', {
      Name: CREDENTIALS_SECRET,
      ClientRequestToken: randomUUID(),
      SecretString: JSON.stringify({ project_id: this.project.projectId, secret: this.project.secret }),
    });
    const created = (await this.sm.handle('CreateSecret', {
      Name: this.secretName,
      ClientRequestToken: randomUUID(),
      SecretString: JSON.stringify({ ...this.client, ...this.options.extraFields }),
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

  /** A fresh Lambda container: new caches, same environment. */
  newContainer(): ReturnType<typeof createHandler> {
    this.handler = createHandler({
      secretsManager: this.smClient,
      fetch: this.stytch.fetch,
      env: this.env,
      sleep: async () => undefined,
    });
    return this.handler;
  }

  /** Invokes the handler with any event, capturing its output; rethrows its error. */
  async invokeRaw(event: unknown, context: Context = fakeContext()): Promise<void> {
    const write = (chunk: unknown) => {
      this.output.push(String(chunk));
      return true;
    };
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(write as never);
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(write as never);
    try {
      await this.handler(event as never, context);
    } catch (error) {
      this.errors.push(error as Error);
      throw error;
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
  }

  invoke(step: Step, token: string, extra: Record<string, unknown> = {}): Promise<void> {
    return this.invokeRaw({ Step: step, SecretId: this.secretArn, ClientRequestToken: token, ...extra });
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

  /** Every secret this world has seen: the leak scan looks for each in all captured output and errors. */
  knownSecrets(extra: string[] = []): string[] {
    const values = new Set<string>([this.project.secret, this.client.client_secret, ...extra]);
    for (const v of Object.values(this.snapshot().versions)) {
      if (!v.secretString) continue;
      values.add(v.secretString);
      try {
        const parsed = JSON.parse(v.secretString) as Record<string, unknown>;
        if (typeof parsed.client_secret === 'string') values.add(parsed.client_secret);
        if (typeof parsed.secret === 'string') values.add(parsed.secret);
      } catch {
        // Not JSON: the whole value is what must not leak.
      }
    }
    return [...values].filter((s) => s.length >= 8);
  }

  leaks(extra: string[] = []): string[] {
    const haystack = [...this.output, ...this.errors.map((e) => `${e.message}\n${e.stack ?? ''}\n${String((e as { cause?: unknown }).cause ?? '')}`)].join('\n');
    return this.knownSecrets(extra).filter((s) => haystack.includes(s));
  }
}
