import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { LAMBDA_ARN, STATE_TABLE, World } from '../helpers/world.js';

/**
 * The state table's two guarantees, through the handler built from source:
 * one mutator per Stytch client (VI: a lease taken by every step, waited for,
 * taken over once expired) and a rotation acting only on the client bound to
 * its secret (VII). Races are made to happen on purpose with World.pause.
 */

let world: World;
const make = async (options?: ConstructorParameters<typeof World>[0]) => (world = await new World(options).init());

afterEach(() => {
  // Invariant V: nothing printed or thrown holds a secret.
  if (world) expect(world.leaks()).toEqual([]);
});

const stytchMutations = () => world.stytch.requests.filter((r) => /\.rotate(_start|_cancel)?$/.test(r.operation));

/** Another secret in the same account, rotated by the same function, holding `value`. */
async function otherSecret(name: string, value: Record<string, unknown>): Promise<string> {
  const { ARN } = (await world.sm.handle('CreateSecret', { Name: name, ClientRequestToken: randomUUID(), SecretString: JSON.stringify(value) })) as { ARN: string };
  await world.sm.handle('RotateSecret', { SecretId: ARN, RotationLambdaARN: LAMBDA_ARN, RotationRules: { ScheduleExpression: 'rate(30 days)' }, RotateImmediately: false });
  return ARN;
}

async function beginOn(arn: string): Promise<string> {
  const token = randomUUID();
  world.sm.beginRotation(arn, token);
  return token;
}

/** A whole rotation as Secrets Manager runs it (its driver removes AWSPENDING at the end). */
async function rotate(): Promise<void> {
  await world.sm.handle('RotateSecret', { SecretId: world.secretArn });
  expect(world.sm.rotationHistory(world.secretArn).at(-1)?.outcome).toBe('succeeded');
}

const invokeOn = (arn: string, step: string, token: string) => world.invokeRaw({ Step: step, SecretId: arn, ClientRequestToken: token });

