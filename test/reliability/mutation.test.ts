import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorldOptions } from '../helpers/world.js';
import { MATRIX_WINDOW_S, MODES, recordCleanRotation, runMatrixCase, SM_FAILURES, STYTCH_FAILURES } from './support/matrix.js';
import {
  concurrentAction,
  crash,
  crashAfterChange,
  outsideActions,
  rotationActions,
  secretsManagerFault,
  slowConcurrentAction,
  stytchFault,
  sweepRaceAction,
  windowActions,
} from './support/actions.js';
import { type Action, runScenario } from './support/scenario.js';

/**
 * Mutation testing of the reliability suites, part of every run (about a
 * minute and a half on its own on two cores; RELIABILITY_MUTANTS=0 skips the
 * runs locally, never the check that every mutant still applies). Each mutant
 * is a copy of functions/ with one deliberate regression, applied by exact
 * search and replace; the suites it names (a reduced fault matrix, short
 * property runs) must find a violated invariant in it. It shows the suites
 * would catch such a regression, not only that the function passes them
 * today. A search text that is not found exactly once fails the suite, naming
 * the mutant: the code moved, and the mutant must be rewritten against it so
 * it keeps expressing its regression.
 *
 * Where each mutant is hunted is part of its definition: the race of a lease
 * not taken has to show in the concurrent property run, a binding ignored in
 * the run where a value names another client, and so on. A mutant caught only
 * by some other, unrelated check would not show that the suites see the
 * regression itself. A property run's counterexample is replayed against the
 * function as it is, which must pass it: otherwise the hunt's own checks are
 * wrong and the catch proves nothing. (The fault matrix's cases are run
 * against the function as it is by fault-matrix.test.ts.)
 *
 * Mutants that cannot break an invariant are left out, with the reason:
 * - no read-back after a failed AWSCURRENT move: the failure is then transient
 *   or refused by cancelRotation's own check, and the reattempt completes;
 * - cancelRotation without its "already AWSCURRENT" check: unreachable while
 *   the read-back above exists (defence in depth);
 * - createSecret resuming a pending secret Stytch no longer holds: setSecret's
 *   check clears it one step later;
 * - no cancel when PutSecretValue failed and the value did not land: II only
 *   asks the next attempt to repair it, which it does (the fault matrix's
 *   per-invocation II check catches it anyway, so it is kept below);
 * - a lease whose write lost its answer not given back at once: it expires on
 *   its own (the invocation's deadline plus the margin) and a reattempt after
 *   that completes the rotation; only latency suffers. (The property runs
 *   would report it: their reattempts come sooner than any lease expires.)
 */

interface Edit {
  /** Under functions/. */
  file: string;
  search: string;
  replace: string;
}

type Hunt =
  | 'matrix'
  | 'window matrix'
  | 'properties'
  | 'concurrent properties'
  | 'binding properties'
  | 'window properties'
  | 'window outside properties';

interface Mutant {
  name: string;
  /** Applied together; each search text must be found exactly once in its file. */
  edits: Edit[];
  /** The suites that must find it, tried in order until one does. */
  hunts: Hunt[];
}

const ROTATION = 'rotate-stytch-secret/rotation.ts';
const SWEEP = 'rotate-stytch-secret/sweep.ts';
const HANDLER = 'rotate-stytch-secret/handler.ts';
const LEASE = 'lib/state/lease.ts';
const TABLE = 'lib/state/table.ts';
const FAILURE_POLICY: Hunt[] = ['matrix', 'properties'];

