import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createHandler } from '../../functions/rotate-stytch-secret/handler.js';
import { CREDENTIALS_SECRET, LAMBDA_ARN, STATE_TABLE, World, type ExternalCall, type WorldOptions } from '../helpers/world.js';

/**
 * The decisions of the steps' first half (rotation.ts: the preamble, the lease
 * and the binding around every step, createSecret, setSecret, testSecret and
 * the configuration test), each through the handler built from source against
 * the in-process emulators. Each test pins what a user or operator depends on:
 * what Stytch was asked to do (and not), what Secrets Manager and the state
 * table hold, the outcome or error of the step, exact metric counts, and the
 * structured fields of the log records an operator reads.
 */

let world: World | undefined;
const make = async (options?: WorldOptions) => (world = await new World(options).init());

afterEach(() => {
  // V: nothing printed or thrown holds a secret.
  if (world) expect(world.leaks()).toEqual([]);
  world = undefined;
  vi.restoreAllMocks();
});

const last4 = (s: string) => s.slice(-4);
const failureOf = (run: Promise<void>) => run.then(() => undefined, (e: unknown) => e as Error & { transient?: boolean });
const isStytch = (suffix: string) => (call: ExternalCall) => call.service === 'stytch' && call.operation.endsWith(suffix);

/** The outcomes the handler logged ("Step succeeded") in these lines. */
const outcomes = (w: World, from = 0) =>
  w
    .logRecords(w.output.slice(from))
    .filter((r) => r.message === 'Step succeeded')
    .map((r) => r.outcome);

/** The log records with this message, in these lines. */
const records = (w: World, message: string, from = 0) => w.logRecords(w.output.slice(from)).filter((r) => r.message === message);

/** The state-table attribute's string or number value. */
const attr = (item: Record<string, unknown> | undefined, name: string) => {
  const v = item?.[name] as { S?: string; N?: string } | undefined;
  return v?.S ?? (v?.N === undefined ? undefined : Number(v.N));
};

/** Writes AWSCURRENT by hand, as someone with write access to the secret would (a rotation under way ends: begin it again). */
async function putCurrent(w: World, value: string): Promise<string> {
  const id = randomUUID();
  await w.sm.handle('PutSecretValue', { SecretId: w.secretArn, ClientRequestToken: id, SecretString: value, VersionStages: ['AWSCURRENT'] });
  return id;
}

/** The id the next invocation gets (World.invocations). */
const nextInvocation = (w: World) => w.invocations.length;

/** How many calls of this operation the invocation has made so far (the current call included). */
const callsOf = (w: World, invocation: number, operation: string) =>
  w.externalCalls.filter((c) => c.invocation === invocation && c.operation === operation).length;

/** Sets the client item's lease by hand: another holder's, as if an invocation were running or had died. */
async function foreignLease(w: World, lease: { holder: string; until: number; what: string }): Promise<void> {
  await w.dynamo.handle('UpdateItem', {
    TableName: STATE_TABLE,
    Key: { pk: { S: `client#${w.project.projectId}#${w.client.client_id}` } },
    UpdateExpression: 'SET lease_holder = :h, lease_until = :u, lease_what = :w',
    ExpressionAttributeValues: { ':h': { S: lease.holder }, ':u': { N: String(lease.until) }, ':w': { S: lease.what } },
  });
}

/** Empties the state table, as a table recreated from scratch would be: the next lease finds no record. */
async function emptyStateTable(w: World): Promise<void> {
  const out = (await w.dynamo.handle('Scan', { TableName: STATE_TABLE })) as { Items?: Array<{ pk: { S: string } }> };
  for (const item of out.Items ?? []) await w.dynamo.handle('DeleteItem', { TableName: STATE_TABLE, Key: { pk: item.pk } });
}

type StytchBody = Record<string, Record<string, unknown> | undefined>;

/**
 * A handler whose Stytch answers pass through `edit` on their way in: Stytch's behaviour the emulator does
 * not have (its docs leave it open), such as a rotate/start answered for a client it reports as public.
 */
function editingStytch(edit: (operation: string, body: StytchBody) => void): WorldOptions['createHandler'] {
  return (options = {}) =>
    createHandler({
      ...options,
      fetch: async (input, init) => {
        const response = await options.fetch!(input, init);
        if (!response.ok) return response;
        const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
        const path = new URL(url).pathname;
        const operation = path.endsWith('/rotate/start') ? 'rotate_start' : path.endsWith('/rotate/cancel') ? 'rotate_cancel' : path.endsWith('/rotate') ? 'rotate' : 'get';
        const body = (await response.json()) as StytchBody;
        edit(operation, body);
        return new Response(JSON.stringify(body), { status: response.status, headers: { 'content-type': 'application/json' } });
      },
    });
}

