import { RotationError } from '../lib/errors.js';
import { parseSecretJson, rotatedSecretSchema, type RotatedSecret } from '../lib/schemas.js';
import { LeaseBusyError, takeLease, type HeldLease } from '../lib/state/lease.js';
import { BindingError, type Binding, type ClientRecord, type Retirement } from '../lib/state/table.js';
import type { ClientProvider, ClientState } from '../lib/stytch/index.js';
import { sweepProjectSecret } from './project-secret.js';
import { giveLeaseBack, summary, type RotationDeps } from './rotation.js';

/**
 * The retirement sweep (DESIGN.md §4, invariant III): an EventBridge schedule
 * invokes the function; for every client whose overlap window has ended, under
 * that client's lease (VI), Stytch's previous secret is retired by completing
 * the rotation (`rotate`), which only ever leaves AWSCURRENT's secret working
 * (I). Bounded by the invocation's budget: what is left waits for the next
 * sweep. Every due client is tried; the sweep fails afterwards if any did.
 */

/** What a step gets (its `lease`: what every retirement takes, never waited for), and the sweep's budget. */
export interface SweepDeps extends Omit<RotationDeps, 'graceSeconds'> {
  /** Epoch ms after which no new retirement is started. */
  stopBy: number;
  /** Retirements run at once. */
  concurrency: number;
}

export interface SweepResult {
  /** Clients whose retirement was due when the sweep started. */
  due: number;
  /** Previous secrets retired at Stytch by this sweep. */
  retired: number;
  /** Records cleared with nothing to retire (already retired, or a newer rotation took over). */
  cleared: number;
  /** Skipped because a step held the client's lease: the next sweep tries again. */
  deferred: number;
  failed: number;
  /** Not started for lack of time: the next sweep takes them. */
  leftForNextSweep: number;
}

type Outcome = 'retired' | 'cleared' | 'deferred' | 'failed' | 'not-due';

const last4 = (secret: RotatedSecret) => secret.client_secret.slice(-4);

export async function runSweep(deps: SweepDeps): Promise<SweepResult> {
  const now = deps.lease.clock.now();
  const due: ClientRecord[] = [];
  for await (const record of deps.state.dueRetirements(now)) due.push(record);
  const result: SweepResult = { due: due.length, retired: 0, cleared: 0, deferred: 0, failed: 0, leftForNextSweep: 0 };
  const failures: string[] = [];

  const failed = (binding: Binding, error: unknown) => {
    failures.push(`${binding.secretArn}: ${error instanceof Error ? error.message : String(error)}`);
    deps.metrics.count('RetirementFailed');
    deps.logger.error('Could not retire the previous secret; the next sweep tries again', {
      secretArn: binding.secretArn,
      clientId: binding.clientId,
      error: summary(error),
    });
    return 'failed' as const;
  };

  let next = 0;
  const worker = async () => {
    while (next < due.length) {
      if (deps.lease.clock.now() >= deps.stopBy) return;
      const { binding, ref, retirement } = due[next++]!;
      let outcome: Outcome;
      if (binding) {
        outcome = await retireOne(binding, deps).catch((error: unknown) => failed(binding, error));
      } else {
        // Stryker disable next-line OptionalChaining: the scan yields only records with a retirement (retire_due set)
        outcome = unbound(ref.clientId, retirement?.previousLast4, deps);
      }
      if (outcome !== 'not-due') result[outcome]++;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(deps.concurrency, due.length)) }, worker));
  result.leftForNextSweep = due.length - next;

  deps.logger.info('Retirement sweep done', { ...result });
  if (result.leftForNextSweep > 0) {
    deps.logger.warn('The sweep ran out of time; the next sweep takes the rest', { leftForNextSweep: result.leftForNextSweep });
  }
  if (failures.length > 0) {
    throw new RotationError(
      `The retirement sweep could not retire ${failures.length} of ${due.length} due previous secret(s); they stay accepted by Stytch until a sweep succeeds. First: ${failures[0]}`,
    );
  }
  return result;
}

