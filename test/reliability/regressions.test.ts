import { afterEach, describe, expect, it } from 'vitest';
import { type CallFault, fakeContext, STEPS, World } from '../helpers/world.js';
import { currentAccepted, currentVersion, deliveredRotateStarts, last4, rotateSecret, unheldNextSecret } from './support/invariants.js';
import { runScenario } from './support/scenario.js';

/**
 * Every counterexample the property-based tests ever found, replayed by name,
 * and one test per outcome of the failure policy (DESIGN.md §4 "On failure"),
 * each asserted through the EMF metric the function emits for it.
 *
 * Counterexamples come from two sources: runs against the function as it is
 * (a real bug, described at its test), and runs against deliberately broken
 * copies of the function (mutation testing: the counterexample is the shortest
 * sequence that exposed that kind of regression, and stays here to catch it).
 */

let world: World | undefined;
afterEach(() => {
  if (world) expect(world.leaks()).toEqual([]);
  world = undefined;
});

const make = async (options?: ConstructorParameters<typeof World>[0]) => (world = await new World(options).init());

describe('Regressions: counterexamples found against the function', () => {
  /*
   * Found by properties.test.ts ("two invocations of the same step at once"),
   * seed 20261127 (path "11:1:2:1:0:0:0"), shrunk to one action: [{ t: 'concurrent', step: 'createSecret' }].
   *
   * Two createSecret invocations for the same new token run at once (two
   * containers). A: rotate/start → next secret N1, PutSecretValue(T, N1).
   * B: rotate/start → "already rotating"; B then reads Stytch (N4 = N1, not
   * last4(AWSCURRENT)) and, without re-reading the token version, treats N1 as
   * an orphan and cancels it, although A has stored it under T by then. B
   * starts N2, its put under T fails (ResourceExistsException: T already holds
   * N1) and B cancels N2. End state: AWSPENDING holds N1, Stytch holds no next
   * secret, so the rotation is dead; the next createSecret clears AWSPENDING
   * (DeadPendingCleared) and a fresh rotation is needed. I, II and III hold,
   * but IV does not: the repeated step did not reach the same end state as one
   * invocation, and the rotation had two accepted rotate/start calls.
   */
  it('two createSecret invocations at once for a new rotation leave it resumable, with one accepted rotate/start (IV)', async () => {
    await make();
    const token = await world!.beginRotation();
    const containers = [world!.createContainer(), world!.createContainer()];
    const results = await Promise.allSettled(
      containers.map((c) => world!.invokeRaw({ Step: 'createSecret', SecretId: world!.secretArn, ClientRequestToken: token }, fakeContext(), c)),
    );
    expect(results.some((r) => r.status === 'fulfilled')).toBe(true);

    // The stored secret is the one Stytch holds as next: the rotation goes on.
    const pending = world!.versionWith('AWSPENDING');
    expect(pending?.id).toBe(token);
    expect(world!.stytchState().nextClientSecretLast4).toBe(last4(pending!.value!.client_secret as string));
    for (const step of STEPS) await world!.invoke(step, token);
    expect(currentVersion(world!).id).toBe(token);
    expect(deliveredRotateStarts(world!, 0, token)).toHaveLength(1);
  });

  it('the shrunk property counterexample passes: [two createSecret at once]', async () => {
    const result = await runScenario([{ t: 'concurrent', step: 'createSecret' }]);
    expect(result.violations).toEqual([]);
  });
});

