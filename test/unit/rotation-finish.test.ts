import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createHandler } from '../../functions/rotate-stytch-secret/handler.js';
import { summary } from '../../functions/rotate-stytch-secret/rotation.js';
import { InvalidInputError, RotationError, StytchApiError, TransientError } from '../../functions/lib/errors.js';
import { StytchModel } from '../../infra/local/stytch/model.js';
import { type ExternalCall, STATE_TABLE, World } from '../helpers/world.js';

/**
 * finishSecret, its reattempt on a version already AWSCURRENT, the AWSCURRENT
 * move, the failure policy's cancellation and its compensations, and the
 * checks every step shares (the pending value, the size limit, the previous
 * secret copied under AWSPENDING), through the handler built from source
 * against the in-process emulators. Each test asserts what an operator or a
 * consumer sees: Secrets Manager's labels, Stytch's secrets and calls, the
 * state table's retirement record, the step's outcome or error, exact metric
 * counts and the structured fields of the log records an operator reads.
 */

const HOUR_S = 3600;
const SECRET_NAME = 'demo/stytch-client';

let world: World | undefined;
afterEach(() => {
  // V: nothing printed or thrown holds a secret.
  if (world) expect(world.leaks()).toEqual([]);
  world = undefined;
  vi.restoreAllMocks();
});

type Options = ConstructorParameters<typeof World>[0];
/** A world whose overlap window is `grace` seconds (0: the previous secret is retired in finishSecret). */
const make = async (grace = 0, options: Options = {}) =>
  (world = await new World({ ...options, env: { PREVIOUS_SECRET_GRACE_SECONDS: String(grace), ...options?.env } }).init());

const last4 = (secret: string) => secret.slice(-4);
const isStytch = (suffix: string) => (call: ExternalCall) => call.service === 'stytch' && call.operation.endsWith(suffix);
const isSm = (operation: string) => (call: ExternalCall) => call.service === 'secretsmanager' && call.operation === operation;
const failureOf = (run: Promise<void>) => run.then(() => undefined, (e: unknown) => e as Error & { transient?: boolean; cause?: unknown });

/** The outcome each step that succeeded logged ("Step succeeded"), in order. */
const outcomes = (w: World, from: number) => w.logRecords(w.output.slice(from)).filter((r) => r.message === 'Step succeeded').map((r) => r.outcome);
/** The log records with this message, from `from` on. */
const records = (w: World, from: number, message: string) => w.logRecords(w.output.slice(from)).filter((r) => r.message === message);
/** The one "Step failed" record from `from` on: its error summary and whether it was transient. */
const stepFailed = (w: World, from: number) => {
  const failed = records(w, from, 'Step failed');
  expect(failed).toHaveLength(1);
  return failed[0]! as unknown as { error: Record<string, unknown>; transient: boolean };
};
const stytchOps = (w: World, from: number) => w.stytch.requests.slice(from).map((r) => r.operation);
const cancels = (w: World) => w.stytch.requests.filter((r) => r.operation.endsWith('.rotate_cancel'));

async function upToTestSecret(w: World): Promise<string> {
  const token = await w.beginRotation();
  for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await w.invoke(step, token);
  return token;
}

const pendingSecret = (w: World, token: string) => JSON.parse(w.snapshot().versions[token]!.secretString!).client_secret as string;

/** The state table's retirement record for the world's client, as strings (undefined: none). */
async function retirement(w: World) {
  const item = await w.stateItem();
  if (!item?.retire_due) return undefined;
  const s = (key: string) => (item[key] as { S?: string; N?: string } | undefined);
  return {
    dueAt: Number(s('retire_due')!.N),
    versionId: s('retire_version')?.S,
    last4: s('retire_last4')?.S,
    previousVersionId: s('retire_previous_version')?.S,
    previousLast4: s('retire_previous_last4')?.S,
  };
}

const clientKey = (w: World) => ({ pk: { S: `client#${w.project.projectId}#${w.client.client_id}` } });

/** Labels on a version, removed by hand (as an operator's update-secret-version-stage would). */
const removeLabel = (w: World, stage: string, versionId: string) =>
  w.sm.handle('UpdateSecretVersionStage', { SecretId: w.secretArn, VersionStage: stage, RemoveFromVersionId: versionId });

/** Puts a value under a token version labelled AWSPENDING, as someone with write access to the secret could. */
async function putPendingByHand(w: World, token: string, value: Record<string, unknown>): Promise<void> {
  w.sm.beginRotation(w.secretArn, token);
  await w.sm.handle('PutSecretValue', { SecretId: w.secretArn, ClientRequestToken: token, SecretString: JSON.stringify(value), VersionStages: ['AWSPENDING'] });
}

/**
 * A handler whose Stytch answers pass through `rewrite` (the client object of each answer, by operation):
 * answers the emulator never gives but Stytch's API allows (a public client_type, a null last four).
 */
const rewritingStytch =
  (rewrite: (operation: string, client: Record<string, unknown>) => void): typeof createHandler =>
  (deps = {}) =>
    createHandler({
      ...deps,
      fetch: async (input, init) => {
        const response = await deps.fetch!(input, init);
        const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
        const match = /\/v1\/(connected_apps|m2m)\/clients\/[^/]+(\/secrets\/rotate(?:\/(start|cancel))?)?$/.exec(new URL(url).pathname);
        if (!match || !response.ok) return response;
        const body = (await response.json()) as Record<string, Record<string, unknown>>;
        const key = match[1] === 'm2m' ? 'm2m_client' : 'connected_app';
        const action = match[2] === undefined ? 'get' : match[3] === 'start' ? 'rotate_start' : match[3] === 'cancel' ? 'rotate_cancel' : 'rotate';
        rewrite(action, body[key]!);
        const headers = new Headers(response.headers);
        headers.delete('content-length');
        return new Response(JSON.stringify(body), { status: response.status, headers });
      },
    });

