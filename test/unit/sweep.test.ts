import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createHandler } from '../../functions/rotate-stytch-secret/handler.js';
import { cliInWorld } from '../helpers/cli-in-process.js';
import { CREDENTIALS_SECRET, LAMBDA_ARN, STATE_TABLE, World, type WorldOptions } from '../helpers/world.js';

/**
 * The retirement sweep's decisions (DESIGN.md §4, the retirement sweep; III),
 * through the handler built from source, one decision at a time: what it
 * counts and logs for each outcome, what it asks of Stytch and what it leaves
 * in the state table, the record re-read under the lease (VI), the budget and
 * how many retirements run at once, and what it refuses (VII).
 */

const HOUR_MS = 3_600_000;
/** The sweep's budget under the World's default context (60 s left): 60 s, less the 3 s reserve and the 10 s tail. */
const SWEEP_BUDGET_MS = 47_000;
let world: World;

const make = async (options: WorldOptions = {}) =>
  (world = await new World({ ...options, env: { PREVIOUS_SECRET_GRACE_SECONDS: '3600', ...options.env } }).init());

afterEach(() => {
  vi.restoreAllMocks();
  // V: nothing printed or thrown holds a secret.
  if (world) expect(world.leaks()).toEqual([]);
});

const accepted = (secret: string) => world.stytch.isAccepted(world.client.client_id, secret);
const dueAt = async () => {
  const n = ((await world.stateItem())?.retire_due as { N?: string } | undefined)?.N;
  return n === undefined ? undefined : Number(n);
};
const clientKey = (clientId: string) => ({ pk: { S: `client#${world.project.projectId}#${clientId}` } });
const itemOf = async (clientId: string) =>
  (await world.dynamo.handle('GetItem', { TableName: STATE_TABLE, Key: clientKey(clientId), ConsistentRead: true })).Item as Record<string, unknown> | undefined;

/** The last sweep's result, exactly as it logged it when it succeeded. */
const lastResult = () => world.logRecords().findLast((r) => r.message === 'Sweep succeeded')?.result;
/** The last sweep's counts, as it logged them when it ended (succeeded or not). */
const lastSummary = () => {
  const r = world.logRecords().findLast((l) => l.message === 'Retirement sweep done');
  return r && { due: r.due, retired: r.retired, cleared: r.cleared, deferred: r.deferred, failed: r.failed, leftForNextSweep: r.leftForNextSweep };
};
const counts = (partial: Partial<Record<'due' | 'retired' | 'cleared' | 'deferred' | 'failed' | 'leftForNextSweep', number>>) => ({
  due: 0,
  retired: 0,
  cleared: 0,
  deferred: 0,
  failed: 0,
  leftForNextSweep: 0,
  ...partial,
});
const logged = (message: string) => world.logRecords().filter((r) => r.message === message);

/** A rotation as Secrets Manager runs it. */
async function rotate(arn = world.secretArn): Promise<void> {
  await world.sm.handle('RotateSecret', { SecretId: arn });
  expect(world.sm.rotationHistory(arn).at(-1)?.outcome).toBe('succeeded');
}

/** Another client of the project in its own secret, rotated once (its retirement recorded). */
async function rotatedClient(name: string): Promise<{ arn: string; clientId: string; first: string }> {
  const created = world.stytch.createConnectedApp(world.project.projectId, { clientType: 'first_party' });
  const { ARN } = (await world.sm.handle('CreateSecret', {
    Name: name,
    ClientRequestToken: randomUUID(),
    SecretString: JSON.stringify({ client_id: created.client_id, client_secret: created.client_secret }),
  })) as { ARN: string };
  await world.sm.handle('RotateSecret', { SecretId: ARN, RotationLambdaARN: LAMBDA_ARN, RotationRules: { ScheduleExpression: 'rate(30 days)' } });
  expect(world.sm.rotationHistory(ARN).at(-1)?.outcome).toBe('succeeded');
  return { arn: ARN, clientId: created.client_id, first: created.client_secret! };
}

/** Real time stands still from here: only world.advance moves the function's clock, to the millisecond. */
const freezeTime = () => {
  const frozen = Date.now();
  vi.spyOn(Date, 'now').mockReturnValue(frozen);
};

