import { InvalidInputError, isTransient, RotationError, StytchApiError, TransientError, VerificationError } from '../lib/errors.js';
import { parseSecretJson, projectSecretSchema, type ProjectSecret } from '../lib/schemas.js';
import { assertPreservable, SECRET_VALUE_LIMIT_BYTES, withFields } from '../lib/secret-json.js';
import { AWSCURRENT } from '../lib/secrets/store.js';
import { takeLease, type HeldLease } from '../lib/state/lease.js';
import { BindingError, type Binding, type CreatedSecret, type Retirement } from '../lib/state/table.js';
import type { ManagementApi, ProjectEnvironment, ProjectSecretInfo } from '../lib/stytch/management.js';
import {
  giveLeaseBack,
  leaseEvent,
  messageOf,
  moveCurrent,
  readPreamble,
  refuseMismatch,
  removePending,
  requirePending,
  summary,
  type Preamble,
  type RotationDeps,
  type StepOutcome,
} from './rotation.js';

/**
 * The rotation of a Stytch project API secret (DESIGN.md §4b): the rotated
 * secret is a credentials secret, and Stytch's management API creates, lists
 * and deletes the project's secrets. Unlike a client, Stytch has no rotating
 * state: both secrets simply exist. So the function keeps its own records in
 * the state table, under the same lease (VI) and binding (VII) as a client:
 *
 *   createSecret  create a secret (its id recorded first as an intent), store
 *                 {...AWSCURRENT, secret, secret_id} as AWSPENDING
 *   setSecret     Stytch has the new secret_id, with the same last four
 *   testSecret    the new secret authenticates at the project API
 *   finishSecret  move AWSCURRENT; record the previous secret's deletion
 *   sweep         after the overlap window, delete the previous secret
 *                 (put off once if Stytch saw it used after the move)
 *   cancel        delete the new secret, and only a secret this function
 *                 recorded creating (II: never another team's)
 */

export interface ProjectSecretDeps {
  /** The management API with the workspace key (throws a configuration error when none is configured). */
  management: () => ManagementApi;
  /** Proves a project secret authenticates at the project API; throws a VerificationError when Stytch rejects it. */
  probe: (value: ProjectSecret, which: 'new' | 'current') => Promise<void>;
  /** How long a deletion is put off, once, when the previous secret was used after the move. */
  inUseDeferSeconds: number;
  /** AWSCURRENT of this secret moved: a cached copy of it (the function's own credentials) is stale. */
  onRotated: (secretArn: string, name: string) => void;
}

/** Stytch's last use of a previous secret counts as "still in use" when it is this recent. */
export const RECENT_USE_MS = 5 * 60_000;
/** A created_at this much before the recorded intent still counts as created by the interrupted attempt (clock skew). */
const CLOCK_SKEW_MS = 60_000;

interface ProjectRotation extends Preamble {
  cur: ProjectSecret;
  curText: string;
  pend: ProjectSecret | undefined;
  env: ProjectEnvironment;
  deps: RotationDeps;
  p: ProjectSecretDeps;
  lease?: HeldLease;
  retirement?: Retirement | null;
  moveUnknown?: boolean;
}

const last4 = (secret: string) => secret.slice(-4);
const envName = (env: ProjectEnvironment) => `${env.projectSlug}/${env.environmentSlug}`;
const envOf = (value: ProjectSecret): ProjectEnvironment => ({ projectSlug: value.project_slug, environmentSlug: value.environment_slug });
const FIX_CURRENT =
  'It must be JSON {"project_id", "secret", "secret_id", "project_slug", "environment_slug", "base_url"?}; fix it with aws secretsmanager put-secret-value.';

function projectDeps(deps: Pick<RotationDeps, 'projectSecrets'>): ProjectSecretDeps {
  if (!deps.projectSecrets) throw new InvalidInputError('This function is not set up to rotate Stytch project secrets.');
  return deps.projectSecrets;
}

/** What a project secret is bound to (VII): its project and environment; never a client. */
export function projectBinding(secretArn: string, value: ProjectSecret): Binding {
  return { secretArn, projectId: value.project_id, clientId: envName(envOf(value)), credentialsSecretId: undefined, kind: 'project_secret' };
}

function readProject(pre: Preamble, deps: RotationDeps, pendText: string | undefined): ProjectRotation {
  const cur = parseSecretJson(projectSecretSchema, pre.curText, `The AWSCURRENT value of secret ${pre.name}`, FIX_CURRENT);
  // Every other field is copied byte for byte into the new version: refuse a value that could not be.
  assertPreservable(pre.curText!, `The AWSCURRENT value of secret ${pre.name}`, FIX_CURRENT);
  const pend = pre.alreadyCurrent ? undefined : parsePending(pendText, cur, pre);
  return { ...pre, cur, curText: pre.curText!, pend, env: envOf(cur), deps, p: projectDeps(deps) };
}

