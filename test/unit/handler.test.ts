import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Context } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { InvalidInputError } from '../../functions/lib/errors.js';
import { createHandler } from '../../functions/rotate-stytch-secret/handler.js';
import { type AwsCall, LocalStack } from '../../infra/local/stack.js';
import { CREDENTIALS_SECRET, fakeContext, LAMBDA_ARN, MANAGEMENT_SECRET, scheduledEvent, STATE_TABLE, World, type WorldOptions } from '../helpers/world.js';

/**
 * The Lambda entry (functions/rotate-stytch-secret/handler.ts), through the
 * handler built from source against the in-process emulators: which events it
 * accepts and how it refuses the others, what it logs and counts per
 * invocation, the time it gives Stytch (the Lambda's remaining time less the
 * reserve for Secrets Manager), the lease it takes, the sweep's budget, and
 * what it caches per container.
 *
 * Where time matters, Date is faked and stands still unless a test moves it,
 * so every deadline is computed to the millisecond.
 */

let world: World | undefined;

afterEach(() => {
  // V: nothing printed or thrown holds a secret.
  if (world) expect(world.leaks()).toEqual([]);
  world = undefined;
  vi.useRealTimers();
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

const make = async (options: WorldOptions = {}) => (world = await new World(options).init());

/** Date stands still at a fixed instant until a test moves it. */
const freezeDate = () => vi.useFakeTimers({ toFake: ['Date'], now: new Date('2026-03-01T00:00:00Z') });

const fail = (run: Promise<unknown>) => run.then(() => undefined, (e: unknown) => e as Error & { transient?: boolean });

/** The metrics each EMF line of `lines` carries, with its Step dimension. */
function emfRecords(lines: readonly string[]): Array<{ step: unknown; metrics: string[] }> {
  const records: Array<{ step: unknown; metrics: string[] }> = [];
  for (const line of lines) {
    if (!line.includes('"_aws"')) continue;
    const emf = JSON.parse(line) as Record<string, unknown> & { _aws: { CloudWatchMetrics: Array<{ Dimensions: string[][]; Metrics: Array<{ Name: string }> }> } };
    for (const def of emf._aws.CloudWatchMetrics) {
      expect(def.Dimensions.flat()).toContain('Step');
      records.push({ step: emf.Step, metrics: def.Metrics.map((m) => m.Name) });
    }
  }
  return records;
}

/** The state table's item for the world's client, as plain values. */
async function stateItem(w: World): Promise<Record<string, string>> {
  const item = (await w.stateItem()) ?? {};
  return Object.fromEntries(Object.entries(item).map(([k, v]) => [k, String((v as { S?: string; N?: string }).S ?? (v as { N?: string }).N)]));
}

/** Reads of the credentials secret made so far. */
const credentialReads = (w: World) => w.sm.calls.filter((c) => c.operation === 'GetSecretValue' && c.secretId === CREDENTIALS_SECRET).length;

describe('Events: a rotation step', () => {
  it('runs the step, counts it once, and tags every log record and metric with the step, the secret and the token', async () => {
    const w = await make();
    const token = await w.beginRotation();
    const from = w.output.length;

    await w.invoke('createSecret', token);

    const lines = w.output.slice(from);
    expect(w.metricCounts(lines)).toMatchObject({ StepSucceeded: 1, RotationStarted: 1 });
    expect(w.metricCounts(lines).StepFailed).toBeUndefined();
    expect(w.metricCounts(lines).SweepSucceeded).toBeUndefined();
    const records = w.logRecords(lines);
    expect(records.length).toBeGreaterThan(1);
    for (const r of records) expect(r).toMatchObject({ step: 'createSecret', secretId: w.secretArn, clientRequestToken: token });
    expect(records.at(-1)).toMatchObject({ level: 'INFO', outcome: 'created' });
    expect(emfRecords(lines).map((r) => r.step)).toEqual(['createSecret']);
  });

  it('refuses an event that is not a rotation step with what is wrong and how to start a rotation, counting a failed step and changing nothing', async () => {
    const w = await make();
    const before = w.snapshot();
    const from = w.output.length;
    const calls = w.externalCalls.length;

    const error = await fail(w.invokeRaw({ Step: 'createSecret', SecretId: w.secretArn }));

    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error?.message).toBe(
      'The rotation event is invalid: ClientRequestToken must be the version id of the pending secret version. ' +
        'Secrets Manager sends {"Step", "SecretId", "ClientRequestToken"}; start rotations with aws secretsmanager rotate-secret rather than invoking this function directly.',
    );
    const lines = w.output.slice(from);
    expect(w.metricCounts(lines)).toEqual({ StepFailed: 1 });
    expect(w.logRecords(lines)).toEqual([
      expect.objectContaining({ level: 'ERROR', error: { name: 'InvalidInputError', message: error!.message }, transient: false }),
    ]);
    expect(w.externalCalls.slice(calls)).toEqual([]);
    expect(w.snapshot()).toEqual(before);
  });

  it('never logs the event (it may carry a RotationToken), and starts each invocation without the previous one\'s keys', async () => {
    const w = await make({ rotationTokens: true });
    const token = await w.beginRotation();
    const rotationToken = `rotation-token-${randomUUID()}`;
    await w.invoke('createSecret', token, { RotationToken: rotationToken });
    const from = w.output.length;

    await w.sweep();

    expect(w.output.join('\n')).not.toContain(rotationToken);
    const sweepRecords = w.logRecords(w.output.slice(from));
    expect(sweepRecords.length).toBeGreaterThan(0);
    for (const r of sweepRecords) {
      expect(r.step).toBe('retirementSweep');
      expect(r).not.toHaveProperty('secretId');
      expect(r).not.toHaveProperty('clientRequestToken');
    }
  });

  it('fails a step as transient when another invocation holds the client\'s lease, logging it as transient', async () => {
    freezeDate();
    vi.spyOn(Math, 'random').mockReturnValue(1);
    const w = await make();
    const token = await w.beginRotation();
    await w.invoke('createSecret', token);
    await holdLease(w, 'other-invocation/1');
    const from = w.output.length;

    const error = await fail(w.invokeRaw({ Step: 'setSecret', SecretId: w.secretArn, ClientRequestToken: token }, fakeContext(60_000)));

    expect(error?.name).toBe('LeaseBusyError');
    expect(error?.transient).toBe(true);
    const lines = w.output.slice(from);
    expect(w.metricCounts(lines)).toMatchObject({ StepFailed: 1, LeaseContended: 1 });
    expect(w.metricCounts(lines).StepSucceeded).toBeUndefined();
    expect(w.logRecords(lines).at(-1)).toMatchObject({ level: 'ERROR', error: { name: 'LeaseBusyError' }, transient: true, step: 'setSecret' });
  });
});

describe('Events: the EventBridge schedule', () => {
  it('runs the retirement sweep, counts it, and tags its records and metrics as the sweep', async () => {
    const w = await make();
    const from = w.output.length;

    await w.sweep();

    const lines = w.output.slice(from);
    expect(w.metricCounts(lines)).toEqual({ SweepSucceeded: 1 });
    const records = w.logRecords(lines);
    for (const r of records) expect(r.step).toBe('retirementSweep');
    expect(records.at(-1)).toMatchObject({ level: 'INFO', result: { due: 0, retired: 0, cleared: 0, deferred: 0, failed: 0, leftForNextSweep: 0 } });
    expect(emfRecords(lines).map((r) => r.step)).toEqual(['retirementSweep']);
    expect(w.stytch.requests).toEqual([]);
  });

  it('refuses an aws.events event that is not the schedule, saying where the sweep comes from, counting nothing and calling nothing', async () => {
    const w = await make();
    const from = w.output.length;
    const calls = w.externalCalls.length;

    const error = await fail(w.invokeRaw({ ...scheduledEvent(), 'detail-type': 'Object Created' }));

    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error?.message).toBe(
      'The scheduled event is invalid: detail-type must be "Scheduled Event": the function runs its retirement sweep only for an EventBridge schedule. ' +
        'The retirement sweep is started by the EventBridge schedule the deployment creates.',
    );
    const lines = w.output.slice(from);
    expect(w.metricCounts(lines)).toEqual({});
    expect(w.logRecords(lines)).toEqual([
      expect.objectContaining({ level: 'ERROR', error: { name: 'InvalidInputError', message: error!.message }, transient: false }),
    ]);
    expect(w.externalCalls.slice(calls)).toEqual([]);
  });

  it('counts a failed sweep as SweepFailed, never as a failed step, and rethrows', async () => {
    const w = await make({ env: { PREVIOUS_SECRET_GRACE_SECONDS: '3600' } });
    await w.sm.handle('RotateSecret', { SecretId: w.secretArn });
    w.advance(2 * 3_600_000);
    w.interceptor = (call) => (call.service === 'stytch' ? { when: 'before', error: 400 } : undefined);
    const from = w.output.length;

    const error = await fail(w.sweep());

    expect(error?.message).toMatch(/^The retirement sweep could not retire 1 of 1 due previous secret/);
    const lines = w.output.slice(from);
    expect(w.metricCounts(lines)).toEqual({ RetirementFailed: 1, SweepFailed: 1 });
    expect(w.logRecords(lines).find((r) => r.message === 'Could not retire the previous secret; the next sweep tries again')).toMatchObject({
      level: 'ERROR',
      secretArn: w.secretArn,
      clientId: w.client.client_id,
      error: { name: 'StytchApiError', statusCode: 400 },
    });
    expect(w.logRecords(lines).at(-1)).toMatchObject({ level: 'ERROR', step: 'retirementSweep', error: { name: 'RotationError' }, transient: false });
  });
});

