import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { CREDENTIALS_SECRET, LAMBDA_ARN, MANAGEMENT_SECRET, STEPS, World, fakeContext, type Container, type WorldOptions } from '../helpers/world.js';

/**
 * The less travelled branches of the project-secret rotation (DESIGN.md §4b):
 * a secret deleted outside between steps, a reattempted finishSecret, a put
 * whose answer was lost after it landed, a lease lost mid-step, and each of
 * the sweep's reasons to delete nothing.
 */

let world: World;
const HOUR = 3_600_000;
const make = async (options: WorldOptions = {}) =>
  (world = await new World({ kind: 'project_secret', ...options, env: { PREVIOUS_SECRET_GRACE_SECONDS: '3600', ...options.env } }).init());

afterEach(() => {
  if (world) expect(world.leaks()).toEqual([]);
});

const ps = () => world.projectSecret!;
const secretsAtStytch = () => world.stytch.projectSecrets(world.project.projectId).map((s) => s.secretId).sort();
const pending = () => world.versionWith('AWSPENDING')?.value as Record<string, string> | undefined;
const current = () => world.versionWith('AWSCURRENT')!.value as Record<string, string>;
const accepted = (secret: string) => world.stytch.isProjectSecretAccepted(world.project.projectId, secret);
const fail = (run: Promise<unknown>) => run.then(() => undefined, (e: unknown) => e as Error);
const logged = (text: string) => world.logRecords().filter((r) => String(r.message).includes(text));
const rotate = async () => {
  await world.sm.handle('RotateSecret', { SecretId: world.secretArn });
  expect(world.sm.rotationHistory(world.secretArn).at(-1)?.outcome).toBe('succeeded');
};

describe('Project secret: deleted outside between steps', () => {
  it('setSecret cancels when the new secret is gone at Stytch: AWSPENDING removed, nothing else deleted', async () => {
    await make();
    const token = await world.beginRotation();
    await world.invoke('createSecret', token);
    world.stytch.deleteProjectSecret(world.project.projectId, pending()!.secret_id!);
    const error = await fail(world.invoke('setSecret', token));
    expect(error?.message).toMatch(/Stytch has no secret \S+ in project \S+ any more: the pending project secret was deleted outside this function\./);
    expect(error?.message).toMatch(/The rotation was cancelled/);
    expect(pending()).toBeUndefined();
    expect(secretsAtStytch()).toEqual([world.project.secretId, ps().secret_id].sort());
  });

  it('finishSecret never moves AWSCURRENT to a secret Stytch no longer has (I)', async () => {
    await make();
    const token = await world.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await world.invoke(step, token);
    world.stytch.deleteProjectSecret(world.project.projectId, pending()!.secret_id!);
    const error = await fail(world.invoke('finishSecret', token));
    expect(error?.message).toMatch(/it was deleted outside this function/);
    expect(current().secret_id).toBe(ps().secret_id);
    expect(accepted(ps().secret)).toBe(true);
  });

  it('a resumed createSecret whose pending secret is gone removes AWSPENDING and says the next rotation starts fresh', async () => {
    await make();
    const token = await world.beginRotation();
    await world.invoke('createSecret', token);
    world.stytch.deleteProjectSecret(world.project.projectId, pending()!.secret_id!);
    const error = await fail(world.invoke('createSecret', token));
    expect(error?.message).toMatch(/Stytch no longer has the pending project secret \S+ of version \S+ \(it was deleted outside this function\)\. AWSPENDING was removed/);
    expect(pending()).toBeUndefined();
    expect(world.metricCounts().DeadPendingCleared).toBe(1);
  });
});

