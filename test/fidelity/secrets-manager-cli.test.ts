/**
 * The real `aws` CLI against the emulator: its botocore client must accept
 * every answer (JSON shape, timestamps, error format) and print what a user
 * expects. Runs with dummy credentials and no AWS configuration files.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RotationEvent, SecretsManagerEmulator } from '../../infra/local/secrets-manager/index.js';
import { secretsManagerCli } from '../helpers/aws-cli.js';
import { findAwsCli, toolGate } from '../helpers/moto.js';

const awsPath = await findAwsCli();
const gate = toolGate('aws CLI', awsPath);

const LAMBDA_ARN = 'arn:aws:lambda:us-east-1:123456789012:function:cli-rotation';

describe.skipIf(gate.skip)(gate.title('Fidelity: the aws CLI against the Secrets Manager emulator'), () => {
  const emulator = new SecretsManagerEmulator();
  const events: RotationEvent[] = [];
  let server: Awaited<ReturnType<SecretsManagerEmulator['listen']>> | undefined;
  let cli: string;

  const { aws, awsJson } = secretsManagerCli(() => cli, () => server!.url);

  beforeAll(async () => {
    cli = gate.assert();
    server = await emulator.listen();
    // A minimal rotation function working in-process: the value it puts is derived from the token.
    emulator.registerInvoker(LAMBDA_ARN, async (event) => {
      events.push(event);
      if (event.Step === 'createSecret') {
        await emulator.handle('PutSecretValue', {
          SecretId: event.SecretId,
          ClientRequestToken: event.ClientRequestToken,
          SecretString: `rotated-${event.ClientRequestToken}`,
          VersionStages: ['AWSPENDING'],
        });
      }
      if (event.Step === 'finishSecret') {
        const current = Object.entries(emulator.inspect(event.SecretId).versions).find(([, v]) => v.stages.includes('AWSCURRENT'))![0];
        await emulator.handle('UpdateSecretVersionStage', {
          SecretId: event.SecretId,
          VersionStage: 'AWSCURRENT',
          MoveToVersionId: event.ClientRequestToken,
          RemoveFromVersionId: current,
        });
      }
    });
  }, 60_000);

  afterAll(async () => {
    await server?.close();
  });

  it('creates, reads, versions and relabels a secret, printing the fields a user expects', async () => {
    // Prepare / Act: create-secret (the CLI generates the ClientRequestToken)
    const created = await awsJson('create-secret', '--name', 'cli-lifecycle', '--secret-string', '{"client_id":"c1","client_secret":"s1"}');
    expect(created).toEqual({ ARN: expect.stringMatching(/^arn:aws:secretsmanager:us-east-1:123456789012:secret:cli-lifecycle-[A-Za-z0-9]{6}$/), Name: 'cli-lifecycle', VersionId: expect.any(String) });
    const v1 = created.VersionId as string;

    const read = await awsJson('get-secret-value', '--secret-id', 'cli-lifecycle');
    expect(read).toMatchObject({ Name: 'cli-lifecycle', VersionId: v1, SecretString: '{"client_id":"c1","client_secret":"s1"}', VersionStages: ['AWSCURRENT'] });
    expect(typeof read.CreatedDate).toBe('number');

    const v2 = '11111111-2222-4333-8444-555555555555';
    const put = await awsJson(
      'put-secret-value',
      '--secret-id', created.ARN as string,
      '--client-request-token', v2,
      '--secret-string', '{"client_id":"c1","client_secret":"s2"}',
      '--version-stages', 'AWSPENDING',
    );
    expect(put).toEqual({ ARN: created.ARN, Name: 'cli-lifecycle', VersionId: v2, VersionStages: ['AWSPENDING'] });

    const moved = await awsJson(
      'update-secret-version-stage',
      '--secret-id', 'cli-lifecycle',
      '--version-stage', 'AWSCURRENT',
      '--move-to-version-id', v2,
      '--remove-from-version-id', v1,
    );
    expect(moved).toEqual({ ARN: created.ARN, Name: 'cli-lifecycle' });

    // Assess
    const described = await awsJson('describe-secret', '--secret-id', 'cli-lifecycle');
    expect(described).toMatchObject({ ARN: created.ARN, Name: 'cli-lifecycle', VersionIdsToStages: { [v1]: ['AWSPREVIOUS'], [v2]: ['AWSPENDING', 'AWSCURRENT'] } });
    expect(typeof described.CreatedDate).toBe('number');
    expect(described).not.toHaveProperty('RotationEnabled');

    const listed = await awsJson('list-secret-version-ids', '--secret-id', 'cli-lifecycle');
    expect(listed).toMatchObject({ ARN: created.ARN, Name: 'cli-lifecycle' });
    expect((listed.Versions as Array<{ VersionId: string; VersionStages: string[] }>).map((v) => [v.VersionId, v.VersionStages])).toEqual([
      [v1, ['AWSPREVIOUS']],
      [v2, ['AWSPENDING', 'AWSCURRENT']],
    ]);
  }, 120_000);

  it('rotates a secret with rotate-secret: the registered function runs the four steps in order', async () => {
    // Prepare
    await emulator.handle('CreateSecret', { Name: 'cli-rotation', SecretString: 'v1', ClientRequestToken: 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee' });
    events.length = 0;

    // Act
    const rotated = await awsJson('rotate-secret', '--secret-id', 'cli-rotation', '--rotation-lambda-arn', LAMBDA_ARN, '--rotation-rules', '{"ScheduleExpression":"rate(30 days)"}');

    // Assess
    expect(rotated).toMatchObject({ Name: 'cli-rotation', VersionId: expect.any(String) });
    const token = rotated.VersionId as string;
    expect(events.map((e) => e.Step)).toEqual(['createSecret', 'setSecret', 'testSecret', 'finishSecret']);
    expect(events.every((e) => e.ClientRequestToken === token && e.SecretId === rotated.ARN)).toBe(true);

    const described = await awsJson('describe-secret', '--secret-id', 'cli-rotation');
    expect(described).toMatchObject({
      RotationEnabled: true,
      RotationLambdaARN: LAMBDA_ARN,
      RotationRules: { ScheduleExpression: 'rate(30 days)' },
      VersionIdsToStages: { [token]: ['AWSCURRENT'], 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee': ['AWSPREVIOUS'] },
    });
    expect(typeof described.LastRotatedDate).toBe('number');
    expect(typeof described.NextRotationDate).toBe('number');
    const current = await awsJson('get-secret-value', '--secret-id', 'cli-rotation');
    expect(current.SecretString).toBe(`rotated-${token}`);
  }, 120_000);

  it('reports a service error with its exception name and exit status 255', async () => {
    // Prepare
    await emulator.handle('CreateSecret', { Name: 'cli-errors', SecretString: 'v1', ClientRequestToken: 'bbbbbbbb-bbbb-4ccc-8ddd-eeeeeeeeeeee' });

    // Act
    const [missing, noPending] = await Promise.all([
      aws('get-secret-value', '--secret-id', 'cli-no-such-secret'),
      aws('get-secret-value', '--secret-id', 'cli-errors', '--version-stage', 'AWSPENDING'),
    ]);

    // Assess
    expect(missing.code).toBe(255);
    expect(missing.stderr).toContain("An error occurred (ResourceNotFoundException) when calling the GetSecretValue operation: Secrets Manager can't find the specified secret.");
    expect(noPending.code).toBe(255);
    expect(noPending.stderr).toContain('(ResourceNotFoundException)');
    expect(noPending.stderr).toContain('staging label: AWSPENDING');
  }, 120_000);
});
