import { COMMON_HELP, parseCommand } from '../args.js';
import { Connection } from '../context.js';
import { diagnose, exitCodeOf, type CommandStyle, type ExitCode, type Verdict } from '../diagnose.js';
import type { CommandContext } from '../io.js';
import { renderStatus, statusJson } from '../render.js';
import type { Snapshot } from '../snapshot.js';

export const STATUS_HELP = `Usage: status --secret-id ID [--json] [options]

Shows a rotated secret's versions (AWSCURRENT, AWSPENDING, AWSPREVIOUS, by last
four), Stytch's current and next secret (last four), the rotation configuration,
and a verdict, worst first, each with the command that fixes it:

  drift                  AWSCURRENT is not accepted by Stytch: consumers are failing
  half-done              AWSCURRENT is Stytch's next secret: Stytch never completed a rotation
  orphan-next-secret     Stytch has a next secret Secrets Manager does not hold
  dead-pending           AWSPENDING holds a secret Stytch no longer has
  pending-without-value  AWSPENDING has no value: a rotation never got past createSecret
  rotation-in-progress   AWSPENDING holds Stytch's next secret
  consistent             AWSCURRENT is Stytch's current secret, nothing pending

  --json                 print one JSON object (use npm run -s, or the bin, to keep npm's banner out)

Exit code: 0 consistent, 1 needs attention, 2 drift (outage), 3 usage or access error.

${COMMON_HELP}`;

/** Reads the state and diagnoses it: what status, rotate and recover all start from. */
export async function readStatus(
  connection: Connection,
  secretId: string,
  style: CommandStyle,
): Promise<{ snapshot: Snapshot; verdicts: Verdict[]; exitCode: ExitCode }> {
  const { snapshot } = await connection.snapshot(secretId);
  const verdicts = diagnose(snapshot, style);
  return { snapshot, verdicts, exitCode: exitCodeOf(verdicts) };
}

export async function statusCommand(argv: string[], ctx: CommandContext): Promise<ExitCode> {
  const parsed = parseCommand('status', argv, { json: { type: 'boolean' } }, ctx.cli);
  if (!parsed) {
    ctx.io.out(STATUS_HELP);
    return 0;
  }
  const { common, values } = parsed;
  ctx.errorContext.secretId = common.secretId;
  const connection = new Connection(ctx.runtime, common.aws, common.credentialsSecretId, ctx.errorContext);
  const { snapshot, verdicts, exitCode } = await readStatus(connection, common.secretId, common.style);
  if (values.json) ctx.io.out(JSON.stringify(statusJson(snapshot, verdicts), null, 2));
  else for (const line of renderStatus(snapshot, verdicts)) ctx.io.out(line);
  return exitCode;
}