describe('finishSecret inside an overlap window', () => {
  it('moves AWSCURRENT, records the retirement and reports it: the outcome, the due time and the previous secret\'s last four', async () => {
    const w = await make(HOUR_S);
    const old = w.client.client_secret;
    const oldVersion = w.versionWith('AWSCURRENT')!.id;
    const token = await upToTestSecret(w);
    const pend = pendingSecret(w, token);
    const from = w.output.length;

    await w.invoke('finishSecret', token);

    expect(outcomes(w, from)).toEqual(['rotated-overlap']);
    const recorded = (await retirement(w))!;
    expect(recorded).toEqual({ dueAt: expect.any(Number), versionId: token, last4: last4(pend), previousVersionId: oldVersion, previousLast4: last4(old) });
    expect(records(w, from, 'Moved AWSCURRENT to the pending version')).toEqual([expect.objectContaining({ level: 'INFO', previousVersionId: oldVersion })]);
    expect(
      records(w, from, 'Rotation complete: AWSCURRENT moved; the previous secret keeps working until the overlap window ends'),
    ).toEqual([
      expect.objectContaining({
        level: 'INFO',
        pendingLast4: last4(pend),
        previousSecretLast4: last4(old),
        previousSecretAcceptedUntil: new Date(recorded.dueAt).toISOString(),
      }),
    ]);
    expect(w.metricCounts(w.output.slice(from))).toEqual({ RotationCompleted: 1, StepSucceeded: 1 });
    expect(w.stytch.isAccepted(w.client.client_id, old)).toBe(true);
  });

  it('writes the retirement intent with its lease before the move (III), and none with a window of 0', async () => {
    for (const grace of [HOUR_S, 0]) {
      const w = await make(grace);
      const oldVersion = w.versionWith('AWSCURRENT')!.id;
      const token = await upToTestSecret(w);
      const pend = pendingSecret(w, token);
      // Held on finishSecret's first Stytch read: the lease is taken, AWSCURRENT has not moved.
      const gate = w.pause(isStytch('.get'));
      const finish = w.invoke('finishSecret', token);
      await gate.reached;
      const during = await retirement(w);
      gate.release();
      await finish;
      if (grace === 0) {
        expect(during).toBeUndefined();
        expect(await retirement(w)).toBeUndefined();
      } else {
        expect(during).toEqual({ dueAt: expect.any(Number), versionId: token, last4: last4(pend), previousVersionId: oldVersion, previousLast4: last4(w.client.client_secret) });
        // Past the move, so never earlier than the window counted from it.
        expect(during!.dueAt).toBeGreaterThan(w.clock.now() + grace * 1000);
      }
      expect(w.leaks()).toEqual([]);
    }
  });

  it('when Stytch had already completed the rotation, reports "rotated" and records no retirement: the previous secret is already retired', async () => {
    const w = await make(HOUR_S);
    const old = w.client.client_secret;
    const token = await upToTestSecret(w);
    const pend = pendingSecret(w, token);
    w.stytch.adminRotate(w.client.client_id); // the dashboard completed it
    const from = w.output.length;
    const calls = w.stytch.requests.length;

    await w.invoke('finishSecret', token);

    expect(outcomes(w, from)).toEqual(['rotated']);
    expect(w.versionWith('AWSCURRENT')!.id).toBe(token);
    expect(await retirement(w)).toBeUndefined();
    expect(stytchOps(w, calls)).toEqual(['connected_app.get']);
    expect(records(w, from, 'Stytch had already made the pending secret current')).toEqual([
      expect.objectContaining({ level: 'INFO', stytchSecretLast4: last4(pend) }),
    ]);
    expect(w.metricCounts(w.output.slice(from))).toEqual({ RotationCompleted: 1, StepSucceeded: 1 });
    expect(w.stytch.isAccepted(w.client.client_id, old)).toBe(false);
  });
});

describe('finishSecret with a window of 0', () => {
  it('rotates at Stytch and reports "rotated" with the new secret\'s last four', async () => {
    const w = await make(0);
    const token = await upToTestSecret(w);
    const pend = pendingSecret(w, token);
    const from = w.output.length;
    const calls = w.stytch.requests.length;

    await w.invoke('finishSecret', token);

    expect(outcomes(w, from)).toEqual(['rotated']);
    expect(stytchOps(w, calls)).toEqual(['connected_app.get', 'connected_app.rotate']);
    expect(records(w, from, 'Rotation complete: AWSCURRENT moved and the old secret retired at Stytch')).toEqual([
      expect.objectContaining({ level: 'INFO', pendingLast4: last4(pend) }),
    ]);
  });

  it('calls no rotate when Stytch had already made the pending secret current (one read only)', async () => {
    const w = await make(0);
    const token = await upToTestSecret(w);
    w.stytch.adminRotate(w.client.client_id);
    const from = w.output.length;
    const calls = w.stytch.requests.length;

    await w.invoke('finishSecret', token);

    expect(outcomes(w, from)).toEqual(['rotated']);
    expect(stytchOps(w, calls)).toEqual(['connected_app.get']);
    expect(w.versionWith('AWSCURRENT')!.id).toBe(token);
  });

  it('a definitive rotate failure after the move is rethrown and logged with Stytch\'s ids; nothing is cancelled (I)', async () => {
    const w = await make(0);
    const token = await upToTestSecret(w);
    const pend = pendingSecret(w, token);
    w.interceptor = (call) => (isStytch('.rotate')(call) ? { when: 'before', error: 403 } : undefined);
    const from = w.output.length;

    const error = await failureOf(w.invoke('finishSecret', token));

    expect(error).toBeInstanceOf(StytchApiError);
    expect(error?.message).toMatch(/^Stytch connected_app\.rotate failed: 403 unauthorized_action/);
    expect(w.versionWith('AWSCURRENT')!.id).toBe(token);
    expect(cancels(w)).toEqual([]);
    expect(w.stytchState().nextClientSecretLast4).toBe(last4(pend));
    expect(records(w, from, 'AWSCURRENT moved but Stytch did not complete the rotation; the next attempt completes it')).toEqual([
      expect.objectContaining({
        level: 'ERROR',
        error: expect.objectContaining({ name: 'StytchApiError', statusCode: 403, errorType: 'unauthorized_action', operation: 'connected_app.rotate', requestId: expect.any(String) }),
      }),
    ]);
    expect(w.metricCounts(w.output.slice(from))).toEqual({ StepFailed: 1 });
  });
});