async function read(pre: Preamble, deps: RotationDeps): Promise<ProjectRotation> {
  projectDeps(deps);
  return readProject(pre, deps, pre.alreadyCurrent ? undefined : await deps.store.getVersion(pre.arn, pre.token));
}

function parsePending(text: string | undefined, cur: ProjectSecret, pre: Preamble): ProjectSecret | undefined {
  if (text === undefined) return undefined;
  const removeIt = `Remove AWSPENDING from it (aws secretsmanager update-secret-version-stage --secret-id ${pre.name} --version-stage AWSPENDING --remove-from-version-id ${pre.token}) and rotate again.`;
  const pend = parseSecretJson(projectSecretSchema, text, `The AWSPENDING value (version ${pre.token}) of secret ${pre.name}`, removeIt);
  // No confused deputy: a rotation never moves a secret to another project or environment.
  if (pend.project_id !== cur.project_id || pend.project_slug !== cur.project_slug || pend.environment_slug !== cur.environment_slug) {
    throw new InvalidInputError(
      `The pending version ${pre.token} names project ${pend.project_id} (${pend.project_slug}/${pend.environment_slug}) but AWSCURRENT names ${cur.project_id} (${cur.project_slug}/${cur.environment_slug}); a rotation never changes the project. ${removeIt}`,
    );
  }
  if (pend.secret === cur.secret || pend.secret_id === cur.secret_id) {
    throw new InvalidInputError(`The pending version ${pre.token} holds the same secret as AWSCURRENT, so it is not a new secret. ${removeIt}`);
  }
  return pend;
}

// ---------------------------------------------------------------- the step, under the lease

export async function runProjectStep(pre: Preamble, deps: RotationDeps): Promise<StepOutcome> {
  const r = await read(pre, deps);
  const step = pre.event.Step;
  if (r.alreadyCurrent && step !== 'finishSecret') {
    deps.logger.info('The version is already AWSCURRENT: nothing to do');
    return 'already-current';
  }
  // III: only finishSecret, on a version not yet AWSCURRENT, records the previous secret's deletion as it takes the lease.
  const recordsIntent = step === 'finishSecret' && !r.alreadyCurrent;
  // VI and VII as for a client: one mutator per project environment, and a value naming another is refused.
  r.lease = await refuseMismatch(r, () =>
    takeLease(
      deps.state,
      {
        binding: projectBinding(r.arn, r.cur),
        bind: true,
        holder: deps.lease.holder,
        what: `${step} of version ${r.token}`,
        until: deps.lease.until,
        retirement: recordsIntent ? retirementIntent(r) : undefined,
      },
      { waitUntil: deps.lease.waitUntil, clock: deps.lease.clock, onEvent: (e) => leaseEvent(r, e) },
    ),
  );
  let outcome: StepOutcome;
  try {
    outcome = await underLease(r);
  } catch (error) {
    // As for a client (rotation.ts): finishSecret's intent is void unless AWSCURRENT moved (III).
    const voidIntent = recordsIntent && !r.moveUnknown;
    await giveLeaseBack(r.lease, r.retirement !== undefined ? r.retirement : voidIntent ? (r.lease.previous?.retirement ?? null) : undefined, deps);
    throw error;
  }
  await giveLeaseBack(r.lease, r.retirement, deps);
  return outcome;
}

async function underLease(r: ProjectRotation): Promise<StepOutcome> {
  if (r.event.Step === 'createSecret' || r.lease!.contended) {
    // Read again under the lease: what was read before may be stale (IV).
    const fresh = await read(await readPreamble(r.event, r.deps), r.deps);
    const b = projectBinding(fresh.arn, fresh.cur);
    const held = r.lease!.binding;
    if (b.projectId !== held.projectId || b.clientId !== held.clientId || b.secretArn !== held.secretArn) {
      throw new TransientError(
        `AWSCURRENT of ${r.name} changed to another version while this step waited for its lease; Secrets Manager's reattempt starts from the new value.`,
      );
    }
    Object.assign(r, { ...fresh, lease: r.lease });
    if (r.alreadyCurrent && r.event.Step !== 'finishSecret') return 'already-current';
  }
  switch (r.event.Step) {
    case 'createSecret':
      return createSecret(r);
    case 'setSecret':
      return setSecret(r);
    case 'testSecret':
      return testSecret(r);
    case 'finishSecret':
      return r.alreadyCurrent ? completeAfterLabel(r) : finishSecret(r);
  }
}

// ---------------------------------------------------------------- createSecret

