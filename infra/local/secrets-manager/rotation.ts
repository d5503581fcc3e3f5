/**
 * The rotation driver: what Secrets Manager does after RotateSecret accepted
 * a rotation. It calls the rotation function for createSecret, setSecret,
 * testSecret and finishSecret in order, with the secret's ARN and the
 * token; any thrown error ends the attempt and the whole rotation is
 * reattempted with the same token (reference: "retries the entire rotation
 * process multiple times"). Success is judged as the service does: the token
 * version must carry AWSCURRENT after finishSecret; the service then removes
 * AWSPENDING itself.
 *
 * The real service runs this asynchronously and never reports step failures
 * to the RotateSecret caller; here every attempt runs before RotateSecret
 * returns, so tests are deterministic, and failures are visible through
 * rotationHistory(), the service events and the AWSPENDING label left behind.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { invalidRequest } from './errors.js';
import type { Input } from './input.js';
import { AWSCURRENT, AWSPENDING, type Secret, type SecretStore, type ServiceEventName } from './model.js';

export type RotationStep = 'createSecret' | 'setSecret' | 'testSecret' | 'finishSecret';

export interface RotationEvent {
  Step: RotationStep;
  SecretId: string;
  ClientRequestToken: string;
  RotationToken?: string;
}

/** A rotation function; a thrown error (or rejected promise) is a failed step. */
export type RotationInvoker = (event: RotationEvent) => Promise<void>;

export interface StepRecord {
  step: string;
  ok: boolean;
  error?: string;
  ms: number;
}

export interface RotationRecord {
  token: string;
  attempts: Array<{ steps: StepRecord[] }>;
  /** 'in-progress' while the attempts run (an invoker may look). */
  outcome: 'in-progress' | 'succeeded' | 'failed' | 'test-only';
}

const STEPS: readonly RotationStep[] = ['createSecret', 'setSecret', 'testSecret', 'finishSecret'];

interface RunningRotation {
  token: string;
  rotationToken: string;
  cancelled: boolean;
  /** Why the current attempt must fail although the step returned (see notePut). */
  violation?: string;
}

export interface RotationDriverOptions {
  store: SecretStore;
  invokers: Map<string, RotationInvoker>;
  maxAttempts: number;
  rotationTokens: boolean;
  now: () => number;
  onEvent: (eventName: ServiceEventName, secret: Secret, versionId?: string) => void;
}

export class RotationDriver {
  private readonly histories = new Map<string, RotationRecord[]>();
  private readonly running = new Map<string, RunningRotation>();

  constructor(private readonly options: RotationDriverOptions) {}

  history(arn: string): RotationRecord[] {
    return this.histories.get(arn) ?? [];
  }

  isRotating(arn: string): boolean {
    return this.running.has(arn);
  }

  async rotate(input: Input): Promise<unknown> {
    const { store, invokers } = this.options;
    const prepared = store.prepareRotation(input, (arn) => invokers.has(arn));
    const { secret, token } = prepared;
    const output = { ARN: secret.arn, Name: secret.name, VersionId: token };
    if (prepared.alreadyDone) return output;

    const record: RotationRecord = { token, attempts: [], outcome: 'in-progress' };
    this.histories.set(secret.arn, [...this.history(secret.arn), record]);

    if (!prepared.immediately) {
      await this.testOnly(secret, record, prepared.lambdaArn);
      return output;
    }
    this.options.onEvent('RotationStarted', secret, token);
    await this.runAttempts(secret, record, prepared.lambdaArn);
    return output;
  }

  /** Runs an unfinished rotation again with its token, as the service does in the next rotation window. */
  async reattemptPending(secretId: string): Promise<RotationRecord> {
    const { store } = this.options;
    const secret = store.findLive(secretId);
    const pending = store.pendingVersion(secret);
    if (!pending) throw invalidRequest('No rotation of this secret is pending: there is no AWSPENDING version apart from AWSCURRENT.');
    if (this.running.has(secret.arn)) throw invalidRequest('A rotation of this secret is already running.');
    const lambdaArn = secret.rotation?.lambdaArn;
    if (!secret.rotation?.enabled || !lambdaArn) throw invalidRequest('Rotation is turned off for this secret: nothing reattempts it.');

    let record = this.history(secret.arn).find((r) => r.token === pending.id);
    if (!record) {
      // AWSPENDING set by hand (UpdateSecretVersionStage): the service still rotates that version.
      record = { token: pending.id, attempts: [], outcome: 'in-progress' };
      this.histories.set(secret.arn, [...this.history(secret.arn), record]);
    }
    record.outcome = 'in-progress';
    this.options.onEvent('RotationStarted', secret, pending.id);
    await this.runAttempts(secret, record, lambdaArn);
    return record;
  }

