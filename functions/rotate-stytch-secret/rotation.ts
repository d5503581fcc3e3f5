import { InvalidInputError, isTransient, RotationError, TransientError, VerificationError } from '../lib/errors.js';
import type { RotationLogger, RotationMetrics } from '../lib/observability.js';
import { isProjectSecretText, parseSecretJson, rotatedSecretSchema, type RotatedSecret, type RotationEvent } from '../lib/schemas.js';
import { runProjectStep, type ProjectSecretDeps } from './project-secret.js';
import { clientSecretSpan, SECRET_VALUE_LIMIT_BYTES, withClientSecret } from '../lib/secret-json.js';
import { AWSCURRENT, AWSPENDING, type SecretStore } from '../lib/secrets/store.js';
import { takeLease, type HeldLease, type LeaseClock, type LeaseEvent } from '../lib/state/lease.js';
import { BindingError, type Binding, type Retirement, type StateTable } from '../lib/state/table.js';
import { labelOf, type ClientProvider, type ClientState } from '../lib/stytch/index.js';

/**
 * The four rotation steps and the failure policy, in the order they happen
 * (DESIGN.md §4). Roman numerals name the invariants of DESIGN.md §3:
 * I never an outage, II never a lost secret, III the old secret is retired,
 * IV idempotent and resumable, V no secret leaves the vault, VI one mutator
 * per Stytch client, VII a rotation acts only on its bound client.
 *
 * Stytch's state is read through last fours: S4 = client_secret_last_four,
 * N4 = next_client_secret_last_four, compared with the secrets Secrets
 * Manager holds.
 */

/** What a rotated secret's value says about where it lives at Stytch. */
export type StytchTarget = Pick<RotatedSecret, 'client_id' | 'client_kind' | 'stytch_credentials_secret_id'>;

export interface LeaseSettings {
  /** Unique per invocation: whose lease it is. */
  holder: string;
  /** Epoch ms the lease lasts to: the invocation's deadline plus a margin for a request in flight (VI). */
  until: number;
  /** Epoch ms after which a held lease is not waited for any more. */
  waitUntil: number;
  clock: LeaseClock;
}

export interface RotationDeps {
  store: SecretStore;
  /** The Stytch client kind for the rotated secret, with its credentials; no call is made until a verb is used. */
  stytch: (secret: StytchTarget) => ClientProvider;
  /** The Stytch project of the credentials a secret uses (reads the credentials secret, cached): part of the binding (VII). */
  projectOf: (secret: StytchTarget) => Promise<string>;
  state: StateTable;
  lease: LeaseSettings;
  /** PREVIOUS_SECRET_GRACE_SECONDS: the overlap window (0: retire in finishSecret). */
  graceSeconds: number;
  logger: RotationLogger;
  metrics: RotationMetrics;
  /** Stytch's management API and the probe, for rotated project secrets (DESIGN.md §4b); absent where none are rotated. */
  projectSecrets?: ProjectSecretDeps;
}

export type StepOutcome =
  | 'created'
  | 'resumed'
  | 'verified'
  | 'configuration-ok'
  | 'rotated'
  | 'rotated-overlap'
  | 'already-current'
  | 'completed-half-done';

interface Rotation {
  event: RotationEvent;
  token: string;
  arn: string;
  name: string;
  currentVersionId: string;
  cur: RotatedSecret;
  /** AWSCURRENT's value as stored: the new version is this text with only client_secret replaced. */
  curText: string;
  /** The token version's value; undefined until createSecret stores it (or in a configuration test). */
  pend: RotatedSecret | undefined;
  alreadyCurrent: boolean;
  /** The version labelled AWSPREVIOUS, if any. */
  previousVersionId: string | undefined;
  clientId: string;
  stytch: ClientProvider;
  client: string;
  deps: RotationDeps;
  /** The lease on the client, held for the whole step (VI). */
  lease?: HeldLease;
  /** What the lease's release writes: a due retirement (III), null to clear it, undefined to leave it. */
  retirement?: Retirement | null;
  /** finishSecret could not tell whether AWSCURRENT moved: its retirement intent stays recorded. */
  moveUnknown?: boolean;
}

const last4 = (secret: RotatedSecret) => secret.client_secret.slice(-4);

/** Stytch accepts this secret (as current or as next). */
const accepts = (state: ClientState, secret: RotatedSecret) =>
  state.secretLast4 === last4(secret) || state.nextSecretLast4 === last4(secret);

const stateFields = (state: ClientState) => ({ stytchSecretLast4: state.secretLast4, stytchNextSecretLast4: state.nextSecretLast4 });

