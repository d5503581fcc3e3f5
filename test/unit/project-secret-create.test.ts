import { randomUUID } from 'node:crypto';
import { DecryptionFailure, GetSecretValueCommand, InternalServiceError } from '@aws-sdk/client-secrets-manager';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { InvalidInputError, StytchApiError, TransientError } from '../../functions/lib/errors.js';
import { SECRET_VALUE_LIMIT_BYTES } from '../../functions/lib/secret-json.js';
import { SecretStore } from '../../functions/lib/secrets/store.js';
import { StateTable } from '../../functions/lib/state/table.js';
import { createHandler } from '../../functions/rotate-stytch-secret/handler.js';
import { runStep, type RotationDeps } from '../../functions/rotate-stytch-secret/rotation.js';
import { LAMBDA_ARN, STATE_TABLE, World, type ExternalCall, type WorldOptions } from '../helpers/world.js';

/**
 * The project secret's step machinery and createSecret (DESIGN.md §4b), through
 * the handler built from source: what is read again under the lease (IV, VII),
 * the deletion intent finishSecret records before the move (III), what an
 * earlier attempt left behind and what is reported or deleted of it (II), the
 * early deletion of the previous rotation's secret, and the size limit.
 */

let world: World;
const HOUR = 3_600_000;
const make = async (options: WorldOptions = {}) =>
  (world = await new World({ kind: 'project_secret', ...options, env: { PREVIOUS_SECRET_GRACE_SECONDS: '3600', ...options.env } }).init());

afterEach(() => {
  vi.useRealTimers();
  // V: nothing printed or thrown holds a secret.
  if (world) expect(world.leaks()).toEqual([]);
});

const ps = () => world.projectSecret!;
const secretsAtStytch = () => world.stytch.projectSecrets(world.project.projectId).map((s) => s.secretId).sort();
const current = () => world.versionWith('AWSCURRENT')!.value as Record<string, string>;
const pending = () => world.versionWith('AWSPENDING')?.value as Record<string, string> | undefined;
const fail = (run: Promise<unknown>) => run.then(() => undefined, (e: unknown) => e as Error);
const mutations = () => world.stytch.requests.filter((r) => r.operation === 'secrets.create' || r.operation === 'secrets.delete').map((r) => r.operation);
const logged = (text: string) => world.logRecords().filter((r) => String(r.message).includes(text));
/** The outcome each step reported ("Step succeeded") since the output's line `from`, in order. */
const outcomes = (from = 0) =>
  world
    .logRecords(world.output.slice(from))
    .filter((r) => r.message === 'Step succeeded')
    .map((r) => r.outcome);
const metric = (name: string) => world.metricCounts()[name] ?? 0;
const putValue = (value: string, token: string = randomUUID(), stages?: string[]) =>
  world.sm.handle('PutSecretValue', { SecretId: world.secretArn, ClientRequestToken: token, SecretString: value, ...(stages ? { VersionStages: stages } : {}) });
const num = (item: Record<string, unknown> | undefined, key: string) => (item?.[key] as { N?: string } | undefined)?.N;
const str = (item: Record<string, unknown> | undefined, key: string) => (item?.[key] as { S?: string } | undefined)?.S;
const isLeaseTake = (step: string) => (c: ExternalCall) => c.service === 'dynamodb' && c.operation === 'UpdateItem' && c.step === step && !c.leaseRelease;

describe('Project secret: what a step reports', () => {
  it('a step on a version already AWSCURRENT reports already-current', async () => {
    await make();
    await world.sm.handle('RotateSecret', { SecretId: world.secretArn });
    const token = world.versionWith('AWSCURRENT')!.id;
    const from = world.output.length;
    await world.invoke('createSecret', token);
    expect(outcomes(from)).toEqual(['already-current']);
  });

  it('createSecret reports created, then resumed, and logs the pending secret id', async () => {
    await make();
    const token = await world.beginRotation();
    const from = world.output.length;
    await world.invoke('createSecret', token);
    await world.invoke('createSecret', token);
    expect(outcomes(from)).toEqual(['created', 'resumed']);
    const pend = pending()!;
    expect(logged('Created a project secret and stored it as AWSPENDING')[0]).toMatchObject({
      level: 'INFO',
      pendingSecretId: pend.secret_id,
      pendingLast4: pend.secret!.slice(-4),
    });
    expect(logged('is stored and Stytch has it: resuming')[0]).toMatchObject({ level: 'INFO', pendingSecretId: pend.secret_id });
  });

  it('a resumed createSecret whose secret is gone names the id it removed, and how to start fresh', async () => {
    await make();
    const token = await world.beginRotation();
    await world.invoke('createSecret', token);
    const gone = pending()!.secret_id!;
    world.stytch.deleteProjectSecret(world.project.projectId, gone);
    const error = await fail(world.invoke('createSecret', token));
    expect(error?.message).toContain(`the next rotation starts fresh: aws secretsmanager rotate-secret --secret-id ${world.secretName}.`);
    expect(logged('Stytch no longer has the pending project secret')[0]).toMatchObject({ level: 'WARN', pendingSecretId: gone });
  });
});

