import { afterEach, describe, expect, it, vi } from 'vitest';
import { type ExternalCall, STEPS, World } from '../helpers/world.js';
import { currentAccepted, currentVersion, last4, unheldCurrentSecret, unheldNextSecret } from './support/invariants.js';

/**
 * One test per safety check of the failure policy that the broader suites
 * (the fault matrix, the property runs) reach only by chance: each fails when
 * its check is removed or loosened. Metrics and log levels are asserted as
 * exact counts, so a metric that must not fire is checked too.
 */

let world: World | undefined;
afterEach(() => {
  // V: nothing printed or thrown holds a secret.
  if (world) expect(world.leaks()).toEqual([]);
  world = undefined;
  vi.restoreAllMocks();
});

const make = async (options?: ConstructorParameters<typeof World>[0]) => (world = await new World(options).init());
const isStytch = (suffix: string) => (call: ExternalCall) => call.service === 'stytch' && call.operation.endsWith(suffix);
const cancels = (w: World) => w.stytch.requests.filter((r) => r.operation.endsWith('.rotate_cancel'));
const failureOf = (run: Promise<void>) => run.then(() => undefined, (e: unknown) => e as Error & { transient?: boolean });

describe('Transient Stytch failures: a plain 500 and the other 5xx', () => {
  it.each([500, 502, 503, 504] as const)(
    'Stytch answering %i to setSecret\'s read, after the client\'s retries: transient, nothing cancelled, AWSPENDING kept, the reattempt completes',
    async (status) => {
      const w = await make();
      const token = await w.beginRotation();
      await w.invoke('createSecret', token);
      const pending = w.versionWith('AWSPENDING')!;
      w.interceptor = (call) => (isStytch('.get')(call) ? { when: 'before', error: status } : undefined);
      const from = w.output.length;
      const callsFrom = w.externalCalls.length;

      const error = await failureOf(w.invoke('setSecret', token));

      expect(error?.message).toMatch(new RegExp(`Stytch connected_app\\.get failed: ${status} `));
      expect(error?.transient).toBe(true);
      // The client retried it (STYTCH_MAX_ATTEMPTS, default 6) before giving up.
      expect(w.externalCalls.slice(callsFrom).filter(isStytch('.get'))).toHaveLength(6);
      expect(cancels(w)).toEqual([]);
      expect(w.versionWith('AWSPENDING')).toEqual(pending);
      expect(w.metricCounts(w.output.slice(from))).toEqual({ StytchRetry: 5, StepFailed: 1 });

      w.interceptor = undefined;
      expect((await w.capturing(() => w.sm.reattemptPending(w.secretArn))).outcome).toBe('succeeded');
      expect(currentVersion(w).id).toBe(token);
      expect(currentAccepted(w)).toBe(true);
    },
  );

  it('a definitive Stytch answer (403) in the same place cancels the rotation: the contrast that shows the 5xx were kept on purpose', async () => {
    const w = await make();
    const token = await w.beginRotation();
    await w.invoke('createSecret', token);
    let failed = 0;
    w.interceptor = (call) => (isStytch('.get')(call) && failed++ === 0 ? { when: 'before', error: 403 } : undefined);
    const from = w.output.length;

    const error = await failureOf(w.invoke('setSecret', token));

    expect(error?.message).toMatch(/^Stytch connected_app\.get failed: 403 unauthorized_action \(Injected fault\.\) \[request_id [^\]]+\]\. The rotation was cancelled: Stytch discarded the pending secret and AWSPENDING was removed from version /);
    expect(error?.message).toContain('AWSCURRENT is unchanged and still works. Fix the cause, then run aws secretsmanager rotate-secret --secret-id demo/stytch-client.');
    expect(error?.transient).toBe(false);
    expect(cancels(w)).toHaveLength(1);
    expect(w.snapshot().versions[token]!.stages).toEqual([]);
    expect(w.stytchState().nextClientSecretLast4).toBeNull();
    expect(w.metricCounts(w.output.slice(from))).toEqual({ RotationCancelled: 1, StepFailed: 1 });
    expect(w.logLevels(w.output.slice(from))).toEqual({ WARN: 1, ERROR: 1 });
  });
});