describe('finishSecret on a version already AWSCURRENT (a reattempt)', () => {
  it('inside the window keeps the recorded due time: nothing recorded late, nothing retired', async () => {
    const w = await make(HOUR_S);
    const old = w.client.client_secret;
    const token = await upToTestSecret(w);
    await w.invoke('finishSecret', token);
    const recorded = await retirement(w);
    w.advance(60_000);
    const from = w.output.length;
    const calls = w.stytch.requests.length;

    await w.invoke('finishSecret', token);

    expect(outcomes(w, from)).toEqual(['already-current']);
    expect(await retirement(w)).toEqual(recorded);
    expect(stytchOps(w, calls)).toEqual(['connected_app.get']);
    expect(w.metricCounts(w.output.slice(from))).toEqual({ StepSucceeded: 1 });
    expect(w.stytch.isAccepted(w.client.client_id, old)).toBe(true);
  });

  it('a duplicate that waited for the lease while the first moved AWSCURRENT gives back the first one\'s due time, not its own later intent', async () => {
    const w = await make(HOUR_S);
    const token = await upToTestSecret(w);
    const event = { Step: 'finishSecret', SecretId: w.secretArn, ClientRequestToken: token };
    const from = w.output.length;
    // The first holds the lease at its Stytch read, before the move; the duplicate read the version as still pending.
    const gate = w.pause(isStytch('.get'));
    const first = w.invokeRaw(event, undefined, w.createContainer());
    await gate.reached;
    const second = w.invokeRaw(event, undefined, w.createContainer());
    for (let i = 0; i < 10_000 && records(w, from, 'Another invocation holds the lease on this client: waiting').length === 0; i++) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    gate.release();
    await Promise.all([first, second]);

    expect(outcomes(w, from).sort()).toEqual(['already-current', 'rotated-overlap']);
    const [moved] = records(w, from, 'Rotation complete: AWSCURRENT moved; the previous secret keeps working until the overlap window ends');
    expect(new Date((await retirement(w))!.dueAt).toISOString()).toBe(moved!.previousSecretAcceptedUntil);
    expect(w.metricCounts(w.output.slice(from))).toEqual({ LeaseContended: 1, RotationCompleted: 1, StepSucceeded: 2 });
  });

  it('inside the window with the state table\'s item lost records the retirement from now, naming AWSPREVIOUS as the previous version', async () => {
    const w = await make(HOUR_S);
    const old = w.client.client_secret;
    const oldVersion = w.versionWith('AWSCURRENT')!.id;
    const token = await upToTestSecret(w);
    await w.invoke('finishSecret', token);
    await w.dynamo.handle('DeleteItem', { TableName: STATE_TABLE, Key: clientKey(w) });
    const from = w.output.length;
    const before = w.clock.now();

    await w.invoke('finishSecret', token);

    expect(outcomes(w, from)).toEqual(['already-current']);
    const recorded = (await retirement(w))!;
    expect(recorded).toEqual({ dueAt: expect.any(Number), versionId: token, last4: last4(w.currentSecret()), previousVersionId: oldVersion, previousLast4: last4(old) });
    expect(recorded.dueAt).toBeGreaterThanOrEqual(before + HOUR_S * 1000);
    expect(recorded.dueAt).toBeLessThanOrEqual(w.clock.now() + HOUR_S * 1000);
    expect(
      records(w, from, 'The retirement of the previous secret had not been recorded (the step that moved AWSCURRENT ended early): recorded now, its window counted from now'),
    ).toEqual([expect.objectContaining({ level: 'WARN', previousSecretAcceptedUntil: new Date(recorded.dueAt).toISOString() })]);
    expect(w.metricCounts(w.output.slice(from))).toEqual({ BindingCreated: 1, RetirementRecordedLate: 1, StepSucceeded: 1 });
    expect(w.stytch.isAccepted(w.client.client_id, old)).toBe(true);
  });

  it('records an empty previous version when no version is labelled AWSPREVIOUS any more', async () => {
    const w = await make(HOUR_S);
    const oldVersion = w.versionWith('AWSCURRENT')!.id;
    const token = await upToTestSecret(w);
    await w.invoke('finishSecret', token);
    await removeLabel(w, 'AWSPREVIOUS', oldVersion);
    await w.dynamo.handle('DeleteItem', { TableName: STATE_TABLE, Key: clientKey(w) });

    await w.invoke('finishSecret', token);

    expect((await retirement(w))?.previousVersionId).toBe('');
  });

  it('after the window ended and the sweep retired the previous secret: "already-current", recording nothing', async () => {
    const w = await make(HOUR_S);
    const token = await upToTestSecret(w);
    await w.invoke('finishSecret', token);
    w.advance(2 * HOUR_S * 1000);
    await w.sweep();
    expect(await retirement(w)).toBeUndefined();
    const from = w.output.length;
    const calls = w.stytch.requests.length;

    await w.invoke('finishSecret', token);

    expect(outcomes(w, from)).toEqual(['already-current']);
    expect(await retirement(w)).toBeUndefined();
    expect(stytchOps(w, calls)).toEqual(['connected_app.get']);
    expect(w.metricCounts(w.output.slice(from))).toEqual({ StepSucceeded: 1 });
  });

  it('completes a rotation left half done, tolerating a rotate whose first answer was lost ("completed-half-done")', async () => {
    const w = await make(0);
    const old = w.client.client_secret;
    const token = await upToTestSecret(w);
    w.interceptor = (call) => (isStytch('.rotate')(call) ? { when: 'before', error: 503 } : undefined);
    await expect(w.invoke('finishSecret', token)).rejects.toThrow(/rotate failed: 503/);
    // The reattempt's rotate takes effect at Stytch but its answer is lost: the client's retry finds nothing rotating.
    let lost = false;
    w.interceptor = (call) => (isStytch('.rotate')(call) && !lost ? ((lost = true), { when: 'after', error: 503 }) : undefined);
    const from = w.output.length;

    await w.invoke('finishSecret', token);

    expect(outcomes(w, from)).toEqual(['completed-half-done']);
    expect(w.stytch.isAccepted(w.client.client_id, old)).toBe(false);
    expect(w.stytchState()).toEqual(expect.objectContaining({ clientSecretLast4: last4(w.currentSecret()), nextClientSecretLast4: null }));
    expect(w.metricCounts(w.output.slice(from))).toEqual({ StytchRetry: 1, HalfDoneCompleted: 1, RotationCompleted: 1, StepSucceeded: 1 });
  });

  it('fails with Stytch\'s error when completing a half-done rotation is refused (definitive), counting no completion', async () => {
    const w = await make(0);
    const token = await upToTestSecret(w);
    w.interceptor = (call) => (isStytch('.rotate')(call) ? { when: 'before', error: 503 } : undefined);
    await expect(w.invoke('finishSecret', token)).rejects.toThrow(/rotate failed: 503/);
    w.interceptor = (call) => (isStytch('.rotate')(call) ? { when: 'before', error: 403 } : undefined);
    const from = w.output.length;

    const error = await failureOf(w.invoke('finishSecret', token));

    expect(error).toBeInstanceOf(StytchApiError);
    expect(error?.message).toMatch(/^Stytch connected_app\.rotate failed: 403 unauthorized_action/);
    expect(w.stytchState().nextClientSecretLast4).toBe(last4(w.currentSecret()));
    expect(cancels(w)).toEqual([]);
    expect(w.metricCounts(w.output.slice(from))).toEqual({ StepFailed: 1 });
  });

  it('reports drift with both of Stytch\'s last fours when Stytch no longer holds AWSCURRENT', async () => {
    const w = await make(0);
    const old = w.client.client_secret;
    const token = await upToTestSecret(w);
    w.interceptor = (call) => (isStytch('.rotate')(call) ? { when: 'before', error: 503 } : undefined);
    await expect(w.invoke('finishSecret', token)).rejects.toThrow(/rotate failed: 503/);
    w.interceptor = undefined;
    w.stytch.adminRotateCancel(w.client.client_id);
    const from = w.output.length;

    const error = await failureOf(w.invoke('finishSecret', token));

    expect(error?.name).toBe('VerificationError');
    expect(error?.message).toBe(
      `AWSCURRENT of ${SECRET_NAME} (ending ${last4(w.currentSecret())}) is not the secret Stytch holds (${last4(old)}, next none): ` +
        `the client was changed outside this function. Rotate again to issue a secret both agree on: aws secretsmanager rotate-secret --secret-id ${SECRET_NAME}.`,
    );
    expect(w.metricCounts(w.output.slice(from))).toEqual({ DriftDetected: 1, StepFailed: 1 });
  });
});

