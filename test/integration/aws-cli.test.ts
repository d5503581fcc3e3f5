/**
 * The walkthrough a person follows: the real `aws` CLI (botocore, not our
 * SDK) against the local stack on loopback, rotating with the built function.
 * Skips with a visible reason when the CLI is missing; fails when CI is set.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { createSdkClient } from '../../infra/local/secrets-manager/index.js';
import { LOCAL_LAMBDA_ARN, LocalStack } from '../../infra/local/stack.js';
import { cliEnv, run, secretsManagerCli } from '../helpers/aws-cli.js';
import { findAwsCli, locateTool, toolGate } from '../helpers/moto.js';
import { builtBundle, expectNoLeaks, secretLikeRuns, startChild, stopChild, type Child } from './support.js';

const awsPath = await findAwsCli();
const gate = toolGate('aws CLI', awsPath);

describe.skipIf(gate.skip)(gate.title('Local stack: rotation with the real aws CLI'), () => {
  let cli: string;
  let bundle: Awaited<ReturnType<typeof builtBundle>>;
  let stack: LocalStack;

  const { aws, awsJson } = secretsManagerCli(() => cli, () => stack.secretsManagerUrl);

  beforeAll(async () => {
    cli = gate.assert();
    bundle = await builtBundle();
    stack = await LocalStack.start({ bundlePath: bundle.path, env: { STYTCH_MAX_ATTEMPTS: '2' } });
  });

  afterAll(async () => {
    await stack?.close();
    bundle?.dispose();
  });

  it('aws secretsmanager rotate-secret rotates the demo secret; get-secret-value then shows a new AWSCURRENT that Stytch accepts', async () => {
    // Prepare (in-process: only the walkthrough's own commands go through the CLI, which costs about a second each)
    const seeded = await stack.seedSecret();
    const before = stack.sm.inspect(seeded.name).versions;
    const [oldVersionId, oldVersion] = Object.entries(before)[0]!;
    const oldSecret = (JSON.parse(oldVersion.secretString!) as { client_secret: string }).client_secret;

    // Act
    const rotated = await awsJson('rotate-secret', '--secret-id', seeded.name, '--rotation-lambda-arn', LOCAL_LAMBDA_ARN);
    const after = await awsJson('get-secret-value', '--secret-id', seeded.name);

    // Assess
    expect(rotated).toMatchObject({ ARN: seeded.arn, Name: seeded.name, VersionId: expect.any(String) });
    expect(after).toMatchObject({ VersionId: rotated.VersionId, VersionStages: ['AWSCURRENT'] });
    const newSecret = (JSON.parse(after.SecretString as string) as { client_secret: string }).client_secret;
    expect(newSecret).not.toBe(oldSecret);
    expect(stack.stytch.isAccepted(seeded.clientId, newSecret)).toBe(true);
    expect(stack.stytch.isAccepted(seeded.clientId, oldSecret)).toBe(false);
    expect(stack.stytch.clientState(seeded.clientId).nextClientSecretLast4).toBeNull();
    const described = (await stack.sm.handle('DescribeSecret', { SecretId: seeded.name })) as Record<string, unknown>;
    expect(described).toMatchObject({
      RotationEnabled: true,
      RotationLambdaARN: LOCAL_LAMBDA_ARN,
      VersionIdsToStages: { [rotated.VersionId as string]: ['AWSCURRENT'], [oldVersionId]: ['AWSPREVIOUS'] },
      LastRotatedDate: expect.any(Number),
    });
    expect(stack.sm.inspect(seeded.name).versions[oldVersionId]!.secretString).toBe(oldVersion.secretString);
    await expectNoLeaks(stack);
  }, 120_000);

  it("a second rotate-secret while a rotation is unfinished exits 255 with \"A previous rotation isn't complete\"", async () => {
    // Prepare: Stytch refuses to start, so every attempt of a first rotation fails and leaves AWSPENDING.
    const seeded = await stack.seedSecret({ name: 'cli/unfinished' });
    const before = Object.values(stack.sm.inspect(seeded.name).versions)[0]!.secretString!;
    stack.stytch.addFault({ operation: 'connected_app.rotate_start', mode: 'before', status: 503, times: Infinity });
    try {
      await stack.rotate(seeded.name);
      expect(stack.sm.rotationHistory(seeded.name).at(-1)!.outcome).toBe('failed');

      // Act
      const second = await aws('rotate-secret', '--secret-id', seeded.name);

      // Assess
      expect(second.code).toBe(255);
      expect(second.stderr).toContain('An error occurred (InvalidRequestException) when calling the RotateSecret operation');
      expect(second.stderr).toContain("A previous rotation isn't complete");
      const current = ((await stack.sm.handle('GetSecretValue', { SecretId: seeded.name })) as { SecretString: string }).SecretString;
      expect(current).toBe(before);
      expect(stack.stytch.isAccepted(seeded.clientId, (JSON.parse(current) as { client_secret: string }).client_secret)).toBe(true);
    } finally {
      stack.stytch.clearFaults();
    }
    await expectNoLeaks(stack);
  }, 120_000);

  describe('the npm run serve walkthrough', () => {
    let child: Child | undefined;
    afterAll(() => stopChild(child));

    it('the printed commands rotate the served demo secret, the served Stytch agrees, and SIGTERM stops it cleanly', async () => {
      // Prepare: serve on free ports; the walkthrough prints the real ones.
      child = startChild(process.execPath, ['--import', 'tsx', 'infra/local/demo.ts', '--serve', '--sm-port', '0', '--stytch-port', '0', '--bundle', bundle.path]);
      await child.waitFor(/Rotations, one line per step:/, 30_000);
      const printed = child.stdout().split('\n').map((line) => line.trim());
      const exportLine = printed.find((l) => l.startsWith('export AWS_ACCESS_KEY_ID='))!;
      const rotateLine = printed.find((l) => l.startsWith('aws ') && l.includes('rotate-secret --secret-id demo/stytch-client'))!;
      const getLine = printed.find((l) => l.startsWith('aws ') && l.endsWith('get-secret-value --secret-id demo/stytch-client'));
      const credsLine = printed.find((l) => l.startsWith('CREDS=$(aws '))!;
      const curlLine = printed.find((l) => l.startsWith('curl '))!;
      const last4Line = printed.find((l) => l.startsWith('aws ') && l.includes("jq -r '.client_secret[-4:]'"))!;
      for (const line of [exportLine, rotateLine, getLine, credsLine, curlLine, last4Line]) expect(line).toBeDefined();
      const stytchUrl = /Stytch\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(child.stdout())![1]!;
      const smUrl = /Secrets Manager\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(child.stdout())![1]!;
      expect(getLine).toBe(`aws --endpoint-url ${smUrl} secretsmanager get-secret-value --secret-id demo/stytch-client`);
      const shell = (script: string) => run('bash', ['-c', `set -e; ${exportLine}; ${script}`], cliEnv(cli));

      // Act: exactly what the person would paste.
      const rotated = await shell(rotateLine);
      const outcome = await child.waitFor(/demo\/stytch-client\s+(rotated: .*)\n/);
      expect(rotated.code, rotated.stderr).toBe(0);
      const token = (JSON.parse(rotated.stdout) as { VersionId: string }).VersionId;
      const haveCurlAndJq = !!(locateTool('curl') && locateTool('jq'));
      const sdk = createSdkClient(smUrl);
      const [got, creds, viaCurl, viaJq] = await Promise.all([
        // The whole value, to compare (the CLI's get-secret-value is exercised above; each CLI call costs about a second).
        sdk.send(new GetSecretValueCommand({ SecretId: 'demo/stytch-client' })).finally(() => sdk.destroy()),
        // The printed CREDS line; fetch stands in for curl and jq where they are missing.
        haveCurlAndJq ? undefined : shell(`${credsLine}; printf '%s' "$CREDS"`),
        haveCurlAndJq ? shell(`${credsLine}; ${curlLine}`) : undefined,
        haveCurlAndJq ? shell(last4Line) : undefined,
      ]);

      // Assess: the rotation ran step by step in the served stack, and its verdict is good.
      for (const step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret']) {
        expect(child.stdout()).toMatch(new RegExp(`demo/stytch-client\\s+${token.slice(0, 8)}\\s+${step}\\s+ok\\s+\\d+ ms`));
      }
      expect(outcome[1]).toMatch(/^rotated: AWSCURRENT …\S{4} accepted by Stytch; AWSPREVIOUS …\S{4} rejected; Stytch not rotating; \d+ log lines so far, 0 contain a secret$/);
      expect(got.VersionId).toBe(token);
      const current = JSON.parse(got.SecretString!) as { client_id: string; client_secret: string };
      expect(curlLine).toContain(`${stytchUrl}/v1/connected_apps/clients/${current.client_id}`);

      // Assess: Stytch agrees with AWSCURRENT, checked as printed.
      const expected = { client_secret_last_four: current.client_secret.slice(-4), next_client_secret_last_four: null };
      if (viaCurl && viaJq) {
        expect(viaCurl.code, viaCurl.stderr).toBe(0);
        expect(JSON.parse(viaCurl.stdout)).toMatchObject(expected);
        expect(viaJq.stdout.trim()).toBe(current.client_secret.slice(-4));
      } else {
        expect(creds!.code, creds!.stderr).toBe(0);
        const { project_id: projectId, secret } = JSON.parse(creds!.stdout) as { project_id: string; secret: string };
        const res = await fetch(`${stytchUrl}/v1/connected_apps/clients/${current.client_id}`, {
          headers: { authorization: `Basic ${Buffer.from(`${projectId}:${secret}`).toString('base64')}` },
        });
        expect(((await res.json()) as { connected_app: unknown }).connected_app).toMatchObject(expected);
      }

      // Act / Assess: a clean stop, and the serve output never showed a whole secret.
      child.process.kill('SIGTERM');
      expect(await child.exited).toEqual({ code: 0, signal: null });
      expect(child.stdout()).toMatch(/SIGTERM: stopping the local stack\nstopped\n$/);
      expect(secretLikeRuns(child.stdout())).toEqual([]);
      expect(child.stdout()).not.toContain(current.client_secret);
    }, 120_000);
  });
});
