import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorldOptions } from '../helpers/world.js';
import { MODES, recordCleanRotation, runMatrixCase, SM_FAILURES, STYTCH_FAILURES } from './support/matrix.js';
import { crash, outsideActions, rotationActions, stytchFault } from './support/actions.js';
import { type Action, runScenario } from './support/scenario.js';

/**
 * Mutation testing of the reliability suites (opt-in: RELIABILITY_MUTANTS=1,
 * about a minute): each mutant is a copy of functions/ with one deliberate
 * regression of the failure policy, and the fault matrix and a short property
 * run must find a violated invariant in every one. It shows the suites would
 * catch such a regression, not only that the function passes them today.
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
 *   per-invocation II check catches it anyway, so it is kept below).
 */

interface Mutant {
  name: string;
  file?: string;
  search: string;
  replace: string;
}

const MUTANTS: Mutant[] = [
  {
    name: 'finishSecret completes at Stytch before moving AWSCURRENT',
    search: '    verifyHeld(r, s, pend);\n    await moveCurrent(r);\n    return s;',
    replace: '    verifyHeld(r, s, pend);\n    if (s.nextSecretLast4 === last4(pend)) await stytch.rotate(r.clientId);\n    await moveCurrent(r);\n    return { ...s, nextSecretLast4: null };',
  },
  { name: 'startRotation cancels a next secret that is already AWSCURRENT', search: 'if (state.nextSecretLast4 !== null && state.nextSecretLast4 === last4(r.cur)) {', replace: 'if (false) {' },
  { name: 'the failure policy cancels on transient failures too', search: 'if (isTransient(error) || !r.pend) throw error;', replace: 'if (!r.pend) throw error;' },
  {
    name: 'createSecret keeps a dead AWSPENDING',
    search: "    await removePending(r);\n    deps.metrics.count('DeadPendingCleared');",
    replace: "    deps.metrics.count('DeadPendingCleared');",
  },
  {
    name: 'finishSecret on a version already AWSCURRENT cancels instead of completing',
    search: "    await tolerateNotRotating(r.stytch, () => r.stytch.rotate(r.clientId));\n    r.deps.metrics.count('HalfDoneCompleted');",
    replace: "    await tolerateNotRotating(r.stytch, () => r.stytch.rotateCancel(r.clientId));\n    r.deps.metrics.count('HalfDoneCompleted');",
  },
  { name: 'finishSecret moves AWSCURRENT without checking that Stytch accepts it', search: '    verifyHeld(r, s, pend);\n    await moveCurrent(r);', replace: '    await moveCurrent(r);' },
  { name: 'a retried createSecret mints a new secret', search: '  if (r.pend) {\n    const state = await stytch.get(r.clientId);', replace: '  if (r.pend && false) {\n    const state = await stytch.get(r.clientId);' },
  { name: 'startRotation does not cancel an orphan', search: "    await tolerateNotRotating(stytch, () => stytch.rotateCancel(r.clientId));\n    deps.metrics.count('OrphanRepaired');", replace: "    deps.metrics.count('OrphanRepaired');" },
  {
    name: 'finishSecret cancels when rotate fails after AWSCURRENT moved',
    search: '      if (!stytch.isNotRotating(error)) {\n        deps.logger.error(',
    replace: '      if (!stytch.isNotRotating(error)) {\n        await stytch.rotateCancel(r.clientId).catch(() => undefined);\n        deps.logger.error(',
  },
  {
    name: 'createSecret leaves the next secret when PutSecretValue failed and nothing landed',
    search: "if (landed === false) await cancelIfNext(r, nextSecret.slice(-4), 'the pending value could not be stored');",
    replace: 'void landed;',
  },
  { name: 'createSecret logs the new secret', search: '    pendingLast4: nextSecret.slice(-4),\n', replace: '    pendingLast4: nextSecret,\n' },
  {
    name: 'the handler logs the RotationToken',
    file: 'handler.ts',
    search: 'logger.appendKeys({ step: parsed.Step, secretId: parsed.SecretId, clientRequestToken: parsed.ClientRequestToken });',
    replace: 'logger.appendKeys({ step: parsed.Step, secretId: parsed.SecretId, clientRequestToken: parsed.ClientRequestToken, rotationToken: parsed.RotationToken });',
  },
];

const actions: fc.Arbitrary<Action[]> = fc.array(
  fc.oneof(
    ...rotationActions,
    stytchFault,
    crash,
    outsideActions(['dashboardCancel', 'dashboardStart', 'dashboardRotate', 'removePending', 'putCurrentCopy', 'putCurrentAccepted', 'coldStart']),
  ),
  { minLength: 1, maxLength: 10 },
);

/** The first violation the fault matrix ('mock' transport, one failure kind per call) or 400 property runs find, if any. */
async function firstViolation(createHandler: WorldOptions['createHandler']): Promise<string | undefined> {
  let recording;
  try {
    recording = await recordCleanRotation('mock', createHandler);
  } catch (error) {
    return `fault matrix: ${(error as Error).message}`;
  }
  for (const mode of MODES) {
    for (let k = 0; k < recording.length; k++) {
      const failure = recording[k]!.service === 'stytch' ? STYTCH_FAILURES[0]! : SM_FAILURES[0]!;
      const { violations } = await runMatrixCase(recording, 'mock', k, mode, failure, createHandler);
      if (violations.length > 0) return `fault matrix, ${mode} at call ${k}: ${violations[0]}`;
    }
  }
  const result = await fc.check(
    fc.asyncProperty(actions, fc.boolean(), async (acts, rotationTokens) => {
      const { violations } = await runScenario(acts, { createHandler, rotationTokens });
      if (violations.length > 0) throw new Error(violations[0]);
    }),
    { seed: 7, numRuns: 400 },
  );
  return result.failed ? `properties: ${(result.errorInstance as Error).message.split('\n')[0]} in ${JSON.stringify(result.counterexample?.[0])}` : undefined;
}

describe.runIf(process.env.RELIABILITY_MUTANTS)('Mutation testing: every deliberate regression of the failure policy is caught', () => {
  let root = '';
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'rotation-mutants-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  MUTANTS.forEach((mutant, i) => {
    it(
      mutant.name,
      async () => {
        const dir = join(root, `m${i}`);
        cpSync(resolve('functions'), join(dir, 'functions'), { recursive: true });
        symlinkSync(resolve('node_modules'), join(dir, 'node_modules'));
        const file = join(dir, 'functions/rotate-stytch-secret', mutant.file ?? 'rotation.ts');
        const source = readFileSync(file, 'utf8');
        expect(source.includes(mutant.search), 'the mutant no longer applies: update its search text').toBe(true);
        writeFileSync(file, source.replace(mutant.search, mutant.replace));
        const { createHandler } = (await import(join(dir, 'functions/rotate-stytch-secret/handler.ts'))) as { createHandler: WorldOptions['createHandler'] };

        const found = await firstViolation(createHandler);

        console.log(`mutant "${mutant.name}": ${found ?? 'NOT DETECTED'}`);
        expect(found, 'no suite noticed this regression').toBeDefined();
      },
      300_000,
    );
  });
});
