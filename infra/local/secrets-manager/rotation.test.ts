/**
 * RotateSecret as Secrets Manager does it: the AWSPENDING placeholder, the
 * four steps in order, reattempts with the same token, the "previous rotation
 * isn't complete" rule, RotateImmediately=false, cancellation. The fake
 * rotation function calls back into the emulator through the SDK over HTTP
 * while RotateSecret awaits it.
 */
import {
  CancelRotateSecretCommand,
  CreateSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  ListSecretVersionIdsCommand,
  PutSecretValueCommand,
  RotateSecretCommand,
  type SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SecretsManagerEmulatorOptions } from './emulator.js';
import { type FakeRotation, type Fixture, LAMBDA_ARN, fakeRotation, startEmulator, token } from './test-fixture.js';

let fx: Fixture;
let client: SecretsManagerClient;
let rotation: FakeRotation;

async function setUp(options: SecretsManagerEmulatorOptions = {}): Promise<void> {
  fx = await startEmulator(options);
  client = fx.client;
  rotation = fakeRotation(client);
  fx.emulator.registerInvoker(LAMBDA_ARN, rotation.invoker);
  await client.send(new CreateSecretCommand({ Name: 'rotated', SecretString: 'v1', ClientRequestToken: token(1) }));
}

afterEach(async () => {
  await fx?.close();
});

const rotate = (input: { ClientRequestToken?: string; RotateImmediately?: boolean; RotationRules?: Record<string, unknown> } = {}) =>
  client.send(new RotateSecretCommand({ SecretId: 'rotated', RotationLambdaARN: LAMBDA_ARN, ClientRequestToken: token(2), ...input }));

const stages = async () => (await client.send(new DescribeSecretCommand({ SecretId: 'rotated' }))).VersionIdsToStages;

async function failure(call: Promise<unknown>): Promise<{ name: string; message: string }> {
  try {
    await call;
  } catch (error) {
    return { name: (error as Error).name, message: (error as Error).message };
  }
  throw new Error('expected the call to fail');
}

