/**
 * A local AWS Secrets Manager: the data model (model.ts), the rotation driver
 * (rotation.ts) and the schedule (schedule.ts) behind one entry point,
 * `handle(operation, input)`, shared by the HTTP server (server.ts) and
 * in-process callers. Test helpers (calls, faults, inspect, history) never
 * expose a secret value except through inspect(), which tests use on purpose.
 */
import { randomUUID } from 'node:crypto';
import { SecretsManagerServiceError } from './errors.js';
import { type Input, asInput } from './input.js';
import { SecretStore, type ServiceEventName } from './model.js';
import { type RotationInvoker, type RotationRecord, RotationDriver } from './rotation.js';
import { type ScheduleOptions, startSchedule } from './schedule.js';
import { type RunningServer, startServer } from './server.js';

export interface SecretsManagerEmulatorOptions {
  /** Default 'us-east-1'. */
  region?: string;
  /** Default '123456789012'. */
  accountId?: string;
  /** Rotation functions keyed by Lambda ARN: RotateSecret invokes invokers[RotationLambdaARN]. */
  invokers?: Record<string, RotationInvoker>;
  /** Attempts of a failing rotation within one RotateSecret call, all with the same token (default 3). */
  maxAttempts?: number;
  /** Clock in epoch milliseconds (default Date.now). */
  now?: () => number;
  /**
   * Send a RotationToken in every step event and require it on the
   * PutSecretValue of the rotation's version, as for cross-account or
   * assumed-role rotation (default false: no RotationToken, as for a plain rotation).
   */
  rotationTokens?: boolean;
  /** See StoreOptions.staleRemoveFromVersionId (default 'reject', like moto). */
  staleRemoveFromVersionId?: 'reject' | 'ignore';
}

export interface SecretSnapshot {
  arn: string;
  name: string;
  rotationEnabled: boolean;
  versions: Record<string, { stages: string[]; secretString?: string }>;
}

export interface CallRecord {
  operation: string;
  secretId?: string;
  /** The error name (`__type`) when the operation failed. */
  error?: string;
}

export interface FaultSpec {
  /** Operation name, e.g. 'PutSecretValue', or '*' for any. */
  operation: string;
  /** before: fail without effect; after: apply the effect, then fail (a lost response). */
  mode: 'before' | 'after';
  /** Default 'InternalServiceError' (HTTP 500, which SDKs retry). */
  errorType?: string;
  /** How many calls fail (default 1). */
  times?: number;
}

export interface ServiceEvent {
  /** The CloudTrail service event Secrets Manager would emit. */
  eventName: ServiceEventName;
  secretArn: string;
  versionId?: string;
  time: number;
}

export type { RotationInvoker, RotationRecord };
export type { RotationEvent, RotationStep, StepRecord } from './rotation.js';

type Operation = (input: Input) => unknown;

export class SecretsManagerEmulator {
  private readonly store: SecretStore;
  private readonly driver: RotationDriver;
  private readonly invokers = new Map<string, RotationInvoker>();
  private readonly operations: Record<string, Operation>;
  private readonly now: () => number;
  private readonly callLog: CallRecord[] = [];
  private readonly events: ServiceEvent[] = [];
  private faults: Array<Required<FaultSpec>> = [];

  constructor(options: SecretsManagerEmulatorOptions = {}) {
    this.now = options.now ?? Date.now;
    const maxAttempts = options.maxAttempts ?? 3;
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new RangeError('maxAttempts must be a positive integer');
    const onEvent = (eventName: ServiceEventName, secret: { arn: string }, versionId?: string): void => {
      const event: ServiceEvent = { eventName, secretArn: secret.arn, time: this.now() };
      if (versionId !== undefined) event.versionId = versionId;
      this.events.push(event);
    };
    this.store = new SecretStore({
      region: options.region ?? 'us-east-1',
      accountId: options.accountId ?? '123456789012',
      now: this.now,
      staleRemoveFromVersionId: options.staleRemoveFromVersionId ?? 'reject',
      onEvent,
    });
    for (const [arn, invoker] of Object.entries(options.invokers ?? {})) this.invokers.set(arn, invoker);
    this.driver = new RotationDriver({
      store: this.store,
      invokers: this.invokers,
      maxAttempts,
      rotationTokens: options.rotationTokens ?? false,
      now: this.now,
      onEvent,
    });

    const { store, driver } = this;
    this.operations = {
      CreateSecret: (i) => store.createSecret(i),
      DescribeSecret: (i) => store.describeSecret(i),
      GetSecretValue: (i) => store.getSecretValue(i),
      PutSecretValue: (i) => {
        const result = store.putSecretValue(i);
        if (result.changed) {
          driver.notePut(result.secret, result.versionId, typeof i.RotationToken === 'string' ? i.RotationToken : undefined);
        }
        return result.output;
      },
      UpdateSecretVersionStage: (i) => store.updateSecretVersionStage(i),
      ListSecretVersionIds: (i) => store.listSecretVersionIds(i),
      ListSecrets: (i) => store.listSecrets(i),
      RotateSecret: (i) => driver.rotate(i),
      CancelRotateSecret: (i) => {
        const { output, secret } = store.cancelRotateSecret(i);
        driver.cancel(secret.arn);
        return output;
      },
      DeleteSecret: (i) => {
        const { output, removed } = store.deleteSecret(i);
        if (removed) driver.cancel(removed.arn);
        return output;
      },
      RestoreSecret: (i) => store.restoreSecret(i),
      TagResource: (i) => store.tagResource(i),
      UntagResource: (i) => store.untagResource(i),
    };
  }

