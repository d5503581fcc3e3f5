import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { LAMBDA_ARN, STATE_TABLE, World } from '../helpers/world.js';

/**
 * The overlap window (PREVIOUS_SECRET_GRACE_SECONDS) and the retirement sweep,
 * through the handler built from source: I (AWSCURRENT accepted, and the
 * previous secret too until the window ends) and III (then really retired,
 * no earlier than the window and no later than the next sweep after it).
 */

const HOUR_S = 3600;
let world: World;
const make = async (options: ConstructorParameters<typeof World>[0] = {}) =>
  (world = await new World({ ...options, env: { PREVIOUS_SECRET_GRACE_SECONDS: String(HOUR_S), ...options.env } }).init());

afterEach(() => {
  if (world) expect(world.leaks()).toEqual([]);
});

const accepted = (secret: string) => world.stytch.isAccepted(world.client.client_id, secret);
const due = async () => {
  const item = await world.stateItem();
  const n = (item?.retire_due as { N?: string } | undefined)?.N;
  return n === undefined ? undefined : Number(n);
};

/** The counts each sweep logged when it ended ("Retirement sweep done"). */
const sweepSummaries = () =>
  world
    .logRecords()
    .filter((r) => r.message === 'Retirement sweep done')
    .map(({ due, retired, cleared, deferred, failed, leftForNextSweep }) => ({ due, retired, cleared, deferred, failed, leftForNextSweep }));

/** A rotation as Secrets Manager runs it: the driver's four steps, AWSPENDING removed at the end. */
async function rotate(arn = world.secretArn): Promise<void> {
  await world.sm.handle('RotateSecret', { SecretId: arn });
  expect(world.sm.rotationHistory(arn).at(-1)?.outcome).toBe('succeeded');
}

describe('Overlap window: finishSecret', () => {
  it.each(['connected_app', 'm2m'] as const)('%s: moves AWSCURRENT and keeps the previous secret accepted, recording when it is due', async (kind) => {
    await make({ kind });
    const old = world.client.client_secret;
    const before = world.clock.now();
    await rotate();
    const current = world.currentSecret();
    expect(current).not.toBe(old);
    expect(accepted(current)).toBe(true);
    // An app that cached the previous secret keeps working (I).
    expect(accepted(old)).toBe(true);
    expect(world.stytchState()).toEqual(expect.objectContaining({ clientSecretLast4: old.slice(-4), nextClientSecretLast4: current.slice(-4) }));
    const dueAt = (await due())!;
    expect(dueAt).toBeGreaterThanOrEqual(before + HOUR_S * 1000);
    expect(dueAt).toBeLessThanOrEqual(world.clock.now() + HOUR_S * 1000);
    expect(world.stytchCalls('.rotate')).toHaveLength(0);
    expect(world.output.some((l) => l.includes('the previous secret keeps working until the overlap window ends'))).toBe(true);
  });

  it('records the retirement even when the step dies right after moving AWSCURRENT (the intent written with its lease)', async () => {
    await make();
    const old = world.client.client_secret;
    const token = await world.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await world.invoke(step, token);
    // The Lambda dies once the label moved: its release never arrives.
    let dead: number | undefined;
    world.interceptor = (call) => {
      if (call.invocation !== undefined && call.invocation === dead) return { when: 'before', error: call.service === 'stytch' ? 'drop' : 'NetworkError' };
      if (call.operation === 'UpdateSecretVersionStage') {
        dead = call.invocation;
        return { when: 'after', error: 'NetworkError' };
      }
      return undefined;
    };
    const moved = world.clock.now();
    await expect(world.invoke('finishSecret', token)).rejects.toThrow();
    world.interceptor = undefined;
    expect(world.versionWith('AWSCURRENT')!.id).toBe(token);
    const dueAt = (await due())!;
    // Never before the window counted from the move (III), whatever the step's end.
    expect(dueAt).toBeGreaterThanOrEqual(moved + HOUR_S * 1000);
    world.advance(2 * HOUR_S * 1000);
    await world.sweep();
    expect(accepted(old)).toBe(false);
    expect(accepted(world.currentSecret())).toBe(true);
  });

  it('keeps the retirement recorded when finishSecret cannot tell whether AWSCURRENT moved (the move\'s answer and the check both lost)', async () => {
    await make();
    const old = world.client.client_secret;
    const token = await world.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await world.invoke(step, token);
    let moved = false;
    world.interceptor = (call) => {
      if (call.operation === 'UpdateSecretVersionStage' && !moved) {
        moved = true;
        return { when: 'after', error: 'NetworkError' };
      }
      if (moved && call.operation === 'DescribeSecret' && call.step === 'finishSecret') return { when: 'before', error: 'NetworkError' };
      return undefined;
    };
    await expect(world.invoke('finishSecret', token)).rejects.toThrow(/may or may not have happened/);
    world.interceptor = undefined;
    expect(world.versionWith('AWSCURRENT')!.id).toBe(token);
    expect(await due()).toBeDefined();
    world.advance(2 * HOUR_S * 1000);
    await world.sweep();
    expect(accepted(old)).toBe(false);
  });

  it('a reattempted finishSecret records a missing retirement, counted from then, and never retires early', async () => {
    await make();
    const token = await world.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const) await world.invoke(step, token);
    // Lost record (an operator cleared it by hand).
    await world.dynamo.handle('UpdateItem', {
      TableName: STATE_TABLE,
      Key: { pk: { S: `client#${world.project.projectId}#${world.client.client_id}` } },
      UpdateExpression: 'REMOVE retire_due, retire_version, retire_last4, retire_previous_version, retire_previous_last4',
    });
    const again = world.clock.now();
    await world.invoke('finishSecret', token);
    expect(world.metricCounts().RetirementRecordedLate).toBe(1);
    expect((await due())!).toBeGreaterThanOrEqual(again + HOUR_S * 1000);
    expect(accepted(world.client.client_secret)).toBe(true);
  });

  it('with a window of 0 retires the previous secret in finishSecret, recording nothing', async () => {
    world = await new World().init();
    const old = world.client.client_secret;
    await rotate();
    expect(accepted(old)).toBe(false);
    expect(await due()).toBeUndefined();
    expect(world.stytchState().nextClientSecretLast4).toBeNull();
  });
});