const MUTANTS: Mutant[] = [
  // ---- the failure policy
  {
    name: 'finishSecret completes at Stytch before moving AWSCURRENT',
    edits: [
      {
        file: ROTATION,
        search: '    verifyHeld(r, s, pend);\n    await moveCurrent(r);\n    return s;',
        replace: '    verifyHeld(r, s, pend);\n    if (s.nextSecretLast4 === last4(pend)) await stytch.rotate(r.clientId);\n    await moveCurrent(r);\n    return { ...s, nextSecretLast4: null };',
      },
    ],
    hunts: FAILURE_POLICY,
  },
  {
    name: 'startRotation cancels a next secret that is already AWSCURRENT',
    edits: [
      {
        file: ROTATION,
        search: "  if (state.nextSecretLast4 === last4(r.cur)) {\n    // AWSCURRENT is Stytch's next secret",
        replace: "  if (false) {\n    // AWSCURRENT is Stytch's next secret",
      },
    ],
    hunts: FAILURE_POLICY,
  },
  {
    name: 'the failure policy cancels on transient failures too',
    edits: [{ file: ROTATION, search: 'if (isTransient(error) || !r.pend) throw error;', replace: 'if (!r.pend) throw error;' }],
    hunts: FAILURE_POLICY,
  },
  {
    name: 'createSecret keeps a dead AWSPENDING',
    edits: [{ file: ROTATION, search: "    await removePending(r);\n    deps.metrics.count('DeadPendingCleared');", replace: "    deps.metrics.count('DeadPendingCleared');" }],
    hunts: FAILURE_POLICY,
  },
  {
    name: 'finishSecret on a version already AWSCURRENT cancels instead of completing',
    edits: [
      {
        file: ROTATION,
        search: "    await tolerateNotRotating(r.stytch, () => r.stytch.rotate(r.clientId));\n    r.deps.metrics.count('HalfDoneCompleted');",
        replace: "    await tolerateNotRotating(r.stytch, () => r.stytch.rotateCancel(r.clientId));\n    r.deps.metrics.count('HalfDoneCompleted');",
      },
    ],
    hunts: FAILURE_POLICY,
  },
  {
    name: 'finishSecret moves AWSCURRENT without checking that Stytch accepts it',
    edits: [{ file: ROTATION, search: '    verifyHeld(r, s, pend);\n    await moveCurrent(r);', replace: '    await moveCurrent(r);' }],
    hunts: FAILURE_POLICY,
  },
  {
    name: 'a retried createSecret mints a new secret',
    edits: [{ file: ROTATION, search: '  if (r.pend) {\n    const state = await stytch.get(r.clientId);', replace: '  if (r.pend && false) {\n    const state = await stytch.get(r.clientId);' }],
    hunts: FAILURE_POLICY,
  },
  {
    name: 'startRotation does not cancel an orphan',
    edits: [
      {
        file: ROTATION,
        search: "    await tolerateNotRotating(stytch, () => stytch.rotateCancel(r.clientId));\n    deps.metrics.count('OrphanRepaired');",
        replace: "    deps.metrics.count('OrphanRepaired');",
      },
    ],
    hunts: FAILURE_POLICY,
  },
  {
    name: 'finishSecret cancels when rotate fails after AWSCURRENT moved',
    edits: [
      {
        file: ROTATION,
        search: '      if (!stytch.isNotRotating(error)) {\n        deps.logger.error(',
        replace: '      if (!stytch.isNotRotating(error)) {\n        await stytch.rotateCancel(r.clientId).catch(() => undefined);\n        deps.logger.error(',
      },
    ],
    hunts: FAILURE_POLICY,
  },
  {
    name: 'createSecret leaves the next secret when PutSecretValue failed and nothing landed',
    edits: [{ file: ROTATION, search: 'if (landed === false) await cancelIfNext(', replace: 'if (false) await cancelIfNext(' }],
    hunts: FAILURE_POLICY,
  },

  // ---- V: no secret leaves the vault
  {
    name: 'finishSecret logs the new secret',
    edits: [
      {
        file: ROTATION,
        search: "deps.logger.info('Rotation complete: AWSCURRENT moved and the old secret retired at Stytch', { pendingLast4: last4(pend) });",
        replace: "deps.logger.info('Rotation complete: AWSCURRENT moved and the old secret retired at Stytch', { pendingLast4: pend.client_secret });",
      },
    ],
    hunts: FAILURE_POLICY,
  },
  {
    name: 'the handler logs the RotationToken',
    edits: [
      {
        file: HANDLER,
        search: 'logger.appendKeys({ step: step.Step, secretId: step.SecretId, clientRequestToken: step.ClientRequestToken });',
        replace: 'logger.appendKeys({ step: step.Step, secretId: step.SecretId, clientRequestToken: step.ClientRequestToken, rotationToken: step.RotationToken });',
      },
    ],
    hunts: FAILURE_POLICY,
  },

  // ---- VI: one mutator per client
  {
    name: 'no lease is taken: every caller goes ahead on a plain read of the table (acquire skipped)',
    edits: [
      {
        file: LEASE,
        search: '      result = await table.acquire({ ...request, now: clock.now() });',
        replace: "      result = { kind: 'acquired', previous: await table.readClient(request.binding), tookOverExpired: undefined, bound: false };",
      },
    ],
    hunts: ['concurrent properties'],
  },
  {
    name: 'the sweep retires without taking the lease (a plain read of the record)',
    edits: [
      {
        file: SWEEP,
        search: "    lease = await takeLease(\n      deps.state,\n      { binding, bind: false, holder: deps.lease.holder, what: 'retirement sweep', until: deps.lease.until },\n      { waitUntil: 0, clock: deps.lease.clock },\n    );",
        replace: '    lease = { previous: await deps.state.readClient(binding), release: async () => true } as unknown as HeldLease;',
      },
    ],
    hunts: ['window properties'],
  },

  // ---- VII: a rotation acts only on its bound client
  {
    name: 'the lease is taken without checking that the client is bound to this secret (tryTake without secret_arn = :arn)',
    edits: [
      {
        file: TABLE,
        search: '`secret_arn = :arn${kind} AND ${credentials}',
        // A clause that always holds, in its place.
        replace: '`attribute_not_exists(unchecked)${kind} AND ${credentials}',
      },
      // DynamoDB refuses a value no expression uses.
      {
        file: TABLE,
        search: "      ':arn': S(binding.secretArn),\n    };",
        replace: '    };',
      },
    ],
    hunts: ['binding properties'],
  },
  {
    name: 'the secret side of the binding is not compared with the value (assertSameBinding a no-op)',
    edits: [
      {
        file: TABLE,
        search: 'function assertSameBinding(bound: Binding, wanted: Binding): void {\n',
        replace: 'function assertSameBinding(bound: Binding, wanted: Binding): void {\n  return;\n',
      },
    ],
    hunts: ['binding properties'],
  },
  {
    name: 'the sweep acts on whatever client AWSCURRENT names, bound or not',
    edits: [
      {
        file: SWEEP,
        search: 'if (cur.client_id !== binding.clientId || cur.stytch_credentials_secret_id !== binding.credentialsSecretId || (await deps.projectOf(cur)) !== binding.projectId) {',
        replace: 'if (false) {',
      },
    ],
    hunts: ['window outside properties'],
  },

  // ---- III and I with an overlap window
  {
    name: "the sweep retires without checking that Stytch's next secret is AWSCURRENT's",
    edits: [{ file: SWEEP, search: 'if (N4 === last4(cur) && S4 === due.previousLast4) {', replace: 'if (S4 === due.previousLast4) {' }],
    hunts: ['window outside properties'],
  },
  {
    name: 'the sweep retires before the window ends (no due check under the lease)',
    edits: [{ file: SWEEP, search: "if (!now?.retirement || now.retirement.dueAt > deps.lease.clock.now()) return 'not-due';", replace: "if (!now?.retirement) return 'not-due';" }],
    hunts: ['window properties'],
  },
  {
    name: 'the sweep decides on the record its scan read, not the one under the lease',
    edits: [
      { file: SWEEP, search: 'outcome = await retireOne(binding, deps)', replace: 'outcome = await retireOne(binding, deps, retirement)' },
      { file: SWEEP, search: 'async function retireOne(binding: Binding, deps: SweepDeps): Promise<Outcome> {', replace: 'async function retireOne(binding: Binding, deps: SweepDeps, scanned?: Retirement): Promise<Outcome> {' },
      { file: SWEEP, search: '    const now = lease.previous;', replace: '    const now = lease.previous && { ...lease.previous, retirement: scanned };' },
    ],
    hunts: ['window properties'],
  },
  {
    name: 'finishSecret with a window retires the previous secret at once (no overlap)',
    edits: [{ file: ROTATION, search: 'if (state.nextSecretLast4 === last4(pend) && deps.graceSeconds > 0) {', replace: 'if (state.nextSecretLast4 === last4(pend) && false) {' }],
    hunts: ['window matrix'],
  },
  {
    name: 'createSecret inside a window cancels AWSCURRENT as an orphan instead of retiring the previous secret first',
    edits: [
      {
        file: ROTATION,
        search: "  if (state.nextSecretLast4 === last4(r.cur)) {\n    // AWSCURRENT is Stytch's next secret",
        replace: "  if (state.nextSecretLast4 === last4(r.cur) && !r.lease!.previous?.retirement) {\n    // AWSCURRENT is Stytch's next secret",
      },
    ],
    hunts: ['window properties'],
  },
  {
    name: 'finishSecret repeated after AWSCURRENT moved retires the previous secret at once (no overlap)',
    edits: [{ file: ROTATION, search: '  if (state.nextSecretLast4 === last4(r.cur) && r.deps.graceSeconds > 0) {', replace: '  if (state.nextSecretLast4 === last4(r.cur) && false) {' }],
    hunts: ['window properties'],
  },
  {
    name: 'the recorded window has no length (due as soon as AWSCURRENT moved)',
    edits: [{ file: ROTATION, search: '    dueAt: now + r.deps.graceSeconds * 1000,', replace: '    dueAt: now,' }],
    hunts: ['window properties'],
  },
  {
    name: "finishSecret's retirement intent is due at once",
    edits: [{ file: ROTATION, search: '    dueAt: r.deps.lease.until + r.deps.graceSeconds * 1000,', replace: '    dueAt: r.deps.lease.clock.now(),' }],
    hunts: ['window properties'],
  },
  {
    name: 'finishSecret does not write its retirement intent with the lease',
    edits: [
      {
        file: ROTATION,
        search: '        retirement: recordsIntent ? retirementIntent(r) : undefined,',
        replace: '        retirement: undefined,',
      },
    ],
    hunts: ['window properties'],
  },
];

