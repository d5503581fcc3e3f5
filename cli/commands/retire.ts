import { COMMON_HELP, parseCommand } from '../args.js';
import { Connection } from '../context.js';
import { refuseProjectSecret } from './project-status.js';
import { commands, isoTime, type ExitCode } from '../diagnose.js';
import { CliError } from '../errors.js';
import type { CommandContext } from '../io.js';
import { planRetirement, type RetirePlan } from '../plan.js';
import { renderStatus, statusJson } from '../render.js';
import { leaseStillCovers, tolerateNotRotating } from './recover.js';
import { readStatus, surveyStatus } from './status.js';

export const RETIRE_HELP = (cli: string) => `Usage: ${cli} retire --secret-id ID [--yes] [options]

Retires the previous secret now, before its overlap window ends: for example
because it leaked. After a rotation, Stytch keeps accepting the previous secret
for a while, so that apps which cached it have time to read the new AWSCURRENT.
The function's retirement sweep retires it when that window ends; retire does it
at once. Apps still using the previous secret fail from then on, until they
re-read AWSCURRENT.

retire acts only when Stytch's next secret is AWSCURRENT's secret (an overlap
window, or a rotation Stytch never completed). Then it calls Stytch's rotate,
which makes AWSCURRENT's secret Stytch's only secret, and clears the retirement
record in the state table. In any other state it changes nothing, because
completing at Stytch could then break AWSCURRENT; status explains that state.

  --yes   apply; without it retire only prints what it would do (dry run)

  ${cli} retire --secret-id ID          shows what would be retired, changes nothing
  ${cli} retire --secret-id ID --yes    retires the previous secret now

retire needs the function's state table (--state-table NAME or
ROTATION_STATE_TABLE). With --yes it first takes the lease on the Stytch client
there, so that it never acts at the same time as a rotation step or the sweep.
If someone holds the lease, it waits up to 10 s, then stops, naming the holder.
Under the lease it reads Stytch and AWSCURRENT again and decides on that.

Exit code: 0 retired, nothing to retire, or a dry run; 1 retire may not act in
this state (status says why); 2 drift; 3 usage or access error, no state table,
or the lease stayed held.

${COMMON_HELP}`;

type Outcome = { kind: 'retired' } | { kind: 'already'; why: string } | { kind: 'stopped'; why: string };

