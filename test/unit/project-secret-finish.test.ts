import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidInputError, RotationError, StytchApiError, TransientError, VerificationError } from '../../functions/lib/errors.js';
import type { RotationLogger, RotationMetric } from '../../functions/lib/observability.js';
import type { Retirement } from '../../functions/lib/state/table.js';
import { StytchHttp, type FetchFn } from '../../functions/lib/stytch/http.js';
import { fixedCredentials, managementCredentialsSource, probeProjectSecret, type ManagementApi, type ProjectSecretInfo } from '../../functions/lib/stytch/management.js';
import { projectBinding, RECENT_USE_MS, sweepProjectSecret } from '../../functions/rotate-stytch-secret/project-secret.js';
import type { RotationDeps } from '../../functions/rotate-stytch-secret/rotation.js';
import { World, type WorldOptions } from '../helpers/world.js';

/**
 * The project secret's later steps and its sweep (DESIGN.md §4b): what
 * setSecret, testSecret and finishSecret report, a finishSecret reattempted
 * after the label moved, a cancellation that must not delete what AWSCURRENT
 * holds or what this function never created, and each way the sweep decides
 * to delete, put off or clear. Each test asserts what Stytch was asked to do,
 * what the labels and the state table hold, and what the operator reads.
 */

let world: World;
const HOUR = 3_600_000;
const WINDOW_MS = 3600 * 1000;
/** Where the output of the test itself starts (init's configuration test comes before). */
let start = 0;
const make = async (options: WorldOptions = {}) => {
  world = await new World({ kind: 'project_secret', ...options, env: { PREVIOUS_SECRET_GRACE_SECONDS: '3600', ...options.env } }).init();
  start = world.output.length;
  return world;
};

afterEach(() => {
  // V: nothing printed or thrown holds a secret.
  if (world) expect(world.leaks()).toEqual([]);
});

const TABLE = 'rotation-state';
const ps = () => world.projectSecret!;
const secretsAtStytch = () => world.stytch.projectSecrets(world.project.projectId).map((s) => s.secretId).sort();
const current = () => world.versionWith('AWSCURRENT')!.value as Record<string, string>;
const pending = () => world.versionWith('AWSPENDING')?.value as Record<string, string> | undefined;
const accepted = (secret: string) => world.stytch.isProjectSecretAccepted(world.project.projectId, secret);
const fail = (run: Promise<unknown>) => run.then(() => undefined, (e: unknown) => e as Error);
const mutations = () => world.stytch.requests.filter((r) => r.operation === 'secrets.create' || r.operation === 'secrets.delete').map((r) => r.operation);
const last4 = (s: string) => s.slice(-4);
/** The outcome each successful step logged, in order. */
const outcomes = () => world.logRecords(world.output.slice(start)).filter((r) => r.message === 'Step succeeded').map((r) => r.outcome);
/** The last sweep's summary (retired, cleared, deferred, failed). */
const sweepSummary = () => world.logRecords().filter((r) => r.message === 'Retirement sweep done').at(-1);
const records = (text: string) => world.logRecords(world.output.slice(start)).filter((r) => String(r.message).startsWith(text));
const record = (text: string) => {
  const found = records(text);
  expect(found).toHaveLength(1);
  return found[0]!;
};
const num = (item: Record<string, unknown> | undefined, name: string) => Number((item?.[name] as { N: string } | undefined)?.N);
const str = (item: Record<string, unknown> | undefined, name: string) => (item?.[name] as { S: string } | undefined)?.S;
const clientKey = () => ({ pk: { S: `client#${world.project.projectId}#${world.project.projectSlug}/${world.project.environmentSlug}` } });
const forgeRecord = (set: string, values: Record<string, unknown>) =>
  world.dynamo.handle('UpdateItem', { TableName: TABLE, Key: clientKey(), UpdateExpression: set, ExpressionAttributeValues: values });
/** A request with the project secret, as an app that still uses it makes one (Stytch records the use). */
const useAtStytch = (secret: string) =>
  world.stytch.fetch(`http://127.0.0.1:9/v1/m2m/clients/${world.client.client_id}`, {
    headers: { authorization: `Basic ${Buffer.from(`${world.project.projectId}:${secret}`).toString('base64')}` },
  });
const putCurrent = (value: Record<string, unknown>) =>
  world.sm.handle('PutSecretValue', { SecretId: world.secretArn, ClientRequestToken: randomUUID(), SecretString: JSON.stringify(value) });
const putPending = (token: string, value: Record<string, unknown>) =>
  world.sm.handle('PutSecretValue', { SecretId: world.secretArn, ClientRequestToken: token, VersionStages: ['AWSPENDING'], SecretString: JSON.stringify(value) });
const moveCurrentTo = (token: string) =>
  world.sm.handle('UpdateSecretVersionStage', { SecretId: world.secretArn, VersionStage: 'AWSCURRENT', MoveToVersionId: token, RemoveFromVersionId: world.versionWith('AWSCURRENT')!.id });