export async function runStep(event: RotationEvent, deps: RotationDeps): Promise<StepOutcome> {
  const pre = await readPreamble(event, deps);
  // A Stytch project API secret (DESIGN.md §4b) has steps of its own: no rotating state at Stytch.
  if (isProjectSecretText(pre.curText)) return runProjectStep(pre, deps);
  const r = await readRotation(event, deps, pre);
  if (r.alreadyCurrent && event.Step !== 'finishSecret') {
    deps.logger.info('The version is already AWSCURRENT: nothing to do');
    return 'already-current';
  }
  const binding = await bindingOf(r);
  // III: only finishSecret, on a version not yet AWSCURRENT, records the previous secret's retirement as it takes the lease.
  const recordsIntent = event.Step === 'finishSecret' && !r.alreadyCurrent;

  // VI: every decision below is taken, and carried out, under the client's lease. VII: taking it binds
  // an unbound secret, in its configuration test too (RotateImmediately=false): that changes nothing at
  // Stytch or in Secrets Manager, and it closes the time until the first rotation in which another
  // secret's value could claim this client first.
  r.lease = await refuseMismatch(r, () =>
    takeLease(
      deps.state,
      {
        binding,
        bind: true,
        holder: deps.lease.holder,
        what: `${event.Step} of version ${r.token}`,
        until: deps.lease.until,
        retirement: recordsIntent ? retirementIntent(r) : undefined,
      },
      { waitUntil: deps.lease.waitUntil, clock: deps.lease.clock, onEvent: (e) => leaseEvent(r, e) },
    ),
  );
  let outcome: StepOutcome;
  try {
    outcome = await runUnderLease(r);
  } catch (error) {
    // finishSecret's retirement intent is void unless AWSCURRENT moved (kept when that is unknown: III):
    // the record it replaced comes back (a window still open must not be lost to a failed finishSecret).
    // A createSecret that failed leaves the record alone.
    const voidIntent = recordsIntent && !r.moveUnknown;
    await giveBack(r, r.retirement !== undefined ? r.retirement : voidIntent ? (r.lease!.previous?.retirement ?? null) : undefined);
    throw error;
  }
  await giveBack(r, r.retirement);
  return outcome;
}

async function runUnderLease(r: Rotation): Promise<StepOutcome> {
  // createSecret's decisions (orphan, half-done, overlap) depend on AWSCURRENT: it reads the labels again
  // under the lease. So does any step that waited for the lease: what it read before may be stale (a
  // duplicate of it, or a whole newer rotation, ran meanwhile), and would only make for false alarms.
  if (r.event.Step === 'createSecret' || r.lease!.contended) {
    const fresh = await readRotation(r.event, r.deps);
    // VII: the lease covers the binding the value named before; a value that now names another is not acted on.
    if (!sameBinding(await bindingOf(fresh), r.lease!.binding)) {
      throw new TransientError(
        `AWSCURRENT of ${r.name} changed to another version while this step waited for its lease; Secrets Manager's reattempt starts from the new value.`,
      );
    }
    Object.assign(r, { ...fresh, lease: r.lease, stytch: r.stytch, deps: r.deps });
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

/** What every kind of rotated secret reads first: the secret, its labels and AWSCURRENT's text. */
export interface Preamble {
  event: RotationEvent;
  token: string;
  arn: string;
  name: string;
  currentVersionId: string;
  /** AWSCURRENT's value as stored (undefined for a binary secret). */
  curText: string | undefined;
  alreadyCurrent: boolean;
  /** The version labelled AWSPREVIOUS, if any. */
  previousVersionId: string | undefined;
}

/** The preamble of AWS's rotation template: bad input is rejected here, before any Stytch call or table write. */
export async function readPreamble(event: RotationEvent, deps: Pick<RotationDeps, 'store'>): Promise<Preamble> {
  const { store } = deps;
  const token = event.ClientRequestToken;
  const secret = await store.describe(event.SecretId);
  const { arn, name } = secret;
  if (secret.deleted) {
    throw new InvalidInputError(
      `Secret ${name} is scheduled for deletion, so it cannot be rotated. Restore it with aws secretsmanager restore-secret --secret-id ${name}, or cancel its rotation with aws secretsmanager cancel-rotate-secret --secret-id ${name}.`,
    );
  }
  if (!secret.rotationEnabled) {
    throw new InvalidInputError(
      `Secret ${name} does not have rotation enabled. Turn it on with aws secretsmanager rotate-secret --secret-id ${name} --rotation-lambda-arn <this function's ARN>, or a RotationSchedule.`,
    );
  }
  // DescribeSecret lists only the versions that carry a label: a version it lists has at least one.
  const stages = secret.versions[token];
  if (!stages) {
    throw new InvalidInputError(
      `Version ${token} is not a version of secret ${name}. Secrets Manager passes the pending version id as ClientRequestToken: start rotations with aws secretsmanager rotate-secret.`,
    );
  }
  if (!secret.currentVersionId) {
    throw new InvalidInputError(`Secret ${name} has no AWSCURRENT version; put the client's current secret into it first.`);
  }
  const alreadyCurrent = stages.includes(AWSCURRENT);
  if (!alreadyCurrent && !stages.includes(AWSPENDING)) {
    throw new InvalidInputError(
      `Version ${token} of secret ${name} is not labelled AWSPENDING (its labels: ${stages.join(', ')}), so no rotation is under way to it; start one with aws secretsmanager rotate-secret --secret-id ${name}.`,
    );
  }
  return {
    event,
    token,
    arn,
    name,
    currentVersionId: secret.currentVersionId,
    curText: await store.getVersion(arn, secret.currentVersionId),
    alreadyCurrent,
    previousVersionId: Object.entries(secret.versions).find(([, labels]) => labels.includes('AWSPREVIOUS'))?.[0],
  };
}

async function readRotation(event: RotationEvent, deps: RotationDeps, known?: Preamble): Promise<Rotation> {
  const pre = known ?? (await readPreamble(event, deps));
  const { arn, name, token, curText, alreadyCurrent } = pre;
  const fix = `It must be JSON with client_id and client_secret; fix it with aws secretsmanager put-secret-value.`;
  const cur = parseSecretJson(rotatedSecretSchema, curText, `The AWSCURRENT value of secret ${name}`, fix);
  // Every other field is copied byte for byte into the new version: refuse a value that could not be (a key given twice).
  clientSecretSpan(curText!, `The AWSCURRENT value of secret ${name}`, fix);
  const pend = alreadyCurrent ? undefined : parsePending(await deps.store.getVersion(arn, token), cur, name, token);
  const stytch = deps.stytch(cur);
  return {
    ...pre,
    cur,
    curText: curText!,
    pend,
    clientId: cur.client_id,
    stytch,
    client: `${labelOf(stytch.kind)} ${cur.client_id}`,
    deps,
  };
}

/** The (secret, project, client, credentials) this rotation would act on: checked against the state table's binding (VII). */
async function bindingOf(r: Rotation): Promise<Binding> {
  return {
    secretArn: r.arn,
    projectId: await r.deps.projectOf(r.cur),
    clientId: r.clientId,
    credentialsSecretId: r.cur.stytch_credentials_secret_id,
    kind: r.stytch.kind,
  };
}

const sameBinding = (a: Binding, b: Binding) =>
  a.secretArn === b.secretArn && a.projectId === b.projectId && a.clientId === b.clientId && a.credentialsSecretId === b.credentialsSecretId && a.kind === b.kind;

/** VII: a value that names another client is refused loudly: it may be a takeover attempt by someone who can write the secret. */
export async function refuseMismatch<T>(r: Pick<Rotation, 'deps'>, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof BindingError) {
      r.deps.metrics.count('BindingRefused');
      r.deps.logger.error('Refused: the value names a client other than the one this secret is bound to', { error: summary(error) });
    }
    throw error;
  }
}

