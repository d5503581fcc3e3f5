import { afterEach, describe, expect, it, vi } from 'vitest';
import { type CallFault, type ExternalCall, fakeContext, STEPS, type Step, World, type WorldOptions } from '../helpers/world.js';
import { currentAccepted, currentVersion, deliveredRotateStarts, rotateSecret, unheldNextSecret } from './support/invariants.js';

/**
 * Rate limits and slowness within the Lambda's remaining time (DESIGN.md §5):
 * the function retries while the budget allows and succeeds when it can; when
 * the budget runs out it fails as transient (nothing cancelled, AWSPENDING
 * kept), never leaves a lost secret, ends before the Lambda would be killed,
 * and Secrets Manager's reattempt completes the rotation.
 *
 * Backoff waits run on a virtual clock (Date is faked and the handler's sleep
 * advances it), so a test of many seconds of backoff takes milliseconds; the
 * Stytch emulator's rate limiter reads the same clock. Slow answers (timeouts)
 * need real time and use short budgets and a short STYTCH_REQUEST_TIMEOUT_MS.
 */

let world: World | undefined;
afterEach(() => {
  if (world) expect(world.leaks()).toEqual([]);
  world = undefined;
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** A World whose backoff sleeps advance a virtual clock; returns the sleeps asked for. */
async function virtualTimeWorld(options: WorldOptions = {}): Promise<{ world: World; sleeps: number[] }> {
  vi.useFakeTimers({ toFake: ['Date'], now: new Date('2026-01-01T00:00:00Z') });
  const sleeps: number[] = [];
  const sleep = async (ms: number) => {
    sleeps.push(ms);
    vi.setSystemTime(Date.now() + ms);
  };
  world = await new World({ ...options, sleep }).init();
  return { world, sleeps };
}

/** Fails the calls `match` selects with `fault`, until cleared. */
function failing(w: World, match: (call: ExternalCall) => boolean, fault: CallFault): void {
  w.interceptor = (call) => (match(call) ? fault : undefined);
}

const op = (suffix: string) => (call: ExternalCall) => call.operation.endsWith(suffix);

/** Invokes one step with a Lambda budget; returns the error (if any) and how long it took on the clock in use. */
async function invokeWithin(w: World, step: Step, token: string, budgetMs: number): Promise<{ error: Error | undefined; elapsedMs: number }> {
  const started = Date.now();
  const error = await w
    .invokeRaw({ Step: step, SecretId: w.secretArn, ClientRequestToken: token }, fakeContext(budgetMs))
    .then(() => undefined, (e: unknown) => e as Error);
  return { error, elapsedMs: Date.now() - started };
}

const stytchCallsOf = (w: World, suffix: string) => w.externalCalls.filter((c) => c.service === 'stytch' && c.operation.endsWith(suffix));

describe('Rate limits: Stytch 429s within the Lambda budget (virtual clock)', () => {
  it('retries 429s with backoff and succeeds when the budget allows', async () => {
    const { world: w, sleeps } = await virtualTimeWorld();
    let n = 0;
    failing(w, (c) => op('.rotate_start')(c) && n++ < 2, { when: 'before', error: 429 });
    const token = await w.beginRotation();

    const { error, elapsedMs } = await invokeWithin(w, 'createSecret', token, 30_000);

    expect(error).toBeUndefined();
    expect(stytchCallsOf(w, '.rotate_start')).toHaveLength(3);
    expect(sleeps).toHaveLength(2);
    // Stytch's Retry-After (1 s) is honoured at least.
    for (const ms of sleeps) expect(ms).toBeGreaterThanOrEqual(1000);
    expect(elapsedMs).toBeLessThan(30_000);
    expect(w.metricCounts().StytchRetry).toBe(2);
    expect(deliveredRotateStarts(w)).toHaveLength(1);
    expect(unheldNextSecret(w)).toBeUndefined();
  });

  it('a whole rotation under the emulator\'s real rate limit (2 requests/s) completes, each step within its budget', async () => {
    const { world: w } = await virtualTimeWorld();
    w.stytch.setRateLimit({ requestsPerSecond: 2 });
    const token = await w.beginRotation();
    for (const step of STEPS) {
      const { error, elapsedMs } = await invokeWithin(w, step, token, 15_000);
      expect(error, step).toBeUndefined();
      expect(elapsedMs, step).toBeLessThan(15_000);
    }
    expect(currentVersion(w).id).toBe(token);
    expect(w.stytchState().nextClientSecretLast4).toBeNull();
    expect(w.stytch.requests.some((r) => r.status === 429)).toBe(true);
    expect(w.metricCounts().StytchRetry).toBeGreaterThan(0);
  });

  it.each(STEPS.filter((s) => s !== 'createSecret'))(
    'when 429s outlast the budget in %s, it fails as transient before the deadline: nothing cancelled, AWSPENDING kept, the reattempt completes',
    async (step) => {
      const { world: w, sleeps } = await virtualTimeWorld();
      const token = await w.beginRotation();
      for (const s of STEPS.slice(0, STEPS.indexOf(step))) await w.invoke(s, token);
      const pendingBefore = w.versionWith('AWSPENDING');
      failing(w, (c) => c.service === 'stytch', { when: 'before', error: 429 });
      const budget = 4_000;

      const { error, elapsedMs } = await invokeWithin(w, step, token, budget);

      expect(error?.message).toMatch(/429 too_many_requests/);
      expect((error as { transient?: boolean }).transient).toBe(true);
      // The budget, not the attempt limit, ended it: it stopped early rather than be killed.
      expect(elapsedMs).toBeLessThan(budget);
      expect(sleeps.reduce((a, b) => a + b, 0)).toBeLessThan(budget);
      expect(w.externalCalls.filter((c) => /rotate_cancel$/.test(c.operation))).toEqual([]);
      expect(w.versionWith('AWSPENDING')).toEqual(pendingBefore);
      expect(currentAccepted(w)).toBe(true);
      expect(unheldNextSecret(w)).toBeUndefined();

      // Secrets Manager's reattempt, once Stytch answers again.
      w.interceptor = undefined;
      const record = await w.capturing(() => w.sm.reattemptPending(w.secretArn));
      expect(record.outcome).toBe('succeeded');
      expect(currentVersion(w).id).toBe(token);
      expect(w.stytchState().nextClientSecretLast4).toBeNull();
      expect(deliveredRotateStarts(w, 0, token)).toHaveLength(1);
    },
  );

  it('when 429s outlast the budget at rotate/start, createSecret fails as transient having minted nothing, and the reattempt completes', async () => {
    const { world: w } = await virtualTimeWorld();
    const token = await w.beginRotation();
    failing(w, op('.rotate_start'), { when: 'before', error: 429 });

    const { error, elapsedMs } = await invokeWithin(w, 'createSecret', token, 4_000);

    expect((error as { transient?: boolean }).transient).toBe(true);
    expect(elapsedMs).toBeLessThan(4_000);
    expect(w.stytchState().nextClientSecretLast4).toBeNull();
    expect(w.snapshot().versions[token]!.stages).toEqual(['AWSPENDING']);
    w.interceptor = undefined;
    expect((await w.capturing(() => w.sm.reattemptPending(w.secretArn))).outcome).toBe('succeeded');
  });

  it('when 429s outlast the budget at finishSecret rotate (AWSCURRENT already moved), it never cancels, and the next attempt completes the rotation', async () => {
    const { world: w } = await virtualTimeWorld({ maxAttempts: 1 });
    const token = await w.beginRotation();
    for (const s of ['createSecret', 'setSecret', 'testSecret'] as const) await w.invoke(s, token);
    const previous = currentVersion(w).secret;
    failing(w, op('.rotate'), { when: 'before', error: 429 });

    const { error, elapsedMs } = await invokeWithin(w, 'finishSecret', token, 4_000);

    expect((error as { transient?: boolean }).transient).toBe(true);
    expect(elapsedMs).toBeLessThan(4_000);
    expect(currentVersion(w).id).toBe(token);
    expect(currentAccepted(w)).toBe(true);
    expect(w.externalCalls.filter((c) => /rotate_cancel$/.test(c.operation))).toEqual([]);
    w.interceptor = undefined;
    const next = await w.capturing(() => rotateSecret(w));
    expect(next.outcome).toBe('succeeded');
    expect(w.metricCounts().HalfDoneCompleted).toBe(1);
    expect(w.stytch.isAccepted(w.client.client_id, previous)).toBe(false);
  });
});

describe('The reserve for Secrets Manager: Stytch calls stop min(3 s, a fifth of the budget) before the Lambda\'s end (virtual clock)', () => {
  // Backoff without jitter (random = 1): 200, 400, 800, 1600, 3200, then 5000 ms. Stytch answers 503 to every
  // read; the attempt limit is far away, so only the deadline (the budget less the reserve) ends the step.
  it.each([
    // 9 s: the reserve is a fifth (1.8 s), deadline 7.2 s: the attempt at 6.2 s is the last (6.2 + 5 + 0.25 > 7.2).
    // A 3 s reserve would stop after the attempt at 3 s (3 + 3.2 + 0.25 > 6).
    { budget: 9_000, attempts: 6, waited: 6_200 },
    // 64 s: the reserve is 3 s, deadline 61 s: the attempt at 56.2 s is the last (56.2 + 5.25 > 61).
    // Without the reserve it would try again at 61.2 s, leaving 2.8 s for the Secrets Manager work after it.
    { budget: 64_000, attempts: 16, waited: 56_200 },
  ])('with a $budget ms budget, setSecret makes $attempts attempts over $waited ms, then fails as transient with the reserve left', async ({ budget, attempts, waited }) => {
    vi.spyOn(Math, 'random').mockReturnValue(1);
    const { world: w, sleeps } = await virtualTimeWorld({ env: { STYTCH_MAX_ATTEMPTS: '100' } });
    const token = await w.beginRotation();
    await w.invoke('createSecret', token);
    const callsFrom = w.externalCalls.length;
    failing(w, op('.get'), { when: 'before', error: 503 });

    const { error, elapsedMs } = await invokeWithin(w, 'setSecret', token, budget);

    expect(error?.message).toMatch(/^Stytch connected_app\.get failed: 503 service_unavailable/);
    expect((error as { transient?: boolean }).transient).toBe(true);
    expect(w.externalCalls.slice(callsFrom).filter(op('.get'))).toHaveLength(attempts);
    expect(sleeps.reduce((a, b) => a + b, 0)).toBe(waited);
    expect(elapsedMs).toBe(waited);
    expect(w.versionWith('AWSPENDING')?.id).toBe(token);
    expect(w.externalCalls.filter(op('.rotate_cancel'))).toEqual([]);
  });
});

describe('Slow answers: timeouts within the Lambda budget (real time)', () => {
  const fast = { env: { STYTCH_REQUEST_TIMEOUT_MS: '150' } };
  /**
   * The deadline, not the attempt limit, ends these: far more attempts than the budget allows, each
   * backoff really waited, kept short (the jitter draws 0.05), so attempts go on until the deadline.
   */
  const untilTheDeadline = () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.05);
    return {
      env: { STYTCH_REQUEST_TIMEOUT_MS: '150', STYTCH_MAX_ATTEMPTS: '100' },
      sleep: (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)),
    };
  };

  it('an answer slower than the request timeout is retried, and the step succeeds within its budget', async () => {
    world = await new World(fast).init();
    world.stytch.addFault({ operation: 'connected_app.rotate_start', mode: 'delay', delayMs: 400 });
    const token = await world.beginRotation();

    const { error, elapsedMs } = await invokeWithin(world, 'createSecret', token, 3_000);

    expect(error).toBeUndefined();
    expect(elapsedMs).toBeLessThan(3_000);
    // The slow request was abandoned before its effect; one next secret in all.
    expect(world.stytch.requests.filter((r) => r.operation.endsWith('rotate_start')).map((r) => r.status)).toEqual([0, 200]);
    expect(unheldNextSecret(world)).toBeUndefined();
    expect(world.output.join('')).toMatch(/"errorType":"timeout"/);
  });

  it('Stytch too slow for the whole budget in setSecret: fails as transient at the deadline (the budget less its reserve), nothing cancelled, the reattempt completes', async () => {
    world = await new World(untilTheDeadline()).init();
    const token = await world.beginRotation();
    await world.invoke('createSecret', token);
    world.stytch.addFault({ operation: 'connected_app.get', mode: 'delay', delayMs: 5_000, times: Infinity });
    const budget = 3_000;

    const { error, elapsedMs } = await invokeWithin(world, 'setSecret', token, budget);

    expect(error?.message).toMatch(/timeout|deadline_exceeded/);
    expect((error as { transient?: boolean }).transient).toBe(true);
    // The deadline is 2.4 s (a fifth of 3 s kept for Secrets Manager): attempts of 150 ms go on until
    // less than 250 ms is left. Without the reserve they would go on past 2.6 s.
    expect(elapsedMs).toBeGreaterThanOrEqual(1_900);
    expect(elapsedMs).toBeLessThan(2_550);
    expect(world.stytch.requests.filter((r) => r.operation === 'connected_app.get').length).toBeLessThan(100);
    expect(world.versionWith('AWSPENDING')?.id).toBe(token);
    expect(world.externalCalls.filter((c) => /rotate_cancel$/.test(c.operation))).toEqual([]);
    world.stytch.clearFaults();
    expect((await world.capturing(() => world!.sm.reattemptPending(world!.secretArn))).outcome).toBe('succeeded');
    expect(currentVersion(world).id).toBe(token);
  });

  it('rotate/start takes effect but its answer comes after the budget: the orphan it leaves is repaired by the reattempt (II)', async () => {
    world = await new World({ ...fast, maxAttempts: 1 }).init();
    const token = await world.beginRotation();
    // Stytch mints the secret, then answers too late, for every attempt of this invocation.
    const first = world.invocations.length;
    world.interceptor = (call) => (op('.rotate_start')(call) && call.invocation === first ? { when: 'after', delayMs: 5_000 } : undefined);

    const { error, elapsedMs } = await invokeWithin(world, 'createSecret', token, 2_500);

    expect((error as { transient?: boolean }).transient).toBe(true);
    expect(elapsedMs).toBeLessThan(2_500);
    world.interceptor = undefined;
    expect((await world.capturing(() => world!.sm.reattemptPending(world!.secretArn))).outcome).toBe('succeeded');
    expect(world.metricCounts().OrphanRepaired).toBe(1);
    expect(unheldNextSecret(world)).toBeUndefined();
    for (const minted of world.mintedSecrets.slice(0, -1)) expect(world.stytch.isAccepted(world.client.client_id, minted)).toBe(false);
    expect(currentAccepted(world)).toBe(true);
    expect(world.stytchState().nextClientSecretLast4).toBeNull();
  });

  it('a slow rotate/start that uses most of the budget still leaves time to store the secret (the reserve for Secrets Manager)', async () => {
    world = await new World().init();
    // Real time on a shared machine: the margins are wide (deadline = budget less a 1 s reserve; 1.5 s left for the rest).
    world.stytch.addFault({ operation: 'connected_app.rotate_start', mode: 'delay', delayMs: 2_500 });
    const token = await world.beginRotation();
    const budget = 5_000;

    const { error, elapsedMs } = await invokeWithin(world, 'createSecret', token, budget);

    expect(error).toBeUndefined();
    expect(elapsedMs).toBeLessThan(budget);
    expect(world.versionWith('AWSPENDING')?.id).toBe(token);
    expect(unheldNextSecret(world)).toBeUndefined();
  });

  it('an M2M probe too slow for the budget fails testSecret as transient at the deadline: the pending secret is kept, the reattempt completes', async () => {
    world = await new World({ ...untilTheDeadline(), kind: 'm2m' }).init();
    const token = await world.beginRotation();
    for (const s of ['createSecret', 'setSecret'] as const) await world.invoke(s, token);
    world.stytch.addFault({ operation: 'm2m.token', mode: 'delay', delayMs: 5_000, times: Infinity });

    const { error, elapsedMs } = await invokeWithin(world, 'testSecret', token, 3_000);

    expect((error as { transient?: boolean }).transient).toBe(true);
    // Ended by the deadline (2.4 s: the budget less a fifth), not by the attempt limit.
    expect(elapsedMs).toBeGreaterThanOrEqual(1_900);
    expect(elapsedMs).toBeLessThan(2_550);
    expect(world.stytchState().nextClientSecretLast4).not.toBeNull();
    expect(world.versionWith('AWSPENDING')?.id).toBe(token);
    world.stytch.clearFaults();
    expect((await world.capturing(() => world!.sm.reattemptPending(world!.secretArn))).outcome).toBe('succeeded');
  });
});
