/**
 * One case of the fault matrix (see fault-matrix.test.ts): a rotation with one
 * call failed, Secrets Manager's reattempts after the fault cleared, then a
 * clean rotation, with I checked at every call and invocation and II-V at the
 * end. Returns the violations instead of throwing, so a caller can run many.
 */
import { type CallFault, type ExternalCall, type SecretsManagerFailure, type StytchFailure, World, type WorldOptions } from '../../helpers/world.js';
import {
  currentAccepted,
  currentVersion,
  deliveredRotateStarts,
  describeRecord,
  pendingToken,
  rotateSecret,
  settle,
  unheldNextSecret,
} from './invariants.js';

export const MODES = ['before', 'after', 'crash', 'exhaust'] as const;
export type Mode = (typeof MODES)[number];
export const SM_FAILURES: SecretsManagerFailure[] = ['InternalServiceError', 'ThrottlingException', 'NetworkError'];
export const STYTCH_FAILURES: StytchFailure[] = [500, 503, 429, 'drop'];
export const TRANSPORTS = ['mock', 'sdk'] as const;
export type Transport = (typeof TRANSPORTS)[number];

/** An overlap window for the matrix run with one: the sweep that ends it is part of the recording. */
export const MATRIX_WINDOW_S = 3600;

async function coldWorld(transport: Transport, createHandler?: WorldOptions['createHandler'], graceSeconds = 0): Promise<World> {
  const world = await new World({
    smTransport: transport,
    rotationTokens: true,
    maxAttempts: 3,
    env: { PREVIOUS_SECRET_GRACE_SECONDS: String(graceSeconds) },
    ...(createHandler ? { createHandler } : {}),
  }).init();
  // init() ran the configuration test in the first container; the matrix starts cold.
  world.newContainer();
  return world;
}

/** The ordered external calls of a clean rotation from a cold container (with a window: and the sweep after it). */
export async function recordCleanRotation(transport: Transport, createHandler?: WorldOptions['createHandler'], graceSeconds = 0): Promise<ExternalCall[]> {
  const world = await coldWorld(transport, createHandler, graceSeconds);
  const from = world.externalCalls.length;
  const record = await world.capturing(async () => {
    const done = await rotateSecret(world);
    if (graceSeconds > 0) {
      world.advance(graceSeconds * 1000 + 60_000);
      await world.sweep();
    }
    return done;
  });
  if (record.outcome !== 'succeeded' || record.attempts.length !== 1) throw new Error(`the clean rotation failed: ${describeRecord(record)}`);
  return world.externalCalls.slice(from);
}

/** The schedule's next sweeps after a window: a failed sweep is tried again by the next one. */
async function sweepsAfterWindow(world: World, graceSeconds: number, violations: string[], what: string): Promise<void> {
  world.advance(graceSeconds * 1000 + 60_000);
  for (let i = 0; i < 3; i++) {
    try {
      await world.sweep();
      return;
    } catch {
      world.advance(5 * 60_000);
    }
  }
  violations.push(`III: three sweeps after the window of ${what} all failed`);
}

/** Where the armed fault stands: whether it fired, and which invocation it killed (crash). */
export interface ArmedFault {
  fired: boolean;
  crashed: number | undefined;
}

/**
 * Sets the World's interceptor to fail call k (counted from now) of the run, as the recording
 * saw it, in the given mode: a drift from the recording is a violation (the case would not test
 * what it says). A crash fails every later call of that invocation too; exhaust fails the call's
 * own retries until another call comes.
 */
export function armFault(
  world: World,
  recording: readonly ExternalCall[],
  k: number,
  mode: Mode,
  failure: SecretsManagerFailure | StytchFailure,
  violations: string[],
): ArmedFault {
  const base = world.externalCalls.length;
  const expected = recording[k]!;
  const state: ArmedFault = { fired: false, crashed: undefined };
  let exhausting: { invocation: number | undefined; operation: string } | undefined;
  world.interceptor = (call): CallFault | undefined => {
    if (state.crashed !== undefined && call.invocation === state.crashed) {
      return { when: 'before', error: call.service === 'stytch' ? 'drop' : 'NetworkError' };
    }
    if (exhausting && call.invocation === exhausting.invocation) {
      // The client's own retries of the failed call fail too; the first other call ends the outage.
      if (call.operation === exhausting.operation) return { when: 'before', error: failure };
      exhausting = undefined;
    }
    if (state.fired || call.index - base !== k) return undefined;
    state.fired = true;
    if (call.operation !== expected.operation || call.step !== expected.step) {
      violations.push(`the run drifted from the recording: call ${k} is ${call.step}/${call.operation}, recorded ${expected.step}/${expected.operation}`);
    }
    if (mode === 'crash') {
      state.crashed = call.invocation;
      return { when: 'after', error: failure };
    }
    if (mode === 'exhaust') {
      exhausting = { invocation: call.invocation, operation: call.operation };
      return { when: 'before', error: failure };
    }
    return { when: mode, error: failure };
  };
  return state;
}