async function createSecret(r: ProjectRotation): Promise<StepOutcome> {
  const { deps, env } = r;
  const m = r.p.management();
  if (r.pend) {
    const pend = r.pend;
    const info = await m.get(env, pend.secret_id);
    if (info && info.last4 === last4(pend.secret)) {
      // IV: a retried or resumed createSecret never creates a second secret.
      deps.metrics.count('RotationResumed');
      deps.logger.info('The pending project secret is stored and Stytch has it: resuming', { pendingSecretId: pend.secret_id });
      return 'resumed';
    }
    if (info) throw mismatch(r, 'AWSPENDING', pend, info);
    // Deleted outside this function: the value under this token can never change, so this rotation cannot go on.
    await removePending(r);
    deps.metrics.count('DeadPendingCleared');
    deps.logger.warn('Stytch no longer has the pending project secret; removed AWSPENDING', { pendingSecretId: pend.secret_id });
    throw new VerificationError(
      `Stytch no longer has the pending project secret ${pend.secret_id} of version ${r.token} (it was deleted outside this function). AWSPENDING was removed from that version; ` +
        `the next rotation starts fresh: aws secretsmanager rotate-secret --secret-id ${r.name}.`,
    );
  }

  await settleEarlierCreation(r, m);
  // II: the secret AWSCURRENT names must be the one Stytch has under that id, or the sweep could later delete another.
  const current = await m.get(env, r.cur.secret_id);
  if (!current || current.last4 !== last4(r.cur.secret)) throw currentNotAtStytch(r, current);
  // And its secret must work: whoever wrote the value holds a real secret with those last four, not just
  // another team's secret_id (which the sweep would otherwise delete after the window).
  await r.p.probe(r.cur, 'current');
  await retireEarly(r, m);

  const intent: CreatedSecret = { versionId: r.token, at: deps.lease.clock.now(), secretId: undefined };
  await mark(r, intent);
  let created: { secretId: string; secret: string; retried?: boolean };
  try {
    created = await m.create(env);
  } catch (error) {
    // A definitive refusal created nothing; a lost answer may have (the intent stays, so the next attempt reports it).
    if (!isTransient(error)) await mark(r, null).catch(() => undefined);
    if (error instanceof StytchApiError && error.statusCode === 400 && /limit|too_many|maximum/i.test(`${error.errorType} ${error.message}`)) {
      throw new InvalidInputError(
        `Stytch refused to create another secret in project ${envName(env)} (${error.errorType}): a project environment holds at most 50 secrets. ` +
          `Nothing was changed. Delete secrets no one uses (the CLI's status lists them with their last use), then rotate again.`,
        { cause: error },
      );
    }
    throw error;
  }
  await mark(r, { ...intent, secretId: created.secretId }, created.secretId);
  if (created.retried) {
    // II: the create was sent more than once. Had an earlier request acted after all (its answer lost), the
    // record now names only the secret this step got back: report the others now, as for a lost answer.
    await reportUnheld(r, m, intent.at, [created.secretId], 'The request that created the project secret was sent more than once');
  }

  // Stryker disable next-line StringLiteral: this text passed assertPreservable and the schema in read() (both fields at top level, no key twice), so withFields cannot fail here and the description never shows
  const value = withFields(r.curText, { secret: created.secret, secret_id: created.secretId }, `The AWSCURRENT value of secret ${r.name}`, FIX_CURRENT);
  if (Buffer.byteLength(value) > SECRET_VALUE_LIMIT_BYTES) {
    await deleteOwn(r, m, created.secretId, 'the new value would exceed the secret size limit');
    throw new InvalidInputError(
      `The new version of ${r.name} would be over Secrets Manager's limit of ${SECRET_VALUE_LIMIT_BYTES} bytes. Nothing was changed. Make the other fields smaller.`,
    );
  }
  try {
    await deps.store.putPending(r.arn, r.token, value, r.event.RotationToken);
  } catch (putError) {
    // II: until this put lands, the new secret exists only in memory and at Stytch.
    let landed: boolean | undefined;
    try {
      // Stryker disable next-line ObjectLiteral,BooleanLiteral: the version had no value when read under this lease (else createSecret resumes) and only values found are cached, so any read of it asks Secrets Manager
      landed = (await deps.store.getVersion(r.arn, r.token, { fresh: true })) === value;
    } catch (readError) {
      deps.metrics.count('PutOutcomeUnknown');
      deps.logger.error('PutSecretValue failed and reading the version back failed too; the next attempt deletes the new project secret if AWSPENDING does not hold it', {
        error: summary(putError),
        readError: summary(readError),
        createdSecretId: created.secretId,
      });
    }
    if (landed) {
      deps.logger.warn('PutSecretValue failed but the value landed: going on', { error: summary(putError) });
    } else {
      if (landed === false) await deleteOwn(r, m, created.secretId, 'the pending value could not be stored');
      throw putError;
    }
  }
  deps.metrics.count('RotationStarted');
  deps.logger.info('Created a project secret and stored it as AWSPENDING', { pendingSecretId: created.secretId, pendingLast4: last4(created.secret) });
  return 'created';
}