/** An administrator rebound the secret elsewhere: the client owes a retirement no secret can vouch for (VII), so it waits for them. */
function unbound(clientId: string, previousLast4: string | undefined, deps: SweepDeps): 'deferred' {
  deps.metrics.count('RetirementDeferred');
  deps.logger.warn('A due retirement belongs to a client no secret is bound to (rebound by an administrator): bind it again, or retire it with the CLI', {
    clientId,
    previousLast4,
  });
  return 'deferred';
}

/**
 * VII: the lease refused the binding the scan read, so an administrator bound the client again since (to another
 * secret, or through other credentials). Nothing was taken; the next sweep reads the new binding and decides on it.
 */
function rebound(scanned: Binding, refusal: BindingError, deps: SweepDeps): 'deferred' {
  deps.metrics.count('RetirementDeferred');
  deps.logger.warn('The client was bound again since the sweep read the state table: its retirement waits for the next sweep, which decides on its binding then', {
    clientId: scanned.clientId,
    secretArn: scanned.secretArn,
    reason: refusal.message,
  });
  return 'deferred';
}

/** One client, bound when the scan saw it: under its lease, retire the previous secret if, and only if, that leaves AWSCURRENT's secret working. */
async function retireOne(binding: Binding, deps: SweepDeps): Promise<Outcome> {
  let lease: HeldLease;
  try {
    lease = await takeLease(
      deps.state,
      { binding, bind: false, holder: deps.lease.holder, what: 'retirement sweep', until: deps.lease.until },
      { waitUntil: 0, clock: deps.lease.clock },
    );
  } catch (error) {
    if (error instanceof BindingError) return rebound(binding, error, deps);
    if (!(error instanceof LeaseBusyError)) throw error;
    deps.metrics.count('RetirementDeferred');
    deps.logger.info('A step holds the lease on this client: its retirement waits for the next sweep', { secretArn: binding.secretArn });
    return 'deferred';
  }

  let clear = false;
  /** A project secret's sweep may also replace the record (a deletion put off). */
  let replace: Retirement | undefined;
  try {
    // Read under the lease: the record as it is now, not as the scan saw it.
    const now = lease.previous;
    if (!now?.retirement || now.retirement.dueAt > deps.lease.clock.now()) return 'not-due';
    const due = now.retirement;
    // VII: an administrator may have rebound the secret away since the scan (the lease was then taken on the client alone).
    if (!now.binding) return unbound(binding.clientId, due.previousLast4, deps);
    if (binding.kind === 'project_secret') {
      const result = await sweepProjectSecret(binding, due, deps);
      clear = result.retirement === null;
      replace = result.retirement ?? undefined;
      return result.outcome;
    }
    const decision = await decide(binding, due, deps);
    if (decision.kind === 'defer') {
      deps.metrics.count('RetirementDeferred');
      deps.logger.warn(decision.why, { secretArn: binding.secretArn });
      return 'deferred';
    }
    clear = true;
    if (decision.kind === 'retire') {
      const { stytch, clientId, currentLast4 } = decision;
      try {
        await stytch.rotate(clientId);
      } catch (error) {
        // A rotate whose first answer was lost: confirm it took (AWSCURRENT's secret is Stytch's only one).
        if (!stytch.isNotRotating(error)) throw error;
        const after = await stytch.get(clientId);
        if (after.secretLast4 !== currentLast4 || after.nextSecretLast4 !== null) {
          // The record stays (the catch below keeps it): the next sweep decides again from Stytch's state.
          throw new RotationError(`Stytch reports no rotation in progress, yet its secrets (…${after.secretLast4 ?? 'none'}) are not AWSCURRENT's (…${currentLast4}).`);
        }
      }
      deps.metrics.count('PreviousSecretRetired');
      deps.logger.info('Retired the previous secret at Stytch: its overlap window has ended', {
        secretArn: binding.secretArn,
        retiredLast4: due.previousLast4,
        windowEndedAt: new Date(due.dueAt).toISOString(),
      });
      return 'retired';
    }
    deps.metrics.count('RetirementCleared');
    deps.logger[decision.level](decision.why, { secretArn: binding.secretArn, previousLast4: due.previousLast4 });
    return 'cleared';
  } catch (error) {
    clear = false;
    throw error;
  } finally {
    // The record goes once acted on; on failure it stays for the next sweep.
    await giveLeaseBack(lease, replace ?? (clear ? null : undefined), deps);
  }
}

