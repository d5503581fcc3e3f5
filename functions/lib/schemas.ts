import * as z from 'zod/mini';
import { InvalidInputError } from './errors.js';

/**
 * Schemas for everything that comes from outside: the event Secrets Manager
 * sends, the rotated secret and the Stytch credentials secret. They run before
 * any Stytch call, and their error messages name fields, never values
 * (invariant V: a value that fails validation may still be a secret).
 */

export const STEPS = ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const;
export type Step = (typeof STEPS)[number];

export const rotationEventSchema = z.object({
  Step: z.enum(STEPS, {
    error: `Step must be one of ${STEPS.join(', ')} (the event Secrets Manager sends to a rotation function)`,
  }),
  SecretId: z
    .string({ error: 'SecretId must be the ARN or name of the secret being rotated' })
    .check(z.minLength(1, 'SecretId must not be empty'), z.maxLength(2048, 'SecretId is longer than the 2048 characters Secrets Manager allows')),
  // Secrets Manager version ids (ClientRequestToken) are 32 to 64 characters.
  ClientRequestToken: z
    .string({ error: 'ClientRequestToken must be the version id of the pending secret version' })
    .check(
      z.minLength(32, 'ClientRequestToken must be 32 to 64 characters (a Secrets Manager version id)'),
      z.maxLength(64, 'ClientRequestToken must be 32 to 64 characters (a Secrets Manager version id)'),
    ),
  // The service model's RotationTokenType, checked here so a bad one fails before rotate/start.
  RotationToken: z.optional(
    z
      .string({ error: 'RotationToken must be a string when present' })
      .check(
        z.regex(/^[a-zA-Z0-9-]{36,256}$/, 'RotationToken must be 36 to 256 letters, digits or hyphens (the token Secrets Manager sends); omit it for a plain rotation'),
      ),
  ),
});
export type RotationEvent = z.infer<typeof rotationEventSchema>;

/** The retirement sweep's trigger: a standard EventBridge scheduled event (DESIGN.md §2). */
export const scheduledEventSchema = z.looseObject({
  source: z.literal('aws.events', { error: 'source must be "aws.events"' }),
  'detail-type': z.literal('Scheduled Event', {
    error: 'detail-type must be "Scheduled Event": the function runs its retirement sweep only for an EventBridge schedule',
  }),
});
export type ScheduledEvent = z.infer<typeof scheduledEventSchema>;

/** An event from EventBridge rather than a rotation step from Secrets Manager. */
export function isScheduledEvent(event: unknown): boolean {
  return typeof event === 'object' && event !== null && (event as { source?: unknown }).source === 'aws.events';
}

const SECRET_NAME = /^[A-Za-z0-9/_+=.@-]{1,512}$/;
const SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}$/;
/** Stytch's project secrets: never a secret's name, and never to be echoed. */
const STYTCH_SECRET = /^secret-(test|live)-/;

/** A Secrets Manager secret's name or ARN, and not something that looks like a Stytch secret. */
export function isSecretIdShape(id: string): boolean {
  return (SECRET_NAME.test(id) || SECRET_ARN.test(id)) && !STYTCH_SECRET.test(id);
}

/** A secret id for a message: echoed only when it has the shape of one (V: a secret pasted in its place is never shown). */
export function shownSecretId(id: string): string {
  return isSecretIdShape(id) ? id : '(an id that is not a secret name or ARN, not shown)';
}

export const CLIENT_KINDS = ['connected_app', 'm2m'] as const;
export type ClientKind = (typeof CLIENT_KINDS)[number];

/** The rotated secret. Unknown fields are kept and copied into every new version. */
export const rotatedSecretSchema = z.looseObject({
  client_id: z
    .string({ error: 'client_id must be a string: the Stytch client id whose secret this is' })
    .check(
      z.minLength(1, 'client_id must not be empty'),
      z.maxLength(256, 'client_id is longer than any Stytch client id (256 characters)'),
      z.regex(/^[A-Za-z0-9_.:-]+$/, 'client_id may only contain letters, digits and - _ . : (a Stytch client id)'),
    ),
  client_secret: z
    .string({ error: 'client_secret must be a string: the Stytch client secret' })
    .check(
      z.minLength(4, 'client_secret must be at least 4 characters (the function compares its last four with Stytch)'),
      z.maxLength(4096, 'client_secret is longer than 4096 characters'),
    ),
  stytch_credentials_secret_id: z.optional(
    z
      .string({ error: 'stytch_credentials_secret_id must be a string: the id or ARN of a Stytch credentials secret' })
      .check(
        z.minLength(1, 'stytch_credentials_secret_id must not be empty; remove the field to use the default credentials'),
        z.refine(
          isSecretIdShape,
          'stytch_credentials_secret_id must be the name or ARN of a Secrets Manager secret (letters, digits and /_+=.@-, at most 512); it is not shown here in case a secret was pasted there by mistake',
        ),
      ),
  ),
  client_kind: z.optional(
    z.enum(CLIENT_KINDS, { error: `client_kind must be one of ${CLIENT_KINDS.join(', ')}; remove it to infer the kind from client_id` }),
  ),
});
export type RotatedSecret = z.infer<typeof rotatedSecretSchema>;

