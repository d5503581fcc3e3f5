/**
 * A scenario: a short sequence of actions against one World, with the
 * invariants of DESIGN.md §3 checked after every action (and, for the
 * function's own actions, after every single call it makes). Shared by the
 * property-based tests, which generate scenarios, and the regression tests,
 * which replay the counterexamples they found.
 *
 * What may break I: only four outside actions, a dashboard rotate (retires
 * the secret consumers hold), a dashboard cancel (discards a next secret that
 * may already be AWSCURRENT), a manual put of a wrong AWSCURRENT value, and
 * one naming another client (the operator puts the right value back before
 * the end). The function itself must never turn an accepted AWSCURRENT into
 * a rejected one, nor move AWSCURRENT to a rejected secret, at any instant; a
 * later clean rotation must repair what the outside broke.
 *
 * When II may be broken: between the moment a rotate/start took effect and
 * the PutSecretValue that stores its secret. So II is checked at quiescent
 * points: not after a createSecret that failed (a crash there is repaired by
 * the next attempt), and not after an outside action that leaves a next secret
 * Secrets Manager does not hold (a dashboard start, AWSPENDING removed or
 * abandoned by a manual put), until the function has run rotate/start again.
 *
 * With an overlap window (graceSeconds > 0), III reads: the previous secret
 * stays accepted while its retirement is recorded and not yet due (unless
 * something outside retired it), and once the window has ended a sweep
 * retires it; checked on every action and on the final clean rotation. The
 * record is the function's own word, so I for apps that cache the previous
 * secret is also checked against Secrets Manager alone: once the function
 * moved AWSCURRENT, the secret it held before stays accepted until the window
 * counted from then has ended (unless a newer rotation's createSecret retired
 * it early, or something outside changed Stytch or AWSCURRENT); checked after
 * every invocation, so a sweep that acts on a stale reading is caught even
 * when it also clears the record. And while that secret is still accepted,
 * the table records its retirement, due no earlier than the window's end
 * (checked after every action): a record lost means no sweep ever retires
 * it, one due early means a sweep retires it too soon.
 *
 * VII: once a value names another client (an outside put), no Stytch call
 * may name that client: every step and sweep refuses before calling Stytch.
 *
 * IV: a step repeated at once (nothing in between, no fault) succeeds again
 * and changes nothing; a rotation that nothing outside touched is never
 * abandoned, whatever faults, crashes, duplicates, concurrent invocations and
 * out-of-order steps it meets, and Secrets Manager's reattempts complete it;
 * a rotation that met no fault and nothing outside needed exactly one accepted
 * rotate/start.
 */
import { randomUUID } from 'node:crypto';
import { CREDENTIALS_SECRET, STEPS, STYTCH_DEFINITIVE_FAILURES, type CallFault, type SecretsManagerFailure, type Service, type Step, type StytchFailure, World, type WorldOptions } from '../../helpers/world.js';
import {
  currentAccepted,
  currentVersion,
  deliveredRotateStarts,
  describeRecord,
  last4,
  pendingToken,
  rotateSecret,
  settle,
  unheldCurrentSecret,
  unheldNextSecret,
} from './invariants.js';

export type OutsideAction =
  | 'dashboardCancel'
  | 'dashboardStart'
  | 'dashboardRotate'
  | 'removePending'
  | 'putCurrentCopy'
  | 'putCurrentAccepted'
  | 'putCurrentRejected'
  | 'projectSecretRotated'
  | 'projectSecretStored'
  | 'coldStart'
  /** The AWSCURRENT value names another client of the project, with that client's real secret (VII). */
  | 'putCurrentOtherClient';

/** Outside actions that are allowed to break invariant I (they break consumers themselves). */
export const MAY_BREAK_I: ReadonlySet<OutsideAction> = new Set(['dashboardCancel', 'dashboardRotate', 'putCurrentRejected', 'putCurrentOtherClient']);