type Decision =
  | { kind: 'retire'; stytch: ClientProvider; clientId: string; currentLast4: string }
  | { kind: 'clear'; why: string; level: 'info' | 'warn' | 'error' }
  | { kind: 'defer'; why: string };

// Stryker disable next-line StringLiteral: 'clear' is the kind retireOne tests for neither 'defer' nor 'retire': any other string takes the same path
const clearing = (level: 'info' | 'warn' | 'error', why: string): Decision => ({ kind: 'clear', level, why });

async function decide(binding: Binding, due: Retirement, deps: SweepDeps): Promise<Decision> {
  // One read: AWSCURRENT's value (the sweep's round trips bound how many secrets one sweep retires).
  const secret = await deps.store.getCurrentVersion(binding.secretArn);
  if (secret.state === 'deleted') {
    // It may be restored: keep the record, so the retirement happens then (III).
    return {
      kind: 'defer',
      why: `Not retired yet: the secret is scheduled for deletion, so AWSCURRENT cannot be read; the record stays until it is restored (then the sweep retires …${due.previousLast4}) or deleted for good`,
    };
  }
  if (secret.state !== 'current') {
    return clearing('error', `Not retired: the secret no longer exists, so AWSCURRENT cannot be checked; Stytch may still accept the previous secret (…${due.previousLast4}) of client ${binding.clientId}: retire it in the Stytch dashboard`);
  }
  const fix = 'It must be JSON with client_id and client_secret; fix it with aws secretsmanager put-secret-value.';
  const cur = parseSecretJson(rotatedSecretSchema, secret.value, `The AWSCURRENT value of secret ${secret.name}`, fix);
  // VII: act only on the client the secret is bound to, whatever its value says now.
  if (cur.client_id !== binding.clientId || cur.stytch_credentials_secret_id !== binding.credentialsSecretId || (await deps.projectOf(cur)) !== binding.projectId) {
    deps.metrics.count('BindingRefused');
    throw new BindingError(
      `The AWSCURRENT value of secret ${secret.name} names a client, project or credentials secret other than the bound client ${binding.clientId}; the sweep does not act on it. Restore the value, or rebind with the CLI (bind).`,
    );
  }
  const stytch = deps.stytch(cur);
  const state: ClientState = await stytch.get(cur.client_id);
  const { secretLast4: S4, nextSecretLast4: N4 } = state;

  if (S4 !== due.previousLast4 && N4 !== due.previousLast4) {
    return clearing('info', 'Nothing to retire: Stytch no longer accepts the previous secret (a newer rotation or Stytch completed it)');
  }
  if (N4 === last4(cur) && S4 === due.previousLast4) {
    // I: rotate only ever makes Stytch's next secret, which is AWSCURRENT's, its only one.
    return { kind: 'retire', stytch, clientId: cur.client_id, currentLast4: last4(cur) };
  }
  if (secret.versionId === due.previousVersionId) {
    return clearing('info', `Nothing to retire: the rotation that recorded this retirement never moved AWSCURRENT (it ended before), so its previous secret is still AWSCURRENT`);
  }
  return clearing('warn', `Not retired: AWSCURRENT (…${last4(cur)}) is not Stytch's next secret any more (Stytch holds …${S4 ?? 'none'}, next …${N4 ?? 'none'}), so completing the rotation could break it; AWSCURRENT was changed outside this function`);
}