describe('Project secret: values that cannot be rotated', () => {
  it('a malformed AWSCURRENT is named, with how to fix it, and changes nothing', async () => {
    await make();
    await putValue(JSON.stringify({ ...ps(), project_slug: 'not a slug' }));
    const token = await world.beginRotation();
    const error = await fail(world.invoke('createSecret', token));
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error?.message).toMatch(new RegExp(`^The AWSCURRENT value of secret ${world.secretName} .*project_slug must be a slug`));
    expect(error?.message).toContain(
      'It must be JSON {"project_id", "secret", "secret_id", "project_slug", "environment_slug", "base_url"?}; fix it with aws secretsmanager put-secret-value.',
    );
    expect(world.stytch.requests).toEqual([]);
  });

  it('an AWSCURRENT that gives a key twice is refused: it could not be copied exactly', async () => {
    await make();
    const text = JSON.stringify(ps());
    await putValue(`${text.slice(0, -1)}, "team": "a", "team": "b"}`);
    const token = await world.beginRotation();
    const error = await fail(world.invoke('createSecret', token));
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error?.message).toMatch(new RegExp(`^The AWSCURRENT value of secret ${world.secretName} gives the key "team" twice`));
    expect(error?.message).toContain('fix it with aws secretsmanager put-secret-value.');
    expect(world.stytch.requests).toEqual([]);
  });

  it('a malformed AWSPENDING is named with its version', async () => {
    await make();
    const token = await world.beginRotation();
    await putValue(JSON.stringify({ ...ps(), secret_id: '', secret: 'pending-0000' }), token, ['AWSPENDING']);
    const error = await fail(world.invoke('createSecret', token));
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error?.message).toMatch(new RegExp(`^The AWSPENDING value \\(version ${token}\\) of secret ${world.secretName} .*secret_id must not be empty`));
    expect(world.stytch.requests).toEqual([]);
  });

  it('a function set up without project-secret support refuses the step, changing nothing', async () => {
    await make();
    const token = await world.beginRotation();
    const deps = {
      store: new SecretStore(world.smClient),
      state: new StateTable(world.dynamoClient, STATE_TABLE),
      logger: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
      metrics: { count: () => undefined },
      graceSeconds: 3600,
    } as unknown as RotationDeps;
    const before = await world.stateItem();
    const error = await fail(runStep({ Step: 'createSecret', SecretId: world.secretArn, ClientRequestToken: token }, deps));
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error?.message).toBe('This function is not set up to rotate Stytch project secrets.');
    expect(world.stytch.requests).toEqual([]);
    expect(await world.stateItem()).toEqual(before);
  });
});