export type Action =
  /** One step of the latest rotation (or of the one before it: a late, stale invocation). */
  | { t: 'step'; step: Step; of: 'latest' | 'previous' }
  /** The step after the last one that succeeded for the latest rotation (a new rotation once it is over). */
  | { t: 'next' }
  /**
   * Two invocations of the same step at once, in two containers. With `slowFirst`, the first one's
   * first Stytch call takes effect but its answer comes back only once the second invocation has
   * ended: the race a lease exists for, made to happen every time.
   */
  | { t: 'concurrent'; step: Step; slowFirst?: boolean }
  /** Secrets Manager's attempt: reattempt the unfinished rotation, or start one (RotateSecret). */
  | { t: 'attempt' }
  /** RotateSecret's first move only: a new token labelled AWSPENDING, no step run yet. */
  | { t: 'begin' }
  /** The retirement sweep (the EventBridge schedule's event). */
  | { t: 'sweep' }
  /**
   * A sweep and Secrets Manager's attempt at once, in the worst order: the sweep reads the due
   * retirements (`scan`) or Stytch's state (`stytch`), then the whole attempt runs, then the sweep
   * acts on what it read.
   */
  | { t: 'sweepRace'; at: 'scan' | 'stytch' }
  /** Time passes until every overlap window has ended (leases expire too). */
  | { t: 'windowEnds' }
  /** The `times` calls to `target` after the next `skip` ones fail (each once). */
  | { t: 'fault'; target: Service; skip: number; times: number; when: 'before' | 'after'; failure: SecretsManagerFailure | StytchFailure }
  /** The call to `target` (to its `operation`, when given) after the next `skip` ones takes effect, then the Lambda dies. */
  | { t: 'crash'; target: Service; skip: number; operation?: string }
  | { t: 'outside'; what: OutsideAction };

export interface ScenarioOptions {
  kind?: 'connected_app' | 'm2m';
  rotationTokens?: boolean;
  /** PREVIOUS_SECRET_GRACE_SECONDS (default 0: the previous secret is retired in finishSecret). */
  graceSeconds?: number;
  /** The handler under test (default: from source). */
  createHandler?: WorldOptions['createHandler'];
}

export interface ScenarioResult {
  violations: string[];
  metrics: Record<string, number>;
  invocations: number;
}

interface ArmedFault {
  target: Service;
  /** Only calls of this operation count and fail (any, when undefined). */
  operation?: string | undefined;
  skip: number;
  times: number;
  fault: CallFault;
  crash: boolean;
}

const MUTATING = new Set(['PutSecretValue', 'UpdateSecretVersionStage']);
const isMutating = (operation: string) => MUTATING.has(operation) || /\.rotate(_start|_cancel)?$/.test(operation);