/** Writes a lease on the world's client held by someone else, until far in the future. */
async function holdLease(w: World, holder: string): Promise<void> {
  await w.dynamo.handle('UpdateItem', {
    TableName: STATE_TABLE,
    Key: { pk: { S: `client#${w.project.projectId}#${w.client.client_id}` } },
    UpdateExpression: 'SET lease_holder = :h, lease_until = :u, lease_what = :w',
    ExpressionAttributeValues: { ':h': { S: holder }, ':u': { N: String(w.clock.now() + 3_600_000) }, ':w': { S: 'setSecret of version x' } },
  });
}

describe('The budget: Stytch calls end min(3 s, a fifth of the remaining time) before the Lambda does', () => {
  // setSecret reads the client from Stytch once; the first read answers 503 and moves Date to `at` (ms after the
  // invocation started). With no jitter the retry waits 0 ms, and is made only if it would start at least 250 ms
  // before the deadline: at deadline - 250 it is, at deadline - 249 it is not.
  it.each([
    { budget: 20_000, deadline: 17_000 },
    { budget: 10_000, deadline: 8_000 },
  ])('with $budget ms left the deadline is $deadline ms in: a retry at 250 ms before it is made, at 249 ms it is not', async ({ budget, deadline }) => {
    freezeDate();
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const w = await make();
    const token = await w.beginRotation();
    await w.invoke('createSecret', token);

    const attempt = async (at: number) => {
      const started = Date.now();
      let first = true;
      w.interceptor = (call) => {
        if (call.service !== 'stytch' || !first) return undefined;
        first = false;
        vi.setSystemTime(started + at);
        return { when: 'before', error: 503 };
      };
      const gets = w.stytchCalls('.get').length;
      const error = await fail(w.invokeRaw({ Step: 'setSecret', SecretId: w.secretArn, ClientRequestToken: token }, fakeContext(budget)));
      w.interceptor = undefined;
      return { error, gets: w.stytchCalls('.get').length - gets };
    };

    const inTime = await attempt(deadline - 250);
    expect(inTime.error).toBeUndefined();
    expect(inTime.gets).toBe(1);

    const late = await attempt(deadline - 249);
    expect(late.error?.message).toMatch(/^Stytch connected_app\.get failed: 503 service_unavailable/);
    expect(late.error?.transient).toBe(true);
    expect(late.gets).toBe(0);
    expect(w.metricCounts().StytchRetry).toBe(1);
  });

  it('with less than 250 ms before the deadline, no request is sent at all', async () => {
    freezeDate();
    const w = await make();
    const token = await w.beginRotation();
    await w.invoke('createSecret', token);
    const before = w.stytch.requests.length;
    // 312 ms left: the reserve is a fifth (62.4 ms), so 249.6 ms remain, floored to 249.
    const error = await fail(w.invokeRaw({ Step: 'setSecret', SecretId: w.secretArn, ClientRequestToken: token }, fakeContext(312)));
    expect(error?.message).toMatch(/deadline_exceeded/);
    expect(error?.transient).toBe(true);
    expect(w.stytch.requests.length).toBe(before);
    // 313 ms left: 250.4 ms remain, floored to 250: the request is sent.
    await w.invokeRaw({ Step: 'setSecret', SecretId: w.secretArn, ClientRequestToken: token }, fakeContext(313));
    expect(w.stytch.requests.slice(before).map((r) => r.operation)).toEqual(['connected_app.get']);
  });
});