describe('The preamble: bad input refused before any Stytch call or table write, with the fix', () => {
  it('refuses a secret scheduled for deletion, naming how to restore it or stop its rotation', async () => {
    const w = await make();
    const token = await w.beginRotation();
    await w.sm.handle('DeleteSecret', { SecretId: w.secretArn, RecoveryWindowInDays: 7 });
    const callsFrom = w.externalCalls.length;

    const error = await failureOf(w.invoke('createSecret', token));

    expect(error?.name).toBe('InvalidInputError');
    expect(error?.message).toBe(
      'Secret demo/stytch-client is scheduled for deletion, so it cannot be rotated. Restore it with aws secretsmanager restore-secret --secret-id demo/stytch-client, or cancel its rotation with aws secretsmanager cancel-rotate-secret --secret-id demo/stytch-client.',
    );
    expect(w.externalCalls.slice(callsFrom).map((c) => c.operation)).toEqual(['DescribeSecret']);
  });

  it('names the labels of a token version that is not AWSPENDING, comma-separated', async () => {
    const w = await make();
    const first = await w.rotateAllSteps();
    await w.rotateAllSteps();
    // The first rotation's version is now AWSPREVIOUS; give it a label of the user's own too.
    await w.sm.handle('UpdateSecretVersionStage', { SecretId: w.secretArn, VersionStage: 'blue', MoveToVersionId: first });
    const stytchFrom = w.stytch.requests.length;

    const error = await failureOf(w.invoke('setSecret', first));

    expect(error?.message).toBe(
      `Version ${first} of secret demo/stytch-client is not labelled AWSPENDING (its labels: AWSPREVIOUS, blue), so no rotation is under way to it; start one with aws secretsmanager rotate-secret --secret-id demo/stytch-client.`,
    );
    expect(w.stytch.requests.length).toBe(stytchFrom);
  });

  it('refuses a secret that has no AWSCURRENT version yet, saying to put the current secret first', async () => {
    const w = await make();
    const { ARN } = (await w.sm.handle('CreateSecret', { Name: 'demo/empty', ClientRequestToken: randomUUID() })) as { ARN: string };
    // Rotation turned on for it (its configuration test fails: there is nothing to test yet).
    await w.sm.handle('RotateSecret', { SecretId: ARN, RotationLambdaARN: LAMBDA_ARN, RotationRules: { ScheduleExpression: 'rate(30 days)' }, RotateImmediately: false });
    const token = w.sm.beginRotation(ARN);
    const callsFrom = w.externalCalls.length;

    const error = await failureOf(w.invokeRaw({ Step: 'createSecret', SecretId: ARN, ClientRequestToken: token }));

    expect(error?.name).toBe('InvalidInputError');
    expect(error?.message).toBe("Secret demo/empty has no AWSCURRENT version; put the client's current secret into it first.");
    expect(w.externalCalls.slice(callsFrom).map((c) => c.operation)).toEqual(['DescribeSecret']);
  });

  it('refuses an AWSCURRENT value that is not JSON, saying what it must hold and how to fix it', async () => {
    const w = await make();
    await putCurrent(w, 'not json at all');
    const token = await w.beginRotation();
    const error = await failureOf(w.invoke('createSecret', token));
    expect(error?.name).toBe('InvalidInputError');
    expect(error?.message).toMatch(/^The AWSCURRENT value of secret demo\/stytch-client /);
    expect(error?.message).toContain('It must be JSON with client_id and client_secret; fix it with aws secretsmanager put-secret-value.');
    expect(w.stytch.requests).toEqual([]);
  });

  it('refuses an AWSCURRENT value that gives a key twice (it could not be copied exactly), naming the value and the fix', async () => {
    const w = await make();
    const { client_id, client_secret } = w.client;
    await putCurrent(w, `{"client_id":"${client_id}","client_secret":"${client_secret}","audience":"a","audience":"b"}`);
    const token = await w.beginRotation();
    const error = await failureOf(w.invoke('createSecret', token));
    expect(error?.message).toBe(
      'The AWSCURRENT value of secret demo/stytch-client gives the key "audience" twice, so its meaning depends on the reader; keep one. It must be JSON with client_id and client_secret; fix it with aws secretsmanager put-secret-value.',
    );
    expect(w.stytch.requests).toEqual([]);
  });
});

describe('A version already AWSCURRENT: nothing left to do before finishSecret', () => {
  it('setSecret on it succeeds as "already-current" without taking the lease or asking Stytch', async () => {
    const w = await make();
    const token = await w.rotateAllSteps();
    const from = w.output.length;
    const callsFrom = w.externalCalls.length;
    await w.invoke('setSecret', token);
    expect(outcomes(w, from)).toEqual(['already-current']);
    expect(w.externalCalls.slice(callsFrom).filter((c) => c.service !== 'secretsmanager')).toEqual([]);
  });

  it('a createSecret held up before its lease while the whole rotation finished does not start another one (IV)', async () => {
    const w = await make();
    const token = await w.beginRotation();
    await w.invoke('createSecret', token);
    // A duplicate createSecret reads the pending version, then is held before it takes the lease.
    const late = nextInvocation(w);
    const held = w.pause((c) => c.invocation === late && c.service === 'dynamodb');
    const duplicate = w.invokeRaw({ Step: 'createSecret', SecretId: w.secretArn, ClientRequestToken: token }, undefined, w.createContainer());
    await held.reached;
    for (const step of ['setSecret', 'testSecret', 'finishSecret'] as const) await w.invoke(step, token);
    const stytchFrom = w.stytch.requests.length;
    const from = w.output.length;

    held.release();
    await duplicate;

    // Under the lease it reads AWSCURRENT again: the version is current, so it stops there.
    expect(outcomes(w, from)).toEqual(['already-current']);
    expect(w.stytch.requests.slice(stytchFrom)).toEqual([]);
    expect(w.stytchCalls('rotate_start')).toHaveLength(1);
    expect(w.versionWith('AWSCURRENT')!.id).toBe(token);
  });

  it('a finishSecret that waited for the lease while its twin moved AWSCURRENT completes the rotation at Stytch the twin left half done (III)', async () => {
    const w = await make();
    const token = await w.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await w.invoke(step, token);
    const first = nextInvocation(w);
    // The first finishSecret moves the label, then Stytch's rotate keeps failing (transient).
    w.interceptor = (call) => (call.invocation === first && isStytch('.rotate')(call) ? { when: 'before', error: 503 } : undefined);
    const moving = w.pause((c) => c.invocation === first && c.operation === 'UpdateSecretVersionStage');
    const a = failureOf(w.invokeRaw({ Step: 'finishSecret', SecretId: w.secretArn, ClientRequestToken: token }, undefined, w.createContainer()));
    await moving.reached;
    const item = await w.stateItem();
    // The twin reads the version (still AWSPENDING only), finds the lease held, and waits; held at its second try.
    const second = nextInvocation(w);
    const retry = w.pause((c) => c.invocation === second && c.operation === 'UpdateItem' && callsOf(w, second, 'UpdateItem') === 2);
    const from = w.output.length;
    const b = w.invokeRaw({ Step: 'finishSecret', SecretId: w.secretArn, ClientRequestToken: token }, undefined, w.createContainer());
    await retry.reached;
    moving.release();
    expect((await a)?.message).toMatch(/rotate failed: 503/);
    expect(w.stytchState().nextClientSecretLast4).toBe(last4(w.currentSecret()));

    retry.release();
    await b;

    expect(outcomes(w, from)).toEqual(['completed-half-done']);
    expect(w.stytchState().nextClientSecretLast4).toBeNull();
    expect(w.stytchState().clientSecretLast4).toBe(last4(w.currentSecret()));
    // The wait was reported with what the holder was doing and until when.
    expect(records(w, 'Another invocation holds the lease on this client: waiting', from)).toEqual([
      expect.objectContaining({
        level: 'INFO',
        leaseHolderWork: `finishSecret of version ${token}`,
        leaseUntil: new Date(attr(item, 'lease_until') as number).toISOString(),
      }),
    ]);
  });
});

