import { randomUUID } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeSecretCommand, SecretsManagerClient, type DescribeSecretResponse } from '@aws-sdk/client-secrets-manager';
import { loadConfig, type FunctionConfig } from '../functions/lib/config.js';
import { parseSecretJson, rotatedSecretSchema, type RotatedSecret } from '../functions/lib/schemas.js';
import { AWSCURRENT, AWSPENDING, SecretStore, type SecretsManagerSend } from '../functions/lib/secrets/store.js';
import { LEASE_MARGIN_MS, type HeldLease } from '../functions/lib/state/lease.js';
import { StateTable, type Binding, type DynamoDBSend } from '../functions/lib/state/table.js';
import { CredentialsCache } from '../functions/lib/stytch/credentials.js';
import { StytchHttp, type FetchFn } from '../functions/lib/stytch/http.js';
import { clientKindOf, providerFor, type ClientProvider } from '../functions/lib/stytch/index.js';
import { AwsClock } from './clock.js';
import { CliError, explainError, type ErrorContext } from './errors.js';
import { CLIENT_LABELS, type RotationConfig, type Snapshot, type StateView, type VersionValue, type VersionView } from './snapshot.js';
import type { Output } from './io.js';
import { explainTableError, NO_STATE_TABLE, underClientLease, type LeasedResult } from './state.js';

/**
 * The CLI's I/O: the same collaborators the function uses (SecretStore,
 * CredentialsCache, StytchHttp, providerFor, StateTable), wired for an
 * operator's shell instead of a Lambda container. AWS configuration is the
 * SDK's standard chain (profile, region, AWS_ENDPOINT_URL_SECRETS_MANAGER,
 * AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL), overridden only by explicit flags.
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
  /** Jitter of the wait for a held lease. */
  random: () => number;
  secretsManager: (options: AwsOptions) => SecretsManagerSend;
  /** The state table's DynamoDB (the local stack serves it on the Secrets Manager port, hence one --endpoint-url). */
  dynamoDB: (options: AwsOptions) => DynamoDBSend;
}

const clientConfig = (options: AwsOptions) => ({
  maxAttempts: 3,
  ...(options.region ? { region: options.region } : {}),
  ...(options.profile ? { profile: options.profile } : {}),
  ...(options.endpointUrl ? { endpoint: options.endpointUrl } : {}),
});

export const defaultRuntime = (): Runtime => ({
  env: process.env,
  fetch: (input, init) => globalThis.fetch(input, init),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  now: Date.now,
  random: Math.random,
  secretsManager: (options) => new SecretsManagerClient(clientConfig(options)),
  dynamoDB: (options) => new DynamoDBClient(clientConfig(options)),
});

/** Time any one command may spend on Stytch calls, retries included; a lease the CLI takes lasts this long plus the margin (VI). */
export const STYTCH_BUDGET_MS = 120_000;

/** Who holds a lease the CLI takes, as status shows it: user, host and a unique suffix. */
function operatorHolder(): string {
  let who = 'operator';
  try {
    who = `${userInfo().username}@${hostname()}`;
  } catch {
    // No user database (some containers): the suffix still makes it unique.
  }
  return `cli:${who}/${randomUUID()}`;
}

/** The flags every command shares that decide what the CLI connects to. */
export interface ConnectionFlags {
  aws: AwsOptions;
  credentialsSecretId: string | undefined;
  stateTable: string | undefined;
}

export class Connection {
  /** A connection for a command's parsed flags. */
  static for(runtime: Runtime, flags: ConnectionFlags, errorContext: ErrorContext): Connection {
    return new Connection(runtime, flags.aws, flags.credentialsSecretId, errorContext, flags.stateTable);
  }

  readonly sm: SecretsManagerSend;
  readonly store: SecretStore;
  readonly config: FunctionConfig;
  /** The function's state table; undefined when none is named (--state-table, ROTATION_STATE_TABLE). */
  readonly state: StateTable | undefined;
  /** This command's name for the leases it takes. */
  readonly holder = operatorHolder();
  private readonly credentials: CredentialsCache;

