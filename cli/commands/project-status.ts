import { isProjectSecretText, projectSecretSchema, type ProjectSecret } from '../../functions/lib/schemas.js';
import { AWSCURRENT } from '../../functions/lib/secrets/store.js';
import { RECENT_USE_MS } from '../../functions/rotate-stytch-secret/project-secret.js';
import type { ClientRecord } from '../../functions/lib/state/table.js';
import type { ProjectSecretInfo } from '../../functions/lib/stytch/management.js';
import type { DescribeSecretResponse } from '@aws-sdk/client-secrets-manager';
import type { Connection } from '../context.js';
import { shellQuote, type CommandStyle, type ExitCode } from '../diagnose.js';
import { CliError, explainError } from '../errors.js';
import type { CommandContext } from '../io.js';

/**
 * `status` for a rotated Stytch project secret (DESIGN.md §4b): the secret's
 * versions, the project environment's secrets as the management API lists
 * them (masked: last four, created, last used), which label holds which, and
 * any secret no label holds. Read only: nothing is changed.
 */

const LABELS = ['AWSCURRENT', 'AWSPENDING', 'AWSPREVIOUS'] as const;
/** A deletion this late after its window ended means the sweep is late or failing. */
const OVERDUE_MS = 15 * 60_000;

interface VersionRow {
  versionId: string;
  labels: string[];
  secretId: string | undefined;
  last4: string | undefined;
  /** Why the value could not be read as a project secret. */
  invalid: string | undefined;
}

interface SecretRow extends ProjectSecretInfo {
  heldBy: string[];
  /** Recorded for deletion by the sweep, after this time. */
  deleteAfter: string | undefined;
}

interface ProjectVerdict {
  code: string;
  exitCode: ExitCode;
  summary: string;
  fix: string | undefined;
}

export interface ProjectSurvey {
  arn: string;
  name: string;
  described: DescribeSecretResponse;
  current: ProjectSecret | undefined;
  versions: VersionRow[];
  secrets: SecretRow[] | undefined;
  record: ClientRecord | undefined;
  managementNote: string | undefined;
  stateNote: string | undefined;
  verdicts: ProjectVerdict[];
  exitCode: ExitCode;
}

export async function projectStatus(
  connection: Connection,
  secretId: string,
  style: CommandStyle,
  managementFlag: string | undefined,
  ctx: CommandContext,
): Promise<ExitCode> {
  const survey = await surveyProject(connection, secretId, style, managementFlag);
  render(survey, ctx);
  return survey.exitCode;
}

/** AWSCURRENT is a Stytch project secret (DESIGN.md §4b); anything unreadable is left to the client status to explain. */
export async function holdsProjectSecret(connection: Connection, secretId: string): Promise<boolean> {
  try {
    const described = await connection.describe(secretId);
    const versionId = Object.entries(described.VersionIdsToStages ?? {}).find(([, labels]) => labels?.includes(AWSCURRENT))?.[0];
    return versionId !== undefined && isProjectSecretText(await connection.store.getVersion(described.ARN ?? secretId, versionId, { fresh: true }));
  } catch {
    return false;
  }
}

/**
 * For the commands that act on a Stytch client (retire, recover, bind): a project secret has no client, and
 * its previous secret is deleted by the sweep; say so instead of a schema error about client_id.
 */
export async function refuseProjectSecret(connection: Connection, secretId: string, command: string, cli: string): Promise<void> {
  if (!(await holdsProjectSecret(connection, secretId))) return;
  throw new CliError(
    `${secretId} holds a Stytch project secret (it has a secret_id): ${command} acts on Connected App and M2M client secrets only. ` +
      `A project secret's previous secret is deleted by the retirement sweep after its window; a stopped rotation is resumed by Secrets Manager's reattempt or started again with aws secretsmanager rotate-secret. ` +
      `See ${cli} status --secret-id ${shellQuote(secretId)}.`,
  );
}