// ---------------------------------------------------------------- the hunts

type CreateHandler = WorldOptions['createHandler'];

/** The fault matrix over the 'mock' transport, one failure kind per call; with a window, the sweep after it is part of the recording. */
async function matrix(createHandler: CreateHandler, graceSeconds: number): Promise<string | undefined> {
  let recording;
  try {
    recording = await recordCleanRotation('mock', createHandler, graceSeconds);
  } catch (error) {
    return (error as Error).message;
  }
  for (const mode of MODES) {
    for (let k = 0; k < recording.length; k++) {
      const failure = recording[k]!.service === 'stytch' ? STYTCH_FAILURES[0]! : SM_FAILURES[0]!;
      const { violations } = await runMatrixCase(recording, 'mock', k, mode, failure, createHandler, graceSeconds);
      if (violations.length > 0) return `${mode} at call ${k}: ${violations[0]}`;
    }
  }
  return undefined;
}

const sequences = (...arbitraries: Array<fc.WeightedArbitrary<Action>>): fc.Arbitrary<Action[]> => fc.array(fc.oneof(...arbitraries), { minLength: 1, maxLength: 10 });

const SEED = 7;
const PROPERTY_RUNS = 400;
/** The runs of each hunt the function as it is goes through (nearly every mutant is caught within them). */
const CONTROL_RUNS = 100;
const WINDOW_S = 3600;