describe('Moving AWSCURRENT', () => {
  it('a move that failed (the label did not move) fails the step as transient: AWSCURRENT unchanged, nothing rotated or cancelled, no retirement recorded', async () => {
    const w = await make(HOUR_S);
    const oldVersion = w.versionWith('AWSCURRENT')!.id;
    const token = await upToTestSecret(w);
    const pend = pendingSecret(w, token);
    let failed = false;
    w.interceptor = (call) => (isSm('UpdateSecretVersionStage')(call) && !failed ? ((failed = true), { when: 'before', error: 'InternalServiceError' }) : undefined);
    const from = w.output.length;
    const calls = w.stytch.requests.length;

    const error = await failureOf(w.invoke('finishSecret', token));

    expect(error?.name).toBe('InternalServiceError');
    expect(w.versionWith('AWSCURRENT')!.id).toBe(oldVersion);
    expect(w.snapshot().versions[token]!.stages).toEqual(['AWSPENDING']);
    expect(stytchOps(w, calls)).toEqual(['connected_app.get']);
    expect(w.stytchState().nextClientSecretLast4).toBe(last4(pend));
    expect(await retirement(w)).toBeUndefined();
    expect(stepFailed(w, from).transient).toBe(true);
    expect(records(w, from, 'Moved AWSCURRENT to the pending version')).toEqual([]);
  });

  it('a failed move whose version lost every label meanwhile rethrows the move\'s own error', async () => {
    const w = await make(0);
    const oldVersion = w.versionWith('AWSCURRENT')!.id;
    const token = await upToTestSecret(w);
    let failed = false;
    w.interceptor = (call) => (isSm('UpdateSecretVersionStage')(call) && !failed ? ((failed = true), { when: 'before', error: 'InternalServiceError' }) : undefined);
    const gate = w.pause(isSm('UpdateSecretVersionStage'));
    const finish = failureOf(w.invoke('finishSecret', token));
    await gate.reached;
    // Meanwhile an operator removes AWSPENDING from the version: DescribeSecret no longer lists it.
    await removeLabel(w, 'AWSPENDING', token);
    gate.release();

    const error = await finish;

    expect(error?.name).toBe('InternalServiceError');
    expect(error?.message).toBe('An error occurred on the server side.');
    expect(w.versionWith('AWSCURRENT')!.id).toBe(oldVersion);
    expect(cancels(w)).toEqual([]);
  });

  it('a move whose outcome cannot be read back fails as transient, naming the version and carrying the move\'s error as its cause', async () => {
    const w = await make(HOUR_S);
    const token = await upToTestSecret(w);
    let moved = false;
    w.interceptor = (call) => {
      if (isSm('UpdateSecretVersionStage')(call) && !moved) {
        moved = true;
        return { when: 'after', error: 'NetworkError' };
      }
      if (moved && isSm('DescribeSecret')(call) && call.step === 'finishSecret') return { when: 'before', error: 'NetworkError' };
      return undefined;
    };

    const error = await failureOf(w.invoke('finishSecret', token));

    expect(error).toBeInstanceOf(TransientError);
    expect(error?.message).toBe(`Moving AWSCURRENT to version ${token} may or may not have happened (socket hang up.); Secrets Manager's reattempt finds out.`);
    expect((error?.cause as Error | undefined)?.message).toBe('socket hang up');
  });
});

