import { randomUUID } from 'node:crypto';
import { PutSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { afterEach, describe, expect, it } from 'vitest';
import { World, STEPS } from '../helpers/world.js';

/**
 * Every branch of DESIGN.md §4, through the handler built from source, against
 * the in-process Stytch and Secrets Manager emulators. Each test asserts both
 * sides: Secrets Manager's versions and stages, and Stytch's secrets.
 */

let world: World;
const make = async (options?: ConstructorParameters<typeof World>[0]) => (world = await new World(options).init());

afterEach(() => {
  // Invariant V over every test in this file: nothing printed or thrown holds a secret.
  if (world) expect(world.leaks()).toEqual([]);
});

const last4 = (s: string) => s.slice(-4);

describe('Rotation: a clean run of the four steps', () => {
  it('leaves AWSCURRENT accepted, the old secret rejected, Stytch not rotating, AWSPREVIOUS the old value and other fields unchanged', async () => {
    // Prepare
    await make({ extraFields: { audience: 'billing', nested: { a: [1, 2] } } });
    const old = world.client.client_secret;
    const oldVersion = world.versionWith('AWSCURRENT')!.id;

    // Act
    const token = await world.rotateAllSteps();

    // Assess
    const current = world.versionWith('AWSCURRENT')!;
    expect(current.id).toBe(token);
    expect(current.value).toEqual({ client_id: world.client.client_id, client_secret: expect.any(String), audience: 'billing', nested: { a: [1, 2] } });
    expect(current.value!.client_secret).not.toBe(old);
    expect(world.stytch.isAccepted(world.client.client_id, current.value!.client_secret as string)).toBe(true);
    expect(world.stytch.isAccepted(world.client.client_id, old)).toBe(false);
    expect(world.stytchState().nextClientSecretLast4).toBeNull();
    expect(world.versionWith('AWSPREVIOUS')).toEqual({ id: oldVersion, value: expect.objectContaining({ client_secret: old }) });
    expect(world.stytchCalls('rotate_start')).toHaveLength(1);
  });

  it('makes at most five Stytch calls: rotate/start, three reads and rotate', async () => {
    await make();
    await world.rotateAllSteps();
    expect(world.stytch.requests.map((r) => r.operation)).toEqual([
      'connected_app.rotate_start',
      'connected_app.get',
      'connected_app.get',
      'connected_app.get',
      'connected_app.rotate',
    ]);
  });

  it('reads the credentials secret once per warm container and each version value once, the empty pending version again under the lease', async () => {
    await make();
    world.newContainer();
    await world.rotateAllSteps();
    const reads = world.sm.calls.filter((c) => c.operation === 'GetSecretValue');
    // The credentials, AWSCURRENT, and the pending version while it is still empty: before the lease, and
    // again under it (createSecret decides on a fresh view: VI). A stored value is never read twice.
    expect(reads.map((c) => c.secretId).sort()).toEqual([world.secretArn, world.secretArn, world.secretArn, 'stytch/project-credentials'].sort());
    expect(world.sm.calls.map((c) => c.operation)).toEqual([
      'DescribeSecret',
      'GetSecretValue',
      'GetSecretValue',
      'GetSecretValue',
      'DescribeSecret',
      'GetSecretValue',
      'PutSecretValue',
      'DescribeSecret',
      'DescribeSecret',
      'DescribeSecret',
      'UpdateSecretVersionStage',
    ]);
  });

  it('makes two state-table calls per step: the lease taken (checking the binding) and given back', async () => {
    await make();
    await world.rotateAllSteps(); // the first rotation binds the secret to its client
    const before = world.externalCalls.length;
    await world.rotateAllSteps();
    const calls = world.externalCalls.slice(before).filter((c) => c.service === 'dynamodb');
    expect(calls.map((c) => `${c.step} ${c.operation}`)).toEqual(
      ['createSecret', 'setSecret', 'testSecret', 'finishSecret'].flatMap((step) => [`${step} UpdateItem`, `${step} UpdateItem`]),
    );
    expect(calls.filter((c) => c.leaseRelease)).toHaveLength(4);
  });

  it('passes the RotationToken to PutSecretValue when Secrets Manager sends one', async () => {
    await make();
    const token = await world.beginRotation();
    await world.invoke('createSecret', token, { RotationToken: 'rotation-token-0123456789-abcdefghijklmnop' });
    const puts = world.smMock.commandCalls(PutSecretValueCommand);
    expect(puts.map((c) => (c.args[0] as { input: unknown }).input)).toEqual([
      expect.objectContaining({ ClientRequestToken: token, VersionStages: ['AWSPENDING'], RotationToken: 'rotation-token-0123456789-abcdefghijklmnop' }),
    ]);
  });
});

describe('Step: createSecret', () => {
  it('starts a Stytch rotation and stores the next secret as AWSPENDING under the token', async () => {
    await make();
    const token = await world.beginRotation();
    await world.invoke('createSecret', token);
    const pending = world.versionWith('AWSPENDING')!;
    expect(pending.id).toBe(token);
    expect(world.stytchState().nextClientSecretLast4).toBe(last4(pending.value!.client_secret as string));
    expect(world.stytch.isAccepted(world.client.client_id, world.client.client_secret)).toBe(true);
    expect(world.stytch.isAccepted(world.client.client_id, pending.value!.client_secret as string)).toBe(true);
  });

  it('is a no-op when retried: exactly one rotate/start and the same pending value', async () => {
    await make();
    const token = await world.beginRotation();
    await world.invoke('createSecret', token);
    const first = world.versionWith('AWSPENDING')!.value;
    const from = world.output.length;
    await world.invoke('createSecret', token);
    expect(world.versionWith('AWSPENDING')!.value).toEqual(first);
    expect(world.stytchCalls('rotate_start')).toHaveLength(1);
    expect(world.metricCounts(world.output.slice(from))).toEqual({ RotationResumed: 1, StepSucceeded: 1 });
  });

  it('resumes in a new container (no cache) without minting a second secret', async () => {
    await make();
    const token = await world.beginRotation();
    await world.invoke('createSecret', token);
    world.newContainer();
    for (const step of STEPS) await world.invoke(step, token);
    expect(world.versionWith('AWSCURRENT')!.id).toBe(token);
    expect(world.stytchCalls('rotate_start')).toHaveLength(1);
  });

  it('completes a half-done rotation (Stytch next = AWSCURRENT) before starting, never cancelling it', async () => {
    // Prepare: a rotation whose AWSCURRENT moved but whose Stytch rotate never ran.
    await make();
    const first = await world.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await world.invoke(step, first);
    world.stytch.addFault({ operation: 'connected_app.rotate', mode: 'before', status: 503, times: Infinity });
    await expect(world.invoke('finishSecret', first)).rejects.toThrow(/rotate failed: 503/);
    world.stytch.clearFaults();
    const current = world.currentSecret();
    expect(world.stytchState().nextClientSecretLast4).toBe(last4(current));
    const previous = world.versionWith('AWSPREVIOUS')!.value!.client_secret as string;

    // Act: the next rotation.
    const second = await world.beginRotation();
    const from = world.output.length;
    await world.invoke('createSecret', second);

    // Assess: the half-done one completed (old retired), the current kept working throughout, a new one started.
    expect(world.stytch.isAccepted(world.client.client_id, current)).toBe(true);
    expect(world.stytch.isAccepted(world.client.client_id, previous)).toBe(false);
    expect(world.stytchState().clientSecretLast4).toBe(last4(current));
    expect(world.stytchState().nextClientSecretLast4).toBe(last4(world.versionWith('AWSPENDING')!.value!.client_secret as string));
    expect(world.stytchCalls('rotate_cancel')).toHaveLength(0);
    expect(world.metricCounts(world.output.slice(from))).toEqual({ HalfDoneCompleted: 1, RotationStarted: 1, StepSucceeded: 1 });
    expect(world.logLevels(world.output.slice(from)).WARN).toBe(1);
  });

  it('cancels an orphan next secret that Secrets Manager does not hold, then starts again', async () => {
    await make();
    const orphan = world.stytch.adminRotateStart(world.client.client_id);
    const token = await world.beginRotation();
    const from = world.output.length;
    await world.invoke('createSecret', token);
    expect(world.stytch.isAccepted(world.client.client_id, orphan)).toBe(false);
    const pending = world.versionWith('AWSPENDING')!.value!.client_secret as string;
    expect(world.stytch.isAccepted(world.client.client_id, pending)).toBe(true);
    expect(world.stytch.isAccepted(world.client.client_id, world.client.client_secret)).toBe(true);
    expect(world.stytchCalls('rotate_cancel')).toHaveLength(1);
    expect(world.metricCounts(world.output.slice(from))).toEqual({ OrphanRepaired: 1, RotationStarted: 1, StepSucceeded: 1 });
    expect(world.logLevels(world.output.slice(from)).WARN).toBe(1);
  });

  it('repairs a lost rotate/start answer: the retry sees "already rotating", cancels the lost secret and starts again', async () => {
    await make();
    world.stytch.addFault({ operation: 'connected_app.rotate_start', mode: 'after', status: 503 });
    const token = await world.beginRotation();
    const from = world.output.length;
    await world.invoke('createSecret', token);
    const pending = world.versionWith('AWSPENDING')!.value!.client_secret as string;
    expect(world.stytchState().nextClientSecretLast4).toBe(last4(pending));
    expect(world.stytchCalls('rotate_cancel')).toHaveLength(1);
    expect(world.metricCounts(world.output.slice(from))).toEqual({ StytchRetry: 1, OrphanRepaired: 1, RotationStarted: 1, StepSucceeded: 1 });
  });

  it('removes AWSPENDING and fails when Stytch no longer holds the pending secret (cancelled), saying the next rotation starts fresh', async () => {
    await make();
    const token = await world.beginRotation();
    await world.invoke('createSecret', token);
    world.stytch.adminRotateCancel(world.client.client_id);
    const from = world.output.length;
    await expect(world.invoke('createSecret', token)).rejects.toThrow(
      `Stytch no longer holds the pending secret of version ${token} (its rotation was cancelled). AWSPENDING was removed from that version; the next rotation starts fresh: aws secretsmanager rotate-secret --secret-id demo/stytch-client.`,
    );
    expect(world.snapshot().versions[token]!.stages).not.toContain('AWSPENDING');
    expect(world.stytchCalls('rotate_start')).toHaveLength(1);
    expect(world.metricCounts(world.output.slice(from))).toEqual({ DeadPendingCleared: 1, StepFailed: 1 });
  });

  it('rotates anyway when AWSCURRENT matches neither Stytch secret (drift), logging it at error level', async () => {
    await make();
    // Someone rotated in the dashboard and never told Secrets Manager: consumers are broken.
    world.stytch.adminRotateStart(world.client.client_id);
    world.stytch.adminRotate(world.client.client_id);
    const from = world.output.length;
    await world.rotateAllSteps();
    expect(world.stytch.isAccepted(world.client.client_id, world.currentSecret())).toBe(true);
    expect(world.metricCounts(world.output.slice(from))).toEqual({ DriftDetected: 1, RotationStarted: 1, RotationCompleted: 1, StepSucceeded: 4 });
    expect(world.logRecords(world.output.slice(from)).filter((r) => r.level === 'ERROR').map((r) => r.message)).toEqual([
      'Drift: AWSCURRENT is not the secret Stytch holds; rotating to repair it',
    ]);
  });

  it('cancels at Stytch when PutSecretValue fails and the value did not land, so no next secret is left unheld', async () => {
    await make();
    world.sm.addFault({ operation: 'PutSecretValue', mode: 'before', errorType: 'AccessDeniedException', times: 1 });
    const token = await world.beginRotation();
    const from = world.output.length;
    await expect(world.invoke('createSecret', token)).rejects.toThrow();
    expect(world.stytchCalls('rotate_cancel')).toHaveLength(1);
    expect(world.metricCounts(world.output.slice(from))).toEqual({ RotationCancelled: 1, StepFailed: 1 });
    expect(world.stytchState().nextClientSecretLast4).toBeNull();
    expect(world.snapshot().versions[token]!.secretString).toBeUndefined();
    expect(world.stytch.isAccepted(world.client.client_id, world.client.client_secret)).toBe(true);
  });

  it('goes on when PutSecretValue answers an error but the value landed', async () => {
    await make();
    world.sm.addFault({ operation: 'PutSecretValue', mode: 'after', errorType: 'AccessDeniedException', times: 1 });
    const token = await world.beginRotation();
    const from = world.output.length;
    await world.invoke('createSecret', token);
    expect(world.metricCounts(world.output.slice(from))).toEqual({ RotationStarted: 1, StepSucceeded: 1 });
    expect(world.stytchCalls('rotate_cancel')).toHaveLength(0);
    const pending = world.versionWith('AWSPENDING')!;
    expect(pending.id).toBe(token);
    expect(world.stytchState().nextClientSecretLast4).toBe(last4(pending.value!.client_secret as string));
  });
});

describe('Step: setSecret', () => {
  it('verifies Stytch still holds the pending secret and changes nothing', async () => {
    await make();
    const token = await world.beginRotation();
    await world.invoke('createSecret', token);
    const before = world.snapshot();
    await world.invoke('setSecret', token);
    expect(world.snapshot()).toEqual(before);
  });

  it('removes AWSPENDING and names the fix when the rotation was cancelled outside the function', async () => {
    await make();
    const token = await world.beginRotation();
    await world.invoke('createSecret', token);
    world.stytch.adminRotateCancel(world.client.client_id);
    await expect(world.invoke('setSecret', token)).rejects.toThrow(/does not hold the pending secret.*rotation was cancelled.*rotate-secret/s);
    expect(world.snapshot().versions[token]!.stages).toEqual([]);
    expect(world.versionWith('AWSCURRENT')!.value!.client_secret).toBe(world.client.client_secret);
  });

  it('rethrows a transient Stytch failure without cancelling, and the reattempt resumes', async () => {
    await make();
    const token = await world.beginRotation();
    await world.invoke('createSecret', token);
    world.stytch.addFault({ operation: 'connected_app.get', mode: 'before', status: 503, times: Infinity });
    await expect(world.invoke('setSecret', token)).rejects.toThrow(/503/);
    expect(world.stytchCalls('rotate_cancel')).toHaveLength(0);
    expect(world.versionWith('AWSPENDING')!.id).toBe(token);
    world.stytch.clearFaults();
    for (const step of STEPS) await world.invoke(step, token);
    expect(world.versionWith('AWSCURRENT')!.id).toBe(token);
  });
});

describe('Step: testSecret', () => {
  it('in a configuration test (no pending value) checks the setup and changes nothing', async () => {
    await make();
    const token = await world.beginRotation();
    const before = world.snapshot();
    await world.invoke('testSecret', token);
    expect(world.snapshot()).toEqual(before);
    expect(world.stytchCalls('rotate_start')).toHaveLength(0);
    expect(world.output.join('')).toContain('Configuration test passed');
  });

  it('in a configuration test fails when Stytch does not accept AWSCURRENT', async () => {
    await make();
    world.stytch.adminRotateStart(world.client.client_id);
    world.stytch.adminRotate(world.client.client_id);
    const token = await world.beginRotation();
    await expect(world.invoke('testSecret', token)).rejects.toThrow(/does not accept the AWSCURRENT secret.*Consumers of this secret are failing/);
  });

  it('in a configuration test rejects a public client', async () => {
    await make({ clientType: 'third_party_public' });
    const token = await world.beginRotation();
    await expect(world.invoke('testSecret', token)).rejects.toThrow(/public client \(third_party_public\).*no secret to rotate/);
  });

  it('proves an M2M pending secret authenticates with client_credentials', async () => {
    await make({ kind: 'm2m' });
    const token = await world.beginRotation();
    await world.invoke('createSecret', token);
    await world.invoke('setSecret', token);
    await world.invoke('testSecret', token);
    expect(world.stytchCalls('token')).toHaveLength(1);
  });

  it('cancels and clears AWSPENDING when the M2M probe is rejected (definitive)', async () => {
    await make({ kind: 'm2m' });
    const token = await world.beginRotation();
    await world.invoke('createSecret', token);
    world.stytch.addFault({ operation: 'm2m.token', mode: 'before', status: 401, errorType: 'invalid_client' });
    await expect(world.invoke('testSecret', token)).rejects.toThrow(/does not authenticate.*The rotation was cancelled: Stytch discarded the pending secret/s);
    expect(world.stytchState().nextClientSecretLast4).toBeNull();
    expect(world.snapshot().versions[token]!.stages).toEqual([]);
    expect(world.stytch.isAccepted(world.client.client_id, world.currentSecret())).toBe(true);
  });
});

describe('Step: finishSecret', () => {
  it('moves AWSCURRENT before calling rotate, so the current label is accepted at every instant', async () => {
    await make();
    const token = await world.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await world.invoke(step, token);
    world.stytch.addFault({ operation: 'connected_app.rotate', mode: 'before', status: 500, times: Infinity });
    await expect(world.invoke('finishSecret', token)).rejects.toThrow();
    // The label moved, Stytch still accepts both, and nothing was cancelled.
    expect(world.versionWith('AWSCURRENT')!.id).toBe(token);
    expect(world.stytch.isAccepted(world.client.client_id, world.currentSecret())).toBe(true);
    expect(world.stytchCalls('rotate_cancel')).toHaveLength(0);
    // Secrets Manager's reattempt completes it at Stytch.
    world.stytch.clearFaults();
    for (const step of STEPS) await world.invoke(step, token);
    expect(world.stytchState().nextClientSecretLast4).toBeNull();
    expect(world.stytch.isAccepted(world.client.client_id, world.client.client_secret)).toBe(false);
  });

  it('succeeds when rotate says "not rotating" because its first answer was lost', async () => {
    await make();
    world.stytch.addFault({ operation: 'connected_app.rotate', mode: 'after', status: 503 });
    await world.rotateAllSteps();
    expect(world.stytchState().clientSecretLast4).toBe(last4(world.currentSecret()));
    expect(world.stytch.isAccepted(world.client.client_id, world.client.client_secret)).toBe(false);
  });

  it('survives a lost UpdateSecretVersionStage answer: it finds the label moved and goes on', async () => {
    await make();
    world.sm.addFault({ operation: 'UpdateSecretVersionStage', mode: 'after', errorType: 'InternalServiceError' });
    const token = await world.rotateAllSteps();
    expect(world.versionWith('AWSCURRENT')!.id).toBe(token);
    expect(world.stytchState().nextClientSecretLast4).toBeNull();
  });

  it('does not move AWSCURRENT to a secret Stytch no longer accepts; clears AWSPENDING instead', async () => {
    await make();
    const token = await world.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await world.invoke(step, token);
    world.stytch.adminRotateCancel(world.client.client_id);
    await expect(world.invoke('finishSecret', token)).rejects.toThrow(/does not hold the pending secret/);
    expect(world.versionWith('AWSCURRENT')!.value!.client_secret).toBe(world.client.client_secret);
    expect(world.snapshot().versions[token]!.stages).toEqual([]);
  });

  it('on a version already AWSCURRENT completes the rotation at Stytch if it was left half done', async () => {
    await make();
    const token = await world.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await world.invoke(step, token);
    world.stytch.addFault({ operation: 'connected_app.rotate', mode: 'before', status: 503, times: Infinity });
    await expect(world.invoke('finishSecret', token)).rejects.toThrow();
    world.stytch.clearFaults();
    await world.invoke('finishSecret', token);
    expect(world.stytchState().nextClientSecretLast4).toBeNull();
    await world.invoke('finishSecret', token);
    expect(world.stytchCalls('rotate').filter((r) => r.status === 200)).toHaveLength(1);
  });

  it('every step invoked twice in a row reaches the same end state with one rotate/start', async () => {
    await make();
    const token = await world.beginRotation();
    for (const step of STEPS) {
      await world.invoke(step, token);
      await world.invoke(step, token);
    }
    expect(world.versionWith('AWSCURRENT')!.id).toBe(token);
    expect(world.stytchCalls('rotate_start')).toHaveLength(1);
    expect(world.stytch.isAccepted(world.client.client_id, world.client.client_secret)).toBe(false);
    expect(world.stytchState().nextClientSecretLast4).toBeNull();
  });
});

describe('Calls to Stytch', () => {
  it('does not fail the rotation when Stytch answers 429 and then 503', async () => {
    await make();
    world.stytch.addFault({ operation: 'connected_app.rotate_start', mode: 'before', status: 429 });
    world.stytch.addFault({ operation: 'connected_app.rotate_start', mode: 'before', status: 503 });
    const from = world.output.length;
    const token = await world.rotateAllSteps();
    expect(world.versionWith('AWSCURRENT')!.id).toBe(token);
    expect(world.metricCounts(world.output.slice(from))).toEqual({ StytchRetry: 2, RotationStarted: 1, RotationCompleted: 1, StepSucceeded: 4 });
  });

  it('re-reads the credentials secret once when Stytch answers 401 (the project secret was replaced)', async () => {
    await make();
    const token = await world.beginRotation();
    await world.invoke('createSecret', token);
    const { secret } = world.stytch.rotateProjectSecret(world.project.projectId);
    await world.sm.handle('PutSecretValue', {
      SecretId: 'stytch/project-credentials',
      ClientRequestToken: randomUUID(),
      SecretString: JSON.stringify({ project_id: world.project.projectId, secret }),
    });
    for (const step of ['setSecret', 'testSecret', 'finishSecret'] as const) await world.invoke(step, token);
    expect(world.versionWith('AWSCURRENT')!.id).toBe(token);
    expect(world.leaks([secret])).toEqual([]);
  });
});