interface PropertyHunt {
  actions: fc.Arbitrary<Action[]>;
  graceSeconds: number;
}

const PROPERTY_HUNTS: Record<Exclude<Hunt, 'matrix' | 'window matrix'>, PropertyHunt> = {
  properties: {
    actions: sequences(
      ...rotationActions,
      stytchFault,
      crash,
      outsideActions(['dashboardCancel', 'dashboardStart', 'dashboardRotate', 'removePending', 'putCurrentCopy', 'putCurrentAccepted', 'coldStart']),
    ),
    graceSeconds: 0,
  },
  // Two invocations of one step at once, one of them slow, among faults and crashes: where a missing lease shows.
  'concurrent properties': { actions: sequences(...rotationActions, stytchFault, crash, concurrentAction, slowConcurrentAction), graceSeconds: 0 },
  // A value that names another client of the project, among rotations: every step must refuse it before calling Stytch.
  'binding properties': { actions: sequences(...rotationActions, outsideActions(['putCurrentOtherClient'])), graceSeconds: 0 },
  // The function alone, inside the window of a completed rotation: faults, crashes (right after a change, too),
  // concurrent steps, sweeps, windows ending, a sweep racing a rotation.
  'window properties': {
    actions: sequences(
      ...rotationActions,
      stytchFault,
      secretsManagerFault,
      crash,
      { ...crashAfterChange, weight: 3 },
      concurrentAction,
      ...windowActions,
      { ...sweepRaceAction, weight: 4 },
    ).map((acts): Action[] => [{ t: 'attempt' }, ...acts]),
    graceSeconds: WINDOW_S,
  },
  // Inside the window of a completed rotation, AWSCURRENT changed outside (another accepted secret, a wrong one,
  // another client), then windows ending and sweeps: what the sweep must notice. Fewer new rotations, which would
  // retire the previous secret before any sweep looks.
  'window outside properties': {
    actions: sequences(
      { weight: 2, arbitrary: fc.constant({ t: 'next' as const }) },
      { weight: 1, arbitrary: fc.constant({ t: 'attempt' as const }) },
      { weight: 1, arbitrary: fc.constant({ t: 'begin' as const }) },
      ...windowActions,
      outsideActions(['removePending', 'putCurrentCopy', 'putCurrentAccepted', 'putCurrentRejected', 'putCurrentOtherClient']),
    ).map((acts): Action[] => [{ t: 'attempt' }, ...acts]),
    graceSeconds: WINDOW_S,
  },
};