describe('The failure policy: cancelling a rotation after a definitive failure', () => {
  /** setSecret with Stytch's first read refused (403): a definitive failure after rotate/start. */
  async function refusedSetSecret(w: World, token: string) {
    let failed = 0;
    const previous = w.interceptor;
    w.interceptor = (call) => (isStytch('.get')(call) && failed++ === 0 ? { when: 'before', error: 403 } : previous?.(call));
    return failureOf(w.invoke('setSecret', token));
  }

  it('cancels at Stytch and removes AWSPENDING, logging both and keeping Stytch\'s ids in the error it throws', async () => {
    const w = await make(0);
    const token = await w.beginRotation();
    await w.invoke('createSecret', token);
    const from = w.output.length;

    const error = await refusedSetSecret(w, token);

    expect(error).toBeInstanceOf(RotationError);
    expect(error?.message).toMatch(
      new RegExp(
        `^Stytch connected_app\\.get failed: 403 unauthorized_action \\(Injected fault\\.\\) \\[request_id [^\\]]+\\]\\. The rotation was cancelled: Stytch discarded the pending secret and AWSPENDING was removed from version ${token}; `,
      ),
    );
    expect(error?.cause).toBeInstanceOf(StytchApiError);
    expect(cancels(w)).toHaveLength(1);
    expect(w.snapshot().versions[token]!.stages).toEqual([]);
    const stytchError = expect.objectContaining({ name: 'StytchApiError', statusCode: 403, errorType: 'unauthorized_action', operation: 'connected_app.get', requestId: expect.any(String) });
    expect(records(w, from, 'Rotation cancelled')).toEqual([expect.objectContaining({ level: 'WARN', error: stytchError, cancelledAtStytch: true })]);
    // The step's own record carries Stytch's ids from the error the cancellation wrapped.
    expect(stepFailed(w, from)).toEqual(
      expect.objectContaining({ transient: false, error: expect.objectContaining({ name: 'RotationError', statusCode: 403, errorType: 'unauthorized_action', operation: 'connected_app.get' }) }),
    );
    expect(w.metricCounts(w.output.slice(from))).toEqual({ RotationCancelled: 1, StepFailed: 1 });
  });

  it('when removing AWSPENDING fails, says the rotation could not be cancelled and keeps AWSPENDING, logging both errors', async () => {
    const w = await make(0);
    const token = await w.beginRotation();
    await w.invoke('createSecret', token);
    w.interceptor = (call) => (isSm('UpdateSecretVersionStage')(call) ? { when: 'before', error: 'InternalServiceError' } : undefined);
    const from = w.output.length;

    const error = await refusedSetSecret(w, token);

    expect(error).toBeInstanceOf(RotationError);
    expect(error?.message).toMatch(
      new RegExp(
        `^Stytch connected_app\\.get failed: 403 unauthorized_action \\(Injected fault\\.\\) \\[request_id [^\\]]+\\]\\. The rotation could not be cancelled \\(An error occurred on the server side\\.\\), so AWSPENDING stays on version ${token} and Secrets Manager's next attempt resumes or cancels it\\.$`,
      ),
    );
    expect(error?.cause).toBeInstanceOf(StytchApiError);
    expect(w.snapshot().versions[token]!.stages).toEqual(['AWSPENDING']);
    expect(records(w, from, 'The failed rotation could not be cancelled; AWSPENDING kept so a reattempt can resume or cancel it')).toEqual([
      expect.objectContaining({
        level: 'ERROR',
        error: expect.objectContaining({ name: 'StytchApiError', statusCode: 403, errorType: 'unauthorized_action' }),
        compensationError: { name: 'InternalServiceError', message: 'An error occurred on the server side.' },
      }),
    ]);
    expect(stepFailed(w, from)).toEqual(
      expect.objectContaining({ transient: false, error: expect.objectContaining({ name: 'RotationError', statusCode: 403, errorType: 'unauthorized_action' }) }),
    );
    expect(w.metricCounts(w.output.slice(from))).toEqual({ StepFailed: 1 });
  });

  it('a version whose AWSPENDING was removed meanwhile (no label left) is still cancelled at Stytch, and the removal counts as done', async () => {
    const w = await make(0);
    const token = await w.beginRotation();
    await w.invoke('createSecret', token);
    const gate = w.pause(isStytch('.get'));
    const from = w.output.length;
    const run = refusedSetSecret(w, token);
    await gate.reached;
    await removeLabel(w, 'AWSPENDING', token);
    gate.release();

    const error = await run;

    expect(error?.message).toMatch(new RegExp(`\\. The rotation was cancelled: Stytch discarded the pending secret and AWSPENDING was removed from version ${token}; AWSCURRENT is unchanged and still works\\.`));
    expect(cancels(w)).toHaveLength(1);
    expect(w.stytchState().nextClientSecretLast4).toBeNull();
    expect(w.metricCounts(w.output.slice(from))).toEqual({ RotationCancelled: 1, StepFailed: 1 });
  });
});