describe('Lease: one mutator per Stytch client (VI)', () => {
  it('holds the lease for the whole step and gives it back: the item shows no lease afterwards', async () => {
    await make();
    const token = await world.beginRotation();
    const create = world.pause((c) => c.operation.endsWith('.rotate_start'));
    const running = world.invoke('createSecret', token);
    await create.reached;
    const held = await world.stateItem();
    expect(held?.lease_holder).toBeDefined();
    expect(held?.lease_what).toEqual({ S: `createSecret of version ${token}` });
    // The lease outlives the invocation's end (60 s in the test context) by a margin for a request in flight.
    expect(Number((held?.lease_until as { N: string }).N) - world.clock.now()).toBeGreaterThan(60_000);
    create.release();
    await running;
    const after = await world.stateItem();
    expect(after?.lease_holder).toBeUndefined();
    expect(after?.secret_arn).toEqual({ S: world.secretArn });
  });

  it('makes a step wait while another holds the lease, then go on with what that one did (createSecret twice at once: one rotate/start)', async () => {
    await make();
    const token = await world.beginRotation();
    const first = world.pause((c) => c.operation === 'PutSecretValue');
    const a = world.invokeRaw({ Step: 'createSecret', SecretId: world.secretArn, ClientRequestToken: token }, undefined, world.createContainer());
    await first.reached;
    // The second invocation takes its turn only after the first gave the lease back.
    const b = world.invokeRaw({ Step: 'createSecret', SecretId: world.secretArn, ClientRequestToken: token }, undefined, world.createContainer());
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(world.stytchCalls('rotate_start')).toHaveLength(1);
    first.release();
    await Promise.all([a, b]);
    expect(world.stytchCalls('rotate_start')).toHaveLength(1);
    expect(world.metricCounts()).toMatchObject({ LeaseContended: 1, RotationResumed: 1 });
    expect(world.stytchState().nextClientSecretLast4).toBe((world.versionWith('AWSPENDING')!.value!.client_secret as string).slice(-4));
  });

  it('fails as transient, changing nothing, when the lease stays held past its wait; Secrets Manager\'s reattempt then succeeds', async () => {
    await make();
    const token = await world.beginRotation();
    const stuck = world.pause((c) => c.operation.endsWith('.rotate_start'));
    const holder = world.invokeRaw({ Step: 'createSecret', SecretId: world.secretArn, ClientRequestToken: token }, undefined, world.createContainer());
    await stuck.reached;
    const waiter = world.invokeRaw({ Step: 'createSecret', SecretId: world.secretArn, ClientRequestToken: token }, undefined, world.createContainer());
    await expect(waiter).rejects.toThrow(/Another invocation holds the lease on Stytch client .* \(createSecret of version .*\): only one may change a client at a time\. This attempt changed nothing/);
    expect(world.errors.at(-1)?.name).toBe('LeaseBusyError');
    expect(world.output.some((l) => l.includes('"transient":true'))).toBe(true);
    stuck.release();
    await holder;
    await world.invoke('createSecret', token);
    expect(world.stytchCalls('rotate_start')).toHaveLength(1);
    for (const step of ['setSecret', 'testSecret', 'finishSecret'] as const) await world.invoke(step, token);
    expect(world.versionWith('AWSCURRENT')!.id).toBe(token);
  });

  it('does not act on a value that changed to another binding while the step waited for the lease', async () => {
    await make();
    const token = await world.beginRotation();
    const held = world.pause((c) => c.operation.endsWith('.rotate_start'));
    const first = world.invokeRaw({ Step: 'createSecret', SecretId: world.secretArn, ClientRequestToken: token }, undefined, world.createContainer());
    await held.reached;
    const second = world.invokeRaw({ Step: 'setSecret', SecretId: world.secretArn, ClientRequestToken: token }, undefined, world.createContainer());
    await new Promise((resolve) => setTimeout(resolve, 10));
    // Meanwhile a writer switches the value's client kind (same client id): a different binding.
    const value = JSON.parse(world.snapshot().versions[world.versionWith('AWSCURRENT')!.id]!.secretString!) as Record<string, unknown>;
    await world.sm.handle('UpdateSecretVersionStage', { SecretId: world.secretArn, VersionStage: 'AWSPENDING', RemoveFromVersionId: token }).catch(() => undefined);
    await world.sm.handle('PutSecretValue', { SecretId: world.secretArn, ClientRequestToken: randomUUID(), SecretString: JSON.stringify({ ...value, client_kind: 'm2m' }) });
    world.sm.beginRotation(world.secretArn, token);
    held.release();
    await first.catch(() => undefined);
    await expect(second).rejects.toThrow(/changed to another version while this step waited for its lease/);
    expect(world.stytch.requests.filter((r) => r.operation.startsWith('m2m.'))).toEqual([]);
  });

  it('takes over a lease whose holder died (expired), counting it', async () => {
    await make();
    const token = await world.beginRotation();
    // The holder dies after rotate/start: its remaining calls, the release included, never arrive.
    let dead: number | undefined;
    world.interceptor = (call) => {
      if (call.invocation !== undefined && call.invocation === dead) return { when: 'before', error: call.service === 'stytch' ? 'drop' : 'NetworkError' };
      if (call.operation.endsWith('.rotate_start')) {
        dead = call.invocation;
        return { when: 'after', error: 'drop' };
      }
      return undefined;
    };
    await expect(world.invoke('createSecret', token)).rejects.toThrow();
    world.interceptor = undefined;
    // World moves its clock past the dead holder's lease (the time the Lambda takes to time out).
    world.newContainer();
    await world.invoke('createSecret', token);
    expect(world.metricCounts().LeaseExpired).toBe(1);
    // The orphan the dead invocation minted is cancelled, a new secret stored: II holds.
    expect(world.metricCounts().OrphanRepaired).toBe(1);
    expect(world.stytchState().nextClientSecretLast4).toBe((world.versionWith('AWSPENDING')!.value!.client_secret as string).slice(-4));
  });

  it('does not report a lost lease when the give-back took effect and only its answer was lost (the SDK retries it)', async () => {
    await make({ smTransport: 'sdk' });
    const token = await world.beginRotation();
    let lost = false;
    world.interceptor = (call) => {
      if (call.leaseRelease && !lost) {
        lost = true;
        return { when: 'after', error: 'InternalServiceError' };
      }
      return undefined;
    };
    await world.invoke('createSecret', token);
    expect(lost).toBe(true);
    expect(world.metricCounts().LeaseLost ?? 0).toBe(0);
    expect(world.output.some((l) => l.includes('"level":"ERROR"'))).toBe(false);
    expect((await world.stateItem())?.lease_holder).toBeUndefined();
  });

  it('cancels a failed rotation under the same lease as its check that the version is not AWSCURRENT: a finishSecret waiting meanwhile then finds it cancelled', async () => {
    await make();
    const token = await world.beginRotation();
    await world.invoke('createSecret', token);
    // setSecret finds Stytch no longer holds the pending secret (cancelled in the dashboard, then restarted there).
    world.stytch.adminRotateCancel(world.client.client_id);
    world.stytch.adminRotateStart(world.client.client_id);
    const cancel = world.pause((c) => c.operation === 'UpdateSecretVersionStage' && c.step === 'setSecret');
    const set = world.invokeRaw({ Step: 'setSecret', SecretId: world.secretArn, ClientRequestToken: token }, undefined, world.createContainer());
    await cancel.reached;
    const finish = world.invokeRaw({ Step: 'finishSecret', SecretId: world.secretArn, ClientRequestToken: token }, undefined, world.createContainer());
    await new Promise((resolve) => setTimeout(resolve, 20));
    cancel.release();
    await expect(set).rejects.toThrow(/The rotation was cancelled/);
    // finishSecret waited for the lease, so it reads the labels again under it: the rotation is gone.
    await expect(finish).rejects.toThrow(/Version .* is not (labelled AWSPENDING|a version of secret)/);
    // AWSCURRENT never moved to the cancelled secret; it is still the one Stytch holds (I).
    expect(world.versionWith('AWSCURRENT')!.value!.client_secret).toBe(world.client.client_secret);
    expect(world.stytch.isAccepted(world.client.client_id, world.client.client_secret)).toBe(true);
  });
});