describe('The lease a step takes (VI)', () => {
  /** Runs setSecret with `context`, holding its Stytch read until the state table's item has been read. */
  async function leaseDuringStep(context: Context | undefined): Promise<Record<string, string>> {
    const w = world!;
    const token = w.versionWith('AWSPENDING')!.id;
    const gate = w.pause((call) => call.service === 'stytch');
    const event = { Step: 'setSecret', SecretId: w.secretArn, ClientRequestToken: token };
    // Called directly: the World's invoke would supply a context where there is none.
    const step = w.capturing(() => w.handler(event as never, context as Context));
    await gate.reached;
    const item = await stateItem(w);
    gate.release();
    await step;
    return item;
  }

  it('lasts the Lambda\'s remaining time plus a 30 s margin, and is held by this request', async () => {
    freezeDate();
    const w = await make();
    await w.invoke('createSecret', await w.beginRotation());
    const context = fakeContext(45_000);

    const item = await leaseDuringStep(context);

    expect(Number(item.lease_until)).toBe(w.clock.now() + 45_000 + 30_000);
    expect(item.lease_holder).toMatch(new RegExp(`^${context.awsRequestId}/[0-9a-f-]{36}$`));
    expect(item.lease_what).toMatch(/^setSecret of version /);
  });

  it.each([
    ['no context at all', undefined],
    ['a context without getRemainingTimeInMillis or awsRequestId', {} as Context],
  ])('with %s (a local invocation), counts on 60 s and names the holder local', async (_name, context) => {
    freezeDate();
    const w = await make();
    await w.invoke('createSecret', await w.beginRotation());

    const item = await leaseDuringStep(context);

    expect(Number(item.lease_until)).toBe(w.clock.now() + 60_000 + 30_000);
    expect(item.lease_holder).toMatch(/^local\/[0-9a-f-]{36}$/);
  });

  // Polls of a held lease wait 100, 200, 400, 800 ms, then 1 s each (no jitter): the step gives up at the poll
  // that would end past min(10 s, a quarter of the remaining time).
  it.each([
    { budget: 20_000, waited: 4_500 },
    { budget: 60_000, waited: 9_500 },
    { budget: 200_000, waited: 9_500 },
  ])('held by another invocation, it waits $waited ms of $budget ms, then fails as transient without calling Stytch', async ({ budget, waited }) => {
    freezeDate();
    vi.spyOn(Math, 'random').mockReturnValue(1);
    const w = await make();
    const token = await w.beginRotation();
    await w.invoke('createSecret', token);
    await holdLease(w, 'other-invocation/1');
    const before = w.clock.now();
    const stytchBefore = w.stytch.requests.length;

    const error = await fail(w.invokeRaw({ Step: 'setSecret', SecretId: w.secretArn, ClientRequestToken: token }, fakeContext(budget)));

    expect(error?.name).toBe('LeaseBusyError');
    expect(error?.message).toMatch(/^Another invocation holds the lease on Stytch client /);
    expect(w.clock.now() - before).toBe(waited);
    expect(w.stytch.requests.length).toBe(stytchBefore);
    expect(w.versionWith('AWSPENDING')?.id).toBe(token);
  });
});

