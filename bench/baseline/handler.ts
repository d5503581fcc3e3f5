/**
 * The cold-import baseline: the smallest useful Lambda that carries the same
 * two AWS SDK clients as the rotation function (Secrets Manager and DynamoDB,
 * one command each), bundled with the rotation function's esbuild options.
 * The ratio then measures what the function adds on top of the SDK it must
 * carry, not the SDK itself. Clients are created when the function creates
 * its own: Secrets Manager at module init, DynamoDB on the first invocation
 * (the state table's name is read from the environment then).
 */
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

const secrets = new SecretsManagerClient({ maxAttempts: 3 });
let table: DynamoDBClient | undefined;

export async function handler(event: { SecretId: string }): Promise<{ bytes: number; item: boolean }> {
  table ??= new DynamoDBClient({ maxAttempts: 3 });
  const out = await secrets.send(new GetSecretValueCommand({ SecretId: event.SecretId }));
  const got = await table.send(new GetItemCommand({ TableName: process.env.ROTATION_STATE_TABLE ?? 'state', Key: { pk: { S: `secret#${event.SecretId}` } } }));
  return { bytes: out.SecretString?.length ?? 0, item: got.Item !== undefined };
}