/** Writes AWSCURRENT's value as someone with write access to the secret would. */
const putCurrent = (secretString: string, secretId = world.secretArn) =>
  world.sm.handle('PutSecretValue', { SecretId: secretId, ClientRequestToken: randomUUID(), SecretString: secretString });
const currentValue = () => world.versionWith('AWSCURRENT')!.value as Record<string, unknown>;

/**
 * A handler whose reads of the client at Stytch come back, while `when()` says so, without the current
 * secret's last four (Stytch's answer for a client that has no secret of its own): the rest is Stytch's.
 */
const noCurrentLast4 =
  (when: () => boolean): WorldOptions['createHandler'] =>
  (options = {}) =>
    createHandler({
      ...options,
      fetch: async (input, init) => {
        const response = await options.fetch!(input, init);
        if ((init?.method ?? 'GET') !== 'GET' || !response.ok || !String(input).includes('/connected_apps/clients/') || !when()) return response;
        const body = (await response.json()) as { connected_app: Record<string, unknown> };
        delete body.connected_app.client_secret_last_four;
        return new Response(JSON.stringify(body), { status: response.status, headers: response.headers });
      },
    });

/** Rewrites the due record's previous secret's last four, as a record written by hand would hold them. */
const recordPreviousLast4 = (last4: string) =>
  world.dynamo.handle('UpdateItem', {
    TableName: STATE_TABLE,
    Key: clientKey(world.client.client_id),
    UpdateExpression: 'SET retire_previous_last4 = :l',
    ExpressionAttributeValues: { ':l': { S: last4 } },
  });

describe('The sweep: its budget and how many retirements run at once', () => {
  it('starts no retirement once its budget is spent, to the millisecond: at the limit the client waits for the next sweep', async () => {
    await make();
    const old = world.client.client_secret;
    await rotate();
    world.advance(2 * HOUR_MS);
    freezeTime();
    world.stytch.resetRequests();
    // The scan is held while the clock reaches the sweep's stop time exactly.
    const scan = world.pause((c) => c.operation === 'Scan', 'after');
    const sweep = world.sweep();
    await scan.reached;
    world.advance(SWEEP_BUDGET_MS);
    scan.release();
    await sweep;
    expect(lastResult()).toEqual(counts({ due: 1, leftForNextSweep: 1 }));
    expect(world.stytchCalls()).toEqual([]);
    expect(accepted(old)).toBe(true);
    expect(await dueAt()).toBeDefined();
  });

  it('still starts a retirement one millisecond before its budget is spent', async () => {
    await make();
    const old = world.client.client_secret;
    await rotate();
    world.advance(2 * HOUR_MS);
    freezeTime();
    const scan = world.pause((c) => c.operation === 'Scan', 'after');
    const sweep = world.sweep();
    await scan.reached;
    world.advance(SWEEP_BUDGET_MS - 1);
    scan.release();
    await sweep;
    expect(lastResult()).toEqual(counts({ due: 1, retired: 1 }));
    expect(accepted(old)).toBe(false);
    expect(await dueAt()).toBeUndefined();
  });

  it('runs eight retirements at once, no more: out of time after they started, the ninth waits for the next sweep', async () => {
    await make();
    await rotate();
    const others = [];
    for (let i = 1; i <= 8; i++) others.push(await rotatedClient(`demo/client-${i}`));
    world.advance(2 * HOUR_MS);
    // The budget runs out while the first retirement reads Stytch: those already started finish, no other starts.
    let spent = false;
    world.interceptor = (call) => {
      if (!spent && call.service === 'stytch' && call.operation.endsWith('.get')) {
        spent = true;
        world.advance(SWEEP_BUDGET_MS + 3_000);
      }
      return undefined;
    };
    world.stytch.resetRequests();
    await world.sweep();
    world.interceptor = undefined;
    expect(lastResult()).toEqual(counts({ due: 9, retired: 8, leftForNextSweep: 1 }));
    expect(world.stytchCalls('.rotate')).toHaveLength(8);
    expect(world.metricCounts().PreviousSecretRetired).toBe(8);
    expect(logged('The sweep ran out of time; the next sweep takes the rest')).toEqual([expect.objectContaining({ level: 'WARN', leftForNextSweep: 1 })]);
    await world.sweep();
    expect(lastResult()).toEqual(counts({ due: 1, retired: 1 }));
    for (const { clientId, first } of others) expect(world.stytch.isAccepted(clientId, first)).toBe(false);
    expect((await world.dynamo.scan(STATE_TABLE)).filter((i) => i.retire_due !== undefined)).toEqual([]);
  });
});

