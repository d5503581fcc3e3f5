/**
 * The walkthrough a person follows: the real `aws` CLI (botocore, not our
 * SDK) against the local stack on loopback, rotating with the built function,
 * reading the state table and sending the retirement sweep by hand.
 * Skips with a visible reason when the CLI is missing; fails when CI is set.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { createSdkClient } from '../../infra/local/secrets-manager/index.js';
import { LOCAL_FUNCTION_NAME, LOCAL_LAMBDA_ARN, LocalStack, STATE_TABLE_NAME } from '../../infra/local/stack.js';
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
    let dir: string | undefined;
    afterAll(() => {
      stopChild(child);
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('the printed commands rotate the served demo secrets, show the state table, send a sweep that retires the old secret after its window, the served Stytch agrees at each point, and SIGTERM stops it cleanly', async () => {
      // Prepare: serve on free ports with a 2 s window and no sweep timer: the printed lambda invoke is the only sweep.
      child = startChild(process.execPath, [
        '--import',
        'tsx',
        'infra/local/demo.ts',
        '--serve',
        '--sm-port',
        '0',
        '--stytch-port',
        '0',
        '--grace-seconds',
        '2',
        '--sweep-seconds',
        '0',
        '--bundle',
        bundle.path,
      ]);
      await child.waitFor(/Rotations and sweeps, one line per step and per sweep:/, 30_000);
      const printed = child.stdout().split('\n').map((line) => line.trim());
      const find = (what: string, matches: (line: string) => boolean): string => {
        const line = printed.find(matches);
        expect(line, `the printed ${what} command`).toBeDefined();
        return line!;
      };
      const exportLine = find('export', (l) => l.startsWith('export AWS_ACCESS_KEY_ID='));
      const rotateLine = find('rotate-secret', (l) => l.startsWith('aws ') && l.includes('rotate-secret --secret-id demo/stytch-client'));
      const rotateM2mLine = find('rotate-secret (M2M)', (l) => l.startsWith('aws ') && l.endsWith('rotate-secret --secret-id demo/stytch-m2m'));
      const describeLine = find('describe-secret', (l) => l.startsWith('aws ') && l.endsWith('describe-secret --secret-id demo/stytch-client'));
      const getLine = find('get-secret-value', (l) => l.startsWith('aws ') && l.endsWith('get-secret-value --secret-id demo/stytch-client'));
      const scanLine = find('dynamodb scan', (l) => l.startsWith('aws ') && l.includes(' dynamodb scan '));
      const invokeLine = find('lambda invoke', (l) => l.startsWith('aws ') && l.includes(' lambda invoke '));
      const credsLine = find('CREDS', (l) => l.startsWith('CREDS=$(aws '));
      const curlLine = find('curl', (l) => l.startsWith('curl '));
      const last4Line = find('last four', (l) => l.startsWith('aws ') && l.includes("jq -r '.client_secret[-4:]'"));
      const stytchUrl = /^ {2}Stytch\s+(http:\/\/127\.0\.0\.1:\d+)$/m.exec(child.stdout())![1]!;
      const smUrl = /^ {2}AWS\s+(http:\/\/127\.0\.0\.1:\d+) {2}/m.exec(child.stdout())![1]!;
      expect(getLine).toBe(`aws --endpoint-url ${smUrl} secretsmanager get-secret-value --secret-id demo/stytch-client`);
      expect(scanLine).toBe(`aws --endpoint-url ${smUrl} dynamodb scan --table-name ${STATE_TABLE_NAME}`);
      expect(invokeLine).toBe(`aws --endpoint-url ${smUrl} lambda invoke --function-name ${LOCAL_FUNCTION_NAME} --payload fileb://sweep-event.json sweep-result.json`);
      const eventLine = find('sweep event', (l) => l.startsWith("printf '%s' ") && l.endsWith('> sweep-event.json'));
      // The same lines for AWS CLI v1 and v2: fileb:// sends the payload's bytes as they are in both.
      const invokeAsPasted = `${eventLine}; ${invokeLine}`;
      // Each command runs in a scratch directory, as pasted in a shell: sweep-result.json lands there.
      dir = mkdtempSync(join(tmpdir(), 'stytch-rotation-it-'));
      const shell = (script: string) => run('bash', ['-c', `set -e; cd ${dir}; ${exportLine}; ${script}`], cliEnv(cli));
      const haveCurlAndJq = !!(locateTool('curl') && locateTool('jq'));
      const sdk = createSdkClient(smUrl);
      /** Stytch's view of the Connected App: the printed CREDS and curl lines, or fetch where curl and jq are missing. */
      const stytchClient = async (): Promise<Record<string, unknown>> => {
        if (haveCurlAndJq) {
          const viaCurl = await shell(`${credsLine}; ${curlLine}`);
          expect(viaCurl.code, viaCurl.stderr).toBe(0);
          return JSON.parse(viaCurl.stdout) as Record<string, unknown>;
        }
        const creds = await shell(`${credsLine}; printf '%s' "$CREDS"`);
        expect(creds.code, creds.stderr).toBe(0);
        const { project_id: projectId, secret } = JSON.parse(creds.stdout) as { project_id: string; secret: string };
        const clientId = /\/v1\/connected_apps\/clients\/(\S+)/.exec(curlLine)![1]!;
        const res = await fetch(`${stytchUrl}/v1/connected_apps/clients/${clientId}`, {
          headers: { authorization: `Basic ${Buffer.from(`${projectId}:${secret}`).toString('base64')}` },
        });
        return ((await res.json()) as { connected_app: Record<string, unknown> }).connected_app;
      };
      type Item = Record<string, { S?: string; N?: string }>;
      const scanItems = async (): Promise<Item[]> => {
        const scanned = await shell(scanLine);
        expect(scanned.code, scanned.stderr).toBe(0);
        return (JSON.parse(scanned.stdout) as { Items: Item[] }).Items;
      };

      try {
        // The whole values, to compare (through the SDK: each CLI call costs about a second).
        const oldValue = JSON.parse((await sdk.send(new GetSecretValueCommand({ SecretId: 'demo/stytch-client' }))).SecretString!) as { client_id: string; client_secret: string };
        const old4 = oldValue.client_secret.slice(-4);

        // Act: rotate both secrets, exactly as the person would paste the commands.
        const [rotated, m2m] = await Promise.all([shell(rotateLine), shell(rotateM2mLine)]);
        expect(rotated.code, rotated.stderr).toBe(0);
        expect(m2m.code, m2m.stderr).toBe(0);
        const outcome = await child.waitFor(/demo\/stytch-client\s+(rotated: .*)\n/);
        await child.waitFor(/demo\/stytch-m2m\s+rotated: AWSCURRENT …\S{4} accepted by Stytch; AWSPREVIOUS …\S{4} still accepted until /);
        const token = (JSON.parse(rotated.stdout) as { VersionId: string }).VersionId;
        const [got, described, viaGet, items, inWindow] = await Promise.all([
          sdk.send(new GetSecretValueCommand({ SecretId: 'demo/stytch-client' })),
          shell(describeLine),
          shell(getLine),
          scanItems(),
          stytchClient(),
        ]);

        // Assess: the rotation ran step by step in the served stack; the old secret works until its window ends.
        for (const step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret']) {
          expect(child.stdout()).toMatch(new RegExp(`demo/stytch-client\\s+${token.slice(0, 8)}\\s+${step}\\s+ok\\s+\\d+ ms`));
        }
        const current = JSON.parse(got.SecretString!) as { client_id: string; client_secret: string };
        const new4 = current.client_secret.slice(-4);
        expect(got.VersionId).toBe(token);
        expect(outcome[1]).toMatch(
          new RegExp(`^rotated: AWSCURRENT …${new4} accepted by Stytch; AWSPREVIOUS …${old4} still accepted until \\d\\d:\\d\\d:\\d\\d\\.\\d \\(overlap window\\), then the sweep retires it; \\d+ log lines so far, 0 contain a secret$`),
        );
        expect(curlLine).toContain(`${stytchUrl}/v1/connected_apps/clients/${current.client_id}`);
        expect(inWindow).toMatchObject({ client_secret_last_four: old4, next_client_secret_last_four: new4 });

        // Assess: describe-secret and get-secret-value as printed.
        expect(described.code, described.stderr).toBe(0);
        expect(JSON.parse(described.stdout)).toMatchObject({ Name: 'demo/stytch-client', RotationEnabled: true, VersionIdsToStages: { [token]: ['AWSCURRENT'] } });
        expect(viaGet.code, viaGet.stderr).toBe(0);
        expect(JSON.parse(viaGet.stdout)).toMatchObject({ VersionId: token, VersionStages: ['AWSCURRENT'] });

        // Assess: the state table, as scanned: the secret bound to its client both ways, and the old secret's retirement due.
        const arn = (JSON.parse(described.stdout) as { ARN: string }).ARN;
        const secretItem = items.find((i) => i.pk?.S === `secret#${arn}`);
        const clientItem = items.find((i) => i.pk?.S?.startsWith('client#') && i.client_id?.S === current.client_id);
        expect(secretItem).toMatchObject({ client_id: { S: current.client_id }, project_id: { S: expect.stringMatching(/^project-test-/) } });
        expect(clientItem).toMatchObject({
          pk: { S: `client#${secretItem!.project_id!.S}#${current.client_id}` },
          secret_arn: { S: arn },
          retire_due: { N: expect.stringMatching(/^\d+$/) },
          retire_previous_last4: { S: old4 },
          retire_last4: { S: new4 },
        });
        // Both windows (the M2M secret has its own).
        const dueAt = Math.max(...items.filter((i) => i.retire_due?.N !== undefined).map((i) => Number(i.retire_due!.N)));
        expect(items.filter((i) => i.retire_due?.N !== undefined)).toHaveLength(2);

        // Act: once the windows have ended, send the sweep with the printed lambda invoke.
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, dueAt - Date.now() + 50)));
        const invoked = await shell(`${invokeAsPasted}; cat sweep-result.json`);
        const sweepLine = await child.waitFor(/retirement sweep +by hand +ok +\d+ ms {2}(.*)\n/);

        // Assess: Lambda's answer (no FunctionError, payload null), and the served stack's line for that sweep.
        expect(invoked.code, invoked.stderr).toBe(0);
        const [answer, payload] = invoked.stdout.split(/(?<=\})\s*(?=null|\{)/);
        expect(JSON.parse(answer!)).toEqual({ StatusCode: 200 });
        expect(payload!.trim()).toBe('null');
        expect(sweepLine[1]).toContain(`retired demo/stytch-client …${old4}: Stytch rejects it`);
        expect(sweepLine[1]).toMatch(/retired demo\/stytch-m2m …\S{4}: Stytch rejects it/);

        // Assess: Stytch holds AWSCURRENT alone, the retirement record is gone, the binding stays.
        const [afterItems, swept, viaJq] = await Promise.all([scanItems(), stytchClient(), haveCurlAndJq ? shell(last4Line) : undefined]);
        expect(swept).toMatchObject({ client_secret_last_four: new4, next_client_secret_last_four: null });
        const clientAfter = afterItems.find((i) => i.pk?.S === clientItem!.pk!.S);
        expect(clientAfter).toMatchObject({ secret_arn: { S: arn } });
        expect(clientAfter).not.toHaveProperty('retire_due');
        expect(afterItems.find((i) => i.pk?.S === `secret#${arn}`)).toEqual(secretItem);
        if (viaJq) {
          expect(viaJq.code, viaJq.stderr).toBe(0);
          expect(viaJq.stdout.trim()).toBe(new4);
        }

        // Act / Assess: a clean stop, and the serve output never showed a whole secret.
        child.process.kill('SIGTERM');
        expect(await child.exited).toEqual({ code: 0, signal: null });
        expect(child.stdout()).toMatch(/SIGTERM: stopping the local stack\nstopped\n$/);
        expect(child.stdout()).not.toMatch(/ failed /);
        expect(secretLikeRuns(child.stdout())).toEqual([]);
        for (const secret of [oldValue.client_secret, current.client_secret]) expect(child.stdout()).not.toContain(secret);
      } finally {
        sdk.destroy();
      }
    }, 120_000);
  });
});
