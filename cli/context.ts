import { DescribeSecretCommand, SecretsManagerClient, type DescribeSecretResponse } from '@aws-sdk/client-secrets-manager';
import { loadConfig, type FunctionConfig } from '../functions/lib/config.js';
import { parseSecretJson, rotatedSecretSchema, type RotatedSecret } from '../functions/lib/schemas.js';
import { AWSCURRENT, AWSPENDING, SecretStore, type SecretsManagerSend } from '../functions/lib/secrets/store.js';
import { CredentialsCache } from '../functions/lib/stytch/credentials.js';
import { StytchHttp, type FetchFn } from '../functions/lib/stytch/http.js';
import { clientKindOf, providerFor, type ClientProvider } from '../functions/lib/stytch/index.js';
import { CliError, type ErrorContext } from './errors.js';
import { CLIENT_LABELS, type RotationConfig, type Snapshot, type VersionValue, type VersionView } from './snapshot.js';

/**
 * The CLI's I/O: the same collaborators the function uses (SecretStore,
 * CredentialsCache, StytchHttp, providerFor), wired for an operator's shell
 * instead of a Lambda container. AWS configuration is the SDK's standard
 * chain (profile, region, AWS_ENDPOINT_URL_SECRETS_MANAGER, AWS_ENDPOINT_URL),
 * overridden only by explicit flags.
 */

export const AWSPREVIOUS = 'AWSPREVIOUS';

export interface AwsOptions {
  region?: string | undefined;
  profile?: string | undefined;
  endpointUrl?: string | undefined;
}

/** What the CLI takes from its surroundings; tests replace any of it. */
export interface Runtime {
  env: NodeJS.ProcessEnv;
  fetch: FetchFn;
  sleep: (ms: number) => Promise<void>;
  now: () => number;
  secretsManager: (options: AwsOptions) => SecretsManagerSend;
}

export const defaultRuntime = (): Runtime => ({
  env: process.env,
  fetch: (input, init) => globalThis.fetch(input, init),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  now: Date.now,
  secretsManager: (options) =>
    new SecretsManagerClient({
      maxAttempts: 3,
      ...(options.region ? { region: options.region } : {}),
      ...(options.profile ? { profile: options.profile } : {}),
      ...(options.endpointUrl ? { endpoint: options.endpointUrl } : {}),
    }),
});

/** Time any one command may spend on Stytch calls, retries included. */
const STYTCH_BUDGET_MS = 120_000;

export class Connection {
  readonly sm: SecretsManagerSend;
  readonly store: SecretStore;
  readonly config: FunctionConfig;
  private readonly credentials: CredentialsCache;

  constructor(
    readonly runtime: Runtime,
    aws: AwsOptions,
    /** --credentials-secret-id */
    private readonly credentialsFlag: string | undefined,
    /** Filled in as ids become known, so an error message can name them. */
    readonly errorContext: ErrorContext = {},
  ) {
    this.sm = runtime.secretsManager(aws);
    // No value cache across reads: the CLI re-reads to see what changed.
    this.store = new SecretStore(this.sm, { cacheTtlMs: 0 });
    this.config = loadConfig(runtime.env);
    this.credentials = new CredentialsCache((id) => this.store.getCurrent(id), { ttlMs: 60_000, envBaseUrl: this.config.apiBaseUrl, now: runtime.now });
  }

  /**
   * The Stytch credentials secret: --credentials-secret-id, else the secret's
   * own stytch_credentials_secret_id (which overrides the function's default,
   * DESIGN.md §2), else STYTCH_CREDENTIALS_SECRET_ID.
   */
  credentialsSecretId(secret: RotatedSecret): string {
    const id = this.credentialsFlag ?? secret.stytch_credentials_secret_id ?? this.config.credentialsSecretId;
    this.errorContext.credentialsSecretId = id;
    if (!id) {
      throw new CliError(
        'No Stytch credentials secret is known: pass --credentials-secret-id <id>, set STYTCH_CREDENTIALS_SECRET_ID (the function\'s setting), or add stytch_credentials_secret_id to the secret.',
      );
    }
    return id;
  }

  /** The Stytch client kind for a rotated secret; no call is made until a verb is used. */
  stytchFor(secret: RotatedSecret): ClientProvider {
    const http = new StytchHttp(this.credentials.source(this.credentialsSecretId(secret)), {
      fetch: this.runtime.fetch,
      deadline: this.runtime.now() + STYTCH_BUDGET_MS,
      requestTimeoutMs: this.config.requestTimeoutMs,
      maxAttempts: this.config.maxAttempts,
      sleep: this.runtime.sleep,
      now: this.runtime.now,
    });
    return providerFor(clientKindOf(secret), http);
  }