describe('The sweep: the record as it is under the lease, not as the scan saw it (VI)', () => {
  it('retires at the very end of the window (III: no earlier, and not a millisecond later than due)', async () => {
    await make();
    const old = world.client.client_secret;
    await rotate();
    freezeTime();
    const due = (await dueAt())!;
    world.advance(due - world.clock.now() - 1);
    await world.sweep();
    expect(lastResult()).toEqual(counts({}));
    expect(accepted(old)).toBe(true);
    world.advance(1);
    expect(world.clock.now()).toBe(due);
    await world.sweep();
    expect(lastResult()).toEqual(counts({ due: 1, retired: 1 }));
    expect(accepted(old)).toBe(false);
    expect(logged('Retired the previous secret at Stytch: its overlap window has ended')).toEqual([
      expect.objectContaining({ level: 'INFO', secretArn: world.secretArn, retiredLast4: old.slice(-4), windowEndedAt: new Date(due).toISOString() }),
    ]);
    expect(world.metricCounts()).toMatchObject({ PreviousSecretRetired: 1 });
  });

  it('leaves alone a record an operator cleared after the scan saw it: nothing is counted but the due client', async () => {
    await make();
    const old = world.client.client_secret;
    await rotate();
    world.advance(2 * HOUR_MS);
    const scan = world.pause((c) => c.operation === 'Scan', 'after');
    const sweep = world.sweep();
    await scan.reached;
    await world.dynamo.handle('UpdateItem', {
      TableName: STATE_TABLE,
      Key: clientKey(world.client.client_id),
      UpdateExpression: 'REMOVE retire_due, retire_version, retire_last4, retire_previous_version, retire_previous_last4',
    });
    world.stytch.resetRequests();
    scan.release();
    await sweep;
    expect(lastResult()).toEqual(counts({ due: 1 }));
    expect(world.stytchCalls()).toEqual([]);
    expect(accepted(old)).toBe(true);
    const metrics = world.metricCounts();
    for (const name of ['PreviousSecretRetired', 'RetirementCleared', 'RetirementDeferred', 'RetirementFailed']) expect(metrics[name]).toBeUndefined();
  });

  it('leaves alone a record a newer rotation moved on after the scan (its window has just begun)', async () => {
    await make();
    const first = world.client.client_secret;
    await rotate();
    const second = world.currentSecret();
    world.advance(2 * HOUR_MS);
    const scan = world.pause((c) => c.operation === 'Scan', 'after');
    const sweep = world.sweep();
    await scan.reached;
    // A rotation in another container: it retires the first secret itself and records the second's retirement.
    world.newContainer();
    await rotate();
    const third = world.currentSecret();
    world.stytch.resetRequests();
    scan.release();
    await sweep;
    expect(lastResult()).toEqual(counts({ due: 1 }));
    expect(world.stytchCalls()).toEqual([]);
    expect(accepted(first)).toBe(false);
    // I: the second secret keeps its own window.
    expect(accepted(second)).toBe(true);
    expect(accepted(third)).toBe(true);
    expect((await dueAt())!).toBeGreaterThan(world.clock.now());
  });

  it('leaves no trace of a client whose item was removed after the scan, and binds nothing again', async () => {
    await make();
    await rotate();
    world.advance(2 * HOUR_MS);
    const scan = world.pause((c) => c.operation === 'Scan', 'after');
    const sweep = world.sweep();
    await scan.reached;
    await world.dynamo.handle('DeleteItem', { TableName: STATE_TABLE, Key: clientKey(world.client.client_id) });
    world.stytch.resetRequests();
    scan.release();
    await sweep;
    expect(lastResult()).toEqual(counts({ due: 1 }));
    expect(world.stytchCalls()).toEqual([]);
    // The lease it took on the client went with it: the binding is only ever made by a rotation or an administrator (VII).
    expect(await world.stateItem()).toBeUndefined();
  });

  it('marks its lease as the retirement sweep\'s: a step that meets it says who holds the client', async () => {
    await make();
    await rotate();
    world.advance(2 * HOUR_MS);
    const read = world.pause((c) => c.service === 'stytch' && c.operation.endsWith('.get') && c.step === undefined);
    const sweep = world.sweep(world.createContainer());
    await read.reached;
    const token = await world.beginRotation();
    await expect(world.invoke('createSecret', token)).rejects.toThrow(
      new RegExp(`Another invocation holds the lease on Stytch client ${world.client.client_id} \\(retirement sweep, until `),
    );
    read.release();
    await sweep;
    expect(lastResult()).toEqual(counts({ due: 1, retired: 1 }));
  });

  it('fails, keeping the record, when the state table refuses the lease for another reason than a holder', async () => {
    await make();
    const old = world.client.client_secret;
    await rotate();
    world.advance(2 * HOUR_MS);
    let refused = false;
    world.interceptor = (call) => {
      if (!refused && call.service === 'dynamodb' && call.operation === 'UpdateItem') {
        refused = true;
        return { when: 'before', error: 'InternalServiceError' };
      }
      return undefined;
    };
    await expect(world.sweep()).rejects.toThrow(`The retirement sweep could not retire 1 of 1 due previous secret(s); they stay accepted by Stytch until a sweep succeeds. First: ${world.secretArn}: Internal server error`);
    world.interceptor = undefined;
    expect(refused).toBe(true);
    expect(lastSummary()).toEqual(counts({ due: 1, failed: 1 }));
    expect(world.metricCounts()).toMatchObject({ RetirementFailed: 1, SweepFailed: 1 });
    expect(world.metricCounts().RetirementDeferred).toBeUndefined();
    expect(accepted(old)).toBe(true);
    expect(await dueAt()).toBeDefined();
  });
});

