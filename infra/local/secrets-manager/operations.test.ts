/**
 * The emulator's operations, exercised as a client sees them: through the
 * AWS SDK v3 over HTTP.
 */
import {
  CancelRotateSecretCommand,
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  ListSecretVersionIdsCommand,
  ListSecretsCommand,
  PutSecretValueCommand,
  RestoreSecretCommand,
  type SecretsManagerClient,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Fixture, startEmulator, token } from './test-fixture.js';

let fx: Fixture;
let client: SecretsManagerClient;

beforeEach(async () => {
  fx = await startEmulator();
  client = fx.client;
});

afterEach(async () => {
  await fx.close();
});

/** The error a call fails with (name and message), or a failure if it succeeds. */
async function failure(call: Promise<unknown>): Promise<{ name: string; message: string; status?: number }> {
  try {
    await call;
  } catch (error) {
    const e = error as Error & { $metadata?: { httpStatusCode?: number } };
    return { name: e.name, message: e.message, status: e.$metadata?.httpStatusCode };
  }
  throw new Error('expected the call to fail');
}

const create = (name: string, value = 'v1', tok = token(1)) =>
  client.send(new CreateSecretCommand({ Name: name, SecretString: value, ClientRequestToken: tok }));

const stagesOf = async (secretId: string) => (await client.send(new DescribeSecretCommand({ SecretId: secretId }))).VersionIdsToStages;

