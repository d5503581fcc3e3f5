/**
 * The local stack's side of project-secret rotation (DESIGN.md §4b): the
 * credentials secret names its own Stytch secret, a management credentials
 * secret holds a workspace key for the emulator's management API, and the
 * function's configuration names it. Everything is reached the way the
 * function reaches it: the real AWS SDK over HTTP for Secrets Manager and
 * Lambda's configuration, real fetch for Stytch.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CREDENTIALS_SECRET_NAME, LOCAL_FUNCTION_NAME, LocalStack, MANAGEMENT_CREDENTIALS_SECRET_NAME } from '../../infra/local/stack.js';
import { builtBundle, expectNoLeaks } from './support.js';

let stack: LocalStack;
let bundle: { path: string; dispose(): void };
let sm: SecretsManagerClient;

beforeAll(async () => {
  bundle = await builtBundle();
  stack = await LocalStack.start({ bundlePath: bundle.path });
  sm = new SecretsManagerClient({ endpoint: stack.secretsManagerUrl, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
});

afterAll(async () => {
  sm?.destroy();
  await stack?.close();
  bundle?.dispose();
});

async function secretJson(name: string): Promise<Record<string, unknown>> {
  const out = await sm.send(new GetSecretValueCommand({ SecretId: name }));
  return JSON.parse(out.SecretString!) as Record<string, unknown>;
}

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

describe('Local stack: project secrets and the management API', () => {
  it('the credentials secret keeps its fields and names its own Stytch secret by id and slugs', async () => {
    const credentials = await secretJson(CREDENTIALS_SECRET_NAME);

    expect(credentials).toEqual({
      project_id: stack.project.projectId,
      secret: stack.project.secret,
      base_url: stack.stytchUrl,
      secret_id: stack.project.secretId,
      project_slug: stack.project.projectSlug,
      environment_slug: stack.project.environmentSlug,
    });
    expect(stack.credentialsSecretName).toBe(CREDENTIALS_SECRET_NAME);
    expect(stack.projectSecrets().map((s) => s.secretId)).toEqual([stack.project.secretId]);
  });

  it('the management credentials secret holds a workspace key that manages the project through the management API at base_url', async () => {
    const management = await secretJson(stack.managementSecretName);
    expect(Object.keys(management).sort()).toEqual(['base_url', 'workspace_key_id', 'workspace_key_secret']);
    const [keyId, keySecret, baseUrl] = [management.workspace_key_id, management.workspace_key_secret, management.base_url].map(String) as [string, string, string];
    const path = `/pwa/v3/projects/${stack.project.projectSlug}/environments/${stack.project.environmentSlug}/secrets`;

    const listed = await fetch(new URL(path, baseUrl), { headers: { Authorization: basic(keyId, keySecret) } });
    const created = await fetch(new URL(path, baseUrl), {
      method: 'POST',
      headers: { Authorization: basic(keyId, keySecret), 'Content-Type': 'application/json' },
      body: '{}',
    });
    const { secret } = (await created.json()) as { secret: { secret_id: string; secret: string } };
    const asProject = await fetch(new URL(path, baseUrl), { headers: { Authorization: basic(stack.project.projectId, stack.project.secret) } });

    expect(listed.status).toBe(200);
    expect(((await listed.json()) as { secrets: Array<{ secret_id: string }> }).secrets.map((s) => s.secret_id)).toEqual([stack.project.secretId]);
    expect(created.status).toBe(200);
    expect(stack.projectSecrets().map((s) => s.secretId)).toEqual([stack.project.secretId, secret.secret_id]);
    expect(stack.stytch.isProjectSecretAccepted(stack.project.projectId, secret.secret)).toBe(true);
    expect(asProject.status).toBe(401);
    // A secret only Stytch holds is still one the leak scan looks for (invariant V).
    expect((await stack.knownSecrets()).map((k) => k.value)).toEqual(expect.arrayContaining([secret.secret, keySecret]));
    stack.stytch.deleteProjectSecret(stack.project.projectId, secret.secret_id);
  });

  it("the function's environment and GetFunctionConfiguration name the management credentials secret", async () => {
    const response = await fetch(`${stack.secretsManagerUrl}/2015-03-31/functions/${LOCAL_FUNCTION_NAME}/configuration`);
    const configuration = (await response.json()) as { Environment: { Variables: Record<string, string> } };

    expect(process.env.STYTCH_MANAGEMENT_CREDENTIALS_SECRET_ID).toBe(MANAGEMENT_CREDENTIALS_SECRET_NAME);
    expect(configuration.Environment.Variables).toMatchObject({
      STYTCH_CREDENTIALS_SECRET_ID: CREDENTIALS_SECRET_NAME,
      STYTCH_MANAGEMENT_CREDENTIALS_SECRET_ID: MANAGEMENT_CREDENTIALS_SECRET_NAME,
    });
  });

  it("a client-secret rotation by the built function records the use of the project's secret (used_at)", async () => {
    const before = Date.now();
    expect(stack.projectSecrets()[0]!.usedAt).toBeNull();
    const seeded = await stack.seedSecret({ name: 'demo/management-used-at' });

    await stack.rotate(seeded.name);

    const [held] = stack.projectSecrets();
    expect(held!.secretId).toBe(stack.project.secretId);
    expect(held!.usedAt).toBeGreaterThanOrEqual(before);
    expect(held!.usedAt).toBeLessThanOrEqual(Date.now());
    await expectNoLeaks(stack);
  });
});
