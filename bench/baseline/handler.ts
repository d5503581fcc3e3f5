/**
 * The cold-import baseline: the smallest useful Secrets Manager Lambda, one
 * SDK client and one command, created at module init as the rotation function
 * creates its own. Bundled with the rotation function's esbuild options, so
 * the ratio measures what the function adds on top of the SDK it must carry.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

const client = new SecretsManagerClient({ maxAttempts: 3 });

export async function handler(event: { SecretId: string }): Promise<{ bytes: number }> {
  const out = await client.send(new GetSecretValueCommand({ SecretId: event.SecretId }));
  return { bytes: out.SecretString?.length ?? 0 };
}
