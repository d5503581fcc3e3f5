import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { CREDENTIALS_SECRET, STATE_TABLE, World } from '../helpers/world.js';

/**
 * Bad input is rejected with a message that says what is wrong and how to fix
 * it, and changes nothing: same Secrets Manager versions and stages, same
 * Stytch state, and no Stytch call where none is needed to find out.
 */

let world: World;

afterEach(() => {
  if (world) expect(world.leaks()).toEqual([]);
});

async function expectRejectedWithoutChange(
  run: () => Promise<void>,
  message: RegExp,
  opts: { stytchCalls?: number } = {},
): Promise<void> {
  const before = world.snapshot();
  const stytchBefore = world.stytchState();
  const callsBefore = world.stytch.requests.length;
  await expect(run()).rejects.toThrow(message);
  expect(world.snapshot()).toEqual(before);
  expect(world.stytchState()).toEqual(stytchBefore);
  expect(world.stytch.requests.length - callsBefore).toBe(opts.stytchCalls ?? 0);
}

async function putCurrent(value: string): Promise<void> {
  await world.sm.handle('PutSecretValue', { SecretId: world.secretArn, ClientRequestToken: randomUUID(), SecretString: value });
}

/** Replaces the credentials secret and starts a cold container, which reads it afresh. */
async function putCredentials(value: string): Promise<void> {
  await world.sm.handle('PutSecretValue', { SecretId: CREDENTIALS_SECRET, ClientRequestToken: randomUUID(), SecretString: value });
  world.newContainer();
}

describe('Bad input: the event', () => {
  it.each([
    ['a missing Step', (arn: string, t: string) => ({ SecretId: arn, ClientRequestToken: t }), /Step must be one of createSecret, setSecret, testSecret, finishSecret/],
    ['an unknown Step', (arn: string, t: string) => ({ Step: 'rotateSecret', SecretId: arn, ClientRequestToken: t }), /Step must be one of/],
    ['a missing SecretId', (_: string, t: string) => ({ Step: 'createSecret', ClientRequestToken: t }), /SecretId must be the ARN or name/],
    ['an empty SecretId', (_: string, t: string) => ({ Step: 'createSecret', SecretId: '', ClientRequestToken: t }), /SecretId must not be empty/],
    ['a short ClientRequestToken', (arn: string) => ({ Step: 'createSecret', SecretId: arn, ClientRequestToken: 'abc' }), /ClientRequestToken must be 32 to 64 characters/],
    ['a numeric ClientRequestToken', (arn: string) => ({ Step: 'createSecret', SecretId: arn, ClientRequestToken: 42 }), /ClientRequestToken must be the version id/],
    ['no event at all', () => null, /The rotation event is invalid/],
  ])('rejects %s', async (_name, build, message) => {
    world = await new World().init();
    const token = await world.beginRotation();
    await expectRejectedWithoutChange(() => world.invokeRaw(build(world.secretArn, token)), message);
  });

  it('rejects an unknown secret', async () => {
    world = await new World().init();
    await expectRejectedWithoutChange(
      () => world.invokeRaw({ Step: 'createSecret', SecretId: 'no/such/secret', ClientRequestToken: randomUUID() }),
      /Secret no\/such\/secret does not exist.*check the SecretId/,
    );
  });

  it('rejects a secret whose rotation is disabled', async () => {
    world = await new World({ rotationEnabled: false }).init();
    const token = await world.beginRotation();
    await expectRejectedWithoutChange(() => world.invoke('createSecret', token), /does not have rotation enabled.*rotate-secret/);
  });

  it('rejects a token that is not a version of the secret', async () => {
    world = await new World().init();
    await expectRejectedWithoutChange(() => world.invoke('createSecret', randomUUID()), /is not a version of secret demo\/stytch-client/);
  });

  it('rejects a token that is not labelled AWSPENDING', async () => {
    world = await new World().init();
    await world.rotateAllSteps();
    const previous = world.versionWith('AWSPREVIOUS')!.id;
    await expectRejectedWithoutChange(() => world.invoke('createSecret', previous), /is not labelled AWSPENDING \(its labels: AWSPREVIOUS\)/);
  });
});

