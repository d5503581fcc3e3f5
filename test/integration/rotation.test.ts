/**
 * Whole rotations on the local stack: the BUILT bundle as the rotation Lambda,
 * Secrets Manager's RotateSecret driving the four steps, and the test talking
 * to Secrets Manager over HTTP with the real AWS SDK, as an operator would.
 */
import {
  CreateSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  RotateSecretCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSdkClient } from '../../infra/local/secrets-manager/index.js';
import { CREDENTIALS_SECRET_NAME, LOCAL_LAMBDA_ARN, LocalStack, type SeededSecret } from '../../infra/local/stack.js';
import { builtBundle, expectNoLeaks, metricCount, stytchCalls, valueAt } from './support.js';

/** Attempts per Stytch request inside the function: 2 keeps the all-attempts-fail cases short (backoff ≤ 200 ms). */
const STYTCH_MAX_ATTEMPTS = 2;
/** Attempts of a failing rotation within one RotateSecret (the emulator's default, like the service's reattempts). */
const SM_MAX_ATTEMPTS = 3;

describe('Local stack: rotations through the built function, over HTTP with the AWS SDK', () => {
  let bundle: Awaited<ReturnType<typeof builtBundle>>;
  let stack: LocalStack;
  let sm: SecretsManagerClient;

  beforeAll(async () => {
    bundle = await builtBundle();
    stack = await LocalStack.start({ bundlePath: bundle.path, maxAttempts: SM_MAX_ATTEMPTS, env: { STYTCH_MAX_ATTEMPTS: String(STYTCH_MAX_ATTEMPTS) } });
    sm = createSdkClient(stack.secretsManagerUrl);
  });

  afterEach(() => {
    stack.stytch.clearFaults();
    stack.sm.clearFaults();
  });

  afterAll(async () => {
    sm?.destroy();
    await stack?.close();
    bundle?.dispose();
  });

  const rotateSecret = (secretId: string, extra: { RotateImmediately?: boolean } = {}) =>
    sm.send(
      new RotateSecretCommand({
        SecretId: secretId,
        RotationLambdaARN: LOCAL_LAMBDA_ARN,
        RotationRules: { ScheduleExpression: 'rate(30 days)' },
        ...extra,
      }),
    );

  const lastRotation = (secretId: string) => stack.sm.rotationHistory(secretId).at(-1)!;
  const stepsOf = (attempt: { steps: Array<{ step: string; ok: boolean }> }) => attempt.steps.map((s) => `${s.step}:${s.ok ? 'ok' : 'failed'}`);
  const ALL_OK = ['createSecret:ok', 'setSecret:ok', 'testSecret:ok', 'finishSecret:ok'];

  /** The end state of a successful rotation from `old` (DESIGN.md §3: I, III, and the contract of §2). */
  async function expectRotated(seeded: SeededSecret, old: { versionId: string; json: { client_secret: string }; text: string }, token?: string) {
    const current = await valueAt(sm, seeded.name, 'AWSCURRENT');
    const previous = await valueAt(sm, seeded.name, 'AWSPREVIOUS');
    const described = await sm.send(new DescribeSecretCommand({ SecretId: seeded.name }));
    const state = stack.stytch.clientState(seeded.clientId);

    if (token !== undefined) expect(current.versionId).toBe(token);
    expect(current.json.client_secret).not.toBe(old.json.client_secret);
    expect(stack.stytch.isAccepted(seeded.clientId, current.json.client_secret), 'I: AWSCURRENT is accepted by Stytch').toBe(true);
    expect(stack.stytch.isAccepted(seeded.clientId, old.json.client_secret), 'III: the old secret is rejected').toBe(false);
    expect(state).toMatchObject({ clientSecretLast4: current.json.client_secret.slice(-4), nextClientSecretLast4: null });
    expect(previous.versionId).toBe(old.versionId);
    expect(previous.text).toBe(old.text);
    const { client_secret: _new, ...currentFields } = current.json;
    const { client_secret: _old, ...oldFields } = JSON.parse(old.text) as Record<string, unknown>;
    expect(currentFields).toEqual(oldFields);

    const labels = Object.values(described.VersionIdsToStages ?? {}).flat();
    expect(labels).not.toContain('AWSPENDING');
    expect(described.VersionIdsToStages?.[current.versionId]).toEqual(['AWSCURRENT']);
    expect(described.RotationEnabled).toBe(true);
    expect(described.LastRotatedDate).toBeInstanceOf(Date);
    return current;
  }

  it('rotates a Connected App secret: the new AWSCURRENT works, the old one is retired, every other field is kept', async () => {
    // Prepare
    const seeded = await stack.seedSecret({ name: 'it/connected-app', extraFields: { environment: 'integration', scopes: ['openid', 'email'], owner: { team: 'platform' } } });
    const old = await valueAt(sm, seeded.name, 'AWSCURRENT');

    // Act
    const out = await rotateSecret(seeded.name);

    // Assess
    const record = lastRotation(seeded.name);
    expect(record).toMatchObject({ token: out.VersionId, outcome: 'succeeded' });
    expect(record.attempts.map(stepsOf)).toEqual([ALL_OK]);
    await expectRotated(seeded, old, out.VersionId);
    expect(stytchCalls(stack, seeded.clientId, 'rotate_start')).toEqual({ all: 1, ok: 1 });
    expect(stytchCalls(stack, seeded.clientId, 'rotate')).toEqual({ all: 1, ok: 1 });
    expect(stytchCalls(stack, seeded.clientId, 'rotate_cancel').all).toBe(0);
    expect(stack.sm.serviceEvents.filter((e) => e.secretArn === seeded.arn).map((e) => e.eventName)).toEqual(['RotationStarted', 'RotationSucceeded']);
    await expectNoLeaks(stack);
  });

  it('rotates an M2M client secret end to end, and testSecret proves the new secret at the token endpoint once', async () => {
    // Prepare
    const seeded = await stack.seedSecret({ name: 'it/m2m', kind: 'm2m', extraFields: { audience: 'reports-api' } });
    const old = await valueAt(sm, seeded.name, 'AWSCURRENT');

    // Act
    const out = await rotateSecret(seeded.name);

    // Assess
    expect(lastRotation(seeded.name).attempts.map(stepsOf)).toEqual([ALL_OK]);
    const current = await expectRotated(seeded, old, out.VersionId);
    expect(stytchCalls(stack, seeded.clientId, 'rotate_start')).toEqual({ all: 1, ok: 1 });
    expect(stytchCalls(stack, seeded.clientId, 'token')).toEqual({ all: 1, ok: 1 });
    // The M2M paths, not the Connected App ones.
    const paths = stack.stytch.requests.filter((r) => r.clientId === seeded.clientId && r.operation !== 'm2m.token').map((r) => r.path);
    expect(paths.every((p) => p.startsWith(`/v1/m2m/clients/${seeded.clientId}`))).toBe(true);
    expect(current.json.client_id).toBe(seeded.clientId);
    await expectNoLeaks(stack);
  });

  describe('reattempts after injected failures', () => {
    it('Stytch answers 503 to rotate/start on every attempt: AWSPENDING stays, a new RotateSecret is refused, the reattempt completes it', async () => {
      // Prepare
      const seeded = await stack.seedSecret({ name: 'it/start-503' });
      const old = await valueAt(sm, seeded.name, 'AWSCURRENT');
      stack.stytch.addFault({ operation: 'connected_app.rotate_start', mode: 'before', status: 503, times: Infinity });

      // Act: the service reports step failures only through its history, never to the caller.
      const first = await rotateSecret(seeded.name);

      // Assess: every attempt failed at createSecret, nothing changed, the rotation is pending.
      const record = lastRotation(seeded.name);
      expect(record.outcome).toBe('failed');
      expect(record.attempts.map(stepsOf)).toEqual(Array(SM_MAX_ATTEMPTS).fill(['createSecret:failed']));
      expect(stytchCalls(stack, seeded.clientId, 'rotate_start')).toEqual({ all: SM_MAX_ATTEMPTS * STYTCH_MAX_ATTEMPTS, ok: 0 });
      expect(metricCount(stack, 'StytchRetry')).toBeGreaterThanOrEqual(SM_MAX_ATTEMPTS * (STYTCH_MAX_ATTEMPTS - 1));
      expect((await valueAt(sm, seeded.name, 'AWSCURRENT')).text).toBe(old.text);
      expect(stack.stytch.isAccepted(seeded.clientId, old.json.client_secret)).toBe(true);
      expect(stack.stytch.clientState(seeded.clientId).nextClientSecretLast4).toBeNull();
      const described = await sm.send(new DescribeSecretCommand({ SecretId: seeded.name }));
      expect(described.VersionIdsToStages?.[first.VersionId!]).toEqual(['AWSPENDING']);

      // Act / Assess: a new rotation is refused while that one is unfinished.
      await expect(rotateSecret(seeded.name)).rejects.toMatchObject({
        name: 'InvalidRequestException',
        message: expect.stringContaining("A previous rotation isn't complete"),
      });

      // Act: Stytch recovers; the service's next window reattempts with the same token.
      stack.stytch.clearFaults();
      const reattempt = await stack.sm.reattemptPending(seeded.name);

      // Assess
      expect(reattempt).toMatchObject({ token: first.VersionId, outcome: 'succeeded' });
      expect(reattempt.attempts.at(-1)!.steps.map((s) => s.step)).toEqual(['createSecret', 'setSecret', 'testSecret', 'finishSecret']);
      await expectRotated(seeded, old, first.VersionId);
      expect(stytchCalls(stack, seeded.clientId, 'rotate_start').ok).toBe(1);
      await expectNoLeaks(stack);
    });

    it('Stytch answers 503 to rotate after AWSCURRENT moved: AWSCURRENT keeps working, and the next RotateSecret completes the rotation first', async () => {
      // Prepare
      const seeded = await stack.seedSecret({ name: 'it/rotate-503' });
      const old = await valueAt(sm, seeded.name, 'AWSCURRENT');
      stack.stytch.addFault({ operation: 'connected_app.rotate', mode: 'before', status: 503, times: Infinity });

      // Act
      const first = await rotateSecret(seeded.name);

      // Assess: the label moved, Stytch never completed; both secrets work (I holds), the old one is not yet retired.
      const record = lastRotation(seeded.name);
      expect(record.outcome).toBe('failed');
      expect(record.attempts.map(stepsOf)[0]).toEqual(['createSecret:ok', 'setSecret:ok', 'testSecret:ok', 'finishSecret:failed']);
      const halfway = await valueAt(sm, seeded.name, 'AWSCURRENT');
      expect(halfway.versionId).toBe(first.VersionId);
      expect(stack.stytch.isAccepted(seeded.clientId, halfway.json.client_secret)).toBe(true);
      expect(stack.stytch.clientState(seeded.clientId).nextClientSecretLast4).toBe(halfway.json.client_secret.slice(-4));
      expect(stytchCalls(stack, seeded.clientId, 'rotate_cancel').all).toBe(0);

      // Act: Stytch recovers; the next rotation (schedule or rotate-secret) runs with a new token.
      stack.stytch.clearFaults();
      const second = await rotateSecret(seeded.name);

      // Assess: createSecret completed the half-done rotation, then rotated afresh.
      expect(lastRotation(seeded.name)).toMatchObject({ token: second.VersionId, outcome: 'succeeded' });
      await expectRotated(seeded, halfway, second.VersionId);
      expect(stack.stytch.isAccepted(seeded.clientId, old.json.client_secret)).toBe(false);
      expect(metricCount(stack, 'HalfDoneCompleted')).toBeGreaterThanOrEqual(1);
      expect(stytchCalls(stack, seeded.clientId, 'rotate_start').ok).toBe(2);
      await expectNoLeaks(stack);
    });

    it('Secrets Manager fails PutSecretValue through all SDK retries: the unstored next secret is cancelled, and the reattempt rotates cleanly', async () => {
      // Prepare: the function's SDK client makes 3 attempts per call.
      const seeded = await stack.seedSecret({ name: 'it/put-fails' });
      const old = await valueAt(sm, seeded.name, 'AWSCURRENT');
      stack.sm.addFault({ operation: 'PutSecretValue', mode: 'before', times: 3 });

      // Act
      const out = await rotateSecret(seeded.name);

      // Assess: attempt 1 failed in createSecret and cancelled at Stytch (II); attempt 2 succeeded.
      const record = lastRotation(seeded.name);
      expect(record.outcome).toBe('succeeded');
      expect(record.attempts.map(stepsOf)).toEqual([['createSecret:failed'], ALL_OK]);
      expect(record.attempts[0]!.steps[0]!.error).toContain('InternalServiceError');
      expect(stytchCalls(stack, seeded.clientId, 'rotate_start')).toEqual({ all: 2, ok: 2 });
      expect(stytchCalls(stack, seeded.clientId, 'rotate_cancel')).toEqual({ all: 1, ok: 1 });
      await expectRotated(seeded, old, out.VersionId);
      await expectNoLeaks(stack);
    });

    it('Secrets Manager stores the value but every PutSecretValue answer is lost: the function reads it back and goes on with one rotate/start', async () => {
      // Prepare
      const seeded = await stack.seedSecret({ name: 'it/put-answer-lost' });
      const old = await valueAt(sm, seeded.name, 'AWSCURRENT');
      stack.sm.addFault({ operation: 'PutSecretValue', mode: 'after', times: 3 });

      // Act
      const out = await rotateSecret(seeded.name);

      // Assess
      const record = lastRotation(seeded.name);
      expect(record.attempts.map(stepsOf)).toEqual([ALL_OK]);
      expect(stytchCalls(stack, seeded.clientId, 'rotate_start')).toEqual({ all: 1, ok: 1 });
      expect(stytchCalls(stack, seeded.clientId, 'rotate_cancel').all).toBe(0);
      await expectRotated(seeded, old, out.VersionId);
      await expectNoLeaks(stack);
    });

    it('a Stytch outage that clears within one RotateSecret: the service reattempt completes it with one accepted rotate/start', async () => {
      // Prepare: exactly the function's own retries of one request fail.
      const seeded = await stack.seedSecret({ name: 'it/transient' });
      const old = await valueAt(sm, seeded.name, 'AWSCURRENT');
      stack.stytch.addFault({ operation: 'connected_app.rotate_start', mode: 'before', status: 503, times: STYTCH_MAX_ATTEMPTS });

      // Act
      const out = await rotateSecret(seeded.name);

      // Assess
      const record = lastRotation(seeded.name);
      expect(record).toMatchObject({ token: out.VersionId, outcome: 'succeeded' });
      expect(record.attempts.map(stepsOf)).toEqual([['createSecret:failed'], ALL_OK]);
      expect(stytchCalls(stack, seeded.clientId, 'rotate_start')).toEqual({ all: STYTCH_MAX_ATTEMPTS + 1, ok: 1 });
      await expectRotated(seeded, old, out.VersionId);
      await expectNoLeaks(stack);
    });

    it("a lost rotate/start answer (Stytch created the next secret): the orphan is cancelled and the rotation completes in one attempt", async () => {
      // Prepare
      const seeded = await stack.seedSecret({ name: 'it/start-answer-lost' });
      const old = await valueAt(sm, seeded.name, 'AWSCURRENT');
      stack.stytch.addFault({ operation: 'connected_app.rotate_start', mode: 'after', status: 503, times: 1 });

      // Act
      const out = await rotateSecret(seeded.name);

      // Assess: the retried request hit "already rotating"; createSecret cancelled the orphan and started again.
      expect(lastRotation(seeded.name).attempts.map(stepsOf)).toEqual([ALL_OK]);
      expect(stytchCalls(stack, seeded.clientId, 'rotate_cancel')).toEqual({ all: 1, ok: 1 });
      expect(metricCount(stack, 'OrphanRepaired')).toBeGreaterThanOrEqual(1);
      await expectRotated(seeded, old, out.VersionId);
      await expectNoLeaks(stack);
    });
  });

  describe('the configuration test (RotateImmediately=false)', () => {
    const snapshot = (seeded: SeededSecret) => ({ versions: stack.sm.inspect(seeded.name).versions, stytch: stack.stytch.clientState(seeded.clientId) });

    it('runs only testSecret, passes, and changes nothing', async () => {
      // Prepare
      const seeded = await stack.seedSecret({ name: 'it/config-ok' });
      const before = snapshot(seeded);

      // Act
      await rotateSecret(seeded.name, { RotateImmediately: false });

      // Assess
      const record = lastRotation(seeded.name);
      expect(record.outcome).toBe('test-only');
      expect(record.attempts.map(stepsOf)).toEqual([['testSecret:ok']]);
      expect(snapshot(seeded)).toEqual(before);
      expect(stack.stytch.requests.filter((r) => r.clientId === seeded.clientId).map((r) => r.operation)).toEqual(['connected_app.get']);
      const described = await sm.send(new DescribeSecretCommand({ SecretId: seeded.name }));
      expect(described).toMatchObject({ RotationEnabled: true, RotationLambdaARN: LOCAL_LAMBDA_ARN });
      expect(described.LastRotatedDate).toBeUndefined();
      expect(stack.sm.serviceEvents.filter((e) => e.secretArn === seeded.arn)).toEqual([]);
      await expectNoLeaks(stack);
    });

    it('records TestRotationFailed for a public client, which has no secret to rotate', async () => {
      // Prepare: a public Connected App, stored with a placeholder secret.
      const app = stack.stytch.createConnectedApp(stack.project.projectId, { clientType: 'first_party_public' });
      const created = await sm.send(
        new CreateSecretCommand({ Name: 'it/config-public', SecretString: JSON.stringify({ client_id: app.client_id, client_secret: 'public-client-placeholder' }) }),
      );
      const seeded: SeededSecret = { name: 'it/config-public', arn: created.ARN!, clientId: app.client_id, kind: 'connected_app' };
      const before = snapshot(seeded);

      // Act
      await rotateSecret(seeded.name, { RotateImmediately: false });

      // Assess
      const step = lastRotation(seeded.name).attempts[0]!.steps[0]!;
      expect(step).toMatchObject({ step: 'testSecret', ok: false });
      expect(step.error).toMatch(/public client/);
      expect(stack.sm.serviceEvents.filter((e) => e.secretArn === seeded.arn).map((e) => e.eventName)).toEqual(['TestRotationFailed']);
      expect(snapshot(seeded)).toEqual(before);
      expect(stack.stytch.requests.filter((r) => r.clientId === app.client_id && !r.operation.endsWith('.get'))).toEqual([]);
      await expectNoLeaks(stack);
    });

    it('records TestRotationFailed when the Stytch project credentials are wrong, naming the problem', async () => {
      // Prepare: the secret names its own credentials secret (stytch_credentials_secret_id), holding a wrong project secret.
      const wrong = { project_id: stack.project.projectId, secret: `secret-test-${randomUUID()}`, base_url: stack.stytchUrl };
      await sm.send(new CreateSecretCommand({ Name: 'it/wrong-credentials', SecretString: JSON.stringify(wrong) }));
      const seeded = await stack.seedSecret({ name: 'it/config-wrong-credentials', extraFields: { stytch_credentials_secret_id: 'it/wrong-credentials' } });
      const before = snapshot(seeded);

      // Act
      await rotateSecret(seeded.name, { RotateImmediately: false });

      // Assess
      const step = lastRotation(seeded.name).attempts[0]!.steps[0]!;
      expect(step).toMatchObject({ step: 'testSecret', ok: false });
      expect(step.error).toMatch(/401 unauthorized_credentials/);
      // One call, then one more after re-reading the credentials secret (the project secret may have been replaced).
      expect(stytchCalls(stack, seeded.clientId, 'get')).toEqual({ all: 2, ok: 0 });
      expect(stack.sm.serviceEvents.filter((e) => e.secretArn === seeded.arn).map((e) => e.eventName)).toEqual(['TestRotationFailed']);
      expect(snapshot(seeded)).toEqual(before);
      // Still readable with the stack's default credentials: the failure came from the override.
      expect((await sm.send(new GetSecretValueCommand({ SecretId: CREDENTIALS_SECRET_NAME }))).SecretString).toContain(stack.project.projectId);
      await expectNoLeaks(stack);
    });
  });
});