const rotate = async () => {
  await world.sm.handle('RotateSecret', { SecretId: world.secretArn });
  expect(world.sm.rotationHistory(world.secretArn).at(-1)?.outcome).toBe('succeeded');
};
/** A rotation up to testSecret, whose AWSCURRENT was then moved outside the function (the step that moves it died first). */
const movedOutside = async () => {
  const token = await world.beginRotation();
  for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await world.invoke(step, token);
  await moveCurrentTo(token);
  return token;
};
/** Forgets every record of the state table: the next step finds no earlier item (its lease has no previous record). */
async function emptyTable(): Promise<void> {
  const { Items = [] } = (await world.dynamo.handle('Scan', { TableName: TABLE })) as { Items?: Array<{ pk: unknown }> };
  for (const item of Items) await world.dynamo.handle('DeleteItem', { TableName: TABLE, Key: { pk: item.pk } });
}

describe('Project secret: setSecret and testSecret say what they found', () => {
  it('setSecret and testSecret report the pending secret as verified, naming it', async () => {
    await make();
    const token = await world.beginRotation();
    await world.invoke('createSecret', token);
    const created = pending()!.secret_id;
    await world.invoke('setSecret', token);
    await world.invoke('testSecret', token);
    expect(outcomes()).toEqual(['created', 'verified', 'verified']);
    expect(record('Stytch has the pending project secret')).toMatchObject({ level: 'INFO', pendingSecretId: created });
    expect(record('The pending project secret authenticates at Stytch')).toMatchObject({ level: 'INFO', pendingSecretId: created });
  });

  it('the configuration test passes as configuration-ok', async () => {
    await make();
    const token = await world.beginRotation();
    await world.invoke('testSecret', token);
    expect(outcomes()).toEqual(['configuration-ok']);
  });

  it('the configuration test refuses an AWSCURRENT whose secret_id Stytch does not have, before probing it', async () => {
    await make();
    await putCurrent({ ...ps(), secret_id: 'secret-test-00000000-0000-4000-8000-000000000000' });
    const token = await world.beginRotation();
    const error = await fail(world.invoke('testSecret', token));
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error?.message).toBe(
      `Stytch has no secret secret-test-00000000-0000-4000-8000-000000000000 in project ${world.project.projectSlug}/${world.project.environmentSlug}, so the function cannot tell which secret AWSCURRENT is and would not know what to delete after the rotation. Nothing was changed. ` +
        `Set secret_id in demo/stytch-client to the id of the secret it holds (the CLI's status lists the project's secrets with their last four), then rotate again.`,
    );
    expect(world.stytch.requests.map((r) => r.operation)).toEqual(['secrets.get']);
  });

  it('the configuration test refuses an AWSCURRENT whose secret_id is another secret at Stytch, before probing it', async () => {
    await make();
    await putCurrent({ ...ps(), secret_id: world.project.secretId });
    const token = await world.beginRotation();
    const error = await fail(world.invoke('testSecret', token));
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error?.message).toMatch(
      new RegExp(`^Stytch's secret ${world.project.secretId} ends …${last4(world.project.secret)}, but AWSCURRENT's secret ends …${last4(ps().secret)}, so the function cannot tell`),
    );
    expect(world.stytch.requests.map((r) => r.operation)).toEqual(['secrets.get']);
  });

  it('the configuration test names AWSCURRENT\'s secret when it does not authenticate, and says nothing was changed', async () => {
    await make();
    const victim = world.stytch.createProjectSecret(world.project.projectId);
    await putCurrent({ ...ps(), secret_id: victim.secretId, secret: `forged-current-${last4(victim.secret)}` });
    const token = await world.beginRotation();
    const error = await fail(world.invoke('testSecret', token));
    expect(error).toBeInstanceOf(VerificationError);
    expect(error?.message).toMatch(new RegExp(`^AWSCURRENT's project secret ${victim.secretId} does not authenticate at Stytch's project API \\(401 .*\\)\\. Nothing was changed\\.`));
    expect(mutations()).toEqual([]);
  });

  it('testSecret names the new secret when it does not authenticate, cancels, and says how to start again', async () => {
    await make();
    const token = await world.beginRotation();
    await world.invoke('createSecret', token);
    await world.invoke('setSecret', token);
    const created = pending()!.secret_id!;
    world.interceptor = (c) => (c.operation === 'm2m.get' ? { when: 'before', error: 403 } : undefined);
    const error = await fail(world.invoke('testSecret', token));
    world.interceptor = undefined;
    expect(error).toBeInstanceOf(RotationError);
    expect(error?.message).toMatch(new RegExp(`^The new project secret ${created} does not authenticate at Stytch's project API \\(403 [^)]*\\)\\. The rotation was cancelled`));
    expect(error?.message).toMatch(
      new RegExp(`The rotation was cancelled: Stytch's new secret ${created} was deleted and AWSPENDING was removed from version ${token}; AWSCURRENT is unchanged and still works\\. Fix the cause, then run aws secretsmanager rotate-secret --secret-id demo/stytch-client\\.$`),
    );
    // The cause is the probe's refusal, for whoever reads the chain.
    expect(error?.cause).toBeInstanceOf(VerificationError);
    expect((error?.cause as Error).message).toMatch(/^The new project secret /);
    expect(record('Rotation cancelled')).toMatchObject({ level: 'WARN', deletedAtStytch: true });
    expect(JSON.stringify(record('Rotation cancelled').error)).toContain('does not authenticate');
    expect(secretsAtStytch()).not.toContain(created);
    expect(pending()).toBeUndefined();
  });
});