export const stytchCredentialsSchema = z.object({
  project_id: z
    .string({ error: 'project_id must be a string: your Stytch project id (project-test-... or project-live-...)' })
    .check(z.regex(/^project-[A-Za-z0-9-]+$/, 'project_id must look like project-test-... or project-live-... (Stytch dashboard, API keys)')),
  secret: z
    .string({ error: 'secret must be a string: your Stytch project secret' })
    .check(z.minLength(1, 'secret must not be empty: put your Stytch project secret in it')),
  base_url: z.optional(
    z.string({ error: 'base_url must be a string URL such as https://api.stytch.com' }).check(z.minLength(1, 'base_url must not be empty; remove it to use the default')),
  ),
});
export type StytchCredentialsSecret = z.infer<typeof stytchCredentialsSchema>;

/** What a binding names: a Stytch client, or a project environment whose API secret is rotated (DESIGN.md §4b). */
export type BindingKind = ClientKind | 'project_secret';

const SLUG = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

/**
 * A rotated Stytch project API secret (DESIGN.md §4b): a credentials secret
 * with the ids the management API needs. Unknown fields are kept and copied
 * into every new version, like a client secret's.
 */
export const projectSecretSchema = z.looseObject({
  project_id: stytchCredentialsSchema.shape.project_id,
  secret: z
    .string({ error: 'secret must be a string: the Stytch project secret' })
    .check(
      z.minLength(4, 'secret must be at least 4 characters (the function compares its last four with Stytch)'),
      z.maxLength(4096, 'secret is longer than 4096 characters'),
    ),
  secret_id: z
    .string({ error: 'secret_id must be a string: the id Stytch gives the project secret (dashboard, API keys; or the CLI status command)' })
    .check(
      z.minLength(1, 'secret_id must not be empty'),
      z.maxLength(256, 'secret_id is longer than any Stytch secret id (256 characters)'),
      z.regex(/^[A-Za-z0-9_.:-]+$/, 'secret_id may only contain letters, digits and - _ . : (a Stytch secret id)'),
    ),
  project_slug: z
    .string({ error: 'project_slug must be a string: the project\'s slug in the Stytch workspace (the management API addresses projects by slug)' })
    .check(z.regex(SLUG, 'project_slug must be a slug: letters, digits, - and _ (Stytch dashboard, project settings)')),
  environment_slug: z
    .string({ error: 'environment_slug must be a string: the environment\'s slug, e.g. test or production' })
    .check(z.regex(SLUG, 'environment_slug must be a slug: letters, digits, - and _ (Stytch dashboard, project settings)')),
  base_url: stytchCredentialsSchema.shape.base_url,
  kind: z.optional(z.literal('project_secret', { error: 'kind must be "project_secret" when present; remove it for a client secret' })),
});
export type ProjectSecret = z.infer<typeof projectSecretSchema>;

/**
 * A rotated value is a project secret when it says so (`"kind": "project_secret"`) or carries a
 * `secret_id`; anything else is a client secret. Decided from the parsed object, before any check.
 */
export function isProjectSecretText(text: string | undefined): boolean {
  try {
    const value = JSON.parse(text!) as { kind?: unknown };
    // Not JSON (or no text at all), or null, which makes hasOwn throw: not a project secret. A primitive or an
    // array has neither field.
    return Object.hasOwn(value, 'secret_id') || value.kind === 'project_secret';
  } catch {
    return false;
  }
}

/** The workspace management key the function uses for project secrets (read-only for it). */
export const managementCredentialsSchema = z.object({
  workspace_key_id: z
    .string({ error: 'workspace_key_id must be a string: the id of a Stytch workspace management key (dashboard, Workspace settings, Management API)' })
    .check(z.minLength(1, 'workspace_key_id must not be empty')),
  workspace_key_secret: z
    .string({ error: 'workspace_key_secret must be a string: the secret of that workspace management key' })
    .check(z.minLength(1, 'workspace_key_secret must not be empty')),
  base_url: z.optional(
    z.string({ error: 'base_url must be a string URL such as https://management.stytch.com' }).check(z.minLength(1, 'base_url must not be empty; remove it to use the default')),
  ),
});
export type ManagementCredentialsSecret = z.infer<typeof managementCredentialsSchema>;

function describeIssues(error: { issues: ReadonlyArray<{ path: PropertyKey[]; message: string }> }): string {
  return error.issues
    .map((issue) => {
      // Stryker disable next-line StringLiteral: equivalent today; every schema here is one field deep, so a path has no separator to join.
      const path = issue.path.map(String).join('.');
      // Most messages already start with their field's name. Every message written here does, so the prefix is for
      // zod's own messages on a nested field, which these flat schemas never produce:
      // Stryker disable next-line ConditionalExpression,EqualityOperator,StringLiteral: equivalent today (see above).
      return path === '' || issue.message.startsWith(path) ? issue.message : `${path}: ${issue.message}`;
    })
    .join('; ');
}

/** Parses with a schema; the error names what is wrong and where (`what`), never a value. */
export function parseWith<T extends z.ZodMiniType>(schema: T, input: unknown, what: string, fix: string): z.infer<T> {
  const result = schema.safeParse(input);
  if (!result.success) {
    throw new InvalidInputError(`${what} is invalid: ${describeIssues(result.error)}. ${fix}`);
  }
  return result.data;
}

/**
 * JSON.parse's own message quotes the input, which may be a secret, so it is
 * replaced by one that only says where to look.
 */
export function parseSecretJson<T extends z.ZodMiniType>(schema: T, text: string | undefined, what: string, fix: string): z.infer<T> {
  if (text === undefined) {
    throw new InvalidInputError(`${what} has no SecretString (binary secrets are not supported). ${fix}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new InvalidInputError(`${what} is not valid JSON. ${fix}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidInputError(`${what} must be a JSON object. ${fix}`);
  }
  return parseWith(schema, value, what, fix);
}