describe('Project secret: the lease, and what is read again under it (IV, VI, VII)', () => {
  it('a step waiting for the lease says whose work holds it', async () => {
    await make();
    const token = await world.beginRotation();
    const gate = world.pause((c) => c.operation === 'secrets.create');
    const first = world.invoke('createSecret', token);
    await gate.reached;
    const error = await fail(world.invoke('createSecret', token));
    expect(error?.message).toContain(`(createSecret of version ${token}, until `);
    expect(logged('Another invocation holds the lease')[0]).toMatchObject({ leaseHolderWork: `createSecret of version ${token}` });
    expect(metric('LeaseContended')).toBe(1);
    gate.release();
    await first;
  });

  it('the first rotation of a secret never bound binds it, and reports a create sent twice', async () => {
    world = await new World({ kind: 'project_secret', rotationEnabled: false, env: { PREVIOUS_SECRET_GRACE_SECONDS: '3600' } }).init();
    world.advance(5 * 60_000);
    // The first create takes effect and its answer is lost behind a 429: the client sends it again.
    let creates = 0;
    world.interceptor = (c) => (c.operation === 'secrets.create' && ++creates === 1 ? { when: 'after', error: 429 } : undefined);
    await world.sm.handle('RotateSecret', { SecretId: world.secretArn, RotationLambdaARN: LAMBDA_ARN, RotationRules: { ScheduleExpression: 'rate(30 days)' } });
    world.interceptor = undefined;
    expect(world.sm.rotationHistory(world.secretArn).at(-1)?.outcome).toBe('succeeded');
    expect(outcomes()).toEqual(['created', 'verified', 'verified', 'rotated-overlap']);
    expect(metric('BindingCreated')).toBe(1);
    expect(metric('OrphanProjectSecret')).toBe(1);
    expect((await world.stateItem())?.secret_arn).toEqual({ S: world.secretArn });
  });

  /** Stores a value under a label of its own, so that AWSCURRENT can be moved to it later. */
  const staged = async (value: Record<string, unknown>) => {
    const id = randomUUID();
    await putValue(JSON.stringify(value), id, ['STAGED']);
    return () =>
      world.sm.handle('UpdateSecretVersionStage', { SecretId: world.secretArn, VersionStage: 'AWSCURRENT', MoveToVersionId: id, RemoveFromVersionId: world.versionWith('AWSCURRENT')!.id });
  };
  const changedWhileWaiting = async (change: () => Promise<unknown>) => {
    const token = await world.beginRotation();
    const gate = world.pause(isLeaseTake('createSecret'));
    const step = fail(world.invoke('createSecret', token));
    await gate.reached;
    await change();
    gate.release();
    return { token, error: await step };
  };

  for (const [what, field, value] of [
    ['another project', 'project_id', 'project-test-99999999-9999-4999-8999-999999999999'],
    ['another environment', 'environment_slug', 'live'],
  ] as const) {
    it(`createSecret stops when AWSCURRENT moved to ${what} while it took the lease`, async () => {
      await make();
      const { error } = await changedWhileWaiting(await staged({ ...ps(), [field]: value }));
      expect(error).toBeInstanceOf(TransientError);
      expect(error?.message).toBe(
        `AWSCURRENT of ${world.secretName} changed to another version while this step waited for its lease; Secrets Manager's reattempt starts from the new value.`,
      );
      expect(mutations()).toEqual([]);
      expect(pending()).toBeUndefined();
    });
  }

  it('createSecret never acts on a secret deleted and created again under its name while it took the lease (VII)', async () => {
    await make();
    const token = await world.beginRotation();
    const gate = world.pause(isLeaseTake('createSecret'));
    // Addressed by name, as a schedule may: the name now resolves to another secret.
    const step = fail(world.invokeRaw({ Step: 'createSecret', SecretId: world.secretName, ClientRequestToken: token }));
    await gate.reached;
    await world.sm.handle('DeleteSecret', { SecretId: world.secretArn, ForceDeleteWithoutRecovery: true });
    const created = (await world.sm.handle('CreateSecret', { Name: world.secretName, ClientRequestToken: randomUUID(), SecretString: JSON.stringify(ps()) })) as { ARN: string };
    expect(created.ARN).not.toBe(world.secretArn);
    await world.sm.handle('RotateSecret', { SecretId: created.ARN, RotationLambdaARN: LAMBDA_ARN, RotateImmediately: false });
    world.sm.beginRotation(created.ARN, token);
    const before = world.stytch.requests.length;
    gate.release();
    const error = await step;
    expect(error).toBeInstanceOf(TransientError);
    expect(error?.message).toMatch(/changed to another version while this step waited for its lease/);
    expect(world.stytch.requests.slice(before)).toEqual([]);
  });

  it('createSecret builds the new version from AWSCURRENT as it is under the lease', async () => {
    await make();
    const { token, error } = await changedWhileWaiting(await staged({ ...ps(), team: 'platform' }));
    expect(error).toBeUndefined();
    expect(world.snapshot().versions[token]?.stages).toContain('AWSPENDING');
    expect(pending()).toMatchObject({ team: 'platform', project_id: ps().project_id });
    expect(pending()!.secret_id).not.toBe(ps().secret_id);
  });

  it('createSecret does nothing when its version became AWSCURRENT while it took the lease', async () => {
    await make();
    const from = world.output.length;
    const { error } = await changedWhileWaiting(async () => {
      const token = world.versionWith('AWSPENDING')!.id;
      await putValue(JSON.stringify({ ...ps(), team: 'platform' }), token, ['AWSCURRENT']);
    });
    expect(error).toBeUndefined();
    expect(outcomes(from)).toEqual(['already-current']);
    expect(world.stytch.requests).toEqual([]);
  });

  it('an uncontended setSecret reads the secret once, before its lease', async () => {
    await make();
    const token = await world.beginRotation();
    await world.invoke('createSecret', token);
    const from = world.externalCalls.length;
    await world.invoke('setSecret', token);
    const reads = world.externalCalls.slice(from).filter((c) => c.service === 'secretsmanager').map((c) => c.operation);
    expect(reads.filter((op) => op === 'DescribeSecret')).toHaveLength(1);
  });

  it('a finishSecret that waited for the lease while the label moved records the deletion late, from now (III)', async () => {
    await make();
    const old = { ...ps() };
    const token = await world.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await world.invoke(step, token);
    // A setSecret reattempt holds the lease; finishSecret waits for it. Meanwhile the label moves outside.
    const holder = world.pause((c) => c.operation === 'secrets.get' && c.step === 'setSecret');
    const reattempt = world.invoke('setSecret', token);
    await holder.reached;
    let takes = 0;
    const second = world.pause((c) => isLeaseTake('finishSecret')(c) && ++takes === 2);
    const finish = world.invoke('finishSecret', token);
    await second.reached;
    await world.sm.handle('UpdateSecretVersionStage', {
      SecretId: world.secretArn,
      VersionStage: 'AWSCURRENT',
      MoveToVersionId: token,
      RemoveFromVersionId: world.versionWith('AWSCURRENT')!.id,
    });
    holder.release();
    await reattempt;
    const movedBy = world.clock.now();
    second.release();
    await finish;
    expect(metric('LeaseContended')).toBe(1);
    expect(metric('RetirementRecordedLate')).toBe(1);
    const item = await world.stateItem();
    expect(str(item, 'retire_previous_secret_id')).toBe(old.secret_id);
    // Its window counted from the step, not from the lease's end the intent assumed.
    const due = Number(num(item, 'retire_due'));
    expect(due).toBeGreaterThanOrEqual(movedBy + HOUR);
    expect(due).toBeLessThan(movedBy + HOUR + 60_000);
  });

  it('a finishSecret that binds afresh (the state table lost its items) and fails still cancels and gives its lease back', async () => {
    await make();
    const token = await world.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await world.invoke(step, token);
    // The table was emptied (restored from an older backup, say): finishSecret's lease binds the secret again.
    for (const pk of [`client#${world.project.projectId}#${world.project.projectSlug}/${world.project.environmentSlug}`, `secret#${world.secretArn}`]) {
      await world.dynamo.handle('DeleteItem', { TableName: STATE_TABLE, Key: { pk: { S: pk } } });
    }
    world.stytch.deleteProjectSecret(world.project.projectId, pending()!.secret_id!);
    const bound = metric('BindingCreated');
    const error = await fail(world.invoke('finishSecret', token));
    expect(error?.message).toMatch(/it was deleted outside this function\. The rotation was cancelled: AWSPENDING was removed/);
    expect(metric('BindingCreated')).toBe(bound + 1);
    const item = await world.stateItem();
    expect(item?.lease_holder).toBeUndefined();
    expect(item?.retire_due).toBeUndefined();
    expect(current().secret_id).toBe(ps().secret_id);
  });

  it('only finishSecret records a deletion as it takes the lease: the steps before it leave the record alone', async () => {
    await make();
    const token = await world.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) {
      await world.invoke(step, token);
      expect(num(await world.stateItem(), 'retire_due')).toBeUndefined();
    }
    await world.invoke('finishSecret', token);
    expect(str(await world.stateItem(), 'retire_version')).toBe(token);
  });

  it('a finishSecret that cannot tell whether AWSCURRENT moved keeps the deletion recorded (III)', async () => {
    await make();
    const old = { ...ps() };
    const token = await world.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await world.invoke(step, token);
    let moved = false;
    world.interceptor = (c) => {
      if (c.operation === 'UpdateSecretVersionStage' && c.step === 'finishSecret') {
        moved = true;
        return { when: 'after', error: 'InternalServiceError' };
      }
      return moved && c.operation === 'DescribeSecret' ? { when: 'before', error: 'InternalServiceError' } : undefined;
    };
    const error = await fail(world.invoke('finishSecret', token));
    world.interceptor = undefined;
    expect(error).toBeInstanceOf(TransientError);
    expect(error?.message).toMatch(/may or may not have happened/);
    expect(world.versionWith('AWSCURRENT')!.id).toBe(token);
    const item = await world.stateItem();
    expect(str(item, 'retire_previous_secret_id')).toBe(old.secret_id);
    expect(str(item, 'retire_version')).toBe(token);
  });
});

