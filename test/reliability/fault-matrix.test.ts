import { afterAll, describe, expect, it } from 'vitest';
import type { ExternalCall, SecretsManagerFailure, StytchFailure } from '../helpers/world.js';
import { type CaseResult, MATRIX_WINDOW_S, MODES, recordCleanRotation, runMatrixCase, SM_FAILURES, STYTCH_FAILURES, TRANSPORTS, type Transport } from './support/matrix.js';
import { PROJECT_WINDOW_S, recordProjectRotation, runProjectMatrixCase } from './support/project-matrix.js';

/**
 * The fault matrix: every external call of a clean rotation (all four steps,
 * from a cold container), failed in each of four ways and with each kind of
 * failure a real client would surface:
 *
 *   before  the call never reaches the service;
 *   after   the service applies it and the answer is lost;
 *   crash   the service applies it, then this and every later call of that
 *           invocation fail, as if the Lambda died (the next one runs in a new
 *           container). A crash just before call k is a crash after call k-1;
 *   exhaust the call and the client's own retries of it all fail before their
 *           effect (a service down for longer than the retries last), and the
 *           invocation goes on: the failure policy decides what to do.
 *
 * Secrets Manager failures: InternalServiceError, ThrottlingException and a
 * network error (ECONNRESET). Stytch failures: 503, 429 and a dropped
 * connection. Each case then lets Secrets Manager do what it does (its
 * emulator's driver): the in-window attempts with the same token, later
 * windows while AWSPENDING marks the rotation unfinished, a fresh rotation
 * once the function cleared AWSPENDING, and finally one clean rotation.
 *
 * Checked (support/matrix.ts): I after every single call and every
 * invocation; II after every invocation that did not crash, and once the
 * rotations have settled; III and IV on the final clean rotation; V on all
 * output and errors, RotationTokens included (the emulator sends one).
 *
 * Secrets Manager faults run over both transports of the World: 'mock', where
 * aws-sdk-client-mock stubs `send` so no SDK retry happens and every injected
 * error reaches the function (as after the SDK's retries ran out), and 'sdk',
 * the real SDK pipeline with the handler's retry configuration, where a lost
 * answer is retried by the SDK (a PutSecretValue replayed with the same
 * token, an UpdateSecretVersionStage replayed with a stale
 * RemoveFromVersionId). Stytch faults do not depend on the transport and run
 * over 'mock' only.
 *
 * The project API secret's rotation (DESIGN.md §4b) gets the same matrix over
 * its own calls (the management API's secrets.create|list|get|delete, the
 * probe, and the sweep that deletes the previous secret after the window),
 * with the invariants as they read for that kind: support/project-matrix.ts.
 */
const FAILURE_POLICY_OUTCOMES = ['RotationCancelled', 'RotationResumed', 'OrphanRepaired', 'HalfDoneCompleted'] as const;
/** What faults alone can make a project-secret rotation do (project-secret.ts). */
const PROJECT_OUTCOMES = ['RotationResumed', 'OrphanRepaired', 'OrphanProjectSecret', 'RotationCancelled', 'PreviousSecretRetired'] as const;

const recordings = Object.fromEntries(await Promise.all(TRANSPORTS.map(async (t) => [t, await recordCleanRotation(t)] as const))) as Record<
  Transport,
  ExternalCall[]
>;
/** With an hour's overlap window: the clean rotation, then the sweep after the window ('mock' transport). */
const windowed = await recordCleanRotation('mock', undefined, MATRIX_WINDOW_S);
/** A project API secret's rotation and the sweep that deletes its previous secret after the window ('mock' transport). */
const projectCalls = await recordProjectRotation();

const totals = { cases: 0, violations: 0, originalCompleted: 0, metrics: {} as Record<string, number> };
const projectTotals = { cases: 0, violations: 0, originalCompleted: 0, metrics: {} as Record<string, number>, ms: 0 };
const started = performance.now();

afterAll(() => {
  const calls = recordings.mock.length;
  const sdkCalls = recordings.sdk.filter((c) => c.service !== 'stytch').length;
  console.log(
    `fault matrix: ${MODES.length} modes (${MODES.join(', ')}) x ${calls} calls x 3 failure kinds = ${MODES.length * calls * 3} cases ('mock' transport) + ` +
      `${MODES.length} modes x ${sdkCalls} Secrets Manager and DynamoDB calls x 3 = ${MODES.length * sdkCalls * 3} cases ('sdk' transport) + ` +
      `${MODES.length} modes x ${windowed.length} calls x 3 = ${MODES.length * windowed.length * 3} cases with a ${MATRIX_WINDOW_S} s window and its sweep = ${totals.cases} cases, ` +
      `${totals.violations} violations (${totals.originalCompleted} resumed the faulted rotation itself, ${totals.cases - totals.originalCompleted} needed a fresh one) ` +
      `in ${((performance.now() - started) / 1000).toFixed(1)} s; failure-policy outcomes reached: ` +
      FAILURE_POLICY_OUTCOMES.map((m) => `${m} ${totals.metrics[m] ?? 0}`).join(', '),
  );
  console.log(
    `fault matrix, project secret: ${MODES.length} modes x ${projectCalls.length} calls x 3 or 4 failure kinds = ${projectTotals.cases} cases, ` +
      `${projectTotals.violations} violations (${projectTotals.originalCompleted} resumed the faulted rotation itself) in ${(projectTotals.ms / 1000).toFixed(1)} s; ` +
      'outcomes reached: ' +
      PROJECT_OUTCOMES.map((m) => `${m} ${projectTotals.metrics[m] ?? 0}`).join(', '),
  );
});