describe('The sweep: a client no secret is bound to any more', () => {
  it('defers the retirement of a client an administrator rebound the secret away from, naming the client, and asks Stytch nothing', async () => {
    await make();
    const old = world.client.client_secret;
    await rotate();
    const other = world.stytch.createConnectedApp(world.project.projectId, { clientType: 'first_party' });
    const bound = await cliInWorld(world, ['bind', '--secret-id', world.secretArn, '--client-id', other.client_id, '--yes']);
    expect(bound.code).toBe(0);
    world.advance(2 * HOUR_MS);
    world.stytch.resetRequests();
    await world.sweep();
    expect(lastResult()).toEqual(counts({ due: 1, deferred: 1 }));
    expect(world.metricCounts().RetirementDeferred).toBe(1);
    expect(logged('A due retirement belongs to a client no secret is bound to (rebound by an administrator): bind it again, or retire it with the CLI')).toEqual([
      expect.objectContaining({ level: 'WARN', clientId: world.client.client_id, previousLast4: old.slice(-4) }),
    ]);
    expect(world.stytchCalls()).toEqual([]);
    expect(accepted(old)).toBe(true);
    // The record stays for the administrator.
    expect((await itemOf(world.client.client_id))?.retire_due).toBeDefined();
  });

  it('defers, asking Stytch nothing, when the administrator rebinds the secret away after the scan saw the client bound (VII)', async () => {
    await make();
    const old = world.client.client_secret;
    await rotate();
    const other = world.stytch.createConnectedApp(world.project.projectId, { clientType: 'first_party' });
    world.advance(2 * HOUR_MS);
    const scan = world.pause((c) => c.operation === 'Scan', 'after');
    const sweep = world.sweep();
    await scan.reached;
    const bound = await cliInWorld(world, ['bind', '--secret-id', world.secretArn, '--client-id', other.client_id, '--yes']);
    expect(bound.code).toBe(0);
    world.stytch.resetRequests();
    scan.release();
    await sweep;
    expect(lastResult()).toEqual(counts({ due: 1, deferred: 1 }));
    expect(logged('A due retirement belongs to a client no secret is bound to (rebound by an administrator): bind it again, or retire it with the CLI')).toEqual([
      expect.objectContaining({ level: 'WARN', clientId: world.client.client_id, previousLast4: old.slice(-4) }),
    ]);
    expect(world.stytchCalls()).toEqual([]);
    expect(accepted(old)).toBe(true);
    const item = await itemOf(world.client.client_id);
    expect(item?.retire_due).toBeDefined();
    expect(item?.lease_holder).toBeUndefined();
  });
});