describe('Project secret: createSecret when Stytch refuses or the put fails (II)', () => {
  it('the limit of 50 secrets becomes a fix, with Stytch\'s refusal as its cause', async () => {
    await make();
    while (world.stytch.projectSecrets(world.project.projectId).length < 50) world.stytch.createProjectSecret(world.project.projectId);
    const token = await world.beginRotation();
    const error = await fail(world.invoke('createSecret', token));
    expect(error).toBeInstanceOf(InvalidInputError);
    const cause = error?.cause as StytchApiError;
    expect(cause).toBeInstanceOf(StytchApiError);
    expect(cause.statusCode).toBe(400);
    expect(cause.errorType).toBe('too_many_secrets');
  });

  it('a create throttled until the budget ran out stays transient, its intent kept for the next attempt', async () => {
    await make();
    const token = await world.beginRotation();
    world.interceptor = (c) => (c.operation === 'secrets.create' ? { when: 'before', error: 429 } : undefined);
    const error = await fail(world.invoke('createSecret', token));
    world.interceptor = undefined;
    expect(error).toBeInstanceOf(StytchApiError);
    expect((error as StytchApiError).statusCode).toBe(429);
    expect(error?.message).not.toMatch(/50 secrets/);
    expect(str(await world.stateItem(), 'created_version')).toBe(token);
    expect(secretsAtStytch()).toEqual([world.project.secretId, ps().secret_id].sort());
  });

  it('deletes its new secret when the put did not land, and says why', async () => {
    await make();
    const token = await world.beginRotation();
    world.interceptor = (c) => (c.operation === 'PutSecretValue' ? { when: 'before', error: 'InternalServiceError' } : undefined);
    const error = await fail(world.invoke('createSecret', token));
    world.interceptor = undefined;
    expect(error?.name).toBe('InternalServiceError');
    const deleted = world.stytch.requests.find((r) => r.operation === 'secrets.delete');
    expect(deleted).toBeDefined();
    const record = logged('Deleted the new project secret: the pending value could not be stored')[0];
    expect(record?.level).toBe('WARN');
    expect(typeof record?.createdSecretId).toBe('string');
    expect(secretsAtStytch()).not.toContain(record?.createdSecretId);
    expect(metric('RotationCancelled')).toBe(1);
    expect(str(await world.stateItem(), 'created_version')).toBeUndefined();
  });

  it('when that deletion fails too, keeps the record so the next attempt deletes it as its own', async () => {
    await make();
    const token = await world.beginRotation();
    world.interceptor = (c) =>
      c.operation === 'PutSecretValue' ? { when: 'before', error: 'InternalServiceError' } : c.operation === 'secrets.delete' ? { when: 'before', error: 403 } : undefined;
    await fail(world.invoke('createSecret', token));
    world.interceptor = undefined;
    const record = logged('Could not delete the new project secret (the pending value could not be stored)')[0];
    expect(record?.level).toBe('ERROR');
    const orphan = String(record?.createdSecretId);
    expect(secretsAtStytch()).toContain(orphan);
    expect(metric('RotationCancelled')).toBe(0);
    const item = await world.stateItem();
    expect(str(item, 'created_version')).toBe(token);
    expect(str(item, 'created_secret_id')).toBe(orphan);

    const reads = vi.spyOn(SecretStore.prototype, 'getVersion');
    await world.invoke('createSecret', token);
    vi.restoreAllMocks();
    // Its own version is read before the lease and again under it (no value: nothing to resume); not a third time to settle the record.
    expect(reads.mock.calls.filter(([, versionId]) => versionId === token)).toHaveLength(2);
    expect(secretsAtStytch()).not.toContain(orphan);
    expect(logged('Deleted a project secret an interrupted attempt created and never stored')[0]).toMatchObject({
      level: 'WARN',
      orphanSecretId: orphan,
      outcome: 'deleted',
    });
    expect(metric('OrphanRepaired')).toBe(1);
  });

  it('goes on when the put failed but landed, logging the put\'s error', async () => {
    await make();
    const token = await world.beginRotation();
    world.interceptor = (c) => (c.operation === 'PutSecretValue' ? { when: 'after', error: 'InternalServiceError' } : undefined);
    await world.invoke('createSecret', token);
    world.interceptor = undefined;
    const record = logged('PutSecretValue failed but the value landed')[0];
    expect(record?.level).toBe('WARN');
    expect(JSON.stringify(record?.error)).toContain('InternalServiceError');
    expect(mutations()).toEqual(['secrets.create']);
    expect(pending()!.secret_id).toBeDefined();
  });

  it('when neither the put nor its read-back answered, names the secret it may leave behind', async () => {
    await make();
    const token = await world.beginRotation();
    let putFailed = false;
    world.interceptor = (c) => {
      if (c.operation === 'PutSecretValue') {
        putFailed = true;
        return { when: 'before', error: 'InternalServiceError' };
      }
      return c.operation === 'GetSecretValue' && putFailed ? { when: 'before', error: 'InternalServiceError' } : undefined;
    };
    await fail(world.invoke('createSecret', token));
    world.interceptor = undefined;
    const record = logged('PutSecretValue failed and reading the version back failed too')[0];
    expect(record?.level).toBe('ERROR');
    expect(record?.createdSecretId).toBe(str(await world.stateItem(), 'created_secret_id'));
    expect(JSON.stringify(record?.readError)).toContain('InternalServiceError');
    expect(mutations()).toEqual(['secrets.create']);
  });
});

