import { VerificationError } from '../../functions/lib/errors.js';
import { AWSCURRENT, AWSPENDING } from '../../functions/lib/secrets/store.js';
import type { HeldLease } from '../../functions/lib/state/lease.js';
import type { Binding } from '../../functions/lib/state/table.js';
import type { ClientProvider } from '../../functions/lib/stytch/index.js';
import { COMMON_HELP, parseCommand } from '../args.js';
import { Connection } from '../context.js';
import { refuseProjectSecret } from './project-status.js';
import { bindingMismatch, commands, credentialsLabel, diagnose, isoTime, overlapOf, pendingAccepted, type CommandStyle, type ExitCode } from '../diagnose.js';
import type { CommandContext } from '../io.js';
import { describeAction, planRecovery, type Action } from '../plan.js';
import { renderStatus, renderVerdict, statusJson } from '../render.js';
import type { Snapshot } from '../snapshot.js';
import { readStatus, surveyStatus } from './status.js';

export const RECOVER_HELP = (cli: string) => `Usage: ${cli} recover --secret-id ID [--yes] [--cancel-rotation] [options]

Applies the fixes status names, and only those that keep AWSCURRENT accepted by
Stytch:

  half-done              completes the rotation at Stytch (rotate)
  orphan-next-secret     cancels Stytch's next secret (rotate/cancel), only while
                         AWSCURRENT is Stytch's current secret
  dead-pending,
  pending-without-value  removes AWSPENDING from that version
  drift                  only when AWSPENDING holds a secret Stytch accepts: moves
                         AWSCURRENT to it; otherwise explains the choices and changes nothing
  rotation-in-progress   nothing: it completes or is reattempted (see --cancel-rotation)
  overlap-window         nothing: it is healthy (to end it early, use retire)
  retirement-overdue     nothing: use retire
  binding-mismatch       nothing: recover --yes refuses until the binding and the value agree

  --yes                  apply; without it recover only prints the plan (dry run)
  --cancel-rotation      also abandon a rotation in progress (rotate/cancel, remove
                         AWSPENDING), e.g. when rotation is disabled and nothing reattempts it

  ${cli} recover --secret-id ID          prints the plan, changes nothing
  ${cli} recover --secret-id ID --yes    applies it

With --yes, recover needs the function's state table (--state-table NAME or
ROTATION_STATE_TABLE). It first takes the lease on the Stytch client there, so that
it never acts at the same time as a rotation step or the retirement sweep. If
someone holds the lease, recover waits up to 10 s, then stops, naming the holder.
Under the lease, each action re-reads Secrets Manager and Stytch first and stops if
the state changed. Afterwards recover prints status again.

Exit code: that of the final status (0 consistent or overlap window, 1 needs
attention, 2 drift); 3 usage or access error, no state table, or the lease stayed held.

${COMMON_HELP}`;

/** Thrown when the state an action was planned on no longer holds: nothing more is done. */
class StateChanged extends Error {}