describe('The lease and the binding around every step (VI, VII)', () => {
  /** createSecret, held after it read AWSCURRENT and before it takes the lease. */
  async function heldBeforeLease(w: World) {
    const token = await w.beginRotation();
    const id = nextInvocation(w);
    const gate = w.pause((c) => c.invocation === id && c.service === 'dynamodb');
    const run = failureOf(w.invoke('createSecret', token));
    await gate.reached;
    return { token, gate, run };
  }

  const CHANGED =
    "AWSCURRENT of demo/stytch-client changed to another version while this step waited for its lease; Secrets Manager's reattempt starts from the new value.";

  it('does not act on a value that names another client by the time it holds the lease', async () => {
    const w = await make();
    const { token, gate, run } = await heldBeforeLease(w);
    const other = w.stytch.createConnectedApp(w.project.projectId);
    await putCurrent(w, JSON.stringify(other));
    w.sm.beginRotation(w.secretArn, token);
    gate.release();
    const error = await run;
    expect(error?.message).toBe(CHANGED);
    expect(error?.transient).toBe(true);
    expect(w.stytch.requests).toEqual([]);
  });

  it('does not act on a value that names other credentials (same project) by the time it holds the lease', async () => {
    const w = await make();
    await w.sm.handle('CreateSecret', {
      Name: 'stytch/other-credentials',
      ClientRequestToken: randomUUID(),
      SecretString: JSON.stringify({ project_id: w.project.projectId, secret: w.project.secret }),
    });
    const { token, gate, run } = await heldBeforeLease(w);
    await putCurrent(w, JSON.stringify({ ...w.client, stytch_credentials_secret_id: 'stytch/other-credentials' }));
    w.sm.beginRotation(w.secretArn, token);
    gate.release();
    expect((await run)?.message).toBe(CHANGED);
    expect(w.stytch.requests).toEqual([]);
  });

  it('does not act when the credentials now name another Stytch project by the time it holds the lease', async () => {
    const w = await make();
    const { gate, run } = await heldBeforeLease(w);
    const other = w.stytch.createProject();
    await w.sm.handle('PutSecretValue', {
      SecretId: CREDENTIALS_SECRET,
      ClientRequestToken: randomUUID(),
      SecretString: JSON.stringify({ project_id: other.projectId, secret: other.secret }),
    });
    // Past the credentials cache's lifetime (STYTCH_CREDENTIALS_TTL_SECONDS, 300 by default): read again under the lease.
    w.advance(301_000);
    gate.release();
    expect((await run)?.message).toBe(CHANGED);
    expect(w.stytch.requests).toEqual([]);
  });

  it('does not act on another secret of the same name (deleted and created again) by the time it holds the lease', async () => {
    const w = await make();
    const token = await w.beginRotation();
    const id = nextInvocation(w);
    const gate = w.pause((c) => c.invocation === id && c.service === 'dynamodb');
    // Invoked by name, as a direct invocation may be.
    const run = failureOf(w.invokeRaw({ Step: 'createSecret', SecretId: w.secretName, ClientRequestToken: token }));
    await gate.reached;
    // Meanwhile the secret is deleted for good and a new one of that name holds the same client, under a version id equal to the token.
    await w.sm.handle('DeleteSecret', { SecretId: w.secretArn, ForceDeleteWithoutRecovery: true });
    const { ARN } = (await w.sm.handle('CreateSecret', { Name: w.secretName, ClientRequestToken: token, SecretString: JSON.stringify(w.client) })) as { ARN: string };
    await w.sm.handle('RotateSecret', { SecretId: ARN, RotationLambdaARN: LAMBDA_ARN, RotationRules: { ScheduleExpression: 'rate(30 days)' }, RotateImmediately: false });
    expect(ARN).not.toBe(w.secretArn);
    const from = w.output.length;
    gate.release();

    const error = await run;

    expect(error?.message).toBe(CHANGED);
    expect(outcomes(w, from)).toEqual([]);
  });

  it('refuses a value naming a client other than the bound one, counting it and logging the error for the operator', async () => {
    const w = await make();
    const other = w.stytch.createConnectedApp(w.project.projectId);
    await putCurrent(w, JSON.stringify(other));
    const token = await w.beginRotation();
    const from = w.output.length;

    const error = await failureOf(w.invoke('createSecret', token));

    expect(error?.name).toBe('BindingError');
    expect(w.stytch.requests).toEqual([]);
    expect(w.metricCounts(w.output.slice(from))).toEqual({ BindingRefused: 1, StepFailed: 1 });
    expect(records(w, 'Refused: the value names a client other than the one this secret is bound to', from)).toEqual([
      expect.objectContaining({ level: 'ERROR', error: expect.objectContaining({ name: 'BindingError', message: error!.message }) }),
    ]);
  });

  it('waits for a lease another invocation holds, reporting whose work and until when, then fails as transient without a binding refusal', async () => {
    const w = await make();
    const until = w.clock.now() + 10 * 60_000;
    await foreignLease(w, { holder: 'other-invocation', until, what: 'setSecret of version 0000' });
    const token = await w.beginRotation();
    const from = w.output.length;

    const error = await failureOf(w.invoke('createSecret', token));

    expect(error?.name).toBe('LeaseBusyError');
    expect(error?.transient).toBe(true);
    expect(w.stytch.requests).toEqual([]);
    expect(w.metricCounts(w.output.slice(from))).toEqual({ LeaseContended: 1, StepFailed: 1 });
    expect(w.logRecords(w.output.slice(from)).filter((r) => r.level === 'ERROR').map((r) => r.message)).toEqual(['Step failed']);
    expect(records(w, 'Another invocation holds the lease on this client: waiting', from)).toEqual([
      expect.objectContaining({ level: 'INFO', leaseHolderWork: 'setSecret of version 0000', leaseUntil: new Date(until).toISOString() }),
    ]);
  });

  it('takes over an expired lease, naming the work its holder left unfinished', async () => {
    const w = await make();
    await foreignLease(w, { holder: 'dead-invocation', until: w.clock.now() - 1, what: 'testSecret of version 0000' });
    const token = await w.beginRotation();
    const from = w.output.length;
    await w.invoke('createSecret', token);
    expect(outcomes(w, from)).toEqual(['created']);
    expect(w.metricCounts(w.output.slice(from))).toEqual({ LeaseExpired: 1, RotationStarted: 1, StepSucceeded: 1 });
    expect(records(w, 'Took over an expired lease: its holder ended without giving it back', from)).toEqual([
      expect.objectContaining({ level: 'WARN', leaseHolderWork: 'testSecret of version 0000' }),
    ]);
  });

  it('reports a lease taken over while the step ran (LeaseLost), and the step still succeeds', async () => {
    const w = await make();
    const token = await w.beginRotation();
    const start = w.pause(isStytch('.rotate_start'));
    const from = w.output.length;
    const run = w.invoke('createSecret', token);
    await start.reached;
    await foreignLease(w, { holder: 'thief', until: w.clock.now() + 60_000, what: 'createSecret of version 0000' });
    start.release();
    await run;
    expect(outcomes(w, from)).toEqual(['created']);
    expect(w.metricCounts(w.output.slice(from))).toEqual({ RotationStarted: 1, LeaseLost: 1, StepSucceeded: 1 });
    expect(w.logLevels(w.output.slice(from)).ERROR).toBe(1);
    // The thief's lease is left alone.
    expect(attr(await w.stateItem(), 'lease_holder')).toBe('thief');
  });

  it('logs, and survives, a give-back that fails: the lease expires on its own', async () => {
    const w = await make();
    const token = await w.beginRotation();
    w.interceptor = (call) => (call.leaseRelease ? { when: 'before', error: 'InternalServiceError' } : undefined);
    const from = w.output.length;
    await w.invoke('createSecret', token);
    w.interceptor = undefined;
    expect(outcomes(w, from)).toEqual(['created']);
    expect(records(w, 'Could not give the lease back; it expires on its own', from)).toEqual([
      expect.objectContaining({ level: 'ERROR', error: expect.objectContaining({ message: 'Internal server error' }) }),
    ]);
    expect(w.metricCounts(w.output.slice(from))).toEqual({ RotationStarted: 1, StepSucceeded: 1 });
  });
});