/** Runs one case per failure kind, adding to the totals; returns the violations, each tagged with its failure. */
async function runCases(
  failures: ReadonlyArray<SecretsManagerFailure | StytchFailure>,
  run: (failure: SecretsManagerFailure | StytchFailure) => Promise<CaseResult>,
  into: typeof totals = totals,
): Promise<string[]> {
  const violations: string[] = [];
  for (const failure of failures) {
    const result = await run(failure);
    into.cases++;
    into.violations += result.violations.length;
    if (result.originalCompleted) into.originalCompleted++;
    for (const [name, n] of Object.entries(result.metrics)) into.metrics[name] = (into.metrics[name] ?? 0) + n;
    violations.push(...result.violations.map((v) => `[${String(failure)}] ${v}`));
  }
  return violations;
}

describe('Fault matrix', () => {
  it('records the same external calls over both transports, with the calls that change state once each', () => {
    const shape = (calls: ExternalCall[]) => calls.map((c) => `${c.step}/${c.service}/${c.operation}`);
    expect(shape(recordings.sdk)).toEqual(shape(recordings.mock));
    const count = (suffix: string) => recordings.mock.filter((c) => c.operation.endsWith(suffix)).length;
    expect([count('.rotate_start'), count('PutSecretValue'), count('UpdateSecretVersionStage'), count('.rotate'), count('.rotate_cancel')]).toEqual([1, 1, 1, 1, 0]);
    expect(new Set(recordings.mock.map((c) => c.step))).toEqual(new Set(['createSecret', 'setSecret', 'testSecret', 'finishSecret']));
    console.log(`fault matrix: the clean rotation's calls: ${shape(recordings.mock).map((c, k) => `${k} ${c}`).join(', ')}`);
  });

  for (const transport of TRANSPORTS) {
    describe(`over the '${transport}' Secrets Manager transport`, () => {
      for (const mode of MODES) {
        recordings[transport].forEach((call, k) => {
          if (transport === 'sdk' && call.service === 'stytch') return;
          const failures = call.service === 'stytch' ? STYTCH_FAILURES : SM_FAILURES;
          it(`${mode} at call ${k} (${call.step} ${call.operation}) with ${failures.join(' | ')}: I-V hold`, async () => {
            expect(await runCases(failures, (failure) => runMatrixCase(recordings[transport], transport, k, mode, failure))).toEqual([]);
          });
        });
      }
    });
  }

  describe(`with a ${MATRIX_WINDOW_S} s overlap window, the sweep after it included ('mock' transport)`, () => {
    it('records the sweep after the window: one Stytch rotate, by the sweep, none by finishSecret', () => {
      const rotates = windowed.filter((c) => c.operation.endsWith('.rotate'));
      expect(rotates.map((c) => c.step)).toEqual([undefined]);
      expect(windowed.filter((c) => c.step === undefined).map((c) => `${c.service}/${c.operation}`)).toContain('stytch/connected_app.rotate');
    });
    for (const mode of MODES) {
      windowed.forEach((call, k) => {
        const failures = call.service === 'stytch' ? STYTCH_FAILURES : SM_FAILURES;
        it(`${mode} at call ${k} (${call.step ?? 'retirementSweep'} ${call.operation}) with ${failures.join(' | ')}: I-V hold, the window kept, then ended by a sweep`, async () => {
          expect(await runCases(failures, (failure) => runMatrixCase(windowed, 'mock', k, mode, failure, undefined, MATRIX_WINDOW_S))).toEqual([]);
        });
      });
    }
  });

  describe(`for a project API secret, with a ${PROJECT_WINDOW_S} s overlap window and the sweep that deletes the previous secret ('mock' transport)`, () => {
    it('records the management calls once each: one secrets.create, no delete until the sweep, which deletes the previous secret', () => {
      const ops = (step: string | undefined) => projectCalls.filter((c) => c.step === step && c.service === 'stytch').map((c) => c.operation);
      expect(ops('createSecret')).toContain('secrets.create');
      expect(projectCalls.filter((c) => c.operation === 'secrets.create')).toHaveLength(1);
      expect(ops('testSecret')).toEqual(['m2m.get']);
      expect(projectCalls.filter((c) => c.operation === 'secrets.delete').map((c) => c.step)).toEqual([undefined]);
      console.log(`fault matrix, project secret: the clean rotation's calls: ${projectCalls.map((c, k) => `${k} ${c.step ?? 'sweep'}/${c.service}/${c.operation}`).join(', ')}`);
    });
    for (const mode of MODES) {
      projectCalls.forEach((call, k) => {
        const failures = call.service === 'stytch' ? STYTCH_FAILURES : SM_FAILURES;
        it(`${mode} at call ${k} (${call.step ?? 'retirementSweep'} ${call.operation}) with ${failures.join(' | ')}: I, II, III, IV, V, VI, VII hold`, async () => {
          const started = performance.now();
          const violations = await runCases(failures, (failure) => runProjectMatrixCase(projectCalls, k, mode, failure), projectTotals);
          projectTotals.ms += performance.now() - started;
          expect(violations).toEqual([]);
        });
      });
    }
    it('reaches the project secret\'s repairs that faults alone can cause', () => {
      for (const outcome of PROJECT_OUTCOMES) expect(projectTotals.metrics[outcome] ?? 0, outcome).toBeGreaterThan(0);
    });
  });

  it('reaches every outcome of the failure policy that faults alone can cause', () => {
    // DeadPendingCleared needs an outside cancel: properties.test.ts and regressions.test.ts reach it.
    for (const outcome of FAILURE_POLICY_OUTCOMES) expect(totals.metrics[outcome] ?? 0, outcome).toBeGreaterThan(0);
  });
});
