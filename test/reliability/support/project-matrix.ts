/**
 * The fault matrix's cases for the third kind of secret: a Stytch project API
 * secret (DESIGN.md §4b), rotated through the management API (secrets.create,
 * .get, .list, .delete) and proved by a probe (m2m.get with the new secret).
 * One case: a rotation and the sweep after its window with one call failed
 * (support/matrix.ts's armFault), Secrets Manager's reattempts and later
 * rotations until one succeeds, then one clean rotation and the sweeps after
 * its window, with the invariants checked for this kind:
 *
 *   I    AWSCURRENT's secret is accepted by Stytch after every call and every
 *        invocation; the secret before the final rotation stays accepted
 *        through its window;
 *   II   no secret lost: every secret the function created (every successful
 *        secrets.create, its answer delivered or not) is held by a label,
 *        deleted, or named in an OrphanProjectSecret report; and no secret the
 *        function did not create (the World's credentials secret, another
 *        team's secret made just before the rotation) is ever deleted;
 *   III  once the windows have ended and a sweep has run, every secret that
 *        was AWSCURRENT before the final one is no longer accepted;
 *   IV   the final clean rotation succeeds at once, with one secrets.create;
 *   V    world.leaks() is empty;
 *   VII  the state table still binds the project environment to this secret,
 *        and (VI) no lease is left held once everything has settled.
 */
import { type ExternalCall, type SecretsManagerFailure, type StytchFailure, World } from '../../helpers/world.js';
import { describeRecord, pendingToken, rotateSecret, settle } from './invariants.js';
import { armFault, type CaseResult, type Mode } from './matrix.js';

/** The project secret's overlap window in the matrix: the sweep that ends it is part of the recording. */
export const PROJECT_WINDOW_S = 3600;
/** The ERROR log naming secrets the function may have created and no label holds (project-secret.ts, reportUnheld). */
const ORPHAN_REPORT = 'no label of this secret holds; they were not deleted';

interface ProjectWorld {
  world: World;
  /** Another team's secret in the same project environment, made just before the rotation: never to be deleted. */
  otherTeam: { secretId: string; secret: string };
}

async function coldProjectWorld(): Promise<ProjectWorld> {
  const world = await new World({
    kind: 'project_secret',
    smTransport: 'mock',
    rotationTokens: true,
    maxAttempts: 3,
    env: { PREVIOUS_SECRET_GRACE_SECONDS: String(PROJECT_WINDOW_S) },
  }).init();
  // Made inside the clock-skew margin of the rotation's creation: an interrupted create makes it a suspect.
  const otherTeam = world.stytch.createProjectSecret(world.project.projectId);
  // init() ran the configuration test in the first container; the matrix starts cold.
  world.newContainer();
  return { world, otherTeam };
}

/** The project secret each version holds, by label. */
function labelled(world: World): Array<{ id: string; stages: string[]; secret: string | undefined; secretId: string | undefined }> {
  return Object.entries(world.snapshot().versions).map(([id, v]) => {
    let value: { secret?: unknown; secret_id?: unknown } = {};
    try {
      value = v.secretString === undefined ? {} : (JSON.parse(v.secretString) as typeof value);
    } catch {
      // Not JSON: it holds no project secret.
    }
    return {
      id,
      stages: v.stages,
      secret: typeof value.secret === 'string' ? value.secret : undefined,
      secretId: typeof value.secret_id === 'string' ? value.secret_id : undefined,
    };
  });
}

function currentSecret(world: World): string | undefined {
  return labelled(world).find((v) => v.stages.includes('AWSCURRENT'))?.secret;
}

const accepted = (world: World, secret: string | undefined) => secret !== undefined && world.stytch.isProjectSecretAccepted(world.project.projectId, secret);

/** The ordered external calls of a clean project-secret rotation from a cold container, and of the sweep after its window. */
export async function recordProjectRotation(): Promise<ExternalCall[]> {
  const { world } = await coldProjectWorld();
  const from = world.externalCalls.length;
  const record = await world.capturing(async () => {
    const done = await rotateSecret(world);
    world.advance(PROJECT_WINDOW_S * 1000 + 60_000);
    await world.sweep();
    return done;
  });
  if (record.outcome !== 'succeeded' || record.attempts.length !== 1) throw new Error(`the clean project-secret rotation failed: ${describeRecord(record)}`);
  return world.externalCalls.slice(from);
}