export function leaseEvent(r: Pick<Rotation, 'deps'>, event: LeaseEvent): void {
  const { logger, metrics } = r.deps;
  switch (event.kind) {
    case 'waiting':
      metrics.count('LeaseContended');
      logger.info('Another invocation holds the lease on this client: waiting', { leaseHolderWork: event.lease.what, leaseUntil: new Date(event.lease.until).toISOString() });
      return;
    case 'took-over-expired':
      metrics.count('LeaseExpired');
      logger.warn('Took over an expired lease: its holder ended without giving it back', { leaseHolderWork: event.lease.what });
      return;
    case 'bound':
      metrics.count('BindingCreated');
      logger.info('Bound this secret to its Stytch client (first rotation)');
      return;
  }
}

async function giveBack(r: Rotation, retirement: Retirement | null | undefined): Promise<void> {
  await giveLeaseBack(r.lease!, retirement, r.deps);
}

/** Gives a lease back (a step's or the sweep's); a failure to do so is logged, never fatal: the lease expires on its own. */
export async function giveLeaseBack(
  lease: HeldLease,
  retirement: Retirement | null | undefined,
  deps: Pick<RotationDeps, 'logger' | 'metrics'>,
): Promise<void> {
  try {
    if (!(await lease.release(retirement))) {
      deps.metrics.count('LeaseLost');
      deps.logger.error('The lease had expired and been taken over before it was given back: its holder outlived its deadline plus margin');
    }
  } catch (error) {
    deps.logger.error('Could not give the lease back; it expires on its own', { error: summary(error) });
  }
}

// ---------------------------------------------------------------- createSecret

