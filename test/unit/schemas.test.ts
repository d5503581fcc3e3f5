import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../functions/lib/errors.js';
import {
  isScheduledEvent,
  isSecretIdShape,
  parseSecretJson,
  parseWith,
  rotatedSecretSchema,
  rotationEventSchema,
  scheduledEventSchema,
  shownSecretId,
  stytchCredentialsSchema,
} from '../../functions/lib/schemas.js';

/**
 * The schemas of everything that comes from outside, with the exact message a
 * user reads for each mistake: it names the field and the fix, never the value.
 */

const TOKEN = '0123456789abcdef0123456789abcdef';
const event = (fields: Record<string, unknown> = {}) => ({ Step: 'createSecret', SecretId: 'demo/stytch-client', ClientRequestToken: TOKEN, ...fields });
const problem = (schema: Parameters<typeof parseWith>[0], input: unknown) => {
  try {
    parseWith(schema, input, 'The input', 'Fix it.');
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidInputError);
    return (error as Error).message;
  }
  throw new Error('expected the input to be refused');
};

describe('Schema: the rotation event', () => {
  it.each([
    [{ Step: 'rotate' }, 'The input is invalid: Step must be one of createSecret, setSecret, testSecret, finishSecret (the event Secrets Manager sends to a rotation function). Fix it.'],
    [{ SecretId: 7 }, 'The input is invalid: SecretId must be the ARN or name of the secret being rotated. Fix it.'],
    [{ SecretId: '' }, 'The input is invalid: SecretId must not be empty. Fix it.'],
    [{ SecretId: 'a'.repeat(2049) }, 'The input is invalid: SecretId is longer than the 2048 characters Secrets Manager allows. Fix it.'],
    [{ ClientRequestToken: 1 }, 'The input is invalid: ClientRequestToken must be the version id of the pending secret version. Fix it.'],
    [{ ClientRequestToken: 'a'.repeat(31) }, 'The input is invalid: ClientRequestToken must be 32 to 64 characters (a Secrets Manager version id). Fix it.'],
    [{ ClientRequestToken: 'a'.repeat(65) }, 'The input is invalid: ClientRequestToken must be 32 to 64 characters (a Secrets Manager version id). Fix it.'],
    [{ RotationToken: 5 }, 'The input is invalid: RotationToken must be a string when present. Fix it.'],
    [{ RotationToken: 'r'.repeat(35) }, 'The input is invalid: RotationToken must be 36 to 256 letters, digits or hyphens (the token Secrets Manager sends); omit it for a plain rotation. Fix it.'],
  ])('refuses %j with its own message', (fields, message) => {
    expect(problem(rotationEventSchema, event(fields))).toBe(message);
  });

  it('accepts each step, SecretId of 1 and 2048 characters, tokens of 32 and 64, RotationToken of 36 and 256 letters, digits and hyphens', () => {
    for (const Step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret']) expect(parseWith(rotationEventSchema, event({ Step }), 'e', '')).toMatchObject({ Step });
    for (const SecretId of ['a', 'a'.repeat(2048)]) expect(parseWith(rotationEventSchema, event({ SecretId }), 'e', '').SecretId).toBe(SecretId);
    for (const ClientRequestToken of ['a'.repeat(32), 'a'.repeat(64)]) expect(parseWith(rotationEventSchema, event({ ClientRequestToken }), 'e', '').ClientRequestToken).toBe(ClientRequestToken);
    for (const RotationToken of ['aZ9-'.repeat(9), 'aZ9-'.repeat(64)]) expect(parseWith(rotationEventSchema, event({ RotationToken }), 'e', '').RotationToken).toBe(RotationToken);
  });

  it.each(['_'.repeat(36), `${'a'.repeat(36)}.`, `.${'a'.repeat(36)}`, 'a'.repeat(257)])('refuses the RotationToken %s', (RotationToken) => {
    expect(problem(rotationEventSchema, event({ RotationToken }))).toMatch(/^The input is invalid: RotationToken must be 36 to 256 letters/);
  });
});

describe('Schema: the scheduled event', () => {
  it('accepts an EventBridge scheduled event with any other fields', () => {
    expect(parseWith(scheduledEventSchema, { source: 'aws.events', 'detail-type': 'Scheduled Event', id: 'x' }, 'e', '')).toEqual({ source: 'aws.events', 'detail-type': 'Scheduled Event', id: 'x' });
  });

  it('names the source and detail-type it needs', () => {
    expect(problem(scheduledEventSchema, { source: 'aws.s3', 'detail-type': 'Object Created' })).toBe(
      'The input is invalid: source must be "aws.events"; detail-type must be "Scheduled Event": the function runs its retirement sweep only for an EventBridge schedule. Fix it.',
    );
  });

  it('tells a scheduled event from a rotation step by its source only', () => {
    expect(isScheduledEvent({ source: 'aws.events' })).toBe(true);
    expect(isScheduledEvent({ source: 'aws.secretsmanager' })).toBe(false);
    expect(isScheduledEvent(null)).toBe(false);
    expect(isScheduledEvent(undefined)).toBe(false);
    expect(isScheduledEvent('aws.events')).toBe(false);
  });
});

describe('Secret ids: echoed only when they look like one (V)', () => {
  it.each([
    ['demo/stytch-client', true],
    ['a', true],
    ['a'.repeat(512), true],
    ['a'.repeat(513), false],
    ['arn:aws:secretsmanager:us-east-1:123456789012:secret:demo/stytch-client-AbCdEf', true],
    ['arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:x', true],
    ['arn:aws:secretsmanager:us-east-1:12345678901:secret:x', false],
    ['xarn:aws:secretsmanager:us-east-1:123456789012:secret:x', false],
    ['arn:aws:secretsmanager:us-east-1:123456789012:secret:x y', false],
    [' demo', false],
    ['demo ', false],
    ['has space', false],
    ['', false],
    ['secret-test-abcdefghijklmnopqrstuvwxyz', false],
    ['secret-live-abcdefghijklmnopqrstuvwxyz', false],
    ['my-secret-test-name', true],
  ])('%s has the shape of a secret id: %s', (id, shaped) => {
    expect(isSecretIdShape(id)).toBe(shaped);
    expect(shownSecretId(id)).toBe(shaped ? id : '(an id that is not a secret name or ARN, not shown)');
  });
});

describe('Schema: the rotated secret', () => {
  const ok = { client_id: 'connected-app-test-1', client_secret: 'abcd' };

  it('keeps unknown fields and accepts the optional ones', () => {
    const value = { ...ok, stytch_credentials_secret_id: 'stytch/other', client_kind: 'm2m', audience: 'x' };
    expect(parseWith(rotatedSecretSchema, value, 'v', '')).toEqual(value);
  });

  it.each([
    [{ client_id: 1 }, 'client_id must be a string: the Stytch client id whose secret this is'],
    [{ client_id: '' }, 'client_id must not be empty; client_id may only contain letters, digits and - _ . : (a Stytch client id)'],
    [{ client_id: 'a'.repeat(257) }, 'client_id is longer than any Stytch client id (256 characters)'],
    [{ client_id: 'a b' }, 'client_id may only contain letters, digits and - _ . : (a Stytch client id)'],
    [{ client_secret: 1 }, 'client_secret must be a string: the Stytch client secret'],
    [{ client_secret: 'abc' }, 'client_secret must be at least 4 characters (the function compares its last four with Stytch)'],
    [{ client_secret: 'a'.repeat(4097) }, 'client_secret is longer than 4096 characters'],
    [{ stytch_credentials_secret_id: 1 }, 'stytch_credentials_secret_id must be a string: the id or ARN of a Stytch credentials secret'],
    [
      { stytch_credentials_secret_id: '' },
      'stytch_credentials_secret_id must not be empty; remove the field to use the default credentials; stytch_credentials_secret_id must be the name or ARN of a Secrets Manager secret (letters, digits and /_+=.@-, at most 512); it is not shown here in case a secret was pasted there by mistake',
    ],
    [
      { stytch_credentials_secret_id: 'secret-test-pasted' },
      'stytch_credentials_secret_id must be the name or ARN of a Secrets Manager secret (letters, digits and /_+=.@-, at most 512); it is not shown here in case a secret was pasted there by mistake',
    ],
    [{ client_kind: 'saml' }, 'client_kind must be one of connected_app, m2m; remove it to infer the kind from client_id'],
  ])('refuses %j: %s', (fields, message) => {
    expect(problem(rotatedSecretSchema, { ...ok, ...fields })).toBe(`The input is invalid: ${message}. Fix it.`);
  });

  it('accepts the bounds: a client_id of 256 characters with . _ : -, a client_secret of 4 and of 4096', () => {
    expect(parseWith(rotatedSecretSchema, { ...ok, client_id: `a._:-${'b'.repeat(251)}` }, 'v', '').client_id).toHaveLength(256);
    expect(parseWith(rotatedSecretSchema, { ...ok, client_secret: 'a'.repeat(4096) }, 'v', '').client_secret).toHaveLength(4096);
  });
});

describe('Schema: the Stytch credentials secret', () => {
  const ok = { project_id: 'project-test-1', secret: 's' };

  it('accepts project-test and project-live ids, with or without base_url', () => {
    expect(parseWith(stytchCredentialsSchema, ok, 'c', '')).toEqual(ok);
    expect(parseWith(stytchCredentialsSchema, { ...ok, project_id: 'project-live-A-1', base_url: 'https://x' }, 'c', '')).toEqual({ ...ok, project_id: 'project-live-A-1', base_url: 'https://x' });
  });

  it.each([
    [{ project_id: 1 }, 'project_id must be a string: your Stytch project id (project-test-... or project-live-...)'],
    [{ project_id: 'proj-1' }, 'project_id must look like project-test-... or project-live-... (Stytch dashboard, API keys)'],
    [{ project_id: 'project-' }, 'project_id must look like project-test-... or project-live-... (Stytch dashboard, API keys)'],
    [{ project_id: 'xproject-1' }, 'project_id must look like project-test-... or project-live-... (Stytch dashboard, API keys)'],
    [{ project_id: 'project-1 ' }, 'project_id must look like project-test-... or project-live-... (Stytch dashboard, API keys)'],
    [{ secret: 1 }, 'secret must be a string: your Stytch project secret'],
    [{ secret: '' }, 'secret must not be empty: put your Stytch project secret in it'],
    [{ base_url: 1 }, 'base_url must be a string URL such as https://api.stytch.com'],
    [{ base_url: '' }, 'base_url must not be empty; remove it to use the default'],
  ])('refuses %j: %s', (fields, message) => {
    expect(problem(stytchCredentialsSchema, { ...ok, ...fields })).toBe(`The input is invalid: ${message}. Fix it.`);
  });

  it('gives a message about the whole value as it is, with no field path', () => {
    expect(problem(stytchCredentialsSchema, 'project-test-1')).toBe('The input is invalid: Invalid input. Fix it.');
  });
});

describe('Function: parseSecretJson', () => {
  it.each([
    [undefined, 'The value has no SecretString (binary secrets are not supported). Fix it.'],
    ['{"client_id": "a", "client_secret": "secret-looking', 'The value is not valid JSON. Fix it.'],
    ['[1]', 'The value must be a JSON object. Fix it.'],
    ['null', 'The value must be a JSON object. Fix it.'],
    ['"text"', 'The value must be a JSON object. Fix it.'],
  ])('refuses %s without quoting it', (text, message) => {
    expect(() => parseSecretJson(rotatedSecretSchema, text, 'The value', 'Fix it.')).toThrow(new InvalidInputError(message));
  });

  it('parses an object with the schema', () => {
    expect(parseSecretJson(rotatedSecretSchema, '{"client_id":"c","client_secret":"abcd"}', 'v', '')).toEqual({ client_id: 'c', client_secret: 'abcd' });
  });
});