describe('createSecret\'s cancellations of the secret it started', () => {
  it('when the put failed and Stytch\'s next secret is no longer the one it started, cancels nothing (never someone else\'s rotation)', async () => {
    const w = await make(0);
    const token = await w.beginRotation();
    w.interceptor = (call) => (isSm('PutSecretValue')(call) ? { when: 'before', error: 'InternalServiceError' } : undefined);
    let other = '';
    const gate = w.pause(isSm('PutSecretValue'));
    const from = w.output.length;
    const create = failureOf(w.invoke('createSecret', token));
    await gate.reached;
    // Meanwhile someone cancels it in the dashboard and starts another rotation.
    w.stytch.adminRotateCancel(w.client.client_id);
    other = w.stytch.adminRotateStart(w.client.client_id);
    gate.release();

    const error = await create;

    expect(error?.name).toBe('InternalServiceError');
    expect(cancels(w)).toEqual([]);
    expect(w.stytchState().nextClientSecretLast4).toBe(last4(other));
    expect(w.metricCounts(w.output.slice(from))).toEqual({ StepFailed: 1 });
    expect(w.leaks([other])).toEqual([]);
  });

  it('when the put failed and Stytch cannot be read to cancel, logs that the next attempt repairs it and fails with the put\'s error', async () => {
    const w = await make(0);
    const token = await w.beginRotation();
    w.interceptor = (call) => {
      if (isSm('PutSecretValue')(call)) return { when: 'before', error: 'InternalServiceError' };
      // rotate/start has run: the read before the cancel is refused.
      if (isStytch('.get')(call)) return { when: 'before', error: 403 };
      return undefined;
    };
    const from = w.output.length;

    const error = await failureOf(w.invoke('createSecret', token));

    expect(error?.name).toBe('InternalServiceError');
    expect(cancels(w)).toEqual([]);
    expect(w.stytchState().nextClientSecretLast4).not.toBeNull();
    expect(records(w, from, 'Could not cancel the Stytch rotation (the pending value could not be stored); the next attempt repairs it')).toEqual([
      expect.objectContaining({ level: 'ERROR', error: expect.objectContaining({ name: 'StytchApiError', statusCode: 403, operation: 'connected_app.get' }) }),
    ]);
    expect(w.metricCounts(w.output.slice(from))).toEqual({ StepFailed: 1 });
    // The next attempt cancels the orphan and starts again (II).
    w.interceptor = undefined;
    await w.invoke('createSecret', token);
    expect(w.stytchState().nextClientSecretLast4).toBe(last4(pendingSecret(w, token)));
  });

  describe('a rotate/start answer that says the client is public', () => {
    const publicOnStart = rewritingStytch((operation, client) => {
      if (operation === 'rotate_start') client.client_type = 'third_party_public';
    });

    it('cancels the secret Stytch just started and refuses the client, storing nothing', async () => {
      const w = await make(0, { createHandler: publicOnStart });
      const token = await w.beginRotation();
      const from = w.output.length;

      const error = await failureOf(w.invoke('createSecret', token));

      expect(error).toBeInstanceOf(InvalidInputError);
      expect(error?.message).toBe(
        `Connected App ${w.client.client_id} is a public client (third_party_public) and has no secret to rotate; rotate only confidential clients (first_party, third_party).`,
      );
      expect(cancels(w)).toHaveLength(1);
      expect(w.stytchState().nextClientSecretLast4).toBeNull();
      expect(w.snapshot().versions[token]!.secretString).toBeUndefined();
      expect(w.metricCounts(w.output.slice(from))).toEqual({ StepFailed: 1 });
    });

    it('still refuses the client when the cancel fails, logging the cancel\'s error', async () => {
      const w = await make(0, { createHandler: publicOnStart });
      const token = await w.beginRotation();
      w.interceptor = (call) => (isStytch('.rotate_cancel')(call) ? { when: 'before', error: 403 } : undefined);
      const from = w.output.length;

      const error = await failureOf(w.invoke('createSecret', token));

      expect(error).toBeInstanceOf(InvalidInputError);
      expect(error?.message).toMatch(/is a public client \(third_party_public\) and has no secret to rotate/);
      expect(w.stytchState().nextClientSecretLast4).not.toBeNull();
      expect(records(w, from, 'Could not cancel the Stytch rotation (public client); the next attempt repairs it')).toEqual([
        expect.objectContaining({ level: 'ERROR', error: expect.objectContaining({ name: 'StytchApiError', statusCode: 403, operation: 'connected_app.rotate_cancel' }) }),
      ]);
    });
  });
});