describe('Project secret: finishSecret', () => {
  it('reports rotated-overlap and names both secrets and when the previous one is deleted', async () => {
    await make();
    const old = { ...ps() };
    const token = await world.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await world.invoke(step, token);
    const created = pending()!.secret_id;
    await world.invoke('finishSecret', token);
    expect(outcomes().at(-1)).toBe('rotated-overlap');
    const item = await world.stateItem();
    expect(num(item, 'retire_due') - num(item, 'retire_moved_at')).toBe(WINDOW_MS);
    expect(record('Rotation complete')).toMatchObject({
      level: 'INFO',
      pendingSecretId: created,
      previousSecretId: old.secret_id,
      previousSecretDeletedAfter: new Date(num(item, 'retire_due')).toISOString(),
    });
  });

  it('records the deletion before AWSCURRENT moves, due a whole window after the lease ends (III)', async () => {
    await make();
    const old = { ...ps() };
    const token = await world.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await world.invoke(step, token);
    const gate = world.pause((c) => c.operation === 'UpdateSecretVersionStage' && c.step === 'finishSecret');
    const finishing = world.invoke('finishSecret', token);
    await gate.reached;
    // Were the step to die here, after the move, the deletion is already recorded.
    const intent = await world.stateItem();
    expect(str(intent, 'retire_version')).toBe(token);
    expect(str(intent, 'retire_previous_secret_id')).toBe(old.secret_id);
    expect(str(intent, 'retire_previous_last4')).toBe(last4(old.secret));
    expect(num(intent, 'lease_until')).toBeGreaterThan(world.clock.now());
    expect(num(intent, 'retire_moved_at')).toBe(num(intent, 'lease_until'));
    expect(num(intent, 'retire_due') - num(intent, 'retire_moved_at')).toBe(WINDOW_MS);
    gate.release();
    await finishing;
    expect(current().secret_id).not.toBe(old.secret_id);
  });

  it('on a version with no value yet, fails as transient naming createSecret', async () => {
    await make();
    const token = await world.beginRotation();
    const error = await fail(world.invoke('finishSecret', token));
    expect(error).toBeInstanceOf(TransientError);
    expect(error?.message).toBe(`Version ${token} of secret demo/stytch-client has no value yet: createSecret has not completed. Secrets Manager reattempts the rotation from createSecret.`);
    expect(current().secret_id).toBe(ps().secret_id);
  });

  it('refuses a pending value whose secret_id ends otherwise at Stytch, naming AWSPENDING', async () => {
    await make();
    const token = await world.beginRotation();
    await putPending(token, { ...ps(), secret_id: world.project.secretId, secret: 'forged-pending-zzzz' });
    const error = await fail(world.invoke('finishSecret', token));
    expect(error?.message).toMatch(new RegExp(`^AWSPENDING of demo/stytch-client names secret_id ${world.project.secretId}, which ends …${last4(world.project.secret)} at Stytch, but its secret ends …zzzz`));
    expect(current().secret_id).toBe(ps().secret_id);
  });

  it('never cancels a pending version that became AWSCURRENT meanwhile: nothing deleted, AWSPENDING kept (I)', async () => {
    await make();
    const token = await world.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await world.invoke(step, token);
    const created = pending()!;
    // finishSecret's check at Stytch is refused definitively, and meanwhile AWSCURRENT moves to the version outside the function.
    const gate = world.pause((c) => c.operation === 'secrets.get' && c.step === 'finishSecret');
    world.interceptor = (c) => (c.operation === 'secrets.get' && c.step === 'finishSecret' ? { when: 'before', error: 400 } : undefined);
    const finishing = fail(world.invoke('finishSecret', token));
    await gate.reached;
    await moveCurrentTo(token);
    gate.release();
    const error = await finishing;
    world.interceptor = undefined;
    expect(error).toBeInstanceOf(RotationError);
    expect(error?.message).toMatch(
      new RegExp(`The rotation could not be cancelled \\(the pending version is already AWSCURRENT\\.\\), so AWSPENDING stays on version ${token} and Secrets Manager's next attempt resumes or cancels it\\.$`),
    );
    expect(error?.cause).toBeInstanceOf(StytchApiError);
    expect((error?.cause as StytchApiError).statusCode).toBe(400);
    const logged = record('The failed rotation could not be cancelled');
    expect(logged.level).toBe('ERROR');
    expect(JSON.stringify(logged.compensationError)).toContain('the pending version is already AWSCURRENT');
    expect(JSON.stringify(logged.error)).toContain('400');
    // AWSCURRENT's secret is intact and still works.
    expect(accepted(created.secret!)).toBe(true);
    expect(mutations()).toEqual(['secrets.create']);
    expect(world.versionWith('AWSPENDING')?.id).toBe(token);
    expect(world.metricCounts().RotationCancelled ?? 0).toBe(0);
  });

  it('cancels cleanly when AWSPENDING was taken off the version meanwhile: the secret nobody holds is deleted (II)', async () => {
    await make();
    const token = await world.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await world.invoke(step, token);
    const created = pending()!;
    const gate = world.pause((c) => c.operation === 'secrets.get' && c.step === 'finishSecret');
    world.interceptor = (c) => (c.operation === 'secrets.get' && c.step === 'finishSecret' ? { when: 'before', error: 400 } : undefined);
    const finishing = fail(world.invoke('finishSecret', token));
    await gate.reached;
    // The version now has no label at all.
    await world.sm.handle('UpdateSecretVersionStage', { SecretId: world.secretArn, VersionStage: 'AWSPENDING', RemoveFromVersionId: token });
    gate.release();
    const error = await finishing;
    world.interceptor = undefined;
    expect(error?.message).toMatch(new RegExp(`The rotation was cancelled: Stytch's new secret ${created.secret_id} was deleted and AWSPENDING was removed from version ${token}`));
    expect(secretsAtStytch()).not.toContain(created.secret_id);
    expect(world.metricCounts().RotationCancelled).toBe(1);
    expect(current().secret_id).toBe(ps().secret_id);
  });
});