  /** CancelRotateSecret or a forced delete: no further step or attempt. */
  cancel(arn: string): void {
    const running = this.running.get(arn);
    if (running) running.cancelled = true;
  }

  /**
   * With rotation tokens on, the service checks that the pending value was put
   * by the rotation function it invoked: a PutSecretValue for the rotation's
   * version without the event's RotationToken fails the rotation with the
   * message AWS documents for that case.
   */
  notePut(secret: Secret, versionId: string, rotationToken: string | undefined): void {
    const running = this.running.get(secret.arn);
    if (!this.options.rotationTokens || !running || running.token !== versionId) return;
    if (rotationToken !== running.rotationToken) {
      running.violation = `Pending secret version ${versionId} for secret ${secret.name} was not created by Lambda ${secret.rotation?.lambdaArn ?? ''}. Remove the AWSPENDING staging label and restart rotation.`;
    }
  }

  private async runAttempts(secret: Secret, record: RotationRecord, lambdaArn: string): Promise<void> {
    const running: RunningRotation = { token: record.token, rotationToken: randomUUID(), cancelled: false };
    this.running.set(secret.arn, running);
    try {
      for (let attempt = 0; attempt < this.options.maxAttempts; attempt++) {
        if (running.cancelled || !this.stillExists(secret)) break;
        const ok = await this.runSteps(secret, record, lambdaArn, running, STEPS);
        if (ok) {
          this.succeed(secret, record.token);
          record.outcome = 'succeeded';
          this.options.onEvent('RotationSucceeded', secret, record.token);
          return;
        }
        this.options.onEvent('RotationFailed', secret, record.token);
      }
      record.outcome = 'failed';
    } finally {
      this.running.delete(secret.arn);
    }
  }

  /**
   * RotateImmediately=false: the service "tests the rotation configuration by
   * running the testSecret step": it creates an AWSPENDING version, runs
   * testSecret once, then removes that version. A failure is reported only as
   * a TestRotationFailed event, never to the RotateSecret caller.
   */
  private async testOnly(secret: Secret, record: RotationRecord, lambdaArn: string): Promise<void> {
    const running: RunningRotation = { token: record.token, rotationToken: randomUUID(), cancelled: false };
    this.running.set(secret.arn, running);
    try {
      const ok = await this.runSteps(secret, record, lambdaArn, running, ['testSecret']);
      if (!ok) this.options.onEvent('TestRotationFailed', secret, record.token);
    } finally {
      this.running.delete(secret.arn);
      const version = secret.versions.get(record.token);
      if (version && version.stages.includes(AWSPENDING)) this.options.store.detach(secret, version, AWSPENDING);
      record.outcome = 'test-only';
    }
  }

  private async runSteps(
    secret: Secret,
    record: RotationRecord,
    lambdaArn: string,
    running: RunningRotation,
    steps: readonly RotationStep[],
  ): Promise<boolean> {
    const attempt: { steps: StepRecord[] } = { steps: [] };
    record.attempts.push(attempt);
    delete running.violation;
    for (const step of steps) {
      if (running.cancelled) return false;
      const started = performance.now();
      const result: StepRecord = { step, ok: true, ms: 0 };
      try {
        const invoker = this.options.invokers.get(lambdaArn);
        if (!invoker) throw new Error(`No invoker is registered for ${lambdaArn}.`);
        const event: RotationEvent = { Step: step, SecretId: secret.arn, ClientRequestToken: record.token };
        if (this.options.rotationTokens) event.RotationToken = running.rotationToken;
        await invoker(event);
        if (running.violation) throw new Error(running.violation);
        if (step === 'finishSecret' && !secret.versions.get(record.token)?.stages.includes(AWSCURRENT)) {
          throw new Error('finishSecret did not move AWSCURRENT to the version of this rotation.');
        }
      } catch (error) {
        result.ok = false;
        result.error = describeError(error);
      }
      result.ms = Math.round((performance.now() - started) * 1000) / 1000;
      attempt.steps.push(result);
      if (!result.ok) return false;
    }
    return true;
  }

  private succeed(secret: Secret, token: string): void {
    const { store, now } = this.options;
    const version = secret.versions.get(token);
    // The service removes AWSPENDING itself once AWSCURRENT moved.
    if (version?.stages.includes(AWSPENDING)) store.detach(secret, version, AWSPENDING);
    const at = now();
    if (secret.rotation) secret.rotation.lastRotatedDate = at;
    store.scheduleNext(secret, at);
    secret.lastChangedDate = at;
  }

  private stillExists(secret: Secret): boolean {
    return this.options.store.lookup(secret.arn) === secret && secret.deletedDate === undefined;
  }
}

/** The function's own message: the project's rotation function never puts a secret in one (invariant V). */
function describeError(error: unknown): string {
  if (error instanceof Error) return error.name && error.name !== 'Error' ? `${error.name}: ${error.message}` : error.message;
  return String(error);
}