describe('Project secret: a lease lost during createSecret (VI)', () => {
  /** The first createSecret outlives its lease while held at `match`; a reattempt takes the lease over and runs. */
  const overtaken = async (match: (c: ExternalCall) => boolean, when: 'before' | 'after' = 'before') => {
    const token = await world.beginRotation();
    const firstId = world.invocations.length;
    const gate = world.pause((c) => c.invocation === firstId && match(c), when);
    const first = fail(world.invoke('createSecret', token));
    await gate.reached;
    world.advance(10 * 60_000);
    await world.invoke('createSecret', token);
    gate.release();
    return { token, error: await first };
  };

  it('lost before recording its intent: stops without creating or deleting anything', async () => {
    await make();
    const { error } = await overtaken((c) => c.operation === 'm2m.get');
    expect(error).toBeInstanceOf(TransientError);
    expect(error?.message).toMatch(/^The lease on project \S+ expired during createSecret/);
    // The reattempt's create only: the first one never created, so it has nothing to delete.
    expect(mutations()).toEqual(['secrets.create']);
    expect(metric('LeaseLost')).toBe(1);
  });

  it('lost after creating, and the deletion fails: names the secret left at Stytch', async () => {
    await make();
    world.interceptor = (c) => (c.operation === 'secrets.delete' ? { when: 'before', error: 403 } : undefined);
    const { error } = await overtaken((c) => c.operation === 'secrets.create', 'after');
    world.interceptor = undefined;
    expect(error?.message).toMatch(/expired during createSecret/);
    const record = logged('Could not delete the project secret this step created after losing its lease')[0];
    expect(record?.level).toBe('ERROR');
    expect(secretsAtStytch()).toContain(record?.createdSecretId);
    expect(record?.createdSecretId).not.toBe(pending()!.secret_id);
  });
});