describe('Binding: a rotation acts only on the client bound to its secret (VII)', () => {
  it('binds the secret to its client, project and credentials at its first rotation, both ways', async () => {
    await make();
    await world.rotateAllSteps();
    expect(world.metricCounts().BindingCreated).toBe(1);
    expect(await world.stateItem()).toMatchObject({ secret_arn: { S: world.secretArn }, project_id: { S: world.project.projectId }, client_id: { S: world.client.client_id } });
    const secretSide = await world.dynamo.handle('GetItem', { TableName: STATE_TABLE, Key: { pk: { S: `secret#${world.secretArn}` } } });
    expect(secretSide.Item).toMatchObject({ project_id: { S: world.project.projectId }, client_id: { S: world.client.client_id } });
    expect((secretSide.Item as Record<string, unknown>).credentials_secret_id).toBeUndefined(); // the function's default credentials
  });

  it('binds in the configuration test (RotateImmediately=false), which changes nothing at Stytch or in Secrets Manager', async () => {
    await make();
    expect(await world.stateItem()).toMatchObject({ secret_arn: { S: world.secretArn }, client_kind: { S: 'connected_app' } });
    expect(world.stytch.requests.filter((r) => /rotate/.test(r.operation))).toEqual([]);
    expect(Object.keys(world.snapshot().versions)).toHaveLength(1);
  });

  it('refuses a value naming another client of the project before any Stytch call, logs it at error level, and leaves the other client alone', async () => {
    await make();
    await rotate(); // bound
    const victim = world.stytch.createConnectedApp(world.project.projectId, { clientType: 'first_party' });
    // A writer of this secret's value points it at the victim (with any secret ending in its public last four).
    const value = JSON.parse(world.snapshot().versions[world.versionWith('AWSCURRENT')!.id]!.secretString!) as Record<string, unknown>;
    await world.sm.handle('PutSecretValue', {
      SecretId: world.secretArn,
      ClientRequestToken: randomUUID(),
      SecretString: JSON.stringify({ ...value, client_id: victim.client_id, client_secret: `forged-${victim.client_secret!.slice(-4)}` }),
    });
    world.stytch.resetRequests();
    const token = await world.beginRotation();
    await expect(world.invoke('createSecret', token)).rejects.toThrow(
      new RegExp(`is bound to Stytch client ${world.client.client_id} of project ${world.project.projectId}, but its value names client ${victim.client_id}.*nothing was changed.*bind --secret-id`),
    );
    expect(world.stytch.requests).toEqual([]);
    expect(world.stytch.isAccepted(victim.client_id, victim.client_secret!)).toBe(true);
    expect(world.metricCounts().BindingRefused).toBe(1);
    expect(world.output.some((l) => l.includes('"level":"ERROR"') && l.includes('Refused: the value names a client other than the one this secret is bound to'))).toBe(true);
  });

  it('refuses a second secret naming a client that is already bound to another secret', async () => {
    await make();
    await world.rotateAllSteps();
    const second = await otherSecret('demo/second', { client_id: world.client.client_id, client_secret: world.currentSecret() });
    world.stytch.resetRequests();
    const token = await beginOn(second);
    await expect(invokeOn(second, 'createSecret', token)).rejects.toThrow(
      new RegExp(`Stytch client ${world.client.client_id} of project ${world.project.projectId} is bound to another secret \\(${world.secretArn.replace(/[/]/g, '\\/')}\\); secret .* may not rotate it`),
    );
    expect(world.stytch.requests).toEqual([]);
    // The refused secret is not left half bound: its own side was undone.
    const secretSide = await world.dynamo.handle('GetItem', { TableName: STATE_TABLE, Key: { pk: { S: `secret#${second}` } } });
    expect(secretSide.Item).toBeUndefined();
  });

  it('refuses a value that switches to another project\'s credentials secret with the same client id', async () => {
    await make();
    await rotate();
    const other = world.stytch.createProject();
    await world.sm.handle('CreateSecret', {
      Name: 'stytch/other-project',
      ClientRequestToken: randomUUID(),
      SecretString: JSON.stringify({ project_id: other.projectId, secret: other.secret }),
    });
    const value = JSON.parse(world.snapshot().versions[world.versionWith('AWSCURRENT')!.id]!.secretString!) as Record<string, unknown>;
    await world.sm.handle('PutSecretValue', {
      SecretId: world.secretArn,
      ClientRequestToken: randomUUID(),
      SecretString: JSON.stringify({ ...value, stytch_credentials_secret_id: 'stytch/other-project' }),
    });
    world.stytch.resetRequests();
    const token = await world.beginRotation();
    await expect(world.invoke('createSecret', token)).rejects.toThrow(/is bound to Stytch client .* of project .*, but its value names client .* of project project-/);
    expect(world.stytch.requests.filter((r) => r.operation !== 'm2m.token')).toEqual([]);
  });

  it('refuses a value that names another credentials secret of the same project', async () => {
    await make();
    await rotate();
    await world.sm.handle('CreateSecret', {
      Name: 'stytch/same-project-copy',
      ClientRequestToken: randomUUID(),
      SecretString: JSON.stringify({ project_id: world.project.projectId, secret: world.project.secret }),
    });
    const value = JSON.parse(world.snapshot().versions[world.versionWith('AWSCURRENT')!.id]!.secretString!) as Record<string, unknown>;
    await world.sm.handle('PutSecretValue', {
      SecretId: world.secretArn,
      ClientRequestToken: randomUUID(),
      SecretString: JSON.stringify({ ...value, stytch_credentials_secret_id: 'stytch/same-project-copy' }),
    });
    world.stytch.resetRequests();
    const token = await world.beginRotation();
    await expect(world.invoke('createSecret', token)).rejects.toThrow(
      /through the function's default credentials, but its value names credentials secret stytch\/same-project-copy; nothing was changed/,
    );
    expect(stytchMutations()).toEqual([]);
  });

  it('refuses in the configuration test too, without creating anything', async () => {
    await make();
    await world.rotateAllSteps();
    const second = await otherSecret('demo/second-config', { client_id: world.client.client_id, client_secret: world.currentSecret() });
    const history = world.sm.rotationHistory(second);
    expect(history.at(-1)?.attempts[0]?.steps[0]).toMatchObject({ step: 'testSecret', ok: false, error: expect.stringMatching(/is bound to another secret/) });
  });
});

