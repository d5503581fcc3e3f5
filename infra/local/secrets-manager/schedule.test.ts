/**
 * The accelerated rotation schedule: rate() and AutomaticallyAfterDays fire,
 * cron() is stored but never fires, a pending rotation is reattempted with
 * its token, and rotation turned off is not scheduled.
 */
import { CancelRotateSecretCommand, CreateSecretCommand, RotateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { rotationIntervalMs } from './schedule.js';
import { type Fixture, LAMBDA_ARN, fakeRotation, startEmulator, token } from './test-fixture.js';

const DAY = 86_400_000;
/** 864000 simulated seconds per real second: one simulated day every 100 ms. */
const FAST = { tickMs: 10, scale: 864_000 };

describe('Function: rotationIntervalMs', () => {
  it.each([
    [{ ScheduleExpression: 'rate(30 days)' }, 30 * DAY],
    [{ ScheduleExpression: 'rate(1 day)' }, DAY],
    [{ ScheduleExpression: 'rate(4 hours)' }, 4 * 3_600_000],
    [{ ScheduleExpression: 'rate(240 minutes)' }, 4 * 3_600_000],
    [{ AutomaticallyAfterDays: 7 }, 7 * DAY],
    [{ ScheduleExpression: 'cron(0 16 1,15 * ? *)' }, undefined],
    [{}, undefined],
    [undefined, undefined],
  ])('reads %j as %s ms', (rules, expected) => {
    expect(rotationIntervalMs(rules)).toBe(expected);
  });
});

describe('Method: startSchedule', () => {
  let fx: Fixture;
  let stop: (() => void) | undefined;

  afterEach(async () => {
    stop?.();
    await fx.close();
  });

  /** A secret with rotation configured but not run yet (RotateImmediately=false only tests). */
  async function configure(name: string, rules: Record<string, unknown>): Promise<void> {
    await fx.client.send(new CreateSecretCommand({ Name: name, SecretString: 'v1', ClientRequestToken: token(1) }));
    await fx.client.send(new RotateSecretCommand({ SecretId: name, RotationLambdaARN: LAMBDA_ARN, RotationRules: rules, RotateImmediately: false }));
  }

  const rotations = (name: string) => fx.emulator.rotationHistory(name).filter((r) => r.outcome !== 'test-only');

  it('rotates a rate(1 day) secret every simulated day, and stops when asked', async () => {
    // Prepare
    fx = await startEmulator();
    fx.emulator.registerInvoker(LAMBDA_ARN, fakeRotation(fx.client).invoker);
    await configure('daily', { ScheduleExpression: 'rate(1 day)' });

    // Act
    stop = fx.emulator.startSchedule(FAST).stop;
    await vi.waitFor(() => expect(rotations('daily').length).toBeGreaterThanOrEqual(2), { timeout: 5000, interval: 20 });
    stop();
    const count = rotations('daily').length;
    await new Promise((r) => setTimeout(r, 300));

    // Assess
    expect(rotations('daily').every((r) => r.outcome === 'succeeded')).toBe(true);
    expect(rotations('daily')).toHaveLength(count);
    expect(fx.emulator.inspect('daily').versions[token(1)]).toBeDefined();
    expect(Object.values(fx.emulator.inspect('daily').versions).find((v) => v.stages.includes('AWSCURRENT'))?.secretString).toMatch(/^v1(\+1){2,}$/);
  });

  it('rotates by AutomaticallyAfterDays, and never by a cron expression', async () => {
    fx = await startEmulator();
    fx.emulator.registerInvoker(LAMBDA_ARN, fakeRotation(fx.client).invoker);
    await configure('by-days', { AutomaticallyAfterDays: 2 });
    await fx.client.send(new CreateSecretCommand({ Name: 'by-cron', SecretString: 'v1', ClientRequestToken: token(1) }));
    await fx.client.send(new RotateSecretCommand({ SecretId: 'by-cron', RotationLambdaARN: LAMBDA_ARN, RotationRules: { ScheduleExpression: 'cron(0 0 * * ? *)' }, RotateImmediately: false }));

    stop = fx.emulator.startSchedule(FAST).stop;
    await vi.waitFor(() => expect(rotations('by-days').length).toBeGreaterThanOrEqual(1), { timeout: 5000, interval: 20 });

    expect(rotations('by-cron')).toEqual([]);
  });

  it('reattempts a pending rotation with its token until it succeeds', async () => {
    // Prepare: each RotateSecret attempts once; the first two attempts fail at testSecret.
    fx = await startEmulator({ maxAttempts: 1 });
    const rotation = fakeRotation(fx.client);
    fx.emulator.registerInvoker(LAMBDA_ARN, rotation.invoker);
    await configure('flaky', { ScheduleExpression: 'rate(1 day)' });
    rotation.failNext('testSecret', 2);

    // Act
    stop = fx.emulator.startSchedule(FAST).stop;
    await vi.waitFor(() => expect(rotations('flaky')[0]?.outcome).toBe('succeeded'), { timeout: 5000, interval: 20 });
    stop();

    // Assess: one rotation, one token, three attempts.
    const [first] = rotations('flaky');
    expect(first!.attempts).toHaveLength(3);
    const createTokens = new Set(rotation.seen.filter((s) => s.event.Step === 'createSecret').slice(0, 3).map((s) => s.event.ClientRequestToken));
    expect(createTokens.size).toBe(1);
  });

  it('does not rotate a secret whose rotation was cancelled', async () => {
    fx = await startEmulator();
    fx.emulator.registerInvoker(LAMBDA_ARN, fakeRotation(fx.client).invoker);
    await configure('off', { ScheduleExpression: 'rate(1 day)' });
    await fx.client.send(new CancelRotateSecretCommand({ SecretId: 'off' }));

    stop = fx.emulator.startSchedule(FAST).stop;
    await new Promise((r) => setTimeout(r, 400));

    expect(rotations('off')).toEqual([]);
  });

  it('rejects a non-positive tick or scale', async () => {
    fx = await startEmulator();

    expect(() => fx.emulator.startSchedule({ tickMs: 0, scale: 1 })).toThrow(RangeError);
    expect(() => fx.emulator.startSchedule({ tickMs: 10, scale: 0 })).toThrow(RangeError);
  });
});
