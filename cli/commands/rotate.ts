import { randomUUID } from 'node:crypto';
import { RotateSecretCommand, type DescribeSecretResponse } from '@aws-sdk/client-secrets-manager';
import { AWSCURRENT, AWSPENDING } from '../../functions/lib/secrets/store.js';
import { COMMON_HELP, parseCommand, parseSeconds } from '../args.js';
import { Connection } from '../context.js';
import { commands, shellQuote, type ExitCode } from '../diagnose.js';
import { CliError, explainError } from '../errors.js';
import type { CommandContext } from '../io.js';
import { renderStatus, statusJson } from '../render.js';
import { surveyStatus } from './status.js';

export const ROTATE_HELP = `Usage: rotate --secret-id ID [--wait [--timeout SECONDS]] [options]

Starts a rotation (RotateSecret with the secret's own rotation function), as
aws secretsmanager rotate-secret does.

  --wait             follow it to its end: polls DescribeSecret (with backoff) until
                     AWSCURRENT moved to the new version and no AWSPENDING is left,
                     then prints status. Real Secrets Manager rotates asynchronously;
                     the local stack's emulator finishes inside RotateSecret.
  --timeout SECONDS  how long --wait follows it (default 300)

Exit code: 0 started (or, with --wait, completed and consistent), 1 the rotation
failed, did not finish in time or cannot start, 2 drift afterwards, 3 usage or access error.

${COMMON_HELP}`;

const FIRST_POLL_MS = 1_000;
const MAX_POLL_MS = 15_000;

type Outcome = 'completed' | 'cancelled' | 'pending';

/** Where the rotation of version `token` stands, from DescribeSecret alone. */
export function rotationOutcome(described: DescribeSecretResponse, token: string): Outcome {
  const versions = described.VersionIdsToStages ?? {};
  const stages = versions[token] ?? [];
  if (stages.includes(AWSCURRENT)) {
    const otherPending = Object.entries(versions).some(([id, labels]) => id !== token && labels?.includes(AWSPENDING));
    return otherPending ? 'pending' : 'completed';
  }
  // The function removed AWSPENDING after a definitive failure (and the service dropped the empty placeholder).
  return stages.includes(AWSPENDING) ? 'pending' : 'cancelled';
}

export async function rotateCommand(argv: string[], ctx: CommandContext): Promise<ExitCode> {
  const parsed = parseCommand('rotate', argv, { wait: { type: 'boolean' }, timeout: { type: 'string' } }, ctx.cli);
  if (!parsed) {
    ctx.io.out(ROTATE_HELP);
    return 0;
  }
  const { common, values } = parsed;
  const timeoutS = parseSeconds('rotate', 'timeout', values.timeout, 300);
  if (values.timeout !== undefined && !values.wait) throw new CliError('rotate: --timeout only applies with --wait.', { usage: true });
  const { io, runtime } = ctx;
  const id = common.secretId;
  ctx.errorContext.secretId = id;
  const cmd = commands(id, common.style);
  const connection = Connection.for(runtime, common, ctx.errorContext);

  const described = await connection.describe(id);
  const name = described.Name ?? id;
  const lambdaArn = described.RotationLambdaARN;
  if (!lambdaArn) {
    throw new CliError(
      `Rotation is not configured for secret ${name}: no rotation function is attached. Attach the deployed function first: ` +
        `aws secretsmanager rotate-secret --secret-id ${shellQuote(id)} --rotation-lambda-arn <the function's ARN> --rotation-rules '{"ScheduleExpression":"rate(30 days)"}'` +
        ` (or deploy the stack, whose RotationSchedule does it), then run this again.`,
    );
  }
  const pending = Object.entries(described.VersionIdsToStages ?? {}).find(([, s]) => s?.includes(AWSPENDING) && !s.includes(AWSCURRENT));
  if (pending) {
    io.err(`A previous rotation of ${name} isn't complete: AWSPENDING is on version ${pending[0]}. Secrets Manager refuses to start another. Status:`);
    const now = await surveyStatus(connection, id, common.style);
    for (const line of renderStatus(now.survey, now.verdicts)) io.out(line);
    const exitCode = Math.max(1, now.exitCode) as ExitCode;
    ctx.record({ outcome: 'not-started', version: null, status: statusJson(now.survey, now.verdicts) });
    return exitCode;
  }
  if (described.RotationEnabled !== true) io.out(`Rotation of ${name} was disabled; RotateSecret turns it back on with the same function and schedule.`);

  const token = randomUUID();
  await connection.sm.send(new RotateSecretCommand({ SecretId: id, ClientRequestToken: token, RotationLambdaARN: lambdaArn }));
  io.out(`Rotation started: version ${token} of ${name} is AWSPENDING. Secrets Manager runs createSecret, setSecret, testSecret and finishSecret with ${lambdaArn}.`);
  if (!values.wait) {
    io.out(`Follow it with: ${cmd.status}`);
    ctx.record({ outcome: 'started', version: token });
    return 0;
  }

  const deadline = runtime.now() + timeoutS * 1000;
  let delay = FIRST_POLL_MS;
  let outcome: Outcome;
  for (;;) {
    outcome = rotationOutcome(await connection.describe(id), token);
    if (outcome !== 'pending') break;
    const left = deadline - runtime.now();
    if (left <= 0) break;
    await runtime.sleep(Math.min(delay, left));
    delay = Math.min(delay * 2, MAX_POLL_MS);
  }

  // Secrets Manager's view first: whether the rotation completed does not depend on reading Stytch afterwards.
  if (outcome === 'completed') {
    io.out(`Rotation complete: AWSCURRENT is version ${token}.`);
  } else if (outcome === 'cancelled') {
    io.err(`Rotation failed: version ${token} was dropped without becoming AWSCURRENT. The function cancelled it after a definitive failure; its log says why. AWSCURRENT is unchanged.`);
  } else {
    io.err(
      `Rotation did not finish within ${timeoutS} s: version ${token} is still AWSPENDING. Secrets Manager retries a failed rotation with the same version; the function's log says why it failed.`,
    );
  }
  ctx.record({ outcome, version: token });
  const outcomeCode: ExitCode = outcome === 'completed' ? 0 : 1;

  // Then the follow-up read, reported on its own.
  let after: Awaited<ReturnType<typeof surveyStatus>>;
  try {
    after = await surveyStatus(connection, id, common.style);
  } catch (error) {
    io.err(`Reading the state after the rotation failed: ${explainError(error, ctx.errorContext)}`);
    io.err(`Run status again: ${cmd.status}`);
    return outcome === 'completed' ? 3 : 1;
  }
  const unread = after.survey.problems ?? [];
  if (unread.length > 0) {
    io.err(`${outcome === 'completed' ? 'The rotation is complete, but reading' : 'Reading'} Stytch afterwards failed: ${unread.map((p) => p.message).join(' ')}`);
  }
  for (const line of renderStatus(after.survey, after.verdicts)) io.out(line);
  ctx.record({ status: statusJson(after.survey, after.verdicts) });
  return Math.max(outcomeCode, after.exitCode) as ExitCode;
}