describe('The retirement sweep', () => {
  it('retires nothing before the window ends, and retires at the first sweep after it (III), clearing the record', async () => {
    await make();
    const old = world.client.client_secret;
    await rotate();
    const dueAt = (await due())!;
    world.stytch.resetRequests();
    // Sweeps every 5 minutes until just before the end of the window.
    let sweeps = 0;
    while (world.clock.now() + 5 * 60_000 < dueAt) {
      world.advance(5 * 60_000);
      await world.sweep();
      sweeps++;
      expect(accepted(old)).toBe(true);
    }
    expect(world.stytch.requests).toEqual([]);
    world.advance(5 * 60_000);
    await world.sweep();
    expect(accepted(old)).toBe(false);
    expect(accepted(world.currentSecret())).toBe(true);
    expect(world.stytchState().nextClientSecretLast4).toBeNull();
    expect(await due()).toBeUndefined();
    expect(world.metricCounts()).toMatchObject({ PreviousSecretRetired: 1, SweepSucceeded: sweeps + 1 });
    expect(world.stytch.requests.map((r) => r.operation)).toEqual(['connected_app.get', 'connected_app.rotate']);
  });

  it('confirms a rotate whose answer was lost (the retry finds nothing rotating) and clears the record', async () => {
    await make();
    const old = world.client.client_secret;
    await rotate();
    world.advance(2 * HOUR_S * 1000);
    let lost = false;
    world.interceptor = (call) => {
      if (!lost && call.step === undefined && call.operation.endsWith('.rotate')) {
        lost = true;
        return { when: 'after', error: 'drop' };
      }
      return undefined;
    };
    await world.sweep();
    world.interceptor = undefined;
    expect(lost).toBe(true);
    expect(accepted(old)).toBe(false);
    expect(accepted(world.currentSecret())).toBe(true);
    expect(await due()).toBeUndefined();
    expect(world.metricCounts().PreviousSecretRetired).toBe(1);
  });

  it('with nothing due makes no Stytch call', async () => {
    await make();
    world.stytch.resetRequests();
    await world.sweep();
    await rotate();
    world.stytch.resetRequests();
    await world.sweep();
    expect(world.stytch.requests).toEqual([]);
  });

  it('clears the record without calling rotate when Stytch already retired the previous secret', async () => {
    await make();
    await rotate();
    world.stytch.adminRotate(world.client.client_id);
    world.advance(2 * HOUR_S * 1000);
    world.stytch.resetRequests();
    await world.sweep();
    expect(world.stytch.requests.map((r) => r.operation)).toEqual(['connected_app.get']);
    expect(await due()).toBeUndefined();
    expect(world.metricCounts().RetirementCleared).toBe(1);
  });

  it('never retires when AWSCURRENT is no longer Stytch\'s next secret (rolled back to the previous value): AWSCURRENT keeps working (I)', async () => {
    await make();
    const old = world.client.client_secret;
    await rotate();
    const value = JSON.parse(world.snapshot().versions[world.versionWith('AWSCURRENT')!.id]!.secretString!) as Record<string, unknown>;
    await world.sm.handle('PutSecretValue', { SecretId: world.secretArn, ClientRequestToken: randomUUID(), SecretString: JSON.stringify({ ...value, client_secret: old }) });
    world.advance(2 * HOUR_S * 1000);
    await world.sweep();
    expect(world.stytchCalls('.rotate')).toHaveLength(0);
    expect(accepted(old)).toBe(true);
    expect(await due()).toBeUndefined();
    expect(world.output.some((l) => l.includes('"level":"WARN"') && l.includes('Not retired: AWSCURRENT'))).toBe(true);
  });

  it('defers a client whose lease a step holds, leaving its record in place', async () => {
    await make();
    const old = world.client.client_secret;
    await rotate();
    world.advance(2 * HOUR_S * 1000);
    // A new rotation's createSecret holds the lease, held on purpose at its read of Stytch.
    const token = randomUUID();
    world.sm.beginRotation(world.secretArn, token);
    const hold = world.pause((c) => c.operation.endsWith('.get') && c.step === 'createSecret');
    const step = world.invokeRaw({ Step: 'createSecret', SecretId: world.secretArn, ClientRequestToken: token }, undefined, world.createContainer());
    await hold.reached;
    await world.sweep();
    expect(world.metricCounts().RetirementDeferred).toBe(1);
    expect(sweepSummaries().at(-1)).toEqual({ due: 1, retired: 0, cleared: 0, deferred: 1, failed: 0, leftForNextSweep: 0 });
    expect(world.logRecords().find((r) => r.message === 'A step holds the lease on this client: its retirement waits for the next sweep')).toMatchObject({ secretArn: world.secretArn });
    expect(world.stytchCalls('.rotate')).toHaveLength(0);
    expect(accepted(old)).toBe(true);
    expect(await due()).toBeDefined();
    hold.release();
    await step;
    // That createSecret retired the previous secret itself before starting (Stytch holds one next secret).
    expect(accepted(old)).toBe(false);
    expect(await due()).toBeUndefined();
  });

  it('counts what it retired and cleared, and leaves for the next sweep what it had no time to start', async () => {
    await make();
    const old = world.client.client_secret;
    await rotate();
    world.advance(2 * HOUR_S * 1000);
    // Out of time before the first retirement: the scan is held while the clock passes the sweep's budget.
    const scan = world.pause((c) => c.operation === 'Scan', 'after');
    const late = world.sweep();
    await scan.reached;
    world.advance(120_000);
    scan.release();
    await late;
    expect(sweepSummaries().at(-1)).toEqual({ due: 1, retired: 0, cleared: 0, deferred: 0, failed: 0, leftForNextSweep: 1 });
    expect(world.logRecords().find((r) => r.message === 'The sweep ran out of time; the next sweep takes the rest')).toMatchObject({ level: 'WARN', leftForNextSweep: 1 });
    expect(accepted(old)).toBe(true);
    // The next sweep has time: it retires it.
    await world.sweep();
    expect(sweepSummaries().at(-1)).toEqual({ due: 1, retired: 1, cleared: 0, deferred: 0, failed: 0, leftForNextSweep: 0 });
    expect(accepted(old)).toBe(false);
    expect(world.logRecords().filter((r) => r.message === 'The sweep ran out of time; the next sweep takes the rest')).toHaveLength(1);
  });

  it('tries every due client, keeps the record of one that failed, and then fails itself', async () => {
    await make();
    const second = world.stytch.createConnectedApp(world.project.projectId, { clientType: 'first_party' });
    const { ARN } = (await world.sm.handle('CreateSecret', {
      Name: 'demo/second',
      ClientRequestToken: randomUUID(),
      SecretString: JSON.stringify({ client_id: second.client_id, client_secret: second.client_secret }),
    })) as { ARN: string };
    await world.sm.handle('RotateSecret', { SecretId: ARN, RotationLambdaARN: LAMBDA_ARN, RotationRules: { ScheduleExpression: 'rate(30 days)' } });
    await rotate();
    world.advance(2 * HOUR_S * 1000);
    world.stytch.addFault({ mode: 'before', operation: 'connected_app.rotate', status: 400, times: 1 });
    await expect(world.sweep()).rejects.toThrow(/The retirement sweep could not retire 1 of 2 due previous secret\(s\); they stay accepted by Stytch until a sweep succeeds/);
    expect(world.metricCounts()).toMatchObject({ PreviousSecretRetired: 1, RetirementFailed: 1, SweepFailed: 1 });
    // The summary counts each outcome once, and the error names the secret that failed first.
    expect(sweepSummaries().at(-1)).toEqual({ due: 2, retired: 1, cleared: 0, deferred: 0, failed: 1, leftForNextSweep: 0 });
    expect(world.errors.at(-1)?.message).toMatch(/First: arn:aws:secretsmanager:\S+:secret:demo\/\S+: Stytch connected_app\.rotate failed: 400/);
    expect(world.logRecords().find((r) => r.message === 'Could not retire the previous secret; the next sweep tries again')).toMatchObject({ level: 'ERROR', secretArn: expect.stringMatching(/^arn:aws:secretsmanager:/) });
    const left = (await world.dynamo.scan(STATE_TABLE)).filter((i) => i.retire_due !== undefined);
    expect(left).toHaveLength(1);
    await world.sweep();
    expect((await world.dynamo.scan(STATE_TABLE)).filter((i) => i.retire_due !== undefined)).toEqual([]);
    expect(world.stytch.isAccepted(second.client_id, second.client_secret!)).toBe(false);
    expect(accepted(world.client.client_secret)).toBe(false);
  });

  it('keeps the record of a secret scheduled for deletion, and retires once it is restored', async () => {
    await make();
    const old = world.client.client_secret;
    await rotate();
    await world.sm.handle('DeleteSecret', { SecretId: world.secretArn, RecoveryWindowInDays: 7 });
    world.advance(2 * HOUR_S * 1000);
    world.stytch.resetRequests();
    await world.sweep();
    expect(world.stytch.requests).toEqual([]);
    expect(await due()).toBeDefined();
    expect(world.metricCounts().RetirementDeferred).toBe(1);
    await world.sm.handle('RestoreSecret', { SecretId: world.secretArn });
    await world.sweep();
    expect(accepted(old)).toBe(false);
    expect(await due()).toBeUndefined();
  });

  it('clears the record of a secret deleted for good, logging at error level what Stytch may still accept', async () => {
    await make();
    await rotate();
    await world.sm.handle('DeleteSecret', { SecretId: world.secretArn, ForceDeleteWithoutRecovery: true });
    world.advance(2 * HOUR_S * 1000);
    world.stytch.resetRequests();
    await world.sweep();
    expect(world.stytch.requests).toEqual([]);
    expect(await due()).toBeUndefined();
    expect(world.output.some((l) => l.includes('"level":"ERROR"') && l.includes('Not retired: the secret no longer exists'))).toBe(true);
  });

  it('clears, saying why, the intent of a finishSecret that died before moving AWSCURRENT, and never retires (I)', async () => {
    await make();
    const token = await world.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await world.invoke(step, token);
    let dead: number | undefined;
    world.interceptor = (call) => {
      if (call.invocation !== undefined && call.invocation === dead) return { when: 'before', error: call.service === 'stytch' ? 'drop' : 'NetworkError' };
      if (call.operation === 'UpdateSecretVersionStage') {
        dead = call.invocation;
        return { when: 'before', error: 'NetworkError' };
      }
      return undefined;
    };
    await expect(world.invoke('finishSecret', token)).rejects.toThrow();
    world.interceptor = undefined;
    expect(world.versionWith('AWSCURRENT')!.id).not.toBe(token);
    expect(await due()).toBeDefined();
    world.advance(2 * HOUR_S * 1000);
    await world.sweep();
    expect(world.stytchCalls('.rotate')).toHaveLength(0);
    expect(accepted(world.currentSecret())).toBe(true);
    expect(await due()).toBeUndefined();
    expect(world.output.some((l) => l.includes('never moved AWSCURRENT'))).toBe(true);
  });

  it('acts only on the bound client when AWSCURRENT now names another one (VII)', async () => {
    await make();
    await rotate();
    const victim = world.stytch.createConnectedApp(world.project.projectId, { clientType: 'first_party' });
    const value = JSON.parse(world.snapshot().versions[world.versionWith('AWSCURRENT')!.id]!.secretString!) as Record<string, unknown>;
    await world.sm.handle('PutSecretValue', {
      SecretId: world.secretArn,
      ClientRequestToken: randomUUID(),
      SecretString: JSON.stringify({ ...value, client_id: victim.client_id, client_secret: `forged-${victim.client_secret!.slice(-4)}` }),
    });
    world.advance(2 * HOUR_S * 1000);
    world.stytch.resetRequests();
    await expect(world.sweep()).rejects.toThrow(/names a client, project or credentials secret other than the bound client/);
    expect(world.stytch.requests).toEqual([]);
    expect(world.stytch.isAccepted(victim.client_id, victim.client_secret!)).toBe(true);
    expect(world.metricCounts().BindingRefused).toBe(1);
  });
});

