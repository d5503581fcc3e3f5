import { parseArgs, type ParseArgsConfig } from 'node:util';
import { shellQuote, type CommandStyle } from './diagnose.js';
import type { AwsOptions } from './context.js';
import { CliError } from './errors.js';

/** Command-line parsing with node:util parseArgs: the options every command shares, and each command's help. */

const COMMON_OPTIONS = {
  'secret-id': { type: 'string' },
  'credentials-secret-id': { type: 'string' },
  'state-table': { type: 'string' },
  'endpoint-url': { type: 'string' },
  region: { type: 'string' },
  profile: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

export const COMMON_HELP = `Options for every command:
  --secret-id ID                 the rotated secret (name or ARN)
  --credentials-secret-id ID     the Stytch credentials secret; default: the secret's
                                 stytch_credentials_secret_id, else STYTCH_CREDENTIALS_SECRET_ID
  --state-table NAME             the function's DynamoDB state table (bindings, leases,
                                 overlap windows); default: ROTATION_STATE_TABLE
  --endpoint-url URL             endpoint for both Secrets Manager and DynamoDB, as the local
                                 stack serves them on one port (default: AWS_ENDPOINT_URL_SECRETS_MANAGER
                                 and AWS_ENDPOINT_URL_DYNAMODB, else AWS_ENDPOINT_URL, else AWS's)
  --region REGION                default: AWS_REGION or the profile's region
  --profile NAME                 default: AWS_PROFILE
  -h, --help                     this help

AWS credentials come from the standard chain (environment, profile, SSO, instance role).
Secret values are never printed: only their last four characters.`;

export interface CommonArgs {
  secretId: string;
  credentialsSecretId: string | undefined;
  /** --state-table; undefined: ROTATION_STATE_TABLE, if set. */
  stateTable: string | undefined;
  aws: AwsOptions;
  style: CommandStyle;
}

/**
 * Parses a command's arguments; returns undefined when --help was asked (the
 * caller prints the help). Unknown flags and a missing --secret-id are usage
 * errors (exit 3).
 */
export function parseCommand<T extends NonNullable<ParseArgsConfig['options']>>(
  command: string,
  argv: string[],
  options: T,
  cli: string,
): { common: CommonArgs; values: Record<string, string | boolean | undefined> } | undefined {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options: { ...COMMON_OPTIONS, ...options }, strict: true, allowPositionals: false }) as {
      values: Record<string, string | boolean | undefined>;
    });
  } catch (error) {
    throw new CliError(`${command}: ${(error as Error).message.split('\n')[0]}`, { usage: true, cause: error });
  }
  if (values.help) return undefined;
  const secretId = values['secret-id'];
  if (typeof secretId !== 'string' || secretId === '') throw new CliError(`${command}: --secret-id is required (the name or ARN of the rotated secret).`, { usage: true });
  const str = (name: string) => {
    const value = values[name];
    if (value === '') throw new CliError(`${command}: --${name} must not be empty.`, { usage: true });
    return typeof value === 'string' ? value : undefined;
  };
  const aws: AwsOptions = { endpointUrl: str('endpoint-url'), region: str('region'), profile: str('profile') };
  const credentialsSecretId = str('credentials-secret-id');
  const stateTable = str('state-table');
  const awsFlags: string[] = [];
  if (aws.endpointUrl) awsFlags.push('--endpoint-url', shellQuote(aws.endpointUrl));
  if (aws.region) awsFlags.push('--region', shellQuote(aws.region));
  if (aws.profile) awsFlags.push('--profile', shellQuote(aws.profile));
  const cliFlags: string[] = [];
  if (credentialsSecretId) cliFlags.push('--credentials-secret-id', shellQuote(credentialsSecretId));
  if (stateTable) cliFlags.push('--state-table', shellQuote(stateTable));
  return { common: { secretId, credentialsSecretId, stateTable, aws, style: { cli, awsFlags, cliFlags } }, values };
}

/** `--timeout S`: seconds, a positive number. */
export function parseSeconds(command: string, name: string, raw: string | boolean | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (typeof raw !== 'string' || !Number.isFinite(value) || value <= 0) {
    throw new CliError(`${command}: --${name} must be a positive number of seconds.`, { usage: true });
  }
  return value;
}
