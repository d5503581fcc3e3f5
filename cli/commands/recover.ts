import { VerificationError } from '../../functions/lib/errors.js';
import { AWSCURRENT, AWSPENDING } from '../../functions/lib/secrets/store.js';
import type { ClientProvider } from '../../functions/lib/stytch/index.js';
import { COMMON_HELP, parseCommand } from '../args.js';
import { Connection } from '../context.js';
import { commands, pendingAccepted, pendingLast4, type ExitCode } from '../diagnose.js';
import type { CommandContext } from '../io.js';
import { describeAction, planRecovery, type Action } from '../plan.js';
import { renderStatus, renderVerdict } from '../render.js';
import type { Snapshot } from '../snapshot.js';
import { readStatus } from './status.js';

export const RECOVER_HELP = `Usage: recover --secret-id ID [--yes] [--cancel-rotation] [options]

Applies the fixes status names, and only those that keep AWSCURRENT accepted by
Stytch (DESIGN.md invariant I):

  half-done              completes the rotation at Stytch (rotate)
  orphan-next-secret     cancels Stytch's next secret (rotate/cancel), only while
                         AWSCURRENT is Stytch's current secret
  dead-pending,
  pending-without-value  removes AWSPENDING from that version
  drift                  only when AWSPENDING holds a secret Stytch accepts: moves
                         AWSCURRENT to it; otherwise explains the choices and changes nothing
  rotation-in-progress   nothing: it completes or is reattempted (see --cancel-rotation)

  --yes                  apply; without it recover only prints the plan (dry run)
  --cancel-rotation      also abandon a rotation in progress (rotate/cancel, remove
                         AWSPENDING), e.g. when rotation is disabled and nothing reattempts it

Each action re-reads the state first and stops if it changed. Afterwards recover
prints status again; its exit code is that status's (0 consistent, 1 needs attention,
2 drift, 3 usage or access error).

${COMMON_HELP}`;

/** Thrown when the state an action was planned on no longer holds: nothing more is done. */
class StateChanged extends Error {}

export async function recoverCommand(argv: string[], ctx: CommandContext): Promise<ExitCode> {
  const parsed = parseCommand('recover', argv, { yes: { type: 'boolean', short: 'y' }, 'cancel-rotation': { type: 'boolean' } }, ctx.cli);
  if (!parsed) {
    ctx.io.out(RECOVER_HELP);
    return 0;
  }
  const { common, values } = parsed;
  const { io } = ctx;
  const id = common.secretId;
  ctx.errorContext.secretId = id;
  const connection = new Connection(ctx.runtime, common.aws, common.credentialsSecretId, ctx.errorContext);
  const cancelRotation = values['cancel-rotation'] === true;

  const before = await readStatus(connection, id, common.style);
  const plan = planRecovery(before.snapshot, before.verdicts, { cancelRotation });
  io.out(`Verdict: ${before.verdicts.map((v) => v.code).join(', ')} (exit ${before.exitCode})`);
  for (const v of before.verdicts) io.out(renderVerdict(v)[0]!);

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

  io.out('Applying:');
  for (const [i, action] of plan.actions.entries()) {
    try {
      const result = await apply(connection, id, action);
      io.out(`  ${i + 1}. ${describeAction(action)}: ${result}`);
    } catch (error) {
      if (!(error instanceof StateChanged)) throw error;
      io.err(`  ${i + 1}. ${describeAction(action)}: not done: ${error.message} Nothing more was changed; run status again.`);
      break;
    }
  }
  for (const note of plan.notes) io.out(`Note: ${note}`);

  const after = await readStatus(connection, id, common.style);
  io.out('');
  io.out('Status after recover:');
  for (const line of renderStatus(after.snapshot, after.verdicts)) io.out(line);
  return after.exitCode;
}

/** Applies one action after checking, on a fresh read, that what it was planned on still holds. */
async function apply(connection: Connection, secretId: string, action: Action): Promise<string> {
  const { snapshot: now, current } = await connection.snapshot(secretId);
  const stytch = connection.stytchFor(current);
  const clientId = now.client.id;
  const { secretLast4: S4, nextSecretLast4: N4 } = now.stytch;

  switch (action.kind) {
    case 'promote-pending': {
      if (now.current.versionId !== action.fromVersionId || now.pending?.versionId !== action.versionId || pendingLast4(now) !== action.last4) {
        throw new StateChanged('the AWSCURRENT or AWSPENDING version changed since it was read.');
      }
      // I: never move AWSCURRENT to a secret Stytch does not accept.
      if (!pendingAccepted(now)) throw new StateChanged(`Stytch no longer accepts the pending secret …${action.last4}.`);
      if (stytch.probe) {
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
      await tolerateNotRotating(stytch, () => stytch.rotate(clientId));
      return 'done';
    }
    case 'cancel-at-stytch': {
      if (N4 === null) return 'already done';
      // I: never cancel while AWSCURRENT is anything but Stytch's current secret (a rotation may have moved it meanwhile).
      if (N4 !== action.nextLast4 || S4 !== action.currentLast4 || now.current.value.last4 !== action.currentLast4) {
        throw new StateChanged(`Stytch's secrets (…${S4 ?? 'none'}, next ${N4 ? `…${N4}` : 'none'}) or AWSCURRENT (…${now.current.value.last4}) changed.`);
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

function holdsPending(s: Snapshot, versionId: string): boolean {
  return s.pending?.versionId === versionId || (s.pendingOnCurrent && s.current.versionId === versionId);
}

async function tolerateNotRotating(stytch: ClientProvider, call: () => Promise<unknown>): Promise<void> {
  try {
    await call();
  } catch (error) {
    // A retried call whose first answer was lost, or someone got there first: the end state is the one wanted.
    if (!stytch.isNotRotating(error)) throw error;
  }
}