describe('A new rotation inside the window', () => {
  it('retires the previous secret first (Stytch holds one next secret), counted and logged, then rotates with a window of its own', async () => {
    await make();
    const first = world.client.client_secret;
    await rotate();
    const second = world.currentSecret();
    await rotate();
    const third = world.currentSecret();
    expect(accepted(first)).toBe(false);
    expect(accepted(second)).toBe(true); // the new previous secret, in its own window
    expect(accepted(third)).toBe(true);
    expect(world.metricCounts().PreviousRetiredEarly).toBe(1);
    expect(world.output.some((l) => l.includes('inside the previous one\'s overlap window: retiring the previous secret early'))).toBe(true);
    const item = await world.stateItem();
    expect(item?.retire_version).toEqual({ S: world.versionWith('AWSCURRENT')!.id });
    expect(item?.retire_previous_last4).toEqual({ S: second.slice(-4) });
  });

  it('refuses a pending copy of the previous secret (still accepted in its window): nothing issued is never reported, and the window is kept', async () => {
    await make();
    const old = world.client.client_secret;
    await rotate();
    const previous = world.versionWith('AWSPREVIOUS')!;
    const token = randomUUID();
    world.sm.beginRotation(world.secretArn, token);
    await world.sm.handle('PutSecretValue', {
      SecretId: world.secretArn,
      ClientRequestToken: token,
      SecretString: world.snapshot().versions[previous.id]!.secretString!,
      VersionStages: ['AWSPENDING'],
    });
    world.stytch.resetRequests();
    await expect(world.invoke('createSecret', token)).rejects.toThrow(/holds the previous secret \(…\S{4}, still accepted until its overlap window ends\), not a new one\. Remove AWSPENDING/);
    await expect(world.invoke('finishSecret', token)).rejects.toThrow(/holds the previous secret/);
    expect(world.stytch.requests.filter((r) => /rotate/.test(r.operation))).toEqual([]);
    expect(world.versionWith('AWSCURRENT')!.id).not.toBe(token);
    expect(await due()).toBeDefined();
    world.advance(2 * HOUR_S * 1000);
    await world.sm.handle('UpdateSecretVersionStage', { SecretId: world.secretArn, VersionStage: 'AWSPENDING', RemoveFromVersionId: token }).catch(() => undefined);
    await world.sweep();
    expect(accepted(old)).toBe(false);
  });

  it('passes the configuration test during the window (Stytch accepts AWSCURRENT as its next secret)', async () => {
    await make();
    await rotate();
    await world.sm.handle('RotateSecret', { SecretId: world.secretArn, RotateImmediately: false });
    expect(world.sm.rotationHistory(world.secretArn).at(-1)?.attempts[0]?.steps[0]).toMatchObject({ step: 'testSecret', ok: true });
  });
});