describe('Operation: RotateSecret', () => {
  describe('a rotation that succeeds', () => {
    beforeEach(() => setUp());

    it('invokes createSecret, setSecret, testSecret and finishSecret in order, each with the ARN and the token', async () => {
      // Act
      const out = await rotate();

      // Assess
      expect(out).toMatchObject({ Name: 'rotated', VersionId: token(2) });
      expect(rotation.seen.map((s) => s.event)).toEqual(
        ['createSecret', 'setSecret', 'testSecret', 'finishSecret'].map((Step) => ({ Step, SecretId: out.ARN, ClientRequestToken: token(2) })),
      );
    });

    it('labels the token version AWSPENDING without a value before createSecret runs', async () => {
      await rotate();

      const create = rotation.seen[0]!;
      expect(create.tokenStages).toEqual(['AWSPENDING']);
      expect(create.pendingValue).toEqual({ error: 'ResourceNotFoundException' });
      expect(rotation.seen[1]!.pendingValue).toEqual({ value: 'v1+1' });
    });

    it('ends with the token version AWSCURRENT alone, the old one AWSPREVIOUS, and rotation dates set', async () => {
      // Act
      await rotate({ RotationRules: { ScheduleExpression: 'rate(10 days)' } });

      // Assess: the service removed AWSPENDING itself.
      expect(await stages()).toEqual({ [token(1)]: ['AWSPREVIOUS'], [token(2)]: ['AWSCURRENT'] });
      const described = await client.send(new DescribeSecretCommand({ SecretId: 'rotated' }));
      expect(described).toMatchObject({
        RotationEnabled: true,
        RotationLambdaARN: LAMBDA_ARN,
        RotationRules: { ScheduleExpression: 'rate(10 days)', AutomaticallyAfterDays: 10 },
      });
      expect(described.NextRotationDate!.getTime() - described.LastRotatedDate!.getTime()).toBe(10 * 86_400_000);
      expect((await client.send(new GetSecretValueCommand({ SecretId: 'rotated' }))).SecretString).toBe('v1+1');
      expect(fx.emulator.rotationHistory('rotated')).toEqual([
        { token: token(2), outcome: 'succeeded', attempts: [{ steps: ['createSecret', 'setSecret', 'testSecret', 'finishSecret'].map((step) => ({ step, ok: true, ms: expect.any(Number) })) }] },
      ]);
      expect(fx.emulator.serviceEvents.map((e) => e.eventName)).toEqual(['RotationStarted', 'RotationSucceeded']);
    });

    it('generates a token when called in-process without one', async () => {
      const out = (await fx.emulator.handle('RotateSecret', { SecretId: 'rotated', RotationLambdaARN: LAMBDA_ARN })) as { VersionId: string };

      expect(out.VersionId).toMatch(/^[0-9a-f-]{36}$/);
      expect((await stages())?.[out.VersionId]).toEqual(['AWSCURRENT']);
    });

    it('rotates again with the stored configuration when RotateSecret names only the secret', async () => {
      await rotate();

      await client.send(new RotateSecretCommand({ SecretId: 'rotated', ClientRequestToken: token(3) }));

      expect(await stages()).toEqual({ [token(2)]: ['AWSPREVIOUS'], [token(3)]: ['AWSCURRENT'] });
    });

    it('succeeds without a new rotation when retried with the token of a completed rotation', async () => {
      await rotate();
      rotation.seen.length = 0;

      const again = await rotate();

      expect(again.VersionId).toBe(token(2));
      expect(rotation.seen).toEqual([]);
    });

    it('lets the rotation function call back into the emulator, even RotateSecret, without deadlock', async () => {
      // Prepare: a function that also lists versions and tries a nested rotation.
      const nested: string[] = [];
      fx.emulator.registerInvoker(LAMBDA_ARN, async (event) => {
        if (event.Step === 'setSecret') {
          await client.send(new ListSecretVersionIdsCommand({ SecretId: event.SecretId }));
          nested.push((await failure(client.send(new RotateSecretCommand({ SecretId: event.SecretId, ClientRequestToken: token(9) })))).message);
        }
        await rotation.invoker(event);
      });

      // Act
      await rotate();

      // Assess
      expect(nested).toEqual(["A previous rotation isn't complete. That rotation will be reattempted."]);
      expect(fx.emulator.rotationHistory('rotated')[0]!.outcome).toBe('succeeded');
    });
  });

  describe('a rotation that fails', () => {
    beforeEach(() => setUp({ maxAttempts: 3 }));

    it('reattempts the whole rotation with the same token after a failing step', async () => {
      // Prepare
      rotation.failNext('setSecret', 1);

      // Act
      await rotate();

      // Assess: createSecret found its value on the second attempt and did not put again.
      expect(rotation.seen.map((s) => s.event.Step)).toEqual(['createSecret', 'setSecret', 'createSecret', 'setSecret', 'testSecret', 'finishSecret']);
      expect(new Set(rotation.seen.map((s) => s.event.ClientRequestToken))).toEqual(new Set([token(2)]));
      expect(rotation.seen[2]!.pendingValue).toEqual({ value: 'v1+1' });
      const [record] = fx.emulator.rotationHistory('rotated');
      expect(record!.outcome).toBe('succeeded');
      expect(record!.attempts.map((a) => a.steps.map((s) => `${s.step}:${s.ok}`))).toEqual([
        ['createSecret:true', 'setSecret:false'],
        ['createSecret:true', 'setSecret:true', 'testSecret:true', 'finishSecret:true'],
      ]);
      expect(record!.attempts[0]!.steps[1]!.error).toBe('setSecret failed on purpose');
      expect(fx.emulator.serviceEvents.map((e) => e.eventName)).toEqual(['RotationStarted', 'RotationFailed', 'RotationSucceeded']);
    });

    it('gives up after maxAttempts without reporting it to the caller, leaving AWSPENDING in place', async () => {
      // Prepare
      rotation.failNext('testSecret', 3);

      // Act
      const out = await rotate();

      // Assess
      expect(out.VersionId).toBe(token(2));
      expect(rotation.seen.filter((s) => s.event.Step === 'testSecret')).toHaveLength(3);
      expect(fx.emulator.rotationHistory('rotated')[0]).toMatchObject({ token: token(2), outcome: 'failed' });
      expect(await stages()).toEqual({ [token(1)]: ['AWSCURRENT'], [token(2)]: ['AWSPENDING'] });
      expect((await client.send(new GetSecretValueCommand({ SecretId: 'rotated' }))).SecretString).toBe('v1');
    });

    it('refuses a new RotateSecret while AWSPENDING is on another version than AWSCURRENT', async () => {
      rotation.failNext('testSecret', 3);
      await rotate();

      const error = await failure(rotate({ ClientRequestToken: token(3) }));

      expect(error).toEqual({ name: 'InvalidRequestException', message: "A previous rotation isn't complete. That rotation will be reattempted." });
      expect(await stages()).toEqual({ [token(1)]: ['AWSCURRENT'], [token(2)]: ['AWSPENDING'] });
    });

    it('completes the pending rotation with its token on reattemptPending (the next rotation window)', async () => {
      // Prepare
      rotation.failNext('testSecret', 3);
      await rotate();

      // Act
      const record = await fx.emulator.reattemptPending('rotated');

      // Assess
      expect(record).toMatchObject({ token: token(2), outcome: 'succeeded' });
      expect(record.attempts).toHaveLength(4);
      expect(await stages()).toEqual({ [token(1)]: ['AWSPREVIOUS'], [token(2)]: ['AWSCURRENT'] });
    });

    it('lets a later RotateSecret start fresh once AWSPENDING is removed by hand', async () => {
      rotation.failNext('createSecret', 3);
      await rotate();
      // createSecret never put a value: the placeholder is all there is.
      expect(fx.emulator.inspect('rotated').versions[token(2)]).toEqual({ stages: ['AWSPENDING'] });

      await client.send(new UpdateSecretVersionStageCommand({ SecretId: 'rotated', VersionStage: 'AWSPENDING', RemoveFromVersionId: token(2) }));
      await rotate({ ClientRequestToken: token(3) });

      expect(await stages()).toEqual({ [token(1)]: ['AWSPREVIOUS'], [token(3)]: ['AWSCURRENT'] });
      // The empty placeholder did not survive losing its label.
      expect(fx.emulator.inspect('rotated').versions[token(2)]).toBeUndefined();
    });

    it('gives the AWSPENDING placeholder its value when PutSecretValue uses its token', async () => {
      rotation.failNext('createSecret', 3);
      await rotate();

      await client.send(new PutSecretValueCommand({ SecretId: 'rotated', ClientRequestToken: token(2), SecretString: 'by hand', VersionStages: ['AWSPENDING'] }));

      expect((await client.send(new GetSecretValueCommand({ SecretId: 'rotated', VersionStage: 'AWSPENDING' }))).SecretString).toBe('by hand');
    });

    it('fails an attempt whose finishSecret returned without moving AWSCURRENT', async () => {
      // Prepare
      fx.emulator.registerInvoker(LAMBDA_ARN, fakeRotation(client, { skipFinishMove: true }).invoker);

      // Act
      await rotate();

      // Assess
      const [record] = fx.emulator.rotationHistory('rotated');
      expect(record!.outcome).toBe('failed');
      expect(record!.attempts).toHaveLength(3);
      expect(record!.attempts[0]!.steps.at(-1)).toMatchObject({ step: 'finishSecret', ok: false, error: expect.stringContaining('did not move AWSCURRENT') });
      expect(await stages()).toEqual({ [token(1)]: ['AWSCURRENT'], [token(2)]: ['AWSPENDING'] });
    });

    it('abandons the pending rotation when someone puts a new current value by hand', async () => {
      rotation.failNext('testSecret', 3);
      await rotate();

      await client.send(new PutSecretValueCommand({ SecretId: 'rotated', ClientRequestToken: token(4), SecretString: 'manual' }));

      expect(await stages()).toEqual({ [token(1)]: ['AWSPREVIOUS'], [token(4)]: ['AWSCURRENT'] });
      expect(fx.emulator.serviceEvents.at(-1)).toMatchObject({ eventName: 'RotationAbandoned', versionId: token(2) });
      await expect(rotate({ ClientRequestToken: token(5) })).resolves.toBeDefined();
    });
  });

  describe('RotateImmediately=false', () => {
    beforeEach(() => setUp());

    it('runs only testSecret against a placeholder, then removes it and keeps rotation configured', async () => {
      // Act
      await rotate({ RotateImmediately: false, RotationRules: { AutomaticallyAfterDays: 30 } });

      // Assess
      expect(rotation.seen.map((s) => s.event.Step)).toEqual(['testSecret']);
      expect(rotation.seen[0]!.tokenStages).toEqual(['AWSPENDING']);
      expect(rotation.seen[0]!.pendingValue).toEqual({ error: 'ResourceNotFoundException' });
      expect(await stages()).toEqual({ [token(1)]: ['AWSCURRENT'] });
      expect(fx.emulator.inspect('rotated').versions[token(2)]).toBeUndefined();
      const described = await client.send(new DescribeSecretCommand({ SecretId: 'rotated' }));
      expect(described).toMatchObject({ RotationEnabled: true, RotationRules: { AutomaticallyAfterDays: 30 } });
      expect(described.LastRotatedDate).toBeUndefined();
      expect(fx.emulator.rotationHistory('rotated')[0]).toMatchObject({ outcome: 'test-only', attempts: [{ steps: [{ step: 'testSecret', ok: true }] }] });
    });

    it('reports a failed test only as a TestRotationFailed event, not to the caller', async () => {
      rotation.failNext('testSecret');

      await expect(rotate({ RotateImmediately: false })).resolves.toMatchObject({ VersionId: token(2) });

      expect(fx.emulator.rotationHistory('rotated')[0]).toMatchObject({ outcome: 'test-only', attempts: [{ steps: [{ step: 'testSecret', ok: false }] }] });
      expect(fx.emulator.serviceEvents.map((e) => e.eventName)).toEqual(['TestRotationFailed']);
      expect(await stages()).toEqual({ [token(1)]: ['AWSCURRENT'] });
    });
  });

  describe('refusals', () => {
    beforeEach(() => setUp());

    it('fails with AccessDeniedException and changes nothing when no function is registered for the Lambda ARN', async () => {
      const error = await failure(client.send(new RotateSecretCommand({ SecretId: 'rotated', RotationLambdaARN: 'arn:aws:lambda:us-east-1:123456789012:function:unknown' })));

      expect(error.name).toBe('AccessDeniedException');
      expect(error.message).toContain('registerInvoker');
      expect(await client.send(new DescribeSecretCommand({ SecretId: 'rotated' }))).not.toHaveProperty('RotationEnabled');
    });

    it('fails with InvalidRequestException when no Lambda ARN is given or stored', async () => {
      expect(await failure(client.send(new RotateSecretCommand({ SecretId: 'rotated' })))).toMatchObject({ name: 'InvalidRequestException' });
    });

    it('fails with InvalidParameterException for invalid rotation rules', async () => {
      const bad = [{ AutomaticallyAfterDays: 30, ScheduleExpression: 'rate(30 days)' }, { ScheduleExpression: 'rate(1 hour)' }, { ScheduleExpression: 'every day' }, { Duration: '25h' }];
      for (const rules of bad) {
        expect(await failure(rotate({ RotationRules: rules }))).toMatchObject({ name: 'InvalidParameterException' });
      }
      expect(await failure(rotate({ RotationRules: { AutomaticallyAfterDays: 0 } }))).toMatchObject({ name: 'ValidationException' });
    });

    it('stores a cron schedule without scheduling it (no NextRotationDate)', async () => {
      await rotate({ RotationRules: { ScheduleExpression: 'cron(0 16 1,15 * ? *)', Duration: '2h' } });

      const described = await client.send(new DescribeSecretCommand({ SecretId: 'rotated' }));
      expect(described.RotationRules).toEqual({ ScheduleExpression: 'cron(0 16 1,15 * ? *)', Duration: '2h' });
      expect(described.NextRotationDate).toBeUndefined();
    });

    it('starts normally when AWSPENDING is still on the AWSCURRENT version, and clears it', async () => {
      await client.send(new UpdateSecretVersionStageCommand({ SecretId: 'rotated', VersionStage: 'AWSPENDING', MoveToVersionId: token(1) }));

      await rotate();

      expect(await stages()).toEqual({ [token(1)]: ['AWSPREVIOUS'], [token(2)]: ['AWSCURRENT'] });
    });
  });
});