  /** The command's runtime, its clock AWS's (see AwsClock): leases and deadlines are counted on it. */
  readonly runtime: Runtime;
  /** AWS's clock as measured from its answers. */
  readonly clock: AwsClock;

  constructor(
    runtime: Runtime,
    aws: AwsOptions,
    /** --credentials-secret-id */
    private readonly credentialsFlag: string | undefined,
    /** Filled in as ids become known, so an error message can name them. */
    readonly errorContext: ErrorContext = {},
    /** --state-table */
    stateTableFlag?: string,
  ) {
    this.clock = new AwsClock(runtime.now);
    this.runtime = { ...runtime, now: this.clock.now };
    this.sm = this.clock.watch(runtime.secretsManager(aws));
    // No value cache across reads: the CLI re-reads to see what changed.
    this.store = new SecretStore(this.sm, { cacheTtlMs: 0 });
    this.config = loadConfig(runtime.env);
    this.credentials = new CredentialsCache((id) => this.store.getCurrent(id), { ttlMs: 60_000, envBaseUrl: this.config.apiBaseUrl, now: this.runtime.now });
    const table = stateTableFlag ?? this.config.stateTableName;
    this.state = table ? new StateTable(this.clock.watch(runtime.dynamoDB(aws)), table, explainTableError) : undefined;
  }

  /** The state table, for a command that changes something: only under a lease in it (VI), so it refuses without one. */
  requireState(command: string): StateTable {
    if (this.state) return this.state;
    throw new CliError(
      `${command} needs the function's state table, and none is named: it changes a Stytch client or a binding only while holding the client's lease there, and reads bindings and overlap windows from it. ${NO_STATE_TABLE}`,
    );
  }

  /**
   * Runs `work` holding the lease on `binding`'s client (VI), waiting briefly
   * if someone else holds it. Stytch calls made inside must use
   * `leaseDeadline(lease)`, so none outlives the lease.
   */
  async underLease<T>(binding: Binding, command: string, io: Output, work: (lease: HeldLease) => Promise<LeasedResult<T>>): Promise<T> {
    const { now, sleep, random } = this.runtime;
    const options = { holder: this.holder, what: `${command} (operator CLI)`, budgetMs: STYTCH_BUDGET_MS, command, io, clock: { now, sleep, random } };
    return await underClientLease(this.requireState(command), binding, options, work);
  }

  /** Stytch calls under `lease` end by this time: its end less the margin for a request in flight (VI). */
  leaseDeadline(lease: HeldLease): number {
    return lease.until - LEASE_MARGIN_MS;
  }

  /** The Stytch project of the credentials a value uses: part of the binding (VII). */
  async projectOf(secret: RotatedSecret): Promise<string> {
    return (await this.credentials.source(this.credentialsSecretId(secret)).get()).projectId;
  }