describe('Class: SecretsManagerEmulator (over the AWS SDK v3)', () => {
  describe('Operation: CreateSecret', () => {
    it('creates the first version under the ClientRequestToken with AWSCURRENT and an ARN with a 6-character suffix', async () => {
      // Act
      const out = await create('app/client', '{"client_id":"c"}');

      // Assess
      expect(out.Name).toBe('app/client');
      expect(out.VersionId).toBe(token(1));
      expect(out.ARN).toMatch(/^arn:aws:secretsmanager:us-east-1:123456789012:secret:app\/client-[A-Za-z0-9]{6}$/);
      expect(await stagesOf('app/client')).toEqual({ [token(1)]: ['AWSCURRENT'] });
    });

    it('uses the configured region and account in ARNs', async () => {
      // Prepare
      const other = await startEmulator({ region: 'eu-west-1', accountId: '999999999999' });

      // Act
      const out = await other.client.send(new CreateSecretCommand({ Name: 'x', SecretString: 'v', ClientRequestToken: token(1) }));
      await other.close();

      // Assess
      expect(out.ARN).toMatch(/^arn:aws:secretsmanager:eu-west-1:999999999999:secret:x-/);
    });

    it('stores the description and tags', async () => {
      await client.send(new CreateSecretCommand({ Name: 'tagged', SecretString: 'v', ClientRequestToken: token(1), Description: 'd', Tags: [{ Key: 'team', Value: 'id' }] }));

      const described = await client.send(new DescribeSecretCommand({ SecretId: 'tagged' }));

      expect(described).toMatchObject({ Description: 'd', Tags: [{ Key: 'team', Value: 'id' }] });
    });

    it('succeeds without change when retried with the same token and value', async () => {
      const first = await create('retried');

      const again = await create('retried');

      expect(again).toMatchObject({ ARN: first.ARN, VersionId: token(1) });
      expect(await stagesOf('retried')).toEqual({ [token(1)]: ['AWSCURRENT'] });
    });

    it('fails with ResourceExistsException for an existing name', async () => {
      await create('taken');

      expect(await failure(create('taken', 'v1', token(2)))).toMatchObject({ name: 'ResourceExistsException' });
      expect(await failure(create('taken', 'other', token(1)))).toMatchObject({ name: 'ResourceExistsException' });
    });

    it('fails with InvalidParameterException for an invalid name or both a string and a binary value', async () => {
      expect(await failure(create('bad name'))).toMatchObject({ name: 'InvalidParameterException' });
      expect(
        await failure(client.send(new CreateSecretCommand({ Name: 'both', SecretString: 'v', SecretBinary: new Uint8Array([1]), ClientRequestToken: token(1) }))),
      ).toMatchObject({ name: 'InvalidParameterException' });
    });

    it('creates a secret without a version when no value is given; the first put then becomes AWSCURRENT', async () => {
      // Prepare
      const created = await client.send(new CreateSecretCommand({ Name: 'empty' }));
      expect(created.VersionId).toBeUndefined();
      expect(await failure(client.send(new GetSecretValueCommand({ SecretId: 'empty' })))).toMatchObject({ name: 'ResourceNotFoundException' });

      // Act: even when asked only for AWSPENDING, the first value is current.
      const put = await client.send(new PutSecretValueCommand({ SecretId: 'empty', ClientRequestToken: token(2), SecretString: 'v', VersionStages: ['AWSPENDING'] }));

      // Assess
      expect(put.VersionStages).toEqual(['AWSPENDING', 'AWSCURRENT']);
    });

    it('rejects a ClientRequestToken outside 32-64 characters with ValidationException', async () => {
      expect(await failure(create('short', 'v', 'x'.repeat(31)))).toMatchObject({ name: 'ValidationException' });
      expect(await failure(create('long', 'v', 'x'.repeat(65)))).toMatchObject({ name: 'ValidationException' });
    });
  });

  describe('Operation: DescribeSecret', () => {
    it('finds a secret by name, full ARN or partial ARN and reports dates as timestamps', async () => {
      const { ARN } = await create('lookup');

      const byName = await client.send(new DescribeSecretCommand({ SecretId: 'lookup' }));
      const byArn = await client.send(new DescribeSecretCommand({ SecretId: ARN }));
      const byPartialArn = await client.send(new DescribeSecretCommand({ SecretId: ARN!.slice(0, -7) }));

      expect(byArn.ARN).toBe(ARN);
      expect(byPartialArn.ARN).toBe(ARN);
      expect(byName.CreatedDate).toBeInstanceOf(Date);
      expect(byName.LastChangedDate).toBeInstanceOf(Date);
    });

    it('omits every rotation field until rotation is configured', async () => {
      await create('never-rotated');

      const described = await client.send(new DescribeSecretCommand({ SecretId: 'never-rotated' }));

      for (const field of ['RotationEnabled', 'RotationLambdaARN', 'RotationRules', 'LastRotatedDate', 'NextRotationDate']) {
        expect(described).not.toHaveProperty(field);
      }
    });

    it("fails with ResourceNotFoundException \"Secrets Manager can't find the specified secret.\" for an unknown secret", async () => {
      expect(await failure(client.send(new DescribeSecretCommand({ SecretId: 'nope' })))).toEqual({
        name: 'ResourceNotFoundException',
        message: "Secrets Manager can't find the specified secret.",
        status: 400,
      });
    });
  });

  describe('Operation: GetSecretValue', () => {
    beforeEach(async () => {
      await create('read', 'v1', token(1));
      await client.send(new PutSecretValueCommand({ SecretId: 'read', ClientRequestToken: token(2), SecretString: 'v2', VersionStages: ['AWSPENDING'] }));
    });

    it('returns AWSCURRENT by default with the version id, labels and creation date', async () => {
      const out = await client.send(new GetSecretValueCommand({ SecretId: 'read' }));

      expect(out).toMatchObject({ Name: 'read', VersionId: token(1), SecretString: 'v1', VersionStages: ['AWSCURRENT'] });
      expect(out.CreatedDate).toBeInstanceOf(Date);
    });

    it('returns a version by stage, by id, or by both when they agree', async () => {
      expect((await client.send(new GetSecretValueCommand({ SecretId: 'read', VersionStage: 'AWSPENDING' }))).SecretString).toBe('v2');
      expect((await client.send(new GetSecretValueCommand({ SecretId: 'read', VersionId: token(2) }))).SecretString).toBe('v2');
      expect((await client.send(new GetSecretValueCommand({ SecretId: 'read', VersionId: token(2), VersionStage: 'AWSPENDING' }))).SecretString).toBe('v2');
    });

    it('fails with InvalidRequestException when VersionId and VersionStage name different versions', async () => {
      expect(await failure(client.send(new GetSecretValueCommand({ SecretId: 'read', VersionId: token(1), VersionStage: 'AWSPENDING' })))).toMatchObject({
        name: 'InvalidRequestException',
      });
    });

    it('fails with ResourceNotFoundException naming the missing staging label or VersionId', async () => {
      expect(await failure(client.send(new GetSecretValueCommand({ SecretId: 'read', VersionStage: 'AWSPREVIOUS' })))).toMatchObject({
        name: 'ResourceNotFoundException',
        message: "Secrets Manager can't find the specified secret value for staging label: AWSPREVIOUS",
      });
      expect(await failure(client.send(new GetSecretValueCommand({ SecretId: 'read', VersionId: token(9) })))).toMatchObject({
        name: 'ResourceNotFoundException',
        message: `Secrets Manager can't find the specified secret value for VersionId: ${token(9)}`,
      });
      expect(await failure(client.send(new GetSecretValueCommand({ SecretId: 'nope' })))).toMatchObject({
        message: "Secrets Manager can't find the specified secret.",
      });
    });

    it('round-trips a binary secret', async () => {
      await client.send(new CreateSecretCommand({ Name: 'binary', SecretBinary: new Uint8Array([0, 1, 254, 255]), ClientRequestToken: token(1) }));

      const out = await client.send(new GetSecretValueCommand({ SecretId: 'binary' }));

      expect([...(out.SecretBinary ?? [])]).toEqual([0, 1, 254, 255]);
      expect(out.SecretString).toBeUndefined();
    });
  });

  describe('Operation: PutSecretValue', () => {
    beforeEach(async () => {
      await create('put', 'v1', token(1));
    });

    it('moves AWSCURRENT to the new version by default, and AWSPREVIOUS to the old current', async () => {
      const out = await client.send(new PutSecretValueCommand({ SecretId: 'put', ClientRequestToken: token(2), SecretString: 'v2' }));
      await client.send(new PutSecretValueCommand({ SecretId: 'put', ClientRequestToken: token(3), SecretString: 'v3' }));

      expect(out).toMatchObject({ VersionId: token(2), VersionStages: ['AWSCURRENT'] });
      // token(1) lost its only label: deprecated, so no longer listed.
      expect(await stagesOf('put')).toEqual({ [token(2)]: ['AWSPREVIOUS'], [token(3)]: ['AWSCURRENT'] });
    });

    it('attaches only the requested labels (AWSPENDING leaves AWSCURRENT where it is) and accepts a RotationToken', async () => {
      const out = await client.send(
        new PutSecretValueCommand({ SecretId: 'put', ClientRequestToken: token(2), SecretString: 'v2', VersionStages: ['AWSPENDING'], RotationToken: token(77) }),
      );

      expect(out.VersionStages).toEqual(['AWSPENDING']);
      expect(await stagesOf('put')).toEqual({ [token(1)]: ['AWSCURRENT'], [token(2)]: ['AWSPENDING'] });
    });

    it('succeeds without change when repeated with the same token and value', async () => {
      const input = { SecretId: 'put', ClientRequestToken: token(2), SecretString: 'v2', VersionStages: ['AWSPENDING'] };
      await client.send(new PutSecretValueCommand(input));

      const again = await client.send(new PutSecretValueCommand(input));

      expect(again).toMatchObject({ VersionId: token(2), VersionStages: ['AWSPENDING'] });
      expect(await stagesOf('put')).toEqual({ [token(1)]: ['AWSCURRENT'], [token(2)]: ['AWSPENDING'] });
    });

    it('fails with ResourceExistsException for the same token with other data, without revealing either value', async () => {
      await client.send(new PutSecretValueCommand({ SecretId: 'put', ClientRequestToken: token(2), SecretString: 'value-one', VersionStages: ['AWSPENDING'] }));

      const error = await failure(
        client.send(new PutSecretValueCommand({ SecretId: 'put', ClientRequestToken: token(2), SecretString: 'value-two', VersionStages: ['AWSPENDING'] })),
      );

      expect(error.name).toBe('ResourceExistsException');
      expect(error.message).not.toMatch(/value-one|value-two/);
      expect((await client.send(new GetSecretValueCommand({ SecretId: 'put', VersionId: token(2) }))).SecretString).toBe('value-one');
    });

    it('fails with InvalidParameterException without a value, and ResourceNotFoundException for an unknown secret', async () => {
      expect(await failure(client.send(new PutSecretValueCommand({ SecretId: 'put', ClientRequestToken: token(2) })))).toMatchObject({
        name: 'InvalidParameterException',
      });
      expect(await failure(client.send(new PutSecretValueCommand({ SecretId: 'nope', ClientRequestToken: token(2), SecretString: 'v' })))).toMatchObject({
        name: 'ResourceNotFoundException',
      });
    });
  });

  describe('Operation: UpdateSecretVersionStage', () => {
    beforeEach(async () => {
      await create('stages', 'v1', token(1));
      await client.send(new PutSecretValueCommand({ SecretId: 'stages', ClientRequestToken: token(2), SecretString: 'v2', VersionStages: ['AWSPENDING'] }));
    });

    const move = (input: { VersionStage: string; MoveToVersionId?: string; RemoveFromVersionId?: string }) =>
      client.send(new UpdateSecretVersionStageCommand({ SecretId: 'stages', ...input }));

    it('moves AWSCURRENT with the right RemoveFromVersionId; the old current becomes AWSPREVIOUS', async () => {
      await move({ VersionStage: 'AWSCURRENT', MoveToVersionId: token(2), RemoveFromVersionId: token(1) });

      expect(await stagesOf('stages')).toEqual({ [token(1)]: ['AWSPREVIOUS'], [token(2)]: ['AWSPENDING', 'AWSCURRENT'] });
      expect((await client.send(new GetSecretValueCommand({ SecretId: 'stages' }))).SecretString).toBe('v2');
    });

    it('fails with InvalidParameterException when a label held elsewhere is moved without RemoveFromVersionId', async () => {
      expect(await failure(move({ VersionStage: 'AWSCURRENT', MoveToVersionId: token(2) }))).toMatchObject({
        name: 'InvalidParameterException',
        message: expect.stringContaining(`Staging label AWSCURRENT is currently attached to version ${token(1)}`),
      });
      expect(await failure(move({ VersionStage: 'AWSPENDING', MoveToVersionId: token(1) }))).toMatchObject({ name: 'InvalidParameterException' });
      expect(await stagesOf('stages')).toEqual({ [token(1)]: ['AWSCURRENT'], [token(2)]: ['AWSPENDING'] });
    });

    it('fails with InvalidParameterException for a RemoveFromVersionId that does not hold the label, or an unknown version', async () => {
      expect(await failure(move({ VersionStage: 'AWSCURRENT', MoveToVersionId: token(2), RemoveFromVersionId: token(2) }))).toMatchObject({
        name: 'InvalidParameterException',
      });
      expect(await failure(move({ VersionStage: 'AWSCURRENT', MoveToVersionId: token(9), RemoveFromVersionId: token(1) }))).toMatchObject({
        name: 'InvalidParameterException',
      });
    });

    it('refuses a repeated move with a stale RemoveFromVersionId by default, and accepts it with staleRemoveFromVersionId "ignore"', async () => {
      // Prepare
      const lenient = await startEmulator({ staleRemoveFromVersionId: 'ignore' });
      for (const c of [client, lenient.client]) {
        if (c !== client) {
          await c.send(new CreateSecretCommand({ Name: 'stages', SecretString: 'v1', ClientRequestToken: token(1) }));
          await c.send(new PutSecretValueCommand({ SecretId: 'stages', ClientRequestToken: token(2), SecretString: 'v2', VersionStages: ['AWSPENDING'] }));
        }
        await c.send(new UpdateSecretVersionStageCommand({ SecretId: 'stages', VersionStage: 'AWSCURRENT', MoveToVersionId: token(2), RemoveFromVersionId: token(1) }));
      }
      const retry = { SecretId: 'stages', VersionStage: 'AWSCURRENT', MoveToVersionId: token(2), RemoveFromVersionId: token(1) };

      // Act / Assess
      expect(await failure(client.send(new UpdateSecretVersionStageCommand(retry)))).toMatchObject({ name: 'InvalidParameterException' });
      await expect(lenient.client.send(new UpdateSecretVersionStageCommand(retry))).resolves.toBeDefined();
      await lenient.close();
    });

    it('accepts moving a label onto the version that already holds it', async () => {
      await move({ VersionStage: 'AWSCURRENT', MoveToVersionId: token(1) });

      expect(await stagesOf('stages')).toEqual({ [token(1)]: ['AWSCURRENT'], [token(2)]: ['AWSPENDING'] });
    });

    it('removes AWSPENDING (the documented way to unblock rotation) but refuses to remove AWSCURRENT without moving it', async () => {
      await move({ VersionStage: 'AWSPENDING', RemoveFromVersionId: token(2) });

      expect(await stagesOf('stages')).toEqual({ [token(1)]: ['AWSCURRENT'] });
      expect(await failure(move({ VersionStage: 'AWSCURRENT', RemoveFromVersionId: token(1) }))).toMatchObject({ name: 'InvalidParameterException' });
    });

    it('moves a custom label between versions', async () => {
      await move({ VersionStage: 'blue', MoveToVersionId: token(1) });
      await move({ VersionStage: 'blue', MoveToVersionId: token(2), RemoveFromVersionId: token(1) });

      expect(await stagesOf('stages')).toEqual({ [token(1)]: ['AWSCURRENT'], [token(2)]: ['AWSPENDING', 'blue'] });
    });
  });

  describe('Operation: ListSecretVersionIds', () => {
    it('lists labelled versions in creation order; deprecated ones only with IncludeDeprecated; pages with MaxResults', async () => {
      // Prepare: token(1) ends without labels after two puts.
      await create('versions', 'v1', token(1));
      await client.send(new PutSecretValueCommand({ SecretId: 'versions', ClientRequestToken: token(2), SecretString: 'v2' }));
      await client.send(new PutSecretValueCommand({ SecretId: 'versions', ClientRequestToken: token(3), SecretString: 'v3' }));

      // Act
      const listed = await client.send(new ListSecretVersionIdsCommand({ SecretId: 'versions' }));
      const all = await client.send(new ListSecretVersionIdsCommand({ SecretId: 'versions', IncludeDeprecated: true }));
      const page1 = await client.send(new ListSecretVersionIdsCommand({ SecretId: 'versions', IncludeDeprecated: true, MaxResults: 2 }));
      const page2 = await client.send(new ListSecretVersionIdsCommand({ SecretId: 'versions', IncludeDeprecated: true, MaxResults: 2, NextToken: page1.NextToken }));

      // Assess
      expect(listed.Versions?.map((v) => [v.VersionId, v.VersionStages])).toEqual([
        [token(2), ['AWSPREVIOUS']],
        [token(3), ['AWSCURRENT']],
      ]);
      expect(all.Versions?.map((v) => v.VersionId)).toEqual([token(1), token(2), token(3)]);
      expect(page1.Versions?.map((v) => v.VersionId)).toEqual([token(1), token(2)]);
      expect(page2.Versions?.map((v) => v.VersionId)).toEqual([token(3)]);
      expect(page2.NextToken).toBeUndefined();
    });
  });

  describe('Operation: ListSecrets', () => {
    it('lists secrets with their labels, filters by name prefix and leaves out secrets scheduled for deletion', async () => {
      await create('team-a/one');
      await create('team-a/two');
      await create('team-b/one');
      await client.send(new DeleteSecretCommand({ SecretId: 'team-a/two' }));

      const all = await client.send(new ListSecretsCommand({}));
      const teamA = await client.send(new ListSecretsCommand({ Filters: [{ Key: 'name', Values: ['team-a/'] }] }));
      const withDeleted = await client.send(new ListSecretsCommand({ IncludePlannedDeletion: true }));

      expect(all.SecretList?.map((s) => s.Name).sort()).toEqual(['team-a/one', 'team-b/one']);
      expect(all.SecretList?.[0]?.SecretVersionsToStages).toEqual({ [token(1)]: ['AWSCURRENT'] });
      expect(teamA.SecretList?.map((s) => s.Name)).toEqual(['team-a/one']);
      expect(withDeleted.SecretList).toHaveLength(3);
    });
  });

  describe('Operation: DeleteSecret and RestoreSecret', () => {
    it('schedules deletion: the secret is described with DeletedDate but its value is refused until restored', async () => {
      await create('doomed');

      const deleted = await client.send(new DeleteSecretCommand({ SecretId: 'doomed', RecoveryWindowInDays: 7 }));
      const described = await client.send(new DescribeSecretCommand({ SecretId: 'doomed' }));
      const refused = await failure(client.send(new GetSecretValueCommand({ SecretId: 'doomed' })));
      const recreate = await failure(create('doomed', 'v', token(2)));
      await client.send(new RestoreSecretCommand({ SecretId: 'doomed' }));

      expect(deleted.DeletionDate!.getTime() - described.DeletedDate!.getTime()).toBe(0);
      expect(refused.name).toBe('InvalidRequestException');
      expect(recreate.name).toBe('InvalidRequestException');
      expect((await client.send(new GetSecretValueCommand({ SecretId: 'doomed' }))).SecretString).toBe('v1');
    });

    it('deletes at once with ForceDeleteWithoutRecovery, also for a secret that does not exist', async () => {
      await create('gone');

      await client.send(new DeleteSecretCommand({ SecretId: 'gone', ForceDeleteWithoutRecovery: true }));
      await client.send(new DeleteSecretCommand({ SecretId: 'never-was', ForceDeleteWithoutRecovery: true }));

      expect(await failure(client.send(new DescribeSecretCommand({ SecretId: 'gone' })))).toMatchObject({ name: 'ResourceNotFoundException' });
      await expect(create('gone', 'again', token(5))).resolves.toMatchObject({ Name: 'gone' });
    });

    it('fails with InvalidParameterException for a recovery window outside 7-30 days or combined with ForceDeleteWithoutRecovery', async () => {
      await create('params');

      expect(await failure(client.send(new DeleteSecretCommand({ SecretId: 'params', RecoveryWindowInDays: 6 })))).toMatchObject({ name: 'InvalidParameterException' });
      expect(
        await failure(client.send(new DeleteSecretCommand({ SecretId: 'params', RecoveryWindowInDays: 7, ForceDeleteWithoutRecovery: true }))),
      ).toMatchObject({ name: 'InvalidParameterException' });
    });
  });

  describe('Operation: TagResource and UntagResource', () => {
    it('adds, replaces and removes tags', async () => {
      await create('tags');

      await client.send(new TagResourceCommand({ SecretId: 'tags', Tags: [{ Key: 'a', Value: '1' }, { Key: 'b', Value: '2' }] }));
      await client.send(new TagResourceCommand({ SecretId: 'tags', Tags: [{ Key: 'a', Value: '3' }] }));
      await client.send(new UntagResourceCommand({ SecretId: 'tags', TagKeys: ['b'] }));

      expect((await client.send(new DescribeSecretCommand({ SecretId: 'tags' }))).Tags).toEqual([{ Key: 'a', Value: '3' }]);
    });
  });

  describe('Operation: CancelRotateSecret', () => {
    it('fails with InvalidRequestException for a secret never configured for rotation', async () => {
      await create('no-rotation');

      expect(await failure(client.send(new CancelRotateSecretCommand({ SecretId: 'no-rotation' })))).toMatchObject({ name: 'InvalidRequestException' });
    });
  });
});