describe('The lease wait, on the function\'s own timer', () => {
  it('sleeps between polls of a held lease rather than polling in a busy loop, then fails as transient', async () => {
    // The function's own sleep (setTimeout) and jitter (Math.random, none): only the clock's reading is the World's.
    vi.spyOn(Math, 'random').mockReturnValue(1);
    const w = await make({ createHandler: (options = {}) => createHandler({ ...options, clock: { now: options.clock!.now! } }) });
    const token = await w.beginRotation();
    await w.invoke('createSecret', token);
    await holdLease(w, 'other-invocation/1');
    vi.useFakeTimers({ toFake: ['Date', 'setTimeout', 'clearTimeout'], now: new Date('2026-03-01T00:00:00Z') });
    // When each try to take the lease was made, on the (frozen unless advanced) Date.
    const tries: number[] = [];
    w.interceptor = (call) => {
      if (call.operation === 'UpdateItem' && !call.leaseRelease) tries.push(Date.now());
      return undefined;
    };
    const turns = async (n: number) => {
      for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
    };

    // 4 s left: a quarter of it (1 s) may go to waiting.
    let settled = false;
    const step = fail(w.invokeRaw({ Step: 'setSecret', SecretId: w.secretArn, ClientRequestToken: token }, fakeContext(4_000))).finally(() => (settled = true));
    while (tries.length === 0) await turns(1);
    await turns(50);
    // Refused once, it waits for its timer: no other try until time moves on.
    expect(tries).toHaveLength(1);
    while (!settled) {
      if (vi.getTimerCount() > 0) vi.advanceTimersToNextTimer();
      await turns(1);
    }

    const error = await step;
    expect(error?.name).toBe('LeaseBusyError');
    // Polls of 100, 200 and 400 ms; the next (800 ms) would end past the second the wait may take.
    expect(tries.map((t) => t - tries[0]!)).toEqual([0, 100, 300, 700]);
  });
});