describe('The sweep: a client bound to another secret after its scan (VII)', () => {
  it('defers, asking Stytch nothing, and the next sweep decides on the secret the client is bound to now', async () => {
    await make();
    const old = world.client.client_secret;
    await rotate();
    const current = world.currentSecret();
    // A second secret holding the client's AWSCURRENT secret, as an administrator moving consumers to it would make.
    const { ARN: second } = (await world.sm.handle('CreateSecret', {
      Name: 'demo/stytch-client-moved',
      ClientRequestToken: randomUUID(),
      SecretString: JSON.stringify({ client_id: world.client.client_id, client_secret: current }),
    })) as { ARN: string };
    world.advance(2 * HOUR_MS);
    const scan = world.pause((c) => c.operation === 'Scan', 'after');
    const sweep = world.sweep();
    await scan.reached;
    const bound = await cliInWorld(world, ['bind', '--secret-id', second, '--client-id', world.client.client_id, '--yes']);
    expect(bound.code).toBe(0);
    world.stytch.resetRequests();
    scan.release();
    await sweep;
    expect(lastResult()).toEqual(counts({ due: 1, deferred: 1 }));
    expect(world.metricCounts().RetirementDeferred).toBe(1);
    expect(logged('The client was bound again since the sweep read the state table: its retirement waits for the next sweep, which decides on its binding then')).toEqual([
      expect.objectContaining({
        level: 'WARN',
        clientId: world.client.client_id,
        secretArn: world.secretArn,
        reason: expect.stringContaining(`is bound to another secret (${second})`),
      }),
    ]);
    expect(world.stytchCalls()).toEqual([]);
    expect(accepted(old)).toBe(true);
    const item = await itemOf(world.client.client_id);
    expect(item?.retire_due).toBeDefined();
    expect(item?.lease_holder).toBeUndefined();

    // The next sweep reads the new binding, and retires through the second secret, whose AWSCURRENT is Stytch's next.
    await world.sweep();
    expect(lastResult()).toEqual(counts({ due: 1, retired: 1 }));
    expect(accepted(old)).toBe(false);
    expect(accepted(current)).toBe(true);
  });
});

describe('The sweep: an M2M client whose item was written before kinds were recorded (VII)', () => {
  it('retires without recording a kind, so the next rotation of the M2M secret still runs', async () => {
    await make({ kind: 'm2m' });
    const old = world.client.client_secret;
    await rotate();
    await world.dynamo.handle('UpdateItem', { TableName: STATE_TABLE, Key: clientKey(world.client.client_id), UpdateExpression: 'REMOVE client_kind' });
    world.advance(2 * HOUR_MS);
    await world.sweep();
    expect(lastResult()).toEqual(counts({ due: 1, retired: 1 }));
    expect(accepted(old)).toBe(false);
    expect((await itemOf(world.client.client_id))?.client_kind).toBeUndefined();
    await rotate();
    expect((await itemOf(world.client.client_id))?.client_kind).toEqual({ S: 'm2m' });
  });
});