describe('The pending value', () => {
  it('names the AWSPENDING version and how to remove it when its value is not JSON', async () => {
    const w = await make(0);
    const token = randomUUID();
    w.sm.beginRotation(w.secretArn, token);
    await w.sm.handle('PutSecretValue', { SecretId: w.secretArn, ClientRequestToken: token, SecretString: 'not json', VersionStages: ['AWSPENDING'] });

    const error = await failureOf(w.invoke('setSecret', token));

    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error?.message).toBe(
      `The AWSPENDING value (version ${token}) of secret ${SECRET_NAME} is not valid JSON. ` +
        `Remove AWSPENDING from it (aws secretsmanager update-secret-version-stage --secret-id ${SECRET_NAME} --version-stage AWSPENDING --remove-from-version-id ${token}) and rotate again.`,
    );
    expect(w.stytch.requests).toEqual([]);
  });

  it('refuses a pending value naming another client (a rotation never changes the client), before any Stytch call', async () => {
    const w = await make(0);
    const token = randomUUID();
    await putPendingByHand(w, token, { client_id: 'connected-app-test-00000000-0000-4000-8000-000000000000', client_secret: 'another-secret-entirely-0123456789' });

    const error = await failureOf(w.invoke('setSecret', token));

    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error?.message).toBe(
      `The pending version ${token} names client connected-app-test-00000000-0000-4000-8000-000000000000 but AWSCURRENT names ${w.client.client_id}; a rotation never changes the client. ` +
        `Remove AWSPENDING from it (aws secretsmanager update-secret-version-stage --secret-id ${SECRET_NAME} --version-stage AWSPENDING --remove-from-version-id ${token}) and rotate again.`,
    );
    expect(w.stytch.requests).toEqual([]);
    expect(w.snapshot().versions[token]!.stages).toEqual(['AWSPENDING']);
  });

  it.each(['setSecret', 'finishSecret'] as const)('%s on a version createSecret has not filled yet fails as transient, changing nothing', async (step) => {
    const w = await make(0);
    const token = await w.beginRotation();
    const before = w.snapshot();
    const from = w.output.length;

    const error = await failureOf(w.invoke(step, token));

    expect(error).toBeInstanceOf(TransientError);
    expect(error?.message).toBe(
      `Version ${token} of secret ${SECRET_NAME} has no value yet: createSecret has not completed. Secrets Manager reattempts the rotation from createSecret.`,
    );
    expect(w.stytch.requests).toEqual([]);
    expect(w.snapshot()).toEqual(before);
    expect(stepFailed(w, from).transient).toBe(true);
  });

  it('a pending secret Stytch does not hold, inside the previous rotation\'s window, is reported as not held (not as the previous secret) and cancelled', async () => {
    const w = await make(HOUR_S);
    const old = w.client.client_secret;
    await w.rotateAllSteps();
    const current = w.currentSecret();
    const recorded = await retirement(w);
    const token = randomUUID();
    const stranger = `hand-put-secret-${randomUUID()}`;
    await putPendingByHand(w, token, { client_id: w.client.client_id, client_secret: stranger });

    const error = await failureOf(w.invoke('setSecret', token));

    expect(error?.message).toBe(
      `Stytch does not hold the pending secret of version ${token} (it ends ${last4(stranger)}; Stytch's secrets end ${last4(old)} and ${last4(current)}): ` +
        `its rotation was cancelled or replaced outside this function. The rotation was cancelled: AWSPENDING was removed from version ${token}; ` +
        `AWSCURRENT is unchanged and still works. Fix the cause, then run aws secretsmanager rotate-secret --secret-id ${SECRET_NAME}.`,
    );
    expect(cancels(w)).toEqual([]);
    // The window is kept (III): the previous secret still works until it ends.
    expect(await retirement(w)).toEqual(recorded);
    expect(w.stytch.isAccepted(w.client.client_id, old)).toBe(true);
    expect(w.leaks([stranger])).toEqual([]);
  });

  it('a new secret whose last four equal the current one\'s is rotated to, not mistaken for a copy of the previous secret', async () => {
    const w = await make(0);
    const old = w.client.client_secret;
    // Stytch's next secret happens to end like its current one.
    const next = `N${'x'.repeat(39)}${last4(old)}`;
    vi.spyOn(StytchModel.prototype, 'newClientSecret').mockReturnValueOnce(next);
    const from = w.output.length;

    const token = await w.rotateAllSteps();

    expect(outcomes(w, from)).toEqual(['created', 'verified', 'verified', 'rotated']);
    expect(w.versionWith('AWSCURRENT')).toEqual({ id: token, value: { client_id: w.client.client_id, client_secret: next } });
    expect(w.stytch.isAccepted(w.client.client_id, next)).toBe(true);
    expect(w.stytch.isAccepted(w.client.client_id, old)).toBe(false);
    expect(w.leaks([next])).toEqual([]);
  });
});