describe('Project secret: a cancellation deletes only a secret this function recorded creating for the version (II)', () => {
  it('never deletes the secret a hostile AWSPENDING names when the record holds only an unanswered create', async () => {
    await make();
    const victim = world.stytch.createProjectSecret(world.project.projectId);
    const token = await world.beginRotation();
    // The create took effect but its answer was lost: the record names the version, with no secret id.
    world.interceptor = (c) => (c.operation === 'secrets.create' ? { when: 'after', error: 'drop' } : undefined);
    await fail(world.invoke('createSecret', token));
    world.interceptor = undefined;
    expect(str(await world.stateItem(), 'created_version')).toBe(token);
    // Someone then writes a value naming another team's secret under that version.
    await putPending(token, { ...ps(), secret_id: victim.secretId, secret: `forged-value-${last4(victim.secret)}` });
    await world.invoke('createSecret', token);
    await world.invoke('setSecret', token);
    const error = await fail(world.invoke('testSecret', token));
    expect(error?.message).toMatch(new RegExp(`The rotation was cancelled: AWSPENDING was removed from version ${token};`));
    expect(accepted(victim.secret)).toBe(true);
    expect(secretsAtStytch()).toContain(victim.secretId);
    expect(mutations()).toEqual(['secrets.create']);
    expect(record('The pending project secret was not deleted')).toMatchObject({ level: 'WARN', pendingSecretId: victim.secretId });
    expect(record('Rotation cancelled')).toMatchObject({ level: 'WARN', deletedAtStytch: false });
  });

  it('cancels, deleting nothing, when the table holds no earlier record at all', async () => {
    await make();
    const token = await world.beginRotation();
    await putPending(token, { ...ps(), secret_id: world.project.secretId, secret: 'forged-pending-zzzz' });
    await emptyTable();
    const error = await fail(world.invoke('setSecret', token));
    expect(error?.message).toMatch(new RegExp(`The rotation was cancelled: AWSPENDING was removed from version ${token};`));
    expect(pending()).toBeUndefined();
    expect(mutations()).toEqual([]);
    expect(world.metricCounts().RotationCancelled).toBe(1);
  });
});