async function createSecret(r: Rotation): Promise<StepOutcome> {
  const { stytch, deps, cur } = r;
  if (r.pend) {
    const state = await stytch.get(r.clientId);
    refusePrevious(r, state, r.pend);
    if (accepts(state, r.pend)) {
      // IV: a retried or resumed createSecret never mints a second secret.
      deps.logger.info('The pending secret is stored and Stytch holds it: resuming', stateFields(state));
      deps.metrics.count('RotationResumed');
      r.retirement = null; // Stytch holds one next secret: the previous rotation's retirement is over.
      return 'resumed';
    }
    // The rotation was cancelled behind this version's back; the value under
    // this token can never change, so this rotation cannot go on.
    await removePending(r);
    deps.metrics.count('DeadPendingCleared');
    deps.logger.warn('Stytch no longer holds the pending secret; removed AWSPENDING', stateFields(state));
    throw new VerificationError(
      `Stytch no longer holds the pending secret of version ${r.token} (its rotation was cancelled). AWSPENDING was removed from that version; ` +
        `the next rotation starts fresh: aws secretsmanager rotate-secret --secret-id ${r.name}.`,
    );
  }

  refuseTooLarge(r);
  const started = await startRotation(r);
  if (started === 'stored-by-another') {
    // IV: a concurrent invocation of this step stored its secret under this token first.
    deps.logger.info('Another invocation of this step stored the pending secret and Stytch holds it: resuming');
    deps.metrics.count('RotationResumed');
    r.retirement = null;
    return 'resumed';
  }
  const { state, nextSecret } = started;
  // III: a rotation under way at Stytch means the previous one's retirement is done (Stytch holds one next secret).
  r.retirement = null;
  if (!state.confidential) {
    await cancelQuietly(r, 'public client');
    throw new InvalidInputError(publicClientMessage(r, state));
  }
  if (state.secretLast4 !== last4(cur)) {
    // Consumers are already failing; the rotation repairs it, so go on, loudly.
    deps.metrics.count('DriftDetected');
    deps.logger.error('Drift: AWSCURRENT is not the secret Stytch holds; rotating to repair it', {
      awsCurrentLast4: last4(cur),
      ...stateFields(state),
    });
  }

  // Stryker disable next-line StringLiteral: never shown: readRotation already found client_secret in this very text (clientSecretSpan), so withClientSecret cannot throw here
  const value = withClientSecret(r.curText, nextSecret, `The AWSCURRENT value of secret ${r.name}`, 'Fix it with aws secretsmanager put-secret-value.');
  if (Buffer.byteLength(value) > SECRET_VALUE_LIMIT_BYTES) {
    // Stytch's secret came out longer than allowed for: nobody will hold it, so cancel it (II).
    await cancelIfNext(r, nextSecret.slice(-4), 'the new value would exceed the secret size limit');
    throw tooLarge(r, Buffer.byteLength(value));
  }
  try {
    await deps.store.putPending(r.arn, r.token, value, r.event.RotationToken);
  } catch (putError) {
    // II: until this put lands, the next secret exists only in memory.
    let landed: boolean | undefined;
    try {
      // Stryker disable next-line ObjectLiteral,BooleanLiteral: a version's value never changes once written, and the store caches only values Secrets Manager returned or accepted: a cached read returns what a fresh one does
      landed = (await deps.store.getVersion(r.arn, r.token, { fresh: true })) === value;
    } catch (readError) {
      // Unknown: keep Stytch's next secret; the next attempt resumes or repairs it as an orphan (II).
      landed = undefined;
      deps.metrics.count('PutOutcomeUnknown');
      deps.logger.error(
        'PutSecretValue failed and reading the version back failed too: Stytch may hold a next secret that Secrets Manager does not. The next attempt repairs it; if the secret is being deleted, none will: cancel it in the Stytch dashboard.',
        { error: summary(putError), readError: summary(readError), pendingLast4: nextSecret.slice(-4) },
      );
    }
    if (landed) {
      deps.logger.warn('PutSecretValue failed but the value landed: going on', { error: summary(putError) });
      r.retirement = null;
      deps.metrics.count('RotationStarted');
      return 'created';
    }
    if (landed === false) await cancelIfNext(r, nextSecret.slice(-4), 'the pending value could not be stored');
    throw putError;
  }
  deps.metrics.count('RotationStarted');
  deps.logger.info('Started the Stytch rotation and stored the next secret as AWSPENDING', {
    ...stateFields(state),
    pendingLast4: nextSecret.slice(-4),
  });
  return 'created';
}

/**
 * rotate/start, repairing what makes Stytch answer "already rotating": a next
 * secret that Secrets Manager does not hold.
 */