describe('The sweep\'s budget: no retirement starts in the last min(10 s, a quarter of the remaining time) before the deadline', () => {
  const summaries = (w: World) =>
    w
      .logRecords()
      .filter((r) => r.message === 'Retirement sweep done')
      .map(({ retired, leftForNextSweep }) => ({ retired, leftForNextSweep }));

  // stopBy, after the sweep starts: the deadline (budget less its reserve) less the tail.
  it.each([
    { budget: 20_000, stopBy: 17_000 - 5_000 },
    { budget: 10_000, stopBy: 8_000 - 2_500 },
    { budget: 60_000, stopBy: 57_000 - 10_000 },
  ])('with $budget ms, a retirement is started $stopBy ms in less 1 ms, and not at $stopBy ms', async ({ budget, stopBy }) => {
    freezeDate();
    const w = await make({ env: { PREVIOUS_SECRET_GRACE_SECONDS: '3600' } });
    await w.sm.handle('RotateSecret', { SecretId: w.secretArn });
    w.advance(2 * 3_600_000);

    const sweepAfter = async (ms: number) => {
      // The scan is held while the clock moves on by `ms`.
      const scan = w.pause((c) => c.operation === 'Scan', 'after');
      const run = w.invokeRaw(scheduledEvent(), fakeContext(budget));
      await scan.reached;
      w.advance(ms);
      scan.release();
      await run;
      return summaries(w).at(-1);
    };

    expect(await sweepAfter(stopBy)).toEqual({ retired: 0, leftForNextSweep: 1 });
    expect(await sweepAfter(stopBy - 1)).toEqual({ retired: 1, leftForNextSweep: 0 });
    expect(w.metricCounts()).toMatchObject({ SweepSucceeded: 2, PreviousSecretRetired: 1 });
  });
});