describe('Project secret: what an earlier attempt left (II)', () => {
  /** A createSecret whose put failed and whose deletion of the new secret failed too: its creation stays recorded, its version holds no value. */
  const leftBehind = async () => {
    const token = await world.beginRotation();
    world.interceptor = (c) =>
      c.operation === 'PutSecretValue' ? { when: 'before', error: 'InternalServiceError' } : c.operation === 'secrets.delete' ? { when: 'before', error: 403 } : undefined;
    await fail(world.invoke('createSecret', token));
    world.interceptor = undefined;
    const item = await world.stateItem();
    expect(str(item, 'created_version')).toBe(token);
    return { token, orphan: str(item, 'created_secret_id')! };
  };
  /** The rotation of `token` is abandoned: AWSPENDING is taken off its version, as after a failed rotation. */
  const abandon = async (token: string) => {
    if (!world.snapshot().versions[token]?.stages.includes('AWSPENDING')) return;
    await world.sm.handle('UpdateSecretVersionStage', { SecretId: world.secretArn, VersionStage: 'AWSPENDING', RemoveFromVersionId: token });
  };
  const deletes = () => world.stytch.requests.filter((r) => r.operation === 'secrets.delete' && r.status === 200).length;

  it('keeps a recorded secret that the abandoned rotation\'s version still holds', async () => {
    await make();
    const first = await world.beginRotation();
    await world.invoke('createSecret', first);
    const held = pending()!.secret_id;
    // A newer rotation starts; the first one's version keeps its value.
    await abandon(first);
    const second = await world.beginRotation();
    await world.invoke('createSecret', second);
    expect(secretsAtStytch()).toContain(held);
    expect(world.snapshot().versions[first]?.secretString).toContain(held);
    expect(metric('OrphanRepaired')).toBe(0);
    // Nothing to report either: the version was read, and holds it.
    expect(metric('OrphanProjectSecret')).toBe(0);
    expect(mutations()).toEqual(['secrets.create', 'secrets.create']);
  });

  it('keeps a recorded secret while the version that may hold it cannot be read, and decides once it can', async () => {
    await make();
    const first = await world.beginRotation();
    // The put lands, but the record of the creation is never cleared (the state table refuses every write after it).
    let put = false;
    world.interceptor = (c) => {
      if (c.operation === 'PutSecretValue') put = true;
      return put && c.service === 'dynamodb' && c.operation === 'UpdateItem' ? { when: 'before', error: 'InternalServiceError' } : undefined;
    };
    await world.invoke('createSecret', first).catch(() => undefined);
    world.interceptor = undefined;
    const held = pending()!.secret_id;
    expect(str(await world.stateItem(), 'created_secret_id')).toBe(held);
    await abandon(first);
    world.advance(HOUR);
    const second = await world.beginRotation();
    // In a new container (nothing cached), the next createSecret's fourth read of Secrets Manager is of the recorded version
    // (after AWSCURRENT, its own version, and AWSCURRENT again under the lease): it fails.
    world.newContainer();
    const id = world.invocations.length;
    let reads = 0;
    world.interceptor = (c) => (c.invocation === id && c.operation === 'GetSecretValue' && ++reads === 4 ? { when: 'before', error: 'InternalServiceError' } : undefined);
    const error = await fail(world.invoke('createSecret', second));
    world.interceptor = undefined;
    expect(error?.name).toBe('InternalServiceError');
    expect(secretsAtStytch()).toContain(held);
    expect(mutations()).toEqual(['secrets.create']);
    // Retried, it reads the version, which holds the secret: kept.
    await world.invoke('createSecret', second);
    expect(secretsAtStytch()).toContain(held);
    expect(metric('OrphanRepaired')).toBe(0);
    expect(mutations()).toEqual(['secrets.create', 'secrets.create']);
  });

  it('keeps and reports a recorded secret whose version can never be read again, and the rotation goes on', async () => {
    await make();
    const first = await world.beginRotation();
    await world.invoke('createSecret', first);
    const held = pending()!.secret_id;
    await abandon(first);
    // The secret's KMS key changed and the old one was disabled: a version no label holds was never re-encrypted.
    const read = SecretStore.prototype.getVersion;
    vi.spyOn(SecretStore.prototype, 'getVersion').mockImplementation(async function (this: SecretStore, arn, versionId, opts) {
      if (versionId === first) throw new DecryptionFailure({ message: "Secrets Manager can't decrypt the protected secret text using the provided KMS key.", $metadata: {} });
      return await read.call(this, arn, versionId, opts);
    });
    world.newContainer();
    world.advance(HOUR);
    const second = await world.beginRotation();
    await world.invoke('createSecret', second);
    vi.restoreAllMocks();
    expect(secretsAtStytch()).toContain(held);
    expect(metric('OrphanProjectSecret')).toBe(1);
    expect(metric('OrphanRepaired')).toBe(0);
    expect(logged('An interrupted attempt stored a project secret in a version that cannot be read: it was not deleted. Delete it at Stytch if no one uses it')).toEqual([
      expect.objectContaining({ level: 'ERROR', orphanSecretId: held, versionId: first, error: expect.objectContaining({ name: 'DecryptionFailure' }) }),
    ]);
    // The rotation went on: its own secret is pending, and the record now names its creation.
    expect(pending()!.secret_id).not.toBe(held);
    expect(str(await world.stateItem(), 'created_version')).toBe(second);
  });

  it('deletes a recorded secret whose version never got a value, as the newer rotation starts', async () => {
    await make();
    const { token, orphan } = await leftBehind();
    await abandon(token);
    const before = deletes();
    const next = await world.beginRotation();
    await world.invoke('createSecret', next);
    expect(secretsAtStytch()).not.toContain(orphan);
    expect(deletes()).toBe(before + 1);
    expect(metric('OrphanRepaired')).toBe(1);
  });

  for (const [what, value] of [
    ['names another secret_id', () => JSON.stringify({ ...ps(), secret_id: 'secret-test-someone-else', secret: 'someone-elses-1234' })],
    ['is not JSON', () => 'not json at all'],
  ] as const) {
    it(`deletes a recorded secret whose version, written outside, ${what}`, async () => {
      await make();
      const { token, orphan } = await leftBehind();
      await putValue(value(), token, ['MANUAL']);
      await abandon(token);
      const next = await world.beginRotation();
      await world.invoke('createSecret', next);
      expect(secretsAtStytch()).not.toContain(orphan);
      expect(metric('OrphanRepaired')).toBe(1);
    });
  }

  it('never deletes a recorded secret AWSCURRENT holds, even when its own version cannot be read', async () => {
    await make();
    await world.sm.handle('RotateSecret', { SecretId: world.secretArn });
    const first = world.versionWith('AWSCURRENT')!.id;
    const held = current().secret_id;
    // The same secret under a new version (an operator's edit): the recorded version is no longer AWSCURRENT.
    await putValue(JSON.stringify({ ...current(), team: 'platform' }));
    world.newContainer();
    world.smMock.on(GetSecretValueCommand, { VersionId: first }).rejects(new InternalServiceError({ message: 'An error occurred on the server side.', $metadata: {} }));
    const next = await world.beginRotation();
    await world.invoke('createSecret', next);
    expect(secretsAtStytch()).toContain(held);
    expect(metric('OrphanRepaired')).toBe(0);
    expect(pending()!.secret_id).not.toBe(held);
  });

  it('reports the secrets created from a minute before a lost create on, and no earlier one', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-06-01T12:00:00.000Z'));
    await make();
    world.advance(5 * 60_000);
    const token = await world.beginRotation();
    world.interceptor = (c) => (c.operation === 'secrets.create' ? { when: 'after', error: 'drop' } : undefined);
    await fail(world.invoke('createSecret', token));
    world.interceptor = undefined;
    const at = Number(num(await world.stateItem(), 'created_at'));
    expect(at).toBe(world.clock.now());
    const known = new Set([world.project.secretId, ps().secret_id]);
    const [lost] = secretsAtStytch().filter((id) => !known.has(id));
    // One created exactly at the margin's start, one a millisecond before it.
    world.advance(-60_000);
    const atMargin = world.stytch.createProjectSecret(world.project.projectId).secretId;
    world.advance(-1);
    const before = world.stytch.createProjectSecret(world.project.projectId).secretId;
    world.advance(60_001);

    await world.invoke('createSecret', token);
    expect(metric('OrphanProjectSecret')).toBe(2);
    const report = logged('An earlier attempt was interrupted while creating a project secret')[0];
    expect(report?.level).toBe('ERROR');
    expect((report?.secrets as Array<{ secretId: string }>).map((s) => s.secretId).sort()).toEqual([lost, atMargin].sort());
    expect(report?.since).toBe(new Date(at).toISOString());
    expect(secretsAtStytch()).toEqual(expect.arrayContaining([lost!, atMargin, before]));
  });

  it('reports a secret Stytch lists without a creation time, whatever its age', async () => {
    // Stytch's list may leave created_at out: the handler's fetch drops it for the secrets in `undated`.
    const undated = new Set<string>();
    const handler: typeof createHandler = (options = {}) =>
      createHandler({
        ...options,
        fetch: async (input, init) => {
          const response = await options.fetch!(input, init);
          if ((init?.method ?? 'GET') !== 'GET' || !String(input).endsWith('/secrets')) return response;
          const body = (await response.json()) as { secrets: Array<Record<string, unknown>> };
          for (const secret of body.secrets) if (undated.has(String(secret.secret_id))) delete secret.created_at;
          return new Response(JSON.stringify(body), { status: response.status, headers: response.headers });
        },
      });
    await make({ createHandler: handler });
    const old = world.stytch.createProjectSecret(world.project.projectId).secretId;
    undated.add(old);
    world.advance(5 * 60_000);
    const token = await world.beginRotation();
    world.interceptor = (c) => (c.operation === 'secrets.create' ? { when: 'after', error: 'drop' } : undefined);
    await fail(world.invoke('createSecret', token));
    world.interceptor = undefined;
    await world.invoke('createSecret', token);
    const report = logged('An earlier attempt was interrupted while creating a project secret')[0];
    expect((report?.secrets as Array<{ secretId: string }>).map((s) => s.secretId)).toContain(old);
    expect(metric('OrphanProjectSecret')).toBe(2);
    expect(secretsAtStytch()).toContain(old);
  });

  it('reports nothing, not even an empty list, when a create was retried after a real refusal', async () => {
    await make();
    world.advance(5 * 60_000);
    const token = await world.beginRotation();
    let creates = 0;
    world.interceptor = (c) => (c.operation === 'secrets.create' && ++creates === 1 ? { when: 'before', error: 429 } : undefined);
    await world.invoke('createSecret', token);
    world.interceptor = undefined;
    expect(creates).toBe(2);
    expect(world.logRecords().filter((r) => r.level === 'ERROR')).toEqual([]);
    expect(metric('OrphanProjectSecret')).toBe(0);
  });
});