describe('The sweep: what Stytch and AWSCURRENT say', () => {
  it('clears, at info level, a retirement Stytch already completed, asking only for its state', async () => {
    await make();
    const old = world.client.client_secret;
    await rotate();
    world.stytch.adminRotate(world.client.client_id);
    world.advance(2 * HOUR_MS);
    world.stytch.resetRequests();
    await world.sweep();
    expect(lastResult()).toEqual(counts({ due: 1, cleared: 1 }));
    expect(world.stytch.requests.map((r) => r.operation)).toEqual(['connected_app.get']);
    expect(logged('Nothing to retire: Stytch no longer accepts the previous secret (a newer rotation or Stytch completed it)')).toEqual([
      expect.objectContaining({ level: 'INFO', secretArn: world.secretArn, previousLast4: old.slice(-4) }),
    ]);
    expect(world.logLevels().WARN).toBeUndefined();
    expect(world.metricCounts().RetirementCleared).toBe(1);
    expect(await dueAt()).toBeUndefined();
  });

  it('clears without retiring when AWSCURRENT was rolled back to the previous secret, naming both of Stytch\'s secrets (I)', async () => {
    await make();
    const old = world.client.client_secret;
    await rotate();
    const next = world.currentSecret();
    await putCurrent(JSON.stringify({ ...currentValue(), client_secret: old }));
    world.advance(2 * HOUR_MS);
    await world.sweep();
    expect(lastResult()).toEqual(counts({ due: 1, cleared: 1 }));
    expect(world.stytchCalls('.rotate')).toEqual([]);
    expect(accepted(old)).toBe(true);
    expect(logged(
      `Not retired: AWSCURRENT (…${old.slice(-4)}) is not Stytch's next secret any more (Stytch holds …${old.slice(-4)}, next …${next.slice(-4)}), so completing the rotation could break it; AWSCURRENT was changed outside this function`,
    )).toEqual([expect.objectContaining({ level: 'WARN', secretArn: world.secretArn, previousLast4: old.slice(-4) })]);
    expect(await dueAt()).toBeUndefined();
  });

  it('says "none" when Stytch has no next secret any more (its rotation cancelled outside) and clears without retiring', async () => {
    await make();
    const old = world.client.client_secret;
    await rotate();
    const current = world.currentSecret();
    world.stytch.adminRotateCancel(world.client.client_id);
    world.advance(2 * HOUR_MS);
    await world.sweep();
    expect(lastResult()).toEqual(counts({ due: 1, cleared: 1 }));
    expect(world.stytchCalls('.rotate')).toEqual([]);
    expect(accepted(old)).toBe(true);
    expect(logged(
      `Not retired: AWSCURRENT (…${current.slice(-4)}) is not Stytch's next secret any more (Stytch holds …${old.slice(-4)}, next …none), so completing the rotation could break it; AWSCURRENT was changed outside this function`,
    )).toHaveLength(1);
  });

  it('retires only the previous secret its record names: a record naming AWSCURRENT\'s last four retires nothing (I)', async () => {
    await make();
    const old = world.client.client_secret;
    await rotate();
    const current = world.currentSecret();
    await recordPreviousLast4(current.slice(-4));
    world.advance(2 * HOUR_MS);
    await world.sweep();
    expect(lastResult()).toEqual(counts({ due: 1, cleared: 1 }));
    expect(world.stytchCalls('.rotate')).toEqual([]);
    expect(accepted(old)).toBe(true);
    expect(logged(
      `Not retired: AWSCURRENT (…${current.slice(-4)}) is not Stytch's next secret any more (Stytch holds …${old.slice(-4)}, next …${current.slice(-4)}), so completing the rotation could break it; AWSCURRENT was changed outside this function`,
    )).toEqual([expect.objectContaining({ level: 'WARN', secretArn: world.secretArn })]);
  });

  it('says "none" for a current secret Stytch does not report, and retires nothing', async () => {
    let hide = false;
    await make({ createHandler: noCurrentLast4(() => hide) });
    const old = world.client.client_secret;
    await rotate();
    const current = world.currentSecret();
    await recordPreviousLast4(current.slice(-4));
    world.advance(2 * HOUR_MS);
    hide = true;
    await world.sweep();
    expect(lastResult()).toEqual(counts({ due: 1, cleared: 1 }));
    expect(world.stytchCalls('.rotate')).toEqual([]);
    expect(accepted(old)).toBe(true);
    expect(logged(
      `Not retired: AWSCURRENT (…${current.slice(-4)}) is not Stytch's next secret any more (Stytch holds …none, next …${current.slice(-4)}), so completing the rotation could break it; AWSCURRENT was changed outside this function`,
    )).toHaveLength(1);
  });

  it('defers a secret scheduled for deletion, saying why and what it will retire, and keeps the record', async () => {
    await make();
    const old = world.client.client_secret;
    await rotate();
    await world.sm.handle('DeleteSecret', { SecretId: world.secretArn, RecoveryWindowInDays: 7 });
    world.advance(2 * HOUR_MS);
    await world.sweep();
    expect(lastResult()).toEqual(counts({ due: 1, deferred: 1 }));
    expect(logged(
      `Not retired yet: the secret is scheduled for deletion, so AWSCURRENT cannot be read; the record stays until it is restored (then the sweep retires …${old.slice(-4)}) or deleted for good`,
    )).toEqual([expect.objectContaining({ level: 'WARN', secretArn: world.secretArn })]);
    expect(world.metricCounts().RetirementDeferred).toBe(1);
    expect(await dueAt()).toBeDefined();
  });

  it('fails on an AWSCURRENT value that is not JSON, saying how to fix it, and keeps the record', async () => {
    await make();
    const old = world.client.client_secret;
    await rotate();
    await putCurrent('not json');
    world.advance(2 * HOUR_MS);
    world.stytch.resetRequests();
    await expect(world.sweep()).rejects.toThrow(
      `First: ${world.secretArn}: The AWSCURRENT value of secret ${world.secretName} is not valid JSON. It must be JSON with client_id and client_secret; fix it with aws secretsmanager put-secret-value.`,
    );
    expect(lastSummary()).toEqual(counts({ due: 1, failed: 1 }));
    expect(world.stytchCalls()).toEqual([]);
    expect(accepted(old)).toBe(true);
    expect(await dueAt()).toBeDefined();
  });

  it('refuses an AWSCURRENT value that switched to other project credentials (VII), asking Stytch nothing', async () => {
    await make();
    await rotate();
    await putCurrent(JSON.stringify({ ...currentValue(), stytch_credentials_secret_id: CREDENTIALS_SECRET }));
    world.advance(2 * HOUR_MS);
    world.stytch.resetRequests();
    await expect(world.sweep()).rejects.toThrow(/names a client, project or credentials secret other than the bound client/);
    expect(world.stytch.requests).toEqual([]);
    expect(world.metricCounts().BindingRefused).toBe(1);
    expect(await dueAt()).toBeDefined();
  });

  it('refuses when the credentials now belong to another project (VII), never calling the client at Stytch', async () => {
    await make();
    const old = world.client.client_secret;
    await rotate();
    const elsewhere = world.stytch.createProject();
    await putCurrent(JSON.stringify({ project_id: elsewhere.projectId, secret: elsewhere.secret }), CREDENTIALS_SECRET);
    world.newContainer();
    world.advance(2 * HOUR_MS);
    world.stytch.resetRequests();
    await expect(world.sweep()).rejects.toThrow(/names a client, project or credentials secret other than the bound client/);
    expect(world.stytch.requests).toEqual([]);
    expect(world.metricCounts().BindingRefused).toBe(1);
    expect(accepted(old)).toBe(true);
    expect(await dueAt()).toBeDefined();
  });
});

