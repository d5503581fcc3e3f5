import { randomUUID } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { DescribeSecretCommand, SecretsManagerClient, type DescribeSecretResponse } from '@aws-sdk/client-secrets-manager';
import { loadConfig, type FunctionConfig } from '../functions/lib/config.js';
import { parseSecretJson, rotatedSecretSchema, type ClientKind, type RotatedSecret } from '../functions/lib/schemas.js';
import { StytchApiError } from '../functions/lib/errors.js';
import { AWSCURRENT, AWSPENDING, SecretStore, type SecretsManagerSend } from '../functions/lib/secrets/store.js';
import { LEASE_MARGIN_MS, type HeldLease } from '../functions/lib/state/lease.js';
import { StateTable, type Binding, type DynamoDBSend } from '../functions/lib/state/table.js';
import { CredentialsCache } from '../functions/lib/stytch/credentials.js';
import { StytchHttp, type FetchFn } from '../functions/lib/stytch/http.js';
import { clientKindOf, providerFor, type ClientProvider } from '../functions/lib/stytch/index.js';
import { createManagementApi, managementCredentialsSource, type ManagementApi } from '../functions/lib/stytch/management.js';
import { AwsClock } from './clock.js';
import { CliError, explainError, networkErrorCode, type ErrorContext } from './errors.js';
import { readFunctionSettings, regionFrom, type FunctionLookup, type LambdaSend } from './locate.js';
import { CLIENT_LABELS, isComplete, type RotationConfig, type Snapshot, type StateView, type Survey, type SurveyProblem, type VersionValue, type VersionView } from './snapshot.js';
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
  /** Lambda, to read the rotation function's settings (the local stack serves it on the same port too). */
  lambda: (options: AwsOptions) => LambdaSend;
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
  lambda: (options) => new LambdaClient(clientConfig(options)),
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
  /** --function-name: the rotation function whose settings name the credentials secret and the state table. */
  functionName?: string | undefined;
}

export class Connection {
  /** A connection for a command's parsed flags. */
  static for(runtime: Runtime, flags: ConnectionFlags, errorContext: ErrorContext): Connection {
    return new Connection(runtime, flags, errorContext);
  }

  readonly sm: SecretsManagerSend;
  readonly store: SecretStore;
  readonly config: FunctionConfig;
  /** This command's name for the leases it takes. */
  readonly holder = operatorHolder();
  private readonly credentials: CredentialsCache;
  private readonly lambda: LambdaSend;
  private readonly dynamo: DynamoDBSend;
  private readonly flags: ConnectionFlags;
  /** The rotation function's settings, read once when the flags and environment leave something unknown. */
  private lookup: Promise<FunctionLookup> | undefined;
  private table: { name: string; source: string; table: StateTable } | null | undefined;

  /** The command's runtime, its clock AWS's (see AwsClock): leases and deadlines are counted on it. */
  readonly runtime: Runtime;
  /** AWS's clock as measured from its answers. */
  readonly clock: AwsClock;

  constructor(
    runtime: Runtime,
    flags: ConnectionFlags,
    /** Filled in as ids become known, so an error message can name them. */
    readonly errorContext: ErrorContext = {},
  ) {
    // AWS_DEFAULT_REGION as the AWS CLI reads it: the JS SDK alone ignores it.
    const aws = { ...flags.aws, region: regionFrom(flags.aws.region, runtime.env) };
    // Each service's endpoint as the SDK picks it, read from this runtime's environment: --endpoint-url,
    // AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL; else the SDK's own (AWS, or a profile's endpoint_url).
    const endpoint = (service: string) => ({
      ...aws,
      endpointUrl: aws.endpointUrl ?? (runtime.env[`AWS_ENDPOINT_URL_${service}`] || undefined) ?? (runtime.env.AWS_ENDPOINT_URL || undefined),
    });
    this.flags = { ...flags, aws };
    this.clock = new AwsClock(runtime.now);
    this.runtime = { ...runtime, now: this.clock.now };
    this.sm = this.clock.watch(runtime.secretsManager(endpoint('SECRETS_MANAGER')));
    this.lambda = runtime.lambda(endpoint('LAMBDA'));
    this.dynamo = this.clock.watch(runtime.dynamoDB(endpoint('DYNAMODB')));
    // No value cache across reads: the CLI re-reads to see what changed.
    this.store = new SecretStore(this.sm, { cacheTtlMs: 0 });
    this.config = loadConfig(runtime.env);
    this.credentials = new CredentialsCache((id) => this.store.getCurrent(id), {
      ttlMs: 60_000,
      envBaseUrl: this.config.apiBaseUrl,
      now: this.runtime.now,
    });
  }