  registerInvoker(lambdaArn: string, invoker: RotationInvoker): void {
    this.invokers.set(lambdaArn, invoker);
  }

  /**
   * (operation name, JSON input) → JSON output; throws SecretsManagerServiceError.
   * Never blocks on another call: an invoker may call back (over HTTP or here)
   * while RotateSecret awaits it.
   */
  async handle(operation: string, input: unknown): Promise<unknown> {
    const record: CallRecord = { operation };
    const secretId = idOf(input);
    if (secretId !== undefined) record.secretId = secretId;
    this.callLog.push(record);
    try {
      const run = this.operations[operation];
      if (!run) throw new SecretsManagerServiceError('UnknownOperationException', `Unknown operation: ${operation}.`);
      this.injectFault(operation, 'before');
      const output = await run(asInput(input));
      this.injectFault(operation, 'after');
      return output;
    } catch (error) {
      const serviceError =
        error instanceof SecretsManagerServiceError
          ? error
          : new SecretsManagerServiceError('InternalServiceError', 'An error occurred on the server side.');
      record.error = serviceError.name;
      throw serviceError;
    }
  }

  listen(options?: { port?: number; host?: string }): Promise<RunningServer> {
    return startServer((operation, input) => this.handle(operation, input), options);
  }

  inspect(secretId: string): SecretSnapshot {
    const secret = this.store.find(secretId);
    const versions: SecretSnapshot['versions'] = {};
    for (const v of secret.versions.values()) {
      versions[v.id] = v.secretString === undefined ? { stages: [...v.stages] } : { stages: [...v.stages], secretString: v.secretString };
    }
    return { arn: secret.arn, name: secret.name, rotationEnabled: secret.rotation?.enabled ?? false, versions };
  }

  /** Every operation handled, with the secret id it named and the error name; never a value. */
  get calls(): ReadonlyArray<CallRecord> {
    return this.callLog;
  }

  resetCalls(): void {
    this.callLog.length = 0;
  }

  /** Rotation and abandonment events, as CloudTrail would show them (for alerting tests). */
  get serviceEvents(): ReadonlyArray<ServiceEvent> {
    return this.events;
  }

  addFault(fault: FaultSpec): void {
    this.faults.push({ errorType: 'InternalServiceError', times: 1, ...fault });
  }

  clearFaults(): void {
    this.faults = [];
  }

  rotationHistory(secretId: string): ReadonlyArray<RotationRecord> {
    const secret = this.store.lookup(secretId);
    return secret ? this.driver.history(secret.arn) : [];
  }

  /**
   * Test helper (no wire): labels a new token version AWSPENDING without a
   * value, exactly as RotateSecret does before createSecret, and invokes
   * nothing, so a test can drive the steps itself. Returns the token.
   */
  beginRotation(secretId: string, token: string = randomUUID()): string {
    this.store.beginRotation(secretId, token);
    return token;
  }

  /** Runs the pending rotation again with its token (the service's next rotation window). */
  reattemptPending(secretId: string): Promise<RotationRecord> {
    return this.driver.reattemptPending(secretId);
  }

  startSchedule(options: ScheduleOptions): { stop(): void } {
    const { store, driver } = this;
    return startSchedule(
      {
        rotatingSecrets: () =>
          store
            .all()
            .filter((s) => s.rotation?.enabled && s.deletedDate === undefined)
            .map((s) => ({ arn: s.arn, rules: s.rotation?.rules })),
        hasPendingRotation: (arn) => store.pendingVersion(store.find(arn)) !== undefined,
        isRotating: (arn) => driver.isRotating(arn),
        // The service's own schedule: not an API call, so neither recorded in calls nor subject to faults.
        rotate: (arn) => driver.rotate({ SecretId: arn }),
        reattemptPending: (arn) => driver.reattemptPending(arn),
      },
      options,
      this.now,
    );
  }

  private injectFault(operation: string, mode: 'before' | 'after'): void {
    const fault = this.faults.find((f) => f.mode === mode && f.times > 0 && (f.operation === operation || f.operation === '*'));
    if (!fault) return;
    fault.times -= 1;
    throw new SecretsManagerServiceError(fault.errorType, `Injected ${mode} fault for ${operation} (local emulator).`);
  }
}

function idOf(input: unknown): string | undefined {
  if (typeof input !== 'object' || input === null) return undefined;
  const { SecretId, Name } = input as { SecretId?: unknown; Name?: unknown };
  if (typeof SecretId === 'string') return SecretId;
  return typeof Name === 'string' ? Name : undefined;
}