describe('Caches per container', () => {
  /** setSecret again (it changes nothing), after the clock moved on by `ms`. */
  const setSecretAfter = async (w: World, token: string, ms: number) => {
    w.advance(ms);
    await w.invoke('setSecret', token);
  };

  it.each([
    // No window: the credentials' own time to live (300 s).
    { grace: '0', ttl: 300_000 },
    // A window shorter than that: the cached project secret never outlives it (it may be deleted when it ends).
    { grace: '60', ttl: 60_000 },
    // A longer window: the time to live.
    { grace: '600', ttl: 300_000 },
  ])('with PREVIOUS_SECRET_GRACE_SECONDS=$grace, re-reads the credentials secret after $ttl ms and not before', async ({ grace, ttl }) => {
    freezeDate();
    const w = await make({ env: { PREVIOUS_SECRET_GRACE_SECONDS: grace } });
    const token = await w.beginRotation();
    await w.invoke('createSecret', token);
    const reads = credentialReads(w);

    await setSecretAfter(w, token, 0);
    await setSecretAfter(w, token, ttl - 1);
    expect(credentialReads(w)).toBe(reads);
    await setSecretAfter(w, token, 1);
    expect(credentialReads(w)).toBe(reads + 1);
  });
});

describe('Log records', () => {
  it('pass the structured fields of every level through, debug included when POWERTOOLS_LOG_LEVEL asks for it', async () => {
    vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'DEBUG');
    const w = await make();
    const token = await w.beginRotation();
    // A 503 first: a WARN record with the retry's fields.
    let n = 0;
    w.interceptor = (call) => (call.service === 'stytch' && n++ === 0 ? { when: 'before', error: 503 } : undefined);
    const from = w.output.length;

    await w.invoke('createSecret', token);

    const records = w.logRecords(w.output.slice(from));
    expect(records.filter((r) => r.level === 'DEBUG' && r.message === 'Stytch answered').map(({ operation, statusCode }) => ({ operation, statusCode }))).toEqual([
      { operation: 'connected_app.rotate_start', statusCode: 503 },
      { operation: 'connected_app.rotate_start', statusCode: 200 },
    ]);
    expect(records.find((r) => r.level === 'WARN')).toMatchObject({ operation: 'connected_app.rotate_start', attempt: 1, statusCode: 503, errorType: 'service_unavailable' });
    const pending = w.versionWith('AWSPENDING')!.value!.client_secret as string;
    expect(records.find((r) => r.level === 'INFO' && r.message === 'Started the Stytch rotation and stored the next secret as AWSPENDING')).toMatchObject({
      stytchSecretLast4: w.client.client_secret.slice(-4),
      pendingLast4: pending.slice(-4),
    });
  });
});