/** Records (or clears) the creation under this step's lease; a lease lost meanwhile stops the step (VI). */
async function mark(r: ProjectRotation, created: CreatedSecret | null, createdSecretId?: string): Promise<void> {
  if (await r.deps.state.markCreated(r.lease!.binding, r.lease!.holder, created)) return;
  r.deps.metrics.count('LeaseLost');
  if (createdSecretId) {
    // Nobody will hold it: the lease's new holder acts on a state this step no longer knows.
    await r.p
      .management()
      .delete(r.env, createdSecretId)
      .catch((error: unknown) => r.deps.logger.error('Could not delete the project secret this step created after losing its lease', { error: summary(error), createdSecretId }));
  }
  throw new TransientError(`The lease on project ${envName(r.env)} expired during ${r.event.Step}; Secrets Manager's reattempt starts again.`);
}

/** Deletes a secret this step just created and nobody holds (II), and forgets it. */
async function deleteOwn(r: ProjectRotation, m: ManagementApi, secretId: string, why: string): Promise<void> {
  try {
    await m.delete(r.env, secretId);
    await r.deps.state.markCreated(r.lease!.binding, r.lease!.holder, null);
    r.deps.metrics.count('RotationCancelled');
    r.deps.logger.warn(`Deleted the new project secret: ${why}`, { createdSecretId: secretId });
  } catch (error) {
    // Recorded as this function's: the next attempt finds it unheld and deletes it.
    r.deps.logger.error(`Could not delete the new project secret (${why}); the next attempt deletes it`, { error: summary(error), createdSecretId: secretId });
  }
}

/**
 * What an earlier attempt left: its record of a creation. A recorded secret that no label holds is this
 * function's own, so it is deleted (II: nobody can be using it). A creation whose answer never came
 * back (a crash, a lost response) left no id: any secret created since then that no label holds is
 * reported, never deleted by guesswork (another team may have created it).
 */
async function settleEarlierCreation(r: ProjectRotation, m: ManagementApi): Promise<void> {
  const previous = r.lease!.previous;
  if (!previous?.created) return;
  const earlier = previous.created;
  const held = new Set([r.cur.secret_id, previous.retirement?.previousSecretId]);
  if (earlier.secretId !== undefined) {
    if (held.has(earlier.secretId)) return;
    const holds = await heldByVersion(r, earlier);
    if (holds === true) return;
    if (holds !== false) {
      // II: a version that will never be readable (its KMS key disabled, access taken away) is not "no value": the secret is
      // reported and kept, and this rotation goes on (its own creation replaces the record, so this one is named here).
      r.deps.metrics.count('OrphanProjectSecret');
      r.deps.logger.error(
        'An interrupted attempt stored a project secret in a version that cannot be read: it was not deleted. Delete it at Stytch if no one uses it',
        { orphanSecretId: earlier.secretId, versionId: earlier.versionId, error: summary(holds.unreadable) },
      );
      return;
    }
    const outcome = await m.delete(r.env, earlier.secretId);
    r.deps.metrics.count('OrphanRepaired');
    r.deps.logger.warn('Deleted a project secret an interrupted attempt created and never stored', { orphanSecretId: earlier.secretId, outcome });
    return;
  }
  // Stryker disable next-line ArrayDeclaration: an id added to what is held matches no secret Stytch lists (its ids are generated), so the report is the same
  await reportUnheld(r, m, earlier.at, [], 'An earlier attempt was interrupted while creating a project secret');
}

/**
 * Reports (OrphanProjectSecret, an ERROR log naming them) the secrets created since `at` that no label of
 * this secret holds: this function may have created them, but it cannot tell, so it never deletes them (II).
 */
async function reportUnheld(r: ProjectRotation, m: ManagementApi, at: number, alsoHeld: string[], what: string): Promise<void> {
  const held = new Set([r.cur.secret_id, r.lease!.previous?.retirement?.previousSecretId, ...alsoHeld]);
  const since = at - CLOCK_SKEW_MS;
  const unheld = (await m.list(r.env)).filter((s) => !held.has(s.secretId) && (s.createdAt === undefined || Date.parse(s.createdAt) >= since));
  if (unheld.length === 0) return;
  for (const _ of unheld) r.deps.metrics.count('OrphanProjectSecret');
  r.deps.logger.error(
    `${what}. Stytch has secrets created since then that no label of this secret holds; they were not deleted (this function cannot tell whether it created them). Delete those no one uses.`,
    { secrets: unheld.map(shown), since: new Date(at).toISOString() },
  );
}