export async function runScenario(actions: readonly Action[], options: ScenarioOptions = {}): Promise<ScenarioResult> {
  const world = await new World({
    kind: options.kind ?? 'connected_app',
    rotationTokens: options.rotationTokens ?? false,
    maxAttempts: 1,
    smTransport: 'direct',
    env: { PREVIOUS_SECRET_GRACE_SECONDS: String(options.graceSeconds ?? 0) },
    ...(options.createHandler ? { createHandler: options.createHandler } : {}),
  }).init();
  const violations: string[] = [];
  const tokens: string[] = [];
  /** Rotations an outside action touched: they may be abandoned or fail. */
  const interfered = new Set<string>();
  /** Secrets created outside the function (the leak scan looks for them too). */
  const outsideSecrets: string[] = [];
  /** The project secret Stytch holds now (an operator may replace it at Stytch before storing it in Secrets Manager). */
  const project = { secret: world.project.secret, stored: true };
  let armed: ArmedFault[] = [];
  const crashed = new Set<number>();
  let orphanExcused = false;
  /** Stytch's current secret need not be held: a manual put replaced AWSCURRENT, or the dashboard made an unheld next secret current. */
  let putOutside = false;
  const madeCurrentOutside = new Set<string>();
  let label = '';
  const windowed = (options.graceSeconds ?? 0) > 0;
  /** Something outside the function changed Stytch's secrets: the previous secret may be gone early. */
  let stytchTouchedOutside = false;
  /** Another client of the project, once a value names it (putCurrentOtherClient), and the value to restore at the end. */
  const hijack: Hijack = {};
  let reportedVII = false;

  const fail = (message: string) => violations.push(`${label}: ${message}`);

  // ---- fault injection
  world.interceptor = (call) => {
    if (call.invocation !== undefined && crashed.has(call.invocation)) {
      return { when: 'before', error: call.service === 'stytch' ? 'drop' : 'NetworkError' };
    }
    const next = armed.find((f) => f.target === call.service && (f.operation === undefined || f.operation === call.operation));
    if (!next) return undefined;
    if (next.skip > 0) {
      next.skip--;
      return undefined;
    }
    if (--next.times <= 0) armed = armed.filter((f) => f !== next);
    if (next.crash && call.invocation !== undefined) crashed.add(call.invocation);
    // A definitive failure ends its rotation on purpose (the failure policy cancels it): it may be abandoned.
    if ((STYTCH_DEFINITIVE_FAILURES as readonly unknown[]).includes(next.fault.error) && call.token !== undefined) interfered.add(call.token);
    return next.fault;
  };

  // ---- I at every instant of the function's own actions
  let guard: { acceptedBefore: boolean; currentId: string } | undefined;
  const checkI = (where: string) => {
    if (!guard) return;
    const now = currentVersion(world);
    const accepted = world.stytch.isAccepted(world.client.client_id, now.secret);
    if (guard.acceptedBefore && !accepted) fail(`I: the function made AWSCURRENT rejected by Stytch (${where})`);
    else if (now.id !== guard.currentId && !accepted) fail(`I: the function moved AWSCURRENT to a secret Stytch rejects (${where})`);
  };
  world.onCall = (call) => checkI(`after ${call.step ?? '?'} ${call.operation}`);

  // ---- I for apps that cache the previous secret, with a window: from Secrets Manager's labels, not the function's record
  /** AWSCURRENT when last looked at, and the clock then (no later than any move after it). */
  let seen = { id: '', secret: '', at: 0 };
  /** The secret AWSCURRENT held before the function last moved it, accepted until `until` at least. */
  let open: { previous: string; until: number; movedTo: string; invocationsFrom: number } | undefined;
  const watchWindow = (where: string, byFunction: boolean) => {
    if (!windowed) return;
    const now = currentVersion(world);
    if (now.id !== seen.id) {
      // Only a move by the function opens a window, and only for a previous secret Stytch still accepted.
      open =
        byFunction && seen.id !== '' && seen.secret !== now.secret && world.stytch.isAccepted(world.client.client_id, seen.secret)
          ? { previous: seen.secret, until: seen.at + (options.graceSeconds ?? 0) * 1000, movedTo: now.id, invocationsFrom: world.invocations.length }
          : undefined;
    }
    seen = { id: now.id, secret: now.secret, at: world.clock.now() };
    if (!open || stytchTouchedOutside || world.clock.now() >= open.until || world.stytch.isAccepted(world.client.client_id, open.previous)) return;
    // A newer rotation's createSecret retires it early (Stytch holds one next secret): allowed.
    const movedTo = open.movedTo;
    const newer = world.invocations.slice(open.invocationsFrom).some((i) => i.step === 'createSecret' && i.token !== movedTo);
    if (!newer) fail(`I: the secret AWSCURRENT held before the last rotation (…${last4(open.previous)}) was rejected inside its overlap window (${where})`);
    open = undefined; // report once
  };

  // ---- VII: no Stytch call names a client the secret is not bound to
  const checkVII = () => {
    if (!hijack.other || reportedVII) return;
    const otherId = hijack.other.client_id;
    const calls = world.stytch.requests.filter((r) => r.clientId === otherId);
    if (calls.length === 0) return;
    reportedVII = true;
    fail(`VII: the function called Stytch on client ${otherId}, which its secret is not bound to (${calls.map((c) => c.operation).join(', ')})`);
  };

  world.onInvocation = (invocation) => {
    checkI(`after ${invocation.step ?? '?'}`);
    watchWindow(`after ${invocation.step ?? 'retirementSweep'}`, true);
    // A Lambda that died leaves no container behind.
    if (crashed.has(invocation.id)) world.newContainer();
  };

  const latest = () => tokens.at(-1);
  const ensureRotation = async (): Promise<string> => {
    const token = latest();
    if (token !== undefined) return token;
    tokens.push(await world.beginRotation());
    return latest()!;
  };
  const stagesOf = (token: string) => world.snapshot().versions[token]?.stages ?? [];

  /** Runs one of the function's actions under the I guard; returns the invocations it made. */
  const functionAction = async (run: () => Promise<unknown>): Promise<number[]> => {
    const first = world.invocations.length;
    guard = { acceptedBefore: currentAccepted(world), currentId: currentVersion(world).id };
    try {
      await run();
    } catch {
      // A failed step is an outcome like any other; the invariants decide.
    } finally {
      guard = undefined;
    }
    return world.invocations.slice(first).map((i) => i.id);
  };
  const callsOf = (invocations: number[]) => world.externalCalls.filter((c) => c.invocation !== undefined && invocations.includes(c.invocation));

  let previousStep: { step: Step; token: string; ok: boolean } | undefined;
  /** Secrets Manager's attempt: reattempts the unfinished rotation, or starts one; true if its createSecret failed. */
  const secretsManagerAttempt = async (): Promise<boolean> => {
    if (pendingToken(world) !== undefined) {
      await world.sm.reattemptPending(world.secretArn).catch(() => undefined);
    } else {
      const { token } = await rotateSecret(world);
      tokens.push(token);
    }
    const record = world.sm.rotationHistory(world.secretArn).at(-1);
    return record !== undefined && record.outcome !== 'succeeded' && record.attempts.at(-1)?.steps[0]?.ok !== true;
  };
  watchWindow('start', false);

  await world.capturing(async () => {
    try {
      await play();
    } catch (error) {
      fail(`the scenario could not go on: ${(error as Error).message}`);
    }
  });

  async function play(): Promise<void> {
    for (const [index, action] of actions.entries()) {
      label = `action ${index} ${JSON.stringify(action)}`;
      const pendingBefore = new Map(tokens.map((t) => [t, stagesOf(t).includes('AWSPENDING') && !stagesOf(t).includes('AWSCURRENT')]));
      const startsBefore = world.externalCalls.length;
      let thisStep: typeof previousStep;
      let createFailed = false;

      switch (action.t) {
        case 'step':
        case 'next': {
          let step: Step;
          let token: string | undefined;
          if (action.t === 'step') {
            step = action.step;
            token = action.of === 'latest' ? await ensureRotation() : tokens.at(-2);
          } else {
            token = latest();
            if (token === undefined || !(stagesOf(token).includes('AWSPENDING') && !stagesOf(token).includes('AWSCURRENT'))) {
              if (pendingToken(world) === undefined) tokens.push(await world.beginRotation());
              token = latest()!;
            }
            const done = world.invocations.filter((i) => i.token === token && i.done && !i.error).map((i) => STEPS.indexOf(i.step as Step));
            step = STEPS[Math.min(STEPS.length - 1, Math.max(-1, ...done) + 1)]!;
          }
          if (token === undefined) break;
          let ok = true;
          const invocations = await functionAction(() =>
            world.invoke(step, token).catch((error: unknown) => {
              ok = false;
              throw error;
            }),
          );
          if (step === 'createSecret' && !ok) createFailed = true;
          thisStep = { step, token, ok };
          // IV: the same step again at once, with no fault, succeeds again and changes nothing.
          if (previousStep && previousStep.ok && previousStep.step === step && previousStep.token === token) {
            const calls = callsOf(invocations);
            if (!calls.some((c) => c.fault)) {
              if (!ok) fail(`IV: ${step} succeeded, then failed when repeated at once`);
              const mutations = calls.filter((c) => isMutating(c.operation)).map((c) => c.operation);
              if (mutations.length > 0) fail(`IV: ${step} repeated at once changed state again (${mutations.join(', ')})`);
            }
          }
          break;
        }
        case 'concurrent': {
          const token = await ensureRotation();
          const containers = [world.createContainer(), world.createContainer()];
          let failures = 0;
          const invoke = (c: (typeof containers)[number]) =>
            world.invokeRaw({ Step: action.step, SecretId: world.secretArn, ClientRequestToken: token }, undefined, c).catch(() => {
              failures++;
            });
          if (action.slowFirst) {
            await functionAction(async () => {
              let first: number | undefined;
              const gate = world.pause((c) => c.service === 'stytch' && c.invocation !== undefined && c.invocation === first, 'after');
              const one = invoke(containers[0]!);
              first = world.invocations.at(-1)!.id; // invokeRaw records the invocation before its first await
              try {
                await Promise.race([gate.reached, one]);
                await invoke(containers[1]!);
              } finally {
                gate.release(); // also when the first made no Stytch call: the gate never matches again
                await one;
              }
            });
          } else {
            await functionAction(() => Promise.all(containers.map(invoke)));
          }
          if (action.step === 'createSecret' && failures > 0) createFailed = true;
          break;
        }
        case 'attempt': {
          if (pendingToken(world) !== undefined) {
            await functionAction(() => world.sm.reattemptPending(world.secretArn));
          } else {
            await functionAction(async () => tokens.push((await rotateSecret(world)).token));
          }
          const record = world.sm.rotationHistory(world.secretArn).at(-1);
          if (record && record.outcome !== 'succeeded' && record.attempts.at(-1)?.steps[0]?.ok !== true) createFailed = true;
          break;
        }
        case 'begin':
          if (pendingToken(world) === undefined) tokens.push(await world.beginRotation());
          break;
        case 'sweep':
          await functionAction(() => world.sweep());
          break;
        case 'sweepRace': {
          let attemptFailed = false;
          await functionAction(async () => {
            // The sweep's read takes effect, its answer held back until the attempt is over.
            let sweepInvocation: number | undefined;
            const gate = world.pause(
              (c) => c.invocation !== undefined && c.invocation === sweepInvocation && (action.at === 'scan' ? c.operation === 'Scan' : c.service === 'stytch'),
              'after',
            );
            const sweeping = world.sweep(world.createContainer()).catch(() => undefined);
            sweepInvocation = world.invocations.at(-1)!.id; // invokeRaw records the invocation before its first await
            try {
              await Promise.race([gate.reached, sweeping]);
              attemptFailed = await secretsManagerAttempt();
            } finally {
              gate.release(); // also when the sweep ended before that read: the gate never matches again
              await sweeping;
            }
          });
          if (attemptFailed) createFailed = true;
          break;
        }
        case 'windowEnds':
          world.advance((options.graceSeconds ?? 0) * 1000 + 60_000);
          break;
        case 'fault':
          armed.push({
            target: action.target,
            skip: action.skip,
            times: action.times,
            fault: { when: action.when, error: action.failure },
            crash: false,
          });
          break;
        case 'crash':
          armed.push({
            target: action.target,
            operation: action.operation,
            skip: action.skip,
            times: 1,
            fault: { when: 'after', error: action.target === 'stytch' ? 'drop' : 'NetworkError' },
            crash: true,
          });
          break;
        case 'outside': {
          const acceptedBefore = currentAccepted(world);
          const token = latest();
          if (token !== undefined && action.what !== 'coldStart') interfered.add(token);
          if (action.what.startsWith('put')) putOutside = true;
          const next4 = world.stytchState().nextClientSecretLast4;
          if (action.what === 'dashboardRotate' && next4 !== null && unheldNextSecret(world)) madeCurrentOutside.add(next4);
          await outside(world, action.what, outsideSecrets, project, hijack);
          if (['dashboardCancel', 'dashboardStart', 'dashboardRotate'].includes(action.what)) stytchTouchedOutside = true;
          if (['dashboardStart', 'removePending', 'putCurrentCopy', 'putCurrentAccepted', 'putCurrentRejected', 'putCurrentOtherClient'].includes(action.what)) {
            orphanExcused = true;
          }
          if (acceptedBefore && !currentAccepted(world) && !MAY_BREAK_I.has(action.what)) {
            fail(`test model: ${action.what} broke I although it is not expected to`);
          }
          break;
        }
      }

      // ---- II at quiescent points
      if (createFailed) orphanExcused = true;
      const newStarts = deliveredRotateStarts(world, startsBefore);
      if (!createFailed && newStarts.length > 0) orphanExcused = false;
      if (world.stytchState().nextClientSecretLast4 === null) orphanExcused = false;
      if (!orphanExcused) {
        const unheld = unheldNextSecret(world);
        if (unheld) fail(`II: ${unheld}`);
      }
      if (!windowed && !putOutside && !madeCurrentOutside.has(world.stytchState().clientSecretLast4 ?? '')) {
        const unheld = unheldCurrentSecret(world);
        if (unheld) fail(`II: ${unheld}`);
      }

      // ---- IV: a rotation nothing outside touched is never abandoned
      for (const [token, wasPending] of pendingBefore) {
        const stages = stagesOf(token);
        if (wasPending && !stages.includes('AWSPENDING') && !stages.includes('AWSCURRENT') && !interfered.has(token)) {
          fail(`IV: the rotation ${token} was abandoned (AWSPENDING removed) although nothing outside the function touched it`);
          interfered.add(token); // report it once
        }
      }

      // ---- III with a window: a recorded retirement that is not due yet means the previous secret still works
      if (windowed && !stytchTouchedOutside) {
        const item = await world.stateItem();
        const dueAt = Number((item?.retire_due as { N?: string } | undefined)?.N ?? NaN);
        const previous4 = (item?.retire_previous_last4 as { S?: string } | undefined)?.S;
        const state = world.stytchState();
        // A newer rotation's createSecret retires it early (Stytch holds one next secret): allowed.
        const newer = tokens.some((t) => t !== (item?.retire_version as { S?: string } | undefined)?.S && world.invocations.some((i) => i.token === t && i.step === 'createSecret'));
        if (!newer && dueAt > world.clock.now() && previous4 && state.clientSecretLast4 !== previous4 && state.nextClientSecretLast4 !== previous4) {
          fail(`III: the previous secret (…${previous4}) was retired before its window ended, with no newer rotation under way`);
        }
      }
      watchWindow('after the action', action.t !== 'outside');
      // III: the previous secret the function left accepted is remembered until it is retired (otherwise no sweep
      // retires it), and due no earlier than its window's end (otherwise a sweep retires it early).
      if (open && !stytchTouchedOutside && world.stytch.isAccepted(world.client.client_id, open.previous)) {
        const movedTo = open.movedTo;
        const newer = world.invocations.slice(open.invocationsFrom).some((i) => i.step === 'createSecret' && i.token !== movedTo);
        const item = await world.stateItem();
        const recorded = (item?.retire_previous_last4 as { S?: string } | undefined)?.S;
        const dueAt = Number((item?.retire_due as { N?: string } | undefined)?.N ?? NaN);
        const where = `the secret AWSCURRENT held before the last rotation (…${last4(open.previous)})`;
        if (!newer && recorded !== last4(open.previous)) {
          fail(`III: ${where} is still accepted, but no retirement is recorded for it: no sweep will retire it`);
          open = undefined; // report once
        } else if (!newer && dueAt < open.until) {
          fail(`III: ${where} is recorded for retirement ${Math.round((open.until - dueAt) / 1000)} s before its overlap window ends`);
          open = undefined;
        }
      }
      checkVII();

      // ---- III after a completed rotation of the latest token
      const token = latest();
      if (!windowed && token !== undefined && !interfered.has(token) && action.t !== 'outside' && action.t !== 'fault' && action.t !== 'crash') {
        const completed = world.sm.rotationHistory(world.secretArn).some((r) => r.token === token && r.outcome === 'succeeded');
        const finishOk = thisStep?.step === 'finishSecret' && thisStep.ok && thisStep.token === token;
        if ((completed || finishOk) && stagesOf(token).includes('AWSCURRENT')) {
          const previous = world.versionWith('AWSPREVIOUS')?.value?.client_secret;
          if (world.stytchState().nextClientSecretLast4 !== null) fail(`III: rotation ${token} completed but Stytch still has a rotation in progress`);
          if (typeof previous === 'string' && previous !== currentVersion(world).secret && world.stytch.isAccepted(world.client.client_id, previous)) {
            fail(`III: rotation ${token} completed but Stytch still accepts the previous secret`);
          }
        }
      }
      previousStep = thisStep;
    }

    // ---- the end: faults clear, Secrets Manager settles the rotation under way, then one clean rotation
    label = 'end';
    armed = [];
    crashed.clear();
    world.interceptor = undefined;
    // The operator finishes replacing the project secret, if they had started.
    if (!project.stored) await storeProjectSecret(world, project);
    // The operator puts back a value that named another client (every step refused it meanwhile).
    if (hijack.restore !== undefined && currentClientId(world) !== world.client.client_id) {
      await world.sm.handle('PutSecretValue', { SecretId: world.secretArn, ClientRequestToken: randomUUID(), SecretString: hijack.restore });
      watchWindow('end', false);
    }
    // A copy of AWSCURRENT left under AWSPENDING (a manual put while a label lingered) is refused
    // by every step, never rotated as if it were new: the operator removes the label, as the error says.
    const stale = pendingToken(world);
    if (stale !== undefined && secretOfVersion(world, stale) === currentVersion(world).secret) {
      interfered.add(stale);
      await world.sm.handle('UpdateSecretVersionStage', { SecretId: world.secretArn, VersionStage: 'AWSPENDING', RemoveFromVersionId: stale });
    }
    const token = latest();
    const wasPending = token !== undefined && pendingToken(world) === token;
    if (pendingToken(world) !== undefined) {
      guard = { acceptedBefore: currentAccepted(world), currentId: currentVersion(world).id };
      const settled = await settle(world, { token: pendingToken(world)!, attempts: [], outcome: 'failed' });
      guard = undefined;
      if (wasPending && !interfered.has(token!) && !stagesOf(token!).includes('AWSCURRENT')) {
        const history = world.sm.rotationHistory(world.secretArn).find((r) => r.token === token);
        fail(`IV: Secrets Manager's reattempts did not complete rotation ${token} (nothing outside touched it): ${history ? describeRecord(history) : 'no attempt'}`);
      }
      if (settled.record.outcome !== 'succeeded') fail(`IV: rotations still failing after the faults cleared: ${describeRecord(settled.record)}`);
    }
    // IV: a rotation that met no fault and nothing outside needed exactly one accepted rotate/start.
    for (const t of tokens) {
      if (interfered.has(t) || world.externalCalls.some((c) => c.token === t && c.fault)) continue;
      const starts = deliveredRotateStarts(world, 0, t).length;
      if (starts > 1) fail(`IV: rotation ${t} met no fault and nothing outside, yet had ${starts} accepted rotate/start calls`);
    }

    if (pendingToken(world) !== undefined) {
      fail('IV: a rotation is still pending (stuck AWSPENDING) after the reattempts: no new rotation can start');
      return;
    }
    const previous = currentVersion(world).secret;
    // A wrong value put outside was never accepted: the window cannot keep it working.
    const previousAccepted = currentAccepted(world);
    const from = world.externalCalls.length;
    guard = { acceptedBefore: previousAccepted, currentId: currentVersion(world).id };
    const clean = await rotateSecret(world);
    guard = undefined;
    if (clean.outcome !== 'succeeded' || clean.attempts.length !== 1) fail(`the final clean rotation did not succeed at once: ${describeRecord(clean)}`);
    if (!currentAccepted(world)) fail('I: AWSCURRENT is not accepted after the final clean rotation');
    if (windowed) {
      // I for apps that cached it: the previous secret works through the window; III: a sweep after it retires it.
      if (previousAccepted && !world.stytch.isAccepted(world.client.client_id, previous)) {
        fail('I: the secret before the final clean rotation was rejected inside its overlap window');
      }
      world.advance((options.graceSeconds ?? 0) * 1000 + 60_000);
      await world.sweep().catch((error: unknown) => fail(`III: the sweep after the window failed: ${(error as Error).message}`));
      if (!currentAccepted(world)) fail('I: AWSCURRENT is not accepted after the sweep');
    }
    if (world.stytch.isAccepted(world.client.client_id, previous) && previous !== currentVersion(world).secret) {
      fail(`III: the secret before the final clean rotation is still accepted${windowed ? ' after its window and a sweep' : ''}`);
    }
    if (world.stytchState().nextClientSecretLast4 !== null) fail('III: Stytch still has a rotation in progress after the final clean rotation');
    const starts = deliveredRotateStarts(world, from).length;
    if (starts !== 1) fail(`IV: the final clean rotation needed ${starts} accepted rotate/start calls`);
  }

  checkVII();
  label = 'leak scan';
  const leaks = world.leaks(outsideSecrets);
  if (leaks.length > 0) fail(`V: ${leaks.length} secret value(s) found in output or errors`);
  return { violations, metrics: world.metricCounts(), invocations: world.invocations.length };
}