describe('Project secrets: the management API, the probe and the credentials this container caches (DESIGN.md §4b)', () => {
  /** The URLs the handler fetched, each with the project id and secret its Basic auth carries (compared here, never printed). */
  const recordingWorld = async (options: WorldOptions) => {
    const urls: Array<{ url: string; projectId: string | undefined; secret: string | undefined }> = [];
    const w = await make({
      ...options,
      createHandler: (handlerOptions = {}) =>
        createHandler({
          ...handlerOptions,
          fetch: (input, init) => {
            const auth = new Headers(init?.headers).get('authorization');
            const [projectId, secret] = auth?.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString().split(':') : [];
            urls.push({ url: String(input), projectId, secret });
            return handlerOptions.fetch!(input, init);
          },
        }),
    });
    return { w, urls };
  };

  it('rotates a project secret: creates it with the management key read once, proves it at the project API, and the sweep deletes the old one', async () => {
    const { w, urls } = await recordingWorld({
      kind: 'project_secret',
      env: { PREVIOUS_SECRET_GRACE_SECONDS: '3600', STYTCH_MANAGEMENT_API_BASE_URL: 'http://127.0.0.2:9', STYTCH_API_BASE_URL: 'http://127.0.0.3:9' },
    });
    const old = { ...w.projectSecret! };
    w.sm.resetCalls();
    const token = await w.beginRotation();
    const from = urls.length;

    for (const step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const) await w.invoke(step, token);
    w.advance(3_600_000 + 1000);
    await w.sweep();

    const pending = w.versionWith('AWSCURRENT')!.value as { secret: string; secret_id: string };
    expect(pending.secret_id).not.toBe(old.secret_id);
    expect(w.stytch.isProjectSecretAccepted(w.project.projectId, pending.secret)).toBe(true);
    expect(w.stytch.isProjectSecretAccepted(w.project.projectId, old.secret)).toBe(false);
    const calls = urls.slice(from).map(({ url, projectId, secret }) => ({
      origin: new URL(url).origin,
      project: projectId === w.project.projectId,
      secret: secret === pending.secret ? 'new' : secret === old.secret ? 'old' : undefined,
    }));
    // The management API at its base URL, with the workspace key; probes at the project API: AWSCURRENT's secret
    // before anything is created, then the new one.
    expect(calls.filter((c) => c.origin === 'http://127.0.0.2:9').length).toBeGreaterThan(1);
    expect(calls.filter((c) => c.origin === 'http://127.0.0.2:9').every((c) => !c.project)).toBe(true);
    expect(calls.filter((c) => c.origin === 'http://127.0.0.3:9')).toEqual([
      { origin: 'http://127.0.0.3:9', project: true, secret: 'old' },
      { origin: 'http://127.0.0.3:9', project: true, secret: 'new' },
    ]);
    expect(calls.every((c) => c.origin === 'http://127.0.0.2:9' || c.origin === 'http://127.0.0.3:9')).toBe(true);
    expect(w.stytch.requests.filter((r) => r.operation === 'secrets.create' || r.operation === 'secrets.delete').map((r) => r.operation)).toEqual([
      'secrets.create',
      'secrets.delete',
    ]);
    // One container: the management key is read once for all five invocations.
    expect(w.sm.calls.filter((c) => c.operation === 'GetSecretValue' && c.secretId === MANAGEMENT_SECRET)).toHaveLength(1);
  });

  it('after rotating its own credentials secret, the container uses the new project secret at once: no 401 once the old one is deleted', async () => {
    const { w, urls } = await recordingWorld({ env: { PREVIOUS_SECRET_GRACE_SECONDS: '0' } });
    const key = w.stytch.createWorkspaceKey();
    await w.sm.handle('CreateSecret', {
      Name: MANAGEMENT_SECRET,
      ClientRequestToken: randomUUID(),
      SecretString: JSON.stringify({ workspace_key_id: key.workspaceKeyId, workspace_key_secret: key.workspaceKeySecret }),
    });
    await w.sm.handle('PutSecretValue', {
      SecretId: CREDENTIALS_SECRET,
      ClientRequestToken: randomUUID(),
      SecretString: JSON.stringify({
        project_id: w.project.projectId,
        secret: w.project.secret,
        secret_id: w.project.secretId,
        project_slug: w.project.projectSlug,
        environment_slug: w.project.environmentSlug,
      }),
    });
    // This container has read (and cached) the credentials: a client rotation.
    await w.rotateAllSteps();
    await w.sm.handle('RotateSecret', { SecretId: CREDENTIALS_SECRET, RotationLambdaARN: LAMBDA_ARN, RotationRules: { ScheduleExpression: 'rate(30 days)' } });
    expect(w.sm.rotationHistory(CREDENTIALS_SECRET).at(-1)?.outcome).toBe('succeeded');
    await w.sweep();
    expect(w.stytch.isProjectSecretAccepted(w.project.projectId, w.project.secret)).toBe(false);
    const current = Object.values(w.sm.inspect(CREDENTIALS_SECRET).versions).find((v) => v.stages.includes('AWSCURRENT'))!;
    const newSecret = (JSON.parse(current.secretString!) as { secret: string }).secret;
    expect(newSecret).not.toBe(w.project.secret);
    const before = w.stytch.requests.length;
    const from = urls.length;

    await w.rotateAllSteps();

    expect(w.stytch.requests.slice(before).filter((r) => r.status === 401)).toEqual([]);
    expect(urls.slice(from).every((u) => u.secret === newSecret)).toBe(true);
  });
});