describe('cancelRotation\'s guards: a definitive failure after an outside action (II)', () => {
  it('after a dashboard rotate made the pending secret Stytch\'s only one, a definitive failure keeps AWSPENDING (never loses the secret), and the reattempt makes it AWSCURRENT', async () => {
    const w = await make();
    const token = await w.beginRotation();
    for (const step of ['createSecret', 'setSecret'] as const) await w.invoke(step, token);
    const pendingSecret = w.versionWith('AWSPENDING')!.value!.client_secret as string;
    w.stytch.adminRotate(w.client.client_id); // outside: the pending secret is now Stytch's only secret
    let failed = 0;
    w.interceptor = (call) => (isStytch('.get')(call) && failed++ === 0 ? { when: 'before', error: 404 } : undefined);
    const from = w.output.length;

    const error = await failureOf(w.invoke('testSecret', token));

    expect(error?.message).toMatch(
      /404 client_not_found .* The rotation could not be cancelled \(Stytch has already made the pending secret current\.\), so AWSPENDING stays on version [0-9a-f-]{36} and Secrets Manager's next attempt resumes or cancels it\.$/,
    );
    expect(error?.transient).toBe(false);
    expect(w.snapshot().versions[token]!.stages).toEqual(['AWSPENDING']);
    expect(cancels(w)).toEqual([]);
    expect(w.stytch.isAccepted(w.client.client_id, pendingSecret)).toBe(true);
    expect(unheldCurrentSecret(w)).toBeUndefined();
    expect(w.metricCounts(w.output.slice(from))).toEqual({ StepFailed: 1 });
    expect(w.logLevels(w.output.slice(from))).toEqual({ ERROR: 2 });

    w.interceptor = undefined;
    expect((await w.capturing(() => w.sm.reattemptPending(w.secretArn))).outcome).toBe('succeeded');
    expect(currentVersion(w)).toEqual({ id: token, secret: pendingSecret });
    expect(currentAccepted(w)).toBe(true);
  });

  it('after a dashboard cancel, a definitive failure cancels nothing at Stytch (nothing is left there) and removes AWSPENDING', async () => {
    const w = await make();
    const token = await w.beginRotation();
    for (const step of ['createSecret', 'setSecret'] as const) await w.invoke(step, token);
    w.stytch.adminRotateCancel(w.client.client_id);
    const from = w.output.length;

    const error = await failureOf(w.invoke('testSecret', token));

    expect(error?.message).toMatch(/^Stytch does not hold the pending secret of version [0-9a-f-]{36} \(it ends .{4}; Stytch's secrets end .{4} and none\): its rotation was cancelled or replaced outside this function\. The rotation was cancelled: AWSPENDING was removed from version /);
    expect(cancels(w)).toEqual([]);
    expect(w.snapshot().versions[token]!.stages).toEqual([]);
    expect(currentAccepted(w)).toBe(true);
    expect(w.metricCounts(w.output.slice(from))).toEqual({ RotationCancelled: 1, StepFailed: 1 });
  });

  it('a definitive failure while the pending version is already AWSCURRENT (moved by hand) keeps it and cancels nothing (I)', async () => {
    const w = await make();
    const token = await w.beginRotation();
    for (const step of ['createSecret', 'setSecret'] as const) await w.invoke(step, token);
    const current = currentVersion(w).id;
    // The pending version is made AWSCURRENT outside the function while testSecret reads Stytch.
    let moved = false;
    w.interceptor = (call) => {
      if (!isStytch('.get')(call) || moved) return undefined;
      moved = true;
      void w.sm.handle('UpdateSecretVersionStage', { SecretId: w.secretArn, VersionStage: 'AWSCURRENT', MoveToVersionId: token, RemoveFromVersionId: current });
      return { when: 'before', error: 400 };
    };

    const error = await failureOf(w.invoke('testSecret', token));

    expect(error?.message).toMatch(/The rotation could not be cancelled \(the pending version is already AWSCURRENT\.\), so AWSPENDING stays on version/);
    expect(cancels(w)).toEqual([]);
    expect(w.snapshot().versions[token]!.stages.sort()).toEqual(['AWSCURRENT', 'AWSPENDING']);
    expect(currentAccepted(w)).toBe(true);
  });
});

describe('finishSecret: drift after the label moved is reported, never ignored', () => {
  it('a reattempted finishSecret that finds Stytch no longer holds AWSCURRENT (its rotation cancelled in the dashboard after the move) fails with DriftDetected and changes nothing', async () => {
    const w = await make();
    const token = await w.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await w.invoke(step, token);
    // finishSecret moves AWSCURRENT, then Stytch's rotate keeps failing (transient): the label has moved.
    w.interceptor = (call) => (isStytch('.rotate')(call) ? { when: 'before', error: 503 } : undefined);
    await expect(w.invoke('finishSecret', token)).rejects.toThrow(/503/);
    expect(currentVersion(w).id).toBe(token);
    w.interceptor = undefined;
    w.stytch.adminRotateCancel(w.client.client_id); // outside: AWSCURRENT is now rejected
    const before = w.stytch.requests.length;
    const from = w.output.length;

    const error = await failureOf(w.invoke('finishSecret', token));

    expect(error?.name).toBe('VerificationError');
    expect(error?.message).toMatch(
      /^AWSCURRENT of demo\/stytch-client \(ending .{4}\) is not the secret Stytch holds \(.{4}, next none\): the client was changed outside this function\. Rotate again to issue a secret both agree on: aws secretsmanager rotate-secret --secret-id demo\/stytch-client\.$/,
    );
    expect(w.stytch.requests.slice(before).map((r) => r.operation)).toEqual(['connected_app.get']);
    expect(currentVersion(w).id).toBe(token);
    expect(w.metricCounts(w.output.slice(from))).toEqual({ DriftDetected: 1, StepFailed: 1 });
  });

  it('finishSecret whose rotate finds no rotation in progress (cancelled in the dashboard just before it) confirms from a read and reports the drift', async () => {
    const w = await make();
    const token = await w.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await w.invoke(step, token);
    const gate = w.pause(isStytch('.rotate'));
    const finish = failureOf(w.invoke('finishSecret', token));
    await gate.reached;
    w.stytch.adminRotateCancel(w.client.client_id);
    const from = w.output.length;
    gate.release();

    const error = await finish;

    expect(error?.name).toBe('VerificationError');
    expect(error?.message).toMatch(/^AWSCURRENT of demo\/stytch-client \(ending .{4}\) is not the secret Stytch holds/);
    expect(w.stytch.requests.slice(-2).map((r) => r.operation)).toEqual(['connected_app.rotate', 'connected_app.get']);
    expect(w.metricCounts(w.output.slice(from))).toEqual({ DriftDetected: 1, StepFailed: 1 });
  });

  it('finishSecret whose rotate finds the rotation already completed (a lost answer, or the dashboard) succeeds without drift', async () => {
    const w = await make();
    const token = await w.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await w.invoke(step, token);
    const gate = w.pause(isStytch('.rotate'));
    const finish = w.invoke('finishSecret', token);
    await gate.reached;
    w.stytch.adminRotate(w.client.client_id);
    const from = w.output.length;
    gate.release();
    await finish;
    expect(w.metricCounts(w.output.slice(from))).toEqual({ RotationCompleted: 1, StepSucceeded: 1 });
    expect(currentAccepted(w)).toBe(true);
    expect(w.stytchState().nextClientSecretLast4).toBeNull();
  });
});

describe('Metrics and logs of a clean rotation, exactly', () => {
  it('a clean rotation reports no drift: each step succeeds once, one rotation started and completed, nothing at warning level or above', async () => {
    const w = await make();
    const from = w.output.length;
    const token = await w.rotateAllSteps();
    expect(currentVersion(w).id).toBe(token);
    expect(w.metricCounts(w.output.slice(from))).toEqual({ StepSucceeded: 4, RotationStarted: 1, RotationCompleted: 1 });
    const levels = w.logLevels(w.output.slice(from));
    expect(levels).toEqual({ INFO: levels.INFO });
    expect(levels.INFO).toBeGreaterThanOrEqual(8);
  });

  it('a rotation of a drifted secret (Stytch holds another secret than AWSCURRENT) reports the drift once, at error level, and repairs it', async () => {
    const w = await make();
    // Stytch's secret changed outside (a dashboard rotation completed), AWSCURRENT still holds the old one.
    w.stytch.adminRotateStart(w.client.client_id);
    w.stytch.adminRotate(w.client.client_id);
    expect(currentAccepted(w)).toBe(false);
    const from = w.output.length;
    await w.rotateAllSteps();
    expect(w.metricCounts(w.output.slice(from))).toEqual({ DriftDetected: 1, StepSucceeded: 4, RotationStarted: 1, RotationCompleted: 1 });
    expect(w.logRecords(w.output.slice(from)).filter((r) => r.level === 'ERROR')).toEqual([
      expect.objectContaining({ message: 'Drift: AWSCURRENT is not the secret Stytch holds; rotating to repair it', awsCurrentLast4: last4(w.client.client_secret) }),
    ]);
    expect(currentAccepted(w)).toBe(true);
  });
});

describe('RotationToken bounds (the service model\'s 36 to 256 letters, digits and hyphens)', () => {
  it.each([36, 256])('accepts a RotationToken of exactly %i characters and passes it on the put', async (length) => {
    const w = await make();
    const token = await w.beginRotation();
    const rotationToken = `${'a1-'.repeat(86)}`.slice(0, length);
    await w.invoke('createSecret', token, { RotationToken: rotationToken });
    expect(w.versionWith('AWSPENDING')?.id).toBe(token);
    expect(unheldNextSecret(w)).toBeUndefined();
    for (const step of STEPS.slice(1)) await w.invoke(step, token, { RotationToken: rotationToken });
    expect(currentVersion(w).id).toBe(token);
  });
});