describe('A Stytch answer without the current secret\'s last four (client_secret_last_four null)', () => {
  /** A world whose Stytch reads answer client_secret_last_four: null once `hide.on` is set. */
  async function hiding(grace: number) {
    const hide = { on: false };
    const w = await make(grace, {
      createHandler: rewritingStytch((operation, client) => {
        if (hide.on && operation === 'get') client.client_secret_last_four = null;
      }),
    });
    return { w, hide };
  }

  it('finishSecret in a window records the previous secret\'s last four as empty, not made up', async () => {
    const { w, hide } = await hiding(HOUR_S);
    const token = await upToTestSecret(w);
    hide.on = true;

    await w.invoke('finishSecret', token);

    expect(await retirement(w)).toEqual(expect.objectContaining({ versionId: token, previousLast4: '' }));
  });

  it('a pending secret Stytch does not hold is reported with "none" for both of Stytch\'s secrets', async () => {
    const { w, hide } = await hiding(0);
    const token = await w.beginRotation();
    await w.invoke('createSecret', token);
    const pend = pendingSecret(w, token);
    w.stytch.adminRotateCancel(w.client.client_id);
    hide.on = true;

    const error = await failureOf(w.invoke('setSecret', token));

    expect(error?.message).toMatch(
      new RegExp(`^Stytch does not hold the pending secret of version ${token} \\(it ends ${last4(pend)}; Stytch's secrets end none and none\\): its rotation was cancelled or replaced outside this function\\. `),
    );
  });

  it('drift after the label moved is reported with "none" for both of Stytch\'s secrets', async () => {
    const { w, hide } = await hiding(0);
    const token = await upToTestSecret(w);
    w.interceptor = (call) => (isStytch('.rotate')(call) ? { when: 'before', error: 503 } : undefined);
    await expect(w.invoke('finishSecret', token)).rejects.toThrow(/rotate failed: 503/);
    w.interceptor = undefined;
    w.stytch.adminRotateCancel(w.client.client_id);
    hide.on = true;

    const error = await failureOf(w.invoke('finishSecret', token));

    expect(error?.message).toMatch(new RegExp(`^AWSCURRENT of ${SECRET_NAME} \\(ending ${last4(w.currentSecret())}\\) is not the secret Stytch holds \\(none, next none\\): `));
  });
});

describe('The size limit, refused before rotate/start', () => {
  /**
   * Puts a new AWSCURRENT whose other fields (everything but the client_secret's JSON string) plus the
   * 512 bytes allowed for a new client_secret take exactly `bytes`; returns its padding field.
   */
  async function currentSized(w: World, bytes: number): Promise<string> {
    const bare = JSON.stringify({ ...w.client, padding: '' });
    const padding = 'p'.repeat(bytes - 512 - (Buffer.byteLength(bare) - (w.client.client_secret.length + 2)));
    const text = JSON.stringify({ ...w.client, padding });
    expect(Buffer.byteLength(text) - (w.client.client_secret.length + 2) + 512).toBe(bytes);
    await w.sm.handle('PutSecretValue', { SecretId: w.secretArn, ClientRequestToken: randomUUID(), SecretString: text, VersionStages: ['AWSCURRENT'] });
    return padding;
  }

  it('accepts a value whose other fields plus 512 bytes are exactly the limit (65536)', async () => {
    const w = await make(0);
    const padding = await currentSized(w, 65_536);
    const token = await w.beginRotation();
    const from = w.output.length;

    await w.invoke('createSecret', token);

    expect(outcomes(w, from)).toEqual(['created']);
    expect(w.versionWith('AWSPENDING')!.value).toEqual({ client_id: w.client.client_id, client_secret: expect.any(String), padding });
  });

  it('refuses one byte more, saying how large the new version would be and how to fix it, with no Stytch call', async () => {
    const w = await make(0);
    await currentSized(w, 65_537);
    const token = await w.beginRotation();

    const error = await failureOf(w.invoke('createSecret', token));

    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error?.message).toBe(
      `The new version of ${SECRET_NAME} would be about 65537 bytes (its other fields plus a new client_secret), over Secrets Manager's limit of 65536 bytes. ` +
        `Nothing was changed. Make the other fields smaller (aws secretsmanager put-secret-value), or keep them in another secret.`,
    );
    expect(w.stytch.requests).toEqual([]);
    expect(w.snapshot().versions[token]!.secretString).toBeUndefined();
  });
});

describe('Function: summary (the error fields every log record carries)', () => {
  it('gives a thrown non-error its text only', () => {
    expect(summary('boom')).toStrictEqual({ message: 'boom' });
    expect(summary(42)).toStrictEqual({ message: '42' });
  });

  it('gives an error its class and message, and no id it does not have', () => {
    expect(summary(new InvalidInputError('bad value'))).toStrictEqual({ name: 'InvalidInputError', message: 'bad value' });
  });

  it('takes Stytch\'s ids from the errors it wraps, the outer error\'s winning', () => {
    const stytch = new StytchApiError({ statusCode: 401, errorType: 'invalid_client', requestId: 'request-id-inner', operation: 'm2m.token' });
    const wrapped = new RotationError('The pending secret does not authenticate.', { cause: stytch });
    expect(summary(wrapped)).toStrictEqual({
      name: 'RotationError',
      message: 'The pending secret does not authenticate.',
      statusCode: 401,
      errorType: 'invalid_client',
      requestId: 'request-id-inner',
      operation: 'm2m.token',
    });
    const outer = Object.assign(new Error('outer', { cause: stytch }), { requestId: 'request-id-outer' });
    expect(summary(outer)).toEqual(expect.objectContaining({ requestId: 'request-id-outer', statusCode: 401 }));
  });

  it('looks at most four errors deep', () => {
    const chain = (depth: number) => {
      let e: Error = Object.assign(new Error('deepest'), { requestId: `request-id-at-${depth}` });
      for (let i = depth - 1; i >= 1; i--) e = new Error(`level ${i}`, { cause: e });
      return e;
    };
    expect(summary(chain(4))).toStrictEqual({ name: 'Error', message: 'level 1', requestId: 'request-id-at-4' });
    expect(summary(chain(5))).toStrictEqual({ name: 'Error', message: 'level 1' });
  });
});