describe('Regressions: paths found while building the suites', () => {
  /*
   * With the real SDK pipeline, a lost answer to UpdateSecretVersionStage
   * (removing AWSPENDING after a definitive failure) is retried by the SDK and
   * refused (InvalidParameterException: the label is no longer there). The
   * function then reports "could not be cancelled, AWSPENDING stays", though
   * the label is gone and Stytch is clean (the message is wrong, the state is
   * right). The invariants hold and the next rotation starts fresh.
   */
  it('a lost answer to removing AWSPENDING, retried by the SDK: the state stays consistent and the next rotation starts fresh', async () => {
    await make({ smTransport: 'sdk' });
    const token = await world!.beginRotation();
    await world!.invoke('createSecret', token);
    world!.stytch.adminRotateCancel(world!.client.client_id);
    let fired = false;
    world!.interceptor = (call) => (call.operation === 'UpdateSecretVersionStage' && !fired ? ((fired = true), { when: 'after', error: 'InternalServiceError' }) : undefined);
    await expect(world!.invoke('setSecret', token)).rejects.toThrow(/does not hold the pending secret/);
    expect(world!.snapshot().versions[token]!.stages).toEqual([]);
    expect(unheldNextSecret(world!)).toBeUndefined();
    world!.interceptor = undefined;
    expect((await world!.capturing(() => rotateSecret(world!))).outcome).toBe('succeeded');
    expect(currentAccepted(world!)).toBe(true);
  });
});

describe('Regressions: counterexamples that exposed deliberately broken copies of the function (mutation testing)', () => {
  // finishSecret calling rotate before moving AWSCURRENT: at the final clean rotation, consumers' secret is retired first.
  it('a dashboard cancel before any rotation, then a clean rotation: AWSCURRENT moves before Stytch retires the old secret', async () => {
    expect((await runScenario([{ t: 'outside', what: 'dashboardCancel' }])).violations).toEqual([]);
  });

  // startRotation cancelling a next secret that is already AWSCURRENT (someone put Stytch's next secret into AWSCURRENT by hand).
  it('a dashboard start, its secret put as AWSCURRENT by hand, then createSecret: the half-done rotation is completed, never cancelled', async () => {
    const result = await runScenario([
      { t: 'outside', what: 'dashboardStart' },
      { t: 'outside', what: 'putCurrentAccepted' },
      { t: 'step', step: 'createSecret', of: 'latest' },
    ]);
    expect(result.violations).toEqual([]);
    expect(result.metrics.HalfDoneCompleted).toBe(1);
  });

  // The failure policy treating a transient failure (Stytch 503 after the client's retries) as definitive and cancelling.
  // (Found with 4 failures when the client made 4 attempts; 20 outlast any retry setting.)
  it('Stytch answering 503 after the client\'s retries during an attempt: nothing is cancelled and the rotation resumes', async () => {
    const result = await runScenario([
      { t: 'begin' },
      { t: 'fault', target: 'stytch', skip: 1, times: 20, when: 'before', failure: 503 },
      { t: 'attempt' },
    ]);
    expect(result.violations).toEqual([]);
    expect(result.metrics.RotationCancelled ?? 0).toBe(0);
  });

  // createSecret finding a dead AWSPENDING and leaving it: the rotation is stuck ("A previous rotation isn't complete") forever.
  it('createSecret, a dashboard cancel, then an attempt: AWSPENDING is cleared so the next rotation can start', async () => {
    const result = await runScenario([{ t: 'next' }, { t: 'outside', what: 'dashboardCancel' }, { t: 'attempt' }]);
    expect(result.violations).toEqual([]);
    expect(result.metrics.DeadPendingCleared).toBeGreaterThan(0);
  });

  // completeAfterLabel cancelling instead of completing, and finishSecret cancelling when rotate fails after the label moved.
  it('Stytch down for finishSecret rotate after AWSCURRENT moved: never cancelled, completed by the next attempt', async () => {
    const result = await runScenario([{ t: 'fault', target: 'stytch', skip: 4, times: 20, when: 'before', failure: 503 }, { t: 'attempt' }, { t: 'begin' }]);
    expect(result.violations).toEqual([]);
    expect(result.metrics.HalfDoneCompleted).toBeGreaterThan(0);
  });

  // finishSecret moving AWSCURRENT without checking that Stytch still accepts the pending secret.
  it('createSecret, testSecret, a dashboard cancel, then finishSecret: AWSCURRENT is not moved to the discarded secret', async () => {
    const result = await runScenario([
      { t: 'next' },
      { t: 'step', step: 'testSecret', of: 'latest' },
      { t: 'outside', what: 'dashboardCancel' },
      { t: 'next' },
    ]);
    expect(result.violations).toEqual([]);
  });

  // createSecret minting a new secret on every retry instead of resuming.
  it('one createSecret then Secrets Manager reattempts: the retry resumes, no second secret', async () => {
    const result = await runScenario([{ t: 'next' }, { t: 'step', step: 'createSecret', of: 'latest' }]);
    expect(result.violations).toEqual([]);
    expect(result.metrics.RotationResumed).toBeGreaterThan(0);
  });

  // startRotation not cancelling an orphan: "already rotating" forever after AWSPENDING was abandoned by a manual put.
  it('createSecret, a manual put of AWSCURRENT (abandoning AWSPENDING), then a new rotation: the orphan is cancelled', async () => {
    const result = await runScenario([{ t: 'next' }, { t: 'outside', what: 'putCurrentCopy' }, { t: 'begin' }]);
    expect(result.violations).toEqual([]);
    expect(result.metrics.OrphanRepaired).toBeGreaterThan(0);
  });
});