export interface CaseResult {
  violations: string[];
  metrics: Record<string, number>;
  originalCompleted: boolean;
}

export async function runMatrixCase(
  recording: readonly ExternalCall[],
  transport: Transport,
  k: number,
  mode: Mode,
  failure: SecretsManagerFailure | StytchFailure,
  createHandler?: WorldOptions['createHandler'],
  graceSeconds = 0,
): Promise<CaseResult> {
  const world = await coldWorld(transport, createHandler, graceSeconds);
  const violations: string[] = [];
  const base = world.externalCalls.length;
  const fault = armFault(world, recording, k, mode, failure, violations);
  // I at every instant: the function's effects happen only through these calls.
  world.onCall = (call) => {
    if (!currentAccepted(world)) violations.push(`I: AWSCURRENT not accepted by Stytch after call ${call.index - base} (${call.step}/${call.operation})`);
  };
  world.onInvocation = (invocation) => {
    if (!currentAccepted(world)) violations.push(`I: AWSCURRENT not accepted by Stytch after ${invocation.step} (invocation ${invocation.id})`);
    // II: only a crash may leave a next secret behind that Secrets Manager does not hold (the next attempt repairs it).
    const unheld = invocation.id === fault.crashed ? undefined : unheldNextSecret(world);
    if (unheld) violations.push(`II: ${invocation.step} ended (${invocation.error ? 'failed' : 'succeeded'}) leaving a next secret behind: ${unheld}`);
    // A Lambda that died leaves no container behind.
    if (invocation.id === fault.crashed) world.newContainer();
  };

  await world.capturing(async () => {
    try {
      await play();
    } catch (error) {
      violations.push(`the case could not go on: ${(error as Error).message}`);
    }
  });

  async function play(): Promise<void> {
    const first = await rotateSecret(world);
    // With a window the recording ends with the sweep after it: the fault may be there.
    if (graceSeconds > 0 && first.outcome === 'succeeded') await sweepsAfterWindow(world, graceSeconds, violations, 'the faulted rotation');
    if (!fault.fired) violations.push(`the fault at call ${k} never fired`);
    const settled = await settle(world, first);
    if (settled.record.outcome !== 'succeeded') {
      violations.push(`IV: still no successful rotation after the faulted one and ${settled.reattempts} reattempts, ${settled.fresh} fresh: ${describeRecord(settled.record)}`);
    }
    const unheld = unheldNextSecret(world);
    if (unheld) violations.push(`II after settling: ${unheld}`);
    if (pendingToken(world) !== undefined) {
      violations.push('IV: a rotation is still pending (stuck AWSPENDING): no new rotation can start');
      return;
    }

    // One clean rotation.
    const previous = currentVersion(world).secret;
    const from = world.externalCalls.length;
    const clean = await rotateSecret(world);
    if (clean.outcome !== 'succeeded' || clean.attempts.length !== 1) violations.push(`the final clean rotation did not succeed at once: ${describeRecord(clean)}`);
    if (graceSeconds > 0) {
      // I for apps that cached it: the previous secret works through its window, until a sweep after it.
      if (!world.stytch.isAccepted(world.client.client_id, previous)) violations.push('I: the secret before the final rotation was rejected inside its window');
      await sweepsAfterWindow(world, graceSeconds, violations, 'the final rotation');
      if (!currentAccepted(world)) violations.push('I: AWSCURRENT is not accepted after the sweep');
    }
    if (world.stytch.isAccepted(world.client.client_id, previous)) violations.push('III: the secret before the final rotation is still accepted by Stytch');
    if (world.stytchState().nextClientSecretLast4 !== null) violations.push('III: Stytch still has a rotation in progress after the final rotation');
    const starts = deliveredRotateStarts(world, from).length;
    if (starts !== 1) violations.push(`IV: the final clean rotation needed ${starts} accepted rotate/start calls`);
  }
  const leaks = world.leaks();
  if (leaks.length > 0) violations.push(`V: ${leaks.length} secret value(s) found in output or errors`);
  const history = world.sm.rotationHistory(world.secretArn);
  const originalCompleted = history.length >= 2 && history[1]!.outcome === 'succeeded';
  return { violations, metrics: world.metricCounts(), originalCompleted };
}