describe('Project secret: reattempts and lost answers', () => {
  it('a reattempted finishSecret after the move keeps the recorded deletion time', async () => {
    await make();
    const token = await world.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const) await world.invoke(step, token);
    const due = (await world.stateItem())?.retire_due;
    world.advance(60_000);
    await world.invoke('finishSecret', token);
    expect((await world.stateItem())?.retire_due).toEqual(due);
    expect(world.metricCounts().RetirementRecordedLate ?? 0).toBe(0);
  });

  it('a reattempted finishSecret records a deletion the moving step never recorded', async () => {
    await make();
    const old = { ...ps() };
    const token = await world.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await world.invoke(step, token);
    // The label moved outside the function (as if the step that moved it died before giving its lease back and its record was lost).
    await world.sm.handle('UpdateSecretVersionStage', {
      SecretId: world.secretArn,
      VersionStage: 'AWSCURRENT',
      MoveToVersionId: token,
      RemoveFromVersionId: world.versionWith('AWSCURRENT')!.id,
    });
    await world.invoke('finishSecret', token);
    expect(world.metricCounts().RetirementRecordedLate).toBe(1);
    expect((await world.stateItem())?.retire_previous_secret_id).toEqual({ S: old.secret_id });
    world.advance(HOUR + 1000);
    await world.sweep();
    expect(accepted(old.secret)).toBe(false);
  });

  it('goes on when PutSecretValue failed but the value landed', async () => {
    await make();
    const token = await world.beginRotation();
    world.interceptor = (c) => (c.operation === 'PutSecretValue' ? { when: 'after', error: 'InternalServiceError' } : undefined);
    await world.invoke('createSecret', token);
    world.interceptor = undefined;
    expect(pending()!.secret_id).toBeDefined();
    expect(secretsAtStytch()).toContain(pending()!.secret_id);
    expect(logged('PutSecretValue failed but the value landed')).toHaveLength(1);
  });

  it('stops, and deletes the secret it just created, when its lease was taken over mid-step (VI)', async () => {
    await make();
    const token = await world.beginRotation();
    const gate = world.pause((c) => c.operation === 'secrets.create', 'after');
    const first = fail(world.invoke('createSecret', token));
    await gate.reached;
    // The first invocation outlives its lease (deadline plus margin); a reattempt takes the lease over.
    world.advance(10 * 60_000);
    const second = world.invoke('createSecret', token);
    await second;
    gate.release();
    const error = await first;
    expect(error?.message).toMatch(/The lease on project \S+ expired during createSecret/);
    // The second one's secret is AWSPENDING's; the first one's was deleted: nothing left over.
    expect(secretsAtStytch()).toEqual([world.project.secretId, ps().secret_id, pending()!.secret_id!].sort());
    expect(world.metricCounts().LeaseLost).toBe(1);
  });
});

describe('Project secret: the sweep deletes nothing it cannot vouch for', () => {
  it('keeps the record while the secret is scheduled for deletion, and deletes after it is restored', async () => {
    await make();
    const old = { ...ps() };
    await rotate();
    world.advance(HOUR + 1000);
    await world.sm.handle('DeleteSecret', { SecretId: world.secretArn, RecoveryWindowInDays: 7 });
    await world.sweep();
    expect(accepted(old.secret)).toBe(true);
    expect((await world.stateItem())?.retire_due).toBeDefined();
    await world.sm.handle('RestoreSecret', { SecretId: world.secretArn });
    await world.sweep();
    expect(accepted(old.secret)).toBe(false);
  });

  it('clears a record whose previous secret is already gone, without an error', async () => {
    await make();
    await rotate();
    world.stytch.deleteProjectSecret(world.project.projectId, ps().secret_id);
    world.advance(HOUR + 1000);
    await world.sweep();
    expect(logged('Nothing to delete: Stytch no longer has the previous secret')).toHaveLength(1);
    expect((await world.stateItem())?.retire_due).toBeUndefined();
  });

  it('refuses to act on a value that now names another project environment (VII)', async () => {
    await make();
    const old = { ...ps() };
    await rotate();
    await world.sm.handle('PutSecretValue', { SecretId: world.secretArn, ClientRequestToken: randomUUID(), SecretString: JSON.stringify({ ...current(), environment_slug: 'elsewhere' }) });
    world.advance(HOUR + 1000);
    const error = await fail(world.sweep());
    expect(error?.message).toMatch(/could not retire 1 of 1/);
    expect(accepted(old.secret)).toBe(true);
    expect(world.metricCounts().BindingRefused).toBe(1);
  });

  it('deletes nothing when the recorded previous secret no longer ends as AWSCURRENT did', async () => {
    await make();
    const old = { ...ps() };
    await rotate();
    // Another secret now answers to that id's record (forged in the table by someone with write access to it).
    await world.dynamo.handle('UpdateItem', {
      TableName: 'rotation-state',
      Key: { pk: { S: `client#${world.project.projectId}#${world.project.projectSlug}/${world.project.environmentSlug}` } },
      UpdateExpression: 'SET retire_previous_last4 = :x',
      ExpressionAttributeValues: { ':x': { S: 'zzzz' } },
    });
    world.advance(HOUR + 1000);
    await world.sweep();
    expect(accepted(old.secret)).toBe(true);
    expect(logged('Not deleted: Stytch\'s secret')[0]?.level).toBe('ERROR');
  });
});