describe('The sweep: a rotate whose answer was lost, confirmed from Stytch\'s state', () => {
  /** Stytch completes the rotation just before the sweep's rotate reaches it (so the rotate finds nothing rotating); then `meanwhile` runs before the confirming read. */
  const completedOutside = (meanwhile: () => void) => {
    let phase: 'rotate' | 'get' | 'done' = 'rotate';
    world.stytch.interceptor = ({ operation, phase: when }) => {
      if (when !== 'before') return;
      if (phase === 'rotate' && operation === 'connected_app.rotate') {
        world.stytch.adminRotate(world.client.client_id);
        phase = 'get';
      } else if (phase === 'get' && operation === 'connected_app.get') {
        meanwhile();
        phase = 'done';
      }
    };
  };

  it('fails, keeping the record, when Stytch\'s secret is not AWSCURRENT\'s after all', async () => {
    await make();
    await rotate();
    const current = world.currentSecret();
    world.advance(2 * HOUR_MS);
    let elsewhere = '';
    completedOutside(() => {
      elsewhere = world.stytch.adminRotateStart(world.client.client_id);
      world.stytch.adminRotate(world.client.client_id);
    });
    const error = await world.sweep().then(() => undefined, (e: unknown) => e as Error);
    expect(error?.message).toContain(
      `First: ${world.secretArn}: Stytch reports no rotation in progress, yet its secrets (…${elsewhere.slice(-4)}) are not AWSCURRENT's (…${current.slice(-4)}).`,
    );
    world.stytch.interceptor = undefined;
    expect(lastSummary()).toEqual(counts({ due: 1, failed: 1 }));
    expect(world.metricCounts().PreviousSecretRetired).toBeUndefined();
    expect(await dueAt()).toBeDefined();
  });

  it('fails, keeping the record, when Stytch holds AWSCURRENT\'s secret but has started another rotation', async () => {
    await make();
    await rotate();
    const current = world.currentSecret();
    world.advance(2 * HOUR_MS);
    completedOutside(() => void world.stytch.adminRotateStart(world.client.client_id));
    await expect(world.sweep()).rejects.toThrow(
      `First: ${world.secretArn}: Stytch reports no rotation in progress, yet its secrets (…${current.slice(-4)}) are not AWSCURRENT's (…${current.slice(-4)}).`,
    );
    world.stytch.interceptor = undefined;
    expect(lastSummary()).toEqual(counts({ due: 1, failed: 1 }));
    expect(await dueAt()).toBeDefined();
  });

  it('says "none" when Stytch\'s confirming read reports no current secret, and fails keeping the record', async () => {
    let hide = false;
    await make({ createHandler: noCurrentLast4(() => hide) });
    await rotate();
    const current = world.currentSecret();
    world.advance(2 * HOUR_MS);
    completedOutside(() => (hide = true));
    await expect(world.sweep()).rejects.toThrow(
      `First: ${world.secretArn}: Stytch reports no rotation in progress, yet its secrets (…none) are not AWSCURRENT's (…${current.slice(-4)}).`,
    );
    world.stytch.interceptor = undefined;
    expect(lastSummary()).toEqual(counts({ due: 1, failed: 1 }));
    expect(await dueAt()).toBeDefined();
  });

  it('counts it retired when Stytch holds AWSCURRENT\'s secret only', async () => {
    await make();
    const old = world.client.client_secret;
    await rotate();
    world.advance(2 * HOUR_MS);
    completedOutside(() => undefined);
    await world.sweep();
    world.stytch.interceptor = undefined;
    expect(lastResult()).toEqual(counts({ due: 1, retired: 1 }));
    expect(accepted(old)).toBe(false);
    expect(await dueAt()).toBeUndefined();
  });
});