/** Reads everything status shows for a project secret and decides its verdicts; changes nothing. */
export async function surveyProject(connection: Connection, secretId: string, style: CommandStyle, managementFlag: string | undefined): Promise<ProjectSurvey> {
  const described = await connection.describe(secretId);
  const arn = described.ARN ?? secretId;
  const name = described.Name ?? secretId;
  const versions: VersionRow[] = [];
  let current: ProjectSecret | undefined;
  for (const [versionId, labels] of Object.entries(described.VersionIdsToStages ?? {})) {
    const shown = (labels ?? []).filter((l) => (LABELS as readonly string[]).includes(l));
    if (shown.length === 0) continue;
    const text = await connection.store.getVersion(arn, versionId, { fresh: true });
    const row: VersionRow = { versionId, labels: shown, secretId: undefined, last4: undefined, invalid: undefined };
    if (text === undefined) row.invalid = 'no value';
    else {
      const parsed = safeParse(text);
      if (parsed.kind === 'ok') {
        row.secretId = parsed.value.secret_id;
        row.last4 = parsed.value.secret.slice(-4);
        if (shown.includes('AWSCURRENT')) current = parsed.value;
      } else row.invalid = parsed.reason;
    }
    versions.push(row);
  }
  versions.sort((a, b) => LABELS.findIndex((l) => a.labels.includes(l)) - LABELS.findIndex((l) => b.labels.includes(l)));

  const verdicts: ProjectVerdict[] = [];
  const cmd = (args: string) => `${style.cli} ${args} --secret-id ${shellQuote(name)}${style.cliFlags.length ? ` ${style.cliFlags.join(' ')}` : ''}`;
  const aws = (args: string) => `aws secretsmanager ${args}${style.awsFlags.length ? ` ${style.awsFlags.join(' ')}` : ''}`;

  // The state table: binding, lease, the due deletion and any creation an interrupted attempt left.
  let record: ClientRecord | undefined;
  let stateNote: string | undefined;
  const table = await connection.stateTable(described.RotationLambdaARN).catch(() => undefined);
  if (table && current) {
    try {
      record = await table.readClient({ projectId: current.project_id, clientId: `${current.project_slug}/${current.environment_slug}` });
    } catch (error) {
      stateNote = `the state table ${table.tableName} could not be read: ${explainError(error)}`;
    }
  } else if (!table) stateNote = 'no state table is known (--state-table NAME or ROTATION_STATE_TABLE)';

  let secrets: SecretRow[] | undefined;
  let managementNote: string | undefined;
  if (current) {
    const found = await connection.management(managementFlag, described.RotationLambdaARN);
    if ('reason' in found) managementNote = found.reason;
    else {
      try {
        const listed = await found.api.list({ projectSlug: current.project_slug, environmentSlug: current.environment_slug });
        secrets = listed.map((s) => ({
          ...s,
          heldBy: versions.filter((v) => v.secretId === s.secretId && v.last4 === s.last4).flatMap((v) => v.labels),
          deleteAfter: record?.retirement?.previousSecretId === s.secretId ? new Date(record.retirement.dueAt).toISOString() : undefined,
        }));
      } catch (error) {
        managementNote = `Stytch's management API could not be read with the key in ${found.id} (${found.source}): ${explainError(error)}`;
      }
    }
  }

  // Verdicts, worst first.
  const cur = versions.find((v) => v.labels.includes('AWSCURRENT'));
  if (!current) {
    verdicts.push({
      code: 'current-invalid',
      exitCode: 2,
      summary: `AWSCURRENT of ${name} is not a Stytch project secret (${cur?.invalid ?? 'no AWSCURRENT version'}).`,
      fix: aws(`put-secret-value --secret-id ${shellQuote(name)} --secret-string file://credentials.json`),
    });
  } else if (secrets) {
    const atStytch = secrets.find((s) => s.secretId === current!.secret_id);
    if (!atStytch || atStytch.last4 !== current.secret.slice(-4)) {
      verdicts.push({
        code: 'current-not-at-stytch',
        exitCode: 2,
        summary: atStytch
          ? `AWSCURRENT names secret ${current.secret_id}, which ends …${atStytch.last4} at Stytch, but its secret ends …${current.secret.slice(-4)}: the value was changed outside the function.`
          : `Stytch has no secret ${current.secret_id}: AWSCURRENT's project secret was deleted, or its secret_id is wrong. Apps that read it are failing.`,
        fix: `Put the secret and its secret_id together into ${name}: ${aws(`put-secret-value --secret-id ${shellQuote(name)} --secret-string file://credentials.json`)}`,
      });
    }
  }
  const pending = versions.find((v) => v.labels.includes('AWSPENDING') && !v.labels.includes('AWSCURRENT'));
  if (pending) {
    const held = pending.secretId !== undefined && secrets?.some((s) => s.secretId === pending.secretId);
    verdicts.push({
      code: held ? 'rotation-in-progress' : 'dead-pending',
      exitCode: 1,
      summary: held
        ? `AWSPENDING (version ${pending.versionId}) holds the new secret ${pending.secretId}: a rotation is under way, or stopped before finishSecret.`
        : `AWSPENDING (version ${pending.versionId}) ${pending.invalid ? `has ${pending.invalid}` : `names secret ${pending.secretId}, which Stytch does not have`}.`,
      fix: held
        ? `Let Secrets Manager's reattempt finish it, or start again: ${aws(`rotate-secret --secret-id ${shellQuote(name)}`)}`
        : `Remove the label, then rotate again: ${aws(`update-secret-version-stage --secret-id ${shellQuote(name)} --version-stage AWSPENDING --remove-from-version-id ${pending.versionId}`)}`,
    });
  }
  const due = record?.retirement;
  if (due?.previousSecretId && secrets?.some((s) => s.secretId === due.previousSecretId)) {
    const overdue = connection.runtime.now() > due.dueAt + OVERDUE_MS;
    verdicts.push({
      code: overdue ? 'retirement-overdue' : 'overlap-window',
      exitCode: overdue ? 1 : 0,
      summary: overdue
        ? `The previous secret ${due.previousSecretId} should have been deleted at ${new Date(due.dueAt).toISOString()}; the retirement sweep is late or failing.`
        : `The previous secret ${due.previousSecretId} keeps working until ${new Date(due.dueAt).toISOString()}${due.deferred ? ' (put off once: it was still in use)' : ''}; then the retirement sweep deletes it.`,
      fix: overdue ? 'Check the function\'s logs for "Retirement sweep" and the SweepFailed metric.' : undefined,
    });
  }
  if (record?.created && record.created.secretId === undefined && !record.lease) {
    verdicts.push({
      code: 'interrupted-creation',
      exitCode: 1,
      summary: `An attempt was interrupted while creating a secret (at ${new Date(record.created.at).toISOString()}): a secret listed below with no label and created since then may be one nobody holds.`,
      fix: 'Delete such a secret in the Stytch dashboard if no one uses it (see its last use); the next rotation reports it too.',
    });
  }
  const unheld = secrets?.filter((s) => s.heldBy.length === 0 && !s.deleteAfter) ?? [];
  if (unheld.length > 0) {
    const recentlyUsed = unheld.filter((s) => s.usedAt !== undefined && Date.parse(s.usedAt) >= connection.runtime.now() - RECENT_USE_MS);
    verdicts.push({
      code: 'secrets-without-label',
      exitCode: 0,
      summary: `${unheld.length} of the project's secrets are held by no label of ${name} (another team's, or left behind)${recentlyUsed.length ? `; ${recentlyUsed.length} used in the last 5 minutes` : ''}. The function never deletes them.`,
      fix: undefined,
    });
  }
  if (verdicts.every((v) => v.code === 'secrets-without-label') && current && secrets) {
    verdicts.unshift({ code: 'consistent', exitCode: 0, summary: 'AWSCURRENT is a secret Stytch has, nothing pending.', fix: undefined });
  }
  verdicts.sort((a, b) => b.exitCode - a.exitCode);
  const exitCode: ExitCode = managementNote && verdicts.every((v) => v.exitCode < 2) ? 3 : (Math.max(0, ...verdicts.map((v) => v.exitCode)) as ExitCode);
  return { arn, name, described, current, versions, secrets, record, managementNote, stateNote, verdicts, exitCode };
}