describe('The AWS clients a deployed function builds itself (the real SDK over HTTP, to the local stack)', () => {
  let stack: LocalStack | undefined;
  const savedEnv = { ...process.env };
  beforeAll(async () => {
    // AWS_MAX_ATTEMPTS would raise the SDK's attempts: the function keeps its own 3, whatever the environment says.
    stack = await LocalStack.start({ bundlePath: fileURLToPath(new URL('../../functions/rotate-stytch-secret/index.ts', import.meta.url)), env: { AWS_MAX_ATTEMPTS: '5' } });
  });
  afterAll(async () => {
    await stack?.close();
    // The stack configured the function through the process's environment: put it back as it was.
    for (const name of Object.keys(process.env)) if (!(name in savedEnv)) delete process.env[name];
    Object.assign(process.env, savedEnv);
  });

  /** The handler as the stack invokes one (with a Lambda context of its own). */
  const asStackHandler = (handler: ReturnType<typeof createHandler>) => (event: unknown, context: unknown) => handler(event, context as Context);

  /** Fails every request `match` selects (HTTP 500, which the SDK retries), counting them. */
  const failing = (match: (call: AwsCall) => boolean) => {
    const seen = { count: 0 };
    stack!.interceptor = (call) => {
      if (call.phase !== 'before' || !match(call)) return undefined;
      seen.count++;
      return 'fail';
    };
    return seen;
  };

  it('tries a failing Secrets Manager request 3 times, then fails the step', async () => {
    const seeded = await stack!.seedSecret({ name: `handler/${randomUUID()}` });
    const failed = failing((c) => c.service === 'secretsmanager' && c.operation === 'DescribeSecret' && c.target === seeded.arn);
    const handler = createHandler();

    const error = await fail(stack!.invoke({ Step: 'createSecret', SecretId: seeded.arn, ClientRequestToken: randomUUID() }, asStackHandler(handler)));

    stack!.interceptor = undefined;
    expect(error?.name).toBe('InternalServiceError');
    expect(failed.count).toBe(3);
  });

  it('tries a failing state-table write 3 times, then fails the step without calling Stytch', async () => {
    const seeded = await stack!.seedSecret({ name: `handler/${randomUUID()}` });
    await stack!.rotate(seeded.arn, { rotateImmediately: false });
    const token = randomUUID();
    stack!.sm.beginRotation(seeded.arn, token);
    const failed = failing((c) => c.service === 'dynamodb' && /lease_until = :until/.test(c.expression ?? ''));
    const stytchBefore = stack!.stytch.requests.length;
    const handler = createHandler();

    const error = await fail(stack!.invoke({ Step: 'createSecret', SecretId: seeded.arn, ClientRequestToken: token }, asStackHandler(handler)));

    stack!.interceptor = undefined;
    expect(error?.name).toBe('InternalServerError');
    expect(failed.count).toBe(3);
    expect(stack!.stytch.requests.slice(stytchBefore).filter((r) => r.clientId === seeded.clientId)).toEqual([]);
  });
});
