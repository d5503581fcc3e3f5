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
  'function-name': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

export const COMMON_HELP = `Options for every command:
  --secret-id ID                 the rotated secret (name or ARN)
  --function-name NAME           the rotation function (name or ARN); default: the secret's own
                                 rotation function. Its settings name the credentials secret and
                                 the state table when nothing else does.
  --credentials-secret-id ID     the Stytch credentials secret. Default, in order: the value's
                                 stytch_credentials_secret_id; the secret's binding in the state
                                 table; STYTCH_CREDENTIALS_SECRET_ID; the rotation function's setting.
  --state-table NAME             the function's DynamoDB state table (bindings, leases, overlap
                                 windows). Default: ROTATION_STATE_TABLE, else the rotation
                                 function's setting.
  --endpoint-url URL             one endpoint for Secrets Manager, DynamoDB and Lambda, as the local
                                 stack serves them on one port. Default: AWS_ENDPOINT_URL_SECRETS_MANAGER,
                                 AWS_ENDPOINT_URL_DYNAMODB and AWS_ENDPOINT_URL_LAMBDA, else
                                 AWS_ENDPOINT_URL, else AWS's.
  --region REGION                default: AWS_REGION, else AWS_DEFAULT_REGION, else the profile's region
  --profile NAME                 default: AWS_PROFILE
  --json                         print one JSON object instead of text (npm run -s, or the bin,
                                 keeps npm's banner out)
  -h, --help                     this help

AWS credentials come from the standard chain (environment, profile, SSO, instance role).
Secret values are never printed: only their last four characters.`;

export interface CommonArgs {
  secretId: string;
  credentialsSecretId: string | undefined;
  /** --state-table; undefined: ROTATION_STATE_TABLE, if set. */
  stateTable: string | undefined;
  /** --function-name */
  functionName: string | undefined;
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
  const functionName = str('function-name');
  const awsFlags: string[] = [];
  if (aws.endpointUrl) awsFlags.push('--endpoint-url', shellQuote(aws.endpointUrl));
  if (aws.region) awsFlags.push('--region', shellQuote(aws.region));
  if (aws.profile) awsFlags.push('--profile', shellQuote(aws.profile));
  const cliFlags: string[] = [];
  if (credentialsSecretId) cliFlags.push('--credentials-secret-id', shellQuote(credentialsSecretId));
  if (stateTable) cliFlags.push('--state-table', shellQuote(stateTable));
  if (functionName) cliFlags.push('--function-name', shellQuote(functionName));
  return { common: { secretId, credentialsSecretId, stateTable, functionName, aws, style: { cli, awsFlags, cliFlags } }, values };
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