function render(survey: ProjectSurvey, ctx: CommandContext): void {
  const { arn, name, described, current, versions, secrets, record, managementNote, stateNote, verdicts, exitCode } = survey;
  const out = (line: string) => ctx.io.out(line);
  out(`Secret ${name}: Stytch project secret of ${current ? `${current.project_id} (${current.project_slug}/${current.environment_slug})` : 'an unknown project'}`);
  out(`Rotation: ${described.RotationEnabled ? `on, ${described.RotationRules?.ScheduleExpression ?? `every ${described.RotationRules?.AutomaticallyAfterDays ?? '?'} days`}` : 'off'}` +
    `${described.LastRotatedDate ? `; last rotated ${iso(described.LastRotatedDate)}` : ''}${described.NextRotationDate ? `; next ${iso(described.NextRotationDate)}` : ''}`);
  out('Versions:');
  for (const v of versions) {
    out(`  ${v.labels.join(',').padEnd(22)} ${v.versionId}  ${v.invalid ? `(${v.invalid})` : `secret_id ${v.secretId}  …${v.last4}`}`);
  }
  if (secrets) {
    out(`Stytch's secrets in ${current!.project_slug}/${current!.environment_slug} (${secrets.length} of 50):`);
    for (const s of secrets) {
      const held = [s.heldBy.join(','), s.deleteAfter ? `deleted after ${s.deleteAfter}` : ''].filter(Boolean).join('; ') || 'no label';
      out(`  ${s.secretId}  …${s.last4}  created ${s.createdAt ?? 'unknown'}  last used ${s.usedAt ?? 'never'}  [${held}]`);
    }
  } else if (managementNote) out(`Stytch's secrets: unknown. ${managementNote}`);
  if (record?.binding) out(`Binding: ${record.binding.secretArn === arn ? 'this secret' : record.binding.secretArn}, bound ${record.boundAt ?? ''}`.trimEnd());
  if (record?.lease) out(`Lease: held by ${record.lease.holder} (${record.lease.what}) until ${new Date(record.lease.until).toISOString()}`);
  if (stateNote) out(`State table: ${stateNote}`);
  for (const v of verdicts) {
    out(`${v.exitCode === 2 ? 'OUTAGE' : v.exitCode === 1 ? 'ATTENTION' : 'OK'} ${v.code}: ${v.summary}`);
    if (v.fix) out(`  fix: ${v.fix}`);
  }
  ctx.record({
    secret: { arn, name, kind: 'project_secret' },
    project: current ? { projectId: current.project_id, projectSlug: current.project_slug, environmentSlug: current.environment_slug } : undefined,
    versions,
    stytchSecrets: secrets,
    state: record
      ? {
          bound: record.binding?.secretArn === arn,
          lease: record.lease,
          retirement: record.retirement,
          interruptedCreation: record.created && record.created.secretId === undefined ? { at: new Date(record.created.at).toISOString() } : undefined,
        }
      : undefined,
    problems: [managementNote, stateNote].filter(Boolean),
    verdicts,
    exitCode,
  });
}

/** A date from the SDK (a Date), or as a plain answer carries it (epoch seconds or a string). */
function iso(value: unknown): string {
  const date = value instanceof Date ? value : typeof value === 'number' ? new Date(value * 1000) : new Date(String(value));
  return Number.isNaN(date.getTime()) ? String(value) : date.toISOString();
}

function safeParse(text: string): { kind: 'ok'; value: ProjectSecret } | { kind: 'invalid'; reason: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'invalid', reason: 'not valid JSON' };
  }
  const parsed = projectSecretSchema.safeParse(value);
  if (!parsed.success) return { kind: 'invalid', reason: `not a project secret: ${parsed.error.issues.map((i) => i.message).join('; ')}` };
  return { kind: 'ok', value: parsed.data };
}