describe('Project secret: finishSecret again after the label moved', () => {
  it('keeps the recorded deletion of its own rotation, and says so', async () => {
    await make();
    const token = await world.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const) await world.invoke(step, token);
    const before = await world.stateItem();
    await world.invoke('finishSecret', token);
    expect(outcomes().at(-1)).toBe('already-current');
    expect(record('The version is already AWSCURRENT; the previous project secret is deleted when its overlap window ends').level).toBe('INFO');
    expect(num(await world.stateItem(), 'retire_due')).toBe(num(before, 'retire_due'));
  });

  it('leaves another rotation\'s record as it is', async () => {
    await make();
    await rotate();
    const rotated = world.versionWith('AWSCURRENT')!.id;
    const before = await world.stateItem();
    expect(str(before, 'retire_version')).toBe(rotated);
    // A value put outside the function becomes AWSCURRENT, holding another secret; its finishSecret comes.
    const other = world.stytch.createProjectSecret(world.project.projectId);
    await putCurrent({ ...ps(), secret_id: other.secretId, secret: other.secret });
    const outside = world.versionWith('AWSCURRENT')!.id;
    await world.invoke('finishSecret', outside);
    expect(outcomes().at(-1)).toBe('already-current');
    const after = await world.stateItem();
    expect(str(after, 'retire_version')).toBe(rotated);
    expect(num(after, 'retire_due')).toBe(num(before, 'retire_due'));
    expect(str(after, 'retire_previous_secret_id')).toBe(str(before, 'retire_previous_secret_id'));
    expect(world.metricCounts().RetirementRecordedLate ?? 0).toBe(0);
  });

  it('does nothing on the first version, with no previous one and no earlier record', async () => {
    await make();
    await emptyTable();
    await world.invoke('finishSecret', world.versionWith('AWSCURRENT')!.id);
    expect(outcomes()).toEqual(['already-current']);
    expect(record('The version is already AWSCURRENT: nothing to do').level).toBe('INFO');
    expect((await world.stateItem())?.retire_due).toBeUndefined();
    expect(world.stytch.requests).toEqual([]);
  });

  it('records nothing when AWSPREVIOUS holds the same secret (a value changed outside, not rotated)', async () => {
    await make();
    await putCurrent({ ...ps(), note: 'edited outside' });
    await world.invoke('finishSecret', world.versionWith('AWSCURRENT')!.id);
    expect(outcomes()).toEqual(['already-current']);
    expect((await world.stateItem())?.retire_due).toBeUndefined();
    expect(world.metricCounts().RetirementRecordedLate ?? 0).toBe(0);
    expect(world.stytch.requests).toEqual([]);
  });

  it('records nothing when AWSPREVIOUS is not a project secret value', async () => {
    await make();
    await putCurrent({ not: 'a project secret' });
    await putCurrent({ ...ps() });
    await world.invoke('finishSecret', world.versionWith('AWSCURRENT')!.id);
    expect(outcomes()).toEqual(['already-current']);
    expect((await world.stateItem())?.retire_due).toBeUndefined();
    expect(world.stytch.requests).toEqual([]);
  });

  it('records a deletion never recorded, due a whole window after now, and warns naming the secret', async () => {
    await make();
    const old = { ...ps() };
    const token = await movedOutside();
    await world.invoke('finishSecret', token);
    expect(outcomes().at(-1)).toBe('already-current');
    const item = await world.stateItem();
    expect(str(item, 'retire_previous_secret_id')).toBe(old.secret_id);
    expect(num(item, 'retire_due') - num(item, 'retire_moved_at')).toBe(WINDOW_MS);
    expect(record('The deletion of the previous project secret had not been recorded')).toMatchObject({ level: 'WARN', previousSecretId: old.secret_id });
    expect(world.metricCounts().RetirementRecordedLate).toBe(1);
  });

  it('still records late when a newer rotation has begun but its createSecret has not stored anything (III)', async () => {
    await make();
    const old = { ...ps() };
    const token = await movedOutside();
    await world.beginRotation();
    await world.invoke('finishSecret', token);
    expect(world.metricCounts().RetirementRecordedLate).toBe(1);
    expect(world.metricCounts().PreviousRetiredEarly ?? 0).toBe(0);
    expect(accepted(old.secret)).toBe(true);
    expect(mutations()).toEqual(['secrets.create']);
    expect(str(await world.stateItem(), 'retire_previous_secret_id')).toBe(old.secret_id);
  });

  it('does not take its own version for a newer rotation when AWSCURRENT moved back meanwhile: deletes nothing (I)', async () => {
    await make();
    const old = { ...ps() };
    const token = await movedOutside();
    const v0 = world.versionWith('AWSPREVIOUS')!.id;
    // Between reading the labels and looking for a newer rotation, AWSCURRENT is moved back outside the function:
    // the version keeps AWSPENDING, and the secret the step would call previous is AWSCURRENT's again.
    let describes = 0;
    const gate = world.pause((c) => c.operation === 'DescribeSecret' && c.step === 'finishSecret' && ++describes === 2);
    const finishing = world.invoke('finishSecret', token);
    await gate.reached;
    await world.sm.handle('UpdateSecretVersionStage', { SecretId: world.secretArn, VersionStage: 'AWSCURRENT', MoveToVersionId: v0, RemoveFromVersionId: token });
    gate.release();
    await finishing;
    expect(current().secret_id).toBe(old.secret_id);
    expect(accepted(old.secret)).toBe(true);
    expect(mutations()).toEqual(['secrets.create']);
    expect(world.metricCounts().PreviousRetiredEarly ?? 0).toBe(0);
  });

  it('deletes early, naming the secret, when a newer rotation\'s createSecret ran', async () => {
    await make();
    const old = { ...ps() };
    const token = await movedOutside();
    const newer = await world.beginRotation();
    await world.invoke('createSecret', newer);
    await world.invoke('finishSecret', token);
    expect(outcomes().at(-1)).toBe('already-current');
    expect(accepted(old.secret)).toBe(false);
    expect(record('A newer rotation has started: deleted the previous project secret early')).toMatchObject({ level: 'WARN', retiredSecretId: old.secret_id });
    expect(world.metricCounts().PreviousRetiredEarly).toBe(1);
  });

  it('when a newer rotation\'s createSecret ran and the previous secret is already gone, says so and counts nothing as deleted', async () => {
    await make();
    const old = { ...ps() };
    const token = await movedOutside();
    const newer = await world.beginRotation();
    await world.invoke('createSecret', newer);
    world.stytch.deleteProjectSecret(world.project.projectId, old.secret_id);
    await world.invoke('finishSecret', token);
    expect(outcomes().at(-1)).toBe('already-current');
    expect(record(`Nothing to delete: Stytch no longer has the previous secret ${old.secret_id}`)).toMatchObject({ level: 'INFO', previousSecretId: old.secret_id });
    expect(world.metricCounts().PreviousRetiredEarly ?? 0).toBe(0);
    expect(world.metricCounts().RetirementRecordedLate ?? 0).toBe(0);
    expect(records('A newer rotation has started')).toEqual([]);
  });
});