export async function retireCommand(argv: string[], ctx: CommandContext): Promise<ExitCode> {
  const parsed = parseCommand('retire', argv, { yes: { type: 'boolean', short: 'y' } }, ctx.cli);
  if (!parsed) {
    ctx.io.out(RETIRE_HELP(ctx.cli));
    return 0;
  }
  const { common, values } = parsed;
  const { io } = ctx;
  const id = common.secretId;
  ctx.errorContext.secretId = id;
  const cmd = commands(id, common.style);
  const connection = Connection.for(ctx.runtime, common, ctx.errorContext);
  // The retirement record lives in the state table, and the change is made only under the client's lease (VI).
  await connection.requireState('retire', id);
  await refuseProjectSecret(connection, common.secretId, 'retire', ctx.cli);

  const before = await readStatus(connection, id, common.style, { strictState: true });
  const s = before.snapshot;
  const plan = planRetirement(s);
  io.out(`AWSCURRENT  version ${s.current.versionId} (…${s.current.value.last4})`);
  io.out(`Stytch      current secret ${four(s.stytch.secretLast4)}, next secret ${four(s.stytch.nextSecretLast4)}`);

  if (plan.kind === 'nothing') {
    io.out(`Nothing to retire: ${plan.why}`);
    ctx.record({ outcome: 'nothing', why: plan.why });
    return 0;
  }
  if (plan.kind === 'refuse') {
    io.err(`retire changes nothing: ${plan.why}`);
    ctx.record({ outcome: 'refused', why: plan.why });
    io.err(`See: ${cmd.status}`);
    return Math.max(1, before.exitCode) as ExitCode;
  }

  io.out(describeRetirement(plan, s.readAt));
  const steps = [
    `Retire ${four(plan.retiredLast4)} at Stytch (rotate): AWSCURRENT ${four(plan.keptLast4)} becomes its only secret. Apps still using ${four(plan.retiredLast4)} fail until they re-read AWSCURRENT.`,
    `Clear the retirement record of client ${s.client.id} in the state table, so the sweep does not look at it again.`,
  ];
  if (!values.yes) {
    io.out('Planned (dry run: nothing was changed):');
    steps.forEach((step, i) => io.out(`  ${i + 1}. ${step}`));
    io.out(`Apply with: ${cmd.retire}`);
    ctx.record({ outcome: 'dry-run', planned: steps });
    return 0;
  }

  const { arn, current } = await connection.readCurrent(id);
  const binding = await connection.bindingOf(arn, current);
  const outcome = await connection.underLease<Outcome>(binding, 'retire', io, async (lease) => {
    const deadline = connection.leaseDeadline(lease);
    // Decided again on what Stytch and Secrets Manager say now, under the lease (VI).
    const { snapshot: now, current: value } = await connection.snapshot(id, { strictState: true, deadline });
    const moved = leaseStillCovers(now, lease.binding);
    if (moved) return { result: { kind: 'stopped', why: moved } };
    if (now.current.versionId !== plan.currentVersionId) {
      return { result: { kind: 'stopped', why: `AWSCURRENT moved to version ${now.current.versionId} since it was read.` } };
    }
    const fresh = planRetirement(now);
    if (fresh.kind === 'nothing') return { result: { kind: 'already', why: fresh.why }, retirement: null };
    if (fresh.kind === 'refuse') return { result: { kind: 'stopped', why: fresh.why } };
    // I: rotate only while Stytch's next secret is AWSCURRENT's, as just read under the lease: it then leaves AWSCURRENT's secret as the only one.
    const stytch = await connection.stytchFor(value, deadline);
    await tolerateNotRotating(stytch, () => stytch.rotate(now.client.id));
    const after = await stytch.get(now.client.id);
    if (after.secretLast4 !== fresh.keptLast4 || after.nextSecretLast4 !== null) {
      throw new CliError(
        `Stytch accepted the rotate, yet its secrets (${four(after.secretLast4)}, next ${four(after.nextSecretLast4)}) are not AWSCURRENT's alone (${four(fresh.keptLast4)}); the retirement record was kept. Run ${cmd.status}.`,
      );
    }
    return { result: { kind: 'retired' }, retirement: null };
  });

  ctx.record({ outcome: outcome.kind, ...('why' in outcome ? { why: outcome.why } : {}) });
  switch (outcome.kind) {
    case 'retired':
      io.out(`Retired ${four(plan.retiredLast4)}: Stytch accepts only AWSCURRENT (${four(plan.keptLast4)}) now, and the retirement record is cleared.`);
      break;
    case 'already':
      io.out(`Nothing left to retire (a rotation or the sweep got there first): ${outcome.why}`);
      break;
    case 'stopped':
      io.err(`retire stopped before changing anything at Stytch: ${outcome.why} Run ${cmd.status}.`);
      break;
  }
  const after = await surveyStatus(connection, id, common.style);
  io.out('');
  io.out('Status after retire:');
  for (const line of renderStatus(after.survey, after.verdicts)) io.out(line);
  ctx.record({ status: statusJson(after.survey, after.verdicts) });
  return outcome.kind === 'stopped' ? (Math.max(1, after.exitCode) as ExitCode) : after.exitCode;
}

const four = (last4: string | null) => (last4 ? `…${last4}` : 'none');

function describeRetirement(plan: Extract<RetirePlan, { kind: 'retire' }>, readAt: number): string {
  if (!plan.window) {
    return `Previous    ${four(plan.retiredLast4)} is still accepted and no overlap window is recorded: a rotation Stytch never completed.`;
  }
  const due = isoTime(plan.window.dueAt);
  return plan.window.dueAt > readAt
    ? `Previous    ${four(plan.retiredLast4)} is kept by the overlap window until ${due}.`
    : `Previous    ${four(plan.retiredLast4)} is still accepted although its overlap window ended at ${due}.`;
}