/** The schedule's sweeps after a window: a failed sweep is tried again by the next one. */
async function sweepsAfterWindow(world: World, violations: string[], what: string): Promise<void> {
  world.advance(PROJECT_WINDOW_S * 1000 + 60_000);
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

export async function runProjectMatrixCase(recording: readonly ExternalCall[], k: number, mode: Mode, failure: SecretsManagerFailure | StytchFailure): Promise<CaseResult> {
  const { world, otherTeam } = await coldProjectWorld();
  const violations: string[] = [];
  const projectId = world.project.projectId;
  const notOurs = [
    { what: "the World's credentials secret", secretId: world.project.secretId },
    { what: "another team's secret", secretId: otherTeam.secretId },
  ];
  const base = world.externalCalls.length;
  const fault = armFault(world, recording, k, mode, failure, violations);
  /** Every secret that was AWSCURRENT at some point: all but the last must be gone at the end (III). */
  const everCurrent = new Set<string>();

  const checkI = (where: string) => {
    const secret = currentSecret(world);
    if (secret !== undefined) everCurrent.add(secret);
    if (!accepted(world, secret)) violations.push(`I: AWSCURRENT's project secret is not accepted by Stytch ${where}`);
  };
  // I at every instant: the function's effects happen only through these calls.
  world.onCall = (call) => checkI(`after call ${call.index - base} (${call.step ?? 'retirementSweep'}/${call.operation})`);
  world.onInvocation = (invocation) => {
    checkI(`after ${invocation.step ?? 'the sweep'} (invocation ${invocation.id})`);
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
    // The recording ends with the sweep after the window: the fault may be there.
    if (first.outcome === 'succeeded') await sweepsAfterWindow(world, violations, 'the faulted rotation');
    if (!fault.fired) violations.push(`the fault at call ${k} never fired`);
    const settled = await settle(world, first);
    if (settled.record.outcome !== 'succeeded') {
      violations.push(`IV: still no successful rotation after the faulted one and ${settled.reattempts} reattempts, ${settled.fresh} fresh: ${describeRecord(settled.record)}`);
    }
    if (pendingToken(world) !== undefined) {
      violations.push('IV: a rotation is still pending (stuck AWSPENDING): no new rotation can start');
      return;
    }

    // One clean rotation, and the sweeps after its window.
    const previous = currentSecret(world);
    const from = world.externalCalls.length;
    const clean = await rotateSecret(world);
    if (clean.outcome !== 'succeeded' || clean.attempts.length !== 1) violations.push(`IV: the final clean rotation did not succeed at once: ${describeRecord(clean)}`);
    const creates = world.externalCalls.slice(from).filter((c) => c.operation === 'secrets.create' && c.result?.status === 200).length;
    if (creates !== 1) violations.push(`IV: the final clean rotation created ${creates} project secrets`);
    // I for apps that cached it: the previous secret works through its window, until a sweep after it.
    if (!accepted(world, previous)) violations.push('I: the project secret before the final rotation was rejected inside its window');
    await sweepsAfterWindow(world, violations, 'the final rotation');
    checkI('after the final sweep');
    const current = currentSecret(world);
    const stillAccepted = [...everCurrent].filter((s) => s !== current && accepted(world, s)).length;
    if (stillAccepted > 0) violations.push(`III: ${stillAccepted} project secret(s) that were AWSCURRENT before are still accepted after the windows ended and a sweep ran`);
  }

  // II: every secret the function created is held by a label, deleted, or reported as an orphan.
  const atStytch = new Map(world.stytch.projectSecretValues(projectId).map((s) => [s.secret, s.secretId]));
  const held = new Set(labelled(world).filter((v) => v.stages.length > 0 && v.secret !== undefined).map((v) => v.secret!));
  const reports = world
    .logRecords()
    .filter((r) => r.level === 'ERROR' && r.message.includes(ORPHAN_REPORT))
    .map((r) => JSON.stringify(r.secrets ?? []));
  for (const secret of world.mintedSecrets) {
    const secretId = atStytch.get(secret);
    if (secretId === undefined || held.has(secret)) continue;
    if (!reports.some((r) => r.includes(`"${secretId}"`))) {
      violations.push(`II: the project secret ${secretId} (…${secret.slice(-4)}), which the function created, is held by no label, still exists and was never reported`);
    }
  }
  const ids = new Set(atStytch.values());
  for (const { what, secretId } of notOurs) if (!ids.has(secretId)) violations.push(`II: ${what} (${secretId}) was deleted; the function never created it`);
  const reported = world.metricCounts().OrphanProjectSecret ?? 0;
  if (reported > 0 && reports.length === 0) violations.push('II: an OrphanProjectSecret metric without the ERROR log naming the secrets');

  // VII and VI: still bound to this secret, no lease left behind.
  const item = await world.stateItem();
  const boundTo = (item?.secret_arn as { S?: string } | undefined)?.S;
  if (boundTo !== world.secretArn) violations.push(`VII: the project environment is bound to ${boundTo ?? 'nothing'}, not to the rotated secret`);
  const holder = (item?.lease_holder as { S?: string } | undefined)?.S;
  const until = Number((item?.lease_until as { N?: string } | undefined)?.N ?? 0);
  if (holder !== undefined && until > world.clock.now()) violations.push(`VI: a lease (${holder}) is still held once everything has settled`);

  const leaks = world.leaks();
  if (leaks.length > 0) violations.push(`V: ${leaks.length} secret value(s) found in output or errors`);
  const history = world.sm.rotationHistory(world.secretArn);
  // history[0] is init()'s configuration test.
  const originalCompleted = history.length >= 2 && history[1]!.outcome === 'succeeded';
  return { violations, metrics: world.metricCounts(), originalCompleted };
}