async function startRotation(r: Rotation): Promise<{ state: ClientState; nextSecret: string } | 'stored-by-another'> {
  const { stytch, deps } = r;
  try {
    return await stytch.rotateStart(r.clientId);
  } catch (error) {
    if (!stytch.isAlreadyRotating(error)) throw error;
  }
  const state = await stytch.get(r.clientId);
  // Before calling Stytch's next secret an orphan, look again: a concurrent
  // invocation of this step may have stored it under this token since this
  // one read the version (IV; a crash-orphan is never stored, so it is still cancelled).
  // Stryker disable next-line ObjectLiteral,BooleanLiteral: a version's value never changes once written, and the store caches only values Secrets Manager returned or accepted: a cached read returns what a fresh one does
  const stored = parsePending(await deps.store.getVersion(r.arn, r.token, { fresh: true }), r.cur, r.name, r.token);
  if (stored && state.nextSecretLast4 === last4(stored)) return 'stored-by-another';
  if (state.nextSecretLast4 === last4(r.cur)) {
    // AWSCURRENT is Stytch's next secret: the previous rotation's overlap window, or a rotate that was lost.
    // I: never cancel a next secret that is AWSCURRENT; complete it instead. Stytch holds one next secret
    // only, so this retires the previous secret now (III: "or when the next rotation starts").
    const due = r.lease!.previous?.retirement;
    if (due && due.dueAt > deps.lease.clock.now()) {
      deps.logger.warn('A new rotation starts inside the previous one\'s overlap window: retiring the previous secret early', {
        ...stateFields(state),
        previousSecretAcceptedUntil: new Date(due.dueAt).toISOString(),
      });
      deps.metrics.count('PreviousRetiredEarly');
    } else if (due) {
      deps.logger.info('Retiring the previous secret, whose overlap window is over, before starting this rotation', stateFields(state));
      deps.metrics.count('PreviousSecretRetired');
    } else {
      deps.logger.warn('A previous rotation was not completed at Stytch: completing it before starting this one', stateFields(state));
      deps.metrics.count('HalfDoneCompleted');
    }
    await tolerateNotRotating(stytch, () => stytch.rotate(r.clientId));
    // The previous secret is retired: its record goes with the lease, even if rotate/start fails next.
    r.retirement = null;
  } else if (state.nextSecretLast4 !== null) {
    // II: an orphan (a lost rotate/start answer, a crash before the put, or a
    // rotation started by hand). Nobody holds it, so nobody can be using it.
    deps.logger.warn('Stytch holds a next secret that Secrets Manager does not: cancelling the orphan', stateFields(state));
    await tolerateNotRotating(stytch, () => stytch.rotateCancel(r.clientId));
    deps.metrics.count('OrphanRepaired');
  }
  try {
    return await stytch.rotateStart(r.clientId);
  } catch (error) {
    // Stytch has a next secret again right after this invocation cleared it: the answer to its own start
    // was lost (its retry then finds it), or a start from outside came in between. Either way nobody holds
    // it yet: transient, and the reattempt cancels it as an orphan before starting (II).
    if (stytch.isAlreadyRotating(error)) {
      throw new TransientError('Stytch reports a rotation already in progress right after this one cleared it; the reattempt repairs it.', { cause: error });
    }
    throw error;
  }
}

// ---------------------------------------------------------------- setSecret

/** Stytch created the credential at rotate/start: check it still holds the pending secret. */
async function setSecret(r: Rotation): Promise<StepOutcome> {
  const pend = requirePending(r);
  await withFailurePolicy(r, async () => verifyHeld(r, await r.stytch.get(r.clientId), pend));
  r.deps.logger.info('Stytch holds the pending secret');
  return 'verified';
}

// ---------------------------------------------------------------- testSecret

async function testSecret(r: Rotation): Promise<StepOutcome> {
  if (!r.pend) return configurationTest(r);
  const pend = r.pend;
  const probe = r.stytch.probe;
  await withFailurePolicy(r, async () => {
    // Where a probe exists, a secret that authenticates is one Stytch holds: it
    // is the stronger check and makes the read of the last fours redundant.
    if (probe) return probe(r.clientId, pend.client_secret);
    const state = await r.stytch.get(r.clientId);
    verifyHeld(r, state, pend);
    if (!state.confidential) throw new InvalidInputError(publicClientMessage(r, state));
  });
  // Stryker disable next-line StringLiteral: log wording, which test/mutation/log-wording.mjs leaves alone (it does not look inside a conditional)
  r.deps.logger.info(r.stytch.probe ? 'The pending secret authenticates at Stytch' : 'Stytch holds the pending secret');
  return 'verified';
}

/**
 * Secrets Manager's test of a rotation set up with RotateImmediately=false:
 * the token version has no value. Check the configuration, change nothing.
 */
async function configurationTest(r: Rotation): Promise<StepOutcome> {
  const state = await r.stytch.get(r.clientId);
  if (!state.confidential) throw new InvalidInputError(publicClientMessage(r, state));
  if (!accepts(state, r.cur)) {
    r.deps.metrics.count('DriftDetected');
    throw new VerificationError(
      `Stytch does not accept the AWSCURRENT secret of ${r.name} (it ends ${last4(r.cur)}; Stytch's secrets end ${state.secretLast4 ?? 'none'} and ${state.nextSecretLast4 ?? 'none'}). ` +
        `Consumers of this secret are failing: put the client's current secret into it, or rotate it now to issue a new one.`,
    );
  }
  if (r.stytch.probe) await r.stytch.probe(r.clientId, r.cur.client_secret, 'current');
  r.deps.logger.info('Configuration test passed: credentials work and Stytch accepts AWSCURRENT', stateFields(state));
  return 'configuration-ok';
}

// ---------------------------------------------------------------- finishSecret

