import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { CREDENTIALS_SECRET, STEPS, type Step, World, type WorldOptions } from '../helpers/world.js';
import { currentAccepted, rotateSecret } from './support/invariants.js';

/**
 * Bad input, beyond test/unit/bad-input.test.ts: every malformed event,
 * rotated secret, pending value, credentials secret and configuration we could
 * think of. Each row asserts that the error says what is wrong and how to fix
 * it, that nothing changed (both secrets' versions and stages, Stytch's
 * state), how many Stytch calls were made (none where none is needed to find
 * out), that the function made no mutating call, and that no bad value that
 * might be a secret appears in any output or error (V).
 *
 * Rows run in a fresh World with a cold container, so configuration and
 * credentials are read afresh.
 */

const MB = 1024 * 1024;
const big = (c: string, n = MB) => c.repeat(n);

interface Row {
  name: string;
  options?: WorldOptions;
  /** Before the rotation begins (a new AWSCURRENT abandons a pending rotation, so it goes first). */
  before?: (w: World) => Promise<unknown>;
  /** After the rotation began: the token version exists, labelled AWSPENDING. */
  after?: (w: World, token: string) => Promise<unknown>;
  /** The event; default: a well-formed one for the step. */
  event?: (w: World, token: string, step: Step) => unknown;
  /** The steps to try (each in a fresh World); default createSecret. */
  steps?: readonly Step[];
  /** Each must match the error message: what is wrong, then how to fix it. */
  message: RegExp[];
  /** Stytch calls made (default 0: rejected before any). */
  stytchCalls?: number;
  /** Rejected before any call at all (the event itself is malformed). */
  noCalls?: boolean;
  /** Calls that changed state (answered with success), by operation name (default none). */
  mutations?: string[];
  /** Values that might be secrets and must not appear anywhere. */
  secrets?: string[];
}

const putCurrent = (w: World, value: string) =>
  w.sm.handle('PutSecretValue', { SecretId: w.secretArn, ClientRequestToken: randomUUID(), SecretString: value });
const putCurrentJson = (w: World, fields: Record<string, unknown>) => putCurrent(w, JSON.stringify({ ...w.client, ...fields }));
const putPending = (w: World, token: string, value: string) =>
  w.sm.handle('PutSecretValue', { SecretId: w.secretArn, ClientRequestToken: token, SecretString: value, VersionStages: ['AWSPENDING'] });
const putCredentials = (w: World, value: unknown) =>
  w.sm.handle('PutSecretValue', {
    SecretId: CREDENTIALS_SECRET,
    ClientRequestToken: randomUUID(),
    SecretString: typeof value === 'string' ? value : JSON.stringify(value),
  });
const credentialsWith = (w: World, fields: Record<string, unknown>) => putCredentials(w, { project_id: w.project.projectId, secret: w.project.secret, ...fields });
const event = (w: World, token: string, step: Step, fields: Record<string, unknown> = {}) => ({ Step: step, SecretId: w.secretArn, ClientRequestToken: token, ...fields });

const FIX_EVENT = /start rotations with aws secretsmanager rotate-secret/;
const FIX_CURRENT = /fix it with aws secretsmanager put-secret-value/;
const FIX_PENDING = /Remove AWSPENDING from it \(aws secretsmanager update-secret-version-stage --secret-id demo\/stytch-client --version-stage AWSPENDING --remove-from-version-id [0-9a-f-]{36}\) and rotate again/;
const FIX_CREDENTIALS = /It must be JSON \{"project_id": "project-test-\.\.\.", "secret": "\.\.\.", "base_url"\?: "https:\/\/\.\.\."\}; fix it with aws secretsmanager put-secret-value/;
const HTTPS_ONLY = /must use https \(plain http is accepted only for loopback hosts such as 127\.0\.0\.1\)/;

