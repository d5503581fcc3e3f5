/**
 * The random actions the property and mutation suites draw from (fast-check
 * arbitraries over scenario.ts's Action), defined once so both suites explore
 * the same space.
 */
import fc from 'fast-check';
import { STEPS } from '../../helpers/world.js';
import type { Action, OutsideAction } from './scenario.js';

type Weighted = fc.WeightedArbitrary<Action>;

const step = fc.constantFrom(...STEPS);

/** Driving the rotation: mostly its next step, so rotations get far and outside actions land between any two steps. */
export const rotationActions: Weighted[] = [
  { weight: 8, arbitrary: fc.constant({ t: 'next' as const }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('step' as const), step, of: fc.constantFrom('latest' as const, 'latest' as const, 'latest' as const, 'previous' as const) }) },
  { weight: 3, arbitrary: fc.constant({ t: 'attempt' as const }) },
  { weight: 2, arbitrary: fc.constant({ t: 'begin' as const }) },
];

export const stytchFault: Weighted = {
  weight: 2,
  arbitrary: fc.record({
    t: fc.constant('fault' as const),
    target: fc.constant('stytch' as const),
    skip: fc.nat(4),
    // Up to more than the client's own attempts (STYTCH_MAX_ATTEMPTS), so some failures reach the function.
    times: fc.integer({ min: 1, max: 8 }),
    when: fc.constantFrom('before' as const, 'after' as const),
    failure: fc.constantFrom(500 as const, 502 as const, 503 as const, 504 as const, 429 as const, 'drop' as const),
  }),
};

/**
 * Stytch refusing a request (a definitive failure: the failure policy cancels the rotation), typically
 * after an outside action changed Stytch's state (a dashboard rotate or cancel): the pairing that
 * exercises the failure policy's own guards.
 */
export const stytchDefinitiveFault: Weighted = {
  weight: 2,
  arbitrary: fc.record({
    t: fc.constant('fault' as const),
    target: fc.constant('stytch' as const),
    skip: fc.nat(3),
    times: fc.constant(1),
    when: fc.constant('before' as const),
    failure: fc.constantFrom(400 as const, 403 as const, 404 as const),
  }),
};

export const secretsManagerFault: Weighted = {
  weight: 2,
  arbitrary: fc.record({
    t: fc.constant('fault' as const),
    target: fc.constant('secretsmanager' as const),
    skip: fc.nat(4),
    times: fc.integer({ min: 1, max: 2 }),
    when: fc.constantFrom('before' as const, 'after' as const),
    failure: fc.constantFrom('InternalServiceError' as const, 'ThrottlingException' as const, 'NetworkError' as const),
  }),
};

/** The state table failing: a lease not taken (the step fails, transient) or not given back (it expires). */
export const stateTableFault: Weighted = {
  weight: 1,
  arbitrary: fc.record({
    t: fc.constant('fault' as const),
    target: fc.constant('dynamodb' as const),
    skip: fc.nat(4),
    times: fc.integer({ min: 1, max: 2 }),
    when: fc.constantFrom('before' as const, 'after' as const),
    failure: fc.constantFrom('InternalServiceError' as const, 'ThrottlingException' as const, 'NetworkError' as const),
  }),
};

export const crash: Weighted = {
  weight: 1,
  arbitrary: fc.record({
    t: fc.constant('crash' as const),
    target: fc.constantFrom('stytch' as const, 'secretsmanager' as const, 'dynamodb' as const),
    skip: fc.nat(6),
  }),
};

/**
 * The Lambda dies right after a call that changes state took effect: AWSCURRENT moved, the pending
 * value stored, the lease taken or given back. Where a step's own record of what it did matters.
 */
export const crashAfterChange: Weighted = {
  weight: 1,
  arbitrary: fc.oneof(
    fc.record({
      t: fc.constant('crash' as const),
      target: fc.constant('secretsmanager' as const),
      skip: fc.constant(0),
      operation: fc.constantFrom('UpdateSecretVersionStage', 'PutSecretValue'),
    }),
    fc.record({ t: fc.constant('crash' as const), target: fc.constant('dynamodb' as const), skip: fc.nat(1), operation: fc.constant('UpdateItem') }),
  ),
};

/** With an overlap window: the schedule's sweeps, and time passing until windows end. */
export const windowActions: Weighted[] = [
  { weight: 3, arbitrary: fc.constant({ t: 'sweep' as const }) },
  { weight: 2, arbitrary: fc.constant({ t: 'windowEnds' as const }) },
];

export const concurrentAction: Weighted = { weight: 4, arbitrary: fc.record({ t: fc.constant('concurrent' as const), step }) };

export const ALL_OUTSIDE: OutsideAction[] = [
  'dashboardCancel',
  'dashboardStart',
  'dashboardRotate',
  'removePending',
  'putCurrentCopy',
  'putCurrentAccepted',
  'putCurrentRejected',
  'projectSecretRotated',
  'projectSecretStored',
  'coldStart',
];

export function outsideActions(whats: OutsideAction[] = ALL_OUTSIDE): Weighted {
  return { weight: 4, arbitrary: fc.record({ t: fc.constant('outside' as const), what: fc.constantFrom(...whats) }) };
}

/** With an overlap window: a sweep that read the due retirements, or Stytch's state, just before a whole rotation attempt ran. */
export const sweepRaceAction: Weighted = {
  weight: 2,
  arbitrary: fc.record({ t: fc.constant('sweepRace' as const), at: fc.constantFrom('scan' as const, 'stytch' as const) }),
};

/** Two invocations of one step at once, the first one's first Stytch answer late until the second has ended. */
export const slowConcurrentAction: Weighted = { weight: 4, arbitrary: fc.record({ t: fc.constant('concurrent' as const), step, slowFirst: fc.constant(true) }) };