describe('The function\'s own credentials, when the credentials secret is the rotated project secret', () => {
  it('never uses a deleted project secret: another container\'s cached copy expires within the window, with no 401', async () => {
    // A client secret, rotated with the credentials secret's project secret; the credentials secret is itself rotated.
    world = await new World({ env: { PREVIOUS_SECRET_GRACE_SECONDS: '60', STYTCH_CREDENTIALS_TTL_SECONDS: '300' } }).init();
    const key = world.stytch.createWorkspaceKey();
    await world.sm.handle('CreateSecret', {
      Name: MANAGEMENT_SECRET,
      ClientRequestToken: randomUUID(),
      SecretString: JSON.stringify({ workspace_key_id: key.workspaceKeyId, workspace_key_secret: key.workspaceKeySecret }),
    });
    await world.sm.handle('PutSecretValue', {
      SecretId: CREDENTIALS_SECRET,
      ClientRequestToken: randomUUID(),
      SecretString: JSON.stringify({
        project_id: world.project.projectId,
        secret: world.project.secret,
        secret_id: world.project.secretId,
        project_slug: world.project.projectSlug,
        environment_slug: world.project.environmentSlug,
      }),
    });
    await world.sm.handle('RotateSecret', { SecretId: CREDENTIALS_SECRET, RotationLambdaARN: LAMBDA_ARN, RotationRules: { ScheduleExpression: 'rate(30 days)' }, RotateImmediately: false });
    const [a, b] = [world.createContainer(), world.createContainer()];
    const clientRotation = async (container: Container) => {
      const token = await world.beginRotation();
      for (const step of STEPS) await world.invokeRaw({ Step: step, SecretId: world.secretArn, ClientRequestToken: token }, fakeContext(), container);
      await world.sm.handle('UpdateSecretVersionStage', { SecretId: world.secretArn, VersionStage: 'AWSPENDING', RemoveFromVersionId: token });
    };

    // Container A caches the project secret while rotating the client.
    await clientRotation(a);
    world.advance(61_000);
    await world.sweep(a);
    // Container B rotates the project secret; after its window a sweep deletes the old one.
    const token = randomUUID();
    world.sm.beginRotation(CREDENTIALS_SECRET, token);
    for (const step of STEPS) await world.invokeRaw({ Step: step, SecretId: CREDENTIALS_SECRET, ClientRequestToken: token }, fakeContext(), b);
    world.advance(61_000);
    await world.sweep(b);
    expect(world.stytch.isProjectSecretAccepted(world.project.projectId, world.project.secret)).toBe(false);

    // A rotates the client again: its cached copy lasted no longer than the window, so it reads the new one first.
    const before = world.stytch.requests.length;
    await clientRotation(a);
    expect(world.stytch.requests.slice(before).filter((r) => r.status === 401)).toEqual([]);
  });
});