const ROWS: Row[] = [
  // ---------------------------------------------------------------- the event
  { name: 'an array instead of an event object', event: () => [], message: [/The rotation event is invalid/, FIX_EVENT], noCalls: true },
  { name: 'a string instead of an event object', event: () => 'createSecret', message: [/The rotation event is invalid/, FIX_EVENT], noCalls: true },
  { name: 'a number instead of an event object', event: () => 42, message: [/The rotation event is invalid/, FIX_EVENT], noCalls: true },
  { name: 'no event (undefined)', event: () => undefined, message: [/Step must be one of.*SecretId must be.*ClientRequestToken must be/, FIX_EVENT], noCalls: true },
  { name: 'an empty event object', event: () => ({}), message: [/Step must be one of.*SecretId must be.*ClientRequestToken must be/, FIX_EVENT], noCalls: true },
  { name: 'Step as a number', event: (w, t) => event(w, t, 1 as never), message: [/Step must be one of createSecret, setSecret, testSecret, finishSecret/, FIX_EVENT], noCalls: true },
  { name: 'Step in the wrong case', event: (w, t) => event(w, t, 'createsecret' as never), message: [/Step must be one of/, FIX_EVENT], noCalls: true },
  { name: 'Step padded with spaces', event: (w, t) => event(w, t, ' createSecret ' as never), message: [/Step must be one of/, FIX_EVENT], noCalls: true },
  { name: 'Step as an array', event: (w, t) => event(w, t, ['createSecret'] as never), message: [/Step must be one of/, FIX_EVENT], noCalls: true },
  { name: 'Step of 1 MB', event: (w, t) => event(w, t, big('s') as never), message: [/Step must be one of/, FIX_EVENT], noCalls: true },
  { name: 'SecretId as a number', event: (_, t) => ({ Step: 'createSecret', SecretId: 123, ClientRequestToken: t }), message: [/SecretId must be the ARN or name/, FIX_EVENT], noCalls: true },
  { name: 'SecretId as an array', event: (w, t) => ({ Step: 'createSecret', SecretId: [w.secretArn], ClientRequestToken: t }), message: [/SecretId must be the ARN or name/, FIX_EVENT], noCalls: true },
  { name: 'SecretId as an object', event: (w, t) => ({ Step: 'createSecret', SecretId: { arn: w.secretArn }, ClientRequestToken: t }), message: [/SecretId must be the ARN or name/, FIX_EVENT], noCalls: true },
  { name: 'SecretId of 2049 characters', event: (_, t) => ({ Step: 'createSecret', SecretId: big('a', 2049), ClientRequestToken: t }), message: [/SecretId is longer than the 2048 characters/, FIX_EVENT], noCalls: true },
  { name: 'SecretId of 1 MB', event: (_, t) => ({ Step: 'createSecret', SecretId: big('a'), ClientRequestToken: t }), message: [/SecretId is longer than the 2048 characters/, FIX_EVENT], noCalls: true },
  { name: 'an empty ClientRequestToken', event: (w) => ({ Step: 'createSecret', SecretId: w.secretArn, ClientRequestToken: '' }), message: [/ClientRequestToken must be 32 to 64 characters/, FIX_EVENT], noCalls: true },
  { name: 'a ClientRequestToken of 65 characters', event: (w) => ({ Step: 'createSecret', SecretId: w.secretArn, ClientRequestToken: big('a', 65) }), message: [/ClientRequestToken must be 32 to 64 characters/, FIX_EVENT], noCalls: true },
  { name: 'a ClientRequestToken of 1 MB', event: (w) => ({ Step: 'createSecret', SecretId: w.secretArn, ClientRequestToken: big('a') }), message: [/ClientRequestToken must be 32 to 64 characters/, FIX_EVENT], noCalls: true },
  { name: 'a null ClientRequestToken', event: (w) => ({ Step: 'createSecret', SecretId: w.secretArn, ClientRequestToken: null }), message: [/ClientRequestToken must be the version id/, FIX_EVENT], noCalls: true },
  { name: 'a ClientRequestToken of 20 emoji (40 UTF-16 units, no such version)', event: (w) => ({ Step: 'createSecret', SecretId: w.secretArn, ClientRequestToken: '🔑'.repeat(20) }), message: [/ClientRequestToken must be 32 to 64 characters|is not a version of secret/, FIX_EVENT] },
  { name: 'an empty RotationToken', event: (w, t, s) => event(w, t, s, { RotationToken: '' }), message: [/RotationToken must be 36 to 256 letters, digits or hyphens/, FIX_EVENT], noCalls: true },
  { name: 'a RotationToken with other characters', event: (w, t, s) => event(w, t, s, { RotationToken: 'rotation token with spaces 0123456789abcdef' }), message: [/RotationToken must be 36 to 256 letters, digits or hyphens/, FIX_EVENT], noCalls: true, secrets: ['rotation token with spaces 0123456789abcdef'] },
  { name: 'a RotationToken of 35 characters (one short of the service model\'s 36)', event: (w, t, s) => event(w, t, s, { RotationToken: 'r'.repeat(35) }), message: [/RotationToken must be 36 to 256 letters, digits or hyphens/, FIX_EVENT], noCalls: true, secrets: ['r'.repeat(35)] },
  { name: 'a RotationToken of 257 characters (one over the service model\'s 256)', event: (w, t, s) => event(w, t, s, { RotationToken: 'r'.repeat(257) }), message: [/RotationToken must be 36 to 256 letters, digits or hyphens/, FIX_EVENT], noCalls: true, secrets: ['r'.repeat(257)] },
  { name: 'a RotationToken with a newline after valid characters', event: (w, t, s) => event(w, t, s, { RotationToken: `${'r'.repeat(40)}\n` }), message: [/RotationToken must be 36 to 256 letters, digits or hyphens/, FIX_EVENT], noCalls: true },
  { name: 'a RotationToken with a space before valid characters', event: (w, t, s) => event(w, t, s, { RotationToken: ` ${'r'.repeat(40)}` }), message: [/RotationToken must be 36 to 256 letters, digits or hyphens/, FIX_EVENT], noCalls: true },
  { name: 'a RotationToken as a number', event: (w, t, s) => event(w, t, s, { RotationToken: 271828182845 }), message: [/RotationToken must be a string when present/, FIX_EVENT], noCalls: true },
  { name: 'a RotationToken as an array', event: (w, t, s) => event(w, t, s, { RotationToken: ['rotation-token-0123456789'] }), message: [/RotationToken must be a string when present/, FIX_EVENT], noCalls: true, secrets: ['rotation-token-0123456789'] },
  {
    // Secrets Manager's model allows 36 to 256 characters: a longer one is refused before rotate/start.
    name: 'a RotationToken of 1 MB',
    event: (w, t, s) => event(w, t, s, { RotationToken: big('r') }),
    message: [/RotationToken must be 36 to 256 letters, digits or hyphens/, FIX_EVENT],
    noCalls: true,
  },
  { name: 'an unknown SecretId in Unicode', event: (_, t) => ({ Step: 'createSecret', SecretId: 'ключ/секрет', ClientRequestToken: t }), message: [/Secret \(an id that is not a secret name or ARN, not shown\) does not exist/, /check the SecretId and the function's IAM policy/] },
  { name: 'the ARN of a secret that does not exist', event: (_, t) => ({ Step: 'createSecret', SecretId: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf', ClientRequestToken: t }), message: [/does not exist/, /check the SecretId/] },
  {
    name: 'the Stytch credentials secret as SecretId (rotation not enabled on it)',
    event: (_, t) => ({ Step: 'createSecret', SecretId: CREDENTIALS_SECRET, ClientRequestToken: t }),
    message: [/Secret stytch\/project-credentials does not have rotation enabled/, /Turn it on with aws secretsmanager rotate-secret/],
  },
  {
    name: 'a token that is a version of another secret',
    steps: STEPS,
    event: (w, _, s) => ({ Step: s, SecretId: w.secretArn, ClientRequestToken: Object.keys(w.sm.inspect(CREDENTIALS_SECRET).versions)[0] }),
    message: [/is not a version of secret demo\/stytch-client/, FIX_EVENT],
  },
  {
    name: 'a token labelled only with a custom stage',
    after: async (w) => {
      const id = randomUUID();
      await w.sm.handle('PutSecretValue', { SecretId: w.secretArn, ClientRequestToken: id, SecretString: JSON.stringify(w.client), VersionStages: ['MYLABEL'] });
      (w as { customVersion?: string }).customVersion = id;
    },
    event: (w, _, s) => event(w, (w as { customVersion?: string }).customVersion!, s),
    steps: STEPS,
    message: [/is not labelled AWSPENDING \(its labels: MYLABEL\)/, /start one with aws secretsmanager rotate-secret --secret-id demo\/stytch-client/],
  },

  // ---------------------------------------------------------------- the rotated secret (AWSCURRENT)
  { name: 'AWSCURRENT is a JSON array', before: (w) => putCurrent(w, JSON.stringify([{ ...w.client }])), steps: STEPS, message: [/The AWSCURRENT value of secret demo\/stytch-client must be a JSON object/, FIX_CURRENT] },
  { name: 'AWSCURRENT is a JSON string', before: (w) => putCurrent(w, JSON.stringify('connected-app-and-secret')), message: [/must be a JSON object/, FIX_CURRENT] },
  { name: 'AWSCURRENT is JSON null', before: (w) => putCurrent(w, 'null'), message: [/must be a JSON object/, FIX_CURRENT] },
  { name: 'AWSCURRENT is a JSON number', before: (w) => putCurrent(w, '271828182845'), message: [/must be a JSON object/, FIX_CURRENT] },
  {
    name: 'AWSCURRENT is truncated JSON holding the secret (not quoted back)',
    before: (w) => putCurrent(w, JSON.stringify(w.client).slice(0, -3)),
    steps: STEPS,
    message: [/The AWSCURRENT value of secret demo\/stytch-client is not valid JSON/, FIX_CURRENT],
  },
  { name: 'AWSCURRENT starts with a byte-order mark', before: (w) => putCurrent(w, `\uFEFF${JSON.stringify(w.client)}`), message: [/is not valid JSON/, FIX_CURRENT] },
  {
    name: 'AWSCURRENT is binary',
    before: (w) => w.sm.handle('PutSecretValue', { SecretId: w.secretArn, ClientRequestToken: randomUUID(), SecretBinary: Buffer.from(JSON.stringify(w.client)).toString('base64') }),
    message: [/has no SecretString \(binary secrets are not supported\)/, FIX_CURRENT],
  },
  { name: 'client_id as a number', before: (w) => putCurrentJson(w, { client_id: 42 }), message: [/client_id must be a string/, FIX_CURRENT] },
  { name: 'client_id empty', before: (w) => putCurrentJson(w, { client_id: '' }), message: [/client_id must not be empty/, FIX_CURRENT] },
  { name: 'client_id with Unicode', before: (w) => putCurrentJson(w, { client_id: 'connected-app-tëst' }), message: [/client_id may only contain letters, digits and - _ \. :/, FIX_CURRENT] },
  { name: 'client_id with a path (../)', before: (w) => putCurrentJson(w, { client_id: 'connected-app-../../admin' }), message: [/client_id may only contain/, FIX_CURRENT] },
  { name: 'client_id of 257 characters', before: (w) => putCurrentJson(w, { client_id: `connected-app-${big('a', 243)}` }), message: [/client_id is longer than any Stytch client id/, FIX_CURRENT] },
  { name: 'client_id as an object', before: (w) => putCurrentJson(w, { client_id: { id: w.client.client_id } }), message: [/client_id must be a string/, FIX_CURRENT] },
  { name: 'client_secret missing', before: (w) => putCurrent(w, JSON.stringify({ client_id: w.client.client_id })), message: [/client_secret must be a string/, FIX_CURRENT] },
  { name: 'client_secret as a number', before: (w) => putCurrentJson(w, { client_secret: 271828182845 }), message: [/client_secret must be a string/, FIX_CURRENT] },
  { name: 'client_secret as an array', before: (w) => putCurrentJson(w, { client_secret: [w.client.client_secret] }), message: [/client_secret must be a string/, FIX_CURRENT] },
  { name: 'client_secret of 3 characters', before: (w) => putCurrentJson(w, { client_secret: 'abc' }), message: [/client_secret must be at least 4 characters/, FIX_CURRENT] },
  { name: 'client_secret of 60 KB', before: (w) => putCurrentJson(w, { client_secret: big('s', 60_000) }), message: [/client_secret is longer than 4096 characters/, FIX_CURRENT] },
  { name: 'client_kind unknown', before: (w) => putCurrentJson(w, { client_kind: 'saml' }), message: [/client_kind must be one of connected_app, m2m; remove it to infer the kind from client_id/] },
  {
    // The binding records the kind (VII): the same id under another kind could be another client.
    name: 'client_kind m2m on a Connected App id bound as a Connected App',
    before: (w) => putCurrentJson(w, { client_kind: 'm2m' }),
    message: [/is bound to connected_app client .*, but its value makes it a m2m client \(client_kind\); nothing was changed/, /rebinds the secret with the CLI/],
  },
  { name: 'a client id of neither kind, without client_kind', before: (w) => putCurrentJson(w, { client_id: 'client-1234' }), message: [/starts with neither connected-app- nor m2m-client-/, /add "client_kind"/] },
  {
    name: 'stytch_credentials_secret_id empty',
    before: (w) => putCurrentJson(w, { stytch_credentials_secret_id: '' }),
    message: [/stytch_credentials_secret_id must not be empty; remove the field to use the default credentials/],
  },
  { name: 'stytch_credentials_secret_id as a number', before: (w) => putCurrentJson(w, { stytch_credentials_secret_id: 7 }), message: [/stytch_credentials_secret_id must be a string/, FIX_CURRENT] },
  {
    name: 'stytch_credentials_secret_id naming no secret',
    before: (w) => putCurrentJson(w, { stytch_credentials_secret_id: 'no/such/credentials' }),
    message: [/Secret no\/such\/credentials does not exist or has no current value/, /create it, or fix the id that names it/],
  },
  {
    name: 'stytch_credentials_secret_id naming the rotated secret itself (its client secret is never quoted)',
    before: (w) => putCurrentJson(w, { stytch_credentials_secret_id: 'demo/stytch-client' }),
    message: [/The Stytch credentials secret demo\/stytch-client is invalid: project_id must be a string/, FIX_CREDENTIALS],
  },

  // ---------------------------------------------------------------- the pending value
  {
    name: 'a pending value for another client_id (confused deputy)',
    after: (w, t) => putPending(w, t, JSON.stringify({ client_id: 'connected-app-test-someone-else', client_secret: 'pending-secret-of-someone-else' })),
    steps: STEPS,
    message: [/The pending version [0-9a-f-]{36} names client connected-app-test-someone-else but AWSCURRENT names connected-app-test-/, /a rotation never changes the client/, FIX_PENDING],
    secrets: ['pending-secret-of-someone-else'],
  },
  {
    name: 'a pending value that is not JSON (not quoted back)',
    after: (w, t) => putPending(w, t, 'pending-not-json-but-a-secret'),
    steps: STEPS,
    message: [/The AWSPENDING value \(version [0-9a-f-]{36}\) of secret demo\/stytch-client is not valid JSON/, FIX_PENDING],
    secrets: ['pending-not-json-but-a-secret'],
  },
  {
    name: 'a pending value without client_secret',
    after: (w, t) => putPending(w, t, JSON.stringify({ client_id: w.client.client_id })),
    steps: STEPS,
    message: [/The AWSPENDING value .* is invalid: client_secret must be a string/, FIX_PENDING],
  },
  {
    name: 'a pending value that is a JSON array',
    after: (w, t) => putPending(w, t, JSON.stringify([w.client])),
    steps: ['setSecret', 'finishSecret'],
    message: [/The AWSPENDING value .* must be a JSON object/, FIX_PENDING],
  },

  // ---------------------------------------------------------------- the Stytch credentials secret
  { name: 'credentials that are not JSON (not quoted back)', after: (w) => putCredentials(w, 'project-test-x:secret-test-not-json-value'), message: [/The Stytch credentials secret stytch\/project-credentials is not valid JSON/, FIX_CREDENTIALS], secrets: ['secret-test-not-json-value'] },
  { name: 'credentials that are a JSON array', after: (w) => putCredentials(w, [{ project_id: w.project.projectId, secret: w.project.secret }]), message: [/must be a JSON object/, FIX_CREDENTIALS] },
  { name: 'credentials that are JSON null', after: (w) => putCredentials(w, 'null'), message: [/must be a JSON object/, FIX_CREDENTIALS] },
  { name: 'credentials without project_id', after: (w) => putCredentials(w, { secret: w.project.secret }), message: [/project_id must be a string: your Stytch project id/, FIX_CREDENTIALS] },
  { name: 'credentials with project_id as a number', after: (w) => credentialsWith(w, { project_id: 1234 }), message: [/project_id must be a string/, FIX_CREDENTIALS] },
  { name: 'credentials with a project_id of the wrong shape', after: (w) => credentialsWith(w, { project_id: 'proj-1234' }), message: [/project_id must look like project-test-\.\.\. or project-live-\.\.\. \(Stytch dashboard, API keys\)/, FIX_CREDENTIALS] },
  { name: 'credentials with an empty secret', after: (w) => credentialsWith(w, { secret: '' }), message: [/secret must not be empty: put your Stytch project secret in it/, FIX_CREDENTIALS] },
  { name: 'credentials with secret as a number', after: (w) => credentialsWith(w, { secret: 271828182845 }), message: [/secret must be a string: your Stytch project secret/, FIX_CREDENTIALS] },
  {
    name: 'credentials that are binary',
    after: (w) => w.sm.handle('PutSecretValue', { SecretId: CREDENTIALS_SECRET, ClientRequestToken: randomUUID(), SecretBinary: Buffer.from('{}').toString('base64') }),
    message: [/The Stytch credentials secret stytch\/project-credentials has no SecretString/, FIX_CREDENTIALS],
  },
  {
    // The secret is bound to its client in the credentials' first project (VII): another project is refused before any Stytch call.
    name: 'credentials switched to another project',
    after: (w) => putCredentials(w, { project_id: 'project-test-00000000-0000-0000-0000-000000000000', secret: 'secret-test-unknown-project-0000' }),
    message: [/is bound to Stytch client .* of project project-test-(?!00000000)\S+, but its value names client .* of project project-test-00000000-0000-0000-0000-000000000000/, /nothing was changed/],
    secrets: ['secret-test-unknown-project-0000'],
  },
  { name: 'base_url empty', after: (w) => credentialsWith(w, { base_url: '' }), message: [/base_url must not be empty; remove it to use the default/, FIX_CREDENTIALS] },
  { name: 'base_url as a number', after: (w) => credentialsWith(w, { base_url: 443 }), message: [/base_url must be a string URL such as https:\/\/api\.stytch\.com/, FIX_CREDENTIALS] },
  { name: 'base_url as an array', after: (w) => credentialsWith(w, { base_url: ['https://api.stytch.com'] }), message: [/base_url must be a string URL/, FIX_CREDENTIALS] },
  { name: 'base_url that is not a URL', after: (w) => credentialsWith(w, { base_url: 'api dot stytch dot com' }), message: [/base_url in the Stytch credentials secret is not a valid URL; use e\.g\. https:\/\/api\.stytch\.com or remove it/] },
  { name: 'base_url javascript:', after: (w) => credentialsWith(w, { base_url: 'javascript:alert(1)' }), message: [/base_url in the Stytch credentials secret/, HTTPS_ONLY, /got javascript:/] },
  { name: 'base_url data:', after: (w) => credentialsWith(w, { base_url: 'data:text/plain,stytch' }), message: [HTTPS_ONLY, /got data:/] },
  { name: 'base_url file:', after: (w) => credentialsWith(w, { base_url: 'file:///etc/passwd' }), message: [HTTPS_ONLY, /got file:/] },
  { name: 'base_url ftp:', after: (w) => credentialsWith(w, { base_url: 'ftp://api.stytch.com' }), message: [HTTPS_ONLY, /got ftp:\/\/api\.stytch\.com/] },
  { name: 'base_url plain http, not loopback', after: (w) => credentialsWith(w, { base_url: 'http://api.stytch.com' }), message: [HTTPS_ONLY, /got http:\/\/api\.stytch\.com/] },
  { name: 'base_url plain http to the instance metadata address', after: (w) => credentialsWith(w, { base_url: 'http://169.254.169.254' }), message: [HTTPS_ONLY, /got http:\/\/169\.254\.169\.254/] },
  {
    name: 'base_url with a user name and password in it',
    after: (w) => credentialsWith(w, { base_url: 'https://user:userinfo-password-0000@api.stytch.com' }),
    message: [/base_url in the Stytch credentials secret must not contain a user name or password/, /belong in project_id and secret/],
    secrets: ['userinfo-password-0000'],
  },
  { name: 'base_url plain http to a host named like localhost', after: (w) => credentialsWith(w, { base_url: 'http://localhost.evil.example' }), message: [HTTPS_ONLY] },
  { name: 'base_url plain http to a host named like 127.0.0.1', after: (w) => credentialsWith(w, { base_url: 'http://127.0.0.1.nip.io' }), message: [HTTPS_ONLY] },
  { name: 'base_url plain http to 0.0.0.0', after: (w) => credentialsWith(w, { base_url: 'http://0.0.0.0:8080' }), message: [HTTPS_ONLY] },
  {
    name: 'base_url with a path prefix (Stytch answers 404: no state change)',
    after: (w) => credentialsWith(w, { base_url: 'https://api.stytch.com/v1' }),
    message: [/404 route_not_found/, /No route for POST \/v1\/v1\/connected_apps/],
    stytchCalls: 1,
  },

  // ---------------------------------------------------------------- the function's configuration
  ...(['abc', '0', '-1', '1.5', 'Infinity', 'NaN', '4 attempts'] as const).map(
    (value): Row => ({
      name: `STYTCH_MAX_ATTEMPTS=${value}`,
      options: { env: { STYTCH_MAX_ATTEMPTS: value } },
      message: [/Environment variable STYTCH_MAX_ATTEMPTS must be a positive integer/, /unset it to use \d+/],
      noCalls: true,
    }),
  ),
  { name: 'STYTCH_REQUEST_TIMEOUT_MS=abc', options: { env: { STYTCH_REQUEST_TIMEOUT_MS: 'abc' } }, message: [/STYTCH_REQUEST_TIMEOUT_MS must be a positive integer/, /unset it to use \d+/], noCalls: true },
  { name: 'STYTCH_REQUEST_TIMEOUT_MS=-100', options: { env: { STYTCH_REQUEST_TIMEOUT_MS: '-100' } }, message: [/STYTCH_REQUEST_TIMEOUT_MS must be a positive integer/, /unset it/], noCalls: true },
  { name: 'STYTCH_CREDENTIALS_TTL_SECONDS=-5', options: { env: { STYTCH_CREDENTIALS_TTL_SECONDS: '-5' } }, message: [/STYTCH_CREDENTIALS_TTL_SECONDS must be a positive integer/, /unset it to use \d+/], noCalls: true },
  { name: 'STYTCH_API_BASE_URL plain http, not loopback', options: { env: { STYTCH_API_BASE_URL: 'http://stytch.example.com' } }, message: [/STYTCH_API_BASE_URL/, HTTPS_ONLY] },
  { name: 'STYTCH_API_BASE_URL javascript:', options: { env: { STYTCH_API_BASE_URL: 'javascript:void(0)' } }, message: [/STYTCH_API_BASE_URL/, HTTPS_ONLY] },
  { name: 'STYTCH_API_BASE_URL not a URL', options: { env: { STYTCH_API_BASE_URL: 'stytch' } }, message: [/STYTCH_API_BASE_URL is not a valid URL; use e\.g\. https:\/\/api\.stytch\.com or remove it/] },
  {
    name: 'STYTCH_CREDENTIALS_SECRET_ID naming no secret',
    options: { env: { STYTCH_CREDENTIALS_SECRET_ID: 'no/such/credentials' } },
    message: [/Secret no\/such\/credentials does not exist or has no current value/, /create it, or fix the id/],
  },
  {
    name: 'STYTCH_CREDENTIALS_SECRET_ID of spaces',
    options: { env: { STYTCH_CREDENTIALS_SECRET_ID: '   ' } },
    message: [/does not exist or has no current value/, /create it, or fix the id/],
  },
  {
    name: 'the rotated secret scheduled for deletion',
    after: (w) => w.sm.handle('DeleteSecret', { SecretId: w.secretArn, RecoveryWindowInDays: 7 }),
    message: [/Secret demo\/stytch-client is scheduled for deletion/, /aws secretsmanager restore-secret --secret-id demo\/stytch-client/],
  },
];

const MUTATING = /^(PutSecretValue|UpdateSecretVersionStage)$|\.rotate(_start|_cancel)?$/;
let cases = 0;
afterAll(() => console.log(`bad-input table: ${ROWS.length} rows, ${cases} cases`));

describe('Bad input: every malformed event, secret and configuration is refused with a fix, changing nothing', () => {
  for (const row of ROWS) {
    for (const step of row.steps ?? (['createSecret'] as const)) {
      it(`${row.name}${row.steps ? ` (${step})` : ''}`, async () => {
        // Prepare
        const world = await new World(row.options).init();
        await row.before?.(world);
        const token = await world.beginRotation();
        await row.after?.(world, token);
        world.newContainer();
        const before = { secret: world.snapshot(), credentials: world.sm.inspect(CREDENTIALS_SECRET), stytch: world.stytchState() };
        const acceptedBefore = world.stytch.isAccepted(world.client.client_id, world.client.client_secret);
        const stytchBefore = world.stytch.requests.length;
        const callsBefore = world.externalCalls.length;
        const failedBefore = world.metricCounts().StepFailed ?? 0;

        // Act
        const ev = row.event ? row.event(world, token, step) : event(world, token, step);
        const error = await world.invokeRaw(ev).then(
          () => undefined,
          (e: unknown) => e as Error,
        );
        cases++;

        // Assess
        expect(error, 'the invocation must fail').toBeInstanceOf(Error);
        for (const pattern of row.message) expect(error!.message).toMatch(pattern);
        expect(world.snapshot()).toEqual(before.secret);
        expect(world.sm.inspect(CREDENTIALS_SECRET)).toEqual(before.credentials);
        expect(world.stytchState()).toEqual(before.stytch);
        expect(world.stytch.isAccepted(world.client.client_id, world.client.client_secret)).toBe(acceptedBefore);
        expect(world.stytch.requests.length - stytchBefore).toBe(row.stytchCalls ?? 0);
        const calls = world.externalCalls.slice(callsBefore);
        if (row.noCalls) expect(calls).toEqual([]);
        expect(calls.filter((c) => MUTATING.test(c.operation) && c.result?.ok).map((c) => c.operation)).toEqual(row.mutations ?? []);
        expect((world.metricCounts().StepFailed ?? 0) - failedBefore).toBe(1);
        expect(world.leaks(row.secrets ?? [])).toEqual([]);
      });
    }
  }
});

/** Configurations that look unusual but are allowed: the rotation works and nothing leaks. */
describe('Allowed input: loopback http, URL spellings and extra fields', () => {
  const allowed: Array<{ name: string; options?: WorldOptions; after?: (w: World) => Promise<unknown>; extraEvent?: Record<string, unknown>; secrets?: string[] }> = [
    { name: 'base_url http://localhost (loopback)', after: (w) => credentialsWith(w, { base_url: 'http://localhost:9' }) },
    { name: 'base_url http://127.0.0.2 (all of 127/8 is loopback)', after: (w) => credentialsWith(w, { base_url: 'http://127.0.0.2:9' }) },
    { name: 'base_url http://[::1] (IPv6 loopback)', after: (w) => credentialsWith(w, { base_url: 'http://[::1]:9' }) },
    { name: 'base_url in upper case with a trailing slash', after: (w) => credentialsWith(w, { base_url: 'HTTPS://API.STYTCH.COM/' }) },
    { name: 'STYTCH_API_BASE_URL=http://localhost', options: { env: { STYTCH_API_BASE_URL: 'http://localhost:9' } } },
    {
      name: 'extra fields in the rotated secret, in Unicode and nested (copied unchanged)',
      after: (w) => putCurrentJson(w, { 'ünïcödé': '鍵 🔑', nested: { list: [1, 'two', null], deep: { a: { b: { c: true } } } } }),
    },
    { name: 'unknown extra fields in the event', extraEvent: { Extra: 'field', Nested: { a: 1 } } },
  ];
  for (const row of allowed) {
    it(`${row.name}: a whole rotation succeeds`, async () => {
      const world = await new World(row.options).init();
      await row.after?.(world);
      world.newContainer();
      const before = world.versionWith('AWSCURRENT')!.value!;
      const token = await world.beginRotation();
      for (const step of STEPS) await world.invoke(step, token, row.extraEvent);
      const after = world.versionWith('AWSCURRENT')!;
      expect(after.id).toBe(token);
      expect({ ...after.value, client_secret: 'x' }).toEqual({ ...before, client_secret: 'x' });
      expect(currentAccepted(world)).toBe(true);
      expect(world.leaks(row.secrets ?? [])).toEqual([]);
      // And Secrets Manager's own driver agrees.
      expect((await world.capturing(() => rotateSecret(world))).outcome).toBe('succeeded');
    });
  }
});