async function finishSecret(r: Rotation): Promise<StepOutcome> {
  const { stytch, deps } = r;
  const pend = requirePending(r);
  const state = await withFailurePolicy(r, async () => {
    const s = await stytch.get(r.clientId);
    // I: never move AWSCURRENT to a secret Stytch does not accept.
    verifyHeld(r, s, pend);
    await moveCurrent(r);
    return s;
  });

  // From here on AWSCURRENT is the pending secret: never cancel (I). A
  // failure is repaired by the reattempt or the next createSecret.
  if (state.nextSecretLast4 === last4(pend) && deps.graceSeconds > 0) {
    // I: the previous secret keeps working through the overlap window, so apps that cache it never
    // fail; III: the sweep retires it once the window has ended. The record goes with the lease.
    r.retirement = retirementOf(r, pend, state, deps.lease.clock.now());
    deps.metrics.count('RotationCompleted');
    deps.logger.info('Rotation complete: AWSCURRENT moved; the previous secret keeps working until the overlap window ends', {
      pendingLast4: last4(pend),
      previousSecretLast4: r.retirement.previousLast4,
      previousSecretAcceptedUntil: new Date(r.retirement.dueAt).toISOString(),
    });
    return 'rotated-overlap';
  }
  r.retirement = null;
  if (state.nextSecretLast4 === last4(pend)) {
    try {
      await stytch.rotate(r.clientId);
    } catch (error) {
      if (!stytch.isNotRotating(error)) {
        deps.logger.error('AWSCURRENT moved but Stytch did not complete the rotation; the next attempt completes it', { error: summary(error) });
        throw error;
      }
      // A retried rotate whose first answer was lost: confirm it took.
      const after = await stytch.get(r.clientId);
      if (after.secretLast4 !== last4(pend)) throw driftAfterLabel(r, after);
    }
  } else {
    deps.logger.info('Stytch had already made the pending secret current', stateFields(state));
  }
  deps.metrics.count('RotationCompleted');
  deps.logger.info('Rotation complete: AWSCURRENT moved and the old secret retired at Stytch', { pendingLast4: last4(pend) });
  return 'rotated';
}

/**
 * finishSecret on a version that is already AWSCURRENT: a reattempt after the
 * label moved. Make sure Stytch completed (III) without touching AWSCURRENT.
 */
async function completeAfterLabel(r: Rotation): Promise<StepOutcome> {
  const state = await r.stytch.get(r.clientId);
  if (state.nextSecretLast4 === last4(r.cur) && r.deps.graceSeconds > 0) {
    // Inside the overlap window: make sure its end is recorded (III), never retire early here.
    const recorded = r.lease!.previous?.retirement;
    if (recorded?.versionId === r.token) {
      // Recorded by the step that moved the label: keep its time (this step's intent, if any, is replaced).
      r.retirement = recorded;
    } else {
      r.retirement = retirementOf(r, r.cur, state, r.deps.lease.clock.now());
      r.deps.metrics.count('RetirementRecordedLate');
      r.deps.logger.warn('The retirement of the previous secret had not been recorded (the step that moved AWSCURRENT ended early): recorded now, its window counted from now', {
        previousSecretAcceptedUntil: new Date(r.retirement.dueAt).toISOString(),
      });
    }
    r.deps.logger.info('The version is already AWSCURRENT; the previous secret is retired when its overlap window ends');
    return 'already-current';
  }
  if (state.nextSecretLast4 === last4(r.cur)) {
    await tolerateNotRotating(r.stytch, () => r.stytch.rotate(r.clientId));
    r.deps.metrics.count('HalfDoneCompleted');
    r.deps.metrics.count('RotationCompleted');
    r.deps.logger.info('Completed at Stytch a rotation whose AWSCURRENT had already moved', stateFields(state));
    return 'completed-half-done';
  }
  if (state.secretLast4 !== last4(r.cur)) throw driftAfterLabel(r, state);
  r.deps.logger.info('The version is already AWSCURRENT and Stytch completed: nothing to do');
  return 'already-current';
}

/** Moves AWSCURRENT to the token, surviving an SDK retry of a move whose first answer was lost. */
export async function moveCurrent(r: Pick<Rotation, 'deps' | 'arn' | 'token' | 'currentVersionId' | 'moveUnknown'>): Promise<void> {
  try {
    await r.deps.store.moveStage(r.arn, AWSCURRENT, r.token, r.currentVersionId);
  } catch (error) {
    let now;
    try {
      now = await r.deps.store.describe(r.arn);
    } catch {
      // Unknown whether the label moved: transient, so nothing is cancelled (I), and the retirement stays recorded (III).
      r.moveUnknown = true;
      throw new TransientError(`Moving AWSCURRENT to version ${r.token} may or may not have happened (${messageOf(error)}); Secrets Manager's reattempt finds out.`, {
        cause: error,
      });
    }
    if (now.versions[r.token]?.includes(AWSCURRENT)) return;
    throw error;
  }
  r.deps.logger.info('Moved AWSCURRENT to the pending version', { previousVersionId: r.currentVersionId });
}

// ---------------------------------------------------------------- failure policy

/**
 * Runs work that may fail between rotate/start and the AWSCURRENT move.
 * Transient failures are rethrown untouched: the pending secret is stored (II)
 * and Secrets Manager reattempts with the same token (IV). Definitive ones
 * cancel at Stytch and clear AWSPENDING, so the next rotation starts clean.
 */
async function withFailurePolicy<T>(r: Rotation, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (isTransient(error) || !r.pend) throw error;
    return await cancelRotation(r, r.pend, error);
  }
}

