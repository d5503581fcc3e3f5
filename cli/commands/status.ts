import { COMMON_HELP, parseCommand } from '../args.js';
import { Connection } from '../context.js';
import { diagnose, diagnoseSurvey, exitCodeOf, type CommandStyle, type ExitCode, type Verdict } from '../diagnose.js';
import type { CommandContext } from '../io.js';
import { renderStatus, statusJson } from '../render.js';
import { statusAllCommand } from './fleet.js';
import { holdsProjectSecret, projectStatus } from './project-status.js';
import type { Snapshot, Survey } from '../snapshot.js';

export const STATUS_HELP = (cli: string) => `Usage: ${cli} status --secret-id ID [--json] [options]
       ${cli} status --all --function-name NAME [--json]   every secret of that function, one line each
                                                       (${cli} status --all --help)

Shows a rotated secret's versions (AWSCURRENT, AWSPENDING, AWSPREVIOUS, by last
four), Stytch's current and next secret (last four), the rotation configuration,
what the function's state table records, and a verdict, worst first, each with
the command that fixes it:

  drift                  AWSCURRENT is not accepted by Stytch: consumers are failing
  binding-mismatch       the value names another client, project or credentials secret
                         than the one the secret is bound to: the function refuses to rotate it
  half-done              AWSCURRENT is Stytch's next secret and no overlap window is
                         recorded: Stytch never completed a rotation
  retirement-overdue     the overlap window ended more than 15 minutes ago and Stytch still
                         accepts the previous secret: the retirement sweep is late or failing
  orphan-next-secret     Stytch has a next secret Secrets Manager does not hold
  dead-pending           AWSPENDING holds a secret Stytch no longer has, or a copy of
                         AWSCURRENT (not a new secret)
  pending-without-value  AWSPENDING has no value: a rotation never got past createSecret
  rotation-in-progress   AWSPENDING holds Stytch's next secret
  overlap-window         healthy: after a rotation, the previous secret is still accepted
                         until the time shown; then the retirement sweep retires it
  consistent             AWSCURRENT is Stytch's current secret, nothing pending

From the state table:
  Binding   the client and project the secret is bound to, or "not bound yet" (its
            first rotation binds it). The function rotates a secret only for that client.
  Lease     who holds the lease on the client (a rotation step, the retirement sweep
            or this CLI), doing what, until when. Only the holder may change the client.
  Window    the previous secret that is still accepted, and until when.
Without the table (--state-table NAME or ROTATION_STATE_TABLE) these are unknown, and an
overlap window looks like half-done.

  --json                 print one JSON object (use npm run -s, or the bin, to keep npm's banner out)

For a Stytch project secret (a value with secret_id), status lists the versions by
secret_id and last four, the project environment's secrets as Stytch's management API
lists them (created, last used, which label holds each, any held by none), and the
deletion the sweep owes. It needs the workspace management key's secret:
  --management-credentials-secret-id ID   default: STYTCH_MANAGEMENT_CREDENTIALS_SECRET_ID,
                                          else the rotation function's setting

Each verdict prints its fix as a command to copy, for example:
  ${cli} recover --secret-id ID --yes
  ${cli} retire --secret-id ID --yes
  ${cli} bind --secret-id ID

Exit code: 0 consistent or overlap window, 1 needs attention, 2 drift (outage),
3 usage or access error.

${COMMON_HELP}`;

/** Reads the state and diagnoses it: what status, rotate and recover all start from. */
export async function readStatus(
  connection: Connection,
  secretId: string,
  style: CommandStyle,
  options: { strictState?: boolean } = {},
): Promise<{ snapshot: Snapshot; verdicts: Verdict[]; exitCode: ExitCode }> {
  const { snapshot } = await connection.snapshot(secretId, options);
  const verdicts = diagnose(snapshot, style);
  return { snapshot, verdicts, exitCode: exitCodeOf(verdicts) };
}

/** Reads whatever can be read and diagnoses it, never stopping at a part it cannot read: what status and rotate show. */
export async function surveyStatus(connection: Connection, secretId: string, style: CommandStyle): Promise<{ survey: Survey; verdicts: Verdict[]; exitCode: ExitCode }> {
  const survey = await connection.survey(secretId);
  const verdicts = diagnoseSurvey(survey, style);
  return { survey, verdicts, exitCode: exitCodeOf(verdicts) };
}

export async function statusCommand(argv: string[], ctx: CommandContext): Promise<ExitCode> {
  if (argv.includes('--all')) return await statusAllCommand(argv, ctx);
  const parsed = parseCommand('status', argv, { 'management-credentials-secret-id': { type: 'string' } }, ctx.cli);
  if (!parsed) {
    ctx.io.out(STATUS_HELP(ctx.cli));
    return 0;
  }
  const { common, values } = parsed;
  ctx.errorContext.secretId = common.secretId;
  const connection = Connection.for(ctx.runtime, common, ctx.errorContext);
  if (await holdsProjectSecret(connection, common.secretId)) {
    const flag = parsed.values['management-credentials-secret-id'];
    return await projectStatus(connection, common.secretId, common.style, typeof flag === 'string' && flag !== '' ? flag : undefined, ctx);
  }
  const { survey, verdicts, exitCode } = await surveyStatus(connection, common.secretId, common.style);
  ctx.record({ ...statusJson(survey, verdicts) });
  for (const line of renderStatus(survey, verdicts)) ctx.io.out(line);
  return exitCode;
}