describe('Bad input the state table adds', () => {
  it('refuses a pending version holding a copy of AWSCURRENT: a rotation that issued nothing is never reported', async () => {
    await make();
    const token = await world.beginRotation();
    const current = world.snapshot().versions[world.versionWith('AWSCURRENT')!.id]!.secretString!;
    await world.sm.handle('PutSecretValue', { SecretId: world.secretArn, ClientRequestToken: token, SecretString: current, VersionStages: ['AWSPENDING'] });
    world.stytch.resetRequests();
    for (const step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const) {
      await expect(world.invoke(step, token)).rejects.toThrow(/holds the same client_secret as AWSCURRENT, so it is not a new secret\. Remove AWSPENDING from it/);
    }
    expect(world.stytch.requests).toEqual([]);
    expect(world.versionWith('AWSCURRENT')!.id).not.toBe(token);
  });

  it('refuses every event without ROTATION_STATE_TABLE, saying what the table must be', async () => {
    await make({ env: { ROTATION_STATE_TABLE: '' } });
    world.stytch.resetRequests();
    const token = await world.beginRotation();
    await expect(world.invoke('createSecret', token)).rejects.toThrow(/ROTATION_STATE_TABLE is not set: .*partition key pk, TTL attribute expires_at/);
    await expect(world.sweep()).rejects.toThrow(/ROTATION_STATE_TABLE is not set/);
    expect(world.stytch.requests).toEqual([]);
  });

  it('names a state table that does not exist', async () => {
    await make({ env: { ROTATION_STATE_TABLE: 'no-such-table' } });
    const token = await world.beginRotation();
    await expect(world.invoke('createSecret', token)).rejects.toThrow(/The state table no-such-table does not exist in this account and region/);
  });

  it.each([['-1'], ['1.5'], ['604801'], ['an hour']])('refuses PREVIOUS_SECRET_GRACE_SECONDS=%s with the allowed range', async (value) => {
    await make({ env: { PREVIOUS_SECRET_GRACE_SECONDS: value } });
    const token = await world.beginRotation();
    await expect(world.invoke('createSecret', token)).rejects.toThrow(/PREVIOUS_SECRET_GRACE_SECONDS must be a whole number of seconds from 0 to 604800; unset it to use 3600/);
  });
});
