import { parseArgs } from 'node:util';
import { ListSecretsCommand, type SecretListEntry } from '@aws-sdk/client-secrets-manager';
import { Connection } from '../context.js';
import { holdsProjectSecret, surveyProject } from './project-status.js';
import { diagnoseSurvey, exitCodeOf, shellQuote, type ExitCode, type Verdict } from '../diagnose.js';
import { CliError, explainError } from '../errors.js';
import type { CommandContext } from '../io.js';
import { table } from '../render.js';

/**
 * `status --all`: every secret whose rotation function is this one, one line
 * each, read with the same survey as `status` (so a secret that cannot be
 * read fully still gets its verdict), a bounded number at a time.
 */

export const STATUS_ALL_HELP = (cli: string) => `Usage: ${cli} status --all --function-name NAME [--concurrency N] [--json] [options]

Lists every secret whose rotation function is NAME (ListSecrets, every page), one
line each: name, client kind, last rotation, next rotation, and the worst verdict.
Then a summary. Each secret is read as status reads it; run status --secret-id ID
for one secret's details and fixes.

  --function-name NAME   the rotation function (name or ARN) whose secrets to list
  --concurrency N        secrets read at once (default ${DEFAULT_CONCURRENCY}); Stytch's rate limit
                         sets the pace, and 429s are retried with backoff
  --json                 one JSON object: every secret, the summary, the exit code

Exit code: the worst of all secrets (0 all consistent or in their window, 1 some
need attention, 2 consumers of some secret are failing now, 3 some part could not
be read or a usage error). An outage (2) outranks 3.

Options shared with status: --credentials-secret-id, --state-table, --endpoint-url,
--region, --profile (see ${cli} status --help).`;

const DEFAULT_CONCURRENCY = 16;
const MAX_CONCURRENCY = 64;

export interface FleetRow {
  name: string;
  arn: string;
  clientKind: string | null;
  lastRotated: string | null;
  nextRotation: string | null;
  /** The worst verdict's code, or `unreadable` when the secret could not be described. */
  verdict: string;
  verdicts: string[];
  exitCode: ExitCode;
  /** Why the secret could not be read at all, if so. */
  error?: string;
}

/** The function's name as an ARN ends with it, without a qualifier (`:$LATEST`, an alias). */
function functionNameOf(nameOrArn: string): string {
  const match = /:function:([^:]+)/.exec(nameOrArn);
  return match ? match[1]! : nameOrArn;
}

/** Is `rotationLambdaArn` the function named by --function-name (a name, or an ARN with or without qualifier)? */
export function isThisFunction(rotationLambdaArn: string | undefined, functionName: string): boolean {
  if (!rotationLambdaArn) return false;
  return rotationLambdaArn === functionName || functionNameOf(rotationLambdaArn) === functionNameOf(functionName);
}