export async function recoverCommand(argv: string[], ctx: CommandContext): Promise<ExitCode> {
  const parsed = parseCommand('recover', argv, { yes: { type: 'boolean', short: 'y' }, 'cancel-rotation': { type: 'boolean' } }, ctx.cli);
  if (!parsed) {
    ctx.io.out(RECOVER_HELP(ctx.cli));
    return 0;
  }
  const { common, values } = parsed;
  const { io } = ctx;
  const id = common.secretId;
  ctx.errorContext.secretId = id;
  const connection = Connection.for(ctx.runtime, common, ctx.errorContext);
  const cancelRotation = values['cancel-rotation'] === true;
  // Refused before anything is read: every change recover makes is made under the client's lease (VI).
  if (values.yes) await connection.requireState('recover --yes', id);
  await refuseProjectSecret(connection, common.secretId, 'recover', ctx.cli);

  const before = await readStatus(connection, id, common.style, { strictState: values.yes === true });
  const plan = planRecovery(before.snapshot, before.verdicts, { cancelRotation });
  io.out(`Verdict: ${before.verdicts.map((v) => v.code).join(', ')} (exit ${before.exitCode})`);
  for (const v of before.verdicts) io.out(renderVerdict(v)[0]!);
  ctx.record({ dryRun: values.yes !== true, verdicts: before.verdicts.map((v) => v.code), planned: plan.actions.map(describeAction), notes: plan.notes });

  if (plan.actions.length === 0) {
    for (const note of plan.notes) io.out(`Note: ${note}`);
    io.out('Nothing for recover to do.');
    return before.exitCode;
  }
  if (!values.yes) {
    io.out('Planned actions (dry run: nothing was changed):');
    plan.actions.forEach((action, i) => io.out(`  ${i + 1}. ${describeAction(action)}`));
    for (const note of plan.notes) io.out(`Note: ${note}`);
    const apply = commands(id, common.style).recover + (cancelRotation ? ' --cancel-rotation' : '');
    io.out(`Apply them with: ${apply}`);
    return before.exitCode;
  }
  const mismatch = bindingMismatch(before.snapshot);
  if (mismatch) {
    // VII: recover acts only on the client the secret is bound to.
    io.err(`recover --yes changed nothing: ${mismatch}. Resolve that first (status shows how).`);
    return before.exitCode;
  }

  const { arn, current } = await connection.readCurrent(id);
  const binding = await connection.bindingOf(arn, current);
  io.out('Applying:');
  const applied: Array<{ action: string; result: string }> = [];
  const completed = await connection.underLease(binding, 'recover', io, async (lease) => {
    let completedAtStytch = false;
    // The plan again, on a read made under the lease, before anything is changed.
    const { snapshot: fresh } = await connection.snapshot(id, { strictState: true, deadline: connection.leaseDeadline(lease) });
    const decided = planRecovery(fresh, diagnose(fresh, common.style), { cancelRotation }).actions;
    for (const [i, action] of plan.actions.entries()) {
      try {
        // VI: the decision is taken again under the lease. The plan printed before it was taken may be
        // stale (a step was at work: an "orphan" it has stored since, a pending version it has filled).
        if (!decided.some((a) => sameAction(a, action))) {
          throw new StateChanged('the state changed since the plan was made (a rotation step may have been at work): this action is no longer called for.');
        }
        const result = await apply(connection, id, action, lease, common.style);
        applied.push({ action: describeAction(action), result });
        if (action.kind === 'complete-at-stytch' && result === 'done') completedAtStytch = true;
        io.out(`  ${i + 1}. ${describeAction(action)}: ${result}`);
      } catch (error) {
        if (!(error instanceof StateChanged)) throw error;
        applied.push({ action: describeAction(action), result: `not done: ${error.message}` });
        io.err(`  ${i + 1}. ${describeAction(action)}: not done: ${error.message} Nothing more was changed. Run status again: ${commands(id, common.style).status}`);
        break;
      }
    }
    // Stytch holds one secret once the rotation is complete: no previous secret is left to retire (III).
    return { result: completedAtStytch, retirement: completedAtStytch ? null : undefined };
  });
  if (completed) io.out('The state table records no previous secret to retire any more.');
  for (const note of plan.notes) io.out(`Note: ${note}`);

  const after = await surveyStatus(connection, id, common.style);
  io.out('');
  io.out('Status after recover:');
  for (const line of renderStatus(after.survey, after.verdicts)) io.out(line);
  ctx.record({ applied, status: statusJson(after.survey, after.verdicts) });
  return after.exitCode;
}

/**
 * Applies one action after checking, on a fresh read made under the client's
 * lease (VI), that what it was planned on still holds.
 */