  /** What a value asks to be bound to: its secret, client, project and credentials (VII), as the function computes it. */
  async bindingOf(arn: string, secret: RotatedSecret): Promise<Binding> {
    return {
      secretArn: arn,
      projectId: await this.projectOf(secret),
      clientId: secret.client_id,
      credentialsSecretId: secret.stytch_credentials_secret_id,
      kind: clientKindOf(secret),
    };
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

  /**
   * The Stytch client kind for a rotated secret; no call is made until a verb
   * is used. Under a lease, `deadline` is the lease's end less its margin, so
   * no request outlives the lease (VI).
   */
  stytchFor(secret: RotatedSecret, deadline = this.runtime.now() + STYTCH_BUDGET_MS): ClientProvider {
    const http = new StytchHttp(this.credentials.source(this.credentialsSecretId(secret)), {
      fetch: this.runtime.fetch,
      deadline,
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

  /** The AWSCURRENT value and where it lives, without reading Stytch. */
  async readCurrent(secretId: string): Promise<{ arn: string; name: string; versionId: string; current: RotatedSecret }> {
    const described = await this.describe(secretId);
    const arn = described.ARN ?? secretId;
    const name = described.Name ?? secretId;
    const versionId = Object.entries(described.VersionIdsToStages ?? {}).find(([, labels]) => labels?.includes(AWSCURRENT))?.[0];
    if (!versionId) throw new CliError(`Secret ${name} has no AWSCURRENT version: put the client's current secret into it (aws secretsmanager put-secret-value).`);
    const current = await this.readSecret(arn, versionId, `The AWSCURRENT value of secret ${name}`);
    if (!current) throw new CliError(`Secret ${name} has no value under AWSCURRENT: put the client's current secret into it (aws secretsmanager put-secret-value).`);
    return { arn, name, versionId, current };
  }

  /**
   * Everything `status` shows, read fresh: Secrets Manager, then Stytch, then
   * the state table. A table that cannot be read leaves the state `unknown`
   * (status stays useful), unless `strictState`: a command that acts on it
   * must see it. `deadline` bounds the Stytch calls (see stytchFor).
   */
  async snapshot(secretId: string, options: { strictState?: boolean; deadline?: number } = {}): Promise<{ snapshot: Snapshot; current: RotatedSecret }> {
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
    const pending = pendingEntry && !pendingOnCurrent ? await this.view(arn, pendingEntry, current) : undefined;
    const previousEntry = holder(AWSPREVIOUS);
    const previous = previousEntry ? await this.view(arn, previousEntry) : undefined;

    const provider = this.stytchFor(current, options.deadline);
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
      state: await this.stateView(arn, current, options.strictState === true),
      readAt: this.runtime.now(),
    };
    return { snapshot, current };
  }

  /** The state table's view of this secret and the client its value names: two consistent reads. */
  private async stateView(arn: string, current: RotatedSecret, strict: boolean): Promise<StateView> {
    const table = this.state;
    if (!table) return { kind: 'unknown', reason: `no state table is named. ${NO_STATE_TABLE}` };
    try {
      const valueNames = await this.bindingOf(arn, current);
      const [binding, client] = await Promise.all([table.readSecretBinding(arn), table.readClient(valueNames)]);
      return {
        kind: 'read',
        table: table.tableName,
        valueNames: { clientId: valueNames.clientId, projectId: valueNames.projectId, credentialsSecretId: valueNames.credentialsSecretId },
        binding: binding && { clientId: binding.clientId, projectId: binding.projectId, credentialsSecretId: binding.credentialsSecretId, boundAt: binding.boundAt },
        clientBinding: client?.binding && { ...client.binding, boundAt: client.boundAt },
        lease: client?.lease,
        retirement: client?.retirement,
      };
    } catch (error) {
      if (strict) throw error;
      return { kind: 'unknown', reason: `the state table ${table.tableName} could not be read: ${explainError(error, this.errorContext)}` };
    }
  }

  private async view(arn: string, entry: { versionId: string; stages: string[] }, current?: RotatedSecret): Promise<VersionView> {
    const text = await this.store.getVersion(arn, entry.versionId, { fresh: true });
    return { ...entry, value: reduce(text, current) };
  }
}

/**
 * A value reduced to its client and last four; never keeps the secret (V).
 * Compared with `current` (AWSCURRENT's value), a pending copy of it is
 * flagged: the function refuses one, since it is not a new secret.
 */
export function reduce(text: string | undefined, current?: RotatedSecret): VersionValue {
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
  const reduced: Extract<VersionValue, { kind: 'value' }> = { kind: 'value', clientId: parsed.data.client_id, last4: parsed.data.client_secret.slice(-4) };
  if (current && parsed.data.client_id === current.client_id && parsed.data.client_secret === current.client_secret) reduced.copyOfCurrent = true;
  return reduced;
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