describe('createSecret', () => {
  it('cancels an orphan and starts anew, logging Stytch\'s last fours before and after for the operator', async () => {
    const w = await make();
    const orphan = w.stytch.adminRotateStart(w.client.client_id);
    const token = await w.beginRotation();
    const from = w.output.length;
    await w.invoke('createSecret', token);
    const pending = w.versionWith('AWSPENDING')!.value!.client_secret as string;
    expect(outcomes(w, from)).toEqual(['created']);
    expect(records(w, 'Stytch holds a next secret that Secrets Manager does not: cancelling the orphan', from)).toEqual([
      expect.objectContaining({ level: 'WARN', stytchSecretLast4: last4(w.client.client_secret), stytchNextSecretLast4: last4(orphan) }),
    ]);
    expect(records(w, 'Started the Stytch rotation and stored the next secret as AWSPENDING', from)).toEqual([
      expect.objectContaining({
        level: 'INFO',
        stytchSecretLast4: last4(w.client.client_secret),
        stytchNextSecretLast4: last4(pending),
        pendingLast4: last4(pending),
      }),
    ]);
  });

  it('a retried createSecret resumes ("resumed") and asks Stytch for no second secret', async () => {
    const w = await make();
    const token = await w.beginRotation();
    await w.invoke('createSecret', token);
    const from = w.output.length;
    await w.invoke('createSecret', token);
    expect(outcomes(w, from)).toEqual(['resumed']);
    expect(w.stytchCalls('rotate_start')).toHaveLength(1);
  });

  it('hands a project API secret to its own steps (no client_id in it)', async () => {
    const w = await make({ kind: 'project_secret', env: { PREVIOUS_SECRET_GRACE_SECONDS: '3600' } });
    const token = await w.beginRotation();
    const from = w.output.length;
    await w.invoke('createSecret', token);
    expect(outcomes(w, from)).toEqual(['created']);
    expect(w.stytchCalls('secrets.create')).toHaveLength(1);
    expect(w.versionWith('AWSPENDING')!.value).toEqual(expect.objectContaining({ project_id: w.project.projectId, secret: expect.any(String) }));
  });

  /**
   * A createSecret whose lease expired while its put was in flight, and the invocation that took the lease
   * over: the second finds Stytch "already rotating", and the first's put lands before it looks again.
   */
  async function overtaken(w: World, meanwhile?: () => void) {
    const token = await w.beginRotation();
    const first = nextInvocation(w);
    const put = w.pause((c) => c.invocation === first && c.operation === 'PutSecretValue');
    const a = w.invokeRaw({ Step: 'createSecret', SecretId: w.secretArn, ClientRequestToken: token }, undefined, w.createContainer());
    await put.reached;
    // The first's Lambda is past its deadline and the margin: its lease has expired.
    w.advance(3 * 60_000);
    const second = nextInvocation(w);
    const read = w.pause((c) => c.invocation === second && c.operation === 'connected_app.get');
    const b = failureOf(w.invokeRaw({ Step: 'createSecret', SecretId: w.secretArn, ClientRequestToken: token }, undefined, w.createContainer()));
    await read.reached;
    put.release();
    await a;
    meanwhile?.();
    const from = w.output.length;
    read.release();
    return { token, error: await b, from };
  }

  it('resumes when a twin whose lease expired stored its secret under this token meanwhile: no cancel, no second secret (IV)', async () => {
    const w = await make();
    const { from, error } = await overtaken(w);
    expect(error).toBeUndefined();
    expect(outcomes(w, from)).toEqual(['resumed']);
    expect(w.metricCounts(w.output.slice(from))).toEqual({ LeaseExpired: 1, RotationResumed: 1, StepSucceeded: 1 });
    expect(w.stytchCalls('rotate_cancel')).toEqual([]);
    expect(w.stytchCalls('rotate_start').filter((r) => r.status === 200)).toHaveLength(1);
    expect(w.stytchState().nextClientSecretLast4).toBe(last4(w.versionWith('AWSPENDING')!.value!.client_secret as string));
  });

  it('does not resume a value stored under this token that is not Stytch\'s next secret (restarted by hand meanwhile)', async () => {
    const w = await make();
    const { token, from, error } = await overtaken(w, () => {
      w.stytch.adminRotateCancel(w.client.client_id);
      w.stytch.adminRotateStart(w.client.client_id);
    });
    // It cancels the secret started by hand as an orphan and starts its own, which cannot be stored under
    // a token that already has a value: it cancels that too and fails.
    expect(error?.name).toBe('ResourceExistsException');
    expect(outcomes(w, from)).toEqual([]);
    expect(w.metricCounts(w.output.slice(from))).toEqual({ LeaseExpired: 1, OrphanRepaired: 1, RotationCancelled: 1, StepFailed: 1 });
    // The stored value names a secret Stytch no longer holds: nothing Stytch holds is left unheld (II).
    const stored = w.snapshot().versions[token]!.secretString!;
    expect(w.stytch.isAccepted(w.client.client_id, JSON.parse(stored).client_secret)).toBe(false);
    expect(w.stytchState().nextClientSecretLast4).toBeNull();
  });

  it('cancels and refuses when Stytch starts a rotation for a client it reports as public, storing nothing', async () => {
    const w = await make({
      createHandler: editingStytch((operation, body) => {
        if (operation === 'rotate_start') body.connected_app!.client_type = 'third_party_public';
      }),
    });
    const token = await w.beginRotation();
    const from = w.output.length;

    const error = await failureOf(w.invoke('createSecret', token));

    expect(error?.name).toBe('InvalidInputError');
    expect(error?.message).toBe(
      `Connected App ${w.client.client_id} is a public client (third_party_public) and has no secret to rotate; rotate only confidential clients (first_party, third_party).`,
    );
    expect(w.stytchCalls('rotate_cancel')).toHaveLength(1);
    expect(w.stytchState().nextClientSecretLast4).toBeNull();
    expect(w.snapshot().versions[token]!.secretString).toBeUndefined();
    expect(w.metricCounts(w.output.slice(from))).toEqual({ StepFailed: 1 });
  });

  it('still refuses the public client when that cancel fails, saying why it tried (the next attempt repairs it)', async () => {
    const w = await make({
      createHandler: editingStytch((operation, body) => {
        if (operation === 'rotate_start') body.connected_app!.client_type = 'third_party_public';
      }),
    });
    w.stytch.addFault({ operation: 'connected_app.rotate_cancel', mode: 'before', status: 403 });
    const token = await w.beginRotation();
    const from = w.output.length;
    const error = await failureOf(w.invoke('createSecret', token));
    expect(error?.name).toBe('InvalidInputError');
    expect(error?.message).toMatch(/is a public client \(third_party_public\)/);
    expect(records(w, 'Could not cancel the Stytch rotation (public client); the next attempt repairs it', from)).toEqual([
      expect.objectContaining({ level: 'ERROR', error: expect.objectContaining({ statusCode: 403 }) }),
    ]);
  });
});