describe('Project secret: the sweep\'s outcomes', () => {
  it('retires after the window, naming the secret and when its window ended', async () => {
    await make();
    const old = { ...ps() };
    await rotate();
    const due = num(await world.stateItem(), 'retire_due');
    world.advance(HOUR + 1000);
    await world.sweep();
    expect(sweepSummary()).toMatchObject({ due: 1, retired: 1, cleared: 0, deferred: 0, failed: 0 });
    expect(record('Deleted the previous project secret: its overlap window has ended')).toMatchObject({
      level: 'INFO',
      secretArn: world.secretArn,
      retiredSecretId: old.secret_id,
      windowEndedAt: new Date(due).toISOString(),
    });
    expect((await world.stateItem())?.retire_due).toBeUndefined();
  });

  it('puts a deletion off, then deletes after it was put off once, naming the secret and its last use', async () => {
    await make({ env: { PROJECT_SECRET_IN_USE_DEFER_SECONDS: '7200' } });
    const old = { ...ps() };
    await rotate();
    world.advance(HOUR + 1000);
    await useAtStytch(old.secret);
    await world.sweep();
    expect(sweepSummary()).toMatchObject({ deferred: 1, retired: 0, cleared: 0 });
    const item = await world.stateItem();
    expect(num(item, 'retire_deferred')).toBe(1);
    world.advance(2 * HOUR + 1000);
    await useAtStytch(old.secret);
    await world.sweep();
    expect(sweepSummary()).toMatchObject({ retired: 1, deferred: 0 });
    const now = record('The previous project secret is still in use after its deletion was put off once');
    expect(now).toMatchObject({ level: 'WARN', secretArn: world.secretArn, previousSecretId: old.secret_id });
    expect(typeof now.lastUsedAt).toBe('string');
    expect(accepted(old.secret)).toBe(false);
  });

  it('keeps the record, deferred, while the secret is scheduled for deletion', async () => {
    await make();
    await rotate();
    world.advance(HOUR + 1000);
    await world.sm.handle('DeleteSecret', { SecretId: world.secretArn, RecoveryWindowInDays: 7 });
    await world.sweep();
    expect(sweepSummary()).toMatchObject({ due: 1, deferred: 1, retired: 0, cleared: 0, failed: 0 });
    expect(record('Not deleted yet: the secret is scheduled for deletion')).toMatchObject({ level: 'WARN', secretArn: world.secretArn });
    expect(world.metricCounts().RetirementDeferred).toBe(1);
    expect((await world.stateItem())?.retire_due).toBeDefined();
  });

  it('clears the record, with an error naming the secret, when the secret was deleted for good', async () => {
    await make();
    await rotate();
    world.advance(HOUR + 1000);
    const arn = world.secretArn;
    await world.sm.handle('DeleteSecret', { SecretId: arn, ForceDeleteWithoutRecovery: true });
    await world.sweep();
    expect(sweepSummary()).toMatchObject({ due: 1, cleared: 1, deferred: 0, retired: 0 });
    expect(record('Not deleted: the secret no longer exists')).toMatchObject({ level: 'ERROR', secretArn: arn });
    expect((await world.stateItem())?.retire_due).toBeUndefined();
  });

  it('fails on an AWSCURRENT that is not a project secret value, naming the secret and the fix', async () => {
    await make();
    const old = { ...ps() };
    await rotate();
    await putCurrent({ ...current(), secret: 'abc' });
    world.advance(HOUR + 1000);
    const error = await fail(world.sweep());
    expect(error?.message).toMatch(/could not retire 1 of 1/);
    expect(error?.message).toMatch(/The AWSCURRENT value of secret demo\/stytch-client .*fix it with aws secretsmanager put-secret-value\./);
    expect(accepted(old.secret)).toBe(true);
  });

  it('clears a record that names no previous secret, with an error and without asking Stytch anything', async () => {
    await make();
    const old = { ...ps() };
    await rotate();
    await forgeRecord('SET retire_previous_secret_id = :x', { ':x': { S: '' } });
    world.advance(HOUR + 1000);
    world.stytch.resetRequests();
    await world.sweep();
    expect(world.stytch.requests).toEqual([]);
    expect(record('Not deleted: the record names no previous secret_id')).toMatchObject({ level: 'ERROR', secretArn: world.secretArn });
    expect(sweepSummary()).toMatchObject({ cleared: 1, retired: 0, deferred: 0 });
    expect(world.metricCounts().RetirementCleared).toBe(1);
    expect(accepted(old.secret)).toBe(true);
  });

  it('never deletes AWSCURRENT\'s secret when the recorded move never happened, however recently it was used (I)', async () => {
    await make();
    const token = await world.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await world.invoke(step, token);
    // The move fails, and so does reading the labels back: unknown whether it moved, so its deletion intent stays.
    let moveFailed = false;
    world.interceptor = (c) => {
      if (c.operation === 'UpdateSecretVersionStage') {
        moveFailed = true;
        return { when: 'before', error: 'InternalServiceError' };
      }
      return c.operation === 'DescribeSecret' && moveFailed ? { when: 'before', error: 'InternalServiceError' } : undefined;
    };
    expect(await fail(world.invoke('finishSecret', token))).toBeInstanceOf(Error);
    world.interceptor = undefined;
    expect(str(await world.stateItem(), 'retire_previous_secret_id')).toBe(ps().secret_id);
    expect(current().secret_id).toBe(ps().secret_id);
    world.advance(2 * HOUR);
    // The secret AWSCURRENT holds is in use, as it should be.
    await useAtStytch(ps().secret);
    world.stytch.resetRequests();
    await world.sweep();
    expect(accepted(ps().secret)).toBe(true);
    expect(mutations()).toEqual([]);
    expect(record('Nothing to delete: the previous secret is still AWSCURRENT')).toMatchObject({ level: 'INFO', previousSecretId: ps().secret_id });
    expect(sweepSummary()).toMatchObject({ cleared: 1, deferred: 0, retired: 0 });
    expect(world.metricCounts().PreviousSecretStillUsed ?? 0).toBe(0);
  });

  it('never deletes when AWSCURRENT\'s secret_id ends otherwise at Stytch (I)', async () => {
    await make();
    const old = { ...ps() };
    await rotate();
    await putCurrent({ ...current(), secret_id: world.project.secretId });
    world.advance(HOUR + 1000);
    await world.sweep();
    expect(accepted(old.secret)).toBe(true);
    expect(mutations()).toEqual(['secrets.create']);
    const logged = record('Not deleted: AWSCURRENT');
    expect(logged).toMatchObject({ level: 'ERROR', secretArn: world.secretArn, previousSecretId: old.secret_id });
    expect(logged.message).toContain(`then delete ${old.secret_id} yourself`);
    expect(sweepSummary()).toMatchObject({ cleared: 1, retired: 0 });
  });

  it('does not put off deleting a secret that only answers to the recorded id, however recently used: it is not the previous one', async () => {
    await make();
    const old = { ...ps() };
    await rotate();
    await forgeRecord('SET retire_previous_last4 = :x', { ':x': { S: 'zzzz' } });
    world.advance(HOUR + 1000);
    await useAtStytch(old.secret);
    await world.sweep();
    expect(world.metricCounts().PreviousSecretStillUsed ?? 0).toBe(0);
    expect(sweepSummary()).toMatchObject({ cleared: 1, deferred: 0 });
    expect(record('Not deleted: Stytch\'s secret').level).toBe('ERROR');
    expect(accepted(old.secret)).toBe(true);
  });

  it('clears a record whose previous secret is already gone at Stytch', async () => {
    await make();
    const old = { ...ps() };
    await rotate();
    world.stytch.deleteProjectSecret(world.project.projectId, old.secret_id);
    world.advance(HOUR + 1000);
    await world.sweep();
    expect(sweepSummary()).toMatchObject({ cleared: 1, failed: 0 });
    expect(record('Nothing to delete: Stytch no longer has the previous secret')).toMatchObject({ level: 'INFO', secretArn: world.secretArn, previousSecretId: old.secret_id });
  });
});