/**
 * The recorded version still holds the secret (an unfinished rotation's AWSPENDING, say). This step's own
 * version has no value under its lease (or createSecret would have resumed): it holds nothing. A read that
 * fails is no answer (II): a transient failure fails the step, so a retry reads again; one a retry will not
 * fix is returned, for the caller to report.
 */
async function heldByVersion(r: ProjectRotation, created: CreatedSecret): Promise<boolean | { unreadable: unknown }> {
  // This step's own version was just read under the lease and had no value (or createSecret would have resumed): no read again.
  if (created.versionId === r.token) return false;
  let text: string | undefined;
  try {
    text = await r.deps.store.getVersion(r.arn, created.versionId);
  } catch (error) {
    if (isTransient(error)) throw error;
    return { unreadable: error };
  }
  try {
    return (JSON.parse(text!) as { secret_id?: unknown }).secret_id === created.secretId;
  } catch {
    // No value (JSON.parse(undefined) throws) or text that is not JSON (written outside this function): no secret id.
    return false;
  }
}

const shown = (s: ProjectSecretInfo) => ({ secretId: s.secretId, last4: s.last4, createdAt: s.createdAt, usedAt: s.usedAt });

/** A new rotation while the previous one's secret still waits for deletion: one record per project, so delete it now (III). */
async function retireEarly(r: ProjectRotation, m: ManagementApi): Promise<void> {
  const due = r.lease!.previous?.retirement;
  if (!due) return;
  const early = due.dueAt > r.deps.lease.clock.now();
  const result = await deletePrevious(r.cur, due, m, r.env);
  r.retirement = null;
  if (result.kind === 'deleted') {
    r.deps.metrics.count(early ? 'PreviousRetiredEarly' : 'PreviousSecretRetired');
    r.deps.logger[early ? 'warn' : 'info'](
      early ? 'A new rotation starts inside the previous one\'s overlap window: deleted the previous project secret early' : 'Deleted the previous project secret, whose overlap window is over',
      { retiredSecretId: due.previousSecretId },
    );
  } else {
    r.deps.logger[result.level](result.why, { previousSecretId: due.previousSecretId });
  }
}

// ---------------------------------------------------------------- setSecret, testSecret

async function setSecret(r: ProjectRotation): Promise<StepOutcome> {
  const pend = requirePending(r);
  await withFailurePolicy(r, async () => {
    const info = await r.p.management().get(r.env, pend.secret_id);
    if (!info) {
      throw new VerificationError(`Stytch has no secret ${pend.secret_id} in project ${envName(r.env)} any more: the pending project secret was deleted outside this function.`);
    }
    if (info.last4 !== last4(pend.secret)) throw mismatch(r, 'AWSPENDING', pend, info);
  });
  r.deps.logger.info('Stytch has the pending project secret', { pendingSecretId: pend.secret_id });
  return 'verified';
}

async function testSecret(r: ProjectRotation): Promise<StepOutcome> {
  if (!r.pend) {
    // Secrets Manager's configuration test (RotateImmediately=false): both keys work, nothing changes.
    const current = await r.p.management().get(r.env, r.cur.secret_id);
    if (!current || current.last4 !== last4(r.cur.secret)) throw currentNotAtStytch(r, current);
    await r.p.probe(r.cur, 'current');
    r.deps.logger.info('Configuration test passed: the management key works and AWSCURRENT authenticates');
    return 'configuration-ok';
  }
  const pend = r.pend;
  await withFailurePolicy(r, () => r.p.probe(pend, 'new'));
  r.deps.logger.info('The pending project secret authenticates at Stytch', { pendingSecretId: pend.secret_id });
  return 'verified';
}

// ---------------------------------------------------------------- finishSecret

async function finishSecret(r: ProjectRotation): Promise<StepOutcome> {
  const pend = requirePending(r);
  // I: never move AWSCURRENT to a secret Stytch does not have.
  await withFailurePolicy(r, async () => {
    const info = await r.p.management().get(r.env, pend.secret_id);
    if (!info) throw new VerificationError(`Stytch has no secret ${pend.secret_id} in project ${envName(r.env)} any more: it was deleted outside this function.`);
    if (info.last4 !== last4(pend.secret)) throw mismatch(r, 'AWSPENDING', pend, info);
  });
  await moveCurrent(r);
  const now = r.deps.lease.clock.now();
  // III: the previous secret is deleted by the sweep once the window ends (at its next run when there is none).
  r.retirement = {
    dueAt: now + r.deps.graceSeconds * 1000,
    versionId: r.token,
    last4: last4(pend.secret),
    previousVersionId: r.currentVersionId,
    previousLast4: last4(r.cur.secret),
    previousSecretId: r.cur.secret_id,
    movedAt: now,
  };
  r.p.onRotated(r.arn, r.name);
  r.deps.metrics.count('RotationCompleted');
  r.deps.logger.info('Rotation complete: AWSCURRENT moved; the previous project secret works until its overlap window ends', {
    pendingSecretId: pend.secret_id,
    previousSecretId: r.cur.secret_id,
    previousSecretDeletedAfter: new Date(r.retirement.dueAt).toISOString(),
  });
  return 'rotated-overlap';
}