/** Another client of the same project, and the value AWSCURRENT held before it was pointed at it. */
interface Hijack {
  other?: { client_id: string; client_secret: string };
  restore?: string;
}

function currentClientId(world: World): unknown {
  return (JSON.parse(world.snapshot().versions[currentVersion(world).id]!.secretString!) as { client_id?: unknown }).client_id;
}

function secretOfVersion(world: World, versionId: string): string | undefined {
  const text = world.snapshot().versions[versionId]?.secretString;
  if (text === undefined) return undefined;
  return (JSON.parse(text) as { client_secret?: string }).client_secret;
}

/** Someone acting outside the function: in the Stytch dashboard, with the AWS CLI, or Lambda recycling containers. */
async function outside(world: World, what: OutsideAction, created: string[], project: { secret: string; stored: boolean }, hijack: Hijack): Promise<void> {
  const clientId = world.client.client_id;
  const attempt = (run: () => void) => {
    try {
      run();
    } catch {
      // The dashboard refuses (not rotating, already rotating): nothing happened.
    }
  };
  switch (what) {
    case 'dashboardCancel':
      return attempt(() => world.stytch.adminRotateCancel(clientId));
    case 'dashboardStart':
      return attempt(() => void created.push(world.stytch.adminRotateStart(clientId)));
    case 'dashboardRotate':
      return attempt(() => world.stytch.adminRotate(clientId));
    case 'removePending': {
      const pending = world.versionWith('AWSPENDING');
      if (!pending) return;
      await world.sm.handle('UpdateSecretVersionStage', { SecretId: world.secretArn, VersionStage: 'AWSPENDING', RemoveFromVersionId: pending.id });
      return;
    }
    case 'putCurrentCopy': {
      const text = world.snapshot().versions[currentVersion(world).id]!.secretString!;
      await world.sm.handle('PutSecretValue', { SecretId: world.secretArn, ClientRequestToken: randomUUID(), SecretString: text });
      return;
    }
    case 'putCurrentAccepted': {
      // A secret Stytch accepts that is not the current one (say, copied from the dashboard or from AWSPENDING).
      const current = currentVersion(world).secret;
      const candidates = [...world.mintedSecrets, ...created, world.client.client_secret].filter(
        (s) => s !== current && world.stytch.isAccepted(clientId, s),
      );
      const chosen = candidates.at(-1);
      if (chosen === undefined) return;
      const value = JSON.parse(world.snapshot().versions[currentVersion(world).id]!.secretString!) as Record<string, unknown>;
      await world.sm.handle('PutSecretValue', {
        SecretId: world.secretArn,
        ClientRequestToken: randomUUID(),
        SecretString: JSON.stringify({ ...value, client_secret: chosen }),
      });
      return;
    }
    case 'putCurrentRejected': {
      // A typo, or a secret from another environment: consumers break at once.
      const value = JSON.parse(world.snapshot().versions[currentVersion(world).id]!.secretString!) as Record<string, unknown>;
      const wrong = `wrong-${randomUUID()}`;
      created.push(wrong);
      await world.sm.handle('PutSecretValue', {
        SecretId: world.secretArn,
        ClientRequestToken: randomUUID(),
        SecretString: JSON.stringify({ ...value, client_secret: wrong }),
      });
      return;
    }
    case 'projectSecretRotated':
      // Replaced in the Stytch dashboard; Secrets Manager still holds the old one until projectSecretStored.
      project.secret = world.stytch.rotateProjectSecret(world.project.projectId).secret;
      project.stored = false;
      created.push(project.secret);
      return;
    case 'projectSecretStored':
      await storeProjectSecret(world, project);
      return;
    case 'coldStart':
      world.newContainer();
      return;
    case 'putCurrentOtherClient': {
      // Whoever can write the secret's value tries to move the function onto another client of the
      // project (its real secret, so Stytch would accept it): VII refuses every step and sweep.
      if (!hijack.other) {
        const made =
          world.stytchState().kind === 'm2m' ? world.stytch.createM2MClient(world.project.projectId) : world.stytch.createConnectedApp(world.project.projectId);
        hijack.other = { client_id: made.client_id, client_secret: made.client_secret! };
        created.push(made.client_secret!);
      }
      const text = world.snapshot().versions[currentVersion(world).id]!.secretString!;
      if (currentClientId(world) === clientId) hijack.restore = text;
      const value = JSON.parse(text) as Record<string, unknown>;
      await world.sm.handle('PutSecretValue', {
        SecretId: world.secretArn,
        ClientRequestToken: randomUUID(),
        SecretString: JSON.stringify({ ...value, ...hijack.other }),
      });
      return;
    }
  }
}

export async function storeProjectSecret(world: World, project: { secret: string; stored: boolean }): Promise<void> {
  await world.sm.handle('PutSecretValue', {
    SecretId: CREDENTIALS_SECRET,
    ClientRequestToken: randomUUID(),
    SecretString: JSON.stringify({ project_id: world.project.projectId, secret: project.secret }),
  });
  project.stored = true;
}

export { STEPS, last4 };