describe('Bad input: the rotated secret', () => {
  it('rejects a current value that is not JSON, without quoting it', async () => {
    world = await new World().init();
    await putCurrent('not-json-but-maybe-a-secret-value');
    const token = await world.beginRotation();
    await expectRejectedWithoutChange(() => world.invoke('createSecret', token), /AWSCURRENT value of secret demo\/stytch-client is not valid JSON/);
    expect(world.errors.at(-1)!.message).not.toContain('not-json-but-maybe');
  });

  it('rejects a current value without client_secret', async () => {
    world = await new World().init();
    await putCurrent(JSON.stringify({ client_id: world.client.client_id }));
    const token = await world.beginRotation();
    await expectRejectedWithoutChange(() => world.invoke('createSecret', token), /client_secret must be a string/);
  });

  it('rejects a client_id that is neither a Connected App nor an M2M id unless client_kind says which', async () => {
    world = await new World().init();
    await putCurrent(JSON.stringify({ client_id: 'some-other-id', client_secret: world.client.client_secret }));
    const token = await world.beginRotation();
    await expectRejectedWithoutChange(() => world.invoke('createSecret', token), /add "client_kind"/);
  });

  it('rejects an unknown client, naming Stytch\'s error', async () => {
    world = await new World().init();
    // A secret never bound yet (its configuration test binds it: start from an empty state table).
    for (const item of await world.dynamo.scan(STATE_TABLE)) await world.dynamo.handle('DeleteItem', { TableName: STATE_TABLE, Key: { pk: item.pk } });
    await putCurrent(JSON.stringify({ client_id: 'connected-app-test-00000000-0000-0000-0000-000000000000', client_secret: 'whatever-secret-1234' }));
    const token = await world.beginRotation();
    await expectRejectedWithoutChange(() => world.invoke('createSecret', token), /idp_client_not_found/, { stytchCalls: 1 });
  });

  it('rejects a public client type', async () => {
    world = await new World({ clientType: 'first_party_public' }).init();
    const token = await world.beginRotation();
    await expectRejectedWithoutChange(() => world.invoke('createSecret', token), /invalid_idp_client_type/, { stytchCalls: 1 });
  });
});

describe('Bad input: the Stytch credentials', () => {
  it('rejects wrong Stytch credentials after re-reading them once', async () => {
    world = await new World().init();
    await putCredentials(JSON.stringify({ project_id: world.project.projectId, secret: 'secret-test-wrong-wrong-wrong' }));
    const token = await world.beginRotation();
    await expectRejectedWithoutChange(() => world.invoke('createSecret', token), /401 unauthorized_credentials/, { stytchCalls: 2 });
  });

  it('rejects a credentials secret missing fields, before calling Stytch', async () => {
    world = await new World().init();
    await putCredentials(JSON.stringify({ project_id: world.project.projectId }));
    const token = await world.beginRotation();
    await expectRejectedWithoutChange(() => world.invoke('createSecret', token), /Stytch credentials secret stytch\/project-credentials is invalid: secret must be a string/);
  });

  it('rejects a non-https base URL that is not loopback', async () => {
    world = await new World().init();
    await putCredentials(JSON.stringify({ project_id: world.project.projectId, secret: world.project.secret, base_url: 'http://stytch.example.com' }));
    const token = await world.beginRotation();
    await expectRejectedWithoutChange(() => world.invoke('createSecret', token), /must use https/);
  });

  it('rejects a function with no credentials secret configured', async () => {
    world = await new World({ env: { STYTCH_CREDENTIALS_SECRET_ID: '' } }).init();
    const token = await world.beginRotation();
    await expectRejectedWithoutChange(() => world.invoke('createSecret', token), /set STYTCH_CREDENTIALS_SECRET_ID/);
  });
});