async function apply(
  connection: Connection,
  secretId: string,
  action: Action,
  lease: HeldLease,
  style: CommandStyle,
): Promise<string> {
  const deadline = connection.leaseDeadline(lease);
  if (connection.runtime.now() >= deadline) throw new StateChanged('the lease on the client is about to run out.');
  const { snapshot: now, current } = await connection.snapshot(secretId, { strictState: true, deadline });
  const moved = leaseStillCovers(now, lease.binding);
  if (moved) throw new StateChanged(moved);
  const stytch = await connection.stytchFor(current, deadline);
  const clientId = now.client.id;
  const { secretLast4: S4, nextSecretLast4: N4 } = now.stytch;

  switch (action.kind) {
    case 'promote-pending': {
      // The same two versions hold the same values (a version's value never changes), so the same secret …last4.
      if (now.current.versionId !== action.fromVersionId || now.pending?.versionId !== action.versionId) {
        throw new StateChanged('the AWSCURRENT or AWSPENDING version changed since it was read.');
      }
      // I: never move AWSCURRENT to a secret Stytch does not accept.
      if (!pendingAccepted(now)) throw new StateChanged(`Stytch no longer accepts the pending secret …${action.last4}.`);
      if (stytch.probe) {
        // Stryker disable next-line StringLiteral: equivalent; it names the value only in a parse error, and the snapshot above has just parsed this same version, whose value never changes.
        const pending = await connection.readSecret(now.arn, action.versionId, `The AWSPENDING value of secret ${now.name}`);
        if (!pending) throw new StateChanged('the pending version has no value any more.');
        try {
          await stytch.probe(clientId, pending.client_secret);
        } catch (error) {
          if (error instanceof VerificationError) throw new StateChanged(error.message);
          throw error;
        }
      }
      await connection.store.moveStage(now.arn, AWSCURRENT, action.versionId, action.fromVersionId);
      return 'done';
    }
    case 'complete-at-stytch': {
      if (N4 === null && S4 === action.nextLast4) return 'already done';
      // I: rotate only makes AWSCURRENT's secret the only one; never when AWSCURRENT is anything else.
      if (N4 !== action.nextLast4 || now.current.value.last4 !== action.nextLast4) {
        throw new StateChanged(`Stytch's next secret (${N4 ? `…${N4}` : 'none'}) or AWSCURRENT (…${now.current.value.last4}) changed.`);
      }
      // A recorded overlap window keeps the previous secret on purpose: that is retire's decision, not a repair.
      const window = overlapOf(now);
      if (window) {
        throw new StateChanged(
          `the previous secret (…${window.previousLast4}) is kept by an overlap window recorded for AWSCURRENT (until ${isoTime(window.dueAt)}), so this is not half-done; to retire it now: ${commands(secretId, style).retire}.`,
        );
      }
      await tolerateNotRotating(stytch, () => stytch.rotate(clientId));
      return 'done';
    }
    case 'cancel-at-stytch': {
      if (N4 === null) return 'already done';
      // I: never cancel while AWSCURRENT is anything but Stytch's current secret (a rotation may have moved it meanwhile).
      if (N4 !== action.nextLast4 || S4 !== action.currentLast4 || now.current.value.last4 !== action.currentLast4) {
        // Past 'already done', Stytch has a next secret, so a current one too.
        throw new StateChanged(`Stytch's secrets (…${S4}, next …${N4}) or AWSCURRENT (…${now.current.value.last4}) changed.`);
      }
      await tolerateNotRotating(stytch, () => stytch.rotateCancel(clientId));
      return 'done';
    }
    case 'remove-pending': {
      if (!holdsPending(now, action.versionId)) return 'already done';
      await connection.store.removeStage(now.arn, AWSPENDING, action.versionId);
      return 'done';
    }
  }
}

/**
 * VII, on a read made under the lease: the value still names the client the
 * lease is on, and the secret is bound to it (or to nothing yet). Returns why
 * not, or undefined.
 */
export function leaseStillCovers(s: Snapshot, leased: Binding): string | undefined {
  if (s.state.kind !== 'read') return 'the state table could not be read.';
  const names = s.state.valueNames;
  if (!names) return 'AWSCURRENT or its credentials could not be read.';
  if (names.clientId !== leased.clientId || names.projectId !== leased.projectId || names.credentialsSecretId !== leased.credentialsSecretId) {
    return `AWSCURRENT now names client ${names.clientId} of project ${names.projectId} (${credentialsLabel(names.credentialsSecretId)}), not the client whose lease this command holds.`;
  }
  const mismatch = bindingMismatch(s);
  return mismatch ? `${mismatch}.` : undefined;
}

/** The same action on the same version or secret (the fields that say what it acts on). */
function sameAction(a: Action, b: Action): boolean {
  if (b.kind !== a.kind) return false;
  // Each case ends in a return: complete-at-stytch is last, so that no case falls into another.
  switch (a.kind) {
    case 'promote-pending': {
      const o = b as Of<'promote-pending'>;
      return o.versionId === a.versionId && o.fromVersionId === a.fromVersionId;
    }
    case 'cancel-at-stytch': {
      const o = b as Of<'cancel-at-stytch'>;
      return o.nextLast4 === a.nextLast4 && o.currentLast4 === a.currentLast4;
    }
    case 'remove-pending':
      return (b as Of<'remove-pending'>).versionId === a.versionId;
    case 'complete-at-stytch':
      return (b as Of<'complete-at-stytch'>).nextLast4 === a.nextLast4;
  }
}

type Of<K extends Action['kind']> = Extract<Action, { kind: K }>;

function holdsPending(s: Snapshot, versionId: string): boolean {
  return s.pending?.versionId === versionId || (s.pendingOnCurrent && s.current.versionId === versionId);
}

export async function tolerateNotRotating(stytch: ClientProvider, call: () => Promise<unknown>): Promise<void> {
  try {
    await call();
  } catch (error) {
    // A retried call whose first answer was lost, or someone got there first: the end state is the one wanted.
    if (!stytch.isNotRotating(error)) throw error;
  }
}