interface Finding {
  violation: string;
  /** What the same counterexample gives against the function as it is: must be nothing, or the hunt's own checks are wrong. */
  control: string[];
}

/** A property hunt's runs; `createHandler` undefined: the function as it is (from source). */
function runHunt(hunt: PropertyHunt, createHandler: CreateHandler, numRuns: number) {
  return fc.check(
    fc.asyncProperty(hunt.actions, fc.boolean(), async (acts, rotationTokens) => {
      const { violations } = await runScenario(acts, { createHandler, rotationTokens, graceSeconds: hunt.graceSeconds });
      if (violations.length > 0) throw new Error(violations[0]);
    }),
    { seed: SEED, numRuns },
  );
}

async function property(createHandler: CreateHandler, hunt: PropertyHunt): Promise<Finding | undefined> {
  const result = await runHunt(hunt, createHandler, PROPERTY_RUNS);
  if (!result.failed || !result.counterexample) return undefined;
  const [acts, rotationTokens] = result.counterexample;
  // The unmutated function replays the shrunk counterexample: the violation must be the mutant's.
  const control = await runScenario(acts, { rotationTokens, graceSeconds: hunt.graceSeconds });
  return {
    violation: `${(result.errorInstance as Error).message.split('\n')[0]} in ${JSON.stringify(acts)} (run ${result.numRuns}, ${result.numShrinks} shrinks)`,
    control: control.violations,
  };
}

/**
 * The fault matrix's cases run against the function as it is in fault-matrix.test.ts (every mode, call and
 * failure kind, with and without a window): no control is needed here.
 */
async function hunt(name: Hunt, createHandler: CreateHandler): Promise<Finding | undefined> {
  switch (name) {
    case 'matrix':
    case 'window matrix': {
      const violation = await matrix(createHandler, name === 'matrix' ? 0 : MATRIX_WINDOW_S);
      return violation === undefined ? undefined : { violation, control: [] };
    }
    default:
      return await property(createHandler, PROPERTY_HUNTS[name]);
  }
}