  /**
   * The rotation function's settings: --function-name, else the secret's
   * rotation function (RotationLambdaARN). Read at most once, and only when
   * asked for; a failure is kept as a reason, never thrown.
   */
  private functionSettings(rotationLambdaArn: string | undefined): Promise<FunctionLookup> {
    const name = this.flags.functionName ?? rotationLambdaArn;
    if (!name) return Promise.resolve({ kind: 'none' });
    this.lookup ??= readFunctionSettings(this.lambda, name);
    return this.lookup;
  }

  /**
   * The function's state table: --state-table, else ROTATION_STATE_TABLE, else
   * the rotation function's own ROTATION_STATE_TABLE. Undefined when none is found.
   */
  async stateTable(rotationLambdaArn?: string): Promise<StateTable | undefined> {
    if (this.table === undefined) {
      let found: { name: string; source: string } | undefined;
      if (this.flags.stateTable) found = { name: this.flags.stateTable, source: '--state-table' };
      else if (this.config.stateTableName) found = { name: this.config.stateTableName, source: 'ROTATION_STATE_TABLE' };
      else {
        const lookup = await this.functionSettings(rotationLambdaArn);
        if (lookup.kind === 'read' && lookup.settings.stateTable) {
          found = { name: lookup.settings.stateTable, source: `the ROTATION_STATE_TABLE of function ${lookup.settings.functionName}` };
        }
      }
      this.table = found ? { ...found, table: new StateTable(this.dynamo, found.name, explainTableError) } : null;
    }
    return this.table?.table;
  }

  /** Why no state table is known: the fix, and what the rotation function's lookup said. */
  private async noTableReason(rotationLambdaArn: string | undefined): Promise<string> {
    const lookup = await this.functionSettings(rotationLambdaArn);
    const tried = lookup.kind === 'failed' ? ` The rotation function's configuration could not be read: ${lookup.reason}.` : '';
    return `${NO_STATE_TABLE}${tried}`;
  }