/** finishSecret again after the label moved: make sure the previous secret's deletion is recorded (III). */
async function completeAfterLabel(r: ProjectRotation): Promise<StepOutcome> {
  const recorded = r.lease!.previous?.retirement;
  if (recorded?.versionId === r.token) {
    r.retirement = recorded;
    r.deps.logger.info('The version is already AWSCURRENT; the previous project secret is deleted when its overlap window ends');
    return 'already-current';
  }
  if (recorded) {
    // Another rotation's record: leave it as it is.
    return 'already-current';
  }
  const previousText = r.previousVersionId ? await r.deps.store.getVersion(r.arn, r.previousVersionId) : undefined;
  let previous: ProjectSecret | undefined;
  try {
    // Stryker disable next-line StringLiteral: the error of a value that does not parse is caught just below and never shown
    previous = parseSecretJson(projectSecretSchema, previousText, 'AWSPREVIOUS', '');
  } catch {
    // None, binary, or not a project secret value: there is no previous project secret to delete.
  }
  if (!previous || previous.secret_id === r.cur.secret_id) {
    r.deps.logger.info('The version is already AWSCURRENT: nothing to do');
    return 'already-current';
  }
  const now = r.deps.lease.clock.now();
  const late: Retirement = {
    dueAt: now + r.deps.graceSeconds * 1000,
    versionId: r.token,
    last4: last4(r.cur.secret),
    previousVersionId: r.previousVersionId!,
    previousLast4: last4(previous.secret),
    previousSecretId: previous.secret_id,
    movedAt: now,
  };
  if (await newerRotationCreated(r)) {
    // II and III: a newer rotation's createSecret has already run, and it deletes early only the deletion it
    // found recorded. Recorded now, this one would be replaced by that rotation's finishSecret (one record per
    // project) and the previous secret never deleted, held by no label. So delete it now, as that createSecret would have.
    const result = await deletePrevious(r.cur, late, r.p.management(), r.env);
    if (result.kind === 'deleted') {
      r.deps.metrics.count('PreviousRetiredEarly');
      r.deps.logger.warn('A newer rotation has started: deleted the previous project secret early rather than record its deletion late', {
        retiredSecretId: previous.secret_id,
      });
    } else {
      r.deps.logger[result.level](result.why, { previousSecretId: previous.secret_id });
    }
    return 'already-current';
  }
  r.retirement = late;
  r.deps.metrics.count('RetirementRecordedLate');
  r.deps.logger.warn('The deletion of the previous project secret had not been recorded (the step that moved AWSCURRENT ended early): recorded now, its window counted from now', {
    previousSecretId: previous.secret_id,
  });
  return 'already-current';
}

/** Another version is labelled AWSPENDING and holds a value: a newer rotation whose createSecret has run. */
async function newerRotationCreated(r: ProjectRotation): Promise<boolean> {
  const { versions } = await r.deps.store.describe(r.arn);
  for (const [id, stages] of Object.entries(versions)) {
    if (id === r.token || !stages.includes('AWSPENDING') || stages.includes(AWSCURRENT)) continue;
    if ((await r.deps.store.getVersion(r.arn, id)) !== undefined) return true;
  }
  return false;
}

/** Written with finishSecret's lease, before AWSCURRENT moves, so a crash after the move still leaves the deletion recorded (III). */
function retirementIntent(r: ProjectRotation): Retirement | undefined {
  if (!r.pend) return undefined;
  return {
    dueAt: r.deps.lease.until + r.deps.graceSeconds * 1000,
    versionId: r.token,
    last4: last4(r.pend.secret),
    previousVersionId: r.currentVersionId,
    previousLast4: last4(r.cur.secret),
    previousSecretId: r.cur.secret_id,
    movedAt: r.deps.lease.until,
  };
}

// ---------------------------------------------------------------- failure policy

/** As for a client: transient failures are rethrown (AWSPENDING kept, IV); definitive ones cancel. */
async function withFailurePolicy<T>(r: ProjectRotation, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (isTransient(error) || !r.pend) throw error;
    return await cancel(r, r.pend, error);
  }
}