// ---------------------------------------------------------------- the sweep's boundaries, on a fixed clock

describe('Project secret: the sweep\'s "still in use" boundaries', () => {
  // The World's clock follows real time; these boundaries are exact milliseconds, so the sweep runs here on a fixed clock.
  const VALUE = {
    project_id: 'project-test-11111111-1111-4111-8111-111111111111',
    secret: 'secret-test-current-value-cccc',
    secret_id: 'secret-test-current',
    project_slug: 'acme',
    environment_slug: 'test',
  };
  const ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:demo/project-AbCdEf';
  const NOW = Date.parse('2026-01-02T03:04:05.000Z');
  const MOVED = NOW - 2 * HOUR;

  function sweepWith(usedAt: number) {
    const deleted: string[] = [];
    const metrics: RotationMetric[] = [];
    const infos: Record<string, ProjectSecretInfo> = {
      [VALUE.secret_id]: { secretId: VALUE.secret_id, last4: 'cccc', createdAt: undefined, usedAt: new Date(NOW).toISOString() },
      'secret-test-previous': { secretId: 'secret-test-previous', last4: 'pppp', createdAt: undefined, usedAt: new Date(usedAt).toISOString() },
    };
    const management: ManagementApi = {
      create: async () => expect.unreachable('the sweep never creates'),
      list: async () => Object.values(infos),
      get: async (_env, id) => infos[id],
      delete: async (_env, id) => {
        deleted.push(id);
        return 'deleted';
      },
    };
    const silent = () => undefined;
    const logger: RotationLogger = { debug: silent, info: silent, warn: silent, error: silent } as unknown as RotationLogger;
    const deps = {
      store: { getCurrentVersion: async () => ({ state: 'current', arn: ARN, name: 'demo/project', versionId: 'v1', value: JSON.stringify(VALUE) }) },
      lease: { holder: 'sweep', until: NOW + 60_000, waitUntil: NOW, clock: { now: () => NOW, sleep: async () => undefined } },
      logger,
      metrics: { count: (name: RotationMetric) => metrics.push(name) },
      projectSecrets: { management: () => management, probe: async () => undefined, inUseDeferSeconds: 600, onRotated: silent },
    } as unknown as Omit<RotationDeps, 'graceSeconds'>;
    const due: Retirement = {
      dueAt: NOW - 1000,
      versionId: 'v1',
      last4: 'cccc',
      previousVersionId: 'v0',
      previousLast4: 'pppp',
      previousSecretId: 'secret-test-previous',
      movedAt: MOVED,
    };
    return { run: () => sweepProjectSecret(projectBinding(ARN, VALUE), due, deps), deleted, metrics, due };
  }

  it('a use one millisecond after a recent move is: put off', async () => {
    const s = sweepWith(NOW - 1000);
    s.due.movedAt = NOW - 1001;
    expect(await s.run()).toEqual({ outcome: 'deferred', retirement: { ...s.due, dueAt: NOW + 600_000, deferred: true } });
    expect(s.deleted).toEqual([]);
    expect(s.metrics).toEqual(['PreviousSecretStillUsed', 'RetirementDeferred']);
  });

  it('a use at the very millisecond of a recent move is not: deleted', async () => {
    const s = sweepWith(NOW - 1000);
    s.due.movedAt = NOW - 1000;
    expect(await s.run()).toEqual({ outcome: 'retired', retirement: null });
    expect(s.deleted).toEqual(['secret-test-previous']);
    expect(s.metrics).toEqual(['PreviousSecretRetired']);
  });

  it('a use exactly RECENT_USE_MS ago still counts as recent: put off', async () => {
    const s = sweepWith(NOW - RECENT_USE_MS);
    expect((await s.run()).outcome).toBe('deferred');
    expect(s.deleted).toEqual([]);
  });

  it('a use one millisecond longer ago does not: deleted', async () => {
    const s = sweepWith(NOW - RECENT_USE_MS - 1);
    expect((await s.run()).outcome).toBe('retired');
    expect(s.deleted).toEqual(['secret-test-previous']);
  });
});