describe('Failure policy: every outcome is reached, and its metric emitted', () => {
  const faultAt = (match: (op: string) => boolean, fault: CallFault) => {
    let fired = false;
    world!.interceptor = (call) => {
      if (fired || !match(call.operation)) return undefined;
      fired = true;
      return fault;
    };
  };

  it('cancel: PutSecretValue fails and the value did not land, so Stytch discards the next secret (RotationCancelled)', async () => {
    await make();
    faultAt((op) => op === 'PutSecretValue', { when: 'before', error: 'InternalServiceError' });
    const token = await world!.beginRotation();
    await expect(world!.invoke('createSecret', token)).rejects.toThrow(/error occurred on the server side/);
    expect(world!.metricCounts().RotationCancelled).toBe(1);
    expect(world!.stytchState().nextClientSecretLast4).toBeNull();
    expect(unheldNextSecret(world!)).toBeUndefined();
    // The same token goes on: nothing was stored under it.
    world!.interceptor = undefined;
    for (const step of STEPS) await world!.invoke(step, token);
    expect(currentVersion(world!).id).toBe(token);
  });

  it('cancel: a definitive failure after rotate/start (the M2M probe is rejected) cancels at Stytch and clears AWSPENDING (RotationCancelled)', async () => {
    await make({ kind: 'm2m' });
    const token = await world!.beginRotation();
    await world!.invoke('createSecret', token);
    world!.stytch.addFault({ operation: 'm2m.token', mode: 'before', status: 401, errorType: 'invalid_client' });
    await expect(world!.invoke('testSecret', token)).rejects.toThrow(/The rotation was cancelled/);
    expect(world!.metricCounts().RotationCancelled).toBe(1);
    expect(world!.stytchState().nextClientSecretLast4).toBeNull();
    expect(world!.snapshot().versions[token]!.stages).toEqual([]);
    expect(currentAccepted(world!)).toBe(true);
  });

  it('resume: the Lambda dies right after PutSecretValue; the reattempt resumes without a second secret (RotationResumed)', async () => {
    await make();
    let dead: number | undefined;
    world!.interceptor = (call) => {
      if (dead !== undefined && call.invocation === dead) return { when: 'before', error: call.service === 'stytch' ? 'drop' : 'NetworkError' };
      if (call.operation !== 'PutSecretValue') return undefined;
      dead = call.invocation;
      return { when: 'after', error: 'NetworkError' };
    };
    world!.onInvocation = (i) => {
      if (i.id === dead) world!.newContainer();
    };
    const record = await world!.capturing(() => rotateSecret(world!));
    expect(record.outcome).toBe('failed');
    world!.interceptor = undefined;
    const again = await world!.sm.reattemptPending(world!.secretArn);
    expect(again.outcome).toBe('succeeded');
    expect(world!.metricCounts().RotationResumed).toBe(1);
    // One rotate/start in all: the reattempt minted no second secret.
    expect(world!.stytchCalls('rotate_start')).toHaveLength(1);
    expect(deliveredRotateStarts(world!, 0, record.token)).toHaveLength(1);
  });

  it('repair an orphan: the Lambda dies after rotate/start took effect; the reattempt cancels the orphan and starts again (OrphanRepaired)', async () => {
    await make();
    let dead: number | undefined;
    world!.interceptor = (call) => {
      if (dead !== undefined && call.invocation === dead) return { when: 'before', error: call.service === 'stytch' ? 'drop' : 'NetworkError' };
      if (!call.operation.endsWith('.rotate_start') || dead !== undefined) return undefined;
      dead = call.invocation;
      return { when: 'after', error: 'drop' };
    };
    world!.onInvocation = (i) => {
      if (i.id === dead) world!.newContainer();
    };
    const first = await world!.capturing(() => rotateSecret(world!));
    expect(first.outcome).toBe('failed');
    const orphan = world!.mintedSecrets[0]!;
    expect(world!.stytch.isAccepted(world!.client.client_id, orphan)).toBe(true);
    expect(unheldNextSecret(world!)).toBeDefined(); // II is broken only until the next attempt…
    world!.interceptor = undefined;
    const again = await world!.sm.reattemptPending(world!.secretArn);
    expect(again.outcome).toBe('succeeded');
    expect(world!.metricCounts().OrphanRepaired).toBe(1);
    expect(world!.stytch.isAccepted(world!.client.client_id, orphan)).toBe(false); // …which repairs it
  });

  it('complete a half-done rotation: Stytch down for finishSecret rotate after AWSCURRENT moved; the next createSecret completes it (HalfDoneCompleted)', async () => {
    await make();
    world!.interceptor = (call) => (call.operation.endsWith('.rotate') ? { when: 'before', error: 503 } : undefined);
    const token = await world!.beginRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await world!.invoke(step, token);
    await expect(world!.invoke('finishSecret', token)).rejects.toThrow(/503/);
    expect(currentVersion(world!).id).toBe(token);
    expect(world!.stytchCalls('rotate_cancel')).toHaveLength(0);
    const previous = world!.versionWith('AWSPREVIOUS')!.value!.client_secret as string;
    world!.interceptor = undefined;
    const next = await world!.capturing(() => rotateSecret(world!));
    expect(next.outcome).toBe('succeeded');
    expect(world!.metricCounts().HalfDoneCompleted).toBe(1);
    expect(world!.stytch.isAccepted(world!.client.client_id, previous)).toBe(false);
  });

  it('complete a half-done rotation: the reattempted finishSecret on a version already AWSCURRENT completes it at Stytch (HalfDoneCompleted)', async () => {
    await make({ maxAttempts: 2 });
    // Every attempt of the first invocation that calls rotate fails (429s outlasting the client's retries).
    let failing: number | undefined;
    world!.interceptor = (call) => {
      if (!call.operation.endsWith('.rotate')) return undefined;
      failing ??= call.invocation;
      return call.invocation === failing ? { when: 'before', error: 429 } : undefined;
    };
    const record = await world!.capturing(() => rotateSecret(world!));
    expect(record.outcome).toBe('succeeded');
    expect(record.attempts).toHaveLength(2);
    expect(world!.metricCounts().HalfDoneCompleted).toBe(1);
    expect(world!.stytchState().nextClientSecretLast4).toBeNull();
  });

  it('clear a dead AWSPENDING: the rotation was cancelled in the dashboard; createSecret removes AWSPENDING and the next rotation starts fresh (DeadPendingCleared)', async () => {
    await make();
    const token = await world!.beginRotation();
    await world!.invoke('createSecret', token);
    world!.stytch.adminRotateCancel(world!.client.client_id);
    await expect(world!.invoke('createSecret', token)).rejects.toThrow(/next rotation starts fresh/);
    expect(world!.metricCounts().DeadPendingCleared).toBe(1);
    expect(world!.snapshot().versions[token]!.stages).toEqual([]);
    const fresh = await world!.capturing(() => rotateSecret(world!));
    expect(fresh.outcome).toBe('succeeded');
    expect(currentAccepted(world!)).toBe(true);
  });
});