async function cancel(r: ProjectRotation, pend: ProjectSecret, error: unknown): Promise<never> {
  const { deps } = r;
  const reason = messageOf(error);
  let deleted = false;
  try {
    // I: never cancel a pending secret that is already AWSCURRENT.
    if ((await deps.store.describe(r.arn)).versions[r.token]?.includes(AWSCURRENT)) {
      throw new RotationError('the pending version is already AWSCURRENT');
    }
    const created = r.lease!.previous?.created;
    if (created?.versionId === r.token && created.secretId === pend.secret_id) {
      // II: only a secret this function recorded creating for this version is ever deleted.
      await r.p.management().delete(r.env, pend.secret_id);
      await deps.state.markCreated(r.lease!.binding, r.lease!.holder, null);
      deleted = true;
    } else {
      deps.logger.warn('The pending project secret was not deleted: this function has no record of creating it', { pendingSecretId: pend.secret_id });
    }
    await removePending(r);
  } catch (compensationError) {
    deps.logger.error('The failed rotation could not be cancelled; AWSPENDING kept so a reattempt can resume or cancel it', {
      error: summary(error),
      compensationError: summary(compensationError),
    });
    throw new RotationError(
      `${reason} The rotation could not be cancelled (${messageOf(compensationError)}), so AWSPENDING stays on version ${r.token} and Secrets Manager's next attempt resumes or cancels it.`,
      { cause: error },
    );
  }
  deps.metrics.count('RotationCancelled');
  deps.logger.warn('Rotation cancelled', { error: summary(error), deletedAtStytch: deleted });
  throw new RotationError(
    `${reason} The rotation was cancelled: ${deleted ? `Stytch's new secret ${pend.secret_id} was deleted and ` : ''}AWSPENDING was removed from version ${r.token}; ` +
      `AWSCURRENT is unchanged and still works. Fix the cause, then run aws secretsmanager rotate-secret --secret-id ${r.name}.`,
    { cause: error },
  );
}

// ---------------------------------------------------------------- the sweep's part

export type DeleteResult = { kind: 'deleted' } | { kind: 'skipped'; why: string; level: 'info' | 'warn' | 'error' };

// Stryker disable next-line StringLiteral: a result's kind is only ever compared with 'deleted', so any other text behaves the same
const skipped = (level: 'info' | 'warn' | 'error', why: string): DeleteResult => ({ kind: 'skipped', level, why });

/**
 * Deletes a rotation's previous project secret if, and only if, that leaves AWSCURRENT's secret working
 * (I) and the secret is the one AWSCURRENT held before the move (II).
 */
async function deletePrevious(cur: ProjectSecret, due: Retirement, m: ManagementApi, env: ProjectEnvironment): Promise<DeleteResult> {
  const previousId = due.previousSecretId;
  if (!previousId) return skipped('error', 'Not deleted: the record names no previous secret_id');
  if (previousId === cur.secret_id) {
    return skipped('info', 'Nothing to delete: the previous secret is still AWSCURRENT (the rotation that recorded it never moved AWSCURRENT)');
  }
  const current = await m.get(env, cur.secret_id);
  if (!current || current.last4 !== last4(cur.secret)) {
    return skipped(
      'error',
      `Not deleted: AWSCURRENT's secret_id ${cur.secret_id} is not a secret of project ${envName(env)} ending …${last4(cur.secret)} at Stytch, so the previous secret ${previousId} may be the only one that works. Fix AWSCURRENT, then delete ${previousId} yourself`,
    );
  }
  const previous = await m.get(env, previousId);
  if (!previous) return skipped('info', `Nothing to delete: Stytch no longer has the previous secret ${previousId}`);
  if (previous.last4 !== due.previousLast4) {
    return skipped(
      'error',
      `Not deleted: Stytch's secret ${previousId} ends …${previous.last4}, not …${due.previousLast4} as the secret AWSCURRENT held before; it is not the previous secret`,
    );
  }
  await m.delete(env, previousId);
  return { kind: 'deleted' };
}

export interface ProjectSweepResult {
  outcome: 'retired' | 'cleared' | 'deferred';
  /** What the lease's release writes: null clears the record, a Retirement replaces it, undefined keeps it. */
  retirement: Retirement | null | undefined;
}