/** Runs `work` over `items`, at most `limit` at a time. */
async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export async function statusAllCommand(argv: string[], ctx: CommandContext): Promise<ExitCode> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        all: { type: 'boolean' },
        'function-name': { type: 'string' },
        concurrency: { type: 'string' },
        json: { type: 'boolean' },
        'credentials-secret-id': { type: 'string' },
        'state-table': { type: 'string' },
        'endpoint-url': { type: 'string' },
        region: { type: 'string' },
        profile: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }) as { values: Record<string, string | boolean | undefined> });
  } catch (error) {
    throw new CliError(`status --all: ${(error as Error).message.split('\n')[0]}`, { usage: true, cause: error });
  }
  if (values.help) {
    ctx.io.out(STATUS_ALL_HELP(ctx.cli));
    return 0;
  }
  const str = (name: string) => {
    const value = values[name];
    if (value === '') throw new CliError(`status --all: --${name} must not be empty.`, { usage: true });
    return typeof value === 'string' ? value : undefined;
  };
  const functionName = str('function-name');
  if (!functionName) {
    throw new CliError('status --all needs --function-name NAME: the rotation function whose secrets to list (for the local stack: stytch-secret-rotation-local).', {
      usage: true,
    });
  }
  const concurrency = values.concurrency === undefined ? DEFAULT_CONCURRENCY : Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) {
    throw new CliError(`status --all: --concurrency must be a whole number from 1 to ${MAX_CONCURRENCY}.`, { usage: true });
  }
  const aws = { endpointUrl: str('endpoint-url'), region: str('region'), profile: str('profile') };
  const awsFlags: string[] = [];
  if (aws.endpointUrl) awsFlags.push('--endpoint-url', shellQuote(aws.endpointUrl));
  if (aws.region) awsFlags.push('--region', shellQuote(aws.region));
  if (aws.profile) awsFlags.push('--profile', shellQuote(aws.profile));
  const cliFlags = ['--function-name', shellQuote(functionName)];
  const credentialsSecretId = str('credentials-secret-id');
  const stateTable = str('state-table');
  if (credentialsSecretId) cliFlags.push('--credentials-secret-id', shellQuote(credentialsSecretId));
  if (stateTable) cliFlags.push('--state-table', shellQuote(stateTable));
  const style = { cli: ctx.cli, awsFlags, cliFlags };
  // One connection for all: the credentials and the function's settings are read once.
  const connection = Connection.for(ctx.runtime, { aws, credentialsSecretId, stateTable, functionName }, ctx.errorContext);

  const secrets: SecretListEntry[] = [];
  let nextToken: string | undefined;
  do {
    const page = await connection.sm.send(new ListSecretsCommand({ MaxResults: 100, ...(nextToken ? { NextToken: nextToken } : {}) }));
    for (const entry of page.SecretList ?? []) if (isThisFunction(entry.RotationLambdaARN, functionName)) secrets.push(entry);
    nextToken = page.NextToken;
  } while (nextToken);

  const rows: FleetRow[] = [];
  await pool(secrets, concurrency, async (entry) => {
    const id = entry.ARN ?? entry.Name!;
    const name = entry.Name ?? id;
    try {
      const survey = await connection.survey(id);
      if (survey.current?.value?.kind === 'invalid' && (await holdsProjectSecret(connection, id))) {
        // A Stytch project secret (DESIGN.md §4b): its own survey, through the management API.
        const project = await surveyProject(connection, id, style, undefined);
        rows.push({
          name,
          arn: project.arn,
          clientKind: 'project_secret',
          lastRotated: survey.rotation.lastRotatedDate ?? null,
          nextRotation: survey.rotation.nextRotationDate ?? null,
          verdict: project.verdicts[0]?.code ?? 'consistent',
          verdicts: project.verdicts.map((v) => v.code),
          exitCode: project.exitCode,
        });
        return;
      }
      const verdicts: Verdict[] = diagnoseSurvey(survey, style);
      rows.push({
        name,
        arn: survey.arn,
        clientKind: survey.client?.kind ?? null,
        lastRotated: survey.rotation.lastRotatedDate ?? null,
        nextRotation: survey.rotation.nextRotationDate ?? null,
        verdict: verdicts[0]?.code ?? 'consistent',
        verdicts: verdicts.map((v) => v.code),
        exitCode: exitCodeOf(verdicts),
      });
    } catch (error) {
      rows.push({ name, arn: entry.ARN ?? id, clientKind: null, lastRotated: null, nextRotation: null, verdict: 'unreadable', verdicts: ['unreadable'], exitCode: 3, error: explainError(error) });
    }
  });
  rows.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  const byVerdict: Record<string, number> = {};
  for (const row of rows) byVerdict[row.verdict] = (byVerdict[row.verdict] ?? 0) + 1;
  const exitCode: ExitCode = rows.some((r) => r.exitCode === 2) ? 2 : rows.reduce<ExitCode>((worst, r) => (r.exitCode > worst ? r.exitCode : worst), 0);
  const counts = Object.entries(byVerdict)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([code, n]) => `${n} ${code}`)
    .join(', ');

  const day = (iso: string | null) => (iso ? iso.replace(/:\d\dZ$/, 'Z') : '-');
  for (const line of table([
    ['Secret', 'Client', 'Last rotation', 'Next rotation', 'Verdict'],
    ...rows.map((r) => [r.name, r.clientKind ?? '?', day(r.lastRotated), day(r.nextRotation), r.error ? `unreadable: ${r.error}` : r.verdicts.join(', ')]),
  ])) {
    ctx.io.out(line);
  }
  ctx.io.out('');
  ctx.io.out(
    rows.length === 0
      ? `No secret is rotated by ${functionName}.`
      : `${rows.length} secret${rows.length === 1 ? '' : 's'} rotated by ${functionName}: ${counts}. Worst exit code ${exitCode}.`,
  );
  if (exitCode !== 0) ctx.io.out(`Details and fixes: ${ctx.cli} status --secret-id ID ${cliFlags.concat(awsFlags).join(' ')}`);
  ctx.record({ functionName, secrets: rows, summary: { total: rows.length, byVerdict } });
  return exitCode;
}