describe('createSecret: the size limit of the new version', () => {
  const LIMIT = 65_536;
  /** Room the check before rotate/start keeps for a new client_secret (rotation.ts: NEW_SECRET_ALLOWANCE_BYTES). */
  const ALLOWANCE = 512;

  /**
   * AWSCURRENT's other fields take exactly as much room as the check before rotate/start allows, and
   * Stytch's next secret comes out `length` characters long (its last four kept, so Stytch's state agrees).
   */
  async function sized(length: number) {
    const w = await make({
      createHandler: editingStytch((operation, body) => {
        if (operation !== 'rotate_start') return;
        const next = body.connected_app!.next_client_secret as string;
        body.connected_app!.next_client_secret = 'x'.repeat(length - next.length) + next;
      }),
    });
    const { client_id, client_secret } = w.client;
    const others = JSON.stringify({ client_id, client_secret, padding: '' }).length - JSON.stringify(client_secret).length;
    await putCurrent(w, JSON.stringify({ client_id, client_secret, padding: 'p'.repeat(LIMIT - ALLOWANCE - others) }));
    return w;
  }

  it('cancels at Stytch and refuses, with the size, when the new value would exceed the limit (II)', async () => {
    const w = await sized(600);
    const token = await w.beginRotation();
    const from = w.output.length;

    const error = await failureOf(w.invoke('createSecret', token));

    expect(error?.name).toBe('InvalidInputError');
    expect(error?.message).toBe(
      `The new version of demo/stytch-client would be about ${LIMIT - ALLOWANCE + 602} bytes (its other fields plus a new client_secret), over Secrets Manager's limit of ${LIMIT} bytes. ` +
        'Nothing was changed. Make the other fields smaller (aws secretsmanager put-secret-value), or keep them in another secret.',
    );
    expect(w.stytchCalls('rotate_cancel')).toHaveLength(1);
    expect(w.stytchState().nextClientSecretLast4).toBeNull();
    expect(w.snapshot().versions[token]!.secretString).toBeUndefined();
    expect(w.metricCounts(w.output.slice(from))).toEqual({ RotationCancelled: 1, StepFailed: 1 });
    expect(records(w, 'Cancelled the Stytch rotation: the new value would exceed the secret size limit', from)).toHaveLength(1);
  });

  it('stores a new value of exactly the limit', async () => {
    const w = await sized(ALLOWANCE - 2);
    const token = await w.beginRotation();
    const from = w.output.length;
    await w.invoke('createSecret', token);
    expect(outcomes(w, from)).toEqual(['created']);
    expect(Buffer.byteLength(w.snapshot().versions[token]!.secretString!)).toBe(LIMIT);
    expect(w.stytchCalls('rotate_cancel')).toEqual([]);
  });
});