  /** The state table, for a command that changes something: only under a lease in it (VI), so it refuses without one. */
  async requireState(command: string, secretId: string): Promise<StateTable> {
    if (this.table) return this.table.table;
    const described = await this.describe(secretId);
    const table = await this.stateTable(described.RotationLambdaARN);
    if (table) return table;
    throw new CliError(
      `${command} needs the function's state table, and none is named. It changes a Stytch client or a binding only while holding the client's lease there. ${await this.noTableReason(described.RotationLambdaARN)}`,
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
    return await underClientLease(await this.requireState(command, binding.secretArn), binding, options, work);
  }

  /** Stytch calls under `lease` end by this time: its end less the margin for a request in flight (VI). */
  leaseDeadline(lease: HeldLease): number {
    return lease.until - LEASE_MARGIN_MS;
  }

  /** The Stytch project of the credentials a value uses: part of the binding (VII). */
  async projectOf(secret: RotatedSecret): Promise<string> {
    const { id } = await this.credentialsSecret(secret);
    return (await this.credentials.source(id).get()).projectId;
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
   * The Stytch credentials secret and where it was found: --credentials-secret-id;
   * the value's own stytch_credentials_secret_id (which overrides the function's
   * default); with no readable value, the secret's binding in the state table;
   * STYTCH_CREDENTIALS_SECRET_ID; else the rotation function's own setting.
   */
  async credentialsSecret(secret: RotatedSecret | undefined, binding?: Binding, rotationLambdaArn?: string): Promise<{ id: string; source: string }> {
    const found = await this.findCredentialsSecret(secret, binding, rotationLambdaArn);
    if ('reason' in found) throw new CliError(found.reason);
    return found;
  }

  private async findCredentialsSecret(
    secret: RotatedSecret | undefined,
    binding: Binding | undefined,
    rotationLambdaArn: string | undefined,
  ): Promise<{ id: string; source: string } | { reason: string }> {
    const pick = (id: string, source: string) => {
      this.errorContext.credentialsSecretId = id;
      return { id, source };
    };
    if (this.flags.credentialsSecretId) return pick(this.flags.credentialsSecretId, '--credentials-secret-id');
    if (secret?.stytch_credentials_secret_id) return pick(secret.stytch_credentials_secret_id, "the value's stytch_credentials_secret_id");
    if (!secret && binding?.credentialsSecretId) return pick(binding.credentialsSecretId, "the secret's binding in the state table");
    if (this.config.credentialsSecretId) return pick(this.config.credentialsSecretId, 'STYTCH_CREDENTIALS_SECRET_ID');
    const lookup = await this.functionSettings(rotationLambdaArn ?? this.lastRotationLambdaArn);
    if (lookup.kind === 'read' && lookup.settings.credentialsSecretId) {
      return pick(lookup.settings.credentialsSecretId, `the STYTCH_CREDENTIALS_SECRET_ID of function ${lookup.settings.functionName}`);
    }
    const tried =
      lookup.kind === 'failed'
        ? ` The rotation function's configuration could not be read: ${lookup.reason}.`
        : lookup.kind === 'none'
          ? ' The secret has no rotation function to ask.'
          : ` Function ${lookup.settings.functionName} has no STYTCH_CREDENTIALS_SECRET_ID.`;
    return {
      reason:
        'No Stytch credentials secret is known. Pass --credentials-secret-id ID, or --function-name NAME (the rotation function, whose settings name it), ' +
        `or set STYTCH_CREDENTIALS_SECRET_ID.${tried}`,
    };
  }

  /**
   * Stytch's management API with the workspace key, for a project secret: --management-credentials-secret-id,
   * else STYTCH_MANAGEMENT_CREDENTIALS_SECRET_ID, else the rotation function's own setting.
   */
  async management(flag: string | undefined, rotationLambdaArn: string | undefined): Promise<{ api: ManagementApi; id: string; source: string } | { reason: string }> {
    let found: { id: string; source: string; baseUrl: string | undefined } | undefined;
    if (flag) found = { id: flag, source: '--management-credentials-secret-id', baseUrl: this.config.managementBaseUrl };
    else if (this.config.managementCredentialsSecretId) {
      found = { id: this.config.managementCredentialsSecretId, source: 'STYTCH_MANAGEMENT_CREDENTIALS_SECRET_ID', baseUrl: this.config.managementBaseUrl };
    } else {
      const lookup = await this.functionSettings(rotationLambdaArn);
      if (lookup.kind === 'read' && lookup.settings.managementCredentialsSecretId) {
        found = {
          id: lookup.settings.managementCredentialsSecretId,
          source: `the STYTCH_MANAGEMENT_CREDENTIALS_SECRET_ID of function ${lookup.settings.functionName}`,
          baseUrl: this.config.managementBaseUrl ?? lookup.settings.managementBaseUrl,
        };
      }
    }
    if (!found) {
      return {
        reason:
          'No Stytch management key is known, so the project\'s secrets cannot be listed. Pass --management-credentials-secret-id ID, or --function-name NAME ' +
          '(the rotation function, whose settings name it), or set STYTCH_MANAGEMENT_CREDENTIALS_SECRET_ID.',
      };
    }
    const source = managementCredentialsSource((id) => this.store.getCurrent(id), found.id, { envBaseUrl: found.baseUrl, ttlMs: 60_000, now: this.runtime.now });
    const http = new StytchHttp(source, {
      fetch: this.runtime.fetch,
      deadline: this.runtime.now() + STYTCH_BUDGET_MS,
      requestTimeoutMs: this.config.requestTimeoutMs,
      maxAttempts: this.config.maxAttempts,
      sleep: this.runtime.sleep,
      now: this.runtime.now,
    });
    return { api: createManagementApi(http), id: found.id, source: found.source };
  }

  /** The rotation function of the secret last described: where the function's settings are read from. */
  private lastRotationLambdaArn: string | undefined;

  /**
   * A Stytch client for a rotated secret's kind; no call is made until a verb
   * is used. Under a lease, `deadline` is the lease's end less its margin, so
   * no request outlives the lease (VI).
   */
  async stytchFor(secret: RotatedSecret, deadline = this.runtime.now() + STYTCH_BUDGET_MS): Promise<ClientProvider> {
    const { id } = await this.credentialsSecret(secret);
    return this.providerFor(id, clientKindOf(secret), deadline);
  }

  private providerFor(credentialsSecretId: string, kind: ClientKind, deadline: number): ClientProvider {
    const http = new StytchHttp(this.credentials.source(credentialsSecretId), {
      fetch: this.runtime.fetch,
      deadline,
      requestTimeoutMs: this.config.requestTimeoutMs,
      maxAttempts: this.config.maxAttempts,
      sleep: this.runtime.sleep,
      now: this.runtime.now,
    });
    return providerFor(kind, http);
  }

  async describe(secretId: string): Promise<DescribeSecretResponse> {
    const described = await this.sm.send(new DescribeSecretCommand({ SecretId: secretId }));
    this.lastRotationLambdaArn = described.RotationLambdaARN;
    return described;
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
    if (!versionId) throw new CliError(`Secret ${name} has no AWSCURRENT version. Put the client's current secret into it: aws secretsmanager put-secret-value.`);
    const current = await this.readSecret(arn, versionId, `The AWSCURRENT value of secret ${name}`);
    if (!current) throw new CliError(`Secret ${name} has no value under AWSCURRENT. Put the client's current secret into it: aws secretsmanager put-secret-value.`);
    return { arn, name, versionId, current };
  }

  /**
   * Everything a command that acts needs, read fresh; it stops at the first
   * part it could not read (status shows them all: see survey). A table
   * that cannot be read leaves the state `unknown`, unless `strictState`: a
   * command that acts on it must see it. `deadline` bounds the Stytch calls.
   */
  async snapshot(secretId: string, options: { strictState?: boolean; deadline?: number } = {}): Promise<{ snapshot: Snapshot; current: RotatedSecret }> {
    const { survey, current, stateError } = await this.read(secretId, options);
    const blocker = survey.problems?.[0];
    if (blocker) throw new CliError(blocker.message, { cause: blocker.cause });
    if (options.strictState === true && stateError !== undefined) throw stateError;
    if (!isComplete(survey) || !current) {
      const value = survey.current?.value;
      throw new CliError(
        !survey.current
          ? `Secret ${survey.name} has no AWSCURRENT version. Run status for the fix.`
          : value?.kind === 'invalid'
            ? `The AWSCURRENT value of secret ${survey.name} is not a rotated secret (${value.reason}). Run status for the fix.`
            : `Secret ${survey.name} has no value under AWSCURRENT. Run status for the fix.`,
      );
    }
    return { snapshot: survey, current };
  }

  /**
   * What status shows: everything that could be read. Secrets Manager's
   * versions, the state table's binding, then Stytch through the client the
   * value (or, for a broken value, the binding) names. A part that cannot be
   * read is a problem in the survey, never an exception; only a secret that
   * cannot be described at all throws.
   */
  async survey(secretId: string, options: { deadline?: number } = {}): Promise<Survey> {
    return (await this.read(secretId, options)).survey;
  }

  private async read(secretId: string, options: { deadline?: number }): Promise<{ survey: Survey; current: RotatedSecret | undefined; stateError: unknown }> {
    const described = await this.describe(secretId);
    const arn = described.ARN ?? secretId;
    const name = described.Name ?? secretId;
    const lambdaArn = described.RotationLambdaARN;
    const stages = Object.entries(described.VersionIdsToStages ?? {}).map(([versionId, labels]) => ({ versionId, stages: labels ?? [] }));
    const holder = (stage: string) => stages.find((v) => v.stages.includes(stage));
    const problems: SurveyProblem[] = [];

    const currentEntry = holder(AWSCURRENT);
    const currentRead = currentEntry ? parseValue(await this.store.getVersion(arn, currentEntry.versionId, { fresh: true })) : undefined;
    const current = currentRead?.secret;
    const currentView = currentEntry && currentRead ? { ...currentEntry, value: currentRead.value } : undefined;
    const pendingEntry = holder(AWSPENDING);
    const pendingOnCurrent = pendingEntry !== undefined && pendingEntry.versionId === currentEntry?.versionId;
    const pending = pendingEntry && !pendingOnCurrent ? await this.view(arn, pendingEntry, current) : undefined;
    const previousEntry = holder(AWSPREVIOUS);
    const previous = previousEntry ? await this.view(arn, previousEntry) : undefined;

    // The binding first: it names the client when AWSCURRENT cannot.
    let stateError: unknown;
    const table = await this.stateTable(lambdaArn);
    let bound: (Binding & { boundAt: string | undefined }) | undefined;
    let state: StateView = { kind: 'unknown', reason: `no state table is named. ${await this.noTableReason(lambdaArn)}` };
    if (table) {
      try {
        bound = await table.readSecretBinding(arn);
      } catch (error) {
        stateError = error;
        state = { kind: 'unknown', reason: `the state table ${table.tableName} could not be read: ${explainError(error, this.errorContext)}` };
      }
    }

    let client: Survey['client'];
    if (current) {
      try {
        client = { id: current.client_id, kind: clientKindOf(current) };
      } catch (error) {
        problems.push({ kind: 'client-kind-unknown', message: explainError(error), cause: error });
      }
    } else if (bound) {
      const kind = bound.kind === 'project_secret' ? undefined : bound.kind;
      client = { id: bound.clientId, kind: kind ?? (bound.clientId.startsWith('m2m-client-') ? 'm2m' : 'connected_app') };
    }

    let stytch: Survey['stytch'];
    let projectId: string | undefined;
    let credentials: Survey['credentials'];
    if (client) {
      const found = await this.findCredentialsSecret(current, bound, lambdaArn);
      if ('reason' in found) {
        problems.push({ kind: 'credentials-unknown', message: found.reason });
      } else {
        credentials = found;
        try {
          projectId = (await this.credentials.source(found.id).get()).projectId;
        } catch (error) {
          problems.push({ kind: 'credentials-unreadable', message: explainError(error, this.errorContext), credentialsSecretId: found.id, cause: error });
        }
        if (projectId !== undefined) {
          try {
            const provider = this.providerFor(found.id, client.kind, options.deadline ?? this.runtime.now() + STYTCH_BUDGET_MS);
            const got = await provider.get(client.id);
            if (got.confidential) stytch = { secretLast4: got.secretLast4, nextSecretLast4: got.nextSecretLast4 };
            else {
              problems.push({
                kind: 'public-client',
                message: `${CLIENT_LABELS[client.kind]} ${client.id} is a public client (${got.clientType ?? 'no client_type'}) and has no secret to rotate. Only confidential clients (first_party, third_party) belong in a rotated secret.`,
              });
            }
          } catch (error) {
            problems.push(stytchProblem(error, found.id, this.errorContext));
          }
        }
      }
    }

    if (table && stateError === undefined) {
      try {
        // A project read from credentials Stytch rejects is not the value's: no binding is compared on it.
        const projectTrusted = projectId !== undefined && !problems.some((p) => p.kind === 'stytch-credentials-rejected' || p.kind === 'client-not-found');
        const valueNames =
          current && client && projectTrusted && projectId !== undefined
            ? { clientId: client.id, projectId, credentialsSecretId: current.stytch_credentials_secret_id }
            : undefined;
        const ref = valueNames ?? bound;
        const record = ref ? await table.readClient(ref) : undefined;
        state = {
          kind: 'read',
          table: table.tableName,
          valueNames,
          binding: bound && { clientId: bound.clientId, projectId: bound.projectId, credentialsSecretId: bound.credentialsSecretId, boundAt: bound.boundAt },
          clientBinding: record?.binding && { ...record.binding, boundAt: record.boundAt },
          lease: record?.lease,
          retirement: record?.retirement,
        };
      } catch (error) {
        stateError = error;
        state = { kind: 'unknown', reason: `the state table ${table.tableName} could not be read: ${explainError(error, this.errorContext)}` };
      }
    }

    const survey: Survey = {
      secretId,
      name,
      arn,
      rotation: rotationOf(described),
      current: currentView,
      pending,
      pendingOnCurrent,
      previous,
      client,
      stytch,
      state,
      readAt: this.runtime.now(),
      credentials,
      ...(problems.length > 0 ? { problems } : {}),
    };
    return { survey, current, stateError };
  }

  private async view(arn: string, entry: { versionId: string; stages: string[] }, current?: RotatedSecret): Promise<VersionView> {
    const text = await this.store.getVersion(arn, entry.versionId, { fresh: true });
    return { ...entry, value: reduce(text, current) };
  }
}

/** A Stytch error, as a problem status names with its fix. */
function stytchProblem(error: unknown, credentialsSecretId: string, context: ErrorContext): SurveyProblem {
  const message = explainError(error, context);
  if (error instanceof StytchApiError) {
    if (error.statusCode === 401) return { kind: 'stytch-credentials-rejected', message, credentialsSecretId, cause: error };
    if (error.statusCode === 404 || /_not_found$/.test(error.errorType)) return { kind: 'client-not-found', message, credentialsSecretId, cause: error };
    if (error.transient) return { kind: 'stytch-unreachable', message, cause: error };
  }
  if (error instanceof Error && networkErrorCode(error)) return { kind: 'stytch-unreachable', message, cause: error };
  return { kind: 'stytch-error', message, cause: error };
}

/** A value reduced (see reduce), and the rotated secret itself when it is one: kept in memory only, never printed (V). */
export function parseValue(text: string | undefined, current?: RotatedSecret): { value: VersionValue; secret: RotatedSecret | undefined } {
  if (text === undefined) return { value: { kind: 'none' }, secret: undefined };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { value: { kind: 'invalid', reason: 'not JSON' }, secret: undefined };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { value: { kind: 'invalid', reason: 'not a JSON object' }, secret: undefined };
  const parsed = rotatedSecretSchema.safeParse(value);
  if (!parsed.success) {
    const fields = [...new Set(parsed.error.issues.map((issue) => issue.path.map(String).join('.') || 'value'))];
    return { value: { kind: 'invalid', reason: `invalid ${fields.join(', ')}` }, secret: undefined };
  }
  const reduced: Extract<VersionValue, { kind: 'value' }> = { kind: 'value', clientId: parsed.data.client_id, last4: parsed.data.client_secret.slice(-4) };
  if (current && parsed.data.client_id === current.client_id && parsed.data.client_secret === current.client_secret) reduced.copyOfCurrent = true;
  return { value: reduced, secret: parsed.data };
}

/**
 * A value reduced to its client and last four; never keeps the secret (V).
 * Compared with `current` (AWSCURRENT's value), a pending copy of it is
 * flagged: the function refuses one, since it is not a new secret.
 */
export function reduce(text: string | undefined, current?: RotatedSecret): VersionValue {
  return parseValue(text, current).value;
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