describe('Operation: CancelRotateSecret', () => {
  beforeEach(() => setUp());

  it('turns rotation off and stops a running rotation after the current step, leaving AWSPENDING for the caller to remove', async () => {
    // Prepare: the function cancels the rotation while setSecret runs.
    let cancelled: { VersionId?: string } | undefined;
    fx.emulator.registerInvoker(LAMBDA_ARN, async (event) => {
      await rotation.invoker(event);
      if (event.Step === 'setSecret') cancelled = await client.send(new CancelRotateSecretCommand({ SecretId: event.SecretId }));
    });

    // Act
    await rotate();

    // Assess
    expect(cancelled?.VersionId).toBe(token(2));
    expect(rotation.seen.map((s) => s.event.Step)).toEqual(['createSecret', 'setSecret']);
    expect(fx.emulator.rotationHistory('rotated')[0]!.outcome).toBe('failed');
    const described = await client.send(new DescribeSecretCommand({ SecretId: 'rotated' }));
    expect(described).toMatchObject({ RotationEnabled: false, RotationLambdaARN: LAMBDA_ARN });
    expect(described.NextRotationDate).toBeUndefined();
    expect(described.VersionIdsToStages).toEqual({ [token(1)]: ['AWSCURRENT'], [token(2)]: ['AWSPENDING'] });
    await expect(fx.emulator.reattemptPending('rotated')).rejects.toMatchObject({ name: 'InvalidRequestException' });
  });
});