describe('Project secret: a new rotation and the previous one\'s secret (III)', () => {
  const rotate = async () => {
    await world.sm.handle('RotateSecret', { SecretId: world.secretArn });
    expect(world.sm.rotationHistory(world.secretArn).at(-1)?.outcome).toBe('succeeded');
  };

  for (const [offset, early] of [
    [-1, true],
    [0, false],
  ] as const) {
    it(`a createSecret ${early ? 'a millisecond before' : 'exactly when'} the window ends deletes the previous secret ${early ? 'early' : 'as retired'}`, async () => {
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(new Date('2026-06-01T12:00:00.000Z'));
      await make();
      const old = { ...ps() };
      await rotate();
      const due = Number(num(await world.stateItem(), 'retire_due'));
      world.advance(due + offset - world.clock.now());
      const token = await world.beginRotation();
      await world.invoke('createSecret', token);
      expect(world.stytch.isProjectSecretAccepted(world.project.projectId, old.secret)).toBe(false);
      expect(metric('PreviousRetiredEarly')).toBe(early ? 1 : 0);
      expect(metric('PreviousSecretRetired')).toBe(early ? 0 : 1);
      const message = early
        ? 'A new rotation starts inside the previous one\'s overlap window: deleted the previous project secret early'
        : 'Deleted the previous project secret, whose overlap window is over';
      expect(logged(message)).toEqual([expect.objectContaining({ level: early ? 'WARN' : 'INFO', retiredSecretId: old.secret_id })]);
      expect(num(await world.stateItem(), 'retire_due')).toBeUndefined();
    });
  }

  it('a previous secret already gone at Stytch is not counted as deleted, and its record is cleared', async () => {
    await make();
    const old = { ...ps() };
    await rotate();
    world.stytch.deleteProjectSecret(world.project.projectId, old.secret_id);
    const token = await world.beginRotation();
    await world.invoke('createSecret', token);
    expect(metric('PreviousRetiredEarly')).toBe(0);
    expect(metric('PreviousSecretRetired')).toBe(0);
    expect(logged('Nothing to delete: Stytch no longer has the previous secret')).toEqual([
      expect.objectContaining({ level: 'INFO', previousSecretId: old.secret_id }),
    ]);
    expect(num(await world.stateItem(), 'retire_due')).toBeUndefined();
  });

  it('a createSecret that fails after deleting the previous secret early still clears its record', async () => {
    await make();
    const old = { ...ps() };
    await rotate();
    expect(num(await world.stateItem(), 'retire_due')).toBeDefined();
    const token = await world.beginRotation();
    world.interceptor = (c) => (c.operation === 'secrets.create' ? { when: 'before', error: 400 } : undefined);
    await fail(world.invoke('createSecret', token));
    world.interceptor = undefined;
    expect(world.stytch.isProjectSecretAccepted(world.project.projectId, old.secret)).toBe(false);
    // Nothing is left for the sweep to delete.
    expect(num(await world.stateItem(), 'retire_due')).toBeUndefined();
  });
});