/** The sweep, for one due project secret, under its lease (VI). */
export async function sweepProjectSecret(binding: Binding, due: Retirement, deps: Omit<RotationDeps, 'graceSeconds'>): Promise<ProjectSweepResult> {
  const p = projectDeps(deps);
  const secret = await deps.store.getCurrentVersion(binding.secretArn);
  if (secret.state === 'deleted') {
    deps.metrics.count('RetirementDeferred');
    deps.logger.warn(`Not deleted yet: the secret is scheduled for deletion, so AWSCURRENT cannot be read; the record stays until it is restored or deleted for good`, {
      secretArn: binding.secretArn,
    });
    return { outcome: 'deferred', retirement: undefined };
  }
  if (secret.state !== 'current') {
    deps.metrics.count('RetirementCleared');
    deps.logger.error(`Not deleted: the secret no longer exists, so AWSCURRENT cannot be checked; Stytch still has the previous project secret ${due.previousSecretId ?? ''}: delete it in the dashboard if no one uses it`, {
      secretArn: binding.secretArn,
    });
    return { outcome: 'cleared', retirement: null };
  }
  const cur = parseSecretJson(projectSecretSchema, secret.value, `The AWSCURRENT value of secret ${secret.name}`, FIX_CURRENT);
  // VII: act only on the project environment the secret is bound to, whatever its value says now.
  const now = projectBinding(binding.secretArn, cur);
  if (now.projectId !== binding.projectId || now.clientId !== binding.clientId) {
    deps.metrics.count('BindingRefused');
    throw new BindingError(
      `The AWSCURRENT value of secret ${secret.name} names a project other than the bound ${binding.projectId} (${binding.clientId}); the sweep does not act on it. Restore the value, or rebind with the CLI (bind).`,
    );
  }
  const m = p.management();
  const env = envOf(cur);
  if (due.previousSecretId && due.previousSecretId !== cur.secret_id) {
    const previous = await m.get(env, due.previousSecretId);
    const usedAt = previous?.usedAt === undefined ? NaN : Date.parse(previous.usedAt);
    const clockNow = deps.lease.clock.now();
    if (previous && previous.last4 === due.previousLast4 && usedAt > (due.movedAt ?? 0) && usedAt >= clockNow - RECENT_USE_MS) {
      // Someone still authenticates with the previous secret after AWSCURRENT moved: give them one more window, once.
      deps.metrics.count('PreviousSecretStillUsed');
      if (!due.deferred) {
        const until = clockNow + p.inUseDeferSeconds * 1000;
        deps.logger.warn('The previous project secret is still in use after AWSCURRENT moved: its deletion is put off once', {
          secretArn: binding.secretArn,
          previousSecretId: due.previousSecretId,
          lastUsedAt: previous.usedAt,
          deleteAfter: new Date(until).toISOString(),
        });
        deps.metrics.count('RetirementDeferred');
        return { outcome: 'deferred', retirement: { ...due, dueAt: until, deferred: true } };
      }
      deps.logger.warn('The previous project secret is still in use after its deletion was put off once: deleting it now', {
        secretArn: binding.secretArn,
        previousSecretId: due.previousSecretId,
        lastUsedAt: previous.usedAt,
      });
    }
  }
  const result = await deletePrevious(cur, due, m, env);
  if (result.kind === 'deleted') {
    deps.metrics.count('PreviousSecretRetired');
    deps.logger.info('Deleted the previous project secret: its overlap window has ended', {
      secretArn: binding.secretArn,
      retiredSecretId: due.previousSecretId,
      windowEndedAt: new Date(due.dueAt).toISOString(),
    });
    return { outcome: 'retired', retirement: null };
  }
  deps.metrics.count('RetirementCleared');
  deps.logger[result.level](result.why, { secretArn: binding.secretArn, previousSecretId: due.previousSecretId });
  return { outcome: 'cleared', retirement: null };
}

// ---------------------------------------------------------------- messages

function mismatch(r: ProjectRotation, label: string, value: ProjectSecret, info: ProjectSecretInfo): InvalidInputError {
  return new InvalidInputError(
    `${label} of ${r.name} names secret_id ${value.secret_id}, which ends …${info.last4} at Stytch, but its secret ends …${last4(value.secret)}: the value was written outside this function. ` +
      `Nothing was deleted. Put the matching secret_id and secret together, then rotate again.`,
  );
}

function currentNotAtStytch(r: ProjectRotation, info: ProjectSecretInfo | undefined): InvalidInputError {
  const what = info
    ? `Stytch's secret ${r.cur.secret_id} ends …${info.last4}, but AWSCURRENT's secret ends …${last4(r.cur.secret)}`
    : `Stytch has no secret ${r.cur.secret_id} in project ${envName(r.env)}`;
  return new InvalidInputError(
    `${what}, so the function cannot tell which secret AWSCURRENT is and would not know what to delete after the rotation. Nothing was changed. ` +
      `Set secret_id in ${r.name} to the id of the secret it holds (the CLI's status lists the project's secrets with their last four), then rotate again.`,
  );
}