describe('createSecret: a PutSecretValue that fails (II)', () => {
  it('keeps Stytch\'s next secret when the put failed and reading it back failed too, saying so with its last four', async () => {
    const w = await make();
    w.sm.addFault({ operation: 'PutSecretValue', mode: 'before', errorType: 'AccessDeniedException', times: 1 });
    let put = false;
    w.interceptor = (call) => {
      if (call.operation === 'PutSecretValue') put = true;
      else if (put && call.operation === 'GetSecretValue') return { when: 'before', error: 'InternalServiceError' };
      return undefined;
    };
    const token = await w.beginRotation();
    const from = w.output.length;

    const error = await failureOf(w.invoke('createSecret', token));
    w.interceptor = undefined;

    expect(error?.name).toBe('AccessDeniedException');
    expect(w.stytchCalls('rotate_cancel')).toEqual([]);
    const next = w.stytchState().nextClientSecretLast4;
    expect(next).not.toBeNull();
    expect(w.metricCounts(w.output.slice(from))).toEqual({ PutOutcomeUnknown: 1, StepFailed: 1 });
    expect(w.logRecords(w.output.slice(from)).filter((r) => r.level === 'ERROR' && r.message !== 'Step failed')).toEqual([
      expect.objectContaining({
        error: expect.objectContaining({ name: 'AccessDeniedException' }),
        readError: expect.objectContaining({ name: 'InternalServiceError' }),
        pendingLast4: next,
      }),
    ]);
    // The next attempt finds the orphan and repairs it.
    await w.invoke('createSecret', token);
    expect(w.stytchState().nextClientSecretLast4).toBe(last4(w.versionWith('AWSPENDING')!.value!.client_secret as string));
  });

  it('goes on ("created") when the put answered an error but the value landed, logging the error', async () => {
    const w = await make();
    w.sm.addFault({ operation: 'PutSecretValue', mode: 'after', errorType: 'AccessDeniedException', times: 1 });
    const token = await w.beginRotation();
    const from = w.output.length;
    await w.invoke('createSecret', token);
    expect(outcomes(w, from)).toEqual(['created']);
    expect(records(w, 'PutSecretValue failed but the value landed: going on', from)).toEqual([
      expect.objectContaining({ level: 'WARN', error: expect.objectContaining({ name: 'AccessDeniedException' }) }),
    ]);
  });
});

describe('createSecret: Stytch already rotating', () => {
  it('starts at once when the next secret Stytch reported was cancelled before it was read: nothing to cancel', async () => {
    const w = await make();
    w.stytch.adminRotateStart(w.client.client_id);
    const token = await w.beginRotation();
    const read = w.pause(isStytch('.get'));
    const from = w.output.length;
    const run = w.invoke('createSecret', token);
    await read.reached;
    w.stytch.adminRotateCancel(w.client.client_id);
    read.release();
    await run;
    expect(w.stytchCalls('rotate_cancel')).toEqual([]);
    expect(w.metricCounts(w.output.slice(from))).toEqual({ RotationStarted: 1, StepSucceeded: 1 });
    expect(w.stytchState().nextClientSecretLast4).toBe(last4(w.versionWith('AWSPENDING')!.value!.client_secret as string));
  });

  it('fails as transient when Stytch is rotating again right after the orphan was cancelled, keeping Stytch\'s answer in the log', async () => {
    const w = await make();
    w.stytch.adminRotateStart(w.client.client_id);
    const token = await w.beginRotation();
    const id = nextInvocation(w);
    const again = w.pause((c) => c.invocation === id && c.operation === 'connected_app.rotate_start' && callsOf(w, id, 'connected_app.rotate_start') === 2);
    const from = w.output.length;
    const run = failureOf(w.invoke('createSecret', token));
    await again.reached;
    w.stytch.adminRotateStart(w.client.client_id); // someone starts one by hand in between
    again.release();

    const error = await run;

    expect(error?.name).toBe('TransientError');
    expect(error?.message).toBe('Stytch reports a rotation already in progress right after this one cleared it; the reattempt repairs it.');
    expect(records(w, 'Step failed', from)).toEqual([
      expect.objectContaining({
        transient: true,
        error: expect.objectContaining({ name: 'TransientError', statusCode: 400, errorType: 'idp_client_already_rotating_secret' }),
      }),
    ]);
    expect(w.metricCounts(w.output.slice(from))).toEqual({ OrphanRepaired: 1, StepFailed: 1 });
  });

  it('passes on any other refusal of that second rotate/start as it is (definitive)', async () => {
    const w = await make();
    w.stytch.adminRotateStart(w.client.client_id);
    const token = await w.beginRotation();
    const id = nextInvocation(w);
    w.interceptor = (c) =>
      c.invocation === id && c.operation === 'connected_app.rotate_start' && callsOf(w, id, 'connected_app.rotate_start') === 2 ? { when: 'before', error: 403 } : undefined;
    const error = await failureOf(w.invoke('createSecret', token));
    expect(error?.message).toMatch(/^Stytch connected_app\.rotate_start failed: 403 unauthorized_action/);
    expect(records(w, 'Step failed')).toEqual([expect.objectContaining({ transient: false })]);
  });

  it('on a first rotation with no state record, completes a half-done rotation (Stytch\'s next is AWSCURRENT) before starting', async () => {
    const w = await make();
    const first = await w.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await w.invoke(step, first);
    w.stytch.addFault({ operation: 'connected_app.rotate', mode: 'before', status: 503, times: Infinity });
    await expect(w.invoke('finishSecret', first)).rejects.toThrow(/503/);
    w.stytch.clearFaults();
    const current = w.currentSecret();
    await emptyStateTable(w);
    const token = await w.beginRotation();
    const from = w.output.length;
    await w.invoke('createSecret', token);
    expect(w.metricCounts(w.output.slice(from))).toEqual({ BindingCreated: 1, HalfDoneCompleted: 1, RotationStarted: 1, StepSucceeded: 1 });
    expect(w.stytchState().clientSecretLast4).toBe(last4(current));
  });
});