describe('Method: beginRotation (test helper)', () => {
  beforeEach(() => setUp());

  it('creates only the AWSPENDING placeholder, invoking nothing, and refuses while a rotation is pending', async () => {
    // Act
    const tok = fx.emulator.beginRotation('rotated', token(2));

    // Assess
    expect(tok).toBe(token(2));
    expect(rotation.seen).toEqual([]);
    expect(fx.emulator.inspect('rotated').versions[token(2)]).toEqual({ stages: ['AWSPENDING'] });
    expect(() => fx.emulator.beginRotation('rotated')).toThrow("A previous rotation isn't complete");
  });
});

describe('Option: rotationTokens', () => {
  it('sends a RotationToken in every step and accepts the put that carries it', async () => {
    await setUp({ rotationTokens: true });

    await rotate();

    const tokens = new Set(rotation.seen.map((s) => s.event.RotationToken));
    expect(tokens.size).toBe(1);
    expect([...tokens][0]).toMatch(/^[a-zA-Z0-9-]{36,}$/);
    expect(fx.emulator.rotationHistory('rotated')[0]!.outcome).toBe('succeeded');
  });

  it('fails the rotation when the pending value was put without the RotationToken', async () => {
    // Prepare: a function that forgets to pass the RotationToken.
    await setUp({ rotationTokens: true, maxAttempts: 1 });
    fx.emulator.registerInvoker(LAMBDA_ARN, (event) => rotation.invoker({ ...event, RotationToken: undefined } as typeof event));

    // Act
    await rotate();

    // Assess
    const [record] = fx.emulator.rotationHistory('rotated');
    expect(record!.outcome).toBe('failed');
    expect(record!.attempts[0]!.steps[0]).toMatchObject({ step: 'createSecret', ok: false, error: expect.stringContaining('was not created by Lambda') });
  });

  it('sends no RotationToken by default', async () => {
    await setUp();

    await rotate();

    expect(rotation.seen.every((s) => !('RotationToken' in s.event))).toBe(true);
  });
});