async function cancelRotation(r: Rotation, pend: RotatedSecret, error: unknown): Promise<never> {
  const { stytch, deps } = r;
  const reason = messageOf(error);
  let cancelled = false;
  try {
    // I: never cancel a pending secret that is already AWSCURRENT.
    if ((await deps.store.describe(r.arn)).versions[r.token]?.includes(AWSCURRENT)) {
      throw new RotationError('the pending version is already AWSCURRENT');
    }
    const state = await stytch.get(r.clientId);
    if (state.secretLast4 === last4(pend)) {
      // Stytch already made the pending secret its only one: dropping it would lose it (II).
      throw new RotationError('Stytch has already made the pending secret current');
    }
    if (state.nextSecretLast4 === last4(pend)) {
      await tolerateNotRotating(stytch, () => stytch.rotateCancel(r.clientId));
      cancelled = true;
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
  deps.logger.warn('Rotation cancelled', { error: summary(error), cancelledAtStytch: cancelled });
  throw new RotationError(
    `${reason} The rotation was cancelled: ${cancelled ? 'Stytch discarded the pending secret and ' : ''}AWSPENDING was removed from version ${r.token}; ` +
      `AWSCURRENT is unchanged and still works. Fix the cause, then run aws secretsmanager rotate-secret --secret-id ${r.name}.`,
    { cause: error },
  );
}

/** Cancels only if Stytch's next secret is the one this invocation started (never someone else's). */
async function cancelIfNext(r: Rotation, nextLast4: string, why: string): Promise<void> {
  try {
    const state = await r.stytch.get(r.clientId);
    if (state.nextSecretLast4 !== nextLast4) return;
    await tolerateNotRotating(r.stytch, () => r.stytch.rotateCancel(r.clientId));
    r.deps.metrics.count('RotationCancelled');
    r.deps.logger.warn(`Cancelled the Stytch rotation: ${why}`);
  } catch (error) {
    // The next attempt's createSecret finds the orphan and cancels it (II).
    r.deps.logger.error(`Could not cancel the Stytch rotation (${why}); the next attempt repairs it`, { error: summary(error) });
  }
}

async function cancelQuietly(r: Rotation, why: string): Promise<void> {
  try {
    await tolerateNotRotating(r.stytch, () => r.stytch.rotateCancel(r.clientId));
  } catch (error) {
    r.deps.logger.error(`Could not cancel the Stytch rotation (${why}); the next attempt repairs it`, { error: summary(error) });
  }
}

// ---------------------------------------------------------------- helpers

function parsePending(text: string | undefined, cur: RotatedSecret, name: string, token: string): RotatedSecret | undefined {
  if (text === undefined) return undefined;
  const removeIt = `Remove AWSPENDING from it (aws secretsmanager update-secret-version-stage --secret-id ${name} --version-stage AWSPENDING --remove-from-version-id ${token}) and rotate again.`;
  const pend = parseSecretJson(rotatedSecretSchema, text, `The AWSPENDING value (version ${token}) of secret ${name}`, removeIt);
  // No confused deputy: a rotation never moves a secret to another client.
  if (pend.client_id !== cur.client_id) {
    throw new InvalidInputError(
      `The pending version ${token} names client ${pend.client_id} but AWSCURRENT names ${cur.client_id}; a rotation never changes the client. ${removeIt}`,
    );
  }
  if (pend.client_secret === cur.client_secret) {
    // Never report a rotation that issued nothing: a copy of AWSCURRENT was put as AWSPENDING outside this function.
    throw new InvalidInputError(`The pending version ${token} holds the same client_secret as AWSCURRENT, so it is not a new secret. ${removeIt}`);
  }
  return pend;
}

/** Removes AWSPENDING from the token version, accepting that an SDK retry finds it already gone. */
export async function removePending(r: Pick<Rotation, 'deps' | 'arn' | 'token'>): Promise<void> {
  try {
    await r.deps.store.removeStage(r.arn, AWSPENDING, r.token);
  } catch (error) {
    const now = await r.deps.store.describe(r.arn).catch(() => undefined);
    if (now && !now.versions[r.token]?.includes(AWSPENDING)) return;
    throw error;
  }
}

/**
 * Written with finishSecret's lease, before AWSCURRENT moves, so that a crash
 * after the move still leaves the retirement recorded (III). Its due time is
 * past the lease's end: the move happens before that, so the window is never
 * cut short. The step's release then writes the exact time, or clears it if
 * the label did not move.
 */
function retirementIntent(r: Rotation): Retirement | undefined {
  if (r.deps.graceSeconds === 0 || !r.pend) return undefined;
  return {
    dueAt: r.deps.lease.until + r.deps.graceSeconds * 1000,
    versionId: r.token,
    last4: last4(r.pend),
    previousVersionId: r.currentVersionId,
    previousLast4: last4(r.cur),
  };
}

/** The retirement of Stytch's current secret once AWSCURRENT (`now` on `secret`) has moved. */
function retirementOf(r: Rotation, secret: RotatedSecret, state: ClientState, now: number): Retirement {
  return {
    dueAt: now + r.deps.graceSeconds * 1000,
    versionId: r.token,
    last4: last4(secret),
    previousVersionId: r.alreadyCurrent ? (r.previousVersionId ?? '') : r.currentVersionId,
    previousLast4: state.secretLast4 ?? '',
  };
}

/** Room a new client_secret may take in the value: Stytch's secrets are far shorter. */
const NEW_SECRET_ALLOWANCE_BYTES = 512;

/** Refused before rotate/start: a value so large that the new version could not be stored would fail every attempt. */
function refuseTooLarge(r: Rotation): void {
  // Stryker disable next-line StringLiteral: readRotation scanned this same text with clientSecretSpan already, so neither message can be thrown here
  const { start, end } = clientSecretSpan(r.curText, `The AWSCURRENT value of secret ${r.name}`, '');
  const others = Buffer.byteLength(r.curText) - Buffer.byteLength(r.curText.slice(start, end));
  if (others + NEW_SECRET_ALLOWANCE_BYTES > SECRET_VALUE_LIMIT_BYTES) throw tooLarge(r, others + NEW_SECRET_ALLOWANCE_BYTES);
}

function tooLarge(r: Rotation, bytes: number): InvalidInputError {
  return new InvalidInputError(
    `The new version of ${r.name} would be about ${bytes} bytes (its other fields plus a new client_secret), over Secrets Manager's limit of ${SECRET_VALUE_LIMIT_BYTES} bytes. ` +
      `Nothing was changed. Make the other fields smaller (aws secretsmanager put-secret-value), or keep them in another secret.`,
  );
}

export function requirePending<T>(r: { pend: T | undefined; token: string; name: string }): T {
  if (r.pend) return r.pend;
  // createSecret has not stored a value: Secrets Manager reattempts the whole rotation from createSecret.
  throw new TransientError(
    `Version ${r.token} of secret ${r.name} has no value yet: createSecret has not completed. Secrets Manager reattempts the rotation from createSecret.`,
  );
}

function verifyHeld(r: Rotation, state: ClientState, pend: RotatedSecret): void {
  refusePrevious(r, state, pend);
  if (accepts(state, pend)) return;
  throw new VerificationError(
    `Stytch does not hold the pending secret of version ${r.token} (it ends ${last4(pend)}; Stytch's secrets end ${state.secretLast4 ?? 'none'} and ${state.nextSecretLast4 ?? 'none'}): ` +
      `its rotation was cancelled or replaced outside this function.`,
  );
}

/**
 * A pending secret that is Stytch's current one while AWSCURRENT is its next: the previous secret, still
 * accepted in its overlap window, copied under AWSPENDING. Never reported as a rotation (nothing was
 * issued), and never allowed to clear the window's retirement (III).
 */
function refusePrevious(r: Rotation, state: ClientState, pend: RotatedSecret): void {
  if (state.secretLast4 !== last4(pend) || state.nextSecretLast4 !== last4(r.cur) || last4(pend) === last4(r.cur)) return;
  throw new InvalidInputError(
    `The pending version ${r.token} holds the previous secret (…${last4(pend)}, still accepted until its overlap window ends), not a new one. ` +
      `Remove AWSPENDING from it (aws secretsmanager update-secret-version-stage --secret-id ${r.name} --version-stage AWSPENDING --remove-from-version-id ${r.token}) and rotate again.`,
  );
}

function driftAfterLabel(r: Rotation, state: ClientState): VerificationError {
  r.deps.metrics.count('DriftDetected');
  return new VerificationError(
    `AWSCURRENT of ${r.name} (ending ${last4(r.pend ?? r.cur)}) is not the secret Stytch holds (${state.secretLast4 ?? 'none'}, next ${state.nextSecretLast4 ?? 'none'}): ` +
      `the client was changed outside this function. Rotate again to issue a secret both agree on: aws secretsmanager rotate-secret --secret-id ${r.name}.`,
  );
}

function publicClientMessage(r: Rotation, state: ClientState): string {
  // A client is public only by its client_type (one without it counts as confidential), so Stytch named it.
  return `${r.client} is a public client (${state.clientType}) and has no secret to rotate; rotate only confidential clients (first_party, third_party).`;
}

async function tolerateNotRotating(stytch: ClientProvider, call: () => Promise<unknown>): Promise<void> {
  try {
    await call();
  } catch (error) {
    // A retried call whose first answer was lost, or someone got there first: the end state is the one wanted.
    if (!stytch.isNotRotating(error)) throw error;
  }
}

export function messageOf(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return /[.!?)]$/.test(text) ? text : `${text}.`;
}

/** For logs: the error's class, message and Stytch ids; messages never carry a secret (V). */
export function summary(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { message: String(error) };
  const fields: Record<string, unknown> = { name: error.name, message: error.message };
  // Stytch's ids, from the error or those it wraps (a failed M2M probe: the OAuth `error` and request id).
  const chain: Error[] = [];
  for (let e: unknown = error; e instanceof Error && chain.length < 4; e = e.cause) chain.unshift(e);
  for (const source of chain) {
    for (const key of ['statusCode', 'errorType', 'requestId', 'operation'] as const) {
      if (key in source) fields[key] = (source as unknown as Record<string, unknown>)[key];
    }
  }
  return fields;
}