describe('createSecret inside the previous rotation\'s overlap window (III)', () => {
  const HOUR_MS = 3_600_000;

  it('retires the previous secret early, saying until when it would have been accepted; a failed put then leaves no retirement owed', async () => {
    const w = await make({ env: { PREVIOUS_SECRET_GRACE_SECONDS: '3600' } });
    const old = w.client.client_secret;
    await w.rotateAllSteps();
    const current = w.currentSecret();
    const dueAt = attr(await w.stateItem(), 'retire_due') as number;
    expect(dueAt).toBeGreaterThan(w.clock.now());
    w.sm.addFault({ operation: 'PutSecretValue', mode: 'before', errorType: 'AccessDeniedException', times: 1 });
    const token = await w.beginRotation();
    const from = w.output.length;

    const error = await failureOf(w.invoke('createSecret', token));

    expect(error?.name).toBe('AccessDeniedException');
    expect(w.metricCounts(w.output.slice(from))).toEqual({ PreviousRetiredEarly: 1, RotationCancelled: 1, StepFailed: 1 });
    expect(records(w, "A new rotation starts inside the previous one's overlap window: retiring the previous secret early", from)).toEqual([
      expect.objectContaining({
        level: 'WARN',
        stytchSecretLast4: last4(old),
        stytchNextSecretLast4: last4(current),
        previousSecretAcceptedUntil: new Date(dueAt).toISOString(),
      }),
    ]);
    expect(records(w, 'Cancelled the Stytch rotation: the pending value could not be stored', from)).toHaveLength(1);
    // The previous secret is retired at Stytch: its record went with the lease, nothing is left for the sweep.
    expect(w.stytch.isAccepted(w.client.client_id, old)).toBe(false);
    expect(w.stytch.isAccepted(w.client.client_id, current)).toBe(true);
    expect(w.stytchState().nextClientSecretLast4).toBeNull();
    const item = await w.stateItem();
    expect(attr(item, 'retire_due')).toBeUndefined();
    expect(attr(item, 'retire_version')).toBeUndefined();
  });

  it('at the very end of the window, retires the previous secret as due, not early', async () => {
    // Real time stands still, so the handler's clock is exactly where the test puts it.
    vi.spyOn(Date, 'now').mockReturnValue(Date.now());
    const w = await make({ env: { PREVIOUS_SECRET_GRACE_SECONDS: '3600' } });
    const old = w.client.client_secret;
    await w.rotateAllSteps();
    const dueAt = attr(await w.stateItem(), 'retire_due') as number;
    expect(dueAt - w.clock.now()).toBe(HOUR_MS);
    w.advance(HOUR_MS);
    const token = await w.beginRotation();
    const from = w.output.length;
    await w.invoke('createSecret', token);
    expect(w.metricCounts(w.output.slice(from))).toEqual({ PreviousSecretRetired: 1, RotationStarted: 1, StepSucceeded: 1 });
    expect(w.logLevels(w.output.slice(from)).WARN).toBeUndefined();
    expect(w.stytch.isAccepted(w.client.client_id, old)).toBe(false);
  });
});

describe('What a failed step leaves in the state table (III)', () => {
  it('a finishSecret that cannot tell whether AWSCURRENT moved keeps its retirement intent recorded', async () => {
    const w = await make({ env: { PREVIOUS_SECRET_GRACE_SECONDS: '3600' } });
    const old = w.client.client_secret;
    const token = await w.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await w.invoke(step, token);
    const id = nextInvocation(w);
    let moved = false;
    w.interceptor = (call) => {
      if (call.invocation !== id) return undefined;
      if (call.operation === 'UpdateSecretVersionStage') {
        moved = true;
        return { when: 'after', error: 'InternalServiceError' }; // the label moved, the answer was lost
      }
      return moved && call.operation === 'DescribeSecret' ? { when: 'before', error: 'NetworkError' } : undefined;
    };
    const before = w.clock.now();

    const error = await failureOf(w.invoke('finishSecret', token));
    w.interceptor = undefined;

    expect(error?.message).toMatch(new RegExp(`^Moving AWSCURRENT to version ${token} may or may not have happened`));
    expect(error?.transient).toBe(true);
    expect(w.versionWith('AWSCURRENT')!.id).toBe(token);
    const item = await w.stateItem();
    expect(attr(item, 'retire_version')).toBe(token);
    expect(attr(item, 'retire_previous_last4')).toBe(last4(old));
    expect(attr(item, 'retire_due') as number).toBeGreaterThanOrEqual(before + 3_600_000);
  });

  it('a finishSecret refused definitively on a client with no state record yet fails with its own error, the lease given back', async () => {
    const w = await make();
    const token = await w.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await w.invoke(step, token);
    await emptyStateTable(w);
    const id = nextInvocation(w);
    w.interceptor = (call) => (call.invocation === id && isStytch('.get')(call) && callsOf(w, id, 'connected_app.get') === 1 ? { when: 'before', error: 403 } : undefined);

    const error = await failureOf(w.invoke('finishSecret', token));

    expect(error?.name).toBe('RotationError');
    expect(error?.message).toMatch(/^Stytch connected_app\.get failed: 403 .* The rotation was cancelled: Stytch discarded the pending secret and AWSPENDING was removed/);
    const item = await w.stateItem();
    expect(item?.lease_holder).toBeUndefined();
    expect(attr(item, 'retire_due')).toBeUndefined();
  });

  it('a finishSecret on a version moved to AWSCURRENT by hand records the retirement late, naming the AWSPREVIOUS version', async () => {
    const w = await make({ env: { PREVIOUS_SECRET_GRACE_SECONDS: '3600' } });
    const old = w.versionWith('AWSCURRENT')!.id;
    const token = await w.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await w.invoke(step, token);
    await w.sm.handle('UpdateSecretVersionStage', { SecretId: w.secretArn, VersionStage: 'AWSCURRENT', MoveToVersionId: token, RemoveFromVersionId: old });
    const from = w.output.length;
    await w.invoke('finishSecret', token);
    expect(w.metricCounts(w.output.slice(from))).toEqual({ RetirementRecordedLate: 1, StepSucceeded: 1 });
    const item = await w.stateItem();
    expect(attr(item, 'retire_version')).toBe(token);
    expect(attr(item, 'retire_previous_version')).toBe(old);
  });
});