describe('The sweep: a project secret (DESIGN.md §4b) goes through its own retirement, whose record it keeps, replaces or clears', () => {
  const makeProject = (env: Record<string, string> = {}) => make({ kind: 'project_secret', env });
  const projectAccepted = (secret: string) => world.stytch.isProjectSecretAccepted(world.project.projectId, secret);
  const stateRetirement = async () => {
    const item = await world.stateItem();
    const n = (name: string) => (item?.[name] as { N?: string } | undefined)?.N;
    return { due: n('retire_due') === undefined ? undefined : Number(n('retire_due')), deferred: n('retire_deferred') };
  };
  /** A request with the project secret, as an app that still uses it makes one (Stytch records the use). */
  const useAtStytch = (secret: string) =>
    world.stytch.fetch(`http://127.0.0.1:9/v1/m2m/clients/${world.client.client_id}`, {
      headers: { authorization: `Basic ${Buffer.from(`${world.project.projectId}:${secret}`).toString('base64')}` },
    });

  it('deletes the previous project secret once its window has ended, and clears the record', async () => {
    await makeProject();
    const old = world.projectSecret!.secret;
    await rotate();
    world.advance(2 * HOUR_MS);
    await world.sweep();
    expect(lastResult()).toEqual(counts({ due: 1, retired: 1 }));
    expect(projectAccepted(old)).toBe(false);
    expect(world.stytch.requests.filter((r) => r.operation === 'secrets.delete')).toHaveLength(1);
    expect(await stateRetirement()).toEqual({ due: undefined, deferred: undefined });
  });

  it('puts the deletion off once, replacing the record, when the previous secret is still in use', async () => {
    await makeProject({ PROJECT_SECRET_IN_USE_DEFER_SECONDS: '7200' });
    const old = world.projectSecret!.secret;
    await rotate();
    const first = (await stateRetirement()).due!;
    world.advance(2 * HOUR_MS);
    expect((await useAtStytch(old)).status).toBe(200);
    freezeTime();
    const sweptAt = world.clock.now();
    await world.sweep();
    expect(lastResult()).toEqual(counts({ due: 1, deferred: 1 }));
    expect(projectAccepted(old)).toBe(true);
    const replaced = await stateRetirement();
    expect(replaced).toEqual({ due: sweptAt + 7_200_000, deferred: '1' });
    expect(replaced.due).toBeGreaterThan(first);
  });

  it('keeps the record as it was for a project secret scheduled for deletion', async () => {
    await makeProject();
    const old = world.projectSecret!.secret;
    await rotate();
    const before = await stateRetirement();
    await world.sm.handle('DeleteSecret', { SecretId: world.secretArn, RecoveryWindowInDays: 7 });
    world.advance(2 * HOUR_MS);
    await world.sweep();
    expect(lastResult()).toEqual(counts({ due: 1, deferred: 1 }));
    expect(projectAccepted(old)).toBe(true);
    expect(await stateRetirement()).toEqual(before);
    expect(before.due).toBeDefined();
  });
});