// ---------------------------------------------------------------- the management key and the probe's messages

describe('The management key secret and the probe: what the operator reads', () => {
  const SECRET_ID = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:stytch/management-AbCdEf';
  const KEY = JSON.stringify({ workspace_key_id: 'workspace-key-id-1', workspace_key_secret: 'workspace-key-secret-1' });

  it('names the management credentials secret when its value is malformed', async () => {
    const source = managementCredentialsSource(async () => '{"workspace_key_id": 1}', SECRET_ID, { envBaseUrl: undefined, ttlMs: 60_000 });
    const error = await source.get().then(() => undefined, (e: unknown) => e as Error);
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error?.message).toMatch(/^The Stytch management credentials secret \S*stytch\/management\S* /);
    expect(error?.message).toMatch(/fix it with aws secretsmanager put-secret-value\.$/);
  });

  it('names STYTCH_MANAGEMENT_API_BASE_URL when that variable is not a usable URL', async () => {
    const source = managementCredentialsSource(async () => KEY, SECRET_ID, { envBaseUrl: 'not a url', ttlMs: 60_000 });
    const error = await source.get().then(() => undefined, (e: unknown) => e as Error);
    expect(error?.message).toContain('STYTCH_MANAGEMENT_API_BASE_URL');
  });

  it('a failed read that ends after a newer one succeeded does not drop the newer one from the cache', async () => {
    const reads: Array<{ resolve: (v: string) => void; reject: (e: Error) => void }> = [];
    const readSecret = () => new Promise<string>((resolve, reject) => reads.push({ resolve, reject }));
    const source = managementCredentialsSource(readSecret, SECRET_ID, { envBaseUrl: undefined, ttlMs: 60_000, now: () => 1_000 });
    const first = source.get().catch((e: unknown) => e as Error);
    const second = source.refresh();
    await Promise.resolve();
    expect(reads).toHaveLength(2);
    reads[1]!.resolve(KEY);
    expect((await second).projectId).toBe('workspace-key-id-1');
    reads[0]!.reject(new Error('read failed'));
    expect(await first).toBeInstanceOf(Error);
    // The newer credentials stay cached: no third read.
    expect((await source.get()).projectId).toBe('workspace-key-id-1');
    expect(reads).toHaveLength(2);
  });

  const probeOver = (answer: Response) => {
    const fetch: FetchFn = async () => answer;
    const creds = fixedCredentials({ projectId: 'project-test-1', secret: 'secret-under-test', baseUrl: 'https://test.stytch.com' });
    return new StytchHttp(creds, { fetch, deadline: Date.now() + 60_000, requestTimeoutMs: 1_000, maxAttempts: 1, sleep: async () => {}, random: () => 0 });
  };
  const refused = (body: Record<string, unknown>) => new Response(JSON.stringify({ status_code: 401, error_type: 'unauthorized_credentials', error_message: 'no', ...body }), { status: 401, headers: { 'content-type': 'application/json' } });

  it('a new secret that does not authenticate: the status and request id, and no advice meant for AWSCURRENT', async () => {
    const error = await probeProjectSecret(probeOver(refused({ request_id: 'request-id-1' })), { project_id: 'project-test-1', secret_id: 'secret-test-new' }, 'new').then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error).toBeInstanceOf(VerificationError);
    expect(error?.message).toBe("The new project secret secret-test-new does not authenticate at Stytch's project API (401 unauthorized_credentials, request_id request-id-1).");
  });

  it('without a request id, says nothing of one', async () => {
    const error = await probeProjectSecret(probeOver(refused({})), { project_id: 'project-test-1', secret_id: 'secret-test-cur' }, 'current').then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.message).toBe(
      "AWSCURRENT's project secret secret-test-cur does not authenticate at Stytch's project API (401 unauthorized_credentials). Nothing was changed. Put the secret that belongs to that secret_id into the value, then rotate again.",
    );
  });
});