describe('setSecret and testSecret', () => {
  it.each(['connected_app', 'm2m'] as const)('%s: setSecret and testSecret report "verified" (M2M: through the probe)', async (kind) => {
    const w = await make({ kind });
    const token = await w.beginRotation();
    await w.invoke('createSecret', token);
    const from = w.output.length;
    await w.invoke('setSecret', token);
    await w.invoke('testSecret', token);
    expect(outcomes(w, from)).toEqual(['verified', 'verified']);
    expect(w.stytchCalls('token')).toHaveLength(kind === 'm2m' ? 1 : 0);
  });

  it('testSecret cancels the rotation when Stytch now reports the client as public', async () => {
    let publicNow = false;
    const w = await make({
      createHandler: editingStytch((operation, body) => {
        if (publicNow && operation === 'get') body.connected_app!.client_type = 'first_party_public';
      }),
    });
    const token = await w.beginRotation();
    for (const step of ['createSecret', 'setSecret'] as const) await w.invoke(step, token);
    publicNow = true;
    const from = w.output.length;

    const error = await failureOf(w.invoke('testSecret', token));

    expect(error?.message).toBe(
      `Connected App ${w.client.client_id} is a public client (first_party_public) and has no secret to rotate; rotate only confidential clients (first_party, third_party). ` +
        `The rotation was cancelled: Stytch discarded the pending secret and AWSPENDING was removed from version ${token}; ` +
        'AWSCURRENT is unchanged and still works. Fix the cause, then run aws secretsmanager rotate-secret --secret-id demo/stytch-client.',
    );
    expect(w.stytchState().nextClientSecretLast4).toBeNull();
    expect(w.metricCounts(w.output.slice(from))).toEqual({ RotationCancelled: 1, StepFailed: 1 });
  });
});

describe('The configuration test (RotateImmediately=false): checks, changes nothing', () => {
  it.each(['connected_app', 'm2m'] as const)('%s: passes as "configuration-ok" (M2M: proving AWSCURRENT authenticates)', async (kind) => {
    const w = await make({ kind });
    const token = await w.beginRotation();
    const from = w.output.length;
    await w.invoke('testSecret', token);
    expect(outcomes(w, from)).toEqual(['configuration-ok']);
    expect(w.stytch.requests.map((r) => r.operation)).toEqual(kind === 'm2m' ? ['m2m.get', 'm2m.token'] : ['connected_app.get']);
  });

  it('fails for an M2M client whose AWSCURRENT does not authenticate', async () => {
    const w = await make({ kind: 'm2m' });
    const token = await w.beginRotation();
    w.stytch.addFault({ operation: 'm2m.token', mode: 'before', status: 401, errorType: 'invalid_client' });
    const error = await failureOf(w.invoke('testSecret', token));
    expect(error?.name).toBe('VerificationError');
    expect(error?.message).toMatch(
      /^The AWSCURRENT secret of M2M client \S+ does not authenticate at Stytch's token endpoint \(401 invalid_client[^)]*\)\. Consumers of this secret are failing: /,
    );
    expect(w.stytchCalls('rotate_start')).toEqual([]);
  });

  it("names the pending secret, not AWSCURRENT's, when the M2M probe refuses the rotation's new secret", async () => {
    const w = await make({ kind: 'm2m' });
    const token = await w.beginRotation();
    await w.invoke('createSecret', token);
    w.stytch.addFault({ operation: 'm2m.token', mode: 'before', status: 401, errorType: 'invalid_client' });
    const error = await failureOf(w.invoke('testSecret', token));
    expect(error?.message).toMatch(/^The pending secret of M2M client \S+ does not authenticate at Stytch's token endpoint \(401 invalid_client[^)]*\)\. The rotation was cancelled/);
    expect(error?.message).not.toContain('Consumers of this secret are failing');
  });

  const REST = 'Consumers of this secret are failing: put the client\'s current secret into it, or rotate it now to issue a new one.';

  it('names both of Stytch\'s last fours, "none" for no next secret, when Stytch accepts neither', async () => {
    const w = await make();
    const cur = w.client.client_secret;
    w.stytch.adminRotateStart(w.client.client_id);
    w.stytch.adminRotate(w.client.client_id);
    const s4 = w.stytchState().clientSecretLast4;
    const token = await w.beginRotation();
    const from = w.output.length;
    const error = await failureOf(w.invoke('testSecret', token));
    expect(error?.name).toBe('VerificationError');
    expect(error?.message).toBe(`Stytch does not accept the AWSCURRENT secret of demo/stytch-client (it ends ${last4(cur)}; Stytch's secrets end ${s4} and none). ${REST}`);
    expect(w.metricCounts(w.output.slice(from))).toEqual({ DriftDetected: 1, StepFailed: 1 });

    // And with a next secret that is not AWSCURRENT either.
    const next = w.stytch.adminRotateStart(w.client.client_id);
    const again = await failureOf(w.invoke('testSecret', token));
    expect(again?.message).toBe(`Stytch does not accept the AWSCURRENT secret of demo/stytch-client (it ends ${last4(cur)}; Stytch's secrets end ${s4} and ${last4(next)}). ${REST}`);
  });

  it('says "none" for a current secret Stytch does not report', async () => {
    const w = await make({
      createHandler: editingStytch((operation, body) => {
        if (operation === 'get') body.connected_app!.client_secret_last_four = null;
      }),
    });
    const token = await w.beginRotation();
    const error = await failureOf(w.invoke('testSecret', token));
    expect(error?.message).toBe(
      `Stytch does not accept the AWSCURRENT secret of demo/stytch-client (it ends ${last4(w.client.client_secret)}; Stytch's secrets end none and none). ${REST}`,
    );
  });
});