describe('Project secret: pending values and steps that must change nothing', () => {
  const putPending = async (token: string, value: Record<string, unknown>) =>
    world.sm.handle('PutSecretValue', { SecretId: world.secretArn, ClientRequestToken: token, VersionStages: ['AWSPENDING'], SecretString: JSON.stringify(value) });
  const mutations = () => world.stytch.requests.filter((r) => r.operation === 'secrets.create' || r.operation === 'secrets.delete');

  const refusals: Array<[string, (p: Record<string, string>) => Record<string, unknown>, RegExp]> = [
    ['another project_id', (p) => ({ ...p, project_id: 'project-test-99999999-9999-4999-8999-999999999999', secret: 'pending-0000', secret_id: 'secret-test-x' }), /names project project-test-9{8}-.* but AWSCURRENT names .*; a rotation never changes the project/],
    ['another project_slug', (p) => ({ ...p, project_slug: 'other', secret: 'pending-0000', secret_id: 'secret-test-x' }), /a rotation never changes the project/],
    ['another environment_slug', (p) => ({ ...p, environment_slug: 'live', secret: 'pending-0000', secret_id: 'secret-test-x' }), /a rotation never changes the project/],
    ['AWSCURRENT\'s secret again', (p) => ({ ...p, secret_id: 'secret-test-x' }), /holds the same secret as AWSCURRENT, so it is not a new secret/],
    ['AWSCURRENT\'s secret_id again', (p) => ({ ...p, secret: 'pending-0000' }), /holds the same secret as AWSCURRENT, so it is not a new secret/],
  ];
  for (const [name, value, message] of refusals) {
    for (const step of ['createSecret', 'setSecret'] as const) {
      it(`${step} refuses a pending value with ${name}, before any Stytch call`, async () => {
        await make();
        const token = await world.beginRotation();
        await putPending(token, value({ ...ps() }));
        const error = await fail(world.invoke(step, token));
        expect(error?.message).toMatch(message);
        expect(error?.message).toMatch(/Remove AWSPENDING from it \(aws secretsmanager update-secret-version-stage --secret-id demo\/stytch-client --version-stage AWSPENDING --remove-from-version-id \S+\) and rotate again\./);
        expect(world.stytch.requests).toEqual([]);
      });
    }
  }

  it('setSecret cancels a pending value whose secret_id ends otherwise at Stytch, deleting nothing', async () => {
    await make();
    const token = await world.beginRotation();
    await putPending(token, { ...ps(), secret_id: world.project.secretId, secret: 'forged-pending-zzzz' });
    const error = await fail(world.invoke('setSecret', token));
    expect(error?.message).toMatch(/AWSPENDING of demo\/stytch-client names secret_id \S+, which ends …\S{4} at Stytch, but its secret ends …zzzz/);
    expect(error?.message).toMatch(/The rotation was cancelled: AWSPENDING was removed/);
    expect(pending()).toBeUndefined();
    expect(mutations()).toEqual([]);
  });

  it('finishSecret refuses the same, leaving AWSCURRENT where it is', async () => {
    await make();
    const token = await world.beginRotation();
    await putPending(token, { ...ps(), secret_id: world.project.secretId, secret: 'forged-pending-zzzz' });
    const error = await fail(world.invoke('finishSecret', token));
    expect(error?.message).toMatch(/but its secret ends …zzzz/);
    expect(current().secret_id).toBe(ps().secret_id);
    expect((await world.stateItem())?.retire_due).toBeUndefined();
  });

  it('a step on a version that is already AWSCURRENT does nothing (only finishSecret checks the record)', async () => {
    await make();
    await rotate();
    const token = world.versionWith('AWSCURRENT')!.id;
    const before = world.stytch.requests.length;
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await world.invoke(step, token);
    expect(world.stytch.requests.length).toBe(before);
    expect(world.logRecords().filter((r) => r.message === 'The version is already AWSCURRENT: nothing to do')).toHaveLength(3);
  });

  it('a transient failure keeps AWSPENDING for the reattempt, cancelling nothing (IV)', async () => {
    await make();
    const token = await world.beginRotation();
    await world.invoke('createSecret', token);
    const created = pending()!.secret_id!;
    world.interceptor = (c) => (c.operation === 'secrets.get' ? { when: 'before', error: 503 } : undefined);
    const error = await fail(world.invoke('setSecret', token));
    world.interceptor = undefined;
    expect(error?.message).toMatch(/503/);
    expect(pending()!.secret_id).toBe(created);
    expect(secretsAtStytch()).toContain(created);
    await world.invoke('setSecret', token);
  });

  it('a definitive failure of the create other than the limit is passed through as it is, and clears the intent', async () => {
    await make();
    const token = await world.beginRotation();
    world.interceptor = (c) => (c.operation === 'secrets.create' ? { when: 'before', error: 400 } : undefined);
    const error = await fail(world.invoke('createSecret', token));
    world.interceptor = undefined;
    expect(error?.message).toMatch(/Stytch management\.secrets_create failed: 400/);
    expect(error?.message).not.toMatch(/50 secrets/);
    expect((await world.stateItem())?.created_version).toBeUndefined();
  });

  it('a failed finishSecret voids its deletion intent and restores the record it replaced', async () => {
    await make();
    await rotate();
    const recorded = (await world.stateItem())?.retire_due;
    expect(recorded).toBeDefined();
    // A second rotation up to testSecret inside the window retires the first one's previous secret early, then finishSecret fails.
    const token = await world.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await world.invoke(step, token);
    world.stytch.deleteProjectSecret(world.project.projectId, pending()!.secret_id!);
    await fail(world.invoke('finishSecret', token));
    // createSecret cleared the earlier record (its secret was deleted early); the intent finishSecret wrote is void.
    expect((await world.stateItem())?.retire_due).toBeUndefined();
  });

  it('after the window without a sweep, a new rotation deletes the previous secret as retired, not early', async () => {
    await make();
    const old = { ...ps() };
    await rotate();
    world.advance(HOUR + 1000);
    await rotate();
    expect(accepted(old.secret)).toBe(false);
    expect(world.metricCounts()).toMatchObject({ PreviousSecretRetired: 1 });
    expect(world.metricCounts().PreviousRetiredEarly ?? 0).toBe(0);
  });
});

