/**
 * End to end through the built bundle (DESIGN.md §4b): the local stack's
 * Secrets Manager invokes the bundle to rotate the Stytch project secret held
 * in the credentials secret, then to rotate a Connected App client with the
 * new credentials. The official `stytch` SDK, an independent client, shows
 * which project secrets Stytch accepts: both inside the overlap window, only
 * the new one after the sweep. Secrets Manager is reached with the real AWS
 * SDK over HTTP.
 */
import { execFile } from 'node:child_process';
import { GetSecretValueCommand, RotateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { Client, StytchError } from 'stytch';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { LOCAL_FUNCTION_NAME, LOCAL_LAMBDA_ARN, LocalStack } from '../../infra/local/stack.js';
import { builtBundle, expectNoLeaks } from './support.js';

const GRACE_SECONDS = 2;
let stack: LocalStack;
let bundle: { path: string; dispose(): void };
let sm: SecretsManagerClient;

beforeAll(async () => {
  // The SDK warns on every construction with a non-Stytch `env`; that is expected here.
  vi.spyOn(console, 'warn').mockImplementation(() => {});
  bundle = await builtBundle();
  stack = await LocalStack.start({ bundlePath: bundle.path, graceSeconds: GRACE_SECONDS, env: { PROJECT_SECRET_IN_USE_DEFER_SECONDS: '1' } });
  sm = new SecretsManagerClient({ endpoint: stack.secretsManagerUrl, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
});

afterAll(async () => {
  sm?.destroy();
  await stack?.close();
  bundle?.dispose();
  vi.restoreAllMocks();
});

const valueOf = async (name: string) => JSON.parse((await sm.send(new GetSecretValueCommand({ SecretId: name }))).SecretString!) as Record<string, string>;
const rotate = (name: string) =>
  sm.send(new RotateSecretCommand({ SecretId: name, RotationLambdaARN: LOCAL_LAMBDA_ARN, RotationRules: { ScheduleExpression: 'rate(30 days)' }, RotateImmediately: true }));

/** What the official SDK gets with these project credentials: 'ok' or Stytch's status and error type. */
async function sdkWith(projectId: string, secret: string, clientId: string): Promise<string> {
  const client = new Client({ project_id: projectId, secret, env: `${stack.stytchUrl}/` });
  try {
    await client.connectedApp.clients.get({ client_id: clientId });
    return 'ok';
  } catch (error) {
    if (error instanceof StytchError) return `${error.status_code} ${error.error_type}`;
    throw error;
  }
}

describe('A project secret rotated through the built bundle', () => {
  it('keeps the old project secret working through the window, rotates a client with the new one, and the sweep deletes the old one', async () => {
    const seeded = await stack.seedSecret({ kind: 'connected_app' });
    const name = stack.credentialsSecretName;
    const before = await valueOf(name);

    await rotate(name);
    const after = await valueOf(name);
    expect(stack.sm.rotationHistory(name).at(-1)?.outcome).toBe('succeeded');
    expect(after.secret_id).not.toBe(before.secret_id);
    expect(after.secret).not.toBe(before.secret);
    // Every field but secret and secret_id is unchanged.
    expect({ ...after, secret: '', secret_id: '' }).toEqual({ ...before, secret: '', secret_id: '' });
    // I: inside the window Stytch accepts both, as an app with either would see it.
    expect(await sdkWith(before.project_id!, before.secret!, seeded.clientId)).toBe('ok');
    expect(await sdkWith(after.project_id!, after.secret!, seeded.clientId)).toBe('ok');

    // The client, rotated with the new project credentials (the function dropped its cached copy when it moved AWSCURRENT).
    const clientBefore = await valueOf(seeded.name);
    const usesBefore = stack.projectSecrets().find((s) => s.secretId === before.secret_id)!.usedAt;
    await rotate(seeded.name);
    expect(stack.sm.rotationHistory(seeded.name).at(-1)?.outcome).toBe('succeeded');
    expect((await valueOf(seeded.name)).client_secret).not.toBe(clientBefore.client_secret);
    const newUse = stack.projectSecrets().find((s) => s.secretId === after.secret_id)!.usedAt;
    expect(newUse).not.toBeNull();
    // The old secret's last use is the SDK's check above, not the function's rotation.
    expect(stack.projectSecrets().find((s) => s.secretId === before.secret_id)!.usedAt).toBe(usesBefore);

    // After the window: the SDK check above used the old secret after the move, so the first sweep puts its
    // deletion off once (by 1 s here); the next sweep deletes it, and Stytch refuses it from then on.
    await new Promise((resolve) => setTimeout(resolve, GRACE_SECONDS * 1000 + 100));
    await stack.sweep();
    expect(stack.projectSecrets().map((s) => s.secretId).sort()).toEqual([before.secret_id, after.secret_id].sort());
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await stack.sweep();
    expect(stack.projectSecrets().map((s) => s.secretId)).toEqual([after.secret_id]);
    expect(await sdkWith(before.project_id!, before.secret!, seeded.clientId)).toBe('401 unauthorized_credentials');
    expect(await sdkWith(after.project_id!, after.secret!, seeded.clientId)).toBe('ok');
    await expectNoLeaks(stack);
  }, 60_000);

  it('the built CLI, in a shell pointed at the stack, shows it with status and status --all, finding the management key through the function', async () => {
    const name = stack.credentialsSecretName;
    const one = await bin(['status', '--secret-id', name]);
    expect(one.code).toBe(0);
    const current = await valueOf(name);
    expect(one.stdout).toMatch(new RegExp(`^ {2}AWSCURRENT +\\S+ {2}secret_id ${current.secret_id} {2}…${current.secret!.slice(-4)}$`, 'm'));
    expect(one.stdout).toMatch(new RegExp(`^ {2}${current.secret_id} {2}…\\S{4} {2}created \\S+ {2}last used \\S+ {2}\\[AWSCURRENT\\]$`, 'm'));
    expect(one.stderr).toBe('');
    const all = await bin(['status', '--all', '--function-name', LOCAL_FUNCTION_NAME, '--json']);
    const rows = (JSON.parse(all.stdout) as { secrets: Array<{ name: string; clientKind: string }> }).secrets;
    expect(rows.find((r) => r.name === name)?.clientKind).toBe('project_secret');
    expect(rows.filter((r) => r.clientKind === 'connected_app').length).toBeGreaterThan(0);
    for (const out of [one.stdout, all.stdout]) for (const { value } of await stack.knownSecrets()) expect(out).not.toContain(value);
  }, 60_000);
});

/** The built CLI as an operator runs it, in the environment of a fresh shell pointed at the stack. */
function bin(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['dist/cli/index.mjs', ...args], { env: stack.shellEnv(), timeout: 30_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number((error as { code?: unknown }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}