describe('Project secret: the size limit of the new version', () => {
  /**
   * A rotated secret of another project whose secret is shorter than the ones Stytch creates, padded so
   * that the new version (same text, longer secret) is `over` bytes past the limit.
   */
  const nearTheLimit = async (over: number) => {
    world = await new World({ kind: 'project_secret', rotationEnabled: false, env: { PREVIOUS_SECRET_GRACE_SECONDS: '3600' } }).init();
    const project = world.stytch.createProject({ secret: 'short-secret-wxyz' });
    const longer = world.stytch.createProjectSecret(project.projectId);
    const growth = longer.secret.length - project.secret.length;
    const value = { project_id: project.projectId, secret: project.secret, secret_id: project.secretId, project_slug: project.projectSlug, environment_slug: project.environmentSlug };
    const bare = JSON.stringify({ ...value, pad: '' });
    const text = JSON.stringify({ ...value, pad: 'x'.repeat(SECRET_VALUE_LIMIT_BYTES + over - growth - bare.length) });
    expect(text.length + growth).toBe(SECRET_VALUE_LIMIT_BYTES + over);
    await putValue(text);
    await world.sm.handle('RotateSecret', { SecretId: world.secretArn, RotationLambdaARN: LAMBDA_ARN, RotationRules: { ScheduleExpression: 'rate(30 days)' }, RotateImmediately: false });
    world.stytch.deleteProjectSecret(project.projectId, longer.secretId);
    return project;
  };
  const secretsOf = (projectId: string) => world.stytch.projectSecrets(projectId).map((s) => s.secretId);

  it('a new version of exactly the limit is stored', async () => {
    const project = await nearTheLimit(0);
    const token = await world.beginRotation();
    await world.invoke('createSecret', token);
    expect(Buffer.byteLength(world.snapshot().versions[token]!.secretString!)).toBe(SECRET_VALUE_LIMIT_BYTES);
    expect(secretsOf(project.projectId)).toHaveLength(2);
  });

  it('a new version a byte over the limit is refused, and the secret created for it deleted', async () => {
    const project = await nearTheLimit(1);
    const token = await world.beginRotation();
    const error = await fail(world.invoke('createSecret', token));
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error?.message).toBe(
      `The new version of ${world.secretName} would be over Secrets Manager's limit of ${SECRET_VALUE_LIMIT_BYTES} bytes. Nothing was changed. Make the other fields smaller.`,
    );
    expect(secretsOf(project.projectId)).toEqual([project.secretId]);
    expect(logged('Deleted the new project secret: the new value would exceed the secret size limit')).toEqual([
      expect.objectContaining({ level: 'WARN', createdSecretId: expect.any(String) }),
    ]);
    expect(metric('RotationCancelled')).toBe(1);
    expect(world.snapshot().versions[token]?.secretString).toBeUndefined();
    expect(str(await world.stateItem(), 'created_version')).toBeUndefined();
  });
});