describe('Project secret: the sweep, more reasons to wait or to delete nothing', () => {
  it('a use after the move but longer ago than 5 minutes does not put the deletion off', async () => {
    await make();
    const old = { ...ps() };
    await rotate();
    world.advance(10 * 60_000);
    await world.stytch.fetch(`http://127.0.0.1:9/v1/m2m/clients/${world.client.client_id}`, {
      headers: { authorization: `Basic ${Buffer.from(`${world.project.projectId}:${old.secret}`).toString('base64')}` },
    });
    world.advance(HOUR);
    await world.sweep();
    expect(accepted(old.secret)).toBe(false);
    expect(world.metricCounts().PreviousSecretStillUsed ?? 0).toBe(0);
  });

  it('clears, with an error naming what to do, when the secret was deleted for good', async () => {
    await make();
    const old = { ...ps() };
    await rotate();
    await world.sm.handle('DeleteSecret', { SecretId: world.secretArn, ForceDeleteWithoutRecovery: true });
    world.advance(HOUR + 1000);
    await world.sweep();
    expect(accepted(old.secret)).toBe(true);
    const record = logged('Not deleted: the secret no longer exists')[0];
    expect(record?.level).toBe('ERROR');
    expect(String(record?.message)).toContain(old.secret_id);
  });

  it('refuses a value that names another project_id with the same slugs (VII)', async () => {
    await make();
    const old = { ...ps() };
    await rotate();
    await world.sm.handle('PutSecretValue', {
      SecretId: world.secretArn,
      ClientRequestToken: randomUUID(),
      SecretString: JSON.stringify({ ...current(), project_id: 'project-test-99999999-9999-4999-8999-999999999999' }),
    });
    world.advance(HOUR + 1000);
    expect((await fail(world.sweep()))?.message).toMatch(/names a project other than the bound/);
    expect(accepted(old.secret)).toBe(true);
  });

  it('a deletion recorded late is due a whole window after, not at once', async () => {
    await make();
    const old = { ...ps() };
    const token = await world.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await world.invoke(step, token);
    await world.sm.handle('UpdateSecretVersionStage', { SecretId: world.secretArn, VersionStage: 'AWSCURRENT', MoveToVersionId: token, RemoveFromVersionId: world.versionWith('AWSCURRENT')!.id });
    await world.invoke('finishSecret', token);
    await world.sweep();
    expect(accepted(old.secret)).toBe(true);
  });
});