// ---------------------------------------------------------------- applying a mutant

const occurrences = (text: string, search: string) => text.split(search).length - 1;

/** Every edit of the mutant whose search text is not found exactly once in today's source, as a message naming the mutant. */
function staleEdits(mutant: Mutant, root = resolve('functions')): string[] {
  return mutant.edits.flatMap((edit) => {
    const n = occurrences(readFileSync(join(root, edit.file), 'utf8'), edit.search);
    if (n === 1) return [];
    return [`mutant "${mutant.name}": its search text is found ${n} times in functions/${edit.file}, not once; rewrite it against today's source: ${JSON.stringify(edit.search)}`];
  });
}

const RUN_MUTANTS = process.env.RELIABILITY_MUTANTS !== '0';

describe('Mutation testing: every deliberate regression is caught by the reliability suites', () => {
  it('every mutant still applies: each search text is found exactly once in today\'s source', () => {
    expect(MUTANTS.flatMap((m) => staleEdits(m))).toEqual([]);
    expect(new Set(MUTANTS.map((m) => m.name)).size, 'mutant names are unique').toBe(MUTANTS.length);
  });

  describe.runIf(RUN_MUTANTS)('each mutant is caught', () => {
    let root = '';
    const timings: string[] = [];
    let started = 0;
    beforeAll(() => {
      started = performance.now();
      root = mkdtempSync(join(tmpdir(), 'rotation-mutants-'));
    });
    afterAll(() => {
      rmSync(root, { recursive: true, force: true });
      console.log(`mutation testing: the control runs and ${MUTANTS.length} mutants in ${((performance.now() - started) / 1000).toFixed(1)} s (${timings.join(', ')})`);
    });

    // The same seed, so these are the runs that catch the mutants: the hunts' actions and checks hold for
    // the function as it is in general, not only on each counterexample's replay.
    it(`the function as it is passes the first ${CONTROL_RUNS} runs of every property hunt`, async () => {
      for (const [name, h] of Object.entries(PROPERTY_HUNTS)) {
        const result = await runHunt(h, undefined, CONTROL_RUNS);
        expect(result.failed ? `${name}: ${String(result.errorInstance)} in ${JSON.stringify(result.counterexample)}` : undefined).toBeUndefined();
      }
    }, 300_000);

    MUTANTS.forEach((mutant, i) => {
      it(
        mutant.name,
        async () => {
          const t0 = performance.now();
          const dir = join(root, `m${i}`);
          cpSync(resolve('functions'), join(dir, 'functions'), { recursive: true });
          symlinkSync(resolve('node_modules'), join(dir, 'node_modules'));
          const stale = staleEdits(mutant, join(dir, 'functions'));
          expect(stale, `mutant "${mutant.name}" no longer applies`).toEqual([]);
          for (const edit of mutant.edits) {
            const file = join(dir, 'functions', edit.file);
            writeFileSync(file, readFileSync(file, 'utf8').replace(edit.search, () => edit.replace));
          }
          const { createHandler } = (await import(join(dir, 'functions/rotate-stytch-secret/handler.ts'))) as { createHandler: CreateHandler };

          let found: string | undefined;
          let control: string[] = [];
          for (const name of mutant.hunts) {
            const finding = await hunt(name, createHandler);
            if (finding !== undefined) {
              found = `${name}: ${finding.violation}`;
              control = finding.control;
              break;
            }
          }

          timings.push(`#${i} ${((performance.now() - t0) / 1000).toFixed(1)} s`);
          console.log(`mutant "${mutant.name}": ${found ?? `NOT DETECTED by ${mutant.hunts.join(', ')}`}`);
          expect(found, `mutant "${mutant.name}": no suite noticed this regression`).toBeDefined();
          expect(control, `mutant "${mutant.name}": its counterexample fails against the unmutated function too`).toEqual([]);
        },
        300_000,
      );
    });
  });
});
