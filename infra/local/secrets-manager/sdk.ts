/**
 * An AWS SDK v3 client for a local endpoint (the emulator or moto): fixed
 * region and dummy credentials, so nothing from the developer's AWS
 * configuration is read or sent.
 */
import { SecretsManagerClient, type SecretsManagerClientConfig } from '@aws-sdk/client-secrets-manager';

export function createSdkClient(url: string, overrides: SecretsManagerClientConfig = {}): SecretsManagerClient {
  return new SecretsManagerClient({
    endpoint: url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    ...overrides,
  });
}
