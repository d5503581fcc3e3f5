/**
 * The local stack: the Stytch and Secrets Manager emulators on loopback, and
 * the BUILT rotation function (dist/rotate-stytch-secret/index.mjs) registered
 * as the rotation Lambda, reaching Secrets Manager through its own bundled AWS
 * SDK via AWS_ENDPOINT_URL_SECRETS_MANAGER, exactly as it would in AWS.
 * Depends on the built function, never the other way round.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { lambdaContext } from './lambda-context.js';
import { SecretsManagerEmulator, type RotationEvent } from './secrets-manager/index.js';
import { StytchEmulator } from './stytch/emulator.js';

export const LOCAL_LAMBDA_ARN = 'arn:aws:lambda:us-east-1:123456789012:function:stytch-secret-rotation-local';
export const CREDENTIALS_SECRET_NAME = 'stytch/project-credentials';
export const DEFAULT_BUNDLE = resolve('dist/rotate-stytch-secret/index.mjs');

type Handler = (event: unknown, context: unknown) => Promise<unknown>;

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
  private handler: Handler | undefined;

  private constructor(
    readonly stytch: StytchEmulator,
    readonly sm: SecretsManagerEmulator,
    readonly stytchUrl: string,
    readonly secretsManagerUrl: string,
    readonly project: { projectId: string; secret: string },
    private readonly closers: Array<() => Promise<void>>,
    private readonly options: LocalStackOptions,
  ) {}

  static async start(options: LocalStackOptions = {}): Promise<LocalStack> {
    const bundle = options.bundlePath ?? DEFAULT_BUNDLE;
    if (!existsSync(bundle)) throw new Error(`The built function is missing (${bundle}): run npm run build first.`);
    const stytch = new StytchEmulator();
    const sm = new SecretsManagerEmulator({ maxAttempts: options.maxAttempts ?? 3 });
    const stytchServer = await stytch.listen({ port: options.stytchPort ?? 0 });
    const smServer = await sm.listen({ port: options.secretsManagerPort ?? 0 }).catch(async (error: unknown) => {
      await stytchServer.close(); // a half-started stack must not keep the process alive
      throw error;
    });
    const project = stytch.createProject();
    const stack = new LocalStack(stytch, sm, stytchServer.url, smServer.url, project, [stytchServer.close, smServer.close], options);

    await sm.handle('CreateSecret', {
      Name: CREDENTIALS_SECRET_NAME,
      ClientRequestToken: randomUUID(),
      Description: 'Stytch project credentials used by the rotation function (local stack)',
      SecretString: JSON.stringify({ project_id: project.projectId, secret: project.secret, base_url: stytchServer.url }),
    });
    // The function reads its configuration from the environment, as in Lambda.
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_SECRETS_MANAGER: smServer.url,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      STYTCH_CREDENTIALS_SECRET_ID: CREDENTIALS_SECRET_NAME,
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
    const url = `${pathToFileURL(bundle).href}?container=${++containerCount}`;
    const mod = (await import(url)) as { handler: Handler };
    this.handler = mod.handler;
  }

  /** Invokes the function as Lambda would, capturing what it prints. */
  async invoke(event: RotationEvent | Record<string, unknown>): Promise<void> {
    const started = performance.now();
    const step = String((event as { Step?: unknown }).Step);
    const restore = this.captureOutput();
    try {
      await this.handler!(event, lambdaContext({ functionArn: LOCAL_LAMBDA_ARN, timeoutMs: this.options.timeoutMs ?? 60_000 }));
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
   * Every secret value the stack holds: the project secret, and the
   * client_secret / secret / whole value of every version of every secret in
   * the Secrets Manager emulator. Values shorter than 8 characters are left
   * out (they would match by chance).
   */
  async knownSecrets(): Promise<KnownSecret[]> {
    const found = new Map<string, string>([[this.project.secret, 'the Stytch project secret']]);
    const add = (value: unknown, label: string) => {
      if (typeof value === 'string' && value.length >= 8 && !found.has(value)) found.set(value, label);
    };
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