  async describe(secretId: string): Promise<DescribeSecretResponse> {
    return await this.sm.send(new DescribeSecretCommand({ SecretId: secretId }));
  }

  /** A version's value as a rotated secret (undefined when it has none); throws InvalidInputError when invalid. */
  async readSecret(arn: string, versionId: string, what: string): Promise<RotatedSecret | undefined> {
    const text = await this.store.getVersion(arn, versionId, { fresh: true });
    if (text === undefined) return undefined;
    return parseSecretJson(rotatedSecretSchema, text, what, 'It must be JSON with client_id and client_secret; fix it with aws secretsmanager put-secret-value.');
  }

  /** Everything `status` shows, read fresh: Secrets Manager first, then Stytch. */
  async snapshot(secretId: string): Promise<{ snapshot: Snapshot; current: RotatedSecret }> {
    const described = await this.describe(secretId);
    const arn = described.ARN ?? secretId;
    const name = described.Name ?? secretId;
    const stages = Object.entries(described.VersionIdsToStages ?? {}).map(([versionId, labels]) => ({ versionId, stages: labels ?? [] }));
    const holder = (stage: string) => stages.find((v) => v.stages.includes(stage));

    const currentEntry = holder(AWSCURRENT);
    if (!currentEntry) throw new CliError(`Secret ${name} has no AWSCURRENT version: put the client's current secret into it (aws secretsmanager put-secret-value).`);
    const current = await this.readSecret(arn, currentEntry.versionId, `The AWSCURRENT value of secret ${name}`);
    if (!current) throw new CliError(`Secret ${name} has no value under AWSCURRENT: put the client's current secret into it (aws secretsmanager put-secret-value).`);

    const pendingEntry = holder(AWSPENDING);
    const pendingOnCurrent = pendingEntry?.versionId === currentEntry.versionId;
    const pending = pendingEntry && !pendingOnCurrent ? await this.view(arn, pendingEntry) : undefined;
    const previousEntry = holder(AWSPREVIOUS);
    const previous = previousEntry ? await this.view(arn, previousEntry) : undefined;

    const provider = this.stytchFor(current);
    const state = await provider.get(current.client_id);
    if (!state.confidential) {
      throw new CliError(
        `${CLIENT_LABELS[provider.kind]} ${current.client_id} is a public client (${state.clientType ?? 'no client_type'}) and has no secret to rotate; only confidential clients (first_party, third_party) belong in a rotated secret.`,
      );
    }
    const snapshot: Snapshot = {
      secretId,
      name,
      arn,
      rotation: rotationOf(described),
      current: { ...currentEntry, value: { kind: 'value', clientId: current.client_id, last4: current.client_secret.slice(-4) } },
      pending,
      pendingOnCurrent,
      previous,
      client: { id: current.client_id, kind: provider.kind },
      stytch: { secretLast4: state.secretLast4, nextSecretLast4: state.nextSecretLast4 },
    };
    return { snapshot, current };
  }

  private async view(arn: string, entry: { versionId: string; stages: string[] }): Promise<VersionView> {
    const text = await this.store.getVersion(arn, entry.versionId, { fresh: true });
    return { ...entry, value: reduce(text) };
  }
}

/** A value reduced to its client and last four; never keeps the secret (V). */
export function reduce(text: string | undefined): VersionValue {
  if (text === undefined) return { kind: 'none' };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'invalid', reason: 'not JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { kind: 'invalid', reason: 'not a JSON object' };
  const parsed = rotatedSecretSchema.safeParse(value);
  if (!parsed.success) {
    const fields = [...new Set(parsed.error.issues.map((issue) => issue.path.map(String).join('.') || 'value'))];
    return { kind: 'invalid', reason: `invalid ${fields.join(', ')}` };
  }
  return { kind: 'value', clientId: parsed.data.client_id, last4: parsed.data.client_secret.slice(-4) };
}

function isoDate(date: Date | undefined): string | undefined {
  return date ? date.toISOString().replace(/\.\d{3}Z$/, 'Z') : undefined;
}

export function rotationOf(described: DescribeSecretResponse): RotationConfig {
  const rules = described.RotationRules;
  const every = rules?.ScheduleExpression ?? (rules?.AutomaticallyAfterDays ? `rate(${rules.AutomaticallyAfterDays} days)` : undefined);
  return {
    enabled: described.RotationEnabled === true,
    lambdaArn: described.RotationLambdaARN,
    schedule: every ? `${every}${rules?.Duration ? `, window ${rules.Duration}` : ''}` : undefined,
    lastRotatedDate: isoDate(described.LastRotatedDate),
    nextRotationDate: isoDate(described.NextRotationDate),
  };
}
